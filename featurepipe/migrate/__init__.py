"""Migrating trained ``tf.estimator`` models to featurepipe (issue 13).

The column part: :func:`columns_from_feature_columns` turns the Estimator's
``tf.feature_column`` columns into featurepipe column specs that give the same
ids and values (same names, so the same ``DenseFeatures`` order), and
:func:`check_columns` proves it on your TFRecords, column by column, against
TensorFlow's own ``tf.feature_column`` code. :func:`read_estimator_checkpoint`
reads an Estimator checkpoint variable by variable (no ``tf.estimator``
needed). TensorFlow is imported inside the functions that need it.

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
    "load_feature_columns",
    "migrate_feature_columns",
    "read_estimator_checkpoint",
    "read_vocabulary_file",
]
