"""Convolutions: ``Conv1d``, ``Conv2d``, ``ConvTranspose2d`` (torch's
arguments, weight layouts and initialisation)."""

from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import luminal.nn.functional as F
from luminal.nn.linear import _WeightAndBias
from luminal.nn.module import param_tensor
from luminal.tensor import Tensor

IntOrTuple = Union[int, Sequence[int]]


def _ntuple(v: IntOrTuple, n: int, what: str) -> tuple[int, ...]:
    if isinstance(v, int):
        return (v,) * n
    t = tuple(int(x) for x in v)
    if len(t) != n:
        raise ValueError(f"{what} must be an int or a tuple of {n} ints, got {v!r}")
    return t


class _ConvNd(_WeightAndBias):
    """Shared by every convolution: argument checks, ``weight``/``bias``,
    ``padding_mode`` padding and the repr."""

    _n = 0
    _transposed = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple,
        padding: IntOrTuple | str,
        dilation: IntOrTuple,
        output_padding: IntOrTuple,
        groups: int,
        bias: bool,
        padding_mode: str,
    ) -> None:
        super().__init__()
        n = self._n
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode must be one of zeros, reflect, replicate, circular, got {padding_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size")
        self.stride = _ntuple(stride, n, "stride")
        self.dilation = _ntuple(dilation, n, "dilation")
        self.output_padding = _ntuple(output_padding, n, "output_padding")
        self.groups = groups
        self.padding_mode = padding_mode
        self.transposed = self._transposed
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding: tuple[int, ...] | str = padding
        else:
            self.padding = _ntuple(padding, n, "padding")
        if self._transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self._add_weight_and_bias(shape, out_channels, bias)

    def _pad_input(self, input: Tensor) -> Tensor:
        """Explicit non-zero padding (``padding_mode`` other than "zeros")."""
        pad: list[int] = []  # torch's _reversed_padding_repeated_twice
        for i in reversed(range(self._n)):
            if self.padding == "same":
                total = self.dilation[i] * (self.kernel_size[i] - 1)
                pad += [total // 2, total - total // 2]
            elif self.padding == "valid":
                pad += [0, 0]
            else:
                assert isinstance(self.padding, tuple)
                pad += [self.padding[i], self.padding[i]]
        return F.pad(input, pad, mode=self.padding_mode)

    def extra_repr(self) -> str:
        n = self._n
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    """``Conv1d``/``Conv2d``: torch's constructor, and a forward through the
    class's ``_conv`` (``F.conv1d``/``F.conv2d``)."""

    _conv: Callable[..., Tensor]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: IntOrTuple | str = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 0, groups, bias,
                         padding_mode)

    def forward(self, input: Tensor) -> Tensor:
        g = input.graph
        w, b = self.weight.tensor(g), param_tensor(self.bias, g)
        if self.padding_mode != "zeros":
            return self._conv(self._pad_input(input), w, b, self.stride, 0, self.dilation, self.groups)
        return self._conv(input, w, b, self.stride, self.padding, self.dilation, self.groups)


class Conv1d(_Conv):
    """1-D convolution of ``(N, C_in, L)`` (or unbatched ``(C_in, L)``) input;
    weight ``(out_channels, in_channels // groups, kernel_size)``."""

    _n = 1
    _conv = staticmethod(F.conv1d)


class Conv2d(_Conv):
    """2-D convolution of ``(N, C_in, H, W)`` (or unbatched) input; weight
    ``(out_channels, in_channels // groups, kH, kW)``.

    >>> conv = nn.Conv2d(3, 8, 3, padding=1)
    """

    _n = 2
    _conv = staticmethod(F.conv2d)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution; weight ``(in_channels, out_channels // groups,
    kH, kW)``. ``forward(x, output_size=...)`` picks ``output_padding`` to hit
    ``output_size``, as in torch."""

    _n = 2
    _transposed = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: IntOrTuple = 0,
        output_padding: IntOrTuple = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: IntOrTuple = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        if isinstance(padding, str):
            raise ValueError("ConvTranspose2d does not support string padding")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, output_padding,
                         groups, bias, padding_mode)

    def _output_padding(self, input: Tensor, output_size: Sequence[int] | None) -> tuple[int, ...]:
        if output_size is None:
            return self.output_padding
        n = self._n
        non_spatial = 2 if input.ndim == n + 2 else 1
        size = list(output_size)
        if len(size) == non_spatial + n:
            size = size[non_spatial:]
        if len(size) != n:
            raise ValueError(
                f"ConvTranspose{n}D: for {input.ndim}D input, output_size must have {n} or "
                f"{non_spatial + n} elements (got {len(output_size)})"
            )
        assert isinstance(self.padding, tuple)
        out = []
        for d in range(n):
            in_d = input.shape[d + non_spatial]
            if not isinstance(in_d, int):
                raise ValueError("output_size needs a static input size")
            lo = (in_d - 1) * self.stride[d] - 2 * self.padding[d] + self.dilation[d] * (self.kernel_size[d] - 1) + 1
            hi = lo + self.stride[d] - 1
            if not lo <= size[d] <= hi:
                raise ValueError(
                    f"requested an output size of {size}, but valid sizes range from {lo} to {hi} "
                    f"(for an input of {input.shape[non_spatial:]})"
                )
            out.append(size[d] - lo)
        return tuple(out)

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        g = input.graph
        output_padding = self._output_padding(input, output_size)
        return F.conv_transpose2d(
            input, self.weight.tensor(g), param_tensor(self.bias, g), self.stride, self.padding,
            output_padding, self.groups, self.dilation,
        )
