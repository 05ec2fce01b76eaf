"""Dropout. luminal graphs have no random-number primitive, so only the
deterministic cases are built:

* ``training=False`` (or ``p=0``): the input itself, as in torch;
* ``p=1``: ``input * 0`` (zeros; NaN where the input is inf or NaN, as torch's
  ``input * zeros``);
* ``0 < p < 1`` while training raises ``NotImplementedError``. A mask drawn once
  and uploaded as an input would be silently reused by every ``execute()``,
  which is not dropout; to train with dropout, make the mask yourself each
  step: ``m = cx.tensor(x.shape).set(rng.random(shape) >= p)`` and use
  ``x * m * (1 / (1 - p))``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from luminal.tensor import Tensor

__all__ = ["alpha_dropout", "dropout", "dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout"]


def _dropout(input: Tensor, p: float, training: bool, op: str) -> Tensor:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"[{op}] dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    raise NotImplementedError(
        f"[{op}] training-mode dropout with 0 < p < 1 needs random numbers, and luminal graphs "
        f"have no RNG primitive: pass training=False for inference, or multiply by a 0/1 mask "
        f"input you set each step (x * mask * (1 / (1 - p)))"
    )


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Like ``torch.nn.functional.dropout``: identity when ``training=False``
    (the only useful case without an RNG; see the module docstring)."""
    return _dropout(input, p, training, "dropout")


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Channel dropout for (N, C, L): identity when ``training=False``."""
    return _dropout(input, p, training, "dropout1d")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Channel dropout for (N, C, H, W): identity when ``training=False``."""
    return _dropout(input, p, training, "dropout2d")


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Channel dropout for (N, C, D, H, W): identity when ``training=False``."""
    return _dropout(input, p, training, "dropout3d")


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Alpha dropout (for SELU nets): identity when ``training=False`` (the default)."""
    return _dropout(input, p, training, "alpha_dropout")


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Feature alpha dropout: identity when ``training=False`` (the default)."""
    return _dropout(input, p, training, "feature_alpha_dropout")
