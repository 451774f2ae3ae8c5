"""Serving export: serialized tf.Example in, named outputs out, same as the in-memory model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from featurepipe.columns._specs import (  # noqa: E402
    ColumnSpecs,
    CrossedColumn,
    EmbeddingColumn,
    HashedColumn,
    NumericColumn,
    VocabularyColumn,
)
from featurepipe.errors import ConfigError  # noqa: E402
from featurepipe.example._codec import encode_example  # noqa: E402
from featurepipe.example._schema import FeatureSchema, Schema  # noqa: E402
from featurepipe.keras import make_dataset  # noqa: E402
from featurepipe.keras._export import (  # noqa: E402
    EXPORT_INFO_FILE,
    export_serving,
    serving_parse_spec,
)
from featurepipe.keras._models import (  # noqa: E402
    dnn_model,
    merge_columns,
    split_columns,
    wide_and_deep_model,
)
from featurepipe.tfrecord import write_records  # noqa: E402

pytestmark = pytest.mark.tf
CITIES = ("paris", "rome", "oslo")


def _specs() -> ColumnSpecs:
    city = VocabularyColumn("city", vocabulary=CITIES, num_oov_buckets=1)
    return ColumnSpecs(
        (
            NumericColumn("x", default_value=0.0),
            NumericColumn("n", dtype="int64"),  # no default: required in requests
            city,
            HashedColumn("tag", 10, dtype="int64"),
            CrossedColumn(("city", "tag"), 20),
            EmbeddingColumn(city, 3),
        )
    )


def _records() -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(12):
        feats: dict[str, Any] = {
            "x": float(rng.normal()),
            "n": int(i),
            "city": CITIES[i % 3] if i % 4 else "atlantis",
            "tag": rng.integers(0, 9, i % 3).astype(np.int64),
            "label": i % 2,
        }
        if i % 5 == 0:
            del feats["city"]  # a missing categorical feature: no ids
        if i % 6 == 0:
            del feats["x"]  # a missing numeric feature with a default
        out.append(encode_example(feats))
    return out


def _randomize(model: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(0.0, 0.5, tuple(w.shape)).astype(w.dtype))


def _in_memory(model: Any, columns: ColumnSpecs, path: Path) -> np.ndarray:
    ds = make_dataset(str(path), batch_size=100, columns=columns, shuffle=False)
    return np.asarray(model.predict_on_batch(next(iter(ds))))


_CHILD = """
import json, sys, numpy as np, tensorflow as tf
export, records, out = sys.argv[1:4]
m = tf.saved_model.load(export)
serve = m.signatures["serving_default"]
good = tf.constant([r.numpy() for r in tf.data.TFRecordDataset(records)])
first = {k: v.numpy() for k, v in serve(examples=good).items()}
classes = [[c.decode() for c in row] for row in first.pop("classes")]
np.savez(out + ".npz", **first)
bad = {
    "wrong_type": b"%(wrong)s",
    "not_an_example": b"this is not a tf.Example".hex().encode(),
    "missing_required": b"%(missing)s",
}
errors = {}
for name, data in bad.items():
    try:
        serve(examples=tf.constant([bytes.fromhex(data.decode())]))
        errors[name] = None
    except tf.errors.InvalidArgumentError as e:
        errors[name] = e.message
again = serve(examples=good)["logistic"].numpy()
errors["classes"] = classes
errors["same_after_errors"] = bool(np.array_equal(again, first["logistic"]))
json.dump(errors, open(out + ".json", "w"))
"""


def test_export_round_trip_in_fresh_process(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    specs = _specs()
    wide, deep = split_columns(specs)
    model = wide_and_deep_model(wide, deep, (4,))
    _randomize(model, 1)
    records = _records()
    write_records(tmp_path / "req.tfrecord", records)
    want = _in_memory(model, merge_columns(wide, deep), tmp_path / "req.tfrecord")
    export = export_serving(model, tmp_path / "export", merge_columns(wide, deep))
    info = json.loads((Path(export) / EXPORT_INFO_FILE).read_text())
    assert info["task"] == "binary"
    assert info["outputs"] == ["class_ids", "classes", "logistic", "probabilities"]
    wrong = encode_example({"x": "not a float", "n": 1}).hex()
    missing = encode_example({"x": 1.0, "city": "rome"}).hex()
    code = _CHILD % {"wrong": wrong, "missing": missing}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = str(tmp_path / "out")
    proc = subprocess.run(
        [sys.executable, "-c", code, export, str(tmp_path / "req.tfrecord"), out],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = dict(np.load(out + ".npz"))
    np.testing.assert_allclose(got["logistic"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["probabilities"][:, 1:], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got["class_ids"], (want > 0.5).astype(np.int64))
    errors = json.loads(Path(out + ".json").read_text())
    assert errors["classes"] == [[str(int(v))] for v in (want > 0.5)[:, 0]]
    assert "x" in errors["wrong_type"]
    assert "match" in errors["wrong_type"]
    assert "Could not parse example input" in errors["not_an_example"]
    assert "n" in errors["missing_required"]
    assert "required" in errors["missing_required"]
    assert errors["same_after_errors"] is True


def test_missing_features_take_column_defaults(tmp_path: Path) -> None:
    keras.utils.set_random_seed(1)
    specs = _specs()
    _, deep = split_columns(specs)
    model = dnn_model(deep, (4,), task="multiclass", num_classes=3)
    _randomize(model, 2)
    export_serving(model, tmp_path / "e", deep, class_names=["a", "b", "c"])
    serve = tf.saved_model.load(str(tmp_path / "e")).signatures["serving_default"]
    # no x (default 0.0) and no city (no ids) == x=0.0 and a city with no value
    bare = serve(examples=tf.constant([encode_example({"n": 3})]))
    full = serve(
        examples=tf.constant([encode_example({"n": 3, "x": 0.0, "city": np.array([], object)})])
    )
    np.testing.assert_array_equal(bare["probabilities"].numpy(), full["probabilities"].numpy())
    probs = bare["probabilities"].numpy()
    assert probs.shape == (1, 3)
    assert bare["classes"].numpy()[0, 0].decode() == "abc"[int(np.argmax(probs))]


def test_regression_export_and_schema_parse_spec(tmp_path: Path) -> None:
    specs = ColumnSpecs((NumericColumn("x"), EmbeddingColumn(HashedColumn("s", 5), 2)))
    schema = Schema(
        (
            FeatureSchema("x", "float", shape=(), required=False, default=1.5),
            FeatureSchema("s", "bytes", shape=None),
            FeatureSchema("label", "float", shape=()),
        )
    )
    spec = serving_parse_spec(specs, schema)
    assert sorted(spec) == ["s", "x"]  # the label is not part of a request
    model = dnn_model(specs, (2,), task="regression")
    _randomize(model, 3)
    export_serving(model, tmp_path / "r", specs, schema=schema)
    serve = tf.saved_model.load(str(tmp_path / "r")).signatures["serving_default"]
    out = serve(examples=tf.constant([encode_example({"s": "a"}), encode_example({"x": 1.5})]))
    assert list(out) == ["predictions"]
    assert out["predictions"].shape == (2, 1)


def test_export_rejects_bad_arguments(tmp_path: Path) -> None:
    specs = _specs()
    _, deep = split_columns(specs)
    model = dnn_model(deep, (2,), compile=False)
    with pytest.raises(ConfigError, match=r"no `binary_head`"):
        export_serving(
            keras.Model(model.input, model.get_layer("dnn_logits").output), tmp_path / "a", deep
        )
    with pytest.raises(ConfigError, match=r"reads inputs \['city_embedding'\]"):
        export_serving(model, tmp_path / "b", ColumnSpecs((NumericColumn("x"), NumericColumn("n"))))
    with pytest.raises(ConfigError, match=r"must name the 2 classes"):
        export_serving(model, tmp_path / "c", deep, class_names=["only"])
    export_serving(model, tmp_path / "d", deep)
    with pytest.raises(ConfigError, match=r"already holds a SavedModel"):
        export_serving(model, tmp_path / "d", deep)
