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
from typing import Any

import keras
import tensorflow as tf

from featurepipe._version import __version__
from featurepipe.columns import ColumnSpecs
from featurepipe.errors import ConfigError
from featurepipe.example import Schema
from featurepipe.keras._data import parse_spec_from_schema
from featurepipe.keras._models import task_of
from featurepipe.keras._preprocessing import ColumnTransform, parse_spec

__all__ = ["EXPORT_INFO_FILE", "export_serving", "serving_parse_spec"]

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
            Defaults to `None` (the ids as strings).

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
    task = task or task_of(model)
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
    if class_names is not None:
        n = 2 if task == "binary" else width
        if task == "regression" or len(class_names) != n:
            raise ConfigError(
                f"`class_names` must name the {n} classes of a {task} model. "
                f"Received: class_names={list(class_names)!r}"
            )
    names = [str(c) for c in class_names] if class_names is not None else None
    module = _Serving(model, transform, spec, input_names, task, names)
    signature = module.serve.get_concrete_function()
    tf.saved_model.save(module, export_dir, signatures={"serving_default": signature})
    info = {
        "format_version": 1,
        "featurepipe_version": __version__,
        "task": task,
        "signature": "serving_default",
        "input": "examples",
        "outputs": sorted(signature.structured_outputs),
        "class_names": names,
        "columns": columns.get_config(),
    }
    with tf.io.gfile.GFile(os.path.join(export_dir, EXPORT_INFO_FILE), "w") as f:
        f.write(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return export_dir


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
    ) -> None:
        super().__init__(name="featurepipe_serving")
        self.model = model
        self.transform = transform
        self._spec = dict(spec)
        self._input_names = list(input_names)
        self._task = task
        self._class_names = list(class_names) if class_names is not None else None

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])  # type: ignore[untyped-decorator]
    def serve(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_example(examples, self._spec)
        made = self.transform(parsed)
        outputs = tf.cast(
            self.model({k: made[k] for k in self._input_names}, training=False), tf.float32
        )
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
