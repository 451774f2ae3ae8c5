"""featurepipe.convert._arrow: Parquet converted column by column must equal the row-by-row path."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from featurepipe.convert import _arrow as arrowbatch  # noqa: E402
from featurepipe.convert._arrow import ArrowBatch, convert_arrow, iter_arrow_batches  # noqa: E402
from featurepipe.convert._encode import ConvertOptions, convert_batch  # noqa: E402
from featurepipe.convert._sources import ReadOptions, iter_parquet_batches  # noqa: E402
from featurepipe.convert._units import read_units  # noqa: E402
from featurepipe.example._schema import FeatureSchema, Schema  # noqa: E402

_TYPES: dict[str, tuple[Any, Any]] = {
    "int32": (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    "int64": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "uint8": (pa.uint8(), st.integers(0, 255)),
    "uint64": (pa.uint64(), st.integers(0, 2**64 - 1)),
    "float32": (pa.float32(), st.floats(width=32)),
    "float64": (pa.float64(), st.floats()),
    "string": (pa.string(), st.sampled_from(["", "NA", "x", "é", "12", "1.5"])),
    "large_string": (pa.large_string(), st.sampled_from(["", "a", "東京"])),
    "binary": (pa.binary(), st.binary(max_size=4)),
    "bool": (pa.bool_(), st.booleans()),
    "list_int": (pa.list_(pa.int64()), st.lists(st.integers(-5, 5), max_size=3)),
    "list_float": (pa.list_(pa.float32()), st.lists(st.floats(width=32), max_size=3)),
    "list_str": (pa.list_(pa.string()), st.lists(st.sampled_from(["a", ""]), max_size=3)),
}


_FITS = {
    "int32": ["int64", "float"], "int64": ["int64", "float"], "uint8": ["int64", "float"],
    "float32": ["float"], "float64": ["float"], "list_int": ["int64", "float"],
    "list_float": ["float"],
}  # fmt: skip


@st.composite
def _tables(draw: Any) -> tuple[Any, Schema]:
    n = draw(st.integers(0, 8))
    names = draw(st.lists(st.sampled_from(sorted(_TYPES)), min_size=1, max_size=3, unique=True))
    arrays, feats = {}, []
    for name in names:
        typ, values = _TYPES[name]
        cells = draw(st.lists(st.one_of(values, values, st.none()), min_size=n, max_size=n))
        if name.startswith("list") and n and draw(st.integers(0, 4)) == 0:
            cells[0] = [None]  # a null inside a list
        arrays[name] = pa.array(cells, typ)
        # Mostly a kind that fits the type (the columnar path), sometimes any (the fallback).
        fits = _FITS.get(name, ["bytes"])
        kind = draw(st.sampled_from(fits * 8 + ["int64", "float", "bytes"]))
        shapes = [None, None, (2,)] if name.startswith("list") else [(), (), (1,), None]
        shape = draw(st.sampled_from([*shapes, (), (1,), (2,), None]))
        default = None
        if shape in ((), (1,)) and draw(st.booleans()):
            default = {"int64": 7, "float": 0.5, "bytes": "d"}[kind]
        feats.append(
            FeatureSchema(
                name, kind, shape=shape, required=draw(st.integers(0, 3)) == 0, default=default,
                missing_values=draw(st.sampled_from([(), ("NA",)])),
            )
        )  # fmt: skip
    if draw(st.booleans()):  # a feature the file does not have
        feats.append(FeatureSchema("absent", "int64", shape=(), required=draw(st.integers(0, 3)) == 0))
    return pa.record_batch(arrays), Schema(tuple(feats))


def _outcome(res: Any) -> tuple[Any, ...]:
    return res.records, res.positions, [d.to_json() for d in res.dead_letters]  # NaN-safe


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tables(), st.sampled_from([("",), ("", "x")]))
def test_generated_tables_convert_identically(table: tuple[Any, Schema], missing: Any) -> None:
    rb, schema = table
    batch = ArrowBatch("t.parquet", 10, rb)
    opts = ConvertOptions(missing_values=missing)
    want = _outcome(convert_batch(batch.to_row_batch(), schema, opts))
    assert _outcome(convert_arrow(batch, schema, opts)) == want


def _criteo(tmp_path: pathlib.Path) -> tuple[str, Schema]:
    n = 500
    table = pa.table(
        {
            "label": pa.array([i % 2 for i in range(n)], pa.int64()),
            "I1": pa.array([None if i % 7 == 0 else i * 1000 for i in range(n)], pa.int32()),
            "F": pa.array([i / 3 for i in range(n)], pa.float64()),
            "C1": pa.array([None if i % 5 == 0 else f"{i:08x}" for i in range(n)]),
            "C2": pa.array(["" if i % 3 == 0 else "v" for i in range(n)]),
            "tags": pa.array([[i, i + 1][: i % 3] for i in range(n)], pa.list_(pa.int64())),
        }
    )
    p = tmp_path / "c.parquet"
    pq.write_table(table, p, row_group_size=120)
    schema = Schema(
        (
            FeatureSchema("label", "int64", shape=()),
            FeatureSchema("I1", "int64", shape=(), required=False),
            FeatureSchema("F", "float", shape=()),
            FeatureSchema("C1", "bytes", shape=(), required=False),
            FeatureSchema("C2", "bytes", shape=(), required=False),
            FeatureSchema("tags", "int64", shape=None),
        )
    )
    return str(p), schema


def test_typical_file_takes_the_columnar_path_and_matches(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, schema = _criteo(tmp_path)
    opts = ReadOptions(batch_size=64)
    want = [r for b in iter_parquet_batches(path, opts) for r in convert_batch(b, schema).records]

    def no_fallback(*a: Any, **k: Any) -> Any:
        raise AssertionError("fell back to the row-by-row path")

    monkeypatch.setattr(arrowbatch, "convert_batch", no_fallback)
    units = list(read_units(path, opts))
    assert all(isinstance(u, ArrowBatch) for u in units)
    got = [r for u in units for r in convert_arrow(u, schema).records]
    assert got == want and len(got) == 500


def test_batches_and_errors_match_iter_parquet_batches(tmp_path: pathlib.Path) -> None:
    path, _ = _criteo(tmp_path)
    opts = ReadOptions(batch_size=100)
    a = [b.to_row_batch() for b in iter_arrow_batches(path, opts)]
    b = list(iter_parquet_batches(path, opts))
    assert [(x.positions, x.columns) for x in a] == [(y.positions, y.columns) for y in b]
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(Exception, match="Not a readable Parquet file") as e1:
        list(iter_arrow_batches(str(bad)))
    with pytest.raises(Exception, match="Not a readable Parquet file") as e2:
        list(iter_parquet_batches(str(bad)))
    assert str(e1.value) == str(e2.value)
