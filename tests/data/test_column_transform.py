"""featurepipe.data.ColumnTransform: the Loader's column computation with no files."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from featurepipe.columns import (
    HashedColumn,
    IdentityColumn,
    NumericColumn,
    WeightedColumn,
    native_columns_available,
)
from featurepipe.data import ColumnTransform, Loader, RaggedIds
from featurepipe.errors import ConfigError, DataError
from featurepipe.example import encode_example
from featurepipe.tfrecord import write_records

SPECS = [
    NumericColumn("x"),
    HashedColumn("c", 50),
    WeightedColumn(IdentityColumn("t", 10, default_value=0), "w"),
]


def _record(i: int, label: Any = None) -> bytes:
    k = i % 3
    return encode_example(
        {
            "id": i if label is None else label,
            "x": [float(i) / 2],
            "c": np.array([f"c{j}" for j in range(i % 4)], dtype=object),
            "t": np.array([(i + j) % 12 for j in range(k)], dtype=np.int64),
            "w": np.array([0.5 + j for j in range(k)], dtype=np.float32),
        }
    )


def _same(a: Any, b: Any) -> None:
    if isinstance(a, tuple) and not isinstance(a, RaggedIds):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, RaggedIds):
        _same(tuple(a), tuple(b))
    elif a is None:
        assert b is None
    else:
        assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("ids", ["padded", "offsets"])
@pytest.mark.parametrize("native", [None, False])
def test_equals_the_loader_without_files(tmp_path: Path, ids: str, native: bool | None) -> None:
    path = str(tmp_path / "d.tfrecord")
    records = [_record(i) for i in range(7)]
    write_records(path, records)
    loader = Loader(path, SPECS, batch_size=7, label_key="id", ids=ids, native=native,
                    uneven="drop")  # fmt: skip
    sniffed = ColumnTransform(SPECS, label_key="id", ids=ids, native=native)
    assert sniffed.label_kind is None
    given = ColumnTransform(SPECS, label_key="id", label_kind="int64", ids=ids, native=native)
    from_files = ColumnTransform(SPECS, label_key="id", ids=ids, native=native, files=[path])
    want = next(iter(loader))
    for transform in (sniffed, given, from_files, pickle.loads(pickle.dumps(sniffed))):
        _same(transform(records), want)
        assert transform.label_kind == "int64"
        assert transform.feature_names == loader.feature_names
        assert transform.native == loader.native
    _same(loader.transform_records(records), want)
    _same(loader.column_transform(records), want)
    no_label = ColumnTransform(SPECS, ids=ids, native=native)
    _same(no_label(records), want[0])


def test_label_kind_sniffed_from_the_first_batch() -> None:
    floats = [_record(i, label=[0.5 * i]) for i in range(3)]
    transform = ColumnTransform(SPECS, label_key="id")
    _, label = transform(floats)
    assert label.dtype == np.float32 and label.tolist() == [0.0, 0.5, 1.0]
    assert transform.label_kind == "float"
    with pytest.raises(ConfigError, match="No label 'nope'"):
        ColumnTransform(SPECS, label_key="nope")(floats)
    with pytest.raises(ConfigError, match="label_kind"):
        ColumnTransform(SPECS, label_key="id", label_kind="str")


def test_errors_name_where_the_record_comes_from() -> None:
    records = [_record(i) for i in range(4)]
    records[2] = b"not an example\xff\xff"
    transform = ColumnTransform(SPECS, label_key="id", label_kind="int64")
    with pytest.raises(DataError) as err:
        transform(records)
    assert err.value.record == 2 and err.value.path is None
    where = [("a.tfrecord", 10 + i, 100 * i) for i in range(4)]
    for given in (where, lambda row: where[row]):
        with pytest.raises(DataError) as err:
            transform(records, where=given)
        assert (err.value.path, err.value.record, err.value.offset) == ("a.tfrecord", 12, 200)
        assert err.value.reason == "not_an_example" and "a.tfrecord" in str(err.value)
    with pytest.raises(DataError) as err:  # unknown: the row of the batch
        transform(records, where=lambda row: None)
    assert err.value.record == 2 and err.value.path is None


def test_native_true_where_the_plan_cannot_run() -> None:
    if native_columns_available():
        assert ColumnTransform([NumericColumn("x")], native=True).native
    else:
        with pytest.raises(ConfigError, match="native=True"):
            ColumnTransform([NumericColumn("x")], native=True)
