// Exceptions the core throws. Bindings map each to a Python exception type;
// every message starts with "[op]" so the user sees which call failed.
#pragma once
#include <stdexcept>
#include <string>

namespace luminal {

// Incompatible shapes at graph-build time (Python: luminal.ShapeError, a ValueError).
struct ShapeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// A symbolic dim was needed at run time but never bound (Python: RuntimeError).
struct UnboundDimError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Anything else wrong with running a graph: unset input, missing data (RuntimeError).
struct ExecutionError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace luminal
