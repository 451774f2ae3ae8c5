"""One measured thing of the training benchmark, run in a process of its own.

``python -m bench.train.worker TASK '{"train": ..., "eval": ..., ...}'`` prints one
JSON line. Tasks:

* ``fp_input`` / ``fs_input``: the input pipeline alone, one pass over the
  training file (featurepipe ``make_dataset`` + ``ColumnTransform``; or
  ``tf.io.parse_example`` + ``keras.utils.FeatureSpace`` in a ``tf.data`` map);
* ``fp_train``: featurepipe's pipeline + ``wide_and_deep_model`` (linear part
  on the 26 hashed C columns, 16-dim embeddings of the same columns + the 13
  z-scored I columns in the DNN; FTRL for the linear part, lazy Adam for the
  DNN, both row-sparse);
* ``keras_train``: the same architecture built by hand in plain Keras 3 (one
  ``Embedding(100_000, 16)`` and one ``Embedding(100_000, 1)`` per C column,
  ``Dense`` layers, ``keras.optimizers.Adam``) fed by ``FeatureSpace``.

Training reports examples/s over the steps after the first (the first step
traces the graph; its time is reported apart), then the log loss on the
held-out file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

__all__ = ["TASKS", "main"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

INTEGER = tuple(f"I{i}" for i in range(1, 14))
CATEGORICAL = tuple(f"C{i}" for i in range(1, 27))
BUCKETS = 100_000
DIM = 16


def _moments(path: str) -> dict[str, dict[str, float]]:
    """Mean and variance of each I column (featurepipe's local analysis; not timed)."""
    from featurepipe.analysis import analyze_records, load_requests

    requests = load_requests(
        {"format_version": 1, "analyzers": [{"analyzer": "moments", "key": k} for k in INTEGER]}
    )
    result = analyze_records(path, requests, statistics=False)
    return {k: result.moments(k) for k in INTEGER}


def fp_columns(a: dict[str, Any], *, buckets: int = BUCKETS, dim: int = DIM) -> tuple[Any, Any]:
    """featurepipe's wide (hashed) and deep (z-scored numbers + embeddings) column specs;
    also bench/keras_backends' (with its own table size and width)."""
    from featurepipe.columns import (
        ColumnSpecs,
        EmbeddingColumn,
        HashedColumn,
        Normalizer,
        NumericColumn,
    )

    moments = a["moments"]
    numeric = [
        NumericColumn(
            k,
            default_value=0.0,
            dtype="int64",
            normalizer=Normalizer(
                "z_score", mean=moments[k]["mean"], variance=moments[k]["variance"]
            ),
        )
        for k in INTEGER
    ]
    hashed = [HashedColumn(k, buckets) for k in CATEGORICAL]
    wide = ColumnSpecs(tuple(hashed))
    deep = ColumnSpecs((*numeric, *(EmbeddingColumn(h, dim) for h in hashed)))
    return wide, deep


def _fp_dataset(a: dict[str, Any], path: str, training: bool) -> Any:
    import tensorflow as tf

    from featurepipe.keras import make_dataset, merge_columns

    wide, deep = fp_columns(a)
    ds = make_dataset(
        path,
        batch_size=a["batch"],
        columns=merge_columns(wide, deep),
        label_key="label",
        label_feature=tf.io.FixedLenFeature((1,), tf.int64),
        shuffle=False,
    )
    return ds.map(lambda x, y: (x, tf.cast(y, tf.float32)))


def _fs_dataset(a: dict[str, Any], path: str, space: Any = None) -> tuple[Any, Any]:
    import keras
    import tensorflow as tf

    spec: dict[str, Any] = {k: tf.io.FixedLenFeature((), tf.string, "") for k in CATEGORICAL}
    spec.update({k: tf.io.FixedLenFeature((), tf.int64, 0) for k in INTEGER})
    spec["label"] = tf.io.FixedLenFeature((1,), tf.int64)

    def parse(serialized: Any) -> Any:
        x = tf.io.parse_example(serialized, spec)
        y = tf.cast(x.pop("label"), tf.float32)
        for k in INTEGER:
            x[k] = tf.cast(x[k], tf.float32)
        return x, y

    raw = (
        tf.data.TFRecordDataset(path)
        .batch(a["batch"])
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    )
    if space is None:
        fs = keras.utils.FeatureSpace
        features: dict[str, Any] = {
            k: fs.string_hashed(num_bins=BUCKETS, output_mode="int") for k in CATEGORICAL
        }
        features.update({k: fs.float_normalized() for k in INTEGER})
        space = fs(features=features, output_mode="dict")
        space.adapt(raw.map(lambda x, y: x))  # not timed
    ds = raw.map(lambda x, y: (space(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE), space


def _keras_model(a: dict[str, Any]) -> Any:
    import keras

    inputs = {k: keras.Input((1,), dtype="int64", name=k) for k in CATEGORICAL}
    inputs.update({k: keras.Input((1,), dtype="float32", name=k) for k in INTEGER})
    deep_parts, wide_parts = [], []
    for k in CATEGORICAL:
        deep_parts.append(keras.layers.Flatten()(keras.layers.Embedding(BUCKETS, DIM)(inputs[k])))
        wide_parts.append(keras.layers.Flatten()(keras.layers.Embedding(BUCKETS, 1)(inputs[k])))
    x = keras.layers.Concatenate()(deep_parts + [inputs[k] for k in INTEGER])
    for width in a["hidden"]:
        x = keras.layers.Dense(width, activation="relu")(x)
    deep = keras.layers.Dense(1)(x)
    logit = keras.layers.Add()([deep, *wide_parts])
    out = keras.layers.Activation("sigmoid")(logit)
    model = keras.Model(inputs, out)
    model.compile(
        optimizer=keras.optimizers.Adam(a["lr"]),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryCrossentropy(name="log_loss"), keras.metrics.AUC(name="auc")],
    )
    return model


def _fp_model(a: dict[str, Any]) -> Any:
    from featurepipe.keras import wide_and_deep_model

    wide, deep = fp_columns(a)
    return wide_and_deep_model(
        wide,
        deep,
        a["hidden"],
        linear_optimizer=a.get("linear_optimizer", "ftrl"),
        linear_learning_rate=a.get("linear_lr"),
        dnn_optimizer=a.get("dnn_optimizer", "adam"),
        dnn_learning_rate=a["lr"],
    )


def _timed_fit(model: Any, train: Any, eval_ds: Any) -> dict[str, Any]:
    import keras

    marks: list[float] = []

    class Timer(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            marks.append(time.perf_counter())

    t0 = time.perf_counter()
    model.fit(train, epochs=1, verbose=0, callbacks=[Timer()])
    steps = len(marks)
    scores = model.evaluate(eval_ds, verbose=0, return_dict=True)
    return {
        "steps": steps,
        "first_step_s": marks[0] - t0,
        "seconds": marks[-1] - marks[0],
        "eval": {k: float(v) for k, v in scores.items()},
        "trainable_params": int(sum(int(w.numpy().size) for w in model.trainable_weights)),
    }


def task_fp_input(a: dict[str, Any]) -> dict[str, Any]:
    """featurepipe make_dataset + ColumnTransform, iterated once."""
    a["moments"] = _moments(a["train"])
    ds = _fp_dataset(a, a["train"], True)
    return _iterate(ds)


def task_fs_input(a: dict[str, Any]) -> dict[str, Any]:
    """parse_example + FeatureSpace in tf.data, iterated once (adapt not timed)."""
    ds, _ = _fs_dataset(a, a["train"])
    return _iterate(ds)


def task_fp_train(a: dict[str, Any]) -> dict[str, Any]:
    """featurepipe pipeline + canned wide-and-deep, one epoch, then held-out log loss."""
    import keras

    keras.utils.set_random_seed(a.get("seed", 0))
    a["moments"] = _moments(a["train"])
    model = _fp_model(a)
    out = _timed_fit(model, _fp_dataset(a, a["train"], True), _fp_dataset(a, a["eval"], False))
    return _finish(out, a)


def task_keras_train(a: dict[str, Any]) -> dict[str, Any]:
    """Hand-built Keras 3 wide-and-deep (Embedding + Adam) fed by FeatureSpace."""
    import keras

    keras.utils.set_random_seed(a.get("seed", 0))
    train, space = _fs_dataset(a, a["train"])
    eval_ds, _ = _fs_dataset(a, a["eval"], space)
    out = _timed_fit(_keras_model(a), train, eval_ds)
    return _finish(out, a)


def _iterate(ds: Any) -> dict[str, Any]:
    it = iter(ds)
    first = next(it)  # builds the pipeline; not timed
    n = int(first[1].shape[0])
    rows = 0
    t0 = time.perf_counter()
    for _, y in it:
        rows += int(y.shape[0])
    return {"records": rows + n, "timed_records": rows, "seconds": time.perf_counter() - t0}


def _finish(out: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
    out["examples"] = (out["steps"] - 1) * a["batch"]
    out["examples_per_s"] = out["examples"] / out["seconds"] if out["seconds"] > 0 else None
    out["records"] = out["steps"] * a["batch"]
    return out


TASKS = {
    "fp_input": task_fp_input,
    "fs_input": task_fs_input,
    "fp_train": task_fp_train,
    "keras_train": task_keras_train,
}


def main(argv: list[str] | None = None) -> int:
    """Runs one task and prints its JSON report as the last stdout line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in TASKS:
        names = ",".join(TASKS)
        print(f"usage: python -m bench.train.worker {{{names}}} JSON_ARGS", file=sys.stderr)
        return 2
    report = TASKS[args[0]](json.loads(args[1]))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
