"""Tests for featurepipe.convert._sources: CSV / JSON lines / Parquet into batches of rows."""

from __future__ import annotations

import gzip
import json
import pathlib
from typing import Any

import pytest

from featurepipe.convert._sources import (
    WHOLE_FILE,
    DeadLetter,
    ReadOptions,
    RowBatch,
    guess_format,
    iter_csv_batches,
    iter_jsonl_batches,
    iter_parquet_batches,
    plan_splits,
    read_batches,
)
from featurepipe.errors import ConfigError, DataError


def _all(batches: list[RowBatch]) -> tuple[dict[str, list[object]], list[int], list[DeadLetter]]:
    cols: dict[str, list[object]] = {}
    positions: list[int] = []
    dead: list[DeadLetter] = []
    for b in batches:
        for k, v in b.columns.items():
            cols.setdefault(k, []).extend(v)
        positions += b.positions
        dead += b.dead_letters
    return cols, positions, dead


def _write(tmp_path: pathlib.Path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_csv_quoting_embedded_newlines_crlf_bom_unicode(tmp_path: pathlib.Path) -> None:
    data = (
        "\ufeffid,text,n\r\n"
        '1,"a, b",7\r\n'
        '2,"line one\r\nline two",8\r\n'
        '3,"say ""hi""",9\r\n'
        "4,naïve 東京 🙂,10\r\n"
    ).encode("utf-8")
    cols, positions, dead = _all(list(iter_csv_batches(_write(tmp_path, "a.csv", data))))
    assert dead == []
    assert cols == {
        "id": ["1", "2", "3", "4"],
        "text": ["a, b", "line one\r\nline two", 'say "hi"', "naïve 東京 🙂"],
        "n": ["7", "8", "9", "10"],
    }
    # A row is numbered by its first line; the two-line row pushes the next one down.
    assert positions == [2, 3, 5, 6]


def test_csv_bad_rows_become_dead_letters_with_line_and_raw_text(tmp_path: pathlib.Path) -> None:
    data = b"a,b\n1,2\n3\n4,5,6\n\n7,\xff\xfe\n8,9\n"
    cols, positions, dead = _all(list(iter_csv_batches(_write(tmp_path, "b.csv", data))))
    assert cols == {"a": ["1", "8"], "b": ["2", "9"]}
    assert positions == [2, 7]  # line 5 is blank: skipped, not a row
    assert [(d.position, d.reason) for d in dead] == [
        (3, "MALFORMED_ROW"),
        (4, "MALFORMED_ROW"),
        (6, "ENUM_TYPE_INVALID_UTF8"),
    ]
    assert dead[0].raw == "3\n"
    assert "1 fields but the header has 2" in dead[0].detail
    # Bad bytes are escaped in the JSON line, never lost or crashing.
    assert json.loads(dead[2].to_json())["raw"] == "7,\\xff\\xfe\n"


def test_csv_unterminated_quote_is_a_dead_letter(tmp_path: pathlib.Path) -> None:
    data = b'a,b\n1,2\n3,"open\nmore\n'
    cols, _, dead = _all(list(iter_csv_batches(_write(tmp_path, "q.csv", data))))
    assert cols == {"a": ["1"], "b": ["2"]}
    assert [(d.position, d.reason) for d in dead] == [(3, "MALFORMED_ROW")]
    assert dead[0].raw == '3,"open\nmore\n'


def test_csv_delimiter_and_batching_keep_positions(tmp_path: pathlib.Path) -> None:
    rows = "".join(f"{i};x{i}\n" for i in range(10))
    path = _write(tmp_path, "c.csv", ("a;b\n" + rows).encode())
    batches = list(iter_csv_batches(path, ReadOptions(delimiter=";", batch_size=4)))
    assert [b.num_rows for b in batches] == [4, 4, 2]
    assert [p for b in batches for p in b.positions] == list(range(2, 12))
    assert batches[2].columns["b"] == ["x8", "x9"]


def test_csv_gzip_input_is_detected_from_magic_bytes(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "d.csv.gz", gzip.compress(b"a,b\n1,2\n3,4\n"))
    cols, positions, _ = _all(list(read_batches(path)))
    assert cols == {"a": ["1", "3"], "b": ["2", "4"]}
    assert positions == [2, 3]


def test_truncated_gzip_raises_data_error_naming_the_file(tmp_path: pathlib.Path) -> None:
    blob = gzip.compress(b"a,b\n" + b"1,2\n" * 10000)
    path = _write(tmp_path, "t.csv.gz", blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"t\.csv\.gz.*bad_gzip"):
        list(read_batches(path))


def test_csv_header_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DataError, match="missing_header"):
        list(iter_csv_batches(_write(tmp_path, "e.csv", b"")))
    # Issue 12: duplicate (and empty) names are named as pandas names them, not refused.
    (b,) = iter_csv_batches(_write(tmp_path, "f.csv", b"a,a\n1,2\n"))
    assert b.columns == {"a": ["1"], "a.1": ["2"]}


def test_jsonl_scalars_arrays_nulls_and_bad_lines(tmp_path: pathlib.Path) -> None:
    lines = [
        b'{"a": 1, "b": [1.5, 2], "c": "x"}',
        b'{"a": null, "c": "\xc3\xa9"}',
        b"",
        b"not json",
        b"[1, 2]",
        b'{"a": 3, "c": "\xff"}',
        b'{"a": 4, "b": [], "d": true}',
    ]
    path = _write(tmp_path, "j.jsonl", b"\n".join(lines) + b"\n")
    cols, positions, dead = _all(list(iter_jsonl_batches(path)))
    assert cols == {
        "a": [1, None, 4],
        "b": [[1.5, 2], None, []],
        "c": ["x", "é", None],
        "d": [None, None, True],
    }
    assert positions == [1, 2, 7]
    assert [(d.position, d.reason) for d in dead] == [
        (4, "MALFORMED_ROW"),
        (5, "MALFORMED_ROW"),
        (6, "ENUM_TYPE_INVALID_UTF8"),
    ]


def test_jsonl_gzip_and_bom(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "k.jsonl.gz", gzip.compress(b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n'))
    cols, _, dead = _all(list(read_batches(path)))
    assert cols == {"a": [1, 2]}
    assert dead == []


def test_parquet_lists_and_nulls(tmp_path: pathlib.Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "i": pa.array([1, None, 3], pa.int64()),
            "f": pa.array([[1.0, 2.0], None, []], pa.list_(pa.float32())),
            "s": pa.array(["a", "b", None]),
        }
    )
    path = str(tmp_path / "p.parquet")
    pq.write_table(table, path)
    batches = list(iter_parquet_batches(path, ReadOptions(batch_size=2)))
    assert [b.positions for b in batches] == [[0, 1], [2]]
    cols, _, _ = _all(batches)
    assert cols == {"i": [1, None, 3], "f": [[1.0, 2.0], None, []], "s": ["a", "b", None]}


def test_not_parquet_is_a_data_error(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("pyarrow")
    with pytest.raises(DataError, match="Parquet"):
        list(iter_parquet_batches(_write(tmp_path, "x.parquet", b"a,b\n1,2\n")))


def test_guess_format_and_errors() -> None:
    assert guess_format("a/b.TSV") == "csv"
    assert guess_format("x.ndjson.gz") == "jsonl"
    with pytest.raises(ConfigError, match=r"Received: path='x\.bin'"):
        guess_format("x.bin")
    with pytest.raises(ConfigError, match="Received: format='xml'"):
        ReadOptions(format="xml")
    with pytest.raises(ConfigError, match="exactly one character"):
        ReadOptions(delimiter=";;")


def test_custom_opener_is_used(tmp_path: pathlib.Path) -> None:
    import io

    opened: list[str] = []

    def opener(path: str) -> io.BufferedReader:
        opened.append(path)
        return io.BufferedReader(io.BytesIO(b"a\n1\n"))  # type: ignore[arg-type]

    cols, _, _ = _all(list(read_batches("mem://t.csv", opener=opener)))
    assert opened == ["mem://t.csv"]
    assert cols == {"a": ["1"]}


def _read_all_splits(path: str, options: ReadOptions) -> tuple[Any, list[int], list[Any]]:
    cols: dict[str, list[object]] = {}
    positions: list[int] = []
    dead: list[tuple[int, str]] = []
    for split in plan_splits(path, options):
        c, p, d = _all(list(read_batches(path, options, split=split)))
        for k, v in c.items():
            cols.setdefault(k, []).extend(v)
        positions += p
        dead += [(x.position, x.reason) for x in d]
    return cols, positions, dead


@pytest.mark.parametrize("split_bytes", [1, 7, 13, 50, 10_000])
def test_split_csv_reads_the_same_rows_lines_and_dead_letters(
    tmp_path: pathlib.Path, split_bytes: int
) -> None:
    data = b'id,text\r\n1,"a\nb,""c""\n"\r\n2,x\r\n3\r\n4,"\n\n"\r\n5,\xff\r\n\r\n6,"q""\nz"\r\n7,end\r\n'
    path = _write(tmp_path, "s.csv", data)
    whole = _all(list(read_batches(path)))
    want = (whole[0], whole[1], [(d.position, d.reason) for d in whole[2]])
    options = ReadOptions(split_bytes=split_bytes, batch_size=2)
    assert _read_all_splits(path, options) == want
    if split_bytes < 20:
        assert len(plan_splits(path, options)) > 2


def test_split_jsonl_and_parquet_row_groups(tmp_path: pathlib.Path) -> None:
    lines = b"".join(b'{"i": %d, "s": "x\\ny"}\n' % i for i in range(50)) + b"bad\n"
    path = _write(tmp_path, "s.jsonl", lines)
    options = ReadOptions(split_bytes=100, batch_size=7)
    assert len(plan_splits(path, options)) > 5
    cols, positions, dead = _read_all_splits(path, options)
    assert cols["i"] == list(range(50)) and positions == list(range(1, 51))
    assert dead == [(51, "MALFORMED_ROW")]
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    ppath = str(tmp_path / "s.parquet")
    pq.write_table(pa.table({"i": list(range(100))}), ppath, row_group_size=10)
    splits = plan_splits(ppath, ReadOptions(split_bytes=1))
    assert len(splits) == 10
    cols, positions, _ = _read_all_splits(ppath, ReadOptions(split_bytes=1, batch_size=3))
    assert cols["i"] == list(range(100)) and positions == list(range(100))


def test_gzip_files_are_not_split(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "g.csv.gz", gzip.compress(b"a\n" + b"1\n" * 1000))
    assert plan_splits(path, ReadOptions(split_bytes=10)) == [WHOLE_FILE]


def test_dead_letter_with_a_lone_surrogate_from_json_serializes() -> None:
    # Regression: json.loads('"\\ud800"') gives a lone surrogate; writing its dead letter crashed.
    d = DeadLetter("t.jsonl", 3, "line", "ENUM_TYPE_INVALID_UTF8", "a", "bad", {"a": "\ud800"})
    assert json.loads(d.to_json())["raw"] == {"a": "\\ud800"}
    e = DeadLetter("t.csv", 2, "line", "ENUM_TYPE_INVALID_UTF8", None, "bad", "x\udcff\n")
    assert json.loads(e.to_json())["raw"] == "x\\xff\n"
