// CUDA printer: Kernel IR -> one CUDA C translation unit for NVRTC. The
// values and index math are the C printer's (compiler/c_family); what differs
// is how work maps to threads (see Launch).
#pragma once
#include <string>
#include <vector>

#include "compiler/kernel.h"

namespace luminal {

struct CudaKernel {
  // How the kernel's work maps to threads, each loop grid-strided:
  //   Elementwise: a thread per output element;
  //   WarpReduce: a warp per output, its lanes splitting the reduced axis;
  //   ColumnReduce: a thread per output, reducing serially (neighbouring
  //     threads read neighbouring elements: a sum over an outer axis);
  //   RowBlock: a block per row of a row-form kernel, its threads splitting
  //     each row reduction and then the row's elements;
  //   CompactProduct: a block per weight row and group of up to 8
  //     activation rows of a compact-weight product, its threads splitting k.
  enum class Launch { Elementwise, WarpReduce, ColumnReduce, RowBlock, CompactProduct };
  std::string name;
  Launch launch;
  int threads;  // per block: kCudaBlock, or fewer for a compact product's short rows
  // A compact product's second kernel, `widen(float* out, const float* w, LmDims)`:
  // W widened to floats (row-major, as a float weight is stored), so products
  // with many rows of A can go to cuBLAS instead. Empty for other kernels.
  std::string widen;
};

struct CudaSource {
  std::string code;
  std::vector<CudaKernel> kernels;  // one per kernel, in order (repeats share a name)
  std::vector<std::string> dims;    // the order of the LmDims values every kernel takes
  bool few_rows = false;            // the few-row product kernels (cuda_few_rows.h) are in code
};

constexpr int kCudaBlock = 256;  // threads per block, every kernel but short products

// Every kernel is `extern "C" __global__ void name(float* out, const float* in0, ...,
// LmDims dims)`: one pointer per input (quantized ones point at raw blocks).
CudaSource print_cuda(const std::vector<Kernel>& kernels);

}  // namespace luminal
