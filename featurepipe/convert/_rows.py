"""The row types of the converters: read options, batches of rows and dead letters.

Every reader (`_sources` for CSV and JSON lines, `_arrow` for Parquet, `_csv`
for the compiled CSV path) produces these, and the encoder (`_encode`)
consumes them; they live here so the modules import one way:
``_sources``, ``_arrow``, ``_csv`` -> ``_encode`` -> ``_rows``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import IO, Any

from featurepipe.errors import ConfigError

__all__ = [
    "FORMATS",
    "INVALID_UTF8",
    "MALFORMED_ROW",
    "WHOLE_FILE",
    "DeadLetter",
    "Opener",
    "ReadOptions",
    "RowBatch",
    "Split",
    "default_opener",
    "import_pyarrow_parquet",
]

FORMATS = ("csv", "jsonl", "parquet")

# Reason codes for rows that cannot be parsed at all. TFDV has no anomaly type
# for a malformed line, so this one is featurepipe's own; bad UTF-8 reuses
# TFDV's ENUM_TYPE_INVALID_UTF8.
MALFORMED_ROW = "MALFORMED_ROW"
INVALID_UTF8 = "ENUM_TYPE_INVALID_UTF8"

Opener = Callable[[str], IO[bytes]]


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """How raw inputs are parsed.

    Args:
        format: one of ``"csv"``, ``"jsonl"``, ``"parquet"``, or ``None`` to
            guess from the file name. Defaults to `None`.
        delimiter: the CSV field delimiter (one character). Defaults to `","`.
        quotechar: the CSV quote character. Defaults to `'"'`.
        batch_size: rows per :class:`RowBatch`. Defaults to `4096`.
        compression: ``"auto"`` (gzip sniffed from the first bytes), ``"gzip"``
            or ``"none"``. Defaults to `"auto"`.
        max_field_bytes: the largest CSV field accepted. Defaults to `16 MiB`.
        split_bytes: :func:`plan_splits` cuts uncompressed text files (and
            Parquet files, by row groups) into parts of about this size so
            several workers can read one file; ``0`` never splits. Defaults to `32 MiB`.

    Raises:
        ConfigError: if an option is out of range.

    Examples:
    >>> ReadOptions(delimiter=";").delimiter
    ';'
    >>> ReadOptions(batch_size=0)
    Traceback (most recent call last):
    ...
    featurepipe.errors.ConfigError: `batch_size` must be at least 1. Received: batch_size=0
    """

    format: str | None = None
    delimiter: str = ","
    quotechar: str = '"'
    batch_size: int = 4096
    compression: str = "auto"
    max_field_bytes: int = 16 << 20
    split_bytes: int = 32 << 20

    def __post_init__(self) -> None:
        if self.format is not None and self.format not in FORMATS:
            raise ConfigError(
                f"Unknown input `format`. Allowed values are: {', '.join(FORMATS)}. "
                f"Received: format={self.format!r}"
            )
        if len(self.delimiter) != 1:
            raise ConfigError(
                f"`delimiter` must be exactly one character. Received: delimiter={self.delimiter!r}"
            )
        if len(self.quotechar) != 1:
            raise ConfigError(
                f"`quotechar` must be exactly one character. Received: quotechar={self.quotechar!r}"
            )
        if self.batch_size < 1:
            raise ConfigError(
                f"`batch_size` must be at least 1. Received: batch_size={self.batch_size}"
            )
        if self.compression not in ("auto", "gzip", "none"):
            raise ConfigError(
                "Unknown input `compression`. Allowed values are: auto, gzip, none. "
                f"Received: compression={self.compression!r}"
            )
        if self.split_bytes < 0:
            raise ConfigError(
                f"`split_bytes` must be >= 0. Received: split_bytes={self.split_bytes}"
            )
        if self.max_field_bytes < 1:
            raise ConfigError(
                "`max_field_bytes` must be positive. "
                f"Received: max_field_bytes={self.max_field_bytes}"
            )


@dataclasses.dataclass
class DeadLetter:
    """One input row that did not become an Example, and why.

    Attributes:
        path: the source file.
        position: the 1-based line (CSV, JSON lines) or 0-based row (Parquet).
        position_kind: ``"line"`` or ``"row"``.
        reason: a code named after TFDV's anomaly types where one fits, e.g.
            ``"UNEXPECTED_DATA_TYPE"``.
        column: the offending column, or ``None`` for the whole row.
        detail: a short human explanation.
        raw: the raw row: a dict of cells, or the raw text of the line.

    Examples:
    >>> d = DeadLetter("a.csv", 3, "line", "MALFORMED_ROW", None, "2 fields", "x,y")
    >>> d.to_json()
    '{"file": "a.csv", "line": 3, "column": null, "reason": "MALFORMED_ROW", \
"detail": "2 fields", "raw": "x,y"}'
    """

    path: str
    position: int
    position_kind: str
    reason: str
    column: str | None
    detail: str
    raw: Any

    def to_dict(self) -> dict[str, Any]:
        """Returns the JSON-able dict written to ``PREFIX.deadletter-*.jsonl``."""
        return {
            "file": self.path,
            self.position_kind: self.position,
            "column": self.column,
            "reason": self.reason,
            "detail": self.detail,
            "raw": _jsonable(self.raw),
        }

    def to_json(self) -> str:
        """Returns one JSON line (without the newline); non-UTF-8 text is escaped."""
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=True)


@dataclasses.dataclass(frozen=True)
class Split:
    """A part of one file that one worker reads: a byte range, or Parquet row groups.

    Attributes:
        index: the part's number within its file (0 for the first).
        start: the first byte (text) or row group (Parquet).
        end: one past the last byte or row group; ``-1`` means the end of the file.
        first_line: the 1-based line number at ``start`` (text), or the 0-based
            index of the first row (Parquet).
        header: the CSV header, for parts after the first (which do not hold it).
    """

    index: int
    start: int
    end: int
    first_line: int = 1
    header: tuple[str, ...] | None = None


WHOLE_FILE = Split(0, 0, -1)


@dataclasses.dataclass
class RowBatch:
    """Rows of one file, stored as columns.

    Attributes:
        path: the source file.
        format: ``"csv"``, ``"jsonl"`` or ``"parquet"``.
        position_kind: ``"line"`` or ``"row"``.
        positions: one source position per row in ``columns``.
        columns: column name -> one value per row. ``None`` means the cell is
            absent (a JSON key not present, a Parquet null); CSV cells are
            ``str``; JSON values are ``int``/``float``/``str``/``bool``/lists;
            Parquet values are what ``pyarrow`` gives.
        dead_letters: rows of this batch that could not be parsed at all.

    Examples:
    >>> b = RowBatch("a.csv", "csv", "line", [2], {"x": ["1"]}, [])
    >>> b.num_rows, b.num_read
    (1, 1)
    >>> b.raw_row(0)
    {'x': '1'}
    """

    path: str
    format: str
    position_kind: str
    positions: list[int]
    columns: dict[str, list[Any]]
    dead_letters: list[DeadLetter]

    @property
    def num_rows(self) -> int:
        """The number of parsed rows (excluding ``dead_letters``)."""
        return len(self.positions)

    @property
    def num_read(self) -> int:
        """All rows read for this batch: parsed plus dead-lettered."""
        return len(self.positions) + len(self.dead_letters)

    def raw_row(self, i: int) -> dict[str, Any]:
        """Returns row ``i`` as a dict of its raw cells (``None`` cells dropped)."""
        return {k: v[i] for k, v in self.columns.items() if v[i] is not None}


def import_pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise ImportError(
            "Reading Parquet requires the pyarrow module. You can install it via "
            "`pip install 'featurepipe[parquet]'` (or `pip install pyarrow`)."
        ) from e
    return pq


def default_opener(path: str) -> IO[bytes]:
    return open(path, "rb")


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        try:  # bytes a CSV reader escaped come back as \xNN
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a lone surrogate from JSON ("\ud800"): write it as \ud800
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {str(_jsonable(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)
