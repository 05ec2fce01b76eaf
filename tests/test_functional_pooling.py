"""F.max_pool*, avg_pool*, adaptive_avg_pool* and interpolate against PyTorch."""

from __future__ import annotations

import itertools

import numpy as np
import torch
import pytest
import torch.nn.functional as TF

import luminal as lm
import luminal.nn.functional as F
from functional_helpers import check_typed
from helpers import assert_close, check, rand

INF = float("inf")

MAX_GRID = [
    dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=c)
    for k, s, p, d, c in itertools.product([2, 3], [None, 1, 2], [0, 1], [1, 2], [False, True])
] + [
    dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 0), dilation=(1, 2), ceil_mode=True),
    dict(kernel_size=(1, 4), stride=(3, 1), padding=(0, 2)),
    dict(kernel_size=4, stride=3, padding=2, ceil_mode=True),
]


@pytest.mark.parametrize("kw", MAX_GRID, ids=[str(i) for i in range(len(MAX_GRID))])
def test_max_pool2d(backend, kw):
    # All-negative data: a zero from the padding would win where -inf must not.
    check(backend, [(2, 3, 9, 8)], lambda x: TF.max_pool2d(x, **kw), lambda x: F.max_pool2d(x, **kw),
          low=-5.0, high=-1.0)


def test_max_pool2d_special_values(backend):
    x = rand((1, 2, 7, 6), seed=3)
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 4, 4] = INF
    x[0, 1, :3, :3] = -INF
    check(backend, [], lambda x: TF.max_pool2d(x, 3, 2, 1), lambda x: F.max_pool2d(x, 3, 2, 1), data=[x])


@pytest.mark.parametrize("kw", [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), dilation=(2, 1), ceil_mode=True),
])
def test_max_pool2d_indices(backend, kw):
    check_typed(backend, [(rand((2, 3, 9, 7), seed=5), "f32")],
                lambda x: TF.max_pool2d(x, **kw, return_indices=True),
                lambda x: F.max_pool2d(x, **kw, return_indices=True))


def test_max_pool1d_3d_unbatched(backend):
    check(backend, [(2, 3, 11)], lambda x: TF.max_pool1d(x, 3, 2, 1, ceil_mode=True),
          lambda x: F.max_pool1d(x, 3, 2, 1, ceil_mode=True))
    check(backend, [(3, 9, 8)], lambda x: TF.max_pool2d(x, 3, 2), lambda x: F.max_pool2d(x, 3, 2))
    check(backend, [(1, 2, 5, 6, 7)], lambda x: TF.max_pool3d(x, (2, 3, 2), (1, 2, 2), 1),
          lambda x: F.max_pool3d(x, (2, 3, 2), (1, 2, 2), 1))


AVG_GRID = [
    dict(kernel_size=k, stride=s, padding=p, ceil_mode=c, count_include_pad=i)
    for k, s, p, c, i in itertools.product([2, 3], [None, 1, 2], [0, 1], [False, True], [True, False])
] + [
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), divisor_override=5),
    dict(kernel_size=4, stride=3, padding=2, ceil_mode=True, count_include_pad=True),
    dict(kernel_size=(4, 3), stride=(3, 2), padding=(2, 1), ceil_mode=True, count_include_pad=False),
]


@pytest.mark.parametrize("kw", AVG_GRID, ids=[str(i) for i in range(len(AVG_GRID))])
def test_avg_pool2d(backend, kw):
    check(backend, [(2, 3, 9, 8)], lambda x: TF.avg_pool2d(x, **kw), lambda x: F.avg_pool2d(x, **kw),
          atol=1e-6, rtol=1e-5)


def test_avg_pool1d_3d(backend):
    check(backend, [(3, 11)], lambda x: TF.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
          lambda x: F.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False))
    check(backend, [(1, 2, 5, 6, 7)], lambda x: TF.avg_pool3d(x, 2, (1, 2, 3), 1),
          lambda x: F.avg_pool3d(x, 2, (1, 2, 3), 1))


def test_pool_errors():
    cx = lm.Graph()
    x = cx.tensor((1, 1, 5, 5))
    with pytest.raises(ValueError, match="half of effective kernel"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(lm.ShapeError, match="too small"):
        F.max_pool2d(x, 6)


@pytest.mark.parametrize("out", [1, 2, 3, 4, 5, 7, (3, None), (None, 4), (6, 9), (13, 17), (12, 1)])
def test_adaptive_avg_pool2d(backend, out):
    check(backend, [(2, 3, 12, 9)], lambda x: TF.adaptive_avg_pool2d(x, out),
          lambda x: F.adaptive_avg_pool2d(x, out), atol=1e-6, rtol=1e-5)


def test_adaptive_avg_pool1d_3d_unbatched(backend):
    check(backend, [(2, 3, 10)], lambda x: TF.adaptive_avg_pool1d(x, 4), lambda x: F.adaptive_avg_pool1d(x, 4))
    check(backend, [(2, 5, 6, 7)], lambda x: TF.adaptive_avg_pool3d(x, (2, 3, 4)),
          lambda x: F.adaptive_avg_pool3d(x, (2, 3, 4)))
    check(backend, [(3, 7, 5)], lambda x: TF.adaptive_avg_pool2d(x, (3, 2)),
          lambda x: F.adaptive_avg_pool2d(x, (3, 2)))


INTERP_MODES = [("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bilinear", True),
                ("area", None)]


@pytest.mark.parametrize("mode,ac", INTERP_MODES, ids=[f"{m}-{a}" for m, a in INTERP_MODES])
@pytest.mark.parametrize("size", [(5, 7), (18, 16), (9, 8), (3, 4), (27, 3), (1, 1), (13, 29)])
def test_interpolate_size(backend, mode, ac, size):
    check(backend, [(2, 3, 9, 8)], lambda x: TF.interpolate(x, size=size, mode=mode, align_corners=ac),
          lambda x: F.interpolate(x, size=size, mode=mode, align_corners=ac), atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("mode,ac", INTERP_MODES, ids=[f"{m}-{a}" for m, a in INTERP_MODES])
@pytest.mark.parametrize("sf", [2, 3, 0.5, 1.5, (1.7, 0.6), 2.3, 1 / 3])
@pytest.mark.parametrize("rsf", [None, True])
def test_interpolate_scale_factor(backend, mode, ac, sf, rsf):
    kw = dict(scale_factor=sf, mode=mode, align_corners=ac, recompute_scale_factor=rsf)
    check(backend, [(1, 2, 9, 8)], lambda x: TF.interpolate(x, **kw), lambda x: F.interpolate(x, **kw),
          atol=2e-6, rtol=1e-5)


def test_interpolate_1d_3d(backend):
    check(backend, [(2, 3, 9)], lambda x: TF.interpolate(x, scale_factor=2.5, mode="linear"),
          lambda x: F.interpolate(x, scale_factor=2.5, mode="linear"), atol=2e-6)
    check(backend, [(2, 3, 9)], lambda x: TF.interpolate(x, size=4, mode="nearest"),
          lambda x: F.interpolate(x, size=4, mode="nearest"))
    kw = dict(size=(3, 7, 9), mode="trilinear", align_corners=True)
    check(backend, [(1, 2, 4, 5, 6)], lambda x: TF.interpolate(x, **kw), lambda x: F.interpolate(x, **kw),
          atol=2e-6)
    check(backend, [(1, 2, 4, 5, 6)], lambda x: TF.interpolate(x, size=(8, 3, 12)),
          lambda x: F.interpolate(x, size=(8, 3, 12)))


def test_interpolate_integer_nearest_is_exact_for_specials(backend):
    x = rand((1, 1, 3, 4), seed=1)
    x[0, 0, 1, 2] = INF
    x[0, 0, 2, 0] = np.nan
    for kw in (dict(scale_factor=2), dict(size=(9, 8)), dict(size=(3, 2))):
        check(backend, [], lambda t: TF.interpolate(t, **kw), lambda t: F.interpolate(t, **kw), data=[x])


def test_interpolate_errors():
    cx = lm.Graph()
    x = cx.tensor((1, 1, 4, 4))
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="exactly one"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="exactly one"):
        F.interpolate(x)
    with pytest.raises(lm.ShapeError, match="needs a 5-d"):
        F.interpolate(x, size=3, mode="trilinear")
    with pytest.raises(NotImplementedError):
        F.interpolate(x, size=3, mode="bicubic")


def test_symbolic_batch(backend):
    cx = lm.Graph()
    x = cx.tensor(("n", 2, 9, 8), name="x")
    outs = [F.max_pool2d(x, 3, 2, 1, ceil_mode=True), F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
            F.adaptive_avg_pool2d(x, (4, 3)), F.interpolate(x, size=(5, 11), mode="bilinear")]
    for o in outs:
        o.retrieve()
    for n in (1, 3):
        data = rand((n, 2, 9, 8), seed=n)
        x.set(data)
        backend.run(cx)
        t = torch.from_numpy(data)
        wants = [TF.max_pool2d(t, 3, 2, 1, ceil_mode=True), TF.avg_pool2d(t, 3, 2, 1, count_include_pad=False),
                 TF.adaptive_avg_pool2d(t, (4, 3)), TF.interpolate(t, size=(5, 11), mode="bilinear")]
        for o, w in zip(outs, wants):
            assert_close(o.numpy(), w.numpy(), 2e-6, 1e-5)
