"""Errors: the right exception type, a message that names the culprit, and a
graph that stays usable once the cause is fixed."""

from __future__ import annotations

import re

import numpy as np
import pytest

import luminal as lm


def usable(cx: lm.Graph, a: lm.Tensor, data: np.ndarray) -> None:
    """The graph still builds, runs and gives the right numbers."""
    out = (a * 2 + 1).retrieve()
    a.set(data)
    cx.execute()
    np.testing.assert_allclose(out.numpy(), data * 2 + 1, rtol=1e-6)


def ones(*shape: int) -> np.ndarray:
    return np.arange(1, int(np.prod(shape)) + 1, dtype=np.float32).reshape(shape)


@pytest.fixture
def cx() -> lm.Graph:
    return lm.Graph()


# ---- ShapeError at build time ---------------------------------------------------------


def test_shape_error_is_a_value_error() -> None:
    assert issubclass(lm.ShapeError, ValueError)


def test_add_mismatch_names_both_shapes(cx: lm.Graph) -> None:
    a, b = cx.tensor((3, 4), name="a"), cx.tensor((3, 5), name="b")
    with pytest.raises(lm.ShapeError) as info:
        a + b
    msg = str(info.value)
    assert "(3, 4)" in msg and "(3, 5)" in msg and msg.startswith("[add]")
    with pytest.raises(lm.ShapeError, match=re.escape("[mul] shapes (2, 3) and (2,)")):
        cx.tensor((2, 3)) * cx.tensor((2,))
    usable(cx, a, ones(3, 4))


def test_symbolic_shapes_are_named(cx: lm.Graph) -> None:
    x = cx.tensor(("seq", 4), name="x")
    with pytest.raises(lm.ShapeError, match=re.escape("(seq, 4) and (seq, 5)")):
        x + cx.tensor(("seq", 5))
    with pytest.raises(lm.ShapeError, match=re.escape("(4 vs n)")):
        x @ cx.tensor(("n", 2))
    out = (x * 2 + 1).retrieve()
    x.set(ones(2, 4))
    cx.execute()
    np.testing.assert_array_equal(out.numpy(), ones(2, 4) * 2 + 1)


def test_matmul_inner_dim_mismatch(cx: lm.Graph) -> None:
    a, b = cx.tensor((3, 4), name="a"), cx.tensor((5, 2), name="b")
    with pytest.raises(lm.ShapeError) as info:
        a @ b
    msg = str(info.value)
    assert "(3, 4)" in msg and "(5, 2)" in msg and "4 vs 5" in msg
    with pytest.raises(lm.ShapeError, match=r"\(4,\).*\(5,\)"):
        cx.tensor((4,)).matmul(cx.tensor((5,)))
    with pytest.raises(lm.ShapeError, match="at least 1 dim"):
        a.matmul(cx.constant(2.0))
    usable(cx, a, ones(3, 4))


@pytest.mark.parametrize(
    "shape, pattern",
    [((5, 2), r"\(3, 4\).*\(5, 2\)"), ((-1, 5), r"\(3, 4\).*\(-1, 5\)"), ((-1, -1), r"only one dim"), ((2, -3), r">= 0")],
)
def test_bad_reshape(cx: lm.Graph, shape: tuple, pattern: str) -> None:
    a = cx.tensor((3, 4), name="a")
    with pytest.raises(lm.ShapeError, match=pattern):
        a.reshape(*shape)
    usable(cx, a, ones(3, 4))


def test_bad_permute(cx: lm.Graph) -> None:
    a = cx.tensor((3, 4), name="a")
    with pytest.raises(lm.ShapeError, match=r"\(0, 0\) is not a permutation.*\(3, 4\)"):
        a.permute(0, 0)
    with pytest.raises(lm.ShapeError, match=r"\(1,\).*\(3, 4\)"):
        a.permute(1)
    with pytest.raises(IndexError, match="dim 2 is out of range"):
        a.permute(0, 2)
    usable(cx, a, ones(3, 4))


def test_expand_of_non_one_dim(cx: lm.Graph) -> None:
    a = cx.tensor((3, 4), name="a")
    with pytest.raises(lm.ShapeError) as info:
        a.expand(6, 4)
    msg = str(info.value)
    assert "(3, 4)" in msg and "(6, 4)" in msg and "3 is neither 1 nor 6" in msg
    with pytest.raises(lm.ShapeError, match="fewer dims"):
        a.expand(4)
    usable(cx, a, ones(3, 4))


def test_cat_mismatch(cx: lm.Graph) -> None:
    a, b = cx.tensor((3, 4), name="a"), cx.tensor((3, 5), name="b")
    with pytest.raises(lm.ShapeError, match=r"\(3, 4\) and \(3, 5\) differ outside dim 0"):
        lm.cat([a, b], 0)
    with pytest.raises(lm.ShapeError, match=r"\(3, 4\) and \(4,\)"):
        lm.cat([a, cx.tensor((4,))], 0)
    with pytest.raises(lm.ShapeError, match=r"\(3, 4\).*\(3, 5\)"):
        lm.stack([a, b])
    with pytest.raises(ValueError, match="non-empty"):
        lm.cat([])
    out = lm.cat([a, b], 1).retrieve()  # fine along the differing dim
    a.set(ones(3, 4))
    b.set(-ones(3, 5))
    cx.execute()
    np.testing.assert_array_equal(out.numpy(), np.concatenate([ones(3, 4), -ones(3, 5)], 1))


# ---- errors at execute time ------------------------------------------------------------


def test_execute_with_unset_input_names_it(cx: lm.Graph) -> None:
    a = cx.tensor((3, 4), name="a").set(ones(3, 4))
    w = cx.tensor((4,), name="weights")
    out = (a * w).retrieve()
    with pytest.raises(RuntimeError, match=r"input 'weights' with shape \(4,\) was never set"):
        cx.execute()
    with pytest.raises(RuntimeError, match="no data yet"):
        out.numpy()
    w.set([1.0, 2.0, 3.0, 4.0])
    cx.execute()
    np.testing.assert_array_equal(out.numpy(), ones(3, 4) * [1, 2, 3, 4])


def test_execute_unset_input_compiled_with_verify(cx: lm.Graph) -> None:
    a = cx.tensor((3,), name="a")
    out = (a + 0).sin().retrieve()
    cx.compile(lm.GenericCompiler(), verify=True)
    with pytest.raises(RuntimeError, match="'a'"):
        cx.execute()
    a.set([0.0, 1.0, 2.0])
    cx.execute()
    np.testing.assert_allclose(out.numpy(), np.sin([0.0, 1.0, 2.0]), rtol=1e-6)


def test_execute_with_unbound_dim_names_it(cx: lm.Graph) -> None:
    x = cx.tensor(("seq", 4), name="x")
    out = (x * 2).sum(0).retrieve()
    with pytest.raises(lm.UnboundDimError, match="'seq'"):
        cx.execute()
    x.set(ones(3, 4))  # binds seq = 3
    cx.execute()
    np.testing.assert_array_equal(out.numpy(), ones(3, 4).sum(0) * 2)


def test_execute_with_unbound_dim_in_a_constant(cx: lm.Graph) -> None:
    x = cx.tensor((3,), name="x").set([1.0, 2.0, 3.0])
    out = (x + cx.constant("n")).retrieve()
    with pytest.raises(RuntimeError, match="'n' is not bound"):
        cx.execute()
    cx.set_dim("n", 5)
    cx.execute()
    np.testing.assert_array_equal(out.numpy(), [6.0, 7.0, 8.0])
    with pytest.raises(ValueError, match="'n' must be >= 0"):
        cx.set_dim("n", -1)
    cx.execute()  # the failed set_dim changed nothing
    np.testing.assert_array_equal(out.numpy(), [6.0, 7.0, 8.0])


def clamped_or_named_error(cx: lm.Graph, out: lm.Tensor, want: np.ndarray, dim: str) -> None:
    """A symbolic slice bound past the end of its dim: Python semantics clamp;
    failing is also fine, but with an error that names the dim. Never a read
    of elements outside the view."""
    try:
        cx.execute()
    except RuntimeError as e:
        assert re.search(rf"\b{dim}\b", str(e)), f"error does not name {dim!r}: {e}"
        return
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6)


def test_execute_with_unbound_dim_in_a_view(cx: lm.Graph) -> None:
    x = cx.tensor((5,), name="x").set(np.arange(5, dtype=np.float32))
    k = lm.Expr.var("k")
    y = x[:k].sin().retrieve()
    with pytest.raises(lm.UnboundDimError, match="'k'"):
        cx.execute()
    cx.set_dim("k", 2)
    cx.execute()
    np.testing.assert_allclose(y.numpy(), np.sin([0.0, 1.0]), rtol=1e-6)
    cx.set_dim("k", 9)  # past the end of x
    clamped_or_named_error(cx, y, np.sin(np.arange(5.0)), "k")
    cx.set_dim("k", 3)  # usable again
    cx.execute()
    np.testing.assert_allclose(y.numpy(), np.sin([0.0, 1.0, 2.0]), rtol=1e-6)


def test_symbolic_slice_past_the_end_never_reads_outside_the_view(cx: lm.Graph) -> None:
    big = cx.tensor((2, 10), name="big").set(np.arange(20, dtype=np.float32).reshape(2, 10))
    y = big[:, :5]  # a view: the buffer behind it is wider than y
    out = y[:, : lm.Expr.var("k")].retrieve()
    cx.set_dim("k", 7)
    clamped_or_named_error(cx, out, np.arange(20.0).reshape(2, 10)[:, :5], "k")


def test_rebinding_a_dim_under_a_set_input_names_it(cx: lm.Graph) -> None:
    x = cx.tensor(("seq", 2), name="x").set(ones(3, 2))
    y = cx.tensor(("seq", 2), name="y").set(ones(5, 2))  # rebinds seq = 5
    out = (x + y).retrieve()
    with pytest.raises(RuntimeError, match=r"input 'x' holds 6 elements"):
        cx.execute()
    x.set(ones(5, 2) * 10)
    cx.execute()
    np.testing.assert_array_equal(out.numpy(), ones(5, 2) * 11)


def test_retrieving_a_tensor_removed_by_compile(cx: lm.Graph) -> None:
    a = cx.tensor((3,), name="a").set([1.0, 2.0, 3.0])
    out = (a * 2).retrieve()
    gone = a.sin()  # not retrieved: RemoveUnusedNodes drops it
    cx.compile(lm.GenericCompiler())
    with pytest.raises((ValueError, RuntimeError), match="removed by a compiler"):
        gone.retrieve()
    cx.execute()  # the graph still runs
    np.testing.assert_array_equal(out.numpy(), [2.0, 4.0, 6.0])


# ---- set() --------------------------------------------------------------------------


def test_set_with_wrong_shape(cx: lm.Graph) -> None:
    a = cx.tensor((3, 4), name="a")
    with pytest.raises(lm.ShapeError, match=r"\(3, 5\).*'a'.*\(3, 4\)"):
        a.set(np.zeros((3, 5)))
    with pytest.raises(lm.ShapeError, match=r"\(12,\).*rank 1.*'a'"):
        a.set(np.zeros(12))
    usable(cx, a, ones(3, 4))


def test_failed_set_keeps_previous_data(cx: lm.Graph) -> None:
    a = cx.tensor((3, 4), name="a").set(ones(3, 4))
    out = (a * 2).retrieve()
    with pytest.raises(lm.ShapeError):
        a.set(np.zeros((4, 3)))
    cx.execute()
    np.testing.assert_array_equal(out.numpy(), ones(3, 4) * 2)


def test_failed_set_does_not_rebind_dims(cx: lm.Graph) -> None:
    x = cx.tensor(("seq", 4), name="x").set(ones(3, 4))
    out = (x * 2).retrieve()
    with pytest.raises(lm.ShapeError, match="'x'"):
        x.set(np.zeros((5, 6)))  # seq would fit, 6 != 4 does not
    assert cx.dims == {"seq": 3}
    cx.execute()
    np.testing.assert_array_equal(out.numpy(), ones(3, 4) * 2)


def test_set_with_inconsistent_repeated_dim(cx: lm.Graph) -> None:
    sq = cx.tensor(("n", "n"), name="sq")
    with pytest.raises(lm.ShapeError, match="'sq'"):
        sq.set(np.zeros((2, 3)))
    out = (sq * 1.5).retrieve()
    sq.set(ones(2, 2))
    cx.execute()
    np.testing.assert_array_equal(out.numpy(), ones(2, 2) * 1.5)


def test_set_on_a_computed_tensor(cx: lm.Graph) -> None:
    a = cx.tensor((3,), name="a")
    with pytest.raises(ValueError, match="only an input tensor"):
        (a + 1).set([1.0, 2.0, 3.0])
    usable(cx, a, ones(3))


# ---- indexing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, pattern",
    [(3, r"index 3 is out of range for dim 0 of size 3"), (-4, "out of range"), ((0, 4), r"index 4 .*dim 1 of size 4"), ((0, 0, 0), "too many indices"), ((..., 0, ...), "single ellipsis")],
)
def test_index_out_of_range(cx: lm.Graph, key, pattern: str) -> None:
    a = cx.tensor((3, 4), name="a")
    with pytest.raises(IndexError, match=pattern):
        a[key]
    out = a[-1, 1:].retrieve()  # valid indexing still works
    a.set(ones(3, 4))
    cx.execute()
    np.testing.assert_array_equal(out.numpy(), ones(3, 4)[-1, 1:])


@pytest.mark.parametrize("step", [-1, 0, -2])
def test_non_positive_slice_step(cx: lm.Graph, step: int) -> None:
    a = cx.tensor((3, 4), name="a")
    with pytest.raises(ValueError, match=f"step must be a positive int, got {step}"):
        a[:, ::step]
    usable(cx, a, ones(3, 4))


def test_unsupported_index_type(cx: lm.Graph) -> None:
    a = cx.tensor((3, 4), name="a")
    with pytest.raises(TypeError, match="unsupported index"):
        a[1.5]
    with pytest.raises(TypeError, match="unsupported index"):
        a[a]


# ---- mixing graphs, truthiness ----------------------------------------------------------


def test_ops_across_graphs(cx: lm.Graph) -> None:
    other = lm.Graph()
    a, b = cx.tensor((3, 4), name="a"), other.tensor((3, 4), name="b")
    for fn in (
        lambda: a + b,
        lambda: b * a,
        lambda: a < b,
        lambda: a @ b.T,
        lambda: lm.cat([a, b]),
        lambda: lm.stack([a, b]),
    ):
        with pytest.raises(ValueError, match="different graphs"):
            fn()
    usable(cx, a, ones(3, 4))
    usable(other, b, ones(3, 4) * 3)


def test_bool_of_tensor_raises(cx: lm.Graph) -> None:
    a, b = cx.tensor((3,), name="a"), cx.tensor((3,), name="b")
    with pytest.raises(TypeError, match="no truth value"):
        bool(a)
    with pytest.raises(TypeError, match="no truth value"):
        if a < b:
            pass
    with pytest.raises(TypeError, match="no truth value"):
        a and b
    usable(cx, a, ones(3))
