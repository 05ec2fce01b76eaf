"""Elementwise ops of hl_ops/elementwise.py (math, activations, rounding, pow,
selection, logical ops and tests) against PyTorch, on random data with odd
sizes and broadcasting and on special values (±inf, NaN, ±0, huge, halves)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import luminal as lm
from helpers import SPECIALS, check, rand

INF = float("inf")
NAN = float("nan")
FLT_MAX = 3.4028235e38

# SPECIALS plus values that hit each op's branches: tiny, halves, near pi/2,
# around 2**23, activation thresholds, overflow points of exp.
EXTRA = np.array(
    [1e-6, -1e-6, 1e-30, -1e-30, 0.5, -0.5, 1.5, 3.5, -3.5, 0.49999997, 1.5707964, 1.57, -1.5707964,
     3.1415927, 20.0, -20.0, 30.0, 88.0, -88.0, 100.0, -100.0, 8388609.0, -8388609.5, 16777216.0,
     7e12, -7e12, 1e30, -1e30, 3.0, -3.0, 6.0, 1.4e-45, -1.4e-45],
    dtype=np.float32,
)
SPECIAL_DATA = np.concatenate([SPECIALS, EXTRA])

# ---------------------------------------------------------------- unary ops

# name -> (torch fn, luminal method call, functional lm.<name>, low, high, atol, rtol)
UNARY = {
    "abs": (torch.abs, lambda x: x.abs(), lm.abs, -5, 5, 0, 0),
    "abs_builtin": (torch.abs, lambda x: abs(x), lm.abs, -5, 5, 0, 0),
    "sign": (torch.sign, lambda x: x.sign(), lm.sign, -5, 5, 0, 0),
    "square": (torch.square, lambda x: x.square(), lm.square, -5, 5, 0, 0),
    "expm1": (torch.expm1, lambda x: x.expm1(), lm.expm1, -10, 10, 1e-6, 2e-6),
    "log1p": (torch.log1p, lambda x: x.log1p(), lm.log1p, -0.99, 10, 1e-7, 1e-6),
    "tan": (torch.tan, lambda x: x.tan(), lm.tan, -10, 10, 1e-6, 2e-6),
    "tanh": (torch.tanh, lambda x: x.tanh(), lm.tanh, -10, 10, 1e-7, 1e-6),
    "sigmoid": (torch.sigmoid, lambda x: x.sigmoid(), lm.sigmoid, -20, 20, 1e-7, 2e-6),
    "erf": (torch.erf, lambda x: x.erf(), lm.erf, -4, 4, 1e-7, 1e-6),
    "relu": (torch.relu, lambda x: x.relu(), lm.relu, -5, 5, 0, 0),
    "relu6": (F.relu6, lambda x: x.relu6(), lm.relu6, -10, 10, 0, 0),
    "leaky_relu": (F.leaky_relu, lambda x: x.leaky_relu(), lm.leaky_relu, -5, 5, 0, 0),
    "elu": (F.elu, lambda x: x.elu(), lm.elu, -10, 10, 1e-7, 1e-6),
    "gelu": (F.gelu, lambda x: x.gelu(), lm.gelu, -6, 6, 1e-6, 1e-5),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), lambda x: x.gelu(approximate="tanh"),
                  lambda x: lm.gelu(x, approximate="tanh"), -6, 6, 1e-6, 1e-5),
    "silu": (F.silu, lambda x: x.silu(), lm.silu, -20, 20, 1e-6, 2e-6),
    "softplus": (F.softplus, lambda x: x.softplus(), lm.softplus, -30, 30, 1e-6, 2e-6),
    "mish": (F.mish, lambda x: x.mish(), lm.mish, -20, 20, 1e-6, 2e-6),
    "hardswish": (F.hardswish, lambda x: x.hardswish(), lm.hardswish, -5, 5, 1e-7, 1e-6),
    "hardsigmoid": (F.hardsigmoid, lambda x: x.hardsigmoid(), lm.hardsigmoid, -5, 5, 1e-7, 1e-6),
    "floor": (torch.floor, lambda x: x.floor(), lm.floor, -50, 50, 0, 0),
    "ceil": (torch.ceil, lambda x: x.ceil(), lm.ceil, -50, 50, 0, 0),
    "round": (torch.round, lambda x: x.round(), lm.round, -50, 50, 0, 0),
    "trunc": (torch.trunc, lambda x: x.trunc(), lm.trunc, -50, 50, 0, 0),
    "isnan": (torch.isnan, lambda x: x.isnan(), lm.isnan, -5, 5, 0, 0),
    "isinf": (torch.isinf, lambda x: x.isinf(), lm.isinf, -5, 5, 0, 0),
    "isfinite": (torch.isfinite, lambda x: x.isfinite(), lm.isfinite, -5, 5, 0, 0),
    "logical_not": (torch.logical_not, lambda x: x.logical_not(), lm.logical_not, -5, 5, 0, 0),
    "nan_to_num": (torch.nan_to_num, lambda x: x.nan_to_num(), lm.nan_to_num, -5, 5, 0, 0),
}


@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 9)], ids=str)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_random(backend, name, shape):
    """Method and functional forms on random data against torch."""
    tfn, method, func, low, high, atol, rtol = UNARY[name]
    check(backend, [shape], lambda t: (tfn(t), tfn(t)), lambda x: (method(x), func(x)),
          atol=atol, rtol=rtol, low=low, high=high,
          grad=name != "nan_to_num")  # exact by integer tricks, so piecewise constant here


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_special_values(backend, name):
    """NaN, ±inf, ±0, ±FLT_MAX, denormals, halves, overflow points: as torch."""
    tfn, method, _, _, _, atol, rtol = UNARY[name]
    if name == "gelu":  # torch's float32 gelu answers inf by CPU: inf with AVX2, NaN with AVX-512
        tfn = lambda t, f=tfn: f(t.double()).float()  # noqa: E731
    check(backend, [], tfn, method, data=[SPECIAL_DATA], atol=max(atol, 1e-6), rtol=max(rtol, 1e-5))


@pytest.mark.parametrize("name", ["expm1", "log1p", "tanh", "erf", "tan", "sigmoid", "gelu", "silu",
                                  "mish", "elu", "softplus"])
def test_accuracy_near_zero(backend, name):
    """Tiny inputs keep their relative accuracy (no absolute slack at all)."""
    tfn, method, *_ = UNARY[name]
    x = np.array([1e-6, -1e-6, 3e-7, -2e-5, 1e-4, -1e-3, 1e-10, -1e-20, 0.01], dtype=np.float32)
    check(backend, [], tfn, method, data=[x], atol=0, rtol=1e-4)


def test_expm1_log1p_cancellation(backend):
    """exp(x) - 1 and log(1 + x) would lose every digit here."""
    x = np.array([1e-6, -1e-6, 1e-7, 2e-8], dtype=np.float32)
    (e, l) = check(backend, [], lambda t: (torch.expm1(t), torch.log1p(t)),
                   lambda t: (t.expm1(), t.log1p()), data=[x], atol=0, rtol=1e-6)
    np.testing.assert_allclose(e, x, rtol=1e-6)  # both ~x for tiny x
    np.testing.assert_allclose(l, x, rtol=1e-6)


def test_erf_against_float64():
    """erf's approximation: relative error < 1e-6 everywhere (series near 0,
    erfc-based beyond), checked against math.erf on a dense grid."""
    x = np.concatenate([np.linspace(-6, 6, 24001), np.logspace(-30, 0, 301), -np.logspace(-30, 0, 301)])
    x = x.astype(np.float32)
    cx = lm.Graph()
    y = cx.tensor(x.shape).set(x).erf().retrieve()
    cx.execute()
    truth = np.array([math.erf(float(v)) for v in x])
    rel = np.abs(y.numpy() - truth) / np.maximum(np.abs(truth), 1e-38)
    assert rel.max() < 1e-6, f"erf max relative error {rel.max():.3g} at x={x[rel.argmax()]}"


def test_large_magnitude_no_overflow(backend):
    """sigmoid / tanh / softplus / silu / mish at ±100, ±1e30, ±inf: no NaN from overflow."""
    x = np.array([100.0, -100.0, 1e30, -1e30, INF, -INF, 89.0, -89.0], dtype=np.float32)
    got = check(backend, [], lambda t: (torch.sigmoid(t), torch.tanh(t), F.softplus(t), F.softplus(t, 2.0, 5.0)),
                lambda t: (t.sigmoid(), t.tanh(), t.softplus(), t.softplus(2.0, 5.0)),
                data=[x], atol=1e-6, rtol=1e-6, grad=False)  # gradients at ±1e30: inf*0
    for g in got:
        assert not np.isnan(g).any()
    check(backend, [], lambda t: (F.silu(t), F.mish(t), F.elu(t)), lambda t: (t.silu(), t.mish(), t.elu()),
          data=[x[np.abs(x) < INF]], atol=1e-6, rtol=1e-6, grad=False)


def test_tan_near_poles_and_large(backend):
    x = np.array([1.5707963, -1.5707963, 1.5707, 4.712389, 1.56, 100.0, 1e4 + 0.5, 12345.678, 1e20,
                  3e38, -3e38, 0.7853982, -0.7853981, 3.1415927], dtype=np.float32)
    check(backend, [], torch.tan, lambda t: t.tan(), data=[x], atol=0, rtol=1e-5, grad=False)  # poles


# ---------------------------------------------------------------- activations with arguments

@pytest.mark.parametrize("slope", [0.01, 0.2, 0.0, -0.5, 1.5])
def test_leaky_relu_slopes(backend, slope):
    x = np.concatenate([rand((13,), -3, 3), SPECIAL_DATA])
    check(backend, [], lambda t: F.leaky_relu(t, slope), lambda t: t.leaky_relu(slope),
          data=[x], atol=0, rtol=1e-7)


@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.0, 2.5])
def test_elu_alpha(backend, alpha):
    x = np.concatenate([rand((13,), -8, 8), SPECIAL_DATA])
    check(backend, [], lambda t: F.elu(t, alpha), lambda t: lm.elu(t, alpha=alpha),
          data=[x], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (2.0, 5.0), (0.5, 1.0), (1.0, 0.0), (3.0, 40.0)])
def test_softplus_beta_threshold(backend, beta, threshold):
    """The threshold switch is torch's: x where beta * x > threshold."""
    x = np.concatenate([rand((3, 11), -15, 15).reshape(-1), SPECIAL_DATA,
                        np.array([threshold / beta, threshold / beta + 0.01], np.float32)])
    check(backend, [], lambda t: F.softplus(t, beta, threshold), lambda t: t.softplus(beta, threshold),
          data=[x], atol=1e-6, rtol=2e-6)


def test_gelu_rejects_unknown_approximation():
    cx = lm.Graph()
    with pytest.raises(ValueError, match="approximate"):
        cx.tensor((3,)).gelu(approximate="fast")


# ---------------------------------------------------------------- rounding

def test_round_half_to_even(backend):
    x = np.arange(-6.5, 7.0, 0.5, dtype=np.float32)
    (got,) = check(backend, [], torch.round, lambda t: t.round(), data=[x], atol=0, rtol=0)
    assert got[list(x).index(2.5)] == 2.0 and got[list(x).index(-0.5)] == 0.0


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc"])
def test_rounding_large_and_special(backend, name):
    """|x| >= 2**23 is already an integer; inf stays inf; halves near 2**23."""
    x = np.array([2.0**23, -(2.0**23), 2.0**23 + 1, 2.0**23 - 0.5, -(2.0**23) + 0.5, 2.0**22 + 0.5,
                  -(2.0**22) - 0.5, 2.0**24, 1e30, -1e30, FLT_MAX, -FLT_MAX, INF, -INF, NAN, 0.0, -0.0,
                  0.49999997, -0.49999997, 0.50000006, 1e-30, -1e-30, 1.4e-45, -1.4e-45, 5.5, -5.5],
                 dtype=np.float32)
    tfn = getattr(torch, name)
    check(backend, [], tfn, lambda t: getattr(t, name)(), data=[x], atol=0, rtol=0)


@pytest.mark.parametrize("decimals", [1, 2, 3, -1, -2])
def test_round_decimals(backend, decimals):
    x = rand((5, 7), -500, 500, seed=3)
    check(backend, [], lambda t: torch.round(t, decimals=decimals),
          lambda t: lm.round(t, decimals=decimals), data=[x], atol=1e-6, rtol=3e-7)


# ---------------------------------------------------------------- pow

SCALAR_EXPONENTS = [0, 1, 2, 3, -1, -2, -3, 5, 0.5, -0.5, 1.5, -1.5, 1 / 3, 2.7, 10, 64, 65, 100, 101,
                    -101, 2.0, -4.0, INF, -INF, NAN]


@pytest.mark.parametrize("e", SCALAR_EXPONENTS, ids=str)
def test_pow_scalar_exponent(backend, e):
    """Random data with both signs (NaN for negative bases with fractional e)
    and every special value, via ``**`` and ``lm.pow``."""
    x = np.concatenate([rand((17,), -3, 3, seed=5), rand((9,), 0.5, 1.5, seed=6), SPECIAL_DATA,
                        np.array([1.0, -1.0, 0.9999999, 1.0000001], np.float32)])
    check(backend, [], lambda t: (t**e, torch.pow(t, e)), lambda t: (t**e, lm.pow(t, e)),
          data=[x], atol=1e-6, rtol=2e-5)


@pytest.mark.parametrize("e", [2, 3, 4, -1, -2, 7])
def test_pow_integer_exponent_exact(backend, e):
    """Small integer powers are repeated multiplications, exact as x*x*..."""
    x = np.round(rand((4, 6), -9, 9, seed=7))
    x[x == 0] = 2.0
    check(backend, [], lambda t: t**e, lambda t: t**e, data=[x], atol=0, rtol=0 if e > 0 else 1e-7)


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (1, 5)), ((2, 3, 4), (4,)), ((7,), ())],
                         ids=str)
def test_pow_tensor_exponent_random(backend, shapes):
    base = rand(shapes[0], 0.05, 4.0, seed=8)
    exp = rand(shapes[1], -3.0, 3.0, seed=9)
    # Gradients of a tensor exponent go through log2(base): NaN for negative
    # bases where torch reports its own conventions, so values only.
    check(backend, [], torch.pow, lambda a, b: a**b, data=[base, exp], atol=1e-6, rtol=1e-5, grad=False)
    check(backend, [], torch.pow, lambda a, b: a.pow(b), data=[-base, np.round(exp)], atol=1e-6, rtol=1e-5,
          grad=False)


def test_pow_tensor_exponent_special_grid(backend):
    """Every base x exponent pair of special values, with C pow's rules for
    negative bases, zeros and infinities. Left out: NaN ** 0 and 1 ** NaN
    (torch: 1, luminal: NaN -- a NaN cannot be dropped; module docstring)."""
    bases = np.array([NAN, INF, -INF, 0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -8.0, 1e30, -1e30],
                     np.float32)
    exps = np.array([0.0, -0.0, 1.0, 2.0, 3.0, -1.0, -2.0, -3.0, 0.5, -0.5, 1.5, 1 / 3, INF, -INF, NAN,
                     2.5, 1e30, 101.0], np.float32)
    a = np.repeat(bases, len(exps)).reshape(len(bases), len(exps))
    b = np.tile(exps, len(bases)).reshape(len(bases), len(exps))
    keep = ~((np.isnan(a) & (b == 0)) | ((a == 1) & np.isnan(b)))
    check(backend, [], torch.pow, lambda x, y: x**y, data=[a[keep], b[keep]], atol=1e-6, rtol=2e-5)


@pytest.mark.parametrize("base", [2, 2.0, 0.5, 10.0, 1.0, 0.0, -2.0, -0.5, INF])
def test_rpow_scalar_base(backend, base):
    x = np.concatenate([rand((11,), -4, 4, seed=10), SPECIAL_DATA[np.abs(SPECIAL_DATA) < 1e6],
                        np.array([0.0, 1.0, 2.0, 3.0, -1.0, -3.0, 0.5], np.float32)])
    check(backend, [], lambda t: base**t, lambda t: base**t, data=[x], atol=1e-6, rtol=2e-5,
          grad=0 < base < INF)  # negative, zero, inf bases: torch's gradient conventions at poles


# ---------------------------------------------------------------- clamp

@pytest.mark.parametrize("lo,hi", [(-1.0, 1.0), (0.0, None), (None, 0.5), (2.0, -2.0), (-INF, 0.0),
                                   (0.0, INF), (NAN, 1.0)], ids=str)
def test_clamp_numbers(backend, lo, hi):
    """min > max gives max; a NaN bound gives NaN; NaN data stays NaN."""
    x = np.concatenate([rand((13,), -3, 3, seed=11), SPECIAL_DATA])
    check(backend, [], lambda t: (torch.clamp(t, lo, hi), torch.clip(t, min=lo, max=hi)),
          lambda t: (t.clamp(lo, hi), lm.clip(t, min=lo, max=hi)), data=[x], atol=0, rtol=0)


@pytest.mark.parametrize("shapes", [((3, 5), (3, 5), (3, 5)), ((4, 7), (7,), (4, 1)), ((2, 3, 5), (1,), (3, 1))],
                         ids=str)
def test_clamp_tensors(backend, shapes):
    x = rand(shapes[0], -3, 3, seed=12)
    lo = rand(shapes[1], -2, 0, seed=13)
    hi = rand(shapes[2], 0, 2, seed=14)
    x.reshape(-1)[:3] = [INF, -INF, NAN]
    check(backend, [], lambda t, a, b: (torch.clamp(t, a, b), torch.clamp(t, min=a), torch.clamp(t, max=b)),
          lambda t, a, b: (t.clamp(a, b), lm.clamp(t, min=a), t.clip(max=b)),
          data=[x, lo, hi], atol=0, rtol=0)


def test_clamp_needs_a_bound():
    cx = lm.Graph()
    with pytest.raises(ValueError, match="min"):
        cx.tensor((3,)).clamp()


# ---------------------------------------------------------------- where / masked_fill / lerp

@pytest.mark.parametrize("shapes", [((3, 5), (3, 5), (3, 5)), ((3, 1), (1, 5), (5,)), ((2, 3, 4), (4,), (3, 1)),
                                    ((7,), (), (7,))], ids=str)
def test_where_random(backend, shapes):
    c = rand(shapes[0], seed=15)
    a = rand(shapes[1], seed=16)
    b = rand(shapes[2], seed=17)
    check(backend, [], lambda m, x, y: (torch.where(m > 0, x, y), x.where(m > 0, y)),
          lambda m, x, y: (lm.where(m > 0, x, y), x.where(m > 0, y)), data=[c, a, b], atol=0, rtol=0)


def test_where_infinities_are_exact(backend):
    """inf / -inf on either side, selected or not: no inf * 0 = NaN."""
    x = np.array([INF, -INF, INF, -INF, 1.0, INF, 0.0, -0.0], np.float32)
    y = np.array([-INF, INF, 2.0, 3.0, -INF, INF, -INF, INF], np.float32)
    cond = np.array([1, 1, 0, 0, 1, 0, 1, 0], np.float32)
    check(backend, [], lambda m, a, b: torch.where(m > 0, a, b), lambda m, a, b: lm.where(m > 0, a, b),
          data=[cond, x, y], atol=0, rtol=0)


@pytest.mark.parametrize("a,b", [(0.0, 1.0), (-INF, 0.0), (INF, -INF), (NAN, 2.0), (2.5, "x"), ("x", -INF)],
                         ids=str)
def test_where_scalars(backend, a, b):
    """Numbers on either side, infinite and NaN numbers included (selected NaN is NaN)."""
    x = np.concatenate([rand((3, 5), seed=18).reshape(-1), np.array([INF, -INF, 0.0], np.float32)])
    pick = lambda v, t: t if isinstance(v, str) else v  # noqa: E731
    check(backend, [], lambda t: torch.where(t > 0.5, pick(a, t), pick(b, t)),
          lambda t: lm.where(t > 0.5, pick(a, t), pick(b, t)), data=[x], atol=0, rtol=0)


@pytest.mark.parametrize("value", [-INF, INF, 0.0, -1e9, NAN, 3.5], ids=str)
def test_masked_fill(backend, value):
    """value = -inf over data with ±inf (attention masks) and others; a
    broadcast mask. NaN data only where not masked (see module docstring)."""
    x = rand((4, 6), -3, 3, seed=19)
    x[0, :3] = [INF, -INF, NAN]  # row 0 is never masked
    x[2, :2] = [INF, -INF]
    mask = np.tril(np.ones((4, 6), np.float32), k=-1)  # row 0 all zero
    check(backend, [], lambda t, m: t.masked_fill(m > 0, value), lambda t, m: t.masked_fill(m > 0, value),
          data=[x, mask], atol=0, rtol=0)
    col = (rand((1, 6), seed=20) > 0).astype(np.float32)
    check(backend, [], lambda t, m: t.masked_fill(m > 0, value), lambda t, m: lm.masked_fill(t, m > 0, value),
          data=[x[1:], col], atol=0, rtol=0)


def test_masked_fill_tensor_value(backend):
    x = rand((3, 5), seed=21)
    m = (rand((3, 5), seed=22) > 0).astype(np.float32)
    v = np.array(-INF, np.float32)
    check(backend, [], lambda t, mm, vv: t.masked_fill(mm > 0, vv), lambda t, mm, vv: t.masked_fill(mm > 0, vv),
          data=[x, m, v], atol=0, rtol=0)


@pytest.mark.parametrize("w", [0.0, 0.25, 0.4999, 0.5, 0.75, 1.0, -0.5, 1.5, 0.1])
def test_lerp_scalar_weight(backend, w):
    """Exact at weight 0 and 1; elsewhere within an ulp (torch fuses a*b+c)."""
    rtol = 0 if w in (0.0, 1.0) else 2e-7
    check(backend, [(3, 7), (7,)], lambda a, b: torch.lerp(a, b, w), lambda a, b: a.lerp(b, w),
          atol=1e-7 if rtol else 0, rtol=rtol)


def test_lerp_tensor_weight(backend):
    start, end = rand((4, 5), -5, 5, seed=23), rand((5,), -5, 5, seed=24)
    weight = rand((4, 1), -0.5, 1.5, seed=25)
    weight[:2, 0] = [0.0, 1.0]
    (got,) = check(backend, [], torch.lerp, lambda a, b, w: lm.lerp(a, b, w), data=[start, end, weight],
                   atol=1e-7, rtol=2e-7)
    assert np.array_equal(got[0], start[0]) and np.array_equal(got[1], end)


def test_lerp_infinite_ends(backend):
    """torch's two-sided formula: inf ends give inf or NaN exactly as torch does."""
    a = np.array([0.0, 0.0, -INF, 1.0, INF, 2.0], np.float32)
    b = np.array([INF, INF, INF, -INF, 3.0, 2.0], np.float32)
    w = np.array([0.25, 0.75, 0.5, 0.0, 1.0, 0.3], np.float32)
    check(backend, [], torch.lerp, lambda x, y, z: x.lerp(y, z), data=[a, b, w], atol=0, rtol=0)


# ---------------------------------------------------------------- logical ops

LOGICAL = {
    "and": (torch.logical_and, lambda a, b: a.logical_and(b), lm.logical_and),
    "or": (torch.logical_or, lambda a, b: a.logical_or(b), lm.logical_or),
    "xor": (torch.logical_xor, lambda a, b: a.logical_xor(b), lm.logical_xor),
}


@pytest.mark.parametrize("name", list(LOGICAL))
def test_logical_special_pairs(backend, name):
    """Every pair of NaN, ±inf, ±0, ±1, ...: nonzero (NaN included) is true."""
    tfn, method, func = LOGICAL[name]
    a, b = SPECIALS.reshape(-1, 1), SPECIALS.reshape(1, -1)
    check(backend, [], lambda x, y: (tfn(x, y), tfn(x, y)), lambda x, y: (method(x, y), func(x, y)),
          data=[a, b], atol=0, rtol=0)


@pytest.mark.parametrize("name", list(LOGICAL))
def test_logical_broadcast_masks(backend, name):
    tfn, method, _ = LOGICAL[name]
    a = np.round(rand((3, 1, 5), -1, 1, seed=26))
    b = np.round(rand((4, 1), -1, 1, seed=27))
    check(backend, [], lambda x, y: tfn(x > 0, y == 0), lambda x, y: method(x > 0, y == 0),
          data=[a, b], atol=0, rtol=0)


# ---------------------------------------------------------------- nan_to_num

@pytest.mark.parametrize("nan,posinf,neginf", [(0.0, None, None), (-1.0, 100.0, -100.0), (2.5, INF, -INF),
                                               (NAN, 0.0, None)], ids=str)
def test_nan_to_num_arguments(backend, nan, posinf, neginf):
    x = np.concatenate([rand((9,), -1e3, 1e3, seed=28), SPECIAL_DATA])
    check(backend, [], lambda t: torch.nan_to_num(t, nan, posinf, neginf),
          lambda t: lm.nan_to_num(t, nan=nan, posinf=posinf, neginf=neginf), data=[x], atol=0, rtol=0)


def test_nan_to_num_exact_on_every_kind_of_float(backend):
    """Finite values (denormals and FLT_MAX included) come back bit-exact."""
    rng = np.random.default_rng(29)
    bits = rng.integers(0, 2**32, size=3000, dtype=np.uint64).astype(np.uint32)
    x = np.concatenate([bits.view(np.float32), (bits[:500] >> 9).view(np.float32), SPECIAL_DATA])
    (got,) = check(backend, [], torch.nan_to_num, lambda t: t.nan_to_num(), data=[x], atol=0, rtol=0)
    want = torch.nan_to_num(torch.from_numpy(x)).numpy()
    assert np.array_equal(got.view(np.uint32) & 0x7FFFFFFF, want.view(np.uint32) & 0x7FFFFFFF)
