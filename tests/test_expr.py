"""Symbolic dims (``lm.Expr``): arithmetic, canonical form, simplification of
index math, and evaluation with Python's floor-division semantics."""

from __future__ import annotations

import operator
from collections import defaultdict
from typing import Any, Dict, Tuple, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import luminal as lm

E = lm.Expr


def ev(code: str) -> lm.Expr:
    """Evaluate a case written as Python over ``s`` (dim "seq"), ``t`` and ``E``.
    Cases are strings so no Expr outlives a test (nanobind reports those as
    leaks at exit)."""
    return eval(code, {"s": E.var("seq"), "t": E.var("t"), "E": E})  # noqa: S307


# ---- construction and basic arithmetic -------------------------------------------


def test_const_and_var_basics() -> None:
    s, t = E.var("seq"), E.var("t")
    assert E(7).is_const and E(7).as_const() == 7
    assert not s.is_const and s.as_const() is None
    assert s.vars() == {"seq"}
    assert (s * t + 3).vars() == {"seq", "t"}
    assert E(3).vars() == set()


@pytest.mark.parametrize(
    "code, want",
    [
        ("s + 3", 10),
        ("3 + s", 10),
        ("s - 10", -3),
        ("10 - s", 3),
        ("s * 6", 42),
        ("6 * s", 42),
        ("-s", -7),
        ("s // 2", 3),
        ("(s - 10) // 4", -1),  # floor, not truncation: -3 // 4 == -1
        ("(s - 10) % 4", 1),  # Python modulo: -3 % 4 == 1
        ("100 // s", 14),
        ("100 % s", 2),
        ("s.min(5)", 5),
        ("s.min(9)", 7),
        ("s.max(9)", 9),
        ("s.max(5)", 7),
        ("s.lt(8)", 1),
        ("s.lt(7)", 0),
        ("s.lt(3)", 0),
    ],
)
def test_arithmetic_with_ints_eval(code: str, want: int) -> None:
    assert ev(code).eval({"seq": 7}) == want


def test_const_folding_of_int_arithmetic() -> None:
    assert (E(7) // 2).as_const() == 3
    assert (E(-7) // 2).as_const() == -4
    assert (E(-7) % 3).as_const() == 2
    assert (E(7) % -3).as_const() == -2
    assert (E(-7) // -2).as_const() == 3
    assert E(3).min(-4).as_const() == -4
    assert E(3).max(-4).as_const() == 3
    assert E(3).lt(4).as_const() == 1 and E(4).lt(4).as_const() == 0


# ---- canonical form: equal polynomials are equal ------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ("s * 64", "(s * 8) * 8"),
        ("(s + 1) * (s - 1)", "s * s - 1"),
        ("s * t", "t * s"),
        ("s + t", "t + s"),
        ("(s + t) * (s + t)", "s * s + 2 * s * t + t * t"),
        ("s * 2 - s", "s"),
        ("s - s", "E(0)"),
        ("0 * s", "E(0)"),
        ("(s + 3) - (3 + s)", "E(0)"),
        ("(s // 4) * 2 + s // 4", "3 * (s // 4)"),
        ("(s + 1) * 3 - 3", "s * 3"),
    ],
)
def test_equal_polynomials_are_structurally_equal(a: str, b: str) -> None:
    x, y = ev(a), ev(b)
    assert x == y
    assert not (x != y)
    assert hash(x) == hash(y)


@pytest.mark.parametrize(
    "a, b",
    [("s", "t"), ("s * 2", "s * 3"), ("s // 2", "s // 3"), ("s % 2", "s % 3"), ("s + 1", "s"), ("s.min(3)", "s.max(3)")],
)
def test_different_expressions_are_unequal(a: str, b: str) -> None:
    x, y = ev(a), ev(b)
    assert x != y
    assert not (x == y)


def test_expr_compares_to_non_expr_as_unequal() -> None:
    s = E.var("seq")
    assert (s == "seq") is False
    assert (s != "seq") is True
    assert (s == 2.5) is False


def test_expr_compares_to_none_as_unequal() -> None:
    # The stub declares __eq__/__ne__(object); None must not raise TypeError.
    s = E.var("seq")
    assert (s == None) is False  # noqa: E711
    assert (s != None) is True  # noqa: E711


def test_expr_equals_int_by_value() -> None:
    # The stub declares __eq__(Expr | int); a constant Expr should equal its int.
    five = (E.var("seq") * 64 + 5) % 64
    assert five.as_const() == 5
    assert five == 5
    assert E(5) == 5
    assert not (E(5) != 5)
    assert E(5) != 6
    assert E.var("seq") != 5


# ---- simplification of common index math ------------------------------------------


@pytest.mark.parametrize(
    "got, want",
    [
        ("(s * 64 + 5) // 64", "s"),
        ("(s * 64 + 5) % 64", "E(5)"),
        ("(s * 64) % 64", "E(0)"),
        ("(s * 64 - 5) // 64", "s - 1"),
        ("(s * 8 + t) // 8", "s + t // 8"),
        ("(s * 8 + t) % 8", "t % 8"),
        ("s // 1", "s"),
        ("s % 1", "E(0)"),
        ("(s // 4) // 2", "s // 8"),
        ("(s % 8) % 4", "s % 4"),
        ("(s % 4) % 8", "s % 4"),
        ("(s % 4) // 4", "E(0)"),
        ("(s * t) // t", "s"),
        ("(s * t) % t", "E(0)"),
        ("s.min(s + 1)", "s"),
        ("s.max(s - 1)", "s"),
        ("s.lt(s + 1)", "E(1)"),
        ("s.lt(0)", "E(0)"),  # dims are >= 0
        ("s.max(0)", "s"),
        ("s.min(0)", "E(0)"),
        ("(s % 4).min(4)", "s % 4"),
        # an inner coordinate (t % 128 < 128) never carries into the outer ones
        ("(s * 128 + t % 128) // 16384", "s // 128"),
        ("(s * 128 + t % 128) % 16384", "(s % 128) * 128 + t % 128"),
        ("(s * 256 + t * 256 + (s % 256)) // 32768", "(s + t) // 128"),
        ("(s * 6 + t % 2) // 4", "(s * 3) // 2"),  # 6s + t%2 == 2 * 3s + (0 or 1)
        ("(s * 6 + t % 2) % 4", "((s * 3) % 2) * 2 + t % 2"),
        ("(s * 4 + t % 5) // 8", "(s * 4 + t % 5) // 8"),  # t % 5 may reach 4: no split
        # symbolic divisors: multiples of a polynomial divisor come out whole
        ("((s + t) * 5 + 2) // (s + t)", "2 // (s + t) + 5"),
        ("((s + t) * 5 + 2) % (s + t)", "2 % (s + t)"),
        ("((s * t + t * t) * 3 + s) // (s * t + t * t)", "s // (s * t + t * t) + 3"),
        ("((s * t + t * t) * 3 + s) % (s * t + t * t)", "s % (s * t + t * t)"),
        # a mixed-radix index below its symbolic extent: s % t + t * (s % 4) < 4t
        ("(s % t + t * (s % 4)) // (t * 4)", "E(0)"),
        ("(s % t + t * (s % 4)) % (t * 4)", "s % t + t * (s % 4)"),
        ("(s % t + t * (s % 5)) // (t * 4)", "(s % t + t * (s % 5)) // (t * 4)"),  # may reach 5t
        ("((s % t) % t) // t", "E(0)"),
        # a quotient bounds by its numerator's bound: (s % 4t) // 4 <= t - 1
        ("(s % 64 + ((s % (t * 4)) // 4) * 64) // (t * 64)", "E(0)"),
        ("(s % 64 + ((s % (t * 4)) // 4) * 64) % (t * 64)", "s % 64 + ((s % (t * 4)) // 4) * 64"),
        ("(s % 64 + ((s % (t * 4 + 4)) // 4) * 64) // (t * 64)",  # may reach 64t + 63
         "(s % 64 + ((s % (t * 4 + 4)) // 4) * 64) // (t * 64)"),
    ],
)
def test_index_math_simplifies(got: str, want: str) -> None:
    x, y = ev(got), ev(want)
    assert x == y, f"{got} simplified to {x}, expected {y}"


def test_row_major_index_roundtrip_simplifies() -> None:
    # flat = i*64 + j: with a constant j, // and % must fold exactly.
    s = E.var("seq")
    for j in (0, 5, 63):
        flat = s * 64 + j
        assert flat // 64 == s
        assert (flat % 64).as_const() == j


# ---- eval and errors ------------------------------------------------------------


def test_eval_unbound_var_raises_naming_it() -> None:
    s, t = E.var("seq"), E.var("t")
    with pytest.raises(lm.UnboundDimError, match="'seq'"):
        (s * 2 + 1).eval({})
    with pytest.raises(RuntimeError, match="'t'"):
        (s + t).eval({"seq": 3})
    assert issubclass(lm.UnboundDimError, RuntimeError)


def test_eval_division_by_zero_raises() -> None:
    s, t = E.var("seq"), E.var("t")
    with pytest.raises(lm.ExecutionError, match="division by zero"):
        (s // 0).eval({"seq": 3})
    with pytest.raises(lm.ExecutionError, match="division by zero"):
        (s % t).eval({"seq": 3, "t": 0})


def test_eval_ignores_extra_bindings() -> None:
    assert (E.var("seq") * 3).eval({"seq": 2, "other": 100}) == 6


# ---- random expression trees vs plain Python ------------------------------------

Tree = Union[Tuple[Any, ...], int, str]
VARS = ("a", "b")

leaves = st.one_of(st.integers(-6, 6), st.sampled_from(VARS))


def _extend(children: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
    # Divisors are kept positive: a positive int, var+k, or max(tree, k).
    divisor = st.one_of(
        st.integers(1, 9),
        st.tuples(st.just("+"), st.sampled_from(VARS), st.integers(1, 3)),
        st.tuples(st.just("max"), children, st.integers(1, 5)),
    )
    return st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*", "min", "max", "lt"]), children, children),
        st.tuples(st.sampled_from(["//", "%"]), children, divisor),
        st.tuples(st.just("neg"), children),
    )


trees = st.recursive(leaves, _extend, max_leaves=12)

# The tree ops that are Python operators: the same on ints and on Exprs.
ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod}


def py_eval(tree: Tree, env: Dict[str, int]) -> int:
    if isinstance(tree, int):
        return tree
    if isinstance(tree, str):
        return env[tree]
    op = tree[0]
    if op == "neg":
        return -py_eval(tree[1], env)
    x, y = py_eval(tree[1], env), py_eval(tree[2], env)
    if op in ARITH:
        return ARITH[op](x, y)
    if op == "min":
        return min(x, y)
    if op == "max":
        return max(x, y)
    if op == "lt":
        return int(x < y)
    raise AssertionError(op)


def build(tree: Tree) -> Union[lm.Expr, int]:
    """The tree as an Expr; int leaves stay Python ints so the reflected
    operators (int + Expr, int // Expr, ...) are exercised too."""
    if isinstance(tree, int):
        return tree
    if isinstance(tree, str):
        return E.var(tree)
    op = tree[0]
    if op == "neg":
        x = build(tree[1])
        return -x
    x, y = build(tree[1]), build(tree[2])
    if isinstance(x, int) and isinstance(y, int):
        x = E(x)
    if op in ("min", "max", "lt"):
        xe = x if isinstance(x, E) else E(x)
        return getattr(xe, op)(y)
    if op in ARITH:
        return ARITH[op](x, y)
    raise AssertionError(op)


def as_expr(v: Union[lm.Expr, int]) -> lm.Expr:
    return v if isinstance(v, E) else E(v)


@settings(max_examples=300, deadline=None)
@given(trees, st.integers(0, 40), st.integers(0, 40))
def test_random_expr_eval_matches_python(tree: Tree, a: int, b: int) -> None:
    env = {"a": a, "b": b}
    expr = as_expr(build(tree))
    want = py_eval(tree, env)
    assert expr.eval(env) == want, f"{tree} simplified to {expr}"
    assert expr.vars() <= set(VARS)


@settings(max_examples=100, deadline=None)
@given(trees, st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=4))
def test_random_expr_constant_iff_value_constant(tree: Tree, points: list) -> None:
    """A simplified constant must hold everywhere; vars() names only real vars."""
    expr = as_expr(build(tree))
    c = expr.as_const()
    if c is not None:
        for a, b in points:
            assert py_eval(tree, {"a": a, "b": b}) == c, f"{tree} folded to {c}"


# ---- polynomials: canonical form ---------------------------------------------------

poly_trees = st.recursive(
    leaves,
    lambda ch: st.tuples(st.sampled_from(["+", "-", "*"]), ch, ch),
    max_leaves=10,
)


def expand_poly(tree: Tree) -> Dict[Tuple[str, ...], int]:
    """The tree as {sorted monomial: coefficient}."""
    if isinstance(tree, int):
        return {(): tree} if tree else {}
    if isinstance(tree, str):
        return {(tree,): 1}
    op, l, r = tree
    x, y = expand_poly(l), expand_poly(r)
    out: Dict[Tuple[str, ...], int] = defaultdict(int)
    if op in ("+", "-"):
        for m, c in x.items():
            out[m] += c
        for m, c in y.items():
            out[m] += c if op == "+" else -c
    else:
        for m1, c1 in x.items():
            for m2, c2 in y.items():
                out[tuple(sorted(m1 + m2))] += c1 * c2
    return {m: c for m, c in out.items() if c}


def from_poly(poly: Dict[Tuple[str, ...], int]) -> lm.Expr:
    """Rebuild in a different order: monomials reversed, coefficient first."""
    out = E(0)
    for mono, coef in sorted(poly.items(), reverse=True):
        term: lm.Expr = E(coef)
        for v in reversed(mono):
            term = term * E.var(v)
        out = term + out
    return out


@settings(max_examples=200, deadline=None)
@given(poly_trees)
def test_equal_polynomials_compare_equal(tree: Tree) -> None:
    got = as_expr(build(tree))
    want = from_poly(expand_poly(tree))
    assert got == want, f"{tree}: {got} vs {want}"
    assert hash(got) == hash(want)
