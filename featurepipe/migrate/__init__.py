"""Migrate trained ``tf.estimator`` models to featurepipe (issue 13).

Reading an Estimator checkpoint needs TensorFlow (imported when called) but no
``tf.estimator``.
"""

from __future__ import annotations

from featurepipe.migrate._checkpoint import (
    BatchNormWeights,
    CheckpointVariable,
    DenseLayerWeights,
    DNNWeights,
    EmbeddingTable,
    EstimatorWeights,
    LinearWeights,
    OptimizerSlot,
    OptimizerState,
    UnrecognizedVariable,
    read_estimator_checkpoint,
)

__all__ = [
    "BatchNormWeights",
    "CheckpointVariable",
    "DNNWeights",
    "DenseLayerWeights",
    "EmbeddingTable",
    "EstimatorWeights",
    "LinearWeights",
    "OptimizerSlot",
    "OptimizerState",
    "UnrecognizedVariable",
    "read_estimator_checkpoint",
]
