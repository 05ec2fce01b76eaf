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

def pad(x: Tensor, pad: Sequence[int | Expr], value: float = 0.0) -> Tensor:
    """Pad like ``torch.nn.functional.pad(x, pad, value=value)``: ``pad`` lists
    (before, after) pairs starting from the last dim; negative amounts crop.

    >>> x.pad((1, 1))        # one zero on each side of the last dim
    """
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(
            f"[pad] pad {tuple(pad)} needs an even length of at most 2*{x.ndim}"
        )
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

def getitem(x: Tensor, key: Any) -> Tensor:
    """Basic indexing: ints, slices (positive steps), None and ``...``.

    >>> x[0], x[:, 1:-1], x[..., ::2], x[None]
    """
    from luminal.tensor import Tensor

    items = list(key) if isinstance(key, tuple) else [key]
    for it in items:
        if isinstance(it, Tensor) or not (
            it is None or it is Ellipsis or isinstance(it, (int, slice, Expr))
        ):
            raise TypeError(
                f"[getitem] unsupported index {it!r}: use ints, slices, None and ..."
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
    for it in items:
        if it is None:
            view = view.unsqueeze(axis)
            axis += 1
            continue
        size = view.shape[axis]
        if isinstance(it, slice):
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
    return out


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
