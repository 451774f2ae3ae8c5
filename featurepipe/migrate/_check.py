"""``featurepipe migrate check``: tf.feature_column's ids and values == featurepipe's, on your data.

The records are read once (featurepipe's reader) and every batch goes to both sides:

- **TensorFlow**: ``tf.io.parse_example`` with the columns' parse spec
  (``make_parse_example_spec``), then, through ``feature_column_v2``'s
  ``FeatureTransformationCache`` (what ``DenseFeatures`` and the Estimator's
  input layer use, and what works in TF 2.21 without ``tf_keras``), each
  categorical column's sparse ids (``get_sparse_tensors``; its weights for a
  weighted column), each numeric column's values and each indicator column's
  vector (``get_dense_tensor``). Embedding columns are compared on the ids they
  look up: their tables are model weights (the model-output section compares
  those).
- **featurepipe**: the column specs (converted now, or a ``columns.json``),
  by each of featurepipe's three implementations (``engines``):
  ``"numpy"`` (:func:`featurepipe.columns.transform_features` on the batch
  decoded by featurepipe: the reference, exact ids with every ``-1``),
  ``"plan"`` (:func:`featurepipe.columns.compile_columns`, the C pass
  ``make_dataset`` runs when it can) and ``"keras"``
  (:class:`featurepipe.keras.ColumnTransform`, the TF ops ``make_dataset`` and
  the serving signature run), the last two on what the model reads: ids
  padded with ``-1``, so ``-1`` ids are left out of their comparison (a model
  ignores them either way, as TF's embedding and linear lookups do).

Columns are matched by name. Ids must be equal; float values may differ by
``tolerance * max(1, |tensorflow value|)``. The :class:`CheckReport` gives, per
column, the rows compared, the rows that differ and the first differing rows
with both values; its ``outputs`` section is where the comparison of the old
SavedModel's outputs with the migrated model's goes (not implemented yet).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featurepipe.columns import (
    CategoricalSpec,
    ColumnSpec,
    ColumnSpecs,
    EmbeddingColumn,
    IndicatorColumn,
    NumericColumn,
    PlanFeature,
    Ragged,
    WeightedColumn,
    WeightedIds,
    compile_columns,
    model_columns,
    transform_features,
)
from featurepipe.errors import ConfigError, DataError, FeaturepipeError
from featurepipe.example import decode_examples
from featurepipe.migrate._columns import MigratedColumns, MigrationWarning, _Converter, _kind
from featurepipe.tfrecord import batch_records, expand_paths, iter_records

__all__ = ["ENGINES", "CheckReport", "ColumnCheck", "RowDifference", "check_columns"]

_SHOWN_VALUES = 12  # values of a row shown in a difference
_WEIGHTS_SUFFIX = "__weights"
#: featurepipe's implementations of the columns that the check compares with TensorFlow.
ENGINES = ("numpy", "plan", "keras")


@dataclass(frozen=True)
class RowDifference:
    """One row where TensorFlow and featurepipe disagree.

    Attributes:
        row: 0-based row over all the data read.
        path: the file of the record.
        record: the record's 0-based index in its file.
        tensorflow: what TensorFlow computed, by item (``"ids"``, ``"weights"``,
            ``"values"``, ``"indicator"``), or an error message.
        featurepipe: the same from featurepipe.
        engine: the featurepipe implementation that differs (``"numpy"``,
            ``"plan"`` or ``"keras"``; the first one when several do).
    """

    row: int
    path: str | None
    record: int
    tensorflow: Mapping[str, Any]
    featurepipe: Mapping[str, Any]
    engine: str = "numpy"

    def to_json(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "row": self.row,
            "path": self.path,
            "record": self.record,
            "engine": self.engine,
            "tensorflow": dict(self.tensorflow),
            "featurepipe": dict(self.featurepipe),
        }


@dataclass
class ColumnCheck:
    """The comparison of one column.

    Attributes:
        name: the column name (TensorFlow's and featurepipe's).
        kind: the ``tf.feature_column`` class.
        compared: what was compared, e.g. ``("ids", "weights")``.
        engines: the featurepipe implementations compared with TensorFlow.
        rows: rows compared.
        differing: rows where something differs.
        differences: the first differing rows.
        problem: why the column could not be compared, or the first error one
            side raised; `None` when there was none.
    """

    name: str
    kind: str
    compared: tuple[str, ...] = ()
    engines: tuple[str, ...] = ()
    rows: int = 0
    differing: int = 0
    differences: list[RowDifference] = field(default_factory=list)
    problem: str | None = None

    @property
    def faithful(self) -> bool:
        """No differing row and no problem."""
        return self.differing == 0 and self.problem is None

    def to_json(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "compared": list(self.compared),
            "engines": list(self.engines),
            "rows": self.rows,
            "differing_rows": self.differing,
            "faithful": self.faithful,
            "problem": self.problem,
            "first_differences": [d.to_json() for d in self.differences],
        }


@dataclass
class CheckReport:
    """What ``featurepipe migrate check`` found.

    Attributes:
        columns: one :class:`ColumnCheck` per column (TensorFlow's order, then
            specs that TensorFlow has no column for).
        rows: rows read.
        files: the files read.
        tolerance: the float tolerance used.
        outputs: the model-output section (old SavedModel vs migrated model);
            `None` until it is implemented and asked for.
    """

    columns: list[ColumnCheck]
    rows: int
    files: list[str]
    tolerance: float
    outputs: dict[str, Any] | None = None

    @property
    def faithful(self) -> bool:
        """Every column faithful (and, once there, every model output)."""
        outputs_ok = self.outputs is None or bool(self.outputs.get("faithful", False))
        return all(c.faithful for c in self.columns) and outputs_ok

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document: ``{"faithful", "columns": {...}, "outputs": ...}``."""
        differing = [c.name for c in self.columns if not c.faithful]
        return {
            "faithful": self.faithful,
            "columns": {
                "faithful": not differing,
                "rows": self.rows,
                "files": list(self.files),
                "tolerance": self.tolerance,
                "differing_columns": differing,
                "columns": [c.to_json() for c in self.columns],
            },
            "outputs": self.outputs,
        }

    def format(self) -> str:
        """The human-readable report (what the CLI prints without ``--json``)."""
        lines = [
            f"Columns: tf.feature_column vs featurepipe on {self.rows:,} rows of "
            f"{len(self.files)} file(s) (float tolerance {self.tolerance:g})"
        ]
        width = max([len(c.name) for c in self.columns] + [6])
        for c in self.columns:
            status = "ok" if c.faithful else "DIFFERS"
            what = "; ".join(", ".join(x) for x in (c.compared, c.engines) if x) or "-"
            lines.append(
                f"  {c.name:<{width}}  {status:<7}  {c.differing:,}/{c.rows:,} rows differ"
                f"  ({c.kind}; {what})"
            )
            if c.problem:
                lines.append(f"      problem: {c.problem}")
            for d in c.differences:
                where = f"{d.path}, record {d.record}" if d.path else f"record {d.record}"
                lines.append(f"      row {d.row:,} ({where}; featurepipe {d.engine}):")
                for item in sorted(set(d.tensorflow) | set(d.featurepipe)):
                    lines.append(f"        {item}: tensorflow  {_show(d.tensorflow.get(item))}")
                    lines.append(f"        {item}: featurepipe {_show(d.featurepipe.get(item))}")
        bad = [c.name for c in self.columns if not c.faithful]
        lines.append(
            "  faithful: every column gives the same ids and values"
            if not bad
            else f"  NOT faithful: {len(bad)} column(s) differ: {', '.join(bad)}"
        )
        if self.outputs is not None:
            lines.append("Model outputs:")
            lines.append(f"  {self.outputs}")
        return "\n".join(lines)


def check_columns(
    feature_columns: Iterable[Any] | Mapping[str, Iterable[Any]],
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    specs: ColumnSpecs | MigratedColumns | str | os.PathLike[str] | None = None,
    tolerance: float = 1e-5,
    batch_size: int = 512,
    max_rows: int | None = None,
    max_differences: int = 5,
    base_dir: str | os.PathLike[str] | None = None,
    compression: str = "auto",
    engines: Sequence[str] = ENGINES,
) -> CheckReport:
    """Compares ``tf.feature_column``'s ids and values with featurepipe's on TFRecords.

    Args:
        feature_columns: the Estimator's columns: a list, or ``{"linear": [...],
            "dnn": [...]}``.
        data: TFRecord files of ``tf.Example`` (paths, globs or ``PREFIX@N``).
        specs: the featurepipe side: specs, a ``columns.json`` path, or `None`
            to convert ``feature_columns`` now. Defaults to `None`.
        tolerance: float values may differ by ``tolerance * max(1, |tf value|)``;
            ids must be equal. Defaults to `1e-5`.
        batch_size: records per batch. Defaults to `512`.
        max_rows: stop after this many rows. Defaults to `None` (all).
        max_differences: differing rows kept per column. Defaults to `5`.
        base_dir: where relative vocabulary file paths start (both sides).
            Defaults to `None` (the working directory).
        compression: ``"auto"``, ``""``/``"NONE"``, ``"GZIP"`` or ``"ZLIB"``.
            Defaults to `"auto"`.
        engines: featurepipe's implementations to compare with TensorFlow:
            ``"numpy"``, ``"plan"`` (skipped where the columns need what the C
            pass does not compute: ``make_dataset`` then runs ``"keras"``) and
            ``"keras"``. Defaults to all three.

    Returns:
        The :class:`CheckReport`.

    Raises:
        ConfigError: for columns featurepipe cannot convert, bad arguments or no files.
        DataError: when TensorFlow cannot parse the records (e.g. a numeric
            feature without a default is missing).
    """
    if not tolerance >= 0 or math.isinf(tolerance):
        raise ConfigError(f"`tolerance` must be a number >= 0. Received: tolerance={tolerance}")
    if batch_size < 1:
        raise ConfigError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    engines = tuple(engines)
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        raise ConfigError(
            f"Unknown value for `engines`. Allowed values are: {ENGINES}. Received: {engines}"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from tensorflow.python.feature_column import feature_column_v2 as fc2

    tf_columns = _tf_columns(feature_columns)
    conv = _Converter("inline", base_dir, "default")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MigrationWarning)  # notes of the conversion, not ids
        fresh = [conv.column(col) for col in tf_columns]
    names = [s.name for s in fresh]
    if specs is None:
        target = ColumnSpecs(tuple(fresh))
    elif isinstance(specs, MigratedColumns):
        target = specs.columns
    elif isinstance(specs, ColumnSpecs):
        target = specs
    else:
        target = MigratedColumns.load(specs).columns
    by_name = {s.name: s for s in target}
    checks: list[ColumnCheck] = []
    pairs: list[tuple[Any, ColumnSpec, ColumnCheck]] = []
    for col, name in zip(tf_columns, names, strict=True):
        check = ColumnCheck(name, _kind(col))
        checks.append(check)
        spec = by_name.get(name)
        if spec is None:
            check.problem = "no featurepipe column of this name in the specs"
            continue
        mismatch = _kinds_mismatch(col, spec)
        if mismatch:
            check.problem = mismatch
            continue
        check.compared = _items(spec)
        pairs.append((col, spec, check))
    for spec in target:
        if spec.name not in names:
            checks.append(
                ColumnCheck(
                    spec.name,
                    type(spec).__name__,
                    problem="not a column of the tf.feature_column code",
                )
            )

    parse_spec = _parse_spec(tf_columns)
    dense_keys = frozenset(k for k, v in parse_spec.items() if isinstance(v, tf.io.FixedLenFeature))
    compared_specs = [spec for _, spec, _ in pairs]
    padded = _padded_engines(tf, engines, parse_spec, compared_specs, dense_keys, base_dir)
    for _, _, check in pairs:
        check.engines = tuple(e for e in engines if e == "numpy" or e in padded)
    files = expand_paths(data)
    rows = 0
    cwd = os.getcwd()
    for path, first, records in batch_records(
        iter_records(files, compression=compression),  # type: ignore[arg-type]
        batch_size,
    ):
        if max_rows is not None and rows >= max_rows:
            break
        if max_rows is not None:
            records = records[: max_rows - rows]
        n = len(records)
        try:
            parsed = tf.io.parse_example(tf.constant(records), parse_spec)
        except tf.errors.OpError as e:
            raise DataError(
                f"TensorFlow cannot parse records {first}..{first + n - 1} of {path} with the "
                f"columns' parse spec: {e.message}. The Estimator could not read them either; "
                "check with data it trained or evaluated on."
            ) from e
        batch = decode_examples(records, path=path, first_index=first)
        features = batch.columns
        outputs = {name: run(records, parsed) for name, run in padded.items()}
        for col, spec, check in pairs:
            # TF resolves relative vocabulary files from the working directory.
            if base_dir is not None:
                os.chdir(base_dir)
            try:
                theirs = _tf_items(tf, fc2, col, parsed, n)
            finally:
                if base_dir is not None:
                    os.chdir(cwd)
            sides: list[tuple[str, _Items, _Items, tuple[str, ...]]] = []
            if "numpy" in engines:
                ours = _featurepipe_items(spec, features, n, dense_keys, base_dir)
                sides.append(("numpy", theirs, ours, check.compared))
            for engine, got in outputs.items():
                if got is None:  # the C pass hands this batch to the TF ops (make_dataset too)
                    continue
                items = tuple(i for i in check.compared if i != "indicator")
                sides.append((engine, _unpadded(theirs), _padded_items(spec, got, n), items))
            _compare(check, sides, n, rows, path, first, tolerance, max_differences)
        rows += n
    return CheckReport(checks, rows, files, tolerance)


# -- private ----------------------------------------------------------------------------------

_Items = dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] | str  # or an error


def _tf_columns(feature_columns: Any) -> list[Any]:
    if isinstance(feature_columns, Mapping):
        out: list[Any] = []
        seen: set[str] = set()
        for key in ("linear", "linear_feature_columns", "dnn", "dnn_feature_columns"):
            for col in feature_columns.get(key, ()):
                if col.name not in seen:
                    seen.add(col.name)
                    out.append(col)
        return out
    return list(feature_columns)


def _parse_spec(columns: Sequence[Any]) -> dict[str, Any]:
    """``make_parse_example_spec`` for TF2 columns and TF1 ``_SharedEmbeddingColumn`` alike."""
    out: dict[str, Any] = {}
    for col in columns:
        spec = getattr(col, "parse_example_spec", None)
        if spec is None:
            spec = col._parse_example_spec  # tf.compat.v1 columns
        for key, value in spec.items():
            if key in out and out[key] != value:
                raise ConfigError(
                    f"Feature {key!r} is parsed two ways by the columns ({out[key]} and "
                    f"{value}); TensorFlow's make_parse_example_spec refuses that too."
                )
            out[key] = value
    return out


def _items(spec: ColumnSpec) -> tuple[str, ...]:
    if isinstance(spec, NumericColumn):
        return ("values",)
    cat = spec.categorical_column if isinstance(spec, EmbeddingColumn | IndicatorColumn) else spec
    out = ["ids"]
    if isinstance(cat, WeightedColumn):
        out.append("weights")
    if isinstance(spec, IndicatorColumn):
        out.append("indicator")
    return tuple(out)


def _kinds_mismatch(col: Any, spec: ColumnSpec) -> str | None:
    kind = _kind(col)
    if kind == "NumericColumn":
        ok = isinstance(spec, NumericColumn)
    elif kind == "IndicatorColumn":
        ok = isinstance(spec, IndicatorColumn)
    elif kind.endswith("EmbeddingColumn"):
        ok = isinstance(spec, EmbeddingColumn)
    else:
        ok = isinstance(spec, CategoricalSpec)
        if ok and (kind == "WeightedCategoricalColumn") != isinstance(spec, WeightedColumn):
            ok = False
    if ok:
        return None
    return f"featurepipe has a {type(spec).__name__} of this name, TensorFlow a {kind}"


def _sparse(tf: Any, st: Any, n: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A SparseTensor's values (row-major) and row lengths."""
    if not isinstance(st, tf.SparseTensor):  # a dense id tensor: every cell is a value
        arr = np.asarray(st).reshape(n, -1)
        return arr.reshape(-1), np.full(n, arr.shape[1], dtype=np.int64)
    st = tf.sparse.reorder(st)
    rows = st.indices.numpy()[:, 0] if st.indices.shape[0] else np.zeros(0, np.int64)
    return st.values.numpy(), np.bincount(rows, minlength=n).astype(np.int64)


def _dense(x: Any, n: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    arr = np.asarray(x, dtype=np.float64).reshape(n, -1)
    return arr.reshape(-1), np.full(n, arr.shape[1], dtype=np.int64)


def _tf_items(tf: Any, fc2: Any, col: Any, parsed: Mapping[str, Any], n: int) -> _Items:
    cache = fc2.FeatureTransformationCache(dict(parsed))
    kind = _kind(col)
    try:
        if kind == "NumericColumn":
            return {"values": _dense(col.get_dense_tensor(cache, None).numpy(), n)}
        cat = (
            col.categorical_column if kind.endswith(("EmbeddingColumn", "IndicatorColumn")) else col
        )
        pair = cat.get_sparse_tensors(cache, None)
        out = {"ids": _sparse(tf, pair.id_tensor, n)}
        if pair.weight_tensor is not None:
            values, lengths = _sparse(tf, pair.weight_tensor, n)
            out["weights"] = (values.astype(np.float64), lengths)
        if kind == "IndicatorColumn":
            out["indicator"] = _dense(col.get_dense_tensor(cache, None).numpy(), n)
        return out
    except (tf.errors.OpError, ValueError) as e:
        return f"TensorFlow failed: {getattr(e, 'message', str(e))}".strip()


def _featurepipe_items(
    spec: ColumnSpec,
    features: Mapping[str, Any],
    n: int,
    dense_keys: frozenset[str],
    base_dir: str | os.PathLike[str] | None,
) -> _Items:
    try:
        if isinstance(spec, NumericColumn):
            out = transform_features([spec], features, n, dense_keys=dense_keys)[spec.name]
            return {"values": _dense(out, n)}
        cat = (
            spec.categorical_column if isinstance(spec, EmbeddingColumn | IndicatorColumn) else spec
        )
        ids = transform_features([cat], features, n, dense_keys=dense_keys, base_dir=base_dir)[
            cat.name
        ]
        items: dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = {}
        if isinstance(ids, WeightedIds):
            items["ids"] = (np.asarray(ids.ids.values), np.asarray(ids.ids.row_lengths))
            items["weights"] = (
                np.asarray(ids.weights.values, dtype=np.float64),
                np.asarray(ids.weights.row_lengths),
            )
        elif isinstance(ids, Ragged):
            items["ids"] = (np.asarray(ids.values), np.asarray(ids.row_lengths))
        if isinstance(spec, IndicatorColumn):
            vec = transform_features([spec], features, n, dense_keys=dense_keys, base_dir=base_dir)
            items["indicator"] = _dense(vec[spec.name], n)
        return items
    except FeaturepipeError as e:
        return f"featurepipe failed: {e}"


def _compare(
    check: ColumnCheck,
    sides: Sequence[tuple[str, _Items, _Items, tuple[str, ...]]],
    n: int,
    offset: int,
    path: str | None,
    first: int,
    tolerance: float,
    max_differences: int,
) -> None:
    """Counts the rows where any engine differs from TensorFlow; keeps the first ones."""
    check.rows += n
    differ = np.zeros(n, dtype=bool)
    which = np.full(n, -1, dtype=np.int64)  # the first engine that differs, by row
    for k, (_, theirs, ours, items) in enumerate(sides):
        if isinstance(theirs, str) or isinstance(ours, str):
            if isinstance(theirs, str) and isinstance(ours, str):
                continue  # both refuse these records: the same behaviour
            check.problem = check.problem or (theirs if isinstance(theirs, str) else ours)  # type: ignore[assignment]
            here = np.ones(n, dtype=bool)
        else:
            here = np.zeros(n, dtype=bool)
            for item in items:
                here |= _rows_differ(theirs.get(item), ours.get(item), n, item != "ids", tolerance)
        which[here & ~differ] = k
        differ |= here
    bad = np.flatnonzero(differ)
    check.differing += int(bad.size)
    for r in bad[: max(0, max_differences - len(check.differences))]:
        engine, theirs, ours, items = sides[int(which[r])]
        check.differences.append(
            RowDifference(
                row=offset + int(r),
                path=path,
                record=first + int(r),
                tensorflow=_row(theirs, int(r), items),
                featurepipe=_row(ours, int(r), items),
                engine=engine,
            )
        )


def _padded_engines(
    tf: Any,
    engines: Sequence[str],
    parse_spec: Mapping[str, Any],
    specs: Sequence[ColumnSpec],
    dense_keys: frozenset[str],
    base_dir: str | os.PathLike[str] | None,
) -> dict[str, Any]:
    """``{engine: run(records, parsed) -> {input name: array} | None}`` for plan and keras."""
    out: dict[str, Any] = {}
    if not specs:
        return out
    if "plan" in engines:
        features: dict[str, PlanFeature] = {}
        for key, f in parse_spec.items():
            kind = {"string": "bytes", "float32": "float", "int64": "int64"}.get(f.dtype.name)
            if kind is None:
                features = {}
                break
            if isinstance(f, tf.io.FixedLenFeature):
                features[key] = PlanFeature(kind, tuple(f.shape), f.default_value)
            else:
                features[key] = PlanFeature(kind)
        plan = (
            compile_columns(features, specs, dense_keys=dense_keys, base_dir=base_dir)
            if features
            else None
        )
        if plan is not None:
            names = [name for name, _ in model_columns(specs)]

            def run_plan(records: list[bytes], parsed: Any) -> dict[str, Any] | None:
                arrays = plan.run(records)
                return None if arrays is None else dict(zip(names, arrays, strict=True))

            out["plan"] = run_plan
    if "keras" in engines:
        from featurepipe.keras import ColumnTransform

        transform = ColumnTransform(
            ColumnSpecs(tuple(specs)), dense_keys=dense_keys, base_dir=base_dir
        )

        def run_keras(records: list[bytes], parsed: Any) -> dict[str, Any]:
            return {k: v.numpy() for k, v in transform(parsed).items()}

        out["keras"] = run_keras
    return out


def _unpadded(items: _Items) -> _Items:
    """TensorFlow's ids (and their weights) without the ``-1`` ids a padded input cannot show."""
    if isinstance(items, str) or "ids" not in items:
        return items
    values, lengths = items["ids"]
    keep = values != -1
    rows = np.repeat(np.arange(lengths.shape[0]), lengths)
    new_lengths = np.bincount(rows[keep], minlength=lengths.shape[0]).astype(np.int64)
    out = dict(items)
    out["ids"] = (values[keep], new_lengths)
    if "weights" in items:
        out["weights"] = (items["weights"][0][keep], new_lengths)
    return out


def _padded_items(spec: ColumnSpec, got: Mapping[str, Any], n: int) -> _Items:
    """A padded engine's output for one column as ``{item: (values, row lengths)}``."""
    x = np.asarray(got[spec.name])
    if isinstance(spec, NumericColumn):
        return {"values": _dense(x, n)}
    ids = x.reshape(n, -1)
    keep = ids != -1
    lengths = keep.sum(axis=1).astype(np.int64)
    out = {"ids": (ids[keep], lengths)}
    # ColumnTransform's documented input of a weighted column's weights: <name>__weights
    weights = got.get(spec.name + _WEIGHTS_SUFFIX)
    if weights is not None:
        out["weights"] = (np.asarray(weights).reshape(n, -1)[keep].astype(np.float64), lengths)
    return out


def _rows_differ(
    a: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None,
    b: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None,
    n: int,
    is_float: bool,
    tolerance: float,
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    if a is None or b is None:
        return np.full(n, a is not b, dtype=bool)
    (av, al), (bv, bl) = a, b
    differ: np.ndarray[Any, np.dtype[np.bool_]] = np.asarray(al != bl, dtype=bool)
    same = ~differ
    a_rows = np.repeat(np.arange(n), al)
    b_rows = np.repeat(np.arange(n), bl)
    keep_a, keep_b = same[a_rows], same[b_rows]  # the cells of equal-length rows, aligned
    x, y = av[keep_a], bv[keep_b]
    if is_float:
        x, y = x.astype(np.float64), y.astype(np.float64)
        bad = (np.abs(x - y) > tolerance * np.maximum(1.0, np.abs(x))) & ~(
            np.isnan(x) & np.isnan(y)
        )
        bad |= np.isnan(x) != np.isnan(y)
    else:
        bad = x.astype(np.int64) != y.astype(np.int64)
    differ[a_rows[keep_a][bad]] = True
    return differ


def _row(items: _Items, r: int, compared: Sequence[str]) -> dict[str, Any]:
    if isinstance(items, str):
        return {"error": items}
    out: dict[str, Any] = {}
    for item in compared:
        if item not in items:
            out[item] = None
            continue
        values, lengths = items[item]
        start = int(lengths[:r].sum())
        row = values[start : start + int(lengths[r])].tolist()
        out[item] = [_json_number(v) for v in row]
    return out


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _show(values: Any) -> str:
    if not isinstance(values, list):
        return str(values)
    shown = ", ".join(str(v) for v in values[:_SHOWN_VALUES])
    more = f", ... ({len(values)} values)" if len(values) > _SHOWN_VALUES else ""
    return f"[{shown}{more}]"
