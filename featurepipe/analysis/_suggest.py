"""``featurepipe columns suggest``: a starter column spec from the data's statistics.

:func:`suggest_columns` reads the statistics of a dataset (computed, or the
``statistics.json`` of ``featurepipe analyze``) and writes the spec a
practitioner would start from, one compact column (see
:mod:`featurepipe.columns._compact`) per feature, each with a ``"why"``
(a comment the loader ignores). Every value the columns need (vocabularies,
means and variances, bucket boundaries) is filled from the statistics, so the
spec trains without ``--artifacts``. The rules, in order:

1. the label is left out;
2. a feature with no values, or one value everywhere (distinct count <= 1),
   is left out: nothing to learn;
3. id-like features are left out: bytes whose values (nearly) all differ
   (distinct >= 90% of the values, :data:`ID_FRACTION`, 20 values or more,
   or every value different), and int64 whose values all differ and are
   consecutive numbers (``max - min + 1 <= 1.1 * values``: a row number) or
   whose name says id (``id``, ``*_id``, ``index``, ``Unnamed: N``, ``""``);
4. bytes (strings), D = distinct values:
   - D <= 20 (:data:`SMALL_DOMAIN`): vocabulary (the values, most frequent
     first, one out-of-vocabulary bucket) as an indicator (one-hot; counts for
     lists);
   - 20 < D <= 1,000 (:data:`MAX_VOCABULARY`) with every value known: the
     same vocabulary as an embedding;
   - else: hashed into the power of two >= 2 D bins (at most 2**20), as an
     embedding;
   - embedding dimension: ``ceil(6 * D ** 0.25)`` (the rule of thumb of
     the TensorFlow team's "Introducing TensorFlow Feature Columns", Google
     Developers Blog, 2017: 1,000 values -> 34);
5. numbers (int64 and float; lists only of one fixed length):
   - z-score (mean and variance from the statistics);
   - bucketized by the statistics' quantiles (1st ... 99th percentile,
     distinct values: up to 10 buckets) when skewed: one tail is more than 3
     times as long as the other (:data:`SKEW_RATIO`), measured from the
     median to the 1st and the 99th percentile; a tail of length 0 against a
     longer one is skewed too (a spike with a tail, e.g. mostly zeros);
   - a number missing in some examples gets the mean (z-score) or the median
     (buckets) as its default; variable-length number lists are left out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from featurepipe._version import __version__
from featurepipe.analysis._stats import DatasetStatistics, is_unique_count
from featurepipe.columns import FORMAT_VERSION, ColumnSpecs
from featurepipe.errors import ConfigError
from featurepipe.example import float32_repr

__all__ = [
    "ID_FRACTION",
    "MAX_VOCABULARY",
    "SKEW_RATIO",
    "SMALL_DOMAIN",
    "Suggestion",
    "embedding_dimension",
    "is_skewed",
    "suggest_columns",
]

#: Bytes features with at most this many distinct values get vocabulary + indicator.
SMALL_DOMAIN = 20
#: Bytes features with more (and every value known) get vocabulary + embedding, else hashed.
MAX_VOCABULARY = 1000
#: A bytes feature whose distinct values are at least this fraction of its values is an id.
ID_FRACTION = 0.9
#: A numeric feature with one tail more than this many times the other is skewed.
SKEW_RATIO = 3.0
_MAX_HASH_BINS = 1 << 20
_ID_NAME = re.compile(r"^(|id|.*[_ .-]id|index|row|row_?number|unnamed: \d+)$", re.IGNORECASE)
_BUCKET_FRACTIONS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class Suggestion:
    """What :func:`suggest_columns` chose.

    Attributes:
        columns: one compact column object per feature kept, each with ``"why"``.
        left_out: ``{"key", "why"}`` of each feature left out.
        label: the label.
        num_examples: examples the statistics describe.
    """

    columns: tuple[dict[str, Any], ...]
    left_out: tuple[dict[str, str], ...]
    label: str
    num_examples: int

    def to_json(self) -> dict[str, Any]:
        """The column specs document (compact columns; ``label``, ``left_out`` are comments)."""
        return {
            "format_version": FORMAT_VERSION,
            "featurepipe_version": __version__,
            "label": self.label,
            "columns": [dict(c) for c in self.columns],
            "left_out": [dict(c) for c in self.left_out],
        }

    @property
    def specs(self) -> ColumnSpecs:
        """The columns as :class:`~featurepipe.columns.ColumnSpecs`."""
        return ColumnSpecs.from_config(self.to_json())

    def lines(self) -> list[str]:
        """One line per feature: its choice and why (what the CLI prints on stderr)."""
        rows = [(str(c["key"]), _choice(c), str(c["why"])) for c in self.columns]
        rows += [(c["key"], "left out", c["why"]) for c in self.left_out]
        width = max((len(k) for k, _, _ in rows), default=0)
        cw = max((len(c) for _, c, _ in rows), default=0)
        return [f"{k:<{width}}  {c:<{cw}}  {w}" for k, c, w in rows]


def embedding_dimension(cardinality: int) -> int:
    """``ceil(6 * cardinality ** 0.25)``: the embedding width for a domain of this size.

    Examples:
        >>> embedding_dimension(1000), embedding_dimension(50), embedding_dimension(1)
        (34, 16, 6)
    """
    root: float = math.sqrt(math.sqrt(max(1, cardinality)))
    return math.ceil(6.0 * root)


def is_skewed(p01: float, median: float, p99: float) -> bool:
    """Whether one tail (median to the 1st / 99th percentile) is > 3x the other.

    Examples:
        >>> is_skewed(-2.3, 0.0, 2.3), is_skewed(0.1, 1.0, 10.3), is_skewed(0.0, 0.0, 5.0)
        (False, True, True)
        >>> is_skewed(4.0, 4.0, 4.0)
        False
    """
    low, high = median - p01, p99 - median
    if not (math.isfinite(low) and math.isfinite(high)):
        return False
    if low <= 0 or high <= 0:
        return max(low, high) > 0
    return max(low, high) > SKEW_RATIO * min(low, high)


def suggest_columns(statistics: DatasetStatistics | Mapping[str, Any], label: str) -> Suggestion:
    """A starter column spec from a dataset's statistics (the rules: the module docstring).

    Args:
        statistics: :class:`~featurepipe.analysis.DatasetStatistics` or its JSON
            document (``inspect stats --json``, ``analyze``'s ``statistics.json``).
        label: the label feature (left out).

    Returns:
        A :class:`Suggestion`.

    Raises:
        ConfigError: when the label is not in the statistics, or no feature is left.

    Examples:
        >>> from featurepipe.analysis import StatisticsAccumulator
        >>> from featurepipe.example import decode_examples, encode_example
        >>> acc = StatisticsAccumulator()
        >>> acc.add(decode_examples([encode_example({"id": f"r{i}", "cut": "ab"[i % 2],
        ...     "x": float(i), "y": i % 2}) for i in range(50)]))
        >>> s = suggest_columns(acc.extract(), "y")
        >>> [(c["key"], c["type"], c.get("as")) for c in s.columns]
        [('cut', 'vocabulary', 'indicator'), ('x', 'numeric', None)]
        >>> s.left_out[0]["key"], s.left_out[1]["why"]
        ('id', 'the label')
    """
    doc = statistics.to_json() if isinstance(statistics, DatasetStatistics) else statistics
    features = list(doc.get("features", []))
    names = [str(f.get("name")) for f in features]
    if label not in names:
        raise ConfigError(
            f"The label {label!r} is not a feature of this data (features: {names}); check --label."
        )
    columns: list[dict[str, Any]] = []
    left_out: list[dict[str, str]] = []
    for f in features:
        name = str(f["name"])
        if name == label:
            left_out.append({"key": name, "why": "the label"})
            continue
        column, why = _suggest_one(f)
        if column is None:
            left_out.append({"key": name, "why": why})
        else:
            columns.append({**column, "why": why})
    if not columns:
        raise ConfigError(
            "No feature is left to learn from: "
            + "; ".join(f"{c['key']}: {c['why']}" for c in left_out)
        )
    suggestion = Suggestion(tuple(columns), tuple(left_out), label, int(doc.get("num_examples", 0)))
    suggestion.specs  # noqa: B018 - every suggested column must load
    return suggestion


# -- private -----------------------------------------------------------------------------------


def _suggest_one(f: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    name = str(f["name"])
    kind = f.get("kind")
    vc = f.get("value_counts", {})
    num_values = int(vc.get("num_values", 0) or 0)
    distinct = int(f.get("distinct_estimate", 0) or 0)
    if kind not in ("int64", "float", "bytes"):
        why = "no values" if not kind else f"its kind differs between examples ({kind})"
        return None, why
    if num_values == 0 or distinct <= 1:
        return None, "one value everywhere: nothing to learn" if num_values else "no values"
    unique = is_unique_count(distinct, num_values)
    if kind == "bytes":
        if unique or (num_values >= 20 and distinct >= ID_FRACTION * num_values):
            return None, (
                f"id-like: {distinct:,} distinct values in {num_values:,} "
                + ("(every value different)" if unique else f"(>= {ID_FRACTION:.0%})")
            )
        return _categorical(name, f, distinct)
    num = f.get("numeric") or {}
    if kind == "int64" and unique:
        span = _float(num.get("max")) - _float(num.get("min")) + 1
        if _ID_NAME.match(name) or span <= 1.1 * num_values:
            return None, (
                f"id-like: {num_values:,} different integers"
                + (" in a consecutive range (a row number)" if span <= 1.1 * num_values else "")
                + (f", named {name!r}" if _ID_NAME.match(name) else "")
            )
    lo, hi = int(vc.get("min", 0) or 0), int(vc.get("max", 0) or 0)
    missing = int(f.get("num_missing", 0) or 0)
    if lo != hi or (hi != 1 and missing):
        return (
            None,
            f"a list of {lo} to {hi} numbers per example: no fixed shape for a numeric column",
        )
    return _numeric(name, kind, f, hi, missing)


def _categorical(name: str, f: Mapping[str, Any], distinct: int) -> tuple[dict[str, Any], str]:
    byt = f.get("bytes") or {}
    top = [v for v, _ in byt.get("top_values", [])]
    known = (
        bool(byt.get("top_values_exact"))
        and len(top) >= distinct
        and all(isinstance(v, str) for v in top)
    )
    lists = int((f.get("value_counts") or {}).get("max", 1) or 1) > 1
    per = " (lists: counts per value)" if lists else ""
    if known and distinct <= SMALL_DOMAIN:
        return (
            {"key": name, "type": "vocabulary", "vocabulary": top, "num_oov_buckets": 1,
             "as": "indicator"},
            f"{distinct} values (<= {SMALL_DOMAIN}): vocabulary + indicator{per}",
        )  # fmt: skip
    dim = embedding_dimension(distinct)
    combiner = "; lists: mean" if lists else ""
    if known and distinct <= MAX_VOCABULARY:
        return (
            {"key": name, "type": "vocabulary", "vocabulary": top, "num_oov_buckets": 1,
             "as": "embedding", "dimension": dim},
            f"{distinct:,} values (> {SMALL_DOMAIN}): vocabulary + embedding of "
            f"ceil(6 * {distinct:,} ** 0.25) = {dim}{combiner}",
        )  # fmt: skip
    bins = min(_MAX_HASH_BINS, 1 << max(1, (2 * distinct - 1).bit_length()))
    reason = f"> {MAX_VOCABULARY:,}" if distinct > MAX_VOCABULARY else "not every value is known"
    return (
        {"key": name, "type": "hashed", "num_bins": bins, "as": "embedding", "dimension": dim},
        f"~{distinct:,} values ({reason}): hashed into {bins:,} bins + embedding of "
        f"ceil(6 * {distinct:,} ** 0.25) = {dim}{combiner}",
    )


def _numeric(
    name: str, kind: str, f: Mapping[str, Any], size: int, missing: int
) -> tuple[dict[str, Any], str]:
    num = f.get("numeric") or {}
    quantiles = {round(float(q), 4): _float(v) for q, v in num.get("quantiles", [])}
    p01, median, p99 = quantiles.get(0.01), quantiles.get(0.5), quantiles.get(0.99)
    column: dict[str, Any] = {"key": name}
    if kind == "int64":
        column["dtype"] = "int64"
    if size != 1:
        column["shape"] = [size]
    mean, variance = _float(num.get("mean")), _float(num.get("variance"))
    if (
        size == 1
        and p01 is not None
        and median is not None
        and p99 is not None
        and is_skewed(p01, median, p99)
    ):
        boundaries = sorted(
            {
                _short(quantiles[q], kind)
                for q in _BUCKET_FRACTIONS
                if q in quantiles and math.isfinite(quantiles[q])
            }
        )
        if boundaries:
            if missing:
                column["default_value"] = int(median) if kind == "int64" else median
            column.update(type="bucketized", bin_boundaries=boundaries)
            return column, (
                f"skewed (median {median:.4g}, 1st / 99th percentile {p01:.4g} / {p99:.4g}): "
                f"{len(boundaries) + 1} buckets at its percentiles"
                + (f"; missing in {missing:,}: the median" if missing else "")
            )
    if not (math.isfinite(mean) and math.isfinite(variance)):
        column.update(type="numeric")
        return column, "numbers without a finite mean / variance: raw values"
    if missing:
        column["default_value"] = round(mean) if kind == "int64" else mean
    column.update(
        type="numeric", normalizer={"kind": "z_score", "mean": mean, "variance": variance}
    )
    return column, (
        f"numbers (mean {mean:.4g}, std {math.sqrt(max(variance, 0.0)):.4g}), not skewed: z-score"
        + (f"; missing in {missing:,}: the mean" if missing else "")
    )


def _short(value: float, kind: str) -> float:
    # A float feature's quantiles are float32 values: their shortest float32 spelling.
    return float(float32_repr(value)) if kind == "float" else value


def _choice(column: Mapping[str, Any]) -> str:
    kind = str(column["type"])
    if kind == "numeric" and isinstance(column.get("normalizer"), Mapping):
        kind += " z-score"
    return kind + (f" + {column['as']}" if column.get("as") else "")


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
