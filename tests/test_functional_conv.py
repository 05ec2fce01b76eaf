"""F.conv1d / conv2d / conv3d / conv_transpose* against PyTorch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import luminal as lm
import luminal.nn.functional as F
from helpers import assert_close, check, rand

pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same.:UserWarning")

CONV2D = [
    # (input, weight, kwargs)
    ((2, 4, 9, 11), (6, 4, 3, 3), {}),
    ((2, 4, 9, 11), (6, 4, 3, 3), dict(padding=1)),
    ((2, 4, 9, 11), (6, 4, 3, 3), dict(stride=2, padding=1)),
    ((2, 4, 9, 11), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)),
    ((1, 6, 10, 7), (6, 1, 3, 3), dict(padding=1, groups=6)),  # depthwise
    ((2, 6, 10, 7), (9, 2, 2, 3), dict(stride=(3, 2), dilation=2, groups=3)),
    ((2, 4, 9, 11), (6, 4, 3, 4), dict(padding="same", dilation=2)),  # even kernel: extra pad on the right
    ((2, 4, 9, 11), (6, 4, 5, 2), dict(padding="same")),
    ((2, 4, 9, 11), (6, 4, 3, 3), dict(padding="valid", stride=3)),
    ((2, 3, 8, 8), (5, 3, 1, 1), {}),  # 1x1
    ((2, 3, 8, 8), (5, 3, 2, 2), dict(stride=2)),  # non-overlapping windows
    ((2, 3, 7, 9), (4, 3, 7, 9), {}),  # kernel covers the input
    ((1, 2, 13, 5), (3, 2, 4, 2), dict(stride=(5, 3), padding=(2, 1), dilation=(3, 2))),
]


@pytest.mark.parametrize("xs,ws,kw", CONV2D, ids=[str(c[2]) for c in CONV2D])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d(backend, xs, ws, kw, bias):
    shapes = [xs, ws, (ws[0],)] if bias else [xs, ws]
    check(backend, shapes, lambda *a: TF.conv2d(*a, **kw), lambda *a: F.conv2d(*a, **kw), atol=2e-5, rtol=1e-4)


def test_conv2d_unbatched(backend):
    check(backend, [(4, 9, 8), (5, 4, 3, 3), (5,)], lambda *a: TF.conv2d(*a, padding=1),
          lambda *a: F.conv2d(*a, padding=1), atol=2e-5)


def test_conv2d_inf_input(backend):
    # An inf pixel spreads as in torch (inf * w summed), NaN where signs meet.
    data = torch.randn(1, 2, 5, 6)
    data[0, 0, 2, 3] = float("inf")
    w = torch.rand(3, 2, 2, 2) + 0.1  # positive weights: every window with the pixel is +inf
    check(backend, [], lambda x, w: TF.conv2d(x, w), lambda x, w: F.conv2d(x, w),
          data=[data.numpy(), w.numpy()], atol=2e-5, rtol=1e-4)


CONV1D = [
    ((2, 4, 13), (6, 4, 3), {}),
    ((2, 4, 13), (6, 2, 3), dict(stride=2, padding=2, dilation=3, groups=2)),
    ((2, 4, 13), (6, 4, 4), dict(padding="same", dilation=2)),
    ((3, 11), (5, 3, 2), dict(stride=3)),
    ((2, 4, 16), (8, 1, 5), dict(groups=4, padding=2, stride=4)),
]


@pytest.mark.parametrize("xs,ws,kw", CONV1D, ids=[str(c[2]) for c in CONV1D])
def test_conv1d(backend, xs, ws, kw):
    check(backend, [xs, ws, (ws[0],)], lambda *a: TF.conv1d(*a, **kw), lambda *a: F.conv1d(*a, **kw),
          atol=2e-5, rtol=1e-4)


def test_conv3d(backend):
    kw = dict(stride=(1, 2, 1), padding=(1, 0, 1), dilation=(1, 1, 2))
    check(backend, [(1, 2, 5, 6, 7), (4, 2, 2, 3, 2), (4,)], lambda *a: TF.conv3d(*a, **kw),
          lambda *a: F.conv3d(*a, **kw), atol=2e-5, rtol=1e-4)


CONVT2D = [
    ((2, 4, 5, 6), (4, 3, 3, 3), {}),
    ((2, 4, 5, 6), (4, 3, 3, 3), dict(stride=2)),
    ((2, 4, 5, 6), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 5, 6), (4, 3, 3, 2), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2,
                                      dilation=(1, 2))),
    ((2, 4, 5, 6), (4, 3, 3, 3), dict(stride=2, padding=3, dilation=2, output_padding=1)),  # crops
    ((1, 6, 4, 3), (6, 1, 2, 2), dict(stride=2, groups=6)),
    ((2, 3, 4, 5), (3, 2, 4, 4), dict(stride=2, padding=1)),  # the usual 2x upsampler
]


@pytest.mark.parametrize("xs,ws,kw", CONVT2D, ids=[str(c[2]) for c in CONVT2D])
def test_conv_transpose2d(backend, xs, ws, kw):
    g = kw.get("groups", 1)
    shapes = [xs, ws, (ws[1] * g,)]
    check(backend, shapes, lambda *a: TF.conv_transpose2d(*a, **kw), lambda *a: F.conv_transpose2d(*a, **kw),
          atol=2e-5, rtol=1e-4)


def test_conv_transpose2d_no_bias_unbatched(backend):
    check(backend, [(4, 5, 6), (4, 3, 2, 3)], lambda x, w: TF.conv_transpose2d(x, w, stride=(1, 2)),
          lambda x, w: F.conv_transpose2d(x, w, stride=(1, 2)), atol=2e-5, rtol=1e-4)


def test_conv_transpose1d_and_3d(backend):
    check(backend, [(2, 4, 7), (4, 3, 4), (3,)], lambda *a: TF.conv_transpose1d(*a, stride=3, padding=1),
          lambda *a: F.conv_transpose1d(*a, stride=3, padding=1), atol=2e-5, rtol=1e-4)
    kw = dict(stride=(2, 1, 2), padding=(0, 1, 1), output_padding=(1, 0, 0))
    check(backend, [(1, 2, 3, 4, 3), (2, 3, 2, 3, 3)], lambda *a: TF.conv_transpose3d(*a, **kw),
          lambda *a: F.conv_transpose3d(*a, **kw), atol=2e-5, rtol=1e-4)


def test_conv_graph_size_does_not_grow_with_the_image():
    """im2col through views: the node count is fixed, not one per output pixel or tap."""
    counts = []
    for hw in (8, 32):
        cx = lm.Graph()
        F.conv2d(cx.tensor((1, 3, hw, hw)), cx.tensor((4, 3, 3, 3)), cx.tensor((4,)), padding=1).retrieve()
        counts.append(cx.node_count())
    assert counts[0] == counts[1] <= 12, counts


def test_conv_errors():
    cx = lm.Graph()
    x = cx.tensor((2, 4, 9, 9))
    with pytest.raises(lm.ShapeError, match="groups"):
        F.conv2d(x, cx.tensor((6, 3, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(x, cx.tensor((6, 4, 3, 3)), padding="same", stride=2)
    with pytest.raises(ValueError, match="padding must be"):
        F.conv2d(x, cx.tensor((6, 4, 3, 3)), padding="full")
    with pytest.raises(lm.ShapeError, match="smaller than the kernel"):
        F.conv2d(x, cx.tensor((6, 4, 11, 3)))
    with pytest.raises(lm.ShapeError, match="4-d"):
        F.conv2d(cx.tensor((9, 9)), cx.tensor((6, 4, 3, 3)))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(x, cx.tensor((4, 2, 3, 3)), stride=2, output_padding=2)


def test_symbolic_batch(backend):
    """Only channels and spatial dims must be concrete: one graph serves any batch."""
    cx = lm.Graph()
    x, w = cx.tensor(("n", 3, 8, 7), name="x"), cx.tensor((4, 3, 3, 3), name="w")
    y = F.conv2d(x, w, padding=1, stride=(1, 2)).retrieve()
    yt = F.conv_transpose2d(x, cx.tensor((3, 2, 2, 2), name="wt").set(rand((3, 2, 2, 2), seed=9)), stride=2)
    yt.retrieve()
    w.set(rand((4, 3, 3, 3), seed=1))
    for n in (1, 3):
        x.set(rand((n, 3, 8, 7), seed=n))
        backend.run(cx)
        tx = torch.from_numpy(rand((n, 3, 8, 7), seed=n))
        want = TF.conv2d(tx, torch.from_numpy(rand((4, 3, 3, 3), seed=1)), padding=1, stride=(1, 2))
        assert_close(y.numpy(), want.numpy(), 2e-5, 1e-4)
        want_t = TF.conv_transpose2d(tx, torch.from_numpy(rand((3, 2, 2, 2), seed=9)), stride=2)
        assert_close(yt.numpy(), want_t.numpy(), 2e-5, 1e-4)
