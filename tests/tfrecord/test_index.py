"""featurepipe.tfrecord._index: sidecar, counts, random access, splits."""

from __future__ import annotations

import os
import time

import pytest

from featurepipe.errors import ConfigError
from featurepipe.tfrecord import TFRecordWriter, write_records
from featurepipe.tfrecord._index import (
    build_index,
    count_records,
    index_path,
    iter_range,
    load_index,
    read_record_at,
    split_records,
)

RECS = [os.urandom((i * 7919) % 3000) for i in range(500)]


@pytest.fixture(params=["none", "gzip", "zlib"])
def indexed(request, tmp_path):
    p = str(tmp_path / f"f.{request.param}")
    with TFRecordWriter(p, request.param, write_index=True, flush_every_bytes=20_000) as w:
        w.write_many(RECS)
    return p


def test_writer_index_gives_count_and_random_access(indexed):
    idx = load_index(indexed)
    assert idx is not None and idx.count == len(RECS)
    if idx.compression != "none":
        assert len(idx.access_points) > 10  # full-flush points every ~20 kB
    for i in (0, 1, 137, 250, 499):
        assert read_record_at(indexed, i) == RECS[i]
        assert idx.length(i) == len(RECS[i])
    with pytest.raises(IndexError, match="out of range"):
        read_record_at(indexed, 500)


def test_built_index_equals_writer_index(indexed):
    a = load_index(indexed)
    os.remove(index_path(indexed))
    assert count_records(indexed) == len(RECS)  # no index: a scan
    b = build_index(indexed)
    assert (a.offsets == b.offsets).all() and a.stream_bytes == b.stream_bytes
    assert read_record_at(indexed, 321) == RECS[321]


def test_split_is_exact_and_covers_everything(indexed, tmp_path):
    other = str(tmp_path / "second")
    write_records(other, RECS[:7])
    build_index(other)
    for n in (1, 2, 3, 7, 64):
        parts = split_records([indexed, other], n)
        sizes = [sum(len(r) for r in part) for part in parts]
        assert max(sizes) - min(sizes) <= 1
        got = [x for part in parts for r in part for x in iter_range(r.path, r.start, r.stop)]
        assert got == RECS + RECS[:7]


def test_stale_index_is_ignored(tmp_path):
    p = str(tmp_path / "f")
    with TFRecordWriter(p, write_index=True) as w:
        w.write_many([b"a", b"b"])
    time.sleep(0.01)
    write_records(p, [b"a", b"b", b"c"])  # rewritten: size and mtime change
    assert load_index(p) is None
    assert count_records(p) == 3


def test_missing_index_is_a_clear_error(tmp_path):
    p = str(tmp_path / "f")
    write_records(p, [b"a"])
    with pytest.raises(ConfigError, match="featurepipe inspect index"):
        read_record_at(p, 0)
    with pytest.raises(ConfigError, match="build_missing=True"):
        split_records(p, 2)
    assert [len(x) for x in split_records(p, 2, build_missing=True)] == [0, 1]
