"""Beam transforms over the featurepipe core (needs ``apache-beam``).

Install with ``pip install 'featurepipe[beam]'``. Conversion:
`ReadRawBatches` -> `EncodeExamples` (with a dead-letter output) -> sharded
atomic output, all in `ConvertToExamples`; analysis: `ReadTFRecordBatches`
-> `AnalyzeDataset`, with `AccumulatorCombineFn` wrapping any core
accumulator in a CombineFn.
"""

from __future__ import annotations

try:
    import apache_beam  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised without Beam installed
    raise ImportError(
        "featurepipe.beam requires the apache_beam module. You can install it via "
        "`pip install 'featurepipe[beam]'`"
    ) from e

from featurepipe.beam._analyze import AccumulatorCombineFn, AnalyzeDataset, ReadTFRecordBatches
from featurepipe.beam._convert import (
    BadFractionError,
    ConvertToExamples,
    EncodedOutputs,
    EncodeExamples,
    InferRawSchema,
    ReadRawBatches,
    ShardOptions,
    format_summary,
    read_summary,
)
from featurepipe.beam._runners import RUNNER_NAMES, run_pipeline, runner_arguments

__all__ = [
    "RUNNER_NAMES",
    "AccumulatorCombineFn",
    "AnalyzeDataset",
    "BadFractionError",
    "ConvertToExamples",
    "EncodeExamples",
    "EncodedOutputs",
    "InferRawSchema",
    "ReadRawBatches",
    "ReadTFRecordBatches",
    "ShardOptions",
    "format_summary",
    "read_summary",
    "run_pipeline",
    "runner_arguments",
]
