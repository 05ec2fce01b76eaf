"""GGUF reader: files written by the reference ``gguf`` package read back
exactly (metadata of every value type, tensors of every supported type,
dequantized bit-for-bit like ``gguf.quants.dequantize``), and hand-built
hostile files fail with a ``CheckpointError`` naming the file, before any
allocation proportional to a lying count."""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf import GGUFValueType as VT  # noqa: E402

from luminal.io.errors import CheckpointError  # noqa: E402
from luminal.io.gguf import GGML_TYPES, GGUFFile, GGUFTensorInfo, to_q8_0  # noqa: E402

# --------------------------------------------------------------------------
# Files written by gguf.GGUFWriter
# --------------------------------------------------------------------------

VOCAB = ["<unk>", "<s>", "</s>", "▁the", "héllo", "日本", "", " ", "\n", "🦙"]


def _random_k_blocks(rng: np.random.Generator, qtype: QT, shape: Tuple[int, ...]) -> np.ndarray:
    """Random k-quant / IQ4 bytes (gguf cannot quantize these) with finite scales."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    rows = int(np.prod(shape[:-1]))
    nb = shape[-1] // block_size
    raw = rng.integers(0, 256, size=(rows, nb, type_size), dtype=np.uint8)
    scales = rng.uniform(-0.1, 0.1, size=(rows, nb, 2)).astype(np.float16).view(np.uint8)
    if qtype in (QT.Q4_K, QT.Q5_K, QT.IQ4_XS, QT.IQ4_NL):
        raw[..., 0:4] = scales.reshape(rows, nb, 4)  # d, dmin (IQ4_XS: d, scale tops; IQ4_NL: d, quants)
    elif qtype == QT.Q2_K:
        raw[..., -4:] = scales.reshape(rows, nb, 4)  # d, dmin (the last fields)
    else:
        raw[..., -2:] = scales[..., 0:2].reshape(rows, nb, 2)  # d (last field)
    return raw.reshape(*shape[:-1], nb * type_size)


def write_reference_file(path: Path, rng: np.random.Generator, alignment: Optional[int] = None) -> Dict[str, Any]:
    """Write a GGUF with gguf.GGUFWriter; returns name -> (qtype, expected float32, stored array)."""
    w = gguf.GGUFWriter(str(path), arch="llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4_000_000_000)
    w.add_int32("t.i32", -2_000_000_000)
    w.add_float32("t.f32", 0.1)
    w.add_bool("t.true", True)
    w.add_bool("t.false", False)
    w.add_string("general.name", "tiny llama ☃")
    w.add_uint64("t.u64", 2**64 - 1)
    w.add_int64("t.i64", -(2**63))
    w.add_float64("t.f64", 1e300)
    w.add_array("tokenizer.ggml.tokens", VOCAB)
    w.add_array("t.scores", [0.5, -1.25, 3.0])
    w.add_array("t.i32s", [1, -2, 3])
    w.add_key_value("t.u64s", [1, 2**63, 5], VT.ARRAY, sub_type=VT.UINT64)
    w.add_key_value("t.u8s", [0, 255, 7], VT.ARRAY, sub_type=VT.UINT8)
    w.add_array("t.bools", [True, False, True])
    w.add_array("t.nested", [[1, 2, 3], [4]])
    w.add_array("t.nested_str", [["a", "b"], ["c"]])

    def x(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    tensors: Dict[str, Any] = {}

    def add(name: str, stored: np.ndarray, qtype: QT, expected: np.ndarray) -> None:
        w.add_tensor(name, stored, raw_dtype=None if qtype in (QT.F32, QT.F16) else qtype)
        tensors[name] = (qtype, expected.astype(np.float32), stored)

    a = x(7)
    add("f32_1d", a, QT.F32, a)
    a = x(3, 5).astype(np.float16)
    add("f16_2d", a, QT.F16, a)
    for name, qtype, shape in [
        ("bf16_3d", QT.BF16, (2, 3, 4)),
        ("q8_0_3d", QT.Q8_0, (2, 3, 64)),
        ("q8_0_1d", QT.Q8_0, (96,)),
        ("q4_0_4d", QT.Q4_0, (2, 2, 3, 32)),
        ("q4_0_2d", QT.Q4_0, (5, 64)),
        ("q5_0_2d", QT.Q5_0, (3, 96)),
    ]:
        q = gguf.quants.quantize(x(*shape), qtype)
        add(name, q, qtype, gguf.quants.dequantize(q, qtype))
    for name, qtype, shape in [
        ("q4_k_2d", QT.Q4_K, (3, 512)),
        ("q6_k_3d", QT.Q6_K, (2, 2, 256)),
        ("q4_k_1d", QT.Q4_K, (256,)),
        ("q6_k_4d", QT.Q6_K, (1, 2, 1, 512)),
        ("q5_k_2d", QT.Q5_K, (3, 512)),
        ("q3_k_2d", QT.Q3_K, (2, 768)),
        ("q2_k_3d", QT.Q2_K, (2, 1, 256)),
        ("iq4_xs_2d", QT.IQ4_XS, (3, 512)),
        ("iq4_nl_2d", QT.IQ4_NL, (4, 64)),
    ]:
        q = _random_k_blocks(rng, qtype, shape)
        add(name, q, qtype, gguf.quants.dequantize(q, qtype))
    a = x(4, 8)
    add("f32_2d", a, QT.F32, a)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensors


@pytest.fixture(scope="module")
def ref_file(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Dict[str, Any]]:
    path = tmp_path_factory.mktemp("gguf") / "ref.gguf"
    tensors = write_reference_file(path, np.random.default_rng(0))
    return path, tensors


def test_metadata_every_value_type(ref_file: Tuple[Path, Dict[str, Any]]) -> None:
    path, _ = ref_file
    with GGUFFile(path) as f:
        m = f.metadata
        assert f.version == 3
        assert f.architecture == "llama"
        assert m["general.architecture"] == "llama"
        assert m["t.u8"] == 200 and m["t.i8"] == -100
        assert m["t.u16"] == 60000 and m["t.i16"] == -30000
        assert m["t.u32"] == 4_000_000_000 and m["t.i32"] == -2_000_000_000
        assert m["t.f32"] == float(np.float32(0.1))
        assert m["t.true"] is True and m["t.false"] is False
        assert m["general.name"] == "tiny llama ☃"
        assert m["t.u64"] == 2**64 - 1 and m["t.i64"] == -(2**63)
        assert m["t.f64"] == 1e300
        assert m["tokenizer.ggml.tokens"] == VOCAB
        for key, values, dtype in [
            ("t.scores", [0.5, -1.25, 3.0], np.float32),
            ("t.i32s", [1, -2, 3], np.int32),
            ("t.u64s", [1, 2**63, 5], np.uint64),
            ("t.u8s", [0, 255, 7], np.uint8),
            ("t.bools", [True, False, True], np.bool_),
        ]:
            arr = m[key]
            assert isinstance(arr, np.ndarray) and arr.dtype == dtype and arr.tolist() == values, key
            assert arr.flags.writeable  # a copy, not a view of the mapping
        assert [a.tolist() for a in m["t.nested"]] == [[1, 2, 3], [4]]
        assert m["t.nested_str"] == [["a", "b"], ["c"]]
        for k in m:
            assert isinstance(k, str)


def test_tensors_match_reference(ref_file: Tuple[Path, Dict[str, Any]]) -> None:
    path, tensors = ref_file
    with GGUFFile(path) as f:
        assert f.tensor_names() == list(tensors)
        assert len(f) == len(tensors) and "q8_0_3d" in f and "nope" not in f
        for name, (qtype, expected, stored) in tensors.items():
            info = f.tensor_info(name)
            assert isinstance(info, GGUFTensorInfo)
            assert info.ggml_type == qtype.name and info.type_id == int(qtype)
            assert info.shape == expected.shape, name
            assert info.offset % f.alignment == 0
            assert info.nbytes == stored.nbytes
            raw = f.raw(name)
            assert raw.dtype == np.uint8 and not raw.flags.writeable
            assert raw.tobytes() == stored.tobytes(), name
            got = f.dequantize(name)
            assert got.dtype == np.float32 and got.shape == expected.shape, name
            assert got.flags.writeable
            # bit-exact, NaN-safe
            np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32), err_msg=name)


def test_cross_check_with_gguf_reader(ref_file: Tuple[Path, Dict[str, Any]]) -> None:
    path, _ = ref_file
    reader = gguf.GGUFReader(str(path))
    with GGUFFile(path) as f:
        assert f.tensor_names() == [t.name for t in reader.tensors]
        for t in reader.tensors:
            info = f.tensor_info(t.name)
            assert info.shape == tuple(int(d) for d in reversed(t.shape.tolist()))
            assert info.ggml_type == t.tensor_type.name
            assert info.offset == int(t.data_offset)
            assert info.nbytes == int(t.n_bytes)
        assert set(f.metadata) == set(reader.fields) - {
            "GGUF.version", "GGUF.tensor_count", "GGUF.kv_count"
        }  # fmt: skip


def test_quant_blocks_zero_copy(ref_file: Tuple[Path, Dict[str, Any]]) -> None:
    path, tensors = ref_file
    with GGUFFile(path) as f:
        d, qs = f.quant_blocks("q8_0_3d")
        assert d.dtype == np.float16 and d.shape == (6, 2)
        assert qs.dtype == np.int8 and qs.shape == (6, 2, 32)
        assert np.shares_memory(qs, f.raw("q8_0_3d")) and not qs.flags.writeable
        recon = (d.astype(np.float32)[..., None] * qs.astype(np.float32)).reshape(2, 3, 64)
        np.testing.assert_array_equal(recon, tensors["q8_0_3d"][1])

        d, qs = f.quant_blocks("q8_0_1d")
        assert d.shape == (1, 3) and qs.shape == (1, 3, 32)

        d, qs = f.quant_blocks("q4_0_4d")
        assert d.dtype == np.float16 and d.shape == (12, 1)
        assert qs.dtype == np.uint8 and qs.shape == (12, 1, 16)
        assert np.shares_memory(d, f.raw("q4_0_4d"))
        nib = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32) - 8
        recon4 = (d.astype(np.float32)[..., None] * nib).reshape(2, 2, 3, 32)
        np.testing.assert_array_equal(recon4, tensors["q4_0_4d"][1])

        with pytest.raises(CheckpointError, match="Q4_K"):
            f.quant_blocks("q4_k_2d")


def test_to_q8_0_keeps_the_values(ref_file: Tuple[Path, Dict[str, Any]]) -> None:
    """Q4_0, Q5_0 and IQ4_NL blocks rewritten as Q8_0 hold the same floats
    (gguf's own dequantizers on both sides), 34 bytes a block."""
    path, tensors = ref_file
    with GGUFFile(path) as f:
        for name in ("q4_0_2d", "q5_0_2d", "iq4_nl_2d"):
            q8 = to_q8_0(f.tensor_info(name).ggml_type, f.raw(name))
            assert q8.dtype == np.uint8 and q8.size == tensors[name][1].size // 32 * 34
            got = gguf.quants.dequantize(q8, QT.Q8_0).reshape(tensors[name][1].shape)
            np.testing.assert_array_equal(got, tensors[name][1], err_msg=name)
        with pytest.raises(ValueError, match="Q4_1 blocks have no exact Q8_0 form"):
            to_q8_0("Q4_1", f.raw("q4_0_2d"))


def test_view_close_and_errors(ref_file: Tuple[Path, Dict[str, Any]]) -> None:
    path, tensors = ref_file
    f = GGUFFile(path)
    v = f.view("f32_2d")
    assert v.dtype == np.float32 and v.shape == (4, 8) and not v.flags.writeable
    np.testing.assert_array_equal(v, tensors["f32_2d"][1])
    assert f.view("f16_2d").dtype == np.float16
    with pytest.raises(CheckpointError, match="Q8_0"):
        f.view("q8_0_1d")
    with pytest.raises(KeyError, match="nope"):
        f.tensor_info("nope")
    f.close()
    f.close()  # idempotent
    np.testing.assert_array_equal(v, tensors["f32_2d"][1])  # old views stay valid
    with pytest.raises(ValueError, match="closed"):
        f.raw("f32_2d")
    assert f.tensor_info("f32_2d").shape == (4, 8)


def test_custom_alignment_and_v2(tmp_path: Path) -> None:
    path = tmp_path / "a64.gguf"
    tensors = write_reference_file(path, np.random.default_rng(1), alignment=64)
    data = bytearray(path.read_bytes())
    with GGUFFile(path) as f:
        assert f.alignment == 64 and f.data_offset % 64 == 0
        for name in tensors:
            assert f.tensor_info(name).offset % 64 == 0
    data[4:8] = struct.pack("<I", 2)  # v2 has the same layout as v3
    (tmp_path / "v2.gguf").write_bytes(bytes(data))
    with GGUFFile(tmp_path / "v2.gguf") as f:
        assert f.version == 2
        np.testing.assert_array_equal(f.dequantize("q6_k_3d"), tensors["q6_k_3d"][1])
        for name in ("q5_k_2d", "q3_k_2d", "q2_k_3d", "iq4_xs_2d", "iq4_nl_2d", "q5_0_2d"):
            np.testing.assert_array_equal(f.dequantize(name), tensors[name][1])


def test_unsupported_type_fails_on_access(tmp_path: Path) -> None:
    w = gguf.GGUFWriter(str(tmp_path / "q4_1.gguf"), arch="llama")
    w.add_tensor("q4_1", gguf.quants.quantize(np.ones((2, 32), np.float32), QT.Q4_1), raw_dtype=QT.Q4_1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with GGUFFile(tmp_path / "q4_1.gguf") as f:
        assert f.tensor_info("q4_1").shape == (2, 32) and f.tensor_info("q4_1").ggml_type == "Q4_1"
        with pytest.raises(CheckpointError, match="'q4_1'.*Q4_1"):
            f.dequantize("q4_1")


def test_big_vocab_parses_fast(tmp_path: Path) -> None:
    n = 200_000
    w = gguf.GGUFWriter(str(tmp_path / "vocab.gguf"), arch="llama")
    tokens = [f"tok{i}" for i in range(n)]
    w.add_array("tokenizer.ggml.tokens", tokens)
    w.add_array("tokenizer.ggml.scores", [float(i) for i in range(n)])
    w.add_array("tokenizer.ggml.token_type", [1] * n)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    t0 = time.perf_counter()
    with GGUFFile(tmp_path / "vocab.gguf") as f:
        elapsed = time.perf_counter() - t0
        assert f.metadata["tokenizer.ggml.tokens"] == tokens
        assert f.metadata["tokenizer.ggml.scores"].shape == (n,)
        assert f.metadata["tokenizer.ggml.token_type"].dtype == np.int32
    assert elapsed < 2.0, elapsed


# --------------------------------------------------------------------------
# Hand-built files (every field under control)
# --------------------------------------------------------------------------


def gstr(s: "str | bytes", length: Optional[int] = None) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b) if length is None else length) + b


def kv(key: "str | bytes", vtype: int, payload: bytes) -> bytes:
    return gstr(key) + struct.pack("<I", vtype) + payload


def kv_u32(key: str, v: int) -> bytes:
    return kv(key, VT.UINT32, struct.pack("<I", v))


def ti(name: str, dims: Sequence[int], ttype: int, offset: int, n_dims: Optional[int] = None) -> bytes:
    n = len(dims) if n_dims is None else n_dims
    return (
        gstr(name)
        + struct.pack("<I", n)
        + b"".join(struct.pack("<Q", d) for d in dims)
        + struct.pack("<I", ttype)
        + struct.pack("<Q", offset)
    )


def build(
    kvs: Sequence[bytes] = (),
    tis: Sequence[bytes] = (),
    data: bytes = b"",
    *,
    magic: bytes = b"GGUF",
    version: int = 3,
    tensor_count: Optional[int] = None,
    kv_count: Optional[int] = None,
    alignment: int = 32,
) -> bytes:
    head = magic + struct.pack(
        "<IQQ", version, len(tis) if tensor_count is None else tensor_count, len(kvs) if kv_count is None else kv_count
    )
    body = head + b"".join(kvs) + b"".join(tis)
    if data:
        body += b"\0" * (-len(body) % alignment) + data
    return body


F32_DATA = np.arange(8, dtype=np.float32).tobytes()


def good_parts() -> Tuple[List[bytes], List[bytes], bytes]:
    kvs = [
        kv("general.architecture", VT.STRING, gstr("llama")),
        kv("t.arr", VT.ARRAY, struct.pack("<IQ", VT.INT16, 3) + np.array([1, -2, 3], "<i2").tobytes()),
        kv("t.strs", VT.ARRAY, struct.pack("<IQ", VT.STRING, 2) + gstr("ab") + gstr("c")),
    ]
    tis = [ti("a", [4, 1], 0, 0), ti("b", [4], 0, 32)]
    data = F32_DATA[:16] + b"\0" * 16 + F32_DATA[16:]
    return kvs, tis, data


def open_bytes(tmp_path: Path, data: bytes, name: str = "hostile.gguf") -> GGUFFile:
    path = tmp_path / name
    path.write_bytes(data)
    return GGUFFile(path)


def expect_error(tmp_path: Path, data: bytes, match: str) -> CheckpointError:
    path = tmp_path / "hostile.gguf"
    path.write_bytes(data)
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=match) as ei:
        GGUFFile(path)
    assert time.perf_counter() - t0 < 1.0  # no huge allocation or loop first
    msg = str(ei.value)
    assert msg.startswith(str(path)) and "hostile.gguf" in msg, msg
    return ei.value


def test_hand_built_file_reads(tmp_path: Path) -> None:
    kvs, tis, data = good_parts()
    with open_bytes(tmp_path, build(kvs, tis, data)) as f:
        assert f.architecture == "llama"
        assert f.metadata["t.arr"].tolist() == [1, -2, 3]
        assert f.metadata["t.strs"] == ["ab", "c"]
        assert f.tensor_info("a").shape == (1, 4)
        np.testing.assert_array_equal(f.dequantize("a"), [[0, 1, 2, 3]])
        np.testing.assert_array_equal(f.dequantize("b"), [4, 5, 6, 7])
    with open_bytes(tmp_path, build()) as f:  # header only: no tensors, no metadata
        assert f.metadata == {} and f.tensor_names() == [] and f.architecture is None


def test_bad_magic(tmp_path: Path) -> None:
    expect_error(tmp_path, build(magic=b"GGUG"), "not a GGUF file")
    expect_error(tmp_path, b"PK\x03\x04" + b"\0" * 40, "magic")
    expect_error(tmp_path, b"", "empty")


@pytest.mark.parametrize("version", [0, 1, 99, 2**32 - 1])
def test_bad_version(tmp_path: Path, version: int) -> None:
    expect_error(tmp_path, build(version=version), f"version {version}\\b")


def test_big_endian_version(tmp_path: Path) -> None:
    expect_error(tmp_path, build(version=0x03000000), "big-endian")


def test_every_truncation_fails(tmp_path: Path) -> None:
    kvs, tis, data = good_parts()
    full = build(kvs, tis, data)
    for n in range(len(full)):
        path = tmp_path / "cut.gguf"
        path.write_bytes(full[:n])
        with pytest.raises(CheckpointError) as ei:
            GGUFFile(path)
        assert str(ei.value).startswith(str(path)), (n, str(ei.value))


def test_truncation_messages_say_what(tmp_path: Path) -> None:
    kvs, tis, data = good_parts()
    full = build(kvs, tis, data)
    header = 4 + 4 + 8 + 8
    kv_end = header + sum(map(len, kvs))
    ti_end = kv_end + sum(map(len, tis))
    cases = [
        (2, "magic"),
        (6, "truncated while reading the version"),
        (header - 3, "truncated while reading the metadata key/value count"),
        (header + 4, "key/value count 3 is impossible"),
        # early in the metadata, the counts alone already need more than is left
        (header + 12, "key/value count 3 is impossible"),
        (header + 8 + 20 + 2, "key/value count 3 is impossible"),
        (kv_end - 1, "element 1 of the value of metadata key 't.strs'"),
        (kv_end + 5, "truncated while reading the length of the name of tensor #0"),
        (kv_end + 8 + 1 + 6, "dim 0 of tensor 'a'"),
        (ti_end - 2, "data offset of tensor 'b'"),
        (len(full) - 1, "tensor 'b'.*file is only"),
        (ti_end, "tensor 'a'.*file is only"),
    ]
    for n, match in cases:
        expect_error(tmp_path, full[:n], match)


def test_lying_counts(tmp_path: Path) -> None:
    kvs, tis, data = good_parts()
    expect_error(tmp_path, build(kvs, tis, data, tensor_count=2**60), "tensor count 1152921504606846976 is impossible")
    expect_error(tmp_path, build(kvs, tis, data, tensor_count=2**64 - 1), "tensor count")
    expect_error(tmp_path, build(kvs, tis, data, kv_count=2**60), "key/value count 1152921504606846976 is impossible")
    # one more than present: reads past the infos, then fails on what it finds there
    expect_error(tmp_path, build(kvs, tis, data, tensor_count=3), "tensor")
    partial_info = gstr("c") + struct.pack("<IQI", 1, 8, 0)  # ends before the offset
    expect_error(tmp_path, build(kvs, tis, tensor_count=3) + partial_info, "truncated while reading the data offset")


def test_huge_string_lengths(tmp_path: Path) -> None:
    _, tis, data = good_parts()
    n = 2**40
    expect_error(tmp_path, build([gstr("k", n) + b"x" * 20]), f"metadata key #0 claims a length of {n}")
    bad_value = kv("k", VT.STRING, gstr("v", n))
    expect_error(tmp_path, build([bad_value], tis, data), f"value of metadata key 'k' claims a length of {n}")
    bad_name = gstr("a", n) + ti("a", [4, 1], 0, 0)[9:]
    expect_error(tmp_path, build([], [bad_name], data), f"name of tensor #0 claims a length of {n}")
    in_array = kv("k", VT.ARRAY, struct.pack("<IQ", VT.STRING, 2) + gstr("a") + gstr("b", n))
    expect_error(tmp_path, build([in_array], tis, data), f"element 1 of .* claims a length of {n}")


@pytest.mark.parametrize("etype", [VT.UINT8, VT.FLOAT64, VT.BOOL, VT.STRING, VT.ARRAY])
def test_huge_array_length(tmp_path: Path, etype: int) -> None:
    _, tis, data = good_parts()
    n = 2**50
    arr = kv("k", VT.ARRAY, struct.pack("<IQ", etype, n) + b"\0" * 64)
    expect_error(tmp_path, build([arr], tis, data), f"claims {n} elements")
    nested = kv("k", VT.ARRAY, struct.pack("<IQ", VT.ARRAY, 1) + struct.pack("<IQ", etype, n) + b"\0" * 64)
    expect_error(tmp_path, build([nested], tis, data), f"element 0 of the value of metadata key 'k' claims {n}")


def test_bad_values(tmp_path: Path) -> None:
    expect_error(tmp_path, build([kv("k", 13, b"\0" * 8)]), "unknown value type 13")
    expect_error(tmp_path, build([kv("k", VT.ARRAY, struct.pack("<IQ", 77, 1) + b"\0" * 8)]), "unknown element type 77")
    deep = struct.pack("<IQ", VT.ARRAY, 1) * 40 + struct.pack("<IQ", VT.UINT8, 0)
    expect_error(tmp_path, build([kv("k", VT.ARRAY, deep)]), "nested more than")
    expect_error(tmp_path, build([kv(b"\xff\xfe", VT.UINT8, b"\1")]), "not valid UTF-8")
    expect_error(tmp_path, build([kv_u32("k", 1), kv_u32("k", 2)]), "duplicate metadata key 'k'")


def test_non_utf8_string_value_kept(tmp_path: Path) -> None:
    with open_bytes(tmp_path, build([kv("k", VT.STRING, gstr(b"a\xffb"))])) as f:
        assert f.metadata["k"].encode("utf-8", "surrogateescape") == b"a\xffb"


@pytest.mark.parametrize("n_dims", [0, 5, 9])
def test_bad_n_dims(tmp_path: Path, n_dims: int) -> None:
    dims = [1] * n_dims
    expect_error(tmp_path, build([], [ti("t", dims, 0, 0)], F32_DATA), f"tensor 't' has n_dims {n_dims}")


def test_bad_tensor_infos(tmp_path: Path) -> None:
    e = expect_error(tmp_path, build([], [ti("t", [8], 0, 64)], F32_DATA), "tensor 't'.*file is only")
    assert "F32" in str(e)
    expect_error(tmp_path, build([], [ti("t", [8], 0, 2**64 - 32)], F32_DATA), "tensor 't'.*file is only")
    expect_error(tmp_path, build([], [ti("t", [2**62, 2**62], 0, 0)], F32_DATA), "file is only")
    expect_error(tmp_path, build([], [ti("t", [2**63], 0, 0)], F32_DATA), "negative")
    # zero elements, so no bytes to check, but no array has that shape
    expect_error(tmp_path, build([], [ti("t", [0, 2**61], 0, 0)], F32_DATA), "no elements, yet too large")
    expect_error(tmp_path, build([], [ti("t", [32, 0, 2**60], 8, 0)], F32_DATA), "no elements, yet too large")
    expect_error(tmp_path, build([], [ti("t", [4], 0, 4)], F32_DATA), "offset 4, not a multiple of the alignment 32")
    expect_error(tmp_path, build([], [ti("t", [8], 4, 0)], F32_DATA), "tensor 't' has unknown ggml type id 4")
    expect_error(tmp_path, build([], [ti("t", [8], 2**31, 0)], F32_DATA), f"unknown ggml type id {2**31}")
    expect_error(tmp_path, build([], [ti("t", [16, 2], 8, 0)], b"\0" * 68), "row of 16 elements.*block size 32")
    expect_error(
        tmp_path, build([], [ti("t", [4], 0, 0), ti("t", [4], 0, 0)], F32_DATA), "duplicate tensor name 't'"
    )


@pytest.mark.parametrize("alignment", [0, 3, 48, 2**31 + 1])
def test_bad_alignment(tmp_path: Path, alignment: int) -> None:
    data = build([kv_u32("general.alignment", alignment)], [ti("t", [8], 0, 0)], F32_DATA)
    expect_error(tmp_path, data, f"general.alignment must be a non-zero power of two, got {alignment}")


def test_alignment_wrong_type(tmp_path: Path) -> None:
    data = build([kv("general.alignment", VT.STRING, gstr("32"))])
    expect_error(tmp_path, data, "general.alignment must be")
    data = build([kv("general.alignment", VT.FLOAT32, struct.pack("<f", 32.0))])
    expect_error(tmp_path, data, "general.alignment must be")


def test_alignment_respected(tmp_path: Path) -> None:
    for alignment in (1, 8, 256):
        tis = [ti("t", [4], 0, 0)]
        data = build([kv_u32("general.alignment", alignment)], tis, F32_DATA[:16], alignment=alignment)
        with open_bytes(tmp_path, data) as f:
            assert f.data_offset % alignment == 0
            np.testing.assert_array_equal(f.dequantize("t"), [0, 1, 2, 3])


def test_type_table_matches_gguf() -> None:
    for tid, t in GGML_TYPES.items():
        qt = QT(tid)
        assert qt.name == t.name
        assert gguf.GGML_QUANT_SIZES[qt] == (t.block_size, t.type_size)
