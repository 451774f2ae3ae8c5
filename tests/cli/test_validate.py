"""Tests for ``inspect schema --with-domains``, ``inspect validate`` and ``inspect compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import featurepipe
from featurepipe.cli.main import main


def write(path: Path, rows: list[dict[str, Any]]) -> str:
    with featurepipe.TFRecordWriter(str(path)) as w:
        for row in rows:
            w.write(featurepipe.encode_example(row))
    return str(path)


def clean_rows(n: int = 60) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        row: dict[str, Any] = {
            "city": [b"Oslo", b"Lima", b"Rome"][i % 3],
            "n": i % 10,
            "x": float(i % 7) / 2,
            "tags": np.array([b"t", b"u", b"t"][: 1 + i % 3], dtype=object),
        }
        if i % 4 == 0:
            del row["tags"]
        rows.append(row)
    return rows


@pytest.fixture
def schema_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    data = write(tmp_path / "train.tfrecord", clean_rows())
    assert main(["inspect", "schema", data, "--json", "--with-domains"]) == 0
    path = tmp_path / "schema.json"
    path.write_text(capsys.readouterr().out, encoding="utf-8")
    return path


def test_schema_with_domains(schema_file: Path) -> None:
    doc = json.loads(schema_file.read_text(encoding="utf-8"))
    assert doc["format_version"] == 1
    assert doc["records"] == 60
    assert doc["constraints"] == {
        "city": {"presence": {"min_count": 1}, "domain": {"values": ["Lima", "Oslo", "Rome"]}},
        "n": {"presence": {"min_count": 1}, "domain": {"min": 0, "max": 9}},
        "tags": {
            "presence": {"min_count": 1},
            "value_count": {"min": 1, "max": 3},
            "domain": {"values": ["t", "u"]},
        },
        "x": {"presence": {"min_count": 1}, "domain": {"min": 0.0, "max": 3.0}},
    }
    # it loads as a schema
    schema = featurepipe.example.Schema.load(schema_file)
    assert schema.constraints_for("city").values == (b"Lima", b"Oslo", b"Rome")  # type: ignore[union-attr]


def test_schema_with_domains_size_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write(tmp_path / "d.tfrecord", clean_rows())
    assert main(["inspect", "schema", data, "--json", "--with-domains", "--max-domain-size", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "domain" not in doc["constraints"]["city"]
    assert doc["constraints"]["tags"]["domain"] == {"values": ["t", "u"]}
    # text output lists the constraints
    assert main(["inspect", "schema", data, "--with-domains"]) == 0
    out = capsys.readouterr().out
    assert "constraints" in out and '"Lima"' in out


def bad_rows() -> list[dict[str, Any]]:
    rows = clean_rows()
    for i, row in enumerate(rows):
        if i < 4:
            row["city"] = b"Paris"
        if i == 5:
            row["n"] = 11
        row["new"] = 1
    return rows


def test_validate_exit_codes_and_text(
    schema_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = write(tmp_path / "clean.tfrecord", clean_rows())
    assert main(["inspect", "validate", clean, "--schema", str(schema_file)]) == 0
    assert "no anomalies" in capsys.readouterr().out
    bad = write(tmp_path / "bad.tfrecord", bad_rows())
    report = tmp_path / "v.html"
    assert main(["inspect", "validate", bad, "--schema", str(schema_file), "--html", str(report)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "60 examples: 3 anomalies"
    assert out[1].split()[:5] == ["feature", "anomaly", "severity", "count", "description"]
    lines = {ln.split()[1]: ln.split() for ln in out[2:]}
    assert lines["ENUM_TYPE_UNEXPECTED_STRING_VALUES"][:4] == [
        "city", "ENUM_TYPE_UNEXPECTED_STRING_VALUES", "ERROR", "4",
    ]
    assert lines["INT_TYPE_BIG_INT"][3] == "1"
    assert lines["SCHEMA_NEW_COLUMN"][3] == "60"
    page = report.read_text(encoding="utf-8")
    assert "Anomalies (3)" in page and "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in page


def test_validate_json_and_stats_file(
    schema_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path / "bad.tfrecord", bad_rows())
    assert main(["inspect", "validate", bad, "--schema", str(schema_file), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["num_examples"] == 60 and doc["sources"] == [bad]
    assert [(a["type"], a["feature"], a["count"]) for a in doc["anomalies"]] == [
        ("ENUM_TYPE_UNEXPECTED_STRING_VALUES", "city", 4),
        ("INT_TYPE_BIG_INT", "n", 1),
        ("SCHEMA_NEW_COLUMN", "new", 60),
    ]
    assert doc["anomalies"][0]["values"] == [["Paris", 4]]
    # the same from a statistics file saved by `inspect stats --json`
    assert main(["inspect", "stats", bad, "--json"]) == 0
    stats = tmp_path / "stats.json"
    stats.write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["inspect", "validate", str(stats), "--schema", str(schema_file), "--json"]) == 1
    doc2 = json.loads(capsys.readouterr().out)
    assert [(a["type"], a["count"]) for a in doc2["anomalies"]] == [
        ("ENUM_TYPE_UNEXPECTED_STRING_VALUES", 4),
        ("INT_TYPE_BIG_INT", None),
        ("SCHEMA_NEW_COLUMN", 60),
    ]


def test_validate_usage_errors(
    schema_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = write(tmp_path / "clean.tfrecord", clean_rows())
    with pytest.raises(SystemExit) as info:
        main(["inspect", "validate", clean])
    assert info.value.code == 2
    assert "--schema" in capsys.readouterr().err
    assert main(["inspect", "validate", str(tmp_path / "none-*"), "--schema", str(schema_file)]) == 2
    assert capsys.readouterr().err.startswith("Error:")
    not_schema = tmp_path / "x.json"
    not_schema.write_text("[1]", encoding="utf-8")
    assert main(["inspect", "validate", clean, "--schema", str(not_schema)]) == 2


def test_compare_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write(tmp_path / "base.tfrecord", clean_rows())
    cur = write(tmp_path / "cur.tfrecord", bad_rows())
    # identical data: nothing flagged
    assert main(["inspect", "compare", base, base, "--threshold", "0.01"]) == 0
    capsys.readouterr()
    report = tmp_path / "c.html"
    assert main(
        ["inspect", "compare", base, cur, "--threshold", "0.05", "--json", "--html", str(report)]
    ) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] == "skew" and doc["ok"] is False
    by = {f["name"]: f for f in doc["features"]}
    # city: Oslo 20 -> 17, Lima 20 -> 19, Rome 20 -> 20, Paris 0 -> 4 (of 60)
    assert by["city"]["metric"] == "linf"
    assert by["city"]["distance"] == pytest.approx(4 / 60)
    assert by["city"]["at_value"] == "Paris"
    assert by["city"]["new_values"] == [["Paris", 4]]
    assert by["new"]["status"] == "current_only"
    assert by["n"]["metric"] == "jensen_shannon" and by["n"]["distance"] > 0
    assert {a["type"] for a in doc["anomalies"]} >= {"COMPARATOR_L_INFTY_HIGH"}
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    # text output, and baseline statistics from a file
    assert main(["inspect", "stats", base, "--json", "--top-k", "1000"]) == 0
    stats = tmp_path / "base-stats.json"
    stats.write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["inspect", "compare", str(stats), cur, "--threshold", "0.05"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("skew: baseline 60 examples, current 60 examples;")
    city = next(ln for ln in out if " city " in ln)
    assert city.split()[:5] == ["!", "city", "bytes", "L-inf", f"{4 / 60:.4g}"]


def test_compare_schema_thresholds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write(tmp_path / "base.tfrecord", clean_rows())
    cur = write(tmp_path / "cur.tfrecord", bad_rows())
    schema = featurepipe.example.Schema(
        (featurepipe.example.FeatureSchema("city", "bytes", shape=()),),
        (featurepipe.example.FeatureConstraints("city", skew_threshold=0.5, drift_threshold=0.01),),
    )
    path = tmp_path / "s.json"
    schema.save(path)
    assert main(["inspect", "compare", base, cur, "--schema", str(path)]) == 0
    capsys.readouterr()
    assert main(["inspect", "compare", base, cur, "--schema", str(path), "--mode", "drift"]) == 1
    with pytest.raises(SystemExit) as info:
        main(["inspect", "compare", base, cur, "--threshold", "-1"])
    assert info.value.code == 2


def test_cli_help_imports_no_heavy_modules() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from featurepipe.cli.main import build_parser\n"
        "p = build_parser()\n"
        "for argv in (['inspect', 'validate', '--help'], ['inspect', 'compare', '--help']):\n"
        "    try:\n"
        "        p.parse_args(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "bad = [m for m in ('numpy', 'tensorflow', 'keras', 'apache_beam') if m in sys.modules]\n"
        "print('heavy:' + ','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip().splitlines()
    assert out[-1] == "heavy:"


@pytest.mark.parametrize("runner", ["--local", "beam"])
def test_statistics_from_analyze(
    runner: str, schema_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `featurepipe analyze` (local or on Beam) writes the same statistics document:
    # validate and compare take it in place of the data
    if runner == "beam":
        pytest.importorskip("apache_beam")
    bad = write(tmp_path / "bad.tfrecord", bad_rows())
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"format_version": 1, "analyzers": [
        {"analyzer": "vocabulary", "key": "city"}]}), encoding="utf-8")
    out = tmp_path / "out"
    argv = ["analyze", bad, "--spec", str(spec), "--output", str(out)]
    assert main([*argv, "--local"] if runner == "--local" else argv) == 0
    capsys.readouterr()
    stats = str(out / "statistics.json")
    assert main(["inspect", "validate", stats, "--schema", str(schema_file), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [(a["type"], a["count"]) for a in doc["anomalies"]] == [
        ("ENUM_TYPE_UNEXPECTED_STRING_VALUES", 4),
        ("INT_TYPE_BIG_INT", None),
        ("SCHEMA_NEW_COLUMN", 60),
    ]
    assert main(["inspect", "compare", stats, bad, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all(f["distance"] in (None, 0.0) for f in doc["features"])
