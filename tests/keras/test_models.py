"""Canned models (linear, DNN, wide-and-deep) and the sparse optimizer, on tiny TFRecords."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from featurepipe.columns._specs import (  # noqa: E402
    BucketizedColumn,
    ColumnSpecs,
    CrossedColumn,
    EmbeddingColumn,
    IdentityColumn,
    Normalizer,
    NumericColumn,
    VocabularyColumn,
    WeightedColumn,
)
from featurepipe.errors import ConfigError  # noqa: E402
from featurepipe.example._codec import encode_example  # noqa: E402
from featurepipe.keras import make_dataset  # noqa: E402
from featurepipe.keras._models import (  # noqa: E402
    LinearLogits,
    dnn_model,
    linear_model,
    merge_columns,
    split_columns,
    task_of,
    wide_and_deep_model,
)
from featurepipe.keras._optimizers import SparseOptimizer  # noqa: E402
from featurepipe.tfrecord import write_records  # noqa: E402

pytestmark = pytest.mark.tf
CITIES = ["paris", "rome", "oslo", "lima", "nowhere"]


def make_examples(n: int, seed: int = 0) -> list[bytes]:
    """Examples whose labels depend on the features (so a model can learn them)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        c = int(rng.integers(0, len(CITIES)))
        x = float(rng.normal())
        tags = rng.integers(0, 6, int(rng.integers(0, 3))).astype(np.int64)
        score = 1.5 * x + (1.0 if c < 2 else -1.0) + 0.3 * float(len(tags))
        feats: dict[str, Any] = {
            "x": x,
            "city": CITIES[c],
            "tag": tags,
            "tag_w": np.ones(len(tags), np.float32),
            "label": int(score > 0.3),
            "cls": c % 3,
            "y": float(score + 0.1 * rng.normal()),
        }
        out.append(encode_example(feats))
    return out


def make_specs() -> ColumnSpecs:
    x = NumericColumn(
        "x", default_value=0.0, normalizer=Normalizer("z_score", mean=0.0, variance=1.0)
    )
    xb = BucketizedColumn(NumericColumn("x", default_value=0.0), bin_boundaries=(-1.0, 0.0, 1.0))
    city = VocabularyColumn("city", vocabulary=tuple(CITIES[:4]), num_oov_buckets=1)
    tag = WeightedColumn(IdentityColumn("tag", 6), "tag_w")
    return ColumnSpecs(
        (
            x,
            xb,
            city,
            tag,
            CrossedColumn(("city", xb), 50),
            EmbeddingColumn(city, 4),
            EmbeddingColumn(tag, 3, combiner="sum"),
        )
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("models")
    write_records(d / "train-0.tfrecord", make_examples(400, seed=1))
    write_records(d / "train-1.tfrecord", make_examples(400, seed=2))
    return str(d / "train-*.tfrecord")


def _dataset(pattern: str, specs: ColumnSpecs, label: str, dtype: Any = tf.float32) -> Any:
    return make_dataset(
        pattern,
        batch_size=64,
        columns=specs,
        label_key=label,
        # binary / regression labels are [batch, 1] like the model output; class ids [batch]
        label_feature=tf.io.FixedLenFeature(() if label == "cls" else (1,), dtype),
        seed=0,
    )


@pytest.mark.parametrize("kind", ["linear", "dnn", "wide_and_deep"])
def test_binary_models_train_and_loss_falls(data: str, kind: str, tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    specs = make_specs()
    wide, deep = split_columns(specs)
    if kind == "linear":
        model = linear_model(specs)
        columns = specs
    elif kind == "dnn":
        model = dnn_model(deep, (16, 8), dropout=0.1, batch_norm=True)
        columns = deep
    else:
        model = wide_and_deep_model(wide, deep, (16,))
        columns = merge_columns(wide, deep)
    ds = _dataset(data, columns, "label", tf.int64)
    history = model.fit(ds, epochs=4, verbose=0).history
    losses = history["loss"]
    assert losses[-1] < losses[0] * 0.9, losses
    assert history["auc"][-1] > 0.8, history
    assert history["accuracy"][-1] > 0.7, history
    assert history["log_loss"][-1] == pytest.approx(losses[-1], rel=0.1)
    assert task_of(model) == "binary"
    if kind != "wide_and_deep":
        return
    # .keras round trip: same predictions, the optimizer and its state come back
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    inputs, _ = next(iter(ds))
    np.testing.assert_allclose(
        loaded.predict_on_batch(inputs), model.predict_on_batch(inputs), rtol=1e-6
    )
    assert isinstance(loaded.optimizer, SparseOptimizer)
    assert loaded.optimizer.wide_algorithm == "ftrl"
    np.testing.assert_array_equal(
        loaded.optimizer.variables[-1].numpy(), model.optimizer.variables[-1].numpy()
    )


def test_multiclass_and_regression_heads(data: str) -> None:
    keras.utils.set_random_seed(1)
    specs = make_specs()
    wide, deep = split_columns(specs)
    multi = wide_and_deep_model(wide, deep, (8,), task="multiclass", num_classes=3)
    assert multi.output_shape == (None, 3)
    hist = multi.fit(_dataset(data, specs, "cls", tf.int64), epochs=4, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0] * 0.8
    assert hist.history["accuracy"][-1] > 0.6  # cls is a function of city
    reg = dnn_model(deep, (8,), task="regression", optimizer=keras.optimizers.Adam(0.02))
    hist = reg.fit(_dataset(data, deep, "y"), epochs=4, verbose=0)
    assert hist.history["rmse"][-1] < hist.history["rmse"][0] * 0.8
    assert task_of(reg) == "regression"


def test_wide_and_deep_uses_two_rules_and_updates_only_touched_rows(data: str) -> None:
    keras.utils.set_random_seed(2)
    specs = make_specs()
    wide, deep = split_columns(specs)
    model = wide_and_deep_model(wide, deep, (4,), linear_learning_rate=0.1)
    opt = model.optimizer
    assert isinstance(opt, SparseOptimizer)
    assert (opt.algorithm, opt.wide_algorithm, opt.wide_learning_rate) == ("adagrad", "ftrl", 0.1)
    linear = model.get_layer("linear")
    table = linear.table
    # one batch that only has cities paris and rome: the other rows must not move
    batch = next(iter(_dataset(data, merge_columns(wide, deep), "label", tf.int64).take(1)))
    inputs, labels = batch
    keep = np.isin(inputs["city"].numpy(), [0, 1]).all(axis=1)
    inputs = {k: v.numpy()[keep] for k, v in inputs.items()}
    emb = model.get_layer("dnn_features")._tables["city_embedding"]
    before_t, before_e = table.numpy().copy(), emb.numpy().copy()
    model.train_on_batch(inputs, labels.numpy()[keep])
    after_t, after_e = table.numpy(), emb.numpy()
    off = linear._offsets["city"]
    assert not np.array_equal(after_t[off : off + 2], before_t[off : off + 2])
    np.testing.assert_array_equal(after_t[off + 2 : off + 5], before_t[off + 2 : off + 5])
    assert not np.array_equal(after_e[:2], before_e[:2])
    np.testing.assert_array_equal(after_e[2:], before_e[2:])
    # slot variables exist per rule: FTRL (accum, linear) for the wide table, Adagrad for the rest
    names = [v.path for v in opt.variables]
    assert any("linear_weights_accum" in n for n in names)
    assert any("embedding_weights_accumulator" in n for n in names)


@pytest.mark.parametrize("algorithm", ["sgd", "adagrad", "adam", "ftrl"])
def test_sparse_update_equals_dense_update_on_touched_rows(algorithm: str) -> None:
    # The row-sparse path and the dense path compute the same new values for the
    # rows a gradient touches; untouched rows keep their values (and slots).
    init = np.arange(12, dtype=np.float32).reshape(6, 2) / 10.0
    grads = tf.IndexedSlices(
        tf.constant([[0.5, -1.0], [0.25, 0.5], [1.0, 1.0]]), tf.constant([1, 4, 1]), [6, 2]
    )
    sparse_var = keras.Variable(init, name="sparse")
    dense_var = keras.Variable(init, name="dense")
    sparse_opt = SparseOptimizer(algorithm, 0.1, l1=0.01, l2=0.01)
    dense_opt = SparseOptimizer(algorithm, 0.1, l1=0.01, l2=0.01)
    for _ in range(3):
        sparse_opt.apply([grads], [sparse_var])
        dense_opt.apply([tf.convert_to_tensor(grads)], [dense_var])
    got, want = sparse_var.numpy(), dense_var.numpy()
    np.testing.assert_allclose(got[[1, 4]], want[[1, 4]], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[[0, 2, 3, 5]], init[[0, 2, 3, 5]])


def test_linear_logits_combiners() -> None:
    ids = np.array([[0, 1, -1], [2, 2, 9]])
    for combiner, want in (
        ("sum", [3.0, 6.0]),
        ("mean", [1.5, 3.0]),
        ("sqrtn", [3 / 2**0.5, 6 / 2**0.5]),
    ):
        layer = LinearLogits({"c": 4}, sparse_combiner=combiner)
        layer.build(None)
        layer.table.assign(np.array([[1.0], [2.0], [3.0], [4.0]], np.float32))
        out = np.asarray(layer({"c": ids}))[:, 0]
        np.testing.assert_allclose(out, want, rtol=1e-6)  # id 9 >= num_ids is ignored


def test_builders_reject_bad_arguments() -> None:
    specs = make_specs()
    wide, deep = split_columns(specs)
    with pytest.raises(ConfigError, match=r"Received: task='ranking'"):
        linear_model(specs, task="ranking")
    with pytest.raises(ConfigError, match=r"Received: num_classes=None"):
        dnn_model(deep, task="multiclass")
    with pytest.raises(ConfigError, match=r"wrap it in EmbeddingColumn"):
        dnn_model(specs)
    with pytest.raises(ConfigError, match=r"Received: dropout=1.5"):
        dnn_model(deep, dropout=1.5)
    with pytest.raises(ConfigError, match=r"needs both"):
        wide_and_deep_model(wide, ColumnSpecs(()))
    with pytest.raises(ConfigError, match=r"Received: algorithm='adamw'"):
        SparseOptimizer("adamw")
    with pytest.raises(ConfigError, match=r"Two different columns are named 'x'"):
        merge_columns(ColumnSpecs((NumericColumn("x"),)), ColumnSpecs((NumericColumn("x", (2,)),)))


def test_mixed_precision_computes_in_half_and_outputs_float32(data: str) -> None:
    specs = make_specs()
    wide, deep = split_columns(specs)
    model = wide_and_deep_model(wide, deep, (4,), mixed_precision="mixed_bfloat16")
    assert model.get_layer("linear").compute_dtype == "bfloat16"
    assert model.get_layer("dnn_hidden_0").compute_dtype == "bfloat16"
    assert model.get_layer("linear").table.dtype == "float32"  # variables stay float32
    inputs, labels = next(iter(_dataset(data, specs, "label", tf.int64)))
    losses = [float(model.train_on_batch(inputs, labels)[0]) for _ in range(3)]
    assert all(np.isfinite(losses)), losses
    assert model.predict_on_batch(inputs).dtype == np.float32
    loss_scaled = wide_and_deep_model(wide, deep, (4,), mixed_precision=True)
    assert isinstance(loss_scaled.optimizer, keras.optimizers.LossScaleOptimizer)


def test_log_loss_metric_accepts_flat_labels() -> None:
    from featurepipe.keras._models import LogLoss

    pred = np.array([[0.2], [0.9], [0.6]], np.float32)
    flat, column = LogLoss(), keras.metrics.BinaryCrossentropy()
    flat.update_state(np.array([0, 1, 1]), pred)
    column.update_state(np.array([[0.0], [1.0], [1.0]], np.float32), pred)
    assert float(flat.result()) == pytest.approx(float(column.result()), rel=1e-6)
    assert LogLoss.from_config(flat.get_config()).name == "log_loss"


_MIRRORED = """
import os, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[2])
import test_models as T
from featurepipe.keras._models import split_columns, wide_and_deep_model

specs = T.make_specs()
wide, deep = split_columns(specs)
with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
    model = wide_and_deep_model(wide, deep, (8,))
losses = model.fit(T._dataset(sys.argv[1], specs, "label", tf.int64), epochs=3, verbose=0)
losses = losses.history["loss"]
assert losses[-1] < losses[0] * 0.9, losses
"""


@pytest.mark.slow
def test_wide_and_deep_trains_under_mirrored_strategy(data: str) -> None:
    # Two logical CPUs must be configured before TensorFlow starts: a fresh process.
    import subprocess
    import sys

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    here = str(Path(__file__).parent)
    proc = subprocess.run(
        [sys.executable, "-c", _MIRRORED, data, here], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
