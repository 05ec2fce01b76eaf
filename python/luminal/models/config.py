"""``LlamaConfig``: the hyper-parameters of a Llama or Mistral model, read from a
Hugging Face ``config.json`` (old and new RoPE layouts) or given directly.

>>> from luminal.models import LlamaConfig
>>> cfg = LlamaConfig.from_hf("path/to/Llama-3.2-1B")       # a dir or its config.json
>>> cfg = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64,
...                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
>>> cfg.head_size, cfg.kv_heads
(8, 2)
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from luminal.io.errors import CheckpointError, short_repr

__all__ = ["LlamaConfig", "SUPPORTED_MODEL_TYPES", "SUPPORTED_ROPE_TYPES"]

SUPPORTED_MODEL_TYPES = ("llama", "mistral")
"""``model_type`` values ``LlamaConfig.from_hf`` accepts."""

SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")
"""RoPE scaling types (``rope_scaling["rope_type"]``); "default" means no scaling."""

_REQUIRED = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")

_ROPE_KEYS = {
    "linear": ("factor",),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
}

ConfigSource = Union[Mapping[str, Any], str, "os.PathLike[str]"]


@dataclass
class LlamaConfig:
    """Hyper-parameters of a Llama / Mistral decoder, with Hugging Face's names.

    ``num_key_value_heads`` (None: as many as query heads) and ``head_dim``
    (None: ``hidden_size // num_attention_heads``) are filled in on creation;
    ``kv_heads`` and ``head_size`` give them as ints. ``rope_scaling`` is None
    or a dict with ``"rope_type"`` "linear" (``factor``) or "llama3"
    (``factor``, ``low_freq_factor``, ``high_freq_factor``,
    ``original_max_position_embeddings``); an old-style ``"type"`` key is
    accepted. ``sliding_window`` (Mistral) limits how far back a token
    attends: query ``i`` sees keys ``j`` with ``i - sliding_window < j <= i``.

    >>> cfg = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64,
    ...                   num_hidden_layers=2, num_attention_heads=4)
    """

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int | None = None
    head_dim: int | None = None
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = False
    sliding_window: int | None = None
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    model_type: str = "llama"
    hidden_act: str = "silu"
    attention_bias: bool = False
    mlp_bias: bool = False
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """Keys of the source config that have no field here (kept, unused)."""

    def __post_init__(self) -> None:
        for name in _REQUIRED + ("max_position_embeddings",):
            _check_size(name, getattr(self, name))
        if self.model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"[LlamaConfig] model_type {self.model_type!r} is not supported "
                f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)})"
            )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"[LlamaConfig] hidden_size ({self.hidden_size}) is not a multiple of "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        for name in ("num_key_value_heads", "head_dim"):
            _check_size(name, getattr(self, name))
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"[LlamaConfig] num_attention_heads ({self.num_attention_heads}) is not a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.head_dim % 2:
            raise ValueError(f"[LlamaConfig] head_dim must be even for rotary embeddings, got {self.head_dim}")
        self.rms_norm_eps = _real("rms_norm_eps", self.rms_norm_eps, positive=False)
        self.rope_theta = _real("rope_theta", self.rope_theta)
        if self.sliding_window is not None:
            _check_size("sliding_window", self.sliding_window, "None or a positive int")
        for name in ("bos_token_id", "eos_token_id"):
            v = getattr(self, name)
            ids = v if isinstance(v, list) else [v]
            if v is not None and not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
                raise ValueError(f"[LlamaConfig] {name} must be None, a token id or a list of them, got {v!r}")
        if self.hidden_act != "silu":
            raise ValueError(f"[LlamaConfig] hidden_act {self.hidden_act!r} is not supported (only 'silu')")
        self.rope_scaling = _normalize_rope_scaling(self.rope_scaling, self.max_position_embeddings)

    # ---- derived ---------------------------------------------------------------
    @property
    def kv_heads(self) -> int:
        """``num_key_value_heads`` as an int."""
        assert self.num_key_value_heads is not None
        return self.num_key_value_heads

    @property
    def head_size(self) -> int:
        """``head_dim`` as an int."""
        assert self.head_dim is not None
        return self.head_dim

    @property
    def rope_type(self) -> str:
        """"default", "linear" or "llama3"."""
        return "default" if self.rope_scaling is None else str(self.rope_scaling["rope_type"])

    # ---- Hugging Face ----------------------------------------------------------
    @classmethod
    def from_hf(cls, source: ConfigSource | Any) -> LlamaConfig:
        """A config from a Hugging Face ``config.json``: a dict, a path to the
        file or to the model directory holding it, or a ``transformers``
        config object (anything with ``to_dict()``). Accepts ``model_type``
        "llama" and "mistral", RoPE given as ``rope_theta``/``rope_scaling``
        (config files) or ``rope_parameters`` (transformers >= 5).

        >>> LlamaConfig.from_hf("models/Mistral-7B-v0.1").sliding_window
        4096
        """
        d = _read_source(source)
        try:
            return cls._from_dict(d)
        except CheckpointError:
            raise
        except ValueError as e:  # name the file the bad value came from
            path = _source_path(source)
            if path is None:
                raise
            raise CheckpointError(path, str(e)) from None

    @classmethod
    def _from_dict(cls, d: dict[str, Any]) -> LlamaConfig:
        model_type = d.get("model_type")
        if model_type is None:
            raise ValueError("[LlamaConfig.from_hf] the config has no 'model_type' key "
                             f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)})")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"[LlamaConfig.from_hf] model_type {model_type!r} is not supported "
                f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)})"
            )
        missing = [k for k in _REQUIRED if d.get(k) is None]
        if missing:
            raise ValueError(f"[LlamaConfig.from_hf] the {model_type} config is missing required key(s): "
                             + ", ".join(missing))
        theta, scaling = _hf_rope(d)
        mistral = model_type == "mistral"
        kwargs: dict[str, Any] = {k: d[k] for k in _REQUIRED}
        kwargs.update(
            num_key_value_heads=d.get("num_key_value_heads"),
            head_dim=d.get("head_dim"),
            rms_norm_eps=d.get("rms_norm_eps", 1e-6),
            rope_theta=theta,
            rope_scaling=scaling,
            max_position_embeddings=d.get("max_position_embeddings", 131072 if mistral else 2048),
            tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
            # transformers' MistralConfig defaults the window to 4096; Llama has none.
            sliding_window=d.get("sliding_window", 4096) if mistral else None,
            bos_token_id=d.get("bos_token_id", 1),
            eos_token_id=d.get("eos_token_id", 2),
            model_type=model_type,
            hidden_act=d.get("hidden_act", "silu"),
            attention_bias=False if mistral else bool(d.get("attention_bias", False)),
            mlp_bias=False if mistral else bool(d.get("mlp_bias", False)),
        )
        known = set(kwargs) | {"rope_parameters"}
        kwargs["extra"] = {k: v for k, v in d.items() if k not in known}
        return cls(**kwargs)


def _source_path(source: Any) -> str | None:
    """The config.json a path source names, or None for a dict or object."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = os.fspath(source)
    return os.path.join(path, "config.json") if os.path.isdir(path) else path


def _read_source(source: Any) -> dict[str, Any]:
    if isinstance(source, Mapping):
        return dict(source)
    if hasattr(source, "to_dict") and callable(source.to_dict):
        return dict(source.to_dict())
    path = _source_path(source)
    if path is not None:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"[LlamaConfig.from_hf] no config file at {path!r}")
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (ValueError, RecursionError) as e:  # bad JSON or UTF-8, absurd nesting or digits
            raise CheckpointError(path, f"not a readable JSON config ({type(e).__name__}: {str(e)[:200]})") from None
        if not isinstance(data, dict):
            raise CheckpointError(path, f"holds a JSON {type(data).__name__}, not an object")
        return data
    raise TypeError(
        f"[LlamaConfig.from_hf] expected a dict, a path or a transformers config, got {type(source).__name__}"
    )


def _hf_rope(d: Mapping[str, Any]) -> tuple[Any, Any]:
    """(rope_theta, rope_scaling) from either the config-file layout
    (``rope_theta`` + ``rope_scaling``) or transformers 5's ``rope_parameters``."""
    theta = d.get("rope_theta")
    params = d.get("rope_parameters")
    scaling = d.get("rope_scaling")
    if isinstance(params, Mapping) and params:
        if "rope_type" not in params and "type" not in params and all(isinstance(v, Mapping) for v in params.values()):
            raise ValueError("[LlamaConfig.from_hf] per-layer-type rope_parameters are not supported")
        if params.get("rope_theta") is not None:
            theta = params["rope_theta"]
        if scaling is None:
            scaling = {k: v for k, v in params.items() if k != "rope_theta"}
    if theta is None:
        theta = 10000.0
    return theta, dict(scaling) if isinstance(scaling, Mapping) else scaling


def _normalize_rope_scaling(scaling: Any, max_position_embeddings: int) -> dict[str, Any] | None:
    """None for no scaling, else a dict with "rope_type" and its parameters checked."""
    if scaling is None:
        return None
    if not isinstance(scaling, Mapping):
        raise ValueError(f"[LlamaConfig] rope_scaling must be a dict or None, got {type(scaling).__name__}")
    s = dict(scaling)
    kind = s.get("rope_type", s.get("type", "default"))
    s.pop("type", None)
    if not isinstance(kind, str):
        raise ValueError(f"[LlamaConfig] rope_scaling's rope_type must be a string, got {kind!r}")
    if kind == "default":
        return None
    if kind not in _ROPE_KEYS:
        raise ValueError(
            f"[LlamaConfig] rope scaling type {kind!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_ROPE_TYPES)})"
        )
    s["rope_type"] = kind
    if kind == "llama3":
        s.setdefault("original_max_position_embeddings", max_position_embeddings)
    missing = [k for k in _ROPE_KEYS[kind] if s.get(k) is None]
    if missing:
        raise ValueError(f"[LlamaConfig] {kind!r} rope_scaling is missing key(s): {', '.join(missing)}")
    for key in _ROPE_KEYS[kind]:
        if key == "original_max_position_embeddings":
            _check_size(f"rope_scaling's {key}", s[key])
        else:
            s[key] = _real(f"rope_scaling's {key}", s[key])
    if kind == "llama3" and s["high_freq_factor"] == s["low_freq_factor"]:
        raise ValueError("[LlamaConfig] llama3 rope_scaling needs high_freq_factor != low_freq_factor")
    return s


_MAX_SIZE = 2**31 - 1
"""The largest size (dims, layer and head counts, lengths) a config may give:
the biggest released models stay far below it, and past it a lying config
would only make the first allocation fail, or never finish."""


def _check_size(name: str, v: Any, what: str = "a positive int") -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= _MAX_SIZE:
        raise ValueError(f"[LlamaConfig] {name} must be {what} (at most {_MAX_SIZE}), got {short_repr(v)}")


def _real(name: str, v: Any, *, positive: bool = True) -> float:
    """``v`` as a finite float, > 0 (``positive``) or >= 0; else ValueError."""
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    try:
        x = float(v) if ok else math.nan
    except OverflowError:  # an int with hundreds of digits
        x = math.inf
    if not (math.isfinite(x) and (x > 0 if positive else x >= 0)):
        what = "a positive finite number" if positive else "a finite number >= 0"
        raise ValueError(f"[LlamaConfig] {name} must be {what}, got {short_repr(v)}")
    return x
