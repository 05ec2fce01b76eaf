// The graph: nodes of primitive ops joined by edges that carry ShapeTrackers.
//
// Users hold *handles*, not nodes. Compilers replace nodes freely and the
// handle->node map follows, so a Tensor the user kept stays valid through
// every pass (DESIGN.md section 3).
#pragma once
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/expr.h"
#include "core/op.h"
#include "core/program.h"
#include "core/shape_tracker.h"

namespace luminal {

using NodeId = int32_t;
using HandleId = int32_t;

struct Edge {
  NodeId node;
  ShapeTracker view;  // how this consumer reads the producer's row-major output
};

struct Node {
  Op op = Op::Constant;
  std::vector<Edge> inputs;
  Shape shape;  // output shape; the output buffer is row-major in it
  int axis = -1;  // reduces only
  // Constant: `value` everywhere, or the value of `symbolic` when present.
  // An iota (add_iota) is the Constant of shape (n) whose `symbolic` is
  // kElementVar, the element's index: no data, and kernels compute it in place.
  double value = 0.0;
  std::optional<Expr> symbolic;
  // Input: a display name, whether it is a parameter (kept across runs, never
  // re-uploaded), and its storage dtype annotation.
  std::string name;
  bool parameter = false;
  std::string dtype = "f32";
  bool alive = true;
};

// The variable a Constant's `symbolic` value names its element index by.
inline const std::string kElementVar = "@z";

// Whether `n` is an iota: a Constant valued by its element index.
inline bool is_iota(const Node& n) { return n.symbolic && n.symbolic->vars().count(kElementVar); }

// The `count` values of Constant node `n` under `dims` (row-major).
std::vector<float> constant_data(const Node& n, const Bindings& dims, int64_t count);

// A computed or uploaded buffer with the concrete shape it was made in.
struct Buffer {
  std::shared_ptr<const std::vector<float>> data;
  std::vector<int64_t> shape;
};

class Graph {
 public:
  // ---- building -------------------------------------------------------
  HandleId add_input(const Shape& shape, const std::string& name, const std::string& dtype,
                     bool parameter);
  HandleId add_constant(double value);
  HandleId add_symbolic_constant(const Expr& value);
  // 0, 1, ..., n - 1 (a Constant of shape (n), valued by its element index).
  HandleId add_iota(const Expr& n);
  // Add a primitive over (handle, view) inputs; checks shapes, throws ShapeError.
  HandleId add_op(Op op, const std::vector<std::pair<HandleId, ShapeTracker>>& inputs,
                  int axis = -1);
  void retrieve(HandleId h);
  void set_dim(const std::string& name, int64_t value);
  const Bindings& dims() const { return dims_; }
  // Clears the last run's results (they no longer match the inputs) unless
  // `keep_results`: for inputs that only steer later runs (an optimizer's lr).
  void set_input(HandleId h, std::shared_ptr<const std::vector<float>> data,
                 bool keep_results = false);

  // ---- feeding results back (optimizer updates, KV caches) --------------
  // After every execute(), input `target` holds the result of `value`: same
  // shape, shared without a copy. Assignments read all values first, so
  // swaps and chains see the previous run's data.
  void assign(HandleId target, HandleId value);
  // After every execute(), the result of `rows` is appended along dim 0 of
  // input `target`'s data, in place when the graph owns the buffer (amortized
  // O(rows)). The caller then rebinds target's dim-0 symbol. `rows_shape`:
  // the rows' shape when the node's whole row-major data is read as another
  // shape of the same element count (a reshape, or a permute of size-1 dims:
  // a KV cache's (seq, 1, heads, dim) rows from a (1, seq, heads, dim) node),
  // so no copy kernel makes a node of that shape first.
  void append(HandleId target, HandleId rows, const std::optional<Shape>& rows_shape = std::nullopt);
  // Keep the first `count` values of input `h`'s data (a KV cache rolled
  // back to a shorter prefix): in place when the graph owns the buffer,
  // else a copy of the prefix. Clears the last run's results.
  void truncate_input(HandleId h, size_t count);
  struct Feedback {
    HandleId target, value;
    bool append;
  };
  // The assigns and appends, in the order they were asked for.
  const std::vector<Feedback>& feedback() const { return feedback_; }

  // ---- running --------------------------------------------------------
  // Runs the compiled program if a backend compiler set one, else the
  // reference executor, over every node the retrieved outputs need.
  void execute();
  // Runs the compiled program (without feedback) returning every kernel's
  // output in order; empty on the reference executor. For diagnosis.
  std::vector<TracedStep> execute_traced();
  // A backend compiler's result; dropped (with an error on execute) if the
  // graph changes afterwards. nullptr returns to the reference executor.
  void set_program(std::shared_ptr<Program> program);
  const Program* program() const { return program_.get(); }
  void set_results(std::unordered_map<NodeId, Buffer> results) { results_ = std::move(results); }
  // The data behind handle `h` read through `view`, materialized row-major.
  Buffer read(HandleId h, const ShapeTracker& view) const;

  // ---- inspection and rewriting (for compilers) -------------------------
  NodeId node_of(HandleId h) const;
  const Node& node(NodeId id) const { return nodes_.at(id); }
  Node& node_mut(NodeId id) { return nodes_.at(id); }
  size_t node_slots() const { return nodes_.size(); }
  size_t live_node_count() const;
  size_t handle_count() const { return handles_.size(); }
  const std::set<NodeId>& outputs() const { return outputs_; }
  // Live nodes, producers before consumers.
  std::vector<NodeId> topo_order() const;
  // Nodes the outputs depend on (themselves included).
  std::vector<bool> needed_by_outputs() const;
  // Point every edge, handle and output at replacement[old] (chains resolved),
  // and mark replaced nodes dead. Shapes of old and new must match.
  void replace_nodes(const std::unordered_map<NodeId, NodeId>& replacement);
  NodeId add_node(Node node);  // for compilers; returns the new node's id
  HandleId handle_of(NodeId id) { return new_handle(id); }  // a new handle on a node
  void remove_node(NodeId id);
  // Bumped on every structural change; Looped compilers iterate until it stops.
  uint64_t version() const { return version_; }
  const std::unordered_map<NodeId, std::shared_ptr<const std::vector<float>>>& input_data()
      const {
    return input_data_;
  }
  std::string input_label(NodeId id) const;

 private:
  HandleId new_handle(NodeId node);
  void changed();
  void apply_feedback();
  // Every live iota is shorter than 2**31 under the bound dims (kernels
  // convert its indices through int); throws ExecutionError if not.
  void check_iota_lengths() const;
  void check_feedback_target(const char* op, NodeId target) const;

  std::vector<Feedback> feedback_;
  std::vector<NodeId> iotas_;

  std::vector<Node> nodes_;
  std::vector<NodeId> handles_;
  std::set<NodeId> outputs_;
  Bindings dims_;
  std::unordered_map<NodeId, std::shared_ptr<const std::vector<float>>> input_data_;
  std::unordered_map<NodeId, Buffer> results_;
  uint64_t version_ = 0;
  std::shared_ptr<Program> program_;
  uint64_t program_version_ = 0;

  friend class ReferenceExecutor;
};

}  // namespace luminal
