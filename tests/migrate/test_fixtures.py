"""The committed tf.estimator fixtures are consistent and TF 2.21 serves them.

``tests/testdata/estimators/make_fixtures.py`` (TensorFlow 2.15 +
tensorflow-estimator) trained the Estimators, exported them and wrote what
every signature of each SavedModel returns for all of ``data/eval.tfrecord``
into ``outputs.npz``. Here the dev TensorFlow loads the same SavedModels with
``tf.saved_model.load`` and calls every signature on the same records: the
outputs must agree (floats within 1e-6), the signature names, keys, dtypes and
shapes must be those in ``signatures.json``, and the checkpoint in
``model_dir/`` must hold exactly the variables of ``variables.txt``.
"""

from __future__ import annotations

import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

from featurepipe.tfrecord import read_records  # noqa: E402
from tests.testdata import estimators  # noqa: E402
from tests.testdata.estimators import (  # noqa: E402
    estimator_fixtures,
    feature_columns_module,
    make_fixtures,
)

FIXTURES = estimator_fixtures()  # fixtures.tar.xz, unpacked once into a cache folder
CASES = sorted(p.parent.name for p in FIXTURES.glob("*/case.json"))


def test_all_cases_present() -> None:
    assert (
        sorted(
            [
                "dnn_linear_binary",
                "dnn_linear_regressor",
                "dnn_multiclass",
                "dnn_regressor",
                "linear_binary",
                "linear_regressor",
                "v1_dnn_linear_multiclass",
                "v1_linear_binary",
            ]
        )
        == CASES
    )


@pytest.fixture(scope="module")
def eval_records() -> list[bytes]:
    records = [bytes(r) for r in read_records(str(FIXTURES / "data" / "eval.tfrecord"))]
    assert len(records) >= 500
    return records


def _case(case: str) -> dict[str, Any]:
    with open(FIXTURES / case / "case.json") as f:
        rec: dict[str, Any] = json.load(f)
    return rec


@pytest.mark.parametrize("case", CASES)
def test_saved_model_reproduces_outputs(case: str, eval_records: list[bytes]) -> None:
    rec = _case(case)
    with open(FIXTURES / case / "signatures.json") as f:
        sigs = json.load(f)
    loaded = tf.saved_model.load(str(FIXTURES / case / rec["export_dir"]))
    assert sorted(loaded.signatures.keys()) == sorted(sigs)
    want = np.load(FIXTURES / case / "outputs.npz")
    seen = set()
    batch = tf.constant(eval_records)
    for name, sig in sigs.items():
        fn = loaded.signatures[name]
        (key,) = sig["inputs"]
        assert fn.structured_input_signature[1][key].dtype == tf.string
        got = fn(**{key: batch})
        assert sorted(got) == sorted(sig["outputs"]), name
        for out, value in got.items():
            k = f"{name}/{out}"
            seen.add(k)
            exp = want[k]
            arr = value.numpy()
            assert arr.dtype.name == sig["outputs"][out]["dtype"] or (
                sig["outputs"][out]["dtype"] == "string" and arr.dtype == object
            ), k
            assert arr.shape == exp.shape and arr.shape[0] == len(eval_records), k
            shape = sig["outputs"][out]["shape"]
            assert [len(eval_records) if d == -1 else d for d in shape] == list(arr.shape), k
            if arr.dtype == object:
                np.testing.assert_array_equal(arr.astype(bytes), exp, err_msg=k)
            elif arr.dtype.kind == "f":
                np.testing.assert_allclose(arr, exp, rtol=1e-6, atol=1e-6, err_msg=k)
            else:
                np.testing.assert_array_equal(arr, exp, err_msg=k)
    assert seen == set(want.files)


@pytest.mark.parametrize("case", CASES)
def test_checkpoint_matches_variables_txt(case: str) -> None:
    rec = _case(case)
    model_dir = str(FIXTURES / case / "model_dir")
    reader = tf.train.load_checkpoint(model_dir)
    dtypes = reader.get_variable_to_dtype_map()
    got = [
        f"{name}\t{json.dumps(list(shape))}\t{dtypes[name].name}"
        for name, shape in tf.train.list_variables(model_dir)
    ]
    with open(FIXTURES / case / "variables.txt") as f:
        assert got == f.read().splitlines()
    assert int(reader.get_tensor("global_step")) == rec["global_step"]


def test_feature_columns_import_under_dev_tensorflow() -> None:
    """The column code runs under this TensorFlow (what `migrate columns` imports)."""
    fcd = feature_columns_module()
    for case in fcd.CASES:
        cols = getattr(fcd, case)()
        if isinstance(cols, dict):
            assert sorted(cols) == ["dnn_feature_columns", "linear_feature_columns"]
            assert cols["linear_feature_columns"] and cols["dnn_feature_columns"]
        else:
            assert cols


def test_archive_is_deterministic_and_whole(tmp_path: Path) -> None:
    """fixtures.tar.xz: sorted plain files, fixed metadata, and `make_fixtures.py --pack`
    of its own content gives the same tar bytes (so a regeneration with the same
    content changes nothing); the unpacked folder holds all of it."""
    archive = estimators.ARCHIVE
    with tarfile.open(archive, "r:xz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert {n.split("/")[0] for n in names} == {"data", *CASES}
    for m in members:
        assert m.isfile(), m.name
        assert (m.mode, m.uid, m.gid, m.uname, m.gname) == (0o644, 0, 0, "", ""), m.name
        assert m.mtime == make_fixtures.ARCHIVE_MTIME, m.name
        assert (FIXTURES / m.name).stat().st_size == m.size, m.name
    assert (FIXTURES / "feature_columns_def.py").read_bytes() == estimators.COLUMNS.read_bytes()

    work = tmp_path / "estimators"
    shutil.copytree(FIXTURES, work)
    shutil.copy(estimators.HERE / "make_fixtures.py", work)
    run = subprocess.run(
        [sys.executable, str(work / "make_fixtures.py"), "--pack"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert lzma.decompress((work / "fixtures.tar.xz").read_bytes()) == lzma.decompress(
        archive.read_bytes()
    )
