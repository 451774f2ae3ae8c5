"""The conversion job on real tools' CSV files (issue 12): R's and pandas' headers, headerless
files, chosen and renamed columns, columns the schema lacks, and what the user sees on errors."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

beam = pytest.importorskip("apache_beam")

from featurepipe.example import FeatureSchema, Schema  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
R_FILE = ROOT / "tests" / "testdata" / "r_write_csv.csv"


def _job(argv: list[str]) -> dict[str, Any]:
    from pipelines.convert import run

    return run([*argv, "--runner", "DirectRunner"])


def _tf_read(prefix: str, spec: dict[str, Any]) -> list[dict[str, list[Any]]]:
    tf = pytest.importorskip("tensorflow")
    files = sorted(str(p) for p in pathlib.Path(prefix).parent.glob(f"{pathlib.Path(prefix).name}-*-of-*"))
    rows = []
    for rec in tf.data.TFRecordDataset(files):
        parsed = tf.io.parse_single_example(rec, spec)
        rows.append({k: np.asarray(v.numpy()).reshape(-1).tolist() for k, v in parsed.items()})
    return rows


def test_r_file_inferred_schema_renames_recorded(tmp_path: pathlib.Path) -> None:
    tf = pytest.importorskip("tensorflow")
    prefix = str(tmp_path / "o" / "r")
    summary = _job(
        ["--input", str(R_FILE), "--output", prefix, "--rename", "Unnamed: 0=row_id"]
    )
    assert (summary["rows_read"], summary["rows_written"], summary["rows_dead_lettered"]) == (3, 3, 0)
    assert [(r["header"], r["name"], r["reason"]) for r in summary["renamed_columns"]] == [
        ("", "row_id", "rename"),
        ("cut", "cut.1", "duplicate_name"),
    ]
    schema_json = json.loads(pathlib.Path(f"{prefix}.schema.json").read_text())
    assert schema_json["renamed_columns"] == summary["renamed_columns"]
    schema = Schema.load(f"{prefix}.schema.json")  # still a schema for --schema
    assert schema.names == ("row_id", "carat", "cut", "price", "cut.1")
    rows = _tf_read(
        prefix,
        {
            "row_id": tf.io.FixedLenFeature([], tf.int64),
            "cut": tf.io.FixedLenFeature([], tf.string),
            "cut.1": tf.io.FixedLenFeature([], tf.string),
            "price": tf.io.FixedLenFeature([], tf.int64),
        },
    )
    got = sorted((r["row_id"][0], r["cut"][0], r["cut.1"][0], r["price"][0]) for r in rows)
    assert got == [(1, b"Ideal", b"x", 326), (2, b"Premium", b"y", 326), (3, b"Good", b"z", 327)]


def test_pandas_file_chosen_columns_and_headerless_multi_processing(tmp_path: pathlib.Path) -> None:
    tf = pytest.importorskip("tensorflow")
    pd = pytest.importorskip("pandas")
    src = tmp_path / "pandas.csv"
    pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y,z", "w"]}).to_csv(src)  # index on, the default
    prefix = str(tmp_path / "o" / "p")
    summary = _job(["--input", str(src), "--output", prefix, "--columns", "a,b"])
    assert summary["rows_written"] == 3 and summary["renamed_columns"][0]["name"] == "Unnamed: 0"
    assert Schema.load(f"{prefix}.schema.json").names == ("a", "b")
    rows = _tf_read(prefix, {"a": tf.io.FixedLenFeature([], tf.int64), "b": tf.io.FixedLenFeature([], tf.string)})
    assert sorted(r["a"][0] for r in rows) == [1, 2, 3]
    # The same data without its header line, named on the command line, in worker processes.
    bare = tmp_path / "bare.csv"
    bare.write_bytes(src.read_bytes().split(b"\n", 1)[1] + b"9,bad\n")
    prefix2 = str(tmp_path / "o" / "bare")
    summary = _job(
        [
            "--input", str(bare), "--output", prefix2, "--no_header",
            "--column_names", "idx,a,b", "--drop_columns", "idx", "--rename", "b=label",
            "--direct_running_mode", "multi_processing", "--direct_num_workers", "2",
        ]
    )  # fmt: skip
    assert (summary["rows_read"], summary["rows_written"]) == (4, 3)
    assert summary["dead_letters_by_reason"] == {"MALFORMED_ROW": 1}
    (dl,) = summary["dead_letter_files"]
    assert json.loads(pathlib.Path(dl).read_text())["line"] == 4  # line 1 is a row
    assert Schema.load(f"{prefix2}.schema.json").names == ("a", "label")
    rows = _tf_read(prefix2, {"label": tf.io.FixedLenFeature([], tf.string)})
    assert sorted(r["label"][0] for r in rows) == [b"w", b"x", b"y,z"]


def test_columns_the_schema_lacks(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    from featurepipe.cli.main import main

    src = tmp_path / "in.csv"
    src.write_text("x,y,new,other\n1,a,5,q\n2,b,6,r\nz,c,7,s\n")
    schema = tmp_path / "s.json"
    Schema((FeatureSchema("x", "int64", shape=()), FeatureSchema("y", "bytes", shape=()))).save(schema)
    prefix = str(tmp_path / "o" / "n")
    base = ["convert", str(src), "--output", prefix, "--schema", str(schema)]
    assert main([*base, "--drop-columns", "other"]) == 0
    err = capsys.readouterr().err
    assert err.count("SCHEMA_NEW_COLUMN") == 1 and "new (3 rows)" in err and "other" not in err
    summary = json.loads(pathlib.Path(f"{prefix}.summary.json").read_text())
    assert summary["unexpected_columns"] == {"new": 3}
    assert summary["rows_read"] == summary["rows_written"] + summary["rows_dead_lettered"] == 3
    # --on-new-column error: fails before converting, exit 1, naming the file, the columns, the option.
    os.remove(f"{prefix}.summary.json")
    assert main([*base, "--on-new-column", "error"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {src}: SCHEMA_NEW_COLUMN: ") and err.count("\n") == 1
    assert "['new', 'other']" in err and "--on-new-column ignore" in err
    assert not os.path.exists(f"{prefix}.summary.json")
    # A chosen column that no file has is a usage error.
    assert main([*base, "--columns", "x,yy"]) == 2
    assert "'yy'" in capsys.readouterr().err


def test_jsonl_key_after_the_first_rows_fails_with_on_new_column_error(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from featurepipe.cli.main import main

    src = tmp_path / "in.jsonl"
    src.write_text('{"x": 1}\n{"x": 2}\n{"x": 3, "extra": 1}\n{"x": 4}\n')
    schema = tmp_path / "s.json"
    Schema((FeatureSchema("x", "int64", shape=()),)).save(schema)
    prefix = str(tmp_path / "o" / "j")
    base = ["convert", str(src), "--output", prefix, "--schema", str(schema), "--batch-size", "2"]
    assert main([*base, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["unexpected_columns"] == {"extra": 1} and summary["rows_written"] == 4
    assert main([*base, "--on-new-column", "error"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"Error: {prefix}: SCHEMA_NEW_COLUMN: column(s) ['extra'] of the inputs are not in the "
        "schema; no shards were written. Add them to the schema, leave them out with "
        "--drop-columns, or pass --on-new-column ignore to convert without them."
    ]
    summary = json.loads(pathlib.Path(f"{prefix}.summary.json").read_text())
    assert (summary["status"], summary["failure"], summary["shards"]) == ("failed", "SCHEMA_NEW_COLUMN", [])


def _cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "featurepipe.cli.main", "convert", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
        timeout=300,
    )


@pytest.mark.parametrize("case", ["max_bad_fraction", "bad_header"])
def test_errors_are_one_line_in_process_and_in_worker_processes(
    tmp_path: pathlib.Path, case: str
) -> None:
    src = tmp_path / "in.csv"
    if case == "max_bad_fraction":
        src.write_text("x,y\n1,a\n2,b\noops,c\n")
        schema = tmp_path / "s.json"
        Schema((FeatureSchema("x", "int64", shape=()), FeatureSchema("y", "bytes", shape=()))).save(
            schema
        )
        extra = ["--schema", str(schema), "--max-bad-fraction", "0.1"]
    else:
        src.write_bytes(b'"x"oops,y\n1,2\n')
        extra = []
    results = []
    for mode in ("in_memory", "multi_processing"):
        out = str(tmp_path / mode / "o")
        res = _cli([str(src), "--output", out, *extra, "--direct-running-mode", mode,
                    "--direct-num-workers", "2"])  # fmt: skip
        assert res.returncode == 1, res.stderr
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
        assert "Traceback" not in res.stderr and "apitools" not in res.stderr
        results.append(lines[0].replace(mode, "MODE"))
    assert results[0] == results[1]
    if case == "bad_header":
        assert results[0].startswith(f"Error: {src}, record 0: bad_header: ")
        assert "<stream>" not in results[0]
    else:
        assert "max_bad_fraction" in results[0] and "--max-bad-fraction" in results[0]
        assert results[0].count("in.csv") <= 1
    # --verbose shows the traceback.
    res = _cli([str(src), "--output", str(tmp_path / "v" / "o"), *extra, "--verbose"])
    assert res.returncode == 1 and "Traceback" in res.stderr


def test_jsonl_columns_choice_with_an_inferred_schema(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"a": 1, "b": "x", "c": 2.5}\n{"a": 2, "b": "y"}\n')
    prefix = str(tmp_path / "o" / "j")
    summary = _job(
        ["--input", str(src), "--output", prefix, "--columns", "a,c,zz", "--rename", "c=cc"]
    )
    assert summary["rows_written"] == 2 and summary["unexpected_columns"] == {}
    # zz occurs in no row: not an error for JSON lines; c was renamed, so `c` chose nothing.
    assert Schema.load(f"{prefix}.schema.json").names == ("a",)
