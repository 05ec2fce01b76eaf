"""Storage dtypes. Compute is float32; a dtype says how data is stored and so
how it is rounded on the way in, and (for i32) how it comes back out.
"f16"/"bf16" are float32 storage rounded to half precision; "q8_0", "q4_0",
the k-quants "q2_k" to "q6_k", "iq4_xs", "f16_packed" and "bf16_packed" store compact bytes (see
``luminal.quant``)."""

from __future__ import annotations

from typing import Any

import numpy as np

DTYPES = ("f32", "f16", "bf16", "i32", "bool", "q8_0", "q4_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_xs",
          "f16_packed", "bf16_packed")
_I32_EXACT = 1 << 24  # integers beyond this are not exact in float32


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    return dtype


def _as_numpy(data: Any) -> np.ndarray:
    # torch tensors without importing torch: detach, move to CPU, widen bf16.
    if type(data).__module__.startswith("torch"):
        data = data.detach().cpu()
        if str(data.dtype) == "torch.bfloat16":
            data = data.float()
        data = data.numpy()
    return np.asarray(data)


def round_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 precision (nearest even), kept as float32."""
    bits = np.asarray(x, dtype=np.float32, order="C").view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    out = (rounded & np.uint32(0xFFFF0000)).view(np.float32)
    return np.where(np.isnan(x), x, out).astype(np.float32)


def to_storage(data: Any, dtype: str) -> np.ndarray:
    """``data`` as a C-contiguous float32 array holding ``dtype``-rounded values."""
    arr = _as_numpy(data)
    if dtype == "i32":
        if arr.dtype.kind == "f" and arr.size and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise ValueError("[set] an i32 input needs integer values")
        if arr.size and np.max(np.abs(arr.astype(np.int64))) >= _I32_EXACT:
            raise ValueError(f"[set] i32 values must be below 2**24 in magnitude to stay exact")
        return np.asarray(arr, dtype=np.float32, order="C")
    if dtype == "bool":
        return np.asarray(arr != 0, dtype=np.float32, order="C")  # NaN is true, as torch
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"[set] expected numbers, got an array of {arr.dtype}")
    out = np.asarray(arr, dtype=np.float32, order="C")  # no copy if already so
    if dtype == "f16":
        out = out.astype(np.float16).astype(np.float32)
    elif dtype == "bf16":
        out = round_bf16(out)
    return out


def from_storage(arr: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "i32":
        with np.errstate(invalid="ignore"):  # NaN/inf become INT_MIN, as torch's .int()
            ints: np.ndarray = np.rint(arr).astype(np.int32)
        return ints
    if dtype == "bool":
        flags: np.ndarray = arr != 0
        return flags
    return arr
