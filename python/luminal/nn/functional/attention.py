"""``scaled_dot_product_attention`` with torch's semantics.

Masks are additive biases: a boolean mask becomes ``log2(keep)`` (0 where
kept, -inf where masked: no ``x * mask``, so no ``inf * 0``), a float mask is
added as is, and ``is_causal`` adds the top-left aligned lower-triangular bias.
An ``attn_mask`` of dtype "bool" (what comparisons return) or "i32" is
boolean (non-zero = attend, like torch's True); any float dtype is additive.

Rows whose every score is -inf give 0, as torch's ``_safe_softmax`` (torch >= 2.5)
does on every backend; a NaN or +inf score makes its row NaN, as in torch.

Causal self-attention (``is_causal``, no ``attn_mask``, as many queries as
keys, from 64 on) runs in two halves: the first half of the queries over the
first half of the keys alone, the second over all of them. That skips the
masked quarter of both products and of the softmax. So a NaN in a key
reaches none of the rows before the half it is in (torch's masked_fill
reaches none of the rows that mask it).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from luminal._core import Expr, ShapeError
from luminal._shape import fmt_shape, same
from luminal.hl_ops import creation
from luminal.hl_ops.binary import maximum
from luminal.hl_ops.movement import cat

if TYPE_CHECKING:
    from luminal.tensor import Tensor

__all__ = ["scaled_dot_product_attention"]

FLT_MAX = 3.4028234663852886e38  # the largest float32


def _safe_softmax(scores: Tensor) -> Tensor:
    """softmax over the last dim; 0 (not NaN) for rows of all -inf."""
    # A row of all -inf is shifted by the lowest float instead of its max, so
    # its exps are exp(-inf) = 0, not NaN; a +inf max still makes its row NaN.
    shift = maximum(scores.amax(-1, keepdim=True), -FLT_MAX)
    e = (scores - shift).exp()
    denom = e.sum(-1, keepdim=True)  # >= 1 unless the row is all -inf (then 0)
    return e / (denom + (denom < 0.5))


def _mask_bias(mask: Tensor) -> Tensor:
    if mask.dtype in ("i32", "bool"):
        return mask.ne(0.0).log2()  # 0 where attended, -inf where masked
    return mask


def _causal_bias(graph_like: Tensor, L: Expr, S: Expr, first_row: Expr = Expr(0)) -> Tensor:
    """(L, S): 0 where key j <= query i (counting queries from ``first_row``), else -inf."""
    i = creation.iota(graph_like.graph, L).unsqueeze(1)
    first = first_row.as_const()
    if first is None:
        i = i + graph_like.graph.constant(first_row)
    elif first:
        i = i + float(first)
    j = creation.iota(graph_like.graph, S).unsqueeze(0)
    return j.lt(i + 1.0).log2()  # keep j <= i: 0, else -inf


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """``softmax(q @ k^T * scale + bias) @ v`` like
    ``torch.nn.functional.scaled_dot_product_attention``: query (..., Hq, L, E),
    key (..., Hkv, S, E), value (..., Hkv, S, Ev) -> (..., Hq, L, Ev).

    * ``attn_mask``: broadcastable to (..., Hq, L, S); "i32" dtype = boolean
      keep-mask, float = additive (may hold -inf). See the module docstring.
    * ``is_causal``: query i attends keys j <= i (top-left aligned). With an
      ``attn_mask`` too, both apply (torch raises on some paths).
    * ``scale``: default 1/sqrt(E).
    * ``enable_gqa``: Hq a multiple of Hkv; query head h uses kv head
      h // (Hq / Hkv) (torch's repeat_interleave), without copying k and v.
    * ``dropout_p > 0`` raises NotImplementedError (no RNG primitive).

    >>> out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    """
    if dropout_p != 0.0:
        raise NotImplementedError(
            "[scaled_dot_product_attention] dropout_p > 0 needs random numbers; luminal has no RNG "
            "primitive (use dropout_p=0.0 for inference)"
        )
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.ndim < 2:
            raise ShapeError(f"[scaled_dot_product_attention] {name} needs at least 2 dims, got {fmt_shape(t.shape)}")
    L, E = query._view.shape[-2], query._view.shape[-1]
    S = key._view.shape[-2]
    if scale is None:
        e = E.as_const()
        sc: float | Tensor = 1.0 / math.sqrt(e) if e is not None else query.graph.constant(E).rsqrt()
    else:
        sc = float(scale)
    q, k, v = query, key, value
    hq = hkv = Expr(1)
    gqa = False
    if enable_gqa and query.ndim >= 3 and key.ndim >= 3:
        hq, hkv = query._view.shape[-3], key._view.shape[-3]
        cq, ckv = hq.as_const(), hkv.as_const()
        if cq is None or ckv is None or ckv == 0 or cq % ckv or value._view.shape[-3].as_const() != ckv:
            raise ShapeError(
                f"[scaled_dot_product_attention] enable_gqa needs query heads ({hq}) to be a multiple of "
                f"key/value heads ({hkv}, {value._view.shape[-3]})"
            )
        if cq != ckv:
            gqa = True
            rep = Expr(cq // ckv)
            qs = list(query._view.shape)
            q = query.reshape(qs[:-3] + [hkv, rep] + qs[-2:])  # (..., Hkv, rep, L, E)
            k = key.unsqueeze(-3)  # (..., Hkv, 1, S, E)
            v = value.unsqueeze(-3)

    def attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None) -> Tensor:
        scores = (q @ k.mT) * sc
        if gqa:  # back to (..., Hq, L, S) for the masks
            ss = list(scores._view.shape)
            scores = scores.reshape(ss[:-4] + [hq] + ss[-2:])
        if bias is not None:
            scores = scores + bias
        if attn_mask is not None:
            scores = scores + _mask_bias(attn_mask)
        p = _safe_softmax(scores)
        if gqa:
            ps = list(p._view.shape)
            p = p.reshape(ps[:-3] + [hkv, Expr(int(hq.as_const() or 0) // int(hkv.as_const() or 1))] + ps[-2:])
            out = p @ v
            os_ = list(out._view.shape)
            return out.reshape(os_[:-4] + [hq] + os_[-2:])
        return p @ v

    if not is_causal:
        return attend(q, k, v, None)
    length = L.as_const()
    if attn_mask is not None or not same(L, S) or (length is not None and length < 64):
        return attend(q, k, v, _causal_bias(query, L, S))
    # The first half of the queries sees only the first half of the keys:
    # running it on those alone skips a quarter of the work, terms that are
    # exp(-inf) = 0 (1.4-1.6x faster at 1024 queries; no slower at 64).
    half = L // 2
    top = attend(q.narrow(-2, 0, half), k.narrow(-2, 0, half), v.narrow(-2, 0, half),
                 _causal_bias(query, half, half))
    bottom = attend(q.narrow(-2, half, L - half), k, v, _causal_bias(query, L - half, S, half))
    return cat([top, bottom], dim=-2)
