"""``featurepipe --version``: the version and the active implementation."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from featurepipe import _native
from featurepipe._version import __version__
from featurepipe.cli.main import main, version_string

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_version_names_the_implementation(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == f"featurepipe {__version__} ({_native.implementation})"
    assert out == version_string()
    if _native.speedups is not None:
        assert "(compiled (featurepipe._speedups, _speedups" in out


def test_version_with_the_pure_python_switch() -> None:
    env = dict(os.environ, **{_native.PURE_PYTHON_ENV: "1"})
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    code = "import sys; from featurepipe.cli.main import main; sys.exit(main(['--version']))"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"featurepipe {__version__} (pure Python ({_native.PURE_PYTHON_ENV}=1))"
    )
