"""One measured SequenceExample decoder, in a process of its own.

``python -m bench.sequence.worker TASK '{"path": P, "batch": B, "limit": N}'`` reads the
first N records of P into memory (not timed), decodes one batch as a warm-up, then
times decoding every batch and prints one JSON line ``{"records": N, "seconds": S,
"values": V}`` (V: the number of feature-list values decoded, a check that both
sides decoded the same thing).

Tasks:

* ``fp``: `featurepipe.example.decode_sequence_examples` (compiled when built):
  numpy values + values per step + steps per sequence, and the context as columns.
* ``fp_py``: the same with ``native=False`` (protobuf's upb parse gathered in Python).
* ``tf_ragged``: ``tf.io.parse_sequence_example`` with a ``RaggedFeature`` per
  feature list and ``FixedLenFeature`` context features (the same numbers out:
  flat values + row lengths per step and per sequence).
* ``tf_varlen``: the same with ``VarLenFeature`` per feature list (SparseTensors).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

__all__ = ["main"]

CONTEXT = {"id": "int64", "user": "bytes", "weight": "float"}
LISTS = {"tok": "int64", "dwell": "float", "cat": "bytes"}


def _records(path: str, limit: int) -> list[bytes]:
    from featurepipe.tfrecord import read_records

    out = []
    for data in read_records(path):
        if len(out) >= limit:
            break
        out.append(bytes(data))
    return out


def _batches(recs: list[bytes], size: int) -> list[list[bytes]]:
    return [recs[i : i + size] for i in range(0, len(recs), size)]


def _fp(args: dict[str, Any], native: bool | None) -> dict[str, Any]:
    from featurepipe.example import decode_sequence_examples

    batches = _batches(_records(args["path"], args["limit"]), args["batch"])
    decode_sequence_examples(batches[0], native=native)
    t0 = time.perf_counter()
    outs = [decode_sequence_examples(b, native=native) for b in batches]
    seconds = time.perf_counter() - t0
    values = sum(len(c.values) for out in outs for c in out.feature_lists.values())
    return {"records": sum(map(len, batches)), "seconds": seconds, "values": values}


def _tf(args: dict[str, Any], ragged: bool) -> dict[str, Any]:
    import tensorflow as tf

    dtypes = {"int64": tf.int64, "float": tf.float32, "bytes": tf.string}
    context = {k: tf.io.FixedLenFeature([], dtypes[v]) for k, v in CONTEXT.items()}
    lists = {
        k: tf.io.RaggedFeature(dtypes[v]) if ragged else tf.io.VarLenFeature(dtypes[v])
        for k, v in LISTS.items()
    }
    batches = [tf.constant(b) for b in _batches(_records(args["path"], args["limit"]),
                                                args["batch"])]
    tf.io.parse_sequence_example(batches[0], context_features=context, sequence_features=lists)
    t0 = time.perf_counter()
    outs = [
        tf.io.parse_sequence_example(b, context_features=context, sequence_features=lists)
        for b in batches
    ]
    seconds = time.perf_counter() - t0  # eager: the tensors are computed when returned
    values = sum(
        int(tf.size(t.flat_values if ragged else t.values)) for _, fl, _ in outs
        for t in fl.values()
    )
    return {"records": sum(int(b.shape[0]) for b in batches), "seconds": seconds,
            "values": values}


TASKS = {
    "fp": lambda a: _fp(a, None),
    "fp_py": lambda a: _fp(a, False),
    "tf_ragged": lambda a: _tf(a, True),
    "tf_varlen": lambda a: _tf(a, False),
}


def main(argv: list[str] | None = None) -> int:
    """Runs one task; prints its JSON line."""
    argv = sys.argv[1:] if argv is None else argv
    task, args = argv[0], json.loads(argv[1])
    print(json.dumps(TASKS[task](args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
