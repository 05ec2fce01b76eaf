"""Indexing by index tensors (gather, index_select, take_along_dim, embedding,
one_hot, ``x[ids]``) against PyTorch, including the documented differences:
negative indices wrap everywhere, out-of-range and NaN indices read 0, and a
NaN on the summed source line leaks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import luminal as lm
from helpers import rand

INF = float("inf")
NAN = float("nan")


def run(backend, inputs, torch_fn, lm_fn):
    """``inputs``: (array, dtype) pairs; "i32" inputs go to torch as int64.
    Outputs must match torch exactly in shape, value and kind (integer torch
    results come back as "i32" / int32)."""
    cx = lm.Graph()
    xs = [cx.tensor(np.shape(a), name=f"x{i}", dtype=dt).set(np.asarray(a)) for i, (a, dt) in enumerate(inputs)]
    out = lm_fn(*xs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for o in outs:
        o.retrieve()
    backend.run(cx)
    ts = [torch.from_numpy(np.asarray(a, dtype=np.int64 if dt == "i32" else np.float32)) for a, dt in inputs]
    exp = torch_fn(*ts)
    exps = list(exp) if isinstance(exp, (tuple, list)) else [exp]
    assert len(outs) == len(exps)
    got_all = []
    for i, (o, e) in enumerate(zip(outs, exps)):
        got = o.numpy()
        want = e.numpy()
        assert tuple(o.shape) == want.shape and got.shape == want.shape, f"output {i}: {o.shape} vs {want.shape}"
        if e.is_floating_point():
            assert o.dtype == "f32" and got.dtype == np.float32, f"output {i}: dtype {o.dtype}"
            np.testing.assert_array_equal(got, want.astype(np.float32), err_msg=f"output {i}")
        else:
            assert o.dtype == "i32" and got.dtype == np.int32, f"output {i}: dtype {o.dtype}"
            np.testing.assert_array_equal(got, want, err_msg=f"output {i}")
        got_all.append(got)
    return got_all


def ints(shape, lo, hi, seed=0):
    return np.random.default_rng(seed).integers(lo, hi, size=shape).astype(np.int32)


def with_infs(shape, seed=0):
    a = rand(shape, seed=seed)
    flat = a.reshape(-1)
    flat[::3] = INF
    flat[1::5] = -INF
    return a


# ---------------------------------------------------------------- gather

GATHERS = [((3, 5), 1, (3, 4)), ((3, 5), -1, (2, 7)), ((3, 5), 0, (4, 5)), ((3, 5), 0, (2, 3)),
           ((2, 3, 5), 1, (2, 6, 5)), ((2, 3, 5), -2, (1, 2, 4)), ((2, 3, 5), 2, (2, 3, 1)), ((7,), 0, (9,)),
           ((4, 1), 1, (4, 3))]


@pytest.mark.parametrize("shape,dim,ishape", GATHERS, ids=str)
def test_gather(backend, shape, dim, ishape):
    n = shape[dim]
    idx = ints(ishape, -n, n, seed=len(ishape))
    run(backend, [(rand(shape), "f32"), (idx, "i32")],
        lambda t, i: (torch.gather(t, dim, i % n), t.gather(dim, i % n)),  # torch refuses negatives: wrap for it
        lambda x, i: (lm.gather(x, dim, i), x.gather(dim, i)))


def test_gather_rank0(backend):
    run(backend, [(np.float32(2.5), "f32"), (np.int32(0), "i32")], lambda t, i: t.gather(0, i),
        lambda x, i: x.gather(0, i))


def test_gather_inf_exact_and_i32_source(backend):
    idx = ints((4, 6), 0, 6, seed=1)
    run(backend, [(with_infs((4, 6)), "f32"), (idx, "i32")], lambda t, i: t.gather(1, i), lambda x, i: x.gather(1, i))
    src = ints((4, 6), -1000, 1000, seed=2)
    run(backend, [(src, "i32"), (idx, "i32")], lambda t, i: t.gather(1, i), lambda x, i: x.gather(1, i))


def test_gather_of_views(backend):
    idx = ints((5, 2), -3, 3, seed=3)
    run(backend, [(rand((3, 5)), "f32"), (idx, "i32")],
        lambda t, i: (t.T.gather(1, i % 3), t.flip(0).T.gather(-1, i % 3) * 2),
        lambda x, i: (x.T.gather(1, i), x.flip(0).T.gather(-1, i) * 2))


def test_gather_errors():
    cx = lm.Graph()
    x = cx.tensor((3, 4))
    with pytest.raises(lm.ShapeError):
        x.gather(1, cx.tensor((3,), dtype="i32"))  # rank differs
    with pytest.raises(lm.ShapeError):
        x.gather(1, cx.tensor((4, 2), dtype="i32"))  # larger off dim
    with pytest.raises(ValueError):
        x.gather(1, lm.Graph().tensor((3, 2), dtype="i32"))
    with pytest.raises(TypeError):
        x.gather(1, [[0]])


# ---------------------------------------------------------------- index_select

@pytest.mark.parametrize("shape,dim", [((5, 3), 0), ((5, 3), 1), ((5, 3), -1), ((2, 5, 3), 1), ((2, 3, 5), -1),
                                       ((7,), 0)], ids=str)
def test_index_select(backend, shape, dim):
    n = shape[dim]
    idx = np.array([0, n - 1, -1, 1, -n, 0, n // 2], dtype=np.int32)
    run(backend, [(rand(shape), "f32"), (idx, "i32")],
        lambda t, i: (torch.index_select(t, dim, i % n), t.index_select(dim, i % n)),
        lambda x, i: (lm.index_select(x, dim, i), x.index_select(dim, i)))


def test_index_select_rank_edges(backend):
    run(backend, [(rand((4, 3)), "f32"), (np.int32(-2), "i32")], lambda t, i: t.index_select(0, i % 4),
        lambda x, i: x.index_select(0, i))
    run(backend, [(np.float32(1.5), "f32"), (np.array([0], np.int32), "i32")], lambda t, i: t.index_select(0, i),
        lambda x, i: x.index_select(0, i))
    run(backend, [(rand((4, 3)), "f32"), (np.zeros((0,), np.int32), "i32")], lambda t, i: t.index_select(1, i),
        lambda x, i: x.index_select(1, i))


def test_index_select_inf_and_i32(backend):
    idx = np.array([2, 0, 3, 3, -1], dtype=np.int32)
    run(backend, [(with_infs((4, 5)), "f32"), (idx, "i32")], lambda t, i: (t.index_select(0, i % 4),
                                                                          t.index_select(1, i % 5)),
        lambda x, i: (x.index_select(0, i), x.index_select(1, i)))
    run(backend, [(ints((4, 5), -50, 50), "i32"), (idx, "i32")], lambda t, i: t.index_select(1, i % 5),
        lambda x, i: x.index_select(1, i))


def test_index_select_2d_index_raises():
    cx = lm.Graph()
    with pytest.raises(lm.ShapeError):
        cx.tensor((3, 4)).index_select(0, cx.tensor((2, 2), dtype="i32"))


# ---------------------------------------------------------------- take_along_dim

@pytest.mark.parametrize("shape,ishape,dim", [((3, 5), (3, 2), 1), ((3, 5), (1, 4), 1), ((3, 5), (3, 1), 0),
                                              ((2, 3, 4), (2, 1, 3), -1), ((2, 1, 4), (1, 3, 2), 2),
                                              ((3, 5), (6,), None), ((2, 3, 4), (2, 2), None)], ids=str)
def test_take_along_dim(backend, shape, ishape, dim):
    n = int(np.prod(shape)) if dim is None else shape[dim]
    idx = ints(ishape, -n, n, seed=5)
    wrap = (lambda i: i % n) if dim is None else (lambda i: i)  # torch wraps negatives only with a dim
    run(backend, [(rand(shape), "f32"), (idx, "i32")],
        lambda t, i: (torch.take_along_dim(t, wrap(i), dim), t.take_along_dim(wrap(i), dim)),
        lambda x, i: (lm.take_along_dim(x, i, dim), x.take_along_dim(i, dim)))


def test_take_along_dim_with_argmax(backend):
    run(backend, [(with_infs((4, 5), seed=1), "f32")],
        lambda t: t.take_along_dim(t.argmin(-1, keepdim=True), -1),
        lambda x: x.take_along_dim(x.argmin(-1, keepdim=True), -1))


def test_take_along_dim_rank_mismatch_raises():
    cx = lm.Graph()
    with pytest.raises(lm.ShapeError):
        cx.tensor((3, 4)).take_along_dim(cx.tensor((2,), dtype="i32"), 1)


# ---------------------------------------------------------------- embedding / one_hot

@pytest.mark.parametrize("ishape", [(5,), (2, 3), (), (2, 1, 4)], ids=str)
def test_embedding(backend, ishape):
    ids = ints(ishape, 0, 7, seed=6)
    run(backend, [(ids, "i32"), (with_infs((7, 3)), "f32")],
        lambda i, w: F.embedding(i, w), lambda i, w: lm.embedding(i, w))
    run(backend, [(ids, "i32"), (ints((7, 3), -9, 9), "i32")],
        lambda i, w: F.embedding(i, w, padding_idx=0), lambda i, w: lm.embedding(i, w, padding_idx=0))


def test_embedding_errors():
    cx = lm.Graph()
    ids = cx.tensor((3,), dtype="i32")
    with pytest.raises(lm.ShapeError):
        lm.embedding(ids, cx.tensor((4,)))
    with pytest.raises(NotImplementedError):
        lm.embedding(ids, cx.tensor((4, 2)), max_norm=1.0)


@pytest.mark.parametrize("ishape,n", [((6,), 4), ((2, 3), 5), ((), 3), ((4,), 1)], ids=str)
def test_one_hot(backend, ishape, n):
    labels = ints(ishape, 0, n, seed=7)
    run(backend, [(labels, "i32")], lambda t: F.one_hot(t, n), lambda x: lm.one_hot(x, n))


def test_one_hot_symbolic_classes(backend):
    cx = lm.Graph()
    x = cx.tensor((4,), dtype="i32")
    out = lm.one_hot(x, "k").retrieve()
    for k, labels in [(5, [0, 4, 2, 4]), (3, [2, 1, 0, 0])]:
        x.set(np.array(labels))
        cx.set_dim("k", k)
        backend.run(cx)
        assert out.dtype == "i32"
        np.testing.assert_array_equal(out.numpy(), F.one_hot(torch.tensor(labels), k).numpy())


def test_one_hot_needs_num_classes():
    with pytest.raises(ValueError):
        lm.one_hot(lm.Graph().tensor((3,), dtype="i32"))


# ---------------------------------------------------------------- advanced indexing x[ids]

GETITEMS = {
    "first": (lambda t, i: t[i], lambda x, i: x[i], 0),
    "second": (lambda t, i: t[:, i], lambda x, i: x[:, i], 1),
    "last_ellipsis": (lambda t, i: t[..., i], lambda x, i: x[..., i], 2),
    "after_int": (lambda t, i: t[1, i], lambda x, i: x[1, i], 1),
    "int_after": (lambda t, i: t[i, 2], lambda x, i: x[i, 2], 0),
    "int_then_slice_then_idx": (lambda t, i: t[0, :, i], lambda x, i: x[0, :, i], 2),
    "with_none": (lambda t, i: t[None, :, i, 1:], lambda x, i: x[None, :, i, 1:], 1),
    "after_slice": (lambda t, i: t[1:, i], lambda x, i: x[1:, i], 1),
    "ellipsis_after": (lambda t, i: t[i, ...], lambda x, i: x[i, ...], 0),
}


@pytest.mark.parametrize("ishape", [(4,), (2, 3), ()], ids=str)
@pytest.mark.parametrize("name", list(GETITEMS))
def test_getitem_tensor(backend, name, ishape):
    tfn, lfn, axis = GETITEMS[name]
    shape = (3, 4, 5)
    n = shape[axis]
    idx = ints(ishape, -n, n, seed=8)  # torch wraps negatives in x[ids]
    run(backend, [(rand(shape), "f32"), (idx, "i32")], tfn, lfn)


def test_getitem_tensor_specials_views_and_i32(backend):
    idx = np.array([3, -1, 0, 0], dtype=np.int32)
    run(backend, [(with_infs((4, 6)), "f32"), (idx, "i32")],
        lambda t, i: (t[i], t.T[:, i], t[::2, 1:][:, i] + 1), lambda x, i: (x[i], x.T[:, i], x[::2, 1:][:, i] + 1))
    run(backend, [(ints((4, 6), -99, 99), "i32"), (idx, "i32")], lambda t, i: (t[i], t[:, i]),
        lambda x, i: (x[i], x[:, i]))


def test_float_index_tensor(backend):
    """x[f] needs an "i32" tensor (torch: integer dtypes); index_select and
    gather take any integer-valued tensor, e.g. an f32 result of arithmetic."""
    cx = lm.Graph()
    xd = rand((4, 3))
    x = cx.tensor((4, 3)).set(xd)
    i = cx.tensor((3,)).set([2.0, -1.0, 0.0])
    with pytest.raises(TypeError, match="unsupported index"):
        x[i]
    ids = cx.tensor((3,), dtype="i32").set([1, -2, 0])
    outs = [x.index_select(0, i).retrieve(), x.index_select(1, ids + 1).retrieve()]
    backend.run(cx)
    np.testing.assert_array_equal(outs[0].numpy(), xd[[2, -1, 0]])
    np.testing.assert_array_equal(outs[1].numpy(), xd[:, [2, 2, 1]])  # -2 + 1 = -1 wraps to 2


def test_getitem_tensor_errors():
    cx = lm.Graph()
    x = cx.tensor((3, 4))
    i = cx.tensor((2,), dtype="i32")
    with pytest.raises(TypeError):
        x[i, i]
    with pytest.raises(ValueError):
        x[lm.Graph().tensor((2,), dtype="i32")]
    with pytest.raises(TypeError):
        x[[0, 1]]
    with pytest.raises(IndexError):
        x[:, :, i]


# ---------------------------------------------------------------- documented differences from torch

def test_out_of_range_and_nan_indices_read_zero(backend):
    """torch raises for these; luminal cannot check data at build time: no
    position matches, so the element reads 0 (a zero row for embedding and
    one_hot)."""
    cx = lm.Graph()
    xd = rand((3, 4)) + 5.0  # no zeros in the data
    x = cx.tensor((3, 4)).set(xd)
    bad = cx.tensor((5,), dtype="i32").set([4, -5, 100, 1, -4])  # dim 1 has size 4: 4, -5, 100 are out of range
    labels = cx.tensor((4,), dtype="i32").set([3, -1, 0, 7])
    fidx = cx.tensor((2,)).set([NAN, 2.0])
    outs = [x[:, bad], x.index_select(1, bad), lm.embedding(bad, x.T), lm.one_hot(labels, 4), x.index_select(0, fidx),
            x.gather(1, bad[None].expand(3, 5))]
    for o in outs:
        o.retrieve()
    backend.run(cx)
    want_cols = np.stack([np.zeros(3), np.zeros(3), np.zeros(3), xd[:, 1], xd[:, 0]], axis=1).astype(np.float32)
    np.testing.assert_array_equal(outs[0].numpy(), want_cols)
    np.testing.assert_array_equal(outs[1].numpy(), want_cols)
    np.testing.assert_array_equal(outs[2].numpy(), want_cols.T)
    np.testing.assert_array_equal(outs[3].numpy(), [[0, 0, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(outs[4].numpy(), np.stack([np.zeros(4), xd[2]]).astype(np.float32))
    np.testing.assert_array_equal(outs[5].numpy(), want_cols)


def test_nan_on_the_summed_line_leaks(backend):
    """A NaN picked is NaN (as torch); a NaN elsewhere on the summed source line
    (the indexed dim, other coordinates fixed) also makes the result NaN (torch:
    the picked value). Other lines are exact, infinities included."""
    xd = rand((4, 4))
    xd[1, 2] = NAN
    xd[2, 0] = INF
    xd[3, 3] = -INF
    idx = np.array([0, 2, 3], dtype=np.int32)
    cx = lm.Graph()
    x = cx.tensor((4, 4)).set(xd)
    i = cx.tensor((3,), dtype="i32").set(idx)
    cols, rows = x[:, i].retrieve(), x[i].retrieve()
    backend.run(cx)
    want_cols = xd[:, idx].copy()
    want_cols[1, :] = NAN  # row 1 holds a NaN: every column picked from it is NaN
    np.testing.assert_array_equal(cols.numpy(), want_cols)
    want_rows = xd[idx].copy()
    want_rows[:, 2] = NAN  # column 2 holds a NaN: every row picked gets NaN there
    np.testing.assert_array_equal(rows.numpy(), want_rows)
    assert not np.isnan(xd[idx][:, 2]).all(), "the leak must differ from torch's result here"


# ---------------------------------------------------------------- symbolic dims

def test_symbolic_dims_one_graph(backend):
    """One graph over a ("seq", 4) input and a ("seq",) index, compiled once, run
    with seq bound to several values; negative indices wrap by the bound size."""
    cx = lm.Graph()
    x = cx.tensor(("seq", 4), name="x")
    fixed = cx.tensor((3,), name="fixed", dtype="i32")
    per_row = cx.tensor(("seq",), name="per_row", dtype="i32")
    outs = [x.index_select(0, fixed), x[fixed, 1:], x[:, per_row], x.gather(0, per_row[:, None].expand(-1, 4)),
            x.take_along_dim(per_row[:, None], 0)]
    for o in outs:
        o.retrieve()
    for seq in [5, 9, 4]:
        xd = with_infs((seq, 4), seed=seq)
        fd = np.array([0, -1, seq - 2], dtype=np.int32)
        pd = ints((seq,), -4, 4, seed=seq)
        x.set(xd)
        fixed.set(fd)
        per_row.set(pd)
        backend.run(cx)
        t, f, p = torch.from_numpy(xd), torch.from_numpy(fd).long(), torch.from_numpy(pd).long()
        wants = [t.index_select(0, f % seq), t[f, 1:], t[:, p], t.gather(0, (p % seq)[:, None].expand(-1, 4)),
                 t.take_along_dim(p[:, None], 0)]
        for k, (o, w) in enumerate(zip(outs, wants)):
            np.testing.assert_array_equal(o.numpy(), w.numpy(), err_msg=f"seq={seq} output {k}")
