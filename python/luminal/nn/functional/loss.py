"""Losses with torch.nn.functional's names, arguments and reductions
("mean" | "sum" | "none"; the deprecated ``size_average``/``reduce`` still
override ``reduction`` as in torch).

Class-index targets (``cross_entropy``, ``nll_loss``) are "i32" tensors (or
float tensors holding integers, with one dim fewer than the input); picking
``input[target]`` is a one-hot compare with ``iota`` and a MaxReduce of
``input + log2(onehot)`` (no ``x * onehot``, so -inf log-probabilities of other
classes stay harmless). Ignored targets (``ignore_index``) are removed with
``select``. Out-of-range targets, which torch rejects at run time, give an inf
loss here (there is no run-time check in a lazy graph).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from luminal._core import Expr, ShapeError
from luminal._shape import fmt_shape, same
from luminal.hl_ops import creation
from luminal.hl_ops import elementwise as ew
from luminal.hl_ops.binary import maximum, minimum, select
from luminal.nn.functional._utils import apply_reduction, legacy_reduction

if TYPE_CHECKING:
    from luminal.tensor import Tensor

__all__ = [
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "huber_loss", "kl_div",
    "l1_loss", "mse_loss", "nll_loss", "smooth_l1_loss",
]


def _class_view(weight: Tensor, ndim: int, cd: int) -> Tensor:
    """A (C,) weight shaped to broadcast along the class dim ``cd``."""
    shape = [Expr(1)] * ndim
    shape[cd] = weight._view.shape[0]
    return weight.reshape(shape)


def _check_index_target(input: Tensor, target: Tensor, op: str) -> int:
    cd = 0 if input.ndim == 1 else 1
    want = [d for i, d in enumerate(input._view.shape) if i != cd]
    if target.ndim != len(want) or not all(same(a, b) for a, b in zip(target._view.shape, want)):
        raise ShapeError(
            f"[{op}] target {fmt_shape(target.shape)} does not fit input {fmt_shape(input.shape)}: "
            f"class indices need the input's shape without dim {cd}"
        )
    return cd


def _nll_terms(
    logp: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int, cd: int
) -> tuple[Tensor, Tensor, Tensor]:
    """(per-element loss -w[t] * logp[t] (0 where ignored), w[t] (0 where
    ignored), valid mask)."""
    c = logp._view.shape[cd]
    shape = [Expr(1)] * logp.ndim
    shape[cd] = c
    classes = creation.iota(logp.graph, c).reshape(shape)
    onehot = target.unsqueeze(cd).eq(classes)
    valid = target.ne(float(ignore_index))
    picked = (logp + onehot.log2()).amax(cd)  # logp[target]; -inf if out of range
    picked = select(valid, picked)  # ignored: 0 (exact even for -inf)
    if weight is None:
        wt: Tensor = valid
    else:
        wt = (onehot * _class_view(weight, logp.ndim, cd)).sum(cd) * valid
    return -picked * wt, wt, valid


def nll_loss(
    input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
    ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of class indices, like ``torch.nn.functional.nll_loss``:
    input (N, C, *) or (C,) log-probabilities, target (N, *) or () class indices.
    "mean" divides by the summed weights of the non-ignored targets.

    >>> F.nll_loss(logp, target, ignore_index=0)
    """
    red = legacy_reduction(size_average, reduce, reduction, "nll_loss")
    cd = _check_index_target(input, target, "nll_loss")
    loss, wt, _ = _nll_terms(input, target, weight, ignore_index, cd)
    if red == "mean":
        return loss.sum() / wt.sum()
    return apply_reduction(loss, red)


def cross_entropy(
    input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
    ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean", label_smoothing: float = 0.0,
) -> Tensor:
    """Cross entropy of logits, like ``torch.nn.functional.cross_entropy``: input
    (N, C, *) or (C,); target either class indices ("i32", shape (N, *)) or
    class probabilities (float, the input's shape). Supports ``weight``,
    ``ignore_index`` (indices only), ``label_smoothing`` and every reduction,
    with torch's normalisation for each combination.

    >>> F.cross_entropy(logits, labels, label_smoothing=0.1)
    """
    red = legacy_reduction(size_average, reduce, reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"[cross_entropy] label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    if input.ndim == 0:
        raise ShapeError("[cross_entropy] input must have at least 1 dim (the classes)")
    cd = 0 if input.ndim == 1 else 1
    logp = input.log_softmax(cd)
    c = input._view.shape[cd]
    n_classes = c.as_const()
    eps_c: float | Tensor = (
        label_smoothing / n_classes if n_classes else input.graph.constant(c).reciprocal() * label_smoothing
    )
    probs = target.dtype != "i32" and target.ndim == input.ndim
    if probs:
        if not all(same(a, b) for a, b in zip(target._view.shape, input._view.shape)):
            raise ShapeError(
                f"[cross_entropy] probability target {fmt_shape(target.shape)} must match input "
                f"{fmt_shape(input.shape)}"
            )
        t = target * (1.0 - label_smoothing) + eps_c if label_smoothing > 0 else target
        prod = logp * t
        if weight is not None:
            prod = prod * _class_view(weight, input.ndim, cd)
        if red == "none":
            return -prod.sum(cd)
        total = -prod.sum()
        if red == "sum":
            return total
        rows = [d for i, d in enumerate(input._view.shape) if i != cd]
        n = Expr(1)
        for d in rows:
            n = n * d
        k = n.as_const()
        return total * (1.0 / k if k else float("nan")) if k is not None else total / input.graph.constant(n)
    _check_index_target(input, target, "cross_entropy")
    loss, wt, valid = _nll_terms(logp, target, weight, ignore_index, cd)
    nll = loss.sum() / wt.sum() if red == "mean" else apply_reduction(loss, red)
    if label_smoothing <= 0:
        return nll
    lw = logp if weight is None else logp * _class_view(weight, input.ndim, cd)
    smooth = select(valid, -lw.sum(cd))
    if red == "mean":
        ret = smooth.sum() / wt.sum()
    else:
        ret = apply_reduction(smooth, red)
    return nll * (1.0 - label_smoothing) + ret * eps_c


def _pointwise(input: Tensor, target: Tensor, loss: Tensor, weight: Tensor | None, red: str,
               mean_by_weight: bool) -> Tensor:
    if weight is None:
        return apply_reduction(loss, red)
    if not all(same(a, b) for a, b in zip(weight._view.shape, input._view.shape)) or weight.ndim != input.ndim:
        raise ValueError("Weights and input must have the same size.")
    wl = loss * weight
    if red == "mean" and mean_by_weight:
        return wl.sum() / weight.sum()
    return apply_reduction(wl, red)


def mse_loss(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", weight: Tensor | None = None,
) -> Tensor:
    """(input - target)**2, reduced; with ``weight``, "mean" is sum(w*e) / sum(w)."""
    red = legacy_reduction(size_average, reduce, reduction, "mse_loss")
    d = input - target
    return _pointwise(input, target, d * d, weight, red, True)


def l1_loss(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", weight: Tensor | None = None,
) -> Tensor:
    """|input - target|, reduced; with ``weight``, "mean" is sum(w*e) / sum(w)."""
    red = legacy_reduction(size_average, reduce, reduction, "l1_loss")
    return _pointwise(input, target, ew.abs(input - target), weight, red, True)


def smooth_l1_loss(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", beta: float = 1.0,
) -> Tensor:
    """0.5 d**2 / beta where |d| < beta, else |d| - 0.5 beta (l1 for beta = 0)."""
    red = legacy_reduction(size_average, reduce, reduction, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"[smooth_l1_loss] beta must be >= 0, got {beta}")
    a = ew.abs(input - target)
    if beta == 0.0:
        return apply_reduction(a, red)
    loss = ew.where(a < beta, a * a * (0.5 / beta), a - 0.5 * beta)
    return apply_reduction(loss, red)


def huber_loss(
    input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0, weight: Tensor | None = None
) -> Tensor:
    """0.5 d**2 where |d| < delta, else delta (|d| - 0.5 delta); with ``weight``,
    "mean" is the mean of w * loss (torch's rule, unlike mse/l1)."""
    red = legacy_reduction(None, None, reduction, "huber_loss")
    if delta <= 0:
        raise ValueError(f"[huber_loss] delta must be > 0, got {delta}")
    a = ew.abs(input - target)
    loss = ew.where(a < delta, a * a * 0.5, (a - 0.5 * delta) * delta)
    return _pointwise(input, target, loss, weight, red, False)


def binary_cross_entropy(
    input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
    reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:
    """-(t log(x) + (1 - t) log(1 - x)) of probabilities x, each log clamped at
    -100 as in torch. (torch rejects x outside [0, 1] at run time; here it gives NaN.)"""
    red = legacy_reduction(size_average, reduce, reduction, "binary_cross_entropy")
    log_x = maximum(input.log(), -100.0)
    log_1mx = maximum(ew.log1p(-input), -100.0)
    loss = (target - 1.0) * log_1mx - target * log_x
    if weight is not None:
        loss = loss * weight
    return apply_reduction(loss, red)


def binary_cross_entropy_with_logits(
    input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
    reduce: bool | None = None, reduction: str = "mean", pos_weight: Tensor | None = None,
) -> Tensor:
    """BCE of logits, stable: (1 - t) x - lw * logsigmoid(x) with
    lw = 1 + (pos_weight - 1) t, as torch. ``F.binary_cross_entropy_with_logits(z, t, pos_weight=pw)``"""
    red = legacy_reduction(size_average, reduce, reduction, "binary_cross_entropy_with_logits")
    log_sig = minimum(input, 0.0) - (ew.abs(input) * -1.0).exp().log1p()
    if pos_weight is not None:
        log_sig = log_sig * ((pos_weight - 1.0) * target + 1.0)
    loss = (1.0 - target) * input - log_sig
    if weight is not None:
        loss = loss * weight
    return apply_reduction(loss, red)


def kl_div(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", log_target: bool = False,
) -> Tensor:
    """KL divergence with log-probabilities ``input``: target * (log(target) - input)
    (0 where target is 0), or exp(t) * (t - input) with ``log_target``.
    reduction "batchmean" divides the sum by the batch size (dim 0)."""
    if size_average is not None or reduce is not None:
        red = legacy_reduction(size_average, reduce, "mean", "kl_div")
    elif reduction == "batchmean":
        red = "batchmean"
    else:
        red = legacy_reduction(None, None, reduction, "kl_div")
    if log_target:
        loss = target.exp() * (target - input)
    else:
        is_zero = target.eq(0.0)
        loss = target * (target + is_zero).log() - target * input  # xlogy(t, t) - t * x
    if red == "batchmean":
        total = loss.sum()
        if input.ndim == 0:
            return total
        n = input._view.shape[0].as_const()
        return total * (1.0 / n) if n else total / input.graph.constant(input._view.shape[0])
    return apply_reduction(loss, red)
