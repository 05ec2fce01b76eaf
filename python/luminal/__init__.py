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

from luminal._core import ExecutionError, Expr, ShapeError, ShapeTracker, UnboundDimError
from luminal.compilers import (
    CSE,
    ArithmeticSimplification,
    Compiler,
    ConstantFolding,
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
from luminal.hl_ops.linalg import matmul
from luminal.hl_ops.movement import (
    broadcast_to,
    cat,
    contiguous,
    expand,
    flatten,
    pad,
    permute,
    reshape,
    squeeze,
    stack,
    transpose,
    unsqueeze,
)
from luminal.hl_ops.reduction import amax, mean, sum
from luminal.hl_ops.unary import cos, exp, exp2, log, log2, reciprocal, rsqrt, sin, sqrt
from luminal.tensor import Tensor

PRIMITIVES = ("Log2", "Exp2", "Sin", "Sqrt", "Recip", "Add", "Mul", "Mod", "LessThan",
              "SumReduce", "MaxReduce", "Contiguous")

__version__ = "0.1.0"

__all__ = [
    "CSE",
    "PRIMITIVES",
    "ArithmeticSimplification",
    "Compiler",
    "ConstantFolding",
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
    "add", "amax", "broadcast_to", "cat", "contiguous", "cos", "div", "eq", "exp", "exp2",
    "expand", "flatten", "fmod", "ge", "gt", "le", "log", "log2", "lt", "matmul", "maximum", "mean", "minimum",
    "mul", "ne", "pad", "permute", "reciprocal", "remainder", "reshape", "rsqrt", "sin",
    "sqrt", "squeeze", "stack", "sub", "sum", "transpose", "unsqueeze",
]
