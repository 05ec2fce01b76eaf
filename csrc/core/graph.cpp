#include "core/graph.h"

#include <algorithm>

#include "core/errors.h"

namespace luminal {

HandleId Graph::new_handle(NodeId node) {
  handles_.push_back(node);
  return HandleId(handles_.size() - 1);
}

void Graph::changed() {
  ++version_;
  results_.clear();
}

NodeId Graph::add_node(Node node) {
  nodes_.push_back(std::move(node));
  changed();
  return NodeId(nodes_.size() - 1);
}

HandleId Graph::add_input(const Shape& shape, const std::string& name, const std::string& dtype,
                          bool parameter) {
  Node n;
  n.op = Op::Input;
  n.shape = shape;
  n.name = name;
  n.dtype = dtype;
  n.parameter = parameter;
  return new_handle(add_node(std::move(n)));
}

HandleId Graph::add_constant(double value) {
  Node n;
  n.op = Op::Constant;
  n.value = value;
  return new_handle(add_node(std::move(n)));
}

HandleId Graph::add_symbolic_constant(const Expr& value) {
  if (value.is_const()) return add_constant(double(value.value()));
  Node n;
  n.op = Op::Constant;
  n.symbolic = value;
  return new_handle(add_node(std::move(n)));
}

HandleId Graph::add_iota(const Expr& n) {
  if (auto c = n.as_const(); c && *c < 0)
    throw std::invalid_argument("[iota] the length must be >= 0, got " + n.str());
  Node node;
  node.op = Op::Constant;
  node.shape = {n};
  node.symbolic = Expr::var(kElementVar, 0);
  NodeId id = add_node(std::move(node));
  iotas_.push_back(id);
  return new_handle(id);
}

std::vector<float> constant_data(const Node& n, const Bindings& dims, int64_t count) {
  if (!n.symbolic) return std::vector<float>(size_t(count), float(n.value));
  if (!is_iota(n)) return std::vector<float>(size_t(count), float(n.symbolic->eval(dims)));
  std::vector<float> out(static_cast<size_t>(count));
  for (int64_t z = 0; z < count; ++z) out[size_t(z)] = float(z);
  return out;
}

HandleId Graph::add_op(Op op, const std::vector<std::pair<HandleId, ShapeTracker>>& inputs,
                       int axis) {
  std::string tag = std::string("[") + op_name(op) + "] ";
  if (op == Op::Input || op == Op::Constant)
    throw std::invalid_argument(tag + "leaves are made with add_input/add_constant");
  if (int(inputs.size()) != arity(op))
    throw std::invalid_argument(tag + "takes " + std::to_string(arity(op)) + " inputs, got " +
                                std::to_string(inputs.size()));
  Node n;
  n.op = op;
  for (const auto& [h, view] : inputs) {
    NodeId id = node_of(h);
    if (!nodes_[id].alive)
      throw std::invalid_argument(tag + "an input tensor was removed by a compiler; build the "
                                  "whole graph before compile()");
    n.inputs.push_back({id, view});
  }
  const Shape& in = n.inputs[0].view.shape();
  if (is_binary(op)) {
    const Shape& other = n.inputs[1].view.shape();
    if (!same_shape(in, other))
      throw ShapeError(tag + "input shapes " + shape_str(in) + " and " + shape_str(other) +
                       " differ");
    n.shape = in;
  } else if (is_reduce(op)) {
    if (axis < 0 || axis >= int(in.size()))
      throw ShapeError(tag + "axis " + std::to_string(axis) + " is out of range for shape " +
                       shape_str(in));
    n.axis = axis;
    n.shape = in;
    n.shape.erase(n.shape.begin() + axis);
  } else {
    n.shape = in;
  }
  return new_handle(add_node(std::move(n)));
}

NodeId Graph::node_of(HandleId h) const {
  if (h < 0 || size_t(h) >= handles_.size())
    throw std::invalid_argument("unknown tensor handle " + std::to_string(h));
  return handles_[h];
}

void Graph::retrieve(HandleId h) {
  NodeId id = node_of(h);
  if (!nodes_[id].alive)
    throw ExecutionError("[retrieve] this tensor was removed by a compiler because no retrieved "
                         "output needed it: call .retrieve() on it before compile()");
  outputs_.insert(id);
  changed();
}

void Graph::check_feedback_target(const char* op, NodeId t) const {
  if (nodes_[t].op != Op::Input)
    throw std::invalid_argument(std::string("[") + op + "] the target must be an input; this one is "
                                "computed by " + op_name(nodes_[t].op));
  for (const Feedback& f : feedback_)
    if (node_of(f.target) == t)
      throw std::invalid_argument(std::string("[") + op + "] " + input_label(t) +
                                  " already receives a result");
}

void Graph::assign(HandleId target, HandleId value) {
  NodeId t = node_of(target), v = node_of(value);
  check_feedback_target("assign", t);
  if (!same_shape(nodes_[t].shape, nodes_[v].shape))
    throw ShapeError("[assign] value shape " + shape_str(nodes_[v].shape) +
                     " differs from target shape " + shape_str(nodes_[t].shape));
  feedback_.push_back({target, value, false});
  retrieve(value);
}

void Graph::append(HandleId target, HandleId rows, const std::optional<Shape>& rows_shape) {
  NodeId t = node_of(target), r = node_of(rows);
  check_feedback_target("append", t);
  const Shape &ts = nodes_[t].shape, &rs = rows_shape ? *rows_shape : nodes_[r].shape;
  if (rows_shape && !(product(rs) == product(nodes_[r].shape)))
    throw ShapeError("[append] rows of shape " + shape_str(rs) + " do not hold the " +
                     shape_str(nodes_[r].shape) + " values of their node");
  if (ts.empty() || ts.size() != rs.size() ||
      !same_shape(Shape(ts.begin() + 1, ts.end()), Shape(rs.begin() + 1, rs.end())))
    throw ShapeError("[append] rows of shape " + shape_str(rs) + " do not extend dim 0 of " +
                     shape_str(ts));
  feedback_.push_back({target, rows, true});
  retrieve(rows);
}

void Graph::apply_feedback() {
  if (feedback_.empty()) return;
  // Read every value before writing any target.
  std::vector<std::shared_ptr<const std::vector<float>>> values;
  for (const Feedback& f : feedback_) {
    NodeId v = node_of(f.value);
    if (auto it = results_.find(v); it != results_.end()) {
      values.push_back(it->second.data);
    } else if (auto in = input_data_.find(v); in != input_data_.end()) {
      values.push_back(in->second);
    } else {
      throw ExecutionError("[execute] internal error: no result for a fed-back value");
    }
  }
  for (size_t i = 0; i < feedback_.size(); ++i) {
    const std::shared_ptr<const std::vector<float>>& data = values[i];
    // Output buffers may be larger than their data (reused arenas).
    size_t count = size_t(product(nodes_[node_of(feedback_[i].value)].shape).eval(dims_));
    auto& slot = input_data_[node_of(feedback_[i].target)];
    if (!feedback_[i].append) {
      if (data->size() == count)
        slot = data;  // shared, no copy
      else
        slot = std::make_shared<std::vector<float>>(data->begin(), data->begin() + count);
    } else if (slot && slot.use_count() == 1) {
      // Sole owner: the vector was created non-const, so growing it is safe.
      auto& grow = const_cast<std::vector<float>&>(*slot);
      grow.insert(grow.end(), data->begin(), data->begin() + count);
    } else {
      auto grown = std::make_shared<std::vector<float>>();
      if (slot) {
        grown->reserve(slot->size() + count);
        grown->assign(slot->begin(), slot->end());
      }
      grown->insert(grown->end(), data->begin(), data->begin() + count);
      slot = std::move(grown);
    }
  }
}

void Graph::truncate_input(HandleId h, size_t count) {
  NodeId id = node_of(h);
  if (nodes_[id].op != Op::Input)
    throw std::invalid_argument("[truncate_input] only inputs hold data; this tensor is computed by " +
                                std::string(op_name(nodes_[id].op)));
  auto it = input_data_.find(id);
  const size_t held = it == input_data_.end() || !it->second ? 0 : it->second->size();
  if (count > held)
    throw std::invalid_argument("[truncate_input] cannot keep " + std::to_string(count) + " values of " +
                                input_label(id) + ", which holds " + std::to_string(held));
  if (count < held) {
    auto& slot = it->second;
    if (slot.use_count() == 1)  // sole owner: created non-const (see apply_feedback), shrink in place
      const_cast<std::vector<float>&>(*slot).resize(count);
    else
      slot = std::make_shared<std::vector<float>>(slot->begin(), slot->begin() + std::ptrdiff_t(count));
  }
  results_.clear();
}

void Graph::set_dim(const std::string& name, int64_t value) {
  if (value < 0)
    throw std::invalid_argument("[set_dim] dim '" + name + "' must be >= 0, got " +
                                std::to_string(value));
  dims_[name] = value;
  results_.clear();
}

void Graph::set_input(HandleId h, std::shared_ptr<const std::vector<float>> data,
                      bool keep_results) {
  NodeId id = node_of(h);
  if (nodes_[id].op != Op::Input)
    throw std::invalid_argument("[set] only inputs can be set; this tensor is computed by " +
                                std::string(op_name(nodes_[id].op)));
  input_data_[id] = std::move(data);
  if (!keep_results) results_.clear();
}

std::string Graph::input_label(NodeId id) const {
  const Node& n = nodes_[id];
  return n.name.empty() ? "input #" + std::to_string(id) : "'" + n.name + "'";
}

size_t Graph::live_node_count() const {
  return std::count_if(nodes_.begin(), nodes_.end(), [](const Node& n) { return n.alive; });
}

std::vector<NodeId> Graph::topo_order() const {
  // Nodes are appended after their inputs and passes only ever add nodes at
  // the end, except when rewiring to an earlier node; a DFS keeps it exact.
  std::vector<uint8_t> state(nodes_.size(), 0);
  std::vector<NodeId> order;
  order.reserve(nodes_.size());
  std::vector<std::pair<NodeId, size_t>> stack;
  for (NodeId root = 0; root < NodeId(nodes_.size()); ++root) {
    if (!nodes_[root].alive || state[root]) continue;
    stack.push_back({root, 0});
    state[root] = 1;
    while (!stack.empty()) {
      auto& [id, next] = stack.back();
      const Node& n = nodes_[id];
      if (next < n.inputs.size()) {
        NodeId child = n.inputs[next++].node;
        if (!state[child]) {
          state[child] = 1;
          stack.push_back({child, 0});
        }
      } else {
        state[id] = 2;
        order.push_back(id);
        stack.pop_back();
      }
    }
  }
  return order;
}

std::vector<bool> Graph::needed_by_outputs() const {
  std::vector<bool> needed(nodes_.size(), false);
  std::vector<NodeId> stack(outputs_.begin(), outputs_.end());
  while (!stack.empty()) {
    NodeId id = stack.back();
    stack.pop_back();
    if (needed[id]) continue;
    needed[id] = true;
    for (const Edge& e : nodes_[id].inputs) stack.push_back(e.node);
  }
  return needed;
}

void Graph::replace_nodes(const std::unordered_map<NodeId, NodeId>& replacement) {
  if (replacement.empty()) return;
  auto resolve = [&](NodeId id) {
    for (auto it = replacement.find(id); it != replacement.end(); it = replacement.find(id))
      id = it->second;
    return id;
  };
  for (Node& n : nodes_)
    for (Edge& e : n.inputs) e.node = resolve(e.node);
  for (NodeId& h : handles_) h = resolve(h);
  std::set<NodeId> outs;
  for (NodeId o : outputs_) outs.insert(resolve(o));
  outputs_ = std::move(outs);
  for (const auto& [old, _] : replacement)
    if (resolve(old) != old) nodes_[old].alive = false;
  changed();
}

void Graph::remove_node(NodeId id) {
  nodes_[id].alive = false;
  nodes_[id].inputs.clear();
  changed();
}

}  // namespace luminal

// ---- running ----------------------------------------------------------------

#include "core/executor.h"
#include "core/quant.h"

namespace luminal {

void Graph::set_program(std::shared_ptr<Program> program) {
  program_ = std::move(program);
  program_version_ = version_;
  results_.clear();
}

void Graph::check_iota_lengths() const {
  for (NodeId id : iotas_) {
    const Node& n = nodes_[size_t(id)];
    if (!n.alive) continue;
    int64_t len = n.shape[0].eval(dims_);
    if (len >= (int64_t(1) << 31))
      throw ExecutionError("[arange] length " + std::to_string(len) + " (" + n.shape[0].str() +
                           "): an arange or iota must be shorter than 2**31");
  }
}

void Graph::execute() {
  check_iota_lengths();
  if (!program_) {
    ReferenceExecutor::run(*this);
  } else {
    if (program_version_ != version_)
      throw ExecutionError("[execute] the graph changed after it was compiled for a backend "
                           "(a new op, retrieve() or pass): call compile() again");
    program_->run(*this);
  }
  apply_feedback();
  if (program_) program_->after_feedback(*this);
}

std::vector<TracedStep> Graph::execute_traced() {
  if (!program_) return {};
  check_iota_lengths();
  if (program_version_ != version_)
    throw ExecutionError("[execute] the graph changed after it was compiled for a backend: "
                         "call compile() again");
  return program_->run_traced(*this);
}

Buffer Graph::read(HandleId h, const ShapeTracker& view) const {
  NodeId id = node_of(h);
  const Node& n = nodes_[id];
  std::shared_ptr<const std::vector<float>> data;
  std::vector<int64_t> shape;
  const QuantFormat* q = n.op == Op::Input ? quant_format(n.dtype) : nullptr;
  if (auto it = results_.find(id); it != results_.end() && !q) {
    data = it->second.data;
  } else if (n.op == Op::Input && input_data_.count(id)) {
    // A compact input reads as its values, also when a compiler reduced a
    // retrieved expression to the input itself (x * 1).
    data = input_data_.at(id);
    if (q) {
      int64_t count = 1;
      for (const Expr& d : n.shape) count *= d.eval(dims_);
      data = std::make_shared<std::vector<float>>(dequantize(*q, *data, count));
    }
  } else if (!n.alive) {
    throw ExecutionError(
        "[numpy] this tensor was removed by a compiler because no retrieved output needs "
        "it: call .retrieve() on it before compile()");
  } else if (!outputs_.count(id)) {
    throw ExecutionError("[numpy] this tensor was not retrieved: call .retrieve() on it "
                         "before execute() (and before compile())");
  } else {
    throw ExecutionError("[numpy] no data yet: call graph.execute() first (results are "
                         "cleared when inputs, dims or the graph change)");
  }
  ConcreteView v = view.resolve(dims_);
  auto out = std::make_shared<std::vector<float>>(ReferenceExecutor::gather(*data, v, "numpy"));
  return {out, v.shape};
}

}  // namespace luminal
