"""Reductions from SumReduce and MaxReduce."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, Union

from luminal._shape import normalize_dim, product

if TYPE_CHECKING:
    from luminal.tensor import Tensor

DimArg = Union[int, Sequence[int], None]


def reduce_dims(x: Tensor, dim: DimArg, op: str) -> list[int]:
    """The dims a reduction covers, positive and sorted; None means all."""
    if dim is None:
        return list(range(x.ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    out = sorted({normalize_dim(d, x.ndim, op) for d in dims})
    if len(out) != len(dims):
        raise ValueError(f"[{op}] dim {dim} names a dim more than once")
    return out if x.ndim else []


def reduce(x: Tensor, primitive: str, dim: DimArg, keepdim: bool, op: str) -> Tensor:
    dims = reduce_dims(x, dim, op)
    out = x
    for d in reversed(dims):  # highest first, so lower indices stay put
        out = out._apply(primitive, axis=d)
    if keepdim:
        for d in dims:
            out = out.unsqueeze(d)
    return out


def sum(x: Tensor, dim: DimArg = None, keepdim: bool = False) -> Tensor:
    """Sum over ``dim`` (an int, several, or all when None).

    >>> x.sum(), x.sum(-1), x.sum((0, 2), keepdim=True)
    """
    return reduce(x, "SumReduce", dim, keepdim, "sum")

def amax(x: Tensor, dim: DimArg = None, keepdim: bool = False) -> Tensor:
    """Maximum over ``dim``; NaN if any reduced element is NaN. ``x.amax(-1)``"""
    return reduce(x, "MaxReduce", dim, keepdim, "amax")

def max(x: Tensor) -> Tensor:
    """Maximum of all elements (a rank-0 tensor). ``x.max()``"""
    return x.amax()

def mean(x: Tensor, dim: DimArg = None, keepdim: bool = False) -> Tensor:
    """Arithmetic mean over ``dim``; dims may be symbolic. ``x.mean(-1)``"""
    dims = reduce_dims(x, dim, "mean")
    count = product([x._view.shape[d] for d in dims])
    total = x.sum(dims, keepdim)
    n = count.as_const()
    if n is None:
        return total * x.graph.constant(count).reciprocal()
    return total * (1.0 / n if n else float("inf"))
