"""Bounded, strict GZIP and ZLIB decompression for TFRecord streams.

TensorFlow reads a whole-file GZIP or ZLIB stream and frames records inside
the decompressed bytes. Its reader stops quietly on several kinds of damage
(``shared/reference/bad-inputs.md`` rows 11-16): a gzip stream cut before its
trailer, a ZLIB stream followed by more data. `DecompressingReader` treats
every one of them as damage and raises `StreamError`; it never returns more
than the caller asked for, so a small stream that inflates to gigabytes
cannot exhaust memory (the TFRecord reader asks for one record at a time,
bounded by ``max_record_bytes``).

Multi-member gzip files (``cat a.gz b.gz``) are valid and read whole, as
TensorFlow and ``gzip`` do.
"""

from __future__ import annotations

import os
import zlib
from typing import IO, Literal

from featurepipe.errors import ConfigError
from featurepipe.tfrecord._framing import HEADER_BYTES, header_verifies

__all__ = [
    "COMPRESSIONS",
    "Compression",
    "DecompressingReader",
    "StreamError",
    "check_compression",
    "detect_compression",
    "inflate_from",
    "sniff_compression",
]

#: A TFRecord file's compression: the whole stream, or none.
Compression = Literal["none", "gzip", "zlib"]

#: Every value of `Compression`, in the order messages and CLI choices list them.
COMPRESSIONS: tuple[Compression, ...] = ("none", "gzip", "zlib")

# Compressed bytes read from the file per call.
_READ_BYTES = 256 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


class StreamError(Exception):
    """The compressed stream is damaged.

    Attributes:
        detail: what is wrong, with the compressed offset.
        partial: bytes that decompressed cleanly in the failing call.
        compressed_offset: about where in the compressed file it broke.
    """

    def __init__(self, detail: str, partial: bytes, compressed_offset: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.partial = partial
        self.compressed_offset = compressed_offset


class DecompressingReader:
    """A read-only stream of the decompressed bytes of a GZIP or ZLIB file.

    Args:
        f: the compressed file, opened in binary mode.
        compression: ``"gzip"`` or ``"zlib"``.

    Examples:

    >>> import gzip, io
    >>> r = DecompressingReader(io.BytesIO(gzip.compress(b"hello")), "gzip")
    >>> r.read(3), r.read(10), r.read(10)
    (b'hel', b'lo', b'')
    """

    def __init__(self, f: IO[bytes], compression: Literal["gzip", "zlib"] | str) -> None:
        if compression not in ("gzip", "zlib"):
            raise ValueError(f"compression must be 'gzip' or 'zlib'. Received: {compression!r}")
        self._f = f
        self._gzip = compression == "gzip"
        self._wbits = 31 if self._gzip else 15
        self._d = zlib.decompressobj(self._wbits)
        self._pending = b""  # compressed input not yet given to the decompressor
        self._fed = 0  # compressed bytes given to decompressors so far
        self._file_eof = False
        self._members = 0
        self._started = False  # any compressed byte seen at all
        self._done = False

    @property
    def compressed_offset(self) -> int:
        """About how far into the compressed file decompression has got."""
        return self._fed - len(self._d.unconsumed_tail)

    def read(self, n: int) -> bytes:
        """Up to ``n`` decompressed bytes; ``b""`` only at the clean end of the stream."""
        if n <= 0 or self._done:
            return b""
        out: list[bytes] = []
        got = 0
        while got < n:
            try:
                chunk = self._step(n - got)
            except StreamError as e:
                raise StreamError(e.detail, b"".join(out) + e.partial, e.compressed_offset) from e
            except zlib.error as e:
                name = "gzip" if self._gzip else "ZLIB"
                raise StreamError(
                    f"the {name} stream is corrupt near compressed byte {self.compressed_offset}: "
                    f"{e}",
                    b"".join(out),
                    self.compressed_offset,
                ) from e
            if chunk is None:
                break
            out.append(chunk)
            got += len(chunk)
        return b"".join(out)

    def _step(self, n: int) -> bytes | None:
        """Decompress up to ``n`` bytes; ``None`` at the clean end."""
        d = self._d
        if d.eof:
            return self._next_member()
        if d.unconsumed_tail:
            return self._inflate(d.unconsumed_tail, n)
        if not self._pending:
            self._pending = self._f.read(_READ_BYTES)
            if not self._pending:
                self._file_eof = True
                if not self._started:
                    self._done = True  # an empty file: no stream, no records
                    return None
                name = "gzip" if self._gzip else "ZLIB"
                marker = "its trailer (CRC32 and size)" if self._gzip else "its end marker"
                raise StreamError(
                    f"the {name} stream ended before {marker} at compressed byte "
                    f"{self.compressed_offset}: the file was cut",
                    b"",
                    self.compressed_offset,
                )
        self._started = True
        data, self._pending = self._pending, b""
        self._fed += len(data)
        return self._inflate(data, n)

    def _inflate(self, data: bytes, n: int) -> bytes:
        """``decompress(data, n)``; on damage, keep the bytes inflated before it.

        zlib raises without returning what it inflated in the failing call, so
        a bad trailer (CRC32, ISIZE, Adler-32) or a bad block would lose every
        record decompressed from the same input chunk. Records before the
        damage are intact (their own CRCs say so), so the reader should yield
        them before the error: a binary search over copies of the
        decompressor finds the longest input prefix that inflates cleanly.
        """
        saved = self._d.copy()
        try:
            return self._d.decompress(data, n)
        except zlib.error as e:
            lo, hi = 0, len(data)  # prefix lo inflates cleanly, prefix hi does not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                try:
                    saved.copy().decompress(data[:mid], n)
                    lo = mid
                except zlib.error:
                    hi = mid
            partial = saved.decompress(data[:lo], n) if lo else b""
            name = "gzip" if self._gzip else "ZLIB"
            raise StreamError(
                f"the {name} stream is corrupt near compressed byte {self.compressed_offset}: {e}",
                partial,
                self.compressed_offset,
            ) from e

    def _next_member(self) -> bytes | None:
        rest = self._d.unused_data + self._pending
        self._pending = b""
        if not rest:
            rest = self._f.read(_READ_BYTES)
        if not rest:
            self._done = True
            return None
        offset = self._fed - len(self._d.unused_data)
        if self._gzip and rest.startswith(_GZIP_MAGIC[: len(rest)]):
            # another gzip member (multi-member files are valid gzip)
            self._members += 1
            self._d = zlib.decompressobj(self._wbits)
            self._fed = offset
            self._pending = rest
            return b""
        name = "gzip" if self._gzip else "ZLIB"
        hint = (
            ""
            if self._gzip
            else " (TensorFlow silently ignores data after the first ZLIB stream; featurepipe"
            " refuses to drop it)"
        )
        raise StreamError(
            f"unexpected bytes after the end of the {name} stream at compressed byte {offset}"
            + hint,
            b"",
            offset,
        )


def inflate_from(f: IO[bytes], compressed_offset: int) -> DecompressingReader:
    """A reader of raw DEFLATE data starting at a full-flush point.

    featurepipe's writer makes a full flush (byte-aligned, history reset)
    every megabyte of uncompressed data and records those points in the index,
    so decompression can start there. The stream's trailer is not checked on
    this path; the records' own CRCs still are.
    """
    f.seek(compressed_offset)
    r = DecompressingReader(f, "zlib")
    r._d = zlib.decompressobj(-15)
    r._started = True
    r._gzip = False
    return r


def check_compression(compression: str, *, auto: bool = False) -> None:
    """Raise `ConfigError` unless ``compression`` is one of `COMPRESSIONS` (or ``"auto"``).

    >>> check_compression("gzip")
    >>> check_compression("auto", auto=True)
    """
    allowed = ("auto", *COMPRESSIONS) if auto else COMPRESSIONS
    if compression not in allowed:
        raise ConfigError(
            f"Unknown value for `compression`. Allowed values are: {allowed}. "
            f"Received: compression={compression!r}"
        )


def detect_compression(source: str | os.PathLike[str] | bytes) -> Compression:
    """Tell the compression of a TFRecord file from its first bytes.

    The extension is not trusted. GZIP starts with ``1f 8b``. ZLIB starts with
    a CMF/FLG pair (``78 01``, ``78 5e``, ``78 9c``, ``78 da``, ...) whose
    16-bit big-endian value is a multiple of 31 (RFC 1950) -- but a TFRecord
    frame can start the same way (a record length of 0x..9c78), so a ZLIB
    guess is only taken when the bytes do *not* also form a frame header whose
    CRC verifies.

    Args:
        source: a path, or the file's first bytes (at least 12 for a sure answer).

    Returns:
        ``"gzip"``, ``"zlib"`` or ``"none"``.

    Examples:

    >>> import gzip, zlib
    >>> detect_compression(gzip.compress(b"x"))
    'gzip'
    >>> detect_compression(zlib.compress(b"x"))
    'zlib'
    >>> detect_compression(b"")
    'none'
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:HEADER_BYTES])
    else:
        with open(source, "rb") as f:
            head = f.read(HEADER_BYTES)
    return sniff_compression(head)


def sniff_compression(head: bytes) -> Compression:
    """`detect_compression` of a file's first bytes (at least 12 for a sure answer)."""
    if len(head) >= 2 and head[0] == 0x1F and head[1] == 0x8B:
        return "gzip"
    if (
        len(head) >= 2
        and (head[0] & 0x0F) == 8  # CM = 8: deflate
        and (head[0] >> 4) <= 7  # CINFO: window size up to 32 KiB
        and ((head[0] << 8) | head[1]) % 31 == 0  # FCHECK
        and not header_verifies(head)
    ):
        return "zlib"
    return "none"
