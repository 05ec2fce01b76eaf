"""``Identity`` and ``Linear``."""

from __future__ import annotations

from typing import Any

import numpy as np

import luminal.nn.functional as F
from luminal.nn import init
from luminal.nn.module import Module, param_tensor
from luminal.nn.parameter import Parameter
from luminal.tensor import Tensor


class Identity(Module):
    """Returns its input; any constructor arguments are ignored, as in torch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class _WeightAndBias(Module):
    """Base of ``Linear`` and the convolutions: a ``weight`` and an optional
    ``bias``, initialised like torch's (kaiming-uniform weight,
    U(+-1/sqrt(fan_in)) bias)."""

    weight: Parameter
    bias: Parameter | None

    def _add_weight_and_bias(self, weight_shape: tuple[int, ...], bias_size: int, bias: bool) -> None:
        """Register ``weight`` of ``weight_shape`` and ``bias`` of ``(bias_size,)``
        (None when not ``bias``), then initialise them."""
        self.weight = Parameter(np.empty(weight_shape, dtype=np.float32))
        self.register_parameter("bias", Parameter(np.empty((bias_size,), dtype=np.float32)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=5**0.5)
        if self.bias is not None:
            init.default_bias_(self.bias, self.weight)


class Linear(_WeightAndBias):
    """``y = x @ weight.T + bias``, weight ``(out_features, in_features)``.

    Initialised like torch (kaiming-uniform weight, U(+-1/sqrt(in)) bias).

    >>> fc = nn.Linear(4, 8)
    >>> y = fc(cx.tensor((2, 4)).set(np.ones((2, 4))))      # (2, 8)
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self._add_weight_and_bias((out_features, in_features), out_features, bias)

    def forward(self, input: Tensor) -> Tensor:
        g = input.graph
        return F.linear(input, self.weight.tensor(g), param_tensor(self.bias, g))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
