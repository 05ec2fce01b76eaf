#include "core/shape_tracker.h"

#include <sstream>

#include "core/errors.h"

namespace luminal {

namespace {
Shape row_major_strides(const Shape& shape) {
  Shape strides(shape.size(), Expr(1));
  Expr acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = acc;
    acc = acc * shape[i];
  }
  return strides;
}
// Sizes that are provably 1 drop out of stride checks.
bool is_one(const Expr& e) { return e.is_const() && e.value() == 1; }
}  // namespace

int64_t ConcreteView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n))
      throw ExecutionError("[view] a view's element count overflows int64");
  return n;
}

ShapeTracker ShapeTracker::contiguous(const Shape& shape) {
  ShapeTracker t;
  t.shape_ = shape;
  t.strides_ = row_major_strides(shape);
  return t;
}

Expr ShapeTracker::numel() const { return product(shape_); }

std::vector<Interval> ShapeTracker::full_mask() const {
  if (mask_) return *mask_;
  std::vector<Interval> m;
  for (const Expr& d : shape_) m.push_back({0, d});
  return m;
}

void ShapeTracker::drop_trivial_mask() {
  if (!mask_) return;
  for (size_t i = 0; i < rank(); ++i) {
    const Interval& m = (*mask_)[i];
    if (!(m.lo == Expr(0)) || !(m.hi == shape_[i])) return;
  }
  mask_.reset();
}

bool ShapeTracker::is_identity() const {
  if (mask_ || !(offset_ == Expr(0))) return false;
  Shape canonical = row_major_strides(shape_);
  for (size_t i = 0; i < rank(); ++i)
    if (!is_one(shape_[i]) && strides_[i] != canonical[i]) return false;
  return true;
}

ShapeTracker ShapeTracker::permute(const std::vector<size_t>& axes) const {
  ShapeTracker t = *this;
  for (size_t i = 0; i < axes.size(); ++i) {
    t.shape_[i] = shape_[axes[i]];
    t.strides_[i] = strides_[axes[i]];
    if (mask_) (*t.mask_)[i] = (*mask_)[axes[i]];
  }
  return t;
}

ShapeTracker ShapeTracker::expand(const Shape& shape) const {
  ShapeTracker t = *this;
  for (size_t i = 0; i < rank(); ++i) {
    if (shape_[i] == shape[i]) continue;
    // Only size-1 dims broadcast (the caller checked); a size-1 dim's mask is
    // either everything or nothing, and stays so.
    t.shape_[i] = shape[i];
    t.strides_[i] = 0;
    if (mask_) {
      const Interval& m = (*mask_)[i];
      (*t.mask_)[i] = {m.lo * shape[i], m.hi * shape[i]};
    }
  }
  t.drop_trivial_mask();
  return t;
}

ShapeTracker ShapeTracker::unsqueeze(size_t axis) const {
  ShapeTracker t = *this;
  t.shape_.insert(t.shape_.begin() + axis, Expr(1));
  t.strides_.insert(t.strides_.begin() + axis, Expr(0));
  if (t.mask_) t.mask_->insert(t.mask_->begin() + axis, Interval{0, 1});
  return t;
}

ShapeTracker ShapeTracker::slice(size_t axis, const Expr& start, const Expr& stop,
                                 int64_t step) const {
  ShapeTracker t = *this;
  // Callers clamp concrete bounds; symbolic bounds are trusted here and a
  // negative size is reported when the dims are bound (resolve()).
  Expr length = stop - start;
  Expr size = step == 1 ? length : floordiv(length + (step - 1), step);
  t.shape_[axis] = size;
  t.offset_ = offset_ + start * strides_[axis];
  t.strides_[axis] = strides_[axis] * step;
  if (mask_) {
    // Element j of the new dim is old element start + j*step, valid while
    // lo <= start + j*step < hi: j in [ceil((lo-start)/step), ceil((hi-start)/step)).
    const Interval& m = (*mask_)[axis];
    auto ceil_div = [&](const Expr& x) { return -floordiv(-x, step); };
    Expr lo = min(max(ceil_div(m.lo - start), 0), size);
    Expr hi = min(max(ceil_div(m.hi - start), lo), size);
    (*t.mask_)[axis] = {lo, hi};
    t.drop_trivial_mask();
  }
  return t;
}

ShapeTracker ShapeTracker::pad(size_t axis, const Expr& before, const Expr& after) const {
  ShapeTracker t = *this;
  std::vector<Interval> m = full_mask();
  m[axis] = {m[axis].lo + before, m[axis].hi + before};
  t.mask_ = std::move(m);
  t.shape_[axis] = shape_[axis] + before + after;
  t.offset_ = offset_ - before * strides_[axis];
  t.drop_trivial_mask();
  return t;
}

ShapeTracker ShapeTracker::flip(size_t axis) const {
  ShapeTracker t = *this;
  Expr last = shape_[axis] - 1;
  t.offset_ = offset_ + max(last, 0) * strides_[axis];
  t.strides_[axis] = -strides_[axis];
  if (mask_) {
    const Interval& m = (*mask_)[axis];
    (*t.mask_)[axis] = {shape_[axis] - m.hi, shape_[axis] - m.lo};
  }
  return t;
}

std::optional<ShapeTracker> ShapeTracker::reshape(const Shape& shape) const {
  if (is_identity()) return contiguous(shape);
  for (const Expr& d : shape_)
    if (d.is_const() && d.value() == 0) return contiguous(shape);  // no data to view
  // Old dims of size 1 carry no information unless masked away to nothing.
  std::vector<size_t> old;
  for (size_t i = 0; i < rank(); ++i) {
    if (!is_one(shape_[i])) {
      old.push_back(i);
    } else if (mask_ && !((*mask_)[i].lo == Expr(0) && (*mask_)[i].hi == Expr(1))) {
      return std::nullopt;
    }
  }
  std::vector<size_t> fresh;
  for (size_t j = 0; j < shape.size(); ++j)
    if (!is_one(shape[j])) fresh.push_back(j);

  ShapeTracker t;
  t.shape_ = shape;
  t.strides_ = Shape(shape.size(), Expr(0));
  t.offset_ = offset_;
  std::vector<Interval> new_mask;
  for (const Expr& d : shape) new_mask.push_back({0, d});
  bool masked = false;

  // Walk both dim lists, closing a group whenever their products match.
  size_t i = 0, j = 0;
  while (i < old.size() && j < fresh.size()) {
    size_t i0 = i, j0 = j;
    Expr po = shape_[old[i++]], pn = shape[fresh[j++]];
    while (po != pn) {
      if (i >= old.size() && j >= fresh.size()) return std::nullopt;
      bool grow_new = i >= old.size() || (j < fresh.size() && generic_magnitude(pn) < generic_magnitude(po));
      if (grow_new)
        pn = pn * shape[fresh[j++]];
      else
        po = po * shape_[old[i++]];
    }
    // Old dims in the group must be mergeable: each stride spans the next dim.
    for (size_t k = i0; k + 1 < i; ++k)
      if (strides_[old[k]] != strides_[old[k + 1]] * shape_[old[k + 1]]) return std::nullopt;
    if (mask_) {
      bool group_masked = false;
      for (size_t k = i0; k < i; ++k) {
        const Interval& m = (*mask_)[old[k]];
        if (!(m.lo == Expr(0) && m.hi == shape_[old[k]])) group_masked = true;
      }
      if (group_masked) {
        if (i - i0 != 1 || j - j0 != 1) return std::nullopt;
        new_mask[fresh[j0]] = (*mask_)[old[i0]];
        masked = true;
      }
    }
    Expr stride = strides_[old[i - 1]];
    for (size_t k = j; k-- > j0;) {
      t.strides_[fresh[k]] = stride;
      stride = stride * shape[fresh[k]];
    }
  }
  if (i < old.size() || j < fresh.size()) return std::nullopt;
  if (masked) t.mask_ = std::move(new_mask);
  return t;
}

Expr ShapeTracker::index_expr(const std::vector<Expr>& index) const {
  Expr e = offset_;
  for (size_t k = 0; k < rank(); ++k) e = e + index[k] * strides_[k];
  return e;
}

Expr ShapeTracker::valid_expr(const std::vector<Expr>& index) const {
  Expr v = 1;
  if (!mask_) return v;
  for (size_t k = 0; k < rank(); ++k) {
    const Interval& m = (*mask_)[k];
    v = logical_and(v, logical_and(ge(index[k], m.lo), lt(index[k], m.hi)));
  }
  return v;
}

ConcreteView ShapeTracker::resolve(const Bindings& dims) const {
  ConcreteView v;
  for (size_t k = 0; k < rank(); ++k) {
    v.shape.push_back(shape_[k].eval(dims));
    if (v.shape.back() < 0)
      throw ExecutionError("[view] dim " + shape_[k].str() + " of " + shape_str(shape_) +
                           " is " + std::to_string(v.shape.back()) +
                           " for the bound dims: a slice of a symbolic dim is out of range");
    v.strides.push_back(strides_[k].eval(dims));
  }
  v.offset = offset_.eval(dims);
  if (mask_)
    for (const Interval& m : *mask_) v.mask.emplace_back(m.lo.eval(dims), m.hi.eval(dims));
  return v;
}

bool ShapeTracker::operator==(const ShapeTracker& o) const {
  if (rank() != o.rank() || offset_ != o.offset_ || mask_.has_value() != o.mask_.has_value())
    return false;
  for (size_t k = 0; k < rank(); ++k) {
    if (shape_[k] != o.shape_[k] || strides_[k] != o.strides_[k]) return false;
    if (mask_ && ((*mask_)[k].lo != (*o.mask_)[k].lo || (*mask_)[k].hi != (*o.mask_)[k].hi))
      return false;
  }
  return true;
}

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + shape[i].str();
  if (shape.size() == 1) s += ",";
  return s + ")";
}

bool same_shape(const Shape& a, const Shape& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

std::string ShapeTracker::str() const {
  std::ostringstream os;
  os << "ShapeTracker(shape=" << shape_str(shape_) << ", strides=" << shape_str(strides_)
     << ", offset=" << offset_.str();
  if (mask_) {
    os << ", mask=(";
    for (size_t k = 0; k < rank(); ++k)
      os << (k ? ", " : "") << "[" << (*mask_)[k].lo.str() << ", " << (*mask_)[k].hi.str() << ")";
    os << ")";
  }
  os << ")";
  return os.str();
}

}  // namespace luminal
