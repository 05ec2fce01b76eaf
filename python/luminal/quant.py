"""GGML block quantization in numpy: Q8_0 and Q4_0 (32 values per block, an
fp16 scale each), bit-exact with llama.cpp's reference quantizers. A graph
input of dtype "q8_0"/"q4_0" stores these blocks; the CPU compiler runs its
matrix products in int8 on them (``lm_quant_matmul``).

>>> blocks = quantize(np.random.randn(64, 128).astype(np.float32), "q8_0")
>>> w = cx.parameter((64, 128), dtype="q8_0").set_blocks(blocks)
"""

from __future__ import annotations

import numpy as np

BLOCK = 32
BLOCK_BYTES = {"q8_0": 34, "q4_0": 18}
QUANTIZED = tuple(BLOCK_BYTES)


def _round_away(x: np.ndarray) -> np.ndarray:
    """C's roundf: halves away from zero (numpy's round is half-to-even)."""
    out: np.ndarray = np.trunc(x + np.copysign(np.float32(0.5), x))
    return out


def quantize(x: np.ndarray, fmt: str) -> np.ndarray:
    """``x`` (any shape, element count a multiple of 32, row-major) as the
    ``fmt`` blocks, a flat uint8 array."""
    if fmt not in BLOCK_BYTES:
        raise ValueError(f"unknown quantized format {fmt!r}: expected one of {', '.join(QUANTIZED)}")
    flat = np.asarray(x, dtype=np.float32).reshape(-1)
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
    want = numel // BLOCK * BLOCK_BYTES[fmt]
    if numel % BLOCK or raw.size != want:
        raise ValueError(f"[{fmt}] {numel} values need {want} bytes of blocks, got {raw.size}")
    padded = np.zeros((raw.size + 3) // 4 * 4, np.uint8)
    padded[: raw.size] = raw
    return padded.view(np.float32)
