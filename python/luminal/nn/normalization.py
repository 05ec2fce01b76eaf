"""Normalisation layers: ``LayerNorm``, ``RMSNorm``, ``GroupNorm``,
``BatchNorm1d``/``BatchNorm2d``."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

import luminal.nn.functional as F
from luminal.nn.module import Module, param_tensor
from luminal.nn.parameter import Buffer, Parameter
from luminal.tensor import Tensor


def _shape_tuple(normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    return tuple(int(d) for d in normalized_shape)


def _add_affine(module: Module, shape: tuple[int, ...], affine: bool, bias: bool) -> None:
    """Register ``weight`` (ones) and ``bias`` (zeros) of ``shape``, or None for
    those switched off: both without ``affine``, the bias without ``bias``."""
    module.register_parameter("weight", Parameter(np.ones(shape, dtype=np.float32)) if affine else None)
    module.register_parameter("bias", Parameter(np.zeros(shape, dtype=np.float32)) if affine and bias else None)


class LayerNorm(Module):
    """Normalise over the last ``len(normalized_shape)`` dims, then scale by
    ``weight`` (ones) and shift by ``bias`` (zeros)."""

    weight: Parameter | None
    bias: Parameter | None

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _add_affine(self, self.normalized_shape, elementwise_affine, bias)

    def forward(self, input: Tensor) -> Tensor:
        g = input.graph
        return F.layer_norm(
            input, self.normalized_shape, param_tensor(self.weight, g), param_tensor(self.bias, g), self.eps
        )

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class RMSNorm(Module):
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last dims; ``eps=None``
    is float32's machine epsilon, as in torch."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float | None = None,
        elementwise_affine: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight: Parameter | None = Parameter(np.ones(self.normalized_shape, dtype=np.float32))
        else:
            self.register_parameter("weight", None)

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, self.normalized_shape, param_tensor(self.weight, x.graph), self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Normalise each of ``num_groups`` channel groups of ``(N, C, *)`` input."""

    weight: Parameter | None
    bias: Parameter | None

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
        device: Any = None, dtype: Any = None, *, bias: bool = True,
    ) -> None:
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _add_affine(self, (num_channels,), affine, bias)

    def forward(self, input: Tensor) -> Tensor:
        g = input.graph
        return F.group_norm(input, self.num_groups, param_tensor(self.weight, g), param_tensor(self.bias, g), self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class _BatchNorm(Module):
    """Batch normalisation over the channel dim (dim 1).

    Eval mode (with ``track_running_stats``) normalises with the running
    statistics; train mode with the batch's own statistics. Unlike torch, a
    training forward does not update ``running_mean``/``running_var``/
    ``num_batches_tracked``: a static graph has nowhere to write them back.
    The buffers are loaded from (and saved to) ``state_dict`` like torch's.
    """

    _expected_dims: tuple[int, ...] = ()
    weight: Parameter | None
    bias: Parameter | None

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _add_affine(self, (num_features,), affine, bias)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros((num_features,), dtype=np.float32))
            self.register_buffer("running_var", np.ones((num_features,), dtype=np.float32))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    running_mean: Buffer | None
    running_var: Buffer | None
    num_batches_tracked: Buffer | None

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            assert self.running_mean is not None and self.running_var is not None
            assert self.num_batches_tracked is not None
            self.running_mean.data = np.zeros((self.num_features,), dtype=np.float32)
            self.running_var.data = np.ones((self.num_features,), dtype=np.float32)
            self.num_batches_tracked.data = np.array(0, dtype=np.int64)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in self._expected_dims:
            want = " or ".join(f"{d}D" for d in self._expected_dims)
            raise ValueError(f"expected {want} input (got {input.ndim}D input)")
        g = input.graph
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(
            input,
            None if use_batch_stats else param_tensor(self.running_mean, g),
            None if use_batch_stats else param_tensor(self.running_var, g),
            param_tensor(self.weight, g),
            param_tensor(self.bias, g),
            use_batch_stats,
            0.0 if self.momentum is None else self.momentum,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm of ``(N, C)`` or ``(N, C, L)`` input."""

    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of ``(N, C, H, W)`` input."""

    _expected_dims = (4,)
