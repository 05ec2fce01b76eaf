// Localizing a compiled graph's disagreement with the reference executor:
// re-run the program keeping every kernel's output, run the reference
// executor over the same (compiled) graph, and name the first kernel, in
// execution order, whose output differs. Its inputs came from kernels that
// agreed, so the fault is in that kernel (or in a quantized product's
// deliberate rounding). When every kernel agrees, the difference comes from
// a graph rewrite instead.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/graph.h"

namespace luminal {

struct Difference {
  NodeId node;
  std::string op, kernel;
  std::vector<int64_t> shape;
  int64_t index;     // first differing element, row-major
  float got, want;   // its values
  double max_abs;    // largest |got - want| over the output
};

// nullopt when every kernel agrees within |got - want| <= atol + rtol |want|
// (NaNs equal), or the graph has no compiled program.
std::optional<Difference> first_difference(Graph& g, double rtol, double atol);

}  // namespace luminal
