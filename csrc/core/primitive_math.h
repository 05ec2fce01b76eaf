// The scalar meaning of each compute primitive, shared by the reference
// executor and constant folding so both agree bit for bit.
#pragma once
#include <cmath>

#include "core/op.h"

namespace luminal {

inline float apply_unary(Op op, float x) {
  switch (op) {
    case Op::Log2: return std::log2(x);
    case Op::Exp2: return std::exp2(x);
    case Op::Sin: return std::sin(x);
    case Op::Sqrt: return std::sqrt(x);
    case Op::Recip: return 1.0f / x;
    default: return x;  // Contiguous
  }
}

// Mod is C's fmod (the result takes the dividend's sign); LessThan is 0 or 1
// and 0 whenever either side is NaN.
inline float apply_binary(Op op, float a, float b) {
  switch (op) {
    case Op::Add: return a + b;
    case Op::Mul: return a * b;
    case Op::Mod: return std::fmod(a, b);
    case Op::LessThan: return a < b ? 1.0f : 0.0f;
    default: return 0.0f;
  }
}

}  // namespace luminal
