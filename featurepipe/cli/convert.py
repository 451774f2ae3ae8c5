"""``featurepipe convert``: CSV / JSON lines / Parquet -> sharded tf.Example TFRecords.

The command runs the Beam job `featurepipe.beam.run_convert` (the one behind
``python -m pipelines.convert``; Beam is imported only when the command
runs). Beam pipeline options go in ``--beam-options`` as one quoted string,
or use the shortcuts ``--runner``, ``--direct-running-mode`` and
``--direct-num-workers``.
"""

from __future__ import annotations

import argparse
from typing import Any

from featurepipe.cli._common import (
    EXIT_DATA,
    EXIT_OK,
    add_beam_arguments,
    beam_arguments,
    print_json,
)

__all__ = ["add_parser"]

_DESCRIPTION = """\
Convert raw tabular files into sharded TFRecord files of tf.Example, on Apache
Beam (the DirectRunner here; Dataflow, Flink or Spark with Beam options).
Rows that do not fit the schema are not dropped: they go to
PREFIX.deadletter-*.jsonl with their file, line (or row), column and a reason.
Also written: PREFIX.schema.json (given or inferred from every row) and, last,
PREFIX.summary.json with the counts (read = written + dead-lettered).
"""

_EXAMPLE = """\
examples:
  featurepipe convert data/*.csv --output out/train --num-shards 4
  featurepipe convert day_*.jsonl.gz --output out/day --compression gzip --max-bad-fraction 0.01
  featurepipe convert rows.parquet --output out/p --schema schema.json \\
      --direct-running-mode multi_processing --direct-num-workers 2
  featurepipe convert gs://b/raw/*.csv --output gs://b/tfr/train --runner DataflowRunner \\
      --beam-options "--project P --region R --temp_location gs://b/tmp --setup_file ./setup.py"
"""


def add_parser(subparsers: Any) -> None:
    """Registers the ``convert`` verb.

    Args:
        subparsers: the object ``add_subparsers()`` returned for ``featurepipe``.
    """
    from featurepipe.beam import add_convert_arguments

    p = subparsers.add_parser(
        "convert",
        help="CSV / JSON lines / Parquet -> sharded tf.Example TFRecords (Beam)",
        description=_DESCRIPTION,
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_convert_arguments(p, cli=True)
    add_beam_arguments(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from featurepipe.beam import run_convert

    beam_args = beam_arguments(args)
    summary = run_convert(args, beam_args, quiet=args.json)
    if args.json:
        print_json(summary)
    return EXIT_OK if summary.get("status") == "ok" else EXIT_DATA
