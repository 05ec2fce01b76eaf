"""The Graph/Tensor API around the ops: data in and out, dtypes, context,
verify, display, and the README example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import luminal as lm

ROOT = Path(__file__).resolve().parent.parent


def test_seed_example_from_issue(backend) -> None:
    cx = lm.Graph()
    a = cx.tensor((3, 1)).set([[1.0], [2.0], [3.0]])
    b = cx.tensor((1, 4)).set([[1.0, 2.0, 3.0, 4.0]])
    c = a.matmul(b).retrieve()
    backend.run(cx)
    np.testing.assert_array_equal(c.numpy(), np.outer([1, 2, 3], [1, 2, 3, 4]))


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a.tolist(),
        lambda a: a,
        lambda a: a.astype(np.float64),
        lambda a: torch.from_numpy(a),
        lambda a: torch.from_numpy(a).to(torch.bfloat16).float(),
        lambda a: np.asfortranarray(a),
    ],
    ids=["list", "f32", "f64", "torch", "torch-bf16-roundtrip", "fortran"],
)
def test_set_accepts_common_containers(make) -> None:
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    cx = lm.Graph()
    x = cx.tensor((2, 3)).set(make(data))
    y = (x * 1.0).retrieve()
    cx.execute()
    np.testing.assert_array_equal(y.numpy(), data)


def test_set_torch_bf16_tensor_directly() -> None:
    data = torch.tensor([1.5, -2.25, 3.0], dtype=torch.bfloat16)
    cx = lm.Graph()
    x = cx.tensor((3,)).set(data)
    y = (x + 0.0).retrieve()
    cx.execute()
    np.testing.assert_array_equal(y.numpy(), [1.5, -2.25, 3.0])


def test_storage_dtypes_round_like_torch() -> None:
    data = np.random.default_rng(1).standard_normal(64).astype(np.float32) * 100
    cx = lm.Graph()
    h = cx.tensor((64,), dtype="f16").set(data)
    b = cx.tensor((64,), dtype="bf16").set(data)
    hr, br = (h * 1.0).retrieve(), (b * 1.0).retrieve()
    cx.execute()
    t = torch.from_numpy(data)
    np.testing.assert_array_equal(hr.numpy(), t.half().float().numpy())
    np.testing.assert_array_equal(br.numpy(), t.bfloat16().float().numpy())


def test_i32_inputs_are_exact_and_come_back_as_ints() -> None:
    cx = lm.Graph()
    ids = cx.tensor((4,), dtype="i32").set(np.array([0, 7, 16_000_000, -3]))
    kept = ids.retrieve()
    cx.execute()
    out = kept.numpy()
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [0, 7, 16_000_000, -3])
    with pytest.raises(ValueError, match="integer"):
        ids.set([0.5, 1, 2, 3])
    with pytest.raises(ValueError, match="2\\*\\*24"):
        ids.set([1 << 25, 0, 0, 0])


def test_unknown_dtype_is_rejected() -> None:
    with pytest.raises(ValueError, match="f64"):
        lm.Graph().tensor((2,), dtype="f64")


def test_set_only_on_inputs() -> None:
    cx = lm.Graph()
    x = cx.tensor((2,)).set([1.0, 2.0])
    with pytest.raises(ValueError, match="only an input"):
        (x + 1).set([1.0, 2.0])
    with pytest.raises(ValueError, match="only an input"):
        cx.tensor((2, 3)).T.set(np.zeros((3, 2)))


def test_item_tolist_array_and_len() -> None:
    cx = lm.Graph()
    x = cx.tensor((2, 2)).set([[1.0, 2.0], [3.0, 4.0]])
    s = x.sum().retrieve()
    r = x.retrieve()
    cx.execute()
    assert s.item() == 10.0
    assert r.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    np.testing.assert_array_equal(np.asarray(r), [[1, 2], [3, 4]])
    assert len(x) == 2
    with pytest.raises(ValueError, match="4 elements"):
        r.item()
    with pytest.raises(TypeError, match="symbolic"):
        len(cx.tensor(("n", 2)))


def test_results_follow_new_inputs_and_persist_between_runs() -> None:
    cx = lm.Graph()
    x = cx.tensor((3,)).set([1.0, 2.0, 3.0])
    y = (x * x).retrieve()
    cx.execute()
    np.testing.assert_array_equal(y.numpy(), [1, 4, 9])
    cx.execute()  # data is kept: running again needs no new set()
    np.testing.assert_array_equal(y.numpy(), [1, 4, 9])
    x.set([4.0, 5.0, 6.0])
    with pytest.raises(RuntimeError, match="execute"):
        y.numpy()  # stale results are cleared, never silently returned
    cx.execute()
    np.testing.assert_array_equal(y.numpy(), [16, 25, 36])


def test_symbolic_shape_and_expr_dims() -> None:
    cx = lm.Graph()
    x = cx.tensor(("seq", 4))
    seq = x.shape[0]
    assert isinstance(seq, lm.Expr) and str(seq) == "seq"
    y = x.reshape(-1)
    assert str(y.shape[0]) == "seq*4"
    z = x[1:]
    assert str(z.shape[0]) == "seq - 1"  # short index math: no clamps on symbolic slices
    n = cx.constant("seq").retrieve()
    out = y.retrieve()
    x.set(np.ones((5, 4)))
    assert cx.dims == {"seq": 5}
    cx.execute()
    assert n.item() == 5.0 and out.numpy().shape == (20,)
    # An out-of-range symbolic slice is a clear error at run time, not a bad read.
    zr = z.retrieve()
    x.set(np.ones((0, 4)))
    with pytest.raises(RuntimeError, match="seq - 1"):
        cx.execute()
        zr.numpy()


def test_with_graph_context() -> None:
    from luminal.graph import current_graph

    cx = lm.Graph()
    with pytest.raises(RuntimeError, match="no current graph"):
        current_graph("arange")
    with cx:
        assert current_graph() is cx
        with lm.Graph() as inner:
            assert current_graph() is inner
        assert current_graph() is cx


def test_verify_detects_a_wrong_compiled_result() -> None:
    cx = lm.Graph()
    x = cx.tensor((3,), name="x")
    y = (x * 2).retrieve()
    cx.compile(lm.GenericCompiler(), verify=True)
    x.set([1.0, 2.0, 3.0])
    cx.execute()  # agrees
    # Corrupt only the compiled graph's copy of the input.
    cx._core.set_input(x._handle, np.array([1.0, 2.0, 4.0], dtype=np.float32))
    with pytest.raises(lm.VerificationError, match="differs"):
        cx.execute()


def test_custom_python_compiler_and_looped() -> None:
    calls = []

    class Counting:
        def run(self, graph: lm.Graph) -> None:
            calls.append(graph.node_count())

    cx = lm.Graph()
    x = cx.tensor((2,)).set([1.0, 2.0])
    y = ((x + 0) * 1).retrieve()
    cx.compile([Counting(), lm.GenericCompiler(), Counting()])
    assert calls[0] > calls[1]
    cx.compile(lm.Looped([lm.CSE(), Counting()]))  # fixed point: stops by itself
    cx.execute()
    np.testing.assert_array_equal(y.numpy(), [1.0, 2.0])


def test_display_and_dot(tmp_path: Path) -> None:
    import shutil

    cx = lm.Graph()
    x = cx.tensor((2, 3), name="x")
    (x.exp() + 0).sum(-1).retrieve()
    dot = cx.to_dot()
    assert dot.startswith("digraph") and '"x\\n(2, 3)"' in dot.replace("label=", "")
    if shutil.which("dot") is None:
        assert cx.display() is None
    else:
        out = cx.display(str(tmp_path / "g.svg"))
        assert out is not None and Path(out).read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match="format"):
        cx.display(format="gif")


def test_primitive_list_is_the_twelve() -> None:
    from luminal import _core

    core = [p for p in _core.primitive_ops() if p not in ("Input", "Constant")]
    assert tuple(core) == lm.PRIMITIVES and len(core) == 12


def test_quickstart_example_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "max error vs numpy" in result.stdout


def test_bool_dtype_from_comparisons_and_conversions() -> None:
    cx = lm.Graph()
    x = cx.tensor((4,)).set([-1.5, 0.0, 2.7, float("nan")])
    m = x > 0
    assert m.dtype == "bool" and (x == x).dtype == "bool" and x.isnan().dtype == "bool"
    outs = [t.retrieve() for t in (m, m.float() * 3, x.int(), x.bool(), m.logical_not())]
    cx.execute()
    got = [t.numpy() for t in outs]
    t = torch.tensor([-1.5, 0.0, 2.7, float("nan")])
    np.testing.assert_array_equal(got[0], (t > 0).numpy())
    assert got[1].dtype == np.float32
    np.testing.assert_array_equal(got[1], (t > 0).float().numpy() * 3)
    np.testing.assert_array_equal(got[2][:3], t[:3].int().numpy())
    assert got[2].dtype == np.int32
    np.testing.assert_array_equal(got[3], t.bool().numpy())
    np.testing.assert_array_equal(got[4], (t > 0).logical_not().numpy())
    b = cx.tensor((3,), dtype="bool").set([0.0, 2.0, float("nan")])
    kept = b.retrieve()
    cx.execute()
    np.testing.assert_array_equal(kept.numpy(), [False, True, True])


def test_truncate_input_keeps_a_prefix() -> None:
    """Graph._core.truncate_input (KVCache.truncate): the input keeps its
    first values, in place; a buffer another graph shares is copied, not
    cut under it; asking for more than it holds, or cutting a computed
    tensor, is a ValueError."""
    cx = lm.Graph()
    x = cx.tensor(("n",), name="x").set(np.arange(6, dtype=np.float32))
    y = (x * 2).retrieve()
    clone = cx._core.clone()  # shares x's buffer
    cx._core.truncate_input(x._handle, 4)
    cx.set_dim("n", 4)
    cx.execute()
    np.testing.assert_array_equal(y.numpy(), [0, 2, 4, 6])
    np.testing.assert_array_equal(clone.read(x._handle, x._view), np.arange(6))  # untouched
    cx._core.truncate_input(x._handle, 2)  # now the sole owner: in place
    cx.set_dim("n", 2)
    cx.execute()
    np.testing.assert_array_equal(y.numpy(), [0, 2])
    with pytest.raises(ValueError, match="cannot keep 5 values of 'x', which holds 2"):
        cx._core.truncate_input(x._handle, 5)
    with pytest.raises(ValueError, match="only inputs hold data; this tensor is computed by Mul"):
        cx._core.truncate_input(y._handle, 1)
