"""min/max with indices, argmax, prod, var/std, logsumexp, softmax, cumsum/cumprod,
norm and all/any against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import luminal as lm
from helpers import assert_close, check, rand, run_both, to_numpy

INF = float("inf")
NAN = float("nan")


def check_ints(backend, data, torch_fn, lm_fn, atol=0.0, rtol=0.0, grad=True):
    """Like ``check`` for outputs that may be indices: a torch int64 output must
    come back as exact int32 values (luminal dtype "i32"); float outputs are
    compared with the tolerances."""
    arrays = [np.asarray(d, dtype=np.float32) for d in data]
    outs, exps = run_both(backend, arrays, torch_fn, lm_fn, grad=grad)
    for i, (o, e) in enumerate(zip(outs, exps)):
        got = o.numpy()
        assert tuple(o.shape) == tuple(e.shape), f"output {i}: lazy shape {o.shape} != torch {tuple(e.shape)}"
        if e.dtype == torch.int64:
            assert o.dtype == "i32" and got.dtype == np.int32, f"output {i}: dtype {o.dtype}/{got.dtype}"
            np.testing.assert_array_equal(got, e.numpy(), err_msg=f"output {i}")
        else:
            assert_close(got, to_numpy(e), atol, rtol, f"output {i}: ")


def ties(shape, seed=0):
    """Small integers: many ties, so "first index" matters."""
    return np.random.default_rng(seed).integers(-2, 3, size=shape).astype(np.float32)


SPECIAL_ROWS = np.array(
    [
        [1.0, NAN, 3.0, NAN, -1.0],     # NaN wins max and min; first NaN index
        [-INF, -INF, -INF, -INF, -INF],  # all -inf
        [INF, 2.0, INF, -INF, 0.0],      # +inf twice: first
        [INF, INF, INF, INF, INF],
        [0.0, -0.0, 0.0, -0.0, 0.0],     # signed zeros tie
        [-3.4028235e38, 3.4028235e38, 5.0, -5.0, 3.4028235e38],
    ],
    dtype=np.float32,
)

# ---------------------------------------------------------------- amin / max / min


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, 1, -1, (0, 2), (-1, -3)], ids=str)
def test_amin(backend, dim, keepdim):
    check(backend, [(3, 5, 7)], lambda t: t.amin(dim=() if dim is None else dim, keepdim=keepdim),
          lambda x: x.amin(dim, keepdim), atol=0, rtol=0)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_dim_with_ties(backend, op, dim, keepdim):
    """(values, indices) like torch; ties take the first index."""
    # Ties: torch.max(dim) sends the gradient to one index; luminal splits it
    # evenly among the maxima (torch.amax's rule), so only values are compared.
    check_ints(backend, [ties((4, 5, 7), seed=dim + 3)],
               lambda t: tuple(getattr(t, op)(dim, keepdim)), lambda x: tuple(getattr(x, op)(dim, keepdim)),
               grad=False)


def test_max_returns_named_tuple():
    cx = lm.Graph()
    x = cx.tensor((3, 4)).set(ties((3, 4)))
    r = x.max(1)
    assert isinstance(r, lm.ValuesIndices) and r.values is r[0] and r.indices is r[1]
    assert r.indices.dtype == "i32" and r.values.dtype == "f32"
    assert isinstance(x.max(), lm.Tensor) and x.max().shape == ()


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, 1, -1, -2], ids=str)
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_argmin(backend, op, dim, keepdim):
    check_ints(backend, [ties((6, 9), seed=11)], lambda t: getattr(t, op)(dim, keepdim),
               lambda x: getattr(x, op)(dim, keepdim))


@pytest.mark.parametrize("shape", [(1,), (33,), (2, 1, 3), (1, 65)], ids=str)
def test_argmax_odd_shapes(backend, shape):
    check_ints(backend, [rand(shape, seed=5)], lambda t: (t.argmax(-1), t.argmin(0), t.argmax()),
               lambda x: (x.argmax(-1), x.argmin(0), x.argmax()))


def test_max_min_special_values(backend):
    """NaN propagates to the value and its first index; -inf rows pick index 0."""
    x = SPECIAL_ROWS
    fns = lambda t: (*t.max(1), *t.min(1), t.argmax(1), t.argmin(1), t.amin(1), t.amax(0), t.max(), t.min(),
                     t.argmax(), t.argmin())
    check_ints(backend, [x], fns, fns)


def test_max_min_rank0(backend):
    x = np.array(2.5, dtype=np.float32)
    fns = lambda t: (*t.max(0), *t.min(-1, keepdim=True), t.argmax(), t.argmin(0), t.amin(), t.max())
    check_ints(backend, [x], fns, fns)


def test_max_with_other_tensor(backend):
    check(backend, [(3, 4), (4,)], lambda a, b: (a.max(b), a.min(b), torch.max(a, b)),
          lambda a, b: (a.max(b), a.min(b), lm.max(a, b)), atol=0, rtol=0)


def test_argmax_million(backend):
    """Indices stay exact over 1e6 elements (first of two equal maxima)."""
    x = rand((1_000_000,), seed=3)
    x[777_777] = x[999_998] = 5.0
    x[123_457] = -5.0
    check_ints(backend, [x], lambda t: (t.argmax(), t.argmin(0), t.max(0)[1]),
               lambda t: (t.argmax(), t.argmin(0), t.max(0)[1]))


def test_argmax_empty_raises():
    cx = lm.Graph()
    with pytest.raises(ValueError):
        cx.tensor((3, 0)).argmax(1)
    with pytest.raises(IndexError):
        cx.tensor((3, 4)).argmax(2)


# ---------------------------------------------------------------- prod


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, 1, 2, -1, (0, 2)], ids=str)
def test_prod(backend, dim, keepdim):
    def tf(t):
        if dim is None:
            return t.prod().reshape([1] * 3) if keepdim else t.prod()
        if isinstance(dim, tuple):  # torch.prod takes one dim: chain them
            return t.prod(dim[1], keepdim).prod(dim[0], keepdim)
        return t.prod(dim, keepdim)

    x = rand((3, 5, 7), 0.6, 1.5, seed=2) * np.where(ties((3, 5, 7)) > 0, 1, -1).astype(np.float32)
    check(backend, [], tf, lambda t: t.prod(dim, keepdim), data=[x], atol=0, rtol=2e-6)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 33, 64, 65, 1000])
def test_prod_lengths_exact(backend, n):
    """Products of +-1, +-2 are powers of two: exact, signs and all."""
    rng = np.random.default_rng(n)
    x = rng.choice(np.array([-2, -1, 1, 2], dtype=np.float32), size=(3, n))
    x[:, 20:] = np.sign(x[:, 20:])  # keep |product| <= 2**20
    check(backend, [], lambda t: (t.prod(-1), t.prod(0)), lambda t: (t.prod(-1), t.prod(0)),
          data=[x], atol=0, rtol=0)


def test_prod_special_values(backend):
    x = np.array([[2.0, 0.0, 3.0, -1.0], [INF, 0.0, 1.0, 1.0], [INF, -2.0, 1.0, 1.0], [NAN, 0.0, 1.0, 1.0],
                  [-0.5, -0.5, -0.5, 8.0], [1e20, 1e20, 1.0, 1.0]], dtype=np.float32)
    check(backend, [], lambda t: (t.prod(1), t.prod(0)), lambda t: (t.prod(1), t.prod(0)), data=[x], atol=0, rtol=0)


def test_prod_rank0_and_empty(backend):
    check(backend, [()], lambda t: (t.prod(), t.prod(0)), lambda x: (x.prod(), x.prod(0)))
    check(backend, [(3, 0)], lambda t: (t.prod(1), t.prod()), lambda x: (x.prod(1), x.prod()))


# ---------------------------------------------------------------- var / std


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, -1, (0, 2), (1, -1)], ids=str)
@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("op", ["var", "std"])
def test_var_std(backend, op, correction, dim, keepdim):
    check(backend, [(3, 5, 7)], lambda t: getattr(t, op)(dim, correction=correction, keepdim=keepdim),
          lambda x: getattr(x, op)(dim, correction=correction, keepdim=keepdim), atol=1e-6, rtol=1e-5)


def test_var_degenerate(backend):
    """One element (dof 0) gives NaN, correction past n gives inf, like torch; inf data gives NaN."""
    import warnings

    x = np.array([[1.0, 2.0, 3.0], [INF, 1.0, 2.0], [NAN, 1.0, 1.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(backend, [], lambda t: (t[:, :1].var(1), t.var(1, correction=4), t.var(1), t.std(0), t[0, 0].var()),
              lambda t: (t[:, :1].var(1), t.var(1, correction=4), t.var(1), t.std(0), t[0, 0].var()),
              data=[x], atol=1e-6, rtol=1e-6)


def test_var_million_two_pass(backend):
    """A large offset: one-pass E[x^2] - E[x]^2 would lose everything in float32."""
    x = (1000.0 + rand((1_000_000,), 0.0, 1.0, seed=9)).astype(np.float32)
    cx = lm.Graph()
    t = cx.tensor(x.shape).set(x)
    v, s = t.var().retrieve(), t.std(correction=0).retrieve()
    backend.run(cx)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(v.item(), x64.var(ddof=1), rtol=1e-4)
    np.testing.assert_allclose(s.item(), x64.std(), rtol=1e-4)
    assert abs(v.item() - 1 / 12) < 1e-3  # sanity: U(0,1) has variance 1/12


# ---------------------------------------------------------------- logsumexp / softmax


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1, (0, 2)], ids=str)
def test_logsumexp(backend, dim, keepdim):
    check(backend, [(3, 5, 7)], lambda t: t.logsumexp(dim, keepdim), lambda x: x.logsumexp(dim, keepdim),
          atol=1e-5, rtol=1e-5, low=-30, high=30)


def test_logsumexp_special(backend):
    x = np.array([[-INF, -INF, -INF], [INF, 1.0, 2.0], [INF, -INF, 0.0], [NAN, 1.0, 2.0], [1000.0, 1000.0, -1000.0],
                  [-1000.0, -1000.5, -INF], [88.0, 89.0, 90.0]], dtype=np.float32)
    check(backend, [], lambda t: (t.logsumexp(1), t.logsumexp(0, keepdim=True)),
          lambda t: (t.logsumexp(1), t.logsumexp(0, keepdim=True)), data=[x], atol=1e-5, rtol=1e-6)


def test_logsumexp_rank0_and_empty(backend):
    check(backend, [()], lambda t: t.logsumexp(0), lambda x: x.logsumexp(0))
    check(backend, [(2, 0)], lambda t: t.logsumexp(1), lambda x: x.logsumexp(1))


@pytest.mark.parametrize("shape,dim", [((3, 5, 7), 0), ((3, 5, 7), 1), ((3, 5, 7), -1), ((3, 5, 7), -3),
                                       ((1,), 0), ((33,), -1), ((4, 1), 1)], ids=str)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax(backend, op, shape, dim):
    check(backend, [shape], lambda t: getattr(t, op)(dim), lambda x: getattr(x, op)(dim),
          atol=1e-6, rtol=1e-5, low=-8, high=8)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_special(backend, op):
    """Huge logits stay finite (max subtracted); masked -inf entries get 0 / -inf;
    an all -inf row, a NaN or a +inf gives NaN like torch."""
    x = np.array([[1000.0, 999.0, -1000.0, 0.0], [-INF, 1.0, -INF, 2.0], [-INF, -INF, -INF, -INF],
                  [NAN, 1.0, 2.0, 3.0], [INF, 1.0, 2.0, 3.0], [-3.4e38, 3.4e38, 0.0, 1.0]], dtype=np.float32)
    check(backend, [], lambda t: getattr(t, op)(-1), lambda t: getattr(t, op)(-1), data=[x], atol=1e-6, rtol=1e-5)


def test_softmax_rank0(backend):
    check(backend, [()], lambda t: (t.softmax(0), t.log_softmax(-1)), lambda x: (x.softmax(0), x.log_softmax(-1)))


# ---------------------------------------------------------------- cumsum / cumprod


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2])
@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
def test_cumulative(backend, op, dim):
    check(backend, [(3, 5, 7)], lambda t: getattr(t, op)(dim), lambda x: getattr(x, op)(dim),
          atol=1e-6, rtol=1e-5, low=0.5, high=1.5)


@pytest.mark.parametrize("n", [1, 2, 7, 64, 65, 200, 1025])
@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
def test_cumulative_lengths(backend, op, n):
    """Both sides of the triangular/scan switch (64), powers of two and odd."""
    lo, hi = (-1.0, 1.0) if op == "cumsum" else (0.99, 1.01)
    check(backend, [(2, n)], lambda t: getattr(t, op)(-1), lambda x: getattr(x, op)(-1),
          atol=1e-5, rtol=1e-5, low=lo, high=hi)


@pytest.mark.parametrize("n", [6, 100])
@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
def test_cumulative_special(backend, op, n):
    """inf, -inf, NaN and 0 enter the running result exactly as in torch."""
    x = np.ones((4, n), dtype=np.float32)
    x[0, 2], x[0, 4] = INF, -INF     # inf then inf - inf = NaN
    x[1, 1] = NAN
    x[2, 3] = 0.0
    x[2, 1] = INF                    # cumprod: inf * 0 = NaN
    x[3, :] = -1.0                   # cumprod: alternating sign
    check(backend, [], lambda t: getattr(t, op)(1), lambda t: getattr(t, op)(1), data=[x], atol=0, rtol=0)


def test_cumulative_rank0_and_empty(backend):
    check(backend, [()], lambda t: (t.cumsum(0), t.cumprod(-1)), lambda x: (x.cumsum(0), x.cumprod(-1)))
    check(backend, [(3, 0)], lambda t: (t.cumsum(1), t.cumprod(1), t.cumsum(0)),
          lambda x: (x.cumsum(1), x.cumprod(1), x.cumsum(0)))


def test_cumsum_of_view(backend):
    fns = lambda t: (t.T.cumsum(1), t[1::2, 1:].cumsum(0), t.T.cumprod(0))
    check(backend, [(6, 5)], fns, fns, atol=1e-6, rtol=1e-5)


def test_cumsum_million(backend):
    """1e6 elements (log-depth scan): the running sum stays within float32
    rounding of the float64 truth; the last element is the total."""
    x = rand((1_000_000,), 0.0, 1.0, seed=4)
    cx = lm.Graph()
    c = cx.tensor(x.shape).set(x).cumsum(0).retrieve()
    backend.run(cx)
    got = c.numpy()
    want = np.cumsum(x.astype(np.float64))
    assert abs(got[-1] - want[-1]) <= 1e-6 * want[-1]
    assert np.max(np.abs(got - want) / np.maximum(want, 1.0)) < 1e-5


# ---------------------------------------------------------------- norm / all / any


def _torch_norm(p, dim, keepdim):
    def f(t):
        if p == "fro":
            return torch.norm(t, "fro", dim=dim, keepdim=keepdim)
        return torch.linalg.vector_norm(t, p, dim=dim, keepdim=keepdim)

    return f


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 1, -1, (0, 2)], ids=str)
@pytest.mark.parametrize("p", [2, "fro", 1, INF, -INF, 0, 3, 0.5])
def test_norm(backend, p, dim, keepdim):
    x = rand((3, 5, 7), seed=6)
    x[0, 0, :3] = 0.0
    # grad only off the zeros: torch special-cases |x|**p at 0, luminal's log2 gives NaN there
    check(backend, [], _torch_norm(p, dim, keepdim), lambda t: t.norm(p, dim, keepdim), data=[x],
          grad=p not in (3, 0.5), atol=1e-6, rtol=1e-5 if p in (2, "fro", 1, INF, -INF, 0) else 2e-5)


def test_norm_special(backend):
    x = np.array([[3.0, -4.0, 0.0], [INF, 1.0, 0.0], [-INF, 1.0, 2.0], [NAN, 1.0, 0.0], [0.0, 0.0, 0.0],
                  [-3e20, 1.0, 0.5]], dtype=np.float32)  # |x| must not go through x*x
    for p in [2, 1, INF, -INF, 3]:
        check(backend, [], _torch_norm(p, 1, False), lambda t: t.norm(p, 1), data=[x], atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError):
        lm.Graph().tensor((3,)).norm("nuc")


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, -1, (0, 1)], ids=str)
@pytest.mark.parametrize("op", ["all", "any"])
def test_all_any(backend, op, dim, keepdim):
    x = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [NAN, 1.0, -1.0], [INF, -0.0, 3.0], [-INF, 5.0, 1e-30]],
                 dtype=np.float32)
    def tf(t):
        if dim is None:  # torch's all()/any() take no keepdim
            r = getattr(t, op)()
            return r.reshape(1, 1) if keepdim else r
        return getattr(t, op)(dim, keepdim)

    check(backend, [], tf, lambda t: getattr(t, op)(dim, keepdim), data=[x], atol=0, rtol=0)


def test_all_any_rank0_and_empty(backend):
    check(backend, [()], lambda t: (t.all(), t.any(), (t * 0).all(0)), lambda x: (x.all(), x.any(), (x * 0).all(0)))
    check(backend, [(0, 3)], lambda t: (t.all(), t.any(), t.all(0), t.any(0)),
          lambda x: (x.all(), x.any(), x.all(0), x.any(0)))


# ---------------------------------------------------------------- functional API, symbolic dims


def test_functional_forms(backend):
    check(backend, [(4, 6)],
          lambda t: (torch.amin(t, 1), torch.prod(t, 0), torch.var(t, 1), torch.std(t), torch.logsumexp(t, 1),
                     torch.softmax(t, 0), torch.log_softmax(t, 1), torch.cumsum(t, 1), torch.cumprod(t, 0),
                     torch.linalg.vector_norm(t, 1, 1), torch.all(t > 0, 1), torch.any(t > 1, 0)),
          lambda x: (lm.amin(x, 1), lm.prod(x, 0), lm.var(x, 1), lm.std(x), lm.logsumexp(x, 1),
                     lm.softmax(x, 0), lm.log_softmax(x, 1), lm.cumsum(x, 1), lm.cumprod(x, 0),
                     lm.norm(x, 1, 1), lm.all(x > 0, 1), lm.any(x > 1, 0)),
          atol=1e-5, rtol=1e-5)
    check_ints(backend, [ties((4, 6))], lambda t: (*torch.max(t, 1), *torch.min(t, 0), torch.argmax(t, 1)),
               lambda x: (*lm.max(x, 1), *lm.min(x, 0), lm.argmax(x, 1)), grad=False)  # ties


def _symbolic_outputs(x):
    return [x.amin(0), x.argmax(0), x.argmin(1), x.prod(0), x.var(0), x.std(0, correction=0), x.logsumexp(0),
            x.softmax(0), x.log_softmax(0), x.cumsum(0), x.cumprod(0), x.norm(2, 0), (x > 0).all(0), (x > 0).any(0),
            x.max(0)[1]]


@pytest.mark.filterwarnings("ignore:.*degrees of freedom")
def test_symbolic_dims(backend):
    """One graph, compiled once, run with "seq" bound to several values (the
    reduced and scanned dim is symbolic)."""
    cx = lm.Graph()
    x = cx.tensor(("seq", 3), name="x")
    outs = [o.retrieve() for o in _symbolic_outputs(x)]
    for seq in [5, 1, 70, 5]:
        xd = rand((seq, 3), 0.5, 1.5, seed=seq) * np.where(ties((seq, 3), seq) > 0, 1, -1).astype(np.float32)
        x.set(xd)
        backend.run(cx)
        wants = _symbolic_outputs(torch.from_numpy(xd))
        for i, (o, w) in enumerate(zip(outs, wants)):
            if w.dtype == torch.int64:
                assert o.dtype == "i32"
                np.testing.assert_array_equal(o.numpy(), w.numpy(), err_msg=f"seq={seq} output {i}")
            else:
                assert_close(o.numpy(), to_numpy(w), atol=1e-5, rtol=1e-4, what=f"seq={seq} output {i}: ")
