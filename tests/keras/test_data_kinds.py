"""make_dataset on `featurepipe convert` output: the label's kind comes from the schema beside
the shards (PREFIX.schema.json), else from the first records, else a ConfigError at construction."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

tf = pytest.importorskip("tensorflow")

from featurepipe.cli.main import main  # noqa: E402
from featurepipe.columns import ColumnSpecs, HashedColumn, IndicatorColumn, NumericColumn  # noqa: E402
from featurepipe.errors import ConfigError  # noqa: E402
from featurepipe.example import encode_example  # noqa: E402
from featurepipe.keras import label_kind, make_dataset, schema_beside  # noqa: E402
from featurepipe.tfrecord import write_records  # noqa: E402

ROWS = 60


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("conv")
    lines = ["carat,cut,price"]
    for i in range(ROWS):
        lines.append(f"{0.2 + i / 100:.2f},{['Ideal', 'Good', 'Fair'][i % 3]},{300 + 7 * i}")
    (d / "diamonds.csv").write_text("\n".join(lines) + "\n")
    args = ["convert", str(d / "diamonds.csv"), "--output", str(d / "out" / "diamonds"),
            "--num-shards", "2", "--compression", "gzip"]  # fmt: skip
    assert main(args) == 0
    assert (d / "out" / "diamonds.schema.json").exists()
    return d / "out"


SPECS = ColumnSpecs((NumericColumn("carat"), IndicatorColumn(HashedColumn("cut", 8))))


def _labels(ds: tf.data.Dataset) -> list[int]:
    out: list[int] = []
    for _, label in ds:
        assert label.dtype == tf.int64
        out.extend(label.numpy().tolist())
    return out


@pytest.mark.parametrize("native", [None, False])
def test_int64_label_of_convert_output_reads(converted: Path, native: bool | None) -> None:
    pattern = str(converted / "diamonds-*.tfrecord.gz")
    ds = make_dataset(pattern, batch_size=16, columns=SPECS, label_key="price", native=native,
                      shuffle=False, num_parallel_reads=1)  # fmt: skip
    assert sorted(_labels(ds)) == [300 + 7 * i for i in range(ROWS)]
    # PREFIX@N names the same shards, and the same schema
    ds = make_dataset(str(converted / "diamonds@2.tfrecord.gz"), batch_size=16, columns=SPECS,
                      label_key="price", shuffle=False)  # fmt: skip
    assert len(_labels(ds)) == ROWS


def test_schema_beside_and_label_kind(converted: Path, tmp_path: Path) -> None:
    files = sorted(str(p) for p in converted.glob("diamonds-*.tfrecord.gz"))
    found = schema_beside(files)
    assert found is not None
    schema, path = found
    assert path == str(converted / "diamonds.schema.json")
    assert (schema["price"].kind, schema["carat"].kind, schema["cut"].kind) == (
        "int64", "float", "bytes",
    )  # fmt: skip
    assert label_kind(files, "carat") == "float"
    # Without the schema file the first records tell.
    for f in files:
        shutil.copy(f, tmp_path)
    copies = sorted(str(p) for p in tmp_path.glob("diamonds-*"))
    assert schema_beside(copies) is None
    assert label_kind(copies, "price") == "int64"
    ds = make_dataset(copies, batch_size=64, columns=SPECS, label_key="price", shuffle=False)
    assert len(_labels(ds)) == ROWS
    # A file of another name has no schema beside it.
    assert schema_beside([str(converted / "diamonds.schema.json")]) is None


def test_label_kind_unknown_or_ambiguous_fails_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "mixed.tfrecord"
    rows = [{"x": 1.0, "y": 1, "w": 0.0}, {"x": 2.0, "y": 0.5, "w": 1.0}]
    write_records(path, [encode_example(r) for r in rows])
    with pytest.raises(ConfigError, match=r"No label 'z' in the first 2 records of .*mixed") as e:
        make_dataset(str(path), batch_size=2, columns=SPECS, label_key="z")
    assert "label_feature" in str(e.value)
    with pytest.raises(ConfigError, match=r"'y' holds more than one kind.*float in .*record 1.*"
                       r"int64 in .*record 0.*label_feature"):  # fmt: skip
        make_dataset(str(path), batch_size=2, columns=SPECS, label_key="y")
    # A float label from the records parses as float32.
    w = ColumnSpecs((NumericColumn("w"),))
    ds = make_dataset(str(path), batch_size=2, columns=w, label_key="x", shuffle=False)
    label = next(iter(ds))[1]
    assert label.dtype == tf.float32 and label.numpy().tolist() == [1.0, 2.0]
