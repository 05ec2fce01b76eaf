"""F.embedding / F.one_hot: re-exports of luminal.hl_ops.indexing under
torch.nn.functional's names (their full tests live in test_indexing.py)."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as TF

import luminal.nn.functional as F
from functional_helpers import check_typed
from helpers import rand


def test_embedding(backend):
    ids = np.array([[0, 4, 2], [3, 3, 1]], np.int32)
    check_typed(backend, [(ids, "i32"), (rand((5, 6), seed=1), "f32")], TF.embedding, F.embedding)


def test_one_hot(backend):
    labels = np.array([[0, 4, 2], [3, 3, 1]], np.int32)
    check_typed(backend, [(labels, "i32")], lambda t: TF.one_hot(t, 6), lambda t: F.one_hot(t, 6))
