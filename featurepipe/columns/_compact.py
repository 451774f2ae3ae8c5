"""The compact spelling of column specs: one flat object per column.

Besides the full form ``{"class_name": "IndicatorColumn", "config":
{"categorical_column": {"class_name": "VocabularyColumn", "config": {...}}}}``,
a column may be written as one object::

    {"key": "cut", "type": "vocabulary", "as": "indicator"}
    {"key": "city", "type": "hashed", "num_bins": 1024, "as": "embedding", "dimension": 8}
    {"key": "carat", "type": "numeric", "normalizer": "z_score"}
    {"key": "price", "type": "bucketized", "num_bins": 10}
    {"key": ["city", "dev"], "type": "crossed", "num_bins": 1000}

- ``type``: ``numeric``, ``bucketized``, ``vocabulary``, ``hashed``,
  ``identity`` or ``crossed`` (the spec classes without ``Column``);
- ``as``: ``indicator`` or ``embedding`` wraps the categorical column (then
  ``dimension``, ``combiner``, ... or ``output_mode`` are the wrapper's);
  leave it out for the raw column (linear models read it as is);
- every other key is an argument of the spec classes, by its name
  (``num_bins``, ``vocabulary``, ``top_k``, ``num_oov_buckets``, ``dtype``,
  ``default_value``, ``bin_boundaries``, ...; ``normalizer`` may be just the
  kind, ``"z_score"``); a ``bucketized`` column's numeric arguments (``shape``,
  ``default_value``, ``dtype``, ``normalizer``) go to its source;
- ``why`` (and any key starting with ``_``) is a comment: ignored.

Both spellings may be mixed in one file; :meth:`ColumnSpecs.from_config`
reads either. Saving always writes the full form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from featurepipe.columns._base import ColumnSpec, Normalizer, NumericColumn, column_from_config
from featurepipe.errors import ConfigError

__all__ = ["COMPACT_TYPES", "column_from_compact", "is_compact"]

# type -> the spec class's name (looked up in the registry of ColumnSpec subclasses, so that
# this module needs only the base classes and `_specs` can import it).
COMPACT_TYPES: dict[str, str] = {
    "numeric": "NumericColumn",
    "bucketized": "BucketizedColumn",
    "vocabulary": "VocabularyColumn",
    "hashed": "HashedColumn",
    "identity": "IdentityColumn",
    "crossed": "CrossedColumn",
}
_WRAPPERS: dict[str, str] = {"indicator": "IndicatorColumn", "embedding": "EmbeddingColumn"}
# tf.feature_column spellings, as the full form accepts them.
_ALIASES = {
    "boundaries": "bin_boundaries",
    "hash_bucket_size": "num_bins",
    "vocabulary_list": "vocabulary",
    "vocabulary_file": "vocabulary",
}


def is_compact(config: object) -> bool:
    """Whether a column's JSON object is the compact spelling (``"type"``, no ``"class_name"``).

    Examples:
        >>> is_compact({"key": "cut", "type": "vocabulary"}), is_compact({"class_name": "X"})
        (True, False)
    """
    return isinstance(config, Mapping) and "type" in config and "class_name" not in config


def column_from_compact(config: Mapping[str, Any]) -> ColumnSpec:
    """Builds a spec from its compact spelling (see the module docstring).

    Args:
        config: the column's object.

    Returns:
        The spec.

    Raises:
        ConfigError: for an unknown ``type`` or ``as``, or an argument that no
            class of the column takes; the message names the column.

    Examples:
        >>> column_from_compact({"key": "cut", "type": "vocabulary", "as": "indicator",
        ...                      "vocabulary": ["Ideal", "Good"], "why": "2 values"}).name
        'cut_indicator'
        >>> column_from_compact({"key": "x", "type": "numeric", "normalizer": "log"}).normalizer
        Normalizer(kind='log', mean=None, variance=None, min=None, max=None, offset=1.0)
    """
    where = f"column {config.get('key')!r}"
    kind = config.get("type")
    registry = ColumnSpec._registry
    cls = registry.get(COMPACT_TYPES.get(str(kind), ""))
    if cls is None:
        raise ConfigError(
            f"Unknown `type` of {where}. Allowed values are: {sorted(COMPACT_TYPES)}. "
            f"Received: type={kind!r}"
        )
    wrap = config.get("as")
    wrapper = registry.get(_WRAPPERS.get(str(wrap), "")) if wrap is not None else None
    if wrap is not None and wrapper is None:
        raise ConfigError(
            f"Unknown `as` of {where}. Allowed values are: {sorted(_WRAPPERS)} (or leave it "
            f"out for the raw column). Received: as={wrap!r}"
        )
    if wrapper is not None and cls is NumericColumn:
        raise ConfigError(
            f"A numeric column cannot be used as {wrap!r} ({where}): use type 'bucketized' "
            "for ids, or leave out `as`."
        )
    options = {
        _ALIASES.get(k, k): v
        for k, v in config.items()
        if k not in ("type", "as", "why") and not k.startswith("_")
    }
    if options.get("normalizer") is not None and isinstance(options["normalizer"], str):
        options["normalizer"] = Normalizer(options["normalizer"])
    bucketized = cls is registry["BucketizedColumn"]
    if cls is registry["CrossedColumn"]:
        if "key" in options and "keys" not in options:
            options["keys"] = options.pop("key")
        if isinstance(options.get("keys"), list):
            options["keys"] = [_nested(k) for k in options["keys"]]
    wrapper_args: dict[str, Any] = {}
    if wrapper is not None:
        own = _field_names(wrapper) - {"categorical_column"}
        wrapper_args = {k: options.pop(k) for k in list(options) if k in own}
    source_args: dict[str, Any] = {}
    if bucketized:
        own = _field_names(NumericColumn)
        source_args = {k: options.pop(k) for k in list(options) if k in own}
    allowed = _field_names(cls) - {"source"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        takes = sorted(
            allowed
            | (_field_names(NumericColumn) if bucketized else set())
            | ((_field_names(wrapper) - {"categorical_column"}) if wrapper else set())
        )
        raise ConfigError(
            f"Unknown argument(s) {unknown} of {where} (type {kind!r}"
            + (f", as {wrap!r}" if wrap else "")
            + f"). Allowed arguments are: {takes}, and `type`, `as`, `why`."
        )
    try:
        if bucketized:
            options["source"] = NumericColumn(**_json_args(source_args))
        column = cls(**_json_args(options))
        if wrapper is not None:
            column = wrapper(column, **_json_args(wrapper_args))  # type: ignore[call-arg]
    except TypeError as e:
        raise ConfigError(f"Invalid {where}: {e}") from None
    except ConfigError as e:
        raise ConfigError(f"Invalid {where}: {e}") from None
    return column


def _nested(value: Any) -> Any:
    if is_compact(value):
        return column_from_compact(value)
    if isinstance(value, Mapping):
        return column_from_config(value)
    return value


def _field_names(cls: type[Any]) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _json_args(args: Mapping[str, Any]) -> dict[str, Any]:
    # JSON lists become tuples, as in the full form.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
