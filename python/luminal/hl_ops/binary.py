"""Arithmetic and comparisons from Add, Mul, Mod and LessThan, with torch's
broadcasting and NaN rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, Union

from luminal._core import Expr, ShapeError
from luminal._shape import fmt_shape, is_one, same

if TYPE_CHECKING:
    from luminal.tensor import Tensor

Scalar = Union[int, float, Expr]
TensorLike = Union["Tensor", int, float, Expr]

FLT_MAX = 3.4028234663852886e38
INF = float("inf")


def broadcast_shapes(op: str, a: Sequence[Expr], b: Sequence[Expr]) -> list[Expr]:
    """torch's broadcasting: align from the right; equal dims or size 1."""
    out: list[Expr] = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else Expr(1)
        y = b[-i] if i <= len(b) else Expr(1)
        if same(x, y) or is_one(y):
            out.append(x)
        elif is_one(x):
            out.append(y)
        else:
            raise ShapeError(
                f"[{op}] shapes {fmt_shape(a)} and {fmt_shape(b)} cannot broadcast: "
                f"dim {-i} is {x} vs {y}"
            )
    return out[::-1]


def lift(op: str, like: Tensor, other: TensorLike) -> Tensor:
    """``other`` as a tensor in ``like``'s graph (numbers become constants)."""
    from luminal.tensor import Tensor

    if isinstance(other, Tensor):
        if other.graph is not like.graph:
            raise ValueError(f"[{op}] tensors belong to different graphs")
        return other
    if isinstance(other, (int, float, Expr)) and not isinstance(other, bool):
        return like.graph.constant(other)
    if isinstance(other, bool):
        return like.graph.constant(float(other))
    raise TypeError(f"[{op}] expected a Tensor or a number, got {type(other).__name__}")


def binary(op: str, a: Tensor, b: TensorLike, name: str | None = None) -> Tensor:
    """Broadcast ``a`` and ``b`` and apply the primitive ``op`` to them."""
    label = name or op
    bt = lift(label, a, b)
    shape = broadcast_shapes(label, a._view.shape, bt._view.shape)
    return a._expand_to(shape)._apply(op, bt._expand_to(shape))


def boolean(t: Tensor) -> Tensor:
    """Mark a fresh 0/1 result as dtype "bool" (``numpy()`` gives bools; masks
    read it as keep/drop). Compute stays float32."""
    t.dtype = "bool"
    return t


def not_nan(x: Tensor) -> Tensor:
    """1 where x is not NaN. LessThan is 0 for NaN, so: x < inf, or x is +inf."""
    return (x < INF) + (x > FLT_MAX)


def maximum(x: Tensor, other: TensorLike) -> Tensor:
    """Elementwise max with broadcasting; NaN if either is NaN (as torch).
    A MaxReduce over the pair, so infinities need no masking. ``lm.maximum(a, b)``"""
    from luminal.hl_ops.movement import stack

    b = lift("maximum", x, other)
    shape = broadcast_shapes("maximum", x._view.shape, b._view.shape)
    return stack([x._expand_to(shape), b._expand_to(shape)], -1).amax(-1)


def minimum(x: Tensor, other: TensorLike) -> Tensor:
    """Elementwise min with broadcasting; NaN if either is NaN. ``lm.minimum(a, b)``"""
    return -maximum(-x, -lift("minimum", x, other))


def select(mask: Tensor, v: Tensor) -> Tensor:
    """``v`` where the 0/1 ``mask`` is 1, else 0, exact for infinite ``v``
    (``v * mask`` would make inf*0 = NaN). NaN in ``v`` still propagates."""
    hole = (1.0 - mask).log2()  # -inf where selected, 0 elsewhere
    return minimum(maximum(v, hole), -hole)


def add(x: Tensor, other: TensorLike) -> Tensor:
    """Elementwise sum with broadcasting. ``a.add(b)`` or ``a + b``"""
    return binary("Add", x, other, "add")

def mul(x: Tensor, other: TensorLike) -> Tensor:
    """Elementwise product with broadcasting. ``a.mul(b)`` or ``a * b``"""
    return binary("Mul", x, other, "mul")

def sub(x: Tensor, other: TensorLike) -> Tensor:
    """``a - b``"""
    return x + lift("sub", x, other) * -1.0

def div(x: Tensor, other: TensorLike) -> Tensor:
    """``a / b``, as ``a * reciprocal(b)``."""
    return x * lift("div", x, other).reciprocal()

def fmod(x: Tensor, other: TensorLike) -> Tensor:
    """C-style remainder (sign of the dividend), the Mod primitive. ``a.fmod(b)``"""
    return binary("Mod", x, other, "fmod")

def remainder(x: Tensor, other: TensorLike) -> Tensor:
    """Python-style remainder (sign of the divisor), like ``torch.remainder``
    and ``a % b``."""
    b = lift("remainder", x, other)
    r = x.fmod(b)
    # Shift by b where r is non-zero and its sign differs from b's (select, not
    # b * mask: b may be inf).
    wrong_sign = (r < 0) * (b > 0) + (r > 0) * (b < 0)
    return r + select(wrong_sign, b)

def lt(x: Tensor, other: TensorLike) -> Tensor:
    """1.0 where a < b else 0.0 (the LessThan primitive). ``a < b``"""
    return boolean(binary("LessThan", x, other, "lt"))

def gt(x: Tensor, other: TensorLike) -> Tensor:
    """``a > b`` as 0.0/1.0."""
    return boolean(binary("LessThan", lift("gt", x, other), x, "gt"))

def eq(x: Tensor, other: TensorLike) -> Tensor:
    """``a == b`` as 0.0/1.0; NaN equals nothing, as in torch."""
    b = lift("eq", x, other)
    return boolean((1.0 - x.lt(b) - x.gt(b)) * not_nan(x) * not_nan(b))

def ne(x: Tensor, other: TensorLike) -> Tensor:
    """``a != b`` as 0.0/1.0; NaN differs from everything."""
    return boolean(1.0 - x.eq(other))

def le(x: Tensor, other: TensorLike) -> Tensor:
    """``a <= b`` as 0.0/1.0; false when either side is NaN."""
    b = lift("le", x, other)
    return boolean((1.0 - x.gt(b)) * not_nan(x) * not_nan(b))

def ge(x: Tensor, other: TensorLike) -> Tensor:
    """``a >= b`` as 0.0/1.0; false when either side is NaN."""
    b = lift("ge", x, other)
    return boolean((1.0 - x.lt(b)) * not_nan(x) * not_nan(b))

def rsub(x: Tensor, other: TensorLike) -> Tensor:
    """``other - x``"""
    return lift("sub", x, other).sub(x)


def rdiv(x: Tensor, other: TensorLike) -> Tensor:
    """``other / x``"""
    return lift("div", x, other).div(x)


def rremainder(x: Tensor, other: TensorLike) -> Tensor:
    """``other % x``"""
    return lift("remainder", x, other).remainder(x)
