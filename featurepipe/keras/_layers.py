"""Keras 3 layers over column specs: the ``DenseFeatures`` replacement.

:class:`DenseFeatures` takes the model inputs that
:class:`~featurepipe.keras.ColumnTransform` computes in the input
pipeline (integer ids padded with ``-1``, weights, float matrices) and returns one
dense tensor (columns concatenated in name order, as ``tf.feature_column``'s
``DenseFeatures`` does) or a dict of per-column tensors. It uses ``keras.ops``
only, so the model side runs on any Keras backend and on the accelerator:
embedding lookups with ``mean`` / ``sum`` / ``sqrtn`` combiners, indicators
(one-hot / multi-hot / counts) and numeric pass-through.
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
from featurepipe.keras import _assets
from featurepipe.keras._inputs import WEIGHTS_SUFFIX, transform_inputs

__all__ = ["DenseFeatures", "model_inputs"]


def model_inputs(specs: ColumnSpecs) -> dict[str, Any]:
    """``keras.Input`` tensors for everything :class:`DenseFeatures` reads.

    Args:
        specs: resolved column specs.

    Returns:
        ``{input name: keras.Input}``, named like the outputs of ``ColumnTransform``.
    """
    return {
        name: keras.Input(shape=shape, dtype=dtype, name=name)
        for name, (shape, dtype) in transform_inputs(specs).items()
    }


@keras.saving.register_keras_serializable(package="featurepipe")
class DenseFeatures(keras.layers.Layer):
    """A layer that turns column inputs into the model's dense features.

    Numeric columns pass through; embedding columns look ids up in trainable
    tables and reduce each row with their combiner (ids ``< 0`` are ignored,
    and a row without valid ids gives zeros, as TF's
    ``safe_embedding_lookup_sparse``); indicator columns and bucketized columns
    become one-hot / multi-hot / count vectors. Bare categorical columns are
    not dense: wrap them in an :class:`~featurepipe.columns.EmbeddingColumn` or
    :class:`~featurepipe.columns.IndicatorColumn`.

    Args:
        columns: a :class:`~featurepipe.columns.ColumnSpecs` (or its config) of the
            dense columns: numeric, bucketized, embedding and indicator columns.
        output_mode: ``"concat"`` for one ``[batch, width]`` tensor (columns in
            name order, like ``DenseFeatures``) or ``"dict"`` for
            ``{column name: tensor}``. Defaults to `"concat"`.
        preprocess: take the *parsed features* (``tf.io.parse_example`` output)
            and run :class:`~featurepipe.keras.ColumnTransform`
            inside the layer (TensorFlow backend only; string work then runs
            wherever the layer runs, e.g. in a serving signature). Defaults to
            `False` (inputs are ``ColumnTransform`` outputs from ``tf.data``).
        dense_keys: with ``preprocess``, the features that arrive as dense
            tensors. Defaults to `()`.
        **kwargs: base layer arguments (``name``, ``dtype``, ...).

    Raises:
        ConfigError: for unresolved specs, bare categorical columns or a bad mode.
    """

    def __init__(
        self,
        columns: ColumnSpecs | Mapping[str, Any],
        output_mode: str = "concat",
        preprocess: bool = False,
        dense_keys: Sequence[str] = (),
        vocabulary_assets: _assets.AssetVocabularies | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Built from a config whose vocabularies live in asset files: placeholders of
        # the right sizes until `load_assets` reads them.
        self._pending: tuple[dict[str, Any], _assets.AssetVocabularies] | None = None
        if vocabulary_assets:
            if isinstance(columns, ColumnSpecs):
                columns = columns.get_config()
            specs = _assets.placeholder_specs(columns, vocabulary_assets)
            self._pending = (dict(columns), [list(v) for v in vocabulary_assets])
        else:
            specs = (
                columns if isinstance(columns, ColumnSpecs) else ColumnSpecs.from_config(columns)
            )
        if output_mode not in ("concat", "dict"):
            raise ConfigError(
                "Unknown value for `output_mode` argument of DenseFeatures. Allowed values "
                f"are: ('concat', 'dict'). Received: output_mode={output_mode!r}"
            )
        if not specs.is_resolved:
            raise ConfigError(
                "The column specs are not resolved: call `ColumnSpecs.resolve(artifacts)` first."
            )
        for spec in specs:
            if isinstance(spec, CategoricalSpec) and not isinstance(spec, BucketizedColumn):
                raise ConfigError(
                    f"Column {spec.name!r} is categorical and has no dense form; wrap it in "
                    "EmbeddingColumn(...) or IndicatorColumn(...). Received: "
                    f"{type(spec).__name__}"
                )
        if preprocess and keras.backend.backend() != "tensorflow":
            raise ConfigError(
                "DenseFeatures(preprocess=True) runs ColumnTransform (TensorFlow ops) inside "
                f"the layer and needs the TensorFlow backend; Keras runs on "
                f"{keras.backend.backend()!r}. Feed it featurepipe.data batches "
                "(preprocess=False) instead."
            )
        self.specs = specs
        self.output_mode = output_mode
        self.preprocess = bool(preprocess)
        self.dense_keys = tuple(sorted(dense_keys))
        self._transform: Any = None
        self._build_transform()
        # tf.feature_column's DenseFeatures concatenates columns sorted by name.
        self._ordered = sorted(specs, key=lambda s: s.name)
        self._tables: dict[str, Any] = {}
        shared: dict[str, Any] = {}  # shared_embedding_name -> its one table
        for spec in self._ordered:
            if isinstance(spec, EmbeddingColumn):
                if spec.shared_embedding_name in shared:
                    # tf.feature_column.shared_embeddings: one table for several columns
                    # (ColumnSpecs checked that they agree on its shape and initializer).
                    self._tables[spec.name] = shared[spec.shared_embedding_name]
                    continue
                init = spec.initializer
                initializer = (
                    keras.initializers.get(init)
                    if init is not None
                    else keras.initializers.TruncatedNormal(stddev=1.0 / math.sqrt(spec.dimension))
                )
                weight_name = (
                    f"{spec.categorical_column.name}_embedding_weights"
                    if spec.shared_embedding_name is None
                    else f"{spec.shared_embedding_name}_weights"
                )
                self._tables[spec.name] = self.add_weight(
                    name=weight_name,
                    shape=(spec.categorical_column.num_ids, spec.dimension),
                    initializer=initializer,
                    trainable=spec.trainable,
                )
                if spec.shared_embedding_name is not None:
                    shared[spec.shared_embedding_name] = self._tables[spec.name]

    def _build_transform(self) -> None:
        if self.preprocess and self._pending is None:
            from featurepipe.keras._tf import import_tensorflow_module

            transform = import_tensorflow_module("_preprocessing").ColumnTransform
            self._transform = transform(self.specs, dense_keys=self.dense_keys)

    def call(self, inputs: Mapping[str, Any]) -> Any:
        """Returns the dense features (a tensor, or a dict with ``output_mode="dict"``)."""
        if self.preprocess:
            if self._transform is None:
                raise ConfigError(
                    "This DenseFeatures layer was built from a config without its vocabularies; "
                    "load it with `keras.models.load_model` (which reads the vocabulary "
                    "assets) before calling it."
                )
            inputs = self._transform(inputs)
        outputs: dict[str, Any] = {}
        for spec in self._ordered:
            outputs[spec.name] = self._column(spec, inputs)
        if self.output_mode == "dict":
            return outputs
        return ops.concatenate(list(outputs.values()), axis=-1)

    def _column(self, spec: ColumnSpec, inputs: Mapping[str, Any]) -> Any:
        if isinstance(spec, NumericColumn):
            return ops.reshape(ops.cast(inputs[spec.name], "float32"), (-1, spec.size))
        if isinstance(spec, BucketizedColumn):
            return _indicator(ops.cast(inputs[spec.name], "int32"), spec.num_ids, "count", None)
        if isinstance(spec, IndicatorColumn | EmbeddingColumn):
            cat = spec.categorical_column
            ids = ops.cast(inputs[spec.name], "int32")
            weights = None
            if isinstance(cat, WeightedColumn):
                weights = ops.cast(inputs[spec.name + WEIGHTS_SUFFIX], "float32")
            if isinstance(spec, IndicatorColumn):
                return _indicator(ids, cat.num_ids, spec.output_mode, weights)
            return _embed(self._tables[spec.name], ids, weights, spec.combiner, spec.max_norm)
        raise ConfigError(f"Unsupported column in DenseFeatures: {spec!r}")

    def compute_output_shape(self, input_shape: Any) -> Any:
        widths = {s.name: _width(s) for s in self._ordered}
        if self.output_mode == "dict":
            return {name: (None, w) for name, w in widths.items()}
        return (None, sum(widths.values()))

    def get_config(self) -> dict[str, Any]:
        """The layer config; vocabularies are left to :meth:`save_assets`."""
        config: dict[str, Any] = super().get_config()
        if self._pending is not None:
            columns, listing = self._pending
        else:
            columns, listing, _ = _assets.split_vocabularies(self.specs)
        config.update(
            {
                "columns": columns,
                "output_mode": self.output_mode,
                "preprocess": self.preprocess,
                "dense_keys": list(self.dense_keys),
                "vocabulary_assets": listing,
            }
        )
        return config

    def save_assets(self, dir_path: str) -> None:
        """Writes the vocabularies (called by ``model.save``)."""
        if self._pending is not None:
            raise ConfigError(
                "This DenseFeatures layer has no vocabularies to save: it was built from a "
                "config and its assets were never loaded."
            )
        _, listing, vocabularies = _assets.split_vocabularies(self.specs)
        _assets.write_vocabularies(dir_path, vocabularies, listing)

    def load_assets(self, dir_path: str) -> None:
        """Reads the vocabularies back (called by ``keras.models.load_model``)."""
        if self._pending is None:
            return
        columns, listing = self._pending
        vocabularies = _assets.read_vocabularies(dir_path, listing)
        self.specs = _assets.loaded_specs(columns, vocabularies)
        self._ordered = sorted(self.specs, key=lambda s: s.name)
        self._pending = None
        self._build_transform()


def _width(spec: ColumnSpec) -> int:
    if isinstance(spec, NumericColumn):
        return spec.size
    if isinstance(spec, BucketizedColumn):
        return spec.num_ids
    if isinstance(spec, EmbeddingColumn):
        return spec.dimension
    if isinstance(spec, IndicatorColumn):
        return spec.output_size
    raise ConfigError(f"Unsupported column in DenseFeatures: {spec!r}")


def _indicator(ids: Any, depth: int, mode: str, weights: Any) -> Any:
    """Counts (or weight sums) of each id in ``[0, depth)`` per row; other ids are ignored.

    Scatters into ``[batch, depth + 1]`` (invalid ids land in the extra last
    column, which is cut off), so memory is ``batch * depth``, not
    ``batch * ids * depth`` as a one-hot would need.
    """
    valid = ops.logical_and(ids >= 0, ids < depth)
    if weights is None and len(ids.shape) == 2 and ids.shape[1] == 1:
        # One id per row (scalar features, bucket ids): a masked one-hot, the same
        # numbers in fewer ops than the scatter below.
        hot = ops.one_hot(ops.where(valid, ids, 0)[:, 0], depth, dtype="float32")
        return hot * ops.cast(valid, "float32")
    safe = ops.where(valid, ids, depth)
    w = ops.cast(valid, "float32")
    if weights is not None:
        w = w * weights
    shape = ops.shape(ids)
    rows = ops.broadcast_to(ops.expand_dims(ops.arange(shape[0], dtype="int32"), 1), shape)
    indices = ops.stack([ops.reshape(rows, (-1,)), ops.reshape(safe, (-1,))], axis=1)
    out = ops.scatter(indices, ops.reshape(w, (-1,)), (shape[0], depth + 1))[:, :depth]
    if mode == "multi_hot":
        out = ops.minimum(out, 1.0)
    return out


def _embed(table: Any, ids: Any, weights: Any, combiner: str, max_norm: float | None) -> Any:
    """Weighted embedding lookup reduced per row; ids < 0 are ignored."""
    valid = ids >= 0
    w = ops.cast(valid, "float32")
    if weights is None and max_norm is None and len(ids.shape) == 2 and ids.shape[1] == 1:
        # One id per row: every combiner gives its vector (x / 1, x / sqrt(1)),
        # or zeros when it is missing; one gather and a select instead of the
        # reduction below (the same numbers, fewer ops per column).
        vectors = ops.take(table, ops.where(valid, ids, 0)[:, 0], axis=0)
        return ops.where(valid, vectors, 0.0)
    if weights is not None:
        w = w * weights
    vectors = ops.take(table, ops.where(valid, ids, 0), axis=0)  # [batch, n, dim]
    if max_norm is not None:
        norms = ops.sqrt(ops.sum(ops.square(vectors), axis=-1, keepdims=True))
        vectors = vectors * ops.minimum(1.0, max_norm / ops.maximum(norms, 1e-12))
    total = ops.sum(vectors * ops.expand_dims(w, -1), axis=1)
    if combiner == "sum":
        return total
    denom = ops.sum(w, axis=1) if combiner == "mean" else ops.sqrt(ops.sum(w * w, axis=1))
    denom = ops.expand_dims(denom, -1)
    return ops.where(denom > 0, total / ops.where(denom > 0, denom, 1.0), 0.0)
