"""One measured thing of the core benchmark, run in a process of its own.

``python -m bench.core.worker TASK '{"path": ...}'`` runs TASK and prints one
JSON line: ``{"records": N, "bytes": B, "seconds": S, ...}`` where ``seconds``
is the timed loop only (imports and loading inputs are not timed; the harness
measures the whole process separately).

This module imports only the standard library at the top, so it runs in the
peer venvs (``bench/.venvs/tfrecord``, ``bench/.venvs/tfxbsl``) where
featurepipe's dependencies may be missing; each task imports what it needs.
"""

from __future__ import annotations

import json
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["TASKS", "main"]

INT_FEATURES = ("label", *(f"I{i}" for i in range(1, 14)))
BYTES_FEATURES = tuple(f"C{i}" for i in range(1, 27))


def _load_records(path: str, limit: int) -> list[bytes]:
    """First ``limit`` records of an uncompressed TFRecord file (no CRC check; not timed)."""
    out: list[bytes] = []
    with open(path, "rb") as f:
        while len(out) < limit:
            head = f.read(12)
            if len(head) < 12:
                break
            (length,) = struct.unpack_from("<Q", head)
            out.append(f.read(length))
            f.read(4)
    return out


def _batches(records: list[bytes], size: int) -> list[list[bytes]]:
    return [records[i:i + size] for i in range(0, len(records), size)]


# ----------------------------------------------------------------------------- readers


def task_raw(a: dict[str, Any]) -> dict[str, Any]:
    """Sequential read of the whole file in 1 MiB blocks: the physical limit."""
    buf = bytearray(a.get("block", 1 << 20))
    total = 0
    t0 = time.perf_counter()
    with open(a["path"], "rb", buffering=0) as f:
        while n := f.readinto(buf):
            total += n
    return {"bytes": total, "seconds": time.perf_counter() - t0}


def task_fp_read(a: dict[str, Any]) -> dict[str, Any]:
    """featurepipe.read_records with CRC verification (the default).

    ``pure`` true: swap the compiled frame scanner for the pure-Python one (the CRC
    itself still comes from the ``crc32c`` package).
    """
    import featurepipe.tfrecord._framing as fp_framing
    from featurepipe.tfrecord import read_records

    pure = bool(a.get("pure"))
    if pure:
        fp_framing.scan_records = fp_framing.scan_records_py

    n = total = 0
    t0 = time.perf_counter()
    for rec in read_records(a["path"], verify_crc=a.get("verify", True)):
        n += 1
        total += len(rec)
    out: dict[str, Any] = {"records": n, "bytes": total, "seconds": time.perf_counter() - t0}
    out["compiled_scan"] = fp_framing.scan_records is not fp_framing.scan_records_py
    return out


def task_tf_data(a: dict[str, Any]) -> dict[str, Any]:
    """tf.data.TFRecordDataset(path).batch(B), iterated eagerly."""
    import tensorflow as tf

    ds = tf.data.TFRecordDataset(a["path"]).batch(a.get("batch", 1024))
    n = 0
    t0 = time.perf_counter()
    for batch in ds:
        n += int(batch.shape[0])
    return {"records": n, "seconds": time.perf_counter() - t0, "tf": tf.__version__}


def task_tfrecord_pkg(a: dict[str, Any]) -> dict[str, Any]:
    """The `tfrecord` package's tfrecord_iterator (it checks no CRC, yields a reused view)."""
    import tfrecord  # type: ignore[import-not-found]
    from tfrecord.reader import tfrecord_iterator  # type: ignore[import-not-found]

    n = total = 0
    t0 = time.perf_counter()
    for rec in tfrecord_iterator(a["path"]):
        n += 1
        total += len(rec)
    return {"records": n, "bytes": total, "seconds": time.perf_counter() - t0,
            "tfrecord": getattr(tfrecord, "__version__", "?")}


# ----------------------------------------------------------------------------- decoders


def _decode_loop(batches: list[Any], fn: Callable[[Any], object]) -> tuple[int, float]:
    fn(batches[0])  # warm-up: first-call costs (lazy init, caches) are not throughput
    n = 0
    t0 = time.perf_counter()
    for b in batches:
        fn(b)
        n += len(b)
    return n, time.perf_counter() - t0


def task_decode_fp(a: dict[str, Any]) -> dict[str, Any]:
    """featurepipe.example.decode_examples on batches -> ColumnBatch.

    ``native``: passed on (None = compiled decoder when built, False = protobuf path).
    """
    import featurepipe.example._codec as fp_example

    native = a.get("native")
    batches = _batches(_load_records(a["path"], a["records"]), a.get("batch", 1024))
    n, s = _decode_loop(batches, lambda b: fp_example.decode_examples(b, native=native))
    compiled = native is not False and fp_example._decode_columns_native is not None
    return {"records": n, "seconds": s, "compiled_decoder": compiled}


def task_decode_pb(a: dict[str, Any]) -> dict[str, Any]:
    """protobuf Example.FromString per record (featurepipe.example.proto; upb backend)."""
    from google.protobuf.internal import api_implementation

    from featurepipe.example.proto.example_pb2 import Example

    parse = Example.FromString
    batches = _batches(_load_records(a["path"], a["records"]), a.get("batch", 1024))

    def fn(batch: list[bytes]) -> object:
        return [parse(r) for r in batch]

    n, s = _decode_loop(batches, fn)
    return {"records": n, "seconds": s, "protobuf_impl": api_implementation.Type()}


def task_decode_pb_columns(a: dict[str, Any]) -> dict[str, Any]:
    """protobuf FromString per record, then gathered into numpy columns + row lengths."""
    import numpy as np

    from featurepipe.example.proto.example_pb2 import Example

    parse = Example.FromString
    batches = _batches(_load_records(a["path"], a["records"]), a.get("batch", 1024))
    dtypes = {"int64_list": np.int64, "float_list": np.float32, "bytes_list": object}

    def fn(batch: list[bytes]) -> object:
        values: dict[str, list[Any]] = {}
        lengths: dict[str, list[int]] = {}
        kinds: dict[str, str] = {}
        rows = len(batch)
        for i, rec in enumerate(batch):
            for name, feat in parse(rec).features.feature.items():
                kind = feat.WhichOneof("kind")
                vals = getattr(feat, kind).value if kind else ()
                if name not in values:
                    values[name], lengths[name], kinds[name] = [], [0] * rows, kind or ""
                values[name].extend(vals)
                lengths[name][i] = len(vals)
        return {name: (np.array(values[name], dtype=dtypes.get(kinds[name], object)),
                       np.array(lengths[name], dtype=np.int64)) for name in values}

    n, s = _decode_loop(batches, fn)
    return {"records": n, "seconds": s}


def task_decode_tf(a: dict[str, Any]) -> dict[str, Any]:
    """tf.io.parse_example on batches (VarLenFeature for every feature -> SparseTensors)."""
    import tensorflow as tf

    spec = {name: tf.io.VarLenFeature(tf.int64) for name in INT_FEATURES}
    spec.update({name: tf.io.VarLenFeature(tf.string) for name in BYTES_FEATURES})
    batches = [tf.constant(b) for b in
               _batches(_load_records(a["path"], a["records"]), a.get("batch", 1024))]
    n, s = _decode_loop(batches, lambda b: tf.io.parse_example(b, spec))
    return {"records": n, "seconds": s, "tf": tf.__version__}


def task_decode_tfxbsl(a: dict[str, Any]) -> dict[str, Any]:
    """tfx-bsl ExamplesToRecordBatchDecoder.DecodeBatch -> pyarrow RecordBatch.

    ``schema`` true: with a TFMD schema naming the 40 features (types known);
    false: schema-less (types inferred per batch, like decode_examples).
    """
    import tfx_bsl  # type: ignore[import-not-found]
    from tfx_bsl.coders.example_coder import (  # type: ignore[import-not-found]
        ExamplesToRecordBatchDecoder,
    )

    if a.get("schema"):
        from tensorflow_metadata.proto.v0 import schema_pb2  # type: ignore[import-not-found]

        schema = schema_pb2.Schema()
        for name in INT_FEATURES:
            schema.feature.add(name=name, type=schema_pb2.INT)
        for name in BYTES_FEATURES:
            schema.feature.add(name=name, type=schema_pb2.BYTES)
        dec = ExamplesToRecordBatchDecoder(schema.SerializeToString())
    else:
        dec = ExamplesToRecordBatchDecoder()
    batches = _batches(_load_records(a["path"], a["records"]), a.get("batch", 1024))
    rb = dec.DecodeBatch(batches[0])
    n, s = _decode_loop(batches, dec.DecodeBatch)
    return {"records": n, "seconds": s, "tfx_bsl": tfx_bsl.__version__,
            "columns": rb.num_columns}


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "raw": task_raw,
    "fp_read": task_fp_read,
    "tf_data": task_tf_data,
    "tfrecord_pkg": task_tfrecord_pkg,
    "decode_fp": task_decode_fp,
    "decode_pb": task_decode_pb,
    "decode_pb_columns": task_decode_pb_columns,
    "decode_tf": task_decode_tf,
    "decode_tfxbsl": task_decode_tfxbsl,
}


def main(argv: list[str] | None = None) -> int:
    """Runs one task and prints its JSON report as the last stdout line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in TASKS:
        print(f"usage: python -m bench.core.worker {{{','.join(TASKS)}}} JSON_ARGS",
              file=sys.stderr)
        return 2
    report = TASKS[args[0]](json.loads(args[1]))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
