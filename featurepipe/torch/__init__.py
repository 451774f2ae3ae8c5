"""PyTorch input: featurepipe's TF-free loader as a ``torch.utils.data.IterableDataset``.

Importing this package loads torch and numpy, never TensorFlow, Keras or JAX.

* `FeatureDataset`: whole batches of model inputs for ``DataLoader(ds,
  batch_size=None, num_workers=..., pin_memory=True)``, sharded by the rank
  (``torch.distributed`` or torchrun's environment) and the DataLoader worker,
  reshuffled by `FeatureDataset.set_epoch`, resumable with torchdata's
  ``StatefulDataLoader``;
* `to_torch`: a loader batch (numpy) as tensors, without copying;
* `pack_batch` / `PackedBatch`: how a DataLoader worker sends a batch (one
  buffer, unpickled in the main process into the batch of tensors);
* `RaggedTensors`: ids in offsets mode, the arguments of ``nn.EmbeddingBag``;
* `distributed_context`: the rank, world size and local rank of this process.

See docs/torch.md for a wide-and-deep model trained on it.
"""

from __future__ import annotations

from featurepipe.torch._convert import PackedBatch, RaggedTensors, pack_batch, to_torch
from featurepipe.torch._dataset import DistributedContext, FeatureDataset, distributed_context

__all__ = [
    "DistributedContext",
    "FeatureDataset",
    "PackedBatch",
    "RaggedTensors",
    "distributed_context",
    "pack_batch",
    "to_torch",
]
