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
  value where it is reached is reported.
* int64 and float features: the **Jensen-Shannon divergence**
  (`jensen_shannon_divergence`) of the histograms, with logarithms in
  **base 2**, so it lies in [0, 1] (TFDV also uses ``log2`` and caps the
  result at 1). The two histograms are first put on **common bins**: the
  sorted union of both histograms' bin edges; each original bin's count is
  spread over the common bins inside it in proportion to their width (values
  are taken as uniform within a bin, as TFDV's ``RebucketHistogram`` does).
  A histogram of one value (min = max) is a point mass, a bin of its own
  keyed by that value, as in TFDV.

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
            and ``"num_inf"`` counts to add as buckets of their own.
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
    for key, label in (("num_inf", "inf"), ("num_nan", "NaN")):
        na, nb = float(hist_a.get(key, 0) or 0), float(hist_b.get(key, 0) or 0)
        if na or nb:
            labels.append(label)
            out_a.append(na)
            out_b.append(nb)
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
            _compare_feature(name, by_base.get(name), by_cur.get(name), base, cur, limit)
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
) -> FeatureComparison:
    rate_b = _missing_rate(fb, base)
    rate_c = _missing_rate(fc, cur)
    kb = fb.get("kind") if fb is not None and int(fb.get("num_present", 0)) else None
    kc = fc.get("kind") if fc is not None and int(fc.get("num_present", 0)) else None
    kind = kc if kc is not None else kb
    common: dict[str, Any] = {
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
            new_values=None, vanished_values=None, **common,
        )
    if kb != kc:
        return FeatureComparison(
            status="kind_changed", metric=None, distance=None, at_value=None, flagged=False,
            new_values=None, vanished_values=None, **common,
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
            distance, key = linf_distance(top_b, top_c)
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
        distance = jensen_shannon_divergence(_histogram(fb), _histogram(fc))
    flagged = distance is not None and threshold is not None and distance > threshold
    return FeatureComparison(
        status="both", metric=metric, distance=distance, at_value=at_value, flagged=flagged,
        new_values=new, vanished_values=vanished, **common,
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
