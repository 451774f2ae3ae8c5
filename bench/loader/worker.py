"""One measured thing of the loader benchmark, run in a process of its own.

``python -m bench.loader.worker TASK '{"path": ..., "plan": ..., "batch_size": ...}'``
builds the reader of TASK (not timed), iterates one epoch of ``file -> batches of
model inputs`` and prints one JSON line ``{"examples": N, "batches": B, "seconds": S,
"cpu_seconds": U}`` (wall and CPU of every thread of the process, timed loop only).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.columns import plan as cplan

__all__ = ["TASKS", "main"]


def _loader(**kw: Any) -> Callable[[dict[str, Any]], Iterable[Any]]:
    def build(args: dict[str, Any]) -> Iterable[Any]:
        from featurepipe.data import Loader

        plan = cplan.load_plan(args["plan"])
        return Loader(
            args["path"],
            cplan.featurepipe_specs(plan),
            schema=cplan.featurepipe_schema(),
            batch_size=args["batch_size"],
            label_key="label",
            **kw,
        )

    return build


def _tf(shuffle: bool) -> Callable[[dict[str, Any]], Iterable[Any]]:
    def build(args: dict[str, Any]) -> Iterable[Any]:
        from featurepipe.keras import make_dataset

        plan = cplan.load_plan(args["plan"])
        return make_dataset(
            args["path"],
            columns=cplan.featurepipe_specs(plan),
            schema=cplan.featurepipe_schema(),
            batch_size=args["batch_size"],
            label_key="label",
            shuffle=shuffle,
            seed=0,
        )

    return build


TASKS: dict[str, Callable[[dict[str, Any]], Iterable[Any]]] = {
    "data_in_order": _loader(),
    "data_shuffled": _loader(shuffle=True),
    "data_shuffled_offsets": _loader(shuffle=True, ids="offsets"),
    "data_in_order_inline": _loader(threads=0),
    "tf_make_dataset_in_order": _tf(False),
    "tf_make_dataset_shuffled": _tf(True),
}


def _rows(batch: Any) -> int:
    features = batch[0] if isinstance(batch, tuple) else batch
    first = next(iter(features.values()))
    return len(first.offsets) if hasattr(first, "offsets") else int(first.shape[0])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    task, args = argv[0], json.loads(argv[1])
    data = TASKS[task](args)
    it = iter(data)
    t0, c0 = time.perf_counter(), time.process_time()
    examples = batches = 0
    for batch in it:
        examples += _rows(batch)
        batches += 1
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        json.dumps(
            {"examples": examples, "batches": batches, "seconds": seconds, "cpu_seconds": cpu}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
