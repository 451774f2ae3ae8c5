"""One rank of the DDP test (tests/torch/test_ddp.py starts two of these).

Joins a gloo process group from MASTER_ADDR / MASTER_PORT / RANK / WORLD_SIZE
(as torchrun sets them), reads the data through FeatureDataset with DataLoader
workers, and writes what it saw to ``OUT/rank-R.json``: the ids of each batch
(weight-0 padding rows left out) per epoch, a second run of epoch 0, the
batches of a StatefulDataLoader resumed mid-epoch, and a DDP training run of
the example wide-and-deep model.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import sys
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as nnf
from torchdata.stateful_dataloader import StatefulDataLoader

from featurepipe.columns import NumericColumn
from featurepipe.torch import FeatureDataset

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _example() -> Any:
    spec = importlib.util.spec_from_file_location(
        "torch_wide_deep", ROOT / "examples" / "torch_wide_deep.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["torch_wide_deep"] = module
    spec.loader.exec_module(module)
    return module


def _ids(batch: Any) -> list[int]:
    features, _label, weight = batch
    ids = features["id"].reshape(-1)
    return [int(i) for i, w in zip(ids.tolist(), weight.tolist(), strict=True) if w > 0]


def _batches(loader: Any) -> list[list[int]]:
    return [_ids(b) for b in loader]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--resume-after", type=int, default=3)
    parser.add_argument("--context", default=None, help="DataLoader multiprocessing_context")
    parser.add_argument("--train-epochs", type=int, default=1)
    parser.add_argument("--epoch0-only", action="store_true", help="read epoch 0 and stop")
    args = parser.parse_args()

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    example = _example()
    paths = sorted(str(p) for p in pathlib.Path(args.data).glob("*.tfrecord"))
    columns = [*example.example_columns(), NumericColumn("id")]

    def dataset() -> FeatureDataset:
        return FeatureDataset(
            paths, columns, batch_size=args.batch_size, label_key="label", shuffle=True, seed=7
        )

    kw: dict[str, Any] = {"batch_size": None, "num_workers": args.workers, "pin_memory": True}
    if args.context:
        kw["multiprocessing_context"] = args.context
    out: dict[str, Any] = {"rank": rank, "world_size": world}

    ds = dataset()
    out["len"] = len(ds)
    out["seen_rank"] = ds.rank
    epochs = []
    for epoch in (0,) if args.epoch0_only else (0, 1):
        ds.set_epoch(epoch)
        epochs.append(_batches(torch.utils.data.DataLoader(ds, **kw)))
    out["epochs"] = epochs
    if args.epoch0_only:
        dist.barrier()
        dist.destroy_process_group()
        pathlib.Path(args.out, f"rank-{rank}.json").write_text(json.dumps(out))
        return 0
    again = dataset()  # a new dataset with the same seed: the same order
    again.set_epoch(0)
    out["epoch0_again"] = _batches(torch.utils.data.DataLoader(again, **kw))

    # kill and resume: k batches of epoch 1, the loader's state (through JSON),
    # a new dataset and loader from that state: the rest of the epoch
    first = dataset()
    first.set_epoch(1)
    sdl = StatefulDataLoader(first, **kw)
    taken = []
    it = iter(sdl)
    for _ in range(args.resume_after):
        taken.append(_ids(next(it)))
    state = json.loads(json.dumps(sdl.state_dict()))
    del it, sdl
    second = dataset()
    second.set_epoch(1)
    resumed = StatefulDataLoader(second, **kw)
    resumed.load_state_dict(state)
    out["resume_taken"] = taken
    out["resume_rest"] = _batches(resumed)

    # a DDP training run of the example model: every rank takes the same steps
    model = torch.nn.parallel.DistributedDataParallel(
        example.WideAndDeep(example.example_columns())
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    train = dataset()
    losses, steps = [], 0
    for epoch in range(args.train_epochs):
        train.set_epoch(epoch)
        total = torch.zeros(2)
        for features, label, weight in torch.utils.data.DataLoader(train, **kw):
            opt.zero_grad()
            per_row = nnf.binary_cross_entropy_with_logits(
                model(features), label.reshape(-1), reduction="none"
            )
            (per_row * weight).sum().div(weight.sum().clamp(min=1.0)).backward()
            opt.step()
            steps += 1
            total += torch.stack([(per_row * weight).sum().detach(), weight.sum()])
        dist.all_reduce(total)
        losses.append(float(total[0] / total[1]))
    out["train_steps"] = steps
    out["train_losses"] = losses
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum()
    gathered = [torch.zeros(1, dtype=torch.float64) for _ in range(world)]
    dist.all_gather(gathered, checksum.reshape(1))
    out["param_checksums"] = [float(g) for g in gathered]
    dist.barrier()
    dist.destroy_process_group()
    pathlib.Path(args.out, f"rank-{rank}.json").write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
