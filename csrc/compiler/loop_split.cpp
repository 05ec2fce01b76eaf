#include "compiler/loop_split.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <sstream>

#include "compiler/c_family.h"

namespace luminal {
namespace {

bool uses(const Expr& e, const std::string& var) { return e.vars().count(var) > 0; }

bool compound(const Expr& e) { return e.kind() != Expr::Kind::Const && e.kind() != Expr::Kind::Var; }

// `e` rebuilt bottom-up (and so simplified again), each subexpression first
// offered to `f`, whose answer replaces it.
Expr rewrite(const Expr& e, const std::function<std::optional<Expr>(const Expr&)>& f) {
  if (std::optional<Expr> r = f(e)) return *r;
  if (!compound(e)) return e;
  std::vector<Expr> a;
  for (const Expr& x : e.args()) a.push_back(rewrite(x, f));
  switch (e.kind()) {
    case Expr::Kind::Add: {
      Expr s = a[0];
      for (size_t i = 1; i < a.size(); ++i) s = s + a[i];
      return s;
    }
    case Expr::Kind::Mul: return product(a);
    case Expr::Kind::Div: return floordiv(a[0], a[1]);
    case Expr::Kind::Mod: return mod(a[0], a[1]);
    case Expr::Kind::Min: return min(a[0], a[1]);
    case Expr::Kind::Max: return max(a[0], a[1]);
    case Expr::Kind::Lt: return lt(a[0], a[1]);
    default: return e;
  }
}

void rewrite_body(std::vector<KValue>& body, const std::function<std::optional<Expr>(const Expr&)>& f) {
  for (KValue& v : body) {
    v.index = rewrite(v.index, f);
    v.valid = rewrite(v.valid, f);
    v.dim = rewrite(v.dim, f);
  }
}

void each_node(const Expr& e, const std::function<void(const Expr&)>& f) {
  f(e);
  if (compound(e))
    for (const Expr& x : e.args()) each_node(x, f);
}

// The variable `var` as `e` holds it (its range and extent included).
std::optional<Expr> find_var(const Expr& e, const std::string& var) {
  std::optional<Expr> found;
  each_node(e, [&](const Expr& x) {
    if (!found && x.kind() == Expr::Kind::Var && x.name() == var) found = x;
  });
  return found;
}

// Where comparison `c` changes along `var`: c is (var < at) when below is 1,
// (at <= var) when below is 0.
struct Seam {
  Expr at;
  int below;
};

std::optional<Seam> seam_of(const Expr& c, const std::string& var) {
  if (c.kind() != Expr::Kind::Lt) return std::nullopt;
  const Expr &x = c.args()[0], &y = c.args()[1];
  const std::optional<Expr> v = find_var(c, var);
  if (!v) return std::nullopt;
  if (uses(x, var) && !uses(y, var)) {  // var + d < y
    const Expr d = x - *v;
    if (!uses(d, var)) return Seam{y - d, 1};
  } else if (uses(y, var) && !uses(x, var)) {  // x < var + d, so x - d + 1 <= var
    const Expr d = y - *v;
    if (!uses(d, var)) return Seam{x - d + 1, 0};
  }
  return std::nullopt;
}

bool divides(const Expr& e) {
  bool found = false;
  each_node(e, [&](const Expr& x) {
    found = found || x.kind() == Expr::Kind::Div || x.kind() == Expr::Kind::Mod;
  });
  return found;
}

}  // namespace

std::vector<LoopPiece> split_at_seam(const std::vector<KValue>& body, const std::string& var,
                                     const Expr& length) {
  // Comparisons that never change over [0, length) resolve in every piece
  // (`var < length` itself); the first that does is the seam.
  const std::optional<int64_t> n = length.as_const();
  auto constant = [&](const Seam& s) -> std::optional<int> {
    const std::optional<int64_t> p = s.at.as_const();
    if (s.at == length || (p && n && *p >= *n)) return s.below;  // var is below it throughout
    if (p && *p <= 0) return 1 - s.below;                          // var is at or above it throughout
    return std::nullopt;
  };
  std::optional<Expr> at;
  for (const KValue& v : body)
    each_node(v.valid, [&](const Expr& c) {
      std::optional<Seam> s = seam_of(c, var);
      if (!at && s && !constant(*s)) at = s->at;
    });
  auto side = [&](bool below) {
    std::vector<KValue> out = body;
    rewrite_body(out, [&](const Expr& c) -> std::optional<Expr> {
      std::optional<Seam> s = seam_of(c, var);
      if (!s) return std::nullopt;
      if (std::optional<int> k = constant(*s)) return Expr(*k);
      if (!at || !(s->at == *at)) return std::nullopt;
      return Expr(below ? s->below : 1 - s->below);
    });
    if (at && below)  // var < at here: x // at and x % at fold in the indices, as guarded_index does
      for (KValue& v : out) v.index = substitute(v.index, var, Expr::loop_index(var, *at));
    return out;
  };
  if (!at) return {LoopPiece{0, length, side(true)}};
  return {LoopPiece{0, min(*at, length), side(true)}, LoopPiece{max(*at, Expr(0)), length, side(false)}};
}

std::vector<Expr> invariant_guards(const std::vector<KValue>& body, const std::string& var) {
  std::vector<Expr> out;
  for (const KValue& v : body) {
    const std::vector<Expr> factors =
        v.valid.kind() == Expr::Kind::Mul ? v.valid.args() : std::vector<Expr>{v.valid};
    for (const Expr& f : factors)
      if (!f.is_const() && !uses(f, var) && std::find(out.begin(), out.end(), f) == out.end())
        out.push_back(f);
  }
  return out;
}

std::vector<KValue> assume_true(std::vector<KValue> body, const std::vector<Expr>& guards) {
  rewrite_body(body, [&](const Expr& e) -> std::optional<Expr> {
    if (std::find(guards.begin(), guards.end(), e) != guards.end()) return Expr(1);
    return std::nullopt;
  });
  return body;
}

std::string hoist_divisions(std::vector<KValue>& body, const std::string& var,
                            const std::string& prefix, const std::string& indent) {
  std::vector<std::pair<Expr, Expr>> locals;  // subexpression, the local standing for it
  std::ostringstream decls;
  rewrite_body(body, [&](const Expr& e) -> std::optional<Expr> {
    if (!compound(e) || uses(e, var) || !divides(e)) return std::nullopt;
    for (const auto& [sub, local] : locals)
      if (sub == e) return local;
    const Range r = e.range();
    // "$": printed as is, and not a loop index (guarded_index treats "@"
    // variables below a bound as indices from 0, and this one may be negative)
    const Expr local = Expr::var("$" + prefix + std::to_string(locals.size()), r.lo, r.hi);
    std::vector<Expr> divisors;
    each_node(e, [&](const Expr& x) {
      if ((x.kind() == Expr::Kind::Div || x.kind() == Expr::Kind::Mod) && !x.args()[1].is_const() &&
          std::find(divisors.begin(), divisors.end(), x.args()[1]) == divisors.end())
        divisors.push_back(x.args()[1]);
    });
    std::string nonzero;
    for (const Expr& d : divisors) nonzero += std::string(nonzero.empty() ? "" : " && ") + c_expr(d) + " != 0";
    decls << indent << "const int64_t " << var_name(local.name()) << " = "
          << (nonzero.empty() ? c_expr(e) : "(" + nonzero + ") ? " + c_expr(e) + " : 0") << ";\n";
    locals.emplace_back(e, local);
    return local;
  });
  return decls.str();
}

}  // namespace luminal
