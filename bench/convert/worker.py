"""One measured conversion, run in a process of its own.

``python -m bench.convert.worker TASK '{"csv": ..., "out": ...}'`` converts the
Criteo-like CSV into TFRecord files of tf.Example and prints one JSON line:
``{"records": N, "seconds": S}`` where ``seconds`` is the conversion itself
(imports are not timed; the harness measures the whole process separately).

Only the standard library is imported at the top, so the ``tfxbsl`` task
runs in the peer venv ``bench/.venvs/tfxbsl``.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["TASKS", "main"]

INT_COLUMNS = ("label", *(f"I{i}" for i in range(1, 14)))
STR_COLUMNS = tuple(f"C{i}" for i in range(1, 27))
MULTI = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
INPROC = ["--direct_running_mode=in_memory"]


def _start() -> tuple[float, float]:
    return time.perf_counter(), _cpu()


def _cpu() -> float:
    """CPU seconds of this process and its finished children (multi_processing workers)."""
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _elapsed(t0: tuple[float, float]) -> dict[str, float]:
    """Wall and CPU seconds of the timed span (CPU: to compare on a busy machine)."""
    return {"seconds": time.perf_counter() - t0[0], "cpu_seconds": _cpu() - t0[1]}


def _schema() -> Any:
    from featurepipe.example import FeatureSchema, Schema

    return Schema(
        (
            FeatureSchema("label", "int64", shape=()),
            *(FeatureSchema(c, "int64", shape=(), required=False) for c in INT_COLUMNS[1:]),
            *(FeatureSchema(c, "bytes", shape=(), required=False) for c in STR_COLUMNS),
        )
    )


def _featurepipe(a: dict[str, Any], beam_args: list[str]) -> dict[str, Any]:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from featurepipe.beam import ConvertToExamples, ShardOptions, read_summary

    prefix = os.path.join(a["out"], "fp")
    schema = None if a.get("infer") else _schema()
    t = _start()
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        _ = p | ConvertToExamples(
            [a["csv"]], prefix, schema=schema, shard_options=ShardOptions(num_shards=2)
        )
    timing = _elapsed(t)
    s = read_summary(prefix)
    return {"records": s["rows_written"], **timing, "dead": s["rows_dead_lettered"]}


def task_fp_inprocess(a: dict[str, Any]) -> dict[str, Any]:
    """featurepipe ConvertToExamples, DirectRunner in-process."""
    return _featurepipe(a, INPROC)


def task_fp_infer(a: dict[str, Any]) -> dict[str, Any]:
    """featurepipe ConvertToExamples in-process, schema inferred from every row (reads twice)."""
    return _featurepipe({**a, "infer": True}, INPROC)


def task_fp_multi(a: dict[str, Any]) -> dict[str, Any]:
    """featurepipe ConvertToExamples, DirectRunner multi_processing with 2 workers."""
    return _featurepipe(a, MULTI)


def _naive_parse(line: str) -> bytes:
    """The straightforward per-row job: split a line, build a tf.train.Example."""
    import tensorflow as tf

    cells = line.split(",")
    feature = {}
    for name, cell in zip(INT_COLUMNS + STR_COLUMNS, cells, strict=True):
        if cell == "":
            continue
        if name in STR_COLUMNS:
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[cell.encode()]))
        else:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(cell)]))
    ex = tf.train.Example(features=tf.train.Features(feature=feature))
    return ex.SerializeToString()


def _naive(a: dict[str, Any], beam_args: list[str]) -> dict[str, Any]:
    import apache_beam as beam
    import tensorflow as tf  # noqa: F401 - imported before the timer, as in every task
    from apache_beam.options.pipeline_options import PipelineOptions

    prefix = os.path.join(a["out"], "naive")
    t = _start()
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        _ = (
            p
            | "Read" >> beam.io.ReadFromText(a["csv"], skip_header_lines=1)
            | "ToExample" >> beam.Map(_naive_parse)
            | "Write" >> beam.io.WriteToTFRecord(prefix, file_name_suffix=".tfrecord", num_shards=2)
        )
    timing = _elapsed(t)
    return {"records": _count(prefix + "-*"), **timing}


def task_naive_inprocess(a: dict[str, Any]) -> dict[str, Any]:
    """ReadFromText -> parse -> tf.train.Example -> WriteToTFRecord, in-process."""
    return _naive(a, INPROC)


def task_naive_multi(a: dict[str, Any]) -> dict[str, Any]:
    """The same straightforward job, multi_processing with 2 workers."""
    return _naive(a, MULTI)


def task_tf_loop(a: dict[str, Any]) -> dict[str, Any]:
    """A plain Python loop: csv.reader -> tf.train.Example -> tf.io.TFRecordWriter."""
    import tensorflow as tf

    _naive_parse("0," * 39 + "0")  # warm up (first use of tf.train builds its classes)
    path = os.path.join(a["out"], "loop.tfrecord")
    n = 0
    t = _start()
    with open(a["csv"], newline="") as f, tf.io.TFRecordWriter(path) as w:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            w.write(_naive_parse(",".join(row)))
            n += 1
    return {"records": n, **_elapsed(t)}


def task_tfxbsl(a: dict[str, Any]) -> dict[str, Any]:
    """tfx-bsl: pyarrow CSV -> RecordBatch -> RecordBatchToExamplesEncoder -> TFRecordWriter."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder

    schema = schema_pb2.Schema()
    for c in INT_COLUMNS:
        schema.feature.add(name=c, type=schema_pb2.INT)
    for c in STR_COLUMNS:
        schema.feature.add(name=c, type=schema_pb2.BYTES)
    types = {c: pa.int64() for c in INT_COLUMNS} | {c: pa.binary() for c in STR_COLUMNS}
    path = os.path.join(a["out"], "tfxbsl.tfrecord")
    n = 0
    t = _start()
    encoder = RecordBatchToExamplesEncoder(schema)
    reader = pacsv.open_csv(
        a["csv"],
        read_options=pacsv.ReadOptions(block_size=4 << 20),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
    )
    with tf.io.TFRecordWriter(path) as w:
        for rb in reader:
            # The encoder wants list columns: wrap each scalar column as a one-value list
            # (a null cell becomes a null list, i.e. an absent feature).
            cols = []
            for col in rb.columns:
                offsets = pa.array(range(len(col) + 1), pa.int32())
                lst = pa.ListArray.from_arrays(offsets, col, mask=col.is_null())
                cols.append(lst)
            lrb = pa.RecordBatch.from_arrays(cols, rb.schema.names)
            for ex in encoder.encode(lrb):
                w.write(ex)
                n += 1
    return {"records": n, **_elapsed(t)}


def _count(pattern: str) -> int:
    import struct

    n = 0
    for path in glob.glob(pattern):
        with open(path, "rb") as f:
            while head := f.read(12):
                (length,) = struct.unpack_from("<Q", head)
                f.seek(length + 4, os.SEEK_CUR)
                n += 1
    return n


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "fp_inprocess": task_fp_inprocess,
    "fp_multi": task_fp_multi,
    "naive_inprocess": task_naive_inprocess,
    "naive_multi": task_naive_multi,
    "tf_loop": task_tf_loop,
    "tfxbsl": task_tfxbsl,
    "fp_infer": task_fp_infer,
}


def main(argv: list[str] | None = None) -> int:
    """Runs one task; prints its JSON report as the last stdout line."""
    argv = sys.argv[1:] if argv is None else argv
    task, args = argv[0], json.loads(argv[1])
    out = TASKS[task](args)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
