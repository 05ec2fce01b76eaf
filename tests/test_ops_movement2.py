"""Movement ops of issue 3 (split, chunk, unbind, narrow, flip, roll, repeat,
repeat_interleave, pad modes, meshgrid) against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import luminal as lm
from helpers import SPECIALS, assert_close, check, rand, to_numpy

INF = float("inf")
NAN = float("nan")


def specials(shape, seed=0):
    """Random data with NaN, ±inf, ±0 and ±FLT_MAX sprinkled in."""
    rng = np.random.default_rng(seed)
    a = rand(shape, seed=seed).reshape(-1)
    k = min(a.size, len(SPECIALS))
    a[rng.choice(a.size, k, replace=False)] = SPECIALS[:k]
    return a.reshape(shape)


def run_graph(backend, cx, outs):
    for o in outs:
        o.retrieve()
    backend.run(cx)
    return [o.numpy() for o in outs]


# ---------------------------------------------------------------- split / chunk / unbind / narrow

SPLITS = [((7, 4), 2, 0), ((7, 4), 3, -2), ((3, 10), 4, 1), ((3, 10), 10, -1), ((3, 10), 25, 1),
          ((2, 3, 5), [1, 4], -1), ((2, 3, 5), [0, 2, 1], 1), ((6,), [6], 0), ((0, 3), 2, 0), ((4, 0), 3, 0)]


@pytest.mark.parametrize("shape,arg,dim", SPLITS, ids=str)
def test_split(backend, shape, arg, dim):
    check(backend, [shape], lambda t: t.split(arg, dim), lambda x: x.split(arg, dim), atol=0, rtol=0)
    check(backend, [shape], lambda t: torch.split(t, arg, dim), lambda x: lm.split(x, arg, dim=dim), atol=0, rtol=0)


def test_split_pieces_then_math(backend):
    """Pieces are views of the same node: combine them in one graph."""
    check(backend, [(5, 6)], lambda t: (lambda a, b, c: a * 2 + b - c.exp())(*t.split(2, -1)),
          lambda x: (lambda a, b, c: a * 2 + b - c.exp())(*x.split(2, -1)))


def test_split_errors():
    cx = lm.Graph()
    x = cx.tensor((4, 5))
    with pytest.raises(lm.ShapeError):
        x.split([2, 2], 1)  # sums to 4, dim is 5
    with pytest.raises(ValueError):
        x.split(0, 1)
    with pytest.raises(ValueError):
        x.split([3, -1], 0)
    with pytest.raises(lm.ShapeError):  # symbolic dim: how many pieces?
        cx.tensor(("seq", 2)).split(2, 0)
    with pytest.raises(IndexError):
        x.split(2, 2)


@pytest.mark.parametrize("shape,chunks,dim", [((6, 4), 3, 0), ((7, 4), 3, 0), ((2, 5), 5, -1), ((2, 5), 4, 1),
                                              ((6,), 4, 0), ((2, 3), 7, -1), ((0, 3), 3, 0), ((3, 4, 5), 2, -2)],
                         ids=str)
def test_chunk(backend, shape, chunks, dim):
    check(backend, [shape], lambda t: t.chunk(chunks, dim), lambda x: x.chunk(chunks, dim), atol=0, rtol=0)


def test_chunk_errors():
    x = lm.Graph().tensor((4,))
    with pytest.raises(ValueError):
        x.chunk(0)
    with pytest.raises(lm.ShapeError):
        lm.chunk(lm.Graph().tensor(("n",)), 2)


@pytest.mark.parametrize("shape,dim", [((3, 4), 0), ((3, 4), -1), ((2, 3, 5), 1), ((5,), 0), ((1, 1), -2)], ids=str)
def test_unbind(backend, shape, dim):
    check(backend, [shape], lambda t: t.unbind(dim), lambda x: x.unbind(dim), atol=0, rtol=0)


def test_unbind_rank0_raises():
    with pytest.raises(IndexError):
        lm.Graph().tensor(()).unbind()


@pytest.mark.parametrize("dim,start,length", [(0, 1, 3), (-1, 2, 3), (1, -3, 2), (0, 0, 0), (0, 5, 0), (-2, 4, 1)],
                         ids=str)
def test_narrow(backend, dim, start, length):
    check(backend, [(5, 6)], lambda t: t.narrow(dim, start, length), lambda x: x.narrow(dim, start, length),
          atol=0, rtol=0)


def test_narrow_out_of_range_raises():
    x = lm.Graph().tensor((5, 6))
    with pytest.raises(IndexError):
        x.narrow(0, 3, 3)
    with pytest.raises(ValueError):
        x.narrow(0, 0, -1)


# ---------------------------------------------------------------- flip / roll

@pytest.mark.parametrize("shape,dims", [((4, 5), (0,)), ((4, 5), (-1,)), ((4, 5), (0, 1)), ((2, 3, 5), (0, 2)),
                                        ((2, 3, 5), (-1, -2, -3)), ((7,), (0,)), ((2, 3), ()), ((), ())], ids=str)
def test_flip(backend, shape, dims):
    check(backend, [shape], lambda t: t.flip(dims), lambda x: x.flip(dims), atol=0, rtol=0)


def test_flip_is_a_view_and_exact_for_specials(backend):
    data = [specials((3, 5))]
    got = check(backend, [], lambda t: t.flip(-1), lambda x: lm.flip(x, -1), data=data, atol=0, rtol=0)
    cx = lm.Graph()
    x = cx.tensor((3, 5))
    n = cx.node_count()
    x.flip((0, 1))
    assert cx.node_count() == n, "flip must not add nodes"
    assert got[0].shape == (3, 5)


def test_flip_of_views(backend):
    check(backend, [(4, 6)],
          lambda t: (F.pad(t, (2, 1)).flip(-1), t.T.flip(0), t[1:, ::2].flip((0, 1)) * 2),
          lambda x: (x.pad((2, 1)).flip(-1), x.T.flip(0), x[1:, ::2].flip((0, 1)) * 2), atol=0, rtol=0)


def test_flip_duplicate_dim_raises():
    with pytest.raises(ValueError):
        lm.Graph().tensor((3, 4)).flip((0, -2))


ROLLS = [((7,), 2, 0), ((7,), -3, 0), ((7,), 7, 0), ((7,), 15, 0), ((7,), -15, -1), ((3, 5), 0, 1),
         ((3, 5), (1, -2), (0, 1)), ((2, 3, 5), (4, 1), (-1, 0)), ((2, 3, 5), 5, None), ((3, 5), -4, None),
         ((4, 5), (1, 2), (1, 1))]


@pytest.mark.parametrize("shape,shifts,dims", ROLLS, ids=str)
def test_roll(backend, shape, shifts, dims):
    check(backend, [shape], lambda t: t.roll(shifts, dims), lambda x: x.roll(shifts, dims), atol=0, rtol=0)


def test_roll_specials_and_views(backend):
    check(backend, [], lambda t: (t.roll(2, -1), t.T.roll(-1, None), t[:, 1:].roll(1, 0)),
          lambda x: (x.roll(2, -1), x.T.roll(-1, None), x[:, 1:].roll(1, 0)), data=[specials((4, 5))],
          atol=0, rtol=0)


def test_roll_errors():
    x = lm.Graph().tensor((3, 4))
    with pytest.raises(ValueError):
        x.roll((1, 2), 0)
    with pytest.raises(ValueError):
        x.roll((1, 2))


# ---------------------------------------------------------------- repeat / repeat_interleave

REPEATS = [((2, 3), (2, 1)), ((2, 3), (1, 3)), ((2, 3), (3, 2, 2)), ((3,), (2, 1, 4)), ((2, 3), (0, 2)),
           ((), (2, 3)), ((), ()), ((2, 1, 3), (1, 4, 1)), ((2, 3), (1, 1))]


@pytest.mark.parametrize("shape,sizes", REPEATS, ids=str)
def test_repeat(backend, shape, sizes):
    check(backend, [shape], lambda t: t.repeat(sizes), lambda x: x.repeat(*sizes), atol=0, rtol=0)
    check(backend, [shape], lambda t: t.repeat(sizes), lambda x: lm.repeat(x, sizes), atol=0, rtol=0)


def test_repeat_of_views_and_specials(backend):
    check(backend, [], lambda t: (t.T.repeat(2, 2), t[:, ::2].repeat(1, 3) + 1),
          lambda x: (x.T.repeat(2, 2), x[:, ::2].repeat(1, 3) + 1), data=[specials((3, 4))], atol=0, rtol=0)


def test_repeat_too_few_sizes_raises():
    with pytest.raises(lm.ShapeError):
        lm.Graph().tensor((2, 3)).repeat(2)


@pytest.mark.parametrize("shape,r,dim", [((2, 3), 2, None), ((2, 3), 3, 0), ((2, 3), 2, -1), ((2, 3, 4), 2, 1),
                                         ((2, 3), 0, 1), ((2, 3), 1, 0), ((), 3, None), ((5,), 4, -1)], ids=str)
def test_repeat_interleave(backend, shape, r, dim):
    check(backend, [shape], lambda t: t.repeat_interleave(r, dim), lambda x: x.repeat_interleave(r, dim),
          atol=0, rtol=0)
    check(backend, [shape], lambda t: torch.repeat_interleave(t, r, dim=dim),
          lambda x: lm.repeat_interleave(x, r, dim=dim), atol=0, rtol=0)


def test_repeat_interleave_errors():
    cx = lm.Graph()
    x = cx.tensor((3,))
    with pytest.raises(TypeError):
        x.repeat_interleave(cx.tensor((3,), dtype="i32"))
    with pytest.raises(ValueError):
        x.repeat_interleave(-1)


# ---------------------------------------------------------------- pad modes

PAD_MODES = [
    ((2, 5), (2, 1)), ((2, 5), (4, 4)), ((2, 3, 5), (1, 3)), ((2, 3, 5), (0, 2)), ((2, 4, 5), (1, 2, 3, 1)),
    ((1, 2, 4, 5), (2, 2, 1, 3)), ((1, 2, 3, 4, 5), (1, 2, 2, 1, 1, 2)), ((2, 5), (-1, 2)), ((2, 5), (2, -1)),
    ((2, 3, 5), (1, -3, 0, 1)), ((2, 5), (0, 0)),
]


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape,pad", PAD_MODES, ids=str)
def test_pad_modes(backend, mode, shape, pad):
    check(backend, [shape], lambda t: F.pad(t, pad, mode=mode), lambda x: x.pad(pad, mode), atol=0, rtol=0)
    check(backend, [shape], lambda t: F.pad(t, pad, mode=mode), lambda x: lm.pad(x, pad, mode=mode),
          atol=0, rtol=0)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_modes_specials_and_views(backend, mode):
    check(backend, [], lambda t: (F.pad(t, (2, 3, 1, 1), mode=mode), F.pad(t.mT, (1, 2), mode=mode)),
          lambda x: (x.pad((2, 3, 1, 1), mode), x.mT.pad((1, 2), mode=mode)),
          data=[specials((2, 4, 5))], atol=0, rtol=0)


@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
def test_pad_modes_beyond_torch_ranks(backend, mode, np_mode):
    """torch pads the last 1-3 dims of batched inputs only; luminal pads any of them."""
    for shape, pad in [((5,), (2, 3)), ((3, 4), (1, 1, 2, 2)), ((3, 4, 5), (1, 2, 2, 1, 1, 2))]:
        a = rand(shape, seed=len(shape))
        cx = lm.Graph()
        x = cx.tensor(shape).set(a)
        (got,) = run_graph(backend, cx, [x.pad(pad, mode)])
        widths = [(0, 0)] * (len(shape) - len(pad) // 2) + [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)][::-1]
        np.testing.assert_array_equal(got, np.pad(a, widths, mode=np_mode))


def test_pad_constant_mode_and_value(backend):
    """The old ``pad(x, pad, value)`` still works; mode="constant" takes value= like torch."""
    check(backend, [(2, 3)], lambda t: (F.pad(t, (1, 2), value=1.5), F.pad(t, (1, 1, 0, 1), "constant", -INF),
                                        F.pad(t, (1, 0))),
          lambda x: (x.pad((1, 2), 1.5), x.pad((1, 1, 0, 1), "constant", -INF), lm.pad(x, (1, 0), mode="constant")),
          atol=0, rtol=0)


def test_pad_mode_errors():
    x = lm.Graph().tensor((2, 4))
    with pytest.raises(lm.ShapeError):
        x.pad((4, 0), "reflect")  # needs pad < 4
    with pytest.raises(lm.ShapeError):
        x.pad((0, 5), "circular")  # needs pad <= 4
    with pytest.raises(ValueError):
        x.pad((1, 1), "reflect", 2.0)
    with pytest.raises(ValueError):
        x.pad((1, 1), "symmetric")
    with pytest.raises(TypeError):
        x.pad((1, 1), 1.0, value=2.0)
    with pytest.raises(lm.ShapeError):
        lm.Graph().tensor((2, 0)).pad((1, 1), "replicate")


# ---------------------------------------------------------------- meshgrid

@pytest.mark.parametrize("indexing", ["ij", "xy"])
@pytest.mark.parametrize("shapes", [[(3,)], [(3,), (5,)], [(2,), (3,), (4,)], [(), (4,)], [(3,), ()], [(1,), (0,)]],
                         ids=str)
def test_meshgrid(backend, indexing, shapes):
    check(backend, shapes, lambda *ts: torch.meshgrid(*ts, indexing=indexing),
          lambda *xs: lm.meshgrid(*xs, indexing=indexing), atol=0, rtol=0)
    check(backend, shapes, lambda *ts: torch.meshgrid(list(ts), indexing=indexing),
          lambda *xs: lm.meshgrid(list(xs), indexing=indexing), atol=0, rtol=0)


def test_meshgrid_errors():
    cx = lm.Graph()
    with pytest.raises(lm.ShapeError):
        lm.meshgrid(cx.tensor((2, 2)), cx.tensor((3,)))
    with pytest.raises(ValueError):
        lm.meshgrid(cx.tensor((2,)), indexing="ji")
    with pytest.raises(ValueError):
        lm.meshgrid()


# ---------------------------------------------------------------- dtype and symbolic dims

def test_i32_stays_i32(backend):
    cx = lm.Graph()
    a = np.arange(-6, 6).reshape(3, 4)
    x = cx.tensor((3, 4), dtype="i32").set(a)
    outs = [x.flip(0), x.roll(1, 1), x.repeat(2, 1), x.repeat_interleave(2, 0), x.pad((1, 2), "reflect"),
            x.split(3, 1)[1], x.narrow(0, 1, 2), x.unbind(1)[2]]
    got = run_graph(backend, cx, outs)
    t = torch.from_numpy(a)
    wants = [t.flip(0), t.roll(1, 1), t.repeat(2, 1), t.repeat_interleave(2, 0), F.pad(t, (1, 2), mode="reflect"),
             t.split(3, 1)[1], t.narrow(0, 1, 2), t.unbind(1)[2]]
    for i, (o, g, w) in enumerate(zip(outs, got, wants)):
        assert o.dtype == "i32" and g.dtype == np.int32, f"output {i}: {o.dtype} {g.dtype}"
        np.testing.assert_array_equal(g, w.numpy(), err_msg=f"output {i}")


def _symbolic_ops(lib, x, seq):
    if lib == "lm":
        s = lm.Expr.var("seq")
        a, b = x.split([2, s - 2], 0)
        return [x.flip(0), x.flip((0, 1)), x.roll(3, 0), x.roll((-2, 1), (0, 1)), x.narrow(0, 1, s - 2),
                x.narrow(0, -2, 2), a, b * 2, x.pad((1, 1, 2, 1), "reflect"), x.pad((0, 0, 3, 2), "replicate"),
                x.pad((0, 1, 2, 1), "circular"), x.repeat(2, 1), x.repeat_interleave(2, 0), x.chunk(2, 1)[1]]
    a, b = x.split([2, seq - 2], 0)
    return [x.flip(0), x.flip((0, 1)), x.roll(3, 0), x.roll((-2, 1), (0, 1)), x.narrow(0, 1, seq - 2),
            x.narrow(0, -2, 2), a, b * 2, F.pad(x[None], (1, 1, 2, 1), mode="reflect")[0],
            F.pad(x[None], (0, 0, 3, 2), mode="replicate")[0], F.pad(x[None], (0, 1, 2, 1), mode="circular")[0],
            x.repeat(2, 1), x.repeat_interleave(2, 0), x.chunk(2, 1)[1]]


def test_symbolic_dims_one_graph(backend):
    """One graph over a ("seq", 4) input, compiled once, run with seq bound to
    several values: views, rolls and pads follow the bound size."""
    cx = lm.Graph()
    x = cx.tensor(("seq", 4), name="x")
    outs = _symbolic_ops("lm", x, None)
    for o in outs:
        o.retrieve()
    for seq in [5, 9, 3, 5]:
        xd = specials((seq, 4), seed=seq)
        x.set(xd)
        backend.run(cx)
        wants = _symbolic_ops("torch", torch.from_numpy(xd), seq)
        for i, (o, w) in enumerate(zip(outs, wants)):
            assert_close(o.numpy(), to_numpy(w), atol=0, rtol=0, what=f"seq={seq} output {i}: ")
