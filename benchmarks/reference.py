"""How slow is the reference executor? A baseline for the compilers to beat.

Runs luminal's reference executor (plain C++ loops over views, no fusion) and
numpy on the same data in the same process and prints times and ratios.

    python benchmarks/reference.py
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

import luminal as lm


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench(name: str, n: int, build: Callable[[lm.Tensor], lm.Tensor],
          ref: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...]) -> None:
    data = np.random.default_rng(0).uniform(0.1, 1.0, shape).astype(np.float32)
    cx = lm.Graph()
    x = cx.tensor(shape).set(data)
    y = build(x).retrieve()
    cx.compile(lm.GenericCompiler())
    cx.execute()
    np.testing.assert_allclose(y.numpy(), ref(data), rtol=1e-3, atol=1e-4)
    t_lm = best_of(cx.execute)
    t_np = best_of(lambda: ref(data))
    print(f"{name:<28} {n:>10,} {t_lm * 1e3:>10.2f} {t_np * 1e3:>10.2f} {t_lm / t_np:>8.1f}x")


def main() -> None:
    print(f"{'case':<28} {'elements':>10} {'luminal ms':>10} {'numpy ms':>10} {'ratio':>9}")
    for n in (1 << 20,):
        bench("elementwise chain (10 ops)", n,
              lambda x: ((x * 2 + 1).exp() * 0.5 - x).sin() * x + x.sqrt().reciprocal(),
              lambda a: np.sin(np.exp(a * 2 + 1) * 0.5 - a) * a + 1 / np.sqrt(a), (n,))
    bench("softmax 1024x1024", 1 << 20,
          lambda x: (x - x.amax(-1, keepdim=True)).exp() / (x - x.amax(-1, keepdim=True)).exp().sum(-1, keepdim=True),
          lambda a: np.exp(a - a.max(-1, keepdims=True)) / np.exp(a - a.max(-1, keepdims=True)).sum(-1, keepdims=True),
          (1024, 1024))
    bench("matmul 256x256x256", 256 * 256,
          lambda x: x @ x.T, lambda a: a @ a.T, (256, 256))


if __name__ == "__main__":
    main()
