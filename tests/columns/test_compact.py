"""The compact spelling of column specs (featurepipe.columns._compact)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from featurepipe.columns import (
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
    column_from_compact,
)
from featurepipe.errors import ConfigError


def test_compact_equals_full_form(tmp_path: Path) -> None:
    compact = [
        {"key": "cut", "type": "vocabulary", "as": "indicator", "why": "5 values"},
        {"key": "color", "type": "vocabulary", "vocabulary": ["D", "E"], "num_oov_buckets": 1,
         "as": "indicator", "output_mode": "one_hot"},
        {"key": "city", "type": "hashed", "num_bins": 64, "as": "embedding", "dimension": 8,
         "combiner": "sqrtn"},
        {"key": "carat", "type": "numeric", "normalizer": "z_score", "default_value": 0.0},
        {"key": "depth", "type": "numeric", "normalizer": {"kind": "z_score", "mean": 1.0,
                                                          "variance": 4.0}},
        {"key": "price", "type": "bucketized", "boundaries": [1.0, 2.0], "dtype": "int64",
         "default_value": 0},
        {"key": "x", "type": "bucketized", "num_bins": 4},
        {"key": "day", "type": "identity", "num_buckets": 7},
        {"key": ["city", "cut"], "type": "crossed", "num_bins": 100},
        {"keys": ["cut", {"key": "day", "type": "identity", "num_buckets": 7}],
         "type": "crossed", "num_bins": 50, "_note": "ignored"},
        {"class_name": "HashedColumn", "config": {"key": "raw", "num_bins": 4}},  # mixed in
    ]  # fmt: skip
    expected = ColumnSpecs(
        (
            IndicatorColumn(VocabularyColumn("cut")),
            IndicatorColumn(VocabularyColumn("color", ("D", "E"), num_oov_buckets=1), "one_hot"),
            EmbeddingColumn(HashedColumn("city", 64), 8, combiner="sqrtn"),
            NumericColumn("carat", default_value=0.0, normalizer=Normalizer("z_score")),
            NumericColumn("depth", normalizer=Normalizer("z_score", mean=1.0, variance=4.0)),
            BucketizedColumn(NumericColumn("price", dtype="int64", default_value=0), (1.0, 2.0)),
            BucketizedColumn(NumericColumn("x"), num_bins=4),
            IdentityColumn("day", 7),
            CrossedColumn(("city", "cut"), 100),
            CrossedColumn(("cut", IdentityColumn("day", 7)), 50),
            HashedColumn("raw", 4),
        )
    )
    doc = {"format_version": 1, "columns": compact}
    assert ColumnSpecs.from_config(doc) == expected
    path = tmp_path / "columns.json"
    path.write_text(json.dumps(doc))
    assert ColumnSpecs.load(path) == expected
    assert ColumnSpecs.from_json(expected.to_json()) == expected  # saved in the full form


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"key": "c", "type": "categorical"}, r"Unknown `type` of column 'c'.*'vocabulary'"),
        ({"key": "c", "type": "hashed", "num_bins": 4, "as": "onehot"}, r"Unknown `as` of"),
        ({"key": "x", "type": "numeric", "as": "indicator"}, r"numeric column cannot be used"),
        ({"key": "c", "type": "hashed", "num_bins": 4, "top_k": 3},
         r"Unknown argument\(s\) \['top_k'\] of column 'c' \(type 'hashed'\).*num_bins"),
        ({"key": "c", "type": "hashed", "num_bins": 4, "as": "embedding"},
         r"Invalid column 'c'.*dimension"),
        ({"key": "c", "type": "hashed", "num_bins": 0}, r"Invalid column 'c'.*num_bins"),
    ],
)  # fmt: skip
def test_compact_errors_name_the_column(config: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        column_from_compact(config)
    with pytest.raises(ConfigError, match=message):
        ColumnSpecs.from_config({"format_version": 1, "columns": [config]})


def test_analyze_requests_from_compact_specs() -> None:
    from featurepipe.analysis import load_requests

    doc = {"format_version": 1, "columns": [
        {"key": "cut", "type": "vocabulary", "top_k": 10, "as": "indicator"},
        {"key": "carat", "type": "numeric", "normalizer": "z_score"}]}  # fmt: skip
    assert [r.id for r in load_requests(doc)] == ["moments/carat", "vocabulary/cut"]
