"""How the loader decodes features, without TensorFlow: the parse spec in the plan's terms.

The TF path (:func:`featurepipe.keras.make_dataset`) parses records with a
``tf.io.parse_example`` spec that comes from a schema
(``parse_spec_from_schema``) or from the column specs (``parse_spec``, as
``tf.feature_column.make_parse_example_spec``); the label's kind comes from the
``PREFIX.schema.json`` beside the shards or from the first records. Here the
same rules give a ``{feature: PlanFeature}`` mapping (featurepipe's kinds
``"bytes"`` / ``"float"`` / ``"int64"``, a fixed shape or `None` for variable
length, a default), which both the compiled plan
(:func:`featurepipe.columns.compile_columns`) and the pure-Python path read.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from featurepipe.columns import (
    ColumnSpecs,
    CrossedColumn,
    HashedColumn,
    IdentityColumn,
    NumericColumn,
    PlanFeature,
    VocabularyColumn,
    WeightedColumn,
    walk_columns,
)
from featurepipe.errors import ConfigError, ExampleDecodeError
from featurepipe.example import Schema, decode_examples
from featurepipe.tfrecord import read_records

__all__ = [
    "features_from_columns",
    "features_from_schema",
    "label_kind",
    "schema_beside",
]

# A shard `featurepipe convert` wrote: PREFIX-SSSSS-of-NNNNN[.tfrecord[.gz]]
# (featurepipe.tfrecord.shard_name); its schema is PREFIX.schema.json.
_SHARD_FILE = re.compile(r"^(?P<prefix>.+)-\d{5,}-of-\d{5,}(\.[A-Za-z0-9_]+)*$")
# Records read per file, and in all, when the label's kind comes from the data.
_SNIFF_RECORDS = 100
_SNIFF_TOTAL = 1000


def features_from_schema(schema: Schema) -> dict[str, PlanFeature]:
    """The decoding of every feature of a schema (``parse_spec_from_schema`` without TF).

    Variable-length features (``shape=None``) are ``VarLenFeature`` (shape
    `None`); fixed shapes are ``FixedLenFeature`` with the schema's default.

    Examples:
        >>> from featurepipe.example import FeatureSchema
        >>> s = Schema((FeatureSchema("x", "float", shape=()), FeatureSchema("c", "bytes")))
        >>> features_from_schema(s)["x"]
        PlanFeature(kind='float', shape=(), default=None)
    """
    out: dict[str, PlanFeature] = {}
    for feature in schema:
        if feature.shape is None:
            out[feature.name] = PlanFeature(feature.kind)
        else:
            out[feature.name] = PlanFeature(feature.kind, tuple(feature.shape), feature.default)
    return out


def features_from_columns(specs: ColumnSpecs) -> dict[str, PlanFeature]:
    """The decoding the columns need (``featurepipe.keras.parse_spec`` without TF).

    Numeric features are fixed-length of their shape (with the column's
    default); categorical and weight features are variable-length; a raw key of
    a crossed column takes the kind of another column on the same feature,
    else it is a variable-length string feature.

    Examples:
        >>> from featurepipe.columns import HashedColumn, NumericColumn
        >>> feats = features_from_columns(ColumnSpecs((NumericColumn("x"), HashedColumn("c", 4))))
        >>> feats["x"], feats["c"]
        (PlanFeature(kind='float', shape=(1,), default=None), PlanFeature(kind='bytes', \
shape=None, default=None))
    """
    out: dict[str, PlanFeature] = {}
    raw_cross_keys: list[str] = []
    for spec in walk_columns(specs.columns):
        if isinstance(spec, NumericColumn):
            kind = "int64" if spec.dtype == "int64" else "float"
            default: Any = spec.default_value
            if default is not None and kind == "int64":
                default = int(default)
            out[spec.key] = PlanFeature(kind, tuple(spec.shape), default)
        elif isinstance(spec, HashedColumn | VocabularyColumn):
            out.setdefault(spec.key, PlanFeature("bytes" if spec.dtype == "string" else "int64"))
        elif isinstance(spec, IdentityColumn):
            out.setdefault(spec.key, PlanFeature("int64"))
        elif isinstance(spec, WeightedColumn):
            out.setdefault(spec.weight_feature_key, PlanFeature("float"))
        elif isinstance(spec, CrossedColumn):
            raw_cross_keys.extend(k for k in spec.leaf_keys() if isinstance(k, str))
    for key in raw_cross_keys:
        out.setdefault(key, PlanFeature("bytes"))
    return out


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _first_records(path: str, n: int) -> list[bytes]:
    # damage is the reader's to report (a sniff only needs a few intact records)
    return list(itertools.islice(read_records(path, on_corrupt="skip"), n))


def schema_beside(
    files: Sequence[str],
    *,
    exists: Callable[[str], bool] = os.path.exists,
    read_text: Callable[[str], str] = _read_text,
) -> tuple[Schema, str] | None:
    """The schema ``featurepipe convert`` wrote beside these shards, and its path.

    Shards named ``PREFIX-SSSSS-of-NNNNN[.tfrecord[.gz]]`` (what ``convert``
    writes, and what ``PREFIX@N`` expands to) have their schema in
    ``PREFIX.schema.json``. Files of several prefixes must share one schema.
    Local files by default; ``featurepipe.keras.schema_beside`` passes
    ``tf.io.gfile``'s ``exists`` / reading for remote file systems.

    Returns:
        ``(schema, path)``, or `None` when no file is such a shard, a schema
        file is missing, or the prefixes' schemas differ.

    Raises:
        ConfigError: when a schema file is there but is not a valid schema.

    Examples:
        >>> schema_beside(["data/part.tfrecord"]) is None
        True
    """
    prefixes = set()
    for path in files:
        m = _SHARD_FILE.match(path)
        if m is None:
            return None
        prefixes.add(m["prefix"])
    found: list[tuple[Schema, str]] = []
    for prefix in sorted(prefixes):
        path = f"{prefix}.schema.json"
        if not exists(path):
            return None
        text = read_text(path)
        try:
            found.append((Schema.from_json(text), path))
        except ConfigError as e:
            raise ConfigError(f"{path}: not a valid schema ({e}); fix or remove it.") from None
    if not found or any(schema != found[0][0] for schema, _ in found[1:]):
        return None
    return found[0]


def _kinds(records: list[bytes], key: str) -> list[tuple[int, str]]:
    """``(first record, kind)`` of feature ``key`` in ``records``; records that are
    not Examples are passed over (reading them reports them, with their offsets)."""
    try:
        batches = [(0, decode_examples(records))]
    except ExampleDecodeError:
        batches = []
        for i, record in enumerate(records):
            try:
                batches.append((i, decode_examples([record])))
            except ExampleDecodeError:
                continue
    out: list[tuple[int, str]] = []
    for start, batch in batches:
        col = batch.columns.get(key)
        if col is not None and col.kind is not None:
            first = int(col.present.argmax()) if col.present.any() else 0
            out.append((start + first, col.kind))
    return out


_LABEL_HINT = (
    "pass `schema` (the PREFIX.schema.json that `featurepipe convert` writes) with the "
    "label's kind and shape"
)


def label_kind(
    files: Sequence[str],
    key: str,
    *,
    first_records: Callable[[str, int], list[bytes]] = _first_records,
    exists: Callable[[str], bool] = os.path.exists,
    read_text: Callable[[str], str] = _read_text,
    hint: str = _LABEL_HINT,
) -> str:
    """The kind (``"int64"``, ``"float"``, ``"bytes"``) of feature ``key`` in the data.

    From the ``PREFIX.schema.json`` beside the shards (:func:`schema_beside`),
    else from the first records (up to 100 of each file, 1,000 in all). Local
    files by default; ``featurepipe.keras.label_kind`` passes readers of remote
    file systems (``first_records(path, n)``, ``exists``, ``read_text``) and
    its own ``hint`` (what to set when the data does not tell).

    Raises:
        ConfigError: when the first records do not have the feature, or hold it
            with more than one kind.
    """
    beside = schema_beside(files, exists=exists, read_text=read_text)
    if beside is not None and key in beside[0]:
        return beside[0][key].kind
    kinds: dict[str, tuple[str, int]] = {}  # kind -> (first file, record)
    total = 0
    for path in files:
        records = first_records(path, _SNIFF_RECORDS)
        total += len(records)
        for i, kind in _kinds(records, key):
            kinds.setdefault(kind, (path, i))
        if total >= _SNIFF_TOTAL or kinds:
            break
    if len(kinds) == 1:
        return next(iter(kinds))
    if not kinds:
        raise ConfigError(
            f"No label {key!r} in the first {total:,} records of {files[0]}"
            + (f" (or {len(files) - 1} more file(s))" if len(files) > 1 else "")
            + f": its kind is unknown. Check the name (label_key={key!r}), or {hint}."
        )
    seen = ", ".join(f"{k} in {p} record {i}" for k, (p, i) in sorted(kinds.items()))
    raise ConfigError(f"The label {key!r} holds more than one kind in the data ({seen}): {hint}.")
