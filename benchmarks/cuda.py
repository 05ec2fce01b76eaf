"""CUDA backend speed: luminal (CUDACompiler) vs PyTorch eager on the same GPU,
in one run. Needs a CUDA GPU and PyTorch with CUDA.

    python benchmarks/cuda.py               # ops + a 4-layer Mistral-7B-shaped model
    python benchmarks/cuda.py --layers 8    # more layers
    python benchmarks/cuda.py --formats q8_0,q4_k   # which compact formats to time
    python benchmarks/cuda.py --skip-model          # ops and products only
    python benchmarks/cuda.py --contexts 1024,4096  # also decode after longer prompts

Ops: float32 GEMM (TF32 off on both sides, so both compute in float32),
softmax and RMSNorm-style rows. Products: 7B-shaped weights in each format,
decode (1 row) and prefill (64 rows), as weight bytes read a second. Model:
prefill and greedy decode tokens/s for random float32 weights, luminal's
Generator vs transformers eager (float32 and bfloat16), and decode as a
fraction of the bandwidth bound (weight bytes per token over the
device-to-device copy bandwidth measured here); then the same model with its
projections stored in each compact format (``nn.quantize_``).
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, List

import numpy as np


def best_ms(fn: Callable[[], object], sync: Callable[[], None], repeat: int = 10) -> float:
    fn()
    sync()
    times: List[float] = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def ops(torch: "object") -> None:
    import luminal as lm
    import torch as th

    sync = th.cuda.synchronize
    rng = np.random.default_rng(0)
    print(f"{'op':28s} {'luminal ms':>11s} {'torch ms':>9s} {'ratio':>6s}")

    def report(name: str, ours: float, theirs: float, extra: str = "") -> None:
        print(f"{name:28s} {ours:11.3f} {theirs:9.3f} {theirs / ours:6.2f}x {extra}")

    for n in (1024, 4096):
        a = rng.normal(size=(n, n)).astype(np.float32)
        b = rng.normal(size=(n, n)).astype(np.float32)
        cx = lm.Graph()
        ta, tb = cx.tensor((n, n)).set(a), cx.tensor((n, n)).set(b)
        out = (ta @ tb).retrieve()
        cx.compile(lm.GenericCompiler(), lm.CUDACompiler())
        ours = best_ms(cx.execute, lambda: None)  # execute returns after the copy back
        ga, gb = th.from_numpy(a).cuda(), th.from_numpy(b).cuda()
        theirs = best_ms(lambda: (ga @ gb).cpu(), sync)
        np.testing.assert_allclose(out.numpy(), (ga @ gb).cpu().numpy(), rtol=1e-3, atol=1e-2)
        report(f"matmul {n} (incl. copy back)", ours, theirs,
               f"{2 * n**3 / ours / 1e9:.2f} TFLOP/s")
    for rows, cols in ((4096, 4096), (64, 32000)):
        x = rng.normal(size=(rows, cols)).astype(np.float32)
        cx = lm.Graph()
        tx = cx.tensor((rows, cols)).set(x)
        sm = tx.softmax(-1).sum(-1).retrieve()
        cx.compile(lm.GenericCompiler(), lm.CUDACompiler())
        ours = best_ms(cx.execute, lambda: None)
        gx = th.from_numpy(x).cuda()
        theirs = best_ms(lambda: gx.softmax(-1).sum(-1).cpu(), sync)
        np.testing.assert_allclose(sm.numpy(), np.ones(rows), rtol=1e-4)
        report(f"softmax rows {rows}x{cols}", ours, theirs)


def copy_bandwidth() -> "float | None":
    """Bytes a second of a large device-to-device copy (read + written), by PyTorch; None without it."""
    try:
        import torch as th
    except ImportError:
        return None
    if not th.cuda.is_available():
        return None
    buf = th.empty(1 << 30, dtype=th.uint8, device="cuda")
    dst = th.empty_like(buf)
    ms = best_ms(lambda: dst.copy_(buf), th.cuda.synchronize)
    return 2 * buf.numel() / (ms / 1e3)


def products(formats: List[str], hidden: int = 4096, ffn: int = 14336, chain: int = 8) -> None:
    """Products with each weight format alone: ``chain`` of them in one graph
    (hidden -> ffn -> hidden ...), so one run's fixed costs spread over many
    weights; one row (decode) and 64 rows (prefill). Weight bytes over time,
    against the copy bandwidth; results checked against numpy."""
    import luminal as lm
    from luminal import quant

    rng = np.random.default_rng(2)
    bandwidth = copy_bandwidth()
    ws = [(rng.standard_normal((ffn, hidden) if i % 2 == 0 else (hidden, ffn)) * 0.02).astype(np.float32)
          for i in range(chain)]
    print(f"\n[products] {chain} chained products {hidden} <-> {ffn}; copy bandwidth "
          f"{bandwidth / 1e9 if bandwidth else float('nan'):.0f} GB/s")
    print(f"{'weights':12s} {'rows':>5s} {'ms':>9s} {'weight GB/s':>12s} {'of copy':>8s}")
    for fmt in ["f32"] + formats:
        # each weight quantized once for both row counts (the numpy quantizers take seconds)
        stored = [w if fmt == "f32" else quant.quantize(w, fmt) for w in ws]
        for rows in (1, 64):
            x = rng.standard_normal((rows, hidden)).astype(np.float32)
            cx = lm.Graph()
            h = cx.tensor(x.shape).set(x)
            want = x.astype(np.float64)
            read = 0
            for w, blocks in zip(ws, stored):
                if fmt == "f32":
                    t, exact, read = cx.tensor(w.shape).set(w), w, read + w.nbytes
                else:
                    t = cx.parameter(w.shape, dtype=fmt).set_blocks(blocks)
                    exact, read = quant.dequantize(blocks, fmt, w.shape), read + quant.storage_bytes(fmt, w.size)
                h = h @ t.T
                want = want @ exact.T.astype(np.float64)
            out = h.retrieve()
            cx.compile(lm.GenericCompiler(), lm.CUDACompiler())
            ms = best_ms(cx.execute, lambda: None, repeat=5)
            np.testing.assert_allclose(out.numpy(), want, rtol=2e-3, atol=2e-3 * float(np.abs(want).max()))
            share = f"{100 * read / (ms / 1e3) / bandwidth:7.0f}%" if bandwidth else "n/a"
            print(f"{fmt:12s} {rows:5d} {ms:9.3f} {read / (ms / 1e3) / 1e9:12.0f} {share:>8s}")


def model(layers: int, prompt: int, decode: int, formats: List[str], contexts: List[int]) -> None:
    import torch as th
    import transformers

    from luminal.models import Generator, LlamaConfig, LlamaForCausalLM

    th.manual_seed(0)
    hcfg = transformers.MistralConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336,
                                      num_hidden_layers=layers, num_attention_heads=32,
                                      num_key_value_heads=8, rope_theta=1e6, sliding_window=None,
                                      attn_implementation="eager", torch_dtype=th.float32)
    t = time.perf_counter()
    with th.device("cuda"):
        hf = transformers.MistralForCausalLM(hcfg).eval()
    import luminal as lm
    from luminal import quant

    sd = {k: v.float().cpu().numpy() for k, v in hf.state_dict().items()}

    def build(fmt: str) -> "tuple[LlamaForCausalLM, float]":
        """The luminal model with its projections stored as ``fmt``, and the
        bytes of weights one decode step reads (the embedding table is not read)."""
        m = LlamaForCausalLM(LlamaConfig.from_hf(hf.config), init=False).eval()
        m.load_state_dict(sd)
        if fmt != "f32":
            lm.nn.quantize_(m, fmt)
        read = sum(p.numel() * 4 if getattr(p, "format", "f32") == "f32" else quant.storage_bytes(p.format, p.numel())
                   for name, p in m.named_parameters() if "embed" not in name)
        return m, float(read)

    lmodel, weight_bytes = build("f32")
    print(f"\n[model] {layers} layers of Mistral-7B shape, {weight_bytes / 1e9:.2f} GB f32 read per "
          f"token, built in {time.perf_counter() - t:.1f} s")
    ids = list(np.random.default_rng(1).integers(0, 32000, size=prompt))

    from luminal.models.generate import GenerationStats

    long_rows: List[str] = []

    def speed(m: LlamaForCausalLM, name: str) -> "tuple[float, float]":
        gen = Generator(m, device="cuda")
        list(gen.generate_ids(ids[:8], max_tokens=4))  # warm up: kernels built, weights uploaded
        st = GenerationStats()
        list(gen.generate_ids(ids, max_tokens=decode + 1, stats=st))
        per_context = []
        for n in contexts:  # decode after a longer prompt: attention over a longer cache
            lst = GenerationStats()
            long_ids = list(np.random.default_rng(n).integers(0, 32000, size=n))
            list(gen.generate_ids(long_ids, max_tokens=decode + 1, stats=lst))
            per_context.append(f"{1e3 / lst.decode_tokens_per_s:10.3f}")
        if contexts:
            long_rows.append(f"{name:24s} " + " ".join(per_context))
        return st.prefill_tokens_per_s, st.decode_tokens_per_s

    ours = speed(lmodel, "luminal f32")
    del lmodel
    compact = []
    for fmt in formats:
        m, read = build(fmt)
        compact.append((fmt, read, speed(m, "luminal " + fmt)))
        del m

    def hf_speed(m: "th.nn.Module") -> "tuple[float, float]":
        x = th.tensor([ids], device="cuda")
        with th.no_grad():
            m.generate(x[:, :8], max_new_tokens=4, do_sample=False, pad_token_id=0)
            th.cuda.synchronize()
            t0 = time.perf_counter()
            m(x)
            th.cuda.synchronize()
            t1 = time.perf_counter()
            m.generate(x, max_new_tokens=decode + 1, min_new_tokens=decode + 1, do_sample=False,
                       pad_token_id=0)
            th.cuda.synchronize()
            t2 = time.perf_counter()
        return prompt / (t1 - t0), decode / max(t2 - t1 - (t1 - t0), 1e-9)

    f32 = hf_speed(hf)
    bf16 = hf_speed(hf.to(th.bfloat16))
    del hf
    bandwidth = copy_bandwidth() or float("nan")
    bound = bandwidth / weight_bytes
    print(f"{'':24s} {'prefill tok/s':>14s} {'decode tok/s':>13s}")
    print(f"{'luminal f32':24s} {ours[0]:14.1f} {ours[1]:13.1f}")
    print(f"{'transformers eager f32':24s} {f32[0]:14.1f} {f32[1]:13.1f}")
    print(f"{'transformers eager bf16':24s} {bf16[0]:14.1f} {bf16[1]:13.1f}")
    print(f"ratios: vs f32 {ours[0] / f32[0]:.2f}x / {ours[1] / f32[1]:.2f}x, vs bf16 "
          f"{ours[0] / bf16[0]:.2f}x / {ours[1] / bf16[1]:.2f}x; decode at "
          f"{100 * ours[1] / bound:.0f}% of the f32 bandwidth bound ({bound:.0f} tok/s at "
          f"{bandwidth / 1e12:.2f} TB/s)")
    for fmt, read, (pre, dec) in compact:
        print(f"{'luminal ' + fmt:24s} {pre:14.1f} {dec:13.1f}   decode at {100 * dec * read / bandwidth:.0f}% "
              f"of its bound ({read / 1e9:.2f} GB a token), {dec / bf16[1]:.2f}x transformers bf16")
    if contexts:
        print("\ndecode ms a token after a prompt of")
        print(f"{'':24s} " + " ".join(f"{n:>10d}" for n in contexts))
        for row in long_rows:
            print(row)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--prompt", type=int, default=64)
    p.add_argument("--decode", type=int, default=32)
    p.add_argument("--skip-model", action="store_true")
    p.add_argument("--skip-products", action="store_true")
    p.add_argument("--contexts", default="",
                   help="also time decode after prompts of these lengths (comma-separated, e.g. 1024,4096)")
    p.add_argument("--formats", default="q8_0,q4_0,q4_k,bf16_packed",
                   help="compact weight formats to time after float32 (comma-separated, '' for none)")
    args = p.parse_args()
    import luminal as lm

    if not lm.cuda.is_available():
        raise SystemExit(f"no usable CUDA GPU: {lm.cuda.unavailable_reason()}")
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    info = lm.cuda.device_info()
    print(f"[device] {info['name']}, {info['multiprocessors']} SMs, {info['memory'] / 2**30:.0f} GiB, "
          f"cuBLAS {'yes' if info['cublas'] else 'no'}; torch {torch.__version__}")
    ops(torch)
    formats = [f for f in args.formats.split(",") if f]
    if not args.skip_products:
        products(formats)
    if not args.skip_model:
        model(args.layers, args.prompt, args.decode, formats, [int(n) for n in args.contexts.split(",") if n])


if __name__ == "__main__":
    main()
