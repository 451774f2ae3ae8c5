"""tf.feature_column columns -> featurepipe specs: every kind, the names, the refusals.

Real TensorFlow 2.21 columns (built by tests/migrate/fc_all.py as a user's module
would build them); the ids they give are compared in test_check.py.
"""

from __future__ import annotations

import json
import pathlib
import warnings
from typing import Any

import numpy as np
import pytest

from featurepipe.columns import (
    BucketizedColumn,
    ColumnSpecs,
    CrossedColumn,
    EmbeddingColumn,
    HashedColumn,
    IdentityColumn,
    NumericColumn,
    VocabularyColumn,
    WeightedColumn,
)
from featurepipe.errors import ConfigError
from featurepipe.migrate import (
    MigratedColumns,
    MigrationWarning,
    columns_from_feature_columns,
    load_feature_columns,
    migrate_feature_columns,
    read_vocabulary_file,
)
from tests.migrate.conftest import COLORS, FC_ALL, tf

pytestmark = pytest.mark.tf

fc = tf.feature_column


def _fc_all() -> Any:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("fc_all_for_tests", FC_ALL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fc_all_for_tests"] = module
    spec.loader.exec_module(module)
    return module


FC = _fc_all()


def _one(col: Any, **kwargs: Any) -> Any:
    (spec,) = columns_from_feature_columns([col], **kwargs)
    return spec


def test_every_kind_keeps_tensorflows_name_and_order(in_workdir: pathlib.Path) -> None:
    cols = load_feature_columns(f"{FC_ALL}:build_columns")
    specs = columns_from_feature_columns(cols)
    assert [s.name for s in specs] == [c.name for c in cols]
    kinds = {type(s).__name__ for s in specs}
    assert kinds == {
        "NumericColumn",
        "BucketizedColumn",
        "IndicatorColumn",
        "EmbeddingColumn",
        "HashedColumn",
        "IdentityColumn",
        "CrossedColumn",
    }
    # nested kinds
    inner = {type(s.categorical_column).__name__ for s in specs if hasattr(s, "categorical_column")}
    assert {"VocabularyColumn", "WeightedColumn", "IdentityColumn"} <= inner
    # and the JSON form reads back to the same specs
    assert ColumnSpecs.from_json(specs.to_json()) == specs


def test_numeric_shape_default_and_dtype() -> None:
    assert _one(fc.numeric_column("x")) == NumericColumn("x")
    assert _one(fc.numeric_column("v", shape=(2, 3), default_value=0.5)) == NumericColumn(
        "v", shape=(2, 3), default_value=0.5
    )
    assert _one(fc.numeric_column("n", dtype=tf.int64, default_value=7)) == NumericColumn(
        "n", default_value=7.0, dtype="int64"
    )
    assert _one(fc.numeric_column("d", dtype=tf.float64)).dtype == "float64"
    with pytest.raises(ConfigError, match=r"'w'.*differs per cell"):
        _one(fc.numeric_column("w", shape=(2,), default_value=(1.0, 2.0)))


def test_numeric_normalizer_fn_is_refused_naming_the_column() -> None:
    def scale(x: Any) -> Any:
        return x / 10

    with pytest.raises(ConfigError, match=r"NumericColumn 'price' has normalizer_fn=scale") as e:
        _one(fc.numeric_column("price", normalizer_fn=scale))
    assert "Normalizer" in str(e.value)  # says what to do instead
    # also when it hides inside a bucketized column
    with pytest.raises(ConfigError, match="'price'"):
        _one(fc.bucketized_column(fc.numeric_column("price", normalizer_fn=scale), [1.0]))


@pytest.mark.parametrize(
    "make",
    [
        lambda: fc.sequence_numeric_column("clicks"),
        lambda: fc.embedding_column(fc.sequence_categorical_column_with_identity("clicks", 10), 4),
        lambda: fc.indicator_column(fc.sequence_categorical_column_with_hash_bucket("clicks", 10)),
    ],
)
def test_sequence_columns_are_not_supported_yet(make: Any) -> None:
    with pytest.raises(ConfigError, match=r"Sequence\w*Column 'clicks'.*not migrate yet"):
        _one(make())


def test_bucketized() -> None:
    spec = _one(fc.bucketized_column(fc.numeric_column("x", shape=(2,)), [-1, 0, 2.5]))
    assert spec == BucketizedColumn(NumericColumn("x", shape=(2,)), bin_boundaries=(-1, 0, 2.5))
    assert spec.num_ids == 8


def test_vocabulary_list_strings_ints_oov_and_default(in_workdir: pathlib.Path) -> None:
    c = FC.categorical()
    assert _one(c["vocab_oov"]) == VocabularyColumn("s", tuple(FC.VOCAB), num_oov_buckets=3)
    assert _one(c["vocab_default"]) == VocabularyColumn("s", tuple(FC.VOCAB), default_value=2)
    assert _one(c["vocab_int"]) == VocabularyColumn("h_int", tuple(FC.INT_VOCAB), dtype="int64")
    int32 = fc.categorical_column_with_vocabulary_list("q", [1, 2], dtype=tf.int32)
    assert _one(int32).dtype == "int64"


def test_vocabulary_file_inline_reads_as_tensorflow(in_workdir: pathlib.Path) -> None:
    c = FC.categorical()
    # colors.txt has CRLF line ends and no final newline: TF drops the \r
    assert _one(c["vocab_file"]) == VocabularyColumn("color", tuple(COLORS), num_oov_buckets=2)
    assert _one(c["vocab_file_size"]) == VocabularyColumn(
        "color", tuple(COLORS[:3]), default_value=1
    )
    assert read_vocabulary_file("colors.txt", size=2) == ("red", "green")
    (in_workdir / "ints.txt").write_text("5\n-3\n12\n")
    col = fc.categorical_column_with_vocabulary_file("i", "ints.txt", dtype=tf.int64)
    assert _one(col) == VocabularyColumn("i", (5, -3, 12), dtype="int64")


def test_vocabulary_file_keep_and_base_dir(
    workdir: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    col = FC.categorical()["vocab_file"]  # "colors.txt", size inferred by TF from the file
    monkeypatch.chdir(tmp_path)  # where colors.txt is not
    assert _one(col, vocabulary_files="keep") == VocabularyColumn(
        "color", "colors.txt", num_oov_buckets=2, vocabulary_size=5
    )
    with pytest.raises(ConfigError, match=r"'color'.*'colors.txt'.*base_dir") as e:
        _one(col)
    assert "--base-dir" in str(e.value)
    assert _one(col, base_dir=workdir).vocabulary == tuple(COLORS)


def test_tfrecord_gzip_vocabulary_is_refused() -> None:
    col = fc.categorical_column_with_vocabulary_file("f", "vocab.tfrecord.gz", vocabulary_size=3)
    with pytest.raises(ConfigError, match=r"'f'.*tfrecord_gzip"):
        _one(col)


def test_hash_bucket_string_and_int(in_workdir: pathlib.Path) -> None:
    c = FC.categorical()
    assert _one(c["hash_str"]) == HashedColumn("s", 50)
    assert _one(c["hash_int"]) == HashedColumn("h_int", 20, dtype="int64")


def test_identity_with_and_without_default(in_workdir: pathlib.Path) -> None:
    c = FC.categorical()
    assert _one(c["identity"]) == IdentityColumn("j", 5)
    assert _one(c["identity_default"]) == IdentityColumn("k", 6, default_value=0)


def test_crossed_nested_and_hash_key(in_workdir: pathlib.Path) -> None:
    c = FC.categorical()
    assert _one(c["crossed"]) == CrossedColumn(("a", "b"), 100)  # hash_key None: TF's default
    nested = _one(c["crossed_nested"])
    assert nested.hash_key == 123456789
    assert nested.keys[0] == CrossedColumn(("a", "b"), 50)
    assert nested.keys[1] == BucketizedColumn(NumericColumn("x"), bin_boundaries=(0.0, 1.0))
    assert nested.name == c["crossed_nested"].name


def test_weighted_categorical_keeps_the_weight_feature_key(in_workdir: pathlib.Path) -> None:
    weighted = FC.categorical()["weighted"]
    spec = _one(weighted)
    assert spec == WeightedColumn(VocabularyColumn("t", ("p", "q", "r")), "tw")
    # TF crosses a weighted column's ids; featurepipe refuses it, naming the cross
    with pytest.raises(ConfigError, match=r"CrossedColumn 'a_X_t_weighted_by_tw'.*weighted"):
        _one(fc.crossed_column(["a", weighted], 10))


def test_embedding_arguments() -> None:
    cat = fc.categorical_column_with_identity("c", 10)
    plain = _one(fc.embedding_column(cat, 4))
    # TF's default initializer (truncated normal, stddev 1/sqrt(4)) is featurepipe's default
    assert plain == EmbeddingColumn(IdentityColumn("c", 10), 4)
    full = _one(
        fc.embedding_column(
            cat,
            8,
            combiner="sqrtn",
            max_norm=1.5,
            trainable=False,
            initializer=tf.compat.v1.random_uniform_initializer(-0.1, 0.2, seed=7),
        )
    )
    assert (full.combiner, full.max_norm, full.trainable) == ("sqrtn", 1.5, False)
    assert full.initializer == {
        "class_name": "RandomUniform",
        "config": {"minval": -0.1, "maxval": 0.2, "seed": 7},
    }


@pytest.mark.parametrize(
    ("initializer", "expected"),
    [
        (tf.compat.v1.truncated_normal_initializer(0.0, 0.3), "TruncatedNormal"),
        (tf.random_normal_initializer(0.0, 0.01), "RandomNormal"),
        (tf.zeros_initializer(), "Zeros"),
        (tf.compat.v1.constant_initializer(0.5), "Constant"),
        (tf.compat.v1.glorot_uniform_initializer(seed=1), "GlorotUniform"),
        (tf.compat.v1.variance_scaling_initializer(distribution="normal"), "VarianceScaling"),
    ],
)
def test_initializers_map_to_keras_ones_that_build(initializer: Any, expected: str) -> None:
    import keras

    spec = _one(
        fc.embedding_column(
            fc.categorical_column_with_identity("c", 10), 4, initializer=initializer
        )
    )
    assert spec.initializer["class_name"] == expected
    built = keras.initializers.get(spec.initializer)
    assert type(built).__name__ == expected
    assert tuple(built((10, 4)).shape) == (10, 4)


def test_unknown_initializer_refused_or_defaulted() -> None:
    def mine(shape: Any, dtype: Any = None, partition_info: Any = None) -> Any:
        return tf.zeros(shape)

    col = fc.embedding_column(fc.categorical_column_with_identity("c", 10), 4, initializer=mine)
    with pytest.raises(ConfigError, match=r"EmbeddingColumn 'c_embedding'.*--unknown-initializer"):
        _one(col)
    with pytest.warns(MigrationWarning, match="c_embedding"):
        assert _one(col, unknown_initializer="default").initializer is None


def test_warm_start_checkpoint_is_a_note(tmp_path: pathlib.Path) -> None:
    col = fc.embedding_column(
        fc.categorical_column_with_identity("c", 10),
        4,
        ckpt_to_load_from=str(tmp_path / "ckpt"),
        tensor_name_in_ckpt="emb",
    )
    with pytest.warns(MigrationWarning, match="warm-starts"):
        m = migrate_feature_columns([col])
    assert len(m.notes) == 1 and "'emb'" in m.notes[0]


def test_shared_embeddings_share_one_named_table(in_workdir: pathlib.Path) -> None:
    cols = load_feature_columns(f"{FC_ALL}:build_columns")  # shared_embeddings: in a graph
    specs = columns_from_feature_columns(cols)
    a, b = specs["a_shared_embedding"], specs["b_shared_embedding"]
    assert a.shared_embedding_name == b.shared_embedding_name == "a_b_shared_embedding"
    assert (a.dimension, a.combiner, a.max_norm) == (3, "sum", 2.0)
    # TF1's shared_embedding_columns too
    x = fc.categorical_column_with_identity("x", 7)
    y = fc.categorical_column_with_identity("y", 7)
    with tf.Graph().as_default():
        v1 = tf.compat.v1.feature_column.shared_embedding_columns([x, y], 5, combiner="mean")
    s1 = columns_from_feature_columns(v1)
    assert s1.names == ("x_shared_embedding", "y_shared_embedding")
    assert {s.shared_embedding_name for s in s1} == {"x_y_shared_embedding"}


def test_shared_tables_must_agree() -> None:
    a = EmbeddingColumn(IdentityColumn("a", 5), 3, shared_embedding_name="t")
    with pytest.raises(ConfigError, match=r"share the table 't'.*`dimension`"):
        ColumnSpecs((a, EmbeddingColumn(IdentityColumn("b", 5), 4, shared_embedding_name="t")))
    with pytest.raises(ConfigError, match="5 and 6 ids"):
        ColumnSpecs((a, EmbeddingColumn(IdentityColumn("b", 6), 3, shared_embedding_name="t")))
    # an unshared embedding's config has no new key (files written before stay identical)
    assert "shared_embedding_name" not in EmbeddingColumn(IdentityColumn("a", 5), 3).get_config()


def test_dense_features_builds_one_table_for_shared_columns() -> None:
    import keras

    from featurepipe.keras import DenseFeatures

    a = EmbeddingColumn(IdentityColumn("a", 5), 3, combiner="sum", shared_embedding_name="t")
    b = EmbeddingColumn(IdentityColumn("b", 5), 3, combiner="sum", shared_embedding_name="t")
    c = EmbeddingColumn(IdentityColumn("c", 5), 3)
    layer = DenseFeatures(ColumnSpecs((a, b, c)), output_mode="dict")
    assert len(layer.weights) == 2  # the shared table and c's
    table = np.arange(15, dtype=np.float32).reshape(5, 3)
    layer.weights[0].assign(table)
    ids = np.array([[1, 4], [0, -1]])
    out = layer({"a_shared_embedding": ids, "b_shared_embedding": ids[::-1], "c_embedding": ids})
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out["a_shared_embedding"]), [table[1] + table[4], table[0]]
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out["b_shared_embedding"]), [table[0], table[1] + table[4]]
    )


def test_wide_and_deep_parts(in_workdir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    raw = FC.wide_and_deep()
    m = migrate_feature_columns(raw)
    assert m.columns.names == ("a_X_b", "s", "x", "s_embedding")  # x once
    assert m.linear.names == ("a_X_b", "s", "x")
    assert m.dnn.names == ("x", "s_embedding")
    path = tmp_path / "columns.json"
    m.save(path)
    doc = json.loads(path.read_text())
    assert doc["parts"] == {"linear": ["a_X_b", "s", "x"], "dnn": ["x", "s_embedding"]}
    assert MigratedColumns.load(path) == m
    assert ColumnSpecs.load(path) == m.columns  # every specs reader reads it
    # the estimator's argument names work as keys too
    alias = migrate_feature_columns(
        {"linear_feature_columns": raw["linear"], "dnn_feature_columns": raw["dnn"]}
    )
    assert alias == m
    with pytest.raises(ConfigError, match="'linear' and 'dnn'"):
        migrate_feature_columns({"wide": raw["linear"]})
    with pytest.raises(ConfigError, match="one list"):
        migrate_feature_columns(raw["linear"]).linear  # noqa: B018


def test_loader_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match=r"FILE\.py:FUNCTION"):
        load_feature_columns("my_columns.py")
    with pytest.raises(ConfigError, match="No such Python file"):
        load_feature_columns(str(tmp_path / "nope.py") + ":f")
    bad = tmp_path / "bad_columns.py"
    bad.write_text("def f():\n    return 3\nCOLS = []\n")
    with pytest.raises(ConfigError, match="returned a int"):
        load_feature_columns(f"{bad}:f")
    with pytest.raises(ConfigError, match="has no 'g'"):
        load_feature_columns(f"{bad}:g")
    assert load_feature_columns(f"{bad}:COLS") == []


def test_conversion_imports_no_tensorflow_itself() -> None:
    import ast

    import featurepipe.migrate._columns as mod

    tree = ast.parse(pathlib.Path(mod.__file__).read_text())
    imported = {
        a.name.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [ast.alias(n.module or "")])
    }
    assert "tensorflow" not in imported
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert columns_from_feature_columns([fc.numeric_column("x")]).names == ("x",)


def test_a_model_with_a_shared_table_saves_and_loads(tmp_path: pathlib.Path) -> None:
    import keras

    from featurepipe.keras import dnn_model

    a = EmbeddingColumn(VocabularyColumn("a", ("x", "y", "z")), 3, shared_embedding_name="t")
    b = EmbeddingColumn(VocabularyColumn("b", ("p", "q", "r")), 3, shared_embedding_name="t")
    model = dnn_model(ColumnSpecs((a, b, NumericColumn("n"))), (4,), compile=False)
    assert [w.path for w in model.get_layer("dnn_features").weights] == ["dnn_features/t_weights"]
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    x = {
        "a_shared_embedding": np.array([[0], [2]]),
        "b_shared_embedding": np.array([[1], [-1]]),
        "n": np.array([[1.0], [2.0]], dtype="float32"),
    }
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert len(loaded.weights) == len(model.weights)
