"""Torch-loader benchmark (issue 14): featurepipe.torch vs tfrecord + collate, vs tf.data + columns.

On the same generated Criteo-like TFRecord file (``--rows`` examples, default
200,000; :mod:`bench.datagen`) and the ten columns of :mod:`bench.torch_loader.cols`
(numeric, bucketized, hashed, vocabulary, crossed, embedding), batch 1024, each
thing times one epoch of ``file -> batches of torch tensors`` in a process of its
own (``bench.harness.measure``), ``--repeat`` times, interleaved in rounds:

* **featurepipe**: ``featurepipe.torch.FeatureDataset`` (CRCs verified) in a
  ``DataLoader(batch_size=None, num_workers=W)``;
* **tfrecord**: vahidk/tfrecord's ``TFRecordDataset`` (with its index: each worker
  reads its share) in a ``DataLoader(batch_size=1024, num_workers=W)`` whose collate
  computes the columns in Python / numpy (pyfarmhash, dict lookups, numpy), in the
  ``bench/.venvs/tfrecord`` venv (it cannot share a process with TensorFlow);
* **tf.data + tf.feature_column**: ``TFRecordDataset -> batch -> map(parse_example +
  the columns' transform)`` with W map calls on a private pool of W threads,
  outputs to numpy and torch tensors.

W (``--workers``, default 2) is the same for every side: DataLoader worker
processes for the torch sides, threads for tf.data. CPU seconds count the
DataLoader workers too. The first batch's per-output sums are compared between
the sides (the same ids and numbers). Ratios per wall-second (median and best
runs) and per CPU-second; targets: >= 5x the tfrecord side, >= 1.5x tf.data.
Writes ``bench/results/torch_loader-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from bench import datagen, harness
from bench.columns import plan as cplan

ROOT = Path(__file__).resolve().parents[2]
TFRECORD_PY = ROOT / "bench" / ".venvs" / "tfrecord" / "bin" / "python"
ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1"}
TARGETS = {"tfrecord": 5.0, "tf_feature_column": 1.5}
LABELS = {
    "featurepipe": "featurepipe.torch FeatureDataset + DataLoader",
    "tfrecord": "tfrecord TFRecordDataset + DataLoader, collate in Python/numpy",
    "tf_feature_column": "tf.data + tf.feature_column -> numpy -> torch",
}


def _data(rows: int) -> datagen.DatasetInfo:
    path = datagen.DATA_DIR / f"criteo-s0-{rows}rows.tfrecord"
    return datagen._cached(path, lambda p: datagen.write_criteo_tfrecord(p, num_rows=rows))


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns 0 (a missed target is reported, not a failure)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench torch_loader",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=200_000, help="examples (default 200000)")
    parser.add_argument("--workers", type=int, default=2, help="workers per side (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per thing (default 3)")
    parser.add_argument(
        "--only",
        default="featurepipe,tfrecord,tf_feature_column",
        help="comma list of sides (default all three)",
    )
    parser.add_argument(
        "--tfrecord-python",
        default=str(TFRECORD_PY),
        help="python of the tfrecord venv (default bench/.venvs/tfrecord)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--results-dir", default=None, help="default bench/results")
    parser.add_argument("--no-results", action="store_true", help="do not write results JSON")
    args = parser.parse_args(argv)
    sides = [s.strip() for s in args.only.split(",") if s.strip()]

    info = _data(args.rows)
    harness.warm_page_cache(info.path)
    print(
        f"data: {info.path}: {info.records:,} examples, {info.file_bytes / 1e6:.1f} MB", flush=True
    )
    plan_path = datagen.DATA_DIR / f"torch_loader-plan-{info.records}.json"
    if not plan_path.exists():
        cplan.save_plan(cplan.make_plan(info.records), plan_path)
    base = {
        "path": info.path,
        "plan": str(plan_path),
        "workers": args.workers,
        "index": info.path + ".idx",
    }
    cmds = {
        "featurepipe": [sys.executable, "-m", "bench.torch_loader.worker", "featurepipe"],
        "tf_feature_column": [
            sys.executable,
            "-m",
            "bench.torch_loader.worker",
            "tf_feature_column",
        ],
        "tfrecord": [
            args.tfrecord_python,
            str(ROOT / "bench" / "torch_loader" / "peer_tfrecord.py"),
        ],
    }
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    errors: dict[str, str] = {}
    for rnd in range(args.repeat):
        print(f"round {rnd + 1}/{args.repeat}:", flush=True)
        for side in sides:
            if side in errors:
                continue
            m = harness.measure([*cmds[side], json.dumps(base)], env=ENV, timeout=args.timeout)
            if m.returncode != 0 or "seconds" not in m.report:
                lines = [ln for ln in m.stderr_tail.strip().splitlines() if ln.strip()]
                errors[side] = f"exit {m.returncode}: {lines[-1] if lines else 'no stderr'}"
                print(f"  {side}: FAILED {errors[side]}", flush=True)
                continue
            r = m.report | {"max_rss_mb": m.max_rss_mb, "process_wall_s": m.wall_s}
            runs[side].append(r)
            print(
                f"  {LABELS[side]:64s} {r['examples'] / r['seconds']:10,.0f} ex/s "
                f"{r['examples'] / r['cpu_seconds']:10,.0f} ex/CPU-s",
                flush=True,
            )

    def rate(side: str, best: bool = False) -> float:
        rs = runs.get(side) or []
        if not rs:
            return 0.0
        secs = [r["seconds"] for r in rs]
        s = min(secs) if best else _median(secs)
        return rs[0]["examples"] / s

    def cpu_rate(side: str) -> float:
        rs = runs.get(side) or []
        return rs[0]["examples"] / _median([r["cpu_seconds"] for r in rs]) if rs else 0.0

    machine = harness.machine_info({})
    rows = []
    for side in sides:
        if side in errors or not runs[side]:
            rows.append([LABELS[side], f"failed: {errors.get(side, '?')}", "", "", ""])
            continue
        rows.append(
            [
                LABELS[side],
                f"{rate(side):,.0f}",
                f"{rate(side, True):,.0f}",
                f"{cpu_rate(side):,.0f}",
                f"{max(r['max_rss_mb'] for r in runs[side]):.0f}",
            ]
        )
    text = (
        f"{info.records:,} examples ({info.file_bytes / 1e6:.1f} MB), 10 columns, batch "
        f"1024, {args.workers} workers per side, {args.repeat} runs each; "
        f"{machine['cpu_model']}, {machine['cpus']} CPUs, load {machine['load_avg_1_5_15']}\n\n"
    )
    text += harness.markdown_table(
        ["", "examples/s (median)", "best run", "examples per CPU-s", "peak RSS MB (main)"], rows
    )
    ratios: dict[str, Any] = {}
    if runs.get("featurepipe"):
        for peer, target in TARGETS.items():
            if not runs.get(peer):
                continue
            ratios[peer] = {
                "median": round(rate("featurepipe") / rate(peer), 2),
                "best": round(rate("featurepipe", True) / rate(peer, True), 2),
                "cpu": round(cpu_rate("featurepipe") / cpu_rate(peer), 2),
                "target": target,
                "met": rate("featurepipe") / rate(peer) >= target,
            }
            q = ratios[peer]
            text += (
                f"\n\nfeaturepipe / {peer}: {q['median']:.2f}x examples/s (median), "
                f"{q['best']:.2f}x (best runs), {q['cpu']:.2f}x per CPU-second; target "
                f"{target}x {'met' if q['met'] else 'NOT met'}"
            )
    # the sides compute the same outputs: compare the first batch's per-output sums
    sums = {s: runs[s][0].get("checksum", {}) for s in sides if runs.get(s)}
    ref = sums.get("featurepipe")
    mismatch: dict[str, list[str]] = {}
    if ref:
        for side, got in sums.items():
            bad = [
                k
                for k in ref
                if k not in got or abs(ref[k] - got[k]) > 1e-3 * max(1.0, abs(ref[k]))
            ]
            if bad:
                mismatch[side] = bad
        text += "\n\nfirst batch, per-output sums: " + (
            "equal on every side" if not mismatch else f"DIFFER: {mismatch}"
        )
    print("\n" + text)
    if not args.no_results:
        payload = {
            "benchmark": "torch_loader",
            "args": vars(args),
            "machine": machine,
            "data": {"path": info.path, "records": info.records, "file_bytes": info.file_bytes},
            "runs": runs,
            "errors": errors,
            "ratios": ratios,
            "checksums": sums,
            "checksum_mismatch": mismatch,
            "table": text,
        }
        print(f"results: {harness.write_results('torch_loader', payload, args.results_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
