"""Estimator head semantics: loss and reductions, label vocabulary, prediction keys,
``featurepipe train`` with string labels and weights, the Estimator's serving signatures."""

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

from featurepipe.cli.main import main  # noqa: E402
from featurepipe.columns import (  # noqa: E402
    ColumnSpecs,
    EmbeddingColumn,
    HashedColumn,
    NumericColumn,
)
from featurepipe.errors import ConfigError, DataError  # noqa: E402
from featurepipe.example import encode_example  # noqa: E402
from featurepipe.keras import (  # noqa: E402
    EstimatorHead,
    EstimatorLoss,
    dnn_model,
    estimator_predictions,
    export_serving,
    head_of,
    linear_model,
    make_dataset,
    train,
)
from featurepipe.tfrecord import write_records  # noqa: E402

pytestmark = pytest.mark.tf
ANIMALS = ("cat", "dog", "emu")
REDUCTIONS = ("sum_over_batch_size", "sum", "sum_by_nonzero_weights", "mean")


# -- loss ----------------------------------------------------------------------------------------


def _np_unweighted(task: str, labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    if task == "binary":
        p = 1.0 / (1.0 + np.exp(-x))
        z = labels.reshape(-1, 1).astype(np.float64)
        return -(z * np.log(p) + (1 - z) * np.log(1 - p))
    if task == "multiclass":
        logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(x)), labels.ravel()].reshape(-1, 1)
    return (labels.reshape(x.shape) - x) ** 2


def _np_reduce(losses: np.ndarray, weights: np.ndarray | None, reduction: str) -> float:
    w = np.ones_like(losses) if weights is None else weights.reshape(-1, 1) * np.ones_like(losses)
    total = float((losses * w).sum())
    if reduction == "sum":
        return total
    denom = {
        "sum_over_batch_size": losses.size,
        "sum_by_nonzero_weights": float((w != 0).sum()),
        "mean": float(w.sum()),
    }[reduction]
    return total / denom


def _case(task: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    if task == "binary":
        return np.array([0, 1, 1, 0, 1]), rng.normal(0, 3, (5, 1)).astype(np.float32)
    if task == "multiclass":
        return np.array([0, 2, 1, 2, 0]), rng.normal(0, 2, (5, 3)).astype(np.float32)
    return rng.normal(0, 2, (5, 2)).astype(np.float32), rng.normal(0, 2, (5, 2)).astype(np.float32)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_loss_equals_hand_computed(task: str, reduction: str, weighted: bool) -> None:
    labels, logits = _case(task)
    weights = np.array([1.0, 0.0, 2.5, 0.5, 1.0], np.float32) if weighted else None
    got = float(EstimatorLoss(task, reduction)(labels, logits, weights))
    want = _np_reduce(_np_unweighted(task, labels, logits), weights, reduction)
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(
    ("reduction", "v1"),
    [
        ("sum_over_batch_size", "SUM_OVER_BATCH_SIZE"),
        ("sum", "SUM"),
        ("sum_by_nonzero_weights", "SUM_BY_NONZERO_WEIGHTS"),
        ("mean", "MEAN"),
    ],
)
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_loss_equals_tf1_heads_loss(task: str, reduction: str, v1: str) -> None:
    # What the TF1 heads compute (tensorflow/estimator canned/head.py): the unweighted loss
    # of TF's own ops, reduced by tf.compat.v1.losses.compute_weighted_loss.
    labels, logits = _case(task)
    weights = np.array([[1.0], [0.0], [2.5], [0.5], [1.0]], np.float32)
    if task == "binary":
        unweighted = tf.nn.sigmoid_cross_entropy_with_logits(
            labels=labels.reshape(-1, 1).astype(np.float32), logits=logits
        )
    elif task == "multiclass":
        unweighted = tf.expand_dims(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits), -1
        )
    else:
        unweighted = tf.square(labels - logits)
    want = tf.compat.v1.losses.compute_weighted_loss(
        unweighted, weights=weights, reduction=getattr(tf.compat.v1.losses.Reduction, v1)
    )
    got = EstimatorLoss(task, reduction)(labels, logits, weights)
    np.testing.assert_allclose(float(got), float(want), rtol=1e-5)


def test_fit_passes_weights_to_the_head_loss() -> None:
    # Keras' compile/evaluate hand the example weights to the loss unchanged.
    keras.utils.set_random_seed(0)
    specs = ColumnSpecs((NumericColumn("x", shape=(2,)),))
    head = EstimatorHead("binary", weight_column="w", loss_reduction="sum_by_nonzero_weights")
    model = linear_model(specs, head=head)
    for w in model.weights:
        w.assign(np.full(tuple(w.shape), 0.7, np.float32))
    x = np.array([[1.0, -2.0], [0.5, 0.5], [3.0, 1.0], [-1.0, -1.0]], np.float32)
    y = np.array([[1.0], [0.0], [1.0], [0.0]], np.float32)
    sw = np.array([2.0, 0.0, 1.0, 0.5], np.float32)
    got = model.evaluate({"x": x}, y, sample_weight=sw, batch_size=4, verbose=0, return_dict=True)
    logits = np.asarray(model.predict({"x": x}, verbose=0))
    want = _np_reduce(_np_unweighted("binary", y, logits), sw, "sum_by_nonzero_weights")
    assert got["loss"] == pytest.approx(want, rel=1e-5)
    assert head_of(model) == head


def test_head_validation() -> None:
    assert EstimatorHead.classifier(2).task == "binary"
    assert EstimatorHead("binary", loss_reduction="SUM_BY_NONZERO_WEIGHTS").loss_reduction == (
        "sum_by_nonzero_weights"
    )
    with pytest.raises(ConfigError, match="loss_reduction"):
        EstimatorHead("binary", loss_reduction="none")
    with pytest.raises(ConfigError, match="must name the 3 classes"):
        EstimatorHead("multiclass", n_classes=3, label_vocabulary=("a", "b"))
    with pytest.raises(ConfigError, match="n_classes >= 3"):
        EstimatorHead("multiclass", n_classes=2)
    with pytest.raises(ConfigError, match="disagrees"):
        linear_model(ColumnSpecs((NumericColumn("x"),)), task="regression",
                     head=EstimatorHead("binary"))  # fmt: skip


# -- predictions -----------------------------------------------------------------------------------


def test_prediction_keys_from_known_logits() -> None:
    binary = estimator_predictions(np.array([[-1.0], [0.0], [2.0]]), EstimatorHead("binary"))
    p = {k: keras.ops.convert_to_numpy(v) for k, v in binary.items()}
    sig = 1 / (1 + np.exp(-np.array([[-1.0], [0.0], [2.0]])))
    np.testing.assert_allclose(p["logistic"], sig, rtol=1e-6)
    np.testing.assert_allclose(p["probabilities"], np.hstack([1 - sig, sig]), rtol=1e-6)
    assert p["class_ids"].tolist() == [[0], [0], [1]]  # a logit of 0 is class 0 (argmax)
    assert p["all_class_ids"].tolist() == [[0, 1]] * 3
    multi = estimator_predictions(
        np.array([[1.0, 3.0, 2.0], [0.0, 0.0, 5.0]]), EstimatorHead("multiclass", n_classes=3)
    )
    m = {k: keras.ops.convert_to_numpy(v) for k, v in multi.items()}
    assert sorted(m) == ["all_class_ids", "class_ids", "logits", "probabilities"]
    assert m["class_ids"].tolist() == [[1], [2]]
    e = np.exp([1.0, 3.0, 2.0])
    np.testing.assert_allclose(m["probabilities"][0], e / e.sum(), rtol=1e-6)
    reg = estimator_predictions(np.array([[1.5], [-2.0]]), EstimatorHead("regression"))
    assert list(reg) == ["predictions"]
    with pytest.raises(ConfigError, match="serving export"):
        estimator_predictions(np.zeros((1, 1)), EstimatorHead("binary"), keys=["classes"])


# -- training with string labels and weights ------------------------------------------------------


def _animal_records(n: int, seed: int, bad_at: int | None = None) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(0, 3))
        label = "yak" if i == bad_at else ANIMALS[k]
        feats: dict[str, Any] = {
            "x": float(k + rng.normal(0, 0.3)),
            "c": f"c{k}{int(rng.integers(0, 2))}",
            "animal": label,
            "w": float(1 + i % 3),
        }
        out.append(encode_example(feats))
    return out


def _specs() -> ColumnSpecs:
    c = HashedColumn("c", 16)
    return ColumnSpecs((NumericColumn("x"), c, EmbeddingColumn(c, 3)))


def test_label_vocabulary_maps_strings_and_names_the_unknown_label(tmp_path: Path) -> None:
    write_records(tmp_path / "a.tfrecord", _animal_records(40, 1))
    write_records(tmp_path / "b.tfrecord", _animal_records(30, 2, bad_at=17))
    with pytest.raises(DataError) as err:
        train(str(tmp_path / "*.tfrecord"), _specs(), label_key="animal",
              output_dir=tmp_path / "out", model="linear", label_vocabulary=ANIMALS,
              batch_size=8, verbose=0)  # fmt: skip
    e = err.value
    assert (e.path, e.record, e.reason) == (str(tmp_path / "b.tfrecord"), 17, "unknown_label")
    assert e.offset is not None and e.offset > 0
    assert "'yak'" in str(e) and "label_vocabulary" in str(e)
    # the mapping: the pipeline's labels are the vocabulary ids
    from featurepipe.keras._training import _head_label_fn

    head = EstimatorHead("multiclass", n_classes=3, label_vocabulary=ANIMALS)
    ds = make_dataset(str(tmp_path / "a.tfrecord"), batch_size=40, columns=_specs(),
                      label_key="animal", shuffle=False).map(_head_label_fn(head))  # fmt: skip
    _, ids = next(iter(ds))
    want = [ANIMALS.index(s) for s in _raw_labels(tmp_path / "a.tfrecord")]
    assert ids.numpy().ravel().tolist() == want
    # integer labels with a vocabulary, string labels without one: usage errors
    with pytest.raises(ConfigError, match="label_vocabulary"):
        train(str(tmp_path / "a.tfrecord"), _specs(), label_key="animal",
              output_dir=tmp_path / "o2", n_classes=3, verbose=0)  # fmt: skip


def _raw_labels(path: Path) -> list[str]:
    from featurepipe.example import decode_example
    from featurepipe.tfrecord import read_records

    return [decode_example(r)["animal"].values[0].decode() for r in read_records(str(path))]


def test_train_cli_string_labels_weights_and_estimator_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_records(tmp_path / "train.tfrecord", _animal_records(96, 5))
    _specs().save(tmp_path / "specs.json")
    (tmp_path / "vocab.txt").write_text("\n".join(ANIMALS) + "\n")
    out = tmp_path / "model"
    argv = [
        "train", "--data", str(tmp_path / "train.tfrecord"), "--spec", str(tmp_path / "specs.json"),
        "--model", "dnn", "--label", "animal", "--output", str(out), "--hidden-units", "8",
        "--label-vocabulary", "@" + str(tmp_path / "vocab.txt"), "--weight-column", "w",
        "--loss-reduction", "SUM", "--signatures", "estimator", "--epochs", "3",
        "--batch-size", "16", "--learning-rate", "0.3", "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["head"] == {
        "task": "multiclass", "n_classes": 3, "label_vocabulary": list(ANIMALS),
        "weight_column": "w", "loss_reduction": "sum", "label_dimension": 1,
    }  # fmt: skip
    loss = doc["history"]["loss"]
    assert loss[-1] < loss[0], loss
    (export,) = list((out / "export").iterdir())
    loaded = tf.saved_model.load(str(export))
    assert sorted(loaded.signatures) == ["classification", "predict", "serving_default"]
    records = tf.constant(_animal_records(96, 5)[:6])
    got = loaded.signatures["classification"](inputs=records)
    assert got["classes"].numpy().tolist() == [[a.encode() for a in ANIMALS]] * 6
    pred = loaded.signatures["predict"](examples=records)
    # the model learned the labels: predicted names match the records' names mostly
    names = [c[0].decode() for c in pred["classes"].numpy()]
    truth = _raw_labels(tmp_path / "train.tfrecord")[:6]
    assert sum(a == b for a, b in zip(names, truth, strict=True)) >= 4, (names, truth)
    np.testing.assert_allclose(got["scores"].numpy(), pred["probabilities"].numpy(), rtol=1e-6)
    # the reloaded .keras model still has its head
    model = keras.models.load_model(out / "model.keras")
    assert head_of(model) is not None and head_of(model).label_vocabulary == ANIMALS


# -- the Estimator's serving signatures ------------------------------------------------------------

# From tensorflow/estimator head/{binary_class,multi_class,regression}_head.py
# (create_estimator_spec, PREDICT mode) and TensorFlow's export_output.py /
# signature_def_utils_impl.py: {signature: (method, {input: dtype}, {output: (dtype, shape)})}.
_N = None


def _expected(task: str, n: int) -> dict[str, Any]:
    classify = ("tensorflow/serving/classify", {"inputs": "string"},
                {"classes": ("string", [_N, n]), "scores": ("float32", [_N, n])})  # fmt: skip
    predict_out: dict[str, Any] = {
        "logits": ("float32", [_N, 1 if task == "binary" else n]),
        "probabilities": ("float32", [_N, n]),
        "class_ids": ("int64", [_N, 1]),
        "classes": ("string", [_N, 1]),
        "all_class_ids": ("int32", [_N, n]),
        "all_classes": ("string", [_N, n]),
    }
    if task == "binary":
        predict_out["logistic"] = ("float32", [_N, 1])
    if task == "regression":
        predict_out = {"predictions": ("float32", [_N, 1])}
    predict = ("tensorflow/serving/predict", {"examples": "string"}, predict_out)
    regress = ("tensorflow/serving/regress", {"inputs": "string"},
               {"outputs": ("float32", [_N, 1])})  # fmt: skip
    if task == "binary":
        return {"serving_default": classify, "classification": classify,
                "regression": regress, "predict": predict}  # fmt: skip
    if task == "multiclass":
        return {"serving_default": classify, "classification": classify, "predict": predict}
    return {"serving_default": regress, "regression": regress, "predict": predict}


def _signatures_of(export: str) -> dict[str, Any]:
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(export) / "saved_model.pb").read_bytes())
    out = {}
    for key, sig in proto.meta_graphs[0].signature_def.items():
        if key.startswith("__"):
            continue

        def info(t: Any) -> tuple[str, list[int | None]]:
            dims = [None if d.size < 0 else d.size for d in t.tensor_shape.dim]
            return tf.dtypes.as_dtype(t.dtype).name, dims

        out[key] = (
            sig.method_name,
            {k: tf.dtypes.as_dtype(v.dtype).name for k, v in sig.inputs.items()},
            {k: info(v) for k, v in sig.outputs.items()},
        )
    return out


# Binary and regression: tests/keras/test_estimator_fixtures.py compares every head's
# signatures with real Estimators'.
@pytest.mark.parametrize(("task", "n", "vocab"), [("multiclass", 3, ANIMALS)])
def test_estimator_signatures(task: str, n: int, vocab: Any, tmp_path: Path) -> None:
    specs = ColumnSpecs((NumericColumn("x"), EmbeddingColumn(HashedColumn("c", 16), 3)))
    head = EstimatorHead(task, n_classes=None if task == "regression" else n,
                         label_vocabulary=vocab)  # fmt: skip
    model = dnn_model(specs, (4,), head=head)
    export = export_serving(model, tmp_path / "e", specs, signatures="estimator")
    got = _signatures_of(export)
    assert got == {k: (m, i, {o: (d, s) for o, (d, s) in outs.items()})
                   for k, (m, i, outs) in _expected(task, n).items()}  # fmt: skip
    # the served values are the in-memory model's predictions
    records = [encode_example({"x": float(i), "c": f"c{i}"}) for i in range(4)]
    loaded = tf.saved_model.load(export)
    served = loaded.signatures["predict"](examples=tf.constant(records))
    inputs = _inputs(specs, records, tmp_path)
    logits = np.asarray(model.predict_on_batch(inputs))
    want = estimator_predictions(logits, head)
    for key, value in want.items():
        np.testing.assert_allclose(served[key].numpy(), keras.ops.convert_to_numpy(value),
                                   rtol=1e-5, atol=1e-6)  # fmt: skip
    if task == "multiclass":
        ids = served["class_ids"].numpy().ravel()
        assert [c[0].decode() for c in served["classes"].numpy()] == [ANIMALS[i] for i in ids]


def _inputs(specs: ColumnSpecs, records: list[bytes], tmp_path: Path) -> Any:
    path = tmp_path / "req.tfrecord"
    write_records(path, records)
    return next(iter(make_dataset(str(path), batch_size=len(records), columns=specs,
                                  shuffle=False)))  # fmt: skip


def test_estimator_signatures_of_a_model_without_head(tmp_path: Path) -> None:
    # A canned probability model exports the contract from its head layer's logits.
    specs = ColumnSpecs((NumericColumn("x"), HashedColumn("c", 16)))
    model = linear_model(specs)
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.assign(rng.normal(0, 1, tuple(w.shape)).astype(np.float32))
    export = export_serving(model, tmp_path / "e", specs, signatures="estimator",
                            class_names=["no", "yes"])  # fmt: skip
    assert _signatures_of(export) == _expected("binary", 2)
    records = [encode_example({"x": float(i) - 1.5, "c": f"c{i}"}) for i in range(4)]
    loaded = tf.saved_model.load(export)
    got = loaded.signatures["regression"](inputs=tf.constant(records))["outputs"].numpy()
    want = np.asarray(model.predict_on_batch(_inputs(specs, records, tmp_path)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    cls = loaded.signatures["serving_default"](inputs=tf.constant(records))
    assert cls["classes"].numpy().tolist() == [[b"no", b"yes"]] * 4


def test_class_id_out_of_range_names_the_record(tmp_path: Path) -> None:
    records = [encode_example({"x": float(i), "c": "c1", "y": i % 2}) for i in range(20)]
    records[13] = encode_example({"x": 1.0, "c": "c1", "y": 2})
    write_records(tmp_path / "d.tfrecord", records)
    specs = ColumnSpecs((NumericColumn("x"), HashedColumn("c", 4)))
    with pytest.raises(DataError) as err:
        train(str(tmp_path / "d.tfrecord"), specs, label_key="y", output_dir=tmp_path / "o",
              model="linear", n_classes=2, batch_size=8, verbose=0)  # fmt: skip
    e = err.value
    assert (e.record, e.reason) == (13, "label_out_of_range")
    assert "y=2" in str(e) and "0 or 1" in str(e)
