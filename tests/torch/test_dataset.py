"""featurepipe.torch in one process: conversion, rank lookup, workers, checkpoints."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

from featurepipe.columns import HashedColumn, NumericColumn
from featurepipe.data import RaggedIds
from featurepipe.errors import ConfigError
from featurepipe.example import encode_example
from featurepipe.tfrecord import write_records
from featurepipe.torch import (
    FeatureDataset,
    RaggedTensors,
    distributed_context,
    pack_batch,
    to_torch,
)

N = 103


@pytest.fixture
def path(tmp_path: Any) -> str:
    out = str(tmp_path / "one.tfrecord")
    write_records(
        out,
        [
            encode_example({"id": float(i), "c": f"v{i % 7}", "label": float(i % 2)})
            for i in range(N)
        ],
    )
    return out


def _dataset(path: str, **kw: Any) -> FeatureDataset:
    args: dict[str, Any] = {"batch_size": 8, "label_key": "label", "shuffle": True, "seed": 3}
    args.update(kw)
    return FeatureDataset(path, [NumericColumn("id"), HashedColumn("c", 16)], **args)


def _ids(batch: Any) -> list[int]:
    features, _label, weight = batch
    return [
        int(i)
        for i, w in zip(features["id"].reshape(-1).tolist(), weight.tolist(), strict=True)
        if w > 0
    ]


def test_import_loads_no_other_framework() -> None:
    code = (
        "import sys, featurepipe.torch\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'apache_beam') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_to_torch_shares_memory() -> None:
    writable = np.arange(6, dtype=np.float32).reshape(3, 2)
    readonly = np.frombuffer(np.arange(3, dtype=np.int64).tobytes(), dtype=np.int64)
    ragged = RaggedIds(np.array([1, 2, 3]), np.array([0, 2, 3]), None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not writable" warning
        out = to_torch(({"x": writable, "r": ragged, "y": readonly}, np.float32(2.0)))
    features, scalar = out
    writable[0, 0] = 42.0
    assert features["x"][0, 0].item() == 42.0  # the same memory
    assert features["x"].dtype == torch.float32 and features["y"].dtype == torch.int64
    assert features["y"].data_ptr() == readonly.__array_interface__["data"][0]
    assert isinstance(features["r"], RaggedTensors)
    assert features["r"].values.tolist() == [1, 2, 3] and features["r"].weights is None
    assert scalar.item() == 2.0


def test_batches_are_tensors(path: str) -> None:
    ds = _dataset(path, shuffle=False)
    features, label, weight = next(iter(DataLoader(ds, batch_size=None)))
    assert features["id"].dtype == torch.float32 and features["id"].shape == (8, 1)
    assert features["id"].reshape(-1).tolist() == [float(i) for i in range(8)]
    assert isinstance(features["c"], RaggedTensors)
    assert features["c"].values.dtype == torch.int64
    assert label.reshape(-1).tolist() == [float(i % 2) for i in range(8)]
    assert weight.tolist() == [1.0] * 8


def test_rank_from_torchrun_environment(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("LOCAL_RANK", "0")
    ctx = distributed_context()
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.source) == (2, 3, 0, "environment")
    ds = _dataset(path)
    assert (ds.rank, ds.world_size) == (2, 3)
    assert len(ds) == math.ceil(math.ceil(N / 3) / 8)
    # pickled for a spawned worker: the rank travels with it
    blob = pickle.dumps(ds)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert _dataset(path).rank == 0
    assert pickle.loads(blob).rank == 2


def test_bad_environment_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ConfigError, match="RANK='x'"):
        distributed_context()
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match=r"\[0, WORLD_SIZE\)"):
        distributed_context()


def test_explicit_rank_needs_both(path: str) -> None:
    with pytest.raises(ConfigError, match="both rank and world_size"):
        _dataset(path, rank=1)
    with pytest.raises(ConfigError, match=r"not in \[0, world_size=2\)"):
        _dataset(path, rank=2, world_size=2)


def test_workers_reproduce_the_single_worker_stream(path: str) -> None:
    # one file, three workers: the round-robin of the workers is the rank's stream
    ds = _dataset(path, rank=1, world_size=2)
    ds.set_epoch(4)
    single = [_ids(b) for b in DataLoader(ds, batch_size=None)]
    multi = [_ids(b) for b in DataLoader(ds, batch_size=None, num_workers=3)]
    assert multi == single
    assert len(single) == len(ds)
    ds.set_epoch(5)
    assert [_ids(b) for b in DataLoader(ds, batch_size=None)] != single


def test_resume_in_the_main_process(path: str) -> None:
    full_ds = _dataset(path)
    full_ds.set_epoch(2)
    full = [_ids(b) for b in StatefulDataLoader(full_ds, batch_size=None)]
    ds = _dataset(path)
    ds.set_epoch(2)
    dl = StatefulDataLoader(ds, batch_size=None)
    it = iter(dl)
    taken = [_ids(next(it)) for _ in range(5)]
    state = json.loads(json.dumps(dl.state_dict()))
    again = _dataset(path)
    resumed = StatefulDataLoader(again, batch_size=None)
    resumed.load_state_dict(state)
    assert taken + [_ids(b) for b in resumed] == full
    assert again.epoch == 2


def test_dataset_state_round_trip(path: str) -> None:
    ds = _dataset(path)
    ds.set_epoch(1)
    it = iter(ds)
    first = [_ids(next(it)) for _ in range(3)]
    state = json.loads(json.dumps(ds.state_dict()))
    assert state["batches"] == 3 and state["epoch"] == 1
    rest = [_ids(b) for b in it]
    other = _dataset(path)
    other.load_state_dict(state)
    assert [_ids(b) for b in other] == rest
    # the loaded state is used once: the next iteration is a whole epoch
    assert [_ids(b) for b in other] == first + rest


def test_resume_with_another_split_is_refused(path: str) -> None:
    ds = _dataset(path, rank=0, world_size=2)
    it = iter(ds)
    next(it)
    state = ds.state_dict()
    other = _dataset(path, rank=0, world_size=3)
    other.load_state_dict(state)
    with pytest.raises(ConfigError, match="world_size: saved 2, now 3"):
        iter(other)
    with pytest.raises(ConfigError, match="not a FeatureDataset state"):
        other.load_state_dict({"epoch": 0})


def test_packed_batch_unpickles_into_views_of_one_buffer() -> None:
    readonly = np.frombuffer(np.arange(4, dtype=np.int64).tobytes(), dtype=np.int64)
    batch = (
        {
            "x": np.arange(6, dtype=np.float32).reshape(3, 2),
            "c": RaggedIds(readonly[:3], np.array([0, 1, 1]), None),
            "w": RaggedIds(np.zeros(0, np.int64), np.zeros(3, np.int64), np.zeros(0, np.float32)),
            "s": np.array([b"a", b"b", b"c"], dtype=object),
        },
        np.array([1, 0, 1]),
        np.array([1.0, 1.0, 0.0], dtype=np.float32),
    )
    packed = pack_batch(batch)
    features, label, weight = pickle.loads(pickle.dumps(packed))
    assert features["x"].tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert isinstance(features["c"], RaggedTensors) and features["c"].weights is None
    assert features["c"].values.tolist() == [0, 1, 2] and features["c"].offsets.tolist() == [
        0,
        1,
        1,
    ]
    assert features["w"].values.shape == (0,) and features["w"].weights.dtype == torch.float32
    assert features["s"].tolist() == [b"a", b"b", b"c"]  # not packable: passed as it is
    assert label.dtype == torch.int64 and weight.tolist() == [1.0, 1.0, 0.0]
    ptrs = {features["x"].untyped_storage().data_ptr(), label.untyped_storage().data_ptr()}
    assert len(ptrs) == 1  # one buffer
    features["x"][0, 0] = 7.0  # writable (a bytearray)
    again = packed.unpack()  # the packed buffer itself (the pickled copy was written above)
    assert again[0]["x"].tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]


def test_padded_ids_and_from_loader(path: str) -> None:
    from featurepipe.data import Loader

    loader = Loader(path, [NumericColumn("id"), HashedColumn("c", 16)], batch_size=4, ids="padded")
    ds = FeatureDataset.from_loader(loader, rank=0, world_size=1)
    features, label, weight = next(iter(DataLoader(ds, batch_size=None, num_workers=1)))
    assert label is None and weight.tolist() == [1.0] * 4
    assert features["c"].dtype == torch.int64 and features["c"].shape == (4, 1)
    assert features["c"].tolist() == next(iter(loader))[0]["c"].tolist()
    assert len(ds) == math.ceil(N / 4) and ds.loader is loader
