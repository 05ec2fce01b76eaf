"""Weight storage formats in numpy. GGML's block quantization: Q8_0 and Q4_0
(32 values per block, an fp16 scale each), bit-exact with llama.cpp's
reference quantizers, and the k-quants Q2_K, Q3_K, Q4_K, Q5_K and Q6_K
(super-blocks of 256 values with 4- to 8-bit sub-block scales: 2.6, 3.4,
4.5, 5.5 and 6.6 bits a weight, the formats of llama.cpp's Q2_K, Q3_K_*,
Q4_K_* and Q5_K_* files) and IQ4_XS (4.25 bits: 16 fixed non-uniform levels
and a 6-bit scale per 32 values), read exactly as llama.cpp
reads them (this module's quantizer for them is simpler than llama.cpp's
search, so its blocks differ); and packed halves, "f16_packed" / "bf16_packed" (one
IEEE half / bfloat16 per 2 bytes: an F16 / BF16 checkpoint's weights at their
stored size, where the dtypes "f16" / "bf16" hold float32 rounded). A graph
input of one of these dtypes stores the bytes; the CPU compiler runs its
matrix products on them directly: the k-quants in int8 at every row count
(``lm_k_matmul``, activations quantized per 256 like llama.cpp's Q8_K);
Q8_0/Q4_0 decode-sized ones (under 16 rows) in int8 (``lm_quant_matmul``;
on AVX2 CPUs, with the FMA and F16C that all of them have, Q4_0 runs on a
copy repacked once into groups of 8 rows, one row per vector lane, which
doubles a Q4_0 weight's memory; ``LUMINAL_REPACK=0`` in the environment
turns it off) and halves on widened values (``lm_half_matmul``); larger
Q8_0/Q4_0/half products widen weight blocks to float32 in cache for a packed
GEMM (``lm_wide_gemm``). On CPUs with AMX or AVX512-BF16 (Intel Sapphire
Rapids and later, AMD Zen 4 and later), products of 16+ rows with
Q8_0/Q4_0/k-quant weights (Q8_0: from 8 rows on AMX, 4 elsewhere) run on
bf16 tiles instead (activations rounded to bf16, sums in float32;
``LUMINAL_AMX=0`` turns that off, ``=1`` adds the halves). On CPUs with
AVX512-VNNI and no AMX (AMD Zen 4 and later, Intel Ice Lake and later),
Q8_0 prompts from 4 rows, Q4_0 from 8 and the k-quants' from 12 run an int8
GEMM instead (``lm_int8_gemm``: activations quantized per 32 as Q8_0 decode
quantizes them; ``LUMINAL_AMX=1`` keeps the tiles, ``=0`` the exact product
or the k-quants' int8 tiles).

>>> blocks = quantize(np.random.randn(64, 128).astype(np.float32), "q8_0")
>>> w = cx.parameter((64, 128), dtype="q8_0").set_blocks(blocks)
"""

from __future__ import annotations

import numpy as np

from luminal.dtype import round_bf16

BLOCK = 32  # values per Q8_0 / Q4_0 block
SUPER_BLOCK = 256  # values per k-quant super-block
BLOCK_VALUES = {"q8_0": 32, "q4_0": 32, "q2_k": 256, "q3_k": 256, "q4_k": 256, "q5_k": 256, "q6_k": 256,
                "iq4_xs": 256, "f16_packed": 1, "bf16_packed": 1}
BLOCK_BYTES = {"q8_0": 34, "q4_0": 18, "q2_k": 84, "q3_k": 110, "q4_k": 144, "q5_k": 176, "q6_k": 210,
               "iq4_xs": 136, "f16_packed": 2, "bf16_packed": 2}
QUANTIZED = tuple(BLOCK_BYTES)  # every compact storage dtype
GGML_BLOCKS = ("q8_0", "q4_0")  # 32-value blocks (int8 products when decoding)
# super-blocks of 256 values (int8 products when decoding): the k-quants and IQ4_XS
K_QUANTS = ("q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_xs")
HALF_PACKED = ("f16_packed", "bf16_packed")  # 2-byte floats (float32 products)


def storage_bytes(fmt: str, numel: int) -> int:
    """Bytes that ``numel`` values take in ``fmt``; ValueError when ``numel``
    is not a whole number of blocks."""
    per = BLOCK_VALUES[fmt]
    if numel % per:
        raise ValueError(f"[{fmt}] needs a multiple of {per} values, got {numel}")
    return numel // per * BLOCK_BYTES[fmt]


def _round_away(x: np.ndarray) -> np.ndarray:
    """C's roundf: halves away from zero (numpy's round is half-to-even)."""
    out: np.ndarray = np.trunc(x + np.copysign(np.float32(0.5), x))
    return out


def quantize(x: np.ndarray, fmt: str) -> np.ndarray:
    """``x`` (any shape, row-major; for Q8_0/Q4_0 a multiple of 32 values,
    for the k-quants of 256) as the ``fmt`` blocks, a flat uint8 array."""
    if fmt not in BLOCK_BYTES:
        raise ValueError(f"unknown quantized format {fmt!r}: expected one of {', '.join(QUANTIZED)}")
    flat = np.asarray(x, dtype=np.float32).reshape(-1)
    if fmt in K_QUANTS:
        if flat.size % SUPER_BLOCK:
            raise ValueError(f"[{fmt}] needs a multiple of {SUPER_BLOCK} values, got {flat.size}")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            rows = flat.reshape(-1, SUPER_BLOCK)
            if fmt in ("q4_k", "q5_k"):
                return _quantize_q4_k(rows, fifth_bit=fmt == "q5_k")
            return {"q2_k": _quantize_q2_k, "q3_k": _quantize_q3_k, "q6_k": _quantize_q6_k,
                    "iq4_xs": _quantize_iq4_xs}[fmt](rows)
    if fmt == "f16_packed":  # beyond f16's range is inf, as torch's .half()
        with np.errstate(over="ignore"):
            return flat.astype("<f2").view(np.uint8)
    if fmt == "bf16_packed":  # rounded to nearest even, then the high 16 bits
        halves = (round_bf16(flat).view("<u4") >> np.uint32(16)).astype("<u2")
        # NaN becomes the canonical quiet NaN, as in torch (a payload only in
        # the low half would otherwise truncate to inf)
        return np.where(np.isnan(flat), np.uint16(0x7FC0), halves).astype("<u2").view(np.uint8)
    if flat.size % BLOCK:
        raise ValueError(f"[{fmt}] needs a multiple of {BLOCK} values, got {flat.size}")
    blocks = flat.reshape(-1, BLOCK)
    n = blocks.shape[0]
    out = np.zeros((n, BLOCK_BYTES[fmt]), np.uint8)
    with np.errstate(divide="ignore", invalid="ignore"):
        if fmt == "q8_0":
            d = np.abs(blocks).max(axis=1) / np.float32(127)
            inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
            q = _round_away(blocks * inv[:, None]).astype(np.int8)
            out[:, 2:] = q.view(np.uint8)
        else:
            # The signed value of largest magnitude maps to -8.
            idx = np.abs(blocks).argmax(axis=1)
            peak = blocks[np.arange(n), idx]
            d = peak / np.float32(-8)
            inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
            q = np.minimum(15, np.trunc(blocks * inv[:, None] + np.float32(8.5))).astype(np.uint8)
            out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    out[:, :2] = d.astype(np.float16).reshape(-1, 1).view(np.uint8)
    return out.reshape(-1)


def _f16(x: np.ndarray) -> np.ndarray:
    """float32 rounded through fp16 (a stored scale)."""
    out: np.ndarray = x.astype(np.float16).astype(np.float32)
    return out


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.where(b > 0, a / np.where(b > 0, b, np.float32(1)), np.float32(0)).astype(np.float32)
    return out


def _quantize_q4_k(x: np.ndarray, fifth_bit: bool = False) -> np.ndarray:
    """Q4_K super-blocks of ``x`` (n, 256): per 32-value sub-block, value =
    scale * q - min with q in 0..15 (the range's low end, capped at 0, as the
    min); scales and mins as 6-bit multiples of the fp16 d and dmin. With
    ``fifth_bit``, Q5_K's: q in 0..31, its fifth bits in 32 bytes before the
    nibbles (bit j of byte l for value 32 j + l)."""
    n = x.shape[0]
    top = 31 if fifth_bit else 15
    sub = x.reshape(n, 8, 32)
    lo = np.minimum(sub.min(axis=2), np.float32(0))
    hi = np.maximum(sub.max(axis=2), np.float32(0))
    scale, mins = (hi - lo) / np.float32(top), -lo
    d, dmin = _f16(scale.max(axis=1) / np.float32(63)), _f16(mins.max(axis=1) / np.float32(63))
    sc = np.clip(_round_away(_safe_div(scale, d[:, None])), 0, 63).astype(np.uint8)
    mn = np.clip(_round_away(_safe_div(mins, dmin[:, None])), 0, 63).astype(np.uint8)
    step = d[:, None] * sc.astype(np.float32)
    q = np.clip(_round_away(_safe_div(sub + (dmin[:, None] * mn.astype(np.float32))[:, :, None],
                                      step[:, :, None])), 0, top).astype(np.uint8)
    out = np.zeros((n, 176 if fifth_bit else 144), np.uint8)
    out[:, 0:2] = d.astype("<f2").reshape(n, 1).view(np.uint8)
    out[:, 2:4] = dmin.astype("<f2").reshape(n, 1).view(np.uint8)
    # sub-blocks 0..3 in the low 6 bits of bytes 0..3 (scales) and 4..7
    # (mins); 4..7 split: low 4 bits in bytes 8..11, top 2 above the first's
    out[:, 4:8] = (sc[:, :4] & 63) | ((sc[:, 4:] >> 4) << 6)
    out[:, 8:12] = (mn[:, :4] & 63) | ((mn[:, 4:] >> 4) << 6)
    out[:, 12:16] = (sc[:, 4:] & 15) | ((mn[:, 4:] & 15) << 4)
    if fifth_bit:
        weights = (np.uint8(1) << np.arange(8, dtype=np.uint8))[None, :, None]
        out[:, 16:48] = ((q >> np.uint8(4)) * weights).sum(axis=1, dtype=np.uint8)
        q = q & np.uint8(15)
    pairs = q.reshape(n, 4, 2, 32)  # 32 bytes per pair: low nibbles the even sub-block
    out[:, -128:] = (pairs[:, :, 0] | (pairs[:, :, 1] << 4)).reshape(n, 128)
    return out.reshape(-1)


def _two_bit_runs(q: np.ndarray) -> np.ndarray:
    """Q2_K's / Q3_K's 64 bytes from 256 values 0..3 a row: value
    128 h + 32 j + l in bits 2j, 2j + 1 of byte 32 h + l."""
    runs = q.reshape(q.shape[0], 2, 4, 32).astype(np.uint8)
    packed: np.ndarray = runs[:, :, 0] | (runs[:, :, 1] << 2) | (runs[:, :, 2] << 4) | (runs[:, :, 3] << 6)
    return packed.reshape(q.shape[0], 64)


def _quantize_q2_k(x: np.ndarray) -> np.ndarray:
    """Q2_K super-blocks of ``x`` (n, 256): per 16-value sub-block, value =
    scale * q - min with q in 0..3 (the range's low end, capped at 0, as the
    min); scales and mins as 4-bit multiples of the fp16 d and dmin."""
    n = x.shape[0]
    sub = x.reshape(n, 16, 16)
    lo = np.minimum(sub.min(axis=2), np.float32(0))
    hi = np.maximum(sub.max(axis=2), np.float32(0))
    scale, mins = (hi - lo) / np.float32(3), -lo
    d, dmin = _f16(scale.max(axis=1) / np.float32(15)), _f16(mins.max(axis=1) / np.float32(15))
    sc = np.clip(_round_away(_safe_div(scale, d[:, None])), 0, 15).astype(np.uint8)
    mn = np.clip(_round_away(_safe_div(mins, dmin[:, None])), 0, 15).astype(np.uint8)
    step = d[:, None] * sc.astype(np.float32)
    q = np.clip(_round_away(_safe_div(sub + (dmin[:, None] * mn.astype(np.float32))[:, :, None],
                                      step[:, :, None])), 0, 3).astype(np.uint8)
    out = np.zeros((n, 84), np.uint8)
    out[:, :16] = sc | (mn << 4)
    out[:, 16:80] = _two_bit_runs(q.reshape(n, 256))
    out[:, 80:82] = d.astype("<f2").reshape(n, 1).view(np.uint8)
    out[:, 82:84] = dmin.astype("<f2").reshape(n, 1).view(np.uint8)
    return out.reshape(-1)


def _signed_scales(sub: np.ndarray, peak: float) -> tuple[np.ndarray, np.ndarray]:
    """Per sub-block (``sub`` is (n, blocks, values)), the scale that maps its
    signed value of largest magnitude to ``peak``, as a 6-bit signed multiple
    (-32..31) of a per-row fp16 d: (d (n,), the multiples (n, blocks) int16;
    all zero where a row is)."""
    idx = np.abs(sub).argmax(axis=2)
    scale = np.take_along_axis(sub, idx[:, :, None], axis=2)[:, :, 0] / np.float32(peak)
    d = _f16(np.abs(scale).max(axis=1) / np.float32(31))
    safe_d = np.where(d > 0, d, np.float32(1))[:, None]
    sc = np.where(d[:, None] > 0, np.clip(_round_away(scale / safe_d), -32, 31), 0).astype(np.int16)
    return d, sc


def _quantize_q3_k(x: np.ndarray) -> np.ndarray:
    """Q3_K super-blocks of ``x`` (n, 256): per 16-value sub-block, value =
    scale * q with q in -4..3 (the signed value of largest magnitude maps to
    -4, as in Q4_0); scales as 6-bit multiples of the fp16 d, stored + 32."""
    n = x.shape[0]
    sub = x.reshape(n, 16, 16)
    d, sc = _signed_scales(sub, -4)
    step = d[:, None] * sc.astype(np.float32)
    safe_step = np.where(step != 0, step, np.float32(1))[:, :, None]
    q = np.where(step[:, :, None] != 0, np.clip(_round_away(sub / safe_step), -4, 3), 0).astype(np.int8) + 4
    q = q.reshape(n, 256).astype(np.uint8)  # 0..7: bit 2 goes to hmask (set: no -4)
    out = np.zeros((n, 110), np.uint8)
    weights = (np.uint8(1) << np.arange(8, dtype=np.uint8))[None, :, None]
    out[:, :32] = ((q.reshape(n, 8, 32) >> np.uint8(2)) * weights).sum(axis=1, dtype=np.uint8)
    out[:, 32:96] = _two_bit_runs(q & np.uint8(3))
    code = (sc + 32).astype(np.uint8)  # 0..63
    out[:, 96:104] = (code[:, :8] & 15) | ((code[:, 8:] & 15) << 4)
    top = (code >> np.uint8(4)).reshape(n, 4, 4)  # scale 4 s + b: bits 2 s of byte 8 + b
    out[:, 104:108] = top[:, 0] | (top[:, 1] << 2) | (top[:, 2] << 4) | (top[:, 3] << 6)
    out[:, 108:110] = d.astype("<f2").reshape(n, 1).view(np.uint8)
    return out.reshape(-1)


def _quantize_iq4_xs(x: np.ndarray) -> np.ndarray:
    """IQ4_XS super-blocks of ``x`` (n, 256): per 32-value sub-block, value =
    scale * level, the level nearest of IQ4_NL's 16 (the signed value of
    largest magnitude maps to -127); scales as 6-bit multiples of the fp16 d,
    stored + 32. In chunks: the nearest-level search holds 16 floats a value."""
    chunk = 4096  # super-blocks: 64 MB of search temporaries
    if x.shape[0] > chunk:
        return np.concatenate([_quantize_iq4_xs(x[i:i + chunk]) for i in range(0, x.shape[0], chunk)])
    from luminal.io.gguf import IQ4_NL_VALUES

    n = x.shape[0]
    sub = x.reshape(n, 8, 32)
    d, sc = _signed_scales(sub, -127)
    step = (d[:, None] * sc.astype(np.float32))[:, :, None, None]
    levels = IQ4_NL_VALUES.astype(np.float32)
    nib = np.abs(sub[:, :, :, None] - step * levels).argmin(axis=3).astype(np.uint8)  # (n, 8, 32)
    out = np.zeros((n, 136), np.uint8)
    out[:, 0:2] = d.astype("<f2").reshape(n, 1).view(np.uint8)
    code = (sc + 32).astype(np.uint16)  # 0..63
    out[:, 2:4] = (((code >> 4) & 3) << (2 * np.arange(8, dtype=np.uint16))).sum(axis=1, dtype=np.uint16).astype(
        "<u2").reshape(n, 1).view(np.uint8)
    low = (code & 15).astype(np.uint8).reshape(n, 4, 2)
    out[:, 4:8] = low[:, :, 0] | (low[:, :, 1] << 4)
    out[:, 8:] = (nib[:, :, :16] | (nib[:, :, 16:] << 4)).reshape(n, 128)
    return out.reshape(-1)


def _quantize_q6_k(x: np.ndarray) -> np.ndarray:
    """Q6_K super-blocks of ``x`` (n, 256): per 16-value sub-block, value =
    scale * (q - 32) with q in 1..63; scales as int8 multiples of the fp16 d."""
    n = x.shape[0]
    sub = x.reshape(n, 16, 16)
    scale = np.abs(sub).max(axis=2) / np.float32(31)
    d = _f16(scale.max(axis=1) / np.float32(127))
    sc = np.clip(_round_away(_safe_div(scale, d[:, None])), 0, 127).astype(np.int8)
    step = d[:, None] * sc.astype(np.float32)
    q = (np.clip(_round_away(_safe_div(sub, step[:, :, None])), -32, 31) + 32).astype(np.uint8)
    q = q.reshape(n, 2, 4, 32)  # halves of 128; in a half, 4 runs of 32
    out = np.zeros((n, 210), np.uint8)
    low = q & np.uint8(15)
    out[:, :128] = np.concatenate([low[:, :, 0] | (low[:, :, 2] << 4),
                                   low[:, :, 1] | (low[:, :, 3] << 4)], axis=2).reshape(n, 128)
    top = q >> np.uint8(4)
    out[:, 128:192] = (top[:, :, 0] | (top[:, :, 1] << 2) | (top[:, :, 2] << 4) | (top[:, :, 3] << 6)).reshape(n, 64)
    out[:, 192:208] = sc.view(np.uint8)
    out[:, 208:210] = d.astype("<f2").reshape(n, 1).view(np.uint8)
    return out.reshape(-1)


def dequantize(blocks: np.ndarray, fmt: str, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 values of ``fmt`` blocks, in ``shape``."""
    if fmt in K_QUANTS:
        from luminal.io import gguf

        return gguf.dequantize_blocks(fmt.upper(), np.asarray(blocks, np.uint8).reshape(-1)).reshape(shape)
    if fmt == "f16_packed":
        return np.asarray(blocks, np.uint8).reshape(-1).view("<f2").astype(np.float32).reshape(shape)
    if fmt == "bf16_packed":
        halves = np.asarray(blocks, np.uint8).reshape(-1).view("<u2").astype(np.uint32)
        return (halves << np.uint32(16)).view(np.float32).reshape(shape)
    raw = np.asarray(blocks, np.uint8).reshape(-1, BLOCK_BYTES[fmt])
    d = raw[:, :2].copy().view(np.float16).astype(np.float32)
    if fmt == "q8_0":
        vals = raw[:, 2:].view(np.int8).astype(np.float32) * d
    else:
        q = raw[:, 2:]
        vals = np.concatenate([q & 0x0F, q >> 4], axis=1).astype(np.float32) - 8.0
        vals = vals * d
    return vals.reshape(shape)


def storage(blocks: np.ndarray, fmt: str, numel: int) -> np.ndarray:
    """Raw blocks as the float32 storage a graph input holds (bytes padded to 4)."""
    raw = np.ascontiguousarray(blocks, np.uint8).reshape(-1)
    want = storage_bytes(fmt, numel)
    if raw.size != want:
        raise ValueError(f"[{fmt}] {numel} values need {want} bytes of blocks, got {raw.size}")
    padded = np.zeros((raw.size + 3) // 4 * 4, np.uint8)
    padded[: raw.size] = raw
    return padded.view(np.float32)
