"""Pooling: ``MaxPool2d`` and ``AvgPool2d``."""

from __future__ import annotations

from typing import Any, Sequence, Union

import luminal.nn.functional as F
from luminal.nn.module import Module
from luminal.tensor import Tensor

IntOrTuple = Union[int, Sequence[int]]


def _keep(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


class MaxPool2d(Module):
    """Max over ``kernel_size`` windows (``stride`` defaults to the kernel size).
    ``return_indices=True`` returns ``(values, indices)`` as torch does, if
    ``F.max_pool2d`` supports it."""

    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple = 0,
        dilation: IntOrTuple = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = _keep(kernel_size)
        self.stride = _keep(stride) if stride is not None else self.kernel_size
        self.padding = _keep(padding)
        self.dilation = _keep(dilation)
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor) -> Any:
        if self.return_indices:
            return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                                ceil_mode=self.ceil_mode, return_indices=True)
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool2d(Module):
    """Mean over ``kernel_size`` windows (``stride`` defaults to the kernel size)."""

    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = _keep(kernel_size)
        self.stride = _keep(stride) if stride is not None else self.kernel_size
        self.padding = _keep(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool2d(
            input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
