"""featurepipe on Keras 3 and tf.data: column specs as model inputs, models, serving.

Needs TensorFlow and Keras (``pip install 'featurepipe[keras]'``). The input
pipeline (:func:`make_dataset`, :class:`ColumnTransform`) and the serving
export use TensorFlow ops; :class:`DenseFeatures` uses ``keras.ops`` only.
"""

from __future__ import annotations

try:
    import keras  # noqa: F401
    import tensorflow  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised without TensorFlow installed
    raise ImportError(
        f"featurepipe.keras requires the {e.name} module. You can install it via "
        "`pip install 'featurepipe[keras]'`"
    ) from e

from featurepipe.keras._data import (
    label_kind,
    make_dataset,
    make_input_fn,
    parse_spec_from_schema,
    schema_beside,
)
from featurepipe.keras._export import export_serving
from featurepipe.keras._heads import (
    LOSS_REDUCTIONS,
    EstimatorHead,
    EstimatorLoss,
    HeadLogits,
    class_names_of,
    estimator_predictions,
    head_of,
)
from featurepipe.keras._layers import DenseFeatures, model_inputs
from featurepipe.keras._models import (
    LinearLogits,
    dnn_model,
    linear_model,
    merge_columns,
    split_columns,
    wide_and_deep_model,
)
from featurepipe.keras._optimizers import SparseOptimizer
from featurepipe.keras._preprocessing import ColumnTransform, parse_spec, transform_inputs
from featurepipe.keras._training import train

__all__ = [
    "LOSS_REDUCTIONS",
    "ColumnTransform",
    "DenseFeatures",
    "EstimatorHead",
    "EstimatorLoss",
    "HeadLogits",
    "LinearLogits",
    "SparseOptimizer",
    "class_names_of",
    "dnn_model",
    "estimator_predictions",
    "export_serving",
    "head_of",
    "label_kind",
    "linear_model",
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
