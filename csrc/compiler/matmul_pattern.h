// Recognize matrix products in the primitive graph so backends can hand them
// to a tuned library (BLAS on CPU, cuBLAS on CUDA). The pattern is the one
// hl_ops.matmul builds: SumReduce over k of Mul(A viewed (..., m, k, n) with
// stride 0 along n, B viewed (..., m, k, n) with stride 0 along m).
#pragma once
#include <optional>
#include <vector>

#include "core/graph.h"

namespace luminal {

struct MatmulPattern {
  NodeId reduce;             // the SumReduce node: its output is C, row-major (..., m, n)
  NodeId a, b;               // the buffers read
  ShapeTracker a_view, b_view;  // both in the product's (batch..., m, k, n) space
};

// The pattern rooted at SumReduce node `id`, if it matches: the Mul is read
// only by this reduce, through an unmasked identity view, and neither operand
// view is masked.
std::optional<MatmulPattern> match_matmul(const Graph& g, NodeId id,
                                          const std::vector<int>& readers);

}  // namespace luminal
