"""Compact weights: GGML Q8_0/Q4_0 blocks and packed F16/BF16 halves in graph
inputs, read by the reference executor (widened) and by CPU kernels (int8
products for the blocks, float32 products on widened halves)."""

from __future__ import annotations

import re

import gguf
import numpy as np
import pytest
from gguf.quants import dequantize as gguf_dequantize
from gguf.quants import quantize as gguf_quantize

import luminal as lm
from helpers import emulated_int8_product
from luminal import quant

GGUF_TYPES = {"q8_0": gguf.GGMLQuantizationType.Q8_0, "q4_0": gguf.GGMLQuantizationType.Q4_0}


def _weights(shape=(48, 96), seed=0):
    w = np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32)
    w[0, :32] = 0.0  # an all-zero block (scale 0)
    w[1, :32] *= 1e4  # a wide block
    w[2, 5] = -7.5  # q4_0: a negative peak maps to -8
    return w


@pytest.mark.parametrize("fmt", quant.GGML_BLOCKS)
def test_quantize_is_bit_exact_with_gguf(fmt):
    w = _weights()
    mine = quant.quantize(w, fmt)
    ref = np.asarray(gguf_quantize(w, GGUF_TYPES[fmt])).reshape(-1)
    np.testing.assert_array_equal(mine, ref)
    np.testing.assert_array_equal(quant.dequantize(mine, fmt, w.shape),
                                  gguf_dequantize(ref.reshape(w.shape[0], -1), GGUF_TYPES[fmt]))


@pytest.mark.parametrize("fmt", quant.GGML_BLOCKS)
def test_quantized_parameter_in_graphs(monkeypatch, backend, fmt):
    # the int8 kernel: Q8_0 products of 8+ rows (10 here) run on bf16 tiles
    # where the CPU has AMX (test_cpu_amx.py)
    monkeypatch.setenv("LUMINAL_AMX", "0")
    w = _weights()
    x = np.random.default_rng(1).normal(0, 1, (2, 5, 96)).astype(np.float32)
    cx = lm.Graph()
    xt = cx.tensor((2, "seq", 96), name="x").set(x)
    wt = cx.parameter(w.shape, name="w", dtype=fmt).set(w)
    y = (xt @ wt.T).retrieve()
    z = (wt * 2.0).sum(-1).retrieve()  # an elementwise read of the blocks
    int8 = backend.name == "cpu"  # the CPU compiler's products quantize activations
    if backend.name != "reference":
        cx.compile(*backend.make_compilers())  # no verify: Q8_0 products quantize activations
    cx.execute()
    wd = quant.dequantize(quant.quantize(w, fmt), fmt, w.shape)
    np.testing.assert_allclose(wt.numpy(), wd)
    np.testing.assert_allclose(z.numpy(), (wd * 2).sum(-1), rtol=1e-5, atol=1e-3)
    ref = x @ wd.T
    if int8:
        assert cx.kernel_source().count("lm_quant_matmul(out") == 1
        np.testing.assert_allclose(y.numpy(), emulated_int8_product(x, quant.quantize(w, fmt), fmt),
                                   rtol=1e-4, atol=1e-3)
        # within the activations' quantization error of the float product
        assert np.abs(y.numpy() - ref).max() < 0.02 * np.abs(ref).max()
    else:
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-4, atol=1e-2)


def test_q8_matmul_symbolic_rows_one_compile(monkeypatch):
    monkeypatch.setenv("LUMINAL_AMX", "0")  # the exact widening path (tiles: test_cpu_amx.py)
    w = _weights((64, 128), seed=3)
    blocks = quant.quantize(w, "q8_0")
    cx = lm.Graph()
    xt = cx.tensor(("seq", 128), name="x")
    wt = cx.parameter(w.shape, dtype="q8_0").set_blocks(blocks)
    y = (xt @ wt.T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    wd = quant.dequantize(blocks, "q8_0", w.shape)
    for seq in (1, 7, 15, 16, 33):
        x = np.random.default_rng(seq).normal(0, 1, (seq, 128)).astype(np.float32)
        xt.set(x)
        cx.execute()
        if seq < 16:  # decode-sized: int8 dot products, activations quantized like llama.cpp
            np.testing.assert_allclose(y.numpy(), emulated_int8_product(x, blocks), rtol=1e-4, atol=1e-3)
        else:  # prefill: weights widened exactly, a float32 product
            np.testing.assert_allclose(y.numpy(), x.astype(np.float64) @ wd.T, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("rows, n, k", [(1, 8, 32), (1, 13, 96), (3, 40, 64), (15, 21, 128), (2, 1, 32)])
def test_q4_0_products_on_repacked_weights(rows, n, k):
    """Q4_0 decode runs on weights the runtime repacks into groups of 8 rows
    (cpu/q4_0x8.cpp, where the CPU has AVX2): the kernel takes them as an
    extra input, and n not a multiple of 8 leaves a part-empty last group.
    The int8 products equal the emulated ones; setting the weight again after
    a run repacks it (the new values, not the cached copy, are used)."""
    rng = np.random.default_rng(rows * n + k)
    w1, w2 = (rng.normal(0, 1, (n, k)).astype(np.float32) for _ in range(2))
    x = rng.normal(0, 1, (rows, k)).astype(np.float32)
    cx = lm.Graph()
    wt = cx.parameter((n, k), dtype="q4_0").set_blocks(quant.quantize(w1, "q4_0"))
    y = (cx.tensor(x.shape).set(x) @ wt.T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    assert "in1, in[2], " in cx.kernel_source()  # the packed weights: an extra input
    for w in (w1, w2):
        blocks = quant.quantize(w, "q4_0")
        wt.set_blocks(blocks)
        cx.execute()
        np.testing.assert_allclose(y.numpy(), emulated_int8_product(x, blocks, "q4_0"), rtol=1e-5, atol=1e-4)


def test_q4_0_weight_in_products_of_two_shapes():
    """One Q4_0 weight read whole and as its first 8 rows: each product gets
    its own repacked copy (one packed for 8 rows would be read past its end
    by the 24-row product)."""
    rng = np.random.default_rng(11)
    w = rng.normal(0, 1, (24, 64)).astype(np.float32)
    x = rng.normal(0, 1, (1, 64)).astype(np.float32)
    blocks = quant.quantize(w, "q4_0")
    cx = lm.Graph()
    wt = cx.parameter(w.shape, dtype="q4_0").set_blocks(blocks)
    xt = cx.tensor(x.shape).set(x)
    part, whole = (xt @ wt[:8].T).retrieve(), (xt @ wt.T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    assert cx.kernel_source().count("in1, in[2], ") == 2
    cx.execute()
    want = emulated_int8_product(x, blocks, "q4_0")
    np.testing.assert_allclose(whole.numpy(), want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(part.numpy(), want[:, :8], rtol=1e-5, atol=1e-4)


def _x86_flags() -> set[str]:
    """This CPU's feature flags (Linux), or none."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        return set()


def test_q4_0_repacking_can_be_turned_off(monkeypatch):
    """LUMINAL_REPACK=0 (read when a graph compiles): no repacked copy, the
    GGML-layout kernel instead. Both are the emulated int8 product; their
    float sums run in different orders, so the results differ in the last
    bits (64 outputs of 128 blocks each: all equal would mean one path ran)."""
    rng = np.random.default_rng(7)
    w = rng.normal(0, 1, (64, 4096)).astype(np.float32)
    x = rng.normal(0, 1, (1, 4096)).astype(np.float32)
    blocks = quant.quantize(w, "q4_0")
    results = []
    for repack in ("1", "0"):
        monkeypatch.setenv("LUMINAL_REPACK", repack)
        cx = lm.Graph()
        y = (cx.tensor(x.shape).set(x) @ cx.parameter(w.shape, dtype="q4_0").set_blocks(blocks).T).retrieve()
        cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
        cx.execute()
        results.append(y.numpy())
        np.testing.assert_allclose(results[-1], emulated_int8_product(x, blocks, "q4_0"), rtol=1e-5, atol=1e-3)
    if _x86_flags() >= {"avx2", "fma", "f16c"}:  # where the repacked kernel exists
        assert not np.array_equal(results[0], results[1])


def test_quantized_input_errors():
    cx = lm.Graph()
    w = cx.parameter((4, 32), dtype="q8_0")
    with pytest.raises(ValueError, match="136 bytes"):
        w.set_blocks(np.zeros(10, np.uint8))
    with pytest.raises(ValueError, match="multiple of 32"):
        cx.parameter((3, 5), dtype="q4_0").set(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="not a quantized"):
        cx.parameter((4, 32)).set_blocks(np.zeros(136, np.uint8))
    with pytest.raises(ValueError, match="unknown dtype"):
        cx.parameter((4, 32), dtype="q5_1")


@pytest.mark.parametrize("fmt", quant.QUANTIZED)
def test_quantized_parameter_rows_dequantize_only_those_rows(fmt, monkeypatch):
    """rows(): an embedding lookup on the stored blocks gives exactly the
    rows of the dequantized table, for any index shape and negative ids,
    without dequantizing the rest; an id out of range raises."""
    import luminal.nn as nn

    table = nn.QuantizedParameter.from_float(_weights((40, 512), seed=3), fmt)
    want = table.data
    ids = np.array([[5, 0, 39], [-1, 5, 17]])
    calls = []
    real = quant.dequantize
    monkeypatch.setattr(quant, "dequantize", lambda b, f, shape: calls.append(shape) or real(b, f, shape))
    got = table.rows(ids)
    assert calls == [(2, 3, 512)] and got.dtype == np.float32
    np.testing.assert_array_equal(got, want[ids])
    np.testing.assert_array_equal(table.rows([]), np.zeros((0, 512), np.float32))
    with pytest.raises(IndexError, match="out of range for 40 rows"):
        table.rows([3, 40])
    with pytest.raises(IndexError, match="out of range"):
        table.rows([-41])
    plain = nn.Parameter(want)
    np.testing.assert_array_equal(plain.rows(ids), want[ids])


def test_quantized_parameter_in_a_module():
    import luminal.nn as nn

    np.random.seed(0)
    layer = nn.Linear(64, 16, bias=False)
    w = layer.weight.data.copy()
    layer.weight = nn.QuantizedParameter.from_float(w, "q8_0")
    wd = quant.dequantize(quant.quantize(w, "q8_0"), "q8_0", w.shape)
    np.testing.assert_array_equal(layer.weight.data, wd)
    assert layer.weight.shape == (16, 64) and not layer.weight.requires_grad
    x = np.random.default_rng(0).normal(0, 1, (3, 64)).astype(np.float32)
    cx = lm.Graph()
    y = layer(cx.tensor((3, 64)).set(x)).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    cx.execute()
    assert cx.kernel_source().count("lm_quant_matmul(out") == 1
    np.testing.assert_allclose(y.numpy(), emulated_int8_product(x, layer.weight.blocks), rtol=1e-4, atol=1e-3)
    layer.load_state_dict({"weight": w * 2})  # re-quantizes and re-sets the bound graph
    cx.execute()
    np.testing.assert_allclose(y.numpy(), emulated_int8_product(x, quant.quantize(w * 2, "q8_0")),
                               rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="needs 544 bytes"):
        nn.QuantizedParameter(np.zeros(3, np.uint8), (16, 32), "q8_0")


@pytest.mark.parametrize("fmt", ["q8_0", "q4_k", "bf16_packed"])
def test_quantize_a_model_in_place(fmt):
    """nn.quantize_ stores every Linear weight that fills whole blocks as
    ``fmt`` (a filter can keep some float), leaves the rest float32, and the
    model then computes with the stored values."""
    import luminal.nn as nn

    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 96), nn.ReLU(), nn.Linear(96, 8))
    w = [model[i].weight.data.copy() for i in (0, 2, 4)]
    done = nn.quantize_(model, fmt, filter=lambda name, m: name != "2")
    block = quant.BLOCK_VALUES[fmt]
    assert done == [n for n, k in (("0", 256), ("4", 96)) if k % block == 0]
    assert isinstance(model[0].weight, nn.QuantizedParameter) and model[0].weight.format == fmt
    assert not isinstance(model[2].weight, nn.QuantizedParameter)  # the filter kept it float
    assert isinstance(model[4].weight, nn.QuantizedParameter) == (96 % block == 0)
    assert nn.quantize_(model, fmt) == ["2"]  # a second call quantizes what is left, once
    x = np.random.default_rng(1).normal(0, 1, (3, 256)).astype(np.float32)
    cx = lm.Graph()
    y = model(cx.tensor(x.shape).set(x)).retrieve()
    cx.execute()  # the reference executor: exact on the stored values
    stored = [m.weight.data for m in (model[0], model[2], model[4])]
    h = np.maximum(x @ stored[0].T + model[0].bias.data, 0)
    h = np.maximum(h @ stored[1].T + model[2].bias.data, 0)
    np.testing.assert_allclose(y.numpy(), h @ stored[2].T + model[4].bias.data, rtol=1e-4, atol=1e-4)
    assert not np.array_equal(stored[0], w[0])  # rounded, but close
    assert np.abs(stored[0] - w[0]).max() < 0.1 * np.abs(w[0]).max()
    with pytest.raises(ValueError, match="unknown format 'q3'"):
        nn.quantize_(model, "q3")
    # packed halves (a checkpoint's F16/BF16 values) convert; GGML blocks stay
    half = nn.Linear(256, 4)
    half.weight = nn.QuantizedParameter.from_float(half.weight.data, "bf16_packed")
    assert nn.quantize_(half, "q4_k") == [""] and half.weight.format == "q4_k"
    assert nn.quantize_(half, "q8_0") == [] and half.weight.format == "q4_k"


def test_q8_matmul_on_the_last_row_of_a_symbolic_batch():
    """Decode's logits: the last position of (1, seq, k) times Q8_0 weights must
    still be one int8 product (size-1 dims' strides do not matter)."""
    w = _weights((64, 128), seed=4)
    blocks = quant.quantize(w, "q8_0")
    cx = lm.Graph()
    xt = cx.tensor((1, "seq", 128))
    wt = cx.parameter(w.shape, dtype="q8_0").set_blocks(blocks)
    y = ((xt * 2.0).narrow(1, -1, 1) @ wt.T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    assert cx.kernel_source().count("lm_quant_matmul(out") == 1
    x = np.random.default_rng(5).normal(0, 1, (1, 6, 128)).astype(np.float32)
    xt.set(x)
    cx.execute()
    np.testing.assert_allclose(y.numpy(), emulated_int8_product(2 * x[:, -1:], blocks), rtol=1e-4, atol=1e-3)


def _cpu_product(fmt: str, rows: int, n: int, k: int, seed: int):
    """x (rows, k) @ w.T for random w (n, k) stored as ``fmt``, compiled for
    the CPU: (graph, x, w, blocks, result tensor)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.5, (n, k)).astype(np.float32)
    x = rng.normal(0, 1, (rows, k)).astype(np.float32)
    blocks = quant.quantize(w, fmt)
    cx = lm.Graph()
    y = (cx.tensor(x.shape).set(x) @ cx.parameter(w.shape, dtype=fmt).set_blocks(blocks).T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    return cx, x, w, blocks, y


_PREFILL_CASES = [(fmt, *shape) for fmt in quant.GGML_BLOCKS + quant.HALF_PACKED
                  for shape in [(16, 6, 128), (17, 13, 160), (40, 49, 96), (300, 7, 64)]]


@pytest.mark.parametrize("fmt, rows, n, k", _PREFILL_CASES)
def test_prefill_products_widen_weights(fmt, rows, n, k, monkeypatch):
    """16+ rows run the packed float32 GEMM on widened weights (Q8_0, Q4_0
    and the packed halves; the k-quants run int8 tiles, see
    test_k_quant_products): panels of 16 rows (zero-padded), blocks of 6
    weight rows (n not a multiple), k in slices of 128 (a shorter last one)
    and more than 256 rows (two passes) all give the float64 product of the
    stored values. (On a CPU with AMX, Q8_0 and Q4_0 prefill runs on bf16
    tiles unless LUMINAL_AMX=0: test_cpu_amx.py; with AVX512-VNNI and no
    AMX, on the int8 GEMM: test_cpu_int8_gemm.py.)"""
    monkeypatch.setenv("LUMINAL_AMX", "0")
    cx, x, w, blocks, y = _cpu_product(fmt, rows, n, k, seed=rows + n + k)
    cx.execute()
    want = x.astype(np.float64) @ quant.dequantize(blocks, fmt, w.shape).T.astype(np.float64)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-4)


def _assert_int8_product(x: np.ndarray, w: np.ndarray, fmt: str) -> None:
    """x @ w^T with w stored as ``fmt``, on the CPU, is the int8 emulation's."""
    blocks = quant.quantize(w, fmt)
    cx = lm.Graph()
    y = (cx.tensor(x.shape).set(x) @ cx.parameter(w.shape, dtype=fmt).set_blocks(blocks).T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    cx.execute()
    np.testing.assert_allclose(y.numpy(), emulated_int8_product(x, blocks, fmt), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("fmt", quant.GGML_BLOCKS)
@pytest.mark.parametrize("rows, n", [(4, 2), (9, 33), (12, 7), (3, 5), (1, 8), (1, 6)])
def test_quantized_products_tiles_and_edges(monkeypatch, fmt, rows, n):
    """Products run in tiles of 2 weight rows x 4 activation rows, then 4
    weight rows x 1 activation row, the rest one weight row at a time: every
    split (odd n, leftover rows, decode) gives the exact int8 emulation.
    (Q8_0 from 8 rows runs on bf16 tiles where the CPU has AMX:
    test_cpu_amx.py; LUMINAL_AMX=0 keeps the int8 kernel here.)"""
    monkeypatch.setenv("LUMINAL_AMX", "0")
    w = np.random.default_rng(rows * n).normal(0, 0.5, (n, 64)).astype(np.float32)
    x = np.random.default_rng(n).normal(0, 1, (rows, 64)).astype(np.float32)
    _assert_int8_product(x, w, fmt)


@pytest.mark.parametrize("fmt, rows", [(f, 5) for f in quant.GGML_BLOCKS + quant.K_QUANTS + quant.HALF_PACKED]
                         + [(f, 70) for f in quant.K_QUANTS])
def test_quantized_decode_row_equals_its_row_in_a_batch(monkeypatch, fmt, rows):
    """A row alone (decode: a weight row x 1 activation row; Q4_0, a
    repacked group of 8 rows x 1 where the CPU has AVX2; a k-quant row x 1)
    and the same row in a batch of 5 (a weight row x 4, then x 1; F16/BF16
    x 3, then x 1; Q4_0 the same groups; k-quants 1x4, then 1x1) run the
    same float operations in the same order: bit-equal, so a prompt's
    logits do not depend on how it was batched. K-quant prompts run the same int8 tiles at any length without
    bf16 tiles: a 70-row prompt (two blocks of rows, tiles and leftovers) too.
    (16+ rows, and Q8_0's from 4 or 8, run on bf16 tiles where the CPU has
    them: test_cpu_amx.py; LUMINAL_AMX=0 keeps the int8 kernels here.)"""
    monkeypatch.setenv("LUMINAL_AMX", "0")
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.5, (12, 256)).astype(np.float32)
    x = rng.normal(0, 1, (rows, 256)).astype(np.float32)
    cx = lm.Graph()
    xin = cx.tensor(("s", 256))
    y = (xin @ cx.parameter(w.shape, dtype=fmt).set_blocks(quant.quantize(w, fmt)).T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    product = "lm_half_matmul(out" if fmt in quant.HALF_PACKED else "lm_quant_matmul(out"
    assert cx.kernel_source().count(product) == 1
    xin.set(x)
    cx.execute()
    batch = y.numpy().copy()
    for r in range(rows):
        xin.set(x[r:r + 1])
        cx.execute()
        np.testing.assert_array_equal(y.numpy()[0], batch[r])


# ---------------------------------------------------------------- k-quants (Q2_K .. Q6_K)

K_GGUF = {f: getattr(gguf.GGMLQuantizationType, f.upper()) for f in quant.K_QUANTS}


def _q8k_activations(x: np.ndarray) -> np.ndarray:
    """Activations as the k-quant decode kernel sees them: int8 per 256
    values (llama.cpp's Q8_K), scale amax / 127, C's rounding."""
    b = x.reshape(x.shape[0], -1, 256)
    d = np.abs(b).max(-1, keepdims=True) / np.float32(127)
    inv = np.where(d == 0, np.float32(0), np.float32(1) / np.where(d == 0, np.float32(1), d))
    q = quant._round_away((b * inv).astype(np.float32))  # x * (1 / d), as the kernel computes it
    return (q * d).reshape(x.shape)


@pytest.mark.parametrize("fmt", quant.K_QUANTS)
def test_k_quant_blocks_read_as_gguf_reads_them(fmt):
    """luminal's k-quant blocks decode, by gguf's reference dequantizer, to
    what luminal.quant, the reference executor and a generated elementwise
    kernel read; and they hold the weights to within the format's error."""
    w = np.random.default_rng(5).normal(0, 1, (6, 512)).astype(np.float32)
    w[0, :256] = 0.0  # an all-zero super-block
    w[1, :32] += 40.0  # one sub-block far above the rest
    blocks = quant.quantize(w, fmt)
    assert blocks.size == quant.storage_bytes(fmt, w.size) == w.size // 256 * quant.BLOCK_BYTES[fmt]
    theirs = gguf_dequantize(blocks.reshape(6, -1), K_GGUF[fmt])
    np.testing.assert_array_equal(quant.dequantize(blocks, fmt, w.shape), theirs)
    # levels per sub-block range (IQ4_XS: its widest gap, 24 of 240, as if of 10 even steps)
    step = {"q2_k": 3, "q3_k": 7, "q4_k": 15, "q5_k": 31, "q6_k": 31, "iq4_xs": 10}[fmt]
    for r in range(6):  # within about one step of each super-block's range
        for sb in range(2):
            part = slice(256 * sb, 256 * sb + 256)
            span = np.abs(w[r, part]).max() * 2 / step
            assert np.abs(theirs[r, part] - w[r, part]).max() <= span + 1e-6, (r, sb)
    # measured 0.27, 0.14, 0.066, 0.033, 0.018; IQ4_XS 0.067
    bound = {"q2_k": 0.35, "q3_k": 0.18, "q4_k": 0.1, "q5_k": 0.05, "q6_k": 0.03, "iq4_xs": 0.1}
    assert np.abs(theirs - w).mean() < bound[fmt]
    for compile_ in (False, True):
        cx = lm.Graph()
        wt = cx.parameter(w.shape, dtype=fmt).set_blocks(blocks)
        z = (wt * 1.0).retrieve()
        if compile_:
            cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
        cx.execute()
        np.testing.assert_array_equal(z.numpy(), theirs)
    with pytest.raises(ValueError, match="multiple of 256"):
        quant.quantize(np.zeros((3, 128), np.float32), fmt)


@pytest.mark.parametrize("fmt", quant.K_QUANTS)
@pytest.mark.parametrize("rows, n, k", [(1, 8, 512), (3, 5, 256), (15, 9, 768), (1, 33, 1024),
                                         (16, 6, 256), (70, 13, 512), (131, 3, 256)])
def test_k_quant_products(monkeypatch, fmt, rows, n, k):
    """Decode and prefill alike: int8 dot products on the stored blocks
    against activations quantized per 256 (Q8_K, as llama.cpp does for
    k-quants), in tiles of 4 activation rows, the leftover rows one at a
    time, and blocks of 64 rows (70 and 131 rows cross them). 16+ rows run
    on bf16 tiles by default where the CPU has AMX: test_cpu_amx.py."""
    monkeypatch.setenv("LUMINAL_AMX", "0")
    cx, x, w, blocks, y = _cpu_product(fmt, rows, n, k, seed=rows * n + k)
    assert cx.kernel_source().count("lm_quant_matmul(out") == 1
    cx.execute()
    wd = quant.dequantize(blocks, fmt, w.shape).astype(np.float64)
    want = _q8k_activations(x).astype(np.float64) @ wd.T
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-4)
    exact = x.astype(np.float64) @ wd.T
    assert np.abs(y.numpy() - exact).max() < 0.02 * np.abs(exact).max()


def _every_format_program() -> str:
    """The C source of a program with a product on each compact format."""
    cx = lm.Graph()
    x = cx.tensor((1, 256)).set(np.ones((1, 256), np.float32))
    for fmt in quant.QUANTIZED:
        (x @ cx.parameter((8, 256), dtype=fmt).set(np.ones((8, 256), np.float32)).T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    src = cx.kernel_source()
    for fmt in quant.K_QUANTS:  # each k-quant's int8 tiles are instantiated
        assert f"#define LM_K_{quant.BLOCK_BYTES[fmt]} 1" in src
    return src


def test_k_quant_tiles_only_for_the_program_s_formats():
    """A program's C holds the int8 tiles of the k-quants it uses alone:
    each instantiation costs compile time."""
    cx, *_ = _cpu_product("q5_k", 1, 8, 256, seed=0)
    defined = re.findall(r"#define LM_K_(\d+) 1", cx.kernel_source())
    assert defined == ["176"]


def test_compact_weight_kernels_compile_unoptimized(tmp_path):
    """Intrinsics that need immediate operands get constants, not loop
    indices that only -O3's unrolling turns into constants (GCC at -O0, and
    clang at any level, reject those). The program has every format's
    products."""
    import shutil
    import subprocess

    (tmp_path / "k.c").write_text(_every_format_program())
    compilers = [c for c in (shutil.which("gcc"), shutil.which("clang")) if c]
    if not compilers:
        pytest.skip("no C compiler")
    for c in compilers:
        r = subprocess.run([c, "-O0", "-march=native", "-c", str(tmp_path / "k.c"), "-o", str(tmp_path / "k.o")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.parametrize("isa", [["-mavxvnni"], ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni"]])
def test_compact_weight_kernels_compile_for_vnni(tmp_path, isa):
    """The int8 products' VNNI branches (vpdpbusd / vpdpwssd, for CPUs this
    machine is not) compile, and the decode kernels that run them hold the
    instructions: the Q8_0 rows (lm_dot_q, inlined in lm_quant_rows4), the repacked Q4_0 groups
    (lm_q4_0x8_group) and the k-quant tiles (lm_k_tile); with AVX512-VNNI,
    the prompts' int8 GEMM (lm_i8_group_*, test_cpu_int8_gemm.py). A compile check
    only: their int32 lanes equal maddubs + madd's by construction (no
    operand pair saturates int16), which every other test checks on this
    CPU."""
    import platform
    import shutil
    import subprocess

    gcc, objdump = shutil.which("gcc"), shutil.which("objdump")
    if platform.machine() not in ("x86_64", "AMD64") or not gcc or not objdump:
        pytest.skip("needs gcc and objdump on x86-64")
    kernels = [("q8_0", "lm_quant_rows4", "vpdpbusd"), ("q4_0", "lm_q4_0x8_group", "vpdpbusd"),
               ("q4_k", "lm_k_tile", "vpdpwssd")]
    if "-mavx512vnni" in isa:
        kernels += [("q8_0", "lm_i8_group_10", "vpdpbusd"), ("q4_k", "lm_i8_group_11", "vpdpbusd"),
                    ("q6_k", "lm_i8_group_20", "vpdpbusd"), ("q2_k", "lm_i8_group_21", "vpdpbusd")]
    for fmt, name, instruction in kernels:
        cx, *_ = _cpu_product(fmt, 1, 8, 256, seed=0)  # the other formats' paths fold away
        (tmp_path / "k.c").write_text(cx.kernel_source())
        flags = ["-O2", "-mavx2", "-mfma", "-mf16c", *isa]
        r = subprocess.run([gcc, *flags, "-c", str(tmp_path / "k.c"), "-o", str(tmp_path / "k.o")],
                           capture_output=True, text=True)
        if r.returncode and ("unrecognized command-line option" in r.stderr or "no such instruction" in r.stderr):
            pytest.skip(f"this gcc or assembler has no {isa[-1]}")
        assert r.returncode == 0, r.stderr[-2000:]
        asm = subprocess.run([objdump, "-d", str(tmp_path / "k.o")], capture_output=True, text=True).stdout
        functions = re.findall(r"\n[0-9a-f]+ <([\w.]+)>:\n(.*?)(?=\n\n|\Z)", asm, re.S)
        bodies = [body for fn, body in functions if fn.split(".")[0] == name]
        assert bodies and any(instruction in body for body in bodies), (fmt, name)


def test_k_quant_rows_off_super_block_boundaries():
    """Rows of 128 q4_k values (super-blocks span two rows) are no product
    layout for the int8 kernel: the generic kernel reads them element by
    element, exactly. Blocks of the wrong size are a clear error."""
    w = np.random.default_rng(2).normal(0, 1, (4, 128)).astype(np.float32)
    x = np.random.default_rng(3).normal(0, 1, (2, 128)).astype(np.float32)
    blocks = quant.quantize(w, "q4_k")
    cx = lm.Graph()
    wt = cx.parameter(w.shape, dtype="q4_k").set_blocks(blocks)
    y = (cx.tensor(x.shape).set(x) @ wt.T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    assert "lm_quant_matmul(out" not in cx.kernel_source()
    cx.execute()
    want = x.astype(np.float64) @ quant.dequantize(blocks, "q4_k", w.shape).T
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="288 bytes"):
        wt.set_blocks(np.zeros(144, np.uint8))


# ---------------------------------------------------------------- packed halves


def _half_values(w: np.ndarray, fmt: str) -> np.ndarray:
    """The float32 values a packed-half weight holds (torch's rounding)."""
    import torch

    t = torch.from_numpy(w).to(torch.float16 if fmt == "f16_packed" else torch.bfloat16)
    return t.float().numpy()


@pytest.mark.parametrize("fmt", quant.HALF_PACKED)
def test_half_packing_matches_torch(fmt):
    import torch

    w = _weights()
    w[3, :4] = [np.inf, -np.inf, 1e-8, 70000.0]  # inf, a subnormal / underflow, f16 overflow
    w[4, :3] = np.array([0x7F800001, 0xFFC12345, 0x7FC00000], np.uint32).view(np.float32)  # NaNs
    blocks = quant.quantize(w, fmt)
    assert blocks.dtype == np.uint8 and blocks.size == 2 * w.size
    torch_dtype = torch.float16 if fmt == "f16_packed" else torch.bfloat16
    want = torch.from_numpy(w).to(torch_dtype).view(torch.int16).numpy().view(np.uint8).reshape(-1)
    nan = np.repeat(np.isnan(w).reshape(-1), 2)  # NaN bit patterns differ between converters
    np.testing.assert_array_equal(blocks[~nan], want[~nan])
    # every NaN stays NaN (a payload only in the low half must not truncate to inf)
    np.testing.assert_array_equal(quant.dequantize(blocks, fmt, w.shape), _half_values(w, fmt))


@pytest.mark.parametrize("fmt", quant.HALF_PACKED)
def test_half_parameter_in_graphs(backend, fmt):
    """Products, and elementwise reads, of packed-half weights equal the
    float32 computation on the widened weights on every backend; the CPU
    compiler runs the product on the halves (one lm_half_matmul)."""
    w = _weights((48, 100))
    x = np.random.default_rng(1).normal(0, 1, (2, 5, 100)).astype(np.float32)
    cx = lm.Graph()
    xt = cx.tensor((2, "seq", 100), name="x").set(x)
    wt = cx.parameter(w.shape, name="w", dtype=fmt).set(w)
    y = (xt @ wt.T).retrieve()
    z = (wt * 2.0).sum(-1).retrieve()
    if backend.name != "reference":
        cx.compile(*backend.make_compilers(), verify=True)
    cx.execute()
    wd = _half_values(w, fmt)
    np.testing.assert_array_equal(wt.numpy(), wd)
    np.testing.assert_allclose(z.numpy(), (wd.astype(np.float64) * 2).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(y.numpy(), x.astype(np.float64) @ wd.T.astype(np.float64), rtol=1e-4,
                               atol=2e-2)
    if backend.name == "cpu":
        assert cx.kernel_source().count("lm_half_matmul(out") == 1


@pytest.mark.parametrize("fmt", quant.HALF_PACKED)
@pytest.mark.parametrize("rows, n, k", [(1, 9, 40), (4, 8, 8), (5, 7, 37), (9, 13, 1030), (67, 6, 2056),
                                        (300, 101, 136), (3, 4, 0)])
def test_half_products_tiles_and_edges(fmt, rows, n, k):
    """Tiles of 4 weight rows against 4 activation rows (or one, decode),
    leftover weight rows one at a time, k not a multiple of 8, k in
    1024-wide slices for 5-15 rows, and the packed GEMM from 16 rows (256 at
    a time; blocks of 48 weight rows, the last one short): all match the
    float64 product of the widened weights."""
    rng = np.random.default_rng(rows * n + k)
    w = rng.normal(0, 0.5, (n, k)).astype(np.float32)
    x = rng.normal(0, 1, (rows, k)).astype(np.float32)
    cx = lm.Graph()
    wt = cx.parameter(w.shape, dtype=fmt).set_blocks(quant.quantize(w, fmt))
    y = (cx.tensor(x.shape).set(x) @ wt.T).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    cx.execute()
    if k:
        assert cx.kernel_source().count("lm_half_matmul(out") == 1
    want = x.astype(np.float64) @ _half_values(w, fmt).T.astype(np.float64)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-4 * max(1, k) ** 0.5)


def test_half_parameter_in_a_module_and_errors():
    import luminal.nn as nn

    layer = nn.Linear(64, 16, bias=False)
    w = np.random.default_rng(2).normal(0, 1, (16, 64)).astype(np.float32)
    layer.weight = nn.QuantizedParameter.from_float(w, "bf16_packed")
    assert layer.weight.blocks.size == 16 * 64 * 2
    np.testing.assert_array_equal(layer.weight.data, _half_values(w, "bf16_packed"))
    x = np.random.default_rng(0).normal(0, 1, (3, 64)).astype(np.float32)
    cx = lm.Graph()
    y = layer(cx.tensor((3, 64)).set(x)).retrieve()
    cx.compile(lm.GenericCompiler(), lm.CPUCompiler())
    cx.execute()
    np.testing.assert_allclose(y.numpy(), x @ _half_values(w, "bf16_packed").T, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="needs 64 bytes"):
        nn.QuantizedParameter(np.zeros(3, np.uint8), (4, 8), "f16_packed")
    with pytest.raises(ValueError, match="unknown format 'f16'.*f16_packed"):
        nn.QuantizedParameter(np.zeros(64, np.uint8), (4, 8), "f16")
    with pytest.raises(ValueError, match="need 10 bytes"):
        cx.parameter((5,), dtype="f16_packed").set_blocks(np.zeros(4, np.uint8))


@pytest.mark.parametrize("fmt", ["q8_0", "q4_k"])
@pytest.mark.parametrize("rows", [1, 20])
def test_activation_quantization_rounds_ties_away_from_zero(monkeypatch, fmt, rows):
    """Activations whose scaled values fall exactly halfway (every 32 values'
    largest is 127, so the scale is 1: 2.5, -0.5, ...) round away from
    zero, as llama.cpp's reference quantizer does (not to even), in decode's
    kernels (1 row; the k-quants' per 256 values, the same scale here) and
    in the prompts' int8 GEMM (20 rows, where the CPU has it)."""
    from helpers import int8_gemm_cpu

    if rows > 1 and not int8_gemm_cpu():
        pytest.skip("20 rows run the int8 GEMM only with AVX512-VNNI and no AMX")
    monkeypatch.delenv("LUMINAL_AMX", raising=False)
    k, n = 256, 24
    x = np.tile((np.arange(k) % 16 - 7.5).astype(np.float32), (rows, 1))  # every value a tie
    x[:, ::32] = 127.0
    w = np.random.default_rng(4).normal(0, 1, (n, k)).astype(np.float32)
    _assert_int8_product(x, w, fmt)
