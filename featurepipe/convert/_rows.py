"""The row types of the converters: read options, batches of rows and dead letters.

Every reader (`_sources` for CSV and JSON lines, `_arrow` for Parquet, `_csv`
for the compiled CSV path) produces these, and the encoder (`_encode`)
consumes them; they live here so the modules import one way:
``_sources``, ``_arrow``, ``_csv`` -> ``_encode`` -> ``_rows``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from featurepipe.errors import ConfigError

__all__ = [
    "FORMATS",
    "INVALID_UTF8",
    "MALFORMED_ROW",
    "WHOLE_FILE",
    "ColumnRename",
    "DeadLetter",
    "Opener",
    "ReadOptions",
    "RowBatch",
    "Split",
    "default_opener",
    "import_pyarrow_parquet",
    "name_columns",
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
        header: whether a CSV file starts with a header row. ``False`` needs
            ``column_names`` (every line is then a row; line 1 is the first).
            Defaults to `True`.
        column_names: the names of a headerless CSV file's columns, in order.
            Defaults to `None`.
        columns: keep only these columns (names after renaming); ``None``
            keeps all. Defaults to `None`.
        drop_columns: leave these columns out (names after renaming). Defaults to `()`.
        rename: ``{old: new}`` (or ``(old, new)`` pairs), applied after empty
            and duplicate CSV header names were named (see :func:`name_columns`).
            Defaults to `()`.

    Raises:
        ConfigError: if an option is out of range.

    Examples:
    >>> ReadOptions(delimiter=";").delimiter
    ';'
    >>> ReadOptions(header=False, column_names=["a", "b"], rename={"a": "x"}).rename
    (('a', 'x'),)
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
    header: bool = True
    column_names: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    drop_columns: tuple[str, ...] = ()
    rename: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # Lists and dicts are accepted and stored as tuples (the options are hashed and pickled).
        rename: Any = self.rename
        pairs = tuple(rename.items()) if isinstance(rename, Mapping) else tuple(rename)
        object.__setattr__(self, "rename", tuple((str(a), str(b)) for a, b in pairs))
        for name in ("column_names", "columns"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "drop_columns", tuple(self.drop_columns))
        self._check_columns()
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

    def _check_columns(self) -> None:
        if not self.header and not self.column_names:
            raise ConfigError(
                "A CSV file without a header needs its column names: pass `column_names` "
                "(--column-names a,b,c). Received: header=False, column_names=None"
            )
        if self.header and self.column_names is not None:
            raise ConfigError(
                "`column_names` names the columns of a headerless file; with a header row, "
                "rename columns with `rename` (--rename old=new), or pass header=False "
                f"(--no-header). Received: column_names={list(self.column_names)!r}"
            )
        if self.column_names is not None:
            _check_unique("column_names", self.column_names)
        sources = [a for a, _ in self.rename]
        _check_unique("rename", sources, "renamed twice")
        _check_unique("rename", [b for _, b in self.rename], "given to two columns")
        if self.columns is not None:
            _check_unique("columns", self.columns)
            both = sorted(set(self.columns) & set(self.drop_columns))
            if both:
                raise ConfigError(
                    f"Columns cannot be both kept (`columns`) and dropped (`drop_columns`). "
                    f"Received: {both!r} in both"
                )

    @property
    def chooses_columns(self) -> bool:
        """Whether ``columns`` or ``drop_columns`` leaves some columns out."""
        return self.columns is not None or bool(self.drop_columns)

    def keeps(self, name: str) -> bool:
        """Whether the column ``name`` (after renaming) is kept.

        >>> o = ReadOptions(columns=("a", "b"), drop_columns=())
        >>> o.keeps("a"), o.keeps("c"), ReadOptions(drop_columns=("a",)).keeps("a")
        (True, False, False)
        """
        if self.columns is not None and name not in self.columns:
            return False
        return name not in self.drop_columns


def _check_unique(option: str, names: Sequence[str], what: str = "named twice") -> None:
    seen: set[str] = set()
    dup = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if dup:
        raise ConfigError(f"`{option}`: {dup!r} {what}. Received: {option}={list(names)!r}")


@dataclasses.dataclass(frozen=True)
class ColumnRename:
    """A column whose name in the data differs from the one in the file's header.

    Attributes:
        index: the 0-based position of the column in the header.
        header: the name in the file (``""`` for an empty header cell).
        name: the name the column gets (its feature's name).
        reason: ``"empty_name"``, ``"duplicate_name"`` or ``"rename"`` (asked for).
    """

    index: int
    header: str
    name: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form recorded in the summary and the schema JSON."""
        return dataclasses.asdict(self)


def name_columns(
    header: Sequence[str], rename: Sequence[tuple[str, str]] = ()
) -> tuple[list[str], list[ColumnRename]]:
    """Names every column of a CSV header, the way pandas' ``read_csv`` does, then renames.

    A header written by R's ``write.csv`` (``"","a","b"``: the row names) or by
    pandas' ``DataFrame.to_csv()`` (``,a,b``: the index) starts with an empty
    name, and files joined by hand repeat names. The rule is pandas' (so users
    recognise the names): an empty name at position ``i`` (0-based) becomes
    ``Unnamed: i``; the 2nd, 3rd, ... use of a name ``x`` becomes ``x.1``,
    ``x.2``, ..., skipping a name the header already has or that was given
    before (``a,a,a.1`` gives ``a, a.2, a.1``). Sources: pandas' tests of the
    rule, ``pandas/tests/io/parser/test_mangle_dupes.py`` (``test_basic``,
    ``test_mangle_dupe_cols_already_exists``) and ``test_unnamed_columns`` in
    ``pandas/tests/io/parser/common/test_common_basic.py``, in
    https://github.com/pandas-dev/pandas. Then ``rename`` (``(old, new)``
    pairs) renames columns by their new names.

    Args:
        header: the names in the file's header row.
        rename: ``(old, new)`` pairs. Defaults to `()`.

    Returns:
        The column names, and one :class:`ColumnRename` per column whose name
        differs from its header cell.

    Raises:
        ConfigError: if a rename names a column the header does not have, or
            gives a name another column has.

    Examples:
    >>> name_columns(["", "a", "b"])[0]
    ['Unnamed: 0', 'a', 'b']
    >>> name_columns(["a", "a", "a.1", "a", "a.3", "a.1", "a.1.1"])[0]
    ['a', 'a.2', 'a.1', 'a.4', 'a.3', 'a.1.2', 'a.1.1']
    >>> names, renames = name_columns(["", "x", "x"], [("Unnamed: 0", "row")])
    >>> names, [(r.header, r.name, r.reason) for r in renames]
    (['row', 'x', 'x.1'], [('', 'row', 'rename'), ('x', 'x.1', 'duplicate_name')])
    """
    taken = set(header)
    next_suffix: dict[str, int] = {}
    names: list[str] = []
    used: set[str] = set()
    for i, raw in enumerate(header):
        name = raw if raw != "" else f"Unnamed: {i}"
        if name in used:
            base, k = name, next_suffix.get(name, 1)
            name = f"{base}.{k}"
            while name in used or name in taken:
                k += 1
                name = f"{base}.{k}"
            next_suffix[base] = k + 1
        used.add(name)
        names.append(name)
    renamed: set[int] = set()
    if rename:
        index = {n: i for i, n in enumerate(names)}
        missing = [a for a, _ in rename if a not in index]
        if missing:
            raise ConfigError(
                f"`rename` names column(s) {missing!r} that the header does not have. "
                f"The columns are: {names!r}"
            )
        new = list(names)
        for old, to in rename:
            new[index[old]] = to
            renamed.add(index[old])
        _check_unique("rename", new, "would name two columns")
        names = new
    renames = [
        ColumnRename(
            i,
            raw,
            name,
            "rename" if i in renamed else ("empty_name" if raw == "" else "duplicate_name"),
        )
        for i, (raw, name) in enumerate(zip(header, names, strict=True))
        if raw != name
    ]
    return names, renames


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
