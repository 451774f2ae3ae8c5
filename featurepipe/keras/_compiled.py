"""Parse + :class:`~featurepipe.keras.ColumnTransform` in one compiled call.

``make_dataset(..., columns=..., apply_columns=True)`` spends most of its CPU
in TensorFlow's generic ``parse_example`` and in a few ops per column (hash,
table lookup, where, to_dense, bucketize, ...), each with its own kernel launch
and intermediate tensor. :class:`CompiledTransform` does the same work in one
pass of C per batch (``featurepipe._speedups.columns_run``, without the GIL):
it decodes the features the columns need straight from the serialized
``tf.Example`` records and computes every column's ids and numbers in place.

It gives the tensors the TF ops give, bit for bit, or it gives up: a plan is
built only for what the C code computes exactly (hashed, vocabulary, identity,
bucketized, numeric and crossed columns on ``FixedLenFeature`` /
``VarLenFeature`` inputs); for any batch it cannot decode exactly like
``tf.io.parse_example`` (see ``_speedups_columns.c``) it falls back to the TF
ops, which also raise TF's own errors for bad data.

Two ways in. :func:`record_batches_dataset` (local files, in order or
shuffled) has no tf.data element per record: windows of each file are mapped
and their frames verified and indexed (``_speedups.scan_frames``); a batch is a
few references into them (runs of frames in order; gather units when drawn
from a shuffle buffer of references, :func:`_shuffled_batches`), computed on
the native threads of a ``_speedups.ColumnsRunner`` ahead of the tf.data
thread, which only hands finished arrays to TF. Other reads (remote files,
several files interleaved in order) keep ``TFRecordDataset`` + ``batch`` and
call the plan in the map (:meth:`CompiledTransform.__call__`, a ``tf.cond``
picking the TF ops for a batch it gives up on).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import inspect
import itertools
import math
import mmap
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from featurepipe._native import speedups
from featurepipe.columns import (
    DEFAULT_HASH_KEY,
    BucketizedColumn,
    CategoricalSpec,
    ColumnSpec,
    CrossedColumn,
    HashedColumn,
    IdentityColumn,
    NumericColumn,
    VocabularyColumn,
)
from featurepipe.keras._preprocessing import ColumnTransform, _model_columns

__all__ = ["CompiledTransform", "native_columns_available", "record_batches_dataset"]


_K_BYTES, _K_FLOAT, _K_INT64 = 1, 2, 3
_OP_NUMERIC, _OP_BUCKET, _OP_HASH, _OP_VOCAB, _OP_IDENTITY, _OP_CROSS, _OP_RAW = range(1, 8)
_NORM_NONE, _NORM_LOG, _NORM_AFFINE = 0, 1, 2
_KINDS = {tf.string: _K_BYTES, tf.float32: _K_FLOAT, tf.int64: _K_INT64}


_speedups: Any = speedups


def native_columns_available() -> bool:
    """Whether the compiled column path is built (``featurepipe._speedups``)."""
    return _speedups is not None


class _UnsupportedError(Exception):
    """The plan needs something the compiled path does not compute."""


class CompiledTransform:
    """``serialized batch -> (inputs, label)`` through one compiled call, TF ops as fallback.

    Build it with :meth:`build`, which returns `None` when the parse spec or the
    columns need something only the TF ops do.
    """

    def __init__(
        self,
        plan: Any,
        names: list[str],
        dtypes: list[tf.DType],
        label_key: str | None,
        label_shape: tuple[int, ...],
        slow: Callable[[tf.Tensor], Any],
    ) -> None:
        self._plan = plan
        self._names = names
        self._dtypes = dtypes
        self._np_dtypes = [np.dtype(d.as_numpy_dtype) for d in dtypes]
        self._label_key = label_key
        self._label_shape = label_shape
        self._slow = slow
        self._empty = [np.zeros((0, 0), dtype=d) for d in self._np_dtypes]
        if label_key is not None:
            self._empty[-1] = np.zeros((0, *label_shape), dtype=self._np_dtypes[-1])

    @classmethod
    def build(
        cls,
        spec: Mapping[str, Any],
        transform: ColumnTransform,
        label_key: str | None,
        slow: Callable[[tf.Tensor], Any],
    ) -> CompiledTransform | None:
        """The compiled transform, or `None` where only the TF ops do the job.

        Args:
            spec: the ``tf.io.parse_example`` spec.
            transform: the column transform the TF path runs.
            label_key: the label feature, or `None`.
            slow: the TF-op path, ``serialized -> inputs`` or ``(inputs, label)``.
        """
        if _speedups is None:
            return None
        try:
            return cls._build(spec, transform, label_key, slow)
        except _UnsupportedError:
            return None

    @classmethod
    def _build(
        cls,
        spec: Mapping[str, Any],
        transform: ColumnTransform,
        label_key: str | None,
        slow: Callable[[tf.Tensor], Any],
    ) -> CompiledTransform:
        keys = list(spec)
        index = {k: i for i, k in enumerate(keys)}
        feats = [_feature_desc(k, spec[k]) for k in keys]
        vocabs: list[tuple[bool, list[Any]]] = []
        builder = _OpBuilder(spec, index, transform, vocabs)
        ops: list[tuple[Any, ...]] = []
        names: list[str] = []
        dtypes: list[tf.DType] = []
        for name, col in _model_columns(transform.specs):
            ops.append(builder.output(col))
            names.append(name)
            dtypes.append(tf.float32 if isinstance(col, NumericColumn) else tf.int64)
        label_shape: tuple[int, ...] = ()
        if label_key is not None:
            feature = spec[label_key]
            if not isinstance(feature, tf.io.FixedLenFeature) or feature.dtype == tf.string:
                raise _UnsupportedError(label_key)
            label_shape = tuple(feature.shape)
            ops.append(_op(_OP_RAW, index[label_key]))
            names.append(label_key)
            dtypes.append(feature.dtype)
        try:
            plan = _speedups.columns_compile(feats, ops, vocabs)
        except ValueError as e:  # a combination the C plan refuses
            raise _UnsupportedError(str(e)) from e
        return cls(plan, names, dtypes, label_key, label_shape, slow)

    def run(self, records: list[bytes]) -> list[np.ndarray[Any, Any]] | None:
        """The outputs of one batch as arrays (inputs in order, then the label), or `None`."""
        return self._arrays(_speedups.columns_run(self._plan, records), len(records))

    def _arrays(self, got: Any, n: int) -> list[np.ndarray[Any, Any]] | None:
        if got is None:
            return None
        bufs, widths = got
        out = []
        for buf, width, dtype in zip(bufs, widths, self._np_dtypes, strict=True):
            out.append(np.frombuffer(buf, dtype=dtype).reshape(n, width))
        if self._label_key is not None:
            out[-1] = out[-1].reshape((n, *self._label_shape))
        return out

    def _numpy_fn(self, serialized: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
        out = self.run(serialized.tolist())
        if out is None:
            return [np.array(False), *self._empty]
        return [np.array(True), *out]

    def __call__(self, serialized: tf.Tensor) -> Any:
        """The map function: what the TF path returns, computed by the compiled plan."""
        flat = tf.numpy_function(
            self._numpy_fn, [serialized], [tf.bool, *self._dtypes], stateful=False
        )
        ok, fast = flat[0], list(flat[1:])
        slow_shapes: list[tf.TensorShape] = []

        def slow_branch() -> list[tf.Tensor]:
            got = self._slow(serialized)
            inputs, label = got if self._label_key is not None else (got, None)
            outs = [inputs[name] for name in self._inputs()]
            if label is not None:
                outs.append(label)
            slow_shapes.extend(t.shape for t in outs)
            return outs

        merged = tf.cond(ok, lambda: [tf.identity(t) for t in fast], slow_branch)
        for t, shape in zip(merged, slow_shapes, strict=True):
            t.set_shape(shape)
        inputs = dict(zip(self._inputs(), merged, strict=False))
        if self._label_key is None:
            return inputs
        return inputs, merged[-1]

    def _inputs(self) -> list[str]:
        return self._names[:-1] if self._label_key is not None else list(self._names)


def _op(
    op: int,
    fidx: int = -1,
    *,
    drop: bool = False,
    size: int = 0,
    norm: tuple[int, float, float] = (_NORM_NONE, 0.0, 0.0),
    bounds: tuple[float, ...] = (),
    num_bins: int = 0,
    vocab: int = -1,
    num_oov: int = 0,
    default: int | None = None,
    hash_key: int = 0,
    leaves: tuple[tuple[Any, ...], ...] = (),
) -> tuple[Any, ...]:
    """One op of the C plan, in the order ``columns_compile`` reads it."""
    return (
        op,
        fidx,
        drop,
        size,
        norm[0],
        norm[1],
        norm[2],
        bounds,
        num_bins,
        vocab,
        num_oov,
        default,
        hash_key,
        leaves,
    )


def _feature_desc(key: str, feature: Any) -> tuple[Any, ...]:
    name = key.encode("utf-8")
    if isinstance(feature, tf.io.VarLenFeature):
        if feature.dtype not in _KINDS:
            raise _UnsupportedError(key)
        return (name, _KINDS[feature.dtype], -1, None)
    if not isinstance(feature, tf.io.FixedLenFeature) or feature.dtype not in _KINDS:
        raise _UnsupportedError(key)
    shape = tuple(feature.shape)
    if any(d is None or d < 0 for d in shape):
        raise _UnsupportedError(key)
    fixed = math.prod(shape)
    default = feature.default_value
    if default is None:
        return (name, _KINDS[feature.dtype], fixed, None)
    kind = _KINDS[feature.dtype]
    if kind == _K_BYTES:
        cells = np.broadcast_to(np.asarray(default, dtype=object), shape).ravel().tolist()
        values: list[Any] = [c.encode("utf-8") if isinstance(c, str) else bytes(c) for c in cells]
    elif kind == _K_INT64:
        values = [int(v) for v in np.broadcast_to(np.asarray(default), shape).ravel()]
    else:
        values = [float(v) for v in np.broadcast_to(np.asarray(default), shape).ravel()]
    if len(values) != fixed:
        raise _UnsupportedError(key)
    return (name, kind, fixed, values)


class _OpBuilder:
    """Column specs to the C plan's ops, mirroring ColumnTransform's choices."""

    def __init__(
        self,
        spec: Mapping[str, Any],
        index: Mapping[str, int],
        transform: ColumnTransform,
        vocabs: list[tuple[bool, list[Any]]],
    ) -> None:
        self.spec = spec
        self.index = index
        self.transform = transform
        self.vocabs = vocabs
        self._vocab_index: dict[str, int] = {}

    def _feature(self, key: str) -> tuple[int, Any]:
        if key not in self.index:
            raise _UnsupportedError(key)
        return self.index[key], self.spec[key]

    def _dense(self, key: str) -> bool:
        return isinstance(self.spec[key], tf.io.FixedLenFeature)

    def output(self, col: ColumnSpec) -> tuple[Any, ...]:
        if isinstance(col, NumericColumn):
            return self._numeric(col, _OP_NUMERIC)
        if isinstance(col, CategoricalSpec):
            return self.ids(col)
        raise _UnsupportedError(type(col).__name__)

    def _numeric(self, col: NumericColumn, op: int, bounds: tuple[float, ...] = ()) -> Any:
        fidx, feature = self._feature(col.key)
        if not isinstance(feature, tf.io.FixedLenFeature) or feature.dtype == tf.string:
            raise _UnsupportedError(col.key)
        if math.prod(feature.shape) != col.size:
            raise _UnsupportedError(col.key)
        norm = col.normalizer
        triple: tuple[int, float, float] = (_NORM_NONE, 0.0, 0.0)
        if norm is not None:
            if norm.kind == "log":
                triple = (_NORM_LOG, float(norm.offset), 0.0)
            else:
                shift, divisor = norm.scale()
                triple = (_NORM_AFFINE, float(shift), float(divisor))
        return _op(op, fidx, size=col.size, norm=triple, bounds=bounds)

    def ids(self, col: CategoricalSpec) -> tuple[Any, ...]:
        if isinstance(col, BucketizedColumn):
            return self._numeric(col.source, _OP_BUCKET, tuple(col.bin_boundaries or ()))
        if isinstance(col, CrossedColumn):
            sparse: list[tuple[Any, ...]] = []
            dense: list[tuple[Any, ...]] = []
            for leaf in col.leaf_keys():
                if isinstance(leaf, str):
                    fidx, _ = self._feature(leaf)
                    (dense if self._dense(leaf) else sparse).append(_op(_OP_RAW, fidx))
                elif isinstance(leaf, CrossedColumn):
                    raise _UnsupportedError("nested cross")
                else:
                    sparse.append(self.ids(leaf))  # ids are always sparse (SparseCross order)
            key = col.hash_key or DEFAULT_HASH_KEY
            return _op(_OP_CROSS, num_bins=col.num_bins, hash_key=key, leaves=(*sparse, *dense))
        if not isinstance(col, HashedColumn | VocabularyColumn | IdentityColumn):
            raise _UnsupportedError(type(col).__name__)
        fidx, _ = self._feature(col.key)
        drop = self._dense(col.key) and col.key in self.transform.dense_keys
        if isinstance(col, HashedColumn):
            return _op(_OP_HASH, fidx, drop=drop, num_bins=col.num_bins)
        if isinstance(col, IdentityColumn):
            return _op(
                _OP_IDENTITY, fidx, drop=drop, num_bins=col.num_buckets, default=col.default_value
            )
        return _op(
            _OP_VOCAB,
            fidx,
            drop=drop,
            vocab=self._vocabulary(col),
            num_oov=col.num_oov_buckets,
            default=col.default_value,
        )

    def _vocabulary(self, col: VocabularyColumn) -> int:
        if col.name not in self._vocab_index:
            vocab = col.load_vocabulary(self.transform.base_dir)
            is_str = col.dtype == "string"
            entries = [
                v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v for v in vocab
            ]
            if any(isinstance(v, bytes) != is_str for v in entries):
                raise _UnsupportedError(col.name)  # the TF table refuses these too
            self._vocab_index[col.name] = len(self.vocabs)
            self.vocabs.append((is_str, entries))
        return self._vocab_index[col.name]


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
    yields, in the same order; shuffled, what :func:`_shuffled_batches` draws
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
        compiled._slow, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False
    )
    flat_spec = tf.nest.flatten(element_spec)
    dtypes = [spec.dtype for spec in flat_spec]
    empty = [np.zeros([0] * spec.shape.rank, spec.dtype.as_numpy_dtype) for spec in flat_spec]

    # Where each input lands in tf.nest.flatten((inputs, label)): sorted keys.
    names = compiled._inputs()
    order = tf.nest.flatten(dict(zip(names, range(len(names)), strict=True)))
    if compiled._label_key is not None:
        order.append(len(names))

    def finish(batch: list[_Unit], got: Any) -> list[np.ndarray[Any, Any]]:
        arrays = compiled._arrays(got, sum(map(_count, batch)))
        if arrays is None:
            # The TF ops run eagerly from inside the numpy_function. TF inside a
            # py-function inside tf.data can hang when many run at once
            # (tensorflow#32454); here one step runs at a time (a sequential map).
            # Running them in the graph instead (a tf.cond in next_batch) was
            # measured: the parse and vocabulary tables of that branch are then
            # built with every iterator, 30% more CPU per example on the benchmark.
            out = slow(tf.constant(_payloads(batch), dtype=tf.string))
            return [t.numpy() for t in tf.nest.flatten(out)]
        return [arrays[i] for i in order]

    def units() -> Iterator[_Unit]:
        for epoch in itertools.count():
            if num_epochs is not None and epoch >= num_epochs:
                return
            records = 0
            for path in files:
                for unit in _record_units(path, compression):
                    records += _count(unit)
                    yield unit
            if not records:
                return  # files without records: repeating them yields nothing (as tf.data)

    def record_batches() -> Iterator[list[_Unit]]:
        # Batches of batch_size records from the units, splitting a unit
        # where a batch ends (as .batch() does across files and epochs).
        pending: collections.deque[_Unit] = collections.deque()
        have = 0
        for unit in units():
            pending.append(unit)
            have += _count(unit)
            while have >= batch_size:
                batch: list[_Unit] = []
                need = batch_size
                while need:
                    head = pending[0]
                    n = _count(head)
                    if n <= need:
                        batch.append(pending.popleft())
                        need -= n
                    else:
                        first, rest = _split(head, need)
                        batch.append(first)
                        pending[0] = rest
                        need = 0
                have -= batch_size
                yield batch
        if have and not drop_remainder:
            yield list(pending)

    def generate(reader_id: int) -> Iterator[list[np.ndarray[Any, Any]]]:
        if shuffle_buffer_size <= 0:
            batches = record_batches()
        else:
            entropy = None if seed is None else [seed, reader_id]
            batches = _shuffled_batches(
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
                yield finish(batch, _speedups.columns_run(compiled._plan, _payloads(batch)))
            return
        # The C work of the next batches runs on the runner's own threads, without
        # the GIL, while this thread hands the previous batch to TF; results come
        # out in order. The runner holds each batch's mapped window until taken.
        runner = _speedups.ColumnsRunner(compiled._plan, _THREADS)
        error: BaseException | None = None
        try:
            ahead: collections.deque[list[_Unit]] = collections.deque()
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

_CHUNK_BYTES = 16 << 20
# Shuffled reads keep a window mapped until its last record is drawn from the
# buffer, a dozen windows back or so: smaller windows bound what stays mapped.
_SHUFFLE_CHUNK_BYTES = 4 << 20
# Worker threads of the ColumnsRunner: the C work of one batch takes about as
# long as the Python work of handing one to TF (and the consumer's own), so one
# thread keeps up on a few cores; two where there are more to spare. 0: inline.
_THREADS = 2 if (os.cpu_count() or 1) > 4 else 1
# Batches submitted to the runner beyond the one being handed over.
_AHEAD = 4


# A run of records: (buffer, starts, first, count), frames first .. first+count-1
# of a buffer (a mapped window of a file) whose frames were verified by
# scan_frames, starts holding their offsets; or a list of payloads (compressed files).
_Unit = tuple[Any, bytes, int, int] | list[bytes]


def _count(unit: _Unit) -> int:
    if isinstance(unit, tuple):
        return unit[3] if isinstance(unit[3], int) else len(unit[3])
    return len(unit)


def _split(unit: _Unit, k: int) -> tuple[_Unit, _Unit]:
    if isinstance(unit, tuple):
        buf, starts, first, n = unit
        return (buf, starts, first, k), (buf, starts, first + k, n - k)
    return unit[:k], unit[k:]


def _payloads(batch: list[_Unit]) -> list[bytes]:
    """The serialized records of a batch, in its order (for the TF-op fallback)."""
    if batch and isinstance(batch[0], tuple) and not isinstance(batch[0][3], int):
        out: list[bytes] = [b""] * sum(len(u[3]) for u in batch)
        for source, starts, indices, positions in batch:  # gather units
            recs = _frame_payloads(source, starts, indices)
            for rec, p in zip(recs, positions.tolist(), strict=True):
                out[p] = rec
        return out
    out = []
    for unit in batch:
        if isinstance(unit, tuple):
            buf, starts, first, n = unit
            out.extend(_frame_payloads(buf, starts, np.arange(first, first + n)))
        else:
            out.extend(unit)
    return out


def _frame_payloads(source: Any, starts: bytes | None, indices: Any) -> list[bytes]:
    """Records ``indices`` of a window: verified frames (``starts`` from
    ``scan_frames``), or a list of records when ``starts`` is `None`."""
    if starts is None:
        return [source[i] for i in indices.tolist()]
    offsets = np.frombuffer(starts, dtype=np.int64)
    view = memoryview(source)
    return [
        bytes(view[s + 12 : e - 4])
        for s, e in zip(offsets[indices].tolist(), offsets[indices + 1].tolist(), strict=True)
    ]


# Records taken from each file in turn when shuffling several files at once.
_BLOCK = 16


def _shuffled_batches(
    files: Sequence[str],
    compression: str,
    rng: np.random.Generator,
    *,
    batch_size: int,
    buffer_size: int,
    cycle_length: int,
    num_epochs: int | None,
    drop_remainder: bool,
) -> Iterator[list[Any]]:
    """Batches drawn from a shuffle buffer, as gather units for the runner.

    What ``files -> shuffle(files) -> interleave(cycle_length) ->
    shuffle(buffer_size) -> repeat(num_epochs) -> batch`` does in tf.data, on
    references to records (a window and a frame index) instead of tf.data
    elements: each epoch reads the files in a new random order, ``cycle_length``
    at a time, ``_BLOCK`` records from each in turn; every record drawn from the
    buffer is replaced by the next one read; the buffer drains at the end of
    each epoch; batches run on across epochs. A batch of B records is drawn at
    once: B distinct slots, which differs from drawing one record at a time
    only in that a record read during a batch is not drawn in that same batch.
    A batch is a list of ``(source, starts, indices, positions)`` units, one
    per window it draws from: record ``indices[k]`` of the window goes to row
    ``positions[k]``.
    """
    # wid -> [source, starts (None for a list of records), records not yet drawn]
    windows: dict[int, list[Any]] = {}
    wids = itertools.count()

    def stream(path: str) -> Iterator[tuple[int, int, int]]:
        for unit in _record_units(path, compression, _SHUFFLE_CHUNK_BYTES):
            wid = next(wids)
            if isinstance(unit, tuple):
                source, starts, first, count = unit
                windows[wid] = [source, starts, count]
                yield wid, first, count
            else:
                windows[wid] = [unit, None, len(unit)]
                yield wid, 0, len(unit)

    def pieces() -> Iterator[tuple[int, int, int]]:
        # One epoch: (wid, first, count) runs, cycle_length files at a time.
        order = collections.deque(files[i] for i in rng.permutation(len(files)))
        active: collections.deque[list[Any]] = collections.deque()
        while order or active:
            while order and len(active) < cycle_length:
                active.append([stream(order.popleft()), -1, 0, 0])
            st = active[0]
            if st[3] == 0:
                nxt = next(st[0], None)
                if nxt is None:
                    active.popleft()
                    continue
                st[1], st[2], st[3] = nxt
            take = min(st[3], _BLOCK if len(active) > 1 else st[3])
            yield st[1], st[2], take
            st[2] += take
            st[3] -= take
            active.rotate(-1)

    def pull(src: Iterator[tuple[int, int, int]], carry: list[Any], k: int) -> tuple[Any, Any]:
        ws, ix = [], []
        while k > 0:
            if not carry:
                piece = next(src, None)
                if piece is None:
                    break
                carry.extend(piece)
            wid, first, count = carry
            take = min(k, count)
            ws.append(np.full(take, wid, dtype=np.int64))
            ix.append(np.arange(first, first + take, dtype=np.int64))
            k -= take
            if take == count:
                carry.clear()
            else:
                carry[1], carry[2] = first + take, count - take
        if not ws:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(ws), np.concatenate(ix)

    def units_of(ws: Any, ix: Any) -> list[Any]:
        order = np.argsort(ws, kind="stable")
        sw = ws[order]
        cuts = np.flatnonzero(np.diff(sw)) + 1
        out = []
        for seg in np.split(order, cuts):
            wid = int(ws[seg[0]])
            entry = windows[wid]
            out.append((entry[0], entry[1], ix[seg], seg))
            entry[2] -= len(seg)
            if entry[2] == 0:
                del windows[wid]  # the runner holds what it still needs
        return out

    bw = np.empty(buffer_size, np.int64)
    bi = np.empty(buffer_size, np.int64)
    got_w: list[Any] = []
    got_i: list[Any] = []
    need = batch_size
    for epoch in itertools.count():
        if num_epochs is not None and epoch >= num_epochs:
            break
        src = pieces()
        carry: list[Any] = []
        w, i = pull(src, carry, buffer_size)
        size = len(w)
        if not size:
            break  # files without records: repeating them yields nothing (as tf.data)
        bw[:size], bi[:size] = w, i
        while size:
            k = min(need, size)
            picks = rng.choice(size, k, replace=False)
            got_w.append(bw[picks])
            got_i.append(bi[picks])
            w, i = pull(src, carry, k)
            m = len(w)
            bw[picks[:m]], bi[picks[:m]] = w, i
            if m < k:  # the epoch's records are all in: the buffer shrinks
                keep = np.ones(size, dtype=bool)
                keep[picks[m:]] = False
                left = size - (k - m)
                bw[:left], bi[:left] = bw[:size][keep], bi[:size][keep]
                size = left
            need -= k
            if need == 0:
                yield units_of(np.concatenate(got_w), np.concatenate(got_i))
                got_w, got_i, need = [], [], batch_size
    if got_w and not drop_remainder:
        yield units_of(np.concatenate(got_w), np.concatenate(got_i))


def _record_units(path: str, compression: str, window: int = 0) -> Iterator[_Unit]:
    """The records of one file, CRCs verified, as units (see `_Unit`).

    Uncompressed files are mapped a window at a time and their frames verified
    by the compiled scanner without a Python object per record; the compiled
    plan then reads the payloads in place. Compressed files, and any damage (so the
    error is :func:`~featurepipe.tfrecord.read_records`' own), go through
    :func:`~featurepipe.tfrecord.read_records`.
    """
    from featurepipe.tfrecord import detect_compression, read_records

    kind = detect_compression(path) if compression == "auto" else compression
    if kind != "none" or _speedups is None:
        it = read_records(path, compression=kind)  # type: ignore[arg-type]
        while batch := list(itertools.islice(it, 4096)):
            yield batch
        return
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        done = yield from _mapped_units(f, size, window or _CHUNK_BYTES)
    if done is None:
        return
    # Damage, a truncated tail or a file that cannot be mapped: read_records
    # reads on from there (and raises about damage).
    yield list(itertools.islice(read_records(path, compression="none"), done, None))


def _mapped_units(f: Any, size: int, chunk: int) -> Generator[_Unit, None, int | None]:
    """Verified frames of a plain file, mapped a window at a time (resident
    memory stays bounded: a window is unmapped once its batches are done).
    Returns `None` at a clean end, else the number of records it got to."""
    from featurepipe.tfrecord import DEFAULT_MAX_RECORD_BYTES

    gran = mmap.ALLOCATIONGRANULARITY
    pos = done = 0
    window = chunk
    while pos < size:
        base = pos - pos % gran
        length = min(size - base, pos - base + window)
        try:
            mm = mmap.mmap(f.fileno(), length, access=mmap.ACCESS_READ, offset=base)
        except (OSError, ValueError):  # not mappable: read_records reads it
            return done
        starts, nxt, status = _speedups.scan_frames(mm, pos - base, DEFAULT_MAX_RECORD_BYTES)
        count = len(starts) // 8 - 1
        if count:
            yield (mm, starts, 0, count)
            done += count
            pos = base + nxt
            window = chunk
        if status != 0:
            return done
        if not count:
            if base + length >= size:
                return done  # a truncated tail
            window *= 2  # a frame bigger than the window
    return None
