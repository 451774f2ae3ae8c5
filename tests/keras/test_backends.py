"""Keras 3 on every backend: canned models train on JAX and PyTorch with no TensorFlow.

Each backend runs in its own subprocess (``KERAS_BACKEND`` must be set before
keras is imported); on JAX and PyTorch ``import tensorflow`` is made to fail
before anything imports it. The models (linear, DNN, wide-and-deep over
embedding, indicator, numeric, bucketized and crossed columns) are fed
``featurepipe.data``-style numpy batches through ``loader_dataset``; the losses
must go down, and one set of weights must predict the same on every backend.
``featurepipe train --backend jax`` runs end to end on tiny TFRecords in such a
process, and its ``model.keras`` exports for serving on the TensorFlow backend.
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


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Runs the three backends' workers at once (JAX and PyTorch without TensorFlow)."""
    workdir = tmp_path_factory.mktemp("backends")
    procs = {}
    for backend in ("jax", "torch", "tensorflow"):
        env = dict(os.environ, PYTHONPATH=str(ROOT), KERAS_BACKEND=backend)
        cmd = [sys.executable, str(WORKER), backend, str(workdir)]
        if backend != "tensorflow":
            cmd.append("--no-tensorflow")
        procs[backend] = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    out: dict[str, dict[str, Any]] = {}
    for backend, proc in procs.items():
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, (backend, stderr[-4000:])
        out[backend] = json.loads((workdir / f"{backend}.json").read_text())
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
    assert "needs the TensorFlow backend" in reports[backend]["preprocess_error"]


@pytest.mark.parametrize("kind", MODELS)
def test_same_weights_same_predictions_on_every_backend(
    reports: dict[str, dict[str, Any]], kind: str
) -> None:
    workdir = Path(reports["_dir"]["path"])
    preds = {b: np.load(workdir / f"pred-{kind}-{b}.npy") for b in ("jax", "torch", "tensorflow")}
    assert preds["jax"].shape == (64, 1)
    assert float(np.std(preds["jax"])) > 1e-2  # the weights are not all zeros
    for backend in ("torch", "tensorflow"):
        np.testing.assert_allclose(preds[backend], preds["jax"], atol=1e-5, rtol=0)


CLI_CODE = """
import sys
sys.modules["tensorflow"] = None  # `import tensorflow` fails in this process
from featurepipe.cli.main import main
rc = main(sys.argv[1:])
import keras
assert keras.backend.backend() == sys.argv[sys.argv.index("--backend") + 1]
assert sys.modules.get("tensorflow") is None
sys.exit(rc)
"""


@pytest.fixture(scope="module")
def tiny_tfrecords(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(WORKER.parent))
    try:
        from backend_worker import make_records, make_specs
    finally:
        sys.path.remove(str(WORKER.parent))
    from featurepipe.tfrecord import write_records

    d = tmp_path_factory.mktemp("tiny")
    write_records(d / "train-0.tfrecord", make_records(200, 1))
    write_records(d / "train-1.tfrecord", make_records(120, 3), "gzip")
    write_records(d / "eval.tfrecord", make_records(64, 2))
    make_specs().save(d / "specs.json")
    return d


def test_cli_train_backend_jax_without_tensorflow_then_export_on_tf(
    tiny_tfrecords: Path, tmp_path: Path
) -> None:
    d, out = tiny_tfrecords, tmp_path / "model"
    argv = ["train", "--backend", "jax", "--data", str(d / "train-*"), "--spec",
            str(d / "specs.json"), "--label", "label", "--output", str(out), "--eval-data",
            str(d / "eval.tfrecord"), "--epochs", "3", "--batch-size", "32",
            "--hidden-units", "8", "--quiet"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", PYTHONWARNINGS="default")
    proc = subprocess.run(
        [sys.executable, "-c", CLI_CODE, *argv], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr and "UserWarning" not in proc.stderr, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["keras_backend"] == "jax" and "CPU" in metrics["devices"]
    assert metrics["train_examples"] == 3 * 10 * 32  # 320 records -> 10 batches
    loss = metrics["history"]["loss"]
    assert loss[-1] < loss[0], loss
    assert metrics["eval"]["auc"] > 0.7, metrics["eval"]
    assert not (out / "export").exists()
    # The JAX-trained model.keras exports for serving where TensorFlow is (this process).
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the export check needs this process on the TensorFlow backend")
    import featurepipe.keras
    from featurepipe.columns import ColumnSpecs
    from featurepipe.data import Loader

    model = keras.models.load_model(out / "model.keras")
    columns = ColumnSpecs.load(out / "columns.json")
    export = featurepipe.keras.export_serving(model, tmp_path / "export", columns)
    serve = tf.saved_model.load(export).signatures["serving_default"]
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(d / "eval.tfrecord"))]
    got = serve(examples=tf.constant(records))["logistic"].numpy()
    features, _, _ = next(iter(Loader(d / "eval.tfrecord", columns, batch_size=64,
                                      label_key="label")))  # fmt: skip
    np.testing.assert_allclose(got, model.predict_on_batch(features), atol=1e-5)


def test_cli_backend_conflicts_with_an_imported_keras(
    tiny_tfrecords: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keras = pytest.importorskip("keras")  # imported here: the backend is fixed now
    other = "jax" if keras.backend.backend() != "jax" else "torch"
    from featurepipe.cli.main import main

    argv = ["train", "--backend", other, "--data", str(tiny_tfrecords / "train-*"), "--spec",
            str(tiny_tfrecords / "specs.json"), "--label", "label", "--output",
            str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"KERAS_BACKEND={other}" in err and "fresh process" in err
