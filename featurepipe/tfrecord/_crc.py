"""CRC32C (Castagnoli) and TFRecord's masked CRC.

Uses the ``crc32c`` package, which picks a hardware instruction (SSE4.2 or
ARMv8) when the CPU has one. A pure-Python table implementation is the
fallback when the package is missing; it gives the same values, slowly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

__all__ = ["crc32c", "masked_crc32c"]

_MASK_DELTA = 0xA282EAD8


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c_py(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC32C in pure Python (the fallback; about 5 MB/s).

    >>> hex(crc32c_py(b"123456789"))
    '0xe3069283'
    """
    c = crc ^ 0xFFFFFFFF
    t = _TABLE
    for b in bytes(data):
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _load() -> Callable[[bytes | bytearray | memoryview], int]:
    try:
        import crc32c as _impl
    except ImportError:  # pragma: no cover - exercised by a subprocess test
        warnings.warn(
            "the crc32c package is missing: CRC checks use a slow pure-Python fallback. "
            "Install it with `pip install crc32c`.",
            RuntimeWarning,
            stacklevel=3,
        )
        return crc32c_py
    fn: Callable[[bytes | bytearray | memoryview], int] = _impl.crc32c
    return fn


crc32c = _load()


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """TFRecord's masked CRC32C of ``data``.

    ``((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2**32).

    >>> hex(masked_crc32c(b"foo"))
    '0xfebe8a61'
    """
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + _MASK_DELTA) & 0xFFFFFFFF
