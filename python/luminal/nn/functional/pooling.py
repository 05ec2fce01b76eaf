"""Pooling and resampling: max/avg pooling over sliding windows (views, as in
conv), adaptive average pooling and ``interpolate`` as per-axis averaging /
selection matrices (a multiply + SumReduce per resized axis).

Pooling windows are built like conv's im2col: pad (``-inf`` for max pooling,
so padding never wins; 0 for average pooling), cut windows per axis, reduce
over the taps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional, Sequence, Union, overload

import numpy as np

from luminal._core import Expr, ShapeError
from luminal._shape import fmt_shape
from luminal.hl_ops import creation
from luminal.hl_ops.binary import maximum, minimum
from luminal.nn.functional._utils import (
    IntOrTuple,
    batched,
    contract_axis,
    ntuple,
    pad_spatial,
    static,
    static_shape,
    unfold_nd,
    windows_last,
)

from luminal.nn.functional.upsampling import interpolate, upsample

if TYPE_CHECKING:
    from luminal.tensor import Tensor

__all__ = [
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "avg_pool1d", "avg_pool2d",
    "avg_pool3d", "interpolate", "max_pool1d", "max_pool2d", "max_pool3d", "upsample",
]

INF = float("inf")
MaxPoolOut = Union["Tensor", tuple["Tensor", "Tensor"]]


def _pool_out(L: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape."""
    span = L + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= L + p:
        out -= 1
    return out


def _pool_args(
    x: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None, padding: IntOrTuple,
    dilation: IntOrTuple, ceil_mode: bool, nd: int, op: str,
) -> tuple[list[int], list[int], list[int], list[int], list[int], list[int]]:
    """(sizes, k, s, p, d, outs) checked like torch."""
    size = static_shape(x, op, 2)
    k = list(ntuple(kernel_size, nd, "kernel_size", op))
    if stride is None or (not isinstance(stride, int) and len(stride) == 0):
        s = list(k)  # torch: stride defaults to the kernel size
    else:
        s = list(ntuple(stride, nd, "stride", op))
    p = list(ntuple(padding, nd, "padding", op))
    d = list(ntuple(dilation, nd, "dilation", op))
    if min(k) < 1 or min(s) < 1 or min(d) < 1 or min(p) < 0:
        raise ValueError(f"[{op}] kernel_size, stride and dilation must be >= 1, padding >= 0")
    if any(pp > kk // 2 for pp, kk in zip(p, k)):
        raise ValueError(f"[{op}] pad should be at most half of effective kernel size, got padding "
                         f"{tuple(p)} for kernel {tuple(k)}")
    outs = [_pool_out(L, kk, ss, pp, dd, ceil_mode) for L, kk, ss, pp, dd in zip(size, k, s, p, d)]
    if min(outs) < 1:
        raise ShapeError(f"[{op}] input {fmt_shape(x.shape)} is too small for kernel {tuple(k)}: "
                         f"output size {tuple(outs)}")
    return size, k, s, p, d, outs


def _windows(
    x: Tensor, size: list[int], k: list[int], s: list[int], p: list[int], d: list[int],
    outs: list[int], value: float,
) -> Tensor:
    """(N, C, *size) -> (N, C, *outs, *k): padded with ``value`` (plus the extra
    right padding ceil_mode needs), one window per output."""
    nd = len(k)
    pads = [(pp, max(pp, (o - 1) * ss + dd * (kk - 1) + 1 - L - pp))
            for L, kk, ss, pp, dd, o in zip(size, k, s, p, d, outs)]
    xp = pad_spatial(x, pads, value)
    win = windows_last(unfold_nd(xp, 2, k, s, d), 2, nd)
    v = win._view
    for i, o in enumerate(outs):
        if static(v.shape[2 + i], "pool", "an output dim") != o:
            v = v.slice(2 + i, 0, o, 1)
    return win._with_view(v)


def _max_pool(
    input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None, padding: IntOrTuple,
    dilation: IntOrTuple, ceil_mode: bool, return_indices: bool, nd: int, op: str,
) -> MaxPoolOut:
    x, unbatched = batched(input, nd, op)
    size, k, s, p, d, outs = _pool_args(x, kernel_size, stride, padding, dilation, ceil_mode, nd, op)
    win = _windows(x, size, k, s, p, d, outs, -INF)
    taps = list(range(2 + nd, 2 + 2 * nd))
    out = win.amax(taps)
    if not return_indices:
        return out.squeeze(0) if unbatched else out
    # Flat input position of each tap: the same windows over iota(prod(size)).
    numel = int(np.prod(size))
    pos = creation.iota(x.graph, numel).reshape(size).reshape([1, 1] + size)
    pwin = _windows(pos, size, k, s, p, d, outs, 0.0)
    lead = list(win._view.shape[: 2 + nd])
    ntaps = int(np.prod(k))
    first = win.reshape(lead + [Expr(ntaps)]).argmax(-1, keepdim=True)  # first max (NaN wins)
    onehot = creation.iota(x.graph, ntaps).eq(first)
    idx = (pwin.reshape([Expr(1), Expr(1)] + lead[2:] + [Expr(ntaps)]) * onehot).sum(-1)
    idx = creation.typed(idx, "i32")
    if unbatched:
        return out.squeeze(0), idx.squeeze(0)
    return out, idx


@overload
def max_pool1d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = ..., padding: IntOrTuple = ...,
               dilation: IntOrTuple = ..., ceil_mode: bool = ...,
               return_indices: Literal[False] = ...) -> Tensor: ...
@overload
def max_pool1d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = ..., padding: IntOrTuple = ...,
               dilation: IntOrTuple = ..., ceil_mode: bool = ..., *,
               return_indices: Literal[True]) -> tuple[Tensor, Tensor]: ...
@overload
def max_pool1d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = ..., padding: IntOrTuple = ...,
               dilation: IntOrTuple = ..., ceil_mode: bool = ..., return_indices: bool = ...) -> MaxPoolOut: ...
def max_pool1d(
    input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1, ceil_mode: bool = False, return_indices: bool = False,
) -> MaxPoolOut:
    """1-d max pooling like ``torch.nn.functional.max_pool1d``."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1, "max_pool1d")


@overload
def max_pool2d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = ..., padding: IntOrTuple = ...,
               dilation: IntOrTuple = ..., ceil_mode: bool = ...,
               return_indices: Literal[False] = ...) -> Tensor: ...
@overload
def max_pool2d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = ..., padding: IntOrTuple = ...,
               dilation: IntOrTuple = ..., ceil_mode: bool = ..., *,
               return_indices: Literal[True]) -> tuple[Tensor, Tensor]: ...
@overload
def max_pool2d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = ..., padding: IntOrTuple = ...,
               dilation: IntOrTuple = ..., ceil_mode: bool = ..., return_indices: bool = ...) -> MaxPoolOut: ...
def max_pool2d(
    input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1, ceil_mode: bool = False, return_indices: bool = False,
) -> MaxPoolOut:
    """2-d max pooling like ``torch.nn.functional.max_pool2d``: padding counts as
    -inf, ``ceil_mode`` keeps partial windows that start inside the input,
    ``return_indices=True`` also gives the flat (H*W) index of each max as "i32"
    (the first maximum; torch's CPU kernel takes the last NaN, luminal the first).

    >>> y = F.max_pool2d(x, 3, stride=2, padding=1)
    """
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2, "max_pool2d")


@overload
def max_pool3d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = ..., padding: IntOrTuple = ...,
               dilation: IntOrTuple = ..., ceil_mode: bool = ...,
               return_indices: Literal[False] = ...) -> Tensor: ...
@overload
def max_pool3d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = ..., padding: IntOrTuple = ...,
               dilation: IntOrTuple = ..., ceil_mode: bool = ..., *,
               return_indices: Literal[True]) -> tuple[Tensor, Tensor]: ...
@overload
def max_pool3d(input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = ..., padding: IntOrTuple = ...,
               dilation: IntOrTuple = ..., ceil_mode: bool = ..., return_indices: bool = ...) -> MaxPoolOut: ...
def max_pool3d(
    input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1, ceil_mode: bool = False, return_indices: bool = False,
) -> MaxPoolOut:
    """3-d max pooling like ``torch.nn.functional.max_pool3d``."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3, "max_pool3d")


def _avg_pool(
    input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None, padding: IntOrTuple, ceil_mode: bool,
    count_include_pad: bool, divisor_override: int | None, nd: int, op: str,
) -> Tensor:
    x, unbatched = batched(input, nd, op)
    size, k, s, p, d, outs = _pool_args(x, kernel_size, stride, padding, 1, ceil_mode, nd, op)
    win = _windows(x, size, k, s, p, d, outs, 0.0)
    total = win.sum(list(range(2 + nd, 2 + 2 * nd)))
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError(f"[{op}] divisor_override must be non-zero")
        out = total * (1.0 / divisor_override)
        return out.squeeze(0) if unbatched else out
    # torch's divisor per output: the window clipped to the padded input
    # (count_include_pad) or to the input itself; a product over axes.
    divisor: Tensor | float = 1.0
    for i, (L, kk, ss, pp, o) in enumerate(zip(size, k, s, p, outs)):
        starts = [j * ss - pp for j in range(o)]
        if count_include_pad:
            counts = [min(a + kk, L + pp) - a for a in starts]
        else:
            counts = [min(a + kk, L) - max(a, 0) for a in starts]
        if len(set(counts)) == 1:
            divisor = divisor * float(counts[0])
            continue
        a = creation.iota(x.graph, o) * float(ss) - float(pp)
        hi = minimum(a + float(kk), float(L + pp if count_include_pad else L))
        c = hi - a if count_include_pad else hi - maximum(a, 0.0)
        shape = [Expr(1)] * nd
        shape[i] = Expr(o)
        divisor = c.reshape(shape) * divisor
    out = total / divisor
    return out.squeeze(0) if unbatched else out


def avg_pool1d(
    input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
    ceil_mode: bool = False, count_include_pad: bool = True,
) -> Tensor:
    """1-d average pooling like ``torch.nn.functional.avg_pool1d``."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1, "avg_pool1d")


def avg_pool2d(
    input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
    ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None,
) -> Tensor:
    """2-d average pooling like ``torch.nn.functional.avg_pool2d``: zero padding
    counted in the divisor unless ``count_include_pad=False``; ``ceil_mode``
    windows are divided by their size clipped to the padded input.

    >>> y = F.avg_pool2d(x, 2)
    """
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 2,
                     "avg_pool2d")


def avg_pool3d(
    input: Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
    ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None,
) -> Tensor:
    """3-d average pooling like ``torch.nn.functional.avg_pool3d``."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 3,
                     "avg_pool3d")


# ---------------------------------------------------------------- per-axis resampling


def _adaptive_avg_axis(x: Tensor, axis: int, o: int) -> Tensor:
    L = static(x._view.shape[axis], "adaptive_avg_pool", "a pooled dim")
    if o == L:
        return x
    shape = list(x._view.shape)
    if L % o == 0:  # equal bins: a view and a mean
        return x.reshape(shape[:axis] + [Expr(o), Expr(L // o)] + shape[axis + 1 :]).mean(axis + 1)
    # Bin i covers [floor(i*L/o), ceil((i+1)*L/o)): integer compares, exact.
    i = creation.iota(x.graph, o).unsqueeze(1)
    h = creation.iota(x.graph, L).unsqueeze(0)
    inside = (i * float(L)).lt((h + 1.0) * float(o)) * ((i + 1.0) * float(L)).gt(h * float(o))
    return contract_axis(x, axis, inside / inside.sum(1, keepdim=True))


def _adaptive_avg(input: Tensor, output_size: Union[int, None, Sequence[Optional[int]]], nd: int, op: str) -> Tensor:
    x, unbatched = batched(input, nd, op)
    size = static_shape(x, op, 2)
    if output_size is None or isinstance(output_size, int):
        want: list[Optional[int]] = [output_size] * nd
    else:
        want = list(output_size)
        if len(want) == 1:
            want = want * nd
    if len(want) != nd:
        raise ValueError(f"[{op}] output_size must have {nd} entries, got {output_size!r}")
    outs = [L if o is None else o for L, o in zip(size, want)]
    if min(outs) < 1:
        raise ValueError(f"[{op}] output_size must be >= 1, got {tuple(outs)}")
    out = x
    for i, o in enumerate(outs):
        out = _adaptive_avg_axis(out, 2 + i, o)
    return out.squeeze(0) if unbatched else out


OutSize = Union[int, None, Sequence[Optional[int]]]


def adaptive_avg_pool1d(input: Tensor, output_size: OutSize) -> Tensor:
    """Adaptive 1-d average pooling like ``torch.nn.functional.adaptive_avg_pool1d``."""
    return _adaptive_avg(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input: Tensor, output_size: OutSize) -> Tensor:
    """Adaptive 2-d average pooling like ``torch.nn.functional.adaptive_avg_pool2d``:
    any output size (None keeps a dim); bin i spans [floor(i*L/o), ceil((i+1)*L/o))
    as in torch. Equal bins are a view + mean; others an averaging matrix (so an
    inf in the input turns the other bins of its row/column NaN).

    >>> F.adaptive_avg_pool2d(x, (5, 7))
    """
    return _adaptive_avg(input, output_size, 2, "adaptive_avg_pool2d")


def adaptive_avg_pool3d(input: Tensor, output_size: OutSize) -> Tensor:
    """Adaptive 3-d average pooling like ``torch.nn.functional.adaptive_avg_pool3d``."""
    return _adaptive_avg(input, output_size, 3, "adaptive_avg_pool3d")

