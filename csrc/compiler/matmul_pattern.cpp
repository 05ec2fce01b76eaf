#include "compiler/matmul_pattern.h"

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
  if (mul.op != Op::Mul || readers[e.node] != 1 || !e.view.is_identity() || rank < 3 ||
      size_t(s.axis) != rank - 2 || g.outputs().count(e.node))
    return std::nullopt;
  const Edge &ea = mul.inputs[0], &eb = mul.inputs[1];
  for (const Edge* x : {&ea, &eb}) {
    const Node& src = g.node(x->node);
    if (x->view.is_masked() || src.op == Op::Constant) return std::nullopt;
  }
  // A must not vary along n, B not along m (unless those dims are 1).
  auto flat_along = [&](const ShapeTracker& v, size_t axis) {
    return is_zero(v.strides()[axis]) || is_one(v.shape()[axis]);
  };
  bool ab = flat_along(ea.view, rank - 1) && flat_along(eb.view, rank - 3);
  bool ba = flat_along(eb.view, rank - 1) && flat_along(ea.view, rank - 3);
  if (!ab && !ba) return std::nullopt;
  const Edge& a = ab ? ea : eb;
  const Edge& b = ab ? eb : ea;
  return MatmulPattern{id, a.node, b.node, a.view, b.view};
}

}  // namespace luminal
