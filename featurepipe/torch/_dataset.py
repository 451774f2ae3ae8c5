"""A ``torch.utils.data.IterableDataset`` over ``featurepipe.data.Loader``.

The dataset yields whole batches (use it with ``DataLoader(dataset,
batch_size=None)``). Where it runs decides which part of the data it reads:

* the rank and the world size come from ``torch.distributed`` when a process
  group is initialized, else from torchrun's environment (``RANK``,
  ``WORLD_SIZE``), else they are 0 and 1; they are looked up in the main
  process (when the dataset is pickled for the DataLoader's workers, and on
  ``len``/``iter`` there), since a worker process has no process group;
* the worker comes from ``torch.utils.data.get_worker_info()``.

``featurepipe.data.Loader`` gives worker ``w`` of ``n`` the batches
``b % n == w`` of its rank's stream, so the DataLoader's round-robin over its
workers yields the rank's stream in order, whatever the number of workers (and
of files: a file is not the unit of sharding).

Checkpoints follow torchdata's ``Stateful`` protocol: ``StatefulDataLoader``
(torchdata ``stateful_dataloader/worker.py``) asks each worker's copy of the
dataset for ``state_dict()`` after each batch it fetched, and on resume calls
``load_state_dict`` on a fresh copy in each worker *before* ``iter`` on it.
The dataset's state is therefore the state of the iteration in progress
(epoch, shard, batches yielded, the loader's own state), and ``iter`` resumes
from a loaded state once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import torch
import torch.utils.data

from featurepipe.data import Loader
from featurepipe.errors import ConfigError
from featurepipe.torch._convert import pack_batch, to_torch

STATE_VERSION = 1


class DistributedContext(NamedTuple):
    """Where this process sits in a distributed job.

    Attributes:
        rank: the global rank (the data shard this process reads).
        world_size: how many ranks read the data.
        local_rank: the rank on this machine (picks the device), ``LOCAL_RANK``.
        source: ``"torch.distributed"``, ``"environment"`` or ``"default"``.
    """

    rank: int
    world_size: int
    local_rank: int
    source: str


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(
            f"environment variable {name}={raw!r} is not an integer; torchrun sets "
            f"RANK, WORLD_SIZE and LOCAL_RANK to integers: unset it or fix its value"
        ) from None


def distributed_context() -> DistributedContext:
    """The rank and world size this process reads the data as.

    From ``torch.distributed`` when a process group is initialized; else from
    torchrun's ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``; else rank 0 of 1.

    Raises:
        ConfigError: the environment holds a rank outside ``[0, WORLD_SIZE)``
            or a value that is not an integer.

    Examples:
        >>> ctx = distributed_context()
        >>> 0 <= ctx.rank < ctx.world_size
        True
    """
    local = _env_int("LOCAL_RANK")
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        return DistributedContext(
            rank, world, rank if local is None else local, "torch.distributed"
        )
    env_rank, env_world = _env_int("RANK"), _env_int("WORLD_SIZE")
    if env_rank is None and env_world is None:
        return DistributedContext(0, 1, 0 if local is None else local, "default")
    rank = 0 if env_rank is None else env_rank
    world = 1 if env_world is None else env_world
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(
            f"environment RANK={rank} WORLD_SIZE={world}: the rank must lie in "
            f"[0, WORLD_SIZE) and WORLD_SIZE be at least 1 (as torchrun sets them)"
        )
    return DistributedContext(rank, world, rank if local is None else local, "environment")


class FeatureDataset(torch.utils.data.IterableDataset[Any]):
    """Batches of model inputs from TFRecord files, for ``torch.utils.data.DataLoader``.

    Build it with the arguments of ``featurepipe.data.Loader`` (or
    `FeatureDataset.from_loader`) and use it with ``batch_size=None``::

        ds = FeatureDataset(paths, columns, batch_size=1024, label_key="label", shuffle=True)
        dl = DataLoader(ds, batch_size=None, num_workers=4, pin_memory=True)
        for epoch in range(epochs):
            ds.set_epoch(epoch)
            for features, label, weight in dl:
                ...

    Each batch is the loader's batch with numpy arrays turned into tensors
    without a copy: a dict ``name -> tensor`` (float32 ``[B, size]`` numbers,
    int64 ids), ids in ``"offsets"`` mode as `RaggedTensors` (for
    ``nn.EmbeddingBag``); the loader's structure is kept: under
    ``uneven="pad"`` (the default: every rank takes the same number of steps)
    ``(features, label, sample_weight)`` with weight 0 on padding rows (label
    `None` without ``label_key``); else ``(features, label)`` or ``features``.

    Call `set_epoch` before each epoch (in the main process; the DataLoader
    copies the dataset into its workers when an epoch starts, so keep
    ``persistent_workers=False``, the default). For checkpoints use
    torchdata's ``StatefulDataLoader``: its ``state_dict()`` holds each
    worker's `state_dict` of this dataset, and a new loader given it by
    ``load_state_dict`` yields exactly the batches the old one had not.

    Args:
        data: what ``featurepipe.data.Loader`` reads (paths, a glob, ...).
        columns: the column specs (resolved).
        batch_size: examples per batch.
        label_key: the label feature, or `None`.
        schema: passed to the loader.
        shuffle: shuffle records (per epoch, from ``seed``).
        seed: the shuffle seed (the same on every rank).
        uneven: what ranks do with an uneven split: ``"pad"`` (weight-0 rows),
            ``"drop"`` or ``"repeat"``.
        drop_remainder: drop a last partial batch.
        ids: ``"offsets"`` (default here: `RaggedTensors` for
            ``nn.EmbeddingBag``) or ``"padded"`` (int64 ``[B, L]``, -1 padding).
        on_corrupt: passed to the loader.
        native: passed to the loader.
        rank: this process's rank; `None`: from `distributed_context`.
        world_size: the number of ranks; `None`: from `distributed_context`.

    Examples:
        >>> import numpy as np, tempfile, os
        >>> from featurepipe.columns import NumericColumn
        >>> from featurepipe.example import encode_example
        >>> from featurepipe.tfrecord import write_records
        >>> path = os.path.join(tempfile.mkdtemp(), "x.tfrecord")
        >>> _ = write_records(path, [encode_example({"x": float(i)}) for i in range(5)])
        >>> ds = FeatureDataset(path, [NumericColumn("x")], batch_size=2)
        >>> loader = torch.utils.data.DataLoader(ds, batch_size=None)
        >>> [(f["x"].flatten().tolist(), w.tolist()) for f, _, w in loader]
        [([0.0, 1.0], [1.0, 1.0]), ([2.0, 3.0], [1.0, 1.0]), ([4.0], [1.0])]
    """

    def __init__(
        self,
        data: Any,
        columns: Any,
        *,
        batch_size: int,
        label_key: str | None = None,
        schema: Any = None,
        shuffle: bool = False,
        seed: int = 0,
        uneven: str = "pad",
        drop_remainder: bool = False,
        ids: str = "offsets",
        on_corrupt: Any = "raise",
        native: bool | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        loader = Loader(
            data,
            columns,
            batch_size=batch_size,
            label_key=label_key,
            schema=schema,
            shuffle=shuffle,
            seed=seed,
            uneven=uneven,
            drop_remainder=drop_remainder,
            ids=ids,
            on_corrupt=on_corrupt,
            native=native,
        )
        self._setup(loader, rank, world_size)

    @classmethod
    def from_loader(
        cls, loader: Loader, *, rank: int | None = None, world_size: int | None = None
    ) -> FeatureDataset:
        """The dataset over a configured loader (its shard is replaced per rank and worker).

        Args:
            loader: a ``featurepipe.data.Loader``.
            rank: this process's rank; `None`: from `distributed_context`.
            world_size: the number of ranks; `None`: from `distributed_context`.
        """
        self = cls.__new__(cls)
        self._setup(loader, rank, world_size)
        return self

    def _setup(self, loader: Loader, rank: int | None, world_size: int | None) -> None:
        if (rank is None) != (world_size is None):
            raise ConfigError(
                "FeatureDataset: pass both rank and world_size, or neither (then they "
                "come from torch.distributed or torchrun's RANK / WORLD_SIZE)"
            )
        if rank is not None and world_size is not None and not 0 <= rank < world_size:
            raise ConfigError(f"FeatureDataset: rank={rank} is not in [0, world_size={world_size})")
        self._loader = loader
        self._explicit = None if rank is None or world_size is None else (rank, world_size)
        self._resolved: tuple[int, int] | None = None
        self._epoch = 0
        self._pending: dict[str, Any] | None = None
        self._shard: dict[str, int] | None = None
        self._current: Loader | None = None
        self._yielded = 0

    # -- where this copy runs -------------------------------------------------

    def _rank_world(self) -> tuple[int, int]:
        if self._explicit is not None:
            return self._explicit
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        if self._resolved is not None:  # looked up in the main process, before pickling
            return self._resolved
        ctx = distributed_context()
        return ctx.rank, ctx.world_size

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        # Pickled in the main process for a DataLoader worker (spawn /
        # forkserver), which has no process group: the rank travels with it.
        state["_resolved"] = self._rank_world()
        state["_current"] = None
        return state

    @property
    def rank(self) -> int:
        """The rank whose share of the data this dataset reads."""
        return self._rank_world()[0]

    @property
    def world_size(self) -> int:
        """The number of ranks the data is split between."""
        return self._rank_world()[1]

    @property
    def epoch(self) -> int:
        """The epoch set by `set_epoch` (or restored by `load_state_dict`)."""
        return self._epoch

    @property
    def loader(self) -> Loader:
        """The ``featurepipe.data.Loader`` this dataset shards."""
        return self._loader

    def set_epoch(self, epoch: int) -> None:
        """Use the shuffle order of ``epoch`` for the next iteration (in the main process)."""
        if epoch < 0:
            raise ConfigError(f"FeatureDataset.set_epoch: epoch must be >= 0, got {epoch}")
        self._epoch = int(epoch)

    def __len__(self) -> int:
        """Batches one epoch yields on this rank (all DataLoader workers together)."""
        rank, world = self._rank_world()
        return len(self._loader.with_shard(rank=rank, world_size=world, worker=0, num_workers=1))

    # -- iteration ------------------------------------------------------------

    def _shard_here(self) -> dict[str, int]:
        info = torch.utils.data.get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        rank, world = self._rank_world()
        return {"rank": rank, "world_size": world, "worker": worker, "num_workers": num_workers}

    def __iter__(self) -> Iterator[Any]:
        shard = self._shard_here()
        loader = self._loader.with_shard(**shard)
        pending, self._pending = self._pending, None
        yielded = 0
        if pending is not None:
            self._check_resume(pending, shard)
            self._epoch = int(pending["epoch"])
            loader.set_epoch(self._epoch)
            yielded = int(pending["batches"])
            if pending.get("loader") is not None:
                loader.load_state_dict(pending["loader"])
        else:
            loader.set_epoch(self._epoch)
        self._shard = shard
        self._current = loader
        self._yielded = yielded
        return self._batches(loader)

    def _batches(self, loader: Loader) -> Iterator[Any]:
        # In a DataLoader worker a batch travels to the main process as one buffer
        # (PackedBatch: unpickled there into the batch of tensors); in the
        # main process the tensors view the loader's arrays.
        convert = pack_batch if torch.utils.data.get_worker_info() is not None else to_torch
        for batch in loader:
            # counted before the batch leaves: StatefulDataLoader reads
            # state_dict() right after the fetch, with the generator paused here
            self._yielded += 1
            yield convert(batch)

    def _check_resume(self, state: Mapping[str, Any], shard: Mapping[str, int]) -> None:
        saved = state.get("shard") or {}
        diff = [
            f"{k}: saved {saved.get(k)}, now {v}" for k, v in shard.items() if saved.get(k) != v
        ]
        if diff:
            raise ConfigError(
                "FeatureDataset.load_state_dict: the checkpoint was taken with another "
                f"split of the data ({'; '.join(diff)}); resume with the same world size "
                "and the same DataLoader num_workers"
            )

    # -- checkpoints ----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The position of this copy's iteration (JSON-able).

        In a DataLoader worker: that worker's share after the batches it has
        fetched. Before any iteration: the start of the current epoch.
        """
        if self._pending is not None:
            return dict(self._pending)
        return {
            "version": STATE_VERSION,
            "epoch": self._epoch,
            "shard": dict(self._shard) if self._shard is not None else None,
            "batches": self._yielded if self._current is not None else 0,
            "loader": self._current.state_dict() if self._current is not None else None,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from `state_dict` at the next ``iter`` (one iteration only).

        Raises:
            ConfigError: the state is not one this dataset wrote.
        """
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
            raise ConfigError(
                "FeatureDataset.load_state_dict: not a FeatureDataset state (expected a dict "
                f"with version={STATE_VERSION}, from FeatureDataset.state_dict())"
            )
        self._epoch = int(state["epoch"])
        if state.get("shard") is None:  # saved before any batch: start the epoch afresh
            self._pending = None
            return
        self._pending = dict(state)
