"""Tests for featurepipe.analysis._artifacts: requests, the local engine, the artifact directory."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from featurepipe.analysis._artifacts import (
    Analysis,
    AnalyzerRequest,
    analyze_records,
    load_requests,
)
from featurepipe.errors import ConfigError, DataError
from featurepipe.example._codec import encode_example
from featurepipe.tfrecord import TFRecordWriter


def _file(rows: list[dict[str, object]]) -> io.BytesIO:
    buf = io.BytesIO()
    with TFRecordWriter(buf) as w:
        for row in rows:
            w.write(encode_example(row))
    buf.seek(0)
    return buf


def _rows(n: int = 500) -> list[dict[str, object]]:
    rng = np.random.default_rng(2)
    return [
        {
            "city": [b"Oslo", b"Lima", b"Pune", b"\xff\x00"][int(rng.integers(0, 4))],
            "age": int(rng.integers(18, 90)),
            "income": float(rng.lognormal(10, 1)),
            "tags": np.array([b"a", b"b\nc"][: i % 3], dtype=object),
        }
        for i in range(n)
    ]


def test_load_requests_plain_spec_sorted_and_deduplicated() -> None:
    spec = {
        "format_version": 1,
        "analyzers": [
            {"analyzer": "quantiles", "key": "x", "num_bins": 4},
            {"analyzer": "vocabulary", "key": "c", "top_k": 3},
            {"analyzer": "quantiles", "key": "x", "num_bins": 4},
            {"analyzer": "moments", "key": "x"},
        ],
    }
    reqs = load_requests(json.dumps(spec))
    assert [r.id for r in reqs] == ["moments/x", "quantiles/4/x", "vocabulary/c"]
    assert reqs[2] == AnalyzerRequest("vocabulary", "c", top_k=3)
    assert AnalyzerRequest.from_json(reqs[2].to_json()) == reqs[2]


def test_load_requests_from_column_specs() -> None:
    from featurepipe.columns._specs import (
        BucketizedColumn,
        ColumnSpecs,
        Normalizer,
        NumericColumn,
        VocabularyColumn,
    )

    specs = ColumnSpecs(
        (
            VocabularyColumn("city", top_k=2),
            BucketizedColumn(NumericColumn("income"), num_bins=4),
            NumericColumn("age", normalizer=Normalizer("z_score")),
        )
    )
    reqs = load_requests(specs.to_json())
    assert {r.id for r in reqs} == {"vocabulary/city", "quantiles/4/income", "moments/age"}

    rows = _rows()
    result = analyze_records(_file(rows), reqs)
    resolved = specs.resolve(result)
    assert resolved.is_resolved
    cities = Counter(r["city"] for r in rows)
    top2 = sorted(cities, key=lambda c: (-cities[c], c))[:2]
    assert resolved["city"].vocabulary == tuple(c.decode("utf-8", "surrogateescape") for c in top2)
    ages = np.array([r["age"] for r in rows], dtype=np.float64)
    assert resolved["age"].normalizer.mean == pytest.approx(ages.mean())
    assert resolved["age"].normalizer.variance == pytest.approx(ages.var())


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"format_version": 1}', "must have `columns`"),
        ('{"format_version": 2, "analyzers": []}', "format_version"),
        ('{"format_version": 1, "analyzers": [{"analyzer": "vocabulary"}]}', "key"),
        (
            '{"format_version": 1, "analyzers": [{"analyzer": "quantiles", "key": "x"}]}',
            "Received: num_bins=None",
        ),
        (
            '{"format_version": 1, "analyzers": [{"analyzer": "moments", "key": "x", "k": 1}]}',
            "Unknown field",
        ),
        (
            '{"format_version": 1, "analyzers": [{"analyzer": "vocabulary", "key": "c"}, '
            '{"analyzer": "vocabulary", "key": "c", "top_k": 5}]}',
            "one vocabulary per feature",
        ),
    ],
)
def test_load_requests_errors(spec: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_requests(spec)


def test_analysis_save_load_round_trip(tmp_path: Path) -> None:
    reqs = load_requests(
        {
            "format_version": 1,
            "analyzers": [
                {"analyzer": "vocabulary", "key": "city"},
                {"analyzer": "vocabulary", "key": "tags"},
                {"analyzer": "vocabulary", "key": "age", "min_frequency": 5},
                {"analyzer": "quantiles", "key": "income", "num_bins": 5},
                {"analyzer": "moments", "key": "income"},
            ],
        }
    )
    result = analyze_records(_file(_rows()), reqs)
    result.save(str(tmp_path))
    back = Analysis.load(tmp_path)
    assert back.vocabularies == result.vocabularies
    assert back.quantiles == result.quantiles
    assert back.moments_by_key == result.moments_by_key
    assert back.requests == result.requests
    assert back.statistics == json.loads((tmp_path / "statistics.json").read_text())
    doc = json.loads((tmp_path / "analysis.json").read_text())
    assert doc["format_version"] == 1
    assert "featurepipe_version" in doc
    # Text files readable as they are; base64 where a value is not a clean text line.
    assert doc["vocabularies"]["city"]["encoding"] == "base64"  # b"\xff\x00"
    assert doc["vocabularies"]["tags"]["encoding"] == "base64"  # b"b\nc"
    assert doc["vocabularies"]["age"]["encoding"] == "decimal"
    age_file = (tmp_path / doc["vocabularies"]["age"]["file"]).read_text().split()
    assert [int(a) for a in age_file] == back.vocabulary("age")
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp-" in p.name) == []
    assert back.boundaries("income", 5) == list(result.quantiles[("income", 5)].boundaries)
    with pytest.raises(ConfigError, match="no vocabulary for 'nope'"):
        back.vocabulary("nope")
    with pytest.raises(ConfigError, match="no quantiles"):
        back.boundaries("income", 7)


def test_analysis_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"No analysis\.json"):
        Analysis.load(tmp_path)
    (tmp_path / "analysis.json").write_text('{"format_version": 99}')
    with pytest.raises(ConfigError, match="Upgrade featurepipe"):
        Analysis.load(tmp_path)


def test_analysis_vocabulary_file_mismatch(tmp_path: Path) -> None:
    reqs = [AnalyzerRequest("vocabulary", "city")]
    analyze_records(_file(_rows(50)), reqs, statistics=False).save(str(tmp_path))
    vocab = next(tmp_path.glob("vocab-000-city.txt"))
    vocab.write_bytes(vocab.read_bytes() + b"extra\n")
    with pytest.raises(DataError, match=r"analysis\.json says"):
        Analysis.load(tmp_path)


def test_analyze_records_kind_errors() -> None:
    with pytest.raises(DataError, match="'income' holds floats"):
        analyze_records(_file(_rows(10)), [AnalyzerRequest("vocabulary", "income")])
    with pytest.raises(DataError, match="'city' holds bytes"):
        analyze_records(_file(_rows(10)), [AnalyzerRequest("quantiles", "city", num_bins=2)])
    mixed = [{"v": 1}, {"v": b"x"}]
    buf = io.BytesIO()
    with TFRecordWriter(buf) as w:
        for row in mixed:
            w.write(encode_example(row))
    buf.seek(0)
    with pytest.raises(DataError, match="mixed_kind"):
        analyze_records(buf, [AnalyzerRequest("vocabulary", "v")], batch_size=1)


def test_analyze_records_absent_feature_gives_empty_results() -> None:
    reqs = [
        AnalyzerRequest("vocabulary", "nope"),
        AnalyzerRequest("quantiles", "nope", num_bins=3),
        AnalyzerRequest("moments", "nope"),
    ]
    result = analyze_records(_file(_rows(20)), reqs)
    assert result.vocabulary("nope") == []
    assert result.boundaries("nope", 3) == []
    assert result.moments("nope")["count"] == 0.0
    assert result.num_examples == 20


def test_vocabulary_file_edge_values(tmp_path: Path) -> None:
    rows = [{"w": b""}, {"w": b""}, {"w": "é".encode()}, {"n": -3}, {"n": 2**40}]
    reqs = [AnalyzerRequest("vocabulary", "w"), AnalyzerRequest("vocabulary", "n")]
    analyze_records(_file(rows), reqs, statistics=False).save(str(tmp_path))
    back = Analysis.load(tmp_path)
    assert back.vocabulary("w") == ["", "é"]
    assert back.vocabulary("n") == [-3, 2**40]
    assert (tmp_path / "vocab-001-w.txt").read_bytes() == "\né\n".encode()
    assert (tmp_path / "vocab-001-w.freq.txt").read_text() == "2\n1\n"
