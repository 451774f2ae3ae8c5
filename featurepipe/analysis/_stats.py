"""Dataset statistics of TFRecord files of tf.Example, without TensorFlow.

`compute_statistics` reads TFRecord files in batches, decodes each batch into
columns (`featurepipe.example.decode_examples`) and drives the accumulators of
`featurepipe.analysis._accumulators` per feature: presence and list lengths for every
feature; moments, quantiles, a histogram and NaN / inf counts for numeric
ones; top values, a distinct-count estimate and byte lengths for bytes ones.
`StatisticsAccumulator` is itself mergeable, so statistics of shards computed
apart (in processes or Beam workers) combine into the statistics of the whole.
`DatasetStatistics.to_json` gives the ``featurepipe inspect stats --json``
document and `featurepipe.analysis._report` renders it as HTML.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import numpy as np
import numpy.typing as npt

from featurepipe._util import json_float, json_value
from featurepipe._version import __version__
from featurepipe.analysis._accumulators import (
    CountAccumulator,
    DistinctCountAccumulator,
    Histogram,
    Moments,
    MomentsAccumulator,
    QuantileSketch,
    TopValuesAccumulator,
    ValueCountAccumulator,
    ValueCounts,
    hash_values,
)
from featurepipe.errors import ConfigError

__all__ = [
    "STATS_FORMAT_VERSION",
    "BytesStatistics",
    "DatasetStatistics",
    "FeatureStatistics",
    "NumericStatistics",
    "StatisticsAccumulator",
    "StatsOptions",
    "compute_statistics",
    "expand_sources",
    "is_unique_count",
]

#: Version of the JSON document written by `DatasetStatistics.to_json`.
STATS_FORMAT_VERSION = 1
# List lengths 0..31 are counted one by one; longer lists share the last slot.
_LENGTH_SLOTS = 33
_QUANTILE_FRACTIONS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)


def is_unique_count(distinct: int, num_values: int) -> bool:
    """Whether a feature with these counts holds each value once: a row id, probably.

    True when the (capped) distinct count equals the number of values and there
    are at least 2 values. The text and HTML reports mark such a feature
    "unique (row id?)", and ``featurepipe columns suggest`` leaves it out.

    Examples:
        >>> is_unique_count(1000, 1000), is_unique_count(990, 1000), is_unique_count(1, 1)
        (True, False, False)
    """
    return num_values >= 2 and distinct >= num_values


class _ColumnLike(Protocol):
    """What a `featurepipe.example.Column` offers to statistics."""

    @property
    def kind(self) -> str | None: ...
    @property
    def values(self) -> npt.NDArray[Any]: ...
    @property
    def row_lengths(self) -> npt.NDArray[np.int64]: ...
    @property
    def present(self) -> npt.NDArray[np.bool_]: ...


class _BatchLike(Protocol):
    """What a `featurepipe.example.ColumnBatch` offers to statistics."""

    @property
    def num_rows(self) -> int: ...
    @property
    def columns(self) -> Mapping[str, _ColumnLike]: ...


@dataclass(frozen=True)
class StatsOptions:
    """How statistics are computed.

    Args:
        eps: rank error of the quantile sketches. Defaults to `0.01`.
        num_histogram_bins: bins of each numeric histogram. Defaults to `20`.
        top_k: top values kept per bytes feature in the result. Defaults to `20`.
        max_top_entries: distinct values tracked per feature before the
            top-values counts become approximate (and distinct values counted
            exactly up to twice this number). Defaults to `10000`.
        hll_precision: precision of the distinct-count sketches. Defaults to `12`.
        batch_size: records decoded at a time. Defaults to `4096`.

    Raises:
        ConfigError: for an out-of-range value.
    """

    eps: float = 0.01
    num_histogram_bins: int = 20
    top_k: int = 20
    max_top_entries: int = 10_000
    hll_precision: int = 12
    batch_size: int = 4096

    def __post_init__(self) -> None:
        QuantileSketch(self.eps)  # validates eps
        DistinctCountAccumulator(self.hll_precision)  # validates precision
        for name in ("num_histogram_bins", "top_k", "max_top_entries", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")


@dataclass(frozen=True)
class NumericStatistics:
    """Statistics of an int64 or float feature.

    Attributes:
        moments: count, mean, variance, min, max, NaN / inf / zero counts.
        quantiles: ``(fraction, value)`` pairs, within ``eps`` in rank.
        histogram: an equal-width histogram between min and max.
        eps: the rank error bound of ``quantiles`` and ``histogram``.
    """

    moments: Moments
    quantiles: tuple[tuple[float, float], ...]
    histogram: Histogram
    eps: float


@dataclass(frozen=True)
class BytesStatistics:
    """Statistics of a bytes feature.

    Attributes:
        top_values: the most frequent ``(value, count)`` pairs, count descending.
        top_values_exact: False when counts are lower bounds (too many distinct values).
        avg_length: mean length in bytes of a value.
        min_length: shortest value in bytes.
        max_length: longest value in bytes.
        num_empty: values that are the empty string.
    """

    top_values: tuple[tuple[bytes, int], ...]
    top_values_exact: bool
    avg_length: float
    min_length: int
    max_length: int
    num_empty: int


@dataclass(frozen=True)
class FeatureStatistics:
    """Statistics of one feature.

    Attributes:
        name: the feature name.
        kind: ``"int64"``, ``"float"``, ``"bytes"``, ``None`` (never had a
            list), or several joined by ``"|"`` when files disagree.
        num_examples: examples in the dataset.
        num_present: examples where the feature has a value list (maybe empty).
        num_missing: ``num_examples - num_present``.
        value_counts: list-length statistics over the present examples.
        length_histogram: ``length_histogram[i]`` examples have ``i`` values;
            the last slot counts every list of 32 values or more.
        distinct: the number of distinct values: exact up to
            ``2 * max_top_entries`` of them, else a HyperLogLog estimate; never
            more than ``value_counts.num_values``.
        numeric: set for int64 / float features.
        bytes: set for bytes features.
    """

    name: str
    kind: str | None
    num_examples: int
    num_present: int
    num_missing: int
    value_counts: ValueCounts
    length_histogram: tuple[int, ...]
    distinct: int
    numeric: NumericStatistics | None = None
    bytes: BytesStatistics | None = None

    @property
    def missing_rate(self) -> float:
        """``num_missing / num_examples`` (0.0 for an empty dataset)."""
        return self.num_missing / self.num_examples if self.num_examples else 0.0

    @property
    def is_unique(self) -> bool:
        """Whether every value differs from every other (2 values or more): a row id?

        Examples:
            >>> from featurepipe.example import decode_examples, encode_example
            >>> acc = StatisticsAccumulator()
            >>> acc.add(decode_examples([encode_example({"id": f"r{i}"}) for i in range(5)]))
            >>> acc.extract()["id"].is_unique
            True
        """
        return is_unique_count(self.distinct, self.value_counts.num_values)

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-able dict (floats: numbers or ``"NaN"``/``"Infinity"``)."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "num_examples": self.num_examples,
            "num_present": self.num_present,
            "num_missing": self.num_missing,
            "missing_rate": self.missing_rate,
            "value_counts": {
                "num_values": self.value_counts.num_values,
                "num_empty_lists": self.value_counts.num_empty,
                "min": self.value_counts.min,
                "max": self.value_counts.max,
                "mean": self.value_counts.mean,
            },
            "length_histogram": list(self.length_histogram),
            "distinct_estimate": self.distinct,
            "unique": self.is_unique,
        }
        if self.numeric is not None:
            m = self.numeric.moments
            out["numeric"] = {
                **m.to_json(),
                "eps": self.numeric.eps,
                "quantiles": [[q, json_float(v)] for q, v in self.numeric.quantiles],
                "histogram": {
                    "edges": [json_float(e) for e in self.numeric.histogram.edges],
                    "counts": list(self.numeric.histogram.counts),
                },
            }
        if self.bytes is not None:
            b = self.bytes
            out["bytes"] = {
                "top_values": [[json_value(v), c] for v, c in b.top_values],
                "top_values_exact": b.top_values_exact,
                "avg_length": b.avg_length,
                "min_length": b.min_length,
                "max_length": b.max_length,
                "num_empty": b.num_empty,
            }
        return out


@dataclass(frozen=True)
class DatasetStatistics:
    """Statistics of a dataset: its size and one `FeatureStatistics` per feature.

    Attributes:
        num_examples: examples read.
        features: per-feature statistics, sorted by name.
        sources: the files read, if known.
    """

    num_examples: int
    features: tuple[FeatureStatistics, ...]
    sources: tuple[str, ...] = field(default=())

    def __getitem__(self, name: str) -> FeatureStatistics:
        for f in self.features:
            if f.name == name:
                return f
        names = [f.name for f in self.features]
        raise KeyError(f"No feature {name!r} in these statistics (select from {names})")

    def to_json(self) -> dict[str, Any]:
        """Returns the ``featurepipe inspect stats --json`` document.

        Examples:
            >>> from featurepipe.example import decode_examples, encode_example
            >>> acc = StatisticsAccumulator()
            >>> acc.add(decode_examples([encode_example({"x": 1.5}), encode_example({"x": 2.5})]))
            >>> doc = acc.extract().to_json()
            >>> doc["num_examples"], doc["features"][0]["numeric"]["mean"]
            (2, 2.0)
        """
        return {
            "format_version": STATS_FORMAT_VERSION,
            "featurepipe_version": __version__,
            "num_examples": self.num_examples,
            "sources": list(self.sources),
            "features": [f.to_json() for f in self.features],
        }


class _FeatureAccumulator:
    """Accumulators of one feature (a private part of `StatisticsAccumulator`)."""

    def __init__(self, options: StatsOptions) -> None:
        self.kinds: set[str] = set()
        self.counts = CountAccumulator()
        self.value_counts = ValueCountAccumulator()
        self.lengths = np.zeros(_LENGTH_SLOTS, dtype=np.int64)
        self.distinct = DistinctCountAccumulator(options.hll_precision)
        # The distinct hashes while there are few (up to 2 * max_top_entries): an exact
        # count where the sketch's error (about 1.6%) would hide a column of row ids.
        self.exact: npt.NDArray[np.uint64] | None = np.empty(0, dtype=np.uint64)
        self.moments: MomentsAccumulator | None = None
        self.sketch: QuantileSketch | None = None
        self.top: TopValuesAccumulator | None = None
        self.byte_total = 0
        self.byte_count = 0
        self.byte_min: int | None = None
        self.byte_max = 0
        self.byte_empty = 0
        self.options = options

    def add(self, column: _ColumnLike) -> None:
        present = np.asarray(column.present, dtype=bool)
        self.counts.add(present)
        lengths = np.asarray(column.row_lengths, dtype=np.int64)
        self.value_counts.add(lengths, present)
        self.lengths += np.bincount(
            np.minimum(lengths[present], _LENGTH_SLOTS - 1), minlength=_LENGTH_SLOTS
        )
        kind = column.kind
        if kind is None:
            return
        self.kinds.add(kind)
        values = column.values
        if values.size == 0:
            return
        if kind == "bytes":
            self._add_bytes(values)
        else:
            self._add_numeric(values)

    def _add_numeric(self, values: npt.NDArray[Any]) -> None:
        if self.moments is None:
            self.moments = MomentsAccumulator()
            self.sketch = QuantileSketch(self.options.eps)
        if self.sketch is None:  # created with the moments
            raise RuntimeError("numeric feature statistics have moments but no sketch (a bug)")
        self.moments.add(values)
        self.sketch.add(values)
        hashes = hash_values(values)
        self.distinct.add_hashes(hashes)
        self._add_exact(hashes)

    def _add_bytes(self, values: npt.NDArray[Any]) -> None:
        if self.top is None:
            self.top = TopValuesAccumulator(self.options.max_top_entries)
        self.top.add(values)
        items = values.tolist()
        keys = list(dict.fromkeys(items))
        unique = np.empty(len(keys), dtype=object)
        unique[:] = keys
        hashes = hash_values(unique)
        self.distinct.add_hashes(hashes)
        self._add_exact(hashes)
        key_lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
        self.byte_total += sum(map(len, items))
        self.byte_count += len(items)
        lo = int(key_lengths.min())
        self.byte_min = lo if self.byte_min is None else min(self.byte_min, lo)
        self.byte_max = max(self.byte_max, int(key_lengths.max()))
        self.byte_empty += items.count(b"")

    def _add_exact(self, hashes: npt.NDArray[np.uint64]) -> None:
        if self.exact is None:
            return
        self.exact = np.union1d(self.exact, hashes)
        if self.exact.size > 2 * self.options.max_top_entries:
            self.exact = None

    def merge(self, other: _FeatureAccumulator) -> _FeatureAccumulator:
        self.kinds |= other.kinds
        if other.exact is None:
            self.exact = None
        else:
            self._add_exact(other.exact)
        self.counts.merge(other.counts)
        self.value_counts.merge(other.value_counts)
        self.lengths += other.lengths
        self.distinct.merge(other.distinct)
        if other.moments is not None and other.sketch is not None:
            if self.moments is None or self.sketch is None:
                self.moments, self.sketch = other.moments, other.sketch
            else:
                self.moments.merge(other.moments)
                self.sketch.merge(other.sketch)
        if other.top is not None:
            if self.top is None:
                self.top = other.top
            else:
                self.top.merge(other.top)
            self.byte_total += other.byte_total
            self.byte_count += other.byte_count
            if other.byte_min is not None:
                self.byte_min = (
                    other.byte_min if self.byte_min is None else min(self.byte_min, other.byte_min)
                )
            self.byte_max = max(self.byte_max, other.byte_max)
            self.byte_empty += other.byte_empty
        return self

    def _distinct(self) -> int:
        # A sketch's estimate can exceed the number of values (HyperLogLog's error is
        # about 1.6% either way at precision 12): seen on a real file as ~1% more
        # distinct values than rows. While there are few distinct values they are
        # counted exactly; either way the count is capped at the number of values.
        exact = self.exact
        estimate = int(exact.size) if exact is not None else int(self.distinct.extract())
        return min(estimate, int(self.value_counts.num_values))

    def extract(self, name: str, num_examples: int) -> FeatureStatistics:
        num_present = self.counts.num_present
        kind = "|".join(sorted(self.kinds)) if self.kinds else None
        numeric = None
        if self.moments is not None and self.sketch is not None:
            fractions = np.asarray(_QUANTILE_FRACTIONS)
            qv = self.sketch.quantiles(fractions)
            numeric = NumericStatistics(
                moments=self.moments.extract(),
                quantiles=tuple(zip(_QUANTILE_FRACTIONS, (float(v) for v in qv), strict=False)),
                histogram=self.sketch.histogram(self.options.num_histogram_bins),
                eps=self.sketch.eps,
            )
        byte_stats = None
        if self.top is not None:
            byte_stats = BytesStatistics(
                top_values=tuple(
                    (v, c) for v, c in self.top.top(self.options.top_k) if isinstance(v, bytes)
                ),
                top_values_exact=self.top.exact,
                avg_length=self.byte_total / self.byte_count if self.byte_count else 0.0,
                min_length=self.byte_min or 0,
                max_length=self.byte_max,
                num_empty=self.byte_empty,
            )
        return FeatureStatistics(
            name=name,
            kind=kind,
            num_examples=num_examples,
            num_present=num_present,
            num_missing=num_examples - num_present,
            value_counts=self.value_counts.extract(),
            length_histogram=tuple(int(c) for c in self.lengths),
            distinct=self._distinct(),
            numeric=numeric,
            bytes=byte_stats,
        )


class StatisticsAccumulator:
    """Mergeable statistics of every feature of a stream of `ColumnBatch` batches.

    Args:
        options: a `StatsOptions`. Defaults to `StatsOptions()`.

    Examples:
        >>> from featurepipe.example import decode_examples, encode_example
        >>> acc = StatisticsAccumulator()
        >>> acc.add(decode_examples([encode_example({"w": [b"a", b"b"]}), encode_example({})]))
        >>> stats = acc.extract()
        >>> stats["w"].num_missing, stats["w"].bytes.top_values
        (1, ((b'a', 1), (b'b', 1)))
    """

    def __init__(self, options: StatsOptions | None = None) -> None:
        self.options = options if options is not None else StatsOptions()
        self.num_examples = 0
        self.features: dict[str, _FeatureAccumulator] = {}

    def add(self, batch: _BatchLike) -> None:
        """Adds a decoded batch (`featurepipe.example.decode_examples` output).

        Args:
            batch: a `ColumnBatch`.
        """
        self.num_examples += int(batch.num_rows)
        for name, column in batch.columns.items():
            acc = self.features.get(name)
            if acc is None:
                acc = self.features[name] = _FeatureAccumulator(self.options)
            acc.add(column)

    def merge(self, other: StatisticsAccumulator) -> StatisticsAccumulator:
        """Merges ``other`` into ``self`` and returns ``self``."""
        self.num_examples += other.num_examples
        for name, theirs in other.features.items():
            mine = self.features.get(name)
            if mine is None:
                self.features[name] = theirs
            else:
                mine.merge(theirs)
        return self

    def extract(self, sources: Iterable[str] = ()) -> DatasetStatistics:
        """Returns the `DatasetStatistics` so far.

        Args:
            sources: file names to record in the result. Defaults to `()`.
        """
        return DatasetStatistics(
            num_examples=self.num_examples,
            features=tuple(
                self.features[name].extract(name, self.num_examples)
                for name in sorted(self.features)
            ),
            sources=tuple(sources),
        )


def compute_statistics(
    sources: str | os.PathLike[str] | IO[bytes] | Iterable[str | os.PathLike[str]],
    *,
    options: StatsOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
    **read_options: Any,
) -> DatasetStatistics:
    """Computes statistics of every feature in TFRecord files of tf.Example.

    Files of tf.SequenceExample work too: the context features keep their
    names and each feature list is the feature ``feature_lists/NAME``, whose
    values per example are those of all steps of a sequence.

    Args:
        sources: paths, globs or a binary file object, as for
            `featurepipe.tfrecord.read_records`.
        options: a `StatsOptions`. Defaults to `None` (the defaults).
        progress: called as ``progress(records_done, bytes_done)`` after each
            batch (for a progress bar). Defaults to `None`.
        **read_options: passed to `featurepipe.tfrecord.iter_records`
            (``compression``, ``verify_crc``, ``on_corrupt``, ...).

    Returns:
        The `DatasetStatistics`.

    Raises:
        DataError: damaged records or payloads that are not Examples, with
            file, record and offset.
        ConfigError: bad options, or paths that match nothing.
    """
    from featurepipe.example import decode_examples, payload_kind
    from featurepipe.tfrecord import batch_records, iter_records

    opts = options if options is not None else StatsOptions()
    names, sources = expand_sources(sources)
    acc = StatisticsAccumulator(opts)
    done = 0
    nbytes = 0
    records = iter_records(sources, **read_options)
    for path, first_index, batch in batch_records(records, opts.batch_size):
        if any(payload_kind(r, check=False) == "sequence_example" for r in batch):
            acc.add(_sequence_batch(batch, path, first_index))
        else:
            acc.add(decode_examples(batch, path=path, first_index=first_index))
        done += len(batch)
        nbytes += sum(map(len, batch))
        if progress is not None:
            progress(done, nbytes)
    return acc.extract(names)


#: Prefix of a feature list's name in the statistics of SequenceExamples.
FEATURE_LIST_PREFIX = "feature_lists/"


@dataclass(frozen=True)
class _ListColumn:
    """A feature list seen as one column: all values of a sequence form its row."""

    kind: str | None
    values: npt.NDArray[Any]
    row_lengths: npt.NDArray[np.int64]
    present: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class _Batch:
    num_rows: int
    columns: Mapping[str, Any]


def _sequence_batch(batch: list[bytes], path: str | None, first_index: int) -> _Batch:
    """A batch of SequenceExamples (Examples among them have no feature lists) as columns.

    Context features keep their names; each feature list becomes the column
    ``feature_lists/NAME``, one row per sequence holding the values of all its
    steps (so ``values per example`` is values per sequence).
    """
    from featurepipe.example import decode_sequence_examples

    seq = decode_sequence_examples(batch, path=path, first_index=first_index)
    columns: dict[str, Any] = dict(seq.context.columns)
    for name, col in seq.feature_lists.items():
        columns[FEATURE_LIST_PREFIX + name] = _ListColumn(
            col.kind, col.values, col.row_lengths, col.present
        )
    return _Batch(seq.num_rows, columns)


def expand_sources(sources: Any) -> tuple[tuple[str, ...], Any]:
    """Expands paths and globs once; returns ``(file names, what to read)``.

    Args:
        sources: paths, globs, a list of them, or a binary file object.

    Returns:
        The sorted file names (empty for a file object) and the sources to
        pass to `featurepipe.tfrecord.iter_records`.

    Raises:
        ConfigError: if a pattern matches nothing.
    """
    from featurepipe.tfrecord import expand_paths

    if isinstance(sources, (str, os.PathLike)) or (
        not hasattr(sources, "read") and isinstance(sources, Iterable)
    ):
        names = tuple(expand_paths(sources))
        return names, list(names)
    return (), sources
