"""Matrix products as broadcast multiply + SumReduce (backends recover GEMM)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from luminal._core import ShapeError
from luminal._shape import fmt_shape, same

if TYPE_CHECKING:
    from luminal.tensor import Tensor


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with torch's rules for 1-D operands and batch broadcasting.

    >>> c = a.matmul(b)   # (..., n, k) @ (..., k, m) -> (..., n, m)
    """
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(
            f"[matmul] both arguments need at least 1 dim, got {fmt_shape(a.shape)} "
            f"and {fmt_shape(b.shape)}"
        )
    ka, kb = a._view.shape[-1], b._view.shape[0 if b.ndim == 1 else -2]
    if not same(ka, kb):
        raise ShapeError(
            f"[matmul] a {fmt_shape(a.shape)} and b {fmt_shape(b.shape)}: "
            f"contracted dims differ ({ka} vs {kb})"
        )
    if a.ndim == 1 and b.ndim == 1:
        return (a * b).sum(-1)
    x = a.unsqueeze(0) if a.ndim == 1 else a
    y = b.unsqueeze(-1) if b.ndim == 1 else b
    # (..., n, k, 1) * (..., 1, k, m) summed over k.
    out = (x.unsqueeze(-1) * y.unsqueeze(-3)).sum(-2)
    if a.ndim == 1:
        out = out.squeeze(-2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    return out


def rmatmul(x: Tensor, other: Tensor) -> Tensor:
    """``other @ x``"""
    return matmul(other, x)
