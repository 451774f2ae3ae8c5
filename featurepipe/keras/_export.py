"""Serving export: a SavedModel whose ``serving_default`` takes serialized ``tf.Example``.

What TensorFlow Serving and the Estimator exporters expect: one input,
``examples`` (``tf.string``, shape ``[None]``, one serialized ``tf.Example``
per row). The signature parses the batch with the columns' parse spec (or the
schema's, for the features the columns read), runs
:class:`~featurepipe.keras.ColumnTransform` (hashing, vocabulary
lookups and crosses, with the lookup tables saved in the SavedModel), runs the
model and returns named outputs:

- ``"binary"``: ``logistic`` (``[batch, 1]``, the probability of class 1),
  ``probabilities`` (``[batch, 2]``), ``class_ids`` (int64 ``[batch, 1]``,
  threshold 0.5) and ``classes`` (string ``[batch, 1]``);
- ``"multiclass"``: ``probabilities`` (``[batch, num_classes]``), ``class_ids``
  and ``classes`` (the most probable class);
- ``"regression"``: ``predictions`` (``[batch, 1]``).

``classes`` are the class names passed to :func:`export_serving`, or the class
ids as strings.

**A model with an Estimator head** (built with ``head=``, so it outputs logits):
``serving_default`` returns the head's whole prediction dict instead — the
Estimator's ``predict`` outputs (:func:`~featurepipe.keras.estimator_predictions`
plus the strings ``classes`` and ``all_classes``, from the head's
``label_vocabulary`` or the class ids).

**The Estimator's serving contract** (``signatures="estimator"``): the
SignatureDefs that ``Estimator.export_saved_model`` writes with a parsing
serving input receiver (``build_parsing_serving_input_receiver_fn``), so a
TensorFlow Serving client of the Estimator keeps working unchanged. Which
signatures each head exports comes from tensorflow/estimator
``head/binary_class_head.py``, ``head/multi_class_head.py``,
``head/regression_head.py`` (``create_estimator_spec``, PREDICT mode) and
TensorFlow's ``saved_model/model_utils/export_output.py`` /
``signature_def_utils_impl.py`` (``ClassificationOutput``,
``RegressionOutput``, ``PredictOutput``):

========================  ==========================  ===========  ==========================
signature                 heads                       input        outputs
========================  ==========================  ===========  ==========================
``serving_default``       binary, multiclass          ``inputs``   as ``classification``
``serving_default``       regression                  ``inputs``   as ``regression``
``classification``        binary, multiclass          ``inputs``   ``classes`` (string
                                                                   ``[batch, n_classes]``:
                                                                   every class name, tiled),
                                                                   ``scores`` (probabilities)
``regression``            binary (``logistic``),      ``inputs``   ``outputs`` (float
                          regression (predictions)                 ``[batch, 1]``)
``predict``               all                         ``examples`` the prediction dict
========================  ==========================  ===========  ==========================

Inputs are serialized ``tf.Example`` strings of shape ``[None]``; the
``method_name`` of each SignatureDef is TensorFlow Serving's
(``tensorflow/serving/classify``, ``.../regress``, ``.../predict``) so its
Classify and Regress APIs accept them. A model without a head exports the
Estimator contract too: its logits are the input of its ``<task>_head`` layer,
and its head is ``task`` with ``class_names`` as the vocabulary.

**Requests with missing or malformed features.** A categorical feature that a
request leaves out gives no ids (a zero embedding, no linear weight), exactly as
in training; a numeric feature that is left out takes its column's
``default_value`` (or the schema default). These never fail. The signature
raises ``tf.errors.InvalidArgumentError`` (a failed request with a message;
TensorFlow Serving answers it with status ``INVALID_ARGUMENT``; the process and
later requests are unaffected) when:

- a numeric feature without a default is missing
  (``Feature: x (data type: float) is required but could not be found``);
- a feature has the wrong kind, e.g. a string where a float is expected
  (``Key: x ... Data types don't match``);
- a numeric feature has the wrong number of values;
- an input string is not a serialized ``tf.Example`` (``Could not parse example input``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, cast

import keras
import tensorflow as tf

from featurepipe._version import __version__
from featurepipe.columns import ColumnSpecs
from featurepipe.errors import ConfigError
from featurepipe.example import Schema
from featurepipe.keras._data import parse_spec_from_schema
from featurepipe.keras._heads import EstimatorHead, class_names_of, head_of
from featurepipe.keras._models import task_of
from featurepipe.keras._preprocessing import ColumnTransform, parse_spec

__all__ = ["EXPORT_INFO_FILE", "SIGNATURES", "export_serving", "serving_parse_spec"]

#: The ``signatures`` of :func:`export_serving`.
SIGNATURES = ("default", "estimator")
# TensorFlow Serving's method names (tensorflow/python/saved_model/signature_constants.py).
_METHODS = {
    "classification": "tensorflow/serving/classify",
    "regression": "tensorflow/serving/regress",
    "predict": "tensorflow/serving/predict",
}

#: Written beside ``saved_model.pb``: task, outputs and the column specs.
EXPORT_INFO_FILE = "featurepipe_export.json"


def serving_parse_spec(columns: ColumnSpecs, schema: Schema | None = None) -> dict[str, Any]:
    """The parse spec of serving requests: the features the columns read.

    Args:
        columns: the model's column specs.
        schema: when given, the features it describes take its shape, kind and
            default (e.g. a dense string feature); the label and features the
            columns do not read are left out. Defaults to `None`.

    Returns:
        ``{feature: tf.io.FixedLenFeature | tf.io.VarLenFeature}``.

    Examples:
        >>> from featurepipe.columns import HashedColumn, NumericColumn
        >>> spec = serving_parse_spec(ColumnSpecs((NumericColumn("x", default_value=0.0),
        ...                                        HashedColumn("c", 10))))
        >>> sorted(spec), spec["x"].default_value
        (['c', 'x'], 0.0)
    """
    spec = parse_spec(columns)
    if schema is not None:
        from_schema = parse_spec_from_schema(schema)
        spec.update({k: from_schema[k] for k in spec if k in from_schema})
    return spec


def export_serving(
    model: keras.Model,
    export_dir: str | os.PathLike[str],
    columns: ColumnSpecs,
    *,
    schema: Schema | None = None,
    task: str | None = None,
    class_names: Sequence[str] | None = None,
    signatures: str = "default",
    head: EstimatorHead | None = None,
) -> str:
    """Writes a SavedModel that serves ``model`` on serialized ``tf.Example``.

    Args:
        model: a model whose inputs are the ``ColumnTransform`` outputs of
            ``columns`` (every canned model of :mod:`featurepipe.keras._models`).
        export_dir: the SavedModel directory (created; must not hold a SavedModel).
        columns: the resolved column specs the model was trained with.
        schema: the data's schema, for the parse spec (see
            :func:`serving_parse_spec`). Defaults to `None`.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``; `None` reads it
            from a canned model's ``<task>_head`` layer. Defaults to `None`.
        class_names: names of the classes, in class-id order, for ``classes``.
            Defaults to `None` (the ids as strings; with a head, its vocabulary).
        signatures: ``"default"`` (one ``serving_default`` signature taking
            ``examples``) or ``"estimator"`` (the Estimator's signatures; see
            the module docstring). Defaults to `"default"`.
        head: the model's Estimator head; `None` reads it from a model built
            with ``head=`` (:func:`~featurepipe.keras.head_of`). Defaults to `None`.

    Returns:
        The export directory.

    Raises:
        ConfigError: for unresolved specs, a model input the columns do not
            make, a bad task, wrong class names or an existing SavedModel.
    """
    export_dir = os.fspath(export_dir)
    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            "The serving export traces the model into a TensorFlow SavedModel, which needs "
            f"the TensorFlow backend; Keras runs on {keras.backend.backend()!r}. Save the "
            "model (`model.save('model.keras')`), then in a process with "
            "KERAS_BACKEND=tensorflow load it with `keras.models.load_model` and export it."
        )
    if signatures not in SIGNATURES:
        raise ConfigError(
            f"Unknown value for `signatures`. Allowed values are: {SIGNATURES}. "
            f"Received: signatures={signatures!r}"
        )
    head = head or head_of(model)
    task = task or (head.task if head is not None else task_of(model))
    if head is not None and task != head.task:
        raise ConfigError(f"`task={task!r}` disagrees with the model's head ({head.task!r}).")
    if task not in ("binary", "multiclass", "regression"):
        raise ConfigError(
            "Unknown value for `task`. Allowed values are: ('binary', 'multiclass', "
            f"'regression'). Received: task={task!r}"
        )
    if tf.io.gfile.exists(os.path.join(export_dir, "saved_model.pb")):
        raise ConfigError(f"{export_dir!r} already holds a SavedModel; export to a new directory.")
    spec = serving_parse_spec(columns, schema)
    dense_keys = {k for k, v in spec.items() if isinstance(v, tf.io.FixedLenFeature)}
    transform = ColumnTransform(columns, dense_keys=dense_keys)
    input_names = [t.name for t in keras.tree.flatten(model.input)]
    unknown = sorted(set(input_names) - set(transform.outputs))
    if unknown:
        raise ConfigError(
            f"The model reads inputs {unknown} that the columns do not make (they make "
            f"{sorted(transform.outputs)}); pass the columns the model was built from."
        )
    width = int(model.output_shape[-1])
    if head is not None and class_names is not None:
        raise ConfigError(
            "`class_names` is for models without an Estimator head; the head's "
            "`label_vocabulary` names its classes."
        )
    if class_names is not None:
        n = 2 if task == "binary" else width
        if task == "regression" or len(class_names) != n:
            raise ConfigError(
                f"`class_names` must name the {n} classes of a {task} model. "
                f"Received: class_names={list(class_names)!r}"
            )
    names = [str(c) for c in class_names] if class_names is not None else None
    logits_model = None
    if head is None and signatures == "estimator":
        head, logits_model = _head_of_plain_model(model, task, width, names)
    module = _Serving(model, transform, spec, input_names, task, names, head, logits_model)
    if signatures == "default":
        fns = {"serving_default": module.serve.get_concrete_function()}
    else:
        head = cast(EstimatorHead, head)  # _head_of_plain_model made one (or raised)
        # Traced here, not as methods with an input signature: tf.saved_model.save would
        # trace those for every head, also the signatures a head does not have.
        fns = {"predict": _concrete(module.predict, "examples")}
        if head.task != "regression":
            fns["classification"] = _concrete(module.classify, "inputs")
            fns["serving_default"] = fns["classification"]
        if head.task != "multiclass":
            fns["regression"] = _concrete(module.regress, "inputs")
        if head.task == "regression":
            fns["serving_default"] = fns["regression"]
    tf.saved_model.save(module, export_dir, signatures=fns)
    methods = {}
    if signatures == "estimator":
        methods = {key: _METHODS[key] for key in fns if key != "serving_default"}
        methods["serving_default"] = _METHODS[
            "regression" if head is not None and head.task == "regression" else "classification"
        ]
        _set_method_names(export_dir, methods)
    info = {
        "format_version": 1,
        "featurepipe_version": __version__,
        "task": task,
        "signature": "serving_default",
        "input": "examples" if signatures == "default" else "inputs",
        "outputs": sorted(fns["serving_default"].structured_outputs),
        "signatures": {
            key: {
                "inputs": sorted(t.name for t in tf.nest.flatten(fn.structured_input_signature)),
                "outputs": sorted(fn.structured_outputs),
                "method_name": methods.get(key, _METHODS["predict"]),
            }
            for key, fn in sorted(fns.items())
        },
        "class_names": names,
        "head": head.get_config() if head is not None else None,
        "columns": columns.get_config(),
    }
    with tf.io.gfile.GFile(os.path.join(export_dir, EXPORT_INFO_FILE), "w") as f:
        f.write(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return export_dir


def _concrete(method: Any, name: str) -> Any:
    """The concrete function of ``method(name: string [None])``."""
    spec = tf.TensorSpec([None], tf.string, name=name)
    return tf.function(method, input_signature=[spec]).get_concrete_function()


def _head_of_plain_model(
    model: keras.Model, task: str, width: int, names: Sequence[str] | None
) -> tuple[EstimatorHead, keras.Model]:
    """The head and logits model of a canned model without a head (for the Estimator's
    signatures): its logits are the input of its ``<task>_head`` activation layer."""
    try:
        layer = model.get_layer(f"{task}_head")
    except ValueError:
        raise ConfigError(
            "signatures='estimator' needs the model's logits: build it with `head=` or as a "
            f"canned model (it has a `{task}_head` layer); this model has neither."
        ) from None
    logits_model = keras.Model(model.input, layer.input, name=f"{model.name}_logits")
    if task == "regression":
        return EstimatorHead("regression", label_dimension=width), logits_model
    n = 2 if task == "binary" else width
    vocab = tuple(names) if names is not None else None
    return EstimatorHead(task, n_classes=n, label_vocabulary=vocab), logits_model


def _set_method_names(export_dir: str, methods: Mapping[str, str]) -> None:
    """Sets the SignatureDefs' ``method_name`` (``tf.saved_model.save`` writes every one
    as predict; TensorFlow Serving's Classify and Regress APIs check it)."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(export_dir, "saved_model.pb")
    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        proto.ParseFromString(f.read())
    for meta_graph in proto.meta_graphs:
        for key, method in methods.items():
            if key in meta_graph.signature_def:
                meta_graph.signature_def[key].method_name = method
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(proto.SerializeToString())


class _Serving(tf.Module):  # type: ignore[misc]
    """Holds the model and the transform (with its lookup tables) for saving."""

    def __init__(
        self,
        model: keras.Model,
        transform: ColumnTransform,
        spec: Mapping[str, Any],
        input_names: Sequence[str],
        task: str,
        class_names: Sequence[str] | None,
        head: EstimatorHead | None = None,
        logits_model: keras.Model | None = None,
    ) -> None:
        super().__init__(name="featurepipe_serving")
        self.model = model
        self.transform = transform
        self._spec = dict(spec)
        self._input_names = list(input_names)
        self._task = task
        self._class_names = list(class_names) if class_names is not None else None
        self._head = head
        # The model whose outputs are logits: the model itself when it has a head.
        self._logits_model = logits_model

    def _outputs(self, examples: tf.Tensor, model: keras.Model) -> tf.Tensor:
        parsed = tf.io.parse_example(examples, self._spec)
        made = self.transform(parsed)
        return tf.cast(model({k: made[k] for k in self._input_names}, training=False), tf.float32)

    def _logits(self, examples: tf.Tensor) -> tf.Tensor:
        return self._outputs(examples, self._logits_model or self.model)

    def _predictions(self, logits: tf.Tensor) -> dict[str, tf.Tensor]:
        """The head's prediction dict (tensorflow/estimator head/*_head.py ``predictions``)."""
        head = cast(EstimatorHead, self._head)  # only the estimator signatures get here
        if head.task == "regression":
            return {"predictions": logits}
        out = {"logits": logits}
        if head.task == "binary":
            out["logistic"] = tf.math.sigmoid(logits)
            two = tf.concat([tf.zeros_like(logits), logits], axis=-1)
        else:
            two = logits
        out["probabilities"] = tf.nn.softmax(two, axis=-1)
        ids = tf.expand_dims(tf.argmax(two, axis=-1, output_type=tf.int64), -1)
        names = tf.constant(class_names_of(head))
        out["class_ids"] = ids
        out["classes"] = tf.gather(names, ids)
        batch = tf.shape(logits)[0]
        n = int(head.n_classes or 2)
        out["all_class_ids"] = tf.tile(tf.expand_dims(tf.range(n), 0), [batch, 1])
        out["all_classes"] = tf.tile(tf.expand_dims(names, 0), [batch, 1])
        return out

    def predict(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        """The Estimator's ``predict`` signature."""
        return self._predictions(self._logits(examples))

    def classify(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        """The ``classification`` signature (``ClassificationOutput``)."""
        p = self._predictions(self._logits(inputs))
        return {"classes": p["all_classes"], "scores": p["probabilities"]}

    def regress(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        """The ``regression`` signature (``RegressionOutput``: logistic, or predictions)."""
        p = self._predictions(self._logits(inputs))
        return {"outputs": p["logistic"] if "logistic" in p else p["predictions"]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])  # type: ignore[untyped-decorator]
    def serve(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        if self._head is not None and self._logits_model is None:
            return self._predictions(self._logits(examples))
        outputs = self._outputs(examples, self.model)
        if self._task == "regression":
            return {"predictions": outputs}
        if self._task == "binary":
            ids = tf.cast(outputs > 0.5, tf.int64)
            result = {"logistic": outputs, "probabilities": tf.concat([1 - outputs, outputs], 1)}
        else:
            ids = tf.expand_dims(tf.argmax(outputs, axis=1), 1)
            result = {"probabilities": outputs}
        result["class_ids"] = ids
        if self._class_names is not None:
            result["classes"] = tf.gather(tf.constant(self._class_names), ids)
        else:
            result["classes"] = tf.strings.as_string(ids)
        return result
