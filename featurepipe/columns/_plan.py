"""Column specs compiled to one C pass per batch, without TensorFlow.

:func:`compile_columns` turns column specs and the way their features are
decoded (:class:`PlanFeature`, what a ``tf.io.parse_example`` spec says of a
feature, in featurepipe's kinds ``"bytes"`` / ``"float"`` / ``"int64"``) into
the plan of ``featurepipe._speedups.columns_compile``. Run on a batch of
serialized ``tf.Example`` records (:meth:`ColumnPlan.run`, or the native
threads of a ``_speedups.ColumnsRunner`` given :attr:`ColumnPlan.handle`), the
plan decodes the features the columns need straight from the records and
computes every column's ids and numbers in place, without the GIL: the arrays
``tf.io.parse_example`` + :class:`featurepipe.keras.ColumnTransform` give, bit
for bit (ids ``[batch, max_ids]`` padded with ``-1``, numbers float32
``[batch, size]``).

It computes them exactly or gives up: a plan is built only for what the C code
computes exactly (hashed, vocabulary, identity, bucketized, numeric and crossed
columns on fixed-shape or variable-length inputs; :func:`compile_columns`
returns `None` otherwise), and a batch the C decoder cannot decode exactly like
``tf.io.parse_example`` (see ``csrc/kernels/columns.c``) gives `None`: the caller
then runs its own path on that batch (the TF ops in :mod:`featurepipe.keras`),
which also raises that path's errors for bad data.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from featurepipe._native import speedups
from featurepipe.columns._hashing import DEFAULT_HASH_KEY
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
)

__all__ = [
    "ColumnPlan",
    "PlanFeature",
    "compile_columns",
    "model_columns",
    "native_columns_available",
]

_K_BYTES, _K_FLOAT, _K_INT64 = 1, 2, 3
_OP_NUMERIC, _OP_BUCKET, _OP_HASH, _OP_VOCAB, _OP_IDENTITY, _OP_CROSS, _OP_RAW = range(1, 8)
_NORM_NONE, _NORM_LOG, _NORM_AFFINE = 0, 1, 2
_KINDS = {"bytes": _K_BYTES, "float": _K_FLOAT, "int64": _K_INT64}
_KIND_DTYPES: dict[str, np.dtype[Any]] = {
    "float": np.dtype(np.float32),
    "int64": np.dtype(np.int64),
}

_speedups: Any = speedups


def native_columns_available() -> bool:
    """Whether the compiled column path is built (``featurepipe._speedups``).

    Examples:
        >>> isinstance(native_columns_available(), bool)
        True
    """
    return _speedups is not None


@dataclass(frozen=True)
class PlanFeature:
    """How a feature is decoded: a ``tf.io.parse_example`` spec entry, without TF.

    Attributes:
        kind: ``"bytes"``, ``"float"`` or ``"int64"`` (the tf.Example list).
        shape: the fixed shape of a dense feature (``FixedLenFeature``), or
            `None` for a variable-length one (``VarLenFeature``).
        default: a dense feature's default value (a scalar, broadcast to the
            shape, or one value per cell); `None`: the feature is required.
    """

    kind: str
    shape: tuple[int | None, ...] | None = None
    default: Any = None


def model_columns(specs: ColumnSpecs | Sequence[ColumnSpec]) -> list[tuple[str, ColumnSpec]]:
    """``(input name, spec computed for it)`` for every column the model consumes.

    Embedding and indicator columns get the ids of their categorical column
    under their own (unique) name, so two views of differently configured
    columns on the same feature never clash.

    Examples:
        >>> from featurepipe.columns import HashedColumn, IndicatorColumn
        >>> [(n, c.name) for n, c in model_columns([IndicatorColumn(HashedColumn("c", 4))])]
        [('c_indicator', 'c')]
    """
    out: list[tuple[str, ColumnSpec]] = []
    for spec in specs:
        if isinstance(spec, EmbeddingColumn | IndicatorColumn):
            out.append((spec.name, spec.categorical_column))
        else:
            out.append((spec.name, spec))
    return out


class _UnsupportedError(Exception):
    """The plan needs something the compiled path does not compute."""


class ColumnPlan:
    """Column specs compiled for ``featurepipe._speedups``: records -> arrays.

    Build it with :func:`compile_columns`. Its outputs are the model inputs
    (:func:`model_columns`, in that order), then the label if it has one.

    Attributes:
        handle: the C plan, for ``_speedups.columns_run`` / ``ColumnsRunner``.
        names: the output names.
        dtypes: their numpy dtypes (float32 numbers, int64 ids; the label's kind).
        label_key: the label feature, or `None`.
        label_shape: the label's shape (without the batch dimension).
    """

    def __init__(
        self,
        handle: Any,
        names: list[str],
        dtypes: list[np.dtype[Any]],
        label_key: str | None,
        label_shape: tuple[int, ...],
    ) -> None:
        self.handle = handle
        self.names = names
        self.dtypes = dtypes
        self.label_key = label_key
        self.label_shape = label_shape

    @property
    def inputs(self) -> list[str]:
        """The names of the model inputs (the outputs less the label)."""
        return self.names[:-1] if self.label_key is not None else list(self.names)

    def run(self, records: list[bytes]) -> list[np.ndarray[Any, Any]] | None:
        """The outputs of one batch as arrays (inputs in order, then the label), or `None`
        where the batch needs the caller's own path (see the module docstring)."""
        return self.arrays(_speedups.columns_run(self.handle, records), len(records))

    def arrays(self, got: Any, n: int) -> list[np.ndarray[Any, Any]] | None:
        """Arrays over what ``columns_run`` / ``ColumnsRunner.take`` gave for ``n`` records.

        No copy: each array is a read-only view of the C buffer.
        """
        if got is None:
            return None
        bufs, widths = got
        out = []
        for buf, width, dtype in zip(bufs, widths, self.dtypes, strict=True):
            out.append(np.frombuffer(buf, dtype=dtype).reshape(n, width))
        if self.label_key is not None:
            out[-1] = out[-1].reshape((n, *self.label_shape))
        return out


def compile_columns(
    features: Mapping[str, PlanFeature],
    specs: ColumnSpecs | Sequence[ColumnSpec],
    *,
    label_key: str | None = None,
    dense_keys: Collection[str] = (),
    base_dir: Any = None,
) -> ColumnPlan | None:
    """The compiled plan of resolved column specs, or `None` where it cannot run.

    `None` when ``featurepipe._speedups`` is not built, or when the features or
    the columns need something only the framework ops compute (weighted
    columns, nested crosses, numbers from bytes, unknown shapes, ...).

    Args:
        features: how each feature is decoded (in the order of a parse spec).
        specs: resolved column specs.
        label_key: a dense, numeric feature returned as the last output, or `None`.
        dense_keys: the dense features whose ``''`` / ``-1`` cells categorical
            columns drop (``tf.feature_column``'s rule for dense inputs). Defaults
            to `()`.
        base_dir: where relative vocabulary files start. Defaults to `None`.

    Returns:
        The plan, or `None`.

    Examples:
        >>> from featurepipe.columns import HashedColumn, NumericColumn
        >>> from featurepipe.example import encode_example
        >>> feats = {"c": PlanFeature("bytes"), "x": PlanFeature("float", (1,), 0.0)}
        >>> plan = compile_columns(feats, [HashedColumn("c", 10), NumericColumn("x")])
        >>> recs = [encode_example({"c": ["a"], "x": [1.0]}), encode_example({})]
        >>> got = plan.run(recs) if plan is not None else None  # None: _speedups not built
        >>> got is None or [a.tolist() for a in got] == [[[9], [-1]], [[1.0], [0.0]]]
        True
    """
    if _speedups is None:
        return None
    try:
        return _compile(features, specs, label_key, frozenset(dense_keys), base_dir)
    except _UnsupportedError:
        return None


def _compile(
    features: Mapping[str, PlanFeature],
    specs: ColumnSpecs | Sequence[ColumnSpec],
    label_key: str | None,
    dense_keys: frozenset[str],
    base_dir: Any,
) -> ColumnPlan:
    keys = list(features)
    index = {k: i for i, k in enumerate(keys)}
    feats = [_feature_desc(k, features[k]) for k in keys]
    vocabs: list[tuple[bool, list[Any]]] = []
    builder = _OpBuilder(features, index, dense_keys, base_dir, vocabs)
    ops: list[tuple[Any, ...]] = []
    names: list[str] = []
    dtypes: list[np.dtype[Any]] = []
    for name, col in model_columns(specs):
        ops.append(builder.output(col))
        names.append(name)
        dtypes.append(_KIND_DTYPES["float" if isinstance(col, NumericColumn) else "int64"])
    label_shape: tuple[int, ...] = ()
    if label_key is not None:
        feature = features[label_key]
        if feature.shape is None or feature.kind not in _KIND_DTYPES:
            raise _UnsupportedError(label_key)
        # _feature_desc refused unknown dimensions: the filter only narrows the type
        label_shape = tuple(int(d) for d in feature.shape if d is not None)
        ops.append(_op(_OP_RAW, index[label_key]))
        names.append(label_key)
        dtypes.append(_KIND_DTYPES[feature.kind])
    try:
        handle = _speedups.columns_compile(feats, ops, vocabs)
    except ValueError as e:  # a combination the C plan refuses
        raise _UnsupportedError(str(e)) from e
    return ColumnPlan(handle, names, dtypes, label_key, label_shape)


def _op(
    op: int,
    fidx: int = -1,
    *,
    drop: bool = False,
    size: int = 0,
    norm: tuple[int, float, float] = (_NORM_NONE, 0.0, 0.0),
    bounds: tuple[float, ...] = (),
    num_bins: int = 0,
    vocab: int = -1,
    num_oov: int = 0,
    default: int | None = None,
    hash_key: int = 0,
    leaves: tuple[tuple[Any, ...], ...] = (),
) -> tuple[Any, ...]:
    """One op of the C plan, in the order ``columns_compile`` reads it."""
    return (
        op,
        fidx,
        drop,
        size,
        norm[0],
        norm[1],
        norm[2],
        bounds,
        num_bins,
        vocab,
        num_oov,
        default,
        hash_key,
        leaves,
    )


def _feature_desc(key: str, feature: PlanFeature) -> tuple[Any, ...]:
    name = key.encode("utf-8")
    kind = _KINDS.get(feature.kind)
    if kind is None:
        raise _UnsupportedError(key)
    if feature.shape is None:
        return (name, kind, -1, None)
    shape = tuple(d for d in feature.shape if d is not None and d >= 0)
    if len(shape) != len(feature.shape):
        raise _UnsupportedError(key)
    fixed = math.prod(shape)
    default = feature.default
    if default is None:
        return (name, kind, fixed, None)
    if kind == _K_BYTES:
        cells = np.broadcast_to(np.asarray(default, dtype=object), shape).ravel().tolist()
        values: list[Any] = [c.encode("utf-8") if isinstance(c, str) else bytes(c) for c in cells]
    elif kind == _K_INT64:
        values = [int(v) for v in np.broadcast_to(np.asarray(default), shape).ravel()]
    else:
        values = [float(v) for v in np.broadcast_to(np.asarray(default), shape).ravel()]
    if len(values) != fixed:
        raise _UnsupportedError(key)
    return (name, kind, fixed, values)


class _OpBuilder:
    """Column specs to the C plan's ops, mirroring ColumnTransform's choices."""

    def __init__(
        self,
        features: Mapping[str, PlanFeature],
        index: Mapping[str, int],
        dense_keys: frozenset[str],
        base_dir: Any,
        vocabs: list[tuple[bool, list[Any]]],
    ) -> None:
        self.features = features
        self.index = index
        self.dense_keys = dense_keys
        self.base_dir = base_dir
        self.vocabs = vocabs
        # By vocabulary, not by feature: two vocabulary columns of one feature may
        # have different vocabularies (tf.feature_column allows it).
        self._vocab_index: dict[tuple[Any, ...], int] = {}

    def _feature(self, key: str) -> tuple[int, PlanFeature]:
        if key not in self.index:
            raise _UnsupportedError(key)
        return self.index[key], self.features[key]

    def _dense(self, key: str) -> bool:
        return self.features[key].shape is not None

    def output(self, col: ColumnSpec) -> tuple[Any, ...]:
        if isinstance(col, NumericColumn):
            return self._numeric(col, _OP_NUMERIC)
        if isinstance(col, CategoricalSpec):
            return self.ids(col)
        raise _UnsupportedError(type(col).__name__)

    def _numeric(
        self, col: NumericColumn, op: int, bounds: tuple[float, ...] = ()
    ) -> tuple[Any, ...]:
        fidx, feature = self._feature(col.key)
        if feature.shape is None or feature.kind == "bytes":
            raise _UnsupportedError(col.key)
        if math.prod(feature.shape) != col.size:  # type: ignore[arg-type]
            raise _UnsupportedError(col.key)
        norm = col.normalizer
        triple: tuple[int, float, float] = (_NORM_NONE, 0.0, 0.0)
        if norm is not None:
            if norm.kind == "log":
                triple = (_NORM_LOG, float(norm.offset), 0.0)
            else:
                shift, divisor = norm.scale()
                triple = (_NORM_AFFINE, float(shift), float(divisor))
        return _op(op, fidx, size=col.size, norm=triple, bounds=bounds)

    def ids(self, col: CategoricalSpec) -> tuple[Any, ...]:
        if isinstance(col, BucketizedColumn):
            return self._numeric(col.source, _OP_BUCKET, tuple(col.bin_boundaries or ()))
        if isinstance(col, CrossedColumn):
            sparse: list[tuple[Any, ...]] = []
            dense: list[tuple[Any, ...]] = []
            for leaf in col.leaf_keys():
                if isinstance(leaf, str):
                    fidx, _ = self._feature(leaf)
                    (dense if self._dense(leaf) else sparse).append(_op(_OP_RAW, fidx))
                elif isinstance(leaf, CrossedColumn):
                    raise _UnsupportedError("nested cross")
                else:
                    sparse.append(self.ids(leaf))  # ids are always sparse (SparseCross order)
            key = col.hash_key or DEFAULT_HASH_KEY
            return _op(_OP_CROSS, num_bins=col.num_bins, hash_key=key, leaves=(*sparse, *dense))
        if not isinstance(col, HashedColumn | VocabularyColumn | IdentityColumn):
            raise _UnsupportedError(type(col).__name__)
        fidx, _ = self._feature(col.key)
        drop = self._dense(col.key) and col.key in self.dense_keys
        if isinstance(col, HashedColumn):
            return _op(_OP_HASH, fidx, drop=drop, num_bins=col.num_bins)
        if isinstance(col, IdentityColumn):
            return _op(
                _OP_IDENTITY, fidx, drop=drop, num_bins=col.num_buckets, default=col.default_value
            )
        return _op(
            _OP_VOCAB,
            fidx,
            drop=drop,
            vocab=self._vocabulary(col),
            num_oov=col.num_oov_buckets,
            default=col.default_value,
        )

    def _vocabulary(self, col: VocabularyColumn) -> int:
        ident = (col.dtype, col.vocabulary, col.vocabulary_size)
        if ident not in self._vocab_index:
            vocab = col.load_vocabulary(self.base_dir)
            is_str = col.dtype == "string"
            entries = [
                v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v for v in vocab
            ]
            if any(isinstance(v, bytes) != is_str for v in entries):
                raise _UnsupportedError(col.name)  # the TF table refuses these too
            self._vocab_index[ident] = len(self.vocabs)
            self.vocabs.append((is_str, entries))
        return self._vocab_index[ident]
