"""Anomalies against a schema (featurepipe.analysis._validate), with planted anomalies."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import featurepipe
from featurepipe.analysis import (
    ANOMALY_TYPES,
    StatisticsAccumulator,
    compute_statistics,
    infer_constraints,
    load_statistics,
    validate_data,
    validate_statistics,
)
from featurepipe.errors import ConfigError
from featurepipe.example import (
    FeatureConstraints,
    FeatureSchema,
    Schema,
    decode_examples,
    encode_example,
)

N = 60


def clean_row(i: int) -> dict[str, Any]:
    return {
        "gone": i,
        "typ": i % 5,
        "low": b"v",
        "rare": b"r",
        "city": [b"Oslo", b"Lima", b"Rome"][i % 3],
        "n": i % 10,
        "x": float(i % 7) / 2,
        "vec": np.array([i, i + 1], dtype=np.int64),
    }


def schema() -> Schema:
    return Schema(
        (
            FeatureSchema("city", "bytes", shape=()),
            FeatureSchema("gone", "int64", shape=()),
            FeatureSchema("low", "bytes", shape=()),
            FeatureSchema("n", "int64", shape=()),
            FeatureSchema("rare", "bytes", shape=(), required=False),
            FeatureSchema("typ", "int64", shape=()),
            FeatureSchema("vec", "int64", shape=(2,)),
            FeatureSchema("x", "float", shape=()),
        ),
        (
            FeatureConstraints("city", values=(b"Oslo", b"Lima", b"Rome")),
            FeatureConstraints("n", min=0, max=9),
            FeatureConstraints("rare", min_count=N),
            FeatureConstraints("x", min=0.0, max=3.0),
        ),
    )


def planted_rows() -> list[dict[str, Any]]:
    rows = []
    for i in range(N):
        row = clean_row(i)
        del row["gone"]  # SCHEMA_MISSING_COLUMN: in no example
        row["extra"] = 1.0 if i % 2 else None  # SCHEMA_NEW_COLUMN: in 30 examples
        if row["extra"] is None:
            del row["extra"]
        row["typ"] = float(i % 5)  # UNEXPECTED_DATA_TYPE: float for int64, 60 examples
        if i % 4 == 0:
            del row["low"]  # FEATURE_TYPE_LOW_FRACTION_PRESENT: missing in 15
        if i % 3 == 0:
            del row["rare"]  # FEATURE_TYPE_LOW_NUMBER_PRESENT: 40 < 60
        if i in (1, 7, 13):
            row["city"] = b"Paris"  # ENUM_TYPE_UNEXPECTED_STRING_VALUES: 3 + 2
        if i in (2, 8):
            row["city"] = b"Berlin"
        if i in (3, 4):
            row["n"] = -1  # INT_TYPE_SMALL_INT: 2
        if i in (5, 6, 9):
            row["n"] = 100  # INT_TYPE_BIG_INT: 3
        if i == 10:
            row["x"] = -0.5  # FLOAT_TYPE_SMALL_FLOAT: 1
        if i in (11, 12, 14, 15):
            row["x"] = 9.5  # FLOAT_TYPE_BIG_FLOAT: 4
        if i in (16, 17, 18, 19, 20):
            row["vec"] = np.array([1, 2, 3], dtype=np.int64)  # HIGH_NUMBER_VALUES: 5
        if i in (21, 22):
            row["vec"] = np.array([1], dtype=np.int64)  # LOW_NUMBER_VALUES: 2
        rows.append(row)
    return rows


# type -> (feature, count)
EXPECTED = {
    "SCHEMA_MISSING_COLUMN": ("gone", N),
    "SCHEMA_NEW_COLUMN": ("extra", 30),
    "UNEXPECTED_DATA_TYPE": ("typ", N),
    "FEATURE_TYPE_LOW_FRACTION_PRESENT": ("low", 15),
    "FEATURE_TYPE_LOW_NUMBER_PRESENT": ("rare", 40),
    "FEATURE_TYPE_LOW_NUMBER_VALUES": ("vec", 2),
    "FEATURE_TYPE_HIGH_NUMBER_VALUES": ("vec", 5),
    "ENUM_TYPE_UNEXPECTED_STRING_VALUES": ("city", 5),
    "INT_TYPE_SMALL_INT": ("n", 2),
    "INT_TYPE_BIG_INT": ("n", 3),
    "FLOAT_TYPE_SMALL_FLOAT": ("x", 1),
    "FLOAT_TYPE_BIG_FLOAT": ("x", 4),
}


def write(path: Path, rows: list[dict[str, Any]]) -> str:
    with featurepipe.TFRecordWriter(str(path)) as w:
        for row in rows:
            w.write(featurepipe.encode_example(row))
    return str(path)


def test_every_anomaly_type_is_planted() -> None:
    assert set(EXPECTED) == set(ANOMALY_TYPES)


def test_clean_data_has_no_anomalies(tmp_path: Path) -> None:
    path = write(tmp_path / "clean.tfrecord", [clean_row(i) for i in range(N)])
    result = validate_data(path, schema())
    assert result.ok
    assert result.anomalies == ()
    assert result.to_json()["num_anomalies"] == 0
    assert validate_statistics(compute_statistics(path), schema()) == ()


def test_planted_anomalies_each_once_with_counts(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.tfrecord", planted_rows())
    result = validate_data(path, schema())
    got = [(a.type, a.feature, a.count) for a in result.anomalies]
    assert sorted(got) == sorted((t, f, c) for t, (f, c) in EXPECTED.items())
    by_type = {a.type: a for a in result.anomalies}
    assert all(not a.approximate and a.severity == "ERROR" for a in result.anomalies)
    enum = by_type["ENUM_TYPE_UNEXPECTED_STRING_VALUES"]
    assert enum.values == (("Paris", 3), ("Berlin", 2))
    assert enum.fraction == pytest.approx(5 / N)
    assert "'Paris' (3)" in enum.description
    assert by_type["FEATURE_TYPE_LOW_FRACTION_PRESENT"].observed == pytest.approx(45 / N)
    assert by_type["INT_TYPE_BIG_INT"].observed == 100.0
    assert by_type["FLOAT_TYPE_SMALL_FLOAT"].observed == -0.5
    assert by_type["UNEXPECTED_DATA_TYPE"].observed == "float"
    doc = result.to_json()
    assert doc["ok"] is False and doc["num_anomalies"] == len(EXPECTED)
    json.dumps(doc, allow_nan=False)


def test_from_a_statistics_file(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.tfrecord", planted_rows())
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps(compute_statistics(path).to_json()), encoding="utf-8")
    anomalies = validate_statistics(load_statistics(stats), schema())
    got = {a.type: (a.feature, a.count) for a in anomalies}
    assert len(anomalies) == len(EXPECTED)
    for typ, (feature, count) in EXPECTED.items():
        if typ.endswith(("_INT", "_FLOAT")):
            # out-of-range counts need the data; the statistics hold min / max only
            assert got[typ] == (feature, None)
        else:
            assert got[typ] == (feature, count)


def test_truncated_top_values_are_lower_bounds() -> None:
    acc = StatisticsAccumulator(featurepipe.analysis.StatsOptions(top_k=1))
    rows = [b"a"] * 5 + [b"b"] * 3 + [b"c"] * 2
    acc.add(decode_examples([encode_example({"c": v}) for v in rows]))
    s = Schema((FeatureSchema("c", "bytes", shape=()),), (FeatureConstraints("c", values=(b"a",)),))
    assert validate_statistics(acc.extract(), s) == ()  # "b", "c" fell out of the top 1
    acc2 = StatisticsAccumulator(featurepipe.analysis.StatsOptions(top_k=2))
    acc2.add(decode_examples([encode_example({"c": v}) for v in rows]))
    (a,) = validate_statistics(acc2.extract(), s)
    assert (a.count, a.approximate) == (3, True)
    assert a.description.startswith("Unexpected string values: at least 3 of 10")


def test_max_fraction_outside_and_optional_missing() -> None:
    acc = StatisticsAccumulator()
    acc.add(decode_examples([encode_example({"c": v}) for v in [b"a"] * 9 + [b"z"]]))
    stats = acc.extract()
    feats = (FeatureSchema("c", "bytes", shape=()), FeatureSchema("opt", "float", required=False))
    loose = Schema(feats, (FeatureConstraints("c", values=(b"a",), max_fraction_outside=0.1),))
    assert validate_statistics(stats, loose) == ()  # 10% allowed; "opt" is optional
    strict = Schema(feats, (FeatureConstraints("c", values=(b"a",), max_fraction_outside=0.05),))
    assert [a.type for a in validate_statistics(stats, strict)] == [
        "ENUM_TYPE_UNEXPECTED_STRING_VALUES"
    ]


def test_infer_constraints_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path / "clean.tfrecord", [clean_row(i) for i in range(N)])
    stats = compute_statistics(path, options=featurepipe.analysis.StatsOptions(top_k=1000))
    inferred = infer_constraints(stats, featurepipe.example.infer_schema(
        featurepipe.read_records(path)))
    assert inferred.constraints_for("city").values == (b"Lima", b"Oslo", b"Rome")  # type: ignore[union-attr]
    assert inferred.constraints_for("n").max == 9  # type: ignore[union-attr]
    assert validate_data(path, inferred).ok
    bad = write(tmp_path / "bad.tfrecord", planted_rows())
    types = {a.type for a in validate_data(bad, inferred).anomalies}
    assert {"ENUM_TYPE_UNEXPECTED_STRING_VALUES", "INT_TYPE_BIG_INT", "SCHEMA_NEW_COLUMN"} <= types
    with pytest.raises(ConfigError, match="max_domain_size"):
        infer_constraints(stats, inferred, max_domain_size=-1)


def test_not_statistics() -> None:
    with pytest.raises(ConfigError, match="statistics"):
        validate_statistics({"nope": 1}, schema())
    with pytest.raises(ConfigError, match="format_version"):
        validate_statistics({"format_version": 99, "features": []}, schema())


def test_infinite_values_out_of_range_and_strict_json(tmp_path: Path) -> None:
    rows = [{"x": float("inf")}, {"x": float("nan")}, {"x": 1.0}, {"x": -float("inf")}]
    path = write(tmp_path / "inf.tfrecord", rows)
    s = Schema((FeatureSchema("x", "float", shape=()),), (FeatureConstraints("x", min=0, max=5),))
    result = validate_data(path, s)
    got = {a.type: (a.count, a.fraction, a.observed) for a in result.anomalies}
    assert got == {
        "FLOAT_TYPE_SMALL_FLOAT": (1, pytest.approx(1 / 3), -math.inf),
        "FLOAT_TYPE_BIG_FLOAT": (1, pytest.approx(1 / 3), math.inf),
    }
    doc = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert {a["observed"] for a in doc["anomalies"]} == {"Infinity", "-Infinity"}


def test_empty_data() -> None:
    s = Schema((FeatureSchema("x", "float", shape=(), required=False),))
    acc = StatisticsAccumulator()
    assert validate_statistics(acc.extract(), s) == ()
    (a,) = validate_statistics(acc.extract(), Schema((FeatureSchema("x", "float", shape=()),)))
    assert (a.type, a.count) == ("SCHEMA_MISSING_COLUMN", 0)


def test_kind_changing_inside_a_batch(tmp_path: Path) -> None:
    # one feature is int64 in some examples and float in others of the same batch
    rows = [{"n": i} if i % 3 else {"n": float(i)} for i in range(30)]
    path = write(tmp_path / "mixed.tfrecord", rows)
    s = Schema((FeatureSchema("n", "int64", shape=()),))
    (a,) = validate_data(path, s).anomalies
    assert (a.type, a.observed, a.count) == ("UNEXPECTED_DATA_TYPE", "float|int64", 30)
