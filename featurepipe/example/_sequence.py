"""tf.train.SequenceExample without TensorFlow, and the payload kind of a record.

A TFRecord file can hold any bytes. `payload_kind` tells, from the protobuf
wire format alone, what one record is:

* ``"example"``: every top-level field is field 1 (``Features``, length-delimited)
  and the bytes parse as a ``tf.train.Example``.
* ``"sequence_example"``: the top-level fields are only fields 1 (``context``)
  and 2 (``feature_lists``), field 2 occurs, and the bytes parse as a
  ``tf.train.SequenceExample``.
* ``"other"``: anything else (a field other than 1 or 2, a wire type other
  than length-delimited, bytes that are not protobuf at all).

The ambiguous payloads follow one rule: **a record without field 2 is an
Example**. An empty record (``tf.train.Example().SerializeToString()`` is
``b""``) and a record with only field 1 are byte for byte also a
SequenceExample with no feature lists; ``tf.io.parse_sequence_example`` reads
them as such, so a file whose other records are SequenceExamples is still a
file of SequenceExamples (see ``featurepipe inspect verify``). Field numbers
are those of TensorFlow's ``example.proto`` / ``feature.proto``
(https://github.com/tensorflow/tensorflow/blob/master/tensorflow/core/example/example.proto).

`encode_sequence_example` writes the wire format directly, byte-identical to
``tf.train.SequenceExample(...).SerializeToString(deterministic=True)`` (map
keys in upb's order, see `featurepipe.example.wire_order`);
`decode_sequence_example` parses one record; `decode_sequence_examples`
decodes a batch into numpy columns: the context as a `ColumnBatch`, each
feature list as flat values plus the number of values of each step and the
number of steps of each sequence.
"""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
from google.protobuf.message import DecodeError

from featurepipe._native import speedups
from featurepipe.errors import ConfigError, ExampleDecodeError
from featurepipe.example._codec import (
    _CODE_KIND,
    _ONEOF_CODE,
    ColumnBatch,
    Feature,
    Kind,
    _feature_body,
    _features_body,
    _le_int64,
    _len_prefix,
    _map_entry,
    _new_values,
    _raw_of,
    _raw_values,
    _run_decoder,
    _short,
    _to_feature,
    decode_examples,
    wire_order,
)
from featurepipe.example.proto import example_pb2

__all__ = [
    "PAYLOAD_KINDS",
    "FeatureListColumn",
    "PayloadKind",
    "SequenceBatch",
    "SequenceExample",
    "decode_sequence_example",
    "decode_sequence_examples",
    "encode_sequence_example",
    "payload_kind",
]

PayloadKind = Literal["example", "sequence_example", "other"]
#: What a TFRecord payload can be, as `payload_kind` names it.
PAYLOAD_KINDS: tuple[PayloadKind, ...] = ("example", "sequence_example", "other")


# --------------------------------------------------------------------------- payload kind


def _top_level_fields(data: bytes, field1: list[bytes] | None = None) -> int | None:
    """Bit 1: field 1 seen, bit 2: field 2 seen; ``None`` if another field or malformed.

    Only length-delimited fields 1 and 2 are allowed (wire type 2). With
    ``field1``, each field 1 (its tag and length included) is appended to it.
    """
    seen = 0
    pos = 0
    end = len(data)
    while pos < end:
        start = pos
        tag = data[pos]
        if tag == 0x0A:
            seen |= 1
        elif tag == 0x12:
            seen |= 2
        else:
            return None  # another field, another wire type, or a multi-byte tag
        pos += 1
        # the varint length
        length = 0
        shift = 0
        while True:
            if pos >= end or shift > 63:
                return None
            b = data[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
        pos += length
        if pos > end:
            return None
        if field1 is not None and tag == 0x0A:
            field1.append(data[start:pos])
    return seen


def _context_part(data: bytes) -> bytes:
    """The record with its field 2 removed: an Example holding the context.

    Deterministic writers put field 1 first, so this is usually a slice.
    Call only on payloads that protobuf parsed.
    """
    parts: list[bytes] = []
    if _top_level_fields(data, parts) is None:
        return data  # an unusual encoding: protobuf (the slow path) decides
    return parts[0] if len(parts) == 1 else b"".join(parts)


def payload_kind(data: bytes, *, check: bool = True) -> PayloadKind:
    """What one TFRecord payload is: ``"example"``, ``"sequence_example"`` or ``"other"``.

    A record without field 2 (an empty one included) is an ``"example"``;
    see the module docstring for the whole rule.

    Args:
        data: one record's payload.
        check: also parse the payload with protobuf, so that a record whose
            top-level fields look right but whose inside is damaged is
            ``"other"``. With ``False`` only the top-level fields are looked
            at (fast: for routing records to a decoder that checks them).
            Defaults to `True`.

    Returns:
        The kind.

    Examples:

    >>> from featurepipe.example import encode_example
    >>> payload_kind(encode_example({"x": 1}))
    'example'
    >>> payload_kind(encode_sequence_example({"id": 1}, {"tok": [[1, 2], [3]]}))
    'sequence_example'
    >>> payload_kind(b"\\x89PNG\\r\\n"), payload_kind(b"")
    ('other', 'example')
    """
    seen = _top_level_fields(data)
    if seen is None:
        return "other"
    if not check:
        return "sequence_example" if seen & 2 else "example"
    message = example_pb2.SequenceExample if seen & 2 else example_pb2.Example
    try:
        message.FromString(data)
    except (DecodeError, RuntimeError, ValueError):
        return "other"
    return "sequence_example" if seen & 2 else "example"


# --------------------------------------------------------------------------- encoding


def encode_sequence_example(
    context: Mapping[str, object] | None = None,
    feature_lists: Mapping[str, Sequence[object]] | None = None,
) -> bytes:
    """Serialize a ``tf.train.SequenceExample``.

    ``context`` takes what `featurepipe.example.encode_example` takes (name
    -> value); ``feature_lists`` maps a name to its steps, each step a value
    as in a context feature (a scalar, a list, a typed numpy array, a
    `Feature`; ``Feature(None, ...)`` is a step with no list set). A part that
    is ``None`` is left out of the message; an empty mapping is written as an
    empty message, as TensorFlow does when the field is set. The output equals
    ``tf.train.SequenceExample(...).SerializeToString(deterministic=True)``.

    Args:
        context: the context features. Defaults to `None` (no context).
        feature_lists: name -> list of steps. Defaults to `None` (none).

    Returns:
        The serialized SequenceExample.

    Raises:
        ConfigError: a value of an unsupported type, an empty untyped list,
            an int outside int64, a feature list that is not a list of steps.

    Examples:

    >>> data = encode_sequence_example({"id": 7}, {"tok": [[1, 2], [3]], "w": [0.5]})
    >>> seq = decode_sequence_example(data)
    >>> seq.context["id"].values.tolist()
    [7]
    >>> [step.values.tolist() for step in seq.feature_lists["tok"]]
    [[1, 2], [3]]
    """
    out = b""
    if context is not None:
        body = _features_body(context)
        out += b"\x0a" + _len_prefix(len(body)) + body
    if feature_lists is not None:
        entries = []
        for name in sorted(feature_lists, key=wire_order):
            steps = feature_lists[name]
            if isinstance(steps, (str, bytes, np.ndarray)) or not isinstance(steps, Sequence):
                raise ConfigError(
                    f"Feature list {name!r}: give a list of steps (one value per step), "
                    f"e.g. [[1, 2], [3]]. Received: {type(steps).__name__}"
                )
            fl = b"".join(
                b"\x0a" + _len_prefix(len(f)) + f
                for f in (_feature_body(name, step) for step in steps)
            )
            entries.append(_map_entry(name.encode("utf-8"), fl))
        body = b"".join(entries)
        out += b"\x12" + _len_prefix(len(body)) + body
    return out


# --------------------------------------------------------------------------- decoding


class SequenceExample(NamedTuple):
    """One decoded SequenceExample.

    Attributes:
        context: feature name -> `Feature`, sorted by name.
        feature_lists: feature list name -> its steps (one `Feature` each),
            sorted by name.
    """

    context: dict[str, Feature]
    feature_lists: dict[str, list[Feature]]


def _parse_sequence(
    data: bytes, path: str | None, record: int | None, offset: int | None
) -> Any:
    try:
        return example_pb2.SequenceExample.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ExampleDecodeError(
            f"the {len(data)}-byte payload is not a valid tf.SequenceExample ({_short(e)}); "
            "`featurepipe inspect schema` shows what the file's records are",
            path=path,
            record=record,
            offset=offset,
            reason="not_a_sequence_example",
        ) from None


def decode_sequence_example(
    data: bytes,
    *,
    path: str | None = None,
    record: int | None = None,
    offset: int | None = None,
) -> SequenceExample:
    """Parse one serialized ``tf.train.SequenceExample`` into context + feature lists.

    An Example is accepted too (it is a SequenceExample with a context and no
    feature lists, as for ``tf.io.parse_sequence_example``).

    Args:
        data: the serialized SequenceExample.
        path: file name for error messages. Defaults to `None`.
        record: record index for error messages. Defaults to `None`.
        offset: byte offset for error messages. Defaults to `None`.

    Returns:
        A `SequenceExample`.

    Raises:
        ExampleDecodeError: the bytes are not a SequenceExample (reason
            ``not_a_sequence_example``); the message never contains the payload.

    Examples:

    >>> seq = decode_sequence_example(encode_sequence_example({}, {"f": [1.5, [2.0, 3.0]]}))
    >>> seq.context, [s.values.tolist() for s in seq.feature_lists["f"]]
    ({}, [[1.5], [2.0, 3.0]])
    """
    msg = _parse_sequence(data, path, record, offset)
    context = {
        name: _to_feature(msg.context.feature[name]) for name in sorted(msg.context.feature)
    }
    lists = msg.feature_lists.feature_list
    feature_lists = {
        name: [_to_feature(f) for f in lists[name].feature] for name in sorted(lists)
    }
    return SequenceExample(context, feature_lists)


@dataclasses.dataclass(frozen=True)
class FeatureListColumn:
    """One feature list of a batch of SequenceExamples, as flat numpy arrays.

    Attributes:
        name: the feature list name.
        kind: ``"int64"``, ``"float"``, ``"bytes"``, or ``None`` when no step
            set a list.
        values: every value of every step of every sequence, in order.
        value_lengths: the number of values of each step (every step of every
            sequence, in order; 0 for a step with no list set).
        step_lengths: the number of steps of each sequence (0 where absent).
        present: True where the sequence has the feature list (maybe empty).
    """

    name: str
    kind: Kind | None
    values: np.ndarray[Any, Any]
    value_lengths: np.ndarray[Any, np.dtype[np.int64]]
    step_lengths: np.ndarray[Any, np.dtype[np.int64]]
    present: np.ndarray[Any, np.dtype[np.bool_]]

    @property
    def row_lengths(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        """The number of values of each sequence (all its steps together)."""
        per_seq = np.zeros(len(self.step_lengths), dtype=np.int64)
        if len(self.value_lengths):
            seq_of_step = np.repeat(np.arange(len(self.step_lengths)), self.step_lengths)
            np.add.at(per_seq, seq_of_step, self.value_lengths)
        return per_seq

    def sequence(self, i: int) -> list[np.ndarray[Any, Any]]:
        """The steps of sequence ``i``, one array of values each."""
        first_step = int(self.step_lengths[:i].sum())
        n = int(self.step_lengths[i])
        start = int(self.value_lengths[:first_step].sum())
        out = []
        for k in range(first_step, first_step + n):
            stop = start + int(self.value_lengths[k])
            out.append(self.values[start:stop])
            start = stop
        return out


@dataclasses.dataclass(frozen=True)
class SequenceBatch:
    """A batch of SequenceExamples: the context as columns, and the feature lists.

    Attributes:
        num_rows: the number of sequences.
        context: the context features as a `ColumnBatch` (as for Examples).
        feature_lists: name -> `FeatureListColumn`, sorted by name.
    """

    num_rows: int
    context: ColumnBatch
    feature_lists: dict[str, FeatureListColumn]


def _empty_values(kind: Kind | None) -> np.ndarray[Any, Any]:
    if kind == "int64":
        return np.empty(0, np.int64)
    if kind == "bytes":
        return np.empty(0, object)
    return np.empty(0, np.float32)


_RawLists = dict[str, tuple[int, Any, bytes, bytes, bytes]]
_RawListsResult = tuple[_RawLists | None, list[bytes] | None, int, str]


def _decode_feature_lists_py(records: Sequence[bytes]) -> _RawListsResult:
    """Reference decoder (protobuf); same output as ``_speedups.decode_feature_lists``.

    Returns ``(lists, contexts, err_record, err_reason)``. ``lists`` maps each
    feature list name to ``(kind_code, values, step_lengths, present,
    value_lengths)``: kind codes as for ``decode_columns`` (0 none, 1 bytes,
    2 float, 3 int64), ``values`` a list of bytes (kind 1) or little-endian
    float32 / int64 bytes, ``step_lengths`` the steps of each record and
    ``value_lengths`` the values of each step (little-endian int64 bytes),
    ``present`` one byte per record. ``contexts`` holds each record's context
    field as a serialized Example. On failure ``lists`` and ``contexts`` are
    None and ``err_reason`` is ``"not_a_sequence_example"`` or ``"mixed_kind"``.
    """
    n = len(records)
    parse = example_pb2.SequenceExample.FromString
    # name -> [kind code, values, value_lengths, step_lengths, present]
    acc: dict[str, list[Any]] = {}
    contexts: list[bytes] = []
    for i, data in enumerate(records):
        try:
            msg = parse(data)
        except (DecodeError, RuntimeError, ValueError):
            return None, None, i, "not_a_sequence_example"
        contexts.append(_context_part(data))
        for name, fl in msg.feature_lists.feature_list.items():
            a = acc.get(name)
            if a is None:
                a = acc[name] = [0, None, array("q"), array("q", bytes(8 * n)), bytearray(n)]
            a[4][i] = 1
            steps = fl.feature
            a[3][i] = len(steps)
            lengths = a[2]
            for f in steps:
                which = f.WhichOneof("kind")
                if which is None:
                    lengths.append(0)
                    continue
                code = _ONEOF_CODE[which]
                if a[0] == 0:
                    a[0] = code
                    a[1] = _new_values(code)
                elif a[0] != code:
                    return None, None, i, "mixed_kind"
                vals = getattr(f, which).value
                a[1].extend(vals)
                lengths.append(len(vals))
    out: _RawLists = {}
    for name, (code, vals, lengths, steps, present) in acc.items():
        raw = _raw_of(code, vals)
        out[name] = (code, raw, steps.tobytes(), bytes(present), lengths.tobytes())
    return out, contexts, -1, ""


# getattr: an extension built before this kernel existed still loads (then protobuf decodes)
_decode_feature_lists_native: Callable[[Sequence[bytes]], _RawListsResult] | None = getattr(
    speedups, "decode_feature_lists", None
)


def decode_sequence_examples(
    records: Sequence[bytes],
    *,
    path: str | None = None,
    first_index: int = 0,
    native: bool | None = None,
) -> SequenceBatch:
    """Decode a batch of serialized SequenceExamples into numpy columns.

    The feature lists are decoded by the compiled decoder when it is built
    (``featurepipe._speedups``), else from protobuf's parse (upb); the two
    give the same columns. The context goes through
    `featurepipe.example.decode_examples` (the context field alone is an
    Example).

    Args:
        records: serialized SequenceExamples (Examples count as sequences
            with no feature lists).
        path: file name for error messages. Defaults to `None`.
        first_index: record index of ``records[0]`` in its file, for errors.
            Defaults to `0`.
        native: use the compiled decoder (``True``), the protobuf path
            (``False``), or the compiled one when it is built (``None``).
            Defaults to `None`.

    Returns:
        A `SequenceBatch`.

    Raises:
        ExampleDecodeError: a record is not a SequenceExample
            (``not_a_sequence_example``), or a feature (list) has two kinds in
            the batch (``mixed_kind``).
        ConfigError: ``native=True`` without the compiled extension.

    Examples:

    >>> recs = [encode_sequence_example({"id": 1}, {"tok": [[1, 2], [3]]}),
    ...         encode_sequence_example({"id": 2}, {"tok": [[4]]})]
    >>> b = decode_sequence_examples(recs)
    >>> b.context["id"].values.tolist()
    [1, 2]
    >>> tok = b.feature_lists["tok"]
    >>> tok.values.tolist(), tok.value_lengths.tolist(), tok.step_lengths.tolist()
    ([1, 2, 3, 4], [2, 1, 1], [2, 1])
    """
    raw, contexts, err_record, err_reason = _run_decoder(
        records, native, _decode_feature_lists_native, _decode_feature_lists_py
    )
    if raw is None or contexts is None:
        if err_reason == "mixed_kind":
            raise ExampleDecodeError(
                "a feature list has a different kind here than in earlier steps or records "
                "of the batch",
                path=path,
                record=first_index + err_record,
                reason="mixed_kind",
            )
        _parse_sequence(records[err_record], path, first_index + err_record, None)
        raise ExampleDecodeError(  # pragma: no cover - protobuf accepted what the decoder did not
            "the payload is not a valid tf.SequenceExample",
            path=path,
            record=first_index + err_record,
            reason="not_a_sequence_example",
        )
    n = len(records)
    try:
        context = decode_examples(contexts, path=path, first_index=first_index, native=native)
    except ExampleDecodeError as e:
        if e.reason == "mixed_kind" or e.record is None:
            raise
        # The compiled decoder hands the context field over unchecked: damage inside it
        # shows here. Say it of the record as a SequenceExample.
        index = e.record - first_index
        _parse_sequence(records[index], path, e.record, None)
        raise ExampleDecodeError(  # pragma: no cover - protobuf accepted what the decoder did not
            e.detail, path=path, record=e.record, reason="not_a_sequence_example"
        ) from None
    lists: dict[str, FeatureListColumn] = {}
    for name in sorted(raw):
        code, vals, steps, present, lengths = raw[name]
        kind = _CODE_KIND[code]
        values = _raw_values(code, vals)
        lists[name] = FeatureListColumn(
            name=name,
            kind=kind,
            values=values,
            value_lengths=_le_int64(lengths),
            step_lengths=_le_int64(steps) if n else np.zeros(0, np.int64),
            present=np.frombuffer(present, dtype=np.bool_),
        )
    return SequenceBatch(n, context, lists)
