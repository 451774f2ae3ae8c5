"""The Criteo transforms of the feature-column benchmark, built four ways.

:func:`make_plan` fixes the statistics every implementation shares (computed
once, in numpy, from the same generated rows the TFRecord file holds):

* ``I1..I6``: ``log(x + 4)`` (``I2`` goes down to -3), then bucketized into 16
  buckets at quantiles of the data; the model sees a one-hot of the bucket;
* ``I7..I13``: z-score with the data's mean and variance;
* ``C1..C13``: hashed to 100,000 buckets;
* ``C14..C26``: a vocabulary of (up to) the 10,000 most frequent values, one OOV
  bucket;
* ``C1 x C2``: hashed cross into 100,000 buckets;
* every categorical column and the cross: an embedding of 16 (mean combiner).

Missing integers read as 0 (the parse default of every implementation).

The builders here turn the plan into featurepipe column specs, ``tf.feature_column``
columns, Keras 3 preprocessing layers and a ``keras.utils.FeatureSpace``; they
import TensorFlow / Keras lazily so :func:`make_plan` runs without them.

>>> plan = make_plan(3000)
>>> len(plan["boundaries"]), len(plan["moments"]), len(plan["vocabularies"])
(6, 7, 13)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bench import datagen

__all__ = [
    "BATCH_SIZE",
    "BUCKETIZED",
    "CROSS",
    "EMBEDDING_DIM",
    "HASHED",
    "HASH_BINS",
    "LOG_OFFSET",
    "NUM_BUCKETS",
    "VOCAB",
    "VOCAB_SIZE",
    "ZSCORE",
    "featurepipe_schema",
    "featurepipe_specs",
    "keras_feature_space",
    "keras_layers",
    "load_plan",
    "make_plan",
    "parse_spec_dense",
    "save_plan",
    "tf_feature_columns",
]

BATCH_SIZE = 1024
BUCKETIZED = tuple(f"I{i}" for i in range(1, 7))
ZSCORE = tuple(f"I{i}" for i in range(7, 14))
HASHED = tuple(f"C{i}" for i in range(1, 14))
VOCAB = tuple(f"C{i}" for i in range(14, 27))
CROSS = ("C1", "C2")
HASH_BINS = 100_000
VOCAB_SIZE = 10_000
NUM_BUCKETS = 16
EMBEDDING_DIM = 16
LOG_OFFSET = 4.0


def make_plan(rows: int, seed: int = 0) -> dict[str, Any]:
    """Statistics of the first ``rows`` generated rows: boundaries, moments, vocabularies.

    Args:
        rows: rows of the generated data (the benchmark file's rows).
        seed: generator seed.

    Returns:
        ``{"rows", "boundaries": {I: [...]}, "moments": {I: [mean, variance]},
        "vocabularies": {C: [str, ...]}}`` (JSON-able).
    """
    ints: dict[str, list[np.ndarray]] = {k: [] for k in (*BUCKETIZED, *ZSCORE)}
    cats: dict[str, list[np.ndarray]] = {k: [] for k in VOCAB}
    for chunk in datagen.criteo_chunks(rows, seed=seed):
        for k, parts in ints.items():
            col = chunk[k]
            parts.append(np.where(col.present, col.values, 0))
        for k, parts in cats.items():
            col = chunk[k]
            parts.append(col.values[col.present])
    qs = np.arange(1, NUM_BUCKETS) / NUM_BUCKETS
    boundaries: dict[str, list[float]] = {}
    for k in BUCKETIZED:
        x = np.log(np.concatenate(ints[k]).astype(np.float64) + LOG_OFFSET)
        # float32-representable, strictly increasing (feature columns need sorted boundaries).
        b = np.unique(np.quantile(x, qs).astype(np.float32))
        boundaries[k] = [float(v) for v in b]
    moments: dict[str, list[float]] = {}
    for k in ZSCORE:
        x = np.concatenate(ints[k]).astype(np.float64)
        moments[k] = [float(x.mean()), float(max(x.var(), 1e-12))]
    vocabularies: dict[str, list[str]] = {}
    for k in VOCAB:
        values, counts = np.unique(np.concatenate(cats[k]), return_counts=True)
        # most frequent first, ties by value: a deterministic top-k
        order = np.lexsort((values, -counts))[:VOCAB_SIZE]
        vocabularies[k] = [v.decode("ascii") for v in values[order].tolist()]
    return {"rows": rows, "seed": seed, "boundaries": boundaries, "moments": moments,
            "vocabularies": vocabularies}


def save_plan(plan: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Writes the plan as JSON."""
    Path(path).write_text(json.dumps(plan))


def load_plan(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads a plan written by :func:`save_plan`."""
    plan: dict[str, Any] = json.loads(Path(path).read_text())
    return plan


# ----------------------------------------------------------------------------- featurepipe


def featurepipe_specs(plan: Mapping[str, Any]) -> Any:
    """featurepipe ``ColumnSpecs`` of the dense model columns (bucketized, numeric, embeddings).

    >>> specs = featurepipe_specs(make_plan(2000))
    >>> len(specs), specs.is_resolved
    (40, True)
    """
    from featurepipe.columns import (
        BucketizedColumn,
        ColumnSpecs,
        CrossedColumn,
        EmbeddingColumn,
        HashedColumn,
        Normalizer,
        NumericColumn,
        VocabularyColumn,
    )

    cols: list[Any] = []
    for k in BUCKETIZED:
        src = NumericColumn(k, dtype="int64", default_value=0,
                            normalizer=Normalizer("log", offset=LOG_OFFSET))
        cols.append(BucketizedColumn(src, bin_boundaries=tuple(plan["boundaries"][k])))
    for k in ZSCORE:
        mean, var = plan["moments"][k]
        cols.append(NumericColumn(k, dtype="int64", default_value=0,
                                  normalizer=Normalizer("z_score", mean=mean, variance=var)))
    cats: list[Any] = [HashedColumn(k, num_bins=HASH_BINS) for k in HASHED]
    cats += [VocabularyColumn(k, vocabulary=tuple(plan["vocabularies"][k]), num_oov_buckets=1)
             for k in VOCAB]
    cats.append(CrossedColumn(CROSS, num_bins=HASH_BINS))
    cols += [EmbeddingColumn(c, dimension=EMBEDDING_DIM) for c in cats]
    return ColumnSpecs(tuple(cols))


def featurepipe_schema() -> Any:
    """The featurepipe schema of the Criteo features: all scalar; a missing integer reads 0,
    a missing string ``""`` (which the columns drop, as ``tf.feature_column`` does).

    >>> featurepipe_schema()["C3"].default
    ''
    """
    from featurepipe.example import FeatureSchema, Schema

    feats = [FeatureSchema("label", "int64", shape=())]
    feats += [FeatureSchema(k, "int64", shape=(), required=False, default=0)
              for k in (*BUCKETIZED, *ZSCORE)]
    feats += [FeatureSchema(k, "bytes", shape=(), required=False, default="")
              for k in (*HASHED, *VOCAB)]
    return Schema(tuple(feats))


# ----------------------------------------------------------------------------- tf.feature_column


def tf_feature_columns(plan: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
    """``tf.feature_column`` columns: ``(transform columns, dense columns for input_layer)``.

    The transform columns are what the input pipeline computes (bucketized,
    numeric, categorical ids, the cross); the dense ones wrap the categorical
    columns in ``embedding_column(dimension=16)``.
    """
    import tensorflow as tf

    fc = tf.feature_column
    transform: list[Any] = []
    dense: list[Any] = []

    def log_fn(x: Any) -> Any:
        return tf.math.log(tf.cast(x, tf.float32) + LOG_OFFSET)

    for k in BUCKETIZED:
        num = fc.numeric_column(k, dtype=tf.int64, default_value=0, normalizer_fn=log_fn)
        col = fc.bucketized_column(num, boundaries=list(plan["boundaries"][k]))
        transform.append(col)
        dense.append(col)
    for k in ZSCORE:
        mean, var = plan["moments"][k]
        std = math.sqrt(var)

        def z_fn(x: Any, mean: float = mean, std: float = std) -> Any:
            return (tf.cast(x, tf.float32) - mean) / std

        col = fc.numeric_column(k, dtype=tf.int64, default_value=0, normalizer_fn=z_fn)
        transform.append(col)
        dense.append(col)
    cats: list[Any] = [fc.categorical_column_with_hash_bucket(k, HASH_BINS) for k in HASHED]
    cats += [fc.categorical_column_with_vocabulary_list(k, plan["vocabularies"][k],
                                                        num_oov_buckets=1) for k in VOCAB]
    cats.append(fc.crossed_column(list(CROSS), HASH_BINS))
    transform += cats
    dense += [fc.embedding_column(c, EMBEDDING_DIM) for c in cats]
    return transform, dense


# ----------------------------------------------------------------------------- Keras 3


def parse_spec_dense() -> dict[str, Any]:
    """The parse spec a Keras-layers user writes: every feature dense, missing -> 0 / ``""``."""
    import tensorflow as tf

    spec: dict[str, Any] = {"label": tf.io.FixedLenFeature((), tf.int64)}
    for k in (*BUCKETIZED, *ZSCORE):
        spec[k] = tf.io.FixedLenFeature((1,), tf.int64, default_value=[0])
    for k in (*HASHED, *VOCAB):
        spec[k] = tf.io.FixedLenFeature((1,), tf.string, default_value=[b""])
    return spec


def keras_layers(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Keras 3 preprocessing layers per output: ``{name: (layer, input keys)}``."""
    import keras

    out: dict[str, Any] = {}
    for k in BUCKETIZED:
        out[k] = (keras.layers.Discretization(bin_boundaries=list(plan["boundaries"][k])), (k,))
    for k in ZSCORE:
        mean, var = plan["moments"][k]
        out[k] = (keras.layers.Normalization(mean=mean, variance=var), (k,))
    for k in HASHED:
        out[k] = (keras.layers.Hashing(num_bins=HASH_BINS), (k,))
    for k in VOCAB:
        out[k] = (keras.layers.StringLookup(vocabulary=plan["vocabularies"][k],
                                            num_oov_indices=1), (k,))
    out["_X_".join(CROSS)] = (keras.layers.HashedCrossing(num_bins=HASH_BINS), CROSS)
    return out


def keras_feature_space(plan: Mapping[str, Any]) -> Any:
    """A ``keras.utils.FeatureSpace`` with preset statistics, ``output_mode="dict"``.

    Its input is the parsed dense features with ``log(x + 4)`` already applied to
    ``I1..I6`` (FeatureSpace has no log step). FeatureSpace insists on ``adapt()``
    whenever a preprocessor *could* adapt, even one built with its vocabulary or
    boundaries (which then refuses to adapt), so the preset case sets the
    "adapted" flag the way ``adapt()`` would.
    """
    import keras
    from keras.utils import FeatureSpace

    features: dict[str, Any] = {}
    for k in BUCKETIZED:
        features[k] = FeatureSpace.feature(
            dtype="float32",
            preprocessor=keras.layers.Discretization(bin_boundaries=list(plan["boundaries"][k])),
            output_mode="int")
    for k in ZSCORE:
        mean, var = plan["moments"][k]
        features[k] = FeatureSpace.feature(
            dtype="float32", preprocessor=keras.layers.Normalization(mean=mean, variance=var),
            output_mode="float")
    for k in HASHED:
        features[k] = FeatureSpace.string_hashed(num_bins=HASH_BINS, output_mode="int")
    for k in VOCAB:
        features[k] = FeatureSpace.feature(
            dtype="string",
            preprocessor=keras.layers.StringLookup(vocabulary=plan["vocabularies"][k],
                                                   num_oov_indices=1),
            output_mode="int")
    fs = FeatureSpace(features=features,
                      crosses=[FeatureSpace.cross(CROSS, crossing_dim=HASH_BINS,
                                                  output_mode="int")],
                      output_mode="dict")
    fs._is_adapted = True  # preset statistics: nothing to adapt (see the docstring)
    return fs
