"""Dims and shapes: turning user input into symbolic ``Expr`` and back."""

from __future__ import annotations

from typing import Sequence, Union

from luminal._core import Expr, ShapeError

Dim = Union[int, Expr]
DimLike = Union[int, str, Expr]


def as_expr(d: DimLike, op: str = "shape") -> Expr:
    """An ``Expr`` for an int, a dim name (``"seq"``) or an expression."""
    if isinstance(d, Expr):
        return d
    if isinstance(d, bool):
        raise TypeError(f"[{op}] a dim must be an int, a name or an Expr, not bool")
    if isinstance(d, int):
        if d < 0:
            raise ShapeError(f"[{op}] dims must be >= 0, got {d}")
        return Expr(d)
    if isinstance(d, str):
        if not d.isidentifier():
            raise ValueError(f"[{op}] a dim name must be an identifier, got {d!r}")
        return Expr.var(d)
    raise TypeError(f"[{op}] a dim must be an int, a name or an Expr, not {type(d).__name__}")


def as_shape(shape: DimLike | Sequence[DimLike], op: str = "shape") -> list[Expr]:
    if isinstance(shape, (int, str, Expr)):
        return [as_expr(shape, op)]
    return [as_expr(d, op) for d in shape]


def to_dim(e: Expr) -> Dim:
    """Plain ``int`` for a constant dim, the ``Expr`` otherwise."""
    c = e.as_const()
    return e if c is None else int(c)


def fmt_shape(shape: Sequence[Dim | Expr]) -> str:
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def normalize_dim(dim: int, ndim: int, op: str) -> int:
    """A torch-style dim index (negatives count from the end) made positive."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"[{op}] dim must be an int, got {type(dim).__name__}")
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(
            f"[{op}] dim {dim} is out of range for a tensor of rank {ndim} "
            f"(expected in [{-max(ndim, 1)}, {max(ndim, 1) - 1}])"
        )
    return dim % max(ndim, 1)


def product(dims: Sequence[Expr]) -> Expr:
    out = Expr(1)
    for d in dims:
        out = out * d
    return out


def same(a: Expr, b: Expr) -> bool:
    return bool(a == b)


def is_one(e: Expr) -> bool:
    return e.as_const() == 1
