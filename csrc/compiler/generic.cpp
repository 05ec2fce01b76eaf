#include "compiler/generic.h"

#include <cstring>
#include <limits>
#include <unordered_map>

#include "core/primitive_math.h"

namespace luminal {

namespace {

size_t hash_view(const ShapeTracker& v) {
  size_t h = v.offset().hash() ^ (v.is_masked() ? 0x51ed27 : 0);
  for (size_t k = 0; k < v.rank(); ++k)
    h = h * 1000003u ^ (v.shape()[k].hash() * 31 + v.strides()[k].hash());
  return h;
}

uint64_t bits(double x) {
  uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

bool cse_equal(const Node& a, const Node& b) {
  if (a.op != b.op || a.axis != b.axis || a.inputs.size() != b.inputs.size()) return false;
  if (!same_shape(a.shape, b.shape)) return false;
  if (a.op == Op::Constant) {
    if (a.symbolic.has_value() != b.symbolic.has_value()) return false;
    if (a.symbolic) return *a.symbolic == *b.symbolic;
    return bits(a.value) == bits(b.value);
  }
  for (size_t i = 0; i < a.inputs.size(); ++i)
    if (a.inputs[i].node != b.inputs[i].node || !(a.inputs[i].view == b.inputs[i].view))
      return false;
  return true;
}

size_t cse_hash(const Node& n) {
  size_t h = size_t(n.op) * 7919u + size_t(n.axis + 1);
  if (n.op == Op::Constant) h ^= n.symbolic ? n.symbolic->hash() : std::hash<uint64_t>()(bits(n.value));
  for (const Edge& e : n.inputs) h = h * 1000003u ^ (size_t(e.node) * 2654435761u + hash_view(e.view));
  return h;
}

// A numeric constant read through an unmasked view (so every element is `value`).
std::optional<double> uniform_constant(const Graph& g, const Edge& e) {
  const Node& n = g.node(e.node);
  if (n.op != Op::Constant || n.symbolic || e.view.is_masked()) return std::nullopt;
  return n.value;
}

// True when `e` reads its source whole, row-major, as it is stored.
bool reads_whole(const Graph& g, const Edge& e) {
  return e.view.is_identity() && same_shape(g.node(e.node).shape, e.view.shape());
}

// A node equal to reading `e` row-major: its source when it reads it whole,
// else a new Contiguous over it.
NodeId materialize(Graph& g, const Edge& e) {
  if (reads_whole(g, e)) return e.node;
  Node c;
  c.op = Op::Contiguous;
  c.inputs = {e};
  c.shape = e.view.shape();
  return g.add_node(std::move(c));
}

bool is_live_compute(const Node& n) {
  return n.alive && n.op != Op::Input && n.op != Op::Constant;
}

}  // namespace

void remove_unused_nodes(Graph& g) {
  std::vector<bool> needed = g.needed_by_outputs();
  for (NodeId id = 0; id < NodeId(g.node_slots()); ++id) {
    const Node& n = g.node(id);
    if (n.alive && !needed[id] && n.op != Op::Input) g.remove_node(id);
  }
}

void common_subexpression_elimination(Graph& g) {
  std::unordered_map<NodeId, NodeId> replacement;
  std::unordered_map<size_t, std::vector<NodeId>> seen;
  for (NodeId id : g.topo_order()) {
    Node& n = g.node_mut(id);
    if (n.op == Op::Input) continue;
    for (Edge& e : n.inputs)
      if (auto it = replacement.find(e.node); it != replacement.end()) e.node = it->second;
    auto& bucket = seen[cse_hash(n)];
    bool merged = false;
    for (NodeId other : bucket) {
      if (cse_equal(g.node(other), n)) {
        replacement[id] = other;
        merged = true;
        break;
      }
    }
    if (!merged) bucket.push_back(id);
  }
  g.replace_nodes(replacement);
}

void constant_folding(Graph& g) {
  std::unordered_map<NodeId, NodeId> replacement;
  for (NodeId id : g.topo_order()) {
    const Node& n = g.node(id);
    if (!is_live_compute(n)) continue;
    std::vector<double> in;
    for (const Edge& e : n.inputs) {
      if (auto v = uniform_constant(g, e)) in.push_back(*v);
    }
    if (in.size() != n.inputs.size()) continue;
    double out;
    if (is_unary(n.op) || n.op == Op::Contiguous) {
      out = apply_unary(n.op, float(in[0]));
    } else if (is_binary(n.op)) {
      out = apply_binary(n.op, float(in[0]), float(in[1]));
    } else {
      auto len = n.inputs[0].view.shape()[size_t(n.axis)].as_const();
      if (!len) continue;  // symbolic length: the sum depends on the binding
      if (n.op == Op::SumReduce)
        out = float(double(float(in[0])) * double(*len));
      else
        out = *len > 0 ? float(in[0]) : -std::numeric_limits<float>::infinity();
    }
    Node c;
    c.op = Op::Constant;
    c.value = float(out);
    c.shape = n.shape;
    replacement[id] = g.add_node(std::move(c));
  }
  g.replace_nodes(replacement);
}

void arithmetic_simplification(Graph& g) {
  std::unordered_map<NodeId, NodeId> replacement;
  for (NodeId id : g.topo_order()) {
    if (!is_live_compute(g.node(id))) continue;
    const Node n = g.node(id);  // copy: materialize() may grow the node table
    std::optional<Edge> keep;
    if (n.op == Op::Add || n.op == Op::Mul) {
      // x + 0 (a masked zero still reads 0) and x * 1 (unmasked only).
      for (int side = 0; side < 2 && !keep; ++side) {
        const Edge& c = n.inputs[side];
        const Node& cn = g.node(c.node);
        bool zero = cn.op == Op::Constant && !cn.symbolic && cn.value == 0.0;
        auto one = uniform_constant(g, c);
        if ((n.op == Op::Add && zero) || (n.op == Op::Mul && one && *one == 1.0))
          keep = n.inputs[1 - side];
      }
    }
    if (keep) replacement[id] = materialize(g, *keep);
  }
  g.replace_nodes(replacement);
}

void remove_redundant_contiguous(Graph& g) {
  std::unordered_map<NodeId, NodeId> replacement;
  for (NodeId id : g.topo_order()) {
    const Node& n = g.node(id);
    if (n.op != Op::Contiguous || !n.alive) continue;
    const Edge& e = n.inputs[0];
    if (reads_whole(g, e)) replacement[id] = e.node;
  }
  g.replace_nodes(replacement);
}

void generic_compile(Graph& g) {
  for (int round = 0; round < 100; ++round) {
    uint64_t before = g.version();
    remove_unused_nodes(g);
    common_subexpression_elimination(g);
    constant_folding(g);
    arithmetic_simplification(g);
    remove_redundant_contiguous(g);
    if (g.version() == before) return;
  }
}

}  // namespace luminal
