"""migrate_estimator on the real Estimator fixtures (tests/testdata/estimators, TF 2.15).

For every case the migrated Keras model, fed by featurepipe's ``ColumnTransform``
on ``data/eval.tfrecord``, must give the Estimator SavedModel's outputs
(``outputs.npz``) within 1e-5; every checkpoint variable must be accounted for;
the loss at the migrated weights must be the Estimator's on the warm-start
batch; and, where the Estimator's step is deterministic (no dropout, no batch
norm), one ``train_on_batch`` must land on the Estimator's own next checkpoint
(``warm_start/model.ckpt-81``): weights and optimizer slots. Three cases (one
per head) also go through the files: ``model.keras``, ``columns.json``, the
serving export's signatures (``signatures.json``, ``outputs.npz``) and
``migration.json``; the CLI runs once.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
tf.get_logger().setLevel("ERROR")

from featurepipe.errors import ConfigError  # noqa: E402
from featurepipe.example import decode_example  # noqa: E402
from featurepipe.keras import (  # noqa: E402
    ColumnTransform,
    EstimatorLoss,
    estimator_predictions,
)
from featurepipe.keras._export import serving_parse_spec  # noqa: E402
from featurepipe.migrate import (  # noqa: E402
    EstimatorMigration,
    estimator_arguments,
    migrate_estimator,
)
from featurepipe.tfrecord import read_records  # noqa: E402
from tests.testdata.estimators import estimator_fixtures, feature_columns_module  # noqa: E402

pytestmark = pytest.mark.tf
FIXTURES = estimator_fixtures()  # fixtures.tar.xz, unpacked once into a cache folder
CASES = [
    "linear_binary",
    "linear_regressor",
    "dnn_multiclass",
    "dnn_regressor",
    "dnn_linear_binary",
    "dnn_linear_regressor",
    "v1_linear_binary",
    "v1_dnn_linear_multiclass",
]
# the Estimator's train step is random (dropout) or uses batch statistics (batch norm)
STOCHASTIC = {"dnn_multiclass", "dnn_linear_binary", "dnn_regressor"}
# one per head in the default run (a SavedModel export takes seconds); the rest are slow
EXPORTED = ["linear_binary", "dnn_regressor", "v1_dnn_linear_multiclass"]


def test_every_case_is_here() -> None:
    assert sorted(CASES) == sorted(p.parent.name for p in FIXTURES.glob("*/case.json"))


def _case(name: str) -> dict[str, Any]:
    rec: dict[str, Any] = json.loads((FIXTURES / name / "case.json").read_text())
    return rec


def _columns(name: str) -> Any:
    cols = getattr(feature_columns_module(), name)()
    if isinstance(cols, dict):
        cols = {k.replace("_feature_columns", ""): v for k, v in cols.items()}
    return cols


def _estimator(case: dict[str, Any]) -> str:
    return ("tf.compat.v1.estimator." if case["tf1"] else "tf.estimator.") + case["estimator"]


def _migrate(name: str, model_dir: str = "model_dir", **kwargs: Any) -> EstimatorMigration:
    case = _case(name)
    return migrate_estimator(
        FIXTURES / name / model_dir,
        columns=_columns(name),
        estimator=_estimator(case),
        **estimator_arguments(case["args"]),
        **kwargs,
    )


@functools.cache
def _migrated(name: str) -> EstimatorMigration:
    """One migration per case, shared by the read-only tests."""
    return _migrate(name)


@functools.cache
def _eval_records() -> tuple[bytes, ...]:
    return tuple(bytes(r) for r in read_records(str(FIXTURES / "data" / "eval.tfrecord")))


def _inputs(m: EstimatorMigration, records: Any) -> dict[str, Any]:
    """The model inputs of serialized Examples, as the serving export computes them."""
    spec = serving_parse_spec(m.columns.columns)
    dense = {k for k, v in spec.items() if isinstance(v, tf.io.FixedLenFeature)}
    out = ColumnTransform(m.columns.columns, dense_keys=dense)(
        tf.io.parse_example(tf.constant(list(records)), spec)
    )
    return {t.name: out[t.name] for t in m.model.inputs}


def _max_differences(got: dict[str, Any], ref: Any, prefix: str) -> dict[str, float]:
    out = {}
    for key, value in got.items():
        want = ref[f"{prefix}/{key}"]
        value = np.asarray(value)
        assert value.shape == want.shape, key
        out[key] = float(np.max(np.abs(value.astype(np.float64) - want.astype(np.float64))))
    return out


@pytest.mark.parametrize("name", CASES)
def test_outputs_equal_the_estimators(name: str) -> None:
    m = _migrated(name)
    records = _eval_records()
    assert len(records) == 500
    logits = m.model(_inputs(m, records), training=False)
    got = {
        k: keras.ops.convert_to_numpy(v) for k, v in estimator_predictions(logits, m.head).items()
    }
    ref = np.load(FIXTURES / name / "outputs.npz")
    diffs = _max_differences(got, ref, "predict")
    print(f"\n{name}: max |migrated - Estimator| per key: {diffs}")
    assert set(got) == {k.split("/", 1)[1] for k in ref if k.startswith("predict/")} - {
        "classes",
        "all_classes",
    }
    assert max(diffs.values()) <= 1e-5, diffs
    for key in ("class_ids", "all_class_ids"):
        if key in got:
            np.testing.assert_array_equal(got[key], ref[f"predict/{key}"])


@pytest.mark.parametrize("name", CASES)
def test_every_checkpoint_variable_is_accounted_for(name: str) -> None:
    m = _migrated(name)
    listed = [
        line.split("\t")[0]
        for line in (FIXTURES / name / "variables.txt").read_text().splitlines()
        if line
    ]
    names = [r["name"] for r in m.records]
    assert sorted(names) == sorted(listed)  # each exactly once
    for rec in m.records:
        assert rec["status"] in ("loaded", "slot", "hyperparameter", "dropped"), rec
        assert rec.get("target") if rec["status"] != "dropped" else rec.get("reason"), rec
    status = {r["name"]: r["status"] for r in m.records}
    for n in listed:
        if n.startswith(("linear/linear_model/", "dnn/")) and not n.endswith(
            ("/Ftrl", "/Ftrl_1", "/Adagrad")
        ):
            assert status[n] == "loaded", n
    # nothing is left behind but the linear optimizer's own step counter of a combined
    # model (SparseOptimizer keeps one, the global step)
    dropped = [r["name"] for r in m.records if r["status"] == "dropped"]
    assert dropped == (["training/Ftrl/iter"] if name.startswith("dnn_linear") else [])
    # the optimizer state of every trained variable is carried over (Ftrl, Adagrad, Adam)
    assert m.summary()["slot"] == sum(len(v.slots) for v in m.weights.variables.values())


@pytest.mark.parametrize("name", CASES)
def test_warm_start(name: str) -> None:
    # The loss on the warm-start batch at the migrated weights is the Estimator's; one
    # train_on_batch moves weights and slots exactly as the Estimator's next step did.
    case = _case(name)
    warm = case["warm_start"]
    m = _migrate(name)
    records = list(read_records(str(FIXTURES / warm["file"])))
    batch = [bytes(records[i]) for i in warm["rows"]]
    x, y, sw = _labelled(m, case, batch)
    head = m.head
    loss = EstimatorLoss(head.task, head.loss_reduction)
    before = float(loss(y, m.model(x, training=False), sw))
    want = warm["eval_at_saved_weights"]["loss"]
    if name not in STOCHASTIC:
        assert want == pytest.approx(warm["train_loss_at_saved_weights"], rel=1e-6)
    assert before == pytest.approx(want, rel=1e-4, abs=1e-6)
    m.model.train_on_batch(x, y, sample_weight=sw)
    after = float(loss(y, m.model(x, training=False), sw))
    if name in STOCHASTIC:
        return  # a step with random dropout masks / batch statistics: no exact target
    assert after < before
    assert after == pytest.approx(warm["train_loss_after_one_step"], rel=1e-4, abs=1e-6)
    # every variable and slot == the Estimator's checkpoint after that step
    nxt = _migrate(name, "warm_start")
    assert nxt.weights.global_step == case["global_step"] + 1
    assert int(m.model.optimizer.iterations.numpy()) == nxt.weights.global_step
    for a, b in zip(m.model.weights, nxt.model.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6, err_msg=a.path)
    for a, b in zip(m.model.optimizer.variables, nxt.model.optimizer.variables, strict=True):
        if a.path.endswith("learning_rate"):
            continue
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6, err_msg=a.path)


def _labelled(m: EstimatorMigration, case: dict[str, Any], records: list[bytes]) -> Any:
    decoded = [decode_example(r) for r in records]
    raw = [d[case["label_key"]].values[0] for d in decoded]
    head = m.head
    if head.label_vocabulary:
        y = np.array([head.label_vocabulary.index(v.decode()) for v in raw])
    else:
        y = np.array(raw, np.float32)
    sw = (
        np.array([d[head.weight_column].values[0] for d in decoded], np.float32)
        if head.weight_column
        else None
    )
    return _inputs(m, records), y.reshape(-1, 1), sw


@pytest.mark.parametrize("name", ["dnn_linear_regressor", "v1_dnn_linear_multiclass"])
def test_one_epoch_from_the_migrated_model_lowers_the_training_loss(name: str) -> None:
    case = _case(name)
    m = _migrate(name)
    records = [bytes(r) for r in read_records(str(FIXTURES / "data" / "train.tfrecord"))]
    x, y, sw = _labelled(m, case, records)
    before = m.model.evaluate(x, y, sample_weight=sw, batch_size=600, verbose=0, return_dict=True)
    m.model.fit(x, y, sample_weight=sw, batch_size=32, epochs=1, shuffle=False, verbose=0)
    after = m.model.evaluate(x, y, sample_weight=sw, batch_size=600, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"]
    assert int(m.model.optimizer.iterations.numpy()) == case["global_step"] + 19  # 600 / 32


def _signature_info(export: str) -> dict[str, Any]:
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(export) / "saved_model.pb").read_bytes())
    out: dict[str, Any] = {}
    for key, sig in proto.meta_graphs[0].signature_def.items():
        if key.startswith("__"):
            continue
        out[key] = {"method_name": sig.method_name}
        for side in ("inputs", "outputs"):
            out[key][side] = {
                k: {
                    "dtype": tf.dtypes.as_dtype(v.dtype).name,
                    "shape": [int(d.size) for d in v.tensor_shape.dim],
                }
                for k, v in getattr(sig, side).items()
            }
    return out


@pytest.mark.parametrize(
    "name",
    [n if n in EXPORTED else pytest.param(n, marks=pytest.mark.slow) for n in CASES],
)
def test_output_files_and_serving_export(name: str, tmp_path: Path) -> None:
    out = tmp_path / "migrated"
    m = _migrate(name, output=out)
    assert m.export_dir is not None
    assert sorted(p.name for p in out.iterdir()) == [
        "columns.json",
        "export",
        "migration.json",
        "model.keras",
    ]
    doc = json.loads((out / "migration.json").read_text())
    assert doc["estimator"] == _case(name)["estimator"]
    assert doc["global_step"] == 80
    assert sorted(r["name"] for r in doc["variables"]) == sorted(r["name"] for r in m.records)
    assert doc["export"] == os.path.relpath(m.export_dir, out)

    # the Estimator's signatures: names, method names, keys, dtypes, shapes
    want = json.loads((FIXTURES / name / "signatures.json").read_text())
    for sig in want.values():
        for side in ("inputs", "outputs"):
            sig[side] = {
                k: {"dtype": t["dtype"], "shape": t["shape"]} for k, t in sig[side].items()
            }
    assert _signature_info(m.export_dir) == want
    # ... and their outputs on the eval records
    ref = np.load(FIXTURES / name / "outputs.npz")
    loaded = tf.saved_model.load(m.export_dir)
    batch = tf.constant(list(_eval_records()))
    for sig_name, sig in want.items():
        (key,) = sig["inputs"]
        got = {k: v.numpy() for k, v in loaded.signatures[sig_name](**{key: batch}).items()}
        for out_key, value in got.items():
            expect = ref[f"{sig_name}/{out_key}"]
            if value.dtype == object:
                np.testing.assert_array_equal(value.astype(expect.dtype), expect, out_key)
            else:
                assert value.dtype == expect.dtype, out_key
                np.testing.assert_allclose(value, expect, rtol=0, atol=1e-5, err_msg=out_key)

    # model.keras reloads with its weights (and columns.json with its parts)
    from featurepipe.migrate import MigratedColumns

    again = keras.models.load_model(out / "model.keras")
    x = _inputs(m, _eval_records()[:50])
    np.testing.assert_allclose(again(x), m.model(x), rtol=0, atol=1e-6)
    # ... and with the optimizer state, so training goes on where the Estimator stopped
    assert int(again.optimizer.iterations.numpy()) == 80
    for a, b in zip(again.optimizer.variables, m.model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert MigratedColumns.load(out / "columns.json") == m.columns


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from featurepipe.cli.main import main

    name = "dnn_linear_regressor"
    case = _case(name)
    out = tmp_path / "cli"
    rc = main(
        [
            "migrate",
            "estimator",
            str(FIXTURES / name / "model_dir"),
            "--columns",
            f"{FIXTURES / 'feature_columns_def.py'}:{name}",
            "--estimator",
            "dnn_linear_combined_regressor",
            "--case-args",
            json.dumps(case["args"]),
            "--no-export",
            "--output",
            str(out),
            "--json",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["estimator"] == "DNNLinearCombinedRegressor"
    assert summary["head"]["weight_column"] == "weight"
    assert summary["variables"]["loaded"] == 11
    assert summary["export"] is None
    assert sorted(p.name for p in out.iterdir()) == [
        "columns.json",
        "migration.json",
        "model.keras",
    ]


def test_columns_that_do_not_fit_the_checkpoint() -> None:
    cols = _columns("linear_binary")[:-1]  # the cross is missing
    with pytest.raises(ConfigError, match="age_bucketized_X_color"):
        migrate_estimator(
            FIXTURES / "linear_binary" / "model_dir", columns=cols, estimator="LinearClassifier"
        )
    with pytest.raises(ConfigError, match="n_classes=3 disagrees"):
        migrate_estimator(
            FIXTURES / "linear_binary" / "model_dir",
            columns=_columns("linear_binary"),
            estimator="LinearClassifier",
            n_classes=3,
        )
    with pytest.raises(ConfigError, match=r"hidden_units=\[8\] disagree"):
        migrate_estimator(
            FIXTURES / "dnn_multiclass" / "model_dir",
            columns=_columns("dnn_multiclass"),
            estimator="DNNClassifier",
            hidden_units=[8],
        )
    with pytest.raises(ConfigError, match="Unknown Estimator"):
        migrate_estimator(
            FIXTURES / "dnn_multiclass" / "model_dir", columns=[], estimator="BoostedTrees"
        )
    emb = tf.feature_column.embedding_column(
        tf.feature_column.categorical_column_with_hash_bucket("user", 20), 2
    )
    with pytest.raises(ConfigError, match="'user_embedding' is an embedding column in the linear"):
        migrate_estimator(
            FIXTURES / "linear_binary" / "model_dir",
            columns=[*_columns("linear_binary"), emb],
            estimator="LinearClassifier",
        )
    with pytest.raises(ConfigError, match="Unknown Estimator argument 'dnn_units'"):
        estimator_arguments({"dnn_units": [3]})
