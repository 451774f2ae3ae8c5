"""Tests for ``featurepipe analyze`` (featurepipe.cli.analyze)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from featurepipe.analysis._artifacts import Analysis
from featurepipe.cli.main import main
from featurepipe.example._codec import encode_example
from featurepipe.tfrecord import TFRecordWriter

SPEC = {
    "format_version": 1,
    "analyzers": [
        {"analyzer": "vocabulary", "key": "c", "top_k": 2},
        {"analyzer": "quantiles", "key": "x", "num_bins": 4},
        {"analyzer": "moments", "key": "x"},
    ],
}


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[str, str]:
    data = tmp_path / "data.tfrecord"
    with TFRecordWriter(str(data)) as w:
        for i in range(100):
            w.write(encode_example({"x": float(i), "c": [b"a", b"b", b"b", b"c"][i % 4]}))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    return str(data), str(spec)


def test_analyze_local_json(
    inputs: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, spec = inputs
    out = tmp_path / "local"
    assert main(["analyze", data, "--spec", spec, "--output", str(out), "--local", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["num_examples"] == 100
    assert doc["quantiles"][0]["boundaries"] == [24.0, 49.0, 74.0]
    assert doc["moments"]["x"]["mean"] == 49.5
    result = Analysis.load(out)
    assert result.vocabulary("c") == ["b", "a"]
    assert (out / "statistics.json").exists()


def test_analyze_beam_matches_local(
    inputs: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("apache_beam")
    data, spec = inputs
    assert main(["analyze", data, "--spec", spec, "--output", str(tmp_path / "l"), "--local"]) == 0
    assert main(["analyze", data, "--spec", spec, "--output", str(tmp_path / "b")]) == 0
    assert "analysis.json" in capsys.readouterr().err
    local, remote = Analysis.load(tmp_path / "l"), Analysis.load(tmp_path / "b")
    assert local.vocabularies == remote.vocabularies
    assert local.boundaries("x", 4) == remote.boundaries("x", 4)  # exact below sketch capacity
    assert local.moments("x") == pytest.approx(remote.moments("x"))


def test_analyze_usage_errors(
    inputs: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, spec = inputs
    bad = tmp_path / "bad.json"
    bad.write_text('{"format_version": 1, "analyzers": [{"analyzer": "median", "key": "x"}]}')
    out = str(tmp_path / "o")
    assert main(["analyze", data, "--spec", str(bad), "--output", out, "--local"]) == 2
    assert "Unknown analyzer 'median'" in capsys.readouterr().err
    assert (
        main(["analyze", data, "--spec", str(tmp_path / "nope.json"), "--output", out, "--local"])
        == 2
    )
    assert "Cannot read the analysis spec" in capsys.readouterr().err
    assert main(["analyze", data, "--spec", spec, "--output", out, "--local", "--eps", "0"]) == 2
    with pytest.raises(SystemExit) as info:
        main(["analyze", data, "--output", out])
    assert info.value.code == 2


def test_analyze_data_error_exit_1(
    inputs: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = inputs
    spec = tmp_path / "floats.json"
    spec.write_text('{"format_version": 1, "analyzers": [{"analyzer": "vocabulary", "key": "x"}]}')
    code = main(["analyze", data, "--spec", str(spec), "--output", str(tmp_path / "o"), "--local"])
    assert code == 1
    assert "'x' holds floats" in capsys.readouterr().err


def test_analyze_local_does_not_import_beam(inputs: tuple[str, str], tmp_path: Path) -> None:
    data, spec = inputs
    code = (
        "import sys\n"
        "from featurepipe.cli.main import main\n"
        f"rc = main(['analyze', {data!r}, '--spec', {spec!r}, '--output', "
        f"{str(tmp_path / 'o')!r}, '--local'])\n"
        "heavy = [m for m in ('apache_beam', 'tensorflow', 'keras') if m in sys.modules]\n"
        "print(rc, heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert out == "0 []"
