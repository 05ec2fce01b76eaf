// CUDAProgram: a graph compiled to CUDA kernels (NVRTC) and cuBLAS products,
// run on device 0 in place of the reference executor. Inputs are uploaded
// once and kept on the device while the graph holds the same buffer: weights
// upload on the first run only, and a buffer the graph grows in place (a KV
// cache's append) uploads only its new tail. Results come back to the host
// after each run; a result fed back into an input (assign) is copied on the
// device instead of uploaded again.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "compiler/kernel.h"
#include "compiler/run_plan.h"
#include "core/program.h"
#include "cuda/cuda_api.h"
#include "cuda/cuda_few_rows.h"
#include "cuda/cuda_printer.h"

namespace luminal {

class CUDAProgram : public Program {
 public:
  // Fuse, print and build every kernel `g` needs (throws if no device is open).
  static std::shared_ptr<CUDAProgram> compile(const Graph& g);

  void run(Graph& g) override;
  void after_feedback(Graph& g) override;
  size_t kernel_count() const override { return kernels_.size(); }
  std::string source() const override { return source_; }
  // The steps' float matrix products, in run order: few-row kernels or cuBLAS
  // (without cuBLAS, products of more rows run their own generated kernel).
  std::vector<const MatmulPattern*> products() const {
    std::vector<const MatmulPattern*> out;
    for (const Step& s : steps_)
      if (s.gemm || s.widen) out.push_back(s.gemm ? &*s.gemm : &s.widen->gemm);
    return out;
  }

 private:
  struct Step {
    cuda::CUfunction fn;
    CudaKernel::Launch launch;
    int threads;  // per block
    NodeId output;
    std::vector<NodeId> inputs;
    size_t slot;
    std::optional<MatmulPattern> gemm;  // run by cuBLAS when the strides allow
    std::string name;
    // A compact product with more rows of A than the product kernel's group
    // (kWidenRows): W widened into widened_ by `fn`, then cuBLAS.
    struct Widen {
      cuda::CUfunction fn;
      MatmulPattern gemm;  // gemm.b is W
      int64_t k;           // W's row length
    };
    std::optional<Widen> widen;
  };
  // A graph input's device copy: valid while `host` is the graph's buffer;
  // its first `uploaded` values are on the device.
  struct InputCopy {
    std::weak_ptr<const std::vector<float>> host;
    size_t uploaded = 0;
    cuda::DeviceBuffer buffer;
  };
  // The device address of input `id`'s data for this run, uploading what changed.
  cuda::CUdeviceptr resolve_input(const cuda::Api& api, NodeId id,
                                  const std::shared_ptr<const std::vector<float>>& host);
  // Elements of node `id` in this run (shapes_).
  int64_t count_of(NodeId id) const;
  // Room for `count` values in `copy`'s buffer, keeping what is uploaded
  // (doubling, so appends are amortized).
  static void reserve(const cuda::Api& api, InputCopy& copy, size_t count);
  // After a run: each appended result's rows copied on the device to the end
  // of its target's copy; after_feedback adopts the grown host data.
  void append_on_device(const Graph& g, const cuda::Api& api);
  // C = A @ B by the few-row kernels or cuBLAS; false (nothing written) when
  // neither takes it (the step's own kernel runs).
  bool run_gemm(const MatmulPattern& m, const Graph& g, cuda::CUdeviceptr a, cuda::CUdeviceptr b,
                cuda::CUdeviceptr c);

  std::unique_ptr<cuda::Module> module_;  // before the functions taken from it
  RunPlan plan_;
  std::vector<Kernel> kernels_;
  std::vector<Step> steps_;
  std::vector<NodeId> read_inputs_;  // graph inputs some kernel reads
  std::vector<std::string> dims_;
  std::string source_;
  std::vector<cuda::DeviceBuffer> slots_;  // grown on demand, kept across runs
  cuda::DeviceBuffer widened_;             // the largest widened W so far
  FewRowFunctions few_rows_;               // null when the module has no products
  cuda::DeviceBuffer few_rows_parts_;      // the few-row kernels' sums per chunk of k
  std::vector<std::vector<int64_t>> shapes_;  // each run's node shapes, refilled in place
  std::unordered_map<NodeId, InputCopy> inputs_;
  // Last run's results as handed to the graph, and the slot still holding each.
  std::vector<std::pair<std::weak_ptr<const std::vector<float>>, size_t>> handed_;
  // Inputs whose device copy this run's appends extended, and their new length.
  std::vector<std::pair<NodeId, size_t>> appended_;
};

}  // namespace luminal
