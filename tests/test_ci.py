"""CI checks what it claims: the strict-skip hooks of the root conftest.py, and no
``assert`` in library code (``python -O`` removes them, and the checks with them)."""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[1]

_TESTS = {
    "test_module_level.py": """
        import pytest

        pytest.importorskip("featurepipe_no_such_module_a")


        def test_never_runs():
            pass
    """,
    "test_inside.py": """
        import pytest


        @pytest.fixture
        def needs_module():
            pytest.importorskip("featurepipe_no_such_module_b")


        def test_in_fixture(needs_module):
            pass


        def test_in_test():
            pytest.importorskip("featurepipe_no_such_module_c")


        def test_optional_tool():
            pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")


        @pytest.mark.skipif(True, reason="not on this platform")
        def test_skipif():
            pass


        def test_passes():
            pass
    """,
}


def _project(tmp_path: pathlib.Path, *, extension_missing: bool = False) -> pathlib.Path:
    """A directory with the repository's root conftest.py and a few skipping tests."""
    conftest = (ROOT / "conftest.py").read_text()
    framework = '"beam": "apache_beam"'
    assert framework in conftest
    # featurepipe/beam's framework, as if it were not installed
    conftest = conftest.replace(framework, '"beam": "featurepipe_no_such_framework"')
    if extension_missing:  # the import of featurepipe._speedups fails, as when it is not built
        future = "from __future__ import annotations\n"
        block = 'import sys\n\nsys.modules["featurepipe._speedups"] = None\n'
        conftest = conftest.replace(future, future + block, 1)
    (tmp_path / "conftest.py").write_text(conftest)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    for name, text in _TESTS.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    layer = tmp_path / "featurepipe" / "beam"  # no __init__.py: not a second featurepipe package
    layer.mkdir(parents=True)
    (layer / "test_layer.py").write_text("def test_layer():\n    pass\n")
    return tmp_path


def _pytest(project: pathlib.Path, ci: bool, pure: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "FEATUREPIPE_PURE_PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    if ci:
        env["CI"] = "true"
    if pure:  # the extension check passes whether or not the extension is built
        env["FEATUREPIPE_PURE_PYTHON"] = "1"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs"]
    cmd.append("--continue-on-collection-errors")
    return subprocess.run(
        cmd, cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _summary(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_without_ci_missing_modules_are_skips(tmp_path: pathlib.Path) -> None:
    run = _pytest(_project(tmp_path), ci=False)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = _summary(run.stdout)
    assert "1 passed" in summary and "6 skipped" in summary, run.stdout
    for module in "abc":
        assert f"could not import 'featurepipe_no_such_module_{module}'" in run.stdout
    assert "could not import 'featurepipe_no_such_framework'" in run.stdout
    assert "CI=true" not in run.stdout


def test_under_ci_missing_modules_fail_and_other_skips_stay(tmp_path: pathlib.Path) -> None:
    run = _pytest(_project(tmp_path), ci=True)
    assert run.returncode == 1, run.stdout + run.stderr
    summary = _summary(run.stdout)
    # the module-level skip, the framework layer and the fixture: errors (collection,
    # setup); the one in a test: a failure; chromium and skipif: still skips
    assert "1 failed" in summary and "1 passed" in summary, run.stdout
    assert "2 skipped" in summary and "3 errors" in summary, run.stdout
    for module in ("module_a", "module_b", "module_c"):
        assert f"CI=true: skipped because the module 'featurepipe_no_such_{module}'" in run.stdout
    assert "module 'featurepipe_no_such_framework' is missing" in run.stdout
    assert "to requirements/lock.txt and install that" in run.stdout
    assert "chromium not installed" in run.stdout
    assert "not on this platform" in run.stdout


def test_under_ci_the_extension_must_be_active(tmp_path: pathlib.Path) -> None:
    project = _project(tmp_path, extension_missing=True)
    run = _pytest(project, ci=True, pure=False)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "compiled extension is not active" in run.stdout + run.stderr
    assert "apt-get install gcc python3-dev" in run.stdout + run.stderr
    # without CI, or with the pure-Python leg asked for, it runs (and warns)
    assert "1 passed" in _summary(_pytest(project, ci=False, pure=False).stdout)
    pure = _pytest(project, ci=True, pure=True)
    assert "not active" not in pure.stdout + pure.stderr
    assert "1 passed" in _summary(pure.stdout)


def test_library_code_has_no_assert() -> None:
    found = []
    for path in sorted((ROOT / "featurepipe").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Assert)
        ]
    assert not found, (
        "`assert` in library code (python -O removes it): raise ConfigError / DataError / "
        f"RuntimeError, or use typing.cast where it only narrows a type: {found}"
    )
