"""Weight initialisation, like ``torch.nn.init``, drawing from one seeded numpy
Generator for the whole module (``manual_seed``). Every function fills a
``Parameter`` (re-setting the graphs it is bound to) or a numpy array in place
and returns it.

>>> nn.init.manual_seed(0)
>>> layer = nn.Linear(4, 8)          # same weights every time after the seed
>>> nn.init.zeros_(layer.bias)

The values are drawn with numpy, so they follow torch's distributions but are
not torch's numbers: to match a torch model, load its ``state_dict``.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar, Union

import numpy as np

from luminal.nn.parameter import Parameter

T = TypeVar("T", bound=Union[Parameter, np.ndarray])

DEFAULT_SEED = 0
_rng = np.random.default_rng(DEFAULT_SEED)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the generator every initialiser (and every new layer) draws from."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def generator() -> np.random.Generator:
    """The current generator."""
    return _rng


def _shape(t: Parameter | np.ndarray) -> tuple[int, ...]:
    return tuple(t.shape)


def _fill(t: T, values: Any) -> T:
    arr = np.broadcast_to(np.asarray(values), _shape(t))
    if isinstance(t, Parameter):
        t._replace(np.array(arr, dtype=t.dtype, order="C"))
    else:
        t[...] = arr
    return t


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch's recommended gain for ``nonlinearity``."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(t: Parameter | np.ndarray) -> tuple[int, int]:
    shape = _shape(t)
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fan(t: Parameter | np.ndarray, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(t: T, a: float = 0.0, b: float = 1.0) -> T:
    return _fill(t, _rng.uniform(a, b, size=_shape(t)))


def normal_(t: T, mean: float = 0.0, std: float = 1.0) -> T:
    return _fill(t, _rng.normal(mean, std, size=_shape(t)))


def trunc_normal_(t: T, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> T:
    """Normal values redrawn until inside ``[a, b]``."""
    out = _rng.normal(mean, std, size=_shape(t))
    bad = (out < a) | (out > b)
    while bad.any():
        out[bad] = _rng.normal(mean, std, size=int(bad.sum()))
        bad = (out < a) | (out > b)
    return _fill(t, out)


def constant_(t: T, val: float) -> T:
    return _fill(t, val)


def ones_(t: T) -> T:
    return _fill(t, 1.0)


def zeros_(t: T) -> T:
    return _fill(t, 0.0)


def eye_(t: T) -> T:
    shape = _shape(t)
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _fill(t, np.eye(*shape))


def xavier_uniform_(t: T, gain: float = 1.0) -> T:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(t, -bound, bound)


def xavier_normal_(t: T, gain: float = 1.0) -> T:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)))


def kaiming_uniform_(t: T, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> T:
    fan = _fan(t, mode)
    if fan == 0:
        return t
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return uniform_(t, -bound, bound)


def kaiming_normal_(t: T, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> T:
    fan = _fan(t, mode)
    if fan == 0:
        return t
    return normal_(t, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan))


def default_bias_(bias: T, weight: Parameter | np.ndarray) -> T:
    """torch's default bias init for Linear and conv: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    fan_in, _ = _calculate_fan_in_and_fan_out(weight)
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return uniform_(bias, -bound, bound)
