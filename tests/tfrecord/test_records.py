"""Behaviour of featurepipe.tfrecord: framing, CRCs, compression, paths, writer."""

from __future__ import annotations

import base64
import gzip
import io
import os
import random
import zlib

import pytest

import featurepipe.tfrecord as tfrecord
from featurepipe.errors import ConfigError, CorruptRecordError, RecordTooLargeError
from featurepipe.tfrecord import (
    CorruptionReport,
    TFRecordWriter,
    _reader,
    detect_compression,
    expand_paths,
    iter_records,
    read_records,
    shard_name,
    write_records,
)
from featurepipe.tfrecord._crc import crc32c, crc32c_py, masked_crc32c
from tests.conftest import TESTDATA

# Beam's golden bytes (apache_beam/io/tfrecordio_test.py): TF wrote b"foo".
FOO_RECORD_BASE64 = "AwAAAAAAAACwmUkOZm9vYYq+/g=="


def test_masked_crc32c_vectors():
    assert masked_crc32c(b"foo") == 0xFEBE8A61
    assert masked_crc32c(b"\x00" * 32) == 0xFD7FFFA
    assert masked_crc32c((3).to_bytes(8, "little")) == 0xE4999B0


def test_pure_python_crc_matches_hardware():
    for data in (b"", b"a", b"123456789", bytes(range(256)) * 3):
        assert crc32c_py(data) == crc32c(data)


def test_writer_matches_tensorflow_golden_bytes():
    buf = io.BytesIO()
    with TFRecordWriter(buf) as w:
        w.write(b"foo")
    assert buf.getvalue() == base64.b64decode(FOO_RECORD_BASE64)
    assert (TESTDATA / "foo_bar.tfrecord").read_bytes().startswith(buf.getvalue())


def test_writer_size_is_exact():
    # TF's record_reader_writer_test: "abc" + "defg" is a 39-byte file.
    buf = io.BytesIO()
    write_records(buf, [b"abc", b"defg"])
    assert len(buf.getvalue()) == 39


def test_read_golden_foo_bar():
    assert list(read_records(TESTDATA / "foo_bar.tfrecord")) == [b"foo", b"bar"]


@pytest.mark.parametrize("comp", ["none", "gzip", "zlib"])
def test_round_trip_every_compression(tmp_path, comp):
    recs = [b"", b"x", os.urandom(70_000), b"y" * 5]
    p = tmp_path / "f.tfrecord"
    write_records(p, recs, comp)
    assert detect_compression(p) == comp
    assert list(read_records(p)) == recs
    assert list(read_records(p, compression=comp)) == recs


def test_compressed_output_readable_by_stdlib(tmp_path):
    recs = [os.urandom(1000) for _ in range(50)]
    for comp, decompress in (("gzip", gzip.decompress), ("zlib", zlib.decompress)):
        p = tmp_path / comp
        with TFRecordWriter(p, comp, flush_every_bytes=4096) as w:
            w.write_many(recs)
        plain = io.BytesIO()
        write_records(plain, recs)
        assert decompress(p.read_bytes()) == plain.getvalue()


def test_record_offsets_and_indices():
    buf = io.BytesIO()
    write_records(buf, [b"a", b"bb", b"ccc"])
    buf.seek(0)
    got = [(r.index, r.offset, r.data) for r in iter_records(buf)]
    assert got == [(0, 0, b"a"), (1, 17, b"bb"), (2, 35, b"ccc")]


def test_records_straddle_buffer_edges(monkeypatch):
    recs = [os.urandom(n) for n in (0, 1, 7, 12, 13, 100, 1 << 20)]
    buf = io.BytesIO()
    write_records(buf, recs)
    for chunk in (1, 2, 5, 11, 12, 13, 20, 65536):
        monkeypatch.setattr("featurepipe.tfrecord._reader._CHUNK_BYTES", chunk)
        assert list(read_records(io.BytesIO(buf.getvalue()))) == recs


def test_error_names_file_record_and_offset(tmp_path):
    p = tmp_path / "bad.tfrecord"
    write_records(p, [b"one", b"two", b"three"])
    data = bytearray(p.read_bytes())
    data[19 + 12] ^= 0x01  # a data byte of record 1, which starts at 19
    p.write_bytes(bytes(data))
    got = []
    with pytest.raises(CorruptRecordError, match=r"bad\.tfrecord, record 1, offset 19") as ei:
        for r in read_records(p):
            got.append(r)
    assert got == [b"one"]
    assert (ei.value.reason, ei.value.record, ei.value.offset) == ("data_crc_mismatch", 1, 19)
    assert str(p) == ei.value.path


def test_skip_reports_and_keeps_later_records(tmp_path):
    p = tmp_path / "bad.tfrecord"
    write_records(p, [b"one", b"two", b"three"])
    data = bytearray(p.read_bytes())
    data[19 + 12] ^= 0x01
    p.write_bytes(bytes(data))
    report = CorruptionReport()
    assert list(read_records(p, on_corrupt="skip", report=report)) == [b"one", b"three"]
    assert [(s.record, s.offset, s.length, s.reason) for s in report.skipped] == [
        (1, 19, 19, "data_crc_mismatch")
    ]
    assert not report.ok


def test_huge_length_with_valid_crc_is_refused_at_once():
    hdr = (1 << 62).to_bytes(8, "little")
    hdr += masked_crc32c(hdr).to_bytes(4, "little")
    with pytest.raises(RecordTooLargeError, match="record_too_large"):
        list(read_records(io.BytesIO(hdr + b"x" * 100)))


def test_not_a_tfrecord_file_gets_a_hint(tmp_path):
    p = tmp_path / "data.csv"
    p.write_text("a,b,c\n1,2,3\n4,5,6\n")
    with pytest.raises(CorruptRecordError, match=r"data\.csv.*CSV"):
        list(read_records(p))


def test_verify_crc_false_skips_only_the_data_crc():
    buf = bytearray()
    w = io.BytesIO()
    write_records(w, [b"abc"])
    buf = bytearray(w.getvalue())
    buf[-1] ^= 0xFF  # data CRC
    assert list(read_records(io.BytesIO(bytes(buf)), verify_crc=False)) == [b"abc"]
    buf[9] ^= 0xFF  # length CRC: always checked
    with pytest.raises(CorruptRecordError, match="length_crc_mismatch"):
        list(read_records(io.BytesIO(bytes(buf)), verify_crc=False))


def test_bad_arguments_list_the_choices():
    with pytest.raises(ConfigError, match=r"Allowed values are.*Received: compression='lz4'"):
        list(read_records(io.BytesIO(b""), compression="lz4"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Received: on_corrupt='ignore'"):
        list(read_records(io.BytesIO(b""), on_corrupt="ignore"))  # type: ignore[arg-type]


def test_empty_file_has_no_records(tmp_path):
    p = tmp_path / "empty"
    p.write_bytes(b"")
    assert list(read_records(p)) == []
    assert list(read_records(p, compression="gzip")) == []


def test_atomic_writer_leaves_nothing_on_error(tmp_path):
    p = tmp_path / "out.tfrecord"
    with pytest.raises(RuntimeError), TFRecordWriter(p) as w:
        w.write(b"partial")
        raise RuntimeError("job killed")
    assert os.listdir(tmp_path) == []


def test_atomic_writer_has_no_final_name_until_closed(tmp_path):
    p = tmp_path / "out.tfrecord"
    w = TFRecordWriter(p)
    w.write(b"x")
    assert not p.exists()
    w.close()
    assert list(read_records(p)) == [b"x"]
    w.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        w.write(b"y")


def test_shard_names_and_expansion(tmp_path):
    assert shard_name("out/train", 3, 10, ".tfrecord.gz") == "out/train-00003-of-00010.tfrecord.gz"
    with pytest.raises(ConfigError, match="Received: index=10, num_shards=10"):
        shard_name("x", 10, 10)
    prefix = str(tmp_path / "part")
    for i in range(3):
        write_records(shard_name(prefix, i, 3, ".tfr"), [b"%d" % i])
    spec = f"{prefix}@3.tfr"
    assert list(read_records(spec)) == [b"0", b"1", b"2"]
    assert expand_paths(str(tmp_path / "*.tfr")) == expand_paths(spec)
    os.remove(shard_name(prefix, 1, 3, ".tfr"))
    with pytest.raises(ConfigError, match="1 are missing"):
        expand_paths(spec)
    with pytest.raises(ConfigError, match="No file matches"):
        expand_paths(str(tmp_path / "nothing-*.tfr"))


def test_reads_lists_globs_and_file_objects(example_files):
    paths = [example_files["none"], example_files["gzip"]]
    assert len(list(read_records(paths))) == 40
    with open(example_files["zlib"], "rb") as f:
        assert len(list(read_records(f))) == 20


def test_detect_compression_ignores_extension(tmp_path):
    p = tmp_path / "looks.gz"
    write_records(p, [b"plain"])
    assert detect_compression(p) == "none"
    assert list(read_records(p)) == [b"plain"]


def _read_damaged(tmp_path, monkeypatch, mapped):
    monkeypatch.setattr(_reader, "_MMAP_MIN_BYTES", 0 if mapped else 1 << 62)
    monkeypatch.setattr(_reader, "_MMAP_WINDOW_BYTES", 4096)  # records straddle windows
    monkeypatch.setattr(_reader, "_CHUNK_BYTES", 1000)
    rng = random.Random(0)
    recs = [rng.randbytes(n) for n in (10, 3000, 0, 50, 200, 7000, 5)]
    offsets = [0]
    for r in recs[:-1]:
        offsets.append(offsets[-1] + len(r) + 16)
    p = tmp_path / "f.tfrecord"
    write_records(p, recs)
    data = bytearray(p.read_bytes())
    data[offsets[2] + 12] ^= 1  # record 2 (empty): its data CRC
    data[offsets[6] + 12 + 1] ^= 1  # record 6: a data byte
    p.write_bytes(bytes(data) + b"\0\0\0")  # and 3 stray bytes
    report = CorruptionReport()
    got = [(r.index, r.offset, r.data) for r in iter_records(p, on_corrupt="skip", report=report)]
    skipped = [(s.record, s.offset, s.length, s.reason) for s in report.skipped]
    return recs, offsets, got, skipped


def test_mapped_and_buffered_paths_agree_on_damage(tmp_path, monkeypatch):
    # Plain files over _MMAP_MIN_BYTES are scanned through a memory map until
    # the first damage, then handed to the buffered path: both must report
    # the same records, indices, offsets and skipped ranges.
    recs, offsets, got, skipped = _read_damaged(tmp_path, monkeypatch, mapped=True)
    assert (got, skipped) == _read_damaged(tmp_path, monkeypatch, mapped=False)[2:]
    assert got == [(i, offsets[i], recs[i]) for i in (0, 1, 3, 4, 5)]
    assert [(r, o, reason) for r, o, _, reason in skipped] == [
        (2, offsets[2], "data_crc_mismatch"),
        (6, offsets[6], "data_crc_mismatch"),
        (7, offsets[6] + 21, "truncated_header"),
    ]


@pytest.mark.parametrize("mapped", [False, True])
def test_count_frames_verifies_like_the_reader(tmp_path, monkeypatch, mapped):
    monkeypatch.setattr(_reader, "_MMAP_MIN_BYTES", 0 if mapped else 1 << 62)
    monkeypatch.setattr(_reader, "_MMAP_WINDOW_BYTES", 4096)
    rng = random.Random(1)
    recs = [rng.randbytes(rng.randrange(0, 9000)) for _ in range(40)]
    p = tmp_path / "f.tfrecord"
    write_records(p, recs)
    seen = []
    assert tfrecord.count_frames(p, progress=seen.append) == 40
    assert seen[-1] == 40
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 1
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordError) as ei:
        tfrecord.count_frames(p)
    with pytest.raises(CorruptRecordError) as ej:
        list(read_records(p))
    assert (ei.value.record, ei.value.offset, ei.value.reason) == (
        ej.value.record, ej.value.offset, ej.value.reason
    )


def test_one_framing_everywhere(monkeypatch):
    # the writer, Beam's pieces and the tests all frame through _framing.frame_records:
    # compiled when built, and the same bytes as the pure-Python twin
    from featurepipe.tfrecord import _framing

    recs = [b"", b"a", bytes(range(256)) * 5, bytearray(b"xy"), memoryview(b"mv")]
    want = _framing.frame_records_py(recs)
    assert _framing.frame_records(recs) == want
    buf = io.BytesIO()
    with TFRecordWriter(buf) as w:
        w.write_many(recs)
    assert buf.getvalue() == want
    seen = []

    def spy(records):
        seen.append(len(records))
        return _framing.frame_records_py(records)

    monkeypatch.setattr("featurepipe.tfrecord._writer.frame_records", spy)
    with TFRecordWriter(io.BytesIO()) as w:
        w.write(b"z")
    assert seen == [1]
    assert _framing.scan_records_py(want, 0, True, 1 << 20)[0] == [bytes(r) for r in recs]


def test_compressions_is_the_compression_type():
    import typing

    from featurepipe.tfrecord import COMPRESSIONS, Compression, check_compression

    assert COMPRESSIONS == typing.get_args(Compression) == ("none", "gzip", "zlib")
    check_compression("auto", auto=True)
    with pytest.raises(ConfigError, match=r"Allowed values are: \('none', 'gzip', 'zlib'\)"):
        check_compression("auto")


def test_sharded_spec_is_recognised(tmp_path):
    from featurepipe.tfrecord import is_sharded_spec, sharded_paths

    assert is_sharded_spec(str(tmp_path / "x@2"))
    for p in sharded_paths(str(tmp_path / "x"), 2):
        write_records(p, [b"r"])
    assert expand_paths(str(tmp_path / "x@2")) == sharded_paths(str(tmp_path / "x"), 2)
    (tmp_path / "y@2").write_bytes(b"")  # a real file named like a spec is a file
    assert not is_sharded_spec(str(tmp_path / "y@2"))
    assert expand_paths(str(tmp_path / "y@2")) == [str(tmp_path / "y@2")]


def test_atomic_writer_leaves_no_temporary_on_error(tmp_path):
    p = tmp_path / "out.tfrecord"
    with pytest.raises(RuntimeError), TFRecordWriter(p) as w:
        w.write(b"a")
        assert [n for n in os.listdir(tmp_path) if n.startswith(".out.tfrecord.tmp-")]
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    write_records(p, [b"a"], "gzip")
    assert os.listdir(tmp_path) == ["out.tfrecord"]
    assert list(read_records(p)) == [b"a"]
