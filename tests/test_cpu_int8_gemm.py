"""Prompts of GGML-block weights in int8 (csrc/cpu/c_int8_gemm.cpp): where
the CPU has AVX512-VNNI and no AMX units (AMD Zen 4 and 5, Intel Ice Lake and
later), products of 4+ rows (Q8_0), 8+ (Q4_0) or 12+ (the k-quants, IQ4_XS)
quantize the activations per 32 values as Q8_0 decode does and sum their
int8 products with the weights' levels exactly, then scale (and subtract
the mins): the float64 emulation of that, to float32 rounding.
LUMINAL_AMX=1 puts them on the bf16 tiles instead, 0 on the exact path (the
k-quants: their int8 tiles, activations per 256; test_cpu_amx.py,
test_quant.py). Elsewhere these tests do not run."""

from __future__ import annotations

import numpy as np
import pytest

import luminal as lm
from helpers import emulated_int8_product, int8_gemm_cpu
from helpers import run_with_amx as run

needs_gemm = pytest.mark.skipif(not int8_gemm_cpu(), reason="no AVX512-VNNI, or AMX units, on this CPU")

def product(fmt: str, m: int, n: int, k: int, blocks: np.ndarray | None = None,
            x: np.ndarray | None = None) -> tuple[lm.Graph, lm.Tensor, np.ndarray, np.ndarray]:
    """The graph of x @ W^T with W's blocks in ``fmt`` (random unless given),
    x (random unless given) and W's blocks."""
    rng = np.random.default_rng(m * 1000 + n + k)
    if x is None:
        x = rng.standard_normal((m, k)).astype(np.float32)
    if blocks is None:
        blocks = lm.quant.quantize(rng.standard_normal((n, k)).astype(np.float32), fmt)
    cx = lm.Graph()
    y = (cx.tensor((m, k)).set(x) @ cx.parameter((n, k), dtype=fmt).set_blocks(blocks).T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    return cx, y, x, blocks


# The fewest rows each format's products take the GEMM from
GEMM_ROWS = {"q8_0": 4, "q4_0": 8, **{f: 12 for f in lm.quant.K_QUANTS}}
# rows: 16-row groups and the 8 + 4 + 2 + 1 left over (9, 15, 37); columns:
# 64 a thread, the last 16 short (5, 33, 200); k: an odd number of blocks
# (32, 96, 160) besides pairs, 1 and 3 super-blocks for the k-quants
GEMM_CASES = [(f, *shape) for f in ("q8_0", "q4_0")
              for shape in [(8, 16, 32), (9, 5, 64), (15, 33, 96), (16, 64, 4096), (37, 200, 160), (300, 80, 256)]]
GEMM_CASES += [(f, *shape) for f in lm.quant.K_QUANTS for shape in [(12, 16, 256), (15, 33, 768), (300, 80, 256)]]


@needs_gemm
@pytest.mark.parametrize("fmt,m,n,k", GEMM_CASES)
def test_int8_gemm_is_the_int8_product(monkeypatch: pytest.MonkeyPatch, fmt: str, m: int, n: int, k: int) -> None:
    cx, y, x, blocks = product(fmt, m, n, k)
    got = run(monkeypatch, cx, y)
    want = emulated_int8_product(x, blocks, fmt)
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)
    if m >= 16:  # LUMINAL_AMX=0: unquantized activations (the k-quants: quantized per 256)
        assert np.abs(got - run(monkeypatch, cx, y, "0")).max() > 100 * np.abs(got - want).max()
    np.testing.assert_array_equal(run(monkeypatch, cx, y), got)  # the same every run


@needs_gemm
@pytest.mark.parametrize("fmt", ["q8_0", "q4_k", "q6_k", "iq4_xs"])
def test_int8_gemm_from_its_row_threshold(monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """Below GEMM_ROWS, decode's kernels (as with LUMINAL_AMX=0: the same
    floats); from there the GEMM: Q8_0 the same product summed in another
    order, the k-quants on activations quantized per 32, not 256."""
    for m in (GEMM_ROWS[fmt] - 1, GEMM_ROWS[fmt]):
        cx, y, x, blocks = product(fmt, m, 80, 512)
        got, decode = run(monkeypatch, cx, y), run(monkeypatch, cx, y, "0")
        assert np.array_equal(got, decode) == (m < GEMM_ROWS[fmt]), m
        if m == GEMM_ROWS[fmt]:
            np.testing.assert_allclose(got, emulated_int8_product(x, blocks, fmt), rtol=1e-5, atol=1e-4)


@needs_gemm
def test_q4_0_prompt_rows_equal_their_rows_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Q4_0 decode (the repacked kernel) and the GEMM run the same float
    operations for each output: a 20-row prompt's product (the GEMM) equals
    its rows' products one at a time, bit for bit."""
    k, n = 512, 40
    rng = np.random.default_rng(5)
    blocks = lm.quant.quantize(rng.standard_normal((n, k)).astype(np.float32), "q4_0")
    x = rng.standard_normal((20, k)).astype(np.float32)
    cx = lm.Graph()
    xin = cx.tensor(("s", k))
    y = (xin @ cx.parameter((n, k), dtype="q4_0").set_blocks(blocks).T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    monkeypatch.delenv("LUMINAL_AMX", raising=False)
    xin.set(x)
    cx.execute()
    prompt = y.numpy()
    np.testing.assert_allclose(prompt, emulated_int8_product(x, blocks, "q4_0"), rtol=1e-5, atol=1e-4)
    assert np.abs(prompt - run(monkeypatch, cx, y, "0")).max() > 1e-3  # "0": exact, unquantized
    monkeypatch.delenv("LUMINAL_AMX")
    for r in range(20):
        xin.set(x[r : r + 1])
        cx.execute()
        np.testing.assert_array_equal(y.numpy(), prompt[r : r + 1])


@needs_gemm
def test_int8_gemm_extreme_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Q8_0 quants of -128 (the format allows them; llama.cpp's quantizer
    writes -127 at most) and 127, against activation blocks at the int8
    limits, all zero (scale 0), tiny (subnormal scale) and huge: the int32
    sums stay exact, nothing overflows into the next block."""
    n, k = 40, 128
    rng = np.random.default_rng(7)
    blocks = lm.quant.quantize(rng.standard_normal((n, k)).astype(np.float32), "q8_0").reshape(n, k // 32, 34)
    blocks[::2, :, 2:] = np.array([-128, 127], np.int8).view(np.uint8)[rng.integers(0, 2, (20, k // 32, 32))]
    blocks[1::4, 1, 2:] = np.uint8(0x80)  # every quant -128
    x = rng.standard_normal((20, k)).astype(np.float32)
    x[0] = np.where(np.arange(k) % 2, 1.0, -1.0)  # every activation at +-127
    x[1, :32] = 0.0
    x[2, 32:64] = 1e-40
    x[3, 64:96] = 1e30
    cx, y, x, blocks = product("q8_0", 20, n, k, blocks.reshape(-1), x)
    got = run(monkeypatch, cx, y)
    want = emulated_int8_product(x, blocks)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want[np.isfinite(want)]).max())


@needs_gemm
def test_int8_gemm_in_a_model_prompt_then_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """A symbolic-row program: the prompt's rows on the GEMM, a decoded row
    on decode's kernel, one compile, both the int8 product."""
    k, n = 256, 48
    rng = np.random.default_rng(1)
    blocks = lm.quant.quantize(rng.standard_normal((n, k)).astype(np.float32), "q8_0")
    cx = lm.Graph()
    xin = cx.tensor(("s", k))
    y = (xin @ cx.parameter((n, k), dtype="q8_0").set_blocks(blocks).T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    monkeypatch.delenv("LUMINAL_AMX", raising=False)
    for rows in (29, 1, 6):
        x = rng.standard_normal((rows, k)).astype(np.float32)
        xin.set(x)
        cx.execute()
        np.testing.assert_allclose(y.numpy(), emulated_int8_product(x, blocks), rtol=1e-5, atol=1e-4)


@needs_gemm
@pytest.mark.parametrize("fmt", ["q8_0", "q4_k"])
def test_int8_gemm_reads_activations_from_a_slice(monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """Activations that are the second half of wider rows (a row stride
    twice k): the product of the slice."""
    m, k, n = 20, 256, 48
    rng = np.random.default_rng(2)
    wide = rng.standard_normal((m, 2 * k)).astype(np.float32)
    blocks = lm.quant.quantize(rng.standard_normal((n, k)).astype(np.float32), fmt)
    cx = lm.Graph()
    y = (cx.tensor((m, 2 * k)).set(wide)[:, k:] @ cx.parameter((n, k), dtype=fmt).set_blocks(blocks).T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    got = run(monkeypatch, cx, y)
    np.testing.assert_allclose(got, emulated_int8_product(wide[:, k:].copy(), blocks, fmt), rtol=1e-5, atol=1e-4)
