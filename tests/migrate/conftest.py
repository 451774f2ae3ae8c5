"""Shared fixtures of the migration tests: TensorFlow (imported once), generated records.

The records carry the edges tf.feature_column treats specially: missing features
(defaults), empty strings, out-of-vocabulary values, out-of-range identity ids
(kept without a default, replaced with one), values exactly on bucket
boundaries, several values per row.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")
tf.get_logger().setLevel("ERROR")

from featurepipe.example import encode_example  # noqa: E402
from featurepipe.tfrecord import TFRecordWriter  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
FC_ALL = str(HERE / "fc_all.py")
COLORS = ["red", "green", "blue", "cyan", "magenta"]
NUM_ROWS = 300


def _row(rng: np.random.Generator, i: int) -> dict[str, Any]:
    strings = ["red", "green", "blue", "", "é", "-1", "purple", "日本", "x" * 40]
    row: dict[str, Any] = {
        "x": [float(rng.choice([-1.0, 0.0, 0.5, 2.0, 1.0, -3.25, 0.25, 7.5]))],
        "v": [float(v) for v in rng.normal(size=2).astype(np.float32)],
        "label": [i % 2],
    }
    if i % 3:
        row["n"] = [int(rng.integers(-5, 100))]
    if i % 4:
        row["m"] = [float(np.float32(rng.normal()))]
    k = int(rng.integers(0, 4))
    if k:
        row["s"] = [str(rng.choice(strings)) for _ in range(k)]
    if i % 5:
        row["h_int"] = [int(v) for v in rng.choice([10, 2, 0, -5, 7, 3, 2**40, -1], 2)]
    if i % 7:
        row["color"] = [str(rng.choice([*COLORS, "black", ""]))]
    row["j"] = [int(v) for v in rng.integers(-2, 8, int(rng.integers(1, 3)))]
    if i % 2:
        row["k"] = [int(rng.integers(-3, 9))]
    row["a"] = [f"a{int(rng.integers(0, 5))}"]
    row["b"] = [f"b{int(v)}" for v in rng.integers(0, 5, int(rng.integers(1, 3)))]
    m = int(rng.integers(0, 4))
    if m:
        row["t"] = [str(rng.choice(["p", "q", "r", "zz"])) for _ in range(m)]
        row["tw"] = [float(np.float32(w)) for w in rng.uniform(0.1, 3.0, m)]
    return row


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A directory with colors.txt (CRLF line ends, no final newline) and data.tfrecord."""
    d = tmp_path_factory.mktemp("migrate")
    (d / "colors.txt").write_bytes("\r\n".join(COLORS).encode())
    rng = np.random.default_rng(13)
    with TFRecordWriter(str(d / "data.tfrecord")) as w:
        for i in range(NUM_ROWS):
            w.write(encode_example(_row(rng, i)))
    return d


@pytest.fixture
def in_workdir(workdir: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """Runs the test from ``workdir`` (relative vocabulary paths, as TF opens them)."""
    monkeypatch.chdir(workdir)
    return workdir
