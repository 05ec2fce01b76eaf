"""``Parameter`` and ``Buffer``: numpy data held by a module, bound lazily to
graphs as ``graph.parameter`` inputs.

The numpy array is the source of truth. Each graph the data is used in gets
one parameter input (created the first time, then cached), named by the
state_dict name; replacing the data (``p.data = ...``, ``load_state_dict``,
``nn.init``) re-sets it in every graph it is bound to, so compiled graphs see
the new values at their next ``execute()``.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from luminal.dtype import _as_numpy

if TYPE_CHECKING:
    from luminal.graph import Graph
    from luminal.tensor import Tensor


def as_array(data: Any, dtype: Any = np.float32) -> np.ndarray:
    """``data`` (numpy, torch tensor, list, number) as a fresh C-contiguous array
    of ``dtype`` (torch is never imported: tensors are read through their
    ``detach().cpu().numpy()``)."""
    arr = _as_numpy(data)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"expected numbers, got an array of {arr.dtype}")
    return np.array(arr, dtype=dtype, order="C", copy=True)


class _Binding:
    """One graph's parameter input for a ``Parameter``. The graph is held weakly."""

    __slots__ = ("graph_ref", "tensor")

    def __init__(self, graph: Graph, tensor: Tensor) -> None:
        self.graph_ref = weakref.ref(graph)
        # Keep the handle and view, not the Tensor: a Tensor holds its graph
        # strongly and would keep every graph a module was ever used in alive.
        self.tensor = (tensor._handle, tensor._view, tensor.dtype)

    def get(self) -> Tensor | None:
        from luminal.tensor import Tensor

        graph = self.graph_ref()
        if graph is None:
            return None
        handle, view, dtype = self.tensor
        return Tensor(graph, handle, view, dtype)


class Parameter:
    """A module weight: a float32 numpy array (``.data``) plus its graph inputs.

    >>> p = nn.Parameter(np.zeros((4, 3)))
    >>> w = p.tensor(cx)          # cx.parameter((4, 3)), set to p.data; cached
    >>> p.data = np.ones((4, 3))  # re-sets w: cx's next execute() sees ones
    """

    _kind = "parameter"

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        self._data = as_array(np.zeros((0,)) if data is None else data, self._default_dtype(data))
        self._data.flags.writeable = False
        self.requires_grad = requires_grad
        self.grad: np.ndarray | None = None
        self._bindings: dict[int, _Binding] = {}

    @staticmethod
    def _default_dtype(data: Any) -> Any:
        return np.float32

    # ---- data ------------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        """The values, as a read-only numpy array (an in-place edit could not
        reach the graphs). Assigning new values (same shape once bound)
        re-sets every graph input bound to this parameter."""
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        arr = as_array(value, self._data.dtype)
        if self._live_bindings() and arr.shape != self._data.shape:
            raise ValueError(
                f"[{self._kind}] new data of shape {arr.shape} for a {self._kind} of shape "
                f"{self._data.shape} that is already bound to a graph"
            )
        self._replace(arr)

    def _replace(self, arr: np.ndarray) -> None:
        """Take ``arr`` (already converted, owned) as the data; re-set graphs."""
        arr.flags.writeable = False
        self._data = arr
        self._push()

    def _push(self) -> None:
        """Re-set every live graph input from ``self._data``."""
        for t in self._live_bindings():
            t.set(self._data)

    def _live_bindings(self) -> list[Tensor]:
        out = []
        for key, b in list(self._bindings.items()):
            t = b.get()
            if t is None:
                del self._bindings[key]
            else:
                out.append(t)
        return out

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return int(self._data.ndim)

    def dim(self) -> int:
        return self.ndim

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self._data.size)

    def numpy(self) -> np.ndarray:
        """A copy of the values."""
        return self._data.copy()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._data.copy() if dtype is None else self._data.astype(dtype)

    def rows(self, index: Any) -> np.ndarray:
        """Rows ``index`` (an int array of any shape) of the values along the
        first dimension, as float32: an embedding lookup done on the host, as
        ``Generator`` does per step. A ``QuantizedParameter`` dequantizes
        only those rows.

        >>> emb.weight.rows([1, 5, 1])                      # (3, dim)
        """
        return np.asarray(self._data[np.asarray(index, np.int64)], np.float32)

    # ---- graphs ----------------------------------------------------------------
    def tensor(self, graph: Graph, name: str | None = None) -> Tensor:
        """This parameter's input in ``graph``: created (as ``graph.parameter``,
        named ``name``) and set the first time, the same tensor after that."""
        b = self._bindings.get(id(graph))
        if b is not None and b.graph_ref() is graph:
            t = b.get()
            assert t is not None
            return t
        t = graph.parameter(self.shape, name=name or self._kind, dtype=self._graph_dtype())
        self._fill(t)
        key = id(graph)
        bindings = self._bindings

        def forget(_: Any, key: int = key) -> None:
            bindings.pop(key, None)

        binding = _Binding(graph, t)
        binding.graph_ref = weakref.ref(graph, forget)
        bindings[key] = binding
        return t

    def _graph_dtype(self) -> str:
        return "f32" if self._data.dtype.kind == "f" else "i32"

    def _fill(self, t: Tensor) -> None:
        t.set(self._data)

    def is_bound(self, graph: Graph) -> bool:
        """Whether this parameter already has an input in ``graph``."""
        b = self._bindings.get(id(graph))
        return b is not None and b.graph_ref() is graph

    # ---- copying ---------------------------------------------------------------
    def __deepcopy__(self, memo: dict[int, Any]) -> Parameter:
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._data = self._data.copy()
        new._data.flags.writeable = False
        new.grad = None if self.grad is None else self.grad.copy()
        new._bindings = {}  # a copy is bound to no graph
        memo[id(self)] = new
        return new

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_bindings"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._data.flags.writeable = False

    def __repr__(self) -> str:
        return f"Parameter containing:\n{self._data!r}"


class Buffer(Parameter):
    """Module state that is not a trained weight (BatchNorm's running stats).
    Listed in ``state_dict`` unless ``persistent=False``; bound to graphs like
    a ``Parameter``. Integer data (``num_batches_tracked``) keeps its dtype."""

    _kind = "buffer"

    def __init__(self, data: Any = None, persistent: bool = True) -> None:
        super().__init__(data, requires_grad=False)
        self.persistent = persistent

    @staticmethod
    def _default_dtype(data: Any) -> Any:
        if data is None:
            return np.float32
        kind = _as_numpy(data).dtype.kind
        return np.int64 if kind in "biu" else np.float32

    def __repr__(self) -> str:
        return f"Buffer containing:\n{self._data!r}"


class QuantizedParameter(Parameter):
    """A weight kept in a compact storage format: GGML blocks ("q8_0",
    "q4_0", the k-quants "q2_k" .. "q6_k") or packed halves ("f16_packed", "bf16_packed", 2 bytes a value).
    Bound to graphs as an input of that dtype (the CPU compiler runs its
    products on the stored bytes: int8 dot products for GGML blocks when
    decoding and for k-quant prompts, weights widened in cache otherwise),
    never held as float32. ``.data`` dequantizes on request; assigning float data
    re-quantizes. Not trainable.

    >>> p = nn.QuantizedParameter.from_float(w, "q8_0")     # quantize a float array
    >>> p = nn.QuantizedParameter(gguf.raw(name), (4096, 4096), "q8_0")  # blocks as stored
    >>> p = nn.QuantizedParameter.from_float(w, "bf16_packed")  # half the bytes of float32
    """

    def __init__(self, blocks: Any, shape: tuple[int, ...], fmt: str = "q8_0") -> None:
        from luminal import quant

        if fmt not in quant.QUANTIZED:
            raise ValueError(f"[QuantizedParameter] unknown format {fmt!r}: expected one of "
                             f"{', '.join(quant.QUANTIZED)}")
        numel = int(np.prod(shape)) if shape else 1
        raw = np.asarray(blocks, np.uint8).reshape(-1)
        want = quant.storage_bytes(fmt, numel)  # ValueError unless whole blocks
        if raw.size != want:
            raise ValueError(f"[QuantizedParameter] shape {tuple(shape)} in {fmt} needs {want} "
                             f"bytes of blocks, got {raw.size}")
        super().__init__(np.zeros((0,), np.float32), requires_grad=False)
        self.format = fmt
        self._shape = tuple(int(d) for d in shape)
        self._blocks = raw

    @classmethod
    def from_float(cls, data: Any, fmt: str = "q8_0") -> QuantizedParameter:
        from luminal import quant

        arr = as_array(data)
        return cls(quant.quantize(arr, fmt), tuple(arr.shape), fmt)

    @property
    def data(self) -> np.ndarray:
        from luminal import quant

        out = quant.dequantize(self._blocks, self.format, self._shape)
        out.flags.writeable = False
        return out

    @data.setter
    def data(self, value: Any) -> None:
        from luminal import quant

        arr = as_array(value)
        if arr.shape != self._shape:
            raise ValueError(f"[QuantizedParameter] new data of shape {arr.shape}, expected {self._shape}")
        self._replace(arr)

    def rows(self, index: Any) -> np.ndarray:
        from luminal import quant

        idx = np.asarray(index, np.int64)
        if not self._shape:
            raise ValueError("[QuantizedParameter] rows() of a 0-d parameter")
        count, cols = self._shape[0], int(np.prod(self._shape[1:]))
        try:
            row_bytes = quant.storage_bytes(self.format, cols)  # ValueError unless rows are whole blocks
        except ValueError:
            return self.data[idx]
        if idx.size and (idx.min() < -count or idx.max() >= count):
            raise IndexError(f"[QuantizedParameter] row index out of range for {count} rows")
        picked = self._blocks.reshape(count, row_bytes)[idx.reshape(-1)]
        return quant.dequantize(picked, self.format, idx.shape + self._shape[1:])

    def _replace(self, arr: np.ndarray) -> None:
        from luminal import quant

        self._blocks = quant.quantize(arr, self.format)
        self._push()

    def _push(self) -> None:
        for t in self._live_bindings():
            t.set_blocks(self._blocks)

    @property
    def blocks(self) -> np.ndarray:
        """The stored bytes (GGML blocks or packed halves), a flat uint8 array."""
        return self._blocks

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return len(self._shape)

    def numel(self) -> int:
        return int(np.prod(self._shape)) if self._shape else 1

    def numpy(self) -> np.ndarray:
        return self.data.copy()

    def _graph_dtype(self) -> str:
        return self.format

    def _fill(self, t: Tensor) -> None:
        t.set_blocks(self._blocks)

    def __repr__(self) -> str:
        return f"QuantizedParameter({self.format}, shape={self._shape})"
