"""CUDA: run compiled graphs on an NVIDIA GPU.

The same fused kernels the CPU compiler builds are printed as CUDA C, compiled
at run time by NVRTC for the GPU's own architecture (cached on disk under
``luminal._core.cache_dir()``), and matrix products go to cuBLAS. The driver,
NVRTC and cuBLAS are loaded when first needed: luminal installs and imports on
machines without CUDA, and ``is_available()`` says why a GPU cannot be used.

NVRTC and cuBLAS are found in the ``nvidia-*`` pip wheels (those PyTorch
installs: ``nvidia-cuda-nvrtc``, ``nvidia-cublas``), then in ``$CUDA_HOME``
(or ``/usr/local/cuda``), then on the loader's path.

>>> import luminal as lm
>>> if lm.cuda.is_available():
...     cx.compile(lm.GenericCompiler(), lm.CUDACompiler())
"""

from __future__ import annotations

import glob
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from luminal import _core

if TYPE_CHECKING:
    from luminal.graph import Graph

_opened: Optional[Dict[str, Any]] = None
_failure: Optional[str] = None


def _search_dirs() -> List[str]:
    dirs: List[str] = []
    for base in sys.path:
        dirs += sorted(glob.glob(os.path.join(base, "nvidia", "*", "lib")))
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            dirs += [os.path.join(home, "lib64"), os.path.join(home, "lib")]
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


def _version_key(path: str) -> List[int]:
    return [int(x) for x in re.findall(r"\d+", os.path.basename(path).split(".so", 1)[1])]


def find_library(stem: str) -> str:
    """Full path of ``lib<stem>.so[.N]`` in the pip wheels or CUDA toolkit
    (the newest version found), or "" to let the loader search.

    >>> lm.cuda.find_library("nvrtc")   # doctest: +SKIP
    '/usr/lib/python3/site-packages/nvidia/cu13/lib/libnvrtc.so.13'
    """
    for d in _search_dirs():
        found = [
            p for p in glob.glob(os.path.join(d, f"lib{stem}.so*"))
            if re.fullmatch(rf"lib{stem}\.so(\.\d+)*", os.path.basename(p))
        ]
        if found:
            return max(found, key=_version_key)
    return ""


def _open() -> Dict[str, Any]:
    global _opened, _failure
    if _opened is None:
        try:
            _opened = dict(_core.cuda_open(driver="", nvrtc=find_library("nvrtc"),
                                           cublas=find_library("cublas")))
        except RuntimeError as e:
            _failure = str(e)
            raise
    return _opened


def is_available() -> bool:
    """Whether a CUDA GPU, its driver and NVRTC can be used (``unavailable_reason()`` says why not).

    >>> lm.cuda.is_available()
    False
    """
    try:
        _open()
        return True
    except RuntimeError:
        return False


def unavailable_reason() -> str:
    """Why ``is_available()`` is False ("" when it is True)."""
    return "" if is_available() else (_failure or "unknown")


def device_info() -> Dict[str, Any]:
    """The GPU luminal runs on (device 0): name, compute capability,
    multiprocessors, memory in bytes, and whether cuBLAS loaded. Raises
    RuntimeError saying what is missing when there is none.

    >>> lm.cuda.device_info()["name"]   # doctest: +SKIP
    'NVIDIA H200'
    """
    return dict(_open())


def compile_source(source: str, arch: str = "sm_90") -> bytes:
    """Compile CUDA C with NVRTC alone (no GPU needed) and return the CUBIN;
    raises RuntimeError with NVRTC's log. For checking generated kernels on
    machines without a GPU."""
    return bytes(_core.nvrtc_compile(source, arch, find_library("nvrtc")))


def kernel_source(graph: Graph) -> str:
    """The CUDA C that ``CUDACompiler`` would build for ``graph``, printed
    without a GPU (the kernels of a compiled graph: ``graph.kernel_source()``)."""
    return str(_core.cuda_source(graph._core))


class CUDACompiler:
    """Compile the graph for the GPU: the CPU compiler's fused kernels printed
    as CUDA C (one thread per element, a warp per reduced output, a block per
    softmax/norm row), built by NVRTC, with matrix products on cuBLAS (float32,
    no TF32: results match the reference executor to rounding). Inputs stay on
    the GPU between runs while the graph holds the same buffer, so weights
    upload once and a KV cache uploads only its new rows; results are copied
    back after each run. Symbolic dims are kernel arguments: a new sequence
    length never rebuilds.

    >>> cx.compile(lm.GenericCompiler(), lm.CUDACompiler())
    """

    def __init__(self, verbose: bool = False):
        self.verbose = verbose

    def run(self, graph: Graph) -> None:
        try:
            _open()
        except RuntimeError as e:
            raise RuntimeError(f"[CUDACompiler] no usable CUDA GPU: {e}") from None
        _core.cuda_compile(graph._core)
        if self.verbose or os.environ.get("LUMINAL_DEBUG", "0") >= "2":
            print(_core.kernel_source(graph._core))

    def __repr__(self) -> str:
        return "CUDACompiler()"
