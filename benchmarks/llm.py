"""LLM generation speed: luminal vs llama.cpp (llama-cpp-python) vs
transformers eager, on the same GGUF file (a Mistral-7B- or
Llama-3.2-1B-shaped model with random weights, made here), the same prompt
and the same thread count.

    python benchmarks/llm.py                 # 4-layer variant, Q8_0: a quick run
    python benchmarks/llm.py --layers 32     # the full 7B shape (7.7 GB Q8_0 file)
    python benchmarks/llm.py --shape llama-3.2-1b  # tied embeddings, 128k vocabulary (1.3 GB as Q8_0)
    python benchmarks/llm.py --format f16    # F16 weights
    python benchmarks/llm.py --format q4_k_m # Q4_K matrices, Q6_K down/output projections
    python benchmarks/llm.py --format q5_k_m # Q5_K matrices, Q6_K down/output projections
    python benchmarks/llm.py --format q3_k_m # (also q2_k, iq4_xs): llama.cpp's smaller mixes
    python benchmarks/llm.py --format q4_0   # Q4_0 matrices

Prints prefill and decode tokens/s with ratios, and luminal's decode as a
fraction of the memory-bandwidth bound (weight bytes read per token over the
bandwidth measured in this run). luminal and llama.cpp take turns for
``--rounds`` rounds, one model in memory at a time, and each keeps its best:
this VM's bandwidth drifts by 2x within minutes. transformers then runs as many
rounds and keeps its best too, its prefill asking for the last position's
logits only (as ``generate()`` does); it runs only when its f32 copy fits in
memory (the few-layer variants). Model files are cached under
``--dir`` (default: ~/.cache/luminal/bench).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "1000")  # luminal's default too (luminal/_env.py)

import numpy as np  # noqa: E402

MISTRAL_7B = dict(vocab=32000, hidden=4096, ffn=14336, heads=32, kv_heads=8, ctx=32768,
                  rope_theta=1e6, eps=1e-5, layers=32, tied=False)
# tied embeddings: no output.weight, the table (in the output's type, as
# llama.cpp quantizes it then) is the output product's weight
LLAMA_32_1B = dict(vocab=128256, hidden=2048, ffn=8192, heads=32, kv_heads=8, ctx=131072,
                   rope_theta=5e5, eps=1e-5, layers=16, tied=True)
SHAPES = {"mistral-7b": MISTRAL_7B, "llama-3.2-1b": LLAMA_32_1B}


# llama.cpp's k-quant mixes, simplified: more bits for the down (Q3_K_M: and
# value) projections and the output; the named type elsewhere
K_MIXES = {
    "q2_k": {"*": "q2_k", "ffn_down": "q3_k", "output": "q6_k"},
    "q3_k_m": {"*": "q3_k", "ffn_down": "q4_k", "attn_v": "q5_k", "output": "q6_k"},
    "q4_k_m": {"*": "q4_k", "ffn_down": "q6_k", "output": "q6_k"},
    "q5_k_m": {"*": "q5_k", "ffn_down": "q6_k", "output": "q6_k"},
    "iq4_xs": {"*": "iq4_xs", "output": "q6_k"},
}
K_BLOCK_BYTES = {"q2_k": 84, "q3_k": 110, "q4_k": 144, "q5_k": 176, "q6_k": 210, "iq4_xs": 136}
K_SCALE = {"q2_k": 1e-3, "q3_k": 3e-4, "q4_k": 4e-5, "q5_k": 2e-5, "q6_k": 2e-5, "iq4_xs": 3e-5}


def make_gguf(path: Path, layers: int, fmt: str, shape: str = "mistral-7b", seed: int = 0) -> None:
    """A llama-architecture GGUF of ``shape`` (``SHAPES``) with random
    weights (quantized blocks drawn directly: random int8 values and small
    fp16 scales) and a byte-level SentencePiece-style vocabulary llama.cpp
    accepts."""
    import gguf

    c = SHAPES[shape]
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path) + ".tmp", "llama")
    w.add_name(f"{shape}-shaped-random-{layers}l")
    w.add_context_length(c["ctx"])
    w.add_embedding_length(c["hidden"])
    w.add_block_count(layers)
    w.add_feed_forward_length(c["ffn"])
    w.add_head_count(c["heads"])
    w.add_head_count_kv(c["kv_heads"])
    w.add_rope_freq_base(c["rope_theta"])
    w.add_layer_norm_rms_eps(c["eps"])
    w.add_rope_dimension_count(c["hidden"] // c["heads"])
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"\u2581t{i}" for i in range(c["vocab"] - len(tokens))]
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 3 + [0.0] * 256 + [-float(i) for i in range(c["vocab"] - 259)])
    w.add_token_types([2, 3, 3] + [6] * 256 + [1] * (c["vocab"] - 259))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)

    def tensor(name: str, shape: tuple[int, int] | tuple[int], quantized: bool = True, role: str = "") -> None:
        if len(shape) == 1:  # norms: f32 around 1
            w.add_tensor(name, (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32))
            return
        rows, cols = shape
        mix = K_MIXES.get(fmt, {"*": fmt})
        kind = mix.get(role or name.split(".")[-2], mix["*"])
        if kind in K_BLOCK_BYTES and quantized:
            nb = cols // 256
            blocks = rng.integers(0, 256, (rows, nb, K_BLOCK_BYTES[kind]), dtype=np.uint8)
            # d (and dmin) where each format keeps them, sized for weights of ~0.01
            d = (rng.uniform(0.5, 1.5, (rows, nb, 2)) * K_SCALE[kind]).astype(np.float16).view(np.uint8)
            if kind == "q6_k":  # int8 sub-scales kept small
                blocks[..., 192:208] = rng.integers(-64, 64, (rows, nb, 16), dtype=np.int8).view(np.uint8)
                blocks[..., 208:210] = d[..., :2]
            elif kind == "q3_k":
                blocks[..., 108:110] = d[..., :2]
            elif kind == "q2_k":
                blocks[..., 80:84] = d
            elif kind == "iq4_xs":  # d; the scales' tops stay random
                blocks[..., 0:2] = d[..., :2]
            else:
                blocks[..., 0:4] = d
            qt = getattr(gguf.GGMLQuantizationType, kind.upper())
            w.add_tensor(name, blocks.reshape(rows, -1), raw_dtype=qt)
        elif fmt == "q4_0" and quantized:  # d * (nibble - 8)
            blocks = rng.integers(0, 256, (rows, cols // 32, 18), dtype=np.uint8)
            scale = (rng.uniform(0.5, 1.5, (rows, cols // 32)) * 0.02 / 8).astype(np.float16)
            blocks[..., :2] = scale.view(np.uint8).reshape(rows, cols // 32, 2)
            w.add_tensor(name, blocks.reshape(rows, -1), raw_dtype=gguf.GGMLQuantizationType.Q4_0)
        elif fmt == "q8_0" and quantized:
            blocks = np.empty((rows, cols // 32, 34), np.uint8)
            scale = (rng.uniform(0.5, 1.5, (rows, cols // 32)) * 0.02 / 127).astype(np.float16)
            blocks[..., :2] = scale.view(np.uint8).reshape(rows, cols // 32, 2)
            blocks[..., 2:] = rng.integers(-127, 128, (rows, cols // 32, 32), dtype=np.int8).view(np.uint8)
            w.add_tensor(name, blocks.reshape(rows, -1), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, (0.02 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float16))

    h, f, kv = c["hidden"], c["ffn"], c["kv_heads"] * (c["hidden"] // c["heads"])
    # an untied table stays F16 (a step reads one row of it)
    tensor("token_embd.weight", (c["vocab"], h), quantized=bool(c["tied"]), role="output")
    for i in range(layers):
        tensor(f"blk.{i}.attn_norm.weight", (h,))
        tensor(f"blk.{i}.attn_q.weight", (h, h))
        tensor(f"blk.{i}.attn_k.weight", (kv, h))
        tensor(f"blk.{i}.attn_v.weight", (kv, h))
        tensor(f"blk.{i}.attn_output.weight", (h, h))
        tensor(f"blk.{i}.ffn_norm.weight", (h,))
        tensor(f"blk.{i}.ffn_gate.weight", (f, h))
        tensor(f"blk.{i}.ffn_up.weight", (f, h))
        tensor(f"blk.{i}.ffn_down.weight", (h, f))
    tensor("output_norm.weight", (h,))
    if not c["tied"]:
        tensor("output.weight", (c["vocab"], h))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=True)
    w.close()
    os.replace(str(path) + ".tmp", path)


def weight_bytes_per_token(path: Path) -> int:
    """Bytes of every matrix a decode step reads (all but the embedding
    table, unless it is tied: the output product's weight)."""
    from luminal.io.gguf import GGUFFile

    with GGUFFile(path) as f:
        tied = "output.weight" not in f.tensor_names()
        return sum(f.tensor_info(n).nbytes for n in f.tensor_names() if tied or n != "token_embd.weight")


def measure_bandwidth(threads: int) -> float:
    """GB/s of a 1 GiB streaming read on `threads` threads (a luminal sum kernel)."""
    import luminal as lm

    cx = lm.Graph()
    x = cx.tensor((256, 1 << 20)).set(np.ones((256, 1 << 20), np.float32))
    s = x.sum(-1).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    cx.execute()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        cx.execute()
        times.append(time.perf_counter() - t)
    del s
    return 256 * (1 << 20) * 4 / min(times) / 1e9


Speeds = tuple[float, float]  # prefill, decode tokens/s


def luminal_engine(path: Path, prompt: list[int], gen: int,
                   precision: str | None = None) -> tuple[Callable[[], Speeds], list[int]]:
    """A measuring function for luminal's Generator (loaded and compiled
    here, its float products at ``precision``: None is the Generator's
    default), and the tokens it generates."""
    from luminal.models import Generator, load_model
    from luminal.models.generate import GenerationStats

    t = time.perf_counter()
    model = load_model(path, quantized=True)
    load_s = time.perf_counter() - t
    g = Generator(model, float32_matmul_precision=precision)
    print(f"  luminal: loaded in {load_s:.1f} s, compiled in {g.compile_seconds:.1f} s", file=sys.stderr)
    for _ in g.generate_ids(prompt[:4], max_tokens=2):
        pass
    generated: list[int] = []

    def measure() -> Speeds:
        stats = GenerationStats()
        generated[:] = list(g.generate_ids(prompt, max_tokens=gen, stats=stats))
        return stats.prefill_tokens_per_s, stats.decode_tokens_per_s

    measure()
    return measure, list(generated)


def llama_cpp_engine(path: Path, prompt: list[int], gen: list[int], threads: int) -> Callable[[], Speeds]:
    """A measuring function for llama.cpp: the prompt as one batch, then the
    same tokens luminal generated, one at a time."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_threads=threads, n_threads_batch=threads,
                n_ctx=len(prompt) + len(gen) + 8, n_batch=max(len(prompt), 8), verbose=False)
    llm.eval(prompt[:4])

    def measure() -> Speeds:
        llm.reset()
        t = time.perf_counter()
        llm.eval(prompt)
        prefill = len(prompt) / (time.perf_counter() - t)
        t = time.perf_counter()
        for tok in gen:
            llm.eval([tok])
        return prefill, len(gen) / (time.perf_counter() - t)

    return measure


def run_transformers(path: Path, prompt: list[int], gen: int, dtype: str, rounds: int) -> tuple[float, float]:
    """transformers eager on the file's weights: the best prefill and decode of ``rounds``."""
    import torch
    import transformers

    from luminal.models import load_model

    # The weights with HF names: for bf16, kept as stored (Q8_0 / F16) and
    # converted one tensor at a time, so no f32 copy of the model is ever made
    # (a 7B one would not fit next to the bf16 copy).
    model = load_model(path, quantized=dtype == "bf16")
    cfg = model.config
    hf_cfg = transformers.MistralConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads, rms_norm_eps=cfg.rms_norm_eps,
        rope_theta=cfg.rope_theta, max_position_embeddings=4096, sliding_window=None,
        tie_word_embeddings=cfg.tie_word_embeddings, attn_implementation="eager")
    with torch.device("meta"):
        hf = transformers.MistralForCausalLM(hf_cfg)
    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    with warnings.catch_warnings():  # read-only views of the file: torch warns, we never write
        warnings.simplefilter("ignore", UserWarning)
        state = {k: torch.from_numpy(np.asarray(p.data)).to(torch_dtype)  # one tensor widened at a time
                 for k, p in model.state_dict(keep_vars=True).items()}
    del model
    if hf_cfg.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    hf.load_state_dict(state, assign=True)
    hf.model.rotary_emb = type(hf.model.rotary_emb)(config=hf_cfg)  # its buffer was on meta
    hf = hf.to(torch_dtype).eval()
    ids = torch.tensor([prompt])
    prefill = decode = 0.0
    with torch.no_grad():
        hf(ids[:, :4])
        for _ in range(rounds):  # its speed drifts as the others' does: the best, as for them
            t = time.perf_counter()
            # the last position's logits only, as generate() asks for (and luminal computes)
            out = hf(ids, use_cache=True, logits_to_keep=1)
            prefill = max(prefill, len(prompt) / (time.perf_counter() - t))
            past, tok = out.past_key_values, out.logits[:, -1:].argmax(-1)
            t = time.perf_counter()
            for _ in range(gen):
                out = hf(tok, past_key_values=past, use_cache=True)
                past, tok = out.past_key_values, out.logits[:, -1:].argmax(-1)
            decode = max(decode, gen / (time.perf_counter() - t))
    return prefill, decode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=list(SHAPES), default="mistral-7b",
                    help="mistral-7b (untied output), or llama-3.2-1b (tied embeddings, 128k vocabulary)")
    ap.add_argument("--layers", type=int, default=None,
                    help="default: 4 for mistral-7b (a quick run; 32 is the full model), every layer otherwise")
    ap.add_argument("--format", choices=["q8_0", "f16", "q4_0", *K_MIXES], default="q8_0")
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--gen-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dir", default=os.path.join(os.path.expanduser("~"), ".cache", "luminal", "bench"))
    ap.add_argument("--skip", default="", help="comma list of: llama.cpp, transformers")
    ap.add_argument("--matmul-precision", choices=["highest", "medium"], default=None,
                    help="luminal's float products (attention's, and f16 weights'): medium on bf16 AMX tiles (the "
                    "Generator's default for quantized and f16 files), highest in float32")
    ap.add_argument("--rounds", type=int, default=3,
                    help="measurements per engine (luminal and llama.cpp take turns, then transformers "
                    "runs its own); the best is shown")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)

    layers = args.layers or (4 if args.shape == "mistral-7b" else int(SHAPES[args.shape]["layers"]))
    stem = "mistral7b-shape" if args.shape == "mistral-7b" else f"{args.shape}-shape"  # cached files keep their names
    path = Path(args.dir) / f"{stem}-{layers}l-{args.format}.gguf"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        print(f"writing {path} ...", file=sys.stderr)
        make_gguf(path, layers, args.format, args.shape)
    rng = np.random.default_rng(1)
    prompt = [1] + rng.integers(300, 32000, args.prompt_tokens - 1).tolist()
    skip = set(args.skip.split(",")) if args.skip else set()

    rows: list[tuple[str, float, float]] = []
    if "llama.cpp" not in skip:
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            print("  llama-cpp-python is not installed: skipped", file=sys.stderr)
            skip.add("llama.cpp")
    # This VM's memory bandwidth drifts by 2x within minutes: the engines take
    # turns, round after round, and each keeps its best round. One engine is
    # in memory at a time (loading is seconds; kernels come from the cache):
    # with both resident, luminal's copy of the weights and the mapped file
    # compete for memory and its decode dropped by up to 40%.
    runs: dict[str, list[Speeds]] = {"luminal": []}
    if "llama.cpp" not in skip:
        runs["llama.cpp"] = []
    generated: list[int] = []
    bandwidth = 0.0
    for r in range(args.rounds):
        print(f"round {r + 1}: luminal ...", file=sys.stderr)
        lum, out = luminal_engine(path, prompt, args.gen_tokens, args.matmul_precision)
        generated = generated or out
        runs["luminal"].append(lum())
        del lum
        gc.collect()  # the graph's reference cycles: free luminal's copy before the next engine loads
        if "llama.cpp" in runs:
            print(f"round {r + 1}: llama.cpp ...", file=sys.stderr)
            runs["llama.cpp"].append(
                llama_cpp_engine(path, prompt, generated or [300] * args.gen_tokens, args.threads)())
            gc.collect()
        bandwidth = max(bandwidth, measure_bandwidth(args.threads))
        print("  " + ", ".join(f"{name} {rs[-1][0]:.2f} / {rs[-1][1]:.2f}" for name, rs in runs.items())
              + " tok/s (prefill / decode)", file=sys.stderr)
    for name, rs in runs.items():
        rows.append((name, max(x[0] for x in rs), max(x[1] for x in rs)))
    round_ratios = ""
    if "llama.cpp" in runs:
        ratios = sorted(a[1] / b[1] for a, b in zip(runs["luminal"], runs["llama.cpp"]))
        round_ratios = ", ".join(f"{x:.2f}" for x in ratios)
    lp, ld = rows[0][1], rows[0][2]
    weights = weight_bytes_per_token(path)
    # ~ (the mixes' larger parts aside)
    bytes_per_value = {"f16": 2, "q8_0": 34 / 32, "q4_0": 18 / 32,
                       **{m: K_BLOCK_BYTES[mix["*"]] / 256 for m, mix in K_MIXES.items()}}[args.format]
    f32_bytes = weights / bytes_per_value * 4  # an f32 copy of the model
    if "transformers" not in skip:
        for dt, need in (("f32", 2 * f32_bytes), ("bf16", f32_bytes / 2 + 2e9)):
            if need > 0.8 * _mem_available():
                print(f"  transformers {dt}: its copy of the model does not fit in memory: skipped",
                      file=sys.stderr)
                continue
            print(f"transformers {dt} ...", file=sys.stderr)
            rows.append((f"transformers eager {dt}",
                         *run_transformers(path, prompt, args.gen_tokens, dt, args.rounds)))
    bandwidth = max(bandwidth, measure_bandwidth(args.threads))

    print(f"\n{layers}-layer {args.shape}-shaped model, {args.format}, {args.threads} threads, "
          f"prompt {args.prompt_tokens} tokens, {args.gen_tokens} decoded")
    print(f"weights read per token {weights / 1e9:.2f} GB; measured bandwidth {bandwidth:.1f} GB/s "
          f"-> decode bound {bandwidth * 1e9 / weights:.2f} tok/s\n")
    print("| engine | prefill tok/s | decode tok/s | luminal prefill ratio | luminal decode ratio |")
    print("|---|---|---|---|---|")
    for name, p, d in rows:
        print(f"| {name} | {p:.2f} | {d:.2f} | {lp / p:.2f}x | {ld / d:.2f}x |")
    print(f"\nluminal decode = {ld * weights / (bandwidth * 1e9):.0%} of the bandwidth bound "
          f"(the best probe of the run)")
    if round_ratios:
        print(f"luminal / llama.cpp decode, round by round (sorted): {round_ratios}")


def _mem_available() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 8e9


if __name__ == "__main__":
    main()
