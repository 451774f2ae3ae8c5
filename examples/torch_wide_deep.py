"""A wide-and-deep model in plain torch over featurepipe.torch (docs/torch.md).

The model is built from the column specs the loader computes:

* wide (linear) part: every categorical column the model sees as ids gets a
  one-dimensional ``nn.EmbeddingBag(num_ids, 1, mode="sum")`` (a sparse
  linear layer), numeric columns a ``nn.Linear(size, 1)``;
* deep part: ``EmbeddingColumn`` ids go through ``nn.EmbeddingBag(num_ids,
  dimension, mode=combiner)``, concatenated with the numeric columns into an MLP.

The logit is the sum of both parts. Ids come in the loader's ``"offsets"`` mode
(`featurepipe.torch.RaggedTensors`: ``values``, ``offsets``, ``weights``), the
arguments of ``EmbeddingBag``.

Run it: ``python examples/torch_wide_deep.py`` (generates data in a temporary
folder, trains a few epochs, prints the loss per epoch).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as nnf
from torch import nn

from featurepipe.columns import (
    BucketizedColumn,
    CategoricalSpec,
    ColumnSpec,
    CrossedColumn,
    EmbeddingColumn,
    HashedColumn,
    NumericColumn,
    VocabularyColumn,
    model_columns,
)
from featurepipe.example import encode_example
from featurepipe.tfrecord import write_records
from featurepipe.torch import FeatureDataset, RaggedTensors

COMBINERS = {"mean": "mean", "sum": "sum"}


def _bag_input(ids: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, bool]:
    """``(values, offsets, weights, include_last_offset)`` of one column's ids."""
    if isinstance(ids, RaggedTensors):
        # one offset per row (where it starts): EmbeddingBag's include_last_offset=False
        return ids.values, ids.offsets, ids.weights, False
    raise TypeError(
        "WideAndDeep takes ids in offsets mode: build the dataset with ids='offsets' "
        f"(got {type(ids).__name__})"
    )


class WideAndDeep(nn.Module):
    """Linear part over all columns + an MLP over embeddings and numbers.

    Args:
        columns: the column specs the dataset was built with (resolved).
        hidden: the sizes of the MLP's hidden layers.
    """

    def __init__(self, columns: Sequence[ColumnSpec], hidden: Sequence[int] = (32, 16)) -> None:
        super().__init__()
        self.numeric: list[tuple[str, int]] = []
        self.wide_bags = nn.ModuleDict()
        self.deep_bags = nn.ModuleDict()
        self.deep_modes: dict[str, str] = {}
        for name, spec in model_columns(list(columns)):
            outer = next((c for c in columns if c.name == name), spec)
            if isinstance(spec, NumericColumn):
                self.numeric.append((name, int(np.prod(spec.shape))))
            elif isinstance(outer, EmbeddingColumn):
                if outer.combiner not in COMBINERS:
                    raise ValueError(
                        f"{name}: combiner {outer.combiner!r} is not in {list(COMBINERS)}"
                    )
                self.deep_bags[name] = nn.EmbeddingBag(spec.num_ids, outer.dimension)
                nn.init.normal_(self.deep_bags[name].weight, std=outer.dimension**-0.5)
                self.deep_modes[name] = COMBINERS[outer.combiner]
            elif isinstance(spec, CategoricalSpec):
                self.wide_bags[name] = nn.EmbeddingBag(spec.num_ids, 1)
                nn.init.zeros_(self.wide_bags[name].weight)
            else:
                raise ValueError(f"{name}: {type(outer).__name__} is not supported by this example")
        numeric_size = sum(size for _, size in self.numeric)
        self.wide_numeric = nn.Linear(numeric_size, 1) if numeric_size else None
        layers: list[nn.Module] = []
        width = numeric_size + sum(bag.embedding_dim for bag in self.deep_bags.values())
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.deep = nn.Sequential(*layers)

    def forward(self, features: Mapping[str, Any]) -> torch.Tensor:
        """Logits ``[B]`` of a batch's features."""
        numbers = [features[name].reshape(features[name].shape[0], -1) for name, _ in self.numeric]
        dense = torch.cat(numbers, dim=1) if numbers else None
        wide: torch.Tensor | int = 0
        if dense is not None and self.wide_numeric is not None:
            wide = self.wide_numeric(dense)
        for name, bag in self.wide_bags.items():
            values, offsets, weights, last = _bag_input(features[name])
            wide = wide + nnf.embedding_bag(
                values,
                bag.weight,
                offsets,
                mode="sum",
                per_sample_weights=weights,
                include_last_offset=last,
            )
        deep_in = [] if dense is None else [dense]
        for name, bag in self.deep_bags.items():
            values, offsets, weights, last = _bag_input(features[name])
            mode = self.deep_modes[name]
            deep_in.append(
                nnf.embedding_bag(
                    values,
                    bag.weight,
                    offsets,
                    mode=mode,
                    per_sample_weights=weights if mode == "sum" else None,
                    include_last_offset=last,
                )
            )
        logits = self.deep(torch.cat(deep_in, dim=1)) + wide
        return logits.reshape(-1)


def example_columns() -> list[ColumnSpec]:
    """Columns of the generated data: numbers, buckets, hashed, vocabulary, cross, embedding."""
    age = NumericColumn("age")
    return [
        age,
        NumericColumn("income"),
        BucketizedColumn(age, bin_boundaries=(-1.0, -0.5, 0.0, 0.5, 1.0)),
        HashedColumn("city", num_bins=64),
        VocabularyColumn("color", vocabulary=("red", "green", "blue"), num_oov_buckets=1),
        CrossedColumn(("city", "color"), num_bins=128),
        EmbeddingColumn(HashedColumn("city", num_bins=64), dimension=4),
        EmbeddingColumn(VocabularyColumn("tags", vocabulary=tuple("abcdefgh")), dimension=4),
    ]


def write_example_data(
    folder: str, num_records: int, num_files: int = 2, seed: int = 0
) -> list[str]:
    """Generated records whose label depends on every feature (learnable); one id per record."""
    rng = np.random.default_rng(seed)
    colors = ["red", "green", "blue", "pink"]
    paths = []
    per_file = -(-num_records // num_files)
    for f in range(num_files):
        records = []
        for i in range(f * per_file, min(num_records, (f + 1) * per_file)):
            age = float(rng.normal())
            income = float(rng.normal())
            city = int(rng.integers(0, 20))
            color = colors[int(rng.integers(0, 4))]
            tags = list(rng.choice(list("abcdefgh"), size=int(rng.integers(0, 4)), replace=False))
            score = 1.5 * age - income + (1.0 if city % 3 == 0 else -0.5)
            score += {"red": 1.0, "green": -1.0}.get(color, 0.0) + (1.0 if "a" in tags else 0.0)
            label = float(score + 0.3 * rng.normal() > 0)
            records.append(
                encode_example(
                    {
                        "id": float(i),
                        "age": age,
                        "income": income,
                        "city": f"c{city}",
                        "color": color,
                        "tags": tags if tags else None,
                        "label": label,
                    }
                )
            )
        path = os.path.join(folder, f"part-{f:05d}.tfrecord")
        write_records(path, records)
        paths.append(path)
    return paths


def train(
    dataset: FeatureDataset,
    model: nn.Module,
    *,
    epochs: int,
    lr: float = 0.05,
    loader_kwargs: Mapping[str, Any] | None = None,
) -> list[float]:
    """Train with Adam on the dataset; the mean (weighted) loss of each epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        dl = torch.utils.data.DataLoader(dataset, batch_size=None, **(loader_kwargs or {}))
        total, weight_sum = 0.0, 0.0
        for features, label, weight in dl:
            opt.zero_grad()
            per_row = nnf.binary_cross_entropy_with_logits(
                model(features), label.reshape(-1), reduction="none"
            )
            loss = (per_row * weight).sum() / weight.sum().clamp(min=1.0)
            loss.backward()
            opt.step()
            total += float((per_row.detach() * weight).sum())
            weight_sum += float(weight.sum())
        losses.append(total / max(weight_sum, 1.0))
    return losses


def main(argv: Sequence[str] | None = None) -> int:
    """Generate data, train, print the loss of each epoch."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_example_data(tmp, args.records)
        columns = example_columns()
        dataset = FeatureDataset(
            paths, columns, batch_size=args.batch_size, label_key="label", shuffle=True, seed=1
        )
        model = WideAndDeep(columns)
        losses = train(
            dataset, model, epochs=args.epochs, loader_kwargs={"num_workers": args.workers}
        )
    for epoch, loss in enumerate(losses):
        print(f"epoch {epoch}: loss {loss:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
