#include "compiler/autograd.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "core/errors.h"

namespace luminal {

namespace {

using Val = GradValue;

bool known_le(const Expr& a, const Expr& b) { return (b - a).range().lo >= 0; }
bool is_const(const Expr& e, int64_t v) { return e.is_const() && e.value() == v; }

// Builds backward nodes: primitives over (handle, view) values.
class Builder {
 public:
  explicit Builder(Graph& g) : g_(g) {}

  // A node's own output, row-major.
  Val node(NodeId id) {
    auto it = handles_.find(id);
    HandleId h = it != handles_.end() ? it->second : (handles_[id] = g_.handle_of(id));
    return {h, ShapeTracker::contiguous(g_.node(id).shape)};
  }
  // What node `id` reads on input `k`.
  Val input(NodeId id, size_t k) {
    const Edge& e = g_.node(id).inputs[k];
    ShapeTracker view = e.view;
    return {node(e.node).handle, view};
  }
  Val op(Op o, const Val& a) { return result(g_.add_op(o, {{a.handle, a.view}})); }
  Val op(Op o, const Val& a, const Val& b) {
    return result(g_.add_op(o, {{a.handle, a.view}, {b.handle, b.view}}));
  }
  Val reduce(Op o, const Val& a, size_t axis) {
    return result(g_.add_op(o, {{a.handle, a.view}}, int(axis)));
  }
  Val scalar(double v, Shape shape) {  // by value: callers pass node shapes
    ShapeTracker t = ShapeTracker::contiguous({});
    for (size_t i = 0; i < shape.size(); ++i) t = t.unsqueeze(i);
    return {g_.add_constant(v), t.expand(shape)};
  }
  Val scale(const Val& a, double c) { return op(Op::Mul, a, scalar(c, a.view.shape())); }
  Val reshape(const Val& a, const Shape& shape) {
    if (auto t = a.view.reshape(shape)) return {a.handle, *t};
    Val c = op(Op::Contiguous, a);
    return {c.handle, *c.view.reshape(shape)};
  }
  Val scatter(Val t, const ShapeTracker& view, Shape source);  // source by value: the node table moves

 private:
  Val result(HandleId h) {
    return {h, ShapeTracker::contiguous(g_.node(g_.node_of(h)).shape)};
  }
  Graph& g_;
  std::unordered_map<NodeId, HandleId> handles_;
};

// The transpose of reading `source` (row-major) through `view`: every source
// element receives the sum of the gradients `t` of the view elements that
// read it. Views are strided, so this is pads, slices, permutes and reshapes
// of `t`, plus sums over broadcast dims and over overlapping windows.
Val Builder::scatter(Val t, const ShapeTracker& view, Shape source) {
  Expr total = product(source);
  if (view.is_identity() && view.numel() == total) return reshape(t, source);
  Shape n = view.shape(), s = view.strides();
  Expr offset = view.offset();
  for (const Expr& d : n)
    if (is_const(d, 0)) return scalar(0.0, source);
  // Padded (masked) elements read no source element: drop them.
  if (view.mask()) {
    for (size_t d = 0; d < n.size(); ++d) {
      const Interval& m = (*view.mask())[d];
      if (is_const(m.lo, 0) && m.hi == n[d]) continue;
      t.view = t.view.slice(d, m.lo, m.hi, 1);
      offset = offset + m.lo * s[d];
      n[d] = m.hi - m.lo;
    }
  }
  // Broadcast dims read one element many times: sum over them.
  for (size_t d = n.size(); d-- > 0;) {
    if (!is_const(s[d], 0) || is_const(n[d], 1)) continue;
    t = reduce(Op::SumReduce, t, d);
    n.erase(n.begin() + d);
    s.erase(s.begin() + d);
  }
  // Size-1 dims carry no layout.
  Shape n1, s1;
  for (size_t d = 0; d < n.size(); ++d)
    if (!is_const(n[d], 1)) n1.push_back(n[d]), s1.push_back(s[d]);
  if (n1.size() != n.size()) t = reshape(t, n1);
  n = n1, s = s1;
  // Flipped dims: walk them forwards.
  for (size_t d = 0; d < n.size(); ++d) {
    if (s[d].range().hi > 0) continue;
    t.view = t.view.flip(d);
    offset = offset + (n[d] - 1) * s[d];
    s[d] = -s[d];
  }
  // Outermost (largest stride) first, as the source is laid out.
  std::vector<size_t> order(n.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return generic_magnitude(s[a]) > generic_magnitude(s[b]); });
  if (!std::is_sorted(order.begin(), order.end())) {
    t.view = t.view.permute(order);
    Shape pn, ps;
    for (size_t d : order) pn.push_back(n[d]), ps.push_back(s[d]);
    n = pn, s = ps;
  }
  // Dense (a permutation of the source): one reshape.
  Expr dense_extent = 1;
  bool dense = is_const(offset, 0);
  for (size_t d = n.size(); d-- > 0 && dense;) {
    dense = s[d] == dense_extent;
    dense_extent = dense_extent * n[d];
  }
  if (dense && dense_extent == total) return reshape(t, source);

  // Fold dims into a flat run of source elements, innermost first. `t` is
  // [n_0 .. n_d, extent]: the trailing run covers `extent` elements.
  Shape shape = n;
  shape.push_back(1);
  t = reshape(t, shape);
  Expr extent = 1;
  for (size_t d = n.size(); d-- > 0;) {
    const Expr& stride = s[d];
    Shape outer(n.begin(), n.begin() + d);
    Expr next = (n[d] - 1) * stride + extent;
    if (known_le(extent, stride)) {
      if (extent != stride) t.view = t.view.pad(d + 1, 0, stride - extent);
      Shape merged = outer;
      merged.push_back(n[d] * stride);
      t = reshape(t, merged);
    } else {
      // Overlapping windows: element (i, c*stride + r) lands in row i + c,
      // column r, so the result is a sum of `m` shifted copies.
      std::optional<int64_t> m = floordiv(extent + stride - 1, stride).as_const();
      if (!m || *m < 1 || *m > 256)
        throw ShapeError("[grad] cannot differentiate through the overlapping view " +
                         view.str());
      if (extent != stride * *m) t.view = t.view.pad(d + 1, 0, stride * *m - extent);
      Shape split = outer;
      split.insert(split.end(), {n[d], Expr(*m), stride});
      t = reshape(t, split);
      Shape row = outer;
      row.insert(row.end(), {n[d], stride});
      Val sum{};
      for (int64_t c = 0; c < *m; ++c) {
        Val piece = reshape({t.handle, t.view.slice(d + 1, c, c + 1, 1)}, row);
        piece.view = piece.view.pad(d, c, *m - 1 - c);
        sum = c == 0 ? piece : op(Op::Add, sum, piece);
      }
      Shape merged = outer;
      merged.push_back((n[d] + *m - 1) * stride);
      t = reshape(sum, merged);
    }
    if (t.view.shape()[d] != next) t.view = t.view.slice(d, 0, next, 1);
    extent = next;
  }
  // `t` covers source elements [offset, offset + extent).
  Expr after = total - offset - extent;
  if (!is_const(offset, 0) || !is_const(after, 0)) t.view = t.view.pad(0, offset, after);
  return reshape(t, source);
}

}  // namespace

std::vector<GradValue> add_gradients(Graph& g, HandleId loss, const ShapeTracker& loss_view,
                                     const std::vector<HandleId>& wrt) {
  if (!is_const(loss_view.numel(), 1))
    throw ShapeError("[grad] the loss must be a single element, got shape " +
                     shape_str(loss_view.shape()) + ": reduce it first (.sum() or .mean())");
  Builder b(g);
  NodeId loss_node = g.node_of(loss);
  std::vector<NodeId> order = g.topo_order();
  // Only nodes on a path from some `wrt` node to the loss get gradients.
  std::vector<bool> from_wrt(g.node_slots(), false), to_loss(g.node_slots(), false);
  for (HandleId h : wrt) from_wrt[g.node_of(h)] = true;
  for (NodeId id : order)
    for (const Edge& e : g.node(id).inputs)
      if (from_wrt[e.node]) from_wrt[id] = true;
  to_loss[loss_node] = true;
  for (auto it = order.rbegin(); it != order.rend(); ++it)
    if (to_loss[*it])
      for (const Edge& e : g.node(*it).inputs) to_loss[e.node] = true;

  std::unordered_map<NodeId, Val> grads;
  auto accumulate = [&](NodeId id, const Val& v) {
    auto it = grads.find(id);
    if (it == grads.end())
      grads.emplace(id, v);
    else
      it->second = b.op(Op::Add, it->second, v);
  };
  if (from_wrt[loss_node])
    accumulate(loss_node,
               b.scatter(b.scalar(1.0, loss_view.shape()), loss_view, g.node(loss_node).shape));

  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    NodeId id = *it;
    auto found = grads.find(id);
    if (!from_wrt[id] || !to_loss[id] || found == grads.end()) continue;
    const Val G = found->second;
    const Node n = g.node(id);  // a copy: adding nodes may move the node table
    auto flows = [&](size_t k) { return bool(from_wrt[n.inputs[k].node]); };
    auto send = [&](size_t k, const Val& edge_grad) {
      NodeId src = n.inputs[k].node;
      accumulate(src, b.scatter(edge_grad, n.inputs[k].view, g.node(src).shape));
    };
    auto x = [&](size_t k) { return b.input(id, k); };
    Val y = b.node(id);
    switch (n.op) {
      case Op::Log2:  // d log2(x) = 1 / (x ln 2)
        send(0, b.op(Op::Mul, G, b.scale(b.op(Op::Recip, x(0)), 1.0 / std::log(2.0))));
        break;
      case Op::Exp2:  // d 2^x = 2^x ln 2
        send(0, b.op(Op::Mul, G, b.scale(y, std::log(2.0))));
        break;
      case Op::Sin:  // cos x = sin(x + pi/2)
        send(0, b.op(Op::Mul, G,
                     b.op(Op::Sin, b.op(Op::Add, x(0), b.scalar(M_PI / 2, n.shape)))));
        break;
      case Op::Sqrt:  // 1 / (2 sqrt x)
        send(0, b.op(Op::Mul, G, b.scale(b.op(Op::Recip, y), 0.5)));
        break;
      case Op::Recip:  // -1/x^2 = -y^2
        send(0, b.op(Op::Mul, G, b.scale(b.op(Op::Mul, y, y), -1.0)));
        break;
      case Op::Add:
        for (size_t k = 0; k < 2; ++k)
          if (flows(k)) send(k, G);
        break;
      case Op::Mul:
        if (flows(0)) send(0, b.op(Op::Mul, G, x(1)));
        if (flows(1)) send(1, b.op(Op::Mul, G, x(0)));
        break;
      case Op::Mod:  // a - b*trunc(a/b): d/da = 1, d/db = -trunc(a/b) = (y - a)/b
        if (flows(0)) send(0, G);
        if (flows(1))
          send(1, b.op(Op::Mul, G,
                       b.op(Op::Mul, b.op(Op::Add, y, b.scale(x(0), -1.0)),
                            b.op(Op::Recip, x(1)))));
        break;
      case Op::LessThan:  // piecewise constant
        break;
      case Op::SumReduce:
      case Op::MaxReduce: {
        const Shape& in = n.inputs[0].view.shape();
        auto spread = [&](const Val& v) {
          return Val{v.handle, v.view.unsqueeze(size_t(n.axis)).expand(in)};
        };
        if (n.op == Op::SumReduce) {
          send(0, spread(G));
        } else {  // split evenly among the maxima (x == max <=> !(x < max)), as torch.amax
          Val below = b.op(Op::LessThan, x(0), spread(y));
          Val is_max = b.op(Op::Add, b.scalar(1.0, in), b.scale(below, -1.0));
          Val share = b.op(Op::Mul, G, b.op(Op::Recip, b.reduce(Op::SumReduce, is_max, n.axis)));
          send(0, b.op(Op::Mul, spread(share), is_max));
        }
        break;
      }
      case Op::Contiguous:
        send(0, G);
        break;
      case Op::Input:
      case Op::Constant:
        break;
    }
  }

  std::vector<GradValue> out;
  for (HandleId h : wrt) {
    NodeId id = g.node_of(h);
    auto it = grads.find(id);
    out.push_back(it != grads.end() ? it->second : b.scalar(0.0, g.node(id).shape));
  }
  return out;
}

}  // namespace luminal
