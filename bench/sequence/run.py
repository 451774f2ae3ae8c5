"""SequenceExample batch decode (issue 12): featurepipe vs tf.io.parse_sequence_example.

A deterministic file of tf.SequenceExamples (``--records``, default 200,000): a
context of 3 features (``id`` int64, ``user`` bytes, ``weight`` float) and 3
feature lists of 1..20 steps each (``tok``: 1..3 int64 per step, ``dwell``: one
float, ``cat``: one short bytes value), ~40 feature-list values per sequence. It
is written once by featurepipe's encoder (byte-identical to TensorFlow's
deterministic serialization) under ``bench/data/``. Every decoder reads the
same records into memory first (not timed), decodes one warm-up batch, then
decodes all records in batches of ``--batch`` (1024), each in a fresh process,
``--repeat`` times, interleaved in rounds (the median is reported):

* featurepipe ``decode_sequence_examples`` (compiled decoder when built) and
  with ``native=False`` (protobuf + Python; a quarter of the records);
* ``tf.io.parse_sequence_example`` with ``RaggedFeature`` (the same output:
  flat values + lengths per step and per sequence) and with ``VarLenFeature``.

Target: featurepipe >= 1.5x the faster TensorFlow variant's records/s. Each
side's count of decoded feature-list values is checked to be the same.
Results go to ``bench/results/sequence-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench import datagen, harness
from bench.harness import Result

__all__ = ["main"]

PY = sys.executable
TARGET = 1.5
GENERATOR_VERSION = 1


def _make(path: Path, n: int) -> None:
    import numpy as np

    from featurepipe.example import encode_sequence_example
    from featurepipe.tfrecord import TFRecordWriter

    rng = np.random.default_rng(12)
    with TFRecordWriter(str(path)) as w:
        for i in range(n):
            steps = int(rng.integers(1, 21))
            w.write(encode_sequence_example(
                {"id": i, "user": f"user{int(rng.integers(0, 10_000))}",
                 "weight": float(rng.random())},
                {"tok": [rng.integers(0, 50_000, int(rng.integers(1, 4))) for _ in range(steps)],
                 "dwell": [np.float32(rng.exponential(3.0)) for _ in range(steps)],
                 "cat": [[b"c%d" % int(rng.integers(0, 300))] for _ in range(steps)]},
            ))


def _data(n: int) -> tuple[str, int]:
    path = datagen.DATA_DIR / f"sequence-v{GENERATOR_VERSION}-{n}.tfrecord"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        _make(tmp, n)
        os.replace(tmp, path)
    return str(path), os.path.getsize(path)


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns 0 (a missed target is reported, not a failure)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench sequence", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results-dir", default=None, help="default bench/results")
    parser.add_argument("--no-results", action="store_true", help="do not write results JSON")
    args = parser.parse_args(argv)

    path, size = _data(args.records)
    harness.warm_page_cache(path)
    print(f"data: {path}: {args.records:,} SequenceExamples, {size / 1e6:.1f} MB")
    things = [
        ("featurepipe decode_sequence_examples", "fp", args.records),
        ("featurepipe decode_sequence_examples (native=False)", "fp_py", args.records // 4),
        ("tf.io.parse_sequence_example (RaggedFeature)", "tf_ragged", args.records),
        ("tf.io.parse_sequence_example (VarLenFeature)", "tf_varlen", args.records),
    ]
    results = {task: Result(name, "sequence") for name, task, _ in things}
    values: dict[str, int] = {}
    for _ in range(args.repeat):
        for _name, task, limit in things:
            res = results[task]
            if res.error:
                continue
            spec = json.dumps({"path": path, "batch": args.batch, "limit": limit})
            m = harness.measure([PY, "-m", "bench.sequence.worker", task, spec],
                                env={"TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=3600)
            if m.returncode != 0 or "seconds" not in m.report:
                lines = [ln for ln in m.stderr_tail.strip().splitlines() if ln.strip()]
                res.error = f"exit {m.returncode}: {lines[-1] if lines else 'no stderr'}"[:300]
                continue
            res.records = m.report["records"]
            res.stream_bytes = size * res.records // args.records
            res.seconds.append(m.report["seconds"])
            res.wall_s.append(m.wall_s)
            res.max_rss_mb = max(res.max_rss_mb, m.max_rss_mb)
            res.cpu_s = round(m.user_s + m.sys_s, 2)
            if limit == args.records:
                values[task] = m.report["values"]
    rows = []
    for name, task, _ in things:
        r = results[task]
        rows.append([name, f"{r.records:,}", f"{r.median_seconds:.3f}",
                     f"{r.records_per_s:,.0f}", f"{r.max_rss_mb:.0f}", r.error or ""])
    print(harness.markdown_table(["decoder", "records", "median s", "records/s",
                                  "peak RSS MB", "error"], rows))
    fp = results["fp"].records_per_s
    tf_best = max(results["tf_ragged"].records_per_s, results["tf_varlen"].records_per_s)
    ratio = fp / tf_best if fp and tf_best else 0.0
    same = len(set(values.values())) == 1
    verdict = "met" if ratio >= TARGET else "MISSED"
    print(f"\nfeaturepipe / faster TF: {ratio:.2f}x (target {TARGET}x: {verdict}); "
          f"feature-list values decoded: {values} ({'same' if same else 'DIFFER'})")
    if not args.no_results:
        out = harness.write_results("sequence", {
            "machine": harness.machine_info(),
            "args": vars(args),
            "results": [r.to_json() for r in results.values()],
            "ratio_vs_faster_tf": round(ratio, 3),
            "target": TARGET,
            "values": values,
        }, args.results_dir)
        print(f"results: {out}")
    return 0
