"""The loader: TFRecord files -> sharded, shuffled, resumable batches of column outputs.

How an epoch is cut (the same arithmetic on every rank and worker, so nothing
needs to be communicated):

1. Records are numbered ``0 .. N-1`` over the files in sorted order (counts
   from the index sidecars, see :mod:`featurepipe.data._source`).
2. The epoch's order: ``0 .. N-1``, or with ``shuffle`` a permutation drawn
   from ``numpy.random.default_rng([seed, epoch])`` -- the same on every rank,
   whatever the number of workers.
3. Rank ``r`` of ``world_size`` takes the contiguous part
   ``order[N*r//W : N*(r+1)//W]`` (parts differ by at most one record, every
   record is in exactly one part), evened out by ``uneven``:
   ``"pad"`` lengthens every part to ``ceil(N/W)`` with copies of the part's
   first records carrying sample weight 0 (every record once, equal steps: the
   default, it never hangs DDP); ``"repeat"`` does the same with weight 1
   (as ``torch.utils.data.DistributedSampler``); ``"drop"`` cuts every part to
   ``floor(N/W)``.
4. The part is cut into batches of ``batch_size`` (the last one shorter, or
   dropped with ``drop_remainder``); batch ``b`` goes to worker
   ``b % num_workers``: the order in which ``torch.utils.data.DataLoader``
   takes its workers' batches, so a rank's stream of batches is the same
   whatever ``num_workers`` is.

Compressed (GZIP / ZLIB) files cannot be read by offset: then the epoch's
order is the files one after the other (with ``shuffle``, in an order drawn
from ``(seed, epoch)``), each file's records in order; step 3 cuts it into
contiguous ranges as above, and ``shuffle`` also permutes each rank's range
locally (every record moves at most about ``shuffle_buffer`` places, seeded by
``(seed, epoch, rank)``), read as a stream that holds about that many records;
every worker of a rank reads the rank's whole range and keeps its own batches.
Decompress the files for a global shuffle and for workers that each read
only their own records.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from featurepipe._native import speedups
from featurepipe.columns import ColumnSpec, ColumnSpecs
from featurepipe.data._column_transform import ColumnTransform
from featurepipe.data._epoch import UNEVEN_POLICIES, EpochPlan
from featurepipe.data._epoch import check_int as _check_int
from featurepipe.data._source import Records
from featurepipe.data._transform import Where
from featurepipe.errors import ConfigError
from featurepipe.example import Schema
from featurepipe.tfrecord import expand_paths

__all__ = ["UNEVEN_POLICIES", "Loader"]

_speedups: Any = speedups
# Threads of the compiled runner (see Loader's `threads`): the C work of a batch takes
# about as long as reading its records, so one keeps up on a few cores.
_THREADS = 2 if (os.cpu_count() or 1) > 4 else 1
# Batches on the runner beyond the one being handed over.
_AHEAD = 4
_STATE_FORMAT = "featurepipe-loader-state"
_STATE_VERSION = 1


class Loader:
    """Batches of column outputs from TFRecord files of ``tf.Example``, without TF or torch.

    Each batch holds the model inputs of the columns as numpy arrays, the
    numbers :func:`featurepipe.keras.make_dataset` computes with ``columns=``
    (by the compiled :class:`~featurepipe.columns.ColumnPlan` when it can, else
    in pure Python -- the same numbers):

    - ``features``: a dict keyed by :func:`featurepipe.columns.model_columns`
      names, in that order (the Keras models' inputs): numeric columns float32
      ``[B, size]``; categorical columns (embedding / indicator columns carry
      their categorical ids under their own name) int64 ``[B, L]`` padded with
      -1 in ``ids="padded"`` mode, or :class:`~featurepipe.data.RaggedIds`
      (``EmbeddingBag``'s ``input, offsets, per_sample_weights``) in
      ``ids="offsets"`` mode; a weighted column gives its ids under its name
      and float32 weights under ``name + "__weights"`` (padded mode; as
      ``make_dataset``), or one RaggedIds with weights (offsets mode).
    - What a batch is (the same for every batch of a loader, so Keras ``fit``
      and ``torch.compile`` see one structure): ``features`` alone; with
      ``label_key``, ``(features, label)``; and with ``uneven="pad"``, always
      a third item, ``sample_weight`` (float32 ``[B]``: 1.0 for real rows,
      0.0 for padding rows): ``(features, label, sample_weight)``, or
      ``(features, None, sample_weight)`` without a label.

    Arrays may be read-only views of the compiled plan's buffers: copy one
    before writing into it.

    Records are numbered over the sorted files through their index sidecars
    (``FILE.fpidx``; one that is missing or stale is built by a verifying scan
    and saved beside the file when its folder is writable, else kept in
    memory). Each epoch, rank ``r`` takes its contiguous part of the order
    (``0 .. N-1``, or with ``shuffle`` a permutation drawn from
    ``numpy.random.default_rng([seed, epoch])``), evened out by ``uneven``
    (``"pad"``: to ``ceil(N / world_size)`` records with copies of the part's
    first records at sample weight 0 -- every record exactly once, equal steps,
    never a DDP hang; ``"repeat"``: the same at weight 1; ``"drop"``: cut to
    ``floor(N / world_size)``), and batch ``b`` of the part goes to worker
    ``b % num_workers`` (torch's DataLoader takes its workers' batches in that
    order, so a rank's stream of batches does not depend on ``num_workers``).
    GZIP / ZLIB files are streamed instead (see :mod:`featurepipe.data._loader`).
    One iterator at a time per loader.

    Args:
        data: a path, glob, ``PREFIX@N`` or a list of them
            (:func:`featurepipe.tfrecord.expand_paths`); files are sorted.
        columns: resolved :class:`~featurepipe.columns.ColumnSpecs`, a list of
            specs, or the path of a columns JSON file (as ``featurepipe
            columns`` writes; vocabulary files relative to the working directory).
        batch_size: records per batch.
        label_key: the label feature, or `None`. Defaults to `None`.
        schema: a :class:`~featurepipe.example.Schema` or its path: gives how
            each feature is decoded (as ``make_dataset(schema=...)``). `None`:
            from the columns (as ``make_dataset(columns=...)``), the label's
            kind from the ``PREFIX.schema.json`` beside the shards, else from
            the first records. Defaults to `None`.
        shuffle: shuffle the records each epoch. Defaults to `False`.
        seed: the shuffle seed. Defaults to `0`.
        rank: this process's rank. Defaults to `0`.
        world_size: the number of ranks. Defaults to `1`.
        worker: this worker of the rank (e.g. ``torch.utils.data.get_worker_info().id``).
            Defaults to `0`.
        num_workers: the rank's workers. Defaults to `1`.
        uneven: ``"pad"``, ``"drop"`` or ``"repeat"``: how ranks are given
            equal numbers of records. Defaults to `"pad"`.
        drop_remainder: drop each rank's last, shorter batch. Defaults to `False`.
        ids: ``"padded"`` or ``"offsets"``. Defaults to `"padded"`.
        on_corrupt: ``"raise"`` (the error names the file, the record and its
            byte offset) or ``"skip"`` (damaged records are left out of their
            batch and listed in :attr:`corruption_report`). Defaults to `"raise"`.
        native: `None`: the compiled plan when it is built and supports the
            columns, else pure Python; `True`: require it; `False`: pure Python.
            Defaults to `None`.
        shuffle_buffer: compressed files only: how far ``shuffle`` moves a
            record. Defaults to `10_000`.
        threads: native threads computing the next batches ahead (compiled
            plan only; `0`: in the iterating thread, e.g. inside each of many
            DataLoader worker processes). Defaults to `None` (1, or 2 on more
            than 4 cores).

    Raises:
        ConfigError: for bad arguments, files that match nothing, unresolved
            columns, or a label whose kind the data does not tell.
        CorruptRecordError: a file whose index had to be built is damaged
            (``on_corrupt="raise"``).

    Examples:
        >>> import os, tempfile
        >>> from featurepipe.columns import HashedColumn, NumericColumn
        >>> from featurepipe.example import encode_example
        >>> from featurepipe.tfrecord import write_records
        >>> path = os.path.join(tempfile.mkdtemp(), "train.tfrecord")
        >>> write_records(path, [encode_example({"x": [float(i)], "c": ["a", "b"][i % 2:],
        ...                                      "y": [i % 2]}) for i in range(5)])
        5
        >>> loader = Loader(path, [NumericColumn("x"), HashedColumn("c", 10)], batch_size=2,
        ...                 label_key="y")
        >>> len(loader), loader.num_records
        (3, 5)
        >>> features, label, weight = next(iter(loader))
        >>> features["x"].tolist(), features["c"].tolist(), label.tolist(), weight.tolist()
        ([[0.0], [1.0]], [[9, 2], [2, -1]], [0, 1], [1.0, 1.0])
        >>> [loader.record_ids(epoch=0, b=b).tolist() for b in range(len(loader))]
        [[0, 1], [2, 3], [4]]
    """

    def __init__(
        self,
        data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        columns: ColumnSpecs | Sequence[ColumnSpec] | str | os.PathLike[str],
        *,
        batch_size: int,
        label_key: str | None = None,
        schema: Schema | str | os.PathLike[str] | None = None,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        worker: int = 0,
        num_workers: int = 1,
        uneven: str = "pad",
        drop_remainder: bool = False,
        ids: str = "padded",
        on_corrupt: str = "raise",
        native: bool | None = None,
        shuffle_buffer: int = 10_000,
        threads: int | None = None,
    ) -> None:
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.seed = _check_int("seed", seed, 0)
        self.shuffle_buffer = _check_int("shuffle_buffer", shuffle_buffer, 1)
        self.threads = None if threads is None else _check_int("threads", threads, 0)
        if uneven not in UNEVEN_POLICIES:
            raise ConfigError(
                f"Unknown value for `uneven`. Allowed values are: {UNEVEN_POLICIES}. "
                f"Received: uneven={uneven!r}"
            )
        if ids not in ("padded", "offsets"):
            raise ConfigError(
                "Unknown value for `ids`. Allowed values are: ('padded', 'offsets'). "
                f"Received: ids={ids!r}"
            )
        self.shuffle = bool(shuffle)
        self.uneven = uneven
        self.drop_remainder = bool(drop_remainder)
        self.ids = ids
        self.label_key = label_key
        self._set_shard(rank, world_size, worker, num_workers)
        try:
            files = sorted(set(expand_paths(data)))
        except ConfigError as e:
            raise ConfigError(f"No files for the loader: {e}") from None
        if not files:
            raise ConfigError(f"No files match {data!r}.")
        self._records = Records(files, on_corrupt)
        self._plan = self._make_plan()
        self._transform = ColumnTransform(
            columns, label_key=label_key, schema=schema, ids=ids, native=native, files=files
        )
        self._computer = self._transform.computer
        self._epoch = 0
        self._position = 0
        self._from_state = False
        # (epoch, this rank's record numbers, their weights, the epoch's file order)
        self._cache: tuple[int, Any, Any, Any] | None = None

    def _set_shard(self, rank: int, world_size: int, worker: int, num_workers: int) -> None:
        world_size = _check_int("world_size", world_size, 1)
        num_workers = _check_int("num_workers", num_workers, 1)
        rank = _check_int("rank", rank, 0)
        worker = _check_int("worker", worker, 0)
        if rank >= world_size:
            raise ConfigError(
                f"`rank` must be in [0, world_size). Received: rank={rank}, world_size={world_size}"
            )
        if worker >= num_workers:
            raise ConfigError(
                f"`worker` must be in [0, num_workers). Received: worker={worker}, "
                f"num_workers={num_workers}"
            )
        self.rank, self.world_size = rank, world_size
        self.worker, self.num_workers = worker, num_workers

    def _make_plan(self) -> EpochPlan:
        return EpochPlan(
            len(self._records),
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            seed=self.seed,
            rank=self.rank,
            world_size=self.world_size,
            uneven=self.uneven,
            drop_remainder=self.drop_remainder,
        )

    # -- public -------------------------------------------------------------------------------

    @property
    def num_records(self) -> int:
        """Records in all files (one epoch, before sharding)."""
        return len(self._records)

    @property
    def files(self) -> list[str]:
        """The files, in the order that numbers their records."""
        return list(self._records.paths)

    @property
    def feature_names(self) -> list[str]:
        """The keys of a batch's ``features``, in order."""
        return self._computer.keys

    @property
    def epoch(self) -> int:
        """The current epoch (see :meth:`set_epoch`)."""
        return self._epoch

    @property
    def native(self) -> bool:
        """Whether batches are computed by the compiled plan (else pure Python)."""
        return self._computer.plan is not None

    @property
    def corruption_report(self) -> Any:
        """What ``on_corrupt="skip"`` skipped (a :class:`featurepipe.tfrecord.CorruptionReport`)."""
        return self._records.report

    @property
    def plan(self) -> EpochPlan:
        """How this rank's epochs are cut (records read by number; see :class:`EpochPlan`)."""
        return self._plan

    def record_ids(self, epoch: int, b: int) -> np.ndarray[Any, Any]:
        """The record numbers of this rank's batch ``b`` of epoch ``epoch`` (whatever the
        worker: batch ``b`` is worker ``b % num_workers``'s), in the batch's order.

        With ``uneven="pad"`` the batch's last records may be padding (sample
        weight 0); with ``on_corrupt="skip"`` a damaged one is left out of the
        batch itself.

        Raises:
            IndexError: ``b`` is not in ``[0, plan.num_batches)``.
        """
        epoch = _check_int("epoch", epoch, 0)
        if not 0 <= b < self._plan.num_batches:
            raise IndexError(f"batch {b} out of range [0, {self._plan.num_batches})")
        return self._sequence(epoch)[0][self._plan.batch_rows(b)]

    @property
    def column_transform(self) -> ColumnTransform:
        """The loader's column computation on its own (see :meth:`transform_records`)."""
        return self._transform

    def transform_records(self, records: Sequence[bytes]) -> Any:
        """The column outputs of given serialized records, as one batch.

        The same computation as the loader's batches (compiled plan or pure
        Python, ``ids`` mode), on records read elsewhere (e.g. a
        :class:`~featurepipe.data.RecordSource` under grain).

        Returns:
            ``features``, or ``(features, label)`` with a ``label_key`` (no
            sample weight: these are all real rows).

        Raises:
            DataError: a record the columns cannot read (``record`` is its
                position in ``records``).
        """
        return self._transform(records)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (from its first batch); the shuffle depends on ``(seed, epoch)``.

        Call it with the same value on every rank before each epoch, as
        ``DistributedSampler.set_epoch``. Without it every pass repeats the
        same epoch.
        """
        self._epoch = _check_int("epoch", epoch, 0)
        self._position = 0
        self._from_state = False

    def __len__(self) -> int:
        """Batches this ``(rank, worker)`` yields per epoch."""
        return len(self._plan.worker_batches(self.worker, self.num_workers))

    def __iter__(self) -> Iterator[Any]:
        """The batches of the current epoch, from the current position."""
        nb = self._plan.num_batches
        start = self._position
        if start >= nb and not self._from_state:
            start = 0  # a new pass over the same epoch
        self._from_state = False
        self._position = start
        mine = list(self._plan.worker_batches(self.worker, self.num_workers, start))
        seq, weights, files = self._sequence(self._epoch)
        if self._records.random_access:
            raws = self._raw_indexed(mine, seq, weights)
        else:
            raws = self._raw_streamed(mine, seq, weights, files)
        for b, batch in self._computed(raws):
            self._position = b + 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """Where the loader is: JSON-serializable, for :meth:`load_state_dict`.

        ``batches`` counts the batches of this rank's epoch stream already
        consumed (in torch's DataLoader, with its workers' batches taken in
        turn: every batch before the last one yielded). It does not depend on
        ``num_workers`` or ``rank``, so a state can be loaded into a loader
        with other workers.

        Examples:
            >>> import json, os, tempfile
            >>> from featurepipe.columns import NumericColumn
            >>> from featurepipe.example import encode_example
            >>> from featurepipe.tfrecord import write_records
            >>> path = os.path.join(tempfile.mkdtemp(), "x.tfrecord")
            >>> write_records(path, [encode_example({"x": [float(i)]}) for i in range(10)])
            10
            >>> loader = Loader(path, [NumericColumn("x")], batch_size=2, shuffle=True,
            ...                 uneven="drop")
            >>> loader.set_epoch(3)
            >>> it = iter(loader)
            >>> first = [next(it)["x"].ravel().tolist() for _ in range(2)]
            >>> state = json.loads(json.dumps(loader.state_dict()))
            >>> state["epoch"], state["batches"]
            (3, 2)
            >>> resumed = Loader(path, [NumericColumn("x")], batch_size=2, shuffle=True,
            ...                  uneven="drop")
            >>> resumed.load_state_dict(state)
            >>> rest = [b["x"].ravel().tolist() for b in resumed]
            >>> loader.set_epoch(3)
            >>> first + rest == [b["x"].ravel().tolist() for b in loader]
            True
        """
        return {
            "format": _STATE_FORMAT,
            "format_version": _STATE_VERSION,
            "epoch": self._epoch,
            "batches": self._position,
            "seed": self.seed,
            "fingerprint": self._fingerprint(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next iteration yields exactly the batches of that epoch not yet consumed.

        Raises:
            ConfigError: a state of another loader configuration (files,
                batch size, world size, shuffle, seed, ``uneven``, ...).
        """
        if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
            raise ConfigError("Not a featurepipe.data.Loader state (see Loader.state_dict).")
        if state.get("seed") != self.seed or state.get("fingerprint") != self._fingerprint():
            raise ConfigError(
                "This state comes from a loader with other data or settings (files, record "
                "counts, batch_size, world_size, shuffle, seed, uneven, drop_remainder); build "
                "the loader as it was to resume."
            )
        self._epoch = _check_int("epoch", state["epoch"], 0)
        self._position = _check_int("batches", state["batches"], 0)
        self._from_state = True

    def with_shard(
        self,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        worker: int | None = None,
        num_workers: int | None = None,
    ) -> Loader:
        """A copy reading another shard (e.g. in a torch DataLoader worker), at the same
        epoch and position.

        Examples:
            >>> import os, tempfile
            >>> from featurepipe.columns import NumericColumn
            >>> from featurepipe.example import encode_example
            >>> from featurepipe.tfrecord import write_records
            >>> path = os.path.join(tempfile.mkdtemp(), "x.tfrecord")
            >>> write_records(path, [encode_example({"x": [float(i)]}) for i in range(7)])
            7
            >>> loader = Loader(path, [NumericColumn("x")], batch_size=2, world_size=2)
            >>> for rank in range(2):
            ...     shard = loader.with_shard(rank=rank)
            ...     print(rank, len(shard), [(f["x"].ravel().tolist(), w.tolist())
            ...                              for f, _, w in shard])
            0 2 [([0.0, 1.0], [1.0, 1.0]), ([2.0, 0.0], [1.0, 0.0])]
            1 2 [([3.0, 4.0], [1.0, 1.0]), ([5.0, 6.0], [1.0, 1.0])]
        """
        out = copy.copy(self)
        out._set_shard(
            self.rank if rank is None else rank,
            self.world_size if world_size is None else world_size,
            self.worker if worker is None else worker,
            self.num_workers if num_workers is None else num_workers,
        )
        out._plan = out._make_plan()
        out._cache = None
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = None
        return state

    # -- the epoch ----------------------------------------------------------------------------

    def _fingerprint(self) -> str:
        config = {
            "files": [os.path.basename(p) for p in self._records.paths],
            "counts": list(self._records.counts),
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "shuffle": self.shuffle,
            "uneven": self.uneven,
            "drop_remainder": self.drop_remainder,
            "stream": not self._records.random_access,
            "shuffle_buffer": self.shuffle_buffer if not self._records.random_access else None,
        }
        return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]

    def _sequence(
        self, epoch: int
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """This rank's record numbers for the epoch, their sample weights, and the epoch's
        file order (streamed files)."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1], self._cache[2], self._cache[3]
        plan = self._plan
        files = np.arange(len(self._records.paths))
        if self._records.random_access:
            seq, weights = plan.records(epoch)
        else:
            # streamed: the files in a seeded order each epoch, their records in order
            n, r = self.num_records, self.rank
            lo, hi = plan.bounds
            starts = self._records.starts
            if self.shuffle:
                files = np.random.default_rng([self.seed, epoch]).permutation(len(files))
                order = np.concatenate([np.arange(starts[f], starts[f + 1]) for f in files]).astype(
                    np.int64
                )
            else:
                order = np.arange(n, dtype=np.int64)
            part = order[lo:hi]
            if self.shuffle and len(part) > 1:
                rng = np.random.default_rng([self.seed, epoch, r])
                keys = np.arange(len(part)) + rng.random(len(part)) * self.shuffle_buffer
                part = part[np.argsort(keys, kind="stable")]
            seq, weights = plan.even(part, order)
        self._cache = (epoch, seq, weights, files)
        return seq, weights, files

    def _raw_indexed(
        self, mine: list[int], seq: np.ndarray[Any, Any], weights: np.ndarray[Any, Any]
    ) -> Iterator[_Raw]:
        for b in mine:
            rows = self._plan.batch_rows(b)
            payloads, paths, records, offsets = self._records.read(seq[rows])
            yield _raw(b, payloads, paths, records, offsets, weights[rows])

    def _raw_streamed(
        self,
        mine: list[int],
        seq: np.ndarray[Any, Any],
        weights: np.ndarray[Any, Any],
        files: np.ndarray[Any, Any],
    ) -> Iterator[_Raw]:
        if not mine:
            return
        users: dict[int, list[int]] = {}  # record number -> my batches (positions) needing it
        missing: list[int] = []
        for k, b in enumerate(mine):
            ids = set(seq[self._plan.batch_rows(b)].tolist())
            missing.append(len(ids))
            for g in ids:
                users.setdefault(g, []).append(k)
        # where each record is in the epoch's stream: its file's place in the file order
        counts = np.asarray(self._records.counts, dtype=np.int64)
        first = np.zeros(len(files), dtype=np.int64)
        np.cumsum(counts[files][:-1], out=first[1:])
        place = np.empty(len(files), dtype=np.int64)
        place[files] = first
        needed = np.fromiter(users, dtype=np.int64, count=len(users))
        f_of, local = self._records.locate(needed)
        positions = place[f_of] + local
        lo, hi = int(positions.min()), int(positions.max()) + 1
        got: dict[int, tuple[bytes, str, int, int]] = {}
        left = {g: len(ks) for g, ks in users.items()}

        def emit(k: int) -> _Raw:
            rows = self._plan.batch_rows(mine[k])
            ids = seq[rows].tolist()
            parts = [got.get(g) for g in ids]
            for g in set(ids):
                left[g] -= 1
                if left[g] == 0:
                    got.pop(g, None)
            payloads = [p[0] if p is not None else None for p in parts]
            paths = [p[1] if p is not None else "" for p in parts]
            records = [p[2] if p is not None else -1 for p in parts]
            offsets = [p[3] if p is not None else -1 for p in parts]
            return _raw(mine[k], payloads, paths, records, offsets, weights[rows])

        k = 0  # the next of my batches to yield
        for g, data, path, index, offset in self._records.stream(lo, hi, files.tolist()):
            ks = users.get(g)
            if ks is None:
                continue
            got[g] = (data, path, index, offset)
            for j in ks:
                missing[j] -= 1
            while k < len(mine) and missing[k] == 0:
                yield emit(k)
                k += 1
        while k < len(mine):  # records the stream skipped as damaged
            yield emit(k)
            k += 1

    def _computed(self, raws: Iterator[_Raw]) -> Iterator[tuple[int, Any]]:
        """The batches of ``raws``, computed inline, or ahead on the compiled runner's
        threads (the C work of the next batches runs without the GIL while this
        thread reads records and hands batches over; results come out in order)."""
        computer = self._computer
        plan = computer.plan
        runner_cls = getattr(_speedups, "ColumnsRunner", None)
        threads = _THREADS if self.threads is None else self.threads
        if plan is None or runner_cls is None or threads < 1:
            for raw in raws:
                yield raw.b, self._batch(raw, computer.compute(raw.records, raw.where))
            return
        runner = runner_cls(plan.handle, threads)
        error: BaseException | None = None
        try:
            ahead: collections.deque[tuple[_Raw, bool]] = collections.deque()

            def take() -> tuple[int, Any]:
                raw, submitted = ahead.popleft()
                if not submitted:
                    return raw.b, self._batch(raw, computer.compute(raw.records, raw.where))
                arrays = plan.arrays(runner.take(), len(raw.records))
                return raw.b, self._batch(raw, computer.finish(raw.records, arrays, raw.where))

            while True:
                try:
                    raw = next(raws)
                except StopIteration:
                    break
                except Exception as e:  # damage: first every batch before it
                    error = e
                    break
                submit = bool(raw.records)
                if submit:
                    runner.submit([raw.records])
                ahead.append((raw, submit))
                if len(ahead) > _AHEAD:
                    yield take()
            while ahead:
                yield take()
        finally:
            runner.close()
        if error is not None:
            raise error

    def _batch(self, raw: _Raw, computed: tuple[dict[str, Any], Any]) -> Any:
        features, label = computed
        if self.uneven == "pad":
            return features, label, raw.weights
        if self.label_key is not None:
            return features, label
        return features


class _Raw(NamedTuple):
    """A batch's records, where they come from and their sample weights."""

    b: int
    records: list[bytes]
    where: Where
    weights: np.ndarray[Any, Any]


def _raw(
    b: int,
    payloads: list[bytes | None],
    paths: list[str],
    records: list[int],
    offsets: list[int],
    weights: np.ndarray[Any, Any],
) -> _Raw:
    if any(p is None for p in payloads):  # damaged records skipped (on_corrupt="skip")
        keep = [i for i, p in enumerate(payloads) if p is not None]
        payloads = [payloads[i] for i in keep]
        paths = [paths[i] for i in keep]
        records = [records[i] for i in keep]
        offsets = [offsets[i] for i in keep]
        weights = weights[keep]
    recs: list[bytes] = payloads  # type: ignore[assignment]
    return _Raw(b, recs, Where(paths, records, offsets), np.array(weights, dtype=np.float32))
