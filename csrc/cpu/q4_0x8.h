// Q4_0 weights repacked for decode products (see q4_0x8.cpp): the C the
// printer adds after the quantized products, and what the runtime needs to
// know to repack a weight once and pass it to the kernel.
#pragma once
#include <cstddef>
#include <cstdint>

namespace luminal {

// C prelude: lm_q4_0x8_size / lm_q4_0x8_pack (exported, called by
// CPUProgram) and the products on the repacked layout.
extern const char* const kQ4_0x8;

// A kernel input holding Q4_0 weights (n, k) that the runtime repacks and
// appends as the kernel's last input (in[input count]).
struct PackedWeight {
  size_t input;
  int64_t n, k;
};

}  // namespace luminal
