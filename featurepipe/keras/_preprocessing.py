"""Column specs in TensorFlow ops: the CPU-side work of the input pipeline.

:class:`ColumnTransform` turns parsed features (what ``tf.io.parse_example``
returns: dense tensors for fixed-shape features, ``SparseTensor`` for
variable-length ones) into the model's inputs:

- ``<numeric name>``: float32 ``[batch, size]`` (normalizer applied);
- ``<categorical name>`` (or ``<embedding / indicator name>`` for the ids of the
  column it wraps): int64 ``[batch, max_ids]`` ids, padded with ``-1``;
- ``<that name>__weights``: float32 ``[batch, max_ids]`` weights of a weighted
  column, padded with 0.

The ids are the ones ``tf.feature_column`` computes (and
:mod:`featurepipe.columns._transform` computes in numpy): the same ops (``Fingerprint64``
bucket hashing, ``SparseCross`` hashing, ``Bucketize``) on the same inputs. String
work stays here, in ``tf.data``, so the model on the accelerator sees integers
only (see :class:`featurepipe.keras.DenseFeatures`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Mapping
from typing import Any

import tensorflow as tf

from featurepipe.columns import (
    BucketizedColumn,
    CategoricalSpec,
    ColumnSpec,
    ColumnSpecs,
    CrossedColumn,
    HashedColumn,
    IdentityColumn,
    NumericColumn,
    VocabularyColumn,
    WeightedColumn,
    model_columns,
    walk_columns,
)
from featurepipe.errors import ConfigError
from featurepipe.keras._inputs import WEIGHTS_SUFFIX, transform_inputs

__all__ = ["WEIGHTS_SUFFIX", "ColumnTransform", "parse_spec", "transform_inputs"]


def parse_spec(
    specs: ColumnSpecs, *, dense_keys: Collection[str] = ()
) -> dict[str, tf.io.FixedLenFeature | tf.io.VarLenFeature]:
    """The ``tf.io.parse_example`` spec the columns need (as ``make_parse_example_spec``).

    Numeric features are ``FixedLenFeature`` of their shape; categorical and
    weight features are ``VarLenFeature``; a raw key of a crossed column takes
    the kind of another column on the same feature, else it is a string
    ``VarLenFeature``. For other shapes or kinds, derive the parse spec from the
    schema (:func:`~featurepipe.keras.parse_spec_from_schema`).

    Args:
        specs: the column specs.
        dense_keys: features to parse as dense; they must be numeric here.
            Defaults to `()`.

    Returns:
        ``{feature: tf.io.FixedLenFeature | tf.io.VarLenFeature}``.
    """
    out: dict[str, Any] = {}
    raw_cross_keys: list[str] = []
    for spec in _all_columns(specs):
        if isinstance(spec, NumericColumn):
            # tf.Example stores float32 or int64; NumericColumn(dtype="int64") reads int64_list.
            dtype = tf.int64 if spec.dtype == "int64" else tf.float32
            default: Any = spec.default_value
            if default is not None and spec.dtype == "int64":
                default = int(default)
            if default is not None and spec.size > 1:
                # tf.io.parse_example wants a default of the feature's shape (a scalar
                # default of a [2] feature fails when a record lacks it).
                default = [default] * spec.size
            out[spec.key] = tf.io.FixedLenFeature(spec.shape, dtype, default_value=default)
        elif isinstance(spec, HashedColumn | VocabularyColumn):
            dtype = tf.string if spec.dtype == "string" else tf.int64
            out.setdefault(spec.key, tf.io.VarLenFeature(dtype))
        elif isinstance(spec, IdentityColumn):
            out.setdefault(spec.key, tf.io.VarLenFeature(tf.int64))
        elif isinstance(spec, WeightedColumn):
            out.setdefault(spec.weight_feature_key, tf.io.VarLenFeature(tf.float32))
        elif isinstance(spec, CrossedColumn):
            raw_cross_keys.extend(k for k in spec.leaf_keys() if isinstance(k, str))
    # A raw key of a cross takes its kind from another column on it, else string.
    for key in raw_cross_keys:
        out.setdefault(key, tf.io.VarLenFeature(tf.string))
    for key in dense_keys:
        if key in out and not isinstance(out[key], tf.io.FixedLenFeature):
            raise ConfigError(
                f"Feature {key!r} is in `dense_keys` but its shape is unknown here; build "
                "the parse spec from the schema instead."
            )
    return out


class ColumnTransform(tf.Module):
    """Computes the model inputs of column specs from parsed features, in TF ops.

    Use it in ``dataset.map(transform)``; lookup tables are built once, when it
    is constructed. It is a ``tf.Module``, so the tables are tracked and a
    ``tf.saved_model`` that calls it (or a layer holding it) exports them.

    Args:
        specs: resolved column specs.
        dense_keys: features that arrive as dense tensors (``FixedLenFeature``);
            ``''`` / ``-1`` are dropped from them as ``tf.feature_column`` does.
            Other categorical features must arrive as ``SparseTensor`` or
            ``RaggedTensor``. Defaults to `()`.
        base_dir: where relative vocabulary files start. Defaults to `None`.

    Raises:
        ConfigError: for unresolved specs.
    """

    def __init__(
        self,
        specs: ColumnSpecs,
        *,
        dense_keys: Collection[str] = (),
        base_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not specs.is_resolved:
            raise ConfigError(
                "The column specs are not resolved: call `ColumnSpecs.resolve(artifacts)` first."
            )
        super().__init__(name="column_transform")
        self.specs = specs
        self.dense_keys = frozenset(dense_keys)
        self.base_dir = base_dir
        self.outputs = transform_inputs(specs)
        self._tables: dict[str, Any] = {}
        self._sizes: dict[str, int] = {}
        # vocabulary fingerprint -> table name: two vocabulary columns of one feature
        # may have different vocabularies (tf.feature_column allows it), so tables
        # are per vocabulary; the first of a feature keeps the feature's name.
        self._table_of: dict[str, str] = {}
        for spec in _all_columns(specs):
            if isinstance(spec, VocabularyColumn):
                fingerprint = _vocabulary_fingerprint(spec)
                if fingerprint in self._table_of:
                    continue
                table_name = spec.name
                if table_name in self._tables:
                    table_name = f"{spec.name}_{len(self._tables)}"
                self._table_of[fingerprint] = table_name
                vocab = spec.load_vocabulary(base_dir)
                dtype = tf.string if spec.dtype == "string" else tf.int64
                entries = [
                    v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v for v in vocab
                ]
                keys = tf.constant(entries, dtype=dtype)
                init = tf.lookup.KeyValueTensorInitializer(
                    keys, tf.range(len(vocab), dtype=tf.int64)
                )
                self._tables[table_name] = tf.lookup.StaticHashTable(init, -1)
                self._sizes[table_name] = len(vocab)

    def __call__(self, features: Mapping[str, Any]) -> dict[str, tf.Tensor]:
        """Returns ``{input name: tensor}`` for a batch of parsed features."""
        out: dict[str, tf.Tensor] = {}
        for name, spec in model_columns(self.specs):
            if isinstance(spec, NumericColumn):
                out[name] = self._numeric(spec, features)
            elif isinstance(spec, WeightedColumn):
                ids, weights = self._weighted(spec, features)
                out[name] = tf.sparse.to_dense(ids, default_value=-1)
                out[name + WEIGHTS_SUFFIX] = tf.sparse.to_dense(weights, default_value=0.0)
            elif isinstance(spec, CategoricalSpec):
                dense = self._dense_ids(spec, features)
                if dense is None:
                    dense = tf.sparse.to_dense(self._ids(spec, features), default_value=-1)
                out[name] = dense
        return out

    # -- pieces -------------------------------------------------------------------------------

    def _raw(self, key: str, features: Mapping[str, Any]) -> Any:
        if key not in features:
            raise ConfigError(
                f"Feature {key!r} is missing from the parsed features "
                f"(select from {sorted(features)})."
            )
        value = features[key]
        if isinstance(value, tf.RaggedTensor):
            return value.to_sparse()
        if isinstance(value, tf.SparseTensor):
            if value.shape.rank == 1:
                return tf.sparse.reshape(value, [-1, 1])
            return value
        value = tf.convert_to_tensor(value)
        if value.shape.rank == 1:
            return tf.expand_dims(value, -1)
        if value.shape.rank is not None and value.shape.rank > 2:
            return tf.reshape(value, [tf.shape(value)[0], -1])
        return value

    def _sparse_values(self, key: str, features: Mapping[str, Any]) -> tf.SparseTensor:
        """The feature as a SparseTensor, dropping ''/-1 if it arrives dense."""
        raw = self._raw(key, features)
        if isinstance(raw, tf.SparseTensor):
            return raw
        ignore = tf.constant("" if raw.dtype == tf.string else -1, dtype=raw.dtype)
        indices = tf.where(tf.not_equal(raw, ignore))
        return tf.SparseTensor(
            indices, tf.gather_nd(raw, indices), tf.shape(raw, out_type=tf.int64)
        )

    def _numeric(self, spec: NumericColumn, features: Mapping[str, Any]) -> tf.Tensor:
        raw = self._raw(spec.key, features)
        if isinstance(raw, tf.SparseTensor):
            raw = tf.sparse.to_dense(raw, default_value=tf.cast(spec.default_value or 0, raw.dtype))
        x = tf.cast(tf.reshape(raw, [-1, spec.size]), tf.float64)
        norm = spec.normalizer
        if norm is not None:
            if norm.kind == "log":
                x = tf.math.log(x + norm.offset)
            else:
                shift, divisor = norm.scale()
                x = (x - shift) / divisor
        return tf.cast(x, tf.float32)

    def _bucket_ids(self, spec: BucketizedColumn, features: Mapping[str, Any]) -> tf.Tensor:
        x = self._numeric(spec.source, features)
        buckets = tf.raw_ops.Bucketize(input=x, boundaries=list(spec.bin_boundaries or ()))
        width = len(spec.bin_boundaries or ()) + 1
        return tf.cast(buckets, tf.int64) + width * tf.range(spec.source.size, dtype=tf.int64)

    def _dense_ids(self, spec: CategoricalSpec, features: Mapping[str, Any]) -> tf.Tensor | None:
        """The padded ids without a SparseTensor round trip, where that gives the same tensor.

        Bucketized columns are dense already. A hashed / vocabulary / identity
        column on a feature that arrives dense (in ``dense_keys``) maps every cell
        and puts ``-1`` where the value is ``""`` / ``-1`` (the cells the sparse path
        drops): the same ids at the same positions as ``to_dense(_ids(...), -1)``.
        Returns `None` for everything else.
        """
        if isinstance(spec, BucketizedColumn):
            return self._bucket_ids(spec, features)
        if not isinstance(spec, HashedColumn | VocabularyColumn | IdentityColumn):
            return None
        if spec.key not in self.dense_keys:
            return None
        raw = self._raw(spec.key, features)
        if isinstance(raw, tf.SparseTensor):
            return None
        ignore = tf.constant("" if raw.dtype == tf.string else -1, dtype=raw.dtype)
        keep = tf.not_equal(raw, ignore)
        return tf.where(keep, self._map_values(spec, raw), tf.constant(-1, tf.int64))

    def _ids(self, spec: CategoricalSpec, features: Mapping[str, Any]) -> tf.SparseTensor:
        if isinstance(spec, BucketizedColumn):
            return _dense_to_sparse_all(self._bucket_ids(spec, features))
        if isinstance(spec, WeightedColumn):
            return self._weighted(spec, features)[0]
        if isinstance(spec, CrossedColumn):
            inputs = []
            for leaf in spec.leaf_keys():
                if isinstance(leaf, str):
                    inputs.append(self._raw(leaf, features))
                else:
                    inputs.append(self._ids(leaf, features))
            return tf.sparse.cross_hashed(inputs, num_buckets=spec.num_bins, hash_key=spec.hash_key)
        key = spec.key  # type: ignore[attr-defined]
        sp = (
            self._sparse_values(key, features)
            if key in self.dense_keys
            else self._raw(key, features)
        )
        if not isinstance(sp, tf.SparseTensor):
            sp = _dense_to_sparse_all(sp)
        return tf.SparseTensor(sp.indices, self._map_values(spec, sp.values), sp.dense_shape)

    def _map_values(self, spec: CategoricalSpec, values: tf.Tensor) -> tf.Tensor:
        """The id of each value (any shape) of a hashed / vocabulary / identity column."""
        if isinstance(spec, HashedColumn):
            strings = values if values.dtype == tf.string else tf.strings.as_string(values)
            new = tf.strings.to_hash_bucket_fast(strings, spec.num_bins)
        elif isinstance(spec, VocabularyColumn):
            table_name = self._table_of[_vocabulary_fingerprint(spec)]
            table, size = self._tables[table_name], self._sizes[table_name]
            if spec.dtype == "int64":
                values = tf.cast(values, tf.int64)
            found = table.lookup(values)
            if spec.num_oov_buckets == 1:  # every value hashes to bucket 0: skip the hash
                oov = tf.fill(tf.shape(found), tf.constant(size, tf.int64))
            elif spec.num_oov_buckets:
                strings = values if values.dtype == tf.string else tf.strings.as_string(values)
                oov = size + tf.strings.to_hash_bucket_fast(strings, spec.num_oov_buckets)
            else:
                oov = tf.fill(tf.shape(found), tf.constant(spec.default_value, tf.int64))
            new = tf.where(found >= 0, found, oov)
        elif isinstance(spec, IdentityColumn):
            new = tf.cast(values, tf.int64)
            if spec.default_value is not None:
                bad = (new < 0) | (new >= spec.num_buckets)
                new = tf.where(bad, tf.constant(spec.default_value, tf.int64), new)
        else:
            raise ConfigError(f"Unsupported categorical spec: {spec!r}")
        return new

    def _weighted(
        self, spec: WeightedColumn, features: Mapping[str, Any]
    ) -> tuple[tf.SparseTensor, tf.SparseTensor]:
        ids = self._ids(spec.categorical_column, features)
        weights = self._raw(spec.weight_feature_key, features)
        if not isinstance(weights, tf.SparseTensor):
            weights = _dense_to_sparse_all(weights)
        return ids, tf.SparseTensor(
            ids.indices, tf.cast(weights.values, tf.float32), ids.dense_shape
        )


def _dense_to_sparse_all(x: tf.Tensor) -> tf.SparseTensor:
    """Every cell of a 2-D dense tensor as a SparseTensor (nothing dropped)."""
    shape = tf.shape(x, out_type=tf.int64)
    indices = tf.where(tf.ones_like(x, dtype=tf.bool))
    return tf.SparseTensor(indices, tf.reshape(x, [-1]), shape)


def _all_columns(specs: ColumnSpecs) -> list[ColumnSpec]:
    return list(walk_columns(specs.columns))


def _vocabulary_fingerprint(spec: VocabularyColumn) -> str:
    """What makes a vocabulary column's lookup table: its dtype and entries (or file)."""
    what = [spec.key, spec.dtype, spec.vocabulary, spec.vocabulary_size]
    text = json.dumps(what, ensure_ascii=False, default=list)
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()
