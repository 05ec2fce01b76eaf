"""Tensors made from nothing (``arange``, ``full``, ``eye``, ``linspace``, ...)
and triangular parts (``tril``, ``triu``), from the primitives and views.

Integer sequences are exact: ``iota`` is a leaf valued by its element index
(0..n-1, exact in float32 below 2**24), for any symbolic length; kernels
compute it in place. Log-depth loops over a symbolic length (cumulative
sums) run a fixed number of levels (``MAX_LOG2``).

Functions without a tensor argument use the graph given as ``graph=`` or the
current one (``with cx:``); ``Graph`` has them as methods (``cx.arange(5)``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence, Union

import numpy as np

from luminal import _core
from luminal._core import Expr, ShapeError
from luminal._shape import DimLike, as_expr, as_shape, fmt_shape
from luminal.dtype import check_dtype, round_bf16

if TYPE_CHECKING:
    from luminal.graph import Graph
    from luminal.tensor import Tensor

Bound = Union[int, float, str, Expr]
Fill = Union[int, float, str, Expr]

MAX_LOG2 = 24
"""Log-depth loops over a symbolic length run this many levels, so symbolic
lengths up to 2**24 (the exact-integer range of float32) are supported."""

_EXACT = 1 << 24


def _graph(graph: Graph | None, op: str) -> Graph:
    if graph is not None:
        return graph
    from luminal.graph import current_graph

    return current_graph(op)


def typed(t: Tensor, dtype: str) -> Tensor:
    """``t`` relabelled with storage ``dtype`` (a new handle on the same node)."""
    out = t._with_view(t._view)
    out.dtype = dtype
    return out


def _size_args(op: str, size: tuple[Any, ...]) -> list[Expr]:
    """Accept both ``f(2, 3)`` and ``f((2, 3))`` like torch."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return as_shape(size[0], op)
    return as_shape(list(size), op)


def _fill_value(op: str, value: float, dtype: str) -> float:
    """``value`` rounded as storage ``dtype`` would hold it."""
    if dtype == "i32":
        if not (math.isfinite(value) and value == round(value)):
            raise ValueError(f"[{op}] an i32 tensor needs an integer value, got {value}")
        if abs(value) >= _EXACT:
            raise ValueError(f"[{op}] i32 values must be below 2**24 in magnitude to stay exact")
    elif dtype == "f16":
        return float(np.float16(value))
    elif dtype == "bf16":
        return float(round_bf16(np.array([value], dtype=np.float32))[0])
    return value


def filled(graph: Graph, dims: Sequence[Expr], value: float | Expr) -> Tensor:
    """A broadcast view of one constant: no data, any (symbolic) shape."""
    return graph.constant(value)._expand_to(list(dims))


def _slice_last(t: Tensor, start: Expr | int, stop: Expr | int) -> Tensor:
    return t._with_view(t._view.slice(t.ndim - 1, start, stop, 1))


def _pad_view(t: Tensor, axis: int, before: Expr | int, after: Expr | int) -> Tensor:
    """Zero padding as a view (``movement.pad`` without its constant checks)."""
    return t._with_view(t._view.pad(axis, before, after))


def _levels(n: Expr) -> int:
    """How many halvings bring ``n`` to 1: ceil(log2 n), or MAX_LOG2 when symbolic."""
    c = n.as_const()
    return MAX_LOG2 if c is None else max(0, (c - 1).bit_length())


def iota(graph: Graph, n: Expr | int) -> Tensor:
    """0, 1, ..., n-1 as float32 (exact below 2**24), shape ``(n,)``; ``n``
    may be symbolic. A leaf valued by its element index: no data, and a
    kernel reading it computes ``(float)index`` in place."""
    from luminal.tensor import Tensor

    size = as_expr(n, "arange") if isinstance(n, int) else n
    return Tensor(graph, graph._core.add_iota(size), _core.ShapeTracker.contiguous([size]))


# ---------------------------------------------------------------- sequences


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, Expr, str)) and not isinstance(v, bool)


def arange(
    start: Bound,
    end: Bound | None = None,
    step: int | float = 1,
    *,
    dtype: str | None = None,
    graph: Graph | None = None,
) -> Tensor:
    """Values from ``start`` (inclusive) to ``end`` (exclusive) by ``step``, like
    ``torch.arange``; one argument is ``end``. Integer arguments give exact
    values and dtype ``"i32"``; a bound may be a dim name or ``Expr``.

    >>> with cx:
    ...     pos = lm.arange("seq")          # 0..seq-1, any bound seq
    >>> cx.arange(0.0, 1.0, 0.25)           # float32 [0, .25, .5, .75]
    """
    g = _graph(graph, "arange")
    if end is None:
        start, end = 0, start
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        raise TypeError(f"[arange] step must be an int or float, got {type(step).__name__}")
    if step == 0:
        raise ValueError("[arange] step must be non-zero")
    lo = as_expr(start, "arange") if isinstance(start, str) else start
    hi = as_expr(end, "arange") if isinstance(end, str) else end
    symbolic = isinstance(lo, Expr) or isinstance(hi, Expr)
    n: Expr
    if all(_is_int(v) for v in (lo, hi, step)):
        out_dtype = "i32"
        assert isinstance(step, int)
        if symbolic:
            a = lo if isinstance(lo, Expr) else Expr(int(lo))
            b = hi if isinstance(hi, Expr) else Expr(int(hi))
            span = b - a if step > 0 else a - b
            n = ((span + (abs(step) - 1)) // abs(step)).max(0)
        else:
            assert isinstance(lo, int) and isinstance(hi, int)
            if max(abs(lo), abs(hi)) >= _EXACT:
                raise ValueError("[arange] integer bounds must be below 2**24 in magnitude")
            n = Expr(_count(lo, hi, step))
    else:
        if symbolic:
            raise TypeError("[arange] symbolic bounds need integer start, end and step")
        for v in (lo, hi):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"[arange] bounds must be numbers, got {type(v).__name__}")
        out_dtype = "f32"
        assert isinstance(lo, (int, float)) and isinstance(hi, (int, float))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"[arange] bounds must be finite, got {lo} and {hi}")
        n = Expr(_count(lo, hi, step))
    vals = iota(g, n)
    if step != 1:
        vals = vals * float(step)
    if isinstance(lo, Expr):
        vals = vals + g.constant(lo)
    elif lo != 0:
        vals = vals + float(lo)
    return typed(vals, check_dtype(dtype or out_dtype))


def _count(lo: float, hi: float, step: float) -> int:
    """torch's element count ceil((end - start) / step), checked like torch."""
    if (hi - lo) * step < 0:
        raise ValueError(
            f"[arange] upper bound and lower bound inconsistent with step sign "
            f"(start={lo}, end={hi}, step={step})"
        )
    if isinstance(lo, int) and isinstance(hi, int) and isinstance(step, int):
        n = -((lo - hi) // step)
    else:
        n = math.ceil((hi - lo) / step)
    if n > _EXACT:
        raise ValueError(f"[arange] {n} elements: at most 2**24 are supported")
    return n


def linspace(
    start: float,
    end: float,
    steps: int | str | Expr,
    *,
    dtype: str = "f32",
    graph: Graph | None = None,
) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive, computed
    as torch does (float32 step; the first half counts up from ``start``, the
    second half down from ``end``, so both ends are exact).

    >>> cx.linspace(0, 1, 5)   # [0, .25, .5, .75, 1]
    """
    g = _graph(graph, "linspace")
    for v in (start, end):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"[linspace] start and end must be numbers, got {type(v).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, (int, str, Expr)):
        raise TypeError(f"[linspace] steps must be an int or a dim, got {type(steps).__name__}")
    if isinstance(steps, int) and steps < 0:
        raise ValueError(f"[linspace] steps must be >= 0, got {steps}")
    n = as_expr(steps, "linspace")
    c = n.as_const()
    s0, s1 = np.float32(start), np.float32(end)
    if c is not None and c <= 1:
        return typed(filled(g, [n], float(s0)), check_dtype(dtype))
    idx = iota(g, n)
    step: float | Tensor
    if c is not None:
        step = float(np.float32(s1 - s0) / np.float32(c - 1))
        last: float | Tensor = float(c - 1)
        half: float | Tensor = float(c // 2)
    else:
        last = g.constant(n - 1)
        step = g.constant((n - 1).max(1)).reciprocal() * float(np.float32(s1 - s0))
        half = g.constant((n // 2).max(1))  # steps == 1 takes the lower branch: start
    up = idx * step + float(s0)
    down = float(s1) - (last - idx) * step
    lower = idx < half
    return typed(up * lower + down * (1.0 - lower), check_dtype(dtype))


# ---------------------------------------------------------------- filled tensors


def full(
    size: DimLike | Sequence[DimLike],
    fill_value: Fill,
    *,
    dtype: str | None = None,
    graph: Graph | None = None,
) -> Tensor:
    """A tensor of ``size`` holding ``fill_value`` everywhere (a broadcast view of
    one constant). An int fill gives dtype ``"i32"`` like torch; a dim name or
    ``Expr`` fills with its bound value.

    >>> cx.full((2, "seq"), 0.5)
    """
    g = _graph(graph, "full")
    dims = as_shape(size, "full")
    if isinstance(fill_value, (str, Expr)):
        value: float | Expr = as_expr(fill_value, "full")
        default = "i32"
    elif isinstance(fill_value, bool):
        value, default = float(fill_value), "f32"
    elif isinstance(fill_value, (int, float)):
        value = float(fill_value)
        default = "i32" if isinstance(fill_value, int) else "f32"
    else:
        raise TypeError(f"[full] fill_value must be a number, got {type(fill_value).__name__}")
    dt = check_dtype(dtype or default)
    if isinstance(value, float):
        value = _fill_value("full", value, dt)
    return typed(filled(g, dims, value), dt)


def zeros(*size: Any, dtype: str = "f32", graph: Graph | None = None) -> Tensor:
    """Zeros of the given shape: ``zeros(2, 3)`` or ``zeros((2, "seq"))``."""
    return full(_size_args("zeros", size), 0.0, dtype=dtype, graph=_graph(graph, "zeros"))


def ones(*size: Any, dtype: str = "f32", graph: Graph | None = None) -> Tensor:
    """Ones of the given shape: ``ones(2, 3)`` or ``ones((2, "seq"))``."""
    return full(_size_args("ones", size), 1.0, dtype=dtype, graph=_graph(graph, "ones"))


def full_like(x: Tensor, fill_value: Fill, *, dtype: str | None = None) -> Tensor:
    """``fill_value`` in ``x``'s shape, graph and (by default) dtype."""
    return full(x._view.shape, fill_value, dtype=dtype or x.dtype, graph=x.graph)


def zeros_like(x: Tensor, *, dtype: str | None = None) -> Tensor:
    """Zeros in ``x``'s shape, graph and (by default) dtype."""
    return full_like(x, 0.0, dtype=dtype)


def ones_like(x: Tensor, *, dtype: str | None = None) -> Tensor:
    """Ones in ``x``'s shape, graph and (by default) dtype."""
    return full_like(x, 1.0, dtype=dtype)


def eye(
    n: DimLike, m: DimLike | None = None, *, dtype: str = "f32", graph: Graph | None = None
) -> Tensor:
    """The ``n`` x ``m`` identity (``m`` defaults to ``n``); dims may be symbolic."""
    g = _graph(graph, "eye")
    rows = as_expr(n, "eye")
    cols = rows if m is None else as_expr(m, "eye")
    r = iota(g, rows).unsqueeze(1)
    c = iota(g, cols).unsqueeze(0)
    return typed(1.0 - r.lt(c) - c.lt(r), check_dtype(dtype))


# ---------------------------------------------------------------- tril / triu
#
# Masking by multiplication would turn inf * 0 into NaN and keep NaN, so the
# triangle is cut with views only: skew the matrix so each diagonal becomes a
# column, crop (pad reads 0), and skew back. Each skew is one Contiguous copy.


def _skew_left(y: Tensor, n: Expr) -> Tensor:
    """(..., n, W) -> (..., n, W) with row i shifted left by i:
    out[i][c] = y[i][c + i], 0 past the end."""
    lead, w = y._view.shape[:-2], y._view.shape[-1]
    p = _pad_view(_pad_view(y, y.ndim - 1, 0, n), y.ndim - 2, 0, 1)  # (n+1, W+n)
    flat = _slice_last(p.reshape(lead + [(n + 1) * (w + n)]), 0, n * (w + n + 1))
    return _slice_last(flat.reshape(lead + [n, w + n + 1]), 0, w)


def _skew_right(z: Tensor, n: Expr) -> Tensor:
    """(..., n, W) -> (..., n, W+n) with row i shifted right by i:
    out[i][j] = z[i][j - i], 0 outside."""
    lead, w = z._view.shape[:-2], z._view.shape[-1]
    p = _pad_view(z, z.ndim - 1, 0, n + 1)  # (n, W+n+1)
    flat = _slice_last(p.reshape(lead + [n * (w + n + 1)]), 0, n * (w + n))
    return flat.reshape(lead + [n, w + n])


def _triangle(x: Tensor, diagonal: int, lower: bool, op: str) -> Tensor:
    if x.ndim < 2:
        raise ShapeError(f"[{op}] needs at least 2 dims, got shape {fmt_shape(x.shape)}")
    if isinstance(diagonal, bool) or not isinstance(diagonal, int):
        raise TypeError(f"[{op}] diagonal must be an int, got {type(diagonal).__name__}")
    n, m = x._view.shape[-2], x._view.shape[-1]
    cn, cm = n.as_const(), m.as_const()
    if cn is not None and cm is not None:  # whole or empty triangles need no work
        keep_all = diagonal >= cm - 1 if lower else diagonal <= 1 - cn
        keep_none = diagonal < 1 - cn if lower else diagonal > cm - 1
        if keep_all or cn == 0 or cm == 0:
            return x._with_view(x._view)
        if keep_none:
            return zeros_like(x)
    w = n + m
    # Column c of the skewed matrix holds diagonal c - n (j - i = c - n).
    z = _skew_left(_pad_view(x, x.ndim - 1, n, 0), n)
    cut = n + (diagonal + 1 if lower else diagonal)
    cut = cut.max(0).min(w)
    if lower:
        z = _pad_view(_slice_last(z, 0, cut), z.ndim - 1, 0, w - cut)
    else:
        z = _pad_view(_slice_last(z, cut, w), z.ndim - 1, cut, 0)
    return _slice_last(_skew_right(z, n), n, n + m)


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (j - i <= diagonal), zeros above;
    exact for inf and NaN (cut with views, not a mask product). ``lm.tril(x)``"""
    return _triangle(x, diagonal, True, "tril")


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (j - i >= diagonal), zeros below.
    ``lm.triu(x, 1)``"""
    return _triangle(x, diagonal, False, "triu")
