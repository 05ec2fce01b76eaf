"""luminal.io.safetensors: round trips against the reference implementation,
bounds checks on corrupt files, atomic saving and sharded checkpoints."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from luminal.io.errors import CheckpointError
from luminal.io.safetensors import (
    SafetensorsFile,
    ShardedSafetensors,
    load_file,
    load_sharded,
    open_checkpoint,
    save_file,
)

ref_np = pytest.importorskip("safetensors.numpy")
ref = pytest.importorskip("safetensors")

DTYPES = [
    np.float64,
    np.float32,
    np.float16,
    np.int64,
    np.int32,
    np.int16,
    np.int8,
    np.uint8,
    np.bool_,
]


def sample(dtype: Any, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return np.asarray(rng.random(shape) < 0.5)
    if dt.kind == "f":
        return np.asarray(rng.standard_normal(shape) * 100).astype(dt)
    info = np.iinfo(dt)
    return np.asarray(rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True))


def all_dtypes() -> dict[str, np.ndarray]:
    return {f"t_{np.dtype(dt).name}": sample(dt, (3, 5), i) for i, dt in enumerate(DTYPES)}


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape
    np.testing.assert_array_equal(a, b, strict=True)


def write_raw(path: Path, header: Any, data: bytes = b"", length: int | None = None) -> Path:
    """A safetensors-shaped file from raw parts (header: JSON value or bytes)."""
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    n = len(blob) if length is None else length
    path.write_bytes(n.to_bytes(8, "little") + blob + data)
    return path


# ---------------------------------------------------------------- round trips


def test_roundtrip_every_dtype(tmp_path: Path) -> None:
    tensors = all_dtypes()
    path = tmp_path / "m.safetensors"
    save_file(tensors, path)
    loaded = load_file(path)
    assert sorted(loaded) == sorted(tensors)
    for name, arr in tensors.items():
        assert_same(loaded[name], arr)


def test_roundtrip_noncontiguous_and_big_endian(tmp_path: Path) -> None:
    base = sample(np.float32, (4, 6))
    tensors = {
        "transposed": base.T,
        "strided": base[::2, 1::3],
        "big_endian": base.astype(">f4"),
        "big_i64": np.arange(5, dtype=">i8"),
    }
    path = tmp_path / "m.safetensors"
    save_file(tensors, path)
    loaded = load_file(path)
    assert_same(loaded["transposed"], np.ascontiguousarray(base.T))
    assert_same(loaded["strided"], np.ascontiguousarray(base[::2, 1::3]))
    np.testing.assert_array_equal(loaded["big_endian"], base)
    assert loaded["big_endian"].dtype == np.float32
    np.testing.assert_array_equal(loaded["big_i64"], np.arange(5))
    assert ref_np.load_file(str(path))["big_endian"].tolist() == base.tolist()


def test_luminal_save_reference_load(tmp_path: Path) -> None:
    tensors = all_dtypes()
    path = tmp_path / "m.safetensors"
    save_file(tensors, path)
    loaded = ref_np.load_file(str(path))
    for name, arr in tensors.items():
        assert_same(loaded[name], arr)


def test_reference_numpy_save_luminal_load(tmp_path: Path) -> None:
    tensors = all_dtypes()
    path = tmp_path / "m.safetensors"
    ref_np.save_file(tensors, str(path))
    loaded = load_file(path)
    for name, arr in tensors.items():
        assert_same(loaded[name], arr)


def test_reference_torch_save_luminal_load(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    import safetensors.torch as ref_torch

    g = torch.Generator().manual_seed(0)
    tensors = {
        "bf16": torch.randn(7, 3, generator=g).to(torch.bfloat16),
        "bf16_special": torch.tensor(
            [0.0, -0.0, float("inf"), -float("inf"), 1e-40, 3.0e38], dtype=torch.bfloat16
        ),
        "f16": torch.randn(4, 4, generator=g).to(torch.float16),
        "f32": torch.randn(2, 3, 4, generator=g),
        "f64": torch.randn(5, generator=g, dtype=torch.float64),
        "i64": torch.randint(-(2**40), 2**40, (6,), generator=g),
        "i32": torch.randint(-(2**30), 2**30, (6,), generator=g, dtype=torch.int32),
        "i16": torch.randint(-(2**15), 2**15, (6,), generator=g, dtype=torch.int16),
        "i8": torch.randint(-128, 128, (6,), generator=g, dtype=torch.int8),
        "u8": torch.randint(0, 256, (6,), generator=g, dtype=torch.uint8),
        "bool": torch.rand(9, generator=g) < 0.5,
    }
    path = tmp_path / "m.safetensors"
    ref_torch.save_file(tensors, str(path), metadata={"format": "pt"})
    with SafetensorsFile(path) as f:
        assert f.dtype("bf16") == "BF16"
        assert f.metadata == {"format": "pt"}
        for name, t in tensors.items():
            got = f.get(name)
            want = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
            assert_same(got, want)
        # bf16 -> f32 widening is exact, so a round trip through torch agrees.
        back = torch.from_numpy(f.get("bf16").copy()).to(torch.bfloat16)
        assert torch.equal(back, tensors["bf16"])


def test_metadata_roundtrip(tmp_path: Path) -> None:
    meta = {"format": "np", "note": "ünïcode ✓", "empty": ""}
    path = tmp_path / "m.safetensors"
    save_file({"w": np.ones(3, np.float32)}, path, metadata=meta)
    with SafetensorsFile(path) as f:
        assert f.metadata == meta
    with ref.safe_open(str(path), framework="np") as rf:
        assert rf.metadata() == meta

    path2 = tmp_path / "ref.safetensors"
    ref_np.save_file({"w": np.ones(3, np.float32)}, str(path2), metadata=meta)
    with SafetensorsFile(path2) as f:
        assert f.metadata == meta


def test_no_metadata_means_empty(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"w": np.ones(3, np.float32)}, path)
    with SafetensorsFile(path) as f:
        assert f.metadata == {}


@pytest.mark.parametrize("shape", [(0,), (3, 0, 2), (0, 0), ()], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64, np.bool_])
def test_zero_size_and_scalar(tmp_path: Path, shape: tuple[int, ...], dtype: Any) -> None:
    tensors = {"a": sample(dtype, shape), "b": sample(dtype, shape, 1), "c": np.ones(2, dtype)}
    path = tmp_path / "m.safetensors"
    save_file(tensors, path)
    loaded = load_file(path)
    ref_loaded = ref_np.load_file(str(path))
    for name, arr in tensors.items():
        assert_same(loaded[name], arr)
        assert_same(ref_loaded[name], arr)


def test_empty_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({}, path)
    assert load_file(path) == {}
    assert ref_np.load_file(str(path)) == {}


def test_file_layout(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"b": np.zeros(3, np.int8), "a": np.zeros(2, np.float64)}, path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0
    header_text = raw[8 : 8 + n].decode()
    header = json.loads(header_text)
    assert header_text.rstrip(" ") == json.dumps(header, separators=(",", ":"))  # space-padded
    assert header["a"]["data_offsets"] == [0, 16]  # sorted by name
    assert header["b"]["data_offsets"] == [16, 19]
    assert len(raw) == 8 + n + 19


# ---------------------------------------------------------------- reader API


def test_reader_api(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    w = sample(np.float32, (2, 3))
    save_file({"w": w, "idx": np.arange(4, dtype=np.int64)}, path)
    with SafetensorsFile(path) as f:
        assert sorted(f.keys()) == ["idx", "w"]
        assert sorted(f) == ["idx", "w"]
        assert "w" in f and "nope" not in f and len(f) == 2
        assert f.shape("w") == (2, 3) and f.dtype("w") == "F32"
        assert f.nbytes == w.nbytes + 32
        got = f.get("w")
        assert_same(got, w)
        assert not got.flags.writeable  # zero-copy view of the read-only map
        with pytest.raises(ValueError):
            got[0, 0] = 1
        assert f.get("w", dtype=np.float32).base is not None
        assert f.get("w", dtype=np.float64).dtype == np.float64
        with pytest.raises(ValueError, match="only float"):
            f.get("idx", dtype=np.float32)
        assert_same(f.get("idx", dtype=np.int64), np.arange(4))
    assert "closed" in repr(f)
    assert_same(got, w)  # views outlive close()
    with pytest.raises(ValueError, match="closed"):
        f.get("w")


def test_float_conversions(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    import safetensors.torch as ref_torch

    x = torch.linspace(-3, 3, 13)
    path = tmp_path / "m.safetensors"
    ref_torch.save_file(
        {"bf16": x.to(torch.bfloat16), "f16": x.half(), "f64": x.double()}, str(path)
    )
    with SafetensorsFile(path) as f:
        for name, t in [("bf16", torch.bfloat16), ("f16", torch.float16), ("f64", torch.float64)]:
            got = f.get(name, dtype=np.float32)
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, x.to(t).float().numpy())
        assert f.get("bf16", dtype=np.float16).dtype == np.float16


def test_unknown_tensor_keyerror(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({f"layer{i}": np.zeros(1, np.float32) for i in range(8)}, path)
    with SafetensorsFile(path) as f, pytest.raises(KeyError) as e:
        f.get("missing")
    msg = str(e.value)
    assert "m.safetensors" in msg and "'missing'" in msg and "'layer0'" in msg and "3 more" in msg


def test_bool_with_bad_bytes(tmp_path: Path) -> None:
    path = write_raw(
        tmp_path / "b.safetensors",
        {"b": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}},
        b"\x00\x01\x07",
    )
    with SafetensorsFile(path) as f, pytest.raises(CheckpointError, match="b.safetensors"):
        f.get("b")


def test_checkpoint_error_shape() -> None:
    e = CheckpointError("dir/x.gguf", "truncated")
    assert isinstance(e, ValueError)
    assert str(e) == "dir/x.gguf: truncated"
    assert e.path == "dir/x.gguf" and e.problem == "truncated"
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is CheckpointError and str(e2) == str(e)


# ---------------------------------------------------------------- writer errors


@pytest.mark.parametrize(
    "value, exc",
    [
        (np.zeros(2, np.complex64), ValueError),
        (np.zeros(2, np.uint16), ValueError),
        (np.zeros(2, np.uint32), ValueError),
        (np.array(["a"]), ValueError),
        (np.array([None]), ValueError),
        ([1.0, 2.0], TypeError),
    ],
    ids=["complex64", "uint16", "uint32", "str", "object", "list"],
)
def test_save_rejects_unsupported(tmp_path: Path, value: Any, exc: type[Exception]) -> None:
    path = tmp_path / "m.safetensors"
    with pytest.raises(exc, match="'bad'"):
        save_file({"ok": np.zeros(1, np.float32), "bad": value}, path)
    assert list(tmp_path.iterdir()) == []


def test_save_rejects_bad_names_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    with pytest.raises(TypeError):
        save_file({1: np.zeros(1)}, path)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="reserved"):
        save_file({"__metadata__": np.zeros(1)}, path)
    with pytest.raises(TypeError):
        save_file({"a": np.zeros(1)}, path, metadata={"k": 1})  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- corrupt files


def _valid(tmp: Path) -> Path:
    path = tmp / "bad.safetensors"
    save_file({"a": np.arange(16, dtype=np.float32), "b": np.arange(4, dtype=np.int64)}, path)
    return path


def _truncate(fraction_of: Callable[[int, int], int]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = _valid(tmp)
        raw = path.read_bytes()
        n = int.from_bytes(raw[:8], "little")
        path.write_bytes(raw[: fraction_of(n, len(raw))])
        return path

    return make


def _entry(**fields: Any) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        info = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
        info.update(fields)
        info = {k: v for k, v in info.items() if v is not _DROP}
        return write_raw(tmp / "bad.safetensors", {"w": info}, bytes(16))

    return make


_DROP = object()


def _header(
    header: Any, data: bytes = bytes(16), length: int | None = None
) -> Callable[[Path], Path]:
    return lambda tmp: write_raw(tmp / "bad.safetensors", header, data, length)


CORRUPT: dict[str, tuple[Callable[[Path], Path], str]] = {
    "truncated_mid_data": (_truncate(lambda n, size: size - 10), "run past the end of the data"),
    "truncated_mid_header": (
        _truncate(lambda n, size: 8 + n // 2),
        "runs past the end of the file",
    ),
    "truncated_in_length": (_truncate(lambda n, size: 5), "too short"),
    "empty_file": (_truncate(lambda n, size: 0), "too short"),
    "header_longer_than_file": (_header({}, b"", length=4096), "runs past the end of the file"),
    "header_length_zero": (_header({}, length=0), "header length is 0"),
    "header_length_huge": (_header({}, length=2**62), "header length 4611686018427387904"),
    "not_json": (_header(b"{not json"), "not valid JSON"),
    "not_utf8": (_header(b'{"\xff\xfe": 1}'), "not valid UTF-8"),
    "json_list": (_header([]), "is a JSON array, expected an object"),
    "json_string": (_header(b'"hello"'), "is a JSON string"),
    "nan_constant": (_header(b'{"w": NaN}'), "not valid JSON"),
    "duplicate_key": (
        _header(
            b'{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},'
            b' "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}'
        ),
        "duplicate key 'w'",
    ),
    "metadata_not_str": (_header({"__metadata__": {"step": 3}}), "__metadata__ value for 'step'"),
    "metadata_list": (_header({"__metadata__": ["a"]}), "__metadata__ is a JSON array"),
    "entry_not_object": (_header({"w": [1, 2]}), "tensor 'w' is described by a JSON array"),
    "missing_fields": (_entry(dtype=_DROP, data_offsets=_DROP), "has no dtype, data_offsets"),
    "unknown_dtype": (_entry(dtype="F8_E4M3"), "tensor 'w' has unsupported dtype 'F8_E4M3'"),
    "dtype_not_str": (_entry(dtype=4), "unsupported dtype 4"),
    "negative_dim": (_entry(shape=[-2, -2]), "has -2, not a non-negative integer"),
    "float_dim": (_entry(shape=[2.0, 2]), "has 2.0, not a non-negative integer"),
    "bool_dim": (_entry(shape=[True, 4], data_offsets=[0, 16]), "has True"),
    "string_dim": (_entry(shape=["2", 2]), "has '2'"),
    "shape_not_list": (_entry(shape=4), "shape 4 is not a list"),
    "too_many_dims": (_entry(shape=[1] * 65), "dimensions"),
    "overflowing_shape": (_entry(shape=[2**40, 2**40, 2**40]), "too large"),
    "overflowing_empty_shape": (_entry(shape=[0, 2**62, 2**62], data_offsets=[0, 0]), "too large"),
    # 2 bytes a value as stored, 4 once get() widens BF16: numpy's "array is too big"
    "overflowing_empty_widened": (_entry(dtype="BF16", shape=[0, 2**62 - 1], data_offsets=[0, 0]), "too large"),
    "size_mismatch": (_entry(shape=[2, 3]), "(24 bytes) but data_offsets [0, 16] span 16 bytes"),
    "offsets_past_end": (
        _entry(shape=[2, 4], data_offsets=[0, 32]),
        "data_offsets [0, 32] run past the end of the data section (16 bytes)",
    ),
    "begin_after_end": (_entry(data_offsets=[16, 0]), "begin after they end"),
    "negative_begin": (_entry(data_offsets=[-16, 0]), "start before the data section"),
    "offsets_not_pair": (_entry(data_offsets=[0, 8, 16]), "not a pair of integers"),
    "offsets_float": (_entry(data_offsets=[0, 16.0]), "not a pair of integers"),
    "overlap": (
        _header(
            {
                "a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
            }
        ),
        "tensors 'a' [0, 12] and 'b' [8, 16] overlap",
    ),
    "overlap_identical": (
        _header(
            {
                "a": {"dtype": "I32", "shape": [4], "data_offsets": [0, 16]},
                "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
            }
        ),
        "overlap",
    ),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_file(tmp_path: Path, case: str) -> None:
    make, fragment = CORRUPT[case]
    path = make(tmp_path)
    with pytest.raises(CheckpointError) as e:
        SafetensorsFile(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: "), msg
    assert fragment in msg, msg
    assert len(msg) < 400, msg
    with pytest.raises(CheckpointError):
        load_file(path)


def test_zero_size_tensors_may_share_an_offset(tmp_path: Path) -> None:
    header = {
        "a": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},
        "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "c": {"dtype": "I8", "shape": [0, 3], "data_offsets": [4, 4]},
    }
    path = write_raw(tmp_path / "m.safetensors", header, np.float32(2.5).tobytes())
    loaded = load_file(path)
    assert loaded["a"].shape == (0,) and loaded["c"].shape == (0, 3)
    assert loaded["b"].tolist() == [2.5]


# ---------------------------------------------------------------- atomic save


def _failing_write(monkeypatch: pytest.MonkeyPatch) -> None:
    real = np.ascontiguousarray
    calls = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:  # header and first tensor already written
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "ascontiguousarray", flaky)


def _failing_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", boom)


def _failing_replace(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(src: Any, dst: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", boom)


def _interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "ascontiguousarray", boom)


@pytest.mark.parametrize(
    "break_it, exc",
    [
        (_failing_write, OSError),
        (_failing_fsync, OSError),
        (_failing_replace, PermissionError),
        (_interrupt, KeyboardInterrupt),
    ],
    ids=["write", "fsync", "replace", "interrupt"],
)
def test_atomic_save_keeps_old_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    break_it: Callable[[pytest.MonkeyPatch], None],
    exc: type[BaseException],
) -> None:
    path = tmp_path / "model.safetensors"
    old = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    save_file(old, path)
    before = path.read_bytes()

    break_it(monkeypatch)
    new: dict[str, np.ndarray] = {"w": np.ones((50, 50), np.float32), "x": np.zeros(9, np.int64)}
    with pytest.raises(exc):
        save_file(new, path)
    monkeypatch.undo()

    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    assert path.read_bytes() == before
    assert_same(load_file(path)["w"], old["w"])


def test_failed_first_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_fsync(monkeypatch)
    with pytest.raises(OSError):
        save_file({"w": np.ones(3, np.float32)}, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_while_views_alive(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"w": np.full(4, 1.0, np.float32)}, path)
    view = load_file(path)["w"]
    save_file({"w": np.full(4, 2.0, np.float32)}, path)
    assert view.tolist() == [1.0] * 4  # the old file's pages, not the new ones
    assert load_file(path)["w"].tolist() == [2.0] * 4


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_file_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    path = tmp_path / "m.safetensors"
    save_file({"w": np.ones(1, np.float32)}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    path.chmod(0o640)
    save_file({"w": np.ones(2, np.float32)}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# ---------------------------------------------------------------- sharded


def _sharded(tmp: Path, weight_map: dict[str, str] | None = None) -> Path:
    tmp.mkdir(exist_ok=True)
    save_file(
        {"a": np.arange(3, dtype=np.float32), "b": np.ones((2, 2), np.float16)},
        tmp / "model-00001-of-00002.safetensors",
    )
    (tmp / "sub").mkdir(exist_ok=True)
    save_file(
        {"c": np.arange(4, dtype=np.int64)}, tmp / "sub" / "model-00002-of-00002.safetensors"
    )
    if weight_map is None:
        weight_map = {
            "a": "model-00001-of-00002.safetensors",
            "b": "model-00001-of-00002.safetensors",
            "c": "sub/model-00002-of-00002.safetensors",
        }
    index = tmp / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": 44}, "weight_map": weight_map}))
    return index


def _check_sharded(ckpt: ShardedSafetensors) -> None:
    assert ckpt.keys() == ["a", "b", "c"] and len(ckpt) == 3 and "c" in ckpt
    assert ckpt.metadata == {"total_size": 44}
    assert ckpt.shape("b") == (2, 2) and ckpt.dtype("b") == "F16" and ckpt.dtype("c") == "I64"
    assert_same(ckpt.get("a"), np.arange(3, dtype=np.float32))
    assert_same(ckpt.get("b", dtype=np.float32), np.ones((2, 2), np.float32))
    assert_same(ckpt.get("c"), np.arange(4, dtype=np.int64))
    assert ckpt.nbytes == 12 + 8 + 32
    with pytest.raises(KeyError, match="model.safetensors.index.json"):
        ckpt.get("zzz")


def test_sharded_via_directory_and_index(tmp_path: Path) -> None:
    index = _sharded(tmp_path)
    with load_sharded(tmp_path) as ckpt:
        _check_sharded(ckpt)
    with load_sharded(index) as ckpt:
        _check_sharded(ckpt)
        assert len(ckpt.shard_files) == 2
    with pytest.raises(ValueError, match="closed"):
        ckpt.get("a")


def test_sharded_opens_shards_lazily(tmp_path: Path) -> None:
    _sharded(tmp_path)
    (tmp_path / "sub" / "model-00002-of-00002.safetensors").write_bytes(b"garbage!garbage!")
    with load_sharded(tmp_path) as ckpt:
        assert_same(ckpt.get("a"), np.arange(3, dtype=np.float32))
        with pytest.raises(CheckpointError, match="model-00002-of-00002.safetensors"):
            ckpt.get("c")


@pytest.mark.parametrize(
    "shard",
    [
        "../outside.safetensors",
        "sub/../../outside.safetensors",
        "..\\outside.safetensors",
        "/etc/passwd",
        "C:\\Windows\\x.safetensors",
        "",
    ],
)
def test_sharded_rejects_paths_outside(tmp_path: Path, shard: str) -> None:
    ckpt_dir = tmp_path / "ckpt"
    save_file({"a": np.zeros(1, np.float32)}, tmp_path / "outside.safetensors")
    index = _sharded(ckpt_dir, {"a": "model-00001-of-00002.safetensors", "evil": shard})
    with pytest.raises(CheckpointError, match="'evil'") as e:
        load_sharded(ckpt_dir)
    assert str(e.value).startswith(str(index))


def test_sharded_missing_shard_file(tmp_path: Path) -> None:
    _sharded(tmp_path, {"a": "model-00001-of-00002.safetensors", "z": "model-00009.safetensors"})
    with pytest.raises(CheckpointError, match="model-00009.safetensors.*does not exist"):
        load_sharded(tmp_path)


def test_sharded_tensor_missing_from_shard(tmp_path: Path) -> None:
    shard = "model-00001-of-00002.safetensors"
    _sharded(tmp_path, {"a": shard, "ghost": shard})
    with load_sharded(tmp_path) as ckpt:
        assert_same(ckpt.get("a"), np.arange(3, dtype=np.float32))
        with pytest.raises(CheckpointError, match="has no tensor 'ghost'") as e:
            ckpt.shape("ghost")
        assert str(e.value).startswith(str(tmp_path / "model-00001-of-00002.safetensors"))


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{oops", "not valid JSON"),
        ("[]", "JSON array"),
        ('{"metadata": {}}', "no weight_map"),
        ('{"weight_map": {"a": 3}}', "expected a file name"),
        ('{"weight_map": {}, "metadata": 7}', "metadata is a JSON number"),
    ],
)
def test_sharded_bad_index(tmp_path: Path, content: str, fragment: str) -> None:
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(content)
    with pytest.raises(CheckpointError, match=fragment) as e:
        load_sharded(index)
    assert str(e.value).startswith(str(index))


def test_open_checkpoint(tmp_path: Path) -> None:
    sharded_dir = tmp_path / "sharded"
    index = _sharded(sharded_dir)
    single_dir = tmp_path / "single"
    single_dir.mkdir()
    save_file({"a": np.arange(3, dtype=np.float32)}, single_dir / "model.safetensors")

    for path in (sharded_dir, index, single_dir, single_dir / "model.safetensors"):
        with open_checkpoint(path) as ckpt:
            assert_same(ckpt.get("a"), np.arange(3, dtype=np.float32))
    assert isinstance(open_checkpoint(sharded_dir), ShardedSafetensors)
    assert isinstance(open_checkpoint(single_dir), SafetensorsFile)
    with pytest.raises(FileNotFoundError):
        open_checkpoint(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither"):
        open_checkpoint(tmp_path / "empty")


def test_str_paths_and_numpy_scalars(tmp_path: Path) -> None:
    path = str(tmp_path / "m.safetensors")
    save_file({"w": np.ones(1, np.float32), "s": np.float16(1.5)}, path)
    loaded = load_file(path)
    assert loaded["w"].tolist() == [1.0]
    assert_same(loaded["s"], np.array(1.5, np.float16))
