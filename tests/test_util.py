"""featurepipe._util: the one atomic local write, and the JSON-value helpers."""

from __future__ import annotations

import os
import pathlib
import stat

import pytest

from featurepipe._util import (
    AtomicFile,
    atomic_write,
    json_float,
    json_value,
    write_bytes,
    write_text,
)


def test_commit_replaces_the_file_and_leaves_no_temporary(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "out.bin"
    p.write_bytes(b"old")
    with AtomicFile(p) as f:
        f.write(b"new")
        assert p.read_bytes() == b"old"  # nothing visible before the commit
        assert os.path.dirname(f.tmp) == str(tmp_path)  # same directory: rename is atomic
    assert p.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_an_error_keeps_the_old_file_and_removes_the_temporary(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "out.txt"
    write_text(p, "old")
    with pytest.raises(RuntimeError), atomic_write(p, "w") as f:
        f.write("half")
        raise RuntimeError("boom")
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_discard_and_commit_are_idempotent(tmp_path: pathlib.Path) -> None:
    a = AtomicFile(tmp_path / "a")
    a.write(b"x")
    a.discard()
    a.discard()
    a.commit()  # after a discard: nothing happens
    assert os.listdir(tmp_path) == []


def test_a_failed_rename_removes_the_temporary(tmp_path: pathlib.Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("keep")  # a non-empty directory cannot be replaced
    a = AtomicFile(tmp_path / "d")
    a.write(b"x")
    with pytest.raises(OSError):
        a.commit()
    assert sorted(os.listdir(tmp_path)) == ["d"]


def test_permissions_follow_the_umask(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "f"
    write_bytes(p, b"")
    old = os.umask(0)
    os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~old


def test_text_mode_is_utf8(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "t"
    write_text(p, "é")
    assert p.read_bytes() == "é".encode()


def test_bad_mode() -> None:
    with pytest.raises(ValueError):
        AtomicFile("x", "ab")


def test_json_helpers() -> None:
    assert [json_float(x) for x in (1.0, float("nan"), float("inf"), -float("inf"))] == [
        1.0, "NaN", "Infinity", "-Infinity",
    ]
    assert json_value(b"\xff") == {"base64": "/w=="}
    assert json_value("s") == "s"
