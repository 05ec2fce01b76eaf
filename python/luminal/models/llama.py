"""Llama and Mistral decoders built from ``luminal.nn``, with Hugging Face's
parameter names (``model.layers.0.self_attn.q_proj.weight``, ...), so a
transformers ``state_dict`` (as numpy arrays or torch tensors) loads directly.

One graph serves every sequence length: token ids are an ``"i32"`` input of
shape ``(batch, "seq")``. With a ``KVCache`` the same graph also decodes: the
cache holds, per layer, key and value inputs of shape ``("past", batch,
n_kv_heads, head_dim)``; each step attends to them and to the new block, and
the graph appends the step's new rows to them in place after every
``execute()`` (``Graph.append``); ``cache.after_step()`` then advances the
``past`` dim.

>>> import luminal as lm
>>> from luminal.models import LlamaConfig, LlamaForCausalLM, KVCache
>>> cfg = LlamaConfig.from_hf("path/to/model")
>>> model = LlamaForCausalLM(cfg).eval()
>>> model.load_state_dict(hf_state_dict)              # {HF name: array}
>>> cx = lm.Graph()
>>> ids = cx.tensor((1, "seq"), name="ids", dtype="i32")
>>> cache = KVCache(cx, cfg, batch=1)
>>> logits = model(ids, cache).retrieve()             # (1, seq, vocab)
>>> cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
>>> ids.set(np.array([prompt])); cx.execute()
>>> tok = int(logits.numpy()[0, -1].argmax())         # read results first:
>>> cache.after_step()                                 # rebinding "past" clears them
>>> ids.set(np.array([[tok]])); cx.execute()           # next token, same program
>>> tok = int(logits.numpy()[0, -1].argmax()); cache.after_step()

Real checkpoints load with ``LlamaForCausalLM.from_pretrained(path)`` (a
Hugging Face directory or a GGUF file; see ``luminal.models.loading``).
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Mapping, TypeVar

import numpy as np

import luminal.nn.functional as F
from luminal._core import Expr
from luminal._shape import Dim
from luminal.graph import Graph
from luminal.hl_ops.movement import cat
from luminal.models.config import LlamaConfig
from luminal.nn import init as nn_init
from luminal.nn.container import ModuleList
from luminal.nn.linear import Linear
from luminal.nn.module import IncompatibleKeys, Module
from luminal.nn.normalization import RMSNorm
from luminal.nn.parameter import Parameter
from luminal.nn.sparse import Embedding
from luminal.tensor import Tensor

M = TypeVar("M", bound=Module)

__all__ = [
    "KVCache",
    "LlamaAttention",
    "LlamaDecoderLayer",
    "LlamaForCausalLM",
    "LlamaMLP",
    "LlamaModel",
    "LlamaRotaryEmbedding",
    "MistralForCausalLM",
    "rope_inv_freq",
]


# ---------------------------------------------------------------- RoPE


def rope_inv_freq(config: LlamaConfig) -> np.ndarray:
    """The rotary inverse frequencies, ``(head_dim // 2,)`` float32, computed in
    float32 as transformers does, with "linear" or "llama3" scaling applied.

    >>> rope_inv_freq(cfg).shape
    (4,)
    """
    dim = config.head_size
    exponents = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
    inv = (np.float32(1.0) / (np.float32(config.rope_theta) ** exponents)).astype(np.float32)
    s = config.rope_scaling
    if s is None:
        return inv
    factor = np.float32(s["factor"])
    if s["rope_type"] == "linear":
        return (inv / factor).astype(np.float32)
    # llama3: keep high frequencies, divide low ones by factor, interpolate between.
    low, high = float(s["low_freq_factor"]), float(s["high_freq_factor"])
    old_len = float(s["original_max_position_embeddings"])
    low_wavelen = old_len / low
    high_wavelen = old_len / high
    wavelen = (np.float32(2 * math.pi) / inv).astype(np.float32)
    scaled = np.where(wavelen > low_wavelen, inv / factor, inv).astype(np.float32)
    smooth = ((np.float32(old_len) / wavelen - np.float32(low)) / np.float32(high - low)).astype(np.float32)
    smoothed = ((np.float32(1) - smooth) * scaled / factor + smooth * scaled).astype(np.float32)
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return np.where(medium, smoothed, scaled).astype(np.float32)


class LlamaRotaryEmbedding(Module):
    """cos and sin of ``position * inv_freq``, duplicated over both halves of
    ``head_dim`` (transformers' layout). ``inv_freq`` is a non-persistent
    buffer (not in ``state_dict``, as in transformers), bound to graphs as a
    parameter input.

    >>> cos, sin = rope(positions)        # positions: (seq,) f32 -> (seq, head_dim) each
    """

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.register_buffer("inv_freq", rope_inv_freq(config), persistent=False)

    def forward(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        inv = self.inv_freq.tensor(positions.graph)
        freqs = positions.unsqueeze(-1) * inv  # (seq, head_dim / 2)
        emb = cat([freqs, freqs], -1)
        # cos as 1 - 2 sin^2(x/2): x/2 is exact, so this stays accurate to ~1e-7 at
        # any position; sin(pi/2 - x) would round pi/2 - x (5e-4 off at x ~ 1e4).
        half = (emb * 0.5).sin()
        return 1.0 - 2.0 * half * half, emb.sin()


def _rotate_half(x: Tensor) -> Tensor:
    half = x._view.shape[-1] // 2
    d = x.ndim - 1
    x1 = x.narrow(d, 0, half)
    x2 = x.narrow(d, half, half)
    return cat([-x2, x1], -1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """``x * cos + rotate_half(x) * sin`` for ``x`` of shape (batch, seq, heads,
    head_dim) and cos/sin of shape (seq, head_dim)."""
    c, s = cos.unsqueeze(1), sin.unsqueeze(1)  # (seq, 1, head_dim)
    return x * c + _rotate_half(x) * s


# ---------------------------------------------------------------- layers without init


def empty_parameter(shape: tuple[int, ...]) -> Parameter:
    """A parameter of ``shape`` that holds no memory: a read-only broadcast
    zero, to be replaced by loaded weights (``_replace``). Used with
    ``init=False`` so that building a 7B-shaped model costs nothing."""
    p = Parameter(np.zeros((0,), dtype=np.float32))
    p._replace(np.broadcast_to(np.zeros((), dtype=np.float32), shape))
    return p


def _tiny(make: Callable[[], M]) -> M:
    """``make()`` (a 1x1 layer) without moving ``nn.init``'s random generator,
    so loading a model does not change the weights of layers built later."""
    rng = nn_init.generator()
    state = rng.bit_generator.state
    try:
        return make()
    finally:
        rng.bit_generator.state = state


def _linear(in_features: int, out_features: int, bias: bool, init: bool) -> Linear:
    if init:
        return Linear(in_features, out_features, bias=bias)
    lin = _tiny(lambda: Linear(1, 1, bias=bias))  # a real Linear, then weights of the right shape, no data
    lin.in_features, lin.out_features = in_features, out_features
    lin.weight = empty_parameter((out_features, in_features))
    if bias:
        lin.bias = empty_parameter((out_features,))
    return lin


def _embedding(num: int, dim: int, init: bool) -> Embedding:
    if init:
        return Embedding(num, dim)
    emb = _tiny(lambda: Embedding(1, 1))
    emb.num_embeddings, emb.embedding_dim = num, dim
    emb.weight = empty_parameter((num, dim))
    return emb


# ---------------------------------------------------------------- blocks


class LlamaMLP(Module):
    """SwiGLU feed-forward: ``down_proj(silu(gate_proj(x)) * up_proj(x))``."""

    def __init__(self, config: LlamaConfig, *, init: bool = True) -> None:
        super().__init__()
        h, i, b = config.hidden_size, config.intermediate_size, config.mlp_bias
        self.gate_proj = _linear(h, i, b, init)
        self.up_proj = _linear(h, i, b, init)
        self.down_proj = _linear(i, h, b, init)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        return out


class LlamaAttention(Module):
    """Grouped-query self-attention with rotary embeddings.

    ``forward(x, cos, sin, bias_new, bias_past=None, past=None)`` returns
    ``(out, new_keys, new_values)``; the new rows are ``(seq, batch,
    n_kv_heads, head_dim)`` (keys after RoPE). With ``past = (keys, values)``
    of shape ``(past, batch, n_kv_heads, head_dim)`` the scores against the
    cache and against the new block are computed separately, concatenated,
    softmaxed once and split again: the cache is never copied.
    """

    def __init__(self, config: LlamaConfig, layer_idx: int = 0, *, init: bool = True) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.kv_heads
        self.head_dim = config.head_size
        self.scaling = self.head_dim ** -0.5
        h, b = config.hidden_size, config.attention_bias
        self.q_proj = _linear(h, self.num_heads * self.head_dim, b, init)
        self.k_proj = _linear(h, self.num_kv_heads * self.head_dim, b, init)
        self.v_proj = _linear(h, self.num_kv_heads * self.head_dim, b, init)
        self.o_proj = _linear(self.num_heads * self.head_dim, h, b, init)

    def forward(
        self,
        x: Tensor,
        cos: Tensor,
        sin: Tensor,
        bias_new: Tensor,
        bias_past: Tensor | None = None,
        past: tuple[Tensor, Tensor] | None = None,
        last_only: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Attention output (batch, seq, hidden), or (batch, 1, hidden) for the
        last position only with ``last_only`` (its query alone; every key and
        value is still returned for the cache)."""
        B, S = x.shape[0], x.shape[1]
        H, KV, hd = self.num_heads, self.num_kv_heads, self.head_dim
        rep = H // KV
        k = apply_rope(self.k_proj(x).reshape(B, S, KV, hd), cos, sin)
        v = self.v_proj(x).reshape(B, S, KV, hd)
        if last_only:  # one query row: its position's rope and mask row
            x, cos, sin = x.narrow(1, -1, 1), cos.narrow(0, -1, 1), sin.narrow(0, -1, 1)
            bias_new = bias_new.narrow(0, -1, 1)
            bias_past = None if bias_past is None else bias_past.narrow(0, -1, 1)
        Sq = x.shape[1]
        q = apply_rope(self.q_proj(x).reshape(B, Sq, H, hd), cos, sin)

        # Query head h uses kv head h // rep (transformers' repeat_kv), without copies:
        q5 = q.reshape(B, Sq, KV, rep, hd).permute(0, 2, 3, 1, 4)  # (B, KV, rep, Sq, hd)
        k_t = k.permute(0, 2, 3, 1).unsqueeze(2)  # (B, KV, 1, hd, S)
        v5 = v.permute(0, 2, 1, 3).unsqueeze(2)  # (B, KV, 1, S, hd)
        scores = (q5 @ k_t) * self.scaling + bias_new  # (B, KV, rep, S, S)
        if past is None:
            out = scores.softmax(-1) @ v5
        else:
            past_k, past_v = past
            P = past_k._view.shape[0]
            pk_t = past_k.permute(1, 2, 3, 0).unsqueeze(2)  # (B, KV, 1, hd, P)
            pv5 = past_v.permute(1, 2, 0, 3).unsqueeze(2)  # (B, KV, 1, P, hd)
            past_scores = (q5 @ pk_t) * self.scaling  # (B, KV, rep, S, P)
            if bias_past is not None:
                past_scores = past_scores + bias_past
            probs = cat([past_scores, scores], -1).softmax(-1)  # (B, KV, rep, S, P + S)
            out = probs.narrow(-1, 0, P) @ pv5 + probs.narrow(-1, P, k._view.shape[1]) @ v5
        out = out.permute(0, 3, 1, 2, 4).reshape(B, Sq, H * hd)
        return self.o_proj(out), k.permute(1, 0, 2, 3), v.permute(1, 0, 2, 3)


class LlamaDecoderLayer(Module):
    """Pre-norm block: ``x + self_attn(input_layernorm(x))``, then
    ``h + mlp(post_attention_layernorm(h))``. Returns ``(out, new_keys,
    new_values)`` like ``LlamaAttention``."""

    def __init__(self, config: LlamaConfig, layer_idx: int = 0, *, init: bool = True) -> None:
        super().__init__()
        self.self_attn = LlamaAttention(config, layer_idx, init=init)
        self.mlp = LlamaMLP(config, init=init)
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(
        self,
        x: Tensor,
        cos: Tensor,
        sin: Tensor,
        bias_new: Tensor,
        bias_past: Tensor | None = None,
        past: tuple[Tensor, Tensor] | None = None,
        last_only: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:
        attn, k, v = self.self_attn(self.input_layernorm(x), cos, sin, bias_new, bias_past, past, last_only)
        h = (x.narrow(1, -1, 1) if last_only else x) + attn
        out = h + self.mlp(self.post_attention_layernorm(h))
        return out, k, v


def _iota(graph: Graph, n: Dim) -> Tensor:
    """0, 1, ..., n-1 as float32, ``n`` possibly symbolic."""
    return graph.arange(n).float()


def attention_biases(
    graph: Graph, seq: Dim, past: Dim | None, sliding_window: int | None
) -> tuple[Tensor, Tensor | None]:
    """Additive masks (0 = attend, -inf = masked) for ``seq`` new queries at
    absolute positions ``past + i``: over the new keys ``(seq, seq)`` (causal,
    and within ``sliding_window``) and over the cached keys ``(seq, past)``
    (None when every cached key is visible: no cache or no window)."""
    i = _iota(graph, seq).unsqueeze(1)
    j = _iota(graph, seq).unsqueeze(0)
    # Positions are exact integers, never NaN: j <= i is j < i + 1, one
    # comparison (le adds NaN guards), whose log2 kernels print as a select.
    keep = j.lt(i + 1.0).float()
    if sliding_window is not None:
        keep = keep * i.lt(j + float(sliding_window)).float()  # i - j < window
    bias_new = keep.log2()
    if past is None or sliding_window is None:
        return bias_new, None
    jp = _iota(graph, past).unsqueeze(0)  # cached key positions 0..past-1
    qpos = i + graph.constant(past if isinstance(past, Expr) else Expr(past))
    bias_past = qpos.lt(jp + float(sliding_window)).float().log2()  # past + i - j < window
    return bias_new, bias_past


class LlamaModel(Module):
    """The decoder stack: ``embed_tokens``, ``layers.{i}``, ``norm`` (and the
    non-persistent ``rotary_emb.inv_freq``). ``forward(ids, cache=None,
    last_only=False)`` returns the final hidden states (batch, seq,
    hidden_size), or (batch, 1, hidden_size) for the last position with
    ``last_only`` (the final layer then computes only that row's query,
    attention output and MLP; the cache still gets every row's keys).

    ``ids`` are "i32" token ids (batch, seq), or already-embedded inputs: an
    f32 tensor (batch, seq, hidden_size), e.g. ``embed_tokens.weight.data[ids]``
    computed in numpy. Generation does that: the in-graph lookup is a one-hot
    product over the whole vocabulary, O(vocab * hidden) per token, where the
    host lookup copies one row."""

    def __init__(self, config: LlamaConfig, *, init: bool = True) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = _embedding(config.vocab_size, config.hidden_size, init)
        self.layers = ModuleList(
            [LlamaDecoderLayer(config, i, init=init) for i in range(config.num_hidden_layers)]
        )
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(config)

    def forward(self, ids: Tensor, cache: KVCache | None = None, *, last_only: bool = False) -> Tensor:
        g = ids.graph
        embeds = ids.ndim == 3
        if embeds:
            if ids.dtype != "f32" or ids._view.shape[2].as_const() != self.config.hidden_size:
                raise ValueError(f"[LlamaModel] input embeddings must be (batch, seq, {self.config.hidden_size}) "
                                 f"f32, got shape {ids.shape} {ids.dtype}")
        elif ids.ndim != 2:
            raise ValueError(f"[LlamaModel] ids must be (batch, seq), got shape {ids.shape}")
        elif ids.dtype != "i32":
            raise TypeError(f"[LlamaModel] ids must be an 'i32' tensor, got dtype {ids.dtype!r}")
        B, S = ids.shape[0], ids.shape[1]
        past: Dim | None = None
        positions = _iota(g, S)
        if cache is not None:
            cache._check(self.config, g, B)
            past = cache.past
            positions = positions + g.constant(past)
        cos, sin = self.rotary_emb(positions)
        bias_new, bias_past = attention_biases(g, S, past, self.config.sliding_window)
        x: Tensor = ids if embeds else self.embed_tokens(ids)
        new_k: list[Tensor] = []
        new_v: list[Tensor] = []
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            kv = None if cache is None else (cache.keys[i], cache.values[i])
            # Only the last position leaves the final layer: its other rows'
            # queries, attention outputs and MLP feed nothing (llama.cpp prunes
            # them too; for a 64-token prompt of a 2-layer model, 40% of the work).
            x, k, v = layer(x, cos, sin, bias_new, bias_past, kv, last_only and i == last)
            new_k.append(k)
            new_v.append(v)
        if last_only and not self.layers:
            x = x.narrow(1, -1, 1)
        if cache is not None:
            cache._record(new_k, new_v)
        out: Tensor = self.norm(x)
        return out


class LlamaForCausalLM(Module):
    """A Llama (or Mistral) language model: ``model`` (``LlamaModel``) and
    ``lm_head``, with transformers' ``state_dict`` keys. With
    ``tie_word_embeddings`` there is no ``lm_head``: the output projection is
    ``model.embed_tokens.weight`` (a tied checkpoint's redundant
    ``lm_head.weight`` is ignored by ``load_state_dict``).

    ``forward(ids, cache=None, last_only=False)`` takes ``"i32"`` ids (batch,
    seq) (seq may be symbolic), or input embeddings (batch, seq, hidden_size)
    (see ``LlamaModel``), and returns logits (batch, seq, vocab_size),
    or (batch, 1, vocab_size) for the last position only with
    ``last_only=True`` (what generation needs: the output projection then
    runs on one row). With a ``KVCache`` the ids are the tokens after the
    cached ones; the graph appends the step's key/value rows to the cache
    after every ``execute()`` and ``cache.after_step()`` advances ``past``.

    ``init=False`` builds the model without random initialisation: every
    weight has its shape but no data (a zero broadcast, no memory) until
    loaded. ``from_pretrained`` does this, so a 7B-shaped model is built in
    milliseconds.

    >>> model = LlamaForCausalLM(cfg).eval()
    >>> model.load_state_dict({k: v.float().numpy() for k, v in hf_model.state_dict().items()})
    >>> cx = lm.Graph()
    >>> ids = cx.tensor((1, "seq"), dtype="i32")
    >>> logits = model(ids).retrieve()
    >>> cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    >>> ids.set(np.array([[1, 5, 9]])); cx.execute(); logits.numpy().shape
    (1, 3, 100)
    """

    def __init__(self, config: LlamaConfig, *, init: bool = True) -> None:
        super().__init__()
        self.config = config
        self.model = LlamaModel(config, init=init)
        if config.tie_word_embeddings:
            self.register_module("lm_head", None)
        else:
            self.lm_head = _linear(config.hidden_size, config.vocab_size, False, init)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike[str], dtype: str = "f32", **kwargs: Any
    ) -> LlamaForCausalLM:
        """A model loaded from a Hugging Face directory (``config.json`` and
        safetensors, single file or sharded) or a GGUF file; see
        ``luminal.models.loading.load_model`` for the options.

        >>> model = LlamaForCausalLM.from_pretrained("models/Mistral-7B-Instruct-v0.3")
        """
        from luminal.models.loading import load_model

        return load_model(path, dtype=dtype, **kwargs)

    def forward(self, ids: Tensor, cache: KVCache | None = None, *, last_only: bool = False) -> Tensor:
        hidden: Tensor = self.model(ids, cache, last_only=last_only)
        head = self._modules.get("lm_head")
        if head is None:
            return F.linear(hidden, self.model.embed_tokens.weight.tensor(hidden.graph))
        logits: Tensor = head(hidden)
        return logits

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> IncompatibleKeys:
        """``Module.load_state_dict`` with transformers' names. With tied
        embeddings a ``lm_head.weight`` entry (transformers lists the shared
        tensor under both names) is skipped."""
        if self.config.tie_word_embeddings and "lm_head.weight" in state_dict:
            state_dict = {k: v for k, v in state_dict.items() if k != "lm_head.weight"}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def new_cache(self, graph: Graph, batch: int = 1, past_dim: str = "past") -> KVCache:
        """An empty ``KVCache`` for this model in ``graph``. ``model.new_cache(cx)``"""
        return KVCache(graph, self.config, batch, past_dim=past_dim)


MistralForCausalLM = LlamaForCausalLM
"""Mistral is Llama with a sliding attention window (``config.sliding_window``)."""


# ---------------------------------------------------------------- KV cache


class KVCache:
    """Per-layer past keys and values, as inputs of ``graph`` shaped
    ``(past_dim, batch, n_kv_heads, head_dim)`` (position-major, so a step's
    rows are a contiguous append at the end of each buffer).

    Pass it to the model's forward while building the graph; the forward
    records each layer's new rows (``new_keys[i]``, ``new_values[i]``, shape
    ``(seq, batch, n_kv_heads, head_dim)``, retrieved) and asks the graph to
    append them to the cache inputs after every ``execute()``
    (``Graph.append``: in place, amortized, no copy of the cache). After each
    ``execute()`` call ``after_step()`` exactly once: it rebinds the ``past``
    dim to the new length, nothing else. Rebinding a dim clears the graph's
    results: read the logits first. ``reset()`` empties the cache (past = 0),
    ``truncate(n)`` keeps its first n positions.

    >>> cache = KVCache(cx, cfg, batch=1)
    >>> logits = model(ids, cache).retrieve()
    >>> ids.set(prompt_ids); cx.execute()
    >>> next_token = logits.numpy()[:, -1].argmax(-1)
    >>> cache.after_step()          # or after_step(7): checked against the step
    >>> cache.length
    7

    Every ``execute()`` of the graph appends, so an execute without
    ``after_step()`` leaves the data longer than ``past``: the next run then
    fails with a clear size error rather than reading stale rows.
    """

    def __init__(
        self, graph: Graph, config: LlamaConfig, batch: int = 1, *, past_dim: str = "past", name: str = "cache"
    ) -> None:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0:
            raise ValueError(f"[KVCache] batch must be a positive int, got {batch!r}")
        self.graph = graph
        self.config = config
        self.batch = batch
        self.past_dim = past_dim
        shape = (past_dim, batch, config.kv_heads, config.head_size)
        n = config.num_hidden_layers
        self.keys: list[Tensor] = [graph.tensor(shape, name=f"{name}.{i}.key") for i in range(n)]
        self.values: list[Tensor] = [graph.tensor(shape, name=f"{name}.{i}.value") for i in range(n)]
        self.new_keys: list[Tensor] = []
        self.new_values: list[Tensor] = []
        self._row_shape = (batch, config.kv_heads, config.head_size)
        self._length = 0
        self.reset()

    @property
    def past(self) -> Expr:
        """The symbolic past length (the dim ``past_dim``)."""
        return self.keys[0]._view.shape[0]

    @property
    def length(self) -> int:
        """How many positions the cache holds."""
        return self._length

    def reset(self) -> None:
        """Empty the cache: every input gets zero-size data and past = 0."""
        empty = np.zeros((0,) + self._row_shape, dtype=np.float32)
        self._length = 0
        for t in self.keys + self.values:
            t.set(empty)  # binds past = 0

    def step_rows(self) -> int:
        """How many rows the last ``execute()`` appended (the ``seq`` of the
        step, from the graph's bound dims)."""
        if not self.new_keys:
            raise RuntimeError("[KVCache] after_step before the model was built with this cache "
                               "(call model(ids, cache) while building the graph)")
        rows = self.new_keys[0]._view.shape[0]
        try:
            return int(rows.eval(self.graph.dims))
        except Exception as e:  # an unbound dim
            raise RuntimeError(f"[KVCache] cannot tell how many rows the step appended ({rows}): {e}") from None

    def after_step(self, seq_len: int | None = None) -> None:
        """Advance ``past`` by the rows the step just executed appended to
        every layer (``seq_len``, if given, must be that number). Call it
        once after each ``execute()``, after reading the results and before
        setting the next ids."""
        n = self.step_rows()
        if seq_len is not None and seq_len != n:
            raise ValueError(f"[KVCache] after_step({seq_len}): the step produced rows of shape "
                             f"{(n,) + self._row_shape}, expected {(seq_len,) + self._row_shape}")
        self._length += n
        self.graph.set_dim(self.past_dim, self._length)

    def truncate(self, length: int) -> None:
        """Keep the first ``length`` positions (0 <= length <= ``length``
        now): a prompt that shares only a prefix with what the cache holds
        runs after that prefix. In place (no copy) while the graph alone
        holds the cache's buffers."""
        if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= self._length:
            raise ValueError(f"[KVCache] truncate({length!r}): the cache holds {self._length} positions")
        if length == self._length:
            return
        row = int(np.prod(self._row_shape))
        for t in self.keys + self.values:
            self.graph._core.truncate_input(t._handle, length * row)
        self._length = length
        self.graph.set_dim(self.past_dim, length)

    def numpy(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """The cached (keys, values) of ``layer``, each (past, batch, n_kv_heads, head_dim)."""
        return self.keys[layer].numpy(), self.values[layer].numpy()

    # ---- used by the model's forward -----------------------------------------------
    def _check(self, config: LlamaConfig, graph: Graph, batch: Dim) -> None:
        if graph is not self.graph:
            raise ValueError("[KVCache] the cache belongs to a different graph than the ids")
        if (config.num_hidden_layers, config.kv_heads, config.head_size) != (
            self.config.num_hidden_layers, self.config.kv_heads, self.config.head_size
        ):
            raise ValueError("[KVCache] the cache was made for a model of another shape")
        if not (isinstance(batch, int) and batch == self.batch):
            raise ValueError(f"[KVCache] the cache has batch {self.batch}, the ids batch {batch}")
        if self.new_keys:
            raise ValueError("[KVCache] this cache already serves a forward in this graph "
                             "(one cache per forward: make another KVCache)")

    def _record(self, new_keys: list[Tensor], new_values: list[Tensor]) -> None:
        # No copies: with batch 1 the (seq, 1, heads, dim) rows are their
        # node's own data in order, and Graph.append takes them as they are.
        self.new_keys = [k.retrieve() for k in new_keys]
        self.new_values = [v.retrieve() for v in new_values]
        for target, rows in zip(self.keys + self.values, self.new_keys + self.new_values):
            self.graph.append(target, rows)
