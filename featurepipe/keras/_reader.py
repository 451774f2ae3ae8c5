"""The compiled reader: TFRecord files to batches of model inputs, no tf.data element per record.

:func:`record_batches_dataset` (local files, in order or shuffled) maps
windows of each file and verifies and indexes their frames
(:mod:`featurepipe.tfrecord`'s mapped-window reader, ``_speedups.scan_frames``);
a batch is a few references into them (runs of frames in order,
:func:`~featurepipe.tfrecord.unit_batches`; gather units when drawn from a
shuffle buffer of references, :func:`~featurepipe.tfrecord.shuffled_unit_batches`),
computed by the compiled plan (:class:`~featurepipe.keras._compiled.CompiledTransform`)
on the native threads of a ``_speedups.ColumnsRunner`` ahead of the tf.data
thread, which only hands finished arrays to TF. An exit guard ends every reader
before the interpreter finalizes (:class:`_ExitGuard`).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import inspect
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from featurepipe._native import speedups
from featurepipe.keras._compiled import CompiledTransform
from featurepipe.tfrecord import (
    RecordUnit,
    batch_payloads,
    shuffled_unit_batches,
    unit_batches,
    unit_count,
)

__all__ = ["record_batches_dataset"]

_speedups: Any = speedups

# Worker threads of the ColumnsRunner: the C work of one batch takes about as
# long as the Python work of handing one to TF (and the consumer's own), so one
# thread keeps up on a few cores; two where there are more to spare. 0: inline.
_THREADS = 2 if (os.cpu_count() or 1) > 4 else 1
# Batches submitted to the runner beyond the one being handed over.
_AHEAD = 4


def record_batches_dataset(
    files: Sequence[str],
    compression: str,
    compiled: CompiledTransform,
    element_spec: Any,
    *,
    batch_size: int,
    num_epochs: int | None,
    drop_remainder: bool,
    shuffle_buffer_size: int = 0,
    seed: int | None = None,
    cycle_length: int = 1,
) -> tf.data.Dataset:
    """Files read, batched and transformed without a tf.data element per record.

    The records come from :func:`featurepipe.tfrecord.read_records` (CRCs
    verified, GZIP / ZLIB streamed) a batch at a time and go through
    ``compiled``; a batch the compiled plan gives up on runs the TF ops
    (eagerly) instead. Each iterator of the dataset gets its own reader, kept
    in a registry of this dataset until it is exhausted (one that is abandoned
    early, e.g. by ``take``, keeps its file open until the dataset is freed).
    The finished arrays cross into TF through one ``numpy_function`` per batch
    (``from_generator``'s ``py_function`` costs about three times as much CPU
    per tensor). In order (``shuffle_buffer_size=0``) it yields exactly what
    ``TFRecordDataset(files).repeat(num_epochs).batch(batch_size).map(parse)``
    yields, in the same order; shuffled, what
    :func:`~featurepipe.tfrecord.shuffled_unit_batches` draws
    (the records of each epoch, each once, in an order of its own).

    Args:
        files: the files, read one after the other.
        compression: ``"auto"``, ``"none"``, ``"gzip"`` or ``"zlib"``.
        compiled: the compiled transform.
        element_spec: the element spec of the TF-op dataset.
        batch_size: examples per batch.
        num_epochs: passes over the files; `None` repeats forever.
        drop_remainder: drop the last partial batch.
        shuffle_buffer_size: records in the shuffle buffer; 0 reads in order.
        seed: the shuffle seed; iterator k of the dataset draws from
            ``numpy.random.default_rng([seed, k])``. `None`: fresh entropy.
        cycle_length: files read at once when shuffling.
    """

    slow = tf.function(
        compiled.slow, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False
    )
    flat_spec = tf.nest.flatten(element_spec)
    dtypes = [spec.dtype for spec in flat_spec]
    empty = [np.zeros([0] * spec.shape.rank, spec.dtype.as_numpy_dtype) for spec in flat_spec]

    # Where each input lands in tf.nest.flatten((inputs, label)): sorted keys.
    plan = compiled.plan
    names = plan.inputs
    order = tf.nest.flatten(dict(zip(names, range(len(names)), strict=True)))
    if plan.label_key is not None:
        order.append(len(names))

    def finish(batch: list[RecordUnit], got: Any) -> list[np.ndarray[Any, Any]]:
        arrays = plan.arrays(got, sum(map(unit_count, batch)))
        if arrays is None:
            # The TF ops run eagerly from inside the numpy_function. TF inside a
            # py-function inside tf.data can hang when many run at once
            # (tensorflow#32454); here one step runs at a time (a sequential map).
            # Running them in the graph instead (a tf.cond in next_batch) was
            # measured: the parse and vocabulary tables of that branch are then
            # built with every iterator, 30% more CPU per example on the benchmark.
            out = slow(tf.constant(batch_payloads(batch), dtype=tf.string))
            return [t.numpy() for t in tf.nest.flatten(out)]
        return [arrays[i] for i in order]

    def generate(reader_id: int) -> Iterator[list[np.ndarray[Any, Any]]]:
        if shuffle_buffer_size <= 0:
            batches = unit_batches(
                files,
                compression,
                batch_size=batch_size,
                num_epochs=num_epochs,
                drop_remainder=drop_remainder,
            )
        else:
            entropy = None if seed is None else [seed, reader_id]
            batches = shuffled_unit_batches(
                files,
                compression,
                np.random.default_rng(entropy),
                batch_size=batch_size,
                buffer_size=shuffle_buffer_size,
                cycle_length=cycle_length,
                num_epochs=num_epochs,
                drop_remainder=drop_remainder,
            )
        if _THREADS < 1 or not hasattr(_speedups, "ColumnsRunner"):  # inline
            for batch in batches:
                yield finish(batch, _speedups.columns_run(plan.handle, batch_payloads(batch)))
            return
        # The C work of the next batches runs on the runner's own threads, without
        # the GIL, while this thread hands the previous batch to TF; results come
        # out in order. The runner holds each batch's mapped window until taken.
        runner = _speedups.ColumnsRunner(plan.handle, _THREADS)
        error: BaseException | None = None
        try:
            ahead: collections.deque[list[RecordUnit]] = collections.deque()
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except Exception as e:  # damage: first every batch before it
                    error = e
                    break
                runner.submit(batch)
                ahead.append(batch)
                if len(ahead) > _AHEAD:
                    yield finish(ahead.popleft(), runner.take())
            while ahead:
                yield finish(ahead.popleft(), runner.take())
        finally:
            runner.close()
        if error is not None:
            raise error

    readers: dict[int, Iterator[list[np.ndarray[Any, Any]]]] = {}
    ids = itertools.count()
    lock = threading.Lock()

    def start(_: Any) -> np.int64:
        with lock:
            reader_id = next(ids)
            readers[reader_id] = generate(reader_id)
        return np.int64(reader_id)

    def step(reader_id: np.int64) -> list[np.ndarray[Any, Any]]:
        with _EXIT.stepping():
            with lock:
                reader = readers.get(int(reader_id))
            out = next(reader, None) if reader is not None and not _EXIT.exiting else None
        if out is None:
            with lock:
                readers.pop(int(reader_id), None)
            if stop_ends:
                # numpy_function turns StopIteration into OutOfRange, which ends
                # a map that need not preserve cardinality (see _map_until_stop).
                raise StopIteration
            return empty  # the end for take_while: a real batch has a row at least
        return out

    def next_batch(reader_id: tf.Tensor) -> Any:
        flat = tf.numpy_function(step, [reader_id], dtypes, stateful=True)
        for t, spec in zip(flat, flat_spec, strict=True):
            t.set_shape(spec.shape)
        return tf.nest.pack_sequence_as(element_spec, flat)

    def has_rows(*element: Any) -> tf.Tensor:
        return tf.shape(tf.nest.flatten(element)[0])[0] > 0

    stop_ends = _map_until_stop is not None

    def batches(z: tf.Tensor) -> tf.data.Dataset:
        # A new reader for each iterator: flat_map calls this once per iterator.
        reader_id = tf.numpy_function(start, [z], tf.int64, stateful=True)
        steps = tf.data.Dataset.from_tensors(reader_id).repeat()
        if _map_until_stop is not None:
            return _map_until_stop(steps, next_batch)
        return steps.map(next_batch).take_while(has_rows)

    # Each tf.data function is instantiated with every iterator (~20 ms each here):
    # the reader starts inside the flat_map function rather than in a map of its own.
    return tf.data.Dataset.from_tensors(np.int64(0)).flat_map(batches)


def _load_map_until_stop() -> Callable[[tf.data.Dataset, Callable[..., Any]], Any] | None:
    """``ds.map(fn)`` where ``fn`` ends the data by raising OutOfRange, or `None`.

    ``Dataset.map`` turns OutOfRange from its function into an error, to keep the
    input's cardinality; the map op itself can end the data there instead, which
    is how ``Dataset.from_generator`` ends. Ending so costs no ``take_while``: one
    tf.data function fewer to instantiate per iterator (graph passes, ~10 ms
    here) and none to run per batch. ``use_inter_op_parallelism=False`` runs the
    one-op function inline, without a hop to the inter-op pool. The class is
    TF's own (``tensorflow.python.data.ops.map_op._MapDataset``, stable since
    TF 2.10); where it is missing or differs, `None` and ``take_while`` ends it.
    """
    try:
        from tensorflow.python.data.ops import map_op

        cls = map_op._MapDataset
        params = inspect.signature(cls).parameters
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    if not {"preserve_cardinality", "use_inter_op_parallelism"} <= set(params):
        return None

    def map_until_stop(ds: tf.data.Dataset, fn: Callable[..., Any]) -> Any:
        return cls(ds, fn, use_inter_op_parallelism=False, preserve_cardinality=False)

    return map_until_stop


_map_until_stop = _load_map_until_stop()


class _ExitGuard:
    """Ends every reader before the interpreter shuts down.

    A tf.data thread that enters a ``numpy_function`` while Python finalizes
    never gets the GIL back (Python ends such threads), and deleting the
    iterator then waits for that thread forever: a script that exits with a live
    iterator of this dataset hangs (``Dataset.from_generator`` has the same race).
    At exit this makes every further ``step`` end its data, then waits until no
    step has run for a moment (a prefetch thread with a full buffer calls none;
    one still producing gets its end and finishes), before finalization starts.
    """

    QUIET = 0.05  # seconds without a step: every producing thread has seen its end
    LIMIT = 2.0  # the most it waits

    def __init__(self) -> None:
        self.exiting = False
        self._lock = threading.Lock()
        self._active = 0
        self._last = 0.0  # monotonic end of the last step
        self._registered = False

    @contextlib.contextmanager
    def stepping(self) -> Iterator[None]:
        with self._lock:
            self._active += 1
            if not self._registered:
                atexit.register(self.shutdown)
                self._registered = True
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                self._last = time.monotonic()

    def shutdown(self) -> None:
        self.exiting = True
        deadline = time.monotonic() + self.LIMIT
        while time.monotonic() < deadline:
            with self._lock:
                busy = self._active > 0 or time.monotonic() - self._last < self.QUIET
            if not busy:
                return
            time.sleep(0.005)  # lets producing threads take the GIL and end


_EXIT = _ExitGuard()
