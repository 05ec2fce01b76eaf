// What a compiled program works out once about its runs, whatever the device:
// which dim expressions to evaluate and which nodes' shapes to fill, and the
// memory plan (which buffer slot each kernel writes).
#pragma once
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "compiler/kernel.h"
#include "core/graph.h"

namespace luminal {

struct RunPlan {
  std::vector<NodeId> order;  // every needed node, producers first
  // Each distinct dim expression, with a node using it (for error messages).
  std::vector<std::pair<Expr, NodeId>> dim_exprs;
  // The nodes whose shapes a run reads (kernel outputs and inputs, graph
  // inputs and outputs), each dim an index into dim_exprs.
  std::vector<std::pair<NodeId, std::vector<int>>> shaped;
  // Memory plan: kernel s writes slot[s]; a slot is free again after the last
  // kernel reading its buffer, outputs keep theirs, and a kernel never writes
  // a slot it reads.
  std::vector<size_t> slot;
  size_t slot_count = 0;
  std::unordered_map<NodeId, size_t> output_slot;

  static RunPlan make(const Graph& g, const std::vector<Kernel>& kernels);
  // Each shaped node's shape for this run (indexed by node), into `out`:
  // each dim expression evaluated once and checked non-negative, inputs
  // checked against their data. (Per node, a decode step of a 32-layer model
  // spent 0.7 ms on shapes.) `out` keeps its allocations from the last run:
  // a decode step's shapes are refilled in place, not allocated again.
  void shapes(const Graph& g, std::vector<std::vector<int64_t>>& out) const;
};

}  // namespace luminal
