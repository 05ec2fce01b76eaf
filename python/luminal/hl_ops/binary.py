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


def not_nan(x: Tensor) -> Tensor:
    """1 where x is not NaN. LessThan is 0 for NaN, so: x < inf, or x is +inf."""
    return (x < INF) + (x > FLT_MAX)


class BinaryOps:
    def add(self: Tensor, other: TensorLike) -> Tensor:
        """Elementwise sum with broadcasting. ``a.add(b)`` or ``a + b``"""
        return binary("Add", self, other, "add")

    def mul(self: Tensor, other: TensorLike) -> Tensor:
        """Elementwise product with broadcasting. ``a.mul(b)`` or ``a * b``"""
        return binary("Mul", self, other, "mul")

    def sub(self: Tensor, other: TensorLike) -> Tensor:
        """``a - b``"""
        return self + lift("sub", self, other) * -1.0

    def div(self: Tensor, other: TensorLike) -> Tensor:
        """``a / b``, as ``a * reciprocal(b)``."""
        return self * lift("div", self, other).reciprocal()

    def fmod(self: Tensor, other: TensorLike) -> Tensor:
        """C-style remainder (sign of the dividend), the Mod primitive. ``a.fmod(b)``"""
        return binary("Mod", self, other, "fmod")

    def remainder(self: Tensor, other: TensorLike) -> Tensor:
        """Python-style remainder (sign of the divisor), like ``torch.remainder``
        and ``a % b``."""
        b = lift("remainder", self, other)
        r = self.fmod(b)
        # Shift by b where r is non-zero and its sign differs from b's.
        wrong_sign = (r < 0) * (b > 0) + (r > 0) * (b < 0)
        return r + b * wrong_sign

    def lt(self: Tensor, other: TensorLike) -> Tensor:
        """1.0 where a < b else 0.0 (the LessThan primitive). ``a < b``"""
        return binary("LessThan", self, other, "lt")

    def gt(self: Tensor, other: TensorLike) -> Tensor:
        """``a > b`` as 0.0/1.0."""
        return binary("LessThan", lift("gt", self, other), self, "gt")

    def eq(self: Tensor, other: TensorLike) -> Tensor:
        """``a == b`` as 0.0/1.0; NaN equals nothing, as in torch."""
        b = lift("eq", self, other)
        return (1.0 - self.lt(b) - self.gt(b)) * not_nan(self) * not_nan(b)

    def ne(self: Tensor, other: TensorLike) -> Tensor:
        """``a != b`` as 0.0/1.0; NaN differs from everything."""
        return 1.0 - self.eq(other)

    def le(self: Tensor, other: TensorLike) -> Tensor:
        """``a <= b`` as 0.0/1.0; false when either side is NaN."""
        b = lift("le", self, other)
        return (1.0 - self.gt(b)) * not_nan(self) * not_nan(b)

    def ge(self: Tensor, other: TensorLike) -> Tensor:
        """``a >= b`` as 0.0/1.0; false when either side is NaN."""
        b = lift("ge", self, other)
        return (1.0 - self.lt(b)) * not_nan(self) * not_nan(b)

    def __add__(self: Tensor, other: TensorLike) -> Tensor:
        return self.add(other)

    def __radd__(self: Tensor, other: TensorLike) -> Tensor:
        return lift("add", self, other).add(self)

    def __sub__(self: Tensor, other: TensorLike) -> Tensor:
        return self.sub(other)

    def __rsub__(self: Tensor, other: TensorLike) -> Tensor:
        return lift("sub", self, other).sub(self)

    def __mul__(self: Tensor, other: TensorLike) -> Tensor:
        return self.mul(other)

    def __rmul__(self: Tensor, other: TensorLike) -> Tensor:
        return lift("mul", self, other).mul(self)

    def __truediv__(self: Tensor, other: TensorLike) -> Tensor:
        return self.div(other)

    def __rtruediv__(self: Tensor, other: TensorLike) -> Tensor:
        return lift("div", self, other).div(self)

    def __mod__(self: Tensor, other: TensorLike) -> Tensor:
        return self.remainder(other)

    def __rmod__(self: Tensor, other: TensorLike) -> Tensor:
        return lift("remainder", self, other).remainder(self)

    def __lt__(self: Tensor, other: TensorLike) -> Tensor:
        return self.lt(other)

    def __gt__(self: Tensor, other: TensorLike) -> Tensor:
        return self.gt(other)

    def __le__(self: Tensor, other: TensorLike) -> Tensor:
        return self.le(other)

    def __ge__(self: Tensor, other: TensorLike) -> Tensor:
        return self.ge(other)

    def __eq__(self: Tensor, other: object) -> Tensor:  # type: ignore[override]
        return self.eq(other)  # type: ignore[arg-type]

    def __ne__(self: Tensor, other: object) -> Tensor:  # type: ignore[override]
        return self.ne(other)  # type: ignore[arg-type]
