"""Root pytest configuration: doctests of the framework layers, and strict CI runs.

``testpaths = tests featurepipe`` with ``--doctest-modules`` (setup.cfg) runs the
examples in the library's docstrings as well as the tests. The framework
layers (``featurepipe/beam``, ``featurepipe/keras``) import their frameworks;
where those are not installed, the layer's doctests are skipped (reason
"could not import ..."), not collected into an import error.

With ``CI=true`` in the environment (``.ci/run`` sets it), a run must not be
green while checking less than it claims:

* a skip because a module is missing (``pytest.importorskip`` at module level,
  in a fixture or in a test, and the framework skip above) fails instead,
  naming the module and how to install it. Skips for other reasons stay skips
  (the HTML report test without Debian's ``chromium``; tests of the compiled
  paths in the ``FEATUREPIPE_PURE_PYTHON=1`` leg);
* the session stops at its start unless featurepipe's compiled extension is
  active (``featurepipe._native.speedups``), or, with
  ``FEATUREPIPE_PURE_PYTHON=1``, unless it is off as asked.

``tests/test_ci.py`` runs pytest on generated files to check both.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parent

# featurepipe/<layer> -> the module its doctests need
_NEEDS = {
    "beam": "apache_beam",
    "keras": "keras",
    "torch": "torch",
}

# importable name -> the distribution that provides it (all pinned in requirements/lock.txt)
_DISTRIBUTIONS = {
    "apache_beam": "apache-beam",
    "tensorflow": "tensorflow-cpu",
    "keras": "keras",
    "farmhash": "pyfarmhash",
    "pyarrow": "pyarrow",
    "PIL": "pillow",
    "grpc_tools": "grpcio-tools",
    "atheris": "atheris",
    "hypothesis": "hypothesis",
    "crc32c": "crc32c",
    "torch": "torch",
    "torchdata": "torchdata",
}

_MISSING_MODULE = re.compile(r"could not import '([^']+)'")


def _strict() -> bool:
    return os.environ.get("CI") == "true"


def how_to_install(module: str) -> str:
    """How to get ``module`` into the environment (for the CI failure message)."""
    top = module.partition(".")[0]
    if module == "featurepipe._speedups":
        return (
            "build featurepipe's C extension: install a C compiler and the Python headers "
            "(Debian: `apt-get install gcc python3-dev`) and reinstall featurepipe "
            "(`FEATUREPIPE_REQUIRE_EXT=1 pip install -e .` fails when it does not build)"
        )
    if top in ("featurepipe", "bench", "pipelines", "tests"):
        return f"{top}/ is part of this repository: run pytest from the repository root"
    dist = _DISTRIBUTIONS.get(top)
    if dist is None:
        return f"add the package that provides {top!r} to requirements/lock.txt and install that"
    return (
        f"`pip install -r requirements/lock.txt` (it pins {dist}); `python3 dev.py test` "
        "installs it into .venv"
    )


def missing_module_failure(reason: str) -> str | None:
    """The CI failure message for a skip ``reason`` that says a module is missing, else None."""
    match = _MISSING_MODULE.search(reason)
    if match is None:
        return None
    module = match.group(1)
    return (
        f"CI=true: skipped because the module {module!r} is missing ({reason.strip()}); "
        f"a CI run must run it. Install it: {how_to_install(module)}"
    )


def _skip_reason(longrepr: Any) -> str:
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


class _NeedsFramework(pytest.Directory):
    """featurepipe/<layer> whose framework is not installed: skipped as a whole (fails
    under CI=true; a directory's own collect report does not pass through conftest
    hooks, so the check is here, not in pytest_make_collect_report below)."""

    module = ""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        layer = f"featurepipe/{self.path.name}"
        reason = f"could not import {self.module!r}: the doctests of {layer} need it"
        message = missing_module_failure(reason) if _strict() else None
        if message is not None:
            raise self.CollectError(message)
        raise pytest.skip.Exception(reason, allow_module_level=True)


def pytest_collect_directory(path: pathlib.Path, parent: pytest.Collector) -> Any:
    if path.parent == ROOT / "featurepipe" and path.name in _NEEDS:
        module = _NEEDS[path.name]
        if importlib.util.find_spec(module) is None:
            node = _NeedsFramework.from_parent(parent, path=path)
            node.module = module
            return node
    return None


def pytest_ignore_collect(collection_path: pathlib.Path) -> bool | None:
    if collection_path == ROOT / "setup.py":
        return True
    return None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    report = yield
    if _strict() and report.skipped:
        message = missing_module_failure(_skip_reason(report.longrepr))
        if message is not None:
            report.outcome = "failed"
            report.longrepr = message
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if (
        _strict()
        and report.skipped
        and not hasattr(report, "wasxfail")
        and call.excinfo is not None
        and isinstance(call.excinfo.value, pytest.skip.Exception)
    ):
        message = missing_module_failure(str(call.excinfo.value.msg))
        if message is not None:
            report.outcome = "failed"
            report.longrepr = message
    return report


def pytest_sessionstart(session: pytest.Session) -> None:
    if not _strict():
        return
    from featurepipe._native import PURE_PYTHON_ENV, implementation, speedups

    pure = os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0")
    if speedups is None and not pure:
        pytest.exit(
            f"CI=true: featurepipe's compiled extension is not active ({implementation}), so "
            f"its tests would be skipped. To {how_to_install('featurepipe._speedups')}; or set "
            f"{PURE_PYTHON_ENV}=1 to test the pure-Python paths on purpose.",
            returncode=pytest.ExitCode.TESTS_FAILED,
        )
    if speedups is not None and pure:
        pytest.exit(
            f"CI=true: {PURE_PYTHON_ENV}=1 but the compiled extension is active "
            f"({implementation}); featurepipe/_native.py should have turned it off.",
            returncode=pytest.ExitCode.TESTS_FAILED,
        )
