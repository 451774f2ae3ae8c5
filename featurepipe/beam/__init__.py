"""Beam transforms over the featurepipe core (needs ``apache-beam``)."""

from __future__ import annotations

from featurepipe.beam.convert import (
    ConvertToExamples,
    EncodeExamples,
    InferRawSchema,
    ReadRawBatches,
    ShardOptions,
)

__all__ = [
    "ConvertToExamples",
    "EncodeExamples",
    "InferRawSchema",
    "ReadRawBatches",
    "ShardOptions",
]
