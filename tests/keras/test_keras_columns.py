"""featurepipe.keras: ColumnTransform, DenseFeatures, make_dataset, save/load, training.

The same TFRecords go through two paths: TensorFlow (``make_dataset`` +
``ColumnTransform``) and the TF-free core (``decode_examples`` +
``featurepipe.columns._transform``); every id must agree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from featurepipe.columns._hashing import Ragged  # noqa: E402
from featurepipe.columns._specs import (  # noqa: E402
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
from featurepipe.columns._transform import (  # noqa: E402
    WeightedIds,
    combine_embeddings,
    encode_indicator,
    transform_features,
)
from featurepipe.errors import ConfigError  # noqa: E402
from featurepipe.example._codec import decode_examples, encode_example  # noqa: E402
from featurepipe.keras import (  # noqa: E402
    ColumnTransform,
    DenseFeatures,
    make_dataset,
    make_input_fn,
    model_inputs,
)
from featurepipe.tfrecord import write_records  # noqa: E402

pytestmark = pytest.mark.tf
WORDS = ["", "a", "b", "é", "日本", "zz", "🙂"]


def _examples(n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(0, 4))
        feats: dict[str, Any] = {
            "x": float(rng.normal()),
            "city": np.array([WORDS[j] for j in rng.integers(0, len(WORDS), k)], dtype=object),
            "tag": rng.integers(-1, 9, k).astype(np.int64),
            "tag_w": rng.uniform(0.5, 2.0, k).astype(np.float32),
            "label": float(i % 2),
        }
        if i % 5 == 0:
            feats.pop("city")  # missing feature
        out.append(encode_example(feats))
    return out


def _specs() -> ColumnSpecs:
    x = NumericColumn("x", normalizer=Normalizer("z_score", mean=0.0, variance=1.0))
    xb = BucketizedColumn(NumericColumn("x"), bin_boundaries=(-1.0, 0.0, 1.0))
    city = VocabularyColumn("city", vocabulary=("a", "b", "é"), num_oov_buckets=2)
    tags = WeightedColumn(IdentityColumn("tag", 10), "tag_w")
    return ColumnSpecs(
        (
            x,
            xb,
            EmbeddingColumn(city, 4, combiner="sqrtn"),
            IndicatorColumn(HashedColumn("city", 7), output_mode="multi_hot"),
            EmbeddingColumn(tags, 3, combiner="mean"),
            IndicatorColumn(tags),
            IndicatorColumn(CrossedColumn(("city", xb), 11)),
        )
    )


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    d = tmp_path_factory.mktemp("shards")
    paths = []
    for i, comp in enumerate(["none", "gzip", "zlib", "gzip"]):
        p = str(d / f"part-{i}.tfrecord")
        write_records(p, _examples(25, seed=i), comp if i else "none")  # type: ignore[arg-type]
        paths.append(p)
    return paths


def test_column_transform_matches_core_columns(shards: list[str]) -> None:
    specs = _specs()
    # one uncompressed file, in order: TF path vs core path on identical records
    ds = make_dataset(shards[0], batch_size=25, columns=specs, label_key="label", shuffle=False)
    inputs, labels = next(iter(ds))
    batch = decode_examples(_examples(25, seed=0))
    assert labels.numpy().tolist() == [float(i % 2) for i in range(25)]
    for spec in specs:
        name = spec.name
        inner = spec.categorical_column if hasattr(spec, "categorical_column") else spec
        ours = transform_features([inner], batch.columns, batch.num_rows)[inner.name]
        got = inputs[name].numpy()
        if isinstance(ours, np.ndarray):
            np.testing.assert_allclose(got, ours, rtol=1e-6)
            continue
        rag = ours.ids if isinstance(ours, WeightedIds) else ours
        rows = [[v for v in row if v != -1] for row in got.tolist()]
        expected = [[v for v in row if v != -1] for row in rag.to_lists()]
        assert rows == expected, name
        if isinstance(ours, WeightedIds):
            w = inputs[name + "__weights"].numpy()
            assert [[v for v in r if v] for r in w.tolist()] == [
                [pytest.approx(v) for v in r] for r in ours.weights.to_lists()
            ]


def test_dense_features_matches_numpy(shards: list[str]) -> None:
    specs = _specs()
    layer = DenseFeatures(specs, output_mode="dict")
    ds = make_dataset(shards[0], batch_size=25, columns=specs, shuffle=False)
    inputs = next(iter(ds))
    out = layer(inputs)
    assert list(out) == sorted(specs.names)
    batch = decode_examples(_examples(25, seed=0))
    for spec in specs:
        got = np.asarray(out[spec.name])
        if isinstance(spec, EmbeddingColumn):
            ids = transform_features([spec.categorical_column], batch.columns, 25)
            table = np.asarray(layer._tables[spec.name])
            want = combine_embeddings(table, ids[spec.categorical_column.name], spec.combiner)
        elif isinstance(spec, IndicatorColumn | BucketizedColumn):
            want = transform_features([spec], batch.columns, 25)[spec.name]
            if isinstance(spec, BucketizedColumn):
                want = encode_indicator(want, spec.num_ids)  # type: ignore[arg-type]
        else:
            want = transform_features([spec], batch.columns, 25)[spec.name]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=spec.name)
    concat = np.asarray(DenseFeatures(specs)(inputs))
    assert concat.shape == (25, 1 + 4 + 4 + 7 + 3 + 10 + 11)


def test_dense_features_rejects_bare_categorical() -> None:
    with pytest.raises(ConfigError, match=r"wrap it in EmbeddingColumn\(...\) or IndicatorColumn"):
        DenseFeatures(ColumnSpecs((HashedColumn("c", 3),)))
    with pytest.raises(ConfigError, match=r"Received: output_mode='stack'"):
        DenseFeatures(ColumnSpecs((NumericColumn("x"),)), output_mode="stack")


def _model(specs: ColumnSpecs) -> Any:
    inputs = model_inputs(specs)
    dense = DenseFeatures(specs)(inputs)
    hidden = keras.layers.Dense(8, activation="relu")(dense)
    out = keras.layers.Dense(1, activation="sigmoid")(hidden)
    return keras.Model(inputs, out)


def test_model_trains_and_loss_falls(shards: list[str]) -> None:
    keras.utils.set_random_seed(1)
    specs = _specs()
    model = _model(specs)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    ds = make_dataset(shards, batch_size=20, columns=specs, label_key="label", seed=3, num_epochs=1)
    history = model.fit(ds, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0] * 0.9, losses


def test_saved_model_reloads_in_fresh_process(shards: list[str], tmp_path: Path) -> None:
    keras.utils.set_random_seed(2)
    specs = _specs()
    model = _model(specs)
    path = tmp_path / "m.keras"
    model.save(path)
    ds = make_dataset(shards[1], batch_size=25, columns=specs, shuffle=False)
    inputs = next(iter(ds))
    want = np.asarray(model.predict(inputs, verbose=0))
    np.savez(tmp_path / "inputs.npz", **{k: v.numpy() for k, v in inputs.items()})
    code = (
        "import numpy as np, keras, featurepipe.keras, sys\n"
        f"m = keras.models.load_model({str(path)!r})\n"
        f"x = dict(np.load({str(tmp_path / 'inputs.npz')!r}))\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, np.asarray(m.predict(x, verbose=0)))\n"
        "layer = [l for l in m.layers if isinstance(l, featurepipe.keras.DenseFeatures)][0]\n"
        f"open({str(tmp_path / 'specs.json')!r}, 'w').write(layer.specs.to_json())\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), want)
    # the vocabularies travel as assets, not in the config, and come back whole
    assert ColumnSpecs.from_json((tmp_path / "specs.json").read_text()) == specs
    with zipfile.ZipFile(path) as z:
        config = z.read("config.json").decode()
        assets = [n for n in z.namelist() if n.startswith("assets/")]
    assert '"vocabulary": null' in config
    assert '"\\u00e9"' not in config and '"é"' not in config
    assert len(assets) == 1


def test_dense_features_vocabulary_assets_round_trip(shards: list[str], tmp_path: Path) -> None:
    specs = _specs()
    layer = DenseFeatures(specs, preprocess=True, dense_keys=["x"])
    raw = make_dataset(shards[0], batch_size=25, columns=specs, apply_columns=False, shuffle=False)
    parsed = next(iter(raw))
    want = np.asarray(layer(parsed))
    config = layer.get_config()
    assert config["vocabulary_assets"] == [["city", "string", 3]]
    clone = DenseFeatures.from_config(config)
    clone.set_weights(layer.get_weights())
    with pytest.raises(ConfigError, match=r"built from a config without its vocabularies"):
        clone(parsed)
    with pytest.raises(ConfigError, match=r"no vocabularies to save"):
        clone.save_assets(str(tmp_path))
    assert clone.get_config() == config  # a pending layer still describes itself
    layer.save_assets(str(tmp_path))
    clone.load_assets(str(tmp_path))
    assert clone.specs == specs
    np.testing.assert_array_equal(np.asarray(clone(parsed)), want)
    (tmp_path / "vocabulary_0.txt").write_text("a\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"has 1 values; the config says 3"):
        DenseFeatures.from_config(config).load_assets(str(tmp_path))


def test_make_dataset_options(shards: list[str]) -> None:
    specs = _specs()

    def labels(**kw: Any) -> list[float]:
        ds = make_dataset(shards, batch_size=10, columns=specs, label_key="label", **kw)
        return [float(v) for _, lab in ds for v in lab.numpy()]

    assert len(labels(shuffle=False)) == 100  # none + gzip + zlib shards, auto-detected
    assert labels(seed=7) == labels(seed=7)
    assert sorted(labels(seed=7)) == sorted(labels(shuffle=False))
    assert len(labels(shuffle=False, num_epochs=2)) == 200
    parts = [labels(shuffle=False, num_shards=2, shard_index=i) for i in range(2)]
    assert sum(len(p) for p in parts) == 100
    raw = make_dataset(shards[0], batch_size=5, columns=specs, apply_columns=False, shuffle=False)
    first = next(iter(raw))
    assert isinstance(first["city"], tf.SparseTensor)  # parse spec from the columns
    fn = make_input_fn(shards[0], batch_size=5, columns=specs, shuffle=False)
    assert callable(fn)
    assert isinstance(fn(), tf.data.Dataset)
    with pytest.raises(ConfigError, match=r"No files match"):
        make_dataset("/nonexistent/*.tfrecord", batch_size=1, columns=specs)
    with pytest.raises(ConfigError, match=r"Received: shard_index=2, num_shards=2"):
        make_dataset(shards, batch_size=1, columns=specs, num_shards=2, shard_index=2)
    with pytest.raises(ConfigError, match=r"Pass `schema`, `columns` or `features`"):
        make_dataset(shards, batch_size=1)


def test_column_transform_dense_inputs_drop_ignore_values() -> None:
    specs = ColumnSpecs(
        (
            HashedColumn("s", 50),
            CrossedColumn(("s", "t"), 100),
        )
    )
    s = np.array([["a", ""], ["", "c"]], dtype=object)
    t = Ragged.from_rows([["u"], ["v", "w"]])
    feats = {
        "s": tf.constant(s.tolist()),
        "t": tf.RaggedTensor.from_row_lengths(t.values.tolist(), t.row_lengths).to_sparse(),
    }
    out = ColumnTransform(specs, dense_keys={"s"})(feats)
    core = transform_features(specs, {"s": Ragged.from_dense(s), "t": t}, 2, dense_keys={"s"})
    for name in ("s", "s_X_t"):
        got = [[v for v in r if v != -1] for r in out[name].numpy().tolist()]
        assert got == core[name].to_lists(), name  # type: ignore[union-attr]


def test_dense_features_preprocess_takes_parsed_features(shards: list[str]) -> None:
    keras.utils.set_random_seed(4)
    specs = _specs()
    raw = make_dataset(shards[0], batch_size=25, columns=specs, apply_columns=False, shuffle=False)
    parsed = next(iter(raw))
    inner = DenseFeatures(specs)
    outer = DenseFeatures(specs, preprocess=True, dense_keys=["x"])
    outer.set_weights(inner.get_weights())
    want = np.asarray(inner(ColumnTransform(specs, dense_keys={"x"})(parsed)))
    np.testing.assert_array_equal(np.asarray(outer(parsed)), want)
    again = DenseFeatures.from_config(outer.get_config())
    assert again.preprocess
    assert again.dense_keys == ("x",)
    assert again.get_config() == outer.get_config()  # vocabularies: see the assets test


def test_saved_model_on_serialized_examples_reloads_in_fresh_process(tmp_path: Path) -> None:
    # The preprocess path tracks its lookup tables, so a tf.saved_model that takes
    # serialized tf.Example and calls the layer exports and reloads.
    from featurepipe.keras import parse_spec

    keras.utils.set_random_seed(5)
    specs = _specs()
    layer = DenseFeatures(specs, preprocess=True, dense_keys=["x"])
    head = keras.layers.Dense(1)
    spec = parse_spec(specs)

    class Serve(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.layer = layer
            self.head = head

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, serialized: Any) -> Any:
            return self.head(self.layer(tf.io.parse_example(serialized, spec)))

    records = _examples(10, seed=9)
    module = Serve()
    want = module(tf.constant(records)).numpy()
    tf.saved_model.save(module, str(tmp_path / "sm"))
    write_records(tmp_path / "records.tfrecord", records)
    code = (
        "import numpy as np, tensorflow as tf\n"
        f"m = tf.saved_model.load({str(tmp_path / 'sm')!r})\n"
        f"r = list(tf.data.TFRecordDataset({str(tmp_path / 'records.tfrecord')!r}))\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, m(tf.stack(r)).numpy())\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), want)


def test_parse_spec_from_columns_and_schema() -> None:
    from featurepipe.example._schema import FeatureSchema, Schema
    from featurepipe.keras import parse_spec, parse_spec_from_schema

    specs = ColumnSpecs(
        (
            IndicatorColumn(CrossedColumn(("tag", "city"), 5)),
            EmbeddingColumn(IdentityColumn("tag", 10), 2),
            NumericColumn("x", shape=(2,), default_value=0.0),
            NumericColumn("n", dtype="int64", default_value=-1.0),
        )
    )
    spec = parse_spec(specs)
    assert spec["n"] == tf.io.FixedLenFeature((1,), tf.int64, default_value=-1)
    assert spec["tag"].dtype == tf.int64  # from the identity column, not the cross
    assert spec["city"].dtype == tf.string
    assert isinstance(spec["x"], tf.io.FixedLenFeature)
    assert spec["x"].shape == (2,)
    schema = Schema(
        (
            FeatureSchema("s", "bytes", shape=(), required=False, default="na"),
            FeatureSchema("v", "int64"),
            FeatureSchema("f", "float", shape=(3,)),
        )
    )
    got = parse_spec_from_schema(schema)
    assert got["s"] == tf.io.FixedLenFeature((), tf.string, default_value=b"na")
    assert got["v"] == tf.io.VarLenFeature(tf.int64)
    assert got["f"] == tf.io.FixedLenFeature((3,), tf.float32)


def test_single_id_fast_paths_equal_the_general_reduction() -> None:
    from featurepipe.keras._layers import _embed, _indicator

    ids = np.array([[3], [-1], [0], [7], [-1], [2]], dtype=np.int32)
    wide = np.concatenate([ids, -np.ones_like(ids)], axis=1)  # the same ids, general path
    table = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    for combiner in ("mean", "sum", "sqrtn"):
        fast = np.asarray(_embed(table, ids, None, combiner, None))
        general = np.asarray(_embed(table, wide, None, combiner, None))
        np.testing.assert_array_equal(fast, general)
        assert not np.signbit(fast[1]).any()  # a missing id gives +0.0, as before
    for mode in ("count", "multi_hot"):
        fast = np.asarray(_indicator(ids, 5, mode, None))  # 7 is out of range: ignored
        np.testing.assert_array_equal(fast, np.asarray(_indicator(wide, 5, mode, None)))
        assert fast.sum() == 3


def test_make_dataset_reads_a_sharded_spec(tmp_path: Path) -> None:
    # `featurepipe inspect` accepted PREFIX@N while make_dataset did not: both now use
    # featurepipe.tfrecord.expand_paths.
    from featurepipe.tfrecord import sharded_paths

    spec = {"x": tf.io.FixedLenFeature([], tf.float32)}
    want: list[float] = []
    for i, p in enumerate(sharded_paths(str(tmp_path / "x"), 2)):
        recs = _examples(3, seed=10 + i)
        write_records(p, recs)
        want.extend(tf.io.parse_example(recs, spec)["x"].numpy().tolist())
    ds = make_dataset(str(tmp_path / "x@2"), batch_size=100, features=spec, shuffle=False)
    got = [float(v) for batch in ds for v in batch["x"].numpy()]
    assert len(got) == 6 and sorted(got) == sorted(want)  # both shards, every record
    with pytest.raises(ConfigError, match=r"No files match .*x@3"):
        make_dataset(str(tmp_path / "x@3"), batch_size=1, features=spec)
