"""``quantize_``: a model's ``Linear`` weights in a compact storage format."""

from __future__ import annotations

from typing import Callable

from luminal.nn.linear import Linear
from luminal.nn.module import Module
from luminal.nn.parameter import QuantizedParameter


def quantize_(module: Module, fmt: str = "q8_0",
              filter: Callable[[str, Linear], bool] | None = None) -> list[str]:
    """Store the weight of every ``nn.Linear`` in ``module`` as ``fmt`` (in
    place, like torchao's ``quantize_``): GGML blocks ("q8_0", "q4_0",
    k-quants "q2_k" .. "q6_k") or packed halves ("f16_packed", "bf16_packed"); see
    ``luminal.quant``. Weights already in a GGML format stay as they are;
    packed halves (an F16/BF16 checkpoint's exact values) are converted.
    Biases stay float32, and so do layers whose
    ``in_features`` is not a whole number of ``fmt`` blocks (32 values, 256
    for the k-quants) or that ``filter(name, linear)`` rejects. Quantize
    before building a graph with the model (or a ``Generator``): graphs
    already built keep the float weights. Returns the names of the layers
    quantized.

    >>> model = LlamaForCausalLM.from_pretrained("models/Llama-3.2-1B")   # float32
    >>> done = nn.quantize_(model, "q4_k", filter=lambda name, m: name != "lm_head")
    >>> gen = Generator(model, tok)                     # int8 decode products, 4.5 bits a weight
    """
    from luminal import quant

    if fmt not in quant.QUANTIZED:
        raise ValueError(f"[quantize_] unknown format {fmt!r}: expected one of {', '.join(quant.QUANTIZED)}")
    done = []
    for name, m in module.named_modules():
        if not isinstance(m, Linear):
            continue
        if isinstance(m.weight, QuantizedParameter) and (m.weight.format == fmt or
                                                         m.weight.format not in quant.HALF_PACKED):
            continue
        if m.in_features % quant.BLOCK_VALUES[fmt] or (filter is not None and not filter(name, m)):
            continue
        m.weight = QuantizedParameter.from_float(m.weight.data, fmt)
        done.append(name)
    return done
