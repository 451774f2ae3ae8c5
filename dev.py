#!/usr/bin/env python3
"""featurepipe's one entry point for set-up, the demo and the tests.

Needs only Python 3.11+. Each command creates (or reuses) the project's own
virtual environment in ``.venv``, installs the pinned dependencies from
``requirements/lock.txt`` and featurepipe itself (editable), then runs:

    python3 dev.py demo    # convert -> inspect -> analyze -> train on the bundled sample data
    python3 dev.py test    # ruff + mypy, the pytest suite with the library's doctests, then the
                           # core tests again without the compiled extension (what CI runs)
    python3 dev.py bench [NAME ...]   # the benchmarks under bench/ (slow; not part of test)
    python3 dev.py shell CMD ...      # run CMD inside the venv (e.g. featurepipe inspect --help)

The venv is rebuilt only when the lock file or pyproject.toml changes (a hash
of both is stamped into ``.venv/.featurepipe-stamp``).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import venv

ROOT = pathlib.Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements" / "lock.txt"
STAMP = VENV / ".featurepipe-stamp"


def _python() -> pathlib.Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(*cmd: str | os.PathLike[str], **kw: object) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kw)  # type: ignore[call-overload]


def _digest() -> str:
    h = hashlib.sha256()
    # The C extension's sources: csrc/** (kernels and bindings), so that an edit rebuilds it.
    sources = sorted(p for p in (ROOT / "csrc").rglob("*") if p.is_file())
    for p in (LOCK, ROOT / "pyproject.toml", ROOT / "setup.py", *sources):
        if p.exists():
            h.update(p.relative_to(ROOT).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def ensure_venv() -> pathlib.Path:
    """Create or reuse .venv and install the pinned dependencies into it."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py itself may run on an older python3
        raise SystemExit(f"featurepipe needs Python 3.11+; this is {sys.version.split()[0]}")
    py = _python()
    want = _digest()
    if py.exists() and STAMP.exists() and STAMP.read_text().strip() == want:
        return py
    if not py.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [py, "-m", "pip", "--disable-pip-version-check"]
    _run(*pip, "install", "-q", "-r", LOCK)
    _run(*pip, "install", "-q", "--no-deps", "--no-build-isolation", "-e", ROOT)
    STAMP.write_text(want + "\n")
    return py


# The second leg of `test`: the core tests again with the compiled extension off
# (featurepipe/_native.py honours FEATUREPIPE_PURE_PYTHON), so the pure-Python twins
# of the C code stay exercised. Not tests/keras or tests/beam: they need the
# extension's speed, and their differential tests compare both paths already.
PURE_PYTHON_TESTS = (
    "tests/tfrecord",
    "tests/example",
    "tests/convert",
    "tests/analysis",
    "tests/columns",
    "tests/data",
    "tests/cli",
)


def cmd_test(args: list[str]) -> int:
    """ruff, mypy, the suite (tests/ and the doctests in featurepipe/), the pure-Python leg.

    Extra arguments are pytest options for both legs (e.g. ``-x`` or ``-k csv``).
    Non-zero when either leg fails.
    """
    py = ensure_venv()
    env = dict(os.environ, PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="2")
    _run(py, "-m", "ruff", "check", ".", env=env)
    _run(py, "-m", "mypy", "featurepipe", env=env)
    pytest: list[str | os.PathLike[str]] = [py, "-m", "pytest", "-q", "-m", "not slow"]
    pure_env = dict(env, FEATUREPIPE_PURE_PYTHON="1")
    # Its own temporary folder and no shared pytest cache: nothing of one leg's
    # can be cleaned away or overwritten by the other.
    pure_tmp = tempfile.mkdtemp(prefix="featurepipe-pure-leg-")
    pure_cmd = [
        *pytest,
        "-p",
        "no:cacheprovider",
        f"--basetemp={pure_tmp}/t",
        *args,
        *PURE_PYTHON_TESTS,
    ]
    # The two legs run at the same time: the main leg keeps about one core busy (most
    # of its tests are one Python process), so on a 2-core machine the pure-Python
    # leg fits beside it. Its output goes to a file, printed after the main leg's, so
    # the two never interleave.
    with tempfile.TemporaryFile("w+") as pure_log:
        print(
            "+ FEATUREPIPE_PURE_PYTHON=1",
            " ".join(str(c) for c in pure_cmd),
            "(alongside the main leg; its output follows the main leg's)",
            flush=True,
        )
        pure_proc = subprocess.Popen(
            [str(c) for c in pure_cmd],
            cwd=ROOT,
            env=pure_env,
            stdout=pure_log,
            stderr=subprocess.STDOUT,
        )
        try:
            print("+", " ".join(str(c) for c in [*pytest, *args]), flush=True)
            main = subprocess.run(
                [str(c) for c in [*pytest, *args]], cwd=ROOT, env=env, check=False
            )
            pure_rc = pure_proc.wait()
        finally:
            if pure_proc.poll() is None:
                pure_proc.kill()
                pure_proc.wait()
        pure_log.seek(0)
        print("=== pure-Python leg (FEATUREPIPE_PURE_PYTHON=1) ===", flush=True)
        sys.stdout.write(pure_log.read())
        sys.stdout.flush()
    shutil.rmtree(pure_tmp, ignore_errors=True)
    if pure_rc == 5 and args:  # pytest's "no tests collected": the options selected none here
        print("pure-Python leg: the pytest options selected no core test")
        pure_rc = 0
    for leg, rc in (("suite", main.returncode), ("pure-Python leg", pure_rc)):
        print(f"{leg}: {'passed' if rc == 0 else f'FAILED (pytest exit status {rc})'}")
    return main.returncode or pure_rc


def cmd_demo(args: list[str]) -> int:
    py = ensure_venv()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [str(py), "-m", "pipelines.demo", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode


def cmd_bench(args: list[str]) -> int:
    py = ensure_venv()
    return subprocess.run([str(py), "-m", "bench", *args], cwd=ROOT, check=False).returncode


def cmd_shell(args: list[str]) -> int:
    py = ensure_venv()
    bindir = py.parent
    env = dict(
        os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(VENV)
    )
    return subprocess.run(args or [str(py)], cwd=ROOT, env=env, check=False).returncode


COMMANDS = {"test": cmd_test, "demo": cmd_demo, "bench": cmd_bench, "shell": cmd_shell}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
