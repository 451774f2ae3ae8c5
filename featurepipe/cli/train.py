"""``featurepipe train``: a canned Keras model on TFRecords, evaluated and exported.

TensorFlow and Keras are imported only when the command runs (see
:func:`featurepipe.keras.train`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from featurepipe.cli._common import EXIT_OK, print_json

__all__ = ["add_parser"]

_DESCRIPTION = """\
Train a canned Keras 3 model — linear, dnn or wide_and_deep (linear part on the
categorical / crossed / indicator columns, DNN on the embedding and numeric
columns, trained jointly: FTRL for the linear part, Adagrad for the DNN,
updating only the embedding rows each batch touches) — on TFRecord shards of
tf.Example through featurepipe's column specs. Uses the GPU when Keras sees one.
Writes OUTPUT/model.keras, OUTPUT/columns.json, OUTPUT/metrics.json (training
and --eval-data metrics, examples/s) and OUTPUT/export/<seconds>/, a SavedModel
whose serving_default signature takes serialized tf.Example strings.
"""

_EXAMPLE = """\
examples:
  featurepipe train --data 'out/train-*.tfrecord.gz' --spec specs.json --artifacts artifacts/ \\
      --model wide_and_deep --label label --output model/ --eval-data 'out/eval-*.tfrecord.gz'
  featurepipe train --data 'out/train-*' --spec specs.json --model dnn --label y \\
      --task regression --hidden-units 128,64 --epochs 5 --output model/ --json
"""


def add_parser(subparsers: Any) -> None:
    """Registers the ``train`` verb.

    Args:
        subparsers: the object ``add_subparsers()`` returned for ``featurepipe``.
    """
    p = subparsers.add_parser(
        "train",
        help="train a canned Keras model (linear, dnn, wide_and_deep) and export it",
        description=_DESCRIPTION,
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data",
        required=True,
        action="append",
        metavar="PATTERN",
        help="training TFRecord files (glob; repeat for more)",
    )
    p.add_argument("--spec", required=True, metavar="SPEC.json", help="column specs JSON")
    p.add_argument("--artifacts", metavar="DIR", help="`featurepipe analyze` output directory")
    p.add_argument("--schema", metavar="SCHEMA.json", help="schema JSON used to parse (optional)")
    p.add_argument(
        "--model",
        default="wide_and_deep",
        choices=("linear", "dnn", "wide_and_deep"),
        help="the canned model (default wide_and_deep)",
    )
    p.add_argument("--label", required=True, metavar="KEY", help="the label feature")
    p.add_argument(
        "--task",
        default=None,
        choices=("binary", "multiclass", "regression"),
        help="default binary (multiclass with --n-classes > 2)",
    )
    p.add_argument("--num-classes", type=int, default=None, help="classes of --task multiclass")
    head = p.add_argument_group(
        "Estimator head",
        "any of these trains with the tf.estimator head's semantics: the model outputs "
        "logits, the loss is the Estimator's (weighted, with its reduction)",
    )
    head.add_argument(
        "--n-classes",
        type=int,
        default=None,
        help="the Estimator's n_classes (2: binary, more: multiclass)",
    )
    head.add_argument(
        "--label-vocabulary",
        metavar="A,B,C|@FILE",
        default=None,
        help="string labels, in class-id order: comma-separated, or @FILE with one per line",
    )
    head.add_argument(
        "--weight-column", metavar="KEY", default=None, help="the example-weight feature"
    )
    head.add_argument(
        "--loss-reduction",
        default=None,
        type=str.lower,
        choices=("sum_over_batch_size", "sum", "sum_by_nonzero_weights", "mean"),
        help="default sum_over_batch_size (the V2 heads'); TF1 canned estimators used sum",
    )
    p.add_argument(
        "--signatures",
        default="default",
        choices=("default", "estimator"),
        help="export signatures: default (serving_default on `examples`) or estimator "
        "(the Estimator's serving_default/classification/regression/predict)",
    )
    p.add_argument("--output", required=True, metavar="DIR", help="where to write")
    p.add_argument(
        "--eval-data",
        action="append",
        metavar="PATTERN",
        help="held-out TFRecord files to evaluate on",
    )
    p.add_argument("--epochs", type=int, default=1, help="default 1")
    p.add_argument("--batch-size", type=int, default=256, help="default 256")
    p.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="cap the steps of an epoch (the data repeats)",
    )
    p.add_argument(
        "--hidden-units",
        default="64,32",
        metavar="W,W,...",
        help="DNN layer widths (default 64,32)",
    )
    p.add_argument("--dropout", type=float, default=None, help="DNN dropout rate")
    p.add_argument("--batch-norm", action="store_true", help="batch normalization in the DNN")
    p.add_argument(
        "--learning-rate", type=float, default=None, help="DNN (or linear model) learning rate"
    )
    p.add_argument(
        "--linear-learning-rate",
        type=float,
        default=None,
        help="wide part learning rate (wide_and_deep)",
    )
    p.add_argument(
        "--mixed-precision",
        nargs="?",
        const="mixed_float16",
        default=None,
        metavar="POLICY",
        help="mixed precision (default policy mixed_float16, for GPUs; "
        "mixed_bfloat16 on CPUs/TPUs)",
    )
    p.add_argument("--seed", type=int, default=0, help="default 0")
    p.add_argument("--quiet", action="store_true", help="no Keras progress display")
    p.add_argument("--json", action="store_true", help="print metrics.json on stdout")
    p.set_defaults(func=_run)  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from featurepipe.errors import ConfigError, DataError

    try:
        hidden = tuple(int(w) for w in args.hidden_units.split(",") if w.strip())
    except ValueError:
        raise ConfigError(
            "`--hidden-units` must be comma-separated integers. "
            f"Received: --hidden-units={args.hidden_units!r}"
        ) from None
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"`{flag}` must be >= 1. Received: {flag}={getattr(args, name)}")
    vocabulary = _vocabulary(args.label_vocabulary)
    import tensorflow as tf

    from featurepipe.keras import train

    try:
        result = train(
            args.data,
            args.spec,
            label_key=args.label,
            output_dir=args.output,
            model=args.model,
            artifacts=args.artifacts,
            schema=args.schema,
            eval_data=args.eval_data,
            task=args.task,
            num_classes=args.num_classes,
            n_classes=args.n_classes,
            label_vocabulary=vocabulary,
            weight_column=args.weight_column,
            loss_reduction=args.loss_reduction,
            signatures=args.signatures,
            epochs=args.epochs,
            batch_size=args.batch_size,
            steps_per_epoch=args.steps_per_epoch,
            hidden_units=hidden,
            dropout=args.dropout,
            batch_norm=args.batch_norm,
            learning_rate=args.learning_rate,
            linear_learning_rate=args.linear_learning_rate,
            mixed_precision=args.mixed_precision or False,
            seed=args.seed,
            verbose=0 if args.quiet or args.json else "auto",
        )
    except tf.errors.OpError as e:
        # Corrupt or truncated records, a feature of the wrong kind, a missing label.
        raise DataError(f"training stopped on a data error: {e.message}") from e
    if args.json:
        print_json(result.metrics)
        return EXIT_OK
    m = result.metrics
    shown = m["eval"] if m["eval"] is not None else m["train"]
    which = "eval" if m["eval"] is not None else "train"
    scores = "  ".join(f"{k} {v:.4f}" for k, v in shown.items() if v is not None)
    print(f"{which}: {scores}", file=sys.stderr)
    print(f"{m['examples_per_second']} examples/s on {', '.join(m['devices'])}", file=sys.stderr)
    print(f"wrote {result.model_path}", file=sys.stderr)
    print(f"wrote {result.export_dir}", file=sys.stderr)
    return EXIT_OK


def _vocabulary(value: str | None) -> list[str] | None:
    """``--label-vocabulary``: ``a,b,c`` or ``@FILE`` (one label a line)."""
    from featurepipe.errors import ConfigError

    if value is None:
        return None
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as f:
                labels = [line.rstrip("\r\n") for line in f]
        except OSError as e:
            raise ConfigError(
                f"Cannot read --label-vocabulary file {value[1:]!r}: {e.strerror}"
            ) from None
        labels = [label for label in labels if label]
    else:
        labels = [label.strip() for label in value.split(",") if label.strip()]
    if len(labels) < 2:
        raise ConfigError(
            f"`--label-vocabulary` needs at least 2 labels. Received: --label-vocabulary={value!r}"
        )
    return labels
