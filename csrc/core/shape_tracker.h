// ShapeTracker: how an edge reads its source buffer. Views (reshape, permute,
// expand, slice, pad, flip) edit the tracker and never copy data.
//
// A tracker is one strided view with an optional validity mask:
//   physical(i) = offset + sum_k i_k * strides[k]
//   valid(i)    = AND_k mask[k].lo <= i_k < mask[k].hi     (invalid reads 0)
// all in symbolic dims. Reshape works whenever strides allow it; otherwise it
// reports failure and the caller materializes with a Contiguous node first.
#pragma once
#include <optional>
#include <utility>
#include <vector>

#include "core/expr.h"

namespace luminal {

using Shape = std::vector<Expr>;

struct Interval {
  Expr lo, hi;  // half-open [lo, hi)
};

// A tracker with every dim bound to a number, for the reference executor.
struct ConcreteView {
  std::vector<int64_t> shape, strides;
  int64_t offset = 0;
  std::vector<std::pair<int64_t, int64_t>> mask;  // empty = everything valid
  int64_t numel() const;
};

class ShapeTracker {
 public:
  ShapeTracker() = default;
  static ShapeTracker contiguous(const Shape& shape);

  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  const Expr& offset() const { return offset_; }
  const std::optional<std::vector<Interval>>& mask() const { return mask_; }
  size_t rank() const { return shape_.size(); }
  Expr numel() const;

  // True if reading through this tracker is reading `shape` row-major from 0.
  bool is_identity() const;
  bool is_masked() const { return mask_.has_value(); }

  ShapeTracker permute(const std::vector<size_t>& axes) const;
  // Broadcast size-1 dims to `shape` (same rank) with stride 0.
  ShapeTracker expand(const Shape& shape) const;
  ShapeTracker unsqueeze(size_t axis) const;  // insert a size-1 dim
  // Elements start, start+step, ... < stop of `axis`, step > 0. The caller
  // clamps; symbolic bounds with stop < start fail at resolve().
  ShapeTracker slice(size_t axis, const Expr& start, const Expr& stop, int64_t step) const;
  // Add `before`/`after` zero-reading elements to `axis` (both >= 0).
  ShapeTracker pad(size_t axis, const Expr& before, const Expr& after) const;
  ShapeTracker flip(size_t axis) const;
  // A view with `shape` over the same elements in row-major order, if strides allow.
  std::optional<ShapeTracker> reshape(const Shape& shape) const;

  // Lowering: physical index and validity (0/1) of the element at `index`.
  Expr index_expr(const std::vector<Expr>& index) const;
  Expr valid_expr(const std::vector<Expr>& index) const;
  ConcreteView resolve(const Bindings& dims) const;

  bool operator==(const ShapeTracker& other) const;
  std::string str() const;

 private:
  Shape shape_, strides_;
  Expr offset_ = 0;
  std::optional<std::vector<Interval>> mask_;
  std::vector<Interval> full_mask() const;
  void drop_trivial_mask();
};

std::string shape_str(const Shape& shape);
bool same_shape(const Shape& a, const Shape& b);

}  // namespace luminal
