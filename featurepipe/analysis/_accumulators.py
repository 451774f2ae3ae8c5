"""Mergeable accumulators: counts, list lengths, moments, vocabularies, distinct counts.

Each accumulator follows one life cycle: create it, ``add`` batches of values
(numpy arrays), ``merge`` accumulators built on other parts of the data, and
``extract`` a small frozen result. Accumulators are plain Python objects with
numpy state, small and picklable, so the same code runs in a local loop
(``featurepipe inspect stats``), inside a Beam ``CombineFn`` (``featurepipe
analyze``) and in a Keras layer's ``adapt``. ``merge`` returns ``self`` and may
consume its argument; that is what Beam's ``merge_accumulators`` allows.

The quantile sketch lives in :mod:`featurepipe.analysis._quantiles` and is re-exported
here.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from featurepipe._util import json_float
from featurepipe.analysis._quantiles import Histogram, QuantileSketch
from featurepipe.errors import ConfigError

__all__ = [
    "CountAccumulator",
    "Counts",
    "DistinctCountAccumulator",
    "Histogram",
    "Mergeable",
    "Moments",
    "MomentsAccumulator",
    "QuantileSketch",
    "TopValuesAccumulator",
    "ValueCountAccumulator",
    "ValueCounts",
    "Vocabulary",
    "VocabularyAccumulator",
    "hash_values",
    "merge_all",
    "sort_vocabulary",
    "vocabulary_order_key",
]

_A = TypeVar("_A", bound="Mergeable")

# HyperLogLog bias constant for m >= 128 registers (Flajolet et al. 2007).
_HLL_ALPHA_NUMERATOR = 0.7213
_HLL_ALPHA_DENOMINATOR = 1.079
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


class Mergeable(Protocol):
    """What :func:`merge_all` needs: ``merge(other)`` returning the merged accumulator."""

    def merge(self, other: Any) -> Any:
        """Merges ``other`` into ``self`` and returns ``self``."""
        ...


# -- counts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    """How often a feature is present.

    Attributes:
        num_rows: examples seen.
        num_present: examples whose feature key is present (possibly with an empty list).
        num_missing: examples without the feature key (``num_rows - num_present``).
    """

    num_rows: int
    num_present: int
    num_missing: int

    @property
    def missing_rate(self) -> float:
        """``num_missing / num_rows`` (0.0 when there are no rows)."""
        return self.num_missing / self.num_rows if self.num_rows else 0.0


class CountAccumulator:
    """Counts rows and rows where a feature is present.

    Examples:
        >>> acc = CountAccumulator()
        >>> acc.add(np.array([True, False, True]))
        >>> acc.merge(CountAccumulator()).extract()
        Counts(num_rows=3, num_present=2, num_missing=1)
    """

    def __init__(self) -> None:
        self.num_rows = 0
        self.num_present = 0

    def add(self, present: npt.ArrayLike) -> None:
        """Adds one batch.

        Args:
            present: one boolean per row, True where the feature key is present.
        """
        arr = np.asarray(present, dtype=bool).ravel()
        self.num_rows += int(arr.size)
        self.num_present += int(np.count_nonzero(arr))

    def merge(self, other: CountAccumulator) -> CountAccumulator:
        """Merges ``other`` into ``self`` and returns ``self``."""
        self.num_rows += other.num_rows
        self.num_present += other.num_present
        return self

    def extract(self) -> Counts:
        """Returns the :class:`Counts` so far."""
        return Counts(self.num_rows, self.num_present, self.num_rows - self.num_present)


# -- list lengths ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValueCounts:
    """Number of values per example, over the examples where the feature is present.

    Attributes:
        num_examples: examples counted (those where the feature is present).
        num_values: total number of values.
        num_empty: examples where the feature is present with an empty list.
        min: smallest list length (0 when ``num_examples == 0``).
        max: largest list length.
        mean: average list length (0.0 when ``num_examples == 0``).
    """

    num_examples: int
    num_values: int
    num_empty: int
    min: int
    max: int
    mean: float


class ValueCountAccumulator:
    """Tracks min / max / mean list length of a feature.

    Examples:
        >>> acc = ValueCountAccumulator()
        >>> acc.add(np.array([1, 0, 3]), present=np.array([True, False, True]))
        >>> acc.extract()
        ValueCounts(num_examples=2, num_values=4, num_empty=0, min=1, max=3, mean=2.0)
    """

    def __init__(self) -> None:
        self.num_examples = 0
        self.num_values = 0
        self.num_empty = 0
        self.min: int | None = None
        self.max: int | None = None

    def add(self, row_lengths: npt.ArrayLike, present: npt.ArrayLike | None = None) -> None:
        """Adds one batch.

        Args:
            row_lengths: the number of values in each row.
            present: optional booleans; rows where it is False are skipped. When
                omitted every row counts. Defaults to `None`.

        Raises:
            ConfigError: if ``present`` and ``row_lengths`` differ in length.
        """
        lengths = np.asarray(row_lengths, dtype=np.int64).ravel()
        if present is not None:
            mask = np.asarray(present, dtype=bool).ravel()
            if mask.size != lengths.size:
                raise ConfigError(
                    "`present` must have one entry per row of `row_lengths`. "
                    f"Received: len(present)={mask.size}, len(row_lengths)={lengths.size}"
                )
            lengths = lengths[mask]
        if lengths.size == 0:
            return
        self.num_examples += int(lengths.size)
        self.num_values += int(lengths.sum())
        self.num_empty += int(np.count_nonzero(lengths == 0))
        lo, hi = int(lengths.min()), int(lengths.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)

    def merge(self, other: ValueCountAccumulator) -> ValueCountAccumulator:
        """Merges ``other`` into ``self`` and returns ``self``."""
        self.num_examples += other.num_examples
        self.num_values += other.num_values
        self.num_empty += other.num_empty
        for name, pick in (("min", min), ("max", max)):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None:
                setattr(self, name, theirs if mine is None else pick(mine, theirs))
        return self

    def extract(self) -> ValueCounts:
        """Returns the :class:`ValueCounts` so far."""
        mean = self.num_values / self.num_examples if self.num_examples else 0.0
        return ValueCounts(
            num_examples=self.num_examples,
            num_values=self.num_values,
            num_empty=self.num_empty,
            min=self.min or 0,
            max=self.max or 0,
            mean=mean,
        )


# -- moments -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moments:
    """Summary moments of numeric values.

    ``mean``, ``variance`` and ``std`` cover the finite values; ``min`` and
    ``max`` cover every non-NaN value (so they may be infinite). ``variance``
    is the population variance (``ddof=0``, as ``numpy.var`` and ``tft.var``).
    With no finite values, ``mean``/``variance``/``std`` are NaN; with no
    non-NaN values, ``min``/``max`` are NaN.

    Attributes:
        count: number of finite values.
        mean: their mean.
        variance: their population variance.
        std: ``sqrt(variance)``.
        min: the smallest non-NaN value.
        max: the largest non-NaN value.
        num_nan: NaN values seen (ignored otherwise).
        num_inf: ``+inf`` and ``-inf`` values seen.
        num_zeros: values equal to zero.
    """

    count: int
    mean: float
    variance: float
    std: float
    min: float
    max: float
    num_nan: int
    num_inf: int
    num_zeros: int

    def to_json(self) -> dict[str, Any]:
        """The JSON form used by statistics and ``analysis.json`` (non-finite floats as strings).

        >>> Moments(0, math.nan, math.nan, math.nan, 1.0, 1.0, 0, 0, 0).to_json()["mean"]
        'NaN'
        """
        return {
            "count": self.count,
            "mean": json_float(self.mean),
            "variance": json_float(self.variance),
            "std": json_float(self.std),
            "min": json_float(self.min),
            "max": json_float(self.max),
            "num_nan": self.num_nan,
            "num_inf": self.num_inf,
            "num_zeros": self.num_zeros,
        }


class MomentsAccumulator:
    """Count, mean, variance, min and max with a numerically stable merge.

    Each batch is summarised in float64 with a two-pass formula (mean, then the
    sum of squared deviations ``M2``); summaries combine with the pairwise
    update of Chan, Golub and LeVeque (1979), so data such as ``1e9 + noise``
    does not cancel catastrophically the way ``E[x^2] - E[x]^2`` does. The
    mean is kept relative to a shift (the first finite value seen), so even
    its last bits survive when the values are large and the spread is small.

    Examples:
        >>> acc = MomentsAccumulator()
        >>> acc.add(np.array([1.0, 2.0, np.nan]))
        >>> other = MomentsAccumulator()
        >>> other.add(np.array([3.0, 4.0, np.inf]))
        >>> m = acc.merge(other).extract()
        >>> (m.count, m.mean, m.variance, m.max, m.num_nan, m.num_inf)
        (4, 2.5, 1.25, inf, 1, 1)
    """

    def __init__(self) -> None:
        self.count = 0
        self.shift = 0.0  # values are summarised as ``x - shift``
        self.mean = 0.0  # relative to ``shift``
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.num_nan = 0
        self.num_inf = 0
        self.num_zeros = 0
        self._any = False

    def add(self, values: npt.ArrayLike) -> None:
        """Adds a batch of numbers (any shape; flattened; converted to float64).

        Args:
            values: the numbers.
        """
        arr = np.asarray(values, dtype=np.float64).ravel()
        if arr.size == 0:
            return
        nan = np.isnan(arr)
        num_nan = int(np.count_nonzero(nan))
        if num_nan:
            self.num_nan += num_nan
            arr = arr[~nan]
            if arr.size == 0:
                return
        self._any = True
        self.min = min(self.min, float(arr.min()))
        self.max = max(self.max, float(arr.max()))
        self.num_zeros += int(np.count_nonzero(arr == 0.0))
        finite = np.isfinite(arr)
        num_inf = int(arr.size - np.count_nonzero(finite))
        if num_inf:
            self.num_inf += num_inf
            arr = arr[finite]
            if arr.size == 0:
                return
        if self.count == 0:
            self.shift, self.mean, self.m2 = float(arr[0]), 0.0, 0.0
        shifted = arr - self.shift
        mean_b = float(shifted.mean())
        dev = shifted - mean_b
        m2_b = float(np.dot(dev, dev))
        self._combine(int(arr.size), mean_b, m2_b)

    def merge(self, other: MomentsAccumulator) -> MomentsAccumulator:
        """Merges ``other`` into ``self`` and returns ``self``."""
        self.num_nan += other.num_nan
        self.num_inf += other.num_inf
        self.num_zeros += other.num_zeros
        if other._any:
            self._any = True
            self.min = min(self.min, other.min)
            self.max = max(self.max, other.max)
        if other.count:
            if self.count == 0:
                self.shift, self.mean, self.m2 = other.shift, 0.0, 0.0
            mean_b = (other.shift - self.shift) + other.mean
            self._combine(other.count, mean_b, other.m2)
        return self

    def _combine(self, n_b: int, mean_b: float, m2_b: float) -> None:
        n_a = self.count
        if n_a == 0:
            self.count, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean += delta * (n_b / n)
        self.m2 += m2_b + delta * delta * (n_a / n) * n_b
        self.count = n

    def extract(self) -> Moments:
        """Returns the :class:`Moments` so far."""
        if self.count:
            mean, variance = self.shift + self.mean, max(self.m2 / self.count, 0.0)
        else:
            mean = variance = math.nan
        lo, hi = (self.min, self.max) if self._any else (math.nan, math.nan)
        return Moments(
            count=self.count,
            mean=mean,
            variance=variance,
            std=math.sqrt(variance),
            min=lo,
            max=hi,
            num_nan=self.num_nan,
            num_inf=self.num_inf,
            num_zeros=self.num_zeros,
        )


# -- vocabulary --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """A vocabulary: values with their frequencies, most frequent first.

    Attributes:
        values: the kept values (``bytes`` or ``int``), in vocabulary order.
        frequencies: how often each value occurred, same order.
        num_distinct: distinct values seen before ``top_k`` / ``min_frequency``.
        total: number of values seen.
    """

    values: tuple[bytes | int, ...]
    frequencies: tuple[int, ...]
    num_distinct: int
    total: int


def sort_vocabulary(
    counts: Iterable[tuple[bytes | int, int]],
    *,
    top_k: int | None = None,
    min_frequency: int = 1,
) -> list[tuple[bytes | int, int]]:
    """Orders ``(value, count)`` pairs into vocabulary order and applies the limits.

    The order is count descending, ties broken by value ascending (bytewise
    for bytes, numerically for integers), so the result does not depend on
    the order in which data arrived. Both the local path and the Beam job use
    this function, which is why their vocabularies are identical.

    Args:
        counts: ``(value, count)`` pairs, each value once.
        top_k: keep at most this many entries; ``None`` keeps all. Defaults to `None`.
        min_frequency: drop values seen fewer times than this. Defaults to `1`.

    Returns:
        The kept pairs, in vocabulary order.

    Raises:
        ConfigError: if ``top_k < 0`` or ``min_frequency < 1``.

    Examples:
        >>> sort_vocabulary([(b"b", 2), (b"a", 2), (b"c", 5), (b"d", 1)], min_frequency=2)
        [(b'c', 5), (b'a', 2), (b'b', 2)]
    """
    _check_vocabulary_args(top_k, min_frequency)
    kept = list(counts)
    if min_frequency > 1:
        kept = [item for item in kept if item[1] >= min_frequency]
    if top_k is not None and top_k < len(kept):
        # Keep only candidates whose count reaches the top_k-th largest count.
        freq = np.fromiter(map(itemgetter(1), kept), dtype=np.int64, count=len(kept))
        threshold = np.partition(freq, len(freq) - top_k)[len(freq) - top_k] if top_k else None
        kept = [] if threshold is None else [kept[i] for i in np.flatnonzero(freq >= threshold)]
    # Two stable sorts with C-level keys: value ascending, then count descending.
    kept.sort(key=itemgetter(0))
    kept.sort(key=itemgetter(1), reverse=True)
    return kept if top_k is None else kept[:top_k]


def vocabulary_order_key(item: tuple[bytes | int, int]) -> tuple[int, bytes | int]:
    """The sort key of vocabulary order: ``(-count, value)``.

    Args:
        item: a ``(value, count)`` pair.

    Returns:
        A key; smaller keys come first in the vocabulary.
    """
    return (-item[1], item[0])


class VocabularyAccumulator:
    """Exact value frequencies, extracted as a :class:`Vocabulary`.

    Memory grows with the number of distinct values; for data that does not
    fit one machine the Beam job counts values with a combine keyed on value
    instead, then applies the same :func:`sort_vocabulary`.

    Args:
        top_k: keep at most this many values; ``None`` keeps all. Defaults to `None`.
        min_frequency: keep values seen at least this often. Defaults to `1`.

    Raises:
        ConfigError: if ``top_k < 0`` or ``min_frequency < 1``.

    Examples:
        >>> acc = VocabularyAccumulator(top_k=2)
        >>> acc.add(np.array([b"x", b"y", b"y", b"z", b"x"], dtype=object))
        >>> acc.extract().values
        (b'x', b'y')
    """

    def __init__(self, top_k: int | None = None, min_frequency: int = 1) -> None:
        _check_vocabulary_args(top_k, min_frequency)
        self.top_k = top_k
        self.min_frequency = min_frequency
        self.counts: Counter[bytes | int] = Counter()

    def add(self, values: npt.ArrayLike) -> None:
        """Adds a batch of ``bytes`` (object array) or integer values.

        Args:
            values: the values; ``str`` is encoded as UTF-8, integers stay integers.

        Raises:
            ConfigError: for float values (a vocabulary needs discrete values).
        """
        arr = np.asarray(values).ravel()
        if arr.size == 0:
            return
        if arr.dtype.kind in "iu":
            self.counts.update(arr.astype(np.int64).tolist())
        elif arr.dtype.kind in "OSU":
            self.counts.update(_bytes_list(arr.tolist()))
        else:
            raise ConfigError(
                "A vocabulary needs bytes, str or integer values. "
                f"Received: values of dtype {arr.dtype}"
            )

    def merge(self, other: VocabularyAccumulator) -> VocabularyAccumulator:
        """Merges ``other`` into ``self`` and returns ``self``."""
        self.counts.update(other.counts)
        return self

    def extract(self) -> Vocabulary:
        """Returns the :class:`Vocabulary` so far."""
        kept = sort_vocabulary(
            self.counts.items(), top_k=self.top_k, min_frequency=self.min_frequency
        )
        return Vocabulary(
            values=tuple(v for v, _ in kept),
            frequencies=tuple(c for _, c in kept),
            num_distinct=len(self.counts),
            total=sum(self.counts.values()),
        )

    def top(self, n: int) -> list[tuple[bytes | int, int]]:
        """Returns the ``n`` most frequent ``(value, count)`` pairs, in vocabulary order."""
        return sort_vocabulary(self.counts.items(), top_k=n)


class TopValuesAccumulator:
    """The most frequent values in bounded memory (for reports, not vocabularies).

    Keeps exact counts until more than ``2 * max_entries`` distinct values are
    held, then keeps the ``max_entries`` most frequent ones. After a prune the
    counts are lower bounds: each is short by at most :attr:`max_error`, and
    :attr:`exact` turns False.

    Args:
        max_entries: distinct values kept after a prune. Defaults to `10000`.

    Raises:
        ConfigError: if ``max_entries < 1``.

    Examples:
        >>> acc = TopValuesAccumulator(max_entries=2)
        >>> acc.add_counts({b"a": 5, b"b": 1, b"c": 3, b"d": 1, b"e": 1})
        >>> acc.top(2), acc.exact, acc.max_error
        ([(b'a', 5), (b'c', 3)], False, 1)
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigError(
                f"`max_entries` must be an integer >= 1. Received: max_entries={max_entries!r}"
            )
        self.max_entries = max_entries
        self.counts: Counter[bytes | int] = Counter()
        self.max_error = 0
        self.exact = True

    def add(self, values: npt.ArrayLike) -> None:
        """Adds a batch of values (bytes/str objects or integers)."""
        arr = np.asarray(values).ravel()
        if arr.dtype.kind in "iu":
            self.counts.update(arr.astype(np.int64).tolist())
        else:
            self.counts.update(_bytes_list(arr.tolist()))
        self._prune()

    def add_counts(self, counts: Mapping[bytes | int, int]) -> None:
        """Adds precomputed ``{value: count}`` of one batch."""
        self.counts.update(counts)
        self._prune()

    def merge(self, other: TopValuesAccumulator) -> TopValuesAccumulator:
        """Merges ``other`` into ``self`` and returns ``self``."""
        self.counts.update(other.counts)
        self.max_error += other.max_error
        self.exact = self.exact and other.exact
        self._prune()
        return self

    def top(self, n: int) -> list[tuple[bytes | int, int]]:
        """Returns the ``n`` most frequent ``(value, count)`` pairs, in vocabulary order."""
        return heapq.nsmallest(n, self.counts.items(), key=vocabulary_order_key)

    def extract(self) -> list[tuple[bytes | int, int]]:
        """Returns every kept ``(value, count)`` pair, in vocabulary order."""
        return sort_vocabulary(self.counts.items())

    def _prune(self) -> None:
        if len(self.counts) <= 2 * self.max_entries:
            return
        keys = list(self.counts)
        counts = np.fromiter(self.counts.values(), dtype=np.int64, count=len(keys))
        order = np.argpartition(-counts, self.max_entries)
        keep = order[: self.max_entries]
        self.max_error += int(counts[order[self.max_entries :]].max())
        self.counts = Counter(
            dict(zip([keys[i] for i in keep.tolist()], counts[keep].tolist(), strict=True))
        )
        self.exact = False


def _check_vocabulary_args(top_k: int | None, min_frequency: int) -> None:
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise ConfigError(f"`top_k` must be None or an integer >= 0. Received: top_k={top_k!r}")
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ConfigError(
            f"`min_frequency` must be an integer >= 1. Received: min_frequency={min_frequency!r}"
        )


def _bytes_list(items: list[Any]) -> list[bytes]:
    """``items`` itself when every item is bytes (the common case), else a converted copy."""
    if not items or set(map(type, items)) == {bytes}:
        return items
    return [_as_bytes(v) for v in items]


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ConfigError(
        f"A bytes vocabulary got a value of type {type(value).__name__}. Received: {value!r:.40}"
    )


# -- distinct count ----------------------------------------------------------------------------


class DistinctCountAccumulator:
    """Estimates the number of distinct values with HyperLogLog.

    The relative standard error is about ``1.04 / sqrt(2**precision)`` (1.6%
    at the default precision 12, with 4 KiB of registers). Values are hashed
    with a stable 64-bit hash (`hash_values`), so
    sketches built in different processes merge correctly.

    Args:
        precision: ``log2`` of the number of registers, 4 to 18. Defaults to `12`.

    Raises:
        ConfigError: if ``precision`` is out of range.

    Examples:
        >>> acc = DistinctCountAccumulator()
        >>> acc.add(np.arange(100_000) % 5000)
        >>> abs(acc.extract() - 5000) < 0.05 * 5000
        True
    """

    def __init__(self, precision: int = 12) -> None:
        if (
            isinstance(precision, bool)
            or not isinstance(precision, int)
            or not (4 <= precision <= 18)
        ):
            raise ConfigError(
                f"`precision` must be an integer in [4, 18]. Received: precision={precision!r}"
            )
        self.precision = precision
        self.registers = np.zeros(1 << precision, dtype=np.uint8)

    def add(self, values: npt.ArrayLike) -> None:
        """Adds a batch of values (bytes/str objects, integers or floats).

        Args:
            values: the values.
        """
        arr = np.asarray(values).ravel()
        if arr.size == 0:
            return
        self.add_hashes(hash_values(arr))

    def add_hashes(self, hashes: npt.NDArray[np.uint64]) -> None:
        """Adds precomputed 64-bit hashes (see :func:`hash_values`).

        Args:
            hashes: a uint64 array.
        """
        p = self.precision
        h = np.asarray(hashes, dtype=np.uint64)
        index = (h >> np.uint64(64 - p)).astype(np.int64)
        rest = h & np.uint64((1 << (64 - p)) - 1)
        rank = (64 - p) - _bit_length(rest) + 1
        np.maximum.at(self.registers, index, rank.astype(np.uint8))

    def merge(self, other: DistinctCountAccumulator) -> DistinctCountAccumulator:
        """Merges ``other`` into ``self`` and returns ``self``.

        Raises:
            ConfigError: if the precisions differ.
        """
        if other.precision != self.precision:
            raise ConfigError(
                "Cannot merge distinct-count sketches of different precision. "
                f"Received: precision={self.precision} and precision={other.precision}"
            )
        np.maximum(self.registers, other.registers, out=self.registers)
        return self

    def extract(self) -> int:
        """Returns the estimated number of distinct values."""
        m = float(self.registers.size)
        alpha = _HLL_ALPHA_NUMERATOR / (1.0 + _HLL_ALPHA_DENOMINATOR / m)
        estimate = alpha * m * m / float(np.sum(np.ldexp(1.0, -self.registers.astype(np.int64))))
        zeros = int(np.count_nonzero(self.registers == 0))
        # Small-range correction: linear counting is better below 2.5 m (Flajolet et al.).
        if estimate <= 2.5 * m and zeros:
            estimate = m * math.log(m / zeros)
        return round(estimate)


def hash_values(values: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """Stable 64-bit hashes of values, equal across processes, runs and platforms.

    Numbers go through the SplitMix64 finaliser (integers as their int64 bits,
    floats as their float64 bits, ``-0.0`` as ``0.0``). A bytes value of up to
    64 bytes is hashed as a SplitMix64 chain: start from its length, then for
    each little-endian 8-byte word of the value (the last one zero-padded)
    ``h = splitmix64(h ^ word)``; this runs vectorised over a batch. Longer
    values use BLAKE2b with an 8-byte digest (read little-endian). ``str`` is
    hashed as its UTF-8 bytes.

    Args:
        values: bytes/str objects, integers or floats. An integer and a float
            of the same value hash differently.

    Returns:
        A uint64 array, one hash per value.

    Examples:
        >>> h = hash_values(np.array([b"a", "a", b"b"], dtype=object))
        >>> bool(h[0] == h[1]), bool(h[0] == h[2])
        (True, False)
        >>> hex(int(hash_values(np.array([b"abc"], dtype=object))[0]))
        '0x347774c605d70c76'
    """
    arr = np.asarray(values).ravel()
    if arr.dtype.kind in "iub":
        return _splitmix64(arr.astype(np.int64).view(np.uint64))
    if arr.dtype.kind == "f":
        floats = arr.astype(np.float64) + 0.0  # -0.0 + 0.0 == +0.0
        return _splitmix64(floats.view(np.uint64) ^ np.uint64(0x5555555555555555))
    return _hash_bytes(_bytes_list(arr.tolist()))


# Bytes values up to this length are hashed by the vectorised SplitMix64 chain.
_CHAIN_MAX_BYTES = 64


def _hash_bytes(items: list[bytes]) -> npt.NDArray[np.uint64]:
    n = len(items)
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    lengths = np.fromiter(map(len, items), dtype=np.int64, count=n)
    long = np.flatnonzero(lengths > _CHAIN_MAX_BYTES)
    if long.size:
        digests = b"".join(
            [hashlib.blake2b(items[i], digest_size=8).digest() for i in long.tolist()]
        )
        out[long] = np.frombuffer(digests, dtype="<u8")
        short = np.flatnonzero(lengths <= _CHAIN_MAX_BYTES)
        items = [items[i] for i in short.tolist()]
        lengths = lengths[short]
    else:
        short = None
    if not items:
        return out
    num_words = (lengths + 7) // 8
    width = 8 * max(int(num_words.max()), 1)
    # numpy's fixed-width bytes pad with zeros; read the buffer as little-endian words.
    words = np.array(items, dtype=f"S{width}").view("<u8").reshape(len(items), width // 8)
    h = _splitmix64(lengths.astype(np.uint64))
    for j in range(width // 8):
        mixed = _splitmix64(h ^ words[:, j].astype(np.uint64))
        h = np.where(num_words > j, mixed, h)
    if short is None:
        return h
    out[short] = h
    return out


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # SplitMix64 finaliser (Steele, Lea and Flood 2014); uint64 arithmetic wraps modulo 2**64.
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _bit_length(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    # frexp is exact on values below 2**53, so split into 32-bit halves first.
    hi = (x >> np.uint64(32)).astype(np.float64)
    lo = (x & np.uint64(0xFFFFFFFF)).astype(np.float64)
    hi_len = np.frexp(hi)[1].astype(np.int64)
    lo_len = np.frexp(lo)[1].astype(np.int64)
    return np.where(hi_len > 0, hi_len + 32, lo_len)


def merge_all(accumulators: Sequence[_A]) -> _A:
    """Merges a non-empty sequence of accumulators into the first and returns it.

    Args:
        accumulators: accumulators of one type.

    Returns:
        The first accumulator, holding all of them.

    Raises:
        ConfigError: if ``accumulators`` is empty.

    Examples:
        >>> parts = [CountAccumulator() for _ in range(3)]
        >>> for p in parts:
        ...     p.add([True, False])
        >>> merge_all(parts).extract().num_rows
        6
    """
    if not accumulators:
        raise ConfigError("`merge_all` needs at least one accumulator. Received: none")
    first = accumulators[0]
    for other in accumulators[1:]:
        first.merge(other)
    return first
