"""Tests for ``featurepipe train`` (featurepipe.cli.train) and featurepipe.keras._training.train."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from featurepipe.cli.main import main
from featurepipe.columns._specs import (
    ColumnSpecs,
    CrossedColumn,
    EmbeddingColumn,
    HashedColumn,
    IndicatorColumn,
    Normalizer,
    NumericColumn,
    VocabularyColumn,
)
from featurepipe.example._codec import encode_example
from featurepipe.tfrecord import write_records

CITIES = ["paris", "rome", "oslo", "lima"]


def _examples(n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        c = int(rng.integers(0, 4))
        x = float(rng.normal(5.0, 2.0))
        feats: dict[str, Any] = {
            "x": x,
            "city": CITIES[c],
            "dev": f"d{int(rng.integers(0, 30))}",
            "label": int((x - 5.0) + (1.5 if c < 2 else -1.5) > 0),
            "y": x * 2.0 + c,
        }
        out.append(encode_example(feats))
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("train")
    write_records(d / "train-0.tfrecord", _examples(300, 1))
    write_records(d / "train-1.tfrecord", _examples(300, 2), "gzip")
    write_records(d / "eval.tfrecord", _examples(200, 3))
    city = VocabularyColumn("city", top_k=10, num_oov_buckets=1)  # from the artifacts
    specs = ColumnSpecs(
        (
            NumericColumn("x", default_value=0.0, normalizer=Normalizer("z_score")),
            city,
            HashedColumn("dev", 50),
            CrossedColumn(("city", "dev"), 100),
            EmbeddingColumn(city, 4),
        )
    )
    specs.save(d / "specs.json")
    assert (
        main(
            ["analyze", str(d / "train-*"), "--spec", str(d / "specs.json"),
             "--output", str(d / "artifacts"), "--local"]
        )
        == 0
    )  # fmt: skip
    return d


def test_train_wide_and_deep_writes_model_metrics_and_export(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    out = tmp_path / "model"
    argv = [
        "train", "--data", str(workdir / "train-*"), "--spec", str(workdir / "specs.json"),
        "--artifacts", str(workdir / "artifacts"), "--model", "wide_and_deep",
        "--label", "label", "--output", str(out), "--eval-data", str(workdir / "eval.tfrecord"),
        "--epochs", "3", "--batch-size", "32", "--hidden-units", "8", "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == json.loads((out / "metrics.json").read_text())
    assert doc["model"] == "wide_and_deep"
    assert doc["train_examples"] == 3 * 19 * 32  # 600 rows -> 19 batches of 32 per epoch
    assert doc["examples_per_second"] > 0
    assert "CPU" in doc["devices"]
    loss = doc["history"]["loss"]
    assert loss[-1] < loss[0], loss
    assert doc["eval"]["auc"] > 0.8, doc["eval"]
    assert set(doc["eval"]) >= {"loss", "auc", "accuracy", "log_loss"}
    # the export serves what the saved .keras model predicts
    import featurepipe.keras._models  # noqa: F401  (registers the layers)
    from featurepipe.columns._specs import ColumnSpecs as Specs
    from featurepipe.keras import make_dataset

    model = keras.models.load_model(out / "model.keras")
    columns = Specs.load(out / "columns.json")
    inputs, _ = next(
        iter(make_dataset(str(workdir / "eval.tfrecord"), batch_size=200, columns=columns,
                          label_key="label", label_feature=tf.io.FixedLenFeature((), tf.int64),
                          shuffle=False))
    )  # fmt: skip
    want = model.predict_on_batch(inputs)
    (export,) = list((out / "export").iterdir())
    serve = tf.saved_model.load(str(export)).signatures["serving_default"]
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(workdir / "eval.tfrecord"))]
    got = serve(examples=tf.constant(records))["logistic"].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_train_python_api_linear_regression(workdir: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    from featurepipe.keras._training import train

    result = train(
        str(workdir / "train-0.tfrecord"),
        workdir / "specs.json",
        artifacts=workdir / "artifacts",
        label_key="y",
        task="regression",
        model="linear",
        output_dir=tmp_path / "lin",
        epochs=1,
        batch_size=64,
        steps_per_epoch=5,
        verbose=0,
    )
    assert result.metrics["train_examples"] == 5 * 64
    assert set(result.metrics["train"]) >= {"loss", "rmse", "mae"}
    assert result.metrics["eval"] is None
    assert os.path.exists(os.path.join(result.export_dir, "saved_model.pb"))


def test_train_wide_and_deep_with_explicit_dnn_columns(workdir: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    from featurepipe.errors import ConfigError
    from featurepipe.keras._training import train

    city = VocabularyColumn("city", top_k=10, num_oov_buckets=1)
    linear = ColumnSpecs((city, CrossedColumn(("city", "dev"), 100)))
    # split_columns would send the indicator column to the linear part: dnn_columns keeps it
    # in the DNN, as given.
    dnn = ColumnSpecs(
        (
            NumericColumn("x", default_value=0.0, normalizer=Normalizer("z_score")),
            IndicatorColumn(HashedColumn("dev", 50)),
            EmbeddingColumn(city, 4),
        )
    )
    result = train(
        str(workdir / "train-*"),
        linear,
        dnn_columns=dnn,
        artifacts=workdir / "artifacts",
        label_key="label",
        output_dir=tmp_path / "wd",
        eval_data=str(workdir / "eval.tfrecord"),
        epochs=3,
        batch_size=32,
        hidden_units=(8,),
        verbose=0,
    )
    layer = result.model.get_layer("linear")
    assert set(layer.categorical) | set(layer.numeric) == set(linear.names)
    assert sorted(result.model.input) == sorted((*linear.names, *dnn.names))
    assert sorted(result.columns.names) == sorted((*linear.names, *dnn.names))
    assert sorted(ColumnSpecs.load(tmp_path / "wd" / "columns.json").names) == sorted(
        result.columns.names
    )
    assert result.metrics["eval"]["auc"] > 0.8, result.metrics["eval"]
    with pytest.raises(ConfigError, match="`dnn_columns` is the DNN part"):
        train(
            str(workdir / "train-0.tfrecord"),
            linear,
            dnn_columns=dnn,
            model="linear",
            artifacts=workdir / "artifacts",
            label_key="label",
            output_dir=tmp_path / "lin",
        )


def test_train_usage_errors_exit_2(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tensorflow")
    base = ["train", "--data", str(workdir / "train-*"), "--spec", str(workdir / "specs.json"),
            "--output", str(tmp_path / "o")]  # fmt: skip
    assert main([*base, "--label", "label"]) == 2  # specs need artifacts
    assert "pass its output directory as `artifacts` (--artifacts)" in capsys.readouterr().err
    with_art = [*base, "--artifacts", str(workdir / "artifacts")]
    assert main([*with_art, "--label", "clicked"]) == 2
    assert "No label 'clicked'" in capsys.readouterr().err
    assert main([*with_art, "--label", "label", "--hidden-units", "8,x"]) == 2
    assert "Received: --hidden-units='8,x'" in capsys.readouterr().err
    assert main([*with_art, "--label", "x"]) == 2
    assert "is also a feature the columns read" in capsys.readouterr().err


def test_train_corrupt_data_exits_1(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tensorflow")
    good = (workdir / "eval.tfrecord").read_bytes()
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(good[: len(good) // 2] + b"\xff" * 64 + good[len(good) // 2 :])
    argv = ["train", "--data", str(bad), "--spec", str(workdir / "specs.json"), "--artifacts",
            str(workdir / "artifacts"), "--label", "label", "--output", str(tmp_path / "o"),
            "--model", "linear", "--quiet"]  # fmt: skip
    assert main(argv) == 1
    assert "training stopped on a data error" in capsys.readouterr().err


def test_train_help_lists_options_without_tensorflow() -> None:
    code = (
        "import sys\n"
        "from featurepipe.cli.main import build_parser\n"
        "build_parser().parse_args(['train', '--help'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0
    for flag in ("--data", "--spec", "--artifacts", "--model", "--eval-data", "--mixed-precision"):
        assert flag in proc.stdout
    code = (
        "import sys, featurepipe.cli.train\n"
        "from featurepipe.cli.main import build_parser\n"
        "build_parser()\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# Keras' own warnings a normal run must not print (issue 12): `fit(shuffle=True)` on a
# tf.data input, and "ran out of data" at the end of the first epoch of unknown length.
KERAS_NOISE = (
    "shuffle=True was passed",
    "ran out of data",
    "UserWarning",
    "Traceback",
    "OUT_OF_RANGE",  # TF's C++ log at the end of an epoch of unknown length
)


def test_train_normal_run_prints_no_keras_warnings(workdir: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    argv = ["train", "--data", str(workdir / "train-*"), "--spec", str(workdir / "specs.json"),
            "--artifacts", str(workdir / "artifacts"), "--label", "label",
            "--eval-data", str(workdir / "eval.tfrecord"), "--epochs", "2",
            "--output", str(tmp_path / "o")]  # fmt: skip
    # Every warning Python would show, and TF's C++ log level as a user has it (unset).
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONWARNINGS"] = "default"
    proc = subprocess.run(
        [sys.executable, "-m", "featurepipe.cli.main", *argv],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for noise in KERAS_NOISE:
        assert noise not in proc.stderr, proc.stderr
    assert "eval: " in proc.stderr and "wrote " in proc.stderr
