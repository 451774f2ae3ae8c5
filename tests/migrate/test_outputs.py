"""``migrate check --saved-model OLD --migrated NEW``: the model-output comparison.

On the committed Estimator exports (tests/testdata/estimators, TF 2.15): a model
compared with itself is faithful; two different models (same head, same
signatures, other weights) are not, and the report names the rows.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from featurepipe.cli.main import main
from featurepipe.errors import ConfigError
from featurepipe.migrate import compare_saved_models, resolve_saved_model
from tests.migrate.conftest import tf  # noqa: F401  (imports TensorFlow once, quietly)
from tests.testdata.estimators import estimator_fixtures

pytestmark = pytest.mark.tf

FIXTURES = estimator_fixtures()  # fixtures.tar.xz, unpacked once into a cache folder
EVAL = str(FIXTURES / "data" / "eval.tfrecord")


def _export(case: str) -> str:
    return resolve_saved_model(FIXTURES / case / "export")


def test_a_model_against_itself_is_faithful(capsys: pytest.CaptureFixture[str]) -> None:
    old = _export("linear_binary")
    argv = ["migrate", "check", "--saved-model", old, "--migrated", old, "--data", EVAL]
    assert main([*argv, "--max-rows", "200"]) == 0
    out = capsys.readouterr().out
    assert "signature classification:" in out and "faithful: every signature" in out
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    outputs = doc["outputs"]
    assert doc["faithful"] and outputs["faithful"] and outputs["rows"] == 500
    assert sorted(outputs["signatures"]) == [
        "classification",
        "predict",
        "regression",
        "serving_default",
    ]
    predict = outputs["signatures"]["predict"]["outputs"]
    assert set(predict) >= {"logits", "logistic", "probabilities", "class_ids", "classes"}
    assert all(v["differing"] == 0 and v["max_abs_diff"] == 0.0 for v in predict.values())


def test_other_weights_differ_and_the_rows_are_named(tmp_path: pathlib.Path) -> None:
    # The TF1 linear classifier has the V2 one's head and signatures, other weights.
    old, new = _export("linear_binary"), _export("v1_linear_binary")
    # The OUT directory layout of `migrate estimator` (export/<timestamp>/) resolves too.
    out_dir = tmp_path / "migrated"
    shutil.copytree(new, out_dir / "export" / "1700000000")
    section = compare_saved_models(old, out_dir, EVAL, worst=3)
    assert not section["faithful"]
    assert section["new"].endswith("1700000000")
    logits = section["signatures"]["predict"]["outputs"]["logits"]
    assert logits["differing"] > 0 and logits["max_abs_diff"] > 1e-3
    worst = logits["worst_rows"]
    assert len(worst) == 3
    assert worst[0]["abs_diff"] == pytest.approx(logits["max_abs_diff"])
    assert worst[0]["path"] == EVAL and worst[0]["record"] == worst[0]["row"]
    assert worst[0]["offset"] >= 0
    diffs = [w["abs_diff"] for w in worst]
    assert diffs == sorted(diffs, reverse=True)


def test_a_changed_contract_is_reported(tmp_path: pathlib.Path) -> None:
    # A regressor's export against a classifier's: other signatures and keys.
    section = compare_saved_models(
        _export("linear_binary"), _export("linear_regressor"), EVAL, max_rows=50
    )
    assert not section["faithful"]
    assert "classification" in section["missing_signatures"]
    contract = section["signatures"]["predict"]["contract_problems"]
    assert any("missing output keys" in p for p in contract)


def test_cli_exits_1_on_differences_and_2_on_half_a_pair(
    capsys: pytest.CaptureFixture[str],
) -> None:
    old, new = _export("linear_binary"), _export("v1_linear_binary")
    argv = ["migrate", "check", "--saved-model", old, "--migrated", new, "--data", EVAL]
    assert main([*argv, "--max-rows", "100"]) == 1
    out = capsys.readouterr().out
    assert "DIFFERS" in out and "NOT faithful" in out and "record" in out
    assert main(["migrate", "check", "--saved-model", old, "--data", EVAL]) == 2
    assert "--migrated" in capsys.readouterr().err


def test_no_saved_model_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match=r"saved_model\.pb"):
        resolve_saved_model(tmp_path)


def test_the_three_commands_on_a_real_estimator(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """README's story: migrate columns -> migrate estimator -> migrate check, exit 0."""
    monkeypatch.chdir(FIXTURES)  # the column code names its vocabulary file relatively
    cols = f"{FIXTURES / 'feature_columns_def.py'}:linear_binary"
    spec = tmp_path / "columns.json"
    assert main(["migrate", "columns", cols, "--output", str(spec), "--quiet"]) == 0
    out = tmp_path / "migrated"
    case_args = json.dumps({"n_classes": 2, "weight_column": "weight"})
    argv = [
        "migrate",
        "estimator",
        str(FIXTURES / "linear_binary" / "model_dir"),
        "--columns",
        cols,
        "--estimator",
        "LinearClassifier",
        "--case-args",
        case_args,
        "--output",
        str(out),
    ]
    assert main(argv) == 0
    assert (out / "model.keras").is_file() and (out / "migration.json").is_file()
    capsys.readouterr()
    check = [
        "migrate",
        "check",
        "--columns",
        cols,
        "--spec",
        str(spec),
        "--data",
        EVAL,
        "--saved-model",
        _export("linear_binary"),
        "--migrated",
        str(out),
        "--json",
    ]
    assert main(check) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["faithful"] and doc["columns"]["faithful"] and doc["outputs"]["faithful"]
    assert doc["outputs"]["rows"] == 500 and not doc["outputs"]["missing_signatures"]
    worst = max(
        v["max_abs_diff"]
        for sig in doc["outputs"]["signatures"].values()
        for v in sig["outputs"].values()
    )
    assert worst < 1e-5
