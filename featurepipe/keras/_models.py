"""Canned Keras 3 models on column specs: linear, DNN and wide-and-deep.

The replacements of ``tf.estimator``'s ``LinearClassifier`` / ``Regressor``,
``DNNClassifier`` / ``Regressor`` and ``DNNLinearCombinedClassifier`` /
``Regressor``. Each builder returns an ordinary functional ``keras.Model``
whose inputs are what :class:`~featurepipe.keras.ColumnTransform`
computes in the ``tf.data`` pipeline (see
:func:`~featurepipe.keras.make_dataset` with ``columns=model_columns``),
compiled with the task's loss and metrics and a
:class:`~featurepipe.keras.SparseOptimizer`: ``fit``, callbacks,
``evaluate``, ``predict`` and ``.keras`` saving work as for any Keras model.

- The **linear** part (:class:`LinearLogits`) gives each categorical column a
  weight per id (an embedding of width ``units``), looked up and summed per row
  (``sparse_combiner``), plus a kernel on numeric columns and a bias; one
  gather over all columns, no one-hot matrix, and its gradient is row-sparse.
- The **DNN** part is :class:`~featurepipe.keras.DenseFeatures` followed
  by ``Dense`` → (``BatchNormalization``) → activation → (``Dropout``) blocks.
- **Wide and deep** adds the logits of both parts, trains them jointly, and its
  optimizer updates the linear part with FTRL and the DNN part with Adagrad (the
  Estimator's defaults), or whatever you choose.

Mixed precision (``mixed_precision=True`` or a policy name): the linear part
and the ``Dense`` layers compute in the policy's dtype, variables and the
output stay float32. **Note:** with ``"mixed_float16"`` Keras' loss-scale
optimizer unscales each gradient densely, so the embedding tables lose their
row-sparse updates; prefer ``"mixed_bfloat16"`` (no loss scaling) on hardware
that has it (Ampere or newer GPUs, TPUs).

Tasks: ``"binary"`` (sigmoid output, labels 0/1; metrics AUC, accuracy, log
loss), ``"multiclass"`` (softmax over ``num_classes``, integer labels; accuracy,
log loss) and ``"regression"`` (one linear output; RMSE, MAE). The output layer
is named ``"<task>_head"`` and computes in float32 under mixed precision.

**Estimator heads** (``head=EstimatorHead(...)``, :mod:`featurepipe.keras._heads`):
the model outputs the logits instead (layer ``"<task>_logits"``) and is compiled
with the Estimator's loss — example weights as ``sample_weight``, the head's
``loss_reduction`` — and metrics on logits (weighted with a ``weight_column``);
``estimator_predictions(model.predict(x), head)`` gives the Estimator's
prediction dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras
from keras import ops

from featurepipe.columns import (
    BucketizedColumn,
    CategoricalSpec,
    ColumnSpec,
    ColumnSpecs,
    EmbeddingColumn,
    IndicatorColumn,
    NumericColumn,
    WeightedColumn,
)
from featurepipe.errors import ConfigError
from featurepipe.keras._heads import EstimatorHead, EstimatorLoss, HeadLogits, head_metrics
from featurepipe.keras._inputs import WEIGHTS_SUFFIX
from featurepipe.keras._layers import DenseFeatures, model_inputs
from featurepipe.keras._optimizers import SparseOptimizer

__all__ = [
    "TASKS",
    "LinearLogits",
    "LogLoss",
    "dnn_model",
    "linear_model",
    "merge_columns",
    "split_columns",
    "task_of",
    "wide_and_deep_model",
]

TASKS = ("binary", "multiclass", "regression")
_COMBINERS = ("sum", "mean", "sqrtn")


@keras.saving.register_keras_serializable(package="featurepipe")
class LinearLogits(keras.layers.Layer):
    """The linear (wide) part: summed per-id weights, a numeric kernel and a bias.

    Each categorical input (int ids ``[batch, n]`` padded with ``-1``, as
    ``ColumnTransform`` makes them) looks its ids up in one shared table of
    shape ``[total ids, units]`` (each column has its own block of rows);
    a row's weights are reduced with ``sparse_combiner`` (and a weighted
    column's weights). Ids ``< 0`` or ``>= num_ids`` contribute nothing. Numeric
    inputs multiply a ``[width, units]`` kernel. All weights start at zero.

    Args:
        categorical: ``{input name: num_ids}`` of the categorical inputs.
        numeric: ``{input name: width}`` of the numeric inputs. Defaults to `{}`.
        weighted: the categorical inputs that have ``<name>__weights``.
            Defaults to `()`.
        units: outputs (1, or the number of classes). Defaults to `1`.
        sparse_combiner: ``"sum"``, ``"mean"`` or ``"sqrtn"``. Defaults to `"sum"`
            (the Estimator's default).
        **kwargs: base layer arguments (``name``, ``dtype``).

    Raises:
        ConfigError: for no inputs, a bad combiner or a bad size.

    Examples:
        >>> layer = LinearLogits({"city": 4}, {"x": 1})
        >>> out = layer({"city": keras.ops.array([[0, -1], [3, 1]]),
        ...              "x": keras.ops.array([[1.0], [2.0]])})
        >>> tuple(out.shape)
        (2, 1)
    """

    def __init__(
        self,
        categorical: Mapping[str, int],
        numeric: Mapping[str, int] | None = None,
        weighted: Sequence[str] = (),
        units: int = 1,
        sparse_combiner: str = "sum",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if sparse_combiner not in _COMBINERS:
            raise ConfigError(
                "Unknown value for `sparse_combiner` of LinearLogits. Allowed values are: "
                f"{_COMBINERS}. Received: sparse_combiner={sparse_combiner!r}"
            )
        numeric = dict(numeric or {})
        if not categorical and not numeric:
            raise ConfigError("LinearLogits needs at least one categorical or numeric input.")
        for what, sizes in (("num_ids", categorical), ("width", numeric)):
            for key, size in sizes.items():
                if not isinstance(size, int) or size < 1:
                    raise ConfigError(f"`{what}` of {key!r} must be >= 1. Received: {size!r}")
        if units < 1:
            raise ConfigError(f"`units` must be >= 1. Received: units={units}")
        self.categorical = dict(sorted(categorical.items()))
        self.numeric = dict(sorted(numeric.items()))
        self.weighted = tuple(sorted(weighted))
        self.units = int(units)
        self.sparse_combiner = sparse_combiner
        self._offsets: dict[str, int] = {}
        total = 0
        for key, size in self.categorical.items():
            self._offsets[key] = total
            total += size
        # autocast=False: under mixed precision, cast the looked-up rows, not the table.
        self.table = (
            self.add_weight(
                name="linear_weights",
                shape=(total, self.units),
                initializer="zeros",
                autocast=False,
            )
            if total
            else None
        )
        width = sum(self.numeric.values())
        self.kernel = (
            self.add_weight(name="numeric_kernel", shape=(width, self.units), initializer="zeros")
            if width
            else None
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs: Mapping[str, Any]) -> Any:
        """Returns the logits ``[batch, units]``."""
        out = None
        if self.table is not None:
            ids_parts, weight_parts = [], []
            for key, size in self.categorical.items():
                ids = ops.cast(inputs[key], "int32")
                valid = ops.logical_and(ids >= 0, ids < size)
                w = ops.cast(valid, self.compute_dtype)
                if key in self.weighted:
                    w = w * ops.cast(inputs[key + WEIGHTS_SUFFIX], self.compute_dtype)
                if self.sparse_combiner != "sum":
                    total = ops.sum(w if self.sparse_combiner == "mean" else w * w, axis=1)
                    total = total if self.sparse_combiner == "mean" else ops.sqrt(total)
                    w = w / ops.expand_dims(ops.where(total > 0, total, 1.0), 1)
                ids_parts.append(ops.where(valid, ids + self._offsets[key], 0))
                weight_parts.append(w)
            ids = ops.concatenate(ids_parts, axis=1)
            weights = ops.concatenate(weight_parts, axis=1)
            rows = ops.cast(ops.take(self.table, ids, axis=0), self.compute_dtype)
            out = ops.sum(rows * ops.expand_dims(weights, -1), axis=1)
        if self.kernel is not None:
            x = ops.concatenate(
                [ops.cast(inputs[k], self.compute_dtype) for k in self.numeric], axis=1
            )
            dense = ops.matmul(x, ops.cast(self.kernel, self.compute_dtype))
            out = dense if out is None else out + dense
        return out + ops.cast(self.bias, self.compute_dtype)

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, int]:
        return (None, self.units)

    def get_config(self) -> dict[str, Any]:
        """The layer config: input names and sizes only (no vocabularies)."""
        config: dict[str, Any] = super().get_config()
        config.update(
            {
                "categorical": self.categorical,
                "numeric": self.numeric,
                "weighted": list(self.weighted),
                "units": self.units,
                "sparse_combiner": self.sparse_combiner,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="featurepipe")
class LogLoss(keras.metrics.BinaryCrossentropy):
    """Binary log loss that accepts labels of shape ``[batch]`` or ``[batch, 1]``.

    ``keras.metrics.BinaryCrossentropy`` refuses labels of another rank than
    the predictions; the loss accepts them, so a model would train and then
    fail in its metric. This reshapes the labels first.
    """

    def __init__(self, name: str = "log_loss", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """Adds a batch (labels reshaped to the predictions' shape)."""
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))
        return super().update_state(y_true, y_pred, sample_weight=sample_weight)


# -- column helpers ------------------------------------------------------------------------------


def split_columns(specs: ColumnSpecs) -> tuple[ColumnSpecs, ColumnSpecs]:
    """Splits specs into the wide (sparse) and deep (dense) parts of wide-and-deep.

    Categorical columns (hashed, vocabulary, identity, crossed, weighted,
    bucketized) and indicator columns go to the linear part; embedding and
    numeric columns to the DNN part.

    Args:
        specs: the column specs.

    Returns:
        ``(linear_columns, dnn_columns)``.

    Examples:
        >>> from featurepipe.columns import HashedColumn
        >>> wide, deep = split_columns(ColumnSpecs((NumericColumn("x"),
        ...     HashedColumn("c", 10), EmbeddingColumn(HashedColumn("c", 10), 4))))
        >>> wide.names, deep.names
        (('c',), ('x', 'c_embedding'))
    """
    wide = [s for s in specs if isinstance(s, CategoricalSpec | IndicatorColumn)]
    deep = [s for s in specs if isinstance(s, EmbeddingColumn | NumericColumn)]
    return ColumnSpecs(tuple(wide)), ColumnSpecs(tuple(deep))


def merge_columns(*parts: ColumnSpecs | None) -> ColumnSpecs:
    """One spec set of the columns of several parts (the input pipeline's columns).

    A column in two parts appears once; two different columns of one name are
    an error.

    Raises:
        ConfigError: for two different columns with the same name.
    """
    out: dict[str, ColumnSpec] = {}
    for part in parts:
        for spec in part or ():
            if spec.name in out and out[spec.name] != spec:
                raise ConfigError(
                    f"Two different columns are named {spec.name!r}; rename one of them."
                )
            out[spec.name] = spec
    return ColumnSpecs(tuple(out.values()))


def task_of(model: keras.Model) -> str:
    """The task of a canned model, from the name of its output layer.

    ``<task>_head`` (probabilities) or, for a model built with an Estimator
    ``head=``, ``<task>_logits``.

    Raises:
        ConfigError: if the model has no ``<task>_head`` or ``<task>_logits`` layer.
    """
    for task in TASKS:
        for suffix in ("_head", "_logits"):
            try:
                model.get_layer(task + suffix)
            except ValueError:
                continue
            return task
    raise ConfigError(
        "This model has no `binary_head`, `multiclass_head` or `regression_head` layer; "
        "pass `task=` explicitly."
    )


# -- builders ---------------------------------------------------------------------------------


def linear_model(
    columns: ColumnSpecs,
    *,
    task: str | None = None,
    num_classes: int | None = None,
    head: EstimatorHead | None = None,
    sparse_combiner: str = "sum",
    optimizer: Any = None,
    learning_rate: float | None = None,
    mixed_precision: bool | str = False,
    compile: bool = True,
    name: str = "linear",
) -> keras.Model:
    """A linear model (``LinearClassifier`` / ``LinearRegressor``).

    Args:
        columns: resolved column specs; every kind is accepted (an embedding or
            indicator column contributes its categorical column's ids).
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``. Defaults to `None`
            (``head.task``, else `"binary"`).
        num_classes: classes of ``"multiclass"``. Defaults to `None`.
        head: an :class:`~featurepipe.keras.EstimatorHead`: the model then outputs
            **logits** (layer ``"<task>_logits"``, a :class:`HeadLogits`) and is
            compiled with the Estimator's loss (:class:`EstimatorLoss`: example
            weights as ``sample_weight``, the head's ``loss_reduction``) and metrics
            on logits; :func:`~featurepipe.keras.estimator_predictions` turns its
            outputs into the Estimator's prediction dict. Defaults to `None`
            (outputs are probabilities, layer ``"<task>_head"``, Keras' losses).
        sparse_combiner: see :class:`LinearLogits`. Defaults to `"sum"`.
        optimizer: a Keras optimizer or name; `None` gives
            ``SparseOptimizer("ftrl")``. Defaults to `None`.
        learning_rate: of the default optimizer; `None` gives the Estimator's
            ``min(0.2, 1/sqrt(number of columns))``. Defaults to `None`.
        mixed_precision: `True` (``"mixed_float16"``) or a Keras dtype policy name.
            Defaults to `False`.
        compile: compile with the task's loss and metrics. Defaults to `True`.
        name: the model name. Defaults to `"linear"`.

    Returns:
        The model; its inputs are ``model_inputs(columns)``.

    Examples:
        >>> from featurepipe.columns import HashedColumn
        >>> m = linear_model(ColumnSpecs((HashedColumn("c", 10), NumericColumn("x"))))
        >>> m.output_shape
        (None, 1)
    """
    task, units = _task_units(task, num_classes, head)
    policy = _policy(mixed_precision)
    inputs = model_inputs(columns)
    logits = _linear_layer(columns, units, sparse_combiner, policy)(inputs)
    model = keras.Model(inputs, _head(logits, task, units, head), name=name)
    if compile:
        lr = learning_rate or min(0.2, 1.0 / math.sqrt(max(len(columns), 1)))
        opt = optimizer or SparseOptimizer("ftrl", lr)
        _compile(model, task, opt, policy, head)
    return model


def dnn_model(
    columns: ColumnSpecs,
    hidden_units: Sequence[int] = (64, 32),
    *,
    task: str | None = None,
    num_classes: int | None = None,
    head: EstimatorHead | None = None,
    activation: str = "relu",
    dropout: float | None = None,
    batch_norm: bool | str = False,
    optimizer: Any = None,
    learning_rate: float = 0.05,
    mixed_precision: bool | str = False,
    compile: bool = True,
    name: str = "dnn",
) -> keras.Model:
    """A deep model (``DNNClassifier`` / ``DNNRegressor``) on dense columns.

    Args:
        columns: resolved numeric, bucketized, embedding and indicator columns.
        hidden_units: the width of each hidden layer. Defaults to `(64, 32)`.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``. Defaults to `None`
            (``head.task``, else `"binary"`).
        num_classes: classes of ``"multiclass"``. Defaults to `None`.
        head: an :class:`~featurepipe.keras.EstimatorHead`: the model then outputs
            **logits** (layer ``"<task>_logits"``, a :class:`HeadLogits`) and is
            compiled with the Estimator's loss (:class:`EstimatorLoss`: example
            weights as ``sample_weight``, the head's ``loss_reduction``) and metrics
            on logits; :func:`~featurepipe.keras.estimator_predictions` turns its
            outputs into the Estimator's prediction dict. Defaults to `None`
            (outputs are probabilities, layer ``"<task>_head"``, Keras' losses).
        activation: the hidden layers' activation. Defaults to `"relu"`.
        dropout: drop rate after each hidden layer, or `None`. Defaults to `None`.
        batch_norm: batch normalization before each activation; ``"estimator"``:
            after the activation and dropout, as the canned Estimators (their
            hidden layers keep a bias; momentum 0.999, as ``featurepipe migrate
            estimator`` needs). Defaults to `False`.
        optimizer: a Keras optimizer or name; `None` gives
            ``SparseOptimizer("adagrad", learning_rate)``. Defaults to `None`.
        learning_rate: of the default optimizer. Defaults to `0.05` (the Estimator's).
        mixed_precision: `True` (``"mixed_float16"``) or a dtype policy name.
            Defaults to `False`.
        compile: compile with the task's loss and metrics. Defaults to `True`.
        name: the model name. Defaults to `"dnn"`.

    Returns:
        The model.

    Raises:
        ConfigError: for bare categorical columns, bad sizes or rates.
    """
    task, units = _task_units(task, num_classes, head)
    policy = _policy(mixed_precision)
    inputs = model_inputs(columns)
    logits = _dnn_logits(
        inputs, columns, hidden_units, units, activation, dropout, batch_norm, policy
    )
    model = keras.Model(inputs, _head(logits, task, units, head), name=name)
    if compile:
        _compile(model, task, optimizer or SparseOptimizer("adagrad", learning_rate), policy, head)
    return model


def wide_and_deep_model(
    linear_columns: ColumnSpecs,
    dnn_columns: ColumnSpecs,
    dnn_hidden_units: Sequence[int] = (64, 32),
    *,
    task: str | None = None,
    num_classes: int | None = None,
    head: EstimatorHead | None = None,
    activation: str = "relu",
    dropout: float | None = None,
    batch_norm: bool | str = False,
    linear_optimizer: str = "ftrl",
    linear_learning_rate: float | None = None,
    dnn_optimizer: str = "adagrad",
    dnn_learning_rate: float = 0.05,
    sparse_combiner: str = "sum",
    optimizer: Any = None,
    mixed_precision: bool | str = False,
    compile: bool = True,
    name: str = "wide_and_deep",
) -> keras.Model:
    """A jointly trained linear + DNN model (``DNNLinearCombinedClassifier`` / ``Regressor``).

    The logits of the linear part (layer ``"linear"``) and the DNN part are
    added. The default optimizer is a :class:`SparseOptimizer` that updates the
    linear part with ``linear_optimizer`` and the DNN part with
    ``dnn_optimizer``, each with its learning rate, touching only the embedding
    rows each batch looks up.

    Args:
        linear_columns: columns of the linear part (see :func:`linear_model`).
        dnn_columns: columns of the DNN part (see :func:`dnn_model`).
        dnn_hidden_units: the DNN's hidden layer widths. Defaults to `(64, 32)`.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``. Defaults to `None`
            (``head.task``, else `"binary"`).
        num_classes: classes of ``"multiclass"``. Defaults to `None`.
        head: an :class:`~featurepipe.keras.EstimatorHead`: the model then outputs
            **logits** (layer ``"<task>_logits"``, a :class:`HeadLogits`) and is
            compiled with the Estimator's loss (:class:`EstimatorLoss`: example
            weights as ``sample_weight``, the head's ``loss_reduction``) and metrics
            on logits; :func:`~featurepipe.keras.estimator_predictions` turns its
            outputs into the Estimator's prediction dict. Defaults to `None`
            (outputs are probabilities, layer ``"<task>_head"``, Keras' losses).
        activation: hidden activation. Defaults to `"relu"`.
        dropout: hidden drop rate or `None`. Defaults to `None`.
        batch_norm: batch normalization in the DNN (see :func:`dnn_model`). Defaults
            to `False`.
        linear_optimizer: ``"ftrl"``, ``"sgd"``, ``"adagrad"`` or ``"adam"``.
            Defaults to `"ftrl"`.
        linear_learning_rate: `None` gives ``min(0.2, 1/sqrt(linear columns))``.
            Defaults to `None`.
        dnn_optimizer: the DNN part's rule. Defaults to `"adagrad"`.
        dnn_learning_rate: the DNN part's rate. Defaults to `0.05`.
        sparse_combiner: the linear part's combiner. Defaults to `"sum"`.
        optimizer: any Keras optimizer instead of the two above. Defaults to `None`.
        mixed_precision: `True` (``"mixed_float16"``) or a dtype policy name.
            Defaults to `False`.
        compile: compile with the task's loss and metrics. Defaults to `True`.
        name: the model name. Defaults to `"wide_and_deep"`.

    Returns:
        The model; its inputs are ``model_inputs(merge_columns(linear_columns, dnn_columns))``.

    Raises:
        ConfigError: for empty parts or bad arguments.

    Examples:
        >>> from featurepipe.columns import HashedColumn
        >>> c = HashedColumn("c", 10)
        >>> m = wide_and_deep_model(ColumnSpecs((c,)),
        ...     ColumnSpecs((EmbeddingColumn(c, 4), NumericColumn("x"))), (8,))
        >>> sorted(m.input), m.optimizer.wide_algorithm
        (['c', 'c_embedding', 'x'], 'ftrl')
    """
    if not len(linear_columns) or not len(dnn_columns):
        raise ConfigError(
            "wide_and_deep_model needs both `linear_columns` and `dnn_columns`; use "
            "linear_model or dnn_model for one part."
        )
    task, units = _task_units(task, num_classes, head)
    policy = _policy(mixed_precision)
    inputs = model_inputs(merge_columns(linear_columns, dnn_columns))
    wide = _linear_layer(linear_columns, units, sparse_combiner, policy)(inputs)
    deep = _dnn_logits(
        inputs, dnn_columns, dnn_hidden_units, units, activation, dropout, batch_norm, policy
    )
    logits = keras.layers.Add(name="logits", dtype=policy)([wide, deep])
    model = keras.Model(inputs, _head(logits, task, units, head), name=name)
    if compile:
        lin_lr = linear_learning_rate or min(0.2, 1.0 / math.sqrt(len(linear_columns)))
        opt = optimizer or SparseOptimizer(
            dnn_optimizer,
            dnn_learning_rate,
            wide_algorithm=linear_optimizer,
            wide_learning_rate=lin_lr,
            wide_layers=("linear",),
        )
        _compile(model, task, opt, policy, head)
    return model


# -- private -----------------------------------------------------------------------------------


def _task_units(
    task: str | None, num_classes: int | None, head: EstimatorHead | None
) -> tuple[str, int]:
    """The task and the logits' width, from the arguments or the head."""
    if head is None:
        task = task or "binary"
        return task, _units(task, num_classes)
    if task is not None and task != head.task:
        raise ConfigError(
            f"`task={task!r}` disagrees with the head's task {head.task!r}; leave `task` unset."
        )
    if num_classes is not None and num_classes != head.n_classes:
        raise ConfigError(
            f"`num_classes={num_classes}` disagrees with the head's n_classes "
            f"{head.n_classes}; leave `num_classes` unset."
        )
    return head.task, head.logits_dimension


def _units(task: str, num_classes: int | None) -> int:
    if task not in TASKS:
        raise ConfigError(
            f"Unknown value for `task`. Allowed values are: {TASKS}. Received: task={task!r}"
        )
    if task == "multiclass":
        if num_classes is None or num_classes < 2:
            raise ConfigError(
                "`num_classes` must be >= 2 for task='multiclass'. "
                f"Received: num_classes={num_classes!r}"
            )
        return int(num_classes)
    return 1


def _policy(mixed_precision: bool | str) -> str | None:
    if mixed_precision is True:
        return "mixed_float16"
    if not mixed_precision:
        return None
    return str(mixed_precision)


def _linear_layer(
    columns: ColumnSpecs, units: int, combiner: str, policy: str | None
) -> LinearLogits:
    categorical: dict[str, int] = {}
    numeric: dict[str, int] = {}
    weighted: list[str] = []
    for spec in columns:
        if isinstance(spec, NumericColumn):
            numeric[spec.name] = spec.size
            continue
        cat = (
            spec.categorical_column if isinstance(spec, EmbeddingColumn | IndicatorColumn) else spec
        )
        if not isinstance(cat, CategoricalSpec):
            raise ConfigError(f"Unsupported column in the linear part: {spec!r}")
        categorical[spec.name] = cat.num_ids
        if isinstance(cat, WeightedColumn):
            weighted.append(spec.name)
    return LinearLogits(
        categorical, numeric, weighted, units, combiner, name="linear", dtype=policy
    )


def _dnn_logits(
    inputs: Mapping[str, Any],
    columns: ColumnSpecs,
    hidden_units: Sequence[int],
    units: int,
    activation: str,
    dropout: float | None,
    batch_norm: bool | str,
    policy: str | None,
) -> Any:
    if not hidden_units or any(int(u) < 1 for u in hidden_units):
        raise ConfigError(
            f"`hidden_units` must be positive widths. Received: hidden_units={list(hidden_units)}"
        )
    if batch_norm not in (False, True, "estimator"):
        raise ConfigError(
            f"`batch_norm` must be True, False or 'estimator'. Received: batch_norm={batch_norm!r}"
        )
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise ConfigError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
    for spec in columns:
        if isinstance(spec, CategoricalSpec) and not isinstance(spec, BucketizedColumn):
            raise ConfigError(
                f"Column {spec.name!r} is categorical and has no dense form for the DNN; wrap "
                "it in EmbeddingColumn(...) or IndicatorColumn(...). "
                f"Received: {type(spec).__name__}"
            )
    # DenseFeatures stays float32 (its lookups mix the table's and the weights' dtypes);
    # the Dense layers below cast its output to the policy's compute dtype.
    x = DenseFeatures(columns, name="dnn_features")(inputs)
    # batch_norm="estimator": the canned Estimators' order (tensorflow/estimator
    # canned/dnn.py, _DNNModel.call): Dense with bias -> activation -> dropout ->
    # BatchNormalization(momentum=0.999, epsilon=0.001), so migrated weights fit.
    estimator_bn = batch_norm == "estimator"
    for i, width in enumerate(hidden_units):
        x = keras.layers.Dense(
            int(width),
            use_bias=estimator_bn or not batch_norm,
            name=f"dnn_hidden_{i}",
            dtype=policy,
        )(x)
        if batch_norm and not estimator_bn:
            x = keras.layers.BatchNormalization(name=f"dnn_batch_norm_{i}", dtype=policy)(x)
        x = keras.layers.Activation(activation, name=f"dnn_activation_{i}", dtype=policy)(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dnn_dropout_{i}", dtype=policy)(x)
        if estimator_bn:
            x = keras.layers.BatchNormalization(
                momentum=0.999, epsilon=0.001, name=f"dnn_batch_norm_{i}", dtype=policy
            )(x)
    return keras.layers.Dense(units, name="dnn_logits", dtype=policy)(x)


def _head(logits: Any, task: str, units: int, head: EstimatorHead | None = None) -> Any:
    if head is not None:
        return HeadLogits(head, name=f"{task}_logits")(logits)
    activation = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}[task]
    return keras.layers.Activation(activation, name=f"{task}_head", dtype="float32")(logits)


def _compile(
    model: keras.Model,
    task: str,
    optimizer: Any,
    policy: str | None,
    head: EstimatorHead | None = None,
) -> None:
    weighted_metrics: list[Any] | None = None
    loss: Any
    metrics: list[Any]
    if head is not None:
        # The Estimator's loss on logits; its metrics are weighted by the example weights.
        loss = EstimatorLoss(head.task, head.loss_reduction)
        metrics = head_metrics(head)
        if head.weight_column is not None:
            metrics, weighted_metrics = [], metrics
    elif task == "binary":
        loss = "binary_crossentropy"
        metrics = [
            keras.metrics.AUC(name="auc"),
            keras.metrics.BinaryAccuracy(name="accuracy"),
            LogLoss(name="log_loss"),
        ]
    elif task == "multiclass":
        loss = "sparse_categorical_crossentropy"
        metrics = [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseCategoricalCrossentropy(name="log_loss"),
        ]
    else:
        loss = "mean_squared_error"
        metrics = [
            keras.metrics.RootMeanSquaredError(name="rmse"),
            keras.metrics.MeanAbsoluteError(name="mae"),
        ]
    if isinstance(optimizer, str):
        optimizer = keras.optimizers.get(optimizer)
    if policy == "mixed_float16" and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    # TensorFlow: XLA cannot compile the sparse updates (tf.unique has a data-dependent
    # shape). JAX / PyTorch get dense gradients: Keras' default (jax.jit on JAX).
    jit: Any = False if keras.backend.backend() == "tensorflow" else "auto"
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=metrics,
        weighted_metrics=weighted_metrics,
        jit_compile=jit,
    )
