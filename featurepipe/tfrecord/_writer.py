"""Writing TFRecord files: `TFRecordWriter` and `write_records`.

Frames come from the one framing function, `_framing.frame_records` (the
compiled code when built).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable
from typing import IO

from featurepipe._util import AtomicFile
from featurepipe.errors import ConfigError
from featurepipe.tfrecord._compression import Compression, check_compression
from featurepipe.tfrecord._framing import frame_records

__all__ = ["TFRecordWriter", "write_records"]


class TFRecordWriter:
    """Writes records in TensorFlow's TFRecord format, optionally compressed.

    To a path, the writer is atomic by default (`featurepipe._util.AtomicFile`):
    it writes ``<dir>/.<name>.tmp-XXXX``, flushes and fsyncs it, and renames it
    to the final name only on a clean `close` (or a clean ``with`` exit). A killed
    job leaves no file under the final name; an exception inside ``with``
    removes the temporary file.

    For compressed output the writer makes a *full flush* point every
    ``flush_every_bytes`` of uncompressed data. TensorFlow, ``gzip`` and
    ``zlib`` read such streams as usual; featurepipe's index uses the flush
    points for random access into the compressed file.

    Args:
        file: a path or an open binary file object.
        compression: ``"none"``, ``"gzip"`` or ``"zlib"``. Defaults to `"none"`.
        atomic: write to a temporary name and rename on close (paths only).
            Defaults to `True`.
        compression_level: zlib level 0-9. Defaults to `6`.
        flush_every_bytes: uncompressed bytes between full flush points.
            Defaults to `1048576`.
        write_index: also write the index sidecar ``<path>.fpidx`` on close
            (paths only), so counts and random access need no scan. Defaults to `False`.

    Examples:

    >>> import io
    >>> buf = io.BytesIO()
    >>> with TFRecordWriter(buf) as w:
    ...     w.write(b"abc")
    ...     w.write(b"defg")
    >>> len(buf.getvalue())  # 16 bytes of framing per record
    39
    """

    def __init__(
        self,
        file: str | os.PathLike[str] | IO[bytes],
        compression: Compression = "none",
        *,
        atomic: bool = True,
        compression_level: int = 6,
        flush_every_bytes: int = 1 << 20,
        write_index: bool = False,
    ) -> None:
        check_compression(compression)
        if not 0 <= compression_level <= 9:
            raise ConfigError(
                "`compression_level` must be in [0, 9]. "
                f"Received: compression_level={compression_level}"
            )
        self.compression: Compression = compression
        self.records_written = 0
        self.bytes_written = 0  # uncompressed stream bytes
        self._closed = False
        self._final: str | None = None
        self._atomic: AtomicFile | None = None
        self._owns = False
        self._write_index = write_index
        self._offsets: list[int] = []
        self._access: list[tuple[int, int, int]] = [(0, 0, 0)]
        if hasattr(file, "write"):
            self._f: IO[bytes] = file  # type: ignore[assignment]
            if write_index:
                raise ConfigError("`write_index=True` needs a path, not a file object.")
        else:
            final = os.fspath(file)
            self._final = final
            self._owns = True
            if atomic:
                self._atomic = AtomicFile(final)
                self._f = self._atomic.file
            else:
                self._f = open(final, "wb")  # noqa: SIM115 - closed in close()
        self._flush_every = max(1, flush_every_bytes)
        self._since_flush = 0
        self._compressed_out = 0
        self._z: zlib._Compress | None = None
        if compression != "none":
            wbits = 31 if compression == "gzip" else 15
            self._z = zlib.compressobj(compression_level, zlib.DEFLATED, wbits)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append one record."""
        if self._closed:
            raise ValueError("write() on a closed TFRecordWriter")
        self._offsets.append(self.bytes_written)
        self._emit(frame_records([data]))
        self.records_written += 1

    def write_many(self, records: Iterable[bytes]) -> int:
        """Append many records; returns how many."""
        k = 0
        for r in records:
            self.write(r)
            k += 1
        return k

    def _emit(self, frame: bytes) -> None:
        self.bytes_written += len(frame)
        if self._z is None:
            self._f.write(frame)
            return
        out = self._z.compress(frame)
        self._since_flush += len(frame)
        if self._since_flush >= self._flush_every:
            out += self._z.flush(zlib.Z_FULL_FLUSH)
            self._since_flush = 0
            self._compressed_out += len(out)
            # the next record starts at a point where decompression can begin
            point = (self._compressed_out, self.bytes_written, self.records_written + 1)
            self._access.append(point)
        else:
            self._compressed_out += len(out)
        if out:
            self._f.write(out)

    def flush(self) -> None:
        """Flush buffered bytes to the file (compressed streams: a sync flush)."""
        if self._z is not None:
            out = self._z.flush(zlib.Z_SYNC_FLUSH)
            self._compressed_out += len(out)
            self._f.write(out)
        self._f.flush()

    def close(self) -> None:
        """Finish the stream, fsync and (atomic mode) rename into place."""
        if self._closed:
            return
        self._closed = True
        if self._z is not None:
            out = self._z.flush(zlib.Z_FINISH)
            self._compressed_out += len(out)
            self._f.write(out)
        if not self._owns or self._final is None:
            self._f.flush()
            return
        if self._atomic is not None:
            self._atomic.commit()  # flush, fsync, rename, fsync the directory
        else:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
        if self._write_index:
            from featurepipe.tfrecord._index import RecordIndex

            RecordIndex.from_writer(
                self._final, self.compression, self._offsets, self.bytes_written, self._access
            ).save()

    def abort(self) -> None:
        """Discard the output: close and delete the temporary file (atomic mode)."""
        if self._closed:
            return
        self._closed = True
        if self._atomic is not None:
            self._atomic.discard()
        elif self._owns:
            self._f.close()

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_records(
    path: str | os.PathLike[str] | IO[bytes],
    records: Iterable[bytes],
    compression: Compression = "none",
) -> int:
    """Write ``records`` to a new TFRecord file, atomically; returns the count.

    Examples:

    >>> import io
    >>> write_records(io.BytesIO(), [b"a", b"b"])
    2
    """
    with TFRecordWriter(path, compression) as w:
        return w.write_many(records)
