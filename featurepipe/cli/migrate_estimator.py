"""``featurepipe migrate estimator``: a trained canned Estimator -> featurepipe Keras model.

Registered under ``featurepipe migrate`` by :mod:`featurepipe.cli.migrate`.
TensorFlow and Keras are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from featurepipe.cli._common import EXIT_OK, positive_int, print_json

__all__ = ["add_estimator_parser"]

_DESCRIPTION = """\
Migrate a trained canned tf.estimator model: read its checkpoint (no
tf.estimator needed), convert its feature columns, build the matching
featurepipe Keras model (linear_model / dnn_model / wide_and_deep_model with
the Estimator's head) and load every trained variable into it: linear weights
per column and bias, hidden layers, batch norm, logits, embedding tables
(shared ones too) and the optimizer's slots where featurepipe's
SparseOptimizer has the same rule (Ftrl, Adagrad, Adam, SGD).

MODEL_DIR is the Estimator's model_dir (its latest checkpoint is read) or a
checkpoint prefix (model_dir/model.ckpt-N). --columns names the function that
returns the Estimator's feature columns, as for `featurepipe migrate columns`
(a dict {"linear": [...], "dnn": [...]} for DNNLinearCombined*).

Hidden units, batch norm and the number of logits are read from the
checkpoint; what it does not hold comes from the Estimator's constructor
arguments: the options below, or all at once with --case-args (a JSON object
of the Estimator's argument names, e.g. {"n_classes": 3, "dnn_activation_fn":
"elu", "label_vocabulary": ["low", "mid", "high"]}; options given explicitly
win). The activation must be given when it was not relu.

Writes OUT/model.keras, OUT/columns.json, OUT/export/<timestamp>/ (a
SavedModel with the Estimator's serving signatures: serving_default,
classification / regression, predict; unless --no-export) and
OUT/migration.json: every checkpoint variable, where it went or why it was not
used.
"""

_EXAMPLE = """\
examples:
  featurepipe migrate estimator /models/ctr --columns trainer/features.py:build_columns \\
      --estimator dnn_linear_combined_classifier --output migrated/
  featurepipe migrate estimator /models/price --columns cols.py:columns --estimator DNNRegressor \\
      --case-args '{"activation_fn": "elu", "weight_column": "weight"}' --output migrated/
  featurepipe migrate estimator /models/old --columns cols.py:columns --tf1 \\
      --estimator tf.compat.v1.estimator.LinearClassifier --linear-optimizer Ftrl:0.05 --output out/
"""


def add_estimator_parser(verbs: Any) -> None:
    """Adds ``estimator`` to the ``featurepipe migrate`` verbs."""
    e = verbs.add_parser(
        "estimator",
        help="a trained canned Estimator (checkpoint) -> Keras model, export, migration.json",
        description=_DESCRIPTION,
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("model_dir", metavar="MODEL_DIR", help="the Estimator's model_dir")
    e.add_argument(
        "--columns", required=True, metavar="FILE.py:NAME", help="the Estimator's feature columns"
    )
    e.add_argument(
        "--estimator",
        required=True,
        metavar="CLASS",
        help="LinearClassifier, DNNRegressor, dnn_linear_combined_classifier, "
        "tf.compat.v1.estimator.LinearClassifier, ...",
    )
    e.add_argument("--output", required=True, metavar="OUT", help="output directory")
    e.add_argument(
        "--tf1",
        action="store_true",
        default=None,
        help="a tf.compat.v1.estimator class (default: found from the checkpoint)",
    )
    e.add_argument("--n-classes", type=positive_int, help="classes (default: from the checkpoint)")
    e.add_argument(
        "--label-vocabulary", metavar="A,B,C|@FILE", help="string labels, in class-id order"
    )
    e.add_argument("--weight-column", metavar="FEATURE", help="the example-weight feature")
    e.add_argument(
        "--loss-reduction",
        metavar="R",
        help="sum_over_batch_size (V2 default), sum (TF1 default), sum_by_nonzero_weights, mean",
    )
    e.add_argument("--label-dimension", type=positive_int, help="regression outputs")
    e.add_argument(
        "--hidden-units", metavar="N,N,...", help="checked against the checkpoint's layers"
    )
    e.add_argument("--activation", metavar="NAME", help="hidden activation (default relu)")
    e.add_argument("--dropout", type=float, help="hidden dropout rate (for further training)")
    e.add_argument(
        "--sparse-combiner", choices=("sum", "mean", "sqrtn"), help="linear part (default sum)"
    )
    for flag, what in (
        ("--optimizer", "of a Linear*/DNN* Estimator"),
        ("--linear-optimizer", "the combined Estimators' linear optimizer"),
        ("--dnn-optimizer", "the combined Estimators' DNN optimizer"),
    ):
        e.add_argument(
            flag,
            metavar="NAME[:LR]",
            help=f"{what}: Ftrl, Adagrad, Adam or SGD, and the learning rate (default: the "
            "checkpoint's optimizer and rate, else the Estimator's default)",
        )
    e.add_argument(
        "--case-args",
        metavar="JSON|@FILE",
        help="the Estimator's constructor arguments as a JSON object (or a file holding it)",
    )
    e.add_argument("--base-dir", metavar="DIR", help="where relative vocabulary files start")
    e.add_argument("--no-export", action="store_true", help="do not write OUT/export/")
    e.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    e.set_defaults(func=_estimator)


def _read_arg(text: str) -> str:
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            return f.read()
    return text


def _optimizer(text: str | None) -> Any:
    from featurepipe.errors import ConfigError

    if text is None:
        return None
    name, sep, lr = text.partition(":")
    if not sep:
        return name
    try:
        return {"name": name, "learning_rate": float(lr)}
    except ValueError:
        raise ConfigError(
            f"An optimizer is NAME or NAME:LEARNING_RATE. Received: {text!r}"
        ) from None


def _estimator(args: argparse.Namespace) -> int:
    import logging
    import os

    from featurepipe.errors import ConfigError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    from featurepipe.migrate import estimator_arguments, migrate_estimator

    kwargs: dict[str, Any] = {}
    if args.case_args:
        try:
            raw = json.loads(_read_arg(args.case_args))
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"--case-args must be a JSON object (or @FILE): {e}") from e
        if not isinstance(raw, dict):
            raise ConfigError("--case-args must be a JSON object of the Estimator's arguments.")
        kwargs.update(estimator_arguments(raw))
    vocab = None
    if args.label_vocabulary:
        text = args.label_vocabulary
        vocab = (
            [line.strip() for line in _read_arg(text).splitlines() if line.strip()]
            if text.startswith("@")
            else [v.strip() for v in text.split(",")]
        )
    explicit = {
        "n_classes": args.n_classes,
        "label_vocabulary": vocab,
        "weight_column": args.weight_column,
        "loss_reduction": args.loss_reduction,
        "label_dimension": args.label_dimension,
        "hidden_units": (
            [int(u) for u in args.hidden_units.split(",")] if args.hidden_units else None
        ),
        "activation_fn": args.activation,
        "dropout": args.dropout,
        "sparse_combiner": args.sparse_combiner,
        "optimizer": _optimizer(args.optimizer),
        "linear_optimizer": _optimizer(args.linear_optimizer),
        "dnn_optimizer": _optimizer(args.dnn_optimizer),
    }
    kwargs.update({k: v for k, v in explicit.items() if v is not None})
    result = migrate_estimator(
        args.model_dir,
        columns=args.columns,
        estimator=args.estimator,
        output=args.output,
        tf1=args.tf1,
        base_dir=args.base_dir,
        export=not args.no_export,
        **kwargs,
    )
    summary = {
        "output": result.output,
        "model": os.path.join(args.output, "model.keras"),
        "export": result.export_dir,
        "estimator": result.weights.estimator,
        "global_step": result.weights.global_step,
        "head": result.head.get_config(),
        "variables": result.summary(),
        "notes": result.notes,
    }
    if args.json:
        print_json(summary)
    else:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(result.summary().items()))
        print(
            f"migrated {result.weights.estimator} (step {result.weights.global_step}) from "
            f"{result.weights.checkpoint}: {counts}",
            file=sys.stderr,
        )
        for note in result.notes:
            print(f"Note: {note}", file=sys.stderr)
        for rec in result.records:
            if rec["status"] == "dropped":
                print(f"  not used: {rec['name']}: {rec['reason']}", file=sys.stderr)
        print(f"wrote {args.output}/model.keras, columns.json, migration.json", file=sys.stderr)
        if result.export_dir:
            print(f"serving export: {result.export_dir}", file=sys.stderr)
    return EXIT_OK
