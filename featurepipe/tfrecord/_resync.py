"""Finding the next TFRecord frame header after damage (the skip path).

A header is 8 length bytes followed by their masked CRC32C. After a damaged
frame, every byte offset is a candidate; checking them one by one in Python
would take minutes per megabyte, so the CRC of the 8 bytes at every offset of
a window is computed at once with numpy (eight table look-ups per offset).
Only the error path imports this module.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from featurepipe.tfrecord._crc import _TABLE, masked_crc32c

__all__ = ["find_next_frame"]

_TABLE_NP = np.asarray(_TABLE, dtype=np.uint32)
_MASK_DELTA = np.uint32(0xA282EAD8)
_BLOCK = 64 * 1024  # candidate offsets checked per numpy pass
# The CRC field of a frame of length 0, byte by byte.
_ZERO_LEN_CRC = struct.pack("<I", masked_crc32c(bytes(8)))


def find_next_frame(
    buf: bytes | bytearray | memoryview, start: int, max_record_bytes: int
) -> list[int]:
    """Offsets ``>= start`` in ``buf`` where a frame header verifies.

    A header verifies when the masked CRC32C of its 8 length bytes equals the
    next 4 bytes and the length is at most ``max_record_bytes``. Only offsets
    with all 12 header bytes inside ``buf`` are checked. The caller still has
    to check the data CRC: 1 in 2**32 random offsets passes this test.

    >>> import struct
    >>> from featurepipe.tfrecord._crc import masked_crc32c
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
    # Cheap filter first: a length of at most max_record_bytes has its high
    # bytes zero (the top four for the 256 MiB default), which rules out
    # nearly every offset of random data before any CRC is computed.
    # Zero runs (padding, a zero-filled bomb) pass that filter; a zero length
    # verifies only with one known CRC, so they are ruled out the same way.
    sig = max(1, (max_record_bytes.bit_length() + 7) // 8)
    if sig < 8:
        ok = a[start + sig : start + sig + n] == 0
        for k in range(sig + 1, 8):
            ok &= a[start + k : start + k + n] == 0
        zero_len = a[start : start + n] == 0
        for k in range(1, sig):
            zero_len &= a[start + k : start + k + n] == 0
        zero_crc = a[start + 8 : start + 8 + n] == _ZERO_LEN_CRC[0]
        for k in range(1, 4):
            zero_crc &= a[start + 8 + k : start + 8 + k + n] == _ZERO_LEN_CRC[k]
        ok &= ~zero_len | zero_crc
        cand = np.flatnonzero(ok) + start
    if sig >= 8 or cand.size > n // 8:  # dense (e.g. zero-filled): every offset
        cand = np.arange(start, start + n)

        def column(k: int) -> np.ndarray[Any, np.dtype[np.uint32]]:
            return a[start + k : start + k + n].astype(np.uint32)
    else:

        def column(k: int) -> np.ndarray[Any, np.dtype[np.uint32]]:
            return a[cand + k].astype(np.uint32)

    if cand.size == 0:
        return []
    crc = np.full(cand.size, 0xFFFFFFFF, dtype=np.uint32)
    for k in range(8):
        crc = _TABLE_NP[(crc ^ column(k)) & 0xFF] ^ (crc >> np.uint32(8))
    crc ^= np.uint32(0xFFFFFFFF)
    masked = ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + _MASK_DELTA
    stored = np.zeros(cand.size, dtype=np.uint32)
    for k in range(4):
        stored |= column(8 + k) << np.uint32(8 * k)
    hits = cand[masked == stored]
    out = []
    for pos in hits.tolist():
        length = int.from_bytes(bytes(a[pos : pos + 8]), "little")
        if length <= max_record_bytes:
            out.append(pos)
    return out
