"""Ready-made models built from ``luminal.nn`` with Hugging Face parameter
names, so transformers checkpoints load with ``load_state_dict``.

>>> from luminal.models import LlamaConfig, LlamaForCausalLM, KVCache
>>> cfg = LlamaConfig.from_hf("path/to/model")         # "llama" or "mistral"
>>> model = LlamaForCausalLM(cfg).eval()
"""

from luminal.models.config import SUPPORTED_MODEL_TYPES, SUPPORTED_ROPE_TYPES, LlamaConfig
from luminal.models.llama import (
    KVCache,
    LlamaAttention,
    LlamaDecoderLayer,
    LlamaForCausalLM,
    LlamaMLP,
    LlamaModel,
    LlamaRotaryEmbedding,
    MistralForCausalLM,
    rope_inv_freq,
)

__all__ = [
    "KVCache",
    "LlamaAttention",
    "LlamaConfig",
    "LlamaDecoderLayer",
    "LlamaForCausalLM",
    "LlamaMLP",
    "LlamaModel",
    "LlamaRotaryEmbedding",
    "MistralForCausalLM",
    "SUPPORTED_MODEL_TYPES",
    "SUPPORTED_ROPE_TYPES",
    "rope_inv_freq",
]
