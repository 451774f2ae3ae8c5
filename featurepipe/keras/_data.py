"""``tf.data`` input pipelines over TFRecord files of ``tf.Example``.

:func:`make_dataset` reads file patterns into batches of ``(features, label)``:
files listed and sorted, optionally sharded by file (for ``tf.distribute``) and
shuffled with a seed, read with a parallel interleave (GZIP / ZLIB detected from
the first bytes), records shuffled, repeated, batched, parsed with
``tf.io.parse_example`` (the parse spec comes from a featurepipe schema, from
column specs, or is given), optionally turned into model inputs by
:class:`~featurepipe.keras.ColumnTransform` (by default both in one
compiled call per batch, :mod:`featurepipe.keras._compiled`; local files through
the compiled reader, :mod:`featurepipe.keras._reader`), and prefetched.
:func:`make_input_fn` wraps it in the zero-argument callable that
Estimator-style training code expects.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import tensorflow as tf

from featurepipe.columns import ColumnSpecs
from featurepipe.data import label_kind as _label_kind
from featurepipe.data import schema_beside as _schema_beside
from featurepipe.errors import ConfigError
from featurepipe.example import Schema
from featurepipe.keras._compiled import CompiledTransform, native_columns_available
from featurepipe.keras._files import match_files
from featurepipe.keras._preprocessing import ColumnTransform, parse_spec
from featurepipe.keras._reader import record_batches_dataset
from featurepipe.tfrecord import check_compression, detect_compression

__all__ = ["label_kind", "make_dataset", "make_input_fn", "parse_spec_from_schema", "schema_beside"]

# Batches the in-order compiled path keeps ready for the consumer.
_PREFETCH_BATCHES = 2
_TF_COMPRESSION = {"none": "", "gzip": "GZIP", "zlib": "ZLIB"}
_KIND_DTYPES = {"int64": tf.int64, "float": tf.float32, "bytes": tf.string}


def parse_spec_from_schema(schema: Schema) -> dict[str, Any]:
    """The ``tf.io.parse_example`` spec of a featurepipe schema.

    Variable-length features (``shape=None``) become ``VarLenFeature``; fixed
    shapes become ``FixedLenFeature`` with the schema default, if any.

    Args:
        schema: the schema.

    Returns:
        ``{feature: tf.io.FixedLenFeature | tf.io.VarLenFeature}``.
    """
    out: dict[str, Any] = {}
    for feature in schema:
        dtype = _KIND_DTYPES[feature.kind]
        if feature.shape is None:
            out[feature.name] = tf.io.VarLenFeature(dtype)
        else:
            default = feature.default
            if isinstance(default, str):
                default = default.encode("utf-8")
            elif isinstance(default, list | tuple):
                default = [v.encode("utf-8") if isinstance(v, str) else v for v in default]
            out[feature.name] = tf.io.FixedLenFeature(feature.shape, dtype, default_value=default)
    return out


def _tf_op_seed() -> int | None:
    """The seed a TF op would take from ``tf.random.set_seed`` (`None` when unset).

    ``tf.data``'s ``shuffle(seed=None)`` is reproducible after
    ``tf.random.set_seed`` / ``keras.utils.set_random_seed``; the compiled
    reader's shuffle follows the same global seed (each call draws the next op
    seed, as each TF op does).
    """
    try:
        from tensorflow.python.framework import random_seed

        global_seed, op_seed = random_seed.get_seed(None)
    except (ImportError, AttributeError, TypeError):  # a TF without it: unseeded
        return None
    if global_seed is None:
        return None
    return (int(global_seed) << 32) + int(op_seed or 0)


def make_dataset(
    file_pattern: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    batch_size: int,
    schema: Schema | None = None,
    columns: ColumnSpecs | None = None,
    features: Mapping[str, Any] | None = None,
    label_key: str | None = None,
    label_feature: Any = None,
    apply_columns: bool = True,
    compression: str = "auto",
    shuffle: bool = True,
    shuffle_buffer_size: int = 10_000,
    seed: int | None = None,
    num_epochs: int | None = 1,
    num_shards: int = 1,
    shard_index: int = 0,
    num_parallel_reads: int = tf.data.AUTOTUNE,
    drop_remainder: bool = False,
    dense_keys: Collection[str] | None = None,
    native: bool | None = None,
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of ``(features, label)`` batches from TFRecord files.

    Args:
        file_pattern: a glob, a path, a sharded spec ``PREFIX@N``, or a list
            of them; local, or on any ``tf.io.gfile`` filesystem (``gs://...``).
        batch_size: examples per batch.
        schema: the featurepipe schema; gives the parse spec and which features
            are dense. Defaults to `None`.
        columns: column specs; without a schema they give the parse spec (as
            ``make_parse_example_spec``), and with ``apply_columns`` the batches
            hold the model inputs instead of the parsed features. Defaults to `None`.
        features: an explicit parse spec, used when given. Defaults to `None`.
        label_key: the feature that is the label (popped from the features);
            `None` yields features only. Defaults to `None`.
        label_feature: its parse spec when the schema does not give it.
            Defaults to `None`: a scalar of the label's kind in the data, from
            :func:`label_kind` (the ``PREFIX.schema.json`` that ``featurepipe
            convert`` wrote beside the shards, else the first records).
        apply_columns: run :class:`ColumnTransform` in the pipeline (on the CPU).
            Defaults to `True`.
        compression: ``"auto"`` (from each file's first bytes), ``"none"``,
            ``"gzip"`` or ``"zlib"``. Defaults to `"auto"`.
        shuffle: shuffle files and records. Defaults to `True`.
        shuffle_buffer_size: records in the shuffle buffer. Defaults to `10_000`.
        seed: shuffle seed; also makes the interleave deterministic. Defaults to `None`.
            On the compiled path (``native``, local files) records are drawn
            from a buffer of references to them, each epoch's records each
            once as with tf.data's shuffle, in an order of its own: a seed gives
            the same orders again on that path, not tf.data's. Without a seed it
            follows ``tf.random.set_seed`` / ``keras.utils.set_random_seed``
            when one is set, as tf.data's shuffle does.
        num_epochs: passes over the data; `None` repeats forever. Defaults to `1`.
        num_shards: split the files into this many shards (one per worker).
            Defaults to `1`.
        shard_index: the shard this worker reads. Defaults to `0`.
        num_parallel_reads: files read at once (`tf.data.AUTOTUNE`: one per CPU
            core). Defaults to `tf.data.AUTOTUNE`.
        drop_remainder: drop the last partial batch. Defaults to `False`.
        dense_keys: features parsed as dense tensors; derived from the parse
            spec when `None`. Defaults to `None`.
        native: with ``apply_columns``, parse and transform each batch in one
            compiled call (``featurepipe._speedups``; the same tensors as the TF
            ops, which it falls back to for any batch it cannot decode exactly):
            `None` uses it when it is built and supports the columns, `True`
            requires it, `False` runs the TF ops. Defaults to `None`.

    Returns:
        The dataset. On the compiled reader (local files, ``apply_columns`` with
        the compiled path, in order or shuffled) it carries two ``tf.data``
        options: autotuning off and no default graph rewrites (nothing in it to
        tune; they cost time per iterator). Options hold for the whole
        pipeline: where transformations added after it want autotuning back,
        ``ds.with_options(opts)`` with ``opts.autotune.enabled = True``.

    Raises:
        ConfigError: for bad arguments, no parse spec, a pattern matching nothing,
            a label whose kind the data does not tell (set ``label_feature`` or
            ``schema``), or ``native=True`` where the compiled path cannot run.
    """
    if batch_size < 1:
        raise ConfigError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    if not 0 <= shard_index < num_shards:
        raise ConfigError(
            "`shard_index` must be in [0, num_shards). "
            f"Received: shard_index={shard_index}, num_shards={num_shards}"
        )
    check_compression(compression, auto=True)
    files = _list_files(file_pattern)
    files = files[shard_index::num_shards]
    if not files:
        raise ConfigError(
            f"Shard {shard_index} of {num_shards} has no files: there are fewer files than "
            "shards. Use fewer shards or shard by record instead."
        )
    compressions = [
        _TF_COMPRESSION[_sniff(path) if compression == "auto" else compression] for path in files
    ]
    spec = _parse_spec(schema, columns, features)
    if label_key is not None and label_key not in spec:
        if label_feature is None:
            # The label's kind from the data: the schema `featurepipe convert` wrote beside
            # the shards, else the first records (an int64 label parsed as float32 fails
            # inside the graph with "Data types don't match").
            label_feature = tf.io.FixedLenFeature((), _KIND_DTYPES[label_kind(files, label_key)])
        spec[label_key] = label_feature
    if dense_keys is None:
        dense_keys = {k for k, v in spec.items() if isinstance(v, tf.io.FixedLenFeature)}
    transform = (
        ColumnTransform(columns, dense_keys=dense_keys)
        if columns is not None and apply_columns
        else None
    )

    deterministic = seed is not None or not shuffle
    if len(files) == 1:
        # One file: a parallel interleave has nothing to interleave and costs more
        # CPU per record than reading the file (about 2.5x on 200k small records).
        ds = tf.data.TFRecordDataset(files[0], compression_type=compressions[0])
    else:
        ds = tf.data.Dataset.from_tensor_slices((files, compressions))
        if shuffle:
            ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        ds = ds.interleave(
            lambda path, comp: tf.data.TFRecordDataset(path, compression_type=comp),
            cycle_length=num_parallel_reads if num_parallel_reads > 0 else None,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        )
    if shuffle:
        ds = ds.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
    if num_epochs != 1:
        ds = ds.repeat(num_epochs)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def parse(serialized: tf.Tensor) -> Any:
        parsed = tf.io.parse_example(serialized, spec)
        label = parsed.pop(label_key) if label_key is not None else None
        inputs = transform(parsed) if transform is not None else parsed
        return inputs if label is None else (inputs, label)

    compiled = None
    if transform is not None and native is not False:
        compiled = CompiledTransform.build(spec, transform, label_key, parse)
    if native and compiled is None:
        raise ConfigError(
            "`native=True` but the compiled column path cannot run here: "
            + (
                "featurepipe._speedups is not built."
                if not native_columns_available()
                else "the parse spec or the columns need the TF ops (weighted columns, "
                "ragged or sparse features, float ids, ...)."
            )
        )
    local = all("://" not in path for path in files)
    in_order = not shuffle and (len(files) == 1 or num_parallel_reads == 1)
    if compiled is not None and local and (shuffle or in_order):
        # The whole pipeline in a generator, a batch at a time, with no tf.data
        # element per record (reading, shuffling and batching records one by one
        # costs tf.data about as much CPU as parsing them). Shuffled, records are
        # drawn from a buffer of references (see featurepipe.tfrecord.shuffled_unit_batches):
        # the same records per epoch as tf.data's shuffle, in an order of its own.
        element_spec = ds.map(parse).element_spec
        cycle = num_parallel_reads if num_parallel_reads > 0 else (os.cpu_count() or 1)
        fast = record_batches_dataset(
            files,
            compression,
            compiled,
            element_spec,
            batch_size=batch_size,
            num_epochs=num_epochs,
            drop_remainder=drop_remainder,
            shuffle_buffer_size=max(1, shuffle_buffer_size) if shuffle else 0,
            seed=seed if seed is not None else _tf_op_seed(),
            cycle_length=max(1, min(cycle, len(files))),
        )
        # Nothing here for tf.data to rewrite or tune: its default graph rewrites
        # find nothing to fuse in this short pipeline but run for every iterator
        # (a few ms each), and the only knob is the prefetch buffer, fixed here (the
        # compiled work already runs ahead on its own threads). With autotuning
        # on, deleting an iterator waited ~300 ms for tf.data's tuning thread in
        # about one run of three on the benchmark (2-core VM); off, ~1 ms.
        # Both are pipeline-wide options: a later `with_options` can set them back.
        opts = tf.data.Options()
        opts.experimental_optimization.apply_default_optimizations = False
        opts.autotune.enabled = False
        return fast.prefetch(_PREFETCH_BATCHES).with_options(opts)
    ds = ds.map(
        compiled if compiled is not None else parse,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def make_input_fn(
    file_pattern: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    **kwargs: Any,
) -> Callable[[], tf.data.Dataset]:
    """The zero-argument ``input_fn`` that Estimator-style code expects.

    Args:
        file_pattern: as in :func:`make_dataset`.
        **kwargs: the other arguments of :func:`make_dataset`.

    Returns:
        A callable that builds the dataset when called.
    """

    def input_fn() -> tf.data.Dataset:
        return make_dataset(file_pattern, **kwargs)

    return input_fn


def schema_beside(files: Sequence[str]) -> tuple[Schema, str] | None:
    """The schema ``featurepipe convert`` wrote beside these shards, and its path.

    Shards named ``PREFIX-SSSSS-of-NNNNN[.tfrecord[.gz]]`` (what ``convert``
    writes, and what ``PREFIX@N`` expands to) have their schema in
    ``PREFIX.schema.json``. Files of several prefixes must share one schema.
    :func:`featurepipe.data.schema_beside` on ``tf.io.gfile``, so remote file
    systems (``gs://...``) work too.

    Args:
        files: the data files (local or ``tf.io.gfile`` paths).

    Returns:
        ``(schema, path)``, or `None` when no file is such a shard, a schema
        file is missing, or the prefixes' schemas differ.

    Raises:
        ConfigError: when a schema file is there but is not a valid schema.

    Examples:
        >>> schema_beside(["data/part.tfrecord"]) is None
        True
    """
    return _schema_beside(files, exists=tf.io.gfile.exists, read_text=_gfile_text)


def label_kind(files: Sequence[str], key: str) -> str:
    """The kind (``"int64"``, ``"float"``, ``"bytes"``) of feature ``key`` in the data.

    From the ``PREFIX.schema.json`` beside the shards (:func:`schema_beside`),
    else from the first records (up to 100 of each file, 1,000 in all):
    :func:`featurepipe.data.label_kind`, reading through ``tf.data`` (remote
    file systems too).

    Args:
        files: the data files.
        key: the feature (usually the label).

    Returns:
        The kind.

    Raises:
        ConfigError: when the first records do not have the feature, or hold it
            with more than one kind: the message names the feature, what the
            data holds and what to set (``label_feature`` / ``schema``).
    """
    return _label_kind(
        files,
        key,
        first_records=_tf_first_records,
        exists=tf.io.gfile.exists,
        read_text=_gfile_text,
        hint=(
            "set `label_feature` (e.g. label_feature=tf.io.FixedLenFeature((), tf.int64)) or "
            "pass `schema` (the PREFIX.schema.json that `featurepipe convert` writes)"
        ),
    )


def _gfile_text(path: str) -> str:
    with tf.io.gfile.GFile(path, "r") as f:
        return str(f.read())


def _tf_first_records(path: str, n: int) -> list[bytes]:
    comp = _TF_COMPRESSION[_sniff(path)]
    ds = tf.data.TFRecordDataset(path, compression_type=comp).take(n)
    return [bytes(r.numpy()) for r in ds]


def _sniff(path: str) -> str:
    with tf.io.gfile.GFile(path, "rb") as f:
        return detect_compression(f.read(64))


def _list_files(pattern: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    # A remote file system: tf.io.gfile knows the scheme.
    return match_files(pattern, remote=tf.io.gfile.glob)


def _parse_spec(
    schema: Schema | None, columns: ColumnSpecs | None, features: Mapping[str, Any] | None
) -> dict[str, Any]:
    if features is not None:
        return dict(features)
    if schema is not None:
        return parse_spec_from_schema(schema)
    if columns is not None:
        return parse_spec(columns)
    raise ConfigError(
        "Pass `schema`, `columns` or `features` to make_dataset so it knows how to parse "
        "the examples."
    )
