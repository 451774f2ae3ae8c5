"""featurepipe.convert._csv: the compiled CSV path must give exactly what the pure-Python path gives.

Every test compares the two: ``iter_csv_batches`` + ``convert_batch`` (Python's
``csv`` module, the reference) against ``iter_csv_chunks`` + ``convert_chunk``
(the C state machine and converter, handing unsure rows back to Python), on
rows, line numbers, records (byte for byte) and dead letters.
"""

from __future__ import annotations

import csv
import gzip
import pathlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurepipe.convert import _csv as csvchunk
from featurepipe.convert._csv import (
    CsvChunk,
    add_chunk,
    convert_chunk,
    csv_plan,
    iter_csv_chunks,
)
from featurepipe.convert._encode import ConvertOptions, convert_batch
from featurepipe.convert._infer import RawSchemaInferrer
from featurepipe.convert._sources import ReadOptions, RowBatch, iter_csv_batches, plan_splits
from featurepipe.convert._units import as_row_batch, read_units
from featurepipe.errors import DataError
from featurepipe.example._codec import decode_example
from featurepipe.example._schema import FeatureSchema, Schema

pytestmark = pytest.mark.skipif(
    not csvchunk.native_csv(ReadOptions()), reason="featurepipe._speedups is not built"
)

SCHEMA = Schema(
    (
        FeatureSchema("a", "int64", shape=(), required=False),
        FeatureSchema("b", "float", shape=(), required=False, missing_values=("NA",)),
        FeatureSchema("c", "bytes", shape=()),
        FeatureSchema("d", "int64", shape=(), required=False, default=7),
        FeatureSchema("e", "bytes", shape=(1,), required=False, default="dflt"),
        FeatureSchema("g", "int64", shape=None, required=False, value_separator="|"),
        FeatureSchema("h", "float", shape=(2,), required=False, value_separator="::"),
        FeatureSchema("i", "bytes", shape=None, required=False, value_separator="|"),
        FeatureSchema("not_in_file", "float", shape=(), required=False),
    )
)
HEADER = "a,b,c,d,e,g,h,i\n"


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Tiny read blocks: records cross block ends, "\r" | "\n" splits included.
    monkeypatch.setattr(csvchunk, "_BLOCK", 7)
    limit = csv.field_size_limit()
    yield
    csv.field_size_limit(limit)


def _flat(batches: list[RowBatch]) -> tuple[list[int], dict[str, list[Any]], list[dict[str, Any]]]:
    positions: list[int] = []
    cols: dict[str, list[Any]] = {}
    dead: list[dict[str, Any]] = []
    for b in batches:
        positions += b.positions
        dead += [d.to_dict() for d in b.dead_letters]
        for k, v in b.columns.items():
            cols.setdefault(k, []).extend(v)
    return positions, {k: v for k, v in cols.items() if v}, dead


def _outcome(path: str, options: ReadOptions, schema: Schema, conv: ConvertOptions) -> Any:
    """(rows, conversion) by both paths; an exception counts as an outcome."""

    def read(fast: bool) -> Any:
        try:
            if fast:
                return _flat([c.to_row_batch() for c in iter_csv_chunks(path, options)])
            return _flat(list(iter_csv_batches(path, options)))
        except DataError as e:
            return repr(e)

    def convert(fast: bool) -> Any:
        try:
            if fast:
                res = [convert_chunk(c, schema, conv) for c in iter_csv_chunks(path, options)]
            else:
                res = [convert_batch(b, schema, conv) for b in iter_csv_batches(path, options)]
        except DataError as e:
            return repr(e)
        return (
            [r for x in res for r in x.records],
            [p for x in res for p in x.positions],
            [d.to_dict() for x in res for d in x.dead_letters],
        )

    return (read(False), convert(False)), (read(True), convert(True))


def _check(path: str, options: ReadOptions | None = None, **kw: Any) -> Any:
    slow, fast = _outcome(
        path, options or ReadOptions(), kw.get("schema", SCHEMA), kw.get("conv", ConvertOptions())
    )
    assert fast == slow
    return slow


_PIECES = [
    "1", "-2", "+3", "007", "2.5", "-.5", "5.", "1e3", "1E-400", "1e400", " 4", "1_0", "0x1",
    "nan", "inf", "x", "", "NA", "é", "|", "::", "1|2", "2.5::-1", "a|b|", "|", "::", ",", ",", ",", '"', '"', '""', "\n", "\r", "\r\n", ";",
    "'", "\t", "\ufeff", "\x00", "9" * 19, "-" + "9" * 18,
]  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.sampled_from(
        [
            HEADER,
            "\ufeff" + HEADER,
            "\n" + HEADER,
            "a,b,c\r\n",
            "a,b,c,d,e,g,h,i,f\r",
            '"a",b,"c",d,e,g\n',
        ]
    ),
    body=st.lists(st.sampled_from(_PIECES), max_size=60),
    bad_bytes=st.booleans(),
    delimiter=st.sampled_from([",", ",", ";", "\t"]),
    quotechar=st.sampled_from(['"', '"', "'"]),
    batch_size=st.integers(1, 6),
    missing=st.sampled_from([("",), ("", "NA"), ("x",)]),
)
def test_random_files_give_identical_rows_records_and_dead_letters(
    tmp_path: pathlib.Path,
    header: str,
    body: list[str],
    bad_bytes: bool,
    delimiter: str,
    quotechar: str,
    batch_size: int,
    missing: tuple[str, ...],
) -> None:
    data = (header + "".join(body)).encode("utf-8")
    if bad_bytes:
        data = data.replace("é".encode(), b"\xe9")  # Latin-1, not UTF-8
    p = tmp_path / "t.csv"
    p.write_bytes(data)
    opts = ReadOptions(delimiter=delimiter, quotechar=quotechar, batch_size=batch_size)
    _check(str(p), opts, conv=ConvertOptions(missing_values=missing))


def _criteo_like(path: pathlib.Path, rows: int) -> Schema:
    rng = np.random.default_rng(0)
    ints = [f"I{i}" for i in range(1, 6)]
    cats = [f"C{i}" for i in range(1, 6)]
    lines = [",".join(["label", *ints, "F", *cats])]
    for _ in range(rows):
        cells = [str(rng.integers(0, 2))]
        cells += ["" if rng.random() < 0.2 else str(rng.integers(-(10**12), 10**12)) for _ in ints]
        cells.append(repr(float(rng.normal())))
        cells += ["" if rng.random() < 0.1 else f"{rng.integers(0, 2**32):08x}" for _ in cats]
        lines.append(",".join(cells))
    path.write_text("\r\n".join(lines) + "\r\n")
    return Schema(
        (
            FeatureSchema("label", "int64", shape=()),
            *(FeatureSchema(c, "int64", shape=(), required=False) for c in ints),
            FeatureSchema("F", "float", shape=()),
            *(FeatureSchema(c, "bytes", shape=(), required=False) for c in cats),
        )
    )


def test_clean_rows_take_the_compiled_path_and_match_byte_for_byte(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "c.csv"
    schema = _criteo_like(p, 500)
    slow = _check(str(p), ReadOptions(batch_size=64), schema=schema)
    assert len(slow[1][0]) == 500 and not slow[1][2]
    from featurepipe import _speedups

    chunks = list(iter_csv_chunks(str(p), ReadOptions(batch_size=64)))
    plan = csv_plan(schema, chunks[0].header, ConvertOptions())
    assert plan is not None
    c = chunks[0]
    records, positions, deferred = _speedups.csv_convert(
        c.data, ",", '"', 1 << 20, len(c.header), plan, c.first_line
    )
    assert deferred == [] and len(records) == 64 and positions == list(range(2, 66))


def test_float_text_rounds_like_python_then_float32(tmp_path: pathlib.Path) -> None:
    texts = ["0.1", "1e-46", "3.4028235e38", "3.4028236e38", "-0", "123456789.123456789",
             "1.00000005960464477539", "2.5e-45", "0.000001", "7e22", "1." + "3" * 40]  # fmt: skip
    p = tmp_path / "f.csv"
    p.write_text("x\n" + "\n".join(texts) + "\n")
    schema = Schema((FeatureSchema("x", "float", shape=()),))
    records = _check(str(p), schema=schema)[1][0]
    got = [decode_example(r)["x"].values[0] for r in records]
    with np.errstate(over="ignore"):
        want = [np.float32(float(t)) for t in texts]
    assert np.array_equal(np.array(got, np.float32), np.array(want, np.float32))


def test_rows_over_the_field_limit_are_dead_letters_on_both_paths(tmp_path: pathlib.Path) -> None:
    csv.field_size_limit(4)
    p = tmp_path / "t.csv"
    p.write_text(HEADER + '1,2,abcd,4,e,7,,x\n1,2,abcde,4,e,7,,x\n1,2,"ab""cd",4,e,7,,x\n')
    slow = _check(str(p), ReadOptions(max_field_bytes=1))
    assert [d["reason"] for d in slow[1][2]] == ["MALFORMED_ROW", "MALFORMED_ROW"]


def test_schemas_the_compiled_code_does_not_cover_fall_back_whole(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1|2,x\n3,y\n")
    lists = Schema(
        (FeatureSchema("a", "int64", shape=None, value_separator="|"), FeatureSchema("b", "bytes"))
    )
    assert csv_plan(lists, ("a", "b"), ConvertOptions()) is not None  # lists are compiled
    assert len(_check(str(p), schema=lists)[1][0]) == 2
    pair = Schema((FeatureSchema("a", "int64", shape=(2,)),))  # no separator: never fits
    assert csv_plan(pair, ("a", "b"), ConvertOptions()) is None
    assert len(_check(str(p), schema=pair)[1][2]) == 2
    required_absent = Schema((FeatureSchema("zzz", "int64", shape=()),))
    assert csv_plan(required_absent, ("a", "b"), ConvertOptions()) is None
    assert len(_check(str(p), schema=required_absent)[1][2]) == 2


def test_gzip_input_and_splits_read_the_same_rows(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "t.csv"
    schema = _criteo_like(p, 300)
    text = p.read_bytes().replace(b"\r\n", b"\n")
    text += b'1,2,3,4,5,6,"0.5","quoted\nnewline",,,,\n7,,,,,,1.5,x,y\n'
    p.write_bytes(text)
    g = tmp_path / "t.csv.gz"
    g.write_bytes(gzip.compress(text))
    _check(str(g), schema=schema)
    opts = ReadOptions(split_bytes=2000, batch_size=50)
    splits = plan_splits(str(p), opts)
    assert len(splits) > 3
    slow = [b for s in splits for b in iter_csv_batches(str(p), opts, split=s)]
    fast = [c.to_row_batch() for s in splits for c in iter_csv_chunks(str(p), opts, split=s)]
    assert _flat(fast) == _flat(slow)
    conv = [
        convert_chunk(c, schema) for s in splits for c in iter_csv_chunks(str(p), opts, split=s)
    ]
    ref = [convert_batch(b, schema) for b in slow]
    assert [r for x in conv for r in x.records] == [r for x in ref for r in x.records]
    assert [d.to_dict() for x in conv for d in x.dead_letters] == [
        d.to_dict() for x in ref for d in x.dead_letters
    ]


def test_header_errors_match(tmp_path: pathlib.Path) -> None:
    for i, data in enumerate([b"", b"\xef\xbb\xbf", b'"a"x,b\n', b"\xff,b\n1,2\n"]):
        p = tmp_path / f"h{i}.csv"
        p.write_bytes(data)
        slow = _check(str(p))
        assert isinstance(slow[0], str) and "DataError" in slow[0]


def test_read_units_and_as_row_batch(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a\n1\n2\n")
    units = list(read_units(str(p)))
    assert all(isinstance(u, CsvChunk) for u in units)
    assert [as_row_batch(u).columns for u in units] == [{"a": ["1", "2"]}]
    j = tmp_path / "t.jsonl"
    j.write_text('{"a": 1}\n')
    assert all(isinstance(u, RowBatch) for u in read_units(str(j)))
    # Without the extension (or with a non-ASCII delimiter) CSV comes as RowBatches.
    assert all(isinstance(u, RowBatch) for u in read_units(str(p), ReadOptions(delimiter="§")))
    monkeypatch.setattr(csvchunk, "_native", None)
    assert all(isinstance(u, RowBatch) for u in read_units(str(p)))


def _infer_both(path: str, options: ReadOptions, conv: ConvertOptions) -> tuple[Any, Any]:
    def run(fast: bool) -> Any:
        inf = RawSchemaInferrer(conv)
        try:
            if fast:
                for c in iter_csv_chunks(path, options):
                    add_chunk(inf, c)
            else:
                for b in iter_csv_batches(path, options):
                    inf.add_batch(b)
        except DataError as e:
            return repr(e)
        return inf.rows, inf.extract()

    return run(False), run(True)


_CELLS = ["1", "-2", "2.5", "1e3", " 4", "1_0", "inf", "-NaN", "9" * 19, "0x1", "x", "", "NA",
          "é", "fa", '"3"', '","']  # fmt: skip


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.lists(st.sampled_from(_CELLS), min_size=2, max_size=4), max_size=12),
    batch_size=st.integers(1, 5),
    missing=st.sampled_from([("",), ("", "NA")]),
)
def test_inferred_schema_is_the_same_on_both_paths(
    tmp_path: pathlib.Path, rows: list[list[str]], batch_size: int, missing: tuple[str, ...]
) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,b,c\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    slow, fast = _infer_both(str(p), ReadOptions(batch_size=batch_size), ConvertOptions(missing))
    assert fast == slow


def test_inference_with_list_columns_uses_the_python_counter(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1|2,x\n3,y\n")
    conv = ConvertOptions(list_columns=("a",))
    slow, fast = _infer_both(str(p), ReadOptions(), conv)
    assert fast == slow and fast[1]["a"].shape is None
