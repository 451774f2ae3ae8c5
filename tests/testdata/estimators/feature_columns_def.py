"""The tf.feature_column code of the Estimator fixtures: one function per case.

``make_fixtures.py`` (TensorFlow 2.15 + tensorflow-estimator 2.15) trains the
Estimators with exactly these columns, and the migration tools read them back
(``featurepipe migrate columns feature_columns_def.py:linear_binary``), so the
module must import and run under the TensorFlow of the dev venv (2.21) too:
only ``tf.feature_column`` is used, imported inside the functions so that
importing this module (pytest's doctest collection) needs no TensorFlow.

Single-model cases (``linear_*``, ``dnn_*``, ``v1_linear_binary``) return the
list of columns passed as ``feature_columns``. Combined cases
(``dnn_linear_*``, ``v1_dnn_linear_multiclass``) return a dict with the two
constructor arguments, ``{"linear_feature_columns": [...],
"dnn_feature_columns": [...]}``; ``<case>_linear()`` and ``<case>_dnn()``
return the two lists alone.

Raw features of ``data/*.tfrecord`` (see ``make_fixtures.py``):

============  ========  ===================================================
feature       kind      notes
============  ========  ===================================================
age           float     always present
dense2        float[2]  sometimes missing (default [0.0, 0.0])
color         bytes     red/green/blue/purple(OOV); sometimes missing
city          bytes     1-3 values from data/cities.txt + OOV; maybe missing
user          bytes     u0..u59; sometimes missing
item_id       int64     0..99; 1-2 values
prev_item     int64     0..99; sometimes missing
day           int64     0..6, 9 (out of range -> default 0); maybe missing
tags          bytes     0-3 of sports/news/music/film/food/art, with
tag_weights   float     one weight per tag
weight        float     example weight (weight_column)
label         int64     binary label
label3        bytes     "low" / "mid" / "high" (multiclass, label_vocabulary)
target        float     regression target
============  ========  ===================================================
"""

from __future__ import annotations

import os
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
CITIES_FILE = os.path.join(HERE, "data", "cities.txt")

AGE_BOUNDARIES = [25.0, 35.0, 50.0, 65.0]
COLORS = ["red", "green", "blue"]
TAGS = ["sports", "news", "music", "film", "food", "art"]


def _fc() -> Any:
    import tensorflow as tf

    return tf.feature_column


# ---- building blocks (fresh objects on every call) -------------------------


def _age() -> Any:
    return _fc().numeric_column("age")


def _dense2() -> Any:
    return _fc().numeric_column("dense2", shape=(2,), default_value=(0.0, 0.0))


def _age_buckets() -> Any:
    return _fc().bucketized_column(_age(), boundaries=AGE_BOUNDARIES)


def _color() -> Any:
    # vocabulary list with default_value: OOV strings -> id 0 ("red")
    return _fc().categorical_column_with_vocabulary_list("color", COLORS, default_value=0)


def _city() -> Any:
    # vocabulary FILE with 2 OOV buckets (8 cities -> ids 0..7, OOV -> 8..9)
    return _fc().categorical_column_with_vocabulary_file(
        "city", CITIES_FILE, vocabulary_size=8, num_oov_buckets=2
    )


def _user() -> Any:
    return _fc().categorical_column_with_hash_bucket("user", hash_bucket_size=20)


def _item(key: str = "item_id") -> Any:
    import tensorflow as tf

    return _fc().categorical_column_with_hash_bucket(key, hash_bucket_size=16, dtype=tf.int64)


def _day() -> Any:
    return _fc().categorical_column_with_identity("day", num_buckets=7, default_value=0)


def _shared(keys: list[str], dimension: int, combiner: str) -> list[Any]:
    """tf.feature_column.shared_embeddings over hashed int64 columns.

    TensorFlow refuses shared embeddings under eager execution ("not supported
    when eager execution is enabled"), so, as TF2 Estimator users had to, the
    columns are made inside a throwaway graph; the Estimator makes the shared
    table in its own graph later.
    """
    import tensorflow as tf

    with tf.Graph().as_default():
        return list(
            _fc().shared_embeddings(
                [_item(k) for k in keys], dimension=dimension, combiner=combiner
            )
        )


def _tags_weighted() -> Any:
    tags = _fc().categorical_column_with_vocabulary_list("tags", TAGS)
    return _fc().weighted_categorical_column(tags, "tag_weights")


def _age_x_color() -> Any:
    # cross of a bucketized column and a raw string feature
    return _fc().crossed_column([_age_buckets(), "color"], hash_bucket_size=24)


def _user_x_day() -> Any:
    return _fc().crossed_column(["user", _day()], hash_bucket_size=12)


# ---- the cases -------------------------------------------------------------


def linear_binary() -> list[Any]:
    """V2 LinearClassifier (binary, weight_column): every categorical kind."""
    return [
        _age(),
        _dense2(),
        _age_buckets(),
        _color(),
        _city(),
        _user(),
        _item(),
        _day(),
        _tags_weighted(),
        _age_x_color(),
    ]


def linear_regressor() -> list[Any]:
    """V2 LinearRegressor (loss_reduction SUM, sparse_combiner "mean")."""
    return [_age(), _dense2(), _city(), _day(), _user_x_day(), _tags_weighted()]


def dnn_multiclass() -> list[Any]:
    """V2 DNNClassifier, 3 string classes; embeddings with the three combiners."""
    fc = _fc()
    return [
        _age(),
        _dense2(),
        fc.indicator_column(_color()),
        fc.indicator_column(_age_buckets()),
        fc.embedding_column(_city(), dimension=3, combiner="mean"),
        fc.embedding_column(_user(), dimension=2, combiner="sqrtn"),
        fc.embedding_column(_tags_weighted(), dimension=2, combiner="sum"),
    ]


def dnn_regressor() -> list[Any]:
    """V2 DNNRegressor (batch_norm, weight_column) with shared embeddings."""
    fc = _fc()
    shared = _shared(["item_id", "prev_item"], dimension=3, combiner="mean")
    return [
        _age(),
        _dense2(),
        fc.indicator_column(_day()),
        fc.embedding_column(_city(), dimension=2),
        *shared,
    ]


def dnn_linear_binary_linear() -> list[Any]:
    return [_age_buckets(), _age_x_color(), _user(), _city()]


def dnn_linear_binary_dnn() -> list[Any]:
    fc = _fc()
    shared = _shared(["item_id", "prev_item"], dimension=2, combiner="sqrtn")
    return [
        _age(),
        fc.indicator_column(_color()),
        fc.embedding_column(_tags_weighted(), 2),
        *shared,
    ]


def dnn_linear_binary() -> dict[str, list[Any]]:
    """V2 DNNLinearCombinedClassifier (binary, dropout, shared embeddings)."""
    return {
        "linear_feature_columns": dnn_linear_binary_linear(),
        "dnn_feature_columns": dnn_linear_binary_dnn(),
    }


def dnn_linear_regressor_linear() -> list[Any]:
    return [_dense2(), _day(), _user_x_day(), _tags_weighted()]


def dnn_linear_regressor_dnn() -> list[Any]:
    fc = _fc()
    return [_age(), _dense2(), fc.embedding_column(_city(), 2), fc.indicator_column(_day())]


def dnn_linear_regressor() -> dict[str, list[Any]]:
    """V2 DNNLinearCombinedRegressor (weight_column)."""
    return {
        "linear_feature_columns": dnn_linear_regressor_linear(),
        "dnn_feature_columns": dnn_linear_regressor_dnn(),
    }


def v1_linear_binary() -> list[Any]:
    """tf.compat.v1.estimator.LinearClassifier (binary)."""
    return [_age(), _dense2(), _age_buckets(), _color(), _city(), _item(), _age_x_color()]


def v1_dnn_linear_multiclass_linear() -> list[Any]:
    return [_age_buckets(), _color(), _day(), _age_x_color()]


def v1_dnn_linear_multiclass_dnn() -> list[Any]:
    import tensorflow as tf

    fc = _fc()
    # the TF1 shared embeddings (feature_column.py, not _v2): with them the
    # Estimator builds its DNN input with the TF1 input_layer code path. Made in
    # a throwaway graph, like _shared() (refused under eager execution).
    with tf.Graph().as_default():
        shared = tf.compat.v1.feature_column.shared_embedding_columns(
            [_item("item_id"), _item("prev_item")], dimension=2
        )
    return [
        _age(),
        _dense2(),
        fc.embedding_column(_city(), 3, combiner="sqrtn"),
        fc.embedding_column(_user(), 2),
        fc.indicator_column(_tags_weighted()),
        *shared,
    ]


def v1_dnn_linear_multiclass() -> dict[str, list[Any]]:
    """tf.compat.v1.estimator.DNNLinearCombinedClassifier (3 string classes)."""
    return {
        "linear_feature_columns": v1_dnn_linear_multiclass_linear(),
        "dnn_feature_columns": v1_dnn_linear_multiclass_dnn(),
    }


CASES = [
    "linear_binary",
    "linear_regressor",
    "dnn_multiclass",
    "dnn_regressor",
    "dnn_linear_binary",
    "dnn_linear_regressor",
    "v1_linear_binary",
    "v1_dnn_linear_multiclass",
]
