"""CSV read as chunks of whole records, converted to tf.Examples by compiled code.

The pure-Python CSV path (:func:`featurepipe.convert.iter_csv_batches` then
:func:`featurepipe.convert.convert_batch`) makes a ``str`` per cell, a list
per row and a Python ``int`` per number; at ~40 columns that is most of a
conversion's time. When the optional extension ``featurepipe._speedups`` is
built, this module reads a CSV file instead as :class:`CsvChunk` s (the raw
bytes of up to ``batch_size`` whole records, with the line number of the
first) and :func:`convert_chunk` turns a chunk into serialized Examples in one
C call, without a Python object per cell.

The compiled code decides nothing on its own. It runs the same state machine
as CPython's ``csv`` reader (so rows, lines and fields are the same), converts
only rows whose every cell is plain (``-?[0-9]+`` integers, decimal numbers,
ASCII text, missing markers, defaults, lists of those split on a column's
``value_separator``), and hands every other row back as a
byte range; :func:`convert_chunk` then runs the pure-Python path on just those
rows, which gives the record or the dead letter (with its reason) exactly as
a pure-Python run would. A chunk whose schema the compiled code does not cover
(a fixed length above one without a separator, list defaults) goes through the
pure-Python path whole. ``tests/test_csvchunk.py`` checks the two paths give
identical records, positions and dead letters on generated messy files.

Examples:
>>> import os, tempfile
>>> from featurepipe.example import FeatureSchema, Schema
>>> from featurepipe.example import decode_example
>>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
>>> _ = open(p, "w").write('a,b\\n1,"x,y"\\noops,z\\n')
>>> s = Schema((FeatureSchema("a", "int64", shape=()), FeatureSchema("b", "bytes", shape=())))
>>> results = [convert_chunk(c, s) for c in iter_csv_chunks(p)]
>>> [decode_example(r)["b"].values.tolist() for res in results for r in res.records]
[[b'x,y']]
>>> [(d.position, d.reason) for res in results for d in res.dead_letters]
[(3, 'UNEXPECTED_DATA_TYPE')]
"""

from __future__ import annotations

import csv
import dataclasses
import io
import sys
from collections.abc import Iterator, Sequence
from typing import IO, Any

from featurepipe._native import speedups
from featurepipe.convert._encode import (
    ConvertOptions,
    ConvertResult,
    EncodedColumn,
    _expected_count,
    _scalar_default,
    convert_batch,
    encode_columns,
)
from featurepipe.convert._infer import RawSchemaInferrer, _bump_len, _classify, _ColumnStats
from featurepipe.convert._rows import WHOLE_FILE, Opener, ReadOptions, RowBatch, Split
from featurepipe.convert._sources import (
    _csv_header,
    _csv_names,
    _csv_reader,
    _csv_rows,
    _open_split,
)
from featurepipe.errors import ConfigError
from featurepipe.example import Schema, encode_varint, wire_order

__all__ = ["CsvChunk", "add_chunk", "convert_chunk", "iter_csv_chunks", "native_csv"]

_native: Any = speedups  # None: the pure-Python twins below (dev.py test's pure-Python leg)

_BLOCK = 1 << 20
_BOM = b"\xef\xbb\xbf"
_C_KINDS = {"bytes": 1, "float": 2, "int64": 3}


@dataclasses.dataclass(frozen=True)
class CsvChunk:
    """Whole CSV records of one file, as raw bytes (the fast form of a CSV batch).

    Attributes:
        path: the source file.
        header: the file's column names.
        data: the records' bytes, from a line start to a line end.
        first_line: the 1-based line number of the first byte of ``data``.
        num_records: records in ``data`` (blank lines included), at most the
            reader's ``batch_size``.
        options: the parsing options the chunk was cut with.
    """

    path: str
    header: tuple[str, ...]
    data: bytes
    first_line: int
    num_records: int
    options: ReadOptions

    def to_row_batch(self) -> RowBatch:
        """Parses the chunk with Python's ``csv`` module (the reference path)."""
        return _parse_rows(self.path, self.header, self.data, self.first_line, self.options)


def native_csv(options: ReadOptions) -> bool:
    """Whether CSV files read with ``options`` can go through the compiled path."""
    return (
        _native is not None
        and hasattr(_native, "csv_convert")
        and options.delimiter.isascii()
        and options.quotechar.isascii()
        and options.delimiter != options.quotechar
        and not {options.delimiter, options.quotechar} & {"\r", "\n"}
    )


def _field_limit(options: ReadOptions) -> int:
    """The csv module's field limit as the pure-Python reader sets it (process-wide)."""
    limit = max(csv.field_size_limit(), options.max_field_bytes)
    csv.field_size_limit(limit)
    return limit


def iter_csv_chunks(
    path: str,
    options: ReadOptions | None = None,
    *,
    opener: Opener | None = None,
    split: Split = WHOLE_FILE,
) -> Iterator[CsvChunk]:
    """Reads a CSV file (or a split of one) as chunks of whole records.

    Needs the compiled extension (see :func:`native_csv`). The header, BOM,
    gzip and split handling are those of
    :func:`featurepipe.convert.iter_csv_batches`, and ``chunk.to_row_batch()``
    gives the rows that function gives.

    Raises:
        DataError: if the file is empty or its header is bad.
        ConfigError: if the extension is missing.
    """
    options = options or ReadOptions()
    if not native_csv(options):
        raise ConfigError(
            "iter_csv_chunks needs featurepipe's compiled extension and an ASCII "
            "delimiter / quote character; use featurepipe.convert.iter_csv_batches."
        )
    cut = _native.csv_cut
    limit = _field_limit(options)
    d, q = options.delimiter, options.quotechar
    with _open_split(path, options, opener, split) as raw:
        buf = bytearray()
        eof = _fill(raw, buf, 3)
        if buf.startswith(_BOM):  # utf-8-sig drops a BOM at the start of the stream
            del buf[:3]
        line = split.first_line
        if split.header is not None:
            header = tuple(split.header)
        elif not options.header:
            header = tuple(_csv_names(path, list(options.column_names or ()), options)[0])
        else:
            while True:
                end, n, lines = cut(buf, 0, d, q, 1, limit, eof)
                if n or eof:
                    break
                eof = _fill(raw, buf, len(buf) + _BLOCK)
            head = bytes(buf[:end])
            reader, bad_lines, _ = _csv_reader(io.BytesIO(head), options, "utf-8")
            header = tuple(_csv_names(path, _csv_header(path, reader, bad_lines), options)[0])
            del buf[:end]
            line += lines
        pos = 0
        while True:
            end, n, lines = cut(buf, pos, d, q, options.batch_size, limit, eof)
            if n == options.batch_size or (eof and n):
                yield CsvChunk(path, header, bytes(buf[pos:end]), line, n, options)
                line += lines
                pos = end
                continue
            if eof:  # at the end every byte belongs to a record, so all was yielded
                return
            del buf[:pos]  # fewer than batch_size whole records left: read on
            pos = 0
            eof = _fill(raw, buf, len(buf) + _BLOCK)


def _fill(raw: IO[bytes], buf: bytearray, want: int) -> bool:
    """Reads until ``buf`` holds ``want`` bytes; True at the end of the stream."""
    while len(buf) < want:
        data = raw.read(max(want - len(buf), _BLOCK))
        if not data:
            return True
        buf += data
    return False


def _parse_rows(
    path: str, header: Sequence[str], data: bytes, first_line: int, options: ReadOptions
) -> RowBatch:
    opts = dataclasses.replace(options, batch_size=sys.maxsize)
    reader, bad_lines, pending = _csv_reader(io.BytesIO(data), opts, "utf-8")
    hdr = list(header)
    batches = list(_csv_rows(path, opts, reader, hdr, len(hdr), bad_lines, pending, first_line - 1))
    if len(batches) == 1:
        return batches[0]
    return _merge(path, hdr, batches)


def _merge(path: str, header: list[str], batches: Sequence[RowBatch]) -> RowBatch:
    out = RowBatch(path, "csv", "line", [], {h: [] for h in header}, [])
    for b in batches:
        out.positions.extend(b.positions)
        out.dead_letters.extend(b.dead_letters)
        for h in header:
            out.columns[h].extend(b.columns[h])
    return out


def csv_plan(
    schema: Schema, header: Sequence[str], options: ConvertOptions
) -> list[tuple[Any, ...]] | None:
    """The compiled converter's plan for ``schema`` over a file's ``header``.

    ``None`` when some feature needs the pure-Python path for every row (a
    fixed length above one without a value separator, a list default, a
    default that does not convert, or a required column the file does not
    have).
    """
    index = {name: i for i, name in enumerate(header)}
    plan: list[tuple[Any, ...]] = []
    for fs in sorted(schema, key=lambda f: wire_order(f.name)):
        kind = _C_KINDS.get(fs.kind)
        want = _expected_count(fs.shape)
        if kind is None or want == 0:
            return None
        if fs.value_separator is None and want not in (1, None):
            return None  # a scalar cell can never fill a longer fixed shape
        column = index.get(fs.name, -1)
        entry = None
        if fs.default is not None:
            value = _scalar_default(fs)
            if value is None:
                return None
            entry = _entry(fs.name, fs.kind, value)
        elif column < 0 and fs.required:
            return None
        missing = dict.fromkeys((*options.missing_values, *(fs.missing_values or ())))
        tokens = tuple(m.encode("utf-8", "surrogateescape") for m in missing)
        key = fs.name.encode("utf-8")
        sep = None if fs.value_separator is None else fs.value_separator.encode("utf-8")
        plan.append(
            (
                column,
                kind,
                fs.required,
                b"\x0a" + encode_varint(len(key)) + key + b"\x12",
                entry,
                tokens,
                sep,
                -1 if want is None or sep is None else want,
            )
        )
    return plan


def _entry(name: str, kind: str, value: Any) -> bytes:
    """The Features map entry (tag, length, key, Feature) of one value, as encode_columns writes."""
    import numpy as np

    values: Any = [value] if kind == "bytes" else np.array([value])
    col = EncodedColumn(name, kind, values, np.ones(1, np.int64), np.ones(1, bool))
    example = encode_columns(1, [col])[0]
    i = 1
    while example[i] & 0x80:  # skip the Features length varint
        i += 1
    return example[i + 1 :]


def convert_chunk(
    chunk: CsvChunk, schema: Schema, options: ConvertOptions | None = None
) -> ConvertResult:
    """Converts a chunk like ``convert_batch(chunk.to_row_batch(), ...)``, mostly in C.

    Args:
        chunk: from :func:`iter_csv_chunks`.
        schema: the features to write.
        options: global conversion choices. Defaults to `ConvertOptions()`.

    Returns:
        A :class:`featurepipe.convert.ConvertResult`, identical to the
        pure-Python path's.
    """
    options = options or ConvertOptions()
    plan = csv_plan(schema, chunk.header, options) if native_csv(chunk.options) else None
    if plan is None:
        return convert_batch(chunk.to_row_batch(), schema, options)
    records, positions, deferred = _native.csv_convert(
        chunk.data,
        chunk.options.delimiter,
        chunk.options.quotechar,
        _field_limit(chunk.options),
        len(chunk.header),
        plan,
        chunk.first_line,
    )
    if not deferred:
        return ConvertResult(records, positions, [])
    # The rows the compiled code left: parse each alone (each is whole lines
    # starting in the csv reader's start state), convert them together.
    view = memoryview(chunk.data)
    rest = _merge(
        chunk.path,
        list(chunk.header),
        [
            _parse_rows(chunk.path, chunk.header, bytes(view[a:b]), line, chunk.options)
            for a, b, line in deferred
        ],
    )
    slow = convert_batch(rest, schema, options)
    return ConvertResult(
        *_merge_by_position(records, positions, slow.records, slow.positions),
        slow.dead_letters,
    )


def _merge_by_position(
    ra: list[bytes], pa: list[int], rb: list[bytes], pb: list[int]
) -> tuple[list[bytes], list[int]]:
    """Two position-ordered record lists as one, in position order."""
    records: list[bytes] = []
    positions: list[int] = []
    i = j = 0
    while i < len(pa) and j < len(pb):
        if pa[i] < pb[j]:
            records.append(ra[i])
            positions.append(pa[i])
            i += 1
        else:
            records.append(rb[j])
            positions.append(pb[j])
            j += 1
    records += ra[i:] + rb[j:]
    positions += pa[i:] + pb[j:]
    return records, positions


def add_chunk(inferrer: RawSchemaInferrer, chunk: CsvChunk) -> None:
    """``inferrer.add_batch(chunk.to_row_batch())``, with the counting done in C.

    The compiled code counts, per column, present cells and the ones that are
    plainly integers, decimal numbers or neither; cells only Python can judge
    (``" 5"``, ``"1_000"``, ``"inf"``, 19-digit integers) are classified by
    :mod:`featurepipe.convert._encode`'s own rule, and rows it does not read go through
    the pure-Python path, so the inferred schema is the same.

    Examples:
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(p, "w").write("a,b,c\\n1,1, 5\\n2.5,,x\\n")
    >>> inf = RawSchemaInferrer()
    >>> for chunk in iter_csv_chunks(p):
    ...     add_chunk(inf, chunk)
    >>> [(f.name, f.kind, f.required) for f in inf.extract()]
    [('a', 'float', True), ('b', 'int64', False), ('c', 'bytes', True)]
    """
    if not native_csv(chunk.options) or inferrer.options.list_columns:
        inferrer.add_batch(chunk.to_row_batch())
        return
    header = chunk.header
    missing = tuple(
        m.encode("utf-8", "surrogateescape") for m in dict.fromkeys(inferrer.options.missing_values)
    )
    cols = inferrer.columns
    settled = bytes(1 if h in cols and cols[h].others else 0 for h in header)
    rows, counts, unsure, deferred = _native.csv_infer(
        chunk.data,
        chunk.options.delimiter,
        chunk.options.quotechar,
        _field_limit(chunk.options),
        len(header),
        missing,
        settled,
        chunk.first_line,
    )
    inferrer.rows += rows
    for h, (present, ints, floats, others) in zip(header, counts, strict=True):
        st = cols.setdefault(h, _ColumnStats())
        st.present += present
        st.ints += ints
        st.floats += floats
        st.others += others
        if present:
            _bump_len(st, 1)
    for c, text in unsure:
        _classify(cols[header[c]], text.decode("ascii"))
    if deferred:
        view = memoryview(chunk.data)
        opts = chunk.options
        parts = [
            _parse_rows(chunk.path, header, bytes(view[a:b]), ln, opts) for a, b, ln in deferred
        ]
        inferrer.add_batch(_merge(chunk.path, list(header), parts))
