// The C the printer adds to a library whose kernels read compact weights
// (quantized blocks or packed halves), after kQuantPrelude, lm_half and the
// element loads (c_family). Printed in this order, each part using the ones
// before it (kAmxTiles before kHalfProducts, which calls kAmxProducts'
// lm_amx_gemm through a declaration), with kInt8Gemm and kQ4_0x8 (q4_0x8.h)
// between kAmxProducts and kQuantMatmul. kAmxTiles and kAmxFloat also go to
// libraries without compact weights whose float products run on AMX.
#pragma once

namespace luminal {

extern const char* const kInt8Products;    // c_int8_products.cpp: Q8_0/Q4_0 in GGML's layout
extern const char* const kKQuantProducts;  // c_kquant_products.cpp: Q4_K/Q5_K/Q6_K tiles
extern const char* const kHalfProducts;    // c_half_products.cpp: F16/BF16, the widened GEMM
extern const char* const kAmxTiles;        // c_amx_products.cpp: the AMX tile loop, lm_amx_run
extern const char* const kAmxProducts;     // c_amx_products.cpp: prefill on AMX tiles (Q8_0/Q4_0 by default)
extern const char* const kAmxFloat;        // c_amx_products.cpp: lm_amx_sgemm, float products in bf16
extern const char* const kInt8Gemm;        // c_int8_gemm.cpp: Q8_0/Q4_0 prompts on AVX512-VNNI
extern const char* const kQuantMatmul;     // c_quant_matmul.cpp: lm_quant_matmul and its helpers

}  // namespace luminal
