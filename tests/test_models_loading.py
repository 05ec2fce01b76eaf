"""Loading Llama / Mistral checkpoints (luminal.models.loading): Hugging Face
directories (single-file and sharded safetensors, F32 / F16 / BF16) and GGUF
files (F32 and Q8_0, with llama.cpp's q/k row order) give transformers'
logits; broken checkpoints fail naming the tensors; building a 7B-shaped
model skips random init."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np
import pytest
from helpers import set_gguf_metadata

import luminal as lm
import luminal.nn as nn
from luminal import quant as lm_quant
from luminal.io.errors import CheckpointError
from luminal.io.safetensors import save_file
from luminal.models import LlamaConfig, LlamaForCausalLM, load_config, load_model, resolve_model_path
from luminal.models.loading import (
    config_from_gguf,
    gguf_to_hf_name,
    hf_to_gguf_name,
    permute_qk,
    unpermute_qk,
)
from luminal.nn.module import StateDictError

PROMPT = np.array([[3, 17, 42, 9, 88, 1, 5]], dtype=np.int64)

# vocab 100, hidden 64 (Q8_0 needs rows that are multiples of 32), GQA 4 -> 2
TINY = dict(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, rms_norm_eps=1e-5, max_position_embeddings=256)


def logits_of(model: LlamaForCausalLM, prompt: np.ndarray = PROMPT, cpu: bool = False) -> np.ndarray:
    cx = lm.Graph()
    ids = cx.tensor((1, "seq"), dtype="i32")
    out = model(ids).retrieve()
    cx.compile(lm.GenericCompiler(), *([lm.CPUCompiler()] if cpu else []))
    ids.set(prompt.astype(np.int32))
    cx.execute()
    return out.numpy()[0]


def random_state_dict(cfg: LlamaConfig, seed: int = 0) -> Dict[str, np.ndarray]:
    """Random weights (numpy only) with every HF name of a model of ``cfg``."""
    rng = np.random.default_rng(seed)
    model = LlamaForCausalLM(cfg, init=False)
    return {k: (rng.standard_normal(p.shape) * (0.3 if p.ndim > 1 else 0.1) + (p.ndim == 1)).astype(np.float32)
            for k, p in model.state_dict(keep_vars=True).items()}


def write_hf_dir(path: Path, cfg_dict: Dict[str, Any], sd: Dict[str, np.ndarray]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(cfg_dict))
    save_file(sd, path / "model.safetensors")
    return path


def hf_config_dict(**over: Any) -> Dict[str, Any]:
    d: Dict[str, Any] = dict(model_type="llama", **TINY)
    d.update(over)
    return d


# ---------------------------------------------------------------- transformers reference

_HF: Dict[str, Any] = {}


def hf_model(**over: Any) -> Any:
    """A tiny random transformers Llama (float32, eager; TINY's config with
    ``over``), built once per config."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    key = "model" + repr(sorted(over.items()))
    if key not in _HF:
        torch.manual_seed(0)
        cfg = transformers.LlamaConfig(**{"initializer_range": 0.2, **TINY, **over}, attn_implementation="eager",
                                       bos_token_id=1, eos_token_id=2)
        model = transformers.LlamaForCausalLM(cfg).eval()
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" in name:
                    p.uniform_(0.5, 1.5)
        _HF[key] = model
    return _HF[key]


def hf_logits(model: Any, sd: Optional[Dict[str, np.ndarray]] = None) -> np.ndarray:
    """transformers' prompt logits, with ``sd`` (numpy) loaded into a copy if given."""
    import copy

    import torch

    if sd is not None:
        model = copy.deepcopy(model)
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sd.items()}, strict=False)
    with torch.no_grad():
        return model(torch.tensor(PROMPT)).logits[0].float().numpy()


def hf_numpy_sd(model: Any) -> Dict[str, np.ndarray]:
    import torch

    return {k: v.detach().to(torch.float32).numpy() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- Hugging Face directories


@pytest.mark.parametrize("shards", ["single", "sharded"])
def test_hf_directory_matches_transformers(tmp_path: Path, shards: str) -> None:
    hf = hf_model()
    kw = {"max_shard_size": "40KB"} if shards == "sharded" else {}
    hf.save_pretrained(tmp_path, **kw)
    files = os.listdir(tmp_path)
    assert ("model.safetensors.index.json" in files) == (shards == "sharded")
    model = LlamaForCausalLM.from_pretrained(tmp_path)
    assert not model.training and model.config.num_key_value_heads == 2
    np.testing.assert_allclose(logits_of(model), hf_logits(hf), atol=1e-4, rtol=0)


def test_gguf_head_size_apart_from_hidden(tmp_path: Path) -> None:
    """llama.attention.key_length: heads wider than hidden / heads (Mistral
    NeMo and Small 3: 32 heads of 128 over a hidden size of 5120)."""
    hf = hf_model(head_dim=24)
    path = tmp_path / "tiny-head24.gguf"
    write_gguf(path, hf_numpy_sd(hf), TINY, metadata={"llama.attention.key_length": (24, "UINT32"),
                                                      "llama.attention.value_length": (24, "UINT32"),
                                                      "llama.rope.dimension_count": (24, "UINT32")})
    model = LlamaForCausalLM.from_pretrained(path)
    assert model.config.head_size == 24 and model.model.layers[0].self_attn.q_proj.weight.shape == (96, 64)
    np.testing.assert_allclose(logits_of(model), hf_logits(hf), atol=1e-4, rtol=0)
    # the weights are zero-copy views of the checkpoint where no conversion is needed
    assert not model.model.embed_tokens.weight.data.flags.owndata


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_checkpoints_widen_to_f32(tmp_path: Path, dtype: str) -> None:
    import torch

    hf = hf_model()
    half = type(hf)(hf.config).to(getattr(torch, dtype))
    half.load_state_dict(hf.state_dict())
    half.save_pretrained(tmp_path)
    rounded = hf_numpy_sd(half)  # the half-precision values, widened exactly
    model = load_model(tmp_path)
    for k, p in model.state_dict(keep_vars=True).items():
        assert p.data.dtype == np.float32
        np.testing.assert_array_equal(p.data, rounded[k], err_msg=k)
    np.testing.assert_allclose(logits_of(model), hf_logits(hf, rounded), atol=1e-4, rtol=0)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("shards", ["single", "sharded"])
def test_half_precision_checkpoints_kept_packed(tmp_path: Path, dtype: str, shards: str) -> None:
    """quantized=True: an F16/BF16 checkpoint's projection matrices,
    embedding table and lm_head stay 2 bytes a value (QuantizedParameter, zero-copy from the
    file); the reference executor and the CPU kernels (lm_half_matmul, and
    the packed GEMM on widened weights for 16+ rows) match transformers on the
    rounded weights."""
    import torch

    hf = hf_model()
    half = type(hf)(hf.config).to(getattr(torch, dtype))
    half.load_state_dict(hf.state_dict())
    half.save_pretrained(tmp_path, **({"max_shard_size": "40KB"} if shards == "sharded" else {}))
    rounded = hf_numpy_sd(half)
    model = load_model(tmp_path, quantized=True)
    fmt = "f16_packed" if dtype == "float16" else "bf16_packed"
    kept = {k for k, p in model.state_dict(keep_vars=True).items() if isinstance(p, nn.QuantizedParameter)}
    assert kept == {k for k in rounded if k.endswith("_proj.weight") or k.startswith(("lm_head.", "model.embed"))}
    for k in kept:
        p = model.get_parameter(k)
        assert p.format == fmt and p.blocks.size == 2 * p.numel() and not p.blocks.flags.owndata
        np.testing.assert_array_equal(p.data, rounded[k], err_msg=k)
    want = hf_logits(hf, rounded)
    np.testing.assert_allclose(logits_of(model), want, atol=1e-4, rtol=0)
    np.testing.assert_allclose(logits_of(model, cpu=True), want, atol=1e-4, rtol=0)
    long_prompt = np.arange(3, 3 + 40).reshape(1, -1) % 100  # 40 rows: the packed GEMM
    ref = load_model(tmp_path)  # widened to float32
    np.testing.assert_allclose(logits_of(model, long_prompt, cpu=True), logits_of(ref, long_prompt, cpu=True),
                               atol=1e-4, rtol=0)


def test_tied_embeddings_and_checkpoint_paths(tmp_path: Path) -> None:
    cfg = hf_config_dict(tie_word_embeddings=True)
    lcfg = LlamaConfig.from_hf(cfg)
    sd = random_state_dict(lcfg)
    sd["lm_head.weight"] = sd["model.embed_tokens.weight"]  # transformers saves the shared tensor twice
    write_hf_dir(tmp_path, cfg, sd)
    ref = LlamaForCausalLM(lcfg).eval()
    ref.load_state_dict(sd)
    want = logits_of(ref)
    for src in (tmp_path, str(tmp_path), tmp_path / "model.safetensors"):
        np.testing.assert_allclose(logits_of(load_model(src)), want, atol=1e-5, rtol=0)
    assert load_config(tmp_path).tie_word_embeddings


def test_init_false_builds_7b_without_memory_or_time() -> None:
    cfg = LlamaConfig(vocab_size=32768, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8, model_type="mistral", sliding_window=4096)
    t = time.perf_counter()
    model = LlamaForCausalLM(cfg, init=False)
    elapsed = time.perf_counter() - t
    params = list(model.parameters())
    assert sum(p.numel() for p in params) > 7.2e9
    # the matrices have no memory behind them (the norms' ones are ~1 MB)
    assert all(p.data.strides == (0,) * p.ndim for p in params if p.ndim == 2)
    assert elapsed < 2.0, f"building a 7B-shaped model took {elapsed:.2f} s"


def test_progress_bar_optional(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = hf_config_dict()
    write_hf_dir(tmp_path, cfg, random_state_dict(LlamaConfig.from_hf(cfg)))
    load_model(tmp_path)  # small: no bar
    assert "loading" not in capsys.readouterr().err
    pytest.importorskip("tqdm")
    load_model(tmp_path, progress=True)
    assert "loading model.safetensors" in capsys.readouterr().err
    import importlib

    real = importlib.import_module

    def no_tqdm(name: str, *a: Any) -> Any:
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real(name, *a)

    monkeypatch.setattr(importlib, "import_module", no_tqdm)
    load_model(tmp_path, progress=True)  # silently without a bar
    assert "loading" not in capsys.readouterr().err


# ---------------------------------------------------------------- broken checkpoints


def test_missing_unexpected_and_mis_shaped_tensors(tmp_path: Path) -> None:
    cfg = hf_config_dict()
    sd = random_state_dict(LlamaConfig.from_hf(cfg))

    bad = dict(sd)
    del bad["model.layers.1.mlp.down_proj.weight"]
    with pytest.raises(StateDictError, match=r'Missing key.*"model\.layers\.1\.mlp\.down_proj\.weight"') as e:
        load_model(write_hf_dir(tmp_path / "missing", cfg, bad))
    assert e.value.missing_keys == ["model.layers.1.mlp.down_proj.weight"]
    assert "model.safetensors" in str(e.value)

    bad = dict(sd)
    bad["model.layers.0.self_attn.k_proj.weight"] = np.zeros((32, 48), np.float32)
    bad["model.layers.0.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(StateDictError) as e:
        load_model(write_hf_dir(tmp_path / "shape", cfg, bad))
    msg = str(e.value)
    assert "size mismatch for model.layers.0.self_attn.k_proj.weight" in msg and "(32, 48)" in msg
    assert '"model.layers.0.extra.weight"' in msg

    # a config that does not fit the weights (3 layers): the layer-2 tensors are missing
    with pytest.raises(StateDictError, match=r"model\.layers\.2\.self_attn\.q_proj\.weight"):
        load_model(write_hf_dir(tmp_path / "config", hf_config_dict(num_hidden_layers=3), sd))

    bad = dict(sd)
    bad["model.norm.weight"] = np.ones(64, np.int32)
    with pytest.raises(CheckpointError, match="'model.norm.weight' has dtype I32"):
        load_model(write_hf_dir(tmp_path / "dtype", cfg, bad))

    d = write_hf_dir(tmp_path / "corrupt", cfg, sd)
    raw = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_model(d)

    empty = tmp_path / "no_weights"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FileNotFoundError, match="neither"):
        load_model(empty)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_model(_no_config(tmp_path, sd))
    with pytest.raises(ValueError, match="dtype 'f16' is not supported"):
        load_model(tmp_path / "missing", dtype="f16")


def _no_config(tmp_path: Path, sd: Dict[str, np.ndarray]) -> Path:
    d = tmp_path / "noconfig2"
    d.mkdir()
    save_file(sd, d / "model.safetensors")
    return d


# ---------------------------------------------------------------- GGUF


def test_qk_permutation_and_names() -> None:
    w = np.arange(2 * 8 * 3).reshape(16, 3)
    p = permute_qk(w, 2)
    assert not np.array_equal(p, w)
    np.testing.assert_array_equal(unpermute_qk(p, 2), w)
    # within a head, halves (rotate_half layout) become interleaved pairs
    assert permute_qk(np.arange(8), 1).tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    for hf, gg in [("model.embed_tokens.weight", "token_embd.weight"), ("lm_head.weight", "output.weight"),
                   ("model.norm.weight", "output_norm.weight"),
                   ("model.layers.7.input_layernorm.weight", "blk.7.attn_norm.weight"),
                   ("model.layers.7.post_attention_layernorm.weight", "blk.7.ffn_norm.weight"),
                   ("model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"),
                   ("model.layers.0.self_attn.o_proj.bias", "blk.0.attn_output.bias"),
                   ("model.layers.3.mlp.gate_proj.weight", "blk.3.ffn_gate.weight")]:
        assert hf_to_gguf_name(hf) == gg and gguf_to_hf_name(gg) == hf
    assert gguf_to_hf_name("blk.0.token_embd.weight") is None and gguf_to_hf_name("rope_freqs.weight") is None


# llama.cpp's k-quant (and IQ4_XS) mixes, simplified: Q6_K for the output,
# more bits for the down (and Q3_K_M's value) projections, the named type for
# the other matrices (and the embedding).
_K_MIX = {"Q2_K": {"output": "Q6_K", "ffn_down": "Q3_K", "*": "Q2_K"},
          "IQ4_XS": {"output": "Q6_K", "ffn_down": "IQ4_XS", "*": "IQ4_XS"},
          "Q3_K_M": {"output": "Q6_K", "ffn_down": "Q4_K", "attn_v": "Q5_K", "*": "Q3_K"},
          "Q4_K_M": {"output": "Q6_K", "ffn_down": "Q6_K", "*": "Q4_K"},
          "Q5_K_M": {"output": "Q6_K", "ffn_down": "Q6_K", "*": "Q5_K"}}


def assert_clear_top_tokens_agree(got: np.ndarray, want: np.ndarray, every: bool = False) -> None:
    """The top tokens agree at every position whose top-2 margin in ``want``
    is more than twice that position's error (a near tie may flip), and
    there are at least two such positions (the check is not vacuous). With
    ``every``, at all positions: the Q8_0 and Q4_K_M files these tests began
    with have no near tie (seeded); Q5_0, IQ4_NL, Q3_K_M and Q5_K_M do."""
    if every:
        assert np.array_equal(got.argmax(-1), want.argmax(-1))
    err = np.abs(got - want).max(-1)
    top2 = np.sort(want, axis=-1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 2 * err
    assert clear.sum() >= 2
    assert np.array_equal(got.argmax(-1)[clear], want.argmax(-1)[clear])


def _iq4_nl_blocks(v: np.ndarray) -> np.ndarray:
    """IQ4_NL blocks of ``v`` (gguf cannot quantize it): per 32 values, the
    signed value of largest magnitude maps to level -127, each value to its
    nearest level."""
    from luminal.io.gguf import IQ4_NL_VALUES

    b = v.reshape(-1, 32)
    d = (np.take_along_axis(b, np.abs(b).argmax(1)[:, None], 1) / -127).astype(np.float16)
    nib = np.abs(b[:, :, None] - d.astype(np.float32)[:, :, None] * IQ4_NL_VALUES.astype(np.float32)).argmin(2)
    nib = nib.astype(np.uint8)
    out = np.concatenate([d.view(np.uint8), nib[:, :16] | (nib[:, 16:] << 4)], axis=1)
    return out.reshape(v.shape[0], -1)


def write_gguf(
    path: Path,
    sd: Dict[str, np.ndarray],
    cfg: Dict[str, Any],
    quant: str = "F32",
    arch: str = "llama",
    edit: Optional[Callable[[Dict[str, np.ndarray]], None]] = None,
    metadata: Optional[Dict[str, Any]] = None,
) -> Dict[str, np.ndarray]:
    """Write ``sd`` as llama.cpp would (its names, q/k rows permuted, 2-D
    weights quantized to ``quant``); return the weights as stored, dequantized,
    in Hugging Face's names and row order. ``metadata``: keys to set (or
    overwrite) last, each a (value, GGUFValueType name) pair."""
    gguf = pytest.importorskip("gguf")
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    w = gguf.GGUFWriter(str(path), arch=arch)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_rope_freq_base(float(cfg.get("rope_theta", 10000.0)))
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_tokenizer_model("llama")
    w.add_token_list(["<unk>", "<s>", "</s>"] + [f"t{i}" for i in range(3, cfg["vocab_size"])])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    set_gguf_metadata(w, metadata or {})
    tensors = {hf_to_gguf_name(k): v for k, v in sd.items()}
    if edit is not None:
        edit(tensors)
    stored: Dict[str, np.ndarray] = {}
    for name, v in tensors.items():
        hf = gguf_to_hf_name(name) or name
        v = np.asarray(v, np.float32)
        if ".attn_q." in name:
            v = permute_qk(v, heads)
        elif ".attn_k." in name:
            v = permute_qk(v, kv)
        if quant != "F32" and v.ndim == 2:
            mix = _K_MIX.get(quant, {"*": quant})
            kind = mix.get(name.split(".")[-2], mix["*"])
            qt = getattr(gguf.GGMLQuantizationType, kind)
            if kind.lower() in lm_quant.K_QUANTS:  # gguf cannot quantize these: luminal's quantizer
                q = lm_quant.quantize(v, kind.lower()).reshape(v.shape[0], -1)
            elif kind == "IQ4_NL":
                q = _iq4_nl_blocks(v)
            else:
                q = gguf.quants.quantize(v, qt)
            w.add_tensor(name, q, raw_dtype=qt)
            v = gguf.quants.dequantize(q, qt)
        else:
            w.add_tensor(name, v)
        if ".attn_q." in name:
            v = unpermute_qk(v, heads)
        elif ".attn_k." in name:
            v = unpermute_qk(v, kv)
        stored[hf] = v
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return stored


def test_gguf_f32_matches_transformers(tmp_path: Path) -> None:
    hf = hf_model()
    path = tmp_path / "tiny-f32.gguf"
    write_gguf(path, hf_numpy_sd(hf), TINY)
    model = LlamaForCausalLM.from_pretrained(path)
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.kv_heads, cfg.vocab_size) == (64, 2, 2, 100)
    assert (cfg.rms_norm_eps, cfg.bos_token_id, cfg.eos_token_id) == (pytest.approx(1e-5), 1, 2)
    assert not cfg.tie_word_embeddings and cfg.max_position_embeddings == 256
    np.testing.assert_allclose(logits_of(model), hf_logits(hf), atol=1e-4, rtol=0)


def test_gguf_q8_0(tmp_path: Path) -> None:
    hf = hf_model()
    path = tmp_path / "tiny-q8_0.gguf"
    stored = write_gguf(path, hf_numpy_sd(hf), TINY, quant="Q8_0")
    got = logits_of(load_model(path))
    # tight against transformers running the dequantized weights ...
    np.testing.assert_allclose(got, hf_logits(hf, stored), atol=1e-4, rtol=0)
    # ... and close to the original model (8-bit weights)
    want = hf_logits(hf)
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()


@pytest.mark.parametrize("quant", ["Q8_0", "Q5_0", "IQ4_NL"])
def test_gguf_q8_0_kept_quantized(tmp_path: Path, quant: str) -> None:
    """quantized=True: projections stay Q8_0 blocks (QuantizedParameter; Q5_0
    and IQ4_NL become Q8_0 blocks of the same values); the reference executor
    dequantizes them exactly, the CPU compiler runs int8 products with
    quantized activations (llama.cpp's numerics)."""
    hf = hf_model()
    path = tmp_path / f"tiny-{quant}.gguf"
    stored = write_gguf(path, hf_numpy_sd(hf), TINY, quant=quant)
    model = load_model(path, quantized=True)
    q = model.model.layers[0].self_attn.q_proj.weight
    assert isinstance(q, nn.QuantizedParameter) and q.format == "q8_0"
    np.testing.assert_array_equal(q.data, stored["model.layers.0.self_attn.q_proj.weight"])
    emb = model.model.embed_tokens.weight  # kept too: a step dequantizes its tokens' rows only
    assert isinstance(emb, nn.QuantizedParameter) and emb.format == "q8_0"
    np.testing.assert_array_equal(emb.rows(PROMPT), stored["model.embed_tokens.weight"][PROMPT])
    want = hf_logits(hf, stored)
    np.testing.assert_allclose(logits_of(model), want, atol=1e-4, rtol=0)
    got = logits_of(model, cpu=True)
    # the activations' int8 rounding: measured 3.4% (Q8_0), 6.2% (Q5_0), 4.8%
    # (IQ4_NL) of the largest logit; llama.cpp 2.9%, 4.2%, 4.3% on these files
    assert np.abs(got - want).max() < (0.05 if quant == "Q8_0" else 0.1) * np.abs(want).max()
    assert_clear_top_tokens_agree(got, want, every=quant == "Q8_0")


@pytest.mark.parametrize("quant", ["Q8_0", "Q4_K_M"])
def test_gguf_tied_embeddings_kept_quantized(tmp_path: Path, quant: str) -> None:
    """A tied GGUF (no output.weight), quantized=True: the embedding table
    stays as stored and is the output product's weight, so no float32
    matrix is left in the model (as f32, a Llama-3.2-1B's tied table alone
    is 1 GB read per token); logits match transformers on the stored values
    (reference executor) and, on the CPU, the model with the table widened
    within the output product's int8 rounding."""
    hf = hf_model(tie_word_embeddings=True, hidden_size=256, intermediate_size=512)
    path = tmp_path / f"tied-{quant}.gguf"
    cfg = {**TINY, "hidden_size": 256, "intermediate_size": 512}
    stored = write_gguf(path, hf_numpy_sd(hf), cfg, quant=quant, edit=lambda t: t.pop("output.weight"))
    model = load_model(path, quantized=True)
    assert model.config.tie_word_embeddings
    emb = model.model.embed_tokens.weight
    assert isinstance(emb, nn.QuantizedParameter) and emb.format == ("q8_0" if quant == "Q8_0" else "q4_k")
    floats = [k for k, p in model.state_dict(keep_vars=True).items()
              if p.ndim == 2 and not isinstance(p, nn.QuantizedParameter)]
    assert floats == []
    np.testing.assert_allclose(logits_of(model), hf_logits(hf, stored), atol=1e-4, rtol=0)
    # on the CPU, against the same model with the table widened to float32:
    # only the output product's int8 activations differ (measured 0.6% of
    # the largest logit for Q8_0, 0.8% for Q4_K_M)
    got = logits_of(model, cpu=True)
    model.model.embed_tokens.weight = nn.Parameter(emb.data, requires_grad=False)
    widened = logits_of(model, cpu=True)
    assert np.abs(got - widened).max() < 0.02 * np.abs(widened).max()
    np.testing.assert_array_equal(got.argmax(-1), widened.argmax(-1))


@pytest.mark.parametrize("quant", ["F16", "BF16"])
def test_gguf_half_kept_packed(tmp_path: Path, quant: str) -> None:
    """A GGUF with F16/BF16 matrices, quantized=True: they stay packed halves
    (q/k rows reordered back to transformers' order) and the CPU kernels
    match transformers on the stored values."""
    hf = hf_model()
    path = tmp_path / f"tiny-{quant}.gguf"
    stored = write_gguf(path, hf_numpy_sd(hf), TINY, quant=quant)
    model = load_model(path, quantized=True)
    q = model.model.layers[0].self_attn.q_proj.weight
    assert isinstance(q, nn.QuantizedParameter) and q.format == quant.lower() + "_packed"
    np.testing.assert_array_equal(q.data, stored["model.layers.0.self_attn.q_proj.weight"])
    want = hf_logits(hf, stored)
    np.testing.assert_allclose(logits_of(model), want, atol=1e-4, rtol=0)
    np.testing.assert_allclose(logits_of(model, cpu=True), want, atol=1e-4, rtol=0)


# Rows of whole 256-value super-blocks; weights scaled down with the width so
# activations stay as large as TINY's (int8 activations' error grows with them).
_K_TINY = dict(hidden_size=256, intermediate_size=512, initializer_range=0.1)


@pytest.mark.parametrize("mix", list(_K_MIX))
def test_gguf_k_quants_kept_quantized(tmp_path: Path, mix: str) -> None:
    """GGUFs in llama.cpp's k-quant mixes (Q2_K .. Q5_K_M: mostly the named
    type, more bits for the down and output projections), quantized=True:
    the blocks stay as stored (2.6 to 6.6 bits a weight); the reference
    executor matches transformers on the stored values tightly, the CPU's
    int8 kernels within the activations' quantization error."""
    hf = hf_model(**_K_TINY)
    path = tmp_path / f"tiny-{mix.lower()}.gguf"
    stored = write_gguf(path, hf_numpy_sd(hf), {**TINY, **_K_TINY}, quant=mix)
    model = load_model(path, quantized=True)
    layer = model.model.layers[0]
    q, down, head = layer.self_attn.q_proj.weight, layer.mlp.down_proj.weight, model.lm_head.weight
    assert isinstance(q, nn.QuantizedParameter) and q.format == _K_MIX[mix]["*"].lower()
    assert isinstance(down, nn.QuantizedParameter) and down.format == _K_MIX[mix]["ffn_down"].lower()
    assert isinstance(head, nn.QuantizedParameter) and head.format == "q6_k"
    np.testing.assert_array_equal(q.data, stored["model.layers.0.self_attn.q_proj.weight"])  # q rows unpermuted
    want = hf_logits(hf, stored)
    np.testing.assert_allclose(logits_of(model), want, atol=1e-4, rtol=0)
    # int8 activations per 256 values (llama.cpp's Q8_K) err more than per 32:
    # llama.cpp itself is 3.7-5.6% off on these files (test below)
    got = logits_of(model, cpu=True)
    assert np.abs(got - want).max() < 0.1 * np.abs(want).max()
    assert_clear_top_tokens_agree(got, want, every=mix == "Q4_K_M")
    np.testing.assert_allclose(logits_of(load_model(path)), want, atol=1e-4, rtol=0)  # widened to f32


@pytest.mark.parametrize("quant", ["Q8_0", "Q5_0", "IQ4_NL", *_K_MIX])
def test_gguf_quantized_against_llama_cpp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quant: str) -> None:
    """An independent reference: llama.cpp on the same Q8_0, Q5_0, IQ4_NL or
    k-quant file (its int8 kernels quantize activations as luminal's do, and
    it keeps its KV cache in f16); it also reads the blocks luminal's
    quantizers write as luminal does. By default the 7-token prompt (Q8_0
    blocks) runs the int8 GEMM where the CPU has AVX512-VNNI and no AMX:
    the same product as the int8 kernels to float rounding; on bf16 tiles
    (by default with AMX, LUMINAL_AMX=1 on AVX512-BF16) its logits are
    nearer the exact product than llama.cpp's."""
    from helpers import bf16_tiles_cpu, int8_gemm_cpu
    from test_cpu_amx import Q8_0_TILE_ROWS

    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    over = _K_TINY if quant in _K_MIX else {}
    hf = hf_model(**over)
    path = tmp_path / f"tiny-{quant}.gguf"
    write_gguf(path, hf_numpy_sd(hf), {**TINY, **over}, quant=quant)
    llm = llama_cpp.Llama(model_path=str(path), n_threads=2, n_ctx=64, logits_all=True, verbose=False)
    ids = [int(i) for i in PROMPT.reshape(-1)]
    llm.eval(ids)
    theirs = np.array(llm.scores[: len(ids)], dtype=np.float32)
    monkeypatch.setenv("LUMINAL_AMX", "0")  # the int8 kernels
    ours = logits_of(load_model(path, quantized=True), cpu=True)
    # both quantize activations (k-quants per 256), with different rounding
    assert np.abs(ours - theirs).max() < (0.05 if quant in _K_MIX else 0.04) * np.abs(theirs).max()
    if quant in _K_MIX:
        return
    if int8_gemm_cpu():
        monkeypatch.delenv("LUMINAL_AMX")  # the default: this prompt on the int8 GEMM
        gemm = logits_of(load_model(path, quantized=True), cpu=True)
        assert not np.array_equal(gemm, ours)
        np.testing.assert_allclose(gemm, ours, rtol=0, atol=1e-5 * np.abs(ours).max())
    if not bf16_tiles_cpu() or len(ids) < Q8_0_TILE_ROWS:
        return
    monkeypatch.setenv("LUMINAL_AMX", "1")  # this prompt on the tiles
    tiles = logits_of(load_model(path, quantized=True), cpu=True)
    exact = logits_of(load_model(path))  # the stored values widened to f32
    assert not np.array_equal(tiles, ours)
    assert np.abs(tiles - exact).max() < np.abs(theirs - exact).max()


def test_gguf_without_transformers(tmp_path: Path) -> None:
    """A GGUF written from a luminal state_dict loads back to the same model
    (tied embeddings: no output.weight)."""
    cfg = hf_config_dict(tie_word_embeddings=True, rope_theta=50000.0)
    lcfg = LlamaConfig.from_hf(cfg)
    sd = random_state_dict(lcfg)
    path = tmp_path / "tied.gguf"
    stored = write_gguf(path, sd, cfg)
    model = load_model(path)
    assert model.config.tie_word_embeddings and model.config.rope_theta == 50000.0
    for k, p in model.state_dict(keep_vars=True).items():
        np.testing.assert_array_equal(p.data, stored[k], err_msg=k)
    ref = LlamaForCausalLM(lcfg).eval()
    ref.load_state_dict(sd)
    np.testing.assert_allclose(logits_of(model), logits_of(ref), atol=1e-5, rtol=0)


def test_gguf_rope_freqs(tmp_path: Path) -> None:
    """Llama 3.1-style GGUFs store rope scaling as a rope_freqs tensor of
    divisors; loading one gives the llama3-scaled model."""
    from luminal.models import rope_inv_freq

    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16}
    scaled = LlamaConfig.from_hf(hf_config_dict(rope_theta=500000.0, rope_scaling=scaling))
    plain_cfg = hf_config_dict(rope_theta=500000.0)
    sd = random_state_dict(scaled)
    factors = rope_inv_freq(LlamaConfig.from_hf(plain_cfg)) / rope_inv_freq(scaled)
    assert factors.max() > 1.5  # the scaling changes some frequencies

    def add_freqs(t: Dict[str, np.ndarray]) -> None:
        t["rope_freqs.weight"] = factors.astype(np.float32)

    path = tmp_path / "llama31.gguf"
    write_gguf(path, sd, plain_cfg, edit=add_freqs)
    model = load_model(path)
    ref = LlamaForCausalLM(scaled).eval()
    ref.load_state_dict(sd)
    np.testing.assert_allclose(model.model.rotary_emb.inv_freq.data, rope_inv_freq(scaled), rtol=1e-6)
    np.testing.assert_allclose(logits_of(model), logits_of(ref), atol=1e-5, rtol=0)
    for bad in (0.0, -1.0, float("nan")):  # divisors: a 0 made every position's rotation NaN
        factors[3] = bad
        write_gguf(path, sd, plain_cfg, edit=add_freqs)
        with pytest.raises(CheckpointError, match="rope_freqs.weight holds a factor that is not a positive"):
            load_model(path)


def test_gguf_errors(tmp_path: Path) -> None:
    cfg = hf_config_dict()
    sd = random_state_dict(LlamaConfig.from_hf(cfg))

    path = tmp_path / "gpt2.gguf"
    write_gguf(path, sd, cfg, arch="gpt2")
    with pytest.raises(CheckpointError, match="general.architecture is 'gpt2'"):
        load_model(path)

    path = tmp_path / "missing.gguf"
    write_gguf(path, sd, cfg, edit=lambda t: t.pop("blk.1.ffn_down.weight"))
    with pytest.raises(StateDictError, match=r"blk\.1\.ffn_down\.weight \(model\.layers\.1\.mlp\.down_proj\.weight\)"):
        load_model(path)

    def reshape(t: Dict[str, np.ndarray]) -> None:
        t["blk.0.ffn_up.weight"] = np.zeros((96, 64), np.float32)
        t["blk.0.mystery.weight"] = np.zeros(4, np.float32)

    path = tmp_path / "shape.gguf"
    write_gguf(path, sd, cfg, edit=reshape)
    with pytest.raises(StateDictError) as e:
        load_model(path)
    msg = str(e.value)
    assert "size mismatch for blk.0.ffn_up.weight (model.layers.0.mlp.up_proj.weight)" in msg
    assert "(96, 64)" in msg and "blk.0.mystery.weight" in msg

    path = tmp_path / "q4_1.gguf"
    write_gguf(path, sd, cfg, quant="Q4_1")
    with pytest.raises(CheckpointError, match="Q4_1 cannot be loaded yet"):
        load_model(path)

    path = tmp_path / "truncated.gguf"
    write_gguf(path, sd, cfg)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError, match="truncated.gguf"):
        load_model(path)


def test_gguf_metadata_to_config(tmp_path: Path) -> None:
    from luminal.io.gguf import GGUFFile

    cfg = hf_config_dict()
    path = tmp_path / "cfg.gguf"
    write_gguf(path, random_state_dict(LlamaConfig.from_hf(cfg)), cfg)
    with GGUFFile(path) as f:
        c = config_from_gguf(f)
    assert (c.vocab_size, c.hidden_size, c.intermediate_size, c.num_hidden_layers) == (100, 64, 128, 2)
    assert (c.num_attention_heads, c.kv_heads, c.head_size, c.rope_theta) == (4, 2, 16, 10000.0)
    assert c.sliding_window is None and c.model_type == "llama"
    assert load_config(path) == c


# ---------------------------------------------------------------- model ids


def test_resolve_model_path(tmp_path: Path) -> None:
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a Hugging Face id"):
        resolve_model_path(str(tmp_path / "nowhere"))
    pytest.importorskip("huggingface_hub")
    with pytest.raises(FileNotFoundError, match="setup.sh"):
        resolve_model_path("someone/not-downloaded", cache_dir=tmp_path)
    # a cached snapshot is found without any network access
    repo = tmp_path / "models--someone--tiny"
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    assert Path(resolve_model_path("someone/tiny", cache_dir=tmp_path)) == snap


def hub_error(cls: type) -> Exception:
    """An instance of a huggingface_hub HTTP error class, without the HTTP
    response its constructor wants."""
    e = cls.__new__(cls)
    Exception.__init__(e, "from the hub")
    return e


def test_resolve_model_path_downloads_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """download=True fetches what the cache lacks, the checkpoint's files
    only (HF_DOWNLOAD_PATTERNS: no consolidated.safetensors) or the one GGUF
    file named; hub errors become FileNotFoundError / PermissionError saying
    what to do. huggingface_hub's downloaders are replaced: no network."""
    hub = pytest.importorskip("huggingface_hub")
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, LocalEntryNotFoundError

    from luminal.models.loading import HF_DOWNLOAD_PATTERNS

    calls: list[tuple[str, dict]] = []
    snap = tmp_path / "snap"
    snap.mkdir()
    failure: list[Exception] = []

    def snapshot_download(repo: str, **kw: object) -> str:
        calls.append((repo, kw))
        if kw["local_files_only"]:
            raise LocalEntryNotFoundError("not cached")
        if failure:
            raise failure[0]
        (snap / "config.json").write_text("{}")
        return str(snap)

    def hf_hub_download(repo: str, filename: str, **kw: object) -> str:
        calls.append((repo, {"filename": filename, **kw}))
        if kw["local_files_only"]:
            raise LocalEntryNotFoundError("not cached")
        if failure:
            raise failure[0]
        (tmp_path / Path(filename).name).write_bytes(b"GGUF")
        return str(tmp_path / Path(filename).name)

    monkeypatch.setattr(hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(hub, "hf_hub_download", hf_hub_download)
    with pytest.raises(FileNotFoundError, match="download=True"):
        resolve_model_path("org/model")
    assert [kw["local_files_only"] for _, kw in calls] == [True]  # looked in the cache only
    calls.clear()
    assert resolve_model_path("org/model", download=True) == str(snap)
    assert calls[1] == ("org/model", dict(cache_dir=None, local_files_only=False,
                                          allow_patterns=list(HF_DOWNLOAD_PATTERNS)))
    assert "model*.safetensors" in HF_DOWNLOAD_PATTERNS and "consolidated.safetensors" not in HF_DOWNLOAD_PATTERNS
    calls.clear()
    got = resolve_model_path("org/model-GGUF/sub/Model-Q8_0.gguf", cache_dir=tmp_path, download=True)
    assert Path(got) == tmp_path / "Model-Q8_0.gguf"
    assert calls[1] == ("org/model-GGUF", dict(filename="sub/Model-Q8_0.gguf", cache_dir=str(tmp_path),
                                               local_files_only=False))
    (snap / "config.json").unlink()
    for error, kind, match in [(hub_error(GatedRepoError), PermissionError, "is gated: accept its terms"),
                               (EntryNotFoundError("no file"), FileNotFoundError, "has no file 'x.gguf'"),
                               # offline: also an EntryNotFoundError, but no file is missing
                               (LocalEntryNotFoundError("offline"), FileNotFoundError, "Hub is out of reach"),
                               (OSError("disk full"), FileNotFoundError, "downloading .* failed .*disk full")]:
        failure[:] = [error]
        with pytest.raises(kind, match=match):
            resolve_model_path("org/model/x.gguf" if "file" in match else "org/model", download=True)
    failure.clear()
    monkeypatch.setattr(hub, "snapshot_download", lambda repo, **kw: str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json.*a GGUF repo"):
        resolve_model_path("org/gguf-only")


@pytest.mark.parametrize("key, value, match", [
    ("llama.attention.head_count", (0, "UINT32"), "head_count is 0, not positive"),
    ("llama.block_count", (2**32 - 8, "UINT32"), "num_hidden_layers must be a positive int"),
    # built first, 10,000 layers took seconds before the StateDictError (and 2**31 never ended)
    ("llama.block_count", (10_000, "UINT32"), r"10000 layers but the checkpoint has tensors for 2"),
    ("llama.embedding_length", (2**30, "UINT32"), "describes .* parameters"),
    ("llama.attention.key_length", (2**28, "UINT32"), "describes .* parameters"),
    ("llama.rope.freq_base", ([1.0, 2.0], "ARRAY"), "freq_base is .*not a number"),
    ("general.architecture", ([1, 2], "ARRAY"), r"general.architecture is array\(\[1, 2\]"),
    ("llama.attention.layer_norm_rms_epsilon", ("x", "STRING"), "epsilon is 'x', not a number"),
    ("llama.rope.scaling.type", ([1, 2], "ARRAY"), "scaling.type is .*not a string"),
    ("llama.rope.scaling.factor", ("abc", "STRING"), "scaling.factor is 'abc', not a number"),
    ("tokenizer.ggml.bos_token_id", ("a", "STRING"), "bos_token_id is 'a', not an integer"),
    ("tokenizer.ggml.eos_token_id", (float("inf"), "FLOAT32"), "eos_token_id is inf, not an integer"),
])
def test_gguf_hostile_metadata(tmp_path: Path, key: str, value: Any, match: str) -> None:
    """Metadata of the wrong type, or describing a model the tensors cannot
    be, is a CheckpointError naming the file, raised before the model is
    built (no ZeroDivisionError, TypeError, huge allocation or endless build)."""
    cfg = hf_config_dict()
    path = tmp_path / "hostile.gguf"
    write_gguf(path, random_state_dict(LlamaConfig.from_hf(cfg)), cfg, metadata={key: value})
    for quantized in (False, True):
        with pytest.raises(CheckpointError, match=match) as e:
            load_model(path, quantized=quantized)
        assert str(e.value).startswith(str(path)) and str(path) not in e.value.problem


@pytest.mark.parametrize("over, match", [
    (dict(rms_norm_eps=None), "rms_norm_eps must be a finite number >= 0, got None"),
    (dict(rms_norm_eps=[1e-5]), "rms_norm_eps must be a finite number"),
    (dict(rope_theta={"a": 1}), "rope_theta must be a positive finite number"),
    (dict(rope_theta=10**400), "rope_theta must be a positive finite number, got <1329-bit integer>"),
    (dict(head_dim=10**400), "head_dim must be a positive int"),
    (dict(num_hidden_layers=10_000), r"10000 layers but the checkpoint has tensors for 2"),
    # tiny layers: within the parameter bound, yet 40,000 of them took 30 s to build
    (dict(num_hidden_layers=40_000, hidden_size=2, intermediate_size=1, num_attention_heads=1,
          num_key_value_heads=1, vocab_size=2), r"40000 layers but the checkpoint has tensors for 2"),
    (dict(hidden_size=2**20, num_attention_heads=4), "describes .* parameters"),
    (dict(rope_scaling={"rope_type": ["llama3"]}), "rope_type must be a string"),
    (dict(rope_scaling="linear"), "rope_scaling must be a dict or None"),
    (dict(rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 0,
                        "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
     "low_freq_factor must be a positive finite number, got 0"),
    (dict(rope_scaling={"rope_type": "linear", "factor": [2.0]}), "factor must be a positive finite number"),
    (dict(model_type="mistral", sliding_window=10**400), "sliding_window must be None or a positive int"),
    (dict(bos_token_id=[1.5]), "bos_token_id must be None, a token id or a list of them"),
    (dict(eos_token_id="2"), "eos_token_id must be None, a token id or a list of them"),
])
def test_hf_config_hostile_values(tmp_path: Path, over: Dict[str, Any], match: str) -> None:
    """config.json values of the wrong type or size: a CheckpointError naming
    config.json, before the model is built."""
    sd = random_state_dict(LlamaConfig.from_hf(hf_config_dict()))
    d = write_hf_dir(tmp_path / "m", hf_config_dict(**over), sd)
    with pytest.raises(CheckpointError, match=match) as e:
        load_model(d)
    # a value of the wrong type is config.json's fault; a model the weights cannot be, the checkpoint's
    blamed = "model.safetensors" if "parameters" in match or "the checkpoint" in match else "config.json"
    assert e.value.path == str(d / blamed)


@pytest.mark.parametrize("text, kind", [
    ("", "JSONDecodeError"), ("{'a': 1}", "JSONDecodeError"), ("[" * 100_000, "RecursionError"),
    ('{"vocab_size": ' + "9" * 5000 + "}", "ValueError"),
])
def test_unreadable_config_json(tmp_path: Path, text: str, kind: str) -> None:
    sd = random_state_dict(LlamaConfig.from_hf(hf_config_dict()))
    d = write_hf_dir(tmp_path / "m", hf_config_dict(), sd)
    (d / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match=f"config.json: not a readable JSON config \\({kind}"):
        load_model(d)
    (d / "config.json").write_bytes(b'{"model_type": "\xff"}')
    with pytest.raises(CheckpointError, match="UnicodeDecodeError"):
        load_model(d)
