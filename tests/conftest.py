"""Shared fixtures: tiny generated TFRecord files.

The hooks that turn a skip for a missing module into a failure under ``CI=true``
are in the root conftest.py (they apply to tests/ and to the doctests of
featurepipe/ alike).
"""

from __future__ import annotations

import os
import pathlib

import pytest

from featurepipe.example._codec import encode_example
from featurepipe.tfrecord import TFRecordWriter

TESTDATA = pathlib.Path(__file__).parent / "testdata"


def small_examples(n: int = 20) -> list[bytes]:
    """``n`` Criteo-like Examples (label, two ints, one float list, one string)."""
    return [
        encode_example(
            {
                "label": i % 2,
                "I1": i,
                "I2": [i, -i],
                "F": [0.5 * i],
                "C1": f"{i * 2654435761 % 2**32:08x}",
            }
        )
        for i in range(n)
    ]


@pytest.fixture(scope="session")
def example_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The same 20 Examples written uncompressed, GZIP and ZLIB."""
    d = tmp_path_factory.mktemp("examples")
    out = {}
    for comp in ("none", "gzip", "zlib"):
        p = os.path.join(d, f"ex.{comp}.tfrecord")
        with TFRecordWriter(p, comp) as w:  # type: ignore[arg-type]
            w.write_many(small_examples())
        out[comp] = p
    return out
