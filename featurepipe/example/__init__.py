"""The tf.Example wire format: the codec (byte-identical to TensorFlow's
deterministic serialization), the batch decoder to numpy columns, and the schema
of a dataset of Examples.
"""

from __future__ import annotations

from featurepipe._util import json_float, json_value
from featurepipe.example._codec import (
    KINDS,
    Column,
    ColumnBatch,
    Feature,
    Kind,
    decode_example,
    decode_examples,
    encode_example,
    encode_varint,
    feature_to_json,
    float32_repr,
    wire_order,
)
from featurepipe.example._schema import (
    FORMAT_VERSION,
    FeatureConstraints,
    FeatureSchema,
    Schema,
    SchemaInferrer,
    add_records,
    infer_schema,
)

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "Column",
    "ColumnBatch",
    "Feature",
    "FeatureConstraints",
    "FeatureSchema",
    "Kind",
    "Schema",
    "SchemaInferrer",
    "add_records",
    "decode_example",
    "decode_examples",
    "encode_example",
    "encode_varint",
    "feature_to_json",
    "float32_repr",
    "infer_schema",
    "json_float",
    "json_value",
    "wire_order",
]
