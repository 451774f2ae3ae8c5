"""Parquet read as Arrow record batches and converted column by column, without Python rows.

:func:`featurepipe.convert.iter_parquet_batches` turns every Arrow column into
a Python list (``to_pylist``), and :func:`featurepipe.convert.convert_batch`
then looks at every cell; for Parquet, whose columns are already typed, that
is most of a conversion's time. :func:`iter_arrow_batches` keeps each batch
as a ``pyarrow.RecordBatch`` (:class:`ArrowBatch`), and :func:`convert_arrow`
turns the columns the schema asks for into the flat form
:func:`featurepipe.convert.encode_columns` writes from (numpy values, row
lengths, a present mask) straight from Arrow's buffers.

Nothing is decided differently from the pure-Python path: the columnar path
covers integer, floating-point and string / binary columns and lists of them,
with nulls, missing markers and defaults; a batch with anything else (a
column whose Arrow type does not match its feature kind, a null inside a list,
a wrong number of values, a required value missing, an unsigned 64-bit
column) is converted by ``convert_batch(batch.to_row_batch(), ...)``, which
gives the records and dead letters as before. ``tests/test_arrowbatch.py``
checks the two paths give identical records on generated tables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from featurepipe.convert._encode import (
    ConvertOptions,
    ConvertResult,
    EncodedColumn,
    PackedBytes,
    _expected_count,
    _fill_default,
    _scalar_default,
    convert_batch,
    encode_columns,
)
from featurepipe.convert._rows import (
    WHOLE_FILE,
    Opener,
    ReadOptions,
    RowBatch,
    Split,
    default_opener,
    import_pyarrow_parquet,
    name_columns,
)
from featurepipe.errors import DataError
from featurepipe.example import FeatureSchema, Schema

__all__ = ["ArrowBatch", "convert_arrow", "iter_arrow_batches"]


@dataclasses.dataclass(frozen=True)
class ArrowBatch:
    """Rows of one Parquet file as a ``pyarrow.RecordBatch`` (pickles through Arrow IPC).

    Attributes:
        path: the source file.
        first_row: the 0-based index of the batch's first row in the file.
        batch: the rows.
    """

    path: str
    first_row: int
    batch: Any

    @property
    def num_rows(self) -> int:
        """Rows in the batch."""
        return int(self.batch.num_rows)

    def to_row_batch(self) -> RowBatch:
        """The batch as :func:`featurepipe.convert.iter_parquet_batches` gives it."""
        rb = self.batch
        n = rb.num_rows
        columns = {name: rb.column(i).to_pylist() for i, name in enumerate(rb.schema.names)}
        positions = list(range(self.first_row, self.first_row + n))
        return RowBatch(self.path, "parquet", "row", positions, columns, [])


def iter_arrow_batches(
    path: str,
    options: ReadOptions | None = None,
    *,
    opener: Opener | None = None,
    split: Split = WHOLE_FILE,
) -> Iterator[ArrowBatch]:
    """Reads a Parquet file (or a split of row groups) as :class:`ArrowBatch` es.

    The same batches, row indices and errors as
    :func:`featurepipe.convert.iter_parquet_batches`.

    Raises:
        ImportError: if ``pyarrow`` is not installed (with an install hint).
        DataError: if the file is not a readable Parquet file.
    """
    options = options or ReadOptions()
    pq = import_pyarrow_parquet()
    with (opener or default_opener)(path) as raw:
        try:
            pf = pq.ParquetFile(raw)
        except Exception as e:  # pyarrow raises ArrowInvalid and friends
            raise DataError(
                f"Not a readable Parquet file ({e}).", path=path, reason="bad_parquet"
            ) from e
        start = split.first_line if split.end >= 0 else 0
        groups = None if split.end < 0 else list(range(split.start, split.end))
        names = list(pf.schema_arrow.names)
        renamed = name_columns(names, options.rename)[0]
        for rb in pf.iter_batches(batch_size=options.batch_size, row_groups=groups):
            if renamed != names:
                rb = rb.rename_columns(renamed)
            yield ArrowBatch(path, start, rb)
            start += rb.num_rows


class _Fallback(Exception):  # noqa: N818 - control flow, never escapes this module
    """The columnar path does not cover this batch: use the pure-Python path."""


def convert_arrow(
    batch: ArrowBatch, schema: Schema, options: ConvertOptions | None = None
) -> ConvertResult:
    """Converts an Arrow batch like ``convert_batch(batch.to_row_batch(), ...)``, column-wise.

    Args:
        batch: from :func:`iter_arrow_batches`.
        schema: the features to write.
        options: global conversion choices. Defaults to `ConvertOptions()`.

    Returns:
        A :class:`featurepipe.convert.ConvertResult`, identical to the
        pure-Python path's.

    Examples:
    >>> import os, tempfile
    >>> import pyarrow as pa, pyarrow.parquet as pq
    >>> from featurepipe.example import decode_example
    >>> p = os.path.join(tempfile.mkdtemp(), "t.parquet")
    >>> pq.write_table(pa.table({"a": [1, None], "b": [[1.5], [2.0, 3.0]]}), p)
    >>> s = Schema((FeatureSchema("a", "int64", shape=(), required=False),
    ...             FeatureSchema("b", "float", shape=None)))
    >>> [r for b in iter_arrow_batches(p) for r in convert_arrow(b, s).records] == [
    ...     r for b in iter_arrow_batches(p) for r in convert_batch(b.to_row_batch(), s).records]
    True
    """
    options = options or ConvertOptions()
    try:
        columns = [_column(batch.batch, fs, options) for fs in schema]
    except _Fallback:
        return convert_batch(batch.to_row_batch(), schema, options)
    n = batch.num_rows
    records = encode_columns(n, columns)
    return ConvertResult(records, list(range(batch.first_row, batch.first_row + n)), [])


def _column(rb: Any, fs: FeatureSchema, options: ConvertOptions) -> EncodedColumn:
    import pyarrow as pa
    import pyarrow.compute as pc

    n = rb.num_rows
    want = _expected_count(fs.shape)
    if fs.value_separator is not None or want == 0:
        raise _Fallback  # separators split text cells; Parquet text is rare: keep one path
    idx = rb.schema.get_field_index(fs.name)
    if idx < 0:
        return _all_missing(fs, n)
    col = rb.column(idx)
    typ = col.type
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        if col.null_count:
            present = np.asarray(col.is_valid(), dtype=bool)
        else:
            present = np.ones(n, dtype=bool)
        offsets = np.asarray(col.offsets, dtype=np.int64)
        lengths = np.diff(offsets)
        lengths = np.where(present, lengths, 0)
        items = col.flatten()  # only the present rows' items, in order
        if items.null_count:
            raise _Fallback  # "null inside a list": a dead letter
        if want is not None and bool((lengths[present] != want).any()):
            raise _Fallback  # wrong number of values: a dead letter
        values = _values(items, fs.kind)
        if not present.all() and (fs.default is not None or fs.required):
            raise _Fallback  # defaults and missing required lists: the general path
        return EncodedColumn(fs.name, fs.kind, values, lengths, present)
    # A scalar column: one value per present row.
    if want not in (1, None):
        raise _Fallback  # TOO_FEW for every row
    present = np.asarray(col.is_valid(), dtype=bool) if col.null_count else np.ones(n, bool)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        missing = [*options.missing_values, *(fs.missing_values or ())]
        if missing:
            hit = pc.fill_null(pc.is_in(col, value_set=pa.array(missing, typ)), False)
            present &= ~np.asarray(hit, dtype=bool)
    if present.all():
        values = _values(col, fs.kind)
        return EncodedColumn(fs.name, fs.kind, values, np.ones(n, np.int64), present)
    kept = _values(col.filter(pa.array(present)), fs.kind)
    if fs.default is None:
        if fs.required:
            raise _Fallback  # SCHEMA_MISSING_COLUMN dead letters
        return EncodedColumn(fs.name, fs.kind, kept, present.astype(np.int64), present)
    default = _scalar_default(fs)
    if default is None:
        raise _Fallback
    # missing cells take the default, the others keep their value
    full = _fill_default(fs.kind, kept, present, default)
    return EncodedColumn(fs.name, fs.kind, full, np.ones(n, np.int64), np.ones(n, bool))


def _all_missing(fs: FeatureSchema, n: int) -> EncodedColumn:
    if fs.default is not None:
        value = _scalar_default(fs)
        if value is None:
            raise _Fallback
        values: Any = [value] * n if fs.kind == "bytes" else np.full(n, value)
        return EncodedColumn(fs.name, fs.kind, values, np.ones(n, np.int64), np.ones(n, bool))
    if fs.required and n:
        raise _Fallback
    empty: Any = [] if fs.kind == "bytes" else np.zeros(0)
    return EncodedColumn(fs.name, fs.kind, empty, np.zeros(n, np.int64), np.zeros(n, bool))


def _values(arr: Any, kind: str) -> Any:
    """Flat values of a null-free Arrow array for a feature kind, as the Python path gives them."""
    import pyarrow as pa

    typ = arr.type
    if kind == "int64":
        if pa.types.is_integer(typ) and typ != pa.uint64():
            return np.asarray(arr.cast(pa.int64()), dtype=np.int64)
        raise _Fallback  # text to parse, floats (UNEXPECTED_DATA_TYPE), uint64 range checks
    if kind == "float":
        if (pa.types.is_integer(typ) and typ != pa.uint64()) or pa.types.is_floating(typ):
            # The Python path makes a Python float (float64) and numpy rounds it to float32;
            # integers up to 2**63 are exact in int64 -> float64 as in float(int).
            # (numpy's int64 -> float64 rounds to nearest-even like float(int); Arrow's cast
            # refuses integers above 2**53.)
            if pa.types.is_integer(typ):
                as64 = np.asarray(arr.cast(pa.int64()), dtype=np.int64).astype(np.float64)
            else:
                as64 = np.asarray(arr.cast(pa.float64()), dtype=np.float64)
            with np.errstate(over="ignore"):
                return as64.astype(np.float32)
        raise _Fallback
    if pa.types.is_string(typ) or pa.types.is_binary(typ):
        return _packed(arr, np.int32)
    if pa.types.is_large_string(typ) or pa.types.is_large_binary(typ):
        return _packed(arr, np.int64)
    raise _Fallback  # numbers or booleans as bytes are JSON text in the Python path


def _packed(arr: Any, offset_type: Any) -> PackedBytes:
    """The concatenated bytes and lengths of a string / binary array, from its buffers."""
    _, offsets_buf, data_buf = arr.buffers()
    n = len(arr)
    offsets = np.frombuffer(offsets_buf, dtype=offset_type, count=arr.offset + n + 1)
    offsets = offsets[arr.offset :].astype(np.int64)
    start, end = int(offsets[0]), int(offsets[-1])
    data = (
        np.frombuffer(data_buf, dtype=np.uint8)[start:end]
        if data_buf is not None and end > start
        else np.zeros(0, np.uint8)
    )
    return PackedBytes(data, np.diff(offsets))
