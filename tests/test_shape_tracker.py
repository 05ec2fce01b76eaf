"""ShapeTracker views checked element by element against numpy doing the same
view ops on ``np.arange``: index_expr/valid_expr at every multi-index must read
what numpy reads (padded positions read 0)."""

from __future__ import annotations

import itertools
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import luminal as lm

E = lm.Expr
ST = lm.ShapeTracker
MAX_NUMEL = 200


def ints(shape: Sequence[lm.Expr], dims: Optional[dict] = None) -> Tuple[int, ...]:
    return tuple(int(d.eval(dims or {})) for d in shape)


def read_concrete(tr: lm.ShapeTracker, base: np.ndarray, dims: Optional[dict] = None) -> np.ndarray:
    """Materialize ``tr`` over the flat ``base`` by evaluating index/valid
    expressions at each concrete multi-index (a list of ints)."""
    dims = dims or {}
    shape = ints(tr.shape, dims)
    out = np.zeros(shape, dtype=base.dtype)
    for idx in itertools.product(*(range(n) for n in shape)):
        valid = tr.valid_expr(list(idx)).eval(dims)
        assert valid in (0, 1), f"valid_expr at {idx} is {valid}"
        if valid:
            phys = tr.index_expr(list(idx)).eval(dims)
            assert 0 <= phys < base.size, f"{tr} reads {phys} at {idx} of {base.size}"
            out[idx] = base[phys]
    return out


def read_symbolic(tr: lm.ShapeTracker, base: np.ndarray, dims: Optional[dict] = None) -> np.ndarray:
    """Same, but the index is symbolic (vars i0, i1, ...): the expressions are
    built and simplified once, then evaluated with the index bound."""
    dims = dict(dims or {})
    shape = ints(tr.shape, dims)
    names = [f"i{k}" for k in range(len(shape))]
    index = [E.var(n) for n in names]
    phys_e, valid_e = tr.index_expr(index), tr.valid_expr(index)
    out = np.zeros(shape, dtype=base.dtype)
    for idx in itertools.product(*(range(n) for n in shape)):
        env = {**dims, **dict(zip(names, idx))}
        valid = valid_e.eval(env)
        assert valid in (0, 1)
        if valid:
            phys = phys_e.eval(env)
            assert 0 <= phys < base.size, f"{tr} reads {phys} at {idx} of {base.size}"
            out[idx] = base[phys]
    return out


def check_matches(tr: lm.ShapeTracker, base: np.ndarray, ref: np.ndarray) -> None:
    assert ints(tr.shape) == ref.shape, f"{tr} vs numpy shape {ref.shape}"
    np.testing.assert_array_equal(read_concrete(tr, base), ref, err_msg=repr(tr))
    np.testing.assert_array_equal(read_symbolic(tr, base), ref, err_msg=repr(tr))
    if tr.is_identity:
        # identity: the first numel elements of the buffer, row-major
        np.testing.assert_array_equal(base[: ref.size].reshape(ref.shape), ref)


# ---- single views -----------------------------------------------------------------


def arange(shape: Tuple[int, ...]) -> Tuple[lm.ShapeTracker, np.ndarray, np.ndarray]:
    n = math.prod(shape)
    base = np.arange(1, n + 1)  # 0 is reserved for "padded"
    return ST.contiguous(list(shape)), base, base.reshape(shape)


def test_contiguous() -> None:
    tr, base, ref = arange((2, 3, 4))
    assert ints(tr.strides) == (12, 4, 1)
    assert tr.offset.as_const() == 0 and tr.is_identity and not tr.is_masked
    assert tr.numel().as_const() == 24
    check_matches(tr, base, ref)


def test_each_view_once() -> None:
    tr, base, ref = arange((2, 3, 4))
    check_matches(tr.permute([2, 0, 1]), base, ref.transpose(2, 0, 1))
    check_matches(tr.slice(2, E(1), E(4), 2), base, ref[:, :, 1:4:2])
    check_matches(tr.pad(1, E(2), E(1)), base, np.pad(ref, [(0, 0), (2, 1), (0, 0)]))
    check_matches(tr.flip(1), base, ref[:, ::-1])
    check_matches(tr.unsqueeze(1), base, ref[:, None])
    check_matches(tr.unsqueeze(3).expand([2, 3, 4, 5]), base, np.broadcast_to(ref[..., None], (2, 3, 4, 5)))
    r = tr.reshape([6, 4])
    assert r is not None and r.is_identity
    check_matches(r, base, ref.reshape(6, 4))


def test_masked_views_compose() -> None:
    tr, base, ref = arange((3, 4))
    tr2 = tr.pad(1, E(2), E(1)).flip(1).slice(1, E(1), E(7), 2).permute([1, 0])
    want = np.pad(ref, [(0, 0), (2, 1)])[:, ::-1][:, 1:7:2].T
    assert tr2.is_masked
    check_matches(tr2, base, want)


def test_slice_fully_inside_padding_reads_zero() -> None:
    tr, base, ref = arange((4,))
    tr2 = tr.pad(0, E(3), E(0)).slice(0, E(0), E(3), 1)
    check_matches(tr2, base, np.zeros(3, dtype=base.dtype))


def test_symbolic_reshape_split_succeeds() -> None:
    seq = E.var("seq")
    tr = ST.contiguous([seq, 64]).reshape([seq, 8, 8])
    assert tr is not None
    assert list(tr.shape) == [seq, E(8), E(8)]
    assert [d.as_const() for d in tr.strides] == [64, 8, 1]
    assert tr.is_identity
    base = np.arange(1, 3 * 64 + 1)
    got = read_symbolic(tr, base, {"seq": 3})
    np.testing.assert_array_equal(got, base.reshape(3, 8, 8))


def test_symbolic_reshape_of_permuted_view() -> None:
    seq = E.var("seq")
    tr = ST.contiguous([2, seq, 64]).permute([1, 0, 2]).reshape([seq, 2, 8, 8])
    assert tr is not None
    assert list(tr.strides) == [E(64), seq * 64, E(8), E(1)]
    base = np.arange(1, 2 * 5 * 64 + 1)
    want = base.reshape(2, 5, 64).transpose(1, 0, 2).reshape(5, 2, 8, 8)
    np.testing.assert_array_equal(read_symbolic(tr, base, {"seq": 5}), want)


def test_reshape_needing_copy_returns_none() -> None:
    assert ST.contiguous([3, 4]).permute([1, 0]).reshape([12]) is None
    seq = E.var("seq")
    assert ST.contiguous([seq, 4]).permute([1, 0]).reshape([seq * 4]) is None
    # a stepped slice cannot be merged with the next dim
    assert ST.contiguous([4, 6]).slice(1, E(0), E(3), 1).reshape([12]) is None
    # a padded dim cannot be split
    assert ST.contiguous([4]).pad(0, E(1), E(1)).reshape([2, 3]) is None


def test_reshape_of_row_sliced_view_is_a_view() -> None:
    tr, base, ref = arange((4, 6))
    r = tr.slice(0, E(1), E(3), 1).reshape([12])
    assert r is not None
    check_matches(r, base, ref[1:3].reshape(12))


# ---- random chains of views ----------------------------------------------------


def _factor_split(n: int, draw) -> List[int]:
    """A random list of dims with product n (n >= 1)."""
    dims: List[int] = []
    while n > 1 and len(dims) < 3:
        divisors = [d for d in range(2, n + 1) if n % d == 0]
        d = draw(st.sampled_from(divisors))
        dims.append(d)
        n //= d
    if n > 1:
        dims.append(n)
    return dims or [1]


@st.composite
def view_chains(draw, allow_reshape: bool = True):
    rank = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    ops = []
    cur = list(shape)
    for _ in range(draw(st.integers(0, 7))):
        numel = math.prod(cur)
        kinds = ["permute", "slice", "pad", "flip", "unsqueeze"]
        if allow_reshape:
            kinds += ["reshape", "split"]
        if 1 in cur:
            kinds.append("expand")
        kind = draw(st.sampled_from(kinds))
        r = len(cur)
        if kind == "permute":
            perm = draw(st.permutations(range(r)))
            ops.append(("permute", tuple(perm)))
            cur = [cur[p] for p in perm]
        elif kind == "slice":
            ax = draw(st.integers(0, r - 1))
            start = draw(st.integers(0, cur[ax]))
            stop = draw(st.integers(start, cur[ax]))
            step = draw(st.integers(1, 3))
            ops.append(("slice", ax, start, stop, step))
            cur[ax] = len(range(start, stop, step))
        elif kind == "pad":
            ax = draw(st.integers(0, r - 1))
            before, after = draw(st.integers(0, 2)), draw(st.integers(0, 2))
            if numel // max(cur[ax], 1) * (cur[ax] + before + after) > MAX_NUMEL:
                continue
            ops.append(("pad", ax, before, after))
            cur[ax] += before + after
        elif kind == "flip":
            ops.append(("flip", draw(st.integers(0, r - 1))))
        elif kind == "unsqueeze":
            if r >= 5:
                continue
            ax = draw(st.integers(0, r))
            ops.append(("unsqueeze", ax))
            cur.insert(ax, 1)
        elif kind == "expand":
            new = [draw(st.integers(1, 3)) if d == 1 else d for d in cur]
            if math.prod(new) > MAX_NUMEL:
                continue
            ops.append(("expand", tuple(new)))
            cur = new
        elif kind == "reshape":
            if numel == 0:
                continue
            new = _factor_split(numel, draw)
            ops.append(("reshape", tuple(new)))
            cur = list(new)
        elif kind == "split":
            # split one dim into two factors (a pure split: never needs a copy
            # unless that dim is masked)
            cands = [i for i, d in enumerate(cur) if d > 1 and any(d % k == 0 for k in range(2, d))]
            if not cands:
                continue
            ax = draw(st.sampled_from(cands))
            k = draw(st.sampled_from([k for k in range(2, cur[ax]) if cur[ax] % k == 0]))
            new = cur[:ax] + [k, cur[ax] // k] + cur[ax + 1 :]
            ops.append(("split", ax, tuple(new)))
            cur = new
    return shape, ops


def apply_view(tr: lm.ShapeTracker, ref: np.ndarray, op: tuple):
    kind = op[0]
    if kind == "permute":
        return tr.permute(list(op[1])), ref.transpose(op[1])
    if kind == "slice":
        _, ax, start, stop, step = op
        sl = [slice(None)] * ref.ndim
        sl[ax] = slice(start, stop, step)
        return tr.slice(ax, E(start), E(stop), step), ref[tuple(sl)]
    if kind == "pad":
        _, ax, before, after = op
        widths = [(0, 0)] * ref.ndim
        widths[ax] = (before, after)
        return tr.pad(ax, E(before), E(after)), np.pad(ref, widths)
    if kind == "flip":
        return tr.flip(op[1]), np.flip(ref, op[1])
    if kind == "unsqueeze":
        return tr.unsqueeze(op[1]), np.expand_dims(ref, op[1])
    if kind == "expand":
        return tr.expand(list(op[1])), np.broadcast_to(ref, op[1])
    raise AssertionError(kind)


@settings(max_examples=400, deadline=None)
@given(view_chains())
def test_random_view_chains_match_numpy(chain) -> None:
    shape, ops = chain
    tr, base, ref = arange(shape)
    check_matches(tr, base, ref)
    for op in ops:
        if op[0] in ("reshape", "split"):
            new = op[-1]
            r = tr.reshape(new)
            if op[0] == "split" and not tr.is_masked:
                assert r is not None, f"pure split of unmasked {tr} to {new} needed a copy"
            if r is None:
                # what the library does: materialize (Contiguous), then view
                assert not tr.is_identity
                base = ref.reshape(-1).copy()
                r = ST.contiguous(list(new))
            tr, ref = r, ref.reshape(new)
        else:
            tr, ref = apply_view(tr, ref, op)
        check_matches(tr, base, ref)


@settings(max_examples=60, deadline=None)
@given(view_chains(allow_reshape=False), st.integers(1, 4))
def test_random_views_over_symbolic_leading_dim(chain, seq_value: int) -> None:
    """The same chains with a symbolic leading dim in front, kept untouched:
    the expressions must stay correct with seq bound at evaluation time."""
    shape, ops = chain
    seq = E.var("seq")
    tr = ST.contiguous([seq] + list(shape))
    n = seq_value * math.prod(shape)
    base = np.arange(1, n + 1)
    ref = base.reshape((seq_value,) + shape)
    dims = {"seq": seq_value}
    for op in ops:
        tr, ref = _apply_shifted(tr, ref, _shift(op))
    got = read_symbolic(tr, base, dims)
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got, ref, err_msg=repr(tr))


def _shift(op: tuple) -> tuple:
    """The op moved one axis to the right (axis 0 is the symbolic dim)."""
    kind = op[0]
    if kind == "permute":
        return ("permute", (0,) + tuple(p + 1 for p in op[1]))
    if kind == "expand":
        return ("expand", op[1])
    return (kind, op[1] + 1) + tuple(op[2:])


def _apply_shifted(tr: lm.ShapeTracker, ref: np.ndarray, op: tuple):
    if op[0] == "expand":
        new = list(op[1])
        return tr.expand([tr.shape[0]] + [E(d) for d in new]), np.broadcast_to(ref, (ref.shape[0], *new))
    if op[0] == "unsqueeze":
        return tr.unsqueeze(op[1]), np.expand_dims(ref, op[1])
    return apply_view(tr, ref, op)
