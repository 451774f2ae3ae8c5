"""The tf.Example wire format: the codec (byte-identical to TensorFlow's
deterministic serialization), the batch decoder to numpy columns, and the schema
of a dataset of Examples; the tf.SequenceExample codec and batch decoder, and
the payload kind of a TFRecord record (Example / SequenceExample / other bytes).
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
from featurepipe.example._sequence import (
    PAYLOAD_KINDS,
    FeatureListColumn,
    PayloadKind,
    SequenceBatch,
    SequenceExample,
    decode_sequence_example,
    decode_sequence_examples,
    encode_sequence_example,
    payload_kind,
)

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "PAYLOAD_KINDS",
    "Column",
    "ColumnBatch",
    "Feature",
    "FeatureConstraints",
    "FeatureListColumn",
    "FeatureSchema",
    "Kind",
    "PayloadKind",
    "Schema",
    "SchemaInferrer",
    "SequenceBatch",
    "SequenceExample",
    "add_records",
    "decode_example",
    "decode_examples",
    "decode_sequence_example",
    "decode_sequence_examples",
    "encode_example",
    "encode_sequence_example",
    "encode_varint",
    "feature_to_json",
    "float32_repr",
    "infer_schema",
    "json_float",
    "json_value",
    "payload_kind",
    "wire_order",
]
