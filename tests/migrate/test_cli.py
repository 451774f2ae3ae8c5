"""``featurepipe migrate columns`` / ``migrate check`` end to end (in-process, TF imported once)."""

from __future__ import annotations

import json
import pathlib

import pytest

from featurepipe.cli.main import main
from featurepipe.columns import ColumnSpecs
from featurepipe.migrate import (
    MigratedColumns,
    load_feature_columns,
    migrate_feature_columns,
)
from tests.migrate.conftest import FC_ALL, NUM_ROWS, tf

pytestmark = pytest.mark.tf


def test_migrate_columns_writes_specs_keras_models_train_on(
    in_workdir: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    from featurepipe.keras import make_dataset, merge_columns, split_columns, wide_and_deep_model

    out = tmp_path / "columns.json"
    assert main(["migrate", "columns", f"{FC_ALL}:build_columns", "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "20 column(s) from" in err and "a_shared_embedding: EmbeddingColumn" in err
    specs = ColumnSpecs.load(out)
    expected = migrate_feature_columns(load_feature_columns(f"{FC_ALL}:build_columns"))
    assert specs == expected.columns
    assert json.loads(out.read_text())["migrated_from"] == "tf.feature_column"
    # the converted specs train a canned Keras model (the shared table is one weight)
    wide, deep = split_columns(specs)
    model = wide_and_deep_model(wide, deep, (4,))
    dense = model.get_layer("dnn_features")
    shared = [w for w in dense.weights if "shared" in w.name]
    assert len(shared) == 1 and tuple(shared[0].shape) == (4, 3)
    data = make_dataset(
        "data.tfrecord", batch_size=64, columns=merge_columns(wide, deep), label_key="label"
    )
    history = model.fit(data.take(2).repeat(), steps_per_epoch=2, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_migrate_columns_wide_and_deep_parts(
    in_workdir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    from featurepipe.keras import wide_and_deep_model

    out = tmp_path / "wd.json"
    argv = ["migrate", "columns", f"{FC_ALL}:wide_and_deep", "--output", str(out), "--quiet"]
    assert main(argv) == 0
    m = MigratedColumns.load(out)
    assert m.linear.names == ("a_X_b", "s", "x") and m.dnn.names == ("x", "s_embedding")
    model = wide_and_deep_model(m.linear, m.dnn, (4,))
    assert model.get_layer("linear").numeric == {"x": 1}  # x stays in the linear part


def test_migrate_columns_refusals_exit_2_naming_the_column(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = tmp_path / "norm_columns.py"
    user.write_text(
        "import tensorflow as tf\n"
        "def build():\n"
        "    return [tf.feature_column.numeric_column('price', normalizer_fn=lambda x: x / 2)]\n"
        "def seq():\n"
        "    return [tf.feature_column.sequence_numeric_column('clicks')]\n"
    )
    out = tmp_path / "c.json"
    assert main(["migrate", "columns", f"{user}:build", "--output", str(out)]) == 2
    assert "NumericColumn 'price' has normalizer_fn=<lambda>" in capsys.readouterr().err
    assert main(["migrate", "columns", f"{user}:seq", "--output", str(out)]) == 2
    assert "'clicks' is a sequence column" in capsys.readouterr().err
    assert not out.exists()


def test_migrate_check_exit_0_then_1_on_an_edited_columns_json(
    in_workdir: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cols = f"{FC_ALL}:build_columns"
    spec = tmp_path / "columns.json"
    assert main(["migrate", "columns", cols, "--output", str(spec), "--quiet"]) == 0
    base = ["migrate", "check", "--columns", cols, "--data", "data.tfrecord", "--spec", str(spec)]
    assert main(base) == 0
    text = capsys.readouterr().out
    assert f"on {NUM_ROWS:,} rows of 1 file(s)" in text and "faithful: every column" in text
    # edit the hash bucket count of column "s" in the file (the hash_bucket_size of TF)
    doc = json.loads(spec.read_text())
    for c in doc["columns"]:
        if c["class_name"] == "HashedColumn" and c["config"]["key"] == "s":
            c["config"]["num_bins"] = 49
    spec.write_text(json.dumps(doc))
    assert main([*base, "--json", "--examples", "2"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["faithful"] is False
    assert report["columns"]["differing_columns"] == ["s"]
    (s,) = [c for c in report["columns"]["columns"] if c["name"] == "s"]
    assert s["rows"] == NUM_ROWS and s["differing_rows"] > 0
    assert len(s["first_differences"]) == 2
    first = s["first_differences"][0]
    assert set(first) == {"row", "path", "record", "engine", "tensorflow", "featurepipe"}
    assert first["engine"] == "numpy"
    assert first["tensorflow"]["ids"] != first["featurepipe"]["ids"]
    assert report["outputs"] is None


def test_migrate_check_without_spec_and_usage_errors(
    in_workdir: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["migrate", "check", "--columns", f"{FC_ALL}:wide_and_deep", "--data", "data.tfrecord"]
    assert main([*base, "--max-rows", "20"]) == 0
    assert "on 20 rows" in capsys.readouterr().out
    assert main([*base, "--saved-model", "old/", "--migrated", "new.keras"]) == 2
    assert "No SavedModel in 'old/'" in capsys.readouterr().err
    assert main([*base, "--migrated", "new/"]) == 2  # half a pair
    assert "--saved-model OLD" in capsys.readouterr().err
    assert main([*base, "--tolerance", "-1"]) == 2
    assert main([*base[:-1], "nothing-*.tfrecord"]) == 2


@pytest.mark.parametrize("verb", [["migrate"], ["migrate", "columns"], ["migrate", "check"]])
def test_help_texts_have_examples(verb: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([*verb, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "tf.feature_column" in out
    if len(verb) == 2:
        assert "examples:\n  featurepipe migrate " + verb[1] in out


def test_tensorflow_is_the_users_import(tmp_path: pathlib.Path) -> None:
    # The columns module the user writes imports TensorFlow; featurepipe's CLI does not
    # before the command runs (tests/test_imports.py checks the parser as a whole).
    assert tf.__version__.startswith("2.")
