#include "core/first_difference.h"

#include <cmath>

#include "core/executor.h"

namespace luminal {

std::optional<Difference> first_difference(Graph& g, double rtol, double atol) {
  std::vector<TracedStep> trace = g.execute_traced();
  std::vector<NodeId> nodes;
  for (const TracedStep& t : trace) nodes.push_back(t.node);
  std::unordered_map<NodeId, Buffer> want = ReferenceExecutor::evaluate(g, nodes);
  for (const TracedStep& t : trace) {
    auto it = want.find(t.node);
    if (it == want.end() || it->second.data->size() != t.data.size()) continue;
    const std::vector<float>& w = *it->second.data;
    std::optional<Difference> diff;
    for (size_t i = 0; i < w.size(); ++i) {
      float a = t.data[i], b = w[i];
      if (a == b || (std::isnan(a) && std::isnan(b))) continue;  // equal infinities too
      double gap = std::fabs(double(a) - double(b));
      if (!(gap <= atol + rtol * std::fabs(double(b)))) {
        if (!diff)
          diff = Difference{t.node, op_name(g.node(t.node).op), t.kernel, t.shape, int64_t(i), a,
                            b, 0.0};
        diff->max_abs = std::isnan(gap) ? gap : std::max(diff->max_abs, gap);
      }
    }
    if (diff) return diff;
  }
  return std::nullopt;
}

}  // namespace luminal
