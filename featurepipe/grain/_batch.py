"""``ColumnsBatch``: grain's ``Batch`` whose batch function computes the columns.

Importing this module imports grain (and so JAX, which grain imports);
:mod:`featurepipe.grain` loads it on first use of ``ColumnsBatch``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import grain
import numpy as np

from featurepipe.columns import ColumnSpec, ColumnSpecs
from featurepipe.data import ColumnTransform, Loader, RecordSource
from featurepipe.errors import ConfigError
from featurepipe.example import Schema
from featurepipe.grain._source import TFRecordDataSource

__all__ = ["ColumnsBatch", "ColumnsFn"]

_DEFAULT_BATCH = 256


class ColumnsFn:
    """A batch function: serialized records -> their column outputs, in one compiled call.

    What :class:`ColumnsBatch` hands grain as ``batch_fn``; also usable with
    ``grain.MapDataset.batch(batch_size, batch_fn=...)``. Picklable (the
    compiled plan is built again in each worker process).

    Args:
        transform: the :class:`featurepipe.data.ColumnTransform` that computes
            the batch, or a :class:`featurepipe.data.Loader` (its
            ``column_transform``).
        source: the :class:`TFRecordDataSource` the records come from, or
            `None`: a record the columns cannot read is then named by its file,
            record and byte offset (else by its row in the batch).
        batch_size: records per batch, for how many records ``source``
            remembers to name them. Defaults to `None`: the Loader's, else 256.
    """

    def __init__(
        self,
        transform: ColumnTransform | Loader,
        source: TFRecordDataSource | None = None,
        *,
        batch_size: int | None = None,
    ) -> None:
        if isinstance(transform, Loader):
            batch_size = transform.batch_size if batch_size is None else batch_size
            transform = transform.column_transform
        self.transform = transform
        self.source = source
        if source is not None:
            # a batch, and the next ones grain may read ahead
            source.track(4 * (_DEFAULT_BATCH if batch_size is None else batch_size))

    def __call__(self, records: Sequence[bytes]) -> Any:
        source = self.source
        if source is None:
            return self.transform(records)
        return self.transform(records, where=lambda row: source.where(records[row]))

    def __repr__(self) -> str:
        return (
            f"ColumnsFn({len(self.transform.feature_names)} inputs, "
            f"label_key={self.transform.label_key!r}, ids={self.transform.ids!r})"
        )


def _files(data: Any) -> list[str] | None:
    if data is None:
        return None
    if isinstance(data, TFRecordDataSource | RecordSource):
        return list(data.files)
    return list(RecordSource(data).files)


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
            come from, or `None`: with no ``schema`` or ``label_kind``, the
            label's kind comes from the ``PREFIX.schema.json`` beside them or
            their first records (without ``data``: from the first batch). Given
            the ``TFRecordDataSource``, a record the columns cannot read (not an
            Example, a wrong kind or value count) is named by its file, record
            and byte offset. Defaults to `None`.
        label_key: the label feature, or `None`. Defaults to `None`.
        schema: a :class:`~featurepipe.example.Schema` or its path: how each
            feature is decoded. Defaults to `None` (from the columns).
        label_kind: the label's kind (``"int64"``, ``"float"``, ``"bytes"``)
            when ``schema`` does not give it. Defaults to `None`.
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
        | Sequence[str | os.PathLike[str]]
        | None = None,
        label_key: str | None = None,
        schema: Schema | str | os.PathLike[str] | None = None,
        label_kind: str | None = None,
        ids: str = "padded",
        drop_remainder: bool = False,
        native: bool | None = None,
    ) -> None:
        if (
            not isinstance(batch_size, int | np.integer)
            or isinstance(batch_size, bool)
            or batch_size < 1
        ):
            raise ConfigError(
                f"`batch_size` must be an integer >= 1. Received: batch_size={batch_size!r}"
            )
        transform = ColumnTransform(
            columns,
            label_key=label_key,
            schema=schema,
            label_kind=label_kind,
            ids=ids,
            native=native,
            files=_files(data),
        )
        # grain's Batch is a frozen dataclass (google/grain grain/_src/core/transforms.py)
        object.__setattr__(self, "batch_size", int(batch_size))
        object.__setattr__(self, "drop_remainder", bool(drop_remainder))
        source = data if isinstance(data, TFRecordDataSource) else None
        object.__setattr__(self, "batch_fn", ColumnsFn(transform, source, batch_size=batch_size))

    @property
    def feature_names(self) -> list[str]:
        """The keys of a batch's ``features``, in order."""
        names: list[str] = self.batch_fn.transform.feature_names
        return names

    @property
    def native(self) -> bool:
        """Whether batches are computed by the compiled plan (else pure Python)."""
        return bool(self.batch_fn.transform.native)

    def __repr__(self) -> str:
        return (
            f"ColumnsBatch(batch_size={self.batch_size}, drop_remainder={self.drop_remainder}, "
            f"batch_fn={self.batch_fn!r})"
        )
