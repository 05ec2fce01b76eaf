// Symbolic integer expressions: the language of dims, strides and index math.
//
// An Expr is immutable and shared. Every constructor simplifies, so two
// expressions that are equal as polynomials compare equal structurally
// (`seq*64 == (seq*8)*8`). Floor division, modulo, min, max and less-than are
// atoms of that polynomial form, simplified by rules that are exact over the
// integers, plus interval reasoning from each variable's known range.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace luminal {

using Bindings = std::unordered_map<std::string, int64_t>;

// Inclusive integer interval; kInf marks an unbounded side.
struct Range {
  static constexpr int64_t kInf = int64_t(1) << 62;
  int64_t lo = -kInf, hi = kInf;
};

class Expr {
 public:
  enum class Kind : uint8_t { Const, Var, Add, Mul, Div, Mod, Min, Max, Lt };

  Expr(int64_t value = 0);  // NOLINT: ints convert implicitly, as in Python
  Expr(int value) : Expr(int64_t(value)) {}  // NOLINT
  // A named variable; user dims are >= 0, index variables carry their extent.
  static Expr var(const std::string& name, int64_t lo = 0, int64_t hi = Range::kInf);
  // A loop index over [0, extent) for a symbolic extent (a dim expression):
  // the simplifier then knows x // extent == 0 and x % extent == x.
  static Expr loop_index(const std::string& name, const Expr& extent);

  Kind kind() const;
  bool is_const() const { return kind() == Kind::Const; }
  std::optional<int64_t> as_const() const;
  int64_t value() const;                 // only for Const
  const std::string& name() const;       // only for Var
  const Expr* extent() const;            // a Var's symbolic extent, if it has one
  const std::vector<Expr>& args() const; // operands of compound kinds

  // Value under `dims`; throws UnboundDimError naming a missing variable and
  // ExecutionError on division by zero.
  int64_t eval(const Bindings& dims) const;
  Range range() const;
  std::set<std::string> vars() const;
  std::string str() const;
  size_t hash() const;
  // Operator count as printed (shared subtrees counted each time), or
  // `limit` + 1 once it passes `limit`: bounds work on huge expressions.
  size_t printed_size(size_t limit) const;

  bool operator==(const Expr& other) const;
  bool operator!=(const Expr& other) const { return !(*this == other); }
  // A total order used to sort operands into canonical form.
  static int compare(const Expr& a, const Expr& b);

  friend Expr operator+(const Expr& a, const Expr& b);
  friend Expr operator-(const Expr& a, const Expr& b);
  friend Expr operator*(const Expr& a, const Expr& b);
  friend Expr operator-(const Expr& a);
  friend Expr floordiv(const Expr& a, const Expr& b);
  friend Expr mod(const Expr& a, const Expr& b);
  friend Expr min(const Expr& a, const Expr& b);
  friend Expr max(const Expr& a, const Expr& b);
  friend Expr lt(const Expr& a, const Expr& b);  // 1 if a < b else 0

  struct Node;

 private:
  explicit Expr(std::shared_ptr<const Node> node) : node_(std::move(node)) {}
  static Expr make(Kind kind, std::vector<Expr> args);
  std::shared_ptr<const Node> node_;
};

Expr floordiv(const Expr& a, const Expr& b);
Expr mod(const Expr& a, const Expr& b);
Expr min(const Expr& a, const Expr& b);
Expr max(const Expr& a, const Expr& b);
Expr lt(const Expr& a, const Expr& b);
inline Expr ge(const Expr& a, const Expr& b) { return lt(b, a + 1); }
// Logical and of 0/1 expressions.
inline Expr logical_and(const Expr& a, const Expr& b) { return a * b; }

Expr product(const std::vector<Expr>& xs);
// `e` with every variable named `name` replaced by `value`, simplified again.
Expr substitute(const Expr& e, const std::string& name, const Expr& value);
// The value at a fixed generic point (every variable a large distinct
// number): only for ordering symbolic sizes and strides heuristically, never
// for equality, which is always structural.
long double generic_magnitude(const Expr& e);

struct ExprHash {
  size_t operator()(const Expr& e) const { return e.hash(); }
};

}  // namespace luminal
