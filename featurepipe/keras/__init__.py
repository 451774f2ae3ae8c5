"""featurepipe on Keras 3: column specs as model inputs, canned models, training, serving.

The model side runs on **every Keras backend** (JAX, PyTorch, TensorFlow) and
needs no TensorFlow: :class:`DenseFeatures`, :class:`LinearLogits`, the canned
models (:func:`linear_model`, :func:`dnn_model`, :func:`wide_and_deep_model`),
:class:`SparseOptimizer` and :func:`loader_dataset` (``featurepipe.data``
batches as a ``keras.utils.PyDataset``) use ``keras.ops`` only. Choose the
backend as Keras does, with ``KERAS_BACKEND=jax|torch|tensorflow`` set before
``keras`` is first imported.

The ``tf.data`` input path (:func:`make_dataset`, :class:`ColumnTransform`,
:func:`parse_spec`, ...) and the serving export (:func:`export_serving`) need
TensorFlow; they are imported when first used, and say what to install when it
is missing. Install ``featurepipe[jax]``, ``featurepipe[torch]`` or
``featurepipe[tf]`` (see the README's "Backends and extras").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import keras  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised without Keras or its backend
    import importlib.util
    import os

    if importlib.util.find_spec("keras") is None:
        raise ImportError(
            "featurepipe.keras requires Keras 3 (`keras`). Install it with a backend: "
            "`pip install 'featurepipe[jax]'`, `'featurepipe[torch]'` or `'featurepipe[tf]'`."
        ) from e
    backend = os.environ.get("KERAS_BACKEND") or "tensorflow (the default)"
    raise ImportError(
        f"Keras is installed but cannot import its backend {backend}: {e}. Set "
        "KERAS_BACKEND=jax or KERAS_BACKEND=torch before Keras is first imported, or install "
        "the backend (`pip install 'featurepipe[tf]'`, `'featurepipe[jax]'`, "
        "`'featurepipe[torch]'`)."
    ) from e

from featurepipe.keras._heads import (
    LOSS_REDUCTIONS,
    EstimatorHead,
    EstimatorLoss,
    HeadLogits,
    class_names_of,
    estimator_predictions,
    head_of,
)
from featurepipe.keras._inputs import transform_inputs
from featurepipe.keras._layers import DenseFeatures, model_inputs
from featurepipe.keras._loader import LoaderDataset, loader_dataset
from featurepipe.keras._models import (
    LinearLogits,
    dnn_model,
    linear_model,
    merge_columns,
    split_columns,
    wide_and_deep_model,
)
from featurepipe.keras._optimizers import SparseOptimizer
from featurepipe.keras._tf import import_tensorflow_module
from featurepipe.keras._training import train

if TYPE_CHECKING:
    from featurepipe.keras._data import (
        label_kind,
        make_dataset,
        make_input_fn,
        parse_spec_from_schema,
        schema_beside,
    )
    from featurepipe.keras._export import export_serving
    from featurepipe.keras._preprocessing import ColumnTransform, parse_spec

# The names that need TensorFlow: {name: module}, imported on first use.
_TF_NAMES = {
    "ColumnTransform": "_preprocessing",
    "parse_spec": "_preprocessing",
    "label_kind": "_data",
    "make_dataset": "_data",
    "make_input_fn": "_data",
    "parse_spec_from_schema": "_data",
    "schema_beside": "_data",
    "export_serving": "_export",
}


def __getattr__(name: str) -> Any:
    module = _TF_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'featurepipe.keras' has no attribute {name!r}")
    return getattr(import_tensorflow_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "LOSS_REDUCTIONS",
    "ColumnTransform",
    "DenseFeatures",
    "EstimatorHead",
    "EstimatorLoss",
    "HeadLogits",
    "LinearLogits",
    "LoaderDataset",
    "SparseOptimizer",
    "class_names_of",
    "dnn_model",
    "estimator_predictions",
    "export_serving",
    "head_of",
    "label_kind",
    "linear_model",
    "loader_dataset",
    "make_dataset",
    "make_input_fn",
    "merge_columns",
    "model_inputs",
    "parse_spec",
    "parse_spec_from_schema",
    "schema_beside",
    "split_columns",
    "train",
    "transform_inputs",
    "wide_and_deep_model",
]
