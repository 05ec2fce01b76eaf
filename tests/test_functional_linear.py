"""F.linear / F.bilinear, lm.bmm and lm.einsum against PyTorch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import luminal as lm
import luminal.nn.functional as F
from helpers import check


def test_linear_bias(backend):
    check(backend, [(3, 5, 7), (11, 7), (11,)], TF.linear, F.linear, atol=1e-5)


def test_linear_no_bias_and_vector_weight(backend):
    check(backend, [(4, 7), (3, 7)], lambda x, w: TF.linear(x, w), lambda x, w: F.linear(x, w))
    check(backend, [(2, 4, 7), (7,)], TF.linear, F.linear)


def test_linear_shape_error():
    cx = lm.Graph()
    with pytest.raises(lm.ShapeError, match=r"\[linear\]"):
        F.linear(cx.tensor((2, 5)), cx.tensor((3, 4)))


def test_bilinear(backend):
    check(backend, [(3, 4), (3, 5), (6, 4, 5), (6,)], TF.bilinear, F.bilinear, atol=1e-4)


def test_bmm(backend):
    check(backend, [(3, 5, 7), (3, 7, 2)], torch.bmm, lm.bmm)
    check(backend, [(3, 5, 7), (3, 7, 2)], torch.bmm, F.bmm)


def test_bmm_rejects_broadcasting():
    cx = lm.Graph()
    with pytest.raises(lm.ShapeError, match="batch sizes"):
        lm.bmm(cx.tensor((3, 5, 7)), cx.tensor((1, 7, 2)))
    with pytest.raises(lm.ShapeError, match="3-d"):
        lm.bmm(cx.tensor((5, 7)), cx.tensor((7, 2)))


EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 5, 7), (2, 3, 6, 7)]),
    ("bhqk,bhkd->bhqd", [(2, 3, 5, 6), (2, 3, 6, 7)]),
    ("i,j->ij", [(3,), (5,)]),
    ("ij->i", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ii->i", [(5, 5)]),
    ("ii", [(5, 5)]),
    ("bii->b", [(2, 4, 4)]),
    ("ij,ij->", [(3, 4), (3, 4)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("...ij,...jk", [(2, 3, 4), (4, 5)]),
    ("...d,...d->...", [(2, 3, 4), (3, 4)]),
    ("...d,...d->...", [(3, 4), (2, 3, 4)]),  # ellipses align from the right
    ("a...,...->a...", [(2, 3), (4, 3)]),
    ("b...,b...->b", [(2, 3, 4), (2, 3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("bij->bji", [(2, 3, 4)]),
    ("ji", [(3, 4)]),
    ("ijk,ikl->jl", [(2, 3, 4), (2, 4, 5)]),
    ("b i d, b j d -> b i j", [(2, 3, 4), (2, 5, 4)]),
    ("ab,cd->abcd", [(2, 1), (3, 2)]),
    ("ij,kj->ik", [(1, 4), (3, 4)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum(backend, eq, shapes):
    check(backend, shapes, lambda *xs: torch.einsum(eq, *xs), lambda *xs: lm.einsum(eq, *xs), atol=1e-5)


def test_einsum_list_operands_and_functional(backend):
    check(backend, [(3, 4), (4, 5)], lambda a, b: torch.einsum("ij,jk", [a, b]),
          lambda a, b: F.einsum("ij,jk", [a, b]))


def test_einsum_errors():
    cx = lm.Graph()
    a, b = cx.tensor((3, 4)), cx.tensor((5, 6))
    with pytest.raises(ValueError, match="operands"):
        lm.einsum("ij,jk->ik", a)
    with pytest.raises(lm.ShapeError, match="label 'j'"):
        lm.einsum("ij,jk->ik", a, b)
    with pytest.raises(ValueError, match="does not fit"):
        lm.einsum("ijk->i", a)
    with pytest.raises(ValueError, match="appears in no operand"):
        lm.einsum("ij->iz", a)


def test_einsum_matmul_is_one_multiply_and_reduce():
    cx = lm.Graph()
    out = lm.einsum("bhqd,bhkd->bhqk", cx.tensor((2, 3, 5, 7)), cx.tensor((2, 3, 6, 7))).retrieve()
    ops = [n["op"] for n in cx.nodes()]
    assert ops.count("Mul") == 1 and ops.count("SumReduce") == 1 and "Contiguous" not in ops
    assert out.shape == (2, 3, 5, 6)
