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

import json
import math
import os
import time
import warnings
from collections.abc import Sequence
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
from featurepipe.errors import ConfigError
from featurepipe.example import Schema
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
    task: str = "binary",
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
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
            multi-class labels are class ids).
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
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``. Defaults to `"binary"`.
        num_classes: classes of ``"multiclass"``. Defaults to `None`.
        class_names: class names for the export's ``classes``. Defaults to `None`.
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
        learning_rate, linear_learning_rate, mixed_precision,
    )  # fmt: skip
    if label_key in _feature_keys(used):
        raise ConfigError(
            f"The label {label_key!r} is also a feature the columns read; a model must not "
            f"see its label. Received: label_key={label_key!r}"
        )
    if backend == "tensorflow":
        train_ds, eval_ds, train_steps, eval_steps = _tf_inputs(
            data, eval_data, used, label_key, schema, task, batch_size, steps_per_epoch, seed
        )
    else:
        train_ds, eval_ds, train_steps, eval_steps = _loader_inputs(
            data, eval_data, used, label_key, schema, task, batch_size, steps_per_epoch, seed
        )
    counter = _ExampleCounter(batch_size)
    start = time.perf_counter()
    with warnings.catch_warnings():
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
            task=task, class_names=class_names,
        )  # fmt: skip
    metrics = {
        "format_version": 1,
        "featurepipe_version": __version__,
        "model": model,
        "task": task,
        "label": label_key,
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
) -> tuple[Any, Any, int | None, int | None]:
    """The TensorFlow backend's inputs: ``tf.data`` through ``make_dataset``."""
    import tensorflow as tf

    from featurepipe.keras._data import make_dataset

    label_dtype = _label_dtype(data, label_key, schema)

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
            columns=used,
            label_key=label_key,
            label_feature=tf.io.FixedLenFeature((), label_dtype),
            shuffle=training,
            seed=seed,
            num_epochs=None if training and train_steps else 1,
        )
        return ds.map(_label_fn(task), num_parallel_calls=tf.data.AUTOTUNE)

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
    from featurepipe.tfrecord import INDEX_SUFFIX, expand_paths

    patterns = [pattern] if isinstance(pattern, str | os.PathLike) else list(pattern)
    files: list[str] = []
    for p in patterns:
        p = os.fspath(p)
        if "://" in p:
            raise ConfigError(
                f"{p!r} is a remote path; featurepipe.data reads local files. Copy the data "
                "to local disk, or train on the TensorFlow backend (tf.io.gfile)."
            )
        try:
            matched = expand_paths(p)
        except ConfigError as e:
            raise ConfigError(f"No files match {p!r}: {e}") from None
        if not matched:
            raise ConfigError(f"No files match {p!r}.")
        files.extend(matched)
    # A glob such as `train-*` also matches the index sidecars (FILE.fpidx) that
    # featurepipe.data writes beside the files it reads: they are not data.
    found = set(files)
    return sorted(
        f for f in found if not (f.endswith(INDEX_SUFFIX) and f[: -len(INDEX_SUFFIX)] in found)
    )


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
) -> tuple[keras.Model, ColumnSpecs]:
    common: dict[str, Any] = {
        "task": task,
        "num_classes": num_classes,
        "mixed_precision": mixed_precision,
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
            "float. Received: a bytes label"
        )
    return tf.int64 if kind == "int64" else tf.float32


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
