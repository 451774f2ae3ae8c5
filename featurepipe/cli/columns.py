"""``featurepipe columns suggest``: a starter column spec from the data, without hand-written JSON.

The rules are :mod:`featurepipe.analysis._suggest`'s; the spec is printed on
stdout (redirect it to a file) and one line per feature on stderr says what
was chosen and why. Needs only the core (no TensorFlow, no Beam).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from featurepipe.cli._common import EXIT_OK, add_read_compression, print_json, read_progress

__all__ = ["add_parser"]

_DESCRIPTION = """\
Suggest column specs from the statistics of TFRecord files of tf.Example (or
those `featurepipe analyze` wrote, --artifacts): the spec a practitioner would
start from, with every vocabulary, mean / variance and bucket boundary filled
in, so that `featurepipe train --spec columns.json` runs on it as is.

rules (D: distinct values of a feature):
  the label                            left out
  no values, or one value everywhere   left out
  id-like                              left out: bytes whose values all (or >= 90%)
                                       differ; int64 whose values all differ and are
                                       consecutive, or named id / *_id / index /
                                       Unnamed: N
  bytes, D <= 20                       vocabulary + indicator (one-hot)
  bytes, 20 < D <= 1,000               vocabulary + embedding
  bytes, D > 1,000 (or values unknown) hashed (power of 2 >= 2 D bins) + embedding
  embedding dimension                  ceil(6 * D ** 0.25), e.g. 1,000 -> 34
  numbers (int64, float)               z-score; bucketized at the 1st ... 99th
                                       percentiles when skewed: one tail (median to
                                       the 1st / 99th percentile) > 3x the other
  missing numbers                      the mean (z-score) or median (buckets)
  variable-length number lists         left out

The columns are written in the compact spelling, one object per column, e.g.
{"key": "cut", "type": "vocabulary", "vocabulary": [...], "as": "indicator",
 "why": "..."}; "why", "label" and "left_out" are comments the loader ignores.
Edit it freely: train and analyze read the compact and the full form.
"""

_EXAMPLE = """\
examples:
  featurepipe columns suggest 'out/train-*.tfrecord.gz' --label price > columns.json
  featurepipe columns suggest out/train@4.tfrecord.gz --label y --artifacts artifacts/ > c.json
  featurepipe train --data 'out/train-*' --spec columns.json --label price --task regression \\
      --output model/
"""


def add_parser(subparsers: Any) -> None:
    """Registers the ``columns`` verb and its ``suggest`` subcommand.

    Args:
        subparsers: the object ``add_subparsers()`` returned for ``featurepipe``.
    """
    p = subparsers.add_parser(
        "columns",
        help="column specs: suggest a starter spec from the data",
        description="Column specs for `featurepipe train` and `featurepipe analyze`.",
    )
    verbs = p.add_subparsers(dest="columns_verb", metavar="VERB")
    s = verbs.add_parser(
        "suggest",
        help="a starter column spec from the data's statistics (JSON on stdout)",
        description=_DESCRIPTION,
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("data", nargs="+", metavar="DATA", help="TFRecord files, globs or PREFIX@N")
    s.add_argument("--label", required=True, metavar="KEY", help="the label feature (left out)")
    s.add_argument(
        "--artifacts",
        metavar="DIR",
        help="`featurepipe analyze` output: use its statistics.json instead of reading DATA "
        "(its top values decide which vocabularies are known)",
    )
    add_read_compression(s)
    s.add_argument("--quiet", action="store_true", help="no explanation lines on stderr")
    s.set_defaults(func=_suggest)
    p.set_defaults(_parser=p)  # `featurepipe columns` alone shows its help


def _suggest(args: argparse.Namespace) -> int:
    from featurepipe.analysis import (
        MAX_VOCABULARY,
        StatsOptions,
        compute_statistics,
        load_statistics,
        suggest_columns,
    )
    from featurepipe.errors import ConfigError
    from featurepipe.tfrecord import expand_paths

    paths = expand_paths(args.data)
    stats: Any
    if args.artifacts is not None:
        path = os.path.join(args.artifacts, "statistics.json")
        if not os.path.exists(path):
            raise ConfigError(
                f"No statistics.json in {args.artifacts}: pass the output directory of "
                "`featurepipe analyze`, or leave out --artifacts to read DATA."
            )
        stats = load_statistics(path)
    else:
        # Top values up to MAX_VOCABULARY: a vocabulary of that size is written out whole.
        options = StatsOptions(top_k=MAX_VOCABULARY)
        with read_progress("stats", paths) as progress:
            stats = compute_statistics(
                paths, options=options, compression=args.compression, progress=progress
            )
    suggestion = suggest_columns(stats, args.label)
    print_json(suggestion.to_json())
    if not args.quiet:
        print(
            f"{len(suggestion.columns)} column(s) from {suggestion.num_examples:,} examples; "
            f"{len(suggestion.left_out)} feature(s) left out:",
            file=sys.stderr,
        )
        for line in suggestion.lines():
            print(f"  {line}", file=sys.stderr)
    return EXIT_OK
