"""Weight storage formats in numpy. GGML's block quantization, Q8_0 and Q4_0
(32 values per block, an fp16 scale each), bit-exact with llama.cpp's
reference quantizers; and packed halves, "f16_packed" / "bf16_packed" (one
IEEE half / bfloat16 per 2 bytes: an F16 / BF16 checkpoint's weights at their
stored size, where the dtypes "f16" / "bf16" hold float32 rounded). A graph
input of one of these dtypes stores the bytes; the CPU compiler runs its
matrix products on them directly: decode-sized ones (under 16 rows) in int8
for Q8_0/Q4_0 (``lm_quant_matmul``, like llama.cpp) or on widened halves
(``lm_half_matmul``); larger ones widen weight blocks to float32 in cache
for a packed GEMM (``lm_wide_gemm``).

>>> blocks = quantize(np.random.randn(64, 128).astype(np.float32), "q8_0")
>>> w = cx.parameter((64, 128), dtype="q8_0").set_blocks(blocks)
"""

from __future__ import annotations

import numpy as np

from luminal.dtype import round_bf16

BLOCK = 32  # values per Q8_0 / Q4_0 block
BLOCK_VALUES = {"q8_0": 32, "q4_0": 32, "f16_packed": 1, "bf16_packed": 1}
BLOCK_BYTES = {"q8_0": 34, "q4_0": 18, "f16_packed": 2, "bf16_packed": 2}
QUANTIZED = tuple(BLOCK_BYTES)  # every compact storage dtype
GGML_BLOCKS = ("q8_0", "q4_0")  # block-quantized (int8 products when decoding)
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
    """``x`` (any shape, row-major; for Q8_0/Q4_0 a multiple of 32 values)
    as the ``fmt`` blocks, a flat uint8 array."""
    if fmt not in BLOCK_BYTES:
        raise ValueError(f"unknown quantized format {fmt!r}: expected one of {', '.join(QUANTIZED)}")
    flat = np.asarray(x, dtype=np.float32).reshape(-1)
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


def dequantize(blocks: np.ndarray, fmt: str, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 values of ``fmt`` blocks, in ``shape``."""
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
