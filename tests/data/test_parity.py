"""featurepipe.data gives the TF path's numbers: ``make_dataset(..., columns=..., shuffle=False)``.

Every column kind (numeric with normalizer / default / shape, bucketized,
hashed on strings and ints, vocabulary list and file with OOV buckets and a
default, identity with and without a default, crossed, embedding, indicator,
weighted), with the parse spec from the columns and from a schema, on the
compiled plan, in pure Python (``native=False``) and with
``FEATUREPIPE_PURE_PYTHON=1`` in a subprocess.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from featurepipe.columns import (
    BucketizedColumn,
    ColumnSpecs,
    CrossedColumn,
    EmbeddingColumn,
    HashedColumn,
    IdentityColumn,
    IndicatorColumn,
    Normalizer,
    NumericColumn,
    VocabularyColumn,
    WeightedColumn,
)
from featurepipe.data import Loader
from featurepipe.example import FeatureSchema, Schema, encode_example
from featurepipe.tfrecord import write_records

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["", "a", "b", "é", "日本", "zz", "🙂", "x" * 70]
BATCH = 16


def _examples(n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(0, 4))
        feats: dict[str, Any] = {
            "n": int(rng.integers(-3, 50)),
            "v": rng.normal(size=2).astype(np.float32),
            "s": WORDS[int(rng.integers(0, len(WORDS)))],
            "i": int(rng.integers(-2, 12)),
            "city": np.array([WORDS[j] for j in rng.integers(0, len(WORDS), k)], dtype=object),
            "tag": rng.integers(-1, 9, k).astype(np.int64),
            "w": rng.uniform(0.1, 2.0, k).astype(np.float32),
            "label": float(i % 2),
        }
        if i % 5 == 0:
            feats.pop("city")  # missing variable-length feature
        if i % 7 == 0:
            feats.pop("s")  # missing scalar: the default ""
        if i % 3 == 0:
            feats.pop("n")  # missing scalar: the default 0
        out.append(encode_example(feats))
    return out


def _specs(vocab_file: str) -> ColumnSpecs:
    nb = BucketizedColumn(
        NumericColumn(
            "n", dtype="int64", default_value=0, normalizer=Normalizer("log", offset=4.0)
        ),
        bin_boundaries=(0.5, 1.5, 2.0, 3.0),
    )
    vb = BucketizedColumn(NumericColumn("v", shape=(2,)), bin_boundaries=(-1.0, 0.0, 1.0))
    city_vocab = VocabularyColumn("city", vocabulary=vocab_file, num_oov_buckets=3)
    return ColumnSpecs(
        (
            NumericColumn(
                "n",
                dtype="int64",
                default_value=0,
                normalizer=Normalizer("z_score", mean=10.0, variance=4.0),
            ),
            NumericColumn("v", shape=(2,), normalizer=Normalizer("min_max", min=-2.0, max=2.0)),
            nb,
            vb,
            EmbeddingColumn(HashedColumn("s", 1000), 4),
            IndicatorColumn(VocabularyColumn("s", vocabulary=("a", "zz"), default_value=1)),
            EmbeddingColumn(city_vocab, 4),
            IndicatorColumn(HashedColumn("city", 7)),
            EmbeddingColumn(HashedColumn("tag", 50, dtype="int64"), 3),
            IndicatorColumn(IdentityColumn("i", 10, default_value=0)),
            IndicatorColumn(IdentityColumn("tag", 8)),
            EmbeddingColumn(
                VocabularyColumn("i", vocabulary=(1, 3, 5), dtype="int64", num_oov_buckets=4), 2
            ),
            EmbeddingColumn(CrossedColumn(("s", "city", nb), 101), 2),
            EmbeddingColumn(CrossedColumn((city_vocab, "i", vb), 2**40, hash_key=7), 2),
            HashedColumn("i", 13, dtype="int64"),
        )
    )


def _weighted() -> ColumnSpecs:
    return ColumnSpecs(
        (
            NumericColumn("v", shape=(2,)),
            WeightedColumn(IdentityColumn("tag", 9, default_value=0), "w"),
            EmbeddingColumn(WeightedColumn(HashedColumn("tag", 20, dtype="int64"), "w"), 2),
        )
    )


def _schema() -> Schema:
    return Schema(
        (
            FeatureSchema("n", "int64", shape=(), required=False, default=0),
            FeatureSchema("v", "float", shape=(2,)),
            FeatureSchema("s", "bytes", shape=(), required=False, default=""),
            FeatureSchema("i", "int64", shape=()),
            FeatureSchema("city", "bytes", shape=None),
            FeatureSchema("tag", "int64", shape=None),
            FeatureSchema("w", "float", shape=None),
            FeatureSchema("label", "float", shape=()),
        )
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("parity")
    files = []
    for f, n in enumerate([45, 38]):
        p = str(d / f"part-{f}.tfrecord")
        write_records(p, _examples(n, seed=f))
        files.append(p)
    vocab = d / "vocab.txt"
    vocab.write_text("a\nb\né\n日本\n" + "x" * 70 + "\n", encoding="utf-8")
    return {"files": files, "vocab": str(vocab)}


def _flat(batches: list[Any]) -> list[tuple[str, np.ndarray[Any, Any]]]:
    out = []
    for k, batch in enumerate(batches):
        feats, label = batch[0], batch[1]
        out += [(f"{k}/{name}", np.asarray(v)) for name, v in feats.items()]
        out.append((f"{k}/label", np.asarray(label)))
    return out


def _loader_batches(files: list[str], specs: ColumnSpecs, **kw: Any) -> list[Any]:
    return list(Loader(files, specs, batch_size=BATCH, label_key="label", **kw))


def _assert_equal(ours: list[Any], theirs: list[Any]) -> None:
    a, b = _flat(ours), _flat(theirs)
    assert [k for k, _ in a] == [k for k, _ in b]
    for (k, x), (_, y) in zip(a, b, strict=True):
        assert x.dtype == y.dtype, k
        assert x.shape == y.shape, k
        np.testing.assert_array_equal(x, y, err_msg=k)


@pytest.mark.tf
@pytest.mark.parametrize("kind", ["columns", "weighted"])
@pytest.mark.parametrize("use_schema", [False, True])
def test_same_numbers_as_make_dataset(data: dict[str, Any], kind: str, use_schema: bool) -> None:
    pytest.importorskip("tensorflow")
    from featurepipe.keras import make_dataset

    specs = _specs(data["vocab"]) if kind == "columns" else _weighted()
    kw: dict[str, Any] = {"schema": _schema()} if use_schema else {}
    ds = make_dataset(
        data["files"],
        batch_size=BATCH,
        columns=specs,
        label_key="label",
        shuffle=False,
        num_parallel_reads=1,
        native=False,
        **kw,
    )
    theirs = [
        (
            {k: v.numpy() for k, v in feats.items()},
            label.numpy(),
        )
        for feats, label in ds
    ]
    ours = _loader_batches(data["files"], specs, **kw)
    assert len(ours) == len(theirs) == 6
    assert list(ours[0][0]) == list(theirs[0][0])  # the Keras models' input order
    _assert_equal(ours, theirs)
    _assert_equal(_loader_batches(data["files"], specs, native=False, **kw), theirs)
    if kind == "columns":
        assert Loader(data["files"], specs, batch_size=BATCH, label_key="label", **kw).native


def _digest(batches: list[Any]) -> str:
    h = hashlib.sha256()
    for name, arr in _flat(batches):
        h.update(name.encode() + str(arr.dtype).encode() + str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from featurepipe._native import speedups
from featurepipe.data import Loader
import test_parity as t
assert speedups is None
specs = t._specs({vocab!r}) if {kind!r} == "columns" else t._weighted()
print(t._digest(t._loader_batches({files!r}, specs, shuffle=True, seed=3)))
"""


@pytest.mark.parametrize("kind", ["columns", "weighted"])
def test_pure_python_build_gives_the_same_numbers(data: dict[str, Any], kind: str) -> None:
    specs = _specs(data["vocab"]) if kind == "columns" else _weighted()
    ours = _digest(_loader_batches(data["files"], specs, shuffle=True, seed=3))
    code = _CHILD.format(
        tests=str(Path(__file__).parent), vocab=data["vocab"], kind=kind, files=data["files"]
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), FEATUREPIPE_PURE_PYTHON="1")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ours
