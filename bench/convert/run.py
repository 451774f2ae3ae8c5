"""Issue 3 benchmark: CSV -> tf.Example TFRecords, featurepipe's Beam job against its peers.

On one Criteo-like CSV file (``bench/datagen.py``: label, I1..I13 ints with
missing values, C1..C26 8-hex-char strings), each in a fresh process, it
measures rows/s and peak RSS of:

(a) ``fp_inprocess``: featurepipe ``ConvertToExamples``, DirectRunner in-process;
(b) ``fp_multi``: the same, ``--direct_running_mode=multi_processing --direct_num_workers=2``;
(a') ``fp_infer``: (a) with the schema inferred from every row (the input is read twice);
(c) ``naive_inprocess`` / ``naive_multi``: ReadFromText -> parse -> ``tf.train.Example``
    -> WriteToTFRecord, both modes;
(d) ``tf_loop``: a plain Python loop with ``tf.train.Example`` and ``tf.io.TFRecordWriter``;
(e) ``tfxbsl``: pyarrow CSV -> RecordBatch -> tfx-bsl ``RecordBatchToExamplesEncoder``,
    in ``bench/.venvs/tfxbsl`` (``python -m bench peers tfxbsl`` sets it up).

Every task writes the same records (missing cells are absent features). The
timed span is the conversion (imports excluded); peak RSS is the whole
process tree's largest member as reported by ``wait4``. With ``--memory-rows``
featurepipe in-process also runs on a smaller prefix of the file, to show
whether memory stays flat as the input grows. Usage::

    python -m bench convert --rows 1000000            # everything (slow on 2 cores)
    python -m bench convert --rows 100000 --only fp_inprocess,naive_inprocess
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import BENCH_DIR, machine_info, markdown_table, measure, write_results

TASKS = (
    "fp_inprocess",
    "fp_multi",
    "fp_infer",
    "naive_inprocess",
    "naive_multi",
    "tf_loop",
    "tfxbsl",
)
DATA_DIR = BENCH_DIR / "data"


def _csv(rows: int, seed: int) -> Path:
    from bench.datagen import write_criteo_csv

    path = DATA_DIR / f"convert-criteo-s{seed}-{rows}.csv"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".csv.tmp")
        write_criteo_csv(tmp, num_rows=rows, seed=seed)
        tmp.replace(path)
    return path


def _python(task: str) -> str | None:
    if task != "tfxbsl":
        return sys.executable
    from bench.peers import peer_python

    py = peer_python("tfxbsl")
    return str(py) if py else None


def _env(task: str) -> dict[str, str]:
    if not task.startswith("naive"):
        return {}
    # Beam's WriteToTFRecord wants google-crc32c: a shim over `crc32c`, inherited by workers.
    shim = str(BENCH_DIR / "convert" / "_shim")
    return {"PYTHONPATH": os.pathsep.join(p for p in (shim, os.environ.get("PYTHONPATH")) if p)}


def _run(task: str, csv: Path, timeout: float) -> dict[str, Any]:
    py = _python(task)
    if py is None:
        return {"task": task, "error": "tfx-bsl venv missing: run `python -m bench peers tfxbsl`"}
    with tempfile.TemporaryDirectory(prefix=f"fp-bench-{task}-") as out:
        m = measure(
            [py, "-m", "bench.convert.worker", task, json.dumps({"csv": str(csv), "out": out})],
            timeout=timeout,
            env=_env(task),
        )
    rep = m.report
    if m.returncode != 0 or "seconds" not in rep:
        return {"task": task, "error": (m.stderr_tail or "")[-600:], "returncode": m.returncode}
    return {
        "task": task,
        "rows": rep["records"],
        "seconds": rep["seconds"],
        "rows_per_s": rep["records"] / rep["seconds"],
        "cpu_seconds": rep.get("cpu_seconds"),
        "rows_per_cpu_s": rep["records"] / rep["cpu_seconds"] if rep.get("cpu_seconds") else None,
        "wall_s": m.wall_s,
        "cpu_s": m.user_s + m.sys_s,
        "max_rss_mb": m.max_rss_mb,
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the conversion benchmark; prints a table and ratios; returns 0."""
    parser = argparse.ArgumentParser(
        prog="python -m bench convert",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV rows (default 1M)")
    parser.add_argument(
        "--memory-rows",
        type=int,
        default=200_000,
        help="also run featurepipe in-process on this many rows (0: skip)",
    )
    parser.add_argument("--only", default=",".join(TASKS), help=f"comma list of {TASKS}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per process")
    parser.add_argument("--no-results", action="store_true", help="do not write results JSON")
    args = parser.parse_args(argv)
    tasks = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or args.rows < 1:
        parser.error(
            f"unknown tasks {unknown} or --rows < 1. Received: only={args.only!r}, rows={args.rows}"
        )
    csv = _csv(args.rows, args.seed)
    results = []
    for task in tasks:
        r = _run(task, csv, args.timeout)
        results.append(r)
        print(json.dumps(r), flush=True)
    memory = None
    if args.memory_rows and "fp_inprocess" in tasks and args.memory_rows < args.rows:
        memory = _run("fp_inprocess", _csv(args.memory_rows, args.seed), args.timeout)
        print(json.dumps({"memory_check": memory}), flush=True)

    by = {r["task"]: r for r in results if "rows_per_s" in r}

    def ratio(a: str, b: str) -> str:
        if a in by and b in by:
            wall = by[a]["rows_per_s"] / by[b]["rows_per_s"]
            if by[a].get("rows_per_cpu_s") and by[b].get("rows_per_cpu_s"):
                cpu = by[a]["rows_per_cpu_s"] / by[b]["rows_per_cpu_s"]
                return f"{wall:.2f}x wall, {cpu:.2f}x per CPU-second"
            return f"{wall:.2f}x wall"
        return "n/a"

    rows = [
        [
            r["task"],
            r.get("rows", "-"),
            f"{r['seconds']:.1f}" if "seconds" in r else "-",
            f"{r['rows_per_s']:,.0f}" if "rows_per_s" in r else "error",
            f"{r['rows_per_cpu_s']:,.0f}" if r.get("rows_per_cpu_s") else "-",
            f"{r['max_rss_mb']:.0f}" if "max_rss_mb" in r else "-",
        ]
        for r in results
    ]
    print()
    print(
        markdown_table(["task", "rows", "seconds", "rows/s", "rows per CPU-s", "peak RSS MB"], rows)
    )
    print()
    print(
        f"featurepipe / naive Beam, in-process:      {ratio('fp_inprocess', 'naive_inprocess')}"
        "  (target >= 3x)"
    )
    print(
        f"featurepipe / naive Beam, multi_processing: {ratio('fp_multi', 'naive_multi')}"
        "  (target >= 3x)"
    )
    print(
        f"featurepipe in-process / tfx-bsl (per process): {ratio('fp_inprocess', 'tfxbsl')}"
        "  (target >= 1.5x)"
    )
    print(f"featurepipe in-process / plain TF loop:    {ratio('fp_inprocess', 'tf_loop')}")
    print(f"featurepipe inferring its schema / tfx-bsl: {ratio('fp_infer', 'tfxbsl')}")
    if memory and "max_rss_mb" in memory and "fp_inprocess" in by:
        print(
            f"featurepipe peak RSS: {memory['max_rss_mb']:.0f} MB at {args.memory_rows} rows, "
            f"{by['fp_inprocess']['max_rss_mb']:.0f} MB at {args.rows} rows"
        )
    for r in results:
        if "error" in r:
            print(f"{r['task']}: ERROR {r['error'][-300:]}")
    if not args.no_results:
        path = write_results(
            "convert",
            {
                "machine": machine_info(),
                "rows": args.rows,
                "results": results,
                "memory_check": memory,
            },
        )
        print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
