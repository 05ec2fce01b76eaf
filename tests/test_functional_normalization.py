"""F.layer_norm, rms_norm, group_norm, batch_norm, instance_norm, normalize vs PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as TF

import luminal as lm
import luminal.nn.functional as F
from helpers import check, rand


def test_layer_norm_affine(backend):
    check(backend, [(3, 5, 7), (7,), (7,)], lambda x, w, b: TF.layer_norm(x, (7,), w, b, 1e-5),
          lambda x, w, b: F.layer_norm(x, (7,), w, b, 1e-5), atol=1e-5, rtol=1e-4)


def test_layer_norm_multi_dim_no_affine(backend):
    check(backend, [(3, 5, 7)], lambda x: TF.layer_norm(x, (5, 7), eps=1e-3),
          lambda x: F.layer_norm(x, (5, 7), eps=1e-3), atol=1e-5, rtol=1e-4)
    check(backend, [(3, 5, 7), (5, 7)], lambda x, w: TF.layer_norm(x, [5, 7], w),
          lambda x, w: F.layer_norm(x, [5, 7], w), atol=1e-5, rtol=1e-4)


def test_layer_norm_offset_data(backend):
    # Two-pass statistics: a large common offset must not destroy the variance.
    check(backend, [(4, 9)], lambda x: TF.layer_norm(x, (9,)), lambda x: F.layer_norm(x, (9,)),
          low=1000.0, high=1001.0, atol=2e-3, rtol=1e-3)


def test_layer_norm_shape_error():
    cx = lm.Graph()
    with pytest.raises(lm.ShapeError, match="normalized_shape"):
        F.layer_norm(cx.tensor((3, 5)), (4,))


@pytest.mark.parametrize("eps", [None, 1e-6, 0.5])
def test_rms_norm(backend, eps):
    check(backend, [(3, 4, 7), (7,)], lambda x, w: TF.rms_norm(x, (7,), w, eps),
          lambda x, w: F.rms_norm(x, (7,), w, eps), atol=1e-5, rtol=1e-4)


def test_rms_norm_default_eps_matters(backend):
    # Tiny inputs: the float32 machine-epsilon default dominates the mean square.
    check(backend, [(2, 5)], lambda x: TF.rms_norm(x, (5,)), lambda x: F.rms_norm(x, (5,)),
          low=-1e-4, high=1e-4, atol=1e-5, rtol=1e-4)
    check(backend, [(2, 3, 5)], lambda x: TF.rms_norm(x, [3, 5]), lambda x: F.rms_norm(x, [3, 5]),
          atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm(backend, groups):
    check(backend, [(2, 6, 5, 3), (6,), (6,)], lambda x, w, b: TF.group_norm(x, groups, w, b),
          lambda x, w, b: F.group_norm(x, groups, w, b), atol=1e-5, rtol=1e-4)


def test_group_norm_3d_no_affine(backend):
    check(backend, [(3, 6, 7)], lambda x: TF.group_norm(x, 3, eps=1e-2), lambda x: F.group_norm(x, 3, eps=1e-2),
          atol=1e-5, rtol=1e-4)
    with pytest.raises(lm.ShapeError, match="groups"):
        F.group_norm(lm.Graph().tensor((2, 6, 3)), 4)


def test_batch_norm_inference(backend):
    rm = rand((5,), seed=7)
    rv = rand((5,), 0.5, 2.0, seed=8)
    data = [rand((3, 5, 4, 2), seed=1), rm, rv, rand((5,), seed=2), rand((5,), seed=3)]
    check(backend, [], lambda x, m, v, w, b: TF.batch_norm(x, m, v, w, b, False, 0.1, 1e-3),
          lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, False, 0.1, 1e-3), data=data, atol=1e-5, rtol=1e-4)
    check(backend, [], lambda x, m, v: TF.batch_norm(x, m, v), lambda x, m, v: F.batch_norm(x, m, v),
          data=[rand((3, 5), seed=1), rm, rv], atol=1e-5, rtol=1e-4)


def test_batch_norm_training_uses_batch_stats(backend):
    rm, rv = rand((5,), seed=7), rand((5,), 0.5, 2.0, seed=8)
    data = [rand((3, 5, 4), seed=1), rm, rv, rand((5,), seed=2), rand((5,), seed=3)]
    check(backend, [], lambda x, m, v, w, b: TF.batch_norm(x, m.clone(), v.clone(), w, b, training=True),
          lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, training=True), data=data, atol=1e-5, rtol=1e-4)
    check(backend, [(4, 3, 2, 2)], lambda x: TF.batch_norm(x, None, None, training=True),
          lambda x: F.batch_norm(x, None, None, training=True), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(lm.Graph().tensor((2, 3)), None, None)


def test_instance_norm(backend):
    check(backend, [(2, 3, 5, 4), (3,), (3,)], lambda x, w, b: TF.instance_norm(x, weight=w, bias=b),
          lambda x, w, b: F.instance_norm(x, weight=w, bias=b), atol=1e-5, rtol=1e-4)
    rm, rv = rand((3,), seed=7), rand((3,), 0.5, 2.0, seed=8)
    check(backend, [], lambda x, m, v: TF.instance_norm(x, m, v, use_input_stats=False),
          lambda x, m, v: F.instance_norm(x, m, v, use_input_stats=False),
          data=[rand((2, 3, 6), seed=1), rm, rv], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, -1), (3.0, 0)])
def test_normalize(backend, p, dim):
    check(backend, [(4, 5, 3)], lambda x: TF.normalize(x, p, dim), lambda x: F.normalize(x, p, dim),
          atol=1e-5, rtol=1e-4)


def test_normalize_zero_vector(backend):
    x = np.zeros((2, 3), np.float32)
    x[1] = [3.0, 4.0, 0.0]
    check(backend, [], lambda t: TF.normalize(t, dim=1), lambda t: F.normalize(t, dim=1), data=[x],
          grad=False)  # torch clamps the zero norm in its backward too
