"""Interoperability with real TensorFlow, both ways, all three compressions.

* featurepipe reads the golden files TF 2.21 wrote (``tests/testdata``)
  exactly: every value, NaN, -0.0, subnormals, int64 extremes, empty vs
  kindless features, the empty feature name.
* TF (``tf.data.TFRecordDataset`` + ``tf.io.parse_example``) reads what
  featurepipe's `TFRecordWriter` and `encode_example` write, exactly,
  including compressed files with many full-flush points.
* Python's ``gzip`` and ``zlib`` read featurepipe's compressed output.

TF is imported once per session (module-scoped fixture); the module is
skipped where TF is not installed.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from typing import Any

import numpy as np
import pytest

from featurepipe.example._codec import Feature, decode_example, decode_examples, encode_example
from featurepipe.tfrecord import Compression, TFRecordWriter, iter_records, read_records
from tests.conftest import TESTDATA
from tests.testdata.make_golden import INT64_MAX, INT64_MIN, golden_examples

tf = pytest.importorskip("tensorflow")

GOLDEN_FILES = {
    "none": TESTDATA / "golden.tfrecord",
    "gzip": TESTDATA / "golden.tfrecord.gz",
    "zlib": TESTDATA / "golden.tfrecord.zlib",
}
TF_COMPRESSION = {"none": "", "gzip": "GZIP", "zlib": "ZLIB"}


def _bits(vals: Any) -> list[int]:
    out: list[int] = np.asarray(vals, dtype=np.float32).view(np.uint32).tolist()
    return out


def _assert_feature(got: Feature, kind: str | None, vals: list[Any]) -> None:
    assert got.kind == kind
    if kind == "float":
        assert got.values.dtype == np.float32
        assert _bits(got.values) == _bits(vals)  # NaN, -0.0, inf, 1e-45 bit for bit
    elif kind == "int64":
        assert got.values.dtype == np.int64 and got.values.tolist() == vals
    elif kind == "bytes":
        assert list(got.values) == vals
    else:
        assert got.values.size == 0


# --------------------------------------------------------------------------- TF -> featurepipe


@pytest.mark.parametrize("comp", ["none", "gzip", "zlib"])
def test_featurepipe_reads_tf_golden_files_exactly(comp: str) -> None:
    expected = golden_examples()
    got = list(iter_records(str(GOLDEN_FILES[comp]), compression="auto"))
    assert len(got) == len(expected)
    for rec, exp in zip(got, expected, strict=True):
        ex = decode_example(rec.data)
        assert list(ex) == sorted(exp)
        for name, (kind, vals) in exp.items():
            _assert_feature(ex[name], kind, vals)
    # the explicit compression gives the same records
    assert list(read_records(str(GOLDEN_FILES[comp]), compression=comp)) == [r.data for r in got]  # type: ignore[arg-type]


def test_golden_edge_values_survive_the_batch_decoder() -> None:
    records = list(read_records(str(GOLDEN_FILES["none"])))
    for native in (False, None):
        batch = decode_examples(records, native=native)
        i1 = batch["I1"]
        assert i1.values.tolist() == [0, -1, 2**53 + 1, INT64_MIN, INT64_MAX]
        assert i1.row_lengths.tolist() == [5, 0, 0, 0]
        f = batch["f"].values
        assert (
            np.signbit(f[1]) and f[1] == 0 and np.isinf(f[2]) and f[4] > 0
        )  # -0.0, inf, subnormal
        assert np.isnan(batch["nan"].values[0])
        empty, kindless = batch["empty_int"], batch["kindless"]
        assert empty.present.tolist() == [False, True, False, False]
        assert empty.row_lengths.tolist() == [0, 0, 0, 0] and empty.kind == "int64"
        assert kindless.kind is None and kindless.kindless.tolist() == [False, True, False, False]
        assert not kindless.present.any()
        assert batch[""].values.tolist() == [b"empty name"]


def test_featurepipe_encodes_golden_examples_byte_identical_to_tf() -> None:
    """encode_example gives the very bytes TF wrote (deterministic serialization)."""
    tf_records = list(read_records(str(GOLDEN_FILES["none"])))
    for rec, exp in zip(tf_records, golden_examples(), strict=True):
        feats = {name: _feature(kind, vals) for name, (kind, vals) in exp.items()}
        assert encode_example(feats) == rec


def _feature(kind: str | None, vals: list[Any]) -> Feature:
    if kind == "int64":
        return Feature("int64", np.array(vals, dtype=np.int64))
    if kind == "float":
        return Feature("float", np.array(vals, dtype=np.float32))
    if kind == "bytes":
        arr = np.empty(len(vals), dtype=object)
        arr[:] = vals
        return Feature("bytes", arr)
    return Feature(None, np.empty(0, np.float32))


# --------------------------------------------------------------------------- featurepipe -> TF


def _rows(n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        rows.append(
            {
                "label": i % 2,
                "id": [INT64_MIN, INT64_MAX, 2**53 + 1, -i] if i % 3 == 0 else [i],
                "w": np.array([0.5 * i, -0.0, 1e-45, float("inf")], dtype=np.float32),
                "tag": [f"t{i}", "unicod\u00e9", ""] if i % 2 else [b"\x00\xff"],
                "": "empty name",
                "nan": float("nan"),
            }
        )
    return rows


def _tf_read(path: str, comp: str) -> list[bytes]:
    ds = tf.data.TFRecordDataset([path], compression_type=TF_COMPRESSION[comp])
    return [bytes(x.numpy()) for x in ds]


def _tf_parse(records: list[bytes]) -> dict[str, Any]:
    spec = {
        "label": tf.io.FixedLenFeature([], tf.int64),
        "id": tf.io.VarLenFeature(tf.int64),
        "w": tf.io.FixedLenFeature([4], tf.float32),
        "tag": tf.io.VarLenFeature(tf.string),
        "": tf.io.FixedLenFeature([], tf.string),
        "nan": tf.io.FixedLenFeature([], tf.float32),
    }
    return dict(tf.io.parse_example(tf.constant(records), spec))


@pytest.mark.parametrize("comp", ["none", "gzip", "zlib"])
def test_tf_reads_what_featurepipe_writes(tmp_path: Any, comp: str) -> None:
    rows = _rows(40)
    path = str(tmp_path / f"fp.{comp}.tfrecord")
    # small flush_every_bytes: many full-flush points inside the stream
    with TFRecordWriter(path, comp, flush_every_bytes=512) as w:  # type: ignore[arg-type]
        for row in rows:
            w.write(encode_example(row))
    records = _tf_read(path, comp)
    assert records == list(read_records(path))
    assert len(records) == len(rows)
    parsed = _tf_parse(records)
    assert parsed["label"].numpy().tolist() == [r["label"] for r in rows]
    ids = tf.sparse.to_dense(parsed["id"]).numpy()
    for i, r in enumerate(rows):
        assert ids[i, : len(r["id"])].tolist() == r["id"]
    assert _bits(parsed["w"].numpy()) == _bits(np.stack([r["w"] for r in rows]))
    tags = tf.sparse.to_dense(parsed["tag"], default_value=b"?").numpy()
    for i, r in enumerate(rows):
        want = [t.encode() if isinstance(t, str) else t for t in r["tag"]]
        assert tags[i, : len(want)].tolist() == want
    assert parsed[""].numpy().tolist() == [b"empty name"] * len(rows)
    assert np.isnan(parsed["nan"].numpy()).all()


def test_tf_reads_compressed_files_with_many_flush_points(tmp_path: Any) -> None:
    recs = [os.urandom(n) for n in (0, 1, 100, 5000, 70_000, 3, 200_000, 17)] * 3
    comps: tuple[Compression, ...] = ("gzip", "zlib")
    for comp in comps:
        for flush_every in (1, 64, 4096):
            path = str(tmp_path / f"f{flush_every}.{comp}")
            with TFRecordWriter(path, comp, flush_every_bytes=flush_every) as w:
                w.write_many(recs)
            assert _tf_read(path, comp) == recs
            assert list(read_records(path)) == recs


def test_tf_parses_empty_and_kindless_features_as_featurepipe_writes_them() -> None:
    rec = encode_example(
        {
            "empty": Feature("int64", np.array([], np.int64)),
            "kindless": Feature(None, np.empty(0, np.float32)),
            "x": 1,
        }
    )
    parsed = tf.io.parse_example(
        tf.constant([rec]),
        {
            "empty": tf.io.VarLenFeature(tf.int64),
            "kindless": tf.io.FixedLenFeature([], tf.int64, default_value=7),
            "x": tf.io.FixedLenFeature([], tf.int64),
        },
    )
    assert parsed["empty"].values.numpy().tolist() == []
    assert parsed["kindless"].numpy().tolist() == [7]  # TF treats a kindless feature as missing
    assert parsed["x"].numpy().tolist() == [1]
    proto = tf.train.Example.FromString(rec)
    assert proto.features.feature["empty"].WhichOneof("kind") == "int64_list"
    assert proto.features.feature["kindless"].WhichOneof("kind") is None
    assert proto.SerializeToString(deterministic=True) == rec


# --------------------------------------------------------------------------- stdlib readers


@pytest.mark.parametrize("comp", ["gzip", "zlib"])
def test_python_stdlib_reads_featurepipe_compressed_output(comp: str) -> None:
    recs = [os.urandom(n) for n in (0, 10, 3000, 100_000)]
    buf = io.BytesIO()
    with TFRecordWriter(buf, comp, flush_every_bytes=1000) as w:  # type: ignore[arg-type]
        w.write_many(recs)
    plain = io.BytesIO()
    with TFRecordWriter(plain) as w:
        w.write_many(recs)
    data = buf.getvalue()
    raw = gzip.decompress(data) if comp == "gzip" else zlib.decompress(data)
    assert raw == plain.getvalue()
    if comp == "gzip":
        with gzip.open(io.BytesIO(data)) as g:
            assert g.read() == raw
    else:
        d = zlib.decompressobj()
        assert d.decompress(data) == raw and d.eof and d.unused_data == b""
