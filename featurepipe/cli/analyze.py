"""``featurepipe analyze``: vocabularies, quantile boundaries and moments of TFRecord shards.

Runs the Beam job `featurepipe.beam.run_analyze` (the one behind ``python -m
pipelines.analyze``; Beam is imported only when the command runs), or with
``--local`` the same analysis in this process without Beam. Both write the
same artifact directory (see `featurepipe.analysis.Analysis`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from featurepipe.cli._common import EXIT_OK, add_beam_arguments, beam_arguments, print_json

__all__ = ["add_parser"]

_DESCRIPTION = """\
Compute what column specs need from the data — vocabularies (top_k,
min_frequency, with frequencies), quantile bucket boundaries (num_bins) and
moments (mean, variance, min, max) — plus statistics of every feature, on
Apache Beam (the DirectRunner here; Dataflow, Flink or Spark with Beam
options) or, with --local, in this process. Writes DIR/analysis.json (last),
DIR/statistics.json and one DIR/vocab-NNN-KEY.txt (+ .freq.txt) per vocabulary.
--spec is featurepipe column specs JSON, or {"format_version": 1, "analyzers":
[{"analyzer": "vocabulary", "key": "city", "top_k": 1000}, ...]}.
"""

_EXAMPLE = """\
examples:
  featurepipe analyze 'out/train-*.tfrecord.gz' --spec specs.json --output artifacts/
  featurepipe analyze 'out/train-*' --spec specs.json --output artifacts/ --local
  featurepipe analyze 'out/train-*' --spec specs.json --output artifacts/ \\
      --direct-running-mode multi_processing --direct-num-workers 2
  featurepipe analyze 'gs://b/tfr/train-*' --spec specs.json --output gs://b/artifacts \\
      --runner DataflowRunner --beam-options "--project P --region R --temp_location gs://b/tmp"
"""


def add_parser(subparsers: Any) -> None:
    """Registers the ``analyze`` verb.

    Args:
        subparsers: the object ``add_subparsers()`` returned for ``featurepipe``.
    """
    from featurepipe.beam import add_analyze_arguments

    p = subparsers.add_parser(
        "analyze",
        help="vocabularies, quantile boundaries, moments of TFRecords (Beam or --local)",
        description=_DESCRIPTION,
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_analyze_arguments(p, cli=True)
    p.add_argument(
        "--local", action="store_true", help="run in this process, without Beam (data that fits)"
    )
    add_beam_arguments(p)
    p.add_argument("--json", action="store_true", help="print analysis.json on stdout")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from featurepipe.analysis import ANALYSIS_FILE, analyze_records
    from featurepipe.beam import read_analysis_spec
    from featurepipe.errors import ConfigError

    if not 0.0 < args.eps < 1.0:
        raise ConfigError(f"`--eps` must be in the open interval (0, 1). Received: eps={args.eps}")
    if args.local:
        import os

        requests = read_analysis_spec(args.spec, beam_filesystems=False)
        result = analyze_records(
            args.input,
            requests,
            eps=args.eps,
            batch_size=max(args.batch_size, 1),
            statistics=not args.no_statistics,
            compression=args.compression,
        )
        result.save(args.output)
        written = os.path.join(args.output, ANALYSIS_FILE)
    else:
        from featurepipe.beam import run_analyze

        beam_args = beam_arguments(args)
        written = run_analyze(args, beam_args)
    if args.json:
        print_json(_read_json(written, beam_filesystems=not args.local))
    else:
        print(f"wrote {written}", file=sys.stderr)
    return EXIT_OK


def _read_json(path: str, *, beam_filesystems: bool) -> Any:
    import json

    if not beam_filesystems:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return json.loads(f.read().decode("utf-8"))
