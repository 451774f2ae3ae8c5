"""featurepipe on Keras 3 and tf.data: column specs as model inputs and layers.

Needs TensorFlow and Keras (``pip install 'featurepipe[keras]'``). The input
pipeline (:func:`make_dataset`, :class:`ColumnTransform`) uses TensorFlow ops;
:class:`DenseFeatures` uses ``keras.ops`` only.
"""

from __future__ import annotations

from featurepipe.keras.data import make_dataset, make_input_fn, parse_spec_from_schema
from featurepipe.keras.layers import DenseFeatures, model_inputs
from featurepipe.keras.preprocessing import ColumnTransform, parse_spec, transform_inputs

__all__ = [
    "ColumnTransform",
    "DenseFeatures",
    "make_dataset",
    "make_input_fn",
    "model_inputs",
    "parse_spec",
    "parse_spec_from_schema",
    "transform_inputs",
]
