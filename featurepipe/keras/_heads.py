"""The Estimator's heads on Keras 3: loss, weights, label vocabulary, prediction keys.

A canned ``tf.estimator`` model is a network that computes **logits** plus a
*head* that turns them into a training loss and a prediction dict. This module
gives featurepipe's Keras models the same head, backend-neutral
(``keras.ops`` only, no TensorFlow):

- :class:`EstimatorHead`: ``task`` (``"binary"``, ``"multiclass"``,
  ``"regression"``), ``n_classes``, ``label_vocabulary``, ``weight_column``,
  ``loss_reduction`` and ``label_dimension``, as the Estimator's
  ``BinaryClassHead`` / ``MultiClassHead`` / ``RegressionHead`` take them.
- :class:`EstimatorLoss`: the head's training loss as a Keras loss on logits
  (the example weights arrive as Keras' ``sample_weight``).
- :func:`estimator_predictions`: the Estimator's prediction dict from logits
  (``logits``, ``logistic``, ``probabilities``, ``class_ids``,
  ``all_class_ids``; ``predictions`` for regression). The string keys
  ``classes`` / ``all_classes`` exist only where strings do: the TensorFlow
  serving export (:func:`~featurepipe.keras.export_serving`) adds them; here
  ``class_names_of(head)`` gives the strings for host-side use.
- :class:`HeadLogits`: the output layer of a model built with ``head=``: the
  identity on the logits, carrying the head in its config (so a saved
  ``.keras`` model and the export know it; see :func:`head_of`).

Semantics, from tensorflow/estimator (``tensorflow_estimator/python/estimator/
head/binary_class_head.py``, ``multi_class_head.py``, ``regression_head.py``,
``base_head.py``; TF1: ``canned/head.py``):

- per-example unweighted loss: binary = ``sigmoid_cross_entropy_with_logits``
  (shape ``[batch, 1]``), multiclass = sparse softmax cross-entropy (expanded
  to ``[batch, 1]``), regression = squared error per label dimension
  (``[batch, label_dimension]``);
- weights (``weight_column``, shape ``[batch]`` or ``[batch, 1]``) multiply it;
- the reduction over the weighted losses (V2 heads call
  ``compute_weighted_loss`` of tf_keras' ``losses_utils``; TF1 heads
  ``tf.compat.v1.losses.compute_weighted_loss``):

  - ``"sum_over_batch_size"`` (V2 default): their sum divided by the number
    of loss *elements* (``batch`` for classification, ``batch *
    label_dimension`` for regression), whatever the weights;
  - ``"sum"`` (the TF1 canned estimators' default, ``canned/head.py``): their sum;
  - ``"sum_by_nonzero_weights"`` (TF1 only; ``compute_weighted_loss``'s own
    default): their sum divided by the number of elements whose (broadcast)
    weight is non-zero;
  - ``"mean"`` (TF1 only): their sum divided by the sum of the (broadcast) weights.

  Each divides "safely": 0 when the divisor is 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
from keras import ops

from featurepipe.errors import ConfigError

__all__ = [
    "LOSS_REDUCTIONS",
    "PREDICTION_KEYS",
    "EstimatorHead",
    "EstimatorLoss",
    "HeadLogits",
    "class_names_of",
    "estimator_predictions",
    "head_metrics",
    "head_of",
]

#: The reductions :class:`EstimatorLoss` implements (names as in ``tf.losses.Reduction``
#: and ``tf.compat.v1.losses.Reduction``, lower case; upper case is accepted too).
LOSS_REDUCTIONS = ("sum_over_batch_size", "sum", "sum_by_nonzero_weights", "mean")
_REDUCTION_ALIASES = {
    # tf.losses.Reduction (Keras 2) and the values of tf.compat.v1.losses.Reduction,
    # as an Estimator's config or checkpoint records them.
    "auto": "sum_over_batch_size",
    "sum_over_nonzero_weights": "sum_by_nonzero_weights",
    "weighted_sum": "sum",
    "weighted_sum_over_batch_size": "sum_over_batch_size",
    "weighted_sum_by_nonzero_weights": "sum_by_nonzero_weights",
    "weighted_mean": "mean",
}

#: The prediction keys of each task's head, in the Estimator's order
#: (``PredictionKeys`` in tensorflow/estimator ``canned/prediction_keys.py``).
PREDICTION_KEYS: dict[str, tuple[str, ...]] = {
    "binary": (
        "logits",
        "logistic",
        "probabilities",
        "class_ids",
        "classes",
        "all_class_ids",
        "all_classes",
    ),
    "multiclass": (
        "logits",
        "probabilities",
        "class_ids",
        "classes",
        "all_class_ids",
        "all_classes",
    ),
    "regression": ("predictions",),
}
_TASKS = ("binary", "multiclass", "regression")
_STRING_KEYS = ("classes", "all_classes")


def _reduction(value: str) -> str:
    name = str(value).lower()
    name = _REDUCTION_ALIASES.get(name, name)
    if name not in LOSS_REDUCTIONS:
        raise ConfigError(
            f"Unknown value for `loss_reduction`. Allowed values are: {LOSS_REDUCTIONS} "
            f"(or their upper-case tf.losses.Reduction names). Received: loss_reduction={value!r}"
        )
    return name


@dataclass(frozen=True)
class EstimatorHead:
    """An Estimator head: how logits become a loss and predictions.

    Args:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        n_classes: classes of a classifier (2 for ``"binary"``, which is the
            default there; >= 3 for ``"multiclass"``). `None` for regression.
        label_vocabulary: the class names in class-id order; labels are then
            strings (``tf.Example`` bytes) mapped to ids, an unknown one is an
            error, and ``classes`` are these names. Defaults to `None` (labels
            are class ids; ``classes`` are the ids as strings).
        weight_column: the feature holding each example's weight (a float or
            int scalar); it multiplies the example's loss. Defaults to `None`.
        loss_reduction: see the module docstring. Defaults to
            `"sum_over_batch_size"` (the V2 heads' default; TF1 canned
            estimators used `"sum"`).
        label_dimension: regression outputs per example. Defaults to `1`.

    Raises:
        ConfigError: for a bad task, class count, vocabulary or reduction.

    Examples:
        >>> head = EstimatorHead("multiclass", n_classes=3, label_vocabulary=("a", "b", "c"))
        >>> head.logits_dimension, head.loss_reduction
        (3, 'sum_over_batch_size')
        >>> EstimatorHead("binary", loss_reduction="SUM").loss_reduction
        'sum'
    """

    task: str
    n_classes: int | None = None
    label_vocabulary: tuple[str, ...] | None = None
    weight_column: str | None = None
    loss_reduction: str = "sum_over_batch_size"
    label_dimension: int = 1

    def __post_init__(self) -> None:
        if self.task not in _TASKS:
            raise ConfigError(
                f"Unknown value for `task`. Allowed values are: {_TASKS}. "
                f"Received: task={self.task!r}"
            )
        set_ = object.__setattr__
        set_(self, "loss_reduction", _reduction(self.loss_reduction))
        if self.task == "regression":
            if self.n_classes is not None or self.label_vocabulary is not None:
                raise ConfigError(
                    "A regression head has no `n_classes` or `label_vocabulary`. Received: "
                    f"n_classes={self.n_classes!r}, label_vocabulary={self.label_vocabulary!r}"
                )
            if int(self.label_dimension) < 1:
                raise ConfigError(
                    "`label_dimension` must be >= 1. "
                    f"Received: label_dimension={self.label_dimension}"
                )
            set_(self, "label_dimension", int(self.label_dimension))
        else:
            if self.label_dimension != 1:
                raise ConfigError("`label_dimension` is for regression heads only.")
            n = self.n_classes
            if n is None:
                n = 2 if self.task == "binary" else None
            if self.task == "binary" and n != 2:
                raise ConfigError(f"A binary head has n_classes=2. Received: n_classes={n!r}")
            if self.task == "multiclass" and (n is None or int(n) < 3):
                raise ConfigError(
                    "A multiclass head needs n_classes >= 3 (n_classes=2 is the binary "
                    f"head, as in the Estimator). Received: n_classes={n!r}"
                )
            set_(self, "n_classes", int(n))  # type: ignore[arg-type]
            if self.label_vocabulary is not None:
                vocab = tuple(str(v) for v in self.label_vocabulary)
                if len(vocab) != n:
                    raise ConfigError(
                        f"`label_vocabulary` must name the {n} classes. "
                        f"Received: label_vocabulary={list(vocab)!r}"
                    )
                if len(set(vocab)) != len(vocab):
                    raise ConfigError(
                        "`label_vocabulary` has duplicates. "
                        f"Received: label_vocabulary={list(vocab)!r}"
                    )
                set_(self, "label_vocabulary", vocab)
        if self.weight_column is not None and not self.weight_column:
            raise ConfigError("`weight_column` must be a feature name or None.")

    @classmethod
    def classifier(cls, n_classes: int = 2, **kwargs: Any) -> EstimatorHead:
        """The head of a ``*Classifier`` with ``n_classes`` (2: binary, more: multiclass).

        Examples:
            >>> EstimatorHead.classifier(4).task
            'multiclass'
        """
        return cls("binary" if n_classes == 2 else "multiclass", n_classes=n_classes, **kwargs)

    @property
    def logits_dimension(self) -> int:
        """Width of the logits: 1 for binary, ``n_classes`` for multiclass, ``label_dimension``."""
        if self.task == "multiclass":
            return int(self.n_classes or 0)
        return self.label_dimension if self.task == "regression" else 1

    @property
    def prediction_keys(self) -> tuple[str, ...]:
        """The Estimator's prediction keys of this head."""
        return PREDICTION_KEYS[self.task]

    def get_config(self) -> dict[str, Any]:
        """A JSON-able config (:meth:`from_config` inverts it)."""
        return {
            "task": self.task,
            "n_classes": self.n_classes,
            "label_vocabulary": list(self.label_vocabulary) if self.label_vocabulary else None,
            "weight_column": self.weight_column,
            "loss_reduction": self.loss_reduction,
            "label_dimension": self.label_dimension,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EstimatorHead:
        """The head of a :meth:`get_config` dict."""
        vocab = config.get("label_vocabulary")
        return cls(
            task=config["task"],
            n_classes=config.get("n_classes"),
            label_vocabulary=tuple(vocab) if vocab else None,
            weight_column=config.get("weight_column"),
            loss_reduction=config.get("loss_reduction", "sum_over_batch_size"),
            label_dimension=int(config.get("label_dimension", 1)),
        )


def _unweighted_loss(task: str, labels: Any, logits: Any) -> Any:
    """Per-element loss ``[batch, 1]`` (classification) or ``[batch, label_dimension]``."""
    logits = ops.convert_to_tensor(logits, "float32")
    batch = ops.shape(logits)[0]
    if task == "binary":
        z = ops.reshape(ops.cast(labels, "float32"), (batch, 1))
        # sigmoid_cross_entropy_with_logits' stable form: max(x, 0) - x z + log(1 + exp(-|x|)).
        return ops.maximum(logits, 0.0) - logits * z + ops.log1p(ops.exp(-ops.abs(logits)))
    if task == "multiclass":
        ids = ops.reshape(ops.cast(labels, "int32"), (batch, 1))
        picked = ops.take_along_axis(logits, ids, axis=1)
        return ops.expand_dims(ops.logsumexp(logits, axis=1), 1) - picked
    y = ops.reshape(ops.cast(labels, "float32"), ops.shape(logits))
    return ops.square(y - logits)


def _reduce(losses: Any, weights: Any, reduction: str) -> Any:
    if weights is None:
        weighted = losses
        weights_b = ops.ones_like(losses)
    else:
        w = ops.cast(weights, "float32")
        w = ops.reshape(w, (ops.shape(losses)[0], 1))  # [batch] or [batch, 1]
        weighted = losses * w
        weights_b = w * ops.ones_like(losses)  # broadcast to the loss elements
    total = ops.sum(weighted)
    if reduction == "sum":
        return total
    if reduction == "sum_over_batch_size":
        denom = ops.cast(ops.size(losses), "float32")
    elif reduction == "sum_by_nonzero_weights":
        denom = ops.sum(ops.cast(ops.not_equal(weights_b, 0.0), "float32"))
    else:  # mean
        denom = ops.sum(weights_b)
    return ops.where(denom > 0, total / ops.where(denom > 0, denom, 1.0), 0.0)


@keras.saving.register_keras_serializable(package="featurepipe")
class EstimatorLoss(keras.losses.Loss):  # type: ignore[misc]
    """The Estimator head's training loss on logits, as a Keras loss.

    ``y_true`` are class ids (``[batch]`` or ``[batch, 1]``; string labels are
    mapped to ids in the input pipeline) or regression targets;
    ``y_pred`` the logits; ``sample_weight`` the example weights
    (``[batch]`` or ``[batch, 1]``). The reduction is the head's own (see the
    module docstring), not Keras'.

    Args:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        loss_reduction: one of :data:`LOSS_REDUCTIONS`. Defaults to `"sum_over_batch_size"`.
        name: the loss name. Defaults to `"estimator_loss"`.

    Examples:
        >>> import numpy as np
        >>> loss = EstimatorLoss("regression", "sum_over_batch_size")
        >>> float(loss(np.array([[43.0], [44.0]]), np.array([[45.0], [41.0]])))
        6.5
        >>> float(EstimatorLoss("regression", "SUM")(
        ...     np.array([[43.0], [44.0]]), np.array([[45.0], [41.0]]), np.array([1.0, 2.0])))
        22.0
    """

    def __init__(
        self,
        task: str,
        loss_reduction: str = "sum_over_batch_size",
        name: str = "estimator_loss",
        **kwargs: Any,
    ) -> None:
        kwargs.pop("reduction", None)
        super().__init__(name=name, reduction="sum", **kwargs)
        if task not in _TASKS:
            raise ConfigError(
                f"Unknown value for `task`. Allowed values are: {_TASKS}. Received: task={task!r}"
            )
        self.task = task
        self.loss_reduction = _reduction(loss_reduction)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """The reduced, weighted loss (a float32 scalar)."""
        losses = _unweighted_loss(self.task, y_true, y_pred)
        return _reduce(losses, sample_weight, self.loss_reduction)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """The unweighted, unreduced loss elements."""
        return _unweighted_loss(self.task, y_true, y_pred)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task, "loss_reduction": self.loss_reduction}


def estimator_predictions(
    logits: Any, head: EstimatorHead, keys: Sequence[str] | None = None
) -> dict[str, Any]:
    """The Estimator's prediction dict of a batch of logits, with ``keras.ops``.

    As the heads' ``predictions()``: binary ``logistic`` = sigmoid,
    ``probabilities`` = softmax of ``[0, logit]``, ``class_ids`` = its argmax
    (class 1 when the logit is > 0); multiclass ``probabilities`` = softmax,
    ``class_ids`` = argmax (``[batch, 1]``); ``all_class_ids`` = ``0..n-1``
    per row (int32); regression ``predictions`` = the logits. The string keys
    ``classes`` and ``all_classes`` are left out (Keras on JAX or torch holds
    no strings): the TensorFlow serving export adds them, and
    :func:`class_names_of` gives the names of the class ids on the host.

    Args:
        logits: ``[batch, logits_dimension]`` logits (a model built with ``head=``
            predicts these).
        head: the head.
        keys: the keys wanted. Defaults to `None` (every numeric key).

    Returns:
        ``{key: tensor}``; ``class_ids`` are int64 (int32 where the backend has no int64).

    Raises:
        ConfigError: for a key the head does not have or the logits' width.

    Examples:
        >>> import numpy as np
        >>> p = estimator_predictions(np.array([[-1.0], [2.0]]), EstimatorHead("binary"))
        >>> sorted(p)
        ['all_class_ids', 'class_ids', 'logistic', 'logits', 'probabilities']
        >>> keras.ops.convert_to_numpy(p["class_ids"]).ravel().tolist()
        [0, 1]
    """
    numeric = tuple(k for k in head.prediction_keys if k not in _STRING_KEYS)
    wanted = tuple(keys) if keys is not None else numeric
    for key in wanted:
        if key not in numeric:
            raise ConfigError(
                f"Unknown prediction key {key!r} for a {head.task} head; it has {numeric}"
                + (
                    " (the string keys 'classes' and 'all_classes' come from the TensorFlow "
                    "serving export, or class_names_of(head))."
                    if key in _STRING_KEYS
                    else "."
                )
            )
    logits = ops.cast(ops.convert_to_tensor(logits), "float32")
    width = logits.shape[-1]
    if width is not None and int(width) != head.logits_dimension:
        raise ConfigError(
            f"The logits have width {width}; this {head.task} head needs {head.logits_dimension}."
        )
    if head.task == "regression":
        return {"predictions": logits} if "predictions" in wanted else {}
    out: dict[str, Any] = {}
    if "logits" in wanted:
        out["logits"] = logits
    if head.task == "binary":
        if "logistic" in wanted:
            out["logistic"] = ops.sigmoid(logits)
        two = ops.concatenate([ops.zeros_like(logits), logits], axis=-1)
    else:
        two = logits
    if "probabilities" in wanted:
        out["probabilities"] = ops.softmax(two, axis=-1)
    if "class_ids" in wanted:
        ids = ops.cast(ops.argmax(two, axis=-1), _id_dtype())
        out["class_ids"] = ops.expand_dims(ids, -1)
    if "all_class_ids" in wanted:
        n = int(head.n_classes or 2)
        row = ops.expand_dims(ops.arange(n, dtype="int32"), 0)
        out["all_class_ids"] = ops.tile(row, (ops.shape(logits)[0], 1))
    return out


def _id_dtype() -> str:
    """int64, or int32 on JAX without 64-bit types (where int64 would be truncated)."""
    if keras.backend.backend() == "jax":
        import jax

        return "int64" if jax.config.read("jax_enable_x64") else "int32"
    return "int64"


def class_names_of(head: EstimatorHead) -> list[str]:
    """The ``classes`` strings of each class id: the vocabulary, or the ids as strings.

    Examples:
        >>> class_names_of(EstimatorHead("binary"))
        ['0', '1']
    """
    if head.task == "regression":
        raise ConfigError("A regression head has no classes.")
    if head.label_vocabulary is not None:
        return list(head.label_vocabulary)
    return [str(i) for i in range(int(head.n_classes or 2))]


@keras.saving.register_keras_serializable(package="featurepipe")
class HeadLogits(keras.layers.Layer):  # type: ignore[misc]
    """The output layer of a model with an Estimator head: the logits, as they are.

    Computes in float32 (also under mixed precision) and keeps the head in its
    config, so :func:`head_of` finds it in a built or reloaded model.

    Args:
        head: the head, or its config dict.
        **kwargs: base layer arguments.
    """

    def __init__(self, head: EstimatorHead | Mapping[str, Any], **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.head = head if isinstance(head, EstimatorHead) else EstimatorHead.from_config(head)

    def call(self, logits: Any) -> Any:
        return ops.cast(logits, self.compute_dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config["head"] = self.head.get_config()
        return config


def head_of(model: keras.Model) -> EstimatorHead | None:
    """The Estimator head of a model built with ``head=``, or `None`.

    Examples:
        >>> x = keras.Input((2,))
        >>> m = keras.Model(x, HeadLogits(EstimatorHead("binary"), name="binary_logits")(
        ...     keras.layers.Dense(1)(x)))
        >>> head_of(m).task
        'binary'
    """
    for layer in model.layers:
        if isinstance(layer, HeadLogits):
            return layer.head
    return None


def head_metrics(head: EstimatorHead) -> list[Any]:
    """Keras metrics on logits for a head (weighted by the example weights in ``fit``).

    Binary: AUC, accuracy (threshold 0.5 on the probability), log loss;
    multiclass: accuracy, log loss; regression: RMSE, MAE (for
    ``label_dimension`` 1, the Estimator's ``average_loss`` is the MSE).
    """
    if head.task == "binary":
        return [
            keras.metrics.AUC(name="auc", from_logits=True),
            keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0),
            keras.metrics.BinaryCrossentropy(name="log_loss", from_logits=True),
        ]
    if head.task == "multiclass":
        return [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseCategoricalCrossentropy(name="log_loss", from_logits=True),
        ]
    return [
        keras.metrics.RootMeanSquaredError(name="rmse"),
        keras.metrics.MeanAbsoluteError(name="mae"),
    ]
