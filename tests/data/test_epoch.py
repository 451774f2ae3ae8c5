"""featurepipe.data.EpochPlan and Loader.record_ids: the Loader's epoch cut, by batch number.

Every record carries its global number (``id``, the label), so the batches a
Loader yields can be compared with the record numbers the plan names.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from featurepipe.columns import NumericColumn
from featurepipe.data import EpochPlan, Loader
from featurepipe.errors import ConfigError
from tests.data.test_loader import _write  # records that carry their number (`id`)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _write(tmp_path_factory.mktemp("epoch"), [6, 1, 6])  # 13 records


@pytest.fixture(scope="module")
def gz_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _write(tmp_path_factory.mktemp("epoch_gz"), [6, 1, 6], "gzip")


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("uneven", ["pad", "drop", "repeat"])
@pytest.mark.parametrize("world", [1, 3, 5])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_record_ids_are_the_batches(
    files: list[str], shuffle: bool, uneven: str, world: int, drop_remainder: bool
) -> None:
    for rank in range(world):
        loader = Loader(files, [NumericColumn("x")], batch_size=2, label_key="id",
                        shuffle=shuffle, seed=4, rank=rank, world_size=world, uneven=uneven,
                        drop_remainder=drop_remainder, native=False)  # fmt: skip
        plan = EpochPlan(13, batch_size=2, shuffle=shuffle, seed=4, rank=rank,
                         world_size=world, uneven=uneven, drop_remainder=drop_remainder)  # fmt: skip
        assert loader.plan == plan
        for epoch in (0, 3):
            loader.set_epoch(epoch)
            got = [batch[1].tolist() for batch in loader]
            assert len(got) == plan.num_batches == len(loader)
            assert got == [loader.record_ids(epoch, b).tolist() for b in range(len(got))]
            assert got == [plan.record_ids(epoch, b).tolist() for b in range(len(got))]
            ids, weights = plan.records(epoch)
            if uneven == "pad":
                assert [w.tolist() for _, _, w in loader] == [
                    weights[plan.batch_rows(b)].tolist() for b in range(len(got))
                ]
            else:
                assert weights.tolist() == [1.0] * len(ids)


def test_record_ids_of_streamed_files(gz_files: list[str]) -> None:
    loader = Loader(gz_files, [NumericColumn("x")], batch_size=3, label_key="id", shuffle=True,
                    shuffle_buffer=4, rank=1, world_size=2, native=False)  # fmt: skip
    loader.set_epoch(2)
    got = [batch[1].tolist() for batch in loader]
    assert got == [loader.record_ids(2, b).tolist() for b in range(len(got))]


def test_plan_covers_every_record_once_and_worker_batches() -> None:
    for n, world in [(13, 3), (2, 5), (10, 10)]:
        plans = [EpochPlan(n, shuffle=True, seed=7, rank=r, world_size=world) for r in range(world)]
        real = [p.records(1)[0][p.records(1)[1] == 1] for p in plans]
        assert sorted(np.concatenate(real).tolist()) == list(range(n))
        assert len({p.records_per_rank for p in plans}) == 1
    plan = EpochPlan(23, batch_size=3)
    for workers in (1, 2, 3):
        for start in (0, 1, 5, 9):
            parts = [list(plan.worker_batches(w, workers, start)) for w in range(workers)]
            assert sorted(b for part in parts for b in part) == list(range(start, plan.num_batches))
            assert all(b % workers == w for w, part in enumerate(parts) for b in part)
    assert pickle.loads(pickle.dumps(plan)) == plan


def test_plan_errors() -> None:
    with pytest.raises(ConfigError, match="rank"):
        EpochPlan(10, rank=2, world_size=2)
    with pytest.raises(ConfigError, match="uneven"):
        EpochPlan(10, uneven="wrap")
    with pytest.raises(ConfigError, match="batch_size"):
        EpochPlan(10, batch_size=0)
    with pytest.raises(IndexError):
        EpochPlan(10, batch_size=4).record_ids(0, 3)
