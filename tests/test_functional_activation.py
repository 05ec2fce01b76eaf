"""torch.nn.functional activations under their F names, against PyTorch,
including special values (NaN, ±inf, ±0, ±FLT_MAX)."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as TF

import luminal as lm
import luminal.nn.functional as F
from helpers import SPECIALS, check, rand


def _mixed(shape=(4, 9), seed=0):
    x = rand(shape, -6.0, 6.0, seed=seed).reshape(-1)
    x[: len(SPECIALS)] = SPECIALS
    return x.reshape(shape)


ACTS = [
    # (name, kwargs, atol, rtol)
    ("relu", {}, 0.0, 0.0),
    ("relu6", {}, 0.0, 0.0),
    ("leaky_relu", {}, 1e-7, 1e-6),
    ("leaky_relu", dict(negative_slope=0.2), 1e-7, 1e-6),
    ("elu", {}, 1e-6, 1e-5),
    ("elu", dict(alpha=0.5), 1e-6, 1e-5),
    ("selu", {}, 1e-6, 1e-5),
    ("celu", dict(alpha=0.7), 1e-6, 1e-5),
    ("gelu", {}, 1e-6, 1e-5),
    ("gelu", dict(approximate="tanh"), 1e-6, 1e-5),
    ("silu", {}, 1e-6, 1e-5),
    ("mish", {}, 1e-6, 1e-5),
    ("hardswish", {}, 1e-6, 1e-6),
    ("hardsigmoid", {}, 1e-7, 1e-6),
    ("hardtanh", {}, 0.0, 0.0),
    ("hardtanh", dict(min_val=-2.0, max_val=0.5), 0.0, 0.0),
    ("sigmoid", {}, 1e-7, 1e-6),
    ("tanh", {}, 1e-7, 1e-6),
    ("softplus", {}, 1e-6, 1e-5),
    ("softplus", dict(beta=2.0, threshold=5.0), 1e-6, 1e-5),
    ("logsigmoid", {}, 1e-6, 1e-5),
    ("softsign", {}, 1e-7, 1e-6),
    ("tanhshrink", {}, 1e-6, 1e-5),
    ("hardshrink", dict(lambd=0.7), 0.0, 0.0),
    ("softshrink", dict(lambd=0.7), 1e-7, 1e-6),
]


@pytest.mark.parametrize("name,kw,atol,rtol", ACTS, ids=[f"{a[0]}{a[1] or ''}" for a in ACTS])
def test_activation_finite(backend, name, kw, atol, rtol):
    check(backend, [(5, 7)], lambda x: getattr(TF, name)(x, **kw), lambda x: getattr(F, name)(x, **kw),
          low=-6.0, high=6.0, atol=atol, rtol=rtol)


SPECIAL_SAFE = ["relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "hardtanh", "sigmoid", "tanh",
                "softplus", "logsigmoid", "hardsigmoid", "softshrink"]


@pytest.mark.parametrize("name", SPECIAL_SAFE)
def test_activation_specials(backend, name):
    # torch in float64, rounded once: its float32 kernels answer specials by
    # CPU (gelu(inf) is inf with AVX2 and NaN with AVX-512 in torch 2.13).
    check(backend, [], lambda x: getattr(TF, name)(x.double()).float(), lambda x: getattr(F, name)(x),
          data=[_mixed()], atol=1e-6, rtol=1e-5)


def test_threshold(backend):
    check(backend, [(4, 6)], lambda x: TF.threshold(x, 0.3, -5.0), lambda x: F.threshold(x, 0.3, -5.0))
    check(backend, [], lambda x: TF.threshold(x, 0.0, float("-inf")), lambda x: F.threshold(x, 0.0, float("-inf")),
          data=[_mixed()])


def test_rrelu_eval_and_prelu(backend):
    check(backend, [(3, 5)], lambda x: TF.rrelu(x, 0.1, 0.3), lambda x: F.rrelu(x, 0.1, 0.3), atol=1e-7)
    check(backend, [(2, 3, 4), (3,)], TF.prelu, F.prelu, atol=1e-7)
    check(backend, [(2, 3, 4), (1,)], TF.prelu, F.prelu, atol=1e-7)
    with pytest.raises(NotImplementedError):
        F.rrelu(lm.Graph().tensor((3,)), training=True)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_family(backend, dim):
    check(backend, [(3, 4, 5)], lambda x: TF.softmax(x, dim), lambda x: F.softmax(x, dim), atol=1e-6, rtol=1e-5)
    check(backend, [(3, 4, 5)], lambda x: TF.log_softmax(x, dim=dim), lambda x: F.log_softmax(x, dim=dim),
          atol=1e-5, rtol=1e-5)
    check(backend, [(3, 4, 5)], lambda x: TF.softmin(x, dim), lambda x: F.softmin(x, dim), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (2, 3, 4, 2)])
def test_softmax_implicit_dim(backend, shape):
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = check(backend, [shape], lambda x: TF.softmax(x, dim=None), lambda x: F.softmax(x), atol=1e-6)
    assert out[0].shape == shape


def test_softmax_masked_row(backend):
    x = rand((3, 4), seed=2)
    x[1, :] = -np.inf
    x[2, 1] = -np.inf
    check(backend, [], lambda t: TF.softmax(t, -1), lambda t: F.softmax(t, -1), data=[x], atol=1e-6)


@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_glu(backend, dim):
    check(backend, [(4, 6, 2)], lambda x: TF.glu(x, dim), lambda x: F.glu(x, dim), atol=1e-6, rtol=1e-5)


def test_glu_odd_dim_error():
    with pytest.raises(lm.ShapeError, match="even"):
        F.glu(lm.Graph().tensor((3, 5)))


def test_inplace_is_accepted(backend):
    check(backend, [(3, 4)], lambda x: TF.relu(x.clone(), inplace=True), lambda x: F.relu(x, inplace=True))
