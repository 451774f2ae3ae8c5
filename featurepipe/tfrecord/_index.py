"""The index sidecar: O(1) counts, random access and exact splits of TFRecord files.

``featurepipe inspect index FILE`` (or `build_index`) writes ``FILE.fpidx``
beside a TFRecord file. It holds the offset of every record's frame and, for
compressed files, *access points*: places where decompression can start.

Layout of an index file::

    one line of JSON, ending in "\\n":  {"format": "featurepipe-index",
        "format_version": 1, "records": N, "file_size": ..., "file_mtime_ns": ...,
        "compression": ..., "stream_bytes": ..., "access_points": [[c, u, r], ...]}
    N little-endian uint64: each record's frame offset in the (decompressed) stream

A record's length follows from the next offset (``offsets[i+1] - offsets[i]
- 16``), the last one from ``stream_bytes``. The count is in the first line,
so counting reads a few hundred bytes whatever the file's size.

Compressed files: an access point ``[c, u, r]`` says that decompression can
start at compressed byte ``c``, which is uncompressed byte ``u``, the frame
of record ``r``. `featurepipe.tfrecord.TFRecordWriter` makes a full-flush
point (byte-aligned, history reset) every megabyte and, with
``write_index=True``, records them: random access then inflates at most
about a megabyte. For a compressed file written elsewhere the only access
point is the start: counts are still O(1), but reaching record ``i`` means
decompressing everything before it (the DEFLATE format keeps no restart
points; tools such as zran store 32 KiB of window per point instead, which
Python's zlib cannot restore).

An index is trusted only while the file's size and modification time match
what it recorded; otherwise `load_index` returns ``None`` and callers scan.
"""

from __future__ import annotations

import bisect
import dataclasses
import io
import json
import os
from collections.abc import Iterator, Sequence
from typing import IO, Any

import numpy as np

from featurepipe._util import AtomicFile
from featurepipe._version import __version__
from featurepipe.errors import ConfigError, CorruptRecordError
from featurepipe.tfrecord._compression import Compression, detect_compression
from featurepipe.tfrecord._framing import FRAME_OVERHEAD
from featurepipe.tfrecord._paths import INDEX_SUFFIX, expand_paths
from featurepipe.tfrecord._reader import (
    Budget,
    CorruptionReport,
    FrameReader,
    count_frames,
    iter_records,
)

__all__ = [
    "INDEX_SUFFIX",
    "RecordIndex",
    "RecordRange",
    "build_index",
    "count_records",
    "index_path",
    "iter_range",
    "load_index",
    "read_record_at",
    "split_records",
]

_FORMAT = "featurepipe-index"
_FORMAT_VERSION = 1
_MAX_HEADER_BYTES = 16 * 1024 * 1024


def index_path(path: str | os.PathLike[str]) -> str:
    """The index sidecar's path for ``path``.

    >>> index_path("data/train.tfrecord")
    'data/train.tfrecord.fpidx'
    """
    return os.fspath(path) + INDEX_SUFFIX


@dataclasses.dataclass
class RecordIndex:
    """Offsets of every record of one TFRecord file.

    Attributes:
        path: the TFRecord file.
        compression: its compression.
        offsets: uint64 frame offsets in the (decompressed) stream.
        stream_bytes: total (decompressed) stream length.
        file_size: the file's size when indexed.
        file_mtime_ns: its modification time when indexed.
        access_points: ``(compressed_offset, stream_offset, record)`` triples.
    """

    path: str
    compression: Compression
    offsets: np.ndarray[Any, np.dtype[np.uint64]]
    stream_bytes: int
    file_size: int
    file_mtime_ns: int
    access_points: list[tuple[int, int, int]]

    @property
    def count(self) -> int:
        """Number of records."""
        return len(self.offsets)

    def __len__(self) -> int:
        return self.count

    def length(self, i: int) -> int:
        """Payload length of record ``i``."""
        end = int(self.offsets[i + 1]) if i + 1 < self.count else self.stream_bytes
        return end - int(self.offsets[i]) - FRAME_OVERHEAD

    @classmethod
    def from_writer(
        cls,
        path: str,
        compression: Compression,
        offsets: Sequence[int],
        stream_bytes: int,
        access_points: Sequence[tuple[int, int, int]],
    ) -> RecordIndex:
        """Build from what a `TFRecordWriter` knows when it closes."""
        st = os.stat(path)
        aps = [tuple(a) for a in access_points] if compression != "none" else []
        return cls(
            path,
            compression,
            np.asarray(offsets, dtype=np.uint64),
            stream_bytes,
            st.st_size,
            st.st_mtime_ns,
            aps,  # type: ignore[arg-type]
        )

    def save(self, to: str | None = None) -> str:
        """Write the sidecar (atomically); returns its path."""
        dest = to or index_path(self.path)
        header = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "featurepipe_version": __version__,
            "file": os.path.basename(self.path),
            "records": self.count,
            "file_size": self.file_size,
            "file_mtime_ns": self.file_mtime_ns,
            "compression": self.compression,
            "stream_bytes": self.stream_bytes,
            "access_points": [list(a) for a in self.access_points],
        }
        with AtomicFile(dest) as f:
            f.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")
            f.write(self.offsets.astype("<u8").tobytes())
        return dest

    def is_current(self) -> bool:
        """True while the file's size and mtime match the index."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return st.st_size == self.file_size and st.st_mtime_ns == self.file_mtime_ns


def _read_header(f: IO[bytes], where: str) -> dict[str, Any]:
    line = f.readline(_MAX_HEADER_BYTES)
    try:
        header = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{where} is not a featurepipe index file.") from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ConfigError(f"{where} is not a featurepipe index file.")
    if header.get("format_version", 0) > _FORMAT_VERSION:
        raise ConfigError(
            f"{where} has format_version={header.get('format_version')}, newer than this "
            f"featurepipe reads ({_FORMAT_VERSION}). Upgrade featurepipe or rebuild the index."
        )
    return header


def load_index(
    path: str | os.PathLike[str], *, header_only: bool = False
) -> RecordIndex | None:
    """Load ``path``'s index sidecar if there is one and it is current.

    Args:
        path: the TFRecord file (not the ``.fpidx``).
        header_only: skip reading the offsets (for counts). Defaults to `False`.

    Returns:
        The index, or ``None`` when there is none or the file changed since.
    """
    p = os.fspath(path)
    ip = index_path(p)
    try:
        f = open(ip, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    with f:
        h = _read_header(f, ip)
        count = int(h["records"])
        if header_only:
            offsets = np.zeros(0, dtype=np.uint64)
        else:
            raw = f.read(8 * count)
            if len(raw) != 8 * count:
                raise CorruptRecordError(
                    f"the index says {count} records but holds {len(raw) // 8} offsets; "
                    "rebuild it with `featurepipe inspect index`",
                    path=ip,
                    reason="bad_index",
                )
            offsets = np.frombuffer(raw, dtype="<u8").astype(np.uint64)
    idx = RecordIndex(
        p,
        h["compression"],
        offsets,
        int(h["stream_bytes"]),
        int(h["file_size"]),
        int(h["file_mtime_ns"]),
        [(int(a[0]), int(a[1]), int(a[2])) for a in h.get("access_points", [])],
    )
    if not idx.is_current():
        return None
    if header_only:
        idx.offsets = np.zeros(count, dtype=np.uint64)  # count only; offsets not loaded
    return idx


def build_index(
    path: str | os.PathLike[str], *, save: bool = True, verify_crc: bool = True
) -> RecordIndex:
    """Scan ``path`` (verifying it) and build, and by default save, its index.

    Args:
        path: a TFRecord file.
        save: write the ``.fpidx`` sidecar. Defaults to `True`.
        verify_crc: verify data CRCs while scanning. Defaults to `True`.

    Returns:
        The index.

    Raises:
        CorruptRecordError: the file is damaged; no index is written for it.
    """
    p = os.fspath(path)
    st = os.stat(p)
    compression = detect_compression(p)
    offsets: list[int] = []
    end = 0
    for rec in iter_records(p, compression=compression, verify_crc=verify_crc):
        offsets.append(rec.offset)
        end = rec.offset + len(rec.data) + FRAME_OVERHEAD
    idx = RecordIndex(
        p,
        compression,
        np.asarray(offsets, dtype=np.uint64),
        end,
        st.st_size,
        st.st_mtime_ns,
        [(0, 0, 0)] if compression != "none" else [],
    )
    if save:
        idx.save()
    return idx


def count_records(path: str | os.PathLike[str], *, use_index: bool = True) -> int:
    """Number of records in ``path``: from a current index, else by a verifying scan.

    Examples:

    >>> import tempfile, os
    >>> from featurepipe.tfrecord import write_records
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "x.tfrecord")
    >>> write_records(p, [b"a", b"b", b"c"])
    3
    >>> count_records(p)
    3
    """
    if use_index:
        idx = load_index(path, header_only=True)
        if idx is not None:
            return idx.count
    return count_frames(path)


class _Window(io.RawIOBase):
    """At most ``limit`` bytes of a stream (a readable object with ``read``)."""

    def __init__(self, stream: Any, limit: int, first: bytes = b"") -> None:
        self._s = stream
        self._left = limit
        self._first = first

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if n < 0 else min(n, self._left)
        if self._first:
            out, self._first = self._first[:want], self._first[want:]
        else:
            out = self._s.read(want)
        self._left -= len(out)
        return bytes(out)

    def peek(self, n: int) -> bytes:  # used by the frame reader's sniffing
        return b""


def _stream_at(f: IO[bytes], idx: RecordIndex, offset: int) -> Any:
    """A readable positioned at stream ``offset`` of the indexed file."""
    if idx.compression == "none":
        f.seek(offset)
        return f
    from featurepipe.tfrecord._compression import DecompressingReader, inflate_from

    starts = [a[1] for a in idx.access_points] or [0]
    k = max(0, bisect.bisect_right(starts, offset) - 1)
    comp, unc = (idx.access_points[k][0], idx.access_points[k][1]) if idx.access_points else (0, 0)
    if comp == 0:
        f.seek(0)
        stream: Any = DecompressingReader(f, idx.compression)
    else:
        stream = inflate_from(f, comp)
    skip = offset - unc
    while skip > 0:
        got = stream.read(min(skip, 1 << 22))
        if not got:
            raise CorruptRecordError(
                "the compressed stream ends before the indexed offset; rebuild the index",
                path=idx.path,
                offset=offset,
                reason="bad_index",
            )
        skip -= len(got)
    return stream


def iter_range(
    path: str | os.PathLike[str],
    start: int,
    stop: int,
    *,
    index: RecordIndex | None = None,
    verify_crc: bool = True,
) -> Iterator[bytes]:
    """Yield records ``start`` to ``stop - 1`` of ``path``, using its index.

    Raises:
        ConfigError: no current index, or a range outside ``[0, count]``.
        CorruptRecordError: damage inside the range.
    """
    p = os.fspath(path)
    idx = index or load_index(p)
    if idx is None:
        raise ConfigError(
            f"{p} has no current index; build one with `featurepipe inspect index {p}`."
        )
    if not 0 <= start <= stop <= idx.count:
        raise ConfigError(
            f"Record range [{start}, {stop}) is outside [0, {idx.count}] for {p}."
        )
    if start == stop:
        return
    first = int(idx.offsets[start])
    end = int(idx.offsets[stop]) if stop < idx.count else idx.stream_bytes
    with open(p, "rb") as f:
        stream = _stream_at(f, idx, first)
        reader = FrameReader(
            _Window(stream, end - first),  # type: ignore[arg-type]
            p,
            "none",
            verify_crc,
            "raise",
            1 << 62,
            CorruptionReport(),
            Budget(None),
        )
        reader._base = first
        reader._index = start
        for rec in reader.records():
            yield rec.data


def read_record_at(
    path: str | os.PathLike[str], i: int, *, index: RecordIndex | None = None
) -> bytes:
    """Record ``i`` of ``path`` (CRC-verified), through its index.

    Examples:

    >>> import tempfile, os
    >>> from featurepipe.tfrecord import TFRecordWriter
    >>> p = os.path.join(tempfile.mkdtemp(), "x.tfrecord")
    >>> with TFRecordWriter(p, write_index=True) as w:
    ...     for r in (b"a", b"bb", b"ccc"):
    ...         w.write(r)
    >>> read_record_at(p, 2)
    b'ccc'
    """
    idx = index or load_index(path)
    if idx is None:
        raise ConfigError(
            f"{os.fspath(path)} has no current index; build one with "
            f"`featurepipe inspect index {os.fspath(path)}`."
        )
    if not 0 <= i < idx.count:
        raise IndexError(f"record {i} out of range: {os.fspath(path)} has {idx.count} records")
    return next(iter_range(path, i, i + 1, index=idx))


@dataclasses.dataclass(frozen=True)
class RecordRange:
    """Records ``start`` to ``stop - 1`` of one file."""

    path: str
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


def split_records(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    num_parts: int,
    *,
    build_missing: bool = False,
) -> list[list[RecordRange]]:
    """Split one or more files into ``num_parts`` parts of equal record counts.

    Part sizes differ by at most one record; a part may span files. Each part
    can be read with `iter_range`.

    Args:
        sources: paths, globs or sharded specs.
        num_parts: how many parts (e.g. workers).
        build_missing: build (and save) indexes that are missing or stale
            instead of failing. Defaults to `False`.

    Returns:
        ``num_parts`` lists of `RecordRange`.

    Raises:
        ConfigError: ``num_parts < 1``, or a file without a current index.

    Examples:

    >>> import tempfile, os
    >>> from featurepipe.tfrecord import TFRecordWriter
    >>> p = os.path.join(tempfile.mkdtemp(), "x.tfrecord")
    >>> with TFRecordWriter(p, write_index=True) as w:
    ...     w.write_many([b"r"] * 5)
    5
    >>> [[(r.start, r.stop) for r in part] for part in split_records(p, 2)]
    [[(0, 2)], [(2, 5)]]
    """
    if num_parts < 1:
        raise ConfigError(f"`num_parts` must be >= 1. Received: num_parts={num_parts}")
    counts: list[tuple[str, int]] = []
    for p in expand_paths(sources):
        idx = load_index(p, header_only=True)
        if idx is None:
            if not build_missing:
                raise ConfigError(
                    f"{p} has no current index; run `featurepipe inspect index` on it or pass "
                    "build_missing=True."
                )
            idx = build_index(p)
        counts.append((p, idx.count))
    total = sum(c for _, c in counts)
    bounds = [total * k // num_parts for k in range(num_parts + 1)]
    parts: list[list[RecordRange]] = []
    for k in range(num_parts):
        lo, hi = bounds[k], bounds[k + 1]
        part: list[RecordRange] = []
        base = 0
        for p, c in counts:
            s, e = max(lo, base), min(hi, base + c)
            if s < e:
                part.append(RecordRange(p, s - base, e - base))
            base += c
        parts.append(part)
    return parts
