#include "compiler/kernel.h"

#include <algorithm>

namespace luminal {

const std::string Kernel::kIndexVar = "@i";
const std::string Kernel::kReduceVar = "@r";

namespace {

// Row-major multi-index of flat position `p` in `shape`.
std::vector<Expr> unravel(const Expr& p, const Shape& shape) {
  std::vector<Expr> idx(shape.size(), Expr(0));
  Expr stride = 1;
  for (size_t k = shape.size(); k-- > 0;) {
    idx[k] = mod(floordiv(p, stride), shape[k]);
    stride = stride * shape[k];
  }
  if (!shape.empty()) idx[0] = floordiv(p, product(Shape(shape.begin() + 1, shape.end())));
  return idx;
}

Expr row_major(const std::vector<Expr>& idx, const Shape& shape) {
  Expr p = 0;
  for (size_t k = 0; k < shape.size(); ++k) p = p * shape[k] + idx[k];
  return p;
}

bool broadcasts(const ShapeTracker& view) {
  for (size_t k = 0; k < view.rank(); ++k) {
    const Expr& s = view.strides()[k];
    if (s.is_const() && s.value() == 0 && !(view.shape()[k].is_const() && view.shape()[k].value() == 1))
      return true;
  }
  return false;
}

Expr loop_var(const std::string& name, const Expr& extent) {
  auto n = extent.as_const();
  return Expr::var(name, 0, n ? std::max<int64_t>(*n - 1, 0) : Range::kInf);
}

class KernelBuilder {
 public:
  KernelBuilder(const Graph& g, const std::vector<bool>& materialized, Kernel& k)
      : g_(g), materialized_(materialized), k_(k) {}

  // The value of node `id` at logical multi-index `idx`, needed where `need` is 1.
  int value_of(NodeId id, const std::vector<Expr>& idx, const Expr& need) {
    const Node& n = g_.node(id);
    if (n.op == Op::Constant) return constant(n);
    if (materialized_[id]) return load(id, row_major(idx, n.shape), need);
    if (is_binary(n.op)) {
      int a = read(n.inputs[0], idx, need), b = read(n.inputs[1], idx, need);
      return push({.kind = KValue::Kind::Binary, .op = n.op, .a = a, .b = b});
    }
    int a = read(n.inputs[0], idx, need);
    if (n.op == Op::Contiguous) return a;
    return push({.kind = KValue::Kind::Unary, .op = n.op, .a = a});
  }

  // The value a consumer sees through edge `e` at its logical index `idx`.
  int read(const Edge& e, const std::vector<Expr>& idx, const Expr& need) {
    const ShapeTracker& v = e.view;
    Expr valid = v.valid_expr(idx);
    Expr p = v.index_expr(idx);
    const Node& src = g_.node(e.node);
    Expr inner_need = logical_and(need, valid);
    int x;
    if (src.op == Op::Constant)
      x = constant(src);
    else if (materialized_[e.node])
      return load(e.node, p, inner_need);  // the load itself reads 0 when invalid
    else
      x = value_of(e.node, unravel(p, src.shape), inner_need);
    if (valid.is_const() && valid.value() == 1) return x;
    return push({.kind = KValue::Kind::Guard, .a = x, .valid = valid});
  }

 private:
  int constant(const Node& n) {
    if (n.symbolic) return push({.kind = KValue::Kind::DimValue, .dim = *n.symbolic});
    return push({.kind = KValue::Kind::Literal, .literal = n.value});
  }

  int load(NodeId id, const Expr& index, const Expr& valid) {
    auto it = std::find(k_.inputs.begin(), k_.inputs.end(), id);
    int buffer = int(it - k_.inputs.begin());
    if (it == k_.inputs.end()) k_.inputs.push_back(id);
    return push({.kind = KValue::Kind::Load, .buffer = buffer, .index = index, .valid = valid});
  }

  // Append a value, reusing an identical earlier one (CSE inside the kernel).
  int push(KValue v) {
    for (size_t j = 0; j < k_.body.size(); ++j) {
      const KValue& o = k_.body[j];
      if (o.kind == v.kind && o.op == v.op && o.a == v.a && o.b == v.b && o.buffer == v.buffer &&
          o.index == v.index && o.valid == v.valid && o.dim == v.dim &&
          (o.literal == v.literal || (o.literal != o.literal && v.literal != v.literal)))
        return int(j);
    }
    k_.body.push_back(std::move(v));
    return int(k_.body.size() - 1);
  }

  const Graph& g_;
  const std::vector<bool>& materialized_;
  Kernel& k_;
};

}  // namespace

std::vector<bool> materialized_nodes(const Graph& g, const std::vector<bool>& needed) {
  std::vector<int> readers(g.node_slots(), 0);
  std::vector<bool> out(g.node_slots(), false);
  // A value read through a broadcast would be recomputed for every copy; keep
  // it in a buffer unless it is one cheap op over buffers and constants.
  auto cheap = [&](NodeId id) {
    const Node& n = g.node(id);
    if (is_reduce(n.op) || n.op == Op::Input || n.op == Op::Constant) return false;
    for (const Edge& e : n.inputs) {
      const Node& src = g.node(e.node);
      if (src.op != Op::Input && src.op != Op::Constant && !is_reduce(src.op)) return false;
    }
    return true;
  };
  for (NodeId id = 0; id < NodeId(g.node_slots()); ++id) {
    if (!needed[id]) continue;
    for (const Edge& e : g.node(id).inputs) {
      readers[e.node] += 1;
      if (broadcasts(e.view) && !cheap(e.node)) out[e.node] = true;
    }
  }
  for (NodeId id = 0; id < NodeId(g.node_slots()); ++id) {
    if (!needed[id]) continue;
    const Node& n = g.node(id);
    if (n.op == Op::Constant) {
      out[id] = g.outputs().count(id) > 0;
      continue;
    }
    if (n.op == Op::Input || is_reduce(n.op) || g.outputs().count(id) || readers[id] > 1)
      out[id] = true;
  }
  return out;
}

std::vector<Kernel> build_kernels(const Graph& g) {
  std::vector<bool> needed = g.needed_by_outputs();
  std::vector<bool> materialized = materialized_nodes(g, needed);
  std::vector<Kernel> kernels;
  for (NodeId id : g.topo_order()) {
    const Node& n = g.node(id);
    if (!needed[id] || !materialized[id] || n.op == Op::Input || n.op == Op::Constant) continue;
    Kernel k;
    k.output = id;
    k.shape = n.shape;
    Expr i = loop_var(Kernel::kIndexVar, product(n.shape));
    std::vector<Expr> idx = unravel(i, n.shape);
    if (is_reduce(n.op)) {
      const Edge& e = n.inputs[0];
      k.reduce = n.op;
      k.reduce_length = e.view.shape()[size_t(n.axis)];
      idx.insert(idx.begin() + n.axis, loop_var(Kernel::kReduceVar, k.reduce_length));
      KernelBuilder(g, materialized, k).read(e, idx, Expr(1));
    } else {
      std::vector<bool> keep = materialized;
      keep[id] = false;  // compute this node here instead of loading it
      KernelBuilder(g, keep, k).value_of(id, idx, Expr(1));
    }
    kernels.push_back(std::move(k));
  }
  return kernels;
}

}  // namespace luminal
