"""The rules of featurepipe.analysis._suggest, one by one, on statistics of generated examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from featurepipe.analysis import (
    StatisticsAccumulator,
    StatsOptions,
    embedding_dimension,
    is_skewed,
    suggest_columns,
)
from featurepipe.columns import (
    BucketizedColumn,
    EmbeddingColumn,
    HashedColumn,
    IndicatorColumn,
    NumericColumn,
    VocabularyColumn,
)
from featurepipe.errors import ConfigError
from featurepipe.example import decode_examples, encode_example


def _stats(rows: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    acc = StatisticsAccumulator(StatsOptions(top_k=1000))
    acc.add(decode_examples([encode_example(r) for r in rows]))
    return acc.extract()


def test_rules() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    rows: list[dict[str, object]] = []
    for i in range(n):
        row: dict[str, object] = {
            "row": i,  # consecutive integers: a row number
            "user": f"u{i}-{rng.integers(1 << 30)}",  # all different strings
            "cut": ["Ideal", "Good", "Fair"][i % 3],  # small domain
            "city": f"c{rng.integers(0, 300)}",  # medium domain
            "item": f"i{rng.integers(0, 3000)}",  # large domain, not id-like
            "normal": float(rng.normal(10, 2)),
            "income": float(rng.lognormal(10, 1)),  # skewed
            "clicks": int(rng.random() < 0.1) * int(rng.integers(1, 50)),  # mostly zeros
            "measure": int(rng.integers(0, 1 << 40)),  # int64, all different, not consecutive
            "const": 7,
            "vec": [1.0, float(i % 5), 2.0],  # fixed length 3
            "ragged": rng.random(i % 3).astype(np.float32),  # variable length
            "tags": np.array([b"a", b"b", b"c", b"d"][: i % 4 + 1], dtype=object),  # lists
            "y": int(i % 2),
        }
        if i % 10 == 0:
            del row["normal"]
        rows.append(row)
    s = suggest_columns(_stats(rows), "y")
    by_key = {c["key"]: c for c in s.columns}
    left = {c["key"]: c["why"] for c in s.left_out}
    assert set(left) == {"row", "user", "const", "ragged", "y"}
    assert "row number" in left["row"] and "id-like" in left["user"]
    assert left["y"] == "the label" and "one value" in left["const"]
    assert "list of 0 to 2" in left["ragged"]
    specs = s.specs
    cut = specs["cut_indicator"]
    assert isinstance(cut, IndicatorColumn) and isinstance(cut.categorical_column, VocabularyColumn)
    assert set(cut.categorical_column.vocabulary) == {"Ideal", "Good", "Fair"}  # type: ignore[arg-type]
    assert cut.categorical_column.num_oov_buckets == 1
    tags = specs["tags_indicator"]
    assert isinstance(tags, IndicatorColumn) and "lists" in by_key["tags"]["why"]
    city = specs["city_embedding"]
    assert isinstance(city, EmbeddingColumn) and isinstance(
        city.categorical_column, VocabularyColumn
    )
    stats = _stats(rows)
    cities = stats["city"].distinct
    assert 250 < cities <= 300
    assert city.dimension == math.ceil(6 * cities**0.25) == embedding_dimension(cities)
    assert len(city.categorical_column.vocabulary) == cities  # type: ignore[arg-type]
    item = specs["item_embedding"]
    assert isinstance(item, EmbeddingColumn) and isinstance(item.categorical_column, HashedColumn)
    distinct = stats["item"].distinct
    assert 1000 < distinct < 0.9 * n
    assert item.categorical_column.num_bins == 1 << (2 * distinct - 1).bit_length()
    assert item.dimension == embedding_dimension(distinct)
    normal = specs["normal"]
    assert isinstance(normal, NumericColumn) and normal.normalizer is not None
    assert normal.normalizer.kind == "z_score" and normal.normalizer.is_resolved
    assert normal.default_value == pytest.approx(normal.normalizer.mean)  # missing -> the mean
    for key in ("income", "clicks"):
        col = specs[f"{key}_bucketized"]
        assert isinstance(col, BucketizedColumn) and col.bin_boundaries, key
        assert "skewed" in by_key[key]["why"]
    assert specs["clicks_bucketized"].source.dtype == "int64"  # type: ignore[attr-defined]
    measure = specs["measure"]
    assert isinstance(measure, NumericColumn) and measure.dtype == "int64"
    vec = specs["vec"]
    assert isinstance(vec, NumericColumn) and vec.shape == (3,)
    assert specs.is_resolved  # trains without analyze artifacts
    assert len(s.lines()) == len(s.columns) + len(s.left_out)


def test_skew_and_dimension_rules() -> None:
    assert not is_skewed(-2.33, 0.0, 2.33)  # normal
    assert is_skewed(0.097, 1.0, 10.3)  # lognormal(0, 1)
    assert is_skewed(0.01, 0.69, 4.6)  # exponential
    assert not is_skewed(0.01, 0.5, 0.99)  # uniform
    assert is_skewed(0.0, 0.0, 12.0) and is_skewed(-3.0, 0.0, 0.0)  # a spike with one tail
    assert not is_skewed(1.0, 1.0, 1.0)
    assert [embedding_dimension(d) for d in (16, 81, 10_000)] == [12, 18, 60]


def test_label_missing_or_nothing_left() -> None:
    stats = _stats([{"x": float(i), "y": i % 2} for i in range(10)])
    with pytest.raises(ConfigError, match=r"label 'z' is not a feature.*\['x', 'y'\]"):
        suggest_columns(stats, "z")
    with pytest.raises(ConfigError, match=r"No feature is left.*c: one value"):
        suggest_columns(_stats([{"c": "a", "y": i % 2} for i in range(10)]), "y")
