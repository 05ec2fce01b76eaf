"""F.scaled_dot_product_attention against PyTorch: masks (boolean as "i32",
additive float with -inf), causal, scale, GQA, fully masked rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import luminal as lm
import luminal.nn.functional as F
from functional_helpers import check_typed
from helpers import check, rand

sdpa_t = TF.scaled_dot_product_attention
sdpa = F.scaled_dot_product_attention
ATOL, RTOL = 2e-5, 1e-4


def _qkv(n=2, hq=3, hkv=3, L=5, S=7, E=4, Ev=6, seed=0):
    return [rand((n, hq, L, E), seed=seed), rand((n, hkv, S, E), seed=seed + 1),
            rand((n, hkv, S, Ev), seed=seed + 2)]


def test_basic_and_scale(backend):
    check(backend, [], sdpa_t, sdpa, data=_qkv(), atol=ATOL, rtol=RTOL)
    check(backend, [], lambda q, k, v: sdpa_t(q, k, v, scale=0.3), lambda q, k, v: sdpa(q, k, v, scale=0.3),
          data=_qkv(), atol=ATOL, rtol=RTOL)


def test_three_dim_inputs(backend):
    data = [rand((3, 5, 4), seed=1), rand((3, 6, 4), seed=2), rand((3, 6, 2), seed=3)]
    check(backend, [], sdpa_t, sdpa, data=data, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("L,S", [(5, 5), (4, 7), (7, 4)])
def test_causal(backend, L, S):
    check(backend, [], lambda q, k, v: sdpa_t(q, k, v, is_causal=True), lambda q, k, v: sdpa(q, k, v, is_causal=True),
          data=_qkv(L=L, S=S), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("L,hq,hkv", [(64, 2, 2), (67, 2, 2), (130, 4, 2)])
def test_causal_self_attention_in_halves(backend, L, hq, hkv):
    """From 64 queries on, causal self-attention runs its first half of the
    queries over the first half of the keys alone: odd lengths, GQA, and the
    gradients through both halves."""
    data = _qkv(n=1, hq=hq, hkv=hkv, L=L, S=L, E=8, Ev=8)
    check(backend, [], lambda q, k, v: sdpa_t(q, k, v, is_causal=True, enable_gqa=True),
          lambda q, k, v: sdpa(q, k, v, is_causal=True, enable_gqa=True), data=data, atol=ATOL, rtol=RTOL)


def test_nan_key_reaches_only_the_rows_that_see_it(backend):
    """A NaN key at position j makes the rows that attend it NaN; the rows
    before j are untouched, as torch's masked_fill leaves them (the first half
    of the queries never reads the second half of the keys)."""
    L = 64
    data = _qkv(n=1, hq=1, hkv=1, L=L, S=L, E=4, Ev=4)
    data[1][0, 0, L // 2, 1] = np.nan
    out = check(backend, [], lambda q, k, v: sdpa_t(q, k, v, is_causal=True),
                lambda q, k, v: sdpa(q, k, v, is_causal=True), data=data, atol=ATOL, rtol=RTOL, grad=False)
    assert np.isfinite(out[0][0, 0, :L // 2]).all() and np.isnan(out[0][0, 0, L // 2:]).all()


@pytest.mark.parametrize("mshape", [(5, 7), (2, 1, 5, 7), (2, 3, 5, 7), (1, 7)])
def test_bool_mask(backend, mshape):
    rng = np.random.default_rng(4)
    mask = rng.random(mshape) > 0.4
    mask[..., 0] = True  # no fully masked rows here
    check_typed(backend, [(a, "f32") for a in _qkv()] + [(mask, "bool")],
                lambda q, k, v, m: sdpa_t(q, k, v, attn_mask=m),
                lambda q, k, v, m: sdpa(q, k, v, attn_mask=m), atol=ATOL, rtol=RTOL)


def test_float_mask_with_neg_inf(backend):
    m = rand((2, 1, 5, 7), -1.0, 1.0, seed=9)
    m[:, :, :, 2] = -np.inf
    m[0, 0, 3, 4:] = -np.inf
    check(backend, [], lambda q, k, v, m: sdpa_t(q, k, v, attn_mask=m), lambda q, k, v, m: sdpa(q, k, v, attn_mask=m),
          data=_qkv() + [m], atol=ATOL, rtol=RTOL)


def test_fully_masked_rows_are_zero_like_torch(backend):
    m = np.zeros((5, 7), np.float32)
    m[1, :] = -np.inf
    out = check(backend, [], lambda q, k, v, m: sdpa_t(q, k, v, attn_mask=m),
                lambda q, k, v, m: sdpa(q, k, v, attn_mask=m), data=_qkv() + [m], atol=ATOL, rtol=RTOL)
    assert np.all(out[0][:, :, 1] == 0) and np.all(np.isfinite(out[0]))
    keep = np.ones((5, 7), bool)
    keep[3] = False
    check_typed(backend, [(a, "f32") for a in _qkv()] + [(keep, "bool")],
                lambda q, k, v, m: sdpa_t(q, k, v, attn_mask=m),
                lambda q, k, v, m: sdpa(q, k, v, attn_mask=m), atol=ATOL, rtol=RTOL)


def _with_causal(m):
    L, S = m.shape[-2:]
    return m + torch.zeros(L, S).masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), float("-inf"))


def test_causal_plus_mask(backend):
    # torch refuses attn_mask with is_causal=True on some paths; luminal applies both.
    m = rand((5, 7), -1.0, 1.0, seed=3)
    m[1, :] = -np.inf
    check(backend, [], lambda q, k, v, m: sdpa_t(q, k, v, attn_mask=_with_causal(m)),
          lambda q, k, v, m: sdpa(q, k, v, attn_mask=m, is_causal=True), data=_qkv() + [m], atol=ATOL, rtol=RTOL)


def test_nan_score_gives_nan_row(backend):
    data = _qkv()
    data[0][0, 0, 2, 1] = np.nan
    check(backend, [], sdpa_t, sdpa, data=data, atol=ATOL, rtol=RTOL)


def test_inf_score_gives_nan_row_beside_masked_rows(backend):
    """A +inf in a float mask makes its row NaN (the max is inf), while a row
    masked whole gives 0 and the others are untouched, as torch."""
    data = _qkv()
    L, S = data[0].shape[-2], data[1].shape[-2]
    m = np.zeros((L, S), np.float32)
    m[1, 2] = np.inf
    m[2, :] = -np.inf
    check(backend, [], lambda q, k, v, mask: sdpa_t(q, k, v, attn_mask=mask),
          lambda q, k, v, mask: sdpa(q, k, v, attn_mask=mask), data=data + [m], atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("hq,hkv", [(6, 2), (4, 1), (3, 3)])
def test_gqa(backend, hq, hkv):
    data = _qkv(hq=hq, hkv=hkv)
    check(backend, [], lambda q, k, v: sdpa_t(q, k, v, enable_gqa=True, is_causal=True),
          lambda q, k, v: sdpa(q, k, v, enable_gqa=True, is_causal=True), data=data, atol=ATOL, rtol=RTOL)


def test_gqa_with_masks(backend):
    rng = np.random.default_rng(1)
    keep = rng.random((2, 6, 5, 7)) > 0.3
    keep[..., 1] = True
    keep[1, 4, 2] = False  # one fully masked row
    check_typed(backend, [(a, "f32") for a in _qkv(hq=6, hkv=2)] + [(keep, "bool")],
                lambda q, k, v, m: sdpa_t(q, k, v, attn_mask=m, enable_gqa=True),
                lambda q, k, v, m: sdpa(q, k, v, attn_mask=m, enable_gqa=True), atol=ATOL, rtol=RTOL)
    m = rand((5, 7), seed=5)
    check(backend, [], lambda q, k, v, m: sdpa_t(q, k, v, attn_mask=m, enable_gqa=True, scale=0.5),
          lambda q, k, v, m: sdpa(q, k, v, attn_mask=m, enable_gqa=True, scale=0.5),
          data=_qkv(hq=6, hkv=3) + [m], atol=ATOL, rtol=RTOL)


def test_gqa_does_not_copy_kv():
    cx = lm.Graph()
    q, k, v = cx.tensor((1, 8, 5, 4)), cx.tensor((1, 2, 7, 4)), cx.tensor((1, 2, 7, 4))
    sdpa(q, k, v, enable_gqa=True).retrieve()
    assert not any(n["op"] == "Contiguous" for n in cx.nodes())


def test_errors():
    cx = lm.Graph()
    q, k, v = cx.tensor((1, 6, 5, 4)), cx.tensor((1, 4, 7, 4)), cx.tensor((1, 4, 7, 4))
    with pytest.raises(lm.ShapeError, match="multiple"):
        sdpa(q, k, v, enable_gqa=True)
    with pytest.raises(NotImplementedError, match="dropout"):
        sdpa(k, k, v, dropout_p=0.1)


def test_symbolic_sequence_length(backend):
    """One graph, a symbolic seq dim, run at two lengths (causal mask from iota)."""
    cx = lm.Graph()
    q, k = cx.tensor((2, "seq", 4), name="q"), cx.tensor((2, "seq", 4), name="k")
    v = cx.tensor((2, "seq", 3), name="v")
    out = sdpa(q, k, v, is_causal=True).retrieve()
    for L in (3, 6, 1, 2, 70):  # halves of 0 and 1 rows too
        a, b, c = rand((2, L, 4), seed=L), rand((2, L, 4), seed=L + 1), rand((2, L, 3), seed=L + 2)
        q.set(a), k.set(b), v.set(c)
        backend.run(cx)
        want = sdpa_t(*map(torch.from_numpy, (a, b, c)), is_causal=True).numpy()
        np.testing.assert_allclose(out.numpy(), want, atol=ATOL, rtol=RTOL)
