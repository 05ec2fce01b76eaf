"""``pad`` with torch.nn.functional's modes: "constant" (a view, plus a mask
for non-zero values), "reflect", "replicate" and "circular" (slices, flips
and broadcasts of the edges, concatenated: views and adds only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from luminal._core import ShapeError
from luminal._shape import fmt_shape
from luminal.hl_ops.movement import cat

if TYPE_CHECKING:
    from luminal.tensor import Tensor

__all__ = ["pad"]


def _cut(x: Tensor, axis: int, start: int, stop: int, flip: bool = False) -> Tensor:
    v = x._view.slice(axis, start, stop, 1)
    return x._with_view(v.flip(axis) if flip else v)


def _pad_axis(x: Tensor, axis: int, lo: int, hi: int, mode: str) -> Tensor:
    n = x._view.shape[axis].as_const()
    if n is None:
        raise ShapeError(f"[pad] mode {mode!r} needs concrete sizes, dim {axis} is {x._view.shape[axis]}")
    if lo < 0 or hi < 0:
        raise ValueError(f"[pad] negative padding is only supported in 'constant' mode, got {(lo, hi)}")
    if mode == "reflect" and (lo >= n or hi >= n):
        raise ValueError(f"[pad] reflect padding ({lo}, {hi}) must be smaller than the dim size {n}")
    if mode == "circular" and (lo > n or hi > n):
        raise ValueError(f"[pad] circular padding ({lo}, {hi}) must be at most the dim size {n}")
    if mode == "replicate" and n == 0:
        raise ValueError("[pad] cannot replicate-pad an empty dim")
    parts = []
    if lo:
        if mode == "reflect":
            parts.append(_cut(x, axis, 1, lo + 1, flip=True))
        elif mode == "circular":
            parts.append(_cut(x, axis, n - lo, n))
        else:
            edge = _cut(x, axis, 0, 1)
            shape = list(edge._view.shape)
            shape[axis] = shape[axis] * lo
            parts.append(edge._expand_to(shape))
    parts.append(x)
    if hi:
        if mode == "reflect":
            parts.append(_cut(x, axis, n - 1 - hi, n - 1, flip=True))
        elif mode == "circular":
            parts.append(_cut(x, axis, 0, hi))
        else:
            edge = _cut(x, axis, n - 1, n)
            shape = list(edge._view.shape)
            shape[axis] = shape[axis] * hi
            parts.append(edge._expand_to(shape))
    return cat(parts, axis) if len(parts) > 1 else x


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad like ``torch.nn.functional.pad``: ``pad`` lists (before, after) pairs
    from the last dim backwards. "constant" fills with ``value`` (0 by default;
    negative amounts crop); "reflect" mirrors without repeating the edge,
    "replicate" repeats the edge, "circular" wraps around.

    >>> F.pad(x, (1, 1, 2, 0), mode="reflect")
    """
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ShapeError(f"[pad] pad {tuple(pad)} needs an even length of at most 2*{input.ndim} "
                         f"for an input of shape {fmt_shape(input.shape)}")
    if mode == "constant":
        return input.pad(list(pad), 0.0 if value is None else float(value))
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"[pad] mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if value is not None and value != 0:
        raise ValueError(f"[pad] padding mode {mode!r} doesn't take in value argument")
    out = input
    for i in range(len(pad) // 2):
        out = _pad_axis(out, input.ndim - 1 - i, int(pad[2 * i]), int(pad[2 * i + 1]), mode)
    return out
