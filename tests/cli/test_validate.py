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
