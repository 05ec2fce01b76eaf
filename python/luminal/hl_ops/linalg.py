"""Matrix products as broadcast multiply + SumReduce (backends recover GEMM)."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Sequence

from luminal._core import Expr, ShapeError
from luminal._shape import fmt_shape, is_one, product, same

if TYPE_CHECKING:
    from luminal.tensor import Tensor


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with torch's rules for 1-D operands and batch broadcasting.

    >>> c = a.matmul(b)   # (..., n, k) @ (..., k, m) -> (..., n, m)
    """
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(
            f"[matmul] both arguments need at least 1 dim, got {fmt_shape(a.shape)} "
            f"and {fmt_shape(b.shape)}"
        )
    ka, kb = a._view.shape[-1], b._view.shape[0 if b.ndim == 1 else -2]
    if not same(ka, kb):
        raise ShapeError(
            f"[matmul] a {fmt_shape(a.shape)} and b {fmt_shape(b.shape)}: "
            f"contracted dims differ ({ka} vs {kb})"
        )
    if a.ndim == 1 and b.ndim == 1:
        return (a * b).sum(-1)
    x = a.unsqueeze(0) if a.ndim == 1 else a
    y = b.unsqueeze(-1) if b.ndim == 1 else b
    # (..., n, k, 1) * (..., 1, k, m) summed over k.
    out = (x.unsqueeze(-1) * y.unsqueeze(-3)).sum(-2)
    if a.ndim == 1:
        out = out.squeeze(-2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    return out


def rmatmul(x: Tensor, other: Tensor) -> Tensor:
    """``other @ x``"""
    return matmul(other, x)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """Batched matrix product of two 3-d tensors, like ``torch.bmm`` (no
    broadcasting): (b, n, k) @ (b, k, m) -> (b, n, m). ``lm.bmm(a, b)``"""
    if a.ndim != 3 or b.ndim != 3:
        raise ShapeError(
            f"[bmm] both arguments must be 3-d, got {fmt_shape(a.shape)} and {fmt_shape(b.shape)}"
        )
    if not same(a._view.shape[0], b._view.shape[0]):
        raise ShapeError(
            f"[bmm] batch sizes differ: {fmt_shape(a.shape)} and {fmt_shape(b.shape)}"
        )
    return matmul(a, b)


_EINSUM_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _einsum_terms(equation: str, operands: Sequence[Tensor]) -> tuple[list[list[str]], list[str]]:
    """Each operand's labels and the output's, with ``...`` expanded into
    labels "0", "1", ... (right-aligned, as broadcasting aligns them)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(
            f"[einsum] {equation!r} names {len(terms)} operands but {len(operands)} were given"
        )
    n_ell = builtins.max(
        (t.ndim - len(term.replace("...", "")) for term, t in zip(terms, operands) if "..." in term), default=0
    )
    parsed: list[list[str]] = []
    for term, t in zip(terms, operands):
        if term.count("...") > 1 or "." in term.replace("...", ""):
            raise ValueError(f"[einsum] bad subscript {term!r} in {equation!r}")
        bad = [c for c in term.replace("...", "") if c not in _EINSUM_LETTERS]
        if bad:
            raise ValueError(f"[einsum] subscripts must be letters, got {bad[0]!r} in {equation!r}")
        named = len(term.replace("...", ""))
        if ("..." not in term and named != t.ndim) or named > t.ndim:
            raise ValueError(
                f"[einsum] subscript {term!r} does not fit an operand of shape {fmt_shape(t.shape)}"
            )
        if "..." in term:
            k = t.ndim - named
            head, tail = term.split("...")
            parsed.append(list(head) + [str(n_ell - k + i) for i in range(k)] + list(tail))
        else:
            parsed.append(list(term))
    ell = [str(i) for i in range(n_ell)]
    if arrow:
        if rhs.count("...") > 1 or "." in rhs.replace("...", ""):
            raise ValueError(f"[einsum] bad output subscript {rhs!r}")
        head, dots, tail = rhs.partition("...")
        out = list(head) + (ell if dots else []) + list(tail)
        known = {l for p in parsed for l in p}
        for l in out:
            if l not in known:
                raise ValueError(f"[einsum] output subscript {l!r} appears in no operand")
        if len(set(out)) != len(out):
            raise ValueError(f"[einsum] output subscript {rhs!r} repeats a label")
    else:  # implicit: "..." first, then labels seen once, alphabetically
        counts: dict[str, int] = {}
        for p in parsed:
            for l in p:
                counts[l] = counts.get(l, 0) + 1
        out = ell + sorted((l for l, c in counts.items() if c == 1 and not l.isdigit()),
                           key=_EINSUM_LETTERS.index)
    return parsed, out


def _einsum_diagonal(t: Tensor, labels: list[str]) -> tuple[Tensor, list[str]]:
    """Take the diagonal over a label repeated within one operand ("ii->i")."""
    while len(set(labels)) != len(labels):
        l = next(x for x in labels if labels.count(x) > 1)
        i = labels.index(l)
        j = labels.index(l, i + 1)
        n = t._view.shape[i]
        if not same(n, t._view.shape[j]):
            raise ShapeError(f"[einsum] label {l!r} has sizes {n} and {t._view.shape[j]} in one operand")
        order = [a for a in range(t.ndim) if a not in (i, j)] + [i, j]
        u = t.permute(order)
        lead = u._view.shape[:-2]
        # The flattened square padded by n is (n, n + 1): column 0 is the diagonal.
        flat = u.reshape(lead + [n * n])
        flat = flat._with_view(flat._view.pad(flat.ndim - 1, 0, n))
        diag = flat.reshape(lead + [n, n + 1])
        diag = diag._with_view(diag._view.slice(diag.ndim - 1, 0, 1, 1)).reshape(lead + [n])
        t = diag
        labels = [x for k, x in enumerate(labels) if k not in (i, j)] + [l]
    return t, labels


def _einsum_align(t: Tensor, labels: list[str], order: list[str]) -> Tensor:
    """``t`` permuted into ``order`` with size-1 dims for the labels it lacks."""
    own = [l for l in order if l in labels]
    u = t.permute([labels.index(l) for l in own]) if own != labels else t
    for i, l in enumerate(order):
        if l not in labels:
            u = u.unsqueeze(i)
    return u


def einsum(equation: str, *operands: Tensor | Sequence[Tensor]) -> Tensor:
    """Einstein summation, like ``torch.einsum``: matmul-like, batched, outer
    products, traces and diagonals ("ii->i"), reductions ("ij->i"), ``...``
    broadcasting, implicit output. Operands are contracted pairwise, left to
    right, each pair as one broadcast multiply + SumReduce.

    >>> lm.einsum("bhqd,bhkd->bhqk", q, k)
    """
    from luminal.tensor import Tensor

    ops: list[Tensor]
    if len(operands) == 1 and not isinstance(operands[0], Tensor):
        ops = list(operands[0])
    else:
        ops = [o for o in operands if isinstance(o, Tensor)]
        if len(ops) != len(operands):
            raise TypeError("[einsum] operands must be Tensors")
    if not ops:
        raise ValueError("[einsum] needs at least one operand")
    parsed, out = _einsum_terms(equation, ops)
    work: list[tuple[Tensor, list[str]]] = [_einsum_diagonal(t, p) for t, p in zip(ops, parsed)]
    sizes: dict[str, Expr] = {}
    for t, labels in work:
        for l, d in zip(labels, t._view.shape):
            have = sizes.get(l)
            if have is None or is_one(have):
                sizes[l] = d
            elif not (same(have, d) or is_one(d)):
                raise ShapeError(
                    f"[einsum] label {l!r} has sizes {have} and {d} in {equation!r}"
                )
    acc, acc_labels = work[0]
    for idx in range(1, len(work) + 1):
        later = {l for _, ls in work[idx + 1 :] for l in ls} | set(out)
        if idx < len(work):
            other, other_labels = work[idx]
            union = list(dict.fromkeys(acc_labels + other_labels))
        else:
            union = list(acc_labels)
        keep = [l for l in union if l in later]
        gone = [l for l in union if l not in later]
        order = keep + gone
        a = _einsum_align(acc, acc_labels, order)
        if idx < len(work):
            b = _einsum_align(other, other_labels, order)
            prod = a * b
            if len(gone) > 1:  # a fresh product: merge the summed dims, one SumReduce
                tail = prod._view.shape[len(keep):]
                prod = prod.reshape(prod._view.shape[: len(keep)] + [product(tail)])
            if gone:
                prod = prod.sum(-1)
        else:
            prod = a.sum(list(range(len(keep), len(order)))) if gone else a
        acc, acc_labels = prod, keep
    # A label broadcast at size 1 in every remaining operand: expand it.
    if acc_labels != out:
        acc = acc.permute([acc_labels.index(l) for l in out])
    want = [sizes[l] for l in out]
    if any(not same(h, w) for h, w in zip(acc._view.shape, want)):
        acc = acc._expand_to(want, "einsum")
    return acc
