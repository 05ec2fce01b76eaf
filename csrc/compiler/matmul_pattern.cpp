#include "compiler/matmul_pattern.h"

#include <algorithm>
#include <unordered_map>

namespace luminal {

namespace {
bool is_zero(const Expr& e) { return e.is_const() && e.value() == 0; }
bool is_one(const Expr& e) { return e.is_const() && e.value() == 1; }
}  // namespace

std::optional<MatmulPattern> match_matmul(const Graph& g, NodeId id,
                                          const std::vector<int>& readers) {
  const Node& s = g.node(id);
  if (s.op != Op::SumReduce) return std::nullopt;
  const Edge& e = s.inputs[0];
  const Node& mul = g.node(e.node);
  size_t rank = e.view.rank();
  // The reduce must read the Mul as it is (not through a reshape).
  if (mul.op != Op::Mul || readers[e.node] != 1 || !e.view.is_identity() || rank < 3 ||
      !same_shape(e.view.shape(), mul.shape) ||
      size_t(s.axis) + 3 < rank || g.outputs().count(e.node))
    return std::nullopt;
  const Edge &ea = mul.inputs[0], &eb = mul.inputs[1];
  for (const Edge* x : {&ea, &eb}) {
    const Node& src = g.node(x->node);
    if (x->view.is_masked() || src.op == Op::Constant) return std::nullopt;
  }
  // Of the last three axes, `k` is reduced and `m` < `n` are kept, so
  // C[m, n] = sum_k A[m, k] B[k, n]. The forward matmul reduces the middle
  // axis; its gradients reduce the first or the last one.
  size_t k = size_t(s.axis), m = rank - 3, n = rank - 1;
  if (k == m) m = rank - 2;
  if (k == n) n = rank - 2;
  // A must not vary along n, B not along m (unless those dims are 1).
  auto flat_along = [&](const ShapeTracker& v, size_t axis) {
    return is_zero(v.strides()[axis]) || is_one(v.shape()[axis]);
  };
  bool ab = flat_along(ea.view, n) && flat_along(eb.view, m);
  bool ba = flat_along(eb.view, n) && flat_along(ea.view, m);
  if (!ab && !ba) return std::nullopt;
  const Edge& a = ab ? ea : eb;
  const Edge& b = ab ? eb : ea;
  // Both views in the canonical (batch..., m, k, n) order.
  std::vector<size_t> order;
  for (size_t d = 0; d + 3 < rank; ++d) order.push_back(d);
  order.insert(order.end(), {m, k, n});
  return MatmulPattern{id,    a.node, b.node, a.view.permute(order), b.view.permute(order),
                       ab ? 0u : 1u, order};
}

std::vector<int> reader_counts(const Graph& g, const std::vector<bool>& needed) {
  std::vector<int> readers(g.node_slots(), 0);
  for (NodeId id = 0; id < NodeId(g.node_slots()); ++id)
    if (needed[id])
      for (const Edge& e : g.node(id).inputs) readers[e.node] += 1;
  return readers;
}

namespace {

// Autodiff sums a weight's gradient over each broadcast axis in turn (over
// sequence, then over batch): a batch of GEMMs, then a sum of their results.
// When the product's operands can view those adjacent axes as one, sum once
// over the merged axis instead: one GEMM with a long k.
bool merge_product_sums(Graph& g) {
  std::vector<bool> needed = g.needed_by_outputs();
  std::vector<int> readers = reader_counts(g, needed);
  auto sole_identity_read = [&](const Edge& e) {
    return readers[e.node] == 1 && e.view.is_identity() && !g.outputs().count(e.node) &&
           same_shape(e.view.shape(), g.node(e.node).shape);
  };
  std::unordered_map<NodeId, NodeId> replacement;
  size_t slots = g.node_slots();  // merges add nodes: visit only the ones there before
  for (NodeId id = 0; id < NodeId(slots); ++id) {
    if (!needed[id] || g.node(id).op != Op::SumReduce) continue;
    const Edge& outer_edge = g.node(id).inputs[0];
    const Node& inner = g.node(outer_edge.node);
    if (inner.op != Op::SumReduce || !sole_identity_read(outer_edge)) continue;
    const Edge& mul_edge = inner.inputs[0];
    if (g.node(mul_edge.node).op != Op::Mul || !sole_identity_read(mul_edge)) continue;
    // In the Mul's axes the two sums cover `first` and `first + 1`.
    size_t a1 = size_t(inner.axis), a2 = size_t(g.node(id).axis);
    if (a2 + 1 != a1 && a2 != a1) continue;
    size_t first = a2 + 1 == a1 ? a2 : a1;
    Node mul = g.node(mul_edge.node);  // copies: adding nodes moves the table
    Shape merged(mul.shape.begin(), mul.shape.begin() + first);
    merged.push_back(mul.shape[first] * mul.shape[first + 1]);
    merged.insert(merged.end(), mul.shape.begin() + first + 2, mul.shape.end());
    bool ok = true;
    for (Edge& in : mul.inputs) {
      std::optional<ShapeTracker> v = in.view.reshape(merged);
      ok = ok && v.has_value();
      if (v) in.view = *v;
    }
    if (!ok) continue;
    mul.shape = merged;
    NodeId mul_id = g.add_node(std::move(mul));
    Node sum = g.node(id);
    sum.axis = int(first);
    sum.inputs = {{mul_id, ShapeTracker::contiguous(merged)}};
    replacement[id] = g.add_node(std::move(sum));
  }
  g.replace_nodes(replacement);
  return !replacement.empty();
}

// The axis order `p` when `v` reads a row-major buffer of `shape` as its
// permutation (v = contiguous(shape).permute(p)), else nothing.
std::optional<std::vector<size_t>> permutation_read(const ShapeTracker& v, const Shape& shape) {
  if (v.is_masked() || !(v.offset() == Expr(0)) || v.rank() != shape.size()) return std::nullopt;
  ShapeTracker row_major = ShapeTracker::contiguous(shape);
  std::vector<size_t> p;
  for (size_t a = 0; a < v.rank(); ++a) {
    size_t found = shape.size();
    for (size_t b = 0; b < shape.size(); ++b)
      if (!is_one(shape[b]) && v.shape()[a] == shape[b] && v.strides()[a] == row_major.strides()[b])
        found = b;
    if (found == shape.size()) return std::nullopt;  // size-1 dims are ambiguous: leave them
    p.push_back(found);
  }
  return p;
}

// A product whose every reader reads it transposed (a weight gradient
// computed as (in, out) for a weight stored (out, in), read by the
// optimizer) is computed in the readers' order instead: BLAS writes the
// transpose for free, and the readers read contiguously.
void orient_products(Graph& g) {
  std::vector<bool> needed = g.needed_by_outputs();
  std::vector<int> readers = reader_counts(g, needed);
  std::unordered_map<NodeId, std::vector<std::pair<NodeId, size_t>>> reads;  // node -> (reader, input)
  for (NodeId id = 0; id < NodeId(g.node_slots()); ++id)
    if (needed[id])
      for (size_t k = 0; k < g.node(id).inputs.size(); ++k)
        reads[g.node(id).inputs[k].node].push_back({id, k});
  size_t slots = g.node_slots();
  for (NodeId id = 0; id < NodeId(slots); ++id) {
    if (!needed[id] || g.outputs().count(id) || !match_matmul(g, id, readers)) continue;
    Node sum = g.node(id);  // copies: adding nodes moves the table
    std::optional<std::vector<size_t>> order;
    bool agree = true;
    for (auto [reader, k] : reads[id]) {
      auto p = permutation_read(g.node(reader).inputs[k].view, sum.shape);
      agree = p && (!order || *p == *order);
      if (!agree) break;
      order = p;
    }
    if (!agree || !order || std::is_sorted(order->begin(), order->end())) continue;
    // The Mul's axes: the output's, permuted, with the reduced one kept in place.
    size_t axis = size_t(sum.axis);
    std::vector<size_t> out_axes, mul_order;
    for (size_t d = 0; d <= sum.shape.size(); ++d)
      if (d != axis) out_axes.push_back(d);
    for (size_t d : *order) mul_order.push_back(out_axes[d]);
    mul_order.insert(mul_order.begin() + axis, axis);
    Node mul = g.node(sum.inputs[0].node);
    for (Edge& in : mul.inputs) in.view = in.view.permute(mul_order);
    Shape mul_shape;
    for (size_t d : mul_order) mul_shape.push_back(mul.shape[d]);
    mul.shape = mul_shape;
    NodeId mul_id = g.add_node(std::move(mul));
    Shape out_shape;
    for (size_t d : *order) out_shape.push_back(sum.shape[d]);
    sum.shape = out_shape;
    sum.inputs = {{mul_id, ShapeTracker::contiguous(mul_shape)}};
    NodeId sum_id = g.add_node(std::move(sum));
    std::vector<int> new_readers(g.node_slots(), 0);
    new_readers[mul_id] = 1;
    if (!match_matmul(g, sum_id, new_readers)) continue;  // left unused
    for (auto [reader, k] : reads[id])
      g.node_mut(reader).inputs[k] = {sum_id, ShapeTracker::contiguous(out_shape)};
  }
}

}  // namespace

void dense_matmul_operands(Graph& g) {
  while (merge_product_sums(g)) {  // once per extra merged axis
  }
  orient_products(g);
  std::vector<bool> needed = g.needed_by_outputs();
  std::vector<int> readers = reader_counts(g, needed);
  std::unordered_map<NodeId, NodeId> replacement;
  size_t slots = g.node_slots();
  for (NodeId id = 0; id < NodeId(slots); ++id) {
    if (!needed[id]) continue;
    std::optional<MatmulPattern> mm = match_matmul(g, id, readers);
    if (!mm) continue;
    size_t r = mm->a_view.rank();
    // A is (m, k) at r-3, r-2 and flat along n; B is (k, n) at r-2, r-1 and flat along m.
    auto friendly = [&](const ShapeTracker& v, size_t row, size_t col) {
      return is_one(v.strides()[col]) || is_one(v.strides()[row]) || is_one(v.shape()[col]) ||
             is_one(v.shape()[row]);
    };
    bool dense_a = friendly(mm->a_view, r - 3, r - 2), dense_b = friendly(mm->b_view, r - 2, r - 1);
    if (dense_a && dense_b) continue;
    NodeId mul_id = g.node(id).inputs[0].node;
    Node mul = g.node(mul_id);  // a copy: adding nodes moves the table
    std::vector<size_t> inverse(r);
    for (size_t j = 0; j < r; ++j) inverse[mm->order[j]] = j;
    auto copy_operand = [&](size_t input, const ShapeTracker& canonical, size_t flat_axis) {
      Node c;
      c.op = Op::Contiguous;
      ShapeTracker read = canonical.slice(flat_axis, 0, 1, 1);
      c.shape = read.shape();
      c.inputs = {{mul.inputs[input].node, read}};
      NodeId cid = g.add_node(std::move(c));
      ShapeTracker view =
          ShapeTracker::contiguous(read.shape()).expand(canonical.shape()).permute(inverse);
      mul.inputs[input] = {cid, view};
    };
    if (!dense_a) copy_operand(mm->a_input, mm->a_view, r - 1);
    if (!dense_b) copy_operand(1 - mm->a_input, mm->b_view, r - 3);
    replacement[mul_id] = g.add_node(std::move(mul));
  }
  g.replace_nodes(replacement);
}

BlasMatrix as_blas(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride) {
  if (rows == 1) row_stride = cols;  // strides of size-1 dims never matter
  if (cols == 1) col_stride = 1;
  BlasMatrix m;
  if (col_stride == 1 && row_stride >= std::max<int64_t>(cols, 1)) {
    m = {true, false, row_stride};
  } else if (row_stride == 1 && col_stride >= std::max<int64_t>(rows, 1)) {
    m = {true, true, col_stride};
  }
  m.ok = m.ok && m.ld < (int64_t(1) << 31);
  return m;
}

std::pair<int64_t, int64_t> BlasProduct::offsets(int64_t t) const {
  int64_t oa = a_offset, ob = b_offset;
  for (size_t d = batch_shape.size(); d-- > 0;) {
    int64_t i = t % batch_shape[d];
    t /= batch_shape[d];
    oa += i * a_strides[d];
    ob += i * b_strides[d];
  }
  return {oa, ob};
}

std::optional<BlasProduct> blas_product(const MatmulPattern& mm, const Bindings& dims) {
  ConcreteView va = mm.a_view.resolve(dims), vb = mm.b_view.resolve(dims);
  size_t r = va.shape.size();
  BlasProduct p;
  p.m = va.shape[r - 3];
  p.k = va.shape[r - 2];
  p.n = vb.shape[r - 1];
  const int64_t limit = int64_t(1) << 31;
  if (p.m >= limit || p.n >= limit || p.k >= limit) return std::nullopt;
  p.a = as_blas(p.m, p.k, va.strides[r - 3], va.strides[r - 2]);
  p.b = as_blas(p.k, p.n, vb.strides[r - 2], vb.strides[r - 1]);
  if (!p.a.ok || !p.b.ok) return std::nullopt;
  p.a_offset = va.offset;
  p.b_offset = vb.offset;
  // Batch dims fold into m from the innermost out, while B does not vary
  // along them and A's rows continue one another: grouped-query attention's
  // (kv heads, heads per kv head, 1 query row) becomes one product of
  // (heads per kv head) rows per kv head, one BLAS call for all of them.
  bool fold = !p.a.trans;
  for (size_t d = r - 3; d-- > 0;) {
    if (va.shape[d] == 1) continue;  // a size-1 dim's strides never matter
    // One row's stride is free: take the distance to the next batch's row
    // (attention weights narrowed to the cache's past part: rows P + 1 apart).
    if (fold && p.m == 1 && vb.strides[d] == 0 && va.strides[d] >= std::max<int64_t>(p.k, 1) &&
        va.strides[d] < limit)
      p.a.ld = va.strides[d];
    fold = fold && vb.strides[d] == 0 && va.strides[d] == p.m * p.a.ld && p.m * va.shape[d] < limit;
    if (fold) {
      p.m *= va.shape[d];
      continue;
    }
    p.batch_shape.insert(p.batch_shape.begin(), va.shape[d]);
    p.a_strides.insert(p.a_strides.begin(), va.strides[d]);
    p.b_strides.insert(p.b_strides.begin(), vb.strides[d]);
    p.batches *= va.shape[d];
  }
  return p;
}

}  // namespace luminal
