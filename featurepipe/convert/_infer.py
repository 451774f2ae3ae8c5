"""Infer a :class:`~featurepipe.example.Schema` from every raw row of the inputs.

:class:`RawSchemaInferrer` is a mergeable accumulator (a Beam ``CombineFn``
wraps it in :mod:`featurepipe.beam._convert`) that sees every row and picks
each column's kind: int64 if every value is an integer in the int64 range,
float if every value is a number, else bytes. The compiled CSV path counts
chunks with the same rule (:func:`featurepipe.convert.add_chunk`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from featurepipe.convert._encode import _INT64_MAX, _INT64_MIN, ConvertOptions
from featurepipe.convert._rows import RowBatch
from featurepipe.example import FeatureSchema, Kind, Schema

__all__ = ["RawSchemaInferrer"]


@dataclasses.dataclass
class _ColumnStats:
    present: int = 0  # rows with a non-missing value
    ints: int = 0  # values that parse as int64
    floats: int = 0  # values that parse as a number but not an int
    others: int = 0  # values that are neither
    lists: int = 0  # rows whose cell is a list (or split on a separator)
    min_len: int = -1
    max_len: int = 0

    def merge(self, o: _ColumnStats) -> None:
        self.present += o.present
        self.ints += o.ints
        self.floats += o.floats
        self.others += o.others
        self.lists += o.lists
        if o.min_len >= 0:
            self.min_len = o.min_len if self.min_len < 0 else min(self.min_len, o.min_len)
        self.max_len = max(self.max_len, o.max_len)


class RawSchemaInferrer:
    """A mergeable accumulator that infers a :class:`Schema` from every raw row.

    A column is ``int64`` when every value is an integer in the int64 range,
    ``float`` when every value is a number (an int column with one float
    becomes float), and ``bytes`` otherwise. It is ``required`` when no row
    misses it; list-valued (``shape=None``) when any cell is a list (JSON
    arrays, Parquet lists, or ``list_columns`` split on the separator), else
    a scalar (``shape=()``).

    Args:
        options: missing values and list columns. Defaults to `ConvertOptions()`.

    Examples:
    >>> inf = RawSchemaInferrer()
    >>> inf.add_batch(RowBatch("t.csv", "csv", "line", [2, 3],
    ...                        {"a": ["1", "2.5"], "b": ["1", ""], "c": ["x", "1"]}, []))
    >>> [(f.name, f.kind, f.required) for f in inf.extract()]
    [('a', 'float', True), ('b', 'int64', False), ('c', 'bytes', True)]
    """

    def __init__(self, options: ConvertOptions | None = None) -> None:
        self.options = options or ConvertOptions()
        self.rows = 0
        self.columns: dict[str, _ColumnStats] = {}

    def add_batch(self, batch: RowBatch) -> None:
        """Counts every parsed row of ``batch`` (dead-lettered rows are not counted)."""
        self.rows += batch.num_rows
        missing = frozenset(self.options.missing_values)
        lists = frozenset(self.options.list_columns)
        for name, cells in batch.columns.items():
            st = self.columns.setdefault(name, _ColumnStats())
            sep = self.options.value_separator if name in lists else None
            _count_cells(st, cells, missing, sep)

    def merge(self, other: RawSchemaInferrer) -> RawSchemaInferrer:
        """Adds ``other``'s counts into this one; returns ``self``."""
        self.rows += other.rows
        for name, st in other.columns.items():
            self.columns.setdefault(name, _ColumnStats()).merge(st)
        return self

    def extract(self) -> Schema:
        """Returns the inferred schema (columns in first-seen order)."""
        feats = []
        lists = frozenset(self.options.list_columns)
        for name, st in self.columns.items():
            kind: Kind
            if st.others or (st.present == 0):
                kind = "bytes"
            elif st.floats:
                kind = "float"
            else:
                kind = "int64"
            is_list = st.lists > 0 or name in lists
            feats.append(
                FeatureSchema(
                    name,
                    kind,
                    shape=None if is_list else (),
                    required=st.present == self.rows and self.rows > 0,
                    value_separator=self.options.value_separator if name in lists else None,
                )
            )
        return Schema(tuple(feats))


def _count_cells(
    st: _ColumnStats, cells: Iterable[Any], missing: frozenset[str], sep: str | None
) -> None:
    strs: list[str] = []
    for c in cells:
        if c is None or (type(c) is str and c in missing):
            continue
        st.present += 1
        if type(c) is str:
            if sep is None:
                strs.append(c)
                _bump_len(st, 1)
            else:
                parts = c.split(sep)
                st.lists += 1
                _bump_len(st, len(parts))
                strs.extend(parts)
        elif isinstance(c, list | tuple):
            st.lists += 1
            _bump_len(st, len(c))
            for v in c:
                _classify(st, v)
        else:
            _bump_len(st, 1)
            _classify(st, c)
    if not strs or st.others:  # already bytes: no need to look at the values
        return
    if st.floats:
        try:  # already float: stays float if every value is a number
            list(map(float, strs))
        except ValueError:
            st.others += 1
        else:
            st.floats += len(strs)
        return
    try:  # the common case: every text value is an int64
        if all(_INT64_MIN <= v <= _INT64_MAX for v in map(int, strs)):
            st.ints += len(strs)
            return
    except ValueError:
        pass
    for s in strs:
        _classify(st, s)
        if st.others:
            return


def _bump_len(st: _ColumnStats, k: int) -> None:
    st.min_len = k if st.min_len < 0 else min(st.min_len, k)
    st.max_len = max(st.max_len, k)


def _classify(st: _ColumnStats, v: Any) -> None:
    t = type(v)
    if t is bool:
        st.ints += 1
    elif t is int:
        if _INT64_MIN <= v <= _INT64_MAX:
            st.ints += 1
        else:  # a number outside int64: the column can still be float
            st.floats += 1
    elif t is float:
        st.floats += 1
    elif t is str:
        try:
            iv = int(v)
        except ValueError:
            try:
                float(v)
            except ValueError:
                st.others += 1
            else:
                st.floats += 1
        else:
            if _INT64_MIN <= iv <= _INT64_MAX:
                st.ints += 1
            else:  # as above; and float() reads it, so the floats branch agrees
                st.floats += 1
    else:
        st.others += 1
