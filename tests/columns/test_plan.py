"""featurepipe.columns._plan: the compiled column plan, without TensorFlow.

The plan's arrays equal the numpy transform's outputs (``transform_features``)
for numeric, bucketized, hashed, vocabulary, identity, embedding and crossed
columns on dense and variable-length features; a subprocess checks that
compiling and running a plan never imports TensorFlow. (tests/keras/test_compiled.py
compares the same plan with the TF ops, through ``make_dataset``.)
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
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
    Normalizer,
    NumericColumn,
    PlanFeature,
    Ragged,
    VocabularyColumn,
    WeightedColumn,
    compile_columns,
    model_columns,
    native_columns_available,
    transform_features,
)
from featurepipe.example import encode_example

pytest.importorskip("farmhash")
pytestmark = pytest.mark.skipif(
    not native_columns_available(), reason="featurepipe._speedups not built"
)

WORDS = ["", "a", "b", "é", "日本", "zz", "x" * 70]

FEATURES = {
    "x": PlanFeature("float", (2,)),
    "n": PlanFeature("int64", (), 0),
    "s": PlanFeature("bytes", (), ""),
    "city": PlanFeature("bytes"),
    "tag": PlanFeature("int64"),
    "label": PlanFeature("float", ()),
}
DENSE = frozenset(k for k, f in FEATURES.items() if f.shape is not None)


def _specs() -> ColumnSpecs:
    nb = BucketizedColumn(
        NumericColumn(
            "n", dtype="int64", default_value=0, normalizer=Normalizer("log", offset=4.0)
        ),
        bin_boundaries=(0.5, 1.5, 2.0, 3.0),
    )
    city = VocabularyColumn("city", vocabulary=("a", "b", "é", "x" * 70), num_oov_buckets=3)
    return ColumnSpecs(
        (
            NumericColumn(
                "x", shape=(2,), normalizer=Normalizer("z_score", mean=0.5, variance=4.0)
            ),
            NumericColumn("n", dtype="int64", default_value=0),
            nb,
            BucketizedColumn(NumericColumn("x", shape=(2,)), bin_boundaries=(-1.0, 0.0, 1.0)),
            HashedColumn("s", 100),
            city,
            EmbeddingColumn(HashedColumn("city", 7), 4),
            IdentityColumn("tag", 8, default_value=0),
            CrossedColumn(("s", "city", nb), 101),
            CrossedColumn((city, "tag"), 2**40, hash_key=7),
        )
    )


def _rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {
            "x": rng.normal(size=2).astype(np.float32),
            "s": WORDS[int(rng.integers(0, len(WORDS)))],
            "city": np.array(
                [WORDS[j] for j in rng.integers(0, len(WORDS), int(rng.integers(0, 4)))],
                dtype=object,
            ),
            "tag": rng.integers(-1, 10, int(rng.integers(0, 3))).astype(np.int64),
            "label": float(i % 2),
        }
        if i % 3:
            row["n"] = int(rng.integers(-3, 50))  # else missing: the default 0
        rows.append(row)
    return rows


def _ragged(rows: list[dict[str, Any]]) -> dict[str, Ragged]:
    out = {}
    for key in ("x", "n", "s", "city", "tag", "label"):
        cells = []
        for row in rows:
            v = row.get(key)
            cells.append([] if v is None else list(np.atleast_1d(np.asarray(v, dtype=object))))
        rag = Ragged.from_rows(cells)
        if key in ("x", "label"):
            rag = Ragged(rag.values.astype(np.float32), rag.row_lengths)  # float_list: float32
        elif key in ("n", "tag"):
            rag = Ragged(rag.values.astype(np.int64), rag.row_lengths)
        out[key] = rag
    return out


@pytest.mark.parametrize("n", [1, 37, 256])
def test_plan_equals_the_numpy_transform(n: int) -> None:
    specs = _specs()
    plan = compile_columns(FEATURES, specs, label_key="label", dense_keys=DENSE)
    assert plan is not None
    assert plan.names == [name for name, _ in model_columns(specs)] + ["label"]
    assert plan.inputs == plan.names[:-1]
    rows = _rows(n, seed=n)
    got = plan.run([encode_example(r) for r in rows])
    assert got is not None
    want = transform_features(specs, _ragged(rows), n, dense_keys=DENSE)
    for name, arr in zip(plan.inputs, got, strict=False):
        expected = want[name]
        assert arr.shape[0] == n
        if isinstance(expected, Ragged):
            assert arr.dtype == np.int64
            # padded with -1 (and -1 where a dense '' is dropped): ids are never -1
            assert [r[r != -1].tolist() for r in arr] == expected.to_lists(), name
        else:
            assert arr.dtype == np.float32
            np.testing.assert_array_equal(arr, expected, err_msg=name)
    np.testing.assert_array_equal(got[-1], [float(i % 2) for i in range(n)])
    assert got[-1].shape == (n,)


def test_plan_gives_up_where_only_other_code_computes_it() -> None:
    weighted = ColumnSpecs((EmbeddingColumn(WeightedColumn(IdentityColumn("tag", 10), "w"), 2),))
    feats = {**FEATURES, "w": PlanFeature("float")}
    assert compile_columns(feats, weighted) is None
    numeric_bytes = ColumnSpecs((NumericColumn("s"),))
    assert compile_columns(FEATURES, numeric_bytes) is None
    unknown_shape = {"x": PlanFeature("float", (None,))}
    assert compile_columns(unknown_shape, ColumnSpecs((NumericColumn("x"),))) is None
    assert compile_columns({"x": PlanFeature("float16", (1,))}, [NumericColumn("x")]) is None
    missing = ColumnSpecs((HashedColumn("nowhere", 5),))
    assert compile_columns(FEATURES, missing) is None
    assert compile_columns(FEATURES, _specs(), label_key="city") is None  # not dense


def test_plan_gives_up_on_a_batch_it_does_not_decode_exactly() -> None:
    plan = compile_columns({"n": PlanFeature("int64", (), 0)}, [NumericColumn("n", dtype="int64")])
    assert plan is not None
    assert plan.run([encode_example({"n": 3})])[0].tolist() == [[3.0]]  # type: ignore[index]
    assert plan.run([encode_example({"n": [1.5]})]) is None  # a float_list where int64 is due


def test_compiling_and_running_a_plan_needs_no_tensorflow() -> None:
    script = textwrap.dedent(
        """
        import sys
        from featurepipe.columns import (
            HashedColumn, NumericColumn, PlanFeature, compile_columns, model_columns
        )
        from featurepipe.example import encode_example
        from featurepipe.tfrecord import batch_payloads, unit_batches

        feats = {"c": PlanFeature("bytes"), "x": PlanFeature("float", (1,), 0.0)}
        plan = compile_columns(feats, [HashedColumn("c", 10), NumericColumn("x")])
        ids, x = plan.run([encode_example({"c": ["a"], "x": [2.0]}), encode_example({})])
        print(ids.tolist(), x.tolist())
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
        print("frameworks:", loaded)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["[[9], [-1]] [[2.0], [0.0]]", "frameworks: []"]
