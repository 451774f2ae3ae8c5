"""Column naming and choice (issue 12): CSV files as R and pandas write them, headerless
files, renames, kept and dropped columns; the compiled and pure-Python CSV paths agree."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from featurepipe.convert import (
    ConvertOptions,
    ReadOptions,
    RowBatch,
    as_row_batch,
    convert_unit,
    file_columns,
    iter_csv_batches,
    name_columns,
    native_csv,
    plan_splits,
    present_columns,
    read_batches,
    read_units,
    select_schema,
)
from featurepipe.errors import ConfigError
from featurepipe.example import FeatureSchema, Schema, decode_example

TESTDATA = pathlib.Path(__file__).resolve().parent.parent / "testdata"

# What pandas' DataFrame.to_csv() writes (default index=True) for
# pd.DataFrame({"a": [1, 2], "b": ["x", "y,z"]}): the index column has an empty
# header name. test_pandas_writes_these_bytes checks it against pandas itself.
PANDAS_TO_CSV = b',a,b\n0,1,x\n1,2,"y,z"\n'


def test_pandas_writes_these_bytes(tmp_path: pathlib.Path) -> None:
    pd = pytest.importorskip("pandas")
    p = tmp_path / "df.csv"
    pd.DataFrame({"a": [1, 2], "b": ["x", "y,z"]}).to_csv(p)
    assert p.read_bytes() == PANDAS_TO_CSV


def test_pandas_to_csv_with_repeated_names_reads_as_pandas_reads_it(
    tmp_path: pathlib.Path,
) -> None:
    pd = pytest.importorskip("pandas")
    p = tmp_path / "dup.csv"
    frame = pd.DataFrame([[1, "x", 2.5], [2, "y", 3.5]], columns=["v", "v", "w"])
    frame.to_csv(p)  # the index (empty name) and two columns named v
    rows = _rows(str(p))
    theirs = pd.read_csv(p, dtype=str)
    assert list(rows) == list(theirs.columns) == ["Unnamed: 0", "v", "v.1", "w"]
    for name in rows:
        assert rows[name] == list(theirs[name]), name


def _rows(path: str, options: ReadOptions | None = None) -> dict[str, list[Any]]:
    """All rows by the fast path (when built) and the pure-Python one, checked equal."""
    options = options or ReadOptions()
    slow: dict[str, list[Any]] = {}
    for b in iter_csv_batches(path, options):
        for k, v in b.columns.items():
            slow.setdefault(k, []).extend(v)
    fast: dict[str, list[Any]] = {}
    for u in read_units(path, options):
        for k, v in as_row_batch(u).columns.items():
            fast.setdefault(k, []).extend(v)
    assert fast == slow
    return slow


@pytest.mark.parametrize(
    ("header", "names"),
    [
        (["", "a", "b"], ["Unnamed: 0", "a", "b"]),
        (["a", "", ""], ["a", "Unnamed: 1", "Unnamed: 2"]),
        (["a", "a", "b", "b", "b"], ["a", "a.1", "b", "b.1", "b.2"]),
        # pandas' test_mangle_dupe_cols_already_exists: names in the header are skipped.
        (
            ["a", "a", "a.1", "a", "a.3", "a.1", "a.1.1"],
            ["a", "a.2", "a.1", "a.4", "a.3", "a.1.2", "a.1.1"],
        ),
        (["Unnamed: 1", ""], ["Unnamed: 1", "Unnamed: 1.1"]),
    ],
)
def test_names_follow_pandas(header: list[str], names: list[str]) -> None:
    got, renames = name_columns(header)
    assert got == names
    assert [(r.index, r.header, r.name) for r in renames] == [
        (i, h, n) for i, (h, n) in enumerate(zip(header, names, strict=True)) if h != n
    ]


def test_rename_errors_name_the_columns() -> None:
    with pytest.raises(ConfigError, match=r"\['nope'\].*header does not have"):
        name_columns(["a", "b"], [("nope", "x")])
    with pytest.raises(ConfigError, match="would name two columns"):
        name_columns(["a", "b"], [("a", "b")])
    with pytest.raises(ConfigError, match="column_names"):
        ReadOptions(header=False)
    with pytest.raises(ConfigError, match="--rename"):
        ReadOptions(column_names=("a",))
    with pytest.raises(ConfigError, match="both kept"):
        ReadOptions(columns=("a",), drop_columns=("a",))
    with pytest.raises(ConfigError, match="renamed twice"):
        ReadOptions(rename=(("a", "x"), ("a", "y")))


def test_r_write_csv_file(tmp_path: pathlib.Path) -> None:
    # tests/testdata/r_write_csv.csv: R's write.csv(df) (quoted names, quoted row names
    # under an empty name) of a frame with a repeated column name.
    path = str(TESTDATA / "r_write_csv.csv")
    names, renames = file_columns(path)
    assert names == ["Unnamed: 0", "carat", "cut", "price", "cut.1"]
    assert [(r.header, r.reason) for r in renames] == [("", "empty_name"), ("cut", "duplicate_name")]
    rows = _rows(path)
    assert rows["Unnamed: 0"] == ["1", "2", "3"] and rows["cut.1"] == ["x", "y", "z"]
    renamed = _rows(path, ReadOptions(rename={"Unnamed: 0": "row", "cut.1": "code"}))
    assert list(renamed) == ["row", "carat", "cut", "price", "code"]


def test_pandas_to_csv_bytes_and_splits(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "pandas.csv"
    p.write_bytes(PANDAS_TO_CSV + b"".join(b"%d,%d,w\n" % (i, i) for i in range(2, 400)))
    rows = _rows(str(p))
    assert list(rows) == ["Unnamed: 0", "a", "b"]
    assert rows["b"][:2] == ["x", "y,z"] and len(rows["a"]) == 400
    # A split file: later parts carry the named header.
    parts = plan_splits(str(p), ReadOptions(split_bytes=500))
    assert len(parts) > 1 and parts[1].header == ("Unnamed: 0", "a", "b")
    got = [r for s in parts for b in read_batches(str(p), split=s) for r in b.columns["a"]]
    assert got == rows["a"]


def test_headerless_file_every_line_a_row(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "nohdr.csv"
    p.write_text("1,x,2.5\n2,y,3.5\n3,z\n4,w,1\n")
    opts = ReadOptions(header=False, column_names=("id", "s", "f"))
    rows = _rows(str(p), opts)
    assert rows == {"id": ["1", "2", "4"], "s": ["x", "y", "w"], "f": ["2.5", "3.5", "1"]}
    renamed = _rows(str(p), ReadOptions(header=False, column_names=("id", "s", "f"), rename={"s": "t"}))
    assert list(renamed) == ["id", "t", "f"]
    (batch,) = iter_csv_batches(str(p), opts)
    assert batch.positions == [1, 2, 4]  # line 1 is a row
    assert [(d.position, d.reason) for d in batch.dead_letters] == [(3, "MALFORMED_ROW")]
    schema = Schema((FeatureSchema("id", "int64", shape=()), FeatureSchema("f", "float", shape=())))
    for unit in read_units(str(p), opts):
        res = convert_unit(unit, schema)
        assert res.num_read == 4 and res.positions == [1, 2, 4]
        assert [decode_example(r)["id"].values.tolist() for r in res.records] == [[1], [2], [4]]


@pytest.mark.skipif(not native_csv(ReadOptions()), reason="featurepipe._speedups is not built")
def test_compiled_and_python_paths_convert_renamed_columns_alike(tmp_path: pathlib.Path) -> None:
    from featurepipe.convert import convert_batch, iter_csv_chunks
    from featurepipe.convert._csv import convert_chunk

    p = tmp_path / "d.csv"
    p.write_bytes(b'"","v","v"\n"1",2,oops\n"2",,3\n')
    schema = Schema(
        (
            FeatureSchema("row", "int64", shape=()),
            FeatureSchema("v", "int64", shape=(), required=False),
            FeatureSchema("v.1", "int64", shape=()),
        )
    )
    opts = ReadOptions(rename={"Unnamed: 0": "row"})
    fast = [convert_chunk(c, schema) for c in iter_csv_chunks(str(p), opts)]
    slow = [convert_batch(b, schema) for b in iter_csv_batches(str(p), opts)]
    for a, b in zip(fast, slow, strict=True):
        assert a.records == b.records and a.positions == b.positions
        assert [d.to_dict() for d in a.dead_letters] == [d.to_dict() for d in b.dead_letters]
    assert [d.column for r in slow for d in r.dead_letters] == ["v.1"]


def test_jsonl_and_parquet_rename(tmp_path: pathlib.Path) -> None:
    j = tmp_path / "r.jsonl"
    j.write_text('{"a": 1, "b": 2}\n{"a": 3}\n')
    (b,) = read_batches(str(j), ReadOptions(rename={"a": "x"}))
    assert b.columns == {"x": [1, 3], "b": [2, None]}
    assert present_columns(b, b.num_read) == {"x": 2, "b": 1}
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pf = tmp_path / "r.parquet"
    pq.write_table(pa.table({"a": [1, 2], "b": ["u", "v"]}), pf)
    opts = ReadOptions(rename={"b": "s"})
    assert file_columns(str(pf), opts)[0] == ["a", "s"]
    units = list(read_units(str(pf), opts))
    assert [as_row_batch(u).columns for u in units] == [{"a": [1, 2], "s": ["u", "v"]}]
    schema = Schema((FeatureSchema("s", "bytes", shape=()),))
    assert [decode_example(r)["s"].values.tolist() for r in convert_unit(units[0], schema).records] == [
        [b"u"],
        [b"v"],
    ]


def test_select_schema_and_present_columns() -> None:
    s = Schema(tuple(FeatureSchema(n, "int64", shape=()) for n in ("a", "b", "c")))
    assert select_schema(s, ReadOptions(columns=("a", "c"))).names == ("a", "c")
    assert select_schema(s, ReadOptions(drop_columns=("b",))).names == ("a", "c")
    assert select_schema(s, ReadOptions()) is s
    with pytest.raises(ConfigError, match=r"\['zz'\]"):
        select_schema(s, ReadOptions(columns=("a", "zz")))
    csv_batch = RowBatch("a.csv", "csv", "line", [2], {"a": ["1"], "n": ["2"]}, [])
    assert present_columns(csv_batch, 3) == {"a": 3, "n": 3}  # dead-lettered rows count too


def test_read_options_pickle_and_json_safe() -> None:
    import pickle

    o = ReadOptions(rename={"a": "b"}, columns=["b"], drop_columns=["c"])
    assert pickle.loads(pickle.dumps(o)) == o
    assert json.dumps(o.rename) == '[["a", "b"]]'
    assert ConvertOptions(on_new_column="error").on_new_column == "error"
    with pytest.raises(ConfigError, match="on_new_column"):
        ConvertOptions(on_new_column="warn")
