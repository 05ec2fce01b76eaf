// Recognize matrix products in the primitive graph so backends can hand them
// to a tuned library (BLAS on CPU, cuBLAS on CUDA). The pattern is the one
// hl_ops.matmul builds: SumReduce over k of Mul(A viewed (..., m, k, n) with
// stride 0 along n, B viewed (..., m, k, n) with stride 0 along m), and the
// ones autodiff builds, which reduce the first or last of those three axes.
#pragma once
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "core/graph.h"

namespace luminal {

struct MatmulPattern {
  NodeId reduce;             // the SumReduce node: its output is C, row-major (..., m, n)
  NodeId a, b;               // the buffers read
  ShapeTracker a_view, b_view;  // both permuted to the canonical (batch..., m, k, n) order
  size_t a_input = 0;           // which input of the Mul is A
  std::vector<size_t> order;    // canonical axis j is the Mul's axis order[j]
};

// How many needed nodes read each node (by edge).
std::vector<int> reader_counts(const Graph& g, const std::vector<bool>& needed);

// The pattern rooted at SumReduce node `id`, if it matches: the Mul is read
// only by this reduce, through an unmasked identity view, and neither operand
// view is masked.
std::optional<MatmulPattern> match_matmul(const Graph& g, NodeId id,
                                          const std::vector<int>& readers);

// Rewrite: a matched product whose operand view has no unit stride in its
// matrix (say, every other element of a buffer: a gradient through relu)
// cannot go to BLAS; read that operand through a Contiguous copy instead.
// One copy of an (m, k) operand is cheap next to the O(mkn) product.
// First, a product summed over two adjacent axes in turn (a weight gradient
// over batch and sequence) becomes one sum over the merged axis where the
// operands allow it: one long product instead of a batch plus a sum.
void dense_matmul_operands(Graph& g);

// A (rows x cols) operand with element strides as a row-major BLAS matrix:
// its transpose flag and leading dimension; ok is false when neither layout
// fits (or ld does not fit an int).
struct BlasMatrix {
  bool ok = false, trans = false;
  int64_t ld = 0;
};
BlasMatrix as_blas(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride);

// A matched product for one run's dims, as a BLAS sees it: `batches`
// products of (m x k) @ (k x n) matrices `a` and `b`, written one after the
// other. Batch dims along which B does not vary, over rows of A that continue
// one another, fold into m, innermost first: a Linear on (batch, seq,
// features) is one product, and grouped-query attention one per kv head.
struct BlasProduct {
  int64_t m = 0, n = 0, k = 0, batches = 1;
  BlasMatrix a, b;
  int64_t a_offset = 0, b_offset = 0;
  // The unfolded batch dims of size > 1, outermost first: sizes and strides.
  std::vector<int64_t> batch_shape, a_strides, b_strides;
  // A's and B's element offsets for batch t (batch dims walked row-major).
  std::pair<int64_t, int64_t> offsets(int64_t t) const;
};
// Nothing when an operand's strides fit no BLAS layout or a size does not fit an int.
std::optional<BlasProduct> blas_product(const MatmulPattern& mm, const Bindings& dims);

}  // namespace luminal
