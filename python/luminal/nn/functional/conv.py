"""Convolutions as im2col through views plus one broadcast multiply + SumReduce.

The input is padded (a view), cut into sliding windows per spatial axis
(``_utils.unfold``: a pure view for non-overlapping windows, else one
Contiguous copy per axis), and multiplied against the weight with the taps and
input channels of each group merged into one reduced axis, so a backend sees a
plain GEMM. No Python loop runs over output pixels or taps.

``conv_transpose*`` is the equivalent direct convolution: zeros inserted
between input elements (``stride - 1`` per gap), padded by
``dilation * (k - 1) - padding`` (``output_padding`` more at the end) and
convolved with the spatially flipped, in/out-swapped kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, Union

from luminal._core import Expr, ShapeError
from luminal._shape import fmt_shape, product
from luminal.nn.functional._utils import (
    IntOrTuple,
    batched,
    conv_out_size,
    ntuple,
    pad_spatial,
    static_shape,
    unfold_nd,
    windows_last,
)

if TYPE_CHECKING:
    from luminal.tensor import Tensor

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]

Padding = Union[str, int, Sequence[int]]


def _core(xp: Tensor, wg: Tensor, stride: Sequence[int], dilation: Sequence[int]) -> Tensor:
    """Valid convolution of the padded (N, C, *L) input with the grouped weight
    (G, Og, Cg, *k): (N, G*Og, *out)."""
    nd = len(stride)
    g, og, cg = (int(d.as_const() or 0) for d in wg._view.shape[:3])
    k = [int(d.as_const() or 0) for d in wg._view.shape[3:]]
    n = xp._view.shape[0]
    win = unfold_nd(xp, 2, k, stride, dilation)  # (N, C, O1, k1, ..., Ond, knd)
    win = windows_last(win, 2, nd)  # (N, C, O1..Ond, k1..knd)
    outs = list(win._view.shape[2 : 2 + nd])
    win = win.reshape([n, Expr(g), Expr(cg)] + outs + [Expr(kk) for kk in k])
    # (N, G, 1, O..., Cg, k...) * (1, G, Og, 1..., Cg, k...)
    win = win.permute([0, 1] + list(range(3, 3 + nd)) + [2] + list(range(3 + nd, 3 + 2 * nd)))
    win = win.unsqueeze(2)
    w = wg.unsqueeze(0)
    for _ in range(nd):
        w = w.unsqueeze(3)
    prod = win * w
    lead = prod._view.shape[: 3 + nd]
    total = product(prod._view.shape[3 + nd :])
    out = prod.reshape(lead + [total]).sum(-1)  # one SumReduce over Cg * taps
    return out.reshape([n, Expr(g * og)] + outs)


def _add_bias(out: Tensor, bias: Tensor | None, nd: int, op: str) -> Tensor:
    if bias is None:
        return out
    if bias.ndim != 1:
        raise ShapeError(f"[{op}] bias must be 1-d, got shape {fmt_shape(bias.shape)}")
    return out + bias.reshape([bias._view.shape[0]] + [Expr(1)] * nd)


def _convnd(
    input: Tensor, weight: Tensor, bias: Tensor | None, stride: IntOrTuple, padding: Padding,
    dilation: IntOrTuple, groups: int, nd: int, op: str,
) -> Tensor:
    x, unbatched = batched(input, nd, op)
    if weight.ndim != nd + 2:
        raise ShapeError(f"[{op}] weight must be {nd + 2}-d, got shape {fmt_shape(weight.shape)}")
    c, *size = static_shape(x, op, 1)
    o, cg, *k = static_shape(weight, op)
    if groups < 1 or c % groups or o % groups or cg * groups != c:
        raise ShapeError(
            f"[{op}] input {fmt_shape(x.shape)} with groups={groups} needs a weight of "
            f"shape (out, {c // max(groups, 1)}, ...) with out divisible by groups; got "
            f"{fmt_shape(weight.shape)}"
        )
    s = ntuple(stride, nd, "stride", op)
    d = ntuple(dilation, nd, "dilation", op)
    if min(s) < 1 or min(d) < 1:
        raise ValueError(f"[{op}] stride and dilation must be >= 1, got {s} and {d}")
    pads: list[tuple[int, int]]
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * nd
        elif padding == "same":
            if any(v != 1 for v in s):
                raise ValueError(f"[{op}] padding='same' is not supported for strided convolutions")
            pads = [(dd * (kk - 1) // 2, dd * (kk - 1) - dd * (kk - 1) // 2) for kk, dd in zip(k, d)]
        else:
            raise ValueError(f"[{op}] padding must be 'valid', 'same' or ints, got {padding!r}")
    else:
        p = ntuple(padding, nd, "padding", op)
        if min(p) < 0:
            raise ValueError(f"[{op}] padding must be >= 0, got {p}")
        pads = [(v, v) for v in p]
    for L, kk, ss, dd, (lo, hi) in zip(size, k, s, d, pads):
        if conv_out_size(L, kk, ss, lo, hi, dd) < 1:
            raise ShapeError(
                f"[{op}] input {fmt_shape(x.shape)} (padded by {pads}) is smaller than the "
                f"kernel {tuple(k)} with dilation {d}"
            )
    xp = pad_spatial(x, pads)
    wg = weight.reshape([groups, o // groups, cg] + k)
    out = _add_bias(_core(xp, wg, s, d), bias, nd, op)
    return out.squeeze(0) if unbatched else out


def conv1d(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrTuple = 1,
    padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
) -> Tensor:
    """1-d convolution (cross-correlation) like ``torch.nn.functional.conv1d``:
    input (N, C, L) or (C, L), weight (out, C/groups, k); padding may be
    "valid" or "same". ``F.conv1d(x, w, b, stride=2, padding=1)``"""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrTuple = 1,
    padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
) -> Tensor:
    """2-d convolution like ``torch.nn.functional.conv2d``: input (N, C, H, W) or
    (C, H, W), weight (out, C/groups, kh, kw); stride, padding (ints, "valid",
    "same"), dilation, groups. ``F.conv2d(x, w, padding="same", groups=2)``"""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv3d(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrTuple = 1,
    padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
) -> Tensor:
    """3-d convolution like ``torch.nn.functional.conv3d``."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 3, "conv3d")


def _zero_insert(x: Tensor, axis: int, s: int) -> Tensor:
    """``s - 1`` zeros between neighbours along ``axis`` (views; the merge copies)."""
    n = int(x._view.shape[axis].as_const() or 0)
    if s == 1 or n <= 1:
        return x
    y = x.unsqueeze(axis + 1)
    y = y._with_view(y._view.pad(axis + 1, 0, s - 1))
    shape = list(x._view.shape)
    y = y.reshape(shape[:axis] + [Expr(n * s)] + shape[axis + 1 :])
    return y._with_view(y._view.slice(axis, 0, (n - 1) * s + 1, 1))


def _conv_transposend(
    input: Tensor, weight: Tensor, bias: Tensor | None, stride: IntOrTuple, padding: Padding,
    output_padding: IntOrTuple, groups: int, dilation: IntOrTuple, nd: int, op: str,
) -> Tensor:
    if isinstance(padding, str):
        raise ValueError(f"[{op}] padding must be ints for a transposed convolution, got {padding!r}")
    x, unbatched = batched(input, nd, op)
    if weight.ndim != nd + 2:
        raise ShapeError(f"[{op}] weight must be {nd + 2}-d, got shape {fmt_shape(weight.shape)}")
    c, *size = static_shape(x, op, 1)
    cin, og, *k = static_shape(weight, op)
    if groups < 1 or cin != c or c % groups:
        raise ShapeError(
            f"[{op}] input {fmt_shape(x.shape)} with groups={groups} needs a weight of "
            f"shape ({c}, out/groups, ...), got {fmt_shape(weight.shape)}"
        )
    s = ntuple(stride, nd, "stride", op)
    p = ntuple(padding, nd, "padding", op)
    op_ = ntuple(output_padding, nd, "output_padding", op)
    d = ntuple(dilation, nd, "dilation", op)
    if min(s) < 1 or min(d) < 1 or min(p) < 0 or min(op_) < 0:
        raise ValueError(f"[{op}] stride/dilation must be >= 1 and padding >= 0")
    for oo, ss, dd in zip(op_, s, d):
        if oo >= max(ss, dd):
            raise ValueError(
                f"[{op}] output_padding {op_} must be smaller than either stride {s} or dilation {d}"
            )
    for L, kk, ss, pp, oo, dd in zip(size, k, s, p, op_, d):
        if (L - 1) * ss - 2 * pp + dd * (kk - 1) + oo + 1 < 1:
            raise ShapeError(f"[{op}] the output of input {fmt_shape(x.shape)} would be empty")
    y = x
    for i, ss in enumerate(s):
        y = _zero_insert(y, 2 + i, ss)
    pads = [(dd * (kk - 1) - pp, dd * (kk - 1) - pp + oo) for kk, pp, oo, dd in zip(k, p, op_, d)]
    y = pad_spatial(y, pads)
    # (Cin, Og, *k) -> (G, Og, Cin/G, *k), flipped in space.
    cg = c // groups
    w = weight.reshape([groups, cg, og] + k).transpose(1, 2)
    v = w._view
    for i in range(nd):
        v = v.flip(3 + i)
    out = _core(y, w._with_view(v), [1] * nd, d)
    out = _add_bias(out, bias, nd, op)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrTuple = 1,
    padding: Padding = 0, output_padding: IntOrTuple = 0, groups: int = 1, dilation: IntOrTuple = 1,
) -> Tensor:
    """Transposed 1-d convolution like ``torch.nn.functional.conv_transpose1d``:
    weight (C, out/groups, k)."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 1,
                             "conv_transpose1d")


def conv_transpose2d(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrTuple = 1,
    padding: Padding = 0, output_padding: IntOrTuple = 0, groups: int = 1, dilation: IntOrTuple = 1,
) -> Tensor:
    """Transposed 2-d convolution like ``torch.nn.functional.conv_transpose2d``:
    input (N, C, H, W), weight (C, out/groups, kh, kw); output size
    ``(H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1``."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 2,
                             "conv_transpose2d")


def conv_transpose3d(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrTuple = 1,
    padding: Padding = 0, output_padding: IntOrTuple = 0, groups: int = 1, dilation: IntOrTuple = 1,
) -> Tensor:
    """Transposed 3-d convolution like ``torch.nn.functional.conv_transpose3d``."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 3,
                             "conv_transpose3d")
