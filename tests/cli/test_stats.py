"""Tests for ``featurepipe inspect stats`` (featurepipe.cli.stats)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from featurepipe.cli.main import main
from featurepipe.example._codec import encode_example
from featurepipe.tfrecord import TFRecordWriter


@pytest.fixture
def data(tmp_path: Path) -> list[str]:
    paths = []
    for shard in range(2):
        path = tmp_path / f"part-{shard}.tfrecord"
        with TFRecordWriter(str(path), compression="gzip" if shard else "none") as w:
            for i in range(shard * 100, shard * 100 + 100):
                row: dict[str, object] = {"x": float(i), "city": [b"Oslo", b"Lima"][i % 2]}
                if i % 4 == 0:
                    row["rare"] = np.array([i, i], dtype=np.int64)
                w.write(encode_example(row))
        paths.append(str(path))
    return paths


def test_stats_text(data: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "stats", *data]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "200 examples, 3 features"
    assert out[1].split() == ["feature", "kind", "missing", "vals/ex", "distinct", "summary"]
    rows = {line.split()[0]: line for line in out[2:]}
    assert set(rows) == {"city", "rare", "x"}
    assert rows["rare"].split()[1:4] == ["int64", "75.0%", "2"]
    assert "mean 99.5" in rows["x"]
    assert "median 99" in rows["x"]
    assert "top 'Lima' (100), 'Oslo' (100)" in rows["city"]


def test_stats_json_and_html(
    data: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.html"
    assert (
        main(
            [
                "inspect",
                "stats",
                str(Path(data[0]).parent / "part-*"),
                "--json",
                "--html",
                str(report),
                "--top-k",
                "1",
                "--bins",
                "5",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["format_version"] == 1
    assert doc["num_examples"] == 200
    assert doc["sources"] == data
    by_name = {f["name"]: f for f in doc["features"]}
    assert by_name["x"]["numeric"]["count"] == 200
    assert len(by_name["x"]["numeric"]["histogram"]["counts"]) == 5
    assert by_name["city"]["bytes"]["top_values"] == [["Lima", 100]]
    assert by_name["rare"]["num_missing"] == 150
    page = report.read_text(encoding="utf-8")
    assert all(name in page for name in ("city", "rare", "x"))


def test_stats_usage_errors(data: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["inspect", "stats", data[0], "--eps", "2"])
    assert info.value.code == 2
    assert "not in the open interval (0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["inspect", "stats", data[0], "--top-k", "0"])
    assert info.value.code == 2
    assert "0 is not >= 1" in capsys.readouterr().err
    assert main(["inspect", "stats", str(Path(data[0]).parent / "missing-*.tfrecord")]) == 2
    assert capsys.readouterr().err.startswith("Error:")


def test_stats_data_error_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.tfrecord"
    with TFRecordWriter(str(path)) as w:
        w.write(encode_example({"a": 1}))
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF  # break the data CRC of the only record
    path.write_bytes(bytes(raw))
    assert main(["inspect", "stats", str(path), "--json"]) == 1
    err = capsys.readouterr().err
    assert "bad.tfrecord" in err
    assert "record 0" in err


def test_stats_cli_imports_no_heavy_modules() -> None:
    code = (
        "import argparse, sys\n"
        "import featurepipe.cli.stats as s\n"
        "p = argparse.ArgumentParser(); s.add_parser(p.add_subparsers())\n"
        "bad = [m for m in ('numpy', 'tensorflow', 'keras', 'apache_beam') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert out == ""


def test_stats_text_marks_unique_columns(
    data: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", "stats", *data]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert "unique (row id?)" in rows["x"]  # 200 different floats
    assert "unique (row id?)" not in rows["city"] and "unique (row id?)" not in rows["rare"]
