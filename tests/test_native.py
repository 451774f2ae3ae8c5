"""Differential tests of the optional C extension ``featurepipe._speedups``.

Every compiled function is checked against an independent reference: the
``crc32c`` package for CRC-32C, a plain-Python TFRecord frame scanner for
``scan_records``, and protobuf's own ``Example.FromString`` for
``decode_columns``; and against its pure-Python twin in featurepipe (the code
that runs when the extension is not active), listed in :data:`TWINS` and looked
up strictly, so renaming a twin fails here instead of skipping its check.
Skipped when the extension is not built (a failure under ``CI=true``).
"""

from __future__ import annotations

import importlib
import os
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import crc32c as crc32c_pkg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurepipe.example.proto import example_pb2, feature_pb2

sp = pytest.importorskip("featurepipe._speedups")

# Every callable of the compiled module and its pure-Python twins ("module:attribute"):
# the code that does the same work when the extension is not active.
TWINS: list[tuple[str, str]] = [
    ("crc32c", "featurepipe.tfrecord._crc:crc32c_py"),
    ("_crc32c_software", "featurepipe.tfrecord._crc:crc32c_py"),
    ("masked_crc32c", "featurepipe.tfrecord._crc:masked_crc32c"),
    ("scan_records", "featurepipe.tfrecord._framing:scan_records_py"),
    ("scan_records", "featurepipe.tfrecord._framing:_count_scan_py"),  # count-only mode
    ("scan_frames", "featurepipe.tfrecord._framing:scan_records_py"),
    ("frame_records", "featurepipe.tfrecord._framing:frame_records_py"),
    ("decode_columns", "featurepipe.example._codec:_decode_columns_py"),
    ("decode_feature_lists", "featurepipe.example._sequence:_decode_feature_lists_py"),
    ("csv_cut", "featurepipe.convert._sources:iter_csv_batches"),
    ("csv_convert", "featurepipe.convert._encode:convert_batch"),
    ("csv_infer", "featurepipe.convert._infer:RawSchemaInferrer"),
    ("fingerprint64", "featurepipe.columns._hashing:fingerprint64"),
    ("columns_compile", "featurepipe.columns._transform:transform_features"),
    ("columns_run", "featurepipe.columns._transform:transform_features"),
    ("ColumnsRunner", "featurepipe.columns._transform:transform_features"),
]
# twins in a framework layer: importable only with the framework
_TWIN_NEEDS = {"featurepipe.beam": "apache_beam", "featurepipe.keras": "keras"}


def twin(path: str) -> Any:
    """The twin at ``"module:attribute"``; an ImportError or AttributeError, never None."""
    module, _, attribute = path.partition(":")
    for layer, framework in _TWIN_NEEDS.items():
        if module.startswith(layer + "."):
            pytest.importorskip(framework)
    return getattr(importlib.import_module(module), attribute)


def test_every_compiled_function_has_a_twin() -> None:
    compiled = {n for n in dir(sp) if not n.startswith("__") and callable(getattr(sp, n))}
    assert compiled == {name for name, _ in TWINS}


@pytest.mark.parametrize(("name", "path"), TWINS, ids=[f"{n}-{p}" for n, p in TWINS])
def test_twin_exists(name: str, path: str) -> None:
    assert callable(getattr(sp, name))
    assert callable(twin(path)), path


FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- CRC


def _masked(data: bytes) -> int:
    crc = crc32c_pkg.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_crc_known_vectors() -> None:
    assert sp.masked_crc32c(b"foo") == 0xFEBE8A61
    assert sp.crc32c(bytes(32)) == 0x8A9136AA
    assert sp.crc32c(b"123456789") == 0xE3069283
    assert sp.crc32c(b"") == 0
    assert sp.crc_backend in ("sse4.2", "armv8-crc", "software")


@pytest.mark.parametrize(
    "n",
    [0, 1, 7, 8, 9, 191, 192, 193, 255, 600, 767, 768, 769, 1000, 24575, 24576, 24589, 300_000],
)
def test_crc_matches_package_at_block_boundaries(n: int) -> None:
    data = os.urandom(n)
    want = crc32c_pkg.crc32c(data)
    assert sp.crc32c(data) == want
    assert sp._crc32c_software(data) == want
    assert sp.masked_crc32c(data) == _masked(data)
    # unaligned views take the same path
    assert sp.crc32c(memoryview(b"x" + data)[1:]) == want
    assert sp.crc32c(bytearray(data)) == want


@FAST
@given(st.binary(max_size=3000), st.binary(max_size=3000))
def test_crc_chains_like_the_package(a: bytes, b: bytes) -> None:
    assert sp.crc32c(b, sp.crc32c(a)) == crc32c_pkg.crc32c(a + b)
    assert sp._crc32c_software(b, sp._crc32c_software(a)) == crc32c_pkg.crc32c(a + b)


def test_table_crc_path_gives_the_same_results() -> None:
    code = (
        "import os, struct, crc32c\n"
        "from featurepipe import _speedups as sp\n"
        "assert sp.crc_backend == 'software', sp.crc_backend\n"
        "for n in (0, 5, 8, 600, 70000):\n"
        "    d = os.urandom(n)\n"
        "    assert sp.crc32c(d) == crc32c.crc32c(d)\n"
        "h = struct.pack('<Q', 3)\n"
        "c = crc32c.crc32c(h); m = (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF\n"
        "c2 = crc32c.crc32c(b'abc'); m2 = (((c2 >> 15) | (c2 << 17)) + 0xA282EAD8) & 0xFFFFFFFF\n"
        "f = h + struct.pack('<I', m) + b'abc' + struct.pack('<I', m2)\n"
        "assert sp.scan_records(f, 0, True, 9) == ([b'abc'], len(f), 0)\n"
        "assert sp.scan_records(f[:8] + b'xxxx' + f[12:], 0, True, 9)[2] == 1\n"
        "print('ok')\n"
    )
    env = dict(os.environ, FEATUREPIPE_NO_HW_CRC="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_crc_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="crc"):
        sp.crc32c(b"x", 1 << 32)
    with pytest.raises(TypeError):
        sp.masked_crc32c("text")


# --------------------------------------------------------------------------- scan_records


def _frame(data: bytes) -> bytes:
    head = struct.pack("<Q", len(data))
    return head + struct.pack("<I", _masked(head)) + data + struct.pack("<I", _masked(data))


def _ref_scan(
    buf: bytes, pos: int, verify_crc: bool, max_record_bytes: int
) -> tuple[list[bytes], int, int]:
    """Written from the format description, independent of the lead's code."""
    out: list[bytes] = []
    while True:
        if len(buf) - pos < 12:
            return out, pos, 0
        (length,) = struct.unpack_from("<Q", buf, pos)
        if _masked(buf[pos : pos + 8]) != struct.unpack_from("<I", buf, pos + 8)[0]:
            return out, pos, 1
        if length > max_record_bytes:
            return out, pos, 3
        if len(buf) - pos < 16 + length:
            return out, pos, 0
        data = buf[pos + 12 : pos + 12 + length]
        if verify_crc and _masked(data) != struct.unpack_from("<I", buf, pos + 12 + length)[0]:
            return out, pos, 2
        out.append(data)
        pos += 16 + length


_scan_twin: Callable[..., tuple[list[bytes], int, int]] = twin(
    "featurepipe.tfrecord._framing:scan_records_py"
)
_count_twin: Callable[..., tuple[int, int, int]] = twin(
    "featurepipe.tfrecord._framing:_count_scan_py"
)


def _check_scan(buf: bytes, pos: int, verify: bool, max_bytes: int) -> None:
    want = _ref_scan(buf, pos, verify, max_bytes)
    for view in (buf, bytearray(buf), memoryview(buf)):
        got = sp.scan_records(view, pos, verify, max_bytes)
        assert got == want
        assert all(type(r) is bytes for r in got[0])
    assert _scan_twin(buf, pos, verify, max_bytes) == want
    counted = (len(want[0]), want[1], want[2])
    assert sp.scan_records(buf, pos, verify, max_bytes, False) == counted
    assert _count_twin(buf, pos, verify, max_bytes) == counted


def test_scan_whole_file() -> None:
    recs = [b"", b"a", os.urandom(600), os.urandom(70_000), os.urandom(300_000)]
    buf = b"".join(_frame(r) for r in recs)
    assert sp.scan_records(buf, 0, True, 1 << 30) == (recs, len(buf), 0)


def test_scan_statuses() -> None:
    a, b = _frame(b"hello"), _frame(b"world!")
    buf = a + b
    assert sp.scan_records(buf, len(a), True, 100) == ([b"world!"], len(buf), 0)
    # a length CRC flip stops at the frame
    bad = bytearray(buf)
    bad[len(a) + 9] ^= 1
    assert sp.scan_records(bytes(bad), 0, True, 100) == ([b"hello"], len(a), 1)
    # a data CRC flip is found only when verifying
    bad = bytearray(buf)
    bad[len(a) + 12] ^= 1
    assert sp.scan_records(bytes(bad), 0, True, 100) == ([b"hello"], len(a), 2)
    assert sp.scan_records(bytes(bad), 0, False, 100)[2] == 0
    # too large, before looking for the data
    assert sp.scan_records(buf, 0, True, 4) == ([], 0, 3)
    # cut anywhere inside the second frame: need more
    for cut in range(len(a), len(buf)):
        assert sp.scan_records(buf[:cut], 0, True, 100) == ([b"hello"], len(a), 0)


def test_scan_huge_length_with_valid_crc_is_flat() -> None:
    head = struct.pack("<Q", 1 << 62)
    buf = head + struct.pack("<I", _masked(head)) + b"xx"
    assert sp.scan_records(buf, 0, True, 1 << 63 - 1) == ([], 0, 0)
    assert sp.scan_records(buf, 0, True, 1 << 20) == ([], 0, 3)
    head = struct.pack("<Q", (1 << 64) - 1)
    buf = head + struct.pack("<I", _masked(head)) + bytes(100)
    assert sp.scan_records(buf, 0, False, (1 << 63) - 1) == ([], 0, 3)


def test_scan_large_records_from_threads() -> None:
    # records >= 256 KiB are checked and copied without the GIL
    recs = [os.urandom(300_000 + i) for i in range(6)]
    buf = bytearray(b"".join(_frame(r) for r in recs))
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda _: sp.scan_records(buf, 0, True, 1 << 20), range(8)))
    assert all(out == (recs, len(buf), 0) for out in outs)
    buf.extend(b"x")  # the buffer export ended with each call
    assert sp.scan_records(buf, 0, True, 1 << 20) == (recs, len(buf) - 1, 0)


def test_scan_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="pos"):
        sp.scan_records(b"abc", 4, True, 10)
    with pytest.raises(ValueError, match="pos"):
        sp.scan_records(b"abc", -1, True, 10)
    with pytest.raises(ValueError, match="max_record_bytes"):
        sp.scan_records(b"abc", 0, True, -1)
    with pytest.raises(TypeError):
        sp.scan_records("abc", 0, True, 10)


@st.composite
def _damaged_files(draw: st.DrawFn) -> tuple[bytes, int, bool, int]:
    recs = draw(st.lists(st.binary(max_size=80), max_size=6))
    buf = bytearray(b"".join(_frame(r) for r in recs))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["flip", "cut", "append", "huge", "insert"]))
        if op == "flip" and buf:
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del buf[draw(st.integers(0, len(buf))) :]
        elif op == "append":
            buf += draw(st.binary(max_size=20))
        elif op == "huge":
            head = struct.pack("<Q", draw(st.integers(0, (1 << 64) - 1)))
            buf += head + struct.pack("<I", _masked(head)) + draw(st.binary(max_size=30))
        elif op == "insert":
            i = draw(st.integers(0, len(buf)))
            buf[i:i] = draw(st.binary(min_size=1, max_size=5))
    pos = draw(st.integers(0, len(buf)))
    return bytes(buf), pos, draw(st.booleans()), draw(st.integers(0, 100))


@FAST
@given(_damaged_files())
def test_scan_matches_reference_on_damaged_files(case: tuple[bytes, int, bool, int]) -> None:
    _check_scan(*case)


@FAST
@given(st.binary(max_size=200), st.booleans())
def test_scan_matches_reference_on_random_bytes(buf: bytes, verify: bool) -> None:
    for pos in range(min(len(buf), 20) + 1):
        _check_scan(buf, pos, verify, 1 << 40)


# --------------------------------------------------------------------------- decode_columns

_KINDS = {"bytes_list": 1, "float_list": 2, "int64_list": 3}


def _ref_columns(records: Sequence[bytes]) -> tuple[dict[str, Any] | None, int, str]:
    """Columns as protobuf decodes the records (the contract, independently written)."""
    n = len(records)
    cols: dict[str, dict[str, Any]] = {}
    for i, rec in enumerate(records):
        try:
            ex = example_pb2.Example.FromString(rec)
        except Exception:
            return None, i, "not_an_example"
        for name, feat in ex.features.feature.items():
            which = feat.WhichOneof("kind")
            kind = _KINDS[which] if which else 0
            col = cols.setdefault(
                name,
                {
                    "kind": 0,
                    "values": [],
                    "lengths": [0] * n,
                    "present": [0] * n,
                    "kindless": [0] * n,
                },
            )
            if kind and col["kind"] and col["kind"] != kind:
                return None, i, "mixed_kind"
            if not kind:
                col["kindless"][i] = 1
                continue
            col["kind"] = kind
            vals = list(getattr(feat, which).value)
            col["values"].extend(vals)
            col["lengths"][i] = len(vals)
            col["present"][i] = 1
    out: dict[str, Any] = {}
    for name, col in cols.items():
        kind, vals = col["kind"], col["values"]
        if kind == 0:
            packed: Any = b""
        elif kind == 2:
            packed = struct.pack(f"<{len(vals)}f", *vals)
        elif kind == 3:
            packed = struct.pack(f"<{len(vals)}q", *vals)
        else:
            packed = vals
        out[name] = (
            kind,
            packed,
            struct.pack(f"<{n}q", *col["lengths"]),
            bytes(col["present"]),
            bytes(col["kindless"]),
        )
    return out, -1, ""


def _parses(rec: bytes) -> bool:
    try:
        example_pb2.Example.FromString(rec)
    except Exception:
        return False
    return True


_decode_twin: Callable[[Sequence[bytes]], tuple[Any, int, str]] = twin(
    "featurepipe.example._codec:_decode_columns_py"
)


def _check_decode(records: list[bytes]) -> tuple[Any, int, str]:
    """C result == independent reference; C errors only where protobuf agrees."""
    got: tuple[Any, int, str] = sp.decode_columns(records)
    cols, err, reason = got
    if reason != "slow_path":
        assert _decode_twin(records) == got  # the project's pure-Python path
    if reason == "":
        assert err == -1
        assert got == _ref_columns(records)
        return got
    assert cols is None
    assert 0 <= err < len(records)
    assert reason in ("slow_path", "not_an_example", "mixed_kind")
    # everything before the reported record decodes fast and agrees
    assert sp.decode_columns(records[:err]) == _ref_columns(records[:err])
    if reason == "not_an_example":
        assert not _parses(records[err])
    elif reason == "mixed_kind":
        assert _ref_columns(records[: err + 1])[1:] == (err, "mixed_kind")
    return got


_names = st.sampled_from(["a", "b", "label", "", "ü", "名前", "x" * 200])
_float32 = st.floats(width=32, allow_nan=True)
_int64 = st.integers(-(1 << 63), (1 << 63) - 1)


@st.composite
def _examples(draw: st.DrawFn, kinds_by_name: bool = True) -> bytes:
    ex = example_pb2.Example()
    if draw(st.booleans()):
        ex.features.SetInParent()
    for name in draw(st.lists(_names, max_size=5, unique=True)):
        # one kind per name most of the time, so batches rarely mix kinds
        kind = (
            ["bytes", "float", "int64", None][sum(name.encode()) % 4]
            if kinds_by_name and draw(st.integers(0, 9))
            else draw(st.sampled_from(["bytes", "float", "int64", None]))
        )
        feat = ex.features.feature[name]
        if kind == "bytes":
            feat.bytes_list.value.extend(draw(st.lists(st.binary(max_size=20), max_size=4)))
            feat.bytes_list.SetInParent()
        elif kind == "float":
            feat.float_list.value.extend(draw(st.lists(_float32, max_size=4)))
            feat.float_list.SetInParent()
        elif kind == "int64":
            feat.int64_list.value.extend(draw(st.lists(_int64, max_size=4)))
            feat.int64_list.SetInParent()
    return ex.SerializeToString(deterministic=draw(st.booleans()))


def test_decode_columns_criteo_like() -> None:
    recs = []
    for i in range(50):
        feats: dict[str, feature_pb2.Feature] = {
            "label": feature_pb2.Feature(int64_list=feature_pb2.Int64List(value=[i % 2]))
        }
        for j in range(13):
            if (i + j) % 7:
                feats[f"I{j}"] = feature_pb2.Feature(
                    int64_list=feature_pb2.Int64List(value=[i * j - 5])
                )
        for j in range(26):
            feats[f"C{j}"] = feature_pb2.Feature(
                bytes_list=feature_pb2.BytesList(value=[f"{i * j:08x}".encode()])
            )
        feats["w"] = feature_pb2.Feature(float_list=feature_pb2.FloatList(value=[0.5] * (i % 3)))
        recs.append(
            example_pb2.Example(features=feature_pb2.Features(feature=feats)).SerializeToString()
        )
    cols, _, reason = _check_decode(recs)
    assert reason == ""
    kind, values, lengths, present, _ = cols["I3"]
    assert kind == 3
    assert sum(present) == sum(1 for i in range(50) if (i + 3) % 7)
    assert len(values) == 8 * sum(present)
    assert struct.unpack("<50q", lengths) == tuple(p for p in present)
    assert cols["C1"][1][:2] == [b"00000000", b"00000001"]
    assert cols["w"][0] == 2
    assert len(cols["w"][1]) == 4 * sum(i % 3 for i in range(50))


def test_decode_columns_empty_and_kindless() -> None:
    assert sp.decode_columns([]) == ({}, -1, "")
    ex = example_pb2.Example()
    ex.features.feature["k"].SetInParent()
    rec = ex.SerializeToString()
    cols, _, reason = _check_decode([b"", rec, rec])
    assert reason == ""
    assert cols["k"] == (0, b"", bytes(24), b"\0\0\0", b"\0\1\1")


def test_decode_columns_mixed_kind() -> None:
    a = example_pb2.Example()
    a.features.feature["x"].int64_list.value.append(1)
    b = example_pb2.Example()
    b.features.feature["x"].float_list.value.append(1.0)
    c = example_pb2.Example()
    c.features.feature["x"].SetInParent()
    recs = [x.SerializeToString() for x in (c, a, c, b)]
    assert _check_decode(recs) == (None, 3, "mixed_kind")
    # damage after the clash in the same record: the damage is reported
    assert sp.decode_columns([recs[1], recs[3] + b"\x0f"]) == (None, 1, "not_an_example")


@pytest.mark.parametrize(
    "rec",
    [
        b"\x0a\x00\x0a\x00",  # features twice (protobuf merges)
        b"\x10\x01",  # unknown field in Example
        b"\x0a\x04\x0a\x02\x12\x00",  # entry without key
        b"\x0a\x05\x0a\x03\x0a\x01a",  # entry without value
        b"\x0a\x07\x0a\x05\x12\x00\x0a\x01a",  # value before key
        b"\x0a\x0b\x0a\x09\x0a\x01a\x12\x04\x1a\x02\x08\x01",  # unpacked int64
        b"\x0a\x0e\x0a\x0c\x0a\x01a\x12\x07\x12\x05\x0d\x00\x00\x80\x3f",  # unpacked float
        b"\x0a\x0b\x0a\x09\x0a\x01a\x12\x04\x0a\x00\x1a\x00",  # two oneof members
        b"\x0a\x0e\x0a\x05\x0a\x01a\x12\x00\x0a\x05\x0a\x01a\x12\x00",  # duplicate key
        b"\x8a\x00\x00",  # over-long tag for field 1
        b"\x0b\x0c",  # group
    ],
)
def test_decode_columns_sends_unusual_encodings_to_protobuf(rec: bytes) -> None:
    assert _parses(rec)
    assert sp.decode_columns([rec]) == (None, 0, "slow_path")


@pytest.mark.parametrize(
    "rec",
    [
        b"\x0a\x05ab",  # length past the end
        b"\x0a\x80",  # truncated length
        b"\x00\x00",  # field number 0
        b"\x0e",  # wire type 6
        b"\x0a\x07\x0a\x05\x0a\x01\xff\x12\x00",  # key not UTF-8
        b"\x0a\x0c\x0a\x0a\x0a\x01a\x12\x05\x12\x03\x0a\x01\x00",  # float bytes not 4k
    ],
)
def test_decode_columns_rejects_what_protobuf_rejects(rec: bytes) -> None:
    assert not _parses(rec)
    assert sp.decode_columns([rec]) == (None, 0, "not_an_example")


@FAST
@given(st.lists(_examples(), max_size=8))
def test_decode_columns_matches_protobuf(records: list[bytes]) -> None:
    _, _, reason = _check_decode(records)
    assert reason in ("", "mixed_kind")  # canonical bytes never need the slow path


@st.composite
def _mutated_batches(draw: st.DrawFn) -> list[bytes]:
    records = draw(st.lists(_examples(), min_size=1, max_size=4))
    i = draw(st.integers(0, len(records) - 1))
    rec = bytearray(records[i])
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "set", "append"]))
        at = draw(st.integers(0, len(rec)))
        if op == "flip" and rec:
            rec[min(at, len(rec) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del rec[at:]
        elif op == "insert":
            rec[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "set" and rec:
            rec[min(at, len(rec) - 1)] = draw(st.integers(0, 255))
        elif op == "append":
            rec += draw(st.binary(min_size=1, max_size=6))
    records[i] = bytes(rec)
    return records


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_batches())
def test_decode_columns_never_disagrees_on_damaged_records(records: list[bytes]) -> None:
    _check_decode(records)


@FAST
@given(st.lists(st.binary(max_size=40), max_size=4))
def test_decode_columns_never_disagrees_on_random_bytes(records: list[bytes]) -> None:
    _check_decode(records)


def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


@st.composite
def _odd_wire(draw: st.DrawFn) -> bytes:
    """Example-shaped wire bytes with non-canonical but valid choices mixed in."""

    def field(num: int, payload: bytes) -> bytes:
        tag = _varint(num << 3 | 2)
        if draw(st.integers(0, 15)) == 0:
            tag = tag[:-1] + bytes([tag[-1] | 0x80, 0])  # over-long tag
        return tag + _varint(len(payload)) + payload

    def extra() -> bytes:
        if draw(st.integers(0, 9)):
            return b""
        return draw(st.sampled_from([b"\x20\x01", b"\x2a\x00", b"\x35\x00\x00\x00\x00"]))

    entries = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 3))
        if kind == 1:
            lst = b"".join(field(1, v) for v in draw(st.lists(st.binary(max_size=3), max_size=3)))
        elif kind == 2:
            vals = draw(st.lists(st.binary(min_size=4, max_size=4), max_size=3))
            if draw(st.booleans()):
                lst = field(1, b"".join(vals))
            else:
                lst = b"".join(b"\x0d" + v for v in vals)
        elif kind == 3:
            vals = [_varint(v) for v in draw(st.lists(_int64, max_size=3))]
            if draw(st.booleans()):
                lst = field(1, b"".join(vals))
            else:
                lst = b"".join(b"\x08" + v for v in vals)
        else:
            lst = b""
        feat = (field(kind, lst + extra()) if kind else b"") + extra()
        if draw(st.integers(0, 7)) == 0:
            feat += field(draw(st.integers(1, 3)), b"")  # second oneof member
        key = field(1, draw(_names).encode())
        value = field(2, feat)
        body = key + value if draw(st.integers(0, 7)) else value + key
        entries.append(field(1, body + extra()))
    features = b"".join(entries) + extra()
    out = field(1, features) + extra()
    if draw(st.integers(0, 7)) == 0:
        out += field(1, draw(st.sampled_from(entries or [b""])))
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_odd_wire(), min_size=1, max_size=4))
def test_decode_columns_never_disagrees_on_odd_encodings(records: list[bytes]) -> None:
    _check_decode(records)


def test_decode_columns_accepts_buffers_and_rejects_non_bytes() -> None:
    ex = example_pb2.Example()
    ex.features.feature["a"].int64_list.value.append(7)
    rec = ex.SerializeToString()
    want = sp.decode_columns([rec])
    assert sp.decode_columns((bytearray(rec),)) == want
    assert sp.decode_columns([memoryview(rec)]) == want
    with pytest.raises(TypeError):
        sp.decode_columns([rec, "text"])
    with pytest.raises(TypeError):
        sp.decode_columns(5)


# --------------------------------------------------------------------------- framing


@FAST
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_frame_records_matches_the_frame_layout(records: list[bytes]) -> None:
    want = b"".join(
        struct.pack("<Q", len(r))
        + struct.pack("<I", _masked(struct.pack("<Q", len(r))))
        + r
        + struct.pack("<I", _masked(r))
        for r in records
    )
    assert sp.frame_records(records) == want
    assert sp.frame_records(tuple(records)) == want


def test_frame_records_rejects_non_bytes() -> None:
    with pytest.raises(TypeError, match=r"records\[1\] must be bytes"):
        sp.frame_records([b"a", "b"])


@FAST
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_frame_records_matches_its_python_loop(records: list[bytes]) -> None:
    frame = twin("featurepipe.tfrecord._framing:frame_records_py")
    assert frame(records) == sp.frame_records(records)
