"""Tests for featurepipe.columns._specs: validation, config and JSON round trips, resolution."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from featurepipe._version import __version__
from featurepipe.columns._specs import (
    FORMAT_VERSION,
    BucketizedColumn,
    ColumnSpec,
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
    column_from_config,
)
from featurepipe.errors import ConfigError


class _FakeArtifacts:
    """An Artifacts implementation backed by dicts (what `featurepipe analyze` output provides)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def vocabulary(self, key: str) -> Sequence[str | int]:
        self.asked.append(("vocabulary", key))
        return ["x", "y", "z"]

    def boundaries(self, key: str, num_bins: int) -> Sequence[float]:
        self.asked.append(("boundaries", key))
        return [float(i) for i in range(1, num_bins)]

    def moments(self, key: str) -> Mapping[str, float]:
        self.asked.append(("moments", key))
        return {"mean": 2.0, "variance": 9.0, "min": -1.0, "max": 3.0}


def _every_kind() -> list[ColumnSpec]:
    age = NumericColumn("age", normalizer=Normalizer("z_score", mean=40.0, variance=100.0))
    age_b = BucketizedColumn(age, bin_boundaries=(18, 30, 65))
    color = VocabularyColumn("color", vocabulary=("red", "green", "é"), num_oov_buckets=2)
    code = VocabularyColumn("code", vocabulary=(3, 1, 2), dtype="int64", default_value=0)
    city = HashedColumn("city", num_bins=100)
    day = IdentityColumn("day", num_buckets=7, default_value=0)
    cross = CrossedColumn(("city", age_b, CrossedColumn(("color", day), 50)), 1000, hash_key=7)
    tags = WeightedColumn(IdentityColumn("tag", 10), "tag_weight")
    return [
        age,
        NumericColumn("xy", shape=(2, 3), default_value=0.0, dtype="float64"),
        age_b,
        color,
        code,
        city,
        day,
        cross,
        EmbeddingColumn(city, 8, combiner="sqrtn", initializer="zeros", trainable=False),
        EmbeddingColumn(tags, 4, max_norm=1.5),
        IndicatorColumn(color, output_mode="multi_hot"),
        IndicatorColumn(code),
    ]


@pytest.mark.parametrize("spec", _every_kind(), ids=lambda s: type(s).__name__)
def test_config_round_trip(spec: ColumnSpec) -> None:
    config = spec.get_config()
    assert type(spec).from_config(config) == spec
    again = json.loads(json.dumps(spec.to_dict()))
    assert column_from_config(again) == spec
    assert column_from_config(again).get_config() == config


def test_column_specs_json_round_trip(tmp_path: Path) -> None:
    specs = ColumnSpecs(tuple(_every_kind()))
    text = specs.to_json()
    doc = json.loads(text)
    assert doc["format_version"] == FORMAT_VERSION
    assert doc["featurepipe_version"] == __version__
    assert ColumnSpecs.from_json(text) == specs
    path = tmp_path / "specs.json"
    specs.save(path)
    assert ColumnSpecs.load(path) == specs
    assert ColumnSpecs.load(path).to_json() == text
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_names_follow_feature_columns() -> None:
    specs = ColumnSpecs(tuple(_every_kind()))
    assert specs.names == (
        "age",
        "xy",
        "age_bucketized",
        "color",
        "code",
        "city",
        "day",
        "age_bucketized_X_city_X_color_X_day",  # leaf keys, sorted, as crossed_column names
        "city_embedding",
        "tag_weighted_by_tag_weight_embedding",
        "color_indicator",
        "code_indicator",
    )
    assert specs["city"] == HashedColumn("city", num_bins=100)
    with pytest.raises(KeyError, match=r"No column named 'nope' \(select from \['age'"):
        specs["nope"]


def test_num_ids_and_output_sizes() -> None:
    specs = ColumnSpecs(tuple(_every_kind()))
    assert specs["age_bucketized"].num_ids == 4  # type: ignore[attr-defined]
    assert specs["color"].num_ids == 5  # type: ignore[attr-defined]
    assert specs["color_indicator"].output_size == 5  # type: ignore[attr-defined]
    assert specs["city_embedding"].output_size == 8  # type: ignore[attr-defined]
    assert NumericColumn("xy", shape=(2, 3)).size == 6
    wide = BucketizedColumn(NumericColumn("v", shape=(3,)), bin_boundaries=(0.0,))
    assert wide.num_ids == 6


def test_from_config_accepts_feature_column_spellings() -> None:
    b = column_from_config(
        {
            "class_name": "BucketizedColumn",
            "config": {"source": "age", "boundaries": [1, 2]},
        }
    )
    assert b == BucketizedColumn(NumericColumn("age"), bin_boundaries=(1.0, 2.0))
    h = HashedColumn.from_config({"key": "c", "hash_bucket_size": 5})
    assert h == HashedColumn("c", num_bins=5)
    v = VocabularyColumn.from_config({"key": "c", "vocabulary_list": ["a"]})
    assert v == VocabularyColumn("c", vocabulary=("a",))
    x = CrossedColumn.from_config({"keys": ["a", "b"], "hash_bucket_size": 9})
    assert x == CrossedColumn(("a", "b"), num_bins=9)


def test_vocabulary_file(tmp_path: Path) -> None:
    (tmp_path / "v.txt").write_text("a\nb\né\n", encoding="utf-8")
    spec = VocabularyColumn("c", vocabulary="v.txt", num_oov_buckets=1)
    assert spec.load_vocabulary(tmp_path) == ("a", "b", "é")
    assert VocabularyColumn("c", vocabulary="v.txt", vocabulary_size=2).load_vocabulary(
        tmp_path
    ) == ("a", "b")
    (tmp_path / "i.txt").write_text("5\n-1\n", encoding="utf-8")
    assert VocabularyColumn("c", vocabulary="i.txt", dtype="int64").load_vocabulary(tmp_path) == (
        5,
        -1,
    )
    with pytest.raises(ConfigError, match=r"fewer than `vocabulary_size`. Received: vocab"):
        VocabularyColumn("c", vocabulary="v.txt", vocabulary_size=4).load_vocabulary(tmp_path)
    with pytest.raises(ConfigError, match=r"Cannot read the vocabulary file of 'c'"):
        VocabularyColumn("c", vocabulary="missing.txt").load_vocabulary(tmp_path)


def test_resolve_fills_analyzer_results() -> None:
    specs = ColumnSpecs(
        (
            NumericColumn("x", normalizer=Normalizer("z_score")),
            NumericColumn("m", normalizer=Normalizer("min_max", min=0.0)),
            IndicatorColumn(VocabularyColumn("c", top_k=10, min_frequency=2)),
            EmbeddingColumn(
                CrossedColumn(("s", BucketizedColumn(NumericColumn("q"), num_bins=4)), num_bins=10),
                dimension=2,
            ),
        )
    )
    assert not specs.is_resolved
    assert specs.analysis_requests() == [
        {"analyzer": "moments", "key": "m"},
        {"analyzer": "moments", "key": "x"},
        {"analyzer": "quantiles", "key": "q", "num_bins": 4},
        {"analyzer": "vocabulary", "key": "c", "top_k": 10, "min_frequency": 2},
    ]
    with pytest.raises(ConfigError, match=r"The vocabulary of 'c' is not known yet"):
        specs["c_indicator"].output_size  # type: ignore[attr-defined]  # noqa: B018
    arts = _FakeArtifacts()
    resolved = specs.resolve(arts)
    assert resolved.is_resolved
    assert resolved.analysis_requests() == []
    x = resolved["x"]
    assert isinstance(x, NumericColumn)
    assert x.normalizer == Normalizer("z_score", mean=2.0, variance=9.0, min=-1.0, max=3.0)
    m = resolved["m"]
    assert isinstance(m, NumericColumn)
    assert m.normalizer is not None
    assert (m.normalizer.min, m.normalizer.max) == (0.0, 3.0)  # given values win
    assert resolved["c_indicator"].output_size == 3  # type: ignore[attr-defined]
    emb = resolved["q_bucketized_X_s_embedding"]
    assert isinstance(emb, EmbeddingColumn)
    inner = emb.categorical_column
    assert isinstance(inner, CrossedColumn)
    assert inner.keys[1] == BucketizedColumn(
        NumericColumn("q"), bin_boundaries=(1.0, 2.0, 3.0), num_bins=4
    )
    # resolving again asks nothing
    arts.asked.clear()
    assert resolved.resolve(arts) == resolved
    assert arts.asked == []


def test_normalizer_math() -> None:
    assert Normalizer("z_score", mean=1.0, variance=4.0).apply_scalar(5.0) == 2.0
    assert Normalizer("z_score", mean=1.0, variance=0.0).apply_scalar(5.0) == 4.0
    assert Normalizer("min_max", min=2.0, max=6.0).apply_scalar(3.0) == 0.25
    assert Normalizer("min_max", min=2.0, max=2.0).apply_scalar(3.0) == 0.0
    assert Normalizer("log").apply_scalar(0.0) == 0.0
    with pytest.raises(ConfigError, match=r"call `ColumnSpecs.resolve\(artifacts\)` first"):
        Normalizer("z_score", mean=1.0).apply_scalar(1.0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: NumericColumn(""), r"non-empty string. Received: key=''"),
        (lambda: NumericColumn("x", shape=(0,)), r"positive integers. Received: shape=\(0,\)"),
        (lambda: NumericColumn("x", dtype="string"), r"Allowed values are: .*dtype='string'"),
        (lambda: Normalizer("scale"), r"Allowed values are: \('z_score'.*kind='scale'"),
        (lambda: Normalizer("z_score", variance=-1.0), r"Received: variance=-1.0"),
        (lambda: Normalizer("min_max", min=2.0, max=1.0), r"Received: min=2.0, max=1.0"),
        (lambda: BucketizedColumn(NumericColumn("x")), r"either `bin_boundaries` or `num_bins`"),
        (
            lambda: BucketizedColumn(NumericColumn("x"), bin_boundaries=(2, 1)),
            r"increasing order without repeats. Received: bin_boundaries=\[2.0, 1.0\]",
        ),
        (
            lambda: BucketizedColumn(NumericColumn("x"), num_bins=1),
            r"integer >= 2. Received: num_bins=1",
        ),
        (lambda: BucketizedColumn(HashedColumn("x", 3)), r"must be a NumericColumn"),  # type: ignore[arg-type]
        (lambda: VocabularyColumn("c", vocabulary=()), r"must not be empty"),
        (lambda: VocabularyColumn("c", vocabulary=("a", "a")), r"must not contain duplicates"),
        (
            lambda: VocabularyColumn("c", vocabulary=("a",), dtype="int64"),
            r"int64 vocabulary must hold integers",
        ),
        (
            lambda: VocabularyColumn("c", num_oov_buckets=2, default_value=3),
            r"not both. Received: num_oov_buckets=2, default_value=3",
        ),
        (lambda: VocabularyColumn("c", dtype="float"), r"dtype='float'"),
        (lambda: HashedColumn("c", num_bins=0), r"integer >= 1. Received: num_bins=0"),
        (lambda: IdentityColumn("c", 5, default_value=5), r"Received: default_value=5"),
        (lambda: CrossedColumn(("a",), 10), r"at least 2 entries"),
        (lambda: CrossedColumn(("a", HashedColumn("b", 3)), 10), r"cross the raw feature name 'b'"),
        (lambda: CrossedColumn(("a", NumericColumn("b")), 10), r"feature names or categorical"),
        (lambda: CrossedColumn(("a", "b"), 10, hash_key=2**63), r"Received: hash_key=9223"),
        (lambda: EmbeddingColumn(HashedColumn("c", 3), 0), r"Received: dimension=0"),
        (
            lambda: EmbeddingColumn(HashedColumn("c", 3), 2, combiner="max"),
            r"Allowed values are: \('mean', 'sum', 'sqrtn'\). Received: combiner='max'",
        ),
        (lambda: EmbeddingColumn(NumericColumn("c"), 2), r"must be a categorical spec"),  # type: ignore[arg-type]
        (
            lambda: IndicatorColumn(HashedColumn("c", 3), output_mode="tf_idf"),
            r"Received: output_mode='tf_idf'",
        ),
        (
            lambda: ColumnSpecs((HashedColumn("c", 3), VocabularyColumn("c"))),
            r"unique. Received duplicates: \['c'\]",
        ),
    ],
)
def test_validation_errors(build: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()  # type: ignore[operator]


def test_from_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"Unknown argument `bins` for HashedColumn. Allowed"):
        HashedColumn.from_config({"key": "c", "bins": 3})
    with pytest.raises(ConfigError, match=r"Invalid config for HashedColumn"):
        HashedColumn.from_config({"key": "c"})
    with pytest.raises(ConfigError, match=r"Unknown column class. Allowed values are: \["):
        column_from_config({"class_name": "ColumnSpec", "config": {}})
    with pytest.raises(ConfigError, match=r"must be \{\"class_name\""):
        column_from_config({"config": {}})
    with pytest.raises(ConfigError, match=r"newer than this featurepipe"):
        ColumnSpecs.from_config({"format_version": FORMAT_VERSION + 1, "columns": []})
    with pytest.raises(ConfigError, match=r"integer `format_version`. Received: format_vers"):
        ColumnSpecs.from_config({"columns": []})
    with pytest.raises(ConfigError, match=r"not valid JSON"):
        ColumnSpecs.from_json("{nope")
    with pytest.raises(ConfigError, match=r"must be a JSON object. Received: list"):
        ColumnSpecs.from_json("[]")
    with pytest.raises(ConfigError, match=r"Cannot read column specs"):
        ColumnSpecs.load("/nonexistent/specs.json")


def test_initializer_config_dict_is_not_taken_for_a_column() -> None:
    init = {"class_name": "RandomNormal", "config": {"stddev": 0.5}}
    spec = EmbeddingColumn(HashedColumn("c", 3), 2, initializer=init)
    again = column_from_config(json.loads(json.dumps(spec.to_dict())))
    assert isinstance(again, EmbeddingColumn)
    assert again.initializer == init


def test_resolve_dedupes_repeated_quantile_boundaries() -> None:
    class Skewed(_FakeArtifacts):
        def boundaries(self, key: str, num_bins: int) -> Sequence[float]:
            return [0.0, 0.0, 0.0, 1.0, float("nan")]

    spec = BucketizedColumn(NumericColumn("q"), num_bins=5).resolve(Skewed())
    assert spec.bin_boundaries == (0.0, 1.0)
    assert spec.num_ids == 3

    class Empty(_FakeArtifacts):
        def boundaries(self, key: str, num_bins: int) -> Sequence[float]:
            return []

    with pytest.raises(ConfigError, match=r"no quantile boundaries for 'q'"):
        BucketizedColumn(NumericColumn("q"), num_bins=5).resolve(Empty())
    with pytest.raises(ConfigError, match=r"must not be empty"):
        BucketizedColumn(NumericColumn("q"), bin_boundaries=())
