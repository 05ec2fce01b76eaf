#include "core/executor.h"

#include <set>

#include <cmath>
#include <limits>
#include <string>

#include "core/errors.h"
#include "core/interrupt.h"
#include "core/primitive_math.h"
#include "core/quant.h"

namespace luminal {

namespace {

// Walks a view in row-major logical order, tracking the physical offset
// incrementally; at() is -1 where the mask makes the element read 0.
class Cursor {
 public:
  Cursor(const ConcreteView& v, size_t source_size, const char* op)
      : v_(v), idx_(v.shape.size(), 0), phys_(v.offset), source_size_(source_size), op_(op) {}

  float read(const float* src) const {
    if (!v_.mask.empty())
      for (size_t k = 0; k < idx_.size(); ++k)
        if (idx_[k] < v_.mask[k].first || idx_[k] >= v_.mask[k].second) return 0.0f;
    if (phys_ < 0 || size_t(phys_) >= source_size_)
      throw ExecutionError(std::string("[") + op_ + "] internal error: view reads element " +
                           std::to_string(phys_) + " of a buffer of " +
                           std::to_string(source_size_));
    return src[phys_];
  }

  void next() {
    for (size_t k = idx_.size(); k-- > 0;) {
      phys_ += v_.strides[k];
      if (++idx_[k] < v_.shape[k]) return;
      phys_ -= v_.strides[k] * v_.shape[k];
      idx_[k] = 0;
    }
  }

 private:
  const ConcreteView& v_;
  std::vector<int64_t> idx_;
  int64_t phys_;
  size_t source_size_;
  const char* op_;
};

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n))
      throw ExecutionError("[execute] a shape's element count overflows int64");
  return n;
}

std::string concrete_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

std::vector<float> ReferenceExecutor::gather(const std::vector<float>& src,
                                             const ConcreteView& view, const char* op) {
  std::vector<float> out(size_t(view.numel()));
  Cursor c(view, src.size(), op);
  for (float& x : out) {
    x = c.read(src.data());
    c.next();
  }
  return out;
}

void ReferenceExecutor::check_input(const Graph& g, NodeId id, const std::vector<int64_t>& shape) {
  const Node& n = g.node(id);
  auto it = g.input_data().find(id);
  if (it == g.input_data().end())
    throw ExecutionError("[execute] input " + g.input_label(id) + " with shape " +
                         shape_str(n.shape) + " was never set: call .set(data) on it");
  const QuantFormat* q = quant_format(n.dtype);
  int64_t want = q ? quant_storage_floats(*q, numel(shape)) : numel(shape);
  if (q && numel(shape) % q->block_values != 0)
    throw ExecutionError("[execute] " + std::string(q->name) + " input " + g.input_label(id) +
                         " needs a multiple of " + std::to_string(q->block_values) +
                         " values, its shape is " + concrete_str(shape));
  if (int64_t(it->second->size()) != want)
    throw ExecutionError("[execute] input " + g.input_label(id) + " holds " +
                         std::to_string(it->second->size()) +
                         (q ? " storage floats" : " elements") + " but its shape " +
                         shape_str(n.shape) + " is " + concrete_str(shape) +
                         " for the bound dims; set it again or rebind the dims");
}

std::vector<std::vector<int64_t>> ReferenceExecutor::validate(const Graph& g,
                                                               const std::vector<NodeId>& order) {
  std::vector<std::vector<int64_t>> shapes(g.node_slots());
  for (NodeId id : order) {
    const Node& n = g.node(id);
    for (const Expr& d : n.shape) {
      int64_t v = d.eval(g.dims());
      if (v < 0)
        throw ExecutionError(std::string("[") + op_name(n.op) + "] dim " + d.str() +
                             " evaluates to " + std::to_string(v) + " < 0");
      shapes[id].push_back(v);
    }
    if (n.op == Op::Input) check_input(g, id, shapes[id]);
  }

  return shapes;
}

void ReferenceExecutor::run(Graph& g) {
  g.results_.clear();
  std::vector<NodeId> outputs(g.outputs_.begin(), g.outputs_.end());
  g.results_ = evaluate(g, outputs);
}

std::unordered_map<NodeId, Buffer> ReferenceExecutor::evaluate(Graph& g,
                                                              const std::vector<NodeId>& keep) {
  std::set<NodeId> kept(keep.begin(), keep.end());
  std::vector<bool> needed = g.needed_by_outputs();
  std::vector<NodeId> order;
  for (NodeId id : g.topo_order())
    if (needed[id]) order.push_back(id);

  // Validate everything first, so a bad run fails before any work.
  std::vector<std::vector<int64_t>> shapes = validate(g, order);

  // Free each buffer after its last consumer, unless it is an output.
  std::vector<int> uses(g.nodes_.size(), 0);
  for (NodeId id : order)
    for (const Edge& e : g.nodes_[id].inputs) ++uses[e.node];

  std::unordered_map<NodeId, Buffer> live;
  for (NodeId id : order) {
    poll_interrupt();
    const Node& n = g.nodes_[id];
    Buffer out{nullptr, shapes[id]};
    const int64_t count = numel(shapes[id]);
    if (n.op == Op::Input) {
      out.data = g.input_data_.at(id);
      if (const QuantFormat* q = quant_format(n.dtype))
        out.data = std::make_shared<std::vector<float>>(dequantize(*q, *out.data, count));
    } else if (n.op == Op::Constant) {
      out.data = std::make_shared<std::vector<float>>(constant_data(n, g.dims_, count));
    } else {
      std::vector<ConcreteView> views;
      for (const Edge& e : n.inputs) views.push_back(e.view.resolve(g.dims_));
      auto result = std::make_shared<std::vector<float>>(size_t(count));
      const char* name = op_name(n.op);
      const std::vector<float>& a = *live.at(n.inputs[0].node).data;
      if (is_binary(n.op)) {
        const std::vector<float>& b = *live.at(n.inputs[1].node).data;
        Cursor ca(views[0], a.size(), name), cb(views[1], b.size(), name);
        for (float& x : *result) {
          x = apply_binary(n.op, ca.read(a.data()), cb.read(b.data()));
          ca.next();
          cb.next();
        }
      } else if (is_reduce(n.op)) {
        // Move the reduced axis last, then fold each run of `len` elements.
        std::vector<size_t> axes;
        for (size_t k = 0; k < views[0].shape.size(); ++k)
          if (int(k) != n.axis) axes.push_back(k);
        axes.push_back(size_t(n.axis));
        ConcreteView v;
        for (size_t k : axes) {
          v.shape.push_back(views[0].shape[k]);
          v.strides.push_back(views[0].strides[k]);
          if (!views[0].mask.empty()) v.mask.push_back(views[0].mask[k]);
        }
        v.offset = views[0].offset;
        const int64_t len = views[0].shape[size_t(n.axis)];
        Cursor c(v, a.size(), name);
        const bool is_max = n.op == Op::MaxReduce;
        for (float& x : *result) {
          double acc = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
          for (int64_t k = 0; k < len; ++k) {
            double val = c.read(a.data());
            c.next();
            if (!is_max)
              acc += val;
            else if (std::isnan(val) || val > acc || std::isnan(acc))
              acc = std::isnan(acc) ? acc : val;
          }
          x = float(acc);
        }
      } else {
        Cursor c(views[0], a.size(), name);
        for (float& x : *result) {
          x = apply_unary(n.op, c.read(a.data()));
          c.next();
        }
      }
      out.data = std::move(result);
    }
    live[id] = out;
    for (const Edge& e : n.inputs)
      if (--uses[e.node] == 0 && !kept.count(e.node)) live.erase(e.node);
  }
  std::unordered_map<NodeId, Buffer> results;
  for (NodeId id : kept)
    if (auto it = live.find(id); it != live.end()) results[id] = it->second;
  return results;
}

}  // namespace luminal
