"""Loading Llama / Mistral checkpoints: Hugging Face directories (``config.json``
plus ``model.safetensors`` or a sharded index) and GGUF files (llama.cpp).

>>> from luminal.models.loading import load_model
>>> model = load_model("models/Mistral-7B-Instruct-v0.3")           # HF directory
>>> model = load_model("models/Mistral-7B-Instruct-v0.3-Q8_0.gguf")  # GGUF file
>>> # the same as LlamaForCausalLM.from_pretrained(path)

Weights become float32 (F16 / BF16 are widened exactly; GGUF quantized
tensors are dequantized), unless ``quantized=True`` keeps the projection
matrices and the embedding table as stored (Q8_0, Q4_0, the k-quants Q2_K..Q6_K, IQ4_XS, F16, BF16; Q5_0 and
IQ4_NL as Q8_0 blocks of the same values) for the compact-weight
kernels.
The model is built
with ``init=False`` (no random initialisation) and each parameter is filled
straight from the checkpoint; float32 tensors stay zero-copy views of the
memory-mapped file, so replace a checkpoint atomically rather than rewriting
it in place while a model loaded from it is alive. Checkpoints over
``PROGRESS_MIN_BYTES`` show a tqdm progress bar when tqdm is installed.

Every tensor name and shape is checked before any data is read: a missing,
unexpected or mis-shaped tensor raises ``StateDictError`` naming each one
(GGUF names with the Hugging Face name they map to); an unreadable file
raises ``CheckpointError``.

GGUF: the metadata of architecture ``llama`` (``llama.context_length``,
``llama.embedding_length``, ``llama.block_count``,
``llama.feed_forward_length``, ``llama.attention.head_count(_kv)``,
``llama.rope.freq_base``, ``llama.attention.layer_norm_rms_epsilon``, the
vocabulary size from ``tokenizer.ggml.tokens``) becomes a ``LlamaConfig``
(``config_from_gguf``); llama.cpp's tensor names map to transformers' names
(``GGUF_TENSOR_NAMES``); the rows of ``attn_q`` / ``attn_k``, which llama.cpp's
converter reorders for its rotary layout, are put back in Hugging Face's
order (``unpermute_qk``), so logits match transformers. A ``rope_freqs``
tensor (Llama 3.1-style rope scaling) divides the rotary frequencies.
GGUF has no sliding-window key: Mistral GGUFs load without a window.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import re
import sys
from collections.abc import Iterator
from typing import Any, Callable, Iterable, Mapping, Union

import numpy as np

from luminal.io.errors import CheckpointError, short_repr
from luminal.io.gguf import GGUFFile, to_q8_0
from luminal.io.safetensors import Checkpoint, open_checkpoint
from luminal.models.config import LlamaConfig
from luminal.models.llama import LlamaForCausalLM, rope_inv_freq
from luminal.nn.module import StateDictError
from luminal.nn.parameter import Parameter, QuantizedParameter

__all__ = [
    "HF_DOWNLOAD_PATTERNS",
    "GGUF_TENSOR_NAMES",
    "PROGRESS_MIN_BYTES",
    "config_from_gguf",
    "gguf_to_hf_name",
    "hf_to_gguf_name",
    "load_config",
    "load_model",
    "load_weights",
    "permute_qk",
    "resolve_model_path",
    "unpermute_qk",
]

PathLike = Union[str, "os.PathLike[str]"]

PROGRESS_MIN_BYTES = 100 * 1024 * 1024
"""Checkpoints larger than this show a progress bar (when tqdm is installed)."""

SUPPORTED_DTYPES = ("f32",)

GGUF_LOADABLE_TYPES = ("F32", "F16", "BF16", "F64", "Q8_0", "Q4_0", "Q5_0", "IQ4_NL", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                       "Q6_K", "IQ4_XS")
"""GGUF tensor types ``load_model`` reads (dequantized to float32 unless
``quantized=True`` keeps them, see ``_GGUF_KEPT``)."""
_GGUF_KEPT = {"Q8_0": "q8_0", "Q4_0": "q4_0", "Q2_K": "q2_k", "Q3_K": "q3_k", "Q4_K": "q4_k", "Q5_K": "q5_k",
              "Q6_K": "q6_k", "IQ4_XS": "iq4_xs", "F16": "f16_packed", "BF16": "bf16_packed",
              "Q5_0": "q8_0", "IQ4_NL": "q8_0"}
"""GGUF types ``quantized=True`` keeps as stored, and their graph dtypes;
Q5_0 and IQ4_NL blocks become Q8_0 blocks of the same values
(``gguf.to_q8_0``: 34 bytes a block instead of 22 / 18)."""
_SAFETENSORS_PACKED = {"F16": "f16_packed", "BF16": "bf16_packed"}

GGUF_TENSOR_NAMES: dict[str, str] = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
"""llama.cpp tensor base names -> transformers module names. Block tensors
are ``blk.{i}.{base}.{weight|bias}`` -> ``model.layers.{i}.{module}.{...}``."""

_HF_TO_GGUF = {v: k for k, v in GGUF_TENSOR_NAMES.items()}
_BLOCK = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")
_HF_BLOCK = re.compile(r"^model\.layers\.(\d+)\.(.+)\.(weight|bias)$")
_GGUF_ARCHITECTURES = ("llama",)


# ---------------------------------------------------------------- public API


def load_model(
    path: PathLike,
    dtype: str = "f32",
    *,
    progress: bool | None = None,
    config: LlamaConfig | None = None,
    quantized: bool = False,
) -> LlamaForCausalLM:
    """A ``LlamaForCausalLM`` (eval mode) with the weights of ``path``: a
    Hugging Face model directory (``config.json`` + safetensors, single or
    sharded), a ``.safetensors`` file or index ``.json`` next to a
    ``config.json``, a GGUF file, or the id of a model in the local Hugging
    Face cache (``resolve_model_path``). ``dtype`` is the compute dtype (only
    "f32" for now). ``progress``: None shows a tqdm bar for checkpoints over
    ``PROGRESS_MIN_BYTES`` (if tqdm is installed), True/False force it on
    or off. ``config`` overrides the one read from the checkpoint.
    ``quantized=True`` keeps the projection matrices, the embedding table
    (a tied model's ``lm_head``) and an untied ``lm_head`` in their stored format when it is Q8_0, Q4_0, a k-quant (Q2_K..Q6_K), IQ4_XS, F16
    or BF16 (Q5_0 and IQ4_NL: as Q8_0 blocks of the same values)
    (``nn.QuantizedParameter``): never widened in memory, so a 7B model
    takes ~4.0 GB as Q4_K_M, ~4.7 GB as Q5_K_M, ~7.6 GB as Q8_0 and ~14.2 GB as F16/BF16 instead
    of 29 GB as f32 (Q4_0: ~7.6 GB on AVX2 CPUs, whose decode products run on
    a second, repacked copy, unless ``LUMINAL_REPACK=0``). Decode steps run GGML-block products in int8 like
    llama.cpp's (activations quantized too: per 32 values for Q8_0/Q4_0, per
    256 for the k-quants, whose prompts run in int8 too); Q8_0/Q4_0 prompts of
    16+ tokens, and every F16/BF16 product, widen the weights exactly and
    compute in float32, so F16/BF16 results match the f32-loaded model's to
    rounding. On CPUs with AMX or AVX512-BF16, Q8_0/Q4_0/k-quant prompts of
    16+ tokens (Q8_0's from 4-8) run on bf16 tiles instead
    (``LUMINAL_AMX=0``: as above); with AVX512-VNNI and no AMX, prompts of
    4+ (Q8_0), 8+ (Q4_0) and 12+ tokens (k-quants) run an int8 GEMM on
    activations quantized per 32 values. Other tensors load
    as f32.

    >>> model = load_model("models/Llama-3.2-1B")
    >>> model.config.num_hidden_layers
    16
    """
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"[load_model] dtype {dtype!r} is not supported yet (supported: "
                         f"{', '.join(SUPPORTED_DTYPES)}; checkpoints in f16/bf16/quantized "
                         "formats are converted to f32)")
    p = resolve_model_path(os.fspath(path))
    if _is_gguf(p):
        with GGUFFile(p) as f:
            cfg = config or config_from_gguf(f)
            shapes = {gguf_to_hf_name(n) or n: f.tensor_info(n).shape for n in f.tensor_names()}
            _check_config_fits(cfg, shapes, f.path)
            model = LlamaForCausalLM(cfg, init=False).eval()
            _load_gguf_weights(model, f, progress, quantized=quantized)
        return model
    cfg = config or LlamaConfig.from_hf(_config_dir(p))
    with open_checkpoint(p) as ckpt:
        _check_config_fits(cfg, {n: ckpt.shape(n) for n in ckpt.keys()}, os.fspath(ckpt.path))
        model = LlamaForCausalLM(cfg, init=False).eval()
        _load_checkpoint(model, ckpt, progress, os.fspath(ckpt.path), quantized=quantized)
    return model


def load_config(path: PathLike) -> LlamaConfig:
    """The ``LlamaConfig`` of a Hugging Face directory / config file or a GGUF file."""
    p = os.fspath(path)
    if _is_gguf(p):
        with GGUFFile(p) as f:
            return config_from_gguf(f)
    return LlamaConfig.from_hf(_config_dir(p))


def load_weights(model: LlamaForCausalLM, path: PathLike, *, progress: bool | None = None) -> None:
    """Fill an existing model with the weights of a safetensors checkpoint
    (file, index or directory) or a GGUF file, checking every name and shape
    first (``StateDictError``). Parameters already bound to graphs are re-set."""
    p = os.fspath(path)
    if _is_gguf(p):
        with GGUFFile(p) as f:
            _load_gguf_weights(model, f, progress)
        return
    with open_checkpoint(p) as ckpt:
        _load_checkpoint(model, ckpt, progress, os.fspath(ckpt.path))


# What a download fetches of a Hugging Face repo: the config, the HF-format
# safetensors (shards and their index) and the tokenizer; not Mistral's
# consolidated.safetensors (the same weights again) nor .bin/.pth copies.
# examples/mistral/setup.sh fetches the same.
HF_DOWNLOAD_PATTERNS = ("config.json", "generation_config.json", "model*.safetensors",
                        "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
                        "special_tokens_map.json")


def resolve_model_path(name: str, *, cache_dir: PathLike | None = None, download: bool = False) -> str:
    """``name`` itself if it is a local file or directory; else a Hugging Face
    model id (``org/name``, or ``org/name/FILE.gguf`` for one GGUF file of a
    repo) looked up in the local Hugging Face cache (``cache_dir``, default
    the usual one) through ``huggingface_hub``. With ``download=True`` what
    the cache lacks is fetched (``HF_DOWNLOAD_PATTERNS`` of a repo, with
    huggingface_hub's progress bars; a gated model needs its terms accepted
    on huggingface.co and ``hf auth login``); without, nothing is. Raises
    ``FileNotFoundError`` (``PermissionError`` for a gated or private repo)
    saying what to do.

    >>> resolve_model_path("mistralai/Mistral-7B-Instruct-v0.3", download=True)
    '/home/me/.cache/huggingface/hub/models--mistralai--Mistral-7B-Instruct-v0.3/snapshots/e0bc86c...'
    >>> resolve_model_path("bartowski/Mistral-7B-Instruct-v0.3-GGUF/Mistral-7B-Instruct-v0.3-Q8_0.gguf")
    """
    if os.path.exists(name):
        return name
    m = re.fullmatch(r"([\w.\-]+/[\w.\-]+)(?:/([\w.\-/]+\.gguf))?", name)
    if not m:
        raise FileNotFoundError(f"no such file or directory: {name!r}, and it is not a Hugging Face id "
                                "(org/name, or org/name/FILE.gguf)")
    repo, gguf_file = m.group(1), m.group(2)
    hint = ("pass download=True (examples/mistral/main.py: --download), download it first (see "
            f"examples/mistral/setup.sh: `hf download {repo}`), or pass a local directory or GGUF file")
    try:
        import huggingface_hub
        from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, LocalEntryNotFoundError,
                                            RepositoryNotFoundError)
    except ImportError:
        raise FileNotFoundError(f"{name!r} is not a local path and huggingface_hub is not installed "
                                f"to find it in the Hugging Face cache: {hint}") from None
    cache = None if cache_dir is None else os.fspath(cache_dir)

    def fetch(local_only: bool) -> str:
        if gguf_file:
            return str(huggingface_hub.hf_hub_download(repo, gguf_file, cache_dir=cache,
                                                       local_files_only=local_only))
        return str(huggingface_hub.snapshot_download(
            repo, cache_dir=cache, local_files_only=local_only,
            allow_patterns=None if local_only else list(HF_DOWNLOAD_PATTERNS)))

    try:
        path = fetch(True)
    except Exception as e:
        if not download:
            raise FileNotFoundError(f"{name!r} is neither a local path nor in the local Hugging Face "
                                    f"cache ({type(e).__name__}): {hint}") from None
        print(f"[download] {name} from the Hugging Face Hub", file=sys.stderr)
        try:
            path = fetch(False)
        except GatedRepoError:
            raise PermissionError(f"{repo} is gated: accept its terms on https://huggingface.co/{repo} "
                                  "and log in (`hf auth login`)") from None
        except RepositoryNotFoundError:
            raise PermissionError(f"no Hugging Face repo {repo!r} you can read (a private one needs "
                                  "`hf auth login`)") from None
        except LocalEntryNotFoundError as e:  # an EntryNotFoundError too: offline, or no connection
            raise FileNotFoundError(f"downloading {name} failed: the Hub is out of reach ({e})") from None
        except EntryNotFoundError:
            raise FileNotFoundError(f"{repo} has no file {gguf_file!r}") from None
        except Exception as e:  # offline, network, disk
            raise FileNotFoundError(f"downloading {name} failed ({type(e).__name__}: {e})") from None
    if not gguf_file and not os.path.exists(os.path.join(path, "config.json")):
        raise FileNotFoundError(f"{repo} (at {path}) has no config.json: not a checkpoint in Hugging Face's "
                                "format (a GGUF repo? pass org/name/FILE.gguf)")
    return path


# ---------------------------------------------------------------- GGUF names and layout


def gguf_to_hf_name(name: str) -> str | None:
    """The transformers name of a llama.cpp tensor name, or None if unknown.

    >>> gguf_to_hf_name("blk.3.attn_q.weight")
    'model.layers.3.self_attn.q_proj.weight'
    """
    m = _BLOCK.match(name)
    if m:
        module = GGUF_TENSOR_NAMES.get(m.group(2))
        if module is None or module.startswith(("model.", "lm_head")):
            return None
        return f"model.layers.{m.group(1)}.{module}.{m.group(3)}"
    base, dot, kind = name.rpartition(".")
    module = GGUF_TENSOR_NAMES.get(base)
    if not dot or module is None or not module.startswith(("model.", "lm_head")):
        return None
    return f"{module}.{kind}"


def hf_to_gguf_name(name: str) -> str | None:
    """The llama.cpp name of a transformers tensor name, or None if it has none.

    >>> hf_to_gguf_name("model.layers.0.mlp.down_proj.weight")
    'blk.0.ffn_down.weight'
    """
    m = _HF_BLOCK.match(name)
    if m:
        base = _HF_TO_GGUF.get(m.group(2))
        return None if base is None else f"blk.{m.group(1)}.{base}.{m.group(3)}"
    module, dot, kind = name.rpartition(".")
    base = _HF_TO_GGUF.get(module)
    return None if base is None or not dot else f"{base}.{kind}"


def permute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's reordering of q/k projection rows (weights ``(out, in)`` or
    biases ``(out,)``): within each head, the two rotary halves of Hugging
    Face's layout become interleaved pairs. ``unpermute_qk`` inverts it.

    >>> permute_qk(np.arange(8), 1).tolist()
    [0, 4, 1, 5, 2, 6, 3, 7]
    """
    rows = w.shape[0]
    if rows % (2 * n_heads):
        raise ValueError(f"[permute_qk] {rows} rows do not split into {n_heads} heads of pairs")
    half = rows // n_heads // 2
    return w.reshape(n_heads, 2, half, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """The inverse of ``permute_qk``: a GGUF ``attn_q`` / ``attn_k`` tensor in
    Hugging Face's row order (a new contiguous array).

    >>> unpermute_qk(permute_qk(np.arange(8), 1), 1).tolist()
    [0, 1, 2, 3, 4, 5, 6, 7]
    """
    rows = w.shape[0]
    if rows % (2 * n_heads):
        raise ValueError(f"[unpermute_qk] {rows} rows do not split into {n_heads} heads of pairs")
    half = rows // n_heads // 2
    out = w.reshape(n_heads, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    return np.ascontiguousarray(out)


def config_from_gguf(f: GGUFFile) -> LlamaConfig:
    """A ``LlamaConfig`` from a GGUF file's metadata (architecture "llama").

    >>> with GGUFFile("mistral-7b-instruct-v0.3.Q8_0.gguf") as f:
    ...     config_from_gguf(f).num_key_value_heads
    8
    """
    md = f.metadata
    arch = md.get("general.architecture")
    if not isinstance(arch, str) or arch not in _GGUF_ARCHITECTURES:
        raise CheckpointError(f.path, f"general.architecture is {short_repr(arch)}; only "
                              f"{', '.join(repr(a) for a in _GGUF_ARCHITECTURES)} GGUF models "
                              "(Llama, Mistral) are supported")

    def get(key: str, default: Any = None, *, required: bool = False) -> Any:
        full = f"{arch}.{key}"
        if full not in md:
            if required:
                raise CheckpointError(f.path, f"metadata key {full!r} is missing")
            return default
        return md[full]

    def as_int(key: str, value: Any) -> int:
        if isinstance(value, (bool, float, str)) or not isinstance(value, (int, np.integer)):
            raise CheckpointError(f.path, f"metadata {key} is {short_repr(value)}, not an integer")
        return int(value)

    def as_real(key: str, value: Any) -> float:
        if isinstance(value, (bool, str)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise CheckpointError(f.path, f"metadata {key} is {short_repr(value)}, not a number")
        return float(value)

    hidden = as_int(f"{arch}.embedding_length", get("embedding_length", required=True))
    heads = as_int(f"{arch}.attention.head_count", get("attention.head_count", required=True))
    if heads <= 0:
        raise CheckpointError(f.path, f"metadata {arch}.attention.head_count is {heads}, not positive")
    kv_heads = as_int(f"{arch}.attention.head_count_kv", get("attention.head_count_kv", heads))
    layers = as_int(f"{arch}.block_count", get("block_count", required=True))
    ffn = as_int(f"{arch}.feed_forward_length", get("feed_forward_length", required=True))
    head_dim = get("attention.key_length")
    head_dim = hidden // heads if head_dim is None else as_int(f"{arch}.attention.key_length", head_dim)
    rot = get("rope.dimension_count")
    if rot is not None and as_int(f"{arch}.rope.dimension_count", rot) != head_dim:
        raise CheckpointError(f.path, f"{arch}.rope.dimension_count is {rot} but the head size is {head_dim}: "
                              "partial rotary embeddings are not supported")
    tokens = md.get("tokenizer.ggml.tokens")
    if "token_embd.weight" in f:
        vocab = f.tensor_info("token_embd.weight").shape[0]
    elif isinstance(tokens, list):
        vocab = len(tokens)
    else:
        vocab = as_int(f"{arch}.vocab_size", get("vocab_size", required=True))
    scaling: dict[str, Any] | None = None
    kind = get("rope.scaling.type")
    factor = get("rope.scaling.factor")
    if kind is not None and not isinstance(kind, str):
        raise CheckpointError(f.path, f"metadata {arch}.rope.scaling.type is {short_repr(kind)}, not a string")
    if factor is not None:
        factor = as_real(f"{arch}.rope.scaling.factor", factor)
    if kind == "linear" and factor is not None and factor != 1.0:
        scaling = {"rope_type": "linear", "factor": factor}
    elif kind not in (None, "none", "linear"):
        raise CheckpointError(f.path, f"{arch}.rope.scaling.type {kind!r} is not supported")

    def token_id(key: str) -> int | None:
        v = md.get(key)
        return None if v is None else as_int(key, v)

    bos, eos = token_id("tokenizer.ggml.bos_token_id"), token_id("tokenizer.ggml.eos_token_id")
    eps = as_real(f"{arch}.attention.layer_norm_rms_epsilon", get("attention.layer_norm_rms_epsilon", 1e-5))
    theta = as_real(f"{arch}.rope.freq_base", get("rope.freq_base", 10000.0))
    context = as_int(f"{arch}.context_length", get("context_length", 2048))

    try:
        return LlamaConfig(
            vocab_size=int(vocab),
            hidden_size=hidden,
            intermediate_size=ffn,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            head_dim=head_dim,
            rms_norm_eps=eps,
            rope_theta=theta,
            rope_scaling=scaling,
            max_position_embeddings=context,
            tie_word_embeddings="output.weight" not in f,
            sliding_window=None,
            bos_token_id=bos,
            eos_token_id=eos,
            model_type="llama",
            attention_bias="blk.0.attn_q.bias" in f,
            mlp_bias="blk.0.ffn_up.bias" in f,
            extra={"gguf_architecture": arch, "gguf_name": md.get("general.name")},
        )
    except ValueError as e:
        raise CheckpointError(f.path, f"metadata does not describe a valid model: {e}") from None


# ---------------------------------------------------------------- internals


def _is_gguf(path: str) -> bool:
    if os.path.isdir(path):
        return False
    if path.lower().endswith(".gguf"):
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"GGUF"
    except OSError:
        return False


def _config_dir(path: str) -> str:
    """The directory holding config.json for a checkpoint path."""
    d = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if not os.path.isfile(os.path.join(d, "config.json")):
        raise FileNotFoundError(f"[load_model] {path!r}: no config.json in {d!r} (a Hugging Face model "
                                "directory needs config.json next to the safetensors)")
    return d


def _check_config_fits(cfg: LlamaConfig, shapes: Mapping[str, tuple[int, ...]], where: str) -> None:
    """Before the model is built: a config (or GGUF metadata) describing far
    more parameters than the checkpoint holds is a lie about these weights.
    Building from it first would allocate its sizes, or loop over billions of
    layers, before a tensor is read; near misses are left to the load's
    ``StateDictError``, which names every missing and mis-shaped tensor."""
    # Each layer is a module built before any tensor is read: a config of
    # 40,000 tiny layers fits the parameter bound below, but took half a
    # minute to build before failing on every missing name.
    layers = {int(m.group(1)) for name in shapes if (m := _HF_BLOCK.match(name))}
    if cfg.num_hidden_layers > 2 * len(layers) + 8:
        raise CheckpointError(where, f"the config describes {cfg.num_hidden_layers} layers but the checkpoint "
                              f"has tensors for {len(layers)}: a config or metadata that does not belong to "
                              "these weights")
    h, hd, ffn = cfg.hidden_size, cfg.head_size, cfg.intermediate_size
    per_layer = 2 * h * hd * (cfg.num_attention_heads + cfg.kv_heads) + 3 * h * ffn + 2 * h
    described = cfg.num_hidden_layers * per_layer + cfg.vocab_size * h * (1 if cfg.tie_word_embeddings else 2) + h
    held = sum(math.prod(shape) for shape in shapes.values())
    if described > 2 * held + (1 << 20):
        raise CheckpointError(where, f"the config describes {described:,} parameters ({cfg.num_hidden_layers} "
                              f"layers, hidden size {h}) but the checkpoint holds {held:,} values: a config or "
                              "metadata that does not belong to these weights (or packed weights, "
                              "e.g. GPTQ, which luminal does not read)")


def _progress(total: int, enabled: bool | None, desc: str) -> Any:
    """A tqdm bar over ``total`` bytes, or None (disabled, small, or no tqdm)."""
    if enabled is False or (enabled is None and total < PROGRESS_MIN_BYTES):
        return None
    try:
        tqdm: Any = importlib.import_module("tqdm.auto").tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=False)


def _expected(model: LlamaForCausalLM) -> dict[str, Parameter]:
    """The model's persistent state, by transformers name (tied lm_head excluded)."""
    return dict(model._state_items())


def _fill(
    model: LlamaForCausalLM,
    items: Iterable[tuple[str, int, Callable[[], np.ndarray]]],
    total: int,
    progress: bool | None,
    desc: str,
) -> None:
    """Set each named parameter from its loader, with a progress bar by bytes."""
    own = _expected(model)
    bar = _progress(total, progress, desc)
    try:
        for name, nbytes, get in items:
            arr = get()
            if arr.dtype != np.float32 or not arr.flags.c_contiguous:
                arr = np.ascontiguousarray(arr, dtype=np.float32)
            own[name]._replace(arr)
            if bar is not None:
                bar.update(nbytes)
    finally:
        if bar is not None:
            bar.close()


def _keeps_storage(hf: str) -> bool:
    """Whether ``quantized=True`` keeps tensor ``hf`` in its stored format:
    the matrices of matrix products, and the embedding table (a step
    dequantizes only its tokens' rows; a tied model's output product reads
    it as stored, as llama.cpp does)."""
    return hf.endswith("_proj.weight") or hf in ("lm_head.weight", "model.embed_tokens.weight")


def _keep_stored(model: LlamaForCausalLM, hf: str, blocks: np.ndarray, shape: tuple[int, ...], fmt: str) -> None:
    module_name, _, attr = hf.rpartition(".")
    setattr(model.get_submodule(module_name), attr, QuantizedParameter(blocks, shape, fmt))


def _load_checkpoint(model: LlamaForCausalLM, ckpt: Checkpoint, progress: bool | None, where: str,
                     quantized: bool = False) -> None:
    own = _expected(model)
    names = set(ckpt.keys())
    ignored = {"model.rotary_emb.inv_freq"}  # old checkpoints saved the rotary buffer
    if model.config.tie_word_embeddings:
        ignored.add("lm_head.weight")  # the shared tensor, listed twice by transformers
    missing = [k for k in own if k not in names]
    unexpected = [k for k in names if k not in own and k not in ignored and not k.endswith(".rotary_emb.inv_freq")]
    mismatched = []
    for k in names:
        if k in own and tuple(ckpt.shape(k)) != own[k].shape:
            mismatched.append((k, tuple(ckpt.shape(k)), own[k].shape))
    if missing or unexpected or mismatched:
        raise StateDictError(f"{type(model).__name__} from {where}", missing, unexpected, mismatched)
    for k in own:
        code = ckpt.dtype(k)
        if code not in ("F32", "F16", "BF16", "F64"):
            raise CheckpointError(where, f"tensor {k!r} has dtype {code}; weights must be F32, F16, BF16 or F64")

    kept: set[str] = set()
    if quantized:  # F16 / BF16 projection matrices stay 2 bytes a value
        for k in own:
            fmt = _SAFETENSORS_PACKED.get(ckpt.dtype(k))
            if fmt is not None and _keeps_storage(k):
                _keep_stored(model, k, ckpt.raw(k), tuple(ckpt.shape(k)), fmt)
                kept.add(k)

    def items() -> Iterator[tuple[str, int, Callable[[], np.ndarray]]]:
        for k, p in own.items():
            if k in kept:
                continue
            nbytes = p.numel() * {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}[ckpt.dtype(k)]
            yield k, nbytes, functools.partial(ckpt.get, k, dtype=np.float32)

    total = getattr(ckpt, "nbytes", 0) - sum(2 * own[k].numel() for k in kept)
    _fill(model, items(), int(total), progress, f"loading {os.path.basename(where)}")


def _load_gguf_weights(
    model: LlamaForCausalLM, f: GGUFFile, progress: bool | None, quantized: bool = False
) -> None:
    cfg = model.config
    own = _expected(model)
    by_hf: dict[str, str] = {}
    unexpected: list[str] = []
    rope_freqs: str | None = None
    for name in f.tensor_names():
        if name == "rope_freqs.weight":
            rope_freqs = name
            continue
        hf = gguf_to_hf_name(name)
        if hf is None or hf not in own:
            if hf == "lm_head.weight" and cfg.tie_word_embeddings:
                continue
            unexpected.append(name if hf is None else f"{name} ({hf})")
        else:
            by_hf[hf] = name
    missing = [f"{hf_to_gguf_name(k) or k} ({k})" for k in own if k not in by_hf]
    mismatched = []
    for hf, name in by_hf.items():
        shape = f.tensor_info(name).shape
        if shape != own[hf].shape:
            mismatched.append((f"{name} ({hf})", shape, own[hf].shape))
    if missing or unexpected or mismatched:
        raise StateDictError(f"{type(model).__name__} from {f.path}", missing, unexpected, mismatched)
    odd = sorted({f"{f.tensor_info(n).ggml_type}" for n in by_hf.values()
                  if f.tensor_info(n).ggml_type not in GGUF_LOADABLE_TYPES})
    if odd:
        raise CheckpointError(f.path, f"tensor type(s) {', '.join(odd)} cannot be loaded yet (supported: "
                              f"{', '.join(GGUF_LOADABLE_TYPES)})")

    def hf_rows(hf: str, arr: np.ndarray) -> np.ndarray:
        """Rows (values or rows of quantized blocks) in transformers' q/k order."""
        if ".q_proj." in hf:
            return unpermute_qk(arr, cfg.num_attention_heads)
        if ".k_proj." in hf:
            return unpermute_qk(arr, cfg.kv_heads)
        return arr

    def load(hf: str, name: str) -> np.ndarray:
        info = f.tensor_info(name)
        return hf_rows(hf, f.view(name) if info.ggml_type == "F32" else f.dequantize(name))

    kept: set[str] = set()
    if quantized:  # projection matrices stay as stored (GGML blocks, halves)
        for hf, name in by_hf.items():
            info = f.tensor_info(name)
            fmt = _GGUF_KEPT.get(info.ggml_type)
            if fmt is None or not _keeps_storage(hf):
                continue
            raw = f.raw(name)
            if fmt == "q8_0" and info.ggml_type != "Q8_0":
                raw = to_q8_0(info.ggml_type, raw)
            blocks = hf_rows(hf, raw.reshape(info.shape[0], -1))  # a row of blocks per output
            _keep_stored(model, hf, blocks, tuple(info.shape), fmt)
            kept.add(hf)

    def items() -> Iterator[tuple[str, int, Callable[[], np.ndarray]]]:
        for hf, name in by_hf.items():
            if hf not in kept:
                yield hf, f.tensor_info(name).nbytes, functools.partial(load, hf, name)

    total = sum(f.tensor_info(n).nbytes for hf, n in by_hf.items() if hf not in kept)
    _fill(model, items(), total, progress, f"loading {os.path.basename(f.path)}")
    if rope_freqs is not None:
        factors = f.dequantize(rope_freqs).reshape(-1)
        base = rope_inv_freq(cfg)
        if factors.shape != base.shape:
            raise CheckpointError(f.path, f"rope_freqs.weight has shape {factors.shape}, expected {base.shape}")
        if not (np.isfinite(factors).all() and (factors > 0).all()):  # divides the frequencies
            raise CheckpointError(f.path, "rope_freqs.weight holds a factor that is not a positive finite number")
        model.model.rotary_emb.inv_freq.data = (base / factors).astype(np.float32)

