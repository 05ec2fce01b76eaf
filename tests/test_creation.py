"""arange, zeros/ones/full(_like), eye, linspace, tril/triu against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import luminal as lm
from helpers import assert_close, check, rand, to_numpy

INF = float("inf")
NAN = float("nan")


def compare(t: lm.Tensor, want: torch.Tensor, atol: float = 0.0, rtol: float = 0.0, what: str = "") -> None:
    """Integer torch results must come back as exact int32 ("i32"); floats as float32."""
    got = t.numpy()
    lazy = tuple(d.eval(t.graph.dims) if isinstance(d, lm.Expr) else d for d in t.shape)  # symbolic: as bound
    assert lazy == tuple(want.shape), f"{what}lazy shape {t.shape} = {lazy} != torch {tuple(want.shape)}"
    if want.dtype in (torch.int64, torch.int32):
        assert t.dtype == "i32" and got.dtype == np.int32, f"{what}dtype {t.dtype} / {got.dtype}"
        np.testing.assert_array_equal(got, want.numpy(), err_msg=what)
    elif want.dtype == torch.bool:
        assert t.dtype == "bool" and got.dtype == np.bool_, f"{what}dtype {t.dtype} / {got.dtype}"
        np.testing.assert_array_equal(got, want.numpy(), err_msg=what)
    else:
        assert got.dtype == np.float32, f"{what}dtype {got.dtype}"
        assert_close(got, to_numpy(want), atol, rtol, what)


def run(backend, build):
    """``build(cx)`` returns luminal tensors; retrieve, compile, execute."""
    cx = lm.Graph()
    outs = build(cx)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    for o in outs:
        o.retrieve()
    backend.run(cx)
    return outs


# ---------------------------------------------------------------- arange

INT_ARANGES = [(10,), (0,), (1,), (3, 17, 4), (7, -5, -3), (5, 5), (-3, 4), (-8, -1, 2), (0, 2**20, 9999),
               (1_000_003,)]
FLOAT_ARANGES = [(0.0, 1.0, 0.1), (-2.5, 3, 0.7), (1, 2.5, 0.5), (10.0, -3.0, -0.37), (2.5,), (0, 100, 0.3)]


@pytest.mark.parametrize("args", INT_ARANGES, ids=str)
def test_arange_int_exact(backend, args):
    (a,) = run(backend, lambda cx: cx.arange(*args))
    compare(a, torch.arange(*args))


def test_arange_is_a_leaf_read_through_views(backend):
    """An integer arange is one leaf valued by its index (no nodes per binary
    digit), read right through reshapes, permutes, slices, pads and
    broadcasts, and with a symbolic length one compile serves every binding."""
    cx = lm.Graph()
    a = cx.arange(24)
    assert cx.node_count() == 1
    v = a.reshape(2, 3, 4).permute(2, 0, 1)[1:, :, ::2]  # (3, 2, 2)
    padded = lm.pad(a.reshape(4, 6), (1, 2))  # (4, 9), zeros at the sides
    outs = [v.float() * 1.0, padded.float() + 0.5, a.reshape(4, 6).float().unsqueeze(0).expand(3, 4, 6) * 2.0,
            (cx.arange("n").float() * 3.0 + cx.arange("n").float().unsqueeze(1))]
    for o in outs:
        o.retrieve()
    cx.set_dim("n", 5)
    backend.run(cx)
    t = torch.arange(24)
    compare(outs[0], t.reshape(2, 3, 4).permute(2, 0, 1)[1:, :, ::2].float())
    compare(outs[1], torch.nn.functional.pad(t.reshape(4, 6), (1, 2)).float() + 0.5)
    compare(outs[2], t.reshape(4, 6).float().expand(3, 4, 6) * 2.0)
    for n in (5, 9, 1):
        cx.set_dim("n", n)
        cx.execute()
        m = torch.arange(n).float()
        compare(outs[3], m * 3.0 + m.unsqueeze(1), what=f"n={n}: ")
    cx.set_dim("n", 2**31)  # kernels convert indices through int32
    with pytest.raises(lm.ExecutionError, match=r"shorter than 2\*\*31"):
        cx.execute()


@pytest.mark.parametrize("args", FLOAT_ARANGES, ids=str)
def test_arange_float(backend, args):
    """torch rounds start + i*step computed in double; float32 math may differ by an ulp."""
    (a,) = run(backend, lambda cx: cx.arange(*args))
    want = torch.arange(*args)
    assert want.dtype == torch.float32
    compare(a, want, atol=1e-6, rtol=2e-6)


def test_arange_dtype_and_current_graph(backend):
    def build(cx):
        with cx:
            return lm.arange(5, dtype="f32"), lm.arange(2, 9, 3), lm.arange(0, 3, 0.5) * 2, lm.arange(4) + 0.5

    a, b, c, d = run(backend, build)
    assert a.dtype == "f32" and a.numpy().dtype == np.float32 and a.numpy().tolist() == [0, 1, 2, 3, 4]
    compare(b, torch.arange(2, 9, 3))
    compare(c, torch.arange(0, 3, 0.5) * 2)
    compare(d, torch.arange(4) + 0.5)


def test_arange_errors():
    cx = lm.Graph()
    with pytest.raises(ValueError):
        cx.arange(0, 5, 0)
    with pytest.raises(ValueError, match="inconsistent"):
        cx.arange(5, 0, 1)
    with pytest.raises(ValueError):
        cx.arange(0.0, 1.0, -0.1)
    with pytest.raises(TypeError):
        cx.arange("seq", 5, 0.5)
    with pytest.raises(RuntimeError, match="no current graph"):
        lm.arange(5)
    with pytest.raises(RuntimeError, match=r"graph\.zeros"):
        lm.zeros(2, 3)


def test_nested_current_graph():
    outer, inner = lm.Graph(), lm.Graph()
    with outer:
        a = lm.arange(3)
        with inner:
            b = lm.ones(2)
        c = lm.eye(2)
    assert a.graph is outer and b.graph is inner and c.graph is outer


# ---------------------------------------------------------------- symbolic


def _symbolic(lib, cx, x, seq, k):
    """The same creation ops in luminal (dims from names) and torch (ints)."""
    if lib == "lm":
        return [cx.arange("seq"), cx.arange(2, "seq", 3), cx.arange("seq", -4, -2), cx.eye("seq", "k"),
                cx.linspace(-1.0, 2.0, "seq"), cx.zeros(("seq", 3)), cx.full(("k",), "seq"), cx.ones("k", "seq"),
                lm.tril(x, 1), lm.triu(x, -2), lm.zeros_like(x) + x, x + cx.arange("k"), cx.arange(5, "seq")]
    return [torch.arange(seq), torch.arange(2, seq, 3) if seq >= 2 else torch.arange(0),
            torch.arange(seq, -4, -2), torch.eye(seq, k), torch.linspace(-1.0, 2.0, seq), torch.zeros(seq, 3),
            torch.full((k,), seq), torch.ones(k, seq), torch.tril(x, 1), torch.triu(x, -2),
            torch.zeros_like(x) + x, x + torch.arange(k),
            torch.arange(5, max(seq, 5))]  # torch raises for end < start; a symbolic bound gives empty


def test_symbolic_creation(backend):
    """One graph, compiled once; "seq" and "k" bound to several values."""
    cx = lm.Graph()
    x = cx.tensor(("seq", "k"), name="x")
    outs = [o.retrieve() for o in _symbolic("lm", cx, x, None, None)]
    for seq, k in [(7, 4), (1, 3), (12, 5), (0, 2), (7, 4)]:
        xd = rand((seq, k), seed=seq + k)
        x.set(xd)
        backend.run(cx)
        wants = _symbolic("torch", None, torch.from_numpy(xd), seq, k)
        for i, (o, w) in enumerate(zip(outs, wants)):
            compare(o, w, atol=1e-6, rtol=1e-6, what=f"seq={seq} k={k} output {i}: ")


# ---------------------------------------------------------------- full / zeros / ones


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 0), (1, 4, 1)], ids=str)
def test_zeros_ones_full(backend, shape):
    outs = run(backend, lambda cx: (cx.zeros(shape), cx.ones(*shape), cx.full(shape, 7), cx.full(shape, -2.5),
                                    cx.full(shape, INF), cx.full(shape, NAN)))
    wants = [torch.zeros(shape), torch.ones(shape), torch.full(shape, 7), torch.full(shape, -2.5),
             torch.full(shape, INF), torch.full(shape, NAN)]
    for i, (o, w) in enumerate(zip(outs, wants)):
        compare(o, w, what=f"output {i}: ")


def test_full_dtypes():
    cx = lm.Graph()
    assert cx.full((2,), 3).dtype == "i32" and cx.full((2,), 3.0).dtype == "f32"
    assert cx.zeros(2, dtype="i32").dtype == "i32"
    h = cx.full((2,), 0.1, dtype="f16").retrieve()
    b = cx.full((2,), 1.00390625, dtype="bf16").retrieve()
    cx.execute()
    assert h.numpy()[0] == np.float32(np.float16(0.1))  # stored rounded, as an f16 input would be
    assert b.numpy()[0] == 1.0
    with pytest.raises(ValueError):
        cx.full((2,), 1.5, dtype="i32")
    with pytest.raises(ValueError):
        cx.full((2,), 1.0, dtype="f64")


def test_like(backend):
    def build(cx):
        x = cx.tensor((3, 4), name="x").set(rand((3, 4)))
        i = cx.tensor((2,), name="i", dtype="i32").set(np.array([4, -1]))
        return (lm.zeros_like(x), lm.ones_like(x) * x, lm.full_like(x, 2.5), lm.full_like(i, 7), lm.zeros_like(i),
                lm.ones_like(i, dtype="f32"))

    outs = run(backend, build)
    x, i = torch.from_numpy(rand((3, 4))), torch.tensor([4, -1])
    wants = [torch.zeros_like(x), torch.ones_like(x) * x, torch.full_like(x, 2.5), torch.full_like(i, 7),
             torch.zeros_like(i), torch.ones_like(i, dtype=torch.float32)]
    for n, (o, w) in enumerate(zip(outs, wants)):
        compare(o, w, what=f"output {n}: ")


# ---------------------------------------------------------------- eye


@pytest.mark.parametrize("nm", [(1,), (4,), (3, 5), (6, 2), (0,), (2, 0), (33, 31)], ids=str)
def test_eye(backend, nm):
    (e,) = run(backend, lambda cx: cx.eye(*nm))
    compare(e, torch.eye(*nm))


# ---------------------------------------------------------------- linspace


@pytest.mark.parametrize("args", [(0, 1, 7), (-3.3, 10.1, 100), (5, -5, 11), (0, 1, 2), (2.0, 3.0, 1), (0, 1, 0),
                                  (1e-3, 1e3, 1001), (-1, 1, 1000), (4, 4, 5)], ids=str)
def test_linspace(backend, args):
    """Both ends exact (the second half counts down from end like torch); the
    interior within an ulp (torch may fuse multiply-add)."""
    (a,) = run(backend, lambda cx: cx.linspace(*args))
    want = torch.linspace(*args)
    compare(a, want, atol=1e-7, rtol=1e-6)
    if args[2] >= 1:
        assert a.numpy()[0] == want[0].item() and a.numpy()[-1] == want[-1].item()


# ---------------------------------------------------------------- tril / triu

TRI_SHAPES = [(4, 6), (6, 4), (1, 1), (5, 5), (3, 5, 7), (2, 3, 4, 4), (1, 9)]


@pytest.mark.parametrize("shape", TRI_SHAPES, ids=str)
@pytest.mark.parametrize("op", ["tril", "triu"])
def test_tril_triu(backend, op, shape):
    for k in sorted({0, 1, -1, 2, -2, shape[-1] - 1, shape[-1], 1 - shape[-2], -shape[-2], 7, -7}):
        check(backend, [shape], lambda t: getattr(torch, op)(t, k), lambda x: getattr(lm, op)(x, k), atol=0, rtol=0)


@pytest.mark.parametrize("op", ["tril", "triu"])
def test_tril_triu_special_values(backend, op):
    """inf and NaN cut away become 0 (a mask product would give NaN); kept ones stay."""
    x = np.array([[NAN, INF, -INF, 1.0], [INF, NAN, NAN, -INF], [-0.0, -INF, NAN, INF]], dtype=np.float32)
    for k in [-1, 0, 1, 2]:
        check(backend, [], lambda t: getattr(torch, op)(t, k), lambda t: getattr(lm, op)(t, k), data=[x],
              atol=0, rtol=0)


def test_tril_of_views(backend):
    fns = {
        "torch": lambda t: (torch.tril(t.T), torch.triu(t[1:, ::2], 1), torch.tril(t[:3].expand(2, 3, 6), -1)),
        "lm": lambda x: (lm.tril(x.T), lm.triu(x[1:, ::2], 1), lm.tril(x[:3].expand(2, 3, 6), -1)),
    }
    check(backend, [(5, 6)], fns["torch"], fns["lm"], atol=0, rtol=0)


def test_tril_needs_a_matrix():
    with pytest.raises(lm.ShapeError):
        lm.tril(lm.Graph().tensor((3,)))


def test_causal_mask_from_arange(backend):
    """arange-built masks feeding a computation: a causal cumulative mean."""
    def build(cx):
        x = cx.tensor((6, 3), name="x").set(rand((6, 3)))
        i = cx.arange(6)
        mask = i.unsqueeze(1).ge(i.unsqueeze(0))  # (6, 6) lower triangle, 1 on the diagonal
        return mask, (mask @ x) / (i + 1).unsqueeze(1), lm.tril(cx.ones(6, 6)) - mask

    mask, cummean, zero = run(backend, build)
    x = torch.from_numpy(rand((6, 3)))
    compare(mask, torch.tril(torch.ones(6, 6)).bool())
    compare(cummean, x.cumsum(0) / torch.arange(1, 7).unsqueeze(1), atol=1e-6, rtol=1e-6)
    compare(zero, torch.zeros(6, 6))
