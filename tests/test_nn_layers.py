"""luminal.nn layers vs torch.nn: same weights (torch's state_dict loaded),
same input, same output, on every backend."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as tnn

import luminal as lm
import luminal.nn as nn
from nn_helpers import compare, randn


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# ---------------------------------------------------------------- linear, embedding

@pytest.mark.parametrize("bias", [True, False])
def test_linear(backend: Any, bias: bool) -> None:
    compare(backend, nn.Linear(5, 3, bias=bias), tnn.Linear(5, 3, bias=bias), [randn(2, 4, 5)])


def test_linear_1d_input(backend: Any) -> None:
    compare(backend, nn.Linear(4, 2), tnn.Linear(4, 2), [randn(4)])


def test_embedding(backend: Any) -> None:
    ids = np.array([[0, 3, 9], [9, 1, 3]], dtype=np.int32)
    compare(backend, nn.Embedding(10, 4), tnn.Embedding(10, 4), [ids], int_inputs=[0])
    compare(backend, nn.Embedding(10, 4, padding_idx=-1), tnn.Embedding(10, 4, padding_idx=-1), [ids],
            int_inputs=[0])


def test_embedding_from_pretrained(backend: Any) -> None:
    table = randn(6, 3)
    emb = nn.Embedding.from_pretrained(table)
    assert not emb.weight.requires_grad
    cx = lm.Graph()
    y = emb(cx.tensor((4,), dtype="i32").set([5, 0, 2, 2])).retrieve()
    backend.run(cx)
    np.testing.assert_array_equal(y.numpy(), table[[5, 0, 2, 2]])


# ---------------------------------------------------------------- activations and simple layers

ACTIVATIONS = [
    ("ReLU", ()), ("ReLU6", ()), ("GELU", ()), ("GELU", ("tanh",)), ("SiLU", ()), ("Sigmoid", ()), ("Tanh", ()),
    ("LeakyReLU", ()), ("LeakyReLU", (0.2,)), ("ELU", ()), ("ELU", (0.5,)), ("Softplus", ()),
    ("Softplus", (2.0, 5.0)), ("Mish", ()), ("Hardswish", ()), ("Hardsigmoid", ()), ("Identity", ()),
    ("Softmax", (-1,)), ("Softmax", (1,)), ("LogSoftmax", (-1,)),
]


@pytest.mark.parametrize("name,args", ACTIVATIONS, ids=[f"{n}{a}" for n, a in ACTIVATIONS])
def test_activation(backend: Any, name: str, args: tuple[Any, ...]) -> None:
    compare(backend, getattr(nn, name)(*args), getattr(tnn, name)(*args), [randn(3, 4, 5, scale=3.0)],
            atol=1e-5, rtol=1e-4)


def test_activation_stack(backend: Any) -> None:
    ours = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 4), nn.SiLU(), nn.Tanh(), nn.Mish())
    theirs = tnn.Sequential(tnn.Linear(3, 4), tnn.Sigmoid(), tnn.Linear(4, 4), tnn.SiLU(), tnn.Tanh(), tnn.Mish())
    compare(backend, ours, theirs, [randn(2, 3, scale=2.0)], atol=1e-5, rtol=1e-4)


def test_softmax_implicit_dim(backend: Any) -> None:
    with pytest.warns(UserWarning, match="Implicit dimension"):
        compare(backend, nn.Softmax(), tnn.Softmax(), [randn(2, 3, 4)])


def test_flatten_unflatten(backend: Any) -> None:
    compare(backend, nn.Flatten(), tnn.Flatten(), [randn(2, 3, 4, 5)])
    compare(backend, nn.Flatten(0, 2), tnn.Flatten(0, 2), [randn(2, 3, 4, 5)])
    compare(backend, nn.Unflatten(1, (3, 4)), tnn.Unflatten(1, (3, 4)), [randn(2, 12, 5)])


def test_dropout_eval_is_identity(backend: Any) -> None:
    x = randn(4, 8)
    compare(backend, nn.Dropout(0.5), tnn.Dropout(0.5), [x])  # eval
    compare(backend, nn.Dropout(0.0), tnn.Dropout(0.0), [x], train=True)


def test_dropout_train(backend: Any) -> None:
    # no RNG in luminal graphs: training-mode dropout with 0 < p < 1 refuses to build
    with pytest.raises(NotImplementedError, match="call model.eval"):
        nn.Dropout(0.25)(lm.Graph().tensor((4, 4)))
    x = randn(4, 8)
    compare(backend, nn.Dropout(1.0), tnn.Dropout(1.0), [x], train=True)  # all zeros, as torch


# ---------------------------------------------------------------- normalisation

@pytest.mark.parametrize("kw", [{}, {"elementwise_affine": False}, {"bias": False}, {"eps": 1e-3}])
def test_layer_norm(backend: Any, kw: dict[str, Any]) -> None:
    t = tnn.LayerNorm((4, 5), **kw)
    for p in t.parameters():
        p.data.uniform_(-2, 2)
    compare(backend, nn.LayerNorm((4, 5), **kw), t, [randn(3, 4, 5, scale=2.0)], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kw", [{}, {"eps": 1e-3}, {"elementwise_affine": False}])
def test_rms_norm(backend: Any, kw: dict[str, Any]) -> None:
    t = tnn.RMSNorm(6, **kw)
    for p in t.parameters():
        p.data.uniform_(-2, 2)
    compare(backend, nn.RMSNorm(6, **kw), t, [randn(2, 3, 6)], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kw", [{}, {"affine": False}, {"bias": False}])
def test_group_norm(backend: Any, kw: dict[str, Any]) -> None:
    if "bias" in kw and "bias" not in inspect.signature(tnn.GroupNorm).parameters:
        pytest.skip("this torch's GroupNorm takes no bias argument")
    t = tnn.GroupNorm(2, 6, **kw)
    for p in t.parameters():
        p.data.uniform_(-2, 2)
    compare(backend, nn.GroupNorm(2, 6, **kw), t, [randn(2, 6, 3, 4)], atol=1e-5, rtol=1e-4)


def _bn_pair(cls: str, n: int, **kw: Any) -> tuple[nn.Module, tnn.Module]:
    t = getattr(tnn, cls)(n, **kw)
    for p in t.parameters():
        p.data.uniform_(-2, 2)
    if t.running_mean is not None:
        t.running_mean.uniform_(-1, 1)
        t.running_var.uniform_(0.5, 2)
        t.num_batches_tracked.fill_(7)
    return getattr(nn, cls)(n, **kw), t


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_batch_norm_2d(backend: Any, train: bool) -> None:
    ours, theirs = _bn_pair("BatchNorm2d", 3)
    compare(backend, ours, theirs, [randn(4, 3, 5, 5, scale=2.0)], atol=1e-5, rtol=1e-4, train=train)
    assert int(ours.num_batches_tracked.data) == 7  # loaded; train mode does not update running stats


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_batch_norm_1d(backend: Any, train: bool) -> None:
    ours, theirs = _bn_pair("BatchNorm1d", 4)
    compare(backend, ours, theirs, [randn(6, 4)], atol=1e-5, rtol=1e-4, train=train)
    ours, theirs = _bn_pair("BatchNorm1d", 4)
    compare(backend, ours, theirs, [randn(3, 4, 5)], atol=1e-5, rtol=1e-4, train=train)


def test_batch_norm_variants(backend: Any) -> None:
    ours, theirs = _bn_pair("BatchNorm2d", 3, track_running_stats=False)  # batch stats even in eval
    compare(backend, ours, theirs, [randn(2, 3, 4, 4)], atol=1e-5, rtol=1e-4)
    ours, theirs = _bn_pair("BatchNorm2d", 3, affine=False, eps=1e-2)
    compare(backend, ours, theirs, [randn(2, 3, 4, 4)], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(lm.Graph().tensor((2, 3, 4)))


# ---------------------------------------------------------------- convolutions and pooling

CONV2D = [
    {},
    {"stride": 2, "padding": 1},
    {"padding": (2, 1), "dilation": (2, 1)},
    {"groups": 2, "bias": False},
    {"padding": "same", "dilation": 2},
    {"padding": "valid", "stride": (1, 2)},
]


@pytest.mark.parametrize("kw", CONV2D, ids=[str(k) for k in CONV2D])
def test_conv2d(backend: Any, kw: dict[str, Any]) -> None:
    compare(backend, nn.Conv2d(4, 6, 3, **kw), tnn.Conv2d(4, 6, 3, **kw), [randn(2, 4, 7, 8)], atol=1e-5, rtol=1e-4)


def test_conv2d_unbatched_and_rect_kernel(backend: Any) -> None:
    compare(backend, nn.Conv2d(2, 3, (1, 3)), tnn.Conv2d(2, 3, (1, 3)), [randn(2, 5, 6)], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv2d_padding_mode(backend: Any, mode: str) -> None:
    ours = nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode)
    theirs = tnn.Conv2d(2, 3, 3, padding=1, padding_mode=mode)
    compare(backend, ours, theirs, [randn(1, 2, 5, 5)], atol=1e-5, rtol=1e-4)
    kw: dict[str, Any] = {"padding": "same", "dilation": (1, 2), "padding_mode": mode}
    compare(backend, nn.Conv2d(2, 3, (2, 3), **kw), tnn.Conv2d(2, 3, (2, 3), **kw), [randn(1, 2, 6, 7)],
            atol=1e-5, rtol=1e-4)
    compare(backend, nn.Conv1d(2, 3, 3, padding=2, padding_mode=mode),
            tnn.Conv1d(2, 3, 3, padding=2, padding_mode=mode), [randn(2, 2, 6)], atol=1e-5, rtol=1e-4)


CONV1D = [{}, {"stride": 2, "padding": 2}, {"dilation": 2, "groups": 2}, {"padding": "same"}]


@pytest.mark.parametrize("kw", CONV1D, ids=[str(k) for k in CONV1D])
def test_conv1d(backend: Any, kw: dict[str, Any]) -> None:
    compare(backend, nn.Conv1d(4, 6, 3, **kw), tnn.Conv1d(4, 6, 3, **kw), [randn(2, 4, 11)], atol=1e-5, rtol=1e-4)


CONVT = [
    {},
    {"stride": 2},
    {"stride": 2, "padding": 1, "output_padding": 1},
    {"groups": 2, "dilation": 2, "bias": False},
]


@pytest.mark.parametrize("kw", CONVT, ids=[str(k) for k in CONVT])
def test_conv_transpose2d(backend: Any, kw: dict[str, Any]) -> None:
    compare(backend, nn.ConvTranspose2d(4, 6, 3, **kw), tnn.ConvTranspose2d(4, 6, 3, **kw), [randn(2, 4, 5, 4)],
            atol=1e-5, rtol=1e-4)


def test_conv_transpose2d_output_size(backend: Any) -> None:
    compare(backend, nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1), tnn.ConvTranspose2d(2, 3, 3, stride=2, padding=1),
            [randn(1, 2, 4, 4)], kwargs={"output_size": (8, 8)}, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="valid sizes"):
        nn.ConvTranspose2d(2, 3, 3, stride=2)(lm.Graph().tensor((1, 2, 4, 4)), output_size=(20, 20))


POOL = [
    ("MaxPool2d", (2,), {}),
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1}),
    ("MaxPool2d", (2,), {"dilation": 2, "ceil_mode": True}),
    ("AvgPool2d", (2,), {}),
    ("AvgPool2d", (3,), {"stride": 2, "padding": 1}),
    ("AvgPool2d", (3,), {"stride": 2, "padding": 1, "count_include_pad": False, "ceil_mode": True}),
    ("AvgPool2d", (2,), {"divisor_override": 3}),
]


@pytest.mark.parametrize("name,args,kw", POOL, ids=[f"{n}{a}{k}" for n, a, k in POOL])
def test_pool2d(backend: Any, name: str, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    compare(backend, getattr(nn, name)(*args, **kw), getattr(tnn, name)(*args, **kw), [randn(2, 3, 7, 8)],
            atol=1e-6, rtol=1e-5)


def test_max_pool2d_return_indices(backend: Any) -> None:
    compare(backend, nn.MaxPool2d(2, return_indices=True), tnn.MaxPool2d(2, return_indices=True),
            [randn(1, 2, 4, 6)])


# ---------------------------------------------------------------- a whole model

def test_small_cnn(backend: Any) -> None:
    def build(m: Any) -> Any:
        return m.Sequential(
            m.Conv2d(3, 8, 3, padding=1), m.BatchNorm2d(8), m.ReLU(), m.MaxPool2d(2),
            m.Conv2d(8, 8, 3, padding=1, groups=2), m.GroupNorm(4, 8), m.SiLU(), m.AvgPool2d(2),
            m.Flatten(), m.Dropout(0.2), m.Linear(8 * 2 * 2, 10), m.LogSoftmax(-1),
        )

    theirs = build(tnn)
    theirs[1].running_mean.uniform_(-0.5, 0.5)
    theirs[1].running_var.uniform_(0.5, 1.5)
    compare(backend, build(nn), theirs, [randn(2, 3, 8, 8)], atol=1e-4, rtol=1e-4)


def test_symbolic_batch(backend: Any) -> None:
    """One graph, built once over a symbolic batch dim, run at two batch sizes."""
    theirs = tnn.Sequential(tnn.Linear(4, 8), tnn.LayerNorm(8), tnn.GELU(), tnn.Linear(8, 3))
    ours = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 3))
    ours.load_state_dict(theirs.state_dict())
    cx = lm.Graph()
    x = cx.tensor(("batch", 4))
    y = ours(x).retrieve()
    for n in (3, 7):
        data = randn(n, 4, seed=n)
        x.set(data)
        backend.run(cx)
        with torch.no_grad():
            want = theirs(torch.from_numpy(data)).numpy()
        np.testing.assert_allclose(y.numpy(), want, atol=1e-5, rtol=1e-4)


def test_batch_norm_train_graph_takes_new_weights_after_compile(backend: Any) -> None:
    ours, theirs = _bn_pair("BatchNorm2d", 3)
    ours.load_state_dict(theirs.state_dict())
    ours.train()
    theirs.train()
    x = randn(2, 3, 4, 4)
    cx = lm.Graph()
    y = ours(cx.tensor(x.shape).set(x)).retrieve()
    backend.run(cx)
    with torch.no_grad():
        for p in theirs.parameters():
            p.mul_(-2)
        ours.load_state_dict(theirs.state_dict())
        want = theirs(torch.from_numpy(x)).numpy()
    backend.run(cx)
    np.testing.assert_allclose(y.numpy(), want, atol=1e-5, rtol=1e-4)
