"""End-to-end tests of the Beam conversion job on the DirectRunner (both running modes)."""

from __future__ import annotations

import glob
import gzip
import json
import os
import pathlib
from typing import Any

import numpy as np
import pytest

beam = pytest.importorskip("apache_beam")

from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from featurepipe.beam._convert import BadFractionError, ConvertToExamples, ShardOptions  # noqa: E402
from featurepipe.convert._encode import ConvertOptions  # noqa: E402
from featurepipe.convert._sources import ReadOptions  # noqa: E402
from featurepipe.errors import DataError  # noqa: E402
from featurepipe.example._codec import decode_example  # noqa: E402
from featurepipe.example._schema import FeatureSchema, Schema  # noqa: E402
from featurepipe.tfrecord import read_records  # noqa: E402

MULTI = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]

SCHEMA = Schema(
    (
        FeatureSchema("id", "int64", shape=()),
        FeatureSchema("i", "int64", shape=()),
        FeatureSchema("f", "float", shape=()),
        FeatureSchema("s", "bytes", shape=()),
        FeatureSchema("tags", "int64", shape=None, required=False, value_separator="|"),
        FeatureSchema("pair", "int64", shape=(2,), value_separator=";"),
        FeatureSchema("opt", "float", shape=(), required=False, default=0.5),
    )
)

# (raw CSV row, expected values or the dead-letter (column, reason)).
_GOOD = [
    (
        '1,5,1.5,"hello, world",1|2,3;4,2',
        {
            "i": [5],
            "f": [1.5],
            "s": [b"hello, world"],
            "tags": [1, 2],
            "pair": [3, 4],
            "opt": [2.0],
        },
    ),
    (
        '2,-7,2,"multi\r\nline",,5;6,NA',
        {
            "i": [-7],
            "f": [2.0],
            "s": [b"multi\r\nline"],
            "tags": None,
            "pair": [5, 6],
            "opt": [0.5],
        },
    ),
    (
        "3,9223372036854775807,1e-3,naïve 東京 🙂,7,1;1,",
        {
            "i": [2**63 - 1],
            "f": [1e-3],
            "s": ["naïve 東京 🙂".encode()],
            "tags": [7],
            "pair": [1, 1],
            "opt": [0.5],
        },
    ),
    (
        '4,-9223372036854775808,-0.0,"say ""hi""",8|9|10,0;0,1e30',
        {
            "i": [-(2**63)],
            "f": [-0.0],
            "s": [b'say "hi"'],
            "tags": [8, 9, 10],
            "pair": [0, 0],
            "opt": [1e30],
        },
    ),
]
_BAD = [
    ("5,abc,1,s,1,1;1,", ("i", "UNEXPECTED_DATA_TYPE")),
    ("6,,1,s,1,1;1,", ("i", "SCHEMA_MISSING_COLUMN")),
    ("7,9223372036854775808,1,s,1,1;1,", ("i", "INT_TYPE_BIG_INT")),
    ("8,1,1,s,1,1,", ("pair", "FEATURE_TYPE_LOW_NUMBER_VALUES")),
    ("9,1,1,s,1,1;2;3,", ("pair", "FEATURE_TYPE_HIGH_NUMBER_VALUES")),
    ("10,1", (None, "MALFORMED_ROW")),
    ("11,1,1,\udcff,1,1;1,", (None, "ENUM_TYPE_INVALID_UTF8")),
    ("12,1,notnum,s,1,1;1,", ("f", "UNEXPECTED_DATA_TYPE")),
    ("13,1,1,s,1|x,1;1,", ("tags", "UNEXPECTED_DATA_TYPE")),
]


def _messy_csv(path: pathlib.Path) -> dict[int, Any]:
    """Writes good and bad rows interleaved; returns id -> expectation, plus line numbers."""
    rows = []
    for k in range(max(len(_GOOD), len(_BAD))):
        if k < len(_GOOD):
            rows.append(_GOOD[k])
        if k < len(_BAD):
            rows.append(_BAD[k])
    text = "id,i,f,s,tags,pair,opt\r\n" + "".join(r + "\r\n" for r, _ in rows)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8", "surrogateescape"))
    expect: dict[int, Any] = {}
    line = 2
    for raw, want in rows:
        expect[int(raw.split(",", 1)[0])] = (line, want)
        line += raw.count("\r\n") + 1
    return expect


def _convert(src: list[str], prefix: str, argv: list[str] | None = None, **kw: Any) -> None:
    options = PipelineOptions(argv or [])
    with beam.Pipeline(options=options) as p:
        _ = p | ConvertToExamples(src, prefix, **kw)


def _tf_rows(prefix: str, schema: Schema, compression: str = "") -> dict[int, dict[str, Any]]:
    """Reads every output record with TensorFlow and a feature spec derived from the schema."""
    tf = pytest.importorskip("tensorflow")
    dtypes = {"int64": tf.int64, "float": tf.float32, "bytes": tf.string}
    spec: dict[str, Any] = {}
    for f in schema:
        if f.shape is None or (not f.required and f.default is None):
            spec[f.name] = tf.io.RaggedFeature(dtypes[f.kind])
        else:
            spec[f.name] = tf.io.FixedLenFeature(f.shape, dtypes[f.kind], default_value=f.default)
    files = sorted(glob.glob(f"{prefix}-*-of-*.tfrecord*"))
    ds = tf.data.TFRecordDataset(files, compression_type=compression).batch(64)
    out: dict[int, dict[str, Any]] = {}
    for batch in ds:
        parsed = tf.io.parse_example(batch, spec)
        for r in range(int(batch.shape[0])):
            row = {}
            for name, t in parsed.items():
                v = t[r]
                row[name] = np.asarray(v.numpy()).reshape(-1).tolist()
            out[int(row["id"][0])] = row
    return out


def _check_outputs(prefix: str, expect: dict[int, Any], compression: str = "") -> None:
    summary = json.loads(pathlib.Path(f"{prefix}.summary.json").read_text())
    n_good = sum(1 for _, w in expect.values() if isinstance(w, dict))
    assert summary["status"] == "ok"
    assert summary["rows_read"] == len(expect)
    assert summary["rows_written"] == n_good
    assert summary["rows_read"] == summary["rows_written"] + summary["rows_dead_lettered"]
    # The dead-letter file holds exactly the bad rows, with line, column and reason.
    (dl,) = glob.glob(f"{prefix}.deadletter-*.jsonl")
    dead = [json.loads(x) for x in pathlib.Path(dl).read_text(encoding="utf-8").splitlines()]
    got_dead = {d["line"]: (d["column"], d["reason"]) for d in dead}
    want_dead = {line: w for line, w in expect.values() if not isinstance(w, dict)}
    assert got_dead == want_dead
    assert sum(summary["dead_letters_by_reason"].values()) == len(want_dead)
    # TensorFlow reads every record back with exactly the input values.
    rows = _tf_rows(prefix, SCHEMA, compression)
    assert sorted(rows) == sorted(i for i, (_, w) in expect.items() if isinstance(w, dict))
    for i, row in rows.items():
        want = expect[i][1]
        for name, values in want.items():
            if SCHEMA[name].kind == "float":
                assert row[name] == np.asarray(values, np.float32).tolist(), (i, name)
            else:
                assert row[name] == (values or []), (i, name)


def test_messy_gzip_csv_in_process(tmp_path: pathlib.Path) -> None:
    plain = tmp_path / "messy.csv"
    expect = _messy_csv(plain)
    src = tmp_path / "messy.csv.gz"  # a gzip-compressed input, found by its magic bytes
    src.write_bytes(gzip.compress(plain.read_bytes()))
    prefix = str(tmp_path / "out" / "train")
    _convert(
        [str(src)],
        prefix,
        schema=SCHEMA,
        convert_options=ConvertOptions(missing_values=("", "NA")),
        shard_options=ShardOptions(num_shards=3, compression="gzip"),
    )
    shards = sorted(os.path.basename(p) for p in glob.glob(f"{prefix}-*"))
    assert shards == [f"train-0000{i}-of-00003.tfrecord.gz" for i in range(3)]
    assert not glob.glob(str(tmp_path / "out" / "*tmp*"))
    _check_outputs(prefix, expect, "GZIP")
    assert Schema.load(f"{prefix}.schema.json") == SCHEMA


def test_messy_csv_multi_processing_gives_the_same_records(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "messy.csv"
    expect = _messy_csv(src)
    opts = {"schema": SCHEMA, "convert_options": ConvertOptions(missing_values=("", "NA"))}
    a, b = str(tmp_path / "a" / "t"), str(tmp_path / "b" / "t")
    _convert([str(src)], a, **opts, shard_options=ShardOptions(compression="zlib"))
    # Tiny parts: the file is cut (never inside quotes) and read by both workers.
    _convert(
        [str(src)],
        b,
        MULTI,
        **opts,
        read_options=ReadOptions(split_bytes=40, batch_size=3),
        shard_options=ShardOptions(compression="zlib"),
    )
    _check_outputs(b, expect, "ZLIB")

    def records(prefix: str) -> list[bytes]:
        return sorted(read_records(sorted(glob.glob(f"{prefix}-*.tfrecord.zz"))))

    assert records(a) == records(b)


def test_inferred_schema_jsonl_with_lists_and_nulls_multi_processing(
    tmp_path: pathlib.Path,
) -> None:
    lines = [
        {"id": 1, "x": 1, "v": [1, 2], "s": "a"},
        {"id": 2, "x": None, "v": [], "s": "b"},
        {"id": 3, "v": None, "s": None},
        {"id": 4, "x": 2.5, "v": [0.25], "s": "c"},  # a float late in the data: x becomes float
    ]
    src = tmp_path / "in.jsonl.gz"
    src.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in lines).encode()))
    prefix = str(tmp_path / "o" / "j")
    _convert([str(src)], prefix, MULTI)
    schema = Schema.load(f"{prefix}.schema.json")
    got = {f.name: (f.kind, f.required, f.shape) for f in schema}
    assert got == {
        "id": ("int64", True, ()),
        "x": ("float", False, ()),
        "v": ("float", False, None),
        "s": ("bytes", False, ()),
    }
    records = list(read_records(sorted(glob.glob(f"{prefix}-*.tfrecord"))))
    decoded = {int(d["id"].values[0]): d for d in map(decode_example, records)}
    assert sorted(decoded) == [1, 2, 3, 4]
    assert decoded[4]["x"].values.tolist() == [2.5]
    assert "x" not in decoded[3] and "v" not in decoded[3]
    assert decoded[2]["v"].values.tolist() == [] and decoded[2]["v"].kind == "float"
    assert decoded[1]["v"].values.tolist() == [1.0, 2.0]


def test_parquet_lists_and_nulls(tmp_path: pathlib.Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "in.parquet"
    pq.write_table(
        pa.table(
            {
                "id": pa.array([0, 1, 2, 3], pa.int64()),
                "l": pa.array([[1, 2], None, [], [3, None]], pa.list_(pa.int64())),
                "s": pa.array(["x", None, "z", "w"]),
            }
        ),
        str(src),
    )
    schema = Schema(
        (
            FeatureSchema("id", "int64", shape=()),
            FeatureSchema("l", "int64", shape=None, required=False),
            FeatureSchema("s", "bytes", shape=(), required=False),
        )
    )
    prefix = str(tmp_path / "o" / "p")
    _convert([str(src)], prefix, schema=schema)
    summary = json.loads(pathlib.Path(f"{prefix}.summary.json").read_text())
    assert (summary["rows_written"], summary["rows_dead_lettered"]) == (3, 1)
    (dl,) = glob.glob(f"{prefix}.deadletter-*.jsonl")
    (dead,) = [json.loads(x) for x in pathlib.Path(dl).read_text().splitlines()]
    assert (dead["row"], dead["column"], dead["reason"]) == (3, "l", "UNEXPECTED_DATA_TYPE")
    assert dead["raw"] == {"id": 3, "l": [3, None], "s": "w"}
    decoded = {
        int(d["id"].values[0]): d
        for d in map(decode_example, read_records(sorted(glob.glob(f"{prefix}-*.tfrecord"))))
    }
    assert decoded[0]["l"].values.tolist() == [1, 2]
    assert "l" not in decoded[1] and "s" not in decoded[1]
    assert decoded[2]["l"].values.tolist() == []


def test_max_bad_fraction_fails_with_counts_and_writes_no_shards(tmp_path: pathlib.Path) -> None:
    from pipelines.convert import run

    src = tmp_path / "messy.csv"
    _messy_csv(src)
    prefix = str(tmp_path / "o" / "bad")
    argv = [
        "--input",
        str(src),
        "--output",
        prefix,
        "--schema",
        str(tmp_path / "s.json"),
        "--missing_values",
        "NA",
        "--max_bad_fraction",
        "0.2",
    ]
    SCHEMA.save(tmp_path / "s.json")
    with pytest.raises(BadFractionError, match=r"9 of 13 rows were dead-lettered"):
        run(argv)
    assert not glob.glob(f"{prefix}-*")
    summary = json.loads(pathlib.Path(f"{prefix}.summary.json").read_text())
    assert summary["status"] == "failed" and summary["shards"] == []
    # The same job passes with a budget that fits, and prints its summary.
    out = run([*argv[:-1], "0.7"])
    assert out["rows_written"] == 4 and out["shards_written"] == 1


def test_rerun_replaces_old_shards_and_failed_input_leaves_nothing_complete(
    tmp_path: pathlib.Path,
) -> None:
    src = tmp_path / "a.csv"
    src.write_text("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(20)))
    prefix = str(tmp_path / "o" / "t")
    _convert([str(src)], prefix, shard_options=ShardOptions(num_shards=4))
    assert len(glob.glob(f"{prefix}-*-of-00004.tfrecord")) == 4
    _convert([str(src)], prefix, shard_options=ShardOptions(num_shards=2))
    assert sorted(glob.glob(f"{prefix}-*.tfrecord")) == [
        f"{prefix}-00000-of-00002.tfrecord",
        f"{prefix}-00001-of-00002.tfrecord",
    ]
    # A damaged input kills the job before anything is published.
    blob = gzip.compress(b"a,b\n" + b"1,2\n" * 20000)
    bad = tmp_path / "b.csv.gz"
    bad.write_bytes(blob[: len(blob) // 2])
    other = str(tmp_path / "o2" / "t")
    with pytest.raises(Exception, match="bad_gzip"):
        _convert([str(src), str(bad)], other)
    assert not glob.glob(f"{other}*.tfrecord") and not os.path.exists(f"{other}.summary.json")


def test_cli_convert_json_summary_and_exit_codes(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from featurepipe.cli.main import main

    src = tmp_path / "in.csv"
    src.write_text("x,y\n1,a\n2,b\noops,c\n")
    prefix = str(tmp_path / "o" / "c")
    assert main(["convert", str(src), "--output", prefix, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows_read"], summary["rows_written"]) == (3, 3)  # x inferred as bytes
    schema = tmp_path / "s.json"
    Schema((FeatureSchema("x", "int64", shape=()), FeatureSchema("y", "bytes", shape=()))).save(
        schema
    )
    code = main(
        [
            "convert",
            str(src),
            "--output",
            prefix,
            "--schema",
            str(schema),
            "--max-bad-fraction",
            "0.1",
        ]
    )
    assert code == 1
    assert "1 of 3 rows were dead-lettered" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "nothing*.csv"), "--output", prefix]) == 2


def test_missing_input_pattern_is_a_config_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DataError.__mro__[1], match="matched no files"):
        ConvertToExamples([str(tmp_path / "none-*.csv")], str(tmp_path / "o"))


def test_compiled_csv_path_in_workers_matches_the_pure_python_path(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scalar schema takes featurepipe.convert._csv's compiled path; results must not change."""
    from featurepipe.convert import _csv as csvchunk

    if not csvchunk.native_csv(ReadOptions()):
        pytest.skip("featurepipe._speedups is not built")
    src = tmp_path / "messy.csv"
    _messy_csv(src)
    scalar = Schema(tuple(f for f in SCHEMA if f.name not in ("tags", "pair")))
    opts = {"schema": scalar, "convert_options": ConvertOptions(missing_values=("", "NA"))}
    fast, slow = str(tmp_path / "fast" / "t"), str(tmp_path / "slow" / "t")
    _convert(
        [str(src)], fast, MULTI, **opts, read_options=ReadOptions(split_bytes=60, batch_size=2)
    )
    monkeypatch.setattr(csvchunk, "_native", None)  # in-process: the pure-Python reader
    _convert([str(src)], slow, **opts)

    def outputs(prefix: str) -> tuple[list[bytes], list[Any], dict[str, Any]]:
        records = sorted(read_records(sorted(glob.glob(f"{prefix}-*.tfrecord"))))
        (dl,) = glob.glob(f"{prefix}.deadletter-*.jsonl")
        dead = sorted(json.loads(x)["line"] for x in pathlib.Path(dl).read_text().splitlines())
        s = json.loads(pathlib.Path(f"{prefix}.summary.json").read_text())
        return records, dead, {k: s[k] for k in ("rows_read", "rows_written", "rows_dead_lettered")}

    assert outputs(fast) == outputs(slow)
    assert outputs(fast)[2]["rows_written"] == 7  # _GOOD, and the rows bad only in tags/pair


@pytest.mark.parametrize(("native", "infer"), [(True, False), (False, False), (False, True)])
def test_beam_counters_account_for_every_row(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, native: bool, infer: bool
) -> None:
    """Counted once per row, also when an inferred schema makes the job read the input twice."""
    from apache_beam.metrics.metric import MetricsFilter

    from featurepipe.convert import _csv as csvchunk

    if native and not csvchunk.native_csv(ReadOptions()):
        pytest.skip("featurepipe._speedups is not built")
    if not native:
        monkeypatch.setattr(csvchunk, "_native", None)
    src = tmp_path / "messy.csv"
    expect = _messy_csv(src)
    prefix = str(tmp_path / "out" / "t")
    p = beam.Pipeline()
    _ = p | ConvertToExamples(
        [str(src)],
        prefix,
        schema=None
        if infer
        else Schema(tuple(f for f in SCHEMA if f.name not in ("tags", "pair"))),
        convert_options=ConvertOptions(missing_values=("", "NA")),
    )
    result = p.run()
    result.wait_until_finish()

    def counter(name: str) -> int:
        found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
        return sum(c.committed for c in found)

    summary = json.loads(pathlib.Path(f"{prefix}.summary.json").read_text())
    assert counter("rows_read") == summary["rows_read"] == len(expect)
    assert counter("rows_written") == summary["rows_written"]
    assert counter("rows_dead_lettered") == summary["rows_dead_lettered"]
    assert counter("rows_unparseable") == 2  # the short row and the bad UTF-8 row
