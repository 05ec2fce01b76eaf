// The C the printer adds to every library with a float matrix product:
// products CPUProgram calls in place of BLAS where BLAS reads memory badly.
#pragma once

namespace luminal {

extern const char* const kFloatProducts;  // c_float_products.cpp: lm_matvec, lm_interleaved_products

}  // namespace luminal
