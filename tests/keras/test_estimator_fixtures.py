"""Estimator heads against real Estimators (tests/testdata/estimators, TF 2.15 fixtures):
the SignatureDefs of ``export_serving(signatures="estimator")``, the prediction keys and
the loss of every case."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from featurepipe.columns import ColumnSpecs, EmbeddingColumn, HashedColumn, NumericColumn  # noqa: E402
from featurepipe.example import decode_example  # noqa: E402
from featurepipe.keras import (  # noqa: E402
    EstimatorHead,
    EstimatorLoss,
    class_names_of,
    dnn_model,
    estimator_predictions,
    export_serving,
)
from featurepipe.tfrecord import read_records  # noqa: E402
from tests.testdata.estimators import estimator_fixtures  # noqa: E402

pytestmark = pytest.mark.tf
FIXTURES = estimator_fixtures()  # fixtures.tar.xz, unpacked once into a cache folder
CASES = sorted(p.parent.name for p in FIXTURES.glob("*/case.json"))


def test_fixtures_are_there() -> None:
    assert len(CASES) >= 8, CASES  # a missing fixture must fail, not skip


def _case(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name / "case.json").read_text())


def _head(case: dict[str, Any]) -> EstimatorHead:
    """The head of an Estimator as its constructor arguments (case.json) describe it."""
    args = case["args"]
    common = {
        "weight_column": args.get("weight_column"),
        "loss_reduction": args["loss_reduction"],  # TF1's 'weighted_sum' too
    }
    if case["estimator"].endswith("Regressor"):
        return EstimatorHead(
            "regression", label_dimension=args.get("label_dimension") or 1, **common
        )
    vocab = args.get("label_vocabulary")
    return EstimatorHead.classifier(
        args.get("n_classes") or 2, label_vocabulary=tuple(vocab) if vocab else None, **common
    )


def _signature_info(export: str) -> dict[str, Any]:
    """``signatures.json``'s form (without tensor names) of a SavedModel's SignatureDefs."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(export) / "saved_model.pb").read_bytes())
    out: dict[str, Any] = {}

    def tensors(m: Any) -> dict[str, Any]:
        return {
            k: {
                "dtype": tf.dtypes.as_dtype(v.dtype).name,
                "shape": [int(d.size) for d in v.tensor_shape.dim],
            }
            for k, v in m.items()
        }

    for key, sig in proto.meta_graphs[0].signature_def.items():
        if not key.startswith("__"):
            out[key] = {
                "method_name": sig.method_name,
                "inputs": tensors(sig.inputs),
                "outputs": tensors(sig.outputs),
            }
    return out


def _without_names(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        sig: {
            "method_name": v["method_name"],
            "inputs": {
                k: {"dtype": t["dtype"], "shape": t["shape"]} for k, t in v["inputs"].items()
            },
            "outputs": {
                k: {"dtype": t["dtype"], "shape": t["shape"]} for k, t in v["outputs"].items()
            },
        }
        for sig, v in doc.items()
    }


@pytest.mark.parametrize("name", CASES)
def test_export_has_the_estimators_signatures(name: str, tmp_path: Path) -> None:
    case = _case(name)
    head = _head(case)
    # Any network will do: the signatures depend on the head only (random weights).
    specs = ColumnSpecs((NumericColumn("age"), EmbeddingColumn(HashedColumn("user", 16), 3)))
    model = dnn_model(specs, (2,), head=head, compile=False)
    export = export_serving(model, tmp_path / "export", specs, signatures="estimator")
    want = _without_names(json.loads((FIXTURES / name / "signatures.json").read_text()))
    assert _signature_info(export) == want


@pytest.mark.parametrize("name", CASES)
def test_prediction_keys_equal_the_estimators(name: str) -> None:
    # The Estimator's own logits -> estimator_predictions + class names == its outputs.
    case = _case(name)
    head = _head(case)
    ref = np.load(FIXTURES / name / "outputs.npz")
    logits = ref["predict/predictions" if head.task == "regression" else "predict/logits"]
    got = {k: keras.ops.convert_to_numpy(v) for k, v in estimator_predictions(logits, head).items()}
    for key, value in got.items():
        want = ref[f"predict/{key}"]
        assert value.dtype == want.dtype, key
        np.testing.assert_allclose(value, want, rtol=1e-6, atol=1e-7, err_msg=key)
    if head.task != "regression":
        names = np.array([n.encode() for n in class_names_of(head)])
        np.testing.assert_array_equal(names[got["class_ids"]], ref["predict/classes"])
        np.testing.assert_array_equal(
            np.tile(names, (len(logits), 1)), ref["classification/classes"]
        )
        np.testing.assert_allclose(ref["classification/scores"], got["probabilities"], rtol=1e-6)


@pytest.mark.parametrize("name", CASES)
def test_loss_equals_the_estimators_eval_loss(name: str) -> None:
    # The Estimator's logits on the warm-start batch (its SavedModel, inference mode) and the
    # batch's labels and weights -> EstimatorLoss == Estimator.evaluate's `loss` (its
    # loss_reduction) and `average_loss` (weighted mean) on that batch.
    case = _case(name)
    head = _head(case)
    warm = case["warm_start"]
    records = list(read_records(str(FIXTURES / warm["file"])))
    batch = [records[i] for i in warm["rows"]]
    loaded = tf.saved_model.load(str(FIXTURES / name / case["export_dir"]))
    out = loaded.signatures["predict"](examples=tf.constant(batch))
    logits = out["predictions" if head.task == "regression" else "logits"].numpy()
    decoded = [decode_example(r) for r in batch]
    raw = [d[case["label_key"]].values[0] for d in decoded]
    if head.label_vocabulary is not None:
        labels = np.array([head.label_vocabulary.index(v.decode()) for v in raw])
    else:
        labels = np.array(raw)
    weights = (
        np.array([d[head.weight_column].values[0] for d in decoded], np.float32)
        if head.weight_column
        else None
    )
    evaluation = warm["eval_at_saved_weights"]
    loss = float(EstimatorLoss(head.task, head.loss_reduction)(labels, logits, weights))
    assert loss == pytest.approx(evaluation["loss"], rel=1e-5, abs=1e-5)
    average = float(EstimatorLoss(head.task, "mean")(labels, logits, weights))
    assert average == pytest.approx(evaluation["average_loss"], rel=1e-5, abs=1e-5)
