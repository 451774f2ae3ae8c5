"""A Beam job: vocabularies, quantile boundaries, moments and statistics of TFRecord shards.

Run it like Beam's own examples (``apache_beam/examples/wordcount.py``)::

    python -m pipelines.analyze --input 'out/train-*.tfrecord.gz' --spec specs.json \\
        --output artifacts/ --runner DirectRunner \\
        --direct_running_mode multi_processing --direct_num_workers 2

``--spec`` is featurepipe column specs JSON (the unresolved columns say what to
compute) or an analysis spec ``{"format_version": 1, "analyzers": [{"analyzer":
"vocabulary", "key": "city", "top_k": 1000}, {"analyzer": "quantiles", "key":
"price", "num_bins": 10}, {"analyzer": "moments", "key": "age"}]}``. Options
this module does not know (``--runner``, ``--project``, ...) are Beam pipeline
options. The output directory gets ``analysis.json`` (written last),
``statistics.json`` and one ``vocab-NNN-KEY.txt`` (+ ``.freq.txt``) per
vocabulary; see `featurepipe.analysis._artifacts`.

Beam is imported inside :func:`run_with_args`, so :func:`add_arguments` can build
the ``featurepipe analyze`` command line without loading Beam.
"""

from __future__ import annotations

import argparse
from typing import Any

from featurepipe.cli._common import READ_COMPRESSIONS
from pipelines._args import add_inputs, option_adder

__all__ = ["add_arguments", "read_spec", "run", "run_with_args"]


def add_arguments(parser: argparse.ArgumentParser, *, cli: bool = False) -> None:
    """Adds the analysis options to ``parser``.

    Args:
        parser: the parser to extend.
        cli: spell options the ``featurepipe`` CLI way (positional inputs,
            dashes); the Beam job uses ``--input`` and underscores. Both accept
            either spelling of multi-word options. Defaults to `False`.
    """
    add_inputs(parser, cli=cli, what="TFRecord")
    opt = option_adder(parser, cli=cli)

    opt("spec", required=True, help="column specs JSON or analysis spec JSON (what to compute)")
    opt("output", required=True, help="the artifact directory")
    opt("eps", type=float, default=0.01, help="rank error of quantile boundaries (default 0.01)")
    opt("batch_size", type=int, default=1024, help="records per Beam element (default 1024)")
    opt(
        "compression",
        choices=READ_COMPRESSIONS,
        default="auto",
        help="input compression (default: detect from the first bytes)",
    )
    opt("no_statistics", action="store_true", help="skip statistics.json")


def read_spec(path: str, *, beam_filesystems: bool = True) -> list[Any]:
    """Reads the analyzer requests of a spec file.

    Args:
        path: the spec file.
        beam_filesystems: open it through Beam's FileSystems (``gs://`` ...)
            when Beam is installed; else a local file. Defaults to `True`.

    Returns:
        The `featurepipe.analysis.AnalyzerRequest` list.

    Raises:
        featurepipe.errors.ConfigError: a missing file or an invalid spec.
    """
    from featurepipe.analysis import load_requests
    from featurepipe.errors import ConfigError

    if beam_filesystems:
        try:
            from apache_beam.io.filesystem import CompressionTypes
            from apache_beam.io.filesystems import FileSystems
        except ImportError:
            beam_filesystems = False
    try:
        if beam_filesystems:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                return load_requests(f.read().decode("utf-8"))
        with open(path, encoding="utf-8") as f:
            return load_requests(f.read())
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"Cannot read the analysis spec. Received: spec={path!r} ({e})") from e


def run_with_args(args: argparse.Namespace, pipeline_args: list[str]) -> str:
    """Builds and runs the pipeline for parsed ``args``.

    Returns:
        The path of the written ``analysis.json``.

    Raises:
        featurepipe.errors.ConfigError: bad options or spec.
        featurepipe.errors.DataError: damaged input or a feature of the wrong kind.
    """
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from featurepipe.beam import AnalyzeDataset

    requests = read_spec(args.spec)
    inputs = args.input if isinstance(args.input, list) else [args.input]
    transform = AnalyzeDataset(
        inputs,
        requests,
        args.output,
        eps=args.eps,
        batch_size=args.batch_size,
        statistics=not args.no_statistics,
        compression=args.compression,
    )
    with beam.Pipeline(options=PipelineOptions(pipeline_args)) as p:
        _ = p | "Analyze" >> transform
    return str(FileSystems.join(args.output, "analysis.json"))


def run(argv: list[str] | None = None) -> str:
    """Parses ``argv`` (Beam options pass through) and runs the analysis.

    Args:
        argv: command-line arguments. Defaults to `sys.argv[1:]`.

    Returns:
        The path of the written ``analysis.json``.
    """
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    add_arguments(parser)
    known, pipeline_args = parser.parse_known_args(argv)
    return run_with_args(known, pipeline_args)


if __name__ == "__main__":
    import logging

    logging.getLogger().setLevel(logging.INFO)
    run()
