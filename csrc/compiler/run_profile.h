// LUMINAL_PROFILE=N: every compiled run prints, on stderr, its wall time,
// its shape-check time, its kernel time (and the part in matrix products)
// and its N costliest kernels (8 for N=1), time summed over the steps that
// run each. Shared by the backends; each times its own steps.
#pragma once
#include <chrono>
#include <string>
#include <vector>

#include "compiler/matmul_pattern.h"

namespace luminal {

// N from LUMINAL_PROFILE (read once); 0 when profiling is off.
int profile_top();

double ms_since(std::chrono::steady_clock::time_point t0);

struct StepTime {
  double ms;
  std::string kernel;  // the kernel's name in the program's source
  const MatmulPattern* gemm = nullptr;  // set when a library ran the step as a product
};

void print_profile(const Graph& g, double run_ms, double check_ms, const std::vector<StepTime>& steps);

}  // namespace luminal
