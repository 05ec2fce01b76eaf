"""MultiheadAttention and the transformer blocks vs torch.nn, on every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as tnn

import luminal as lm
import luminal.nn as nn
from nn_helpers import compare, randn

E, H, N, L, S = 8, 2, 2, 5, 4


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _mha_pair(**kw: Any) -> tuple[nn.MultiheadAttention, tnn.MultiheadAttention]:
    theirs = tnn.MultiheadAttention(E, H, **kw)
    with torch.no_grad():
        for p in theirs.parameters():  # torch zero-inits the biases: make them count
            p.uniform_(-0.5, 0.5)
    return nn.MultiheadAttention(E, H, **kw), theirs


def _qkv(batch_first: bool, kdim: int = E, vdim: int = E) -> list[np.ndarray]:
    def shape(n: int, d: int) -> tuple[int, ...]:
        return (N, n, d) if batch_first else (n, N, d)

    return [randn(*shape(L, E), seed=1), randn(*shape(S, kdim), seed=2), randn(*shape(S, vdim), seed=3)]


KEY_PAD = np.array([[False, False, True, False], [False, False, False, True]])
ATTN_BOOL = np.array([[False, True, False, False]] * L)


def run_mha(
    backend: Any,
    ours: nn.MultiheadAttention,
    theirs: tnn.MultiheadAttention,
    inputs: list[np.ndarray],
    masks: dict[str, np.ndarray],
    mask_as: str = "numpy",
    **kw: Any,
) -> None:
    """Compare with masks given to luminal as numpy arrays ("numpy") or as
    graph tensors ("tensor": bool masks become "i32" inputs)."""
    ours.eval()
    theirs.eval()
    ours.load_state_dict(theirs.state_dict())
    cx = lm.Graph()
    xs = [cx.tensor(a.shape).set(a) for a in inputs]
    lm_masks: dict[str, Any] = {}
    for name, m in masks.items():
        if mask_as == "numpy":
            lm_masks[name] = m
        else:
            dtype = "i32" if m.dtype == bool else "f32"
            lm_masks[name] = cx.tensor(m.shape, dtype=dtype).set(m.astype(np.float32))
    out, w = ours(*xs, **lm_masks, **kw)
    out.retrieve()
    if w is not None:
        w.retrieve()
    backend.run(cx)
    with torch.no_grad():
        t_out, t_w = theirs(*[torch.from_numpy(a) for a in inputs],
                            **{k: torch.from_numpy(v) for k, v in masks.items()}, **kw)
    np.testing.assert_allclose(out.numpy(), t_out.numpy(), atol=1e-5, rtol=1e-4)
    if t_w is None:
        assert w is None
    else:
        assert w is not None
        np.testing.assert_allclose(w.numpy(), t_w.numpy(), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
@pytest.mark.parametrize("average", [True, False], ids=["avg", "per_head"])
def test_mha_weights(backend: Any, batch_first: bool, average: bool) -> None:
    ours, theirs = _mha_pair(batch_first=batch_first)
    run_mha(backend, ours, theirs, _qkv(batch_first), {}, average_attn_weights=average)


def test_mha_no_weights_and_self_attention(backend: Any) -> None:
    ours, theirs = _mha_pair(batch_first=True)
    x = randn(N, L, E)
    run_mha(backend, ours, theirs, [x, x, x], {}, need_weights=False)


def test_mha_unbatched(backend: Any) -> None:
    ours, theirs = _mha_pair()
    q, k, v = (randn(L, E, seed=1), randn(S, E, seed=2), randn(S, E, seed=3))
    run_mha(backend, ours, theirs, [q, k, v], {"key_padding_mask": KEY_PAD[0]})


@pytest.mark.parametrize("mask_as", ["numpy", "tensor"])
def test_mha_masks(backend: Any, mask_as: str) -> None:
    ours, theirs = _mha_pair()
    qkv = _qkv(False)
    run_mha(backend, ours, theirs, qkv, {"key_padding_mask": KEY_PAD}, mask_as)
    run_mha(backend, ours, theirs, qkv, {"attn_mask": ATTN_BOOL}, mask_as)
    float_mask = randn(L, S, seed=9)
    run_mha(backend, ours, theirs, qkv, {"attn_mask": float_mask, "key_padding_mask": randn(N, S, seed=8)}, mask_as)
    mask3 = randn(N * H, L, S, seed=7)
    run_mha(backend, ours, theirs, qkv, {"attn_mask": mask3}, mask_as, average_attn_weights=False)
    run_mha(backend, ours, theirs, qkv, {"attn_mask": ATTN_BOOL, "key_padding_mask": KEY_PAD}, mask_as,
            need_weights=False)


def test_mha_causal(backend: Any) -> None:
    ours, theirs = _mha_pair(batch_first=True)
    x = randn(N, L, E)
    causal = np.triu(np.ones((L, L), bool), 1)
    run_mha(backend, ours, theirs, [x, x, x], {"attn_mask": causal}, is_causal=True)
    # without attn_mask luminal builds the causal mask itself (torch requires the mask)
    ours.eval()
    cx = lm.Graph()
    xt = cx.tensor(x.shape).set(x)
    out, _ = ours(xt, xt, xt, is_causal=True)
    out.retrieve()
    backend.run(cx)
    with torch.no_grad():
        want = theirs(*(torch.from_numpy(x),) * 3, attn_mask=torch.from_numpy(causal))[0]
    np.testing.assert_allclose(out.numpy(), want.numpy(), atol=1e-5, rtol=1e-4)
    # without weights it is scaled_dot_product_attention's is_causal: no mask
    # input, so a symbolic length works too (and from 64 on, in two halves)
    cx = lm.Graph()
    xt = cx.tensor((N, "seq", E))
    out, weights = ours(xt, xt, xt, is_causal=True, need_weights=False)
    out.retrieve()
    assert weights is None and not any(n["op"] == "Input" and n["name"] == "causal_mask" for n in cx.nodes())
    for length in (3, 70):
        x = randn(N, length, E, seed=length)
        xt.set(x)
        backend.run(cx)
        causal = np.triu(np.ones((length, length), bool), 1)
        with torch.no_grad():
            want = theirs(*(torch.from_numpy(x),) * 3, attn_mask=torch.from_numpy(causal))[0]
        np.testing.assert_allclose(out.numpy(), want.numpy(), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "kw",
    [{"kdim": 3, "vdim": 6}, {"add_bias_kv": True}, {"add_zero_attn": True}, {"bias": False},
     {"add_bias_kv": True, "add_zero_attn": True, "kdim": 5}],
    ids=["kvdim", "bias_kv", "zero_attn", "no_bias", "all"],
)
def test_mha_options(backend: Any, kw: dict[str, Any]) -> None:
    ours, theirs = _mha_pair(**kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    qkv = _qkv(False, kw.get("kdim", E), kw.get("vdim", E))
    run_mha(backend, ours, theirs, qkv, {"key_padding_mask": KEY_PAD, "attn_mask": ATTN_BOOL})


# ---------------------------------------------------------------- transformer layers

LAYER_CASES = [
    {"norm_first": False, "activation": "relu", "batch_first": False},
    {"norm_first": True, "activation": "gelu", "batch_first": True},
    {"norm_first": False, "activation": "gelu", "batch_first": True, "bias": False},
    {"norm_first": True, "activation": "relu", "batch_first": False},
]


def _randomize(m: tnn.Module) -> tnn.Module:
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.rand_like(p) * 0.2 - 0.1)
    return m


@pytest.mark.parametrize("kw", LAYER_CASES, ids=[str(k) for k in LAYER_CASES])
def test_encoder_layer(backend: Any, kw: dict[str, Any]) -> None:
    theirs = _randomize(tnn.TransformerEncoderLayer(E, H, 16, dropout=0.1, **kw))
    shape = (N, L, E) if kw["batch_first"] else (L, N, E)
    x = randn(*shape)
    causal = np.triu(np.ones((L, L), bool), 1)
    pad = np.zeros((N, L), bool)
    pad[1, -2:] = True
    ours = nn.TransformerEncoderLayer(E, H, 16, dropout=0.1, **kw)
    compare(backend, ours, theirs, [x], atol=1e-5, rtol=1e-4)
    compare(backend, ours, theirs, [x], atol=1e-5, rtol=1e-4,
            kwargs={"src_mask": causal, "src_key_padding_mask": pad},
            torch_kwargs={"src_mask": torch.from_numpy(causal), "src_key_padding_mask": torch.from_numpy(pad)})


def test_encoder_layer_train_without_dropout(backend: Any) -> None:
    theirs = _randomize(tnn.TransformerEncoderLayer(E, H, 16, dropout=0.0, batch_first=True))
    compare(backend, nn.TransformerEncoderLayer(E, H, 16, dropout=0.0, batch_first=True), theirs,
            [randn(N, L, E)], atol=1e-5, rtol=1e-4, train=True)


@pytest.mark.parametrize("kw", LAYER_CASES, ids=[str(k) for k in LAYER_CASES])
def test_decoder_layer(backend: Any, kw: dict[str, Any]) -> None:
    theirs = _randomize(tnn.TransformerDecoderLayer(E, H, 16, **kw))
    ours = nn.TransformerDecoderLayer(E, H, 16, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    bf = kw["batch_first"]
    tgt = randn(*((N, L, E) if bf else (L, N, E)), seed=1)
    mem = randn(*((N, S, E) if bf else (S, N, E)), seed=2)
    causal = nn.Transformer.generate_square_subsequent_mask(L)
    compare(backend, ours, theirs, [tgt, mem], atol=1e-5, rtol=1e-4)
    compare(backend, ours, theirs, [tgt, mem], atol=1e-5, rtol=1e-4,
            kwargs={"tgt_mask": causal, "memory_key_padding_mask": KEY_PAD},
            torch_kwargs={"tgt_mask": torch.from_numpy(causal), "memory_key_padding_mask": torch.from_numpy(KEY_PAD)})


def test_encoder_stack_and_transformer(backend: Any) -> None:
    layer = tnn.TransformerEncoderLayer(E, H, 16, batch_first=True)
    theirs = _randomize(tnn.TransformerEncoder(layer, 2, norm=tnn.LayerNorm(E), enable_nested_tensor=False))
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, 16, batch_first=True), 2, norm=nn.LayerNorm(E))
    assert "layers.1.self_attn.in_proj_weight" in ours.state_dict()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    compare(backend, ours, theirs, [randn(N, L, E)], atol=1e-5, rtol=1e-4)

    t_full = _randomize(tnn.Transformer(E, H, 1, 2, 16, batch_first=True))
    full = nn.Transformer(E, H, 1, 2, 16, batch_first=True)
    causal = nn.Transformer.generate_square_subsequent_mask(L)
    compare(backend, full, t_full, [randn(N, S, E, seed=1), randn(N, L, E, seed=2)], atol=1e-5, rtol=1e-4,
            kwargs={"tgt_mask": causal}, torch_kwargs={"tgt_mask": torch.from_numpy(causal)})


def test_training_mode_dropout_refuses_to_build() -> None:
    cx = lm.Graph()
    x = cx.tensor((N, L, E))
    layer = nn.TransformerEncoderLayer(E, H, 16, batch_first=True)  # training, dropout=0.1 like torch
    with pytest.raises(NotImplementedError, match="eval"):
        layer(x)
    with pytest.raises(NotImplementedError):
        nn.MultiheadAttention(E, H, dropout=0.5, batch_first=True)(x, x, x)
    layer.eval()(x)  # fine in eval mode
    nn.MultiheadAttention(E, H, dropout=0.5, batch_first=True).eval()(x, x, x)


def test_mha_symbolic_lengths(backend: Any) -> None:
    ours, theirs = _mha_pair(batch_first=True)
    ours.load_state_dict(theirs.state_dict())
    ours.eval()
    theirs.eval()
    cx = lm.Graph()
    q = cx.tensor(("b", "l", E))
    kv = cx.tensor(("b", "s", E))
    out, w = ours(q, kv, kv)
    out.retrieve()
    w.retrieve()
    for b, l, s in ((2, 3, 4), (1, 5, 2)):
        qd, kd = randn(b, l, E, seed=l), randn(b, s, E, seed=s)
        q.set(qd)
        kv.set(kd)
        backend.run(cx)
        with torch.no_grad():
            t_out, t_w = theirs(torch.from_numpy(qd), torch.from_numpy(kd), torch.from_numpy(kd))
        np.testing.assert_allclose(out.numpy(), t_out.numpy(), atol=1e-5, rtol=1e-4)
        np.testing.assert_allclose(w.numpy(), t_w.numpy(), atol=1e-6, rtol=1e-4)


def test_comparison_mask_is_boolean_for_sdpa_and_mha() -> None:
    """`ids == pad` gives a "bool" tensor, which attention reads as a boolean mask."""
    import luminal.nn.functional as F

    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((1, 2, 4, 8)).astype(np.float32) for _ in range(3))
    ids = np.array([[5, 7, 0, 0]], dtype=np.int32)  # two pad tokens (0)
    cx = lm.Graph()
    tq, tk, tv = (cx.tensor(a.shape).set(a) for a in (q, k, v))
    keep = cx.tensor((1, 4), dtype="i32").set(ids) != 0  # dtype "bool": True = attend
    out = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=keep).retrieve()
    cx.execute()
    want = torch.nn.functional.scaled_dot_product_attention(
        torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v), attn_mask=torch.from_numpy(ids != 0)
    )
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
