"""Text generation (luminal.models.generate) and tokenizers
(luminal.models.tokenizer): sampling rules on fixed logits (against
transformers' logits processors when installed), seeded reproducibility,
greedy generation equal to transformers', one compile for every prompt,
SentencePiece-style and byte-level vocabularies, streaming detokenization,
chat templates, and the examples/mistral CLI demo."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest
from helpers import finish_metadata_gguf

import luminal as lm
import luminal.nn as nn
from luminal.models import Generator, LlamaConfig, LlamaForCausalLM, Sampler, Tokenizer, generate
from luminal.models.generate import (
    GenerationStats,
    apply_repetition_penalty,
    apply_top_k,
    apply_top_p,
    softmax,
)
from luminal.models.tokenizer import SentencePieceVocab, render_inst_chat

ROOT = Path(__file__).resolve().parent.parent
LOGITS = np.array([1.0, 4.0, -2.0, 3.0, 0.5, 3.5, -1.0, 2.0], dtype=np.float32)


# ---------------------------------------------------------------- sampling rules


def test_greedy_is_argmax() -> None:
    s = Sampler()
    assert s.greedy and s(LOGITS) == 1
    np.testing.assert_array_equal(s.probs(LOGITS), np.eye(8, dtype=np.float32)[1])
    assert Sampler(temperature=0.0, top_k=1, top_p=0.1, seed=3)(LOGITS) == 1


def test_top_k_keeps_k() -> None:
    for k in range(1, 8):
        kept = np.isfinite(apply_top_k(LOGITS, k))
        assert kept.sum() == k
        assert set(np.flatnonzero(kept)) == set(np.argsort(-LOGITS)[:k])
        probs = Sampler(temperature=1.0, top_k=k).probs(LOGITS)
        assert (probs > 0).sum() == k and probs.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(apply_top_k(LOGITS, 0), LOGITS)
    np.testing.assert_array_equal(apply_top_k(LOGITS, 100), LOGITS)
    ties = np.array([1.0, 2.0, 2.0, 0.0])
    assert np.isfinite(apply_top_k(ties, 1)).sum() == 2  # ties with the k-th stay, as in transformers


def test_top_p_keeps_the_nucleus() -> None:
    probs = softmax(LOGITS)
    order = np.argsort(-probs)
    for p in (0.05, 0.3, 0.5, 0.8, 0.95, 0.999):
        kept = np.isfinite(apply_top_p(LOGITS, p))
        n = int(kept.sum())
        assert set(np.flatnonzero(kept)) == set(order[:n])  # the most likely ones
        assert probs[order[:n]].sum() >= p - 1e-6  # enough mass ...
        assert n == 1 or probs[order[: n - 1]].sum() < p  # ... and no more tokens than needed
    assert np.isfinite(apply_top_p(LOGITS, 1e-9)).sum() == 1
    np.testing.assert_array_equal(apply_top_p(LOGITS, 1.0), LOGITS)


def test_top_p_on_a_large_vocabulary_equals_a_full_sort() -> None:
    """apply_top_p sorts only the bands of largest logits it needs; on a
    128k vocabulary (flat and peaked, with ties and -inf from top-k) it keeps
    exactly the tokens a full stable sort keeps."""
    def full_sort(x: np.ndarray, p: float) -> np.ndarray:
        order = np.argsort(-x, kind="stable")
        probs = softmax(x[order])
        drop = np.cumsum(probs) - probs >= np.float32(p)
        drop[0] = False
        out = x.copy()
        out[order[drop]] = -np.inf
        return out

    rng = np.random.default_rng(5)
    base = rng.standard_normal(128256).astype(np.float32)
    ties = np.round(base * 2) / 2  # many equal logits
    topk = apply_top_k(base * 4, 300)
    cases = [base * 8, base * 3, base, ties * 3, topk]
    for x in cases:
        for p in (1e-4, 0.3, 0.9, 0.95, 0.999):
            np.testing.assert_array_equal(apply_top_p(x, p), full_sort(x, p))
    for x in (np.full(100, -np.inf, np.float32), np.array([1.0, np.nan, 0.0], np.float32)):
        np.testing.assert_array_equal(apply_top_p(x, 0.5), x)  # unchanged: the sampler reports these


def test_repetition_penalty_rule() -> None:
    out = apply_repetition_penalty(LOGITS, [1, 2, 2, 7], 2.0)
    want = LOGITS.copy()
    want[1], want[2], want[7] = 4.0 / 2, -2.0 * 2, 2.0 / 2
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(apply_repetition_penalty(LOGITS, [1], 1.0), LOGITS)
    # greedy with a penalty: the repeated best token loses to the next one
    assert Sampler(repetition_penalty=1.5)(LOGITS, previous=[1]) == 5


def test_sampling_rules_match_transformers() -> None:
    torch = pytest.importorskip("torch")
    gen_utils = pytest.importorskip("transformers.generation.logits_process")
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((1, 50)).astype(np.float32) * 3
    ids = torch.tensor([[3, 7, 7, 10, 42]])
    t = torch.from_numpy(logits)
    for penalty in (1.3, 0.7):
        want = gen_utils.RepetitionPenaltyLogitsProcessor(penalty)(ids, t.clone()).numpy()[0]
        np.testing.assert_allclose(apply_repetition_penalty(logits[0], ids[0].tolist(), penalty), want, rtol=1e-6)
    for k in (1, 5, 20):
        want = gen_utils.TopKLogitsWarper(k)(ids, t.clone()).numpy()[0]
        np.testing.assert_array_equal(np.isfinite(apply_top_k(logits[0], k)), np.isfinite(want))
    for p in (0.1, 0.5, 0.9):
        want = gen_utils.TopPLogitsWarper(p)(ids, t.clone()).numpy()[0]
        np.testing.assert_array_equal(np.isfinite(apply_top_p(logits[0], p)), np.isfinite(want))
    # the whole chain, in transformers' order
    procs = [gen_utils.RepetitionPenaltyLogitsProcessor(1.2), gen_utils.TemperatureLogitsWarper(0.7),
             gen_utils.TopKLogitsWarper(10), gen_utils.TopPLogitsWarper(0.8)]
    want_t = t.clone()
    for proc in procs:
        want_t = proc(ids, want_t)
    want_p = torch.softmax(want_t, -1).numpy()[0]
    got = Sampler(temperature=0.7, top_k=10, top_p=0.8, repetition_penalty=1.2).probs(logits[0], ids[0].tolist())
    np.testing.assert_allclose(got, want_p, atol=1e-6)


def test_seeded_sampling_is_reproducible_and_follows_the_distribution() -> None:
    def draws(seed: int, n: int = 200) -> List[int]:
        s = Sampler(temperature=1.3, top_k=6, top_p=0.97, seed=seed)
        return [s(LOGITS) for _ in range(n)]

    assert draws(0) == draws(0)
    assert draws(0) != draws(1)
    s = Sampler(temperature=0.8, seed=123)
    counts = np.bincount([s(LOGITS) for _ in range(20000)], minlength=8) / 20000
    np.testing.assert_allclose(counts, s.probs(LOGITS), atol=0.015)


def test_suppress_tokens_and_bad_arguments() -> None:
    assert Sampler(suppress_tokens=[1, 5])(LOGITS) == 3
    s = Sampler(temperature=1.0, seed=0, suppress_tokens=[1])
    assert 1 not in {s(LOGITS) for _ in range(300)}
    for kw in (dict(temperature=-1.0), dict(top_p=0.0), dict(top_p=1.5), dict(top_k=-1),
               dict(repetition_penalty=0.0)):
        with pytest.raises(ValueError):
            Sampler(**kw)  # type: ignore[arg-type]


def test_non_finite_logits_raise_instead_of_an_arbitrary_token() -> None:
    nan, inf = LOGITS.copy(), LOGITS.copy()
    nan[6], inf[2] = np.nan, np.inf
    for s in (Sampler(), Sampler(temperature=0.8, top_k=3, top_p=0.9, seed=0)):
        with pytest.raises(ValueError, match=r"\[Sampler\] the logits hold NaN"):
            s(nan)
        with pytest.raises(ValueError, match=r"the logits hold inf"):
            s.probs(inf)
        with pytest.raises(ValueError, match="no token can be drawn"):
            Sampler(temperature=s.temperature, suppress_tokens=range(8))(LOGITS)
    # -inf logits alone are fine: they are tokens that cannot be drawn
    assert Sampler(temperature=1.0, seed=0)(np.where(np.arange(8) == 4, 0.0, -np.inf)) == 4


# ---------------------------------------------------------------- generation


def tiny_model(vocab: int = 258, seed: int = 0, **kw: Any) -> LlamaForCausalLM:
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, **kw)
    rng = np.random.default_rng(seed)
    model = LlamaForCausalLM(cfg, init=False).eval()
    model.load_state_dict({k: (rng.standard_normal(p.shape) * 0.5 + (p.ndim == 1)).astype(np.float32)
                           for k, p in model.state_dict(keep_vars=True).items()})
    return model


def test_greedy_generation_matches_transformers() -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hcfg = transformers.MistralConfig(vocab_size=258, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, sliding_window=5,
                                      initializer_range=0.3, attn_implementation="eager",
                                      bos_token_id=256, eos_token_id=None)
    hf = transformers.MistralForCausalLM(hcfg).eval()
    model = LlamaForCausalLM(LlamaConfig.from_hf(hf.config)).eval()
    model.load_state_dict({k: v.numpy() for k, v in hf.state_dict().items()})
    tok = Tokenizer.byte_level()
    tok.eos_token_ids = set()  # run to max_tokens, as transformers does without an EOS
    prompt_ids = tok.encode("Hello, world")
    with torch.no_grad():
        out = hf.generate(torch.tensor([prompt_ids]), max_new_tokens=20, do_sample=False, pad_token_id=0)
        out_rp = hf.generate(torch.tensor([prompt_ids]), max_new_tokens=12, do_sample=False, pad_token_id=0,
                             repetition_penalty=1.3)
    want = out[0, len(prompt_ids):].tolist()
    stream = generate(model, tok, "Hello, world", max_tokens=20)
    text = "".join(stream)
    assert stream.tokens == want
    assert text == stream.text == tok.decode(want)
    st = stream.stats
    assert (st.prompt_tokens, st.generated_tokens, st.decode_tokens, st.stop_reason) == (13, 20, 19, "length")
    assert st.prefill_tokens_per_s > 0 and st.decode_tokens_per_s > 0 and "tok/s" in st.summary()
    gen = Generator(model, tok)
    assert list(gen.generate_ids(prompt_ids, 12, Sampler(repetition_penalty=1.3))) == \
        out_rp[0, len(prompt_ids):].tolist()


def test_a_model_that_overflows_stops_with_a_clear_error() -> None:
    model = tiny_model()
    sd = {k: v.copy() for k, v in model.state_dict().items()}
    sd["model.layers.0.mlp.down_proj.weight"][3, 5] = np.inf  # a corrupt checkpoint's weight
    model.load_state_dict(sd)
    gen = Generator(model)
    for sampler in (Sampler(), Sampler(temperature=0.7, seed=0)):
        with pytest.raises(ValueError, match="the logits hold NaN"):
            list(gen.generate_ids([1, 5, 9], 3, sampler))


def test_one_compile_for_every_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    compiles: List[int] = []
    real = lm.CPUCompiler.run

    def counting(self: lm.CPUCompiler, graph: lm.Graph) -> None:
        compiles.append(1)
        real(self, graph)

    monkeypatch.setattr(lm.CPUCompiler, "run", counting)
    model = tiny_model()
    gen = Generator(model, Tokenizer.byte_level())
    kernels = gen.graph.kernel_count()
    first = list(gen.generate_ids([256, 72, 105], 8))
    for prompt in ([256, 1, 2, 3, 4, 5, 6, 7, 8, 9], [256]):
        list(gen.generate_ids(prompt, 5))
    assert list(gen.generate_ids([256, 72, 105], 8)) == first  # the cache restarts empty each time
    assert len(compiles) == 1 and gen.graph.kernel_count() == kernels
    # the reference executor agrees
    ref = Generator(model, compilers=[])
    assert list(ref.generate_ids([256, 72, 105], 8)) == first


def test_prompt_in_blocks_matches_one_block() -> None:
    """A prompt run in blocks through the cache gives the one-block logits
    (to rounding) and the same tokens, sliding window included; the block
    size rule keeps every block's scores under the budget."""
    from luminal.models.generate import PREFILL_SCORES_BUDGET, prefill_chunk_size

    model = tiny_model(sliding_window=4)
    prompt = [256] + list(range(60, 72))  # 13 tokens
    whole = Generator(model)
    whole.cache.reset()
    want = whole._step(prompt)
    for chunk, blocks in ((5, [5, 5, 3]), (7, [7, 6]), (1, [1] * 13)):
        gen = Generator(model, prefill_chunk=chunk)
        seen: List[int] = []
        real = gen._step
        gen._step = lambda ids, real=real: (seen.append(len(ids)), real(ids))[1]  # type: ignore[method-assign]
        ids = list(gen.generate_ids(prompt, 6))
        assert ids == list(whole.generate_ids(prompt, 6))
        assert seen[:len(blocks)] == blocks and seen[len(blocks):] == [1] * 5
        gen.cache.reset()
        got = np.zeros_like(want)
        for s in range(0, len(prompt), blocks[0]):
            got = gen._step(prompt[s:s + blocks[0]])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # the rule: whole prompts up to 512 tokens, else equal blocks of at most
    # 512, fewer rows (down to 64) where a block's scores pass the budget
    assert prefill_chunk_size(512, 32) == 512 and prefill_chunk_size(513, 32) == 257
    assert prefill_chunk_size(1000, 32) == 500
    assert prefill_chunk_size(1000, 32, device="cuda") == 1000 and prefill_chunk_size(4096, 32, device="cuda") == 2048
    with pytest.raises(ValueError, match="device"):
        prefill_chunk_size(1000, 32, device="metal")
    for n, heads in ((4096, 32), (8192, 32), (5000, 32), (100_000, 8), (100_000, 64), (2900, 32)):
        c = prefill_chunk_size(n, heads)
        blocks = -(-n // c)
        assert 64 <= c <= 512 and (heads * c * n <= PREFILL_SCORES_BUDGET or c == 64)
        assert blocks * c - n < blocks  # equal blocks, the last one short by less than one row each
    assert prefill_chunk_size(100_000, 64) == 64  # 64 heads x 100k keys: the floor
    assert prefill_chunk_size(10, 4, chunk=3) == 3 and prefill_chunk_size(9, 4, chunk=100) == 9
    assert prefill_chunk_size(3000, 32, chunk=2000) == 1500  # a given chunk may pass 512
    # after cached positions (a chat's later turn), the keys they add count too
    assert prefill_chunk_size(4000, 32, past=8000) == 500 and prefill_chunk_size(4000, 32, past=30_000) == 236
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="prefill_chunk"):
            Generator(model, prefill_chunk=bad)  # type: ignore[arg-type]


def test_stop_tokens_and_limits() -> None:
    model = tiny_model(max_position_embeddings=16)
    tok = Tokenizer.byte_level()
    gen = Generator(model, tok)
    free = list(gen.generate_ids([256, 65], 6))
    st = GenerationStats()
    stopped = list(gen.generate_ids([256, 65], 6, stop_ids=[free[2]], stats=st))
    assert stopped == free[: free.index(free[2])] and st.stop_reason == "stop"
    stream = gen.stream([256, 65], 6, stop=[free[0]])
    assert list(stream.ids()) == [] and stream.stats.stop_reason == "stop"
    st = GenerationStats()
    assert len(list(gen.generate_ids([256] * 10, 100, stats=st))) == 7 and st.stop_reason == "context"
    with pytest.raises(ValueError, match="context"):
        list(gen.generate_ids([256] * 16, 5))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        list(gen.generate_ids([300], 5))
    with pytest.raises(ValueError, match="no tokens"):
        list(gen.generate_ids([], 5))
    with pytest.raises(ValueError, match="needs a tokenizer"):
        Generator(model).stream("text")


def test_stop_strings_end_the_text() -> None:
    """A stop string ends the text where it first appears, across token
    boundaries: it is never returned (text that may start one is held back
    until the next pieces tell), and no token after the one completing it is
    generated. A string that never appears changes nothing."""
    tok = Tokenizer.byte_level()
    gen = Generator(tiny_model(), tok)
    suppress = [i for i in range(258) if not 32 <= i < 127]  # printable bytes: a stop string spans several
    full = gen.stream("Once", 40, suppress_tokens=suppress)
    text = full.read()
    assert len(text) == 40
    for start, length in ((10, 3), (0, 2), (38, 2), (25, 1)):
        stop = text[start:start + length]
        first = text.find(stop)
        s = gen.stream("Once", 40, suppress_tokens=suppress, stop=["\x00never", stop])
        pieces = list(s)
        assert s.text == "".join(pieces) == text[:first] and s.stats.stop_reason == "stop", stop
        assert s.stopped_at_text and s.tokens == full.tokens[:first + length]
    s = gen.stream("Once", 40, suppress_tokens=suppress, stop=[text[39] + "#@!"])  # its first char is the last
    assert s.read() == text and not s.stopped_at_text and s.stats.stop_reason == "length"
    s = gen.stream("Once", 40, suppress_tokens=suppress, stop=["</s>"])  # a token of its own: also its id
    assert s.read() == text
    with pytest.raises(ValueError, match="empty stop string"):
        gen.stream("Once", 4, stop=[""])
    with pytest.raises(ValueError, match="needs a tokenizer"):
        Generator(tiny_model()).stream([256, 65], 4, stop=["ab"])


def test_seeded_generation_is_reproducible() -> None:
    gen = Generator(tiny_model(), Tokenizer.byte_level())
    kw = dict(temperature=1.0, top_k=50, top_p=0.95, seed=7)
    a = gen.stream("abc", 10, **kw).read()  # type: ignore[arg-type]
    b = gen.stream("abc", 10, **kw).read()  # type: ignore[arg-type]
    c = gen.stream("abc", 10, **{**kw, "seed": 8}).read()  # type: ignore[arg-type]
    assert a == b and a != c


def test_embeddings_input_and_cache_append() -> None:
    """The model takes host-embedded ids; the KV cache grows through
    Graph.append (after_step only rebinds "past") and says so when misused."""
    from luminal.models import KVCache

    model = tiny_model(vocab=50)
    cfg = model.config
    prompt = np.array([[3, 17, 42, 9]], dtype=np.int32)
    cx = lm.Graph()
    ids = cx.tensor((1, "seq"), dtype="i32")
    want = model(ids).retrieve()
    ids.set(prompt)
    cx.execute()
    cx2 = lm.Graph()
    emb = cx2.tensor((1, "seq", cfg.hidden_size))
    cache = KVCache(cx2, cfg)
    got = model(emb, cache).retrieve()
    cx2.compile(lm.GenericCompiler(), lm.CPUCompiler())
    table = model.model.embed_tokens.weight.data
    emb.set(table[prompt[0, :3]][None])
    cx2.execute()
    rows = cache.new_keys[0].numpy()
    np.testing.assert_allclose(got.numpy()[0], want.numpy()[0, :3], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="rows of shape"):
        cache.after_step(2)
    cache.after_step(3)
    np.testing.assert_array_equal(cache.numpy(0)[0], rows)
    emb.set(table[prompt[0, 3:]][None])
    cx2.execute()
    np.testing.assert_allclose(got.numpy()[0], want.numpy()[0, 3:], atol=1e-5, rtol=0)
    emb.set(table[prompt[0, 3:]][None])
    with pytest.raises(Exception, match="holds .* elements"):  # executed without after_step
        cx2.execute()
    with pytest.raises(ValueError, match=r"\(batch, seq, 32\)"):
        model(cx2.tensor((1, "seq", 16)))
    with pytest.raises(ValueError, match="already serves"):
        model(emb, cache)


# ---------------------------------------------------------------- tokenizers

# A hand-made SentencePiece-style vocabulary: pieces with scores, byte tokens.
SPM_PIECES = {"▁": -1.0, "h": -5.0, "e": -5.0, "l": -5.0, "o": -5.0, "w": -5.0, "r": -5.0, "d": -5.0,
              "▁h": -2.0, "▁he": -2.2, "ll": -3.0, "llo": -2.5, "▁hello": -0.5, "▁w": -2.0, "or": -3.0,
              "▁wor": -1.5, "ld": -3.5, "▁world": -0.2, "é": -6.0, "!": -4.0}
SPM_TOKENS = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"] + [f"<0x{b:02X}>" for b in range(256)] + list(SPM_PIECES)
SPM_SCORES = [0.0] * (5 + 256) + list(SPM_PIECES.values())
SPM_TYPES = [2, 3, 3, 3, 3] + [6] * 256 + [1] * len(SPM_PIECES)


def spm() -> SentencePieceVocab:
    return SentencePieceVocab(SPM_TOKENS, SPM_SCORES, SPM_TYPES, bos_id=1, eos_id=2, unk_id=0)


def test_sentencepiece_encode_by_score() -> None:
    v = spm()
    ids = {t: i for i, t in enumerate(SPM_TOKENS)}
    assert v.encode("hello world", add_bos=True) == [1, ids["▁hello"], ids["▁world"]]
    assert v.encode("hello", add_bos=False) == [ids["▁hello"]]
    assert v.encode("hell", add_bos=False) == [ids["▁he"], ids["ll"]]
    assert v.encode("hello wor", add_bos=False) == [ids["▁hello"], ids["▁wor"]]
    # unknown characters fall back to their UTF-8 bytes
    assert v.encode("日", add_bos=False) == [ids["▁"]] + [5 + b for b in "日".encode()]
    # special tokens written in the text
    assert v.encode("[INST] hello [/INST]", add_bos=True) == [1, 3, ids["▁hello"], ids["▁"], 4]
    # competing merges: the higher score wins, ties go to the leftmost pair
    toks = ["<unk>", "a", "b", "c", "ab", "bc"]
    for s_ab, s_bc, want in [(-1.0, -2.0, [4, 3]), (-2.0, -1.0, [1, 5]), (-1.0, -1.0, [4, 3])]:
        w = SentencePieceVocab(toks, [0, -5, -5, -5, s_ab, s_bc], [2, 1, 1, 1, 1, 1], bos_id=None, eos_id=None,
                               add_space_prefix=False)
        assert w.encode("abc", add_bos=True) == want


@pytest.mark.parametrize("text", ["hello world", "hello  world!", " hello", "héllo wörld 日本 🦙",
                                  "a\nb\tc", "", "hello[INST]world"])
def test_sentencepiece_round_trip(text: str) -> None:
    tok = Tokenizer(spm(), bos_token_id=1, eos_token_ids=[2])
    ids = tok.encode(text)
    assert ids[0] == 1
    assert tok.decode(ids) == text.replace("[INST]", "")
    assert tok.decode(ids, skip_special_tokens=False).startswith("<s>")
    stream = tok.stream()
    assert "".join(stream.put(i) for i in ids) + stream.flush() == tok.decode(ids)


def test_byte_vocab_round_trip_and_streaming() -> None:
    tok = Tokenizer.byte_level()
    text = "héllo 日本 🦙!"
    ids = tok.encode(text)
    assert ids[0] == tok.bos_token_id == 256 and tok.eos_token_ids == {257} and tok.vocab_size == 258
    assert tok.decode(ids + [257]) == text
    stream = tok.stream()
    pieces = [stream.put(i) for i in ids]
    assert "".join(pieces) == text and stream.text == text
    assert "\ufffd" not in "".join(pieces)  # incomplete UTF-8 is held back, never printed
    assert pieces[2] == "" and pieces[3] == "é"
    stream = tok.stream()
    stream.put(0xE6)
    assert stream.flush() == "\ufffd"  # flushed as is at the end


def test_streaming_keeps_spaces_with_context() -> None:
    tok = Tokenizer(spm(), bos_token_id=1, eos_token_ids=[2])
    prompt = tok.encode("hello")
    reply = tok.encode(" world hello", add_bos=False)[1:]  # "▁world", "▁hello"
    stream = tok.stream(context=prompt[-4:])
    assert "".join(stream.put(i) for i in reply) == " world hello"


def write_vocab_gguf(path: Path, count: int = len(SPM_TOKENS), **metadata: Any) -> Path:
    """A GGUF holding the first ``count`` SentencePiece test tokens (bos 1,
    eos 2), then ``metadata``: GGUF key -> (value, GGUFValueType name), set
    last (overwriting)."""
    gguf = pytest.importorskip("gguf")
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(SPM_TOKENS[:count])
    w.add_token_scores(SPM_SCORES[:count])
    w.add_token_types(SPM_TYPES[:count])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    finish_metadata_gguf(w, metadata)
    return path


def test_gguf_vocabulary(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    template = "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"
    path = write_vocab_gguf(tmp_path / "vocab.gguf", **{"tokenizer.chat_template": (template, "STRING")})
    tok = Tokenizer.from_pretrained(path)
    assert tok.bos_token_id == 1 and tok.eos_token_ids == {2} and tok.vocab_size == len(SPM_TOKENS)
    assert tok.encode("hello world") == spm().encode("hello world")
    assert tok.decode(tok.encode("héllo wörld")) == "héllo wörld"
    prompt = tok.apply_chat_template([{"role": "user", "content": "hello"}])
    assert prompt == "<s>[INST] hello [/INST]"
    assert tok.encode(prompt, add_bos=False) == [1, 3, SPM_TOKENS.index("▁hello"), SPM_TOKENS.index("▁"), 4]

    bpe = tmp_path / "bpe.gguf"
    w = gguf.GGUFWriter(str(bpe), arch="llama")
    w.add_tokenizer_model("t5")
    w.add_token_list(["a", "b"])
    w.add_tensor("x", np.zeros(4, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(NotImplementedError, match="'t5'.*tokenizer.json"):
        Tokenizer.from_gguf(bpe)


@pytest.mark.parametrize("key, value, vtype, match", [
    ("tokenizer.ggml.scores", 1.0, "FLOAT32", r"scores has shape \(\), expected one value per token"),
    ("tokenizer.ggml.scores", ["a"] * 8, "ARRAY", "scores is not a list of numbers"),
    ("tokenizer.ggml.scores", [1.0] * 3, "ARRAY", r"scores has shape \(3,\)"),
    ("tokenizer.ggml.token_type", [float("inf")] * 8, "ARRAY", "token_type holds a value that is not an integer"),
    ("tokenizer.ggml.token_type", [1e20] * 8, "ARRAY", r"token_type holds 1e\+20, outside the int32 range"),
    ("tokenizer.ggml.tokens", [[1, 2]] * 8, "ARRAY", "tokens holds a value that is not a string"),
    ("tokenizer.ggml.bos_token_id", "1", "STRING", "bos_token_id is '1', not a token id"),
    ("tokenizer.ggml.add_bos_token", [1, 2], "ARRAY", "add_bos_token is .*not a boolean"),
    ("tokenizer.ggml.add_space_prefix", 1.5, "FLOAT32", "add_space_prefix is 1.5, not a boolean"),
    ("tokenizer.ggml.model", [1, 2], "ARRAY", r"model is array\(\[1, 2\].*not a string"),
])
def test_gguf_vocabulary_hostile_metadata(tmp_path: Path, key: str, value: Any, vtype: str, match: str) -> None:
    """Tokenizer metadata of the wrong type, shape or range: a ValueError
    naming the file (not a TypeError, OverflowError or an id that fails at
    decode time)."""
    path = write_vocab_gguf(tmp_path / "vocab.gguf", 8, **{key: (value, vtype)})
    with pytest.raises(ValueError, match=match) as e:
        Tokenizer.from_gguf(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("template, match", [
    ("{{ 'x' * 10**10 }}", "a repetition of 10,000,000,000 elements"),
    ("{{ 2 ** 100000 }}", r"2 \*\* 100000 is too large"),
    ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
     "more than 1,000,000 range steps"),
    ("{{ messages[0]['content'] ", "TemplateSyntaxError"),
    ("{{ foo.bar }}", "UndefinedError: 'foo' is undefined"),
    ("{{ 1 / 0 }}", "ZeroDivisionError"),
    ("{{ ().__class__.__base__.__subclasses__() }}", "SecurityError"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError"),
])
def test_hostile_chat_templates_fail_cleanly(tmp_path: Path, template: str, match: str) -> None:
    """A chat template is code from the model file: whatever it does (build
    10 GB, loop 10**10 times, break out of the sandbox, fail to parse), the
    caller gets a ValueError, fast."""
    pytest.importorskip("jinja2")
    path = write_vocab_gguf(tmp_path / "vocab.gguf", 8, **{"tokenizer.chat_template": (template, "STRING")})
    tok = Tokenizer.from_gguf(path)
    t = time.perf_counter()
    with pytest.raises(ValueError, match=r"\[chat template\].*" + match):
        tok.apply_chat_template([{"role": "user", "content": "hi"}])
    assert time.perf_counter() - t < 5


@pytest.mark.parametrize("key, value", [("bos_token_id", 1000), ("bos_token_id", 2**32 - 1),
                                        ("unknown_token_id", 2**32 - 1)])
def test_gguf_special_ids_outside_the_vocabulary_are_ignored(tmp_path: Path, key: str, value: int) -> None:
    """An id past the vocabulary (some files write 2**32 - 1 for "none"):
    a warning and no such special token, as llama.cpp does, not an id that
    encode() emits and decode() then refuses."""
    path = write_vocab_gguf(tmp_path / "vocab.gguf", **{f"tokenizer.ggml.{key}": (value, "UINT32")})
    with pytest.warns(UserWarning, match=f"{key} {value} is outside the vocabulary"):
        tok = Tokenizer.from_gguf(path)
    ids = tok.encode("hello wörld")
    assert all(0 <= i < len(SPM_TOKENS) for i in ids) and tok.decode(ids) == "hello wörld"


MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}{% endif %}"
    "{% endfor %}"
)


def hf_tokenizer_dir(tmp_path: Path) -> Path:
    """A tokenizer.json (word-level, made with the tokenizers package) plus
    tokenizer_config.json with a Mistral-style chat template."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "hello", "world", "!"])}
    t = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    t.add_special_tokens(["<s>", "</s>", "[INST]", "[/INST]"])
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    t.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<s>", "eos_token": {"content": "</s>"}, "chat_template": MISTRAL_TEMPLATE}))
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 7]}))
    return tmp_path


def test_hf_tokenizer_json(tmp_path: Path) -> None:
    tok = Tokenizer.from_pretrained(hf_tokenizer_dir(tmp_path))
    assert tok.bos_token_id == 1 and tok.eos_token_ids == {2, 7} and tok.bos_token == "<s>"
    assert tok.encode("hello world !") == [1, 5, 6, 7]
    assert tok.encode("hello", add_bos=False) == [5]
    assert tok.decode([1, 5, 6, 7]) == "hello world !"
    stream = tok.stream()
    assert "".join(stream.put(i) for i in [5, 6, 6]) == "hello world world"
    msgs = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "world"},
            {"role": "user", "content": "hello !"}]
    rendered = tok.apply_chat_template(msgs)
    assert rendered == "<s>[INST] hello [/INST] world</s>[INST] hello ! [/INST]"
    assert rendered == render_inst_chat(msgs)
    assert tok.encode(rendered, add_bos=False)[:5] == [1, 3, 5, 4, 6]
    with pytest.raises(ValueError, match="alternate"):
        tok.apply_chat_template(msgs[1:])
    # ids of the wrong JSON type are no ids: "57" is not tokens 5 and 7
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": "57", "bos_token_id": "1"}))
    assert Tokenizer.from_pretrained(tmp_path).eos_token_ids == {2}


LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n'"
    " + m['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if tools is not none %}TOOLS{% endif %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)


def test_chat_templates_render_like_transformers(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    d = hf_tokenizer_dir(tmp_path)
    tok = Tokenizer.from_pretrained(d)
    ref = transformers.PreTrainedTokenizerFast(tokenizer_file=str(d / "tokenizer.json"), bos_token="<s>",
                                               eos_token="</s>")
    chats = [[{"role": "user", "content": "hello"}],
             [{"role": "system", "content": "Be brief. "}, {"role": "user", "content": "hello"},
              {"role": "assistant", "content": "world"}, {"role": "user", "content": "hello !"}]]
    for template, msgs in [(MISTRAL_TEMPLATE, chats[0]), (LLAMA3_TEMPLATE, chats[0]), (LLAMA3_TEMPLATE, chats[1])]:
        tok.chat_template = template
        for gen_prompt in (True, False):
            want = ref.apply_chat_template(msgs, chat_template=template, tokenize=False,
                                           add_generation_prompt=gen_prompt)
            assert tok.apply_chat_template(msgs, add_generation_prompt=gen_prompt) == want


def test_chat_template_fallback_without_jinja2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tok = Tokenizer(spm(), bos_token_id=1, eos_token_ids=[2], chat_template=MISTRAL_TEMPLATE)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]
    monkeypatch.setitem(sys.modules, "jinja2", None)  # import jinja2 -> ImportError
    assert tok.apply_chat_template(msgs) == "<s>[INST] Be brief.\n\nhello [/INST]"
    other = Tokenizer(spm(), chat_template="{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}")
    with pytest.raises(ImportError, match="jinja2"):
        other.apply_chat_template(msgs)
    with pytest.raises(ValueError, match="no chat template"):
        Tokenizer(spm()).apply_chat_template(msgs)


# ---------------------------------------------------------------- the CLI


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "examples" / "mistral" / "main.py"), *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_cli_demo_runs_offline_and_reports_speed() -> None:
    t = time.perf_counter()
    r = run_cli("--max-tokens", "24", "--prompt", "Hi")
    elapsed = time.perf_counter() - t
    assert r.returncode == 0, r.stderr
    assert "RANDOM-WEIGHT" in r.stderr and "gibberish" in r.stderr
    assert r.stdout.startswith("Hi") and len(r.stdout.strip()) > 2
    assert "prefill:" in r.stderr and "decode: 23 tokens" in r.stderr and "tok/s" in r.stderr
    assert elapsed < 20, f"the demo took {elapsed:.1f} s"
    again = run_cli("--max-tokens", "24", "--prompt", "Hi")
    assert again.stdout == r.stdout  # greedy: deterministic
    blocks = run_cli("--max-tokens", "24", "--prompt", "Hi", "--prefill-chunk", "1")
    assert blocks.returncode == 0 and blocks.stdout == r.stdout  # the prompt token by token: same text
    sampled = run_cli("--max-tokens", "24", "--prompt", "Hi", "--temperature", "0.9", "--top-k", "20",
                      "--top-p", "0.9", "--seed", "3")
    assert sampled.returncode == 0 and sampled.stdout != r.stdout
    text = r.stdout[2:-1]  # the generated text, without the prompt and the final newline
    stop = text[5:8]
    stopped = run_cli("--max-tokens", "24", "--prompt", "Hi", "--stop", "\x01", "--stop", stop)
    assert stopped.returncode == 0 and stopped.stdout == "Hi" + text[:text.find(stop)] + "\n"
    assert "(stopped: stop)" in stopped.stderr


def test_cli_errors() -> None:
    if not lm.cuda.is_available():
        r = run_cli("--device", "cuda")
        assert r.returncode == 2 and "--device cuda: no usable CUDA GPU" in r.stderr
    r = run_cli("--model", str(ROOT / "no-such-model-dir"))
    assert r.returncode == 2 and "no such file or directory" in r.stderr
    r = run_cli("--prefill-chunk", "0")
    assert r.returncode == 2 and "--prefill-chunk must be >= 1" in r.stderr
    r = run_cli("--download")
    assert r.returncode == 2 and "--download needs --model" in r.stderr
    r = run_cli("--prompt", "x" * 1100)  # the demo model's context is 1024
    assert r.returncode == 2 and "the prompt has 1101 tokens; the model's context is 1024" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_reports_a_corrupt_model_file_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\0" * 5)  # truncated in the tensor count
    r = run_cli("--model", str(bad))
    assert r.returncode == 2 and r.stderr.startswith("error: " + str(bad)) and "Traceback" not in r.stderr


def test_cli_with_a_local_model(tmp_path: Path) -> None:
    """--model with a local Hugging Face directory: weights + tokenizer.json + chat template."""
    d = hf_tokenizer_dir(tmp_path)
    model = tiny_model(vocab=8, eos_token_id=2)
    cfg = dict(model_type="llama", vocab_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2)
    (d / "config.json").write_text(json.dumps(cfg))
    from luminal.io.safetensors import save_file

    save_file(model.state_dict(), d / "model.safetensors")
    r = run_cli("--model", str(d), "--prompt", "hello world", "--max-tokens", "5")
    assert r.returncode == 0, r.stderr
    assert "[load]" in r.stderr and "tok/s" in r.stderr and "RANDOM" not in r.stderr
    tok = Tokenizer.from_pretrained(d)
    ids = tok.encode(tok.apply_chat_template([{"role": "user", "content": "hello world"}]), add_bos=False)
    want = Generator(model, tok).stream(ids, 5).read()
    assert r.stdout == want + "\n"
    # --quantize q8_0: the matrices as Q8_0 blocks (hidden 32 = one block a row)
    q = run_cli("--model", str(d), "--prompt", "hello world", "--max-tokens", "5", "--quantize", "q8_0",
                "--matmul-precision", "highest")
    assert q.returncode == 0, q.stderr
    # 7 per layer, lm_head and the embedding table
    assert "[load] 16 matrices stored as q8_0 (the embedding table as q8_0)" in q.stderr
    nn.quantize_(model, "q8_0", embeddings="q8_0")
    assert q.stdout == Generator(model, tok, float32_matmul_precision="highest").stream(ids, 5).read() + "\n"


def test_quantize_a_tied_model_with_its_embedding_table() -> None:
    """nn.quantize_(embeddings=...): the table of a tied model is stored too
    (q6_k, as llama.cpp keeps that matrix), so no float32 matrix is left; the
    output product reads it. The compiled model's logits (within its int8
    activations' rounding) and greedy tokens match the reference executor's
    on the stored values."""
    cfg = LlamaConfig(vocab_size=300, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    rng = np.random.default_rng(3)
    model = LlamaForCausalLM(cfg, init=False).eval()
    model.load_state_dict({k: (rng.standard_normal(p.shape) * 0.1 + (p.ndim == 1)).astype(np.float32)
                           for k, p in model.state_dict(keep_vars=True).items()})
    with pytest.raises(ValueError, match="unknown format 'q7'"):
        nn.quantize_(model, "q4_k", embeddings="q7")
    done = nn.quantize_(model, "q4_k", embeddings="q6_k")
    assert "model.embed_tokens" in done and len(done) == 2 * 7 + 1
    assert model.model.embed_tokens.weight.format == "q6_k"
    assert [k for k, p in model.state_dict(keep_vars=True).items()
            if p.ndim == 2 and not isinstance(p, nn.QuantizedParameter)] == []
    prompt = [int(i) for i in rng.integers(0, 300, 9)]
    cpu = Generator(model)
    ref = Generator(model, compilers=[])  # the reference executor, exact on the stored values
    got, want = cpu._step(prompt), ref._step(prompt)
    assert np.abs(got - want).max() < 0.06 * np.abs(want).max()  # the activations' int8 rounding: measured 3.5%
    cpu.reset_cache()
    ref.reset_cache()
    assert list(cpu.generate_ids(prompt, max_tokens=6)) == list(ref.generate_ids(prompt, max_tokens=6))


def test_quantized_models_run_prompt_attention_at_medium_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model with quantized (or packed bf16) weights compiles its products
    at float32_matmul_precision "medium" by default, a float one at "highest".
    Where the CPU has bf16 tiles (AMX or AVX512-BF16), a prompt long enough
    for them (grouped-query scores and values over the cache) gives logits
    within bf16 rounding of float32's and the same greedy tokens; elsewhere
    the same logits. (The Q8_0 weights' products on the tiles at both
    precisions, LUMINAL_AMX=1, where they would take the int8 GEMM: its
    activations' int8 rounding, which a small change upstream moves, would
    hide the attention's.)"""
    from helpers import bf16_tiles_cpu, int8_gemm_cpu

    cfg = LlamaConfig(vocab_size=258, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                      num_attention_heads=8, num_key_value_heads=2)
    rng = np.random.default_rng(0)
    model = LlamaForCausalLM(cfg, init=False).eval()
    model.load_state_dict({k: (rng.standard_normal(p.shape) * 0.1 + (p.ndim == 1)).astype(np.float32)
                           for k, p in model.state_dict(keep_vars=True).items()})
    assert Generator(model).float32_matmul_precision == "highest"
    assert Generator(model, compilers=[]).float32_matmul_precision is None
    with pytest.raises(ValueError, match="with compilers given, pass it to your CPUCompiler"):
        Generator(model, compilers=[], float32_matmul_precision="medium")
    prompt = [int(i) for i in rng.integers(0, 258, 160)]  # 2 kv heads x 640 x 160 x 32: tiles
    float32 = model.state_dict()
    for fmt in ("q8_0", "bf16_packed"):  # bf16 weights: their products of the prompt on the tiles too
        model = LlamaForCausalLM(cfg, init=False).eval()
        model.load_state_dict(float32)
        nn.quantize_(model, fmt)
        assert model.model.layers[0].mlp.up_proj.weight.format == fmt
        medium = Generator(model)
        assert medium.float32_matmul_precision == "medium"
        highest = Generator(model, float32_matmul_precision="highest")
        if fmt == "q8_0" and int8_gemm_cpu():
            monkeypatch.setenv("LUMINAL_AMX", "1")
        else:
            monkeypatch.delenv("LUMINAL_AMX", raising=False)
        got, want = medium._step(prompt), highest._step(prompt)
        if not bf16_tiles_cpu():
            np.testing.assert_array_equal(got, want)
            continue
        assert not np.array_equal(got, want)
        assert np.abs(got - want).max() < 0.02 * np.abs(want).max()
        assert list(medium.generate_ids(prompt, max_tokens=4)) == list(highest.generate_ids(prompt, max_tokens=4))
