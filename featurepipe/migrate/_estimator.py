"""A trained canned ``tf.estimator`` model -> the featurepipe Keras model with its weights.

:func:`migrate_estimator` reads the Estimator's checkpoint
(:func:`~featurepipe.migrate.read_estimator_checkpoint`, ``tf.train.load_checkpoint``;
no ``tf.estimator`` needed), converts its ``tf.feature_column`` columns
(:func:`~featurepipe.migrate.migrate_feature_columns`), builds the matching
canned model of :mod:`featurepipe.keras` (``linear_model``, ``dnn_model`` or
``wide_and_deep_model`` with the Estimator's head, see
:class:`~featurepipe.keras.EstimatorHead`) and loads every trained variable
into it:

- ``linear/linear_model/<column>/weights`` ``[n, units]``: the rows of that
  column's block in :class:`~featurepipe.keras.LinearLogits`' one table
  (categorical columns, in name order) or of its numeric kernel (numeric
  columns, in name order); ``bias_weights``: its bias.
- ``dnn/hiddenlayer_<i>/{kernel,bias}`` -> ``dnn_hidden_<i>``;
  ``dnn/hiddenlayer_<i>/batchnorm_<i>/*`` -> ``dnn_batch_norm_<i>`` (the
  Estimator's order: after activation and dropout, ``batch_norm="estimator"``);
  ``dnn/logits/*`` -> ``dnn_logits``.
- embedding tables (``.../input_layer/<column>_embedding/embedding_weights``,
  shared tables under their collection name) -> the tables of
  :class:`~featurepipe.keras.DenseFeatures`. Both concatenate the columns
  sorted by name, so the first hidden kernel's rows line up; the widths are
  checked.
- optimizer slots (Ftrl ``accumulator`` / ``linear``, Adagrad ``accumulator``,
  Adam ``m`` / ``v``) -> the slots of :class:`~featurepipe.keras.SparseOptimizer`,
  which has the same update rules; others are listed as dropped.

Everything lands in ``OUT/``: ``model.keras``, ``columns.json``,
``export/<timestamp>/`` (the serving SavedModel with the Estimator's
signatures) and ``migration.json``, which says for every checkpoint variable
where it went or why it was not used.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from featurepipe._util import write_text
from featurepipe.columns import (
    CategoricalSpec,
    ColumnSpecs,
    EmbeddingColumn,
    IndicatorColumn,
    NumericColumn,
)
from featurepipe.errors import ConfigError, DataError
from featurepipe.migrate._checkpoint import (
    CheckpointVariable,
    EstimatorWeights,
    _normalize_estimator,
    read_estimator_checkpoint,
)
from featurepipe.migrate._columns import MigratedColumns, migrate_feature_columns
from featurepipe.migrate._user import load_feature_columns

__all__ = ["ESTIMATORS", "EstimatorMigration", "estimator_arguments", "migrate_estimator"]

#: The canned Estimators :func:`migrate_estimator` migrates (CLI names in snake case too).
ESTIMATORS = (
    "LinearClassifier",
    "LinearRegressor",
    "DNNClassifier",
    "DNNRegressor",
    "DNNLinearCombinedClassifier",
    "DNNLinearCombinedRegressor",
)
# featurepipe's SparseOptimizer rules with the same update as the Estimator's optimizer,
# and the checkpoint (Keras) slot name -> SparseOptimizer slot name.
_RULES = {"Ftrl": "ftrl", "Adagrad": "adagrad", "Adam": "adam", "SGD": "sgd"}
_SLOT_NAMES = {
    "ftrl": {"accumulator": "accum", "linear": "linear"},
    "adagrad": {"accumulator": "accumulator"},
    "adam": {"m": "m", "v": "v"},
    "sgd": {},
}
_HYPER_REASON = (
    "{opt} hyperparameter {key!r}: SparseOptimizer has no such setting (or the optimizer "
    "of this name is not the migrated model's)"
)
_HYPER_REASONS = {
    "iter": "{opt} step counter: SparseOptimizer keeps one counter, set to the global_step",
    "decay": "{opt} 'decay' (Keras legacy learning-rate decay): SparseOptimizer has none; "
    "pass a learning-rate schedule when you train on if it was not 0",
    "beta": "{opt} 'beta': SparseOptimizer's FTRL has beta 0 (the Estimator default)",
    "learning_rate_power": "{opt} 'learning_rate_power': SparseOptimizer's FTRL uses -0.5 "
    "(the Estimator default)",
    "beta1_power": "{opt} 'beta1_power': SparseOptimizer derives it from the step counter",
    "beta2_power": "{opt} 'beta2_power': SparseOptimizer derives it from the step counter",
}
# hyperparameters SparseOptimizer has fixed: the Estimator's value is kept when it is this one
_FIXED = {"decay": 0.0, "beta": 0.0, "learning_rate_power": -0.5}
_SANITIZE = re.compile(r"[^A-Za-z0-9_.\-]")


@dataclass
class EstimatorMigration:
    """What :func:`migrate_estimator` made.

    Attributes:
        model: the Keras model (outputs logits; its head is ``head``), compiled
            with a :class:`~featurepipe.keras.SparseOptimizer` holding the
            Estimator's optimizer state where it could be carried over.
        columns: the converted columns (``parts`` for wide-and-deep).
        head: the Estimator's head.
        weights: the checkpoint as read.
        records: one entry per checkpoint variable: ``name``, ``shape``,
            ``dtype``, ``status`` (``"loaded"``, ``"slot"``, ``"dropped"``) and
            ``target`` (the Keras variable path and rows) or ``reason``.
        output: the output directory, or `None`.
        export_dir: the serving export, or `None`.
        notes: what the migration assumed or changed, one sentence each.
    """

    model: Any
    columns: MigratedColumns
    head: Any
    weights: EstimatorWeights
    records: list[dict[str, Any]] = field(default_factory=list)
    output: str | None = None
    export_dir: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        """Counts of the records by status."""
        out: dict[str, int] = {}
        for rec in self.records:
            out[rec["status"]] = out.get(rec["status"], 0) + 1
        return out


# Estimator constructor argument -> migrate_estimator keyword (combined Estimators' names too)
_ARGUMENTS = {
    "n_classes": "n_classes",
    "label_vocabulary": "label_vocabulary",
    "weight_column": "weight_column",
    "loss_reduction": "loss_reduction",
    "label_dimension": "label_dimension",
    "hidden_units": "hidden_units",
    "dnn_hidden_units": "hidden_units",
    "activation_fn": "activation_fn",
    "dnn_activation_fn": "activation_fn",
    "dropout": "dropout",
    "dnn_dropout": "dropout",
    "batch_norm": "batch_norm",
    "sparse_combiner": "sparse_combiner",
    "linear_sparse_combiner": "sparse_combiner",
    "optimizer": "optimizer",
    "linear_optimizer": "linear_optimizer",
    "dnn_optimizer": "dnn_optimizer",
}


def estimator_arguments(args: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`migrate_estimator` keywords from the Estimator's constructor arguments.

    Takes the names the Estimator classes use (``dnn_hidden_units``,
    ``dnn_activation_fn``, ``linear_sparse_combiner``...; `None` values are
    skipped), e.g. the ``args`` of a fixture's ``case.json`` or the CLI's
    ``--case-args``. Activations may be written ``tf.nn.relu``.

    Raises:
        ConfigError: for an argument the migration does not know.

    Examples:
        >>> estimator_arguments({"dnn_hidden_units": [8, 4], "dnn_activation_fn": "tf.nn.elu",
        ...                      "n_classes": 3, "weight_column": None})
        {'hidden_units': [8, 4], 'activation_fn': 'elu', 'n_classes': 3}
    """
    out: dict[str, Any] = {}
    for key, value in args.items():
        if key not in _ARGUMENTS:
            raise ConfigError(
                f"Unknown Estimator argument {key!r}; the migration takes {sorted(_ARGUMENTS)}."
            )
        if value is None:
            continue
        if _ARGUMENTS[key] == "activation_fn" and isinstance(value, str):
            value = value.rsplit(".", 1)[-1]
        out[_ARGUMENTS[key]] = value
    return out


def _estimator_name(estimator: str) -> tuple[str, bool | None]:
    """``tf.compat.v1.estimator.DNNClassifier`` / ``dnn_classifier`` -> (class name, tf1)."""
    return _normalize_estimator(estimator, ESTIMATORS)


def _optimizer_spec(value: Any, default: str, default_lr: float | None) -> tuple[str, float | None]:
    """(checkpoint optimizer name, learning rate) of an Estimator optimizer argument."""
    if value is None:
        return default, default_lr
    if isinstance(value, str):
        return value, default_lr
    if isinstance(value, Mapping):
        return str(value.get("name", default)), value.get("learning_rate", default_lr)
    raise ConfigError(
        "An optimizer must be a name ('Ftrl', 'Adagrad', 'Adam', 'SGD') or "
        f"{{'name': ..., 'learning_rate': ...}}. Received: {value!r}"
    )


def migrate_estimator(
    model_dir: str | os.PathLike[str],
    *,
    columns: Any,
    estimator: str,
    output: str | os.PathLike[str] | None = None,
    tf1: bool | None = None,
    n_classes: int | None = None,
    label_vocabulary: Sequence[str] | None = None,
    weight_column: str | None = None,
    loss_reduction: str | None = None,
    label_dimension: int | None = None,
    hidden_units: Sequence[int] | None = None,
    activation_fn: str = "relu",
    dropout: float | None = None,
    batch_norm: bool | None = None,
    sparse_combiner: str = "sum",
    optimizer: Any = None,
    linear_optimizer: Any = None,
    dnn_optimizer: Any = None,
    base_dir: str | os.PathLike[str] | None = None,
    export: bool = True,
) -> EstimatorMigration:
    """Migrates a trained canned Estimator to a featurepipe Keras model with its weights.

    The arguments after ``tf1`` are the Estimator's constructor arguments (the
    combined Estimators' ``dnn_hidden_units``, ``dnn_activation_fn``,
    ``dnn_dropout``, ``linear_sparse_combiner`` are ``hidden_units``,
    ``activation_fn``, ``dropout``, ``sparse_combiner`` here). What the
    checkpoint shows is read from it: hidden units, batch norm, the number of
    logits; an argument that disagrees with it is an error.

    Args:
        model_dir: the Estimator's ``model_dir`` (latest checkpoint) or a checkpoint prefix.
        columns: the Estimator's feature columns: a list, ``{"linear": [...],
            "dnn": [...]}`` (``linear_feature_columns`` / ``dnn_feature_columns``),
            a ``"my_columns.py:build_columns"`` target, or a
            :class:`~featurepipe.migrate.MigratedColumns`.
        estimator: the class, e.g. ``"DNNLinearCombinedClassifier"``,
            ``"tf.compat.v1.estimator.LinearClassifier"`` or ``"dnn_classifier"``.
        output: where ``model.keras``, ``columns.json``, ``export/<ts>/`` and
            ``migration.json`` go; `None` writes nothing. Defaults to `None`.
        tf1: a ``tf.compat.v1.estimator`` class (TF1 slot names, loss reduction
            ``"sum"`` by default); `None` finds it from the checkpoint. Defaults to `None`.
        n_classes: classes of a classifier; `None` from the logits' width. Defaults to `None`.
        label_vocabulary: the classifier's string labels. Defaults to `None`.
        weight_column: the example-weight feature. Defaults to `None`.
        loss_reduction: `None` gives the Estimator's default (V2
            ``"sum_over_batch_size"``, TF1 ``"sum"``). Defaults to `None`.
        label_dimension: regression outputs; `None` from the checkpoint. Defaults to `None`.
        hidden_units: checked against the checkpoint; `None` reads them. Defaults to `None`.
        activation_fn: the DNN's activation (a Keras name; not in the checkpoint).
            Defaults to `"relu"`.
        dropout: the DNN's dropout rate (for further training; inference ignores
            it). Defaults to `None`.
        batch_norm: checked against the checkpoint; `None` reads it. Defaults to `None`.
        sparse_combiner: the linear part's combiner. Defaults to `"sum"`.
        optimizer: of a Linear* or DNN* Estimator: ``"Ftrl"`` or
            ``{"name": "Ftrl", "learning_rate": 0.2}``; `None` is the Estimator's
            default. Defaults to `None`.
        linear_optimizer: the combined Estimators' linear optimizer. Defaults to `None`.
        dnn_optimizer: the combined Estimators' DNN optimizer. Defaults to `None`.
        base_dir: where relative vocabulary files start. Defaults to `None`.
        export: write the serving export (with ``output``). Defaults to `True`.

    Returns:
        An :class:`EstimatorMigration`.

    Raises:
        ConfigError: for an unknown Estimator, columns that do not fit the
            checkpoint, or arguments that disagree with it.
        DataError: for a missing or foreign checkpoint.
    """
    from featurepipe.keras import (
        EstimatorHead,
        dnn_model,
        linear_model,
        wide_and_deep_model,
    )

    name, name_tf1 = _estimator_name(estimator)
    if tf1 is None:
        tf1 = name_tf1
    kind = "combined" if "Combined" in name else ("dnn" if name.startswith("DNN") else "linear")
    migrated = _migrated_columns(columns, kind, base_dir)
    if kind != "dnn":
        _check_linear_columns(
            migrated.linear if kind == "combined" else migrated.columns, sparse_combiner
        )
    cats = [
        s.categorical_column.name
        for s in migrated.columns
        if isinstance(s, EmbeddingColumn) and s.shared_embedding_name is not None
    ]
    weights = read_estimator_checkpoint(model_dir, name, tf1=tf1, categorical_columns=cats)
    tf1 = bool(weights.tf1) if tf1 is None else tf1

    units = weights.logits_dimension or 1
    reduction = loss_reduction or ("sum" if tf1 else "sum_over_batch_size")
    if name.endswith("Regressor"):
        if label_dimension is not None and label_dimension != units:
            raise ConfigError(
                f"label_dimension={label_dimension} disagrees with the checkpoint's logits "
                f"width {units}."
            )
        head = EstimatorHead(
            "regression",
            label_dimension=units,
            weight_column=weight_column,
            loss_reduction=reduction,
        )
    else:
        found = 2 if units == 1 else units
        if n_classes is not None and n_classes != found:
            raise ConfigError(
                f"n_classes={n_classes} disagrees with the checkpoint's logits width {units} "
                f"({found} classes)."
            )
        head = EstimatorHead.classifier(
            found,
            label_vocabulary=tuple(label_vocabulary) if label_vocabulary else None,
            weight_column=weight_column,
            loss_reduction=reduction,
        )

    hidden: list[int] = []
    bn = False
    if weights.dnn is not None:
        hidden = [int(u or 0) for u in weights.dnn.hidden_units]
        if hidden_units is not None and [int(u) for u in hidden_units] != hidden:
            raise ConfigError(
                f"hidden_units={list(hidden_units)} disagree with the checkpoint's hidden "
                f"layers {hidden}."
            )
        bn = any(layer.batch_norm is not None for layer in weights.dnn.hidden_layers)
        if batch_norm is not None and bool(batch_norm) != bn:
            raise ConfigError(
                f"batch_norm={batch_norm} disagrees with the checkpoint (batch norm "
                f"variables {'present' if bn else 'absent'})."
            )

    if kind == "combined":
        linear_cols: ColumnSpecs | None = migrated.linear
        dnn_cols: ColumnSpecs | None = migrated.dnn
    else:
        linear_cols = migrated.columns if kind == "linear" else None
        dnn_cols = migrated.columns if kind == "dnn" else None
    # the canned builders compile with the head's loss and metrics and this optimizer
    opt, used, opt_names, notes = _optimizer(
        weights, kind, optimizer, linear_optimizer, dnn_optimizer, len(linear_cols or ()), tf1
    )
    bn_arg: bool | str = "estimator" if bn else False
    if kind == "linear":
        model = linear_model(
            _have(linear_cols, "linear columns"),
            head=head,
            sparse_combiner=sparse_combiner,
            optimizer=opt,
        )
    elif kind == "dnn":
        model = dnn_model(
            _have(dnn_cols, "dnn columns"),
            hidden,
            head=head,
            activation=activation_fn,
            dropout=dropout,
            batch_norm=bn_arg,
            optimizer=opt,
        )
    else:
        model = wide_and_deep_model(
            _have(linear_cols, "linear columns"),
            _have(dnn_cols, "dnn columns"),
            hidden,
            head=head,
            activation=activation_fn,
            dropout=dropout,
            batch_norm=bn_arg,
            sparse_combiner=sparse_combiner,
            optimizer=opt,
        )

    loader = _Loader(model, weights)
    if weights.linear is not None:
        loader.linear(weights)
    if weights.dnn is not None:
        loader.dnn(weights)
    loader.finish()
    loader.slots(opt, opt_names, used)
    loader.leftovers()
    notes = [*migrated.notes, *notes]
    if not tf1 and weights.dnn is not None:
        for table in weights.shared_embeddings.values():
            if not table.variable.slots:
                notes.append(
                    f"The shared embedding table {table.name!r} has no optimizer state: the V2 "
                    "canned DNN Estimators never trained tf.feature_column.shared_embeddings "
                    "tables (they kept their initial values); the migrated model trains it."
                )
    result = EstimatorMigration(model, migrated, head, weights, loader.records, notes=notes)
    if output is not None:
        _write(result, os.fspath(output), export)
    return result


def _rule_of(name: str) -> str | None:
    """SparseOptimizer's rule of a checkpoint optimizer name (``Adagrad_1``: a second Adagrad)."""
    return _RULES.get(re.sub(r"_\d+$", "", name))


def _f32(value: Any) -> float:
    """A float32 checkpoint scalar as the decimal it was written as (0.001, not 0.0010000000474)."""
    return float(str(np.float32(value)))


def _part_of(name: str) -> str:
    return "linear" if name.startswith("linear/") else "dnn"


def _optimizer(
    weights: EstimatorWeights,
    kind: str,
    optimizer: Any,
    linear_optimizer: Any,
    dnn_optimizer: Any,
    num_linear_columns: int,
    tf1: bool,
) -> tuple[Any, dict[str, str], dict[str, str], list[str]]:
    """The SparseOptimizer of the migrated model, as close to the Estimator's as it goes.

    Each part's optimizer is the argument, else the one whose slots the
    checkpoint holds, else the Estimator's default (linear: Ftrl with
    ``min(0.2, 1/sqrt(columns))``; DNN: Adagrad, 0.05 for a TF1 DNN*, else 0.001, as
    tensorflow/estimator canned/linear.py, dnn.py, dnn_linear_combined.py).
    The learning rate (and Ftrl's L1/L2, Adam's betas) come from the argument,
    else from the checkpoint's hyperparameter variables (V2 Estimators).

    Returns:
        ``(optimizer, {checkpoint hyperparameter variable: what it set},
        {part: checkpoint optimizer name}, notes)``.
    """
    from featurepipe.keras import SparseOptimizer

    found: dict[str, set[str]] = {"linear": set(), "dnn": set()}
    for name, v in weights.variables.items():
        for slot in v.slots.values():
            found[_part_of(name)].add(slot.optimizer)
    defaults = {
        "linear": ("Ftrl", min(0.2, 1.0 / float(np.sqrt(max(num_linear_columns, 1))))),
        # tf.compat.v1 DNN*: 0.05 (dnn.py _LEARNING_RATE); V2 DNN* build Adagrad() with
        # Keras' default 0.001; combined: 0.001 (dnn_linear_combined.py _DNN_LEARNING_RATE).
        "dnn": ("Adagrad", 0.05 if kind == "dnn" and tf1 else 0.001),
    }
    given = {
        "linear": linear_optimizer if kind == "combined" else optimizer,
        "dnn": dnn_optimizer if kind == "combined" else optimizer,
    }
    parts = {"linear": ("linear",), "dnn": ("dnn",), "combined": ("linear", "dnn")}[kind]
    names: dict[str, str] = {}
    rates: dict[str, float] = {}
    extra: dict[str, Any] = {}
    used: dict[str, str] = {}
    notes: list[str] = []
    for part in parts:
        default_name, default_lr = defaults[part]
        name, lr = _optimizer_spec(given[part], default_name, None)
        if given[part] is None and len(found[part]) == 1:
            name = next(iter(found[part]))
        names[part] = name
        if _rule_of(name) is None:
            raise ConfigError(
                f"The {part} optimizer {name!r} has no featurepipe counterpart (SparseOptimizer "
                f"has {sorted(_RULES)}); pass another with "
                f"{'linear_optimizer' if part == 'linear' and kind == 'combined' else ''}"
                f"{'dnn_optimizer' if part == 'dnn' and kind == 'combined' else ''}"
                f"{'optimizer' if kind != 'combined' else ''}= (its slots are then dropped)."
            )
        hyper = weights.optimizers.get(name)
        hp = hyper.hyperparameters if hyper is not None else {}
        if "learning_rate" in hp:
            stored = _f32(hp["learning_rate"].numpy())
            if lr is None:
                lr = stored
                used[hp["learning_rate"].name] = f"{part} learning_rate"
            else:
                used[hp["learning_rate"].name] = (
                    f"{part} learning_rate: the argument's {lr:g} (the checkpoint's: {stored:g})"
                )
        if lr is None:
            notes.append(
                f"The checkpoint holds no learning rate of the {part} optimizer ({name}); the "
                f"migrated optimizer uses the Estimator's default {default_lr:g}. Pass "
                f"{'optimizer' if kind != 'combined' else part + '_optimizer'}="
                "{'name': ..., 'learning_rate': ...} if it was set."
            )
        rates[part] = float(lr if lr is not None else default_lr)
        args = given[part].get("args", {}) if isinstance(given[part], Mapping) else {}
        for key, arg in (
            ("l1_regularization_strength", "l1"),
            ("l2_regularization_strength", "l2"),
            ("beta_1", "beta_1"),
            ("beta_2", "beta_2"),
        ):
            if key in args:
                extra[arg] = float(args[key])
            elif key in hp:
                extra[arg] = _f32(hp[key].numpy())
            if key in hp:
                used[hp[key].name] = f"{arg} of the {part} rule: {extra[arg]:g}"
    if kind == "combined":
        opt = SparseOptimizer(
            _rule_of(names["dnn"]) or "adagrad",
            rates["dnn"],
            wide_algorithm=_rule_of(names["linear"]),
            wide_learning_rate=rates["linear"],
            wide_layers=("linear",),
            **extra,
        )
    else:
        part = parts[0]
        opt = SparseOptimizer(_rule_of(names[part]) or "adagrad", rates[part], **extra)
    return opt, used, names, notes


def _check_linear_columns(columns: ColumnSpecs, sparse_combiner: str) -> None:
    """Refuses linear-part columns whose Estimator weights LinearLogits cannot hold.

    ``tf.feature_column``'s linear model multiplies a dense column's output by a
    ``[width, units]`` kernel; :class:`~featurepipe.keras.LinearLogits` gives
    indicator and embedding columns a weight per id of their categorical column
    instead. For an indicator column with the ``"sum"`` combiner that is the same
    number (count x weight); otherwise it is not.
    """
    for spec in columns:
        if isinstance(spec, EmbeddingColumn):
            raise ConfigError(
                f"Column {spec.name!r} is an embedding column in the linear part; featurepipe's "
                "linear model has no embedding (it weights the categorical ids), so the "
                "Estimator's weights cannot be carried over. Give the linear part the "
                "categorical column itself, or migrate it as a DNN column."
            )
        if isinstance(spec, IndicatorColumn) and sparse_combiner != "sum":
            raise ConfigError(
                f"Column {spec.name!r} is an indicator column in a linear part with "
                f"sparse_combiner={sparse_combiner!r}: the Estimator did not apply the combiner "
                "to it (a dense column), featurepipe's linear model would; only 'sum' migrates "
                "exactly."
            )


def _migrated_columns(columns: Any, kind: str, base_dir: Any) -> MigratedColumns:
    if isinstance(columns, MigratedColumns):
        migrated = columns
    else:
        if isinstance(columns, str):
            columns = load_feature_columns(columns)
        if kind == "combined" and not isinstance(columns, Mapping):
            raise ConfigError(
                "A DNNLinearCombined Estimator has two column lists: pass "
                "{'linear': [...], 'dnn': [...]} (its linear_feature_columns and "
                "dnn_feature_columns)."
            )
        if kind != "combined" and isinstance(columns, Mapping):
            raise ConfigError(
                f"A {kind} Estimator has one list of feature columns; received a dict with "
                f"keys {sorted(map(str, columns))}."
            )
        migrated = migrate_feature_columns(columns, base_dir=base_dir)
    if kind == "combined" and migrated.parts is None:
        raise ConfigError("The migrated columns have no linear/dnn parts for a combined model.")
    return migrated


def _var_path(v: Any) -> str:
    return str(getattr(v, "path", v.name))


class _Loader:
    """Assigns checkpoint values to the Keras variables and records where each went."""

    def __init__(self, model: Any, weights: EstimatorWeights) -> None:
        self.model = model
        self.w = weights
        self.records: list[dict[str, Any]] = []
        self.done: set[str] = set()
        # Keras variable path -> [(checkpoint variable, rows slice or None)] for the slots
        self.placed: dict[str, list[tuple[CheckpointVariable, slice | None, str]]] = {}

    def _record(self, v: CheckpointVariable, target: str, part: str, rows: Any = None) -> None:
        where = target if rows is None else f"{target}[{rows.start}:{rows.stop}]"
        names = list(v.parts) if v.parts else [v.name]
        for n in names:
            self.records.append(
                {
                    "name": n,
                    "shape": list(v.shape),
                    "dtype": v.dtype,
                    "status": "loaded",
                    "target": where,
                }
            )
            self.done.add(n)
        self.placed.setdefault(target, []).append((v, rows, part))

    def _assign(self, var: Any, value: np.ndarray, what: str) -> None:
        want = tuple(int(d) for d in var.shape)
        if tuple(value.shape) != want:
            raise ConfigError(
                f"{what}: the checkpoint has shape {list(value.shape)}, the migrated model "
                f"needs {list(want)}; do the columns (and their bucket counts) match the "
                "Estimator's?"
            )
        var.assign(value.astype(np.float32))

    def linear(self, weights: EstimatorWeights) -> None:
        lin = _have(weights.linear, "the checkpoint's linear part")
        layer = self.model.get_layer("linear")
        units = layer.units
        by_name = {_SANITIZE.sub("_", k): k for k in (*layer.categorical, *layer.numeric)}
        extra = sorted(set(lin.columns) - set(by_name))
        missing = sorted(set(by_name) - set(lin.columns))
        if extra or missing:
            raise ConfigError(
                "The linear columns do not match the checkpoint: "
                + (
                    f"the checkpoint has weights for {extra} that no column makes; "
                    if extra
                    else ""
                )
                + (f"no weights for columns {missing}; " if missing else "")
                + "pass the Estimator's own (linear_)feature_columns."
            )
        if layer.table is not None:
            table = np.zeros(tuple(int(d) for d in layer.table.shape), np.float32)
            path = _var_path(layer.table)
            for key, size in layer.categorical.items():
                v = lin.columns[_SANITIZE.sub("_", key)]
                value = v.numpy()
                if value.shape != (size, units):
                    raise ConfigError(
                        f"Linear weights of column {key!r}: the checkpoint has shape "
                        f"{list(value.shape)}, the column has {size} ids x {units} logits; "
                        "do the columns match the Estimator's?"
                    )
                rows = slice(layer._offsets[key], layer._offsets[key] + size)
                table[rows] = value
                self._record(v, path, "linear", rows)
            self._assign(layer.table, table, "linear table")
        if layer.kernel is not None:
            path = _var_path(layer.kernel)
            parts, start = [], 0
            for key, width in layer.numeric.items():
                v = lin.columns[_SANITIZE.sub("_", key)]
                value = v.numpy().reshape(-1, units)
                if value.shape[0] != width:
                    raise ConfigError(
                        f"Linear weights of numeric column {key!r} have {value.shape[0]} rows; "
                        f"the column is {width} wide."
                    )
                parts.append(value)
                self._record(v, path, "linear", slice(start, start + width))
                start += width
            self._assign(layer.kernel, np.concatenate(parts, 0), "linear numeric kernel")
        bias = _have(lin.bias, "the checkpoint's linear bias")
        self._assign(layer.bias, bias.numpy().reshape(-1), "linear bias")
        self._record(bias, _var_path(layer.bias), "linear")

    def dnn(self, weights: EstimatorWeights) -> None:
        dnn = _have(weights.dnn, "the checkpoint's DNN part")
        feats = self.model.get_layer("dnn_features")
        width = 0
        tables = {**weights.shared_embeddings, **dnn.embeddings}
        for spec in feats._ordered:
            if isinstance(spec, NumericColumn):
                width += spec.size
            elif isinstance(spec, EmbeddingColumn):
                width += spec.dimension
                key = (
                    spec.shared_embedding_name
                    if spec.shared_embedding_name is not None
                    else spec.name
                )
                table = tables.get(key)
                if table is None:
                    raise ConfigError(
                        f"No embedding table for column {spec.name!r} (looked for {key!r}) in "
                        f"the checkpoint; it has {sorted(tables)}."
                    )
                var = feats._tables[spec.name]
                path = _var_path(var)
                if table.variable.name in {v.name for v, _, _ in self.placed.get(path, [])}:
                    continue  # a shared table, already loaded
                self._assign(var, table.variable.numpy(), f"embedding table {key!r}")
                self._record(table.variable, path, "dnn")
            elif isinstance(spec, IndicatorColumn):
                width += spec.output_size
            elif isinstance(spec, CategoricalSpec):  # bucketized
                width += spec.num_ids
        first = _have(
            dnn.hidden_layers[0].kernel if dnn.hidden_layers else dnn.logits.kernel,
            "first DNN kernel",
        )
        if first.shape[0] != width:
            raise ConfigError(
                f"The DNN's first kernel takes {first.shape[0]} inputs but the migrated "
                f"columns give {width} (DenseFeatures in name order: "
                f"{[s.name for s in feats._ordered]}); pass the Estimator's own "
                "(dnn_)feature_columns."
            )
        for i, layer_w in enumerate(dnn.hidden_layers):
            dense = self.model.get_layer(f"dnn_hidden_{i}")
            for attr in ("kernel", "bias"):
                v = getattr(layer_w, attr)
                target = getattr(dense, attr)
                if v is None or target is None:
                    raise ConfigError(f"hidden layer {i}: no {attr} in the checkpoint or model.")
                self._assign(target, v.numpy(), f"dnn/hiddenlayer_{i}/{attr}")
                self._record(v, _var_path(target), "dnn")
            if layer_w.batch_norm is not None:
                bnl = self.model.get_layer(f"dnn_batch_norm_{i}")
                for attr in ("gamma", "beta", "moving_mean", "moving_variance"):
                    v = getattr(layer_w.batch_norm, attr)
                    if v is None:
                        raise ConfigError(f"batch norm {i}: no {attr} in the checkpoint.")
                    target = getattr(bnl, attr)
                    self._assign(target, v.numpy(), f"batchnorm_{i}/{attr}")
                    self._record(v, _var_path(target), "dnn")
        logits = self.model.get_layer("dnn_logits")
        for attr in ("kernel", "bias"):
            v = getattr(dnn.logits, attr)
            if v is None:
                raise ConfigError(f"no dnn/logits/{attr} in the checkpoint.")
            target = getattr(logits, attr)
            self._assign(target, v.numpy(), f"dnn/logits/{attr}")
            self._record(v, _var_path(target), "dnn")

    def finish(self) -> None:
        w = self.w
        for table in w.shared_embeddings.values():
            if table.variable.name not in self.done:
                self._drop(table.variable, "a shared embedding table no migrated column uses")
        for name, v in w.variables.items():
            if name == "global_step":
                self.records.append(
                    {
                        "name": name,
                        "shape": list(v.shape),
                        "dtype": v.dtype,
                        "status": "loaded",
                        "target": "optimizer.iterations",
                    }
                )
                self.done.add(name)
            elif name not in self.done and not (v.parts and v.parts[0] in self.done):
                self._drop(v, "no part of the migrated model holds it")
        for opt in w.optimizers.values():
            for key, v in opt.hyperparameters.items():
                fixed = _FIXED.get(key)
                if fixed is not None and v.shape == () and float(v.numpy()) == fixed:
                    # the value SparseOptimizer always uses: nothing is lost
                    self.records.append(
                        {
                            "name": v.name,
                            "shape": [],
                            "dtype": v.dtype,
                            "status": "hyperparameter",
                            "target": f"SparseOptimizer's fixed {key} {fixed:g} (the same)",
                        }
                    )
                    self.done.add(v.name)
                    continue
                self._drop(v, _HYPER_REASONS.get(key, _HYPER_REASON).format(opt=opt.name, key=key))
        for u in w.unrecognized:
            self.records.append(
                {
                    "name": u.name,
                    "shape": list(u.shape),
                    "dtype": u.dtype,
                    "status": "dropped",
                    "reason": u.reason,
                }
            )
            self.done.add(u.name)

    def leftovers(self) -> None:
        """Records every checkpoint variable that no rule placed (so none goes unlisted)."""
        import tensorflow as tf

        for n, shape in tf.train.list_variables(self.w.checkpoint):
            if n not in self.done:
                self.records.append(
                    {
                        "name": n,
                        "shape": [int(d) for d in shape],
                        "dtype": "",
                        "status": "dropped",
                        "reason": "not a variable of a canned Estimator that featurepipe knows",
                    }
                )
                self.done.add(n)

    def _drop(self, v: CheckpointVariable, reason: str) -> None:
        for n in v.parts or (v.name,):
            self.records.append(
                {
                    "name": n,
                    "shape": list(v.shape),
                    "dtype": v.dtype,
                    "status": "dropped",
                    "reason": reason,
                }
            )
            self.done.add(n)

    def slots(self, opt: Any, names: Mapping[str, str], used: Mapping[str, str]) -> None:
        """Builds the optimizer and copies the checkpoint's slots into it where rules agree."""
        for rec in self.records:
            if rec["name"] in used:
                rec.update(
                    status="hyperparameter",
                    target=f"SparseOptimizer {used[rec['name']]}",
                )
                rec.pop("reason", None)
        model = self.model
        opt.build(model.trainable_variables)
        if self.w.global_step is not None:
            opt.iterations.assign(self.w.global_step)
        index = {_var_path(v): i for i, v in enumerate(model.trainable_variables)}
        for path, placed in self.placed.items():
            i = index.get(path)
            slots = opt._slots[i] if i is not None else {}
            rule = opt._rule(model.trainable_variables[i]) if i is not None else None
            # start from the slots' initial values, fill in the rows the checkpoint has
            values = {k: np.array(s.numpy()) for k, s in slots.items()}
            touched: set[str] = set()
            for v, rows, part in placed:
                for slot in v.slots.values():
                    ckpt_rule = _rule_of(slot.optimizer)
                    want = names.get(part)
                    target = _SLOT_NAMES.get(rule or "", {}).get(slot.slot)
                    if i is None or ckpt_rule != rule or target is None or want != slot.optimizer:
                        why = (
                            "the variable is not trained in the migrated model"
                            if i is None
                            else f"{slot.optimizer} slot {slot.slot!r}: the migrated optimizer "
                            f"updates this variable with {rule!r}, which has no such slot"
                        )
                        self._drop(slot.variable, why)
                        continue
                    value = slot.variable.numpy().astype(np.float32)
                    if rows is None:
                        value = value.reshape(values[target].shape)
                        values[target] = value
                    else:
                        values[target][rows] = value.reshape(values[target][rows].shape)
                    touched.add(target)
                    where = path if rows is None else f"{path}[{rows.start}:{rows.stop}]"
                    for n in slot.variable.parts or (slot.variable.name,):
                        self.records.append(
                            {
                                "name": n,
                                "shape": list(slot.variable.shape),
                                "dtype": slot.variable.dtype,
                                "status": "slot",
                                "target": f"optimizer/{target} of {where}",
                            }
                        )
                        self.done.add(n)
            for key in touched:
                slots[key].assign(values[key])
        # the slots of variables that were never placed
        for v in self.w.variables.values():
            for slot in v.slots.values():
                for n in slot.variable.parts or (slot.variable.name,):
                    if n not in self.done:
                        self._drop(slot.variable, "its variable is not in the migrated model")


def _write(result: EstimatorMigration, out: str, export: bool) -> None:
    from featurepipe.keras import export_serving

    os.makedirs(out, exist_ok=True)
    model_path = os.path.join(out, "model.keras")
    result.model.save(model_path)
    result.columns.save(os.path.join(out, "columns.json"))
    if export:
        base = os.path.join(out, "export")
        os.makedirs(base, exist_ok=True)
        ts = int(time.time())
        while os.path.exists(os.path.join(base, str(ts))):
            ts += 1
        result.export_dir = export_serving(
            result.model,
            os.path.join(base, str(ts)),
            result.columns.columns,
            signatures="estimator",
        )
    result.output = out
    doc = {
        "format_version": 1,
        "checkpoint": result.weights.checkpoint,
        "estimator": result.weights.estimator,
        "tf1": result.weights.tf1,
        "global_step": result.weights.global_step,
        "head": result.head.get_config(),
        "model": "model.keras",
        "columns": "columns.json",
        "export": None if result.export_dir is None else os.path.relpath(result.export_dir, out),
        "optimizer": {
            k: v
            for k, v in result.model.optimizer.get_config().items()
            if k
            in (
                "algorithm",
                "learning_rate",
                "wide_algorithm",
                "wide_learning_rate",
                "wide_layers",
                "l1",
                "l2",
                "beta_1",
                "beta_2",
                "epsilon",
                "initial_accumulator_value",
            )
        },
        "notes": result.notes,
        "summary": result.summary(),
        "variables": sorted(result.records, key=lambda r: r["name"]),
    }
    write_text(os.path.join(out, "migration.json"), json.dumps(doc, indent=1) + "\n")


_T = TypeVar("_T")


def _have(value: _T | None, what: str) -> _T:
    """``value``, which the Estimator kind guarantees; a clear error if it is missing."""
    if value is None:
        raise DataError(
            f"The Estimator checkpoint has no {what}, which this Estimator kind needs: check "
            "--estimator (and that MODEL_DIR is the Estimator's model directory)."
        )
    return value
