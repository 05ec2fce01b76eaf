"""Text generation with a Llama / Mistral model: sampling rules and a
streaming generator that compiles once and reuses the same graph for the
prompt (prefill) and every following token (decode).

>>> from luminal.models import LlamaForCausalLM, Tokenizer, generate
>>> model = LlamaForCausalLM.from_pretrained("models/Mistral-7B-Instruct-v0.3")
>>> tok = Tokenizer.from_pretrained("models/Mistral-7B-Instruct-v0.3")
>>> stream = generate(model, tok, "The capital of France is", max_tokens=20)
>>> for piece in stream:
...     print(piece, end="", flush=True)
>>> stream.stats.decode_tokens_per_s
4.2

The graph takes ids of shape (1, "seq") and a ``KVCache`` of ("past", ...)
rows; the prompt runs as one block (seq = prompt length), or in a few equal
blocks when its attention scores would be large (``Generator``'s
``prefill_chunk``), then each new token as a block of one, all on the same
compiled program. ``Generator`` keeps the compiled graph for reuse across
prompts.

Sampling (``Sampler``) follows transformers' order: repetition penalty
(``RepetitionPenaltyLogitsProcessor``), then temperature, top-k, top-p;
temperature 0 is greedy (argmax after the penalty). The random generator is
numpy's, seeded: the same seed gives the same tokens.
"""

from __future__ import annotations

import collections.abc
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import numpy as np

from luminal.graph import Graph
from luminal.models.llama import KVCache, LlamaForCausalLM

if TYPE_CHECKING:
    from luminal.compilers import Compiler
    from luminal.models.tokenizer import Tokenizer

__all__ = [
    "GenerationStats",
    "GenerationStream",
    "Generator",
    "Sampler",
    "apply_repetition_penalty",
    "apply_temperature",
    "apply_top_k",
    "apply_top_p",
    "generate",
    "prefill_chunk_size",
    "softmax",
]


# A prompt longer than a block runs in equal blocks through the cache. Each
# block reads the weights once more, but computes less of the causal mask's
# masked half and keeps its attention scores (heads x rows x keys floats,
# stored per layer in turn) small. On the development Xeon (a 4-layer
# Mistral-shaped Q8_0 model, AMX prefill) blocks of 512 ran a 2,048-token
# prompt at 440-546 tok/s against 259-321 in one block, and 1,024 tokens at
# 633-668 against 443-566; the exact float32 path was level (100-111 against
# 101). llama.cpp's prompt batches are 512 too. A GPU wants bigger blocks (an
# H200, 2 such layers: 4,096 tokens at 22-25k tok/s in blocks of 512, 26-27k
# in 2,048, 19-21k whole; 1,024 tokens at 15-24k in 512, 26-34k whole).
# Fewer rows (down to PREFILL_MIN_BLOCK) when even a block's scores would
# pass PREFILL_SCORES_BUDGET floats (long contexts).
PREFILL_BLOCK = {"cpu": 512, "cuda": 2048}
PREFILL_MIN_BLOCK = 64
PREFILL_SCORES_BUDGET = 1 << 28  # floats: 1 GiB


def prefill_chunk_size(prompt_tokens: int, heads: int, chunk: int | None = None, past: int = 0,
                       device: str = "cpu") -> int:
    """Rows per prompt block: equal blocks of at most ``chunk`` rows if given,
    else of at most ``PREFILL_BLOCK[device]``, fewer (not under
    ``PREFILL_MIN_BLOCK``) where a block's scores (``heads * rows * (past +
    prompt_tokens)`` floats, after ``past`` cached positions) would pass
    ``PREFILL_SCORES_BUDGET``.

    >>> prefill_chunk_size(100, 32), prefill_chunk_size(1000, 32), prefill_chunk_size(8192, 32)
    (100, 500, 512)
    """
    if device not in PREFILL_BLOCK:
        raise ValueError(f"[prefill_chunk_size] device must be one of {sorted(PREFILL_BLOCK)}, got {device!r}")
    n = max(int(prompt_tokens), 1)
    if chunk is None:
        keys = past + n  # the last block's
        chunk = max(min(PREFILL_BLOCK[device], PREFILL_SCORES_BUDGET // (heads * keys)), PREFILL_MIN_BLOCK)
    blocks = -(-n // min(chunk, n))  # ceil
    return -(-n // blocks)  # equal blocks, none longer than chunk


# ---------------------------------------------------------------- sampling rules


def apply_repetition_penalty(logits: np.ndarray, previous: Iterable[int], penalty: float) -> np.ndarray:
    """transformers' ``RepetitionPenaltyLogitsProcessor``: for every token id
    already seen, a positive logit is divided by ``penalty`` and a negative one
    multiplied by it (``penalty`` > 1 discourages repeats). Returns a new array.

    >>> apply_repetition_penalty(np.array([2.0, -2.0, 1.0]), [0, 1], 2.0).tolist()
    [1.0, -4.0, 1.0]
    """
    if penalty <= 0:
        raise ValueError(f"[sampling] repetition_penalty must be > 0, got {penalty}")
    out = np.array(logits, dtype=np.float32, copy=True)
    if penalty == 1.0:
        return out
    seen = np.unique(np.fromiter((int(i) for i in previous), dtype=np.int64))
    if seen.size:
        vals = out[seen]
        out[seen] = np.where(vals < 0, vals * penalty, vals / penalty)
    return out


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``logits / temperature`` (temperature > 0)."""
    if not temperature > 0:
        raise ValueError(f"[sampling] temperature must be > 0 here (0 means greedy), got {temperature}")
    return (np.asarray(logits, dtype=np.float32) / np.float32(temperature)).astype(np.float32)


def apply_top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep the ``k`` largest logits (and any tied with the k-th, as
    transformers does), the rest -inf. ``k`` <= 0 or >= vocab: unchanged.

    >>> apply_top_k(np.array([1.0, 3.0, 2.0]), 2).tolist()
    [-inf, 3.0, 2.0]
    """
    x = np.array(logits, dtype=np.float32, copy=True)
    if k <= 0 or k >= x.size:
        return x
    kth = np.partition(x, x.size - k)[x.size - k]
    x[x < kth] = -np.inf
    out: np.ndarray = x
    return out


def apply_top_p(logits: np.ndarray, p: float) -> np.ndarray:
    """Nucleus filtering: keep the most likely tokens whose probabilities sum
    to at least ``p`` (always at least one), the rest -inf, like
    transformers' ``TopPLogitsWarper``. ``p`` >= 1: unchanged.

    >>> apply_top_p(np.log(np.array([0.5, 0.3, 0.2])), 0.7).round(3).tolist()
    [-0.693, -1.204, -inf]
    """
    x = np.array(logits, dtype=np.float32, copy=True)
    if p >= 1.0:
        return x
    if not p > 0:
        raise ValueError(f"[sampling] top_p must be in (0, 1], got {p}")
    top = x.max(initial=-np.inf)
    if not np.isfinite(top):  # NaN / inf (the sampler reports it) or nothing left
        return x
    probs = softmax(x)
    # The tokens in descending order (ties: lower id first) until they hold
    # mass p, found band by band: the m largest logits, m growing 8x, each
    # band sorted alone (sorting a whole 128k vocabulary took 16 ms a token).
    # Tokens below the last band come after it in the full order, with at
    # least its mass before them: dropped, as a full sort would drop them.
    order = np.empty(0, np.int64)
    hi, m = np.inf, 64
    while True:
        if m >= x.size:
            band = np.flatnonzero(x < hi)
        else:
            lo = np.partition(x, x.size - m)[x.size - m]
            # ties with the m-th largest join; if it is -inf, the finite ones (all the mass)
            band = np.flatnonzero(((x >= lo) if lo > -np.inf else (x > -np.inf)) & (x < hi))
            hi = lo
        order = np.concatenate([order, band[np.argsort(-x[band], kind="stable")]])
        mass = np.cumsum(probs[order])
        if m >= x.size or hi == -np.inf or mass[-1] >= np.float32(p):
            break
        m *= 8
    before = mass - probs[order]  # probability mass of the more likely tokens
    keep = order[(before < np.float32(p)) | (np.arange(order.size) == 0)]
    out = np.full_like(x, -np.inf)
    out[keep] = x[keep]
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities (float64 internally for a stable sum; float32 out)."""
    x = np.asarray(logits, dtype=np.float64)
    m = np.max(x)
    e = np.exp(x - m)
    out: np.ndarray = (e / e.sum()).astype(np.float32)
    return out


class Sampler:
    """Picks the next token from a logits vector.

    ``temperature`` 0 (the default) is greedy; otherwise the logits go
    through the repetition penalty, temperature, top-k (0: off) and top-p
    (1: off), and a token is drawn with a numpy generator seeded with
    ``seed`` (None: fresh entropy). ``suppress_tokens`` are never picked
    (their logits become -inf first, like transformers' ``suppress_tokens``).

    >>> s = Sampler(temperature=0.8, top_k=40, top_p=0.95, seed=0)
    >>> s(logits, previous=prompt_ids)
    17
    """

    def __init__(
        self,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
        suppress_tokens: Iterable[int] = (),
    ) -> None:
        if temperature < 0:
            raise ValueError(f"[Sampler] temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"[Sampler] top_p must be in (0, 1], got {top_p}")
        if top_k < 0:
            raise ValueError(f"[Sampler] top_k must be >= 0, got {top_k}")
        if repetition_penalty <= 0:
            raise ValueError(f"[Sampler] repetition_penalty must be > 0, got {repetition_penalty}")
        self.temperature = float(temperature)
        self.top_k = int(top_k)
        self.top_p = float(top_p)
        self.repetition_penalty = float(repetition_penalty)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.suppress_tokens = np.array(sorted({int(i) for i in suppress_tokens}), dtype=np.int64)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def process(self, logits: np.ndarray, previous: Iterable[int] = ()) -> np.ndarray:
        """The logits after every rule (-inf where a token cannot be drawn)."""
        x = np.asarray(logits, dtype=np.float32).reshape(-1)
        if self.suppress_tokens.size:
            x = x.copy()
            x[self.suppress_tokens[self.suppress_tokens < x.size]] = -np.inf
        if self.repetition_penalty != 1.0:
            x = apply_repetition_penalty(x, previous, self.repetition_penalty)
        if self.greedy:
            return x
        x = apply_temperature(x, self.temperature)
        x = apply_top_k(x, self.top_k)
        return apply_top_p(x, self.top_p)

    @staticmethod
    def _check_top(top: float) -> None:
        """``top``: the largest processed logit (NaN when any is NaN). A NaN or
        inf logit (a model that overflowed, or weights that hold such values)
        or no token left would otherwise yield an arbitrary token, silently."""
        if np.isnan(top) or top == np.inf:
            raise ValueError(f"[Sampler] the logits hold {'NaN' if np.isnan(top) else 'inf'}: the model "
                             "overflowed, or its weights or inputs hold non-finite values")
        if top == -np.inf:
            raise ValueError("[Sampler] no token can be drawn: every logit is -inf (after suppress_tokens, "
                             "top-k and top-p)")

    def probs(self, logits: np.ndarray, previous: Iterable[int] = ()) -> np.ndarray:
        """The distribution the next token is drawn from (one-hot when greedy)."""
        x = self.process(logits, previous)
        self._check_top(x.max(initial=-np.inf))
        if self.greedy:
            out = np.zeros(x.shape, dtype=np.float32)
            out[int(np.argmax(x))] = 1.0
            return out
        return softmax(x)

    def __call__(self, logits: np.ndarray, previous: Iterable[int] = ()) -> int:
        x = self.process(logits, previous)
        if self.greedy:
            i = int(np.argmax(x))  # the first NaN, if any
            self._check_top(x[i])
            return i
        self._check_top(x.max(initial=-np.inf))
        finite = x > -np.inf  # top-k / top-p leave a few of a large vocabulary: draw among those
        live = None if finite.all() else np.flatnonzero(finite)
        p = softmax(x if live is None else x[live]).astype(np.float64)
        cdf = np.cumsum(p)
        i = int(np.searchsorted(cdf, self.rng.random() * cdf[-1], side="right"))
        i = min(i, p.size - 1)
        while p[i] == 0.0 and i > 0:  # never land on a token whose probability rounds to 0
            i -= 1
        return i if live is None else int(live[i])


# ---------------------------------------------------------------- generation


@dataclass
class GenerationStats:
    """Timings of one generation. ``prefill_*``: the prompt's tokens that
    ran (all but the ``reused_tokens`` the KV cache already held);
    ``decode_*``: each later token (one execute per token)."""

    prompt_tokens: int = 0
    reused_tokens: int = 0
    prefill_seconds: float = 0.0
    decode_tokens: int = 0
    decode_seconds: float = 0.0
    generated_tokens: int = 0
    stop_reason: str = ""
    """"stop" (a stop / EOS token), "length" (max_tokens) or "context" (max positions)."""

    @property
    def prefill_tokens_per_s(self) -> float:
        return self.prompt_tokens / self.prefill_seconds if self.prefill_seconds > 0 else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        return self.decode_tokens / self.decode_seconds if self.decode_seconds > 0 else 0.0

    def summary(self) -> str:
        """One line: ``prefill: 7 tokens, 120.3 tok/s | decode: 19 tokens, 35.1 tok/s``
        (``prefill: 7 tokens after 120 cached, ...`` when a prefix was reused)."""
        cached = f" after {self.reused_tokens} cached" if self.reused_tokens else ""
        return (f"prefill: {self.prompt_tokens} tokens{cached}, {self.prefill_tokens_per_s:.1f} tok/s | "
                f"decode: {self.decode_tokens} tokens, {self.decode_tokens_per_s:.1f} tok/s")


class Generator:
    """A model compiled once for generation: embedded ids (1, "seq", hidden)
    -> last-position logits, with a ``KVCache`` whose rows the graph appends
    in place. The token embeddings are looked up on the host (one row copied
    per token) and fed as the graph's input: the graph's own lookup is a
    product over the whole vocabulary.

    >>> gen = Generator(model, tok)              # builds and compiles the graph
    >>> for piece in gen.stream("Once upon a time", max_tokens=30):
    ...     print(piece, end="")
    >>> list(gen.generate_ids([1, 415, 5565], max_tokens=5))   # ids in, ids out
    [28705, 28740, 28723, 28705, 28750]

    ``compilers`` default to ``GenericCompiler()`` and the ``device``'s
    compiler: ``CPUCompiler()`` for "cpu", ``CUDACompiler()`` for "cuda"
    (weights upload to the GPU on the first step and stay there). Pass ``[]``
    for the reference executor.

    ``float32_matmul_precision`` (CPU): the float products' precision, as
    the default ``CPUCompiler`` takes it (with ``compilers`` given, pass it to
    yours). None (the default) is ``"medium"`` for a model
    with quantized weights (Q8_0, Q4_0, k-quants), whose products already
    round activations to int8 or bf16: attention's products of prompt blocks
    of 16+ tokens then run on bf16 tiles, AMX or AVX512-BF16 (3.9-4.7x the
    float32 ones on a Sapphire Rapids core, as llama.cpp keeps its cache in
    f16); and for one
    with f16/bf16 weights kept packed (an F16 GGUF, a bf16 checkpoint loaded
    with ``quantized=True``), whose weight products over a prompt then run
    on the tiles too (bf16 weights lose nothing; f16 ones 3 bits, as running
    the checkpoint in bf16 does; a 4-layer F16 model's 512-token prefill
    ~6x "highest"'s). ``"highest"`` otherwise (float32 weights). Decode
    steps are float32 either way.

    ``prefill_chunk``: the most prompt tokens run in one block. None (the
    default) runs a prompt of up to ``PREFILL_BLOCK[device]`` tokens (512 on
    the CPU, 2,048 on a GPU) whole and a longer one in equal blocks of at
    most that (``prefill_chunk_size``); the cache carries each block's keys
    and values to the next, so the logits are the one-block ones up to
    rounding.
    """

    def __init__(
        self,
        model: LlamaForCausalLM,
        tokenizer: Tokenizer | None = None,
        *,
        compilers: Sequence[Compiler] | None = None,
        device: str = "cpu",
        prefill_chunk: int | None = None,
        float32_matmul_precision: str | None = None,
    ) -> None:
        import luminal as lm
        from luminal.quant import QUANTIZED

        if device not in ("cpu", "cuda"):
            raise ValueError(f"[Generator] device must be 'cpu' or 'cuda', got {device!r}")
        if prefill_chunk is not None and (isinstance(prefill_chunk, bool) or not isinstance(prefill_chunk, int)
                                          or prefill_chunk <= 0):
            raise ValueError(f"[Generator] prefill_chunk must be None or a positive int, got {prefill_chunk!r}")
        if compilers is not None and float32_matmul_precision is not None:
            raise ValueError("[Generator] float32_matmul_precision sets the default CPUCompiler's; "
                             "with compilers given, pass it to your CPUCompiler")
        self.prefill_chunk = prefill_chunk
        self.device = device

        self.model = model
        self.tokenizer = tokenizer
        self.config = model.config
        model.eval()
        self.graph = Graph()
        self.embeds = self.graph.tensor((1, "seq", self.config.hidden_size), name="embeds")
        self.cache = KVCache(self.graph, self.config, batch=1)
        self.cached_ids: list[int] = []
        """The ids whose keys and values the cache holds, in order."""
        self.logits = model(self.embeds, self.cache, last_only=True).retrieve()
        t = time.perf_counter()
        if float32_matmul_precision is None:
            compact = any(getattr(p, "format", None) in QUANTIZED for _, p in model.named_parameters())
            float32_matmul_precision = "medium" if compact else "highest"
        self.float32_matmul_precision = float32_matmul_precision if compilers is None else None
        """The default CPU compiler's float product precision (see above); None with ``compilers`` given."""
        backend: Compiler = (lm.CUDACompiler() if device == "cuda"
                             else lm.CPUCompiler(float32_matmul_precision=float32_matmul_precision))
        chosen = [lm.GenericCompiler(), backend] if compilers is None else list(compilers)
        if chosen:
            self.graph.compile(*chosen)
        self.compile_seconds = time.perf_counter() - t

    def _step(self, ids: Sequence[int]) -> np.ndarray:
        """Run one block of ids after the cache; the last position's logits."""
        table = self.model.model.embed_tokens.weight  # (vocab, hidden), current weights; maybe quantized
        self.embeds.set(table.rows(ids)[None])
        try:
            self.graph.execute()
            out: np.ndarray = self.logits.numpy().reshape(-1)  # read before after_step rebinds "past"
            self.cache.after_step(len(ids))
            self.cached_ids.extend(int(i) for i in ids)
        except BaseException:
            # A failed or interrupted (Ctrl-C) step may have appended rows
            # that "past" does not count: empty the cache, so the next prompt
            # starts clean instead of failing on the cache's size.
            self.reset_cache()
            raise
        return out

    def reset_cache(self) -> None:
        """Empty the KV cache (and ``cached_ids``): the next prompt runs whole."""
        self.cache.reset()
        self.cached_ids = []

    def _keep_prefix(self, prompt: list[int]) -> int:
        """Roll the cache back to the longest prefix of ``prompt`` it holds,
        leaving at least the prompt's last id to run (its logits pick the
        next token); how many it kept."""
        held = self.cached_ids
        if len(held) != self.cache.length:  # not ours to trust: start afresh
            return 0
        n = min(len(held), len(prompt) - 1)
        same = np.flatnonzero(np.asarray(held[:n]) != np.asarray(prompt[:n]))
        keep = int(same[0]) if same.size else n
        if not keep:
            return 0  # the caller empties the cache
        self.cache.truncate(keep)
        del self.cached_ids[keep:]
        return keep

    def generate_ids(
        self,
        prompt_ids: Sequence[int],
        max_tokens: int = 128,
        sampler: Sampler | None = None,
        stop_ids: Iterable[int] = (),
        stats: GenerationStats | None = None,
        *,
        reuse_prefix: bool = False,
    ) -> collections.abc.Generator[int, None, None]:
        """Generated token ids, one at a time, starting from an empty cache,
        or with ``reuse_prefix=True`` from the longest prefix of the prompt
        the cache already holds (``cached_ids``: the last prompt and the ids
        generated after it; a chat's earlier turns), rolled back to it: only
        the rest of the prompt runs. Stops after ``max_tokens``, at a token in
        ``stop_ids`` (not yielded), or when the context
        (``max_position_embeddings``) is full. Timings go to ``stats`` if
        given."""
        prompt = [int(i) for i in prompt_ids]
        if not prompt:
            raise ValueError("[generate] the prompt has no tokens (encode it with a BOS token)")
        vocab = self.config.vocab_size
        bad = [i for i in prompt if not 0 <= i < vocab]
        if bad:
            raise ValueError(f"[generate] prompt token id(s) {bad[:5]} outside the vocabulary (size {vocab})")
        limit = self.config.max_position_embeddings
        if len(prompt) >= limit:
            raise ValueError(f"[generate] the prompt has {len(prompt)} tokens; the model's context is {limit}")
        sampler = sampler or Sampler()
        stops = {int(i) for i in stop_ids}
        st = stats if stats is not None else GenerationStats()
        reused = self._keep_prefix(prompt) if reuse_prefix else 0
        if not reused:
            self.reset_cache()
        st.prompt_tokens, st.reused_tokens = len(prompt) - reused, reused
        history = list(prompt)
        if max_tokens <= 0:
            st.stop_reason = "length"
            return
        t = time.perf_counter()
        rest = prompt[reused:]
        chunk = prefill_chunk_size(len(rest), self.config.num_attention_heads, self.prefill_chunk, reused,
                                   self.device)
        for start in range(0, len(rest), chunk):
            logits = self._step(rest[start:start + chunk])
        st.prefill_seconds = time.perf_counter() - t
        while True:
            tok = sampler(logits, history)
            if tok in stops:
                st.stop_reason = "stop"
                return
            history.append(tok)
            st.generated_tokens += 1
            yield tok
            if st.generated_tokens >= max_tokens:
                st.stop_reason = "length"
                return
            if self.cache.length >= limit:
                st.stop_reason = "context"
                return
            t = time.perf_counter()
            logits = self._step([tok])
            st.decode_seconds += time.perf_counter() - t
            st.decode_tokens += 1

    def stream(
        self,
        prompt: str | Sequence[int],
        max_tokens: int = 128,
        *,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
        stop: Iterable[int | str] = (),
        chat: bool = False,
        system: str | None = None,
        suppress_tokens: Iterable[int] = (),
        reuse_prefix: bool = False,
    ) -> GenerationStream:
        """Generate from ``prompt`` (text, or token ids), yielding text pieces.
        ``chat=True`` wraps the prompt in the tokenizer's chat template (as a
        user message, after an optional ``system`` message). Stops at the
        tokenizer's EOS ids and at ``stop``: ids, or strings, which end the
        text where they first appear (not printed; a string that is a token
        of its own, like ``"<|im_end|>"``, also stops as that id); never
        picks ``suppress_tokens``. ``reuse_prefix=True`` runs only what
        follows the longest prefix of the prompt the KV cache already holds
        (a chat's earlier turns, a shared system prompt; see
        ``generate_ids``)."""
        sampler = Sampler(temperature, top_k, top_p, repetition_penalty, seed, suppress_tokens)
        tok = self.tokenizer
        if isinstance(prompt, str):
            if tok is None:
                raise ValueError("[generate] a text prompt needs a tokenizer")
            if chat:
                messages = ([{"role": "system", "content": system}] if system else []) + [
                    {"role": "user", "content": prompt}]
                ids = tok.encode(tok.apply_chat_template(messages), add_bos=False)
            else:
                ids = tok.encode(prompt)
        else:
            ids = [int(i) for i in prompt]
        stop_ids: set[int] = set(tok.eos_token_ids) if tok is not None else set()
        if tok is None and self.config.eos_token_id is not None:
            eos = self.config.eos_token_id
            stop_ids.update(eos if isinstance(eos, list) else [eos])
        stop_texts: list[str] = []
        for s in stop:
            if isinstance(s, str):
                if not s:
                    raise ValueError("[generate] an empty stop string")
                if tok is None:
                    raise ValueError(f"[generate] stop string {s!r} needs a tokenizer")
                token = tok.token_to_id(s)
                if token is not None:  # a token of its own (a special one never shows in the text)
                    stop_ids.add(int(token))
                stop_texts.append(s)
            else:
                stop_ids.add(int(s))
        return GenerationStream(self, ids, max_tokens, sampler, stop_ids, reuse_prefix, stop_texts)


class GenerationStream:
    """An iterator of text pieces (or of ids with ``ids()``) for one
    generation; afterwards ``tokens`` holds the generated ids, ``text`` the
    text and ``stats`` the timings (``GenerationStats``).

    With ``stop_texts``, iterating for text ends where one first appears (it
    is not returned, nor are the tokens after it generated): text that may
    be the start of one is held back until the next pieces tell."""

    def __init__(
        self, generator: Generator, prompt_ids: list[int], max_tokens: int, sampler: Sampler, stop_ids: set[int],
        reuse_prefix: bool = False, stop_texts: Sequence[str] = (),
    ) -> None:
        self.generator = generator
        self.prompt_ids = prompt_ids
        self.stats = GenerationStats()
        self.tokens: list[int] = []
        self.text = ""
        self.stop_texts = list(stop_texts)
        self.stopped_at_text = False
        """Whether a stop string ended the text (``tokens`` then spell it too)."""
        self._ids = generator.generate_ids(prompt_ids, max_tokens, sampler, stop_ids, self.stats,
                                           reuse_prefix=reuse_prefix)

    def ids(self) -> Iterator[int]:
        """The generated ids, one at a time (no detokenization)."""
        for t in self._ids:
            self.tokens.append(t)
            yield t

    def __iter__(self) -> Iterator[str]:
        tok = self.generator.tokenizer
        if tok is None:
            raise ValueError("[generate] streaming text needs a tokenizer; iterate over .ids() instead")
        dec = tok.stream(context=self.prompt_ids[-4:])
        held = ""  # text that may be the start of a stop string
        for t in self.ids():
            held += dec.put(t)
            piece, held, stopped = self._release(held, final=False)
            if piece:
                self.text += piece
                yield piece
            if stopped:
                self._ids.close()  # no more tokens
                self.stats.stop_reason = "stop"
                self.stopped_at_text = True
                return
        piece, _, _ = self._release(held + dec.flush(), final=True)
        if piece:
            self.text += piece
            yield piece

    def _release(self, held: str, final: bool) -> tuple[str, str, bool]:
        """Of ``held``: the text to return, the text to keep holding, and
        whether a stop string was reached (the text ends before it)."""
        if not self.stop_texts:
            return held, "", False
        hits = [i for i in (held.find(s) for s in self.stop_texts) if i >= 0]
        if hits:
            return held[:min(hits)], "", True
        if final:
            return held, "", False
        keep = 0  # the longest end of `held` that begins a stop string
        for s in self.stop_texts:
            for n in range(min(len(s) - 1, len(held)), keep, -1):
                if s.startswith(held[-n:]):
                    keep = n
                    break
        return held[:len(held) - keep], held[len(held) - keep:], False

    def read(self) -> str:
        """Run to the end; the whole text."""
        for _ in self:
            pass
        return self.text


def generate(
    model: LlamaForCausalLM,
    tokenizer: Tokenizer | None,
    prompt: str | Sequence[int],
    max_tokens: int = 128,
    *,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    seed: int | None = None,
    stop: Iterable[int | str] = (),
    chat: bool = False,
    system: str | None = None,
    suppress_tokens: Iterable[int] = (),
    compilers: Sequence[Compiler] | None = None,
    prefill_chunk: int | None = None,
) -> GenerationStream:
    """Compile ``model`` for generation (``Generator``) and stream from
    ``prompt``: iterate for text pieces, then read ``.stats``. To generate
    several times, make one ``Generator`` and call its ``stream``.

    >>> for piece in generate(model, tok, "Hello", max_tokens=10, temperature=0.7, seed=0):
    ...     print(piece, end="")
    """
    gen = Generator(model, tokenizer, compilers=compilers, prefill_chunk=prefill_chunk)
    return gen.stream(prompt, max_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                      repetition_penalty=repetition_penalty, seed=seed, stop=stop, chat=chat, system=system,
                      suppress_tokens=suppress_tokens)
