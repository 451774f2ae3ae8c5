"""Runs in a subprocess: train / predict canned models on one Keras backend.

``python backend_worker.py BACKEND WORKDIR [--no-tensorflow]``: with
``--no-tensorflow``, ``import tensorflow`` fails in this process (set before
anything imports it), and ``KERAS_BACKEND`` is set before keras is imported.
Writes ``WORKDIR/<backend>.json`` (losses per epoch, the backend keras used,
whether TensorFlow was imported) and ``WORKDIR/pred-<model>-<backend>.npy``, the
predictions of one seeded set of weights.
"""

from __future__ import annotations

import json
import os
import sys

if __name__ == "__main__":
    BACKEND = sys.argv[1]
    WORKDIR = sys.argv[2]
    if "--no-tensorflow" in sys.argv:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    os.environ["KERAS_BACKEND"] = BACKEND
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

from collections.abc import Iterator
from typing import Any

import numpy as np

from featurepipe.columns import (
    BucketizedColumn,
    ColumnSpecs,
    CrossedColumn,
    EmbeddingColumn,
    HashedColumn,
    IndicatorColumn,
    NumericColumn,
    PlanFeature,
    VocabularyColumn,
    compile_columns,
)
from featurepipe.example import encode_example

CITIES = ["paris", "rome", "oslo", "lima", "nowhere"]
MODELS = ("linear", "dnn", "wide_and_deep")


def make_records(n: int, seed: int = 0) -> list[bytes]:
    """Examples whose labels depend on the features (a model can learn them)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        c = int(rng.integers(0, len(CITIES)))
        x = float(rng.normal())
        tags = [f"t{int(t)}" for t in rng.integers(0, 6, int(rng.integers(0, 4)))]
        score = 1.5 * x + (1.0 if c < 2 else -1.0) + 0.3 * len(tags)
        feats: dict[str, Any] = {"x": x, "city": CITIES[c], "label": int(score > 0.3)}
        if tags:
            feats["tag"] = tags
        out.append(encode_example(feats))
    return out


def make_specs() -> ColumnSpecs:
    """Embedding, indicator, numeric, bucketized and crossed columns."""
    x = NumericColumn("x", default_value=0.0)
    xb = BucketizedColumn(x, bin_boundaries=(-1.0, 0.0, 1.0))
    city = VocabularyColumn("city", vocabulary=tuple(CITIES[:4]), num_oov_buckets=1)
    tag = HashedColumn("tag", 16)
    return ColumnSpecs(
        (
            x,
            xb,
            EmbeddingColumn(city, 3, combiner="mean"),
            IndicatorColumn(tag),
            EmbeddingColumn(tag, 2, combiner="sqrtn"),
            CrossedColumn(("city", xb), 32),
        )
    )


PLAN_FEATURES = {
    "x": PlanFeature("float", (1,), 0.0),
    "city": PlanFeature("bytes"),
    "tag": PlanFeature("bytes"),
    "label": PlanFeature("int64", (1,), None),
}


def make_batches(records: list[bytes], specs: ColumnSpecs, batch_size: int) -> list[Any]:
    """``(features, label)`` numpy batches, as featurepipe.data's Loader yields them."""
    plan = compile_columns(PLAN_FEATURES, specs, label_key="label")
    assert plan is not None, "the compiled column path is needed"
    out = []
    for i in range(0, len(records), batch_size):
        arrays = plan.run(records[i : i + batch_size])
        assert arrays is not None
        features = {n: np.array(a) for n, a in zip(plan.inputs, arrays, strict=False)}
        out.append((features, np.asarray(arrays[-1], np.float32).reshape(-1, 1)))
    return out


class ListLoader:
    """The Loader protocol over precomputed batches (shuffled per epoch by ``set_epoch``)."""

    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[Any]:
        order = np.random.default_rng(self.epoch).permutation(len(self.batches))
        for i in order:
            yield self.batches[int(i)]


def build(kind: str, specs: ColumnSpecs) -> Any:
    from featurepipe.keras import dnn_model, linear_model, split_columns, wide_and_deep_model

    dense = ColumnSpecs(
        tuple(s for s in specs if not isinstance(s, CrossedColumn))  # the DNN's dense columns
    )
    if kind == "linear":
        return linear_model(specs), specs
    if kind == "dnn":
        return dnn_model(dense, (8, 4)), dense
    wide, deep = split_columns(specs)
    return wide_and_deep_model(wide, deep, (8, 4)), specs


def main() -> None:
    import keras

    from featurepipe.keras import loader_dataset

    keras.utils.set_random_seed(0)
    specs = make_specs()
    train = make_batches(make_records(256, seed=1), specs, 32)
    probe = make_batches(make_records(64, seed=2), specs, 64)[0][0]
    report: dict[str, Any] = {"backend": keras.backend.backend(), "losses": {}, "checked": []}
    for kind in MODELS:
        model, used = build(kind, specs)
        names = [t.name for t in keras.tree.flatten(model.input)]

        def pick(features: Any, label: Any, names: list[str] = names) -> Any:
            return {k: features[k] for k in names}, label

        ds = loader_dataset(ListLoader(train), map_fn=pick)
        history = model.fit(ds, epochs=4, verbose=0, shuffle=False).history
        report["losses"][kind] = [float(v) for v in history["loss"]]
        # Predictions of one set of weights agree across backends: every backend loads the
        # same seeded weights (the variables come in the same order on every backend).
        rng = np.random.default_rng(7)
        model.set_weights(
            [rng.normal(0.0, 0.3, w.shape).astype(w.dtype) for w in model.get_weights()]
        )
        inputs = {k: probe[k] for k in names}
        predicted = np.asarray(model.predict(inputs, batch_size=64, verbose=0))
        np.save(os.path.join(WORKDIR, f"pred-{kind}-{BACKEND}.npy"), predicted)
        report["checked"].append(kind)
    report["tensorflow_imported"] = sys.modules.get("tensorflow") is not None
    if not report["tensorflow_imported"]:
        import featurepipe.keras

        try:
            featurepipe.keras.export_serving  # noqa: B018 - needs TensorFlow
        except ImportError as e:
            report["export_error"] = str(e)
        from featurepipe.errors import ConfigError

        try:
            featurepipe.keras.DenseFeatures(build("dnn", specs)[1], preprocess=True)
        except ConfigError as e:
            report["preprocess_error"] = str(e)
    with open(os.path.join(WORKDIR, f"{BACKEND}.json"), "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
