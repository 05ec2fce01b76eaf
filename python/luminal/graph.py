"""``Graph``: where tensors live, and the entry point to compile and run."""

from __future__ import annotations

import math
from types import TracebackType
from typing import TYPE_CHECKING, Any, Sequence, cast

import numpy as np

from luminal import _core
from luminal._core import Expr
from luminal._shape import DimLike, as_expr, as_shape
from luminal.compilers import Compiler, flatten_compilers
from luminal.dtype import check_dtype

if TYPE_CHECKING:
    from luminal.tensor import Tensor

_current: list[Graph] = []


class VerificationError(RuntimeError):
    """A compiled graph disagreed with the reference executor (``verify=True``)."""


class Graph:
    """A lazy computation graph of the 12 primitive ops.

    >>> import luminal as lm
    >>> cx = lm.Graph()
    >>> a = cx.tensor((3, 1)).set([[1.0], [2.0], [3.0]])
    >>> b = cx.tensor((1, 4)).set([[1.0, 2.0, 3.0, 4.0]])
    >>> c = a.matmul(b).retrieve()
    >>> cx.compile(lm.GenericCompiler())
    >>> cx.execute()
    >>> c.numpy().shape
    (3, 4)

    ``with cx:`` makes ``cx`` the current graph for functions that create
    tensors from nothing.
    """

    def __init__(self) -> None:
        self._core = _core.Graph()
        self._names: dict[int, str] = {}
        self._retrieved: list[Tensor] = []
        self._reference: _core.Graph | None = None  # uncompiled copy, for verify

    # ---- making tensors ----------------------------------------------------------
    def tensor(
        self, shape: DimLike | Sequence[DimLike], name: str | None = None, dtype: str = "f32"
    ) -> Tensor:
        """A new input. Dims are ints or names of symbolic dims.

        >>> x = cx.tensor(("seq", 64), name="x")
        >>> ids = cx.tensor((8,), dtype="i32")
        """
        return self._new_input(shape, name, dtype, parameter=False)

    def parameter(
        self, shape: DimLike | Sequence[DimLike], name: str | None = None, dtype: str = "f32"
    ) -> Tensor:
        """A new parameter: an input meant to be set once (weights). Compilers may
        treat its data as fixed across runs (pre-transpose, quantize, upload once).

        >>> w = cx.parameter((8, 4), name="fc.weight").set(np.zeros((8, 4)))
        """
        return self._new_input(shape, name, dtype, parameter=True)

    def _new_input(
        self, shape: DimLike | Sequence[DimLike], name: str | None, dtype: str, parameter: bool
    ) -> Tensor:
        from luminal.tensor import Tensor

        dims = as_shape(shape, "parameter" if parameter else "tensor")
        label = name if name is not None else f"input{len(self._names)}"
        handle = self._core.add_input(dims, label, check_dtype(dtype), parameter)
        self._names[handle] = label
        return Tensor(self, handle, _core.ShapeTracker.contiguous(dims), dtype)

    def constant(self, value: float | int | Expr | str) -> Tensor:
        """A rank-0 constant; a dim name or ``Expr`` gives its value at run time.

        >>> n = cx.constant("seq")       # the bound value of seq, as a float
        """
        from luminal.tensor import Tensor

        if isinstance(value, (str, Expr)):
            handle = self._core.add_symbolic_constant(as_expr(value, "constant"))
        else:
            handle = self._core.add_constant(float(value))
        return Tensor(self, handle, _core.ShapeTracker.contiguous([]))

    # ---- dims and data -----------------------------------------------------------
    def set_dim(self, name: str, value: int) -> None:
        """Bind the symbolic dim ``name`` for the next ``execute()``."""
        self._core.set_dim(name, int(value))
        if self._reference is not None:
            self._reference.set_dim(name, int(value))

    @property
    def dims(self) -> dict[str, int]:
        """The bound symbolic dims."""
        return dict(self._core.dims)

    def _set_input(self, handle: int, flat: np.ndarray, keep_results: bool = False) -> None:
        self._core.set_input(handle, flat, keep_results)
        if self._reference is not None and handle < self._reference.handle_count():
            self._reference.share_input(self._core, handle)

    def _retrieve(self, t: Tensor) -> None:
        self._core.retrieve(t._handle)
        if self._reference is not None and self._in_reference(t):
            self._reference.retrieve(t._handle)
        if all(r is not t for r in self._retrieved):
            self._retrieved.append(t)

    # ---- feeding results back ----------------------------------------------------
    def assign(self, target: Tensor, value: Tensor) -> None:
        """After every ``execute()``, input ``target`` holds ``value``'s result
        (same shape, no copy). Optimizers update parameters this way.

        >>> step = cx.tensor((1,)).set([0.0])
        >>> cx.assign(step, step + 1)   # counts executions
        """
        self._check_feedback("assign", target, value)
        self._core.assign(target._handle, value._materialized()._handle)

    def append(self, target: Tensor, rows: Tensor) -> None:
        """After every ``execute()``, ``rows`` is appended along dim 0 of input
        ``target`` (in place, amortized). ``target``'s dim 0 should be a symbolic
        dim: rebind it (``set_dim``) before the next run. KV caches grow this way.

        >>> cache = cx.tensor(("past", 4))
        >>> cx.append(cache, new_rows)   # new_rows: (n, 4)
        """
        self._check_feedback("append", target, rows)
        node_shape = self._core.node_shape(rows._handle)
        if rows._view.is_identity and math.prod(rows._view.shape) == math.prod(node_shape):
            # the node's data in its own order (a reshape, a permute of size-1 dims): no copy
            self._core.append(target._handle, rows._handle, rows._view.shape)
        else:
            self._core.append(target._handle, rows._materialized()._handle)

    def _check_feedback(self, op: str, target: Tensor, value: Tensor) -> None:
        if self._reference is not None:
            raise RuntimeError(f"[{op}] call {op}() before compile(verify=True)")
        for t in (target, value):
            if t.graph is not self:
                raise ValueError(f"[{op}] a tensor belongs to another graph")
        if not self._core.is_input(target._handle) or not target._view.is_identity:
            raise ValueError(f"[{op}] the target must be an input tensor (cx.tensor or "
                             "cx.parameter), not a computed tensor or a view")
        if target.dtype != value.dtype:
            raise TypeError(f"[{op}] value dtype {value.dtype} differs from target dtype "
                            f"{target.dtype}")

    # ---- compile and run ---------------------------------------------------------
    def compile(self, *compilers: Compiler | Sequence[Compiler], verify: bool = False) -> Graph:
        """Run compilers over the graph, in order. Tensors stay valid.

        With ``verify=True`` every later ``execute()`` also runs the uncompiled
        graph on the reference executor and raises ``VerificationError`` naming
        the first retrieved tensor whose values differ and the first kernel
        (in execution order) whose output differs, or saying that every kernel
        agrees and a graph rewrite changed the result.

        >>> cx.compile(lm.GenericCompiler(), verify=True)
        """
        if verify and self._reference is None:
            self._reference = self._core.clone()  # shares input data, not copies
        for c in compilers:
            for one in flatten_compilers(c):
                one.run(self)
        return self

    def execute(self) -> Graph:
        """Compute every retrieved tensor. Raises naming an unset input or unbound dim.

        Ctrl-C (a signal whose Python handler raises) stops a CPU or
        reference run at a kernel boundary (checked every ~20 ms) and raises
        there; the next ``execute()`` runs whole.

        >>> cx.execute()          # then y.numpy() for a retrieved y
        """
        self._core.execute()
        if self._reference is not None:
            self._verify()
        return self

    def _in_reference(self, t: Tensor) -> bool:
        assert self._reference is not None
        return t._handle < self._reference.handle_count()

    def _verify(self, rtol: float = 1e-4, atol: float = 1e-5) -> None:
        assert self._reference is not None
        self._reference.execute()
        for t in self._retrieved:
            if not self._in_reference(t):
                continue  # built after compile(): nothing compiled to compare
            got = self._core.read(t._handle, t._view)
            want = self._reference.read(t._handle, t._view)
            if not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
                diff = np.nanmax(np.abs(got.astype(np.float64) - want)) if got.size else 0.0
                raise VerificationError(
                    f"[verify] retrieved tensor {t._label()} {t.shape} differs from the "
                    f"reference executor (max abs difference {diff:g}); "
                    + self._first_difference(rtol, atol)
                )

    def _first_difference(self, rtol: float, atol: float) -> str:
        """Where a disagreement starts: the first kernel whose output differs
        when the compiled program and the reference executor both run the
        compiled graph (this re-runs it: results become that run's)."""
        first = _core.first_difference(self._core, rtol, atol)
        if first is None:
            return ("every kernel agrees with the reference executor on the compiled graph, "
                    "so a graph rewrite changed the result (compile with fewer compilers to "
                    "find which)")
        shape = tuple(cast("list[int]", first["shape"]))
        return (f"the first kernel to differ is {first['kernel']} computing node {first['node']} "
                f"({first['op']}, shape {shape}): element {first['index']} is {first['got']:g}, "
                f"the reference {first['want']:g} (max abs difference {first['max_abs']:g}); "
                "the kernels before it agree")

    # ---- inspection --------------------------------------------------------------
    def node_count(self) -> int:
        """Live nodes in the graph (inputs included)."""
        return int(self._core.node_count())

    def kernel_count(self) -> int:
        """Kernels in the compiled program (0 on the reference executor)."""
        return int(_core.kernel_count(self._core))

    def kernel_source(self) -> str:
        """The generated kernel source of the compiled program ("" if none)."""
        return str(_core.kernel_source(self._core))

    def nodes(self) -> list[dict[str, Any]]:
        """One dict per live node, producers first: id, op, inputs, shape, ..."""
        return list(self._core.nodes())

    def to_dot(self) -> str:
        """The graph in Graphviz DOT. Always works; see ``display()`` for a picture."""
        from luminal.display import to_dot

        return to_dot(self)

    def display(self, path: str | None = None, format: str = "svg") -> str | None:
        """Render the graph with Graphviz: inline in Jupyter, else to ``path``
        (a temporary file when None), whose name is returned."""
        from luminal.display import display

        return display(self, path, format)

    # ---- current graph -----------------------------------------------------------
    def __enter__(self) -> Graph:
        _current.append(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _current.remove(self)

    def __repr__(self) -> str:
        return f"Graph(nodes={self.node_count()}, dims={self.dims})"

    # ---- creation (hl_ops/creation.py) --------------------------------------------
    def arange(
        self,
        start: float | DimLike,
        end: float | DimLike | None = None,
        step: float = 1,
        *,
        dtype: str | None = None,
    ) -> Tensor:
        """``torch.arange`` in this graph; integer bounds are exact ("i32") and may
        be dim names. ``cx.arange("seq")``"""
        from luminal.hl_ops import creation

        return creation.arange(start, end, step, dtype=dtype, graph=self)

    def linspace(
        self, start: float, end: float, steps: DimLike, *, dtype: str = "f32"
    ) -> Tensor:
        """``torch.linspace`` in this graph. ``cx.linspace(0, 1, 5)``"""
        from luminal.hl_ops import creation

        return creation.linspace(start, end, steps, dtype=dtype, graph=self)

    def full(
        self, size: DimLike | Sequence[DimLike], fill_value: float | DimLike, *, dtype: str | None = None
    ) -> Tensor:
        """``fill_value`` everywhere (int fill: "i32"). ``cx.full((2, "seq"), 0.5)``"""
        from luminal.hl_ops import creation

        return creation.full(size, fill_value, dtype=dtype, graph=self)

    def zeros(self, *size: Any, dtype: str = "f32") -> Tensor:
        """Zeros: ``cx.zeros(2, 3)`` or ``cx.zeros((2, "seq"))``."""
        from luminal.hl_ops import creation

        return creation.zeros(*size, dtype=dtype, graph=self)

    def ones(self, *size: Any, dtype: str = "f32") -> Tensor:
        """Ones: ``cx.ones(2, 3)`` or ``cx.ones((2, "seq"))``."""
        from luminal.hl_ops import creation

        return creation.ones(*size, dtype=dtype, graph=self)

    def eye(self, n: DimLike, m: DimLike | None = None, *, dtype: str = "f32") -> Tensor:
        """The ``n`` x ``m`` identity. ``cx.eye(3)``"""
        from luminal.hl_ops import creation

        return creation.eye(n, m, dtype=dtype, graph=self)


def current_graph(op: str = "op") -> Graph:
    """The innermost ``with graph:`` block's graph; a clear error outside one."""
    if not _current:
        raise RuntimeError(
            f"[{op}] no current graph: call it inside `with graph:` or as graph.{op}(...)"
        )
    return _current[-1]
