"""The column check: tf.feature_column (TF 2.21) vs featurepipe on generated records.

Both ways: every converted column gives TensorFlow's ids and values on records
with every edge, and a column changed on purpose (bucket count, vocabulary,
default, normalizer, a dropped column) is reported with the rows where it
differs and TensorFlow's own values for them.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import numpy as np
import pytest

from featurepipe.columns import (
    ColumnSpecs,
    HashedColumn,
    IndicatorColumn,
    Normalizer,
    NumericColumn,
    VocabularyColumn,
)
from featurepipe.errors import DataError
from featurepipe.example import encode_example
from featurepipe.migrate import (
    CheckReport,
    check_columns,
    columns_from_feature_columns,
    load_feature_columns,
)
from featurepipe.tfrecord import TFRecordWriter
from tests.migrate.conftest import FC_ALL, NUM_ROWS, tf

pytestmark = pytest.mark.tf

fc = tf.feature_column


@pytest.fixture(scope="module")
def faithful(workdir: pathlib.Path) -> tuple[list[Any], ColumnSpecs, CheckReport]:
    """The columns of fc_all.py, their conversion, and the check of the two on the data."""
    import os

    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        cols = load_feature_columns(f"{FC_ALL}:build_columns")
        specs = columns_from_feature_columns(cols)
        report = check_columns(cols, "data.tfrecord", specs=specs, batch_size=128)
    finally:
        os.chdir(cwd)
    return cols, specs, report


def _replace(specs: ColumnSpecs, name: str, new: Any) -> ColumnSpecs:
    return ColumnSpecs(tuple(new if s.name == name else s for s in specs))


def test_every_column_is_faithful(faithful: tuple[list[Any], ColumnSpecs, CheckReport]) -> None:
    cols, _, report = faithful
    assert report.rows == NUM_ROWS
    assert [c.name for c in report.columns] == [c.name for c in cols]
    bad = [c.to_json() for c in report.columns if not c.faithful]
    assert not bad, bad
    assert all(c.rows == NUM_ROWS for c in report.columns)
    compared = {c.name: c.compared for c in report.columns}
    assert compared["x"] == ("values",)
    assert compared["t_weighted_by_tw_indicator"] == ("ids", "weights", "indicator")
    assert compared["a_shared_embedding"] == ("ids",)
    assert report.faithful
    doc = report.to_json()
    assert doc["faithful"] and doc["columns"]["differing_columns"] == []
    assert doc["outputs"] is None  # the model-output section (not implemented yet)
    assert "faithful: every column gives the same ids and values" in report.format()


def test_a_changed_hash_bucket_count_is_caught_with_tensorflows_ids(
    faithful: tuple[list[Any], ColumnSpecs, CheckReport], in_workdir: pathlib.Path
) -> None:
    cols, specs, _ = faithful
    changed = _replace(specs, "s", HashedColumn("s", 51))
    report = check_columns(cols, "data.tfrecord", specs=changed, max_differences=3)
    assert not report.faithful
    (bad,) = [c for c in report.columns if not c.faithful]
    assert bad.name == "s" and bad.rows == NUM_ROWS
    assert 0 < bad.differing < NUM_ROWS  # rows without "s" have no ids on both sides
    assert len(bad.differences) == 3
    from featurepipe.example import decode_example
    from featurepipe.tfrecord import read_records

    records = list(read_records("data.tfrecord"))
    for d in bad.differences:
        strings = decode_example(records[d.record])["s"].values.tolist()
        # the check's TF side is TensorFlow's hashing; its featurepipe side is the changed spec
        assert d.tensorflow["ids"] == tf.strings.to_hash_bucket_fast(strings, 50).numpy().tolist()
        assert d.featurepipe["ids"] == tf.strings.to_hash_bucket_fast(strings, 51).numpy().tolist()
        assert d.path is not None and d.path.endswith("data.tfrecord") and d.row == d.record
    text = report.format()
    assert "NOT faithful: 1 column(s) differ: s" in text and "ids: tensorflow  [" in text


def test_a_different_vocabulary_is_caught(
    faithful: tuple[list[Any], ColumnSpecs, CheckReport], in_workdir: pathlib.Path
) -> None:
    cols, specs, _ = faithful
    spec = specs["s_indicator"]
    vocab = spec.categorical_column.vocabulary
    swapped = (vocab[1], vocab[0], *vocab[2:])
    changed = _replace(
        specs,
        "s_indicator",
        IndicatorColumn(VocabularyColumn("s", swapped, num_oov_buckets=3)),
    )
    report = check_columns(cols, "data.tfrecord", specs=changed)
    bad = {c.name: c for c in report.columns if not c.faithful}
    assert set(bad) == {"s_indicator"}
    d = bad["s_indicator"].differences[0]
    assert d.tensorflow["ids"] != d.featurepipe["ids"]
    assert d.tensorflow["indicator"] != d.featurepipe["indicator"]


def test_a_changed_default_differs_exactly_on_the_rows_that_miss_the_feature(
    faithful: tuple[list[Any], ColumnSpecs, CheckReport], in_workdir: pathlib.Path
) -> None:
    cols, specs, _ = faithful
    changed = _replace(specs, "m", NumericColumn("m", default_value=0.0))
    report = check_columns(cols, "data.tfrecord", specs=changed, batch_size=64)
    (bad,) = [c for c in report.columns if not c.faithful]
    assert bad.name == "m"
    assert bad.differing == len(range(0, NUM_ROWS, 4))  # the fixture leaves m out when i % 4 == 0
    assert [d.row for d in bad.differences] == [0, 4, 8, 12, 16]
    assert bad.differences[1].tensorflow == {"values": [-1.5]}
    assert bad.differences[1].featurepipe == {"values": [0.0]}


def test_tolerance_applies_to_floats(
    faithful: tuple[list[Any], ColumnSpecs, CheckReport], in_workdir: pathlib.Path
) -> None:
    cols, specs, _ = faithful
    shifted = NumericColumn(
        "v", shape=(2,), normalizer=Normalizer("z_score", mean=3e-6, variance=1.0)
    )
    changed = _replace(specs, "v", shifted)
    assert check_columns(cols, "data.tfrecord", specs=changed, tolerance=1e-5).faithful
    strict = check_columns(cols, "data.tfrecord", specs=changed, tolerance=1e-7, max_rows=50)
    assert strict.rows == 50
    (bad,) = [c for c in strict.columns if not c.faithful]
    assert bad.name == "v" and bad.differing == 50


def test_missing_extra_and_mismatched_columns_are_problems(
    faithful: tuple[list[Any], ColumnSpecs, CheckReport], in_workdir: pathlib.Path
) -> None:
    cols, specs, _ = faithful
    kept = [s for s in specs if s.name not in ("j", "x")]
    changed = ColumnSpecs((*kept, HashedColumn("x", 4), HashedColumn("extra", 3)))
    report = check_columns(cols, "data.tfrecord", specs=changed, max_rows=10)
    problems = {c.name: c.problem for c in report.columns if not c.faithful}
    assert problems == {
        "j": "no featurepipe column of this name in the specs",
        "x": "featurepipe has a HashedColumn of this name, TensorFlow a NumericColumn",
        "extra": "not a column of the tf.feature_column code",
    }
    assert not report.faithful


def test_a_featurepipe_error_is_reported_on_its_rows(in_workdir: pathlib.Path) -> None:
    cols = [fc.numeric_column("m", default_value=-1.5)]
    strict = ColumnSpecs((NumericColumn("m"),))  # no default: featurepipe refuses missing rows
    report = check_columns(cols, "data.tfrecord", specs=strict, batch_size=100)
    (c,) = report.columns
    assert c.problem is not None and c.problem.startswith("featurepipe failed:")
    assert c.differing == NUM_ROWS  # every batch has a row without m
    assert "error" in c.differences[0].featurepipe


def test_records_tensorflow_cannot_parse_are_a_data_error(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "no_x.tfrecord"
    with TFRecordWriter(str(path)) as w:
        w.write(encode_example({"x": [1.0]}))
        w.write(encode_example({"y": [1.0]}))
    with pytest.raises(DataError, match=r"records 0\.\.1 of .*no_x.tfrecord"):
        check_columns([fc.numeric_column("x")], str(path))


def test_rows_across_files_and_batches_keep_their_place(tmp_path: pathlib.Path) -> None:
    rng = np.random.default_rng(1)
    paths = []
    for f in range(2):
        paths.append(str(tmp_path / f"part-{f}.tfrecord"))
        with TFRecordWriter(paths[-1]) as w:
            for _ in range(7):
                w.write(encode_example({"c": [f"v{int(v)}" for v in rng.integers(0, 9, 2)]}))
    col = fc.categorical_column_with_hash_bucket("c", 10)
    assert check_columns([col], str(tmp_path / "part-*.tfrecord"), batch_size=3).faithful
    report = check_columns(
        [col],
        [paths[1], paths[0]],
        specs=ColumnSpecs((HashedColumn("c", 11),)),
        batch_size=3,
        max_differences=100,
    )
    (c,) = report.columns
    assert report.files == [paths[1], paths[0]]
    places = [(d.row, d.path, d.record) for d in c.differences]
    assert (
        places == [(r, paths[1] if r < 7 else paths[0], r % 7) for r, *_ in places]
        and len(places) == c.differing > 7
    )


def test_wide_and_deep_dict(in_workdir: pathlib.Path) -> None:
    raw = load_feature_columns(f"{FC_ALL}:wide_and_deep")
    report = check_columns(raw, "data.tfrecord", max_rows=100)
    assert [c.name for c in report.columns] == ["a_X_b", "s", "x", "s_embedding"]
    assert report.faithful


def test_dataclass_replace_keeps_specs_valid() -> None:
    # guard for _replace above: specs are frozen dataclasses
    spec = HashedColumn("s", 50)
    assert dataclasses.replace(spec, num_bins=51).num_bins == 51


def test_engines_two_vocabularies_on_one_feature(in_workdir: pathlib.Path) -> None:
    # Two vocabulary columns of one feature with different vocabularies: the C plan and
    # ColumnTransform once shared one lookup table per feature (the first column's), and
    # the migrated model trained on wrong ids; the numpy path was right.
    from featurepipe.columns import native_columns_available

    colors = ["red", "green", "blue", "cyan", "magenta"]
    cols = [
        fc.indicator_column(
            fc.categorical_column_with_vocabulary_list("color", colors, num_oov_buckets=2)
        ),
        fc.embedding_column(
            fc.categorical_column_with_vocabulary_list("color", colors[:3], default_value=1), 2
        ),
        fc.numeric_column("x"),
        fc.crossed_column(["a", "b"], 30),
    ]
    report = check_columns(cols, "data.tfrecord")
    expected = ("numpy", "plan", "keras") if native_columns_available() else ("numpy", "keras")
    assert {c.engines for c in report.columns} == {expected}
    assert report.faithful, [c.to_json() for c in report.columns if not c.faithful]
    # each engine alone, and each one catches a changed column
    specs = columns_from_feature_columns(cols)
    changed = _replace(
        specs,
        "color_embedding",
        dataclasses.replace(
            specs["color_embedding"],
            categorical_column=VocabularyColumn("color", ("red", "blue", "green"), default_value=1),
        ),
    )
    for engine in expected:
        assert check_columns(cols, "data.tfrecord", engines=[engine]).faithful
        bad = check_columns(cols, "data.tfrecord", specs=changed, engines=[engine], max_rows=60)
        (c,) = [c for c in bad.columns if not c.faithful]
        assert c.name == "color_embedding" and c.engines == (engine,)
        assert {d.engine for d in c.differences} == {engine}


def test_padded_engines_skip_minus_one_ids_but_not_other_ids(in_workdir: pathlib.Path) -> None:
    # default_value=-1 gives -1 ids to out-of-vocabulary values: the numpy engine shows
    # them, the padded engines cannot (a -1 is padding there) and compare the rest.
    cols = [fc.categorical_column_with_vocabulary_list("s", ["red", "green"])]
    report = check_columns(cols, "data.tfrecord")
    assert report.faithful
    spec = VocabularyColumn("s", ("red", "green"), default_value=0)
    changed = check_columns(cols, "data.tfrecord", specs=ColumnSpecs((spec,)), max_differences=50)
    (c,) = changed.columns
    assert c.differing > 0
    for d in c.differences:
        assert -1 in d.tensorflow["ids"] and d.featurepipe["ids"] != d.tensorflow["ids"]
