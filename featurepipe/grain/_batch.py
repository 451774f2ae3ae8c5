"""``ColumnsBatch``: grain's ``Batch`` whose batch function computes the columns.

Importing this module imports grain (and so JAX, which grain imports);
:mod:`featurepipe.grain` loads it on first use of ``ColumnsBatch``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import grain

from featurepipe.columns import ColumnSpec, ColumnSpecs
from featurepipe.data import Loader, RecordSource
from featurepipe.errors import ConfigError, DataError
from featurepipe.example import Schema
from featurepipe.grain._source import TFRecordDataSource

__all__ = ["ColumnsBatch", "ColumnsFn"]


class ColumnsFn:
    """A batch function: serialized records -> their column outputs, in one compiled call.

    What :class:`ColumnsBatch` hands grain as ``batch_fn``; also usable with
    ``grain.MapDataset.batch(batch_size, batch_fn=...)``. Picklable (the
    compiled plan is built again in each worker process).

    Args:
        loader: the :class:`featurepipe.data.Loader` whose
            ``transform_records`` computes the batch.
        source: the :class:`TFRecordDataSource` the records come from, or
            `None`: a record the columns cannot read is then named by its file,
            record and byte offset (else by its row in the batch).
    """

    def __init__(self, loader: Loader, source: TFRecordDataSource | None = None) -> None:
        self.loader = loader
        self.source = source
        if source is not None:
            # a batch, and the next ones grain may read ahead
            source.track(4 * loader.batch_size)

    def __call__(self, records: Sequence[bytes]) -> Any:
        try:
            return self.loader.transform_records(records)
        except DataError as e:
            row = e.record
            if self.source is None or e.path is not None or row is None:
                raise
            where = self.source.where(records[row]) if 0 <= row < len(records) else None
            if where is None:
                raise
            path, record, offset = where
            raise type(e)(e.detail, path=path, record=record, offset=offset, reason=e.reason) from e

    def __repr__(self) -> str:
        return (
            f"ColumnsFn({len(self.loader.feature_names)} inputs, "
            f"label_key={self.loader.label_key!r}, ids={self.loader.ids!r})"
        )


def _files(data: Any) -> list[str]:
    if isinstance(data, TFRecordDataSource | RecordSource):
        return data.files
    if data is None:
        raise ConfigError(
            "ColumnsBatch needs `data`: the TFRecordDataSource (or its files) the records come "
            "from, which tells how the label is decoded."
        )
    return RecordSource(data).files


class ColumnsBatch(grain.transforms.Batch):  # type: ignore[misc]
    """A grain ``Batch`` operation that turns serialized ``tf.Example`` records into columns.

    Put it in a ``grain.DataLoader``'s ``operations`` after a
    :class:`~featurepipe.grain.TFRecordDataSource`: grain gathers
    ``batch_size`` records (in the sampler's order: global shuffle, sharding,
    workers, checkpointing are grain's) and this computes the columns' model
    inputs of the whole batch at once -- one call of the compiled
    :class:`~featurepipe.columns.ColumnPlan` per batch, not one per record --
    the numbers :meth:`featurepipe.data.Loader.transform_records` (and
    :func:`featurepipe.keras.make_dataset` with ``columns=``) computes:
    ``features``, or ``(features, label)`` with ``label_key`` (see
    :class:`featurepipe.data.Loader` for the arrays; ``ids="offsets"`` gives
    :class:`~featurepipe.data.RaggedIds`).

    Args:
        columns: resolved :class:`~featurepipe.columns.ColumnSpecs`, a list of
            specs, or the path of a columns JSON file.
        batch_size: records per batch.
        data: the :class:`TFRecordDataSource` (or a
            :class:`~featurepipe.data.RecordSource`, or the files) the records
            come from: with no ``schema``, the label's kind comes from the
            ``PREFIX.schema.json`` beside them or their first records. Given
            the ``TFRecordDataSource``, a record the columns cannot read (not an
            Example, a wrong kind or value count) is named by its file, record
            and byte offset.
        label_key: the label feature, or `None`. Defaults to `None`.
        schema: a :class:`~featurepipe.example.Schema` or its path: how each
            feature is decoded. Defaults to `None` (from the columns).
        ids: ``"padded"`` or ``"offsets"``. Defaults to `"padded"`.
        drop_remainder: drop the last, shorter batch of an epoch (of each
            worker). Defaults to `False`.
        native: `None`: the compiled plan when it supports the columns, else
            pure Python; `True`: require it; `False`: pure Python. Defaults to `None`.

    Raises:
        ConfigError: bad arguments, unresolved columns, a label whose kind the
            data does not tell.

    Examples:
        >>> import os, tempfile
        >>> import grain
        >>> from featurepipe.columns import HashedColumn, NumericColumn
        >>> from featurepipe.example import encode_example
        >>> from featurepipe.grain import TFRecordDataSource
        >>> from featurepipe.tfrecord import write_records
        >>> path = os.path.join(tempfile.mkdtemp(), "train.tfrecord")
        >>> write_records(path, [encode_example({"x": [float(i)], "c": ["a", "b"][i % 2:],
        ...                                      "y": [i]}) for i in range(6)])
        6
        >>> source = TFRecordDataSource(path)
        >>> loader = grain.DataLoader(
        ...     data_source=source,
        ...     sampler=grain.samplers.IndexSampler(
        ...         len(source), shuffle=True, seed=1, num_epochs=1,
        ...         shard_options=grain.sharding.NoSharding()),
        ...     operations=[ColumnsBatch([NumericColumn("x"), HashedColumn("c", 10)],
        ...                              batch_size=4, data=source, label_key="y")])
        >>> [sorted(label.tolist()) for features, label in loader]
        [[0, 2, 3, 5], [1, 4]]
        >>> features, label = next(iter(loader))
        >>> features["x"].ravel().tolist() == label.tolist(), features["c"].shape
        (True, (4, 2))
    """

    def __init__(
        self,
        columns: ColumnSpecs | Sequence[ColumnSpec] | str | os.PathLike[str],
        *,
        batch_size: int,
        data: TFRecordDataSource
        | RecordSource
        | str
        | os.PathLike[str]
        | Sequence[str | os.PathLike[str]],
        label_key: str | None = None,
        schema: Schema | str | os.PathLike[str] | None = None,
        ids: str = "padded",
        drop_remainder: bool = False,
        native: bool | None = None,
    ) -> None:
        # Until featurepipe.data has a file-free transform (NOTES-for-data.md), a Loader
        # over the same files gives the decoding (label kind from them) and the computation.
        loader = Loader(
            _files(data),
            columns,
            batch_size=batch_size,
            label_key=label_key,
            schema=schema,
            ids=ids,
            native=native,
            uneven="drop",
        )
        # grain's Batch is a frozen dataclass (google/grain grain/_src/core/transforms.py)
        object.__setattr__(self, "batch_size", loader.batch_size)
        object.__setattr__(self, "drop_remainder", bool(drop_remainder))
        source = data if isinstance(data, TFRecordDataSource) else None
        object.__setattr__(self, "batch_fn", ColumnsFn(loader, source))

    @property
    def feature_names(self) -> list[str]:
        """The keys of a batch's ``features``, in order."""
        names: list[str] = self.batch_fn.loader.feature_names
        return names

    @property
    def native(self) -> bool:
        """Whether batches are computed by the compiled plan (else pure Python)."""
        return bool(self.batch_fn.loader.native)

    def __repr__(self) -> str:
        return (
            f"ColumnsBatch(batch_size={self.batch_size}, drop_remainder={self.drop_remainder}, "
            f"batch_fn={self.batch_fn!r})"
        )
