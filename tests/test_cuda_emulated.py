"""The CUDA backend without a GPU: tests/cuda_emulator/emulator.cpp stands in
for the CUDA driver, NVRTC and cuBLAS (printed kernels compiled as C++, each
block's threads run as fibers, so barriers and warp shuffles hold), and the
CUDA tests run on it in a process of their own (the device a process opens is
for good). What runs is luminal's own CUDA path: the printer, CUDAProgram's
uploads, slots, launches and cuBLAS calls; each compiled graph is checked
against the reference executor. Speed means nothing there; a GPU run
(``python -m pytest -k cuda`` on a GPU machine) is still the word on numerics."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import luminal as lm

TESTS = Path(__file__).parent
# tests/test_cuda.py whole, and the CUDA case of the backend tests that reach
# every launch kind: reductions (warp and column), row blocks (softmax, norms),
# attention's batched products (cuBLAS), and training's gradients.
SELECTION = ["test_cuda.py", "test_ops_reduce.py", "test_functional_normalization.py",
             "test_nn_attention.py", "test_training.py"]


pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the emulator's fibers are glibc's ucontext"),
    pytest.mark.skipif(bool(os.environ.get("LUMINAL_CUDA_EMULATOR")), reason="this process already runs on it"),
    # On an H200 machine (torch 2.11 with its CUDA libraries) the emulated run
    # crashed (SIGSEGV) in test_products_match_numpy, also with the emulator
    # linked -Bsymbolic; the cause is not found yet. There the real GPU runs
    # the same tests.
    pytest.mark.skipif(lm.cuda.is_available(), reason="a GPU is usable here: tests/test_cuda.py runs on it"),
]


def cxx() -> str:
    found = shutil.which(os.environ.get("CXX", "g++"))
    if not found:
        pytest.skip("no C++ compiler to build the CUDA emulator")
    return found


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cuda_emulator") / "libcuda_emulator.so"
    subprocess.run([cxx(), "-std=c++17", "-O1", "-shared", "-fPIC", "-o", str(out),
                    str(TESTS / "cuda_emulator" / "emulator.cpp"), "-ldl"], check=True)
    return out


def run_on_emulator(emulator: Path, tmp_path: Path, files: list[str], select: str = "cuda",
                    **env: str) -> tuple[str, int]:
    """pytest -k ``select`` over ``files`` on the emulator: the summary line and how many passed."""
    env = dict(os.environ, LUMINAL_CUDA_EMULATOR=str(emulator), LUMINAL_CUDA_EMULATOR_DIR=str(tmp_path / "kernels"),
               LUMINAL_CACHE_DIR=str(tmp_path / "cache"), **env)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-k", select,
                          *(str(TESTS / f) for f in files)],
                         env=env, cwd=TESTS.parent, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-4000:]
    # Every backend test's CUDA case ran (none is skipped for want of a GPU).
    assert "no usable CUDA GPU" not in run.stdout, run.stdout[-3000:]
    summary = run.stdout.strip().splitlines()[-1]
    return summary, int(re.search(r"(\d+) passed", summary).group(1))  # type: ignore[union-attr]


def test_cuda_tests_pass_on_the_emulator(emulator: Path, tmp_path: Path) -> None:
    summary, passed = run_on_emulator(emulator, tmp_path, SELECTION)
    assert passed >= 270, summary


def test_cuda_kernels_stay_in_their_buffers(emulator: Path, tmp_path: Path) -> None:
    """tests/test_cuda.py with the kernels built under AddressSanitizer (device
    buffers are allocated at their exact size): a kernel reading or writing
    past a buffer aborts the run with the kernel's name. The generation tests,
    slow under both, run in the selection above."""
    libasan, libstdcxx = (subprocess.run([cxx(), f"-print-file-name={lib}"], capture_output=True,
                                         text=True).stdout.strip() for lib in ("libasan.so", "libstdc++.so.6"))
    if not os.path.isabs(libasan) or not os.path.isabs(libstdcxx):
        pytest.skip("no libasan next to the C++ compiler")
    # libstdc++ preloaded too: ASan's exception interceptor needs the real __cxa_throw.
    summary, passed = run_on_emulator(emulator, tmp_path, ["test_cuda.py"], "cuda and not generation",
                                      LD_PRELOAD=f"{libasan} {libstdcxx}",
                                      ASAN_OPTIONS="detect_leaks=0",
                                      LUMINAL_CUDA_EMULATOR_FLAGS="-fsanitize=address")
    assert passed >= 30, summary
