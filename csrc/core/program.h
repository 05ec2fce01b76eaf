// A compiled form of a graph that runs instead of the reference executor.
// Backends (CPU now; CUDA, Metal later) implement it; the Graph holds one.
#pragma once
#include <cstddef>
#include <string>

namespace luminal {

class Graph;

class Program {
 public:
  virtual ~Program() = default;
  // Compute every retrieved output of `g` into its results.
  virtual void run(Graph& g) = 0;
  virtual size_t kernel_count() const = 0;
  virtual std::string source() const = 0;  // generated code, for debugging
};

}  // namespace luminal
