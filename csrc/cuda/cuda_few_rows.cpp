#include "cuda/cuda_few_rows.h"

#include <algorithm>
#include <string>

#include "core/errors.h"

namespace luminal {

namespace {

// The kernels' view of a product; the same layout in the CUDA C below.
struct LmFewRows {
  int64_t m, n, k, batches;    // C is batches x (m x n), row-major
  int64_t a_m, a_k, b_k, b_n;  // element strides of A (m x k) and B (k x n)
  int64_t a_off, b_off;
  int64_t chunk, col_blocks;   // lm_few_rows_columns: k per chunk, blocks per chunk
  int64_t dims;                // batch dims (at most 4), outermost first
  int64_t size[4], a_stride[4], b_stride[4];
};

constexpr int kThreads = 256;
// Chunks of k a product is split into at most: lm_few_rows_sum adds them
// with a thread per output, so few outputs must not wait on long sums.
constexpr int64_t kMaxParts = 32;

}  // namespace

const char* kFewRowKernels = R"(struct LmFewRows {
  int64_t m, n, k, batches, a_m, a_k, b_k, b_n, a_off, b_off, chunk, col_blocks, dims;
  int64_t size[4], a_stride[4], b_stride[4];
};
/* Output column w (batch t = w / n, column j = w % n): where its rows of A
   and its column of B start, and where its value of the first row goes.
   Column and batch indices fit 32 bits (the host checks): 64-bit divisions
   are long subroutines on a GPU. */
__device__ __forceinline__ int64_t lm_few_rows_column(const LmFewRows& p, int64_t w, const float* in0, const float* in1,
                                                      const float** a, const float** b) {
  unsigned t = (unsigned)w / (unsigned)p.n;
  const unsigned j = (unsigned)w - t * (unsigned)p.n;
  const int64_t out = (int64_t)t * p.m * p.n + j;
  int64_t oa = p.a_off, ob = p.b_off;
  for (int d = (int)p.dims - 1; d >= 0; --d) {  /* batch dims, innermost last */
    const unsigned size = (unsigned)p.size[d], i = t % size;
    t /= size;
    oa += (int64_t)i * p.a_stride[d];
    ob += (int64_t)i * p.b_stride[d];
  }
  *a = in0 + oa;
  *b = in1 + ob + (int64_t)j * p.b_n;
  return out;
}
/* This block's chunk of k, [k0, k1): blockIdx.x / col_blocks. */
__device__ __forceinline__ int64_t lm_few_rows_chunk(const LmFewRows& p, int64_t* k0, int64_t* k1) {
  const int64_t q = blockIdx.x / p.col_blocks;
  *k0 = q * p.chunk;
  *k1 = *k0 + p.chunk < p.k ? *k0 + p.chunk : p.k;
  return q;
}
/* acc[r] += A[r][c] * bv for A's m rows. */
__device__ __forceinline__ void lm_few_rows_fma(const LmFewRows& p, const float* a, int64_t c, float bv, float* acc) {
  #pragma unroll
  for (int r = 0; r < 8; ++r) {
    if (r >= p.m) break;
    acc[r] = fmaf(a[r * p.a_m + c * p.a_k], bv, acc[r]);
  }
}
/* A warp per output column and chunk of k, its lanes splitting the chunk:
   B's columns run along k, so a warp's reads are coalesced. Chunk q writes
   its sums to out + q * (batches * m * n). */
extern "C" __global__ void __launch_bounds__(256) lm_few_rows_dot(float* __restrict__ out, const float* __restrict__ in0, const float* __restrict__ in1, LmFewRows p) {
  const int lane = threadIdx.x & 31;
  const int64_t cols = p.batches * p.n;
  int64_t k0, k1;
  float* __restrict__ dst = out + lm_few_rows_chunk(p, &k0, &k1) * cols * p.m;
  /* w is the same for a warp's lanes, so whole warps shuffle */
  for (int64_t w = ((blockIdx.x % p.col_blocks) * (int64_t)blockDim.x + threadIdx.x) >> 5; w < cols; w += (p.col_blocks * (int64_t)blockDim.x) >> 5) {
    const float *a, *b;
    const int64_t o = lm_few_rows_column(p, w, in0, in1, &a, &b);
    float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    #pragma unroll 4
    for (int64_t c = k0 + lane; c < k1; c += 32) lm_few_rows_fma(p, a, c, b[c * p.b_k], acc);
    #pragma unroll
    for (int r = 0; r < 8; ++r) {
      if (r >= p.m) break;
      float v = acc[r];
      for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
      if (lane == 0) dst[o + r * p.n] = v;
    }
  }
}
/* A thread per output column and chunk of k: B's rows run along n, so a
   warp's reads are coalesced. Chunk q writes as lm_few_rows_dot's does. */
extern "C" __global__ void __launch_bounds__(256) lm_few_rows_columns(float* __restrict__ out, const float* __restrict__ in0, const float* __restrict__ in1, LmFewRows p) {
  const int64_t cols = p.batches * p.n;
  int64_t k0, k1;
  float* __restrict__ dst = out + lm_few_rows_chunk(p, &k0, &k1) * cols * p.m;
  for (int64_t w = (blockIdx.x % p.col_blocks) * (int64_t)blockDim.x + threadIdx.x; w < cols; w += p.col_blocks * (int64_t)blockDim.x) {
    const float *a, *b;
    const int64_t o = lm_few_rows_column(p, w, in0, in1, &a, &b);
    float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    #pragma unroll 16
    for (int64_t c = k0; c < k1; ++c) lm_few_rows_fma(p, a, c, b[c * p.b_k], acc);
    #pragma unroll
    for (int r = 0; r < 8; ++r) {
      if (r >= p.m) break;
      dst[o + r * p.n] = acc[r];
    }
  }
}
/* The chunks' sums (at most kMaxParts), added in chunk order. */
extern "C" __global__ void __launch_bounds__(256) lm_few_rows_sum(float* __restrict__ out, const float* __restrict__ in0, LmFewRows p) {
  const int64_t count = p.batches * p.m * p.n, parts = (p.k + p.chunk - 1) / p.chunk;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count; i += (int64_t)gridDim.x * blockDim.x) {
    float v = 0.0f;
    #pragma unroll 8
    for (int64_t q = 0; q < parts; ++q) v += in0[q * count + i];
    out[i] = v;
  }
}
)";

bool few_row_product(const BlasProduct& p) {
  // One matrix of B with many columns (a float weight at decode) stays with
  // cuBLAS: a warp per column made a decode step of 2 Mistral-7B layers in
  // float32 take 2.67 ms on an H100, against 1.40 with cuBLAS's kernels.
  return p.m > 0 && p.m <= kFewRows && p.n > 0 && p.k > 0 && (p.batches > 1 || p.n <= kFewRows) &&
         p.batch_shape.size() <= 4 && p.batches * p.n < (int64_t(1) << 31);
}

void run_few_rows(const cuda::Device& dev, const FewRowFunctions& fns, const BlasProduct& p,
                  cuda::CUdeviceptr a, cuda::CUdeviceptr b, cuda::CUdeviceptr c,
                  cuda::DeviceBuffer& scratch) {
  LmFewRows s{};
  s.m = p.m, s.n = p.n, s.k = p.k, s.batches = p.batches;
  s.a_m = p.a.trans ? 1 : p.a.ld, s.a_k = p.a.trans ? p.a.ld : 1;
  s.b_k = p.b.trans ? 1 : p.b.ld, s.b_n = p.b.trans ? p.b.ld : 1;
  s.a_off = p.a_offset, s.b_off = p.b_offset;
  s.dims = int64_t(p.batch_shape.size());
  for (size_t d = 0; d < p.batch_shape.size(); ++d) {
    s.size[d] = p.batch_shape[d];
    s.a_stride[d] = p.a_strides[d];
    s.b_stride[d] = p.b_strides[d];
  }
  const int64_t sms = std::max(dev.multiprocessors, 1), cols = p.batches * p.n;
  auto launch = [&](cuda::CUfunction fn, int64_t blocks, cuda::CUdeviceptr out, cuda::CUdeviceptr in0,
                    cuda::CUdeviceptr in1, const char* name) {
    void* params[4] = {&out, &in0, &in1, &s};
    if (!in1) params[2] = &s;  // lm_few_rows_sum has one input
    if (cuda::CUresult r = dev.api.cuLaunchKernel(fn, unsigned(blocks), 1, 1, kThreads, 1, 1, 0,
                                                  nullptr, params, nullptr))
      cuda::check(r, (std::string("cuLaunchKernel ") + name).c_str());
  };
  // B's columns along k: a warp per column (8 a block); else a thread per column.
  const bool dot = s.b_k == 1;
  const int64_t per_block = dot ? kThreads / 32 : kThreads, min_chunk = dot ? 8 * 32 : 64;
  // About 8 blocks an SM: columns first, then up to kMaxParts chunks of k
  // (each at least min_chunk long) for a product with few columns and a
  // long k (decode's values at a long context: 1,024 columns, k = past).
  s.col_blocks = std::min<int64_t>((cols + per_block - 1) / per_block, sms * 8);
  int64_t parts = std::clamp<int64_t>((sms * 8 + s.col_blocks - 1) / s.col_blocks, 1,
                                      std::min(kMaxParts, (p.k + min_chunk - 1) / min_chunk));
  s.chunk = (p.k + parts - 1) / parts;
  parts = (p.k + s.chunk - 1) / s.chunk;
  cuda::CUfunction fn = dot ? fns.dot : fns.columns;
  const char* name = dot ? "lm_few_rows_dot" : "lm_few_rows_columns";
  if (parts == 1) {
    launch(fn, s.col_blocks, c, a, b, name);
    return;
  }
  const size_t bytes = size_t(parts * cols * p.m) * sizeof(float);
  if (scratch.bytes() < bytes) scratch = cuda::DeviceBuffer(bytes);
  launch(fn, s.col_blocks * parts, scratch.ptr(), a, b, name);
  const int64_t count = cols * p.m;
  launch(fns.sum, std::clamp<int64_t>((count + kThreads - 1) / kThreads, 1, sms * 32), c, scratch.ptr(), 0,
         "lm_few_rows_sum");
}

}  // namespace luminal
