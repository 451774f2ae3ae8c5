"""One measured thing of the torch-loader benchmark (main venv), in a process of its own.

``python -m bench.torch_loader.worker IMPL '{"path": ..., "plan": ..., "workers": N}'``
builds the loader (not timed), then times one epoch of ``file -> batches of torch
tensors`` and prints one JSON line: ``{"examples", "batches", "seconds",
"cpu_seconds", "checksum"}``. ``cpu_seconds`` is user + system time of this
process and of its DataLoader workers (reaped when the epoch's iterator is
deleted, inside the timed span). IMPL:

* ``featurepipe``: ``featurepipe.torch.FeatureDataset`` (CRCs verified) in a
  ``DataLoader(batch_size=None, num_workers=N)``;
* ``tf_feature_column``: ``tf.data.TFRecordDataset -> batch -> map(tf.io.parse_example
  + the feature columns' transform)`` with a private thread pool of N threads,
  each batch to numpy and to torch tensors.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
from typing import Any

import numpy as np
import torch

from bench.torch_loader import cols

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _checksum(features: dict[str, Any]) -> dict[str, float]:
    """Per output: the sum of its values (ids or numbers), to compare the sides."""
    out = {}
    for name, v in features.items():
        t = v[0] if isinstance(v, tuple) else v
        out[name] = float(t.double().sum())
    return out


def featurepipe_specs(plan: dict[str, Any]) -> list[Any]:
    from featurepipe.columns import (
        BucketizedColumn,
        CrossedColumn,
        EmbeddingColumn,
        HashedColumn,
        Normalizer,
        NumericColumn,
        VocabularyColumn,
    )

    specs: list[Any] = []
    for k in cols.NUMERIC:
        mean, var = plan["moments"][k]
        specs.append(
            NumericColumn(
                k,
                dtype="int64",
                default_value=0,
                normalizer=Normalizer("z_score", mean=mean, variance=var),
            )
        )
    for k in cols.BUCKETIZED:
        src = NumericColumn(
            k, dtype="int64", default_value=0, normalizer=Normalizer("log", offset=cols.LOG_OFFSET)
        )
        specs.append(BucketizedColumn(src, bin_boundaries=tuple(plan["boundaries"][k])))
    specs += [HashedColumn(k, num_bins=cols.HASH_BINS) for k in cols.HASHED]
    specs += [
        VocabularyColumn(k, vocabulary=tuple(plan["vocabularies"][k]), num_oov_buckets=1)
        for k in cols.VOCAB
    ]
    specs.append(CrossedColumn(cols.CROSS, num_bins=cols.HASH_BINS))
    specs += [
        EmbeddingColumn(HashedColumn(k, num_bins=cols.HASH_BINS), dimension=16)
        for k in cols.EMB_HASHED
    ]
    specs += [
        EmbeddingColumn(
            VocabularyColumn(k, vocabulary=tuple(plan["vocabularies"][k]), num_oov_buckets=1),
            dimension=16,
        )
        for k in cols.EMB_VOCAB
    ]
    return specs


def run_featurepipe(a: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    from featurepipe.torch import FeatureDataset

    ds = FeatureDataset(
        a["path"],
        featurepipe_specs(plan),
        batch_size=cols.BATCH_SIZE,
        label_key="label",
        ids="offsets",
    )
    dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=a["workers"])
    examples = batches = 0
    checksum: dict[str, float] = {}
    t0, c0 = time.perf_counter(), _cpu()
    it = iter(dl)
    for batch in it:
        features, label = batch[0], batch[1]
        examples += int(label.shape[0])
        batches += 1
        if batches == 1:
            checksum = _checksum(features)
    del it  # joins the workers: their CPU time is counted
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    return {
        "examples": examples,
        "batches": batches,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "checksum": checksum,
    }


def run_tf_feature_column(a: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """tf.data + ``tf.feature_column`` without Keras: ``FeatureTransformationCache`` through
    ``feature_column_v2._transform_features_v2`` (what ``DenseFeatures`` runs; Keras 3 has no
    ``input_layer``), with a state manager so the vocabulary tables are made once."""
    import tensorflow as tf
    from tensorflow.python.feature_column import feature_column_v2 as fcv2

    fc = tf.feature_column

    def log_fn(x: Any) -> Any:
        return tf.math.log(tf.cast(x, tf.float32) + cols.LOG_OFFSET)

    columns: list[Any] = []
    for k in cols.NUMERIC:
        mean, var = plan["moments"][k]
        std = math.sqrt(var)

        def z_fn(x: Any, mean: float = mean, std: float = std) -> Any:
            return (tf.cast(x, tf.float32) - mean) / std

        columns.append(fc.numeric_column(k, dtype=tf.int64, default_value=0, normalizer_fn=z_fn))
    for k in cols.BUCKETIZED:
        num = fc.numeric_column(k, dtype=tf.int64, default_value=0, normalizer_fn=log_fn)
        columns.append(fc.bucketized_column(num, boundaries=list(plan["boundaries"][k])))
    columns += [fc.categorical_column_with_hash_bucket(k, cols.HASH_BINS) for k in cols.HASHED]
    columns += [
        fc.categorical_column_with_vocabulary_list(k, plan["vocabularies"][k], num_oov_buckets=1)
        for k in cols.VOCAB
    ]
    columns.append(fc.crossed_column(list(cols.CROSS), cols.HASH_BINS))
    columns += [fc.categorical_column_with_hash_bucket(k, cols.HASH_BINS) for k in cols.EMB_HASHED]
    columns += [
        fc.categorical_column_with_vocabulary_list(k, plan["vocabularies"][k], num_oov_buckets=1)
        for k in cols.EMB_VOCAB
    ]
    names = [
        *cols.NUMERIC,
        *(f"{k}_bucketized" for k in cols.BUCKETIZED),
        *cols.HASHED,
        *cols.VOCAB,
        "_X_".join(cols.CROSS),
        *(f"{k}_embedding" for k in (*cols.EMB_HASHED, *cols.EMB_VOCAB)),
    ]
    spec = fc.make_parse_example_spec(columns)
    spec["label"] = tf.io.FixedLenFeature((), tf.int64)
    state = fcv2._StateManagerImpl(layer=None, trainable=False)
    bucketized = {f"{k}_bucketized" for k in cols.BUCKETIZED}

    def fn(serialized: Any) -> Any:
        parsed = tf.io.parse_example(serialized, spec)
        label = parsed.pop("label")
        out = fcv2._transform_features_v2(parsed, columns, state)
        result = {}
        for name, col in zip(names, columns, strict=True):
            v = out[col]
            if isinstance(v, tf.SparseTensor):
                r = tf.RaggedTensor.from_sparse(v)
                result[name] = (r.values, r.row_splits[:-1])
            elif name in bucketized:  # one bucket id per row, as ragged ids
                n = tf.shape(v, out_type=tf.int64)[0]
                result[name] = (tf.reshape(v, [-1]), tf.range(n))
            else:
                result[name] = v
        return result, label

    opts = tf.data.Options()
    opts.threading.private_threadpool_size = a["workers"]
    opts.autotune.enabled = False

    def dataset() -> Any:
        ds = tf.data.TFRecordDataset(a["path"]).batch(cols.BATCH_SIZE)
        ds = ds.map(fn, num_parallel_calls=a["workers"], deterministic=True)
        return ds.prefetch(2).with_options(opts)

    fn(next(iter(tf.data.TFRecordDataset(a["path"]).batch(4))))  # make the tables eagerly, once
    ds = dataset()

    def to_torch(x: Any) -> Any:
        if isinstance(x, tuple):
            return tuple(torch.from_numpy(t.numpy()) for t in x)
        return torch.from_numpy(x.numpy())

    examples = batches = 0
    checksum: dict[str, float] = {}
    t0, c0 = time.perf_counter(), _cpu()
    for features, label in ds:
        tensors = {k: to_torch(v) for k, v in features.items()}
        label_t = torch.from_numpy(label.numpy())
        examples += int(label_t.shape[0])
        batches += 1
        if batches == 1:
            checksum = _checksum(tensors)
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    return {
        "examples": examples,
        "batches": batches,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "checksum": checksum,
    }


IMPLS = {"featurepipe": run_featurepipe, "tf_feature_column": run_tf_feature_column}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in IMPLS:
        print(f"usage: python -m bench.torch_loader.worker {'|'.join(IMPLS)} JSON", file=sys.stderr)
        return 2
    a = json.loads(args[1])
    with open(a["plan"]) as f:
        plan = json.load(f)
    np.random.seed(0)
    torch.manual_seed(0)
    print(json.dumps(IMPLS[args[0]](a, plan)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
