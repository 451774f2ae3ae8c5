"""``featurepipe migrate``: move a trained ``tf.estimator`` model to featurepipe.

``migrate columns`` converts the Estimator's ``tf.feature_column`` code to a
``columns.json``; ``migrate check`` proves on your TFRecords that featurepipe
computes the same ids and values as ``tf.feature_column`` (and, later, that the
migrated model gives the old SavedModel's outputs). TensorFlow is imported only
when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from featurepipe.cli._common import (
    EXIT_DATA,
    EXIT_OK,
    add_read_compression,
    non_negative_int,
    positive_int,
    print_json,
)
from featurepipe.cli.migrate_estimator import add_estimator_parser

__all__ = ["add_parser"]

_DESCRIPTION = """\
Migrate a trained tf.estimator model to featurepipe and Keras 3.

  columns    the Estimator's tf.feature_column code -> columns.json
  check      on your TFRecords, tf.feature_column's ids and values == featurepipe's
  estimator  the trained checkpoint -> Keras model with its weights, serving
             export with the Estimator's signatures, migration.json
"""

_COLUMNS_DESCRIPTION = """\
Convert the Estimator's tf.feature_column columns to featurepipe column specs
(columns.json) that compute the same ids and values, under the same names.

COLUMNS is FILE.py:NAME (or module.name:NAME): a function (or a variable) that
returns the columns the Estimator was built with -- a list, or for a
DNNLinearCombined* Estimator a dict {"linear": [...], "dnn": [...]} (its
linear_feature_columns and dnn_feature_columns). The file is imported with
TensorFlow (tf.feature_column is still in TF 2.21); relative vocabulary file
paths are opened from the working directory, as TensorFlow does (--base-dir to
change that).

columns.json holds every column once ("columns", what `featurepipe train
--spec` and the Keras models read) and, for a dict, "parts": the names in the
linear and in the dnn list (featurepipe.migrate.MigratedColumns.load(path).linear
/ .dnn give them as ColumnSpecs).

Refused, with the column's name: numeric columns with a normalizer_fn,
sequence columns, tfrecord_gzip vocabulary files, crossed weighted columns,
embedding initializers without a Keras counterpart (--unknown-initializer
default uses TF's default instead).
"""

_COLUMNS_EXAMPLE = """\
examples:
  featurepipe migrate columns my_columns.py:build_columns --output columns.json
  featurepipe migrate columns trainer/features.py:wide_and_deep_columns --output columns.json \\
      --vocabulary-files keep --base-dir trainer/
"""

_CHECK_DESCRIPTION = """\
Check, on your TFRecords of tf.Example, that featurepipe's columns compute what
the Estimator's tf.feature_column columns compute, column by column: each
categorical column's ids (and a weighted column's weights), each numeric
column's values, each indicator column's vector. Embedding columns are compared
on the ids they look up. TensorFlow's side is tf.io.parse_example with the
columns' parse spec and the columns' own transformations; featurepipe's side is
the specs of --spec (default: COLUMNS converted now) on the same records, by
each of featurepipe's implementations (--engines): numpy (the reference),
plan (the C pass `make_dataset` runs when the columns allow it) and keras (the
TF ops of `make_dataset` and of the serving signature); the last two give what
the model reads, ids padded with -1, so -1 ids are left out of their
comparison (models ignore them, as TF's lookups do).

Ids must be equal; floats may differ by TOLERANCE * max(1, |value|). Prints per
column the rows compared, the rows that differ and the first differing rows
with both values (--json: the same as JSON, with a "columns" section and an
"outputs" section for the model-output comparison).

Exit status: 0 every column is faithful, 1 a column differs (or the data cannot
be read), 2 a usage error or a column featurepipe cannot convert.

With --saved-model OLD --migrated NEW it also feeds the same records to every
signature of both SavedModels (the Estimator's export, and the migrated
model's: its export directory, or the OUTPUT of `migrate estimator`) and
compares signature names, input and output keys, dtypes and shapes, and the
values per output key: the rows that differ, the largest absolute difference
and the rows where it is largest (file, record, byte offset). --columns may then
be left out to compare the models alone.
"""

_CHECK_EXAMPLE = """\
examples:
  featurepipe migrate check --columns my_columns.py:build_columns --data 'eval-*.tfrecord'
  featurepipe migrate check --columns my_columns.py:build_columns --spec columns.json \\
      --data 'eval-*.tfrecord.gz' --max-rows 100000 --tolerance 1e-6 --json > check.json
  featurepipe migrate check --saved-model old_model/export/1700000000 --migrated migrated/ \
      --data 'eval-*.tfrecord'
"""


def add_parser(subparsers: Any) -> None:
    """Registers the ``migrate`` verb and its subcommands.

    Args:
        subparsers: the object ``add_subparsers()`` returned for ``featurepipe``.
    """
    p = subparsers.add_parser(
        "migrate",
        help="migrate a tf.estimator model: columns, check, estimator",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = p.add_subparsers(dest="migrate_verb", metavar="VERB")

    c = verbs.add_parser(
        "columns",
        help="tf.feature_column code -> columns.json",
        description=_COLUMNS_DESCRIPTION,
        epilog=_COLUMNS_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("columns", metavar="COLUMNS", help="FILE.py:NAME returning the columns")
    c.add_argument("--output", required=True, metavar="COLUMNS.json", help="where to write")
    _add_conversion_arguments(c)
    c.add_argument("--quiet", action="store_true", help="no summary on stderr")
    c.set_defaults(func=_columns)

    k = verbs.add_parser(
        "check",
        help="tf.feature_column's ids and values == featurepipe's, on your data",
        description=_CHECK_DESCRIPTION,
        epilog=_CHECK_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    k.add_argument(
        "--columns",
        metavar="FILE.py:NAME",
        help="the Estimator's columns (required unless --saved-model and --migrated are given)",
    )
    k.add_argument(
        "--data",
        required=True,
        action="append",
        metavar="PATTERN",
        help="TFRecord files of tf.Example (glob or PREFIX@N; repeat for more)",
    )
    k.add_argument(
        "--spec",
        metavar="COLUMNS.json",
        help="the featurepipe columns to check (default: COLUMNS converted now)",
    )
    k.add_argument(
        "--tolerance",
        type=float,
        default=1e-5,
        help="float values may differ by TOLERANCE * max(1, |value|) (default 1e-5); "
        "ids must be equal",
    )
    k.add_argument("--max-rows", type=positive_int, default=None, help="read at most N rows")
    k.add_argument("--batch-size", type=positive_int, default=512, help="default 512")
    k.add_argument(
        "--examples",
        type=non_negative_int,
        default=5,
        metavar="N",
        help="differing rows shown per column (default 5)",
    )
    add_read_compression(k)
    k.add_argument(
        "--base-dir",
        metavar="DIR",
        help="where relative vocabulary file paths start (default: the working directory)",
    )
    k.add_argument(
        "--engines",
        default="numpy,plan,keras",
        metavar="E,E,...",
        help="featurepipe implementations compared with TensorFlow (default all: numpy, the "
        "reference; plan, the C pass of make_dataset; keras, its TF ops and the serving "
        "signature's)",
    )
    k.add_argument(
        "--saved-model",
        metavar="OLD",
        help="the Estimator's SavedModel (a directory with saved_model.pb, or its export/ "
        "folder: the newest timestamp)",
    )
    k.add_argument(
        "--migrated",
        metavar="NEW",
        help="the migrated model's SavedModel, or the OUTPUT directory of `migrate estimator`",
    )
    k.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    k.set_defaults(func=_check)
    add_estimator_parser(verbs)
    p.set_defaults(_parser=p)  # `featurepipe migrate` alone shows its help


def _add_conversion_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--vocabulary-files",
        choices=("inline", "keep"),
        default="inline",
        help="inline: copy each vocabulary file's entries into columns.json (default); "
        "keep: keep the paths",
    )
    p.add_argument(
        "--base-dir",
        metavar="DIR",
        help="where relative vocabulary file paths start (default: the working directory, "
        "as in TensorFlow)",
    )
    p.add_argument(
        "--unknown-initializer",
        choices=("error", "default"),
        default="error",
        help="an embedding initializer without a Keras counterpart: refuse it (default) or "
        "use TF's default truncated normal",
    )


def _quiet_tensorflow() -> None:
    import logging
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # tf.feature_column's functions each log a deprecation warning.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _columns(args: argparse.Namespace) -> int:
    import warnings

    _quiet_tensorflow()
    from featurepipe.migrate import (
        MigrationWarning,
        load_feature_columns,
        migrate_feature_columns,
    )

    raw = load_feature_columns(args.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MigrationWarning)  # printed below as notes
        migrated = migrate_feature_columns(
            raw,
            vocabulary_files=args.vocabulary_files,
            base_dir=args.base_dir,
            unknown_initializer=args.unknown_initializer,
        )
    migrated.save(args.output)
    if not args.quiet:
        print(f"{len(migrated.columns)} column(s) from {args.columns}:", file=sys.stderr)
        for spec in migrated.columns:
            print(f"  {spec.name}: {type(spec).__name__}", file=sys.stderr)
        if migrated.parts is not None:
            for part, names in migrated.parts.items():
                print(f"  {part} part: {', '.join(names) or '(none)'}", file=sys.stderr)
        for note in migrated.notes:
            print(f"Note: {note}", file=sys.stderr)
        print(f"wrote {args.output}", file=sys.stderr)
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    import warnings

    from featurepipe.errors import ConfigError

    models = (args.saved_model, args.migrated)
    if (models[0] is None) != (models[1] is None):
        raise ConfigError(
            "Give both --saved-model OLD (the Estimator's export) and --migrated NEW (the "
            "migrated model's export) to compare model outputs, or neither."
        )
    if args.columns is None and models[0] is None:
        raise ConfigError(
            "Nothing to check: give --columns FILE.py:NAME (the column check) and/or "
            "--saved-model OLD --migrated NEW (the model-output check)."
        )
    if not args.tolerance >= 0:
        raise ConfigError(f"`--tolerance` must be >= 0. Received: --tolerance={args.tolerance}")
    _quiet_tensorflow()
    from featurepipe.migrate import (
        CheckReport,
        MigrationWarning,
        check_columns,
        compare_saved_models,
        load_feature_columns,
    )

    if args.columns is not None:
        raw = load_feature_columns(args.columns)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MigrationWarning)
            report = check_columns(
                raw,
                args.data,
                specs=args.spec,
                tolerance=args.tolerance,
                batch_size=args.batch_size,
                max_rows=args.max_rows,
                max_differences=args.examples,
                base_dir=args.base_dir,
                compression=args.compression,
                engines=[e.strip() for e in args.engines.split(",") if e.strip()],
            )
    else:
        report = CheckReport(columns=[], rows=0, files=[], tolerance=args.tolerance)
    if models[0] is not None:
        report.outputs = compare_saved_models(
            models[0],
            models[1],
            args.data,
            tolerance=args.tolerance,
            batch_size=args.batch_size,
            max_rows=args.max_rows,
            worst=args.examples,
            compression=args.compression,
        )
    if args.json:
        print_json(report.to_json())
    else:
        print(report.format())
    return EXIT_OK if report.faithful else EXIT_DATA
