"""Tests for featurepipe.columns._transform (no TensorFlow; tests/keras/test_id_parity.py compares with TF)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from featurepipe.columns import _hashing as hashing
from featurepipe.columns._hashing import Ragged
from featurepipe.columns._specs import (
    BucketizedColumn,
    ColumnSpecs,
    CrossedColumn,
    EmbeddingColumn,
    HashedColumn,
    IdentityColumn,
    IndicatorColumn,
    Normalizer,
    NumericColumn,
    VocabularyColumn,
    WeightedColumn,
)
from featurepipe.columns._transform import (
    WeightedIds,
    categorical_ids,
    combine_embeddings,
    dense_keys_from_schema,
    encode_indicator,
    numeric_values,
    transform_features,
)
from featurepipe.errors import ConfigError, SchemaMismatchError

pytest.importorskip("farmhash")


def _features() -> dict[str, Ragged]:
    return {
        "x": Ragged.from_rows([[1.0], [4.0], [9.0]], dtype=np.float32),
        "city": Ragged.from_rows([["a", "b"], [], [""]]),
        "code": Ragged.from_rows([[3], [7, -1], [1]]),
        "w": Ragged.from_rows([[0.5], [1.0, 2.0], [3.0]], dtype=np.float32),
    }


def test_transform_features_every_kind() -> None:
    x = NumericColumn("x", normalizer=Normalizer("z_score", mean=4.0, variance=9.0))
    xb = BucketizedColumn(NumericColumn("x"), bin_boundaries=(2.0, 5.0))
    city = HashedColumn("city", num_bins=10)
    code = VocabularyColumn("code", vocabulary=(7, 3), dtype="int64", num_oov_buckets=2)
    ident = IdentityColumn("code", num_buckets=5, default_value=0)
    cross = CrossedColumn(("city", xb), num_bins=100)
    specs = ColumnSpecs(
        (
            x,
            xb,
            city,
            code,
            cross,
            IndicatorColumn(ident),
            EmbeddingColumn(code, 3),
            WeightedColumn(IdentityColumn("code", 10), "w"),
        )
    )
    out = transform_features(specs, _features(), 3)
    assert list(out) == list(specs.names)
    np.testing.assert_allclose(out["x"], [[-1.0], [0.0], [5.0 / 3.0]], rtol=1e-6)
    assert out["x"].dtype == np.float32
    assert out["x_bucketized"].to_lists() == [[0], [1], [2]]  # type: ignore[union-attr]
    assert out["city"].to_lists() == [  # type: ignore[union-attr]
        hashing.hash_bucket(["a", "b"], 10).tolist(),
        [],
        hashing.hash_bucket([""], 10).tolist(),
    ]
    oov = (2 + hashing.hash_bucket(["-1", "1"], 2)).tolist()
    assert out["code"].to_lists() == [[1], [0, oov[0]], [oov[1]]]  # type: ignore[union-attr]
    assert out["code_embedding"].to_lists() == out["code"].to_lists()  # type: ignore[union-attr]
    expected_cross = hashing.cross_ids(
        [Ragged.from_rows([["a", "b"], [], [""]]), Ragged.from_rows([[0], [1], [2]])], 100
    )
    assert out["city_X_x_bucketized"].to_lists() == expected_cross.to_lists()  # type: ignore[union-attr]
    assert out["code_indicator"].tolist() == [  # type: ignore[union-attr]
        [0, 0, 0, 1, 0],
        [2, 0, 0, 0, 0],  # 7 and -1 are out of range -> default_value 0, counted twice
        [0, 1, 0, 0, 0],
    ]
    weighted = out["code_weighted_by_w"]
    assert isinstance(weighted, WeightedIds)
    assert weighted.ids.to_lists() == [[3], [7, -1], [1]]
    assert weighted.weights.to_lists() == [[0.5], [1.0, 2.0], [3.0]]


def test_dense_keys_drop_ignore_values_and_reorder_crosses() -> None:
    feats = {
        "s": Ragged.from_dense(np.array([["a", ""], ["", "c"]], dtype=object)),
        "t": Ragged.from_rows([["u"], ["v", "w"]]),
    }
    spec = HashedColumn("s", num_bins=50)
    sparse_ids = categorical_ids(spec, feats, 2)
    dense_ids = categorical_ids(spec, feats, 2, dense_keys={"s"})
    assert [len(r) for r in sparse_ids.to_lists()] == [2, 2]
    assert dense_ids.to_lists() == hashing.hash_bucket_ids(feats["s"], 50, dense=True).to_lists()
    assert [len(r) for r in dense_ids.to_lists()] == [1, 1]
    cross = CrossedColumn(("s", "t"), num_bins=1000)
    got = categorical_ids(cross, feats, 2, dense_keys={"s"})
    assert got.to_lists() == hashing.cross_ids([feats["t"], feats["s"]], 1000).to_lists()


def test_dense_keys_from_schema() -> None:
    class F:
        def __init__(self, name: str, shape: tuple[int, ...] | None) -> None:
            self.name = name
            self.shape = shape

    assert dense_keys_from_schema([F("a", ()), F("b", None), F("c", (3,))]) == {"a", "c"}


def test_missing_feature_is_empty_rows() -> None:
    out = transform_features(
        [HashedColumn("nope", 5), NumericColumn("n", default_value=2.5)], {}, 2
    )
    assert out["nope"].to_lists() == [[], []]  # type: ignore[union-attr]
    assert out["n"].tolist() == [[2.5], [2.5]]  # type: ignore[union-attr]


def test_numeric_shape_default_and_normalizers() -> None:
    feats = {"v": Ragged.from_rows([[1.0, 2.0], [], [3.0, 7.0]])}
    spec = NumericColumn("v", shape=(2,), default_value=-1.0)
    assert numeric_values(spec, feats, 3).tolist() == [[1.0, 2.0], [-1.0, -1.0], [3.0, 7.0]]
    mm = NumericColumn(
        "v", shape=(2,), default_value=1.0, normalizer=Normalizer("min_max", min=1, max=3)
    )
    assert numeric_values(mm, feats, 3).tolist() == [[0.0, 0.5], [0.0, 0.0], [1.0, 3.0]]
    log = NumericColumn("v", shape=(2,), default_value=0.0, normalizer=Normalizer("log"))
    np.testing.assert_allclose(
        numeric_values(log, feats, 3), np.log1p([[1.0, 2.0], [0.0, 0.0], [3.0, 7.0]]), rtol=1e-6
    )


def test_numeric_errors_name_the_row() -> None:
    feats = {"v": Ragged.from_rows([[1.0], [], [2.0, 3.0]])}
    with pytest.raises(SchemaMismatchError, match=r"record 1: missing_value: feature 'v'") as e:
        numeric_values(NumericColumn("v", shape=(2,)), {"v": Ragged.from_rows([[1, 2], []])}, 2)
    assert e.value.record == 1
    with pytest.raises(SchemaMismatchError, match=r"record 2: wrong_value_count: .*has 2 values"):
        numeric_values(NumericColumn("v", default_value=0.0), feats, 3)
    with pytest.raises(ConfigError, match=r"needs numbers. Received: dtype=object"):
        numeric_values(NumericColumn("c"), {"c": Ragged.from_rows([["a"]])}, 1)


def test_errors() -> None:
    feats = _features()
    with pytest.raises(ConfigError, match=r"'c' is not resolved"):
        transform_features([VocabularyColumn("c")], feats, 3)
    with pytest.raises(
        ConfigError, match=r"expects string values. Received: values of dtype int64"
    ):
        categorical_ids(HashedColumn("code", 5), feats, 3)
    with pytest.raises(ConfigError, match=r"expects int64 values"):
        categorical_ids(IdentityColumn("city", 5), feats, 3)
    with pytest.raises(ConfigError, match=r"has 3 rows; the batch has 4"):
        categorical_ids(HashedColumn("city", 5), feats, 4)
    with pytest.raises(ConfigError, match=r"needs a vocabulary, hashed or identity column"):
        transform_features([WeightedColumn(CrossedColumn(("a", "b"), 5), "w")], feats, 3)
    bad_w = {"code": feats["code"], "w": Ragged.from_rows([[1.0], [1.0], [1.0]])}
    with pytest.raises(SchemaMismatchError, match=r"record 1: weight_count_mismatch"):
        transform_features([WeightedColumn(IdentityColumn("code", 10), "w")], bad_w, 3)


def test_vocabulary_file_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "v.txt").write_text("b\na\n", encoding="utf-8")
    spec = VocabularyColumn("city", vocabulary="v.txt")
    got = categorical_ids(spec, _features(), 3, base_dir=tmp_path)
    assert got.to_lists() == [[1, 0], [], [-1]]


def test_encode_indicator_modes() -> None:
    ids = Ragged.from_rows([[2, 2, 0], [], [5, -1]])
    assert encode_indicator(ids, 3, "count").tolist() == [[1, 0, 2], [0, 0, 0], [0, 0, 0]]
    assert encode_indicator(ids, 3, "multi_hot").tolist() == [[1, 0, 1], [0, 0, 0], [0, 0, 0]]
    one = Ragged.from_rows([[1], [], [0]])
    assert encode_indicator(one, 2, "one_hot").tolist() == [[0, 1], [0, 0], [1, 0]]
    w = Ragged.from_rows([[0.5, 0.25, 2.0], [], [1.0, 1.0]], dtype=np.float32)
    assert encode_indicator(ids, 3, "count", w).tolist() == [[2, 0, 0.75], [0, 0, 0], [0, 0, 0]]
    with pytest.raises(ConfigError, match=r"at most one id per row.*Received: a row with 3 ids"):
        encode_indicator(ids, 3, "one_hot")
    with pytest.raises(ConfigError, match=r"Received: output_mode='tf_idf'"):
        encode_indicator(ids, 3, "tf_idf")


def test_combine_embeddings() -> None:
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    ids = Ragged.from_rows([[0, 2], [], [3, -1], [1]])
    assert combine_embeddings(table, ids, "sum").tolist() == [
        [6, 8, 10],
        [0, 0, 0],
        [9, 10, 11],
        [3, 4, 5],
    ]
    assert combine_embeddings(table, ids, "mean").tolist()[0] == [3, 4, 5]
    np.testing.assert_allclose(
        combine_embeddings(table, ids, "sqrtn")[0], np.array([6, 8, 10]) / 2**0.5
    )
    weighted = WeightedIds(ids, Ragged(np.array([1.0, 3.0, 2.0, 5.0, 1.0]), ids.row_lengths))
    np.testing.assert_allclose(
        combine_embeddings(table, weighted, "mean")[0], (table[0] + 3 * table[2]) / 4
    )
    np.testing.assert_allclose(
        combine_embeddings(table, weighted, "sqrtn")[0], (table[0] + 3 * table[2]) / 10**0.5
    )
    with pytest.raises(ConfigError, match=r"beyond the embedding table of 4 rows. Received: id=9"):
        combine_embeddings(table, Ragged.from_rows([[9]]), "sum")
    with pytest.raises(ConfigError, match=r"Received: combiner='max'"):
        combine_embeddings(table, ids, "max")


def test_specs_resolve_from_a_local_analysis(tmp_path: Path) -> None:
    from featurepipe.analysis._artifacts import analyze_records, load_requests
    from featurepipe.example._codec import decode_examples, encode_example
    from featurepipe.tfrecord import write_records

    records = [
        encode_example({"c": np.array(["a"] * (i % 2) + ["b"], dtype=object), "x": float(i)})
        for i in range(30)
    ]
    write_records(tmp_path / "d.tfrecord", records)
    specs = ColumnSpecs(
        (
            VocabularyColumn("c", num_oov_buckets=1),
            BucketizedColumn(NumericColumn("x"), num_bins=3),
            NumericColumn("x", normalizer=Normalizer("z_score")),
        )
    )
    analysis = analyze_records(str(tmp_path / "d.tfrecord"), load_requests(specs.to_json()))
    resolved = specs.resolve(analysis)
    assert resolved.is_resolved
    vocab = resolved["c"]
    assert isinstance(vocab, VocabularyColumn)
    assert vocab.vocabulary == ("b", "a")  # most frequent first
    batch = decode_examples(records)
    out = transform_features(resolved, batch.columns, batch.num_rows)
    assert out["c"].to_lists()[:3] == [[0], [1, 0], [0]]  # type: ignore[union-attr]
    ids = out["x_bucketized"].values  # type: ignore[union-attr]
    assert sorted(set(ids.tolist())) == [0, 1, 2]
    assert abs(float(np.mean(out["x"]))) < 1e-5  # type: ignore[arg-type]
