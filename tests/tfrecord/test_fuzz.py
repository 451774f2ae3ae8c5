"""Property and fuzz tests of the TFRecord reader and the tf.Example codec.

* Arbitrary and mutated bytes into `read_records` (every compression, both
  modes) and into `decode_example` / `decode_examples` raise nothing but
  `featurepipe.errors.DataError` subclasses, and never hang.
* Random record lists round-trip through `TFRecordWriter` -> `read_records`.
* Random Example dicts round-trip through `encode_example` -> `decode_example`,
  and `encode_example` is byte-identical to protobuf's
  ``SerializeToString(deterministic=True)``.
* `decode_examples` gives identical columns with and without the compiled
  decoder.

An optional atheris run (``-m slow``) fuzzes the same entry points
coverage-guided.
"""

from __future__ import annotations

import gzip
import io
import itertools
import math
import os
import subprocess
import sys
import textwrap
import zlib
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurepipe.errors import DataError, ExampleDecodeError
from featurepipe.example import _codec as example_mod
from featurepipe.example._codec import Feature, decode_example, decode_examples, encode_example
from featurepipe.example.proto import example_pb2
from featurepipe.tfrecord import (
    CorruptionReport,
    TFRecordWriter,
    iter_records,
    read_records,
)
from tests.conftest import TESTDATA

# FEATUREPIPE_FUZZ_EXAMPLES=5000 for a longer hunt; the default keeps the file fast.
FUZZ = settings(
    max_examples=int(os.environ.get("FEATUREPIPE_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
GOLDEN = {
    "none": (TESTDATA / "golden.tfrecord").read_bytes(),
    "gzip": (TESTDATA / "golden.tfrecord.gz").read_bytes(),
    "zlib": (TESTDATA / "golden.tfrecord.zlib").read_bytes(),
}
SMALL_GOLDEN = GOLDEN["none"][:288]  # the three small records: cheap to mutate
HAS_NATIVE = example_mod._decode_columns_native is not None
COMPRESSIONS = ("auto", "none", "gzip", "zlib")


def _read(data: bytes, compression: str, mode: str, max_record_bytes: int) -> list[Any]:
    report = CorruptionReport()
    out = []
    try:
        for r in iter_records(
            io.BytesIO(data),
            compression=compression,  # type: ignore[arg-type]
            on_corrupt=mode,  # type: ignore[arg-type]
            max_record_bytes=max_record_bytes,
            report=report,
        ):
            assert len(r.data) <= max_record_bytes
            out.append(r)
    except DataError:
        pass  # the only kind of error allowed
    # Offsets and indices only ever grow.
    assert all(a.offset < b.offset and a.index < b.index for a, b in itertools.pairwise(out))
    return out


# --------------------------------------------------------------------------- reader on hostile bytes


@pytest.mark.timeout(120)
@FUZZ
@given(
    data=st.binary(max_size=600),
    compression=st.sampled_from(COMPRESSIONS),
    mode=st.sampled_from(["raise", "skip"]),
    max_record_bytes=st.sampled_from([0, 7, 1 << 20]),
)
def test_reader_on_arbitrary_bytes(
    data: bytes, compression: str, mode: str, max_record_bytes: int
) -> None:
    _read(data, compression, mode, max_record_bytes)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, str]:
    """A golden file (any compression) with flips, a cut and/or appended bytes."""
    comp = draw(st.sampled_from(["none", "none", "gzip", "zlib"]))
    data = bytearray(SMALL_GOLDEN if comp == "none" else GOLDEN[comp])
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] ^= draw(st.integers(1, 255))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))) :]
    data += draw(st.binary(max_size=24))
    return bytes(data), comp


@pytest.mark.timeout(120)
@FUZZ
@given(case=mutated(), mode=st.sampled_from(["raise", "skip"]), auto=st.booleans())
def test_reader_on_mutated_golden_files(case: tuple[bytes, str], mode: str, auto: bool) -> None:
    data, comp = case
    got = _read(data, "auto" if auto else comp, mode, 1 << 20)
    if comp == "none":
        # Whatever comes out verified its CRCs: it is one of the real records
        # (a 1-in-2**32 false frame aside), at its real place when nothing
        # before it was damaged.
        golden = list(read_records(io.BytesIO(SMALL_GOLDEN)))
        for r in got:
            assert r.data in golden


@pytest.mark.timeout(120)
@FUZZ
@given(case=mutated())
def test_strict_read_is_a_prefix_of_the_skip_read(case: tuple[bytes, str]) -> None:
    """Skip mode yields at least what strict mode yields before its error."""
    data, comp = case
    strict = [r.data for r in _read(data, comp, "raise", 1 << 20)]
    skip = [r.data for r in _read(data, comp, "skip", 1 << 20)]
    assert skip[: len(strict)] == strict


# --------------------------------------------------------------------------- writer -> reader


records_st = st.lists(
    st.one_of(st.binary(max_size=64), st.binary(min_size=1000, max_size=5000)), max_size=12
)


@FUZZ
@given(
    records=records_st,
    compression=st.sampled_from(["none", "gzip", "zlib"]),
    flush_every=st.sampled_from([1, 100, 1 << 20]),
    level=st.integers(0, 9),
)
def test_writer_reader_round_trip(
    records: list[bytes], compression: str, flush_every: int, level: int
) -> None:
    buf = io.BytesIO()
    with TFRecordWriter(
        buf,
        compression,  # type: ignore[arg-type]
        compression_level=level,
        flush_every_bytes=flush_every,
    ) as w:
        w.write_many(records)
    data = buf.getvalue()
    got = list(iter_records(io.BytesIO(data)))
    assert [r.data for r in got] == records
    offsets = np.cumsum([0] + [len(r) + 16 for r in records])[:-1].tolist()
    assert [(r.index, r.offset) for r in got] == list(enumerate(offsets))
    assert w.records_written == len(records)
    assert w.bytes_written == sum(len(r) + 16 for r in records)
    # Python's own modules read the compressed stream whole.
    if compression == "gzip":
        assert len(gzip.decompress(data)) == w.bytes_written
    elif compression == "zlib":
        assert len(zlib.decompress(data)) == w.bytes_written


# --------------------------------------------------------------------------- Example codec

names_st = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]), max_size=6
)  # short, so that prefixes ("a", "ab", "") collide often
int64_st = st.integers(-(2**63), 2**63 - 1)
float32_st = st.floats(width=32, allow_nan=True, allow_infinity=True)
feature_st: st.SearchStrategy[tuple[str | None, list[Any]]] = st.one_of(
    st.tuples(st.just("int64"), st.lists(int64_st, max_size=6)),
    st.tuples(st.just("float"), st.lists(float32_st, max_size=6)),
    st.tuples(st.just("bytes"), st.lists(st.binary(max_size=12), max_size=4)),
    st.tuples(st.none(), st.just([])),
)
example_st = st.dictionaries(names_st, feature_st, max_size=6)


def _as_feature(kind: str | None, vals: list[Any]) -> Feature:
    if kind == "int64":
        return Feature("int64", np.array(vals, dtype=np.int64))
    if kind == "float":
        return Feature("float", np.array(vals, dtype=np.float32))
    if kind == "bytes":
        arr = np.empty(len(vals), dtype=object)
        arr[:] = vals
        return Feature("bytes", arr)
    return Feature(None, np.empty(0, np.float32))


def _to_proto(d: dict[str, tuple[str | None, list[Any]]]) -> bytes:
    ex = example_pb2.Example()
    ex.features.SetInParent()  # as tf.train.Example(features=tf.train.Features(...)) does
    for name, (kind, vals) in d.items():
        f = ex.features.feature.get_or_create(name)
        if kind == "int64":
            f.int64_list.SetInParent()
            f.int64_list.value.extend(vals)
        elif kind == "float":
            f.float_list.SetInParent()
            f.float_list.value.extend(vals)
        elif kind == "bytes":
            f.bytes_list.SetInParent()
            f.bytes_list.value.extend(vals)
    return bytes(ex.SerializeToString(deterministic=True))


def _same_values(kind: str | None, got: np.ndarray[Any, Any], vals: list[Any]) -> bool:
    if kind == "float":
        # bit for bit: NaN, -0.0 and subnormals included
        return bool(got.dtype == np.float32) and bool(
            np.array_equal(got.view(np.uint32), np.array(vals, np.float32).view(np.uint32))
        )
    if kind == "int64":
        return bool(got.dtype == np.int64) and bool(got.tolist() == vals)
    return bool(list(got) == vals)


@FUZZ
@given(d=example_st)
def test_example_round_trip_and_protobuf_bytes(d: dict[str, tuple[str | None, list[Any]]]) -> None:
    data = encode_example({k: _as_feature(*v) for k, v in d.items()})
    assert data == _to_proto(d)
    out = decode_example(data)
    assert set(out) == set(d)
    for name, (kind, vals) in d.items():
        assert out[name].kind == kind
        assert _same_values(kind, out[name].values, vals), name


@FUZZ
@given(
    d=st.dictionaries(
        names_st,
        st.one_of(
            int64_st,
            float32_st.filter(lambda x: not math.isnan(x)),
            st.binary(max_size=8),
            st.text(max_size=8),
            st.lists(int64_st, min_size=1, max_size=4),
            st.lists(st.text(max_size=4), min_size=1, max_size=4),
        ),
        max_size=5,
    )
)
def test_plain_python_values_encode_like_protobuf(d: dict[str, Any]) -> None:
    """Scalars and lists (no Feature wrapper) give protobuf's bytes too."""
    as_proto: dict[str, tuple[str | None, list[Any]]] = {}
    for k, v in d.items():
        vals = v if isinstance(v, list) else [v]
        vals = [x.encode() if isinstance(x, str) else x for x in vals]
        kind = (
            "bytes"
            if isinstance(vals[0], bytes)
            else "float"
            if isinstance(vals[0], float)
            else "int64"
        )
        as_proto[k] = (kind, vals)
    assert encode_example(d) == _to_proto(as_proto)


# --------------------------------------------------------------------------- decoder on hostile bytes


def _decode_outcome(records: list[bytes], native: bool | None) -> Any:
    try:
        batch = decode_examples(records, path="f", first_index=5, native=native)
    except ExampleDecodeError as e:
        return ("error", e.reason, e.record, e.path)
    return _columns(batch)


def _columns(batch: Any) -> Any:
    out = {"num_rows": batch.num_rows}
    for name, c in batch.columns.items():
        vals = list(c.values) if c.kind == "bytes" else c.values.tobytes()
        out[name] = (
            c.kind,
            str(c.values.dtype),
            vals,
            c.row_lengths.tolist(),
            c.present.tolist(),
            c.kindless.tolist(),
        )
    return out


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """Random bytes, or a real Example with flips, a cut and/or extra bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=80))
    d = draw(example_st)
    data = bytearray(encode_example({k: _as_feature(*v) for k, v in d.items()}))
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))) :]
    data += draw(st.binary(max_size=6))
    return bytes(data)


@pytest.mark.timeout(120)
@FUZZ
@given(data=payloads())
def test_decode_example_on_hostile_bytes(data: bytes) -> None:
    try:
        out = decode_example(data, path="f", record=3, offset=99)
    except ExampleDecodeError as e:
        err = e
    else:
        for feat in out.values():
            assert feat.kind in (None, "int64", "float", "bytes")
        return
    assert (err.path, err.record, err.offset, err.reason) == ("f", 3, 99, "not_an_example")
    assert len(str(err)) < 400  # a short message, no payload dump


@pytest.mark.timeout(120)
@FUZZ
@given(records=st.lists(payloads(), max_size=5))
def test_decode_examples_native_and_python_agree_on_hostile_bytes(records: list[bytes]) -> None:
    py = _decode_outcome(records, native=False)
    if isinstance(py, tuple):
        assert py[3] == "f" and 5 <= py[2] < 5 + len(records)
    if HAS_NATIVE:
        assert _decode_outcome(records, native=True) == py


@FUZZ
@given(batch=st.lists(example_st, max_size=6))
def test_decode_examples_native_and_python_agree(batch: list[dict[str, Any]]) -> None:
    records = [encode_example({k: _as_feature(*v) for k, v in d.items()}) for d in batch]
    py = _decode_outcome(records, native=False)
    if HAS_NATIVE:
        assert _decode_outcome(records, native=True) == py
    if not isinstance(py, tuple):
        # and both agree with the per-record decoder
        for i, d in enumerate(batch):
            for name, (kind, vals) in d.items():
                col = py[name]
                if kind is None:
                    assert col[5][i] and not col[4][i]
                else:
                    assert col[4][i] and col[3][i] == len(vals)
    else:
        assert py[1] == "mixed_kind"
        kinds: dict[str, set[str]] = {}
        for d in batch:
            for name, (kind, _) in d.items():
                if kind is not None:
                    kinds.setdefault(name, set()).add(kind)
        assert any(len(k) > 1 for k in kinds.values())


# --------------------------------------------------------------------------- atheris (optional)

_ATHERIS_TARGET = textwrap.dedent(
    """
    import io, sys
    import atheris
    with atheris.instrument_imports():
        from featurepipe.errors import DataError
        from featurepipe.example._codec import decode_example, decode_examples
        from featurepipe.tfrecord import read_records

    def one_input(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        choice = fdp.ConsumeIntInRange(0, 7)
        body = fdp.ConsumeBytes(fdp.remaining_bytes())
        comp = ("auto", "none", "gzip", "zlib")[choice % 4]
        mode = "skip" if choice >= 4 else "raise"
        try:
            for _ in read_records(io.BytesIO(body), compression=comp, on_corrupt=mode,
                                  max_record_bytes=1 << 16):
                pass
        except DataError:
            pass
        try:
            decode_example(body)
        except DataError:
            pass
        try:
            decode_examples([body, body[: len(body) // 2]])
        except DataError:
            pass

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
    """
)


@pytest.mark.slow
def test_atheris_short_run(tmp_path: Any) -> None:
    pytest.importorskip("atheris")
    script = tmp_path / "fuzz_target.py"
    script.write_text(_ATHERIS_TARGET)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, data in GOLDEN.items():
        (corpus / name).write_bytes(b"\x00" + data[:2048])
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.run(
        [sys.executable, str(script), "-runs=20000", "-max_len=4096", "-timeout=10", str(corpus)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
