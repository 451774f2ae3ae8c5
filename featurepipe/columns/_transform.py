"""Column specs applied to decoded features with numpy: the ids, values and encodings.

Given a batch of decoded features (each a flat ``values`` array plus
``row_lengths``, like :class:`featurepipe.example.Column`), this module computes
what every spec in :mod:`featurepipe.columns._specs` produces, without TensorFlow:

- numeric columns: a float32 ``[num_rows, size]`` matrix (defaults filled in,
  normalizer applied);
- categorical columns (bucketized, vocabulary, hashed, identity, crossed): ragged
  int64 ids identical to ``tf.feature_column``'s (see :mod:`featurepipe.columns._hashing`);
- weighted columns: ids plus their weights (:class:`WeightedIds`);
- indicator columns: the one-hot / multi-hot / count matrix;
- embedding columns: the ids; :func:`combine_embeddings` reduces rows of a given
  table with ``mean`` / ``sum`` / ``sqrtn`` as ``embedding_column`` does.

TensorFlow treats features parsed as dense tensors (``FixedLenFeature``, a schema
shape) differently from sparse ones (``VarLenFeature``): ``''`` / ``-1`` are
dropped from dense categorical inputs and dense raw inputs of a cross come
after the sparse ones. Name the dense features in ``dense_keys`` (for example
with :func:`dense_keys_from_schema`).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from featurepipe.columns import _hashing as hashing
from featurepipe.columns._hashing import Ragged, RaggedLike
from featurepipe.columns._specs import (
    BucketizedColumn,
    CategoricalSpec,
    ColumnSpec,
    ColumnSpecs,
    CrossedColumn,
    EmbeddingColumn,
    HashedColumn,
    IdentityColumn,
    IndicatorColumn,
    NumericColumn,
    VocabularyColumn,
    WeightedColumn,
)
from featurepipe.errors import ConfigError, SchemaMismatchError

__all__ = [
    "ColumnOutput",
    "WeightedIds",
    "categorical_ids",
    "combine_embeddings",
    "dense_keys_from_schema",
    "encode_indicator",
    "numeric_values",
    "transform_features",
]

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class WeightedIds:
    """Ids with one weight per id (a :class:`~featurepipe.columns.WeightedColumn`'s output).

    Attributes:
        ids: the ragged ids.
        weights: float32 weights, ragged exactly like ``ids``.
    """

    ids: Ragged
    weights: Ragged


ColumnOutput = FloatArray | Ragged | WeightedIds


class _SchemaFeature(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def shape(self) -> tuple[int, ...] | None: ...


def dense_keys_from_schema(schema: Iterable[_SchemaFeature]) -> frozenset[str]:
    """The features a schema gives a fixed shape (parsed as dense tensors in TensorFlow).

    Args:
        schema: a :class:`featurepipe.example.Schema`, or any iterable of objects
            with ``name`` and ``shape`` (``None`` for variable length).

    Returns:
        The names of the fixed-shape features.
    """
    return frozenset(f.name for f in schema if f.shape is not None)


def transform_features(
    specs: ColumnSpecs | Sequence[ColumnSpec],
    features: Mapping[str, RaggedLike],
    num_rows: int,
    *,
    dense_keys: Collection[str] = (),
    base_dir: str | os.PathLike[str] | None = None,
) -> dict[str, ColumnOutput]:
    """Computes every spec's output for one batch.

    Args:
        specs: resolved column specs.
        features: decoded features by name, each with ``values`` and
            ``row_lengths`` (e.g. ``ColumnBatch.columns``). A feature missing
            from the mapping has no values in any row.
        num_rows: the number of rows in the batch.
        dense_keys: the features TensorFlow parses as dense tensors. Defaults to `()`.
        base_dir: where relative vocabulary file paths start. Defaults to `None`.

    Returns:
        ``{spec.name: output}``: float32 matrices for numeric columns, :class:`Ragged`
        ids for categorical and embedding columns, :class:`WeightedIds` for weighted
        columns, float32 ``[num_rows, num_ids]`` matrices for indicator columns.

    Raises:
        ConfigError: for unresolved specs or kinds that do not match.
        SchemaMismatchError: for missing numeric values without a default, or
            rows of the wrong length.

    Examples:
        >>> from featurepipe.columns._specs import HashedColumn, NumericColumn
        >>> feats = {"c": Ragged.from_rows([["a"], []]), "x": Ragged.from_rows([[1.0], [3.0]])}
        >>> out = transform_features([HashedColumn("c", 10), NumericColumn("x")], feats, 2)
        >>> out["c"].to_lists(), out["x"].tolist()
        ([[9], []], [[1.0], [3.0]])
    """
    ctx = _Context(features, num_rows, frozenset(dense_keys), base_dir)
    out: dict[str, ColumnOutput] = {}
    for spec in specs:
        out[spec.name] = ctx.output(spec)
    return out


def numeric_values(
    spec: NumericColumn, features: Mapping[str, RaggedLike], num_rows: int
) -> FloatArray:
    """A numeric column's float32 ``[num_rows, size]`` values (defaults, normalizer applied).

    Raises:
        SchemaMismatchError: if a row has no value and the spec no default, or a
            row has another number of values than ``spec.size``.
    """
    return _Context(features, num_rows, frozenset(), None).numeric(spec)


def categorical_ids(
    spec: CategoricalSpec,
    features: Mapping[str, RaggedLike],
    num_rows: int,
    *,
    dense_keys: Collection[str] = (),
    base_dir: str | os.PathLike[str] | None = None,
) -> Ragged:
    """A categorical column's ids, identical to ``tf.feature_column``'s.

    Args:
        spec: a resolved categorical spec (for a :class:`WeightedColumn`, its ids).
        features: decoded features by name.
        num_rows: the number of rows.
        dense_keys: the features TensorFlow parses as dense tensors. Defaults to `()`.
        base_dir: where relative vocabulary file paths start. Defaults to `None`.

    Returns:
        The ragged int64 ids.

    Examples:
        >>> from featurepipe.columns._specs import VocabularyColumn
        >>> spec = VocabularyColumn("c", vocabulary=("a", "b"))
        >>> categorical_ids(spec, {"c": Ragged.from_rows([["b", "q"]])}, 1).to_lists()
        [[1, -1]]
    """
    ctx = _Context(features, num_rows, frozenset(dense_keys), base_dir)
    return ctx.ids(spec)


def encode_indicator(
    ids: Ragged,
    depth: int,
    output_mode: str = "count",
    weights: Ragged | None = None,
) -> FloatArray:
    """One-hot / multi-hot / count encoding of ragged ids, as ``indicator_column``.

    Ids outside ``[0, depth)`` (such as ``-1``) are ignored. With ``weights``
    (``"count"`` mode), each id adds its weight instead of 1.

    Args:
        ids: the ragged ids.
        depth: the number of columns (the categorical column's ``num_ids``).
        output_mode: ``"one_hot"`` (rows must hold at most one id), ``"multi_hot"``
            or ``"count"``. Defaults to `"count"`.
        weights: per-id weights, ragged like ``ids``. Defaults to `None`.

    Returns:
        A float32 ``[num_rows, depth]`` matrix.

    Raises:
        ConfigError: for an unknown mode or a row with several ids in ``"one_hot"``.

    Examples:
        >>> encode_indicator(Ragged.from_rows([[1, 1, -1], [0]]), 3).tolist()
        [[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]]
    """
    if output_mode not in ("one_hot", "multi_hot", "count"):
        raise ConfigError(
            "Unknown value for `output_mode`. Allowed values are: ('one_hot', 'multi_hot', "
            f"'count'). Received: output_mode={output_mode!r}"
        )
    if output_mode == "one_hot" and ids.row_lengths.size and int(ids.row_lengths.max()) > 1:
        raise ConfigError(
            "`output_mode='one_hot'` needs at most one id per row; use 'multi_hot' or "
            f"'count'. Received: a row with {int(ids.row_lengths.max())} ids"
        )
    out = np.zeros((ids.num_rows, depth), dtype=np.float32)
    valid = (ids.values >= 0) & (ids.values < depth)
    rows = ids.row_ids[valid]
    cols = ids.values[valid]
    w = (
        np.ones(rows.shape[0], dtype=np.float32)
        if weights is None
        else np.asarray(weights.values, dtype=np.float32)[valid]
    )
    np.add.at(out, (rows, cols), w)
    if output_mode == "multi_hot":
        np.minimum(out, 1.0, out=out)
    return out


def combine_embeddings(
    table: npt.ArrayLike,
    ids: Ragged | WeightedIds,
    combiner: str = "mean",
) -> FloatArray:
    """Looks ids up in ``table`` and reduces each row, as ``embedding_column`` does.

    Negative ids are skipped, and rows without valid ids give zeros (TF's
    ``safe_embedding_lookup_sparse``). With weights: ``sum`` is ``Σ w·e``,
    ``mean`` is ``Σ w·e / Σ w`` and ``sqrtn`` is ``Σ w·e / sqrt(Σ w²)``.

    Args:
        table: the ``[num_ids, dimension]`` embedding table.
        ids: ragged ids, or :class:`WeightedIds`.
        combiner: ``"mean"``, ``"sum"`` or ``"sqrtn"``. Defaults to `"mean"`.

    Returns:
        A float32 ``[num_rows, dimension]`` matrix.

    Raises:
        ConfigError: for an unknown combiner or ids beyond the table.

    Examples:
        >>> table = np.array([[1.0, 0.0], [0.0, 2.0]])
        >>> combine_embeddings(table, Ragged.from_rows([[0, 1], [], [-1]])).tolist()
        [[0.5, 1.0], [0.0, 0.0], [0.0, 0.0]]
    """
    if combiner not in ("mean", "sum", "sqrtn"):
        raise ConfigError(
            "Unknown value for `combiner`. Allowed values are: ('mean', 'sum', 'sqrtn'). "
            f"Received: combiner={combiner!r}"
        )
    tab = np.asarray(table, dtype=np.float64)
    rag = ids.ids if isinstance(ids, WeightedIds) else ids
    weights = (
        np.asarray(ids.weights.values, dtype=np.float64)
        if isinstance(ids, WeightedIds)
        else np.ones(rag.values.shape[0], dtype=np.float64)
    )
    if rag.values.size and int(rag.values.max()) >= tab.shape[0]:
        raise ConfigError(
            f"An id is beyond the embedding table of {tab.shape[0]} rows. "
            f"Received: id={int(rag.values.max())}"
        )
    valid = rag.values >= 0
    rows = rag.row_ids[valid]
    w = weights[valid]
    out = np.zeros((rag.num_rows, tab.shape[1]), dtype=np.float64)
    np.add.at(out, rows, tab[rag.values[valid]] * w[:, None])
    if combiner != "sum":
        norm = np.zeros(rag.num_rows, dtype=np.float64)
        np.add.at(norm, rows, w if combiner == "mean" else w * w)
        if combiner == "sqrtn":
            norm = np.sqrt(norm)
        np.divide(out, norm[:, None], out=out, where=norm[:, None] != 0)
    return out.astype(np.float32)


# -- implementation ---------------------------------------------------------------------------


class _Context:
    """One batch of features and the options to compute outputs with."""

    def __init__(
        self,
        features: Mapping[str, RaggedLike],
        num_rows: int,
        dense_keys: frozenset[str],
        base_dir: str | os.PathLike[str] | None,
    ) -> None:
        self.features = features
        self.num_rows = num_rows
        self.dense_keys = dense_keys
        self.base_dir = base_dir

    def raw(self, key: str) -> Ragged:
        feat = self.features.get(key)
        if feat is None:
            return Ragged(np.zeros(0, dtype=object), np.zeros(self.num_rows, dtype=np.int64))
        rag = Ragged(np.asarray(feat.values), np.asarray(feat.row_lengths, dtype=np.int64))
        if rag.num_rows != self.num_rows:
            raise ConfigError(
                f"Feature {key!r} has {rag.num_rows} rows; the batch has {self.num_rows}."
            )
        return rag

    def output(self, spec: ColumnSpec) -> ColumnOutput:
        if not spec.is_resolved:
            raise ConfigError(
                f"Column {spec.name!r} is not resolved: pass its vocabulary / boundaries / "
                "statistics or call `ColumnSpecs.resolve(artifacts)` first."
            )
        if isinstance(spec, NumericColumn):
            return self.numeric(spec)
        if isinstance(spec, WeightedColumn):
            return self.weighted(spec)
        if isinstance(spec, CategoricalSpec):
            return self.ids(spec)
        if isinstance(spec, EmbeddingColumn):
            return self.output(spec.categorical_column)
        if isinstance(spec, IndicatorColumn):
            inner = self.output(spec.categorical_column)
            depth = spec.categorical_column.num_ids
            if isinstance(inner, WeightedIds):
                return encode_indicator(inner.ids, depth, spec.output_mode, inner.weights)
            if not isinstance(inner, Ragged):  # a categorical column's output is ids
                raise RuntimeError(
                    f"IndicatorColumn {spec.name!r}: its categorical column gave "
                    f"{type(inner).__name__}, not ids (a bug)"
                )
            return encode_indicator(inner, depth, spec.output_mode)
        raise ConfigError(f"Unsupported column spec: {spec!r}")

    def numeric(self, spec: NumericColumn) -> FloatArray:
        rag = self.raw(spec.key)
        values = rag.values
        if values.size and values.dtype.kind not in "fiu":
            raise ConfigError(
                f"Numeric column {spec.key!r} needs numbers. Received: dtype={values.dtype}"
            )
        size = spec.size
        lengths = rag.row_lengths
        missing = lengths == 0
        bad = ~missing & (lengths != size)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise SchemaMismatchError(
                f"feature {spec.key!r} has {int(lengths[row])} values; its shape "
                f"{spec.shape} needs {size}",
                record=row,
                reason="wrong_value_count",
            )
        if missing.any() and spec.default_value is None:
            row = int(np.flatnonzero(missing)[0])
            raise SchemaMismatchError(
                f"feature {spec.key!r} is missing and its NumericColumn has no default_value",
                record=row,
                reason="missing_value",
            )
        out = np.full((self.num_rows, size), spec.default_value or 0.0, dtype=np.float64)
        out[~missing] = values.astype(np.float64).reshape(-1, size)
        norm = spec.normalizer
        if norm is not None:
            if norm.kind == "log":
                with np.errstate(divide="ignore", invalid="ignore"):
                    out = np.log(out + norm.offset)
            else:
                shift, divisor = norm.scale()
                out = (out - shift) / divisor
        return out.astype(np.float32)

    def ids(self, spec: CategoricalSpec) -> Ragged:
        if isinstance(spec, BucketizedColumn):
            if spec.bin_boundaries is None:
                raise ConfigError(
                    f"Column {spec.name!r} has no bin boundaries: pass them or call "
                    "`ColumnSpecs.resolve(artifacts)` first."
                )
            values = self.numeric(spec.source)
            return hashing.bucketized_ids(Ragged.from_dense(values), spec.bin_boundaries)
        if isinstance(spec, WeightedColumn):
            return self.weighted(spec).ids
        if isinstance(spec, CrossedColumn):
            inputs: list[Ragged] = []
            flags: list[bool] = []
            for leaf in spec.leaf_keys():
                if isinstance(leaf, str):
                    inputs.append(self.raw(leaf))
                    flags.append(leaf in self.dense_keys)
                else:
                    inputs.append(self.ids(leaf))
                    flags.append(False)  # a column's ids are always a SparseTensor
            return hashing.cross_ids(inputs, spec.num_bins, hash_key=spec.hash_key, dense=flags)
        key = spec.key  # type: ignore[attr-defined]
        rag = self.raw(key)
        dense = key in self.dense_keys
        if isinstance(spec, HashedColumn):
            self._check_kind(rag, spec.dtype, spec.name)
            return hashing.hash_bucket_ids(rag, spec.num_bins, dense=dense)
        if isinstance(spec, VocabularyColumn):
            self._check_kind(rag, spec.dtype, spec.name)
            return hashing.vocabulary_ids(
                rag,
                _vocabulary_array(spec.load_vocabulary(self.base_dir), spec.dtype),
                num_oov_buckets=spec.num_oov_buckets,
                default_value=spec.default_value,
                dense=dense,
            )
        if isinstance(spec, IdentityColumn):
            self._check_kind(rag, "int64", spec.name)
            return hashing.identity_ids(
                rag, spec.num_buckets, default_value=spec.default_value, dense=dense
            )
        raise ConfigError(f"Unsupported categorical spec: {spec!r}")

    def weighted(self, spec: WeightedColumn) -> WeightedIds:
        inner = spec.categorical_column
        if isinstance(inner, CrossedColumn | BucketizedColumn | WeightedColumn):
            raise ConfigError(
                "A WeightedColumn needs a vocabulary, hashed or identity column (one id per "
                f"input value). Received: {type(inner).__name__}"
            )
        key = inner.key  # type: ignore[attr-defined]
        raw = self.raw(key)
        weights = self.raw(spec.weight_feature_key)
        if not np.array_equal(weights.row_lengths, raw.row_lengths):
            row = int(np.flatnonzero(weights.row_lengths != raw.row_lengths)[0])
            raise SchemaMismatchError(
                f"feature {spec.weight_feature_key!r} must have one weight per value of "
                f"{key!r}; row has {int(weights.row_lengths[row])} weights for "
                f"{int(raw.row_lengths[row])} values",
                record=row,
                reason="weight_count_mismatch",
            )
        sparse_ctx = _Context(self.features, self.num_rows, self.dense_keys - {key}, self.base_dir)
        ids = sparse_ctx.ids(inner)
        w = np.asarray(weights.values, dtype=np.float32)
        if key in self.dense_keys and raw.values.size:
            keep = ~_is_ignore_value(raw.values)
            ids = Ragged(ids.values[keep], np.bincount(raw.row_ids[keep], minlength=raw.num_rows))
            w = w[keep]
        return WeightedIds(ids, Ragged(w, ids.row_lengths))

    @staticmethod
    def _check_kind(rag: Ragged, dtype: str, name: str) -> None:
        if not rag.values.size:
            return
        kind = rag.values.dtype.kind
        ok = kind in "iu" if dtype == "int64" else kind in "OSU"
        if not ok:
            raise ConfigError(
                f"Column {name!r} expects {dtype} values. Received: values of dtype "
                f"{rag.values.dtype}; set the spec's `dtype` to match the feature."
            )


def _vocabulary_array(vocab: Sequence[Any], dtype: str) -> np.ndarray[Any, Any]:
    if dtype == "int64":
        return np.asarray(vocab, dtype=np.int64)
    arr = np.empty(len(vocab), dtype=object)
    arr[:] = list(vocab)
    return arr


def _is_ignore_value(values: np.ndarray[Any, Any]) -> npt.NDArray[np.bool_]:
    if values.dtype.kind in "iu":
        return np.asarray(values == -1)
    return np.fromiter((v in (b"", "") for v in values.tolist()), dtype=bool, count=values.size)
