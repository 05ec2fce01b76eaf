// Kernel IR: the one description of a fused kernel that every backend prints.
//
// A kernel computes one node's row-major output buffer. It loops a flat index
// `i` over the output (and, for a reduction, `r` over the reduced axis); its
// body is a straight-line list of values (SSA): guarded loads through symbolic
// index/validity expressions, literals, dim values, and the primitive math.
// Printers (C now; CUDA and Metal later) turn it into source text; nothing in
// here knows any dialect.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/graph.h"

namespace luminal {

struct KValue {
  enum class Kind { Load, Literal, DimValue, Unary, Binary, Guard };
  Kind kind;
  Op op = Op::Add;     // Unary, Binary
  int a = -1, b = -1;  // operand values (indices into Kernel::body)
  int buffer = -1;     // Load: index into Kernel::inputs
  Expr index = 0;      // Load: element to read
  Expr valid = 1;      // Load: read only when this is 1, else 0.0; Guard: keep `a` or 0.0
  double literal = 0;  // Literal
  Expr dim = 0;        // DimValue: an integer expression of dims, as a float
};

struct Kernel {
  NodeId output;
  Shape shape;                  // output shape; `i` runs over its element count
  std::vector<NodeId> inputs;   // buffers read, by node
  std::optional<Op> reduce;     // SumReduce or MaxReduce over `r` in [0, reduce_length)
  Expr reduce_length = 0;
  std::vector<KValue> body;     // the last value is the result (per i, or per (i, r))

  static const std::string kIndexVar;   // "@i": the flat output index
  static const std::string kReduceVar;  // "@r": the reduction step
};

// Split the graph's needed nodes into kernels, producers first. Nodes read by
// one consumer without broadcasting are inlined into it (views fold into the
// index math); reductions, outputs, and shared or broadcast values get buffers.
std::vector<Kernel> build_kernels(const Graph& g);

// Whether a node gets its own buffer (and so a kernel unless it is a leaf).
std::vector<bool> materialized_nodes(const Graph& g, const std::vector<bool>& needed);

}  // namespace luminal
