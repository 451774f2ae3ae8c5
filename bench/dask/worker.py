"""One measured conversion on a given runner, in a process of its own.

``python -m bench.dask.worker TASK '{"csv": ..., "out": ...}'`` runs featurepipe's
``ConvertToExamples`` on the Criteo-like CSV and prints one JSON line with the
conversion's wall seconds, the CPU seconds of every process that worked on it
(this one, multi_processing workers, Dask worker processes) and, on Dask, the
per-task figures from the scheduler's task stream.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import psutil

from bench.convert.worker import _schema

__all__ = ["TASKS", "main"]


def _tree_cpu(proc: psutil.Process) -> float:
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def _self_and_reaped_cpu() -> float:
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _convert(a: dict[str, Any], argv: list[str]) -> dict[str, Any]:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from featurepipe.beam import ConvertToExamples, ShardOptions, read_summary

    prefix = os.path.join(a["out"], "fp")
    p = beam.Pipeline(options=PipelineOptions(argv))
    _ = p | ConvertToExamples(
        [a["csv"]], prefix, schema=_schema(), shard_options=ShardOptions(num_shards=2)
    )
    result = p.run()
    result.wait_until_finish()
    client = getattr(result, "client", None)
    if client is not None:
        client.close()
    return read_summary(prefix)


def _direct(a: dict[str, Any], argv: list[str]) -> dict[str, Any]:
    c0, t0 = _self_and_reaped_cpu(), time.perf_counter()
    s = _convert(a, argv)
    return {
        "records": s["rows_read"],
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": _self_and_reaped_cpu() - c0,
    }


def _dask(a: dict[str, Any], workers: int) -> dict[str, Any]:
    from distributed import Client, LocalCluster, get_task_stream

    t_start = time.perf_counter()
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster, Client(cluster) as client:
        startup = time.perf_counter() - t_start
        me = psutil.Process()
        c0, t0 = _tree_cpu(me), time.perf_counter()
        argv = [
            "--runner=apache_beam.runners.dask.dask_runner.DaskRunner",
            f"--dask_client_address={cluster.scheduler_address}",
            f"--dask_npartitions={max(2, 2 * workers)}",
        ]
        with get_task_stream(client) as ts:
            s = _convert(a, argv)
        seconds = time.perf_counter() - t0
        cpu = _tree_cpu(me) - c0
    tasks = ts.data
    spans = [
        (x["start"], x["stop"])
        for t in tasks
        for x in t["startstops"]
        if x["action"] == "compute"
    ]
    # A step with a side input computes it inside its own task (the Dask runner's nested
    # compute): such a task's span holds other tasks' spans, so its own time is its span
    # less theirs. Summing spans would count the nested work twice.
    busy = 0.0
    for a, b in spans:  # (with 2 workers, a task on the other one inside a span counts too)
        inner = sum(d - c for c, d in spans if (c, d) != (a, b) and a <= c and d <= b)
        busy += max(0.0, (b - a) - inner)
    return {
        "records": s["rows_read"],
        "seconds": seconds,
        "cpu_seconds": cpu,
        "cluster_startup_s": startup,
        "tasks": len(tasks),
        "task_compute_s": busy,
        # what the wall clock holds beyond the workers' compute, spread over the tasks
        "overhead_per_task_s": max(0.0, seconds * workers - busy) / max(1, len(tasks)),
    }


TASKS = {
    "direct_inprocess": lambda a: _direct(a, ["--direct_running_mode=in_memory"]),
    "direct_multi": lambda a: _direct(
        a, ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    ),
    "dask_1": lambda a: _dask(a, 1),
    "dask_2": lambda a: _dask(a, 2),
}


def main(argv: list[str]) -> int:
    task, args = argv[0], json.loads(argv[1])
    print(json.dumps(TASKS[task](args)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
