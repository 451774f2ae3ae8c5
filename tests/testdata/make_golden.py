"""Writes the golden TFRecord files in this folder with real TensorFlow.

    .venv/bin/python tests/testdata/make_golden.py

Made once with tensorflow-cpu 2.21.0 and committed; the tests read them
without TensorFlow and compare with `golden_examples()` below, which the tests
import (so the values live in one place).

Files:
    golden.tfrecord        tf.io.TFRecordWriter, no compression
    golden.tfrecord.gz     the same records, options="GZIP"
    golden.tfrecord.zlib   the same records, options="ZLIB"
    foo_bar.tfrecord       two raw records b"foo", b"bar" (Beam's golden bytes)
"""

from __future__ import annotations

import os
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def golden_examples() -> list[dict[str, tuple[str | None, list[Any]]]]:
    """The Examples in the golden files: feature -> (kind, values).

    kind None is a Feature with no list set; ("int64", []) an empty list.
    """
    return [
        {
            "label": ("int64", [1]),
            "I1": ("int64", [0, -1, 2**53 + 1, INT64_MIN, INT64_MAX]),
            "f": ("float", [0.5, -0.0, float("inf"), float("-inf"), 1e-45]),
            "C1": ("bytes", [b"68fd1e64", "unicod\u00e9 \u2603".encode(), b""]),
            "raw": ("bytes", [b"\x00\xff\xfe"]),
        },
        {
            "label": ("int64", [0]),
            "empty_int": ("int64", []),
            "kindless": (None, []),
            "": ("bytes", [b"empty name"]),
            "nan": ("float", [float("nan")]),
        },
        {},
        {"big": ("bytes", [bytes(range(256)) * 300])},
    ]


def main() -> None:
    import tensorflow as tf

    def to_example(d: dict[str, tuple[str | None, list[Any]]]) -> bytes:
        feats = {}
        for name, (kind, vals) in d.items():
            if kind == "int64":
                feats[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=vals))
            elif kind == "float":
                feats[name] = tf.train.Feature(float_list=tf.train.FloatList(value=vals))
            elif kind == "bytes":
                feats[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=vals))
            else:
                feats[name] = tf.train.Feature()
        ex = tf.train.Example(features=tf.train.Features(feature=feats))
        return ex.SerializeToString(deterministic=True)

    records = [to_example(d) for d in golden_examples()]
    for name, opts in (
        ("golden.tfrecord", None),
        ("golden.tfrecord.gz", "GZIP"),
        ("golden.tfrecord.zlib", "ZLIB"),
    ):
        with tf.io.TFRecordWriter(os.path.join(HERE, name), options=opts) as w:
            for r in records:
                w.write(r)
    with tf.io.TFRecordWriter(os.path.join(HERE, "foo_bar.tfrecord")) as w:
        w.write(b"foo")
        w.write(b"bar")


if __name__ == "__main__":
    main()
