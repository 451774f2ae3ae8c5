"""Raw rows to tf.Examples: CSV / JSON lines / Parquet readers with row provenance,
value parsing and encoding, schema inference, the compiled fast paths, and the
units of work the Beam transforms move.
"""

from __future__ import annotations

from featurepipe.convert._arrow import (
    ArrowBatch,
    convert_arrow,
    iter_arrow_batches,
)
from featurepipe.convert._csv import (
    CsvChunk,
    add_chunk,
    convert_chunk,
    iter_csv_chunks,
    native_csv,
)
from featurepipe.convert._encode import (
    ConvertOptions,
    ConvertResult,
    EncodedColumn,
    PackedBytes,
    convert_batch,
    encode_columns,
    parse_column,
)
from featurepipe.convert._infer import (
    RawSchemaInferrer,
)
from featurepipe.convert._rows import (
    FORMATS,
    INVALID_UTF8,
    MALFORMED_ROW,
    WHOLE_FILE,
    ColumnRename,
    DeadLetter,
    ReadOptions,
    RowBatch,
    Split,
    name_columns,
)
from featurepipe.convert._sources import (
    file_columns,
    guess_format,
    iter_csv_batches,
    iter_jsonl_batches,
    iter_parquet_batches,
    plan_splits,
    read_batches,
)
from featurepipe.convert._units import (
    Unit,
    as_row_batch,
    convert_unit,
    infer_unit,
    present_columns,
    read_units,
    select_schema,
)

__all__ = [
    "FORMATS",
    "INVALID_UTF8",
    "MALFORMED_ROW",
    "WHOLE_FILE",
    "ArrowBatch",
    "ColumnRename",
    "ConvertOptions",
    "ConvertResult",
    "CsvChunk",
    "DeadLetter",
    "EncodedColumn",
    "PackedBytes",
    "RawSchemaInferrer",
    "ReadOptions",
    "RowBatch",
    "Split",
    "Unit",
    "add_chunk",
    "as_row_batch",
    "convert_arrow",
    "convert_batch",
    "convert_chunk",
    "convert_unit",
    "encode_columns",
    "file_columns",
    "guess_format",
    "infer_unit",
    "iter_arrow_batches",
    "iter_csv_batches",
    "iter_csv_chunks",
    "iter_jsonl_batches",
    "iter_parquet_batches",
    "name_columns",
    "native_csv",
    "parse_column",
    "plan_splits",
    "present_columns",
    "read_batches",
    "read_units",
    "select_schema",
]
