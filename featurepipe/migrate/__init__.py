"""Migrating trained ``tf.estimator`` models to featurepipe (issue 13).

The column part: :func:`columns_from_feature_columns` turns the Estimator's
``tf.feature_column`` columns into featurepipe column specs that give the same
ids and values (same names, so the same ``DenseFeatures`` order), and
:func:`check_columns` proves it on your TFRecords, column by column, against
TensorFlow's own ``tf.feature_column`` code. The weights:
:func:`read_estimator_checkpoint` reads an Estimator's name-based checkpoint
(``tf.train.load_checkpoint``, no ``tf.estimator``) and sorts every variable
into linear weights, DNN layers, embedding tables and optimizer slots.
TensorFlow is imported inside the functions that need it.

Command line: ``featurepipe migrate columns`` and ``featurepipe migrate check``.
"""

from __future__ import annotations

from featurepipe.migrate._check import (
    ENGINES,
    CheckReport,
    ColumnCheck,
    RowDifference,
    check_columns,
)
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
from featurepipe.migrate._columns import (
    PARTS,
    MigratedColumns,
    MigrationWarning,
    columns_from_feature_columns,
    migrate_feature_columns,
    read_vocabulary_file,
)
from featurepipe.migrate._outputs import compare_saved_models, resolve_saved_model
from featurepipe.migrate._user import load_feature_columns

__all__ = [
    "ENGINES",
    "PARTS",
    "BatchNormWeights",
    "CheckReport",
    "CheckpointVariable",
    "ColumnCheck",
    "DNNWeights",
    "DenseLayerWeights",
    "EmbeddingTable",
    "EstimatorWeights",
    "LinearWeights",
    "MigratedColumns",
    "MigrationWarning",
    "OptimizerSlot",
    "OptimizerState",
    "RowDifference",
    "UnrecognizedVariable",
    "check_columns",
    "columns_from_feature_columns",
    "compare_saved_models",
    "load_feature_columns",
    "migrate_feature_columns",
    "read_estimator_checkpoint",
    "read_vocabulary_file",
    "resolve_saved_model",
]
