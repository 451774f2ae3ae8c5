"""Damaged and hostile TFRecord files, made from the golden files TensorFlow wrote.

Each reason a `featurepipe.errors.DataError` can carry is produced here by
damaging ``tests/testdata/golden.tfrecord*`` (TF 2.21 output) byte by byte,
bit by bit, or cut by cut, and checked in both modes: ``on_corrupt="raise"``
(an error naming the file, the record index and the offset where that record
starts, after exactly the records before it) and ``on_corrupt="skip"`` (every
other intact record, with exact skipped ranges). See
``shared/reference/bad-inputs.md`` §1, §4 and §5 (rows 1-26 and 30).

Reading tests run with both scan loops: the pure-Python
``scan_records_py`` and the compiled one when ``featurepipe._speedups`` is
built.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from featurepipe.errors import (
    CorruptionBudgetError,
    CorruptRecordError,
    DataError,
    ExampleDecodeError,
    RecordTooLargeError,
)
from featurepipe.example._codec import decode_example, decode_examples
from featurepipe.tfrecord import (
    CorruptionReport,
    Record,
    SkippedRange,
    TFRecordWriter,
    _framing,
    _reader,
    iter_records,
    read_records,
)
from featurepipe.tfrecord._crc import masked_crc32c
from tests.conftest import TESTDATA

GOLDEN = (TESTDATA / "golden.tfrecord").read_bytes()
GOLDEN_GZ = (TESTDATA / "golden.tfrecord.gz").read_bytes()
GOLDEN_ZLIB = (TESTDATA / "golden.tfrecord.zlib").read_bytes()
COMPRESSED = {"gzip": GOLDEN_GZ, "zlib": GOLDEN_ZLIB}


def _layout(data: bytes) -> tuple[list[int], list[bytes]]:
    """Frame start offsets (plus the end) and payloads, parsed independently of the reader."""
    starts, payloads, pos = [], [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("<Q", data, pos)
        starts.append(pos)
        payloads.append(data[pos + 12 : pos + 12 + n])
        pos += n + 16
    assert pos == len(data)
    return [*starts, pos], payloads


STARTS, RECORDS = _layout(GOLDEN)  # 4 records: 3 small ones and one of 76825 bytes
N = len(RECORDS)
NAME = "golden-damaged.tfrecord"


def _speedups_scan() -> Any:
    """The compiled scan loop, None when the extension is not built (a rename fails)."""
    try:
        from featurepipe import _speedups
    except ImportError:
        return None
    return _speedups.scan_records


@pytest.fixture(params=["py", "native"])
def scan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with the pure-Python scan loop, then with the compiled one."""
    if request.param == "py":
        monkeypatch.setattr(_framing, "scan_records", _framing.scan_records_py)
    else:
        fn = _speedups_scan()
        if fn is None:
            pytest.skip("featurepipe._speedups is not built")
        monkeypatch.setattr(_framing, "scan_records", fn)
    return str(request.param)


class Named(io.BytesIO):
    """An in-memory file with a name, so errors can name it without disk I/O."""

    def __init__(self, data: bytes, name: str = NAME) -> None:
        super().__init__(data)
        self.name = name


def read_all(data: bytes, **kw: Any) -> tuple[list[Record], DataError | None]:
    """Records read before the error, and the error (or None for a clean end)."""
    out: list[Record] = []
    try:
        for r in iter_records(Named(data), **kw):
            out.append(r)
    except DataError as e:
        return out, e
    return out, None


def read_skip(data: bytes, **kw: Any) -> tuple[list[Record], CorruptionReport]:
    report = CorruptionReport()
    return list(iter_records(Named(data), on_corrupt="skip", report=report, **kw)), report


def flipped(data: bytes, pos: int, mask: int = 0xFF) -> bytes:
    b = bytearray(data)
    b[pos] ^= mask
    return bytes(b)


def record_at(pos: int) -> int:
    return max(k for k in range(N) if STARTS[k] <= pos)


def expected_flip_reasons(pos: int) -> set[str]:
    k = record_at(pos)
    if pos - STARTS[k] >= 12:
        return {"data_crc_mismatch"}
    # A damaged header of the *last* record cannot be told from stray bytes
    # at the end of the file (nothing after it verifies).
    return {"length_crc_mismatch", "trailing_bytes"} if k == N - 1 else {"length_crc_mismatch"}


def check_strict(data: bytes, k: int, reasons: set[str], **kw: Any) -> DataError:
    """The read raises at record ``k`` (offset STARTS[k]) after exactly records 0..k-1."""
    got, err = read_all(data, **kw)
    assert err is not None, "damage read as a clean end"
    assert isinstance(err, CorruptRecordError)
    assert [r.data for r in got] == RECORDS[:k]
    assert (err.path, err.record, err.offset) == (NAME, k, STARTS[k]), err
    assert err.reason in reasons, err
    assert NAME in str(err) and f"record {k}" in str(err) and f"offset {STARTS[k]}" in str(err)
    return err


def _positions() -> list[int]:
    """Every byte of the three small records and of each header and footer; a stride
    through the 76 KB payload of the last record."""
    pos = set(range(STARTS[3]))
    for k in range(N):
        pos.update(range(STARTS[k], STARTS[k] + 12))
        pos.update(range(STARTS[k + 1] - 4, STARTS[k + 1]))
    pos.update(range(STARTS[3] + 12, STARTS[4] - 4, 97))
    return sorted(pos)


# --------------------------------------------------------------------------- sanity


def test_golden_layout_is_what_the_tests_assume(scan: str) -> None:
    assert N == 4 and len(RECORDS[3]) > 70_000
    got, err = read_all(GOLDEN)
    assert err is None
    assert [(r.data, r.index, r.offset, r.path) for r in got] == [
        (RECORDS[k], k, STARTS[k], NAME) for k in range(N)
    ]


# --------------------------------------------------------------------------- flips (rows 1-3)


def test_every_flipped_byte_raises_at_its_record(scan: str) -> None:
    for pos in _positions():
        k = record_at(pos)
        check_strict(flipped(GOLDEN, pos), k, expected_flip_reasons(pos))


def test_every_flipped_byte_skips_exactly_its_record(scan: str) -> None:
    for pos in _positions():
        k = record_at(pos)
        got, report = read_skip(flipped(GOLDEN, pos))
        assert [r.data for r in got] == RECORDS[:k] + RECORDS[k + 1 :], pos
        (reason,) = {s.reason for s in report.skipped}
        assert reason in expected_flip_reasons(pos)
        assert report.skipped == [
            SkippedRange(NAME, k, STARTS[k], STARTS[k + 1] - STARTS[k], reason)
        ]
        assert report.records_read == N - 1 and report.bytes_skipped == STARTS[k + 1] - STARTS[k]
        # Offsets of the records kept are their true offsets.
        assert [r.offset for r in got] == [STARTS[j] for j in range(N) if j != k]
        if reason == "data_crc_mismatch":
            # The length verified: exactly one record lost, indices stay true.
            assert [r.index for r in got] == [j for j in range(N) if j != k]
        else:
            # After a resync the number lost is unknown: the next record gets k.
            assert [r.index for r in got] == list(range(N - 1))


def test_every_bit_of_every_header(scan: str) -> None:
    for k in range(N):
        for bit in range(96):
            pos = STARTS[k] + bit // 8
            data = flipped(GOLDEN, pos, 1 << (bit % 8))
            check_strict(data, k, expected_flip_reasons(pos))
            got, report = read_skip(data)
            assert [r.data for r in got] == RECORDS[:k] + RECORDS[k + 1 :]
            assert [(s.offset, s.length) for s in report.skipped] == [
                (STARTS[k], STARTS[k + 1] - STARTS[k])
            ]


def test_bit_62_of_a_length_is_a_length_crc_error(scan: str) -> None:
    err = check_strict(flipped(GOLDEN, STARTS[1] + 7, 0x40), 1, {"length_crc_mismatch"})
    assert "CRC" in err.detail


def test_verify_crc_false_still_checks_every_length(scan: str) -> None:
    # A data flip passes unnoticed (that is what verify_crc=False means) ...
    got, err = read_all(flipped(GOLDEN, STARTS[1] + 20), verify_crc=False)
    assert err is None and len(got) == N
    # ... but a length flip never does: it guards every allocation.
    check_strict(flipped(GOLDEN, STARTS[1] + 3), 1, {"length_crc_mismatch"}, verify_crc=False)


def test_error_names_a_real_path(tmp_path: Any, scan: str) -> None:
    p = tmp_path / "bad.tfrecord"
    p.write_bytes(flipped(GOLDEN, STARTS[2] + 13))
    got = []
    with pytest.raises(CorruptRecordError) as ei:
        for r in read_records(str(p)):
            got.append(r)
    assert got == RECORDS[:2]
    e = ei.value
    assert (e.path, e.record, e.offset, e.reason) == (str(p), 2, STARTS[2], "data_crc_mismatch")
    assert str(p) in str(e)


# --------------------------------------------------------------------------- truncation (4, 5)


def _cut_points() -> list[int]:
    return sorted(
        set(range(STARTS[3] + 64))
        | set(range(STARTS[4] - 64, STARTS[4] + 1))
        | set(range(STARTS[3], STARTS[4], 41))
    )


def _cut_reason(cut: int) -> tuple[int, str]:
    k = record_at(cut)
    rel = cut - STARTS[k]
    end = STARTS[k + 1] - STARTS[k]
    return (
        k,
        "truncated_header"
        if rel < 12
        else "truncated_data"
        if rel < end - 4
        else "truncated_footer",
    )


def test_truncation_anywhere_is_never_a_clean_end(scan: str) -> None:
    for cut in _cut_points():
        data = GOLDEN[:cut]
        if cut in STARTS:
            got, err = read_all(data)
            assert err is None and [r.data for r in got] == RECORDS[: STARTS.index(cut)]
            continue
        k, reason = _cut_reason(cut)
        check_strict(data, k, {reason})


def test_truncation_in_skip_mode_counts_one_tail(scan: str) -> None:
    for cut in _cut_points():
        got, report = read_skip(GOLDEN[:cut])
        k = record_at(cut) if cut < STARTS[N] else N
        assert [r.data for r in got] == RECORDS[:k]
        if cut in STARTS:
            assert report.ok
        else:
            _, reason = _cut_reason(cut)
            assert report.skipped == [SkippedRange(NAME, k, STARTS[k], cut - STARTS[k], reason)]


def test_truncated_header_message_says_how_many_bytes(scan: str) -> None:
    err = check_strict(GOLDEN[: STARTS[2] + 5], 2, {"truncated_header"})
    assert "5 bytes into a 12-byte record header" in err.detail


# --------------------------------------------------------------------------- trailing bytes (6, 7)


@pytest.mark.parametrize("fill", ["zeros", "junk"])
def test_trailing_bytes_are_damage(scan: str, fill: str) -> None:
    for n in range(1, 41):
        tail = bytes(n) if fill == "zeros" else bytes((7 * i + 0x41) % 256 for i in range(n))
        data = GOLDEN + tail
        # Under 12 bytes a cut header and stray bytes look the same.
        reasons = {"trailing_bytes"} if n >= 12 else {"trailing_bytes", "truncated_header"}
        err = check_strict(data, N, reasons)
        if err.reason == "trailing_bytes":
            assert f"{n} bytes after the last intact record" in err.detail
            if fill == "zeros":
                assert "all zero" in err.detail
        got, report = read_skip(data)
        assert [r.data for r in got] == RECORDS
        assert report.skipped == [SkippedRange(NAME, N, STARTS[N], n, err.reason)]


# --------------------------------------------------------------------------- huge lengths (8)


def _with_length(data: bytes, k: int, length: int) -> bytes:
    hdr = struct.pack("<Q", length)
    hdr += struct.pack("<I", masked_crc32c(hdr))
    return data[: STARTS[k]] + hdr + data[STARTS[k] + 12 :]


def _peak(fn: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_length_2_62_with_a_valid_crc_is_refused_at_once(scan: str) -> None:
    data = _with_length(GOLDEN, 1, 1 << 62)
    (got, err), peak = _peak(lambda: read_all(data))
    assert isinstance(err, RecordTooLargeError)
    assert [r.data for r in got] == RECORDS[:1]
    assert (err.path, err.record, err.offset, err.reason) == (
        NAME,
        1,
        STARTS[1],
        "record_too_large",
    )
    assert str(1 << 62) in err.detail and "max_record_bytes" in err.detail
    assert peak < 4 * 1024 * 1024, peak
    # Skip mode resynchronises and recovers records 2 and 3.
    (got, report), peak = _peak(lambda: read_skip(data))
    assert [r.data for r in got] == [RECORDS[0], RECORDS[2], RECORDS[3]]
    assert report.skipped == [
        SkippedRange(NAME, 1, STARTS[1], STARTS[2] - STARTS[1], "record_too_large")
    ]
    assert peak < 4 * 1024 * 1024, peak


@pytest.mark.parametrize("comp", ["gzip", "zlib"])
def test_length_2_62_in_a_compressed_stream(scan: str, comp: str) -> None:
    buf = io.BytesIO()
    with TFRecordWriter(buf, comp) as w:  # type: ignore[arg-type]
        w.write_many(RECORDS)
    stream = _with_length(GOLDEN, 1, 1 << 62)
    data = zlib.compress(stream) if comp == "zlib" else gzip.compress(stream)
    (got, err), peak = _peak(lambda: read_all(data))
    assert isinstance(err, RecordTooLargeError) and (err.record, err.offset) == (1, STARTS[1])
    assert "GZIP" not in err.detail and "ZLIB" not in err.detail  # it was read decompressed
    assert peak < 8 * 1024 * 1024, peak
    got, report = read_skip(data)
    assert [r.data for r in got] == [RECORDS[0], RECORDS[2], RECORDS[3]]


def test_length_beyond_the_file_but_under_the_limit(scan: str) -> None:
    data = _with_length(GOLDEN, 2, 100_000_000)  # < 256 MiB, > the 77 KB file
    (got, err), peak = _peak(lambda: read_all(data))
    assert isinstance(err, CorruptRecordError) and (err.record, err.offset) == (2, STARTS[2])
    assert err.reason in ("truncated_data", "record_too_large")
    assert [r.data for r in got] == RECORDS[:2]
    assert peak < 4 * 1024 * 1024, peak


def test_max_record_bytes_below_a_real_record(scan: str) -> None:
    got, err = read_all(GOLDEN, max_record_bytes=1000)
    assert isinstance(err, RecordTooLargeError)
    assert (err.record, err.offset, err.reason) == (3, STARTS[3], "record_too_large")
    assert "76825" in err.detail and "max_record_bytes=1000" in err.detail
    assert [r.data for r in got] == RECORDS[:3]


# --------------------------------------------------------------------------- not TFRecord (9, 10)


@pytest.mark.parametrize(
    ("content", "hint"),
    [
        (b"label,I1,C1\n1,5,68fd1e64\n0,7,80e8e0f3\n", "CSV"),
        (
            b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x02\x15\x00\x12\x00\x00" + bytes(40) + b"PAR1",
            "Parquet",
        ),
        (b"a,b\n1,2\n", "CSV"),  # 8 bytes: TF reads 0 records silently
        (b"PAR1", "Parquet"),
        (b'{"a": 1}\n{"a": 2}\n', "JSON"),
    ],
)
def test_a_file_that_is_not_tfrecord_gets_a_format_hint(
    tmp_path: Any, scan: str, content: bytes, hint: str
) -> None:
    p = tmp_path / "data.tfrecord"
    p.write_bytes(content)
    with pytest.raises(CorruptRecordError) as ei:
        list(read_records(str(p)))
    e = ei.value
    assert (e.path, e.record, e.offset) == (str(p), 0, 0)
    assert str(p) in str(e) and hint in str(e)


@pytest.mark.parametrize("comp", ["gzip", "zlib"])
def test_compressed_file_read_as_plain_says_so(scan: str, comp: str) -> None:
    got, err = read_all(COMPRESSED[comp], compression="none")
    assert isinstance(err, CorruptRecordError) and got == []
    assert (err.path, err.record, err.offset) == (NAME, 0, 0)
    assert f"compression='{comp}'" in err.detail


@pytest.mark.parametrize(
    ("data", "comp"),
    [(GOLDEN, "gzip"), (GOLDEN, "zlib"), (GOLDEN_GZ, "zlib"), (GOLDEN_ZLIB, "gzip")],
)
def test_wrong_compression_given_explicitly(scan: str, data: bytes, comp: str) -> None:
    got, err = read_all(data, compression=comp)
    assert isinstance(err, CorruptRecordError) and got == []
    assert (err.path, err.reason) == (NAME, "bad_compressed_stream")
    assert "header check" in err.detail
    got2, report = read_skip(data, compression=comp)
    assert got2 == [] and [s.reason for s in report.skipped] == ["bad_compressed_stream"]


# --------------------------------------------------------------------------- compressed streams (11-16)


def _check_stream_error(got: list[Record], err: DataError | None) -> None:
    """A compressed-stream error: after an intact prefix, at the record that follows it."""
    assert err is not None, "damaged stream read as a clean end"
    assert isinstance(err, CorruptRecordError)
    k = len(got)
    assert [r.data for r in got] == RECORDS[:k]
    assert (err.path, err.record, err.offset) == (NAME, k, STARTS[k])


@pytest.mark.parametrize("comp", ["gzip", "zlib"])
def test_compressed_stream_cut_anywhere_is_an_error(scan: str, comp: str) -> None:
    data = COMPRESSED[comp]
    for cut in range(1, len(data)):
        got, err = read_all(data[:cut])
        _check_stream_error(got, err)
        # One byte cannot be sniffed as compressed: it is a cut header then.
        assert err is not None and err.reason == (
            "bad_compressed_stream" if cut > 1 else "truncated_header"
        ), (cut, err)
        got, err = read_all(data[:cut], compression=comp)
        _check_stream_error(got, err)
        assert err is not None and err.reason == "bad_compressed_stream", (cut, err)
        got2, report = read_skip(data[:cut])
        assert [r.data for r in got2] == RECORDS[: len(got2)]
        assert len(got2) >= len(got)
        assert not report.ok and report.skipped[-1].reason in (
            "bad_compressed_stream",
            "truncated_data",
            "truncated_footer",
            "truncated_header",
        )


def test_gzip_without_its_trailer(scan: str) -> None:
    got, err = read_all(GOLDEN_GZ[:-8])
    _check_stream_error(got, err)
    assert err is not None and err.reason == "bad_compressed_stream" and "trailer" in err.detail


@pytest.mark.parametrize(("pos", "what"), [(-8, "data check"), (-1, "length check")])
def test_gzip_bad_crc32_or_isize(scan: str, pos: int, what: str) -> None:
    got, err = read_all(flipped(GOLDEN_GZ, len(GOLDEN_GZ) + pos, 0x01))
    _check_stream_error(got, err)
    assert err is not None and err.reason == "bad_compressed_stream" and what in err.detail
    # The records inflated before the bad trailer are intact and yielded first.
    assert len(got) == N


def test_zlib_bad_adler32(scan: str) -> None:
    got, err = read_all(flipped(GOLDEN_ZLIB, len(GOLDEN_ZLIB) - 1, 0x01))
    _check_stream_error(got, err)
    assert err is not None and err.reason == "bad_compressed_stream" and len(got) == N


@pytest.mark.parametrize("comp", ["gzip", "zlib"])
def test_flipped_compressed_bytes_never_pass_silently(comp: str) -> None:
    data = COMPRESSED[comp]
    # Every byte of the stream's head and tail, a stride through the middle.
    for pos in sorted(
        {*range(16), *range(16, len(data) - 16, 3), *range(len(data) - 16, len(data))}
    ):
        if comp == "gzip" and pos in (3, 4, 5, 6, 7, 8, 9):
            continue  # FLG/MTIME/XFL/OS: gzip does not protect them
        d = flipped(data, pos, 0x04)
        got, err = read_all(d)
        if err is None:
            # Only a flip that inflates to the very same bytes may pass.
            assert [r.data for r in got] == RECORDS, pos
            continue
        assert [r.data for r in got] == RECORDS[: len(got)], pos
        got2, report = read_skip(d)
        assert not report.ok
        for r in got2:
            assert r.data in RECORDS


def test_multi_member_gzip_reads_every_member(scan: str) -> None:
    got, err = read_all(GOLDEN_GZ + GOLDEN_GZ + GOLDEN_GZ)
    assert err is None
    assert [r.data for r in got] == RECORDS * 3
    # Offsets are in the decompressed stream, which runs on across members.
    assert [r.offset for r in got] == [s + m * STARTS[N] for m in range(3) for s in STARTS[:N]]
    assert [r.index for r in got] == list(range(3 * N))


@pytest.mark.parametrize("tail", [b"garbage!", bytes(8), b"\x00", b"PK\x03\x04"])
def test_data_after_the_gzip_stream(scan: str, tail: bytes) -> None:
    got, err = read_all(GOLDEN_GZ + tail)
    _check_stream_error(got, err)
    assert err is not None and len(got) == N and err.reason == "bad_compressed_stream"


@pytest.mark.parametrize("tail", ["second_stream", "garbage", "zeros"])
def test_data_after_the_zlib_stream_is_never_dropped(scan: str, tail: str) -> None:
    extra = {"second_stream": GOLDEN_ZLIB, "garbage": b"garbage!", "zeros": bytes(8)}[tail]
    got, err = read_all(GOLDEN_ZLIB + extra)
    # TF stops silently after the first stream; featurepipe raises.
    _check_stream_error(got, err)
    assert err is not None and len(got) == N and err.reason == "bad_compressed_stream"
    assert "after the end of the ZLIB stream" in err.detail
    got2, report = read_skip(GOLDEN_ZLIB + extra)
    assert [r.data for r in got2] == RECORDS and not report.ok


def _bomb(comp: str, size: int = 64 << 20) -> bytes:
    """A GZIP/ZLIB file of one ``size``-byte zero record plus b"after", built fast.

    A 1 MiB block of zeros is deflated once, ending in a full flush, and
    repeated: blocks after a full flush never refer back, so the copies form
    a valid stream (deflating 64 MiB each time would cost seconds).
    """
    mib = bytes(1 << 20)
    hdr = struct.pack("<Q", size)
    hdr += struct.pack("<I", masked_crc32c(hdr))
    footer = struct.pack("<I", masked_crc32c(bytes(size)))
    after = _framing.frame_records([b"after"])

    def deflate(data: bytes, mode: int) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(mode)

    block = deflate(mib, zlib.Z_FULL_FLUSH)
    body = (
        deflate(hdr, zlib.Z_FULL_FLUSH)
        + block * (size >> 20)
        + deflate(footer + after, zlib.Z_FINISH)
    )
    crc, adler = zlib.crc32(hdr), zlib.adler32(hdr)
    for _ in range(size >> 20):
        crc, adler = zlib.crc32(mib, crc), zlib.adler32(mib, adler)
    crc, adler = zlib.crc32(footer + after, crc), zlib.adler32(footer + after, adler)
    total = len(hdr) + size + len(footer) + len(after)
    if comp == "gzip":
        return (
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
            + body
            + struct.pack("<II", crc, total & 0xFFFFFFFF)
        )
    return b"\x78\xda" + body + struct.pack(">I", adler)


def test_bomb_helper_is_a_valid_stream() -> None:
    small = _bomb("gzip", 2 << 20)
    assert list(read_records(io.BytesIO(small))) == [bytes(2 << 20), b"after"]
    assert len(gzip.decompress(small)) == (2 << 20) + 16 + 21
    assert len(zlib.decompress(_bomb("zlib", 2 << 20))) == (2 << 20) + 16 + 21


@pytest.mark.parametrize("comp", ["gzip", "zlib"])
def test_decompression_bomb_is_bounded(comp: str) -> None:
    bomb = _bomb(comp)
    assert len(bomb) < 128 * 1024  # 64 MiB inside
    (got, err), peak = _peak(lambda: read_all(bomb, max_record_bytes=1 << 20))
    assert isinstance(err, RecordTooLargeError) and got == []
    assert (err.record, err.offset, err.reason) == (0, 0, "record_too_large")
    assert str(64 << 20) in err.detail
    assert peak < 16 << 20, peak  # the record is never materialised
    (got2, report), peak = _peak(lambda: read_skip(bomb, max_record_bytes=1 << 20))
    assert [r.data for r in got2] == [b"after"]
    assert [(s.record, s.offset, s.reason) for s in report.skipped] == [(0, 0, "record_too_large")]
    assert report.skipped[0].length == (64 << 20) + 16
    assert peak < 32 << 20, peak


# --------------------------------------------------------------------------- the skip budget


def test_max_corrupt_budget(scan: str) -> None:
    data = flipped(flipped(GOLDEN, STARTS[0] + 20), STARTS[1] + 20)
    got, report = read_skip(data, max_corrupt=2)
    assert [r.data for r in got] == RECORDS[2:]
    for budget in (0, 1):
        report = CorruptionReport()
        out: list[bytes] = []
        with pytest.raises(CorruptionBudgetError) as ei:
            for r in read_records(
                Named(data), on_corrupt="skip", max_corrupt=budget, report=report
            ):
                out.append(r)
        e = ei.value
        assert out == [] and (e.path, e.reason) == (NAME, "corruption_budget_exceeded")
        assert (e.record, e.offset) == (budget, STARTS[budget])
        assert len(report.skipped) == budget + 1
        assert isinstance(e, DataError) and not isinstance(e, CorruptRecordError)


def test_max_corrupt_counts_over_all_files(tmp_path: Any, scan: str) -> None:
    a, b = tmp_path / "a.tfrecord", tmp_path / "b.tfrecord"
    a.write_bytes(flipped(GOLDEN, STARTS[1] + 20))
    b.write_bytes(flipped(GOLDEN, STARTS[2] + 13))
    out: list[bytes] = []
    with pytest.raises(CorruptionBudgetError) as ei:
        for r in read_records([str(a), str(b)], on_corrupt="skip", max_corrupt=1):
            out.append(r)
    assert (ei.value.path, ei.value.record, ei.value.offset) == (str(b), 2, STARTS[2])
    assert out == [RECORDS[0], RECORDS[2], RECORDS[3], RECORDS[0], RECORDS[1]]


# --------------------------------------------------------------------------- empty, 0-byte, edges (26)


@pytest.mark.parametrize("comp", ["auto", "none", "gzip", "zlib"])
def test_empty_file_is_zero_records(scan: str, comp: str) -> None:
    assert read_all(b"", compression=comp) == ([], None)


@pytest.mark.parametrize("comp", ["gzip", "zlib"])
def test_empty_compressed_streams_are_zero_records(scan: str, comp: str) -> None:
    empty = gzip.compress(b"") if comp == "gzip" else zlib.compress(b"")
    assert read_all(empty) == ([], None)
    assert read_all(empty, compression=comp) == ([], None)
    buf = io.BytesIO()
    TFRecordWriter(buf, comp).close()  # type: ignore[arg-type]
    assert buf.getvalue() and read_all(buf.getvalue()) == ([], None)


@pytest.mark.parametrize("comp", ["none", "gzip", "zlib"])
def test_zero_byte_records(scan: str, comp: str) -> None:
    buf = io.BytesIO()
    with TFRecordWriter(buf, comp) as w:  # type: ignore[arg-type]
        w.write_many([b""] * 5 + [b"x"] + [b""])
    got, err = read_all(buf.getvalue())
    assert err is None
    assert [(r.data, r.offset) for r in got] == [
        (b"", 0),
        (b"", 16),
        (b"", 32),
        (b"", 48),
        (b"", 64),
        (b"x", 80),
        (b"", 97),
    ]


def _edge_records() -> list[bytes]:
    rnd = bytes((i * 2654435761 >> 13) & 0xFF for i in range(1 << 16))
    big = rnd * 16  # 1 MiB
    return [big, b"", b"abc", big + b"x", bytes(11), bytes(12), bytes(13), big[:65535]]


@pytest.mark.parametrize("comp", ["none", "gzip", "zlib"])
def test_large_records_across_every_small_buffer_size(
    scan: str, comp: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recs = _edge_records()
    buf = io.BytesIO()
    with TFRecordWriter(buf, comp, flush_every_bytes=100_000) as w:  # type: ignore[arg-type]
        w.write_many(recs)
    data = buf.getvalue()
    offsets = [0]
    for r in recs:
        offsets.append(offsets[-1] + len(r) + 16)
    for chunk in [*range(1, 21), 65536]:
        monkeypatch.setattr(_reader, "_CHUNK_BYTES", chunk)
        got, err = read_all(data)
        assert err is None, chunk
        assert [r.data for r in got] == recs, chunk
        assert [(r.index, r.offset) for r in got] == list(enumerate(offsets[:-1]))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("chunk", [1, 2, 7, 11, 12, 13, 20, 65536])
def test_damage_with_small_buffers_matches_the_default(
    scan: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = {
        "length_flip_first": flipped(GOLDEN, 3),
        "length_crc_flip": flipped(GOLDEN, STARTS[1] + 9),
        "data_flip": flipped(GOLDEN, STARTS[2] + 13),
        "big_data_flip": flipped(GOLDEN, STARTS[3] + 5000),
        "huge_length": _with_length(GOLDEN, 1, 1 << 62),
        "cut": GOLDEN[: STARTS[3] + 100],
        "trailing": GOLDEN + bytes(30),
        "gzip_cut": GOLDEN_GZ[:-20],
    }
    expected = {}
    for name, data in cases.items():
        strict = read_all(data)
        expected[name] = (
            [(r.data, r.index, r.offset) for r in strict[0]],
            strict[1] and (strict[1].reason, strict[1].record, strict[1].offset),
            read_skip(data),
        )
    monkeypatch.setattr(_reader, "_CHUNK_BYTES", chunk)
    for name, data in cases.items():
        got, err = read_all(data)
        exp_got, exp_err, (exp_skip, exp_report) = expected[name]
        assert [(r.data, r.index, r.offset) for r in got] == exp_got, name
        assert (err and (err.reason, err.record, err.offset)) == exp_err, name
        skip, report = read_skip(data)
        assert skip == exp_skip and report.skipped == exp_report.skipped, name


# --------------------------------------------------------------------------- transient errors (30)


class FlakyFile(io.RawIOBase):
    """A file whose read fails once with EIO when it first reaches byte ``fail_at``."""

    def __init__(self, data: bytes, fail_at: int) -> None:
        self._b = io.BytesIO(data)
        self._fail_at = fail_at
        self.failures = 0
        self.name = NAME

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._b.seek(pos, whence)

    def tell(self) -> int:
        return self._b.tell()

    def readinto(self, b: Any) -> int:
        if not self.failures and self._b.tell() + len(b) > self._fail_at:
            self.failures += 1
            raise OSError(5, "Input/output error (injected)")
        return self._b.readinto(b)


@pytest.mark.parametrize("comp", ["none", "gzip"])
@pytest.mark.parametrize("mode", ["raise", "skip"])
def test_transient_read_error_then_retry(
    scan: str, comp: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What happens on a transient I/O error (bad-inputs.md row 30).

    The OSError is not data damage: it propagates unchanged (not as a
    DataError, and skip mode does not swallow it or count it), after only
    whole, verified records. The generator is then finished; a retry is a
    new read, and the records before the failure plus the retry's records
    after them are every record exactly once.
    """
    monkeypatch.setattr(_reader, "_CHUNK_BYTES", 64)
    monkeypatch.setattr("featurepipe.tfrecord._compression._READ_BYTES", 64)
    data = GOLDEN if comp == "none" else GOLDEN_GZ
    for fail_at in (20, len(data) // 3, len(data) // 2, len(data) - 3):
        f = FlakyFile(data, fail_at)
        report = CorruptionReport()
        first: list[Record] = []
        with pytest.raises(OSError, match="injected") as ei:
            for r in iter_records(f, on_corrupt=mode, report=report):  # type: ignore[arg-type]
                first.append(r)
        assert not isinstance(ei.value, DataError)
        assert f.failures == 1 and report.ok
        assert [r.data for r in first] == RECORDS[: len(first)]
        f.seek(0)
        retry = list(iter_records(f, on_corrupt=mode))  # type: ignore[arg-type]
        assert [r.data for r in first] + [r.data for r in retry[len(first) :]] == RECORDS
        assert [r.index for r in retry] == list(range(N))


# --------------------------------------------------------------------------- not_an_example (17-19)


PAYLOAD_WORDS = (b"68fd1e64", b"unicod", b"empty name")


def _assert_no_payload(e: DataError) -> None:
    for w in PAYLOAD_WORDS:
        assert w.decode("latin-1") not in str(e)


def _decode_error(payload: bytes, **kw: Any) -> ExampleDecodeError | None:
    try:
        decode_example(payload, **kw)
    except ExampleDecodeError as e:
        return e
    return None


def test_truncated_payloads_are_not_examples() -> None:
    for k in (0, 1, 3):
        payload = RECORDS[k]
        errors = []
        for cut in [*range(1, min(len(payload), 200)), len(payload) - 1]:
            e = _decode_error(payload[:cut], path=NAME, record=k, offset=STARTS[k])
            if e is not None:
                errors.append((cut, e))
        assert errors
        for cut, e in errors:
            assert (e.path, e.record, e.offset, e.reason) == (
                NAME,
                k,
                STARTS[k],
                "not_an_example",
            )
            assert f"{cut}-byte payload" in e.detail
            _assert_no_payload(e)
    with pytest.raises(ExampleDecodeError, match="not_an_example"):
        decode_example(RECORDS[0][:-1])


@pytest.mark.parametrize("native", [False, None])
def test_batch_decode_names_the_bad_record(native: bool | None) -> None:
    for k in range(N):
        batch = list(RECORDS)
        batch[k] = batch[k][: len(batch[k]) // 2] if batch[k] else b"\x0a\x05ab"
        with pytest.raises(ExampleDecodeError) as ei:
            decode_examples(batch, path=NAME, first_index=100, native=native)
        e = ei.value
        assert (e.path, e.record, e.reason) == (NAME, 100 + k, "not_an_example")
        _assert_no_payload(e)


def _payload_flips() -> Iterator[tuple[int, int]]:
    for k in (0, 1):
        for pos in range(len(RECORDS[k])):
            yield k, pos


@pytest.mark.parametrize("native", [False, None])
def test_flipped_payload_bytes_decode_or_fail_cleanly(native: bool | None) -> None:
    """Every flipped payload byte: a valid Example, or not_an_example / mixed_kind."""
    failures = 0
    for k, pos in _payload_flips():
        bad = flipped(RECORDS[k], pos)
        e = _decode_error(bad, record=k)
        if e is not None:
            failures += 1
            assert e.reason == "not_an_example" and e.record == k
            with pytest.raises(ExampleDecodeError) as ei:
                decode_examples([RECORDS[0], bad], first_index=0, native=native)
            assert ei.value.record == 1 or ei.value.reason == "mixed_kind"
            continue
        # decode_example accepted it: the batch decoder must too, with the same features.
        batch = decode_examples([bad], native=native)
        assert sorted(batch.columns) == sorted(decode_example(bad))
    assert failures > 0


def test_the_reader_and_decoder_together_name_the_record(tmp_path: Any) -> None:
    """A frame whose CRCs verify but whose payload is not an Example."""
    p = tmp_path / "payload.tfrecord"
    recs = list(RECORDS)
    recs[2] = RECORDS[0][:40]
    with TFRecordWriter(str(p)) as w:
        w.write_many(recs)
    for r in iter_records(str(p)):
        if r.index != 2:
            decode_example(r.data)
            continue
        with pytest.raises(ExampleDecodeError) as ei:
            decode_example(r.data, path=r.path, record=r.index, offset=r.offset)
        assert (ei.value.path, ei.value.record, ei.value.offset) == (str(p), 2, STARTS[2])
        assert str(p) in str(ei.value) and os.path.basename(str(p)) in str(ei.value)


# --------------------------------------------------------------------------- pipes


class _Pipe(io.RawIOBase):
    """A non-seekable stream (a pipe, a socket): no size known in advance."""

    def __init__(self, data: bytes) -> None:
        self._b = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._b.readinto(b)


def _outcome(f: Any) -> tuple[list[tuple[bytes, int, int]], Any]:
    out: list[tuple[bytes, int, int]] = []
    try:
        for r in iter_records(f):
            out.append((r.data, r.index, r.offset))
    except DataError as e:
        return out, (type(e), e.reason, e.record, e.offset)
    return out, None


def test_a_non_seekable_stream_reports_damage_like_a_file(scan: str) -> None:
    """Without a known size, every length is still checked before it is trusted."""
    cases = [flipped(GOLDEN, p) for p in (3, STARTS[1] + 9, STARTS[2] + 13, STARTS[3] + 99)]
    cases += [GOLDEN[:c] for c in (5, STARTS[1] + 11, STARTS[3] + 100, STARTS[4] - 2)]
    cases += [GOLDEN + bytes(5), GOLDEN + bytes(30), _with_length(GOLDEN, 1, 1 << 62)]
    cases += [_with_length(GOLDEN, 1, 100_000_000), GOLDEN_GZ[:-8], GOLDEN_ZLIB + b"x"]
    for data in cases:
        expected = _outcome(io.BytesIO(data))
        assert expected[1] is not None
        assert _outcome(io.BufferedReader(_Pipe(data))) == expected
