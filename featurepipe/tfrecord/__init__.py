"""TensorFlow's TFRecord format without TensorFlow: framing with both CRC-32Cs,
GZIP / ZLIB streams, the reader (corruption policy, resynchronisation), the writer,
the index sidecar and shard paths (``PREFIX@N``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from featurepipe.tfrecord._compression import (
    COMPRESSIONS,
    Compression,
    check_compression,
    detect_compression,
)
from featurepipe.tfrecord._crc import (
    crc32c,
    crc32c_py,
)
from featurepipe.tfrecord._framing import frame_records, masked_crc32c
from featurepipe.tfrecord._paths import expand_paths, is_sharded_spec, shard_name, sharded_paths
from featurepipe.tfrecord._reader import (
    DEFAULT_MAX_RECORD_BYTES,
    CorruptionReport,
    Record,
    SkippedRange,
    batch_records,
    count_frames,
    iter_records,
    read_records,
)
from featurepipe.tfrecord._writer import TFRecordWriter, write_records

__all__ = [
    "COMPRESSIONS",
    "DEFAULT_MAX_RECORD_BYTES",
    "INDEX_SUFFIX",
    "Compression",
    "CorruptionReport",
    "Record",
    "RecordIndex",
    "RecordRange",
    "RecordUnit",
    "SkippedRange",
    "TFRecordWriter",
    "batch_payloads",
    "batch_records",
    "build_index",
    "check_compression",
    "count_frames",
    "count_records",
    "crc32c",
    "crc32c_py",
    "detect_compression",
    "expand_paths",
    "frame_records",
    "index_path",
    "is_sharded_spec",
    "iter_range",
    "iter_records",
    "load_index",
    "masked_crc32c",
    "read_record_at",
    "read_records",
    "record_units",
    "shard_name",
    "sharded_paths",
    "shuffled_unit_batches",
    "split_records",
    "unit_batches",
    "unit_count",
    "write_records",
]

if TYPE_CHECKING:
    from featurepipe.tfrecord._index import (
        INDEX_SUFFIX,
        RecordIndex,
        RecordRange,
        build_index,
        count_records,
        index_path,
        iter_range,
        load_index,
        read_record_at,
        split_records,
    )
    from featurepipe.tfrecord._windows import (
        RecordUnit,
        batch_payloads,
        record_units,
        shuffled_unit_batches,
        unit_batches,
        unit_count,
    )

# The index needs numpy; `featurepipe inspect` must start without it (PEP 562).
_INDEX_NAMES = (
    "INDEX_SUFFIX",
    "RecordIndex",
    "RecordRange",
    "build_index",
    "count_records",
    "index_path",
    "iter_range",
    "load_index",
    "read_record_at",
    "split_records",
)
# The mapped-window reader (references to records, batched and shuffled) needs numpy too.
_WINDOW_NAMES = (
    "RecordUnit",
    "batch_payloads",
    "record_units",
    "shuffled_unit_batches",
    "unit_batches",
    "unit_count",
)
_LAZY = {
    **dict.fromkeys(_INDEX_NAMES, "featurepipe.tfrecord._index"),
    **dict.fromkeys(_WINDOW_NAMES, "featurepipe.tfrecord._windows"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'featurepipe.tfrecord' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
