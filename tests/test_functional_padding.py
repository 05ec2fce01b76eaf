"""F.pad in every mode against PyTorch (exact: views, flips and concatenation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as TF

import luminal as lm
import luminal.nn.functional as F
from helpers import SPECIALS, check

CASES = [
    # (shape, pad); torch's non-constant modes pad the last 1-3 dims of 2-5-d inputs
    ((2, 3, 7), (2, 3)),
    ((2, 3, 5, 6), (2, 0, 1, 3)),
    ((2, 3, 5, 6), (0, 5, 4, 1)),
    ((1, 2, 4, 5, 3), (1, 2, 0, 3, 2, 1)),
]


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape,pad", CASES, ids=[str(c[1]) for c in CASES])
def test_pad_modes(backend, mode, shape, pad):
    if mode == "reflect" and any(p >= n for p, n in zip(pad, np.repeat(shape[::-1], 2))):
        pytest.skip("reflect needs pad < size")
    out = check(backend, [shape], lambda x: TF.pad(x, pad, mode), lambda x: F.pad(x, pad, mode), atol=0, rtol=0)
    assert out[0].size > 0


@pytest.mark.parametrize("pad,value", [((1, 2), None), ((2, 0, 1, 3), 1.5), ((-1, 2, 0, -2), -3.0),
                                       ((1, 1), float("-inf"))])
def test_pad_constant(backend, pad, value):
    check(backend, [(3, 5, 6)], lambda x: TF.pad(x, pad, value=value), lambda x: F.pad(x, pad, value=value),
          atol=0, rtol=0)


def test_pad_specials_are_exact(backend):
    x = np.resize(SPECIALS, (2, 2, 11)).astype(np.float32)
    for mode in ("reflect", "replicate", "circular"):
        check(backend, [], lambda t: TF.pad(t, (3, 4), mode), lambda t: F.pad(t, (3, 4), mode), data=[x])


def test_pad_errors():
    cx = lm.Graph()
    x = cx.tensor((2, 3, 4))
    with pytest.raises(ValueError, match="smaller than the dim size"):
        F.pad(x, (4, 0), "reflect")
    with pytest.raises(ValueError, match="mode"):
        F.pad(x, (1, 1), "wrap")
    with pytest.raises(lm.ShapeError, match="even length"):
        F.pad(x, (1, 1, 1))
