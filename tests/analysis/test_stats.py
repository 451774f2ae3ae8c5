"""Tests for featurepipe.analysis._stats against exact answers computed from the same rows."""

from __future__ import annotations

import json
import math
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from featurepipe.analysis._stats import StatisticsAccumulator, StatsOptions, compute_statistics
from featurepipe.errors import ConfigError, DataError
from featurepipe.example._codec import decode_examples, encode_example
from featurepipe.tfrecord import TFRecordWriter


def make_rows(n: int, seed: int = 0) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    words = [b"red", b"green", b"blue", b"", "caf\u00e9".encode(), b"\xff\xfe"]
    rows: list[dict[str, object]] = []
    for i in range(n):
        row: dict[str, object] = {
            "id": i,
            "price": np.float32(1e6 + rng.normal()) if i % 10 else np.float32("nan"),
            "color": words[int(rng.integers(0, len(words)))],
            "tags": np.array(
                [words[int(j)] for j in rng.integers(0, 3, int(rng.integers(0, 4)))], dtype=object
            ),
        }
        if i % 4 == 0:
            del row["color"]  # missing in a quarter of the rows
        if i >= n // 2:
            row["late"] = [float(i)]  # a feature that only appears in the second half
        rows.append(row)
    return rows


def write_shards(tmp_path: Path, rows: list[dict[str, object]], num_shards: int) -> list[str]:
    paths = []
    for s in range(num_shards):
        path = tmp_path / f"data-{s:05d}-of-{num_shards:05d}.tfrecord"
        with TFRecordWriter(str(path)) as w:
            for row in rows[s::num_shards]:
                w.write(encode_example(row))
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, object]], list[str]]:
    rows = make_rows(3000)
    return rows, write_shards(tmp_path_factory.mktemp("stats"), rows, 3)


def test_compute_statistics_matches_exact_answers(dataset: tuple[list, list[str]]) -> None:
    rows, paths = dataset
    stats = compute_statistics(paths, options=StatsOptions(batch_size=256))
    assert stats.num_examples == len(rows)
    assert [f.name for f in stats.features] == ["color", "id", "late", "price", "tags"]
    assert stats.sources == tuple(paths)

    color = stats["color"]
    colors = [r["color"] for r in rows if "color" in r]
    assert color.kind == "bytes"
    assert (color.num_present, color.num_missing) == (len(colors), len(rows) - len(colors))
    assert color.missing_rate == pytest.approx(0.25)
    expected_top = sorted(Counter(colors).items(), key=lambda kv: (-kv[1], kv[0]))
    assert color.bytes is not None
    assert list(color.bytes.top_values) == expected_top
    assert color.bytes.top_values_exact
    assert color.bytes.avg_length == pytest.approx(np.mean([len(c) for c in colors]))
    assert color.bytes.num_empty == colors.count(b"")
    assert (color.bytes.min_length, color.bytes.max_length) == (0, max(map(len, colors)))
    assert color.distinct == 6
    assert (color.value_counts.min, color.value_counts.max, color.value_counts.mean) == (1, 1, 1.0)

    price = stats["price"]
    values = np.array([r["price"] for r in rows], dtype=np.float32).astype(np.float64)
    finite = values[~np.isnan(values)]
    assert price.kind == "float"
    assert price.numeric is not None
    m = price.numeric.moments
    assert (m.count, m.num_nan) == (finite.size, len(rows) // 10)
    assert m.mean == pytest.approx(np.mean(finite - finite[0]) + finite[0], rel=1e-12)
    assert m.variance == pytest.approx(np.var(finite - finite[0]), rel=1e-9)
    assert (m.min, m.max) == (finite.min(), finite.max())
    ordered = np.sort(finite)
    for q, v in price.numeric.quantiles:  # the true rank range of v meets q * n within eps
        lo, hi = np.searchsorted(ordered, v, "left"), np.searchsorted(ordered, v, "right")
        assert max(0, lo - q * finite.size, q * finite.size - hi) <= 0.01 * finite.size
    assert sum(price.numeric.histogram.counts) == pytest.approx(finite.size)

    ids = stats["id"]
    assert ids.kind == "int64"
    assert ids.numeric is not None
    assert ids.numeric.moments.mean == pytest.approx((len(rows) - 1) / 2)
    assert abs(ids.distinct - len(rows)) <= 0.05 * len(rows)

    late = stats["late"]
    assert (late.num_present, late.num_missing) == (len(rows) // 2, len(rows) // 2)

    tags = stats["tags"]
    lengths = [len(r["tags"]) for r in rows]  # type: ignore[arg-type]
    assert tags.value_counts.num_empty == lengths.count(0)
    assert tags.value_counts.mean == pytest.approx(np.mean(lengths))
    assert list(tags.length_histogram[:4]) == [lengths.count(k) for k in range(4)]
    assert sum(tags.length_histogram) == len(rows)


def test_statistics_merge_of_shards_equals_whole(dataset: tuple[list, list[str]]) -> None:
    _, paths = dataset
    whole = compute_statistics(paths).to_json()
    parts = []
    for path in paths:
        acc = StatisticsAccumulator()
        from featurepipe.tfrecord import read_records

        acc.add(decode_examples(list(read_records(path))))
        parts.append(pickle.loads(pickle.dumps(acc)))  # as a worker would ship it
    merged = parts[0].merge(parts[1]).merge(parts[2]).extract(paths).to_json()
    for a, b in zip(whole["features"], merged["features"], strict=True):
        assert a["name"] == b["name"]
        assert a["num_present"] == b["num_present"]
        assert a["value_counts"] == b["value_counts"]
        assert a["length_histogram"] == b["length_histogram"]
        assert a["distinct_estimate"] == b["distinct_estimate"]  # HLL merge is exact
        if "bytes" in a:
            assert a["bytes"] == b["bytes"]
        if "numeric" in a:
            for key in ("count", "min", "max", "num_nan"):
                assert a["numeric"][key] == b["numeric"][key]
            assert a["numeric"]["mean"] == pytest.approx(b["numeric"]["mean"], rel=1e-12)
            assert a["numeric"]["variance"] == pytest.approx(b["numeric"]["variance"], rel=1e-9)


def test_statistics_json_is_valid_strict_json(dataset: tuple[list, list[str]]) -> None:
    _, paths = dataset
    doc = compute_statistics(paths[0]).to_json()
    text = json.dumps(doc, allow_nan=False)
    back = json.loads(text)
    assert back["format_version"] == 1
    assert "featurepipe_version" in back
    color = next(f for f in back["features"] if f["name"] == "color")
    rendered = [v for v, _ in color["bytes"]["top_values"]]
    assert "caf\u00e9" in rendered
    assert {"base64": "//4="} in rendered


def test_statistics_special_floats_and_kindless() -> None:
    records = [
        encode_example({"x": [np.inf, -np.inf, np.nan, 0.0]}),
        encode_example({"x": np.array([], np.float32), "y": 1}),
        encode_example({}),
    ]
    acc = StatisticsAccumulator()
    acc.add(decode_examples(records))
    stats = acc.extract()
    x = stats["x"]
    assert (x.num_present, x.num_missing, x.value_counts.num_empty) == (2, 1, 1)
    assert x.numeric is not None
    assert (x.numeric.moments.num_inf, x.numeric.moments.num_nan) == (2, 1)
    assert x.numeric.moments.max == math.inf
    doc = x.to_json()
    assert doc["numeric"]["max"] == "Infinity"
    json.dumps(doc, allow_nan=False)


def test_statistics_mixed_kinds_across_batches() -> None:
    acc = StatisticsAccumulator()
    acc.add(decode_examples([encode_example({"v": 1})]))
    acc.add(decode_examples([encode_example({"v": b"one"})]))
    stats = acc.extract()
    assert stats["v"].kind == "bytes|int64"
    assert stats["v"].numeric is not None
    assert stats["v"].bytes is not None


def test_statistics_top_values_bounded_memory() -> None:
    acc = StatisticsAccumulator(StatsOptions(max_top_entries=50, top_k=3))
    for start in range(0, 5000, 500):
        rows = [encode_example({"u": f"user-{i}".encode()}) for i in range(start, start + 500)]
        rows += [encode_example({"u": b"hot"})] * 40
        acc.add(decode_examples(rows))
    u = acc.extract()["u"]
    assert u.bytes is not None
    assert not u.bytes.top_values_exact
    assert u.bytes.top_values[0] == (b"hot", 400)
    assert len(acc.features["u"].top.counts) <= 100  # type: ignore[union-attr]
    assert abs(u.distinct - 5001) <= 0.05 * 5001


def test_compute_statistics_progress_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.tfrecord"
    with TFRecordWriter(str(path)) as w:
        w.write(encode_example({"a": 1}))
        w.write(b"\x0a\xff not an example")
    seen: list[int] = []
    with pytest.raises(DataError) as info:
        compute_statistics(str(path), progress=lambda n, b: seen.append(n))
    assert info.value.path == str(path)
    assert info.value.record == 1
    with pytest.raises(ConfigError):
        compute_statistics(str(tmp_path / "nothing-*.tfrecord"))
    with pytest.raises(ConfigError, match="Received: top_k=0"):
        StatsOptions(top_k=0)


def test_compute_statistics_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.tfrecord"
    with TFRecordWriter(str(path)):
        pass
    stats = compute_statistics(str(path))
    assert stats.num_examples == 0
    assert stats.features == ()


def test_distinct_is_capped_at_the_number_of_values_and_unique_is_marked() -> None:
    # HyperLogLog estimates 3,082 distinct values for the integers 0..2999 (precision 12):
    # more distinct values than rows, as seen on a real file. The count is capped.
    acc = StatisticsAccumulator(StatsOptions(batch_size=500))
    rows = [
        encode_example({"row": i, "name": f"n{i}".encode(), "cut": [b"a", b"b"][i % 2]})
        for i in range(3000)
    ]
    acc.add(decode_examples(rows))
    stats = acc.extract()
    row, name, cut = stats["row"], stats["name"], stats["cut"]
    assert row.distinct == 3000 and row.is_unique
    assert name.distinct == 3000 and name.is_unique  # counted exactly
    assert cut.distinct == 2 and not cut.is_unique
    doc = stats.to_json()
    assert [f["unique"] for f in doc["features"]] == [False, True, True]
    for f in doc["features"]:
        assert f["distinct_estimate"] <= f["value_counts"]["num_values"]


def test_distinct_of_repeated_values_is_not_unique() -> None:
    acc = StatisticsAccumulator()
    acc.add(decode_examples([encode_example({"x": [1, 1]}), encode_example({"y": 5})]))
    stats = acc.extract()
    assert stats["x"].distinct == 1 and not stats["x"].is_unique
    assert not stats["y"].is_unique  # one value: nothing to compare
