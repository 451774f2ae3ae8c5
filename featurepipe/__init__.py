"""featurepipe: raw tabular data to trained models through TFRecord files.

The core package (this one) needs only the standard library, numpy, protobuf
and crc32c: importing it never loads TensorFlow, Keras or Apache Beam. The
Beam transforms live in ``featurepipe.beam`` and the Keras layers in
``featurepipe.keras``.

Names that need numpy (the Example codec, schemas, the index, column specs)
are loaded on first use, so ``import featurepipe`` and the CLI start fast.

>>> import featurepipe as fp
>>> fp.decode_example(fp.encode_example({"x": 1}))["x"].values.tolist()
[1]
"""

from __future__ import annotations

import importlib
from typing import Any

from featurepipe._version import __version__
from featurepipe.errors import (
    ConfigError,
    CorruptionBudgetError,
    CorruptRecordError,
    DataError,
    ExampleDecodeError,
    FeaturepipeError,
    RecordTooLargeError,
    SchemaMismatchError,
)
from featurepipe.tfrecord import (
    CorruptionReport,
    Record,
    SkippedRange,
    TFRecordWriter,
    detect_compression,
    expand_paths,
    iter_records,
    read_records,
    shard_name,
    sharded_paths,
    write_records,
)

# name -> module, imported on first access (PEP 562)
_LAZY = {
    "Column": "featurepipe.example",
    "ColumnBatch": "featurepipe.example",
    "ColumnSpecs": "featurepipe.columns",
    "Feature": "featurepipe.example",
    "FeatureSchema": "featurepipe.example",
    "RecordIndex": "featurepipe.tfrecord",
    "Schema": "featurepipe.example",
    "build_index": "featurepipe.tfrecord",
    "count_records": "featurepipe.tfrecord",
    "decode_example": "featurepipe.example",
    "decode_examples": "featurepipe.example",
    "encode_example": "featurepipe.example",
    "infer_schema": "featurepipe.example",
    "read_record_at": "featurepipe.tfrecord",
    "split_records": "featurepipe.tfrecord",
}

__all__ = [
    "Column",
    "ColumnBatch",
    "ColumnSpecs",
    "ConfigError",
    "CorruptRecordError",
    "CorruptionBudgetError",
    "CorruptionReport",
    "DataError",
    "ExampleDecodeError",
    "Feature",
    "FeatureSchema",
    "FeaturepipeError",
    "Record",
    "RecordIndex",
    "RecordTooLargeError",
    "Schema",
    "SchemaMismatchError",
    "SkippedRange",
    "TFRecordWriter",
    "__version__",
    "build_index",
    "count_records",
    "decode_example",
    "decode_examples",
    "detect_compression",
    "encode_example",
    "expand_paths",
    "infer_schema",
    "iter_records",
    "read_record_at",
    "read_records",
    "shard_name",
    "sharded_paths",
    "split_records",
    "write_records",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'featurepipe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
