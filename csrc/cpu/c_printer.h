// CPrinter: Kernel IR -> one C translation unit (C99 + OpenMP pragmas).
// The loops, prelude and signatures; expressions come from compiler/c_family.
#pragma once
#include <string>
#include <vector>

#include "compiler/kernel.h"

namespace luminal {

struct CSource {
  std::string code;
  std::vector<std::string> kernel_names;  // one per kernel, in order (repeats share one)
  std::vector<std::string> dims;          // the order of the dims array every kernel takes
};

// Every kernel is `void name(float* out, const float* const* in, const int64_t* dims)`.
CSource print_c(const std::vector<Kernel>& kernels);

}  // namespace luminal
