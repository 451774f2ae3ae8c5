"""``featurepipe columns suggest`` on three differently shaped generated datasets: the spec it
prints trains with ``featurepipe train`` as is, and its choices are the documented ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from featurepipe.cli.main import main
from featurepipe.columns import ColumnSpecs
from featurepipe.example import encode_example
from featurepipe.tfrecord import write_records


def _suggest(capsys: pytest.CaptureFixture[str], out: Path, *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["columns", "suggest", *args]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    (out / "columns.json").write_text(captured.out)
    lines = captured.err.splitlines()
    # one line per feature: key, choice, why
    assert len(lines) == 1 + len(doc["columns"]) + len(doc["left_out"])
    for c in [*doc["columns"], *doc["left_out"]]:
        assert any(line.split()[0] == c["key"] and c["why"] in line for line in lines[1:])
    return doc


def _train(out: Path, data: str, label: str, *extra: str) -> dict[str, Any]:
    pytest.importorskip("tensorflow")
    argv = ["train", "--data", data, "--spec", str(out / "columns.json"), "--label", label,
            "--epochs", "1", "--batch-size", "64", "--output", str(out / "model"), "--json",
            *extra]  # fmt: skip
    assert main(argv) == 0
    metrics: dict[str, Any] = json.loads((out / "model" / "metrics.json").read_text())
    assert metrics["train_examples"] > 0
    return metrics


def _kinds(doc: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {c["key"]: (c["type"], c.get("as")) for c in doc["columns"]}


def test_suggest_tabular_csv_through_convert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Diamonds-like: a row id, small and medium string domains, a skewed and a normal number,
    an int64 label, converted from CSV by `featurepipe convert`."""
    rng = np.random.default_rng(0)
    lines = ["id,carat,depth,cut,color,city,price_band"]
    for i in range(600):
        carat = rng.lognormal(-0.5, 0.6)
        cut = ["Ideal", "Good", "Fair", "Premium", "Very Good"][int(rng.integers(0, 5))]
        lines.append(
            f"{i},{carat:.3f},{rng.normal(61, 1.5):.2f},{cut},{'DEFGHIJ'[int(rng.integers(0, 7))]},"
            f"city{int(rng.integers(0, 60))},{int(carat > 0.7)}"
        )
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    assert main(["convert", str(tmp_path / "d.csv"), "--output", str(tmp_path / "out" / "d"),
                 "--num-shards", "2", "--compression", "gzip"]) == 0  # fmt: skip
    data = str(tmp_path / "out" / "d-*")
    doc = _suggest(capsys, tmp_path, data, "--label", "price_band")
    assert _kinds(doc) == {
        "carat": ("bucketized", None),  # lognormal: skewed
        "depth": ("numeric", None),  # normal: z-score
        "cut": ("vocabulary", "indicator"),  # 5 values
        "color": ("vocabulary", "indicator"),  # 7 values
        "city": ("vocabulary", "embedding"),  # 60 values
    }
    assert doc["columns"][[c["key"] for c in doc["columns"]].index("city")]["dimension"] == 17
    assert {c["key"]: c["why"] for c in doc["left_out"]}.keys() == {"id", "price_band"}
    metrics = _train(tmp_path, data, "price_band")  # an int64 label from convert's schema
    assert metrics["train"]["auc"] > 0.5
    # The same choices from `featurepipe analyze`'s statistics (--artifacts), which reads the
    # compact spelling too.
    assert main(["analyze", data, "--spec", str(tmp_path / "columns.json"), "--output",
                 str(tmp_path / "art"), "--local"]) == 0  # fmt: skip
    doc2 = _suggest(capsys, tmp_path, data, "--label", "price_band", "--artifacts",
                    str(tmp_path / "art"))  # fmt: skip
    assert set(_kinds(doc2)) == set(_kinds(doc))
    # stats' default top-k is 20: the 60 cities are not all known there, so they are hashed
    assert _kinds(doc2)["city"] == ("hashed", "embedding")


def test_suggest_wide_categorical_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Click-log-like: a user id, a large item domain, tag lists, a device, a float label."""
    rng = np.random.default_rng(1)
    records = []
    for i in range(1500):
        item = int(rng.integers(0, 2500))
        tags = np.array([b"sale", b"new", b"gift", b"eco"][: int(rng.integers(0, 4)) + 1], object)
        records.append(encode_example({
            "user": f"user-{i:05d}-{int(rng.integers(1 << 30)):x}",
            "item": f"item{item}",
            "device": ["ios", "android", "web"][i % 3],
            "tags": tags,
            "spend": float(item % 7) + float(rng.normal()),
        }))  # fmt: skip
    write_records(tmp_path / "clicks-00000-of-00002.tfrecord", records[:700])
    write_records(tmp_path / "clicks-00001-of-00002.tfrecord", records[700:], "gzip")
    data = str(tmp_path / "clicks@2.tfrecord")
    doc = _suggest(capsys, tmp_path, data, "--label", "spend")
    kinds = _kinds(doc)
    assert kinds == {
        "device": ("vocabulary", "indicator"),
        "item": ("hashed", "embedding"),  # > 1,000 values
        "tags": ("vocabulary", "indicator"),  # lists of 4 values: counts
    }
    item = next(c for c in doc["columns"] if c["key"] == "item")
    assert item["num_bins"] == 4096 and item["dimension"] == 35  # ~1,160 values
    assert "hashed into 4,096 bins + embedding of ceil(6 * " in item["why"]
    left = {c["key"]: c["why"] for c in doc["left_out"]}
    assert set(left) == {"user", "spend"} and "id-like" in left["user"]
    _train(tmp_path, data, "spend", "--task", "regression", "--model", "dnn")


def test_suggest_numeric_multiclass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Sensor-like: numbers only: normal, zero-inflated counts, a fixed-length vector, a
    constant, a variable-length list, values missing in some examples; a 3-class label."""
    rng = np.random.default_rng(2)
    records = []
    for i in range(500):
        temp = float(rng.normal(20, 5))
        row: dict[str, Any] = {
            "temp": temp,
            "events": int(rng.random() < 0.15) * int(rng.integers(1, 100)),
            "accel": rng.normal(size=3).astype(np.float32),
            "firmware": 3,
            "samples": rng.random(int(rng.integers(0, 4))).astype(np.float32),
            "humidity": float(rng.uniform(20, 80)),
            "state": int(temp > 17) + int(temp > 23),
        }
        if i % 7 == 0:
            del row["humidity"]
        records.append(encode_example(row))
    write_records(tmp_path / "sensors.tfrecord", records)
    data = str(tmp_path / "sensors.tfrecord")
    doc = _suggest(capsys, tmp_path, data, "--label", "state")
    assert _kinds(doc) == {
        "temp": ("numeric", None),
        "events": ("bucketized", None),  # mostly zeros: skewed
        "accel": ("numeric", None),  # 3 values each
        "humidity": ("numeric", None),
    }
    humidity = next(c for c in doc["columns"] if c["key"] == "humidity")
    assert humidity["default_value"] == pytest.approx(humidity["normalizer"]["mean"])
    assert "missing in 72" in humidity["why"]
    left = {c["key"]: c["why"] for c in doc["left_out"]}
    assert set(left) == {"firmware", "samples", "state"}
    specs = ColumnSpecs.load(tmp_path / "columns.json")
    assert specs.is_resolved and specs["accel"].shape == (3,)  # type: ignore[attr-defined]
    _train(tmp_path, data, "state", "--task", "multiclass", "--num-classes", "3")


def test_columns_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_records(tmp_path / "a.tfrecord", [encode_example({"x": float(i)}) for i in range(5)])
    assert main(["columns"]) == 2
    assert "suggest" in capsys.readouterr().err
    assert main(["columns", "suggest", str(tmp_path / "a.tfrecord"), "--label", "y"]) == 2
    assert "label 'y' is not a feature" in capsys.readouterr().err
    assert main(["columns", "suggest", str(tmp_path / "a.tfrecord"), "--label", "x",
                 "--artifacts", str(tmp_path)]) == 2  # fmt: skip
    assert "No statistics.json in" in capsys.readouterr().err
