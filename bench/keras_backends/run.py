"""Keras 3 backends (issue 14): canned wide-and-deep training examples/s on JAX vs TensorFlow.

``python -m bench keras_backends`` makes (or reuses) a Criteo-like TFRecord file
(``--train-rows``, default 50k) and trains featurepipe's ``wide_and_deep_model`` (linear
part on 26 ``HashedColumn(C*, --buckets)``, DNN on their ``--dim``-wide embeddings + 13
z-scored ``NumericColumn(I*)``; FTRL + Adam through ``SparseOptimizer``) for one epoch,
each backend in a fresh process (``bench.keras_backends.worker``), in rounds:

* **tf**: the TensorFlow backend fed by ``make_dataset`` (``tf.data``; row-sparse updates
  of the embedding tables);
* **jax**: the JAX backend, in a process where ``import tensorflow`` fails, fed by
  ``featurepipe.data.Loader`` through ``featurepipe.keras.loader_dataset`` (``jax.jit``
  train step; gradients and optimizer updates of the tables are dense);
* **torch** (``--only``): the PyTorch backend, the same way as JAX;
* **jax_widths**: what padding id widths to powers of two saves under ``jax.jit``: a
  multivalent column whose batch widths vary, unpadded vs ``id_width="pow2"``.

Prints examples/s (the full batches after the first step, which compiles, and before the
last, short one, which compiles again on JAX), the first and last steps' seconds, CPU
seconds, peak RSS and the JAX / TensorFlow ratio. Not a test.
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

BYTES_PER_ROW = 651  # Criteo-like records average ~651 bytes with framing (bench/core)
THINGS = (
    ("tf", "TensorFlow backend, make_dataset (tf.data)"),
    ("jax", "JAX backend, featurepipe.data Loader (no TensorFlow)"),
    ("torch", "PyTorch backend, featurepipe.data Loader (no TensorFlow)"),
    ("jax_widths", "JAX jit: varying id widths, unpadded vs pow2"),
)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("tensorflow-cpu", "tensorflow", "keras", "jax", "jaxlib", "torch", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns 0."""
    parser = argparse.ArgumentParser(
        prog="python -m bench keras_backends",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--train-rows", type=int, default=50_000, help="default 50000")
    parser.add_argument("--batch", type=int, default=1024, help="batch size (default 1024)")
    parser.add_argument(
        "--buckets",
        type=int,
        default=100_000,
        help="hash buckets of each C column (default 100000)",
    )
    parser.add_argument("--dim", type=int, default=16, help="embedding width (default 16)")
    parser.add_argument("--hidden", default="128,64", help="DNN widths (default 128,64)")
    parser.add_argument("--lr", type=float, default=0.001, help="the DNN's Adam learning rate")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each thing (median)")
    parser.add_argument(
        "--only",
        default="tf,jax,jax_widths",
        help="comma list of: " + ", ".join(t for t, _ in THINGS),
    )
    parser.add_argument(
        "--width-batches", type=int, default=40, help="jax_widths: batches (default 40)"
    )
    parser.add_argument(
        "--max-width", type=int, default=24, help="jax_widths: the largest id width (default 24)"
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per process")
    parser.add_argument("--results-dir", default=None, help="default bench/results")
    parser.add_argument("--no-results", action="store_true", help="do not write results JSON")
    args = parser.parse_args(argv)
    only = [t for t, _ in THINGS if t in {s.strip() for s in args.only.split(",")}]
    if args.repeat < 1 or args.train_rows < 2 * args.batch or not only:
        parser.error(
            "need --repeat >= 1, --train-rows >= 2 batches and a known --only. "
            f"Received: repeat={args.repeat}, train_rows={args.train_rows}, "
            f"only={args.only!r}"
        )
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    train = datagen.ensure_criteo_tfrecord(args.train_rows * BYTES_PER_ROW / 1e6, seed=0)
    print(f"train: {train.path} ({train.records:,} rows)", flush=True)
    harness.warm_page_cache(train.path)
    worker_args = {
        "train": train.path,
        "batch": args.batch,
        "lr": args.lr,
        "buckets": args.buckets,
        "dim": args.dim,
        "hidden": [int(w) for w in args.hidden.split(",")],
        "width_batches": args.width_batches,
        "max_width": args.max_width,
    }
    runs: dict[str, list[harness.Measurement]] = {t: [] for t in only}
    for round_ in range(args.repeat):
        for task in only:
            print(f"round {round_ + 1}/{args.repeat}: {task} ...", flush=True)
            cmd = [
                sys.executable,
                "-m",
                "bench.keras_backends.worker",
                task,
                json.dumps(worker_args),
            ]
            m = harness.measure(cmd, env={"TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=args.timeout)
            if m.returncode != 0 or not m.report:
                print(f"  failed ({m.returncode}): {m.stderr_tail[-1500:]}", flush=True)
            runs[task].append(m)

    rows, summary = _summarise(runs)
    table = harness.markdown_table(
        [
            "what",
            "examples/s (median)",
            "best",
            "first step s",
            "last step s",
            "final loss",
            "CPU s",
            "peak RSS MB",
            "runs",
        ],
        rows,
    )
    widths = _widths(runs.get("jax_widths", []))
    verdict = _verdict(summary)
    print()
    print(table)
    if widths:
        print()
        print(widths)
    print()
    print(verdict)
    payload = {
        "benchmark": "keras_backends",
        "argv": sys.argv[1:] if argv is None else list(argv),
        "machine": harness.machine_info(_versions()),
        "load_avg_at_start": load_at_start,
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "data": {"train": train.path, "train_rows": train.records},
        "args": worker_args,
        "runs": {t: [vars(m) for m in ms] for t, ms in runs.items()},
        "summary": summary,
        "table_markdown": table,
        "widths": widths,
        "verdict": verdict,
    }
    if not args.no_results:
        path = harness.write_results("keras_backends", payload, args.results_dir)
        print(f"\nresults: {path}")
    return 0


def _summarise(
    runs: dict[str, list[harness.Measurement]],
) -> tuple[list[list[Any]], dict[str, Any]]:
    labels = dict(THINGS)
    rows: list[list[Any]] = []
    summary: dict[str, Any] = {}
    for task, ms in runs.items():
        if task == "jax_widths":
            continue
        ok = [m for m in ms if m.returncode == 0 and m.report]
        if not ok:
            rows.append([labels[task], "failed", "", "", "", "", "", "", len(ms)])
            continue
        rates = [m.report["examples_per_s"] for m in ok]
        entry = {
            "examples_per_s": statistics.median(rates),
            "best_examples_per_s": max(rates),
            "first_step_s": statistics.median(m.report["first_step_s"] for m in ok),
            "last_step_s": statistics.median(m.report["last_step_s"] for m in ok),
            "loss": statistics.median(m.report["loss"] for m in ok),
            "cpu_s": statistics.median(m.user_s + m.sys_s for m in ok),
            "max_rss_mb": max(m.max_rss_mb for m in ok),
            "tensorflow_imported": any(m.report["tensorflow_imported"] for m in ok),
        }
        summary[task] = entry
        rows.append(
            [
                labels[task],
                f"{entry['examples_per_s']:,.0f}",
                f"{entry['best_examples_per_s']:,.0f}",
                f"{entry['first_step_s']:.1f}",
                f"{entry['last_step_s']:.2f}",
                f"{entry['loss']:.4f}",
                f"{entry['cpu_s']:.0f}",
                f"{entry['max_rss_mb']:,.0f}",
                len(ok),
            ]
        )
    return rows, summary


def _widths(ms: list[harness.Measurement]) -> str:
    ok = [m for m in ms if m.returncode == 0 and m.report]
    if not ok:
        return ""
    r = ok[-1].report
    rows = [
        [
            mode,
            r[key]["shapes"],
            f"{r[key]['seconds']:.1f}",
            f"{r[key]['fastest_step_ms']:.1f}",
            f"{r[key]['median_step_ms']:.1f}",
        ]
        for mode, key in (("id_width=None", "None"), ('id_width="pow2"', "pow2"))
    ]
    head = f"jax_widths: {len(r['widths'])} distinct id widths in the batches\n\n"
    return head + harness.markdown_table(
        ["padding", "shapes (compilations)", "epoch s", "fastest step ms", "median step ms"], rows
    )


def _verdict(summary: dict[str, Any]) -> str:
    tf, parts = summary.get("tf"), []
    for task in ("jax", "torch"):
        other = summary.get(task)
        if not tf or not other:
            continue
        ratio = other["examples_per_s"] / tf["examples_per_s"]
        cpu_ratio = tf["cpu_s"] / other["cpu_s"] if other["cpu_s"] else float("nan")
        summary[f"ratio_{task}_over_tf"] = ratio
        parts.append(
            f"{task} / tf examples/s: {ratio:.2f}x (wall, full batches); "
            f"tf / {task} CPU seconds: {cpu_ratio:.2f}x (whole process)"
        )
    return "; ".join(parts) if parts else "ratio: not evaluated (a run is missing)"


if __name__ == "__main__":
    raise SystemExit(main())
