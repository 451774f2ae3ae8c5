"""TFRecord files of ``tf.Example`` -> batches of numpy column outputs, without TF or torch.

:class:`Loader` reads TFRecord files (a glob, a list, ``PREFIX@N``) into
batches of the columns' model inputs -- the numbers
:func:`featurepipe.keras.make_dataset` computes with ``columns=``, from the
compiled column plan or its pure-Python twin -- sharded exactly by
``(rank, world_size)`` x ``(worker, num_workers)`` over record numbers,
globally shuffled per epoch, with equal batch counts on every rank and
resumable mid-epoch (``state_dict`` / ``load_state_dict``).
:class:`RecordSource` is random access to the records of indexed files and
:class:`ColumnTransform` the column computation alone (records read
elsewhere -> a batch, no files needed; the loader computes its batches with it);
:class:`EpochPlan` is the loader's cut of an epoch (which records each rank
reads, batch by batch), for samplers that serve batches by number. Importing it
loads no TensorFlow, torch, Keras or JAX; ``featurepipe.torch`` and
``featurepipe.grain`` build on it.
"""

from __future__ import annotations

from featurepipe.data._column_transform import ColumnTransform
from featurepipe.data._epoch import UNEVEN_POLICIES, EpochPlan
from featurepipe.data._loader import Loader
from featurepipe.data._source import RecordSource
from featurepipe.data._spec import (
    features_from_columns,
    features_from_schema,
    label_kind,
    schema_beside,
)
from featurepipe.data._transform import WEIGHTS_SUFFIX, RaggedIds

__all__ = [
    "UNEVEN_POLICIES",
    "WEIGHTS_SUFFIX",
    "ColumnTransform",
    "EpochPlan",
    "Loader",
    "RaggedIds",
    "RecordSource",
    "features_from_columns",
    "features_from_schema",
    "label_kind",
    "schema_beside",
]
