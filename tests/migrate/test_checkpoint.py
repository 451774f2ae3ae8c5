"""read_estimator_checkpoint on the committed Estimator fixtures (tests/testdata/estimators).

Every variable of every case must be classified (no unrecognized ones), the
shapes must follow from the case's feature columns and constructor arguments
(case.json + feature_columns_def.py), and the optimizer slots must be attached
correctly -- checked with the Ftrl closed form: with no l1/l2, Ftrl's weight is
``-linear * learning_rate / sqrt(accumulator)``, which holds only when the
``accumulator`` and ``linear`` slots (``Ftrl`` / ``Ftrl_1`` in TF1) are not swapped.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

from featurepipe.errors import ConfigError, DataError  # noqa: E402
from featurepipe.migrate import (  # noqa: E402
    CheckpointVariable,
    EstimatorWeights,
    read_estimator_checkpoint,
)
from tests.testdata.estimators import (  # noqa: E402
    estimator_fixtures,
    feature_columns_module,
)

FIXTURES = estimator_fixtures()  # fixtures.tar.xz, unpacked once into a cache folder
fcd = feature_columns_module()
CASES = sorted(p.parent.name for p in FIXTURES.glob("*/case.json"))
ACCUMULATOR_INIT = 0.1  # Ftrl and Adagrad initial_accumulator_value (TF1 and Keras)


def _case(case: str) -> dict[str, Any]:
    with open(FIXTURES / case / "case.json") as f:
        rec: dict[str, Any] = json.load(f)
    return rec


def _columns(case: str) -> tuple[list[Any], list[Any]]:
    cols = getattr(fcd, case)()
    if isinstance(cols, dict):
        return cols["linear_feature_columns"], cols["dnn_feature_columns"]
    if case.startswith(("linear", "v1_linear")):
        return cols, []
    return [], cols


def _dense_size(col: Any) -> int:
    shape = getattr(col, "variable_shape", None)
    if shape is None:  # TF1 _SharedEmbeddingColumn
        shape = col._variable_shape
    return int(np.prod(tf.TensorShape(shape).as_list()))


def _read(case: str) -> EstimatorWeights:
    return read_estimator_checkpoint(
        FIXTURES / case / "model_dir",
        _case(case)["qualified_name"],
        categorical_columns=["item_id", "prev_item", "city", "user", "color", "day"],
    )


def _stored(v: CheckpointVariable) -> list[str]:
    """The names v is stored under (its partitions, or its name)."""
    return list(v.parts) or [v.name]


def _all_names(w: EstimatorWeights) -> set[str]:
    names: set[str] = set()
    for v in w.variables.values():
        names.update(_stored(v))
        for s in v.slots.values():
            names.update(_stored(s.variable))
    for o in w.optimizers.values():
        for v in o.hyperparameters.values():
            names.update(_stored(v))
    return names


@pytest.mark.parametrize("case", CASES)
def test_every_variable_classified(case: str) -> None:
    rec = _case(case)
    w = _read(case)
    assert w.unrecognized == []
    listed = [
        line.split("\t")[0] for line in (FIXTURES / case / "variables.txt").read_text().splitlines()
    ]
    assert _all_names(w) == set(listed)
    assert w.global_step == rec["global_step"] == 80
    assert w.tf1 is rec["tf1"]
    assert w.estimator == rec["estimator"]
    # tf1 found from the names alone, too
    assert (
        read_estimator_checkpoint(FIXTURES / case / "model_dir", rec["estimator"]).tf1 is rec["tf1"]
    )


@pytest.mark.parametrize("case", CASES)
def test_shapes_follow_the_columns(case: str) -> None:
    rec = _case(case)
    args = rec["args"]
    w = _read(case)
    n_classes = args.get("n_classes", 1)
    logits = n_classes if n_classes > 2 else 1
    assert w.logits_dimension == logits
    linear_cols, dnn_cols = _columns(case)

    if linear_cols:
        assert w.linear is not None
        want = {}
        for c in linear_cols:
            rows = c.num_buckets if hasattr(c, "num_buckets") else _dense_size(c)
            want[c.name] = (rows, logits)
        assert {k: v.shape for k, v in w.linear.columns.items()} == want
        assert w.linear.bias is not None and w.linear.bias.shape == (logits,)
    else:
        assert w.linear is None

    if dnn_cols:
        assert w.dnn is not None
        hidden = args.get("hidden_units") or args["dnn_hidden_units"]
        assert w.dnn.hidden_units == hidden
        width = sum(_dense_size(c) for c in dnn_cols)
        for layer, units in zip(w.dnn.hidden_layers, hidden, strict=True):
            assert layer.kernel is not None and layer.bias is not None
            assert layer.kernel.shape == (width, units) and layer.bias.shape == (units,)
            if args.get("batch_norm"):
                bn = layer.batch_norm
                assert bn is not None
                for v in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance):
                    assert v is not None and v.shape == (units,)
                assert bn.moving_variance is not None and np.all(bn.moving_variance.numpy() > 0)
            else:
                assert layer.batch_norm is None
            width = units
        assert w.dnn.logits.kernel is not None and w.dnn.logits.bias is not None
        assert w.dnn.logits.kernel.shape == (width, logits)
        assert w.dnn.logits.bias.shape == (logits,)

        kinds = {type(c).__name__ for c in dnn_cols}
        embedded = {
            c.name: (c.categorical_column.name, c.categorical_column.num_buckets, c.dimension)
            for c in dnn_cols
            if type(c).__name__ == "EmbeddingColumn"
        }
        got = {
            k: (t.categorical_columns[0], t.num_buckets, t.dimension)
            for k, t in w.dnn.embeddings.items()
        }
        assert got == embedded
        shared = [c for c in dnn_cols if "SharedEmbeddingColumn" in type(c).__name__]
        if shared:
            cats = sorted(c.categorical_column.name for c in shared)
            table = "_".join(cats) + "_shared_embedding"
            assert list(w.shared_embeddings) == [table]
            t = w.shared_embeddings[table]
            assert t.shared and list(t.categorical_columns) == cats
            assert t.variable.shape == (
                shared[0].categorical_column.num_buckets,
                _dense_size(shared[0]),
            )
        else:
            assert w.shared_embeddings == {}
        assert kinds  # the case has DNN columns
    else:
        assert w.dnn is None


def _trainable(w: EstimatorWeights) -> list[tuple[str, CheckpointVariable]]:
    out = []
    if w.linear is not None:
        out += [("linear", v) for v in w.linear.columns.values()]
        assert w.linear.bias is not None
        out.append(("linear", w.linear.bias))
    if w.dnn is not None:
        for layer in [*w.dnn.hidden_layers, w.dnn.logits]:
            assert layer.kernel is not None and layer.bias is not None
            out += [("dnn", layer.kernel), ("dnn", layer.bias)]
            if layer.batch_norm is not None:
                assert layer.batch_norm.gamma is not None and layer.batch_norm.beta is not None
                out += [("dnn", layer.batch_norm.gamma), ("dnn", layer.batch_norm.beta)]
        out += [("dnn", t.variable) for t in w.dnn.embeddings.values()]
    return out


_SLOTS = {"Ftrl": ["accumulator", "linear"], "Adagrad": ["accumulator"], "Adam": ["m", "v"]}


@pytest.mark.parametrize("case", CASES)
def test_optimizer_slots(case: str) -> None:
    rec = _case(case)
    args = rec["args"]
    w = _read(case)
    opt = {
        "linear": (args.get("linear_optimizer") or args.get("optimizer") or {}).get("name"),
        "dnn": (args.get("dnn_optimizer") or args.get("optimizer") or {}).get("name"),
    }
    for part, v in _trainable(w):
        name = opt[part]
        assert sorted(v.slots) == sorted(_SLOTS[name]), v.name
        assert {s.optimizer for s in v.slots.values()} == {name}
        for s in v.slots.values():
            assert s.variable.shape == v.shape
        if "accumulator" in v.slots:
            assert np.all(v.slots["accumulator"].variable.numpy() >= ACCUMULATOR_INIT - 1e-7)
        if "v" in v.slots:
            assert np.all(v.slots["v"].variable.numpy() >= 0)
    # V2 shared tables are not trained by the canned DNN (no slots); TF1 ones are
    for t in w.shared_embeddings.values():
        assert sorted(t.variable.slots) == ([] if not rec["tf1"] else _SLOTS[opt["dnn"]])
    if not rec["tf1"]:
        # the learning rates recorded in case.json are the ones the checkpoint holds
        assert sorted(w.optimizers) == sorted({n for n in opt.values() if n})
        for part, name in opt.items():
            if name is None or (part == "dnn" and w.dnn is None):
                continue
            o = args.get(f"{part}_optimizer") or args["optimizer"]
            lr = float(w.optimizers[name].hyperparameters["learning_rate"].numpy())
            assert math.isclose(lr, o["learning_rate"], rel_tol=1e-6), (name, lr)


def _ftrl_cases() -> list[str]:
    out = []
    for case in CASES:
        args = _case(case)["args"]
        o = args.get("linear_optimizer") or args.get("optimizer")
        if o is not None and o["name"] == "Ftrl":
            out.append(case)
    return out


@pytest.mark.parametrize("step", ["saved", "after_one_step"])
@pytest.mark.parametrize("case", _ftrl_cases())
def test_ftrl_closed_form(case: str, step: str) -> None:
    """Ftrl's weight from its slots: the slots are the right ones, not swapped.

    With learning_rate_power -0.5, beta 0 and no l2 shrinkage (TF's ApplyFtrl):
    ``w = (sign(linear) * l1 - linear) / (sqrt(accumulator) / lr + 2 * l2)`` where
    ``|linear| > l1``, else 0.
    """
    rec = _case(case)
    args = rec["args"]
    o = args.get("linear_optimizer") or args.get("optimizer")
    lr = o["learning_rate"]
    l1 = o["args"].get("l1_regularization_strength", 0.0)
    l2 = o["args"].get("l2_regularization_strength", 0.0)
    w = _read(case)
    if step == "after_one_step":
        w = read_estimator_checkpoint(
            FIXTURES / case / rec["warm_start"]["after_one_step_checkpoint"], rec["qualified_name"]
        )
    assert w.linear is not None
    if not rec["tf1"]:
        hyper = w.optimizers["Ftrl"].hyperparameters
        assert math.isclose(float(hyper["learning_rate"].numpy()), lr, rel_tol=1e-6)
        assert math.isclose(
            float(hyper["l1_regularization_strength"].numpy()), l1, rel_tol=1e-6, abs_tol=1e-9
        )
    moved = 0
    for v in [*w.linear.columns.values(), w.linear.bias]:
        assert v is not None
        acc = v.slots["accumulator"].variable.numpy()
        lin = v.slots["linear"].variable.numpy()
        want = np.where(
            np.abs(lin) > l1, (np.sign(lin) * l1 - lin) / (np.sqrt(acc) / lr + 2 * l2), 0.0
        )
        np.testing.assert_allclose(v.numpy(), want, rtol=2e-5, atol=1e-6, err_msg=v.name)
        moved += int(np.count_nonzero(lin))
    assert moved > 0


def test_checkpoint_prefix_and_values() -> None:
    prefix = FIXTURES / "linear_binary" / "model_dir" / "model.ckpt-80"
    w = read_estimator_checkpoint(prefix, "tf.estimator.LinearClassifier")
    assert w.checkpoint == str(prefix)
    reader = tf.train.load_checkpoint(str(prefix))
    v = w.linear.columns["city"] if w.linear else None
    assert v is not None and v.shape == (10, 1) and v.dtype == "float32"
    np.testing.assert_array_equal(v.numpy(), reader.get_tensor("linear/linear_model/city/weights"))


def test_wrong_estimator_and_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DNNClassifier"):
        read_estimator_checkpoint(FIXTURES / "linear_binary" / "model_dir", "DNNClasifier")
    with pytest.raises(DataError, match="dnn/logits/kernel"):
        read_estimator_checkpoint(FIXTURES / "linear_binary" / "model_dir", "DNNClassifier")
    w = read_estimator_checkpoint(FIXTURES / "dnn_linear_binary" / "model_dir", "DNNClassifier")
    assert w.unrecognized and all("linear-model variable" in u.reason for u in w.unrecognized)
    with pytest.raises(DataError, match="model_dir"):
        read_estimator_checkpoint(tmp_path, "LinearClassifier")
    # a V2 checkpoint read as TF1: its Keras slots are refused, not misfiled
    w = read_estimator_checkpoint(
        FIXTURES / "linear_binary" / "model_dir", "LinearClassifier", tf1=True
    )
    assert w.tf1 is True and w.unrecognized
    assert all(u.name.startswith("training/Ftrl/linear/") for u in w.unrecognized)
    assert all("tf1=True" in u.reason for u in w.unrecognized)


def _save(tmp_path: Path, variables: dict[str, Any]) -> str:
    """A TF1-style checkpoint with exactly these variable names."""
    with tf.Graph().as_default():
        vs = [
            tf.compat.v1.get_variable(n, initializer=tf.constant(np.asarray(val)))
            for n, val in variables.items()
        ]
        saver = tf.compat.v1.train.Saver(vs)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return str(saver.save(sess, str(tmp_path / "model.ckpt"), global_step=7))


def test_tf1_partitions_adam_rmsprop_and_unknowns(tmp_path: Path) -> None:
    f = np.float32
    emb0 = np.arange(6, dtype=f).reshape(3, 2)
    emb1 = np.arange(6, 10, dtype=f).reshape(2, 2)
    base = "dnn/input_from_feature_columns/input_layer/city_embedding/embedding_weights"
    prefix = _save(
        tmp_path,
        {
            "global_step": np.int64(7),
            f"{base}/part_0": emb0,
            f"{base}/part_1": emb1,
            f"{base}/part_0/Adam": emb0 + 1,
            f"{base}/part_1/Adam": emb1 + 1,
            f"{base}/part_0/Adam_1": emb0 + 2,
            f"{base}/part_1/Adam_1": emb1 + 2,
            "dnn/hiddenlayer_0/kernel": np.ones((2, 3), f),
            "dnn/hiddenlayer_0/bias": np.ones(3, f),
            "dnn/hiddenlayer_0/kernel/RMSProp": np.ones((2, 3), f),
            "dnn/hiddenlayer_0/kernel/RMSProp_1": np.zeros((2, 3), f),
            "dnn/hiddenlayer_0/kernel/RMSProp_2": np.zeros((2, 3), f),
            "dnn/logits/kernel": np.ones((3, 1), f),
            "dnn/logits/bias": np.ones(1, f),
            "beta1_power": f(0.9),
            "beta2_power": f(0.999),
            "dnn/something_else": np.ones(2, f),
        },
    )
    w = read_estimator_checkpoint(prefix, "DNNRegressor")
    assert w.tf1 is True and w.global_step == 7
    assert w.dnn is not None
    t = w.dnn.embeddings["city_embedding"]
    assert t.variable.shape == (5, 2) and len(t.variable.parts) == 2
    np.testing.assert_array_equal(t.variable.numpy(), np.concatenate([emb0, emb1]))
    np.testing.assert_array_equal(
        t.variable.slots["m"].variable.numpy(), np.concatenate([emb0, emb1]) + 1
    )
    np.testing.assert_array_equal(
        t.variable.slots["v"].variable.numpy(), np.concatenate([emb0, emb1]) + 2
    )
    kernel = w.dnn.hidden_layers[0].kernel
    assert kernel is not None and sorted(kernel.slots) == ["mg", "momentum", "rms"]
    assert sorted(w.optimizers["Adam"].hyperparameters) == ["beta1_power", "beta2_power"]
    assert [(u.name, "no canned-Estimator naming rule" in u.reason) for u in w.unrecognized] == [
        ("dnn/something_else", True)
    ]
    # the same names read as a V2 model: the TF1 slots are refused, not misfiled
    w2 = read_estimator_checkpoint(prefix, "DNNRegressor", tf1=False)
    assert {u.name for u in w2.unrecognized} >= {f"{base}/Adam", "dnn/hiddenlayer_0/kernel/RMSProp"}


def _pairs(case: str) -> list[tuple[CheckpointVariable, CheckpointVariable]]:
    """(variable at the saved weights, the same after the one warm-start step)."""
    rec = _case(case)
    w0 = _read(case)
    w1 = read_estimator_checkpoint(
        FIXTURES / case / rec["warm_start"]["after_one_step_checkpoint"],
        rec["qualified_name"],
        categorical_columns=["item_id", "prev_item"],
    )
    assert w1.global_step == w0.global_step + 1 == 81  # type: ignore[operator]
    assert w1.unrecognized == [] and _all_names(w1) == _all_names(w0)
    return [(v, w1.variables[n]) for n, v in w0.variables.items()]


@pytest.mark.parametrize("case", CASES)
def test_one_step_updates(case: str) -> None:
    """The warm-start step, seen through the slots: g**2 == accumulator increase.

    Adagrad: ``acc1 = acc0 + g**2``, ``w1 = w0 - lr * g / sqrt(acc1)``.
    Ftrl: ``acc1 = acc0 + g**2``, ``lin1 = lin0 + g - (sqrt(acc1) - sqrt(acc0)) / lr * w0``.
    Both recover ``g`` from the weights and the learning rate of case.json, so a
    wrong slot, a wrong learning rate or a swapped pair fails.
    """
    args = _case(case)["args"]
    opts = {
        o["name"]: o["learning_rate"]
        for o in (args.get("optimizer"), args.get("linear_optimizer"), args.get("dnn_optimizer"))
        if o
    }
    checked = 0
    for v0, v1 in _pairs(case):
        if not v0.slots:
            continue
        acc0 = v0.slots.get("accumulator")
        if acc0 is None:  # Adam: m/v are moving averages; only check they moved
            assert not np.array_equal(
                v0.slots["m"].variable.numpy(), v1.slots["m"].variable.numpy()
            )
            continue
        opt = acc0.optimizer
        lr = opts[opt]
        a0, a1 = acc0.variable.numpy(), v1.slots["accumulator"].variable.numpy()
        if opt == "Adagrad":
            g = (v0.numpy() - v1.numpy()) * np.sqrt(a1) / lr
        else:
            l0, l1 = v0.slots["linear"].variable.numpy(), v1.slots["linear"].variable.numpy()
            g = l1 - l0 + (np.sqrt(a1) - np.sqrt(a0)) / lr * v0.numpy()
        np.testing.assert_allclose(g**2, a1 - a0, rtol=1e-2, atol=2e-5, err_msg=v0.name)
        checked += int(np.count_nonzero(a1 - a0))
    assert checked > 0
