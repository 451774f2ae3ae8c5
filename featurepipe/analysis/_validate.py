"""Data validation: anomalies of dataset statistics against a schema.

`validate_statistics` checks the ``featurepipe inspect stats --json``
document (or a `DatasetStatistics`) against a `featurepipe.example.Schema` and
its `featurepipe.example.FeatureConstraints`, and returns `Anomaly` objects
named like TensorFlow Data Validation's anomaly types (the ``AnomalyInfo.Type``
enum of tensorflow/metadata, ``tensorflow_metadata/proto/v0/anomalies.proto``):

========================================  ==================================================
``SCHEMA_MISSING_COLUMN``                 a feature the schema needs is in no example
``SCHEMA_NEW_COLUMN``                     a feature in the data is not in the schema
``UNEXPECTED_DATA_TYPE``                  the data's kind differs from the schema's
``FEATURE_TYPE_LOW_FRACTION_PRESENT``     present in fewer examples than ``min_fraction``
                                          (``required`` means a ``min_fraction`` of 1)
``FEATURE_TYPE_LOW_NUMBER_PRESENT``       present in fewer examples than ``min_count``
``FEATURE_TYPE_LOW_NUMBER_VALUES``        an example has fewer values than allowed
``FEATURE_TYPE_HIGH_NUMBER_VALUES``       an example has more values than allowed
``ENUM_TYPE_UNEXPECTED_STRING_VALUES``    bytes values outside the domain's ``values``
``INT_TYPE_SMALL_INT`` / ``INT_TYPE_BIG_INT``          int64 values below / above the domain
``FLOAT_TYPE_SMALL_FLOAT`` / ``FLOAT_TYPE_BIG_FLOAT``  float values below / above the domain
========================================  ==================================================

Each feature gets each type at most once. A feature missing from every
example gets only ``SCHEMA_MISSING_COLUMN`` (the presence and value checks
would say the same thing again); a kind change skips the domain checks.

From data (`validate_data`), counts are exact: one pass computes the
statistics and counts every value outside a domain. From a statistics file,
the counts of unexpected strings come from its top values (exact when the
list holds every value, else lower bounds: ``approximate`` is set) and the
counts of out-of-range numbers are unknown (``count`` is ``None``; the
minimum or maximum that breaks the domain is still reported).

`infer_constraints` proposes constraints from statistics for a user to edit
(``featurepipe inspect schema --with-domains``).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from featurepipe.analysis._stats import (
    STATS_FORMAT_VERSION,
    DatasetStatistics,
    StatisticsAccumulator,
    StatsOptions,
    expand_sources,
)
from featurepipe.errors import ConfigError
from featurepipe.example import FeatureConstraints, Schema, json_float, json_value

__all__ = [
    "ANOMALY_TYPES",
    "VALIDATION_TOP_K",
    "Anomaly",
    "DomainCounter",
    "ValidationResult",
    "decode_batches",
    "infer_constraints",
    "is_statistics_file",
    "load_statistics",
    "statistics_document",
    "validate_data",
    "validate_statistics",
]

#: Anomaly types this module reports (TFDV's names).
ANOMALY_TYPES = (
    "SCHEMA_MISSING_COLUMN",
    "SCHEMA_NEW_COLUMN",
    "UNEXPECTED_DATA_TYPE",
    "FEATURE_TYPE_LOW_FRACTION_PRESENT",
    "FEATURE_TYPE_LOW_NUMBER_PRESENT",
    "FEATURE_TYPE_LOW_NUMBER_VALUES",
    "FEATURE_TYPE_HIGH_NUMBER_VALUES",
    "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
    "INT_TYPE_SMALL_INT",
    "INT_TYPE_BIG_INT",
    "FLOAT_TYPE_SMALL_FLOAT",
    "FLOAT_TYPE_BIG_FLOAT",
)

#: Top values kept per bytes feature when validate / compare read data: TFDV's
#: comparators use its rank histogram, 1000 values by default.
VALIDATION_TOP_K = 1000

# Unexpected values listed in an anomaly.
_SHOWN_VALUES = 10


@dataclass(frozen=True)
class Anomaly:
    """One way the data breaks the schema.

    Attributes:
        type: the anomaly type, TFDV's name (see `ANOMALY_TYPES`).
        feature: the feature name.
        description: one line for people.
        severity: ``"ERROR"`` (every type this module reports is one).
        count: how many examples (presence, value counts, kind) or values
            (domains) are affected; ``None`` when the statistics cannot tell.
        fraction: ``count`` as a fraction of the examples or values checked,
            when known.
        approximate: True when ``count`` is a lower bound (from a truncated
            top-values list).
        values: for unexpected strings: the most frequent ``(value, count)``
            pairs outside the domain (JSON forms of the values).
        expected: what the schema allows, in words or numbers.
        observed: what the data has.
    """

    type: str
    feature: str
    description: str
    severity: str = "ERROR"
    count: int | None = None
    fraction: float | None = None
    approximate: bool = False
    values: tuple[tuple[Any, int], ...] = ()
    expected: Any = None
    observed: Any = None

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-able dict (``values`` as ``[value, count]`` lists)."""
        out: dict[str, Any] = {
            "type": self.type,
            "feature": self.feature,
            "severity": self.severity,
            "description": self.description,
            "count": self.count,
            "fraction": _finite_or_none(self.fraction),
            "approximate": self.approximate,
        }
        if self.values:
            out["values"] = [[v, c] for v, c in self.values]
        if self.expected is not None:
            out["expected"] = _json_safe(self.expected)
        if self.observed is not None:
            out["observed"] = _json_safe(self.observed)
        return out


def _json_safe(x: Any) -> Any:
    """``x`` with non-finite floats spelled as strict JSON allows (``"Infinity"``, ...)."""
    if isinstance(x, float):
        return json_float(x)
    if isinstance(x, Mapping):
        return {k: _json_safe(v) for k, v in x.items()}
    return x


@dataclass(frozen=True)
class ValidationResult:
    """What `validate_data` found.

    Attributes:
        statistics: the ``inspect stats --json`` document of the data.
        anomalies: the anomalies, by feature then type.
    """

    statistics: Mapping[str, Any]
    anomalies: tuple[Anomaly, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when there is no anomaly."""
        return not self.anomalies

    def to_json(self) -> dict[str, Any]:
        """The ``inspect validate --json`` document."""
        return {
            "ok": self.ok,
            "num_examples": self.statistics.get("num_examples", 0),
            "sources": list(self.statistics.get("sources", [])),
            "num_anomalies": len(self.anomalies),
            "anomalies": [a.to_json() for a in self.anomalies],
        }


class DomainCounter:
    """Exact counts of values outside each feature's domain, over batches.

    For a bytes feature with domain ``values``: every value outside it and its
    count, and the number of values seen. For an int64 / float feature with a
    ``min`` / ``max``: the values below and above. Batches where the feature
    has another kind than the schema's are not counted (that is
    ``UNEXPECTED_DATA_TYPE``).

    Args:
        schema: the schema with constraints.

    Examples:
        >>> from featurepipe.example import FeatureSchema, decode_examples, encode_example
        >>> schema = Schema((FeatureSchema("c", "bytes", shape=()),),
        ...                 (FeatureConstraints("c", values=(b"a",)),))
        >>> counter = DomainCounter(schema)
        >>> counter.add(decode_examples([encode_example({"c": v}) for v in [b"a", b"b", b"b"]]))
        >>> counter.unexpected["c"], counter.num_values["c"]
        (Counter({b'b': 2}), 3)
    """

    def __init__(self, schema: Schema) -> None:
        self.kinds = {f.name: f.kind for f in schema}
        self.domains: dict[str, frozenset[bytes]] = {}
        self.ranges: dict[str, tuple[float | None, float | None]] = {}
        for c in schema.constraints:
            if c.values is not None:
                self.domains[c.name] = frozenset(c.values)
            if c.min is not None or c.max is not None:
                self.ranges[c.name] = (c.min, c.max)
        self.unexpected: dict[str, Counter[bytes]] = {n: Counter() for n in self.domains}
        self.num_values: dict[str, int] = dict.fromkeys(self.domains, 0)
        self.below: dict[str, int] = dict.fromkeys(self.ranges, 0)
        self.above: dict[str, int] = dict.fromkeys(self.ranges, 0)

    def add(self, batch: Any) -> None:
        """Counts a decoded batch (`featurepipe.example.decode_examples` output)."""
        columns = batch.columns
        for name, domain in self.domains.items():
            col = columns.get(name)
            if col is None or col.kind != "bytes" or col.values.size == 0:
                continue
            items = col.values.tolist()
            self.num_values[name] += len(items)
            self.unexpected[name].update(v for v in items if v not in domain)
        for name, (lo, hi) in self.ranges.items():
            col = columns.get(name)
            if col is None or col.kind != self.kinds[name] or col.values.size == 0:
                continue
            vals = col.values
            if lo is not None:
                self.below[name] += int((vals < lo).sum())
            if hi is not None:
                self.above[name] += int((vals > hi).sum())

    def merge(self, other: DomainCounter) -> DomainCounter:
        """Merges ``other`` (built from the same schema) into ``self``; returns ``self``."""
        for n, c in other.unexpected.items():
            self.unexpected.setdefault(n, Counter()).update(c)
        for attr in ("num_values", "below", "above"):
            mine, theirs = getattr(self, attr), getattr(other, attr)
            for n, v in theirs.items():
                mine[n] = mine.get(n, 0) + v
        return self


def statistics_document(stats: DatasetStatistics | Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``inspect stats --json`` document of ``stats`` (returned as is if it is one).

    Raises:
        ConfigError: if a mapping does not look like a statistics document.

    Examples:
        >>> doc = statistics_document(StatisticsAccumulator().extract())
        >>> doc["format_version"], doc["num_examples"], doc["features"]
        (1, 0, [])
        >>> statistics_document({"features": [], "format_version": 1})["features"]
        []
    """
    if isinstance(stats, DatasetStatistics):
        return stats.to_json()
    if not isinstance(stats, Mapping) or not isinstance(stats.get("features"), list):
        raise ConfigError(
            "Expected featurepipe statistics (the `inspect stats --json` document). "
            f"Received: {type(stats).__name__}"
        )
    version = stats.get("format_version")
    if not isinstance(version, int) or version > STATS_FORMAT_VERSION:
        raise ConfigError(
            f"Statistics with format_version={version!r}: this featurepipe reads "
            f"format_version <= {STATS_FORMAT_VERSION}."
        )
    return stats


def is_statistics_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a JSON file (a ``.json`` name, or text starting with ``{``).

    TFRecord files start with an 8-byte length and GZIP / ZLIB files with
    their magic bytes; a ``{`` first byte is also checked to parse as JSON.

    Examples:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> with open(os.path.join(d, "stats"), "w") as f:
        ...     _ = f.write('{"format_version": 1, "features": []}')
        >>> is_statistics_file(os.path.join(d, "stats")), is_statistics_file(d + "/missing")
        (True, False)
    """
    p = os.fspath(path)
    if p.endswith(".json"):
        return True
    try:
        with open(p, "rb") as f:
            head = f.read(1)
            if head != b"{":
                return False
            f.seek(0)
            json.load(f)
            return True
    except (OSError, ValueError):
        return False


def load_statistics(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """Reads a statistics file written by ``featurepipe inspect stats --json``.

    Raises:
        ConfigError: if the file is not JSON or not featurepipe statistics.

    Examples:
        >>> import json, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "stats.json")
        >>> with open(path, "w") as f:
        ...     json.dump(StatisticsAccumulator().extract().to_json(), f)
        >>> load_statistics(path)["num_examples"]
        0
    """
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"Cannot read statistics from {os.fspath(path)}: {e}") from None
    try:
        return statistics_document(doc)
    except ConfigError as e:
        raise ConfigError(f"{os.fspath(path)}: {e}") from None


def validate_statistics(
    stats: DatasetStatistics | Mapping[str, Any],
    schema: Schema,
    *,
    domain_counts: DomainCounter | None = None,
) -> tuple[Anomaly, ...]:
    """Checks statistics against a schema and its constraints.

    Args:
        stats: a `DatasetStatistics` or its ``to_json()`` document (e.g. a
            file saved from ``featurepipe inspect stats --json``).
        schema: the `featurepipe.example.Schema`.
        domain_counts: exact out-of-domain counts from the same data (a
            `DomainCounter`); without it, counts come from the statistics.
            Defaults to `None`.

    Returns:
        The anomalies, sorted by feature (``I2`` before ``I10``) and type;
        empty when the data fits.

    Examples:
        >>> from featurepipe.example import FeatureSchema, decode_examples, encode_example
        >>> acc = StatisticsAccumulator()
        >>> acc.add(decode_examples([encode_example({"n": 5}), encode_example({"n": 50})]))
        >>> schema = Schema((FeatureSchema("n", "int64", shape=()),),
        ...                 (FeatureConstraints("n", min=0, max=10),))
        >>> [(a.type, a.observed) for a in validate_statistics(acc.extract(), schema)]
        [('INT_TYPE_BIG_INT', 50.0)]
    """
    doc = statistics_document(stats)
    num_examples = int(doc.get("num_examples", 0))
    by_name = {str(f["name"]): f for f in doc["features"]}
    out: list[Anomaly] = []
    for fs in schema:
        c = schema.constraints_for(fs.name) or FeatureConstraints(fs.name)
        out.extend(_check_feature(fs, c, by_name.get(fs.name), num_examples, domain_counts))
    for name, f in by_name.items():
        if name not in schema and int(f.get("num_present", 0)) > 0:
            n = int(f["num_present"])
            out.append(
                Anomaly(
                    "SCHEMA_NEW_COLUMN",
                    name,
                    f"New column: {name!r} ({f.get('kind') or 'no kind'}) is in "
                    f"{n:,} examples but not in the schema",
                    count=n,
                    fraction=n / num_examples if num_examples else None,
                    observed=f.get("kind"),
                )
            )
    order = {t: i for i, t in enumerate(ANOMALY_TYPES)}
    out.sort(key=lambda a: (_natural_key(a.feature), order.get(a.type, len(order))))
    return tuple(out)


def _check_feature(
    fs: Any,
    c: FeatureConstraints,
    f: Mapping[str, Any] | None,
    num_examples: int,
    counts: DomainCounter | None,
) -> list[Anomaly]:
    name = fs.name
    min_fraction = c.min_fraction if c.min_fraction is not None else (1.0 if fs.required else None)
    needed = bool(min_fraction) or bool(c.min_count)
    present = int(f.get("num_present", 0)) if f is not None else 0
    if f is None or present == 0:
        if not needed:
            return []
        return [
            Anomaly(
                "SCHEMA_MISSING_COLUMN",
                name,
                f"Column dropped: {name!r} is in none of the {num_examples:,} examples",
                count=num_examples,
                fraction=1.0 if num_examples else None,
                expected=_presence_words(min_fraction, c.min_count),
                observed=0,
            )
        ]
    out: list[Anomaly] = []
    kind = f.get("kind")
    kind_ok = kind is None or kind == fs.kind
    if not kind_ok:
        out.append(
            Anomaly(
                "UNEXPECTED_DATA_TYPE",
                name,
                f"Expected data of kind {fs.kind}, got {kind} in {present:,} examples",
                count=present,
                fraction=present / num_examples if num_examples else None,
                expected=fs.kind,
                observed=kind,
            )
        )
    if min_fraction is not None and num_examples and present / num_examples < min_fraction:
        missing = num_examples - present
        out.append(
            Anomaly(
                "FEATURE_TYPE_LOW_FRACTION_PRESENT",
                name,
                f"Present in {present / num_examples:.2%} of examples, fewer than "
                f"{min_fraction:.2%}: missing in {missing:,} of {num_examples:,}",
                count=missing,
                fraction=missing / num_examples,
                expected=min_fraction,
                observed=present / num_examples,
            )
        )
    if c.min_count is not None and present < c.min_count:
        out.append(
            Anomaly(
                "FEATURE_TYPE_LOW_NUMBER_PRESENT",
                name,
                f"Present in {present:,} examples, fewer than {c.min_count:,}",
                count=present,
                expected=c.min_count,
                observed=present,
            )
        )
    out.extend(_check_value_counts(fs, c, f, present))
    if kind_ok and kind is not None:
        out.extend(_check_domain(fs, c, f, counts))
    return out


def _check_value_counts(
    fs: Any, c: FeatureConstraints, f: Mapping[str, Any], present: int
) -> list[Anomaly]:
    fixed = fs.fixed_length
    lo = c.min_values if c.min_values is not None else fixed
    hi = c.max_values if c.max_values is not None else fixed
    vc = f.get("value_counts", {})
    hist = [int(x) for x in f.get("length_histogram", [])]
    last = len(hist) - 1  # the last slot holds every longer list
    out = []
    seen_min, seen_max = vc.get("min"), vc.get("max")
    if lo is not None and seen_min is not None and seen_min < lo:
        n = sum(hist[:lo]) if hist and lo <= last else None
        out.append(
            Anomaly(
                "FEATURE_TYPE_LOW_NUMBER_VALUES",
                fs.name,
                f"Some examples have fewer values than expected: {_count_words(n)} with fewer "
                f"than {lo} (as few as {seen_min})",
                count=n,
                fraction=n / present if n is not None and present else None,
                expected={"min": lo, "max": hi},
                observed={"min": seen_min, "max": seen_max},
            )
        )
    if hi is not None and seen_max is not None and seen_max > hi:
        n = sum(hist[hi + 1 :]) if hist and hi + 1 <= last else None
        out.append(
            Anomaly(
                "FEATURE_TYPE_HIGH_NUMBER_VALUES",
                fs.name,
                f"Some examples have more values than expected: {_count_words(n)} with more "
                f"than {hi} (as many as {seen_max})",
                count=n,
                fraction=n / present if n is not None and present else None,
                expected={"min": lo, "max": hi},
                observed={"min": seen_min, "max": seen_max},
            )
        )
    return out


def _check_domain(
    fs: Any, c: FeatureConstraints, f: Mapping[str, Any], counts: DomainCounter | None
) -> list[Anomaly]:
    out = []
    if c.values is not None and fs.kind == "bytes":
        allowed = c.max_fraction_outside or 0.0
        if counts is not None and fs.name in counts.unexpected:
            unexpected = counts.unexpected[fs.name]
            total = counts.num_values[fs.name]
            n = sum(unexpected.values())
            top = sorted(unexpected.items(), key=lambda kv: (-kv[1], kv[0]))
            shown = tuple((json_value(v), k) for v, k in top[:_SHOWN_VALUES])
            approximate = False
        else:
            domain = {_hashable(json_value(v)) for v in c.values}
            byt = f.get("bytes") or {}
            listed = [(v, int(k)) for v, k in byt.get("top_values", [])]
            total = int(f.get("value_counts", {}).get("num_values", 0))
            outside = [(v, k) for v, k in listed if _hashable(v) not in domain]
            n = sum(k for _, k in outside)
            complete = bool(byt.get("top_values_exact", True)) and sum(
                k for _, k in listed
            ) >= total
            approximate = not complete
            outside.sort(key=lambda vk: -vk[1])
            shown = tuple(outside[:_SHOWN_VALUES])
        frac = n / total if total else 0.0
        if n and frac > allowed:
            listed_text = ", ".join(f"{_show(v)} ({k:,})" for v, k in shown[:3])
            out.append(
                Anomaly(
                    "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
                    fs.name,
                    f"Unexpected string values: {'at least ' if approximate else ''}{n:,} of "
                    f"{total:,} values ({frac:.2%}) are outside the domain of "
                    f"{len(c.values)} values, e.g. {listed_text}",
                    count=n,
                    fraction=frac,
                    approximate=approximate,
                    values=shown,
                    expected=allowed,
                    observed=frac,
                )
            )
    if (c.min is not None or c.max is not None) and fs.kind in ("int64", "float"):
        num = f.get("numeric") or {}
        lo_seen, hi_seen = _as_float(num.get("min")), _as_float(num.get("max"))
        # values that are not NaN: "count" holds the finite ones
        total = int(num.get("count", 0)) + int(num.get("num_inf", 0))
        small, big = (
            ("INT_TYPE_SMALL_INT", "INT_TYPE_BIG_INT")
            if fs.kind == "int64"
            else ("FLOAT_TYPE_SMALL_FLOAT", "FLOAT_TYPE_BIG_FLOAT")
        )
        for typ, bound, seen, side, word in (
            (small, c.min, lo_seen, "below", "min"),
            (big, c.max, hi_seen, "above", "max"),
        ):
            if bound is None or seen is None:
                continue
            if not (seen < bound if side == "below" else seen > bound):
                continue
            k: int | None = None
            if counts is not None and fs.name in getattr(counts, side):
                k = int(getattr(counts, side)[fs.name])
            out.append(
                Anomaly(
                    typ,
                    fs.name,
                    f"Out-of-range values: {_count_words(k)} {'value' if k == 1 else 'values'}"
                    f" {side} the domain {word} {_num(bound)} ({word} seen: {_num(seen)})",
                    count=k,
                    fraction=k / total if k is not None and total else None,
                    expected={"min": c.min, "max": c.max},
                    observed=seen,
                )
            )
    return out


def validate_data(
    sources: str | os.PathLike[str] | IO[bytes] | Iterable[str | os.PathLike[str]],
    schema: Schema,
    *,
    options: StatsOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
    **read_options: Any,
) -> ValidationResult:
    """Reads TFRecord files of tf.Example once and checks them against ``schema``.

    Computes the statistics (as ``inspect stats``) and exact counts of values
    outside each domain in the same pass, then `validate_statistics`.

    Args:
        sources: paths, globs or a binary file object, as for
            `featurepipe.analysis.compute_statistics`.
        schema: the `featurepipe.example.Schema`, with constraints.
        options: statistics options. Defaults to `None`: `StatsOptions` with
            ``top_k=VALIDATION_TOP_K``.
        progress: called as ``progress(records_done, bytes_done)``. Defaults to `None`.
        **read_options: passed to `featurepipe.tfrecord.iter_records`.

    Returns:
        A `ValidationResult`: the statistics document and the anomalies.

    Raises:
        DataError: damaged records or payloads that are not Examples.
        ConfigError: paths that match nothing, bad options.

    Examples:
        >>> import os, tempfile
        >>> from featurepipe.example import FeatureSchema, encode_example
        >>> from featurepipe.tfrecord import TFRecordWriter
        >>> path = os.path.join(tempfile.mkdtemp(), "data.tfrecord")
        >>> with TFRecordWriter(path) as w:
        ...     for city in [b"Oslo", b"Lima", b"Rome"]:
        ...         w.write(encode_example({"city": city}))
        >>> schema = Schema((FeatureSchema("city", "bytes", shape=()),),
        ...                 (FeatureConstraints("city", values=(b"Oslo", b"Lima")),))
        >>> [(a.type, a.count, a.values) for a in validate_data(path, schema).anomalies]
        [('ENUM_TYPE_UNEXPECTED_STRING_VALUES', 1, (('Rome', 1),))]
    """
    from featurepipe.tfrecord import batch_records, iter_records

    opts = options if options is not None else StatsOptions(top_k=VALIDATION_TOP_K)
    names, srcs = expand_sources(sources)
    acc = StatisticsAccumulator(opts)
    counter = DomainCounter(schema)
    done = nbytes = 0
    for path, first, batch in batch_records(iter_records(srcs, **read_options), opts.batch_size):
        for cols in decode_batches(batch, path=path, first_index=first):
            acc.add(cols)
            counter.add(cols)
        done += len(batch)
        nbytes += sum(map(len, batch))
        if progress is not None:
            progress(done, nbytes)
    doc = acc.extract(names).to_json()
    return ValidationResult(doc, validate_statistics(doc, schema, domain_counts=counter))


def decode_batches(
    records: Sequence[bytes], *, path: str | None = None, first_index: int = 0
) -> Iterator[Any]:
    """Decodes records into `ColumnBatch` objects, splitting where a feature changes kind.

    `featurepipe.example.decode_examples` refuses a batch in which one feature
    has two kinds (``mixed_kind``); for validation that is data to report
    (``UNEXPECTED_DATA_TYPE``), not an error, so such a batch is split in
    halves until each part decodes.

    Args:
        records: serialized Examples.
        path: the file, for error messages. Defaults to `None`.
        first_index: index of the first record in its file. Defaults to `0`.

    Yields:
        One or more `ColumnBatch` objects covering ``records`` in order.

    Raises:
        ExampleDecodeError: a record is not an Example.

    Examples:
        >>> from featurepipe.example import encode_example
        >>> recs = [encode_example({"x": 1}), encode_example({"x": 1.5})]
        >>> [b.columns["x"].kind for b in decode_batches(recs)]
        ['int64', 'float']
    """
    from featurepipe.errors import ExampleDecodeError
    from featurepipe.example import decode_examples

    try:
        yield decode_examples(records, path=path, first_index=first_index)
        return
    except ExampleDecodeError as e:
        if e.reason != "mixed_kind" or len(records) < 2:
            raise
    half = len(records) // 2
    yield from decode_batches(records[:half], path=path, first_index=first_index)
    yield from decode_batches(records[half:], path=path, first_index=first_index + half)


def infer_constraints(
    stats: DatasetStatistics | Mapping[str, Any],
    schema: Schema,
    *,
    max_domain_size: int = 100,
) -> Schema:
    """Proposes constraints from statistics, for a person to review and edit.

    Per feature of ``schema`` with statistics: ``presence.min_count`` 1;
    ``value_count`` min / max as seen, for variable-length features (a fixed
    ``shape`` already says it); a string domain of the exact vocabulary when
    the statistics list every value and there are at most
    ``max_domain_size``; a numeric ``min`` / ``max`` as seen (finite only).
    Skew / drift thresholds are left for the user. The numeric ranges are
    the extremes of *this* data: new data from the same distribution (a
    heavy tail especially) will often go past them, so widen or drop them
    when reviewing (TFDV infers no numeric ranges for that reason).

    Args:
        stats: a `DatasetStatistics` or its ``to_json()`` document.
        schema: the schema to add constraints to (e.g. `featurepipe.example.infer_schema`'s).
        max_domain_size: the largest vocabulary turned into a domain. Defaults to `100`.

    Returns:
        ``schema`` with these constraints (replacing any it had for those features).

    Examples:
        >>> from featurepipe.example import decode_examples, encode_example, infer_schema
        >>> recs = [encode_example({"c": c, "n": n}) for c, n in [(b"a", 1), (b"b", 7)]]
        >>> acc = StatisticsAccumulator()
        >>> acc.add(decode_examples(recs))
        >>> s = infer_constraints(acc.extract(), infer_schema(recs))
        >>> s.to_dict()["constraints"]["c"]["domain"], s.to_dict()["constraints"]["n"]["domain"]
        ({'values': ['a', 'b']}, {'min': 1, 'max': 7})
    """
    if isinstance(max_domain_size, bool) or not isinstance(max_domain_size, int) or (
        max_domain_size < 0
    ):
        raise ConfigError(
            f"`max_domain_size` must be an integer >= 0. Received: {max_domain_size!r}"
        )
    doc = statistics_document(stats)
    by_name = {str(f["name"]): f for f in doc["features"]}
    new = []
    for fs in schema:
        f = by_name.get(fs.name)
        if f is None or not int(f.get("num_present", 0)):
            continue
        kw: dict[str, Any] = {"min_count": 1}
        vc = f.get("value_counts", {})
        if fs.shape is None and vc.get("min") is not None:
            kw["min_values"], kw["max_values"] = int(vc["min"]), int(vc["max"])
        if f.get("kind") == fs.kind == "bytes" and f.get("bytes"):
            byt = f["bytes"]
            listed = byt.get("top_values", [])
            total = int(vc.get("num_values", 0))
            complete = bool(byt.get("top_values_exact", True)) and (
                sum(int(k) for _, k in listed) >= total
            )
            if complete and 0 < len(listed) <= max_domain_size:
                vals = [_value_bytes(v) for v, _ in listed]
                kw["values"] = tuple(sorted(vals))
        if f.get("kind") == fs.kind and fs.kind in ("int64", "float") and f.get("numeric"):
            lo, hi = _as_float(f["numeric"].get("min")), _as_float(f["numeric"].get("max"))
            if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
                if fs.kind == "int64":
                    kw["min"], kw["max"] = int(lo), int(hi)
                else:
                    kw["min"], kw["max"] = lo, hi
        new.append(FeatureConstraints(fs.name, **kw))
    return schema.with_constraints(new)


# --------------------------------------------------------------------------- helpers


def _natural_key(name: str) -> list[tuple[int, int, str]]:
    import re

    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)
    ]


def _presence_words(min_fraction: float | None, min_count: int | None) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if min_fraction is not None:
        d["min_fraction"] = min_fraction
    if min_count is not None:
        d["min_count"] = min_count
    return d


def _count_words(n: int | None) -> str:
    return "an unknown number of" if n is None else f"{n:,}"


def _as_float(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _finite_or_none(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None


def _num(x: float) -> str:
    return f"{x:.6g}"


def _hashable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return ("base64", v.get("base64"))
    return v


def _show(v: Any) -> str:
    if isinstance(v, Mapping):
        return f"b64:{v.get('base64')}"
    return repr(v)


def _value_bytes(v: Any) -> bytes:
    if isinstance(v, Mapping):
        import base64

        return base64.b64decode(str(v.get("base64", "")))
    return str(v).encode("utf-8")

