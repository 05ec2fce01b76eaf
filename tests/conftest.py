"""Shared test fixtures. Backends are listed once here: every test that takes
the ``backend`` fixture runs on each (reference executor, generic-compiled;
CPU-compiled, and CUDA-compiled when a GPU is usable)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, List

import numpy as np
import pytest

import luminal as lm


@dataclass
class Backend:
    name: str
    make_compilers: Callable[[], List[lm.Compiler]] = field(default=list)

    def compile(self, cx: lm.Graph) -> lm.Graph:
        """Compile ``cx`` for this backend (verify=True: also checks vs reference)."""
        compilers = self.make_compilers()
        if compilers:
            cx.compile(*compilers, verify=True)
        return cx

    def run(self, cx: lm.Graph) -> lm.Graph:
        """Compile (first call only) and execute."""
        if not getattr(cx, "_test_compiled", False):
            self.compile(cx)
            cx._test_compiled = True  # type: ignore[attr-defined]
        return cx.execute()


# A path here is tests/cuda_emulator's library, opened in place of the CUDA
# driver, NVRTC and cuBLAS: the CUDA backend then runs on the host
# (tests/test_cuda_emulated.py runs the CUDA tests so, in a process of their own).
_EMULATOR = os.environ.get("LUMINAL_CUDA_EMULATOR")
if _EMULATOR:
    lm._core.cuda_open(driver=_EMULATOR, nvrtc=_EMULATOR, cublas=_EMULATOR)

BACKENDS = [
    Backend("reference"),
    Backend("generic", lambda: [lm.GenericCompiler()]),
    Backend("cpu", lambda: [lm.GenericCompiler(), lm.CPUCompiler()]),
]
if lm.cuda.is_available():
    BACKENDS.append(Backend("cuda", lambda: [lm.GenericCompiler(), lm.CUDACompiler()]))


@pytest.fixture(params=BACKENDS, ids=[b.name for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
