"""Smoke test of the benchmark suite: tiny data, one step each; the benchmarks themselves
are not tests and never run here."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

datagen = pytest.importorskip("bench.datagen")
harness = pytest.importorskip("bench.harness")


def test_criteo_rows_are_deterministic_and_prefix_stable() -> None:
    a = list(datagen.criteo_examples(40, seed=5))
    b = list(datagen.criteo_examples(60, seed=5))
    assert a == b[:40]
    assert a != list(datagen.criteo_examples(40, seed=6))


def test_criteo_values_have_the_criteo_shape() -> None:
    chunk = next(datagen.criteo_chunks(2000, seed=0))
    assert set(chunk) == set(datagen.COLUMNS)
    assert set(chunk["label"].values.tolist()) <= {0, 1}
    cats = chunk["C3"].values[chunk["C3"].present]
    assert all(len(v) == 8 and int(v, 16) >= 0 for v in cats.tolist())
    # I12 is mostly missing in Criteo, I2 never.
    assert chunk["I12"].present.mean() < 0.4
    assert chunk["I2"].present.all()


def test_csv_row_i_matches_record_i(tmp_path: Path) -> None:
    from featurepipe.example._codec import decode_example

    info = datagen.write_criteo_csv(tmp_path / "d.csv", num_rows=30, seed=2)
    assert info.records == 30
    with open(tmp_path / "d.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    records = list(datagen.criteo_examples(30, seed=2))
    for row, rec in zip(rows, records, strict=True):
        ex = decode_example(rec)
        for name in datagen.COLUMNS:
            if row[name] == "":
                assert name not in ex
            elif name.startswith("C"):
                assert ex[name].values.tolist() == [row[name].encode()]
            else:
                assert ex[name].values.tolist() == [int(row[name])]


def test_standin_encoder_matches_featurepipe(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("featurepipe.example._codec")
    monkeypatch.setenv("FEATUREPIPE_BENCH_STANDIN_ENCODER", "1")
    standin = list(datagen.criteo_examples(50, seed=1))
    monkeypatch.delenv("FEATUREPIPE_BENCH_STANDIN_ENCODER")
    assert datagen.encoder_name().startswith("featurepipe")
    assert list(datagen.criteo_examples(50, seed=1)) == standin


@pytest.mark.parametrize("compression", ["none", "gzip", "zlib"])
def test_tfrecord_files_hold_the_same_records(tmp_path: Path, compression: str) -> None:
    from featurepipe.tfrecord import read_records

    info = datagen.ensure_criteo_tfrecord(0.02, compression=compression, data_dir=tmp_path)
    got = list(read_records(info.path))
    assert len(got) == info.records > 0
    assert got == list(datagen.criteo_examples(info.records))
    assert info.stream_bytes == sum(len(r) + 16 for r in got) >= 20_000
    # cached: the second call reuses the file
    again = datagen.ensure_criteo_tfrecord(0.02, compression=compression, data_dir=tmp_path)
    assert again.path == info.path
    assert again.seconds == info.seconds


def test_large_records_are_at_least_64_kib(tmp_path: Path) -> None:
    info = datagen.ensure_large_tfrecord(0.3, data_dir=tmp_path)
    sizes = [len(r) for r in datagen.iter_framed_records(info.path)]
    assert len(sizes) == info.records >= 2
    assert min(sizes) >= 64 * 1024


def _worker(task: str, args: dict[str, object]) -> dict[str, object]:
    m = harness.measure([sys.executable, "-m", "bench.core.worker", task, json.dumps(args)],
                        cwd=ROOT, timeout=120)
    assert m.returncode == 0, m.stderr_tail
    assert m.max_rss_mb > 0
    assert m.wall_s > 0
    report: dict[str, object] = m.report
    return report


def test_core_worker_steps_run(tmp_path: Path) -> None:
    info = datagen.ensure_criteo_tfrecord(0.05, data_dir=tmp_path)
    assert _worker("raw", {"path": info.path})["bytes"] == info.file_bytes
    assert _worker("fp_read", {"path": info.path})["records"] == info.records
    assert _worker("fp_read", {"path": info.path, "pure": True})["records"] == info.records
    assert _worker("decode_fp", {"path": info.path, "records": 20, "batch": 8})["records"] == 20
    assert _worker("decode_pb_columns", {"path": info.path, "records": 20})["records"] == 20


def test_dispatcher_lists_core() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "--list"], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    assert "core" in proc.stdout
    assert "peers" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "bench", "nope"], cwd=ROOT, check=False,
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert "unknown benchmark" in bad.stderr
