"""The ten columns of the torch-loader benchmark (stdlib only: the tfrecord peer imports it).

Over the Criteo-like data of :mod:`bench.datagen`, with the statistics of
:func:`bench.columns.plan.make_plan` (bucket boundaries, moments, vocabularies):

* numeric: ``I7``, ``I8`` (z-score; a missing integer reads 0);
* bucketized: ``I1``, ``I2`` (``log(x + 4)``, 16 buckets);
* hashed: ``C1``, ``C2`` (100,000 buckets);
* vocabulary: ``C14`` (10,000 values + 1 OOV bucket);
* crossed: ``C1 x C2`` (100,000 buckets);
* embedding: ``C3`` hashed and ``C15`` vocabulary, each under an embedding column
  (the loader gives their ids; the model embeds them).

Every categorical output is ragged ids (``values``, and ``offsets``: where each
row starts, as ``nn.EmbeddingBag`` takes them): a missing string has no id;
bucket ids are one per row.
"""

from __future__ import annotations

BATCH_SIZE = 1024
NUMERIC = ("I7", "I8")
BUCKETIZED = ("I1", "I2")
HASHED = ("C1", "C2")
VOCAB = ("C14",)
CROSS = ("C1", "C2")
EMB_HASHED = ("C3",)
EMB_VOCAB = ("C15",)
HASH_BINS = 100_000
LOG_OFFSET = 4.0
DEFAULT_HASH_KEY = 0xDECAFCAFFE  # tf.sparse.cross_hashed's default key
