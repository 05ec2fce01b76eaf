// The reference executor: every primitive implemented plainly over concrete
// views. It is slow on purpose-free code paths and is the oracle every
// compiled graph is checked against.
#pragma once
#include "core/graph.h"

namespace luminal {

class ReferenceExecutor {
 public:
  // Runs everything `graph`'s outputs need; buffers are freed after their last
  // consumer. Validates inputs and dims before computing anything.
  static void run(Graph& graph);
  // Runs what the outputs need and returns the values of the `keep` nodes
  // among them (graph results untouched): compiled kernels' outputs, to find
  // the first that disagrees.
  static std::unordered_map<NodeId, Buffer> evaluate(Graph& graph, const std::vector<NodeId>& keep);
  // Concrete output shape of every node in `order` (indexed by node id) under
  // the bound dims; throws naming an unset or wrongly sized input, or a bad dim.
  static std::vector<std::vector<int64_t>> validate(const Graph& graph,
                                                    const std::vector<NodeId>& order);
  // Throws unless Input node `id`, of concrete `shape`, has data of that size.
  static void check_input(const Graph& graph, NodeId id, const std::vector<int64_t>& shape);
  // Materialize `view` over `src` row-major (invalid positions read 0).
  static std::vector<float> gather(const std::vector<float>& src, const ConcreteView& view,
                                   const char* op);
};

}  // namespace luminal
