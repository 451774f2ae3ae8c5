"""Beam transforms for converting CSV / JSON lines / Parquet into tf.Example TFRecords.

The work per row is done by the core (:mod:`featurepipe.convert._sources` parses,
:mod:`featurepipe.convert._encode` checks and encodes); these transforms move
*batches* of rows (thousands per element), so the runner's per-element cost
is paid once per batch, not once per row.

* :class:`ReadRawBatches`: ``(file_index, path)`` -> ``((file, split, batch), unit)``,
  a unit being a batch of rows in its format's fastest form
  (:mod:`featurepipe.convert._units`: CSV as raw bytes converted in one C call when the
  extension is built, Parquet as Arrow record batches, else a ``RowBatch``).
* :class:`InferRawSchema`: batches -> one :class:`~featurepipe.example.Schema`
  (every row counts).
* :class:`EncodeExamples`: batches -> serialized Examples (tag ``"examples"``)
  and dead letters (tag ``"dead_letters"``).
* :class:`ConvertToExamples`: the whole job, with sharded atomic output,
  ``PREFIX.schema.json``, ``PREFIX.deadletter-*.jsonl`` and
  ``PREFIX.summary.json``.

Every path goes through Beam's ``FileSystems``, so ``gs://`` or ``s3://``
inputs and outputs work where Beam has them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import IO, Any, NamedTuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import Metrics

from featurepipe.beam._output import (
    OutputLayout,
    Piece,
    PieceWriter,
    copy_pieces,
    publish,
    read_piece_meta,
    write_piece_meta,
)
from featurepipe.convert import (
    INVALID_UTF8,
    MALFORMED_ROW,
    ColumnRename,
    ConvertOptions,
    ConvertResult,
    DeadLetter,
    RawSchemaInferrer,
    ReadOptions,
    Split,
    Unit,
    convert_unit,
    file_columns,
    guess_format,
    infer_unit,
    plan_splits,
    present_columns,
    read_units,
    select_schema,
)
from featurepipe.errors import ConfigError, DataError
from featurepipe.example import Schema
from featurepipe.tfrecord import COMPRESSIONS, expand_paths

__all__ = [
    "BadFractionError",
    "ConvertToExamples",
    "EncodeExamples",
    "EncodedOutputs",
    "InferRawSchema",
    "ReadRawBatches",
    "ShardOptions",
    "expand_inputs",
]

_NS = "featurepipe.convert"
_LOG = logging.getLogger("featurepipe.convert")
# tags of the Encode step's one output (see EncodeExamples.expand)
_EXAMPLES, _DEAD_LETTERS, _READ_COUNTS = "examples", "dead_letters", "read_counts"
_UNEXPECTED = "unexpected_columns"
#: TFDV's anomaly type for a column the schema lacks (tensorflow/metadata, anomalies.proto).
SCHEMA_NEW_COLUMN = "SCHEMA_NEW_COLUMN"
DEFAULT_SHARD_BYTES = 256 << 20


class BadFractionError(DataError):
    """More rows were dead-lettered than ``max_bad_fraction`` allows."""


@dataclasses.dataclass(frozen=True)
class ShardOptions:
    """How outputs are split into shards.

    Args:
        num_shards: exactly this many shards; ``0`` lets the size decide. Defaults to `0`.
        shard_bytes: with ``num_shards=0``, the target shard size (uncompressed
            bytes). Defaults to `256 MiB`.
        compression: ``"none"``, ``"gzip"`` or ``"zlib"``. Defaults to `"none"`.
        max_bad_fraction: fail the job when more than this fraction of the rows
            read is dead-lettered; ``None`` never fails. Defaults to `None`.

    Raises:
        ConfigError: if an option is out of range.

    Examples:
    >>> ShardOptions(num_shards=4, compression="gzip").num_shards
    4
    """

    num_shards: int = 0
    shard_bytes: int = DEFAULT_SHARD_BYTES
    compression: str = "none"
    max_bad_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.num_shards < 0:
            raise ConfigError(f"`num_shards` must be >= 0. Received: num_shards={self.num_shards}")
        if self.shard_bytes < 1:
            raise ConfigError(
                f"`shard_bytes` must be >= 1. Received: shard_bytes={self.shard_bytes}"
            )
        if self.compression not in COMPRESSIONS:
            raise ConfigError(
                f"Unknown value for `compression`. Allowed values are: {', '.join(COMPRESSIONS)}. "
                f"Received: compression={self.compression!r}"
            )
        f = self.max_bad_fraction
        if f is not None and not 0.0 <= f <= 1.0:
            raise ConfigError(
                f"`max_bad_fraction` must be in [0, 1]. Received: max_bad_fraction={f}"
            )


def expand_inputs(patterns: Sequence[str]) -> list[str]:
    """Expands inputs: local ones as `featurepipe.tfrecord.expand_paths`, remote ones
    (``gs://``, ``s3://``) through Beam's FileSystems; each pattern's matches
    sorted, without duplicates.

    Args:
        patterns: paths, glob patterns (``gs://b/day_*.csv.gz``) or, for local
            files, sharded specs ``PREFIX@N``.

    Returns:
        The matching file paths.

    Raises:
        ConfigError: if no pattern is given or one matches nothing.
    """
    if not patterns:
        raise ConfigError("At least one input path or glob is required. Received: inputs=[]")
    found: dict[str, None] = {}
    remote = [p for p in patterns if "://" in p]
    matched = dict(zip(remote, FileSystems.match(remote), strict=True)) if remote else {}
    for pattern in patterns:
        if pattern in matched:
            paths = sorted(m.path for m in matched[pattern].metadata_list)
        else:
            try:
                paths = sorted(expand_paths(pattern))
            except ConfigError as e:
                raise ConfigError(
                    f"The input pattern matched no files. Received: input={pattern!r} ({e})"
                ) from None
        if not paths:
            raise ConfigError(f"The input pattern matched no files. Received: input={pattern!r}")
        found.update(dict.fromkeys(paths))
    return list(found)


def _beam_open(path: str) -> IO[bytes]:
    f: IO[bytes] = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    return f


# Every batch is keyed by (file index, split index, batch index): a stable id that
# orders shard contents and spreads batches over shards.
BatchKey = tuple[int, int, int]


class _PlanFn(beam.DoFn):  # type: ignore[misc]
    def __init__(self, options: ReadOptions) -> None:
        self._options = options

    def process(self, element: tuple[int, str]) -> Iterator[tuple[int, str, Split]]:
        index, path = element
        for split in plan_splits(path, self._options, opener=_beam_open):
            yield index, path, split


class _ReadFn(beam.DoFn):  # type: ignore[misc]
    # Rows are counted where they are converted (_EncodeFn): a CSV chunk is only
    # parsed there, and with an inferred schema the inputs are read twice.
    def __init__(self, options: ReadOptions) -> None:
        self._options = options

    def process(self, element: tuple[int, str, Split]) -> Iterator[tuple[BatchKey, Unit]]:
        index, path, split = element
        batches = read_units(path, self._options, opener=_beam_open, split=split)
        for k, batch in enumerate(batches):
            yield (index, split.index, k), batch


class ReadRawBatches(beam.PTransform):  # type: ignore[misc]
    """Reads raw files into ``((file, split, batch), unit)`` elements.

    Args:
        options: parsing options. Defaults to `ReadOptions()`.

    The input is a PCollection of ``(file_index, path)``. Each file is cut
    into parts of about ``options.split_bytes`` (see
    :func:`featurepipe.convert.plan_splits`: CSV only at line ends outside
    quotes; compressed files whole), the parts are spread over the workers,
    and each part is read in batches of ``options.batch_size`` rows.
    """

    def __init__(self, options: ReadOptions | None = None) -> None:
        super().__init__()
        self._options = options or ReadOptions()

    def expand(self, pcoll: Any) -> Any:
        return (
            pcoll
            | "PlanSplits" >> beam.ParDo(_PlanFn(self._options))
            | "SpreadSplits" >> beam.Reshuffle()
            | "ReadSplits" >> beam.ParDo(_ReadFn(self._options))
        )


class _InferFn(beam.CombineFn):  # type: ignore[misc]
    def __init__(self, options: ConvertOptions) -> None:
        self._options = options

    def create_accumulator(self) -> RawSchemaInferrer:
        return RawSchemaInferrer(self._options)

    def add_input(
        self, acc: RawSchemaInferrer, element: tuple[BatchKey, Unit]
    ) -> RawSchemaInferrer:
        infer_unit(acc, element[1])
        return acc

    def merge_accumulators(self, accs: Any) -> RawSchemaInferrer:
        accs = iter(accs)
        first: RawSchemaInferrer = next(accs)
        for a in accs:
            first.merge(a)
        return first

    def extract_output(self, acc: RawSchemaInferrer) -> Schema:
        return acc.extract()


class InferRawSchema(beam.PTransform):  # type: ignore[misc]
    """Infers one schema from every row of the batches (a global combine).

    Args:
        options: missing values and list columns. Defaults to `ConvertOptions()`.
    """

    def __init__(self, options: ConvertOptions | None = None) -> None:
        super().__init__()
        self._options = options or ConvertOptions()

    def expand(self, pcoll: Any) -> Any:
        return pcoll | "Infer" >> beam.CombineGlobally(_InferFn(self._options))


class _RowCounters:
    """The conversion's Beam counters, counted where rows are converted (once per row)."""

    def __init__(self) -> None:
        self._written = Metrics.counter(_NS, "rows_written")
        self._dead = Metrics.counter(_NS, "rows_dead_lettered")
        self._bytes = Metrics.counter(_NS, "example_bytes")
        self._rows = Metrics.counter(_NS, "rows_read")
        self._unparsed = Metrics.counter(_NS, "rows_unparseable")

    def count(self, result: ConvertResult) -> None:
        self._rows.inc(result.num_read)
        self._unparsed.inc(
            sum(d.reason in (MALFORMED_ROW, INVALID_UTF8) for d in result.dead_letters)
        )
        self._written.inc(len(result.records))
        self._dead.inc(len(result.dead_letters))
        self._bytes.inc(sum(map(len, result.records)))


class _EncodeFn(beam.DoFn):  # type: ignore[misc]
    def __init__(self, options: ConvertOptions) -> None:
        self._options = options
        self._counters = _RowCounters()

    def process(self, element: tuple[BatchKey, Unit], schema: Schema) -> Iterator[Any]:
        key, batch = element
        result = convert_unit(batch, schema, self._options)
        self._counters.count(result)
        yield _READ_COUNTS, result.num_read
        if result.records:
            yield _EXAMPLES, (key, result.records)
        if result.dead_letters:
            yield _DEAD_LETTERS, (key, result.dead_letters)


def _pick(element: tuple[str, Any], tag: str) -> Iterator[Any]:
    if element[0] == tag:
        yield element[1]


class EncodedOutputs(NamedTuple):
    """What :class:`EncodeExamples` gives: three PCollections.

    Attributes:
        examples: ``(key, list[bytes])``, the serialized Examples of each batch.
        dead_letters: ``(key, list[DeadLetter])``, the rows that could not be converted.
        read_counts: rows read per batch (ints).
    """

    examples: Any
    dead_letters: Any
    read_counts: Any


class EncodeExamples(beam.PTransform):  # type: ignore[misc]
    """Converts batches into serialized Examples, with a dead-letter output.

    Args:
        schema: a :class:`Schema`, or a singleton PCollection of one (e.g. from
            :class:`InferRawSchema`).
        options: global conversion choices. Defaults to `ConvertOptions()`.

    Returns (from ``expand``):
        An :class:`EncodedOutputs` with ``examples`` (``(key, list[bytes])``),
        ``dead_letters`` (``(key, list[DeadLetter])``) and ``read_counts``
        (rows read per batch).
    """

    def __init__(self, schema: Any, options: ConvertOptions | None = None) -> None:
        super().__init__()
        self._schema = schema
        self._options = options or ConvertOptions()

    def expand(self, pcoll: Any) -> Any:
        schema = self._schema
        if not isinstance(schema, Schema):
            schema = beam.pvalue.AsSingleton(schema)
        # One main output of (tag, value) pairs, split by three FlatMaps, instead of a
        # multi-output ParDo (`with_outputs`): Beam's Dask runner delivers every tagged
        # output of a ParDo into its main output (apache/beam#29365 is one of its known
        # gaps), and this shape is correct on every runner. On the DirectRunner the three
        # FlatMaps see one element per batch, not per row: no measurable cost.
        tagged = pcoll | "Encode" >> beam.ParDo(_EncodeFn(self._options), schema)
        return EncodedOutputs(
            examples=tagged | "Examples" >> beam.FlatMap(_pick, _EXAMPLES),
            dead_letters=tagged | "DeadLetters" >> beam.FlatMap(_pick, _DEAD_LETTERS),
            read_counts=tagged | "ReadCounts" >> beam.FlatMap(_pick, _READ_COUNTS),
        )


class _ExampleSink:
    """The shard pieces of one bundle: rows dealt over the shards, pieces rolled by size.

    A piece is announced (its path) when it opens and described (``PATH.meta.json``:
    shard, first key, records, bytes) when it closes; see :class:`_ConvertSplitFn`.
    """

    def __init__(self, layout: OutputLayout, shards: ShardOptions) -> None:
        self._layout = layout
        self._shards = shards
        self._open: dict[int, PieceWriter] = {}
        self._opened: list[str] = []

    def write(self, key: BatchKey, records: list[bytes]) -> None:
        n = self._shards.num_shards
        if not n:
            self._write(-1, key, records)
            return
        # Deal the batch's rows round-robin over the shards (starting at a
        # shard that depends on the batch key), so shards stay balanced even
        # when there are fewer batches than shards.
        base = sum(key)
        for offset in range(min(n, len(records))):
            self._write((base + offset) % n, key, records[offset::n])

    def _write(self, shard: int, key: BatchKey, records: list[bytes]) -> None:
        w = self._open.get(shard)
        if w is None:
            w = self._open[shard] = PieceWriter(self._layout, shard, key)
            self._opened.append(w.path)
        w.write(records)
        if not self._shards.num_shards and w.nbytes >= self._shards.shard_bytes:
            write_piece_meta(w.close())
            del self._open[shard]

    def take_opened(self) -> list[str]:
        """Paths of the pieces opened since the last call."""
        out, self._opened = self._opened, []
        return out

    def close(self) -> None:
        for w in self._open.values():
            write_piece_meta(w.close())
        self._open = {}


class _DeadLetterSink:
    """The dead-letter piece of one bundle (JSON lines), opened at the first bad row."""

    def __init__(self, layout: OutputLayout) -> None:
        self._layout = layout
        self._f: Any = None
        self._path = ""
        self._opened: list[str] = []
        self._count = 0
        self._bytes = 0
        self._first: BatchKey = (1 << 62, 0, 0)
        self._reasons: Counter[str] = Counter()

    def write(self, key: BatchKey, dead: list[DeadLetter]) -> None:
        if self._f is None:
            self._path = self._layout.new_piece("deadletter")
            self._f = FileSystems.create(self._path, compression_type=CompressionTypes.UNCOMPRESSED)
            self._opened.append(self._path)
        data = "".join(d.to_json() + "\n" for d in dead).encode("utf-8")
        self._f.write(data)
        self._count += len(dead)
        self._bytes += len(data)
        self._first = min(self._first, key)
        self._reasons.update(d.reason for d in dead)

    def take_opened(self) -> list[str]:
        out, self._opened = self._opened, []
        return out

    def close(self) -> None:
        if self._f is None:
            return
        self._f.close()
        self._f = None
        write_piece_meta(
            Piece(
                self._path,
                -1,
                self._first,
                self._count,
                self._bytes,
                tuple(sorted(self._reasons.items())),
            )
        )


class _ConvertSplitFn(beam.DoFn):  # type: ignore[misc]
    """Reads, converts and writes splits of the input files; pieces live for a bundle.

    Every output leaves from ``process``, none from ``finish_bundle``: Beam's
    Dask runner collects a bundle's outputs before it calls ``finish_bundle``
    (``apply_dofn_to_bundle`` in apache_beam/runners/dask/transform_evaluator.py,
    Beam 2.77), so anything emitted there is lost. So a piece file is announced
    (its path) from ``process`` when it opens, and ``finish_bundle`` only closes
    the pieces and writes each one's description beside it, which publishing
    reads. Pieces span the bundle, not one split: on the DirectRunner a shard is
    then one piece, renamed into place, not many concatenated. A bundle that fails
    leaves only unannounced pieces in the run's temporary folder, which publishing
    deletes. Outputs are ``(tag, value)`` pairs (see EncodeExamples).
    """

    def __init__(
        self,
        read_options: ReadOptions,
        convert_options: ConvertOptions,
        layout: OutputLayout,
        shards: ShardOptions,
    ) -> None:
        self._read = read_options
        self._convert = convert_options
        self._layout = layout
        self._shards = shards
        self._counters = _RowCounters()

    def start_bundle(self) -> None:
        self._examples = _ExampleSink(self._layout, self._shards)
        self._dead = _DeadLetterSink(self._layout)

    def process(self, element: tuple[int, str, Split], schema: Schema) -> Iterator[Any]:
        index, path, split = element
        examples, dead = self._examples, self._dead
        rows = 0
        unexpected: Counter[str] = Counter()
        wanted = set(schema.names)
        units = read_units(path, self._read, opener=_beam_open, split=split)
        for k, unit in enumerate(units):
            key = (index, split.index, k)
            result = convert_unit(unit, schema, self._convert)
            rows += result.num_read
            for name, n in present_columns(unit, result.num_read).items():
                if n and name not in wanted and self._read.keeps(name):
                    unexpected[name] += n
            self._counters.count(result)
            if result.records:
                examples.write(key, result.records)
            if result.dead_letters:
                dead.write(key, result.dead_letters)
        for piece_path in examples.take_opened():
            yield _EXAMPLES, piece_path
        for piece_path in dead.take_opened():
            yield _DEAD_LETTERS, piece_path
        yield _READ_COUNTS, rows
        if unexpected:
            yield _UNEXPECTED, dict(unexpected)

    def finish_bundle(self) -> None:
        self._examples.close()
        self._dead.close()


class _FinalizeFn(beam.DoFn):  # type: ignore[misc]
    def __init__(
        self,
        layout: OutputLayout,
        shards: ShardOptions,
        inputs: list[str],
        renamed: list[dict[str, Any]] | None = None,
        on_new_column: str = "ignore",
    ) -> None:
        self._layout = layout
        self._shards = shards
        self._inputs = inputs
        self._renamed = renamed or []
        self._on_new_column = on_new_column

    def process(
        self, _: Any, converted: list[tuple[str, Any]], schema: Schema
    ) -> Iterator[dict[str, Any]]:
        by_tag: dict[str, list[Any]] = {}
        for tag, value in converted:
            by_tag.setdefault(tag, []).append(value)
        # pieces were announced by path; their descriptions were written when they closed
        pieces = [read_piece_meta(path) for path in by_tag.get(_EXAMPLES, [])]
        dead = [read_piece_meta(path) for path in by_tag.get(_DEAD_LETTERS, [])]
        read: list[int] = by_tag.get(_READ_COUNTS, [])
        unexpected: list[dict[str, int]] = by_tag.get(_UNEXPECTED, [])
        layout, shards = self._layout, self._shards
        new_columns: Counter[str] = Counter()
        for part in unexpected:
            new_columns.update(part)
        schema_json = _schema_json(schema, self._renamed)
        rows_read = sum(read)
        written = sum(p.records for p in pieces)
        dead_total = sum(p.records for p in dead)
        reasons: Counter[str] = Counter()
        for p in dead:
            reasons.update(dict(p.reasons))
        if rows_read != written + dead_total:
            raise DataError(  # pragma: no cover - an internal bug, never a data problem
                f"Row accounting failed: read {rows_read} != written {written} + "
                f"dead-lettered {dead_total}. Please report this.",
                reason="accounting",
            )
        summary: dict[str, Any] = {
            "status": "ok",
            "run_id": layout.run_id,
            "inputs": self._inputs,
            "rows_read": rows_read,
            "rows_written": written,
            "rows_dead_lettered": dead_total,
            "dead_letters_by_reason": dict(sorted(reasons.items())),
            "unexpected_columns": dict(sorted(new_columns.items())),
            "renamed_columns": self._renamed,
        }
        moves: list[tuple[str, str]] = []
        dl_final = layout.deadletter(0, 1)
        dl_tmp = f"{dl_final}.tmp-{layout.run_id}"
        copy_pieces(sorted(dead, key=lambda p: p.first), dl_tmp, layout, tfrecord=False)
        moves.append((dl_tmp, dl_final))
        limit = shards.max_bad_fraction
        if self._on_new_column == "error" and new_columns:
            # Only JSON lines get here: a key first seen after a file's first rows
            # (CSV and Parquet columns are checked before the job starts).
            summary.update(
                status="failed",
                failure=SCHEMA_NEW_COLUMN,
                shards=[],
                shards_written=0,
                dead_letter_files=[dl_final],
            )
            publish(layout, moves, summary, schema_json)
            raise DataError(
                f"column(s) {sorted(new_columns)!r} are not in the schema; no shards were "
                "written. Add them to the schema, leave them out with --drop-columns, or "
                "pass --on-new-column ignore to convert without them.",
                reason=SCHEMA_NEW_COLUMN,
            )
        failed = limit is not None and rows_read > 0 and dead_total > limit * rows_read
        if failed:
            summary.update(
                status="failed",
                failure="max_bad_fraction",
                shards=[],
                shards_written=0,
                dead_letter_files=[dl_final],
                max_bad_fraction=limit,
            )
            publish(layout, moves, summary, schema_json)
            raise BadFractionError(
                f"{dead_total} of {rows_read} rows were dead-lettered "
                f"({dead_total / rows_read:.2%}), more than max_bad_fraction={limit}; "
                f"no shards were written. See {dl_final}.",
                reason="max_bad_fraction",
            )
        groups = _group_pieces(pieces, shards)
        shard_info = []
        for i, group in enumerate(groups):
            final = layout.shard(i, len(groups))
            if len(group) == 1 and layout.compression != "zlib":
                moves.append((group[0].path, final))
            else:
                tmp = f"{final}.tmp-{layout.run_id}"
                copy_pieces(group, tmp, layout, tfrecord=True)
                moves.append((tmp, final))
            shard_info.append({"path": final, "records": sum(p.records for p in group)})
        summary.update(
            shards=shard_info, shards_written=len(shard_info), dead_letter_files=[dl_final]
        )
        publish(layout, moves, summary, schema_json)
        yield summary


def _schema_json(schema: Schema, renamed: list[dict[str, Any]]) -> str:
    """``PREFIX.schema.json``: the schema, plus ``renamed_columns`` when header names changed.

    A new top-level key: `featurepipe.example.Schema.from_json` reads only the
    keys it knows, so the file stays a schema for ``--schema`` and older readers.
    """
    if not renamed:
        return schema.to_json()
    d = schema.to_dict()
    d["renamed_columns"] = renamed
    return json.dumps(d, indent=2, ensure_ascii=False)


def _choose_inferred(schema: Schema, options: ReadOptions) -> Schema:
    """The chosen columns of an inferred schema. A chosen column the data never had is
    not an error here: CSV and Parquet inputs were checked when the job was built, and
    a JSON lines key may simply not occur."""
    chosen = [*(options.columns or ()), *options.drop_columns]
    return select_schema(schema, options, known=chosen)


def _by_index(r: ColumnRename) -> tuple[int, str, str]:
    return r.index, r.header, r.name


def _renamed_json(renames: dict[ColumnRename, int]) -> list[dict[str, Any]]:
    """Renamed header names, once each, with the number of input files where they were."""
    return [{**r.to_dict(), "files": renames[r]} for r in sorted(renames, key=_by_index)]


def _group_pieces(pieces: Sequence[Piece], shards: ShardOptions) -> list[list[Piece]]:
    ordered = sorted(pieces, key=lambda p: (p.shard, p.first, p.path))
    if shards.num_shards:
        groups: list[list[Piece]] = [[] for _ in range(shards.num_shards)]
        for p in ordered:
            groups[p.shard].append(p)
        return groups
    out: list[list[Piece]] = [[]]
    size = 0
    for p in ordered:
        if out[-1] and size + p.nbytes > shards.shard_bytes:
            out.append([])
            size = 0
        out[-1].append(p)
        size += p.nbytes
    return out


class ConvertToExamples(beam.PTransform):  # type: ignore[misc]
    """The whole conversion: raw files -> sharded TFRecords, schema, dead letters, summary.

    Args:
        inputs: file paths or globs (expanded now, through FileSystems).
        output_prefix: ``PREFIX`` of ``PREFIX-SSSSS-of-NNNNN.tfrecord[.gz]``.
        schema: the schema to write; ``None`` infers it from every row (the
            inputs are then read twice). Defaults to `None`.
        read_options: parsing options. Defaults to `ReadOptions()`.
        convert_options: global conversion choices. Defaults to `ConvertOptions()`.
        shard_options: sharding, compression and the bad-row budget.
            Defaults to `ShardOptions()`.

    Apply it to a pipeline (``p | ConvertToExamples(...)``); the output is a
    PCollection holding the summary dict once the outputs are published.

    Each input's columns are read when the transform is built (a bad header
    fails here, naming the file): empty and duplicate CSV header names are
    named as pandas names them (logged once as a warning and recorded as
    ``renamed_columns`` in the summary and the schema JSON),
    ``read_options.columns`` / ``drop_columns`` choose the features, and with
    ``convert_options.on_new_column="error"`` a column the given schema lacks
    fails here with reason ``SCHEMA_NEW_COLUMN``; otherwise such columns are
    counted in the summary's ``unexpected_columns``.

    Raises:
        DataError: an unreadable header, or a new column with ``on_new_column="error"``.
        ConfigError: a chosen or renamed column that the inputs do not have.

    Examples:
    >>> import apache_beam as beam, tempfile, os
    >>> d = tempfile.mkdtemp(); src = os.path.join(d, "in.csv")
    >>> _ = open(src, "w").write("a,b\\n1,x\\n2,y\\nz,w\\n")
    >>> from featurepipe.example import FeatureSchema
    >>> schema = Schema(
    ...     (FeatureSchema("a", "int64", shape=()), FeatureSchema("b", "bytes", shape=()))
    ... )
    >>> with beam.Pipeline() as p:
    ...     _ = p | ConvertToExamples([src], os.path.join(d, "out"), schema=schema)
    >>> s = json.load(open(os.path.join(d, "out.summary.json")))
    >>> s["rows_read"], s["rows_written"], s["dead_letters_by_reason"]
    (3, 2, {'UNEXPECTED_DATA_TYPE': 1})
    """

    def __init__(
        self,
        inputs: Sequence[str],
        output_prefix: str,
        *,
        schema: Schema | None = None,
        read_options: ReadOptions | None = None,
        convert_options: ConvertOptions | None = None,
        shard_options: ShardOptions | None = None,
    ) -> None:
        super().__init__()
        self.files = expand_inputs(list(inputs))
        self.read_options = read_options or ReadOptions()
        self.convert_options = convert_options or ConvertOptions()
        self.shard_options = shard_options or ShardOptions()
        self.layout = OutputLayout(output_prefix, self.shard_options.compression)
        self.renamed_columns = self._check_columns()
        self.schema = None if schema is None else select_schema(schema, self.read_options)
        if self.schema is not None:
            self._check_new_columns(self.schema)

    def _check_columns(self) -> list[dict[str, Any]]:
        """Reads each input's header now (bad headers fail here, naming the file) and
        returns the renamed header names; says once (a warning) when some were renamed."""
        self.file_columns: dict[str, list[str]] = {}
        renames: Counter[ColumnRename] = Counter()
        for path in self.files:
            names, changed = file_columns(path, self.read_options, opener=_beam_open)
            self.file_columns[path] = names
            renames.update(changed)
        auto = [r for r in renames if r.reason != "rename"]
        if auto:
            shown = ", ".join(f"{r.header!r} -> {r.name!r}" for r in sorted(auto, key=_by_index))
            _LOG.warning(
                "the CSV header has empty or duplicate column names, named as pandas names "
                "them: %s (recorded in the summary and the schema JSON as `renamed_columns`; "
                "rename them with --rename OLD=NEW)",
                shown,
            )
        if self.read_options.chooses_columns:
            known = {n for names in self.file_columns.values() for n in names}
            closed = all(
                (self.read_options.format or guess_format(p)) != "jsonl" for p in self.files
            )
            if closed:  # CSV and Parquet files name all their columns up front
                chosen = [*(self.read_options.columns or ()), *self.read_options.drop_columns]
                unknown = [c for c in chosen if c not in known]
                if unknown:
                    raise ConfigError(
                        f"Column(s) {unknown!r} chosen with --columns / --drop-columns are "
                        f"in none of the input files. The columns are: {sorted(known)!r}"
                    )
        return _renamed_json(dict(renames))

    def _check_new_columns(self, schema: Schema) -> None:
        """Columns of the files that the schema lacks: an error up front with
        ``on_new_column="error"`` (JSON lines: the keys of each file's first rows)."""
        if self.convert_options.on_new_column != "error":
            return
        wanted = set(schema.names)
        by_file = {
            path: [n for n in names if n not in wanted and self.read_options.keeps(n)]
            for path, names in self.file_columns.items()
        }
        bad = {p: n for p, n in by_file.items() if n}
        if bad:
            path, names = next(iter(bad.items()))
            more = f" (and {len(bad) - 1} more file(s))" if len(bad) > 1 else ""
            raise DataError(
                f"{SCHEMA_NEW_COLUMN}: column(s) {names!r} are not in the schema{more}. "
                "Add them to the schema, leave them out with --drop-columns, or pass "
                "--on-new-column ignore to convert without them.",
                path=path,
                reason=SCHEMA_NEW_COLUMN,
            )

    def expand(self, pbegin: Any) -> Any:
        p = pbegin.pipeline if hasattr(pbegin, "pipeline") else pbegin
        # The splits are planned here, when the pipeline is built, not in a step of
        # it: a runner spreads the work of a step by how its input is partitioned,
        # and Beam's Dask runner partitions only at Create (its Reshuffle is a
        # no-op), so splits planned inside the pipeline would all run in the task
        # that planned them. Planning reads each input once (CSV: to cut only at
        # line ends outside quotes), which the step did as well.
        plan = [
            (index, path, split)
            for index, path in enumerate(self.files)
            for split in plan_splits(path, self.read_options, opener=_beam_open)
        ]
        splits = p | "Splits" >> beam.Create(plan) | "SpreadSplits" >> beam.Reshuffle()
        if self.schema is None:
            schema: Any = (
                splits
                | "ReadForSchema" >> beam.ParDo(_ReadFn(self.read_options))
                | "InferSchema" >> InferRawSchema(self.convert_options)
                | "ChooseColumns" >> beam.Map(_choose_inferred, self.read_options)
            )
            schema_side: Any = beam.pvalue.AsSingleton(schema)
        else:
            schema = self.schema
            schema_side = self.schema
        converted = splits | "Convert" >> beam.ParDo(
            _ConvertSplitFn(
                self.read_options, self.convert_options, self.layout, self.shard_options
            ),
            schema_side,
        )
        # One side input of the (tag, value) pairs, split in the Publish step, not one per
        # tag: Beam's Dask runner computes each side input on its own (a nested compute of
        # its whole upstream graph, DaskBagWindowedIterator in apache_beam/runners/dask/
        # transform_evaluator.py, Beam 2.77), so three side inputs from one step ran the
        # conversion three times.
        return (
            p
            | "Once" >> beam.Create([None])
            | "Publish"
            >> beam.ParDo(
                _FinalizeFn(
                    self.layout,
                    self.shard_options,
                    self.files,
                    self.renamed_columns,
                    self.convert_options.on_new_column,
                ),
                beam.pvalue.AsList(converted),
                schema_side,
            )
        )


def format_summary(summary: dict[str, Any]) -> str:
    """A short human summary of a conversion.

    Examples:
    >>> print(format_summary({"rows_read": 3, "rows_written": 2, "rows_dead_lettered": 1,
    ...     "dead_letters_by_reason": {"UNEXPECTED_DATA_TYPE": 1},
    ...     "shards": [{"path": "o-00000-of-00001.tfrecord", "records": 2}],
    ...     "dead_letter_files": ["o.deadletter-00000-of-00001.jsonl"]}))
    read 3 rows: wrote 2 to 1 shard(s), dead-lettered 1 (UNEXPECTED_DATA_TYPE: 1)
      shards:       o-00000-of-00001.tfrecord
      dead letters: o.deadletter-00000-of-00001.jsonl
    """
    reasons = ", ".join(f"{k}: {v}" for k, v in summary.get("dead_letters_by_reason", {}).items())
    shards = summary.get("shards", [])
    lines = [
        f"read {summary['rows_read']} rows: wrote {summary['rows_written']} to {len(shards)} "
        f"shard(s), dead-lettered {summary['rows_dead_lettered']}"
        + (f" ({reasons})" if reasons else "")
    ]
    if shards:
        first, last = shards[0]["path"], shards[-1]["path"]
        lines.append(f"  shards:       {first}" + (f" .. {last}" if last != first else ""))
    for f in summary.get("dead_letter_files", []):
        lines.append(f"  dead letters: {f}")
    new = summary.get("unexpected_columns") or {}
    if new:
        cols = ", ".join(f"{k} ({v} rows)" for k, v in new.items())
        lines.append(
            f"  not in the schema, not converted ({SCHEMA_NEW_COLUMN}): {cols}; "
            "--on-new-column error makes this an error"
        )
    return "\n".join(lines)


def read_summary(prefix: str) -> dict[str, Any]:
    """Reads ``PREFIX.summary.json`` through FileSystems."""
    with FileSystems.open(
        f"{prefix}.summary.json", compression_type=CompressionTypes.UNCOMPRESSED
    ) as f:
        out: dict[str, Any] = json.loads(f.read().decode("utf-8"))
    return out
