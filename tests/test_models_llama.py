"""luminal.models Llama/Mistral against transformers: prompt logits, greedy
decoding with the KV cache (one compiled graph for every step), and
LlamaConfig.from_hf."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import luminal as lm
from luminal.models import KVCache, LlamaConfig, LlamaForCausalLM, MistralForCausalLM, rope_inv_freq

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

PROMPT = np.array([[3, 17, 42, 9, 88, 1, 5]], dtype=np.int64)
STEPS = 21  # 21 greedy tokens: the prompt step, then 20 decode steps with the cache
ATOL = 1e-4

_LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 16}


@dataclass
class Case:
    name: str
    kind: str  # "llama" | "mistral"
    kw: Dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("llama-mha", "llama", dict(num_attention_heads=4, num_key_value_heads=4)),
    Case("llama-gqa2-tied-theta5e5", "llama",
         dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, rope_theta=500000.0)),
    Case("llama-gqa4-llama3", "llama",
         dict(num_attention_heads=4, num_key_value_heads=1, rope_theta=500000.0, rope_scaling=_LLAMA3)),
    Case("llama-linear-bias", "llama",
         dict(num_attention_heads=4, num_key_value_heads=2, hidden_size=48, attention_bias=True,
              rope_scaling={"rope_type": "linear", "factor": 2.0})),
    Case("mistral-window4", "mistral",
         dict(num_attention_heads=4, num_key_value_heads=2, sliding_window=4, head_dim=16)),
    Case("mistral-window3-tied", "mistral",
         dict(num_attention_heads=4, num_key_value_heads=1, sliding_window=3, tie_word_embeddings=True)),
]
CASE_IDS = [c.name for c in CASES]

_MODELS: Dict[str, Tuple[Any, LlamaConfig, Dict[str, np.ndarray]]] = {}
_REFERENCE: Dict[str, Tuple[np.ndarray, List[np.ndarray], List[int]]] = {}


def hf_state_dict_numpy(model: Any) -> Dict[str, np.ndarray]:
    """A transformers model's state_dict as float32 numpy arrays (HF names)."""
    return {k: v.detach().to(torch.float32).cpu().numpy() for k, v in model.state_dict().items()}


def hf_model(case: Case) -> Tuple[Any, LlamaConfig, Dict[str, np.ndarray]]:
    """A tiny random transformers model (eval, float32, eager attention), its
    LlamaConfig and its numpy state_dict; built once per case."""
    if case.name not in _MODELS:
        torch.manual_seed(0)
        kw: Dict[str, Any] = dict(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                  initializer_range=0.2, bos_token_id=None, eos_token_id=None,
                                  attn_implementation="eager")
        kw.update(case.kw)
        if "rope_theta" in kw or "rope_scaling" in kw:  # transformers 5 takes both as rope_parameters
            params = dict(kw.pop("rope_scaling", None) or {"rope_type": "default"})
            params["rope_theta"] = kw.pop("rope_theta", 10000.0)
            kw["rope_parameters"] = params
        cls_cfg = transformers.LlamaConfig if case.kind == "llama" else transformers.MistralConfig
        cls = transformers.LlamaForCausalLM if case.kind == "llama" else transformers.MistralForCausalLM
        model = cls(cls_cfg(**kw)).eval().to(torch.float32)
        with torch.no_grad():  # non-trivial norm weights and biases
            for name, p in model.named_parameters():
                if "norm" in name:
                    p.uniform_(0.5, 1.5)
                elif name.endswith(".bias"):
                    p.normal_(0.0, 0.2)
        _MODELS[case.name] = (model, LlamaConfig.from_hf(model.config), hf_state_dict_numpy(model))
    return _MODELS[case.name]


def reference(case: Case) -> Tuple[np.ndarray, List[np.ndarray], List[int]]:
    """transformers' prompt logits, per-step greedy logits and greedy tokens."""
    if case.name not in _REFERENCE:
        model = hf_model(case)[0]
        prompt = torch.tensor(PROMPT)
        with torch.no_grad():
            full = model(prompt).logits[0].numpy()
            out = model.generate(prompt, max_new_tokens=STEPS, do_sample=False, output_logits=True,
                                 return_dict_in_generate=True, pad_token_id=0)
        steps = [lg[0].numpy() for lg in out.logits]
        tokens = out.sequences[0, PROMPT.shape[1]:].tolist()
        assert len(tokens) == STEPS
        _REFERENCE[case.name] = (full, steps, tokens)
    return _REFERENCE[case.name]


def luminal_model(case: Case) -> Tuple[LlamaForCausalLM, LlamaConfig]:
    _, cfg, sd = hf_model(case)
    model = LlamaForCausalLM(cfg).eval()
    model.load_state_dict(sd)
    return model, cfg


def cpu_compile(cx: lm.Graph) -> None:
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())


def greedy(
    cx: lm.Graph, ids: lm.Tensor, logits: lm.Tensor, cache: KVCache, steps: int
) -> Tuple[np.ndarray, List[np.ndarray], List[int]]:
    """Prefill PROMPT, then ``steps`` greedy tokens, one execute() each."""
    ids.set(PROMPT.astype(np.int32))
    cx.execute()
    prefill = logits.numpy()[0]  # read before after_step: setting the cache clears results
    cache.after_step(PROMPT.shape[1])
    step_logits, tokens = [prefill[-1]], []
    for s in range(steps):
        tok = int(step_logits[-1].argmax())
        tokens.append(tok)
        if s == steps - 1:
            break
        ids.set(np.array([[tok]], dtype=np.int32))
        cx.execute()
        step_logits.append(logits.numpy()[0, -1])
        cache.after_step(1)
    return prefill, step_logits, tokens


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_state_dict_keys_match_transformers(case: Case) -> None:
    hf, cfg, sd = hf_model(case)
    model = LlamaForCausalLM(cfg)
    want = set(sd) - ({"lm_head.weight"} if cfg.tie_word_embeddings else set())
    assert set(model.state_dict()) == want
    for k, v in model.state_dict().items():
        assert v.shape == sd[k].shape, k
    assert ("lm_head.weight" in model.state_dict()) == (not cfg.tie_word_embeddings)
    assert MistralForCausalLM is LlamaForCausalLM


def test_rope_inv_freq_matches_transformers() -> None:
    for case in CASES:
        hf, cfg, _ = hf_model(case)
        want = hf.model.rotary_emb.inv_freq.numpy()
        np.testing.assert_allclose(rope_inv_freq(cfg), want, rtol=1e-6, err_msg=case.name)


# ---------------------------------------------------------------- prompt logits


@pytest.mark.parametrize("compiled", [False, True], ids=["reference", "cpu"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_prompt_logits(case: Case, compiled: bool) -> None:
    model, _ = luminal_model(case)
    cx = lm.Graph()
    ids = cx.tensor((1, "seq"), name="ids", dtype="i32")
    logits = model(ids).retrieve()
    assert logits.shape[0] == 1 and logits.shape[2] == 100
    if compiled:
        cpu_compile(cx)
    ids.set(PROMPT.astype(np.int32))
    cx.execute()
    np.testing.assert_allclose(logits.numpy()[0], reference(case)[0], atol=ATOL, rtol=0)


def test_one_graph_two_prompt_lengths() -> None:
    case = CASES[4]  # mistral, window 4: the longer prompt also exceeds the window
    model, _ = luminal_model(case)
    hf = hf_model(case)[0]
    cx = lm.Graph()
    ids = cx.tensor((1, "seq"), name="ids", dtype="i32")
    logits = model(ids).retrieve()
    cpu_compile(cx)
    kernels = cx.kernel_count()
    rng = np.random.default_rng(1)
    for n in (5, 11, 2):
        prompt = rng.integers(0, 100, size=(1, n))
        ids.set(prompt.astype(np.int32))
        cx.execute()
        with torch.no_grad():
            want = hf(torch.tensor(prompt)).logits[0].numpy()
        assert logits.numpy().shape == (1, n, 100)
        np.testing.assert_allclose(logits.numpy()[0], want, atol=ATOL, rtol=0)
        assert cx.kernel_count() == kernels


def test_sliding_window_matters() -> None:
    """The Mistral cases really exercise the window: without it the logits differ."""
    case = CASES[4]
    _, cfg, sd = hf_model(case)
    no_window = LlamaConfig(**{**cfg.__dict__, "sliding_window": None})
    model = LlamaForCausalLM(no_window).eval()
    model.load_state_dict(sd)
    cx = lm.Graph()
    ids = cx.tensor((1, "seq"), dtype="i32")
    logits = model(ids).retrieve()
    ids.set(PROMPT.astype(np.int32))
    cx.execute()
    full = reference(case)[0]
    n = cfg.sliding_window
    assert n is not None
    np.testing.assert_allclose(logits.numpy()[0, :n], full[:n], atol=ATOL, rtol=0)
    assert np.abs(logits.numpy()[0, n:] - full[n:]).max() > 1e-2


# ---------------------------------------------------------------- decoding with the cache


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_greedy_decode_with_cache_compiled_once(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    compiles: List[int] = []
    real_run = lm.CPUCompiler.run

    def counting_run(self: lm.CPUCompiler, graph: lm.Graph) -> None:
        compiles.append(1)
        real_run(self, graph)

    monkeypatch.setattr(lm.CPUCompiler, "run", counting_run)
    model, cfg = luminal_model(case)
    cx = lm.Graph()
    ids = cx.tensor((1, "seq"), name="ids", dtype="i32")
    cache = KVCache(cx, cfg, batch=1)
    assert cache.length == 0 and cache.keys[0].shape[1:] == (1, cfg.kv_heads, cfg.head_size)
    logits = model(ids, cache).retrieve()
    cpu_compile(cx)
    assert len(compiles) == 1
    kernels, source = cx.kernel_count(), cx.kernel_source()
    assert kernels > 0

    full, want_steps, want_tokens = reference(case)
    prefill, steps, tokens = greedy(cx, ids, logits, cache, STEPS)
    np.testing.assert_allclose(prefill, full, atol=ATOL, rtol=0)
    assert tokens == want_tokens
    for s, (got, want) in enumerate(zip(steps, want_steps)):
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0, err_msg=f"step {s}")
    assert cache.length == PROMPT.shape[1] + STEPS - 1
    assert cx.dims["past"] == cache.length
    # the same compiled program ran every step
    assert len(compiles) == 1 and cx.kernel_count() == kernels and cx.kernel_source() == source

    # reset: the same graph decodes again from an empty cache
    cache.reset()
    assert cache.length == 0 and cx.dims["past"] == 0
    _, _, again = greedy(cx, ids, logits, cache, 4)
    assert again == want_tokens[:4]
    assert len(compiles) == 1


def test_greedy_decode_with_cache_reference_executor() -> None:
    case = CASES[5]  # mistral, window 3, GQA 4, tied
    model, cfg = luminal_model(case)
    cx = lm.Graph()
    ids = cx.tensor((1, "seq"), name="ids", dtype="i32")
    cache = model.new_cache(cx)
    logits = model(ids, cache).retrieve()
    full, want_steps, want_tokens = reference(case)
    prefill, steps, tokens = greedy(cx, ids, logits, cache, 10)
    np.testing.assert_allclose(prefill, full, atol=ATOL, rtol=0)
    assert tokens == want_tokens[:10]
    for got, want in zip(steps, want_steps):
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
    k, v = cache.numpy(0)
    assert k.shape == v.shape == (cache.length, 1, cfg.kv_heads, cfg.head_size)


def test_cache_prefill_in_two_chunks() -> None:
    """A multi-token block after a non-empty cache (causal mask within the
    block, window across the boundary) matches the one-shot prompt."""
    case = CASES[4]
    model, cfg = luminal_model(case)
    cx = lm.Graph()
    ids = cx.tensor((1, "seq"), name="ids", dtype="i32")
    cache = KVCache(cx, cfg)
    logits = model(ids, cache).retrieve()
    cpu_compile(cx)
    full = reference(case)[0]
    ids.set(PROMPT[:, :3].astype(np.int32))
    cx.execute()
    first = logits.numpy()[0]
    cache.after_step(3)
    ids.set(PROMPT[:, 3:].astype(np.int32))
    cx.execute()
    second = logits.numpy()[0]
    np.testing.assert_allclose(np.concatenate([first, second]), full, atol=ATOL, rtol=0)


def test_batch_of_two_with_cache() -> None:
    case = CASES[2]  # llama3 rope, GQA 4
    model, cfg = luminal_model(case)
    hf = hf_model(case)[0]
    prompts = np.array([[3, 17, 42, 9, 88], [50, 2, 71, 71, 6]])
    with torch.no_grad():
        out = hf.generate(torch.tensor(prompts), max_new_tokens=4, do_sample=False, output_logits=True,
                          return_dict_in_generate=True, pad_token_id=0)
    want = [lg.numpy() for lg in out.logits]
    cx = lm.Graph()
    ids = cx.tensor((2, "seq"), name="ids", dtype="i32")
    cache = KVCache(cx, cfg, batch=2)
    logits = model(ids, cache).retrieve()
    cpu_compile(cx)
    ids.set(prompts.astype(np.int32))
    for s in range(4):
        cx.execute()
        got = logits.numpy()[:, -1]
        np.testing.assert_allclose(got, want[s], atol=ATOL, rtol=0, err_msg=f"step {s}")
        toks = got.argmax(-1)
        assert toks.tolist() == out.sequences[:, prompts.shape[1] + s].tolist()
        cache.after_step(prompts.shape[1] if s == 0 else 1)
        ids.set(toks.reshape(2, 1).astype(np.int32))


def test_rope_at_large_positions() -> None:
    """cos/sin stay accurate far out (positions up to ~130k)."""
    for case in (CASES[0], CASES[2]):
        hf, cfg, _ = hf_model(case)
        model = LlamaForCausalLM(cfg)
        positions = np.array([0, 1, 4095, 8191, 65537, 131071], dtype=np.float32)
        cx = lm.Graph()
        pos = cx.tensor((len(positions),)).set(positions)
        cos, sin = model.model.rotary_emb(pos)
        cos.retrieve()
        sin.retrieve()
        cx.execute()
        with torch.no_grad():
            want_cos, want_sin = hf.model.rotary_emb(torch.zeros(1), torch.tensor(positions[None], dtype=torch.long))
        np.testing.assert_allclose(cos.numpy(), want_cos[0].numpy(), atol=2e-5, rtol=0)
        np.testing.assert_allclose(sin.numpy(), want_sin[0].numpy(), atol=2e-5, rtol=0)


def test_cache_errors() -> None:
    case = CASES[0]
    model, cfg = luminal_model(case)
    cx = lm.Graph()
    cache = KVCache(cx, cfg)
    with pytest.raises(RuntimeError, match="after_step"):
        cache.after_step(1)
    with pytest.raises(ValueError, match="batch"):
        model(cx.tensor((2, "seq"), dtype="i32"), cache)
    with pytest.raises(ValueError, match="different graph"):
        model(lm.Graph().tensor((1, "seq"), dtype="i32"), cache)
    with pytest.raises(TypeError, match="i32"):
        model(cx.tensor((1, "seq")))


# ---------------------------------------------------------------- config


def _base(**kw: Any) -> Dict[str, Any]:
    d: Dict[str, Any] = dict(model_type="llama", vocab_size=100, hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2, num_attention_heads=4)
    d.update(kw)
    return d


def test_config_from_hf_sources(tmp_path: Any) -> None:
    d = _base(num_key_value_heads=2, rope_theta=500000.0, tie_word_embeddings=True,
              rope_scaling={"type": "linear", "factor": 4.0}, eos_token_id=[1, 2])
    (tmp_path / "config.json").write_text(json.dumps(d))
    for src in (d, tmp_path, str(tmp_path), tmp_path / "config.json"):
        cfg = LlamaConfig.from_hf(src)
        assert (cfg.kv_heads, cfg.head_size, cfg.rope_theta, cfg.tie_word_embeddings) == (2, 8, 500000.0, True)
        assert cfg.rope_scaling == {"rope_type": "linear", "factor": 4.0}
        assert cfg.eos_token_id == [1, 2] and cfg.sliding_window is None
    m = LlamaConfig.from_hf(_base(model_type="mistral", sliding_window=None))
    assert m.model_type == "mistral" and m.sliding_window is None
    assert LlamaConfig.from_hf(_base(model_type="mistral")).sliding_window == 4096  # transformers' default
    assert LlamaConfig.from_hf(_base(rope_scaling={"rope_type": "default"})).rope_scaling is None
    cfg = LlamaConfig.from_hf(_base(rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                  "high_freq_factor": 4.0},
                                    max_position_embeddings=64))
    assert cfg.rope_scaling is not None and cfg.rope_scaling["original_max_position_embeddings"] == 64
    new_style = LlamaConfig.from_hf(_base(rope_parameters={"rope_type": "llama3", "rope_theta": 5e5, **{
        k: v for k, v in _LLAMA3.items() if k != "rope_type"}}))
    assert new_style.rope_theta == 5e5 and new_style.rope_type == "llama3"
    with pytest.raises(FileNotFoundError):
        LlamaConfig.from_hf(tmp_path / "nowhere")


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="'gpt2' is not supported.*llama, mistral"):
        LlamaConfig.from_hf(_base(model_type="gpt2"))
    with pytest.raises(ValueError, match="missing required key.*hidden_size.*num_hidden_layers"):
        LlamaConfig.from_hf({k: v for k, v in _base().items() if k not in ("hidden_size", "num_hidden_layers")})
    with pytest.raises(ValueError, match="model_type"):
        LlamaConfig.from_hf({k: v for k, v in _base().items() if k != "model_type"})
    with pytest.raises(ValueError, match="'yarn'"):
        LlamaConfig.from_hf(_base(rope_scaling={"rope_type": "yarn", "factor": 4.0}))
    with pytest.raises(ValueError, match="'dynamic'"):
        LlamaConfig.from_hf(_base(rope_scaling={"type": "dynamic", "factor": 4.0}))
    with pytest.raises(ValueError, match="missing key.*low_freq_factor"):
        LlamaConfig.from_hf(_base(rope_scaling={"rope_type": "llama3", "factor": 8.0, "high_freq_factor": 4.0}))
    with pytest.raises(ValueError, match="not a multiple of num_attention_heads"):
        LlamaConfig.from_hf(_base(num_attention_heads=5))
    with pytest.raises(ValueError, match="not a multiple of num_key_value_heads"):
        LlamaConfig.from_hf(_base(num_key_value_heads=3))
    with pytest.raises(ValueError, match="hidden_act"):
        LlamaConfig.from_hf(_base(hidden_act="gelu"))
    with pytest.raises(ValueError, match="sliding_window"):
        LlamaConfig.from_hf(_base(model_type="mistral", sliding_window=0))


def test_last_only_prunes_the_final_layer() -> None:
    """last_only (the final layer computes only the last position's query,
    attention output and MLP): its logits equal the last row of the full
    forward, sliding window included. The cache path is checked against
    transformers in test_generate."""
    cfg = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, sliding_window=4,
                      max_position_embeddings=64)
    model = LlamaForCausalLM(cfg).eval()
    ids = np.array([[3, 7, 1, 9, 4, 2, 8]], np.int32)
    cx = lm.Graph()
    t = cx.tensor((1, "seq"), dtype="i32")
    full = model(t).retrieve()
    last = model(t, last_only=True).retrieve()
    assert last.shape[1] == 1
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    t.set(ids)
    cx.execute()
    np.testing.assert_allclose(last.numpy()[:, 0], full.numpy()[:, -1], rtol=1e-5, atol=1e-5)
