"""DDP on CPU: 2 ranks (gloo) x 2 DataLoader workers over ONE file of 301 records.

Each rank is a subprocess running tests/torch/ddp_job.py with torchrun's
environment (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import socket
import subprocess
import sys
from typing import Any

import pytest

from tests.torch.conftest import ROOT

NUM_RECORDS = 301
BATCH = 16
RESUME_AFTER = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_ranks(
    data: pathlib.Path, out: pathlib.Path, *extra: str, world: int = 2
) -> list[dict[str, Any]]:
    port = _free_port()
    procs = []
    for rank in range(world):
        env = dict(
            os.environ,
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            RANK=str(rank),
            WORLD_SIZE=str(world),
            LOCAL_RANK=str(rank),
            OMP_NUM_THREADS="1",
            PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        )
        cmd = [
            sys.executable, str(ROOT / "tests" / "torch" / "ddp_job.py"),
            "--data", str(data), "--out", str(out), "--batch-size", str(BATCH),
            "--resume-after", str(RESUME_AFTER), *extra,
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=420)[0].decode(errors="replace"))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for rank, (p, log) in enumerate(zip(procs, logs, strict=True)):
        assert p.returncode == 0, f"rank {rank} exited with {p.returncode}:\n{log[-4000:]}"
    return [json.loads((out / f"rank-{r}.json").read_text()) for r in range(world)]


@pytest.fixture(scope="module")
def one_file(tmp_path_factory: pytest.TempPathFactory, example: Any) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("one_file")
    example.write_example_data(str(folder), NUM_RECORDS, num_files=1)
    return folder


def _check(results: list[dict[str, Any]], epochs: int) -> None:
    r0, r1 = results
    assert (r0["rank"], r1["rank"]) == (0, 1)
    assert (r0["seen_rank"], r1["seen_rank"]) == (0, 1)
    steps = math.ceil(math.ceil(NUM_RECORDS / 2) / BATCH)  # 10
    for res in results:
        assert res["len"] == steps
        # equal step counts per rank (padding under uneven="pad")
        assert [len(e) for e in res["epochs"]] == [steps, steps]
    for epoch in (0, 1):
        ids = [i for res in results for batch in res["epochs"][epoch] for i in batch]
        assert sorted(ids) == list(range(NUM_RECORDS)), f"epoch {epoch}: not every record once"
    for res in results:
        # deterministic with the seed, reshuffled per epoch
        assert res["epoch0_again"] == res["epochs"][0]
        assert res["epochs"][0] != res["epochs"][1]
        # resumed mid-epoch: exactly the remaining batches
        assert res["resume_taken"] == res["epochs"][1][:RESUME_AFTER]
        assert res["resume_rest"] == res["epochs"][1][RESUME_AFTER:]
    # DDP: the same number of steps, parameters equal after allreduce
    assert r0["train_steps"] == r1["train_steps"] == epochs * steps
    assert r0["param_checksums"] == r1["param_checksums"]
    assert r0["param_checksums"][0] == pytest.approx(r0["param_checksums"][1], abs=0)
    assert all(loss == loss for loss in r0["train_losses"])  # not NaN


def test_ddp_two_ranks_two_workers_one_file(one_file: pathlib.Path, tmp_path: pathlib.Path) -> None:
    _check(_run_ranks(one_file, tmp_path, "--train-epochs", "1"), epochs=1)


@pytest.mark.slow
def test_ddp_spawned_workers(one_file: pathlib.Path, tmp_path: pathlib.Path) -> None:
    # spawn: the workers have no process group; the rank travels with the pickled dataset
    # (each worker imports torch afresh: one epoch only)
    r0, r1 = _run_ranks(one_file, tmp_path, "--context", "spawn", "--epoch0-only")
    steps = math.ceil(math.ceil(NUM_RECORDS / 2) / BATCH)
    assert [len(r["epochs"][0]) for r in (r0, r1)] == [steps, steps]
    ids = [i for r in (r0, r1) for batch in r["epochs"][0] for i in batch]
    assert sorted(ids) == list(range(NUM_RECORDS))
