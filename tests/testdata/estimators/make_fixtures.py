"""Trains the tiny tf.estimator fixtures in this folder (issue 13).

Run with the TensorFlow 2.15 venv (CI never runs this; the outputs are committed)::

    python3.11 -m venv /work/venvs/tf215
    /work/venvs/tf215/bin/pip install -r tests/testdata/estimators/requirements-tf215.txt
    /work/venvs/tf215/bin/python tests/testdata/estimators/make_fixtures.py

It regenerates, deterministically (fixed seeds, one CPU thread):

* ``data/train.tfrecord`` (600 Examples), ``data/eval.tfrecord`` (500), and
  ``data/cities.txt`` (the vocabulary file of ``city``);
* per case (see ``feature_columns_def.CASES``) a folder ``<case>/`` with
  ``model_dir/`` (the last checkpoint only), ``export/<timestamp>/`` (the
  SavedModel, serialized tf.Example in), ``case.json`` (estimator class and
  every constructor argument, optimizers, global step, warm-start
  references), ``variables.txt`` (checkpoint variables: name, shape, dtype),
  ``signatures.json`` and ``outputs.npz`` (every output of every signature of
  the SavedModel for all of ``data/eval.tfrecord``, keys ``<signature>/<output>``), and
  ``warm_start/model.ckpt-81`` (the checkpoint after the one warm-start step).

``--warm-start-only [case ...]`` redoes only the warm-start references of the
committed cases (checking the recorded losses) and writes ``warm_start/``.

Every run ends by packing ``data/`` and all case folders into the one committed
file, ``fixtures.tar.xz`` (the folders themselves are git-ignored; the tests
unpack the archive, see ``__init__.py``). ``--pack`` only packs the folders
that are there (no TensorFlow needed); ``--unpack`` extracts the committed
archive here (do that before redoing one case or ``--warm-start-only``, which
need the other cases' folders).

Only the exported SavedModel's outputs are written as references: they are
computed here by loading the export with ``tf.saved_model.load`` and calling
each signature on the serialized eval records (the same way
``tests/migrate/test_fixtures.py`` checks them under the dev TensorFlow).
"""

from __future__ import annotations

import io
import json
import lzma
import math
import os
import shutil
import sys
import tarfile
import tempfile
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
ARCHIVE = os.path.join(HERE, "fixtures.tar.xz")
ARCHIVE_MTIME = 1778630400  # 2026-05-13 00:00 UTC: every member's mtime (reproducible bytes)
SEED = 20260513
N_TRAIN = 600
N_EVAL = 500
BATCH = 32
STEPS = 80
WARM_ROWS = list(range(100, 164))  # the fixed warm-start batch: rows of train.tfrecord

CITIES = ["paris", "london", "tokyo", "berlin", "madrid", "rome", "oslo", "lima"]
OOV_CITIES = ["cairo", "quito"]


# ---- data ------------------------------------------------------------------


def _rows(n: int, seed: int, oov_rate: float) -> list[dict[str, Any]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    colors = ["red", "green", "blue"]
    tags = ["sports", "news", "music", "film", "food", "art"]
    rows = []
    for _ in range(n):
        r: dict[str, Any] = {}
        age = float(np.round(rng.uniform(18, 80), 1))
        r["age"] = [age]
        if rng.random() > 0.1:
            r["dense2"] = [float(np.round(v, 3)) for v in rng.normal(size=2)]
        if rng.random() > 0.1:
            r["color"] = ["purple" if rng.random() < oov_rate else colors[rng.integers(3)]]
        if rng.random() > 0.1:
            k = int(rng.integers(1, 4))
            r["city"] = [
                OOV_CITIES[rng.integers(2)] if rng.random() < oov_rate else CITIES[rng.integers(8)]
                for _ in range(k)
            ]
        if rng.random() > 0.1:
            r["user"] = [f"u{rng.integers(60)}"]
        r["item_id"] = [int(v) for v in rng.integers(0, 100, size=int(rng.integers(1, 3)))]
        if rng.random() > 0.2:
            r["prev_item"] = [int(rng.integers(0, 100))]
        if rng.random() > 0.1:
            r["day"] = [9 if rng.random() < 0.05 else int(rng.integers(7))]
        k = int(rng.integers(0, 4))
        if k:
            r["tags"] = [
                "misc" if rng.random() < oov_rate else tags[rng.integers(6)] for _ in range(k)
            ]
            r["tag_weights"] = [float(np.round(rng.uniform(0.5, 2.0), 2)) for _ in range(k)]
        r["weight"] = [float(np.round(rng.uniform(0.5, 2.0), 2))]
        # labels: a noisy function of the features
        score = (age - 45.0) / 15.0
        score += {"red": 0.8, "green": -0.4, "blue": 0.1}.get(r.get("color", [""])[0], 0.0)
        score += 0.3 * sum(1 for c in r.get("city", []) if c in ("paris", "tokyo", "oslo"))
        score += 0.5 * r.get("dense2", [0.0, 0.0])[0] - 0.2 * r.get("day", [0])[0] / 6.0
        score += float(rng.normal(scale=0.5))
        r["label"] = [int(score > 0)]
        r["label3"] = ["low" if score < -0.5 else ("mid" if score < 0.7 else "high")]
        r["target"] = [float(np.round(2.0 * score + 1.0, 4))]
        rows.append(r)
    return rows


def _example(row: dict[str, Any]) -> bytes:
    import tensorflow as tf

    feats = {}
    for k, v in row.items():
        if isinstance(v[0], str):
            feats[k] = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[s.encode() for s in v])
            )
        elif isinstance(v[0], float):
            feats[k] = tf.train.Feature(float_list=tf.train.FloatList(value=v))
        else:
            feats[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=v))
    ex = tf.train.Example(features=tf.train.Features(feature=feats))
    return bytes(ex.SerializeToString(deterministic=True))


def write_data() -> tuple[list[bytes], list[bytes]]:
    import tensorflow as tf

    os.makedirs(DATA, exist_ok=True)
    with open(os.path.join(DATA, "cities.txt"), "w") as f:
        f.write("".join(c + "\n" for c in CITIES))
    out = []
    for name, n, seed, oov in (("train", N_TRAIN, SEED, 0.05), ("eval", N_EVAL, SEED + 1, 0.15)):
        recs = [_example(r) for r in _rows(n, seed, oov)]
        with tf.io.TFRecordWriter(os.path.join(DATA, f"{name}.tfrecord")) as w:
            for rec in recs:
                w.write(rec)
        out.append(recs)
    return out[0], out[1]


# ---- cases -----------------------------------------------------------------


def _fcd() -> Any:
    sys.path.insert(0, HERE)
    import feature_columns_def

    return feature_columns_def


def _opt_record(name: str, lr: float, args: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "learning_rate": lr, "args": args or {}}


_V2_DNN_ADAGRAD = (
    "default: the string 'Adagrad'; the V2 DNN estimators build it as "
    "tf.keras.optimizers.legacy.Adagrad() with Keras' default learning rate 0.001 "
    "(dnn.py _dnn_model_fn_v2 calls get_optimizer_instance_v2 without a learning rate; "
    "the 0.05 of dnn.py applies to tf.compat.v1 DNNs)"
)


def build_case(case: str, model_dir: str, config: Any) -> tuple[Any, dict[str, Any], list[Any]]:
    """Returns (estimator, case record, all feature columns) for one case."""
    import tensorflow as tf

    fcd = _fcd()
    cols = getattr(fcd, case)()
    est_v1 = tf.compat.v1.estimator
    est_v2 = tf.estimator
    rec: dict[str, Any] = {"case": case, "feature_columns": f"feature_columns_def.py:{case}"}
    relu = "relu"
    label3 = ["low", "mid", "high"]
    if case == "linear_binary":
        # default optimizer: the string 'Ftrl' at _LEARNING_RATE 0.2 (estimator linear.py)
        est = est_v2.LinearClassifier(
            feature_columns=cols,
            n_classes=2,
            weight_column="weight",
            model_dir=model_dir,
            config=config,
        )
        args = {
            "n_classes": 2,
            "weight_column": "weight",
            "label_vocabulary": None,
            "loss_reduction": "sum_over_batch_size",
            "sparse_combiner": "sum",
            "optimizer": _opt_record("Ftrl", 0.2, {"note": "default: string 'Ftrl'"}),
        }
        label, all_cols = "label", cols
        cls, tf1 = "LinearClassifier", False
    elif case == "linear_regressor":
        ftrl_args = {
            "learning_rate": 0.1,
            "l1_regularization_strength": 0.001,
            "l2_regularization_strength": 0.001,
        }
        est = est_v2.LinearRegressor(
            feature_columns=cols,
            model_dir=model_dir,
            config=config,
            optimizer=lambda: tf.keras.optimizers.legacy.Ftrl(**ftrl_args),
            loss_reduction=tf.keras.losses.Reduction.SUM,
            sparse_combiner="mean",
        )
        args = {
            "label_dimension": 1,
            "weight_column": None,
            "loss_reduction": "sum",
            "sparse_combiner": "mean",
            "optimizer": _opt_record(
                "Ftrl",
                0.1,
                {
                    "class": "tf.keras.optimizers.legacy.Ftrl",
                    "l1_regularization_strength": 0.001,
                    "l2_regularization_strength": 0.001,
                    "initial_accumulator_value": 0.1,
                    "learning_rate_power": -0.5,
                },
            ),
        }
        label, all_cols = "target", cols
        cls, tf1 = "LinearRegressor", False
    elif case == "dnn_multiclass":
        est = est_v2.DNNClassifier(
            hidden_units=[8, 4],
            feature_columns=cols,
            n_classes=3,
            label_vocabulary=label3,
            dropout=0.1,
            model_dir=model_dir,
            config=config,
        )
        args = {
            "hidden_units": [8, 4],
            "activation_fn": relu,
            "dropout": 0.1,
            "batch_norm": False,
            "n_classes": 3,
            "label_vocabulary": label3,
            "weight_column": None,
            "loss_reduction": "sum_over_batch_size",
            "optimizer": _opt_record("Adagrad", 0.001, {"note": _V2_DNN_ADAGRAD}),
        }
        label, all_cols = "label3", cols
        cls, tf1 = "DNNClassifier", False
    elif case == "dnn_regressor":
        est = est_v2.DNNRegressor(
            hidden_units=[8, 4],
            feature_columns=cols,
            activation_fn=tf.nn.elu,
            batch_norm=True,
            weight_column="weight",
            model_dir=model_dir,
            config=config,
        )
        args = {
            "hidden_units": [8, 4],
            "activation_fn": "elu",
            "dropout": None,
            "batch_norm": True,
            "label_dimension": 1,
            "weight_column": "weight",
            "loss_reduction": "sum_over_batch_size",
            "optimizer": _opt_record("Adagrad", 0.001, {"note": _V2_DNN_ADAGRAD}),
        }
        label, all_cols = "target", cols
        cls, tf1 = "DNNRegressor", False
    elif case == "dnn_linear_binary":
        lin, dnn = cols["linear_feature_columns"], cols["dnn_feature_columns"]
        est = est_v2.DNNLinearCombinedClassifier(
            linear_feature_columns=lin,
            dnn_feature_columns=dnn,
            dnn_hidden_units=[8, 4],
            dnn_dropout=0.2,
            n_classes=2,
            model_dir=model_dir,
            config=config,
        )
        # defaults, dnn_linear_combined.py: dnn 'Adagrad' at _DNN_LEARNING_RATE 0.001;
        # linear 'Ftrl' at min(_LINEAR_LEARNING_RATE 0.005, 1/sqrt(len(linear columns)))
        args = {
            "dnn_hidden_units": [8, 4],
            "dnn_activation_fn": relu,
            "dnn_dropout": 0.2,
            "batch_norm": False,
            "n_classes": 2,
            "label_vocabulary": None,
            "weight_column": None,
            "loss_reduction": "sum_over_batch_size",
            "linear_sparse_combiner": "sum",
            "linear_optimizer": _opt_record("Ftrl", min(0.005, 1 / math.sqrt(len(lin)))),
            "dnn_optimizer": _opt_record("Adagrad", 0.001),
        }
        label, all_cols = "label", lin + dnn
        cls, tf1 = "DNNLinearCombinedClassifier", False
    elif case == "dnn_linear_regressor":
        lin, dnn = cols["linear_feature_columns"], cols["dnn_feature_columns"]
        est = est_v2.DNNLinearCombinedRegressor(
            linear_feature_columns=lin,
            dnn_feature_columns=dnn,
            dnn_hidden_units=[4],
            dnn_optimizer=lambda: tf.keras.optimizers.legacy.Adam(learning_rate=0.01),
            linear_sparse_combiner="mean",
            weight_column="weight",
            model_dir=model_dir,
            config=config,
        )
        args = {
            "dnn_hidden_units": [4],
            "dnn_activation_fn": relu,
            "dnn_dropout": None,
            "batch_norm": False,
            "label_dimension": 1,
            "weight_column": "weight",
            "loss_reduction": "sum_over_batch_size",
            "linear_sparse_combiner": "mean",
            "linear_optimizer": _opt_record("Ftrl", min(0.005, 1 / math.sqrt(len(lin)))),
            "dnn_optimizer": _opt_record(
                "Adam",
                0.01,
                {
                    "class": "tf.keras.optimizers.legacy.Adam",
                    "beta_1": 0.9,
                    "beta_2": 0.999,
                    "epsilon": 1e-7,
                },
            ),
        }
        label, all_cols = "target", lin + dnn
        cls, tf1 = "DNNLinearCombinedRegressor", False
    elif case == "v1_linear_binary":
        est = est_v1.LinearClassifier(
            feature_columns=cols,
            n_classes=2,
            model_dir=model_dir,
            config=config,
        )
        # tf.compat.v1 default loss_reduction is SUM (linear.py LinearClassifier v1)
        args = {
            "n_classes": 2,
            "weight_column": None,
            "label_vocabulary": None,
            "loss_reduction": "weighted_sum",
            "sparse_combiner": "sum",
            "optimizer": _opt_record(
                "Ftrl",
                0.2,
                {"class": "tf.compat.v1.train.FtrlOptimizer", "note": "default: string 'Ftrl'"},
            ),
        }
        label, all_cols = "label", cols
        cls, tf1 = "LinearClassifier", True
    elif case == "v1_dnn_linear_multiclass":
        lin, dnn = cols["linear_feature_columns"], cols["dnn_feature_columns"]
        est = est_v1.DNNLinearCombinedClassifier(
            linear_feature_columns=lin,
            dnn_feature_columns=dnn,
            dnn_hidden_units=[8, 4],
            n_classes=3,
            label_vocabulary=label3,
            weight_column="weight",
            model_dir=model_dir,
            config=config,
        )
        args = {
            "dnn_hidden_units": [8, 4],
            "dnn_activation_fn": relu,
            "dnn_dropout": None,
            "batch_norm": False,
            "n_classes": 3,
            "label_vocabulary": label3,
            "weight_column": "weight",
            "loss_reduction": "weighted_sum",
            "linear_sparse_combiner": "sum",
            "linear_optimizer": _opt_record(
                "Ftrl",
                min(0.005, 1 / math.sqrt(len(lin))),
                {"class": "tf.compat.v1.train.FtrlOptimizer"},
            ),
            "dnn_optimizer": _opt_record(
                "Adagrad", 0.001, {"class": "tf.compat.v1.train.AdagradOptimizer"}
            ),
        }
        label, all_cols = "label3", lin + dnn
        cls, tf1 = "DNNLinearCombinedClassifier", True
    else:
        raise ValueError(case)
    rec.update(
        estimator=cls,
        tf1=tf1,
        qualified_name=("tf.compat.v1.estimator." if tf1 else "tf.estimator.") + cls,
        args=args,
        label_key=label,
    )
    return est, rec, all_cols


# ---- helpers ---------------------------------------------------------------


def _input_fn(
    records: list[bytes], spec: dict[str, Any], label: str, *, shuffle: bool, batch: int
) -> Any:
    import tensorflow as tf

    def fn() -> Any:
        ds = tf.data.Dataset.from_tensor_slices(tf.constant(records))
        if shuffle:
            ds = ds.shuffle(len(records), seed=SEED, reshuffle_each_iteration=True)
        ds = ds.repeat().batch(batch)

        def parse(x: Any) -> Any:
            f = tf.io.parse_example(x, spec)
            return f, f.pop(label)

        return ds.map(parse)

    return fn


def _loss_capturing(est: Any, model_dir: str, sink: list[float]) -> Any:
    """An Estimator running est's model_fn that records the loss each train step reports."""
    import tensorflow as tf

    class Capture(tf.compat.v1.train.SessionRunHook):
        def __init__(self, loss: Any) -> None:
            self.loss = loss

        def before_run(self, ctx: Any) -> Any:
            return tf.compat.v1.train.SessionRunArgs(self.loss)

        def after_run(self, ctx: Any, values: Any) -> None:
            sink.append(float(values.results))

    inner = est.model_fn

    def model_fn(features: Any, labels: Any, mode: Any, config: Any) -> Any:
        spec = inner(features, labels, mode, config)
        if mode == tf.estimator.ModeKeys.TRAIN:
            spec = spec._replace(training_hooks=(*tuple(spec.training_hooks), Capture(spec.loss)))
        return spec

    return tf.compat.v1.estimator.Estimator(
        model_fn=model_fn, config=est.config.replace(model_dir=model_dir)
    )


def _tidy_model_dir(model_dir: str) -> int:
    import tensorflow as tf

    ckpt = tf.train.latest_checkpoint(model_dir)
    base = os.path.basename(ckpt)
    for name in os.listdir(model_dir):
        p = os.path.join(model_dir, name)
        if (name.startswith(base + ".") and not name.endswith(".meta")) or name == "checkpoint":
            continue
        if os.path.isdir(p):
            shutil.rmtree(p)
        else:
            os.remove(p)
    with open(os.path.join(model_dir, "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "{base}"\nall_model_checkpoint_paths: "{base}"\n')
    return int(base.rsplit("-", 1)[1])


def _signatures(
    export_dir: str, eval_records: list[bytes]
) -> tuple[dict[str, Any], dict[str, Any]]:
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    (mg,) = sm.meta_graphs

    def info(t: Any) -> dict[str, Any]:
        dims = None if t.tensor_shape.unknown_rank else [d.size for d in t.tensor_shape.dim]
        return {"name": t.name, "dtype": tf.dtypes.as_dtype(t.dtype).name, "shape": dims}

    sigs: dict[str, Any] = {}
    for name, sd in sorted(mg.signature_def.items()):
        sigs[name] = {
            "method_name": sd.method_name,
            "inputs": {k: info(v) for k, v in sorted(sd.inputs.items())},
            "outputs": {k: info(v) for k, v in sorted(sd.outputs.items())},
        }
    loaded = tf.saved_model.load(export_dir)
    outputs: dict[str, Any] = {}
    batch = tf.constant(eval_records)
    for name in sorted(loaded.signatures.keys()):
        fn = loaded.signatures[name]
        (key,) = sigs[name]["inputs"].keys()
        for k, v in sorted(fn(**{key: batch}).items()):
            arr = v.numpy()
            if arr.dtype == object:  # tf.string -> fixed-width bytes (npz without pickle)
                arr = arr.astype(bytes)
            outputs[f"{name}/{k}"] = arr
    assert set(sigs) == set(loaded.signatures.keys()), (sigs.keys(), loaded.signatures.keys())
    for k, v in outputs.items():
        assert v.dtype != object, k
        if v.dtype.kind == "f":
            assert np.all(np.isfinite(v)), k
    return sigs, outputs


def _config() -> Any:
    import tensorflow as tf

    session = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=1, inter_op_parallelism_threads=1
    )
    return tf.estimator.RunConfig(
        tf_random_seed=SEED,
        keep_checkpoint_max=1,
        save_summary_steps=10**6,
        log_step_count_steps=10**6,
        save_checkpoints_steps=None,
        save_checkpoints_secs=10**6,
        session_config=session,
    )


def _specs(rec: dict[str, Any], all_cols: list[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(serving parse spec of the columns, training spec: + label and weight)."""
    import tensorflow as tf

    label = rec["label_key"]
    # the TF1 make_parse_example_spec also takes TF1 columns (shared_embedding_columns)
    fc = tf.compat.v1.feature_column if rec["tf1"] else tf.feature_column
    spec = fc.make_parse_example_spec(all_cols)
    train_spec = dict(spec)
    train_spec[label] = tf.io.FixedLenFeature(
        [1], tf.string if label == "label3" else (tf.int64 if label == "label" else tf.float32)
    )
    weight = rec["args"].get("weight_column")
    if weight:
        train_spec[weight] = tf.io.FixedLenFeature([1], tf.float32)
    return spec, train_spec


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    return {k: (float(v) if np.ndim(v) == 0 else np.asarray(v).tolist()) for k, v in d.items()}


def _warm_start(
    est: Any,
    case_dir: str,
    model_dir: str,
    train: list[bytes],
    train_spec: dict[str, Any],
    label: str,
) -> dict[str, Any]:
    """Warm-start references, made in a throwaway copy of model_dir.

    Also keeps the checkpoint after the one step as ``warm_start/model.ckpt-<N+1>``
    (variables and optimizer slots after exactly one step on the batch).
    """
    import tensorflow as tf

    warm = [train[i] for i in WARM_ROWS]
    warm_fn = _input_fn(warm, train_spec, label, shuffle=False, batch=len(warm))
    out_dir = os.path.join(case_dir, "warm_start")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "model_dir")
        shutil.copytree(model_dir, copy)
        losses: list[float] = []
        cap = _loss_capturing(est, copy, losses)
        eval_before = cap.evaluate(warm_fn, steps=1, name="warm")
        cap.train(warm_fn, steps=1)
        stepped = tf.train.latest_checkpoint(copy)
        base = os.path.basename(stepped)
        for name in os.listdir(copy):
            if name.startswith(base + ".") and not name.endswith(".meta"):
                shutil.copy(os.path.join(copy, name), out_dir)
        with open(os.path.join(out_dir, "checkpoint"), "w") as f:
            f.write(f'model_checkpoint_path: "{base}"\nall_model_checkpoint_paths: "{base}"\n')
        eval_after = cap.evaluate(warm_fn, steps=1, name="warm")
        cap.train(warm_fn, steps=1)
    assert len(losses) == 2, losses
    return {
        "file": "data/train.tfrecord",
        "rows": WARM_ROWS,
        "batch_size": len(WARM_ROWS),
        "train_loss_at_saved_weights": losses[0],
        "train_loss_after_one_step": losses[1],
        "eval_at_saved_weights": _plain(eval_before),
        "eval_after_one_step": _plain(eval_after),
        "after_one_step_checkpoint": f"warm_start/{base}",
        "note": (
            "train_loss_*: the loss the Estimator's train step reports on this batch "
            "(TRAIN mode, its loss_reduction; with dropout or batch_norm it is the "
            "training-mode forward pass), first at the saved weights, then after one "
            "optimizer step on the same batch. eval_*: Estimator.evaluate on the same "
            "batch (INFERENCE-mode forward pass) at the same two points. "
            "after_one_step_checkpoint: the variables after that one step."
        ),
    }


def warm_start_only(case: str, train: list[bytes]) -> None:
    """Redo the warm-start references of a committed case from its model_dir.

    Checks that the losses and metrics come out as recorded in case.json, then
    writes ``warm_start/`` and the new ``after_one_step_checkpoint`` key.
    """
    case_dir = os.path.join(HERE, case)
    model_dir = os.path.join(case_dir, "model_dir")
    with open(os.path.join(case_dir, "case.json")) as f:
        rec = json.load(f)
    est, _, all_cols = build_case(case, model_dir, _config())
    _, train_spec = _specs(rec, all_cols)
    ws = _warm_start(est, case_dir, model_dir, train, train_spec, rec["label_key"])
    old = rec["warm_start"]
    for key in (
        "train_loss_at_saved_weights",
        "train_loss_after_one_step",
        "eval_at_saved_weights",
        "eval_after_one_step",
    ):
        assert ws[key] == old[key], (case, key, ws[key], old[key])
    rec["warm_start"] = ws
    with open(os.path.join(case_dir, "case.json"), "w") as f:
        json.dump(rec, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{case}: warm start reproduced, {ws['after_one_step_checkpoint']}", flush=True)


def run_case(case: str, train: list[bytes], eval_records: list[bytes]) -> None:
    import numpy as np
    import tensorflow as tf

    case_dir = os.path.join(HERE, case)
    shutil.rmtree(case_dir, ignore_errors=True)
    os.makedirs(case_dir)
    model_dir = os.path.join(case_dir, "model_dir")
    est, rec, all_cols = build_case(case, model_dir, _config())
    label = rec["label_key"]
    spec, train_spec = _specs(rec, all_cols)
    est.train(_input_fn(train, train_spec, label, shuffle=True, batch=BATCH), steps=STEPS)
    warm_start = _warm_start(est, case_dir, model_dir, train, train_spec, label)

    export_base = os.path.join(case_dir, "export")
    serving = tf.estimator.export.build_parsing_serving_input_receiver_fn(spec)
    export_dir = est.export_saved_model(export_base, serving).decode()
    global_step = _tidy_model_dir(model_dir)

    reader = tf.train.load_checkpoint(model_dir)
    dtypes = reader.get_variable_to_dtype_map()
    with open(os.path.join(case_dir, "variables.txt"), "w") as f:
        for name, shape in tf.train.list_variables(model_dir):
            f.write(f"{name}\t{json.dumps(list(shape))}\t{dtypes[name].name}\n")

    sigs, outputs = _signatures(export_dir, eval_records)
    with open(os.path.join(case_dir, "signatures.json"), "w") as f:
        json.dump(sigs, f, indent=1, sort_keys=True)
        f.write("\n")
    np.savez_compressed(os.path.join(case_dir, "outputs.npz"), **outputs)

    rec.update(
        global_step=global_step,
        export_dir=os.path.relpath(export_dir, case_dir),
        serving_input="build_parsing_serving_input_receiver_fn(make_parse_example_spec(columns))",
        train={
            "file": "data/train.tfrecord",
            "batch_size": BATCH,
            "steps": STEPS,
            "shuffle_seed": SEED,
            "tf_random_seed": SEED,
        },
        vocabulary_files={"city": "data/cities.txt"},
        warm_start=warm_start,
        versions={"tensorflow": tf.__version__, "tensorflow_estimator": _est_version()},
    )
    with open(os.path.join(case_dir, "case.json"), "w") as f:
        json.dump(rec, f, indent=1, sort_keys=True)
        f.write("\n")
    losses = [warm_start["train_loss_at_saved_weights"], warm_start["train_loss_after_one_step"]]
    print(f"{case}: step {global_step}, loss {losses}, {len(outputs)} outputs", flush=True)


def _est_version() -> str:
    from importlib.metadata import version

    return version("tensorflow-estimator")


# ---- the committed archive --------------------------------------------------


def _archive_members() -> list[str]:
    """Relative paths (``/``-separated, sorted) of every file of ``data/`` and the cases."""
    cases = _fcd().CASES
    missing = [d for d in ["data", *cases] if not os.path.isdir(os.path.join(HERE, d))]
    if missing:
        raise SystemExit(
            f"cannot pack {ARCHIVE}: no folder {', '.join(missing)} in {HERE}; "
            "run `make_fixtures.py --unpack` first (or regenerate every case)"
        )
    names = []
    for top in ["data", *cases]:
        for root, dirs, files in os.walk(os.path.join(HERE, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                path = os.path.join(root, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    raise SystemExit(f"cannot pack {path}: not a plain file")
                names.append(os.path.relpath(path, HERE).replace(os.sep, "/"))
    return sorted(names)


def pack() -> None:
    """Writes ``fixtures.tar.xz``: same content -> same bytes.

    Members sorted by name, files only (tar makes the folders), mode 0644, uid/gid 0,
    no user/group names, one fixed mtime; xz (no timestamp in the format) at preset 9e.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in _archive_members():
            with open(os.path.join(HERE, *name.split("/")), "rb") as f:
                data = f.read()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = ARCHIVE_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    packed = lzma.compress(buf.getvalue(), format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME)
    tmp = ARCHIVE + ".tmp"
    with open(tmp, "wb") as f:
        f.write(packed)
    os.replace(tmp, ARCHIVE)
    print(f"{ARCHIVE}: {len(buf.getvalue())} bytes of tar, {len(packed)} bytes packed", flush=True)


def unpack() -> None:
    """Extracts the committed ``fixtures.tar.xz`` into this folder (overwriting)."""
    with tarfile.open(ARCHIVE, "r:xz") as tar:
        tar.extractall(HERE, filter="data")
    print(f"unpacked {ARCHIVE} into {HERE}", flush=True)


def main(argv: list[str]) -> None:
    if argv == ["--pack"]:
        pack()
        return
    if argv == ["--unpack"]:
        unpack()
        return
    only_warm = "--warm-start-only" in argv
    argv = [a for a in argv if a != "--warm-start-only"]
    cases = argv or _fcd().CASES
    if argv or only_warm:
        _archive_members()  # fail now, not at the final pack: the other cases must be here

    import numpy as np
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    tf.random.set_seed(SEED)
    np.random.seed(SEED)
    train, eval_records = write_data()
    for case in cases:
        if only_warm:
            warm_start_only(case, train)
        else:
            run_case(case, train, eval_records)
    pack()


if __name__ == "__main__":
    main(sys.argv[1:])
