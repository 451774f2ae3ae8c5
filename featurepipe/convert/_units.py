"""The unit of work of a conversion: one batch of rows in the fastest form its format allows.

A conversion job moves *batches* (thousands of rows per element). Each format
has a fast form, used when it can be: CSV as a :class:`~featurepipe.convert.CsvChunk`
(raw bytes of whole records, converted by compiled code) when featurepipe's C
extension is built; Parquet as an :class:`~featurepipe.convert.ArrowBatch`
(a ``pyarrow.RecordBatch``, converted column by column); everything else, and
every fallback, as a :class:`~featurepipe.convert.RowBatch` of Python values.
Every fast form converts to exactly what its ``to_row_batch()`` converts to,
so the functions here only dispatch.
"""

from __future__ import annotations

from collections.abc import Iterator

from featurepipe.convert._arrow import ArrowBatch, convert_arrow, iter_arrow_batches
from featurepipe.convert._csv import CsvChunk, add_chunk, convert_chunk, iter_csv_chunks, native_csv
from featurepipe.convert._encode import ConvertOptions, ConvertResult, convert_batch
from featurepipe.convert._infer import RawSchemaInferrer
from featurepipe.convert._rows import WHOLE_FILE, Opener, ReadOptions, RowBatch, Split
from featurepipe.convert._sources import guess_format
from featurepipe.convert._sources import read_batches as _read_batches
from featurepipe.example import Schema

__all__ = ["Unit", "as_row_batch", "convert_unit", "infer_unit", "read_units"]

Unit = RowBatch | CsvChunk | ArrowBatch


def read_units(
    path: str,
    options: ReadOptions | None = None,
    *,
    opener: Opener | None = None,
    split: Split = WHOLE_FILE,
) -> Iterator[Unit]:
    """Reads one file like :func:`featurepipe.convert.read_batches`, each format in its fast form.

    Args:
        path: the file to read.
        options: parsing options. Defaults to `ReadOptions()`.
        opener: ``path -> binary file object``. Defaults to `open(path, "rb")`.
        split: the part of the file to read. Defaults to `WHOLE_FILE`.

    Returns:
        An iterator of :class:`~featurepipe.convert.CsvChunk` (CSV, extension
        built), :class:`~featurepipe.convert.ArrowBatch` (Parquet) or
        :class:`~featurepipe.convert.RowBatch` (JSON lines, and CSV without the
        extension).

    Examples:
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "t.jsonl")
    >>> _ = open(p, "w").write('{"a": 1}\\n')
    >>> [as_row_batch(u).columns for u in read_units(p)]
    [{'a': [1]}]
    """
    options = options or ReadOptions()
    fmt = options.format or guess_format(path)
    if fmt == "csv" and native_csv(options):
        return iter_csv_chunks(path, options, opener=opener, split=split)
    if fmt == "parquet":
        return iter_arrow_batches(path, options, opener=opener, split=split)
    return _read_batches(path, options, opener=opener, split=split)


def as_row_batch(unit: Unit) -> RowBatch:
    """The unit as a :class:`~featurepipe.convert.RowBatch` (the reference form)."""
    return unit if isinstance(unit, RowBatch) else unit.to_row_batch()


def convert_unit(
    unit: Unit, schema: Schema, options: ConvertOptions | None = None
) -> ConvertResult:
    """``convert_batch(as_row_batch(unit), schema, options)``, by the unit's fast path."""
    if isinstance(unit, CsvChunk):
        return convert_chunk(unit, schema, options)
    if isinstance(unit, ArrowBatch):
        return convert_arrow(unit, schema, options)
    return convert_batch(unit, schema, options)


def infer_unit(inferrer: RawSchemaInferrer, unit: Unit) -> None:
    """``inferrer.add_batch(as_row_batch(unit))``, by the unit's fast path."""
    if isinstance(unit, CsvChunk):
        add_chunk(inferrer, unit)
    else:
        inferrer.add_batch(as_row_batch(unit))
