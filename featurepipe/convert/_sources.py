"""Parse raw tabular inputs (CSV, JSON lines, Parquet) into batches of columns.

A :class:`RowBatch` (defined in `_rows` with the other row types) holds many
rows of one file as columns of plain Python values plus, for every row, where
it came from (a 1-based line number for text formats, a 0-based row index for
Parquet). Rows that cannot be parsed at all (a CSV row with the wrong number
of fields, a JSON line that is not an object, bytes that are not UTF-8)
never reach the columns: they become :class:`DeadLetter` records in
``batch.dead_letters`` so that every input row ends up somewhere.
Conversion to ``tf.Example`` lives in :mod:`featurepipe.convert._encode`;
this module only reads.

Files are opened through an ``opener`` callable (``open(path, "rb")`` by
default; the Beam layer passes Beam's ``FileSystems.open``), and gzip inputs
are recognised by their magic bytes, so ``gs://`` or ``s3://`` work wherever
the opener does. Parquet needs ``pyarrow``, imported only when a Parquet file
is read.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
from collections.abc import Iterator
from typing import IO, Any

from featurepipe.convert._rows import (
    FORMATS,
    INVALID_UTF8,
    MALFORMED_ROW,
    WHOLE_FILE,
    ColumnRename,
    DeadLetter,
    Opener,
    ReadOptions,
    RowBatch,
    Split,
    default_opener,
    import_pyarrow_parquet,
    name_columns,
)
from featurepipe.errors import ConfigError, DataError

__all__ = [
    "FORMATS",
    "WHOLE_FILE",
    "DeadLetter",
    "ReadOptions",
    "RowBatch",
    "Split",
    "file_columns",
    "guess_format",
    "iter_csv_batches",
    "iter_jsonl_batches",
    "iter_parquet_batches",
    "plan_splits",
    "read_batches",
]

_GZIP_MAGIC = b"\x1f\x8b"

def guess_format(path: str) -> str:
    """Guesses the input format from a file name (``.gz`` is looked through).

    Args:
        path: a file name or URL.

    Returns:
        ``"csv"``, ``"jsonl"`` or ``"parquet"``.

    Raises:
        ConfigError: if the suffix is not one of the known ones.

    Examples:
    >>> guess_format("gs://b/day_0.csv.gz"), guess_format("x.ndjson"), guess_format("p.parquet")
    ('csv', 'jsonl', 'parquet')
    """
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for fmt, suffixes in (
        ("csv", (".csv", ".tsv", ".txt")),
        ("jsonl", (".jsonl", ".ndjson", ".json")),
        ("parquet", (".parquet", ".pq")),
    ):
        if name.endswith(suffixes):
            return fmt
    raise ConfigError(
        "Cannot guess the input format from the file name; pass `format` "
        f"(one of {', '.join(FORMATS)}). Received: path={path!r}"
    )


def read_batches(
    path: str,
    options: ReadOptions | None = None,
    *,
    opener: Opener | None = None,
    split: Split = WHOLE_FILE,
) -> Iterator[RowBatch]:
    """Reads one file into batches of rows.

    Args:
        path: the file to read.
        options: parsing options. Defaults to `ReadOptions()`.
        opener: ``path -> binary file object``. Defaults to `open(path, "rb")`.
        split: the part of the file to read (from :func:`plan_splits`).
            Defaults to `WHOLE_FILE`.

    Returns:
        An iterator of :class:`RowBatch`.

    Raises:
        DataError: if the file cannot be read at all (for example a truncated
            gzip stream, or a CSV file without a header).
        ConfigError: if the format cannot be determined.

    Examples:
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "t.csv")
    >>> _ = open(p, "w").write("a,b\\n1,x\\n2\\n")
    >>> [b.columns for b in read_batches(p)]
    [{'a': ['1'], 'b': ['x']}]
    >>> [d.reason for b in read_batches(p) for d in b.dead_letters]
    ['MALFORMED_ROW']
    """
    options = options or ReadOptions()
    fmt = options.format or guess_format(path)
    if fmt == "csv":
        return iter_csv_batches(path, options, opener=opener, split=split)
    if fmt == "jsonl":
        return iter_jsonl_batches(path, options, opener=opener, split=split)
    return iter_parquet_batches(path, options, opener=opener, split=split)


def iter_csv_batches(
    path: str,
    options: ReadOptions | None = None,
    *,
    opener: Opener | None = None,
    split: Split = WHOLE_FILE,
) -> Iterator[RowBatch]:
    """Reads a CSV file with a header row.

    Quoted fields may hold the delimiter, doubled quotes and newlines; CRLF,
    LF and CR line ends, a UTF-8 BOM and gzip compression are handled. A row
    whose field count differs from the header's, a quoting error, or a row
    with bytes that are not UTF-8 becomes a dead letter. Blank lines are
    skipped and are not rows.

    Args:
        path: the file to read.
        options: parsing options. Defaults to `ReadOptions()`.
        opener: ``path -> binary file object``. Defaults to `open(path, "rb")`.
        split: the part of the file to read. Defaults to `WHOLE_FILE`.

    Returns:
        An iterator of :class:`RowBatch` whose positions are 1-based line
        numbers (the header is line 1; a row spanning lines has its first).

    Raises:
        DataError: if the file is empty, has no header, or its gzip stream is
            damaged.

    Examples:
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(p, "wb").write(b'\\xef\\xbb\\xbfa,b\\r\\n"x,\\ny",2\\r\\n')
    >>> b = next(iter_csv_batches(p))
    >>> b.columns, b.positions
    ({'a': ['x,\\ny'], 'b': ['2']}, [2])
    """
    options = options or ReadOptions()
    with _open_split(path, options, opener, split) as raw:
        reader, bad_lines, pending = _csv_reader(raw, options)
        if split.header is not None:  # a later part of a split file: no header here
            header = list(split.header)
            offset = split.first_line - 1
        else:
            header = _csv_names(path, _csv_header(path, reader, bad_lines, options), options)[0]
            offset = 0
        yield from _csv_rows(path, options, reader, header, len(header), bad_lines, pending, offset)


def _csv_reader(
    raw: IO[bytes], options: ReadOptions, encoding: str = "utf-8-sig"
) -> tuple[Any, set[int], list[str]]:
    """csv.reader over ``raw``; ``encoding="utf-8"`` for bytes that are not a stream's start."""
    text = io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline="")
    bad_lines: set[int] = set()
    pending: list[str] = []
    lines = _tracked_lines(text, bad_lines, pending)
    csv.field_size_limit(max(csv.field_size_limit(), options.max_field_bytes))
    reader = csv.reader(
        lines, delimiter=options.delimiter, quotechar=options.quotechar, strict=True
    )
    return reader, bad_lines, pending


def _csv_header(
    path: str, reader: Any, bad_lines: set[int], options: ReadOptions | None = None
) -> list[str]:
    """The header row as written (``options.column_names`` for a headerless file)."""
    if options is not None and not options.header:
        return list(options.column_names or ())
    try:
        header: list[str] = next(reader)
    except StopIteration:
        raise DataError(
            "The CSV file is empty; a header row naming the columns is required.",
            path=path,
            reason="missing_header",
        ) from None
    except csv.Error as e:
        raise DataError(
            f"The CSV header (line 1) cannot be parsed ({e}); check its quoting and the "
            "delimiter (--delimiter), or, for a file without a header, pass --no-header "
            "--column-names.",
            path=path,
            record=0,
            reason="bad_header",
        ) from e
    if bad_lines:
        raise DataError(
            "The CSV header (line 1) is not valid UTF-8; convert the file to UTF-8 "
            "(e.g. iconv -f latin1 -t utf-8).",
            path=path,
            record=0,
            reason=INVALID_UTF8,
        )
    return header


def _csv_names(
    path: str, header: list[str], options: ReadOptions
) -> tuple[list[str], list[ColumnRename]]:
    """The columns' names: empty and duplicate header names named as pandas does, renamed."""
    try:
        return name_columns(header, options.rename)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def file_columns(
    path: str, options: ReadOptions | None = None, *, opener: Opener | None = None
) -> tuple[list[str], list[ColumnRename]]:
    """The columns of one file, as the readers name them, and the header names that changed.

    A CSV file's header (or ``options.column_names``), a Parquet file's
    schema, or the keys of a JSON lines file's first batch of rows (later
    rows may hold more). Empty and duplicate CSV header names are named as
    :func:`featurepipe.convert.name_columns` says; ``options.rename`` applies.
    Column choice (``columns``, ``drop_columns``) does not.

    Args:
        path: the file.
        options: parsing options. Defaults to `ReadOptions()`.
        opener: ``path -> binary file object``. Defaults to `open(path, "rb")`.

    Returns:
        The column names and the renamed columns.

    Raises:
        DataError: if the header cannot be read (an empty file, bad quoting, not UTF-8).
        ConfigError: if ``options.rename`` names a column the file lacks.

    Examples:
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "r.csv")
    >>> _ = open(p, "w").write('"","a","a"\\n"1",2,3\\n')
    >>> names, renames = file_columns(p)
    >>> names, [r.reason for r in renames]
    (['Unnamed: 0', 'a', 'a.1'], ['empty_name', 'duplicate_name'])
    """
    options = options or ReadOptions()
    fmt = options.format or guess_format(path)
    if fmt == "csv":
        with _open_binary(path, options, opener) as raw:
            reader, bad_lines, _ = _csv_reader(raw, options)
            return _csv_names(path, _csv_header(path, reader, bad_lines, options), options)
    if fmt == "parquet":
        pq = import_pyarrow_parquet()
        with (opener or default_opener)(path) as raw:
            try:
                names = list(pq.ParquetFile(raw).schema_arrow.names)
            except Exception as e:  # pyarrow raises ArrowInvalid and friends
                raise DataError(
                    f"Not a readable Parquet file ({e}).", path=path, reason="bad_parquet"
                ) from e
        return _csv_names(path, names, options)
    first = next(iter_jsonl_batches(path, options, opener=opener), None)
    return (list(first.columns) if first is not None else []), []


def _csv_rows(
    path: str,
    options: ReadOptions,
    reader: Any,
    header: list[str],
    width: int,
    bad_lines: set[int],
    pending: list[str],
    line_offset: int,
) -> Iterator[RowBatch]:
    """Rows after the header; ``line_offset`` turns the reader's line numbers into the file's."""
    rows: list[list[str]] = []
    positions: list[int] = []
    dead: list[DeadLetter] = []
    last_line = reader.line_num
    pending.clear()

    def dead_letter(first: int, reason: str, detail: str) -> DeadLetter:
        """The row that starts on reader line ``first`` (its text is in ``pending``)."""
        return DeadLetter(path, first + line_offset, "line", reason, None, detail, "".join(pending))

    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            first = last_line + 1
            last_line = reader.line_num
            dead.append(dead_letter(first, MALFORMED_ROW, f"CSV error: {e}"))
            pending.clear()
            continue
        first = last_line + 1
        last_line = reader.line_num
        if not row:  # a blank line is not a row
            pending.clear()
            continue
        if bad_lines and not bad_lines.isdisjoint(range(first, last_line + 1)):
            dead.append(dead_letter(first, INVALID_UTF8, "the row is not valid UTF-8"))
        elif len(row) != width:
            detail = f"the row has {len(row)} fields but the header has {width}"
            dead.append(dead_letter(first, MALFORMED_ROW, detail))
        else:
            rows.append(row)
            positions.append(first + line_offset)
        pending.clear()
        if len(rows) + len(dead) >= options.batch_size:
            yield _csv_batch(path, header, rows, positions, dead)
            rows, positions, dead = [], [], []
    if rows or dead:
        yield _csv_batch(path, header, rows, positions, dead)


def _csv_batch(
    path: str,
    header: list[str],
    rows: list[list[str]],
    positions: list[int],
    dead: list[DeadLetter],
) -> RowBatch:
    # zip(*rows) transposes in C: one list per column.
    if rows:
        columns = {
            name: list(col) for name, col in zip(header, zip(*rows, strict=True), strict=True)
        }
    else:
        columns = {name: [] for name in header}
    return RowBatch(path, "csv", "line", positions, columns, dead)


def _tracked_lines(text: IO[str], bad_lines: set[int], pending: list[str]) -> Iterator[str]:
    """Yields lines, remembering them (for dead letters) and which are not UTF-8."""
    for n, line in enumerate(text, 1):
        if not line.isascii():
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate from surrogateescape: bad bytes
                bad_lines.add(n)
        pending.append(line)
        yield line


def iter_jsonl_batches(
    path: str,
    options: ReadOptions | None = None,
    *,
    opener: Opener | None = None,
    split: Split = WHOLE_FILE,
) -> Iterator[RowBatch]:
    """Reads a JSON lines file: one JSON object per line.

    Values may be scalars or arrays of scalars; a missing key or ``null`` is
    an absent cell (``None``). A line that is not valid JSON, not an object,
    or not UTF-8 becomes a dead letter. Blank lines are skipped.

    Args:
        path: the file to read.
        options: parsing options. Defaults to `ReadOptions()`.
        opener: ``path -> binary file object``. Defaults to `open(path, "rb")`.

    Returns:
        An iterator of :class:`RowBatch` whose positions are 1-based line numbers.

    Raises:
        DataError: if a gzip stream is damaged.

    Examples:
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.jsonl")
    >>> _ = open(p, "w").write('{"a": 1, "b": [1, 2]}\\n{"a": null}\\n[1]\\n')
    >>> b = next(iter_jsonl_batches(p))
    >>> b.columns, [d.position for d in b.dead_letters]
    ({'a': [1, None], 'b': [[1, 2], None]}, [3])
    """
    options = options or ReadOptions()
    rename = dict(options.rename)
    with _open_split(path, options, opener, split) as raw:
        objs: list[dict[str, Any]] = []
        positions: list[int] = []
        dead: list[DeadLetter] = []
        loads = json.loads
        for n, line in enumerate(raw, split.first_line):
            if n == 1 and line.startswith(codecs.BOM_UTF8):
                line = line[3:]
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                dead.append(
                    DeadLetter(
                        path,
                        n,
                        "line",
                        INVALID_UTF8,
                        None,
                        f"not valid UTF-8 ({e.reason})",
                        line.decode("utf-8", "backslashreplace"),
                    )
                )
            else:
                try:
                    obj = loads(text)
                except ValueError as e:
                    dead.append(
                        DeadLetter(
                            path, n, "line", MALFORMED_ROW, None, f"not valid JSON ({e})", text
                        )
                    )
                else:
                    if isinstance(obj, dict):
                        objs.append(obj)
                        positions.append(n)
                    else:
                        dead.append(
                            DeadLetter(
                                path,
                                n,
                                "line",
                                MALFORMED_ROW,
                                None,
                                f"a JSON {type(obj).__name__}, not an object",
                                text,
                            )
                        )
            if len(objs) + len(dead) >= options.batch_size:
                yield _rename_keys(_jsonl_batch(path, objs, positions, dead), rename)
                objs, positions, dead = [], [], []
        if objs or dead:
            yield _rename_keys(_jsonl_batch(path, objs, positions, dead), rename)


def _jsonl_batch(
    path: str, objs: list[dict[str, Any]], positions: list[int], dead: list[DeadLetter]
) -> RowBatch:
    names: dict[str, None] = {}
    for obj in objs:
        names.update(dict.fromkeys(obj))
    columns = {name: [obj.get(name) for obj in objs] for name in names}
    return RowBatch(path, "jsonl", "line", positions, columns, dead)


def _rename_keys(batch: RowBatch, rename: dict[str, str]) -> RowBatch:
    """A JSON lines batch with its keys renamed (a key absent from these rows is no error)."""
    batch.columns = {rename.get(k, k): v for k, v in batch.columns.items()}
    return batch


def iter_parquet_batches(
    path: str,
    options: ReadOptions | None = None,
    *,
    opener: Opener | None = None,
    split: Split = WHOLE_FILE,
) -> Iterator[RowBatch]:
    """Reads a Parquet file through ``pyarrow`` (imported here, lazily).

    List columns become Python lists; nulls become ``None``.

    Args:
        path: the file to read.
        options: parsing options (only ``batch_size`` is used). Defaults to `ReadOptions()`.
        opener: ``path -> binary file object``. Defaults to `open(path, "rb")`.

    Returns:
        An iterator of :class:`RowBatch` whose positions are 0-based row indices.

    Raises:
        ImportError: if ``pyarrow`` is not installed (with an install hint).
        DataError: if the file is not a readable Parquet file.
    """
    # The Arrow reader is the one reader (lazily imported: it needs numpy and pyarrow).
    from featurepipe.convert._arrow import iter_arrow_batches

    for batch in iter_arrow_batches(path, options, opener=opener, split=split):
        yield batch.to_row_batch()


def plan_splits(
    path: str, options: ReadOptions | None = None, *, opener: Opener | None = None
) -> list[Split]:
    """Cuts one file into parts of about ``options.split_bytes`` for parallel reading.

    Text files are cut only at a line end, and CSV files only at a line end
    outside quotes (an even number of quote characters before it, which is
    exact for RFC 4180 quoting, where a quote inside a field is doubled), so
    no row is ever cut. The line number of each part's first line is
    counted, so dead letters name the same lines as an unsplit read.
    Compressed files are not split; Parquet files are split by row groups.

    Args:
        path: the file.
        options: parsing options. Defaults to `ReadOptions()`.
        opener: ``path -> binary file object``. Defaults to `open(path, "rb")`.

    Returns:
        The parts, in file order; ``[WHOLE_FILE]`` when the file is not split.

    Examples:
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(p, "w").write('a,b\\n1,"x\\ny"\\n2,z\\n3,w\\n')
    >>> parts = plan_splits(p, ReadOptions(split_bytes=6))  # never inside the quoted "x\\ny"
    >>> [(s.start, s.end, s.first_line, s.header) for s in parts]
    [(0, 12, 1, None), (12, -1, 4, ('a', 'b'))]
    >>> [b.positions for s in parts for b in read_batches(p, split=s)]
    [[2], [4, 5]]
    """
    options = options or ReadOptions()
    fmt = options.format or guess_format(path)
    if options.split_bytes <= 0:
        return [WHOLE_FILE]
    if fmt == "parquet":
        return _plan_parquet(path, options, opener)
    with (opener or default_opener)(path) as raw:
        if options.compression == "gzip" or (
            options.compression == "auto" and _peek(raw, 2) == _GZIP_MAGIC
        ):
            return [WHOLE_FILE]
        size = raw.seek(0, io.SEEK_END)
        raw.seek(0)
        if size <= options.split_bytes:
            return [WHOLE_FILE]
        cuts = _find_cuts(raw, options, options.quotechar.encode() if fmt == "csv" else b"")
    if not cuts:
        return [WHOLE_FILE]
    header = None
    if fmt == "csv":
        with _open_split(path, options, opener, Split(0, 0, cuts[0][0])) as raw:
            reader, bad_lines, _ = _csv_reader(raw, options)
            header = tuple(
                _csv_names(path, _csv_header(path, reader, bad_lines, options), options)[0]
            )
    bounds = [(0, 1), *cuts]
    return [
        Split(
            i, start, bounds[i + 1][0] if i + 1 < len(bounds) else -1, line, header if i else None
        )
        for i, (start, line) in enumerate(bounds)
    ]


def _find_cuts(raw: IO[bytes], options: ReadOptions, quote: bytes) -> list[tuple[int, int]]:
    """(byte offset, line number) of each cut: just after a line end outside quotes."""
    cuts: list[tuple[int, int]] = []
    target = options.split_bytes
    base = quotes = newlines = 0
    while data := raw.read(8 << 20):
        while target < base + len(data):
            j = data.find(b"\n", max(target - base, 0))
            while j != -1 and quote and (quotes + data.count(quote, 0, j)) & 1:
                j = data.find(b"\n", j + 1)
            if j == -1:
                break  # look on in the next chunk
            cut = base + j + 1
            cuts.append((cut, newlines + data.count(b"\n", 0, j + 1) + 1))
            target = cut + options.split_bytes
        quotes += data.count(quote) if quote else 0
        newlines += data.count(b"\n")
        base += len(data)
    return [c for c in cuts if c[0] < base]


def _plan_parquet(path: str, options: ReadOptions, opener: Opener | None) -> list[Split]:
    pq = import_pyarrow_parquet()
    with (opener or default_opener)(path) as raw:
        md = pq.ParquetFile(raw).metadata
    splits: list[Split] = []
    start = row = size = rows_in = 0
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        size += rg.total_byte_size
        rows_in += rg.num_rows
        if size >= options.split_bytes or g == md.num_row_groups - 1:
            splits.append(Split(len(splits), start, g + 1, row))
            start, row, size, rows_in = g + 1, row + rows_in, 0, 0
    return splits if len(splits) > 1 else [WHOLE_FILE]


def _open_split(path: str, options: ReadOptions, opener: Opener | None, split: Split) -> IO[bytes]:
    if split.start == 0 and split.end < 0:
        return _open_binary(path, options, opener)
    raw = (opener or default_opener)(path)
    raw.seek(split.start)
    return io.BufferedReader(_Bounded(raw, split.end - split.start if split.end >= 0 else -1))


class _Bounded(io.RawIOBase):
    """At most ``limit`` bytes of ``raw`` (``-1``: all), closing ``raw`` on close."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        super().__init__()
        self._raw = raw
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        want = len(b) if self._left < 0 else min(len(b), self._left)
        if want == 0:
            return 0
        data = self._raw.read(want)
        b[: len(data)] = data
        if self._left >= 0:
            self._left -= len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def _open_binary(path: str, options: ReadOptions, opener: Opener | None) -> IO[bytes]:
    raw = (opener or default_opener)(path)
    if options.compression == "none":
        return raw
    if options.compression == "auto":
        head = _peek(raw, 2)
        if head != _GZIP_MAGIC:
            return raw
    return io.BufferedReader(_GzipReader(path, raw), 1 << 20)


def _peek(raw: IO[bytes], n: int) -> bytes:
    peek = getattr(raw, "peek", None)
    if peek is not None:
        return bytes(peek(n)[:n])
    if raw.seekable():
        pos = raw.tell()
        head = raw.read(n)
        raw.seek(pos)
        return head
    raise ConfigError(  # pragma: no cover - every opener we use can peek or seek
        "Cannot sniff the compression of a non-seekable stream; pass `compression`."
    )


class _GzipReader(io.RawIOBase):
    """A gzip-decoding stream that turns truncation and CRC errors into DataError."""

    def __init__(self, path: str, raw: IO[bytes]) -> None:
        super().__init__()
        self._path = path
        self._raw = raw
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            return self._gz.readinto(b)
        except (EOFError, gzip.BadGzipFile, OSError) as e:
            raise DataError(
                f"The gzip stream is damaged ({e}); the file is truncated or corrupt.",
                path=self._path,
                reason="bad_gzip",
            ) from e

    def close(self) -> None:
        if not self.closed:
            self._gz.close()
            self._raw.close()
        super().close()
