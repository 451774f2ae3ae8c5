"""``featurepipe inspect``: exact output lines, JSON contracts, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from featurepipe.cli.main import main
from featurepipe.example._codec import encode_example
from featurepipe.tfrecord import write_records
from tests.conftest import TESTDATA


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_count_text_and_json(capsys, example_files):
    code, out, _ = run(capsys, "inspect", "count", example_files["none"], example_files["gzip"])
    assert code == 0
    assert out.splitlines() == [
        f"     20  {example_files['none']}",
        f"     20  {example_files['gzip']}",
        "     40  total",
    ]
    code, out, _ = run(capsys, "inspect", "count", "--json", example_files["zlib"])
    assert json.loads(out) == {
        "files": [{"path": example_files["zlib"], "records": 20, "source": "scan"}],
        "total": 20,
    }


def test_count_uses_the_index(capsys, tmp_path):
    p = str(tmp_path / "f.tfrecord")
    write_records(p, [b"a"] * 3)
    assert run(capsys, "inspect", "index", p)[0] == 0
    code, out, _ = run(capsys, "inspect", "count", "--json", p)
    assert json.loads(out)["files"][0] == {"path": p, "records": 3, "source": "index"}


def test_head_json_contract(capsys):
    code, out, _ = run(capsys, "inspect", "head", str(TESTDATA / "golden.tfrecord"), "-n", "2",
                       "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert first["I1"] == {"int64": [0, -1, 2**53 + 1, -(2**63), 2**63 - 1]}
    assert first["f"] == {"float": [0.5, -0.0, "Infinity", "-Infinity", 1e-45]}
    assert first["C1"] == {"bytes": ["68fd1e64", "unicodé ☃", ""]}
    assert first["raw"] == {"bytes": [{"base64": "AP/+"}]}
    assert second["kindless"] == {"none": []}
    assert second["empty_int"] == {"int64": []}
    assert second["nan"] == {"float": ["NaN"]}


def test_head_text(capsys, tmp_path):
    p = str(tmp_path / "f")
    write_records(p, [encode_example({"a": [1, 2], "s": "x", "f": 0.1})])
    code, out, _ = run(capsys, "inspect", "head", p)
    assert out.splitlines() == [
        "record 0  (offset 0, " + str(os.path.getsize(p) - 16) + " bytes)",
        "  a  int64  [1, 2]",
        "  f  float  [0.1]",
        "  s  bytes  ['x']",
    ]


def test_schema_json_is_a_loadable_schema(capsys, example_files, tmp_path):
    from featurepipe.example._schema import Schema

    code, out, _ = run(capsys, "inspect", "schema", "--json", example_files["gzip"])
    assert code == 0
    d = json.loads(out)
    assert d["records"] == 20
    s = Schema.from_dict(d)
    assert s["I2"].shape == (2,) and s["C1"].kind == "bytes" and s["label"].shape == ()


def test_schema_reports_kind_conflicts_with_exit_1(capsys, tmp_path):
    p = str(tmp_path / "f")
    write_records(p, [encode_example({"x": 1}), encode_example({"x": 2.0})])
    code, _, err = run(capsys, "inspect", "schema", p)
    assert code == 1
    assert "feature 'x' has more than one kind: float in 1 records, int64 in 1 records" in err


BAD_PAYLOAD = b"\xff not an example"


def _damaged(tmp_path):
    p = str(tmp_path / "bad.tfrecord")
    recs = [encode_example({"i": i}) for i in range(5)]
    write_records(p, [*recs[:2], BAD_PAYLOAD, *recs[2:]])
    data = bytearray(open(p, "rb").read())
    size = len(recs[0]) + 16
    data[2 * size + 16 + len(BAD_PAYLOAD) + 12 + 2] ^= 1  # a data byte of record 3
    open(p, "wb").write(bytes(data))
    return p, size


def test_verify_reports_every_problem(capsys, tmp_path, example_files):
    p, size = _damaged(tmp_path)
    code, out, _ = run(capsys, "inspect", "verify", "--json", p, example_files["gzip"])
    assert code == 1
    files = json.loads(out)["files"]
    # the contract's keys are unchanged; the payload kinds are new keys (issue 12)
    assert {k: files[1][k] for k in ("path", "ok", "records", "problems")} == {
        "path": example_files["gzip"], "ok": True, "records": 20, "problems": []
    }
    assert files[1]["payload"] == "example"
    assert files[1]["payload_kinds"] == {"example": 20, "sequence_example": 0, "other": 0}
    bad = files[0]
    assert (bad["path"], bad["ok"], bad["records"]) == (p, False, 4)
    assert [(q["record"], q["offset"], q["reason"]) for q in bad["problems"]] == [
        (2, 2 * size, "not_an_example"),
        (3, 2 * size + 16 + len(BAD_PAYLOAD), "data_crc_mismatch"),
    ]


def test_verify_text_and_exit_0_when_intact(capsys, example_files):
    code, out, _ = run(capsys, "inspect", "verify", example_files["zlib"])
    assert code == 0
    assert out.splitlines() == [f"{example_files['zlib']}: OK, 20 intact records"]


def test_data_error_exit_1_names_file_record_offset(capsys, tmp_path):
    p, _ = _damaged(tmp_path)
    # --payload example: a record that is not an Example is an error (without it, head
    # shows other bytes as a preview: tests/cli/test_inspect_payloads.py)
    code, out, err = run(capsys, "inspect", "head", p, "-n", "10", "--payload", "example")
    assert code == 1
    assert err.startswith(f"Error: {p}, record 2, offset ")
    assert "not_an_example" in err


def test_usage_errors_exit_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as ei:
        main(["inspect", "head", "x", "-n", "-1"])
    assert ei.value.code == 2
    code, _, err = run(capsys, "inspect", "count", str(tmp_path / "missing-*.tfrecord"))
    assert code == 2 and "No file matches" in err
    assert run(capsys, "inspect")[0] == 2


def test_every_verb_has_help(capsys):
    for verb in ("count", "head", "schema", "verify", "index"):
        with pytest.raises(SystemExit) as ei:
            main(["inspect", verb, "--help"])
        assert ei.value.code == 0
        out = capsys.readouterr().out
        assert "--json" in out and "example:" in out


def test_inspect_count_starts_fast_without_heavy_imports(tmp_path):
    p = str(tmp_path / "f")
    write_records(p, [encode_example({"a": 1})] * 10)
    code = (
        "import sys, time; t = time.perf_counter(); from featurepipe.cli.main import main; "
        f"rc = main(['inspect', 'count', {p!r}]); "
        "heavy = [m for m in ('tensorflow', 'keras', 'apache_beam') if m in sys.modules]; "
        "print(heavy, rc, time.perf_counter() - t)"
    )
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    heavy, rc, _ = out.stdout.strip().splitlines()[-1].rsplit(" ", 2)
    assert heavy == "[]" and rc == "0"
    assert wall < 5  # generous for loaded CI machines; the benchmark reports the real figure
