"""Training / serving skew and drift: distances between two datasets' statistics.

`compare_statistics` compares two ``featurepipe inspect stats --json``
documents (or `DatasetStatistics`) feature by feature, with the two distances
TensorFlow Data Validation's skew and drift comparators use
(tensorflow/data-validation, ``tensorflow_data_validation/anomalies/metrics.cc``):

* bytes features: the **L-infinity distance** (`linf_distance`) of the value
  distributions: each dataset's value counts are divided by their sum (the
  counts of the top values listed in the statistics, as TFDV normalizes the
  values it lists), and the distance is the largest absolute difference of
  those frequencies over the union of the values. It lies in [0, 1]; the
  value where it is reached is reported. When the two lists have different
  lengths and one is truncated (a statistics file kept 20 values, the other
  side 1000), both are cut to the same number of most frequent values first.
* int64 and float features: the **Jensen-Shannon divergence**
  (`jensen_shannon_divergence`) of the histograms, with logarithms in
  **base 2**, so it lies in [0, 1] (TFDV also uses ``log2`` and caps the
  result at 1). The two histograms are first put on **common bins**: the
  sorted union of both histograms' bin edges; each original bin's count is
  spread over the common bins inside it in proportion to their width (values
  are taken as uniform within a bin, as TFDV's ``RebucketHistogram`` does).
  A histogram of one value (min = max) is a point mass, a bin of its own
  keyed by that value, as in TFDV. (That is TFDV's method; featurepipe's
  default common bins are described below.)

How featurepipe puts numbers on common bins differs from TFDV on purpose.
TFDV rebins the two equal-width histograms on the union of their edges,
taking values as uniform inside each bin (`align_histograms`, and
``bins="tfdv"``). For a heavy-tailed feature most values sit in the first
bin, whose width depends on the maximum, so two samples of one distribution
with different maxima look far apart (on Criteo-like data, 8 of 13 integer
features of two halves of one file over 0.05). featurepipe instead:

* reading data (`compare_data`, ``inspect compare`` on TFRecord files): both
  datasets' quantile sketches are at hand, so the common edges are the
  quantiles of the two datasets pooled (``num_bins`` bins of equal pooled
  mass, repeated edges merged) and each side's values are counted in those
  bins (`common_histograms`);
* from statistics (files, or `compare_statistics` by default): each side's
  cumulative distribution is drawn through its histogram edges *and* its
  quantiles, and both are read on the union of those points
  (`cdf_histograms`).

Bins are ``{e0}, (e0, e1], ..., (e[n-1], e[n]]``: right-closed, with the
minimum as a point of its own, so two constant features of different values
are 1 apart and a value repeated many times falls in one bin on both sides.

One intentional difference from TFDV: NaN values form one bucket and
infinite values another, *shared* by both datasets (TFDV's ``AlignHistograms``
puts each side's NaN and infinite mass in buckets the other side does not
share, so two identical datasets with NaNs have a divergence above 0 there;
here they have 0).

Also per feature: the change in missing fraction, and for bytes features the
values new in the current data and the values vanished from it (reported
only when the relevant top-values list holds every value, so a value is never
called new just because it fell below the baseline's top-k).

A feature is flagged when its distance exceeds its threshold: the schema's
``skew_threshold`` (``mode="skew"``: training vs serving) or
``drift_threshold`` (``mode="drift"``: consecutive spans), else the
``threshold`` argument. Flags are reported as anomalies named like TFDV's:
``COMPARATOR_L_INFTY_HIGH`` and ``COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from featurepipe.analysis._stats import DatasetStatistics
from featurepipe.analysis._validate import Anomaly, statistics_document
from featurepipe.errors import ConfigError
from featurepipe.example import Schema

__all__ = [
    "Comparison",
    "FeatureComparison",
    "align_histograms",
    "cdf_histograms",
    "common_histograms",
    "compare_data",
    "compare_statistics",
    "jensen_shannon_divergence",
    "linf_distance",
]

Mode = Literal["skew", "drift"]
_NEW_VALUES_SHOWN = 20


def linf_distance(
    counts_a: Mapping[Any, float], counts_b: Mapping[Any, float]
) -> tuple[float, Any]:
    """L-infinity distance of two value distributions given as counts.

    Each mapping is divided by its own total; the distance is the largest
    absolute difference of the two frequencies of a value, over the union of
    the values (a value missing from one side has frequency 0 there).

    Args:
        counts_a: ``{value: count}`` of the first dataset.
        counts_b: ``{value: count}`` of the second dataset.

    Returns:
        ``(distance, value)``: the distance in [0, 1] and a value where it is
        reached (``None`` when both are empty). Ties (up to float rounding)
        go to the first value in sorted order of ``repr``.

    Examples:
        >>> linf_distance({"a": 3, "b": 1}, {"a": 1, "b": 1})
        (0.25, 'a')
        >>> linf_distance({"a": 1}, {"b": 2})
        (1.0, 'a')
    """
    ta = float(sum(counts_a.values()))
    tb = float(sum(counts_b.values()))
    best, key = 0.0, None
    for v in sorted(set(counts_a) | set(counts_b), key=repr):
        fa = counts_a.get(v, 0.0) / ta if ta else 0.0
        fb = counts_b.get(v, 0.0) / tb if tb else 0.0
        d = abs(fa - fb)
        if key is None or d > best + 1e-12:  # ties (to rounding) keep the first value
            best, key = d, v
    return best, key


def align_histograms(
    hist_a: Mapping[str, Any], hist_b: Mapping[str, Any]
) -> tuple[list[str], list[float], list[float]]:
    """Puts two histograms on common bins (see the module docstring).

    Args:
        hist_a: ``{"edges": [...], "counts": [...]}`` (a statistics
            document's ``numeric.histogram``), optionally with ``"num_nan"``
            and ``"num_inf"`` counts to add as buckets of their own. With
            ``"closed": "right"`` (`common_histograms`, `cdf_histograms`) the
            bins are ``{e0}, (e0, e1], ..., (e[n-1], e[n]]`` and both sides
            must have the same edges: nothing is rebinned.
        hist_b: the same for the other dataset.

    Returns:
        ``(labels, counts_a, counts_b)``: a label per common bucket
        (``"[lo, hi)"``, ``"=x"`` for a point mass, ``"inf"``, ``"NaN"``) and
        each histogram's (fractional) counts in them.

    Examples:
        >>> align_histograms({"edges": [0, 2], "counts": [4]},
        ...                  {"edges": [1, 3], "counts": [2]})
        (['[0, 1)', '[1, 2)', '[2, 3)'], [2.0, 2.0, 0.0], [0.0, 1.0, 1.0])
    """
    if hist_a.get("closed") == "right" and hist_b.get("closed") == "right":
        if list(hist_a["edges"]) != list(hist_b["edges"]):
            raise ConfigError("Right-closed histograms must share their edges.")
        e = [float(x) for x in hist_a["edges"]]
        labels = [f"={_g(e[0])}"] if e else []
        labels += [f"({_g(e[j])}, {_g(e[j + 1])}]" for j in range(len(e) - 1)]
        out_a = [float(c) for c in hist_a["counts"]]
        out_b = [float(c) for c in hist_b["counts"]]
    else:
        labels, out_a, out_b = _align_rebinned(hist_a, hist_b)
    for key, label in (("num_inf", "inf"), ("num_nan", "NaN")):
        na, nb = float(hist_a.get(key, 0) or 0), float(hist_b.get(key, 0) or 0)
        if na or nb:
            labels.append(label)
            out_a.append(na)
            out_b.append(nb)
    return labels, out_a, out_b


def _align_rebinned(
    hist_a: Mapping[str, Any], hist_b: Mapping[str, Any]
) -> tuple[list[str], list[float], list[float]]:
    ea, ca, pa = _split(hist_a)
    eb, cb, pb = _split(hist_b)
    edges = sorted(set(ea) | set(eb))
    labels = [f"[{_g(edges[j])}, {_g(edges[j + 1])})" for j in range(len(edges) - 1)]
    out_a = _rebin(ea, ca, edges)
    out_b = _rebin(eb, cb, edges)
    for x in sorted(set(pa) | set(pb)):
        labels.append(f"={_g(x)}")
        out_a.append(pa.get(x, 0.0))
        out_b.append(pb.get(x, 0.0))
    return labels, out_a, out_b


def jensen_shannon_divergence(
    hist_a: Mapping[str, Any], hist_b: Mapping[str, Any]
) -> float | None:
    """Jensen-Shannon divergence (log base 2) of two histograms on common bins.

    ``JSD(P, Q) = (KL(P || M) + KL(Q || M)) / 2`` with ``M = (P + Q) / 2``,
    after `align_histograms` and normalizing each side to sum to 1; in [0, 1].

    Args:
        hist_a: as for `align_histograms`.
        hist_b: as for `align_histograms`.

    Returns:
        The divergence, or ``None`` when a side has no values.

    Examples:
        >>> jensen_shannon_divergence({"edges": [0, 1, 2], "counts": [1, 1]},
        ...                           {"edges": [0, 1, 2], "counts": [1, 1]})
        0.0
        >>> jensen_shannon_divergence({"edges": [0, 1], "counts": [5]},
        ...                           {"edges": [1, 2], "counts": [5]})
        1.0
    """
    _, a, b = align_histograms(hist_a, hist_b)
    ta, tb = sum(a), sum(b)
    if ta <= 0 or tb <= 0:
        return None
    p = [x / ta for x in a]
    q = [x / tb for x in b]
    kl_p = kl_q = 0.0
    for pi, qi in zip(p, q, strict=True):
        m = (pi + qi) / 2
        if pi > 0:
            kl_p += pi * math.log2(pi / m)
        if qi > 0:
            kl_q += qi * math.log2(qi / m)
    return min(max((kl_p + kl_q) / 2, 0.0), 1.0)


@dataclass(frozen=True)
class FeatureComparison:
    """How one feature differs between the baseline and the current data.

    Attributes:
        name: the feature name.
        kind: the kind in the current data (or the baseline's when absent there).
        status: ``"both"``, ``"baseline_only"``, ``"current_only"`` or
            ``"kind_changed"``.
        metric: ``"linf"``, ``"jensen_shannon"`` or ``None`` (nothing to compare).
        distance: the metric's value, or ``None``.
        at_value: for ``"linf"``: the value where the distance is reached.
        threshold: the threshold applied, or ``None``.
        flagged: True when ``distance > threshold``.
        baseline_missing_rate: fraction of baseline examples without the feature.
        current_missing_rate: the same in the current data.
        new_values: current values (with current counts) absent from the
            baseline; only when the baseline lists every value.
        vanished_values: baseline values (with baseline counts) absent from
            the current data; only when the current data lists every value.
        baseline: the baseline's feature statistics document, or ``None``.
        current: the current feature statistics document, or ``None``.
        histograms: for numbers compared from data: both histograms on the
            common (pooled-quantile) bin edges; ``None`` when the statistics'
            own histograms were rebinned.
    """

    name: str
    kind: str | None
    status: str
    metric: str | None
    distance: float | None
    at_value: Any
    threshold: float | None
    flagged: bool
    baseline_missing_rate: float | None
    current_missing_rate: float | None
    new_values: tuple[tuple[Any, int], ...] | None
    vanished_values: tuple[tuple[Any, int], ...] | None
    baseline: Mapping[str, Any] | None
    current: Mapping[str, Any] | None
    histograms: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None

    @property
    def missing_rate_change(self) -> float | None:
        """``current_missing_rate - baseline_missing_rate`` when both are known."""
        if self.baseline_missing_rate is None or self.current_missing_rate is None:
            return None
        return self.current_missing_rate - self.baseline_missing_rate

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (without the two statistics documents)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "metric": self.metric,
            "bins": None
            if self.metric != "jensen_shannon"
            else ("common edges" if self.histograms is not None else "tfdv rebinned"),
            "distance": self.distance,
            "at_value": self.at_value,
            "threshold": self.threshold,
            "flagged": self.flagged,
            "baseline_missing_rate": self.baseline_missing_rate,
            "current_missing_rate": self.current_missing_rate,
            "missing_rate_change": self.missing_rate_change,
            "new_values": None
            if self.new_values is None
            else [[v, c] for v, c in self.new_values[:_NEW_VALUES_SHOWN]],
            "num_new_values": None if self.new_values is None else len(self.new_values),
            "vanished_values": None
            if self.vanished_values is None
            else [[v, c] for v, c in self.vanished_values[:_NEW_VALUES_SHOWN]],
            "num_vanished_values": None
            if self.vanished_values is None
            else len(self.vanished_values),
        }

    def anomaly(self) -> Anomaly | None:
        """The TFDV-named anomaly when flagged, else ``None``."""
        if not self.flagged or self.distance is None:
            return None
        if self.metric == "linf":
            typ, what = "COMPARATOR_L_INFTY_HIGH", "L-infinity distance"
        else:
            typ, what = "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH", "Jensen-Shannon divergence"
        at = f" (largest at {self.at_value!r})" if self.metric == "linf" else ""
        return Anomaly(
            typ,
            self.name,
            f"High {what} between baseline and current: {self.distance:.4g} > "
            f"threshold {self.threshold:g}{at}",
            expected=self.threshold,
            observed=self.distance,
        )


@dataclass(frozen=True)
class Comparison:
    """`compare_statistics`' result.

    Attributes:
        mode: ``"skew"`` or ``"drift"``.
        baseline: the baseline statistics document.
        current: the current statistics document.
        features: per-feature comparisons, most different first (features in
            one dataset only, then by distance, then by name).
    """

    mode: str
    baseline: Mapping[str, Any]
    current: Mapping[str, Any]
    features: tuple[FeatureComparison, ...]

    @property
    def anomalies(self) -> tuple[Anomaly, ...]:
        """One anomaly per flagged feature."""
        return tuple(a for f in self.features if (a := f.anomaly()) is not None)

    def __getitem__(self, name: str) -> FeatureComparison:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"No feature {name!r} in this comparison")

    def to_json(self) -> dict[str, Any]:
        """The ``inspect compare --json`` document."""
        anomalies = self.anomalies
        return {
            "mode": self.mode,
            "ok": not anomalies,
            "baseline": _dataset_json(self.baseline),
            "current": _dataset_json(self.current),
            "num_flagged": len(anomalies),
            "anomalies": [a.to_json() for a in anomalies],
            "features": [f.to_json() for f in self.features],
        }


def compare_statistics(
    baseline: DatasetStatistics | Mapping[str, Any],
    current: DatasetStatistics | Mapping[str, Any],
    *,
    schema: Schema | None = None,
    mode: Mode = "skew",
    threshold: float | None = None,
    histograms: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]] | None = None,
    bins: Literal["cdf", "tfdv"] = "cdf",
) -> Comparison:
    """Compares two datasets' statistics feature by feature.

    Args:
        baseline: statistics of the baseline (training data, or the previous span).
        current: statistics of the current data (serving data, or the new span).
        schema: a schema whose constraints hold per-feature thresholds.
            Defaults to `None`.
        mode: ``"skew"`` (use ``skew_threshold``) or ``"drift"`` (use
            ``drift_threshold``). Defaults to `"skew"`.
        threshold: the threshold of features without one in the schema;
            ``None`` flags nothing for them. Defaults to `None`.
        histograms: per numeric feature, ``(baseline, current)`` histograms
            on the same edges (`common_histograms`) to use instead of
            the statistics' own. Defaults to `None`.
        bins: how numbers without ``histograms`` get common bins: ``"cdf"``
            (`cdf_histograms`: histogram and quantiles together) or
            ``"tfdv"`` (`align_histograms`: TFDV's rebinning of the
            equal-width histograms). Defaults to `"cdf"`.

    Returns:
        A `Comparison`.

    Raises:
        ConfigError: for a bad ``mode`` or ``threshold``.

    Examples:
        >>> from featurepipe.analysis import StatisticsAccumulator
        >>> from featurepipe.example import decode_examples, encode_example
        >>> def stats(values):
        ...     acc = StatisticsAccumulator()
        ...     acc.add(decode_examples([encode_example({"c": v}) for v in values]))
        ...     return acc.extract()
        >>> cmp = compare_statistics(stats([b"a", b"a", b"b", b"b"]),
        ...                          stats([b"a", b"b", b"b", b"b"]), threshold=0.2)
        >>> f = cmp["c"]
        >>> f.metric, f.distance, f.at_value, f.flagged
        ('linf', 0.25, 'a', True)
    """
    if mode not in ("skew", "drift"):
        raise ConfigError(f"`mode` must be 'skew' or 'drift'. Received: mode={mode!r}")
    if bins not in ("cdf", "tfdv"):
        raise ConfigError(f"`bins` must be 'cdf' or 'tfdv'. Received: bins={bins!r}")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0
    ):
        raise ConfigError(f"`threshold` must be a number >= 0. Received: {threshold!r}")
    base = statistics_document(baseline)
    cur = statistics_document(current)
    by_base = {str(f["name"]): f for f in base["features"]}
    by_cur = {str(f["name"]): f for f in cur["features"]}
    results = []
    for name in sorted(set(by_base) | set(by_cur)):
        limit = threshold
        if schema is not None:
            c = schema.constraints_for(name) if name in schema else None
            if c is not None:
                own = c.skew_threshold if mode == "skew" else c.drift_threshold
                if own is not None:
                    limit = own
        results.append(
            _compare_feature(
                name,
                by_base.get(name),
                by_cur.get(name),
                base,
                cur,
                limit,
                (histograms or {}).get(name),
                bins,
            )
        )
    results.sort(
        key=lambda r: (
            0 if r.status in ("baseline_only", "current_only", "kind_changed") else 1,
            -(r.distance if r.distance is not None else -1.0),
            r.name,
        )
    )
    return Comparison(mode, base, cur, tuple(results))


def _compare_feature(
    name: str,
    fb: Mapping[str, Any] | None,
    fc: Mapping[str, Any] | None,
    base: Mapping[str, Any],
    cur: Mapping[str, Any],
    threshold: float | None,
    common: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
    bins: str = "cdf",
) -> FeatureComparison:
    rate_b = _missing_rate(fb, base)
    rate_c = _missing_rate(fc, cur)
    kb = fb.get("kind") if fb is not None and int(fb.get("num_present", 0)) else None
    kc = fc.get("kind") if fc is not None and int(fc.get("num_present", 0)) else None
    kind = kc if kc is not None else kb
    shared: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "threshold": threshold,
        "baseline_missing_rate": rate_b,
        "current_missing_rate": rate_c,
        "baseline": fb,
        "current": fc,
    }
    if fb is None or fc is None or kb is None or kc is None:
        status = "both" if kb is None and kc is None else (
            "baseline_only" if kc is None else "current_only"
        )
        return FeatureComparison(
            status=status, metric=None, distance=None, at_value=None, flagged=False,
            new_values=None, vanished_values=None, **shared,
        )
    if kb != kc:
        return FeatureComparison(
            status="kind_changed", metric=None, distance=None, at_value=None, flagged=False,
            new_values=None, vanished_values=None, **shared,
        )
    metric: str | None = None
    distance: float | None = None
    at_value: Any = None
    new: tuple[tuple[Any, int], ...] | None = None
    vanished: tuple[tuple[Any, int], ...] | None = None
    if kc == "bytes":
        top_b, complete_b = _top_values(fb)
        top_c, complete_c = _top_values(fc)
        metric = "linf"
        if top_b or top_c:
            # Lists of different lengths (a stats file kept 20 values, the other side
            # 1000) are cut to the same number of most frequent values, so both sides
            # normalize over comparable sets.
            k = min(len(top_b), len(top_c))
            if (not complete_b or not complete_c) and len(top_b) != len(top_c) and k:
                cut_b, cut_c = _most_frequent(top_b, k), _most_frequent(top_c, k)
            else:
                cut_b, cut_c = top_b, top_c
            distance, key = linf_distance(cut_b, cut_c)
            at_value = _unhashable(key)
        if complete_b:
            new = tuple(
                sorted(
                    ((_unhashable(v), int(c)) for v, c in top_c.items() if v not in top_b),
                    key=lambda vc: -vc[1],
                )
            )
        if complete_c:
            vanished = tuple(
                sorted(
                    ((_unhashable(v), int(c)) for v, c in top_b.items() if v not in top_c),
                    key=lambda vc: -vc[1],
                )
            )
    elif kc in ("int64", "float"):
        metric = "jensen_shannon"
        if common is None and bins == "cdf":
            common = cdf_histograms(fb.get("numeric") or {}, fc.get("numeric") or {})
        if common is not None:
            distance = jensen_shannon_divergence(common[0], common[1])
        else:
            distance = jensen_shannon_divergence(_histogram(fb), _histogram(fc))
    flagged = distance is not None and threshold is not None and distance > threshold
    return FeatureComparison(
        status="both", metric=metric, distance=distance, at_value=at_value, flagged=flagged,
        new_values=new, vanished_values=vanished, histograms=common, **shared,
    )


def common_histograms(
    sketch_a: Any, sketch_b: Any, *, num_bins: int = 20, num_inf: tuple[int, int] = (0, 0)
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both datasets' histograms on common edges: the pooled quantiles.

    Args:
        sketch_a: the baseline's `featurepipe.analysis.QuantileSketch` of a feature.
        sketch_b: the current data's sketch of the same feature.
        num_bins: bins of equal pooled mass (fewer when edges repeat). Defaults to `20`.
        num_inf: infinite values of each side, added as a bucket. Defaults to `(0, 0)`.

    Returns:
        ``(baseline, current)``: ``{"edges", "counts", "num_nan", "num_inf"}``
        each, on the same edges (a point mass ``[x, x]`` when every finite
        value of both is ``x``), ready for `jensen_shannon_divergence`.

    Examples:
        >>> import numpy as np
        >>> from featurepipe.analysis import QuantileSketch
        >>> a, b = QuantileSketch(), QuantileSketch()
        >>> a.add(np.arange(100.0)); b.add(np.arange(50.0, 150.0))
        >>> ha, hb = common_histograms(a, b, num_bins=2)
        >>> ha["edges"], ha["counts"], hb["counts"]
        ([0.0, 74.0, 149.0], [1.0, 74.0, 25.0], [0.0, 25.0, 75.0])
    """
    import numpy as np

    va, wa = sketch_a._weighted()
    vb, wb = sketch_b._weighted()
    fa, fb = np.isfinite(va), np.isfinite(vb)
    va, wa, vb, wb = va[fa], wa[fa], vb[fb], wb[fb]
    pooled = np.concatenate((va, vb))
    out = []
    if pooled.size == 0:
        edges: list[float] = []
    else:
        order = np.argsort(pooled, kind="stable")
        vals = pooled[order]
        cum = np.cumsum(np.concatenate((wa, wb))[order])
        targets = cum[-1] * np.arange(1, num_bins) / num_bins
        inner = vals[np.minimum(np.searchsorted(cum, targets), vals.size - 1)]
        edges = sorted({float(vals[0]), float(vals[-1]), *(float(x) for x in inner)})
    for v, w, sketch, inf in ((va, wa, sketch_a, num_inf[0]), (vb, wb, sketch_b, num_inf[1])):
        if edges:
            idx = np.searchsorted(np.asarray(edges), v, side="left")
            counts = [float(c) for c in np.bincount(idx, weights=w, minlength=len(edges))]
        else:
            counts = []
        out.append(
            {
                "edges": edges,
                "counts": counts,
                "closed": "right",
                "num_nan": int(sketch.num_nan),
                "num_inf": inf,
            }
        )
    return out[0], out[1]


def cdf_histograms(
    num_a: Mapping[str, Any], num_b: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both datasets' histograms on common edges, from statistics documents.

    Each side's cumulative distribution is drawn through every point its
    statistics give: the histogram's edges with their cumulative fractions,
    and the quantiles (which split the heavy first bin of a skewed feature);
    linear between those points, with a jump where quantiles repeat (a value
    that holds that much mass). Both are read at the union of the two sides'
    points, giving bins ``{e0}, (e0, e1], ...`` on the same edges.

    Args:
        num_a: the baseline's ``numeric`` statistics (``histogram``,
            ``quantiles``, ``count``, ``num_nan``, ``num_inf``).
        num_b: the same for the current data.

    Returns:
        ``(baseline, current)`` right-closed histograms for `jensen_shannon_divergence`.

    Examples:
        >>> a = {"count": 4, "histogram": {"edges": [0, 2], "counts": [4]},
        ...      "quantiles": [[0.0, 0], [0.5, 1], [1.0, 2]]}
        >>> b = {"count": 2, "histogram": {"edges": [1, 3], "counts": [2]},
        ...      "quantiles": [[0.0, 1], [1.0, 3]]}
        >>> ha, hb = cdf_histograms(a, b)
        >>> ha["edges"], ha["counts"], hb["counts"]
        ([0.0, 1.0, 2.0, 3.0], [0.0, 2.0, 2.0, 0.0], [0.0, 0.0, 1.0, 1.0])
    """
    ka, kb = _cdf_knots(num_a), _cdf_knots(num_b)
    edges = sorted({x for x, _ in ka} | {x for x, _ in kb})
    out = []
    for knots, num in ((ka, num_a), (kb, num_b)):
        total = float(sum(float(c) for c in (num.get("histogram") or {}).get("counts", [])))
        cdf = [_cdf_at(knots, x) for x in edges]
        counts = [cdf[0] * total] + [
            max(cdf[j + 1] - cdf[j], 0.0) * total for j in range(len(edges) - 1)
        ]
        out.append(
            {
                "edges": edges,
                "counts": counts if knots else [0.0] * len(edges),
                "closed": "right",
                "num_nan": num.get("num_nan", 0),
                "num_inf": num.get("num_inf", 0),
            }
        )
    return out[0], out[1]


def _cdf_knots(num: Mapping[str, Any]) -> list[tuple[float, float]]:
    """``(x, F(x))`` points of a side's distribution of finite values, sorted, monotone."""
    hist = num.get("histogram") or {}
    edges = [float(e) for e in hist.get("edges", [])]
    counts = [float(c) for c in hist.get("counts", [])]
    total = sum(counts)
    if total <= 0:
        return []
    knots = [(edges[0], 0.0)]
    if len(counts) == 1 and edges[0] == edges[-1]:
        knots.append((edges[0], 1.0))
    else:
        run = 0.0
        for j, c in enumerate(counts):
            run += c
            knots.append((edges[j + 1], run / total))
    for f, v in num.get("quantiles", []):
        x = float(v)
        if math.isfinite(x):
            knots.append((x, float(f)))
    knots.sort()
    out, top = [], 0.0
    for x, f in knots:
        top = max(top, min(f, 1.0))
        out.append((x, top))
    out[-1] = (out[-1][0], 1.0)
    return out


def _cdf_at(knots: Sequence[tuple[float, float]], x: float) -> float:
    """The right-continuous CDF through ``knots`` at ``x`` (linear between knots)."""
    if not knots or x < knots[0][0]:
        return 0.0
    xs = [k[0] for k in knots]
    i = bisect.bisect_right(xs, x)  # knots[:i] have kx <= x
    if i == len(knots):
        return 1.0
    # knots are sorted by (x, F): knots[i - 1] is the right limit at or before x,
    # knots[i] the left limit at the next knot position
    x0, f0 = knots[i - 1]
    x1, f1 = knots[i]
    if x == x0:
        return f0
    return f0 + (f1 - f0) * (x - x0) / (x1 - x0)


def compare_data(
    baseline: Any,
    current: Any,
    *,
    schema: Schema | None = None,
    mode: Mode = "skew",
    threshold: float | None = None,
    options: Any = None,
    num_bins: int = 20,
    progress: Any = None,
    **read_options: Any,
) -> Comparison:
    """Reads two sets of TFRecord files of tf.Example and compares them.

    Statistics as `featurepipe.analysis.compute_statistics` computes them (top
    values: ``VALIDATION_TOP_K``), with numbers compared on common
    pooled-quantile bins (`common_histograms`), then `compare_statistics`.

    Args:
        baseline: paths or globs of the baseline data.
        current: paths or globs of the current data.
        schema: as for `compare_statistics`. Defaults to `None`.
        mode: as for `compare_statistics`. Defaults to `"skew"`.
        threshold: as for `compare_statistics`. Defaults to `None`.
        options: a `featurepipe.analysis.StatsOptions`. Defaults to `None`.
        num_bins: common bins per numeric feature. Defaults to `20`.
        progress: called as ``progress(side, records_done, bytes_done)`` with
            side ``"baseline"`` or ``"current"``. Defaults to `None`.
        **read_options: passed to `featurepipe.tfrecord.iter_records`.

    Returns:
        A `Comparison`.

    Raises:
        DataError: damaged records or payloads that are not Examples.
        ConfigError: paths that match nothing, bad options.

    Examples:
        >>> import os, tempfile
        >>> from featurepipe.example import encode_example
        >>> from featurepipe.tfrecord import TFRecordWriter
        >>> d = tempfile.mkdtemp()
        >>> for name, xs in (("a", range(100)), ("b", range(50, 150))):
        ...     with TFRecordWriter(os.path.join(d, name)) as w:
        ...         for x in xs:
        ...             w.write(encode_example({"x": float(x)}))
        >>> f = compare_data(os.path.join(d, "a"), os.path.join(d, "b"), threshold=0.1)["x"]
        >>> f.metric, round(f.distance, 3), f.flagged
        ('jensen_shannon', 0.5, True)
    """
    from featurepipe.analysis._stats import StatisticsAccumulator, StatsOptions, expand_sources
    from featurepipe.analysis._validate import VALIDATION_TOP_K, decode_batches
    from featurepipe.tfrecord import batch_records, iter_records

    opts = options if options is not None else StatsOptions(top_k=VALIDATION_TOP_K)
    accs, docs = [], []
    for side, sources in (("baseline", baseline), ("current", current)):
        names, srcs = expand_sources(sources)
        acc = StatisticsAccumulator(opts)
        done = nbytes = 0
        records = iter_records(srcs, **read_options)
        for path, first, batch in batch_records(records, opts.batch_size):
            for cols in decode_batches(batch, path=path, first_index=first):
                acc.add(cols)
            done += len(batch)
            nbytes += sum(map(len, batch))
            if progress is not None:
                progress(side, done, nbytes)
        accs.append(acc)
        docs.append(acc.extract(names).to_json())
    hists = {}
    for name, fa in accs[0].features.items():
        fb = accs[1].features.get(name)
        if fb is None or fa.sketch is None or fb.sketch is None or fa.kinds != fb.kinds:
            continue
        inf = (
            fa.moments.num_inf if fa.moments is not None else 0,
            fb.moments.num_inf if fb.moments is not None else 0,
        )
        hists[name] = common_histograms(fa.sketch, fb.sketch, num_bins=num_bins, num_inf=inf)
    return compare_statistics(
        docs[0], docs[1], schema=schema, mode=mode, threshold=threshold, histograms=hists
    )


# --------------------------------------------------------------------------- helpers


def _split(hist: Mapping[str, Any]) -> tuple[list[float], list[float], dict[float, float]]:
    edges = [float(e) for e in hist.get("edges", [])]
    counts = [float(c) for c in hist.get("counts", [])]
    if not counts:
        return [], [], {}
    if len(counts) == 1 and edges[0] == edges[1]:
        return [], [], {edges[0]: counts[0]}
    return edges, counts, {}


def _rebin(edges: Sequence[float], counts: Sequence[float], common: Sequence[float]) -> list[float]:
    """Spread ``counts`` over the ``common`` bins (which include every edge of ``edges``)."""
    out = []
    for j in range(len(common) - 1):
        lo, hi = common[j], common[j + 1]
        i = bisect.bisect_right(edges, (lo + hi) / 2) - 1
        if 0 <= i < len(counts) and edges[i + 1] > edges[i]:
            out.append(counts[i] * (hi - lo) / (edges[i + 1] - edges[i]))
        else:
            out.append(0.0)
    return out


def _histogram(f: Mapping[str, Any]) -> dict[str, Any]:
    num = f.get("numeric") or {}
    hist = dict(num.get("histogram") or {})
    hist["num_nan"] = num.get("num_nan", 0)
    hist["num_inf"] = num.get("num_inf", 0)
    return hist


def _top_values(f: Mapping[str, Any]) -> tuple[dict[Any, float], bool]:
    byt = f.get("bytes") or {}
    listed = {_hashable(v): float(c) for v, c in byt.get("top_values", [])}
    total = float((f.get("value_counts") or {}).get("num_values", 0))
    complete = bool(byt.get("top_values_exact", True)) and sum(listed.values()) >= total
    return listed, complete


def _most_frequent(counts: Mapping[Any, float], k: int) -> dict[Any, float]:
    top = sorted(counts.items(), key=lambda vc: (-vc[1], repr(vc[0])))[:k]
    return dict(top)


def _missing_rate(f: Mapping[str, Any] | None, doc: Mapping[str, Any]) -> float | None:
    n = int(doc.get("num_examples", 0))
    if not n:
        return None
    if f is None:
        return 1.0
    return float(f.get("num_missing", n - int(f.get("num_present", 0)))) / n


def _dataset_json(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {"num_examples": doc.get("num_examples", 0), "sources": list(doc.get("sources", []))}


def _hashable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return ("base64", str(v.get("base64")))
    return v


def _unhashable(v: Any) -> Any:
    if isinstance(v, tuple) and len(v) == 2 and v[0] == "base64":
        return {"base64": v[1]}
    return v


def _g(x: float) -> str:
    return f"{x:.6g}"
