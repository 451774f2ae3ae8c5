"""An Estimator's feature columns with every tf.feature_column kind (test input).

Imported by the tests the way `featurepipe migrate columns fc_all.py:build_columns`
imports a user's module. Relative vocabulary file paths ("colors.txt") are opened
from the working directory, as TensorFlow opens them: the tests run from the
directory the fixture writes them to.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

fc = tf.feature_column

VOCAB = ["red", "green", "blue", "", "é", "-1"]
INT_VOCAB = [10, 2, 0, -5, 7]


def categorical() -> dict[str, Any]:
    """The categorical columns, by a short name the tests use."""
    x = fc.numeric_column("x")
    return {
        "bucketized": fc.bucketized_column(x, [-1.0, 0.0, 0.5, 2.0]),
        "vocab_oov": fc.categorical_column_with_vocabulary_list("s", VOCAB, num_oov_buckets=3),
        "vocab_default": fc.categorical_column_with_vocabulary_list("s", VOCAB, default_value=2),
        "vocab_int": fc.categorical_column_with_vocabulary_list("h_int", INT_VOCAB, dtype=tf.int64),
        "vocab_file": fc.categorical_column_with_vocabulary_file(
            "color", "colors.txt", num_oov_buckets=2
        ),
        "vocab_file_size": fc.categorical_column_with_vocabulary_file(
            "color", "colors.txt", vocabulary_size=3, default_value=1
        ),
        "hash_str": fc.categorical_column_with_hash_bucket("s", 50),
        "hash_int": fc.categorical_column_with_hash_bucket("h_int", 20, dtype=tf.int64),
        "identity": fc.categorical_column_with_identity("j", 5),
        "identity_default": fc.categorical_column_with_identity("k", 6, default_value=0),
        "crossed": fc.crossed_column(["a", "b"], 100),
        "crossed_nested": fc.crossed_column(
            [fc.crossed_column(["a", "b"], 50), fc.bucketized_column(x, [0.0, 1.0]), "s"],
            1000,
            hash_key=123456789,
        ),
        "weighted": fc.weighted_categorical_column(
            fc.categorical_column_with_vocabulary_list("t", ["p", "q", "r"]), "tw"
        ),
    }


def build_columns() -> list[Any]:
    """One column of every kind (names are unique, as the Estimator requires)."""
    c = categorical()
    a_ids = fc.categorical_column_with_vocabulary_list("a", ["a0", "a1", "a2", "a3"])
    b_ids = fc.categorical_column_with_vocabulary_list("b", ["b0", "b1", "b2", "b3"])
    shared = fc.shared_embeddings([a_ids, b_ids], 3, combiner="sum", max_norm=2.0)
    return [
        fc.numeric_column("x"),
        fc.numeric_column("v", shape=(2,)),
        fc.numeric_column("n", dtype=tf.int64, default_value=7),
        fc.numeric_column("m", default_value=-1.5),
        c["bucketized"],
        fc.indicator_column(c["vocab_oov"]),
        fc.embedding_column(c["vocab_default"], 4),
        fc.indicator_column(c["vocab_int"]),
        fc.indicator_column(c["vocab_file"]),
        fc.embedding_column(
            c["vocab_file_size"],
            2,
            combiner="sqrtn",
            initializer=tf.compat.v1.random_uniform_initializer(-0.1, 0.1, seed=3),
        ),
        c["hash_str"],
        c["hash_int"],
        c["identity"],
        fc.indicator_column(c["identity_default"]),
        c["crossed"],
        c["crossed_nested"],
        fc.indicator_column(c["weighted"]),
        fc.embedding_column(c["weighted"], 3, combiner="mean", max_norm=1.0, trainable=False),
        *shared,
    ]


def wide_and_deep() -> dict[str, list[Any]]:
    """A DNNLinearCombined Estimator's two lists (x is in both)."""
    c = categorical()
    return {
        "linear": [c["crossed"], c["hash_str"], fc.numeric_column("x")],
        "dnn": [fc.numeric_column("x"), fc.embedding_column(c["vocab_oov"], 4)],
    }
