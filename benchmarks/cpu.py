"""luminal's CPUCompiler against PyTorch eager, torch.compile and numpy, on CPU.

Every case runs in one process on the same data. luminal's result is checked
against torch eager first (a row says MISMATCH when it differs); then each
framework is timed best-of-N after a warm-up. For luminal only ``cx.execute()``
is timed; building the graph and compiling it (C kernels, cached on disk) is
reported apart as "lm compile s". Ratios are peer time / luminal time, so > 1
means luminal is faster.

    python benchmarks/cpu.py              # full sizes
    python benchmarks/cpu.py --quick      # small sizes, fewer repeats, no torch.compile
    python benchmarks/cpu.py --threads 4  # 4 threads for luminal (OpenMP), torch and numpy
    python benchmarks/cpu.py --only GQA   # the cases whose name contains "GQA"
    python benchmarks/cpu.py --only causal --causal-lengths 128,256,512,1024
"""

from __future__ import annotations

import argparse
import os


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark luminal (CPUCompiler) against PyTorch eager, torch.compile and numpy.",
        epilog="luminal's kernels use OpenMP, which reads OMP_NUM_THREADS once, when luminal is "
        "imported. --threads N sets it (and torch.set_num_threads(N)) before luminal and torch are "
        "imported; without --threads, OMP_NUM_THREADS from the environment (else all cores) is used.",
    )
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats, skip torch.compile")
    p.add_argument("--only", default="", metavar="TEXT", help="run only the cases whose name contains TEXT")
    p.add_argument("--causal-lengths", default="1024", metavar="L,L,...",
                   type=lambda v: [int(x) for x in v.split(",")],
                   help="sequence lengths of the causal attention case (default 1024)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads for luminal (sets OMP_NUM_THREADS before import), torch and numpy")
    return p.parse_args()


ARGS = parse_args()
if ARGS.threads is not None:  # must happen before luminal (OpenMP) or torch is imported
    os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
# luminal asks OpenMP workers to sleep between kernels (so OpenBLAS gets the
# cores), but torch loads the same libgomp first and fixes the policy at import;
# set it here so luminal runs as it does without torch. Both frameworks see it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "1000")  # luminal's default too (luminal/_env.py)

import importlib  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import luminal as lm  # noqa: E402
import luminal.nn as lnn  # noqa: E402
import luminal.nn.functional as LF  # noqa: E402

np_erf: Callable[[np.ndarray], np.ndarray] | None
try:  # numpy has no erf; only the MLP's numpy column (exact gelu) needs scipy's
    np_erf = importlib.import_module("scipy.special").erf
except ImportError:  # pragma: no cover
    np_erf = None

REPEATS = 3 if ARGS.quick else 10
TIME_BUDGET_S = 30.0  # per framework per case: fewer repeats (down to 1) when one run is this slow
COMPILE_TIMEOUT_S = 120
RTOL, ATOL = 1e-3, 1e-3


@dataclass
class Case:
    name: str
    data: list[np.ndarray]                      # inputs (then weights), shared by every framework
    lm_fn: Callable[[lm.Graph, list[np.ndarray]], lm.Tensor]  # builds luminal's graph, returns output
    torch_fn: Callable[..., torch.Tensor]       # called with data as torch tensors
    np_fn: Callable[..., np.ndarray] | None = None
    flops: float | None = None                  # for GFLOP/s
    tol: tuple[float, float] = (RTOL, ATOL)
    torch_module: torch.nn.Module | None = field(default=None, repr=False)


def best_of(fn: Callable[[], Any], warm_s: float) -> float:
    """Best time of up to REPEATS runs of ``fn`` (already warmed up, last run took ``warm_s``)."""
    reps = max(1, min(REPEATS, int(TIME_BUDGET_S / max(warm_s, 1e-9))))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _alarm(signum: int, frame: Any) -> None:
    raise TimeoutError(f"warm-up took more than {COMPILE_TIMEOUT_S} s")


_compile_state = {"disabled": False}  # a timed-out compile can leave dynamo unusable: skip the rest


def run_torch_compile(case: Case, targs: list[torch.Tensor]) -> float | None:
    """torch.compile time (ms) or None when it fails or warms up too slowly."""
    if _compile_state["disabled"]:
        return None
    has_alarm = hasattr(signal, "SIGALRM")
    t0 = time.perf_counter()
    try:
        fn = torch.compile(case.torch_module if case.torch_module is not None else case.torch_fn, dynamic=False)
        if has_alarm:
            old = signal.signal(signal.SIGALRM, _alarm)
            signal.alarm(COMPILE_TIMEOUT_S)
        try:
            fn(*targs)
            fn(*targs)
        finally:
            if has_alarm:
                signal.alarm(0)
                signal.signal(signal.SIGALRM, old)
        if time.perf_counter() - t0 > COMPILE_TIMEOUT_S:
            raise TimeoutError(f"warm-up took more than {COMPILE_TIMEOUT_S} s")
        _, warm = timed(lambda: fn(*targs))
        return best_of(lambda: fn(*targs), warm) * 1e3
    except Exception as e:  # noqa: BLE001 - any failure means "n/a", not a crash
        msg = (str(e).splitlines() or [""])[0][:100]
        print(f"  [torch.compile n/a for {case.name}: {type(e).__name__}: {msg}]")
        if time.perf_counter() - t0 >= COMPILE_TIMEOUT_S:
            _compile_state["disabled"] = True
            print("  [torch.compile timed out: skipped for the remaining cases]")
        torch._dynamo.reset()
        return None


def fmt(ms: float | None, width: int = 10) -> str:
    return f"{'n/a':>{width}}" if ms is None else f"{ms:>{width}.2f}"


def ratio(peer: float | None, mine: float | None) -> str:
    return f"{'n/a':>8}" if peer is None or mine is None else f"{peer / mine:>7.2f}x"


HEADER = (f"{'case':<30} {'lm compile s':>12} {'luminal ms':>10} {'torch ms':>10} {'t.compile ms':>12} "
          f"{'numpy ms':>10} {'torch/lm':>8} {'tc/lm':>8} {'np/lm':>8}  GFLOP/s lm | torch")


def run_case(case: Case, use_compile: bool) -> None:
    targs = [torch.from_numpy(a) for a in case.data]
    with torch.no_grad():
        want = case.torch_fn(*targs)
        _, warm = timed(lambda: case.torch_fn(*targs))
        t_torch = best_of(lambda: case.torch_fn(*targs), warm) * 1e3
        t_tc = run_torch_compile(case, targs) if use_compile else None
    want_np = want.detach().numpy()

    t0 = time.perf_counter()
    cx = lm.Graph()
    y = case.lm_fn(cx, case.data).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    compile_s = time.perf_counter() - t0
    _, warm = timed(cx.execute)
    t_lm: float | None
    try:
        np.testing.assert_allclose(y.numpy().reshape(want_np.shape), want_np, rtol=case.tol[0], atol=case.tol[1])
        t_lm = best_of(cx.execute, warm) * 1e3
        lm_cell = fmt(t_lm)
    except AssertionError as e:
        t_lm, lm_cell = None, f"{'MISMATCH':>10}"
        detail = [ln for ln in str(e).splitlines() if "Mismatched" in ln or "Max absolute" in ln]
        print(f"  [{case.name}: luminal differs from torch: {'; '.join(s.strip() for s in detail)}]")

    t_np: float | None = None
    if case.np_fn is not None:
        _, warm = timed(lambda: case.np_fn(*case.data))  # type: ignore[misc]
        t_np = best_of(lambda: case.np_fn(*case.data), warm) * 1e3  # type: ignore[misc]

    gflops = ""
    if case.flops is not None:
        g = [f"{case.flops / (t * 1e-3) / 1e9:.1f}" if t else "n/a" for t in (t_lm, t_torch)]
        gflops = f"  {g[0]:>7} | {g[1]}"
    print(f"{case.name:<30} {compile_s:>12.3f} {lm_cell} {fmt(t_torch)} {fmt(t_tc, 12)} {fmt(t_np)} "
          f"{ratio(t_torch, t_lm)} {ratio(t_tc, t_lm)} {ratio(t_np, t_lm)}{gflops}", flush=True)


def rand(rng: np.random.Generator, *shape: int, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    return rng.uniform(lo, hi, shape).astype(np.float32)


def make_cases(quick: bool) -> list[Case]:
    rng = np.random.default_rng(0)
    cases: list[Case] = []

    # 10 elementwise ops: *2 +1 exp *0.5 -x sin *x sqrt reciprocal +
    for n in ((1 << 18, 1 << 20) if quick else (1 << 20, 1 << 24)):
        cases.append(Case(
            f"elementwise chain {n >> 20}M" if n >= 1 << 20 else f"elementwise chain {n >> 10}K", [rand(rng, n, lo=0.1)],
            lambda cx, d: (lambda x: ((x * 2 + 1).exp() * 0.5 - x).sin() * x + x.sqrt().reciprocal())(
                cx.tensor(d[0].shape, name="x").set(d[0])),
            lambda x: torch.sin(torch.exp(x * 2 + 1) * 0.5 - x) * x + torch.reciprocal(torch.sqrt(x)),
            lambda a: np.sin(np.exp(a * 2 + 1) * 0.5 - a) * a + 1 / np.sqrt(a),
        ))

    r = 1024 if quick else 4096
    cases.append(Case(
        f"softmax {r}x{r}", [rand(rng, r, r, lo=-4, hi=4)],
        lambda cx, d: LF.softmax(cx.tensor(d[0].shape, name="x").set(d[0]), -1),
        lambda x: torch.softmax(x, -1),
        lambda a: (lambda e: e / e.sum(-1, keepdims=True))(np.exp(a - a.max(-1, keepdims=True))),
    ))
    cases.append(Case(
        f"layer_norm {r}x{r}", [rand(rng, r, r, lo=-4, hi=4), rand(rng, r), rand(rng, r)],
        lambda cx, d: LF.layer_norm(cx.tensor(d[0].shape, name="x").set(d[0]), (r,),
                                    cx.parameter((r,), name="w").set(d[1]), cx.parameter((r,), name="b").set(d[2])),
        lambda x, w, b: torch.nn.functional.layer_norm(x, (r,), w, b),
        lambda a, w, b: (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + 1e-5) * w + b,
    ))

    for n in ((128, 256) if quick else (512, 1024, 2048)):
        cases.append(Case(
            f"gemm fp32 {n}x{n}x{n}", [rand(rng, n, n), rand(rng, n, n)],
            lambda cx, d: cx.tensor(d[0].shape, name="a").set(d[0]) @ cx.tensor(d[1].shape, name="b").set(d[1]),
            lambda a, b: a @ b, lambda a, b: a @ b, flops=2.0 * n**3,
        ))

    # A prompt's widest product in a Mistral-7B layer (gate/up): luminal's Q8_0
    # and Q4_K weights (AMX bf16 tiles where the CPU has them, the int8 GEMM
    # with AVX512-VNNI and no AMX) against torch's bf16 Linear (oneDNN), the
    # transformers bf16 peer of benchmarks/llm.py. The two round differently,
    # so the check is loose: it catches a wrong product, not the rounding.
    tok, hid, inter = (64, 512, 1024) if quick else (512, 4096, 14336)
    w_block = rand(rng, inter, hid, lo=-1 / np.sqrt(hid), hi=1 / np.sqrt(hid))
    w_bf16 = torch.from_numpy(w_block).bfloat16()

    def block_linear(fmt: str) -> Callable[[lm.Graph, list[np.ndarray]], lm.Tensor]:
        def build(cx: lm.Graph, d: list[np.ndarray]) -> lm.Tensor:
            lin = lnn.Linear(d[1].shape[1], d[1].shape[0], bias=False)
            lin.load_state_dict({"weight": d[1]})
            lnn.quantize_(lin, fmt)
            return lin(cx.tensor(d[0].shape, name="x").set(d[0]))
        return build

    for fmt in ("q8_0", "q4_k"):
        cases.append(Case(
            f"{fmt} vs bf16 linear {tok}x{hid}->{inter}", [rand(rng, tok, hid), w_block], block_linear(fmt),
            lambda x, w, wb=w_bf16: torch.nn.functional.linear(x.bfloat16(), wb).float(),
            flops=2.0 * tok * hid * inter, tol=(0.0, 0.03 if fmt == "q8_0" else 0.25),  # Q4_K: 4.5 bits a weight
        ))

    tok, hid, inter = (32, 256, 1024) if quick else (128, 1024, 4096)
    s1, s2 = 1 / np.sqrt(hid), 1 / np.sqrt(inter)
    gelu_np = None if np_erf is None else (lambda h: 0.5 * h * (1 + np_erf(h / np.sqrt(2)).astype(np.float32)))
    cases.append(Case(
        f"mlp {tok}x{hid} -> {inter}", [rand(rng, tok, hid), rand(rng, hid, inter, lo=-s1, hi=s1),
                                        rand(rng, inter, hid, lo=-s2, hi=s2)],
        lambda cx, d: LF.gelu(cx.tensor(d[0].shape, name="x").set(d[0]) @ cx.parameter(d[1].shape, name="w1")
                              .set(d[1])) @ cx.parameter(d[2].shape, name="w2").set(d[2]),
        lambda x, w1, w2: torch.nn.functional.gelu(x @ w1) @ w2,
        None if gelu_np is None else (lambda x, w1, w2: gelu_np(x @ w1) @ w2),
        flops=2.0 * tok * hid * inter * 2,
    ))

    # One decode step's grouped-query attention over a KV cache in luminal's
    # layout (past, batch, kv heads, head dim): both frameworks get it as
    # (batch, kv heads, past, head dim) views, through the same SDPA call.
    heads, kv, hd = 32, 8, 128

    def decode_attention(sdpa: Callable[..., Any], q: Any, k: Any, v: Any) -> Any:
        return sdpa(q.permute(0, 2, 1, 3), k.permute(1, 2, 0, 3), v.permute(1, 2, 0, 3),
                    enable_gqa=True).permute(0, 2, 1, 3)

    for past in ((512,) if quick else (512, 4096)):
        cases.append(Case(
            f"GQA decode attn, past {past}",
            [rand(rng, 1, 1, heads, hd), rand(rng, past, 1, kv, hd), rand(rng, past, 1, kv, hd)],
            lambda cx, d: decode_attention(LF.scaled_dot_product_attention,
                                           *(cx.tensor(a.shape, name=f"x{i}").set(a) for i, a in enumerate(d))),
            lambda q, k, v: decode_attention(torch.nn.functional.scaled_dot_product_attention, q, k, v),
            flops=4.0 * heads * past * hd,
        ))

    # Causal self-attention over a prompt (prefill): scores, the causal mask,
    # softmax (-inf in half its scores) and the values product.
    heads, hd = (4, 64) if quick else (16, 64)
    for seq in ((256,) if quick else ARGS.causal_lengths):
        cases.append(Case(
            f"causal attention {heads}x{seq}x{hd}", [rand(rng, 1, heads, seq, hd) for _ in range(3)],
            lambda cx, d: LF.scaled_dot_product_attention(
                *(cx.tensor(a.shape, name=f"x{i}").set(a) for i, a in enumerate(d)), is_causal=True),
            lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
            flops=4.0 * heads * seq * seq * hd,
        ))

    seq, d_model, heads = (32, 256, 4) if quick else (128, 1024, 16)
    torch.manual_seed(0)
    tlayer = torch.nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=4 * d_model, dropout=0.0,
                                              activation="gelu", batch_first=True, norm_first=True).eval()
    llayer = lnn.TransformerEncoderLayer(d_model, heads, dim_feedforward=4 * d_model, dropout=0.0,
                                         activation="gelu", batch_first=True, norm_first=True).eval()
    llayer.load_state_dict(tlayer.state_dict())
    cases.append(Case(
        f"transformer block 1x{seq}x{d_model}", [rand(rng, 1, seq, d_model)],
        lambda cx, d: llayer(cx.tensor(d[0].shape, name="src").set(d[0])),
        tlayer, torch_module=tlayer,
        flops=2.0 * seq * d_model * d_model * 12 + 4.0 * seq * seq * d_model,
        tol=(RTOL, 2e-3),
    ))
    return cases


def main() -> None:
    if ARGS.threads is not None:
        torch.set_num_threads(ARGS.threads)
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} (both frameworks)")
    print(f"cores: {cores} ({usable} usable) | torch {torch.__version__} (threads: {torch.get_num_threads()}) | "
          f"numpy {np.__version__} | luminal OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset (all cores)')}")
    use_compile = not ARGS.quick
    print(f"best of up to {REPEATS} runs after a warm-up; ratio = peer / luminal (> 1: luminal faster); "
          f"torch.compile {'on' if use_compile else 'skipped (--quick)'}")
    print("lm compile s = graph build + compile; built kernels are cached on disk (a rerun hits the cache; "
          "LUMINAL_CACHE_DIR=$(mktemp -d) for a cold build)\n")
    print(HEADER)
    for case in make_cases(ARGS.quick):
        if ARGS.only in case.name:
            run_case(case, use_compile)


if __name__ == "__main__":
    main()
