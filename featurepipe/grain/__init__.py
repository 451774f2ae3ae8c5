"""grain input pipelines over TFRecord files of ``tf.Example``, with featurepipe's columns.

- :class:`TFRecordDataSource`: grain's random-access data source over indexed
  TFRecord files (``len``, ``source[i]`` -> the serialized record, CRC-verified,
  picklable), so ``grain.samplers.IndexSampler`` shuffles globally, shards
  exactly and checkpoints by record number.
- :class:`ColumnsBatch`: a grain ``Batch`` operation whose batch function
  computes the columns' model inputs of the whole batch in one compiled call.
- :class:`BatchSource`: the fast path: whole batches (records of a global
  shuffle per epoch, read and computed at once) as grain's elements, so
  grain's per-element cost is paid per batch.
- :class:`RecordSampler`: a ``DataLoader`` sampler with a global shuffle per
  epoch and exact sharding, without ``IndexSampler``'s random generator per
  record (the largest cost of a ``DataLoader`` epoch here).

Importing this package loads neither grain nor TensorFlow, torch, Keras or
JAX; ``ColumnsBatch`` and ``RecordSampler`` import grain (which imports JAX) when first used.

What grain 0.2.18 does that is worth knowing (google/grain
grain/_src/python/data_loader.py, samplers.py):

- ``IndexSampler`` with sharding shuffles inside contiguous shards, and the
  ``DataLoader`` reads ``len // shard_count`` records per shard: with a record
  count that the shard count does not divide, ``N % shard_count`` records are
  in no shard. :class:`RecordSampler` shuffles globally and keeps every record.
- ``IndexSampler`` with a seed builds a numpy random generator for every
  record (tens of microseconds each): :class:`RecordSampler` does not.
- With ``worker_count=W > 0`` worker ``w`` batches the sampler's records
  ``w, w + W, ...`` and the loader takes the workers' batches in turn, so the
  batches differ from ``worker_count=0`` (the same records, the same numbers
  per record); the features dict comes back with its keys sorted.
- Worker processes read absl flags: outside an ``absl.app`` program call
  ``absl.flags.FLAGS.mark_as_parsed()`` first.

Examples:
    >>> import featurepipe.grain as fpg
    >>> sorted(fpg.__all__)
    ['BatchSource', 'ColumnsBatch', 'ColumnsFn', 'RecordSampler', 'TFRecordDataSource']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featurepipe.grain._batches import BatchSource
from featurepipe.grain._source import TFRecordDataSource

if TYPE_CHECKING:
    from featurepipe.grain._batch import ColumnsBatch, ColumnsFn
    from featurepipe.grain._sampler import RecordSampler

__all__ = ["BatchSource", "ColumnsBatch", "ColumnsFn", "RecordSampler", "TFRecordDataSource"]

_LAZY = {"ColumnsBatch": "_batch", "ColumnsFn": "_batch", "RecordSampler": "_sampler"}


def __getattr__(name: str) -> Any:
    # PEP 562: grain imports JAX, so the grain-facing classes load on first use.
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"featurepipe.grain.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'featurepipe.grain' has no attribute {name!r}")
