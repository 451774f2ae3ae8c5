"""loader_dataset: featurepipe.data-style numpy batches as a keras PyDataset (current backend)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")

from featurepipe.columns import (  # noqa: E402
    ColumnSpecs,
    EmbeddingColumn,
    IdentityColumn,
    NumericColumn,
    WeightedColumn,
)
from featurepipe.errors import ConfigError  # noqa: E402
from featurepipe.keras import loader_dataset, wide_and_deep_model  # noqa: E402
from featurepipe.keras._loader import pad_id_widths  # noqa: E402


def test_pad_id_widths_pads_ids_and_their_weights() -> None:
    feats = {
        "c": np.array([[1, 2, 3], [4, -1, -1]], np.int64),
        "c__weights": np.array([[0.5, 1.0, 2.0], [1.0, 0.0, 0.0]], np.float32),
        "x": np.array([[1.0], [2.0]], np.float32),
    }
    out = pad_id_widths(feats, "pow2")
    assert out["c"].tolist() == [[1, 2, 3, -1], [4, -1, -1, -1]]
    assert out["c__weights"].tolist() == [[0.5, 1.0, 2.0, 0.0], [1.0, 0.0, 0.0, 0.0]]
    assert out["x"] is feats["x"]
    assert pad_id_widths(feats, 8)["c"].shape == (2, 8)
    assert pad_id_widths(feats, 2)["c"].shape == (2, 4)  # a multiple of 2
    assert pad_id_widths(feats, None)["c"] is feats["c"]
    empty = pad_id_widths({"c": np.zeros((2, 0), np.int64)}, "pow2")["c"]
    assert empty.tolist() == [[-1], [-1]]


W = "tag_weighted_by_tag_w"  # the model input names of the weighted column and its embedding


class Batches:
    """The Loader protocol: records set_epoch calls; batches of varying id widths."""

    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(0)
        self.batches = []
        for i in range(n):
            width = 1 + i % 5
            ids = rng.integers(-1, 6, (8, width)).astype(np.int64)
            weights = rng.random((8, width)).astype(np.float32)
            feats = {
                W: ids,
                W + "__weights": weights,
                W + "_embedding": ids,
                W + "_embedding__weights": weights,
                "x": rng.normal(size=(8, 1)).astype(np.float32),
            }
            label = (feats["x"][:, 0] > 0).astype(np.int64)
            self.batches.append((feats, label))
        self.epochs: list[int] = []

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __iter__(self) -> Iterator[Any]:
        yield from self.batches


def _specs() -> tuple[ColumnSpecs, ColumnSpecs]:
    tag = WeightedColumn(IdentityColumn("tag", 6), "tag_w")
    return ColumnSpecs((tag,)), ColumnSpecs((NumericColumn("x"), EmbeddingColumn(tag, 3)))


def test_fit_sets_each_epoch_and_padding_changes_nothing() -> None:
    keras.utils.set_random_seed(0)
    wide, deep = _specs()
    model = wide_and_deep_model(wide, deep, (4,))
    loader = Batches(6)

    def fix(features: Any, label: Any) -> Any:
        return features, label.reshape(-1, 1).astype(np.float32)

    ds = loader_dataset(loader, map_fn=fix)
    assert len(ds) == 6
    history = model.fit(ds, epochs=3, verbose=0, shuffle=False).history
    assert len(history["loss"]) == 3 and all(np.isfinite(history["loss"]))
    assert loader.epochs[-3:] == [0, 1, 2]
    assert ds.epoch == 3
    # Ids -1 (and weights 0) added by the padding do not change the outputs.
    raw, _ = fix(*loader.batches[2])
    padded, _ = fix(pad_id_widths(loader.batches[2][0], 16), loader.batches[2][1])
    assert padded[W].shape[1] == 16 and raw[W].shape[1] == 3
    assert padded[W + "_embedding__weights"].shape[1] == 16
    np.testing.assert_allclose(
        model.predict_on_batch(padded), model.predict_on_batch(raw), atol=1e-6
    )


def test_batches_are_read_in_order() -> None:
    ds = loader_dataset(Batches(3), id_width=None)
    ds.on_epoch_begin()
    assert ds[0][0][W].shape[1] == 1
    assert ds[1][0][W].shape[1] == 2
    with pytest.raises(ConfigError, match="reads its loader in order"):
        ds[3]
    assert ds[0][0][W].shape[1] == 1  # index 0 starts over


def test_bad_id_width() -> None:
    with pytest.raises(ConfigError, match="id_width"):
        loader_dataset(Batches(1), id_width=0)
    with pytest.raises(ConfigError, match="id_width"):
        loader_dataset(Batches(1), id_width="max")


def test_train_globs_leave_out_index_sidecars(tmp_path: Any) -> None:
    from featurepipe.keras._training import _local_files

    for name in ("train-0.tfrecord", "train-0.tfrecord.fpidx", "train-1.tfrecord"):
        (tmp_path / name).write_bytes(b"")
    files = _local_files(str(tmp_path / "train-*"))
    assert [os.path.basename(f) for f in files] == ["train-0.tfrecord", "train-1.tfrecord"]


def test_train_refuses_remote_paths_and_patterns_that_match_nothing(tmp_path: Any) -> None:
    from featurepipe.keras._training import _local_files

    (tmp_path / "x").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"'gs://b/train-\*' is a remote path"):
        _local_files([str(tmp_path / "x"), "gs://b/train-*"])
    with pytest.raises(ConfigError, match=r"No files match '.*nothing-\*'"):
        _local_files(str(tmp_path / "nothing-*"))
