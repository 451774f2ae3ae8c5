"""Runners by short name, and running a pipeline to its end on any of them.

``--runner dask`` means Beam's Dask runner
(``apache_beam.runners.dask.dask_runner.DaskRunner``, in the ``apache-beam``
package; it needs ``dask[distributed]``): against the scheduler at
``--dask-address`` when one is given, else against a new
``distributed.LocalCluster`` of ``--dask-workers`` worker processes that lives as
long as the job. Other short names (``direct``, ``dataflow``, ``flink``,
``spark``, ``prism``) are Beam's runner names; a full runner name or class path
passes through unchanged.

featurepipe's pipelines are shaped to run correctly on the Dask runner, which is
young (it translates only Create, ParDo, GroupByKey and Flatten; its Reshuffle is
a no-op and it drops what a DoFn emits from ``finish_bundle``): see
:class:`featurepipe.beam.ConvertToExamples` and
:class:`featurepipe.beam.AnalyzeDataset`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from featurepipe.errors import ConfigError

__all__ = ["DASK_RUNNER", "RUNNER_NAMES", "run_pipeline", "runner_arguments"]

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
RUNNER_NAMES = {
    "direct": "DirectRunner",
    "dask": DASK_RUNNER,
    "dataflow": "DataflowRunner",
    "flink": "FlinkRunner",
    "spark": "SparkRunner",
    "prism": "PrismRunner",
}


def _given(args: list[str], *flags: str) -> bool:
    return any(a == f or a.startswith(f + "=") for a in args for f in flags)


def _without(args: list[str], flag: str) -> list[str]:
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        elif not a.startswith(flag + "="):
            out.append(a)
    return out


def _value(args: list[str], flag: str) -> str:
    for i, a in enumerate(args):
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
        if a == flag and i + 1 < len(args):
            return args[i + 1]
    raise ConfigError(f"{flag} has no value")


@contextlib.contextmanager
def runner_arguments(
    runner: str | None,
    beam_args: list[str],
    *,
    dask_address: str | None = None,
    dask_workers: int | None = None,
) -> Iterator[list[str]]:
    """The Beam pipeline arguments for ``runner``, with a Dask cluster when it needs one.

    Args:
        runner: a short name from :data:`RUNNER_NAMES`, a Beam runner name or
            class path, or ``None`` for the ``--runner`` in ``beam_args`` (short
            names work there too), if any.
        beam_args: the other pipeline arguments.
        dask_address: the Dask scheduler (``tcp://HOST:8786``) for ``dask``.
            Defaults to a new local cluster.
        dask_workers: worker processes of that local cluster. Defaults to the
            number of CPUs.

    Yields:
        The arguments for ``PipelineOptions``; a local cluster stops when the
        block ends.

    Raises:
        ConfigError: Dask options without ``--runner dask``, or ``distributed``
            is not installed.

    Examples:
    >>> with runner_arguments("direct", ["--direct_num_workers=2"]) as args:
    ...     args
    ['--runner=DirectRunner', '--direct_num_workers=2']
    >>> with runner_arguments(None, ["--runner", "dask", "--dask_client_address=tcp://h:8786",
    ...                              "--dask_npartitions=8"]) as args:
    ...     args[0]
    '--runner=apache_beam.runners.dask.dask_runner.DaskRunner'
    >>> args[1:]
    ['--dask_client_address=tcp://h:8786', '--dask_npartitions=8']
    """
    args = list(beam_args)
    if _given(args, "--runner"):  # in beam_args (a job's pass-through options): take it out
        given = _value(args, "--runner")
        runner = runner or given
        args = _without(args, "--runner")
    name = RUNNER_NAMES.get(runner.lower(), runner) if runner else None
    args = ([f"--runner={name}"] if name else []) + args
    if name != DASK_RUNNER:
        if dask_address is not None or dask_workers is not None:
            raise ConfigError(
                "--dask-address and --dask-workers need --runner dask. "
                f"Received: runner={runner!r}"
            )
        yield args
        return
    if dask_workers is not None and dask_workers < 1:
        raise ConfigError(f"--dask-workers must be >= 1. Received: {dask_workers}")
    try:
        import distributed
    except ImportError as e:
        raise ConfigError(
            "--runner dask needs the `distributed` package: "
            "pip install 'featurepipe[dask]' (or 'dask[distributed]')."
        ) from e
    with contextlib.ExitStack() as stack:
        if dask_address is None and not _given(args, "--dask_client_address"):
            if dask_workers is not None:
                workers = dask_workers
            else:
                workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
                    os.cpu_count() or 1
                )
            # distributed logs at INFO in this process too (a job that logs at INFO shows
            # them), and at the cluster's shutdown its batched comms log a closed
            # connection *with a traceback* at INFO (distributed/batched.py,
            # `_background_send`): noise after a job that succeeded. Quiet it while our
            # own cluster lives, unless the user set the level on purpose.
            dist_logger = logging.getLogger("distributed")
            _drop_closed_comm_tracebacks()
            if dist_logger.level == logging.NOTSET:
                dist_logger.setLevel(logging.WARNING)
                stack.callback(dist_logger.setLevel, logging.NOTSET)
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                    silence_logs=40,  # logging.ERROR: the job's own messages stay readable
                )
            )
            dask_address = cluster.scheduler_address
        elif dask_workers is not None:
            workers = dask_workers
        elif _given(args, "--dask_npartitions", "--dask_partition_size"):
            workers = 0  # partitions chosen by the caller
        else:  # ask the scheduler how many workers it has
            address = dask_address or _value(args, "--dask_client_address")
            with distributed.Client(address, timeout=30) as client:
                workers = len(client.scheduler_info()["workers"])
        if dask_address is not None:
            args.append(f"--dask_client_address={dask_address}")
        if workers and not _given(args, "--dask_npartitions", "--dask_partition_size"):
            # The Dask runner spreads work only by how Create partitions its input
            # (featurepipe's pipelines Create their splits / files): 2 per worker.
            args.append(f"--dask_npartitions={2 * workers}")
        yield args


class _ClosedCommFilter(logging.Filter):
    """Strips the traceback from distributed's INFO "Batched Comm Closed" record.

    The scheduler's comms close from the cluster's event-loop thread, which can
    log after our level change above is undone (seen in CI: the record came
    after ``LocalCluster.__exit__``). The message stays; only the traceback of a
    routine shutdown goes. Warnings and errors pass untouched.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.INFO and record.exc_info:
            record.exc_info = None
            record.exc_text = None
        return True


def _drop_closed_comm_tracebacks() -> None:
    logger = logging.getLogger("distributed.batched")
    if not any(isinstance(f, _ClosedCommFilter) for f in logger.filters):
        logger.addFilter(_ClosedCommFilter())


def run_pipeline(pipeline: Any) -> Any:
    """Runs ``pipeline`` to its end and returns the result.

    ``with beam.Pipeline() as p`` does the same, except that on the Dask runner
    this also closes the runner's own client, which otherwise outlives the job
    and tries to reconnect once a local cluster has stopped.
    """
    result = pipeline.run()
    try:
        result.wait_until_finish()
    finally:
        client = getattr(result, "client", None)
        if client is not None:
            client.close()
    return result
