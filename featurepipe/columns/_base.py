"""Base classes of the column specs (see :mod:`featurepipe.columns._specs`, which re-exports them).

Holds the spec base class with its config / JSON plumbing, the :class:`Artifacts`
protocol, the numeric column and its normalizer, and the validation helpers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from featurepipe.errors import ConfigError

__all__ = [
    "FORMAT_VERSION",
    "Artifacts",
    "CategoricalSpec",
    "ColumnSpec",
    "Normalizer",
    "NumericColumn",
    "column_from_config",
]

FORMAT_VERSION = 1

_DTYPES = ("string", "int64")
_NORMALIZERS = ("z_score", "min_max", "log")
_COMBINERS = ("mean", "sum", "sqrtn")
_OUTPUT_MODES = ("one_hot", "multi_hot", "count")
# tf.feature_column spellings accepted by from_config, mapped to ours.
_ALIASES = {
    "boundaries": "bin_boundaries",
    "hash_bucket_size": "num_bins",
    "vocabulary_list": "vocabulary",
    "vocabulary_file": "vocabulary",
}


class Artifacts(Protocol):
    """Where unresolved specs get analyzer results (e.g. a ``featurepipe analyze`` output)."""

    def vocabulary(self, key: str) -> Sequence[str | int]:
        """The vocabulary of feature ``key``, most frequent first."""
        ...

    def boundaries(self, key: str, num_bins: int) -> Sequence[float]:
        """``num_bins - 1`` quantile boundaries of feature ``key``."""
        ...

    def moments(self, key: str) -> Mapping[str, float]:
        """``{"mean", "variance", "min", "max"}`` of feature ``key``."""
        ...


@dataclass(frozen=True)
class ColumnSpec:
    """Base class of all column specs."""

    _registry: ClassVar[dict[str, type[ColumnSpec]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        ColumnSpec._registry[cls.__name__] = cls

    @property
    def name(self) -> str:
        """The column's name (``tf.feature_column`` naming)."""
        raise NotImplementedError

    @property
    def is_resolved(self) -> bool:
        """Whether every value an analyzer could fill is known."""
        return True

    def resolve(self, artifacts: Artifacts) -> ColumnSpec:
        """Returns a copy with analyzer results filled in (``self`` if nothing is missing)."""
        return self

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments as JSON-able values."""
        config: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            config[f.name] = _to_json_value(getattr(self, f.name))
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ColumnSpec:
        """Builds the spec from :meth:`get_config`'s output.

        Raises:
            ConfigError: for unknown arguments or invalid values.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in config.items():
            target = _ALIASES.get(key, key) if key not in names else key
            if target not in names:
                raise ConfigError(
                    f"Unknown argument `{key}` for {cls.__name__}. "
                    f"Allowed arguments are: {sorted(names)}. Received: {key}={value!r}"
                )
            if isinstance(value, dict) and value.get("class_name") in ColumnSpec._registry:
                value = column_from_config(value)
            elif target == "keys" and isinstance(value, list):
                value = tuple(column_from_config(v) if isinstance(v, dict) else v for v in value)
            kwargs[target] = _from_json_value(value)
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ConfigError(f"Invalid config for {cls.__name__}: {e}") from e

    def to_dict(self) -> dict[str, Any]:
        """Returns ``{"class_name": ..., "config": ...}`` (what nested specs serialize to)."""
        return {"class_name": type(self).__name__, "config": self.get_config()}


def column_from_config(config: Mapping[str, Any]) -> ColumnSpec:
    """Builds any spec from ``{"class_name": ..., "config": {...}}``.

    Args:
        config: the output of :meth:`ColumnSpec.to_dict`.

    Returns:
        The spec.

    Raises:
        ConfigError: for an unknown ``class_name`` or a bad config.

    Examples:
        >>> column_from_config(
        ...     {"class_name": "HashedColumn", "config": {"key": "c1", "num_bins": 8}}
        ... )
        HashedColumn(key='c1', num_bins=8, dtype='string')
    """
    if not isinstance(config, Mapping) or "class_name" not in config:
        raise ConfigError(
            'A column config must be {"class_name": ..., "config": {...}}. '
            f"Received: {config!r}"
        )
    cls = ColumnSpec._registry.get(str(config["class_name"]))
    if cls is None or cls is ColumnSpec or cls is CategoricalSpec:
        allowed = sorted(n for n in ColumnSpec._registry if n != "CategoricalSpec")
        raise ConfigError(
            f"Unknown column class. Allowed values are: {allowed}. "
            f"Received: class_name={config['class_name']!r}"
        )
    return cls.from_config(config.get("config", {}))


# -- categorical base ----------------------------------------------------------------------


@dataclass(frozen=True)
class CategoricalSpec(ColumnSpec):
    """Base class of the columns that produce integer ids (``CategoricalColumn``)."""

    @property
    def num_ids(self) -> int:
        """How many distinct ids the column can produce (``num_buckets`` in TF)."""
        raise NotImplementedError


# -- numeric ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Normalizer:
    """How a numeric column is scaled. Unset statistics come from analyzer moments.

    - ``"z_score"``: ``(x - mean) / sqrt(variance)`` (``variance == 0`` divides by 1);
    - ``"min_max"``: ``(x - min) / (max - min)`` (``max == min`` gives 0);
    - ``"log"``: ``log(x + offset)`` (``offset=1`` is ``log1p``).

    Args:
        kind: one of ``"z_score"``, ``"min_max"``, ``"log"``.
        mean: for ``z_score``. Defaults to `None` (from artifacts).
        variance: for ``z_score``. Defaults to `None` (from artifacts).
        min: for ``min_max``. Defaults to `None` (from artifacts).
        max: for ``min_max``. Defaults to `None` (from artifacts).
        offset: for ``log``. Defaults to `1.0`.

    Examples:
        >>> Normalizer("z_score", mean=1.0, variance=4.0).apply_scalar(5.0)
        2.0
    """

    kind: str
    _: dataclasses.KW_ONLY
    mean: float | None = None
    variance: float | None = None
    min: float | None = None
    max: float | None = None
    offset: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in _NORMALIZERS:
            raise ConfigError(
                f"Unknown value for `kind` of Normalizer. Allowed values are: {_NORMALIZERS}. "
                f"Received: kind={self.kind!r}"
            )
        if self.variance is not None and self.variance < 0:
            raise ConfigError(f"`variance` must be >= 0. Received: variance={self.variance}")
        if self.min is not None and self.max is not None and self.max < self.min:
            raise ConfigError(f"`max` must be >= `min`. Received: min={self.min}, max={self.max}")

    @property
    def is_resolved(self) -> bool:
        """Whether the statistics this kind needs are all set."""
        if self.kind == "z_score":
            return self.mean is not None and self.variance is not None
        if self.kind == "min_max":
            return self.min is not None and self.max is not None
        return True

    def resolve(self, moments: Mapping[str, float]) -> Normalizer:
        """Returns a copy with unset statistics taken from ``moments``."""
        updates: dict[str, Any] = {
            k: float(moments[k])
            for k in ("mean", "variance", "min", "max")
            if getattr(self, k) is None and k in moments
        }
        return dataclasses.replace(self, **updates) if updates else self

    def scale(self) -> tuple[float, float]:
        """Returns ``(shift, divisor)`` with ``normalized = (x - shift) / divisor`` (not for log).

        Raises:
            ConfigError: if the statistics are not resolved, or for ``"log"``.
        """
        if not self.is_resolved:
            raise ConfigError(
                f"The {self.kind} normalizer has no statistics yet: pass them or call "
                "`ColumnSpecs.resolve(artifacts)` first."
            )
        if self.kind == "z_score":
            std = math.sqrt(float(self.variance))  # type: ignore[arg-type]
            return float(self.mean), (std if std > 0 else 1.0)  # type: ignore[arg-type]
        if self.kind == "min_max":
            span = float(self.max) - float(self.min)  # type: ignore[arg-type]
            return float(self.min), (span if span > 0 else math.inf)  # type: ignore[arg-type]
        raise ConfigError("The log normalizer has no (shift, divisor) form.")

    def apply_scalar(self, x: float) -> float:
        """Normalizes one number (see :mod:`featurepipe.columns._transform` for arrays)."""
        if self.kind == "log":
            return math.log(x + self.offset)
        shift, divisor = self.scale()
        return (x - shift) / divisor


@dataclass(frozen=True)
class NumericColumn(ColumnSpec):
    """A dense numeric feature: ``tf.feature_column.numeric_column``.

    Args:
        key: the feature name.
        shape: the fixed number of values per row, as a tuple. Defaults to `(1,)`.
        default_value: the value of a row where the feature is missing, or `None`
            to make a missing value an error. Defaults to `None`.
        dtype: ``"float32"``, ``"float64"`` or ``"int64"`` (output is float32).
            Defaults to `"float32"`.
        normalizer: a :class:`Normalizer`, or `None`. Defaults to `None`.

    Examples:
        >>> NumericColumn("price", normalizer=Normalizer("log")).name
        'price'
    """

    key: str
    shape: tuple[int, ...] = (1,)
    default_value: float | None = None
    dtype: str = "float32"
    normalizer: Normalizer | None = None

    def __post_init__(self) -> None:
        _check_key(self.key)
        shape = _as_tuple(self.shape)
        if not shape or any(not isinstance(d, int) or d < 1 for d in shape):
            raise ConfigError(
                f"`shape` must be a tuple of positive integers. Received: shape={self.shape!r}"
            )
        object.__setattr__(self, "shape", shape)
        if self.dtype not in ("float32", "float64", "int64"):
            raise ConfigError(
                "Unknown value for `dtype` of NumericColumn. Allowed values are: "
                f"('float32', 'float64', 'int64'). Received: dtype={self.dtype!r}"
            )
        if isinstance(self.normalizer, Mapping):
            object.__setattr__(self, "normalizer", Normalizer(**self.normalizer))

    @property
    def name(self) -> str:
        return self.key

    @property
    def size(self) -> int:
        """Values per row (the product of ``shape``)."""
        return math.prod(self.shape)

    @property
    def is_resolved(self) -> bool:
        return self.normalizer is None or self.normalizer.is_resolved

    def resolve(self, artifacts: Artifacts) -> NumericColumn:
        if self.normalizer is None or self.normalizer.is_resolved:
            return self
        return dataclasses.replace(
            self, normalizer=self.normalizer.resolve(artifacts.moments(self.key))
        )


def _to_json_value(value: Any) -> Any:
    if isinstance(value, ColumnSpec):
        return value.to_dict()
    if isinstance(value, Normalizer):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_to_json_value(v) for v in value]
    return value


def _from_json_value(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(value)
    return value


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, tuple):
        return value
    if isinstance(value, str | bytes):
        raise ConfigError(f"Expected a list or tuple. Received: {value!r}")
    try:
        return tuple(value)
    except TypeError as e:
        raise ConfigError(f"Expected a list or tuple. Received: {value!r}") from e


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key:
        raise ConfigError(f"A feature key must be a non-empty string. Received: key={key!r}")


def _check_dtype(dtype: str, owner: str) -> None:
    if dtype not in _DTYPES:
        raise ConfigError(
            f"Unknown value for `dtype` of {owner}. Allowed values are: {_DTYPES}. "
            f"Received: dtype={dtype!r}"
        )


def _check_count(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")


def _check_categorical(column: object, owner: str) -> None:
    if not isinstance(column, CategoricalSpec):
        raise ConfigError(
            f"`categorical_column` of {owner} must be a categorical spec (VocabularyColumn, "
            "HashedColumn, IdentityColumn, BucketizedColumn, CrossedColumn or WeightedColumn). "
            f"Received: {column!r}"
        )
