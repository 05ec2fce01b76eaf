"""``linear`` (and the matrix products ``bmm``/``einsum`` from hl_ops.linalg)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from luminal._core import ShapeError
from luminal._shape import fmt_shape, same
from luminal.hl_ops.linalg import bmm, einsum, matmul

if TYPE_CHECKING:
    from luminal.tensor import Tensor

__all__ = ["bilinear", "bmm", "einsum", "linear", "matmul"]


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``, like ``torch.nn.functional.linear``: weight is
    (out_features, in_features) or (in_features,); input is (*, in_features).

    >>> y = F.linear(x, w, b)
    """
    if weight.ndim not in (1, 2):
        raise ShapeError(f"[linear] weight must be 1-d or 2-d, got shape {fmt_shape(weight.shape)}")
    if input.ndim == 0 or not same(input._view.shape[-1], weight._view.shape[-1]):
        raise ShapeError(
            f"[linear] input {fmt_shape(input.shape)} and weight {fmt_shape(weight.shape)}: "
            f"in_features differ"
        )
    out = matmul(input, weight.mT if weight.ndim == 2 else weight)
    return out if bias is None else out + bias


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x1^T A x2 + b`` per output feature, like ``torch.nn.functional.bilinear``:
    input1 (*, in1), input2 (*, in2), weight (out, in1, in2) -> (*, out)."""
    if weight.ndim != 3:
        raise ShapeError(f"[bilinear] weight must be 3-d, got shape {fmt_shape(weight.shape)}")
    out = einsum("...i,oij,...j->...o", input1, weight, input2)
    return out if bias is None else out + bias
