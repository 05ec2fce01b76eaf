"""``Tensor``: a handle on a graph node seen through a view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from luminal._core import Expr, ShapeError, ShapeTracker
from luminal._shape import Dim, fmt_shape, product, to_dim
from luminal import quant
from luminal.dtype import _as_numpy, from_storage, to_storage
from luminal.quant import QUANTIZED
from luminal.hl_ops import binary, indexing, linalg, movement, reduction, unary
from luminal.hl_ops import elementwise

if TYPE_CHECKING:
    from luminal.graph import Graph


class Tensor:
    """A lazy tensor: nothing is computed until ``graph.execute()``.

    Tensors are made by a ``Graph`` (``cx.tensor(...)``) or by ops on other
    tensors. A tensor stays valid through ``compile``: compilers rewrite the
    graph and the tensor follows.

    >>> cx = lm.Graph()
    >>> a = cx.tensor((2, 3)).set(np.ones((2, 3)))
    >>> b = (a * 2).sum(-1).retrieve()
    >>> cx.execute(); b.numpy()
    array([6., 6.], dtype=float32)
    """

    __slots__ = ("graph", "_handle", "_view", "dtype")

    # ---- ops: written once in hl_ops/, bound here as methods --------------------
    log2 = unary.log2
    exp2 = unary.exp2
    sin = unary.sin
    sqrt = unary.sqrt
    reciprocal = unary.reciprocal
    exp = unary.exp
    log = unary.log
    cos = unary.cos
    rsqrt = unary.rsqrt
    neg = unary.neg
    __neg__ = unary.neg

    add = binary.add
    mul = binary.mul
    sub = binary.sub
    div = binary.div
    fmod = binary.fmod
    remainder = binary.remainder
    lt = binary.lt
    gt = binary.gt
    le = binary.le
    maximum = binary.maximum
    minimum = binary.minimum
    ge = binary.ge
    eq = binary.eq
    ne = binary.ne
    __add__ = __radd__ = binary.add
    __mul__ = __rmul__ = binary.mul
    __sub__ = binary.sub
    __rsub__ = binary.rsub
    __truediv__ = binary.div
    __rtruediv__ = binary.rdiv
    __mod__ = binary.remainder
    __rmod__ = binary.rremainder
    __lt__ = binary.lt
    __gt__ = binary.gt
    __le__ = binary.le
    __ge__ = binary.ge
    __eq__ = binary.eq  # type: ignore[assignment]
    __ne__ = binary.ne  # type: ignore[assignment]
    __hash__ = object.__hash__  # usable as dict keys despite __eq__

    # elementwise (hl_ops/elementwise.py)
    abs = elementwise.abs
    __abs__ = elementwise.abs
    sign = elementwise.sign
    square = elementwise.square
    expm1 = elementwise.expm1
    log1p = elementwise.log1p
    pow = elementwise.pow
    __pow__ = elementwise.pow
    __rpow__ = elementwise.rpow
    tan = elementwise.tan
    tanh = elementwise.tanh
    sigmoid = elementwise.sigmoid
    erf = elementwise.erf
    relu = elementwise.relu
    relu6 = elementwise.relu6
    leaky_relu = elementwise.leaky_relu
    elu = elementwise.elu
    gelu = elementwise.gelu
    silu = elementwise.silu
    softplus = elementwise.softplus
    mish = elementwise.mish
    hardswish = elementwise.hardswish
    hardsigmoid = elementwise.hardsigmoid
    clamp = elementwise.clamp
    clip = elementwise.clip
    floor = elementwise.floor
    ceil = elementwise.ceil
    round = elementwise.round
    trunc = elementwise.trunc
    where = elementwise.where_method
    masked_fill = elementwise.masked_fill
    logical_and = elementwise.logical_and
    logical_or = elementwise.logical_or
    logical_not = elementwise.logical_not
    logical_xor = elementwise.logical_xor
    isnan = elementwise.isnan
    isinf = elementwise.isinf
    isfinite = elementwise.isfinite
    nan_to_num = elementwise.nan_to_num
    lerp = elementwise.lerp

    sum = reduction.sum
    mean = reduction.mean
    amax = reduction.amax
    max = reduction.max
    amin = reduction.amin
    min = reduction.min
    argmax = reduction.argmax
    argmin = reduction.argmin
    prod = reduction.prod
    var = reduction.var
    std = reduction.std
    logsumexp = reduction.logsumexp
    softmax = reduction.softmax
    log_softmax = reduction.log_softmax
    cumsum = reduction.cumsum
    cumprod = reduction.cumprod
    norm = reduction.norm
    all = reduction.all
    any = reduction.any

    matmul = linalg.matmul
    __matmul__ = linalg.matmul
    __rmatmul__ = linalg.rmatmul

    reshape = movement.reshape
    view = movement.view
    permute = movement.permute
    transpose = movement.transpose
    T = property(movement.reverse_dims)
    mT = property(movement.matrix_transpose)
    unsqueeze = movement.unsqueeze
    squeeze = movement.squeeze
    flatten = movement.flatten
    expand = movement.expand
    broadcast_to = movement.broadcast_to
    _expand_to = movement._expand_to
    contiguous = movement.contiguous
    pad = movement.pad
    __getitem__ = movement.getitem

    # movement & indexing (issue 3)
    split = movement.split
    chunk = movement.chunk
    unbind = movement.unbind
    narrow = movement.narrow
    flip = movement.flip
    roll = movement.roll
    repeat = movement.repeat
    repeat_interleave = movement.repeat_interleave
    gather = indexing.gather
    index_select = indexing.index_select
    take_along_dim = indexing.take_along_dim

    def __init__(self, graph: Graph, handle: int, view: ShapeTracker, dtype: str = "f32"):
        self.graph = graph
        self._handle = handle
        self._view = view
        self.dtype = dtype

    # ---- building blocks ----------------------------------------------------
    def _materialized(self) -> Tensor:
        """This tensor as a node's whole row-major output (a copy if it is a view)."""
        if self._view.is_identity and self._view.shape == self.graph._core.node_shape(self._handle):
            return self
        return self.contiguous()

    def _with_view(self, view: ShapeTracker) -> Tensor:
        return Tensor(self.graph, self._handle, view, self.dtype)

    def _apply(self, op: str, *others: Tensor, axis: int = -1) -> Tensor:
        """Add the primitive ``op`` over this tensor (and ``others``) as they are viewed."""
        inputs = [(t._handle, t._view) for t in (self, *others)]
        handle = self.graph._core.add_op(op, inputs, axis)
        view = ShapeTracker.contiguous(self.graph._core.node_shape(handle))
        return Tensor(self.graph, handle, view)

    # ---- shape ---------------------------------------------------------------
    @property
    def shape(self) -> tuple[Dim, ...]:
        """Dims as ints, or ``luminal.Expr`` where symbolic."""
        return tuple(to_dim(d) for d in self._view.shape)

    @property
    def ndim(self) -> int:
        return len(self._view.shape)

    def dim(self) -> int:
        return self.ndim

    def size(self, dim: int | None = None) -> Any:
        """The shape, or one dim of it, like ``torch.Tensor.size``."""
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> Dim:
        return to_dim(product(self._view.shape))

    # ---- data ----------------------------------------------------------------
    def set(self, data: Any) -> Tensor:
        """Give an input its data: a list, numpy array, torch tensor or number.

        Symbolic dims that are plain names (``"seq"``) are bound from the data's
        shape. A contiguous float32 array is copied once, into the graph.

        >>> x = cx.tensor(("seq", 4)).set(np.zeros((7, 4)))   # binds seq=7
        """
        core = self.graph._core
        if not core.is_input(self._handle) or not self._view.is_identity:
            raise ValueError("[set] only an input tensor (from graph.tensor) can be set")
        quantized = self.dtype in QUANTIZED
        arr = np.asarray(_as_numpy(data), np.float32) if quantized else to_storage(data, self.dtype)
        shape = self._view.shape
        if arr.ndim != len(shape):
            raise ShapeError(
                f"[set] data of shape {arr.shape} has rank {arr.ndim}, the input "
                f"{self._label()} has shape {fmt_shape(self.shape)}"
            )
        # Check every dim before binding any, so a failed set changes nothing.
        binds: dict[str, int] = {}
        for have, want in zip(arr.shape, shape):
            names = want.vars()
            if want.as_const() is None and len(names) == 1 and want == Expr.var(min(names)):
                name = min(names)
                if binds.setdefault(name, int(have)) != have:
                    raise ShapeError(
                        f"[set] data of shape {arr.shape} gives dim {name!r} two values "
                        f"for the input {self._label()} of shape {fmt_shape(self.shape)}"
                    )
        dims = {**self.graph.dims, **binds}
        for have, want in zip(arr.shape, shape):
            if want.vars() <= dims.keys() and want.eval(dims) != have:
                raise ShapeError(
                    f"[set] data of shape {arr.shape} does not fit the input "
                    f"{self._label()} of shape {fmt_shape(self.shape)}"
                )
        for name, value in binds.items():
            self.graph.set_dim(name, value)
        if quantized:  # float data is quantized here, like llama.cpp's quantizer
            arr = quant.storage(quant.quantize(arr, self.dtype), self.dtype, arr.size)
        self.graph._set_input(self._handle, arr.reshape(-1))
        return self

    def set_blocks(self, blocks: np.ndarray) -> Tensor:
        """Give a "q8_0"/"q4_0"/k-quant ("q2_k" .. "q6_k")/"f16_packed"/"bf16_packed" input its stored
        bytes as they are (e.g. from a GGUF file: ``GGUFFile.raw(name)``),
        without dequantizing.

        >>> w = cx.parameter((4096, 4096), dtype="q8_0").set_blocks(f.raw("blk.0.attn_q.weight"))
        """
        if self.dtype not in QUANTIZED:
            raise ValueError(f"[set_blocks] the input has dtype {self.dtype}, not a quantized one")
        core = self.graph._core
        if not core.is_input(self._handle) or not self._view.is_identity:
            raise ValueError("[set_blocks] only an input tensor can be set")
        numel = 1
        for d in self._view.shape:
            c = d.as_const()
            if c is None:
                raise ValueError("[set_blocks] a quantized input needs a fixed shape")
            numel *= int(c)
        self.graph._set_input(self._handle, quant.storage(blocks, self.dtype, numel))
        return self

    def retrieve(self) -> Tensor:
        """Keep this tensor's value after ``execute()``, for ``numpy()``. Returns self."""
        self.graph._retrieve(self)
        return self

    def numpy(self) -> np.ndarray:
        """The value computed by the last ``execute()`` (a fresh array)."""
        arr = self.graph._core.read(self._handle, self._view)
        return from_storage(arr, self.dtype)

    def item(self) -> float:
        """The single value of a one-element tensor, as a Python number."""
        arr = self.numpy()
        if arr.size != 1:
            raise ValueError(f"[item] tensor has {arr.size} elements, not 1")
        return arr.reshape(-1)[0].item()  # type: ignore[no-any-return]

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def __bool__(self) -> bool:
        raise TypeError(
            "a lazy luminal Tensor has no truth value before execute(); "
            "use .numpy() or .item() after execute()"
        )

    def __len__(self) -> int:
        if not self.ndim:
            raise TypeError("len() of a rank-0 tensor")
        n = self._view.shape[0].as_const()
        if n is None:
            raise TypeError(f"len() of a tensor whose first dim is symbolic ({self.shape[0]})")
        return int(n)

    # ---- dtype conversions (torch's .float() / .int() / .bool()) ------------------
    # Defined last in the class: these names shadow builtins inside the class body.
    def _relabel(self, dtype: str) -> Tensor:
        out = self._with_view(self._view)
        out.dtype = dtype
        return out

    def float(self) -> Tensor:
        """The same values as dtype "f32" (no node is added). ``mask.float()``"""
        return self._relabel("f32")

    def int(self) -> Tensor:
        """Truncated toward zero, as dtype "i32". ``x.int()``"""
        return self.trunc()._relabel("i32")

    long = int

    def bool(self) -> Tensor:
        """Non-zero as dtype "bool" (NaN is true). ``x.bool()``"""
        return self.ne(0.0)

    def _label(self) -> str:
        name = self.graph._names.get(self._handle)
        return repr(name) if name else f"#{self._handle}"

    def __repr__(self) -> str:
        return f"Tensor(shape={fmt_shape(self.shape)}, dtype={self.dtype}, handle={self._handle})"
