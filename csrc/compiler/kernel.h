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

#include "compiler/matmul_pattern.h"
#include "core/graph.h"

namespace luminal {

struct KValue {
  // Max: NaN-propagating maximum, from a small reduction unrolled in place.
  // RowValue: the result of the kernel's row_reductions[a].
  enum class Kind { Load, Literal, DimValue, Unary, Binary, Guard, Max, RowValue };
  Kind kind;
  Op op = Op::Add;     // Unary, Binary
  int a = -1, b = -1;  // operand values (indices into Kernel::body): Unary..Max
  int buffer = -1;     // Load: index into Kernel::inputs
  Expr index = 0;      // Load: element to read
  Expr valid = 1;      // Load: read only when this is 1, else 0.0; Guard: keep `a` or 0.0
  double literal = 0;  // Literal
  Expr dim = 0;        // DimValue: an integer expression of dims, as a float
};

// A reduction over one row, fused into the elementwise kernel that reads it
// (softmax's max and sum, layer_norm's mean and variance): computed once per
// output row, before that row's elements, while the row is in cache.
struct RowReduction {
  Op op;                      // SumReduce or MaxReduce over "@r" in [0, length)
  Expr length;
  std::vector<KValue> body;   // over "@row" and "@r" (never "@c")
  int result = -1;            // the body value reduced
};

struct Kernel {
  NodeId output;
  Shape shape;                  // output shape; `i` runs over its element count
  std::vector<NodeId> inputs;   // buffers read, by node
  std::vector<std::string> input_formats;  // per input: "" (float) or a quantized dtype
  std::optional<Op> reduce;     // SumReduce or MaxReduce over `r` in [0, reduce_length)
  Expr reduce_length = 0;
  // Output elements between consecutive steps of `r` in the reduced node's
  // logical layout: 1 when the last axis is reduced (a row reduction), more
  // when an outer axis is (a column reduction, such as a bias gradient).
  Expr reduce_inner = 1;
  Expr reduce_outer = 1;  // output elements / reduce_inner
  std::vector<KValue> body;     // the last value is the result (per i, or per (i, r))
  // Row form (elementwise kernels that fuse reductions): the output is rows
  // of row_length elements, indices are over "@row" and "@c" instead of
  // "@i", and row_reductions (producers first) run once per row.
  bool row_form = false;
  Expr row_length = 1;
  std::vector<RowReduction> row_reductions;
  // Set when this reduction is a matrix product of two buffers: a backend may
  // call a GEMM library instead (the body still computes the same thing).
  std::optional<MatmulPattern> matmul;

  static const std::string kIndexVar;   // "@i": the flat output index
  static const std::string kReduceVar;  // "@r": the reduction step
  // A printer may split "@i" into "@o" * reduce_inner + "@j" (see c_printer).
  static const std::string kOuterVar, kInnerVar;
  static const std::string kRowVar, kColVar;  // "@row", "@c": the row form's loops
};

// A kernel's loop variable over [0, extent): its range is known when the
// extent is constant, so the simplifier can drop div/mod that cannot wrap.
Expr loop_var(const std::string& name, const Expr& extent);

// Split the graph's needed nodes into kernels, producers first. Elementwise
// nodes are inlined into their readers (views fold into the index math) and
// recomputed there, unless the inlined expression would be large and read
// more than once or through a broadcast. Tiny reductions (max over <= 8, sum
// over <= 2 constant elements: relu, maximum, clamp) unroll in place; a
// reduction over a last axis read one value per row by elementwise kernels
// fuses into them as a row reduction; other reductions get their own
// kernel. Outputs and inputs are buffers.
std::vector<Kernel> build_kernels(const Graph& g);

// Whether a node gets its own buffer (and so a kernel unless it is a leaf).
std::vector<bool> materialized_nodes(const Graph& g, const std::vector<bool>& needed);

}  // namespace luminal
