"""The Beam analyze job against the local engine: same artifacts for the same input."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

beam = pytest.importorskip("apache_beam")

from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from featurepipe.analysis._artifacts import (  # noqa: E402
    Analysis,
    AnalyzerRequest,
    analyze_records,
    load_requests,
)
from featurepipe.beam._analyze import AnalyzeDataset  # noqa: E402
from featurepipe.example._codec import encode_example  # noqa: E402
from featurepipe.tfrecord import TFRecordWriter  # noqa: E402

MULTI = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
SPEC = {
    "format_version": 1,
    "analyzers": [
        {"analyzer": "vocabulary", "key": "city", "top_k": 4},
        {"analyzer": "vocabulary", "key": "word"},
        {"analyzer": "vocabulary", "key": "code", "min_frequency": 3},
        {"analyzer": "vocabulary", "key": "raw"},
        {"analyzer": "vocabulary", "key": "absent"},
        {"analyzer": "quantiles", "key": "price", "num_bins": 10},
        {"analyzer": "quantiles", "key": "price", "num_bins": 3},
        {"analyzer": "quantiles", "key": "absent_num", "num_bins": 4},
        {"analyzer": "moments", "key": "price"},
        {"analyzer": "moments", "key": "code"},
    ],
}


def _rows(n: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(11)
    cities = [b"Oslo", b"Lima", b"Pune", b"Kyiv", b"Baku", b"Rome"]
    out = []
    for i in range(n):
        out.append(
            {
                # Ties on purpose: cities are uniform, so several share a count.
                "city": cities[i % len(cities)] if i % 7 else cities[i % 2],
                "word": [f"w{int(j)}".encode() for j in rng.zipf(1.6, int(rng.integers(1, 4)))],
                "code": int(rng.integers(-5, 40)),
                "raw": [b"line\nbreak", b"\xff", b"ok"][i % 3],
                "price": float(1e9 + rng.lognormal(0, 2)),
            }
        )
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], np.ndarray]:
    root = tmp_path_factory.mktemp("analyze")
    rows = _rows(3000)
    paths = []
    for s in range(3):
        path = root / (f"part-{s:05d}-of-00003.tfrecord" + (".gz" if s == 1 else ""))
        with TFRecordWriter(str(path), compression="gzip" if s == 1 else "none") as w:
            for row in rows[s::3]:
                w.write(encode_example(row))
        paths.append(str(path))
    prices = np.array([r["price"] for r in rows], dtype=np.float32).astype(np.float64)
    return paths, prices


def _run_beam(paths: list[str], out: Path, argv: list[str]) -> Analysis:
    requests = load_requests(json.dumps(SPEC))
    with beam.Pipeline(options=PipelineOptions(argv)) as p:
        _ = p | AnalyzeDataset(paths, requests, str(out), batch_size=256)
    return Analysis.load(out)


def _rank_error(data: np.ndarray, boundaries: list[float], num_bins: int) -> float:
    x = np.sort(data)
    worst = 0.0
    for i, b in enumerate(boundaries, start=1):
        target = i / num_bins * x.size
        lo, hi = np.searchsorted(x, b, "left"), np.searchsorted(x, b, "right")
        worst = max(worst, max(0.0, lo - target, target - hi) / x.size)
    return worst


@pytest.mark.parametrize("argv", [[], MULTI], ids=["in_process", "multi_processing"])
def test_beam_and_local_artifacts_agree(
    shards: tuple[list[str], np.ndarray], tmp_path: Path, argv: list[str]
) -> None:
    paths, prices = shards
    local_dir, beam_dir = tmp_path / "local", tmp_path / "beam"
    # Shard order must not matter: the local engine reads them reversed.
    local = analyze_records(list(reversed(paths)), load_requests(SPEC))
    local.save(str(local_dir))
    remote = _run_beam(paths, beam_dir, argv)

    assert remote.num_examples == local.num_examples == 3000
    # Vocabularies: identical files, byte for byte.
    local_doc = json.loads((local_dir / "analysis.json").read_text())
    beam_doc = json.loads((beam_dir / "analysis.json").read_text())
    assert local_doc["vocabularies"] == beam_doc["vocabularies"]
    for meta in local_doc["vocabularies"].values():
        for name in (meta["file"], meta["frequencies_file"]):
            assert (local_dir / name).read_bytes() == (beam_dir / name).read_bytes()
    assert remote.vocabularies == Analysis.load(local_dir).vocabularies
    assert local_doc["vocabularies"]["raw"]["encoding"] == "base64"
    assert local_doc["vocabularies"]["code"]["encoding"] == "decimal"
    assert local_doc["vocabularies"]["absent"]["size"] == 0
    cities = Counter(r["city"] for r in _rows(3000))
    expected = sorted(cities, key=lambda c: (-cities[c], c))[:4]  # count desc, then bytes asc
    assert len(set(cities.values())) < len(cities)  # there are ties to break
    assert remote.vocabulary("city") == [c.decode() for c in expected]
    assert remote.vocabulary("raw") == ["line\nbreak", "ok", "\udcff"]
    assert all(isinstance(v, int) for v in remote.vocabulary("code"))
    assert local_doc["requests"] == beam_doc["requests"]

    # Moments: equal to rounding.
    for key in ("price", "code"):
        lm, bm = local.moments(key), remote.moments(key)
        assert lm.keys() == bm.keys()
        for name in lm:
            assert bm[name] == pytest.approx(lm[name], rel=1e-9)
    assert remote.moments("price")["count"] == prices.size

    # Boundaries: within eps of the exact quantiles, both engines.
    for num_bins in (10, 3):
        for result in (local, remote):
            b = result.boundaries("price", num_bins)
            assert len(b) == num_bins - 1
            assert _rank_error(prices, b, num_bins) <= 0.01
    assert remote.boundaries("absent_num", 4) == []

    # Statistics: the same document up to float rounding.
    ls = json.loads((local_dir / "statistics.json").read_text())
    bs = json.loads((beam_dir / "statistics.json").read_text())
    assert ls["num_examples"] == bs["num_examples"] == 3000
    assert sorted(ls["sources"]) == sorted(bs["sources"])
    for lf, bf in zip(ls["features"], bs["features"], strict=True):
        assert lf["name"] == bf["name"]
        assert lf["value_counts"] == bf["value_counts"]
        assert lf["distinct_estimate"] == bf["distinct_estimate"]
        assert lf.get("bytes") == bf.get("bytes")


def test_pipeline_run_entry_point(shards: tuple[list[str], np.ndarray], tmp_path: Path) -> None:
    from pipelines.analyze import run

    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({"format_version": 1, "analyzers": [{"analyzer": "vocabulary", "key": "city"}]})
    )
    out = tmp_path / "artifacts"
    pattern = str(Path(shards[0][0]).parent / "part-*")
    written = run(
        ["--input", pattern, "--spec", str(spec), "--output", str(out), "--no_statistics"]
    )
    assert written == str(out / "analysis.json")
    doc = json.loads((out / "analysis.json").read_text())
    assert doc["format_version"] == 1
    assert doc["statistics"] is None
    assert not (out / "statistics.json").exists()
    cities = Counter(r["city"] for r in _rows(3000))
    assert Analysis.load(out).vocabulary("city") == [
        c.decode() for c in sorted(cities, key=lambda c: (-cities[c], c))
    ]


def test_beam_kind_mismatch_fails_with_feature_name(
    shards: tuple[list[str], np.ndarray], tmp_path: Path
) -> None:
    request = AnalyzerRequest("vocabulary", "price")
    with pytest.raises(Exception, match="'price' holds floats"), beam.Pipeline() as p:
        _ = p | AnalyzeDataset(shards[0][:1], [request], str(tmp_path / "x"))
    assert not (tmp_path / "x" / "analysis.json").exists()
