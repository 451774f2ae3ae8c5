"""``featurepipe.data`` batches as a ``keras.utils.PyDataset``: Keras training without tf.data.

:func:`loader_dataset` wraps a :class:`featurepipe.data.Loader` (or any object
with ``len()``, ``iter()`` and ``set_epoch(epoch)`` that yields numpy batches:
a features dict, ``(features, label)`` or ``(features, label, sample_weight)``)
for ``model.fit`` / ``evaluate`` / ``predict`` on every Keras backend. Each epoch
calls ``set_epoch(epoch)`` (a new shuffle order) and reads the loader once, in
order.

**Id widths.** The loader pads the ids of a batch to the longest row *of that
batch*, so the width of an id input changes from batch to batch. Under
``jax.jit`` (the JAX backend compiles the train step) every new input shape is
a new compilation; ``id_width="pow2"`` (the default) pads widths up to the next
power of two, so a column whose rows hold up to ``L`` ids costs at most
``log2(L) + 1`` compilations; an integer ``N`` pads to a multiple of ``N``
(``N`` >= the longest row: one shape); `None` keeps the loader's widths.
Padding only adds ids ``-1`` (and weights 0), which every featurepipe layer
ignores, so outputs do not change. A short last batch (``drop_remainder=False``)
is one more shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import keras
import numpy as np

from featurepipe.errors import ConfigError
from featurepipe.keras._inputs import WEIGHTS_SUFFIX

__all__ = ["BatchLoader", "LoaderDataset", "loader_dataset", "pad_id_widths"]


class BatchLoader(Protocol):
    """What :func:`loader_dataset` reads: ``featurepipe.data.Loader`` or alike."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...

    def set_epoch(self, epoch: int) -> None: ...


def pad_id_widths(features: Mapping[str, Any], id_width: str | int | None) -> dict[str, Any]:
    """The features with every id input (and its weights) padded to a stable width.

    Integer 2-D arrays are ids (padded with ``-1``); ``<name>__weights`` arrays
    are padded with 0 to the width of their ids.

    Args:
        features: ``{input name: array}`` of one batch.
        id_width: ``"pow2"``, a positive integer, or `None` (no padding).

    Returns:
        A new dict (arrays that need no padding are the same objects).

    Examples:
        >>> out = pad_id_widths({"c": np.array([[3, 1, -1]]), "x": np.array([[0.5]])}, "pow2")
        >>> out["c"].tolist(), out["x"].tolist()
        ([[3, 1, -1, -1]], [[0.5]])
    """
    if id_width is None:
        return dict(features)
    out = dict(features)
    for name, value in features.items():
        if name.endswith(WEIGHTS_SUFFIX):
            continue
        array = np.asarray(value)
        if array.ndim != 2 or array.dtype.kind not in "iu":
            continue
        width = _target_width(array.shape[1], id_width)
        if width == array.shape[1]:
            continue
        out[name] = _pad(array, width, -1)
        weights = features.get(name + WEIGHTS_SUFFIX)
        if weights is not None:
            out[name + WEIGHTS_SUFFIX] = _pad(np.asarray(weights), width, 0)
    return out


class LoaderDataset(keras.utils.PyDataset):  # type: ignore[misc]
    """A ``keras.utils.PyDataset`` over a ``featurepipe.data.Loader`` (:func:`loader_dataset`)."""

    def __init__(
        self,
        loader: BatchLoader,
        *,
        id_width: str | int | None = "pow2",
        map_fn: Callable[..., Any] | None = None,
        start_epoch: int = 0,
    ) -> None:
        # One reader, in order: the loader has its own workers and its own prefetching.
        super().__init__(workers=1, use_multiprocessing=False)
        if (
            id_width is not None
            and id_width != "pow2"
            and (isinstance(id_width, bool) or not isinstance(id_width, int) or id_width < 1)
        ):
            raise ConfigError(
                "`id_width` must be 'pow2', a positive integer or None. "
                f"Received: id_width={id_width!r}"
            )
        self.loader = loader
        self.id_width = id_width
        self.map_fn = map_fn
        self.epoch = start_epoch  # the number the next on_epoch_begin gives set_epoch
        self._iterator: Iterator[Any] | None = None
        self._next = 0

    @property
    def num_batches(self) -> int:
        """Batches per epoch: ``len(loader)``."""
        return len(self.loader)

    def __len__(self) -> int:
        return len(self.loader)

    def on_epoch_begin(self) -> None:
        """Starts the loader's next epoch: ``set_epoch(epoch)``, then the epoch number grows."""
        self._restart()
        self.epoch += 1

    def on_epoch_end(self) -> None:
        """Drops the epoch's iterator (Keras also calls this once before the first epoch)."""
        self._iterator = None

    def __getitem__(self, index: int) -> Any:
        """Batch ``index`` of the epoch; batches are read in order (0, 1, 2, ...)."""
        if self._iterator is None or index != self._next:
            if index != 0:
                raise ConfigError(
                    f"LoaderDataset reads its loader in order; batch {index} was asked for "
                    f"after batch {self._next - 1}. Do not shuffle it in Keras "
                    "(`fit(shuffle=False)`; the loader shuffles) or use it with workers."
                )
            self._restart()
        if self._iterator is None:  # _restart sets it; this would be a featurepipe bug
            raise RuntimeError("LoaderDataset has no iterator after a restart")
        try:
            batch = next(self._iterator)
        except StopIteration:
            raise IndexError(
                f"The loader ended after {self._next} batches; len(loader) says {len(self)}."
            ) from None
        self._next += 1
        if isinstance(batch, Mapping):
            batch = pad_id_widths(batch, self.id_width)
        else:
            batch = (pad_id_widths(batch[0], self.id_width), *batch[1:])
        if self.map_fn is not None:
            batch = self.map_fn(*batch) if isinstance(batch, tuple) else self.map_fn(batch)
        return batch

    def _restart(self) -> None:
        self.loader.set_epoch(self.epoch)
        self._iterator = iter(self.loader)
        self._next = 0


def loader_dataset(
    loader: BatchLoader,
    *,
    id_width: str | int | None = "pow2",
    map_fn: Callable[..., Any] | None = None,
    start_epoch: int = 0,
) -> LoaderDataset:
    """A ``keras.utils.PyDataset`` that feeds ``model.fit`` from a ``featurepipe.data.Loader``.

    Works on every Keras backend (JAX, PyTorch, TensorFlow). Each epoch calls
    ``loader.set_epoch(epoch)`` and reads ``len(loader)`` batches in order;
    pass ``shuffle=False`` to ``fit`` (the loader shuffles).

    Args:
        loader: a ``featurepipe.data.Loader`` (or any object with ``len``,
            ``iter`` and ``set_epoch`` yielding numpy batches).
        id_width: how id inputs are padded: ``"pow2"`` (next power of two; few
            shapes, so few ``jax.jit`` compilations), an integer ``N`` (a
            multiple of ``N``) or `None` (the loader's widths). Defaults to `"pow2"`.
        map_fn: applied to each batch after padding (``map_fn(features, label)``
            for tuples, ``map_fn(features)`` for a dict), e.g. to reshape labels.
            Defaults to `None`.
        start_epoch: the first epoch number given to ``set_epoch`` (when
            resuming). Defaults to `0`.

    Returns:
        The dataset.

    Raises:
        ConfigError: for a bad ``id_width``.

    Examples:
        >>> class Batches:
        ...     def __len__(self): return 1
        ...     def __iter__(self): yield {"c": np.array([[1, 2, 3]])}, np.array([1.0])
        ...     def set_epoch(self, epoch): pass
        >>> features, label = loader_dataset(Batches())[0]
        >>> features["c"].tolist()
        [[1, 2, 3, -1]]
    """
    return LoaderDataset(loader, id_width=id_width, map_fn=map_fn, start_epoch=start_epoch)


def _target_width(width: int, id_width: str | int) -> int:
    if id_width == "pow2":
        return 1 << max(0, (width - 1).bit_length()) if width > 1 else 1
    step = int(id_width)
    return max(step, -(-width // step) * step)


def _pad(array: np.ndarray[Any, Any], width: int, value: Any) -> np.ndarray[Any, Any]:
    out = np.full((array.shape[0], width), value, dtype=array.dtype)
    out[:, : array.shape[1]] = array
    return out
