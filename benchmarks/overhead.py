"""Framework overhead: decode time per token of a 32-layer Llama with tiny
dims (hidden 256, FFN 512, 4 heads / 2 KV heads, vocab 1000), where the work
per kernel is small and a framework's fixed costs per op show.

    python benchmarks/overhead.py              # luminal (f32, bf16, Q8_0, Q4_K weights) vs transformers eager
    python benchmarks/overhead.py --tokens 64  # longer generations

The same random weights for every engine; greedy decoding of ``--tokens``
tokens after a 4-token prompt, best of ``--rounds``, each engine in turn.
luminal runs 600 kernels a token; its f32 weights are 76 MB, read once per
token, so at f32 the memory bandwidth sets a floor (printed: the weight bytes
over the bandwidth measured here); the compact formats fit in cache.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as luminal sets it (luminal/_env.py)
os.environ.setdefault("GOMP_SPINCOUNT", "1000")

import numpy as np  # noqa: E402
from llm import measure_bandwidth  # noqa: E402  (benchmarks/llm.py: a luminal streaming-sum probe)

CONFIG = dict(vocab_size=1000, hidden_size=256, intermediate_size=512, num_hidden_layers=32,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
PROMPT = [1, 5, 7, 9]


def weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 weights in transformers' names (norms around 1)."""
    from luminal.models import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(**CONFIG), init=False)
    rng = np.random.default_rng(seed)
    return {k: (rng.standard_normal(p.shape) * (0.05 if p.ndim > 1 else 0.1) + (p.ndim == 1)).astype(np.float32)
            for k, p in model.state_dict(keep_vars=True).items()}


def luminal_ms(sd: dict[str, np.ndarray], fmt: str, tokens: int) -> float:
    import luminal as lm
    from luminal.models import Generator, LlamaConfig, LlamaForCausalLM
    from luminal.models.generate import GenerationStats

    model = LlamaForCausalLM(LlamaConfig(**CONFIG), init=False).eval()
    model.load_state_dict(sd)
    if fmt != "f32":
        for name, p in list(model.named_parameters()):
            if name.endswith("proj.weight") or name == "lm_head.weight":
                module = model.get_submodule(name.rsplit(".", 1)[0])
                setattr(module, "weight", lm.nn.QuantizedParameter.from_float(p.data, fmt))
    gen = Generator(model)
    for _ in gen.generate_ids(PROMPT, max_tokens=4):
        pass
    stats = GenerationStats()
    for _ in gen.generate_ids(PROMPT, max_tokens=tokens + 1, stats=stats):
        pass
    return stats.decode_seconds / stats.decode_tokens * 1e3


def transformers_ms(sd: dict[str, np.ndarray], tokens: int) -> float:
    import torch
    import transformers

    cfg = transformers.LlamaConfig(**CONFIG, attn_implementation="eager", tie_word_embeddings=False)
    model = transformers.LlamaForCausalLM(cfg).eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)
    with torch.no_grad():
        out = model(torch.tensor([PROMPT]), use_cache=True)
        past, tok = out.past_key_values, out.logits[:, -1:].argmax(-1)
        t = time.perf_counter()
        for _ in range(tokens):
            out = model(tok, past_key_values=past, use_cache=True)
            past, tok = out.past_key_values, out.logits[:, -1:].argmax(-1)
        return (time.perf_counter() - t) / tokens * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-transformers", action="store_true")
    args = ap.parse_args()
    sd = weights()
    formats = ["f32", "bf16_packed", "q8_0", "q4_k"]
    engines = [f"luminal {f}" for f in formats] + ([] if args.skip_transformers else ["transformers eager f32"])
    best = {e: float("inf") for e in engines}
    for r in range(args.rounds):
        for e in engines:
            ms = transformers_ms(sd, args.tokens) if e.startswith("transformers") else \
                luminal_ms(sd, e.split()[1], args.tokens)
            best[e] = min(best[e], ms)
            print(f"round {r + 1}: {e}: {ms:.2f} ms/token", file=sys.stderr)
    f32_bytes = sum(v.nbytes for k, v in sd.items() if k != "model.embed_tokens.weight")
    bw = measure_bandwidth(os.cpu_count() or 1)
    print(f"\n32-layer Llama, hidden 256, FFN 512, vocab 1000; {args.tokens} decoded tokens, best of "
          f"{args.rounds}; {os.cpu_count()} cores")
    print(f"f32 weights read per token: {f32_bytes / 1e6:.0f} MB; bandwidth probe {bw:.1f} GB/s -> "
          f"{f32_bytes / bw / 1e6:.2f} ms per token at the bound\n")
    base = best.get("transformers eager f32")
    print("| engine | decode ms/token | vs transformers eager |")
    print("|---|---|---|")
    for e in engines:
        ratio = f"{base / best[e]:.1f}x" if base else "n/a"
        print(f"| {e} | {best[e]:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
