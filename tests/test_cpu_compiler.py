"""CPUCompiler specifics: fusion (kernel counts), no rebuild across symbolic
lengths, the disk cache, and the fallback without a C compiler. Numerical
agreement with torch is covered by every op test through the "cpu" backend."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import luminal as lm
import luminal.nn.functional as F


def kernel_functions(cx: lm.Graph) -> list[str]:
    """The printed C functions after the prelude: kernels (`k_...`) and the
    parts a symbolic-size kernel runs its loop in (`p_...`)."""
    return re.split(r"\n(?:static )?void [kp]_", cx.kernel_source())[1:]


def compiled(build, *shapes, names=None):
    cx = lm.Graph()
    xs = [cx.tensor(s, name=f"x{i}") for i, s in enumerate(shapes)]
    out = build(*xs).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    return cx, xs, out


def test_elementwise_chain_is_one_kernel() -> None:
    cx, (x,), y = compiled(lambda x: ((x * 2 + 1).exp() - x).sin() * x.sqrt(), (64, 33))
    assert cx.kernel_count() == 1
    data = np.random.default_rng(0).uniform(0.1, 1, (64, 33)).astype(np.float32)
    x.set(data)
    cx.execute()
    # The reference in float64: sin's arguments reach 19 here, and torch's
    # float32 sin answered 1% off for half of them in some runs on an
    # AVX-512 machine (luminal's value was the float64 one).
    t = torch.from_numpy(data).double()
    want = (((t * 2 + 1).exp() - t).sin() * t.sqrt()).float().numpy()
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-4, atol=1e-5)


def test_views_fold_into_index_math_without_copies() -> None:
    # transpose, slice, pad and broadcast feed one elementwise kernel: no Contiguous copy.
    cx, (x, b), y = compiled(lambda x, b: x.T[1:, ::2].pad((1, 1)) + b, (6, 9), (1,))
    assert cx.kernel_count() == 1
    assert "Contiguous" not in cx.kernel_source()


@pytest.mark.parametrize(
    "name, build, shape, kernels",
    [
        # one kernel: per row, the max and the sum of exp(x - max), then the row
        ("softmax", lambda x: x.softmax(-1), (8, 100), 1),
        # per row, the mean and the variance of x - mean, then the row
        ("layer_norm", lambda x: F.layer_norm(x, (100,)), (8, 100), 1),
        # per row, the mean of squares, then the row
        ("rms_norm", lambda x: F.rms_norm(x, (100,)), (8, 100), 1),
        ("sum of squares", lambda x: (x * x).sum(-1), (8, 100), 1),
    ],
)
def test_fusion_kernel_counts(name, build, shape, kernels) -> None:
    cx, (x,), y = compiled(build, shape)
    assert cx.kernel_count() == kernels, name
    data = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    x.set(data)
    cx.execute()  # verify=True checks against the reference executor


@pytest.mark.parametrize("length", [100, "n"])
def test_row_form_reads_per_row_values_before_the_column_loop(length) -> None:
    """What is constant along a row (a stored per-row shift, a row sum and its
    reciprocal) is computed once before the row's column loop: gcc did not
    vectorize a loop that reloads a per-row value after every store, and
    decode attention's softmax ran 7x slower for it."""
    cx, (x, s), y = compiled(lambda x, s: (x - s.unsqueeze(-1)).exp() / x.exp().sum(-1, keepdim=True),
                             (32, length), (32,))
    (kernel,) = [k for k in kernel_functions(cx) if "c < cols" in k]
    columns = re.search(r"for \(int64_t c = 0; c < cols; \+\+c\) \{(.*?)\n    \}", kernel, re.S)
    assert columns and re.search(r"in\d\[row\]", kernel) and not re.search(r"in\d\[row\]|rv\d", columns[1])
    rng = np.random.default_rng(4)
    for n in [100] if length == 100 else [100, 0, 37]:  # an empty row must read nothing
        xs, ss = rng.standard_normal((32, n)).astype(np.float32), rng.standard_normal(32).astype(np.float32)
        x.set(xs), s.set(ss)
        if length == "n":
            cx.set_dim("n", n)
        cx.execute()
        tx, ts = torch.from_numpy(xs).double(), torch.from_numpy(ss).double()
        want = ((tx - ts[:, None]).exp() / tx.exp().sum(-1, keepdim=True)).float().numpy()
        np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("length", [100, "n"])
def test_softmax_computes_each_exp_once(length) -> None:
    """softmax's kernel sums exp(x - max) over the row, then divides the same
    exps: the sum's loop stores them in the output row and the row's loop
    reads them back, instead of computing every exp twice."""
    cx, (x,), y = compiled(lambda x: x.softmax(-1), (32, length))
    (kernel,) = [k for k in kernel_functions(cx) if "c < cols" in k]
    assert kernel.count("exp2f(") == 1 and "out[row * cols + r] =" in kernel
    rng = np.random.default_rng(5)
    for n in [100] if length == 100 else [100, 0, 19]:
        data = rng.normal(0, 3, (32, n)).astype(np.float32)
        x.set(data)
        if length == "n":
            cx.set_dim("n", n)
        cx.execute()
        want = torch.from_numpy(data).double().softmax(-1).float().numpy()
        np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-7)


def test_mlp_and_attention_kernel_counts() -> None:
    rng = np.random.default_rng(2)
    cx = lm.Graph()
    x = cx.tensor((16, 32), name="x").set(rng.standard_normal((16, 32)))
    w1 = cx.parameter((64, 32)).set(rng.standard_normal((64, 32)) * 0.1)
    w2 = cx.parameter((32, 64)).set(rng.standard_normal((32, 64)) * 0.1)
    mlp = F.linear(F.linear(x, w1).relu(), w2).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    # two matmuls (GEMM-ready: their operands are buffers) and the relu between
    # them (a max over a 2-stack, unrolled into one elementwise kernel)
    assert cx.kernel_count() == 3
    cx.execute()

    # Causal attention: two products and softmax as one kernel (its max, with
    # the fully-masked-row guard computed once per row, and its sum fused in;
    # the causal mask computed in place from its index: an iota is a leaf,
    # not a kernel). From 64 queries on, two halves (the first over the first
    # half of the keys): each the same three kernels, then one that joins
    # their rows.
    for length, kernels, gemms in ((16, 3, 2), (64, 7, 4)):
        cx = lm.Graph()
        qkv = [rng.standard_normal((2, 4, length, 8)).astype(np.float32) for _ in range(3)]
        q, k, v = (cx.tensor(a.shape).set(a) for a in qkv)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True).retrieve()
        cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
        cx.execute()
        want = torch.nn.functional.scaled_dot_product_attention(*map(torch.from_numpy, qkv), is_causal=True)
        np.testing.assert_allclose(att.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)
        assert cx.kernel_count() == kernels and lm._core.gemm_count(cx._core) == gemms


def test_products_over_symbolic_views_read_their_operands() -> None:
    """Matrix products over permuted, sliced views with symbolic lengths
    (causal attention's halves in a model's head layout): the kernel's index
    math is long, but the product still reads its two operands (a GEMM),
    never a stored (..., m, k, n) Mul. A Mul stored anyway once left the GEMM
    reading an operand whose buffer the plan had freed and reused (wrong
    values)."""
    cx = lm.Graph()
    xs = [cx.tensor((2, "seq", 2, 3), name=f"x{i}") for i in range(3)]
    q, k, v = (x.permute(0, 2, 1, 3) for x in xs)
    seq = q.shape[2]
    half = seq // 2
    top = q.narrow(2, 0, half) @ k.narrow(2, 0, half).mT @ v.narrow(2, 0, half)
    bottom = q.narrow(2, half, seq - half) @ k.mT @ v
    out = lm.cat([top, bottom], dim=2).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    assert cx.kernel_count() == 5 and lm._core.gemm_count(cx._core) == 4  # 4 products and the join
    rng = np.random.default_rng(0)
    for length in (70, 9):
        d = [rng.standard_normal((2, length, 2, 3)).astype(np.float32) for _ in range(3)]
        for x, a in zip(xs, d):
            x.set(a)
        cx.execute()  # verify=True: every kernel against the reference executor
        Q, K, V = (a.transpose(0, 2, 1, 3) for a in d)
        h = length // 2
        want = np.concatenate([Q[:, :, :h] @ K[:, :, :h].transpose(0, 1, 3, 2) @ V[:, :, :h],
                               Q[:, :, h:] @ K.transpose(0, 1, 3, 2) @ V], axis=2)
        np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-4)


def test_gelu_backward_recomputes_instead_of_storing_terms() -> None:
    """GELU's erf polynomial is elementwise over x alone: its backward
    recomputes the terms from x (and the upstream gradient) instead of the
    forward storing each one (it was 21 kernels, the last reading 21
    buffers), and matches torch."""
    x = np.random.default_rng(3).normal(0, 1.5, (64, 256)).astype(np.float32)
    cx = lm.Graph()
    xt = cx.parameter(x.shape).set(x)
    y = F.gelu(xt).retrieve()
    (g,) = lm.grad((y * y).sum(), [xt])
    g.retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    cx.execute()
    assert cx.kernel_count() <= 8
    assert max(k.count("restrict in") for k in kernel_functions(cx)) <= 8
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.gelu(tx)
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_symbolic_lengths_reuse_the_same_kernels() -> None:
    cx = lm.Graph()
    x = cx.tensor(("seq", 16), name="x")
    y = (x.softmax(-1) * x.sum(0, keepdim=True)).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    source, kernels = cx.kernel_source(), cx.kernel_count()
    rng = np.random.default_rng(3)
    for seq in (1, 5, 130, 7):  # buffers grow, then are reused larger than needed
        data = rng.standard_normal((seq, 16)).astype(np.float32)
        x.set(data)
        cx.execute()
        t = torch.from_numpy(data)
        want = t.softmax(-1) * t.sum(0, keepdim=True)
        np.testing.assert_allclose(y.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)
    assert cx.kernel_source() == source and cx.kernel_count() == kernels


def test_small_kernels_run_without_an_openmp_region() -> None:
    """An OpenMP region costs ~0.4 us even when its `if` is false, so a
    kernel of known small size has none, a known big one always shares its
    loop, and a symbolic one branches at run time between the shared loop and
    the same loop alone; both branches give torch's values."""
    def kernels_of(shape):
        cx = lm.Graph()
        cx.tensor(shape).softmax(-1).retrieve()
        cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
        return kernel_functions(cx)

    assert "omp parallel" not in "".join(kernels_of((4, 64)))
    big = "".join(kernels_of((512, 512)))
    assert "#pragma omp parallel for" in big and "> 16384" not in big

    cx = lm.Graph()
    x = cx.tensor(("seq", 512), name="x")
    y = (x.softmax(-1) + x.sum(0, keepdim=True)).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    src = "".join(kernel_functions(cx))
    assert "> 16384) {" in src and "} else {" in src and "LM_SHARE(count, lo, hi)" in src
    rng = np.random.default_rng(4)
    for seq in (2, 300):  # the loops alone, then shared
        data = rng.standard_normal((seq, 512)).astype(np.float32)
        x.set(data)
        cx.execute()
        t = torch.from_numpy(data)
        np.testing.assert_allclose(y.numpy(), (t.softmax(-1) + t.sum(0, keepdim=True)).numpy(),
                                   rtol=1e-4, atol=1e-4)


def test_changing_the_graph_after_compile_is_an_error() -> None:
    cx, (x,), y = compiled(lambda x: x * 2, (3,))
    x.set([1.0, 2.0, 3.0])
    (x + 1).retrieve()
    with pytest.raises(RuntimeError, match="compile"):
        cx.execute()


def run_script(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=full_env, timeout=120)


SCRIPT = """
    import numpy as np, luminal as lm
    cx = lm.Graph()
    x = cx.tensor((4,)).set([1.0, 2.0, 3.0, 4.0])
    y = (x * x + 1).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    cx.execute()
    print(y.numpy().tolist(), cx.kernel_count())
"""


def test_no_c_compiler_falls_back_with_one_warning(tmp_path: Path) -> None:
    r = run_script(SCRIPT, CC="/nonexistent/cc", LUMINAL_CACHE_DIR=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "[2.0, 5.0, 10.0, 17.0] 0" in r.stdout
    assert r.stderr.count("no C compiler") == 1


def test_kernels_are_cached_on_disk(tmp_path: Path) -> None:
    first = run_script(SCRIPT, LUMINAL_CACHE_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    libs = list((tmp_path / "cpu").glob("*.so"))
    assert len(libs) == 1 and not list((tmp_path / "cpu").glob("*.c"))
    stamp = libs[0].stat().st_mtime_ns
    second = run_script(SCRIPT, LUMINAL_CACHE_DIR=str(tmp_path))
    assert second.returncode == 0 and "[2.0, 5.0, 10.0, 17.0] 1" in second.stdout
    assert [p.stat().st_mtime_ns for p in (tmp_path / "cpu").glob("*.so")] == [stamp]


def test_long_view_chains_store_a_buffer_instead_of_growing_index_math() -> None:
    # Each round reshapes a transposed view of the last result (a Contiguous),
    # so inlining everything would compose ever longer div/mod index math.
    def build(x):
        h = x
        for _ in range(12):
            h = (h.T.reshape(10, 6) * 1.5 + 0.25).sin()
        return h

    cx, (x,), y = compiled(build, (10, 6))
    longest = max(len(line) for line in cx.kernel_source().splitlines())
    assert longest < 2000 and cx.kernel_count() > 1, (longest, cx.kernel_count())
    data = np.random.default_rng(4).standard_normal((10, 6)).astype(np.float32)
    x.set(data)
    cx.execute()  # verify=True: same numbers as the reference executor
    t = torch.from_numpy(data)
    for _ in range(12):
        t = (t.T.reshape(10, 6) * 1.5 + 0.25).sin()
    np.testing.assert_allclose(y.numpy(), t.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layout", ["x@W", "x@W.T", "x.T@W", "batched"])
def test_matrix_vector_products_through_blas(layout: str) -> None:
    """One-row products go to sgemv (every operand layout): values as numpy's."""
    rng = np.random.default_rng(0)
    cx = lm.Graph()
    if layout == "x@W":
        a, b = rng.normal(size=(1, 48)), rng.normal(size=(48, 40))
        out = cx.tensor(a.shape).set(a) @ cx.tensor(b.shape).set(b)
        want = a @ b
    elif layout == "x@W.T":
        a, b = rng.normal(size=(1, 48)), rng.normal(size=(40, 48))
        out = cx.tensor(a.shape).set(a) @ cx.tensor(b.shape).set(b).T
        want = a @ b.T
    elif layout == "x.T@W":
        a, b = rng.normal(size=(48, 1)), rng.normal(size=(48, 40))
        out = cx.tensor(a.shape).set(a).T @ cx.tensor(b.shape).set(b)
        want = a.T @ b
    else:
        a, b = rng.normal(size=(3, 1, 48)), rng.normal(size=(3, 48, 40))
        out = cx.tensor(a.shape).set(a) @ cx.tensor(b.shape).set(b)
        want = a @ b
    out = out.retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    cx.execute()
    assert lm._core.gemm_count(cx._core) == 1
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", ["sum", "amax"])
@pytest.mark.parametrize("shape, dim", [((300, 200), 0), ((4, 70, 33), 1), ((9, 10, 40), (0, 1))])
def test_column_reductions(op, shape, dim) -> None:
    """A reduction over an outer axis walks rows outside and a block of
    outputs inside (vector loads, no div/mod in the index); the result is
    torch's, including blocks cut short at the edge of a row."""
    data = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    cx = lm.Graph()
    x = cx.tensor(shape).set(data)
    y = getattr(x, op)(dim).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    cx.execute()
    assert "j0 = q % blocks" in cx.kernel_source()  # the column form's blocks of outputs
    want = getattr(torch.from_numpy(data), op)(dim)
    np.testing.assert_allclose(y.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_row_reduction_through_a_transpose_stays_row_form() -> None:
    # x.T summed over its first axis reads x's rows contiguously: the row form.
    data = np.random.default_rng(1).normal(size=(64, 50)).astype(np.float32)
    cx = lm.Graph()
    y = cx.tensor((64, 50)).set(data).T.sum(0).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    cx.execute()
    assert "j0 = q % blocks" not in cx.kernel_source()
    np.testing.assert_allclose(y.numpy(), data.sum(1), rtol=1e-5, atol=1e-5)


def test_product_read_transposed_is_computed_transposed() -> None:
    """Every reader of a matrix product reads it transposed (an optimizer
    reading a weight gradient): BLAS writes the product in the readers'
    order, so the reader's loads are contiguous."""
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(32, 48)).astype(np.float32), rng.normal(size=(48, 40)).astype(np.float32)
    cx = lm.Graph()
    p = cx.tensor(a.shape).set(a) @ cx.tensor(b.shape).set(b)
    y = (p.T * 2.0 + p.T.exp()).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    cx.execute()
    assert lm._core.gemm_count(cx._core) == 1 and cx.kernel_count() == 2
    elementwise = kernel_functions(cx)[-1]
    assert "in0[(c + (row * INT64_C(32)))]" in elementwise  # contiguous along the row
    np.testing.assert_allclose(y.numpy(), (a @ b).T * 2 + np.exp((a @ b).T), rtol=1e-4, atol=1e-4)


def test_stored_tiny_reduction_is_an_elementwise_kernel() -> None:
    # relu (a max over x and 0) kept in a buffer: one unrolled elementwise loop, no `r` loop.
    data = np.random.default_rng(3).normal(size=(64, 50)).astype(np.float32)
    cx = lm.Graph()
    y = cx.tensor((64, 50)).set(data).relu().retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    cx.execute()
    assert cx.kernel_count() == 1 and "len" not in kernel_functions(cx)[-1]
    np.testing.assert_array_equal(y.numpy(), np.maximum(data, 0))


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [
        ((4, 8, 16), (16, 32)),          # a Linear on (batch, seq, features): one product of 32 rows
        ((16, 128, 64), (16, 64, 128)),  # per-head products: split over the cores
        ((2, 3, 1, 48), (48, 40)),       # one-row products folded into one
    ],
)
def test_batched_products(a_shape, b_shape) -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=a_shape).astype(np.float32), rng.normal(size=b_shape).astype(np.float32)
    cx = lm.Graph()
    out = (cx.tensor(a_shape).set(a) @ cx.tensor(b_shape).set(b)).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    cx.execute()
    assert lm._core.gemm_count(cx._core) == 1
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-4, atol=1e-4)


def test_verify_names_the_first_kernel_that_differs() -> None:
    """A Q8_0 product rounds its activations to int8 on the CPU backend (as
    llama.cpp does), so it differs from the reference executor; the kernels
    after it only inherit the difference. verify names the product."""
    from luminal import quant

    rng = np.random.default_rng(5)
    w = rng.normal(size=(32, 64)).astype(np.float32)
    cx = lm.Graph()
    x = cx.tensor((8, 64)).set(rng.normal(size=(8, 64)).astype(np.float32))
    wq = cx.parameter(w.shape, dtype="q8_0").set_blocks(quant.quantize(w, "q8_0"))
    ((x @ wq.T) * 2.0).exp().retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    with pytest.raises(lm.VerificationError, match=r"first kernel to differ is k_\w+ computing node "
                                                   r"\d+ \(SumReduce, shape \(8, 32\)\)"):
        cx.execute()


def test_verify_blames_a_rewrite_when_every_kernel_agrees() -> None:
    cx = lm.Graph()
    a = cx.tensor((3,), name="a").set([1.0, 2.0, 3.0])
    (a * 2).exp().retrieve()

    class Wrong:  # a "rewrite" that changes the compiled graph's data
        def run(self, graph: lm.Graph) -> None:
            graph._core.set_input(a._handle, np.zeros(3, dtype=np.float32))

    cx.compile(Wrong(), lm.CPUCompiler(), verify=True)
    with pytest.raises(lm.VerificationError, match="every kernel agrees .* a graph rewrite"):
        cx.execute()


@pytest.mark.parametrize("policy", [None, "PASSIVE"])
def test_warns_when_openmp_was_loaded_spinning(policy) -> None:
    """torch imported first loads OpenMP before luminal can ask for passive
    workers: CPUCompiler says so once (and how to fix it) unless the user set
    OMP_WAIT_POLICY."""
    code = """
        import warnings, torch, luminal as lm
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            for _ in range(2):
                cx = lm.Graph()
                (cx.tensor((4,)).set([1.0, 2.0, 3.0, 4.0]) * 2).retrieve()
                cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
        print(sum("OMP_WAIT_POLICY" in str(w.message) for w in caught))
    """
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("0" if policy else "1")


@pytest.mark.parametrize("layout", ["x@W.T", "x@W", "x.T@W.T"])
def test_one_row_products_on_all_cores(layout) -> None:
    """One-row products of 64K+ weights run lm_matvec (outputs split over the
    cores) instead of sgemv: weights read transposed or not, and a strided row."""
    rng = np.random.default_rng(6)
    w = rng.normal(size=(384, 320)).astype(np.float32)
    cx = lm.Graph()
    if layout == "x@W.T":
        x = rng.normal(size=(1, 320)).astype(np.float32)
        out, want = cx.tensor(x.shape).set(x) @ cx.tensor(w.shape).set(w).T, x @ w.T
    elif layout == "x@W":
        x = rng.normal(size=(1, 384)).astype(np.float32)
        out, want = cx.tensor(x.shape).set(x) @ cx.tensor(w.shape).set(w), x @ w
    else:
        x = rng.normal(size=(320, 1)).astype(np.float32)
        out, want = cx.tensor(x.shape).set(x).T @ cx.tensor(w.shape).set(w).T, x.T @ w.T
    out = out.retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    cx.execute()
    assert lm._core.gemm_count(cx._core) == 1 and "lm_matvec" in cx.kernel_source()
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-4)


def test_column_reduction_with_a_per_row_factor() -> None:
    # A layer_norm weight gradient: sum over rows of x * (per-row factor). The
    # factor depends on the row alone, so the column form still applies.
    rng = np.random.default_rng(7)
    x, s = rng.normal(size=(300, 200)).astype(np.float32), rng.normal(size=(300, 1)).astype(np.float32)
    cx = lm.Graph()
    y = (cx.tensor(x.shape).set(x) * cx.tensor(s.shape).set(s)).sum(0).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    cx.execute()
    assert "j0 = q % blocks" in cx.kernel_source()  # the column form's blocks of outputs
    np.testing.assert_allclose(y.numpy(), (x * s).sum(0), rtol=1e-4, atol=1e-4)


def test_row_reduction_read_masked_and_unmasked_in_one_kernel() -> None:
    """The same row sum read twice in one kernel, once through a pad that
    masks the last row and once directly: two row reductions (one guarded),
    not one shared (the guarded value would be 0 in the last row)."""
    rng = np.random.default_rng(8)
    x, z = rng.normal(size=(40, 50)).astype(np.float32), rng.normal(size=(40, 32)).astype(np.float32)
    cx = lm.Graph()
    s = cx.tensor(x.shape).set(x).sum(-1, keepdim=True)             # (40, 1)
    shifted = s[:-1].pad((0, 0, 0, 1))                              # (40, 1), last row 0
    y = (shifted + s + cx.tensor(z.shape).set(z)).retrieve()        # (40, 32)
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    cx.execute()
    sx = x.sum(-1, keepdims=True)
    want = np.concatenate([sx[:-1], np.zeros((1, 1), np.float32)]) + sx + z
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-4, atol=1e-4)


def test_row_reduction_broadcast_over_more_rows_is_stored() -> None:
    # A per-feature sum read by every batch row would be recomputed 16 times
    # if fused: it is stored instead (2 kernels), with the same numbers.
    rng = np.random.default_rng(9)
    x, z = rng.normal(size=(8, 64)).astype(np.float32), rng.normal(size=(16, 8, 32)).astype(np.float32)
    cx = lm.Graph()
    s = cx.tensor(x.shape).set(x).sum(-1, keepdim=True)            # (8, 1)
    y = (s.unsqueeze(0) + cx.tensor(z.shape).set(z)).retrieve()    # (16, 8, 32)
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    cx.execute()
    assert cx.kernel_count() == 2
    np.testing.assert_allclose(y.numpy(), x.sum(-1, keepdims=True)[None] + z, rtol=1e-4, atol=1e-4)


def test_run_checks_every_dim_once_and_recovers() -> None:
    """A compiled run checks each distinct dim expression (here n - 3, which
    goes negative for n = 2) before any kernel runs, and a bad binding leaves
    the program usable."""
    cx = lm.Graph()
    x = cx.tensor(("n",))
    y = (x[3:] * 2.0).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    x.set(np.arange(2, dtype=np.float32))
    with pytest.raises(lm.ExecutionError, match=r"n - 3 evaluates to -1 < 0"):
        cx.execute()
    x.set(np.arange(6, dtype=np.float32))
    cx.execute()
    np.testing.assert_array_equal(y.numpy(), [6.0, 8.0, 10.0])


def test_index_math_over_symbolic_dims_uses_plain_division() -> None:
    """A quotient by a dim that may be 0 is still nonnegative (a zero
    divisor never divides: its loop is empty), so index math over it prints
    as C's / and %, not the branchy floor helpers: attention's symbolic
    index math in a prompt ran 20-25% slower with them."""
    cx = lm.Graph()
    x = cx.tensor(("s", 8))
    y = (x.permute(1, 0).reshape((2, 4, "s")) * 2.0).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    kernel = "".join(kernel_functions(cx))
    assert "((i / d_s) % INT64_C(4))" in kernel and "lm_floor" not in kernel
    for s in (3, 1, 0):
        data = np.arange(8 * s, dtype=np.float32).reshape(s, 8)
        x.set(data)
        cx.execute()
        np.testing.assert_array_equal(y.numpy(), data.T.reshape(2, 4, s) * 2)


def test_concatenated_scores_read_without_divisions() -> None:
    """Attention's softmax over cat([past scores, new scores + causal mask]):
    the fused kernel reads each part at r - past through the concatenation
    (a pad), with no division or modulo of it by the symbolic lengths (those
    made this softmax 3x slower at 64 tokens). Values as torch's, for several
    (past, seq) bindings of the one compiled graph."""
    from luminal.models.llama import attention_biases

    cx = lm.Graph()
    q = cx.tensor((1, 2, 2, "seq", 8), name="q")
    k_new = cx.tensor((1, 2, 1, 8, "seq"), name="k_new")
    k_past = cx.tensor((1, 2, 1, 8, "past"), name="k_past")
    bias_new, _ = attention_biases(cx, q.shape[3], k_past.shape[4], None)
    scores = (q @ k_new) * 0.3 + bias_new
    probs = lm.cat([(q @ k_past) * 0.3, scores], -1).softmax(-1).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    softmax = [k for k in kernel_functions(cx) if "reduction(max:" in k]
    assert len(softmax) == 1
    assert "lm_floordiv" not in softmax[0] and "lm_floormod" not in softmax[0], softmax[0]
    rng = np.random.default_rng(5)
    for past, seq in [(0, 5), (3, 1), (7, 4)]:
        data = {t: rng.standard_normal(s).astype(np.float32)
                for t, s in [(q, (1, 2, 2, seq, 8)), (k_new, (1, 2, 1, 8, seq)), (k_past, (1, 2, 1, 8, past))]}
        for t, d in data.items():
            t.set(d)
        cx.execute()
        tq, tk, tp = (torch.from_numpy(data[t]) for t in (q, k_new, k_past))
        causal = torch.full((seq, seq), float("-inf")).triu(1)
        want = torch.cat([(tq @ tp) * 0.3, (tq @ tk) * 0.3 + causal], -1).softmax(-1)
        np.testing.assert_allclose(probs.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


def test_permuted_head_outputs_read_without_divisions() -> None:
    """Attention's two partial outputs (past and new keys), summed and put
    back in (seq, heads * head_dim) order for o_proj: the row-form kernel's
    loads divide nothing per element by the symbolic length (row // 4 is
    below seq, so (c + 64 * (row // 4)) // (64 * seq) folds to 0)."""
    cx = lm.Graph()
    p_past, v_past = cx.tensor((1, 2, 2, "seq", "past")), cx.tensor((1, 2, 1, "past", 64))
    p_new, v_new = cx.tensor((1, 2, 2, "seq", "seq")), cx.tensor((1, 2, 1, "seq", 64))
    w = cx.tensor((16, 256))
    heads = (p_past @ v_past + p_new @ v_new).permute(0, 3, 1, 2, 4).reshape(1, p_new.shape[3], 256)
    y = (heads @ w.T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    summed = [k for k in kernel_functions(cx) if "(v0 + v1)" in k]
    assert len(summed) == 1 and "/ (d_seq" not in summed[0] and "/ d_seq" not in summed[0], summed
    rng = np.random.default_rng(6)
    for past, seq in [(0, 3), (5, 1), (4, 6)]:
        data = [rng.standard_normal(s).astype(np.float32) for s in
                [(1, 2, 2, seq, past), (1, 2, 1, past, 64), (1, 2, 2, seq, seq), (1, 2, 1, seq, 64), (16, 256)]]
        for t, d in zip([p_past, v_past, p_new, v_new, w], data):
            t.set(d)
        cx.execute()  # verify=True: the reference executor agrees
        want = (data[0] @ data[1] + data[2] @ data[3]).transpose(0, 3, 1, 2, 4).reshape(1, seq, 256) @ data[4].T
        np.testing.assert_allclose(y.numpy(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seq, scores_as, values_as", [
    (1, dict(batches=2, m=3), dict(batches=2, m=3)),
    (4, dict(batches=6, m=4), dict(batches=2, m=12)),
])
def test_grouped_query_attention_folds_heads_into_rows(seq: int, scores_as: dict, values_as: dict) -> None:
    """Decode's grouped-query attention (one query row per head; a kv head
    read by 3 query heads) is one BLAS product per kv head with the 3 heads
    as its rows, for the scores and for the weights (narrowed to the past
    part, so their rows are past + 1 apart) times the values. With several
    query rows per head, the queries' rows do not continue one another
    across heads (each head is its own product), while the weights' rows,
    one buffer in (kv head, head, row) order, still do."""
    B, KV, rep, hd, past = 1, 2, 3, 8, 5
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(B, seq, KV * rep, hd)), rng.normal(size=(past, B, KV, hd))
    w, v = rng.normal(size=(B, KV, rep, seq, past + 1)), rng.normal(size=(past, B, KV, hd))
    cx = lm.Graph()
    q5 = cx.tensor(q.shape).set(q).reshape(B, seq, KV, rep, hd).permute(0, 2, 3, 1, 4)
    k_t = cx.tensor(k.shape).set(k).permute(1, 2, 3, 0).unsqueeze(2)
    v5 = cx.tensor(v.shape).set(v).permute(1, 2, 0, 3).unsqueeze(2)
    scores = (q5 @ k_t).retrieve()
    out = (cx.tensor(w.shape).set(w).narrow(-1, 0, past) @ v5).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    cx.execute()
    assert lm._core.blas_products(cx._core) == [dict(scores_as, n=past, k=hd), dict(values_as, n=hd, k=past)]
    tq = torch.tensor(q).reshape(B, seq, KV, rep, hd).permute(0, 2, 3, 1, 4)
    tk = torch.tensor(k).permute(1, 2, 3, 0).unsqueeze(2)
    tv = torch.tensor(v).permute(1, 2, 0, 3).unsqueeze(2)
    np.testing.assert_allclose(scores.numpy(), (tq @ tk).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.numpy(), (torch.tensor(w)[..., :past] @ tv).numpy(), rtol=1e-5, atol=1e-5)


def test_batched_few_row_products_split_over_the_cores_match_torch() -> None:
    """Attention over keys laid out head by head, (batch, kv heads, past,
    head dim) as torch's SDPA takes them, long enough that its kv heads'
    products are split over the cores (8 kv heads x 4 query rows, 512 past
    tokens: the products are counted by the bytes they read), against torch."""
    KV, rep, hd, past = 8, 4, 128, 512
    rng = np.random.default_rng(1)
    q, k = rng.normal(size=(1, 1, KV * rep, hd)), rng.normal(size=(1, KV, past, hd))
    cx = lm.Graph()
    q5 = cx.tensor(q.shape).set(q).reshape(1, 1, KV, rep, hd).permute(0, 2, 3, 1, 4)
    scores = (q5 @ cx.tensor(k.shape).set(k).mT.unsqueeze(2)).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    cx.execute()
    assert lm._core.blas_products(cx._core) == [dict(batches=KV, m=rep, n=past, k=hd)]
    tq = torch.tensor(q).reshape(1, 1, KV, rep, hd).permute(0, 2, 3, 1, 4)
    want = tq @ torch.tensor(k).mT.unsqueeze(2)
    np.testing.assert_allclose(scores.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


# the first three read megabytes: position by position over the cores; the
# rest fit in cache: batch by batch on one core, 16 positions (keys) or 64
# columns (values) at a time, with the remainders (43 positions; 80 columns,
# 5 rows) and a head dim no multiple of 16 (24: the plain loops)
@pytest.mark.parametrize("kv, rep, past, hd", [(8, 4, 512, 128), (4, 1, 1031, 128), (2, 8, 2049, 128),
                                               (2, 2, 43, 64), (3, 5, 100, 80), (2, 3, 17, 24)])
def test_attention_over_a_position_major_cache_matches_torch(kv: int, rep: int, past: int, hd: int) -> None:
    """Decode attention over a KV cache laid out (past, batch, kv heads, head
    dim), as the models keep it: each kv head's keys are one short piece per
    position, so these few-row products walk the cache position by position
    over the cores (lm_interleaved_products) instead of head by head, or
    run alone where the cache fits in cache. The scores, and the weights
    (narrowed to the past, as the models do) times the values, against
    torch in float64; odd lengths split unevenly."""
    rng = np.random.default_rng(past)
    q, k = rng.normal(size=(1, 1, kv * rep, hd)), rng.normal(size=(past, 1, kv, hd))
    w, v = rng.uniform(size=(1, kv, rep, 1, past + 1)), rng.normal(size=(past, 1, kv, hd))
    cx = lm.Graph()
    q5 = cx.tensor(q.shape).set(q).reshape(1, 1, kv, rep, hd).permute(0, 2, 3, 1, 4)
    scores = (q5 @ cx.tensor(k.shape).set(k).permute(1, 2, 3, 0).unsqueeze(2)).retrieve()
    v5 = cx.tensor(v.shape).set(v).permute(1, 2, 0, 3).unsqueeze(2)
    out = (cx.tensor(w.shape).set(w).narrow(-1, 0, past) @ v5).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    cx.execute()
    assert lm._core.blas_products(cx._core) == [dict(batches=kv, m=rep, n=past, k=hd),
                                                dict(batches=kv, m=rep, n=hd, k=past)]
    tq = torch.tensor(q).reshape(1, 1, kv, rep, hd).permute(0, 2, 3, 1, 4)
    want_scores = tq @ torch.tensor(k).permute(1, 2, 3, 0).unsqueeze(2)
    want_out = torch.tensor(w)[..., :past] @ torch.tensor(v).permute(1, 2, 0, 3).unsqueeze(2)
    np.testing.assert_allclose(scores.numpy(), want_scores.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.numpy(), want_out.numpy(), rtol=1e-4, atol=1e-4)


def test_concatenated_rows_run_as_one_loop_per_source() -> None:
    """A KV cache's softmax, over cat(past scores, new scores + causal mask):
    each inner loop runs in two pieces split at the seam, each reading its own
    source with no condition, after the row's integer divisions: gcc
    vectorized exp2f only then (a 512-token prefill's softmax, 32 heads: ~90
    -> ~6 ms). Checked against torch with either side empty."""
    cx = lm.Graph()
    past = cx.tensor((4, "s", "p"), name="past")
    new = cx.tensor((4, "s", "s"), name="new")
    i = cx.arange("s").float().unsqueeze(1)
    j = cx.arange("s").float().unsqueeze(0)
    y = lm.cat([past, new + j.lt(i + 1.0).float().log2()], -1).softmax(-1).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(), verify=True)
    assert cx.kernel_count() == 1
    (kernel,) = [k for k in kernel_functions(cx) if "d_p < (d_p + d_s)" in k]
    # past's loop, then new's from the seam on; the new side's mask is the
    # only select left, and no load sits behind a condition in the loops
    # taken when the row's bounds hold
    assert kernel.count("for (int64_t c = d_p; c < (d_p + d_s); ++c)") >= 1
    assert kernel.count("for (int64_t r = d_p; r < (d_p + d_s); ++r)") >= 2
    fast = [part.split("} else {")[0] for part in kernel.split("if (") if "for (int64_t" in part]
    assert fast and not any(re.search(r"\? in\d\[", part) for part in fast), kernel
    rng = np.random.default_rng(5)
    for p, s in [(0, 6), (5, 1), (7, 3), (4, 0)]:
        a = rng.standard_normal((4, s, p)).astype(np.float32)
        b = rng.standard_normal((4, s, s)).astype(np.float32)
        cx.set_dim("p", p)
        cx.set_dim("s", s)
        past.set(a)
        new.set(b)
        cx.execute()
        mask = torch.full((s, s), float("-inf")).triu(1)
        want = torch.cat([torch.from_numpy(a), torch.from_numpy(b) + mask], -1).double().softmax(-1)
        np.testing.assert_allclose(y.numpy(), want.float().numpy(), rtol=1e-5, atol=1e-6)
