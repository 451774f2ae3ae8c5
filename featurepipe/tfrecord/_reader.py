"""Reading TFRecord files: the frame reader, its corruption policy and reports.

The reader here is stricter than TensorFlow's (see
``shared/reference/bad-inputs.md`` §1 and §5): both CRCs are verified by
default, every length is checked against the bytes left and against
``max_record_bytes`` *before* anything is allocated, a file cut anywhere or
followed by stray bytes is damage (never a clean end), and every error names
the file, the record index and the byte offset where the damaged record starts.
With ``on_corrupt="skip"`` the reader resynchronises on the next frame whose
length CRC *and* data CRC verify, so intact records after damage are kept, and
each skipped byte range is reported. The frame layout is in `_framing`.
"""

from __future__ import annotations

import dataclasses
import io
import mmap
import os
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Literal, NamedTuple

from featurepipe.errors import (
    ConfigError,
    CorruptionBudgetError,
    CorruptRecordError,
    DataError,
    RecordTooLargeError,
)
from featurepipe.tfrecord import _framing
from featurepipe.tfrecord._compression import (
    Compression,
    DecompressingReader,
    check_compression,
    sniff_compression,
)
from featurepipe.tfrecord._compression import StreamError as _StreamError
from featurepipe.tfrecord._framing import (
    DATA_CRC,
    FOOTER,
    FOOTER_BYTES,
    FRAME_OVERHEAD,
    HEADER_BYTES,
    NEED_MORE,
    TOO_LARGE,
    U64,
    Scan,
    masked_crc32c,
)
from featurepipe.tfrecord._paths import expand_paths

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "Budget",
    "CorruptionReport",
    "FrameReader",
    "Record",
    "SkippedRange",
    "batch_records",
    "count_frames",
    "iter_records",
    "read_records",
]


#: Largest record the reader accepts unless told otherwise. TensorFlow's
#: protobuf parser refuses messages over 2 GiB; a bigger length field is
#: damage or hostile input, and a smaller bound keeps memory flat on untrusted
#: files. Pass ``max_record_bytes=`` to read larger records on purpose.
DEFAULT_MAX_RECORD_BYTES = 256 * 1024 * 1024

# Size of each read from the underlying file. Large enough that per-read
# overhead vanishes, small enough to keep memory flat.
_CHUNK_BYTES = 4 * 1024 * 1024

# Plain files at least this large are scanned through a memory map (see
# FrameReader._mapped_records); smaller ones are not worth the mapping.
_MMAP_MIN_BYTES = 1 << 20
# Bytes mapped at a time (bounds resident memory; widened for a longer record).
_MMAP_WINDOW_BYTES = 64 << 20



class Record(NamedTuple):
    """One record and where it came from.

    Attributes:
        data: the record's payload.
        path: the file it was read from, or ``None`` for a file object without a name.
        index: 0-based record index in that file.
        offset: byte offset of the record's frame (in the decompressed stream
            for compressed files).
    """

    data: bytes
    path: str | None
    # Shadows tuple.index on purpose: "index" is what users call it.
    index: int  # type: ignore[assignment]
    offset: int


@dataclasses.dataclass(frozen=True)
class SkippedRange:
    """A byte range that ``on_corrupt="skip"`` passed over.

    Attributes:
        path: the file.
        record: index of the damaged record. After a ``data_crc_mismatch``
            (its length verified, so exactly one record was lost) the next
            intact record gets ``record + 1``; after a resynchronisation the
            number of records lost is unknown and the next one gets ``record``.
        offset: first skipped byte (in the decompressed stream when compressed).
        length: number of skipped bytes.
        reason: why, e.g. ``"data_crc_mismatch"``.
        compressed_offset: for damage in a GZIP / ZLIB stream, about where in
            the compressed file it is (e.g. where a second ZLIB stream starts),
            else ``None``.
        detail: what the decompressor said, or ``None``.
    """

    path: str | None
    record: int
    offset: int
    length: int
    reason: str
    compressed_offset: int | None = None
    detail: str | None = None


@dataclasses.dataclass
class CorruptionReport:
    """Collects what a read skipped; pass one as ``report=`` to the readers.

    Examples:

    >>> report = CorruptionReport()
    >>> report.skipped
    []
    >>> report.ok
    True
    """

    skipped: list[SkippedRange] = dataclasses.field(default_factory=list)
    records_read: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing was skipped."""
        return not self.skipped

    @property
    def bytes_skipped(self) -> int:
        """Total bytes passed over."""
        return sum(s.length for s in self.skipped)


# --------------------------------------------------------------------------- error hints


def _guess_format(head: bytes) -> str:
    """A hint for files that are not TFRecord at all (bad-inputs.md #9)."""
    if head.startswith(b"PAR1"):
        return "it looks like a Parquet file"
    if head.startswith(b"\x1f\x8b"):
        return "it looks GZIP-compressed: pass compression='gzip' (or 'auto')"
    if sniff_compression(head) == "zlib" or (len(head) >= 2 and head[0] == 0x78):
        return "it may be ZLIB-compressed: pass compression='zlib' (or 'auto')"
    if head.startswith(b"ARROW1"):
        return "it looks like an Arrow IPC file"
    if head[:1] in (b"{", b"["):
        return "it looks like JSON text"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "is this a TFRecord file?"
    if text.isprintable() or "," in text or "\n" in text:
        return "it looks like text (CSV?), not a TFRecord file"
    return "is this a TFRecord file?"


# --------------------------------------------------------------------------- reading


def read_records(
    sources: str | os.PathLike[str] | IO[bytes] | Iterable[str | os.PathLike[str]],
    *,
    compression: Compression | Literal["auto"] = "auto",
    verify_crc: bool = True,
    on_corrupt: Literal["raise", "skip"] = "raise",
    max_corrupt: int | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    report: CorruptionReport | None = None,
) -> Iterator[bytes]:
    """Yield the payload of every record in one or more TFRecord files.

    Args:
        sources: a path, a glob, a sharded spec ``PREFIX@N``, a list of these,
            or an open binary file object.
        compression: ``"auto"`` sniffs each file's first bytes; or ``"none"``,
            ``"gzip"``, ``"zlib"``. Defaults to `"auto"`.
        verify_crc: verify each record's data CRC. The length CRC is always
            verified: it guards every allocation. Defaults to `True`.
        on_corrupt: ``"raise"`` stops at the first damage with a
            `CorruptRecordError`, after yielding every record before it;
            ``"skip"`` passes over damaged bytes, resynchronises on the next
            intact frame and records each skipped range in ``report``.
            Defaults to `"raise"`.
        max_corrupt: with ``on_corrupt="skip"``, the most damaged ranges to
            skip (over all files) before raising `CorruptionBudgetError`;
            ``None`` for no limit. Defaults to `None`.
        max_record_bytes: the largest record accepted; a bigger length field
            is reported as ``record_too_large`` before anything is allocated.
            Defaults to `DEFAULT_MAX_RECORD_BYTES` (256 MiB).
        report: a `CorruptionReport` to fill in. Defaults to `None`.

    Yields:
        Each record's bytes, in file order.

    Raises:
        CorruptRecordError: damaged data (``on_corrupt="raise"``).
        CorruptionBudgetError: more than ``max_corrupt`` damaged ranges.
        ConfigError: bad arguments, or a path that matches no file.

    Examples:

    >>> import io
    >>> from featurepipe.tfrecord import TFRecordWriter
    >>> buf = io.BytesIO()
    >>> with TFRecordWriter(buf) as w:
    ...     w.write(b"foo")
    ...     w.write(b"bar")
    >>> _ = buf.seek(0)
    >>> list(read_records(buf))
    [b'foo', b'bar']
    """
    # The payload-only path: no Record tuple per record (about a fifth of the
    # per-record cost when the compiled scanner does the rest).
    yield from _read(
        sources, compression, verify_crc, on_corrupt, max_corrupt, max_record_bytes, report,
        "payloads",
    )


def iter_records(
    sources: str | os.PathLike[str] | IO[bytes] | Iterable[str | os.PathLike[str]],
    *,
    compression: Compression | Literal["auto"] = "auto",
    verify_crc: bool = True,
    on_corrupt: Literal["raise", "skip"] = "raise",
    max_corrupt: int | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    report: CorruptionReport | None = None,
) -> Iterator[Record]:
    """Like `read_records`, but yield `Record` tuples with path, index and offset."""
    yield from _read(
        sources, compression, verify_crc, on_corrupt, max_corrupt, max_record_bytes, report,
        "records",
    )


def _read(
    sources: str | os.PathLike[str] | IO[bytes] | Iterable[str | os.PathLike[str]],
    compression: str,
    verify_crc: bool,
    on_corrupt: str,
    max_corrupt: int | None,
    max_record_bytes: int,
    report: CorruptionReport | None,
    mode: str,
) -> Iterator[Any]:
    _check_read_args(compression, on_corrupt, max_corrupt, max_record_bytes)
    if report is None:
        report = CorruptionReport()
    budget = Budget(max_corrupt)
    if hasattr(sources, "read"):
        f = sources
        name = getattr(f, "name", None)
        yield from FrameReader(
            f,  # type: ignore[arg-type]
            name if isinstance(name, str) else None,
            compression,
            verify_crc,
            on_corrupt,
            max_record_bytes,
            report,
            budget,
        ).records(mode)
        return
    for path in expand_paths(sources):
        with open(path, "rb") as fh:
            yield from FrameReader(
                fh, path, compression, verify_crc, on_corrupt, max_record_bytes, report, budget
            ).records(mode)


def _check_read_args(
    compression: str, on_corrupt: str, max_corrupt: int | None, max_record_bytes: int
) -> None:
    check_compression(compression, auto=True)
    if on_corrupt not in ("raise", "skip"):
        raise ConfigError(
            "Unknown value for `on_corrupt`. Allowed values are: ('raise', 'skip'). "
            f"Received: on_corrupt={on_corrupt!r}"
        )
    if max_corrupt is not None and max_corrupt < 0:
        raise ConfigError(
            f"`max_corrupt` must be None or >= 0. Received: max_corrupt={max_corrupt}"
        )
    if max_record_bytes < 0:
        raise ConfigError(
            f"`max_record_bytes` must be >= 0. Received: max_record_bytes={max_record_bytes}"
        )


class Budget:
    """How many damaged ranges a read may still skip (shared by every file of one read)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0



def count_frames(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    compression: Compression | Literal["auto"] = "auto",
    verify_crc: bool = True,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Count (and verify) the records of one file without materialising them.

    Every check `read_records` makes is made (both CRCs, lengths, the end of
    the file); damage raises the same `CorruptRecordError`.

    Args:
        source: a path or an open binary file object.
        compression: as for `read_records`. Defaults to `"auto"`.
        verify_crc: verify data CRCs. Defaults to `True`.
        max_record_bytes: as for `read_records`.
        progress: called with the running count after each chunk. Defaults to `None`.

    Returns:
        The number of records.

    Examples:

    >>> import io
    >>> from featurepipe.tfrecord import write_records
    >>> buf = io.BytesIO()
    >>> write_records(buf, [b"a", b"bb"])
    2
    >>> _ = buf.seek(0)
    >>> count_frames(buf)
    2
    """
    total = 0
    for n in _read(
        source, compression, verify_crc, "raise", None, max_record_bytes, None, "counts"
    ):
        total += n
        if progress is not None:
            progress(total)
    return total


class FrameReader:
    """Reads frames from one file object, tracking record index and offsets.

    Offsets are positions in the (decompressed) stream. ``self._buf`` holds the
    bytes from stream offset ``self._base`` on that are not yet consumed.
    """

    def __init__(
        self,
        f: IO[bytes],
        path: str | None,
        compression: str,
        verify_crc: bool,
        on_corrupt: str,
        max_record_bytes: int,
        report: CorruptionReport,
        budget: Budget,
    ) -> None:
        self._path = path
        self._verify = verify_crc
        self._skip = on_corrupt == "skip"
        self._max = max_record_bytes
        self._report = report
        self._budget = budget
        self._index = 0
        self._base = 0
        self._buf: bytes = b""
        self._eof = False
        self._stream_error: _StreamError | None = None
        head = _peek(f, HEADER_BYTES)
        self._head = head
        if compression == "auto":
            compression = sniff_compression(head)
        self._compression = compression
        self._raw = f
        self._stream: IO[bytes] | DecompressingReader
        self._known_size: int | None = None
        if compression == "none":
            self._stream = f
            self._known_size = _remaining_size(f)
        else:
            self._stream = DecompressingReader(f, compression)

    # -- buffer management

    def _fill(self, want: int) -> bool:
        """Make at least ``want`` bytes available in the buffer; False at EOF."""
        have = len(self._buf)
        if have >= want:
            return True
        if self._eof:
            return False
        parts = [self._buf]
        while have < want:
            try:
                chunk = self._stream.read(max(_CHUNK_BYTES, want - have))
            except _StreamError as e:
                # Keep what decompressed cleanly; the damage is reported when
                # the reader reaches the end of those bytes.
                self._stream_error = e
                self._eof = True
                parts.append(e.partial)
                have += len(e.partial)
                break
            if not chunk:
                self._eof = True
                break
            parts.append(chunk)
            have += len(chunk)
        self._buf = b"".join(parts)
        return have >= want

    def _consume(self, n: int) -> None:
        self._buf = self._buf[n:]
        self._base += n

    # -- main loop

    def records(self, mode: str = "records") -> Iterator[Any]:
        """Yield `Record` tuples (``mode="records"``), payloads (``"payloads"``)
        or, for ``"counts"``, the number of verified records in each chunk."""
        scan: Scan = _framing.count_scan if mode == "counts" else _framing.scan_records
        if self._compression == "none":
            yield from self._mapped_records(mode)
        while True:
            self._fill(_CHUNK_BYTES)
            recs, pos, status = scan(self._buf, 0, self._verify, self._max)
            if recs:
                yield from self._emit(recs, mode)
                self._consume(pos)
            if status == NEED_MORE:
                have = len(self._buf)
                if have == 0 and self._eof:
                    if self._stream_error is not None:
                        self._damage("bad_compressed_stream", 0, None)
                    return
                if have >= HEADER_BYTES:
                    length = U64.unpack_from(self._buf, 0)[0]
                    need = length + FRAME_OVERHEAD
                    if self._known_size is not None and need > self._known_size - self._base:
                        # A plain file too short for the verified length: cut
                        # inside this record. Known without allocating it.
                        left = self._known_size - self._base
                        self._damage(
                            "truncated_data"
                            if left < HEADER_BYTES + length
                            else "truncated_footer",
                            left,
                            length,
                        )
                        continue
                    if self._fill(need):
                        continue
                    self._damage(
                        "truncated_data"
                        if len(self._buf) < HEADER_BYTES + length
                        else "truncated_footer",
                        len(self._buf),
                        length,
                    )
                    continue
                if self._fill(HEADER_BYTES) or not self._buf:
                    continue  # more bytes, or a clean end (handled above)
                self._damage("truncated_header", len(self._buf), None)
                continue
            if status == DATA_CRC:
                length = U64.unpack_from(self._buf, 0)[0]
                self._damage("data_crc_mismatch", length + FRAME_OVERHEAD, length)
            elif status == TOO_LARGE:
                length = U64.unpack_from(self._buf, 0)[0]
                self._damage("record_too_large", None, length)
            else:
                self._damage("length_crc_mismatch", None, None)

    def _emit(self, recs: Any, mode: str) -> Iterator[Any]:
        """Yield one scan's output in ``mode`` and advance the record index.

        ``recs`` is a list of payloads, or a count in ``"counts"`` mode. Offsets
        start at ``self._base``, the stream offset of the first frame scanned;
        the caller moves ``_base`` past the frames afterwards.
        """
        if mode == "counts":
            yield recs
            n = recs
        elif mode == "records":
            off = self._base
            idx = self._index
            for data in recs:
                yield Record(data, self._path, idx, off)
                idx += 1
                off += len(data) + FRAME_OVERHEAD
            n = len(recs)
        else:
            yield from recs
            n = len(recs)
        self._index += n
        self._report.records_read += n

    def _mapped_records(self, mode: str) -> Iterator[Any]:
        """The fast path for intact stretches of plain files: scan memory maps in place.

        Reading into fresh buffers costs a copy and page faults per chunk;
        scanning the page cache through a memory map copies each record once
        (and, when counting, not at all). The file is mapped a window at a
        time (`_MMAP_WINDOW_BYTES`, widened to hold one longer record), so
        resident memory stays bounded. It yields while every frame verifies,
        then hands the file, positioned at the first byte it did not consume,
        to the buffered path, which reports or skips whatever stopped it.
        """
        size = self._known_size
        if size is None or size < _MMAP_MIN_BYTES:
            return
        try:
            fd = self._raw.fileno()
            start = self._raw.tell()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return
        scan: Scan = _framing.count_scan if mode == "counts" else _framing.scan_records
        end = start + size
        pos = start
        gran = mmap.ALLOCATIONGRANULARITY
        while pos < end:
            base = pos - pos % gran  # map offsets must be aligned
            stop = min(end, base + max(_MMAP_WINDOW_BYTES, gran))
            head = os.pread(fd, HEADER_BYTES, pos)
            if len(head) == HEADER_BYTES:
                length = U64.unpack_from(head, 0)[0]
                if length <= self._max and pos + length + FRAME_OVERHEAD <= end:
                    stop = max(stop, pos + length + FRAME_OVERHEAD)  # one long record
            try:
                mm = mmap.mmap(fd, stop - base, access=mmap.ACCESS_READ, offset=base)
            except (OSError, ValueError):
                break  # e.g. a file that shrank: the buffered path reports it
            try:
                if hasattr(mm, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
                    mm.madvise(mmap.MADV_SEQUENTIAL)
                with memoryview(mm) as window:
                    recs, nxt, status = scan(window, pos - base, self._verify, self._max)
            finally:
                mm.close()
            nxt += base
            if recs:
                yield from self._emit(recs, mode)
            self._base += nxt - pos
            stuck = nxt == pos
            pos = nxt
            if status != NEED_MORE or stuck:
                break
        self._raw.seek(pos)

    # -- damage

    def _damage(self, reason: str, span: int | None, length: int | None) -> None:
        """Raise, or skip ``span`` bytes (``None``: resynchronise) and record it."""
        offset = self._base
        record = self._index
        if self._stream_error is not None and self._eof and reason.startswith("truncated"):
            # The stream broke: that, not the cut it left, is the damage.
            reason = "bad_compressed_stream"
        if reason == "length_crc_mismatch" and self._index > 0 and self._tail_is_garbage():
            reason = "trailing_bytes"
        if not self._skip:
            raise self._error(reason, length)
        stream_error = self._stream_error if reason == "bad_compressed_stream" else None
        if reason == "bad_compressed_stream":
            span = len(self._buf)
        if span is None:
            span = self._resync()
        else:
            self._skip_bytes(span)
        if reason == "bad_compressed_stream":
            self._stream_error = None  # reported once
        self._budget.used += 1
        self._report.skipped.append(
            SkippedRange(
                self._path, record, offset, span, reason,
                compressed_offset=None if stream_error is None else stream_error.compressed_offset,
                detail=None if stream_error is None else stream_error.detail,
            )
        )
        if reason == "data_crc_mismatch":
            # The length verified, so exactly one record was lost: the next
            # one keeps its true index in the file.
            self._index += 1
        if self._budget.limit is not None and self._budget.used > self._budget.limit:
            raise CorruptionBudgetError(
                f"skipped {self._budget.used} damaged ranges, more than max_corrupt="
                f"{self._budget.limit}; the last one: {reason}, {span} bytes",
                path=self._path,
                record=record,
                offset=offset,
                reason="corruption_budget_exceeded",
            )

    def _skip_bytes(self, n: int) -> None:
        while n > 0:
            if not self._buf and not self._fill(1):
                return
            step = min(n, len(self._buf))
            self._consume(step)
            n -= step

    def _resync(self) -> int:
        """Consume bytes up to the next frame that verifies (or EOF); return how many.

        The damaged frame starts at ``self._buf[0]``; candidates are searched
        from the next byte on, a window at a time, so memory stays bounded by
        the window plus one candidate record.
        """
        from featurepipe.tfrecord._resync import find_next_frame

        skipped = 0
        start = 1
        # At least a header's worth: a smaller window never drops a byte.
        window = max(_CHUNK_BYTES, HEADER_BYTES)
        while True:
            self._fill(start + window)
            for cand in find_next_frame(self._buf, start, self._max):
                length = U64.unpack_from(self._buf, cand)[0]
                if self._frame_verifies(cand, length):
                    self._consume(cand)
                    return skipped + cand
            if self._eof and len(self._buf) < start + window:
                n = len(self._buf)
                self._consume(n)
                return skipped + n
            # Drop what was searched, keeping the last bytes: a header may
            # straddle the window's end.
            drop = max(0, len(self._buf) - HEADER_BYTES + 1)
            self._consume(drop)
            skipped += drop
            start = 0

    def _frame_verifies(self, pos: int, length: int) -> bool:
        end = pos + HEADER_BYTES + length + FOOTER_BYTES
        if self._known_size is not None and end > self._known_size - self._base:
            return False
        if not self._fill(end):
            return False
        data = self._buf[pos + HEADER_BYTES : end - FOOTER_BYTES]
        if not self._verify:
            return True
        return bool(masked_crc32c(data) == FOOTER.unpack_from(self._buf, end - 4)[0])

    def _tail_is_garbage(self) -> bool:
        """True when the bytes from here to EOF hold no frame that verifies.

        Only looked at when the rest of the file is small (1 MiB), so that a
        damaged header early in a large file is reported as such quickly.
        """
        limit = 1024 * 1024
        self._fill(limit + 1)
        if not self._eof or len(self._buf) > limit:
            return False
        from featurepipe.tfrecord._resync import find_next_frame

        for cand in find_next_frame(self._buf, 1, self._max):
            length = U64.unpack_from(self._buf, cand)[0]
            if self._frame_verifies(cand, length):
                return False
        return True

    def _bytes_left(self) -> int:
        """Bytes from the current record to the end of the stream, as far as known."""
        if self._known_size is not None:
            return self._known_size - self._base
        return len(self._buf)

    def _error(self, reason: str, length: int | None) -> DataError:
        left = len(self._buf)
        detail = {
            "length_crc_mismatch": "the length field's CRC does not match",
            "data_crc_mismatch": f"the data CRC of this {length}-byte record does not match",
            "record_too_large": (
                f"the length field says {length} bytes, more than "
                f"max_record_bytes={self._max}"
                + (
                    f" and than the {self._known_size - self._base} bytes left in the file"
                    if self._known_size is not None
                    and length is not None
                    and length > self._known_size - self._base
                    else ""
                )
                + "; pass max_record_bytes= to read larger records on purpose"
            ),
            "truncated_header": (
                f"the file ends {left} bytes into a {HEADER_BYTES}-byte record header "
                "(the file was cut, or has stray bytes at its end)"
            ),
            "truncated_data": (
                f"the file ends inside a {length}-byte record "
                f"({max(0, self._bytes_left() - HEADER_BYTES)} data bytes present)"
            ),
            "truncated_footer": "the file ends inside the record's 4-byte data CRC",
            "bad_compressed_stream": (
                str(self._stream_error.detail) if self._stream_error is not None else "bad stream"
            ),
            "trailing_bytes": (
                f"{left} bytes after the last intact record do not form a record"
                + (" (all zero)" if left and not self._buf.strip(b"\0") else "")
            ),
        }.get(reason, reason)
        if self._compression == "none" and self._base == 0 and self._index == 0 and reason in (
            "length_crc_mismatch",
            "trailing_bytes",
            "truncated_header",
            "record_too_large",
        ):
            detail += f" ({_guess_format(self._head)})"
        cls = RecordTooLargeError if reason == "record_too_large" else CorruptRecordError
        return cls(detail, path=self._path, record=self._index, offset=self._base, reason=reason)


def _peek(f: IO[bytes], n: int) -> bytes:
    """Read the first ``n`` bytes and put them back (seek, or a wrapper)."""
    if f.seekable():
        pos = f.tell()
        head = f.read(n)
        f.seek(pos)
        return head
    peek = getattr(f, "peek", None)
    if peek is not None:
        return bytes(peek(n)[:n])
    raise ConfigError(
        "The file object must be seekable, or offer peek() (io.BufferedReader). "
        f"Received: {type(f).__name__}"
    )


def _remaining_size(f: IO[bytes]) -> int | None:
    try:
        if not f.seekable():
            return None
        pos = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(pos)
        return end - pos
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- batching


def batch_records(
    records: Iterable[Record], size: int
) -> Iterator[tuple[str | None, int, list[bytes]]]:
    """Group `Record` items (`iter_records` output) into batches of one file each.

    Args:
        records: `Record` tuples.
        size: the most records per batch.

    Yields:
        ``(path, index of the first record in its file, payloads)``, ready for
        `featurepipe.example.decode_examples` (``path=``, ``first_index=``).

    Examples:

    >>> import io
    >>> from featurepipe.tfrecord import write_records
    >>> buf = io.BytesIO()
    >>> write_records(buf, [b"a", b"b", b"c"])
    3
    >>> _ = buf.seek(0)
    >>> list(batch_records(iter_records(buf), 2))
    [(None, 0, [b'a', b'b']), (None, 2, [b'c'])]
    """
    batch: list[bytes] = []
    path: str | None = None
    first = 0
    for rec in records:
        if batch and (len(batch) >= size or rec.path != path):
            yield path, first, batch
            batch = []
        if not batch:
            path, first = rec.path, rec.index
        batch.append(rec.data)
    if batch:
        yield path, first, batch
