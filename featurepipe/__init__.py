"""featurepipe: raw tabular data to trained models through TFRecord files.

The core package (this one) needs only the standard library, numpy, protobuf
and crc32c: importing it never loads TensorFlow, Keras or Apache Beam. The
Beam transforms live in ``featurepipe.beam`` and the Keras layers in
``featurepipe.keras``.
"""

from __future__ import annotations

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

__all__ = [
    "ConfigError",
    "CorruptRecordError",
    "CorruptionBudgetError",
    "DataError",
    "ExampleDecodeError",
    "FeaturepipeError",
    "RecordTooLargeError",
    "SchemaMismatchError",
    "__version__",
]
