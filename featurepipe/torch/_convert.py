"""Loader batches (numpy) -> torch tensors, without copying where numpy allows it."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import torch


class RaggedTensors(NamedTuple):
    """The ids of one categorical column in ``ids="offsets"`` mode, as tensors.

    The three fields are what ``torch.nn.EmbeddingBag`` takes:
    ``bag(values, offsets, per_sample_weights=weights)`` (the default
    ``include_last_offset=False``): row ``r`` holds
    ``values[offsets[r]:offsets[r + 1]]``, the last row runs to the end; a row
    without ids is an empty bag (zeros). As ``featurepipe.data.RaggedIds``.

    Attributes:
        values: int64 ``[N]``, the ids of all rows in row order.
        offsets: int64 ``[B]``, where each row starts in ``values``.
        weights: float32 ``[N]``, one weight per id (weighted columns), or `None`.
    """

    values: torch.Tensor
    offsets: torch.Tensor
    weights: torch.Tensor | None


def _tensor(array: np.ndarray[Any, Any]) -> torch.Tensor:
    """One array as a tensor sharing its memory (a copy only where torch cannot view it)."""
    if array.dtype.byteorder == ">" or array.dtype == np.dtype(object):
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    if array.flags.writeable:
        return torch.from_numpy(array)
    # The compiled column plan hands out read-only views of a buffer made for
    # this batch alone (featurepipe.columns.ColumnPlan.arrays): nothing else
    # reads or writes it, so the tensor may view it. torch warns about any
    # read-only array (pytorch/pytorch issue 44027); the warning does not
    # apply to a private buffer.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def to_torch(batch: Any) -> Any:
    """A loader batch with every numpy array turned into a tensor (no copy).

    Dicts, tuples and lists keep their shape; a ``RaggedIds`` becomes a
    `RaggedTensors`; numpy scalars and arrays become tensors; anything
    else (``None``, strings) is returned as it is.

    Args:
        batch: what ``featurepipe.data.Loader`` yields.

    Returns:
        The same structure of tensors. A tensor shares memory with its array.

    Examples:
        >>> import numpy as np
        >>> out = to_torch(({"x": np.ones((2, 1), np.float32)}, np.array([0, 1])))
        >>> out[0]["x"].shape, out[1].dtype
        (torch.Size([2, 1]), torch.int64)
    """
    if isinstance(batch, np.ndarray):
        return _tensor(batch)
    if isinstance(batch, np.generic):
        return torch.as_tensor(batch)
    if isinstance(batch, dict):
        return {k: to_torch(v) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        fields = batch._fields
        if fields == ("values", "offsets", "weights"):
            return RaggedTensors(*(to_torch(v) for v in batch))
        return type(batch)(*(to_torch(v) for v in batch))
    if isinstance(batch, tuple | list):
        return type(batch)(to_torch(v) for v in batch)
    return batch
