"""``quantize_``: a model's ``Linear`` weights (and ``Embedding`` tables) in a compact storage format."""

from __future__ import annotations

from typing import Callable

from luminal.nn.linear import Linear
from luminal.nn.module import Module
from luminal.nn.parameter import QuantizedParameter
from luminal.nn.sparse import Embedding


def quantize_(module: Module, fmt: str = "q8_0",
              filter: Callable[[str, Module], bool] | None = None,
              embeddings: str | None = None) -> list[str]:
    """Store the weight of every ``nn.Linear`` in ``module`` as ``fmt`` (in
    place, like torchao's ``quantize_``): GGML blocks ("q8_0", "q4_0",
    k-quants "q2_k" .. "q6_k") or packed halves ("f16_packed", "bf16_packed"); see
    ``luminal.quant``. Weights already in a GGML format stay as they are;
    packed halves (an F16/BF16 checkpoint's exact values) are converted.
    Biases stay float32, and so do layers whose
    ``in_features`` is not a whole number of ``fmt`` blocks (32 values, 256
    for the k-quants) or that ``filter(name, module)`` rejects.
    ``embeddings``: the format for every ``nn.Embedding`` table too (None:
    left as they are), under the same rules; a ``Generator`` then
    dequantizes only its tokens' rows, and a model with tied embeddings
    runs its output product on the stored table (llama.cpp keeps that
    matrix at 6 bits or more: "q6_k", "q8_0"). Quantize
    before building a graph with the model (or a ``Generator``): graphs
    already built keep the float weights. Returns the names of the layers
    quantized.

    >>> model = LlamaForCausalLM.from_pretrained("models/Llama-3.2-1B")   # float32, tied embeddings
    >>> done = nn.quantize_(model, "q4_k", embeddings="q6_k")
    >>> gen = Generator(model, tok)                     # int8 decode products, 4.5 bits a weight
    """
    from luminal import quant

    for f in (fmt, embeddings):
        if f is not None and f not in quant.QUANTIZED:
            raise ValueError(f"[quantize_] unknown format {f!r}: expected one of {', '.join(quant.QUANTIZED)}")
    done = []
    for name, m in module.named_modules():
        if isinstance(m, Linear):
            to, width = fmt, m.in_features
        elif isinstance(m, Embedding) and embeddings is not None:
            to, width = embeddings, m.embedding_dim
        else:
            continue
        if isinstance(m.weight, QuantizedParameter) and (m.weight.format == to or
                                                         m.weight.format not in quant.HALF_PACKED):
            continue
        if width % quant.BLOCK_VALUES[to] or (filter is not None and not filter(name, m)):
            continue
        m.weight = QuantizedParameter.from_float(m.weight.data, to)
        done.append(name)
    return done
