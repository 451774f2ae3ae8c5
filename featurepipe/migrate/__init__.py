"""Migrating trained ``tf.estimator`` models to featurepipe (issue 13).

The column part: :func:`columns_from_feature_columns` turns the Estimator's
``tf.feature_column`` columns into featurepipe column specs that give the same
ids and values (same names, so the same ``DenseFeatures`` order), and
:func:`check_columns` proves it on your TFRecords, column by column, against
TensorFlow's own ``tf.feature_column`` code. :func:`read_estimator_checkpoint`
reads an Estimator checkpoint variable by variable (no ``tf.estimator``
needed), and :func:`migrate_estimator` loads it into the matching featurepipe
Keras model (the Estimator's outputs, to float rounding) with a serving export
of the Estimator's signatures and a ``migration.json`` of where every variable
went; :func:`compare_saved_models` compares the old and the migrated
SavedModels signature by signature. TensorFlow and Keras are imported inside
the functions that need them.

Command line: ``featurepipe migrate columns``, ``migrate check`` and ``migrate estimator``.
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
from featurepipe.migrate._estimator import (
    ESTIMATORS,
    EstimatorMigration,
    estimator_arguments,
    migrate_estimator,
)
from featurepipe.migrate._outputs import compare_saved_models, resolve_saved_model
from featurepipe.migrate._user import load_feature_columns

__all__ = [
    "ENGINES",
    "ESTIMATORS",
    "PARTS",
    "BatchNormWeights",
    "CheckReport",
    "CheckpointVariable",
    "ColumnCheck",
    "DNNWeights",
    "DenseLayerWeights",
    "EmbeddingTable",
    "EstimatorMigration",
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
    "estimator_arguments",
    "load_feature_columns",
    "migrate_estimator",
    "migrate_feature_columns",
    "read_estimator_checkpoint",
    "read_vocabulary_file",
    "resolve_saved_model",
]
