"""Elementwise math, activations, rounding, selection and tests, with torch's
names, arguments and special-value rules, composed from the primitives.

There is no select primitive, so choosing between values takes care:

* ``a * m + b * (1 - m)`` turns ``inf * 0`` into NaN. ``where``, ``masked_fill``,
  ``clamp``, ``relu`` and friends use ``binary.select`` (exact for ±inf) or
  ``maximum``/``minimum`` instead, so infinities come out as in torch.
* A NaN can only be *dropped* by LessThan (which is 0 for NaN): every other
  primitive propagates it. So a NaN in the branch that is **not** selected
  still reaches the result, where torch returns the selected value:

  - ``where(cond, x, y)`` is NaN wherever the unselected ``x`` or ``y`` is NaN;
  - ``masked_fill(mask, v)`` is NaN where the data under the mask is NaN;
  - ``pow`` with a tensor exponent gives NaN for ``NaN ** 0`` and ``1 ** NaN``
    (torch: 1); a scalar exponent 0 or a scalar base 1 does give 1.

  ``nan_to_num`` is the exception: it rebuilds every finite value exactly from
  ~32 comparisons (about 230 graph nodes), so it does replace NaN.

Conditions and masks are 0/1 tensors, as comparisons and logical ops give.
Other known differences from torch: ``sigmoid`` and friends flush results
below ~1e-38 to 0; signs of zero are not always kept. Compute is float32
throughout.
"""

from __future__ import annotations

import builtins
import math
from typing import TYPE_CHECKING, Union

import numpy as np

from luminal.hl_ops.binary import boolean, FLT_MAX, INF, TensorLike, lift, maximum, minimum, not_nan, select

if TYPE_CHECKING:
    from luminal.tensor import Tensor

NumOrTensor = Union["Tensor", int, float]

SQRT1_2 = math.sqrt(0.5)
PI_4 = math.pi / 4
PIO2_HI = float(np.float32(math.pi / 2))  # pi/2 as float32 plus the rest: cos near pi/2
PIO2_LO = math.pi / 2 - PIO2_HI
_TWO_23 = float(2**23)  # from here on every float32 is an integer


# ---------------------------------------------------------------- helpers

def _ones_like(x: Tensor) -> Tensor:
    return x.graph.constant(1.0)._expand_to(x._view.shape)


def _nan_where(mask: Tensor) -> Tensor:
    """NaN where the 0/1 ``mask`` is 1, else 0: log2(0) * 0 = -inf * 0."""
    return (1.0 - mask).log2() * 0.0


def _fill(mask: Tensor, value: NumOrTensor) -> Tensor:
    """``value`` where the 0/1 ``mask`` is 1, else 0, exact for ±inf and NaN numbers."""
    from luminal.tensor import Tensor

    if isinstance(value, Tensor):
        return select(mask, value)
    v = float(value)
    if math.isnan(v):
        return _nan_where(mask)
    if math.isinf(v):
        hole = (1.0 - mask).log2()  # -inf where mask is 1, 0 elsewhere
        return hole * -1.0 if v > 0 else hole
    return mask * v


def _where(mask: Tensor, a: NumOrTensor, b: NumOrTensor) -> Tensor:
    """``a`` where the 0/1 ``mask`` is 1, else ``b``."""
    return _fill(mask, a) + _fill(1.0 - mask, b)


def _clamp_const(x: Tensor, lo: float, hi: float) -> Tensor:
    return minimum(maximum(x, lo), hi)


def _signbit(x: Tensor) -> Tensor:
    """1 for negative x, -0.0 and -inf; 0 for NaN."""
    return (x.reciprocal() < 0.0) + (x < -FLT_MAX)


def _poly(x: Tensor, coeffs: list[float]) -> Tensor:
    """coeffs[0] + coeffs[1] x + ... by Horner."""
    out: Tensor | float = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        out = x * out + c
    assert not isinstance(out, float)
    return out


def _nonzero(x: TensorLike, like: Tensor, op: str) -> Tensor:
    """1 where x != 0 (NaN counts as true, as torch's bool())."""
    t = lift(op, like, x)
    is_zero = (1.0 - (t < 0.0) - (t > 0.0)) * not_nan(t)
    return 1.0 - is_zero


# ---------------------------------------------------------------- basic

def abs(x: Tensor) -> Tensor:
    """Absolute value; abs(-inf) = inf, NaN stays NaN. ``x.abs()`` or ``abs(x)``"""
    return x * (1.0 - 2.0 * (x < 0.0))

def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1 (0 for NaN, as torch). ``x.sign()``"""
    return (x > 0.0) - (x < 0.0)

def square(x: Tensor) -> Tensor:
    """x * x. ``x.square()``"""
    return x * x


# ---------------------------------------------------------------- exp / log

_EXPM1_TAYLOR = [1.0 / math.factorial(k) for k in range(1, 10)]  # expm1(x) / x

def expm1(x: Tensor) -> Tensor:
    """exp(x) - 1, accurate near 0 (a series for |x| < 0.5). ``x.expm1()``"""
    small = (x < 0.5) * (x > -0.5)
    xs = _clamp_const(x, -0.5, 0.5)
    series = xs * _poly(xs, _EXPM1_TAYLOR)  # finite for every x
    # Both branches are finite wherever they are not selected, so masks can blend.
    return series * small + (x.exp() - 1.0) * (1.0 - small)

def log1p(x: Tensor) -> Tensor:
    """log(1 + x), accurate near 0. ``x.log1p()``"""
    # log(u) - ((u - 1) - x) / u with u = 1 + x undoes the rounding of u.
    u = 1.0 + x
    xl = minimum(x, 2.0**24)  # keeps the correction finite at x = inf
    ul = 1.0 + xl
    correction = ((ul - 1.0) - xl) * (ul + 1e-30).reciprocal()  # 0/0-free at x = -1
    return u.log() - correction


# ---------------------------------------------------------------- trig / hyperbolic

def tan(x: Tensor) -> Tensor:
    """Tangent, accurate near pi/2 and for large |x|. ``x.tan()``"""
    # sin(x) / cos(x); cos(x) = sin(2x) / (2 sin(x)) for |x| >= pi/4 (sin of an
    # exact argument, so no pi/2 - x cancellation), 1 - 2 sin(x/2)**2 where 2x is inf.
    s = x.sin()
    small = (x < PI_4) * (x > -PI_4)
    huge = (x > FLT_MAX / 2) + (x < -FLT_MAX / 2)
    cos_small = ((PIO2_HI - x) + PIO2_LO).sin()
    s2 = (x * (2.0 - 1.5 * huge)).sin()  # sin(2x), or sin(x/2) where 2x would be inf
    cos_large = s2 * (s * 2.0 + small).reciprocal()  # + small: no 0/0 at x = 0
    cos_huge = 1.0 - 2.0 * s2 * s2
    # Every branch is finite where it is not selected, so masks can blend.
    cos = cos_small * small + cos_large * (1.0 - small - huge) + cos_huge * huge
    return s * cos.reciprocal()

def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent via expm1(-2|x|): no overflow, accurate near 0. ``x.tanh()``"""
    t = expm1(abs(x) * -2.0)  # in [-1, 0]
    return (1.0 - 2.0 * (x < 0.0)) * (t * -1.0) * (t + 2.0).reciprocal()

def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)); 0 and 1 at ±inf, never NaN for large |x|. ``x.sigmoid()``"""
    return (1.0 + (x * -1.0).exp()).reciprocal()


# erf(x) / x as a series in x**2: relative error < 1e-9 for |x| <= 0.5.
_ERF_TAYLOR = [2.0 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(7)]
# Numerical Recipes' erfc: relative error < 1.2e-7 for every z >= 0.
_ERFC_NR = [-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
            -1.13520398, 1.48851587, -0.82215223, 0.17087277]

def _erfc_nonneg(z: Tensor) -> Tensor:
    """erfc for z >= 0, with small relative error; 0 at inf."""
    t = (1.0 + z * 0.5).reciprocal()
    return t * (z * z * -1.0 + _poly(t, _ERFC_NR)).exp()

def _erfc(x: Tensor) -> Tensor:
    neg = x < 0.0
    e = _erfc_nonneg(abs(x))
    return e * (1.0 - 2.0 * neg) + neg * 2.0

def erf(x: Tensor) -> Tensor:
    """Error function, relative error ~1e-7 (series near 0, else 1 - erfc). ``x.erf()``"""
    small = (x < 0.5) * (x > -0.5)
    xs = _clamp_const(x, -0.5, 0.5)
    series = xs * _poly(xs * xs, _ERF_TAYLOR)
    rest = sign(x) * (1.0 - _erfc_nonneg(abs(x)))  # finite for every x, inf included
    return series * small + rest * (1.0 - small)


# ---------------------------------------------------------------- activations

def relu(x: Tensor) -> Tensor:
    """max(x, 0); relu(NaN) = NaN. ``x.relu()``"""
    return maximum(x, 0.0)

def relu6(x: Tensor) -> Tensor:
    """min(max(x, 0), 6). ``x.relu6()``"""
    return _clamp_const(x, 0.0, 6.0)

def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, else x * negative_slope. ``x.leaky_relu(0.2)``"""
    neg = x < 0.0
    return x * (neg * negative_slope + (1.0 - neg))

def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, else alpha * (exp(x) - 1). ``x.elu()``"""
    return relu(x) + expm1(minimum(x, 0.0)) * alpha

def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), with an accurate erf or ``approximate="tanh"``. ``x.gelu()``"""
    if approximate == "none":
        return x * 0.5 * _erfc(x * -SQRT1_2)
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        return x * sigmoid(inner * 2.0)  # 0.5 * (1 + tanh(u)) = sigmoid(2u)
    raise ValueError(f"[gelu] approximate must be 'none' or 'tanh', got {approximate!r}")

def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x). ``x.silu()``"""
    return x * sigmoid(x)

def _softplus_stable(bx: Tensor) -> Tensor:
    return relu(bx) + (abs(bx) * -1.0).exp().log1p()

def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold. ``x.softplus()``"""
    bx = x * beta if beta != 1.0 else x
    soft = _softplus_stable(bx)
    if beta != 1.0:
        soft = soft * (1.0 / beta)
    return _where(bx > threshold, x, soft)

def mish(x: Tensor) -> Tensor:
    """x * tanh(softplus(x)). ``x.mish()``"""
    return x * tanh(_softplus_stable(x))

def hardsigmoid(x: Tensor) -> Tensor:
    """min(max(x + 3, 0), 6) / 6. ``x.hardsigmoid()``"""
    return _clamp_const(x + 3.0, 0.0, 6.0) * (1.0 / 6.0)

def hardswish(x: Tensor) -> Tensor:
    """x * min(max(x + 3, 0), 6) / 6. ``x.hardswish()``"""
    return x * _clamp_const(x + 3.0, 0.0, 6.0) * (1.0 / 6.0)


# ---------------------------------------------------------------- clamping, rounding

def clamp(x: Tensor, min: TensorLike | None = None, max: TensorLike | None = None) -> Tensor:
    """Clamp into [min, max] (numbers or tensors; NaN stays NaN). ``x.clamp(0, 1)``"""
    # maximum/minimum: exact for ±inf, NaN-propagating; max wins when min > max.
    if min is None and max is None:
        raise ValueError("[clamp] at least one of min and max must be given")
    out = x
    if min is not None:
        out = maximum(out, min)
    if max is not None:
        out = minimum(out, max)
    return out

clip = clamp


def _split(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(frac, trunc, trunc of the clamped x): frac = fmod(x, 1) of x clamped
    to +-2**23 (larger floats are integers; inf gives 0, not NaN)."""
    xc = _clamp_const(x, -_TWO_23, _TWO_23)
    frac = xc.fmod(1.0)
    return frac, x - frac, xc - frac

def trunc(x: Tensor) -> Tensor:
    """Round toward zero; trunc(inf) = inf. ``x.trunc()``"""
    return _split(x)[1]

def floor(x: Tensor) -> Tensor:
    """Round down. ``x.floor()``"""
    t = trunc(x)
    return t - (x < t)

def ceil(x: Tensor) -> Tensor:
    """Round up. ``x.ceil()``"""
    t = trunc(x)
    return t + (t < x)

def round(x: Tensor, decimals: int = 0) -> Tensor:
    """Round half to even, like torch, optionally to ``decimals`` places. ``x.round(decimals=2)``"""
    if decimals:
        scale = float(np.float32(10.0 ** builtins.abs(decimals)))
        if decimals > 0:
            return round(x * scale) * (1.0 / scale)
        return round(x * (1.0 / scale)) * scale
    frac, t, tc = _split(x)
    odd = tc.fmod(2.0).square()  # 1 for odd integers, 0 for even
    up = frac > 0.5
    down = frac < -0.5
    half_up = 1.0 - (frac < 0.5) - up  # frac == 0.5
    half_down = 1.0 - (frac > -0.5) - down  # frac == -0.5
    return t + up - down + odd * (half_up - half_down)


# ---------------------------------------------------------------- pow

def _int_pow(x: Tensor, n: int) -> Tensor:
    """x ** n for n >= 1 by repeated squaring."""
    result: Tensor | None = None
    base = x
    while True:
        if n & 1:
            result = base if result is None else result * base
        n >>= 1
        if not n:
            break
        base = base * base
    assert result is not None
    return result

def _pow_scalar(x: Tensor, e: float) -> Tensor:
    if math.isnan(e):
        one = x.eq(1.0)
        return one + _nan_where(1.0 - one)  # 1 ** NaN = 1
    a = abs(x)
    if math.isinf(e):
        big, tiny = (1.0 < a), (a < 1.0)
        return _fill(big if e > 0 else tiny, INF) + a.eq(1.0) + _nan_where(isnan(x))
    if e == 0:
        return _ones_like(x)
    if e == 0.5:
        return x.sqrt()  # as torch: (-inf) ** 0.5 is NaN
    if e == -0.5:
        return x.rsqrt()
    if e.is_integer() and builtins.abs(e) <= 64:
        p = _int_pow(x, int(builtins.abs(e)))
        return p if e > 0 else p.reciprocal()
    mag = (a.log2() * e).exp2()
    if e.is_integer():  # large integer: only the sign to fix
        return mag * (1.0 - 2.0 * _signbit(x)) if int(e) % 2 else mag
    finite_negative = (x < 0.0) - (x < -FLT_MAX)  # (-inf) ** 1.5 = inf, not NaN
    return mag + _nan_where(finite_negative)

def _pow_tensor(x: Tensor, e: Tensor) -> Tensor:
    l = abs(x).log2()
    # e * l, but 0 (not NaN) where e == 0 or l == 0 meets an infinite other side.
    l_used = select((e < 0.0) + (e > 0.0), l)
    e_used = select((l < 0.0) + (l > 0.0), e)
    mag = (l_used * e_used).exp2()
    r2 = e.fmod(2.0).square()  # 1 exactly for odd integers
    odd = (r2 > 0.5) * (1.0 - (r2 < 1.0)) - (r2 > 1.0)
    f = e.fmod(1.0)
    non_integer = (f < 0.0) + (f > 0.0)  # 0 for inf and NaN
    finite_negative = (x < 0.0) - (x < -FLT_MAX)
    return mag * (1.0 - 2.0 * _signbit(x) * odd) + _nan_where(finite_negative * non_integer)

def pow(x: Tensor, exponent: TensorLike) -> Tensor:
    """x ** exponent (number or tensor) with torch's special-value rules. ``x ** 2``, ``x.pow(y)``"""
    # Integer scalar exponents (|e| <= 64) multiply exactly; others use
    # exp2(e * log2|x|) with C pow's rules for signs, zeros and infinities.
    from luminal.tensor import Tensor

    if isinstance(exponent, Tensor):
        e = lift("pow", x, exponent)
        return _pow_tensor(x, e)
    if isinstance(exponent, (int, float)):
        return _pow_scalar(x, float(exponent))
    return _pow_tensor(x, lift("pow", x, exponent))

def rpow(x: Tensor, other: TensorLike) -> Tensor:
    """other ** x for a number (or tensor) ``other``. ``2 ** x``"""
    from luminal.tensor import Tensor

    if isinstance(other, Tensor):
        return pow(lift("pow", x, other), x)
    if isinstance(other, (int, float)):
        b = float(other)
        if b == 1.0:
            return _ones_like(x)  # 1 ** NaN = 1
        if b > 0 and not math.isinf(b):
            return (x * math.log2(b)).exp2() if b != 2.0 else x.exp2()
    return pow(lift("pow", x, other)._expand_to(x._view.shape), x)


# ---------------------------------------------------------------- selection

def where(condition: Tensor, input: NumOrTensor, other: NumOrTensor) -> Tensor:
    """``input`` where the 0/1 ``condition`` is 1, else ``other``. ``lm.where(x > 0, x, 0.0)``"""
    # Exact for ±inf; a NaN on the unselected side still propagates (module docstring).
    return _where(condition, input, other)

def where_method(x: Tensor, condition: Tensor, other: NumOrTensor) -> Tensor:
    """``x.where(condition, y)``: torch's method form of ``where(condition, x, y)``."""
    return _where(condition, x, other)

def masked_fill(x: Tensor, mask: Tensor, value: NumOrTensor) -> Tensor:
    """``value`` where the 0/1 ``mask`` is 1, else x. ``s.masked_fill(m == 0, -inf)``"""
    # Exact for value = ±inf over data with ±inf; NaN data under the mask stays NaN.
    return _where(mask, value, x)

def lerp(x: Tensor, end: TensorLike, weight: TensorLike) -> Tensor:
    """x + weight * (end - x), exact at weights 0 and 1. ``a.lerp(b, 0.25)``"""
    # torch's two-sided formula: end - (end - x) * (1 - weight) for |weight| >= 0.5.
    from luminal.tensor import Tensor

    d = lift("lerp", x, end) - x
    if not isinstance(weight, Tensor) and isinstance(weight, (int, float)):
        w = np.float32(weight)
        if builtins.abs(w) < 0.5:
            return x + d * float(w)
        return lift("lerp", x, end) - d * float(np.float32(1.0) - w)
    wt = lift("lerp", x, weight)
    small = (wt < 0.5) * (wt > -0.5)
    base = _where(small, x, lift("lerp", x, end))
    return base + d * (wt + (small - 1.0))  # w, or w - 1 (= -(1 - w))


# ---------------------------------------------------------------- logical and tests

def logical_not(x: Tensor) -> Tensor:
    """1 where x == 0, else 0 (NaN is true). ``x.logical_not()``"""
    return boolean(1.0 - _nonzero(x, x, "logical_not"))

def logical_and(x: Tensor, other: TensorLike) -> Tensor:
    """1 where both are nonzero. ``a.logical_and(b)``"""
    return boolean(_nonzero(x, x, "logical_and") * _nonzero(other, x, "logical_and"))

def logical_or(x: Tensor, other: TensorLike) -> Tensor:
    """1 where either is nonzero. ``a.logical_or(b)``"""
    return boolean(1.0 - (1.0 - _nonzero(x, x, "logical_or")) * (1.0 - _nonzero(other, x, "logical_or")))

def logical_xor(x: Tensor, other: TensorLike) -> Tensor:
    """1 where exactly one is nonzero. ``a.logical_xor(b)``"""
    return boolean((_nonzero(x, x, "logical_xor") - _nonzero(other, x, "logical_xor")).square())

def isnan(x: Tensor) -> Tensor:
    """1 where x is NaN. ``x.isnan()``"""
    return boolean(1.0 - not_nan(x))

def isinf(x: Tensor) -> Tensor:
    """1 where x is +inf or -inf. ``x.isinf()``"""
    return boolean((x > FLT_MAX) + (x < -FLT_MAX))

def isfinite(x: Tensor) -> Tensor:
    """1 where x is neither inf nor NaN. ``x.isfinite()``"""
    return boolean((x > -INF) - (x > FLT_MAX))


def _finite_part(x: Tensor) -> Tensor:
    """x where finite, 0 at ±inf and NaN: exact and NaN-free. Only LessThan can
    drop a NaN, so |x| is rebuilt from comparisons: a binary search for the
    exponent, then the 23 mantissa bits."""
    fin = isfinite(x)
    neg = x < 0.0
    a = x * (1.0 - 2.0 * neg)  # |x|; NaN stays NaN, but only meets comparisons
    # Largest e in [-149, 127] with 2**e <= a, or -150 (a = 0, inf or NaN).
    e: Tensor | float = -150.0
    for step in (256, 128, 64, 32, 16, 8, 4, 2, 1):
        cand = e + step
        if isinstance(cand, float):
            t: Tensor | float = INF if cand >= 128 else 2.0**cand
        else:
            t = cand.exp2()  # inf past 127: never <= a finite a
        bit = fin - (a < t)
        e = e + bit * float(step)
    assert not isinstance(e, float)
    half = (e - e.fmod(2.0)) * 0.5  # two factors, each a float32, make 2**-e
    y = a * (half * -1.0).exp2() * (half - e).exp2()  # in [1, 2) for finite non-zero a
    m = (y - 1.0) * float(2**23)  # the mantissa as an integer (NaN for 0/inf/NaN)
    mant: Tensor | None = None
    for j in range(23):
        b = (m.fmod(float(2 ** (j + 1))) > 2.0**j - 0.5) * float(2**j)
        mant = b if mant is None else mant + b
    assert mant is not None
    value = (1.0 + mant * 2.0**-23) * e.exp2() * (e > -149.5)  # 0 for 0, inf, NaN
    return value * (1.0 - 2.0 * neg)

def nan_to_num(
    x: Tensor, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None
) -> Tensor:
    """Replace NaN, inf and -inf (default ±FLT_MAX) by numbers. ``x.nan_to_num(nan=0.0)``"""
    # Exact and NaN-free (via _finite_part), but about 230 graph nodes.
    pos = FLT_MAX if posinf is None else posinf
    neg = -FLT_MAX if neginf is None else neginf
    return (
        _finite_part(x)
        + _fill(isnan(x), nan)
        + _fill(x > FLT_MAX, pos)
        + _fill(x < -FLT_MAX, neg)
    )
