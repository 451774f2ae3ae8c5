"""Shared pieces of the featurepipe.torch tests: generated data, the example module."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load_example() -> Any:
    """examples/torch_wide_deep.py as a module (it is not part of the package)."""
    if "torch_wide_deep" in sys.modules:
        return sys.modules["torch_wide_deep"]
    path = ROOT / "examples" / "torch_wide_deep.py"
    spec = importlib.util.spec_from_file_location("torch_wide_deep", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["torch_wide_deep"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def example() -> Any:
    return load_example()
