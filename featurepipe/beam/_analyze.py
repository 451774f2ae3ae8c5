"""Beam transforms of ``featurepipe analyze``: vocabularies, quantiles, moments, statistics.

`AnalyzeDataset` reads TFRecord shards (`ReadTFRecordBatches`: featurepipe's
own reader over Beam's ``FileSystems``, ``batch_size`` records per element),
decodes each batch into columns, and computes what the `AnalyzerRequest` list
asks for, then writes the artifact directory of `featurepipe.analysis._artifacts`. Every
algorithm is the core's: each CombineFn below is a thin wrapper around a core
accumulator (`featurepipe.analysis._accumulators`), so the Beam job and
`featurepipe.analysis.analyze_records` give identical vocabularies, moments
equal to rounding and quantile boundaries within ``eps``.

Vocabularies are counted with a combine keyed on the value: each worker counts
a bundle's values, split into ``vocabulary_shards`` parts by a stable hash of
the value, and a ``CombinePerKey`` adds the counts of each part, so no worker
holds a dict of every distinct value. Each part then keeps its own ``top_k``
(the global top ``k`` is inside the union of the parts' top ``k``), and only
the final, filtered list of one vocabulary (what its file holds) meets in one
place.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import Metrics

from featurepipe.analysis import (
    Analysis,
    AnalyzerRequest,
    MomentsAccumulator,
    QuantileSketch,
    StatisticsAccumulator,
    StatsOptions,
    check_column_kind,
    hash_values,
    quantiles_result,
    sort_vocabulary,
    vocabulary_result,
    write_vocabulary_files,
)
from featurepipe.errors import DataError
from featurepipe.example import decode_examples
from featurepipe.tfrecord import iter_records

__all__ = ["AccumulatorCombineFn", "AnalyzeDataset", "ReadTFRecordBatches"]

_NS = "featurepipe.analyze"
_RAW = CompressionTypes.UNCOMPRESSED


class AccumulatorCombineFn(beam.CombineFn):  # type: ignore[misc]
    """A CombineFn around any featurepipe accumulator (``add`` / ``merge`` / ``extract``).

    Args:
        factory: a picklable zero-argument callable that creates an accumulator,
            e.g. ``functools.partial(QuantileSketch, 0.01)``.
        extract: turns the final accumulator into the output. Defaults to
            returning the accumulator itself.
    """

    def __init__(self, factory: Callable[[], Any], extract: Callable[[Any], Any] | None = None):
        self._factory = factory
        self._extract = extract

    def create_accumulator(self) -> Any:
        return self._factory()

    def add_input(self, acc: Any, element: Any) -> Any:
        acc.add(element)
        return acc

    def merge_accumulators(self, accumulators: Iterable[Any]) -> Any:
        it = iter(accumulators)
        first = next(it)
        for other in it:
            first.merge(other)
        return first

    def extract_output(self, acc: Any) -> Any:
        return acc if self._extract is None else self._extract(acc)


class _ReadBatchesFn(beam.DoFn):  # type: ignore[misc]
    def __init__(self, batch_size: int, compression: str, verify_crc: bool) -> None:
        self._batch_size = batch_size
        self._compression = compression
        self._verify_crc = verify_crc
        self._records = Metrics.counter(_NS, "records_read")

    def process(self, path: str) -> Iterator[tuple[str, int, list[bytes]]]:
        with FileSystems.open(path, compression_type=_RAW) as f:
            batch: list[bytes] = []
            first = 0
            records = iter_records(
                f,
                compression=self._compression,  # type: ignore[arg-type]
                verify_crc=self._verify_crc,
            )
            for rec in records:
                if not batch:
                    first = rec.index
                batch.append(rec.data)
                if len(batch) >= self._batch_size:
                    self._records.inc(len(batch))
                    yield path, first, batch
                    batch = []
            if batch:
                self._records.inc(len(batch))
                yield path, first, batch


class ReadTFRecordBatches(beam.PTransform):  # type: ignore[misc]
    """Reads TFRecord files into ``(path, first_record_index, [payload, ...])`` batches.

    Files go through Beam's ``FileSystems`` (local, ``gs://``, ``s3://``) and
    featurepipe's reader (both CRCs verified, compression sniffed from the
    first bytes); each file is read by one worker, in batches of
    ``batch_size`` records to keep per-element overhead low.

    Args:
        inputs: file paths or globs (expanded when the pipeline is built).
        batch_size: records per element. Defaults to `1024`.
        compression: ``"auto"``, ``"none"``, ``"gzip"`` or ``"zlib"``. Defaults to `"auto"`.
        verify_crc: verify data CRCs. Defaults to `True`.
    """

    def __init__(
        self,
        inputs: Sequence[str],
        *,
        batch_size: int = 1024,
        compression: str = "auto",
        verify_crc: bool = True,
    ) -> None:
        super().__init__()
        self.inputs = list(inputs)
        self.batch_size = batch_size
        self.compression = compression
        self.verify_crc = verify_crc

    def expand(self, pbegin: Any) -> Any:
        from featurepipe.beam._convert import expand_inputs

        files = expand_inputs(self.inputs)
        return (
            pbegin
            | "Files" >> beam.Create(files)
            | "Spread" >> beam.Reshuffle()
            | "Read"
            >> beam.ParDo(_ReadBatchesFn(self.batch_size, self.compression, self.verify_crc))
        )


def _decode(element: tuple[str, int, list[bytes]]) -> tuple[str, Any]:
    path, first, batch = element
    return path, decode_examples(batch, path=path, first_index=first)


def _numeric_values(
    element: tuple[str, Any], requests: Sequence[AnalyzerRequest]
) -> Iterator[tuple[str, Any]]:
    path, batch = element
    for r in requests:
        column = batch.columns.get(r.key)
        if column is None or column.kind is None or not column.values.size:
            continue
        check_column_kind(r, column.kind, path)
        yield r.id, column.values


class _VocabularyCounts:
    """Counts vocabulary values, then splits them into shards by a stable hash.

    :meth:`add` returns ``((request id, shard), counts)`` parts once the counts hold
    ``max_entries`` distinct values (so memory stays bounded); :meth:`flush` returns
    the rest.
    """

    def __init__(
        self, requests: Sequence[AnalyzerRequest], num_shards: int, max_entries: int
    ) -> None:
        self._requests = tuple(requests)
        self._num_shards = num_shards
        self._max_entries = max_entries
        self._counts: dict[str, Counter[Any]] = {}

    def add(self, path: str, batch: Any) -> list[tuple[tuple[str, int], dict[Any, int]]]:
        size = 0
        for r in self._requests:
            column = batch.columns.get(r.key)
            if column is None or column.kind is None or not column.values.size:
                continue
            check_column_kind(r, column.kind, path)
            acc = self._counts.get(r.id)
            if acc is None:
                acc = self._counts[r.id] = Counter()
            acc.update(column.values.tolist())  # Counter's C fast path for a list
            size += len(acc)
        return self.flush() if size >= self._max_entries else []

    def flush(self) -> list[tuple[tuple[str, int], dict[Any, int]]]:
        counts, self._counts = self._counts, {}
        out: list[tuple[tuple[str, int], dict[Any, int]]] = []
        for request_id, acc in counts.items():
            keys = list(acc)
            if keys and isinstance(keys[0], int):
                hashes = hash_values(np.asarray(keys, dtype=np.int64))
            else:
                arr = np.empty(len(keys), dtype=object)
                arr[:] = keys
                hashes = hash_values(arr)
            shards = (hashes % np.uint64(self._num_shards)).tolist()
            parts: dict[int, dict[Any, int]] = {}
            for key, shard, count in zip(keys, shards, acc.values(), strict=True):
                part = parts.get(shard)
                if part is None:
                    part = parts[shard] = {}
                part[key] = count
            out += [((request_id, shard), part) for shard, part in parts.items()]
        return out


_BATCH, _COUNTS = "batch", "counts"


class _ReadDecodeCountFn(beam.DoFn):  # type: ignore[misc]
    """Reads one file: decoded batches out as they come, vocabulary counts at the end.

    Counting per file inside ``process`` (not per bundle, emitted from
    ``finish_bundle``) keeps every output in ``process``: Beam's Dask runner
    drops what ``finish_bundle`` emits (it collects a bundle's outputs before
    calling it; ``apply_dofn_to_bundle`` in apache_beam/runners/dask/
    transform_evaluator.py, Beam 2.77). Outputs are ``(tag, value)`` pairs.
    """

    def __init__(
        self,
        read: _ReadBatchesFn,
        vocabulary: Sequence[AnalyzerRequest],
        num_shards: int,
        max_entries: int,
    ) -> None:
        self._read = read
        self._vocabulary = tuple(vocabulary)
        self._num_shards = num_shards
        self._max_entries = max_entries

    def process(self, path: str) -> Iterator[tuple[str, Any]]:
        counts = _VocabularyCounts(self._vocabulary, self._num_shards, self._max_entries)
        for element in self._read.process(path):
            decoded = _decode(element)
            yield _BATCH, decoded
            if self._vocabulary:
                for part in counts.add(*decoded):
                    yield _COUNTS, part
        for part in counts.flush():
            yield _COUNTS, part


def _pick(element: tuple[str, Any], tag: str) -> Iterator[Any]:
    if element[0] == tag:
        yield element[1]


class _MergeCountsFn(beam.CombineFn):  # type: ignore[misc]
    """Adds ``Counter`` objects (the counts of one shard of one vocabulary)."""

    def create_accumulator(self) -> Counter[Any]:
        return Counter()

    def add_input(self, acc: Counter[Any], element: Mapping[Any, int]) -> Counter[Any]:
        acc.update(element)
        return acc

    def merge_accumulators(self, accumulators: Iterable[Counter[Any]]) -> Counter[Any]:
        it = iter(accumulators)
        first = next(it)
        for other in it:
            first.update(other)
        return first

    def extract_output(self, acc: Counter[Any]) -> Counter[Any]:
        return acc


def _shard_vocabulary(
    element: tuple[tuple[str, int], Counter[Any]], requests: dict[str, AnalyzerRequest]
) -> tuple[str, tuple[list[tuple[Any, int]], int, int, frozenset[str]]]:
    """One shard's part: its kept values (a superset of its share of the result) and sizes."""
    (request_id, _), counts = element
    r = requests[request_id]
    kept = sort_vocabulary(counts.items(), top_k=r.top_k, min_frequency=r.min_frequency)
    kinds = frozenset("int64" if isinstance(v, int) else "bytes" for v in counts)
    return request_id, (kept, len(counts), sum(counts.values()), kinds)


def _finish_vocabulary(
    element: tuple[str, Iterable[tuple[list[tuple[Any, int]], int, int, frozenset[str]]]],
    *,
    requests: dict[str, AnalyzerRequest],
    numbers: dict[str, int],
    output_dir: str,
) -> tuple[str, dict[str, Any]]:
    request_id, parts = element
    request = requests[request_id]
    kept: list[tuple[Any, int]] = []
    num_distinct = total = 0
    kinds: frozenset[str] = frozenset()
    for part_kept, n, t, k in parts:
        kept.extend(part_kept)
        num_distinct += n
        total += t
        kinds |= k
    if len(kinds) > 1:
        raise DataError(
            f"feature {request.key!r} has both int64 and bytes values; one feature needs one "
            "kind for an analysis",
            reason="mixed_kind",
        )
    kind = next(iter(kinds)) if kinds else None
    vocab = vocabulary_result(
        request.key, kind, kept, request, num_distinct=num_distinct, total=total
    )
    meta = write_vocabulary_files(
        vocab, output_dir, numbers[request_id], opener=_beam_create, join=FileSystems.join
    )
    return request.key, meta


def _empty_vocabulary(
    _: Any,
    *,
    requests: Sequence[AnalyzerRequest],
    numbers: dict[str, int],
    output_dir: str,
    written: dict[str, Any],
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Writes empty files for requested vocabularies of features that never had values."""
    for r in requests:
        if r.key not in written:
            yield _finish_vocabulary(
                (r.id, []), requests={r.id: r}, numbers=numbers, output_dir=output_dir
            )


def _boundaries(
    element: tuple[str, QuantileSketch], by_id: dict[str, AnalyzerRequest]
) -> tuple[str, Any]:
    request_id, sketch = element
    return request_id, quantiles_result(by_id[request_id], sketch)


def _statistics_json(acc: StatisticsAccumulator, sources: Sequence[str]) -> dict[str, Any]:
    return acc.extract(sources).to_json()


def _write_index(
    _: Any,
    *,
    output_dir: str,
    requests: Sequence[AnalyzerRequest],
    eps: float,
    num_examples: int,
    quantiles: dict[str, Any],
    moments: dict[str, Any],
    vocab_files: dict[str, Any],
    statistics: Any,
) -> str:
    q_results = {}
    m_results = {}
    for r in requests:
        if r.analyzer == "quantiles":
            found = quantiles.get(r.id) or quantiles_result(r, QuantileSketch(eps))
            q_results[(r.key, int(r.num_bins or 1))] = found
        elif r.analyzer == "moments":
            m_results[r.key] = moments.get(r.id) or MomentsAccumulator().extract()
    analysis = Analysis(
        requests=tuple(requests),
        num_examples=num_examples,
        quantiles=q_results,
        moments_by_key=m_results,
        statistics=statistics,
    )
    analysis.save_index(output_dir, vocab_files, opener=_beam_create, join=FileSystems.join)
    return FileSystems.join(output_dir, "analysis.json")


class AnalyzeDataset(beam.PTransform):  # type: ignore[misc]
    """Computes analyzer results over TFRecord shards and writes the artifact directory.

    Applied to a pipeline (``p | AnalyzeDataset(...)``); the output is a
    one-element PCollection holding the path of ``analysis.json``, which is
    written last.

    Args:
        inputs: TFRecord paths or globs.
        requests: what to compute (`featurepipe.analysis.load_requests`).
        output_dir: the artifact directory (any Beam filesystem).
        eps: rank error of the quantile sketches. Defaults to `0.01`.
        batch_size: records per element. Defaults to `1024`.
        statistics: also write ``statistics.json``. Defaults to `True`.
        compression: input compression, ``"auto"`` to sniff. Defaults to `"auto"`.
        vocabulary_shards: vocabulary counts are split by a stable hash of the
            value into this many keys, so no worker holds every distinct value.
            Defaults to `64`.
        max_bundle_entries: distinct values a worker counts (per input file) before
            it emits them, so its memory stays bounded. Defaults to `500000`.
    """

    def __init__(
        self,
        inputs: Sequence[str],
        requests: Sequence[AnalyzerRequest],
        output_dir: str,
        *,
        eps: float = 0.01,
        batch_size: int = 1024,
        statistics: bool = True,
        compression: str = "auto",
        vocabulary_shards: int = 64,
        max_bundle_entries: int = 500_000,
    ) -> None:
        super().__init__()
        QuantileSketch(eps)  # validates eps
        self.vocabulary_shards = vocabulary_shards
        self.max_bundle_entries = max_bundle_entries
        self.inputs = list(inputs)
        self.requests = tuple(sorted(requests, key=lambda r: r.id))
        self.output_dir = output_dir
        self.eps = eps
        self.batch_size = batch_size
        self.statistics = statistics
        self.compression = compression

    def expand(self, pbegin: Any) -> Any:
        from featurepipe.beam._convert import expand_inputs

        sources = expand_inputs(self.inputs)
        vocab_reqs = [r for r in self.requests if r.analyzer == "vocabulary"]
        q_reqs = [r for r in self.requests if r.analyzer == "quantiles"]
        m_reqs = [r for r in self.requests if r.analyzer == "moments"]
        _mkdirs(self.output_dir)
        by_request = {r.id: r for r in self.requests}

        files = pbegin | "Files" >> beam.Create(sources) | "Spread" >> beam.Reshuffle()
        read = _ReadBatchesFn(self.batch_size, self.compression, True)
        tagged = files | "ReadDecodeCount" >> beam.ParDo(
            _ReadDecodeCountFn(read, vocab_reqs, self.vocabulary_shards, self.max_bundle_entries)
        )
        batches = tagged | "Batches" >> beam.FlatMap(_pick, _BATCH)

        quantiles = (
            batches
            | "QuantileValues" >> beam.FlatMap(_numeric_values, q_reqs)
            | "Sketch"
            >> beam.CombinePerKey(AccumulatorCombineFn(functools.partial(QuantileSketch, self.eps)))
            | "Boundaries" >> beam.Map(_boundaries, by_id=by_request)
        )
        moments = (
            batches
            | "MomentValues" >> beam.FlatMap(_numeric_values, m_reqs)
            | "Moments"
            >> beam.CombinePerKey(
                AccumulatorCombineFn(MomentsAccumulator, extract=MomentsAccumulator.extract)
            )
        )

        by_id = {r.id: r for r in vocab_reqs}
        numbers = {r.id: i for i, r in enumerate(vocab_reqs)}  # as Analysis.save numbers them
        counted = (
            tagged
            | "CountValues" >> beam.FlatMap(_pick, _COUNTS)
            | "MergeCounts" >> beam.CombinePerKey(_MergeCountsFn())
            | "ShardVocabularies" >> beam.Map(_shard_vocabulary, by_id)
            | "GroupShards" >> beam.GroupByKey()
            | "WriteVocabularies"
            >> beam.Map(
                _finish_vocabulary, requests=by_id, numbers=numbers, output_dir=self.output_dir
            )
        )
        if self.statistics:
            stats = (
                batches
                | "BatchesOnly" >> beam.Map(lambda pair: pair[1])
                | "Statistics"
                >> beam.CombineGlobally(
                    AccumulatorCombineFn(
                        functools.partial(StatisticsAccumulator, StatsOptions(eps=self.eps)),
                        extract=functools.partial(_statistics_json, sources=tuple(sources)),
                    )
                )
            )
        else:
            stats = pbegin | "NoStatistics" >> beam.Create([None])
        num_examples = (
            batches
            | "Rows" >> beam.Map(lambda pair: pair[1].num_rows)
            | "CountRows" >> beam.CombineGlobally(sum)
        )
        # Every result reaches the last step as ONE side input of (tag, value) pairs: Beam's
        # Dask runner computes each side input on its own (a nested compute of its whole
        # upstream graph, DaskBagWindowedIterator in apache_beam/runners/dask/
        # transform_evaluator.py, Beam 2.77), so one side input per result read and decoded
        # the data once per result.
        results = (
            (quantiles | "TagQuantiles" >> beam.Map(lambda kv: ("quantiles", kv))),
            (moments | "TagMoments" >> beam.Map(lambda kv: ("moments", kv))),
            (counted | "TagVocabularies" >> beam.Map(lambda kv: ("vocabulary", kv))),
            (stats | "TagStatistics" >> beam.Map(lambda v: ("statistics", v))),
            (num_examples | "TagRows" >> beam.Map(lambda n: ("num_examples", n))),
        ) | "Results" >> beam.Flatten()
        return (
            pbegin
            | "Once" >> beam.Create([None])
            | "WriteIndex"
            >> beam.Map(
                _write_results,
                beam.pvalue.AsList(results),
                output_dir=self.output_dir,
                requests=self.requests,
                vocabulary_requests=vocab_reqs,
                numbers=numbers,
                eps=self.eps,
            )
        )


def _write_results(
    _: Any,
    results: list[tuple[str, Any]],
    *,
    output_dir: str,
    requests: Sequence[AnalyzerRequest],
    vocabulary_requests: Sequence[AnalyzerRequest],
    numbers: dict[str, int],
    eps: float,
) -> str:
    """Splits the tagged results, writes empty vocabularies, then the index."""
    by_tag: dict[str, list[Any]] = {}
    for tag, value in results:
        by_tag.setdefault(tag, []).append(value)
    vocab_files = dict(by_tag.get("vocabulary", []))
    empty = list(
        _empty_vocabulary(
            None,
            requests=vocabulary_requests,
            numbers=numbers,
            output_dir=output_dir,
            written=vocab_files,
        )
    )
    vocab_files.update(empty)
    statistics = by_tag.get("statistics", [None])
    rows = by_tag.get("num_examples", [0])
    return _write_index(
        None,
        output_dir=output_dir,
        requests=requests,
        eps=eps,
        num_examples=sum(rows),
        quantiles=dict(by_tag.get("quantiles", [])),
        moments=dict(by_tag.get("moments", [])),
        vocab_files=vocab_files,
        statistics=statistics[0] if statistics else None,
    )


def _mkdirs(path: str) -> None:
    if not FileSystems.exists(path):
        FileSystems.mkdirs(path)


class _BeamWriter:
    """``FileSystems.create`` as a context manager (what `Analysis.save_index` expects)."""

    def __init__(self, path: str) -> None:
        self._f = FileSystems.create(path, compression_type=_RAW)

    def write(self, data: bytes) -> int:
        self._f.write(data)
        return len(data)

    def __enter__(self) -> _BeamWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


def _beam_create(path: str) -> _BeamWriter:
    return _BeamWriter(path)
