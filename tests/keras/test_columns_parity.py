"""featurepipe.columns._transform outputs == tf.feature_column outputs for the same specs and batch.

Each featurepipe spec is rebuilt as the equivalent ``tf.feature_column`` column and
both are run on the same generated batch, with some features sparse
(``VarLenFeature``-like) and some dense (``FixedLenFeature``-like).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")
fc2 = pytest.importorskip("tensorflow.python.feature_column.feature_column_v2")

from featurepipe.columns._hashing import Ragged  # noqa: E402
from featurepipe.columns._specs import (  # noqa: E402
    BucketizedColumn,
    CategoricalSpec,
    ColumnSpec,
    CrossedColumn,
    HashedColumn,
    IdentityColumn,
    IndicatorColumn,
    NumericColumn,
    VocabularyColumn,
    WeightedColumn,
)
from featurepipe.columns._transform import WeightedIds, combine_embeddings, transform_features  # noqa: E402

pytestmark = pytest.mark.tf
fc = tf.feature_column
ROWS = 48


def _to_fc(spec: ColumnSpec | str) -> Any:
    """The tf.feature_column equivalent of a featurepipe spec (test-only migration map)."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, NumericColumn):
        return fc.numeric_column(spec.key, shape=spec.shape)
    if isinstance(spec, BucketizedColumn):
        return fc.bucketized_column(_to_fc(spec.source), list(spec.bin_boundaries or ()))
    if isinstance(spec, HashedColumn):
        dtype = tf.string if spec.dtype == "string" else tf.int64
        return fc.categorical_column_with_hash_bucket(spec.key, spec.num_bins, dtype=dtype)
    if isinstance(spec, VocabularyColumn):
        dtype = tf.string if spec.dtype == "string" else tf.int64
        return fc.categorical_column_with_vocabulary_list(
            spec.key,
            list(spec.load_vocabulary()),
            dtype=dtype,
            num_oov_buckets=spec.num_oov_buckets,
            default_value=spec.default_value,
        )
    if isinstance(spec, IdentityColumn):
        return fc.categorical_column_with_identity(
            spec.key, spec.num_buckets, default_value=spec.default_value
        )
    if isinstance(spec, CrossedColumn):
        return fc.crossed_column([_to_fc(k) for k in spec.keys], spec.num_bins, spec.hash_key)
    if isinstance(spec, WeightedColumn):
        return fc.weighted_categorical_column(
            _to_fc(spec.categorical_column), spec.weight_feature_key
        )
    if isinstance(spec, IndicatorColumn):
        return fc.indicator_column(_to_fc(spec.categorical_column))
    raise AssertionError(spec)


def _batch(rng: np.random.Generator) -> tuple[dict[str, Ragged], set[str]]:
    words = np.array(["", "a", "b", "c", "é", "日本", "🙂", "zz", "-1"], dtype=object)

    def ragged_words(max_len: int) -> Ragged:
        lengths = rng.integers(0, max_len + 1, ROWS)
        return Ragged(words[rng.integers(0, len(words), lengths.sum())], lengths)

    def ints(lo: int, hi: int, lengths: np.ndarray) -> Ragged:
        return Ragged(rng.integers(lo, hi, lengths.sum()), lengths)

    var_lengths = rng.integers(0, 4, ROWS)
    feats = {
        "s_var": ragged_words(3),
        "s_fix": Ragged(words[rng.integers(0, len(words), ROWS * 2)], np.full(ROWS, 2)),
        "i_var": ints(-2, 12, var_lengths),
        "w_var": Ragged(rng.uniform(0.1, 2.0, var_lengths.sum()).astype(np.float32), var_lengths),
        "i_fix": ints(-1, 8, np.full(ROWS, 3)),
        "x": Ragged(rng.normal(size=ROWS * 2).astype(np.float32), np.full(ROWS, 2)),
    }
    return feats, {"s_fix", "i_fix", "x"}


def _tf_features(feats: dict[str, Ragged], dense: set[str]) -> dict[str, Any]:
    out = {}
    for name, rag in feats.items():
        values = rag.values
        if values.dtype == object:
            values = tf.constant(values.tolist(), dtype=tf.string)
        rt = tf.RaggedTensor.from_row_lengths(values, rag.row_lengths)
        out[name] = rt.to_tensor() if name in dense else rt.to_sparse()
    return out


def _rows(st: Any) -> list[list[Any]]:
    rows: list[list[Any]] = [[] for _ in range(ROWS)]
    for (r, *_), v in zip(st.indices.numpy().tolist(), st.values.numpy().tolist(), strict=True):
        rows[r].append(v)
    return rows


def _specs() -> list[CategoricalSpec]:
    xb = BucketizedColumn(NumericColumn("x", shape=(2,)), bin_boundaries=(-0.5, 0.0, 0.7))
    return [
        HashedColumn("s_var", 31),
        HashedColumn("s_fix", 31),
        HashedColumn("i_fix", 17, dtype="int64"),
        VocabularyColumn("s_var", vocabulary=("a", "é", "zz"), num_oov_buckets=3),
        VocabularyColumn("s_fix", vocabulary=("b", "🙂"), default_value=5),
        VocabularyColumn("i_var", vocabulary=(3, 0, 11), dtype="int64"),
        IdentityColumn("i_var", 10, default_value=9),
        IdentityColumn("i_fix", 6),
        xb,
        CrossedColumn(("s_var", "s_fix", xb), 1000),
        CrossedColumn(("i_fix", VocabularyColumn("s_var", vocabulary=("a",))), 77, hash_key=5),
        CrossedColumn((CrossedColumn(("s_fix", IdentityColumn("i_var", 12)), 10), "i_var"), 2**40),
    ]


@pytest.mark.parametrize("index", range(len(_specs())))
def test_categorical_ids_match_feature_columns(index: int) -> None:
    rng = np.random.default_rng(index)
    feats, dense = _batch(rng)
    spec = _specs()[index]
    ours = transform_features([spec], feats, ROWS, dense_keys=dense)[spec.name]
    assert isinstance(ours, Ragged)
    cache = fc2.FeatureTransformationCache(_tf_features(feats, dense))
    theirs = _to_fc(spec).get_sparse_tensors(cache, None).id_tensor
    assert ours.to_lists() == _rows(theirs)
    assert sum(len(r) for r in ours.to_lists()) > 0


@pytest.mark.parametrize(
    "spec",
    [
        IndicatorColumn(VocabularyColumn("s_var", vocabulary=("a", "b"), num_oov_buckets=2)),
        IndicatorColumn(IdentityColumn("i_fix", 8)),
        IndicatorColumn(WeightedColumn(IdentityColumn("i_var", 12, default_value=0), "w_var")),
    ],
    ids=["vocab", "identity-dense", "weighted"],
)
def test_indicator_matches_feature_columns(spec: IndicatorColumn) -> None:
    feats, dense = _batch(np.random.default_rng(3))
    ours = transform_features([spec], feats, ROWS, dense_keys=dense)[spec.name]
    cache = fc2.FeatureTransformationCache(_tf_features(feats, dense))
    theirs = _to_fc(spec).get_dense_tensor(cache, None).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


@pytest.mark.parametrize("combiner", ["mean", "sum", "sqrtn"])
@pytest.mark.parametrize("weighted", [False, True])
def test_combine_embeddings_matches_safe_embedding_lookup(combiner: str, weighted: bool) -> None:
    feats, dense = _batch(np.random.default_rng(11))
    base = VocabularyColumn("i_var", vocabulary=(3, 0, 11, 5), dtype="int64")  # -1 for OOV
    spec = WeightedColumn(base, "w_var") if weighted else base
    ids = transform_features([spec], feats, ROWS, dense_keys=dense)[spec.name]
    table = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    ours = combine_embeddings(table, ids, combiner)
    rag = ids.ids if isinstance(ids, WeightedIds) else ids
    sp_ids = tf.RaggedTensor.from_row_lengths(rag.values, rag.row_lengths).to_sparse()
    sp_w = None
    if isinstance(ids, WeightedIds):
        sp_w = tf.RaggedTensor.from_row_lengths(ids.weights.values, rag.row_lengths).to_sparse()
    theirs = tf.nn.safe_embedding_lookup_sparse(
        tf.constant(table), sp_ids, sp_w, combiner=combiner
    ).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
