"""One training step (forward + backward + AdamW) on CPU: luminal vs PyTorch eager vs torch.compile.

Two models, built once per framework from the same initial weights and fed
the same sequence of batches:

* ``mlp``: 784-512-512-10 with ReLU, cross-entropy, batch 128;
* ``lm``: a 4-layer pre-norm transformer encoder LM (hidden 256, 4 heads, FFN
  1024, vocab 256, causal mask, learned positions), batch 16 x 128 tokens,
  next-token cross-entropy.

luminal compiles the whole step (gradients and the AdamW update included)
into one graph; a step is ``x.set(batch); cx.execute()`` plus reading the
loss. PyTorch's step is ``zero_grad; loss = f(x); loss.backward();
opt.step()`` (torch.compile compiles the model; AdamW stays eager, foreach).
Each framework runs warm-up steps, then the median of the timed steps is
reported (fewer steps when one is slow). Because every framework starts from
the same weights and sees the same batches, their loss curves must agree: the
"max dloss" column is the largest |luminal - eager| loss difference over all
steps run. Ratios are peer time / luminal time, so > 1 means luminal is faster.
"lm build+compile s" is building the graph (autograd and optimizer included)
and compiling it; the C kernels are cached on disk, so a rerun hits the cache
(LUMINAL_CACHE_DIR=$(mktemp -d) for a cold build).

    python benchmarks/train.py                # full sizes
    python benchmarks/train.py --quick        # small sizes, few steps, no torch.compile
    python benchmarks/train.py --threads 2    # threads for luminal (OpenMP) and torch (default: all usable cores)
    python benchmarks/train.py --blas-threads 1   # single-threaded OpenBLAS inside luminal's OpenMP kernels

luminal's matrix products run on OpenBLAS, which starts its own worker threads
(as many as OMP_NUM_THREADS unless OPENBLAS_NUM_THREADS is set) next to
luminal's OpenMP threads; on a busy machine they contend for the cores, and
luminal's step time becomes erratic. ``--blas-threads 1`` measures luminal
without that contention.
"""

from __future__ import annotations

import argparse
import os


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Training-step benchmark: luminal vs PyTorch eager vs torch.compile.")
    p.add_argument("--quick", action="store_true", help="small sizes, few steps, skip torch.compile")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads for luminal (OMP_NUM_THREADS, set before import) and torch "
                        "(torch.set_num_threads); default: all usable cores")
    p.add_argument("--blas-threads", type=int, default=None, metavar="K",
                   help="set OPENBLAS_NUM_THREADS (luminal's GEMMs); by default the environment is left "
                        "as is, and OpenBLAS without it follows OMP_NUM_THREADS")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    p.add_argument("--cases", default="mlp,lm", help="comma-separated subset of: mlp, lm")
    return p.parse_args()


ARGS = parse_args()
THREADS = ARGS.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
# Both must be set before luminal (OpenMP reads them once) and torch are imported.
os.environ["OMP_NUM_THREADS"] = str(THREADS)
if ARGS.blas_threads is not None:
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.blas_threads)
# As in benchmarks/cpu.py: torch loads the same libgomp first and fixes the
# wait policy at import; PASSIVE is what luminal asks for without torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "1000")  # luminal's default too (luminal/_env.py)

import copy  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import luminal as lm  # noqa: E402
import luminal.nn as lnn  # noqa: E402
import luminal.nn.functional as LF  # noqa: E402

WARMUP = 1 if ARGS.quick else 3
STEPS = 3 if ARGS.quick else 10
MIN_STEPS = 3
TIME_BUDGET_S = 20.0 if ARGS.quick else 60.0  # per framework per case: fewer timed steps when slow
COMPILE_TIMEOUT_S = 180
LR, WEIGHT_DECAY = 1e-3, 0.01
LOSS_TOL = 1e-3  # same weights, same batches: the loss curves agree to float32 rounding


# ----------------------------------------------------------------------------- models

def torch_mlp(sizes: list[int]) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def luminal_mlp(sizes: list[int]) -> lnn.Sequential:
    layers: list[lnn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(lnn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(lnn.ReLU())
    return lnn.Sequential(*layers)


class TorchLM(torch.nn.Module):
    def __init__(self, vocab: int, seq: int, d: int, heads: int, ffn: int, layers: int) -> None:
        super().__init__()
        self.tok = torch.nn.Embedding(vocab, d)
        self.pos = torch.nn.Embedding(seq, d)
        layer = torch.nn.TransformerEncoderLayer(d, heads, ffn, dropout=0.0, activation="gelu",
                                                 batch_first=True, norm_first=True)
        self.blocks = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = torch.nn.LayerNorm(d)
        self.head = torch.nn.Linear(d, vocab)
        self.register_buffer("mask", torch.triu(torch.full((seq, seq), float("-inf")), 1), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) + self.pos.weight
        # is_causal=True: a hint that the mask is causal; without it torch checks the
        # mask's values every call, a graph break under torch.compile.
        x = self.blocks(x, mask=self.mask, is_causal=True)
        return self.head(self.norm(x))  # type: ignore[no-any-return]


class LuminalLM(lnn.Module):
    """TorchLM's twin (same parameter names, so its state_dict loads directly)."""

    def __init__(self, vocab: int, seq: int, d: int, heads: int, ffn: int, layers: int) -> None:
        super().__init__()
        self.tok = lnn.Embedding(vocab, d)
        self.pos = lnn.Embedding(seq, d)
        layer = lnn.TransformerEncoderLayer(d, heads, ffn, dropout=0.0, activation="gelu",
                                            batch_first=True, norm_first=True)
        self.blocks = lnn.TransformerEncoder(layer, layers)
        self.norm = lnn.LayerNorm(d)
        self.head = lnn.Linear(d, vocab)

    def forward(self, ids: lm.Tensor, mask: lm.Tensor) -> lm.Tensor:
        x = self.tok(ids) + self.pos.weight.tensor(ids.graph)
        x = self.blocks(x, mask=mask)
        return self.head(self.norm(x))  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- cases

@dataclass
class Case:
    name: str
    torch_model: torch.nn.Module
    batches: list[tuple[np.ndarray, np.ndarray]]     # (input, target) per step, shared by every framework
    build_luminal: Callable[[], tuple[lm.Graph, Callable[[np.ndarray, np.ndarray], float]]]
    torch_loss: Callable[[Callable[..., torch.Tensor], torch.Tensor, torch.Tensor], torch.Tensor]
    flops: float                                      # per training step (~3x forward matmul flops)


def make_mlp_case(quick: bool, steps: int) -> Case:
    sizes = [784, 256, 256, 10] if quick else [784, 512, 512, 10]
    batch = 64 if quick else 128
    torch.manual_seed(0)
    tmodel = torch_mlp(sizes)
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((batch, sizes[0])).astype(np.float32),
                rng.integers(0, sizes[-1], batch).astype(np.int64)) for _ in range(steps)]

    def build() -> tuple[lm.Graph, Callable[[np.ndarray, np.ndarray], float]]:
        model = luminal_mlp(sizes)
        model.load_state_dict(tmodel.state_dict())
        cx = lm.Graph()
        x = cx.tensor((batch, sizes[0]), name="x")
        y = cx.tensor((batch,), name="y", dtype="i32")
        loss = LF.cross_entropy(model(x), y).retrieve()
        lm.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY).minimize(loss)
        cx.compile(lm.GenericCompiler(), lm.CPUCompiler())

        def step(xb: np.ndarray, yb: np.ndarray) -> float:
            x.set(xb)
            y.set(yb.astype(np.int32))
            cx.execute()
            return loss.item()
        return cx, step

    flops = 6.0 * batch * sum(a * b for a, b in zip(sizes, sizes[1:]))
    name = f"mlp {'-'.join(map(str, sizes))} b{batch}"
    return Case(name, tmodel, batches, build,
                lambda m, x, y: torch.nn.functional.cross_entropy(m(x), y), flops)


def make_lm_case(quick: bool, steps: int) -> Case:
    vocab, seq, d, heads, ffn, layers, batch = (256, 64, 128, 4, 512, 2, 8) if quick else \
        (256, 128, 256, 4, 1024, 4, 16)
    torch.manual_seed(0)
    tmodel = TorchLM(vocab, seq, d, heads, ffn, layers)
    rng = np.random.default_rng(1)
    batches = []
    for _ in range(steps):
        # Targets are the inputs shifted by one, as in a real LM batch.
        window = rng.integers(0, vocab, (batch, seq + 1))
        batches.append((window[:, :-1].astype(np.int64), window[:, 1:].astype(np.int64)))

    def build() -> tuple[lm.Graph, Callable[[np.ndarray, np.ndarray], float]]:
        model = LuminalLM(vocab, seq, d, heads, ffn, layers)
        model.load_state_dict(tmodel.state_dict())
        cx = lm.Graph()
        ids = cx.tensor((batch, seq), name="ids", dtype="i32")
        tgt = cx.tensor((batch, seq), name="targets", dtype="i32")
        mask = cx.tensor((seq, seq), name="mask").set(np.triu(np.full((seq, seq), -np.inf, np.float32), 1))
        logits = model(ids, mask)
        loss = LF.cross_entropy(logits.reshape(batch * seq, vocab), tgt.reshape(batch * seq)).retrieve()
        lm.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY).minimize(loss)
        cx.compile(lm.GenericCompiler(), lm.CPUCompiler())

        def step(xb: np.ndarray, yb: np.ndarray) -> float:
            ids.set(xb.astype(np.int32))
            tgt.set(yb.astype(np.int32))
            cx.execute()
            return loss.item()
        return cx, step

    def torch_loss(m: Callable[..., torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(m(x).reshape(-1, vocab), y.reshape(-1))

    tokens = batch * seq
    matmul_params = layers * (4 * d * d + 2 * d * ffn) + d * vocab
    flops = 6.0 * tokens * matmul_params + 3 * layers * 4.0 * batch * seq * seq * d
    name = f"lm {layers}L d{d} h{heads} ffn{ffn} {batch}x{seq}"
    return Case(name, tmodel, batches, build, torch_loss, flops)


# ----------------------------------------------------------------------------- timing

@dataclass
class Timing:
    median_ms: float
    min_ms: float
    losses: list[float]  # of every step run, warm-up included


def run_steps(step: Callable[[np.ndarray, np.ndarray], float],
              batches: list[tuple[np.ndarray, np.ndarray]]) -> Timing:
    """WARMUP steps, then up to STEPS timed ones (fewer past TIME_BUDGET_S)."""
    losses, times = [], []
    t_start = None
    for i, (xb, yb) in enumerate(batches):
        t0 = time.perf_counter()
        losses.append(step(xb, yb))
        dt = time.perf_counter() - t0
        if i < WARMUP:
            continue
        times.append(dt)
        t_start = t_start if t_start is not None else t0
        if len(times) >= MIN_STEPS and time.perf_counter() - t_start > TIME_BUDGET_S:
            break
    return Timing(statistics.median(times) * 1e3, min(times) * 1e3, losses)


def torch_stepper(model: torch.nn.Module, case: Case, compiled: bool) -> Callable[[np.ndarray, np.ndarray], float]:
    fwd = torch.compile(model, dynamic=False) if compiled else model
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY, foreach=True)

    def step(xb: np.ndarray, yb: np.ndarray) -> float:
        opt.zero_grad(set_to_none=True)
        loss = case.torch_loss(fwd, torch.from_numpy(xb), torch.from_numpy(yb))
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        return float(loss.item())
    return step


def _alarm(signum: int, frame: Any) -> None:
    raise TimeoutError(f"torch.compile warm-up took more than {COMPILE_TIMEOUT_S} s")


def run_torch_compile(case: Case) -> tuple[Timing | None, float | None]:
    """(timing, compile + first step s), or (None, None) when torch.compile fails."""
    model = copy.deepcopy(case.torch_model).train()
    has_alarm = hasattr(signal, "SIGALRM")
    old: Any = None
    t0 = time.perf_counter()
    try:
        step = torch_stepper(model, case, compiled=True)
        if has_alarm:
            old = signal.signal(signal.SIGALRM, _alarm)
            signal.alarm(COMPILE_TIMEOUT_S)
        try:
            step(*case.batches[0])  # compiles forward and backward
        finally:
            if has_alarm:
                signal.alarm(0)
                signal.signal(signal.SIGALRM, old)
        first_s = time.perf_counter() - t0
        return run_steps(step, case.batches[1:]), first_s
    except Exception as e:  # noqa: BLE001 - any failure means "n/a", not a crash
        msg = (str(e).splitlines() or [""])[0][:100]
        print(f"  [torch.compile n/a for {case.name}: {type(e).__name__}: {msg}]")
        torch._dynamo.reset()
        return None, None


def fmt(v: float | None, width: int, prec: int = 2) -> str:
    return f"{'n/a':>{width}}" if v is None else f"{v:>{width}.{prec}f}"


def ratio(peer: float | None, mine: float | None) -> str:
    return f"{'n/a':>8}" if peer is None or mine is None else f"{peer / mine:>7.2f}x"


HEADER = (f"{'case':<34} {'lm build+compile s':>18} {'luminal ms':>10} {'eager ms':>10} {'t.compile ms':>12} "
          f"{'eager/lm':>8} {'tc/lm':>8} {'max dloss':>9}  GFLOP/s lm | eager")


def run_case(case: Case, use_compile: bool) -> None:
    eager = run_steps(torch_stepper(copy.deepcopy(case.torch_model).train(), case, compiled=False), case.batches)
    tc, tc_first_s = run_torch_compile(case) if use_compile else (None, None)

    t0 = time.perf_counter()
    _, lm_step = case.build_luminal()
    build_s = time.perf_counter() - t0
    lum = run_steps(lm_step, case.batches)
    t_lm, t_eager, t_tc = lum.median_ms, eager.median_ms, None if tc is None else tc.median_ms
    lm_losses, eager_losses = lum.losses, eager.losses

    n = min(len(lm_losses), len(eager_losses))
    dloss = float(np.max(np.abs(np.array(lm_losses[:n]) - np.array(eager_losses[:n]))))
    if dloss > LOSS_TOL:
        print(f"  [{case.name}: MISMATCH: luminal's losses differ from torch eager's by up to {dloss:.2e}]")
    gf = [f"{case.flops / (t * 1e-3) / 1e9:.1f}" for t in (t_lm, t_eager)]
    print(f"{case.name:<34} {build_s:>18.2f} {fmt(t_lm, 10)} {fmt(t_eager, 10)} {fmt(t_tc, 12)} "
          f"{ratio(t_eager, t_lm)} {ratio(t_tc, t_lm)} {dloss:>9.1e}  {gf[0]:>10} | {gf[1]}", flush=True)
    print(f"  loss step 0 -> {n - 1}: luminal {lm_losses[0]:.4f} -> {lm_losses[n - 1]:.4f}, "
          f"eager {eager_losses[0]:.4f} -> {eager_losses[n - 1]:.4f} | fastest step ms: luminal {lum.min_ms:.2f}, "
          f"eager {eager.min_ms:.2f}" + ("" if tc is None else f", t.compile {tc.min_ms:.2f} "
                                         f"(its first step, compiling: {tc_first_s:.1f} s)"))


def main() -> None:
    torch.set_num_threads(THREADS)
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    print(f"cores: {cores} ({usable} usable) | threads: luminal OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"torch {torch.get_num_threads()} | OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')} | "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} | "
          f"torch {torch.__version__}")
    use_compile = not (ARGS.quick or ARGS.no_compile)
    print(f"AdamW(lr={LR}, weight_decay={WEIGHT_DECAY}); {WARMUP} warm-up step(s), then the median of up to "
          f"{STEPS} steps ({TIME_BUDGET_S:.0f} s budget per framework, at least {MIN_STEPS}); ratio = peer / "
          f"luminal (> 1: luminal faster); torch.compile {'on' if use_compile else 'skipped'}\n")
    print(HEADER)
    steps = WARMUP + STEPS
    makers = {"mlp": make_mlp_case, "lm": make_lm_case}
    for name in ARGS.cases.split(","):
        run_case(makers[name.strip()](ARGS.quick, steps), use_compile)


if __name__ == "__main__":
    main()
