"""Bounds-checked safetensors reader and atomic writer, in pure Python + numpy.

A safetensors file is an 8-byte little-endian header length ``N``, ``N``
bytes of UTF-8 JSON describing every tensor (dtype, shape, byte range), then
the raw little-endian tensor data. :class:`SafetensorsFile` memory-maps the
file and validates the whole header before handing out anything, so a
truncated or hostile file raises :class:`CheckpointError` instead of reading
out of bounds or allocating absurd amounts of memory.

Example::

    >>> import numpy as np
    >>> save_file({"w": np.ones((2, 3), np.float32)}, "model.safetensors")
    >>> with SafetensorsFile("model.safetensors") as f:
    ...     f.shape("w"), f.dtype("w"), f.get("w").sum()
    ((2, 3), 'F32', np.float32(6.0))

Sharded Hugging Face checkpoints (``model.safetensors.index.json`` plus
shards) open with :func:`load_sharded`; :func:`open_checkpoint` picks the
right reader for a file or a directory.
"""

from __future__ import annotations

import contextlib
import json
import math
import mmap
import os
import stat
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import PureWindowsPath
from types import TracebackType
from typing import Any, NoReturn, Union

import numpy as np
import numpy.typing as npt

from .errors import CheckpointError
from .errors import short_repr as _short

__all__ = [
    "Checkpoint",
    "ShardedSafetensors",
    "SafetensorsFile",
    "load_file",
    "load_sharded",
    "open_checkpoint",
    "save_file",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Largest header accepted, in bytes (the JSON part of the file).
MAX_HEADER_BYTES = 100 * 1024 * 1024
#: File names Hugging Face uses for single-file and sharded checkpoints.
SINGLE_FILE_NAME = "model.safetensors"
INDEX_FILE_NAME = "model.safetensors.index.json"
#: :func:`save_file` writes to ``<dir>/<TEMP_PREFIX>XXXXXXXX.tmp`` first.
TEMP_PREFIX = ".luminal-save-"

# How each safetensors dtype is laid out on disk. BF16 has no numpy dtype, so
# it is read as raw uint16 and widened to float32 in ``get``.
_STORAGE: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_FLOAT_CODES = frozenset({"F64", "F32", "F16", "BF16"})
_SAVE_CODES: dict[np.dtype[Any], str] = {
    dt: code for code, dt in _STORAGE.items() if code != "BF16"
}
_MAX_NDIM = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32
_REQUIRED_FIELDS = ("dtype", "shape", "data_offsets")


@dataclass(frozen=True)
class _Entry:
    dtype: str
    shape: tuple[int, ...]
    numel: int
    begin: int  # byte offsets relative to the start of the data section
    end: int


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


class _TensorTable:
    """The name-mapping side shared by single-file and sharded checkpoints:
    tensors by name in file (or index) order."""

    def _names(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def keys(self) -> list[str]:
        """Tensor names, in file (or index) order."""
        return list(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __len__(self) -> int:
        return len(self._names())

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SafetensorsFile(_TensorTable):
    """A read-only, memory-mapped safetensors file with a validated header.

    Opening parses and checks the entire header (sizes, dtypes, shapes, byte
    ranges, overlaps); any problem raises :class:`CheckpointError` naming the
    file. Tensor data is only touched by :meth:`get`.

    Example::

        >>> with SafetensorsFile("model.safetensors") as f:
        ...     for name in f.keys():
        ...         print(name, f.dtype(name), f.shape(name))
        ...     w = f.get("w")                     # zero-copy, read-only
        ...     w32 = f.get("w", dtype=np.float32)  # converted copy if needed
        w F32 (2, 3)
    """

    def __init__(self, path: PathLike) -> None:
        self._path = os.fspath(path)
        with open(self._path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < 8:
                raise CheckpointError(
                    self._path,
                    f"file is {size} bytes, too short to hold the 8-byte header length",
                )
            # The map keeps its own handle; the file object can close here.
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            header_len, self._metadata, self._entries = _parse_header(
                self._path, mm, size
            )
        except BaseException:
            mm.close()
            raise
        self._mm: mmap.mmap | None = mm
        self._data_start = 8 + header_len

    @property
    def path(self) -> str:
        """The path this file was opened from."""
        return self._path

    @property
    def metadata(self) -> dict[str, str]:
        """The header's ``__metadata__`` (a copy; empty if absent)."""
        return dict(self._metadata)

    @property
    def nbytes(self) -> int:
        """Total bytes of tensor data, e.g. for progress bars."""
        return sum(e.end - e.begin for e in self._entries.values())

    def _names(self) -> Mapping[str, Any]:
        return self._entries

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of tensor ``name``."""
        return self._entry(name).shape

    def dtype(self, name: str) -> str:
        """Safetensors dtype string of tensor ``name`` (``"F32"``, ``"BF16"``, ...)."""
        return self._entry(name).dtype

    def get(self, name: str, dtype: npt.DTypeLike | None = None) -> npt.NDArray[Any]:
        """Tensor ``name`` as a numpy array.

        Without ``dtype``, the array has the stored dtype and is a zero-copy,
        read-only view of the mapped file, except BF16, which numpy lacks:
        it is widened (exactly) to a new float32 array. With ``dtype`` (a
        float dtype such as ``np.float32``), float tensors are converted to
        it, and a view is returned when no conversion is needed; asking to
        convert a non-float tensor raises ``ValueError``.

        Views stay valid after :meth:`close`: the mapping lives until the
        last view is gone.
        """
        entry = self._entry(name)
        if self._mm is None:
            raise ValueError(f"{self._path}: file is closed")
        raw = np.frombuffer(
            self._mm,
            dtype=_STORAGE[entry.dtype],
            count=entry.numel,
            offset=self._data_start + entry.begin,
        )
        if entry.dtype == "BOOL" and raw.size and int(raw.view(np.uint8).max()) > 1:
            raise CheckpointError(
                self._path, f"tensor {name!r} is BOOL but holds bytes other than 0 and 1"
            )
        arr = _bf16_to_f32(raw) if entry.dtype == "BF16" else raw
        arr = arr.reshape(entry.shape)
        if dtype is None:
            return arr
        target = np.dtype(dtype)
        if target == arr.dtype:
            return arr
        if entry.dtype not in _FLOAT_CODES or target.kind != "f":
            raise ValueError(
                f"{self._path}: tensor {name!r} is {entry.dtype}; only float "
                f"tensors convert to a float dtype, and {target} was asked for"
            )
        return arr.astype(target)

    def raw(self, name: str) -> npt.NDArray[np.uint8]:
        """The stored bytes of tensor ``name`` (little-endian, row-major): a
        read-only, zero-copy 1-D uint8 view of the mapped file. BF16 tensors
        stay 2 bytes a value here (``get`` widens them).

        >>> f.raw("lm_head.weight").size == 2 * 32000 * 4096  # a BF16 tensor  # doctest: +SKIP
        True
        """
        entry = self._entry(name)
        if self._mm is None:
            raise ValueError(f"{self._path}: file is closed")
        start = self._data_start + entry.begin
        return np.frombuffer(self._mm, dtype=np.uint8, count=entry.numel * _STORAGE[entry.dtype].itemsize,
                             offset=start)

    def close(self) -> None:
        """Release the mapping (deferred until outstanding views are gone)."""
        mm, self._mm = self._mm, None
        if mm is not None:
            # Arrays from ``get`` still export the buffer; they keep the map
            # alive and it is unmapped when the last of them is collected.
            with contextlib.suppress(BufferError):
                mm.close()

    def __enter__(self) -> SafetensorsFile:
        return self


    def __repr__(self) -> str:
        state = "closed" if self._mm is None else f"{len(self)} tensors"
        return f"SafetensorsFile({self._path!r}, {state})"

    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise _missing_tensor(self._path, name, self._entries) from None


def load_file(path: PathLike) -> dict[str, npt.NDArray[Any]]:
    """Every tensor of a safetensors file, by name.

    Arrays keep their stored dtype (BF16 becomes float32) and are read-only
    views of the memory-mapped file; ``.copy()`` one to modify it.

    Example::

        >>> tensors = load_file("model.safetensors")
        >>> tensors["w"].shape
        (2, 3)
    """
    with SafetensorsFile(path) as f:
        return {name: f.get(name) for name in f.keys()}


def _parse_header(
    path: str, mm: mmap.mmap, size: int
) -> tuple[int, dict[str, str], dict[str, _Entry]]:
    def fail(problem: str) -> NoReturn:
        raise CheckpointError(path, problem)

    n = int.from_bytes(mm[:8], "little")
    if n == 0:
        fail("header length is 0")
    if n > size - 8:
        fail(f"header length {n} runs past the end of the file ({size} bytes)")
    if n > MAX_HEADER_BYTES:
        fail(f"header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit")

    try:
        text = mm[8 : 8 + n].decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"header is not valid UTF-8 ({e.reason} at byte {8 + e.start})")
    try:
        header = _loads_strict(text)
    except (ValueError, RecursionError) as e:
        fail(f"header is not valid JSON ({e})")
    if not isinstance(header, dict):
        fail(f"header is a JSON {_json_kind(header)}, expected an object")

    metadata: dict[str, str] = {}
    raw_meta = header.pop("__metadata__", None)
    if raw_meta is not None:
        if not isinstance(raw_meta, dict):
            fail(f"__metadata__ is a JSON {_json_kind(raw_meta)}, expected an object")
        for key, value in raw_meta.items():
            if not isinstance(value, str):
                fail(
                    f"__metadata__ value for {key!r} is a JSON {_json_kind(value)}, "
                    "expected a string"
                )
            metadata[key] = value

    data_len = size - 8 - n
    entries: dict[str, _Entry] = {}
    for name, info in header.items():
        entries[name] = _parse_entry(path, name, info, data_len)

    spans = sorted((e.begin, e.end, name) for name, e in entries.items() if e.end > e.begin)
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            fail(f"tensors {n0!r} [{b0}, {e0}] and {n1!r} [{b1}, {e1}] overlap")
    return n, metadata, entries


def _parse_entry(path: str, name: str, info: object, data_len: int) -> _Entry:
    def fail(problem: str) -> NoReturn:
        raise CheckpointError(path, f"tensor {name!r} {problem}")

    if not isinstance(info, dict):
        fail(f"is described by a JSON {_json_kind(info)}, expected an object")
    missing = [k for k in _REQUIRED_FIELDS if k not in info]
    if missing:
        fail(f"has no {', '.join(missing)}")

    dtype = info["dtype"]
    if not isinstance(dtype, str) or dtype not in _STORAGE:
        fail(f"has unsupported dtype {_short(dtype)} (supported: {', '.join(_STORAGE)})")
    itemsize = _STORAGE[dtype].itemsize

    raw_shape = info["shape"]
    if not isinstance(raw_shape, list):
        fail(f"shape {_short(raw_shape)} is not a list")
    if len(raw_shape) > _MAX_NDIM:
        fail(f"has {len(raw_shape)} dimensions; numpy supports at most {_MAX_NDIM}")
    for d in raw_shape:
        # type() rather than isinstance(): JSON true/false arrive as bool.
        if type(d) is not int or d < 0:
            fail(f"shape {_short(raw_shape)} has {_short(d)}, not a non-negative integer")
    shape = tuple(raw_shape)
    # numpy must be able to address the array even when a zero dimension
    # makes it empty, also once get() widens it (BF16 to 4 bytes, or any
    # float to an 8-byte dtype=); checking early keeps later numbers printable.
    bound = max(itemsize, 8)
    for d in shape:
        bound *= max(d, 1)
        if bound > sys.maxsize:
            fail(f"shape {_short(raw_shape)} is too large to address")
    numel = math.prod(shape)

    offsets = info["data_offsets"]
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(o) is int for o in offsets)
    ):
        fail(f"data_offsets {_short(offsets)} is not a pair of integers")
    begin, end = offsets
    where = f"data_offsets {_short(offsets)}"
    if begin < 0:
        fail(f"{where} start before the data section")
    if begin > end:
        fail(f"{where} begin after they end")
    if end > data_len:
        fail(f"{where} run past the end of the data section ({data_len} bytes)")
    if end - begin != numel * itemsize:
        fail(
            f"has shape {list(shape)} of {dtype} ({numel * itemsize} bytes) "
            f"but {where} span {end - begin} bytes"
        )
    return _Entry(dtype, shape, numel, begin, end)


def _bf16_to_f32(raw: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    # bfloat16 is the top half of a float32, so widening is exact.
    return (raw.astype(np.uint32) << 16).view(np.float32)


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def save_file(
    tensors: Mapping[str, npt.NDArray[Any] | np.generic],
    path: PathLike,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write ``tensors`` to ``path`` as a safetensors file, atomically.

    The data goes to a temporary file in the same directory, is flushed and
    fsynced, then renamed over ``path``: readers see either the old file or
    the complete new one, and on any error the temporary file is removed and
    an existing ``path`` is left as it was. Tensors are stored in sorted-name
    order, contiguous and little-endian; the header is padded with spaces to
    a multiple of 8 bytes, as the reference implementation does.

    Supported dtypes: float64, float32, float16, int64, int32, int16, int8,
    uint8 and bool (others raise ``ValueError``); numpy scalars are saved as
    0-d tensors. A replaced file keeps its
    permission bits; a new one gets the usual ``0o666 & ~umask``.

    Example::

        >>> save_file({"w": np.zeros((4, 4), np.float16)}, "model.safetensors",
        ...           metadata={"format": "np"})
    """
    dest = os.fspath(path)
    for name in tensors:
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {type(name).__name__} {name!r}")
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved and cannot name a tensor")

    header: dict[str, Any] = {}
    if metadata is not None:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(
                    f"metadata must map str to str, got {key!r}: {type(value).__name__}"
                )
        header["__metadata__"] = dict(metadata)

    layout: list[tuple[npt.NDArray[Any], np.dtype[Any]]] = []
    offset = 0
    for name in sorted(tensors):
        arr = tensors[name]
        if isinstance(arr, np.generic):
            arr = np.asarray(arr)
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"tensor {name!r} is a {type(arr).__name__}, not a numpy array")
        little = arr.dtype.newbyteorder("<")
        code = _SAVE_CODES.get(little)
        if code is None:
            raise ValueError(
                f"tensor {name!r} has dtype {arr.dtype}, which cannot be saved; "
                "supported: float64, float32, float16, int64, int32, int16, int8, "
                "uint8, bool"
            )
        nbytes = arr.size * little.itemsize
        header[name] = {
            "dtype": code,
            "shape": [int(d) for d in arr.shape],
            "data_offsets": [offset, offset + nbytes],
        }
        layout.append((arr, little))
        offset += nbytes

    blob = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    blob += b" " * (-len(blob) % 8)

    directory = os.path.dirname(os.path.abspath(dest))
    mode = _mode_for(dest)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(len(blob).to_bytes(8, "little"))
            fh.write(blob)
            for arr, little in layout:
                # Converted one tensor at a time, so at most one copy exists.
                data = np.ascontiguousarray(arr, dtype=little)
                fh.write(data.reshape(-1).view(np.uint8).data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _mode_for(dest: str) -> int:
    # mkstemp creates files 0o600; without this a saved checkpoint would be
    # unreadable to other users of a shared model cache.
    try:
        return stat.S_IMODE(os.stat(dest).st_mode)
    except OSError:
        return 0o666 & ~_current_umask()


def _current_umask() -> int:
    # os.umask() can only be read by setting it, which races with other
    # threads creating files; Linux exposes it read-only instead.
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable. The new file is already in place, so
    # a failure here (or a platform without directory fds) is not an error.
    if os.name != "posix":
        return
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# --------------------------------------------------------------------------
# Sharded checkpoints
# --------------------------------------------------------------------------


class ShardedSafetensors(_TensorTable):
    """A sharded checkpoint: ``model.safetensors.index.json`` plus shards.

    The index (``{"metadata": {...}, "weight_map": {tensor: shard_file}}``)
    is validated up front: every shard must exist and lie inside the index's
    directory. Shards are opened on first use, and offer the same API as
    :class:`SafetensorsFile` across all of them.

    Example::

        >>> with load_sharded("checkpoints/llama") as ckpt:
        ...     emb = ckpt.get("model.embed_tokens.weight", dtype=np.float32)
    """

    def __init__(self, index_path: PathLike) -> None:
        self._path = os.fspath(index_path)
        self._directory = os.path.dirname(os.path.abspath(self._path))
        self._metadata, self._weight_map = _read_index(self._path)
        self._shard_paths: dict[str, str] = {}
        for name, shard in self._weight_map.items():
            if shard not in self._shard_paths:
                self._shard_paths[shard] = _shard_path(self._path, self._directory, name, shard)
        self._shards: dict[str, SafetensorsFile] = {}
        self._closed = False

    @property
    def path(self) -> str:
        """The index file's path."""
        return self._path

    @property
    def metadata(self) -> dict[str, Any]:
        """The index's ``metadata`` object (a copy; empty if absent)."""
        return dict(self._metadata)

    @property
    def shard_files(self) -> list[str]:
        """Paths of the shards, in order of first appearance in the index."""
        return list(self._shard_paths.values())

    @property
    def nbytes(self) -> int:
        """Total bytes of the listed tensors' data (reads every shard's header)."""
        total = 0
        for name in self._weight_map:
            entry = self._shard_for(name)._entry(name)
            total += entry.end - entry.begin
        return total

    def _names(self) -> Mapping[str, Any]:
        return self._weight_map

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of tensor ``name``."""
        return self._shard_for(name).shape(name)

    def dtype(self, name: str) -> str:
        """Safetensors dtype string of tensor ``name``."""
        return self._shard_for(name).dtype(name)

    def get(self, name: str, dtype: npt.DTypeLike | None = None) -> npt.NDArray[Any]:
        """Tensor ``name``; see :meth:`SafetensorsFile.get`."""
        return self._shard_for(name).get(name, dtype)

    def raw(self, name: str) -> npt.NDArray[np.uint8]:
        """The stored bytes of tensor ``name``; see :meth:`SafetensorsFile.raw`."""
        return self._shard_for(name).raw(name)

    def close(self) -> None:
        """Close every opened shard."""
        self._closed = True
        shards, self._shards = self._shards, {}
        for shard in shards.values():
            shard.close()

    def __enter__(self) -> ShardedSafetensors:
        return self


    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self)} tensors"
        return f"ShardedSafetensors({self._path!r}, {len(self._shard_paths)} shards, {state})"

    def _shard_for(self, name: str) -> SafetensorsFile:
        try:
            shard = self._weight_map[name]
        except (KeyError, TypeError):
            raise _missing_tensor(self._path, name, self._weight_map) from None
        if self._closed:
            raise ValueError(f"{self._path}: checkpoint is closed")
        f = self._shards.get(shard)
        if f is None:
            f = self._shards[shard] = SafetensorsFile(self._shard_paths[shard])
        if name not in f:
            raise CheckpointError(
                f.path,
                f"has no tensor {name!r}, though {os.path.basename(self._path)} "
                "lists it in this shard",
            )
        return f


def load_sharded(directory_or_index_json: PathLike) -> ShardedSafetensors:
    """Open a sharded checkpoint from its directory or its index JSON file.

    Example::

        >>> ckpt = load_sharded("checkpoints/llama")  # or .../model.safetensors.index.json
        >>> len(ckpt), ckpt.shard_files[:1]
        (291, ['checkpoints/llama/model-00001-of-00002.safetensors'])
    """
    path = os.fspath(directory_or_index_json)
    if os.path.isdir(path):
        path = os.path.join(path, INDEX_FILE_NAME)
    return ShardedSafetensors(path)


def _read_index(path: str) -> tuple[dict[str, Any], dict[str, str]]:
    def fail(problem: str) -> NoReturn:
        raise CheckpointError(path, problem)

    with open(path, "rb") as fh:
        raw = fh.read(MAX_HEADER_BYTES + 1)
    if len(raw) > MAX_HEADER_BYTES:
        fail(f"index is larger than the {MAX_HEADER_BYTES}-byte limit")
    try:
        index = _loads_strict(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        fail(f"index is not valid UTF-8 ({e.reason} at byte {e.start})")
    except (ValueError, RecursionError) as e:
        fail(f"index is not valid JSON ({e})")
    if not isinstance(index, dict):
        fail(f"index is a JSON {_json_kind(index)}, expected an object")
    metadata = index.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict):
        fail(f"index metadata is a JSON {_json_kind(metadata)}, expected an object")
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict):
        fail(f"index has no weight_map object (found a JSON {_json_kind(weight_map)})")
    for name, shard in weight_map.items():
        if not isinstance(shard, str):
            fail(
                f"weight_map entry for {name!r} is a JSON {_json_kind(shard)}, "
                "expected a file name"
            )
    return metadata, weight_map


def _shard_path(index: str, directory: str, name: str, shard: str) -> str:
    def fail(problem: str) -> NoReturn:
        raise CheckpointError(
            index, f"weight_map entry for {name!r}: shard {_short(shard)} {problem}"
        )

    win = PureWindowsPath(shard)
    if not shard or "\x00" in shard:
        fail("is not a valid file name")
    if os.path.isabs(shard) or win.drive or win.root:
        fail("is an absolute path; shards must be inside the checkpoint directory")
    if ".." in shard.replace("\\", "/").split("/"):
        fail("points outside the checkpoint directory")
    # Lexical check only, deliberately: the Hugging Face cache symlinks every
    # shard to a blob elsewhere, so resolving links would reject real caches.
    full = os.path.normpath(os.path.join(directory, shard))
    if os.path.commonpath([directory, full]) != directory:
        fail("points outside the checkpoint directory")
    if not os.path.isfile(full):
        fail(f"does not exist (looked for {full})")
    return full


# --------------------------------------------------------------------------
# Any checkpoint
# --------------------------------------------------------------------------

Checkpoint = Union[SafetensorsFile, ShardedSafetensors]


def open_checkpoint(path: PathLike) -> Checkpoint:
    """Open a safetensors checkpoint, single-file or sharded.

    ``path`` may be a ``.safetensors`` file, an index ``.json`` file, or a
    directory holding ``model.safetensors.index.json`` (preferred) or
    ``model.safetensors``. Either result offers ``keys()``, ``shape()``,
    ``dtype()``, ``get()``, ``metadata``, ``nbytes`` and ``close()``.

    Example::

        >>> with open_checkpoint("checkpoints/gpt2") as ckpt:
        ...     weights = {name: ckpt.get(name, dtype=np.float32) for name in ckpt.keys()}
    """
    p = os.fspath(path)
    if os.path.isdir(p):
        index = os.path.join(p, INDEX_FILE_NAME)
        if os.path.isfile(index):
            return ShardedSafetensors(index)
        single = os.path.join(p, SINGLE_FILE_NAME)
        if os.path.isfile(single):
            return SafetensorsFile(single)
        raise FileNotFoundError(
            f"{p}: directory has neither {INDEX_FILE_NAME} nor {SINGLE_FILE_NAME}"
        )
    if p.endswith(".json"):
        return ShardedSafetensors(p)
    return SafetensorsFile(p)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _loads_strict(text: str) -> Any:
    """``json.loads`` that rejects duplicate keys and NaN/Infinity."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                raise ValueError(f"duplicate key {_short(key)}")
            obj[key] = value
        return obj

    def no_constants(token: str) -> NoReturn:
        raise ValueError(f"non-standard constant {token}")

    return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _missing_tensor(path: str, name: object, available: Mapping[str, object]) -> KeyError:
    if not available:
        return KeyError(f"{path}: no tensor named {_short(name)}; the file has no tensors")
    sample = ", ".join(repr(k) for k in sorted(available)[:5])
    more = f" and {len(available) - 5} more" if len(available) > 5 else ""
    return KeyError(f"{path}: no tensor named {_short(name)}; it has {sample}{more}")
