"""Finding the next TFRecord frame header after damage (the skip path).

A header is 8 length bytes followed by their masked CRC32C. After a damaged
frame, every byte offset is a candidate; checking them one by one in Python
would take minutes per megabyte, so the CRC of the 8 bytes at every offset of
a window is computed at once with numpy (eight table look-ups per offset).
Only the error path imports this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from featurepipe._crc import _TABLE

__all__ = ["find_next_frame"]

_TABLE_NP = np.asarray(_TABLE, dtype=np.uint32)
_MASK_DELTA = np.uint32(0xA282EAD8)
_BLOCK = 64 * 1024  # candidate offsets checked per numpy pass


def find_next_frame(
    buf: bytes | bytearray | memoryview, start: int, max_record_bytes: int
) -> list[int]:
    """Offsets ``>= start`` in ``buf`` where a frame header verifies.

    A header verifies when the masked CRC32C of its 8 length bytes equals the
    next 4 bytes and the length is at most ``max_record_bytes``. Only offsets
    with all 12 header bytes inside ``buf`` are checked. The caller still has
    to check the data CRC: 1 in 2**32 random offsets passes this test.

    >>> import struct
    >>> from featurepipe._crc import masked_crc32c
    >>> hdr = struct.pack("<Q", 3) + struct.pack("<I", masked_crc32c(struct.pack("<Q", 3)))
    >>> find_next_frame(b"junk" + hdr + b"abc", 0, 100)
    [4]
    """
    a = np.frombuffer(buf, dtype=np.uint8)
    out: list[int] = []
    # A block of offsets at a time: the temporaries below take about 40 bytes
    # per offset, so a whole multi-megabyte window at once would cost hundreds
    # of megabytes on a hostile file.
    stop = a.size - 12 + 1  # one past the last offset with a whole header
    for block in range(start, stop, _BLOCK):
        out.extend(_find_in_block(a, block, min(_BLOCK, stop - block), max_record_bytes))
    return out


def _find_in_block(
    a: np.ndarray[Any, np.dtype[np.uint8]], start: int, n: int, max_record_bytes: int
) -> list[int]:
    """`find_next_frame` for the ``n`` offsets from ``start`` on."""
    crc = np.full(n, 0xFFFFFFFF, dtype=np.uint32)
    for k in range(8):
        b = a[start + k : start + k + n].astype(np.uint32)
        crc = _TABLE_NP[(crc ^ b) & 0xFF] ^ (crc >> np.uint32(8))
    crc ^= np.uint32(0xFFFFFFFF)
    masked = ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + _MASK_DELTA
    stored = np.zeros(n, dtype=np.uint32)
    for k in range(4):
        stored |= a[start + 8 + k : start + 8 + k + n].astype(np.uint32) << np.uint32(8 * k)
    hits = np.flatnonzero(masked == stored)
    out = []
    for h in hits.tolist():
        pos = start + h
        length = int.from_bytes(bytes(a[pos : pos + 8]), "little")
        if length <= max_record_bytes:
            out.append(pos)
    return out
