"""Issue 16 benchmark: the same conversion on the DirectRunner and on Beam's Dask runner.

On the Criteo-like CSV of the conversion benchmark (``bench/convert``), each in a
fresh process, featurepipe's ``ConvertToExamples`` (fixed schema, 2 shards) runs on:

* ``direct_inprocess``: the DirectRunner in-process;
* ``direct_multi``: the DirectRunner, ``multi_processing`` with 2 workers;
* ``dask_1`` / ``dask_2``: Beam's Dask runner on a ``distributed.LocalCluster`` of 1 and
  2 worker processes (one thread each), ``--dask_npartitions`` = 2 per worker.

It reports rows/s (wall), rows per CPU-second (every process that worked: the
driver, multi_processing workers, Dask workers), the cluster's start-up (not in the
timed span), the tasks the scheduler ran and its overhead per task (the wall clock
times the workers, less the workers' compute, per task), and a projection for 10
and 100 workers: T(N) = serial + compute / min(N, splits), where ``serial`` is what
the 1-worker run spent outside task compute (planning splits, scheduling,
publishing) and ``compute`` its task compute. The 2-core machine caps what 2 Dask
workers can show; the projection is a model, not a measurement. Usage::

    python -m bench dask --rows 1000000
    python -m bench dask --rows 100000 --only dask_1,dask_2
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from typing import Any

from bench.convert.run import _csv
from bench.harness import machine_info, markdown_table, measure, write_results

TASKS = ("direct_inprocess", "direct_multi", "dask_1", "dask_2")
SPLIT_BYTES = 32 << 20  # featurepipe's default ReadOptions.split_bytes


def _run(task: str, csv: Any, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"fp-bench-{task}-") as out:
        m = measure(
            [sys.executable, "-m", "bench.dask.worker", task,
             json.dumps({"csv": str(csv), "out": out})],
            timeout=timeout,
        )
    rep = m.report
    if m.returncode != 0 or "seconds" not in rep:
        return {"task": task, "error": (m.stderr_tail or "")[-600:], "returncode": m.returncode}
    return {
        "task": task,
        **rep,
        "rows_per_s": rep["records"] / rep["seconds"],
        "rows_per_cpu_s": rep["records"] / rep["cpu_seconds"] if rep["cpu_seconds"] else None,
        "wall_s": m.wall_s,
        "max_rss_mb": m.max_rss_mb,
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the runner comparison; prints a table, overheads and projections; returns 0."""
    parser = argparse.ArgumentParser(
        prog="python -m bench dask",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV rows (default 1M)")
    parser.add_argument("--only", default=",".join(TASKS), help=f"comma list of {TASKS}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per process")
    parser.add_argument("--no-results", action="store_true", help="do not write results JSON")
    args = parser.parse_args(argv)
    tasks = [t.strip() for t in args.only.split(",") if t.strip()]
    if sorted(set(tasks) - set(TASKS)) or args.rows < 1:
        parser.error(f"--only takes {TASKS}; --rows >= 1. Received: {args.only!r}, {args.rows}")
    csv = _csv(args.rows, args.seed)
    splits = max(1, math.ceil(csv.stat().st_size / SPLIT_BYTES))
    results = []
    for task in tasks:
        r = _run(task, csv, args.timeout)
        results.append(r)
        print(json.dumps(r), flush=True)

    def fmt(v: Any, spec: str) -> str:
        return format(v, spec) if isinstance(v, (int, float)) else "-"

    print()
    print(
        markdown_table(
            ["task", "rows", "seconds", "rows/s", "rows per CPU-s", "tasks",
             "overhead/task ms", "cluster start s", "peak RSS MB"],
            [
                [
                    r["task"], r.get("records", "-"), fmt(r.get("seconds"), ".1f"),
                    fmt(r.get("rows_per_s"), ",.0f"), fmt(r.get("rows_per_cpu_s"), ",.0f"),
                    r.get("tasks", "-"),
                    fmt(r["overhead_per_task_s"] * 1000, ".1f") if "overhead_per_task_s" in r
                    else "-",
                    fmt(r.get("cluster_startup_s"), ".1f"), fmt(r.get("max_rss_mb"), ".0f"),
                ]
                for r in results
            ],
        )
    )
    by = {r["task"]: r for r in results if "rows_per_s" in r}
    projection = None
    if "dask_1" in by:
        one = by["dask_1"]
        compute = one["task_compute_s"]
        serial = max(0.0, one["seconds"] - compute)
        projection = {
            str(n): {
                "seconds": serial + compute / min(n, splits),
                "rows_per_s": one["records"] / (serial + compute / min(n, splits)),
            }
            for n in (1, 2, 10, 100)
        }
        print()
        print(
            f"1 Dask worker: {one['records'] / compute:,.0f} rows per second of task compute; "
            f"serial part {serial:.1f} s; {splits} split(s) of {SPLIT_BYTES >> 20} MiB"
        )
        for n, p in projection.items():
            print(
                f"  projected with {n:>3} workers: {p['seconds']:.1f} s, "
                f"{p['rows_per_s']:,.0f} rows/s"
            )
    for r in results:
        if "error" in r:
            print(f"{r['task']}: ERROR {r['error'][-300:]}")
    if not args.no_results:
        path = write_results(
            "dask",
            {"machine": machine_info(), "rows": args.rows, "splits": splits,
             "results": results, "projection": projection},
        )
        print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
