"""Type stubs for the optional C extension ``featurepipe._speedups``.

The pure-Python twins are ``featurepipe.tfrecord._framing.scan_records_py`` and
``frame_records_py``, and ``featurepipe.example._codec._decode_columns_py``; they give
the same results.
"""

from collections.abc import Sequence
from typing import Any, Literal, overload

from typing_extensions import Buffer

#: ``"sse4.2"`` or ``"armv8-crc"`` when CRC-32C runs on CPU instructions, else ``"software"``.
crc_backend: str

def crc32c(data: Buffer, crc: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data``, continuing from ``crc``."""

def masked_crc32c(data: Buffer) -> int:
    """TFRecord's masked CRC-32C: ``((crc >> 15) | (crc << 17)) + 0xa282ead8``."""

def frame_records(records: Sequence[bytes]) -> bytes:
    """TFRecord frames (length, masked length CRC, data, masked data CRC) of every record."""

def _crc32c_software(data: Buffer, crc: int = 0) -> int:
    """CRC-32C by table look-up only (for tests)."""

@overload
def scan_records(
    buf: Buffer, pos: int, verify_crc: bool, max_record_bytes: int
) -> tuple[list[bytes], int, int]: ...
@overload
def scan_records(
    buf: Buffer, pos: int, verify_crc: bool, max_record_bytes: int, keep: Literal[True]
) -> tuple[list[bytes], int, int]: ...
@overload
def scan_records(
    buf: Buffer, pos: int, verify_crc: bool, max_record_bytes: int, keep: Literal[False]
) -> tuple[int, int, int]:
    """Parse whole TFRecord frames from ``buf[pos:]``.

    Returns ``(records, next_pos, status)``; status 0: fewer bytes than a
    whole frame (or the end), 1: length CRC mismatch, 2: data CRC mismatch
    (only when ``verify_crc``), 3: length over ``max_record_bytes``.
    ``next_pos`` is the offset of the frame it stopped at. With
    ``keep=False`` the frames are verified and only counted: the first item
    is the number of whole, verified frames.
    """

def scan_frames(buf: Buffer, pos: int, max_record_bytes: int) -> tuple[bytes, int, int]:
    """``scan_records(buf, pos, True, max_record_bytes, False)``, and where the frames start.

    Returns ``(starts, next_pos, status)``: ``starts`` holds native int64 offsets,
    one per whole verified frame plus the offset after the last; ``next_pos`` and
    ``status`` as for :func:`scan_records`. Runs without the GIL.
    """

def decode_columns(
    records: Sequence[Buffer],
) -> tuple[dict[str, tuple[int, list[bytes] | bytes, bytes, bytes, bytes]] | None, int, str]:
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

# _speedups_csv.c: CSV -> tf.Example (featurepipe.convert._csv; the pure-Python
# twin is featurepipe.convert.iter_csv_batches + featurepipe.convert.convert_batch).

def csv_cut(
    buf: Buffer,
    start: int,
    delimiter: str,
    quotechar: str,
    max_records: int,
    field_limit: int,
    at_eof: bool,
) -> tuple[int, int, int]:
    """Walk whole CSV records from ``buf[start:]``: ``(end, records, lines)``."""

def csv_convert(
    buf: Buffer,
    delimiter: str,
    quotechar: str,
    field_limit: int,
    width: int,
    plan: Sequence[tuple[int, int, bool, bytes, bytes | None, tuple[bytes, ...]]],
    first_line: int,
) -> tuple[list[bytes], list[int], list[tuple[int, int, int]]]:
    """Convert whole CSV records to serialized tf.Examples: ``(records, positions, deferred)``."""

def csv_infer(
    buf: Buffer,
    delimiter: str,
    quotechar: str,
    field_limit: int,
    width: int,
    missing: tuple[bytes, ...],
    settled: Buffer,
    first_line: int,
) -> tuple[
    int, list[tuple[int, int, int, int]], list[tuple[int, bytes]], list[tuple[int, int, int]]
]:
    """Schema-inference counts of whole CSV records: ``(rows, counts, unsure, deferred)``."""

# _speedups_columns.c: feature-column ids (featurepipe.keras._compiled; the TF-op path in
# featurepipe.keras._preprocessing is its twin, featurepipe.columns._hashing the numpy one).

def fingerprint64(data: Buffer) -> int:
    """FarmHash Fingerprint64 of ``data`` (TensorFlow's ``Fingerprint64``)."""

def columns_compile(
    features: Sequence[Any], ops: Sequence[Any], vocabularies: Sequence[Any]
) -> Any:
    """A compiled column plan (see featurepipe.keras._compiled)."""

class ColumnsRunner:
    """``columns_run`` on worker threads of its own, ahead of the caller, results in order.

    A unit is ``(buffer, starts, first, count)`` (frames ``first .. first + count - 1``
    of a buffer of verified TFRecord frames, ``starts`` as :func:`scan_frames` gives
    it) or a list of serialized records. Buffers come back as read-only objects
    that own their memory.
    """

    pending: int
    workers: int
    def __init__(self, plan: Any, threads: int = 1) -> None: ...
    def submit(self, units: Sequence[tuple[Buffer, Buffer, int, int] | list[bytes]]) -> None:
        """Queue one batch."""
    def take(self) -> tuple[tuple[Buffer, ...], tuple[int, ...]] | None:
        """The oldest batch's buffers and widths (waiting for them), or ``None``."""
    def close(self) -> None:
        """Stop the workers and drop the batches not taken."""

def columns_run(plan: Any, records: Sequence[Buffer]) -> tuple[list[bytes], list[int]] | None:
    """One little-endian buffer and row width per op, or ``None`` when TF's ops must decide."""
