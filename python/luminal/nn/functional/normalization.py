"""Normalization: layer_norm, rms_norm, group_norm, batch_norm, instance_norm,
and ``normalize`` (Lp-normalization along a dim).

Statistics are two-pass (the mean first, then the mean squared deviation), in
float32; variances are biased (``correction=0``) as in torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, Union

import numpy as np

from luminal._core import Expr, ShapeError
from luminal._shape import fmt_shape, same
from luminal.hl_ops.binary import maximum

if TYPE_CHECKING:
    from luminal.tensor import Tensor

__all__ = ["batch_norm", "group_norm", "instance_norm", "layer_norm", "normalize", "rms_norm"]

NormShape = Union[int, Sequence[int]]
FLOAT32_EPS = float(np.finfo(np.float32).eps)


def _norm_dims(input: Tensor, normalized_shape: NormShape, op: str) -> list[int]:
    shape = [normalized_shape] if isinstance(normalized_shape, int) else list(normalized_shape)
    n = len(shape)
    if n == 0 or n > input.ndim or not all(
        same(a, Expr(b)) for a, b in zip(input._view.shape[input.ndim - n :], shape)
    ):
        raise ShapeError(
            f"[{op}] normalized_shape {tuple(shape)} does not match the trailing dims of the "
            f"input {fmt_shape(input.shape)}"
        )
    return list(range(input.ndim - n, input.ndim))


def _affine(x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    if weight is not None:
        x = x * weight
    if bias is not None:
        x = x + bias
    return x


def layer_norm(
    input: Tensor, normalized_shape: NormShape, weight: Tensor | None = None, bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the trailing
    ``normalized_shape`` dims, like ``torch.nn.functional.layer_norm``.

    >>> F.layer_norm(x, (x.shape[-1],), w, b)
    """
    dims = _norm_dims(input, normalized_shape, "layer_norm")
    dev = input - input.mean(dims, keepdim=True)
    var = (dev * dev).mean(dims, keepdim=True)
    return _affine(dev * (var + eps).rsqrt(), weight, bias)


def rms_norm(
    input: Tensor, normalized_shape: NormShape, weight: Tensor | None = None, eps: float | None = None
) -> Tensor:
    """``x / sqrt(mean(x**2) + eps) * weight`` over the trailing ``normalized_shape``
    dims, like ``torch.nn.functional.rms_norm``; ``eps=None`` is float32's
    machine epsilon (``torch.finfo(torch.float32).eps``).

    >>> F.rms_norm(x, (x.shape[-1],), w)
    """
    dims = _norm_dims(input, normalized_shape, "rms_norm")
    e = FLOAT32_EPS if eps is None else eps
    out = input * ((input * input).mean(dims, keepdim=True) + e).rsqrt()
    return out if weight is None else out * weight


def _channel_view(t: Tensor, ndim: int) -> Tensor:
    """A per-channel (C,) tensor shaped to broadcast over (N, C, *)."""
    return t.reshape([t._view.shape[0]] + [Expr(1)] * (ndim - 2))


def group_norm(
    input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    """Normalize each of ``num_groups`` channel groups of (N, C, *) over its
    channels and positions, then a per-channel affine, like
    ``torch.nn.functional.group_norm``. ``F.group_norm(x, 4, w, b)``"""
    if input.ndim < 2:
        raise ShapeError(f"[group_norm] expected an input of at least 2 dims, got {fmt_shape(input.shape)}")
    shape = list(input._view.shape)
    c = shape[1].as_const()
    if c is None or num_groups < 1 or c % num_groups:
        raise ShapeError(
            f"[group_norm] {shape[1]} channels cannot be split into {num_groups} groups"
        )
    g = input.reshape([shape[0], Expr(num_groups), Expr(c // num_groups)] + shape[2:])
    dims = list(range(2, g.ndim))
    dev = g - g.mean(dims, keepdim=True)
    var = (dev * dev).mean(dims, keepdim=True)
    out = (dev * (var + eps).rsqrt()).reshape(shape)
    return _affine(
        out,
        None if weight is None else _channel_view(weight, input.ndim),
        None if bias is None else _channel_view(bias, input.ndim),
    )


def batch_norm(
    input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
    bias: Tensor | None = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5,
) -> Tensor:
    """Per-channel normalization of (N, C, *), like ``torch.nn.functional.batch_norm``:
    with the running statistics when ``training=False``; with the batch's own
    mean and biased variance when ``training=True``. A lazy graph cannot update
    ``running_mean``/``running_var`` in place, so ``momentum`` is unused (torch
    updates them as a side effect).

    >>> F.batch_norm(x, rm, rv, w, b)                 # inference
    """
    if input.ndim < 2:
        raise ShapeError(f"[batch_norm] expected an input of at least 2 dims, got {fmt_shape(input.shape)}")
    dims = [0] + list(range(2, input.ndim))
    if training:
        mean = input.mean(dims, keepdim=True)
        dev = input - mean
        var = (dev * dev).mean(dims, keepdim=True)
        out = dev * (var + eps).rsqrt()
    else:
        if running_mean is None or running_var is None:
            raise ValueError("[batch_norm] running_mean and running_var are needed when training=False")
        rm = _channel_view(running_mean, input.ndim)
        rv = _channel_view(running_var, input.ndim)
        out = (input - rm) * (rv + eps).rsqrt()
    return _affine(
        out,
        None if weight is None else _channel_view(weight, input.ndim),
        None if bias is None else _channel_view(bias, input.ndim),
    )


def instance_norm(
    input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
    weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
    momentum: float = 0.1, eps: float = 1e-5,
) -> Tensor:
    """Normalize each (sample, channel) of (N, C, *) over its positions, like
    ``torch.nn.functional.instance_norm``; ``use_input_stats=False`` uses the
    running statistics instead (not updated: see ``batch_norm``)."""
    if input.ndim < 3:
        raise ShapeError(f"[instance_norm] expected an input of at least 3 dims, got {fmt_shape(input.shape)}")
    if use_input_stats:
        dims = list(range(2, input.ndim))
        dev = input - input.mean(dims, keepdim=True)
        var = (dev * dev).mean(dims, keepdim=True)
        out = dev * (var + eps).rsqrt()
    else:
        if running_mean is None or running_var is None:
            raise ValueError("[instance_norm] running stats are needed when use_input_stats=False")
        out = (input - _channel_view(running_mean, input.ndim)) * (
            _channel_view(running_var, input.ndim) + eps
        ).rsqrt()
    return _affine(
        out,
        None if weight is None else _channel_view(weight, input.ndim),
        None if bias is None else _channel_view(bias, input.ndim),
    )


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``dim``, like ``torch.nn.functional.normalize``.

    >>> F.normalize(x, dim=-1)
    """
    n = input.norm(p, dim, keepdim=True)
    return input / maximum(n, eps)
