"""Column specs: what to compute from each feature, as small frozen value objects.

Each spec is the featurepipe counterpart of one ``tf.feature_column`` column and
gives the same ids (see :mod:`featurepipe.columns._hashing`): numeric, bucketized,
vocabulary, hashed, identity, crossed, weighted, embedding and indicator
columns. Argument names follow Keras 3 where a Keras layer names the idea
(``num_bins``, ``bin_boundaries``, ``vocabulary``, ``output_mode``) and
``tf.feature_column`` otherwise (``num_oov_buckets``, ``default_value``,
``hash_key``, ``dimension``, ``combiner``). :meth:`ColumnSpecs.from_config`
also accepts the ``tf.feature_column`` spellings (``boundaries``,
``hash_bucket_size``, ``vocabulary_list``, ``vocabulary_file``).

Values that an analyzer computes (vocabularies, quantile boundaries, moments)
may be left out and filled later with :meth:`ColumnSpecs.resolve` from any
object that implements :class:`Artifacts`.

Every spec has ``get_config()`` / ``from_config()``; a :class:`ColumnSpecs`
collection saves to JSON with a ``format_version``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from featurepipe._util import write_text
from featurepipe._version import __version__
from featurepipe.columns._base import (
    _COMBINERS,
    _OUTPUT_MODES,
    FORMAT_VERSION,
    Artifacts,
    CategoricalSpec,
    ColumnSpec,
    Normalizer,
    NumericColumn,
    _as_tuple,
    _check_categorical,
    _check_count,
    _check_dtype,
    _check_key,
    column_from_config,
)
from featurepipe.columns._compact import column_from_compact, is_compact
from featurepipe.errors import ConfigError

__all__ = [
    "FORMAT_VERSION",
    "Artifacts",
    "BucketizedColumn",
    "CategoricalSpec",
    "ColumnSpec",
    "ColumnSpecs",
    "CrossedColumn",
    "EmbeddingColumn",
    "HashedColumn",
    "IdentityColumn",
    "IndicatorColumn",
    "Normalizer",
    "NumericColumn",
    "VocabularyColumn",
    "WeightedColumn",
    "column_from_config",
]


# -- categorical ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketizedColumn(CategoricalSpec):
    """Buckets a numeric column: ``tf.feature_column.bucketized_column``.

    ``bin_boundaries=[0., 1., 2.]`` gives buckets ``(-inf, 0.)``, ``[0., 1.)``,
    ``[1., 2.)``, ``[2., +inf)``. The ``i``-th value of a row gets ids
    ``i * (len(bin_boundaries) + 1) + bucket``.

    Args:
        source: the :class:`NumericColumn` to bucket (its normalizer applies first).
        bin_boundaries: sorted boundaries, or `None` to take ``num_bins - 1``
            quantile boundaries from the analyzer. Defaults to `None`.
        num_bins: the number of buckets to ask the analyzer for. Defaults to `None`.

    Raises:
        ConfigError: if neither ``bin_boundaries`` nor ``num_bins`` is given, or
            the boundaries are not sorted.

    Examples:
        >>> BucketizedColumn(NumericColumn("age"), bin_boundaries=(18, 65)).num_ids
        3
    """

    source: NumericColumn
    bin_boundaries: tuple[float, ...] | None = None
    num_bins: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.source, str):
            object.__setattr__(self, "source", NumericColumn(self.source))
        if not isinstance(self.source, NumericColumn):
            raise ConfigError(
                "`source` of BucketizedColumn must be a NumericColumn. "
                f"Received: source={self.source!r}"
            )
        if self.bin_boundaries is None and self.num_bins is None:
            raise ConfigError(
                "Pass either `bin_boundaries` or `num_bins` (filled from the analyzer's "
                f"quantiles) to BucketizedColumn. Received: neither, for key={self.source.key!r}"
            )
        if self.num_bins is not None and (
            isinstance(self.num_bins, bool)
            or not isinstance(self.num_bins, int)
            or self.num_bins < 2
        ):
            raise ConfigError(
                f"`num_bins` must be an integer >= 2. Received: num_bins={self.num_bins!r}"
            )
        if self.bin_boundaries is not None:
            bounds = tuple(float(b) for b in _as_tuple(self.bin_boundaries))
            if not bounds:
                raise ConfigError(
                    "`bin_boundaries` must not be empty (tf.feature_column refuses it too). "
                    f"Received: bin_boundaries=() for key={self.source.key!r}"
                )
            if any(b >= c for b, c in itertools.pairwise(bounds)):
                raise ConfigError(
                    "`bin_boundaries` must be sorted in increasing order without repeats. "
                    f"Received: bin_boundaries={list(bounds)!r}"
                )
            if any(math.isnan(b) for b in bounds):
                raise ConfigError(
                    f"`bin_boundaries` must not contain NaN. Received: {list(bounds)}"
                )
            object.__setattr__(self, "bin_boundaries", bounds)

    @property
    def name(self) -> str:
        return f"{self.source.name}_bucketized"

    @property
    def is_resolved(self) -> bool:
        return self.bin_boundaries is not None and self.source.is_resolved

    @property
    def num_ids(self) -> int:
        if self.bin_boundaries is not None:
            return (len(self.bin_boundaries) + 1) * self.source.size
        return int(self.num_bins) * self.source.size  # type: ignore[arg-type]

    def resolve(self, artifacts: Artifacts) -> BucketizedColumn:
        source = self.source.resolve(artifacts)
        bounds = self.bin_boundaries
        if bounds is None:
            found = artifacts.boundaries(self.source.key, int(self.num_bins))  # type: ignore[arg-type]
            # Quantiles of skewed data repeat; tf.feature_column refuses repeats, so
            # keep each boundary once (the column then has fewer buckets).
            bounds = tuple(sorted({float(b) for b in found if not math.isnan(float(b))}))
            if not bounds:
                raise ConfigError(
                    f"The analyzer has no quantile boundaries for {self.source.key!r} (no "
                    "values?); pass `bin_boundaries` explicitly."
                )
        if source is self.source and bounds is self.bin_boundaries:
            return self
        return dataclasses.replace(self, source=source, bin_boundaries=bounds)


@dataclass(frozen=True)
class VocabularyColumn(CategoricalSpec):
    """Ids from a vocabulary: ``categorical_column_with_vocabulary_list`` / ``_file``.

    Values in the vocabulary get their index; others get
    ``len(vocabulary) + Fingerprint64(value) % num_oov_buckets`` (out-of-vocabulary
    buckets come *after* the vocabulary, as in ``tf.feature_column``; Keras'
    ``StringLookup`` puts them first), or ``default_value`` when
    ``num_oov_buckets == 0``.

    Args:
        key: the feature name.
        vocabulary: a tuple of values, a path to a text file with one value per
            line, or `None` for the analyzer's vocabulary of ``key``.
            Defaults to `None`.
        dtype: ``"string"`` or ``"int64"``. Defaults to `"string"`.
        num_oov_buckets: out-of-vocabulary buckets. Defaults to `0`.
        default_value: the id of out-of-vocabulary values when
            ``num_oov_buckets == 0``. Defaults to `-1` (ignored by embeddings).
        vocabulary_size: use only the first ``vocabulary_size`` entries.
            Defaults to `None` (all).
        top_k: for the analyzer: keep the ``top_k`` most frequent values.
            Defaults to `None`.
        min_frequency: for the analyzer: drop rarer values. Defaults to `1`.

    Examples:
        >>> VocabularyColumn("color", vocabulary=("red", "green"), num_oov_buckets=2).num_ids
        4
    """

    key: str
    vocabulary: tuple[str | int, ...] | str | None = None
    dtype: str = "string"
    num_oov_buckets: int = 0
    default_value: int = -1
    vocabulary_size: int | None = None
    top_k: int | None = None
    min_frequency: int = 1

    def __post_init__(self) -> None:
        _check_key(self.key)
        _check_dtype(self.dtype, "VocabularyColumn")
        if not isinstance(self.vocabulary, str | type(None)):
            vocab = _as_tuple(self.vocabulary)
            if not vocab:
                raise ConfigError(
                    f"`vocabulary` must not be empty. Received: vocabulary=() for key={self.key!r}"
                )
            if self.dtype == "int64" and not all(isinstance(v, int) for v in vocab):
                raise ConfigError(
                    f"An int64 vocabulary must hold integers. Received: vocabulary={vocab[:5]!r}..."
                )
            if len(set(vocab)) != len(vocab):
                raise ConfigError(
                    "`vocabulary` must not contain duplicates. "
                    f"Received: vocabulary for key={self.key!r}"
                )
            object.__setattr__(self, "vocabulary", vocab)
        if self.num_oov_buckets < 0:
            raise ConfigError(
                f"`num_oov_buckets` must be >= 0. Received: num_oov_buckets={self.num_oov_buckets}"
            )
        if self.num_oov_buckets and self.default_value != -1:
            raise ConfigError(
                "Set either `num_oov_buckets` or `default_value`, not both. Received: "
                f"num_oov_buckets={self.num_oov_buckets}, default_value={self.default_value}"
            )
        if self.vocabulary_size is not None and self.vocabulary_size < 1:
            raise ConfigError(
                f"`vocabulary_size` must be >= 1. Received: vocabulary_size={self.vocabulary_size}"
            )

    @property
    def name(self) -> str:
        return self.key

    @property
    def is_resolved(self) -> bool:
        return self.vocabulary is not None

    @property
    def num_ids(self) -> int:
        return len(self.load_vocabulary()) + self.num_oov_buckets

    def resolve(self, artifacts: Artifacts) -> VocabularyColumn:
        if self.vocabulary is not None:
            return self
        return dataclasses.replace(self, vocabulary=tuple(artifacts.vocabulary(self.key)))

    def load_vocabulary(
        self, base_dir: str | os.PathLike[str] | None = None
    ) -> tuple[str | int, ...]:
        """Returns the vocabulary, reading the file if ``vocabulary`` is a path.

        Args:
            base_dir: the directory a relative path is relative to. Defaults to
                `None` (the working directory).

        Returns:
            The entries (ints for ``dtype="int64"``), cut to ``vocabulary_size``.

        Raises:
            ConfigError: if the vocabulary is unresolved, the file is missing, or
                it has fewer than ``vocabulary_size`` entries.
        """
        if self.vocabulary is None:
            raise ConfigError(
                f"The vocabulary of {self.key!r} is not known yet: pass `vocabulary` or call "
                "`ColumnSpecs.resolve(artifacts)` first."
            )
        if isinstance(self.vocabulary, str):
            path = os.path.join(base_dir, self.vocabulary) if base_dir else self.vocabulary
            try:
                with open(path, encoding="utf-8") as f:
                    lines = f.read().split("\n")
            except OSError as e:
                raise ConfigError(
                    f"Cannot read the vocabulary file of {self.key!r}: {e}. "
                    f"Received: vocabulary={self.vocabulary!r}"
                ) from e
            if lines and lines[-1] == "":
                lines.pop()
            entries: tuple[str | int, ...] = (
                tuple(int(v) for v in lines) if self.dtype == "int64" else tuple(lines)
            )
        else:
            entries = self.vocabulary
        if self.vocabulary_size is not None:
            if len(entries) < self.vocabulary_size:
                raise ConfigError(
                    f"The vocabulary of {self.key!r} has {len(entries)} entries, fewer than "
                    f"`vocabulary_size`. Received: vocabulary_size={self.vocabulary_size}"
                )
            entries = entries[: self.vocabulary_size]
        return entries


@dataclass(frozen=True)
class HashedColumn(CategoricalSpec):
    """Ids by hashing: ``categorical_column_with_hash_bucket(key, hash_bucket_size)``.

    Args:
        key: the feature name.
        num_bins: the number of buckets (``hash_bucket_size``).
        dtype: ``"string"`` or ``"int64"`` (integers hash as decimal strings).
            Defaults to `"string"`.

    Examples:
        >>> HashedColumn("city", num_bins=1000).num_ids
        1000
    """

    key: str
    num_bins: int
    dtype: str = "string"

    def __post_init__(self) -> None:
        _check_key(self.key)
        _check_dtype(self.dtype, "HashedColumn")
        _check_count("num_bins", self.num_bins, 1)

    @property
    def name(self) -> str:
        return self.key

    @property
    def num_ids(self) -> int:
        return self.num_bins


@dataclass(frozen=True)
class IdentityColumn(CategoricalSpec):
    """Integer values used as ids: ``categorical_column_with_identity``.

    Args:
        key: the feature name.
        num_buckets: ids are in ``[0, num_buckets)``.
        default_value: the id of out-of-range values, or `None` to keep them
            (negative ones are then ignored by embeddings). Defaults to `None`.

    Examples:
        >>> IdentityColumn("weekday", num_buckets=7, default_value=0).num_ids
        7
    """

    key: str
    num_buckets: int
    default_value: int | None = None

    def __post_init__(self) -> None:
        _check_key(self.key)
        _check_count("num_buckets", self.num_buckets, 1)
        if self.default_value is not None and not 0 <= self.default_value < self.num_buckets:
            raise ConfigError(
                f"`default_value` must be in [0, num_buckets={self.num_buckets}). "
                f"Received: default_value={self.default_value}"
            )

    @property
    def name(self) -> str:
        return self.key

    @property
    def num_ids(self) -> int:
        return self.num_buckets


@dataclass(frozen=True)
class CrossedColumn(CategoricalSpec):
    """Hashed cross of features: ``tf.feature_column.crossed_column``.

    Each key is a raw feature name (its strings or integers are crossed as they
    are) or a categorical spec (its ids are crossed); nested crosses are
    flattened into their keys. Multivalent inputs cross every combination.

    Args:
        keys: at least two feature names or categorical specs (not
            :class:`HashedColumn`: cross the raw feature name instead, as TF requires).
        num_bins: the number of buckets (``hash_bucket_size``).
        hash_key: the 64-bit hash key; `None` or `0` mean TF's default. Defaults to `None`.

    Examples:
        >>> CrossedColumn(("a", "b"), num_bins=100).name
        'a_X_b'
    """

    keys: tuple[str | CategoricalSpec, ...]
    num_bins: int
    hash_key: int | None = None

    def __post_init__(self) -> None:
        keys = _as_tuple(self.keys)
        if len(keys) < 2:
            raise ConfigError(
                f"`keys` of CrossedColumn must hold at least 2 entries. Received: keys={keys!r}"
            )
        for k in keys:
            if isinstance(k, HashedColumn):
                raise ConfigError(
                    "A HashedColumn cannot be crossed (hashing before crossing adds "
                    f"collisions); cross the raw feature name {k.key!r} instead."
                )
            if not isinstance(k, str | CategoricalSpec) or isinstance(k, WeightedColumn):
                raise ConfigError(
                    "`keys` of CrossedColumn must be feature names or categorical specs. "
                    f"Received: {k!r}"
                )
        object.__setattr__(self, "keys", keys)
        _check_count("num_bins", self.num_bins, 1)
        if self.hash_key is not None and not -(2**63) <= self.hash_key < 2**63:
            raise ConfigError(
                "`hash_key` must fit in a signed 64-bit integer. "
                f"Received: hash_key={self.hash_key}"
            )

    @property
    def name(self) -> str:
        return "_X_".join(sorted(k if isinstance(k, str) else k.name for k in self.leaf_keys()))

    @property
    def is_resolved(self) -> bool:
        return all(isinstance(k, str) or k.is_resolved for k in self.keys)

    @property
    def num_ids(self) -> int:
        return self.num_bins

    def leaf_keys(self) -> tuple[str | CategoricalSpec, ...]:
        """The keys with nested crosses flattened, in TF's order."""
        leaves: list[str | CategoricalSpec] = []
        for k in self.keys:
            if isinstance(k, CrossedColumn):
                leaves.extend(k.leaf_keys())
            else:
                leaves.append(k)
        return tuple(leaves)

    def resolve(self, artifacts: Artifacts) -> CrossedColumn:
        keys = tuple(k if isinstance(k, str) else k.resolve(artifacts) for k in self.keys)
        return dataclasses.replace(self, keys=keys)  # type: ignore[arg-type]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["keys"] = [k if isinstance(k, str) else k.to_dict() for k in self.keys]
        return config


class _WrapsCategorical:
    """Resolution for the columns that wrap one categorical column.

    Weighted, embedding and indicator columns are resolved exactly when the
    column they wrap is, and resolving one resolves that column.
    """

    categorical_column: CategoricalSpec

    @property
    def is_resolved(self) -> bool:
        return self.categorical_column.is_resolved

    def resolve(self, artifacts: Artifacts) -> Self:
        return dataclasses.replace(
            self,  # type: ignore[type-var]
            categorical_column=self.categorical_column.resolve(artifacts),
        )


@dataclass(frozen=True)
class WeightedColumn(_WrapsCategorical, CategoricalSpec):
    """Ids with a weight per value: ``weighted_categorical_column``.

    Args:
        categorical_column: the ids.
        weight_feature_key: the float feature holding one weight per id value.

    Examples:
        >>> WeightedColumn(IdentityColumn("tag", 10), "tag_weight").name
        'tag_weighted_by_tag_weight'
    """

    categorical_column: CategoricalSpec
    weight_feature_key: str

    def __post_init__(self) -> None:
        _check_categorical(self.categorical_column, "WeightedColumn")
        _check_key(self.weight_feature_key)

    @property
    def name(self) -> str:
        return f"{self.categorical_column.name}_weighted_by_{self.weight_feature_key}"

    @property
    def num_ids(self) -> int:
        return self.categorical_column.num_ids

    def get_config(self) -> dict[str, Any]:
        return {
            "categorical_column": self.categorical_column.to_dict(),
            "weight_feature_key": self.weight_feature_key,
        }


# -- dense views of categorical columns --------------------------------------------------------


@dataclass(frozen=True)
class EmbeddingColumn(_WrapsCategorical, ColumnSpec):
    """A trainable embedding of a categorical column: ``embedding_column``.

    Args:
        categorical_column: the ids to embed.
        dimension: the embedding size.
        combiner: how a row's embeddings are reduced: ``"mean"``, ``"sum"`` or
            ``"sqrtn"`` (weighted by the weights of a :class:`WeightedColumn`).
            Defaults to `"mean"`.
        initializer: a Keras initializer name or config. Defaults to `None`
            (TF's default: truncated normal with stddev ``1/sqrt(dimension)``).
        trainable: whether the table is trained. Defaults to `True`.
        max_norm: clip each embedding to this L2 norm. Defaults to `None`.
        shared_embedding_name: the name of a table shared with other embedding
            columns (``tf.feature_column.shared_embeddings``): every column with
            this name looks its ids up in one table, so they must agree on
            ``dimension``, ``num_ids``, ``initializer`` and ``trainable``. Such a
            column is named ``<categorical name>_shared_embedding``, as in TF.
            Defaults to `None` (a table of its own).

    Examples:
        >>> EmbeddingColumn(HashedColumn("city", 100), dimension=8).name
        'city_embedding'
        >>> EmbeddingColumn(HashedColumn("city", 100), 8, shared_embedding_name="geo").name
        'city_shared_embedding'
    """

    categorical_column: CategoricalSpec
    dimension: int
    combiner: str = "mean"
    initializer: str | dict[str, Any] | None = None
    trainable: bool = True
    max_norm: float | None = None
    shared_embedding_name: str | None = None

    def __post_init__(self) -> None:
        _check_categorical(self.categorical_column, "EmbeddingColumn")
        _check_count("dimension", self.dimension, 1)
        if self.combiner not in _COMBINERS:
            raise ConfigError(
                "Unknown value for `combiner` argument of EmbeddingColumn. Allowed values are: "
                f"{_COMBINERS}. Received: combiner={self.combiner!r}"
            )
        if self.max_norm is not None and self.max_norm <= 0:
            raise ConfigError(f"`max_norm` must be > 0. Received: max_norm={self.max_norm}")
        if self.shared_embedding_name is not None:
            _check_key(self.shared_embedding_name)

    @property
    def name(self) -> str:
        if self.shared_embedding_name is not None:
            return f"{self.categorical_column.name}_shared_embedding"
        return f"{self.categorical_column.name}_embedding"

    @property
    def output_size(self) -> int:
        """Width of this column in the dense output."""
        return self.dimension

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["categorical_column"] = self.categorical_column.to_dict()
        if config["shared_embedding_name"] is None:
            del config["shared_embedding_name"]  # the configs of unshared tables stay as they were
        return config


@dataclass(frozen=True)
class IndicatorColumn(_WrapsCategorical, ColumnSpec):
    """One-hot / multi-hot / count encoding of a categorical column: ``indicator_column``.

    ``tf.feature_column.indicator_column`` counts repeated ids (``"count"``, the
    default here); ``"multi_hot"`` caps at 1; ``"one_hot"`` expects one id per row.
    Negative ids contribute nothing.

    Args:
        categorical_column: the ids to encode.
        output_mode: ``"one_hot"``, ``"multi_hot"`` or ``"count"``. Defaults to `"count"`.

    Examples:
        >>> IndicatorColumn(IdentityColumn("weekday", 7)).output_size
        7
    """

    categorical_column: CategoricalSpec
    output_mode: str = "count"

    def __post_init__(self) -> None:
        _check_categorical(self.categorical_column, "IndicatorColumn")
        if self.output_mode not in _OUTPUT_MODES:
            raise ConfigError(
                "Unknown value for `output_mode` argument of IndicatorColumn. Allowed values "
                f"are: {_OUTPUT_MODES}. Received: output_mode={self.output_mode!r}"
            )

    @property
    def name(self) -> str:
        return f"{self.categorical_column.name}_indicator"

    @property
    def output_size(self) -> int:
        """Width of this column in the dense output."""
        return self.categorical_column.num_ids

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["categorical_column"] = self.categorical_column.to_dict()
        return config


# -- collections ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSpecs:
    """An ordered set of column specs with a JSON form.

    Args:
        columns: the specs; names must be unique.

    Raises:
        ConfigError: for duplicate names.

    Examples:
        >>> specs = ColumnSpecs((NumericColumn("x"), HashedColumn("c", num_bins=4)))
        >>> ColumnSpecs.from_json(specs.to_json()) == specs
        True
        >>> specs.names
        ('x', 'c')
    """

    columns: tuple[ColumnSpec, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        cols = _as_tuple(self.columns)
        for c in cols:
            if not isinstance(c, ColumnSpec):
                raise ConfigError(f"`columns` must hold column specs. Received: {c!r}")
        names = [c.name for c in cols]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise ConfigError(f"Column names must be unique. Received duplicates: {dups}")
        _check_shared_tables(cols)
        object.__setattr__(self, "columns", cols)

    def __iter__(self) -> Iterator[ColumnSpec]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def __getitem__(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"No column named {name!r} (select from {list(self.names)})")

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(c.name for c in self.columns)

    @property
    def is_resolved(self) -> bool:
        """Whether every spec is resolved."""
        return all(c.is_resolved for c in self.columns)

    def resolve(self, artifacts: Artifacts) -> ColumnSpecs:
        """Returns a copy with every missing analyzer result filled from ``artifacts``."""
        return ColumnSpecs(tuple(c.resolve(artifacts) for c in self.columns))

    def analysis_requests(self) -> list[dict[str, Any]]:
        """What an analyzer must compute to resolve these specs.

        Returns:
            Sorted, distinct requests such as ``{"analyzer": "vocabulary", "key": "c",
            "top_k": None, "min_frequency": 1}``, ``{"analyzer": "quantiles", "key": "x",
            "num_bins": 10}`` or ``{"analyzer": "moments", "key": "x"}``.

        Examples:
            >>> ColumnSpecs((VocabularyColumn("c", top_k=5),)).analysis_requests()
            [{'analyzer': 'vocabulary', 'key': 'c', 'top_k': 5, 'min_frequency': 1}]
        """
        found: dict[str, dict[str, Any]] = {}
        for spec in walk_columns(self.columns):
            req: dict[str, Any] | None = None
            if isinstance(spec, VocabularyColumn) and spec.vocabulary is None:
                req = {
                    "analyzer": "vocabulary",
                    "key": spec.key,
                    "top_k": spec.top_k,
                    "min_frequency": spec.min_frequency,
                }
            elif isinstance(spec, BucketizedColumn) and spec.bin_boundaries is None:
                req = {"analyzer": "quantiles", "key": spec.source.key, "num_bins": spec.num_bins}
            elif (
                isinstance(spec, NumericColumn)
                and spec.normalizer is not None
                and not spec.normalizer.is_resolved
            ):
                req = {"analyzer": "moments", "key": spec.key}
            if req is not None:
                found[json.dumps(req, sort_keys=True)] = req
        return [found[k] for k in sorted(found)]

    def get_config(self) -> dict[str, Any]:
        """Returns the JSON-able form, with ``format_version`` and ``featurepipe_version``."""
        return {
            "format_version": FORMAT_VERSION,
            "featurepipe_version": __version__,
            "columns": [c.to_dict() for c in self.columns],
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ColumnSpecs:
        """Builds specs from :meth:`get_config`'s output.

        Each column may also be written in the compact spelling, one flat object
        (``{"key": "cut", "type": "vocabulary", "as": "indicator"}``; see
        :mod:`featurepipe.columns._compact`), mixed freely with the full form.

        Examples:
            >>> specs = ColumnSpecs.from_config({"format_version": 1, "columns": [
            ...     {"key": "cut", "type": "hashed", "num_bins": 8, "as": "indicator"},
            ...     {"key": "carat", "type": "numeric", "why": "a number"}]})
            >>> specs.names
            ('cut_indicator', 'carat')

        Raises:
            ConfigError: for a missing or newer ``format_version`` or a bad column.
        """
        version = config.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ConfigError(
                "Column specs need an integer `format_version`. "
                f"Received: format_version={version!r}"
            )
        if version > FORMAT_VERSION:
            raise ConfigError(
                f"These column specs have format_version={version}, newer than this featurepipe "
                f"({__version__}) reads ({FORMAT_VERSION}); upgrade featurepipe."
            )
        columns = config.get("columns")
        if not isinstance(columns, list):
            raise ConfigError(f"`columns` must be a list. Received: columns={columns!r}")
        return cls(tuple(_column(c) for c in columns))

    def to_json(self, *, indent: int | None = 2) -> str:
        """Returns the specs as a JSON document."""
        return json.dumps(self.get_config(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ColumnSpecs:
        """Parses :meth:`to_json`'s output.

        Raises:
            ConfigError: if ``text`` is not valid JSON or not valid specs.
        """
        try:
            config = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"Column specs are not valid JSON: {e}") from e
        if not isinstance(config, dict):
            raise ConfigError(
                f"Column specs must be a JSON object. Received: {type(config).__name__}"
            )
        return cls.from_config(config)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes :meth:`to_json` to ``path`` (atomically: temporary file, then rename)."""
        write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ColumnSpecs:
        """Reads specs written by :meth:`save`.

        Raises:
            ConfigError: if the file cannot be read or is not valid specs.
        """
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ConfigError(f"Cannot read column specs: {e}") from e
        return cls.from_json(text)


# -- helpers -------------------------------------------------------------------------------


def _check_shared_tables(columns: Sequence[ColumnSpec]) -> None:
    """Embedding columns that share a table agree on everything the table is made of."""
    first: dict[str, EmbeddingColumn] = {}
    for spec in columns:
        if not isinstance(spec, EmbeddingColumn) or spec.shared_embedding_name is None:
            continue
        other = first.setdefault(spec.shared_embedding_name, spec)
        if other is spec:
            continue
        for what in ("dimension", "initializer", "trainable"):
            if getattr(spec, what) != getattr(other, what):
                raise ConfigError(
                    f"Embedding columns {other.name!r} and {spec.name!r} share the table "
                    f"{spec.shared_embedding_name!r} but differ in `{what}` "
                    f"({getattr(other, what)!r} vs {getattr(spec, what)!r}); give them the "
                    "same value or different `shared_embedding_name`s."
                )
        a, b = other.categorical_column, spec.categorical_column
        try:
            sizes = (a.num_ids, b.num_ids) if a.is_resolved and b.is_resolved else (0, 0)
        except ConfigError:  # a vocabulary file that cannot be read here: checked where used
            sizes = (0, 0)
        if sizes[0] != sizes[1]:
            raise ConfigError(
                f"Embedding columns {other.name!r} and {spec.name!r} share the table "
                f"{spec.shared_embedding_name!r} but their categorical columns have "
                f"{sizes[0]} and {sizes[1]} ids; a shared table needs the same number "
                "(tf.feature_column.shared_embeddings requires it too)."
            )


def _column(config: Any) -> ColumnSpec:
    """One column of a specs document, in the full or the compact spelling."""
    return column_from_compact(config) if is_compact(config) else column_from_config(config)


def walk_columns(specs: Sequence[ColumnSpec | str]) -> Iterator[ColumnSpec]:
    """Every spec and nested spec, depth first."""
    for spec in specs:
        if isinstance(spec, str):
            continue
        yield spec
        if isinstance(spec, BucketizedColumn):
            yield spec.source
        elif isinstance(spec, CrossedColumn):
            yield from walk_columns(spec.keys)
        elif isinstance(spec, WeightedColumn | EmbeddingColumn | IndicatorColumn):
            yield from walk_columns((spec.categorical_column,))
