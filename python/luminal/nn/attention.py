"""``MultiheadAttention``, with torch's parameters (``in_proj_weight``,
``in_proj_bias``, ``out_proj``, optional ``q/k/v_proj_weight``, ``bias_k``,
``bias_v``) and forward semantics.

Masks follow torch: a *boolean* mask marks positions that may NOT be attended
(True = masked out, becomes ``-inf``); a float mask is added to the scores.
A mask is read as boolean when it is

* a numpy array or torch tensor of dtype bool (or an integer dtype), or
* a luminal ``Tensor`` of dtype ``"bool"`` (comparisons such as ``ids == pad``
  return one) or ``"i32"`` (nonzero = masked out);

any float array or ``"f32"`` Tensor is additive. numpy/torch masks become
graph inputs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import luminal.nn.functional as F
from luminal.dtype import _as_numpy
from luminal.hl_ops.elementwise import where
from luminal.hl_ops.movement import cat
from luminal.nn import init
from luminal.nn.linear import Linear
from luminal.nn.module import Module, param_tensor
from luminal.nn.parameter import Parameter
from luminal.tensor import Tensor

MaskLike = Any  # Tensor | np.ndarray | torch.Tensor | None


def additive_mask(mask: MaskLike, graph: Any, name: str) -> Tensor | None:
    """``mask`` as a float tensor to add to attention scores (``-inf`` where a
    boolean mask is True). numpy/torch masks become inputs of ``graph``."""
    if mask is None:
        return None
    if isinstance(mask, Tensor):
        if mask.graph is not graph:
            raise ValueError(f"[MultiheadAttention] {name} belongs to a different graph")
        if mask.dtype in ("i32", "bool"):
            return where(mask.ne(0), float("-inf"), 0.0)
        return mask
    arr = _as_numpy(mask)
    if arr.dtype.kind in "biu":
        arr = np.where(arr != 0, -np.inf, 0.0)
    arr = np.asarray(arr, dtype=np.float32)
    return graph.tensor(arr.shape, name=name).set(arr)  # type: ignore[no-any-return]


def causal_mask(graph: Any, L: Any, S: Any) -> Tensor:
    """The additive causal mask (``-inf`` above the diagonal), ``(L, S)``."""
    if not isinstance(L, int) or not isinstance(S, int):
        raise ValueError("is_causal without attn_mask needs static sequence lengths")
    arr = np.triu(np.full((L, S), -np.inf, dtype=np.float32), 1)
    return graph.tensor((L, S), name="causal_mask").set(arr)  # type: ignore[no-any-return]


class NonDynamicallyQuantizableLinear(Linear):
    """A ``Linear`` (torch's name for ``MultiheadAttention.out_proj``)."""


class MultiheadAttention(Module):
    """Multi-head attention, like ``torch.nn.MultiheadAttention``.

    >>> mha = nn.MultiheadAttention(16, 4, batch_first=True)
    >>> out, weights = mha(x, x, x)          # (N, L, 16), (N, L, L) head-averaged

    Inputs are ``(L, N, E)`` (or ``(N, L, E)`` with ``batch_first``) or
    unbatched ``(L, E)``. ``attn_mask`` is ``(L, S)`` or ``(N*num_heads, L,
    S)``; ``key_padding_mask`` is ``(N, S)``; see the module docstring for
    boolean vs additive masks. ``is_causal=True`` without ``attn_mask`` builds
    the causal mask (torch raises there). Attention dropout (``dropout > 0`` in
    training mode) raises ``NotImplementedError``: graphs have no random
    numbers, so build inference graphs after ``eval()``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                             f"and num_heads={num_heads} instead")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        f32 = np.float32
        if not self._qkv_same_embed_dim:
            self.q_proj_weight: Parameter | None = Parameter(np.empty((embed_dim, embed_dim), f32))
            self.k_proj_weight: Parameter | None = Parameter(np.empty((embed_dim, self.kdim), f32))
            self.v_proj_weight: Parameter | None = Parameter(np.empty((embed_dim, self.vdim), f32))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight: Parameter | None = Parameter(np.empty((3 * embed_dim, embed_dim), f32))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias: Parameter | None = Parameter(np.empty((3 * embed_dim,), f32))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias)
        if add_bias_kv:
            self.bias_k: Parameter | None = Parameter(np.empty((1, 1, embed_dim), f32))
            self.bias_v: Parameter | None = Parameter(np.empty((1, 1, embed_dim), f32))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            assert self.in_proj_weight is not None
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for p in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                assert p is not None
                init.xavier_uniform_(p)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
        if self.out_proj.bias is not None:
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None and self.bias_v is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _projections(self, g: Any) -> tuple[list[Tensor], list[Tensor | None]]:
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            assert self.in_proj_weight is not None
            w = self.in_proj_weight.tensor(g)
            ws = [w[0:E], w[E:2 * E], w[2 * E:3 * E]]
        else:
            ws = [p.tensor(g) for p in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
                  if p is not None]
        b = param_tensor(self.in_proj_bias, g)
        bs: list[Tensor | None] = [None] * 3 if b is None else [b[0:E], b[E:2 * E], b[2 * E:3 * E]]
        return ws, bs

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: MaskLike = None,
        need_weights: bool = True,
        attn_mask: MaskLike = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        g = query.graph
        if query.ndim not in (2, 3):
            raise ValueError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D")
        unbatched = query.ndim == 2
        if unbatched:
            q, k, v = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
        elif self.batch_first:
            q, k, v = query, key, value
        else:
            q, k, v = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        N, L, E = q.shape
        if E != self.embed_dim:
            raise ValueError(f"was expecting embedding dimension of {self.embed_dim}, but got {E}")
        H, hd = self.num_heads, self.head_dim

        (wq, wk, wv), (bq, bk, bv) = self._projections(g)
        q, k, v = F.linear(q, wq, bq), F.linear(k, wk, bk), F.linear(v, wv, bv)
        S0 = k.shape[1]

        extra = 0  # key positions appended after the real ones (bias_kv, zero_attn)
        if self.bias_k is not None and self.bias_v is not None:
            k = cat([k, self.bias_k.tensor(g).expand(N, 1, E)], 1)
            v = cat([v, self.bias_v.tensor(g).expand(N, 1, E)], 1)
            extra += 1

        def heads(t: Tensor) -> Tensor:  # (N, T, E) -> (N, H, T, hd)
            return t.reshape(N, t.shape[1], H, hd).permute(0, 2, 1, 3)

        q, k, v = heads(q), heads(k), heads(v)
        if self.add_zero_attn:
            zeros = g.zeros((N, H, 1, hd))
            k, v = cat([k, zeros], 2), cat([v, zeros], 2)
            extra += 1

        # The causal mask alone goes to scaled_dot_product_attention as
        # is_causal: computed from indices (any lengths, no mask input), and
        # the first half of the queries runs over the first half of the keys.
        causal_only = (is_causal and attn_mask is None and key_padding_mask is None and not extra
                       and not need_weights)
        mask = additive_mask(attn_mask, g, "attn_mask")
        if mask is None and is_causal and not causal_only:
            mask = causal_mask(g, L, S0)
        if mask is not None:
            if mask.ndim == 3:
                mask = mask.reshape(N, H, L, S0)
            elif mask.ndim != 2:
                raise ValueError(f"attn_mask's dimension {mask.ndim} is not supported")
        kpm = additive_mask(key_padding_mask, g, "key_padding_mask")
        if kpm is not None:
            kpm = kpm.reshape(N, 1, 1, S0)
        if extra:
            mask = None if mask is None else mask.pad([0, extra], 0.0)
            kpm = None if kpm is None else kpm.pad([0, extra], 0.0)

        if mask is not None and kpm is not None:
            mask = mask + kpm
        elif kpm is not None:
            mask = kpm
        dropout_p = self.dropout if self.training else 0.0
        if dropout_p > 0:
            raise NotImplementedError(
                f"MultiheadAttention(dropout={self.dropout}) in training mode needs random numbers, and "
                f"luminal graphs have no RNG primitive: call model.eval() before building the graph"
            )
        weights: Tensor | None = None
        if need_weights:
            scores = (q * math.sqrt(1.0 / hd)) @ k.transpose(-2, -1)  # (N, H, L, S)
            if mask is not None:
                scores = scores + mask
            weights = F.softmax(scores, -1)
            heads_out = weights @ v
        else:  # as torch: the fused attention, with the merged additive mask
            heads_out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal_only)
        out = heads_out.permute(0, 2, 1, 3).reshape(N, L, E)
        out = self.out_proj(out)

        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if weights is None:
            return out, None
        w = weights.mean(1) if average_attn_weights else weights
        return out, (w.squeeze(0) if unbatched else w)


def _relu(x: Tensor) -> Tensor:
    return F.relu(x)


def _gelu(x: Tensor) -> Tensor:
    return F.gelu(x)


def _activation(activation: Any) -> Any:
    """torch's ``_get_activation_fn``: "relu"/"gelu" or any callable (a Module too)."""
    if isinstance(activation, str):
        if activation == "relu":
            return _relu
        if activation == "gelu":
            return _gelu
        raise RuntimeError(f"activation should be relu/gelu, not {activation}")
    return activation
