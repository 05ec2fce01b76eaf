#include "compiler/run_plan.h"

#include <string>

#include "core/errors.h"
#include "core/executor.h"

namespace luminal {

RunPlan RunPlan::make(const Graph& g, const std::vector<Kernel>& kernels) {
  RunPlan p;
  std::vector<bool> needed = g.needed_by_outputs();
  for (NodeId id : g.topo_order())
    if (needed[id]) p.order.push_back(id);
  std::unordered_map<std::string, int> dim_index;
  std::vector<bool> shaped(g.node_slots(), false);
  for (const Kernel& k : kernels) {
    shaped[k.output] = true;
    for (NodeId in : k.inputs) shaped[in] = true;
  }
  for (NodeId id : p.order) {
    const Node& n = g.node(id);
    std::vector<int> dims;
    for (const Expr& d : n.shape) {
      auto [it, fresh] = dim_index.emplace(d.str(), int(p.dim_exprs.size()));
      if (fresh) p.dim_exprs.push_back({d, id});
      dims.push_back(it->second);
    }
    if (shaped[id] || n.op == Op::Input || g.outputs().count(id)) p.shaped.push_back({id, dims});
  }

  std::unordered_map<NodeId, size_t> last_read;
  for (size_t s = 0; s < kernels.size(); ++s)
    for (NodeId in : kernels[s].inputs) last_read[in] = s;
  std::unordered_map<NodeId, size_t> slot_of;
  std::vector<size_t> free_slots;
  for (size_t s = 0; s < kernels.size(); ++s) {
    const Kernel& k = kernels[s];
    size_t slot;
    if (free_slots.empty() || g.outputs().count(k.output)) {  // outputs get their own slot
      slot = p.slot_count++;
    } else {
      slot = free_slots.back();
      free_slots.pop_back();
    }
    p.slot.push_back(slot);
    slot_of[k.output] = slot;
    if (g.outputs().count(k.output)) p.output_slot[k.output] = slot;
    for (NodeId in : k.inputs)  // freed after this step, so never this step's output
      if (last_read[in] == s && slot_of.count(in) && !g.outputs().count(in))
        free_slots.push_back(slot_of[in]);
  }
  return p;
}

void RunPlan::shapes(const Graph& g, std::vector<std::vector<int64_t>>& out) const {
  std::vector<int64_t> dim_values;
  dim_values.reserve(dim_exprs.size());
  for (const auto& [d, id] : dim_exprs) {
    int64_t v = d.eval(g.dims());
    if (v < 0)
      throw ExecutionError(std::string("[") + op_name(g.node(id).op) + "] dim " + d.str() +
                           " evaluates to " + std::to_string(v) + " < 0");
    dim_values.push_back(v);
  }
  out.resize(g.node_slots());
  for (const auto& [id, dims] : shaped) {
    std::vector<int64_t>& shape = out[id];
    shape.clear();
    for (int i : dims) shape.push_back(dim_values[size_t(i)]);
    if (g.node(id).op == Op::Input) ReferenceExecutor::check_input(g, id, shape);
  }
}

}  // namespace luminal
