"""``tf.feature_column`` columns -> featurepipe column specs, one for one.

Every ``tf.feature_column`` kind that featurepipe computes exactly is mapped to
the spec that gives the same ids and values (featurepipe's specs implement
``tf.feature_column``'s semantics bit for bit: see
:mod:`featurepipe.columns`), keeping the column's name, so that the
migrated model's inputs, and the ``DenseFeatures`` concatenation order (sorted
by name), are the Estimator's. What featurepipe cannot reproduce is refused
with an error that names the column and says what to do: a ``normalizer_fn``
(arbitrary Python), sequence columns, ``tfrecord_gzip`` vocabulary files,
crossed weighted columns, an initializer without a Keras counterpart.

The columns are read by their type's name and fields (the
``collections.namedtuple`` fields of ``tensorflow/python/feature_column/
feature_column_v2.py``), so this module imports nothing from TensorFlow: the
objects come from the user's code, which imported it.

A wide-and-deep Estimator (``DNNLinearCombinedClassifier``) has two column
lists; :func:`migrate_feature_columns` takes them as ``{"linear": [...],
"dnn": [...]}`` and returns a :class:`MigratedColumns`: the union (every column
the input pipeline computes, each once) plus the names of each part, written
to one ``columns.json`` (see :meth:`MigratedColumns.save`).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from featurepipe._util import write_text
from featurepipe.columns import (
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
from featurepipe.errors import ConfigError

__all__ = [
    "PARTS",
    "MigratedColumns",
    "MigrationWarning",
    "columns_from_feature_columns",
    "migrate_feature_columns",
    "read_vocabulary_file",
]

#: The parts of a wide-and-deep column set, in the Estimator's argument order.
PARTS = ("linear", "dnn")
_PART_ALIASES = {
    "linear": "linear",
    "linear_feature_columns": "linear",
    "dnn": "dnn",
    "dnn_feature_columns": "dnn",
}

# Keras initializer class -> the config keys it takes (tf.compat.v1 / TF2 / Keras objects
# of these names are all mapped; their other keys, such as dtype, are dropped).
_INITIALIZERS: dict[str, tuple[str, ...]] = {
    "Zeros": (),
    "Ones": (),
    "Constant": ("value",),
    "RandomUniform": ("minval", "maxval", "seed"),
    "RandomNormal": ("mean", "stddev", "seed"),
    "TruncatedNormal": ("mean", "stddev", "seed"),
    "VarianceScaling": ("scale", "mode", "distribution", "seed"),
    "GlorotUniform": ("seed",),
    "GlorotNormal": ("seed",),
    "HeNormal": ("seed",),
    "HeUniform": ("seed",),
    "LecunNormal": ("seed",),
    "LecunUniform": ("seed",),
    "Orthogonal": ("gain", "seed"),
    "Identity": ("gain",),
}
_VOCABULARY_FILES = ("inline", "keep")
_UNKNOWN_INITIALIZER = ("error", "default")


class MigrationWarning(UserWarning):
    """Something of a ``tf.feature_column`` that the migrated column leaves out."""


@dataclass(frozen=True)
class MigratedColumns:
    """Converted columns: all of them, and the parts of a wide-and-deep model.

    Attributes:
        columns: every column, each once (what the input pipeline computes; a
            ``columns.json`` that ``featurepipe train`` and Keras models read).
        parts: ``{"linear": names, "dnn": names}`` for the two column lists of a
            ``DNNLinearCombined*`` Estimator, or `None` for one list.
        notes: what was left out or changed, one sentence per item.

    Examples:
        >>> m = MigratedColumns(ColumnSpecs((NumericColumn("x"),)), {"linear": ("x",),
        ...     "dnn": ("x",)})
        >>> m.linear.names, m.dnn.names
        (('x',), ('x',))
    """

    columns: ColumnSpecs
    parts: Mapping[str, tuple[str, ...]] | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.parts is None:
            return
        parts = {k: tuple(v) for k, v in self.parts.items()}
        if set(parts) != set(PARTS):
            raise ConfigError(
                f"`parts` must have the keys {list(PARTS)}. Received: {sorted(parts)}"
            )
        names = set(self.columns.names)
        for part, members in parts.items():
            unknown = [n for n in members if n not in names]
            if unknown:
                raise ConfigError(
                    f"The {part!r} part names columns that are not in `columns`: {unknown}"
                )
        object.__setattr__(self, "parts", parts)

    def part(self, name: str) -> ColumnSpecs:
        """The columns of one part (``"linear"`` or ``"dnn"``).

        Raises:
            ConfigError: for an unknown part, or columns that have no parts.
        """
        if self.parts is None:
            raise ConfigError(
                "These columns are one list, not the linear and dnn parts of a wide-and-deep "
                "model; use `.columns`."
            )
        if name not in self.parts:
            raise ConfigError(f"Unknown part. Allowed values are: {PARTS}. Received: {name!r}")
        return ColumnSpecs(tuple(self.columns[n] for n in self.parts[name]))

    @property
    def linear(self) -> ColumnSpecs:
        """The ``linear_feature_columns`` (see :meth:`part`)."""
        return self.part("linear")

    @property
    def dnn(self) -> ColumnSpecs:
        """The ``dnn_feature_columns`` (see :meth:`part`)."""
        return self.part("dnn")

    def get_config(self) -> dict[str, Any]:
        """The ``columns.json`` document: :meth:`ColumnSpecs.get_config` plus ``parts``.

        ``ColumnSpecs.load`` ignores the extra key, so every reader of column
        specs reads the file; :meth:`load` also returns the parts.
        """
        config = self.columns.get_config()
        config["migrated_from"] = "tf.feature_column"
        if self.parts is not None:
            config["parts"] = {k: list(v) for k, v in self.parts.items()}
        return config

    def to_json(self) -> str:
        """:meth:`get_config` as JSON."""
        return json.dumps(self.get_config(), indent=2, ensure_ascii=False)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes :meth:`to_json` to ``path`` (atomically)."""
        write_text(path, self.to_json() + "\n")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MigratedColumns:
        """Reads :meth:`get_config`'s output (or any column specs document: no parts)."""
        parts = config.get("parts")
        if parts is not None and not isinstance(parts, Mapping):
            raise ConfigError(f"`parts` must be an object. Received: parts={parts!r}")
        return cls(ColumnSpecs.from_config(config), parts)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MigratedColumns:
        """Reads a ``columns.json`` written by :meth:`save` (or any column specs file).

        Raises:
            ConfigError: if the file cannot be read or is not valid specs.
        """
        try:
            with open(path, encoding="utf-8") as f:
                config = json.load(f)
        except OSError as e:
            raise ConfigError(f"Cannot read column specs: {e}") from e
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path} is not valid JSON: {e}") from e
        if not isinstance(config, Mapping):
            raise ConfigError(f"{path} must hold a JSON object (column specs).")
        return cls.from_config(config)


def columns_from_feature_columns(
    columns: Iterable[Any] | Mapping[str, Iterable[Any]],
    *,
    vocabulary_files: str = "inline",
    base_dir: str | os.PathLike[str] | None = None,
    unknown_initializer: str = "error",
) -> ColumnSpecs:
    """featurepipe column specs equivalent to ``tf.feature_column`` columns.

    Args:
        columns: a list of ``tf.feature_column`` columns, or ``{"linear": [...],
            "dnn": [...]}`` (the two lists of a wide-and-deep Estimator; the
            result is their union, see :func:`migrate_feature_columns` for the parts).
        vocabulary_files: ``"inline"`` reads each vocabulary file (as TensorFlow
            reads it) into the spec, so ``columns.json`` stands alone;
            ``"keep"`` keeps the path as written (a relative path is then
            relative to the working directory, or the ``base_dir`` of
            whatever reads the specs, as in TensorFlow). Defaults to `"inline"`.
        base_dir: where relative vocabulary file paths start when they are read
            here. Defaults to `None` (the working directory, as in TensorFlow).
        unknown_initializer: an embedding initializer without a Keras
            counterpart: ``"error"`` refuses it, ``"default"`` uses featurepipe's
            default (TF's: truncated normal, stddev ``1/sqrt(dimension)``) and
            warns. Defaults to `"error"`.

    Returns:
        The specs, in the order of ``columns``, named as TensorFlow names them.

    Raises:
        ConfigError: for a column featurepipe cannot reproduce (the message
            names it and says what to do).
    """
    return migrate_feature_columns(
        columns,
        vocabulary_files=vocabulary_files,
        base_dir=base_dir,
        unknown_initializer=unknown_initializer,
    ).columns


def migrate_feature_columns(
    columns: Iterable[Any] | Mapping[str, Iterable[Any]],
    *,
    vocabulary_files: str = "inline",
    base_dir: str | os.PathLike[str] | None = None,
    unknown_initializer: str = "error",
) -> MigratedColumns:
    """Like :func:`columns_from_feature_columns`, keeping the wide-and-deep parts and notes.

    Returns:
        A :class:`MigratedColumns`; ``parts`` is set when ``columns`` is a mapping.

    Raises:
        ConfigError: as :func:`columns_from_feature_columns`, or for a mapping
            whose keys are not ``linear`` / ``dnn``.
    """
    if vocabulary_files not in _VOCABULARY_FILES:
        raise ConfigError(
            f"Unknown value for `vocabulary_files`. Allowed values are: {_VOCABULARY_FILES}. "
            f"Received: vocabulary_files={vocabulary_files!r}"
        )
    if unknown_initializer not in _UNKNOWN_INITIALIZER:
        raise ConfigError(
            "Unknown value for `unknown_initializer`. Allowed values are: "
            f"{_UNKNOWN_INITIALIZER}. Received: unknown_initializer={unknown_initializer!r}"
        )
    conv = _Converter(vocabulary_files, base_dir, unknown_initializer)
    if isinstance(columns, Mapping):
        lists: dict[str, list[Any]] = {}
        for key, value in columns.items():
            part = _PART_ALIASES.get(str(key))
            if part is None or part in lists:
                raise ConfigError(
                    "A dict of feature columns must have the keys 'linear' and 'dnn' (the "
                    "linear_feature_columns and dnn_feature_columns of a DNNLinearCombined "
                    f"Estimator). Received: keys {sorted(map(str, columns))}"
                )
            lists[part] = _as_list(value, f"columns[{key!r}]")
        for part in PARTS:
            lists.setdefault(part, [])
        union: dict[str, ColumnSpec] = {}
        parts: dict[str, tuple[str, ...]] = {}
        for part in PARTS:
            names = []
            for col in lists[part]:
                spec = conv.column(col)
                if spec.name in union and union[spec.name] != spec:
                    raise ConfigError(
                        f"Two different columns are named {spec.name!r} in the linear and dnn "
                        "lists; TensorFlow names variables by column name, so rename one."
                    )
                union.setdefault(spec.name, spec)
                names.append(spec.name)
            parts[part] = tuple(names)
        specs = ColumnSpecs(tuple(union.values()))
        return MigratedColumns(specs, parts, tuple(conv.notes))
    specs = ColumnSpecs(tuple(conv.column(c) for c in _as_list(columns, "columns")))
    return MigratedColumns(specs, None, tuple(conv.notes))


def read_vocabulary_file(
    path: str | os.PathLike[str], dtype: str = "string", size: int | None = None
) -> tuple[str | int, ...]:
    """A vocabulary file's entries as TensorFlow's ``index_table_from_file`` reads them.

    One entry per ``\\n``-ended line (a ``\\r`` before the ``\\n`` is dropped, as
    TensorFlow's line reader does); the last line needs no ``\\n``.

    Args:
        path: the file.
        dtype: ``"string"`` or ``"int64"`` (lines parsed as integers).
            Defaults to `"string"`.
        size: keep the first ``size`` entries (``vocabulary_size``). Defaults
            to `None` (all).

    Returns:
        The entries.

    Raises:
        ConfigError: if the file cannot be read, is not UTF-8, has fewer than
            ``size`` lines, or an int64 line is not an integer.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"Cannot read the vocabulary file {os.fspath(path)!r}: {e}") from e
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    if size is not None:
        if len(lines) < size:
            raise ConfigError(
                f"The vocabulary file {os.fspath(path)!r} has {len(lines)} lines, fewer than "
                f"vocabulary_size={size}."
            )
        lines = lines[:size]
    try:
        text = [line.decode("utf-8") for line in lines]
    except UnicodeDecodeError as e:
        raise ConfigError(f"The vocabulary file {os.fspath(path)!r} is not UTF-8: {e}") from e
    if dtype == "int64":
        try:
            return tuple(int(v) for v in text)
        except ValueError as e:
            raise ConfigError(
                f"The int64 vocabulary file {os.fspath(path)!r} has a line that is not an "
                f"integer: {e}"
            ) from e
    return tuple(text)


# -- private ------------------------------------------------------------------------------------


def _as_list(value: Any, what: str) -> list[Any]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ConfigError(
            f"`{what}` must be a list of tf.feature_column columns. "
            f"Received: {type(value).__name__}"
        )
    return list(value)


def _kind(col: Any) -> str:
    """The column's class name without a leading underscore (``_SharedEmbeddingColumn``: v1)."""
    return type(col).__name__.lstrip("_")


def _describe(col: Any) -> str:
    name = getattr(col, "name", None)
    return f"{_kind(col)} {name!r}" if isinstance(name, str) else repr(col)


def _dtype_name(dtype: Any) -> str:
    """``"string"``, ``"int64"``, ``"float32"``, ... for a ``tf.DType`` (or a numpy dtype / str)."""
    name = getattr(dtype, "name", None)
    return str(name if isinstance(name, str) else dtype)


def _categorical_dtype(dtype: Any, col: Any) -> str:
    name = _dtype_name(dtype)
    if name == "string":
        return "string"
    if name in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"):
        return "int64"  # featurepipe reads every integer as the tf.Example's int64
    raise ConfigError(
        f"Column {_describe(col)} has dtype {name}; only string and integer categorical "
        "columns exist in tf.feature_column."
    )


class _Converter:
    """One conversion: options, the shared embedding tables seen, the notes."""

    def __init__(
        self,
        vocabulary_files: str,
        base_dir: str | os.PathLike[str] | None,
        unknown_initializer: str,
    ) -> None:
        self.vocabulary_files = vocabulary_files
        self.base_dir = base_dir
        self.unknown_initializer = unknown_initializer
        self.notes: list[str] = []
        self._shared_names: dict[int, str] = {}  # id(creator) -> table name

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            warnings.warn(text, MigrationWarning, stacklevel=4)

    def column(self, col: Any) -> ColumnSpec:
        kind = _kind(col)
        if kind.startswith("Sequence"):
            raise ConfigError(
                f"Column {_describe(col)} is a sequence column (tf.feature_column."
                "sequence_*), which featurepipe does not migrate yet: its models read "
                "tf.Example features, not tf.SequenceExample feature lists. Leave it out, or "
                "keep this model on TensorFlow for now."
            )
        handler = _HANDLERS.get(kind)
        if handler is None:
            raise ConfigError(
                f"Column {_describe(col)} is not a tf.feature_column column featurepipe "
                f"knows ({', '.join(sorted(_HANDLERS))})."
            )
        try:
            spec: ColumnSpec = handler(self, col)
        except AttributeError as e:  # an unexpected class of this name (a v1 private column?)
            raise ConfigError(
                f"Column {_describe(col)} lacks a field this conversion reads ({e}); build "
                "it with the tf.feature_column functions of TensorFlow 2."
            ) from e
        return spec

    def categorical(self, col: Any, owner: Any) -> CategoricalSpec:
        spec = self.column(col)
        if not isinstance(spec, CategoricalSpec):
            raise ConfigError(
                f"Column {_describe(owner)} wraps {_describe(col)}, which is not categorical."
            )
        return spec

    # -- dense ---------------------------------------------------------------------------

    def numeric(self, col: Any) -> NumericColumn:
        if col.normalizer_fn is not None:
            fn = getattr(col.normalizer_fn, "__name__", repr(col.normalizer_fn))
            raise ConfigError(
                f"Column {_describe(col)} has normalizer_fn={fn}, arbitrary Python that "
                "featurepipe cannot convert. Remove it and give the spec a featurepipe "
                "Normalizer instead (NumericColumn(..., normalizer=Normalizer('z_score', "
                "mean=..., variance=...)), or 'min_max' / 'log'), or normalize the data "
                "before it is written."
            )
        dtype = _dtype_name(col.dtype)
        if dtype in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"):
            dtype = "int64"
        elif dtype not in ("float32", "float64"):
            raise ConfigError(
                f"Column {_describe(col)} has dtype {dtype}; numeric columns are float32, "
                "float64 or integer."
            )
        shape = tuple(int(d) for d in col.shape)
        return NumericColumn(
            col.key,
            shape=shape,
            default_value=_scalar_default(col.default_value, col),
            dtype=dtype,
        )

    def bucketized(self, col: Any) -> BucketizedColumn:
        source = self.column(col.source_column)
        if not isinstance(source, NumericColumn):
            raise ConfigError(f"Column {_describe(col)} does not bucketize a numeric column.")
        return BucketizedColumn(source, bin_boundaries=tuple(float(b) for b in col.boundaries))

    # -- categorical -----------------------------------------------------------------------

    def vocabulary_list(self, col: Any) -> VocabularyColumn:
        dtype = _categorical_dtype(col.dtype, col)
        vocab = tuple(
            int(v) if dtype == "int64" else (v.decode("utf-8") if isinstance(v, bytes) else v)
            for v in col.vocabulary_list
        )
        return VocabularyColumn(
            col.key,
            vocabulary=vocab,
            dtype=dtype,
            num_oov_buckets=int(col.num_oov_buckets or 0),
            default_value=-1 if col.default_value is None else int(col.default_value),
        )

    def vocabulary_file(self, col: Any) -> VocabularyColumn:
        fmt = getattr(col, "file_format", None)
        if fmt not in (None, "text"):
            raise ConfigError(
                f"Column {_describe(col)} reads a {fmt} vocabulary file; featurepipe reads "
                "text vocabularies (one entry per line). Write the vocabulary as text and "
                "use categorical_column_with_vocabulary_file(..., file_format=None)."
            )
        dtype = _categorical_dtype(col.dtype, col)
        path = os.fspath(col.vocabulary_file)
        size = None if col.vocabulary_size is None else int(col.vocabulary_size)
        common: dict[str, Any] = {
            "dtype": dtype,
            "num_oov_buckets": int(col.num_oov_buckets or 0),
            "default_value": -1 if col.default_value is None else int(col.default_value),
        }
        if self.vocabulary_files == "keep":
            return VocabularyColumn(col.key, vocabulary=path, vocabulary_size=size, **common)
        full = os.path.join(self.base_dir, path) if self.base_dir is not None else path
        if not os.path.exists(full):
            raise ConfigError(
                f"The vocabulary file of column {_describe(col)}, {path!r}, is not found "
                f"from {os.path.abspath(self.base_dir or os.curdir)!r}. TensorFlow opens a "
                "relative path from the working directory: run from there, or pass the "
                "directory as base_dir (`--base-dir` in the CLI)."
            )
        vocab = read_vocabulary_file(full, dtype, size)
        return VocabularyColumn(col.key, vocabulary=vocab, **common)

    def hashed(self, col: Any) -> HashedColumn:
        return HashedColumn(
            col.key, num_bins=int(col.hash_bucket_size), dtype=_categorical_dtype(col.dtype, col)
        )

    def identity(self, col: Any) -> IdentityColumn:
        default = None if col.default_value is None else int(col.default_value)
        return IdentityColumn(col.key, num_buckets=int(col.number_buckets), default_value=default)

    def crossed(self, col: Any) -> CrossedColumn:
        keys: list[str | CategoricalSpec] = []
        for key in col.keys:
            if isinstance(key, str):
                keys.append(key)
                continue
            spec = self.categorical(key, col)
            if isinstance(spec, WeightedColumn):
                raise ConfigError(
                    f"Column {_describe(col)} crosses the weighted column {spec.name!r}; "
                    "featurepipe crosses ids only. Cross its categorical column instead."
                )
            keys.append(spec)
        return CrossedColumn(
            tuple(keys),
            num_bins=int(col.hash_bucket_size),
            hash_key=None if col.hash_key is None else int(col.hash_key),
        )

    def weighted(self, col: Any) -> WeightedColumn:
        dtype = _dtype_name(col.dtype)
        if dtype not in ("float32", "float64"):
            raise ConfigError(
                f"Column {_describe(col)} has weights of dtype {dtype}; featurepipe reads "
                "float weights (the tf.Example float_list)."
            )
        return WeightedColumn(self.categorical(col.categorical_column, col), col.weight_feature_key)

    # -- views ---------------------------------------------------------------------------

    def indicator(self, col: Any) -> IndicatorColumn:
        return IndicatorColumn(self.categorical(col.categorical_column, col), output_mode="count")

    def embedding(self, col: Any) -> EmbeddingColumn:
        cat = self.categorical(col.categorical_column, col)
        dimension = int(col.dimension)
        self._embedding_notes(col, col.ckpt_to_load_from, col.tensor_name_in_ckpt)
        return EmbeddingColumn(
            cat,
            dimension=dimension,
            combiner=col.combiner,
            initializer=self.initializer(col.initializer, dimension, col),
            trainable=bool(col.trainable),
            max_norm=None if col.max_norm is None else float(col.max_norm),
        )

    def shared_embedding(self, col: Any) -> EmbeddingColumn:
        cat = self.categorical(col.categorical_column, col)
        creator = getattr(col, "shared_embedding_column_creator", None)
        if creator is not None:  # TF2 SharedEmbeddingColumn: the table lives in the creator
            dimension = int(creator._dimension)
            initializer, trainable = creator._initializer, creator._trainable
            table = str(creator._name)
            ckpt = (creator._ckpt_to_load_from, creator._tensor_name_in_ckpt)
        else:  # tf.compat.v1 _SharedEmbeddingColumn
            dimension = int(col.dimension)
            initializer, trainable = col.initializer, col.trainable
            table = str(col.shared_embedding_collection_name)
            ckpt = (col.ckpt_to_load_from, col.tensor_name_in_ckpt)
        self._embedding_notes(col, *ckpt)
        return EmbeddingColumn(
            cat,
            dimension=dimension,
            combiner=col.combiner,
            initializer=self.initializer(initializer, dimension, col),
            trainable=bool(trainable),
            max_norm=None if col.max_norm is None else float(col.max_norm),
            shared_embedding_name=table,
        )

    def _embedding_notes(self, col: Any, ckpt: Any, tensor: Any) -> None:
        if ckpt is not None:
            self.note(
                f"Column {_describe(col)} warm-starts its table from {ckpt!r} "
                f"({tensor!r}); the migrated column starts from its initializer (the Estimator "
                "checkpoint's trained table replaces it when the model is migrated)."
            )

    def initializer(self, init: Any, dimension: int, col: Any) -> str | dict[str, Any] | None:
        """The Keras initializer config of a TF / Keras initializer; `None` for TF's default."""
        if init is None:
            return None
        name = type(init).__name__
        get_config = getattr(init, "get_config", None)
        config = get_config() if callable(get_config) else None
        if name in _INITIALIZERS and isinstance(config, Mapping):
            if name == "TruncatedNormal" and _is_default_truncated_normal(config, dimension):
                return None  # embedding_column's own default: featurepipe's default too
            kept = {k: config[k] for k in _INITIALIZERS[name] if k in config}
            if name == "VarianceScaling" and kept.get("distribution") == "normal":
                kept["distribution"] = "truncated_normal"  # TF1's "normal" was truncated
            if name == "Constant" and not isinstance(kept.get("value"), int | float):
                self._unknown_initializer(
                    col, f"Constant({kept.get('value')!r}) with a non-scalar value"
                )
                return None
            return {"class_name": name, "config": kept}
        self._unknown_initializer(col, repr(init))
        return None

    def _unknown_initializer(self, col: Any, what: str) -> None:
        if self.unknown_initializer == "error":
            raise ConfigError(
                f"Column {_describe(col)} has the initializer {what}, which has no Keras "
                f"counterpart featurepipe maps ({', '.join(sorted(_INITIALIZERS))}). Use one "
                "of those, or pass unknown_initializer='default' (`--unknown-initializer "
                "default`) to start from TF's default (the trained table of a migrated "
                "checkpoint replaces the initial values anyway)."
            )
        self.note(
            f"Column {_describe(col)}: the initializer {what} has no Keras counterpart; the "
            "migrated column uses TF's default (truncated normal, stddev 1/sqrt(dimension))."
        )


def _is_default_truncated_normal(config: Mapping[str, Any], dimension: int) -> bool:
    return (
        float(config.get("mean", 0.0)) == 0.0
        and math.isclose(float(config.get("stddev", 0.0)), 1.0 / math.sqrt(dimension))
        and config.get("seed") is None
    )


def _scalar_default(default: Any, col: Any) -> float | None:
    """A numeric column's default as featurepipe's one scalar (TF keeps a tuple per cell)."""
    if default is None:
        return None
    flat = list(_flatten(default))
    if not flat:
        return None
    first = float(flat[0])
    if any(float(v) != first and not (math.isnan(first) and math.isnan(float(v))) for v in flat):
        raise ConfigError(
            f"Column {_describe(col)} has a default_value that differs per cell "
            f"({default!r}); featurepipe's NumericColumn has one default for every cell. "
            "Use one value, or fill the feature in the data."
        )
    return first


def _flatten(value: Any) -> Iterable[Any]:
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for v in value:
            yield from _flatten(v)
    elif hasattr(value, "tolist") and not isinstance(value, int | float):
        yield from _flatten(value.tolist())
    else:
        yield value


_HANDLERS: dict[str, Any] = {
    "NumericColumn": _Converter.numeric,
    "BucketizedColumn": _Converter.bucketized,
    "VocabularyListCategoricalColumn": _Converter.vocabulary_list,
    "VocabularyFileCategoricalColumn": _Converter.vocabulary_file,
    "HashedCategoricalColumn": _Converter.hashed,
    "IdentityCategoricalColumn": _Converter.identity,
    "CrossedColumn": _Converter.crossed,
    "WeightedCategoricalColumn": _Converter.weighted,
    "IndicatorColumn": _Converter.indicator,
    "EmbeddingColumn": _Converter.embedding,
    "SharedEmbeddingColumn": _Converter.shared_embedding,
}
