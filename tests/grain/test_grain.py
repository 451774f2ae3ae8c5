"""featurepipe.grain under a real grain.DataLoader + IndexSampler.

Every record carries its global number (``id``, the label), so a test can tell
exactly which records each batch, shard and epoch holds.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import grain
import numpy as np
import pytest

from featurepipe.columns import (
    BucketizedColumn,
    CrossedColumn,
    EmbeddingColumn,
    HashedColumn,
    IdentityColumn,
    IndicatorColumn,
    NumericColumn,
    VocabularyColumn,
)
from featurepipe.data import Loader, RaggedIds, RecordSource
from featurepipe.errors import CorruptRecordError, DataError
from featurepipe.example import encode_example
from featurepipe.grain import BatchSource, ColumnsBatch, RecordSampler, TFRecordDataSource
from featurepipe.tfrecord import write_records

ROOT = Path(__file__).resolve().parents[2]
X = NumericColumn("x")
SPECS = [
    X,
    BucketizedColumn(X, (1.0, 4.0, 8.0)),
    EmbeddingColumn(HashedColumn("c", 50), 4),
    IndicatorColumn(VocabularyColumn("c", ("c0", "c1"), num_oov_buckets=1)),
    IdentityColumn("t", 12, default_value=0),
    CrossedColumn(("c", "t"), 20),
]
SIZES = [11, 4, 9]  # 24 records: grain's DataLoader covers every record when shards divide it


def _record(i: int) -> bytes:
    return encode_example(
        {
            "id": i,
            "x": [float(i) / 2],
            "c": np.array([f"c{j}" for j in range(i % 4)], dtype=object),
            "t": np.array([(i + j) % 12 for j in range(i % 3)], dtype=np.int64),
        }
    )


def _write(d: Path) -> list[str]:
    paths, base = [], 0
    for f, n in enumerate(SIZES):
        p = str(d / f"part-{f}.tfrecord")
        write_records(p, [_record(base + i) for i in range(n)])
        paths.append(p)
        base += n
    return paths


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _write(tmp_path_factory.mktemp("grain"))


def _loader(
    files: list[str],
    *,
    batch_size: int = 5,
    shuffle: bool = True,
    seed: int = 7,
    num_epochs: int = 1,
    shard: tuple[int, int] = (0, 1),
    workers: int = 0,
    ids: str = "padded",
    drop_remainder: bool = False,
) -> Any:
    source = TFRecordDataSource(files)
    sampler = grain.samplers.IndexSampler(
        len(source),
        shard_options=grain.sharding.ShardOptions(shard[0], shard[1], drop_remainder=False),
        shuffle=shuffle,
        seed=seed,
        num_epochs=num_epochs,
    )
    batch = ColumnsBatch(
        SPECS,
        batch_size=batch_size,
        data=source,
        label_key="id",
        ids=ids,
        drop_remainder=drop_remainder,
    )
    return grain.DataLoader(
        data_source=source, sampler=sampler, operations=[batch], worker_count=workers
    )


def _ids(batches: list[Any]) -> list[list[int]]:
    return [label.tolist() for _, label in batches]


def _same(a: list[Any], b: list[Any]) -> None:
    assert len(a) == len(b)
    for (fa, la), (fb, lb) in zip(a, b, strict=True):
        # (grain's worker processes give dicts back with sorted keys: its tree utilities)
        assert sorted(fa) == sorted(fb)
        for k in fa:
            np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)
        np.testing.assert_array_equal(la, lb)


def test_source_protocol_and_pickle(files: list[str]) -> None:
    source = TFRecordDataSource(files)
    assert len(source) == 24
    assert source[0] == _record(0) and source[23] == _record(23) and source[-1] == _record(23)
    assert source._getitems([12, 3]) == [_record(12), _record(3)]
    with pytest.raises(IndexError):
        source[24]
    again = pickle.loads(pickle.dumps(source))
    assert (
        repr(again)
        == repr(source)
        == ("TFRecordDataSource(3 files: part-0.tfrecord .. part-2.tfrecord, 24 records)")
    )
    assert [again[i] for i in range(24)] == [_record(i) for i in range(24)]
    assert again[np.int64(5)] == _record(5)
    with pytest.raises(TypeError):
        again["5"]
    assert TFRecordDataSource(RecordSource(files)).files == files
    batch = ColumnsBatch(SPECS, batch_size=4, data=files, label_key="id")
    assert isinstance(batch, grain.transforms.Batch) and batch.native
    copy = pickle.loads(pickle.dumps(batch))
    recs = [_record(i) for i in range(4)]
    _same([copy.batch_fn(recs)], [batch.batch_fn(recs)])
    # also as a batch_fn of grain's MapDataset (batched reads through _getitems)
    ds = grain.MapDataset.source(source).batch(4, batch_fn=batch.batch_fn)
    assert _ids([ds[1]]) == [[4, 5, 6, 7]]


def test_global_shuffle_seeded_per_epoch(files: list[str]) -> None:
    first = _ids(list(_loader(files, seed=7, num_epochs=2, batch_size=1)))
    again = _ids(list(_loader(files, seed=7, num_epochs=2, batch_size=1)))
    other = _ids(list(_loader(files, seed=8, num_epochs=1, batch_size=1)))
    flat = [b[0] for b in first]
    assert first == again  # deterministic
    e0, e1 = flat[:24], flat[24:]
    assert sorted(e0) == sorted(e1) == list(range(24))  # every record once per epoch
    assert e0 != e1  # another order each epoch
    assert [b[0] for b in other] != e0  # and for another seed
    # across files: the first 11 records are not all from part-0
    assert set(e0[:11]) != set(range(11))


def test_batches_equal_featurepipe_data_loader(files: list[str]) -> None:
    # In file order grain's batches are the Loader's batches (which test_parity
    # checks against TensorFlow's make_dataset).
    got = list(_loader(files, shuffle=False, batch_size=5))
    ref = list(Loader(files, SPECS, batch_size=5, label_key="id", uneven="drop", shuffle=False))
    assert _ids(got) == [list(range(i, min(i + 5, 24))) for i in range(0, 24, 5)]
    _same(got, ref)
    assert list(got[0][0]) == ColumnsBatch(SPECS, batch_size=5, data=files).feature_names
    # shuffled: each batch is transform_records of its records
    loader = Loader(files, SPECS, batch_size=5, label_key="id")
    source = RecordSource(files)
    for features, label in _loader(files, seed=3):
        _same([(features, label)], [loader.transform_records(source.read(label))])
    # offsets mode
    (features, label), *_ = list(_loader(files, shuffle=False, ids="offsets"))
    assert isinstance(features["c_embedding"], RaggedIds)
    want = RaggedIds.from_padded(ref[0][0]["c_embedding"]).to_lists()
    assert features["c_embedding"].to_lists() == want


def test_two_shards_disjoint_and_covering(files: list[str]) -> None:
    parts = [
        [i for b in _ids(list(_loader(files, shard=(s, 2), seed=5))) for i in b] for s in (0, 1)
    ]
    assert len(parts[0]) == len(parts[1]) == 12
    assert not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == list(range(24))


def test_checkpoint_resumes_mid_epoch(files: list[str]) -> None:
    full = list(_loader(files, seed=11, num_epochs=2, batch_size=3))
    it = iter(_loader(files, seed=11, num_epochs=2, batch_size=3))
    head = [next(it) for _ in range(5)]
    state = it.get_state()
    rest = list(it)
    _same(head + rest, full)
    resumed = iter(_loader(files, seed=11, num_epochs=2, batch_size=3))
    resumed.set_state(state)
    _same(list(resumed), rest)


def test_two_worker_processes(files: list[str]) -> None:
    # grain's worker processes read absl flags, which a program without absl.app never
    # parses (pytest here): mark them parsed, with their defaults.
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    # grain gives worker w the sampler's records w, w + 2, ...; each worker batches its
    # own records and the DataLoader takes the workers' batches in turn
    # (google/grain grain/_src/python/data_loader.py, mp_prefetch): so the batches are
    # those of worker_count=0 computed over that interleaving, the same numbers.
    order = [b[0] for b in _ids(list(_loader(files, seed=2, batch_size=1)))]
    per_worker = [order[0::2], order[1::2]]
    chunks = [[w[i : i + 4] for i in range(0, len(w), 4)] for w in per_worker]
    expect = [c for pair in zip(*chunks, strict=True) for c in pair]
    loader = Loader(files, SPECS, batch_size=4, label_key="id")
    source = RecordSource(files)
    want = [loader.transform_records(source.read(ids)) for ids in expect]
    it = iter(_loader(files, seed=2, batch_size=4, workers=2))
    head = [next(it) for _ in range(3)]
    state = it.get_state()
    multi = head + list(it)
    assert _ids(multi) == expect
    _same(multi, want)
    # resume mid-epoch from a state taken with two workers
    resumed = iter(_loader(files, seed=2, batch_size=4, workers=2))
    resumed.set_state(state)
    _same(head + list(resumed), want)


def test_compressed_files_read_through_record_source(tmp_path: Path) -> None:
    path = str(tmp_path / "a.tfrecord.gz")
    write_records(path, [_record(i) for i in range(5)], "gzip")
    source = TFRecordDataSource(path)
    assert [source[i] for i in (3, 0, 4)] == [_record(3), _record(0), _record(4)]


def _corrupt(path: str, record: int) -> int:
    """Flip a data byte of ``record``; returns its byte offset."""
    data = bytearray(Path(path).read_bytes())
    offset = 0
    for _ in range(record):
        offset += 16 + int.from_bytes(data[offset : offset + 8], "little")
    data[offset + 14] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    return offset


def test_corrupt_record_names_file_record_offset(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    source = TFRecordDataSource(paths)  # indexes built while the files are intact
    loader = grain.DataLoader(
        data_source=source,
        sampler=grain.samplers.IndexSampler(
            24, shard_options=grain.sharding.NoSharding(), shuffle=False, num_epochs=1
        ),
        operations=[ColumnsBatch(SPECS, batch_size=5, data=source, label_key="id")],
    )
    assert len(list(loader)) == 5
    stat = os.stat(paths[1])
    offset = _corrupt(paths[1], 2)  # global record 13
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime
    with pytest.raises(CorruptRecordError) as err:
        list(loader)
    assert err.value.path == paths[1] and err.value.record == 2 and err.value.offset == offset
    assert paths[1] in str(err.value) and str(offset) in str(err.value)
    # a fresh source sees the damage when its index is built
    for p in paths:
        Path(p + ".fpidx").unlink(missing_ok=True)
    with pytest.raises(CorruptRecordError) as err:
        TFRecordDataSource(paths)
    assert err.value.path == paths[1] and err.value.record == 2 and err.value.offset == offset


def test_record_that_is_not_an_example_is_named(tmp_path: Path) -> None:
    path = str(tmp_path / "bad.tfrecord")
    recs = [_record(i) for i in range(9)]
    recs[6] = b"not an example\xff\xff"
    write_records(path, recs)
    offset = sum(16 + len(r) for r in recs[:6])
    source = TFRecordDataSource(path)
    loader = grain.DataLoader(
        data_source=source,
        sampler=RecordSampler(9, shuffle=False),
        operations=[ColumnsBatch(SPECS, batch_size=4, data=source, label_key="id")],
    )
    with pytest.raises(DataError) as err:
        list(loader)
    assert (err.value.path, err.value.record, err.value.offset) == (path, 6, offset)
    assert err.value.reason == "not_an_example" and path in str(err.value)
    # without the source the error names the row of the batch
    batch = ColumnsBatch(SPECS, batch_size=4, data=[path], label_key="id")
    with pytest.raises(DataError) as err:
        batch.batch_fn(recs[4:8])
    assert err.value.record == 2 and err.value.path != path


def test_import_loads_no_framework() -> None:
    code = (
        "import sys, featurepipe.grain\n"
        "print([m for m in ('tensorflow', 'keras', 'torch', 'jax', 'grain') if m in sys.modules])"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"


def _sampled(files: list[str], sampler: Any, batch_size: int = 5) -> Any:
    source = TFRecordDataSource(files)
    batch = ColumnsBatch(SPECS, batch_size=batch_size, data=source, label_key="id")
    return grain.DataLoader(data_source=source, sampler=sampler, operations=[batch])


@pytest.mark.parametrize("which", [(0, 1, 2), (0,)])
def test_record_sampler_equals_loader_shards(files: list[str], which: tuple[int, ...]) -> None:
    # RecordSampler cuts an epoch as featurepipe.data.Loader does (uneven="repeat"): the
    # same records in the same batches, per shard; shards disjoint and covering
    # (24 records, and 11: uneven shards).
    data = [files[f] for f in which]
    n = sum(SIZES[f] for f in which)
    for seed in (0, 9):
        parts = []
        for s in (0, 1):
            opts = grain.sharding.ShardOptions(s, 2)
            got = list(
                _sampled(data, RecordSampler(n, shard_options=opts, seed=seed), batch_size=4)
            )
            ref = list(
                Loader(
                    data,
                    SPECS,
                    batch_size=4,
                    label_key="id",
                    shuffle=True,
                    seed=seed,
                    rank=s,
                    world_size=2,
                    uneven="repeat",
                )
            )
            _same(got, ref)
            parts.append([i for b in _ids(got) for i in b])
        assert not set(parts[0]) & set(parts[1])
        assert len(set(parts[0]) | set(parts[1])) == n


def test_record_sampler_uneven_epochs_seeds_and_resume(files: list[str]) -> None:
    sampler = RecordSampler(23, shard_options=grain.sharding.ShardOptions(0, 2), num_epochs=2)
    assert len(sampler) == 2 * 12 * 2 and sampler.shard_options.shard_count == 2
    keys = [[sampler[2 * k + s].record_key for k in range(24)] for s in (0, 1)]
    for e in (0, 1):
        a, b = keys[0][12 * e : 12 * e + 12], keys[1][12 * e : 12 * e + 12]
        assert len(set(a)) == 11 and len(set(b)) == 12  # the short part repeats a record
        assert set(a) | set(b) == set(range(23)) and not set(a) & set(b)
    assert keys[0][:12] != keys[0][12:]  # another order (and split) each epoch
    assert [RecordSampler(23, seed=1)[i].record_key for i in range(23)] != [
        RecordSampler(23, seed=2)[i].record_key for i in range(23)
    ]
    dropped = RecordSampler(23, shard_options=grain.sharding.ShardOptions(1, 2, True))
    assert len(dropped) == 22
    assert pickle.loads(pickle.dumps(sampler))[5] == sampler[5]
    with pytest.raises(IndexError):
        sampler[48]
    # resume mid-epoch in a DataLoader
    full = list(_sampled(files, RecordSampler(24, seed=4, num_epochs=2), batch_size=3))
    it = iter(_sampled(files, RecordSampler(24, seed=4, num_epochs=2), batch_size=3))
    head = [next(it) for _ in range(7)]
    state = it.get_state()
    again = iter(_sampled(files, RecordSampler(24, seed=4, num_epochs=2), batch_size=3))
    again.set_state(state)
    _same(head + list(again), full)


def _batch_loader(source: BatchSource) -> Any:
    sampler = grain.samplers.IndexSampler(
        len(source), shard_options=grain.sharding.NoSharding(), shuffle=False, num_epochs=1
    )
    return grain.DataLoader(data_source=source, sampler=sampler)


@pytest.mark.parametrize("which", [(0, 1, 2), (0,)])
def test_batch_source_equals_loader_epochs_shards_resume(
    files: list[str], which: tuple[int, ...]
) -> None:
    # The Loader's batches (uneven="repeat"), epoch after epoch, per shard: 24 records and
    # 11 (uneven shards).
    data = [files[f] for f in which]
    n = sum(SIZES[f] for f in which)
    parts = []
    for s in (0, 1):
        source = BatchSource(
            data, SPECS, batch_size=4, label_key="id", seed=6, num_epochs=2,
            shard_index=s, shard_count=2,
        )  # fmt: skip
        per_shard = -(-n // 2)
        assert len(source) == 2 * -(-per_shard // 4) and "shard=" in repr(source)
        got = list(_batch_loader(source))
        loader = Loader(
            data, SPECS, batch_size=4, label_key="id", shuffle=True, seed=6, rank=s,
            world_size=2, uneven="repeat",
        )  # fmt: skip
        ref = list(loader)
        loader.set_epoch(1)
        ref += list(loader)
        _same(got, ref)
        flat = [i for b in _ids(got) for i in b]
        half = len(flat) // 2
        assert flat[:half] != flat[half:]  # each epoch its own order
        parts.append((set(flat[:half]), set(flat[half:])))
        if s == 0:  # resume mid-epoch; pickled (as for worker processes)
            it = iter(_batch_loader(source))
            head = [next(it) for _ in range(3)]
            state = it.get_state()
            again = iter(_batch_loader(pickle.loads(pickle.dumps(source))))
            again.set_state(state)
            _same(head + list(again), got)
    for e in (0, 1):  # per epoch: shards disjoint and covering
        assert not parts[0][e] & parts[1][e] and len(parts[0][e] | parts[1][e]) == n


def test_batch_source_names_bad_record(tmp_path: Path) -> None:
    path = str(tmp_path / "bad.tfrecord")
    recs = [_record(i) for i in range(9)]
    recs[6] = b"not an example\xff\xff"
    write_records(path, recs)
    source = BatchSource(path, SPECS, batch_size=4, label_key="id", shuffle=False)
    with pytest.raises(DataError) as err:
        list(_batch_loader(source))
    offset = sum(16 + len(r) for r in recs[:6])
    assert (err.value.path, err.value.record, err.value.offset) == (path, 6, offset)


def test_columns_batch_without_data(files: list[str]) -> None:
    source = TFRecordDataSource(files)
    recs = source._getitems(list(range(8)))
    with_data = ColumnsBatch(SPECS, batch_size=4, data=files, label_key="id")
    without = ColumnsBatch(SPECS, batch_size=4, label_key="id")
    given = ColumnsBatch(SPECS, batch_size=4, label_key="id", label_kind="int64")
    for batch in (without, given, pickle.loads(pickle.dumps(without))):
        _same([batch.batch_fn(recs)], [with_data.batch_fn(recs)])
        assert batch.feature_names == with_data.feature_names
