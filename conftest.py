"""Root pytest configuration: doctests of the framework layers need their frameworks.

``pytest --doctest-modules`` imports every module under featurepipe/; on a
core-only install (no Beam, TensorFlow or Keras) the framework layers are
skipped instead of failing the collection.
"""

from __future__ import annotations

import importlib.util
import pathlib

_NEEDS = {
    "beam": "apache_beam",
    "keras": "keras",
}


def pytest_ignore_collect(collection_path: pathlib.Path) -> bool | None:
    parts = collection_path.parts
    if "featurepipe" in parts:
        sub = parts[parts.index("featurepipe") + 1] if parts[-1] != "featurepipe" else ""
        module = _NEEDS.get(sub)
        if module is not None and importlib.util.find_spec(module) is None:
            return True
    if collection_path.name == "setup.py":
        return True
    return None
