"""``Embedding``: a lookup table of ``num_embeddings`` rows."""

from __future__ import annotations

from typing import Any

import numpy as np

import luminal.nn.functional as F
from luminal.nn import init
from luminal.nn.module import Module
from luminal.nn.parameter import Parameter, as_array
from luminal.tensor import Tensor


class Embedding(Module):
    """Rows of ``weight`` ``(num_embeddings, embedding_dim)`` picked by integer
    indices (an ``"i32"`` input). Initialised N(0, 1), the ``padding_idx`` row
    zero, as in torch.

    >>> emb = nn.Embedding(10, 4)
    >>> ids = cx.tensor((2, 3), dtype="i32").set([[1, 2, 3], [4, 5, 6]])
    >>> emb(ids)                                        # (2, 3, 4)

    ``max_norm`` (which renormalises rows in place during forward in torch) is
    not supported; ``scale_grad_by_freq`` and ``sparse`` only concern
    gradients and are kept for the repr.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Any = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if max_norm is not None:
            raise NotImplementedError("[Embedding] max_norm is not supported (it rewrites weights during forward)")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx = padding_idx % num_embeddings
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=np.float32), not _freeze)
            self.reset_parameters()
        else:
            w = as_array(_weight)
            if w.shape != (num_embeddings, embedding_dim):
                raise ValueError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(w, not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            data = self.weight.data.copy()
            data[self.padding_idx] = 0
            self.weight.data = data

    def forward(self, input: Tensor) -> Tensor:
        return F.embedding(input, self.weight.tensor(input.graph), self.padding_idx)

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Any,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """An Embedding holding ``embeddings`` (2-D numpy array or torch tensor)."""
        w = as_array(embeddings)
        if w.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        return cls(w.shape[0], w.shape[1], padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=w, _freeze=freeze)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        if self.sparse:
            s += ", sparse=True"
        return s
