"""GenericCompiler and its passes: each fires where it should (node counts drop
by exactly what the pass removes), never changes results, keeps held tensors
valid, and ``verify=True`` / ``to_dot`` / ``display`` behave."""

from __future__ import annotations

import os
import re
import shutil
from typing import Any, Callable, List, Sequence

import numpy as np
import pytest

import luminal as lm

INF, NAN = float("inf"), float("nan")


def ops(cx: lm.Graph) -> List[str]:
    return [n["op"] for n in cx.nodes()]


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-2, 2, size=shape).astype(np.float32)


def one(fn: Callable, data: Any) -> Callable[[lm.Graph], list]:
    """A graph builder: ``fn`` over one input named "a" holding ``data``."""
    arr = np.asarray(data, dtype=np.float32)
    return lambda cx: [fn(cx.tensor(arr.shape, name="a").set(arr))]


def build_run(build: Callable[[lm.Graph], Sequence[lm.Tensor]], compilers: Sequence[lm.Compiler]) -> tuple:
    """Build the graph twice: execute one as is, compile the other (with
    verify=True) and execute it; outputs must agree.
    Returns (nodes before, nodes after, reference outputs, compiled outputs, graph)."""
    ref_cx = lm.Graph()
    ref_out = [t.retrieve() for t in build(ref_cx)]
    ref_cx.execute()
    cx = lm.Graph()
    out = [t.retrieve() for t in build(cx)]
    before = cx.node_count()
    assert before == ref_cx.node_count()
    cx.compile(*compilers, verify=True)
    after = cx.node_count()
    cx.execute()
    ref, got = [t.numpy() for t in ref_out], [t.numpy() for t in out]
    for r, g in zip(ref, got):
        assert r.shape == g.shape
        np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-6, equal_nan=True)
    return before, after, ref, got, cx


# ---- ArithmeticSimplification -------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [lambda a: a + 0, lambda a: 0 + a, lambda a: a * 1, lambda a: 1 * a],
    ids=["x+0", "0+x", "x*1", "1*x"],
)
def test_arithmetic_simplification_fires(fn: Callable) -> None:
    # a, constant, op: the op goes at once, its unused
    # operand with RemoveUnusedNodes, leaving only the input.
    before, after, _, got, cx = build_run(one(fn, rand(3, 4)), [lm.ArithmeticSimplification()])
    assert (before, after) == (3, 2)
    cx.compile(lm.RemoveUnusedNodes())
    assert ops(cx) == ["Input"]
    np.testing.assert_allclose(got[0], rand(3, 4), rtol=1e-6)


def test_add_zero_through_a_view_materializes_the_view() -> None:
    compilers = [lm.ArithmeticSimplification(), lm.RemoveUnusedNodes()]
    before, after, _, got, cx = build_run(one(lambda a: a.T + 0, rand(3, 4)), compilers)
    # Add(a.T, 0) -> Contiguous(a.T): a and the Contiguous remain.
    assert (before, after) == (3, 2)
    assert ops(cx) == ["Input", "Contiguous"]
    np.testing.assert_array_equal(got[0], rand(3, 4).T)


def test_add_masked_zero_is_simplified_but_mul_masked_one_is_not() -> None:
    add = one(lambda x: x + x.graph.constant(0.0).expand(2, 3).pad((1, 1)), rand(2, 5))
    before, after, _, got, cx = build_run(add, [lm.ArithmeticSimplification()])
    assert (before, after) == (3, 2) and "Add" not in ops(cx)
    np.testing.assert_array_equal(got[0], rand(2, 5))

    mul = one(lambda x: x * x.graph.constant(1.0).expand(2, 3).pad((1, 1)), rand(2, 5))
    before, after, _, got, cx = build_run(mul, [lm.GenericCompiler()])
    assert "Mul" in ops(cx) and after == before == 3
    want = rand(2, 5)
    want[:, [0, 4]] = 0.0  # the padded 1 reads 0 there
    np.testing.assert_array_equal(got[0], want)


def test_mul_by_zero_is_not_simplified() -> None:
    data = [INF, 1.0, -INF, NAN, -2.0]
    before, after, _, got, cx = build_run(one(lambda x: x * 0, data), [lm.GenericCompiler()])
    assert (before, after) == (3, 3) and "Mul" in ops(cx)
    np.testing.assert_array_equal(np.isnan(got[0]), [True, False, True, True, False])
    assert got[0][1] == 0.0 and got[0][4] == 0.0


def test_constant_inf_times_zero_folds_to_nan() -> None:
    build = one(lambda x: x + x.graph.constant(INF) * 0, [1.0, 2.0, 3.0])
    before, after, _, got, cx = build_run(build, [lm.GenericCompiler()])
    # x, inf, 0, Mul, Add -> x, NaN constant, Add: NaN is not 0, Add stays.
    assert (before, after) == (5, 3)
    assert ops(cx) == ["Input", "Constant", "Add"]
    assert np.isnan(got[0]).all()


def test_signed_zero_constants_are_not_merged() -> None:
    def build(cx: lm.Graph) -> list:
        x = cx.tensor((2,), name="x").set([1.0, 2.0])
        return [(x * 0.0).reciprocal(), (x * -0.0).reciprocal()]

    _, _, _, got, _ = build_run(build, [lm.GenericCompiler()])
    np.testing.assert_array_equal(got[0], [INF, INF])
    np.testing.assert_array_equal(got[1], [-INF, -INF])


def test_recip_recip_simplification_preserves_values() -> None:
    # 1e-39 is subnormal: 1/x overflows to inf and 1/inf is 0, so the
    # uncompiled graph computes log2(0) = -inf. 1.5944831 is a normal float with
    # fl(1/fl(1/x)) != x (about 1 in 6 floats in [0.5, 2) are like that).
    data = np.array([1e-39, 1.5944831, 3.0], dtype=np.float32)

    def build(cx: lm.Graph) -> list:
        a = cx.tensor((3,), name="a").set(data)
        r = a.reciprocal().reciprocal()
        return [r.log2().retrieve(), (r < a).retrieve(), (a < r).retrieve()]

    ref_cx, cx = lm.Graph(), lm.Graph()
    ref, got = build(ref_cx), build(cx)
    ref_cx.execute()
    cx.compile(lm.GenericCompiler())
    cx.execute()
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g.numpy(), r.numpy())


# ---- CSE -----------------------------------------------------------------------------


def test_cse_merges_duplicates() -> None:
    before, after, *_ = build_run(one(lambda a: a.sin() + a.sin(), rand(3, 4)), [lm.CSE()])
    assert (before, after) == (4, 3)
    # exp = exp2(a * log2(e)): Constant, Mul, Exp2 twice -> once
    before, after, _, _, cx = build_run(one(lambda a: a.exp() + a.exp(), rand(3, 4)), [lm.CSE()])
    assert (before, after) == (8, 5)
    assert sorted(ops(cx)) == sorted(["Input", "Constant", "Mul", "Exp2", "Add"])


@pytest.mark.parametrize(
    "fn",
    [lambda a: a.sin() + a.T.sin(), lambda a: a.sum(0) + a.sum(1), lambda a: a.amax(0) + a.sum(0)],
    ids=["views", "axes", "ops"],
)
def test_cse_keeps_different_nodes(fn: Callable) -> None:
    before, after, *_ = build_run(one(fn, rand(3, 3)), [lm.CSE()])
    assert before == after == 4


def test_cse_keeps_constants_with_different_values() -> None:
    before, after, _, got, _ = build_run(one(lambda a: a * 2 + a * 3, [1.0, 2.0, 3.0]), [lm.CSE()])
    assert before == after == 6
    np.testing.assert_allclose(got[0], [5.0, 10.0, 15.0])


# ---- ConstantFolding -------------------------------------------------------------------


def test_constant_folding_replaces_op_with_constant() -> None:
    build = one(lambda a: a + a.graph.constant(2.0) * 3.0, rand(3, 4))
    before, after, _, got, cx = build_run(build, [lm.ConstantFolding()])
    # Mul(2, 3) dies and a new Constant 6 is added: the count holds at 5 ...
    assert (before, after) == (5, 5) and "Mul" not in ops(cx)
    assert 6.0 in [n["value"] for n in cx.nodes() if n["op"] == "Constant"]
    # ... until the now-unused 2 and 3 are removed.
    cx.compile(lm.RemoveUnusedNodes())
    assert cx.node_count() == 3
    np.testing.assert_allclose(got[0], rand(3, 4) + 6.0, rtol=1e-6)


def test_constant_folding_chain_needs_looping() -> None:
    build = one(lambda a: a + a.graph.constant(4.0).sqrt().reciprocal(), [1.0, 2.0, 3.0])
    cx = lm.Graph()
    (out,) = [t.retrieve() for t in build(cx)]
    cx.compile(lm.ConstantFolding())
    assert "Sqrt" not in ops(cx) and "Recip" in ops(cx)  # one level per pass
    cx.compile(lm.Looped([lm.ConstantFolding(), lm.RemoveUnusedNodes()]))
    assert ops(cx) == ["Input", "Constant", "Add"]
    cx.execute()
    np.testing.assert_allclose(out.numpy(), [1.5, 2.5, 3.5])

    before, after, _, got, _ = build_run(build, [lm.GenericCompiler()])
    assert (before, after) == (5, 3)
    np.testing.assert_allclose(got[0], [1.5, 2.5, 3.5])


def test_constant_folding_of_a_reduce() -> None:
    def build(cx: lm.Graph) -> list:
        a = cx.tensor((3,), name="a").set([1.0, 2.0, 3.0])
        return [a + cx.constant(2.0).expand(3, 4).sum(1), a + cx.constant(2.0).expand(3, 4).amax(1)]

    before, after, _, got, cx = build_run(build, [lm.GenericCompiler()])
    # a, (2, Sum, Add), (2, Max, Add) -> a, 8, Add, 2, Add
    assert (before, after) == (7, 5)
    assert "SumReduce" not in ops(cx) and "MaxReduce" not in ops(cx)
    np.testing.assert_allclose(got[0], [9.0, 10.0, 11.0])
    np.testing.assert_allclose(got[1], [3.0, 4.0, 5.0])


def test_constant_folding_skips_masked_and_symbolic() -> None:
    def build(cx: lm.Graph) -> list:
        masked = cx.constant(1.0).expand(3).pad((1, 1)).sum(0)  # 1s with 0s around
        cx.set_dim("n", 4)
        sym = cx.constant("n") * 2
        seq_sum = cx.constant(2.0).expand("n").sum(0)  # symbolic length
        return [masked, sym, seq_sum]

    before, after, _, got, cx = build_run(build, [lm.GenericCompiler()])
    # 1, Sum | n, 2, Mul | 2, Sum: only CSE's merge of the two 2s applies.
    assert (before, after) == (7, 6)
    assert ops(cx).count("SumReduce") == 2 and "Mul" in ops(cx)
    assert [g.item() for g in got] == [3.0, 8.0, 8.0]
    cx.set_dim("n", 7)
    cx.execute()
    assert [t.item() for t in cx._retrieved] == [3.0, 14.0, 14.0]


# ---- RemoveRedundantContiguous -------------------------------------------------------


def test_remove_redundant_contiguous() -> None:
    build = one(lambda a: a.contiguous() + 1, rand(3, 4))
    before, after, _, got, cx = build_run(build, [lm.RemoveRedundantContiguous()])
    assert (before, after) == (4, 3) and "Contiguous" not in ops(cx)
    np.testing.assert_allclose(got[0], rand(3, 4) + 1)


@pytest.mark.parametrize(
    "fn",
    [lambda a: a.T.contiguous() + 1, lambda a: a.T.reshape(12) + 1, lambda a: a[:, 1:3].contiguous() + 1],
    ids=["transposed", "reshape-copy", "sliced"],
)
def test_needed_contiguous_is_kept(fn: Callable) -> None:
    before, after, _, _, cx = build_run(one(fn, rand(3, 4)), [lm.GenericCompiler()])
    assert before == after == 4 and "Contiguous" in ops(cx)


# ---- RemoveUnusedNodes -------------------------------------------------------------


def test_remove_unused_nodes_keeps_inputs() -> None:
    cx = lm.Graph()
    a = cx.tensor((3,), name="a").set([1.0, 2.0, 3.0])
    b = cx.tensor((3,), name="b")  # unused input, never set
    dead = (a.sin() * 2).sqrt()  # a, sin, 2, mul, sqrt: 4 unused nodes
    out = (a + 1).retrieve()
    assert cx.node_count() == 8
    cx.compile(lm.RemoveUnusedNodes())
    assert cx.node_count() == 4  # a, b, 1, Add
    assert sorted(ops(cx)) == ["Add", "Constant", "Input", "Input"]
    cx.execute()
    np.testing.assert_allclose(out.numpy(), [2.0, 3.0, 4.0])
    with pytest.raises(RuntimeError, match="retrieve"):
        dead.numpy()
    b.set([0.0, 0.0, 0.0])  # inputs can still be set


# ---- Looped ----------------------------------------------------------------------------


def test_looped_reaches_fixed_point() -> None:
    cx = lm.Graph()
    a = cx.tensor((3,), name="a").set([1.0, 2.0, 3.0])
    out = (a + cx.constant(4.0).sqrt().reciprocal().sqrt() * 1).retrieve()
    cx.compile(lm.Looped([lm.CSE(), lm.ConstantFolding(), lm.ArithmeticSimplification(), lm.RemoveUnusedNodes()]))
    version = cx._core.version
    for p in (lm.CSE(), lm.ConstantFolding(), lm.ArithmeticSimplification(), lm.RemoveUnusedNodes(), lm.GenericCompiler()):
        p.run(cx)
    assert cx._core.version == version, "a pass still changed the graph after Looped"
    assert ops(cx) == ["Input", "Constant", "Add"]
    cx.execute()
    np.testing.assert_allclose(out.numpy(), np.array([1, 2, 3]) + np.sqrt(0.5), rtol=1e-6)


def test_looped_without_fixed_point_raises() -> None:
    cx = lm.Graph()
    a = cx.tensor((3,), name="a")

    class AlwaysChanges:
        def run(self, graph: lm.Graph) -> None:
            graph._core.retrieve(a._handle)  # bumps the version every time

    assert isinstance(AlwaysChanges(), lm.Compiler)
    with pytest.raises(RuntimeError, match="no fixed point after 3 rounds"):
        cx.compile(lm.Looped(AlwaysChanges(), max_rounds=3))


def test_generic_compile_is_idempotent() -> None:
    cx = lm.Graph()
    a = cx.tensor((4, 4), name="a").set(rand(4, 4))
    ((a @ a.T + 0) * 1).exp().sum(-1).retrieve()
    cx.compile(lm.GenericCompiler())
    state = (cx._core.version, cx.node_count())
    assert cx.compile(lm.GenericCompiler()) is cx and (cx._core.version, cx.node_count()) == state


# ---- held tensors --------------------------------------------------------------------


def test_tensors_held_before_compile_stay_valid() -> None:
    x = rand(3, 4)
    cx = lm.Graph()
    a = cx.tensor((3, 4), name="a").set(x)
    t1 = (a + 0).retrieve()  # simplified to the input itself
    t2 = t1.sin().retrieve()
    t3 = a.sin()  # not retrieved: unused until t2 is simplified, so removed
    t4 = (a * 1).T.retrieve()  # a view on a node that is simplified away
    gone = a.exp2()  # not retrieved: removed
    cx.compile(lm.GenericCompiler())
    assert cx.node_count() == 2  # a, Sin
    cx.execute()
    np.testing.assert_array_equal(t1.numpy(), x)
    np.testing.assert_allclose(t2.numpy(), np.sin(x), rtol=1e-6)
    np.testing.assert_array_equal(t4.numpy(), x.T)
    for t in (gone, t3):
        with pytest.raises(RuntimeError, match=r"removed by a compiler.*retrieve"):
            t.numpy()
    with pytest.raises(ValueError, match="removed by a compiler"):
        gone + 1
    # Building on a surviving tensor after compile works.
    more = (t2 * 2).retrieve()
    cx.execute()
    np.testing.assert_allclose(more.numpy(), 2 * np.sin(x), rtol=1e-6)
    # New data flows through the compiled graph.
    a.set(x + 1)
    cx.execute()
    np.testing.assert_allclose(t2.numpy(), np.sin(x + 1), rtol=1e-6)
    np.testing.assert_array_equal(t4.numpy(), (x + 1).T)


def test_compiled_graph_with_symbolic_dims_rebinds() -> None:
    cx = lm.Graph()
    x = cx.tensor(("seq", 4), name="x")
    out = ((x + 0) * 1).sum(0).retrieve()
    cx.compile(lm.GenericCompiler(), verify=True)
    assert cx.node_count() == 2  # x, SumReduce
    for n in (3, 7, 0):
        data = rand(n, 4, seed=n)
        x.set(data)
        cx.execute()
        np.testing.assert_allclose(out.numpy(), data.sum(0), rtol=1e-5, atol=1e-6)


# ---- verify ----------------------------------------------------------------------------


def test_verify_passes_on_a_larger_graph() -> None:
    x, w = rand(4, 8, seed=1), rand(8, 5, seed=2)
    cx = lm.Graph()
    a = cx.tensor((4, 8), name="a").set(x)
    b = cx.tensor((8, 5), name="b").set(w)
    logits = (a @ b) * 1 + 0
    e = (logits - logits.amax(-1, keepdim=True)).exp()
    sm = (e / e.sum(-1, keepdim=True)).retrieve()
    before = cx.node_count()
    cx.compile(lm.GenericCompiler(), verify=True)
    assert cx.node_count() < before
    cx.execute()  # raises VerificationError on a mismatch
    l = x.astype(np.float64) @ w
    want = np.exp(l - l.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    np.testing.assert_allclose(sm.numpy(), want, rtol=1e-5, atol=1e-6)


def test_verify_catches_a_wrong_compiler() -> None:
    cx = lm.Graph()
    a = cx.tensor((3,), name="a").set([1.0, 2.0, 3.0])
    (a * 2).retrieve()

    class Wrong:
        def run(self, graph: lm.Graph) -> None:  # corrupts the compiled graph's data
            graph._core.set_input(a._handle, np.zeros(3, dtype=np.float32))

    cx.compile(Wrong(), verify=True)
    with pytest.raises(lm.VerificationError, match="differs from the reference"):
        cx.execute()


# ---- to_dot / display --------------------------------------------------------------


def _graph_for_dot() -> lm.Graph:
    cx = lm.Graph()
    a = cx.tensor((3, 4), name="a").set(rand(3, 4))
    (a.sin() + a.sin() + 0).retrieve()
    a.exp()  # unused
    return cx


def test_to_dot_changes_after_compile() -> None:
    cx = _graph_for_dot()
    before = cx.to_dot()
    assert cx.node_count() == 9 and 'label="9 nodes"' in before
    assert len(re.findall(r"^  n\d+ \[", before, re.M)) == 9
    cx.compile(lm.GenericCompiler())
    after = cx.to_dot()
    # sin twice -> once (CSE), + 0 dropped, the unused exp removed: a, Sin, Add
    assert cx.node_count() == 3 and 'label="3 nodes"' in after and "9 nodes" not in after
    assert len(re.findall(r"^  n\d+ \[", after, re.M)) == 3
    assert before != after
    assert after.startswith("digraph luminal {") and after.rstrip().endswith("}")


def test_to_dot_names_an_iota() -> None:
    cx = lm.Graph()
    (cx.arange("n").float() * 2.0).retrieve()
    dot = cx.to_dot()
    assert cx.node_count() == 3 and 'label="iota\\n(n,)"' in dot and "@z" not in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` not installed")
def test_display_writes_a_file(tmp_path) -> None:
    cx = _graph_for_dot()
    path = tmp_path / "graph.svg"
    assert cx.display(path=str(path)) == str(path)
    assert "<svg" in path.read_text()
    png = tmp_path / "graph.png"
    cx.display(path=str(png), format="png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="format"):
        cx.display(path=str(tmp_path / "x.gif"), format="gif")
    assert not os.path.exists(tmp_path / "x.gif")
    # names with quotes and backslashes are escaped into valid DOT
    odd = lm.Graph()
    (odd.tensor(("seq", 2), name='we"ird\\name').T.contiguous() * 2).retrieve()
    assert '\\"' in odd.to_dot()
    odd_path = tmp_path / "odd.svg"
    assert odd.display(path=str(odd_path)) == str(odd_path) and "<svg" in odd_path.read_text()
