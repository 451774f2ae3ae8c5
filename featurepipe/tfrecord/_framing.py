"""TFRecord framing: the frame layout, frame scanning and the one framing function.

A TFRecord file is a plain concatenation of frames, with no magic number, no
record count and no end marker::

    uint64  length                      little-endian
    uint32  masked_crc32c(length)       of the 8 length bytes
    byte    data[length]
    uint32  masked_crc32c(data)

``masked_crc32c(x) = ((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2**32),
with CRC32C the Castagnoli polynomial (TensorFlow's
``tensorflow/core/lib/io/record_writer.cc`` and ``core/lib/hash/crc32c.h``).
Files may be GZIP or ZLIB compressed as a whole stream; the framing above then
applies to the decompressed bytes.

Each operation here has a compiled twin in ``featurepipe._speedups`` (taken
when built, see `featurepipe._native`) and a pure-Python one that gives the
same results: `scan_records` / `scan_records_py`, `count_scan` and
`frame_records` / `frame_records_py`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from featurepipe._native import speedups
from featurepipe.tfrecord import _crc

__all__ = [
    "DATA_CRC",
    "FOOTER",
    "FOOTER_BYTES",
    "FRAME_OVERHEAD",
    "HEADER",
    "HEADER_BYTES",
    "LENGTH_CRC",
    "NEED_MORE",
    "TOO_LARGE",
    "U64",
    "Scan",
    "count_scan",
    "frame_records",
    "frame_records_py",
    "header_verifies",
    "masked_crc32c",
    "scan_records",
    "scan_records_py",
]

# 12 = 8 (length) + 4 (masked crc of length); 4 more follow the data.
HEADER_BYTES = 12
FOOTER_BYTES = 4
FRAME_OVERHEAD = HEADER_BYTES + FOOTER_BYTES
HEADER = struct.Struct("<QI")
FOOTER = struct.Struct("<I")
U64 = struct.Struct("<Q")

# scan status codes (shared with the C kernel in csrc/kernels/tfrecord.c)
NEED_MORE = 0
LENGTH_CRC = 1
DATA_CRC = 2
TOO_LARGE = 3

masked_crc32c = _crc.masked_crc32c

Scan = Callable[[bytes | bytearray | memoryview, int, bool, int], tuple[Any, int, int]]


def header_verifies(head: bytes | bytearray | memoryview) -> bool:
    """True when ``head`` starts with a frame header whose length CRC verifies."""
    if len(head) < HEADER_BYTES:
        return False
    _, crc = HEADER.unpack_from(head, 0)
    return bool(masked_crc32c(bytes(head[:8])) == crc)


def scan_records_py(
    buf: bytes | bytearray | memoryview, pos: int, verify_crc: bool, max_record_bytes: int
) -> tuple[list[bytes], int, int]:
    """Parse whole frames from ``buf[pos:]``; the reference for the C version.

    Returns ``(records, next_pos, status)``; ``status`` says why it stopped at
    ``next_pos``: ``NEED_MORE`` (fewer bytes than a whole frame; the length
    CRC, when readable, has verified and the length is within bounds),
    ``LENGTH_CRC``, ``DATA_CRC`` or ``TOO_LARGE``.

    >>> scan_records_py(frame_records_py([b"ab"]) + b"x", 0, True, 100)
    ([b'ab'], 18, 0)
    """
    out: list[bytes] = []
    mv = memoryview(buf)
    n = len(mv)
    crc = _crc.masked_crc32c
    unpack_header = HEADER.unpack_from
    unpack_footer = FOOTER.unpack_from
    while True:
        if n - pos < HEADER_BYTES:
            return out, pos, NEED_MORE
        length, length_crc = unpack_header(mv, pos)
        if crc(mv[pos : pos + 8]) != length_crc:
            return out, pos, LENGTH_CRC
        if length > max_record_bytes:
            return out, pos, TOO_LARGE
        end = pos + HEADER_BYTES + length
        if end + FOOTER_BYTES > n:
            return out, pos, NEED_MORE
        data = bytes(mv[pos + HEADER_BYTES : end])
        if verify_crc and crc(data) != unpack_footer(mv, end)[0]:
            return out, pos, DATA_CRC
        out.append(data)
        pos = end + FOOTER_BYTES


#: The frame scanner the reader uses: compiled when built, else `scan_records_py`.
#: (The reader looks it up here at each read, so a benchmark may swap it.)
scan_records: Callable[
    [bytes | bytearray | memoryview, int, bool, int], tuple[list[bytes], int, int]
] = scan_records_py if speedups is None else speedups.scan_records


def _count_scan_py(
    buf: bytes | bytearray | memoryview, pos: int, verify_crc: bool, max_record_bytes: int
) -> tuple[int, int, int]:
    """Like `scan_records_py`, but return the number of whole verified frames."""
    recs, pos, status = scan_records_py(buf, pos, verify_crc, max_record_bytes)
    return len(recs), pos, status


def _load_count() -> Scan:
    """The compiled scanner in count-only mode (no record copies), when built."""
    if speedups is None:
        return _count_scan_py
    fn = speedups.scan_records

    def count(
        buf: bytes | bytearray | memoryview, pos: int, verify_crc: bool, max_record_bytes: int
    ) -> tuple[int, int, int]:
        counted: tuple[int, int, int] = fn(buf, pos, verify_crc, max_record_bytes, False)
        return counted

    return count


#: Like `scan_records`, but returns the number of verified frames, not their payloads.
count_scan: Scan = _load_count()


def frame_records_py(records: Sequence[bytes | bytearray | memoryview]) -> bytes:
    """TFRecord frames of every record, in pure Python (the twin of the compiled one).

    >>> frame_records_py([b"foo"]).hex()
    '0300000000000000b099490e666f6f618abefe'
    """
    crc = masked_crc32c
    pack_len = U64.pack
    pack_crc = FOOTER.pack
    parts: list[bytes | bytearray | memoryview] = []
    add = parts.extend
    for r in records:
        head = pack_len(len(r))
        add((head, pack_crc(crc(head)), r, pack_crc(crc(r))))
    return b"".join(parts)


def frame_records(records: Sequence[bytes | bytearray | memoryview]) -> bytes:
    """TFRecord frames (length, masked length CRC, data, masked data CRC) of every record.

    The one framing function: the writer, Beam's output pieces and the tests
    all use it. Compiled when built, `frame_records_py` otherwise.

    Examples:

    >>> frame_records([b"foo"]) == frame_records_py([b"foo"])
    True
    >>> len(frame_records([b"a", b""]))  # 16 bytes of framing per record
    33
    """
    if speedups is None:
        return frame_records_py(records)
    if not isinstance(records, list) or not all(type(r) is bytes for r in records):
        records = [r if type(r) is bytes else bytes(r) for r in records]
    framed: bytes = speedups.frame_records(records)
    return framed
