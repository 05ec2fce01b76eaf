"""F.dropout and friends: the deterministic cases match PyTorch; training-mode
dropout with 0 < p < 1 needs an RNG luminal does not have, and says so."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as TF

import luminal as lm
import luminal.nn.functional as F
from helpers import SPECIALS, check

DROPOUTS = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]
SHAPES = {"dropout": (3, 4), "dropout1d": (2, 3, 4), "dropout2d": (2, 3, 4, 2), "dropout3d": (2, 3, 2, 2, 2),
          "alpha_dropout": (3, 4), "feature_alpha_dropout": (2, 3, 4, 2)}


def _data(shape):
    flat = np.resize(SPECIALS, int(np.prod(shape)))
    return flat.reshape(shape).astype(np.float32)


@pytest.mark.parametrize("name", DROPOUTS)
def test_eval_is_identity(backend, name):
    x = _data(SHAPES[name])
    out = check(backend, [], lambda t: getattr(TF, name)(t, 0.3, training=False),
                lambda t: getattr(F, name)(t, 0.3, training=False), data=[x])
    np.testing.assert_array_equal(out[0], x)


@pytest.mark.parametrize("name", ["dropout", "dropout2d"])
def test_p_zero_and_one_while_training(backend, name):
    x = _data(SHAPES[name])
    check(backend, [], lambda t: getattr(TF, name)(t, 0.0, training=True),
          lambda t: getattr(F, name)(t, 0.0, training=True), data=[x])
    # p = 1: torch multiplies by zeros, so inf and NaN become NaN.
    check(backend, [], lambda t: getattr(TF, name)(t, 1.0, training=True),
          lambda t: getattr(F, name)(t, 1.0, training=True), data=[x])


def test_dropout_default_is_training():
    cx = lm.Graph()
    with pytest.raises(NotImplementedError, match="RNG"):
        F.dropout(cx.tensor((3,)))
    with pytest.raises(NotImplementedError, match="training=False"):
        F.dropout(cx.tensor((3,)), 0.1, True)


def test_dropout_bad_p():
    cx = lm.Graph()
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            F.dropout(cx.tensor((3,)), p, training=False)
