// CPUProgram: a graph compiled to C kernels, run in place of the reference
// executor. Built once per compile; each run binds dims, allocates buffers,
// calls the kernels in order and frees buffers after their last reader.
#pragma once
#include <memory>
#include <optional>
#include <unordered_map>
#include <string>
#include <vector>

#include "compiler/kernel.h"
#include "compiler/run_plan.h"
#include "core/program.h"
#include "cpu/jit.h"
#include "cpu/q4_0x8.h"

namespace luminal {

class CPUProgram : public Program {
 public:
  using KernelFn = void (*)(float*, const float* const*, const int64_t*);

  // Fuse, print, build and load every kernel `g` needs. bf16_float_products:
  // float products of 16+ rows on AMX tiles (bf16 operands, float32 sums)
  // where the CPU and C compiler have them, as PyTorch's
  // float32_matmul_precision "medium"; else BLAS's float32.
  static std::shared_ptr<CPUProgram> compile(const Graph& g, bool bf16_float_products = false);

  void run(Graph& g) override;
  size_t kernel_count() const override { return kernels_.size(); }
  // The steps' matrix products (run by BLAS when it is loaded), in run order.
  std::vector<const MatmulPattern*> products() const {
    std::vector<const MatmulPattern*> out;
    for (const Step& s : steps_)
      if (s.gemm) out.push_back(&*s.gemm);
    return out;
  }
  std::string source() const override { return source_; }

 private:
  struct Step {
    KernelFn fn;
    NodeId output;
    std::vector<NodeId> inputs;
    size_t slot;                        // where the output goes (see the memory plan)
    std::optional<MatmulPattern> gemm;  // run with BLAS when loaded and the strides allow
    std::string name;                   // the kernel's name in source(), for profiles
    std::optional<size_t> pack;         // packs_[pack], appended to the inputs (q4_0x8.h)
  };
  // A weight repacked for its products (one per input and product shape),
  // kept while its source is the input's buffer. The source is held weakly:
  // a replaced weight's memory goes with it, and a freed one cannot pass for
  // its successor. (An input's current buffer is never reused in place:
  // spare_buffer takes only buffers nothing else holds.)
  struct Packed {
    NodeId input;
    int64_t n, k;
    std::weak_ptr<const std::vector<float>> source;
    std::vector<float> data;  // empty: not packed (no memory, or not used here)
  };
  std::vector<Packed> packs_;
  // The copy of `p`'s input whose buffer now holds `current`, packed first
  // if it is not that one's; nullptr where the kernel reads GGML's layout.
  const float* packed_weight(const Graph& g, Packed& p, const float* current);
  using PackSizeFn = int64_t (*)(int64_t, int64_t);
  using PackFn = void (*)(const float*, float*, int64_t, int64_t);
  PackSizeFn pack_size_ = nullptr;
  PackFn pack_ = nullptr;
  // C = A @ B through BLAS for every batch; false (nothing written) when the
  // strides do not fit sgemm, so the generated kernel runs instead.
  bool run_gemm(const MatmulPattern& m, const Graph& g, const float* a, const float* b,
                float* c) const;
  // The library's lm_matvec (see c_printer): one-row products over all cores.
  using MatvecFn = void (*)(float*, const float*, int64_t, const float*, int64_t, int64_t,
                            int64_t, int);
  MatvecFn matvec_ = nullptr;
  // The library's lm_interleaved_products: few-row products whose B matrices
  // interleave (decode attention over a KV cache); 0 back: not done.
  using InterleavedFn = int (*)(float*, const float*, int64_t, const int64_t*, const float*,
                                int64_t, const int64_t*, int, int64_t, int64_t, int64_t, int64_t,
                                int);
  InterleavedFn interleaved_ = nullptr;
  // The library's lm_amx_sgemm (compiled with bf16_float_products on a CPU
  // with AMX or AVX512-BF16): returns 0 when it did nothing (the tiles off),
  // then BLAS runs.
  using AmxSgemmFn = int (*)(float*, const float*, int64_t, const int64_t*, const float*, int64_t,
                             const int64_t*, int, int64_t, int64_t, int64_t, int64_t);
  AmxSgemmFn amx_sgemm_ = nullptr;
  RunPlan plan_;
  std::vector<Step> steps_;
  std::vector<Kernel> kernels_;
  std::vector<std::shared_ptr<std::vector<float>>> slots_;  // grown on demand, kept across runs
  std::vector<std::vector<int64_t>> shapes_;  // each run's node shapes, refilled in place
  // Buffers handed to the graph (results fed back into inputs by assign):
  // reused once the graph lets go, so training steps do not allocate.
  std::vector<std::shared_ptr<std::vector<float>>> spares_;
  std::shared_ptr<std::vector<float>> spare_buffer(std::shared_ptr<std::vector<float>> busy,
                                                   size_t count);
  std::vector<std::string> dims_;
  std::string source_;
  std::shared_ptr<SharedLibrary> library_;
};

}  // namespace luminal
