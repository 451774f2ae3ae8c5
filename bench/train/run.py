"""Training throughput (issue 6): featurepipe pipeline + canned wide-and-deep vs plain Keras 3.

``python -m bench train`` makes (or reuses) a Criteo-like TFRecord training file
(``--train-rows``, default 200k) and a held-out file (another seed), then runs,
each in a fresh process (``bench.train.worker``), in rounds:

* **featurepipe wide_and_deep**: ``make_dataset`` + ``ColumnTransform`` (26
  ``HashedColumn(C*, 100_000)``, 13 z-scored ``NumericColumn(I*)``) feeding
  ``wide_and_deep_model`` (linear part on the hashed columns; DNN on 16-dim
  embeddings of all 26 + the 13 numeric; FTRL + lazy Adam, row-sparse);
* **hand-built Keras 3**: ``tf.io.parse_example`` + ``keras.utils.FeatureSpace``
  (``string_hashed(100_000, "int")``, ``float_normalized``) in ``tf.data``;
  ``Embedding(100_000, 16)`` + ``Embedding(100_000, 1)`` per C column, the same
  ``Dense`` layers, ``keras.optimizers.Adam`` (dense updates);
* each input pipeline alone, to show whether input or model bounds training.

Both models train one epoch with batch ``--batch`` (1024) and the same learning
rate, and are evaluated on the held-out file (log loss). Examples/s count the
steps after the first (the first traces the graph and is reported apart).
Target: featurepipe >= 2x the hand-built model's examples/s at equal or better
held-out log loss.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import Any

from bench import datagen, harness

__all__ = ["main"]

TARGET = 2.0
BYTES_PER_ROW = 651  # Criteo-like records average ~651 bytes with framing (bench/core)
THINGS = (
    ("fp_train", "featurepipe wide_and_deep (make_dataset + SparseOptimizer)"),
    ("keras_train", "hand-built Keras 3 (FeatureSpace + Embedding + Adam)"),
    ("fp_input", "featurepipe input pipeline alone (make_dataset + ColumnTransform)"),
    ("fs_input", "FeatureSpace input pipeline alone (parse_example + FeatureSpace)"),
)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("tensorflow-cpu", "tensorflow", "keras", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def main(argv: list[str] | None = None) -> int:
    """Runs the training benchmark; returns 0 (a missed target is reported, not an exit status)."""
    parser = argparse.ArgumentParser(prog="python -m bench train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-rows", type=int, default=200_000,
                        help="training rows (default 200000)")
    parser.add_argument("--eval-rows", type=int, default=20_000, help="held-out rows")
    parser.add_argument("--batch", type=int, default=1024, help="batch size (default 1024)")
    parser.add_argument("--hidden", default="128,64", help="DNN widths (default 128,64)")
    parser.add_argument("--lr", type=float, default=0.001, help="Adam learning rate of both")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each thing (median)")
    parser.add_argument("--only", default=",".join(t for t, _ in THINGS),
                        help="comma list of: " + ", ".join(t for t, _ in THINGS))
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per process")
    parser.add_argument("--results-dir", default=None, help="default bench/results")
    parser.add_argument("--no-results", action="store_true", help="do not write results JSON")
    args = parser.parse_args(argv)
    only = [t for t, _ in THINGS if t in {s.strip() for s in args.only.split(",")}]
    if args.repeat < 1 or args.train_rows < 2 * args.batch or not only:
        parser.error("need --repeat >= 1, --train-rows >= 2 batches and a known --only. "
                     f"Received: repeat={args.repeat}, train_rows={args.train_rows}, "
                     f"only={args.only!r}")
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    train = datagen.ensure_criteo_tfrecord(args.train_rows * BYTES_PER_ROW / 1e6, seed=0)
    held = datagen.ensure_criteo_tfrecord(args.eval_rows * BYTES_PER_ROW / 1e6, seed=1)
    print(f"train: {train.path} ({train.records:,} rows); held out: {held.path} "
          f"({held.records:,} rows)", flush=True)
    for info in (train, held):
        harness.warm_page_cache(info.path)
    worker_args = {"train": train.path, "eval": held.path, "batch": args.batch, "lr": args.lr,
                   "hidden": [int(w) for w in args.hidden.split(",")]}
    runs: dict[str, list[harness.Measurement]] = {t: [] for t in only}
    for round_ in range(args.repeat):
        for task in only:
            print(f"round {round_ + 1}/{args.repeat}: {task} ...", flush=True)
            cmd = [sys.executable, "-m", "bench.train.worker", task, json.dumps(worker_args)]
            m = harness.measure(cmd, env={"TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=args.timeout)
            if m.returncode != 0 or not m.report:
                print(f"  failed ({m.returncode}): {m.stderr_tail[-1500:]}", flush=True)
            runs[task].append(m)

    rows, summary = _summarise(runs)
    table = harness.markdown_table(
        ["what", "examples/s (median)", "best", "held-out log loss", "AUC", "first step s",
         "CPU s", "peak RSS MB", "runs"], rows)
    verdict = _verdict(summary)
    print()
    print(table)
    print()
    print(verdict)
    payload = {
        "benchmark": "train",
        "argv": sys.argv[1:] if argv is None else list(argv),
        "machine": harness.machine_info(_versions()),
        "load_avg_at_start": load_at_start,
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "data": {"train": train.path, "train_rows": train.records, "eval": held.path,
                 "eval_rows": held.records},
        "args": worker_args,
        "runs": {t: [vars(m) for m in ms] for t, ms in runs.items()},
        "summary": summary,
        "table_markdown": table,
        "verdict": verdict,
    }
    if not args.no_results:
        path = harness.write_results("train", payload, args.results_dir)
        print(f"\nresults: {path}")
    return 0


def _summarise(
    runs: dict[str, list[harness.Measurement]],
) -> tuple[list[list[Any]], dict[str, Any]]:
    labels = dict(THINGS)
    rows: list[list[Any]] = []
    summary: dict[str, Any] = {}
    for task, ms in runs.items():
        ok = [m for m in ms if m.returncode == 0 and m.report]
        if not ok:
            rows.append([labels[task], "failed", "", "", "", "", "", "", len(ms)])
            continue
        if task.endswith("_input"):
            rates = [m.report["timed_records"] / m.report["seconds"] for m in ok]
            losses, aucs, first = [], [], []
        else:
            rates = [m.report["examples_per_s"] for m in ok]
            losses = [m.report["eval"]["log_loss"] for m in ok]
            aucs = [m.report["eval"]["auc"] for m in ok]
            first = [m.report["first_step_s"] for m in ok]
        entry = {
            "examples_per_s": statistics.median(rates),
            "best_examples_per_s": max(rates),
            "log_loss": statistics.median(losses) if losses else None,
            "auc": statistics.median(aucs) if aucs else None,
            "first_step_s": statistics.median(first) if first else None,
            "cpu_s": statistics.median(m.user_s + m.sys_s for m in ok),
            "max_rss_mb": max(m.max_rss_mb for m in ok),
        }
        summary[task] = entry
        rows.append([
            labels[task], f"{entry['examples_per_s']:,.0f}", f"{entry['best_examples_per_s']:,.0f}",
            f"{entry['log_loss']:.4f}" if losses else "",
            f"{entry['auc']:.4f}" if aucs else "",
            f"{entry['first_step_s']:.1f}" if first else "",
            f"{entry['cpu_s']:.0f}", f"{entry['max_rss_mb']:,.0f}", len(ok),
        ])
    return rows, summary


def _verdict(summary: dict[str, Any]) -> str:
    fp, kr = summary.get("fp_train"), summary.get("keras_train")
    if not fp or not kr:
        return "target: not evaluated (a training run is missing)"
    ratio = fp["examples_per_s"] / kr["examples_per_s"]
    best_ratio = fp["best_examples_per_s"] / kr["best_examples_per_s"]
    loss_ok = fp["log_loss"] <= kr["log_loss"] + 1e-4
    met = ratio >= TARGET and loss_ok
    summary["ratio_examples_per_s"] = ratio
    summary["ratio_best_examples_per_s"] = best_ratio
    summary["target_met"] = met
    return (f"featurepipe / hand-built examples/s: {ratio:.2f}x (median), "
            f"{best_ratio:.2f}x (best); "
            f"held-out log loss {fp['log_loss']:.4f} vs {kr['log_loss']:.4f}; target >= "
            f"{TARGET:g}x at equal or better log loss: {'MET' if met else 'NOT MET'}")


if __name__ == "__main__":
    raise SystemExit(main())
