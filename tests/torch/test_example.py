"""The wide-and-deep example of docs/torch.md trains: the loss drops within a few epochs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from featurepipe.torch import FeatureDataset


@pytest.fixture
def one_thread() -> Iterator[None]:
    # tiny model: torch's intra-op threads only compete with each other on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_wide_and_deep_loss_drops(tmp_path: Any, example: Any, one_thread: None) -> None:
    torch.manual_seed(0)
    paths = example.write_example_data(str(tmp_path), 1200, num_files=2)
    columns = example.example_columns()
    dataset = FeatureDataset(paths, columns, batch_size=64, label_key="label", shuffle=True, seed=1)
    model = example.WideAndDeep(columns)
    losses = example.train(dataset, model, epochs=3, lr=0.05)
    assert len(losses) == 3
    assert losses[-1] < 0.75 * losses[0], losses
    assert losses[-1] < 0.5, losses  # well below log(2) = 0.69 of a constant guess


def test_example_main_runs(capsys: Any, example: Any) -> None:
    assert example.main(["--records", "300", "--epochs", "1", "--workers", "0"]) == 0
    assert "epoch 0: loss" in capsys.readouterr().out
