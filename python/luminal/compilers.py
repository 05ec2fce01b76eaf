"""Compilers: values with ``run(graph)`` that rewrite the graph. They compose
as a list; ``Looped`` repeats to a fixed point."""

from __future__ import annotations

import os
import sys
import warnings
from typing import TYPE_CHECKING, Protocol, Sequence, cast, runtime_checkable

from luminal import _core, _env

if TYPE_CHECKING:
    from luminal.graph import Graph


@runtime_checkable
class Compiler(Protocol):
    def run(self, graph: Graph) -> None: ...


def flatten_compilers(c: Compiler | Sequence[Compiler]) -> list[Compiler]:
    """A compiler or a list of them, as a list."""
    if isinstance(c, (list, tuple)):
        return [one for one in c]
    return [cast(Compiler, c)]


class _CorePass:
    """A pass implemented in C++ (csrc/compiler)."""

    _fn = staticmethod(_core.generic_compile)

    def run(self, graph: Graph) -> None:
        type(self)._fn(graph._core)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class RemoveUnusedNodes(_CorePass):
    """Drop computed nodes that no retrieved tensor needs."""

    _fn = staticmethod(_core.remove_unused_nodes)


class CSE(_CorePass):
    """Common subexpression elimination: merge identical nodes."""

    _fn = staticmethod(_core.common_subexpression_elimination)


class ConstantFolding(_CorePass):
    """Evaluate ops whose inputs are all constants."""

    _fn = staticmethod(_core.constant_folding)


class ArithmeticSimplification(_CorePass):
    """``x+0`` and ``x*1``. Never ``x*0`` (inf*0 is NaN) nor ``recip(recip(x))``
    (in float32 ``1/(1/x)`` is not always ``x``)."""

    _fn = staticmethod(_core.arithmetic_simplification)


class RemoveRedundantContiguous(_CorePass):
    """Drop ``Contiguous`` nodes whose input is already row-major."""

    _fn = staticmethod(_core.remove_redundant_contiguous)


class GenericCompiler(_CorePass):
    """All generic simplifications, repeated until the graph stops changing.

    >>> cx.compile(lm.GenericCompiler())
    """

    _fn = staticmethod(_core.generic_compile)


class Looped:
    """Run ``compilers`` in order until a full round changes nothing.

    >>> cx.compile(lm.Looped([lm.CSE(), lm.ConstantFolding()]))
    """

    def __init__(self, compilers: Compiler | Sequence[Compiler], max_rounds: int = 100):
        self.compilers = flatten_compilers(compilers)
        self.max_rounds = max_rounds

    def run(self, graph: Graph) -> None:
        for _ in range(self.max_rounds):
            before = graph._core.version
            for c in self.compilers:
                c.run(graph)
            if graph._core.version == before:
                return
        raise RuntimeError(f"[Looped] no fixed point after {self.max_rounds} rounds")


_ACCELERATE = (
    "/System/Library/Frameworks/Accelerate.framework/Accelerate",
    "/System/Library/Frameworks/Accelerate.framework/Versions/A/Frameworks/vecLib.framework/vecLib",
)


def _load_blas() -> str:
    """Load a BLAS once: Accelerate on macOS, else OpenBLAS from the
    scipy-openblas32 wheel; its path, or "" if none is available."""
    if _core.blas_path():
        return str(_core.blas_path())
    if sys.platform == "darwin":  # Apple's Accelerate (cblas_sgemm), always present
        for path in _ACCELERATE:
            if _core.load_blas(path):
                return path
    try:
        import scipy_openblas32  # type: ignore[import-untyped]
    except ImportError:
        return ""
    lib_dir = scipy_openblas32.get_lib_dir()
    for name in sorted(os.listdir(lib_dir)):
        if name.startswith("lib" + scipy_openblas32.get_library()) and ".so" in name:
            path = str(os.path.join(lib_dir, name))
            if _core.load_blas(path):
                return path
    return ""


class CPUCompiler:
    """Compile the graph for this CPU: fuse primitives into kernels (views fold
    into index math), print them as one C file, build it with the system C
    compiler (``$CC``, else cc/gcc/clang; cached on disk under
    ``luminal._core.cache_dir()``), and run them on all cores. Symbolic dims
    are kernel arguments: a new sequence length never rebuilds.

    Matrix products run through OpenBLAS (the ``scipy-openblas32`` wheel)
    when it is installed and the operand strides allow, else as generated
    kernels. Without a C compiler the graph stays on the reference executor,
    with one warning. ``verbose=True`` (or ``LUMINAL_DEBUG=2``) prints the kernels.

    ``float32_matmul_precision`` is PyTorch's setting of that name:
    ``"highest"`` (the default) computes float32 products in float32;
    ``"medium"`` lets products of 16 or more rows round their operands to
    bfloat16 (sums stay float32) and run on bf16 tiles where the CPU has
    them (AMX units on Intel Sapphire Rapids and later, AVX512-BF16 dot
    products on AMD Zen 4 and later; elsewhere nothing changes), ~2^-9
    relative error a term for several times the speed; products with f16
    or bf16 weights (``"f16_packed"``, ``"bf16_packed"``) too. Products with
    compact weights (Q8_0, k-quants) take the tiles at either setting.

    >>> cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    >>> cx.compile(lm.GenericCompiler(), lm.CPUCompiler(float32_matmul_precision="medium"))
    """

    _warned = False
    _warned_spin = False
    PRECISIONS = ("highest", "medium")

    def __init__(self, verbose: bool = False, float32_matmul_precision: str = "highest"):
        if float32_matmul_precision not in CPUCompiler.PRECISIONS:
            raise ValueError(
                f"CPUCompiler: float32_matmul_precision must be one of {', '.join(CPUCompiler.PRECISIONS)}, "
                f"got {float32_matmul_precision!r}"
            )
        self.verbose = verbose
        self.float32_matmul_precision = float32_matmul_precision

    def run(self, graph: Graph) -> None:
        if not _core.c_compiler():
            if not CPUCompiler._warned:
                warnings.warn(
                    "CPUCompiler: no C compiler found (set CC or install gcc/clang); "
                    "running on the reference executor",
                    RuntimeWarning,
                    stacklevel=2,
                )
                CPUCompiler._warned = True
            return
        _load_blas()
        if _env.OMP_WORKERS_SPIN and not CPUCompiler._warned_spin:
            warnings.warn(
                "CPUCompiler: OpenMP was loaded (by torch?) before luminal could set "
                "OMP_WAIT_POLICY=PASSIVE, so its idle workers spin against OpenBLAS's threads "
                "and kernels run up to 2-3x slower; set OMP_WAIT_POLICY=PASSIVE in the "
                "environment, or import luminal first",
                RuntimeWarning,
                stacklevel=2,
            )
            CPUCompiler._warned_spin = True
        _core.cpu_compile(graph._core, bf16_float_products=self.float32_matmul_precision == "medium")
        if self.verbose or os.environ.get("LUMINAL_DEBUG", "0") >= "2":
            print(_core.kernel_source(graph._core))

    def __repr__(self) -> str:
        if self.float32_matmul_precision != "highest":
            return f"CPUCompiler(float32_matmul_precision={self.float32_matmul_precision!r})"
        return "CPUCompiler()"
