"""Skew / drift distances (featurepipe.analysis._compare) against hand-computed values."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import featurepipe
from featurepipe.analysis import (
    StatisticsAccumulator,
    StatsOptions,
    align_histograms,
    cdf_histograms,
    compare_data,
    compare_statistics,
    compute_statistics,
    jensen_shannon_divergence,
    linf_distance,
)
from featurepipe.errors import ConfigError
from featurepipe.example import (
    FeatureConstraints,
    FeatureSchema,
    Schema,
    decode_examples,
    encode_example,
)


def stats_of(rows: list[dict[str, Any]]) -> Any:
    acc = StatisticsAccumulator(StatsOptions(top_k=1000))
    acc.add(decode_examples([encode_example(r) for r in rows]))
    return acc.extract()


def test_linf_hand_computed() -> None:
    # baseline a .6 b .3 c .1; current a .4 b .4 d .2: |diffs| a .2 b .1 c .1 d .2
    d, at = linf_distance({"a": 6, "b": 3, "c": 1}, {"a": 4, "b": 4, "d": 2})
    assert d == pytest.approx(0.2)
    assert at == "a"  # tie with "d": the first in sorted order
    assert linf_distance({}, {}) == (0.0, None)
    assert linf_distance({"a": 1}, {"a": 7}) == (0.0, "a")


def test_jsd_same_bins_hand_computed() -> None:
    # P = (1/2, 1/2), Q = (1, 0), M = (3/4, 1/4)
    # KL(P||M) = 1/2 log2(2/3) + 1/2 log2(2); KL(Q||M) = log2(4/3)
    want = ((0.5 * math.log2(2 / 3) + 0.5) + math.log2(4 / 3)) / 2
    got = jensen_shannon_divergence(
        {"edges": [0, 1, 2], "counts": [3, 3]}, {"edges": [0, 1, 2], "counts": [7, 0]}
    )
    assert got == pytest.approx(want)
    assert want == pytest.approx(0.311278124459)


def test_jsd_common_bin_edges() -> None:
    # [0, 2) with 4 values vs [1, 3) with 2: common edges 0, 1, 2, 3, uniform within bins:
    # P = (1/2, 1/2, 0), Q = (0, 1/2, 1/2), M = (1/4, 1/2, 1/4): KL = 1/2 each
    a = {"edges": [0.0, 2.0], "counts": [4.0]}
    b = {"edges": [1.0, 3.0], "counts": [2.0]}
    labels, ca, cb = align_histograms(a, b)
    assert labels == ["[0, 1)", "[1, 2)", "[2, 3)"]
    assert (ca, cb) == ([2.0, 2.0, 0.0], [0.0, 1.0, 1.0])
    assert jensen_shannon_divergence(a, b) == pytest.approx(0.5)
    # symmetric, and 0 on itself
    assert jensen_shannon_divergence(b, a) == pytest.approx(0.5)
    assert jensen_shannon_divergence(a, a) == 0.0


def test_jsd_point_masses_nan_and_inf() -> None:
    point = {"edges": [5.0, 5.0], "counts": [10.0]}
    spread = {"edges": [0.0, 10.0], "counts": [10.0]}
    labels, ca, cb = align_histograms(point, spread)
    assert labels == ["[0, 10)", "=5"]
    assert jensen_shannon_divergence(point, spread) == 1.0
    assert jensen_shannon_divergence(point, point) == 0.0
    # NaN and inf share one bucket each: identical data has divergence 0 (TFDV: > 0)
    with_nan = {"edges": [0.0, 1.0], "counts": [2.0], "num_nan": 2, "num_inf": 1}
    assert jensen_shannon_divergence(with_nan, with_nan) == 0.0
    no_nan = {"edges": [0.0, 1.0], "counts": [2.0]}
    # P = (2/5, 1/5, 2/5), Q = (1, 0, 0), M = (7/10, 1/10, 1/5)
    p, m = (0.4, 0.2, 0.4), (0.7, 0.1, 0.2)  # KL(Q||M) = log2(1 / 0.7)
    want = (sum(x * math.log2(x / y) for x, y in zip(p, m, strict=True))
            + math.log2(1 / 0.7)) / 2
    assert jensen_shannon_divergence(with_nan, no_nan) == pytest.approx(want)
    assert jensen_shannon_divergence({"edges": [], "counts": []}, no_nan) is None


def test_compare_bytes_feature_from_data() -> None:
    base = stats_of([{"c": v} for v in [b"a"] * 6 + [b"b"] * 3 + [b"c"]])
    cur = stats_of([{"c": v} for v in [b"a"] * 4 + [b"b"] * 4 + [b"d"] * 2] + [{}] * 10)
    cmp = compare_statistics(base, cur, threshold=0.15)
    f = cmp["c"]
    assert (f.metric, f.at_value, f.flagged) == ("linf", "a", True)
    assert f.distance == pytest.approx(0.2)
    assert f.new_values == (("d", 2),)
    assert f.vanished_values == (("c", 1),)
    assert (f.baseline_missing_rate, f.current_missing_rate) == (0.0, 0.5)
    assert f.missing_rate_change == 0.5
    (a,) = cmp.anomalies
    assert a.type == "COMPARATOR_L_INFTY_HIGH" and a.feature == "c"
    assert compare_statistics(base, cur, threshold=0.25).anomalies == ()
    doc = cmp.to_json()
    json.dumps(doc, allow_nan=False)
    assert doc["features"][0]["new_values"] == [["d", 2]]


def test_compare_numeric_feature_and_statuses() -> None:
    base = stats_of([{"x": float(i % 2), "k": 1, "gone": 1} for i in range(100)])
    cur = stats_of([{"x": float(i % 2), "k": 1.5, "new": b"z"} for i in range(100)])
    cmp = compare_statistics(base, cur, threshold=0.0)
    assert cmp["x"].metric == "jensen_shannon"
    assert cmp["x"].distance == 0.0 and not cmp["x"].flagged
    assert cmp["k"].status == "kind_changed"
    assert cmp["gone"].status == "baseline_only"
    assert cmp["new"].status == "current_only"
    # one-sided features first, then by distance
    assert [f.name for f in cmp.features][-1] == "x"


def test_schema_thresholds_skew_and_drift() -> None:
    base = stats_of([{"c": v} for v in [b"a", b"b"] * 5])
    cur = stats_of([{"c": v} for v in [b"a"] * 10])
    schema = Schema(
        (FeatureSchema("c", "bytes", shape=()),),
        (FeatureConstraints("c", skew_threshold=0.6, drift_threshold=0.4),),
    )
    assert compare_statistics(base, cur, schema=schema).anomalies == ()
    (a,) = compare_statistics(base, cur, schema=schema, mode="drift").anomalies
    assert a.observed == pytest.approx(0.5) and a.expected == 0.4
    # the schema's threshold wins over the default one
    assert compare_statistics(base, cur, schema=schema, threshold=0.1).anomalies == ()
    with pytest.raises(ConfigError, match="mode"):
        compare_statistics(base, cur, mode="sideways")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="threshold"):
        compare_statistics(base, cur, threshold=-1)


def test_statistics_file_gives_the_same_comparison(tmp_path: Path) -> None:
    rows = [{"c": [b"a", b"b", b"c"][i % 3], "x": float(i)} for i in range(90)]
    rows2 = [{"c": [b"a", b"b", b"a"][i % 3], "x": float(i) * 1.5} for i in range(90)]
    paths = []
    for name, rs in (("b", rows), ("c", rows2)):
        p = tmp_path / f"{name}.tfrecord"
        with featurepipe.TFRecordWriter(str(p)) as w:
            for r in rs:
                w.write(encode_example(r))
        paths.append(str(p))
    sb, sc = (compute_statistics(p) for p in paths)
    direct = compare_statistics(sb, sc)
    via_json = compare_statistics(
        json.loads(json.dumps(sb.to_json())), json.loads(json.dumps(sc.to_json()))
    )
    assert [f.to_json() for f in direct.features] == [f.to_json() for f in via_json.features]
    assert direct["c"].distance == pytest.approx(1 / 3)
    assert 0 < direct["x"].distance < 1  # type: ignore[operator]


def test_common_bins_constant_features() -> None:
    a = stats_of([{"v": 3} for _ in range(10)])
    b = stats_of([{"v": 4} for _ in range(10)])
    assert compare_statistics(a, b)["v"].distance == 1.0
    assert compare_statistics(a, a)["v"].distance == 0.0
    assert compare_statistics(a, b, bins="tfdv")["v"].distance == 1.0


def heavy_tailed(tmp_path: Path) -> tuple[str, str, str]:
    rng = np.random.default_rng(0)
    paths = []
    for name, scale in (("a", 1.0), ("b", 1.0), ("c", 3.0)):
        p = tmp_path / f"{name}.tfrecord"
        with featurepipe.TFRecordWriter(str(p)) as w:
            for v in rng.lognormal(2.0, 1.5, size=5000):
                w.write(encode_example({"x": int(v * scale)}))
        paths.append(str(p))
    return paths[0], paths[1], paths[2]


def test_heavy_tails_two_samples_of_one_distribution(tmp_path: Path) -> None:
    a, b, shifted = heavy_tailed(tmp_path)
    same_data = compare_data(a, b)["x"]
    assert same_data.histograms is not None
    assert same_data.distance < 0.01  # type: ignore[operator]
    moved = compare_data(a, shifted)["x"].distance
    assert moved > 0.05  # type: ignore[operator]
    sa, sb, sc = (compute_statistics(p) for p in (a, b, shifted))
    same_stats = compare_statistics(sa, sb)["x"].distance
    assert same_stats < 0.02  # type: ignore[operator]
    assert compare_statistics(sa, sc)["x"].distance > 0.05  # type: ignore[operator]
    # TFDV's rebinning of the equal-width histograms sees far more difference
    tfdv = compare_statistics(sa, sb, bins="tfdv")["x"].distance
    assert tfdv > 5 * same_stats  # type: ignore[operator]


def test_cdf_histograms_jump_at_repeated_quantiles() -> None:
    # half the values are 0: the quantiles repeat 0 up to the median
    num = {
        "count": 10,
        "histogram": {"edges": [0.0, 5.0, 10.0], "counts": [7.0, 3.0]},
        "quantiles": [[0.0, 0.0], [0.25, 0.0], [0.5, 0.0], [0.75, 4.0], [1.0, 10.0]],
    }
    ha, hb = cdf_histograms(num, num)
    assert ha["edges"] == [0.0, 4.0, 5.0, 10.0]
    assert ha["counts"][0] == pytest.approx(5.0)  # the point mass at 0
    assert sum(ha["counts"]) == pytest.approx(10.0)
    assert jensen_shannon_divergence(ha, hb) == 0.0


def test_linf_with_top_lists_of_different_lengths() -> None:
    rows = [{"c": b"v%02d" % (i % 30)} for i in range(300)]
    long = stats_of(rows)  # 30 values listed
    acc = StatisticsAccumulator(StatsOptions(top_k=5))
    acc.add(decode_examples([encode_example(r) for r in rows]))
    short = acc.extract()  # 5 values listed, incomplete
    assert compare_statistics(long, short)["c"].distance == 0.0
    assert compare_statistics(short, long)["c"].distance == 0.0
