"""Analyzer requests, their results, and the artifact directory of ``featurepipe analyze``.

An analysis computes, for the features a spec asks for, vocabularies
(``top_k``, ``min_frequency``, with frequencies), quantile bucket boundaries
(``num_bins``) and moments, plus the dataset statistics of
`featurepipe.analysis._stats`. This module holds what both engines share: the requests
(`AnalyzerRequest`, read from column specs or a plain analysis spec), the
results (`Analysis`, which implements `featurepipe.columns.Artifacts` so column
specs resolve from it), the artifact directory format (`Analysis.save` /
`Analysis.load`) and the local engine (`analyze_records`). The Beam engine,
`featurepipe.beam._analyze`, drives the same accumulators and writes the same
directory.

Artifact directory::

    DIR/analysis.json          format_version, featurepipe_version, requests, the small
                               results (boundaries, moments) and an index of the files below
    DIR/statistics.json        the `featurepipe.analysis._stats` document of the same data
    DIR/vocab-NNN-KEY.txt      one vocabulary value per line, most frequent first
    DIR/vocab-NNN-KEY.freq.txt the frequency of each value, same lines

Vocabulary files hold UTF-8 text, one value per line (the format of
``StringLookup(vocabulary=path)`` and ``categorical_column_with_vocabulary_file``);
integer vocabularies hold decimal numbers. When a bytes value is not UTF-8 or
contains a line break, the whole file is written base64-encoded instead and
``analysis.json`` says ``"encoding": "base64"``.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Protocol

from featurepipe._util import AtomicFile, json_float
from featurepipe._version import __version__
from featurepipe.analysis._accumulators import (
    Moments,
    MomentsAccumulator,
    QuantileSketch,
    VocabularyAccumulator,
    sort_vocabulary,
)
from featurepipe.analysis._stats import StatisticsAccumulator, StatsOptions
from featurepipe.errors import ConfigError, DataError

__all__ = [
    "ANALYSIS_FORMAT_VERSION",
    "Analysis",
    "AnalyzerRequest",
    "BinaryWriter",
    "QuantilesResult",
    "VocabularyResult",
    "analyze_records",
    "load_requests",
]

#: Version of ``analysis.json``.
ANALYSIS_FORMAT_VERSION = 1
ANALYSIS_FILE = "analysis.json"
STATISTICS_FILE = "statistics.json"
_ANALYZERS = ("moments", "quantiles", "vocabulary")


class BinaryWriter(Protocol):
    """What `Analysis.save` needs from an opened output: ``write`` and a context manager."""

    def write(self, data: bytes, /) -> int | None:
        """Writes bytes."""
        ...

    def __enter__(self) -> Any:
        """Enters the context (returns the writer)."""
        ...

    def __exit__(self, *exc: object) -> Any:
        """Closes (and, for local files, publishes) the output."""
        ...


@dataclass(frozen=True)
class AnalyzerRequest:
    """One result an analysis must compute.

    Args:
        analyzer: ``"vocabulary"``, ``"quantiles"`` or ``"moments"``.
        key: the feature name.
        top_k: vocabulary: keep at most this many values (``None``: all). Defaults to `None`.
        min_frequency: vocabulary: drop values seen fewer times. Defaults to `1`.
        num_bins: quantiles: the number of buckets (``num_bins - 1`` boundaries).
            Defaults to `None`.

    Raises:
        ConfigError: for an unknown analyzer or arguments that do not fit it.
    """

    analyzer: str
    key: str
    top_k: int | None = None
    min_frequency: int = 1
    num_bins: int | None = None

    def __post_init__(self) -> None:
        if self.analyzer not in _ANALYZERS:
            raise ConfigError(
                f"Unknown analyzer {self.analyzer!r}; allowed values are {list(_ANALYZERS)}. "
                f"Received: analyzer={self.analyzer!r}"
            )
        if not isinstance(self.key, str) or not self.key:
            raise ConfigError(f"`key` must be a non-empty feature name. Received: key={self.key!r}")
        if self.analyzer == "vocabulary":
            VocabularyAccumulator(self.top_k, self.min_frequency)  # validates both
        if self.analyzer == "quantiles" and (
            isinstance(self.num_bins, bool)
            or not isinstance(self.num_bins, int)
            or self.num_bins < 1
        ):
            raise ConfigError(
                "A quantiles request needs `num_bins`, an integer >= 1. "
                f"Received: num_bins={self.num_bins!r} for key={self.key!r}"
            )

    @property
    def id(self) -> str:
        """A stable string naming this request (used as a Beam key)."""
        if self.analyzer == "vocabulary":
            return f"vocabulary/{self.key}"
        if self.analyzer == "quantiles":
            return f"quantiles/{self.num_bins}/{self.key}"
        return f"moments/{self.key}"

    def to_json(self) -> dict[str, Any]:
        """The request as ``{"analyzer": ..., "key": ..., ...}``."""
        out: dict[str, Any] = {"analyzer": self.analyzer, "key": self.key}
        if self.analyzer == "vocabulary":
            out.update(top_k=self.top_k, min_frequency=self.min_frequency)
        elif self.analyzer == "quantiles":
            out["num_bins"] = self.num_bins
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> AnalyzerRequest:
        """Builds a request from `to_json` output (or `ColumnSpecs.analysis_requests`).

        Raises:
            ConfigError: for unknown fields or bad values.
        """
        allowed = {"analyzer", "key", "top_k", "min_frequency", "num_bins"}
        unknown = sorted(set(obj) - allowed)
        if unknown:
            raise ConfigError(
                f"Unknown field(s) {unknown} in an analyzer request (allowed: {sorted(allowed)}). "
                f"Received: {dict(obj)!r}"
            )
        missing = [name for name in ("analyzer", "key") if name not in obj]
        if missing:
            raise ConfigError(f"An analyzer request needs {missing}. Received: {dict(obj)!r}")
        return cls(**obj)


def load_requests(spec: str | Mapping[str, Any]) -> list[AnalyzerRequest]:
    """Reads analyzer requests from a spec JSON document (text or parsed).

    Two forms are accepted: featurepipe column specs (``{"format_version": 1,
    "columns": [...]}``, see `featurepipe.columns.ColumnSpecs`), whose unresolved
    columns say what to compute; or a plain analysis spec ``{"format_version":
    1, "analyzers": [{"analyzer": "vocabulary", "key": "c", "top_k": 100}, ...]}``.

    Args:
        spec: the JSON text, or the parsed object.

    Returns:
        The distinct requests, sorted by `AnalyzerRequest.id`.

    Raises:
        ConfigError: for invalid JSON, an unknown form, or conflicting
            vocabulary requests for one feature.

    Examples:
        >>> reqs = load_requests('{"format_version": 1, "analyzers": '
        ...     '[{"analyzer": "quantiles", "key": "x", "num_bins": 4}]}')
        >>> reqs[0].id
        'quantiles/4/x'
    """
    if isinstance(spec, str):
        try:
            obj = json.loads(spec)
        except json.JSONDecodeError as e:
            raise ConfigError(f"The analysis spec is not valid JSON: {e}") from e
    else:
        obj = spec
    if not isinstance(obj, Mapping):
        raise ConfigError(
            f"The analysis spec must be a JSON object. Received: {type(obj).__name__}"
        )
    if "columns" in obj:
        from featurepipe.columns import ColumnSpecs

        raw = ColumnSpecs.from_config(obj).analysis_requests()
    elif "analyzers" in obj:
        version = obj.get("format_version")
        if version != ANALYSIS_FORMAT_VERSION:
            raise ConfigError(
                f'The analysis spec needs "format_version": {ANALYSIS_FORMAT_VERSION}. '
                f"Received: format_version={version!r}"
            )
        raw = obj["analyzers"]
        if not isinstance(raw, list):
            raise ConfigError(f"`analyzers` must be a list. Received: {raw!r}")
    else:
        raise ConfigError(
            "The analysis spec must have `columns` (column specs) or `analyzers` "
            f"(a list of requests). Received keys: {sorted(obj)}"
        )
    requests = {r.id: r for r in (AnalyzerRequest.from_json(x) for x in raw)}
    vocab = [r for r in (AnalyzerRequest.from_json(x) for x in raw) if r.analyzer == "vocabulary"]
    for r in vocab:
        if requests[r.id] != r:
            raise ConfigError(
                f"Two vocabulary requests for feature {r.key!r} differ "
                f"({requests[r.id].to_json()} and {r.to_json()}); "
                "ask for one vocabulary per feature."
            )
    return [requests[k] for k in sorted(requests)]


@dataclass(frozen=True)
class VocabularyResult:
    """A computed vocabulary.

    Attributes:
        key: the feature.
        kind: ``"bytes"`` or ``"int64"`` (``None`` if the feature never had values).
        values: the values, most frequent first (ties: value ascending).
        frequencies: the count of each value.
        num_distinct: distinct values before ``top_k`` / ``min_frequency``.
        total: values counted.
    """

    key: str
    kind: str | None
    values: tuple[bytes | int, ...]
    frequencies: tuple[int, ...]
    num_distinct: int
    total: int


@dataclass(frozen=True)
class QuantilesResult:
    """Computed bucket boundaries.

    Attributes:
        key: the feature.
        num_bins: buckets asked for.
        boundaries: ``num_bins - 1`` sorted boundaries (empty without values).
        eps: their rank error bound.
        count: non-NaN values summarised.
    """

    key: str
    num_bins: int
    boundaries: tuple[float, ...]
    eps: float
    count: int


@dataclass(frozen=True)
class Analysis:
    """The results of an analysis; resolves `featurepipe.columns.ColumnSpecs`.

    Attributes:
        requests: what was asked.
        num_examples: examples read.
        vocabularies: by feature.
        quantiles: by ``(feature, num_bins)``.
        moments: by feature.
        statistics: the `featurepipe.analysis._stats` JSON document, if computed.
    """

    requests: tuple[AnalyzerRequest, ...]
    num_examples: int
    vocabularies: Mapping[str, VocabularyResult] = field(default_factory=dict)
    quantiles: Mapping[tuple[str, int], QuantilesResult] = field(default_factory=dict)
    moments_by_key: Mapping[str, Moments] = field(default_factory=dict)
    statistics: Mapping[str, Any] | None = None

    # -- the featurepipe.columns.Artifacts protocol ---------------------------------------------

    def vocabulary(self, key: str) -> list[str | int]:
        """The vocabulary of ``key``: ``str`` (UTF-8; undecodable bytes kept as
        surrogate escapes) or ``int`` values, most frequent first.

        Raises:
            ConfigError: if no vocabulary of ``key`` was computed.
        """
        result = self._get(self.vocabularies, key, "vocabulary")
        return [
            v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v
            for v in result.values
        ]

    def boundaries(self, key: str, num_bins: int) -> list[float]:
        """The ``num_bins - 1`` bucket boundaries of ``key``.

        Raises:
            ConfigError: if they were not computed.
        """
        return list(self._get(self.quantiles, (key, num_bins), "quantiles").boundaries)

    def moments(self, key: str) -> dict[str, float]:
        """``{"mean", "variance", "std", "min", "max", "count"}`` of ``key``.

        Raises:
            ConfigError: if they were not computed.
        """
        m = self._get(self.moments_by_key, key, "moments")
        return {
            "mean": m.mean,
            "variance": m.variance,
            "std": m.std,
            "min": m.min,
            "max": m.max,
            "count": float(m.count),
        }

    def _get(self, table: Mapping[Any, Any], key: Any, what: str) -> Any:
        if key not in table:
            raise ConfigError(
                f"This analysis has no {what} for {key!r} (it has: {sorted(table)}); "
                "add the request to the analysis spec and run `featurepipe analyze` again."
            )
        return table[key]

    # -- the artifact directory --------------------------------------------------------------

    def save(
        self,
        directory: str,
        *,
        opener: Callable[[str], BinaryWriter] | None = None,
        join: Callable[[str, str], str] = os.path.join,
    ) -> None:
        """Writes the artifact directory (``analysis.json`` last).

        Args:
            directory: the output directory (created if needed when ``opener``
                is the default).
            opener: opens a path for writing bytes; defaults to a local file
                written atomically (`featurepipe._util.AtomicFile`). Beam passes
                one built on ``FileSystems.create``.
            join: joins a directory and a file name. Defaults to `os.path.join`.
        """
        if opener is None:
            os.makedirs(directory, exist_ok=True)
            opener = _local_opener
        index: dict[str, Any] = {}
        for n, key in enumerate(sorted(self.vocabularies)):
            index[key] = write_vocabulary_files(
                self.vocabularies[key], directory, n, opener=opener, join=join
            )
        self.save_index(directory, index, opener=opener, join=join)

    def save_index(
        self,
        directory: str,
        vocabulary_files: Mapping[str, Any],
        *,
        opener: Callable[[str], BinaryWriter],
        join: Callable[[str, str], str] = os.path.join,
    ) -> None:
        """Writes ``statistics.json`` and, last, ``analysis.json`` (vocabulary files exist).

        Args:
            directory: the artifact directory.
            vocabulary_files: `write_vocabulary_files` results by feature.
            opener: opens a path for writing bytes.
            join: joins a directory and a file name. Defaults to `os.path.join`.
        """
        doc = self.to_json(vocabulary_files=vocabulary_files)
        if self.statistics is not None:
            with opener(join(directory, STATISTICS_FILE)) as f:
                f.write(json.dumps(self.statistics, indent=1, allow_nan=False).encode())
        with opener(join(directory, ANALYSIS_FILE)) as f:
            f.write(json.dumps(doc, indent=2, allow_nan=False).encode())

    def to_json(self, *, vocabulary_files: Mapping[str, Any]) -> dict[str, Any]:
        """The ``analysis.json`` document (vocabularies as file references)."""
        return {
            "format_version": ANALYSIS_FORMAT_VERSION,
            "featurepipe_version": __version__,
            "num_examples": self.num_examples,
            "requests": [r.to_json() for r in self.requests],
            "vocabularies": {k: vocabulary_files[k] for k in sorted(vocabulary_files)},
            "quantiles": [
                {
                    "key": q.key,
                    "num_bins": q.num_bins,
                    "eps": q.eps,
                    "count": q.count,
                    "boundaries": [json_float(b) for b in q.boundaries],
                }
                for _, q in sorted(self.quantiles.items())
            ],
            "moments": {k: m.to_json() for k, m in sorted(self.moments_by_key.items())},
            "statistics": STATISTICS_FILE if self.statistics is not None else None,
        }

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Analysis:
        """Reads an artifact directory written by `save` (local paths).

        Raises:
            ConfigError: for a missing ``analysis.json`` or a newer format.
            DataError: for vocabulary files that do not match ``analysis.json``.
        """
        root = os.fspath(directory)
        path = os.path.join(root, ANALYSIS_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except FileNotFoundError:
            raise ConfigError(
                f"No {ANALYSIS_FILE} in {root!r}: is it a `featurepipe analyze` output directory?"
            ) from None
        version = doc.get("format_version")
        if not isinstance(version, int) or version > ANALYSIS_FORMAT_VERSION:
            raise ConfigError(
                f"{path} has format_version={version!r}; this featurepipe ({__version__}) reads "
                f"up to {ANALYSIS_FORMAT_VERSION}. Upgrade featurepipe."
            )
        vocabs = {
            key: _read_vocabulary(root, key, meta) for key, meta in doc["vocabularies"].items()
        }
        quantiles = {
            (q["key"], q["num_bins"]): QuantilesResult(
                q["key"],
                q["num_bins"],
                tuple(_float(b) for b in q["boundaries"]),
                q["eps"],
                q["count"],
            )
            for q in doc["quantiles"]
        }
        moments = {k: _moments_from_json(m) for k, m in doc["moments"].items()}
        stats = None
        if doc.get("statistics"):
            with open(os.path.join(root, doc["statistics"]), encoding="utf-8") as f:
                stats = json.load(f)
        return cls(
            requests=tuple(AnalyzerRequest.from_json(r) for r in doc["requests"]),
            num_examples=doc["num_examples"],
            vocabularies=vocabs,
            quantiles=quantiles,
            moments_by_key=moments,
            statistics=stats,
        )


def write_vocabulary_files(
    vocab: VocabularyResult,
    directory: str,
    number: int,
    *,
    opener: Callable[[str], BinaryWriter],
    join: Callable[[str, str], str] = os.path.join,
) -> dict[str, Any]:
    """Writes one vocabulary's value and frequency files; returns its ``analysis.json`` entry.

    Args:
        vocab: the vocabulary.
        directory: the artifact directory.
        number: a small integer that keeps file names unique.
        opener: opens a path for writing bytes.
        join: joins a directory and a file name. Defaults to `os.path.join`.

    Returns:
        The metadata: file names, encoding, sizes, the request's limits.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", vocab.key)[:60]
    name = f"vocab-{number:03d}-{safe}"
    encoding = "utf-8"
    if vocab.kind == "int64":
        blob = "\n".join(map(str, vocab.values)).encode()
        encoding = "decimal"
    else:
        raw = [v if isinstance(v, bytes) else str(v).encode() for v in vocab.values]
        blob = b"\n".join(raw)
        if not _is_text_blob(blob, len(raw)):
            blob = b"\n".join(map(base64.b64encode, raw))
            encoding = "base64"
    with opener(join(directory, f"{name}.txt")) as f:
        f.write(blob + b"\n" if vocab.values else b"")
    with opener(join(directory, f"{name}.freq.txt")) as f:
        freq = "\n".join(map(str, vocab.frequencies))
        f.write((freq + "\n").encode() if vocab.frequencies else b"")
    return {
        "file": f"{name}.txt",
        "frequencies_file": f"{name}.freq.txt",
        "encoding": encoding,
        "kind": vocab.kind,
        "size": len(vocab.values),
        "num_distinct": vocab.num_distinct,
        "total": vocab.total,
    }


def vocabulary_result(
    key: str,
    kind: str | None,
    counts: Iterable[tuple[bytes | int, int]],
    request: AnalyzerRequest,
    *,
    num_distinct: int,
    total: int,
) -> VocabularyResult:
    """Builds a `VocabularyResult` from ``(value, count)`` pairs (both engines use this).

    Args:
        key: the feature.
        kind: its kind.
        counts: ``(value, count)`` pairs, each value once, any order.
        request: the vocabulary request (``top_k``, ``min_frequency``).
        num_distinct: distinct values counted.
        total: values counted.

    Returns:
        The vocabulary in `featurepipe.analysis.sort_vocabulary` order.
    """
    kept = sort_vocabulary(counts, top_k=request.top_k, min_frequency=request.min_frequency)
    return VocabularyResult(
        key=key,
        kind=kind,
        values=tuple(map(itemgetter(0), kept)),
        frequencies=tuple(map(int, map(itemgetter(1), kept))),
        num_distinct=num_distinct,
        total=total,
    )


def check_column_kind(request: AnalyzerRequest, kind: str | None, path: str | None) -> None:
    """Raises `DataError` when a feature's kind does not fit the analyzer.

    Args:
        request: the request.
        kind: the kind of the feature in this batch.
        path: the file, for the message.

    Raises:
        DataError: a vocabulary of floats, or quantiles / moments of bytes.
    """
    if kind is None:
        return
    if request.analyzer == "vocabulary" and kind == "float":
        raise DataError(
            f"feature {request.key!r} holds floats; a vocabulary needs bytes or int64 values "
            "(bucketize floats with a quantiles request instead)",
            path=path,
            reason="analyzer_kind_mismatch",
        )
    if request.analyzer != "vocabulary" and kind == "bytes":
        raise DataError(
            f"feature {request.key!r} holds bytes; {request.analyzer} needs int64 or float values",
            path=path,
            reason="analyzer_kind_mismatch",
        )


def analyze_records(
    sources: Any,
    requests: Sequence[AnalyzerRequest],
    *,
    eps: float = 0.01,
    batch_size: int = 4096,
    statistics: bool = True,
    **read_options: Any,
) -> Analysis:
    """Runs an analysis locally, in one process (the reference for the Beam job).

    Args:
        sources: TFRecord paths, globs or a file object (as `featurepipe.tfrecord.read_records`).
        requests: what to compute.
        eps: rank error of the quantile sketches. Defaults to `0.01`.
        batch_size: records decoded at a time. Defaults to `4096`.
        statistics: also compute `featurepipe.analysis._stats` statistics. Defaults to `True`.
        **read_options: passed to `featurepipe.tfrecord.iter_records`.

    Returns:
        The `Analysis`.

    Raises:
        DataError: damaged input, or a feature whose kind does not fit its analyzer.
        ConfigError: bad arguments.

    Examples:
        >>> import io
        >>> from featurepipe.example import encode_example
        >>> from featurepipe.tfrecord import TFRecordWriter
        >>> buf = io.BytesIO()
        >>> with TFRecordWriter(buf) as w:
        ...     for word in [b"b", b"a", b"b"]:
        ...         w.write(encode_example({"w": word}))
        >>> _ = buf.seek(0)
        >>> result = analyze_records(buf, [AnalyzerRequest("vocabulary", "w")])
        >>> result.vocabulary("w")
        ['b', 'a']
    """
    from featurepipe.analysis._stats import expand_sources
    from featurepipe.example import decode_examples
    from featurepipe.tfrecord import batch_records, iter_records

    QuantileSketch(eps)  # validates eps early
    names, sources = expand_sources(sources)
    state = _LocalState(requests, eps)
    stats = None
    if statistics:
        stats = StatisticsAccumulator(StatsOptions(eps=eps, batch_size=batch_size))
    for path, first, batch in batch_records(iter_records(sources, **read_options), batch_size):
        columns = decode_examples(batch, path=path, first_index=first)
        state.add(columns, path)
        if stats is not None:
            stats.add(columns)
    doc = stats.extract(names).to_json() if stats is not None else None
    return state.extract(doc)


class _LocalState:
    """The accumulators of a local analysis."""

    def __init__(self, requests: Sequence[AnalyzerRequest], eps: float) -> None:
        self.requests = tuple(requests)
        self.num_examples = 0
        self.kinds: dict[str, str] = {}
        self.vocabs = {
            r.id: VocabularyAccumulator() for r in requests if r.analyzer == "vocabulary"
        }
        self.sketches = {r.id: QuantileSketch(eps) for r in requests if r.analyzer == "quantiles"}
        self.moments = {r.id: MomentsAccumulator() for r in requests if r.analyzer == "moments"}

    def add(self, batch: Any, path: str | None) -> None:
        self.num_examples += batch.num_rows
        for r in self.requests:
            column = batch.columns.get(r.key)
            if column is None or column.kind is None:
                continue
            check_column_kind(r, column.kind, path)
            if column.values.size:
                seen = self.kinds.setdefault(r.key, column.kind)
                if seen != column.kind:
                    raise DataError(
                        f"feature {r.key!r} is {column.kind} here but {seen} in earlier records; "
                        "one feature needs one kind for an analysis",
                        path=path,
                        reason="mixed_kind",
                    )
            if r.analyzer == "vocabulary":
                self.vocabs[r.id].add(column.values)
            elif r.analyzer == "quantiles":
                self.sketches[r.id].add(column.values)
            else:
                self.moments[r.id].add(column.values)

    def extract(self, statistics: Mapping[str, Any] | None) -> Analysis:
        vocabularies = {}
        quantiles = {}
        moments = {}
        for r in self.requests:
            if r.analyzer == "vocabulary":
                acc = self.vocabs[r.id]
                vocabularies[r.key] = vocabulary_result(
                    r.key,
                    self.kinds.get(r.key),
                    acc.counts.items(),
                    r,
                    num_distinct=len(acc.counts),
                    total=sum(acc.counts.values()),
                )
            elif r.analyzer == "quantiles":
                quantiles[(r.key, int(r.num_bins or 1))] = quantiles_result(r, self.sketches[r.id])
            else:
                moments[r.key] = self.moments[r.id].extract()
        return Analysis(
            requests=self.requests,
            num_examples=self.num_examples,
            vocabularies=vocabularies,
            quantiles=quantiles,
            moments_by_key=moments,
            statistics=statistics,
        )


def quantiles_result(request: AnalyzerRequest, sketch: QuantileSketch) -> QuantilesResult:
    """Builds a `QuantilesResult` from a sketch (both engines use this)."""
    bounds = sketch.boundaries(int(request.num_bins or 1))
    return QuantilesResult(
        key=request.key,
        num_bins=int(request.num_bins or 1),
        boundaries=tuple(float(b) for b in bounds),
        eps=sketch.eps,
        count=sketch.count,
    )


def _is_text_blob(blob: bytes, num_values: int) -> bool:
    """Whether ``num_values`` values joined by newlines are clean UTF-8 text lines.

    A newline byte never continues a UTF-8 sequence, so the joined bytes decode
    exactly when every value does; a value holds a line break exactly when the
    blob has more newlines than the joins.
    """
    if b"\r" in blob or blob.count(b"\n") != max(num_values - 1, 0):
        return False
    try:
        blob.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _local_opener(path: str) -> BinaryWriter:
    return AtomicFile(path)


def _read_vocabulary(root: str, key: str, meta: Mapping[str, Any]) -> VocabularyResult:
    with open(os.path.join(root, meta["file"]), "rb") as f:
        lines = f.read().split(b"\n")[:-1]
    with open(os.path.join(root, meta["frequencies_file"]), "rb") as f:
        freqs = tuple(int(x) for x in f.read().split())
    if len(lines) != meta["size"] or len(freqs) != meta["size"]:
        raise DataError(
            f"vocabulary of {key!r} has {len(lines)} values and {len(freqs)} frequencies, "
            f"analysis.json says {meta['size']}",
            path=os.path.join(root, meta["file"]),
            reason="vocabulary_size_mismatch",
        )
    values: tuple[bytes | int, ...]
    if meta["encoding"] == "decimal":
        values = tuple(int(x) for x in lines)
    elif meta["encoding"] == "base64":
        values = tuple(base64.b64decode(x) for x in lines)
    else:
        values = tuple(lines)
    return VocabularyResult(key, meta["kind"], values, freqs, meta["num_distinct"], meta["total"])




def _float(x: Any) -> float:
    return float({"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(x, x))


def _moments_from_json(m: Mapping[str, Any]) -> Moments:
    return Moments(
        count=m["count"],
        mean=_float(m["mean"]),
        variance=_float(m["variance"]),
        std=_float(m["std"]),
        min=_float(m["min"]),
        max=_float(m["max"]),
        num_nan=m["num_nan"],
        num_inf=m["num_inf"],
        num_zeros=m["num_zeros"],
    )
