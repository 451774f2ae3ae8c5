"""One measured thing of the feature-column benchmark, run in a process of its own.

``python -m bench.columns.worker TASK '{"path": ..., "plan": ...}'`` builds the
pipeline or model of TASK (not timed), runs it, and prints one JSON line:
``{"examples": N, "batches": B, "seconds": S, "cpu_seconds": U, ...}``; ``seconds``
(wall) and ``cpu_seconds`` (user + system of every thread of the process) cover the
timed loop only.

Input-pipeline tasks iterate one full epoch of ``file -> batches of model inputs``
(the tf.data graph is built and traced before the clock starts). Model tasks
cache up to ``cache_batches`` batches in memory first and then time ``steps``
forward passes in a ``tf.function``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import tensorflow as tf

from bench.columns import plan as cplan

__all__ = ["MODELS", "PIPELINES", "main"]

AUTOTUNE = tf.data.AUTOTUNE


def _label_feature() -> Any:
    return tf.io.FixedLenFeature((), tf.int64)


SHUFFLE_BUFFER = 10_000


def _batched(path: str, a: dict[str, Any] | None = None) -> tf.data.Dataset:
    """Batches of serialized records; with ``a["shuffle"]`` through a seeded shuffle buffer."""
    ds = tf.data.TFRecordDataset(path)
    if a is not None and a.get("shuffle"):
        ds = ds.shuffle(SHUFFLE_BUFFER, seed=0, reshuffle_each_iteration=True)
    return ds.batch(cplan.BATCH_SIZE)


def _finish(ds: tf.data.Dataset, fn: Callable[[Any], Any]) -> tf.data.Dataset:
    return ds.map(fn, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)


# ----------------------------------------------------------------------------- pipelines


def ds_featurepipe(a: dict[str, Any], plan: dict[str, Any]) -> tf.data.Dataset:
    """featurepipe ``make_dataset(columns=..., apply_columns=True)``."""
    from featurepipe.keras import make_dataset

    return make_dataset(a["path"], batch_size=cplan.BATCH_SIZE,
                        columns=cplan.featurepipe_specs(plan),
                        label_key="label", label_feature=_label_feature(), shuffle=False,
                        apply_columns=True)


def ds_featurepipe_parse(a: dict[str, Any], plan: dict[str, Any]) -> tf.data.Dataset:
    """featurepipe ``make_dataset(apply_columns=False)``: the parse alone (the floor)."""
    from featurepipe.keras import make_dataset

    return make_dataset(a["path"], batch_size=cplan.BATCH_SIZE,
                        columns=cplan.featurepipe_specs(plan),
                        label_key="label", label_feature=_label_feature(), shuffle=False,
                        apply_columns=False)


def ds_featurepipe_schema(a: dict[str, Any], plan: dict[str, Any]) -> tf.data.Dataset:
    """featurepipe ``make_dataset(schema=..., columns=..., apply_columns=True)`` with a schema
    that declares the Criteo features scalar (``shape=()``, missing -> ``""`` / 0): dense parse;
    ``""`` is dropped as ``tf.feature_column`` drops it, so the ids are the same."""
    from featurepipe.keras import make_dataset

    shuffle = bool(a.get("shuffle"))
    return make_dataset(a["path"], batch_size=cplan.BATCH_SIZE, schema=cplan.featurepipe_schema(),
                        columns=cplan.featurepipe_specs(plan), label_key="label", shuffle=shuffle,
                        shuffle_buffer_size=SHUFFLE_BUFFER, seed=0 if shuffle else None,
                        apply_columns=True)


def ds_tf_feature_column(a: dict[str, Any], plan: dict[str, Any]) -> tf.data.Dataset:
    """``tf.feature_column`` transforms (ids, bucket ids, normalized numbers) in a tf.data map.

    TF 2.21 without ``tf_keras`` has no ``DenseFeatures`` layer; the transform is
    the same ``FeatureTransformationCache`` that ``input_layer`` / ``DenseFeatures``
    run (``_transform_features_v2``), with a state manager so the vocabulary
    tables are made once. Outputs stay as feature columns leave them (categorical
    ids as ``SparseTensor``).
    """
    from tensorflow.python.feature_column import feature_column_v2 as fcv2

    cols, _ = cplan.tf_feature_columns(plan)
    spec = tf.feature_column.make_parse_example_spec(cols)
    spec["label"] = _label_feature()
    state = fcv2._StateManagerImpl(layer=None, trainable=False)

    def fn(serialized: Any) -> Any:
        parsed = tf.io.parse_example(serialized, spec)
        label = parsed.pop("label")
        out = fcv2._transform_features_v2(parsed, cols, state)
        return {c.name: v for c, v in out.items()}, label

    fn(next(iter(_batched(a["path"]).take(1))))  # make the tables eagerly, once
    return _finish(_batched(a["path"], a), fn)


def ds_keras_layers(a: dict[str, Any], plan: dict[str, Any]) -> tf.data.Dataset:
    """Keras 3 ``Discretization`` / ``Normalization`` / ``Hashing`` / ``StringLookup`` /
    ``HashedCrossing`` in a tf.data map, on densely parsed features."""
    spec = cplan.parse_spec_dense()
    layers = cplan.keras_layers(plan)
    bucketized = set(cplan.BUCKETIZED)

    def fn(serialized: Any) -> Any:
        parsed = tf.io.parse_example(serialized, spec)
        label = parsed.pop("label")
        out = {}
        for name, (layer, keys) in layers.items():
            if len(keys) > 1:
                out[name] = layer(tuple(parsed[k] for k in keys))
            elif name in bucketized:
                out[name] = layer(tf.math.log(tf.cast(parsed[name], tf.float32) + cplan.LOG_OFFSET))
            elif parsed[name].dtype == tf.int64:
                out[name] = layer(tf.cast(parsed[name], tf.float32))
            else:
                out[name] = layer(parsed[name])
        return out, label

    return _finish(_batched(a["path"], a), fn)


def ds_feature_space(a: dict[str, Any], plan: dict[str, Any]) -> tf.data.Dataset:
    """``keras.utils.FeatureSpace`` (``output_mode="dict"``) in a tf.data map."""
    spec = cplan.parse_spec_dense()
    fs = cplan.keras_feature_space(plan)
    bucketized = set(cplan.BUCKETIZED)

    def prepare(parsed: dict[str, Any]) -> dict[str, Any]:
        feats = {}
        for k, v in parsed.items():
            if k in bucketized:
                feats[k] = tf.math.log(tf.cast(v, tf.float32) + cplan.LOG_OFFSET)
            elif v.dtype == tf.int64:
                feats[k] = tf.cast(v, tf.float32)
            else:
                feats[k] = v
        return feats

    def fn(serialized: Any) -> Any:
        parsed = tf.io.parse_example(serialized, spec)
        label = parsed.pop("label")
        return fs(prepare(parsed)), label

    first = next(iter(_batched(a["path"]).take(1)))
    parsed = tf.io.parse_example(first, spec)
    parsed.pop("label")
    fs(prepare(parsed))  # builds the sub-layers eagerly
    return _finish(_batched(a["path"], a), fn)


def _no_autotune(
    build: Callable[[dict[str, Any], dict[str, Any]], tf.data.Dataset],
) -> Callable[[dict[str, Any], dict[str, Any]], tf.data.Dataset]:
    """The same pipeline with ``tf.data.Options().autotune.enabled = False``.

    featurepipe's in-order path sets this option itself (nothing there to tune;
    with autotuning on, deleting an iterator waited up to ~300 ms for tf.data's
    tuning thread on the 2-core VM). A peer gets the same option as a variant of
    its own, so that the comparison is with each peer at its better setting:
    ``num_parallel_calls=AUTOTUNE`` then means one call per core.
    """

    def wrapped(a: dict[str, Any], plan: dict[str, Any]) -> tf.data.Dataset:
        opts = tf.data.Options()
        opts.autotune.enabled = False
        return build(a, plan).with_options(opts)

    wrapped.__doc__ = f"{build.__doc__}\n\nWith autotuning off."
    return wrapped


PIPELINES: dict[str, Callable[[dict[str, Any], dict[str, Any]], tf.data.Dataset]] = {
    "featurepipe": ds_featurepipe,
    "featurepipe_schema": ds_featurepipe_schema,
    "featurepipe_parse": ds_featurepipe_parse,
    "tf_feature_column": ds_tf_feature_column,
    "keras_layers": ds_keras_layers,
    "feature_space": ds_feature_space,
    "tf_feature_column_no_autotune": _no_autotune(ds_tf_feature_column),
    "keras_layers_no_autotune": _no_autotune(ds_keras_layers),
    "feature_space_no_autotune": _no_autotune(ds_feature_space),
}


def _checksum(x: Any) -> float:
    """A cheap sum over a batch's outputs, so no output goes unused."""
    total = 0.0
    for v in tf.nest.flatten(x, expand_composites=True):
        if v.dtype in (tf.int64, tf.int32, tf.float32, tf.float64):
            total += float(tf.reduce_sum(tf.cast(v, tf.float64)))
    return total


def run_pipeline(a: dict[str, Any]) -> dict[str, Any]:
    """One epoch of a pipeline; examples/s over the timed epoch."""
    plan = cplan.load_plan(a["plan"])
    ds = PIPELINES[a["impl"]](a, plan)
    examples = batches = 0
    checksum = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    for features, label in ds:
        examples += int(label.shape[0])
        batches += 1
        if batches == 1:
            checksum = _checksum(features)  # one batch: outputs are real, cost is tiny
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    first = next(iter(ds.take(1)))[0]
    kinds = sorted({type(v).__name__ for v in first.values()})
    return {"examples": examples, "batches": batches, "seconds": seconds,
            "cpu_seconds": cpu_seconds, "checksum_first_batch": checksum, "outputs": len(first),
            "output_types": kinds}


# ----------------------------------------------------------------------------- model side


def _cache(ds: tf.data.Dataset, n: int) -> list[Any]:
    return [x for x, _ in ds.take(n)]


def _time_steps(fn: Callable[[Any], Any], batches: list[Any], steps: int) -> dict[str, Any]:
    out = fn(batches[0])  # trace + warm up
    width = int(out.shape[-1])
    for b in batches[1:3]:
        fn(b)
    t0, c0 = time.perf_counter(), time.process_time()
    acc = None
    for i in range(steps):
        acc = fn(batches[i % len(batches)])
    float(tf.reduce_sum(acc))  # wait for the last result
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    examples = sum(int(tf.nest.flatten(batches[i % len(batches)])[0].shape[0])
                   for i in range(steps))
    return {"examples": examples, "batches": steps, "seconds": seconds,
            "cpu_seconds": cpu_seconds, "width": width,
            "ms_per_batch": 1000 * seconds / steps}


def model_featurepipe(a: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """featurepipe ``DenseFeatures`` (embeddings of 16, one-hot buckets, concat) on
    ``ColumnTransform`` outputs, in a ``tf.function``."""
    from featurepipe.keras import DenseFeatures

    batches = _cache(ds_featurepipe(a, plan), a["cache_batches"])
    layer = DenseFeatures(cplan.featurepipe_specs(plan))
    return _time_steps(tf.function(layer), batches, a["steps"])


def model_featurepipe_preprocess(a: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """featurepipe ``DenseFeatures(preprocess=True)`` on parsed features: transform + embeddings
    in one ``tf.function`` (what ``input_layer`` does)."""
    from featurepipe.keras import DenseFeatures

    batches = _cache(ds_featurepipe_parse(a, plan), a["cache_batches"])
    layer = DenseFeatures(cplan.featurepipe_specs(plan), preprocess=True,
                          dense_keys=(*cplan.BUCKETIZED, *cplan.ZSCORE))
    return _time_steps(tf.function(layer), batches, a["steps"])


def model_tf_input_layer(a: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """``tf.compat.v1.feature_column.input_layer`` on parsed features in a ``tf.function``
    (``make_template`` keeps its embedding variables across calls)."""
    _, dense = cplan.tf_feature_columns(plan)
    spec = tf.feature_column.make_parse_example_spec(dense)
    ds = _finish(_batched(a["path"]), lambda s: (tf.io.parse_example(s, spec), 0))
    batches = _cache(ds, a["cache_batches"])
    template = tf.compat.v1.make_template(
        "input_layer", lambda f: tf.compat.v1.feature_column.input_layer(f, dense))
    return _time_steps(tf.function(template), batches, a["steps"])


def model_keras_embeddings(a: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """Keras 3 ``Embedding`` (16) per id output of the Keras-layers pipeline, one-hot buckets,
    concat, in a ``tf.function``: the same model-side work without featurepipe."""
    import keras

    batches = _cache(ds_keras_layers(a, plan), a["cache_batches"])
    sizes = dict.fromkeys(cplan.HASHED, cplan.HASH_BINS)
    sizes.update({k: len(plan["vocabularies"][k]) + 1 for k in cplan.VOCAB})
    sizes["_X_".join(cplan.CROSS)] = cplan.HASH_BINS
    embeddings = {k: keras.layers.Embedding(n, cplan.EMBEDDING_DIM) for k, n in sizes.items()}
    depth = {k: len(plan["boundaries"][k]) + 1 for k in cplan.BUCKETIZED}

    def forward(x: dict[str, Any]) -> Any:
        parts = []
        for k in sorted(x):
            if k in embeddings:
                parts.append(keras.ops.reshape(embeddings[k](x[k]), (-1, cplan.EMBEDDING_DIM)))
            elif k in depth:
                parts.append(keras.ops.one_hot(keras.ops.reshape(x[k], (-1,)), depth[k]))
            else:
                parts.append(keras.ops.cast(x[k], "float32"))
        return keras.ops.concatenate(parts, axis=-1)

    return _time_steps(tf.function(forward), batches, a["steps"])


MODELS: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]] = {
    "featurepipe": model_featurepipe,
    "featurepipe_preprocess": model_featurepipe_preprocess,
    "tf_input_layer": model_tf_input_layer,
    "keras_embeddings": model_keras_embeddings,
}


def run_model(a: dict[str, Any]) -> dict[str, Any]:
    """Model-side forward passes per batch."""
    plan = cplan.load_plan(a["plan"])
    return MODELS[a["impl"]](a, plan)


def _iter_tasks() -> Iterator[str]:
    yield from ("pipeline", "model")


def main(argv: list[str] | None = None) -> int:
    """``worker pipeline|model JSON``: runs it and prints one JSON line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in set(_iter_tasks()):
        print("usage: python -m bench.columns.worker pipeline|model JSON", file=sys.stderr)
        return 2
    a = json.loads(args[1])
    tf.random.set_seed(0)
    np.random.seed(0)
    report = run_pipeline(a) if args[0] == "pipeline" else run_model(a)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
