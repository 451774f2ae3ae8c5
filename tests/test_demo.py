"""pipelines.demo: the README's main-job command, end to end on a slice of the sample data.

One subprocess run with ``--rows 400 --epochs 2`` (every step: convert,
inspect, analyze, train) shared by the checks below, plus the cheap checks of
the command line and of the output-directory guard that need no TF or Beam.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample" / "census.csv"
ROWS = 400


def _run_demo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    return subprocess.run(
        [sys.executable, "-m", "pipelines.demo", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _broken_rows(limit: int) -> list[int]:
    """CSV line numbers of the rows the demo must dead-letter, among the first ``limit``."""
    with open(SAMPLE, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        lines = []
        for i, row in enumerate(reader):
            if i >= limit:
                break
            bad_age = len(row) == len(header) and not row[0].lstrip("-").isdigit()
            if len(row) != len(header) or bad_age or row[-1] == "":
                lines.append(reader.line_num)
    return lines


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, Any]]:
    pytest.importorskip("tensorflow")
    pytest.importorskip("apache_beam")
    out = tmp_path_factory.mktemp("demo") / "out"
    proc = _run_demo("--output", str(out), "--rows", str(ROWS), "--epochs", "2")
    assert proc.returncode == 0, proc.stdout[-4000:] + "\n--- stderr ---\n" + proc.stderr[-4000:]
    summary = json.loads((out / "demo_summary.json").read_text(encoding="utf-8"))
    return out, proc.stdout, summary


def test_sample_has_the_three_broken_rows_it_promises() -> None:
    # make_sample.py breaks data rows 111, 222 and 333 (0-based; +2 for the header line).
    assert _broken_rows(3000) == [113, 224, 335]


def test_demo_dead_letters_the_broken_rows(demo: tuple[Path, str, dict[str, Any]]) -> None:
    out, stdout, summary = demo
    want = _broken_rows(ROWS)
    conv = summary["convert"]
    assert conv["rows_read"] == ROWS
    assert conv["rows_dead_lettered"] == len(want) == 3
    assert conv["rows_written"] == ROWS - len(want)
    assert sorted(conv["dead_letter_lines"]) == want
    assert f"dead-lettered {len(want)} " in stdout
    for line in want:
        assert re.search(rf"census\.csv:{line}\s+column=", stdout), line
    letters = [
        json.loads(x)
        for p in conv["dead_letter_files"]
        for x in Path(p).read_text(encoding="utf-8").splitlines()
    ]
    assert sorted(d["line"] for d in letters) == want
    assert {d["reason"] for d in letters} == {
        "UNEXPECTED_DATA_TYPE",
        "SCHEMA_MISSING_COLUMN",
        "MALFORMED_ROW",
    }


def test_demo_writes_its_files(demo: tuple[Path, str, dict[str, Any]]) -> None:
    out, _, summary = demo
    shards = sorted((out / "tfrecords").glob("census-*-of-00004.tfrecord.gz"))
    assert len(shards) == 4
    assert all(s.read_bytes()[:2] == b"\x1f\x8b" for s in shards)  # gzip
    assert sum(s["records"] for s in summary["convert"]["shards"]) == ROWS - 3
    for name in (
        "tfrecords/census.schema.json",
        "tfrecords/census.summary.json",
        "stats.html",
        "analysis_spec.json",
        "artifacts/analysis.json",
        "artifacts/statistics.json",
        "column_specs.json",
        "model.keras",
        "demo_summary.json",
    ):
        assert (out / name).is_file(), name
    assert (out / "stats.html").read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype")
    analysis = json.loads((out / "artifacts" / "analysis.json").read_text(encoding="utf-8"))
    assert set(analysis["vocabularies"]) == {
        "education",
        "native_country",
        "occupation",
        "workclass",
    }
    assert summary["analyze"]["local_engine_agrees"] is True


def test_demo_prints_each_step_and_inspect_output(
    demo: tuple[Path, str, dict[str, Any]],
) -> None:
    _, stdout, summary = demo
    for n, name in enumerate(("convert", "inspect", "analyze", "train"), 1):
        assert f"Step {n}/4: {name}" in stdout
    for verb in ("count", "head", "verify", "schema", "stats"):
        assert f"$ featurepipe inspect {verb} " in stdout
    assert re.search(rf"^\s*{ROWS - 3:,}\s+total$", stdout, re.MULTILINE)  # inspect count
    assert stdout.count("intact records") == 4  # inspect verify, one line per shard
    assert f"first {ROWS} data rows" in stdout


def test_demo_trains_and_reports_final_auc(demo: tuple[Path, str, dict[str, Any]]) -> None:
    _, stdout, summary = demo
    match = re.search(r"^Final held-out AUC: (\d\.\d+)\s+accuracy: (\d\.\d+)", stdout, re.MULTILINE)
    assert match, stdout[-2000:]
    train = summary["train"]
    assert float(match.group(1)) == pytest.approx(train["held_out_auc"], abs=1e-4)
    assert 0.0 <= train["held_out_auc"] <= 1.0
    assert len(train["loss_per_epoch"]) == 2
    assert train["train_examples"] + train["held_out_examples"] == ROWS - 3
    assert train["reload_max_abs_difference"] <= 1e-6
    assert re.search(r"epoch\s+1/2\s+loss \d", stdout)


def test_demo_refuses_to_wipe_a_foreign_directory(tmp_path: Path) -> None:
    keep = tmp_path / "precious.txt"
    keep.write_text("do not delete", encoding="utf-8")
    proc = _run_demo("--output", str(tmp_path), timeout=60)
    assert proc.returncode == 2
    assert "non-empty directory that this demo did not create" in proc.stderr
    assert keep.read_text(encoding="utf-8") == "do not delete"


def test_demo_rejects_bad_options(tmp_path: Path) -> None:
    proc = _run_demo("--output", str(tmp_path / "o"), "--rows", "0", timeout=60)
    assert proc.returncode == 2
    assert "--rows must be >= 1. Received: --rows 0" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_demo_fails_with_a_clear_message_when_a_step_cannot_work(tmp_path: Path) -> None:
    pytest.importorskip("apache_beam")
    # One row fills one shard: nothing is left to hold out.
    proc = _run_demo("--output", str(tmp_path / "o"), "--rows", "1", timeout=120)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "demo FAILED at step 3 (analyze)" in proc.stderr
    assert "need at least 2 non-empty shards" in proc.stderr
    assert "Step 1/4: convert" in proc.stdout
    assert "Step 4/4" not in proc.stdout
    assert not (tmp_path / "o" / "demo_summary.json").exists()
