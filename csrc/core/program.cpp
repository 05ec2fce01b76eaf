#include "core/program.h"

namespace luminal {

std::vector<TracedStep> Program::run_traced(Graph& g) {
  std::vector<TracedStep> trace;
  trace_ = &trace;
  try {
    run(g);
  } catch (...) {
    trace_ = nullptr;
    throw;
  }
  trace_ = nullptr;
  return trace;
}

}  // namespace luminal
