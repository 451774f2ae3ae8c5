"""Loader benchmark (issue 14): featurepipe.data.Loader vs the TF path, one epoch.

On the same generated Criteo-like TFRecord file and the Criteo column transforms
of :mod:`bench.columns.plan` (batch 1024), each thing in its own process:
``featurepipe.data.Loader`` (no TF, no torch) in file order, globally shuffled,
shuffled with ids as ``RaggedIds`` offsets, and in order with the compiled
runner's threads off; and ``featurepipe.keras.make_dataset`` (tf.data, the
compiled reader) in order and shuffled. Prints examples/s (wall) and CPU
microseconds per example of the timed loop, and the Loader-to-TF ratios.
``python -m bench loader --size-mb 50``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import datagen, harness
from bench.columns import plan as cplan

__all__ = ["main"]

ROWS = (
    ("data_in_order", "featurepipe.data.Loader, file order"),
    ("data_in_order_inline", "featurepipe.data.Loader, file order, threads=0"),
    ("data_shuffled", "featurepipe.data.Loader, global shuffle"),
    ("data_shuffled_offsets", "featurepipe.data.Loader, global shuffle, ids=offsets"),
    ("tf_make_dataset_in_order", "featurepipe.keras.make_dataset (tf.data), in order"),
    ("tf_make_dataset_shuffled", "featurepipe.keras.make_dataset (tf.data), shuffled"),
)
PAIRS = (
    ("data_in_order", "tf_make_dataset_in_order"),
    ("data_shuffled", "tf_make_dataset_shuffled"),
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench loader", description=__doc__)
    p.add_argument("--size-mb", type=float, default=50.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--only", nargs="*", default=None, help="tasks to run")
    args = p.parse_args(argv)
    info = datagen.ensure_criteo_tfrecord(args.size_mb)
    harness.warm_page_cache(info.path)
    tasks = [t for t, _ in ROWS if args.only is None or t in args.only]
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tasks}
    with tempfile.TemporaryDirectory() as tmp:
        plan_path = str(Path(tmp) / "plan.json")
        cplan.save_plan(cplan.make_plan(info.records), plan_path)
        payload = json.dumps(
            {"path": str(info.path), "plan": plan_path, "batch_size": args.batch_size}
        )
        for _ in range(args.repeat):  # rounds: everything once, then again
            for task in tasks:
                m = harness.measure([sys.executable, "-m", "bench.loader.worker", task, payload])
                if m.returncode != 0:
                    print(f"{task} failed:\n{m.stderr_tail}", file=sys.stderr)
                    return 1
                runs[task].append(m.report)
    med: dict[str, dict[str, float]] = {}
    for task, reps in runs.items():
        rate = sorted(r["examples"] / r["seconds"] for r in reps)[len(reps) // 2]
        cpu = sorted(1e6 * r["cpu_seconds"] / r["examples"] for r in reps)[len(reps) // 2]
        med[task] = {
            "examples_per_s": rate,
            "cpu_us_per_example": cpu,
            "examples": reps[0]["examples"],
        }
    table = [
        [label, f"{med[t]['examples_per_s']:,.0f}", f"{med[t]['cpu_us_per_example']:.2f}"]
        for t, label in ROWS
        if t in med
    ]
    print(
        f"{info.records:,} records, {info.stream_bytes / 1e6:.0f} MB, batch "
        f"{args.batch_size}, median of {args.repeat}"
    )
    print(harness.markdown_table(["reader", "examples/s", "CPU µs/example"], table))
    for ours, theirs in PAIRS:
        if ours in med and theirs in med:
            wall = med[ours]["examples_per_s"] / med[theirs]["examples_per_s"]
            cpu = med[theirs]["cpu_us_per_example"] / med[ours]["cpu_us_per_example"]
            print(f"{ours} / {theirs}: {wall:.2f}x per wall-second, {cpu:.2f}x per CPU-second")
    harness.write_results(
        "loader",
        {"machine": harness.machine_info(), "median": med, "runs": runs, "data": str(info.path)},
    )
    return 0
