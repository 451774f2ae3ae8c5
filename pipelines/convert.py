"""A Beam job: CSV / JSON lines / Parquet -> sharded tf.Example TFRecords with dead letters.

Run it like Beam's own examples (``apache_beam/examples/wordcount.py``)::

    python -m pipelines.convert --input 'data/*.csv.gz' --output out/train \\
        --num_shards 4 --compression gzip --max_bad_fraction 0.01 \\
        --runner DirectRunner --direct_running_mode multi_processing --direct_num_workers 2

Options this module does not know (``--runner``, ``--project``, ...) are Beam
pipeline options. Outputs: ``PREFIX-SSSSS-of-NNNNN.tfrecord[.gz]``,
``PREFIX.schema.json``, ``PREFIX.deadletter-00000-of-00001.jsonl`` and,
written last, ``PREFIX.summary.json``.

Beam is imported inside :func:`run`, so :func:`add_arguments` can build the
``featurepipe convert`` command line without loading Beam.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from featurepipe.cli._common import WRITE_COMPRESSIONS
from pipelines._args import add_inputs, option_adder

__all__ = ["add_arguments", "run", "run_with_args"]


def add_arguments(parser: argparse.ArgumentParser, *, cli: bool = False) -> None:
    """Adds the conversion options to ``parser``.

    Args:
        parser: the parser to extend.
        cli: spell options the ``featurepipe`` CLI way (positional inputs,
            dashes); the Beam job uses ``--input`` and underscores, like Beam's
            examples. Both accept either spelling of the multi-word options.
            Defaults to `False`.
    """
    add_inputs(parser, cli=cli, what="input")
    opt = option_adder(parser, cli=cli)

    opt("output", required=True, help="output prefix: PREFIX-SSSSS-of-NNNNN.tfrecord[.gz]")
    opt(
        "format",
        choices=("csv", "jsonl", "parquet"),
        default=None,
        help="input format (default: from the file name)",
    )
    opt(
        "schema",
        default=None,
        help="schema JSON (featurepipe's format); default: infer it from every row",
    )
    opt(
        "num_shards",
        type=int,
        default=0,
        help="exactly this many output shards (default 0: by --shard_bytes)",
    )
    opt(
        "shard_bytes",
        type=int,
        default=256 << 20,
        help="target shard size in bytes when --num_shards is 0 (default 256 MiB)",
    )
    opt(
        "compression",
        choices=WRITE_COMPRESSIONS,
        default="none",
        help="output compression (default none)",
    )
    opt(
        "max_bad_fraction",
        type=float,
        default=None,
        help="fail (exit 1) when more than this fraction of rows is dead-lettered",
    )
    opt(
        "missing_values",
        default="",
        help="comma-separated texts that mean missing, besides the empty cell (e.g. NA,null)",
    )
    opt(
        "list_columns",
        default="",
        help="comma-separated CSV columns whose cells are lists (for schema inference)",
    )
    opt("value_separator", default="|", help="separator inside list cells (default '|')")
    opt("delimiter", default=",", help="CSV delimiter (default ','; use '\\t' for TSV)")
    opt("batch_size", type=int, default=4096, help="rows per Beam element (default 4096)")
    opt(
        "split_bytes",
        type=int,
        default=32 << 20,
        help="cut big uncompressed inputs into parts of this size for parallel reading "
        "(default 32 MiB; 0: one worker per file)",
    )


def run_with_args(
    args: argparse.Namespace, pipeline_args: list[str], *, quiet: bool = False
) -> dict[str, Any]:
    """Builds and runs the pipeline for parsed ``args``; returns the summary dict.

    Raises:
        featurepipe.errors.DataError: when the job fails on data, e.g. more bad
            rows than ``max_bad_fraction`` (the message names the counts).
        featurepipe.errors.ConfigError: for bad options.
    """
    import apache_beam as beam
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from featurepipe.beam import (
        BadFractionError,
        ConvertToExamples,
        ShardOptions,
        format_summary,
        read_summary,
    )
    from featurepipe.convert import ConvertOptions, ReadOptions
    from featurepipe.example import Schema

    schema = None
    if args.schema:
        with FileSystems.open(args.schema, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            schema = Schema.from_json(f.read().decode("utf-8"))
    inputs = args.input if isinstance(args.input, list) else [args.input]
    delimiter = "\t" if args.delimiter in ("\\t", "tab") else args.delimiter
    transform = ConvertToExamples(
        inputs,
        args.output,
        schema=schema,
        read_options=ReadOptions(
            format=args.format,
            delimiter=delimiter,
            batch_size=args.batch_size,
            split_bytes=args.split_bytes,
        ),
        convert_options=ConvertOptions(
            missing_values=("", *_split(args.missing_values)),
            list_columns=_split(args.list_columns),
            value_separator=args.value_separator,
        ),
        shard_options=ShardOptions(
            num_shards=args.num_shards,
            shard_bytes=args.shard_bytes,
            compression=args.compression,
            max_bad_fraction=args.max_bad_fraction,
        ),
    )
    options = PipelineOptions(pipeline_args)
    try:
        with beam.Pipeline(options=options) as p:
            _ = p | "Convert" >> transform
    except Exception as e:
        summary = _try_summary(read_summary, args.output)
        if (
            summary
            and summary.get("run_id") == transform.layout.run_id
            and (summary.get("status") == "failed")
        ):
            raise BadFractionError(
                f"{summary['rows_dead_lettered']} of {summary['rows_read']} rows were "
                f"dead-lettered, more than max_bad_fraction={args.max_bad_fraction}; no shards "
                f"were written. Dead letters: {', '.join(summary['dead_letter_files'])}",
                path=args.output,
                reason="max_bad_fraction",
            ) from e
        raise
    summary = read_summary(args.output)
    if not quiet:
        print(format_summary(summary), file=sys.stderr)
    return summary


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Parses ``argv`` (Beam options pass through) and runs the conversion.

    Args:
        argv: command-line arguments. Defaults to `sys.argv[1:]`.

    Returns:
        The summary written to ``PREFIX.summary.json``.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_arguments(parser)
    known, pipeline_args = parser.parse_known_args(argv)
    return run_with_args(known, pipeline_args)


def _split(text: str) -> tuple[str, ...]:
    return tuple(t for t in (text or "").split(",") if t)


def _try_summary(read: Any, prefix: str) -> dict[str, Any] | None:
    try:
        out: dict[str, Any] = read(prefix)
    except Exception:
        return None
    return out


if __name__ == "__main__":
    from featurepipe.errors import DataError

    try:
        run()
    except DataError as err:
        print(f"Error: {err}", file=sys.stderr)
        sys.exit(1)
