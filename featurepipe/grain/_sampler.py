"""``RecordSampler``: a grain sampler with a global shuffle per epoch and no per-record RNG."""

from __future__ import annotations

import sys
from typing import Any

import grain
import numpy as np

from featurepipe.data import EpochPlan
from featurepipe.errors import ConfigError

__all__ = ["RecordSampler"]


def _check_int(name: str, value: Any, low: int) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
        raise ConfigError(f"`{name}` must be an integer >= {low}. Received: {name}={value!r}")
    return int(value)


class RecordSampler:
    """A ``grain.DataLoader`` sampler: every record once per epoch, globally shuffled, sharded.

    What ``grain.samplers.IndexSampler`` does for a ``DataLoader``, for
    :class:`~featurepipe.grain.TFRecordDataSource` (or any random-access
    source), cut as :class:`featurepipe.data.Loader` cuts an epoch: epoch ``e``'s
    order is ``numpy.random.default_rng([seed, e]).permutation(num_records)``
    (computed once per epoch, not per record), and shard ``s`` of ``W`` takes
    the contiguous part ``order[N*s//W : N*(s+1)//W]`` -- so each shard sees
    other records every epoch, the shards of an epoch are disjoint and cover
    every record. Parts differ by at most one record; every shard yields the
    same number per epoch: with ``drop_remainder=False`` (the default) a
    shorter part repeats its first record, with ``True`` the longer parts drop
    their last.

    Unlike ``IndexSampler`` it draws no random generator per record (numpy's
    Philox costs tens of microseconds a record): the records' metadata carry
    ``rng=None``, so ``grain.transforms.RandomMap`` operations cannot be used
    with it. Its ``repr`` holds every setting (grain checks it when an
    iterator's state is restored); picklable.

    Args:
        num_records: the records of the source (``len(source)``).
        shard_options: ``grain.sharding.ShardOptions`` (the DataLoader takes
            them from the sampler when it is given none). Defaults to no sharding.
        shuffle: shuffle each epoch. Defaults to `True`.
        seed: the shuffle seed. Defaults to `0`.
        num_epochs: epochs, or `None` for no end. Defaults to `1`.

    Examples:
        >>> import grain
        >>> sampler = RecordSampler(5, seed=3, num_epochs=2)
        >>> [sampler[i].record_key for i in range(10)]
        [4, 2, 1, 3, 0, 1, 4, 0, 2, 3]
        >>> shard = RecordSampler(5, shard_options=grain.sharding.ShardOptions(1, 2), shuffle=False)
        >>> [shard[i].record_key for i in (1, 3, 5)]
        [2, 3, 4]
    """

    def __init__(
        self,
        num_records: int,
        *,
        shard_options: Any = None,
        shuffle: bool = True,
        seed: int = 0,
        num_epochs: int | None = 1,
    ) -> None:
        self.num_records = _check_int("num_records", num_records, 1)
        self.seed = _check_int("seed", seed, 0)
        if num_epochs is not None:
            num_epochs = _check_int("num_epochs", num_epochs, 1)
        self.num_epochs = num_epochs
        self.shuffle = bool(shuffle)
        if shard_options is None:
            shard_options = grain.sharding.NoSharding()
        self._shard_options = shard_options
        w = int(shard_options.shard_count)
        if self.num_records < w:
            raise ConfigError(
                f"{self.num_records} records cannot be split into {w} shards: use fewer shards."
            )
        # records per shard and epoch: every shard the same
        self.per_shard: int = self._plan(0).records_per_rank
        self._cache: tuple[int, int, np.ndarray[Any, Any]] | None = None

    @property
    def shard_options(self) -> Any:
        """The ``grain.sharding.ShardOptions``."""
        return self._shard_options

    def __len__(self) -> int:
        """Sampler indices over all epochs and shards (``sys.maxsize`` without an end)."""
        if self.num_epochs is None:
            return sys.maxsize
        return self.num_epochs * self.per_shard * int(self._shard_options.shard_count)

    def __repr__(self) -> str:
        return (
            f"RecordSampler(num_records={self.num_records}, "
            f"shard_options={self._shard_options!r}, shuffle={self.shuffle}, "
            f"seed={self.seed}, num_epochs={self.num_epochs})"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = None
        return state

    def _plan(self, shard: int) -> EpochPlan:
        # shard `shard`'s epochs, cut as the Loader cuts them: the longer parts cut
        # (drop_remainder) or the shorter ones repeating their first record
        return EpochPlan(
            self.num_records,
            shuffle=self.shuffle,
            seed=self.seed,
            rank=shard,
            world_size=int(self._shard_options.shard_count),
            uneven="drop" if self._shard_options.drop_remainder else "repeat",
        )

    def _part(self, epoch: int, shard: int) -> np.ndarray[Any, Any]:
        cache = self._cache
        if cache is not None and cache[0] == epoch and cache[1] == shard:
            return cache[2]
        part = self._plan(shard).records(epoch)[0]
        self._cache = (epoch, shard, part)
        return part

    def __getitem__(self, index: int) -> Any:
        """The metadata of sampler index ``index``: shard ``index % W``, record ``index // W``.

        (``grain.DataLoader`` asks shard ``s`` for indices ``k * W + s``.)
        """
        if index < 0 or index >= len(self):
            raise IndexError(f"sampler index {index} out of range [0, {len(self)})")
        w = self._shard_options.shard_count
        k, shard = divmod(index, w)
        epoch, pos = divmod(k, self.per_shard)
        part = self._part(epoch, shard)
        key = int(part[pos])
        return grain.RecordMetadata(index=index, record_key=key, rng=None)
