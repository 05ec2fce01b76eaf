"""Shared helpers for ``luminal.nn.functional``: argument normalisation
(``_pair``-style tuples, torch's legacy reduction arguments), static sizes, and
sliding windows built from views (the im2col behind conv and pooling)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, Union

from luminal._core import Expr, ShapeError
from luminal._shape import fmt_shape

if TYPE_CHECKING:
    from luminal.tensor import Tensor

IntOrTuple = Union[int, Sequence[int]]


def ntuple(v: IntOrTuple, n: int, name: str, op: str) -> tuple[int, ...]:
    """``v`` as an ``n``-tuple of ints (torch's ``_pair``/``_triple``)."""
    if isinstance(v, bool):
        raise TypeError(f"[{op}] {name} must be an int or a tuple of {n} ints, got bool")
    if isinstance(v, int):
        return (v,) * n
    out = tuple(v)
    if len(out) == 1:
        out = out * n
    if len(out) != n or not all(isinstance(i, int) and not isinstance(i, bool) for i in out):
        raise ValueError(f"[{op}] {name} must be an int or a tuple of {n} ints, got {v!r}")
    return out


def static(d: Expr, op: str, what: str) -> int:
    """A dim that must be a known int here (window geometry is fixed at build time)."""
    c = d.as_const()
    if c is None:
        raise ShapeError(f"[{op}] {what} must be a concrete size, got the symbolic dim {d}")
    return int(c)


def static_shape(x: Tensor, op: str, start: int = 0) -> list[int]:
    """Dims ``start..`` as ints (the batch dim before ``start`` may be symbolic)."""
    return [static(d, op, f"dim {i} of the input {fmt_shape(x.shape)}")
            for i, d in enumerate(x._view.shape) if i >= start]


def batched(x: Tensor, spatial: int, op: str) -> tuple[Tensor, bool]:
    """Accept (N, C, *spatial) or unbatched (C, *spatial) like torch: the 4-d/3-d
    form and whether a batch dim was added."""
    if x.ndim == spatial + 2:
        return x, False
    if x.ndim == spatial + 1:
        return x.unsqueeze(0), True
    raise ShapeError(
        f"[{op}] expected a {spatial + 1}-d (unbatched) or {spatial + 2}-d (batched) input, "
        f"got shape {fmt_shape(x.shape)}"
    )


def legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str, op: str) -> str:
    """torch's rule: the deprecated ``size_average``/``reduce`` override ``reduction``."""
    if size_average is not None or reduce is not None:
        sa = True if size_average is None else size_average
        rd = True if reduce is None else reduce
        reduction = "none" if not rd else ("mean" if sa else "sum")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"[{op}] {reduction!r} is not a valid value for reduction ('mean', 'sum' or 'none')")
    return reduction


def apply_reduction(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def conv_out_size(size: int, k: int, s: int, p_lo: int, p_hi: int, d: int) -> int:
    return (size + p_lo + p_hi - d * (k - 1) - 1) // s + 1


def unfold(x: Tensor, axis: int, k: int, s: int, d: int) -> Tensor:
    """Sliding windows along ``axis``: (..., L, ...) -> (..., O, k, ...) with
    ``out[o, t] = x[o*s + t*d]`` and O = (L - d*(k-1) - 1) // s + 1.

    Windows that do not overlap (``d`` divides ``s`` and ``k*d <= s``) are pure
    views (strided slice + reshape). Overlapping ones use tinygrad's pool trick:
    repeat the axis (one Contiguous copy, about k times the input), then cut
    and reshape so row ``t`` starts ``t*d`` later; the rest are views.
    """
    n = static(x._view.shape[axis], "unfold", "a window axis")
    o = (n - d * (k - 1) - 1) // s + 1
    if o <= 0:
        raise ShapeError(
            f"[unfold] a window of {k} taps (dilation {d}) does not fit in a dim of size {n}"
        )
    v = x._view
    if k == 1:  # a strided slice
        v = v.slice(axis, 0, (o - 1) * s + 1, s)
        return x._with_view(v).unsqueeze(axis + 1)
    if s % d == 0 and k <= s // d:
        m = s // d
        if o * s <= n:
            v = v.slice(axis, 0, o * s, d)  # every d-th element: o*m of them
        else:  # the last window ends early: pad the (unused) tail
            v = v.slice(axis, 0, (o - 1) * s + (k - 1) * d + 1, d)
            v = v.pad(axis, 0, o * m - static(v.shape[axis], "unfold", "a window axis"))
        y = x._with_view(v)
        shape = list(v.shape)
        y = y.reshape(shape[:axis] + [Expr(o), Expr(m)] + shape[axis + 1 :])
        return y._with_view(y._view.slice(axis + 1, 0, k, 1))
    f = 1 + int(o * s > n + d)
    row = n * f + d  # row t of the (k, row) matrix starts t*d later in x
    reps = -(-k * row // n)
    shape = list(v.shape)
    rep = x.unsqueeze(axis)._expand_to(shape[:axis] + [Expr(reps)] + shape[axis:])
    flat = rep.reshape(shape[:axis] + [Expr(reps * n)] + shape[axis + 1 :])  # the one copy
    flat = flat._with_view(flat._view.slice(axis, 0, k * row, 1))
    w = flat.reshape(shape[:axis] + [Expr(k), Expr(row)] + shape[axis + 1 :])
    w = w._with_view(w._view.slice(axis + 1, 0, o * s, 1))
    w = w.reshape(shape[:axis] + [Expr(k), Expr(o), Expr(s)] + shape[axis + 1 :])
    w = w._with_view(w._view.slice(axis + 2, 0, 1, 1))
    w = w.reshape(shape[:axis] + [Expr(k), Expr(o)] + shape[axis + 1 :])
    return w.transpose(axis, axis + 1)


def unfold_nd(x: Tensor, first_axis: int, k: Sequence[int], s: Sequence[int], d: Sequence[int]) -> Tensor:
    """``unfold`` over consecutive axes from ``first_axis``: (..., L1, L2, ...) ->
    (..., O1, k1, O2, k2, ...)."""
    out = x
    for i, (kk, ss, dd) in enumerate(zip(k, s, d)):
        out = unfold(out, first_axis + 2 * i, kk, ss, dd)
    return out


def windows_last(x: Tensor, first_axis: int, nd: int) -> Tensor:
    """Reorder (..., O1, k1, ..., Ond, knd, ...) so the outputs come first and
    the taps last: (..., O1..Ond, ..., k1..knd)."""
    r = x.ndim
    outs = [first_axis + 2 * i for i in range(nd)]
    taps = [first_axis + 2 * i + 1 for i in range(nd)]
    rest = [a for a in range(r) if a not in outs and a not in taps]
    before = [a for a in rest if a < first_axis]
    after = [a for a in rest if a > first_axis]
    return x.permute(before + outs + after + taps)


def pad_spatial(x: Tensor, pads: Sequence[tuple[int, int]], value: float = 0.0) -> Tensor:
    """Pad the last ``len(pads)`` dims: ``pads[i]`` is (before, after) for spatial
    dim i (in order), negative amounts crop."""
    flat: list[int] = []
    for lo, hi in reversed(list(pads)):
        flat += [lo, hi]
    if not any(flat):
        return x
    return x.pad(flat, value)


def contract_axis(x: Tensor, axis: int, m: Tensor) -> Tensor:
    """``x`` with dim ``axis`` (size L) replaced by ``m @ x`` along it; m is (O, L)."""
    order = [a for a in range(x.ndim) if a != axis] + [axis]
    y = x.permute(order).unsqueeze(-2)  # (..., 1, L)
    out = (y * m).sum(-1)  # (..., O)
    back = list(range(x.ndim - 1))
    back.insert(axis, x.ndim - 1)
    return out.permute(back)

