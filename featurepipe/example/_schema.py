"""The feature schema: names, kinds, shapes, presence and defaults.

A `Schema` is a small value object with a JSON form that carries a
``format_version``. It is what conversion writes beside its output
(``PREFIX.schema.json``), what ``featurepipe inspect schema`` prints, and what
the Keras input pipeline turns into a parse spec (``shape=None`` is a
``tf.io.VarLenFeature``; a tuple shape is a ``tf.io.FixedLenFeature``).

`SchemaInferrer` is a mergeable accumulator (add / merge / extract) that
infers a schema from Examples; `infer_schema` drives it over records.

`FeatureConstraints` says what data is allowed beyond kind and shape:
presence (``min_fraction``, ``min_count``), the number of values per example,
a domain (allowed strings, or a numeric min / max) and the skew / drift
thresholds of ``featurepipe inspect compare``. They live in a top-level
``"constraints"`` object of the schema JSON, keyed by feature name, so a
schema with constraints keeps ``format_version`` 1 and stays readable by a
featurepipe that predates them (it ignores top-level keys it does not know,
while it rejects unknown keys inside a feature).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from featurepipe._util import write_text
from featurepipe._version import __version__
from featurepipe.errors import ConfigError, ExampleDecodeError
from featurepipe.example._codec import KINDS, ColumnBatch, Feature, Kind

__all__ = [
    "FORMAT_VERSION",
    "FeatureConstraints",
    "FeatureSchema",
    "Schema",
    "SchemaInferrer",
    "infer_schema",
]

#: Version of the schema JSON layout this featurepipe writes and reads.
FORMAT_VERSION = 1

_FIELDS = (
    "name",
    "kind",
    "shape",
    "required",
    "default",
    "value_separator",
    "missing_values",
)


@dataclasses.dataclass(frozen=True)
class FeatureSchema:
    """What one feature holds.

    Args:
        name: the feature name (the Example key, the source column).
        kind: ``"int64"``, ``"float"`` or ``"bytes"``.
        shape: ``None`` for a variable number of values per example, ``()``
            for exactly one value, ``(n,)`` for exactly ``n``. Defaults to `None`.
        required: every example must have the feature. Defaults to `True`.
        default: the value used where an optional fixed-shape feature is
            missing (a scalar for ``shape=()``, a list of ``n`` values for
            ``(n,)``). Defaults to `None`.
        value_separator: for text sources (CSV), the separator that splits a
            cell into a list of values. Defaults to `None` (one value per cell).
        missing_values: text values that count as missing in text sources
            (e.g. ``("", "NA", "null")``). Defaults to `()`.

    Raises:
        ConfigError: on an unknown kind, a bad shape, or a default that does
            not fit the kind and shape.

    Examples:

    >>> FeatureSchema("age", "int64", shape=())
    FeatureSchema(name='age', kind='int64', shape=(), required=True, default=None, \
value_separator=None, missing_values=())
    >>> FeatureSchema("age", "int", shape=())
    Traceback (most recent call last):
    ...
    featurepipe.errors.ConfigError: Unknown value for `kind` of feature 'age'. Allowed values \
are: ('int64', 'float', 'bytes'). Received: kind='int'
    """

    name: str
    kind: Kind
    shape: tuple[int, ...] | None = None
    required: bool = True
    default: Any = None
    value_separator: str | None = None
    missing_values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ConfigError(f"Feature names must be str. Received: name={self.name!r}")
        if self.kind not in KINDS:
            raise ConfigError(
                f"Unknown value for `kind` of feature {self.name!r}. Allowed values are: "
                f"{KINDS}. Received: kind={self.kind!r}"
            )
        if self.shape is not None:
            shape = tuple(self.shape)
            if any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape):
                raise ConfigError(
                    f"`shape` of feature {self.name!r} must be None or a tuple of ints >= 0. "
                    f"Received: shape={self.shape!r}"
                )
            object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "missing_values", tuple(self.missing_values))
        if self.default is not None:
            object.__setattr__(self, "default", self._check_default(self.default))

    def _check_default(self, default: Any) -> Any:
        if self.shape is None:
            raise ConfigError(
                f"Feature {self.name!r}: a `default` needs a fixed `shape` (a variable-length "
                f"feature is empty where missing). Received: default={default!r}, shape=None"
            )
        want = math.prod(self.shape)
        values = list(default) if isinstance(default, (list, tuple)) else [default]
        if len(values) != want:
            raise ConfigError(
                f"Feature {self.name!r}: `default` must have {want} value(s) for shape "
                f"{self.shape}. Received: default={default!r}"
            )
        for v in values:
            ok = (
                (self.kind == "int64" and isinstance(v, int) and not isinstance(v, bool))
                or (
                    self.kind == "float"
                    and isinstance(v, (int, float))
                    and not isinstance(v, bool)
                )
                or (self.kind == "bytes" and isinstance(v, str))
            )
            if not ok:
                want_type = {"int64": "ints", "float": "numbers", "bytes": "str"}[self.kind]
                raise ConfigError(
                    f"Feature {self.name!r}: `default` values must be {want_type} for kind "
                    f"{self.kind!r}. Received: default={default!r}"
                )
        if self.shape == ():
            return values[0]
        return values

    @property
    def fixed_length(self) -> int | None:
        """Values per example for a fixed shape, ``None`` for variable length."""
        return None if self.shape is None else math.prod(self.shape)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form (only non-default fields besides name and kind)."""
        d: dict[str, Any] = {"name": self.name, "kind": self.kind}
        d["shape"] = None if self.shape is None else list(self.shape)
        d["required"] = self.required
        if self.default is not None:
            d["default"] = self.default
        if self.value_separator is not None:
            d["value_separator"] = self.value_separator
        if self.missing_values:
            d["missing_values"] = list(self.missing_values)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSchema:
        """Build from `to_dict`'s form; unknown keys are an error."""
        unknown = sorted(set(d) - set(_FIELDS))
        if unknown:
            raise ConfigError(
                f"Unknown key(s) {unknown} in the schema of feature {d.get('name')!r}. "
                f"Allowed keys are: {_FIELDS}."
            )
        for key in ("name", "kind"):
            if key not in d:
                raise ConfigError(f"A feature in the schema has no {key!r}. Received: {dict(d)}")
        shape = d.get("shape")
        return cls(
            name=d["name"],
            kind=d["kind"],
            shape=None if shape is None else tuple(shape),
            required=bool(d.get("required", True)),
            default=d.get("default"),
            value_separator=d.get("value_separator"),
            missing_values=tuple(d.get("missing_values", ())),
        )


_CONSTRAINT_KEYS = ("presence", "value_count", "domain", "skew_threshold", "drift_threshold")


@dataclasses.dataclass(frozen=True)
class FeatureConstraints:
    """What values of one feature are allowed (checked by ``inspect validate``).

    Every field is optional; ``None`` means "no constraint". Presence and value
    counts also follow from `FeatureSchema` (``required`` means a
    ``min_fraction`` of 1; ``shape=()`` means exactly one value): the fields
    here add to those.

    Args:
        name: the feature name (must be in the schema).
        min_fraction: least fraction of examples that have the feature.
        min_count: least number of examples that have the feature.
        min_values: least number of values in an example that has the feature.
        max_values: most values in an example that has the feature.
        values: the allowed values of a bytes feature (its string domain).
        max_fraction_outside: the fraction of a bytes feature's values that
            may lie outside ``values`` before it is an anomaly. Defaults to
            `None` (none may).
        min: least allowed value of an int64 / float feature.
        max: largest allowed value of an int64 / float feature.
        skew_threshold: largest allowed distance between training and serving
            data (L-infinity for bytes features, Jensen-Shannon divergence for
            numeric ones).
        drift_threshold: the same, between consecutive spans of data.

    Raises:
        ConfigError: for an out-of-range value.

    Examples:

    >>> c = FeatureConstraints("city", min_fraction=0.9, values=(b"Lima", b"Oslo"))
    >>> c.to_dict()
    {'presence': {'min_fraction': 0.9}, 'domain': {'values': ['Lima', 'Oslo']}}
    >>> FeatureConstraints.from_dict("city", c.to_dict()) == c
    True
    >>> FeatureConstraints("x", min_values=3, max_values=2)
    Traceback (most recent call last):
    ...
    featurepipe.errors.ConfigError: Feature 'x': `min_values` (3) is larger than `max_values` (2).
    """

    name: str
    min_fraction: float | None = None
    min_count: int | None = None
    min_values: int | None = None
    max_values: int | None = None
    values: tuple[bytes, ...] | None = None
    max_fraction_outside: float | None = None
    min: float | None = None
    max: float | None = None
    skew_threshold: float | None = None
    drift_threshold: float | None = None

    def __post_init__(self) -> None:
        for key in ("min_fraction", "max_fraction_outside"):
            v = getattr(self, key)
            if v is not None and not (_is_number(v) and 0.0 <= v <= 1.0):
                raise ConfigError(
                    f"Feature {self.name!r}: `{key}` must be a number in [0, 1]. "
                    f"Received: {key}={v!r}"
                )
        for key in ("min_count", "min_values", "max_values"):
            v = getattr(self, key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ConfigError(
                    f"Feature {self.name!r}: `{key}` must be an integer >= 0. "
                    f"Received: {key}={v!r}"
                )
        for key in ("min", "max", "skew_threshold", "drift_threshold"):
            v = getattr(self, key)
            if v is not None and not _is_number(v):
                raise ConfigError(
                    f"Feature {self.name!r}: `{key}` must be a number. Received: {key}={v!r}"
                )
        for key in ("skew_threshold", "drift_threshold"):
            v = getattr(self, key)
            if v is not None and v < 0:
                raise ConfigError(
                    f"Feature {self.name!r}: `{key}` must be >= 0. Received: {key}={v!r}"
                )
        for lo, hi in (("min_values", "max_values"), ("min", "max")):
            a, b = getattr(self, lo), getattr(self, hi)
            if a is not None and b is not None and a > b:
                raise ConfigError(
                    f"Feature {self.name!r}: `{lo}` ({a}) is larger than `{hi}` ({b})."
                )
        if self.values is not None:
            vals = tuple(v.encode("utf-8") if isinstance(v, str) else v for v in self.values)
            if not all(isinstance(v, bytes) for v in vals):
                raise ConfigError(
                    f"Feature {self.name!r}: domain `values` must be str or bytes. "
                    f"Received: {self.values!r}"
                )
            object.__setattr__(self, "values", vals)
        if self.max_fraction_outside is not None and self.values is None:
            raise ConfigError(
                f"Feature {self.name!r}: `max_fraction_outside` needs domain `values`."
            )
        if self.values is not None and (self.min is not None or self.max is not None):
            raise ConfigError(
                f"Feature {self.name!r}: a domain is either string `values` or a numeric "
                "`min` / `max`, not both."
            )

    @property
    def is_empty(self) -> bool:
        """True when no field besides the name is set."""
        return all(
            getattr(self, f.name) is None for f in dataclasses.fields(self) if f.name != "name"
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form (only the set fields; no name: it is the key)."""
        from featurepipe._util import json_value

        d: dict[str, Any] = {}
        presence = {
            k: v for k in ("min_fraction", "min_count") if (v := getattr(self, k)) is not None
        }
        if presence:
            d["presence"] = presence
        counts = {
            k: v
            for k, attr in (("min", "min_values"), ("max", "max_values"))
            if (v := getattr(self, attr)) is not None
        }
        if counts:
            d["value_count"] = counts
        domain: dict[str, Any] = {}
        if self.values is not None:
            domain["values"] = [json_value(v) for v in self.values]
            if self.max_fraction_outside is not None:
                domain["max_fraction_outside"] = self.max_fraction_outside
        for k in ("min", "max"):
            if (v := getattr(self, k)) is not None:
                domain[k] = v
        if domain:
            d["domain"] = domain
        for k in ("skew_threshold", "drift_threshold"):
            if (v := getattr(self, k)) is not None:
                d[k] = v
        return d

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> FeatureConstraints:
        """Build from `to_dict`'s form; unknown keys are an error."""
        if not isinstance(d, Mapping):
            raise ConfigError(
                f"The constraints of feature {name!r} must be an object. Received: {d!r}"
            )
        _check_keys(name, "constraints", d, _CONSTRAINT_KEYS)
        presence = d.get("presence") or {}
        counts = d.get("value_count") or {}
        domain = d.get("domain") or {}
        _check_keys(name, "presence", presence, ("min_fraction", "min_count"))
        _check_keys(name, "value_count", counts, ("min", "max"))
        _check_keys(name, "domain", domain, ("values", "max_fraction_outside", "min", "max"))
        values = domain.get("values")
        if values is not None:
            if not isinstance(values, list):
                raise ConfigError(
                    f"Feature {name!r}: domain `values` must be a list. Received: {values!r}"
                )
            values = tuple(_value_from_json(name, v) for v in values)
        return cls(
            name=name,
            min_fraction=presence.get("min_fraction"),
            min_count=presence.get("min_count"),
            min_values=counts.get("min"),
            max_values=counts.get("max"),
            values=values,
            max_fraction_outside=domain.get("max_fraction_outside"),
            min=domain.get("min"),
            max=domain.get("max"),
            skew_threshold=d.get("skew_threshold"),
            drift_threshold=d.get("drift_threshold"),
        )


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_keys(name: str, what: str, d: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(d, Mapping):
        raise ConfigError(f"Feature {name!r}: `{what}` must be an object. Received: {d!r}")
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise ConfigError(
            f"Unknown key(s) {unknown} in `{what}` of feature {name!r}. "
            f"Allowed keys are: {allowed}."
        )


def _value_from_json(name: str, v: Any) -> bytes:
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, Mapping) and set(v) == {"base64"} and isinstance(v["base64"], str):
        import base64
        import binascii

        try:
            return base64.b64decode(v["base64"], validate=True)
        except binascii.Error:
            pass
    raise ConfigError(
        f"Feature {name!r}: a domain value must be a string or {{\"base64\": ...}}. "
        f"Received: {v!r}"
    )


@dataclasses.dataclass(frozen=True)
class Schema:
    """An ordered set of `FeatureSchema`, with a JSON form.

    Examples:

    >>> s = Schema((FeatureSchema("x", "float", shape=()), FeatureSchema("tags", "bytes")))
    >>> s.names
    ('x', 'tags')
    >>> Schema.from_json(s.to_json()) == s
    True
    >>> s["x"].kind
    'float'
    >>> s2 = s.with_constraints([FeatureConstraints("x", min=0.0, max=1.0)])
    >>> s2.constraints_for("x").max, s2.constraints_for("tags")
    (1.0, None)
    >>> Schema.from_json(s2.to_json()) == s2
    True
    """

    features: tuple[FeatureSchema, ...]
    constraints: tuple[FeatureConstraints, ...] = ()

    def __post_init__(self) -> None:
        feats = tuple(self.features)
        object.__setattr__(self, "features", feats)
        seen: set[str] = set()
        for f in feats:
            if not isinstance(f, FeatureSchema):
                raise ConfigError(
                    f"`features` must hold FeatureSchema objects. Received: {type(f).__name__}"
                )
            if f.name in seen:
                raise ConfigError(f"Feature {f.name!r} appears twice in the schema.")
            seen.add(f.name)
        cons = tuple(c for c in self.constraints if not c.is_empty)
        object.__setattr__(self, "constraints", cons)
        kinds = {f.name: f.kind for f in feats}
        named: set[str] = set()
        for c in cons:
            if not isinstance(c, FeatureConstraints):
                raise ConfigError(
                    "`constraints` must hold FeatureConstraints objects. "
                    f"Received: {type(c).__name__}"
                )
            if c.name not in kinds:
                raise ConfigError(
                    f"The constraints name feature {c.name!r}, which is not in the schema."
                )
            if c.name in named:
                raise ConfigError(f"Feature {c.name!r} has constraints twice.")
            named.add(c.name)
            if c.values is not None and kinds[c.name] != "bytes":
                raise ConfigError(
                    f"Feature {c.name!r} of kind {kinds[c.name]!r}: domain `values` are for "
                    "bytes features; use `min` / `max` for numbers."
                )
            if (c.min is not None or c.max is not None) and kinds[c.name] == "bytes":
                raise ConfigError(
                    f"Feature {c.name!r} is bytes: a numeric domain `min` / `max` is for "
                    "int64 and float features; use `values`."
                )

    def constraints_for(self, name: str) -> FeatureConstraints | None:
        """The `FeatureConstraints` of feature ``name``, or ``None``."""
        for c in self.constraints:
            if c.name == name:
                return c
        return None

    def with_constraints(self, constraints: Iterable[FeatureConstraints]) -> Schema:
        """A copy with these constraints (replacing those of the same features)."""
        new = {c.name: c for c in constraints}
        kept = tuple(c for c in self.constraints if c.name not in new)
        return Schema(self.features, kept + tuple(new.values()))

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names, in schema order."""
        return tuple(f.name for f in self.features)

    def __getitem__(self, name: str) -> FeatureSchema:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"No feature {name!r} in the schema (select from {list(self.names)})")

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.features)

    def __iter__(self) -> Iterator[FeatureSchema]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form, with ``format_version`` and ``featurepipe_version``.

        ``"constraints"`` (feature name -> `FeatureConstraints.to_dict`) is
        written only when there are some, in schema order.
        """
        d: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "featurepipe_version": __version__,
            "features": [f.to_dict() for f in self.features],
        }
        if self.constraints:
            by_name = {c.name: c for c in self.constraints}
            d["constraints"] = {
                n: by_name[n].to_dict() for n in self.names if n in by_name
            }
        return d

    def to_json(self, indent: int | None = 2) -> str:
        """Serialize to JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Schema:
        """Build from `to_dict`'s form; checks ``format_version``."""
        version = d.get("format_version")
        if not isinstance(version, int):
            raise ConfigError(
                "The schema JSON has no integer `format_version`; is this a featurepipe "
                f"schema? Received keys: {sorted(d)}"
            )
        if version > FORMAT_VERSION:
            raise ConfigError(
                f"The schema has format_version={version}, newer than this featurepipe "
                f"({__version__}) reads ({FORMAT_VERSION}). Upgrade featurepipe."
            )
        feats = d.get("features")
        if not isinstance(feats, list):
            raise ConfigError("The schema JSON needs a `features` list.")
        cons = d.get("constraints") or {}
        if not isinstance(cons, Mapping):
            raise ConfigError(
                "The schema's `constraints` must be an object: feature name -> constraints."
            )
        return cls(
            tuple(FeatureSchema.from_dict(f) for f in feats),
            tuple(FeatureConstraints.from_dict(str(n), c) for n, c in cons.items()),
        )

    @classmethod
    def from_json(cls, text: str) -> Schema:
        """Parse JSON text written by `to_json`."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"The schema is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise ConfigError("The schema JSON must be an object.")
        return cls.from_dict(d)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON form to ``path`` atomically."""
        write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Schema:
        """Read a schema written by `save`."""
        with open(path, encoding="utf-8") as f:
            try:
                return cls.from_json(f.read())
            except ConfigError as e:
                raise ConfigError(f"{os.fspath(path)}: {e}") from None




@dataclasses.dataclass
class _FeatureStats:
    kind_rows: dict[str, int] = dataclasses.field(default_factory=dict)
    present: int = 0
    kindless: int = 0
    min_count: int | None = None
    max_count: int | None = None

    def add(self, kind: str | None, rows: int, kindless: int, lo: int, hi: int) -> None:
        self.kindless += kindless
        if kind is None or rows == 0:
            return
        self.kind_rows[kind] = self.kind_rows.get(kind, 0) + rows
        self.present += rows
        self.min_count = lo if self.min_count is None else min(self.min_count, lo)
        self.max_count = hi if self.max_count is None else max(self.max_count, hi)

    def merge(self, o: _FeatureStats) -> None:
        for k, v in o.kind_rows.items():
            self.kind_rows[k] = self.kind_rows.get(k, 0) + v
        self.present += o.present
        self.kindless += o.kindless
        for attr, pick in (("min_count", min), ("max_count", max)):
            a, b = getattr(self, attr), getattr(o, attr)
            setattr(self, attr, b if a is None else a if b is None else pick(a, b))


class SchemaInferrer:
    """Infers a `Schema` from Examples: a mergeable accumulator.

    Per feature it counts the rows that have it with each kind, the rows with
    a kindless Feature, and the smallest and largest number of values. On
    `extract`: the kind is the one most rows have (a feature seen with two
    kinds is reported in `conflicts`); ``shape`` is ``()`` when every present
    row has one value, ``(n,)`` when all have ``n``, else ``None``;
    ``required`` when every row has it.

    Examples:

    >>> from featurepipe.example._codec import encode_example, decode_examples
    >>> inf = SchemaInferrer()
    >>> inf.add_batch(decode_examples([encode_example({"a": 1, "b": [1.0, 2.0]}),
    ...                                encode_example({"a": 2})]))
    >>> [(f.name, f.kind, f.shape, f.required) for f in inf.extract()]
    [('a', 'int64', (), True), ('b', 'float', (2,), False)]
    """

    def __init__(self) -> None:
        self.num_rows = 0
        self._stats: dict[str, _FeatureStats] = {}

    def add_example(self, example: Mapping[str, Feature]) -> None:
        """Add one decoded Example (`featurepipe.example.decode_example`'s output)."""
        self.num_rows += 1
        for name, feat in example.items():
            st = self._stats.setdefault(name, _FeatureStats())
            n = len(feat.values)
            st.add(feat.kind, 1 if feat.kind else 0, 0 if feat.kind else 1, n, n)

    def add_batch(self, batch: ColumnBatch) -> None:
        """Add a `ColumnBatch` (`featurepipe.example.decode_examples`'s output)."""
        self.num_rows += batch.num_rows
        for name, col in batch.columns.items():
            st = self._stats.setdefault(name, _FeatureStats())
            rows = int(col.present.sum())
            lens = col.row_lengths[col.present]
            lo = int(lens.min()) if rows else 0
            hi = int(lens.max()) if rows else 0
            st.add(col.kind, rows, int(col.kindless.sum()), lo, hi)

    def merge(self, other: SchemaInferrer) -> SchemaInferrer:
        """Fold ``other`` into this one; returns self."""
        self.num_rows += other.num_rows
        for name, st in other._stats.items():
            self._stats.setdefault(name, _FeatureStats()).merge(st)
        return self

    @property
    def conflicts(self) -> dict[str, dict[str, int]]:
        """Features seen with more than one kind: name -> {kind: rows}."""
        return {n: dict(s.kind_rows) for n, s in self._stats.items() if len(s.kind_rows) > 1}

    def feature_counts(self) -> dict[str, dict[str, Any]]:
        """Per feature: rows present, kindless rows, min/max values per present row."""
        return {
            n: {
                "present": s.present,
                "kindless": s.kindless,
                "min_count": s.min_count,
                "max_count": s.max_count,
                "kinds": dict(s.kind_rows),
            }
            for n, s in sorted(self._stats.items())
        }

    def extract(self) -> Schema:
        """The inferred schema, features sorted by name.

        A feature that never had a list set (only kindless Features) gets
        kind ``bytes`` and ``required=False``: nothing says otherwise.
        """
        feats = []
        for name in sorted(self._stats):
            st = self._stats[name]
            if st.kind_rows:
                # most rows first; ties by KINDS order, so the result is deterministic
                kind = max(st.kind_rows, key=lambda k: (st.kind_rows[k], -KINDS.index(k)))
            else:
                kind = "bytes"
            if st.present and st.min_count == st.max_count:
                shape: tuple[int, ...] | None = () if st.min_count == 1 else (st.min_count or 0,)
            else:
                shape = None
            feats.append(
                FeatureSchema(
                    name,
                    kind,  # type: ignore[arg-type]
                    shape=shape,
                    required=st.present == self.num_rows and self.num_rows > 0,
                )
            )
        return Schema(tuple(feats))


def infer_schema(records: Iterable[bytes], *, batch_size: int = 1024) -> Schema:
    """Infer a `Schema` from serialized Examples.

    Args:
        records: serialized Examples (e.g. ``read_records(path)``, or a slice of it).
        batch_size: records decoded per batch. Defaults to `1024`.

    Returns:
        The inferred schema.

    Raises:
        ExampleDecodeError: a record is not an Example.

    Examples:

    >>> from featurepipe.example._codec import encode_example
    >>> infer_schema([encode_example({"x": 1.5})])["x"]
    FeatureSchema(name='x', kind='float', shape=(), required=True, default=None, \
value_separator=None, missing_values=())
    """
    inf = SchemaInferrer()
    add_records(inf, records, batch_size=batch_size)
    return inf.extract()


def add_records(
    inferrer: SchemaInferrer,
    records: Iterable[bytes],
    *,
    batch_size: int = 1024,
    path: str | None = None,
) -> None:
    """Feed serialized Examples to ``inferrer`` in batches.

    A batch in which one feature has two kinds is added Example by Example,
    so the conflict is counted rather than fatal.
    """
    from featurepipe.example._codec import decode_example, decode_examples

    batch: list[bytes] = []
    first = 0

    def flush() -> None:
        nonlocal first
        try:
            inferrer.add_batch(decode_examples(batch, path=path, first_index=first))
        except ExampleDecodeError as e:
            if e.reason != "mixed_kind":
                raise
            for i, data in enumerate(batch):
                inferrer.add_example(decode_example(data, path=path, record=first + i))
        first += len(batch)
        batch.clear()

    for data in records:
        batch.append(data)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
