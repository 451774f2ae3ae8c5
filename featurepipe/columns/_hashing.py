"""Stable ids bit-identical to TensorFlow's feature columns, without TensorFlow.

The primitives are FarmHash ``Fingerprint64`` (what ``tf.strings.to_hash_bucket_fast``
and the ``SparseCross`` kernel use) and ``FingerprintCat64`` (the kernel's way of
chaining fingerprints). On top of them this module computes the ids of
``tf.feature_column`` categorical columns: hash buckets, vocabularies with
out-of-vocabulary buckets placed *after* the vocabulary, identity, bucketized and
hashed crosses, including multivalent (ragged) inputs. Everything is numpy;
``Fingerprint64`` comes from the ``pyfarmhash`` package, imported lazily
(``pip install 'featurepipe[hash]'``).

Ragged inputs are a flat ``values`` array plus ``row_lengths`` (one entry per
row, ``0`` for an empty or missing row), as in :class:`Ragged`. Whether an input
was a *dense* tensor in TensorFlow matters, and is passed explicitly:

- ``tf.feature_column`` drops ``''`` (strings) and ``-1`` (integers) from dense
  inputs before computing ids (``FixedLenFeature`` values), but keeps and hashes
  them in sparse inputs (``VarLenFeature`` values).
- ``tf.sparse.cross_hashed`` puts all sparse inputs first and all dense inputs
  last, whatever order they were given in.

Ids that are invalid in TensorFlow (``-1`` from a vocabulary without buckets,
out-of-range identity values) are kept, as TensorFlow keeps them; consumers such
as embeddings and indicators ignore negative ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from featurepipe.errors import ConfigError

__all__ = [
    "DEFAULT_HASH_KEY",
    "Ragged",
    "RaggedLike",
    "as_bytes",
    "bucketize",
    "bucketized_ids",
    "cross_ids",
    "fingerprint64",
    "fingerprint64_array",
    "fingerprint_cat64",
    "hash_bucket",
    "hash_bucket_ids",
    "identity_ids",
    "vocabulary_ids",
]

# `tf.sparse.cross_hashed`'s default key (sparse_ops.py), used when hash_key is
# None *or 0* (the Python side does `hash_key or DEFAULT`).
DEFAULT_HASH_KEY = 0xDECAFCAFFE

# FingerprintCat64's multiplier (tsl/platform/fingerprint.h, from MurmurHash2).
_K_MUL = np.uint64(0xC6A4A7935BD1E995)
_SHIFT = np.uint64(47)
# The SparseCross kernel reduces by int64 max when num_buckets == 0.
_INT64_MAX = np.uint64(2**63 - 1)

_INSTALL_HINT = (
    "Computing FarmHash fingerprints requires the `pyfarmhash` package. "
    "You can install it via `pip install 'featurepipe[hash]'` (or `pip install pyfarmhash`)."
)

Int64Array = npt.NDArray[np.int64]
UInt64Array = npt.NDArray[np.uint64]


class RaggedLike(Protocol):
    """Anything with a flat ``values`` array and per-row ``row_lengths`` (e.g. a ``Column``)."""

    @property
    def values(self) -> np.ndarray[Any, Any]: ...

    @property
    def row_lengths(self) -> np.ndarray[Any, Any]: ...


@dataclass(frozen=True, eq=False)
class Ragged:
    """A batch of variable-length rows: flat ``values`` and ``row_lengths``.

    Row ``r`` holds ``values[offsets[r]:offsets[r] + row_lengths[r]]`` where
    ``offsets`` is the exclusive cumulative sum of ``row_lengths``.

    Args:
        values: the flat values of all rows, in row order.
        row_lengths: one non-negative length per row; they must add up to
            ``len(values)``.

    Raises:
        ConfigError: if the lengths are negative or do not add up.

    Examples:
        >>> r = Ragged.from_rows([[1, 2], [], [3]])
        >>> r.values.tolist(), r.row_lengths.tolist()
        ([1, 2, 3], [2, 0, 1])
        >>> r.to_lists()
        [[1, 2], [], [3]]
    """

    values: np.ndarray[Any, Any]
    row_lengths: Int64Array

    def __post_init__(self) -> None:
        values = np.asarray(self.values)
        if values.ndim != 1:
            values = values.reshape(-1)
        lengths = np.asarray(self.row_lengths, dtype=np.int64).reshape(-1)
        if lengths.size and int(lengths.min()) < 0:
            raise ConfigError(
                f"`row_lengths` must be non-negative. Received: row_lengths={lengths.tolist()}"
            )
        if int(lengths.sum()) != values.shape[0]:
            raise ConfigError(
                "`row_lengths` must add up to the number of values. Received: "
                f"sum(row_lengths)={int(lengths.sum())}, len(values)={values.shape[0]}"
            )
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "row_lengths", lengths)

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]], dtype: Any = None) -> Ragged:
        """Builds a :class:`Ragged` from a list of rows (each a list of values).

        Args:
            rows: the rows.
            dtype: numpy dtype of ``values``; inferred when ``None`` (``object``
                for strings and bytes). Defaults to `None`.

        Returns:
            The ragged batch.
        """
        rows = [list(r) for r in rows]
        flat = [v for r in rows for v in r]
        if dtype is None and any(isinstance(v, bytes | str) for v in flat):
            dtype = object
        values = np.array(flat, dtype=dtype) if flat else np.zeros(0, dtype=dtype or np.int64)
        if values.dtype == object and flat:
            values = np.empty(len(flat), dtype=object)
            values[:] = flat
        return cls(values, np.array([len(r) for r in rows], dtype=np.int64))

    @classmethod
    def from_dense(cls, array: npt.ArrayLike) -> Ragged:
        """Builds a :class:`Ragged` from a 2-D ``[batch, n]`` array (every row has ``n`` values).

        Args:
            array: the dense values; a 1-D array is read as ``[batch, 1]``.

        Returns:
            The ragged batch.

        Examples:
            >>> Ragged.from_dense([[1, 2], [3, 4]]).row_lengths.tolist()
            [2, 2]
        """
        arr = np.asarray(array)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ConfigError(
                f"`array` must have rank 1 or 2. Received: array with shape {arr.shape}"
            )
        return cls(arr.reshape(-1), np.full(arr.shape[0], arr.shape[1], dtype=np.int64))

    @property
    def num_rows(self) -> int:
        """The number of rows."""
        return int(self.row_lengths.shape[0])

    @property
    def row_starts(self) -> Int64Array:
        """The offset of each row's first value in ``values``."""
        starts = np.zeros(self.num_rows, dtype=np.int64)
        np.cumsum(self.row_lengths[:-1], out=starts[1:])
        return starts

    @property
    def row_ids(self) -> Int64Array:
        """The row index of every value (``len(values)`` entries)."""
        return np.repeat(np.arange(self.num_rows, dtype=np.int64), self.row_lengths)

    def to_lists(self) -> list[list[Any]]:
        """Returns the rows as Python lists."""
        vals = self.values.tolist()
        out: list[list[Any]] = []
        start = 0
        for n in self.row_lengths.tolist():
            out.append(vals[start : start + n])
            start += n
        return out


def _farmhash_fingerprint64() -> Callable[[bytes], int]:
    try:
        import farmhash
    except ImportError as e:  # pragma: no cover - exercised only without pyfarmhash
        raise ImportError(_INSTALL_HINT) from e
    fn: Callable[[bytes], int] = farmhash.fingerprint64
    return fn


def as_bytes(values: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """Converts values to their byte-string form, as ``tf.strings.as_string`` would.

    Bytes stay as they are, ``str`` is encoded as UTF-8 (lone surrogates from
    ``surrogateescape`` decoding turn back into their bytes), integers become
    their decimal form (``-5`` -> ``b"-5"``).

    Args:
        values: a scalar or an array of bytes, str or integers.

    Returns:
        A 1-D object array of ``bytes``.

    Raises:
        ConfigError: for float or boolean values (TensorFlow's feature columns
            reject them; bucketize floats first).

    Examples:
        >>> as_bytes([b"a", "é", 12, -5]).tolist()
        [b'a', b'\\xc3\\xa9', b'12', b'-5']
    """
    arr = _flat_array(values)
    out = np.empty(arr.shape[0], dtype=object)
    if arr.dtype.kind in "iu":
        out[:] = [b"%d" % v for v in arr.tolist()]
        return out
    if arr.dtype.kind == "S":
        out[:] = arr.tolist()
        return out
    if arr.dtype.kind == "U":
        out[:] = [v.encode("utf-8", "surrogateescape") for v in arr.tolist()]
        return out
    if arr.dtype.kind == "O":
        converted: list[bytes] = []
        for v in arr.tolist():
            if isinstance(v, bytes):
                converted.append(v)
            elif isinstance(v, str):
                converted.append(v.encode("utf-8", "surrogateescape"))
            elif isinstance(v, int | np.integer) and not isinstance(v, bool):
                converted.append(b"%d" % v)
            else:
                raise ConfigError(
                    "Values to hash must be bytes, str or integers. "
                    f"Received: a value of type {type(v).__name__}"
                )
        out[:] = converted
        return out
    raise ConfigError(
        "Values to hash must be bytes, str or integers (bucketize floats first). "
        f"Received: dtype={arr.dtype}"
    )


def fingerprint64(value: bytes | str) -> int:
    """Returns FarmHash ``Fingerprint64`` of one value, TensorFlow's ``Fingerprint64``.

    Args:
        value: bytes, or a str (hashed as its UTF-8 encoding).

    Returns:
        The fingerprint as an unsigned 64-bit Python int.

    Raises:
        ImportError: if ``pyfarmhash`` is not installed.

    Examples:
        >>> fingerprint64("a")
        12917804110809363939
    """
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
    return _farmhash_fingerprint64()(data)


def fingerprint64_array(values: npt.ArrayLike) -> UInt64Array:
    """Returns ``Fingerprint64`` of every value (bytes, str, or integers as decimal strings).

    Args:
        values: an array (or sequence) of bytes, str or integers.

    Returns:
        A 1-D ``uint64`` array.

    Raises:
        ImportError: if ``pyfarmhash`` is not installed.

    Examples:
        >>> fingerprint64_array([b"a", "b"]).tolist()
        [12917804110809363939, 11795596070477164822]
    """
    data = as_bytes(values)
    fp = _farmhash_fingerprint64()
    return np.fromiter(map(fp, data.tolist()), dtype=np.uint64, count=data.shape[0])


def fingerprint_cat64(fp1: npt.ArrayLike, fp2: npt.ArrayLike) -> UInt64Array:
    """Combines two fingerprints as TensorFlow's ``FingerprintCat64`` (all mod 2**64).

    Not symmetric: ``fingerprint_cat64(a, b) != fingerprint_cat64(b, a)``.
    Broadcasts like any numpy operation.

    Args:
        fp1: the running fingerprint(s), unsigned 64-bit.
        fp2: the fingerprint(s) to add, unsigned 64-bit.

    Returns:
        A ``uint64`` array of the broadcast shape.

    Examples:
        >>> int(fingerprint_cat64(1, 2)[()]) != int(fingerprint_cat64(2, 1)[()])
        True
    """
    a = np.asarray(fp1, dtype=np.uint64)
    b = np.asarray(fp2, dtype=np.uint64)
    with np.errstate(over="ignore"):
        result = a ^ _K_MUL
        m = b * _K_MUL
        result ^= (m ^ (m >> _SHIFT)) * _K_MUL
        result *= _K_MUL
        result = (result ^ (result >> _SHIFT)) * _K_MUL
        result ^= result >> _SHIFT
    return np.asarray(result, dtype=np.uint64)


def hash_bucket(values: npt.ArrayLike, num_buckets: int) -> Int64Array:
    """``Fingerprint64(as_string(x)) % num_buckets``, as ``tf.strings.to_hash_bucket_fast``.

    Nothing is dropped: ``''`` and ``-1`` are hashed like any other value.

    Args:
        values: bytes, str or integers (integers hash as their decimal form).
        num_buckets: the number of buckets, at least 1.

    Returns:
        An ``int64`` array of ids in ``[0, num_buckets)``.

    Raises:
        ConfigError: if ``num_buckets < 1``.

    Examples:
        >>> hash_bucket(["a", "b", "c", "d"], 10).tolist()
        [9, 2, 2, 5]
    """
    _check_positive("num_buckets", num_buckets)
    return (fingerprint64_array(values) % np.uint64(num_buckets)).astype(np.int64)


def hash_bucket_ids(values: RaggedLike, num_buckets: int, *, dense: bool = False) -> Ragged:
    """Ids of ``tf.feature_column.categorical_column_with_hash_bucket``.

    Args:
        values: the raw feature as ragged rows of bytes / str or integers.
        num_buckets: ``hash_bucket_size``, at least 1.
        dense: whether TensorFlow saw this feature as a dense tensor
            (``FixedLenFeature``); then ``''`` / ``-1`` are dropped first.
            Defaults to `False`.

    Returns:
        The ids, ragged like the input (fewer values where some were dropped).

    Examples:
        >>> hash_bucket_ids(Ragged.from_rows([["a", ""], ["b"]]), 10).to_lists()
        [[9, 3], [2]]
        >>> hash_bucket_ids(Ragged.from_rows([["a", ""], ["b", "c"]]), 10, dense=True).to_lists()
        [[9], [2, 2]]
    """
    _check_positive("num_buckets", num_buckets)
    rag = _drop_ignore_values(values) if dense else _as_ragged(values)
    return Ragged(hash_bucket(rag.values, num_buckets), rag.row_lengths)


def vocabulary_ids(
    values: RaggedLike,
    vocabulary: Sequence[Any] | npt.ArrayLike,
    *,
    num_oov_buckets: int = 0,
    default_value: int = -1,
    dense: bool = False,
) -> Ragged:
    """Ids of ``categorical_column_with_vocabulary_list`` / ``_file``.

    A value's id is its index in ``vocabulary``; any other value gets
    ``len(vocabulary) + Fingerprint64(as_string(x)) % num_oov_buckets`` when
    ``num_oov_buckets > 0``, else ``default_value``.

    Args:
        values: the raw feature as ragged rows (strings/bytes, or integers).
        vocabulary: the distinct vocabulary entries, all strings/bytes or all
            integers, matching the kind of ``values``.
        num_oov_buckets: out-of-vocabulary buckets after the vocabulary.
            Defaults to `0`.
        default_value: the id of an out-of-vocabulary value when
            ``num_oov_buckets == 0``. Defaults to `-1`.
        dense: whether TensorFlow saw this feature as a dense tensor; then
            ``''`` / ``-1`` are dropped first. Defaults to `False`.

    Returns:
        The ids, ragged like the input.

    Raises:
        ConfigError: for an empty or duplicated vocabulary, both
            ``num_oov_buckets`` and ``default_value`` set, or kinds that do not match.

    Examples:
        >>> vocabulary_ids(Ragged.from_rows([["b", "zz"], []]), ["a", "b"]).to_lists()
        [[1, -1], []]
        >>> rows = Ragged.from_rows([["a", "zz"]])
        >>> vocabulary_ids(rows, ["a", "b"], num_oov_buckets=3).to_lists()
        [[0, 3]]
    """
    if num_oov_buckets < 0:
        raise ConfigError(
            f"`num_oov_buckets` must be >= 0. Received: num_oov_buckets={num_oov_buckets}"
        )
    if num_oov_buckets and default_value != -1:
        raise ConfigError(
            "Set either `num_oov_buckets` or `default_value`, not both. Received: "
            f"num_oov_buckets={num_oov_buckets}, default_value={default_value}"
        )
    rag = _drop_ignore_values(values) if dense else _as_ragged(values)
    vocab = np.asarray(vocabulary)
    if vocab.ndim != 1 or vocab.shape[0] == 0:
        raise ConfigError("`vocabulary` must be a non-empty 1-D list of distinct values.")
    vocab_is_int = vocab.dtype.kind in "iu"
    vals = rag.values
    vals_is_int = vals.dtype.kind in "iu"
    if vals.shape[0] and vals_is_int != vocab_is_int:
        raise ConfigError(
            "The vocabulary and the values must both be integers or both be strings. "
            f"Received: vocabulary dtype={vocab.dtype}, values dtype={vals.dtype}"
        )
    size = vocab.shape[0]
    if vocab_is_int:
        keys = vocab.astype(np.int64)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        repeated = sorted_keys[1:] == sorted_keys[:-1]
        if repeated.any():
            raise ConfigError(_duplicate_message(sorted_keys[1:][repeated]))
        ints = vals.astype(np.int64)
        pos = np.searchsorted(sorted_keys, ints)
        pos_clipped = np.minimum(pos, size - 1)
        found = sorted_keys[pos_clipped] == ints
        ids = np.where(found, order[pos_clipped], -1).astype(np.int64)
    else:
        byte_vocab = as_bytes(vocab).tolist()
        table = {v: i for i, v in enumerate(byte_vocab)}
        if len(table) != size:
            seen: set[bytes] = set()
            dups = [v for v in byte_vocab if v in seen or seen.add(v)]  # type: ignore[func-returns-value]
            raise ConfigError(_duplicate_message(np.array(dups, dtype=object)))
        get = table.get
        ids = np.fromiter(
            (get(v, -1) for v in as_bytes(vals).tolist()), dtype=np.int64, count=vals.shape[0]
        )
    oov = ids < 0
    if oov.any():
        if num_oov_buckets:
            ids[oov] = size + hash_bucket(vals[oov], num_oov_buckets)
        else:
            ids[oov] = default_value
    return Ragged(ids, rag.row_lengths)


def identity_ids(
    values: RaggedLike,
    num_buckets: int,
    *,
    default_value: int | None = None,
    dense: bool = False,
) -> Ragged:
    """Ids of ``categorical_column_with_identity``: the integer values themselves.

    Values outside ``[0, num_buckets)`` become ``default_value`` when it is set;
    otherwise they are kept as they are (TensorFlow 2.21 does not check them in
    eager mode; embeddings ignore negative ids).

    Args:
        values: the raw integer feature as ragged rows.
        num_buckets: the number of ids, at least 1.
        default_value: the id of out-of-range values, in ``[0, num_buckets)``, or
            `None`. Defaults to `None`.
        dense: whether TensorFlow saw this feature as a dense tensor; then ``-1``
            is dropped first. Defaults to `False`.

    Returns:
        The ids, ragged like the input.

    Raises:
        ConfigError: for a bad ``num_buckets`` / ``default_value`` or non-integer values.

    Examples:
        >>> identity_ids(Ragged.from_rows([[1, 7, -3]]), 5, default_value=0).to_lists()
        [[1, 0, 0]]
    """
    _check_positive("num_buckets", num_buckets)
    if default_value is not None and not 0 <= default_value < num_buckets:
        raise ConfigError(
            f"`default_value` must be in [0, num_buckets={num_buckets}). "
            f"Received: default_value={default_value}"
        )
    rag = _drop_ignore_values(values) if dense else _as_ragged(values)
    if rag.values.shape[0] and rag.values.dtype.kind not in "iu":
        raise ConfigError(
            f"Identity ids need integer values. Received: values dtype={rag.values.dtype}"
        )
    ids = rag.values.astype(np.int64)
    if default_value is not None:
        ids = np.where((ids < 0) | (ids >= num_buckets), np.int64(default_value), ids)
    return Ragged(ids, rag.row_lengths)


def bucketize(values: npt.ArrayLike, boundaries: Sequence[float]) -> Int64Array:
    """Bucket index of every value, as TensorFlow's ``Bucketize`` op.

    ``boundaries=[0., 1., 2.]`` gives buckets ``(-inf, 0.)``, ``[0., 1.)``,
    ``[1., 2.)`` and ``[2., +inf)`` (ids 0-3); NaN goes to the last bucket.
    Boundaries are rounded to float32 first, as the op stores them.

    Args:
        values: numbers, any shape.
        boundaries: sorted boundaries.

    Returns:
        ``int64`` ids of the same shape as ``values``.

    Raises:
        ConfigError: if the boundaries are not sorted.

    Examples:
        >>> bucketize([-1.0, 0.0, 0.5, 2.0, 9.0], [0.0, 1.0, 2.0]).tolist()
        [0, 1, 1, 3, 3]
    """
    bounds = _check_boundaries(boundaries)
    return np.searchsorted(bounds, np.asarray(values, dtype=np.float64), side="right").astype(
        np.int64
    )


def bucketized_ids(values: RaggedLike, boundaries: Sequence[float]) -> Ragged:
    """Ids of ``bucketized_column``: ``bucket + position * (len(boundaries) + 1)``.

    The ``i``-th value of a row (``numeric_column(shape=(n,))``) gets its own
    range of ids, so the column has ``n * (len(boundaries) + 1)`` ids. Values
    are cast to float32 first, as ``numeric_column`` does (after any normalizer).

    Args:
        values: the numeric feature as ragged rows (normally all of length ``n``).
        boundaries: sorted boundaries.

    Returns:
        The ids, ragged like the input.

    Examples:
        >>> bucketized_ids(Ragged.from_dense([[-1.0, 0.0], [1.5, 2.0]]), [0.0, 1.0, 2.0]).to_lists()
        [[0, 5], [2, 7]]
    """
    rag = _as_ragged(values)
    buckets = bucketize(rag.values.astype(np.float32), boundaries)
    position = np.arange(rag.values.shape[0], dtype=np.int64) - np.repeat(
        rag.row_starts, rag.row_lengths
    )
    return Ragged(buckets + position * (len(boundaries) + 1), rag.row_lengths)


def cross_ids(
    inputs: Sequence[RaggedLike],
    num_buckets: int,
    *,
    hash_key: int | None = None,
    dense: Sequence[bool] | None = None,
) -> Ragged:
    """Hashed crosses, bit-identical to ``tf.sparse.cross_hashed`` / ``crossed_column``.

    For every row, every combination of one value from each input (cartesian
    product, last input varying fastest) is hashed: starting from the key, each
    value is chained with ``FingerprintCat64`` (strings by their
    ``Fingerprint64``, integers raw as unsigned 64-bit), and the result is taken
    modulo ``num_buckets`` (modulo ``2**63 - 1`` when ``num_buckets == 0``).
    Sparse inputs come before dense inputs, as in TensorFlow. A row with an
    empty input has no crosses.

    For ``crossed_column``, pass raw string features as they are and
    categorical / bucketized columns as their ids (see the other ``*_ids``).

    Args:
        inputs: the crossed inputs as ragged rows of strings/bytes or integers,
            all with the same number of rows.
        num_buckets: ``hash_bucket_size``; `0` means no reduction beyond
            ``2**63 - 1``.
        hash_key: the key, a signed 64-bit integer (TensorFlow stores it as an
            int64 attribute); `None` or `0` means ``DEFAULT_HASH_KEY``.
            Defaults to `None`.
        dense: for each input, whether TensorFlow saw it as a dense tensor.
            Defaults to all `False` (sparse).

    Returns:
        The crossed ids, ragged with one row per input row.

    Raises:
        ConfigError: for no inputs, different row counts or bad arguments.

    Examples:
        >>> a = Ragged.from_rows([["A"], ["B"], ["A"], ["B"], ["A"]])
        >>> b = Ragged.from_rows([[101], [101], [101], [102], [102]])
        >>> cross_ids([a, b], 5).to_lists()
        [[1], [4], [1], [1], [3]]
    """
    if not inputs:
        raise ConfigError("`inputs` must hold at least one column to cross.")
    if num_buckets < 0:
        raise ConfigError(f"`num_buckets` must be >= 0. Received: num_buckets={num_buckets}")
    if hash_key is not None and not -(2**63) <= hash_key < 2**63:
        raise ConfigError(
            f"`hash_key` must fit in a signed 64-bit integer. Received: hash_key={hash_key}"
        )
    flags = [False] * len(inputs) if dense is None else [bool(d) for d in dense]
    if len(flags) != len(inputs):
        raise ConfigError(
            f"`dense` needs one flag per input. Received: {len(flags)} flags for "
            f"{len(inputs)} inputs"
        )
    rags = [_as_ragged(x) for x in inputs]
    num_rows = rags[0].num_rows
    if any(r.num_rows != num_rows for r in rags):
        raise ConfigError(
            "All crossed inputs must have the same number of rows. "
            f"Received: {[r.num_rows for r in rags]}"
        )
    # SparseCross: all sparse inputs (in order), then all dense inputs (in order).
    ordered = [r for r, d in zip(rags, flags, strict=True) if not d] + [
        r for r, d in zip(rags, flags, strict=True) if d
    ]
    key = np.int64(hash_key or DEFAULT_HASH_KEY).view(np.uint64)
    modulus = np.uint64(num_buckets) if num_buckets > 0 else _INT64_MAX
    if all(r.values.shape[0] == num_rows and np.all(r.row_lengths == 1) for r in ordered):
        # Fast path: one value per row in every input (scalar features).
        h = np.full(num_rows, key, dtype=np.uint64)
        for rag in ordered:
            h = fingerprint_cat64(h, _cross_fingerprints(rag.values))
        return Ragged((h % modulus).astype(np.int64), np.ones(num_rows, dtype=np.int64))
    lengths = np.stack([r.row_lengths for r in ordered])  # [num_inputs, num_rows]
    out_lengths = np.prod(lengths, axis=0, dtype=np.int64)
    total = int(out_lengths.sum())
    out_row = np.repeat(np.arange(num_rows, dtype=np.int64), out_lengths)
    out_starts = np.zeros(num_rows, dtype=np.int64)
    np.cumsum(out_lengths[:-1], out=out_starts[1:])
    k = np.arange(total, dtype=np.int64) - out_starts[out_row]  # index within the row
    # stride of input j = product of the lengths of the inputs after it.
    strides = np.ones_like(lengths)
    for j in range(len(ordered) - 2, -1, -1):
        strides[j] = strides[j + 1] * lengths[j + 1]
    h = np.full(total, key, dtype=np.uint64)
    for j, rag in enumerate(ordered):
        if total == 0:
            break
        local = (k // strides[j][out_row]) % lengths[j][out_row]
        idx = rag.row_starts[out_row] + local
        h = fingerprint_cat64(h, _cross_fingerprints(rag.values)[idx])
    return Ragged((h % modulus).astype(np.int64), out_lengths)


def _cross_fingerprints(values: np.ndarray[Any, Any]) -> UInt64Array:
    """What SparseCross chains for each value: ints raw, strings their Fingerprint64."""
    if values.dtype.kind in "iu":
        return values.astype(np.int64).view(np.uint64)
    if values.dtype.kind in "OSU":
        return fingerprint64_array(values)
    raise ConfigError(
        "Crossed inputs must be strings or integers (bucketize floats first). "
        f"Received: dtype={values.dtype}"
    )


def _flat_array(values: npt.ArrayLike) -> np.ndarray[Any, Any]:
    """A 1-D array of ``values``; mixed str / bytes sequences become object arrays."""
    if isinstance(values, np.ndarray):
        return values.reshape(-1)
    if isinstance(values, bytes | str):
        values = [values]
    try:
        return np.asarray(values).reshape(-1)
    except (UnicodeDecodeError, ValueError, TypeError):
        items = list(values)  # type: ignore[arg-type]
        arr = np.empty(len(items), dtype=object)
        arr[:] = items
        return arr


def _as_ragged(values: RaggedLike) -> Ragged:
    if isinstance(values, Ragged):
        return values
    return Ragged(np.asarray(values.values), np.asarray(values.row_lengths, dtype=np.int64))


def _drop_ignore_values(values: RaggedLike) -> Ragged:
    """Drops ``''`` (strings) or ``-1`` (integers), as feature columns do for dense inputs."""
    rag = _as_ragged(values)
    vals = rag.values
    if vals.shape[0] == 0:
        return rag
    if vals.dtype.kind in "iu":
        keep = vals != -1
    elif vals.dtype.kind in "OSU":
        keep = np.fromiter(
            (v not in (b"", "") for v in vals.tolist()), dtype=bool, count=vals.shape[0]
        )
    else:
        return rag
    if keep.all():
        return rag
    row_ids = rag.row_ids[keep]
    return Ragged(vals[keep], np.bincount(row_ids, minlength=rag.num_rows).astype(np.int64))


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")


def _check_boundaries(boundaries: Sequence[float]) -> npt.NDArray[np.float64]:
    given = np.asarray(boundaries, dtype=np.float64)
    if given.ndim != 1:
        raise ConfigError(
            f"`boundaries` must be a flat list of numbers. Received: boundaries={boundaries!r}"
        )
    if given.shape[0] > 1 and not np.all(given[1:] > given[:-1]):
        raise ConfigError(
            "`boundaries` must be sorted in increasing order without repeats. "
            f"Received: boundaries={list(boundaries)!r}"
        )
    # The Bucketize op keeps its boundaries as float32.
    return given.astype(np.float32).astype(np.float64)


def _duplicate_message(dups: np.ndarray[Any, Any]) -> str:
    shown = dups[:5].tolist()
    return (
        "`vocabulary` must not contain duplicates (TensorFlow refuses them too). "
        f"Received duplicates: {shown}"
    )
