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

from collections.abc import Iterator, Sequence

from featurepipe.convert._arrow import ArrowBatch, convert_arrow, iter_arrow_batches
from featurepipe.convert._csv import CsvChunk, add_chunk, convert_chunk, iter_csv_chunks, native_csv
from featurepipe.convert._encode import ConvertOptions, ConvertResult, convert_batch
from featurepipe.convert._infer import RawSchemaInferrer
from featurepipe.convert._rows import WHOLE_FILE, Opener, ReadOptions, RowBatch, Split
from featurepipe.convert._sources import guess_format
from featurepipe.convert._sources import read_batches as _read_batches
from featurepipe.errors import ConfigError
from featurepipe.example import Schema

__all__ = [
    "Unit",
    "as_row_batch",
    "convert_unit",
    "infer_unit",
    "present_columns",
    "read_units",
    "select_schema",
]

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


def present_columns(unit: Unit, num_read: int) -> dict[str, int]:
    """Column name -> rows of ``unit`` that have the column (for ``unexpected_columns``).

    A CSV or Parquet column is in every row read from its file (``num_read``:
    parsed and dead-lettered rows); a JSON lines key counts the rows where it
    is present and not ``null``. The same counts for every form of a unit.

    Examples:
    >>> b = RowBatch("a.jsonl", "jsonl", "line", [1, 2], {"a": [1, None], "b": [2, 3]}, [])
    >>> present_columns(b, 2)
    {'a': 1, 'b': 2}
    """
    if isinstance(unit, CsvChunk):
        return dict.fromkeys(unit.header, num_read)
    if isinstance(unit, ArrowBatch):
        return dict.fromkeys(unit.batch.schema.names, num_read)
    if unit.format == "jsonl":
        return {k: len(v) - v.count(None) for k, v in unit.columns.items()}
    return dict.fromkeys(unit.columns, num_read)


def select_schema(
    schema: Schema, options: ReadOptions, *, known: Sequence[str] | None = None
) -> Schema:
    """The features of ``schema`` that ``options.columns`` / ``drop_columns`` keep.

    Args:
        schema: a given or inferred schema.
        options: the read options with the column choice.
        known: every column name the inputs are known to have; a chosen
            column in neither the schema nor ``known`` is an error (a typo).
            Defaults to `None` (not checked against the files).

    Returns:
        The schema with only the kept features (and their constraints).

    Raises:
        ConfigError: if a chosen column is in neither the schema nor ``known``.

    Examples:
    >>> from featurepipe.example import FeatureSchema
    >>> s = Schema(tuple(FeatureSchema(n, "int64", shape=()) for n in "abc"))
    >>> select_schema(s, ReadOptions(columns=("c", "a"))).names
    ('a', 'c')
    >>> select_schema(s, ReadOptions(drop_columns=("b",))).names
    ('a', 'c')
    """
    if not options.chooses_columns:
        return schema
    names = set(schema.names) | set(known or ())
    chosen = [*(options.columns or ()), *options.drop_columns]
    unknown = [c for c in chosen if c not in names]
    if unknown and (known is not None or options.columns is not None):
        where = "the input files nor the schema" if known is not None else "the schema"
        raise ConfigError(
            f"Column(s) {unknown!r} chosen by `columns` / `drop_columns` (--columns, "
            f"--drop-columns) are in neither {where}. The columns are: {sorted(names)!r}"
        )
    kept = tuple(f for f in schema if options.keeps(f.name))
    keep = {f.name for f in kept}
    return Schema(kept, tuple(c for c in schema.constraints if c.name in keep))
