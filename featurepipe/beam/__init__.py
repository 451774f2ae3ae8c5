"""Beam transforms and jobs over the featurepipe core (needs ``apache-beam``).

Install with ``pip install 'featurepipe[beam]'``. Conversion:
`ReadRawBatches` -> `EncodeExamples` (with a dead-letter output) -> sharded
atomic output, all in `ConvertToExamples`; analysis: `ReadTFRecordBatches`
-> `AnalyzeDataset`, with `AccumulatorCombineFn` wrapping any core
accumulator in a CombineFn.

The jobs run by ``featurepipe convert|analyze`` and ``python -m
pipelines.convert|analyze``: `add_convert_arguments`, `run_convert`,
`convert_job`; `add_analyze_arguments`, `run_analyze`, `analyze_job`,
`read_analysis_spec`. Their options can be added to a parser without Beam:
Beam (and the transforms above) load on first use of a name that needs them,
so the command line starts without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from featurepipe.beam._jobs import (
    ANALYZE_DESCRIPTION,
    CONVERT_DESCRIPTION,
    add_analyze_arguments,
    add_convert_arguments,
    analyze_job,
    convert_job,
    quiet_third_party_noise,
    read_analysis_spec,
    run_analyze,
    run_convert,
)
from featurepipe.beam._runners import RUNNER_NAMES, run_pipeline, runner_arguments

if TYPE_CHECKING:
    from featurepipe.beam._analyze import (
        AccumulatorCombineFn,
        AnalyzeDataset,
        ReadTFRecordBatches,
    )
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

# name -> module, imported (with Beam) on first access (PEP 562)
_NEED_BEAM = {
    "AccumulatorCombineFn": "featurepipe.beam._analyze",
    "AnalyzeDataset": "featurepipe.beam._analyze",
    "ReadTFRecordBatches": "featurepipe.beam._analyze",
    "BadFractionError": "featurepipe.beam._convert",
    "ConvertToExamples": "featurepipe.beam._convert",
    "EncodeExamples": "featurepipe.beam._convert",
    "EncodedOutputs": "featurepipe.beam._convert",
    "InferRawSchema": "featurepipe.beam._convert",
    "ReadRawBatches": "featurepipe.beam._convert",
    "ShardOptions": "featurepipe.beam._convert",
    "format_summary": "featurepipe.beam._convert",
    "read_summary": "featurepipe.beam._convert",
}

__all__ = [
    "ANALYZE_DESCRIPTION",
    "CONVERT_DESCRIPTION",
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
    "add_analyze_arguments",
    "add_convert_arguments",
    "analyze_job",
    "convert_job",
    "format_summary",
    "quiet_third_party_noise",
    "read_analysis_spec",
    "read_summary",
    "run_analyze",
    "run_convert",
    "run_pipeline",
    "runner_arguments",
]


def __getattr__(name: str) -> Any:
    module = _NEED_BEAM.get(name)
    if module is None:
        raise AttributeError(f"module 'featurepipe.beam' has no attribute {name!r}")
    try:
        import apache_beam  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised without Beam installed
        raise ImportError(
            f"featurepipe.beam.{name} requires the apache_beam module. You can install it via "
            "`pip install 'featurepipe[beam]'`"
        ) from e
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NEED_BEAM))
