"""One measured thing of the statistics benchmark, run in a process of its own.

``python -m bench.stats.worker TASK '{"path": ...}'`` runs TASK and prints one
JSON line ``{"records": N, "seconds": S, ...}``; ``seconds`` is the timed call
only (imports are not timed; the harness also measures the whole process).

Only the standard library is imported at the top, so this runs in the TFDV
venv (``bench/.venvs/tfdv``) where featurepipe is not installed.
"""

from __future__ import annotations

import json
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["TASKS", "main"]


def _records(path: str) -> list[bytes]:
    """Every record of an uncompressed TFRecord file (no CRC check; not timed)."""
    out: list[bytes] = []
    with open(path, "rb") as f:
        while True:
            head = f.read(12)
            if len(head) < 12:
                return out
            (length,) = struct.unpack_from("<Q", head)
            out.append(f.read(length))
            f.read(4)


def fp_stats(args: dict[str, Any]) -> dict[str, Any]:
    """featurepipe.analysis.compute_statistics over the file (read + decode + statistics)."""
    from featurepipe.analysis import compute_statistics

    t0 = time.perf_counter()
    stats = compute_statistics(args["path"])
    seconds = time.perf_counter() - t0
    return {"records": stats.num_examples, "seconds": seconds, "features": len(stats.features)}


def pyloop(args: dict[str, Any]) -> dict[str, Any]:
    """A straightforward Python loop: protobuf-decode each Example, update per-feature stats.

    What one writes without a library: presence counts, min / max / sum / sum of
    squares of numbers, a Counter of bytes values (for top values and distinct
    counts), list lengths.
    """
    from collections import Counter, defaultdict

    from featurepipe.example.proto import example_pb2

    records = _records(args["path"])
    t0 = time.perf_counter()
    present: Counter[str] = Counter()
    lengths: Counter[str] = Counter()
    nums: dict[str, list[float]] = defaultdict(lambda: [float("inf"), float("-inf"), 0.0, 0.0, 0])
    words: dict[str, Counter[bytes]] = defaultdict(Counter)
    parse = example_pb2.Example.FromString
    for data in records:
        for name, feat in parse(data).features.feature.items():
            present[name] += 1
            kind = feat.WhichOneof("kind")
            if kind == "bytes_list":
                vals = feat.bytes_list.value
                words[name].update(vals)
            elif kind is not None:
                vals = getattr(feat, kind).value
                acc = nums[name]
                for v in vals:
                    acc[0] = min(acc[0], v)
                    acc[1] = max(acc[1], v)
                    acc[2] += v
                    acc[3] += v * v
                    acc[4] += 1
            else:
                continue
            lengths[name] += len(vals)
    tops = {name: c.most_common(20) for name, c in words.items()}
    seconds = time.perf_counter() - t0
    return {
        "records": len(records),
        "seconds": seconds,
        "features": len(present),
        "top_features": len(tops),
    }


def tfdv(args: dict[str, Any]) -> dict[str, Any]:
    """TFDV ``generate_statistics_from_tfrecord`` (a Beam pipeline; runner mode from ``argv``)."""
    import tensorflow_data_validation as tfdv_lib
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(args.get("argv", []))
    t0 = time.perf_counter()
    stats = tfdv_lib.generate_statistics_from_tfrecord(
        data_location=args["path"], pipeline_options=options
    )
    seconds = time.perf_counter() - t0
    ds = stats.datasets[0]
    return {
        "records": int(ds.num_examples),
        "seconds": seconds,
        "features": len(ds.features),
        "tfdv": tfdv_lib.__version__,
    }


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "fp_stats": fp_stats,
    "pyloop": pyloop,
    "tfdv": tfdv,
}


def main(argv: list[str] | None = None) -> int:
    """Runs one task; prints its JSON report as the last line of stdout."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in TASKS:
        print(f"usage: python -m bench.stats.worker {{{','.join(TASKS)}}} JSON", file=sys.stderr)
        return 2
    report = TASKS[args[0]](json.loads(args[1]))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
