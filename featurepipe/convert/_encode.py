"""Turn batches of raw rows into serialized ``tf.Example`` records under a schema.

Three pieces, all plain numpy, used by the Beam job in :mod:`featurepipe.beam`
and usable on their own:

* :func:`convert_batch` parses every column of a :class:`~featurepipe.convert.RowBatch`
  against a :class:`~featurepipe.example.Schema` and returns the serialized
  Examples of the good rows plus one :class:`~featurepipe.convert.DeadLetter`
  for every bad row (reason codes follow TFDV's anomaly types:
  ``SCHEMA_MISSING_COLUMN``, ``UNEXPECTED_DATA_TYPE``,
  ``FEATURE_TYPE_LOW_NUMBER_VALUES``, ``FEATURE_TYPE_HIGH_NUMBER_VALUES``,
  ``INT_TYPE_BIG_INT``, ``INT_TYPE_SMALL_INT``, ``ENUM_TYPE_INVALID_UTF8``).
  ``rows read = rows converted + rows dead-lettered`` for every batch.
* :func:`encode_columns`, the batch encoder: it writes the protobuf wire bytes
  of many Examples at once with vectorised numpy (no Python object per
  feature), byte-identical to ``tf.train.Example.SerializeToString(deterministic=True)``.
Schema inference over raw rows (:class:`featurepipe.convert.RawSchemaInferrer`)
lives in :mod:`featurepipe.convert._infer`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from featurepipe.convert._rows import DeadLetter, RowBatch
from featurepipe.errors import ConfigError
from featurepipe.example import FeatureSchema, Schema, encode_varint

__all__ = [
    "ConvertOptions",
    "ConvertResult",
    "EncodedColumn",
    "PackedBytes",
    "convert_batch",
    "encode_columns",
    "parse_column",
]

MISSING_COLUMN = "SCHEMA_MISSING_COLUMN"
WRONG_TYPE = "UNEXPECTED_DATA_TYPE"
TOO_FEW = "FEATURE_TYPE_LOW_NUMBER_VALUES"
TOO_MANY = "FEATURE_TYPE_HIGH_NUMBER_VALUES"
BIG_INT = "INT_TYPE_BIG_INT"
SMALL_INT = "INT_TYPE_SMALL_INT"
INVALID_UTF8 = "ENUM_TYPE_INVALID_UTF8"

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_KINDS = ("int64", "float", "bytes")
# Wire tags: field number << 3 | wire type 2 (length-delimited).
_TAG1 = 0x0A  # Example.features, Features.feature entry, map key, list `value` field
_TAG2 = 0x12  # map value (Feature)
_LIST_TAG = {"bytes": 0x0A, "float": 0x12, "int64": 0x1A}  # Feature oneof field 1, 2, 3


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """Conversion choices that apply to every column (per-column ones live in the schema).

    Args:
        missing_values: cell texts that mean "missing" in every column, on top
            of each feature's own ``missing_values``. Defaults to `("",)`.
        list_columns: columns whose text cells hold lists, split on
            ``value_separator`` (used by schema inference). Defaults to `()`.
        value_separator: the separator for ``list_columns``. Defaults to `"|"`.
        on_new_column: what a conversion with a given schema does with columns
            of the files that the schema lacks (TFDV's ``SCHEMA_NEW_COLUMN``):
            ``"ignore"`` them (they are counted in the summary and named once
            on stderr) or ``"error"`` (the job fails before it converts).
            Defaults to `"ignore"`.

    Raises:
        ConfigError: if ``value_separator`` is empty or ``on_new_column`` unknown.

    Examples:
    >>> ConvertOptions(missing_values=("", "NA")).missing_values
    ('', 'NA')
    """

    missing_values: tuple[str, ...] = ("",)
    list_columns: tuple[str, ...] = ()
    value_separator: str = "|"
    on_new_column: str = "ignore"

    def __post_init__(self) -> None:
        if not self.value_separator:
            raise ConfigError("`value_separator` must not be empty. Received: value_separator=''")
        if self.on_new_column not in ("ignore", "error"):
            raise ConfigError(
                "Unknown `on_new_column`. Allowed values are: ignore, error. "
                f"Received: on_new_column={self.on_new_column!r}"
            )
        object.__setattr__(self, "missing_values", tuple(self.missing_values))
        object.__setattr__(self, "list_columns", tuple(self.list_columns))


@dataclasses.dataclass
class EncodedColumn:
    """One feature of a batch in flat form (the shape :func:`encode_columns` takes).

    Attributes:
        name: the feature key.
        kind: ``"int64"``, ``"float"`` or ``"bytes"``.
        values: all values of all rows, flat: int64, float32, or (bytes) a list
            of bytes or a :class:`PackedBytes`.
        row_lengths: values per row (int64, one per row).
        present: whether the row has the feature at all (absent rows are
            omitted from the Example; present rows with length 0 get an empty list).
    """

    name: str
    kind: str
    values: Any
    row_lengths: np.ndarray[Any, np.dtype[np.int64]]
    present: np.ndarray[Any, np.dtype[np.bool_]]


@dataclasses.dataclass
class PackedBytes:
    """Many byte strings stored end to end (the fast form of a ``bytes`` column).

    Attributes:
        data: all values concatenated (uint8).
        lengths: the byte length of each value (int64).

    Examples:
    >>> import numpy as np
    >>> p = PackedBytes(np.frombuffer(b"abxyz", np.uint8), np.array([2, 3]))
    >>> _bytes_list(p)
    [b'ab', b'xyz']
    """

    data: np.ndarray[Any, np.dtype[np.uint8]]
    lengths: np.ndarray[Any, np.dtype[np.int64]]

    def __len__(self) -> int:
        return len(self.lengths)


def _bytes_list(values: Any) -> list[bytes]:
    if isinstance(values, PackedBytes):
        raw = values.data.tobytes()
        ends = np.cumsum(values.lengths).tolist()
        starts = [0, *ends[:-1]] if ends else []
        return [raw[a:b] for a, b in zip(starts, ends, strict=True)]
    return list(values)


@dataclasses.dataclass
class ConvertResult:
    """The outcome of :func:`convert_batch`.

    Attributes:
        records: serialized Examples of the good rows, in input order.
        positions: the source position of each record.
        dead_letters: one per bad row (including rows the reader rejected).
        num_read: rows read: ``len(records) + len(dead_letters)``.
    """

    records: list[bytes]
    positions: list[int]
    dead_letters: list[DeadLetter]

    @property
    def num_read(self) -> int:
        """Rows read for this batch."""
        return len(self.records) + len(self.dead_letters)


def convert_batch(
    batch: RowBatch, schema: Schema, options: ConvertOptions | None = None
) -> ConvertResult:
    """Converts a batch of raw rows into serialized Examples plus dead letters.

    Each row either becomes one Example holding every schema feature it has, or
    one dead letter naming the first column at fault. Columns not in the
    schema are ignored.

    Args:
        batch: rows from :mod:`featurepipe.convert._sources`.
        schema: the features to write.
        options: global conversion choices. Defaults to `ConvertOptions()`.

    Returns:
        A :class:`ConvertResult`.

    Examples:
    >>> from featurepipe.example import FeatureSchema, Schema
    >>> from featurepipe.example import decode_example
    >>> s = Schema((FeatureSchema("a", "int64", shape=()),))
    >>> b = RowBatch("t.csv", "csv", "line", [2, 3], {"a": ["7", "x"]}, [])
    >>> r = convert_batch(b, s)
    >>> decode_example(r.records[0])["a"].values.tolist(), r.dead_letters[0].reason
    ([7], 'UNEXPECTED_DATA_TYPE')
    """
    options = options or ConvertOptions()
    n = batch.num_rows
    dead = list(batch.dead_letters)
    bad: dict[int, tuple[str, str, str]] = {}
    parsed: list[EncodedColumn] = []
    for fs in schema:
        cells = batch.columns.get(fs.name)
        text = batch.format == "csv"
        if cells is None:
            cells, text = [None] * n, False
        col, col_bad = parse_column(cells, fs, options, text=text)
        parsed.append(col)
        for i, (reason, detail) in col_bad.items():
            bad.setdefault(i, (fs.name, reason, detail))
    if bad:
        keep = np.ones(n, dtype=bool)
        keep[list(bad)] = False
        parsed = [_select_rows(c, keep) for c in parsed]
        for i in sorted(bad):
            name, reason, detail = bad[i]
            dead.append(
                DeadLetter(
                    batch.path,
                    batch.positions[i],
                    batch.position_kind,
                    reason,
                    name,
                    detail,
                    batch.raw_row(i),
                )
            )
        positions = [p for p, k in zip(batch.positions, keep.tolist(), strict=True) if k]
    else:
        positions = list(batch.positions)
    dead.sort(key=lambda d: d.position)
    records = encode_columns(len(positions), parsed)
    return ConvertResult(records, positions, dead)


def parse_column(
    cells: Sequence[Any],
    feature: FeatureSchema,
    options: ConvertOptions | None = None,
    *,
    text: bool = False,
) -> tuple[EncodedColumn, dict[int, tuple[str, str]]]:
    """Parses one column of raw cells into flat values under a feature's schema.

    Args:
        cells: one raw value per row (``None`` = absent).
        feature: the feature's schema (kind, shape, required, default,
            value separator, missing values).
        options: global conversion choices. Defaults to `ConvertOptions()`.
        text: every cell is a ``str`` or ``None`` (CSV), which enables a
            faster path. Defaults to `False`.

    Returns:
        ``(column, bad)``: the parsed column for every row (bad rows hold no
        values) and ``{row: (reason, detail)}`` for the rows that do not fit.

    Examples:
    >>> from featurepipe.example import FeatureSchema
    >>> col, bad = parse_column(["1|2", "", "3|x"],
    ...                         FeatureSchema("v", "int64", required=False, value_separator="|"))
    >>> col.values.tolist(), col.row_lengths.tolist(), col.present.tolist()
    ([1, 2], [2, 0, 0], [True, False, False])
    >>> bad
    {2: ('UNEXPECTED_DATA_TYPE', "'x' is not an integer")}
    """
    options = options or ConvertOptions()
    missing: frozenset[Any] = frozenset(options.missing_values) | frozenset(
        feature.missing_values or ()
    )
    kind = feature.kind
    if kind not in _KINDS:
        raise ConfigError(
            f"Unknown feature kind {kind!r} for {feature.name!r}; expected one of {_KINDS}"
        )
    want = _expected_count(feature.shape)
    fast = (
        feature.value_separator is None
        and want in (1, None)
        and (feature.default is None or not isinstance(feature.default, list | tuple))
    )
    if fast:
        got = (
            _parse_scalar_strings(cells, kind, missing)
            if text
            else _parse_scalar_objects(cells, kind, missing)
        )
        if got is not None:
            return _finish_scalar(feature, *got)
    return _parse_general(cells, feature, missing, want)


_NONE = type(None)


def _parse_scalar_objects(
    cells: Sequence[Any], kind: str, missing: frozenset[Any]
) -> tuple[Any, np.ndarray[Any, np.dtype[np.bool_]]] | None:
    """The fast path for JSON / Parquet values of one plain type; ``None`` if unsure.

    Handles int64 columns of ``int`` (and ``None``), float columns of ``float``
    / ``int``, and bytes columns of ``str``, exactly as :func:`_convert_one`
    would convert them; anything else (bools, text to parse, lists, values out
    of range, unencodable text) goes to the general path, which decides.
    """
    types = set(map(type, cells))
    present = np.fromiter((c is not None for c in cells), dtype=bool, count=len(cells))
    try:
        if kind == "int64":
            if not types <= {int, _NONE}:
                return None
            vals = [c for c in cells if c is not None]
            return np.array(vals, dtype=np.int64), present  # OverflowError past int64
        if kind == "float":
            if not types <= {float, int, _NONE}:
                return None
            vals = [float(c) for c in cells if c is not None]
            with np.errstate(over="ignore"):
                return np.array(vals, dtype=np.float32), present
        if not types <= {str, _NONE}:
            return None
        if missing - {""}:
            present &= ~np.fromiter(map(missing.__contains__, cells), dtype=bool, count=len(cells))
        elif "" in missing:
            present &= np.fromiter((bool(c) for c in cells), dtype=bool, count=len(cells))
        vals = list(itertools.compress(cells, present.tolist()))
        return [v.encode("utf-8") for v in vals], present
    except (OverflowError, UnicodeEncodeError):
        return None


def _parse_scalar_strings(
    cells: Sequence[Any], kind: str, missing: frozenset[Any]
) -> tuple[Any, np.ndarray[Any, np.dtype[np.bool_]]] | None:
    """The fast path for ``str`` cells holding one value each; ``None`` if some cell is bad.

    Returns the values of the present cells and the "present" mask. Every loop
    runs in C (``map`` over builtins, numpy); the general path finds which
    cell is bad when this one gives up. Text columns are joined into one
    string and encoded once (UTF-8 of ASCII text is the text itself).
    """
    n = len(cells)
    try:
        lens = np.fromiter(map(len, cells), dtype=np.int64, count=n)
    except TypeError:  # a None (absent) cell: the general path handles it
        return None
    if missing == {""}:
        present = lens > 0
    else:
        present = ~np.fromiter(map(missing.__contains__, cells), dtype=bool, count=n)
    all_present = bool(present.all())
    vals: Sequence[str] = (
        cells if all_present else list(itertools.compress(cells, present.tolist()))
    )
    try:
        if kind == "int64":
            return np.array(list(map(int, vals)), dtype=np.int64), present
        if kind == "float":
            with np.errstate(over="ignore"):
                return np.array(list(map(float, vals)), dtype=np.float32), present
        # Missing empty cells add nothing to the joined text, so only other
        # missing markers ("NA") force the filtered list.
        joined = "".join(cells if all_present or missing == {""} else vals)
        if joined.isascii():
            data = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
            return PackedBytes(data, lens[present]), present
        return list(map(str.encode, vals)), present
    except (ValueError, OverflowError, UnicodeEncodeError, TypeError):
        return None  # some cell is bad: the general path finds which


def _finish_scalar(
    feature: FeatureSchema, values: Any, present: np.ndarray[Any, np.dtype[np.bool_]]
) -> tuple[EncodedColumn, dict[int, tuple[str, str]]]:
    bad: dict[int, tuple[str, str]] = {}
    n = len(present)
    lengths = present.astype(np.int64)
    if not present.all():
        missing_idx = np.flatnonzero(~present).tolist()
        if feature.default is not None:
            default = _convert_one(feature.default, feature.kind)
            values = _fill_default(feature.kind, values, present, default)
            lengths = np.ones(n, dtype=np.int64)
            present = np.ones(n, dtype=bool)
        elif feature.required:
            for i in missing_idx:
                bad[i] = (MISSING_COLUMN, "a required value is missing")
    return EncodedColumn(feature.name, feature.kind, values, lengths, present), bad


def _parse_general(
    cells: Sequence[Any], feature: FeatureSchema, missing: frozenset[str], want: int | None
) -> tuple[EncodedColumn, dict[int, tuple[str, str]]]:
    kind = feature.kind
    n = len(cells)
    bad: dict[int, tuple[str, str]] = {}
    rows: list[list[Any]] = []
    present = np.zeros(n, dtype=bool)
    sep = feature.value_separator
    default: list[Any] | None = None
    if feature.default is not None:
        d = feature.default
        default = [_convert_one(v, kind) for v in (d if isinstance(d, list | tuple) else [d])]
    for i, c in enumerate(cells):
        if c is None or (isinstance(c, str) and c in missing):
            if default is not None:
                rows.append(default)
                present[i] = True
            else:
                rows.append([])
                if feature.required:
                    bad[i] = (MISSING_COLUMN, "a required value is missing")
            continue
        if isinstance(c, str) and sep is not None:
            items: list[Any] = c.split(sep)
        elif isinstance(c, list | tuple):
            items = list(c)
        else:
            items = [c]
        try:
            row = [_convert_one(v, kind) for v in items]
        except _BadValueError as e:
            rows.append([])
            bad[i] = (e.reason, e.detail)
            continue
        if want is not None and len(row) != want:
            rows.append([])
            reason = TOO_FEW if len(row) < want else TOO_MANY
            bad[i] = (reason, f"{len(row)} values, the schema wants {want}")
            continue
        rows.append(row)
        present[i] = True
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=n)
    flat = [v for r in rows for v in r]
    values: Any
    if kind == "int64":
        values = np.array(flat, dtype=np.int64)
    elif kind == "float":
        with np.errstate(over="ignore"):
            values = np.array(flat, dtype=np.float32)
    else:
        values = flat
    return EncodedColumn(feature.name, kind, values, lengths, present), bad


class _BadValueError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _convert_one(v: Any, kind: str) -> Any:
    """One raw value -> int / float / bytes for ``kind``, or _BadValueError."""
    t = type(v)
    if kind == "int64":
        if t is str:
            try:
                iv = int(v)
            except ValueError:
                raise _BadValueError(WRONG_TYPE, f"{_short(v)} is not an integer") from None
        elif t is int or t is bool:
            iv = int(v)
        else:
            raise _BadValueError(WRONG_TYPE, f"{_short(v)} ({t.__name__}) is not an integer")
        if iv > _INT64_MAX:
            raise _BadValueError(BIG_INT, f"{_short(v)} is above the int64 range")
        if iv < _INT64_MIN:
            raise _BadValueError(SMALL_INT, f"{_short(v)} is below the int64 range")
        return iv
    if kind == "float":
        if t is str:
            try:
                return float(v)
            except ValueError:
                raise _BadValueError(WRONG_TYPE, f"{_short(v)} is not a number") from None
        if t is float or t is int or t is bool:
            try:
                return float(v)
            except OverflowError:  # an int past float64: float32 would hold inf anyway
                return math.inf if v > 0 else -math.inf
        raise _BadValueError(WRONG_TYPE, f"{_short(v)} ({t.__name__}) is not a number")
    if t is str:
        try:
            return v.encode("utf-8")
        except UnicodeEncodeError:
            raise _BadValueError(INVALID_UTF8, f"{_short(v)} is not valid UTF-8") from None
    if t is bytes:
        return v
    if t is bool or t is int or t is float:
        return json.dumps(v).encode()
    if v is None:
        raise _BadValueError(WRONG_TYPE, "null inside a list")
    raise _BadValueError(WRONG_TYPE, f"a {t.__name__} is not a scalar")


def _fill_default(
    kind: str, values: Any, present: np.ndarray[Any, np.dtype[np.bool_]], default: Any
) -> Any:
    """One value per row: the present rows' ``values`` in order, ``default`` in the others."""
    n = len(present)
    full: Any
    if kind == "bytes":
        full = [default] * n
        for v, i in zip(_bytes_list(values), np.flatnonzero(present).tolist(), strict=True):
            full[i] = v
    else:
        full = np.full(n, default, dtype=values.dtype)
        full[present] = values
    return full


def _scalar_default(feature: FeatureSchema) -> Any:
    """A feature's (set) default as one converted value; None for a list or a bad default.

    The columnar paths (Arrow, compiled CSV) leave those to the general path.
    """
    if isinstance(feature.default, list | tuple):
        return None
    try:
        return _convert_one(feature.default, feature.kind)
    except _BadValueError:
        return None


def _expected_count(shape: tuple[int, ...] | None) -> int | None:
    if shape is None:
        return None
    return math.prod(shape)


def _select_rows(col: EncodedColumn, keep: np.ndarray[Any, np.dtype[np.bool_]]) -> EncodedColumn:
    value_keep = np.repeat(keep, col.row_lengths)
    if isinstance(col.values, np.ndarray):
        values: Any = col.values[value_keep]
    elif isinstance(col.values, PackedBytes):
        p = col.values
        values = PackedBytes(p.data[np.repeat(value_keep, p.lengths)], p.lengths[value_keep])
    else:
        values = [v for v, k in zip(col.values, value_keep.tolist(), strict=True) if k]
    return EncodedColumn(col.name, col.kind, values, col.row_lengths[keep], col.present[keep])


# --------------------------------------------------------------------------------------------
# The batch encoder.
#
# Wire layout (field numbers from example.proto / feature.proto; every field is
# length-delimited, so each is TAG, varint(len), payload):
#   Example   = 0a varint(len(Features)) Features
#   Features  = for each key, sorted bytewise:  0a varint(len(Entry)) Entry
#   Entry     = 0a varint(len(key)) key  12 varint(len(Feature)) Feature
#   Feature   = TAG varint(len(List)) List   (TAG 0a bytes_list, 12 float_list, 1a int64_list)
#   Int64List = 0a varint(len(varints)) varints...   (packed; omitted when empty)
#   FloatList = 0a varint(4*n) float32-LE...          (packed; omitted when empty)
#   BytesList = for each value: 0a varint(len(v)) v
# Every row's bytes are a sequence of "pieces" (a tag, a length varint, a key,
# a payload...). Each piece is held as a padded (rows, width) uint8 block plus
# the number of valid leading bytes per row; all blocks are stacked side by
# side and one boolean-mask selection drops the padding, which leaves exactly
# the rows' bytes one after another. No per-byte index arrays are built.

_Piece = tuple[Any, Any]  # (valid bytes per row: int64 (n,), padded block: uint8 (n, width))


def encode_columns(num_rows: int, columns: Sequence[EncodedColumn]) -> list[bytes]:
    """Serializes ``num_rows`` Examples from flat columns in one vectorised pass.

    The output is byte-identical to building each ``tf.train.Example`` and
    calling ``SerializeToString(deterministic=True)`` (keys in upb's map order).

    Args:
        num_rows: how many Examples.
        columns: one :class:`EncodedColumn` per feature; absent rows are omitted.

    Returns:
        One serialized Example per row.

    Raises:
        ConfigError: if two columns share a name or lengths do not add up.

    Examples:
    >>> import numpy as np
    >>> col = EncodedColumn("x", "int64", np.array([5, 6, 7]), np.array([1, 2, 0]),
    ...                     np.array([True, True, False]))
    >>> from featurepipe.example import encode_example
    >>> out = encode_columns(3, [col])
    >>> out[0] == encode_example({"x": [5]}), out[1] == encode_example({"x": [6, 7]})
    (True, True)
    >>> out[2]  # a row without features is an empty Features message
    b'\\n\\x00'
    """
    names = [c.name.encode("utf-8") for c in columns]
    if len(set(names)) != len(names):
        raise ConfigError(f"Duplicate feature names. Received: names={[c.name for c in columns]}")
    # protobuf's (upb's) deterministic map order: bytewise, but a key that is a
    # prefix of another comes *after* it ("ab" before "a"); UTF-8 has no 0xFF byte.
    order = sorted(range(len(columns)), key=lambda j: names[j] + b"\xff")
    pieces: list[_Piece] = []
    for j in order:
        pieces.extend(_feature_pieces(num_rows, names[j], columns[j]))
    body = np.zeros(num_rows, dtype=np.int64)
    for lens, _ in pieces:
        body += lens
    everyone = np.ones(num_rows, dtype=bool)
    header = [_const(b"\x0a", everyone), _varint_block(body)]
    buf, bounds = _concat_rows(num_rows, header + pieces)
    raw = buf.tobytes()
    b = bounds.tolist()
    return [raw[b[i] : b[i + 1]] for i in range(num_rows)]


def _feature_pieces(n: int, key: bytes, col: EncodedColumn) -> list[_Piece]:
    present = np.asarray(col.present, dtype=bool)
    lengths = np.asarray(col.row_lengths, dtype=np.int64)
    if present.shape != (n,) or lengths.shape != (n,):
        raise ConfigError(
            f"Column {col.name!r} must have one entry per row ({n}). "
            f"Received: present={present.shape}, row_lengths={lengths.shape}"
        )
    lengths = np.where(present, lengths, 0)
    total = int(lengths.sum())
    scalar = n == 0 or int(lengths.max()) <= 1
    one = lengths == 1
    if col.kind == "bytes":
        if isinstance(col.values, PackedBytes):
            blens, bdata = col.values.lengths, col.values.data
        else:
            blens = np.fromiter(map(len, col.values), dtype=np.int64, count=len(col.values))
            bdata = np.frombuffer(b"".join(col.values), dtype=np.uint8)
        if len(blens) != total:
            raise ConfigError(f"Column {col.name!r}: values do not match row_lengths")
        if scalar:  # one value per row at most: lay the value's bytes out per row
            row_blen = np.zeros(n, dtype=np.int64)
            row_blen[one] = blens
            list_pieces = [
                _const(b"\x0a", one),
                _masked(_varint_block(row_blen), one),
                (row_blen, _padded(bdata, row_blen)),
            ]
        else:  # BytesList per value, then the values of each row side by side
            vbuf, vb = _concat_rows(
                len(blens),
                [
                    _const(b"\x0a", np.ones(len(blens), dtype=bool)),
                    _varint_block(blens),
                    (blens, _padded(bdata, blens)),
                ],
            )
            row_len = _segment_sums(np.diff(vb), lengths)
            list_pieces = [(row_len, _padded(vbuf, row_len))]
        list_lens = np.zeros(n, dtype=np.int64)
        for lens, _ in list_pieces:
            list_lens += lens
    else:
        if col.kind == "int64":
            vals = np.asarray(col.values, dtype=np.int64)
            if len(vals) != total:
                raise ConfigError(f"Column {col.name!r}: values do not match row_lengths")
            if scalar:
                u = np.zeros(n, dtype=np.uint64)
                u[one] = vals.view(np.uint64)
                payload_piece = _masked(_varint_block(u), one)
            else:
                data, per_value = _varints(vals.view(np.uint64))
                row_len = _segment_sums(per_value, lengths)
                payload_piece = (row_len, _padded(data, row_len))
        else:
            vals32 = np.asarray(col.values, dtype="<f4")
            if len(vals32) != total:
                raise ConfigError(f"Column {col.name!r}: values do not match row_lengths")
            if scalar:
                f = np.zeros(n, dtype="<f4")
                f[one] = vals32
                payload_piece = (lengths * 4, f.view(np.uint8).reshape(n, 4))
            else:
                payload_piece = (lengths * 4, _padded(vals32.view(np.uint8), lengths * 4))
        payload = payload_piece[0]
        nonempty = lengths > 0
        list_pieces = [
            _const(b"\x0a", nonempty),
            _masked(_varint_block(payload), nonempty),
            payload_piece,
        ]
        list_lens = np.where(nonempty, 1 + _varint_len(payload) + payload, 0)
    feat_lens = 1 + _varint_len(list_lens) + list_lens
    key_prefix = bytes([_TAG1]) + encode_varint(len(key)) + key + bytes([_TAG2])
    entry_lens = len(key_prefix) + _varint_len(feat_lens) + feat_lens
    return [
        _const(b"\x0a", present),
        _masked(_varint_block(entry_lens), present),
        _const(key_prefix, present),
        _masked(_varint_block(feat_lens), present),
        _const(bytes([_LIST_TAG[col.kind]]), present),
        _masked(_varint_block(list_lens), present),
        *list_pieces,
    ]


def _const(b: bytes, mask: np.ndarray[Any, np.dtype[np.bool_]]) -> _Piece:
    block = np.broadcast_to(np.frombuffer(b, dtype=np.uint8), (len(mask), len(b)))
    return mask.astype(np.int64) * len(b), block


def _masked(piece: _Piece, mask: np.ndarray[Any, np.dtype[np.bool_]]) -> _Piece:
    return np.where(mask, piece[0], 0), piece[1]


def _padded(flat: np.ndarray[Any, Any], lens: np.ndarray[Any, Any]) -> Any:
    """Ragged bytes (rows of ``lens`` bytes, end to end) as a zero-padded (rows, max) block."""
    n = len(lens)
    width = int(lens.max()) if n else 0
    if n and int(lens.min()) == width:
        return flat.reshape(n, width)
    out = np.zeros((n, width), dtype=np.uint8)
    out[np.arange(width) < lens[:, None]] = flat
    return out


def _varint_block(v: np.ndarray[Any, Any]) -> _Piece:
    """Base-128 varints of values (as unsigned 64-bit), one per row: (lengths, block)."""
    u = np.asarray(v).astype(np.int64, copy=False).view(np.uint64)
    lens = _varint_len(u.view(np.int64))
    width = int(lens.max()) if len(u) else 1
    if width == 1:
        return lens, u.astype(np.uint8).reshape(-1, 1)
    block = np.empty((len(u), width), dtype=np.uint8)
    for k in range(width):
        chunk = (u >> np.uint64(7 * k)) & np.uint64(0x7F)
        cont = (lens > k + 1).astype(np.uint64) << np.uint64(7)
        block[:, k] = chunk | cont
    return lens, block


def _concat_rows(n: int, pieces: Sequence[_Piece]) -> tuple[Any, Any]:
    """Row by row, the valid bytes of every piece, end to end; returns (buffer, row bounds)."""
    pieces = [(lens, block) for lens, block in pieces if block.shape[1]]
    total = np.zeros(n, dtype=np.int64)
    for lens, _ in pieces:
        total += lens
    bounds = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(total, out=bounds[1:])
    if not pieces or n == 0:
        return np.zeros(0, dtype=np.uint8), bounds
    big = np.hstack([block for _, block in pieces])
    if int(total.min()) == big.shape[1]:  # no padding anywhere
        return big.ravel(), bounds
    mask = np.hstack([np.arange(block.shape[1]) < lens[:, None] for lens, block in pieces])
    return big[mask], bounds


def _segment_sums(per_value: np.ndarray[Any, Any], lengths: np.ndarray[Any, Any]) -> Any:
    cs = np.concatenate(([0], np.cumsum(per_value, dtype=np.int64)))
    ends = np.cumsum(lengths)
    return cs[ends] - cs[ends - lengths]


# Values below _VARINT_LIMITS[k] need k + 1 bytes as a varint.
_VARINT_LIMITS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)


def _varint_len(v: np.ndarray[Any, Any]) -> Any:
    u = np.asarray(v, dtype=np.int64).view(np.uint64)
    if len(u) == 0 or u.max() < 0x80:
        return np.ones(u.shape, dtype=np.int64)
    return np.searchsorted(_VARINT_LIMITS, u, side="right").astype(np.int64) + 1


def _varints(u: np.ndarray[Any, np.dtype[np.uint64]]) -> tuple[Any, Any]:
    """Base-128 varints of unsigned 64-bit values, end to end: (flat bytes, length of each)."""
    lens, block = _varint_block(u)
    return _concat_rows(len(u), [(lens, block)])[0], lens

