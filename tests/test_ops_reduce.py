"""Reductions, matmul and symbolic dims against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import luminal as lm
from helpers import SPECIALS, assert_close, check, rand, to_numpy

INF = float("inf")
NAN = float("nan")

# ---------------------------------------------------------------- sum / mean / amax


def _torch_reduce(op, dim, keepdim):
    def f(t):
        if op == "amax":
            return t.amax(dim=() if dim is None else dim, keepdim=keepdim)
        return getattr(t, op)(dim=dim, keepdim=keepdim)

    return f


DIMS = [None, 0, 1, 2, -1, -2, (0, 2), (-1, -3), (0, 1, 2), (2, 0), [1]]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("op", ["sum", "mean", "amax"])
def test_reduce(backend, op, dim, keepdim):
    check(backend, [(3, 5, 7)], _torch_reduce(op, dim, keepdim),
          lambda x: getattr(x, op)(dim, keepdim), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("op", ["sum", "mean", "amax"])
@pytest.mark.parametrize("shape,dim", [((33,), 0), ((7, 13), 1), ((7, 13), 0), ((1,), 0), ((4, 1, 3), 1),
                                       ((13, 1), None), ((2, 3, 4, 5), (1, 3))], ids=str)
def test_reduce_odd_shapes(backend, op, shape, dim):
    check(backend, [shape], _torch_reduce(op, dim, False), lambda x: getattr(x, op)(dim),
          atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("op", ["sum", "mean", "amax"])
def test_reduce_method_defaults(backend, op):
    """No arguments: reduce everything to rank 0."""
    (got,) = check(backend, [(4, 6)], _torch_reduce(op, None, False), lambda x: getattr(x, op)())
    assert got.shape == ()


def test_max_all(backend):
    check(backend, [(3, 5, 7)], lambda t: t.max(), lambda x: x.max(), atol=0, rtol=0)
    check(backend, [(13,)], lambda t: t.max(), lambda x: x.max(), atol=0, rtol=0, low=-9, high=-1)


@pytest.mark.parametrize("name", ["permuted", "sliced", "expanded", "padded", "stepped"])
@pytest.mark.parametrize("op", ["sum", "amax", "mean"])
def test_reduce_of_views(backend, op, name):
    import torch.nn.functional as F

    views = {
        "permuted": (lambda t: t.permute(2, 0, 1), lambda x: x.permute(2, 0, 1)),
        "sliced": (lambda t: t[1:, :-1], lambda x: x[1:, :-1]),
        "expanded": (lambda t: t[:, :1].expand(3, 4, 5), lambda x: x[:, :1].expand(3, 4, 5)),
        "padded": (lambda t: F.pad(t, (2, 1, 0, 3), value=-5.0), lambda x: x.pad((2, 1, 0, 3), -5.0)),
        "stepped": (lambda t: t[::2, :, 1::3], lambda x: x[::2, :, 1::3]),
    }
    tv, lv = views[name]
    for dim in [-1, 1, (0, 2)]:
        check(backend, [(3, 4, 5)], lambda t: _torch_reduce(op, dim, False)(tv(t)),
              lambda x: getattr(lv(x), op)(dim), atol=1e-5, rtol=1e-5)


def test_amax_special_values(backend):
    """NaN anywhere in a row gives NaN (torch); -inf rows stay -inf; +inf wins."""
    x = np.array([[1.0, NAN, 3.0], [-INF, -INF, -INF], [-INF, 2.0, INF], [NAN, INF, -INF],
                  [-3.4028235e38, -1.0, -2.0]], dtype=np.float32)
    check(backend, [], lambda t: (t.amax(-1), t.amax(0), t.max()),
          lambda t: (t.amax(-1), t.amax(0), t.max()), data=[x], atol=0, rtol=0)


def test_sum_special_values(backend):
    x = np.array([[1.0, NAN, 3.0], [INF, 1.0, 2.0], [INF, -INF, 0.0], [-INF, -INF, 5.0]], dtype=np.float32)
    check(backend, [], lambda t: (t.sum(-1), t.mean(-1)), lambda t: (t.sum(-1), t.mean(-1)),
          data=[x], atol=0, rtol=1e-6)


def test_reduce_duplicate_dim_raises():
    cx = lm.Graph()
    x = cx.tensor((2, 3, 4))
    with pytest.raises(ValueError):
        x.sum((0, -3))
    with pytest.raises(IndexError):
        x.sum(3)


# ---------------------------------------------------------------- rank 0 and empty

def test_reduce_rank0_computed(backend):
    """Reducing an already rank-0 (computed) tensor is the identity."""
    check(backend, [(3, 4)], lambda t: (t.sum().sum(), t.sum().mean(), t.amax().amax(), t.sum().sum(0)),
          lambda x: (x.sum().sum(), x.sum().mean(), x.amax().amax(), x.sum().sum(0)))


@pytest.mark.parametrize("op", ["sum", "mean", "amax"])
def test_reduce_rank0_input(backend, op):
    check(backend, [()], _torch_reduce(op, None, False), lambda x: getattr(x, op)())


@pytest.mark.parametrize("shape,dim", [((0,), None), ((0,), 0), ((0, 4), 0), ((3, 0), 1), ((3, 0), -1),
                                       ((2, 0, 3), (0, 1)), ((3, 0), 0)], ids=str)
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_reduce_empty(backend, op, shape, dim):
    """Sum over nothing is 0, mean over nothing is NaN (as torch)."""
    (got,) = check(backend, [shape], _torch_reduce(op, dim, False), lambda x: getattr(x, op)(dim))
    want = np.zeros_like(got) if op == "sum" else np.full_like(got, NAN)
    if 0 not in [shape[d] for d in ([dim] if isinstance(dim, int) else dim or range(len(shape)))]:
        return  # not reducing over the empty dim: result itself is empty
    np.testing.assert_array_equal(got, want)


def test_reduce_empty_keepdim(backend):
    check(backend, [(3, 0, 2)], lambda t: (t.sum(1, keepdim=True), t.mean(1, keepdim=True)),
          lambda x: (x.sum(1, keepdim=True), x.mean(1, keepdim=True)))


# ---------------------------------------------------------------- large reduction

@pytest.mark.parametrize("shape,dim", [((1_000_000,), None), ((1000, 1000), None), ((1000, 1000), 1)],
                         ids=str)
def test_large_sum(backend, shape, dim):
    x = rand(shape, 0.0, 1.0, seed=7)
    cx = lm.Graph()
    t = cx.tensor(shape).set(x)
    s = t.sum(dim).retrieve()
    m = t.mean(dim).retrieve()
    backend.run(cx)
    t64 = torch.from_numpy(x).double()
    want_s = (t64.sum() if dim is None else t64.sum(dim)).numpy()
    want_m = (t64.mean() if dim is None else t64.mean(dim)).numpy()
    np.testing.assert_allclose(s.numpy(), want_s, rtol=1e-4)
    np.testing.assert_allclose(m.numpy(), want_m, rtol=1e-4)
    if dim is None:
        assert abs(s.item() - 500_000) < 2_000  # sanity: it is a sum of 1e6 U(0,1)


def test_large_sum_signed(backend):
    """Mixed signs: error judged against the sum of magnitudes."""
    x = rand((1_000_000,), -1.0, 1.0, seed=8)
    cx = lm.Graph()
    s = cx.tensor(x.shape).set(x).sum().retrieve()
    backend.run(cx)
    want = torch.from_numpy(x).double().sum().item()
    assert abs(s.item() - want) <= 1e-5 * np.abs(x).astype(np.float64).sum()


# ---------------------------------------------------------------- matmul

MATMULS = [
    ((3, 4), (4, 5)),
    ((4,), (4,)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((1,), (1,)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 6)),
    ((1, 3, 4), (2, 4, 5)),
    ((4,), (2, 4, 5)),
    ((2, 3, 4), (4,)),
    ((7, 13), (13, 33)),
    ((1, 1), (1, 1)),
    ((3, 0), (0, 2)),
    ((0, 4), (4, 3)),
]


@pytest.mark.parametrize("sa,sb", MATMULS, ids=str)
@pytest.mark.parametrize("form", ["op", "method", "function"])
def test_matmul(backend, sa, sb, form):
    fns = {
        "op": lambda a, b: a @ b,
        "method": lambda a, b: a.matmul(b),
        "function": lambda a, b: lm.matmul(a, b) if isinstance(a, lm.Tensor) else torch.matmul(a, b),
    }
    f = fns[form]
    check(backend, [sa, sb], f, f, atol=1e-5, rtol=1e-5)


def test_matmul_transposed_and_sliced(backend):
    check(backend, [(5, 3), (5, 6)],
          lambda a, b: (a.T @ b, (a.T @ b[:, ::2]).sum(-1), a.mT @ a),
          lambda a, b: (a.T @ b, (a.T @ b[:, ::2]).sum(-1), a.mT @ a), atol=1e-5, rtol=1e-5)


def test_matmul_chain(backend):
    """A two-layer MLP-ish chain: x @ w1 -> relu -> @ w2."""
    def f(x, w1, w2):
        h = x @ w1
        return (h * (h > 0)) @ w2

    check(backend, [(8, 16), (16, 32), (32, 4)], f, f, atol=1e-4, rtol=1e-5)


def test_matmul_bad_raises():
    cx = lm.Graph()
    with pytest.raises(lm.ShapeError):
        cx.tensor((3, 4)) @ cx.tensor((5, 2))
    with pytest.raises(lm.ShapeError):
        cx.tensor(()) @ cx.tensor((3,))


# ---------------------------------------------------------------- symbolic dims

def _symbolic_outputs(x, y):
    """Same expressions for luminal (x: ("seq", 5), y: ("seq",)) and torch."""
    is_lm = isinstance(x, lm.Tensor)
    cat = lm.cat if is_lm else torch.cat
    return [
        (x.exp() + 1).sum(-1),
        x.mean(0),
        x.mean(),
        x.mean(0, keepdim=True),
        x[:-1] * 2,
        x[1:].sum(0),
        x.sum(0, keepdim=True),
        x.amax(0),
        x.T @ x,
        x.reshape(-1),
        x * y.unsqueeze(-1),
        (y - y.mean()).exp() / (y - y.mean()).exp().sum(),
        cat([x, x[:, :2]], 1),
        cat([x, x * 3], 0),
    ]


def test_symbolic_dims(backend):
    """One graph, compiled once, executed at several sizes of "seq"."""
    cx = lm.Graph()
    x = cx.tensor(("seq", 5), name="x")
    y = cx.tensor(("seq",), name="y")
    outs = [o.retrieve() for o in _symbolic_outputs(x, y)]
    assert isinstance(x.shape[0], lm.Expr)
    for seq in [1, 3, 8, 3]:
        xd = rand((seq, 5), seed=seq)
        yd = rand((seq,), seed=100 + seq)
        x.set(xd)
        y.set(yd)
        assert cx.dims["seq"] == seq
        backend.run(cx)
        wants = _symbolic_outputs(torch.from_numpy(xd), torch.from_numpy(yd))
        for i, (o, w) in enumerate(zip(outs, wants)):
            assert_close(o.numpy(), to_numpy(w), atol=1e-5, rtol=1e-5, what=f"seq={seq} output {i}: ")


def test_symbolic_explicit_set_dim(backend):
    """cx.set_dim before setting data; a symbolic mean uses the bound value."""
    cx = lm.Graph()
    x = cx.tensor(("seq", 3), name="x")
    m = x.mean(0).retrieve()
    n = cx.constant("seq").retrieve()
    for seq in [2, 7]:
        cx.set_dim("seq", seq)
        assert cx.dims["seq"] == seq
        xd = rand((seq, 3), seed=seq)
        x.set(xd)
        backend.run(cx)
        np.testing.assert_allclose(m.numpy(), xd.astype(np.float64).mean(0), rtol=1e-5, atol=1e-6)
        assert n.item() == seq


def test_symbolic_two_dims(backend):
    cx = lm.Graph()
    x = cx.tensor(("b", "s", 4), name="x")
    outs = [x.mean((0, 1)).retrieve(), x.sum(1).retrieve(), x[:, -1].retrieve(),
            x.permute(1, 0, 2).reshape(-1, 4).retrieve()]
    for b, s in [(2, 3), (1, 5)]:
        xd = rand((b, s, 4), seed=b * 10 + s)
        x.set(xd)
        backend.run(cx)
        t = torch.from_numpy(xd)
        wants = [t.mean((0, 1)), t.sum(1), t[:, -1], t.permute(1, 0, 2).reshape(-1, 4)]
        for o, w in zip(outs, wants):
            assert_close(o.numpy(), to_numpy(w), atol=1e-5, rtol=1e-5, what=f"b={b} s={s}: ")
