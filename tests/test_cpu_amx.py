"""Prefill products on bf16 tiles (csrc/cpu/c_amx_products.cpp): Q8_0, Q4_0
(by default with AMX units; with AVX512-VNNI and no AMX they take the int8
GEMM, test_cpu_int8_gemm.py) and packed-half weights (LUMINAL_AMX=1) against 16+ activation
rows, rounded to bf16 in the tiles, summed in float32; multiplied by AMX
units where the CPU has them (and Linux grants them), else by AVX512-BF16
dot products. The tile tests run only where the CPU has either; the others
check the defaults everywhere."""

from __future__ import annotations

import numpy as np
import pytest

import luminal as lm
from helpers import amx_units, bf16_tiles_cpu, int8_gemm_cpu
from helpers import run_with_amx as run


# Fewest rows of a Q8_0 product (and, at "medium", of a packed-half one) on
# the tiles: where they beat the int8 (half) kernels on each kind of unit
Q8_0_TILE_ROWS = 8 if amx_units() else 4
HALF_TILE_ROWS = 16 if amx_units() else 4


def linear(fmt: str, m: int, n: int, k: int, seed: int = 0,
           precision: str = "highest") -> tuple[lm.Graph, lm.Tensor, np.ndarray]:
    """The graph of x @ W^T with W stored as ``fmt`` (compiled at
    float32_matmul_precision ``precision``), and the float64 product of x
    with W's stored values."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    cx = lm.Graph()
    x = cx.tensor((m, k)).set(a)
    weight = cx.parameter((n, k), dtype=fmt).set(w)
    y = lm.nn.functional.linear(x, weight).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(float32_matmul_precision=precision))
    stored = lm.quant.dequantize(lm.quant.quantize(w, fmt), fmt, (n, k)).reshape(n, k)
    return cx, y, a.astype(np.float64) @ stored.astype(np.float64).T


@pytest.mark.skipif(not bf16_tiles_cpu(), reason="no AMX-BF16 or AVX512-BF16 on this CPU")
@pytest.mark.parametrize("fmt", ["q8_0", "q4_0", "f16_packed", "bf16_packed"])
# k in chunks, so that sums are carried over in out, edge tiles too: (300,
# 40, 4096) in 3 on AMX (a chunk's activations held to 1 MB), (2080, 40,
# 4096) in 2 with AVX512-BF16 (16 MB)
@pytest.mark.parametrize("m,n,k", [(16, 32, 64), (37, 80, 256), (64, 33, 96), (300, 40, 4096), (2080, 40, 4096)])
def test_amx_prefill_is_the_product_to_bf16_rounding(monkeypatch: pytest.MonkeyPatch, fmt: str, m: int, n: int,
                                                    k: int) -> None:
    cx, y, want = linear(fmt, m, n, k)
    exact = run(monkeypatch, cx, y, "0")
    np.testing.assert_allclose(exact, want, rtol=1e-4, atol=1e-4)
    tiles = run(monkeypatch, cx, y, "1")
    # bf16 keeps 8 bits: each term is off by up to 2^-8 relative, the sums by
    # about that over sqrt(k) random signs; padding rows and columns (m, n
    # not multiples of 32) must not leak into the result
    scale = np.sqrt(k) * np.abs(want).mean()
    assert np.abs(tiles - want).max() < 2 ** -6 * scale
    assert not np.array_equal(tiles, exact)  # the tiles ran: they round
    np.testing.assert_array_equal(run(monkeypatch, cx, y, "1"), tiles)  # and run the same way twice


@pytest.mark.parametrize("fmt", ["q8_0", "q4_0", "f16_packed", "bf16_packed"])
def test_tiles_by_default_for_q8_0_and_q4_0(monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """Unset, LUMINAL_AMX means tiles for Q8_0 and Q4_0 prefill where the CPU
    has bf16 tiles and no int8 GEMM (AMX units), the exact widening product
    for packed halves; 0 is exact for all."""
    cx, y, want = linear(fmt, 37, 80, 256)
    exact = run(monkeypatch, cx, y, "0")
    np.testing.assert_allclose(exact, want, rtol=1e-5, atol=1e-4)
    tiles, default = run(monkeypatch, cx, y, "1"), run(monkeypatch, cx, y, None)
    if fmt in ("q8_0", "q4_0") and int8_gemm_cpu():  # its own tests: test_cpu_int8_gemm.py
        assert not np.array_equal(default, tiles) and not np.array_equal(default, exact)
    elif bf16_tiles_cpu() and fmt in ("q8_0", "q4_0"):
        np.testing.assert_array_equal(default, tiles)
        assert not np.array_equal(default, exact)
    else:
        np.testing.assert_array_equal(default, exact)


@pytest.mark.parametrize("m", [3, 4, 7, 8, 15])
def test_q8_0_takes_tiles_from_few_rows(monkeypatch: pytest.MonkeyPatch, m: int) -> None:
    """Q8_0 products of fewer than 16 rows run on the tiles too, from 8 rows
    on AMX (by default) and 4 with AVX512-BF16 (LUMINAL_AMX=1, where the
    int8 GEMM is the default); fewer rows keep the int8 kernel."""
    cx, y, want = linear("q8_0", m, 80, 256)
    int8 = run(monkeypatch, cx, y, "0")
    assert np.abs(int8 - want).max() < 2 ** -6 * np.sqrt(256) * np.abs(want).mean()
    tiles = run(monkeypatch, cx, y, "1")
    if bf16_tiles_cpu() and m >= Q8_0_TILE_ROWS:
        assert not np.array_equal(tiles, int8)
        assert np.abs(tiles - want).max() < 2 ** -6 * np.sqrt(256) * np.abs(want).mean()
    else:
        np.testing.assert_array_equal(tiles, int8)
    if not int8_gemm_cpu():
        np.testing.assert_array_equal(run(monkeypatch, cx, y, None), tiles)


@pytest.mark.parametrize("fmt", ["f16_packed", "bf16_packed"])
@pytest.mark.parametrize("m", [3, 6, 37])
def test_medium_precision_puts_packed_halves_on_tiles(monkeypatch: pytest.MonkeyPatch, fmt: str, m: int) -> None:
    """float32_matmul_precision="medium" covers products with f16/bf16
    weights too: where the CPU has bf16 tiles they run on them (from 16 rows
    on AMX, 4 with AVX512-BF16), as LUMINAL_AMX=1 runs them; "highest" (and
    LUMINAL_AMX=0) keeps them exact."""
    cx, y, want = linear(fmt, m, 80, 256)
    exact = run(monkeypatch, cx, y, None)
    np.testing.assert_allclose(exact, want, rtol=1e-5, atol=1e-4)
    mx, my, _ = linear(fmt, m, 80, 256, precision="medium")
    medium = run(monkeypatch, mx, my, None)
    if bf16_tiles_cpu() and m >= HALF_TILE_ROWS:
        np.testing.assert_array_equal(medium, run(monkeypatch, cx, y, "1"))
        assert not np.array_equal(medium, exact)
        assert np.abs(medium - want).max() < 2 ** -6 * np.sqrt(256) * np.abs(want).mean()
        np.testing.assert_array_equal(run(monkeypatch, mx, my, "0"), exact)
    else:
        np.testing.assert_array_equal(medium, exact)


@pytest.mark.parametrize("fmt", lm.quant.K_QUANTS)
@pytest.mark.parametrize("m,n,k", [(16, 32, 256), (37, 80, 512), (300, 40, 4096)])
def test_k_quant_prefill_on_tiles_by_default(monkeypatch: pytest.MonkeyPatch, fmt: str, m: int, n: int,
                                             k: int) -> None:
    """k-quant (Q2_K..Q6_K) prefill: bf16 tiles by default where the CPU has AMX (the
    super-blocks widened in the tiles' packing; LUMINAL_AMX=1 with
    AVX512-BF16), the int8 GEMM with AVX512-VNNI and no AMX
    (test_cpu_int8_gemm.py), else, and with LUMINAL_AMX=0, the int8 tiles
    on activations quantized per 256."""
    cx, y, want = linear(fmt, m, n, k)
    scale = np.sqrt(k) * np.abs(want).mean()
    int8 = run(monkeypatch, cx, y, "0")
    assert np.abs(int8 - want).max() < 2 ** -8 * scale  # activations rounded to int8 (~2^-10 here)
    default, tiles = run(monkeypatch, cx, y, None), run(monkeypatch, cx, y, "1")
    if bf16_tiles_cpu():
        assert np.abs(tiles - want).max() < 2 ** -9 * scale  # bf16 rounding (~2^-11 here)
        assert not np.array_equal(tiles, int8)
    if int8_gemm_cpu():
        assert not np.array_equal(default, int8) and not np.array_equal(default, tiles)
    elif bf16_tiles_cpu():
        np.testing.assert_array_equal(default, tiles)
    else:
        np.testing.assert_array_equal(default, int8)


def float_product(a_shape: tuple[int, ...], b_shape: tuple[int, ...], trans_b: bool, precision: str,
                  seed: int = 0) -> tuple[lm.Graph, lm.Tensor, np.ndarray]:
    """The graph of a @ b (b's last two dims swapped when trans_b: a key
    matrix read as K^T) compiled for ``precision``, and the float64 product."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    cx = lm.Graph()
    bt = cx.tensor(b.shape).set(b)
    y = (cx.tensor(a.shape).set(a) @ (bt.transpose(-1, -2) if trans_b else bt)).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler(float32_matmul_precision=precision))
    want = a.astype(np.float64) @ (np.swapaxes(b, -1, -2) if trans_b else b).astype(np.float64)
    return cx, y, want


# Each at least 2^22 multiply-adds (smaller ones stay with BLAS): sizes on
# and off the tiles' 16 / 32 (k 130 is zero-padded to 160, n 120 leaves edge
# tiles), batches of attention's shapes (keys read transposed), and a batch
# broadcast over 4 query heads as grouped-query attention reads its keys.
FLOAT_CASES = [
    ((64, 256), (256, 256), False),
    ((300, 130), (130, 120), False),
    ((300, 130), (120, 130), True),
    ((8, 64, 64), (8, 64, 160), False),
    ((8, 64, 64), (8, 160, 64), True),
    ((2, 4, 64, 64), (2, 1, 160, 64), True),
]


@pytest.mark.skipif(not bf16_tiles_cpu(), reason="no AMX-BF16 or AVX512-BF16 on this CPU")
@pytest.mark.parametrize("a_shape,b_shape,trans_b", FLOAT_CASES)
def test_medium_precision_float_products_on_tiles(monkeypatch: pytest.MonkeyPatch, a_shape: tuple[int, ...],
                                                  b_shape: tuple[int, ...], trans_b: bool) -> None:
    """float32_matmul_precision="medium": float products of 16+ rows round
    their operands to bf16 on AMX tiles (sums in float32); LUMINAL_AMX=0
    turns that off; "highest" stays float32."""
    cx, y, want = float_product(a_shape, b_shape, trans_b, "medium")
    k = a_shape[-1]
    scale = np.sqrt(k) * np.abs(want).mean()
    tiles = run(monkeypatch, cx, y, None)
    assert np.abs(tiles - want).max() < 2 ** -6 * scale  # bf16's 8 bits a term, as in the weight products
    hx, hy, _ = float_product(a_shape, b_shape, trans_b, "highest")
    exact = run(monkeypatch, hx, hy, None)
    np.testing.assert_allclose(exact, want, rtol=1e-4, atol=1e-4 * scale)
    assert np.abs(tiles - want).max() > 10 * np.abs(exact - want).max()  # the tiles ran: they round
    np.testing.assert_array_equal(run(monkeypatch, cx, y, "0"), exact)  # off: BLAS, as "highest"
    np.testing.assert_array_equal(run(monkeypatch, cx, y, None), tiles)  # the same way every run


@pytest.mark.parametrize("a_shape,b_shape,trans_b", [((15, 512), (512, 600), False), ((32, 20, 7), (32, 7, 19), False)])
def test_medium_precision_keeps_float32_where_tiles_do_not_pay(monkeypatch: pytest.MonkeyPatch,
                                                               a_shape: tuple[int, ...], b_shape: tuple[int, ...],
                                                               trans_b: bool) -> None:
    """Products under 16 rows, and small ones (a parallel region costs more
    than they do), stay float32 at "medium"."""
    cx, y, _ = float_product(a_shape, b_shape, trans_b, "medium")
    hx, hy, _ = float_product(a_shape, b_shape, trans_b, "highest")
    np.testing.assert_array_equal(run(monkeypatch, cx, y, None), run(monkeypatch, hx, hy, None))


def test_float32_matmul_precision_is_checked() -> None:
    with pytest.raises(ValueError, match="float32_matmul_precision must be one of highest, medium, got 'low'"):
        lm.CPUCompiler(float32_matmul_precision="low")
    assert repr(lm.CPUCompiler(float32_matmul_precision="medium")) == "CPUCompiler(float32_matmul_precision='medium')"
    assert repr(lm.CPUCompiler()) == "CPUCompiler()"
