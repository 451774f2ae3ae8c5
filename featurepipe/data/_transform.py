"""Records -> column outputs as numpy: the compiled plan, and its pure-Python twin.

The outputs are the ones :func:`featurepipe.keras.make_dataset` gives with
``columns=`` (``tf.io.parse_example`` + ``ColumnTransform``), bit for bit:

- numeric columns: float32 ``[B, size]`` (defaults filled, normalizer applied);
- categorical columns (and the ids of embedding / indicator columns, under
  their own name, as :func:`featurepipe.columns.model_columns` names them):
  int64 ``[B, L]`` padded with ``-1`` (``tf.sparse.to_dense(ids, -1)``: ``L``
  is the longest row of the batch; a column on a fixed-shape feature keeps
  one cell per value, ``-1`` where ``''`` / ``-1`` was dropped);
- weighted columns: the ids under the column's name and float32 weights under
  ``name + "__weights"``, padded with 0;
- the label: the label feature's values, ``[B, *shape]`` of its kind.

:meth:`ColumnComputer.compute` runs the compiled :class:`~featurepipe.columns.ColumnPlan`
where it can and the pure-Python path otherwise (decode with
:func:`featurepipe.example.decode_examples`, then the numpy transforms of
:mod:`featurepipe.columns`, the reference implementation), and turns padded
ids into :class:`RaggedIds` in ``ids="offsets"`` mode.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, NamedTuple, cast

import numpy as np

from featurepipe.columns import (
    BucketizedColumn,
    CategoricalSpec,
    ColumnPlan,
    ColumnSpecs,
    HashedColumn,
    IdentityColumn,
    NumericColumn,
    PlanFeature,
    Ragged,
    VocabularyColumn,
    WeightedColumn,
    WeightedIds,
    bucketized_ids,
    categorical_ids,
    compile_columns,
    model_columns,
    native_columns_available,
    numeric_values,
    transform_features,
)
from featurepipe.errors import ConfigError, DataError, SchemaMismatchError
from featurepipe.example import decode_examples

__all__ = ["WEIGHTS_SUFFIX", "ColumnComputer", "Locations", "RaggedIds", "Where", "locate"]

#: Appended to a weighted column's name for its weights in ``ids="padded"`` mode
#: (as ``featurepipe.keras`` names them).
WEIGHTS_SUFFIX = "__weights"

_DTYPES = {"float": np.float32, "int64": np.int64, "bytes": object}


class RaggedIds(NamedTuple):
    """A batch of variable-length ids, flat, as ``torch.nn.EmbeddingBag`` takes them.

    ``EmbeddingBag(values, offsets, per_sample_weights=weights)``: row ``r``
    holds ``values[offsets[r]:offsets[r + 1]]`` (the last row runs to the end).
    Negative ids (padding, and the ``-1`` of a value a column maps to no id)
    are left out: these are the ids an embedding lookup uses.

    Attributes:
        values: int64 ``[N]``, every row's ids in row order.
        offsets: int64 ``[B]``, where each row starts in ``values``.
        weights: float32 ``[N]``, one weight per id (weighted columns), or `None`.

    Examples:
        >>> r = RaggedIds.from_padded(np.array([[3, 1], [-1, -1], [2, -1]]))
        >>> r.values.tolist(), r.offsets.tolist(), r.weights
        ([3, 1, 2], [0, 2, 2], None)
        >>> r.to_lists()
        [[3, 1], [], [2]]
    """

    values: np.ndarray[Any, np.dtype[np.int64]]
    offsets: np.ndarray[Any, np.dtype[np.int64]]
    weights: np.ndarray[Any, np.dtype[np.float32]] | None = None

    @classmethod
    def from_padded(
        cls,
        ids: np.ndarray[Any, Any],
        weights: np.ndarray[Any, Any] | None = None,
    ) -> RaggedIds:
        """From ``[B, L]`` ids padded with ``-1`` (and their weights), keeping ids >= 0."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim == 1:
            ids = ids.reshape(-1, 1)
        keep = ids >= 0
        counts = keep.sum(axis=1, dtype=np.int64)
        offsets = np.zeros(ids.shape[0], dtype=np.int64)
        if ids.shape[0] > 1:
            np.cumsum(counts[:-1], out=offsets[1:])
        w = None if weights is None else np.asarray(weights, dtype=np.float32)[keep]
        return cls(ids[keep], offsets, w)

    def to_lists(self) -> list[list[int]]:
        """The ids of each row as lists."""
        ends = [*self.offsets.tolist()[1:], len(self.values)]
        vals = self.values.tolist()
        return [vals[s:e] for s, e in zip(self.offsets.tolist(), ends, strict=True)]


class Where(NamedTuple):
    """Where each row of a batch comes from, for error messages."""

    paths: Sequence[str]
    records: Sequence[int]
    offsets: Sequence[int]


#: Where the rows of a batch come from: a :class:`Where`, a sequence of
#: ``(path, record, offset)`` per row, or a function of the row giving it (or `None`).
Locations = (
    Where | Sequence[tuple[str, int, int] | None] | Callable[[int], tuple[str, int, int] | None]
)


def locate(e: DataError, where: Locations | None, rows: int) -> DataError:
    """``e`` (about row ``e.record`` of a batch of ``rows``) about the file, record and offset
    instead, when ``where`` tells them; else ``e`` itself."""
    if where is None or e.path is not None or e.record is None:
        return e
    row = e.record
    if not 0 <= row < rows:
        return e
    if isinstance(where, Where):
        if row >= len(where.paths):
            return e
        got: tuple[str, int, int] | None = (
            where.paths[row],
            where.records[row],
            where.offsets[row],
        )
    elif callable(where):
        got = where(row)
    else:
        got = where[row] if row < len(where) else None
    if got is None:
        return e
    path, record, offset = got
    return type(e)(e.detail, path=path, record=record, offset=offset, reason=e.reason)


class ColumnComputer:
    """Column specs + the features' decoding: serialized records -> named arrays.

    Picklable (the compiled plan is built again where it is used).

    Args:
        specs: resolved column specs.
        features: how each feature is decoded (label included).
        label_key: the label feature, or `None`.
        native: `None`: the compiled plan when it is built and supports the
            columns, else pure Python; `True`: require the plan; `False`: pure Python.
        ids: ``"padded"`` or ``"offsets"``.
        base_dir: where relative vocabulary files start.
    """

    def __init__(
        self,
        specs: ColumnSpecs,
        features: Mapping[str, PlanFeature],
        *,
        label_key: str | None,
        native: bool | None,
        ids: str,
        base_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.specs = specs
        self.features = dict(features)
        self.label_key = label_key
        self.native = native
        self.ids = ids
        self.base_dir = base_dir
        self.dense_keys: Collection[str] = frozenset(
            k for k, f in self.features.items() if f.shape is not None
        )
        self.columns = model_columns(specs)
        self._plan: ColumnPlan | None = None
        self._plan_tried = False
        if label_key is not None:
            label = self.features[label_key]
            if label.shape is None or None in label.shape:
                raise ConfigError(
                    f"The label {label_key!r} must have a fixed shape; the schema gives it a "
                    "variable length. Give it a shape in the schema (e.g. shape=())."
                )
        if native and self.plan is None:
            raise ConfigError(
                "`native=True` but the compiled column path cannot run here: "
                + (
                    "featurepipe._speedups is not built."
                    if not native_columns_available()
                    else "the features or the columns need the pure-Python path "
                    "(weighted columns, nested crosses, numbers from a variable-length "
                    "feature, ...)."
                )
                + " Pass native=None to fall back to pure Python."
            )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_plan"] = None  # a C capsule: compiled again where it is used
        state["_plan_tried"] = False
        return state

    @property
    def plan(self) -> ColumnPlan | None:
        """The compiled plan, or `None` (pure Python)."""
        if not self._plan_tried:
            self._plan_tried = True
            if self.native is not False:
                self._plan = compile_columns(
                    self.features,
                    self.specs,
                    label_key=self.label_key,
                    dense_keys=self.dense_keys,
                    base_dir=self.base_dir,
                )
        return self._plan

    @property
    def keys(self) -> list[str]:
        """The feature keys of a batch, in order."""
        out = []
        for name, spec in self.columns:
            out.append(name)
            if isinstance(spec, WeightedColumn) and self.ids == "padded":
                out.append(name + WEIGHTS_SUFFIX)
        return out

    def compute(
        self, records: list[bytes], where: Where | None = None
    ) -> tuple[dict[str, Any], np.ndarray[Any, Any] | None]:
        """``(features, label)`` of a batch of serialized records.

        Raises:
            DataError: for records the columns cannot read (naming the file,
                record and byte offset when ``where`` says them).
        """
        plan = self.plan
        arrays = plan.run(records) if plan is not None else None
        return self.finish(records, arrays, where)

    def finish(
        self,
        records: list[bytes],
        arrays: list[np.ndarray[Any, Any]] | None,
        where: Where | None = None,
    ) -> tuple[dict[str, Any], np.ndarray[Any, Any] | None]:
        """``(features, label)`` from the plan's ``arrays`` for ``records`` (``ColumnPlan.run``
        or ``.arrays`` of a runner's result), or from the pure-Python path where `None`."""
        if arrays is not None and self._plan is not None:
            outs: dict[str, Any] = dict(zip(self._plan.inputs, arrays, strict=False))
            label = arrays[-1] if self.label_key is not None else None
        else:
            try:
                outs, label = self._python(records)
            except DataError as e:
                raise locate(e, where, len(records)) from e
        if self.ids == "offsets":
            outs = self._offsets(outs)
        return outs, label

    def _offsets(self, outs: dict[str, Any]) -> dict[str, Any]:
        res: dict[str, Any] = {}
        for name, spec in self.columns:
            if isinstance(spec, NumericColumn):
                res[name] = outs[name]
            elif isinstance(spec, WeightedColumn):
                res[name] = RaggedIds.from_padded(outs[name], outs[name + WEIGHTS_SUFFIX])
            else:
                res[name] = RaggedIds.from_padded(outs[name])
        return res

    # -- the pure-Python path -----------------------------------------------------------------

    def _python(self, records: list[bytes]) -> tuple[dict[str, Any], np.ndarray[Any, Any] | None]:
        n = len(records)
        batch = decode_examples(records, native=False if self.native is False else None)
        parsed: dict[str, Ragged] = {}
        for key, feature in self.features.items():
            parsed[key] = _parse(key, feature, batch.columns.get(key), n)
        label = None
        if self.label_key is not None:
            feature = self.features[self.label_key]
            lab = parsed.pop(self.label_key)
            shape = tuple(int(d or 0) for d in feature.shape or ())
            label = np.asarray(lab.values).reshape((n, *shape))
        out: dict[str, Any] = {}
        for name, spec in self.columns:
            if isinstance(spec, NumericColumn):
                out[name] = self._numeric(spec, parsed, n)
            elif isinstance(spec, WeightedColumn):
                got = transform_features(
                    [spec], parsed, n, dense_keys=self.dense_keys, base_dir=self.base_dir
                )[spec.name]
                got = cast(WeightedIds, got)  # a weighted column's output
                out[name] = _pad(got.ids, -1, np.int64)
                out[name + WEIGHTS_SUFFIX] = _pad(got.weights, 0.0, np.float32)
            elif isinstance(spec, CategoricalSpec):
                out[name] = self._ids(spec, parsed, n)
            else:  # model_columns gives numeric and categorical specs only
                raise ConfigError(f"Unsupported column spec: {spec!r}")
        return out, label

    def _numeric(
        self, spec: NumericColumn, parsed: Mapping[str, Ragged], n: int
    ) -> np.ndarray[Any, Any]:
        feature = self.features.get(spec.key)
        if feature is None:
            raise ConfigError(f"Feature {spec.key!r} of column {spec.name!r} is not decoded.")
        if feature.kind == "bytes":
            raise ConfigError(
                f"Numeric column {spec.name!r} needs numbers; feature {spec.key!r} holds bytes."
            )
        rag = parsed[spec.key]
        if feature.shape is None:
            # ColumnTransform: to_dense(default) of [B, longest row], then [-1, size]
            longest = int(rag.row_lengths.max()) if n else 0
            if n and longest != spec.size:
                raise SchemaMismatchError(
                    f"feature {spec.key!r} is variable-length; its longest row here has "
                    f"{longest} values but the column's shape {spec.shape} needs {spec.size}",
                    record=int(rag.row_lengths.argmax()),
                    reason="wrong_value_count",
                )
            dense = np.full((n, spec.size), spec.default_value or 0, dtype=rag.values.dtype)
            mask = np.arange(spec.size)[None, :] < rag.row_lengths[:, None]
            dense[mask] = rag.values
            rag = Ragged.from_dense(dense)
        elif math.prod(int(d or 0) for d in feature.shape) != spec.size:
            raise ConfigError(
                f"Numeric column {spec.name!r} has shape {spec.shape} but feature {spec.key!r} "
                f"is decoded with shape {feature.shape}; make them match."
            )
        return numeric_values(spec, {spec.key: rag}, n)

    def _ids(
        self, spec: CategoricalSpec, parsed: Mapping[str, Ragged], n: int
    ) -> np.ndarray[Any, Any]:
        if isinstance(spec, BucketizedColumn):
            values = self._numeric(spec.source, parsed, n)
            ids = bucketized_ids(Ragged.from_dense(values), spec.bin_boundaries or ())
            return ids.values.reshape(n, spec.source.size)
        if (
            isinstance(spec, HashedColumn | VocabularyColumn | IdentityColumn)
            and spec.key in self.dense_keys
        ):
            # A fixed-shape feature keeps one cell per value: -1 where '' / -1 is dropped.
            rag = parsed[spec.key]
            all_ids = categorical_ids(spec, parsed, n, base_dir=self.base_dir)
            width = int(rag.row_lengths[0]) if n else 0
            cells = all_ids.values.reshape(n, width)
            raw = np.asarray(rag.values).reshape(n, width)
            if raw.dtype.kind in "iu":
                ignore = raw == -1
            else:
                ignore = np.frompyfunc(lambda v: v in (b"", ""), 1, 1)(raw).astype(bool)
            return np.where(ignore, np.int64(-1), cells).astype(np.int64)
        got = categorical_ids(spec, parsed, n, dense_keys=self.dense_keys, base_dir=self.base_dir)
        return _pad(got, -1, np.int64)


def _pad(rag: Ragged, fill: Any, dtype: Any) -> np.ndarray[Any, Any]:
    """``tf.sparse.to_dense``: ``[rows, longest row]``, left-aligned, padded with ``fill``."""
    n = rag.num_rows
    width = int(rag.row_lengths.max()) if n else 0
    out = np.full((n, width), fill, dtype=dtype)
    mask = np.arange(width)[None, :] < rag.row_lengths[:, None]
    out[mask] = rag.values
    return out


def _parse(key: str, feature: PlanFeature, col: Any, n: int) -> Ragged:
    """One feature as ``tf.io.parse_example`` decodes it, as a Ragged (fixed rows for dense)."""
    dtype = _DTYPES[feature.kind]
    if col is not None and col.kind is not None and col.kind != feature.kind:
        row = int(np.flatnonzero(col.present)[0]) if col.present.any() else 0
        raise SchemaMismatchError(
            f"feature {key!r} holds {col.kind} values; it is decoded as {feature.kind} "
            "(from the schema or the columns). Fix the schema or the column's dtype.",
            record=row,
            reason="wrong_kind",
        )
    if col is None or col.kind is None:
        values = np.zeros(0, dtype=dtype)
        lengths = np.zeros(n, dtype=np.int64)
        present = np.zeros(n, dtype=bool)
    else:
        values = np.asarray(col.values).astype(dtype, copy=False)
        lengths = np.asarray(col.row_lengths, dtype=np.int64)
        present = np.asarray(col.present, dtype=bool)
    if feature.shape is None:
        return Ragged(values, lengths)
    fixed = math.prod(feature.shape)  # type: ignore[arg-type]
    bad = present & (lengths != fixed)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SchemaMismatchError(
            f"feature {key!r} has {int(lengths[row])} values; its fixed shape "
            f"{tuple(feature.shape)} needs {fixed}",
            record=row,
            reason="wrong_value_count",
        )
    missing = ~present
    if missing.any():
        if feature.default is None:
            row = int(np.flatnonzero(missing)[0])
            raise SchemaMismatchError(
                f"feature {key!r} is required (fixed shape {tuple(feature.shape)}, no default) "
                "but missing; give it a default in the schema or the column",
                record=row,
                reason="missing_value",
            )
        default = feature.default
        if feature.kind == "bytes":
            cells = np.broadcast_to(np.asarray(default, dtype=object), feature.shape).ravel()  # type: ignore[arg-type]
            fill = np.empty(fixed, dtype=object)
            fill[:] = [c.encode("utf-8") if isinstance(c, str) else bytes(c) for c in cells]
        else:
            fill = np.broadcast_to(np.asarray(default, dtype=dtype), feature.shape).ravel()  # type: ignore[arg-type]
        full = np.empty((n, fixed), dtype=dtype)
        full[present] = values.reshape(-1, fixed)
        full[missing] = fill
        values = full.reshape(-1)
    return Ragged(values, np.full(n, fixed, dtype=np.int64))
