"""``featurepipe inspect validate`` and ``featurepipe inspect compare``.

``validate`` checks data (TFRecord files of tf.Example, or a statistics file
saved from ``inspect stats --json``) against a schema with constraints and
lists the anomalies under TensorFlow Data Validation's names. ``compare``
measures training / serving skew or drift between two datasets (L-infinity
distance for bytes features, Jensen-Shannon divergence for numbers).

Registered under ``featurepipe inspect`` by `featurepipe.cli.inspect`. Only
the standard library is imported at start-up; numpy and the readers load when
a verb runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from featurepipe.cli._common import (
    EXIT_DATA,
    EXIT_OK,
    Progress,
    add_read_compression,
    print_json,
    read_progress,
)

__all__ = ["add_parser"]

_VALIDATE_DESCRIPTION = """\
Check the tf.Examples in TFRecord files against a schema and its constraints
(`featurepipe inspect schema --json --with-domains` proposes one to edit), and
list every anomaly with TensorFlow Data Validation's type name, the feature, a
one-line description, its severity and counts: SCHEMA_MISSING_COLUMN,
SCHEMA_NEW_COLUMN, UNEXPECTED_DATA_TYPE, FEATURE_TYPE_LOW_FRACTION_PRESENT,
FEATURE_TYPE_LOW_NUMBER_PRESENT, FEATURE_TYPE_LOW_NUMBER_VALUES,
FEATURE_TYPE_HIGH_NUMBER_VALUES, ENUM_TYPE_UNEXPECTED_STRING_VALUES,
INT_TYPE_SMALL_INT, INT_TYPE_BIG_INT, FLOAT_TYPE_SMALL_FLOAT, FLOAT_TYPE_BIG_FLOAT.

DATA may also be one statistics file saved from `inspect stats --json`: then
no data is read (counts of out-of-range numbers are unknown, and counts of
unexpected strings come from its top values).

Exit status: 0 no anomaly, 1 anomalies (or damaged data), 2 usage error.
"""

_VALIDATE_EXAMPLE = """\
examples:
  featurepipe inspect schema train/*.tfrecord --json --with-domains > schema.json
  featurepipe inspect validate serving/*.tfrecord --schema schema.json
  featurepipe inspect validate stats.json --schema schema.json --json
"""

_COMPARE_DESCRIPTION = """\
Compare two datasets feature by feature: the L-infinity distance of the value
frequencies of bytes features and the Jensen-Shannon divergence (log base 2)
of the histograms of numeric features on common bin edges, the change in
missing fraction, and values new in CURRENT or vanished from it. Features over
their threshold (the schema's skew_threshold, or drift_threshold with --mode
drift, else --threshold) are flagged as COMPARATOR_L_INFTY_HIGH or
COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH. --html writes a self-contained
report with both datasets side by side per feature.

BASELINE and CURRENT are each a file, a glob (quoted) or PREFIX@N of TFRecord
files, or a statistics file saved from `inspect stats --json` (use
`--top-k 1000` there for the same value lists as when reading data).

Exit status: 0 nothing flagged, 1 a feature over its threshold, 2 usage error.
"""

_COMPARE_EXAMPLE = """\
examples:
  featurepipe inspect compare 'train/*.tfrecord' 'serving/*.tfrecord' --threshold 0.1
  featurepipe inspect compare day1-stats.json 'day2/*.tfrecord' --mode drift \\
      --schema schema.json --html drift.html
"""

def add_parser(subparsers: Any) -> None:
    """Registers the ``validate`` and ``compare`` verbs on the ``inspect`` subparsers.

    Args:
        subparsers: the object ``add_subparsers()`` returned for ``inspect``.
    """
    v = subparsers.add_parser(
        "validate",
        help="anomalies against a schema (TFDV's anomaly types); exit 1 on any",
        description=_VALIDATE_DESCRIPTION,
        epilog=_VALIDATE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument(
        "paths", nargs="+", metavar="DATA", help="TFRecord files, globs, PREFIX@N, or stats.json"
    )
    v.add_argument("--schema", required=True, metavar="SCHEMA.json", help="the schema")
    v.add_argument("--json", action="store_true", help="print the anomalies as JSON")
    v.add_argument("--html", metavar="REPORT.html", help="also write an HTML report here")
    add_read_compression(v)
    v.set_defaults(func=_validate)

    c = subparsers.add_parser(
        "compare",
        help="skew / drift between two datasets (L-infinity, Jensen-Shannon)",
        description=_COMPARE_DESCRIPTION,
        epilog=_COMPARE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("baseline", metavar="BASELINE", help="TFRecord files or stats.json")
    c.add_argument("current", metavar="CURRENT", help="TFRecord files or stats.json")
    c.add_argument("--schema", metavar="SCHEMA.json", help="a schema with per-feature thresholds")
    c.add_argument(
        "--mode", choices=("skew", "drift"), default="skew",
        help="which schema threshold applies: skew_threshold (training vs serving, the "
        "default) or drift_threshold (consecutive spans)",
    )
    c.add_argument(
        "--threshold", type=_non_negative_float, default=None,
        help="threshold of features without one in the schema (default: none, not flagged)",
    )
    c.add_argument("--json", action="store_true", help="print the comparison as JSON")
    c.add_argument("--html", metavar="REPORT.html", help="also write an HTML report here")
    add_read_compression(c)
    c.set_defaults(func=_compare)


# --------------------------------------------------------------------------- validate


def _validate(args: argparse.Namespace) -> int:
    from featurepipe.analysis import (
        ValidationResult,
        is_statistics_file,
        load_statistics,
        validate_data,
        validate_statistics,
    )
    from featurepipe.example import Schema
    from featurepipe.tfrecord import expand_paths

    schema = Schema.load(args.schema)
    if len(args.paths) == 1 and os.path.isfile(args.paths[0]) and is_statistics_file(
        args.paths[0]
    ):
        doc = load_statistics(args.paths[0])
        result = ValidationResult(doc, validate_statistics(doc, schema))
    else:
        paths = expand_paths(args.paths)
        with read_progress("validate", paths) as progress:
            result = validate_data(paths, schema, compression=args.compression, progress=progress)
    if args.html:
        from featurepipe.analysis import write_html

        write_html(
            result.statistics,
            args.html,
            title="featurepipe validation",
            anomalies=[a.to_json() for a in result.anomalies],
        )
    if args.json:
        print_json(result.to_json())
    else:
        _print_anomalies(result, len(schema))
        if args.html:
            print(f"\nHTML report: {args.html}", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_DATA


def _print_anomalies(result: Any, num_features: int) -> None:
    n = int(result.statistics.get("num_examples", 0))
    if result.ok:
        print(f"{n:,} examples: no anomalies ({num_features} schema features checked)")
        return
    k = len(result.anomalies)
    print(f"{n:,} examples: {k} {'anomaly' if k == 1 else 'anomalies'}")
    rows = [("feature", "anomaly", "severity", "count", "description")]
    for a in result.anomalies:
        count = "?" if a.count is None else f"{'>=' if a.approximate else ''}{a.count:,}"
        rows.append((a.feature, a.type, a.severity, count, a.description))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r[:4], widths, strict=True)) + "  " + r[4])


# --------------------------------------------------------------------------- compare


def _compare(args: argparse.Namespace) -> int:
    from featurepipe.analysis import compare_statistics
    from featurepipe.example import Schema

    schema = Schema.load(args.schema) if args.schema else None
    if _is_stats(args.baseline) or _is_stats(args.current):
        # a statistics file holds histograms only: numbers are rebinned as TFDV does
        base = _statistics(args.baseline, args.compression, "baseline")
        cur = _statistics(args.current, args.compression, "current")
        result = compare_statistics(
            base, cur, schema=schema, mode=args.mode, threshold=args.threshold
        )
    else:
        result = _compare_data(args, schema)
    if args.html:
        from featurepipe.analysis import write_compare_html

        write_compare_html(result, args.html)
    if args.json:
        print_json(result.to_json())
    else:
        _print_comparison(result)
        if args.html:
            print(f"\nHTML report: {args.html}", file=sys.stderr)
    return EXIT_DATA if result.anomalies else EXIT_OK


def _is_stats(arg: str) -> bool:
    from featurepipe.analysis import is_statistics_file

    return os.path.isfile(arg) and is_statistics_file(arg)


def _compare_data(args: argparse.Namespace, schema: Any) -> Any:
    from featurepipe.analysis import compare_data
    from featurepipe.tfrecord import expand_paths

    base, cur = expand_paths([args.baseline]), expand_paths([args.current])
    total = {
        "baseline": sum(os.path.getsize(p) for p in base),
        "current": sum(os.path.getsize(p) for p in cur),
    }
    bars: dict[str, Progress] = {}

    def progress(side: str, records: int, nbytes: int) -> None:
        if side not in bars:
            for bar in bars.values():
                bar.close()
            bars[side] = Progress(side, total[side])
        bars[side].add_records(records, nbytes)

    try:
        return compare_data(
            base,
            cur,
            schema=schema,
            mode=args.mode,
            threshold=args.threshold,
            compression=args.compression,
            progress=progress,
        )
    finally:
        for bar in bars.values():
            bar.close()


def _statistics(arg: str, compression: str, label: str) -> Any:
    from featurepipe.analysis import (
        VALIDATION_TOP_K,
        StatsOptions,
        compute_statistics,
        is_statistics_file,
        load_statistics,
    )
    from featurepipe.tfrecord import expand_paths

    if os.path.isfile(arg) and is_statistics_file(arg):
        return load_statistics(arg)
    paths = expand_paths([arg])
    with read_progress(label, paths) as progress:
        return compute_statistics(
            paths,
            options=StatsOptions(top_k=VALIDATION_TOP_K),
            compression=compression,
            progress=progress,
        ).to_json()


def _print_comparison(result: Any) -> None:
    nb = int(result.baseline.get("num_examples", 0))
    nc = int(result.current.get("num_examples", 0))
    k = len(result.anomalies)
    print(
        f"{result.mode}: baseline {nb:,} examples, current {nc:,} examples; "
        f"{k} {'feature' if k == 1 else 'features'} over the threshold"
    )
    rows = [("", "feature", "kind", "metric", "distance", "threshold", "missing", "new/vanished")]
    for f in result.features:
        if f.status != "both":
            dist = f.status.replace("_", " ")
        else:
            dist = "-" if f.distance is None else f"{f.distance:.4g}"
        missing = f"{_pct(f.baseline_missing_rate)} -> {_pct(f.current_missing_rate)}"
        nv = "-" if f.new_values is None else str(len(f.new_values))
        vv = "-" if f.vanished_values is None else str(len(f.vanished_values))
        rows.append(
            (
                "!" if f.flagged else "",
                f.name,
                f.kind or "none",
                {"linf": "L-inf", "jensen_shannon": "JS"}.get(f.metric or "", "-"),
                dist,
                "-" if f.threshold is None else f"{f.threshold:g}",
                missing,
                f"{nv}/{vv}" if f.metric == "linf" else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _non_negative_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not x >= 0.0:
        raise argparse.ArgumentTypeError(f"{x} is not >= 0")
    return x
