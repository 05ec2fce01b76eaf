"""Indexing by index tensors: ``gather``, ``index_select``, ``take_along_dim``,
``embedding``, ``one_hot`` and advanced indexing with one index tensor
(``x[ids]``, ``x[:, ids]``, ``x[..., ids]``; see ``movement.getitem``).

There is no gather primitive. An index tensor (integer values, usually an
``"i32"`` input) is compared against ``arange(n)`` along the indexed dim to
make a one-hot (exact: small integers in float32), and the source is
multiplied by it and summed over that dim. The work is O(output * n), fine
for embeddings and small tables; no data moves through a pointer.

Special values and differences from torch (data cannot be checked when the
graph is built, so nothing here raises for bad index *values*):

* ``±inf`` is picked exactly: a plain ``x * one_hot`` would give ``inf * 0 =
  NaN``. The source is split into a finite part (clamped to ±FLT_MAX) and the
  sign of its infinities (-1/0/1); both are picked, and the infinity is put
  back with ``log2(0) = -inf``.
* NaN leaks: a NaN *anywhere* on the summed source line (same position in
  every other dim) makes the result NaN even when the index points elsewhere
  (``0 * NaN = NaN``); torch gives NaN only where a NaN is picked. Only
  LessThan can drop a NaN, so avoiding this would cost ~30 comparisons per
  element.
* Negative indices count from the end, in every op here (torch does so for
  ``x[ids]`` and ``take_along_dim`` with a ``dim``, and raises for
  ``gather``, ``index_select``, ``embedding`` and ``take_along_dim`` without
  a ``dim``). ``one_hot`` does not wrap.
* Out-of-range indices (``>= n`` or ``< -n``) and NaN indices match no
  position: that output element reads 0 (torch raises). ``one_hot`` of a
  negative or too-large class gives a row of zeros (torch raises).
* Non-integer index values (possible only in float tensors, which torch
  refuses as indices) pick the nearest position, halves rounding down.
* Results keep the source's dtype (they are exact copies of its values), so
  gathering from an ``"i32"`` tensor gives ``"i32"``; ``one_hot`` is ``"i32"``
  (torch: int64).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from luminal._core import Expr, ShapeError
from luminal._shape import DimLike, as_expr, fmt_shape, normalize_dim, same
from luminal.hl_ops import creation
from luminal.hl_ops.binary import FLT_MAX, broadcast_shapes, maximum, minimum
from luminal.hl_ops.movement import _from_last, _to_last

if TYPE_CHECKING:
    from luminal.tensor import Tensor


# ---------------------------------------------------------------- building blocks


def _check_index(x: Tensor, index: Tensor, op: str) -> None:
    from luminal.tensor import Tensor

    if not isinstance(index, Tensor):
        raise TypeError(f"[{op}] index must be a luminal Tensor, got {type(index).__name__}")
    if index.graph is not x.graph:
        raise ValueError(f"[{op}] the index tensor belongs to a different graph")


def _hits(index: Tensor, n: Expr, wrap: bool) -> Tensor:
    """0/1 of shape ``index.shape + (n,)``: 1 at the position each index names
    (negatives counted from the end when ``wrap``); all 0 out of range."""
    g = index.graph
    w = index
    if wrap:
        c = n.as_const()
        w = index + (index < 0.0) * (float(c) if c is not None else g.constant(n))
    pos = creation.iota(g, n)
    u = w.unsqueeze(-1)
    # |u - pos| < 0.5 as two comparisons: exact for integers, 0 for NaN.
    return (u < pos + 0.5) * ((pos - 0.5) < u)


def _pick(src: Tensor, hit: Tensor, axis: int) -> Tensor:
    """The sum over ``axis`` of ``src`` where the 0/1 ``hit`` is 1 (the two
    broadcast): with at most one hit per line, the picked value, exact for
    ±inf. A NaN on the line leaks into the sum."""
    if src.dtype == "i32":  # finite integers: the product is exact
        return (src * hit).sum(axis)
    finite = minimum(maximum(src, -FLT_MAX), FLT_MAX)  # NaN stays NaN
    inf_sign = (src > FLT_MAX) - (src < -FLT_MAX)
    value = (finite * hit).sum(axis)
    sign = (inf_sign * hit).sum(axis)
    # log2(0) = -inf where the picked value was infinite, log2(1) = 0 elsewhere.
    return value - (1.0 - (sign > 0.5)).log2() + (1.0 - (sign < -0.5)).log2()


def take_dim(x: Tensor, axis: int, index: Tensor) -> Tensor:
    """``x`` indexed along ``axis`` by ``index`` of any shape, whose dims replace
    ``axis`` (``x[:, index]`` for axis 1). Negative indices wrap."""
    _check_index(x, index, "getitem")
    n = x._view.shape[axis]
    flat = index.reshape(-1) if index.ndim != 1 else index
    src = _to_last(x, axis).unsqueeze(-2)  # (..., 1, n)
    picked = _pick(src, _hits(flat, n, True), -1)  # (..., k)
    out = _from_last(picked, axis)
    shape = x._view.shape
    out = out.reshape(shape[:axis] + index._view.shape + shape[axis + 1 :])
    return creation.typed(out, x.dtype)


# ---------------------------------------------------------------- ops


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """``out[i][j][k] = x[i][index[i][j][k]][k]`` for ``dim = 1``, like
    ``torch.gather``: ``index`` has ``x``'s rank and, off ``dim``, sizes no
    larger than ``x``'s; the output has ``index``'s shape. Negative indices
    wrap, out-of-range ones read 0; a NaN on the gathered line of ``x`` leaks
    (module docstring). ``x.gather(-1, ids)``"""
    _check_index(x, index, "gather")
    if index.ndim != x.ndim:
        raise ShapeError(
            f"[gather] index of shape {fmt_shape(index.shape)} needs the rank of the "
            f"input {fmt_shape(x.shape)}"
        )
    if x.ndim == 0:
        return gather(x.reshape(1), 0, index.reshape(1)).reshape([])
    d = normalize_dim(dim, x.ndim, "gather")
    view = x._view
    for i in range(x.ndim):
        have, want = x._view.shape[i], index._view.shape[i]
        if i == d or same(have, want):
            continue
        ch, cw = have.as_const(), want.as_const()
        if ch is None or cw is None or cw > ch:
            raise ShapeError(
                f"[gather] index of shape {fmt_shape(index.shape)} is larger than the input "
                f"{fmt_shape(x.shape)} in dim {i}"
            )
        view = view.slice(i, 0, cw, 1)
    src = _to_last(x._with_view(view), d).unsqueeze(-2)  # (..., 1, n)
    hit = _hits(_to_last(index, d), x._view.shape[d], True)  # (..., m, n)
    return creation.typed(_from_last(_pick(src, hit, -1), d), x.dtype)


def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """The slices of ``x`` along ``dim`` named by the 1-D (or 0-d) ``index``, like
    ``torch.index_select``. Negative indices wrap, out-of-range ones read 0.
    ``w.index_select(0, ids)``"""
    _check_index(x, index, "index_select")
    if index.ndim > 1:
        raise ShapeError(f"[index_select] index must be 0-d or 1-d, got shape {fmt_shape(index.shape)}")
    if x.ndim == 0:
        normalize_dim(dim, 0, "index_select")
        return take_dim(x.reshape(1), 0, index.reshape(1)).reshape([])
    d = normalize_dim(dim, x.ndim, "index_select")
    return take_dim(x, d, index.reshape(1) if index.ndim == 0 else index)


def take_along_dim(x: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """Like ``torch.take_along_dim``: ``gather`` along ``dim`` after broadcasting
    ``x`` and ``indices`` in every other dim; without ``dim``, indices into the
    flattened ``x``. ``x.take_along_dim(x.argmax(-1, keepdim=True), -1)``"""
    _check_index(x, indices, "take_along_dim")
    if dim is None:
        flat = x.reshape(-1) if x.ndim else x.reshape(1)
        idx = indices.reshape(-1) if indices.ndim else indices.reshape(1)
        return gather(flat, 0, idx)
    if indices.ndim != x.ndim:
        raise ShapeError(
            f"[take_along_dim] input {fmt_shape(x.shape)} and indices {fmt_shape(indices.shape)} "
            "need the same rank"
        )
    if x.ndim == 0:
        return gather(x, 0, indices)
    d = normalize_dim(dim, x.ndim, "take_along_dim")
    xs, js = list(x._view.shape), list(indices._view.shape)
    n, m = xs[d], js[d]
    xs[d] = js[d] = Expr(1)
    common = broadcast_shapes("take_along_dim", xs, js)
    x_to, i_to = list(common), list(common)
    x_to[d], i_to[d] = n, m
    return gather(x._expand_to(x_to, "take_along_dim"), d, indices._expand_to(i_to, "take_along_dim"))


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of the ``(num_embeddings, dim)`` ``weight`` for each id in ``input``,
    like ``torch.nn.functional.embedding(input, weight)``: shape
    ``input.shape + (dim,)``. Negative ids wrap and out-of-range ids give a
    row of zeros (torch raises for both); a NaN anywhere in a column of
    ``weight`` leaks into that column of every row. ``padding_idx``,
    ``scale_grad_by_freq`` and ``sparse`` only affect gradients (there are
    none here); ``max_norm`` (which rescales ``weight``) is not supported.

    >>> lm.embedding(ids, table)
    """
    _check_index(weight, input, "embedding")
    if weight.ndim != 2:
        raise ShapeError(f"[embedding] weight must be 2-D, got shape {fmt_shape(weight.shape)}")
    if max_norm is not None:
        raise NotImplementedError("[embedding] max_norm is not supported")
    return take_dim(weight, 0, input)


def one_hot(tensor: Tensor, num_classes: int | DimLike = -1) -> Tensor:
    """``out[..., c] = 1`` where ``tensor == c``, else 0, with dtype ``"i32"``,
    like ``torch.nn.functional.one_hot``. ``num_classes`` must be given (torch's
    -1 infers it from the data) and may be a dim name or ``Expr``. Negative or
    too-large classes give a row of zeros (torch raises).

    >>> lm.one_hot(labels, 10)
    """
    from luminal.tensor import Tensor

    if not isinstance(tensor, Tensor):
        raise TypeError(f"[one_hot] expected a luminal Tensor, got {type(tensor).__name__}")
    if isinstance(num_classes, int) and not isinstance(num_classes, bool) and num_classes < 0:
        raise ValueError(
            "[one_hot] num_classes must be given (>= 0): it cannot be inferred from data "
            "when the graph is built"
        )
    n = as_expr(num_classes, "one_hot")
    return creation.typed(_hits(tensor, n, False), "i32")
