"""A grain random-access data source over indexed TFRecord files."""

from __future__ import annotations

import collections
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from featurepipe.data import RecordSource
from featurepipe.tfrecord import load_index

__all__ = ["TFRecordDataSource"]


class TFRecordDataSource:
    """The serialized records of TFRecord files, by number: grain's ``RandomAccessDataSource``.

    Records of the files (sorted) are numbered ``0 .. len - 1``; ``source[i]``
    is record ``i`` (``bytes``), read by offset through the files' index
    sidecars (``FILE.fpidx``, built and saved beside the files when missing)
    with both CRC-32Cs verified, so ``grain.samplers.IndexSampler`` can shuffle
    globally and shard exactly. A damaged record raises
    :class:`~featurepipe.errors.CorruptRecordError` naming the file, the record
    and its byte offset.

    Picklable (each of grain's worker processes maps the files again), and its
    ``repr`` names the files and the record count -- what grain compares when a
    ``DataLoader`` iterator's state is restored. It reads through
    :class:`featurepipe.data.RecordSource`; pair it with
    :class:`featurepipe.grain.ColumnsBatch` to get column outputs.

    Args:
        data: a path, glob, ``PREFIX@N``, a list of them, or a
            :class:`~featurepipe.data.RecordSource`.
        on_corrupt: ``"raise"``, or ``"skip"``: a damaged file whose index has
            to be built gets its intact records numbered (a damaged record
            found when read still raises). Defaults to `"raise"`.

    Raises:
        ConfigError: files that match nothing.
        CorruptRecordError: a damaged record (when an index is built, or when read).

    Examples:
        >>> import os, tempfile
        >>> from featurepipe.tfrecord import write_records
        >>> d = tempfile.mkdtemp()
        >>> write_records(os.path.join(d, "part-0.tfrecord"), [b"r0", b"r1"])
        2
        >>> write_records(os.path.join(d, "part-1.tfrecord"), [b"r2"])
        1
        >>> source = TFRecordDataSource(os.path.join(d, "*.tfrecord"))
        >>> len(source), source[2], source[-1]
        (3, b'r2', b'r2')
        >>> source
        TFRecordDataSource(2 files: part-0.tfrecord .. part-1.tfrecord, 3 records)
    """

    def __init__(
        self,
        data: RecordSource | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        on_corrupt: str = "raise",
    ) -> None:
        if isinstance(data, RecordSource):
            self._source = data
        else:
            self._source = RecordSource(data, on_corrupt=on_corrupt)
        self._len = len(self._source)
        # id(record) -> (record, number) of the last records read, while a ColumnsBatch
        # tracks them (to name the file, record and offset of a record it cannot parse)
        self._recent: collections.OrderedDict[int, tuple[bytes, int]] | None = None
        self._recent_size = 0

    @property
    def files(self) -> list[str]:
        """The files, in the order that numbers their records."""
        return self._source.files

    @property
    def record_source(self) -> RecordSource:
        """The :class:`featurepipe.data.RecordSource` it reads through."""
        return self._source

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> bytes:
        # grain's DataLoader reads one record per call: RecordSource's scalar path
        # (uncompressed files: plain ints, no numpy, both CRCs; a damaged record
        # raises the error that names the file, the record and the byte offset)
        record = self._source[index]
        if self._recent is not None:
            self._remember(record, int(index) % self._len)
        return record

    def track(self, count: int) -> None:
        """Remember the last ``count`` records read, for :meth:`where` (ColumnsBatch calls it)."""
        self._recent_size = max(self._recent_size, int(count))
        if self._recent is None:
            self._recent = collections.OrderedDict()

    def _remember(self, record: bytes, i: int) -> None:
        recent = self._recent
        if recent is None:  # not tracking (track() was not called): nothing to remember
            return
        recent[id(record)] = (record, i)
        if len(recent) > self._recent_size:
            recent.popitem(last=False)

    def where(self, record: bytes) -> tuple[str, int, int] | None:
        """``(path, record in file, byte offset)`` of a record this source just returned.

        Found by identity among the last records read while tracking (see
        :meth:`track`); `None` when it is not one of them.
        """
        got = None if self._recent is None else self._recent.get(id(record))
        if got is None or got[0] is not record:
            return None
        return self.locate(got[1])

    def locate(self, i: int) -> tuple[str, int, int] | None:
        """``(path, record in file, byte offset)`` of record ``i`` (`None`: a file has no index)."""
        files = self._source.files
        n = 0
        for path in files:
            idx = load_index(path)
            if idx is None:
                return None
            if i < n + len(idx.offsets):
                return path, i - n, int(idx.offsets[i - n])
            n += len(idx.offsets)
        return None

    def _getitems(self, indices: Sequence[int] | np.ndarray[Any, Any]) -> list[bytes]:
        # grain's batched-read protocol (SupportsBatchedReadRandomAccessDataSource,
        # google/grain grain/_src/python/dataset/base.py): MapDataset.batch reads
        # a batch's records in one call, grouped by file.
        return self._source.read(np.asarray(indices, dtype=np.int64))

    def __repr__(self) -> str:
        names = [os.path.basename(p) for p in self.files]
        span = names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]}"
        return f"TFRecordDataSource({len(names)} files: {span}, {self._len} records)"

    def __getstate__(self) -> dict[str, Any]:
        return {
            "_source": self._source,
            "_len": self._len,
            "_recent": None if self._recent is None else collections.OrderedDict(),
            "_recent_size": self._recent_size,
        }
