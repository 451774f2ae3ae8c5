"""Keras 3 on every backend: canned models train on JAX and PyTorch with no TensorFlow.

Each backend runs in its own subprocess (``KERAS_BACKEND`` must be set before
keras is imported); on JAX and PyTorch ``import tensorflow`` is made to fail
before anything imports it. The models (linear, DNN, wide-and-deep over
embedding, indicator, numeric, bucketized and crossed columns) are fed
``featurepipe.data``-style numpy batches through ``loader_dataset``; the losses
must go down, and one set of weights must predict the same on every backend.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("backend_worker.py")
MODELS = ("linear", "dnn", "wide_and_deep")


def run_worker(backend: str, workdir: Path, *, no_tensorflow: bool) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), KERAS_BACKEND=backend)
    cmd = [sys.executable, str(WORKER), backend, str(workdir)]
    if no_tensorflow:
        cmd.append("--no-tensorflow")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report: dict[str, Any] = json.loads((workdir / f"{backend}.json").read_text())
    return report


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("backends")
    out = {"jax": run_worker("jax", workdir, no_tensorflow=True)}
    out["torch"] = run_worker("torch", workdir, no_tensorflow=True)
    out["tensorflow"] = run_worker("tensorflow", workdir, no_tensorflow=False)
    out["_dir"] = {"path": str(workdir)}
    return out


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_trains_without_tensorflow(reports: dict[str, dict[str, Any]], backend: str) -> None:
    report = reports[backend]
    assert report["backend"] == backend
    assert report["tensorflow_imported"] is False
    assert report["checked"] == list(MODELS)
    for kind in MODELS:
        losses = report["losses"][kind]
        assert len(losses) == 4
        assert all(np.isfinite(losses)), (kind, losses)
        assert losses[-1] < losses[0] * 0.95, (backend, kind, losses)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_tf_only_parts_say_what_to_install(
    reports: dict[str, dict[str, Any]], backend: str
) -> None:
    message = reports[backend]["export_error"]
    assert "featurepipe[tf]" in message and "TensorFlow" in message


@pytest.mark.parametrize("kind", MODELS)
def test_same_weights_same_predictions_on_every_backend(
    reports: dict[str, dict[str, Any]], kind: str
) -> None:
    workdir = Path(reports["_dir"]["path"])
    preds = {b: np.load(workdir / f"pred-{kind}-{b}.npy") for b in ("jax", "torch", "tensorflow")}
    assert preds["jax"].shape == (64, 1)
    assert float(np.std(preds["jax"])) > 1e-3  # the weights are trained, not all zeros
    for backend in ("torch", "tensorflow"):
        np.testing.assert_allclose(preds[backend], preds["jax"], atol=1e-5, rtol=0)
