"""``ColumnTransform``: serialized records -> the columns' model inputs, with no files.

The column computation of :class:`~featurepipe.data.Loader` on its own (the
loader uses it for its batches): for records read elsewhere (grain, a torch
dataset, a service), with the features' decoding from a schema or the columns
and the label's kind from the schema, ``label_kind``, the files, or the first
batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, cast

from featurepipe.columns import ColumnSpec, ColumnSpecs, PlanFeature
from featurepipe.data._spec import _kinds, features_from_columns, features_from_schema
from featurepipe.data._spec import label_kind as _label_kind
from featurepipe.data._transform import ColumnComputer, Locations, locate
from featurepipe.errors import ConfigError, DataError
from featurepipe.example import Schema

__all__ = ["ColumnTransform", "load_columns"]

_KINDS = ("int64", "float", "bytes")
# The label's kind assumed until the first batch tells it: only to say whether the
# compiled plan runs the columns (it runs a fixed-shape label of any kind).
_PROVISIONAL_KIND = "int64"


def load_columns(columns: Any) -> ColumnSpecs:
    """Resolved column specs from ``ColumnSpecs``, a list of specs or a columns JSON path.

    Raises:
        ConfigError: anything else, or specs that are not resolved.
    """
    if isinstance(columns, ColumnSpecs):
        specs = columns
    elif isinstance(columns, str | os.PathLike):
        specs = ColumnSpecs.load(columns)
    elif isinstance(columns, Sequence) and all(isinstance(c, ColumnSpec) for c in columns):
        specs = ColumnSpecs(tuple(columns))
    else:
        raise ConfigError(
            "`columns` must be ColumnSpecs, a list of column specs or the path of a columns "
            f"JSON file. Received: {type(columns).__name__}"
        )
    if not specs.is_resolved:
        raise ConfigError(
            "The column specs are not resolved: call `ColumnSpecs.resolve(artifacts)` first "
            "(or `featurepipe.keras.resolve_columns(columns, artifacts)`)."
        )
    return specs


class ColumnTransform:
    """Serialized ``tf.Example`` records -> their column outputs, as one batch; no files needed.

    The computation of :class:`~featurepipe.data.Loader`'s batches (the
    compiled :class:`~featurepipe.columns.ColumnPlan` when it can, else pure
    Python -- the same numbers; see the Loader for the arrays) on records read
    elsewhere. Picklable: the compiled plan is built again where it is used.

    Args:
        columns: resolved :class:`~featurepipe.columns.ColumnSpecs`, a list of
            specs, or the path of a columns JSON file.
        label_key: the label feature, or `None`. Defaults to `None`.
        schema: a :class:`~featurepipe.example.Schema` or its path: how each
            feature is decoded. `None`: from the columns. Defaults to `None`.
        label_kind: the label's kind (``"int64"``, ``"float"``, ``"bytes"``)
            when ``schema`` does not give it. Defaults to `None`: from ``files``,
            else from the first batch given.
        ids: ``"padded"`` or ``"offsets"``. Defaults to `"padded"`.
        native: `None`: the compiled plan when it supports the columns, else
            pure Python; `True`: require it; `False`: pure Python. Defaults to `None`.
        files: TFRecord files the records come from, for the label's kind
            (:func:`~featurepipe.data.label_kind`: the ``PREFIX.schema.json``
            beside them, else their first records). Defaults to `None`.

    Raises:
        ConfigError: bad arguments, unresolved columns, a label with a
            variable length, ``native=True`` where the compiled plan cannot run.

    Examples:
        >>> from featurepipe.columns import HashedColumn, NumericColumn
        >>> from featurepipe.example import encode_example
        >>> transform = ColumnTransform([NumericColumn("x"), HashedColumn("c", 10)],
        ...                             label_key="y")
        >>> records = [encode_example({"x": [float(i)], "c": ["a", "b"][i % 2:], "y": [i]})
        ...            for i in range(3)]
        >>> features, label = transform(records)
        >>> transform.feature_names, features["c"].tolist(), label.tolist()
        (['x', 'c'], [[9, 2], [2, -1], [9, 2]], [0, 1, 2])
        >>> transform([b"not an example"], where=[("data.tfrecord", 7, 512)])
        Traceback (most recent call last):
        ...
        featurepipe.errors.ExampleDecodeError: data.tfrecord, record 7, offset 512: ...
    """

    def __init__(
        self,
        columns: ColumnSpecs | Sequence[ColumnSpec] | str | os.PathLike[str],
        *,
        label_key: str | None = None,
        schema: Schema | str | os.PathLike[str] | None = None,
        label_kind: str | None = None,
        ids: str = "padded",
        native: bool | None = None,
        files: Sequence[str] | None = None,
    ) -> None:
        if ids not in ("padded", "offsets"):
            raise ConfigError(
                "Unknown value for `ids`. Allowed values are: ('padded', 'offsets'). "
                f"Received: ids={ids!r}"
            )
        if label_kind is not None and label_kind not in _KINDS:
            raise ConfigError(
                f"Unknown value for `label_kind`. Allowed values are: {_KINDS}. "
                f"Received: label_kind={label_kind!r}"
            )
        specs = load_columns(columns)
        if isinstance(schema, str | os.PathLike):
            schema = Schema.load(schema)
        features: dict[str, PlanFeature] = (
            features_from_schema(schema) if schema is not None else features_from_columns(specs)
        )
        self.label_key = label_key
        self.ids = ids
        self._sniff = False
        if label_key is not None and label_key not in features:
            if label_kind is None and files is not None:
                label_kind = _label_kind(list(files), label_key)
            if label_kind is None:
                self._sniff = True  # from the first batch
            features[label_key] = PlanFeature(label_kind or _PROVISIONAL_KIND, ())
        self.computer = ColumnComputer(specs, features, label_key=label_key, native=native, ids=ids)

    @property
    def feature_names(self) -> list[str]:
        """The keys of a batch's ``features``, in order."""
        return self.computer.keys

    @property
    def native(self) -> bool:
        """Whether batches are computed by the compiled plan (else pure Python)."""
        return self.computer.plan is not None

    @property
    def label_kind(self) -> str | None:
        """The label's kind, `None` without a label or before the first batch tells it."""
        if self.label_key is None or self._sniff:
            return None
        return self.computer.features[self.label_key].kind

    def __call__(self, records: Sequence[bytes], where: Locations | None = None) -> Any:
        """The column outputs of ``records``, as one batch.

        Args:
            records: serialized ``tf.Example`` records.
            where: where each record comes from, for error messages: a sequence
                of ``(path, record, byte offset)`` per record, or a function of
                the record's position giving it (or `None`: unknown). Defaults
                to `None` (an error names the record's position in ``records``).

        Returns:
            ``features``, or ``(features, label)`` with a ``label_key``.

        Raises:
            DataError: a record the columns cannot read, named by its file,
                record and byte offset when ``where`` tells them, else by its
                position in ``records``.
            ConfigError: the label's kind is to be sniffed and the records do
                not tell it.
        """
        records = list(records)
        try:
            if self._sniff:
                self._learn_label(records)
            features, label = self.computer.compute(records)
        except DataError as e:
            located = locate(e, where, len(records))
            if located is e:
                raise
            raise located from e
        return features if self.label_key is None else (features, label)

    def _learn_label(self, records: list[bytes]) -> None:
        key = cast(str, self.label_key)  # called only with a label key
        kinds = sorted({kind for _, kind in _kinds(records, key)})
        hint = (
            "pass `label_kind`, `schema` (the PREFIX.schema.json that `featurepipe convert` "
            "writes) or the `files` the records come from"
        )
        if not kinds:
            raise ConfigError(
                f"No label {key!r} in the first batch ({len(records)} records): its kind is "
                f"unknown. Check the name (label_key={key!r}), or {hint}."
            )
        if len(kinds) > 1:
            raise ConfigError(
                f"The label {key!r} holds more than one kind in the first batch ({kinds}): {hint}."
            )
        computer = self.computer
        if kinds[0] != computer.features[key].kind:
            features = dict(computer.features)
            features[key] = PlanFeature(kinds[0], ())
            self.computer = ColumnComputer(
                computer.specs,
                features,
                label_key=key,
                native=computer.native,
                ids=computer.ids,
                base_dir=computer.base_dir,
            )
        self._sniff = False
