// A compiled form of a graph that runs instead of the reference executor.
// Backends (CPU now; CUDA, Metal later) implement it; the Graph holds one.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace luminal {

class Graph;

// One kernel's output from a traced run: for finding the first kernel whose
// values differ from the reference executor's.
struct TracedStep {
  int32_t node;        // the graph node the kernel computes
  std::string kernel;  // its name in source()
  std::vector<int64_t> shape;
  std::vector<float> data;
};

class Program {
 public:
  virtual ~Program() = default;
  // Compute every retrieved output of `g` into its results.
  virtual void run(Graph& g) = 0;
  // Called by execute() after the graph's assigns and appends reached its
  // inputs: a backend holding device copies of inputs may adopt the new data.
  virtual void after_feedback(Graph&) {}
  // run(), also returning every kernel's output in execution order.
  std::vector<TracedStep> run_traced(Graph& g);
  virtual size_t kernel_count() const = 0;
  virtual std::string source() const = 0;  // generated code, for debugging

 protected:
  // Set during run_traced: run() appends each kernel's output here.
  std::vector<TracedStep>* trace_ = nullptr;
};

}  // namespace luminal
