"""Training: optimizers and schedules against torch.optim trajectories,
gradient clipping, feeding results back (assign/append), checkpoints."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import luminal as lm
import luminal.nn as nn
from luminal.optim import lr_scheduler as lm_sched

STEPS = 20


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    params = [rng.normal(0, 0.5, s).astype(np.float32) for s in [(5, 3), (5,), (2, 5)]]
    xs = rng.normal(0, 1, (STEPS, 8, 3)).astype(np.float32)
    ys = rng.normal(0, 1, (STEPS, 8, 2)).astype(np.float32)
    return params, xs, ys


def _forward(x, w1, b1, w2, y):
    out = (x @ w1.T + b1).tanh() @ w2.T
    return ((out - y) ** 2).mean()


def _run_luminal(backend, make_opt, make_sched=None, clip=None):
    params, xs, ys = _data()
    cx = lm.Graph()
    ws = [cx.parameter(p.shape, name=f"w{i}").set(p) for i, p in enumerate(params)]
    x, y = cx.tensor((8, 3), name="x"), cx.tensor((8, 2), name="y")
    loss = _forward(x, *ws, y).retrieve()
    opt = make_opt(ws)
    opt.minimize(loss, max_grad_norm=clip)
    sched = make_sched(opt) if make_sched else None
    backend.compile(cx)
    losses = []
    for s in range(STEPS):
        x.set(xs[s])
        y.set(ys[s])
        cx.execute()
        losses.append(loss.item())
        if sched:
            sched.step()
    assert opt.step_count == STEPS
    return opt.parameters_now(), losses


def _run_torch(make_opt, make_sched=None, clip=None):
    params, xs, ys = _data()
    ws = [torch.tensor(p, requires_grad=True) for p in params]
    opt = make_opt(ws)
    sched = make_sched(opt) if make_sched else None
    losses = []
    for s in range(STEPS):
        opt.zero_grad()
        loss = _forward(torch.from_numpy(xs[s]), *ws, torch.from_numpy(ys[s]))
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(ws, clip)
        opt.step()
        losses.append(loss.item())
        if sched:
            sched.step()
    return [w.detach().numpy() for w in ws], losses


OPTIMIZERS = {
    "sgd": (lambda p: lm.optim.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd_momentum_wd": (lambda p: lm.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01, dampening=0.1),
                        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01, dampening=0.1)),
    "sgd_nesterov": (lambda p: lm.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
                     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True)),
    "adam": (lambda p: lm.optim.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    "adam_l2_amsgrad": (lambda p: lm.optim.Adam(p, lr=0.01, weight_decay=0.1, amsgrad=True, betas=(0.8, 0.99)),
                        lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1, amsgrad=True, betas=(0.8, 0.99))),
    "adamw": (lambda p: lm.optim.AdamW(p, lr=0.01, weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_matches_torch(backend, name):
    make_lm, make_torch = OPTIMIZERS[name]
    got, got_losses = _run_luminal(backend, make_lm)
    want, want_losses = _run_torch(make_torch)
    np.testing.assert_allclose(got_losses, want_losses, rtol=1e-4, atol=1e-5)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    assert got_losses[-1] < got_losses[0]


SCHEDULES = {
    "step": (lambda o: lm_sched.StepLR(o, 5, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 5, 0.5)),
    "multistep": (lambda o: lm_sched.MultiStepLR(o, [3, 11], 0.3),
                  lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [3, 11], 0.3)),
    "cosine": (lambda o: lm_sched.CosineAnnealingLR(o, 20, 1e-4),
               lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 20, 1e-4)),
    "warmup": (lambda o: lm_sched.LinearLR(o, 0.1, 1.0, 8),
               lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.1, 1.0, 8)),
    "lambda": (lambda o: lm_sched.LambdaLR(o, lambda e: 0.9**e),
               lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 0.9**e)),
    "warmup_then_cosine": (
        lambda o: lm_sched.SequentialLR(o, [lm_sched.LinearLR(o, 0.2, 1.0, 5), lm_sched.CosineAnnealingLR(o, 15)], [5]),
        lambda o: torch.optim.lr_scheduler.SequentialLR(
            o, [torch.optim.lr_scheduler.LinearLR(o, 0.2, 1.0, 5), torch.optim.lr_scheduler.CosineAnnealingLR(o, 15)],
            [5]),
    ),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_torch(backend, name):
    if backend.name == "generic":
        pytest.skip("schedules are Python-side; reference and cpu cover both executors")
    make_lm, make_torch = SCHEDULES[name]
    got, got_losses = _run_luminal(backend, lambda p: lm.optim.SGD(p, lr=0.2, momentum=0.5), make_lm)
    want, want_losses = _run_torch(lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.5), make_torch)
    np.testing.assert_allclose(got_losses, want_losses, rtol=2e-4, atol=1e-5)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=1e-5)


def test_lr_change_does_not_recompile():
    params, xs, ys = _data()
    cx = lm.Graph()
    ws = [cx.parameter(p.shape).set(p) for p in params]
    x, y = cx.tensor((8, 3)).set(xs[0]), cx.tensor((8, 2)).set(ys[0])
    opt = lm.optim.SGD(ws, lr=0.1)
    opt.minimize(_forward(x, *ws, y))
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    program = lm._core.kernel_source(cx._core)
    cx.execute()
    opt.lr = 0.0
    before = opt.parameters_now()
    cx.execute()  # raises if the graph changed after compile()
    after = opt.parameters_now()
    assert lm._core.kernel_source(cx._core) == program
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)  # lr 0: no change


def test_clip_grad_norm_matches_torch(backend):
    got, got_losses = _run_luminal(backend, lambda p: lm.optim.SGD(p, lr=0.5), clip=0.3)
    want, want_losses = _run_torch(lambda p: torch.optim.SGD(p, lr=0.5), clip=0.3)
    np.testing.assert_allclose(got_losses, want_losses, rtol=1e-4, atol=1e-5)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_optimizer_errors():
    cx = lm.Graph()
    w = cx.parameter((3,)).set(np.ones(3))
    with pytest.raises(ValueError, match="empty parameter list"):
        lm.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        lm.optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta1"):
        lm.optim.Adam([w], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="single element"):
        lm.optim.SGD([w], lr=0.1).minimize(w * 2)
    with pytest.raises(TypeError, match="not a Parameter or Tensor"):
        lm.optim.SGD([np.ones(3)], lr=0.1).minimize((w * 2).sum())  # type: ignore[list-item]


# ---------------------------------------------------------------- assign / append

def test_assign_feeds_results_back(backend):
    cx = lm.Graph()
    count = cx.tensor((1,), name="count").set([0.0])
    a, b = cx.tensor((2,)).set([1.0, 2.0]), cx.tensor((2,)).set([3.0, 4.0])
    cx.assign(count, count + 1)
    cx.assign(a, b)  # a swap: both read the previous run's values
    cx.assign(b, a)
    total = (a.sum() + count.sum()).retrieve()
    backend.compile(cx)
    seen = []
    for _ in range(3):
        cx.execute()
        seen.append(total.item())
    assert seen == [3.0 + 0, 7.0 + 1, 3.0 + 2]
    np.testing.assert_array_equal(count.numpy(), [3.0])


def test_append_grows_an_input(backend):
    cx = lm.Graph()
    cache = cx.tensor(("past", 2), name="cache").set(np.zeros((0, 2), np.float32))
    new = cx.tensor(("n", 2), name="new")
    cx.append(cache, new * 2)
    total = (cache.sum() + new.sum() * 0).retrieve()
    backend.compile(cx)
    past = 0
    rows = []
    for n in (3, 1, 2):
        block = np.arange(past * 2, (past + n) * 2, dtype=np.float32).reshape(n, 2)
        cx.set_dim("past", past)
        cx.set_dim("n", n)
        new.set(block)
        cx.execute()
        assert total.item() == sum(r.sum() for r in rows)  # the cache before this step
        rows.append(block * 2)
        past += n
    cx.set_dim("past", past)
    np.testing.assert_array_equal(cache.numpy(), np.concatenate(rows))


@pytest.mark.parametrize("layout", ["permuted size-1 dim", "reshaped", "transposed"])
def test_append_reads_a_same_order_view_without_a_copy(backend, layout):
    """KV caches append (seq, 1, heads, dim) rows that a (1, seq, heads, dim)
    node holds in the same order: its data is appended as is, with no copy
    kernel. A view in another order (a transpose) still gets its copy."""
    cx = lm.Graph()
    x = cx.tensor((1, "n", 2, 3), name="x")
    k = x * 2.0 + 1.0
    if layout == "permuted size-1 dim":
        cache, rows = cx.tensor(("past", 1, 2, 3)), k.permute(1, 0, 2, 3)
    elif layout == "reshaped":
        cache, rows = cx.tensor(("past", 6)), k.reshape(x.shape[1], 6)
    else:
        cache, rows = cx.tensor(("past", 3, 2)), k.reshape(x.shape[1], 2, 3).permute(0, 2, 1)
    cache.set(np.zeros((0, *cache.shape[1:]), np.float32))
    cx.append(cache, rows)
    w_np = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    y = (k.reshape(1, x.shape[1], 6) @ cx.tensor((6, 4)).set(w_np)).retrieve()  # reads k itself
    backend.compile(cx)
    if backend.name == "cpu":  # k's kernel, the product, and for the transpose its copy
        assert cx.kernel_count() == (3 if layout == "transposed" else 2)
    past, want = 0, []
    for n in (2, 1, 3):
        data = np.random.default_rng(n).standard_normal((1, n, 2, 3)).astype(np.float32)
        cx.set_dim("past", past)
        x.set(data)
        cx.execute()
        k_np = data * 2 + 1
        want.append(k_np.reshape(n, 2, 3).transpose(0, 2, 1) if layout == "transposed"
                    else k_np.reshape(n, *cache.shape[1:]))
        np.testing.assert_allclose(y.numpy(), k_np.reshape(1, n, 6) @ w_np, rtol=1e-5, atol=1e-5)
        past += n
    cx.set_dim("past", past)
    np.testing.assert_allclose(cache.numpy(), np.concatenate(want), rtol=1e-6)


def test_feedback_errors():
    cx = lm.Graph()
    a = cx.tensor((2,))
    with pytest.raises(ValueError, match="must be an input"):
        cx.assign(a * 2, a)
    with pytest.raises(ValueError, match="differs"):
        cx.assign(a, cx.tensor((3,)))
    cx.assign(a, a + 1)
    with pytest.raises(ValueError, match="already receives"):
        cx.assign(a, a + 2)
    c = cx.tensor(("p", 2))
    with pytest.raises(ValueError, match="do not extend"):
        cx.append(c, cx.tensor((1, 3)))


# ---------------------------------------------------------------- checkpoints

class _MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 6), nn.Linear(6, 2)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())


def _train(model, steps, ckpt_in=None, ckpt_out=None):
    _, xs, ys = _data(1)
    cx = lm.Graph()
    x, y = cx.tensor((8, 3)), cx.tensor((8, 2))
    loss = nn.functional.mse_loss(model(x), y).retrieve()
    opt = lm.optim.AdamW(model.parameters(), lr=0.01)
    opt.minimize(loss)
    if ckpt_in:
        lm.training.load_checkpoint(ckpt_in, model, opt)
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    start = opt.step_count
    for s in range(start, start + steps):
        x.set(xs[s])
        y.set(ys[s])
        cx.execute()
    if ckpt_out:
        lm.training.save_checkpoint(ckpt_out, model, opt)
    opt.sync_parameters()
    return {k: np.array(v) for k, v in model.state_dict().items()}


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    lm_seed = 3
    np.random.seed(lm_seed)
    init = _MLP().state_dict()
    straight = _MLP()
    straight.load_state_dict(init)
    want = _train(straight, 10)

    first = _MLP()
    first.load_state_dict(init)
    path = tmp_path / "ckpt.safetensors"
    _train(first, 6, ckpt_out=path)
    resumed = _MLP()  # fresh random weights: all must come from the checkpoint
    got = _train(resumed, 4, ckpt_in=path)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model = _MLP()
    path = tmp_path / "ckpt.safetensors"
    before = _train(model, 2, ckpt_out=path)

    def crash(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        _train(model, 2, ckpt_out=path)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["ckpt.safetensors"]  # no temp file left
    restored = _MLP()
    lm.training.load_checkpoint(path, restored)
    for k, v in restored.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_backward_matmuls_go_to_blas():
    """Weight gradients contract over the batch (not the middle axis) and read
    the gradient through relu's strided view: all of them must still be
    matrix products (5 here: 2 forward, dW2, dH, dW1)."""
    cx = lm.Graph()
    x = cx.tensor((16, 12)).set(np.random.default_rng(0).normal(size=(16, 12)))
    w1 = cx.parameter((8, 12)).set(np.random.default_rng(1).normal(size=(8, 12)))
    w2 = cx.parameter((4, 8)).set(np.random.default_rng(2).normal(size=(4, 8)))
    loss = ((x @ w1.T).relu() @ w2.T).square().mean()
    grads = [g.retrieve() for g in lm.grad(loss, [w1, w2])]
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    cx.execute()
    assert lm._core.gemm_count(cx._core) == 5
    tw = [torch.tensor(w.numpy(), requires_grad=True) for w in (w1, w2)]
    t_loss = ((torch.from_numpy(x.numpy()) @ tw[0].T).relu() @ tw[1].T).square().mean()
    t_loss.backward()
    for g, t in zip(grads, tw):
        np.testing.assert_allclose(g.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_loss_readable_after_scheduler_step():
    """torch's loop order: execute, sched.step(), then read the loss. The rate
    steers the next run only, so setting it keeps the last results."""
    cx = lm.Graph()
    w = cx.parameter((3,)).set(np.ones(3, np.float32))
    loss = (w * w).sum().retrieve()
    opt = lm.optim.SGD([w], lr=0.1)
    opt.minimize(loss)
    sched = lm_sched.StepLR(opt, 1, gamma=0.5)
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    seen = []
    for _ in range(3):
        cx.execute()
        sched.step()
        seen.append(loss.item())
    # w *= (1 - 2 lr) each step with lr 0.1, 0.05, 0.025
    np.testing.assert_allclose(seen, [3.0, 3.0 * 0.8**2, 3.0 * (0.8 * 0.9) ** 2], rtol=1e-6)


def test_batched_weight_gradients_are_one_product_each():
    """A 3-D input (batch, seq, features): each weight's gradient sums over
    batch and sequence. It must be one matrix product with k = batch * seq,
    not a product per batch plus a sum over the batch. Here: 2 forward
    products, dW2, dH, dW1 (5) among 9 kernels, with no sum over the batch."""
    rng = np.random.default_rng(0)
    cx = lm.Graph()
    x = cx.tensor((3, 5, 12)).set(rng.normal(size=(3, 5, 12)))
    w1 = cx.parameter((8, 12)).set(rng.normal(size=(8, 12)))
    w2 = cx.parameter((4, 8)).set(rng.normal(size=(4, 8)))
    loss = ((x @ w1.T).relu() @ w2.T).square().mean()
    grads = [g.retrieve() for g in lm.grad(loss, [w1, w2])]
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    cx.execute()
    assert lm._core.gemm_count(cx._core) == 5 and cx.kernel_count() == 9
    tw = [torch.tensor(w.numpy(), requires_grad=True) for w in (w1, w2)]
    t_loss = ((torch.from_numpy(x.numpy()) @ tw[0].T).relu() @ tw[1].T).square().mean()
    t_loss.backward()
    for g, t in zip(grads, tw):
        np.testing.assert_allclose(g.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)
