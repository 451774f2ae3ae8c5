"""TFRecord files read as references into mapped windows, batched and shuffled by arithmetic.

A reader that hands whole batches to compiled code needs no Python object per
record. Uncompressed files are mapped a window at a time and the frames of a
window verified (both CRC-32Cs) and indexed by the compiled scanner
(``_speedups.scan_frames``); a run of records is then a *unit*, a reference
``(window, starts, first, count)`` (see :data:`RecordUnit`). A batch is a list
of units: cut from runs in order (:func:`unit_batches`, as
``TFRecordDataset(files).repeat(n).batch(b)``), or drawn from a shuffle buffer of
references (:func:`shuffled_unit_batches`, gather units). A
``_speedups.ColumnsRunner`` reads the payloads of such a batch in place; where
Python needs them, :func:`batch_payloads` gives them in the batch's order.

Compressed files, the pure-Python build, and whatever follows damage go through
:func:`~featurepipe.tfrecord.read_records` (so damage raises its own error),
as units that are lists of payloads.
"""

from __future__ import annotations

import collections
import itertools
import mmap
import os
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import numpy as np

from featurepipe._native import speedups
from featurepipe.tfrecord import DEFAULT_MAX_RECORD_BYTES, detect_compression, read_records

__all__ = [
    "RecordUnit",
    "batch_payloads",
    "record_units",
    "shuffled_unit_batches",
    "unit_batches",
    "unit_count",
]

_speedups: Any = speedups

_CHUNK_BYTES = 16 << 20
# Shuffled reads keep a window mapped until its last record is drawn from the
# buffer, a dozen windows back or so: smaller windows bound what stays mapped.
_SHUFFLE_CHUNK_BYTES = 4 << 20
# Records taken from each file in turn when shuffling several files at once.
_BLOCK = 16

# A run of records: (buffer, starts, first, count), frames first .. first+count-1
# of a buffer (a mapped window of a file) whose frames were verified by
# scan_frames, starts holding their offsets; or a list of payloads (compressed files).
RecordUnit = tuple[Any, bytes, int, int] | list[bytes]


def unit_count(unit: Any) -> int:
    """The number of records of a unit (a run, a list of payloads or a gather unit).

    Examples:
        >>> unit_count([b"a", b"b"]), unit_count((b"", b"", 4, 3))
        (2, 3)
    """
    if isinstance(unit, tuple):
        return unit[3] if isinstance(unit[3], int) else len(unit[3])
    return len(unit)


def _split(unit: RecordUnit, k: int) -> tuple[RecordUnit, RecordUnit]:
    if isinstance(unit, tuple):
        buf, starts, first, n = unit
        return (buf, starts, first, k), (buf, starts, first + k, n - k)
    return unit[:k], unit[k:]


def batch_payloads(batch: list[Any]) -> list[bytes]:
    """The serialized records of a batch of units, in its order.

    For the code that takes a batch the compiled path gives up on (a copy of
    every record: not for the fast path).

    Examples:
        >>> batch_payloads([[b"a", b"b"], [b"c"]])
        [b'a', b'b', b'c']
    """
    if batch and isinstance(batch[0], tuple) and not isinstance(batch[0][3], int):
        out: list[bytes] = [b""] * sum(len(u[3]) for u in batch)
        for source, starts, indices, positions in batch:  # gather units
            recs = _frame_payloads(source, starts, indices)
            for rec, p in zip(recs, positions.tolist(), strict=True):
                out[p] = rec
        return out
    out = []
    for unit in batch:
        if isinstance(unit, tuple):
            buf, starts, first, n = unit
            out.extend(_frame_payloads(buf, starts, np.arange(first, first + n)))
        else:
            out.extend(unit)
    return out


def _frame_payloads(source: Any, starts: bytes | None, indices: Any) -> list[bytes]:
    """Records ``indices`` of a window: verified frames (``starts`` from
    ``scan_frames``), or a list of records when ``starts`` is `None`."""
    if starts is None:
        return [source[i] for i in indices.tolist()]
    offsets = np.frombuffer(starts, dtype=np.int64)
    view = memoryview(source)
    return [
        bytes(view[s + 12 : e - 4])
        for s, e in zip(offsets[indices].tolist(), offsets[indices + 1].tolist(), strict=True)
    ]


def unit_batches(
    files: Sequence[str],
    compression: str,
    *,
    batch_size: int,
    num_epochs: int | None,
    drop_remainder: bool,
) -> Iterator[list[RecordUnit]]:
    """Batches of ``batch_size`` records, in order, as lists of units.

    What ``TFRecordDataset(files).repeat(num_epochs).batch(batch_size)`` gives,
    as references: a unit is split where a batch ends (as ``.batch()`` does
    across files and epochs). Files without records end the data even when
    repeated forever (as tf.data).

    Args:
        files: the files, read one after the other.
        compression: ``"auto"``, ``"none"``, ``"gzip"`` or ``"zlib"``.
        batch_size: records per batch.
        num_epochs: passes over the files; `None` repeats forever.
        drop_remainder: drop the last partial batch.

    Examples:
        >>> import os, tempfile
        >>> from featurepipe.tfrecord import write_records
        >>> path = os.path.join(tempfile.mkdtemp(), "a.tfrecord")
        >>> write_records(path, [b"a", b"bc", b"d"])
        3
        >>> batches = unit_batches([path], "auto", batch_size=2, num_epochs=2, drop_remainder=False)
        >>> [batch_payloads(b) for b in batches]
        [[b'a', b'bc'], [b'd', b'a'], [b'bc', b'd']]
    """

    def units() -> Iterator[RecordUnit]:
        for epoch in itertools.count():
            if num_epochs is not None and epoch >= num_epochs:
                return
            records = 0
            for path in files:
                for unit in record_units(path, compression):
                    records += unit_count(unit)
                    yield unit
            if not records:
                return  # files without records: repeating them yields nothing (as tf.data)

    pending: collections.deque[RecordUnit] = collections.deque()
    have = 0
    for unit in units():
        pending.append(unit)
        have += unit_count(unit)
        while have >= batch_size:
            batch: list[RecordUnit] = []
            need = batch_size
            while need:
                head = pending[0]
                n = unit_count(head)
                if n <= need:
                    batch.append(pending.popleft())
                    need -= n
                else:
                    first, rest = _split(head, need)
                    batch.append(first)
                    pending[0] = rest
                    need = 0
            have -= batch_size
            yield batch
    if have and not drop_remainder:
        yield list(pending)


def shuffled_unit_batches(
    files: Sequence[str],
    compression: str,
    rng: np.random.Generator,
    *,
    batch_size: int,
    buffer_size: int,
    cycle_length: int,
    num_epochs: int | None,
    drop_remainder: bool,
) -> Iterator[list[Any]]:
    """Batches drawn from a shuffle buffer, as gather units for the runner.

    What ``files -> shuffle(files) -> interleave(cycle_length) ->
    shuffle(buffer_size) -> repeat(num_epochs) -> batch`` does in tf.data, on
    references to records (a window and a frame index) instead of tf.data
    elements: each epoch reads the files in a new random order, ``cycle_length``
    at a time, ``_BLOCK`` records from each in turn; every record drawn from the
    buffer is replaced by the next one read; the buffer drains at the end of
    each epoch; batches run on across epochs. A batch of B records is drawn at
    once: B distinct slots, which differs from drawing one record at a time
    only in that a record read during a batch is not drawn in that same batch.
    A batch is a list of ``(source, starts, indices, positions)`` units, one
    per window it draws from: record ``indices[k]`` of the window goes to row
    ``positions[k]``.

    Examples:
        >>> import os, tempfile
        >>> from featurepipe.tfrecord import write_records
        >>> path = os.path.join(tempfile.mkdtemp(), "a.tfrecord")
        >>> write_records(path, [bytes([i]) for i in range(10)])
        10
        >>> rng = np.random.default_rng(0)
        >>> batches = list(shuffled_unit_batches(
        ...     [path], "none", rng, batch_size=4, buffer_size=5, cycle_length=1,
        ...     num_epochs=1, drop_remainder=False))
        >>> [len(batch_payloads(b)) for b in batches]
        [4, 4, 2]
        >>> sorted(r for b in batches for r in batch_payloads(b)) == [bytes([i]) for i in range(10)]
        True
    """
    # wid -> [source, starts (None for a list of records), records not yet drawn]
    windows: dict[int, list[Any]] = {}
    wids = itertools.count()

    def stream(path: str) -> Iterator[tuple[int, int, int]]:
        for unit in record_units(path, compression, _SHUFFLE_CHUNK_BYTES):
            wid = next(wids)
            if isinstance(unit, tuple):
                source, starts, first, count = unit
                windows[wid] = [source, starts, count]
                yield wid, first, count
            else:
                windows[wid] = [unit, None, len(unit)]
                yield wid, 0, len(unit)

    def pieces() -> Iterator[tuple[int, int, int]]:
        # One epoch: (wid, first, count) runs, cycle_length files at a time.
        order = collections.deque(files[i] for i in rng.permutation(len(files)))
        active: collections.deque[list[Any]] = collections.deque()
        while order or active:
            while order and len(active) < cycle_length:
                active.append([stream(order.popleft()), -1, 0, 0])
            st = active[0]
            if st[3] == 0:
                nxt = next(st[0], None)
                if nxt is None:
                    active.popleft()
                    continue
                st[1], st[2], st[3] = nxt
            take = min(st[3], _BLOCK if len(active) > 1 else st[3])
            yield st[1], st[2], take
            st[2] += take
            st[3] -= take
            active.rotate(-1)

    def pull(src: Iterator[tuple[int, int, int]], carry: list[Any], k: int) -> tuple[Any, Any]:
        ws, ix = [], []
        while k > 0:
            if not carry:
                piece = next(src, None)
                if piece is None:
                    break
                carry.extend(piece)
            wid, first, count = carry
            take = min(k, count)
            ws.append(np.full(take, wid, dtype=np.int64))
            ix.append(np.arange(first, first + take, dtype=np.int64))
            k -= take
            if take == count:
                carry.clear()
            else:
                carry[1], carry[2] = first + take, count - take
        if not ws:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(ws), np.concatenate(ix)

    def units_of(ws: Any, ix: Any) -> list[Any]:
        order = np.argsort(ws, kind="stable")
        sw = ws[order]
        cuts = np.flatnonzero(np.diff(sw)) + 1
        out = []
        for seg in np.split(order, cuts):
            wid = int(ws[seg[0]])
            entry = windows[wid]
            out.append((entry[0], entry[1], ix[seg], seg))
            entry[2] -= len(seg)
            if entry[2] == 0:
                del windows[wid]  # the runner holds what it still needs
        return out

    bw = np.empty(buffer_size, np.int64)
    bi = np.empty(buffer_size, np.int64)
    got_w: list[Any] = []
    got_i: list[Any] = []
    need = batch_size
    for epoch in itertools.count():
        if num_epochs is not None and epoch >= num_epochs:
            break
        src = pieces()
        carry: list[Any] = []
        w, i = pull(src, carry, buffer_size)
        size = len(w)
        if not size:
            break  # files without records: repeating them yields nothing (as tf.data)
        bw[:size], bi[:size] = w, i
        while size:
            k = min(need, size)
            picks = rng.choice(size, k, replace=False)
            got_w.append(bw[picks])
            got_i.append(bi[picks])
            w, i = pull(src, carry, k)
            m = len(w)
            bw[picks[:m]], bi[picks[:m]] = w, i
            if m < k:  # the epoch's records are all in: the buffer shrinks
                keep = np.ones(size, dtype=bool)
                keep[picks[m:]] = False
                left = size - (k - m)
                bw[:left], bi[:left] = bw[:size][keep], bi[:size][keep]
                size = left
            need -= k
            if need == 0:
                yield units_of(np.concatenate(got_w), np.concatenate(got_i))
                got_w, got_i, need = [], [], batch_size
    if got_w and not drop_remainder:
        yield units_of(np.concatenate(got_w), np.concatenate(got_i))


def record_units(path: str, compression: str, window: int = 0) -> Iterator[RecordUnit]:
    """The records of one file, CRCs verified, as units (see :data:`RecordUnit`).

    Uncompressed files are mapped a window at a time (``window`` bytes; 0: 16
    MiB) and their frames verified by the compiled scanner without a Python
    object per record; the compiled plan then reads the payloads in place.
    Compressed files, and any damage (so the error is
    :func:`~featurepipe.tfrecord.read_records`' own), go through
    :func:`~featurepipe.tfrecord.read_records`.

    Examples:
        >>> import os, tempfile
        >>> from featurepipe.tfrecord import write_records
        >>> path = os.path.join(tempfile.mkdtemp(), "a.tfrecord")
        >>> write_records(path, [b"a", b"bc"])
        2
        >>> [unit_count(u) for u in record_units(path, "auto")]
        [2]
    """
    kind = detect_compression(path) if compression == "auto" else compression
    if kind != "none" or _speedups is None:
        it = read_records(path, compression=kind)  # type: ignore[arg-type]
        while batch := list(itertools.islice(it, 4096)):
            yield batch
        return
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        done = yield from _mapped_units(f, size, window or _CHUNK_BYTES)
    if done is None:
        return
    # Damage, a truncated tail or a file that cannot be mapped: read_records
    # reads on from there (and raises about damage).
    yield list(itertools.islice(read_records(path, compression="none"), done, None))


def _mapped_units(f: Any, size: int, chunk: int) -> Generator[RecordUnit, None, int | None]:
    """Verified frames of a plain file, mapped a window at a time (resident
    memory stays bounded: a window is unmapped once its batches are done).
    Returns `None` at a clean end, else the number of records it got to."""
    gran = mmap.ALLOCATIONGRANULARITY
    pos = done = 0
    window = chunk
    while pos < size:
        base = pos - pos % gran
        length = min(size - base, pos - base + window)
        try:
            mm = mmap.mmap(f.fileno(), length, access=mmap.ACCESS_READ, offset=base)
        except (OSError, ValueError):  # not mappable: read_records reads it
            return done
        starts, nxt, status = _speedups.scan_frames(mm, pos - base, DEFAULT_MAX_RECORD_BYTES)
        count = len(starts) // 8 - 1
        if count:
            yield (mm, starts, 0, count)
            done += count
            pos = base + nxt
            window = chunk
        if status != 0:
            return done
        if not count:
            if base + length >= size:
                return done  # a truncated tail
            window *= 2  # a frame bigger than the window
    return None
