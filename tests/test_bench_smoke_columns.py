"""Smoke test of the feature-column benchmark (``python -m bench columns``) on ~2k rows.

The benchmark itself never runs here: this builds its plan, runs each input pipeline
in-process once over a tiny file, and checks that featurepipe's ids on the benchmark
data are the ids ``tf.feature_column`` computes.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROWS = 2048

datagen = pytest.importorskip("bench.datagen")
cplan = pytest.importorskip("bench.columns.plan")


def test_plan_is_deterministic_and_within_the_limits() -> None:
    a = cplan.make_plan(ROWS)
    assert a == cplan.make_plan(ROWS)
    assert set(a["boundaries"]) == set(cplan.BUCKETIZED)
    for b in a["boundaries"].values():
        assert 1 <= len(b) <= cplan.NUM_BUCKETS - 1
        assert all(x < y for x, y in itertools.pairwise(b))
    for k, vocab in a["vocabularies"].items():
        assert 0 < len(vocab) <= cplan.VOCAB_SIZE
        assert len(set(vocab)) == len(vocab), k
    for mean, var in a["moments"].values():
        assert np.isfinite(mean) and var > 0


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    pytest.importorskip("tensorflow")
    pytest.importorskip("keras")
    d = tmp_path_factory.mktemp("bench-columns")
    path = d / "criteo.tfrecord"
    datagen.write_criteo_tfrecord(path, num_rows=ROWS, processes=1)
    plan = cplan.make_plan(ROWS)
    plan_path = d / "plan.json"
    cplan.save_plan(plan, plan_path)
    return {"path": str(path), "plan": str(plan_path), "loaded": plan}


@pytest.mark.tf
def test_every_pipeline_yields_every_example(setup: dict[str, Any]) -> None:
    from bench.columns import worker

    for impl in worker.PIPELINES:
        report = worker.run_pipeline({"path": setup["path"], "plan": setup["plan"],
                                      "impl": impl})
        assert report["examples"] == ROWS, impl
        assert report["batches"] == -(-ROWS // cplan.BATCH_SIZE), impl
        assert report["outputs"] >= 39, impl


@pytest.mark.tf
def test_shuffled_pipelines_yield_every_example(setup: dict[str, Any]) -> None:
    from bench.columns import run, worker

    for impl, _, _ in run.SHUFFLED_ROWS:
        a = {"path": setup["path"], "plan": setup["plan"], "impl": impl, "shuffle": True}
        report = worker.run_pipeline(a)
        assert report["examples"] == ROWS, impl


@pytest.mark.tf
def test_featurepipe_ids_equal_tf_feature_column_on_the_bench_data(
        setup: dict[str, Any]) -> None:
    import tensorflow as tf

    from bench.columns import worker

    a = {"path": setup["path"], "plan": setup["plan"]}
    plan = setup["loaded"]
    ours, _ = next(iter(worker.ds_featurepipe_schema(a, plan)))
    ours_sparse_parse, _ = next(iter(worker.ds_featurepipe(a, plan)))
    theirs, _ = next(iter(worker.ds_tf_feature_column(a, plan)))
    assert set(ours) == set(ours_sparse_parse)
    for name in ours:  # the dense (schema) and sparse (column) parse give the same inputs
        np.testing.assert_array_equal(ours[name].numpy(), ours_sparse_parse[name].numpy())
    compared = 0
    for fc_name, value in theirs.items():
        if not isinstance(value, tf.SparseTensor):
            continue
        got = ours[f"{fc_name}_embedding"].numpy()
        want = tf.sparse.to_dense(value, default_value=-1).numpy()
        assert got.shape == want.shape, fc_name
        np.testing.assert_array_equal(got, want, err_msg=fc_name)
        compared += 1
    assert compared == len(cplan.HASHED) + len(cplan.VOCAB) + 1
    for k in cplan.ZSCORE:
        np.testing.assert_allclose(ours[k].numpy(), theirs[k].numpy(), rtol=1e-5, atol=1e-5)


def test_bench_columns_is_registered() -> None:
    import bench.__main__ as dispatch

    assert "columns" in dispatch.discover()
    assert Path(dispatch.discover()["columns"]).name == "run.py"
