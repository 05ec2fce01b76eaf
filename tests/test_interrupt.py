"""A signal during execute() (Ctrl-C) ends the run between kernels, raising
the signal handler's exception, and leaves the graph ready for the next run."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import luminal as lm

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs POSIX signals")

STEPS = 60


class Stop(Exception):
    pass


def chain(compiled: bool, width: int) -> tuple[lm.Graph, lm.Tensor, lm.Tensor, np.ndarray]:
    """STEPS products of an ("n", width) input with a fixed matrix, each its
    own kernel: a long run of short kernels."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
    cx = lm.Graph()
    x = cx.tensor(("n", width), name="x")
    y = x
    for _ in range(STEPS):
        y = (y @ cx.parameter((width, width)).set(w)).sin()
    y = y.retrieve()
    if compiled:
        cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    return cx, x, y, w


def expected(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    y = x.astype(np.float64)
    for _ in range(STEPS):
        y = np.sin(y @ w)
    return y


def timed_run(cx: lm.Graph) -> float:
    t = time.perf_counter()
    cx.execute()
    return time.perf_counter() - t


@pytest.mark.parametrize("compiled", [True, False], ids=["cpu", "reference"])
def test_a_signal_ends_execute_between_kernels(compiled: bool) -> None:
    width, rows = (256, 8192) if compiled else (64, 200)  # ~0.5 s here
    cx, x, y, w = chain(compiled, width)
    x.set(np.random.default_rng(1).standard_normal((rows, width)).astype(np.float32))
    timed_run(cx)  # warm: buffers, BLAS threads
    full = timed_run(cx)

    def stop(signum: int, frame: Any) -> None:
        raise Stop

    old = signal.signal(signal.SIGUSR1, stop)
    timer = threading.Timer(0.1 * full, signal.raise_signal, (signal.SIGUSR1,))
    try:
        t = time.perf_counter()
        timer.start()
        with pytest.raises(Stop):
            cx.execute()
            time.sleep(full)  # a missed signal still arrives here, but too late
        stopped = time.perf_counter() - t
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, old)
    assert stopped < 0.6 * full, f"stopped after {stopped:.2f} s of a {full:.2f} s run"

    # the next run starts clean, at another length too
    small = np.random.default_rng(2).standard_normal((5, width)).astype(np.float32)
    x.set(small)
    cx.execute()
    np.testing.assert_allclose(y.numpy(), expected(small, w), atol=1e-4)


def test_a_worker_thread_run_is_not_interrupted() -> None:
    """Python runs signal handlers in its main thread only: a run in another
    thread goes on, and the handler runs in the main thread."""
    cx, x, y, w = chain(True, 256)
    data = np.random.default_rng(3).standard_normal((2048, 256)).astype(np.float32)
    x.set(data)
    seen: list[int] = []
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    try:
        worker = threading.Thread(target=cx.execute)
        worker.start()
        signal.raise_signal(signal.SIGUSR1)
        worker.join()
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert seen == [signal.SIGUSR1]
    np.testing.assert_allclose(y.numpy(), expected(data, w), atol=1e-4)


def test_a_compiler_killed_by_a_signal_is_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C reaches the C compiler too: a compiler that dies of a signal
    ends the compile, with no fallback build (slower, cached under the same
    key) tried after it, and a pending signal's handler raises there."""
    calls = tmp_path / "calls"
    cc = tmp_path / "cc"
    monkeypatch.setenv("CC", str(cc))
    monkeypatch.setenv("LUMINAL_CACHE_DIR", str(tmp_path / "cache"))

    def build() -> None:
        cx = lm.Graph()
        (cx.tensor((3,), name="x").set(np.ones(3, np.float32)) * 2.5).retrieve()
        cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
        cx.execute()

    def stop(signum: int, frame: Any) -> None:
        raise Stop

    for pending in (True, False):
        calls.write_text("")
        signal_self = f"kill -USR1 {os.getpid()}\n" if pending else ""
        cc.write_text(f"#!/bin/sh\necho run >> {calls}\n{signal_self}kill -INT $$\n")
        cc.chmod(0o755)
        old = signal.signal(signal.SIGUSR1, stop)
        try:
            with pytest.raises(Stop if pending else RuntimeError, match="" if pending else "stopped by a signal"):
                build()
        finally:
            signal.signal(signal.SIGUSR1, old)
        assert calls.read_text().split() == ["run"]
        assert not list((tmp_path / "cache").rglob("*.so"))
