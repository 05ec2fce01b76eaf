// The twelve primitive ops and the two leaves. This list is the whole
// instruction set: every high-level op is a composition of these, and every
// backend answers for exactly these.
#pragma once
#include <cstdint>
#include <string>

namespace luminal {

enum class Op : uint8_t {
  // leaves
  Input,     // named, data set from Python
  Constant,  // a number, or a symbolic expression of dims
  // unary
  Log2, Exp2, Sin, Sqrt, Recip,
  // binary
  Add, Mul, Mod, LessThan,
  // reduce over one axis (the axis is removed from the shape)
  SumReduce, MaxReduce,
  // materialize the input view into a fresh row-major buffer
  Contiguous,
};

inline constexpr Op kAllOps[] = {
    Op::Input, Op::Constant, Op::Log2, Op::Exp2, Op::Sin, Op::Sqrt, Op::Recip, Op::Add,
    Op::Mul, Op::Mod, Op::LessThan, Op::SumReduce, Op::MaxReduce, Op::Contiguous};

int arity(Op op);  // number of inputs
bool is_unary(Op op);
bool is_binary(Op op);
bool is_reduce(Op op);
const char* op_name(Op op);
Op op_from_name(const std::string& name);  // throws std::invalid_argument

}  // namespace luminal
