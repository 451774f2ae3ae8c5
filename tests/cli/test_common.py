"""Tests for the shared pieces of the command line (featurepipe.cli._common)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from featurepipe.cli._common import Progress, read_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_add_records_counts_the_framing_of_each_record() -> None:
    out = _Terminal()
    bar = Progress("stats", 100, stream=out, enabled=True)
    bar.add_records(2, 68)  # 68 payload bytes + 2 * 16 framing bytes = all 100
    assert "100%" in out.getvalue() and "2 records" in out.getvalue()


def test_read_progress_sizes_the_files_and_clears_the_line_even_on_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = []
    for name, size in (("a", 300), ("b", 700)):
        (tmp_path / name).write_bytes(b"\0" * size)
        paths.append(str(tmp_path / name))
    out = _Terminal()
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(sys, "stderr", out)
    with pytest.raises(RuntimeError), read_progress("stats", paths) as progress:
        progress(10, 340)  # 500 of 1000 bytes
        assert " 50% 500 B/1.0 KB 10 records" in out.getvalue()
        raise RuntimeError
    assert out.getvalue().endswith("\r\x1b[K")
