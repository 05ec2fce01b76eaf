"""luminal.nn's module system: state_dict names and shapes vs torch, loading
(torch tensors and numpy), errors, binding to graphs, weights across runs and
compiles, repr, modes, containers, init."""

from __future__ import annotations

import copy
import gc
import pickle
import weakref
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as tnn

import luminal as lm
import luminal.nn as nn
from luminal.tensor import Tensor


class Affine(nn.Module):
    """A layer written with plain tensor ops (independent of nn.functional)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(np.arange(n_out * n_in, dtype=np.float32).reshape(n_out, n_in) / 10)
        self.bias = nn.Parameter(np.ones(n_out, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        g = x.graph
        return x @ self.weight.tensor(g).mT + self.bias.tensor(g)


def np_affine(x: np.ndarray, m: Affine) -> np.ndarray:
    return np.asarray(x @ m.weight.data.T + m.bias.data, dtype=np.float32)


def shapes(sd: Any) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


# ---------------------------------------------------------------- state_dict names and shapes vs torch

def _tree_pair() -> tuple[nn.Module, tnn.Module]:
    class LmNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
            self.blocks = nn.ModuleList([
                nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)),
                nn.ModuleList([nn.Linear(4, 2, bias=False), nn.Embedding(5, 4), nn.GroupNorm(2, 4)]),
            ])
            self.head = nn.Sequential(OrderedDict([("drop", nn.Dropout(0.1)), ("fc", nn.Linear(4, 3))]))
            self.attn = nn.MultiheadAttention(8, 2, kdim=4, vdim=6, add_bias_kv=True)
            self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2)
            self.dec = nn.TransformerDecoderLayer(8, 2, 16, norm_first=True)
            self.misc = nn.ModuleList([nn.RMSNorm(4), nn.ConvTranspose2d(4, 2, 3), nn.Conv1d(2, 4, 3, groups=2),
                                       nn.BatchNorm2d(3, affine=False, track_running_stats=False),
                                       nn.LayerNorm(4, bias=False)])

    class TNet(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = tnn.Sequential(tnn.Conv2d(3, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU())
            self.blocks = tnn.ModuleList([
                tnn.Sequential(tnn.Linear(4, 4), tnn.LayerNorm(4)),
                tnn.ModuleList([tnn.Linear(4, 2, bias=False), tnn.Embedding(5, 4), tnn.GroupNorm(2, 4)]),
            ])
            self.head = tnn.Sequential(OrderedDict([("drop", tnn.Dropout(0.1)), ("fc", tnn.Linear(4, 3))]))
            self.attn = tnn.MultiheadAttention(8, 2, kdim=4, vdim=6, add_bias_kv=True)
            self.enc = tnn.TransformerEncoder(tnn.TransformerEncoderLayer(8, 2, 16), 2, enable_nested_tensor=False)
            self.dec = tnn.TransformerDecoderLayer(8, 2, 16, norm_first=True)
            self.misc = tnn.ModuleList([tnn.RMSNorm(4), tnn.ConvTranspose2d(4, 2, 3), tnn.Conv1d(2, 4, 3, groups=2),
                                        tnn.BatchNorm2d(3, affine=False, track_running_stats=False),
                                        tnn.LayerNorm(4, bias=False)])

    return LmNet(), TNet()


def test_state_dict_names_and_shapes_match_torch() -> None:
    ours, theirs = _tree_pair()
    sd, tsd = ours.state_dict(), theirs.state_dict()
    assert list(sd) == list(tsd)  # same names, same order
    assert shapes(sd) == shapes(tsd)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    assert sd["stem.1.num_batches_tracked"].dtype == np.int64
    for v in sd.values():
        assert isinstance(v, np.ndarray)


def test_load_torch_state_dict_round_trip() -> None:
    ours, theirs = _tree_pair()
    tsd = theirs.state_dict()
    result = ours.load_state_dict(tsd)
    assert result == nn.IncompatibleKeys([], [])
    assert result.missing_keys == [] and result.unexpected_keys == []
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v, tsd[k].numpy(), err_msg=k)
    # and back into torch
    theirs2 = _tree_pair()[1]
    theirs2.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    for k, v in theirs2.state_dict().items():
        assert torch.equal(v, tsd[k]), k


def test_state_dict_is_a_copy_and_keep_vars() -> None:
    m = Affine(2, 3)
    sd = m.state_dict()
    sd["weight"][...] = 100
    assert m.weight.data.max() < 100
    kv = m.state_dict(keep_vars=True)
    assert kv["weight"] is m.weight
    assert list(m.state_dict(prefix="net.")) == ["net.weight", "net.bias"]


def test_shared_parameter_listed_like_torch() -> None:
    a, ta = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3)), tnn.Sequential(tnn.Linear(3, 3), tnn.Linear(3, 3))
    a[1].weight = a[0].weight
    ta[1].weight = ta[0].weight
    assert list(a.state_dict()) == list(ta.state_dict())
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in ta.named_parameters()]


# ---------------------------------------------------------------- load_state_dict errors

def test_load_state_dict_lists_every_offender() -> None:
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    before = m.state_dict()
    bad = {
        "0.weight": np.zeros((3, 5), np.float32),  # shape mismatch
        "0.bias": np.zeros(3, np.float32),
        "2.weight": np.zeros((1, 3), np.float32),  # shape mismatch
        "extra.a": np.zeros(1), "extra.b": np.zeros(1),  # unexpected
        # "2.bias" missing
    }
    with pytest.raises(nn.StateDictError) as info:
        m.load_state_dict(bad)
    msg = str(info.value)
    for needle in ('"2.bias"', '"extra.a"', '"extra.b"', "0.weight", "(3, 5)", "(3, 4)", "2.weight", "(1, 3)"):
        assert needle in msg, (needle, msg)
    assert "Missing key(s)" in msg and "Unexpected key(s)" in msg and "size mismatch" in msg
    assert info.value.missing_keys == ["2.bias"]
    assert info.value.unexpected_keys == ["extra.a", "extra.b"]
    assert [k for k, _, _ in info.value.mismatched] == ["0.weight", "2.weight"]
    assert isinstance(info.value, RuntimeError)
    # nothing was changed (0.bias was loadable but the load failed as a whole)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_strict_false() -> None:
    m = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    t = tnn.Sequential(tnn.Linear(4, 3), tnn.Linear(3, 2))
    tsd = t.state_dict()
    partial = {"0.weight": tsd["0.weight"], "0.bias": tsd["0.bias"], "9.weight": torch.zeros(1)}
    res = m.load_state_dict(partial, strict=False)
    assert res.missing_keys == ["1.weight", "1.bias"]
    assert res.unexpected_keys == ["9.weight"]
    # torch's answer for the same call
    tres = tnn.Sequential(tnn.Linear(4, 3), tnn.Linear(3, 2)).load_state_dict(partial, strict=False)
    assert res.missing_keys == tres.missing_keys and res.unexpected_keys == tres.unexpected_keys
    np.testing.assert_array_equal(m.state_dict()["0.weight"], tsd["0.weight"].numpy())
    # shape mismatches are still errors
    with pytest.raises(nn.StateDictError, match="size mismatch for 0.bias"):
        m.load_state_dict({"0.bias": np.zeros(7)}, strict=False)
    # strict error for missing only
    with pytest.raises(nn.StateDictError, match='Missing key\\(s\\) in state_dict: "1.weight", "1.bias"'):
        m.load_state_dict({"0.weight": tsd["0.weight"], "0.bias": tsd["0.bias"]})


def test_load_state_dict_converts_types() -> None:
    m = nn.Linear(2, 2)
    m.load_state_dict({"weight": [[1, 2], [3, 4]], "bias": torch.tensor([1.0, 2.0], dtype=torch.float64)})
    assert m.weight.data.dtype == np.float32 and m.bias.data.dtype == np.float32
    np.testing.assert_array_equal(m.weight.data, [[1, 2], [3, 4]])
    m.load_state_dict({"weight": torch.ones(2, 2, dtype=torch.bfloat16), "bias": np.zeros(2, np.float16)})
    np.testing.assert_array_equal(m.weight.data, np.ones((2, 2)))
    with pytest.raises(TypeError):
        m.load_state_dict([("weight", np.zeros((2, 2)))])  # type: ignore[arg-type]


# ---------------------------------------------------------------- binding to graphs

def test_bind_names_graph_parameters_by_state_dict_name(backend: Any) -> None:
    model = nn.Sequential(Affine(3, 4), nn.Sequential(Affine(4, 2)))
    cx = lm.Graph()
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = model(cx.tensor((2, 3)).set(x)).retrieve()
    names = {cx._names[p.tensor(cx)._handle] for p in model.parameters()}
    assert names == {"0.weight", "0.bias", "1.0.weight", "1.0.bias"}
    assert all(p.is_bound(cx) for p in model.parameters())
    # the same tensor every time: no new inputs
    n = cx.node_count()
    t1 = model[0].weight.tensor(cx)
    assert t1._handle == model[0].weight.tensor(cx)._handle and cx.node_count() == n
    backend.run(cx)
    want = np_affine(np_affine(x, model[0]), model[1][0])
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-6)


def test_weights_survive_runs_and_load_after_compile(backend: Any) -> None:
    model = nn.Sequential(Affine(3, 4), Affine(4, 2))
    cx = lm.Graph()
    x = cx.tensor((2, 3))
    y = model(x).retrieve()
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    x.set(data)
    backend.run(cx)  # compiles the first time
    first = y.numpy()
    np.testing.assert_allclose(first, np_affine(np_affine(data, model[0]), model[1]), rtol=1e-6)
    # second run with new input only: weights are still there
    x.set(data * 2)
    backend.run(cx)
    np.testing.assert_allclose(y.numpy(), np_affine(np_affine(data * 2, model[0]), model[1]), rtol=1e-6)
    # new weights through load_state_dict after compile change the next result
    sd = {k: v * -0.5 for k, v in model.state_dict().items()}
    model.load_state_dict(sd)
    backend.run(cx)
    got = y.numpy()
    np.testing.assert_allclose(got, np_affine(np_affine(data * 2, model[0]), model[1]), rtol=1e-6)
    assert not np.allclose(got, first)
    # and through p.data / nn.init
    nn.init.zeros_(model[1].weight)
    model[1].bias.data = np.array([5.0, 6.0])
    backend.run(cx)
    np.testing.assert_array_equal(y.numpy(), np.tile([5.0, 6.0], (2, 1)).astype(np.float32))


def test_module_in_two_graphs(backend: Any) -> None:
    model = Affine(3, 2)
    c1, c2 = lm.Graph(), lm.Graph()
    a = np.ones((1, 3), np.float32)
    b = np.arange(6, dtype=np.float32).reshape(2, 3)
    y1 = model(c1.tensor((1, 3)).set(a)).retrieve()
    y2 = model(c2.tensor((2, 3)).set(b)).retrieve()
    assert model.weight.tensor(c1).graph is c1 and model.weight.tensor(c2).graph is c2
    backend.run(c1)
    backend.run(c2)
    np.testing.assert_allclose(y1.numpy(), np_affine(a, model), rtol=1e-6)
    np.testing.assert_allclose(y2.numpy(), np_affine(b, model), rtol=1e-6)
    # a load updates both graphs
    model.load_state_dict({"weight": np.ones((2, 3)), "bias": np.zeros(2)})
    backend.run(c1)
    backend.run(c2)
    np.testing.assert_allclose(y1.numpy(), np_affine(a, model), rtol=1e-6)
    np.testing.assert_allclose(y2.numpy(), np_affine(b, model), rtol=1e-6)


def test_called_twice_in_one_graph_shares_inputs(backend: Any) -> None:
    model = Affine(2, 2)
    cx = lm.Graph()
    x = np.array([[1.0, -1.0]], np.float32)
    y = model(model(cx.tensor((1, 2)).set(x))).retrieve()
    assert sum(1 for n in cx._names.values() if n in ("weight", "bias")) == 2
    backend.run(cx)
    np.testing.assert_allclose(y.numpy(), np_affine(np_affine(x, model), model), rtol=1e-6)


def test_graphs_are_not_kept_alive() -> None:
    model = Affine(2, 2)
    cx = lm.Graph()
    model(cx.tensor((1, 2)).set(np.ones((1, 2))))
    ref = weakref.ref(cx)
    del cx
    gc.collect()
    assert ref() is None
    assert model.weight._live_bindings() == []
    model.weight.data = np.zeros((3, 3))  # unbound again: any shape


def test_parameter_data_is_read_only() -> None:
    p = nn.Linear(2, 2).weight
    with pytest.raises(ValueError, match="read-only"):
        p.data[0, 0] = 1.0  # would not reach the graphs: assign instead
    p.data = np.ones((2, 2))
    assert not p.data.flags.writeable and np.asarray(p).flags.writeable
    restored = pickle.loads(pickle.dumps(p))
    assert not restored.data.flags.writeable


def test_bound_parameter_keeps_its_shape() -> None:
    model = Affine(2, 2)
    cx = lm.Graph()
    model(cx.tensor((1, 2)).set(np.ones((1, 2))))
    with pytest.raises(ValueError, match="already bound"):
        model.weight.data = np.zeros((3, 3))


# ---------------------------------------------------------------- tree API, modes, repr

def test_tree_api() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Sequential(nn.ReLU(), nn.Linear(3, 1)))
    assert [type(m).__name__ for m in model.children()] == ["Linear", "BatchNorm1d", "Sequential"]
    assert [type(m).__name__ for m in model.modules()] == [
        "Sequential", "Linear", "BatchNorm1d", "Sequential", "ReLU", "Linear"]
    assert [n for n, _ in model.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert len(list(model.buffers())) == 3
    assert [n for n, _ in model.named_parameters(prefix="m")][:2] == ["m.0.weight", "m.0.bias"]
    assert [n for n, _ in model.named_parameters(recurse=False)] == []
    assert model.get_submodule("2.1") is model[2][1]
    assert model.get_parameter("2.1.bias") is model[2][1].bias
    assert isinstance(model[0].weight, nn.Parameter) and isinstance(model[1].running_mean, nn.Buffer)
    assert model[0].weight.shape == (3, 2) and model[0].weight.numel() == 6
    seen: list[str] = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Sequential" and len(seen) == 6
    with pytest.raises(AttributeError):
        model.nope  # noqa: B018


def test_train_eval() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5)))
    assert model.training and model[1][0].training
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model[1].train(False)
    assert model.training and not model[1][0].training


def test_repr_matches_torch() -> None:
    ours, theirs = _tree_pair()
    assert repr(ours).replace("LmNet", "X") == repr(theirs).replace("TNet", "X")
    pairs = [
        (nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()]),
         tnn.ModuleList([tnn.Linear(2, 2) for _ in range(3)] + [tnn.ReLU()])),
        (nn.Embedding(10, 3, padding_idx=0), tnn.Embedding(10, 3, padding_idx=0)),
        (nn.MaxPool2d(2), tnn.MaxPool2d(2)),
        (nn.AvgPool2d(3, 2, 1), tnn.AvgPool2d(3, 2, 1)),
        (nn.Conv2d(2, 4, 3, stride=2, padding="valid", bias=False, padding_mode="reflect"),
         tnn.Conv2d(2, 4, 3, stride=2, padding="valid", bias=False, padding_mode="reflect")),
        (nn.ConvTranspose2d(2, 4, 3, stride=2, output_padding=1, dilation=2),
         tnn.ConvTranspose2d(2, 4, 3, stride=2, output_padding=1, dilation=2)),
        (nn.Flatten(), tnn.Flatten()), (nn.Unflatten(1, (2, 3)), tnn.Unflatten(1, (2, 3))),
        (nn.Identity(), tnn.Identity()), (nn.ModuleList(), tnn.ModuleList()),
        (nn.Transformer(8, 2, 1, 1, 16, batch_first=True), tnn.Transformer(8, 2, 1, 1, 16, batch_first=True)),
    ]
    acts = ["ReLU", "ReLU6", "GELU", "SiLU", "Sigmoid", "Tanh", "LeakyReLU", "ELU", "Softplus", "Mish",
            "Hardswish", "Hardsigmoid", "Dropout"]
    pairs += [(getattr(nn, a)(), getattr(tnn, a)()) for a in acts]
    pairs += [(nn.Softmax(-1), tnn.Softmax(-1)), (nn.LogSoftmax(1), tnn.LogSoftmax(1)),
              (nn.GELU("tanh"), tnn.GELU("tanh")), (nn.LeakyReLU(0.2, True), tnn.LeakyReLU(0.2, True))]
    for a, b in pairs:
        assert repr(a) == repr(b)


# ---------------------------------------------------------------- containers

def test_sequential_and_modulelist_indexing() -> None:
    layers = [nn.Linear(2, 2) for _ in range(4)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 4 and seq[-1] is layers[3] and list(seq) == layers
    sub = seq[1:3]
    assert isinstance(sub, nn.Sequential) and list(sub) == layers[1:3]
    tseq = tnn.Sequential(*[tnn.Linear(2, 2) for _ in range(4)])
    assert list(sub.state_dict()) == list(tseq[1:3].state_dict()) == ["1.weight", "1.bias", "2.weight", "2.bias"]
    del seq[0]
    assert list(seq.state_dict())[:2] == ["0.weight", "0.bias"] and len(seq) == 3
    seq.append(nn.ReLU())
    assert isinstance(seq[3], nn.ReLU)
    with pytest.raises(IndexError):
        seq[10]

    ml = nn.ModuleList(layers[:2])
    ml.append(layers[2])
    ml.extend([layers[3]])
    ml.insert(0, nn.ReLU())
    assert len(ml) == 5 and isinstance(ml[0], nn.ReLU) and ml[1] is layers[0]
    assert isinstance(ml[1:], nn.ModuleList)
    ml[0] = nn.Tanh()
    assert isinstance(ml[0], nn.Tanh)
    del ml[0]
    assert ml[0] is layers[0] and [n for n, _ in ml.named_children()] == ["0", "1", "2", "3"]

    md = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.ReLU()})
    assert list(md) == ["a", "b"] and "a" in md and list(md.state_dict()) == ["a.weight", "a.bias"]


def test_sequential_forward(backend: Any) -> None:
    seq = nn.Sequential(Affine(3, 3), nn.Identity(), Affine(3, 1))
    cx = lm.Graph()
    x = np.arange(3, dtype=np.float32)[None]
    y = seq(cx.tensor((1, 3)).set(x)).retrieve()
    backend.run(cx)
    np.testing.assert_allclose(y.numpy(), np_affine(np_affine(x, seq[0]), seq[2]), rtol=1e-6)


# ---------------------------------------------------------------- registration, init, copies

def test_registration_rules() -> None:
    m = nn.Module()
    m.w = nn.Parameter(np.ones(2))
    m.register_buffer("stat", np.zeros(3))
    m.register_buffer("tmp", np.zeros(1), persistent=False)
    m.register_parameter("none", None)
    m.child = nn.Linear(1, 1)
    assert list(m.state_dict()) == ["w", "stat", "child.weight", "child.bias"]
    assert [n for n, _ in m.named_buffers()] == ["stat", "tmp"]
    m.stat = np.ones(3)  # assigning an array to a buffer name updates it
    np.testing.assert_array_equal(m.stat.data, np.ones(3))
    with pytest.raises(TypeError):
        m.w = np.ones(2)  # a parameter needs a Parameter (or None)
    m.w = None
    assert "w" not in m.state_dict()
    with pytest.raises(KeyError):
        m.register_parameter("a.b", None)
    del m.child
    assert "child.weight" not in m.state_dict()
    with pytest.raises(AttributeError, match="before Module.__init__"):
        class Bad(nn.Module):
            def __init__(self) -> None:
                self.w = nn.Parameter(np.ones(1))
        Bad()


def test_init_is_seeded_and_torch_like() -> None:
    nn.init.manual_seed(123)
    a = nn.Linear(50, 40)
    nn.init.manual_seed(123)
    b = nn.Linear(50, 40)
    c = nn.Linear(50, 40)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert not np.array_equal(b.weight.data, c.weight.data)
    bound = 1 / np.sqrt(50)
    assert np.abs(a.weight.data).max() <= bound and np.abs(a.weight.data).max() > 0.9 * bound
    assert np.abs(a.bias.data).max() <= bound
    assert a.weight.data.dtype == np.float32
    e = nn.Embedding(100, 20, padding_idx=3)
    assert np.all(e.weight.data[3] == 0) and 0.9 < e.weight.data.std() < 1.1
    conv = nn.Conv2d(4, 6, 3, groups=2)
    assert np.abs(conv.weight.data).max() <= 1 / np.sqrt(2 * 9)
    mha = nn.MultiheadAttention(8, 2)
    assert np.all(mha.in_proj_bias.data == 0) and np.all(mha.out_proj.bias.data == 0)
    assert np.abs(mha.in_proj_weight.data).max() <= np.sqrt(6 / (8 + 24))
    ln = nn.LayerNorm(5)
    assert np.all(ln.weight.data == 1) and np.all(ln.bias.data == 0)
    arr = np.zeros((3, 4), np.float32)
    assert nn.init.ones_(arr) is arr and np.all(arr == 1)
    assert nn.init.calculate_gain("relu") == pytest.approx(np.sqrt(2))


def test_deepcopy_and_pickle_unbind() -> None:
    model = Affine(2, 2)
    cx = lm.Graph()
    model(cx.tensor((1, 2)).set(np.ones((1, 2))))
    clone = copy.deepcopy(model)
    assert clone.weight is not model.weight and not clone.weight.is_bound(cx)
    np.testing.assert_array_equal(clone.weight.data, model.weight.data)
    clone.weight.data = np.zeros((2, 2))
    assert model.weight.data.any()
    restored = pickle.loads(pickle.dumps(nn.Sequential(nn.Linear(2, 2))))
    assert list(restored.state_dict()) == ["0.weight", "0.bias"]


def test_real_layers_two_graphs_and_reload(backend: Any) -> None:
    torch.manual_seed(0)
    theirs = tnn.Sequential(tnn.Linear(4, 6), tnn.BatchNorm1d(6), tnn.GELU(), tnn.Linear(6, 2)).eval()
    with torch.no_grad():
        theirs[1].running_mean.uniform_(-1, 1)
        theirs[1].running_var.uniform_(0.5, 2)
    ours = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.GELU(), nn.Linear(6, 2)).eval()
    ours.load_state_dict(theirs.state_dict())
    graphs, outs, data = [], [], []
    for n in (2, 5):
        cx = lm.Graph()
        d = np.random.default_rng(n).standard_normal((n, 4)).astype(np.float32)
        outs.append(ours(cx.tensor((n, 4)).set(d)).retrieve())
        graphs.append(cx)
        data.append(d)
    assert {cx._names[ours[1].running_var.tensor(cx)._handle] for cx in graphs} == {"1.running_var"}

    def check() -> None:
        for cx, y, d in zip(graphs, outs, data):
            backend.run(cx)
            with torch.no_grad():
                np.testing.assert_allclose(y.numpy(), theirs(torch.from_numpy(d)).numpy(), atol=1e-5, rtol=1e-4)

    check()
    with torch.no_grad():  # new weights and running stats, loaded after both graphs compiled
        for t in list(theirs.parameters()) + [theirs[1].running_mean]:
            t.mul_(-1.5)
    ours.load_state_dict(theirs.state_dict())
    check()


def test_transformer_parameter_names_in_graph() -> None:
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2).eval()
    cx = lm.Graph()
    enc(cx.tensor((1, 3, 8)))
    labels = {cx._names[p.tensor(cx)._handle] for p in enc.parameters()}
    assert labels == set(enc.state_dict())
    assert "layers.1.self_attn.in_proj_weight" in labels


def test_state_dict_error_message_is_bounded() -> None:
    """A hostile checkpoint can name millions of tensors: the message lists
    the first MAX_LISTED of each kind, the attributes every one."""
    from luminal.nn import StateDictError

    keys = [f"w{i}" for i in range(120)]
    bad = [(k, (1,), (2,)) for k in keys]
    e = StateDictError("Net", keys, keys[:3], bad)
    msg = str(e)
    assert e.missing_keys == keys and len(e.mismatched) == 120
    assert '"w49", ... and 70 more.' in msg and '"w50"' not in msg
    assert 'Unexpected key(s) in state_dict: "w0", "w1", "w2".' in msg
    assert msg.count("size mismatch for") == 50 and "... and 70 more size mismatches." in msg
