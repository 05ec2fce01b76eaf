"""luminal: deep learning at the speed of light.

Programs are lazy, static graphs of 12 primitive ops; compilers rewrite them.

>>> import luminal as lm
>>> cx = lm.Graph()
>>> a = cx.tensor((3, 1)).set([[1.0], [2.0], [3.0]])
>>> b = cx.tensor((1, 4)).set([[1.0, 2.0, 3.0, 4.0]])
>>> c = a.matmul(b).retrieve()
>>> cx.compile(lm.GenericCompiler())
>>> cx.execute()
>>> c.numpy()
"""

from __future__ import annotations

from luminal import _env  # noqa: F401  (first: sets OpenMP/OpenBLAS defaults)
from luminal._core import ExecutionError, Expr, ShapeError, ShapeTracker, UnboundDimError
from luminal.compilers import (
    CSE,
    ArithmeticSimplification,
    Compiler,
    ConstantFolding,
    CPUCompiler,
    GenericCompiler,
    Looped,
    RemoveRedundantContiguous,
    RemoveUnusedNodes,
)
from luminal.graph import Graph, VerificationError
from luminal.hl_ops.binary import (
    add,
    div,
    eq,
    fmod,
    ge,
    gt,
    le,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    remainder,
    sub,
)
from luminal.hl_ops.elementwise import (
    abs, ceil, clamp, clip, elu, erf, expm1, floor, gelu, hardsigmoid, hardswish, isfinite, isinf, isnan,
    leaky_relu, lerp, log1p, logical_and, logical_not, logical_or, logical_xor, masked_fill, mish, nan_to_num,
    pow, relu, relu6, round, sigmoid, sign, silu, softplus, square, tan, tanh, trunc, where,
)
from luminal.hl_ops.linalg import bmm, einsum, matmul
from luminal.hl_ops.movement import (
    broadcast_to,
    cat,
    chunk,
    contiguous,
    expand,
    flatten,
    flip,
    meshgrid,
    narrow,
    pad,
    permute,
    repeat,
    repeat_interleave,
    reshape,
    roll,
    split,
    squeeze,
    stack,
    transpose,
    unbind,
    unsqueeze,
)
from luminal.hl_ops.indexing import embedding, gather, index_select, one_hot, take_along_dim
from luminal.hl_ops.creation import arange, eye, full, full_like, linspace, ones, ones_like, tril, triu, zeros, zeros_like
from luminal.hl_ops.reduction import (
    ValuesIndices, all, amax, amin, any, argmax, argmin, cumprod, cumsum, log_softmax, logsumexp, max, mean, min,
    norm, prod, softmax, std, sum, var,
)
from luminal.hl_ops.unary import cos, exp, exp2, log, log2, reciprocal, rsqrt, sin, sqrt
from luminal.tensor import Tensor
from luminal.training.autograd import grad
from luminal import cuda, io, optim, training  # noqa: E402  (subpackages, after Tensor)
from luminal.cuda import CUDACompiler  # noqa: E402

PRIMITIVES = ("Log2", "Exp2", "Sin", "Sqrt", "Recip", "Add", "Mul", "Mod", "LessThan",
              "SumReduce", "MaxReduce", "Contiguous")

__version__ = "0.1.0"

__all__ = [
    "CSE",
    "PRIMITIVES",
    "ArithmeticSimplification",
    "Compiler",
    "ConstantFolding",
    "CPUCompiler",
    "CUDACompiler",
    "cuda",
    "ExecutionError",
    "Expr",
    "GenericCompiler",
    "Graph",
    "Looped",
    "RemoveRedundantContiguous",
    "RemoveUnusedNodes",
    "ShapeError",
    "ShapeTracker",
    "Tensor",
    "UnboundDimError",
    "VerificationError",
    "grad", "io", "optim", "training",
    "add", "amax", "broadcast_to", "cat", "contiguous", "cos", "div", "eq", "exp", "exp2",
    "expand", "flatten", "fmod", "ge", "gt", "le", "log", "log2", "lt", "bmm", "einsum", "matmul", "maximum", "mean", "minimum",
    "mul", "ne", "pad", "permute", "reciprocal", "remainder", "reshape", "rsqrt", "sin",
    "sqrt", "squeeze", "stack", "sub", "sum", "transpose", "unsqueeze",
    # elementwise (hl_ops/elementwise.py)
    "abs", "ceil", "clamp", "clip", "elu", "erf", "expm1", "floor", "gelu", "hardsigmoid", "hardswish",
    "isfinite", "isinf", "isnan", "leaky_relu", "lerp", "log1p", "logical_and", "logical_not", "logical_or",
    "logical_xor", "masked_fill", "mish", "nan_to_num", "pow", "relu", "relu6", "round", "sigmoid", "sign",
    "silu", "softplus", "square", "tan", "tanh", "trunc", "where",
    # reductions (hl_ops/reduction.py) and creation (hl_ops/creation.py)
    "ValuesIndices", "all", "amin", "any", "arange", "argmax", "argmin", "cumprod", "cumsum", "eye", "full",
    "full_like", "linspace", "log_softmax", "logsumexp", "max", "min", "norm", "ones", "ones_like", "prod",
    "softmax", "std", "tril", "triu", "var", "zeros", "zeros_like",
    # movement & indexing (hl_ops/movement.py, hl_ops/indexing.py)
    "chunk", "embedding", "flip", "gather", "index_select", "meshgrid", "narrow", "one_hot", "repeat",
    "repeat_interleave", "roll", "split", "take_along_dim", "unbind",
]
