"""Loader batches (numpy) -> torch tensors, without copying where numpy allows it."""

from __future__ import annotations

import functools
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


# -- one buffer per batch, for DataLoader workers ---------------------------------------------
#
# A DataLoader worker sends each tensor of a batch to the main process through a
# shared-memory segment and a file descriptor of its own (torch/multiprocessing/
# reductions.py, reduce_storage): about 1 ms of CPU per tensor, ~20 ms for a batch of ten
# columns, five times the cost of computing the batch. A worker therefore copies the
# batch's arrays once into one bytearray; the batch pickles as that buffer (through the
# DataLoader's pipe) plus its layout, and unpickling in the main process rebuilds the
# batch as tensors viewing the unpickled buffer. Measured on the benchmark's batches
# (1024 rows, 20 arrays, 150 KB): ~17 ms of CPU per batch with a tensor each, ~3 ms with
# one shared-memory tensor, ~2 ms with one bytearray.

_ALIGN = 64


class _Leaf(NamedTuple):
    """Where one array lies in the batch's buffer."""

    offset: int
    nbytes: int
    dtype: str
    shape: tuple[int, ...]


def _plan(batch: Any, leaves: list[np.ndarray[Any, Any]], size: list[int]) -> Any:
    """The batch with each packable array replaced by its `_Leaf`."""
    if isinstance(batch, np.ndarray) and batch.dtype != np.dtype(object):
        arr = batch if batch.dtype.byteorder != ">" else batch.astype(batch.dtype.newbyteorder("="))
        offset = -(-size[0] // _ALIGN) * _ALIGN
        size[0] = offset + arr.nbytes
        leaves.append(arr)
        return _Leaf(offset, arr.nbytes, arr.dtype.str, tuple(arr.shape))
    if isinstance(batch, dict):
        return {k: _plan(v, leaves, size) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        items = [_plan(v, leaves, size) for v in batch]
        if batch._fields == ("values", "offsets", "weights"):
            return RaggedTensors(*items)
        return type(batch)(*items)
    if isinstance(batch, tuple | list):
        return type(batch)(_plan(v, leaves, size) for v in batch)
    return batch


@functools.lru_cache(maxsize=64)
def _torch_dtype(code: str) -> torch.dtype:
    """The torch dtype of a numpy dtype string (``"<i8"`` -> ``torch.int64``)."""
    return torch.from_numpy(np.empty(0, dtype=np.dtype(code))).dtype


def _views(layout: Any, buffer: torch.Tensor) -> Any:
    if isinstance(layout, _Leaf):
        flat = buffer[layout.offset : layout.offset + layout.nbytes]
        return flat.view(_torch_dtype(layout.dtype)).reshape(layout.shape)
    if isinstance(layout, dict):
        return {k: _views(v, buffer) for k, v in layout.items()}
    if isinstance(layout, tuple) and hasattr(layout, "_fields"):
        return type(layout)(*(_views(v, buffer) for v in layout))
    if isinstance(layout, tuple | list):
        return type(layout)(_views(v, buffer) for v in layout)
    return layout


def _buffer_tensor(data: bytearray) -> torch.Tensor:
    if not data:
        return torch.empty(0, dtype=torch.uint8)
    return torch.frombuffer(data, dtype=torch.uint8)  # writable, no copy


def _unpack(data: bytearray, layout: Any) -> Any:
    """Unpickling a `PackedBatch`: the batch as tensors viewing the unpickled buffer."""
    return _views(layout, _buffer_tensor(data))


class PackedBatch:
    """A batch in one buffer: pickles as the buffer and the layout, unpickles as the batch.

    What a DataLoader worker yields; the main process unpickles it straight
    into the batch (the structure `to_torch` gives, every tensor a view of
    one buffer), so a user does not see this class. `unpack` gives the batch
    without pickling.
    """

    __slots__ = ("data", "layout")

    def __init__(self, data: bytearray, layout: Any) -> None:
        self.data = data
        self.layout = layout

    def unpack(self) -> Any:
        """The batch: tensors viewing `data`."""
        return _unpack(self.data, self.layout)

    def __reduce__(self) -> tuple[Any, tuple[bytearray, Any]]:
        return (_unpack, (self.data, self.layout))


def pack_batch(batch: Any) -> PackedBatch:
    """A loader batch copied into one buffer (one copy), to cross a process boundary.

    Examples:
        >>> import pickle
        >>> packed = pack_batch(({"x": np.ones((2, 1), np.float32)}, np.array([0, 1])))
        >>> features, label = pickle.loads(pickle.dumps(packed))
        >>> features["x"].tolist(), label.tolist(), label.dtype
        ([[1.0], [1.0]], [0, 1], torch.int64)
    """
    leaves: list[np.ndarray[Any, Any]] = []
    size = [0]
    layout = _plan(batch, leaves, size)
    data = bytearray(size[0])
    raw = np.frombuffer(data, dtype=np.uint8)
    pos = 0
    for arr in leaves:
        pos = -(-pos // _ALIGN) * _ALIGN
        np.copyto(raw[pos : pos + arr.nbytes].view(arr.dtype).reshape(arr.shape), arr, casting="no")
        pos += arr.nbytes
    return PackedBatch(data, layout)
