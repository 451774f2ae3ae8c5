"""Smoke test of the torch-loader benchmark (``python -m bench torch_loader``) on 2k rows.

The benchmark itself never runs here: the featurepipe side and the tf.data +
``tf.feature_column`` side of ``bench/torch_loader/worker.py`` each read a tiny
file once in-process, and their first batches hold the same ids and numbers.
(The tfrecord side needs its own venv and is compared the same way by the benchmark.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROWS = 2048

datagen = pytest.importorskip("bench.datagen")


def test_featurepipe_and_tf_sides_agree(tmp_path: Path) -> None:
    from bench.columns import plan as cplan
    from bench.torch_loader import worker

    path = tmp_path / "criteo.tfrecord"
    datagen.write_criteo_tfrecord(path, num_rows=ROWS, processes=1)
    plan = cplan.make_plan(ROWS)
    args = {"path": str(path), "workers": 1, "plan": ""}
    ours = worker.run_featurepipe({**args, "workers": 0}, plan)
    peer = worker.run_tf_feature_column(args, plan)
    assert ours["examples"] == peer["examples"] == ROWS
    assert ours["batches"] == peer["batches"] == 2
    assert set(ours["checksum"]) == set(peer["checksum"]) and len(ours["checksum"]) == 10
    for name, value in ours["checksum"].items():
        assert value == pytest.approx(peer["checksum"][name], rel=1e-5, abs=1e-3), name
    json.dumps(ours)  # the worker prints it as JSON
