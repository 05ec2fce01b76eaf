"""Reductions from SumReduce and MaxReduce, and the ops built on them: min/max
with indices, prod, var/std, logsumexp, softmax, cumulative sums and products,
norms, all/any.

Names here shadow builtins (``sum``, ``max``, ``min``, ``all``, ``any``): the
module uses ``builtins.`` for Python's own.
"""

from __future__ import annotations

import builtins
import math
from typing import TYPE_CHECKING, NamedTuple, Sequence, Union, overload

from luminal._core import Expr
from luminal._shape import normalize_dim, product
from luminal.hl_ops import creation
from luminal.hl_ops.binary import maximum, minimum, not_nan, select
from luminal.hl_ops.movement import _from_last, _to_last

if TYPE_CHECKING:
    from luminal.tensor import Tensor

DimArg = Union[int, Sequence[int], None]
INF = float("inf")
TRIANGLE_MAX = 64
"""cumsum over at most this many (constant) elements sums a triangular window
in one SumReduce; longer or symbolic dims use a log-depth scan."""


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

def mean(x: Tensor, dim: DimArg = None, keepdim: bool = False) -> Tensor:
    """Arithmetic mean over ``dim``; dims may be symbolic. ``x.mean(-1)``"""
    dims = reduce_dims(x, dim, "mean")
    count = product([x._view.shape[d] for d in dims])
    total = x.sum(dims, keepdim)
    n = count.as_const()
    if n is None:
        return total * x.graph.constant(count).reciprocal()
    return total * (1.0 / n if n else float("inf"))


# ---------------------------------------------------------------- helpers


def _count(x: Tensor, n: Expr) -> float | Tensor:
    """The number ``n`` as a float, or a run-time constant when symbolic."""
    c = n.as_const()
    return float(c) if c is not None else x.graph.constant(n)


def _drop_dims(x: Tensor, dims: Sequence[int]) -> Tensor:
    """Reshape away the (size-1) ``dims`` of a keepdim result."""
    return x.reshape([s for i, s in enumerate(x._view.shape) if i not in dims])


def _edge_fill(t: Tensor, before: Expr | int, after: Expr | int, fill: float, size: Expr | None) -> Tensor:
    """``t`` padded on its last dim with ``fill`` (then cut to its first ``size``
    elements when given): a view for fill 0, else the view plus a 0/1 mask of
    the padding, computed only over the kept elements."""
    ax = t.ndim - 1

    def view(u: Tensor) -> Tensor:
        v = u._view.pad(ax, before, after)
        return u._with_view(v if size is None else v.slice(ax, 0, size, 1))

    out = view(t)
    if fill == 0.0:
        return out
    inside = view(creation.filled(t.graph, t._view.shape, 1.0))
    return out + (1.0 - inside) * fill if fill != 1.0 else out + (1.0 - inside)


def _scan(x: Tensor, combine: str, fill: float) -> Tensor:
    """Inclusive scan along the last dim, Hillis-Steele: log2(n) steps of
    ``y = y (op) shift(y, 2**k)``; the shift is a padded view. Symbolic
    lengths run ``MAX_LOG2`` steps (lengths up to 2**24)."""
    n = x._view.shape[-1]
    y = x
    for k in range(creation._levels(n)):
        shifted = _edge_fill(y, 1 << k, 0, fill, n)
        y = y + shifted if combine == "add" else y * shifted
    return y


def _prefix_windows(x: Tensor) -> Tensor:
    """(..., n) -> (..., n, n) with row i = [0]*(n-1-i) + x[:i+1] (tinygrad's
    pool trick: pad, repeat, flatten, re-cut one longer). One copy, no mask
    product, so inf and NaN stay exact."""
    lead, n = x._view.shape[:-1], x._view.shape[-1]
    p = x.pad((n - 1, 1))  # 2n
    rep = p.unsqueeze(-2)._expand_to(lead + [n + 1, n * 2])
    flat = rep.reshape(lead + [(n + 1) * (n * 2)])
    flat = flat._with_view(flat._view.slice(flat.ndim - 1, 0, n * (n * 2 + 1), 1))
    win = flat.reshape(lead + [n, n * 2 + 1])
    return win._with_view(win._view.slice(win.ndim - 1, 0, n, 1))


def _prod_last(x: Tensor) -> Tensor:
    """Product over the last dim by pairwise halving: log2(n) levels of
    ``even * odd`` (strided views; an odd length gets a 1 appended)."""
    ax = x.ndim - 1
    n = x._view.shape[ax]
    c = n.as_const()
    if c == 0:
        return creation.filled(x.graph, x._view.shape[:-1], 1.0)
    y = x
    if c is None:  # a leading 1, so an empty dim still leaves one element
        y = _edge_fill(y, 1, 0, 1.0, None)
    for _ in range(creation._levels(y._view.shape[ax])):
        m = y._view.shape[ax]
        even = y._with_view(y._view.slice(ax, 0, m, 2))
        odd = y._with_view(y._view.slice(ax, 1, m, 2))
        gap = even._view.shape[ax] - odd._view.shape[ax]
        if gap.as_const() != 0:
            odd = _edge_fill(odd, 0, gap, 1.0, None)
        y = even * odd
    if c is None:
        return y.sum(-1)  # one element left (for symbolic lengths up to 2**24)
    return y.reshape(y._view.shape[:-1])


# ---------------------------------------------------------------- min / max


class ValuesIndices(NamedTuple):
    """``(values, indices)`` of ``max(dim)`` / ``min(dim)``, like torch's."""

    values: Tensor
    indices: Tensor


def amin(x: Tensor, dim: DimArg = None, keepdim: bool = False) -> Tensor:
    """Minimum over ``dim``; NaN if any reduced element is NaN. ``x.amin(-1)``"""
    return -((-x).amax(dim, keepdim))


def _first_max(x: Tensor, dim: int | None, keepdim: bool, op: str) -> Tensor:
    """Index of the first maximum (first NaN if any, like torch) as "i32"."""
    if dim is None:
        flat = x.reshape(-1) if x.ndim else x.reshape(1)
        out = _first_max(flat, 0, False, op)
        return out.reshape([1] * x.ndim) if keepdim else out
    d = normalize_dim(dim, x.ndim, op)
    if x.ndim == 0:
        return creation.typed(creation.filled(x.graph, [], 0.0), "i32")
    n = x._view.shape[d]
    if n.as_const() == 0:
        raise ValueError(f"[{op}] cannot take the {op} of an empty dim {dim}")
    m = x.amax(d, keepdim=True)
    # Hits: elements equal to the max, or NaN elements when the max is NaN.
    hit = (1.0 - x.lt(m)) * not_nan(m) + (1.0 - not_nan(x))
    shape = [Expr(1)] * x.ndim
    shape[d] = n
    count = _count(x, n)
    reverse = count - creation.iota(x.graph, n).reshape(shape)  # n - i: first index scores highest
    out = count - (hit * reverse).amax(d, keepdim)
    return creation.typed(out, "i32")


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the first maximum over ``dim`` (all elements, flattened, when None),
    dtype "i32"; NaN counts as the maximum, like torch. ``x.argmax(-1)``"""
    return _first_max(x, dim, keepdim, "argmax")


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the first minimum over ``dim``, dtype "i32". ``x.argmin(-1)``"""
    return _first_max(-x, dim, keepdim, "argmin")


@overload
def max(x: Tensor, dim: None = None, keepdim: bool = False) -> Tensor: ...
@overload
def max(x: Tensor, dim: int, keepdim: bool = False) -> ValuesIndices: ...
@overload
def max(x: Tensor, dim: Tensor) -> Tensor: ...
def max(
    x: Tensor, dim: int | Tensor | None = None, keepdim: bool = False
) -> Tensor | ValuesIndices:
    """Like ``torch.max``: ``x.max()`` is the maximum of all elements;
    ``x.max(dim)`` is ``(values, indices)`` (first index of the max, NaN wins);
    ``x.max(other)`` is the elementwise ``maximum``."""
    from luminal.tensor import Tensor

    if isinstance(dim, Tensor):
        return maximum(x, dim)
    if dim is None:
        return x.amax(None, keepdim)
    return ValuesIndices(x.amax(dim, keepdim), argmax(x, dim, keepdim))


@overload
def min(x: Tensor, dim: None = None, keepdim: bool = False) -> Tensor: ...
@overload
def min(x: Tensor, dim: int, keepdim: bool = False) -> ValuesIndices: ...
@overload
def min(x: Tensor, dim: Tensor) -> Tensor: ...
def min(
    x: Tensor, dim: int | Tensor | None = None, keepdim: bool = False
) -> Tensor | ValuesIndices:
    """Like ``torch.min``: ``x.min()``, ``x.min(dim)`` -> ``(values, indices)``,
    or ``x.min(other)`` (elementwise ``minimum``)."""
    from luminal.tensor import Tensor

    if isinstance(dim, Tensor):
        return minimum(x, dim)
    if dim is None:
        return amin(x, None, keepdim)
    return ValuesIndices(amin(x, dim, keepdim), argmin(x, dim, keepdim))


# ---------------------------------------------------------------- prod


def prod(x: Tensor, dim: DimArg = None, keepdim: bool = False) -> Tensor:
    """Product over ``dim`` (all when None) by pairwise multiplication in log2(n)
    levels: exact signs and zeros, inf * 0 = NaN, rounding like a tree sum.
    ``x.prod(-1)``"""
    dims = reduce_dims(x, dim, "prod")
    out = x
    for d in reversed(dims):  # highest first, so lower indices stay put
        out = _prod_last(_to_last(out, d))
    if keepdim:
        for d in dims:
            out = out.unsqueeze(d)
    return out


# ---------------------------------------------------------------- statistics


def var(x: Tensor, dim: DimArg = None, correction: float = 1, keepdim: bool = False) -> Tensor:
    """Variance over ``dim`` with ``correction`` (1: unbiased), two-pass: the mean
    first, then the mean squared deviation. ``x.var(-1, correction=0)``"""
    dims = reduce_dims(x, dim, "var")
    dev = x - x.mean(dims, keepdim=True)
    ss = (dev * dev).sum(dims, keepdim)
    n = product([x._view.shape[d] for d in dims])
    c = n.as_const()
    if c is not None:
        dof = builtins.max(0.0, c - correction)
        return ss * (1.0 / dof if dof else INF)  # 0 / 0 = NaN, like torch
    return ss / maximum(x.graph.constant(n) - float(correction), 0.0)


def std(x: Tensor, dim: DimArg = None, correction: float = 1, keepdim: bool = False) -> Tensor:
    """Standard deviation: ``sqrt(var)``. ``x.std(-1)``"""
    return var(x, dim, correction, keepdim).sqrt()


def logsumexp(x: Tensor, dim: DimArg = None, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(x)))`` over ``dim``, stable: the max is taken out first.
    Rows of -inf give -inf, a +inf gives inf, NaN gives NaN (as torch)."""
    dims = reduce_dims(x, dim, "logsumexp")
    m = x.amax(dims, keepdim=True)
    shift = select((m < INF) * (m > -INF), m)  # the max where finite, else 0
    out = (x - shift).exp().sum(dims, keepdim=True).log() + shift
    return out if keepdim else _drop_dims(out, dims)


def softmax(x: Tensor, dim: int) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim``, stable (max subtracted). A row of
    all -inf gives NaN, as torch. ``x.softmax(-1)``"""
    d = normalize_dim(dim, x.ndim, "softmax")
    e = (x - x.amax(d, keepdim=True)).exp()
    return e / e.sum(d, keepdim=True)


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """``x - logsumexp(x)`` along ``dim``, stable. ``x.log_softmax(-1)``"""
    d = normalize_dim(dim, x.ndim, "log_softmax")
    z = x - x.amax(d, keepdim=True)
    return z - z.exp().sum(d, keepdim=True).log()


# ---------------------------------------------------------------- cumulative


def cumsum(x: Tensor, dim: int) -> Tensor:
    """Running sum along ``dim``. Short (<= 64) dims sum a triangular window in
    one SumReduce; longer or symbolic dims use a log-depth scan. ``x.cumsum(-1)``"""
    d = normalize_dim(dim, x.ndim, "cumsum")
    if x.ndim == 0:
        return x
    y = _to_last(x, d)
    c = y._view.shape[-1].as_const()
    if c == 0:
        return x
    if c is not None and c <= TRIANGLE_MAX:
        out = _prefix_windows(y).sum(-1)
    else:
        out = _scan(y, "add", 0.0)
    return _from_last(out, d)


def cumprod(x: Tensor, dim: int) -> Tensor:
    """Running product along ``dim`` (log-depth scan). ``x.cumprod(-1)``"""
    d = normalize_dim(dim, x.ndim, "cumprod")
    if x.ndim == 0 or x._view.shape[d].as_const() == 0:
        return x
    return _from_last(_scan(_to_last(x, d), "mul", 1.0), d)


# ---------------------------------------------------------------- norms and logic


def norm(
    x: Tensor, p: float | str = 2, dim: DimArg = None, keepdim: bool = False
) -> Tensor:
    """Vector p-norm over ``dim`` (all when None): p = 2 or "fro" (sqrt of the
    sum of squares), 1, inf, -inf, 0 (count of non-zeros), or any other number
    (``sum(|x|**p) ** (1/p)``). ``x.norm(1, -1)``"""
    if p == "fro" or p == 2:
        return (x * x).sum(dim, keepdim).sqrt()
    if isinstance(p, str) or isinstance(p, bool) or not isinstance(p, (int, float)):
        raise ValueError(f"[norm] p must be a number or 'fro', got {p!r}")
    if p == 0:
        return x.ne(0.0).sum(dim, keepdim)
    a = maximum(x, -x)  # |x|, exact for inf; NaN stays NaN
    if p == 1:
        return a.sum(dim, keepdim)
    if p == INF:
        return a.amax(dim, keepdim)
    if p == -INF:
        return amin(a, dim, keepdim)
    if math.isnan(p):
        raise ValueError("[norm] p must not be NaN")
    return ((a.log2() * float(p)).exp2().sum(dim, keepdim).log2() * (1.0 / p)).exp2()


def any(x: Tensor, dim: DimArg = None, keepdim: bool = False) -> Tensor:
    """1.0 where some element over ``dim`` is non-zero (NaN counts), else 0.0."""
    return x.ne(0.0).sum(dim, keepdim) > 0.5


def all(x: Tensor, dim: DimArg = None, keepdim: bool = False) -> Tensor:
    """1.0 where every element over ``dim`` is non-zero (empty: 1.0), else 0.0."""
    return x.eq(0.0).sum(dim, keepdim) < 0.5
