"""featurepipe.keras._compiled and _reader: the compiled path equals the TF ops, id for id.

The TF-op path (``make_dataset(native=False)``) is checked against
``tf.feature_column`` in test_id_parity / test_columns_parity; here the compiled
path (both its in-order reader and its ``tf.data`` map) must give the same
tensors, dtypes and static shapes on edge cases: empty strings, missing
features, multivalent lists, unicode, ``-1`` and out-of-range ids, ints hashed
as decimal strings, crosses of raw and id inputs, log-normalized buckets; and
batches it gives up on (non-canonical records) must still come out right.
"""

from __future__ import annotations

import itertools
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

from featurepipe.columns._specs import (  # noqa: E402
    BucketizedColumn,
    ColumnSpecs,
    CrossedColumn,
    EmbeddingColumn,
    HashedColumn,
    IdentityColumn,
    IndicatorColumn,
    Normalizer,
    NumericColumn,
    VocabularyColumn,
    WeightedColumn,
)
from featurepipe.errors import ConfigError  # noqa: E402
from featurepipe.example._codec import encode_example  # noqa: E402
from featurepipe.example._schema import FeatureSchema, Schema  # noqa: E402
from featurepipe.keras import make_dataset  # noqa: E402
from featurepipe.keras._compiled import native_columns_available  # noqa: E402
from featurepipe.tfrecord import write_records  # noqa: E402

pytestmark = [
    pytest.mark.tf,
    pytest.mark.skipif(not native_columns_available(), reason="featurepipe._speedups not built"),
]
WORDS = ["", "a", "b", "é", "日本", "zz", "🙂", "x" * 70]


def _examples(n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(0, 4))
        feats: dict[str, Any] = {
            "n": int(rng.integers(-3, 50)),
            "v": rng.normal(size=2).astype(np.float32),
            "s": WORDS[int(rng.integers(0, len(WORDS)))],
            "i": int(rng.integers(-2, 12)),
            "city": np.array([WORDS[j] for j in rng.integers(0, len(WORDS), k)], dtype=object),
            "tag": rng.integers(-1, 9, k).astype(np.int64),
            "label": float(i % 2),
        }
        if i % 5 == 0:
            feats.pop("city")  # missing variable-length feature
        if i % 7 == 0:
            feats.pop("s")  # missing scalar: the default ""
        if i % 3 == 0:
            feats.pop("n")  # missing scalar: the default 0
        out.append(encode_example(feats))
    return out


def _specs() -> ColumnSpecs:
    nb = BucketizedColumn(
        NumericColumn(
            "n", dtype="int64", default_value=0, normalizer=Normalizer("log", offset=4.0)
        ),
        bin_boundaries=(0.5, 1.5, 2.0, 3.0),
    )
    vb = BucketizedColumn(NumericColumn("v", shape=(2,)), bin_boundaries=(-1.0, 0.0, 1.0))
    city_vocab = VocabularyColumn(
        "city", vocabulary=("a", "b", "é", "日本", "x" * 70), num_oov_buckets=3
    )
    return ColumnSpecs(
        (
            NumericColumn(
                "n",
                dtype="int64",
                default_value=0,
                normalizer=Normalizer("z_score", mean=10.0, variance=4.0),
            ),
            NumericColumn("v", shape=(2,), normalizer=Normalizer("min_max", min=-2.0, max=2.0)),
            nb,
            vb,
            EmbeddingColumn(HashedColumn("s", 1000), 4),
            IndicatorColumn(VocabularyColumn("s", vocabulary=("a", "zz"), num_oov_buckets=0)),
            EmbeddingColumn(city_vocab, 4),
            IndicatorColumn(HashedColumn("city", 7)),
            EmbeddingColumn(HashedColumn("tag", 50, dtype="int64"), 3),
            IndicatorColumn(IdentityColumn("i", 10, default_value=0)),
            IndicatorColumn(IdentityColumn("tag", 8)),
            EmbeddingColumn(
                VocabularyColumn("i", vocabulary=(1, 3, 5), dtype="int64", num_oov_buckets=4), 2
            ),
            EmbeddingColumn(CrossedColumn(("s", "city", nb), 101), 2),
            EmbeddingColumn(CrossedColumn((city_vocab, "i", vb), 2**40, hash_key=7), 2),
        )
    )


def _schema() -> Schema:
    return Schema(
        (
            FeatureSchema("n", "int64", shape=(), required=False, default=0),
            FeatureSchema("v", "float", shape=(2,)),
            FeatureSchema("s", "bytes", shape=(), required=False, default=""),
            FeatureSchema("i", "int64", shape=()),
            FeatureSchema("city", "bytes", shape=None),
            FeatureSchema("tag", "int64", shape=None),
            FeatureSchema("label", "float", shape=()),
        )
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    d = tmp_path_factory.mktemp("compiled")
    paths = []
    for i, comp in enumerate(["none", "gzip"]):
        p = str(d / f"part-{i}.tfrecord")
        write_records(p, _examples(70, seed=i), comp)  # type: ignore[arg-type]
        paths.append(p)
    return paths


def _batches(ds: tf.data.Dataset) -> list[Any]:
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds]


def _assert_same(fast: tf.data.Dataset, slow: tf.data.Dataset) -> None:
    assert fast.element_spec == slow.element_spec
    a, b = _batches(fast), _batches(slow)
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        fx, fy = tf.nest.flatten(x), tf.nest.flatten(y)
        assert len(fx) == len(fy)
        for u, v in zip(fx, fy, strict=True):
            assert u.dtype == v.dtype and u.shape == v.shape
            np.testing.assert_array_equal(u, v)


def _rows(ds: tf.data.Dataset) -> list[tuple[Any, ...]]:
    """Every example as a tuple (label, then each output's row): order-free comparisons.
    Trailing -1s of id rows (the padding of a batch's widest row) are dropped."""
    rows = []
    for feats, label in ds:
        f = {k: v.numpy() for k, v in feats.items()}
        lab = label.numpy()
        for r in range(lab.shape[0]):
            key: list[Any] = [lab[r].tolist()]
            for k in sorted(f):
                row = f[k][r].ravel().tolist()
                if f[k].dtype == np.int64:
                    while row and row[-1] == -1:
                        row.pop()
                key.append(tuple(row))
            rows.append(tuple(key))
    return rows


def _assert_same_records(fast: tf.data.Dataset, slow: tf.data.Dataset) -> None:
    """The same examples (each as often), in any order: shuffled paths."""
    assert fast.element_spec == slow.element_spec
    a, b = _rows(fast), _rows(slow)
    assert len(a) == len(b) > 0
    assert sorted(a) == sorted(b)


@pytest.mark.parametrize("use_schema", [True, False])
@pytest.mark.parametrize(
    "options",
    [
        {"shuffle": False},  # in-order reader, a generator of whole batches
        {"shuffle": False, "num_epochs": 2, "drop_remainder": True},
        {"shuffle": False, "num_parallel_reads": 1, "num_epochs": 2},  # files in turn
        {"shuffle": True, "seed": 3},  # shuffled: records drawn from a buffer of references
        {"shuffle": True, "seed": 3, "num_epochs": 2, "shuffle_buffer_size": 7},
        {"shuffle": True, "num_parallel_reads": 1},
    ],
)
def test_compiled_equals_tf_ops(
    files: list[str], use_schema: bool, options: dict[str, Any]
) -> None:
    kw: dict[str, Any] = {"columns": _specs(), "label_key": "label", "batch_size": 16}
    if use_schema:
        kw["schema"] = _schema()
    for path in (files[0], files[1], files):
        fast = make_dataset(path, native=True if use_schema else None, **kw, **options)
        slow = make_dataset(path, native=False, **kw, **options)
        if options["shuffle"]:
            _assert_same_records(fast, slow)
        else:
            _assert_same(fast, slow)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _with_unpacked_int(features: dict[str, Any], key: str, value: int) -> bytes:
    """A valid Example whose ``key`` is an unpacked int64 list (protobuf accepts both)."""
    rec = encode_example(features)
    assert rec[0] == 0x0A
    body = rec[1:]
    n, shift, i = 0, 0, 0
    while True:  # the length of Example.features
        n |= (body[i] & 0x7F) << shift
        shift += 7
        i += 1
        if not body[i - 1] & 0x80:
            break
    entries = body[i : i + n]
    ints = b"\x08" + _varint(value)
    feature = b"\x1a" + _varint(len(ints)) + ints
    entry = b"\x0a" + _varint(len(key)) + key.encode() + b"\x12" + _varint(len(feature)) + feature
    entry = b"\x0a" + _varint(len(entry)) + entry
    entries += entry
    return b"\x0a" + _varint(len(entries)) + entries


def test_compiled_falls_back_on_records_it_does_not_decode(tmp_path: Path) -> None:
    good = _examples(20, seed=5)
    odd = _with_unpacked_int({"v": [0.5, -1.5], "s": "a", "label": 1.0, "tag": [3, -1]}, "i", 3)
    records = [*good[:5], odd, *good[5:]]
    path = str(tmp_path / "odd.tfrecord")
    write_records(path, records)
    kw: dict[str, Any] = {
        "columns": _specs(),
        "label_key": "label",
        "batch_size": 8,
        "schema": _schema(),
        "shuffle": False,
    }
    slow = _batches(make_dataset(path, native=False, **kw))
    assert slow[0][0]["i_indicator"][5].tolist() == [3]
    _assert_same(make_dataset(path, native=True, **kw), make_dataset(path, native=False, **kw))
    _assert_same(  # tf.data's interleave and the compiled map
        make_dataset([path, path], native=True, **{**kw, "num_parallel_reads": 2}),
        make_dataset([path, path], native=False, **{**kw, "num_parallel_reads": 2}),
    )
    _assert_same_records(  # shuffled, the odd record in some batch
        make_dataset([path, path], native=True, **{**kw, "shuffle": True, "seed": 1}),
        make_dataset([path, path], native=False, **{**kw, "shuffle": True, "seed": 1}),
    )


def test_compiled_missing_required_feature_raises(tmp_path: Path) -> None:
    path = str(tmp_path / "missing.tfrecord")
    write_records(path, [encode_example({"label": 1.0, "v": [0.0, 1.0]})])  # no "i"
    kw: dict[str, Any] = {
        "columns": _specs(),
        "label_key": "label",
        "batch_size": 4,
        "schema": _schema(),
        "shuffle": False,
    }
    with pytest.raises(tf.errors.OpError):
        _batches(make_dataset(path, native=False, **kw))
    with pytest.raises(Exception, match=r"(?i)required|could not be found"):
        _batches(make_dataset(path, native=True, **kw))


def test_native_true_refuses_what_it_cannot_compile(files: list[str]) -> None:
    specs = ColumnSpecs((EmbeddingColumn(WeightedColumn(IdentityColumn("tag", 10), "w"), 2),))
    with pytest.raises(ConfigError, match="native=True"):
        make_dataset(files[0], batch_size=4, columns=specs, native=True)
    # native=None falls back to the TF ops quietly
    make_dataset(files[0], batch_size=4, columns=specs, label_key="label")


def test_fingerprint64_matches_tf_and_pyfarmhash() -> None:
    from featurepipe import _speedups
    from featurepipe.columns._hashing import fingerprint64

    rnd = random.Random(0)
    values = [bytes(rnd.getrandbits(8) for _ in range(n)) for n in range(260)]
    values += [w.encode() for w in WORDS]
    ours = [_speedups.fingerprint64(v) for v in values]  # type: ignore[attr-defined]
    assert ours == [fingerprint64(v) for v in values]
    tf_ids = tf.strings.to_hash_bucket_fast(tf.constant(values), 2**62).numpy()
    assert [h % 2**62 for h in ours] == tf_ids.tolist()


def test_in_order_reader_small_chunks_and_damage(
    files: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from featurepipe.tfrecord import _windows

    # Records cross chunk boundaries, and some are bigger than a chunk.
    monkeypatch.setattr(_windows, "_CHUNK_BYTES", 64)
    kw: dict[str, Any] = {"columns": _specs(), "label_key": "label", "batch_size": 16}
    _assert_same(
        make_dataset(files[0], native=True, shuffle=False, schema=_schema(), **kw),
        make_dataset(files[0], native=False, shuffle=False, schema=_schema(), **kw),
    )
    # A truncated file: the records before the damage, then an error.
    data = Path(files[0]).read_bytes()
    cut = str(tmp_path / "cut.tfrecord")
    Path(cut).write_bytes(data[: len(data) - 10])
    with pytest.raises(tf.errors.OpError):
        _batches(make_dataset(cut, native=False, shuffle=False, **kw))
    with pytest.raises(Exception, match=r"(?i)truncat|corrupt"):
        _batches(make_dataset(cut, native=True, shuffle=False, **kw))


@pytest.mark.parametrize("threads", [0, 1, 3])
def test_in_order_reader_inline_and_on_runner_threads(
    files: list[str], threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from featurepipe.keras import _reader

    monkeypatch.setattr(_reader, "_THREADS", threads)
    kw: dict[str, Any] = {"columns": _specs(), "label_key": "label", "batch_size": 8}
    options: dict[str, Any] = {"shuffle": False, "num_parallel_reads": 1, "num_epochs": 3}
    _assert_same(
        make_dataset(files, native=True, schema=_schema(), **kw, **options),
        make_dataset(files, native=False, schema=_schema(), **kw, **options),
    )
    # an abandoned iterator does not disturb the next one
    first = next(iter(make_dataset(files[0], native=True, shuffle=False, **kw)))
    assert first[1].shape == (8,)


# ----------------------------------------------------------------------------- the runner


def _plan() -> Any:
    from featurepipe.keras._compiled import CompiledTransform
    from featurepipe.keras._data import parse_spec_from_schema
    from featurepipe.keras._preprocessing import ColumnTransform

    spec = parse_spec_from_schema(_schema())
    dense = {k for k, v in spec.items() if isinstance(v, tf.io.FixedLenFeature)}
    compiled = CompiledTransform.build(
        spec, ColumnTransform(_specs(), dense_keys=dense), "label", lambda s: s
    )
    assert compiled is not None
    return compiled.plan.handle


def _framed(records: list[bytes]) -> bytes:
    from featurepipe import _speedups

    return _speedups.frame_records(records)  # type: ignore[attr-defined,no-any-return]


def _outputs(got: Any) -> list[bytes]:
    assert got is not None
    return [bytes(memoryview(b)) for b in got[0]]


def test_scan_frames_agrees_with_scan_records() -> None:
    from featurepipe import _speedups

    records = [*_examples(30, seed=2), b"", b"x" * 300]
    data = _framed(records)
    starts, nxt, status = _speedups.scan_frames(data, 0, 1 << 20)  # type: ignore[attr-defined]
    offsets = np.frombuffer(starts, dtype=np.int64).tolist()
    assert (nxt, status) == (len(data), 0) and len(offsets) == len(records) + 1
    assert [data[s + 12 : e - 4] for s, e in itertools.pairwise(offsets)] == records
    # From a later frame; a truncated tail; a bad data CRC; a record over the limit.
    third = offsets[3]
    got = _speedups.scan_frames(data, third, 1 << 20)  # type: ignore[attr-defined]
    assert np.frombuffer(got[0], dtype=np.int64).tolist() == offsets[3:]
    for buf, limit in (
        (data[:-5], 1 << 20),
        (data[: third + 20] + bytes([data[third + 20] ^ 1]) + data[third + 21 :], 1 << 20),
        (data, 200),
    ):
        want = _speedups.scan_records(buf, 0, True, limit, False)  # type: ignore[attr-defined]
        s, n, st = _speedups.scan_frames(buf, 0, limit)  # type: ignore[attr-defined]
        assert (len(s) // 8 - 1, n, st) == want


@pytest.mark.parametrize("threads", [1, 3])
def test_runner_equals_columns_run_in_order(threads: int) -> None:
    from featurepipe import _speedups

    plan = _plan()
    records = _examples(200, seed=4)
    data = _framed(records)
    starts = _speedups.scan_frames(data, 0, 1 << 20)[0]  # type: ignore[attr-defined]
    runner = _speedups.ColumnsRunner(plan, threads)  # type: ignore[attr-defined]
    # Batches of frames, of payload lists, and of both, submitted well ahead.
    batches: list[tuple[list[Any], list[bytes]]] = []
    for first in range(0, 200, 16):
        n = min(16, 200 - first)
        if first % 48 == 0:
            units: list[Any] = [list(records[first : first + n])]
        elif first % 48 == 16:
            units = [(data, starts, first, n)]
        else:
            k = n // 2
            units = [(data, starts, first, k), list(records[first + k : first + n])]
        batches.append((units, records[first : first + n]))
    for units, _ in batches:
        runner.submit(units)
    assert runner.pending == len(batches)
    for _, recs in batches:
        got = runner.take()
        assert _outputs(got) == _outputs(_speedups.columns_run(plan, recs))  # type: ignore[attr-defined]
        arr = np.frombuffer(got[0][0], dtype=np.float32)
        assert not arr.flags.writeable and arr.ctypes.data % 64 == 0  # TF takes it, no copy
    assert runner.pending == 0
    with pytest.raises(RuntimeError, match="without a batch"):
        runner.take()
    runner.close()
    with pytest.raises(RuntimeError, match="closed"):
        runner.submit([records[:2]])


def test_runner_gives_up_like_columns_run_and_checks_its_input() -> None:
    from featurepipe import _speedups

    plan = _plan()
    odd = _with_unpacked_int({"v": [0.5, -1.5], "s": "a", "label": 1.0, "tag": [3, -1]}, "i", 3)
    runner = _speedups.ColumnsRunner(plan)  # type: ignore[attr-defined]
    runner.submit([[*_examples(3), odd]])
    assert runner.take() is None  # TF's ops decide that batch
    data = _framed(_examples(4))
    starts = _speedups.scan_frames(data, 0, 1 << 20)[0]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="not in `starts`"):
        runner.submit([(data, starts, 2, 3)])
    bad = np.frombuffer(starts, dtype=np.int64).copy()
    bad[2] = len(data) + 100
    with pytest.raises(ValueError, match="does not describe"):
        runner.submit([(data, bad.tobytes(), 0, 4)])
    with pytest.raises(TypeError):
        runner.submit([["not bytes"]])
    with pytest.raises(ValueError, match="threads"):
        _speedups.ColumnsRunner(plan, 0)  # type: ignore[attr-defined]
    # A runner dropped with batches queued stops its thread and frees them.
    for _ in range(20):
        r = _speedups.ColumnsRunner(plan, 2)  # type: ignore[attr-defined]
        for _ in range(5):
            r.submit([_examples(64)])
        del r


def test_runner_threads_leave_when_idle_and_come_back() -> None:
    import time

    from featurepipe import _speedups

    plan = _plan()
    records = _examples(32)
    want = _outputs(_speedups.columns_run(plan, records))  # type: ignore[attr-defined]
    runner = _speedups.ColumnsRunner(plan, 2)  # type: ignore[attr-defined]
    assert runner.workers == 0  # none before the first batch
    runner.submit([records])
    runner.submit([records])
    assert _outputs(runner.take()) == want
    assert runner.workers in (1, 2)
    deadline = time.monotonic() + 10
    while runner.workers and time.monotonic() < deadline:
        time.sleep(0.2)  # an abandoned runner holds no thread after ~2 s idle
    assert runner.workers == 0
    assert _outputs(runner.take()) == want  # the queued result is still there
    runner.submit([records])
    assert _outputs(runner.take()) == want  # a worker starts again
    runner.close()
    assert runner.workers == 0


# ----------------------------------------------------------------------------- shuffled reads


def _labels(ds: tf.data.Dataset) -> list[float]:
    return [x for _, label in ds for x in label.numpy().tolist()]


def _ordered_examples(n: int) -> list[bytes]:
    """Examples whose label is their index: orders are visible in the labels."""
    return [
        encode_example(
            {"v": [0.5, -1.5], "i": k % 9, "s": WORDS[k % len(WORDS)], "label": float(k)}
        )
        for k in range(n)
    ]


@pytest.fixture(scope="module")
def ordered(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    d = tmp_path_factory.mktemp("ordered")
    paths = []
    for i, comp in enumerate(["none", "none", "gzip"]):
        p = str(d / f"part-{i}.tfrecord")
        recs = _ordered_examples(90)[i * 30 : (i + 1) * 30]
        write_records(p, recs, comp)  # type: ignore[arg-type]
        paths.append(p)
    return paths


def test_shuffled_reads_are_seeded_reshuffled_and_complete(
    ordered: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from featurepipe.tfrecord import _windows

    monkeypatch.setattr(_windows, "_SHUFFLE_CHUNK_BYTES", 512)  # several windows per file
    kw: dict[str, Any] = {
        "columns": _specs(),
        "label_key": "label",
        "batch_size": 8,
        "schema": _schema(),
        "native": True,
    }
    everything = list(range(90))
    ds = make_dataset(ordered, shuffle=True, seed=5, shuffle_buffer_size=16, **kw)
    first, second = _labels(ds), _labels(ds)
    assert sorted(first) == sorted(second) == everything
    assert first != second  # each iterator draws anew
    assert first != sorted(first)  # and really shuffles
    again = make_dataset(ordered, shuffle=True, seed=5, shuffle_buffer_size=16, **kw)
    assert _labels(again) == first  # the same seed, the same order
    other = make_dataset(ordered, shuffle=True, seed=6, shuffle_buffer_size=16, **kw)
    assert _labels(other) != first
    # Epochs: every record once per epoch; batches run on across epochs.
    three = make_dataset(ordered, shuffle=True, seed=1, num_epochs=3, **kw)
    got = _labels(three)
    assert sorted(got) == sorted(everything * 3)
    assert [sorted(got[k * 90 : (k + 1) * 90]) for k in range(3)] == [everything] * 3
    dropped = make_dataset(ordered, shuffle=True, seed=1, num_epochs=3, drop_remainder=True, **kw)
    assert len(_labels(dropped)) == 270 // 8 * 8
    # A buffer of one record and one file: the file's order.
    one = make_dataset(ordered[0], shuffle=True, seed=2, shuffle_buffer_size=1, **kw)
    _assert_same(one, make_dataset(ordered[0], shuffle=False, **kw))
    # Files read one at a time, a buffer of one: the files in some order.
    seq = _labels(
        make_dataset(
            ordered, shuffle=True, seed=2, shuffle_buffer_size=1, num_parallel_reads=1, **kw
        )
    )
    parts = [seq[k * 30 : (k + 1) * 30] for k in range(3)]
    assert sorted(parts) == [everything[k * 30 : (k + 1) * 30] for k in range(3)]


def test_shuffled_reads_raise_on_damage(files: list[str], tmp_path: Path) -> None:
    data = Path(files[0]).read_bytes()
    cut = str(tmp_path / "cut.tfrecord")
    Path(cut).write_bytes(data[: len(data) - 10])
    kw: dict[str, Any] = {"columns": _specs(), "label_key": "label", "batch_size": 16}
    with pytest.raises(Exception, match=r"(?i)truncat|corrupt"):
        _batches(make_dataset(cut, native=True, shuffle=True, seed=0, schema=_schema(), **kw))


def test_runner_gather_units() -> None:
    from featurepipe import _speedups

    plan = _plan()
    records = _examples(40, seed=9)
    data = _framed(records[:25])
    starts = _speedups.scan_frames(data, 0, 1 << 20)[0]  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    # rows 0..14: 10 records from the frames, 5 from a list, in a random order
    pick_f = rng.choice(25, 10, replace=False).astype(np.int64)
    pick_l = rng.choice(15, 5, replace=False).astype(np.int64)
    rows = rng.permutation(15).astype(np.int64)
    want = [records[i] for i in pick_f] + [records[25 + i] for i in pick_l]
    batch = [None] * 15
    for r, rec in zip(rows.tolist(), want, strict=True):
        batch[r] = rec
    runner = _speedups.ColumnsRunner(plan)  # type: ignore[attr-defined]
    units = [(data, starts, pick_f, rows[:10]), (records[25:], None, pick_l, rows[10:])]
    runner.submit(units)
    expected = _speedups.columns_run(plan, batch)  # type: ignore[attr-defined]
    assert _outputs(runner.take()) == _outputs(expected)
    bad_units = [
        [(data, starts, pick_f, rows[:10]), (data, starts, 0, 3)],  # mixed kinds
        [(data, starts, pick_f, np.zeros(10, np.int64))],  # a row twice
        [(data, starts, np.array([25], np.int64), np.array([0], np.int64))],  # no frame 25
        [(data, starts, pick_f, rows[:9])],  # lengths differ
    ]
    for units in bad_units:
        with pytest.raises(ValueError):
            runner.submit(units)
    assert runner.pending == 0
    runner.close()


@pytest.mark.parametrize("shuffle", [False, True])
def test_files_without_records_end_even_when_repeated(tmp_path: Path, shuffle: bool) -> None:
    path = str(tmp_path / "empty.tfrecord")
    write_records(path, [])
    kw: dict[str, Any] = {"columns": _specs(), "label_key": "label", "batch_size": 4}
    ds = make_dataset(path, native=True, schema=_schema(), shuffle=shuffle, num_epochs=None, **kw)
    assert _batches(ds) == []


def _until_error(ds: tf.data.Dataset) -> tuple[list[Any], BaseException | None]:
    got: list[Any] = []
    it = iter(ds)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return got, None
        except Exception as e:  # the error is what is compared
            return got, e
        got.append(tf.nest.map_structure(lambda t: t.numpy(), batch))


def test_batches_before_damage_come_out_before_the_error(tmp_path: Path) -> None:
    # The runner works 4 batches ahead: the ones before the damage still come out first.
    records = _examples(200, seed=3)
    path = str(tmp_path / "cut.tfrecord")
    write_records(path, records)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) - 10])
    kw: dict[str, Any] = {
        "columns": _specs(),
        "label_key": "label",
        "batch_size": 8,
        "schema": _schema(),
        "shuffle": False,
    }
    fast, fast_err = _until_error(make_dataset(path, native=True, **kw))
    slow, slow_err = _until_error(make_dataset(path, native=False, **kw))
    assert fast_err is not None and slow_err is not None
    assert "cut.tfrecord" in str(fast_err)
    assert len(fast) == len(slow) == 199 // 8
    for x, y in zip(fast, slow, strict=True):
        for u, v in zip(tf.nest.flatten(x), tf.nest.flatten(y), strict=True):
            np.testing.assert_array_equal(u, v)


def test_shuffled_reads_follow_the_global_seed(ordered: list[str]) -> None:
    import keras

    kw: dict[str, Any] = {"columns": _specs(), "label_key": "label", "batch_size": 8}
    orders = []
    for _ in range(2):
        keras.utils.set_random_seed(11)  # seeds TF too: shuffle(seed=None) repeats
        ds = make_dataset(ordered, native=True, schema=_schema(), shuffle=True, **kw)
        orders.append(_labels(ds))
    assert orders[0] == orders[1] and orders[0] != sorted(orders[0])
    keras.utils.set_random_seed(12)
    ds = make_dataset(ordered, native=True, schema=_schema(), shuffle=True, **kw)
    assert _labels(ds) != orders[0]


_EXIT_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import test_compiled as t
from featurepipe.keras import make_dataset
ds = make_dataset({path!r}, batch_size=2048, columns=t._specs(), label_key="label",
                  schema=t._schema(), native=True, shuffle={shuffle}, num_epochs=None)
it = iter(ds)
for _ in range(5):
    next(it)
print("exiting", flush=True)
"""


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("big") / "big.tfrecord")
    write_records(path, _examples(8192, seed=4))
    return path


def test_a_script_exits_with_a_live_iterator(big_file: str) -> None:
    # Without the exit guard, the prefetch thread, inside the numpy_function when
    # Python finalizes (it is refilling the buffer: batches of 2048 take a few ms),
    # never finishes, and deleting the iterator waits for it: the script hangs.
    # Both read orders, as two scripts at once (each pays TensorFlow's import).
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = {}
    for shuffle in (False, True):
        script = _EXIT_SCRIPT.format(
            tests=str(Path(__file__).parent), path=big_file, shuffle=shuffle
        )
        procs[shuffle] = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    try:
        for shuffle, proc in procs.items():
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, (f"shuffle={shuffle}", err[-2000:])
            assert "exiting" in out, f"shuffle={shuffle}"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
