// Source text shared by the C-family printers (C for the CPU, CUDA C): index
// expressions, kernel values as `const float` statements, the dims a set of
// kernels reads. Each printer adds its own loops, prelude and signatures; the
// prelude defines the helpers printed here (lm_floordiv, lm_maxf, lm_load_<format>, INT64_C).
#pragma once
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "compiler/kernel.h"

namespace luminal {

// Helper functions of generated code, written once for every printer. Its
// prelude defines LM_FN (the functions' qualifiers) before these, and
// lm_as_float(uint32_t) (a float from its bits) before the compact loads.
// Index math and maxima: lm_floordiv, lm_floormod, lm_min, lm_max, lm_maxf.
extern const char* const kIndexHelpers;
// lm_half_bits: an IEEE half's bits widened exactly. The prelude then defines
// lm_half(const uint8_t*) (with a hardware conversion where it has one).
extern const char* const kHalfBits;
// lm_load_<format>(base, i): element i of a Q8_0, Q4_0, f16_packed or
// bf16_packed buffer (core/quant.h), over lm_half.
extern const char* const kCompactLoads;

// A kernel variable's or dim's name in generated code: "@i" -> i, dim "s" -> d_s.
std::string var_name(const std::string& name);

// An integer expression, with dims read from locals named d_<name>.
std::string c_expr(const Expr& e);

// A generated function's name: `prefix`_ and a hash of its text, so equal
// texts (every layer of a deep model repeats a few) share one function.
std::string hashed_name(const char* prefix, const std::string& text);

// Where print_values puts the values that do not vary with loop variable
// `var`: statements before that loop. A load there is no longer behind the
// loop's stores, which gcc cannot otherwise prove it does not alias (it does
// not vectorize a loop that reloads a per-row value after every store).
struct Hoist {
  std::ostringstream& os;
  std::string indent;
  std::string var;
};

// A value print_values reads instead of computing: `value` of the body is
// `expr` (an element a loop before stored).
struct Given {
  int value = -1;
  std::string expr;
};

// Which values of `body` are 0 or 1 (comparisons, their products and
// complements, guarded ones): print_values writes log2 of one as a select.
std::vector<bool> boolean_values(const std::vector<KValue>& body);

// Statements `const float <prefix><j> = ...;` for `body`; returns the name of
// value `result` (default: the last). Quantized loads call lm_load_<format>.
std::string print_values(const std::vector<KValue>& body, const Kernel& k, std::ostringstream& os,
                         const std::string& indent, const std::string& prefix = "v",
                         int result = -1, const Hoist* hoist = nullptr,
                         const Given* given = nullptr);

// Every dim the kernels read, sorted: the order of the dims argument.
std::vector<std::string> kernel_dims(const std::vector<Kernel>& kernels);

// A reduction over an outer axis (a bias gradient, a sum over the batch),
// whose neighbouring outputs read neighbouring inputs: printers walk r outside
// a block of outputs instead of one output's r inside.
bool column_reduction(const Kernel& k);

// A product C = A @ W^T whose weight W is a compact (n, k) row-major input
// (GGML blocks with k a whole number of them, or packed halves) and whose
// float activations A are `rows` evenly strided rows of k, batch dims folded
// in: printers give it a product kernel of their own instead of the generic
// loop's dequantizing loads. Nothing for any other kernel.
struct CompactProduct {
  size_t a = 0, w = 0;  // which kernel inputs are A and W
  std::string format;
  int64_t k = 0;        // the reduced length (constant)
  Expr rows, n, a_offset, a_row_stride;
};
std::optional<CompactProduct> compact_product(const Kernel& k);

}  // namespace luminal
