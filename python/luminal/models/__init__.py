"""Ready-made models built from ``luminal.nn`` with Hugging Face parameter
names, so transformers checkpoints load with ``load_state_dict``, plus
checkpoint loading (Hugging Face safetensors, GGUF), tokenizers and text
generation.

>>> from luminal.models import LlamaForCausalLM, Tokenizer, generate
>>> model = LlamaForCausalLM.from_pretrained("path/to/model")   # HF dir or .gguf
>>> tok = Tokenizer.from_pretrained("path/to/model")
>>> for piece in generate(model, tok, "Hello", max_tokens=20):
...     print(piece, end="")

>>> from luminal.models import LlamaConfig, LlamaForCausalLM, KVCache
>>> cfg = LlamaConfig.from_hf("path/to/model")         # "llama" or "mistral"
>>> model = LlamaForCausalLM(cfg).eval()
"""

from luminal.models.chat import Chat
from luminal.models.config import SUPPORTED_MODEL_TYPES, SUPPORTED_ROPE_TYPES, LlamaConfig
from luminal.models.generate import GenerationStats, GenerationStream, Generator, Sampler, generate
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
from luminal.models.loading import load_config, load_model, resolve_model_path
from luminal.models.tokenizer import StreamDecoder, Tokenizer

__all__ = [
    "Chat",
    "GenerationStats",
    "GenerationStream",
    "Generator",
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
    "Sampler",
    "StreamDecoder",
    "Tokenizer",
    "generate",
    "load_config",
    "load_model",
    "resolve_model_path",
    "rope_inv_freq",
]
