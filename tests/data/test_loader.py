"""featurepipe.data.Loader: exact sharding, equal steps, shuffling, resuming, damage.

Every record carries its global number (``id``, the label), so a test can tell
exactly which records each ``(rank, worker)`` read.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from featurepipe.columns import (
    HashedColumn,
    IdentityColumn,
    IndicatorColumn,
    NumericColumn,
    VocabularyColumn,
    WeightedColumn,
)
from featurepipe.data import Loader, RaggedIds
from featurepipe.errors import ConfigError, CorruptRecordError, SchemaMismatchError
from featurepipe.example import encode_example
from featurepipe.tfrecord import TFRecordWriter, write_records

ROOT = Path(__file__).resolve().parents[2]
SPECS = [
    NumericColumn("x"),
    HashedColumn("c", 50),
    WeightedColumn(IdentityColumn("t", 10, default_value=0), "w"),
]


def _record(i: int) -> bytes:
    k = i % 3
    return encode_example(
        {
            "id": i,
            "x": [float(i) / 2],
            "c": np.array([f"c{j}" for j in range(i % 4)], dtype=object),
            "t": np.array([(i + j) % 12 for j in range(k)], dtype=np.int64),
            "w": np.array([0.5 + j for j in range(k)], dtype=np.float32),
        }
    )


def _write(d: Path, sizes: list[int], compression: str = "none") -> list[str]:
    paths, base = [], 0
    for f, n in enumerate(sizes):
        p = str(d / f"part-{f}.tfrecord")
        write_records(p, [_record(base + i) for i in range(n)], compression)  # type: ignore[arg-type]
        paths.append(p)
        base += n
    return paths


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _write(tmp_path_factory.mktemp("loader"), [11, 3, 9])  # 23 records


@pytest.fixture(scope="module")
def gz_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _write(tmp_path_factory.mktemp("loader_gz"), [11, 3, 9], "gzip")


def _ids(batch: Any) -> list[int]:
    return batch[1].tolist()


def _epoch(loader: Loader) -> list[Any]:
    return list(loader)


def _rank_stream(loader: Loader, num_workers: int) -> list[Any]:
    """The rank's batches as torch's DataLoader gives them: its workers' batches in turn."""
    streams = [
        _epoch(loader.with_shard(worker=w, num_workers=num_workers)) for w in range(num_workers)
    ]
    out = []
    for k in range(max(len(s) for s in streams)):
        out += [s[k] for s in streams if k < len(s)]
    return out


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("uneven", ["pad", "drop", "repeat"])
@pytest.mark.parametrize(("world", "workers"), [(1, 1), (2, 3), (4, 2), (5, 1), (30, 2)])
def test_partition(files: list[str], shuffle: bool, uneven: str, world: int, workers: int) -> None:
    _check_partition(files, shuffle, uneven, world, workers)


@pytest.mark.parametrize("uneven", ["pad", "drop", "repeat"])
@pytest.mark.parametrize(("world", "workers"), [(2, 3), (4, 2), (30, 1)])
def test_partition_compressed(gz_files: list[str], uneven: str, world: int, workers: int) -> None:
    _check_partition(gz_files, True, uneven, world, workers)


def _check_partition(
    files: list[str], shuffle: bool, uneven: str, world: int, workers: int
) -> None:
    n = 23
    base = Loader(
        files,
        SPECS,
        batch_size=4,
        label_key="id",
        shuffle=shuffle,
        seed=7,
        uneven=uneven,
        shuffle_buffer=6,
    )
    assert base.num_records == n
    seen: Counter[int] = Counter()
    real: Counter[int] = Counter()
    lens = set()
    for r in range(world):
        rank_batches = 0
        for w in range(workers):
            part = base.with_shard(rank=r, world_size=world, worker=w, num_workers=workers)
            batches = _epoch(part)
            assert len(batches) == len(part)
            rank_batches += len(batches)
            for b in batches:
                ids = _ids(b)
                seen.update(ids)
                if uneven == "pad":
                    real.update(i for i, wt in zip(ids, b[2].tolist(), strict=True) if wt == 1.0)
                    assert set(b[2].tolist()) <= {0.0, 1.0}
                else:
                    assert len(b) == 2
        lens.add(rank_batches)
    assert len(lens) == 1  # every rank yields the same number of batches
    per_rank = -(-n // world) if uneven != "drop" else n // world
    assert sum(seen.values()) == per_rank * world
    if uneven == "pad":
        assert real == Counter(range(n))  # every record exactly once at weight 1
    elif uneven == "repeat":
        assert set(seen) == set(range(n)) and max(seen.values()) <= 2
    else:
        assert set(seen.values()) <= {1} and len(seen) == n // world * world


def test_fewer_files_than_workers(tmp_path: Path) -> None:
    (path,) = _write(tmp_path, [10])
    loader = Loader(path, SPECS, batch_size=1, label_key="id", uneven="drop")
    got = [_ids(b) for w in range(4) for b in _epoch(loader.with_shard(worker=w, num_workers=4))]
    assert sorted(i for b in got for i in b) == list(range(10))
    assert [len(loader.with_shard(worker=w, num_workers=4)) for w in range(4)] == [3, 3, 2, 2]


@pytest.mark.parametrize("shuffle", [False, True])
def test_rank_stream_does_not_depend_on_num_workers(files: list[str], shuffle: bool) -> None:
    loader = Loader(
        files, SPECS, batch_size=3, label_key="id", shuffle=shuffle, seed=1, world_size=2, rank=1
    )
    one = [_ids(b) for b in _rank_stream(loader, 1)]
    three = [_ids(b) for b in _rank_stream(loader, 3)]
    assert one == three and len(one) == 4


def test_shuffle_is_seeded_per_epoch_and_global(files: list[str]) -> None:
    def order(seed: int, epoch: int, world: int = 1) -> list[int]:
        loader = Loader(files, SPECS, batch_size=5, label_key="id", shuffle=True, seed=seed)
        loader.set_epoch(epoch)
        out = []
        for r in range(world):
            out += [i for b in _epoch(loader.with_shard(rank=r, world_size=world)) for i in _ids(b)]
        return out

    assert order(3, 0) == order(3, 0)
    assert sorted(order(3, 0)) == list(range(23))
    assert order(3, 0) != order(3, 1)
    assert order(3, 0) != order(4, 0)
    assert order(3, 0) != list(range(23))
    # one permutation of the record numbers per epoch, whatever the world size (pad: 24)
    assert order(3, 2, world=3)[:7] == order(3, 2)[:7]


def test_passes_repeat_the_epoch_until_set_epoch(files: list[str]) -> None:
    loader = Loader(files, SPECS, batch_size=5, label_key="id", shuffle=True)
    a, b = [_ids(x) for x in loader], [_ids(x) for x in loader]
    loader.set_epoch(1)
    c = [_ids(x) for x in loader]
    assert a == b != c


@pytest.mark.parametrize("compressed", [False, True])
def test_state_dict_resumes_mid_epoch(
    files: list[str], gz_files: list[str], compressed: bool
) -> None:
    data = gz_files if compressed else files
    kw: dict[str, Any] = {
        "batch_size": 3,
        "label_key": "id",
        "shuffle": True,
        "seed": 5,
        "world_size": 2,
        "rank": 1,
        "shuffle_buffer": 4,
    }
    loader = Loader(data, SPECS, **kw)
    loader.set_epoch(2)
    full = [_ids(b) for b in loader]
    loader.set_epoch(2)
    it = iter(loader)
    head = [_ids(next(it)) for _ in range(4)]
    state = json.loads(json.dumps(loader.state_dict()))
    assert state["epoch"] == 2 and state["batches"] == 4
    fresh = Loader(data, SPECS, **kw)
    fresh.load_state_dict(state)
    rest = [_ids(b) for b in fresh]
    assert head + rest == full
    # into a loader with three workers: the remaining batches, shared out among them
    workers = [Loader(data, SPECS, **kw).with_shard(worker=w, num_workers=3) for w in range(3)]
    for w in workers:
        w.load_state_dict(state)
    parts = [[_ids(b) for b in w] for w in workers]
    merged = [parts[k % 3][k // 3] for k in range(sum(map(len, parts)))]
    assert merged == rest
    # the epoch is done once resumed to its end; the next pass starts it again
    assert [_ids(b) for b in fresh] == full
    bad = dict(state, fingerprint="0" * 16)
    with pytest.raises(ConfigError, match="other data or settings"):
        fresh.load_state_dict(bad)


def test_offsets_mode_holds_the_padded_ids(files: list[str]) -> None:
    kw: dict[str, Any] = {"batch_size": 7, "label_key": "id", "uneven": "drop"}
    padded = list(Loader(files, SPECS, **kw))
    offsets = list(Loader(files, SPECS, ids="offsets", **kw))
    assert len(padded) == len(offsets) == 4
    for (fp, lp), (fo, lo) in zip(padded, offsets, strict=True):
        assert list(fp) == ["x", "c", "t_weighted_by_w", "t_weighted_by_w__weights"]
        assert list(fo) == ["x", "c", "t_weighted_by_w"]
        np.testing.assert_array_equal(lp, lo)
        np.testing.assert_array_equal(fp["x"], fo["x"])
        c = fo["c"]
        assert isinstance(c, RaggedIds) and c.weights is None
        assert c.to_lists() == [[v for v in row if v >= 0] for row in fp["c"].tolist()]
        t = fo["t_weighted_by_w"]
        ids, wts = fp["t_weighted_by_w"], fp["t_weighted_by_w__weights"]
        assert t.to_lists() == [[v for v in row if v >= 0] for row in ids.tolist()]
        np.testing.assert_array_equal(t.weights, wts[ids >= 0])
        assert t.values.dtype == np.int64 and t.offsets.dtype == np.int64
        assert t.weights is not None and t.weights.dtype == np.float32


def test_pure_python_equals_compiled(files: list[str]) -> None:
    specs = [
        NumericColumn("x"),
        HashedColumn("c", 50),
        IndicatorColumn(VocabularyColumn("c", vocabulary=("c0", "c2"), num_oov_buckets=2)),
    ]
    kw: dict[str, Any] = {"batch_size": 6, "label_key": "id", "shuffle": True}
    fast = list(Loader(files, specs, **kw))
    slow = list(Loader(files, specs, native=False, **kw))
    assert not Loader(files, specs, native=False, **kw).native
    for a, b in zip(fast, slow, strict=True):
        for k in a[0]:
            assert a[0][k].dtype == b[0][k].dtype
            np.testing.assert_array_equal(a[0][k], b[0][k])
        np.testing.assert_array_equal(a[1], b[1])


def test_pickled_loader_reads_the_same(files: list[str]) -> None:
    loader = Loader(files, SPECS, batch_size=4, label_key="id", shuffle=True)
    next(iter(loader))
    copy = pickle.loads(pickle.dumps(loader))
    assert [_ids(b) for b in copy] == [_ids(b) for b in loader]


def _flip(path: str, offset: int) -> None:
    st = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the index still looks current


@pytest.mark.parametrize("batch_size", [4, 16])  # records one by one; a run in one scan
@pytest.mark.parametrize("where", ["payload", "length", "footer"])
def test_damaged_record_raises_or_is_skipped(tmp_path: Path, batch_size: int, where: str) -> None:
    path = str(tmp_path / "d.tfrecord")
    with TFRecordWriter(path, write_index=True) as w:
        w.write_many([_record(i) for i in range(20)])
    offset = sum(16 + len(_record(i)) for i in range(3))
    at = {"payload": 20, "length": 1, "footer": 16 + len(_record(3)) - 2}[where]
    _flip(path, offset + at)  # inside record 3
    loader = Loader(path, SPECS, batch_size=batch_size, label_key="id")
    with pytest.raises(CorruptRecordError) as e:
        list(loader)
    assert e.value.path == path and e.value.record == 3 and e.value.offset == offset
    assert f"{path}, record 3, offset {offset}" in str(e.value)
    skipping = Loader(path, SPECS, batch_size=batch_size, label_key="id", on_corrupt="skip")
    got = [_ids(b) for b in skipping]
    ids = list(range(20))
    want = [[i for i in ids[k : k + batch_size] if i != 3] for k in range(0, 20, batch_size)]
    assert got == want
    assert [(s.record, s.offset) for s in skipping.corruption_report.skipped] == [(3, offset)]


def test_damaged_file_without_index(tmp_path: Path) -> None:
    path = str(tmp_path / "d.tfrecord")
    write_records(path, [_record(i) for i in range(6)])
    offset = sum(16 + len(_record(i)) for i in range(2))
    _flip(path, offset + 20)
    with pytest.raises(CorruptRecordError, match=f"record 2, offset {offset}"):
        Loader(path, SPECS, batch_size=4, label_key="id")
    assert not os.path.exists(path + ".fpidx")
    loader = Loader(path, SPECS, batch_size=4, label_key="id", on_corrupt="skip")
    assert loader.num_records == 5
    assert [i for b in loader for i in _ids(b)] == [0, 1, 3, 4, 5]


def test_index_is_built_beside_the_files(tmp_path: Path) -> None:
    paths = _write(tmp_path, [3, 4])
    Loader(paths, SPECS, batch_size=2, label_key="id")
    assert all(os.path.exists(p + ".fpidx") for p in paths)


def test_compressed_files_stream_and_shard(gz_files: list[str]) -> None:
    loader = Loader(
        gz_files, SPECS, batch_size=4, label_key="id", shuffle=True, shuffle_buffer=5, world_size=2
    )
    got = [_ids(b) for r in range(2) for b in loader.with_shard(rank=r)]
    flat = [i for b in got for i in b]
    counts = Counter(flat)  # rank 0 (11 records) pads with its first one
    assert set(counts) == set(range(23)) and sorted(counts.values()) == [1] * 22 + [2]
    assert flat != sorted(flat)
    loader.set_epoch(1)
    again = [i for r in range(2) for b in loader.with_shard(rank=r) for i in _ids(b)]
    assert again != flat and set(again) == set(range(23))
    # the files come in a new order each epoch: rank 0 starts in another file
    files_of_rank0 = set()
    for epoch in range(6):
        loader.set_epoch(epoch)
        ids = [i for b in loader for i in _ids(b)]
        files_of_rank0.add(frozenset(0 if i < 11 else 1 if i < 14 else 2 for i in ids))
    assert len(files_of_rank0) > 1


def test_bad_arguments(files: list[str]) -> None:
    with pytest.raises(ConfigError, match="uneven"):
        Loader(files, SPECS, batch_size=2, uneven="wrap")
    with pytest.raises(ConfigError, match="rank"):
        Loader(files, SPECS, batch_size=2, rank=2, world_size=2)
    with pytest.raises(ConfigError, match="No files"):
        Loader(str(Path(files[0]).parent / "nothing-*"), SPECS, batch_size=2)
    with pytest.raises(ConfigError, match="label 'nope'"):
        Loader(files, SPECS, batch_size=2, label_key="nope")


def test_import_loads_no_framework() -> None:
    code = (
        "import sys, featurepipe.data\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'torch', 'keras', 'jax', 'jaxlib', 'grain'))\n"
        "print(bad)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def test_record_source_and_transform_records(files: list[str], gz_files: list[str]) -> None:
    from featurepipe.data import RecordSource

    for data in (files, gz_files):
        source = RecordSource(data)
        assert len(source) == 23
        assert source[5] == _record(5) and source[-1] == _record(22)
        assert source.read([22, 0, 11]) == [_record(22), _record(0), _record(11)]
        assert pickle.loads(pickle.dumps(source))[12] == _record(12)
        with pytest.raises(IndexError):
            source[23]
    loader = Loader(files, SPECS, batch_size=4, label_key="id", uneven="drop")
    feats, label = loader.transform_records(RecordSource(files).read([0, 1, 2, 3]))
    first = next(iter(loader))
    assert label.tolist() == first[1].tolist() == [0, 1, 2, 3]
    for k in feats:
        np.testing.assert_array_equal(feats[k], first[0][k])


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_runner_threads_give_the_same_batches(files: list[str], threads: int) -> None:
    specs = [NumericColumn("x"), HashedColumn("c", 50)]
    kw: dict[str, Any] = {"batch_size": 2, "label_key": "id", "shuffle": True}
    ref = list(Loader(files, specs, threads=0, native=False, **kw))
    got = list(Loader(files, specs, threads=threads, **kw))
    assert len(got) == len(ref) == 12
    for a, b in zip(got, ref, strict=True):
        assert list(a[0]) == list(b[0])
        for k in a[0]:
            np.testing.assert_array_equal(a[0][k], b[0][k])
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[2], b[2])


def test_batches_before_damage_come_out_first(tmp_path: Path) -> None:
    path = str(tmp_path / "d.tfrecord")
    with TFRecordWriter(path, write_index=True) as w:
        w.write_many([_record(i) for i in range(40)])
    offset = sum(16 + len(_record(i)) for i in range(33))
    _flip(path, offset + 20)
    specs = [NumericColumn("x"), HashedColumn("c", 50)]
    got = []
    with pytest.raises(CorruptRecordError, match=f"record 33, offset {offset}"):
        for b in Loader(path, specs, batch_size=3, label_key="id", threads=1):
            got.append(_ids(b))
    assert got == [[3 * k, 3 * k + 1, 3 * k + 2] for k in range(11)]


def test_files_without_records(tmp_path: Path) -> None:
    empty = str(tmp_path / "a.tfrecord")
    write_records(empty, [])
    loader = Loader(empty, SPECS, batch_size=2, label_key="id", schema=_id_schema())
    assert loader.num_records == 0 and len(loader) == 0 and list(loader) == []
    (tmp_path / "b").mkdir()
    (full,) = _write(tmp_path / "b", [3])
    both = Loader([empty, full], SPECS, batch_size=2, label_key="id", world_size=2)
    assert [i for r in range(2) for b in both.with_shard(rank=r) for i in _ids(b)] == [0, 0, 1, 2]


def _id_schema() -> Any:
    from featurepipe.example import FeatureSchema, Schema

    return Schema(
        (
            FeatureSchema("id", "int64", shape=()),
            FeatureSchema("x", "float", shape=(1,)),
            FeatureSchema("c", "bytes"),
            FeatureSchema("t", "int64"),
            FeatureSchema("w", "float"),
        )
    )


def test_structure_without_label(files: list[str]) -> None:
    padded = next(iter(Loader(files, SPECS, batch_size=4)))
    assert isinstance(padded, tuple) and len(padded) == 3 and padded[1] is None
    assert padded[2].dtype == np.float32 and padded[2].tolist() == [1.0] * 4
    plain = next(iter(Loader(files, SPECS, batch_size=4, uneven="drop")))
    assert (
        isinstance(plain, dict) and list(plain) == Loader(files, SPECS, batch_size=1).feature_names
    )


def test_label_kind_from_the_schema_beside_the_shards(tmp_path: Path) -> None:
    from featurepipe.example import FeatureSchema, Schema
    from featurepipe.tfrecord import shard_name

    prefix = str(tmp_path / "train")
    for k in range(2):  # the first records have no label: only the schema tells its kind
        recs = [encode_example({"x": [1.0], "c": "a"}) for _ in range(100)]
        recs.append(encode_example({"x": [2.0], "c": "b", "y": [0.5 * k]}))
        write_records(shard_name(prefix, k, 2, ".tfrecord"), recs)
    specs = [NumericColumn("x"), HashedColumn("c", 5)]
    with pytest.raises(ConfigError, match="label 'y'"):
        Loader(f"{prefix}@2.tfrecord", specs, batch_size=8, label_key="y")
    Schema((FeatureSchema("y", "float", shape=(), required=False, default=-1.0),)).save(
        prefix + ".schema.json"
    )
    with pytest.raises(
        SchemaMismatchError, match=r"00002.tfrecord, record 0, offset 0: missing_value"
    ):
        list(Loader(f"{prefix}@2.tfrecord", specs, batch_size=101, label_key="y"))
    schema = Schema(
        (
            FeatureSchema("x", "float", shape=(1,)),
            FeatureSchema("c", "bytes"),
            FeatureSchema("y", "float", shape=(), required=False, default=-1.0),
        )
    )
    feats, label, _ = next(
        iter(Loader(f"{prefix}@2.tfrecord", specs, batch_size=202, label_key="y", schema=schema))
    )
    assert label.tolist() == ([-1.0] * 100 + [0.0] + [-1.0] * 100 + [0.5])
    assert feats["x"].ravel().tolist() == ([1.0] * 100 + [2.0]) * 2


def test_columns_from_a_json_file(files: list[str], tmp_path: Path) -> None:
    from featurepipe.columns import ColumnSpecs

    path = tmp_path / "columns.json"
    ColumnSpecs(tuple(SPECS)).save(path)
    a = next(iter(Loader(files, str(path), batch_size=5, label_key="id")))
    b = next(iter(Loader(files, SPECS, batch_size=5, label_key="id")))
    assert list(a[0]) == list(b[0])
    for k in a[0]:
        np.testing.assert_array_equal(a[0][k], b[0][k])
    with pytest.raises(ConfigError, match="not resolved"):
        Loader(files, [VocabularyColumn("c", top_k=3)], batch_size=5)


@pytest.mark.parametrize("native", [None, False])
def test_records_the_columns_cannot_read_are_named(tmp_path: Path, native: bool | None) -> None:
    from featurepipe.errors import ExampleDecodeError

    path = str(tmp_path / "bad.tfrecord")
    recs = [_record(i) for i in range(5)]
    recs[3] = b"\xff\xff not an Example"
    write_records(path, recs)
    offset = sum(16 + len(r) for r in recs[:3])
    with pytest.raises(ExampleDecodeError, match=f"bad.tfrecord, record 3, offset {offset}"):
        list(Loader(path, SPECS[:2], batch_size=5, label_key="id", native=native, shuffle=True))
    recs[3] = encode_example({"id": 3, "x": [1.0, 2.0]})  # two values for a (1,) column
    write_records(path, recs)
    with pytest.raises(SchemaMismatchError, match=f"record 3, offset {offset}: wrong_value_count"):
        list(Loader(path, SPECS[:2], batch_size=2, label_key="id", native=native))
