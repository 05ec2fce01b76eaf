#include "compiler/run_profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

namespace luminal {

int profile_top() {
  static const int top = [] {
    const char* v = std::getenv("LUMINAL_PROFILE");
    return v ? std::max(std::atoi(v), 1) : 0;
  }();
  return top;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void print_profile(const Graph& g, double run_ms, double check_ms, const std::vector<StepTime>& steps) {
  std::unordered_map<std::string, std::pair<double, int>> by_kernel;
  double total = 0, gemm = 0;
  for (const StepTime& s : steps) {
    total += s.ms;
    std::string label = s.kernel;
    if (const MatmulPattern* mm = s.gemm) {  // "(gemm batches x m x n x k)", as BLAS ran it
      gemm += s.ms;
      if (std::optional<BlasProduct> p = blas_product(*mm, g.dims()))
        label += " (gemm " + std::to_string(p->batches) + "x" + std::to_string(p->m) + "x" +
                 std::to_string(p->n) + "x" + std::to_string(p->k) + ")";
    }
    auto& k = by_kernel[label];
    k.first += s.ms;
    k.second += 1;
  }
  std::vector<std::pair<double, std::string>> ranked;
  for (auto& [name, k] : by_kernel) ranked.push_back({k.first, name + " x" + std::to_string(k.second)});
  std::sort(ranked.rbegin(), ranked.rend());
  std::fprintf(stderr,
               "[luminal profile] run %.3f ms (shape checks %.3f ms); %zu steps, %.3f ms "
               "(matrix products %.3f ms):",
               run_ms, check_ms, steps.size(), total, gemm);
  size_t shown = profile_top() > 1 ? size_t(profile_top()) : 8;
  for (size_t i = 0; i < std::min(shown, ranked.size()); ++i)
    std::fprintf(stderr, " %s %.3f ms;", ranked[i].second.c_str(), ranked[i].first);
  std::fprintf(stderr, "\n");
}

}  // namespace luminal
