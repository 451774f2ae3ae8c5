"""``featurepipe inspect stats``: statistics of every feature, as text, JSON or an HTML report.

Registered under ``featurepipe inspect`` by `featurepipe.cli.inspect`. Needs
only the core (numpy is imported when the command runs, not at start-up).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from featurepipe.cli._common import (
    EXIT_OK,
    add_read_compression,
    fraction,
    positive_int,
    print_json,
    read_progress,
)

__all__ = ["add_parser"]

_DESCRIPTION = """\
Compute statistics of every feature of the tf.Examples in TFRecord files,
without TensorFlow: presence and missing rate, values per example, distinct
values (estimate, capped at the number of values; "unique (row id?)" when every
value appears once), and for numbers mean, std, min, max, quantiles, NaN / inf
counts and a histogram; for bytes the top values and their lengths.
--html writes one self-contained HTML report (no network needed to view it).
"""

_EXAMPLE = """\
examples:
  featurepipe inspect stats data/train-*.tfrecord.gz
  featurepipe inspect stats data/*.tfrecord --json > stats.json
  featurepipe inspect stats data/*.tfrecord --html report.html
"""


def add_parser(subparsers: Any) -> None:
    """Registers the ``stats`` verb on the ``inspect`` subparsers.

    Args:
        subparsers: the object ``add_subparsers()`` returned for ``inspect``.
    """
    p = subparsers.add_parser(
        "stats",
        help="statistics of every feature (text, --json, --html report)",
        description=_DESCRIPTION,
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, globs or PREFIX@N")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.add_argument("--html", metavar="REPORT.html", help="also write an HTML report here")
    add_read_compression(p)
    p.add_argument(
        "--top-k", type=positive_int, default=20, help="top values kept per feature (default 20)"
    )
    p.add_argument(
        "--bins", type=positive_int, default=20, help="histogram bins per feature (default 20)"
    )
    p.add_argument(
        "--eps",
        type=fraction,
        default=0.01,
        help="rank error of quantiles and histograms, in (0, 1) (default 0.01)",
    )
    p.set_defaults(func=_stats)


def _stats(args: argparse.Namespace) -> int:
    from featurepipe.analysis import StatsOptions, compute_statistics
    from featurepipe.tfrecord import expand_paths

    paths = expand_paths(args.paths)
    options = StatsOptions(eps=args.eps, num_histogram_bins=args.bins, top_k=args.top_k)
    with read_progress("stats", paths) as progress:
        stats = compute_statistics(
            paths, options=options, compression=args.compression, progress=progress
        )
    if args.html:
        from featurepipe.analysis import write_html

        write_html(stats, args.html)
    if args.json:
        print_json(stats.to_json())
    else:
        _print_text(stats)
        if args.html:
            print(f"\nHTML report: {args.html}", file=sys.stderr)
    return EXIT_OK


def _print_text(stats: Any) -> None:
    print(f"{stats.num_examples:,} examples, {len(stats.features)} features")
    if not stats.features:
        return
    width = max(len(f.name) for f in stats.features)
    print(
        f"{'feature':<{width}}  {'kind':<6} {'missing':>8} {'vals/ex':>8} {'distinct':>9}  summary"
    )
    for f in stats.features:
        kind = f.kind or "none"
        summary = ""
        if f.numeric is not None:
            m = f.numeric.moments
            median = dict(f.numeric.quantiles).get(0.5, float("nan"))
            summary = (
                f"mean {m.mean:.6g}  std {m.std:.6g}  min {m.min:.6g}  median {median:.6g}  "
                f"max {m.max:.6g}"
            )
            if m.num_nan or m.num_inf:
                summary += f"  nan {m.num_nan}  inf {m.num_inf}"
        if f.bytes is not None:
            top = ", ".join(f"{_short(v)} ({c:,})" for v, c in f.bytes.top_values[:3])
            summary = (summary + "  " if summary else "") + f"top {top}"
        if f.is_unique:
            summary = "unique (row id?)" + ("  " + summary if summary else "")
        print(
            f"{f.name:<{width}}  {kind:<6} {f.missing_rate:>8.1%} {f.value_counts.mean:>8.3g} "
            f"{f.distinct:>9,}  {summary}"
        )


def _short(v: bytes, limit: int = 24) -> str:
    try:
        text = repr(v.decode("utf-8"))
    except UnicodeDecodeError:
        import base64

        text = f"b64:{base64.b64encode(v).decode()}"
    return text if len(text) <= limit else text[: limit - 1] + "…"
