"""Losses against PyTorch: class-index ("i32") and probability targets,
weights, ignore_index, label smoothing, every reduction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import luminal as lm
import luminal.nn.functional as F
from functional_helpers import check_typed
from helpers import check, rand

pytestmark = [
    pytest.mark.filterwarnings("ignore:size_average and reduce args will be deprecated:UserWarning"),
    pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss:UserWarning"),
]

REDUCTIONS = ["mean", "sum", "none"]
ATOL, RTOL = 2e-5, 1e-4


def _labels(shape, c, seed=0, ignore=None, frac=0.3):
    t = np.random.default_rng(seed).integers(0, c, size=shape)
    if ignore is not None:
        t[np.random.default_rng(seed + 1).random(shape) < frac] = ignore
    return t.astype(np.int32)


CE_CASES = [
    # (input shape, kwargs)
    ((6, 5), {}),
    ((6, 5), dict(ignore_index=-100)),
    ((6, 5), dict(ignore_index=2)),  # a real class index
    ((6, 5), dict(label_smoothing=0.2)),
    ((6, 5), dict(label_smoothing=0.15, ignore_index=1)),
    ((3, 4, 5, 2), {}),  # (N, C, d1, d2)
    ((3, 4, 5, 2), dict(ignore_index=0, label_smoothing=0.1)),
    ((7,), {}),  # unbatched (C,), 0-d target
]


@pytest.mark.parametrize("shape,kw", CE_CASES, ids=[f"{c[0]}{c[1]}" for c in CE_CASES])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_indices(backend, shape, kw, reduction, weighted):
    c = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    ignore = kw.get("ignore_index")
    if len(shape) == 1 and ignore is not None:
        pytest.skip("0-d target")
    data = [(rand(shape, -3, 3, seed=1), "f32"), (_labels(tshape, c, ignore=ignore), "i32")]
    if weighted:
        data.append((rand((c,), 0.2, 2.0, seed=2), "f32"))
    check_typed(backend, data, lambda *a: TF.cross_entropy(*a, reduction=reduction, **kw),
                lambda *a: F.cross_entropy(*a, reduction=reduction, **kw), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_probabilities(backend, reduction, smoothing, weighted):
    probs = torch.softmax(torch.from_numpy(rand((3, 5, 4), seed=3)), 1).numpy()
    data = [(rand((3, 5, 4), seed=1), "f32"), (probs, "f32")]
    if weighted:
        data.append((rand((5,), 0.2, 2.0, seed=2), "f32"))
    check_typed(backend, data, lambda *a: TF.cross_entropy(*a, reduction=reduction, label_smoothing=smoothing),
                lambda *a: F.cross_entropy(*a, reduction=reduction, label_smoothing=smoothing), atol=ATOL, rtol=RTOL)


def test_cross_entropy_neg_inf_logits(backend):
    # -inf logits of non-target classes must not poison the loss (no x * onehot).
    x = rand((4, 5), seed=4)
    x[0, 1] = -np.inf
    x[2, :4] = -np.inf
    t = np.array([0, 3, 4, 2], np.int32)
    for kw in ({}, dict(reduction="none"), dict(ignore_index=3)):
        check_typed(backend, [(x, "f32"), (t, "i32")], lambda a, b: TF.cross_entropy(a, b, **kw),
                    lambda a, b: F.cross_entropy(a, b, **kw), atol=ATOL, rtol=RTOL)


def test_cross_entropy_float_coded_indices(backend):
    # luminal extra: float targets with one dim fewer than the input are class indices.
    t = _labels((6,), 5).astype(np.float32)
    out = check(backend, [], lambda a, b: TF.cross_entropy(a, b.long()), F.cross_entropy,
                data=[rand((6, 5), seed=1), t], atol=ATOL, rtol=RTOL)
    assert np.isfinite(out[0]).all()


def test_cross_entropy_all_ignored_is_nan(backend):
    t = np.full((3,), -100, np.int32)
    check_typed(backend, [(rand((3, 4)), "f32"), (t, "i32")], TF.cross_entropy, F.cross_entropy)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore", [-100, 1])
def test_nll_loss(backend, reduction, ignore):
    logp = torch.log_softmax(torch.from_numpy(rand((6, 4, 3), seed=5)), 1).numpy()
    data = [(logp, "f32"), (_labels((6, 3), 4, ignore=ignore), "i32"), (rand((4,), 0.5, 2.0, seed=6), "f32")]
    check_typed(backend, data, lambda a, b, w: TF.nll_loss(a, b, w, ignore_index=ignore, reduction=reduction),
                lambda a, b, w: F.nll_loss(a, b, w, ignore_index=ignore, reduction=reduction), atol=ATOL, rtol=RTOL)
    check_typed(backend, data[:2], lambda a, b: TF.nll_loss(a, b, ignore_index=ignore, reduction=reduction),
                lambda a, b: F.nll_loss(a, b, ignore_index=ignore, reduction=reduction), atol=ATOL, rtol=RTOL)


def test_nll_loss_legacy_args(backend):
    data = [(rand((5, 3), seed=1), "f32"), (_labels((5,), 3), "i32")]
    check_typed(backend, data, lambda a, b: TF.nll_loss(a, b, reduce=False),
                lambda a, b: F.nll_loss(a, b, reduce=False))
    check_typed(backend, data, lambda a, b: TF.nll_loss(a, b, size_average=False),
                lambda a, b: F.nll_loss(a, b, size_average=False), atol=ATOL, rtol=RTOL)


def test_index_target_shape_error():
    cx = lm.Graph()
    with pytest.raises(lm.ShapeError, match="target"):
        F.cross_entropy(cx.tensor((4, 5)), cx.tensor((5,), dtype="i32"))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(cx.tensor((4,)), cx.tensor((4,)), reduction="avg")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_l1(backend, reduction):
    for tf, lf in ((TF.mse_loss, F.mse_loss), (TF.l1_loss, F.l1_loss)):
        check(backend, [(3, 5), (3, 5)], lambda a, b: tf(a, b, reduction=reduction),
              lambda a, b: lf(a, b, reduction=reduction), atol=1e-5, rtol=1e-5)
        check(backend, [(3, 5), (3, 5), (3, 5)], lambda a, b, w: tf(a, b, reduction=reduction, weight=w),
              lambda a, b, w: lf(a, b, reduction=reduction, weight=w), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [1.0, 0.3, 0.0])
def test_smooth_l1(backend, reduction, beta):
    check(backend, [(4, 7), (4, 7)], lambda a, b: TF.smooth_l1_loss(a, b, reduction=reduction, beta=beta),
          lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=beta), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [1.0, 0.4, 2.5])
def test_huber(backend, reduction, delta):
    check(backend, [(4, 7), (4, 7)], lambda a, b: TF.huber_loss(a, b, reduction=reduction, delta=delta),
          lambda a, b: F.huber_loss(a, b, reduction=reduction, delta=delta), atol=1e-5, rtol=1e-5)
    check(backend, [(4, 7), (4, 7), (4, 7)],
          lambda a, b, w: TF.huber_loss(a, b, reduction=reduction, delta=delta, weight=w),
          lambda a, b, w: F.huber_loss(a, b, reduction=reduction, delta=delta, weight=w), atol=1e-5, rtol=1e-5)


def test_regression_losses_with_inf(backend):
    a = rand((2, 4), seed=1)
    a[0, 1] = np.inf
    b = rand((2, 4), seed=2)
    for tf, lf in ((TF.smooth_l1_loss, F.smooth_l1_loss), (TF.huber_loss, F.huber_loss), (TF.l1_loss, F.l1_loss)):
        check(backend, [], lambda x, y: tf(x, y, reduction="none"), lambda x, y: lf(x, y, reduction="none"),
              data=[a, b])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(backend, reduction):
    x = rand((4, 5), 0.01, 0.99, seed=1)
    x[0, :3] = [0.0, 1.0, 0.5]  # log(0) clamps at -100
    t = rand((4, 5), 0.0, 1.0, seed=2)
    t[0, :2] = [1.0, 0.0]
    w = rand((4, 5), 0.5, 2.0, seed=3)
    check(backend, [], lambda a, b: TF.binary_cross_entropy(a, b, reduction=reduction),
          lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction), data=[x, t], atol=1e-4, rtol=1e-5,
          grad=False)  # at x = 0 and 1 torch's gradient has its own clamp
    check(backend, [], lambda a, b, c: TF.binary_cross_entropy(a, b, c, reduction=reduction),
          lambda a, b, c: F.binary_cross_entropy(a, b, c, reduction=reduction), data=[x[1:], t[1:], w[1:]],
          atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(backend, reduction):
    x = rand((4, 5), -8, 8, seed=1)
    x[0, :2] = [60.0, -60.0]  # large logits stay finite
    t = rand((4, 5), 0.0, 1.0, seed=2)
    pw = rand((5,), 0.5, 3.0, seed=3)
    w = rand((4, 5), 0.5, 2.0, seed=4)
    check(backend, [], lambda a, b: TF.binary_cross_entropy_with_logits(a, b, reduction=reduction),
          lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction), data=[x, t],
          atol=1e-5, rtol=1e-5)
    check(backend, [], lambda a, b, c, d: TF.binary_cross_entropy_with_logits(a, b, d, reduction=reduction,
                                                                               pos_weight=c),
          lambda a, b, c, d: F.binary_cross_entropy_with_logits(a, b, d, reduction=reduction, pos_weight=c),
          data=[x, t, pw, w], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(backend, reduction, log_target):
    logp = torch.log_softmax(torch.from_numpy(rand((3, 6), seed=1)), -1).numpy()
    q = torch.softmax(torch.from_numpy(rand((3, 6), seed=2)), -1).numpy()
    if log_target:
        q = np.log(q)
    else:
        q[0, 2] = 0.0  # xlogy(0, 0) = 0
    check(backend, [], lambda a, b: TF.kl_div(a, b, reduction=reduction, log_target=log_target),
          lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target), data=[logp, q],
          atol=1e-6, rtol=1e-5, grad=log_target)  # d/dq of xlogy at q = 0 is -inf in torch


def test_cross_entropy_symbolic_batch(backend):
    cx = lm.Graph()
    x = cx.tensor(("n", 5), name="x")
    t = cx.tensor(("n",), name="t", dtype="i32")
    loss = F.cross_entropy(x, t, ignore_index=0, label_smoothing=0.1).retrieve()
    for n in (3, 8):
        a, b = rand((n, 5), seed=n), _labels((n,), 5, seed=n)
        x.set(a), t.set(b)
        backend.run(cx)
        want = TF.cross_entropy(torch.from_numpy(a), torch.from_numpy(b).long(), ignore_index=0,
                                label_smoothing=0.1)
        np.testing.assert_allclose(loss.numpy(), want.numpy(), atol=ATOL, rtol=RTOL)
