"""The user's ``tf.feature_column`` code: ``my_columns.py:build_columns`` -> the columns.

The CLI's ``--columns`` names a Python file (or an importable module) and a
function in it that returns the Estimator's feature columns: a list, or
``{"linear": [...], "dnn": [...]}`` for a wide-and-deep Estimator. A module
attribute that already holds the columns (``my_columns.py:COLUMNS``) works too.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from typing import Any

from featurepipe.errors import ConfigError

__all__ = ["load_feature_columns"]


def load_feature_columns(target: str) -> Any:
    """Imports ``FILE.py:NAME`` (or ``package.module:NAME``) and returns its columns.

    The file's directory is put first on ``sys.path`` while it is imported, so
    it can import its neighbours. ``NAME`` is called without arguments when it
    is callable. ``tf.feature_column.shared_embeddings`` refuses to run eagerly,
    so a function that fails with that error is called again inside a
    ``tf.Graph`` (the columns are plain Python objects either way).

    Args:
        target: ``"path/to/file.py:function"`` or ``"module.name:function"``.

    Returns:
        What the function returned: a list of columns or a dict of lists.

    Raises:
        ConfigError: for a bad target, a file that is not found, a missing
            name, or a result that is not a list or a dict of lists.
    """
    module_part, sep, name = target.rpartition(":")
    if not sep or not module_part or not name.isidentifier():
        raise ConfigError(
            "`--columns` must be FILE.py:FUNCTION or module.name:FUNCTION, e.g. "
            f"my_columns.py:build_columns. Received: {target!r}"
        )
    module = _import(module_part)
    if not hasattr(module, name):
        raise ConfigError(
            f"{module_part} has no {name!r}; it must define a function that returns the "
            "feature columns (a list, or a dict with 'linear' and 'dnn' lists)."
        )
    obj = getattr(module, name)
    if callable(obj):
        obj = _call(obj, target)
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, list | tuple):
        return list(obj)
    raise ConfigError(
        f"{target} returned a {type(obj).__name__}; it must return a list of "
        "tf.feature_column columns, or a dict with 'linear' and 'dnn' lists."
    )


def _import(module_part: str) -> Any:
    if module_part.endswith(".py") or os.sep in module_part or "/" in module_part:
        path = os.path.abspath(module_part)
        if not os.path.isfile(path):
            raise ConfigError(f"No such Python file: {module_part!r} (from --columns).")
        mod_name = "_featurepipe_user_" + os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:  # pragma: no cover - a .py file always loads
            raise ConfigError(f"Cannot import {module_part!r}.")
        module = importlib.util.module_from_spec(spec)
        directory = os.path.dirname(path)
        sys.path.insert(0, directory)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        finally:
            with contextlib.suppress(ValueError):  # the user's code may have removed it
                sys.path.remove(directory)
        return module
    try:
        return importlib.import_module(module_part)
    except ModuleNotFoundError as e:
        raise ConfigError(
            f"Cannot import {module_part!r}: {e}. Pass a file path (my_columns.py:NAME) or "
            "a module on PYTHONPATH."
        ) from e


def _call(fn: Any, target: str) -> Any:
    try:
        return fn()
    except RuntimeError as e:
        if "not supported when eager execution is enabled" not in str(e):
            raise
    import tensorflow as tf

    # tf.feature_column.shared_embeddings (tensorflow/python/feature_column/
    # feature_column_v2.py) raises in eager mode; the Estimator built its model in a graph.
    with tf.Graph().as_default():
        return fn()
