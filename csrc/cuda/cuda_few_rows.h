// Float products with few rows of A (at most kFewRows after folding) over a
// batch of matrices: decode attention over a KV cache. cuBLAS gives these a
// tile per output block: the values' product (4 x 4,096) @ (4,096 x 128) for
// each of 8 kv heads is 8 tiles, 155-200 us on an H100 (~100 GB/s); the
// kernels here split k over the GPU as well (90 us), and the scores' product
// takes 50 us against cuBLAS's 28-77. One big matrix (a float weight at
// decode) stays with cuBLAS's matrix-vector kernels, which are faster there.
#pragma once
#include "compiler/matmul_pattern.h"
#include "cuda/cuda_api.h"

namespace luminal {

constexpr int64_t kFewRows = 8;

// The kernels' CUDA C (after the printer's prelude): lm_few_rows_dot (B's
// columns contiguous along k: a warp per output column), lm_few_rows_columns
// (B's rows contiguous along n: a thread per output column and chunk of k)
// and lm_few_rows_sum (the chunks' sums, added in order: deterministic).
extern const char* kFewRowKernels;

struct FewRowFunctions {
  cuda::CUfunction dot = nullptr, columns = nullptr, sum = nullptr;
};

// Whether `p` is a product the few-row kernels take.
bool few_row_product(const BlasProduct& p);

// C = A @ B for such a product; `scratch` holds the chunks' sums (grown as needed).
void run_few_rows(const cuda::Device& dev, const FewRowFunctions& fns, const BlasProduct& p,
                  cuda::CUdeviceptr a, cuda::CUdeviceptr b, cuda::CUdeviceptr c,
                  cuda::DeviceBuffer& scratch);

}  // namespace luminal
