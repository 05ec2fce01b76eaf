// CPrinter: Kernel IR -> one C translation unit (C99 + OpenMP pragmas).
// The loops, prelude and signatures; expressions come from compiler/c_family.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "compiler/kernel.h"
#include "cpu/q4_0x8.h"

namespace luminal {

struct CSource {
  std::string code;
  std::vector<std::string> kernel_names;  // one per kernel, in order (repeats share one)
  std::vector<std::string> dims;          // the order of the dims array every kernel takes
  // Per kernel: a weight the runtime repacks and appends as its last input.
  std::vector<std::optional<PackedWeight>> packed;
};

// Every kernel is `void name(float* out, const float* const* in, const int64_t* dims)`.
// bf16_float_products: the library also gets lm_amx_sgemm (kAmxFloat), for
// float products on AMX tiles where the compiler can build them.
CSource print_c(const std::vector<Kernel>& kernels, bool bf16_float_products = false);

}  // namespace luminal
