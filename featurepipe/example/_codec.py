"""The tf.Example codec without TensorFlow.

`encode_example` writes the protobuf wire format directly: the bytes are
identical to ``tf.train.Example(...).SerializeToString(deterministic=True)``
(features sorted by name), so files are reproducible byte for byte.
`decode_example` and `decode_examples` parse with protobuf's upb backend
through featurepipe's own generated classes (``featurepipe.example.proto``, package
``featurepipe.example.proto``: the same field numbers as TensorFlow's, a different
package, so both can live in one process). `decode_examples` turns a batch of
records into columns (flat numpy values plus per-row lengths); a compiled
decoder (``featurepipe._speedups``) does that when it is built, and the two
paths give identical results.

Three states of a feature in one record are kept apart, as TensorFlow does:
absent (no key), present with no kind (a ``Feature`` with no list set, which
``tf.io.parse_example`` treats as missing), and present with a list, possibly
empty.
"""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple, TypeVar

import numpy as np
from google.protobuf.message import DecodeError

from featurepipe._native import speedups
from featurepipe._util import json_float, json_value
from featurepipe.errors import ConfigError, ExampleDecodeError
from featurepipe.example.proto import example_pb2

__all__ = [
    "KINDS",
    "Column",
    "ColumnBatch",
    "Feature",
    "Kind",
    "decode_example",
    "decode_examples",
    "encode_example",
    "encode_varint",
]

Kind = Literal["int64", "float", "bytes"]
#: The three value kinds of a tf.Example feature.
KINDS: tuple[Kind, ...] = ("int64", "float", "bytes")

# Kind codes equal the Feature oneof field numbers (bytes_list=1, float_list=2,
# int64_list=3); 0 is a Feature with no list set. Shared with csrc/kernels/example.c.
_ONEOF_CODE: dict[str | None, int] = {None: 0, "bytes_list": 1, "float_list": 2, "int64_list": 3}
_CODE_KIND: dict[int, Kind | None] = {0: None, 1: "bytes", 2: "float", 3: "int64"}
_ONEOF_KIND: dict[str | None, Kind | None] = {
    None: None,
    "bytes_list": "bytes",
    "float_list": "float",
    "int64_list": "int64",
}
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


class Feature(NamedTuple):
    """One decoded feature: its kind and its values.

    Attributes:
        kind: ``"int64"``, ``"float"``, ``"bytes"``, or ``None`` for a Feature
            with no list set.
        values: an int64 array, a float32 array, or an object array of bytes.
    """

    kind: Kind | None
    values: np.ndarray[Any, Any]


# --------------------------------------------------------------------------- encoding


def encode_varint(n: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int (< 2**64): the wire format's one encoder.

    See https://protobuf.dev/programming-guides/encoding/#varints.

    >>> encode_varint(1), encode_varint(300)
    (b'\\x01', b'\\xac\\x02')
    """
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL_VARINTS = [encode_varint(i) for i in range(1 << 14)]


def _len_prefix(n: int) -> bytes:
    return _SMALL_VARINTS[n] if n < 16384 else encode_varint(n)


def _int64_list_body(values: Sequence[int] | np.ndarray[Any, Any]) -> bytes:
    # int64 is encoded as the varint of its two's complement uint64.
    packed = b"".join(
        _SMALL_VARINTS[v] if 0 <= v < 16384 else encode_varint(v & 0xFFFFFFFFFFFFFFFF)
        for v in values
    )
    if not packed:
        return b""
    return b"\x0a" + _len_prefix(len(packed)) + packed


def _float_list_body(values: np.ndarray[Any, Any]) -> bytes:
    if values.size == 0:
        return b""
    raw = values.astype("<f4", copy=False).tobytes()
    return b"\x0a" + _len_prefix(len(raw)) + raw


def _bytes_list_body(values: Sequence[bytes]) -> bytes:
    return b"".join(b"\x0a" + _len_prefix(len(v)) + v for v in values)


def _to_bytes(v: object, name: str) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, (bytearray, memoryview, np.bytes_)):
        return bytes(v)
    if isinstance(v, np.str_):
        return str(v).encode("utf-8")
    raise ConfigError(
        f"Feature {name!r}: a bytes feature takes bytes or str values. "
        f"Received: {type(v).__name__} {v!r:.40}"
    )


def _feature_body(name: str, value: object) -> bytes:
    """The serialized ``Feature`` message for one value."""
    kind: str | None
    if isinstance(value, Feature):
        kind, vals = value.kind, value.values
        if kind is None:
            return b""
        return _encode_kind(name, kind, vals)
    if isinstance(value, np.ndarray):
        k = value.dtype.kind
        if k in "iub":
            return _encode_kind(name, "int64", value.reshape(-1))
        if k == "f":
            return _encode_kind(name, "float", value.reshape(-1))
        if k in "SUO":
            return _encode_kind(name, "bytes", value.reshape(-1))
        raise ConfigError(
            f"Feature {name!r}: unsupported numpy dtype {value.dtype}. "
            "Use an integer, float, bytes or str array."
        )
    if isinstance(value, (bytes, str, bytearray, np.bytes_, np.str_)):
        return _encode_kind(name, "bytes", [value])
    if isinstance(value, (bool, int, np.integer)):
        return _encode_kind(name, "int64", [value])
    if isinstance(value, (float, np.floating)):
        return _encode_kind(name, "float", [value])
    if isinstance(value, (list, tuple)):
        if not value:
            raise ConfigError(
                f"Feature {name!r}: an empty list has no kind. Pass a typed numpy array "
                "(e.g. np.array([], np.int64)) or Feature('int64', np.array([], np.int64))."
            )
        if all(isinstance(v, (bytes, str, bytearray, np.bytes_, np.str_)) for v in value):
            return _encode_kind(name, "bytes", value)
        if all(isinstance(v, (bool, int, np.integer)) for v in value):
            return _encode_kind(name, "int64", value)
        if all(isinstance(v, (bool, int, float, np.integer, np.floating)) for v in value):
            return _encode_kind(name, "float", value)
        raise ConfigError(
            f"Feature {name!r}: a list must hold only ints, only numbers or only "
            f"bytes/str. Received: {[type(v).__name__ for v in value][:5]}"
        )
    raise ConfigError(
        f"Feature {name!r}: unsupported value type {type(value).__name__}. "
        "Use int, float, bytes, str, a list of them, or a numpy array."
    )


def _encode_kind(name: str, kind: str, vals: Any) -> bytes:
    if kind == "int64":
        ints = [int(v) for v in vals]
        for v in ints:
            if not _INT64_MIN <= v <= _INT64_MAX:
                raise ConfigError(
                    f"Feature {name!r}: {v} does not fit in int64 "
                    f"[{_INT64_MIN}, {_INT64_MAX}]."
                )
        body = _int64_list_body(ints)
        tag = b"\x1a"
    elif kind == "float":
        body = _float_list_body(np.asarray(vals, dtype=np.float32))
        tag = b"\x12"
    elif kind == "bytes":
        body = _bytes_list_body([_to_bytes(v, name) for v in vals])
        tag = b"\x0a"
    else:
        raise ConfigError(
            f"Unknown kind for feature {name!r}. Allowed values are: {KINDS}. Received: {kind!r}"
        )
    return tag + _len_prefix(len(body)) + body


def encode_example(features: Mapping[str, object]) -> bytes:
    """Serialize a dict of feature name -> values into a ``tf.Example``.

    Kinds follow the values: ints (and bools and integer arrays) become an
    ``int64_list``, floats a ``float_list`` (float32 on the wire), bytes and
    str (UTF-8) a ``bytes_list``. A scalar becomes a one-value list. Pass a
    `Feature` to force a kind (needed for an empty list). ``None`` omits the
    feature. The output equals TensorFlow's
    ``SerializeToString(deterministic=True)``: features sorted by name.

    Args:
        features: feature name -> value.

    Returns:
        The serialized Example.

    Raises:
        ConfigError: a value of an unsupported type, an empty untyped list, an
            int outside int64.

    Examples:

    >>> data = encode_example({"age": 42, "tags": ["a", "b"], "w": 0.5})
    >>> ex = decode_example(data)
    >>> ex["age"].kind, ex["age"].values.tolist()
    ('int64', [42])
    >>> ex["tags"].values.tolist(), ex["w"].values.tolist()
    ([b'a', b'b'], [0.5])
    """
    body = _features_body(features)
    return b"\x0a" + _len_prefix(len(body)) + body


def _features_body(features: Mapping[str, object]) -> bytes:
    """The body of a ``Features`` message (its map entries in `wire_order`).

    An Example is this body as field 1; a SequenceExample's context is the same.
    """
    entries = []
    for name in sorted(features, key=wire_order):
        value = features[name]
        if value is None:
            continue
        key = name.encode("utf-8")
        feat = _feature_body(name, value)
        entries.append(_map_entry(key, feat))
    return b"".join(entries)


def _map_entry(key: bytes, value: bytes) -> bytes:
    """One ``map<string, ...>`` entry as field 1: key (field 1) and value message (field 2)."""
    entry = b"\x0a" + _len_prefix(len(key)) + key + b"\x12" + _len_prefix(len(value)) + value
    return b"\x0a" + _len_prefix(len(entry)) + entry


def wire_order(name: object) -> bytes:
    """Sort key giving protobuf's deterministic map order (the upb runtime's).

    upb compares the common prefix bytewise and, when one key is a prefix of
    the other, puts the *longer* key first (``"ab"`` before ``"a"``, ``""``
    last). UTF-8 never contains the byte 0xFF, so appending it reproduces
    that order with a plain bytes comparison.
    """
    if not isinstance(name, str):
        raise ConfigError(f"Feature names must be str. Received: {name!r}")
    return name.encode("utf-8") + b"\xff"


# --------------------------------------------------------------------------- decoding


def _parse(data: bytes, path: str | None, record: int | None, offset: int | None) -> Any:
    try:
        return example_pb2.Example.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        # Never echo the payload (bad-inputs.md §4): its size and a reason only.
        raise ExampleDecodeError(
            f"the {len(data)}-byte payload is not a valid tf.Example ({_short(e)})",
            path=path,
            record=record,
            offset=offset,
            reason="not_an_example",
        ) from None


def _short(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:120]


def decode_example(
    data: bytes,
    *,
    path: str | None = None,
    record: int | None = None,
    offset: int | None = None,
) -> dict[str, Feature]:
    """Parse one serialized ``tf.Example`` into feature name -> `Feature`.

    Args:
        data: the serialized Example.
        path: file name for error messages. Defaults to `None`.
        record: record index for error messages. Defaults to `None`.
        offset: byte offset for error messages. Defaults to `None`.

    Returns:
        A dict in the Example's feature order, sorted by name.

    Raises:
        ExampleDecodeError: the bytes are not a valid Example (reason
            ``not_an_example``); the message never contains the payload.

    Examples:

    >>> decode_example(encode_example({"x": [1, 2]}))["x"].values
    array([1, 2])
    >>> decode_example(b"\\xff")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    featurepipe.errors.ExampleDecodeError: <stream>: not_an_example: the 1-byte payload ...
    """
    feature = _parse(data, path, record, offset).features.feature
    return {name: _to_feature(feature[name]) for name in sorted(feature)}


def _to_feature(feat: Any) -> Feature:
    """A parsed ``Feature`` message (protobuf) as a `Feature`."""
    kind = _ONEOF_KIND[feat.WhichOneof("kind")]
    if kind == "int64":
        return Feature(kind, np.array(feat.int64_list.value, dtype=np.int64))
    if kind == "float":
        return Feature(kind, np.array(feat.float_list.value, dtype=np.float32))
    if kind == "bytes":
        vals = np.empty(len(feat.bytes_list.value), dtype=object)
        vals[:] = list(feat.bytes_list.value)
        return Feature(kind, vals)
    return Feature(None, np.empty(0, dtype=np.float32))


@dataclasses.dataclass(frozen=True)
class Column:
    """One feature of a batch of Examples, as flat values plus row lengths.

    Attributes:
        name: the feature name.
        kind: ``"int64"``, ``"float"``, ``"bytes"``, or ``None`` when no row
            set a list for it.
        values: every row's values in row order: int64, float32, or an object
            array of bytes.
        row_lengths: number of values in each row (0 where absent).
        present: True where the row has the key with a list set (maybe empty).
        kindless: True where the row has the key but no list set (TensorFlow
            treats those as missing).
    """

    name: str
    kind: Kind | None
    values: np.ndarray[Any, Any]
    row_lengths: np.ndarray[Any, np.dtype[np.int64]]
    present: np.ndarray[Any, np.dtype[np.bool_]]
    kindless: np.ndarray[Any, np.dtype[np.bool_]]

    @property
    def row_splits(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Offsets of each row's values: row ``i`` is ``values[splits[i]:splits[i+1]]``."""
        splits = np.zeros(len(self.row_lengths) + 1, dtype=np.int64)
        np.cumsum(self.row_lengths, out=splits[1:])
        return splits

    def row(self, i: int) -> np.ndarray[Any, Any]:
        """The values of row ``i``."""
        start = int(self.row_lengths[:i].sum())
        return self.values[start : start + int(self.row_lengths[i])]


@dataclasses.dataclass(frozen=True)
class ColumnBatch:
    """A batch of Examples as columns: ``num_rows`` rows, one `Column` per feature."""

    num_rows: int
    columns: dict[str, Column]

    def __getitem__(self, name: str) -> Column:
        return self.columns[name]

    def __contains__(self, name: object) -> bool:
        return name in self.columns


_RawColumns = dict[str, tuple[int, Any, bytes, bytes, bytes]]
_RawResult = tuple[_RawColumns | None, int, str]


def _decode_columns_py(records: Sequence[bytes]) -> _RawResult:
    """Reference batch decoder (protobuf); same output as ``_speedups.decode_columns``.

    Returns ``(columns, err_record, err_reason)``. ``columns`` maps each
    feature name to ``(kind_code, values, row_lengths, present, kindless)``:
    ``values`` is a list of bytes for kind 1 and little-endian float32 /
    int64 bytes for kinds 2 / 3; ``row_lengths`` is little-endian int64 bytes;
    ``present`` and ``kindless`` are one byte per row. On failure ``columns``
    is None and ``err_reason`` is ``"not_an_example"`` or ``"mixed_kind"``.
    """
    n = len(records)
    acc: dict[str, list[Any]] = {}  # name -> [code, values, lengths(array), present, kindless]
    parse = example_pb2.Example.FromString
    for i, data in enumerate(records):
        try:
            ex = parse(data)
        except (DecodeError, RuntimeError, ValueError):
            return None, i, "not_an_example"
        for name, feat in ex.features.feature.items():
            which = feat.WhichOneof("kind")
            code = _ONEOF_CODE[which]
            a = acc.get(name)
            if a is None:
                a = acc[name] = [
                    0,
                    None,
                    array("q", bytes(8 * n)),
                    bytearray(n),
                    bytearray(n),
                ]
            if code == 0:
                a[4][i] = 1
                continue
            if a[0] == 0:
                a[0] = code
                a[1] = _new_values(code)
            elif a[0] != code:
                return None, i, "mixed_kind"
            vals = getattr(feat, which).value
            a[1].extend(vals)
            a[2][i] = len(vals)
            a[3][i] = 1
    out: _RawColumns = {}
    for name, (code, vals, lengths, present, kindless) in acc.items():
        raw = _raw_of(code, vals)
        out[name] = (code, raw, lengths.tobytes(), bytes(present), bytes(kindless))
    return out, -1, ""


def _new_values(code: int) -> Any:
    """An empty accumulator for a reference decoder's values of kind ``code`` (1, 2 or 3)."""
    return [] if code == 1 else array("f" if code == 2 else "q")


def _raw_of(code: int, vals: Any) -> Any:
    """A `_new_values` accumulator as the compiled decoders return values (``b""`` if no kind)."""
    return b"" if code == 0 else vals if code == 1 else vals.tobytes()


_Result = TypeVar("_Result", bound=tuple[Any, ...])


def _run_decoder(
    records: Sequence[bytes],
    native: bool | None,
    native_decoder: Callable[[Sequence[bytes]], _Result] | None,
    py_decoder: Callable[[Sequence[bytes]], _Result],
) -> _Result:
    """Run the compiled batch decoder or its reference, as ``native`` asks.

    Both return a tuple whose first item is None on failure and whose last is
    the reason; the compiled one's ``"slow_path"`` (an unusual encoding) hands
    the batch to the reference decoder (protobuf decides).
    """
    if native is not False and native_decoder is not None:
        result = native_decoder(records)
        if result[0] is not None or result[-1] != "slow_path":
            return result
    elif native:
        raise ConfigError("`native=True` but featurepipe._speedups is not built.")
    return py_decoder(records)


def _le_int64(buf: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Little-endian int64 bytes (a decoder's lengths or values) as a native int64 array."""
    return np.frombuffer(buf, dtype="<i8").astype(np.int64, copy=False)


_decode_columns_native: Callable[[Sequence[bytes]], _RawResult] | None = (
    None if speedups is None else speedups.decode_columns
)


def _raw_values(code: int, vals: Any) -> np.ndarray[Any, Any]:
    """A decoder's raw values of one feature as numpy (kind code: 1 bytes, 2 float, 3 int64)."""
    if code == 1:
        return np.fromiter(vals, dtype=object, count=len(vals))
    if code == 2:
        return np.frombuffer(vals, dtype="<f4").astype(np.float32, copy=False)
    if code == 3:
        return _le_int64(vals)
    return np.empty(0, dtype=np.float32)  # a feature without a kind in any record


def decode_examples(
    records: Sequence[bytes],
    *,
    path: str | None = None,
    first_index: int = 0,
    native: bool | None = None,
) -> ColumnBatch:
    """Decode a batch of serialized Examples into columns.

    Args:
        records: serialized Examples.
        path: file name for error messages. Defaults to `None`.
        first_index: record index of ``records[0]`` in its file, for errors.
            Defaults to `0`.
        native: use the compiled decoder (``True``), the protobuf path
            (``False``), or the compiled one when it is built (``None``). Both
            give the same columns. Defaults to `None`.

    Returns:
        A `ColumnBatch`, features sorted by name.

    Raises:
        ExampleDecodeError: a record is not an Example (``not_an_example``),
            or one feature has two kinds in the batch (``mixed_kind``).

    Examples:

    >>> batch = decode_examples([encode_example({"x": [1, 2]}), encode_example({"x": 3})])
    >>> col = batch["x"]
    >>> col.values.tolist(), col.row_lengths.tolist()
    ([1, 2, 3], [2, 1])
    """
    raw, err_record, err_reason = _run_decoder(
        records, native, _decode_columns_native, _decode_columns_py
    )
    if raw is None:
        if err_reason == "mixed_kind":
            raise ExampleDecodeError(
                "a feature has a different kind here than in earlier records of the batch",
                path=path,
                record=first_index + err_record,
                reason="mixed_kind",
            )
        _parse(records[err_record], path, first_index + err_record, None)  # raises with detail
        raise ExampleDecodeError(  # pragma: no cover - protobuf accepted what the decoder did not
            "the payload is not a valid tf.Example",
            path=path,
            record=first_index + err_record,
            reason="not_an_example",
        )
    n = len(records)
    columns: dict[str, Column] = {}
    for name in sorted(raw):
        code, vals, lengths, present, kindless = raw[name]
        kind = _CODE_KIND[code]
        values = _raw_values(code, vals)
        columns[name] = Column(
            name=name,
            kind=kind,
            values=values,
            row_lengths=_le_int64(lengths) if n else np.zeros(0, np.int64),
            # one 0/1 byte per row: viewed as bool without a copy
            present=np.frombuffer(present, dtype=np.bool_),
            kindless=np.frombuffer(kindless, dtype=np.bool_),
        )
    return ColumnBatch(n, columns)


def float32_repr(x: float) -> float | str:
    """Shortest decimal that round-trips the float32 value (``0.1`` not ``0.10000000149``)."""
    r = json_float(x)
    if isinstance(r, str):
        return r
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-"))


def feature_to_json(feat: Feature) -> dict[str, list[Any]]:
    """The JSON form used by ``featurepipe inspect head --json``.

    int64 values stay exact integers; floats are numbers, except ``"NaN"``,
    ``"Infinity"``, ``"-Infinity"``; bytes are a UTF-8 string when they decode,
    else ``{"base64": ...}``; a feature with no kind is ``{"none": []}``.

    >>> feature_to_json(decode_example(encode_example({"b": [b"ok", b"\\xff"]}))["b"])
    {'bytes': ['ok', {'base64': '/w=='}]}
    """
    if feat.kind is None:
        return {"none": []}
    if feat.kind == "int64":
        return {"int64": [int(v) for v in feat.values]}
    if feat.kind == "float":
        return {"float": [float32_repr(float(v)) for v in feat.values]}
    return {"bytes": [json_value(v) for v in feat.values]}


