// Source text shared by the C-family printers (C for the CPU, CUDA C): index
// expressions, kernel values as `const float` statements, the dims a set of
// kernels reads. Each printer adds its own loops, prelude and signatures; the
// prelude defines the helpers printed here (lm_floordiv, lm_maxf, lm_load_<format>, INT64_C).
#pragma once
#include <sstream>
#include <string>
#include <vector>

#include "compiler/kernel.h"

namespace luminal {

// A kernel variable's or dim's name in generated code: "@i" -> i, dim "s" -> d_s.
std::string var_name(const std::string& name);

// An integer expression, with dims read from locals named d_<name>.
std::string c_expr(const Expr& e);

// Statements `const float <prefix><j> = ...;` for `body`; returns the name of
// value `result` (default: the last). Quantized loads call lm_load_<format>.
std::string print_values(const std::vector<KValue>& body, const Kernel& k, std::ostringstream& os,
                         const std::string& indent, const std::string& prefix = "v",
                         int result = -1);

// Every dim the kernels read, sorted: the order of the dims argument.
std::vector<std::string> kernel_dims(const std::vector<Kernel>& kernels);

// A reduction over an outer axis (a bias gradient, a sum over the batch),
// whose neighbouring outputs read neighbouring inputs: printers walk r outside
// a block of outputs instead of one output's r inside.
bool column_reduction(const Kernel& k);

}  // namespace luminal
