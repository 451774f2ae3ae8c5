"""Type stubs for the optional C extension ``featurepipe._speedups``.

Built by setup.py from ``csrc/`` (plain-C kernels under a CPython binding
layer); Python code loads it only through :mod:`featurepipe._native`. The
pure-Python twins give the same results: ``featurepipe.tfrecord._framing.scan_records_py``
and ``frame_records_py``, ``featurepipe.example._codec._decode_columns_py``, the CSV path of
``featurepipe.convert`` and the TF-op / numpy column paths.

``tests/test_native_stub.py`` checks this file against the built module: the
names, each function's parameters (every C function has a
``__text_signature__``) and the tuple layouts below.
"""

from collections.abc import Sequence
from typing import Any, Literal, TypeAlias, overload

from typing_extensions import Buffer

# Tuple layouts (each checked against the C code by tests/test_native_stub.py).

#: A ``csv_convert`` plan item, in the Example's wire (map) order:
#: ``(column, kind, required, key, default_entry, missing, separator, want)``.
#: column: index in the row or -1 (not in the file: always missing); kind: 1 bytes,
#: 2 float, 3 int64; key: ``0x0A varint(len(name)) name 0x12``; default_entry: the
#: whole map entry of the default value or ``None``; missing: the missing-value
#: tokens; separator: splits a list column (``None``: a scalar column); want: values
#: per row of a list column, -1 any number. The short 6-item form (no separator,
#: no want) is a scalar column.
_CsvPlanItem: TypeAlias = (
    tuple[int, int, bool, bytes, bytes | None, tuple[bytes, ...]]
    | tuple[int, int, bool, bytes, bytes | None, tuple[bytes, ...], bytes | None, int]
)

#: ``csv_convert``'s deferred rows and ``csv_infer``'s: ``(start, end, line)``.
_CsvSpan: TypeAlias = tuple[int, int, int]

#: ``csv_infer``'s counts per column: ``(present, ints, floats, others)``.
_CsvCounts: TypeAlias = tuple[int, int, int, int]

#: ``csv_infer``'s cells only Python can classify: ``(column, text)``.
_CsvUnsure: TypeAlias = tuple[int, bytes]

#: A ``decode_columns`` column: ``(kind, values, row_lengths, present, kindless)``.
_DecodedColumn: TypeAlias = tuple[int, list[bytes] | bytes, bytes, bytes, bytes]

#: A ``decode_feature_lists`` list: ``(kind, values, step_lengths, present, value_lengths)``.
_DecodedFeatureList: TypeAlias = tuple[int, list[bytes] | bytes, bytes, bytes, bytes]

#: A ``columns_compile`` feature: ``(name, kind, fixed, default)``; fixed: values per
#: row or -1; default: ``None`` or ``fixed`` values.
_ColumnsFeature: TypeAlias = tuple[bytes, int, int, Sequence[Any] | None]

#: A ``columns_compile`` op: ``(op, fidx, drop, size, norm, na, nb, bounds, num_bins,
#: vocab, num_oov, default, hash_key, leaves)``; op: 1 numeric, 2 bucket, 3 hash,
#: 4 vocabulary, 5 identity, 6 cross (leaves: ops), 7 raw values.
_ColumnsOp: TypeAlias = tuple[
    int,
    int,
    bool,
    int,
    int,
    float,
    float,
    Sequence[float],
    int,
    int,
    int,
    int | None,
    int,
    Sequence[Any],
]

#: A ``columns_compile`` vocabulary: ``(is_str, entries)``.
_ColumnsVocabulary: TypeAlias = tuple[bool, Sequence[bytes] | Sequence[int]]

#: A ``ColumnsRunner`` frames unit: ``(buffer, starts, first, count)``.
_RunnerFrames: TypeAlias = tuple[Buffer, Buffer, int, int]

#: A ``ColumnsRunner`` gather unit: ``(source, starts, indices, positions)``.
_RunnerGather: TypeAlias = tuple[Buffer | Sequence[bytes], Buffer | None, Buffer, Buffer]

#: ``"sse4.2"`` or ``"armv8-crc"`` when CRC-32C runs on CPU instructions, else ``"software"``.
crc_backend: str

def crc32c(data: Buffer, crc: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data``, continuing from ``crc``."""

def masked_crc32c(data: Buffer, /) -> int:
    """TFRecord's masked CRC-32C: ``((crc >> 15) | (crc << 17)) + 0xa282ead8``."""

def frame_records(records: Sequence[bytes], /) -> bytes:
    """TFRecord frames (length, masked length CRC, data, masked data CRC) of every record."""

def _crc32c_software(data: Buffer, crc: int = 0, /) -> int:
    """CRC-32C by table look-up only (for tests)."""

@overload
def scan_records(
    buf: Buffer,
    pos: int,
    verify_crc: bool,
    max_record_bytes: int,
    keep: Literal[True] = ...,
    /,
) -> tuple[list[bytes], int, int]: ...
@overload
def scan_records(
    buf: Buffer, pos: int, verify_crc: bool, max_record_bytes: int, keep: Literal[False], /
) -> tuple[int, int, int]:
    """Parse whole TFRecord frames from ``buf[pos:]``.

    Returns ``(records, next_pos, status)``; status 0: fewer bytes than a
    whole frame (or the end), 1: length CRC mismatch, 2: data CRC mismatch
    (only when ``verify_crc``), 3: length over ``max_record_bytes``.
    ``next_pos`` is the offset of the frame it stopped at. With
    ``keep=False`` the frames are verified and only counted: the first item
    is the number of whole, verified frames.
    """

def scan_frames(buf: Buffer, pos: int, max_record_bytes: int, /) -> tuple[bytes, int, int]:
    """``scan_records(buf, pos, True, max_record_bytes, False)``, and where the frames start.

    Returns ``(starts, next_pos, status)``: ``starts`` holds native int64 offsets,
    one per whole verified frame plus the offset after the last; ``next_pos`` and
    ``status`` as for :func:`scan_records`. Runs without the GIL.
    """

def decode_columns(
    records: Sequence[Buffer], /
) -> tuple[dict[str, _DecodedColumn] | None, int, str]:
    """Decode serialized tf.Examples into per-feature columns.

    Each column is ``(kind, values, row_lengths, present, kindless)``: kind 0
    (no list set anywhere), 1 bytes, 2 float, 3 int64; values a list of bytes
    (kind 1) or little-endian float32 / int64 bytes (kinds 2 / 3; ``b""`` for kind 0);
    row_lengths little-endian int64 per record; present and kindless one byte
    (0/1) per record. On a record it will not decode returns
    ``(None, index, reason)`` with reason ``"slow_path"`` (decode it with
    protobuf), ``"not_an_example"`` (protobuf rejects it too) or
    ``"mixed_kind"``; otherwise ``(columns, -1, "")``.
    """

def decode_feature_lists(
    records: Sequence[Buffer], /
) -> tuple[dict[str, _DecodedFeatureList] | None, list[bytes] | None, int, str]:
    """Decode the feature lists of serialized tf.SequenceExamples.

    Each list is ``(kind, values, step_lengths, present, value_lengths)``: kind
    and values as for :func:`decode_columns`; step_lengths the steps of each
    record and value_lengths the values of each step (little-endian int64);
    present one byte (0/1) per record. The second item holds each record's
    context field (tag included: a serialized Example; ``b""`` when absent).
    On a record it will not decode returns ``(None, None, index, reason)`` with
    reason ``"slow_path"``, ``"not_a_sequence_example"`` or ``"mixed_kind"``;
    otherwise ``(lists, contexts, -1, "")``. Twin:
    ``featurepipe.example._sequence._decode_feature_lists_py``.
    """

# CSV -> tf.Example (featurepipe.convert._csv; the pure-Python twin is
# featurepipe.convert.iter_csv_batches + featurepipe.convert.convert_batch).

def csv_cut(
    buf: Buffer,
    start: int,
    delimiter: str,
    quotechar: str,
    max_records: int,
    field_limit: int,
    at_eof: bool,
    /,
) -> tuple[int, int, int]:
    """Walk whole CSV records from ``buf[start:]``: ``(end, records, lines)``."""

def csv_convert(
    buf: Buffer,
    delimiter: str,
    quotechar: str,
    field_limit: int,
    width: int,
    plan: Sequence[_CsvPlanItem],
    first_line: int,
    /,
) -> tuple[list[bytes], list[int], list[_CsvSpan]]:
    """Convert whole CSV records to serialized tf.Examples: ``(records, positions, deferred)``.

    ``positions`` holds each record's line number; ``deferred`` the
    ``(start, end, line)`` of the rows left to the pure-Python path.
    """

def csv_infer(
    buf: Buffer,
    delimiter: str,
    quotechar: str,
    field_limit: int,
    width: int,
    missing: tuple[bytes, ...],
    settled: Buffer,
    first_line: int,
    /,
) -> tuple[int, list[_CsvCounts], list[_CsvUnsure], list[_CsvSpan]]:
    """Schema-inference counts of whole CSV records: ``(rows, counts, unsure, deferred)``."""

# Feature-column ids (featurepipe.keras._compiled; the TF-op path in
# featurepipe.keras._preprocessing is its twin, featurepipe.columns._hashing the numpy one).

def fingerprint64(data: Buffer, /) -> int:
    """FarmHash Fingerprint64 of ``data`` (TensorFlow's ``Fingerprint64``)."""

def columns_compile(
    features: Sequence[_ColumnsFeature],
    ops: Sequence[_ColumnsOp],
    vocabularies: Sequence[_ColumnsVocabulary],
    /,
) -> Any:
    """A compiled column plan (an opaque capsule; see featurepipe.keras._compiled)."""

class ColumnsRunner:
    """``columns_run`` on worker threads of its own, ahead of the caller, results in order.

    A unit is ``(buffer, starts, first, count)`` (frames ``first .. first + count - 1``
    of a buffer of verified TFRecord frames, ``starts`` as :func:`scan_frames` gives
    it), a list of serialized records, or a gather unit ``(source, starts, indices,
    positions)`` (a batch of gather units only). Buffers come back as read-only
    objects that own their memory.
    """

    @property
    def pending(self) -> int:
        """Batches submitted and not yet taken."""
    @property
    def workers(self) -> int:
        """Worker threads running now."""
    def __init__(self, plan: Any, threads: int = 1) -> None: ...
    def submit(self, units: Sequence[_RunnerFrames | _RunnerGather | list[bytes]], /) -> None:
        """Queue one batch."""
    def take(self, /) -> tuple[tuple[Buffer, ...], tuple[int, ...]] | None:
        """The oldest batch's buffers and widths (waiting for them), or ``None``."""
    def close(self, /) -> None:
        """Stop the workers and drop the batches not taken."""

def columns_run(
    plan: Any, records: Sequence[bytes], /
) -> tuple[tuple[bytes, ...], tuple[int, ...]] | None:
    """One little-endian buffer and row width per op, or ``None`` when TF's ops must decide."""
