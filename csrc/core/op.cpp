#include "core/op.h"

#include <stdexcept>

namespace luminal {

bool is_unary(Op op) { return op >= Op::Log2 && op <= Op::Recip; }
bool is_binary(Op op) { return op >= Op::Add && op <= Op::LessThan; }
bool is_reduce(Op op) { return op == Op::SumReduce || op == Op::MaxReduce; }

int arity(Op op) {
  if (op == Op::Input || op == Op::Constant) return 0;
  return is_binary(op) ? 2 : 1;
}

const char* op_name(Op op) {
  switch (op) {
    case Op::Input: return "Input";
    case Op::Constant: return "Constant";
    case Op::Log2: return "Log2";
    case Op::Exp2: return "Exp2";
    case Op::Sin: return "Sin";
    case Op::Sqrt: return "Sqrt";
    case Op::Recip: return "Recip";
    case Op::Add: return "Add";
    case Op::Mul: return "Mul";
    case Op::Mod: return "Mod";
    case Op::LessThan: return "LessThan";
    case Op::SumReduce: return "SumReduce";
    case Op::MaxReduce: return "MaxReduce";
    case Op::Contiguous: return "Contiguous";
  }
  return "?";
}

Op op_from_name(const std::string& name) {
  for (Op op : kAllOps)
    if (name == op_name(op)) return op;
  throw std::invalid_argument("unknown op '" + name + "'");
}

}  // namespace luminal
