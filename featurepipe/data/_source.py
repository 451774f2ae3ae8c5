"""The records of a list of TFRecord files, numbered ``0 .. N-1``, read by number.

Files are taken in sorted order; global record ``g`` is record ``g - start[f]``
of file ``f``. Counts and offsets come from each file's index sidecar
(``FILE.fpidx``, :mod:`featurepipe.tfrecord`'s :class:`~featurepipe.tfrecord.RecordIndex`):
a current sidecar is used as it is; a missing or stale one is built by a
verifying scan and saved beside the file when its directory is writable (so
the next run, and the other ranks and workers, find it), else kept in memory.

Uncompressed files are read by random access: each file is memory-mapped
once, and a record is sliced out of the map at its offset, both CRC-32Cs
verified (the length's and the data's), so a shuffled order costs no more
than file order. GZIP / ZLIB files have no random access; they are read as a
stream (:meth:`Records.stream`) in file order.

``on_corrupt="skip"``: a file whose index cannot be built because it is
damaged is scanned with the core reader's skip policy instead, and its intact
records are numbered (in memory; nothing is saved). A record whose CRC fails
at read time is left out of its batch and listed in :attr:`Records.report`.
"""

from __future__ import annotations

import bisect
import itertools
import mmap
import os
import struct
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from featurepipe._native import speedups
from featurepipe.errors import ConfigError, CorruptRecordError
from featurepipe.tfrecord import (
    DEFAULT_MAX_RECORD_BYTES,
    CorruptionReport,
    SkippedRange,
    build_index,
    detect_compression,
    expand_paths,
    iter_records,
    load_index,
    masked_crc32c,
    read_record_at,
)

__all__ = ["RecordSource", "Records"]

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_OVERHEAD = 16
# The compiled frame scanner (both CRCs verified, payloads copied out), or None.
_scan: Any = None if speedups is None else speedups.scan_records
_masked_crc: Any = masked_crc32c if speedups is None else speedups.masked_crc32c
# Consecutive records read with one scan from this many on (fewer: one by one).
_RUN = 8
_unpack_header = _HEADER.unpack_from
_unpack_footer = _FOOTER.unpack_from


def _pieces(loc: np.ndarray[Any, Any]) -> list[tuple[int, int, bool]]:
    """``[a, b)`` pieces of ``loc``: runs of ``_RUN`` or more consecutive records to scan at
    once (``True``; only with the compiled scanner), and what lies between them."""
    n = len(loc)
    if _scan is None or n < _RUN:
        return [(0, n, False)]
    bounds = [0, *(np.flatnonzero(np.diff(loc) != 1) + 1).tolist(), n]
    out: list[tuple[int, int, bool]] = []
    start = 0  # of the pending piece of short runs
    for a, b in itertools.pairwise(bounds):
        if b - a >= _RUN:
            if start < a:
                out.append((start, a, False))
            out.append((a, b, True))
            start = b
    if start < n:
        out.append((start, n, False))
    return out


def _frames(mm: Any, view: memoryview, starts: list[int], sizes: list[int]) -> list[bytes | None]:
    """The payloads of the frames at ``starts`` (payload lengths ``sizes``, from the index):
    `None` where the frame does not verify (length field, its CRC, the data CRC)."""
    out: list[bytes | None] = []
    add = out.append
    crc = _masked_crc
    end_of_file = len(view)
    for o, n in zip(starts, sizes, strict=True):
        e = o + 12 + n
        if e + 4 > end_of_file:
            add(None)
            continue
        length, length_crc = _unpack_header(mm, o)
        data = mm[o + 12 : e]
        if (
            length != n
            or crc(view[o : o + 8]) != length_crc
            or crc(data) != _unpack_footer(mm, e)[0]
        ):
            add(None)
        else:
            add(data)
    return out


class Records:
    """Random (or streamed) access to the records of TFRecord files, CRC-verified.

    Args:
        paths: the files (already expanded), in the order that numbers them.
        on_corrupt: ``"raise"`` or ``"skip"``.

    Attributes:
        paths: the files.
        counts: records per file.
        starts: global number of each file's first record (``len(paths) + 1``
            entries; the last is the total).
        compressions: each file's compression.
        report: the damage skipped so far (``on_corrupt="skip"``).
    """

    def __init__(self, paths: Sequence[str], on_corrupt: str = "raise") -> None:
        if on_corrupt not in ("raise", "skip"):
            raise ConfigError(
                "Unknown value for `on_corrupt`. Allowed values are: ('raise', 'skip'). "
                f"Received: on_corrupt={on_corrupt!r}"
            )
        self.paths = list(paths)
        self.on_corrupt = on_corrupt
        self.report = CorruptionReport()
        self.compressions = [detect_compression(p) for p in self.paths]
        # per file: (offsets uint64, lengths int64) once loaded; None until needed
        self._offsets: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None] = []
        # per file: True when a current sidecar holds its offsets (reloaded on demand)
        self._sidecar: list[bool] = []
        counts = []
        for path in self.paths:
            idx = load_index(path, header_only=True)
            if idx is not None:
                counts.append(idx.count)
                self._offsets.append(None)
                self._sidecar.append(True)
                continue
            offs, lens, saved = self._build(path)
            counts.append(len(offs))
            self._offsets.append((offs, lens))
            self._sidecar.append(saved)
        self.counts = counts
        self.starts = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.starts[1:])
        self._maps: dict[int, Any] = {}
        self._views: dict[int, memoryview] = {}
        # the scalar path (read_one): starts and, per file, offsets and lengths as plain ints
        self._starts: list[int] = self.starts.tolist()
        self._total: int = self._starts[-1]
        self._random_access = all(c == "none" for c in self.compressions)
        self._plain: dict[int, tuple[list[int], list[int]]] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_maps"] = {}
        state["_views"] = {}
        state["_plain"] = {}
        state["_offsets"] = [
            None if side else offs for offs, side in zip(self._offsets, self._sidecar, strict=True)
        ]
        return state

    def __len__(self) -> int:
        return self._total

    @property
    def random_access(self) -> bool:
        """True when every file is uncompressed (records are read by offset)."""
        return self._random_access

    def close(self) -> None:
        """Unmap the files (they are mapped again when read)."""
        views, self._views = self._views, {}
        for view in views.values():
            view.release()
        maps, self._maps = self._maps, {}
        for mm in maps.values():
            mm.close()

    # -- indexes ------------------------------------------------------------------------------

    def _build(self, path: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], bool]:
        """Build the index of ``path``: ``(offsets, lengths, saved beside the file)``."""
        save = os.access(os.path.dirname(os.path.abspath(path)) or ".", os.W_OK)
        try:
            idx = build_index(path, save=save)
        except CorruptRecordError:
            if self.on_corrupt != "skip":
                raise
            # The intact records only, numbered in memory (a skip scan is no index to save).
            offs, lens = [], []
            for rec in iter_records(path, on_corrupt="skip", report=self.report):
                offs.append(rec.offset)
                lens.append(len(rec.data))
            return np.asarray(offs, np.uint64), np.asarray(lens, np.int64), False
        except OSError:
            if not save:
                raise
            idx = build_index(path, save=False)
            save = False
        return idx.offsets, _lengths(idx.offsets, idx.stream_bytes), save

    def _file_offsets(self, f: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        got = self._offsets[f]
        if got is None:
            path = self.paths[f]
            idx = load_index(path)
            if idx is None or idx.count != self.counts[f]:
                raise ConfigError(
                    f"{path} changed since the loader counted its records ({self.counts[f]}): "
                    "build the loader again."
                )
            got = (idx.offsets, _lengths(idx.offsets, idx.stream_bytes))
            self._offsets[f] = got
        return got

    def _map(self, f: int) -> Any:
        mm = self._maps.get(f)
        if mm is None:
            with open(self.paths[f], "rb") as fh:
                mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps[f] = mm
        return mm

    # -- reading ------------------------------------------------------------------------------

    def locate(
        self, ids: np.ndarray[Any, Any]
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """``(file, record in file)`` of global record numbers."""
        ids = np.asarray(ids, dtype=np.int64)
        files = np.searchsorted(self.starts, ids, side="right") - 1
        return files, ids - self.starts[files]

    def read(
        self, ids: np.ndarray[Any, Any]
    ) -> tuple[list[bytes | None], list[str], list[int], list[int]]:
        """The payloads of global records ``ids`` (uncompressed files), in that order.

        Returns:
            ``(payloads, paths, records, offsets)``: a payload is `None` where
            the record is damaged and ``on_corrupt="skip"``.

        Raises:
            CorruptRecordError: a damaged record (``on_corrupt="raise"``),
                naming the file, the record and its byte offset.
        """
        files, local = self.locate(ids)
        n = len(files)
        out: list[bytes | None] = [None] * n
        paths: list[str] = [""] * n
        records = local.tolist()
        offsets: list[int] = [0] * n
        order = np.argsort(files, kind="stable")
        fs = files[order]
        cuts = np.flatnonzero(np.diff(fs)) + 1
        for seg in np.split(order, cuts) if n else []:
            f = int(files[seg[0]])
            offs, lens = self._file_offsets(f)
            mm = self._map(f)
            path = self.paths[f]
            rows = seg.tolist()
            loc = local[seg]
            starts = offs[loc].tolist()
            sizes = lens[loc].tolist()
            for row, o in zip(rows, starts, strict=True):
                paths[row] = path
                offsets[row] = o
            view = self._view(f)
            for a, b, run in _pieces(loc):
                got: list[bytes | None] | None = None
                if run:
                    # consecutive records (a batch in file order is one run): one compiled
                    # scan verifies both CRCs and copies out the payloads
                    lo = starts[a]
                    hi = starts[b - 1] + sizes[b - 1] + _OVERHEAD
                    if hi <= len(view):
                        limit = max(DEFAULT_MAX_RECORD_BYTES, *sizes[a:b])
                        recs, nxt, status = _scan(view[lo:hi], 0, True, limit)
                        if status == 0 and nxt == hi - lo and len(recs) == b - a:
                            got = recs
                if got is None:
                    got = _frames(mm, view, starts[a:b], sizes[a:b])
                for t, rec in zip(range(a, b), got, strict=True):
                    if rec is None:  # damage: say what and where (or skip it)
                        rec = self._frame(mm, path, int(loc[t]), starts[t], sizes[t])
                    out[rows[t]] = rec
        return out, paths, records, offsets

    def read_one(self, g: int) -> tuple[bytes | None, str, int, int]:
        """Global record ``g`` (in ``[0, len)``; uncompressed files), without numpy: what
        :meth:`read` gives for ``[g]``, at a few microseconds (one record per call, as
        grain's ``DataLoader`` reads).

        Returns:
            ``(payload, path, record in file, offset)``; the payload is `None` where
            the record is damaged and ``on_corrupt="skip"``.

        Raises:
            CorruptRecordError: a damaged record (``on_corrupt="raise"``), as :meth:`read`.
        """
        starts = self._starts
        f = bisect.bisect_right(starts, g) - 1
        i = g - starts[f]
        plain = self._plain.get(f)
        if plain is None:
            offs, lens = self._file_offsets(f)
            plain = self._plain[f] = (offs.tolist(), lens.tolist())
        o, n = plain[0][i], plain[1][i]
        mm = self._maps.get(f)
        if mm is None:
            mm = self._map(f)
        # the checks of _frames (length field, its CRC, the data CRC), on one frame
        e = o + 12 + n
        if e + 4 <= len(mm):
            length, length_crc = _unpack_header(mm, o)
            if length == n and _masked_crc(mm[o : o + 8]) == length_crc:
                data = mm[o + 12 : e]
                if _masked_crc(data) == _unpack_footer(mm, e)[0]:
                    return data, self.paths[f], i, o
        # damage: say what and where (or skip it)
        return self._frame(mm, self.paths[f], i, o, n), self.paths[f], i, o

    def _view(self, f: int) -> memoryview:
        view = self._views.get(f)
        if view is None:
            view = self._views[f] = memoryview(self._map(f))
        return view

    def _frame(self, mm: Any, path: str, i: int, o: int, length: int) -> bytes | None:
        end = o + 12 + length
        reason = None
        if end + 4 > len(mm):
            reason, detail = "truncated_data", "the file ends inside the record (it shrank)"
        else:
            head = mm[o : o + 12]
            got_len, len_crc = _HEADER.unpack(head)
            if masked_crc32c(head[:8]) != len_crc:
                reason, detail = "length_crc_mismatch", "the length field's CRC does not match"
            elif got_len != length:
                reason, detail = (
                    "bad_index",
                    f"the index says {length} bytes, the frame says {got_len}; "
                    "rebuild the index with `featurepipe inspect index`",
                )
            else:
                data = mm[o + 12 : end]
                if masked_crc32c(data) == _FOOTER.unpack(mm[end : end + 4])[0]:
                    return bytes(data)
                reason = "data_crc_mismatch"
                detail = f"the data CRC of this {length}-byte record does not match"
        if self.on_corrupt == "raise":
            raise CorruptRecordError(detail, path=path, record=i, offset=o, reason=reason)
        self.report.skipped.append(SkippedRange(path, i, o, length + _OVERHEAD, reason))
        return None

    def stream(
        self, start: int, stop: int, file_order: Sequence[int] | None = None
    ) -> Iterator[tuple[int, bytes, str, int, int]]:
        """Records at positions ``start .. stop - 1`` of the files one after the other, as a stream.

        For compressed files (no random access). Positions count the records
        of the files taken in ``file_order`` (default: their order). Yields
        ``(global number, payload, path, record in file, offset)``; damage
        raises or is skipped as ``on_corrupt`` says (records are numbered as
        the index counted them).
        """
        order = range(len(self.paths)) if file_order is None else file_order
        base = 0
        for f in order:
            n = self.counts[f]
            if base >= stop:
                return
            if base + n <= start:
                base += n
                continue
            path = self.paths[f]
            records = iter_records(
                path,
                compression=self.compressions[f],
                on_corrupt=self.on_corrupt,  # type: ignore[arg-type]
                report=self.report,
            )
            first = int(self.starts[f])
            # numbered as the index counts them: the intact records, in order
            for k, rec in enumerate(records):
                if base + k >= stop:
                    break
                if base + k >= start:
                    yield first + k, rec.data, path, rec.index, rec.offset
            base += n


def _lengths(offsets: np.ndarray[Any, Any], stream_bytes: int) -> np.ndarray[Any, Any]:
    ends = np.empty(len(offsets), dtype=np.int64)
    if len(offsets):
        ends[:-1] = offsets[1:].astype(np.int64)
        ends[-1] = stream_bytes
    lengths: np.ndarray[Any, Any] = ends - offsets.astype(np.int64) - _OVERHEAD
    return lengths


class RecordSource:
    """Random access to the serialized records of TFRecord files: ``len`` and ``[i]``.

    The records of the files (sorted) are numbered ``0 .. len - 1``; ``source[i]``
    reads record ``i`` through the index sidecars (built when missing, as
    :class:`~featurepipe.data.Loader` does), both CRCs verified. What a
    random-access data source (e.g. grain's) needs; picklable (files are
    mapped again where it is unpickled).

    Uncompressed files are read by offset from a memory map. GZIP / ZLIB files
    are inflated from the nearest access point of their index for every record
    (up to a megabyte for files ``TFRecordWriter`` wrote with an index, from the
    start otherwise): correct, but slow -- decompress them for random access.

    Args:
        data: a path, glob, ``PREFIX@N`` or a list of them.
        on_corrupt: ``"raise"``, or ``"skip"``: a damaged file whose index has
            to be built gets its intact records numbered (a damaged record
            found when read still raises). Defaults to `"raise"`.

    Raises:
        ConfigError: files that match nothing.
        CorruptRecordError: a damaged record (when building an index, or when read).

    Examples:
        >>> import os, tempfile
        >>> from featurepipe.tfrecord import write_records
        >>> d = tempfile.mkdtemp()
        >>> write_records(os.path.join(d, "a.tfrecord"), [b"r0", b"r1"])
        2
        >>> write_records(os.path.join(d, "b.tfrecord"), [b"r2"])
        1
        >>> source = RecordSource(os.path.join(d, "*.tfrecord"))
        >>> len(source), source[2], source[-3], source.read([1, 0])
        (3, b'r2', b'r0', [b'r1', b'r0'])
    """

    def __init__(
        self,
        data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        on_corrupt: str = "raise",
    ) -> None:
        try:
            files = sorted(set(expand_paths(data)))
        except ConfigError as e:
            raise ConfigError(f"No files for the record source: {e}") from None
        self._records = Records(files, on_corrupt)
        self._indexes: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"RecordSource({len(self._records.paths)} files, {len(self)} records)"

    @property
    def files(self) -> list[str]:
        """The files, in the order that numbers their records."""
        return list(self._records.paths)

    def __getstate__(self) -> dict[str, Any]:
        return {"_records": self._records, "_indexes": {}}

    def __getitem__(self, i: int) -> bytes:
        n = self._records._total
        if not isinstance(i, int | np.integer):
            raise TypeError(f"record numbers are ints. Received: {type(i).__name__}")
        j = int(i) + n if i < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"record {i} out of range: the files hold {n} records")
        recs = self._records
        if recs.random_access:  # one record: the scalar path, no numpy
            payload, path, r, o = recs.read_one(j)
            if payload is None:
                raise _damaged(path, r, o)
            return payload
        return self.read([j])[0]

    def read(self, ids: Sequence[int] | np.ndarray[Any, Any]) -> list[bytes]:
        """Records ``ids`` (numbers in ``[-len, len)``), in that order."""
        arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        n = len(self)
        arr = np.where(arr < 0, arr + n, arr)
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= n):
            raise IndexError(f"record numbers out of range: the files hold {n} records")
        recs = self._records
        if recs.random_access:
            payloads, paths, records, offsets = recs.read(arr)
            out: list[bytes] = []
            for p, path, r, o in zip(payloads, paths, records, offsets, strict=True):
                if p is None:  # on_corrupt="skip" at read time: still an error here
                    raise _damaged(path, r, o)
                out.append(p)
            return out
        files, local = recs.locate(arr)
        res = []
        for f, i in zip(files.tolist(), local.tolist(), strict=True):
            if recs.compressions[f] == "none":
                payload = recs.read(np.asarray([recs.starts[f] + i]))[0][0]
                if payload is None:
                    raise CorruptRecordError(
                        "the record is damaged",
                        path=recs.paths[f],
                        record=i,
                        reason="data_crc_mismatch",
                    )
                res.append(payload)
                continue
            idx = self._indexes.get(f)
            if idx is None:
                idx = self._indexes[f] = load_index(recs.paths[f])
            if idx is None:
                raise ConfigError(
                    f"{recs.paths[f]} has no current index (a damaged compressed file read "
                    "with on_corrupt='skip', or it changed): random access needs one."
                )
            res.append(read_record_at(recs.paths[f], i, index=idx))
        return res


def _damaged(path: str, record: int, offset: int) -> CorruptRecordError:
    """A record ``on_corrupt="skip"`` left out, asked for by number: still an error."""
    return CorruptRecordError(
        "the record is damaged", path=path, record=record, offset=offset, reason="data_crc_mismatch"
    )
