"""Tests for featurepipe.convert._encode: parsing cells, the batch encoder, and raw schema inference."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurepipe.convert._encode import (
    ConvertOptions,
    EncodedColumn,
    convert_batch,
    encode_columns,
    parse_column,
)
from featurepipe.convert._sources import RowBatch, iter_csv_batches
from featurepipe.errors import ConfigError
from featurepipe.example._codec import decode_example, encode_example
from featurepipe.example._schema import FeatureSchema, Schema
from featurepipe.example.proto import example_pb2

# ---------------------------------------------------------------------------------------------
# The encoder against protobuf.


def _protobuf(num_rows: int, cols: list[EncodedColumn]) -> list[bytes]:
    out = []
    for i in range(num_rows):
        ex = example_pb2.Example()
        ex.features.SetInParent()
        for c in cols:
            if not c.present[i]:
                continue
            s = int(c.row_lengths[:i].sum())
            e = s + int(c.row_lengths[i])
            f = ex.features.feature[c.name]
            lst = getattr(
                f, {"int64": "int64_list", "float": "float_list", "bytes": "bytes_list"}[c.kind]
            )
            lst.SetInParent()
            vals = c.values[s:e]
            lst.value.extend(vals.tolist() if isinstance(vals, np.ndarray) else vals)
        out.append(ex.SerializeToString(deterministic=True))
    return out


def _random_columns(rng: random.Random, n: int) -> list[EncodedColumn]:
    cols: list[EncodedColumn] = []
    names = ["a", "ab", "b", "", "é", "C1", "C10", "x" * 200, "label"]
    rng.shuffle(names)
    for name in names[: rng.randint(0, 6)]:
        kind = rng.choice(["int64", "float", "bytes"])
        present = [rng.random() < 0.8 for _ in range(n)]
        lens = [rng.choice([0, 1, 1, 1, 2, 3, 150]) if p else 0 for p in present]
        total = sum(lens)
        values: Any
        if kind == "int64":
            pool = [0, 1, -1, 127, 128, 16383, 16384, 2**63 - 1, -(2**63)]
            values = np.array(
                [rng.choice([*pool, rng.randint(-(2**62), 2**62)]) for _ in range(total)],
                dtype=np.int64,
            )
        elif kind == "float":
            pool_f = [0.0, -0.0, math.inf, -math.inf, 1e-45, 3.4e38]
            values = np.array(
                [rng.choice([*pool_f, rng.uniform(-1e9, 1e9)]) for _ in range(total)],
                dtype=np.float32,
            )
        else:
            values = [rng.randbytes(rng.choice([0, 1, 8, 127, 128, 300])) for _ in range(total)]
        cols.append(
            EncodedColumn(name, kind, values, np.array(lens, dtype=np.int64), np.array(present))
        )
    return cols


def test_encode_columns_is_byte_identical_to_protobuf_deterministic() -> None:
    rng = random.Random(1234)
    for _ in range(150):
        n = rng.randint(0, 12)
        cols = _random_columns(rng, n)
        assert encode_columns(n, cols) == _protobuf(n, cols)


def test_encode_columns_uniform_block_fast_path_matches_protobuf() -> None:
    # Every row the same width: the whole batch is one 2-D block.
    n = 50
    cols = [
        EncodedColumn(
            "C1", "bytes", [b"%08x" % i for i in range(n)], np.ones(n, np.int64), np.ones(n, bool)
        ),
        EncodedColumn("I1", "int64", np.arange(n) % 100, np.ones(n, np.int64), np.ones(n, bool)),
        EncodedColumn(
            "f",
            "float",
            np.linspace(0, 1, 2 * n, dtype=np.float32),
            np.full(n, 2, np.int64),
            np.ones(n, bool),
        ),
    ]
    assert encode_columns(n, cols) == _protobuf(n, cols)


def test_encode_columns_key_order_matches_upb_and_encode_example() -> None:
    names = ["a", "ab", "", "b", "aa"]
    cols = [
        EncodedColumn(k, "int64", np.array([1]), np.array([1]), np.array([True])) for k in names
    ]
    got = encode_columns(1, cols)[0]
    assert got == _protobuf(1, cols)[0]
    assert got == encode_example({k: [1] for k in names})


def test_encode_columns_rejects_duplicates_and_bad_lengths() -> None:
    c = EncodedColumn("a", "int64", np.array([1]), np.array([1]), np.array([True]))
    with pytest.raises(ConfigError, match="Duplicate feature names"):
        encode_columns(1, [c, c])
    bad = EncodedColumn("a", "int64", np.array([1, 2]), np.array([1]), np.array([True]))
    with pytest.raises(ConfigError, match="do not match row_lengths"):
        encode_columns(1, [bad])


# ---------------------------------------------------------------------------------------------
# Parsing cells.


def _f(name: str = "v", kind: str = "int64", **kw: Any) -> FeatureSchema:
    return FeatureSchema(name, kind, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cells", "feature", "reason"),
    [
        (["1", ""], _f(shape=()), "SCHEMA_MISSING_COLUMN"),
        (["1", None], _f(shape=()), "SCHEMA_MISSING_COLUMN"),
        (["1", "2.5"], _f(shape=()), "UNEXPECTED_DATA_TYPE"),
        (["1", "9223372036854775808"], _f(shape=()), "INT_TYPE_BIG_INT"),
        (["1", "-9223372036854775809"], _f(shape=()), "INT_TYPE_SMALL_INT"),
        (["1", "abc"], _f(kind="float", shape=()), "UNEXPECTED_DATA_TYPE"),
        (["1|2", "1"], _f(shape=(2,), value_separator="|"), "FEATURE_TYPE_LOW_NUMBER_VALUES"),
        (["1|2", "1|2|3"], _f(shape=(2,), value_separator="|"), "FEATURE_TYPE_HIGH_NUMBER_VALUES"),
        ([[1, 2], [1, None]], _f(), "UNEXPECTED_DATA_TYPE"),
        ([[1, 2], [[1]]], _f(), "UNEXPECTED_DATA_TYPE"),
        (["ok", "\udcff"], _f(kind="bytes", shape=()), "ENUM_TYPE_INVALID_UTF8"),
        ([1, 2.5], _f(shape=()), "UNEXPECTED_DATA_TYPE"),
    ],
)
def test_parse_column_reason_codes(cells: list[Any], feature: FeatureSchema, reason: str) -> None:
    for text in (False, True) if all(isinstance(c, str | None) for c in cells) else (False,):
        col, bad = parse_column(cells, feature, text=text)
        assert list(bad) == [1]
        assert bad[1][0] == reason
        assert col.row_lengths[1] == 0


def test_parse_column_defaults_optional_and_missing_values() -> None:
    opts = ConvertOptions(missing_values=("", "NA"))
    col, bad = parse_column(
        ["3", "NA", ""], _f(shape=(), required=False, default=7), opts, text=True
    )
    assert bad == {}
    assert col.values.tolist() == [3, 7, 7]
    assert col.present.tolist() == [True, True, True]
    col, bad = parse_column(
        ["3", "NA", "null"], _f(shape=(), required=False, missing_values=("null",)), opts, text=True
    )
    assert bad == {}
    assert col.present.tolist() == [True, False, False]
    assert col.row_lengths.tolist() == [1, 0, 0]
    col, _ = parse_column(["a", None], _f(kind="bytes", shape=(), required=False, default="z"))
    assert col.values == [b"a", b"z"]


def test_parse_column_json_values() -> None:
    col, bad = parse_column([[1, 2], [], True, None], _f(required=False))
    assert bad == {}
    assert col.values.tolist() == [1, 2, 1]
    assert col.row_lengths.tolist() == [2, 0, 1, 0]
    assert col.present.tolist() == [True, True, True, False]
    col, _ = parse_column([1, 2.5, "3"], _f(kind="float", shape=()))
    assert col.values.tolist() == [1.0, 2.5, 3.0]
    col, _ = parse_column([1, 2.5, "x", True], _f(kind="bytes", shape=()))
    assert col.values == [b"1", b"2.5", b"x", b"true"]


def test_convert_batch_accounts_for_every_row() -> None:
    schema = Schema(
        (_f("a", shape=()), _f("b", "bytes", shape=()), _f("c", "float", required=False))
    )
    batch = RowBatch(
        "t.csv",
        "csv",
        "line",
        [2, 3, 4, 5],
        {"a": ["1", "x", "3", ""], "b": ["p", "q", "r", "s"], "c": ["0.5", "1", "", "2"]},
        [],
    )
    r = convert_batch(batch, schema)
    assert r.num_read == 4
    assert r.positions == [2, 4]
    assert [(d.position, d.column, d.reason) for d in r.dead_letters] == [
        (3, "a", "UNEXPECTED_DATA_TYPE"),
        (5, "a", "SCHEMA_MISSING_COLUMN"),
    ]
    assert r.dead_letters[0].raw == {"a": "x", "b": "q", "c": "1"}
    ex = decode_example(r.records[1])
    assert ex["a"].values.tolist() == [3]
    assert ex["b"].values.tolist() == [b"r"]
    assert "c" not in ex  # optional and missing: absent, not an empty list


# ---------------------------------------------------------------------------------------------
# Property: every input row ends in exactly one of output or dead letter.

_GOOD = {
    "int64": st.integers(-(2**63), 2**63 - 1).map(str),
    "float": st.floats(allow_nan=False, width=32).map(repr),
    "bytes": st.text(st.characters(blacklist_categories=("Cs",)), max_size=5),
}
_BAD = {
    "int64": st.sampled_from(["x", "1.5", "9223372036854775808", ""]),
    "float": st.sampled_from(["x", "1,2", "--1", ""]),
    "bytes": st.just(""),
}


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]], set[int]]:
    kinds = draw(st.lists(st.sampled_from(["int64", "float", "bytes"]), min_size=1, max_size=4))
    n = draw(st.integers(0, 30))
    rows, bad = [], set()
    for i in range(n):
        row = [str(i)]
        for k in kinds:
            if draw(st.integers(0, 9)) == 0:
                row.append(draw(_BAD[k]))
                if k != "bytes":  # an empty bytes cell is "missing", and bytes are optional here
                    bad.add(i)
            else:
                row.append(draw(_GOOD[k]))
        rows.append(row)
    return kinds, rows, bad


@settings(max_examples=60, deadline=None)
@given(_tables())
def test_property_every_row_is_written_or_dead_lettered(
    tmp_path_factory: pytest.TempPathFactory, table: tuple[list[str], list[list[str]], set[int]]
) -> None:
    import csv

    kinds, rows, bad = table
    path = tmp_path_factory.mktemp("prop") / "t.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", *[f"c{j}" for j in range(len(kinds))]])
        w.writerows(rows)
    schema = Schema(
        (
            _f("id", shape=()),
            *(_f(f"c{j}", k, shape=(), required=k != "bytes") for j, k in enumerate(kinds)),
        )
    )
    written: list[int] = []
    dead: list[int] = []
    for batch in iter_csv_batches(str(path)):
        r = convert_batch(batch, schema)
        written += [int(decode_example(x)["id"].values[0]) for x in r.records]
        dead += [int(d.raw["id"]) for d in r.dead_letters]
    assert sorted(written + dead) == list(range(len(rows)))
    assert sorted(dead) == sorted(bad)


def test_bytes_default_fills_a_batch_where_every_cell_is_missing() -> None:
    # Regression: the packed-bytes fast path had no values at all to merge the default into.
    s = Schema((FeatureSchema("b", "bytes", shape=(), required=False, default="d"),))
    r = convert_batch(RowBatch("t.csv", "csv", "line", [2, 3], {"b": ["", ""]}, []), s)
    assert [decode_example(x)["b"].values.tolist() for x in r.records] == [[b"d"], [b"d"]]


_OBJECTS = st.one_of(
    st.none(),
    st.integers(-(2**64), 2**64),
    st.just(10**400),
    st.floats(),
    st.booleans(),
    st.sampled_from(["", "NA", "x", "5", "é", "\ud800"]),
    st.lists(st.integers(0, 3), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    cells=st.lists(_OBJECTS, max_size=8),
    kind=st.sampled_from(["int64", "float", "bytes"]),
    shape=st.sampled_from([(), (1,), None]),
    required=st.booleans(),
    missing=st.sampled_from([("",), ("", "NA"), ()]),
)
def test_json_values_fast_path_equals_the_general_path(
    cells: list[Any], kind: str, shape: Any, required: bool, missing: tuple[str, ...]
) -> None:
    import featurepipe.convert._encode as conv

    schema = Schema((FeatureSchema("v", kind, shape=shape, required=required),))
    batch = RowBatch("t.jsonl", "jsonl", "line", list(range(1, len(cells) + 1)), {"v": cells}, [])
    opts = ConvertOptions(missing_values=missing)
    fast = convert_batch(batch, schema, opts)
    original = conv._parse_scalar_objects
    try:
        conv._parse_scalar_objects = lambda *a: None  # type: ignore[assignment]
        slow = convert_batch(batch, schema, opts)
    finally:
        conv._parse_scalar_objects = original
    assert fast.records == slow.records
    assert [d.to_json() for d in fast.dead_letters] == [d.to_json() for d in slow.dead_letters]
