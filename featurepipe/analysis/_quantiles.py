"""A mergeable quantile sketch (KLL-style compactors over numpy arrays).

:class:`QuantileSketch` summarises a stream of numbers in space that depends on
the requested rank error ``eps``, not on the number of values, and two sketches
of two parts of a dataset merge into a sketch of the whole. It is the one
quantile algorithm of featurepipe: the local statistics, the Beam ``analyze``
job and the Keras layers all drive it, so they agree on bucket boundaries.

How it works (Karnin, Lang and Liberty, "Optimal Quantile Approximation in
Streams", 2016): level ``h`` holds values that each stand for ``2**h`` input
values. When the sketch holds more values than its capacity, the lowest level
over its own capacity is sorted and every other value (starting at a coin-flip
offset) moves up one level with doubled weight. Level capacities shrink
geometrically (factor 2/3) from the top level down, so the whole sketch holds
about ``3 * k`` values. The coin flips come from a SplitMix64 stream seeded by
``seed``, so the same inputs added in the same order give the same sketch.

Rank error: for every query, the returned value's rank in the data is within
``eps * n`` of the requested rank with probability at least 99% (the constant
follows the published KLL error curves, with a 2x safety margin); until the
sketch first compacts (fewer than about ``k`` values) answers are exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from featurepipe.errors import ConfigError

__all__ = ["Histogram", "QuantileSketch"]

_MASK64 = (1 << 64) - 1
# SplitMix64 constants (Steele, Lea and Flood 2014): the Weyl increment and the two mixers.
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
# KLL keeps each lower level at 2/3 of the capacity of the level above it.
_CAPACITY_RATIO = 2.0 / 3.0
# Empirical KLL all-ranks error at 99% confidence: eps ~= 2.446 / k**0.9433 (DataSketches'
# published fit). We size k for eps / 2, a 2x safety margin.
_EPS_CONSTANT = 2.446
_EPS_EXPONENT = 0.9433
_MIN_K = 16
_MAX_K = 1 << 16


@dataclass(frozen=True)
class Histogram:
    """Counts of values in consecutive bins.

    Attributes:
        edges: ``len(counts) + 1`` increasing bin edges; bin ``i`` is
            ``[edges[i], edges[i + 1])``, the last bin also holds ``edges[-1]``.
        counts: (approximate) number of values in each bin.
    """

    edges: tuple[float, ...]
    counts: tuple[float, ...]

    def to_json(self) -> dict[str, list[float]]:
        """Returns ``{"edges": [...], "counts": [...]}`` with plain floats."""
        return {"edges": list(self.edges), "counts": list(self.counts)}


class QuantileSketch:
    """A mergeable streaming quantile sketch with rank error ``eps``.

    NaN values are ignored (and counted in :attr:`num_nan`); ``-inf`` and
    ``inf`` are ordinary values. Integers are converted to float64, so
    integers beyond 2**53 lose precision.

    Args:
        eps: the rank error bound, a fraction of the number of values, in
            ``(0, 1)``. Defaults to `0.01`.
        seed: seeds the coin flips; the same inputs in the same order give the
            same sketch. Defaults to `0`.

    Raises:
        ConfigError: if ``eps`` is not in ``(0, 1)``.

    Examples:
        >>> sketch = QuantileSketch(eps=0.01)
        >>> sketch.add(np.arange(1000.0))
        >>> other = QuantileSketch(eps=0.01)
        >>> other.add(np.arange(1000.0, 2000.0))
        >>> merged = sketch.merge(other)
        >>> merged.count
        2000
        >>> merged.boundaries(4).tolist()  # exact: 2000 values fit without compaction
        [499.0, 999.0, 1499.0]
    """

    def __init__(self, eps: float = 0.01, *, seed: int = 0) -> None:
        if not isinstance(eps, (int, float)) or not 0.0 < float(eps) < 1.0 or math.isnan(eps):
            raise ConfigError(
                "`eps` must be a float in the open interval (0, 1), e.g. 0.01. "
                f"Received: eps={eps!r}"
            )
        self.eps = float(eps)
        self.k = _k_for_eps(self.eps)
        self.seed = int(seed)
        self._state = _splitmix(self.seed & _MASK64)
        self._levels: list[npt.NDArray[np.float64]] = [np.empty(0, dtype=np.float64)]
        self.count = 0
        self.num_nan = 0
        self.min = math.inf
        self.max = -math.inf

    # -- accumulate -------------------------------------------------------------------------

    def add(self, values: npt.ArrayLike) -> None:
        """Adds a batch of values (any shape; flattened).

        Args:
            values: numbers (array-like of int or float).
        """
        arr = np.asarray(values, dtype=np.float64).ravel()
        if arr.size == 0:
            return
        nan = np.isnan(arr)
        num_nan = int(nan.sum())
        if num_nan:
            self.num_nan += num_nan
            arr = arr[~nan]
            if arr.size == 0:
                return
        self.count += int(arr.size)
        self.min = min(self.min, float(arr.min()))
        self.max = max(self.max, float(arr.max()))
        self._levels[0] = np.concatenate((self._levels[0], arr))
        self._compress()

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """Merges ``other`` into this sketch and returns this sketch.

        Args:
            other: a sketch built with the same ``eps``.

        Returns:
            ``self``, now summarising both inputs.

        Raises:
            ConfigError: if the sketches were built with different ``eps``.
        """
        if other.k != self.k:
            raise ConfigError(
                "Cannot merge quantile sketches built with different `eps`. "
                f"Received: eps={self.eps} and eps={other.eps}"
            )
        while len(self._levels) < len(other._levels):
            self._levels.append(np.empty(0, dtype=np.float64))
        for h, level in enumerate(other._levels):
            if level.size:
                self._levels[h] = np.concatenate((self._levels[h], level))
        self.count += other.count
        self.num_nan += other.num_nan
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self._state = _splitmix(self._state ^ ((other._state << 1 | other._state >> 63) & _MASK64))
        self._compress()
        return self

    # -- query ------------------------------------------------------------------------------

    @property
    def num_retained(self) -> int:
        """How many values the sketch holds (its memory is about 8 bytes each)."""
        return sum(int(level.size) for level in self._levels)

    def quantiles(self, fractions: Sequence[float] | npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Returns, for each fraction ``q``, a value whose rank is about ``q * count``.

        The answer for ``q`` is the smallest retained value whose cumulative
        weight reaches ``q * count`` (numpy's ``method="inverted_cdf"``, which
        it equals exactly while the sketch has not compacted). ``q = 0`` gives
        the exact minimum and ``q = 1`` the exact maximum.

        Args:
            fractions: numbers in ``[0, 1]``.

        Returns:
            A float64 array, one value per fraction; empty if the sketch is empty.

        Raises:
            ConfigError: if a fraction is outside ``[0, 1]``.
        """
        qs = np.asarray(fractions, dtype=np.float64).ravel()
        if qs.size and (np.isnan(qs).any() or qs.min() < 0.0 or qs.max() > 1.0):
            raise ConfigError(
                f"Quantile fractions must be in [0, 1]. Received: fractions={qs.tolist()}"
            )
        if self.count == 0:
            return np.empty(0, dtype=np.float64)
        values, cum = self._cumulative()
        # Cumulative weights are exact integers in float64 up to 2**53 values.
        targets = qs * self.count
        idx = np.searchsorted(cum, targets, side="left")
        idx = np.clip(idx, 0, values.size - 1)
        out = values[idx]
        out[qs <= 0.0] = self.min
        out[qs >= 1.0] = self.max
        return out

    def boundaries(self, num_buckets: int) -> npt.NDArray[np.float64]:
        """Returns ``num_buckets - 1`` bucket boundaries that split the data evenly.

        Boundary ``i`` (1-based) is the ``i / num_buckets`` quantile, as in
        ``tft.quantiles``. The boundaries are sorted and may repeat when the
        data has heavy duplicates. They follow ``tf.feature_column``'s
        ``bucketized_column`` / Keras ``Discretization(bin_boundaries=...)``
        semantics: ``[b0, b1]`` makes buckets ``(-inf, b0)``, ``[b0, b1)``,
        ``[b1, +inf)``, i.e. ``bucket = numpy.digitize(x, boundaries)``.

        Args:
            num_buckets: the number of buckets, at least 1.

        Returns:
            A float64 array of ``num_buckets - 1`` boundaries, or an empty
            array if the sketch holds no values.

        Raises:
            ConfigError: if ``num_buckets < 1``.
        """
        if (
            isinstance(num_buckets, bool)
            or not isinstance(num_buckets, (int, np.integer))
            or (num_buckets < 1)
        ):
            raise ConfigError(
                f"`num_buckets` must be an integer >= 1. Received: num_buckets={num_buckets!r}"
            )
        fractions = np.arange(1, int(num_buckets), dtype=np.float64) / float(num_buckets)
        return self.quantiles(fractions)

    def rank(self, value: float) -> float:
        """Returns the approximate number of values ``<= value``.

        Args:
            value: the query point.

        Returns:
            The estimated count of values at or below ``value``.
        """
        if self.count == 0:
            return 0.0
        values, cum = self._cumulative()
        i = int(np.searchsorted(values, value, side="right"))
        return float(cum[i - 1]) if i else 0.0

    def histogram(self, num_bins: int = 20) -> Histogram:
        """Returns an equal-width histogram between :attr:`min` and :attr:`max`.

        Counts come from the retained values and their weights, so each bin
        edge is off by at most about ``eps * count`` values. Infinite values
        are left out of the bins (equal-width bins need finite ends).

        Args:
            num_bins: number of bins, at least 1. Defaults to `20`.

        Returns:
            A :class:`Histogram`; empty when there are no finite values.

        Raises:
            ConfigError: if ``num_bins < 1``.
        """
        if (
            isinstance(num_bins, bool)
            or not isinstance(num_bins, (int, np.integer))
            or (num_bins < 1)
        ):
            raise ConfigError(
                f"`num_bins` must be an integer >= 1. Received: num_bins={num_bins!r}"
            )
        values, weights = self._weighted()
        finite = np.isfinite(values)
        values, weights = values[finite], weights[finite]
        if values.size == 0:
            return Histogram(edges=(), counts=())
        # The exact extremes when finite, else the finite retained ones.
        lo = self.min if math.isfinite(self.min) else float(values.min())
        hi = self.max if math.isfinite(self.max) else float(values.max())
        if lo == hi:
            return Histogram(edges=(lo, hi), counts=(float(weights.sum()),))
        counts, edges = np.histogram(values, bins=int(num_bins), range=(lo, hi), weights=weights)
        return Histogram(
            edges=tuple(float(e) for e in edges), counts=tuple(float(c) for c in counts)
        )

    # -- internals --------------------------------------------------------------------------

    def _weighted(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        values = np.concatenate(self._levels)
        weights = np.concatenate(
            [np.full(level.size, float(1 << h)) for h, level in enumerate(self._levels)]
        )
        return values, weights

    def _cumulative(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        values, weights = self._weighted()
        order = np.argsort(values, kind="stable")
        return values[order], np.cumsum(weights[order])

    def _capacity(self, h: int, num_levels: int) -> int:
        depth = num_levels - 1 - h
        return max(2, math.ceil(self.k * _CAPACITY_RATIO**depth))

    def _compress(self) -> None:
        while True:
            num_levels = len(self._levels)
            caps = [self._capacity(h, num_levels) for h in range(num_levels)]
            if sum(int(lv.size) for lv in self._levels) <= sum(caps):
                return
            h = next(i for i in range(num_levels) if self._levels[i].size >= caps[i])
            if h + 1 == num_levels:
                self._levels.append(np.empty(0, dtype=np.float64))
            buf = np.sort(self._levels[h])
            # An odd buffer keeps its largest value at this level; compaction needs pairs.
            even = buf.size - (buf.size & 1)
            self._state = _splitmix(self._state)
            offset = self._state & 1
            promoted = buf[offset:even:2]
            self._levels[h + 1] = np.concatenate((self._levels[h + 1], promoted))
            self._levels[h] = buf[even:].copy()

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_levels"] = [np.ascontiguousarray(level) for level in self._levels]
        return state

    def __repr__(self) -> str:
        return (
            f"QuantileSketch(eps={self.eps}, count={self.count}, "
            f"retained={self.num_retained}, levels={len(self._levels)})"
        )


def _k_for_eps(eps: float) -> int:
    k = math.ceil((_EPS_CONSTANT / (eps / 2.0)) ** (1.0 / _EPS_EXPONENT))
    return int(min(max(k, _MIN_K), _MAX_K))


def _splitmix(state: int) -> int:
    z = (state + _GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)
