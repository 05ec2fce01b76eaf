#include "compiler/matmul_pattern.h"

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

void dense_matmul_operands(Graph& g) {
  std::vector<bool> needed = g.needed_by_outputs();
  std::vector<int> readers(g.node_slots(), 0);
  for (NodeId id = 0; id < NodeId(g.node_slots()); ++id)
    if (needed[id])
      for (const Edge& e : g.node(id).inputs) readers[e.node] += 1;
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

}  // namespace luminal
