"""One measured TFDV step of the validation benchmark, in a process of its own.

``python -m bench.validate.worker TASK '{...}'`` runs TASK in the TFDV venv
(``bench/.venvs/tfdv``) and prints one JSON line ``{"records": N, "seconds":
S, ...}``; ``seconds`` is the timed part (imports are not timed; the harness
also measures the whole process). Only the standard library is imported at the
top: featurepipe is not installed in that venv.

Tasks:

* ``tfdv_schema``: statistics of the baseline and `infer_schema`, written as
  text (the setup of the other two; not part of the timings).
* ``tfdv_validate``: `generate_statistics_from_tfrecord` of the current data,
  then `validate_statistics` against the schema.
* ``tfdv_compare``: statistics of both files, then `validate_statistics` with
  a skew comparator on every feature (L-infinity for strings, Jensen-Shannon
  for numbers, threshold 0 so that every distance is reported); the distances
  TFDV measured are in the output, by feature.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

__all__ = ["main"]


def _stats(path: str) -> Any:
    import tensorflow_data_validation as tfdv

    return tfdv.generate_statistics_from_tfrecord(data_location=path)


def _count(stats: Any) -> int:
    return int(stats.datasets[0].num_examples)


def tfdv_schema(args: dict[str, Any]) -> dict[str, Any]:
    import tensorflow_data_validation as tfdv

    t0 = time.perf_counter()
    stats = _stats(args["path"])
    schema = tfdv.infer_schema(stats)
    tfdv.write_schema_text(schema, args["schema"])
    return {"records": _count(stats), "seconds": time.perf_counter() - t0}


def tfdv_validate(args: dict[str, Any]) -> dict[str, Any]:
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(args["schema"])
    t0 = time.perf_counter()
    stats = _stats(args["path"])
    anomalies = tfdv.validate_statistics(stats, schema)
    seconds = time.perf_counter() - t0
    found = {
        name: [str(r.type) for r in info.reason] for name, info in anomalies.anomaly_info.items()
    }
    return {"records": _count(stats), "seconds": seconds, "anomalies": found}


def tfdv_compare(args: dict[str, Any]) -> dict[str, Any]:
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = tfdv.load_schema_text(args["schema"])
    for feature in schema.feature:
        if feature.type == schema_pb2.BYTES:
            feature.skew_comparator.infinity_norm.threshold = 0.0
        elif feature.type in (schema_pb2.INT, schema_pb2.FLOAT):
            feature.skew_comparator.jensen_shannon_divergence.threshold = 0.0
    t0 = time.perf_counter()
    base = _stats(args["base"])
    cur = _stats(args["cur"])
    anomalies = tfdv.validate_statistics(base, schema, serving_statistics=cur)
    seconds = time.perf_counter() - t0
    distances: dict[str, dict[str, float]] = {}
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        for m in info.skew_measurements:
            kind = type(m).Type.Name(m.type)
            distances.setdefault(name, {})[kind] = float(m.value)
    return {
        "records": _count(base) + _count(cur),
        "seconds": seconds,
        "distances": distances,
        "anomalies": sorted(anomalies.anomaly_info),
    }


TASKS = {"tfdv_schema": tfdv_schema, "tfdv_validate": tfdv_validate, "tfdv_compare": tfdv_compare}


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.validate.worker TASK JSON``: run TASK, print its JSON report."""
    argv = sys.argv[1:] if argv is None else argv
    task, args = argv[0], json.loads(argv[1])
    print(json.dumps(TASKS[task](args)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
