"""convert and analyze on a real distributed engine: Beam's Dask runner on a LocalCluster.

A ``distributed.LocalCluster`` of two worker processes is a real scheduler with
real serialization of every DoFn, side input and element, and the same code path
as a multi-machine Dask cluster. Each job's outputs are checked against the
DirectRunner's (conversion) or the local engine's (analysis) on the same input,
and a worker killed mid-job must not lose or duplicate a row.
"""

from __future__ import annotations

import glob
import json
import os
import pathlib
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

beam = pytest.importorskip("apache_beam")
distributed = pytest.importorskip("distributed")

from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402
from distributed.diagnostics.plugin import WorkerPlugin  # noqa: E402

from featurepipe.analysis import Analysis, analyze_records, load_requests  # noqa: E402
from featurepipe.beam import AnalyzeDataset, ConvertToExamples, ShardOptions  # noqa: E402
from featurepipe.convert import ReadOptions  # noqa: E402
from featurepipe.tfrecord import read_records  # noqa: E402

DASK = "apache_beam.runners.dask.dask_runner.DaskRunner"


def _cluster() -> Any:
    return distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with _cluster() as c:
        yield c


def _dask_argv(cluster: Any) -> list[str]:
    # partitions: Beam's Dask runner spreads work only by how Create partitions
    return [
        f"--runner={DASK}",
        f"--dask_client_address={cluster.scheduler_address}",
        "--dask_npartitions=4",
    ]


def _csv(path: pathlib.Path, n: int) -> int:
    """Rows with a few malformed ones (one field too many); returns how many.

    A few rows hold a word in the count column: the inferred schema makes that
    column bytes, on every runner alike.
    """
    rng = random.Random(5)
    bad = 0
    lines = ["id,count,price,city"]
    for i in range(n):
        if i % 97 == 13:
            lines.append(f"{i},many,1.5,Oslo")
        elif i % 131 == 7:
            lines.append(f"{i},1,2.5,Oslo,extra")
            bad += 1
        else:
            lines.append(f"{i},{rng.randint(0, 50)},{rng.random() * 100:.3f},{rng.choice('ABCDE')}x")
    path.write_text("\n".join(lines) + "\n")
    return bad


def _run(p: Any) -> None:
    result = p.run()
    result.wait_until_finish()
    client = getattr(result, "client", None)  # the Dask runner's own client
    if client is not None:
        client.close()


def _convert(src: pathlib.Path, prefix: pathlib.Path, argv: list[str]) -> dict[str, Any]:
    p = beam.Pipeline(options=PipelineOptions(argv))
    _ = p | ConvertToExamples(
        [str(src)],
        str(prefix),
        read_options=ReadOptions(split_bytes=4096, batch_size=50),
        shard_options=ShardOptions(num_shards=3),
    )
    _run(p)
    summary: dict[str, Any] = json.loads(pathlib.Path(f"{prefix}.summary.json").read_text())
    return summary


def _outputs(prefix: pathlib.Path) -> tuple[Counter[bytes], list[str], list[str]]:
    shards = sorted(glob.glob(f"{prefix}-*-of-*.tfrecord"))
    records = Counter(r for s in shards for r in read_records(s))
    (dl,) = glob.glob(f"{prefix}.deadletter-*.jsonl")
    dead = sorted(pathlib.Path(dl).read_text().splitlines())
    return records, dead, shards


def _no_leftovers(folder: pathlib.Path, prefix: str) -> None:
    names = sorted(p.name for p in folder.iterdir())
    expected = {
        *(f"{prefix}-{i:05d}-of-00003.tfrecord" for i in range(3)),
        f"{prefix}.deadletter-00000-of-00001.jsonl",
        f"{prefix}.summary.json",
        f"{prefix}.schema.json",
    }
    assert set(names) == expected, names  # no temporary folder, no stray piece


def test_convert_on_dask_matches_the_direct_runner(cluster: Any, tmp_path: pathlib.Path) -> None:
    src = tmp_path / "rows.csv"
    n_bad = _csv(src, 3000)
    direct = _convert(src, tmp_path / "direct" / "x", [])
    dask = _convert(src, tmp_path / "dask" / "x", _dask_argv(cluster))

    for key in ("status", "rows_read", "rows_written", "rows_dead_lettered", "dead_letters_by_reason"):
        assert dask[key] == direct[key], key
    assert dask["rows_read"] == 3000 and dask["rows_dead_lettered"] == n_bad
    d_records, d_dead, _ = _outputs(tmp_path / "direct" / "x")
    k_records, k_dead, k_shards = _outputs(tmp_path / "dask" / "x")
    assert k_records == d_records  # the same multiset of serialized Examples
    assert sum(k_records.values()) == 3000 - n_bad
    assert k_dead == d_dead  # the same dead letters, with their line numbers
    assert len(k_shards) == 3
    # the schema was inferred on the workers: the same as the DirectRunner's
    assert (tmp_path / "dask" / "x.schema.json").read_text() == (
        tmp_path / "direct" / "x.schema.json"
    ).read_text()
    _no_leftovers(tmp_path / "dask", "x")


def test_analyze_on_dask_matches_the_local_engine(cluster: Any, tmp_path: pathlib.Path) -> None:
    src = tmp_path / "rows.csv"
    _csv(src, 3000)
    _convert(src, tmp_path / "x", [])
    shards = sorted(glob.glob(str(tmp_path / "x-*-of-*.tfrecord")))
    spec = {
        "format_version": 1,
        "analyzers": [
            {"analyzer": "vocabulary", "key": "city"},
            {"analyzer": "vocabulary", "key": "count", "top_k": 10},
            {"analyzer": "quantiles", "key": "price", "num_bins": 10},
            {"analyzer": "moments", "key": "price"},
        ],
    }
    requests = load_requests(spec)
    local_dir, dask_dir = tmp_path / "local", tmp_path / "dask"
    local = analyze_records(shards, requests)
    local.save(str(local_dir))
    p = beam.Pipeline(options=PipelineOptions(_dask_argv(cluster)))
    _ = p | AnalyzeDataset(shards, requests, str(dask_dir), batch_size=128)
    _run(p)
    remote = Analysis.load(dask_dir)

    assert remote.num_examples == local.num_examples
    local_doc = json.loads((local_dir / "analysis.json").read_text())
    dask_doc = json.loads((dask_dir / "analysis.json").read_text())
    assert dask_doc["vocabularies"] == local_doc["vocabularies"]
    for meta in local_doc["vocabularies"].values():
        for name in (meta["file"], meta["frequencies_file"]):
            assert (dask_dir / name).read_bytes() == (local_dir / name).read_bytes()
    lm, dm = local.moments("price"), remote.moments("price")
    for name in lm:
        assert dm[name] == pytest.approx(lm[name], rel=1e-9)
    prices = np.sort(
        np.array([v for s in shards for v in _prices(s)], dtype=np.float32).astype(np.float64)
    )
    for i, b in enumerate(remote.boundaries("price", 10), start=1):
        rank = np.searchsorted(prices, b) / prices.size
        assert abs(rank - i / 10) <= 0.01 + 1 / prices.size  # the sketch's epsilon


def _prices(path: str) -> list[float]:
    from featurepipe.example import decode_example

    return [v for r in read_records(path) for v in decode_example(r)["price"].values]


class _KillOnce(WorkerPlugin):  # type: ignore[misc]
    """Kills its worker process once, right after the worker finishes its first
    conversion task: the scheduler loses that task's results and runs it again."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        name = key[0] if isinstance(key, tuple) else key
        if finish == "memory" and "apply_dofn_to_bundle" in str(name):
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.close(fd)
            os._exit(1)


def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "rows.csv"
    n_bad = _csv(src, 3000)
    marker = tmp_path / "killed"
    with _cluster() as c, distributed.Client(c) as client:
        client.register_plugin(_KillOnce(str(marker)))
        summary = _convert(src, tmp_path / "out" / "x", _dask_argv(c))
    assert marker.exists()  # a worker really died
    records, dead, _ = _outputs(tmp_path / "out" / "x")
    ids = Counter(json.loads(json.dumps(r.hex())) for r in records)
    assert max(ids.values()) == 1  # every record exactly once
    assert sum(records.values()) == summary["rows_written"] == 3000 - n_bad
    assert len(dead) == summary["rows_dead_lettered"] == n_bad
    _no_leftovers(tmp_path / "out", "x")


def test_cli_convert_runner_dask_with_an_address(
    cluster: Any, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from featurepipe.cli.main import main

    src = tmp_path / "rows.csv"
    n_bad = _csv(src, 500)
    args = ["convert", str(src), "--output", str(tmp_path / "o" / "x"), "--num-shards", "3"]
    assert main([*args, "--json"]) == 0
    direct = json.loads(capsys.readouterr().out)
    assert main([*args, "--json", "--runner", "dask", "--dask-address", cluster.scheduler_address]) == 0
    dask = json.loads(capsys.readouterr().out)
    assert dask["rows_read"] == direct["rows_read"] == 500
    assert dask["rows_dead_lettered"] == direct["rows_dead_lettered"] == n_bad
    assert dask["run_id"] != direct["run_id"]  # really a second run


def test_pipeline_entry_point_runner_dask_starts_its_own_cluster(tmp_path: pathlib.Path) -> None:
    import subprocess
    import sys

    src = tmp_path / "rows.csv"
    _csv(src, 300)
    prefix = tmp_path / "x"
    _convert(src, prefix, [])
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(
        {"format_version": 1, "analyzers": [{"analyzer": "vocabulary", "key": "city"}]}
    ))
    out = tmp_path / "art"
    res = subprocess.run(
        [sys.executable, "-m", "pipelines.analyze", "--input", f"{prefix}-*-of-*.tfrecord",
         "--spec", str(spec), "--output", str(out), "--runner", "dask", "--dask_workers", "2"],
        capture_output=True, text=True, timeout=300,
        cwd=pathlib.Path(__file__).resolve().parents[2],
    )
    assert res.returncode == 0, res.stderr[-2000:]
    local = analyze_records(sorted(glob.glob(f"{prefix}-*-of-*.tfrecord")), load_requests(spec.read_text()))
    assert Analysis.load(out).vocabulary("city") == local.vocabulary("city")
    assert "Traceback" not in res.stderr


def test_shutdown_comm_tracebacks_are_dropped_but_warnings_kept(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from featurepipe.beam._runners import _drop_closed_comm_tracebacks

    _drop_closed_comm_tracebacks()
    _drop_closed_comm_tracebacks()  # idempotent: one filter
    logger = logging.getLogger("distributed.batched")
    assert len(logger.filters) == 1
    try:
        raise OSError("Stream is closed")
    except OSError:
        with caplog.at_level(logging.INFO, logger="distributed.batched"):
            logger.info("Batched Comm Closed", exc_info=True)
            logger.warning("real trouble", exc_info=True)
    info, warning = caplog.records
    assert info.exc_info is None and "Traceback" not in caplog.text.split("real trouble")[0]
    assert warning.exc_info is not None
