"""``BatchSource``: whole batches of column outputs as grain's random-access elements."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from featurepipe.columns import ColumnSpec, ColumnSpecs
from featurepipe.data import Loader
from featurepipe.errors import ConfigError
from featurepipe.example import Schema
from featurepipe.grain._source import TFRecordDataSource

__all__ = ["BatchSource"]


class BatchSource:
    """Batches of column outputs by number: a grain data source whose elements are whole batches.

    The fast path for grain: element ``k`` is batch ``k % B`` of epoch
    ``k // B`` (``B`` batches per epoch), the records of epoch ``e`` taken in the
    order ``numpy.random.default_rng([seed, e]).permutation(N)`` (as
    :class:`featurepipe.data.Loader` and :class:`RecordSampler` order them),
    read in one call and computed in one compiled call. Use it with a plain,
    unshuffled ``grain.samplers.IndexSampler(len(source), num_epochs=1,
    shard_options=grain.sharding.NoSharding())`` and no batch operation:
    grain's per-element work (sampler metadata, records, stats; tens of
    microseconds) is then paid once per batch, not per record, while worker
    processes and checkpointing stay grain's. Epochs are unrolled into the
    source (``num_epochs``), so each epoch has its own order.

    Shard here, not in grain (grain would split the unrolled epochs into
    contiguous blocks): shard ``s`` of ``W`` reads the part
    ``order[N*s//W : N*(s+1)//W]`` of every epoch -- disjoint, covering, other
    records every epoch -- evened out as :class:`RecordSampler` does (a
    shorter part repeats its first record), so every shard has the same
    number of batches.

    Args:
        data: a path, glob, ``PREFIX@N``, a list of them, or a :class:`TFRecordDataSource`.
        columns: resolved column specs, a list of specs, or a columns JSON path.
        batch_size: records per batch.
        label_key: the label feature, or `None`. Defaults to `None`.
        schema: a :class:`~featurepipe.example.Schema` or its path. Defaults to `None`.
        ids: ``"padded"`` or ``"offsets"``. Defaults to `"padded"`.
        shuffle: shuffle the records each epoch. Defaults to `True`.
        seed: the shuffle seed. Defaults to `0`.
        num_epochs: the epochs the source holds. Defaults to `1`.
        drop_remainder: drop each epoch's last, shorter batch. Defaults to `False`.
        native: as :class:`featurepipe.data.Loader`. Defaults to `None`.
        shard_index: this shard. Defaults to `0`.
        shard_count: the shards (e.g. ``jax.process_count()``). Defaults to `1`.

    Raises:
        ConfigError: bad arguments.

    Examples:
        >>> import os, tempfile
        >>> from featurepipe.columns import NumericColumn
        >>> from featurepipe.example import encode_example
        >>> from featurepipe.tfrecord import write_records
        >>> path = os.path.join(tempfile.mkdtemp(), "train.tfrecord")
        >>> write_records(path, [encode_example({"x": [float(i)], "y": [i]}) for i in range(5)])
        5
        >>> source = BatchSource(path, [NumericColumn("x")], batch_size=2, label_key="y",
        ...                      seed=1, num_epochs=2)
        >>> len(source), [source[k][1].tolist() for k in range(len(source))]
        (6, [[4, 0], [1, 2], [3], [1, 4], [0, 3], [2]])
    """

    def __init__(
        self,
        data: TFRecordDataSource | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        columns: ColumnSpecs | Sequence[ColumnSpec] | str | os.PathLike[str],
        *,
        batch_size: int,
        label_key: str | None = None,
        schema: Schema | str | os.PathLike[str] | None = None,
        ids: str = "padded",
        shuffle: bool = True,
        seed: int = 0,
        num_epochs: int = 1,
        drop_remainder: bool = False,
        native: bool | None = None,
        shard_index: int = 0,
        shard_count: int = 1,
    ) -> None:
        self._source = data if isinstance(data, TFRecordDataSource) else TFRecordDataSource(data)
        self._loader = Loader(
            self._source.files,
            columns,
            batch_size=batch_size,
            label_key=label_key,
            schema=schema,
            ids=ids,
            native=native,
            shuffle=shuffle,
            seed=seed,
            rank=shard_index,
            world_size=shard_count,
            uneven="repeat",
            drop_remainder=drop_remainder,
        )
        if not isinstance(num_epochs, int) or isinstance(num_epochs, bool) or num_epochs < 1:
            raise ConfigError(f"`num_epochs` must be an integer >= 1. Received: {num_epochs!r}")
        self.batch_size = self._loader.batch_size
        self.seed = self._loader.seed
        self.shuffle = self._loader.shuffle
        self.num_epochs = num_epochs
        self.drop_remainder = self._loader.drop_remainder
        self.shard_index, self.shard_count = self._loader.rank, self._loader.world_size
        n = len(self._source)
        if n < self.shard_count:
            raise ConfigError(f"{n} records cannot be split into {self.shard_count} shards.")
        # the Loader's cut of an epoch (uneven="repeat"), served by number
        plan = self._loader.plan
        self.records_per_shard = plan.records_per_rank
        self.batches_per_epoch = plan.num_batches

    @property
    def feature_names(self) -> list[str]:
        """The keys of a batch's ``features``, in order."""
        return self._loader.feature_names

    def __len__(self) -> int:
        return self.num_epochs * self.batches_per_epoch

    def __repr__(self) -> str:
        return (
            f"BatchSource({self._source!r}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, seed={self.seed}, num_epochs={self.num_epochs}, "
            f"shard={self.shard_index}/{self.shard_count}, "
            f"drop_remainder={self.drop_remainder}, inputs={self.feature_names})"
        )

    def record_ids(self, index: int) -> np.ndarray[Any, Any]:
        """The record numbers of element ``index`` (batch ``index % B`` of epoch ``index // B``)."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range [0, {len(self)})")
        epoch, b = divmod(int(index), self.batches_per_epoch)
        return self._loader.record_ids(epoch, b)

    def __getitem__(self, index: int) -> Any:
        ids = self.record_ids(index)
        records = self._source._getitems(ids)
        locate = self._source.locate
        return self._loader.column_transform(records, where=lambda row: locate(int(ids[row])))
