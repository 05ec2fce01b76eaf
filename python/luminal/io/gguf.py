"""A bounds-checked reader for GGUF files (llama.cpp's model format), v2 and v3.

Pure Python + numpy. The file is memory-mapped read-only; :meth:`GGUFFile.raw`
and :meth:`GGUFFile.quant_blocks` are zero-copy views of it, and
:meth:`GGUFFile.dequantize` turns F32, F16, BF16, F64, Q8_0, Q4_0, Q5_0, IQ4_NL,
the k-quants Q2_K, Q3_K, Q4_K, Q5_K and Q6_K and IQ4_XS into float32 arrays
with vectorized numpy (no Python loop over blocks); :func:`to_q8_0` rewrites
Q4_0, Q5_0 and IQ4_NL blocks as Q8_0 ones, exactly.

Every read is checked against the bytes left in the file: a truncated, corrupt
or hostile file raises :class:`~luminal.io.errors.CheckpointError` whose
message starts with the file's path and says what was being read. Counts and
lengths read from the file (tensor count, key/value count, string and array
lengths) are compared with the bytes that remain *before* anything
proportional to them is allocated.

Metadata values become Python values:

* integer types -> ``int``, FLOAT32/FLOAT64 -> ``float``, BOOL -> ``bool``;
* STRING -> ``str`` (UTF-8; bytes that are not valid UTF-8 are kept with the
  ``surrogateescape`` error handler, so ``s.encode("utf-8", "surrogateescape")``
  gives the stored bytes back);
* ARRAY of a numeric or bool type -> a 1-D numpy array (a copy, native byte
  order: ``uint8`` ... ``float64``, ``bool``);
* ARRAY of STRING -> ``list[str]``; ARRAY of ARRAY -> ``list`` of the above.

Example::

    >>> from luminal.io.gguf import GGUFFile
    >>> with GGUFFile("model.gguf") as f:                    # doctest: +SKIP
    ...     print(f.architecture, f.metadata["general.name"])
    ...     info = f.tensor_info("token_embd.weight")
    ...     print(info.shape, info.ggml_type)                 # numpy order
    ...     w = f.dequantize("token_embd.weight")             # float32
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Dict, Final, List, NamedTuple, Optional, Tuple, Type, Union

import numpy as np
import numpy.typing as npt

from .errors import CheckpointError

__all__ = ["GGUFFile", "GGUFTensorInfo", "GGML_TYPES", "GGMLType"]

_PathLike = Union[str, "os.PathLike[str]"]

GGUF_MAGIC: Final = b"GGUF"
SUPPORTED_VERSIONS: Final = (2, 3)
DEFAULT_ALIGNMENT: Final = 32
MAX_DIMS: Final = 4
# Arrays of arrays deeper than this are refused (no recursion bombs).
MAX_ARRAY_NESTING: Final = 32
QK_K: Final = 256

# Smallest possible encodings, used to refuse lying counts before looping:
# a key/value is key length (8) + type (4) + at least a 1-byte value; a tensor
# info is name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8).
_MIN_KV_BYTES: Final = 8 + 4 + 1
_MIN_TENSOR_INFO_BYTES: Final = 8 + 4 + 8 + 4 + 8


class GGMLType(NamedTuple):
    """A ggml tensor type: its name, elements per block and bytes per block."""

    name: str
    block_size: int
    type_size: int


# ggml type id -> layout. Sizes follow ggml's type traits. Every type listed
# here can be opened (its byte size is known); only some can be dequantized.
GGML_TYPES: Final[Dict[int, GGMLType]] = {
    0: GGMLType("F32", 1, 4),
    1: GGMLType("F16", 1, 2),
    2: GGMLType("Q4_0", 32, 2 + 16),
    3: GGMLType("Q4_1", 32, 2 + 2 + 16),
    6: GGMLType("Q5_0", 32, 2 + 4 + 16),
    7: GGMLType("Q5_1", 32, 2 + 2 + 4 + 16),
    8: GGMLType("Q8_0", 32, 2 + 32),
    9: GGMLType("Q8_1", 32, 4 + 4 + 32),
    10: GGMLType("Q2_K", QK_K, 2 + 2 + QK_K // 16 + QK_K // 4),
    11: GGMLType("Q3_K", QK_K, 2 + QK_K // 4 + QK_K // 8 + 12),
    12: GGMLType("Q4_K", QK_K, 2 + 2 + QK_K // 2 + 12),
    13: GGMLType("Q5_K", QK_K, 2 + 2 + QK_K // 2 + QK_K // 8 + 12),
    14: GGMLType("Q6_K", QK_K, 2 + QK_K // 2 + QK_K // 4 + QK_K // 16),
    15: GGMLType("Q8_K", QK_K, 4 + QK_K + QK_K // 8),
    16: GGMLType("IQ2_XXS", QK_K, 2 + QK_K // 4),
    17: GGMLType("IQ2_XS", QK_K, 2 + QK_K // 4 + QK_K // 32),
    18: GGMLType("IQ3_XXS", QK_K, 2 + QK_K // 4 + QK_K // 8),
    19: GGMLType("IQ1_S", QK_K, 2 + QK_K // 8 + QK_K // 16),
    20: GGMLType("IQ4_NL", 32, 2 + 16),
    21: GGMLType("IQ3_S", QK_K, 2 + QK_K // 4 + QK_K // 8 + QK_K // 32 + 4),
    22: GGMLType("IQ2_S", QK_K, 2 + QK_K // 4 + QK_K // 16),
    23: GGMLType("IQ4_XS", QK_K, 2 + 2 + QK_K // 2 + QK_K // 64),
    24: GGMLType("I8", 1, 1),
    25: GGMLType("I16", 1, 2),
    26: GGMLType("I32", 1, 4),
    27: GGMLType("I64", 1, 8),
    28: GGMLType("F64", 1, 8),
    29: GGMLType("IQ1_M", QK_K, QK_K // 8 + QK_K // 16 + QK_K // 32),
    30: GGMLType("BF16", 1, 2),
    34: GGMLType("TQ1_0", QK_K, 2 + 4 * 13),
    35: GGMLType("TQ2_0", QK_K, 2 + 64),
    39: GGMLType("MXFP4", 32, 1 + 16),
}

# GGUF metadata value types.
_T_UINT8, _T_INT8, _T_UINT16, _T_INT16, _T_UINT32, _T_INT32 = 0, 1, 2, 3, 4, 5
_T_FLOAT32, _T_BOOL, _T_STRING, _T_ARRAY = 6, 7, 8, 9
_T_UINT64, _T_INT64, _T_FLOAT64 = 10, 11, 12

_VALUE_TYPE_NAMES: Final[Dict[int, str]] = {
    0: "UINT8", 1: "INT8", 2: "UINT16", 3: "INT16", 4: "UINT32", 5: "INT32",
    6: "FLOAT32", 7: "BOOL", 8: "STRING", 9: "ARRAY", 10: "UINT64",
    11: "INT64", 12: "FLOAT64",
}  # fmt: skip

# Fixed-size value types: struct format and numpy dtype (little-endian).
_SCALAR_FORMATS: Final[Dict[int, Tuple[struct.Struct, np.dtype[Any]]]] = {
    _T_UINT8: (struct.Struct("<B"), np.dtype("<u1")),
    _T_INT8: (struct.Struct("<b"), np.dtype("<i1")),
    _T_UINT16: (struct.Struct("<H"), np.dtype("<u2")),
    _T_INT16: (struct.Struct("<h"), np.dtype("<i2")),
    _T_UINT32: (struct.Struct("<I"), np.dtype("<u4")),
    _T_INT32: (struct.Struct("<i"), np.dtype("<i4")),
    _T_FLOAT32: (struct.Struct("<f"), np.dtype("<f4")),
    _T_BOOL: (struct.Struct("<B"), np.dtype("<u1")),
    _T_UINT64: (struct.Struct("<Q"), np.dtype("<u8")),
    _T_INT64: (struct.Struct("<q"), np.dtype("<i8")),
    _T_FLOAT64: (struct.Struct("<d"), np.dtype("<f8")),
}
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")

# Zero-copy block layouts (numpy structured dtypes, packed, little-endian).
_Q8_0_BLOCK: Final = np.dtype([("d", "<f2"), ("qs", "i1", (32,))])
_Q4_0_BLOCK: Final = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_Q4_K_BLOCK: Final = np.dtype(
    [("d", "<f2"), ("dmin", "<f2"), ("scales", "u1", (12,)), ("qs", "u1", (QK_K // 2,))]
)
_Q2_K_BLOCK: Final = np.dtype(
    [("scales", "u1", (QK_K // 16,)), ("qs", "u1", (QK_K // 4,)), ("d", "<f2"), ("dmin", "<f2")]
)
_Q3_K_BLOCK: Final = np.dtype(
    [("hmask", "u1", (QK_K // 8,)), ("qs", "u1", (QK_K // 4,)), ("scales", "u1", (12,)), ("d", "<f2")]
)
_IQ4_XS_BLOCK: Final = np.dtype(
    [("d", "<f2"), ("scales_h", "<u2"), ("scales_l", "u1", (QK_K // 64,)), ("qs", "u1", (QK_K // 2,))]
)
_IQ4_NL_BLOCK: Final = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_Q5_0_BLOCK: Final = np.dtype([("d", "<f2"), ("qh", "<u4"), ("qs", "u1", (16,))])
IQ4_NL_VALUES: Final = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.int8)
"""The 16 levels of IQ4_NL and IQ4_XS (llama.cpp's kvalues_iq4nl): a nibble picks one."""
_Q5_K_BLOCK: Final = np.dtype(
    [("d", "<f2"), ("dmin", "<f2"), ("scales", "u1", (12,)), ("qh", "u1", (QK_K // 8,)), ("qs", "u1", (QK_K // 2,))]
)
_Q6_K_BLOCK: Final = np.dtype(
    [("ql", "u1", (QK_K // 2,)), ("qh", "u1", (QK_K // 4,)), ("scales", "i1", (QK_K // 16,)), ("d", "<f2")]
)

# Plain element types that :meth:`GGUFFile.view` can return as typed arrays.
_PLAIN_DTYPES: Final[Dict[str, np.dtype[Any]]] = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "F64": np.dtype("<f8"),
    "I8": np.dtype("<i1"),
    "I16": np.dtype("<i2"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
}

# Dequantize about this many elements at a time: keeps the temporaries in cache.
_CHUNK_ELEMENTS: Final = 1 << 20


@dataclass(frozen=True)
class GGUFTensorInfo:
    """Where and how one tensor is stored.

    ``shape`` is in numpy order (the reverse of GGUF's ``ne`` dims, whose first
    entry varies fastest); ``offset`` is the absolute byte offset of the data
    in the file; ``nbytes`` its stored size; ``type_id`` the raw ggml type id.

        >>> GGUFTensorInfo("w", (4, 32), "Q8_0", 96, 136, 8).ggml_type
        'Q8_0'
    """

    name: str
    shape: Tuple[int, ...]
    ggml_type: str
    offset: int
    nbytes: int
    type_id: int

    @property
    def n_elements(self) -> int:
        """Number of elements (product of ``shape``)."""
        n = 1
        for d in self.shape:
            n *= d
        return n


class _Reader:
    """A cursor over the mapped bytes; every read checks what is left first."""

    def __init__(self, path: str, buf: mmap.mmap, size: int) -> None:
        self.path = path
        self.buf = buf
        self.size = size
        self.pos = 0

    def fail(self, problem: str) -> CheckpointError:
        return CheckpointError(self.path, problem)

    @property
    def remaining(self) -> int:
        return self.size - self.pos

    def need(self, n: int, what: str) -> None:
        if n > self.size - self.pos:
            raise self.fail(
                f"truncated while reading {what}: need {n} bytes at offset {self.pos}, "
                f"only {self.size - self.pos} left (file is {self.size} bytes)"
            )

    def u32(self, what: str) -> int:
        self.need(4, what)
        (v,) = _U32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def u64(self, what: str) -> int:
        self.need(8, what)
        (v,) = _U64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(v)

    def raw_string(self, what: str) -> bytes:
        n = self.u64(f"the length of {what}")
        if n > self.size - self.pos:
            raise self.fail(
                f"{what} claims a length of {n} bytes at offset {self.pos - 8}, "
                f"but only {self.size - self.pos} bytes are left"
            )
        s = self.buf[self.pos : self.pos + n]
        self.pos += n
        return s

    def string(self, what: str) -> str:
        """A string that must be valid UTF-8 (keys, tensor names)."""
        start = self.pos
        b = self.raw_string(what)
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self.fail(f"{what} at offset {start} is not valid UTF-8 ({e.reason})") from None

    def value(self, vtype: int, what: str, depth: int = 0) -> Any:
        fmt = _SCALAR_FORMATS.get(vtype)
        if fmt is not None:
            st = fmt[0]
            self.need(st.size, what)
            (v,) = st.unpack_from(self.buf, self.pos)
            self.pos += st.size
            if vtype == _T_BOOL:
                return bool(v)
            return v
        if vtype == _T_STRING:
            return self.raw_string(what).decode("utf-8", "surrogateescape")
        if vtype == _T_ARRAY:
            return self.array(what, depth)
        raise self.fail(f"{what} has unknown value type {vtype} (at offset {self.pos - 4})")

    def array(self, what: str, depth: int) -> Any:
        if depth >= MAX_ARRAY_NESTING:
            raise self.fail(f"{what}: arrays nested more than {MAX_ARRAY_NESTING} deep")
        etype = self.u32(f"the element type of {what}")
        n = self.u64(f"the length of {what}")
        fmt = _SCALAR_FORMATS.get(etype)
        if fmt is not None:
            min_size = fmt[0].size
        elif etype == _T_STRING:
            min_size = 8
        elif etype == _T_ARRAY:
            min_size = 4 + 8
        else:
            raise self.fail(f"{what} has unknown element type {etype} (at offset {self.pos - 12})")
        if n * min_size > self.size - self.pos:
            raise self.fail(
                f"{what} claims {n} elements of type {_VALUE_TYPE_NAMES[etype]} at offset {self.pos - 8} "
                f"(at least {n * min_size} bytes), but only {self.size - self.pos} bytes are left"
            )
        if fmt is not None:
            dt = fmt[1]
            nbytes = n * dt.itemsize
            arr = np.frombuffer(self.buf, dtype=dt, count=n, offset=self.pos)
            self.pos += nbytes
            if etype == _T_BOOL:
                return arr != 0
            return arr.astype(dt.newbyteorder("="), copy=True)
        if etype == _T_STRING:
            buf, size, pos = self.buf, self.size, self.pos
            unpack = _U64.unpack_from
            out: List[Any] = []
            for i in range(n):
                if pos + 8 > size:
                    self.pos = pos
                    self.need(8, f"the length of element {i} of {what}")
                (ln,) = unpack(buf, pos)
                pos += 8
                if ln > size - pos:
                    raise self.fail(
                        f"element {i} of {what} claims a length of {ln} bytes at offset {pos - 8}, "
                        f"but only {size - pos} bytes are left"
                    )
                out.append(buf[pos : pos + ln].decode("utf-8", "surrogateescape"))
                pos += ln
            self.pos = pos
            return out
        return [self.array(f"element {i} of {what}", depth + 1) for i in range(n)]


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


class GGUFFile:
    """A GGUF file (version 2 or 3), memory-mapped read-only and fully
    validated when opened.

    Attributes: ``path``, ``version``, ``metadata`` (``dict`` of key -> value,
    in file order; see the module docstring for how values are typed),
    ``alignment`` and ``data_offset`` (absolute start of the tensor data).

        >>> with GGUFFile("model.gguf") as f:                # doctest: +SKIP
        ...     for name in f.tensor_names():
        ...         print(name, f.tensor_info(name).shape)
        ...     x = f.dequantize("output.weight")             # float32, numpy order
        ...     d, qs = f.quant_blocks("blk.0.attn_q.weight")  # Q8_0: zero-copy

    Arrays from :meth:`raw`, :meth:`view` and :meth:`quant_blocks` are
    read-only views of the mapping and keep it alive after :meth:`close`;
    :meth:`dequantize` returns fresh, writable arrays.

    Raises :class:`~luminal.io.errors.CheckpointError` (message starts with
    the path) if the file is truncated, corrupt or inconsistent, and
    ``OSError`` if it cannot be opened.
    """

    path: str
    version: int
    metadata: Dict[str, Any]
    alignment: int
    data_offset: int

    def __init__(self, path: _PathLike) -> None:
        self.path = os.fspath(path)
        self._mm: Optional[mmap.mmap] = None
        self._bytes: Optional[npt.NDArray[np.uint8]] = None
        self._tensors: Dict[str, GGUFTensorInfo] = {}
        self.metadata = {}
        with open(self.path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                raise CheckpointError(self.path, "truncated while reading the magic: the file is empty")
            self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self._parse(_Reader(self.path, self._mm, size))
            self._bytes = np.frombuffer(self._mm, dtype=np.uint8)
        except BaseException:
            self.close()
            raise

    # -- parsing -----------------------------------------------------------

    def _parse(self, r: _Reader) -> None:
        r.need(4, "the magic")
        magic = r.buf[0:4]
        if magic != GGUF_MAGIC:
            raise r.fail(f"not a GGUF file: magic is {magic!r}, expected {GGUF_MAGIC!r}")
        r.pos = 4
        version = r.u32("the version")
        if version not in SUPPORTED_VERSIONS:
            swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
            if swapped in SUPPORTED_VERSIONS:
                raise r.fail(f"big-endian GGUF (version {swapped}) is not supported")
            raise r.fail(f"GGUF version {version} is not supported (only 2 and 3)")
        self.version = version
        tensor_count = r.u64("the tensor count")
        kv_count = r.u64("the metadata key/value count")
        if kv_count * _MIN_KV_BYTES > r.remaining:
            raise r.fail(
                f"metadata key/value count {kv_count} is impossible: each needs at least "
                f"{_MIN_KV_BYTES} bytes and only {r.remaining} are left"
            )
        if tensor_count * _MIN_TENSOR_INFO_BYTES + kv_count * _MIN_KV_BYTES > r.remaining:
            raise r.fail(
                f"tensor count {tensor_count} is impossible: each tensor info needs at least "
                f"{_MIN_TENSOR_INFO_BYTES} bytes and only {r.remaining} are left"
            )

        metadata: Dict[str, Any] = {}
        for i in range(kv_count):
            key_at = r.pos
            key = r.string(f"metadata key #{i}")
            if key in metadata:
                raise r.fail(f"duplicate metadata key {key!r} (key #{i} at offset {key_at})")
            vtype = r.u32(f"the value type of metadata key {key!r}")
            metadata[key] = r.value(vtype, f"the value of metadata key {key!r}")
        self.metadata = metadata

        alignment: Any = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if (
            isinstance(alignment, bool)
            or not isinstance(alignment, int)
            or alignment <= 0
            or alignment & (alignment - 1) != 0
        ):
            raise r.fail(f"general.alignment must be a non-zero power of two, got {alignment!r}")
        self.alignment = alignment

        raw_infos: List[Tuple[str, List[int], int, int]] = []
        seen: set[str] = set()
        for i in range(tensor_count):
            name = r.string(f"the name of tensor #{i}")
            if name in seen:
                raise r.fail(f"duplicate tensor name {name!r} (tensor #{i})")
            seen.add(name)
            n_dims = r.u32(f"n_dims of tensor {name!r}")
            if not 1 <= n_dims <= MAX_DIMS:
                raise r.fail(f"tensor {name!r} has n_dims {n_dims}, must be 1..{MAX_DIMS}")
            dims = [r.u64(f"dim {j} of tensor {name!r}") for j in range(n_dims)]
            for j, d in enumerate(dims):
                if d >= 1 << 63:
                    raise r.fail(f"tensor {name!r} has dim {j} = {d}, which is negative as int64")
            type_id = r.u32(f"the ggml type of tensor {name!r}")
            offset = r.u64(f"the data offset of tensor {name!r}")
            raw_infos.append((name, dims, type_id, offset))

        self.data_offset = _align(r.pos, alignment)
        for name, dims, type_id, offset in raw_infos:
            self._tensors[name] = self._check_tensor(r, name, dims, type_id, offset)

    def _check_tensor(self, r: _Reader, name: str, dims: List[int], type_id: int, offset: int) -> GGUFTensorInfo:
        t = GGML_TYPES.get(type_id)
        if t is None:
            raise r.fail(f"tensor {name!r} has unknown ggml type id {type_id}")
        if dims[0] % t.block_size != 0:
            raise r.fail(
                f"tensor {name!r} of type {t.name} has a row of {dims[0]} elements, "
                f"not a multiple of the block size {t.block_size}"
            )
        n = nonzero = 1
        for d in dims:
            n *= d
            nonzero *= max(d, 1)
        if n == 0 and nonzero > 2**48:  # no bytes to check, but numpy cannot shape (or widen) it
            raise r.fail(f"tensor {name!r} has dims {dims}: no elements, yet too large for any array")
        nbytes = n // t.block_size * t.type_size
        if offset % self.alignment != 0:
            raise r.fail(f"tensor {name!r} has offset {offset}, not a multiple of the alignment {self.alignment}")
        start = self.data_offset + offset
        if start + nbytes > r.size:
            raise r.fail(
                f"tensor {name!r} ({t.name}, dims {dims}) needs bytes {start}..{start + nbytes} "
                f"but the file is only {r.size} bytes"
            )
        shape = tuple(reversed(dims))
        return GGUFTensorInfo(name, shape, t.name, start, nbytes, type_id)

    # -- access --------------------------------------------------------------

    @property
    def architecture(self) -> Optional[str]:
        """``metadata["general.architecture"]`` if it is a string, else None."""
        a = self.metadata.get("general.architecture")
        return a if isinstance(a, str) else None

    def tensor_names(self) -> List[str]:
        """Tensor names in file order."""
        return list(self._tensors)

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def __len__(self) -> int:
        return len(self._tensors)

    def tensor_info(self, name: str) -> GGUFTensorInfo:
        """The :class:`GGUFTensorInfo` of ``name`` (``KeyError`` if absent)."""
        try:
            return self._tensors[name]
        except KeyError:
            raise KeyError(f"{self.path}: no tensor named {name!r}") from None

    def _data(self) -> npt.NDArray[np.uint8]:
        if self._bytes is None:
            raise ValueError(f"{self.path}: the GGUF file is closed")
        return self._bytes

    def raw(self, name: str) -> npt.NDArray[np.uint8]:
        """The stored bytes of ``name``: a read-only, zero-copy 1-D uint8 view.

        >>> f.raw("output.weight").nbytes == f.tensor_info("output.weight").nbytes  # doctest: +SKIP
        True
        """
        info = self.tensor_info(name)
        return self._data()[info.offset : info.offset + info.nbytes]

    def view(self, name: str) -> npt.NDArray[Any]:
        """A zero-copy, read-only typed view in numpy shape order for plain
        types (F32, F16, F64, I8, I16, I32, I64); quantized and BF16 tensors
        raise :class:`CheckpointError` (use :meth:`dequantize`)."""
        info = self.tensor_info(name)
        dt = _PLAIN_DTYPES.get(info.ggml_type)
        if dt is None:
            raise CheckpointError(
                self.path, f"tensor {name!r} has type {info.ggml_type}, which has no plain numpy view"
            )
        return self.raw(name).view(dt).reshape(info.shape)

    def quant_blocks(self, name: str) -> Tuple[npt.NDArray[np.float16], npt.NDArray[Any]]:
        """Zero-copy views of a Q8_0 or Q4_0 tensor's blocks, for quantized
        kernels. With ``rows`` = product of all numpy dims but the last and
        ``nblocks`` = last dim / 32, returns ``(scales, qs)``:

        * Q8_0: scales float16 ``[rows, nblocks]``, qs int8 ``[rows, nblocks, 32]``
          (element ``k`` of a block is ``scale * qs[k]``);
        * Q4_0: scales float16 ``[rows, nblocks]``, qs uint8 ``[rows, nblocks, 16]``
          (byte ``k`` holds element ``k`` in its low nibble and element ``k + 16``
          in its high nibble; the value is ``scale * (nibble - 8)``).

        Both are strided views into the file (read-only).

            >>> d, qs = f.quant_blocks("blk.0.ffn_up.weight")   # doctest: +SKIP
            >>> w = d[..., None].astype("f4") * qs               # doctest: +SKIP
        """
        info = self.tensor_info(name)
        if info.ggml_type == "Q8_0":
            block = _Q8_0_BLOCK
        elif info.ggml_type == "Q4_0":
            block = _Q4_0_BLOCK
        else:
            raise CheckpointError(
                self.path, f"quant_blocks supports Q8_0 and Q4_0; tensor {name!r} has type {info.ggml_type}"
            )
        blocks = self.raw(name).view(block)
        ne0 = info.shape[-1]
        rows = info.n_elements // ne0 if ne0 else 0
        blocks = blocks.reshape(rows, ne0 // 32)
        scales: npt.NDArray[np.float16] = blocks["d"]
        qs: npt.NDArray[Any] = blocks["qs"]
        return scales, qs

    def dequantize(self, name: str) -> npt.NDArray[np.float32]:
        """``name`` as a new float32 array in numpy shape order.

        Supported types: F32, F16, BF16, F64, Q8_0, Q4_0, Q5_0, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K,
        Q6_K, IQ4_XS. Other
        (known) types raise :class:`CheckpointError` naming the type.

            >>> f.dequantize("token_embd.weight").dtype          # doctest: +SKIP
            dtype('float32')
        """
        info = self.tensor_info(name)
        raw = self.raw(name)
        t = info.ggml_type
        out: npt.NDArray[np.float32]
        if t == "F32":
            out = raw.view("<f4").astype(np.float32, copy=True)
        elif t == "F16":
            out = raw.view("<f2").astype(np.float32)
        elif t == "F64":
            out = raw.view("<f8").astype(np.float32)
        elif t == "BF16":
            out = (raw.view("<u2").astype(np.uint32) << np.uint32(16)).view(np.float32)
        elif t in _DEQUANT:
            out = dequantize_blocks(t, raw)
        else:
            raise CheckpointError(
                self.path, f"tensor {name!r} has type {t} (ggml type {info.type_id}), which cannot be dequantized yet"
            )
        return out.reshape(info.shape)

    # -- lifetime ------------------------------------------------------------

    def close(self) -> None:
        """Release the mapping. Views handed out earlier keep it alive until
        they are dropped; later access through this object raises."""
        self._bytes = None
        mm, self._mm = self._mm, None
        if mm is not None:
            try:
                mm.close()
            except BufferError:
                pass  # views still exported: the mapping closes when they die

    def __enter__(self) -> GGUFFile:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._bytes is None else f"{len(self._tensors)} tensors"
        return f"GGUFFile({self.path!r}, v{self.version}, {state})"


# -- dequantization kernels (one chunk of blocks -> [nblocks, block_size]) ---


def _deq_q8_0(b: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    d = b["d"].astype(np.float32)[:, None]
    q = b["qs"].astype(np.float32)
    r: npt.NDArray[np.float32] = q * d
    return r


def _split_nibbles(qs: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Runs of 16 bytes (the last axis) as 32 values: the low nibbles, then
    the high ones (Q4_0's, Q5_0's and the IQ4 formats' order)."""
    nib: npt.NDArray[np.uint8] = np.concatenate([qs & np.uint8(15), qs >> np.uint8(4)], axis=-1)
    return nib


def _q4_0_quants(b: npt.NDArray[Any]) -> npt.NDArray[np.int8]:
    """Q4_0's 32 quants a block, -8..7."""
    q: npt.NDArray[np.int8] = _split_nibbles(b["qs"]).astype(np.int8) - np.int8(8)
    return q


def _deq_q4_0(b: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    r: npt.NDArray[np.float32] = b["d"].astype(np.float32)[:, None] * _q4_0_quants(b).astype(np.float32)
    return r


def _two_bit_runs(qs: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Q2_K's / Q3_K's 64 bytes of 2-bit quants as 256 values 0..3: value
    128 h + 32 j + l is bits 2j, 2j + 1 of byte 32 h + l."""
    n = qs.shape[0]
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
    runs: npt.NDArray[np.uint8] = ((qs.reshape(n, 2, 1, 32) >> shifts) & np.uint8(3)).reshape(n, QK_K)
    return runs


def _deq_q2_k(b: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    # 16 sub-blocks of 16: scale (low nibble) and min (high nibble) per byte;
    # value = d * scale * q - dmin * min, q in 0..3
    n = b.shape[0]
    s: npt.NDArray[np.uint8] = b["scales"]
    dl = b["d"].astype(np.float32)[:, None] * (s & np.uint8(15)).astype(np.float32)
    ml = b["dmin"].astype(np.float32)[:, None] * (s >> np.uint8(4)).astype(np.float32)
    q = _two_bit_runs(b["qs"]).reshape(n, 16, 16).astype(np.float32)
    r: npt.NDArray[np.float32] = (dl[:, :, None] * q - ml[:, :, None]).reshape(n, QK_K)
    return r


def _deq_q3_k(b: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    # 16 sub-blocks of 16, 6-bit scales offset by 32 (scale i: the low 4 bits
    # in nibble i // 8 of byte i % 8, the top 2 at bit 2 (i // 4) of byte
    # 8 + i % 4); q = the 2-bit run, minus 4 where value 32 k + l's bit k of
    # hmask[l] is clear; value = d * (scale - 32) * q
    n = b.shape[0]
    s: npt.NDArray[np.uint8] = b["scales"]
    low = (s[:, None, 0:8] >> np.array([0, 4], dtype=np.uint8).reshape(1, 2, 1)).reshape(n, 16) & np.uint8(15)
    high = (s[:, None, 8:12] >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 4, 1)).reshape(n, 16) & np.uint8(3)
    sc = (low | (high << np.uint8(4))).astype(np.float32) - np.float32(32)
    dl = b["d"].astype(np.float32)[:, None] * sc
    hm: npt.NDArray[np.uint8] = b["hmask"]
    clear = ((hm[:, None, :] >> np.arange(8, dtype=np.uint8)[None, :, None]) & np.uint8(1)) ^ np.uint8(1)
    q = _two_bit_runs(b["qs"]).astype(np.float32) - np.float32(4) * clear.reshape(n, QK_K).astype(np.float32)
    r: npt.NDArray[np.float32] = (dl[:, :, None] * q.reshape(n, 16, 16)).reshape(n, QK_K)
    return r


def _deq_q4_k(b: npt.NDArray[Any], fifth: npt.NDArray[np.uint8] | None = None) -> npt.NDArray[np.float32]:
    """Q4_K blocks, or Q5_K's with ``fifth`` (n, 8, 32): the values' fifth bits."""
    n = b.shape[0]
    d = b["d"].astype(np.float32)[:, None]
    dmin = b["dmin"].astype(np.float32)[:, None]
    s: npt.NDArray[np.uint8] = b["scales"]
    # 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit min packed in 12 bytes:
    # j < 4: scale = s[j] & 63, min = s[j+4] & 63; j >= 4: low 4 bits from
    # s[j+4] (scale: low nibble, min: high nibble), top 2 bits from s[j-4] / s[j] >> 6.
    lo, mid, hi = s[:, 0:4], s[:, 4:8], s[:, 8:12]
    sc = np.concatenate([lo & 63, (hi & 0x0F) | ((lo >> 6) << 4)], axis=-1).astype(np.float32)
    mn = np.concatenate([mid & 63, (hi >> 4) | ((mid >> 6) << 4)], axis=-1).astype(np.float32)
    # 4 chunks of 32 bytes: low nibbles are sub-block 2j, high nibbles 2j+1.
    qs = b["qs"].reshape(n, 4, 1, 32)
    q = np.concatenate([qs & np.uint8(0x0F), qs >> np.uint8(4)], axis=2).reshape(n, 8, 32)
    if fifth is not None:
        q = q | (fifth << np.uint8(4))
    r: npt.NDArray[np.float32] = ((d * sc)[:, :, None] * q.astype(np.float32) - (dmin * mn)[:, :, None]).reshape(
        n, QK_K
    )
    return r


def _iq4_levels(qs: npt.NDArray[np.uint8]) -> npt.NDArray[np.int8]:
    """Nibbles of 16-byte runs (low nibbles the run's first 16 values, high
    the next 16) as IQ4_NL levels, 32 a run."""
    n = qs.shape[0]
    levels: npt.NDArray[np.int8] = IQ4_NL_VALUES[_split_nibbles(qs.reshape(n, -1, 16))].reshape(n, -1)
    return levels


def _q5_0_quants(b: npt.NDArray[Any]) -> npt.NDArray[np.int8]:
    """Q5_0's 32 quants a block, -16..15: nibbles (low the first 16 values)
    with bit j of qh as value j's fifth bit, minus 16."""
    nib = _split_nibbles(b["qs"])
    fifth = ((b["qh"][:, None] >> np.arange(32, dtype=np.uint32)) & np.uint32(1)).astype(np.uint8)
    q: npt.NDArray[np.int8] = ((nib | (fifth << np.uint8(4))).astype(np.int16) - 16).astype(np.int8)
    return q


def _deq_q5_0(b: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    r: npt.NDArray[np.float32] = b["d"].astype(np.float32)[:, None] * _q5_0_quants(b).astype(np.float32)
    return r


def _deq_iq4_nl(b: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    r: npt.NDArray[np.float32] = b["d"].astype(np.float32)[:, None] * _iq4_levels(b["qs"]).astype(np.float32)
    return r


def to_q8_0(ggml_type: str, raw: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Q4_0, Q5_0 or IQ4_NL blocks (flat bytes) as Q8_0 blocks of the same
    values: each block keeps its fp16 scale and its quants (-8..7, -16..15, or
    IQ4_NL's levels, -127..113) fit int8, so ``d * q`` is the same float.
    For formats luminal's kernels do not read themselves."""
    blocks = {"Q4_0": _Q4_0_BLOCK, "Q5_0": _Q5_0_BLOCK, "IQ4_NL": _IQ4_NL_BLOCK}
    if ggml_type not in blocks:
        raise ValueError(f"[to_q8_0] {ggml_type} blocks have no exact Q8_0 form (Q4_0, Q5_0 or IQ4_NL do)")
    all_blocks = np.ascontiguousarray(raw, np.uint8).reshape(-1).view(blocks[ggml_type])
    out = np.empty(all_blocks.shape[0], _Q8_0_BLOCK)
    out["d"] = all_blocks["d"]
    step = max(1, _CHUNK_ELEMENTS // 32)  # temporaries stay small
    for s in range(0, all_blocks.shape[0], step):
        b = all_blocks[s : s + step]
        if ggml_type == "Q5_0":
            out["qs"][s : s + step] = _q5_0_quants(b)
        elif ggml_type == "IQ4_NL":
            out["qs"][s : s + step] = _iq4_levels(b["qs"])
        else:
            out["qs"][s : s + step] = _q4_0_quants(b)
    converted: npt.NDArray[np.uint8] = out.view(np.uint8)
    return converted


def _deq_iq4_xs(b: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    # 8 sub-blocks of 32: 6-bit scales, stored + 32 (low 4 bits: nibble s % 2
    # of scales_l[s // 2]; top 2: bits 2s of scales_h); value = d * (scale - 32) * level
    n = b.shape[0]
    low = (b["scales_l"][:, :, None] >> np.array([0, 4], dtype=np.uint8)).reshape(n, 8) & np.uint8(15)
    high = (b["scales_h"][:, None] >> (2 * np.arange(8, dtype=np.uint16))) & np.uint16(3)
    dl = b["d"].astype(np.float32)[:, None] * ((low | (high.astype(np.uint8) << np.uint8(4))).astype(np.float32) - 32)
    levels = _iq4_levels(b["qs"]).astype(np.float32).reshape(n, 8, 32)
    r: npt.NDArray[np.float32] = (dl[:, :, None] * levels).reshape(n, QK_K)
    return r


def _deq_q5_k(b: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    # Q4_K's layout plus 32 bytes of fifth bits: value 32 j + l's is bit j of qh[l].
    qh: npt.NDArray[np.uint8] = b["qh"]
    fifth = (qh[:, None, :] >> np.arange(8, dtype=np.uint8)[None, :, None]) & np.uint8(1)
    return _deq_q4_k(b, fifth)


def _deq_q6_k(b: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    n = b.shape[0]
    d = b["d"].astype(np.float32)[:, None]
    sc = b["scales"].astype(np.float32)
    # Two halves of 128 elements. In a half, element p's low 4 bits are
    # ql[p % 64] (low nibble for p < 64, high nibble otherwise) and its top
    # 2 bits are (qh[p % 32] >> 2*(p // 32)) & 3; the 6-bit value is offset by 32.
    ql = b["ql"].reshape(n, 2, 64)
    low = np.concatenate([ql & np.uint8(0x0F), ql >> np.uint8(4)], axis=-1)
    qh = b["qh"].reshape(n, 2, 1, 32) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
    high = (qh & np.uint8(3)).reshape(n, 2, 128)
    q = ((low | (high << np.uint8(4))).astype(np.int8) - np.int8(32)).astype(np.float32)
    # one int8 scale per 16 consecutive elements
    r: npt.NDArray[np.float32] = ((d * sc)[:, :, None] * q.reshape(n, 16, 16)).reshape(n, QK_K)
    return r


def dequantize_blocks(ggml_type: str, raw: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Whole blocks of ``ggml_type`` (Q8_0, Q4_0 or a k-quant; flat bytes) as
    float32, one row of ``block_size`` values per block, in chunks of about
    ``_CHUNK_ELEMENTS`` values so temporaries stay small."""
    block, fn = _DEQUANT[ggml_type]
    blocks = np.ascontiguousarray(raw, np.uint8).reshape(-1).view(block)
    bs = next(t.block_size for t in GGML_TYPES.values() if t.name == ggml_type)
    out = np.empty((blocks.shape[0], bs), dtype=np.float32)
    step = max(1, _CHUNK_ELEMENTS // bs)
    for s in range(0, blocks.shape[0], step):
        out[s : s + step] = fn(blocks[s : s + step])
    return out


_DEQUANT: Final[Dict[str, Tuple[np.dtype[Any], Callable[[npt.NDArray[Any]], npt.NDArray[np.float32]]]]] = {
    "Q8_0": (_Q8_0_BLOCK, _deq_q8_0),
    "Q4_0": (_Q4_0_BLOCK, _deq_q4_0),
    "Q2_K": (_Q2_K_BLOCK, _deq_q2_k),
    "Q3_K": (_Q3_K_BLOCK, _deq_q3_k),
    "Q4_K": (_Q4_K_BLOCK, _deq_q4_k),
    "IQ4_XS": (_IQ4_XS_BLOCK, _deq_iq4_xs),
    "IQ4_NL": (_IQ4_NL_BLOCK, _deq_iq4_nl),
    "Q5_0": (_Q5_0_BLOCK, _deq_q5_0),
    "Q5_K": (_Q5_K_BLOCK, _deq_q5_k),
    "Q6_K": (_Q6_K_BLOCK, _deq_q6_k),
}
