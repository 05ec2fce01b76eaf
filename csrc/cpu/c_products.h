// The C the printer adds to a library whose kernels read compact weights
// (quantized blocks or packed halves), after kQuantPrelude, lm_half and the
// element loads (c_family). Printed in this order, each part using the ones
// before it (kHalfProducts calls kAmxProducts' lm_amx_gemm through a
// declaration), with kQ4_0x8 (q4_0x8.h) between kAmxProducts and kQuantMatmul.
#pragma once

namespace luminal {

extern const char* const kInt8Products;    // c_int8_products.cpp: Q8_0/Q4_0 in GGML's layout
extern const char* const kKQuantProducts;  // c_kquant_products.cpp: Q4_K/Q5_K/Q6_K tiles
extern const char* const kHalfProducts;    // c_half_products.cpp: F16/BF16, the widened GEMM
extern const char* const kAmxProducts;     // c_amx_products.cpp: prefill on AMX tiles (Q8_0/Q4_0 by default)
extern const char* const kQuantMatmul;     // c_quant_matmul.cpp: lm_quant_matmul and its helpers

}  // namespace luminal
