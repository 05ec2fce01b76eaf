"""Views and data movement (reshape, permute, expand, pad, indexing, cat, stack)
against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import luminal as lm
from helpers import check, rand

INF = float("inf")
NAN = float("nan")

# ---------------------------------------------------------------- reshape / view

RESHAPES = [
    ((2, 3, 4), (6, 4)),
    ((2, 3, 4), (4, -1)),
    ((2, 3, 4), (-1,)),
    ((2, 3, 4), (2, 12)),
    ((2, 3, 4), (1, 24, 1)),
    ((24,), (2, -1, 3)),
    ((7, 13), (13, 7)),
    ((1, 1), ()),
    ((), (1, 1)),
    ((0, 4), (4, 0)),
    ((0, 4), (-1, 2)),
]


@pytest.mark.parametrize("src,dst", RESHAPES, ids=str)
@pytest.mark.parametrize("method", ["reshape", "view"])
def test_reshape(backend, method, src, dst):
    check(backend, [src], lambda t: getattr(t, method)(dst), lambda x: getattr(x, method)(dst))


def test_reshape_varargs(backend):
    check(backend, [(2, 3, 4)], lambda t: t.reshape(3, 8) * 2, lambda x: x.reshape(3, 8) * 2)


NEEDS_COPY = {
    "permuted": (lambda t: t.permute(1, 0, 2).reshape(3, 8), lambda x: x.permute(1, 0, 2).reshape(3, 8)),
    "transposed_flat": (lambda t: t.transpose(1, 2).reshape(-1), lambda x: x.transpose(1, 2).reshape(-1)),
    "sliced": (lambda t: t[:, 1:].reshape(-1), lambda x: x[:, 1:].reshape(-1)),
    "stepped": (lambda t: t[:, :, ::2].reshape(2, 6), lambda x: x[:, :, ::2].reshape(2, 6)),
    "expanded": (lambda t: t[:, :1].expand(2, 5, 4).reshape(10, 4),
                 lambda x: x[:, :1].expand(2, 5, 4).reshape(10, 4)),
    "padded": (lambda t: F.pad(t, (1, 1)).reshape(2, -1), lambda x: x.pad((1, 1)).reshape(2, -1)),
    "permuted_then_math": (lambda t: (t.permute(2, 1, 0).reshape(4, 6) + 1).exp(),
                           lambda x: (x.permute(2, 1, 0).reshape(4, 6) + 1).exp()),
}


@pytest.mark.parametrize("name", list(NEEDS_COPY))
def test_reshape_of_non_contiguous_view(backend, name):
    tfn, lfn = NEEDS_COPY[name]
    check(backend, [(2, 3, 4)], tfn, lfn, rtol=1e-5)


def test_reshape_bad_size_raises():
    cx = lm.Graph()
    x = cx.tensor((2, 3))
    with pytest.raises(lm.ShapeError):
        x.reshape(4, 2)
    with pytest.raises(lm.ShapeError):
        x.reshape(-1, 4)


# ---------------------------------------------------------------- permute / transpose / T

@pytest.mark.parametrize("order", [(1, 0, 2), (2, 0, 1), (0, 2, 1), (2, 1, 0), (-1, 0, -2), (0, 1, 2)],
                         ids=str)
def test_permute(backend, order):
    check(backend, [(2, 3, 5)], lambda t: t.permute(order), lambda x: x.permute(order))
    check(backend, [(2, 3, 5)], lambda t: t.permute(*order).contiguous() * 2,
          lambda x: x.permute(*order).contiguous() * 2)


@pytest.mark.parametrize("dims", [(0, 1), (1, 2), (0, 2), (-1, -2), (-3, 1), (1, 1)], ids=str)
def test_transpose(backend, dims):
    check(backend, [(2, 3, 5)], lambda t: t.transpose(*dims), lambda x: x.transpose(*dims))


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (5,)], ids=str)
def test_T(backend, shape):
    check(backend, [shape], lambda t: t.permute(*reversed(range(t.ndim))), lambda x: x.T)


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (2, 1, 3, 5)], ids=str)
def test_mT(backend, shape):
    check(backend, [shape], lambda t: t.mT, lambda x: x.mT)


def test_permute_chain_with_math(backend):
    check(backend, [(2, 3, 4), (4, 3)],
          lambda a, b: a.permute(2, 1, 0) * b.unsqueeze(-1) + a.transpose(0, 2),
          lambda a, b: a.permute(2, 1, 0) * b.unsqueeze(-1) + a.transpose(0, 2))


# ---------------------------------------------------------------- expand / broadcast_to

EXPANDS = [
    ((3, 1), (3, 4)),
    ((3, 1), (-1, 4)),
    ((1,), (2, 3, 5)),
    ((3, 1), (2, -1, 4)),
    ((3, 1), (2, 3, 4)),
    ((1, 4), (0, 4)),
    ((2, 3), (2, 3)),
    ((2, 1, 3), (4, 2, 5, 3)),
    ((), (2, 3)),
]


@pytest.mark.parametrize("src,dst", EXPANDS, ids=str)
def test_expand(backend, src, dst):
    check(backend, [src], lambda t: t.expand(*dst), lambda x: x.expand(*dst))
    check(backend, [src], lambda t: t.expand(dst) * 2 + 1, lambda x: x.expand(dst) * 2 + 1)


@pytest.mark.parametrize("src,dst", [s for s in EXPANDS if -1 not in s[1]], ids=str)
def test_broadcast_to(backend, src, dst):
    check(backend, [src], lambda t: t.broadcast_to(dst), lambda x: x.broadcast_to(dst))


def test_expand_then_reduce(backend):
    check(backend, [(3, 1)], lambda t: t.expand(2, 3, 7).sum((0, 2)), lambda x: x.expand(2, 3, 7).sum((0, 2)))


def test_expand_bad_raises():
    cx = lm.Graph()
    x = cx.tensor((3, 2))
    with pytest.raises(lm.ShapeError):
        x.expand(3, 4)
    with pytest.raises(lm.ShapeError):
        x.expand(-1, 3, 2)


# ---------------------------------------------------------------- unsqueeze / squeeze / flatten

@pytest.mark.parametrize("dim", [0, 1, 2, 3, -1, -2, -4])
def test_unsqueeze(backend, dim):
    check(backend, [(2, 3, 4)], lambda t: t.unsqueeze(dim), lambda x: x.unsqueeze(dim))


@pytest.mark.parametrize("shape", [(1, 3, 1, 4), (2, 3), (1,), (1, 1, 1)], ids=str)
def test_squeeze_all(backend, shape):
    check(backend, [shape], lambda t: t.squeeze(), lambda x: x.squeeze())


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2, (0, 2), (0, 1)], ids=str)
def test_squeeze_dim(backend, dim):
    check(backend, [(1, 3, 1, 4)], lambda t: t.squeeze(dim), lambda x: x.squeeze(dim))


FLATTENS = [((2, 3, 4, 5), s, e) for s, e in [(0, -1), (1, -1), (0, 1), (-2, -1), (1, 2), (2, 2)]]
FLATTENS += [((7, 13), 0, -1), ((7, 13), -2, -1), ((7, 13), 1, 1), ((2, 0, 3), 0, 1)]


@pytest.mark.parametrize("shape,s,e", FLATTENS, ids=str)
def test_flatten(backend, shape, s, e):
    check(backend, [shape], lambda t: t.flatten(s, e), lambda x: x.flatten(s, e))


def test_flatten_default_and_permuted(backend):
    check(backend, [(2, 3, 4)], lambda t: (t.flatten(), t.permute(2, 0, 1).flatten(1)),
          lambda x: (x.flatten(), x.permute(2, 0, 1).flatten(1)))


# ---------------------------------------------------------------- pad

PADS = [
    (1, 1),
    (0, 2),
    (3, 0),
    (2, 0, 1, 1),
    (1, 2, 3, 4, 0, 1),
    (-1, 2),
    (-1, -1, 1, 0),
    (0, 0, -2, 1),
    (-2, -3),
    (0, 0),
]


@pytest.mark.parametrize("value", [0.0, 3.5, -INF, INF, NAN], ids=str)
@pytest.mark.parametrize("pad", PADS, ids=str)
def test_pad(backend, pad, value):
    check(backend, [(2, 3, 5)], lambda t: F.pad(t, pad, value=value),
          lambda x: x.pad(pad, value), atol=0, rtol=0)


@pytest.mark.parametrize("value", [0.0, -INF, NAN, 3.5], ids=str)
def test_pad_then_compute(backend, value):
    """The padded region must carry `value` through later math and reductions."""
    check(backend, [(3, 4)],
          lambda t: (F.pad(t, (1, 2, 0, 1), value=value).exp() + 1).amax(-1),
          lambda x: (x.pad((1, 2, 0, 1), value).exp() + 1).amax(-1), rtol=2e-5,
          grad=bool(np.isfinite(value)))
    check(backend, [(3, 4)],
          lambda t: F.pad(t, (2, 1), value=value).sum(0),
          lambda x: x.pad((2, 1), value).sum(0), rtol=1e-5)


def test_pad_of_views(backend):
    check(backend, [(4, 6)],
          lambda t: (F.pad(t.T, (1, 1), value=2.0), F.pad(t[1:, ::2], (0, 0, 2, 1), value=-1.0)),
          lambda x: (x.T.pad((1, 1), 2.0), x[1:, ::2].pad((0, 0, 2, 1), -1.0)), atol=0, rtol=0)


def test_pad_bad_raises():
    cx = lm.Graph()
    x = cx.tensor((2, 3))
    with pytest.raises(lm.ShapeError):
        x.pad((1,))
    with pytest.raises(lm.ShapeError):
        x.pad((1, 1, 1, 1, 1, 1))


# ---------------------------------------------------------------- contiguous

@pytest.mark.parametrize("name", ["identity", "T", "slice", "expand", "pad", "permute3"])
def test_contiguous(backend, name):
    views = {
        "identity": lambda x: x,
        "T": lambda x: x.T,
        "slice": lambda x: x[1:, ::3],
        "expand": lambda x: x[:1].expand(3, 6),
        "pad": lambda x: x.pad((1, 1)) if isinstance(x, lm.Tensor) else F.pad(x, (1, 1)),
        "permute3": lambda x: x.reshape(2, 3, 3).permute(2, 0, 1),
    }
    v = views[name]
    check(backend, [(3, 6)], lambda t: v(t).contiguous(), lambda x: v(x).contiguous())


# ---------------------------------------------------------------- __getitem__

INDEXES = {
    "int": (1,),
    "neg_int": (-1,),
    "two_ints": (1, 2),
    "all_ints_rank0": (-1, -2, 0),
    "slice": (slice(1, 3),),
    "neg_slice": (slice(-3, -1),),
    "neg_start": (slice(-2, None),),
    "neg_stop": (slice(None, -1),),
    "step2": (slice(None, None, 2),),
    "step3_start": (slice(1, None, 3),),
    "step2_dim1": (slice(None), slice(None, None, 2)),
    "empty_reversed": (slice(3, 1),),
    "empty_past_end": (slice(None), slice(10, None)),
    "clamped": (slice(2, 100), slice(-100, 2)),
    "none": (None,),
    "none_mid": (slice(None), None, 1),
    "ellipsis_last": (Ellipsis, 0),
    "ellipsis_first": (0, Ellipsis),
    "ellipsis_mid": (0, Ellipsis, 1),
    "ellipsis_none": (Ellipsis, None),
    "none_ellipsis_none": (None, Ellipsis, None),
    "combo": (slice(None), None, slice(1, None), -1),
    "combo2": (slice(-4, None, 2), 2, slice(None, None, 3)),
    "ellipsis_only": (Ellipsis,),
    "full_slices": (slice(None), slice(None), slice(None)),
}


@pytest.mark.parametrize("name", list(INDEXES))
def test_getitem(backend, name):
    key = INDEXES[name]
    key = key[0] if len(key) == 1 else key
    check(backend, [(5, 4, 7)], lambda t: t[key], lambda x: x[key])


def test_getitem_then_math(backend):
    check(backend, [(5, 8)], lambda t: t[1:, ::2] * t[:-1, 1::2] + t[-1, 2:6],
          lambda x: x[1:, ::2] * x[:-1, 1::2] + x[-1, 2:6])


def test_getitem_of_permuted(backend):
    check(backend, [(4, 6, 3)], lambda t: t.permute(2, 0, 1)[1, ::2, -3:],
          lambda x: x.permute(2, 0, 1)[1, ::2, -3:])


def test_getitem_errors():
    cx = lm.Graph()
    x = cx.tensor((3, 4))
    with pytest.raises(IndexError):
        x[3]
    with pytest.raises(IndexError):
        x[-4]
    with pytest.raises(IndexError):
        x[0, 0, 0]
    with pytest.raises(IndexError):
        x[..., ...]
    with pytest.raises(ValueError):
        x[::-1]


# ---------------------------------------------------------------- cat / stack

CATS = [
    ([(2, 3), (4, 3)], 0),
    ([(2, 3), (2, 5)], 1),
    ([(2, 3), (2, 5)], -1),
    ([(2, 3, 4), (2, 1, 4), (2, 7, 4)], 1),
    ([(2, 3, 4), (2, 3, 1), (2, 3, 2)], -1),
    ([(1, 3), (2, 3), (3, 3)], -2),
    ([(3,), (0,), (5,)], 0),
    ([(2, 3)], 0),
]


@pytest.mark.parametrize("shapes,dim", CATS, ids=str)
def test_cat(backend, shapes, dim):
    check(backend, shapes, lambda *ts: torch.cat(ts, dim), lambda *xs: lm.cat(list(xs), dim), atol=0, rtol=0)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2, -3])
def test_stack(backend, dim, n):
    check(backend, [(2, 3)] * n, lambda *ts: torch.stack(ts, dim), lambda *xs: lm.stack(list(xs), dim),
          atol=0, rtol=0)


def test_cat_special_values_and_views(backend):
    """Zero-padded-sum construction must not leak inf/NaN across parts."""
    a = np.array([[INF, -INF], [NAN, 1.0]], dtype=np.float32)
    b = np.array([[2.0, -0.0], [INF, NAN]], dtype=np.float32)
    check(backend, [], lambda x, y: (torch.cat([x, y], 0), torch.cat([x.T, y], 1), torch.stack([x, y], -1)),
          lambda x, y: (lm.cat([x, y], 0), lm.cat([x.T, y], 1), lm.stack([x, y], -1)),
          data=[a, b], atol=0, rtol=0)


def test_cat_then_math(backend):
    check(backend, [(3, 4), (3, 2)],
          lambda a, b: torch.cat([a.exp(), b * 2, a[:, :1]], 1).sum(-1),
          lambda a, b: lm.cat([a.exp(), b * 2, a[:, :1]], 1).sum(-1), rtol=1e-5)


def test_cat_stack_bad_raises():
    cx = lm.Graph()
    a, b = cx.tensor((2, 3)), cx.tensor((3, 3))
    with pytest.raises(lm.ShapeError):
        lm.cat([a, b], 1)
    with pytest.raises(lm.ShapeError):
        lm.stack([a, b], 0)
    with pytest.raises(ValueError):
        lm.cat([], 0)


def test_empty_slice_then_reduce(backend):
    """Empty views feeding reductions: sum 0, mean NaN, like torch."""
    check(backend, [(5, 4)],
          lambda t: (t[5:].sum(0), t[:, 10:].mean(-1), t[3:1].sum(), t[:, 4:].sum(-1, keepdim=True)),
          lambda x: (x[5:].sum(0), x[:, 10:].mean(-1), x[3:1].sum(), x[:, 4:].sum(-1, keepdim=True)))
