#include "compiler/c_family.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <set>

#include "core/quant.h"

namespace luminal {

const char* const kIndexHelpers = R"(LM_FN int64_t lm_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b; return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
LM_FN int64_t lm_floormod(int64_t a, int64_t b) { return a - lm_floordiv(a, b) * b; }
LM_FN int64_t lm_min(int64_t a, int64_t b) { return a < b ? a : b; }
LM_FN int64_t lm_max(int64_t a, int64_t b) { return a > b ? a : b; }
LM_FN float lm_maxf(float acc, float v) { return (v != v || acc != acc) ? (v + acc) : (v > acc ? v : acc); }
)";

// Without branches (a branch on a loaded value holds a GPU's later loads
// behind it) and exact under flush-to-zero: normals and inf/NaN are bit
// moves, subnormals an integer times 2^-24, whose result is normal.
const char* const kHalfBits = R"(LM_FN float lm_half_bits(uint32_t h) {
  const uint32_t em = h & 0x7fff;
  const uint32_t big = em >= 0x7c00 ? (em << 13) | 0x7f800000u : (em << 13) + (112u << 23); /* inf, NaN; normal */
  const float small = (float)em * 5.9604644775390625e-08f;                                    /* subnormal, zero */
  const float mag = em >= 0x0400 ? lm_as_float(big) : small;
  return h & 0x8000 ? -mag : mag;
}
)";

const char* const kCompactLoads = R"(/* Quantized weights (core/quant.h): a Q8_0/Q4_0/k-quant buffer holds GGML blocks,
   an f16_packed/bf16_packed one 2-byte halves, widened exactly. */
LM_FN float lm_load_q8_0(const float* base, int64_t i) {
  const uint8_t* b = (const uint8_t*)base + (i / 32) * 34;
  return lm_half(b) * (float)(int8_t)b[2 + i % 32];
}
LM_FN float lm_load_q4_0(const float* base, int64_t i) {
  const uint8_t* b = (const uint8_t*)base + (i / 32) * 18;
  int j = (int)(i % 32);
  int q = j < 16 ? (b[2 + j] & 0x0f) : (b[2 + j - 16] >> 4);
  return lm_half(b) * (float)(q - 8);
}
/* k-quant super-blocks of 256 values (core/quant.h), in ggml's float
   order. lm_q4k_scale: sub-block j's 6-bit scale (m = 0) or min (m = 4). */
LM_FN int lm_q4k_scale(const uint8_t* s, int j, int m) {
  return j < 4 ? s[j + m] & 63
               : (m ? s[j + 4] >> 4 : s[j + 4] & 0x0f) | ((s[j - 4 + m] >> 6) << 4);
}
LM_FN float lm_load_q2_k(const float* base, int64_t i) {
  const uint8_t* b = (const uint8_t*)base + (i / 256) * 84;
  const int j = (int)(i % 256), s = b[j / 16];
  const int q = (b[16 + 32 * (j / 128) + j % 32] >> (2 * (j % 128 / 32))) & 3;
  return lm_half(b + 80) * (float)(s & 15) * (float)q - lm_half(b + 82) * (float)(s >> 4);
}
/* Q3_K's scale g (0..15): 6 bits, stored + 32 */
LM_FN int lm_q3k_scale(const uint8_t* b, int g) {
  return (((b[96 + g % 8] >> (4 * (g / 8))) & 15) | (((b[104 + g % 4] >> (2 * (g / 4))) & 3) << 4)) - 32;
}
LM_FN float lm_load_q3_k(const float* base, int64_t i) {
  const uint8_t* b = (const uint8_t*)base + (i / 256) * 110;
  const int j = (int)(i % 256), l = j % 32;
  const int q = ((b[32 + 32 * (j / 128) + l] >> (2 * (j % 128 / 32))) & 3) - ((b[l] >> (j / 32)) & 1 ? 0 : 4);
  return lm_half(b + 108) * (float)lm_q3k_scale(b, j / 16) * (float)q;
}
/* IQ4_NL's 16 levels (IQ4_XS's too) as int8 bytes, levels 0..7 and 8..15,
   in two words: no table, so the same code serves the CPU and CUDA (a
   file-scope table would be host memory there); the CPU's shuffles load them */
#define LM_IQ4_LEVELS_LO 0xF6EADDCFBFAD9881ull /* -127 -104 -83 -65 -49 -35 -22 -10 */
#define LM_IQ4_LEVELS_HI 0x7159453526190D01ull /* 1 13 25 38 53 69 89 113 */
LM_FN int lm_iq4_level(int nibble) {
  return (int8_t)(uint8_t)((nibble & 8 ? LM_IQ4_LEVELS_HI : LM_IQ4_LEVELS_LO) >> (8 * (nibble & 7)));
}
/* IQ4_XS's 6-bit scale s (0..7), minus the stored 32 */
LM_FN int lm_iq4xs_scale(const uint8_t* b, int s) {
  return (((b[4 + s / 2] >> (4 * (s % 2))) & 15) | (((b[2 + s / 4] >> (2 * (s % 4))) & 3) << 4)) - 32;
}
LM_FN float lm_load_iq4_xs(const float* base, int64_t i) {
  const uint8_t* b = (const uint8_t*)base + (i / 256) * 136;
  const int j = (int)(i % 256), l = j % 32;
  const uint8_t q = b[8 + 16 * (j / 32) + l % 16];
  return lm_half(b) * (float)lm_iq4xs_scale(b, j / 32) * (float)lm_iq4_level(l < 16 ? q & 15 : q >> 4);
}
LM_FN float lm_load_q4_k(const float* base, int64_t i) {
  const uint8_t* b = (const uint8_t*)base + (i / 256) * 144;
  const int j = (int)(i % 256), sub = j / 32;
  const uint8_t q = b[16 + 32 * (sub / 2) + j % 32];
  return lm_half(b) * (float)lm_q4k_scale(b + 4, sub, 0) * (float)(sub % 2 ? q >> 4 : q & 0x0f) -
         lm_half(b + 2) * (float)lm_q4k_scale(b + 4, sub, 4);
}
LM_FN float lm_load_q5_k(const float* base, int64_t i) {
  const uint8_t* b = (const uint8_t*)base + (i / 256) * 176;
  const int j = (int)(i % 256), sub = j / 32;
  const uint8_t q = b[48 + 32 * (sub / 2) + j % 32];
  const int fifth = ((b[16 + j % 32] >> sub) & 1) << 4;
  return lm_half(b) * (float)lm_q4k_scale(b + 4, sub, 0) * (float)((sub % 2 ? q >> 4 : q & 0x0f) | fifth) -
         lm_half(b + 2) * (float)lm_q4k_scale(b + 4, sub, 4);
}
LM_FN float lm_load_q6_k(const float* base, int64_t i) {
  const uint8_t* b = (const uint8_t*)base + (i / 256) * 210;
  const int j = (int)(i % 256), h = j / 128, p = j % 128;
  const uint8_t lo = b[64 * h + p % 64], hi = b[128 + 32 * h + p % 32];
  const int q = ((p < 64 ? lo & 0x0f : lo >> 4) | (((hi >> (2 * (p / 32))) & 3) << 4)) - 32;
  return lm_half(b + 208) * (float)(int8_t)b[192 + j / 16] * (float)q;
}
LM_FN float lm_load_f16_packed(const float* base, int64_t i) {
  return lm_half((const uint8_t*)base + 2 * i);
}
LM_FN float lm_load_bf16_packed(const float* base, int64_t i) {
  const uint8_t* p = (const uint8_t*)base + 2 * i;
  return lm_as_float(((uint32_t)p[0] | ((uint32_t)p[1] << 8)) << 16);
}
)";

std::string var_name(const std::string& name) {
  if (name == Kernel::kIndexVar) return "i";
  if (name == Kernel::kReduceVar) return "r";
  if (name == Kernel::kOuterVar) return "o";
  if (name == Kernel::kInnerVar) return "j";
  if (name == Kernel::kRowVar) return "row";
  if (name == Kernel::kColVar) return "c";
  if (name.rfind('$', 0) == 0) return name.substr(1);  // a printer's local (loop_split.h)
  return "d_" + name;
}

namespace {

std::string float_literal(double v) {
  if (std::isnan(v)) return "NAN";
  if (std::isinf(v)) return v > 0 ? "INFINITY" : "(-INFINITY)";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9gf", v);
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s.insert(s.size() - 1, ".0");
  return "(" + s + ")";
}

bool nonnegative(const Expr& e) { return e.range().lo >= 0; }

// The index of a guarded read, simplified under its guard: a factor
// `x < bound` of `valid`, x a loop index, makes x a loop index over
// [0, bound) in the index (read only then), so x // bound and x % bound
// fold, as in a KV cache's past half (c < past).
Expr guarded_index(const Expr& index, const Expr& valid) {
  Expr out = index;
  const std::vector<Expr> factors =
      valid.kind() == Expr::Kind::Mul ? valid.args() : std::vector<Expr>{valid};
  for (const Expr& f : factors) {
    if (f.kind() != Expr::Kind::Lt || f.args()[0].kind() != Expr::Kind::Var) continue;
    const std::string& name = f.args()[0].name();
    if (name.empty() || name[0] != '@' || f.args()[1].vars().count(name)) continue;  // loop indices only
    out = substitute(out, name, Expr::loop_index(name, f.args()[1]));
  }
  return out;
}

std::string value_expr(const KValue& v, const std::vector<std::string>& names,
                       const std::vector<std::string>& formats) {
  switch (v.kind) {
    case KValue::Kind::Load: {
      if (v.valid.is_const() && v.valid.value() == 0) return "0.0f";  // never read (a split loop's other side)
      const std::string& format = formats[size_t(v.buffer)];
      std::string buffer = "in" + std::to_string(v.buffer);
      const Expr index = guarded_index(v.index, v.valid);
      std::string read = format.empty() ? buffer + "[" + c_expr(index) + "]"
                                        : "lm_load_" + format + "(" + buffer + ", " +
                                              c_expr(index) + ")";
      if (v.valid.is_const() && v.valid.value() == 1) return read;
      return "(" + c_expr(v.valid) + " ? " + read + " : 0.0f)";
    }
    case KValue::Kind::Literal: return float_literal(v.literal);
    case KValue::Kind::DimValue: {
      bool index = false;
      for (const std::string& name : v.dim.vars()) index = index || name.rfind('@', 0) == 0;
      if (!index) return "(float)" + c_expr(v.dim);
      // Over loop variables ("@..."), it is an iota's element index, below
      // 2**31 (Graph::execute checks iota lengths): converted through int,
      // since int64 to float does not vectorize on AVX2. Like a load, it is
      // computed only where valid: elsewhere its index math may divide by 0.
      if (v.valid.is_const() && v.valid.value() == 0) return "0.0f";
      std::string x = "(float)(int)" + c_expr(guarded_index(v.dim, v.valid));
      if (v.valid.is_const() && v.valid.value() == 1) return x;
      return "(" + c_expr(v.valid) + " ? " + x + " : 0.0f)";
    }
    case KValue::Kind::Guard:
      if (v.valid.is_const()) return v.valid.value() ? names[v.a] : "0.0f";
      return "(" + c_expr(v.valid) + " ? " + names[v.a] + " : 0.0f)";
    case KValue::Kind::Max: return "lm_maxf(" + names[v.a] + ", " + names[v.b] + ")";
    case KValue::Kind::RowValue: return "rv" + std::to_string(v.a);
    case KValue::Kind::Unary: {
      const std::string& a = names[v.a];
      switch (v.op) {
        case Op::Log2: return "log2f(" + a + ")";
        case Op::Exp2: return "exp2f(" + a + ")";
        case Op::Sin: return "sinf(" + a + ")";
        case Op::Sqrt: return "sqrtf(" + a + ")";
        case Op::Recip: return "(1.0f / " + a + ")";
        default: return a;
      }
    }
    case KValue::Kind::Binary: {
      const std::string &a = names[v.a], &b = names[v.b];
      switch (v.op) {
        case Op::Add: return "(" + a + " + " + b + ")";
        case Op::Mul: return "(" + a + " * " + b + ")";
        case Op::Mod: return "fmodf(" + a + ", " + b + ")";
        case Op::LessThan: return "(" + a + " < " + b + " ? 1.0f : 0.0f)";
        default: return "0.0f";
      }
    }
  }
  return "0.0f";
}

void collect_dims(const Expr& e, std::set<std::string>& out) {
  for (const std::string& v : e.vars())
    if (v.empty() || v[0] != '@') out.insert(v);  // "@..." are the kernel's own loop variables
}

}  // namespace

std::string hashed_name(const char* prefix, const std::string& text) {
  char hash[24];
  std::snprintf(hash, sizeof hash, "_%016llx", (unsigned long long)std::hash<std::string>()(text));
  return prefix + std::string(hash);
}

std::string c_expr(const Expr& e) {
  switch (e.kind()) {
    case Expr::Kind::Const: return "INT64_C(" + std::to_string(e.value()) + ")";
    case Expr::Kind::Var: return var_name(e.name());
    default: break;
  }
  const auto& x = e.args();
  auto join = [&](const char* op) {
    std::string s = "(" + c_expr(x[0]);
    for (size_t k = 1; k < x.size(); ++k) s += std::string(" ") + op + " " + c_expr(x[k]);
    return s + ")";
  };
  switch (e.kind()) {
    case Expr::Kind::Add: return join("+");
    case Expr::Kind::Mul: return join("*");
    case Expr::Kind::Div:
      // A dim divisor of 0 only occurs when the loop it sits in is empty.
      if (nonnegative(x[0]) && nonnegative(x[1])) return join("/");
      return "lm_floordiv(" + c_expr(x[0]) + ", " + c_expr(x[1]) + ")";
    case Expr::Kind::Mod:
      if (nonnegative(x[0]) && nonnegative(x[1])) return join("%");
      return "lm_floormod(" + c_expr(x[0]) + ", " + c_expr(x[1]) + ")";
    case Expr::Kind::Min: return "lm_min(" + c_expr(x[0]) + ", " + c_expr(x[1]) + ")";
    case Expr::Kind::Max: return "lm_max(" + c_expr(x[0]) + ", " + c_expr(x[1]) + ")";
    case Expr::Kind::Lt: return "(int64_t)(" + c_expr(x[0]) + " < " + c_expr(x[1]) + ")";
    default: return "0";
  }
}

// Which values are 0 or 1: comparisons, their products and complements,
// guarded ones. Operands come first (SSA), so one forward pass.
std::vector<bool> boolean_values(const std::vector<KValue>& body) {
  std::vector<bool> out(body.size(), false);
  auto literal = [&](int j, double x) {
    return body[size_t(j)].kind == KValue::Kind::Literal && body[size_t(j)].literal == x;
  };
  for (size_t j = 0; j < body.size(); ++j) {
    const KValue& v = body[j];
    if (v.kind == KValue::Kind::Literal) {
      out[j] = v.literal == 0.0 || v.literal == 1.0;
    } else if (v.kind == KValue::Kind::Guard) {
      out[j] = out[size_t(v.a)];
    } else if (v.kind == KValue::Kind::Binary && v.op == Op::LessThan) {
      out[j] = true;
    } else if (v.kind == KValue::Kind::Binary && v.op == Op::Mul) {
      out[j] = out[size_t(v.a)] && out[size_t(v.b)];
    } else if (v.kind == KValue::Kind::Binary && v.op == Op::Add) {  // 1 - b, as 1 + b * -1
      for (auto [one, neg] : {std::pair{v.a, v.b}, std::pair{v.b, v.a}}) {
        const KValue& m = body[size_t(neg)];
        if (literal(one, 1.0) && m.kind == KValue::Kind::Binary && m.op == Op::Mul &&
            ((out[size_t(m.a)] && literal(m.b, -1.0)) || (out[size_t(m.b)] && literal(m.a, -1.0))))
          out[j] = true;
      }
    }
  }
  return out;
}

std::string print_values(const std::vector<KValue>& body, const Kernel& k, std::ostringstream& os,
                         const std::string& indent, const std::string& prefix, int result,
                         const Hoist* hoist, const Given* given) {
  std::vector<std::string> names;
  std::vector<bool> varies(body.size(), true);
  const std::vector<bool> boolean = boolean_values(body);
  for (size_t j = 0; j < body.size(); ++j) {
    const KValue& v = body[j];
    names.push_back(prefix + std::to_string(j));
    const bool is_given = given && given->value == int(j);
    if (hoist) {
      auto uses = [&](const Expr& e) { return e.vars().count(hoist->var) > 0; };
      const bool operands = v.kind != KValue::Kind::RowValue;  // a RowValue's `a` names a reduction
      varies[j] = is_given || uses(v.index) || uses(v.valid) || uses(v.dim) ||
                  (operands && v.a >= 0 && varies[size_t(v.a)]) ||
                  (operands && v.b >= 0 && varies[size_t(v.b)]);
    }
    std::string expr = is_given ? given->expr : value_expr(v, names, k.input_formats);
    // log2 of a 0/1 mask (the -inf fill idiom, x + log2(keep)) is a select:
    // exact, and no log2f call (a vector of them where any lane is 0 takes
    // the slow path) for each score of a masked softmax, on every pass.
    if (!is_given && v.kind == KValue::Kind::Unary && v.op == Op::Log2 && boolean[size_t(v.a)])
      expr = "(" + names[size_t(v.a)] + " > 0.5f ? 0.0f : -INFINITY)";
    (varies[j] ? os : hoist->os) << (varies[j] ? indent : hoist->indent) << "const float "
                                 << names.back() << " = " << expr << ";\n";
  }
  return names[result < 0 ? names.size() - 1 : size_t(result)];
}


std::vector<std::string> kernel_dims(const std::vector<Kernel>& kernels) {
  std::set<std::string> dim_set;
  for (const Kernel& k : kernels) {
    for (const Expr& d : k.shape) collect_dims(d, dim_set);
    collect_dims(k.reduce_length, dim_set);
    collect_dims(k.row_length, dim_set);
    std::vector<const std::vector<KValue>*> bodies = {&k.body};
    for (const RowReduction& rr : k.row_reductions) {
      bodies.push_back(&rr.body);
      collect_dims(rr.length, dim_set);
    }
    for (const std::vector<KValue>* b : bodies) {
      for (const KValue& v : *b) {
        collect_dims(v.index, dim_set);
        collect_dims(v.valid, dim_set);
        collect_dims(v.dim, dim_set);
      }
    }
  }
  return {dim_set.begin(), dim_set.end()};
}

bool column_reduction(const Kernel& k) {
  if (generic_magnitude(k.reduce_inner) < 16) return false;
  Expr r = Expr::var(Kernel::kReduceVar);
  // An input that varies with the output and is contiguous along r is read
  // best by the row form. (One that depends on r alone, such as a per-row
  // statistic, is one value per step in either form.)
  for (const KValue& v : k.body)
    if (v.kind == KValue::Kind::Load && v.index.vars().count(Kernel::kIndexVar) &&
        substitute(v.index, Kernel::kReduceVar, r + 1) - v.index == Expr(1))
      return false;
  return true;
}

std::optional<CompactProduct> compact_product(const Kernel& k) {
  if (!k.matmul) return std::nullopt;
  auto index_of = [&](NodeId id) {
    return size_t(std::find(k.inputs.begin(), k.inputs.end(), id) - k.inputs.begin());
  };
  size_t ia = index_of(k.matmul->a), ib = index_of(k.matmul->b);
  if (ia >= k.inputs.size() || ib >= k.inputs.size() || ia == ib || !k.input_formats[ia].empty())
    return std::nullopt;
  const std::string& format = k.input_formats[ib];
  const bool half = format == "f16_packed" || format == "bf16_packed";
  const QuantFormat* quant = quant_format(format);
  const bool k_quant = quant && quant->block_values == 256;
  if (!half && !k_quant && format != "q8_0" && format != "q4_0") return std::nullopt;
  const ShapeTracker &va = k.matmul->a_view, &vb = k.matmul->b_view;
  size_t r = va.rank();
  const Shape &shape = va.shape(), &sa = va.strides(), &sb = vb.strides();
  const Expr &m = shape[r - 3], &kk = shape[r - 2], &n = shape[r - 1];
  std::optional<int64_t> kc = kk.as_const();
  if (!kc || (!half && *kc % (k_quant ? 256 : 32) != 0) || !(sb[r - 2] == Expr(1)) || !(sb[r - 1] == kk) ||
      !(vb.offset() == Expr(0)) || !(sa[r - 2] == Expr(1)) || !(sa[r - 1] == Expr(0)))
    return std::nullopt;
  Expr rows = m, span = m * sa[r - 3];  // rows so far and the elements they span
  for (size_t d = r - 3; d-- > 0;) {
    if (shape[d] == Expr(1)) continue;  // a size-1 dim's strides never matter
    if (!(sb[d] == Expr(0)) || !(sa[d] == span)) return std::nullopt;
    rows = rows * shape[d];
    span = span * shape[d];
  }
  return CompactProduct{ia, ib, format, *kc, rows, n, va.offset(), sa[r - 3]};
}

}  // namespace luminal
