"""Views and data movement. Views only edit the ShapeTracker; ``contiguous``
is the one op here that makes a node (and ``reshape`` when strides forbid a
view)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence, Union

from luminal._core import Expr, ShapeError
from luminal._shape import (
    DimLike,
    as_expr,
    fmt_shape,
    is_one,
    normalize_dim,
    product,
    same,
)

if TYPE_CHECKING:
    from luminal.tensor import Tensor

ShapeArg = Union[DimLike, Sequence[DimLike]]


def _shape_args(args: tuple[Any, ...]) -> list[Any]:
    """Accept both ``f(2, 3)`` and ``f((2, 3))`` like torch."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return list(args[0])
    return list(args)


def _int_or_expr(v: Any, op: str) -> Expr:
    if isinstance(v, Expr):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return Expr(v)
    raise TypeError(f"[{op}] expected an int or Expr, got {type(v).__name__}")


def _slice_bounds(it: slice, size: Expr) -> tuple[Expr, Expr]:
    """Start and stop of a positive-step slice, clamped as Python clamps.

    On a symbolic size, ``x[1:]`` and ``x[:-1]`` are taken as in range so the
    index math stays ``seq - 1`` (a binding that makes the size negative fails
    at run time); an explicit stop (``x[:5]``, ``x[:k]``) is clamped to the size.
    """
    n = size.as_const()
    ints = all(v is None or isinstance(v, int) for v in (it.start, it.stop))
    if n is not None and ints:
        lo, hi, _ = slice(it.start, it.stop, 1).indices(n)
        return Expr(lo), Expr(max(hi, lo))
    start = Expr(0) if it.start is None else _index_into(it.start, size)
    if it.stop is None:
        stop = size
    elif isinstance(it.stop, int) and it.stop < 0:
        stop = size + it.stop
    else:
        stop = _index_into(it.stop, size).min(size)
    if n is not None:  # concrete size, symbolic bounds: clamp both fully
        start = start.max(0).min(size)
        stop = stop.max(start)
    return start, stop


def _index_into(v: int | Expr, size: Expr) -> Expr:
    """A torch index (negative counts from the end) as an expression."""
    if isinstance(v, int) and v < 0:
        return size + v
    return _int_or_expr(v, "getitem")


def reshape(x: Tensor, *shape: Any) -> Tensor:
    """A view with a new shape; one dim may be -1. Copies only when strides
    forbid a view. ``x.reshape(2, -1)``"""
    dims = _shape_args(shape)
    old = x._view.shape
    numel = product(old)
    infer = [i for i, d in enumerate(dims) if isinstance(d, int) and d == -1]
    if len(infer) > 1:
        raise ShapeError(f"[reshape] only one dim can be -1, got {tuple(dims)}")
    known = [as_expr(d, "reshape") for d in dims if not (isinstance(d, int) and d == -1)]
    new: list[Expr]
    if infer:
        rest = product(known)
        c_rest, c_numel = rest.as_const(), numel.as_const()
        if c_rest == 0:
            raise ShapeError(f"[reshape] cannot infer -1 in {tuple(dims)}: other dims are 0")
        inferred = numel // rest
        if c_rest is not None and c_numel is not None and c_numel % c_rest:
            raise ShapeError(
                f"[reshape] shape {fmt_shape(x.shape)} ({c_numel} elements) cannot "
                f"be viewed as {tuple(dims)}"
            )
        known.insert(infer[0], inferred)
    new = known
    if not same(product(new), numel):
        raise ShapeError(
            f"[reshape] shape {fmt_shape(x.shape)} ({numel} elements) cannot be "
            f"viewed as {fmt_shape(new)} ({product(new)} elements)"
        )
    view = x._view.reshape(new)
    if view is None:  # strides forbid a view: copy row-major first
        c = x.contiguous()
        view = c._view.reshape(new)
        assert view is not None, "a row-major tracker always reshapes"
        return c._with_view(view)
    return x._with_view(view)

def view(x: Tensor, *shape: Any) -> Tensor:
    """Alias of ``reshape``. ``x.view(-1)``"""
    return x.reshape(*shape)

def permute(x: Tensor, *dims: Any) -> Tensor:
    """Reorder dims. ``x.permute(2, 0, 1)``"""
    order = [normalize_dim(d, x.ndim, "permute") for d in _shape_args(dims)]
    if sorted(order) != list(range(x.ndim)):
        raise ShapeError(
            f"[permute] {tuple(_shape_args(dims))} is not a permutation of the "
            f"{x.ndim} dims of shape {fmt_shape(x.shape)}"
        )
    return x._with_view(x._view.permute(order))

def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dims. ``x.transpose(0, 1)``"""
    a = normalize_dim(dim0, x.ndim, "transpose")
    b = normalize_dim(dim1, x.ndim, "transpose")
    order = list(range(x.ndim))
    order[a], order[b] = order[b], order[a]
    return x._with_view(x._view.permute(order)) if x.ndim else x

def reverse_dims(x: Tensor) -> Tensor:
    """All dims reversed. ``m.T``"""
    return x._with_view(x._view.permute(list(range(x.ndim))[::-1]))

def matrix_transpose(x: Tensor) -> Tensor:
    """The last two dims swapped. ``batch.mT``"""
    return x.transpose(-2, -1)

def _to_last(x: Tensor, d: int) -> Tensor:
    """A view with dim ``d`` moved last (the others keep their order)."""
    if d == x.ndim - 1:
        return x
    return x.permute([i for i in range(x.ndim) if i != d] + [d])

def _from_last(x: Tensor, d: int) -> Tensor:
    """Undo ``_to_last``: move the last dim back to position ``d``."""
    if d == x.ndim - 1:
        return x
    order = list(range(x.ndim - 1))
    order.insert(d, x.ndim - 1)
    return x.permute(order)

def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dim at ``dim``. ``x.unsqueeze(0)``"""
    d = normalize_dim(dim, x.ndim + 1, "unsqueeze")
    return x._with_view(x._view.unsqueeze(d))

def squeeze(x: Tensor, dim: int | Sequence[int] | None = None) -> Tensor:
    """Remove size-1 dims (all, or those in ``dim`` that have size 1). ``x.squeeze(0)``"""
    shape = x._view.shape
    if dim is None:
        drop = {i for i, d in enumerate(shape) if is_one(d)}
    else:
        dims = [dim] if isinstance(dim, int) else list(dim)
        drop = {normalize_dim(d, x.ndim, "squeeze") for d in dims}
        drop = {i for i in drop if i < len(shape) and is_one(shape[i])}
    if not drop:
        return x
    return x.reshape([d for i, d in enumerate(shape) if i not in drop])

def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one. ``x.flatten(1)``"""
    if x.ndim == 0:
        return x.reshape(1)
    s = normalize_dim(start_dim, x.ndim, "flatten")
    e = normalize_dim(end_dim, x.ndim, "flatten")
    if s > e:
        raise ValueError(f"[flatten] start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x._view.shape
    return x.reshape(shape[:s] + [product(shape[s : e + 1])] + shape[e + 1 :])

def expand(x: Tensor, *sizes: Any) -> Tensor:
    """Broadcast size-1 dims (and add leading dims) without copying; -1 keeps a
    dim. ``x.expand(4, -1)``"""
    want = _shape_args(sizes)
    if len(want) < x.ndim:
        raise ShapeError(
            f"[expand] cannot expand shape {fmt_shape(x.shape)} to {tuple(want)}: "
            "fewer dims than the tensor has"
        )
    lead = len(want) - x.ndim
    target: list[Expr] = []
    for i, w in enumerate(want):
        if isinstance(w, int) and w == -1:
            if i < lead:
                raise ShapeError(f"[expand] -1 is not allowed for a new leading dim ({i})")
            target.append(x._view.shape[i - lead])
        else:
            target.append(as_expr(w, "expand"))
    return x._expand_to(target, "expand")

def broadcast_to(x: Tensor, *shape: Any) -> Tensor:
    """Same as ``expand`` with an explicit shape. ``x.broadcast_to((3, 4))``"""
    return x.expand(*shape)

def _expand_to(x: Tensor, shape: Sequence[Expr], op: str = "expand") -> Tensor:
    view = x._view
    for _ in range(len(shape) - x.ndim):
        view = view.unsqueeze(0)
    for have, want in zip(view.shape, shape):
        if not (same(have, want) or is_one(have)):
            raise ShapeError(
                f"[{op}] cannot expand shape {fmt_shape(x.shape)} to "
                f"{fmt_shape(list(shape))}: {have} is neither 1 nor {want}"
            )
    if all(same(a, b) for a, b in zip(view.shape, shape)):
        return x._with_view(view)
    return x._with_view(view.expand(list(shape)))

def contiguous(x: Tensor) -> Tensor:
    """Materialize the view row-major (the Contiguous primitive). ``x.T.contiguous()``"""
    return x._apply("Contiguous")

PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(
    x: Tensor,
    pad: Sequence[int | Expr],
    mode: str | float = "constant",
    value: float | None = None,
) -> Tensor:
    """Pad like ``torch.nn.functional.pad(x, pad, mode, value)``: ``pad`` lists
    (before, after) pairs starting from the last dim; negative amounts crop.

    ``mode`` is ``"constant"`` (``value``, default 0), ``"reflect"`` (mirror
    without the edge: pad < size), ``"replicate"`` (repeat the edge) or
    ``"circular"`` (wrap around: pad <= size). A number in ``mode``'s place is
    taken as ``value`` (``x.pad((1, 1), 2.0)``). Unlike torch, the non-constant
    modes work on any rank and any number of padded dims (torch: the last 1-3
    dims of a batched input). Negative amounts crop first, then the cropped
    data is reflected/replicated/wrapped, as torch does. Constant mode is a
    view; the other modes add a ``cat`` (one Add per piece) per padded dim,
    exact for inf and NaN.

    >>> x.pad((1, 1))                      # one zero on each side of the last dim
    >>> x.pad((2, 2, 1, 1), "reflect")     # mirror the last two dims
    """
    if not isinstance(mode, str):
        if value is not None:
            raise TypeError("[pad] give value once: pad(x, pad, mode, value)")
        mode, value = "constant", float(mode)
    if mode not in PAD_MODES:
        raise ValueError(f"[pad] mode must be one of {', '.join(PAD_MODES)}, got {mode!r}")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(
            f"[pad] pad {tuple(pad)} needs an even length of at most 2*{x.ndim}"
        )
    if mode != "constant":
        if value is not None and value != 0.0:
            raise ValueError(f'[pad] padding mode "{mode}" does not take a value')
        return _pad_edges(x, pad, mode)
    value = 0.0 if value is None else float(value)
    view = x._view
    padded = False
    for i in range(len(pad) // 2):
        axis = x.ndim - 1 - i
        before = _int_or_expr(pad[2 * i], "pad")
        after = _int_or_expr(pad[2 * i + 1], "pad")
        # Negative amounts crop (a slice); the rest pads.
        crop_lo = -min(before.as_const() or 0, 0)
        crop_hi = -min(after.as_const() or 0, 0)
        if crop_lo or crop_hi:
            size = view.shape[axis]
            n = size.as_const()
            if n is not None and n < crop_lo + crop_hi:
                raise ShapeError(f"[pad] cropping {crop_lo + crop_hi} from a dim of size {n}")
            view = view.slice(axis, Expr(crop_lo), size - crop_hi, 1)
            before = Expr(0) if crop_lo else before
            after = Expr(0) if crop_hi else after
        if before.as_const() != 0 or after.as_const() != 0:
            view = view.pad(axis, before, after)
            padded = True
    out = x._with_view(view)
    if not padded or value == 0.0:
        return out
    inside = x.graph.constant(1.0)._expand_to(x._view.shape).pad(pad)
    if math.isnan(value):
        return out + (inside.log2() * 0.0)  # log2(0)*0 = NaN outside, 0 inside
    if math.isinf(value):
        # log2 of the 0/1 mask is -inf outside, 0 inside: no inf*0 anywhere.
        return out - inside.log2() if value > 0 else out + inside.log2()
    return out + (1.0 - inside) * value


def _pad_edges(x: Tensor, pad: Sequence[int | Expr], mode: str) -> Tensor:
    """reflect / replicate / circular padding: per dim, crop, then cat the
    pieces (flipped slices, an expanded edge, or the far end)."""
    out = x
    for i in range(len(pad) // 2):
        axis = x.ndim - 1 - i
        amounts = []
        for v in (pad[2 * i], pad[2 * i + 1]):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"[pad] {mode} padding amounts must be ints, got {v!r}")
            amounts.append(v)
        before, after = amounts
        size = out._view.shape[axis]
        crop_lo, crop_hi = max(-before, 0), max(-after, 0)
        if crop_lo or crop_hi:
            n = size.as_const()
            if n is not None and n < crop_lo + crop_hi:
                raise ShapeError(f"[pad] cropping {crop_lo + crop_hi} from a dim of size {n}")
            size = size - crop_hi - crop_lo
            out = out._with_view(out._view.slice(axis, Expr(crop_lo), out._view.shape[axis] - crop_hi, 1))
        lo, hi = max(before, 0), max(after, 0)
        if not lo and not hi:
            continue
        n = size.as_const()
        if n is not None:
            limit_ok = {"reflect": max(lo, hi) < n, "replicate": n > 0, "circular": max(lo, hi) <= n}[mode]
            if not limit_ok:
                need = {"reflect": "less than", "replicate": "at least 1 with", "circular": "at most"}[mode]
                raise ShapeError(
                    f"[pad] {mode} padding ({before}, {after}) of dim {axis - x.ndim} needs "
                    f"pads {need} the dim size {n}"
                )
        pieces: list[Tensor] = []
        if lo:
            pieces.append(_edge_piece(out, axis, size, lo, mode, True))
        pieces.append(out)
        if hi:
            pieces.append(_edge_piece(out, axis, size, hi, mode, False))
        out = cat(pieces, axis)
    return _same_dtype(out, x)


def _edge_piece(x: Tensor, axis: int, size: Expr, k: int, mode: str, left: bool) -> Tensor:
    """The ``k`` elements padded on one side of ``axis`` (a view of ``x``)."""
    v = x._view
    if mode == "reflect":  # x[k], ..., x[1] | x | x[n-2], ..., x[n-1-k]
        v = v.slice(axis, 1, k + 1, 1) if left else v.slice(axis, size - 1 - k, size - 1, 1)
        return x._with_view(v.flip(axis))
    if mode == "replicate":
        v = v.slice(axis, 0, 1, 1) if left else v.slice(axis, size - 1, size, 1)
        shape = list(v.shape)
        shape[axis] = Expr(k)
        return x._with_view(v.expand(shape))
    # circular: the far end of the data
    v = v.slice(axis, size - k, size, 1) if left else v.slice(axis, 0, k, 1)
    return x._with_view(v)


def _same_dtype(out: Tensor, like: Tensor) -> Tensor:
    """``out`` (exact copies of ``like``'s values) labelled with ``like``'s dtype."""
    if out.dtype == like.dtype:
        return out
    res = out._with_view(out._view)
    res.dtype = like.dtype
    return res

def getitem(x: Tensor, key: Any) -> Tensor:
    """Basic indexing: ints, slices (positive steps), None and ``...``, plus
    ONE ``"i32"`` index tensor (advanced indexing on one dim): its values pick
    along that dim and its shape replaces the dim in place, as torch does with
    a single index tensor. Negative indices wrap; out-of-range ones read 0
    (see ``luminal.hl_ops.indexing``). Float index tensors raise, as in torch.

    >>> x[0], x[:, 1:-1], x[..., ::2], x[None]
    >>> x[ids], x[:, ids], x[..., ids]      # ids: an integer-valued Tensor
    """
    from luminal.tensor import Tensor

    items = list(key) if isinstance(key, tuple) else [key]
    index_t: Tensor | None = None
    for k, it in enumerate(items):
        if isinstance(it, Tensor):
            if it.dtype != "i32":
                raise TypeError(
                    f"[getitem] unsupported index: a {it.dtype} tensor; index tensors must be "
                    "\"i32\", as torch needs integer ones (index_select/gather take any "
                    "integer-valued tensor)"
                )
            if index_t is not None:
                raise TypeError("[getitem] only one index tensor is supported")
            if it.graph is not x.graph:
                raise ValueError("[getitem] the index tensor belongs to a different graph")
            index_t = it
            items[k] = _TensorSlot
        elif not (it is None or it is Ellipsis or isinstance(it, (int, slice, Expr))):
            raise TypeError(
                f"[getitem] unsupported index {it!r}: use ints, slices, None, ... "
                "and one index Tensor"
            )
    consumed = sum(1 for it in items if it is not None and it is not Ellipsis)
    if sum(1 for it in items if it is Ellipsis) > 1:
        raise IndexError("[getitem] an index can only have a single ellipsis ('...')")
    if consumed > x.ndim:
        raise IndexError(
            f"[getitem] too many indices for a tensor of rank {x.ndim}: {key!r}"
        )
    if Ellipsis in items:
        i = items.index(Ellipsis)
        items[i : i + 1] = [slice(None)] * (x.ndim - consumed)
    view = x._view
    drop: list[int] = []
    axis = 0
    index_axis = -1
    for it in items:
        if it is None:
            view = view.unsqueeze(axis)
            axis += 1
            continue
        size = view.shape[axis]
        if it is _TensorSlot:
            index_axis = axis
        elif isinstance(it, slice):
            step = 1 if it.step is None else it.step
            if not isinstance(step, int) or step <= 0:
                raise ValueError(f"[getitem] slice step must be a positive int, got {step}")
            view = view.slice(axis, *_slice_bounds(it, size), step)
        else:
            index = _index_into(it, size)
            c, n = index.as_const(), size.as_const()
            if c is not None and n is not None and not 0 <= c < n:
                raise IndexError(
                    f"[getitem] index {it} is out of range for dim {axis} of size {n}"
                )
            view = view.slice(axis, index, index + 1, 1)
            drop.append(axis)
        axis += 1
    out = x._with_view(view)
    if drop:
        shape = [d for i, d in enumerate(view.shape) if i not in drop]
        out = out.reshape(shape) if shape else out.reshape([])
    if index_t is not None:
        from luminal.hl_ops.indexing import take_dim

        out = take_dim(out, index_axis - sum(1 for d in drop if d < index_axis), index_t)
    return out


class _TensorSlot:
    """Marks where the index tensor stood in a ``getitem`` key."""


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Concatenate along ``dim`` (as zero-padded views summed).

    >>> lm.cat([a, b], dim=1)
    """
    if not tensors:
        raise ValueError("[cat] expected a non-empty list of tensors")
    first = tensors[0]
    d = normalize_dim(dim, first.ndim, "cat")
    for t in tensors[1:]:
        if t.graph is not first.graph:
            raise ValueError("[cat] tensors belong to different graphs")
        ok = t.ndim == first.ndim and all(
            same(a, b) for i, (a, b) in enumerate(zip(t._view.shape, first._view.shape)) if i != d
        )
        if not ok:
            raise ShapeError(
                f"[cat] shapes {fmt_shape(first.shape)} and {fmt_shape(t.shape)} differ "
                f"outside dim {dim}"
            )
    if len(tensors) == 1:
        return first
    sizes = [t._view.shape[d] for t in tensors]
    total = sizes[0]
    for s in sizes[1:]:
        total = total + s
    out: Tensor | None = None
    offset = Expr(0)
    for t, s in zip(tensors, sizes):
        view = t._view.pad(d, offset, total - offset - s)
        part = t._with_view(view)
        out = part if out is None else out + part
        offset = offset + s
    assert out is not None
    return out


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Stack equal-shaped tensors along a new dim. ``lm.stack([a, b], dim=0)``"""
    if not tensors:
        raise ValueError("[stack] expected a non-empty list of tensors")
    d = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    for t in tensors[1:]:
        if t.ndim != tensors[0].ndim or not all(
            same(a, b) for a, b in zip(t._view.shape, tensors[0]._view.shape)
        ):
            raise ShapeError(
                f"[stack] all tensors need the same shape: {fmt_shape(tensors[0].shape)} vs "
                f"{fmt_shape(t.shape)}"
            )
    return cat([t.unsqueeze(d) for t in tensors], d)


# ---------------------------------------------------------------- split, repeat, flip, roll, ...


def _const_size(x: Tensor, d: int, op: str) -> int:
    n = x._view.shape[d].as_const()
    if n is None:
        raise ShapeError(
            f"[{op}] dim {d} of shape {fmt_shape(x.shape)} is symbolic: the number of "
            "pieces must be known when the graph is built"
        )
    return int(n)


def _narrow_view(x: Tensor, d: int, start: Expr | int, stop: Expr | int) -> Tensor:
    return x._with_view(x._view.slice(d, start, stop, 1))


def split(
    x: Tensor, split_size_or_sections: int | Sequence[int | Expr], dim: int = 0
) -> tuple[Tensor, ...]:
    """Views of consecutive pieces along ``dim``, like ``torch.split``: an int is
    the size of every piece (the last may be smaller); a list gives each size
    (ints or ``Expr``, summing to the dim). A symbolic dim needs a list.

    >>> a, b = x.split([2, 3], dim=-1)
    """
    d = normalize_dim(dim, x.ndim, "split")
    size = x._view.shape[d]
    if isinstance(split_size_or_sections, bool):
        raise TypeError("[split] split_size_or_sections must be an int or a list of sizes, not bool")
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        n = _const_size(x, d, "split")
        if step < 0 or (step == 0 and n):
            raise ValueError(f"[split] split_size must be positive, got {step} for a dim of size {n}")
        if n == 0:
            return (x,)
        sizes: list[Expr] = [Expr(min(step, n - s)) for s in range(0, n, step)]
    else:
        sizes = [_int_or_expr(v, "split") for v in split_size_or_sections]
        if any((s.as_const() or 0) < 0 for s in sizes):
            raise ValueError(f"[split] section sizes must be >= 0, got {list(split_size_or_sections)}")
        if not same(_total(sizes), size):
            raise ShapeError(
                f"[split] sections {[str(s) for s in sizes]} do not sum to dim {dim} "
                f"of size {size} (shape {fmt_shape(x.shape)})"
            )
    out: list[Tensor] = []
    offset = Expr(0)
    for s in sizes:
        out.append(_narrow_view(x, d, offset, offset + s))
        offset = offset + s
    return tuple(out)


def _total(sizes: Sequence[Expr]) -> Expr:
    t = Expr(0)
    for s in sizes:
        t = t + s
    return t


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into ``chunks`` views of ceil(n / chunks) along ``dim`` (the last
    smaller; fewer pieces when they run out), like ``torch.chunk``.

    >>> q, k, v = qkv.chunk(3, dim=-1)
    """
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks <= 0:
        raise ValueError(f"[chunk] chunks must be a positive int, got {chunks!r}")
    d = normalize_dim(dim, x.ndim, "chunk")
    n = _const_size(x, d, "chunk")
    if n == 0:  # torch: `chunks` empty pieces
        return tuple(x for _ in range(chunks))
    return split(x, -(-n // chunks), d)


def unbind(x: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """Views of every slice along ``dim``, with that dim removed, like
    ``torch.unbind``. ``rows = m.unbind(0)``"""
    if x.ndim == 0:
        raise IndexError("[unbind] a rank-0 tensor has no dim to unbind")
    d = normalize_dim(dim, x.ndim, "unbind")
    n = _const_size(x, d, "unbind")
    rest = [s for i, s in enumerate(x._view.shape) if i != d]
    return tuple(_narrow_view(x, d, i, i + 1).reshape(rest) for i in range(n))


def narrow(x: Tensor, dim: int, start: int | Expr, length: int | Expr) -> Tensor:
    """The view ``x[..., start:start + length, ...]`` on ``dim``, like
    ``torch.narrow``; a negative int ``start`` counts from the end; ``start`` and
    ``length`` may be ``Expr``. ``x.narrow(-1, 1, 3)``"""
    d = normalize_dim(dim, x.ndim, "narrow")
    size = x._view.shape[d]
    s = _int_or_expr(start, "narrow")
    if isinstance(start, int) and start < 0:
        s = size + start
    ln = _int_or_expr(length, "narrow")
    cs, cl, cn = s.as_const(), ln.as_const(), size.as_const()
    if cl is not None and cl < 0:
        raise ValueError(f"[narrow] length must be >= 0, got {length}")
    if cs is not None and cl is not None and cn is not None and not (0 <= cs and cs + cl <= cn):
        raise IndexError(
            f"[narrow] start {start} + length {length} is out of range for dim {dim} of size {cn}"
        )
    return _narrow_view(x, d, s, s + ln)


def flip(x: Tensor, dims: int | Sequence[int]) -> Tensor:
    """Reverse the order along ``dims``: a view (no copy). ``x.flip(-1)``,
    ``lm.flip(x, (0, 2))``"""
    ds = [dims] if isinstance(dims, int) else list(dims)
    axes = [normalize_dim(d, x.ndim, "flip") for d in ds]
    if len(set(axes)) != len(axes):
        raise ValueError(f"[flip] dims {tuple(ds)} name a dim more than once")
    view = x._view
    for a in axes:
        if x.ndim:
            view = view.flip(a)
    return x._with_view(view)


def roll(
    x: Tensor, shifts: int | Sequence[int], dims: int | Sequence[int] | None = None
) -> Tensor:
    """Rotate elements along ``dims`` by ``shifts`` (those pushed off the end come
    back at the start), like ``torch.roll``; without ``dims`` the flattened
    tensor is rolled. Two views and a ``cat`` per dim; exact for inf and NaN;
    symbolic dims work (the shift is taken mod the bound size).

    >>> x.roll(1, -1), x.roll((1, -2), (0, 1))
    """
    sh = [shifts] if isinstance(shifts, int) else list(shifts)
    if dims is None:
        if len(sh) != 1:
            raise ValueError(f"[roll] without dims, shifts must be one int, got {shifts!r}")
        flat = x.reshape(-1) if x.ndim else x.reshape(1)
        return roll(flat, sh[0], 0).reshape(x._view.shape)
    ds = [dims] if isinstance(dims, int) else list(dims)
    if len(ds) != len(sh):
        raise ValueError(f"[roll] shifts {shifts!r} and dims {dims!r} differ in length")
    out = x
    for s, dim in zip(sh, ds):
        if isinstance(s, bool) or not isinstance(s, int):
            raise TypeError(f"[roll] shifts must be ints, got {s!r}")
        d = normalize_dim(dim, x.ndim, "roll")
        if x.ndim == 0:
            continue
        n = out._view.shape[d]
        c = n.as_const()
        k: Expr
        if c is not None:
            if c == 0 or s % c == 0:
                continue
            k = Expr(s % c)
        else:
            m = n.max(1)  # a dim bound to 0 rolls by 0
            k = s % m if s >= 0 else (m - (-s) % m) % m
        out = cat([_narrow_view(out, d, n - k, n), _narrow_view(out, d, 0, n - k)], d)
    return _same_dtype(out, x)


def repeat(x: Tensor, *sizes: Any) -> Tensor:
    """Tile the tensor ``sizes[i]`` times along dim ``i`` (extra leading sizes
    add dims), like ``torch.Tensor.repeat``: an expanded view, copied once.
    ``x.repeat(2, 1, 3)``"""
    reps = [as_expr(r, "repeat") for r in _shape_args(sizes)]
    if len(reps) < x.ndim:
        raise ShapeError(
            f"[repeat] {len(reps)} repeat counts for a tensor of rank {x.ndim}: "
            "need at least one per dim"
        )
    shape = [Expr(1)] * (len(reps) - x.ndim) + list(x._view.shape)
    if all(is_one(r) for r in reps):
        return x.reshape(shape)
    base = x.reshape(shape)
    view = base._view
    for i in range(len(shape)):
        view = view.unsqueeze(2 * i)  # (1, d0, 1, d1, ...)
    wide: list[Expr] = []
    for r, s in zip(reps, shape):
        wide += [r, s]
    tiled = base._with_view(view.expand(wide))
    return _same_dtype(tiled.reshape([r * s for r, s in zip(reps, shape)]), x)


def repeat_interleave(x: Tensor, repeats: int, dim: int | None = None) -> Tensor:
    """Repeat each element ``repeats`` times along ``dim`` (flattened when None),
    like ``torch.repeat_interleave`` with an int ``repeats`` (a tensor of
    per-element counts is not supported: the output size would depend on data).
    ``x.repeat_interleave(2, dim=0)``"""
    from luminal.tensor import Tensor

    if isinstance(repeats, Tensor) or isinstance(repeats, bool) or not isinstance(repeats, int):
        raise TypeError(
            f"[repeat_interleave] repeats must be an int (tensor repeats give a "
            f"data-dependent shape), got {type(repeats).__name__}"
        )
    if repeats < 0:
        raise ValueError(f"[repeat_interleave] repeats must be >= 0, got {repeats}")
    if dim is None:
        x = x.reshape(-1) if x.ndim else x.reshape(1)
        d = 0
    else:
        d = normalize_dim(dim, x.ndim, "repeat_interleave")
        if x.ndim == 0:
            x = x.reshape(1)
    shape = list(x._view.shape)
    if repeats == 1:
        return x
    wide = shape[: d + 1] + [Expr(repeats)] + shape[d + 1 :]
    tiled = x.unsqueeze(d + 1)._expand_to(wide)
    out = shape[:d] + [shape[d] * repeats] + shape[d + 1 :]
    return _same_dtype(tiled.reshape(out), x)


def meshgrid(*tensors: Any, indexing: str = "ij") -> tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors (0-d counts as one element), like
    ``torch.meshgrid``: broadcast views, no copies. ``indexing="xy"`` swaps the
    first two output dims (Cartesian). ``gy, gx = lm.meshgrid(ys, xs, indexing="ij")``"""
    ts = list(tensors[0]) if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)) else list(tensors)
    if indexing not in ("ij", "xy"):
        raise ValueError(f"[meshgrid] indexing must be 'ij' or 'xy', got {indexing!r}")
    if not ts:
        raise ValueError("[meshgrid] expected at least one tensor")
    for t in ts:
        if t.ndim > 1:
            raise ShapeError(f"[meshgrid] expected 0-d or 1-d tensors, got shape {fmt_shape(t.shape)}")
        if t.graph is not ts[0].graph:
            raise ValueError("[meshgrid] tensors belong to different graphs")
    flat = [t.reshape(1) if t.ndim == 0 else t for t in ts]
    order = list(range(len(flat)))
    if indexing == "xy" and len(flat) >= 2:
        order[0], order[1] = 1, 0
    grid = [flat[i]._view.shape[0] for i in order]  # output dim k holds input order[k]
    out: list[Tensor] = []
    for i, t in enumerate(flat):
        k = order.index(i)
        shape = [Expr(1)] * len(grid)
        shape[k] = grid[k]
        out.append(t.reshape(shape)._expand_to(grid, "meshgrid"))
    return tuple(out)
