"""``interpolate``: resizing one spatial axis at a time.

Every resized axis is a product with an (out, in) matrix built in the graph
from ``iota`` with torch's float32 index arithmetic (so the chosen source
pixels and weights match torch's CPU kernels): a 0/1 selection for the nearest
modes, two weights per row for the linear modes, bin averages for "area".
Nearest resizing by an integer factor needs no matrix: upsampling is an
expand (exact for inf and NaN too), downsampling a strided slice.

A matrix contraction multiplies every input by a weight, so an inf or NaN in
the input also makes NaN the outputs of its row that got weight 0 (torch
returns them untouched); nearest resizing by integer factors is exact.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional, Sequence, Union

import numpy as np

from luminal._core import Expr, ShapeError
from luminal._shape import fmt_shape
from luminal.hl_ops import creation
from luminal.hl_ops.binary import minimum
from luminal.hl_ops.elementwise import clamp, floor
from luminal.nn.functional._utils import contract_axis, static, static_shape

if TYPE_CHECKING:
    from luminal.tensor import Tensor

__all__ = ["interpolate", "upsample"]

Size = Union[int, Sequence[int], None]
Scale = Union[float, Sequence[float], None]

_SPATIAL = {"linear": 1, "bilinear": 2, "trilinear": 3}


def _nearest_axis(x: Tensor, axis: int, o: int, scale: float | None, exact: bool) -> Tensor:
    """torch's nearest / nearest-exact source index along ``axis``."""
    L = static(x._view.shape[axis], "interpolate", "an input dim")
    f32 = np.float32
    if scale is not None and scale > 0:
        sc = f32(1.0 / scale)
    else:
        sc = f32(L) / f32(o)
    dst = np.arange(o, dtype=np.float32)
    if exact:
        src = np.minimum(np.floor((dst + f32(0.5)) * sc), L - 1).astype(np.int64)
    elif o == L:
        src = np.arange(o)
    elif o == 2 * L:
        src = np.arange(o) >> 1
    else:
        src = np.minimum(np.floor(dst * sc), L - 1).astype(np.int64)
    shape = list(x._view.shape)
    if o == L and np.array_equal(src, np.arange(o)):
        return x
    if o % L == 0 and np.array_equal(src, np.arange(o) // (o // L)):  # repeat each element
        r = o // L
        y = x.unsqueeze(axis + 1)._expand_to(shape[: axis + 1] + [Expr(r)] + shape[axis + 1 :])
        return y.reshape(shape[:axis] + [Expr(o)] + shape[axis + 1 :])
    step = int(src[1] - src[0]) if o > 1 else 1
    if step >= 1 and np.array_equal(src, src[0] + np.arange(o) * step):  # a strided slice
        return x._with_view(x._view.slice(axis, int(src[0]), int(src[0]) + (o - 1) * step + 1, step))
    # General ratio: a 0/1 selection matrix from the same float32 arithmetic.
    d = creation.iota(x.graph, o)
    pos = (d + 0.5) * float(sc) if exact else d * float(sc)
    s = minimum(floor(pos), float(L - 1))
    m = s.unsqueeze(1).eq(creation.iota(x.graph, L).unsqueeze(0))
    return contract_axis(x, axis, m)


def _linear_axis(x: Tensor, axis: int, o: int, scale: float | None, align_corners: bool) -> Tensor:
    """torch's linear interpolation weights along ``axis`` (upsample_linear1d's)."""
    L = static(x._view.shape[axis], "interpolate", "an input dim")
    f32 = np.float32
    if align_corners:
        sc = f32(L - 1) / f32(o - 1) if o > 1 else f32(0.0)
    elif scale is not None and scale > 0:
        sc = f32(1.0 / scale)
    else:
        sc = f32(L) / f32(o)
    if o == L and (align_corners or sc == 1.0):
        return x
    d = creation.iota(x.graph, o)
    if align_corners:
        src = d * float(sc)
    else:
        src = clamp((d + 0.5) * float(sc) - 0.5, min=0.0)
    i0 = minimum(floor(src), float(L - 1))
    lam = clamp(src - i0, 0.0, 1.0)
    i1 = i0 + (i0 < float(L - 1))
    cols = creation.iota(x.graph, L).unsqueeze(0)
    w = cols.eq(i0.unsqueeze(1)) * (1.0 - lam).unsqueeze(1) + cols.eq(i1.unsqueeze(1)) * lam.unsqueeze(1)
    return contract_axis(x, axis, w)


def _area_axis(x: Tensor, axis: int, o: int) -> Tensor:
    from luminal.nn.functional.pooling import _adaptive_avg_axis

    return _adaptive_avg_axis(x, axis, o)


def interpolate(
    input: Tensor,
    size: Size = None,
    scale_factor: Scale = None,
    mode: str = "nearest",
    align_corners: Optional[bool] = None,
    recompute_scale_factor: Optional[bool] = None,
    antialias: bool = False,
) -> Tensor:
    """Resize like ``torch.nn.functional.interpolate``: modes "nearest",
    "nearest-exact", "linear" (3-d input), "bilinear" (4-d), "trilinear" (5-d)
    and "area"; ``size`` or ``scale_factor`` (with torch's
    ``recompute_scale_factor`` rule); ``align_corners`` for the linear modes.
    "bicubic" and ``antialias=True`` are not implemented.

    >>> F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    """
    nd = input.ndim - 2
    if nd < 1:
        raise ShapeError(f"[interpolate] expected a 3-d, 4-d or 5-d input, got {fmt_shape(input.shape)}")
    if mode in ("bicubic",) or antialias:
        raise NotImplementedError(f"[interpolate] mode={mode!r} with antialias={antialias} is not implemented")
    if mode not in ("nearest", "nearest-exact", "area", "linear", "bilinear", "trilinear"):
        raise ValueError(f"[interpolate] unknown mode {mode!r}")
    linear = mode in _SPATIAL
    if linear and _SPATIAL[mode] != nd:
        raise ShapeError(f"[interpolate] mode {mode!r} needs a {_SPATIAL[mode] + 2}-d input, "
                         f"got shape {fmt_shape(input.shape)}")
    if align_corners is not None and not linear:
        raise ValueError("[interpolate] align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    sizes = static_shape(input, "interpolate", 2)
    if (size is None) == (scale_factor is None):
        raise ValueError("[interpolate] exactly one of size or scale_factor must be given")
    scales: list[Optional[float]]
    if size is not None:
        outs = [size] * nd if isinstance(size, int) else list(size)
        if len(outs) != nd:
            raise ValueError(f"[interpolate] size {size!r} must have {nd} entries for input {fmt_shape(input.shape)}")
        scales = [None] * nd
    else:
        assert scale_factor is not None
        fs = [float(scale_factor)] * nd if isinstance(scale_factor, (int, float)) else [float(v) for v in scale_factor]
        if len(fs) != nd:
            raise ValueError(f"[interpolate] scale_factor {scale_factor!r} must have {nd} entries")
        outs = [int(math.floor(float(L) * f)) for L, f in zip(sizes, fs)]
        scales = [None] * nd if recompute_scale_factor else list(fs)
    if min(outs) < 1:
        raise ValueError(f"[interpolate] output size {tuple(outs)} must be positive")
    out = input
    for i, (o, sc) in enumerate(zip(outs, scales)):
        axis = 2 + i
        if mode == "area":
            out = _area_axis(out, axis, o)
        elif linear:
            out = _linear_axis(out, axis, o, sc, bool(align_corners))
        else:
            out = _nearest_axis(out, axis, o, sc, mode == "nearest-exact")
    return out


def upsample(
    input: Tensor, size: Size = None, scale_factor: Scale = None, mode: str = "nearest",
    align_corners: Optional[bool] = None,
) -> Tensor:
    """Deprecated torch alias of ``interpolate``."""
    return interpolate(input, size, scale_factor, mode, align_corners)
