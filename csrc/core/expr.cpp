#include "core/expr.h"

#include <algorithm>
#include <functional>
#include <numeric>
#include <sstream>

#include "core/errors.h"

namespace luminal {

struct Expr::Node {
  Kind kind;
  int64_t value = 0;       // Const
  std::string name;        // Var
  Range bounds;            // Var
  std::vector<Expr> extent;  // Var: a loop index's symbolic extent (0 or 1 element)
  std::vector<Expr> args;  // compound kinds
  size_t hash = 0;
};

namespace {

constexpr int64_t kInf = Range::kInf;

int64_t clamp_inf(__int128 x) {
  if (x >= kInf) return kInf;
  if (x <= -kInf) return -kInf;
  return int64_t(x);
}
bool is_inf(int64_t x) { return x >= kInf || x <= -kInf; }

int64_t sat_add(int64_t a, int64_t b) {
  if (is_inf(a)) return a;
  if (is_inf(b)) return b;
  return clamp_inf(__int128(a) + b);
}
int64_t sat_mul(int64_t a, int64_t b) {
  if (a == 0 || b == 0) return 0;
  return clamp_inf(__int128(a) * b);
}
// Dims and index math must never wrap silently: overflow is a shape error.
int64_t checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    throw ShapeError("[dim] integer overflow in " + std::to_string(a) + " + " + std::to_string(b));
  return r;
}
int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    throw ShapeError("[dim] integer overflow in " + std::to_string(a) + " * " + std::to_string(b));
  return r;
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
int64_t floor_mod(int64_t a, int64_t b) { return a - floor_div(a, b) * b; }

size_t hash_combine(size_t seed, size_t v) {
  return seed ^ (v + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2));
}

// A polynomial term: coefficient times a product of non-constant factors.
struct Term {
  int64_t coef;
  Expr base;  // 1 for the constant term
};

Term split_term(const Expr& e) {
  if (e.is_const()) return {e.value(), Expr(1)};
  if (e.kind() == Expr::Kind::Mul && e.args().back().is_const()) {
    std::vector<Expr> rest(e.args().begin(), e.args().end() - 1);
    return {e.args().back().value(), product(rest)};
  }
  return {1, e};
}

std::vector<Expr> add_operands(const Expr& e) {
  if (e.kind() == Expr::Kind::Add) return e.args();
  return {e};
}

// `a` as high * unit + low with 0 <= low < unit, for the largest unit > 1
// dividing `d` that allows it: the low part of a flat index (an inner
// coordinate) never carries past a multiple of `unit`, so it cannot change
// a // d or the high part of a % d.
struct UnitSplit {
  int64_t unit;
  Expr high, low;
};
std::optional<UnitSplit> split_below(const Expr& a, int64_t d) {
  std::vector<Term> terms;
  std::vector<int64_t> units;
  for (const Expr& t : add_operands(a)) {
    terms.push_back(split_term(t));
    units.push_back(std::gcd(terms.back().coef, d));
  }
  std::sort(units.rbegin(), units.rend());
  units.erase(std::unique(units.begin(), units.end()), units.end());
  for (int64_t unit : units) {
    if (unit <= 1) break;
    Expr high = 0, low = 0;
    for (const Term& t : terms) {
      if (t.coef % unit == 0)
        high = high + t.base * Expr(t.coef / unit);
      else
        low = low + t.base * Expr(t.coef);
    }
    Range r = low.range();
    if (r.lo >= 0 && r.hi < unit) return UnitSplit{unit, high, low};
  }
  return std::nullopt;
}

// True (with the quotient) when `e` is `q * d` as polynomials, d a non-constant atom.
std::optional<Expr> divide_by_factor(const Expr& e, const Expr& d) {
  if (e == d) return Expr(1);
  if (e.kind() == Expr::Kind::Mul) {
    const auto& f = e.args();
    for (size_t i = 0; i < f.size(); ++i) {
      if (f[i] == d) {
        std::vector<Expr> rest;
        for (size_t j = 0; j < f.size(); ++j)
          if (j != i) rest.push_back(f[j]);
        return product(rest);
      }
    }
  }
  if (e.kind() == Expr::Kind::Add) {
    Expr sum = 0;
    for (const Expr& t : e.args()) {
      auto q = divide_by_factor(t, d);
      if (!q) return std::nullopt;
      sum = sum + *q;
    }
    return sum;
  }
  if (e.is_const() && e.value() == 0) return Expr(0);
  return std::nullopt;
}

// `a` as q * d + r for a symbolic divisor d, by polynomial division on d's
// first term (a monomial: factors times a constant): the terms of `a` that
// are its multiples move into q while that shortens the rest. Exact for any
// q, since (q * d + r) // d == q + r // d and (q * d + r) % d == r % d for
// every d != 0 (a zero divisor never divides), so the only question is
// whether it simplifies: used when r has fewer terms than a.
struct PolySplit {
  Expr q, r;
};
std::vector<Expr> factors(const Expr& e) {
  return e.kind() == Expr::Kind::Mul ? e.args() : std::vector<Expr>{e};
}
// base / lead for monomials (products of non-constant factors), when exact.
std::optional<Expr> divide_monomial(const Expr& base, const Expr& lead) {
  std::vector<Expr> rest = factors(base);
  for (const Expr& f : factors(lead)) {
    auto it = std::find(rest.begin(), rest.end(), f);
    if (it == rest.end()) return std::nullopt;
    rest.erase(it);
  }
  return product(rest);
}
std::optional<PolySplit> split_multiple(const Expr& a, const Expr& d) {
  const std::vector<Expr> dt = add_operands(d), at = add_operands(a);
  const Term lead = split_term(dt[0]);
  if (lead.coef == 0 || lead.base.is_const()) return std::nullopt;
  Expr q = 0, r = a;
  for (size_t step = 0; step < at.size(); ++step) {
    std::optional<Expr> part;
    for (const Expr& t : add_operands(r)) {
      const Term term = split_term(t);
      if (term.coef % lead.coef != 0) continue;
      if (auto f = divide_monomial(term.base, lead.base)) {
        part = *f * Expr(term.coef / lead.coef);
        break;
      }
    }
    if (!part) break;
    q = q + *part;
    r = r - *part * d;
  }
  if (add_operands(r).size() >= at.size() || (q.is_const() && q.value() == 0)) return std::nullopt;
  return PolySplit{q, r};
}

// An upper bound of a nonnegative index expression as an expression of
// dims: a loop index's extent - 1 (or its constant bound), a dim itself,
// m - 1 for x % m, M // d for x // d (M bounding x, d >= 1), sums and
// products of those (every factor nonnegative). None where it has no such
// bound (a negative coefficient). The quotient case lets a row-form kernel's
// row // 4 (row < 4 * seq) bound to seq - 1, so (c + 64 * (row // 4)) //
// (64 * seq) folds to 0 for c < 64 instead of dividing per element.
std::optional<Expr> symbolic_max(const Expr& e) {
  switch (e.kind()) {
    case Expr::Kind::Const: return e;
    case Expr::Kind::Var:
      if (const Expr* x = e.extent()) return *x - 1;
      if (e.range().lo < 0) return std::nullopt;
      return is_inf(e.range().hi) ? e : Expr(e.range().hi);
    case Expr::Kind::Mod:
      if (e.args()[1].range().lo >= 0 && e.args()[0].range().lo >= 0) return e.args()[1] - 1;
      return std::nullopt;
    case Expr::Kind::Div: {
      if (e.args()[0].range().lo < 0 || e.args()[1].range().lo < 1) return std::nullopt;
      auto m = symbolic_max(e.args()[0]);
      return m ? std::optional<Expr>(floordiv(*m, e.args()[1])) : std::nullopt;
    }
    case Expr::Kind::Add:
    case Expr::Kind::Mul: {
      Expr acc = e.kind() == Expr::Kind::Add ? Expr(0) : Expr(1);
      for (const Expr& x : e.args()) {
        if (x.range().lo < 0) return std::nullopt;
        auto m = symbolic_max(x);
        if (!m) return std::nullopt;
        acc = e.kind() == Expr::Kind::Add ? acc + *m : acc * *m;
      }
      return acc;
    }
    default: return std::nullopt;
  }
}

// 0 <= x < d wherever x // d or x % d is evaluated: x a loop index whose
// extent is d, x % d itself, or x's symbolic maximum at most d - 1 (the
// mixed-radix index of a tensor d elements long).
bool below_divisor(const Expr& x, const Expr& d) {
  if (const Expr* e = x.extent(); e && *e == d) return true;
  if (x.kind() == Expr::Kind::Mod && x.args()[1] == d && d.range().lo >= 0) return true;
  if (x.range().lo < 0) return false;
  auto m = symbolic_max(x);
  if (!m) return false;
  const Expr gap = d - *m;
  return gap.is_const() && gap.value() >= 1;
}

}  // namespace

// ---- construction -------------------------------------------------------

Expr::Expr(int64_t value) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::Const;
  n->value = value;
  n->hash = std::hash<int64_t>()(value);
  node_ = std::move(n);
}

Expr Expr::var(const std::string& name, int64_t lo, int64_t hi) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::Var;
  n->name = name;
  n->bounds = {lo, hi};
  n->hash = hash_combine(std::hash<std::string>()(name), 1);
  return Expr(std::shared_ptr<const Node>(std::move(n)));
}

Expr Expr::loop_index(const std::string& name, const Expr& extent) {
  Expr v = var(name, 0, Range::kInf);
  auto n = std::make_shared<Node>(*v.node_);
  n->extent = {extent};
  return Expr(std::shared_ptr<const Node>(std::move(n)));
}

const Expr* Expr::extent() const {
  return kind() == Kind::Var && !node_->extent.empty() ? &node_->extent[0] : nullptr;
}

Expr Expr::make(Kind kind, std::vector<Expr> args) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  size_t h = size_t(kind) * 1000003u;
  for (const Expr& a : args) h = hash_combine(h, a.hash());
  n->hash = h;
  n->args = std::move(args);
  return Expr(std::shared_ptr<const Node>(std::move(n)));
}

Expr::Kind Expr::kind() const { return node_->kind; }
std::optional<int64_t> Expr::as_const() const {
  if (is_const()) return node_->value;
  return std::nullopt;
}
int64_t Expr::value() const { return node_->value; }
const std::string& Expr::name() const { return node_->name; }
const std::vector<Expr>& Expr::args() const { return node_->args; }
size_t Expr::hash() const { return node_->hash; }

bool Expr::operator==(const Expr& o) const { return compare(*this, o) == 0; }

int Expr::compare(const Expr& a, const Expr& b) {
  if (a.node_ == b.node_) return 0;
  if (a.kind() != b.kind()) return a.kind() < b.kind() ? -1 : 1;
  switch (a.kind()) {
    case Kind::Const:
      return a.value() == b.value() ? 0 : (a.value() < b.value() ? -1 : 1);
    case Kind::Var:
      return a.name().compare(b.name()) < 0 ? -1 : (a.name() == b.name() ? 0 : 1);
    default:
      break;
  }
  const auto &x = a.args(), &y = b.args();
  if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
  for (size_t i = 0; i < x.size(); ++i)
    if (int c = compare(x[i], y[i])) return c;
  return 0;
}

namespace {
bool less(const Expr& a, const Expr& b) { return Expr::compare(a, b) < 0; }
}  // namespace

Expr product(const std::vector<Expr>& xs) {
  Expr p = 1;
  for (const Expr& x : xs) p = p * x;
  return p;
}

// ---- arithmetic ---------------------------------------------------------

Expr operator+(const Expr& a, const Expr& b) {
  if (a.is_const() && b.is_const()) return Expr(checked_add(a.value(), b.value()));
  if (a.is_const() && a.value() == 0) return b;
  if (b.is_const() && b.value() == 0) return a;
  // Collect terms, merge equal bases, drop zeros.
  std::vector<Term> terms;
  for (const Expr& side : {a, b})
    for (const Expr& t : add_operands(side)) terms.push_back(split_term(t));
  std::sort(terms.begin(), terms.end(),
            [](const Term& x, const Term& y) { return less(x.base, y.base); });
  std::vector<Term> merged;
  for (const Term& t : terms) {
    if (!merged.empty() && merged.back().base == t.base)
      merged.back().coef = checked_add(merged.back().coef, t.coef);
    else
      merged.push_back(t);
  }
  // (x // c) * c + x % c == x: the shape of every unravel-then-ravel.
  for (size_t m = 0; m < merged.size(); ++m) {
    const Term& rem = merged[m];
    if (rem.base.kind() != Expr::Kind::Mod || rem.coef == 0) continue;
    const Expr& x = rem.base.args()[0];
    const Expr& c = rem.base.args()[1];
    Expr quotient = floordiv(x, c);
    Term want = c.is_const() ? Term{rem.coef * c.value(), quotient} : Term{rem.coef, quotient * c};
    for (size_t q = 0; q < merged.size(); ++q) {
      if (q == m || merged[q].coef != want.coef || merged[q].base != want.base) continue;
      Expr rest = x * Expr(rem.coef);
      for (size_t o = 0; o < merged.size(); ++o)
        if (o != m && o != q) rest = rest + merged[o].base * Expr(merged[o].coef);
      return rest;
    }
  }
  int64_t constant = 0;
  std::vector<Expr> ops;
  for (const Term& t : merged) {
    if (t.coef == 0) continue;
    if (t.base.is_const()) {
      constant = checked_add(constant, checked_mul(t.coef, t.base.value()));
      continue;
    }
    ops.push_back(t.coef == 1 ? t.base : t.base * Expr(t.coef));
  }
  if (ops.empty()) return Expr(constant);
  if (constant != 0) ops.push_back(Expr(constant));
  if (ops.size() == 1) return ops[0];
  return Expr::make(Expr::Kind::Add, std::move(ops));
}

Expr operator-(const Expr& a) { return a * Expr(-1); }
Expr operator-(const Expr& a, const Expr& b) { return a + (-b); }

Expr operator*(const Expr& a, const Expr& b) {
  if (a.is_const() && b.is_const()) return Expr(checked_mul(a.value(), b.value()));
  for (const Expr* x : {&a, &b})
    if (x->is_const() && x->value() == 0) return Expr(0);
  if (a.is_const() && a.value() == 1) return b;
  if (b.is_const() && b.value() == 1) return a;
  // Distribute over sums so that equal polynomials look equal.
  if (a.kind() == Expr::Kind::Add || b.kind() == Expr::Kind::Add) {
    Expr sum = 0;
    for (const Expr& x : add_operands(a))
      for (const Expr& y : add_operands(b)) sum = sum + x * y;
    return sum;
  }
  int64_t coef = 1;
  std::vector<Expr> factors;
  for (const Expr& side : {a, b}) {
    if (side.is_const()) {
      coef = checked_mul(coef, side.value());
    } else if (side.kind() == Expr::Kind::Mul) {
      for (const Expr& f : side.args()) {
        if (f.is_const())
          coef = checked_mul(coef, f.value());
        else
          factors.push_back(f);
      }
    } else {
      factors.push_back(side);
    }
  }
  if (coef == 0) return Expr(0);
  std::sort(factors.begin(), factors.end(), less);
  if (coef != 1) factors.push_back(Expr(coef));
  if (factors.size() == 1) return factors[0];
  return Expr::make(Expr::Kind::Mul, std::move(factors));
}

Expr floordiv(const Expr& a, const Expr& b) {
  if (b.is_const()) {
    int64_t d = b.value();
    if (d == 1) return a;
    if (d == 0) return Expr::make(Expr::Kind::Div, {a, b});  // fails at eval
    if (a.is_const()) return Expr(floor_div(a.value(), d));
    if (d > 0) {
      // (k*d + r) // d == k + r // d, exactly, for integer k.
      Expr whole = 0, rest = 0;
      for (const Expr& t : add_operands(a)) {
        Term term = split_term(t);
        if (term.coef % d == 0)
          whole = whole + term.base * Expr(term.coef / d);
        else
          rest = rest + t;
      }
      if (!(whole.is_const() && whole.value() == 0)) return whole + floordiv(rest, b);
      if (a.kind() == Expr::Kind::Div && a.args()[1].is_const() && a.args()[1].value() > 0)
        return floordiv(a.args()[0], Expr(a.args()[1].value() * d));
      Range r = a.range();
      if (r.lo >= 0 && r.hi < d) return Expr(0);
      if (!is_inf(r.lo) && !is_inf(r.hi) && floor_div(r.lo, d) == floor_div(r.hi, d))
        return Expr(floor_div(r.lo, d));
      if (auto split = split_below(a, d)) return floordiv(split->high, Expr(d / split->unit));
    }
  } else {
    if (auto q = divide_by_factor(a, b)) return *q;
    if (below_divisor(a, b)) return Expr(0);
    if (auto s = split_multiple(a, b)) return s->q + floordiv(s->r, b);
  }
  return Expr::make(Expr::Kind::Div, {a, b});
}

Expr mod(const Expr& a, const Expr& b) {
  if (b.is_const()) {
    int64_t d = b.value();
    if (d == 1 || d == -1) return Expr(0);
    if (d == 0) return Expr::make(Expr::Kind::Mod, {a, b});  // fails at eval
    if (a.is_const()) return Expr(floor_mod(a.value(), d));
    if (d > 0) {
      Expr rest = 0;
      bool dropped = false;
      for (const Expr& t : add_operands(a)) {
        Term term = split_term(t);
        if (term.coef % d == 0)
          dropped = true;
        else
          rest = rest + Expr(term.coef % d) * term.base;
      }
      if (dropped || rest != a) return mod(rest, b);
      if (a.kind() == Expr::Kind::Mod && a.args()[1].is_const() &&
          a.args()[1].value() % d == 0)
        return mod(a.args()[0], b);
      Range r = a.range();
      if (r.lo >= 0 && r.hi < d) return a;
      if (auto split = split_below(a, d))
        return mod(split->high, Expr(d / split->unit)) * Expr(split->unit) + split->low;
    }
  } else {
    if (divide_by_factor(a, b)) return Expr(0);
    if (below_divisor(a, b)) return a;
    Range r = a.range(), rb = b.range();
    if (r.lo >= 0 && !is_inf(r.hi) && r.hi < rb.lo) return a;
    if (auto s = split_multiple(a, b)) return mod(s->r, b);
  }
  return Expr::make(Expr::Kind::Mod, {a, b});
}

namespace {
// `x` is an operand of the min/max expression `e` (absorption: max(a, min(a, b)) == a).
bool has_operand(const Expr& e, Expr::Kind kind, const Expr& x) {
  return e.kind() == kind && (e.args()[0] == x || e.args()[1] == x);
}
}  // namespace

Expr min(const Expr& a, const Expr& b) {
  if (a.is_const() && b.is_const()) return Expr(std::min(a.value(), b.value()));
  if (a == b || has_operand(b, Expr::Kind::Max, a)) return a;
  if (has_operand(a, Expr::Kind::Max, b)) return b;
  Range d = (a - b).range();
  if (d.hi <= 0) return a;
  if (d.lo >= 0) return b;
  return less(a, b) ? Expr::make(Expr::Kind::Min, {a, b}) : Expr::make(Expr::Kind::Min, {b, a});
}

Expr max(const Expr& a, const Expr& b) {
  if (a.is_const() && b.is_const()) return Expr(std::max(a.value(), b.value()));
  if (a == b || has_operand(b, Expr::Kind::Min, a)) return a;
  if (has_operand(a, Expr::Kind::Min, b)) return b;
  Range d = (a - b).range();
  if (d.lo >= 0) return a;
  if (d.hi <= 0) return b;
  return less(a, b) ? Expr::make(Expr::Kind::Max, {a, b}) : Expr::make(Expr::Kind::Max, {b, a});
}

Expr lt(const Expr& a, const Expr& b) {
  if (a.is_const() && b.is_const()) return Expr(int64_t(a.value() < b.value()));
  Range d = (a - b).range();
  if (d.hi < 0) return Expr(1);
  if (d.lo >= 0) return Expr(0);
  return Expr::make(Expr::Kind::Lt, {a, b});
}

// ---- evaluation and analysis ---------------------------------------------

int64_t Expr::eval(const Bindings& dims) const {
  switch (kind()) {
    case Kind::Const:
      return value();
    case Kind::Var: {
      auto it = dims.find(name());
      if (it == dims.end())
        throw UnboundDimError("dim '" + name() +
                              "' is not bound: call graph.set_dim(\"" + name() +
                              "\", value) or set an input whose shape uses it");
      return it->second;
    }
    default:
      break;
  }
  const auto& x = args();
  int64_t acc = x[0].eval(dims);
  for (size_t i = 1; i < x.size(); ++i) {
    int64_t v = x[i].eval(dims);
    switch (kind()) {
      case Kind::Add: acc = checked_add(acc, v); break;
      case Kind::Mul: acc = checked_mul(acc, v); break;
      case Kind::Div:
      case Kind::Mod:
        if (v == 0) throw ExecutionError("[dim] division by zero evaluating " + str());
        acc = kind() == Kind::Div ? floor_div(acc, v) : floor_mod(acc, v);
        break;
      case Kind::Min: acc = std::min(acc, v); break;
      case Kind::Max: acc = std::max(acc, v); break;
      case Kind::Lt: acc = acc < v; break;
      default: break;
    }
  }
  return acc;
}

Range Expr::range() const {
  switch (kind()) {
    case Kind::Const: return {value(), value()};
    case Kind::Var: return node_->bounds;
    case Kind::Lt: return {0, 1};
    default: break;
  }
  const auto& x = args();
  Range r = x[0].range();
  for (size_t i = 1; i < x.size(); ++i) {
    Range s = x[i].range();
    switch (kind()) {
      case Kind::Add:
        r = {sat_add(r.lo, s.lo), sat_add(r.hi, s.hi)};
        break;
      case Kind::Mul: {
        int64_t c[4] = {sat_mul(r.lo, s.lo), sat_mul(r.lo, s.hi), sat_mul(r.hi, s.lo),
                        sat_mul(r.hi, s.hi)};
        r = {*std::min_element(c, c + 4), *std::max_element(c, c + 4)};
        break;
      }
      case Kind::Div:
        if (s.lo > 0 && s.lo == s.hi) {
          r = {is_inf(r.lo) ? r.lo : floor_div(r.lo, s.lo),
               is_inf(r.hi) ? r.hi : floor_div(r.hi, s.lo)};
        } else if (s.lo >= 0 && r.lo >= 0) {
          // A divisor that may be 0 (a dim of an empty tensor) never divides:
          // eval throws and the loop it sits in is empty. So a nonnegative
          // quotient, which lets the printers use plain / and % downstream.
          r = {0, r.hi};
        } else {
          r = {-kInf, kInf};
        }
        break;
      case Kind::Mod:
        if (s.lo > 0) {
          if (r.lo >= 0 && r.hi < s.lo) break;  // unchanged
          r = {0, is_inf(s.hi) ? kInf : s.hi - 1};
        } else if (s.lo >= 0 && r.lo >= 0) {  // as for Div: 0 never divides
          r = {0, is_inf(s.hi) ? r.hi : std::min(r.hi, s.hi - 1)};
        } else {
          r = {-kInf, kInf};
        }
        break;
      case Kind::Min: r = {std::min(r.lo, s.lo), std::min(r.hi, s.hi)}; break;
      case Kind::Max: r = {std::max(r.lo, s.lo), std::max(r.hi, s.hi)}; break;
      default: break;
    }
  }
  return r;
}

size_t Expr::printed_size(size_t limit) const {
  size_t total = 1;
  for (const Expr& a : args()) {
    total += a.printed_size(limit - std::min(total, limit));
    if (total > limit) return limit + 1;
  }
  return total;
}

Expr substitute(const Expr& e, const std::string& name, const Expr& value) {
  switch (e.kind()) {
    case Expr::Kind::Const: return e;
    case Expr::Kind::Var: return e.name() == name ? value : e;
    default: break;
  }
  std::vector<Expr> x;
  for (const Expr& a : e.args()) x.push_back(substitute(a, name, value));
  Expr acc = x[0];
  for (size_t k = 1; k < x.size(); ++k) {
    switch (e.kind()) {
      case Expr::Kind::Add: acc = acc + x[k]; break;
      case Expr::Kind::Mul: acc = acc * x[k]; break;
      case Expr::Kind::Div: acc = floordiv(acc, x[k]); break;
      case Expr::Kind::Mod: acc = mod(acc, x[k]); break;
      case Expr::Kind::Min: acc = min(acc, x[k]); break;
      case Expr::Kind::Max: acc = max(acc, x[k]); break;
      case Expr::Kind::Lt: acc = lt(acc, x[k]); break;
      default: break;
    }
  }
  return acc;
}

std::set<std::string> Expr::vars() const {
  std::set<std::string> out;
  std::function<void(const Expr&)> walk = [&](const Expr& e) {
    if (e.kind() == Kind::Var) out.insert(e.name());
    for (const Expr& a : e.args()) walk(a);
  };
  walk(*this);
  return out;
}

namespace {
// Precedence for printing: higher binds tighter.
int precedence(Expr::Kind k) {
  switch (k) {
    case Expr::Kind::Lt: return 1;
    case Expr::Kind::Add: return 2;
    case Expr::Kind::Mul:
    case Expr::Kind::Div:
    case Expr::Kind::Mod: return 3;
    default: return 4;
  }
}
std::string wrap(const Expr& e, int parent) {
  std::string s = e.str();
  bool negative_const = e.is_const() && e.value() < 0;
  return (precedence(e.kind()) < parent || (negative_const && parent > 2)) ? "(" + s + ")" : s;
}
}  // namespace

std::string Expr::str() const {
  switch (kind()) {
    case Kind::Const: return std::to_string(value());
    case Kind::Var: return name();
    case Kind::Add: {
      std::string s = args()[0].str();
      for (size_t i = 1; i < args().size(); ++i) {
        Term t = split_term(args()[i]);
        if (t.coef < 0) {
          Expr positive = t.base * Expr(-t.coef);
          s += " - " + wrap(positive, 3);
        } else {
          s += " + " + args()[i].str();
        }
      }
      return s;
    }
    case Kind::Mul: {
      std::string s;
      const auto& f = args();
      if (f.back().is_const() && f.back().value() == -1) {
        std::vector<Expr> rest(f.begin(), f.end() - 1);
        return "-" + wrap(product(rest), 4);
      }
      for (size_t i = 0; i < f.size(); ++i) s += (i ? "*" : "") + wrap(f[i], 3);
      return s;
    }
    case Kind::Div: return wrap(args()[0], 3) + "//" + wrap(args()[1], 4);
    case Kind::Mod: return wrap(args()[0], 3) + "%" + wrap(args()[1], 4);
    case Kind::Min: return "min(" + args()[0].str() + ", " + args()[1].str() + ")";
    case Kind::Max: return "max(" + args()[0].str() + ", " + args()[1].str() + ")";
    case Kind::Lt: return wrap(args()[0], 2) + " < " + wrap(args()[1], 2);
  }
  return "?";
}

long double generic_magnitude(const Expr& e) {
  Bindings generic;
  int64_t v = 1000003;
  for (const std::string& name : e.vars()) generic[name] = (v += 1009);
  return (long double)e.eval(generic);
}

}  // namespace luminal
