"""Imports the parts of featurepipe.keras that need TensorFlow, with a clear error without it."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["TF_MISSING", "import_tensorflow_module"]

TF_MISSING = (
    "This part of featurepipe.keras (the tf.data input pipeline and the serving export) needs "
    "TensorFlow, which is not installed. Install it with `pip install 'featurepipe[tf]'` "
    "(on a machine without a GPU, `pip install tensorflow-cpu` first keeps the download "
    "small), or train on the JAX / PyTorch backend from featurepipe.data "
    "(featurepipe.keras.loader_dataset; `featurepipe train --backend jax|torch`)."
)


def import_tensorflow_module(module: str) -> Any:
    """Imports ``featurepipe.keras.<module>``, a module that needs TensorFlow.

    Raises:
        ImportError: when TensorFlow is not installed, saying what to install.
    """
    try:
        import tensorflow  # noqa: F401
    except ImportError as e:
        raise ImportError(TF_MISSING, name="tensorflow") from e
    return importlib.import_module(f"featurepipe.keras.{module}")
