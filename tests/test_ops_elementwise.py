"""Elementwise ops (unary math, arithmetic, comparisons) against PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import luminal as lm
from helpers import SPECIALS, check, rand

INF = float("inf")
NAN = float("nan")

# ---------------------------------------------------------------- unary math

# name -> (torch fn, lm fn, low, high, atol, rtol)
UNARY = {
    "exp": (torch.exp, lambda x: x.exp(), -5.0, 5.0, 1e-6, 2e-5),
    "exp2": (torch.exp2, lambda x: x.exp2(), -5.0, 5.0, 1e-6, 1e-5),
    "log": (torch.log, lambda x: x.log(), 0.01, 10.0, 1e-6, 1e-5),
    "log2": (torch.log2, lambda x: x.log2(), 0.01, 10.0, 1e-6, 1e-5),
    "sin": (torch.sin, lambda x: x.sin(), -10.0, 10.0, 1e-6, 1e-5),
    "cos": (torch.cos, lambda x: x.cos(), -2 * math.pi, 2 * math.pi, 2e-6, 1e-5),
    "sqrt": (torch.sqrt, lambda x: x.sqrt(), 0.0, 10.0, 1e-6, 1e-5),
    "rsqrt": (torch.rsqrt, lambda x: x.rsqrt(), 0.05, 10.0, 1e-6, 1e-5),
    "reciprocal": (torch.reciprocal, lambda x: x.reciprocal(), 0.1, 5.0, 1e-6, 1e-5),
    "neg_method": (torch.neg, lambda x: x.neg(), -3.0, 3.0, 0.0, 0.0),
    "neg_op": (lambda t: -t, lambda x: -x, -3.0, 3.0, 0.0, 0.0),
}


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5), (33,), (1,)], ids=str)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary(backend, name, shape):
    tfn, lfn, low, high, atol, rtol = UNARY[name]
    check(backend, [shape], tfn, lfn, atol=atol, rtol=rtol, low=low, high=high)


def test_reciprocal_negative_inputs(backend):
    check(backend, [(13,)], torch.reciprocal, lambda x: x.reciprocal(), low=-5.0, high=-0.1)


@pytest.mark.parametrize("name", ["exp", "exp2", "log", "log2", "sin", "cos", "sqrt", "rsqrt",
                                  "reciprocal", "neg_method"])
def test_unary_special_values(backend, name):
    """NaN, +-inf, +-0, FLT_MAX: NaN/inf propagation as in torch. sin/cos of inf are NaN."""
    tfn, lfn, *_ = UNARY[name]
    data = SPECIALS[np.abs(SPECIALS) < 1e38]  # FLT_MAX in sin/cos is precision-only
    check(backend, [], tfn, lfn, data=[data], atol=1e-6, rtol=1e-5)


def test_log_sqrt_of_negative_is_nan(backend):
    x = np.array([-1.0, -0.5, -3.0], dtype=np.float32)
    check(backend, [], lambda t: (t.log(), t.sqrt(), t.log2(), t.rsqrt()),
          lambda t: (t.log(), t.sqrt(), t.log2(), t.rsqrt()), data=[x])


def test_exp_overflow_and_underflow(backend):
    x = np.array([100.0, 89.0, -100.0, -104.0, 0.0], dtype=np.float32)
    check(backend, [], torch.exp, lambda t: t.exp(), data=[x], atol=0, rtol=2e-5)


def test_exp2_at_the_edges_of_the_float_range(backend):
    """exp2 where the result is subnormal, rounds to 0 or overflows, each
    lane beside ordinary ones in the same vector (the compiled CPU kernels
    compute such lanes apart from glibc's vector exp2f): within 4 ulp of the
    float64 value (1 where it is subnormal), zero exactly where it rounds to
    0, infinities exact, NaN kept (either sign)."""
    edges = [-np.inf, -1e30, -1000, -200, -151, -150.5, -150, -149.5, -149, -148.3, -140, -127,
             -126.5, -126, -125.9, -125, -64.5, 0, 100, 127.9, 128, 200, np.inf, np.nan, -np.nan]
    x = np.array([v for e in edges for v in (e, -1.0, 0.5, e, 3.25)] * 2, dtype=np.float32)
    cx = lm.Graph()
    y = cx.tensor(x.shape).set(x).exp2().retrieve()
    backend.run(cx)
    with np.errstate(over="ignore"):  # exp2(200) and up: inf, as wanted
        want = np.exp2(x.astype(np.float64)).astype(np.float32)
    got = y.numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = ~np.isnan(want)
    np.testing.assert_array_equal(got[finite] == 0, want[finite] == 0)
    np.testing.assert_array_equal(got[np.isinf(want)], want[np.isinf(want)])
    subnormal = finite & (want < np.finfo(np.float32).tiny)
    np.testing.assert_array_max_ulp(got[subnormal], want[subnormal], maxulp=1)
    np.testing.assert_array_max_ulp(got[finite], want[finite], maxulp=4)


def test_log2_at_the_edges_of_the_float_range(backend):
    """log2 of 0 (either sign), negatives, subnormals, the least and largest
    floats, inf and NaN, each beside ordinary lanes in the same vector (the
    compiled CPU kernels answer the special ones apart from glibc's vector
    log2f): -inf, NaN and inf exact, the rest within 4 ulp."""
    edges = [0.0, -0.0, -1.0, -np.inf, 1e-45, 1e-40, 1.17549435e-38, 1e-30, 0.75, 1.0, 3e38,
             np.finfo(np.float32).max, np.inf, np.nan, -np.nan]
    x = np.array([v for e in edges for v in (e, 2.0, 0.3, e, 7.5)] * 2, dtype=np.float32)
    cx = lm.Graph()
    y = cx.tensor(x.shape).set(x).log2().retrieve()
    backend.run(cx)
    with np.errstate(divide="ignore", invalid="ignore"):  # log2(0), log2(-1): as wanted
        want = np.log2(x.astype(np.float64)).astype(np.float32)
    got = y.numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    np.testing.assert_array_max_ulp(got[finite], want[finite], maxulp=4)


# ---------------------------------------------------------------- binary arithmetic

def _away_from_zero(shape, seed):
    """Data in +-[0.5, 2]: safe divisors with both signs."""
    r = rand(shape, 0.5, 2.0, seed)
    sign = np.where(rand(shape, -1.0, 1.0, seed + 100) < 0, -1.0, 1.0).astype(np.float32)
    return r * sign


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, 0.0),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, 0.0),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, 0.0),
    "div": (lambda a, b: a / b, lambda a, b: a / b, 1e-6),
    "mod": (lambda a, b: a % b, lambda a, b: a % b, 1e-6),
    "remainder": (torch.remainder, lambda a, b: a.remainder(b), 1e-6),
    "fmod": (torch.fmod, lambda a, b: a.fmod(b), 1e-6),
    "add_method": (torch.add, lambda a, b: a.add(b), 0.0),
    "sub_method": (torch.sub, lambda a, b: a.sub(b), 0.0),
    "mul_method": (torch.mul, lambda a, b: a.mul(b), 0.0),
    "div_method": (torch.div, lambda a, b: a.div(b), 1e-6),
}

SHAPE_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((4,), (3, 4)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (3, 1)),
    ((5, 1, 3), (4, 1)),
    ((7, 13), (13,)),
    ((33,), (33,)),
    ((2, 1, 3), (1, 1, 1)),
]


@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary(backend, name, shapes):
    tfn, lfn, rtol = BINARY[name]
    a = rand(shapes[0], -3.0, 3.0, seed=1)
    b = _away_from_zero(shapes[1], seed=2)
    check(backend, [], tfn, lfn, data=[a, b], atol=1e-6, rtol=rtol)


@pytest.mark.parametrize("name", ["mod", "fmod"])
def test_mod_exact_multiples_and_signs(backend, name):
    """Exact multiples give 0 (no shift by b); all four sign combinations."""
    a = np.array([6.0, -6.0, 6.0, -6.0, 7.5, -7.5, 7.5, -7.5, 0.0, 1.0, -1.0], dtype=np.float32)
    b = np.array([3.0, 3.0, -3.0, -3.0, 2.0, 2.0, -2.0, -2.0, 5.0, 3.0, 3.0], dtype=np.float32)
    tfn, lfn, _ = BINARY[name]
    check(backend, [], tfn, lfn, data=[a, b], atol=0, rtol=0)


@pytest.mark.parametrize("name", ["mod", "fmod"])
def test_mod_special_values(backend, name):
    """x mod 0 is NaN; inf mod y is NaN; finite mod +-inf as in torch."""
    a = np.array([2.0, -2.0, 2.0, -2.0, 2.0, INF, -INF, NAN, 2.0, 0.0], dtype=np.float32)
    b = np.array([INF, INF, -INF, -INF, 0.0, 2.0, 2.0, 2.0, NAN, INF], dtype=np.float32)
    tfn, lfn, _ = BINARY[name]
    check(backend, [], tfn, lfn, data=[a, b], atol=0, rtol=0)


def test_div_by_zero(backend):
    a = np.array([1.0, -1.0, 0.0, 2.0], dtype=np.float32)
    b = np.array([0.0, 0.0, 0.0, -0.0], dtype=np.float32)
    check(backend, [], lambda x, y: x / y, lambda x, y: x / y, data=[a, b], atol=0, rtol=0)


# ---------------------------------------------------------------- scalars on either side

SCALAR_OPS = {
    "x+2": (lambda x: x + 2, lambda x: x + 2),
    "2+x": (lambda x: 2 + x, lambda x: 2 + x),
    "x+0.25": (lambda x: x + 0.25, lambda x: x + 0.25),
    "x-3": (lambda x: x - 3, lambda x: x - 3),
    "2-x": (lambda x: 2 - x, lambda x: 2 - x),
    "1.5-x": (lambda x: 1.5 - x, lambda x: 1.5 - x),
    "x*1.5": (lambda x: x * 1.5, lambda x: x * 1.5),
    "3*x": (lambda x: 3 * x, lambda x: 3 * x),
    "x/4": (lambda x: x / 4, lambda x: x / 4),
    "1/x": (lambda x: 1 / x, lambda x: 1 / x),
    "-2.5/x": (lambda x: -2.5 / x, lambda x: -2.5 / x),
    "x%0.7": (lambda x: x % 0.7, lambda x: x % 0.7),
    "x%-0.7": (lambda x: x % -0.7, lambda x: x % -0.7),
    "5%x": (lambda x: 5 % x, lambda x: 5 % x),
    "-5%x": (lambda x: -5 % x, lambda x: -5 % x),
    "fmod(x,0.7)": (lambda x: torch.fmod(x, 0.7), lambda x: x.fmod(0.7)),
    "x*True": (lambda x: x * True, lambda x: x * True),
}


@pytest.mark.parametrize("name", list(SCALAR_OPS))
def test_scalar_operand(backend, name):
    tfn, lfn = SCALAR_OPS[name]
    x = _away_from_zero((4, 5), seed=3)
    check(backend, [], tfn, lfn, data=[x], atol=2e-6, rtol=1e-5)


def test_chained_expression(backend):
    check(
        backend, [(3, 4), (4,)],
        lambda a, b: (2 - a) * (b + 1) / (a * a + 1) - 0.5 * b,
        lambda a, b: (2 - a) * (b + 1) / (a * a + 1) - 0.5 * b,
        atol=1e-5, rtol=1e-5,
    )


def test_softmax_composite(backend):
    def lm_softmax(x):
        e = (x - x.amax(-1, keepdim=True)).exp()
        return e / e.sum(-1, keepdim=True)

    check(backend, [(5, 13)], lambda x: torch.softmax(x, -1), lm_softmax,
          atol=1e-6, rtol=1e-5, low=-10, high=10)


# ---------------------------------------------------------------- broadcasting / ranks / empty

@pytest.mark.parametrize(
    "shapes",
    [((4,), (2, 3, 4)), ((2, 3, 4), (1,)), ((3, 1, 5), (4, 1)), ((1, 1, 1, 3), (3,)),
     ((), (3, 4)), ((3, 4), ()), ((), ())],
    ids=str,
)
def test_broadcast_ranks(backend, shapes):
    check(backend, shapes, lambda a, b: a * b + a, lambda a, b: a * b + a)


def test_broadcast_mismatch_raises():
    cx = lm.Graph()
    a, b = cx.tensor((3, 4)), cx.tensor((3, 5))
    with pytest.raises(lm.ShapeError):
        a + b


def test_rank0_from_python_float(backend):
    cx = lm.Graph()
    a = cx.tensor(()).set(1.5)
    b = cx.tensor(()).set(-0.25)
    m = cx.tensor((2, 3)).set(rand((2, 3)))
    y1 = (a * 2 + a.exp() - b).retrieve()
    y2 = (m * a + b).retrieve()
    y3 = (a < b).retrieve()
    backend.run(cx)
    assert y1.shape == () and y1.numpy().shape == ()
    ta, tb, tm = torch.tensor(1.5), torch.tensor(-0.25), torch.from_numpy(rand((2, 3)))
    np.testing.assert_allclose(y1.numpy(), (ta * 2 + ta.exp() - tb).numpy(), rtol=1e-6)
    np.testing.assert_allclose(y2.numpy(), (tm * ta + tb).numpy(), rtol=1e-6, atol=1e-7)
    assert y1.item() == pytest.approx(3 + math.exp(1.5) + 0.25, rel=1e-6)
    assert y3.item() == 0.0


@pytest.mark.parametrize("shapes", [((0,), (0,)), ((0, 4), (4,)), ((3, 0), (1, 0)), ((2, 0, 3), (1,))],
                         ids=str)
def test_empty_elementwise(backend, shapes):
    check(backend, shapes, lambda a, b: (a + b).exp() * b, lambda a, b: (a + b).exp() * b)


# ---------------------------------------------------------------- comparisons

CMP = {
    "lt": (lambda a, b: a < b, lambda a, b: a < b),
    "le": (lambda a, b: a <= b, lambda a, b: a <= b),
    "gt": (lambda a, b: a > b, lambda a, b: a > b),
    "ge": (lambda a, b: a >= b, lambda a, b: a >= b),
    "eq": (lambda a, b: a == b, lambda a, b: a == b),
    "ne": (lambda a, b: a != b, lambda a, b: a != b),
    "lt_method": (torch.lt, lambda a, b: a.lt(b)),
    "le_method": (torch.le, lambda a, b: a.le(b)),
    "gt_method": (torch.gt, lambda a, b: a.gt(b)),
    "ge_method": (torch.ge, lambda a, b: a.ge(b)),
    "eq_method": (torch.eq, lambda a, b: a.eq(b)),
    "ne_method": (torch.ne, lambda a, b: a.ne(b)),
}


@pytest.mark.parametrize("shapes", [((4, 5), (4, 5)), ((4, 5), (5,)), ((3, 1), (1, 6))], ids=str)
@pytest.mark.parametrize("name", list(CMP))
def test_compare_with_ties(backend, name, shapes):
    """Small-integer data so equal pairs occur; result is exactly 0.0/1.0."""
    a = np.round(rand(shapes[0], -2.0, 2.0, 4))
    b = np.round(rand(shapes[1], -2.0, 2.0, 5))
    tfn, lfn = CMP[name]
    (got,) = check(backend, [], tfn, lfn, data=[a, b], atol=0, rtol=0)
    assert set(np.unique(got)) <= {0.0, 1.0}


@pytest.mark.parametrize("name", list(CMP)[:6])
def test_compare_special_values(backend, name):
    """Every pair of NaN, +-inf, +-0, +-1, +-FLT_MAX: NaN compares false (ne true)."""
    a = SPECIALS.reshape(-1, 1)
    b = SPECIALS.reshape(1, -1)
    tfn, lfn = CMP[name]
    check(backend, [], tfn, lfn, data=[a, b], atol=0, rtol=0)


@pytest.mark.parametrize("scalar", [0.5, 0.0, INF, -INF, NAN, 3.4028235e38], ids=str)
@pytest.mark.parametrize("name", list(CMP)[:6])
def test_compare_scalar_both_sides(backend, name, scalar):
    tfn, lfn = CMP[name]
    x = np.concatenate([SPECIALS, np.array([0.5, -0.5], np.float32)])
    check(backend, [], lambda t: (tfn(t, scalar), tfn(scalar, t)),
          lambda t: (lfn(t, scalar), lfn(scalar, t)), data=[x], atol=0, rtol=0)


def test_compare_feeds_arithmetic(backend):
    """Masks from comparisons used as numbers (ReLU-style select)."""
    check(backend, [(6, 7)], lambda x: x * (x > 0) + 0.1 * x * (x <= 0),
          lambda x: x * (x > 0) + 0.1 * x * (x <= 0))


# ---------------------------------------------------------------- property: random broadcasting

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def _broadcastable_pair(draw):
    out = draw(st.lists(st.integers(1, 5), min_size=0, max_size=4))
    def side():
        dims = [d if draw(st.booleans()) else 1 for d in out]
        return tuple(dims[draw(st.integers(0, len(dims))):])
    return side(), side()


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shapes=_broadcastable_pair(), op=st.sampled_from(["add", "sub", "mul", "lt", "ge", "eq"]))
def test_broadcast_property(backend, shapes, op):
    sa, sb = shapes
    if sa == () or sb == ():
        sa, sb = sa or (1,), sb or (1,)  # rank-0 inputs: see test_broadcast_ranks
    fns = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
           "lt": lambda a, b: a < b, "ge": lambda a, b: a >= b, "eq": lambda a, b: a == b}
    a = np.round(rand(sa, -2, 2, 1))
    b = np.round(rand(sb, -2, 2, 2))
    check(backend, [], fns[op], fns[op], data=[a, b], atol=0, rtol=0)


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_special_values(backend, name):
    vals = [float("-inf"), -2.0, -0.0, 0.0, 3.5, float("inf"), float("nan")]
    a = np.array([x for x in vals for _ in vals], dtype=np.float32)
    b = np.array([y for _ in vals for y in vals], dtype=np.float32)
    fn = {"maximum": lm.maximum, "minimum": lm.minimum}[name]
    check(backend, [a.shape, b.shape], getattr(torch, name), fn, data=[a, b])
    check(backend, [(3, 1), (1, 4)], getattr(torch, name), lambda x, y: getattr(x, name)(y))
