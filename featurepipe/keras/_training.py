"""``train(...)``: TFRecords + column specs -> a trained canned model, its metrics and export.

The Python side of ``featurepipe train``: resolves the column specs from
``analyze`` artifacts, builds the input pipeline (on the TensorFlow backend
``tf.data`` through :func:`~featurepipe.keras.make_dataset`; on JAX and PyTorch
``featurepipe.data``'s ``Loader`` through :func:`~featurepipe.keras.loader_dataset`,
no TensorFlow needed; column work on the CPU either way), builds a
canned model (:mod:`featurepipe.keras._models`), trains it with Keras' progress
display (on the GPU when Keras sees one; ``mixed_precision`` optional),
evaluates on a held-out pattern, and writes to ``output_dir``:

- ``model.keras``: the Keras model (reload with ``keras.models.load_model``
  after ``import featurepipe.keras._models``);
- ``columns.json``: the resolved column specs;
- ``metrics.json``: final training and evaluation metrics, the per-epoch
  history, examples/s, the devices used;
- ``export/<unix seconds>/``: the serving SavedModel
  (:func:`~featurepipe.keras.export_serving`), in TensorFlow Serving's
  versioned layout; TensorFlow backend only (on JAX / PyTorch, reload
  ``model.keras`` with ``KERAS_BACKEND=tensorflow`` and call ``export_serving``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from featurepipe._version import __version__
from featurepipe.columns import (
    BucketizedColumn,
    ColumnSpecs,
    CrossedColumn,
    EmbeddingColumn,
    IndicatorColumn,
    NumericColumn,
    walk_columns,
)
from featurepipe.errors import ConfigError, DataError
from featurepipe.example import Schema
from featurepipe.keras._files import match_files
from featurepipe.keras._heads import EstimatorHead
from featurepipe.keras._loader import loader_dataset
from featurepipe.keras._models import (
    TASKS,
    dnn_model,
    linear_model,
    merge_columns,
    split_columns,
    wide_and_deep_model,
)

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["MODELS", "TrainResult", "resolve_columns", "train"]

MODELS = ("linear", "dnn", "wide_and_deep")
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.keras"
COLUMNS_FILE = "columns.json"


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        model: the trained Keras model.
        columns: the resolved column specs the model reads.
        metrics: the ``metrics.json`` document.
        output_dir: where everything was written.
        model_path: the ``.keras`` file.
        export_dir: the serving SavedModel directory (`None` when not exported).
    """

    model: keras.Model
    columns: ColumnSpecs
    metrics: dict[str, Any]
    output_dir: str
    model_path: str
    export_dir: str | None
    history: dict[str, list[float]] = field(default_factory=dict)


def resolve_columns(
    columns: ColumnSpecs | str | os.PathLike[str],
    artifacts: Any = None,
) -> ColumnSpecs:
    """Column specs (or a specs JSON file) resolved from ``analyze`` artifacts.

    Args:
        columns: the specs, or the path of a specs JSON file.
        artifacts: an ``analyze`` output directory, or any
            :class:`~featurepipe.columns.Artifacts`. Defaults to `None`.

    Returns:
        The resolved specs.

    Raises:
        ConfigError: if the specs need artifacts and none are given.

    Examples:
        >>> from featurepipe.columns import VocabularyColumn
        >>> resolve_columns(ColumnSpecs((VocabularyColumn("c", top_k=10),)))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        featurepipe.errors.ConfigError: The column specs need analyzer results (vocabulary(c)); ...
    """
    specs = columns if isinstance(columns, ColumnSpecs) else ColumnSpecs.load(columns)
    if artifacts is not None:
        if isinstance(artifacts, str | os.PathLike):
            from featurepipe.analysis import Analysis

            artifacts = Analysis.load(artifacts)
        specs = specs.resolve(artifacts)
    if not specs.is_resolved:
        needed = [f"{r['analyzer']}({r['key']})" for r in specs.analysis_requests()]
        raise ConfigError(
            f"The column specs need analyzer results ({', '.join(needed)}); run `featurepipe "
            "analyze` with these specs and pass its output directory as `artifacts` (--artifacts)."
        )
    return specs


def train(
    data: str | Sequence[str],
    columns: ColumnSpecs | str | os.PathLike[str],
    *,
    label_key: str,
    output_dir: str | os.PathLike[str],
    model: str = "wide_and_deep",
    dnn_columns: ColumnSpecs | str | os.PathLike[str] | None = None,
    artifacts: Any = None,
    schema: Schema | str | os.PathLike[str] | None = None,
    eval_data: str | Sequence[str] | None = None,
    task: str | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    n_classes: int | None = None,
    label_vocabulary: Sequence[str] | None = None,
    weight_column: str | None = None,
    loss_reduction: str | None = None,
    head: EstimatorHead | None = None,
    signatures: str = "default",
    epochs: int = 1,
    batch_size: int = 256,
    steps_per_epoch: int | None = None,
    hidden_units: Sequence[int] = (64, 32),
    dropout: float | None = None,
    batch_norm: bool = False,
    learning_rate: float | None = None,
    linear_learning_rate: float | None = None,
    mixed_precision: bool | str = False,
    seed: int | None = 0,
    callbacks: Sequence[Any] = (),
    verbose: Any = "auto",
    export: bool | None = None,
) -> TrainResult:
    """Trains a canned model on TFRecords and writes the model, metrics and export.

    For ``"wide_and_deep"`` the specs are split with
    :func:`~featurepipe.keras.split_columns` (categorical and indicator
    columns to the linear part, embedding and numeric columns to the DNN),
    unless ``dnn_columns`` gives the DNN part explicitly (then ``columns`` are
    the linear part, as given, like the Estimator's ``linear_feature_columns``
    and ``dnn_feature_columns``); ``"linear"`` reads every column; ``"dnn"``
    reads the numeric, bucketized, embedding and indicator columns.

    Args:
        data: training file pattern(s).
        columns: column specs or a specs JSON path.
        label_key: the label feature (int64 or float; binary labels are 0/1,
            multi-class labels are class ids; strings with ``label_vocabulary``).
        output_dir: where to write (created; existing files are replaced).
        model: ``"linear"``, ``"dnn"`` or ``"wide_and_deep"``. Defaults to `"wide_and_deep"`.
        dnn_columns: ``"wide_and_deep"`` only: the DNN part's column specs (or
            specs JSON path), resolved like ``columns``; ``columns`` are then
            the linear part. Defaults to `None` (split ``columns`` with
            :func:`~featurepipe.keras.split_columns`).
        artifacts: ``analyze`` output directory (or Artifacts). Defaults to `None`.
        schema: a schema or schema JSON path for parsing. Defaults to `None`
            (the parse spec comes from the columns).
        eval_data: held-out file pattern(s). Defaults to `None`.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``. Defaults to `None`
            (from ``n_classes`` / ``head``, else `"binary"`).
        num_classes: classes of ``"multiclass"``. Defaults to `None`.
        class_names: class names for the export's ``classes`` (without a head).
            Defaults to `None`.
        n_classes: the Estimator's ``n_classes`` (2: binary, more: multiclass);
            implies an Estimator head. Defaults to `None`.
        label_vocabulary: the Estimator's ``label_vocabulary``: string labels,
            mapped to class ids in this order (``n_classes`` defaults to its
            length); a label not in it stops training with a
            :class:`~featurepipe.errors.DataError` naming the label, the file,
            the record and its byte offset. Implies an Estimator head.
            Defaults to `None`.
        weight_column: the feature holding each example's weight (int64 or
            float, one value, required in every record); it weights the loss and
            the metrics. Must not be a feature the columns read. Implies an
            Estimator head. Defaults to `None`.
        loss_reduction: the head's reduction (see
            :class:`~featurepipe.keras.EstimatorHead`); implies an Estimator head.
            Defaults to `None` (``"sum_over_batch_size"`` with a head).
        head: an explicit :class:`~featurepipe.keras.EstimatorHead` instead of
            the four arguments above. With a head the model outputs logits and
            trains with the Estimator's loss (see the model builders); without
            one (the default) the model is as before: probabilities, Keras'
            losses, integer or float labels, no weights. Defaults to `None`.
        signatures: the export's signatures, ``"default"`` or ``"estimator"``
            (see :func:`~featurepipe.keras.export_serving`). Defaults to `"default"`.
        epochs: passes over ``data``. Defaults to `1`.
        batch_size: examples per step. Defaults to `256`.
        steps_per_epoch: steps per epoch (the data repeats). Defaults to `None`: one pass
            over local files, counted (ceil(records / batch_size)); for remote files the
            end of the data.
        hidden_units: DNN widths. Defaults to `(64, 32)`.
        dropout: DNN drop rate. Defaults to `None`.
        batch_norm: DNN batch normalization. Defaults to `False`.
        learning_rate: the DNN (or linear model's) rate; `None` for the
            Estimator's defaults. Defaults to `None`.
        linear_learning_rate: the wide part's rate in wide-and-deep. Defaults to `None`.
        mixed_precision: `True` (``"mixed_float16"``, for GPUs) or a policy name.
            Defaults to `False`.
        seed: shuffle and initialization seed. Defaults to `0`.
        callbacks: more Keras callbacks. Defaults to `()`.
        verbose: Keras' ``fit`` verbosity. Defaults to `"auto"`.
        export: write the serving SavedModel (needs TensorFlow and the TensorFlow
            backend). Defaults to `None`: on the TensorFlow backend only.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ConfigError: for bad arguments, unresolved specs or missing files.
        ImportError: ``export=True`` without TensorFlow installed (says what to install).
    """
    backend = keras.backend.backend()
    if export is None:
        export = backend == "tensorflow"
    if export and backend != "tensorflow":
        raise ConfigError(
            "The serving export is a TensorFlow SavedModel and needs the TensorFlow backend; "
            f"Keras runs on {backend!r}. Train with export=False (--no-export), then reload "
            "model.keras with KERAS_BACKEND=tensorflow and call "
            "featurepipe.keras.export_serving."
        )
    if model not in MODELS:
        raise ConfigError(
            f"Unknown value for `model`. Allowed values are: {MODELS}. Received: model={model!r}"
        )
    head = _resolve_head(
        task, num_classes, n_classes, label_vocabulary, weight_column, loss_reduction, head
    )
    if head is not None:
        if class_names is not None:
            raise ConfigError(
                "`class_names` is for models without an Estimator head; with a head the "
                "classes are its `label_vocabulary` (or the class ids)."
            )
        task, num_classes = head.task, None
    task = task or "binary"
    if task not in TASKS:
        raise ConfigError(
            f"Unknown value for `task`. Allowed values are: {TASKS}. Received: task={task!r}"
        )
    if epochs < 1:
        raise ConfigError(f"`epochs` must be >= 1. Received: epochs={epochs}")
    if dnn_columns is not None and model != "wide_and_deep":
        raise ConfigError(
            "`dnn_columns` is the DNN part of model='wide_and_deep'; for "
            f"model={model!r} pass every column in `columns`."
        )
    specs = resolve_columns(columns, artifacts)
    dnn_specs = resolve_columns(dnn_columns, artifacts) if dnn_columns is not None else None
    if isinstance(schema, str | os.PathLike):
        schema = Schema.load(schema)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    built, used = _build(
        model, specs, dnn_specs, task, num_classes, hidden_units, dropout, batch_norm,
        learning_rate, linear_learning_rate, mixed_precision, head,
    )  # fmt: skip
    if label_key in _feature_keys(used):
        raise ConfigError(
            f"The label {label_key!r} is also a feature the columns read; a model must not "
            f"see its label. Received: label_key={label_key!r}"
        )
    if backend == "tensorflow":
        train_ds, eval_ds, train_steps, eval_steps = _tf_inputs(
            data, eval_data, used, label_key, schema, task, batch_size, steps_per_epoch, seed,
            head,
        )  # fmt: skip
    elif head is not None:
        raise ConfigError(
            "Estimator heads (n_classes, label_vocabulary, weight_column, loss_reduction) "
            f"train on the TensorFlow backend; Keras runs on {backend!r}. Use "
            "--backend tensorflow, or leave the head arguments out."
        )
    else:
        train_ds, eval_ds, train_steps, eval_steps = _loader_inputs(
            data, eval_data, used, label_key, schema, task, batch_size, steps_per_epoch, seed
        )
    counter = _ExampleCounter(batch_size)
    start = time.perf_counter()
    with warnings.catch_warnings(), _bad_labels_located(data, eval_data, label_key, head):
        if train_steps is None or (eval_data is not None and eval_steps is None):
            # remote files are not counted: Keras finds the end of an epoch by running out
            warnings.filterwarnings("ignore", "Your input ran out of data", UserWarning)
        history = built.fit(
            train_ds,
            epochs=epochs,
            steps_per_epoch=train_steps,
            validation_data=eval_ds,
            validation_steps=eval_steps,
            callbacks=[counter, *callbacks],
            verbose=verbose,
            shuffle=False,  # make_dataset shuffles files and records
        ).history
        seconds = time.perf_counter() - start
        evaluation = (
            built.evaluate(eval_ds, steps=eval_steps, verbose=0, return_dict=True)
            if eval_ds is not None
            else None
        )
    out = os.fspath(output_dir)
    os.makedirs(out, exist_ok=True)
    model_path = os.path.join(out, MODEL_FILE)
    built.save(model_path)
    used.save(os.path.join(out, COLUMNS_FILE))
    export_dir: str | None = None
    if export:
        from featurepipe.keras._tf import import_tensorflow_module

        export_serving = import_tensorflow_module("_export").export_serving
        export_dir = os.path.join(out, "export", str(int(time.time())))
        while os.path.exists(export_dir):
            export_dir = os.path.join(out, "export", str(int(export_dir.rsplit(os.sep, 1)[1]) + 1))
        export_serving(
            built, export_dir, used, schema=schema if isinstance(schema, Schema) else None,
            task=task, class_names=class_names, signatures=signatures,
        )  # fmt: skip
    metrics = {
        "format_version": 1,
        "featurepipe_version": __version__,
        "model": model,
        "task": task,
        "label": label_key,
        "head": head.get_config() if head is not None else None,
        "epochs": epochs,
        "batch_size": batch_size,
        "train_examples": counter.examples,
        "train_seconds": round(seconds, 3),
        "examples_per_second": round(counter.examples / seconds, 1) if seconds > 0 else None,
        "devices": _devices(backend),
        "keras_backend": backend,
        "mixed_precision": _policy_name(mixed_precision),
        "train": {k: _num(v[-1]) for k, v in history.items() if not k.startswith("val_")},
        "eval": {k: _num(v) for k, v in evaluation.items()} if evaluation is not None else None,
        "history": {k: [_num(x) for x in v] for k, v in history.items()},
    }
    with open(os.path.join(out, METRICS_FILE), "w", encoding="utf-8") as f:
        f.write(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    return TrainResult(built, used, metrics, out, model_path, export_dir, history)


# -- private -----------------------------------------------------------------------------------


def _tf_inputs(
    data: str | Sequence[str],
    eval_data: str | Sequence[str] | None,
    used: ColumnSpecs,
    label_key: str,
    schema: Schema | None,
    task: str,
    batch_size: int,
    steps_per_epoch: int | None,
    seed: int | None,
    head: EstimatorHead | None,
) -> tuple[Any, Any, int | None, int | None]:
    """The TensorFlow backend's inputs: ``tf.data`` through ``make_dataset``."""
    import tensorflow as tf

    from featurepipe.keras._data import make_dataset

    if head is None:
        label_dtype = _label_dtype(data, label_key, schema)
        label_shape: tuple[int, ...] = ()
        data_columns = used
    else:
        label_dtype = _head_label_dtype(data, label_key, schema, head)
        label_shape = (head.label_dimension,) if head.label_dimension > 1 else ()
        data_columns = _with_weight_column(used, data, schema, head)

    # Keras learns where an epoch of a dataset of unknown length ends by running out of data,
    # and warns each time ("Your input ran out of data"). Local files are counted instead
    # (the index sidecar answers at once; otherwise one verified scan), so fit gets its steps:
    # the training data repeats and an epoch is ceil(records / batch_size) steps; the
    # held-out data is one pass of exactly that many steps.
    train_steps = steps_per_epoch or _steps(data, batch_size)
    eval_steps = _steps(eval_data, batch_size) if eval_data is not None else None

    def dataset(pattern: str | Sequence[str], training: bool) -> tf.data.Dataset:
        ds = make_dataset(
            pattern,
            batch_size=batch_size,
            schema=schema,
            columns=data_columns,
            label_key=label_key,
            label_feature=tf.io.FixedLenFeature(label_shape, label_dtype),
            shuffle=training,
            seed=seed,
            num_epochs=None if training and train_steps else 1,
        )
        fix = _label_fn(task) if head is None else _head_label_fn(head)
        return ds.map(fix, num_parallel_calls=tf.data.AUTOTUNE)

    train_ds = dataset(data, True)
    eval_ds = dataset(eval_data, False) if eval_data is not None else None
    return train_ds, eval_ds, train_steps, eval_steps


def _loader_inputs(
    data: str | Sequence[str],
    eval_data: str | Sequence[str] | None,
    used: ColumnSpecs,
    label_key: str,
    schema: Schema | None,
    task: str,
    batch_size: int,
    steps_per_epoch: int | None,
    seed: int | None,
) -> tuple[Any, Any, int | None, int | None]:
    """The JAX / PyTorch backends' inputs: ``featurepipe.data.Loader`` batches, no TF."""
    from featurepipe.data import Loader

    def fix(features: Any, label: Any, *rest: Any) -> Any:
        if task == "multiclass":
            label = np.asarray(label).reshape(-1).astype(np.int64)
        else:
            label = np.asarray(label, np.float32).reshape(-1, 1)
        return (features, label, *rest)

    def dataset(pattern: str | Sequence[str], training: bool) -> Any:
        loader = Loader(
            _local_files(pattern),
            used,
            batch_size=batch_size,
            label_key=label_key,
            schema=schema,
            shuffle=training,
            seed=seed or 0,
        )
        return loader_dataset(loader, map_fn=fix)

    train_ds = dataset(data, True)
    eval_ds = dataset(eval_data, False) if eval_data is not None else None
    eval_steps = len(eval_ds) if eval_ds is not None else None
    return train_ds, eval_ds, steps_per_epoch, eval_steps


def _local_files(pattern: str | Sequence[str]) -> list[str]:
    """The files of local patterns (the JAX / PyTorch path reads local files only)."""

    def refuse(p: str) -> list[str]:
        raise ConfigError(
            f"{p!r} is a remote path; featurepipe.data reads local files. Copy the data "
            "to local disk, or train on the TensorFlow backend (tf.io.gfile)."
        )

    return match_files(pattern, remote=refuse)


def _feature_keys(specs: ColumnSpecs) -> set[str]:
    """The features the columns read (the keys of their parse spec)."""
    keys: set[str] = set()
    for spec in walk_columns(specs.columns):
        for attr in ("key", "weight_feature_key"):
            value = getattr(spec, attr, None)
            if isinstance(value, str):
                keys.add(value)
        if isinstance(spec, CrossedColumn):
            keys.update(k for k in spec.leaf_keys() if isinstance(k, str))
    return keys


def _devices(backend: str) -> list[str]:
    """The device kinds the backend sees (``"CPU"``, ``"GPU"``, ``"TPU"``)."""
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.device_type for d in tf.config.list_logical_devices()]
    if backend == "jax":
        import jax

        return [str(d.platform).upper() for d in jax.devices()]
    if backend == "torch":
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return ["CPU"] + ["GPU"] * gpus
    return ["CPU"]


class _ExampleCounter(keras.callbacks.Callback):  # type: ignore[misc]
    """Counts training steps; ``examples`` is steps x batch size (a short last batch
    counts whole)."""

    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.steps = 0

    @property
    def examples(self) -> int:
        return self.steps * self.batch_size

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.steps += 1


def _build(
    kind: str,
    specs: ColumnSpecs,
    dnn_specs: ColumnSpecs | None,
    task: str,
    num_classes: int | None,
    hidden_units: Sequence[int],
    dropout: float | None,
    batch_norm: bool,
    learning_rate: float | None,
    linear_learning_rate: float | None,
    mixed_precision: bool | str,
    head: EstimatorHead | None = None,
) -> tuple[keras.Model, ColumnSpecs]:
    common: dict[str, Any] = {
        "task": task if head is None else None,
        "num_classes": num_classes,
        "mixed_precision": mixed_precision,
        "head": head,
    }
    if kind == "linear":
        return linear_model(specs, learning_rate=learning_rate, **common), specs
    dense_kinds = NumericColumn | BucketizedColumn | EmbeddingColumn | IndicatorColumn
    if kind == "dnn":
        dense = ColumnSpecs(tuple(s for s in specs if isinstance(s, dense_kinds)))
        if not len(dense):
            raise ConfigError(
                "The dnn model needs numeric, bucketized, embedding or indicator columns; "
                "the specs have none."
            )
        extra: dict[str, Any] = {"learning_rate": learning_rate} if learning_rate else {}
        built = dnn_model(
            dense, hidden_units, dropout=dropout, batch_norm=batch_norm, **extra, **common
        )
        return built, dense
    wide, deep = split_columns(specs) if dnn_specs is None else (specs, dnn_specs)
    extra2: dict[str, Any] = {"dnn_learning_rate": learning_rate} if learning_rate else {}
    built = wide_and_deep_model(
        wide, deep, hidden_units, dropout=dropout, batch_norm=batch_norm,
        linear_learning_rate=linear_learning_rate, **extra2, **common,
    )  # fmt: skip
    return built, merge_columns(wide, deep)


def _label_dtype(data: str | Sequence[str], label_key: str, schema: Schema | None) -> Any:
    """The label's parse dtype: from the schema, else the one beside the shards, else the
    first records that have it (:func:`~featurepipe.keras.label_kind`)."""
    import tensorflow as tf

    if schema is not None and label_key in schema.names:
        return {"int64": tf.int64, "float": tf.float32}.get(schema[label_key].kind, tf.float32)
    from featurepipe.keras._data import _list_files, label_kind

    files = _list_files(data)
    kind = label_kind(files, label_key)
    if kind == "bytes":
        raise ConfigError(
            f"The label {label_key!r} in {files[0]} holds bytes; labels must be int64 or "
            "float, or strings with a `label_vocabulary` (--label-vocabulary). "
            "Received: a bytes label"
        )
    return tf.int64 if kind == "int64" else tf.float32


# -- Estimator heads ---------------------------------------------------------------------------

# In the message of the assertion that stops a batch with a bad label; train() then finds the
# record (tf.data cannot tell which file or record a batch row came from).
_BAD_LABEL = "featurepipe: bad label"


def _resolve_head(
    task: str | None,
    num_classes: int | None,
    n_classes: int | None,
    label_vocabulary: Sequence[str] | None,
    weight_column: str | None,
    loss_reduction: str | None,
    head: EstimatorHead | None,
) -> EstimatorHead | None:
    """The Estimator head the arguments ask for, or `None` (no head: the old behaviour)."""
    asked = {
        "n_classes": n_classes,
        "label_vocabulary": label_vocabulary,
        "weight_column": weight_column,
        "loss_reduction": loss_reduction,
    }
    if head is not None:
        given = sorted(k for k, v in asked.items() if v is not None)
        if given:
            raise ConfigError(f"Pass either `head` or {given}, not both.")
        if task is not None and task != head.task:
            raise ConfigError(f"`task={task!r}` disagrees with the head's task {head.task!r}.")
        return head
    if all(v is None for v in asked.values()):
        return None
    vocab = tuple(str(v) for v in label_vocabulary) if label_vocabulary is not None else None
    if n_classes is None:
        if vocab is not None:
            n_classes = len(vocab)
        elif task == "multiclass":
            n_classes = num_classes
    elif num_classes is not None and num_classes != n_classes:
        raise ConfigError(
            f"`num_classes={num_classes}` and `n_classes={n_classes}` disagree; pass one."
        )
    if task is None:
        task = "binary" if n_classes in (None, 2) else "multiclass"
    if task == "regression":
        if n_classes is not None or vocab is not None:
            raise ConfigError(
                "`n_classes` and `label_vocabulary` are for classifiers; "
                "received them with task='regression'."
            )
    elif (n_classes or 2) == 2 and task == "multiclass":
        raise ConfigError("task='multiclass' needs n_classes >= 3 (2 classes are the binary head).")
    return EstimatorHead(
        task,
        n_classes=n_classes if task != "regression" else None,
        label_vocabulary=vocab,
        weight_column=weight_column,
        loss_reduction=loss_reduction or "sum_over_batch_size",
    )


def _feature_kind(
    data: str | Sequence[str], key: str, schema: Schema | None
) -> tuple[str, list[str]]:
    """The kind of a feature (``"int64"``, ``"float"``, ``"bytes"``) and the data's files."""
    from featurepipe.keras._data import _list_files, label_kind

    files = _list_files(data)
    if schema is not None and key in schema.names:
        return schema[key].kind, files
    return label_kind(files, key), files


def _head_label_dtype(
    data: str | Sequence[str], label_key: str, schema: Schema | None, head: EstimatorHead
) -> Any:
    """The label's parse dtype under an Estimator head (strings need a vocabulary)."""
    import tensorflow as tf

    kind, files = _feature_kind(data, label_key, schema)
    where = files[0] if files else "the data"
    if head.label_vocabulary is not None:
        if kind != "bytes":
            raise ConfigError(
                f"The label {label_key!r} in {where} holds {kind}; `label_vocabulary` "
                "maps string labels to class ids (as the Estimator's). Drop the "
                "vocabulary for integer class ids. Received: label_vocabulary="
                f"{list(head.label_vocabulary)!r}"
            )
        return tf.string
    if kind == "bytes":
        raise ConfigError(
            f"The label {label_key!r} in {where} holds strings; pass their classes as "
            "`label_vocabulary` (--label-vocabulary a,b,c)."
        )
    if head.task == "multiclass" and kind != "int64":
        raise ConfigError(
            f"The label {label_key!r} in {where} holds floats; a multiclass head needs "
            "int64 class ids (or strings with `label_vocabulary`)."
        )
    return tf.int64 if kind == "int64" else tf.float32


def _with_weight_column(
    used: ColumnSpecs, data: str | Sequence[str], schema: Schema | None, head: EstimatorHead
) -> ColumnSpecs:
    """The columns the input pipeline computes: the model's, plus the raw example weight."""
    key = head.weight_column
    if key is None:
        return used
    if key in _feature_keys(used):
        raise ConfigError(
            f"The weight column {key!r} is also a feature the columns read; use a separate "
            "weight feature (a copy) for `weight_column`."
        )
    kind, _ = _feature_kind(data, key, schema)
    if kind == "bytes":
        raise ConfigError(f"The weight column {key!r} holds bytes; weights are int64 or float.")
    weight = NumericColumn(key, dtype="int64" if kind == "int64" else "float32")
    return merge_columns(used, ColumnSpecs((weight,)))


def _head_label_fn(head: EstimatorHead) -> Any:
    """``(features, label) -> (features, label[, weight])`` for an Estimator head.

    String labels are looked up in the vocabulary (tensorflow/estimator
    head/multi_class_head.py ``_processed_labels``: an index table, then a label range
    check); class ids out of ``[0, n_classes)`` (binary labels out of ``[0, 1]``, as
    base_head.py ``check_label_range``) stop training (see :func:`_bad_labels_located`).
    """
    import tensorflow as tf

    table = None
    if head.label_vocabulary is not None:
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(head.label_vocabulary)),
                tf.range(len(head.label_vocabulary), dtype=tf.int64),
            ),
            default_value=-1,
        )
    n = head.n_classes or 2

    def fix(features: Any, label: Any) -> Any:
        if head.task == "regression":
            label = tf.reshape(tf.cast(label, tf.float32), [-1, head.label_dimension])
        else:
            flat = tf.reshape(label, [-1])
            if table is not None:
                ids = table.lookup(flat)
                bad = ids < 0
            elif head.task == "multiclass":
                ids = tf.cast(flat, tf.int64)
                bad = tf.logical_or(ids < 0, ids >= n)
            else:
                ids = tf.cast(flat, tf.float32)
                bad = tf.logical_or(ids < 0, ids > 1)
            check = tf.debugging.Assert(
                tf.logical_not(tf.reduce_any(bad)),
                [_BAD_LABEL, tf.boolean_mask(flat, bad)[:3]],
            )
            with tf.control_dependencies([check]):
                ids = tf.identity(ids)
            dtype = tf.float32 if head.task == "binary" else tf.int64
            label = tf.reshape(tf.cast(ids, dtype), [-1, 1])
        if head.weight_column is None:
            return features, label
        features = dict(features)
        weight = tf.reshape(tf.cast(features.pop(head.weight_column), tf.float32), [-1, 1])
        return features, label, weight

    return fix


@contextlib.contextmanager
def _bad_labels_located(
    data: str | Sequence[str],
    eval_data: str | Sequence[str] | None,
    label_key: str,
    head: EstimatorHead | None,
) -> Iterator[None]:
    """Turns the pipeline's bad-label assertion into a DataError naming the record."""
    try:
        yield
    except Exception as e:
        # Only the TensorFlow backend's pipeline asserts on labels (heads train there).
        tf = sys.modules.get("tensorflow")
        if (
            head is None
            or tf is None
            or not isinstance(e, tf.errors.InvalidArgumentError)
            or _BAD_LABEL not in str(e.message)
        ):
            raise
        found = _find_bad_label([data] + ([eval_data] if eval_data is not None else []),
                                label_key, head)  # fmt: skip
        if found is None:  # pragma: no cover - the scan agrees with the pipeline
            raise DataError(f"a label is not valid for the head: {e.message}") from e
        path, index, offset, value = found
        if head.label_vocabulary is not None:
            detail = (
                f"label {label_key}={value!r} is not in label_vocabulary "
                f"{list(head.label_vocabulary)!r}; add it to the vocabulary "
                "(--label-vocabulary) or fix the record."
            )
            reason = "unknown_label"
        else:
            allowed = "0 or 1" if head.task == "binary" else f"a class id in [0, {head.n_classes})"
            detail = f"label {label_key}={value!r} must be {allowed}; fix the record."
            reason = "label_out_of_range"
        raise DataError(detail, path=path, record=index, offset=offset, reason=reason) from e


def _find_bad_label(
    patterns: Sequence[str | Sequence[str]], label_key: str, head: EstimatorHead
) -> tuple[str, int, int, Any] | None:
    """The first record whose label the head refuses: ``(path, index, offset, value)``."""
    from featurepipe.example import decode_example
    from featurepipe.keras._data import _list_files
    from featurepipe.tfrecord import iter_records

    vocab = set(head.label_vocabulary) if head.label_vocabulary is not None else None
    for pattern in patterns:
        for path in _list_files(pattern):
            for rec in iter_records(path):
                feature = decode_example(
                    rec.data, path=path, record=rec.index, offset=rec.offset
                ).get(label_key)
                if feature is None:
                    continue
                for raw in feature.values.tolist():
                    value: Any = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
                    if vocab is not None:
                        bad = value not in vocab
                    elif head.task == "multiclass":
                        bad = not 0 <= value < (head.n_classes or 2)
                    else:
                        bad = not 0 <= value <= 1
                    if bad:
                        return path, rec.index, rec.offset, value
    return None


def _label_fn(task: str) -> Any:
    import tensorflow as tf

    def fix(features: Any, label: Any) -> Any:
        if task == "multiclass":
            return features, tf.cast(tf.reshape(label, [-1]), tf.int64)
        return features, tf.reshape(tf.cast(label, tf.float32), [-1, 1])

    return fix


def _policy_name(mixed_precision: bool | str) -> str | None:
    if mixed_precision is True:
        return "mixed_float16"
    return str(mixed_precision) if mixed_precision else None


def _num(x: Any) -> float | None:
    value = float(x)
    return value if math.isfinite(value) else None


def _steps(pattern: str | Sequence[str], batch_size: int) -> int | None:
    """Batches in one pass over local TFRecord files (``None`` for remote ones)."""
    from featurepipe.keras._data import _list_files
    from featurepipe.tfrecord import count_records

    files = _list_files(pattern)
    if not files or any("://" in f for f in files):
        return None
    records = sum(count_records(f) for f in files)
    return max(1, -(-records // batch_size))
