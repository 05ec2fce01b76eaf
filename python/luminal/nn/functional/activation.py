"""Activations under torch.nn.functional's names and signatures. The math
lives in ``luminal.hl_ops.elementwise`` / ``reduction`` (also ``Tensor``
methods); these wrappers add torch's extra arguments. ``inplace=True`` is
accepted and ignored: a lazy graph never mutates, the result is a new tensor.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from luminal._core import ShapeError
from luminal._shape import fmt_shape, normalize_dim
from luminal.hl_ops import elementwise as ew
from luminal.hl_ops import reduction
from luminal.hl_ops.binary import maximum, minimum

if TYPE_CHECKING:
    from luminal.tensor import Tensor

__all__ = [
    "celu", "elu", "gelu", "glu", "hardshrink", "hardsigmoid", "hardswish", "hardtanh", "leaky_relu",
    "log_softmax", "logsigmoid", "mish", "prelu", "relu", "relu6", "rrelu", "selu", "sigmoid", "silu",
    "softmax", "softmin", "softplus", "softshrink", "softsign", "tanh", "tanhshrink", "threshold",
]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0). ``F.relu(x)``"""
    return ew.relu(input)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)."""
    return ew.relu6(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, else negative_slope * x."""
    return ew.leaky_relu(input, negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, else alpha * (exp(x) - 1)."""
    return ew.elu(input, alpha)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with SELU's fixed constants."""
    return ew.elu(input, SELU_ALPHA) * SELU_SCALE


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    if alpha == 0:
        raise ValueError("[celu] alpha must not be 0")
    return ew.relu(input) + ew.expm1(minimum(input, 0.0) * (1.0 / alpha)) * alpha


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x); ``approximate="tanh"`` for the tanh form."""
    return ew.gelu(input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x)."""
    return ew.silu(input)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return ew.mish(input)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6."""
    return ew.hardswish(input)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6."""
    return ew.hardsigmoid(input)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val]."""
    if min_val > max_val:
        raise ValueError("[hardtanh] min_val cannot be greater than max_val")
    return minimum(maximum(input, min_val), max_val)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x))."""
    return ew.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return ew.tanh(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta; x where beta x > threshold."""
    return ew.softplus(input, beta, threshold)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)), stable: min(x, 0) - log1p(exp(-|x|))."""
    return minimum(input, 0.0) - (ew.abs(input) * -1.0).exp().log1p()


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return input / (ew.abs(input) + 1.0)


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x)."""
    return input - ew.tanh(input)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    return ew.where(input > threshold, input, value)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0."""
    return ew.where((input > lambd) + (input < -lambd), input, 0.0)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, else 0."""
    if lambd < 0:
        raise ValueError(f"[softshrink] lambda must be >= 0, got {lambd}")
    return input - minimum(maximum(input, -lambd), lambd)


def rrelu(
    input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False, inplace: bool = False
) -> Tensor:
    """Randomized leaky ReLU; in eval mode (the only one without an RNG) the
    slope is (lower + upper) / 2."""
    if training:
        raise NotImplementedError("[rrelu] training=True needs random slopes; luminal has no RNG primitive")
    return ew.leaky_relu(input, (lower + upper) / 2)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """max(0, x) + weight * min(0, x), weight per channel (dim 1) or shared."""
    w = weight
    if weight.ndim == 1 and input.ndim >= 2:
        w = weight.reshape([weight._view.shape[0]] + [1] * (input.ndim - 2))
    return ew.relu(input) + w * minimum(input, 0.0)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b) for the two halves a, b of ``input`` along ``dim``."""
    d = normalize_dim(dim, input.ndim, "glu")
    n = input._view.shape[d].as_const()
    if n is None or n % 2:
        raise ShapeError(f"[glu] dim {dim} of {fmt_shape(input.shape)} must have an even size")
    v = input._view
    a = input._with_view(v.slice(d, 0, n // 2, 1))
    b = input._with_view(v.slice(d, n // 2, n, 1))
    return a * ew.sigmoid(b)


def _softmax_dim(input: Tensor, dim: int | None, op: str) -> int:
    if dim is not None:
        return dim
    warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call to include "
                  f"dim=X as an argument.", stacklevel=3)
    return 0 if input.ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim`` (torch's implicit choice when None).
    ``dtype`` is accepted and ignored: compute is float32. ``F.softmax(x, -1)``"""
    return reduction.softmax(input, _softmax_dim(input, dim, "softmax"))


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """x - logsumexp(x) along ``dim``."""
    return reduction.log_softmax(input, _softmax_dim(input, dim, "log_softmax"))


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """softmax(-x) along ``dim``."""
    return reduction.softmax(-input, _softmax_dim(input, dim, "softmin"))
