"""featurepipe.grain vs grain's own TFRecord reading + per-record parsing and transforms (issue 14).

Run: ``nice -n 19 python -m bench.grain_source [--records 150000] [--repeat 3]``.

One run generates (or reuses) ``--records`` ``tf.Example`` records in 4 TFRecord
files under ``bench/data/grain_source/`` and measures, each in its own process
(interleaved rounds, median of ``--repeat``), one epoch of batches of 1024 of
8 columns (2 numeric, one z-scored; bucketized; hashed on a string; hashed on a
variable-length string list; vocabulary of 1,000 + 1 OOV bucket; crossed
string x string; identity) plus an int label:

* ``featurepipe.grain``: :class:`~featurepipe.grain.TFRecordDataSource` +
  :class:`~featurepipe.grain.ColumnsBatch` in a ``grain.DataLoader`` with
  ``grain.samplers.IndexSampler(shuffle=True, seed=0)`` (global shuffle, CRCs
  verified), with grain's default ``ReadOptions`` and with the read threads
  off (``ReadOptions(num_threads=0, prefetch_buffer_size=0)``); and with
  :class:`~featurepipe.grain.RecordSampler` (global shuffle, no random
  generator per record) in place of ``IndexSampler``, threads off;
* the same source and batch function through ``grain.MapDataset``:
  ``MapDataset.source(src).shuffle(seed=0).batch(1024, batch_fn=ColumnsBatch(...).batch_fn)``
  (global shuffle; grain 0.2.18 reads a batch's records one by one);
* :class:`~featurepipe.grain.BatchSource` (whole batches of a global shuffle
  per epoch as grain's elements) in a ``DataLoader`` with an unshuffled
  ``IndexSampler``, threads off;
* for reference, :class:`featurepipe.data.Loader` (``shuffle=True``) alone,
  without grain: the same reads and computation with no per-record framework;
* the peer: grain's own TFRecord reader,
  ``grain.experimental.TFRecordIterDataset`` per file (sequential, no CRC
  check, no global shuffle: google/grain#1162) chained in file order, then a
  ``.map`` that parses each record with protobuf (``Example.FromString``, upb,
  featurepipe's own copy of the ``tf.Example`` protos) and computes the same
  columns in Python per record (``pyfarmhash`` fingerprints, as TF hashes),
  then ``.batch(1024)`` with a numpy batch function (padding id lists with -1);
  and the peer again behind ``WindowShuffleIterDataset(window_size=10_000)``.

Before timing, a check compares the first batches of featurepipe (file order)
and the peer: the same numbers (ids exactly, floats to 1e-6). Prints examples/s
per wall-second and per CPU-second (user + system of the process, all threads)
and featurepipe's ratios to the fastest peer (target >= 3x).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data" / "grain_source"
NUM_FILES = 4
BATCH = 1024
TARGET = 3.0
MEAN, VARIANCE = 2.0, 4.0
BOUNDARIES = (-1.0, 0.0, 1.0, 2.0, 5.0, 10.0)
C1_BINS, TAG_BINS, CROSS_BINS, VOCAB, IDENTITY = 100_000, 1_000, 10_000, 1_000, 100
K_MUL, SHIFT, MASK = 0xC6A4A7935BD1E995, 47, (1 << 64) - 1
CROSS_KEY = 0xDECAFCAFFE  # tf.feature_column.crossed_column's default hash key

ROWS = (
    ("fp_loader", "featurepipe.grain: DataLoader + IndexSampler(shuffle), default ReadOptions"),
    ("fp_loader_nothreads", "featurepipe.grain: DataLoader + IndexSampler(shuffle), no threads"),
    ("fp_sampler", "featurepipe.grain: DataLoader + RecordSampler(shuffle), no threads"),
    ("fp_mapdataset", "featurepipe.grain: MapDataset.shuffle().batch(batch_fn=ColumnsBatch)"),
    ("fp_batch_source", "featurepipe.grain: DataLoader + BatchSource(shuffle), no threads"),
    ("fp_data_loader", "(ref) featurepipe.data.Loader(shuffle=True), no grain"),
    ("peer", "grain TFRecordIterDataset + FromString + Python transforms, file order"),
    ("peer_window", "the peer + WindowShuffleIterDataset(10,000)"),
)
OURS = ("fp_loader", "fp_loader_nothreads", "fp_sampler", "fp_mapdataset", "fp_batch_source")
REFS = ("fp_data_loader",)


def _words(n: int) -> list[str]:
    return [f"w{j:05d}x" for j in range(n)]


def generate(records: int) -> list[str]:
    """Write (or reuse) the files: ``records`` examples in ``NUM_FILES`` files."""
    from featurepipe.example import encode_example
    from featurepipe.tfrecord import write_records

    paths = [str(DATA / f"part-{f}.tfrecord") for f in range(NUM_FILES)]
    meta = DATA / "meta.json"
    want = {"records": records, "files": NUM_FILES, "version": 1}
    if meta.exists() and json.loads(meta.read_text()) == want and all(map(os.path.exists, paths)):
        return paths
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pool = _words(1200)
    per = -(-records // NUM_FILES)
    g = 0
    for path in paths:
        recs = []
        for _ in range(min(per, records - g)):
            k = int(rng.integers(0, 4))
            recs.append(
                encode_example(
                    {
                        "x1": [float(rng.normal())],
                        "x2": [float(rng.normal(MEAN, 2.0))],
                        "n": [float(rng.uniform(-3, 12))],
                        "c1": [f"h{int(rng.integers(0, 50_000))}"],
                        "c2": [pool[int(rng.integers(0, len(pool)))]],
                        "tags": np.array([f"t{int(t)}" for t in rng.integers(0, 500, k)], object),
                        "i": [int(rng.integers(-5, 110))],
                        "label": [g % 2],
                    }
                )
            )
            g += 1
        for stale in (path, path + ".fpidx"):
            Path(stale).unlink(missing_ok=True)
        write_records(path, recs)
    meta.write_text(json.dumps(want))
    return paths


# -- featurepipe ---------------------------------------------------------------------------------


def _specs() -> list[Any]:
    from featurepipe.columns import (
        BucketizedColumn,
        CrossedColumn,
        HashedColumn,
        IdentityColumn,
        Normalizer,
        NumericColumn,
        VocabularyColumn,
    )

    return [
        NumericColumn("x1"),
        NumericColumn("x2", normalizer=Normalizer("z_score", mean=MEAN, variance=VARIANCE)),
        BucketizedColumn(NumericColumn("n"), BOUNDARIES),
        HashedColumn("c1", C1_BINS),
        VocabularyColumn("c2", tuple(_words(VOCAB)), num_oov_buckets=1),
        HashedColumn("tags", TAG_BINS),
        CrossedColumn(("c1", "c2"), CROSS_BINS),
        IdentityColumn("i", IDENTITY, default_value=0),
    ]


def _ours(impl: str, paths: list[str], shuffle: bool = True) -> Any:
    import grain

    from featurepipe.grain import BatchSource, ColumnsBatch, RecordSampler, TFRecordDataSource

    if impl == "fp_data_loader":
        from featurepipe.data import Loader

        return Loader(
            paths, _specs(), batch_size=BATCH, label_key="label", shuffle=True, uneven="drop"
        )
    if impl == "fp_batch_source":
        batches = BatchSource(paths, _specs(), batch_size=BATCH, label_key="label", seed=0)
        return grain.DataLoader(
            data_source=batches,
            sampler=grain.samplers.IndexSampler(
                len(batches), shard_options=grain.sharding.NoSharding(), num_epochs=1
            ),
            read_options=grain.ReadOptions(num_threads=0, prefetch_buffer_size=0),
        )
    source = TFRecordDataSource(paths)
    batch = ColumnsBatch(_specs(), batch_size=BATCH, data=source, label_key="label")
    if impl == "fp_mapdataset":
        ds = grain.MapDataset.source(source)
        if shuffle:
            ds = ds.shuffle(seed=0)
        ds = ds.batch(BATCH, batch_fn=batch.batch_fn)
        return (ds[b] for b in range(len(ds)))
    sampler: Any = grain.samplers.IndexSampler(
        len(source),
        shard_options=grain.sharding.NoSharding(),
        shuffle=shuffle,
        seed=0,
        num_epochs=1,
    )
    if impl == "fp_sampler":
        sampler = RecordSampler(len(source), shuffle=shuffle, seed=0)
    read = None
    if impl in ("fp_loader_nothreads", "fp_sampler"):
        read = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
    return grain.DataLoader(
        data_source=source, sampler=sampler, operations=[batch], read_options=read
    )


# -- the peer ------------------------------------------------------------------------------------


def _cat(a: int, b: int) -> int:
    """TF's FingerprintCat64 on Python ints (mod 2**64)."""
    r = a ^ K_MUL
    m = (b * K_MUL) & MASK
    r ^= ((m ^ (m >> SHIFT)) * K_MUL) & MASK
    r = (r * K_MUL) & MASK
    r = ((r ^ (r >> SHIFT)) * K_MUL) & MASK
    return r ^ (r >> SHIFT)


def _peer_map() -> Any:
    import farmhash
    import grain

    from featurepipe.example.proto import example_pb2

    vocab = {w.encode(): j for j, w in enumerate(_words(VOCAB))}
    fp = farmhash.fingerprint64
    parse = example_pb2.Example.FromString
    std = VARIANCE**0.5

    class ParseAndTransform(grain.transforms.Map):  # type: ignore[misc]
        def map(self, element: bytes) -> tuple[Any, ...]:
            f = parse(element).features.feature
            c1 = f["c1"].bytes_list.value[0]
            c2 = f["c2"].bytes_list.value[0]
            h1, h2 = fp(c1), fp(c2)
            c2_id = vocab.get(c2)
            i = f["i"].int64_list.value[0]
            return (
                f["x1"].float_list.value[0],
                (f["x2"].float_list.value[0] - MEAN) / std,
                bisect.bisect_right(BOUNDARIES, f["n"].float_list.value[0]),
                h1 % C1_BINS,
                VOCAB + h2 % 1 if c2_id is None else c2_id,
                [fp(t) % TAG_BINS for t in f["tags"].bytes_list.value],
                _cat(_cat(CROSS_KEY, h1), h2) % CROSS_BINS,
                i if 0 <= i < IDENTITY else 0,
                f["label"].int64_list.value[0],
            )

    return ParseAndTransform()


def _peer_batch(rows: Any) -> Any:
    cols = list(zip(*rows, strict=True))
    tags = cols[5]
    width = max(map(len, tags))
    padded = np.full((len(tags), width), -1, dtype=np.int64)
    for r, t in enumerate(tags):
        padded[r, : len(t)] = t
    features = {
        "x1": np.asarray(cols[0], np.float32)[:, None],
        "x2": np.asarray(cols[1], np.float32)[:, None],
        "n_bucketized": np.asarray(cols[2], np.int64)[:, None],
        "c1": np.asarray(cols[3], np.int64)[:, None],
        "c2": np.asarray(cols[4], np.int64)[:, None],
        "tags": padded,
        "c1_X_c2": np.asarray(cols[6], np.int64)[:, None],
        "i": np.asarray(cols[7], np.int64)[:, None],
    }
    return features, np.asarray(cols[8], np.int64)


def _peer(impl: str, paths: list[str]) -> Any:
    import grain

    ds = grain.experimental.InterleaveIterDataset(
        [grain.experimental.TFRecordIterDataset(p) for p in paths], cycle_length=1
    )
    if impl == "peer_window":
        ds = grain.experimental.WindowShuffleIterDataset(ds, window_size=10_000, seed=0)
    return ds.map(_peer_map()).batch(BATCH, batch_fn=_peer_batch)


# -- running -------------------------------------------------------------------------------------


def _pipeline(impl: str, paths: list[str]) -> Any:
    return _ours(impl, paths) if impl in OURS + REFS else _peer(impl, paths)


def child(impl: str, paths: list[str]) -> dict[str, Any]:
    """One epoch of ``impl``: examples, wall and CPU seconds (imports and setup excluded)."""
    import resource

    pipeline = _pipeline(impl, paths)
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for _features, label in pipeline:
        n += len(label)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"impl": impl, "examples": n, "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss}


def check(paths: list[str], batches: int = 3) -> str:
    """featurepipe (file order) and the peer give the same numbers on the first batches."""
    ours = iter(_ours("fp_mapdataset", paths, shuffle=False))
    peer = iter(_peer("peer", paths))
    for _ in range(batches):
        (fo, lo), (fq, lq) = next(ours), next(peer)
        assert sorted(fo) == sorted(fq), (sorted(fo), sorted(fq))
        for k in fo:
            if fo[k].dtype.kind == "f":
                np.testing.assert_allclose(fo[k], fq[k], rtol=1e-6, err_msg=k)
            else:
                np.testing.assert_array_equal(fo[k], fq[k], err_msg=k)
        np.testing.assert_array_equal(lo, lq)
    return f"same outputs on the first {batches} batches of {BATCH} ({len(fo)} inputs + label)"


def _run_child(impl: str, paths: list[str]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "bench.grain_source", "--child", impl, *paths]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{impl} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.grain_source", description=__doc__)
    ap.add_argument("--records", type=int, default=150_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", choices=[r for r, _ in ROWS])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.paths)))
        return 0
    paths = generate(args.records)
    from featurepipe.grain import TFRecordDataSource

    TFRecordDataSource(paths)  # index sidecars built once, before any timing
    print(f"data: {args.records:,} records in {len(paths)} files under {DATA}")
    print("check:", check(paths), flush=True)
    impls = args.only or [r for r, _ in ROWS]
    runs: dict[str, list[dict[str, Any]]] = {i: [] for i in impls}
    for rnd in range(args.repeat):
        for impl in impls:
            got = _run_child(impl, paths)
            if got["examples"] != args.records:
                raise RuntimeError(f"{impl} yielded {got['examples']} examples")
            runs[impl].append(got)
            print(
                f"  round {rnd + 1} {impl}: {got['examples'] / got['wall_s']:,.0f} ex/s wall, "
                f"{got['examples'] / got['cpu_s']:,.0f} ex/CPU-s",
                flush=True,
            )
    labels = dict(ROWS)
    table = {}
    print(f"\n{'':76s} {'ex/s':>10s} {'ex/CPU-s':>10s} {'RSS MB':>7s}")
    for impl in impls:
        wall = statistics.median(r["examples"] / r["wall_s"] for r in runs[impl])
        cpu = statistics.median(r["examples"] / r["cpu_s"] for r in runs[impl])
        rss = max(r["peak_rss_mb"] for r in runs[impl])
        table[impl] = {"ex_per_s": wall, "ex_per_cpu_s": cpu, "peak_rss_mb": rss}
        print(f"{labels[impl]:76s} {wall:10,.0f} {cpu:10,.0f} {rss:7,.0f}")
    peers = [i for i in impls if i not in OURS + REFS]
    if peers:
        best_wall = max(table[p]["ex_per_s"] for p in peers)
        best_cpu = max(table[p]["ex_per_cpu_s"] for p in peers)
        print(f"\nratios to the fastest peer (target >= {TARGET}x):")
        for impl in (i for i in impls if i in OURS + REFS):
            rw = table[impl]["ex_per_s"] / best_wall
            rc = table[impl]["ex_per_cpu_s"] / best_cpu
            verdict = "met" if min(rw, rc) >= TARGET else "MISSED"
            print(f"  {impl:22s} {rw:5.2f}x per wall-second, {rc:5.2f}x per CPU-second: {verdict}")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = ROOT / "bench" / "results" / f"grain_source-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"records": args.records, "batch_size": BATCH, "runs": runs, "median": table}
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
