"""``EpochPlan``: which records a rank reads in an epoch, batch by batch -- the arithmetic alone.

The one place that cuts an epoch of records read by number (see
:mod:`featurepipe.data._loader`): :class:`~featurepipe.data.Loader` iterates
it, :class:`featurepipe.grain.BatchSource` and
:class:`featurepipe.grain.RecordSampler` serve it by number.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from featurepipe.errors import ConfigError

__all__ = ["UNEVEN_POLICIES", "EpochPlan", "check_int"]

#: The values of ``uneven``.
UNEVEN_POLICIES = ("pad", "drop", "repeat")


def check_int(name: str, value: Any, low: int) -> int:
    """``value`` as an int; a ConfigError naming ``name`` unless it is an integer >= ``low``."""
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
        raise ConfigError(f"`{name}` must be an integer >= {low}. Received: {name}={value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class EpochPlan:
    """How one rank's records of an epoch are chosen and cut into batches, as the Loader does.

    Records are numbered ``0 .. num_records-1``. Epoch ``e``'s order is
    ``0 .. N-1``, or with ``shuffle`` ``numpy.random.default_rng([seed,
    e]).permutation(N)``; rank ``r`` of ``world_size`` takes the contiguous
    part ``order[N*r//W : N*(r+1)//W]``, evened out by ``uneven`` (``"pad"``
    and ``"repeat"``: lengthened to ``ceil(N/W)`` with the part's first records
    again, at sample weight 0 for ``"pad"`` and 1 for ``"repeat"``; ``"drop"``:
    cut to ``floor(N/W)``), and cut into batches of ``batch_size`` (the last one
    shorter, or dropped with ``drop_remainder``); batch ``b`` goes to worker
    ``b % num_workers``. Stateless and picklable: the same numbers wherever it
    is computed, so nothing needs to be communicated.

    Args:
        num_records: the records of an epoch (before sharding).
        batch_size: records per batch. Defaults to `1`.
        shuffle: shuffle the records each epoch. Defaults to `False`.
        seed: the shuffle seed. Defaults to `0`.
        rank: this rank. Defaults to `0`.
        world_size: the ranks. Defaults to `1`.
        uneven: ``"pad"``, ``"drop"`` or ``"repeat"``. Defaults to `"pad"`.
        drop_remainder: drop the rank's last, shorter batch. Defaults to `False`.

    Raises:
        ConfigError: bad arguments.

    Examples:
        >>> plan = EpochPlan(7, batch_size=2, shuffle=True, seed=1, rank=0, world_size=2)
        >>> plan.records_per_rank, plan.num_batches
        (4, 2)
        >>> ids, weights = plan.records(epoch=0)  # 3 records, padded with the first again
        >>> ids.tolist(), weights.tolist()
        ([5, 0, 1, 5], [1.0, 1.0, 1.0, 0.0])
        >>> plan.record_ids(0, 1).tolist(), list(plan.worker_batches(1, num_workers=2))
        ([1, 5], [1])
    """

    num_records: int
    batch_size: int = 1
    shuffle: bool = False
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    uneven: str = "pad"
    drop_remainder: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen
        set_(self, "num_records", check_int("num_records", self.num_records, 0))
        set_(self, "batch_size", check_int("batch_size", self.batch_size, 1))
        set_(self, "seed", check_int("seed", self.seed, 0))
        set_(self, "world_size", check_int("world_size", self.world_size, 1))
        set_(self, "rank", check_int("rank", self.rank, 0))
        set_(self, "shuffle", bool(self.shuffle))
        set_(self, "drop_remainder", bool(self.drop_remainder))
        if self.rank >= self.world_size:
            raise ConfigError(
                f"`rank` must be in [0, world_size). Received: rank={self.rank}, "
                f"world_size={self.world_size}"
            )
        if self.uneven not in UNEVEN_POLICIES:
            raise ConfigError(
                f"Unknown value for `uneven`. Allowed values are: {UNEVEN_POLICIES}. "
                f"Received: uneven={self.uneven!r}"
            )

    @property
    def records_per_rank(self) -> int:
        """Records per rank and epoch, after ``uneven``."""
        n, w = self.num_records, self.world_size
        return n // w if self.uneven == "drop" else -(-n // w)

    @property
    def num_batches(self) -> int:
        """Batches per rank and epoch (all workers of the rank together)."""
        length, b = self.records_per_rank, self.batch_size
        return length // b if self.drop_remainder else -(-length // b)

    @property
    def bounds(self) -> tuple[int, int]:
        """``(lo, hi)``: the rank's contiguous part ``order[lo:hi]`` of an epoch's order."""
        n, w, r = self.num_records, self.world_size, self.rank
        return n * r // w, n * (r + 1) // w

    def order(self, epoch: int) -> np.ndarray[Any, Any]:
        """Epoch ``epoch``'s order of all records (int64): a seeded permutation, or ``0 .. N-1``."""
        if self.shuffle:
            return np.random.default_rng([self.seed, epoch]).permutation(self.num_records)
        return np.arange(self.num_records, dtype=np.int64)

    def even(
        self, part: np.ndarray[Any, Any], order: np.ndarray[Any, Any]
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """The rank's ``part`` of ``order`` evened out by ``uneven``: ``(record ids, weights)``.

        ``order`` gives the records an empty part repeats (those from where the
        part would start, so that empty parts spread over the data).
        """
        length = self.records_per_rank
        weights = np.ones(length, dtype=np.float32)
        if length <= len(part):
            return part[:length], weights
        source = part if len(part) else np.roll(order, -(self.bounds[0] % self.num_records))
        extra = np.resize(source, length - len(part))
        seq = np.concatenate([part, extra]).astype(np.int64)
        if self.uneven == "pad":
            weights[len(part) :] = 0.0
        return seq, weights

    def records(self, epoch: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """The rank's record numbers of epoch ``epoch``, in order, and their sample weights."""
        order = self.order(epoch)
        lo, hi = self.bounds
        return self.even(order[lo:hi], order)

    def batch_rows(self, b: int) -> slice:
        """Where batch ``b`` lies in :meth:`records`' arrays."""
        return slice(b * self.batch_size, min((b + 1) * self.batch_size, self.records_per_rank))

    def record_ids(self, epoch: int, b: int) -> np.ndarray[Any, Any]:
        """The record numbers of the rank's batch ``b`` of epoch ``epoch``.

        Raises:
            IndexError: ``b`` is not in ``[0, num_batches)``.
        """
        if not 0 <= b < self.num_batches:
            raise IndexError(f"batch {b} out of range [0, {self.num_batches})")
        return self.records(epoch)[0][self.batch_rows(b)]

    def worker_batches(self, worker: int, num_workers: int, start: int = 0) -> range:
        """The rank's batches (numbers from ``start`` on) that worker ``worker`` of
        ``num_workers`` computes: those with ``b % num_workers == worker``."""
        first = start + (worker - start) % num_workers
        return range(first, self.num_batches, num_workers)
