"""``Dropout``: zeroes elements with probability ``p`` in training, identity in eval."""

from __future__ import annotations

import luminal.nn.functional as F
from luminal.nn.module import Module
from luminal.tensor import Tensor


class Dropout(Module):
    """``F.dropout(x, p, training)``: identity after ``eval()`` (or with ``p=0``).

    The training flag is read when the graph is built (``forward``), so build
    the graph after ``eval()`` for inference. luminal graphs have no random
    numbers, so a training-mode forward with ``0 < p < 1`` raises
    ``NotImplementedError`` (see ``luminal.nn.functional.dropout``); torch
    modules start in training mode, and so do these.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return input
        try:
            return F.dropout(input, self.p, self.training)
        except NotImplementedError as e:
            raise NotImplementedError(
                f"{e}. This {type(self).__name__}(p={self.p}) is in training mode: call model.eval() "
                f"before building an inference graph"
            ) from e

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
