"""featurepipe.columns._hashing ids == TensorFlow 2.21's ids, value for value, on generated data.

Every id the TF-free functions compute is compared with what TensorFlow computes
on the same input: ``tf.strings.to_hash_bucket_fast``, ``tf.sparse.cross_hashed``,
``tf.feature_column`` columns (through ``feature_column_v2``'s transformation
cache) and Keras' ``HashedCrossing``. Inputs carry every edge we know of: empty
strings, ``-1``, out-of-range ids, unicode, strings of every FarmHash length
class, empty rows (missing features) and rows of different lengths, fed to
TensorFlow both as sparse (``VarLenFeature``) and dense (``FixedLenFeature``)
tensors.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")
fc2 = pytest.importorskip("tensorflow.python.feature_column.feature_column_v2")

from featurepipe.columns import _hashing as hashing  # noqa: E402
from featurepipe.columns._hashing import Ragged  # noqa: E402

pytestmark = pytest.mark.tf

fc = tf.feature_column

_STRINGS = [
    "",
    "a",
    "b",
    "A",
    "é",
    "日本語",
    "🙂",
    " ",
    "\x00",
    "-1",
    "0",
    "batch1-FC1-F1",
]


def _string_pool(rng: np.random.Generator) -> list[bytes]:
    pool = [s.encode("utf-8") for s in _STRINGS]
    # FarmHash takes different paths for 0-16, 17-32, 33-64 and >64 bytes.
    for n in [1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257]:
        pool.append(bytes(rng.integers(0, 256, n, dtype=np.uint8)))
        pool.append("ü".encode() * (n // 2 + 1))
    return pool


_INTS = [-1, 0, 1, 2, 3, 4, 5, 9, 10, 99, -5, -2, 2**31, 2**62, -(2**63), 2**63 - 1]


def _ragged(rng: np.random.Generator, kind: str, rows: int, max_len: int) -> Ragged:
    lengths = rng.integers(0, max_len + 1, rows)
    n = int(lengths.sum())
    if kind == "bytes":
        pool = _string_pool(rng)
        values = np.empty(n, dtype=object)
        values[:] = [pool[i] for i in rng.integers(0, len(pool), n)]
    else:
        values = np.array(_INTS, dtype=np.int64)[rng.integers(0, len(_INTS), n)]
    return Ragged(values, lengths.astype(np.int64))


def _dense(rng: np.random.Generator, kind: str, rows: int, width: int) -> Ragged:
    rag = _ragged(rng, kind, rows * width, 1)
    # make every row exactly `width` long
    lengths = np.ones(rows * width, dtype=np.int64)
    values = rag.values
    if values.shape[0] < rows * width:
        fill = (
            np.array([b""] * (rows * width - values.shape[0]), dtype=object)
            if kind == "bytes"
            else np.full(rows * width - values.shape[0], -1, dtype=np.int64)
        )
        values = np.concatenate([values, fill])
    del lengths
    perm = rng.permutation(rows * width)
    return Ragged(values[perm], np.full(rows, width, dtype=np.int64))


def _to_tf(rag: Ragged, *, dense: bool) -> Any:
    values = rag.values
    if values.dtype == object:
        values = tf.constant(values.tolist() if values.size else [], dtype=tf.string)
    rt = tf.RaggedTensor.from_row_lengths(values, rag.row_lengths)
    if dense:
        return rt.to_tensor()
    return rt.to_sparse()


def _from_sparse(st: Any, num_rows: int) -> list[list[Any]]:
    if not isinstance(st, tf.SparseTensor):
        st = tf.sparse.from_dense(st)
    rows: list[list[Any]] = [[] for _ in range(num_rows)]
    for (r, *_), v in zip(st.indices.numpy().tolist(), st.values.numpy().tolist(), strict=True):
        rows[r].append(v)
    return rows


def _fc_ids(column: Any, features: dict[str, Any], num_rows: int) -> list[list[Any]]:
    cache = fc2.FeatureTransformationCache(features)
    ids = column.get_sparse_tensors(cache, None).id_tensor
    return _from_sparse(ids, num_rows)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261127)


def test_fingerprint64_matches_tf_fingerprint_op(rng: np.random.Generator) -> None:
    pool = _string_pool(rng)
    expected = tf.bitcast(tf.fingerprint(tf.constant(pool), method="farmhash64"), tf.uint64)
    ours = hashing.fingerprint64_array(np.array(pool, dtype=object))
    assert ours.tolist() == tf.reshape(expected, [-1]).numpy().tolist()
    assert [hashing.fingerprint64(p) for p in pool] == ours.tolist()


@pytest.mark.parametrize("num_buckets", [1, 2, 10, 1000, 2**40])
def test_hash_bucket_matches_to_hash_bucket_fast(
    rng: np.random.Generator, num_buckets: int
) -> None:
    pool = _string_pool(rng)
    ours = hashing.hash_bucket(np.array(pool, dtype=object), num_buckets)
    theirs = tf.strings.to_hash_bucket_fast(pool, num_buckets).numpy()
    np.testing.assert_array_equal(ours, theirs)
    ints = np.array(_INTS, dtype=np.int64)
    theirs_int = tf.strings.to_hash_bucket_fast(tf.strings.as_string(ints), num_buckets).numpy()
    np.testing.assert_array_equal(hashing.hash_bucket(ints, num_buckets), theirs_int)


@pytest.mark.parametrize("kind", ["bytes", "int64"])
@pytest.mark.parametrize("dense", [False, True])
def test_hash_bucket_column_ids(rng: np.random.Generator, kind: str, dense: bool) -> None:
    rag = _dense(rng, kind, 40, 3) if dense else _ragged(rng, kind, 60, 4)
    dtype = tf.string if kind == "bytes" else tf.int64
    col = fc.categorical_column_with_hash_bucket("f", 97, dtype=dtype)
    expected = _fc_ids(col, {"f": _to_tf(rag, dense=dense)}, rag.num_rows)
    assert hashing.hash_bucket_ids(rag, 97, dense=dense).to_lists() == expected


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize(("num_oov_buckets", "default_value"), [(0, -1), (0, 3), (1, -1), (5, -1)])
def test_vocabulary_list_column_ids_strings(
    rng: np.random.Generator, dense: bool, num_oov_buckets: int, default_value: int
) -> None:
    rag = _dense(rng, "bytes", 40, 3) if dense else _ragged(rng, "bytes", 60, 4)
    vocab = ["a", "b", "é", "日本語", "-1", "zzz"]
    col = fc.categorical_column_with_vocabulary_list(
        "f", vocab, num_oov_buckets=num_oov_buckets, default_value=default_value
    )
    expected = _fc_ids(col, {"f": _to_tf(rag, dense=dense)}, rag.num_rows)
    ours = hashing.vocabulary_ids(
        rag, vocab, num_oov_buckets=num_oov_buckets, default_value=default_value, dense=dense
    )
    assert ours.to_lists() == expected


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize(("num_oov_buckets", "default_value"), [(0, -1), (0, 2), (3, -1)])
def test_vocabulary_list_column_ids_ints(
    rng: np.random.Generator, dense: bool, num_oov_buckets: int, default_value: int
) -> None:
    rag = _dense(rng, "int64", 40, 3) if dense else _ragged(rng, "int64", 60, 4)
    vocab = [10, 2, 0, -5, 2**62]
    col = fc.categorical_column_with_vocabulary_list(
        "f", vocab, dtype=tf.int64, num_oov_buckets=num_oov_buckets, default_value=default_value
    )
    expected = _fc_ids(col, {"f": _to_tf(rag, dense=dense)}, rag.num_rows)
    ours = hashing.vocabulary_ids(
        rag, vocab, num_oov_buckets=num_oov_buckets, default_value=default_value, dense=dense
    )
    assert ours.to_lists() == expected


def test_vocabulary_file_column_ids(rng: np.random.Generator, tmp_path: Any) -> None:
    vocab = ["a", "b", "é", "🙂", "0"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    rag = _ragged(rng, "bytes", 50, 3)
    col = fc.categorical_column_with_vocabulary_file("f", str(path), num_oov_buckets=4)
    expected = _fc_ids(col, {"f": _to_tf(rag, dense=False)}, rag.num_rows)
    assert hashing.vocabulary_ids(rag, vocab, num_oov_buckets=4).to_lists() == expected


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("default_value", [None, 0, 4])
def test_identity_column_ids(
    rng: np.random.Generator, dense: bool, default_value: int | None
) -> None:
    rag = _dense(rng, "int64", 40, 3) if dense else _ragged(rng, "int64", 60, 4)
    col = fc.categorical_column_with_identity("f", 5, default_value=default_value)
    expected = _fc_ids(col, {"f": _to_tf(rag, dense=dense)}, rag.num_rows)
    ours = hashing.identity_ids(rag, 5, default_value=default_value, dense=dense)
    assert ours.to_lists() == expected


@pytest.mark.parametrize("width", [1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bucketized_column_ids(rng: np.random.Generator, width: int, dtype: Any) -> None:
    boundaries = [-1.0, 0.0, 0.1, 0.30000001, 1.0, 2.5, 1e10]
    values = rng.choice(
        np.array(
            [-np.inf, -2, -1, -0.5, 0, 0.1, 0.2, 0.30000001, 0.3, 1, 2.5, 3, 1e10, np.inf, np.nan]
        ),
        size=(30, width),
    ).astype(dtype)
    values[:5] = rng.normal(size=(5, width)).astype(dtype)
    col = fc.bucketized_column(
        fc.numeric_column("x", shape=(width,), dtype=tf.as_dtype(dtype)), boundaries
    )
    expected = _fc_ids(col, {"x": tf.constant(values)}, 30)
    assert hashing.bucketized_ids(Ragged.from_dense(values), boundaries).to_lists() == expected
    np.testing.assert_array_equal(
        hashing.bucketize(values, boundaries),
        tf.raw_ops.Bucketize(input=tf.constant(values), boundaries=boundaries).numpy(),
    )


@pytest.mark.parametrize("num_buckets", [0, 1, 7, 100, 2**62])
@pytest.mark.parametrize(
    "hash_key", [None, 0, 1, -1, 2**63 - 1, -(2**63), hashing.DEFAULT_HASH_KEY + 1]
)
def test_sparse_cross_hashed_multivalent(
    rng: np.random.Generator, num_buckets: int, hash_key: int | None
) -> None:
    inputs = [
        _ragged(rng, "bytes", 30, 3),
        _ragged(rng, "int64", 30, 2),
        _ragged(rng, "bytes", 30, 4),
    ]
    st = tf.sparse.cross_hashed(
        [_to_tf(r, dense=False) for r in inputs], num_buckets=num_buckets, hash_key=hash_key
    )
    ours = hashing.cross_ids(inputs, num_buckets, hash_key=hash_key)
    assert ours.to_lists() == _from_sparse(st, 30)
    assert sum(len(r) for r in ours.to_lists()) > 30  # the data really is multivalent


def test_sparse_cross_hashed_puts_sparse_before_dense(rng: np.random.Generator) -> None:
    d1 = _dense(rng, "bytes", 25, 2)
    s1 = _ragged(rng, "int64", 25, 3)
    d2 = _dense(rng, "int64", 25, 1)
    s2 = _ragged(rng, "bytes", 25, 2)
    order = [d1, s1, d2, s2]
    flags = [True, False, True, False]
    st = tf.sparse.cross_hashed(
        [_to_tf(r, dense=f) for r, f in zip(order, flags, strict=True)], num_buckets=1000
    )
    expected = _from_sparse(st, 25)
    assert hashing.cross_ids(order, 1000, dense=flags).to_lists() == expected
    # and that order really matters: the same inputs all sparse give other ids
    assert hashing.cross_ids(order, 1000).to_lists() != expected


def test_keras_hashed_crossing_matches(rng: np.random.Generator) -> None:
    keras = pytest.importorskip("keras")
    a = _dense(rng, "bytes", 40, 1)
    b = _dense(rng, "int64", 40, 1)
    layer = keras.layers.HashedCrossing(num_bins=13)
    out = np.asarray(layer((tf.constant(a.values.tolist()), tf.constant(b.values)))).reshape(-1)
    ours = hashing.cross_ids([a, b], 13, dense=[True, True])
    assert ours.values.tolist() == out.tolist()


@pytest.mark.parametrize("hash_key", [None, 0, 12345])
@pytest.mark.parametrize("dense", [False, True])
def test_crossed_column_of_raw_keys_and_columns(
    rng: np.random.Generator, hash_key: int | None, dense: bool
) -> None:
    rows = 40
    raw_s = _dense(rng, "bytes", rows, 2) if dense else _ragged(rng, "bytes", rows, 3)
    hashed = _ragged(rng, "bytes", rows, 2)
    vocab_in = _ragged(rng, "int64", rows, 2)
    ident = _dense(rng, "int64", rows, 2)
    x = rng.normal(size=(rows, 2)).astype(np.float32)
    boundaries = [-0.5, 0.0, 0.5]

    c_vocab = fc.categorical_column_with_vocabulary_list("v", [0, 1, 2, 3], dtype=tf.int64)
    c_ident = fc.categorical_column_with_identity("i", 10, default_value=9)
    c_buck = fc.bucketized_column(fc.numeric_column("x", shape=(2,)), boundaries)
    # (crossed_column refuses hash-bucket columns: raw keys are crossed instead)
    inner = fc.crossed_column(["s", "h"], 1000)
    col = fc.crossed_column([inner, c_vocab, c_ident, c_buck], 10_007, hash_key=hash_key)
    features = {
        "s": _to_tf(raw_s, dense=dense),
        "h": _to_tf(hashed, dense=False),
        "v": _to_tf(vocab_in, dense=False),
        "i": _to_tf(ident, dense=True),
        "x": tf.constant(x),
    }
    expected = _fc_ids(col, features, rows)

    # crossed_column flattens nested crosses into their leaf keys; raw keys are
    # used as fed, categorical columns through their (always sparse) ids.
    leaves = [
        raw_s,
        hashed,
        hashing.vocabulary_ids(vocab_in, [0, 1, 2, 3]),  # keeps -1 ids, as TF does
        hashing.identity_ids(ident, 10, default_value=9, dense=True),
        hashing.bucketized_ids(Ragged.from_dense(x), boundaries),
    ]
    flags = [dense, False, False, False, False]
    ours = hashing.cross_ids(leaves, 10_007, hash_key=hash_key, dense=flags)
    assert ours.to_lists() == expected
    assert any(len(r) > 1 for r in expected)


def test_keras_hashing_matches_hash_bucket(rng: np.random.Generator) -> None:
    keras = pytest.importorskip("keras")
    pool = [p for p in _string_pool(rng) if p]  # Keras hashes '' too; FC dense drops it
    out = np.asarray(keras.layers.Hashing(num_bins=23)(tf.constant(pool))).reshape(-1)
    assert hashing.hash_bucket(np.array(pool, dtype=object), 23).tolist() == out.tolist()
    docs = np.asarray(keras.layers.Hashing(num_bins=3)(tf.constant(list("ABCDE")))).reshape(-1)
    assert docs.tolist() == hashing.hash_bucket(list("ABCDE"), 3).tolist() == [1, 0, 1, 1, 2]
