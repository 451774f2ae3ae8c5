"""The layout of the C sources in ``csrc/``: plain-C kernels under a thin binding layer.

``csrc/kernels`` never includes ``Python.h`` nor touches a Python object;
``csrc/bindings`` is the only place that does. setup.py builds the extension
from every C file there, and dev.py's rebuild digest covers all of ``csrc``.
Source-only checks: they run whether or not the extension is built.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import shutil
import sys
from types import ModuleType

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_featurepipe_{name}", ROOT / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_kernels_are_plain_c() -> None:
    kernels = sorted((CSRC / "kernels").glob("*.[ch]"))
    assert kernels
    python_api = re.compile(r"\b(Python\.h|PyObject|Py_[A-Z]\w*|PyErr_\w+)\b")
    for path in kernels:
        code = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
        found = python_api.findall(code)
        assert not found, f"{path.relative_to(ROOT)} uses the Python C API: {sorted(set(found))}"


def test_only_the_bindings_include_python_h() -> None:
    including = {
        p.relative_to(CSRC).as_posix()
        for p in CSRC.rglob("*.[ch]")
        if "#include <Python.h>" in p.read_text(encoding="utf-8")
    }
    assert including == {"bindings/bindings.h"}
    for p in (CSRC / "bindings").glob("*.c"):
        assert '#include "bindings.h"' in p.read_text(encoding="utf-8"), p.name
    assert not list((ROOT / "featurepipe").glob("*.c")), "C sources live in csrc/"


def test_setup_builds_every_c_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEATUREPIPE_NO_EXT", raising=False)
    (ext,) = _load("setup")._ext_modules()
    assert ext.name == "featurepipe._speedups"
    want = {p.relative_to(ROOT).as_posix() for p in CSRC.rglob("*.c")}
    assert set(ext.sources) == want
    assert set(ext.depends) == {p.relative_to(ROOT).as_posix() for p in CSRC.rglob("*.h")}
    monkeypatch.setenv("FEATUREPIPE_NO_EXT", "1")
    assert _load("setup")._ext_modules() == []


def test_manifest_carries_csrc() -> None:
    lines = (ROOT / "MANIFEST.in").read_text(encoding="utf-8").splitlines()
    assert "graft csrc" in lines


def test_dev_digest_follows_csrc(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = _load("dev")
    copy = tmp_path / "repo"
    shutil.copytree(CSRC, copy / "csrc")
    shutil.copy(ROOT / "setup.py", copy / "setup.py")
    monkeypatch.setattr(dev, "ROOT", copy)
    monkeypatch.setattr(dev, "LOCK", copy / "requirements" / "lock.txt")
    before = dev._digest()
    kernel = copy / "csrc" / "kernels" / "crc32c.c"
    kernel.write_text(kernel.read_text(encoding="utf-8") + "\n/* edited */\n", encoding="utf-8")
    edited = dev._digest()
    assert edited != before
    (copy / "csrc" / "kernels" / "new.h").write_text("/* new */\n", encoding="utf-8")
    assert dev._digest() not in (before, edited)
