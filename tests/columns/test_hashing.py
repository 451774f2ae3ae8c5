"""Unit tests for featurepipe.columns._hashing (no TensorFlow needed).

Golden vectors come from TensorFlow's own kernel tests and Keras docstrings (see
/work/shared/reference/tf-feature-column-semantics.md §4); tests/keras/test_id_parity.py
re-derives all of them from TensorFlow itself.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest

from featurepipe.columns import _hashing as hashing
from featurepipe.columns._hashing import DEFAULT_HASH_KEY, Ragged
from featurepipe.errors import ConfigError

pytest.importorskip("farmhash")

_MASK = 2**64 - 1
_KMUL = 0xC6A4A7935BD1E995


def _py_cat64(fp1: int, fp2: int) -> int:
    """FingerprintCat64 written with plain Python ints, as an independent reference."""

    def shift_mix(v: int) -> int:
        return v ^ (v >> 47)

    r = fp1 ^ _KMUL
    r ^= (shift_mix((fp2 * _KMUL) & _MASK) * _KMUL) & _MASK
    r = (r * _KMUL) & _MASK
    r = (shift_mix(r) * _KMUL) & _MASK
    return shift_mix(r)


def _py_cross(rows: list[list[list[object]]], num_buckets: int, key: int) -> list[list[int]]:
    """Reference cross: rows[input][row] -> values, all inputs sparse, in the given order."""
    out = []
    for r in range(len(rows[0])):
        row_out = []
        for combo in itertools.product(*(inp[r] for inp in rows)):
            h = key
            for v in combo:
                f = hashing.fingerprint64(v) if isinstance(v, str | bytes) else int(v) & _MASK
                h = _py_cat64(h, f)
            row_out.append(h % num_buckets if num_buckets else h % (2**63 - 1))
        out.append(row_out)
    return out


# -- primitives -----------------------------------------------------------------------------


def test_fingerprint64_tf_vectors() -> None:
    expected = [12917804110809363939, 11795596070477164822, 11430444447143000872,
                4470636696479570465]  # fmt: skip
    assert [hashing.fingerprint64(c) for c in "abcd"] == expected
    assert hashing.fingerprint64_array(np.array(list("abcd"))).tolist() == expected
    assert hashing.fingerprint64_array(np.array([b"a", b"b", b"c", b"d"])).tolist() == expected


def test_fingerprint64_str_is_utf8_bytes() -> None:
    assert hashing.fingerprint64("日本語") == hashing.fingerprint64("日本語".encode())
    assert (
        hashing.fingerprint64_array(["é", b"\xc3\xa9"]).tolist()
        == [hashing.fingerprint64(b"\xc3\xa9")] * 2
    )


def test_fingerprint64_array_ints_hash_their_decimal_form() -> None:
    got = hashing.fingerprint64_array(np.array([-5, 0, 2**62], dtype=np.int64))
    assert got.tolist() == [hashing.fingerprint64(s) for s in ["-5", "0", str(2**62)]]


def test_fingerprint64_array_empty() -> None:
    got = hashing.fingerprint64_array(np.array([], dtype=object))
    assert got.dtype == np.uint64
    assert got.shape == (0,)


def test_fingerprint_cat64_matches_python_reference() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**63, 200, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, 200, dtype=np.uint64)
    got = hashing.fingerprint_cat64(a, b)
    assert got.tolist() == [_py_cat64(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    # scalars broadcast
    assert hashing.fingerprint_cat64(DEFAULT_HASH_KEY, b).tolist() == [
        _py_cat64(DEFAULT_HASH_KEY, y) for y in b.tolist()
    ]


def test_as_bytes_rejects_floats() -> None:
    with pytest.raises(ConfigError, match=r"bucketize floats first\). Received: dtype=float"):
        hashing.as_bytes(np.array([1.5]))
    with pytest.raises(ConfigError, match="Received: a value of type float"):
        hashing.as_bytes(np.array([b"a", 1.5], dtype=object))


def test_missing_pyfarmhash_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "farmhash", None)
    with pytest.raises(ImportError, match=r"pip install 'featurepipe\[hash\]'"):
        hashing.fingerprint64("a")


# -- hash buckets ---------------------------------------------------------------------------


def test_hash_bucket_tf_vector() -> None:
    assert hashing.hash_bucket(["a", "b", "c", "d"], 10).tolist() == [9, 2, 2, 5]


def test_hash_bucket_keras_hashing_vector() -> None:
    # keras.layers.Hashing(num_bins=3) docstring
    assert hashing.hash_bucket(["A", "B", "C", "D", "E"], 3).tolist() == [1, 0, 1, 1, 2]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_hash_bucket_rejects_bad_num_buckets(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"`num_buckets` must be an integer >= 1. Received"):
        hashing.hash_bucket(["a"], bad)  # type: ignore[arg-type]


def test_hash_bucket_ids_keeps_empty_values_of_sparse_input() -> None:
    rag = Ragged.from_rows([["a", ""], [], ["b"]])
    got = hashing.hash_bucket_ids(rag, 10)
    assert got.to_lists() == [[9, hashing.hash_bucket([""], 10)[0]], [], [2]]


def test_hash_bucket_ids_drops_ignore_values_of_dense_input() -> None:
    strings = Ragged.from_dense(np.array([["a", ""], ["", ""]], dtype=object))
    assert hashing.hash_bucket_ids(strings, 10, dense=True).to_lists() == [[9], []]
    ints = Ragged.from_dense(np.array([[-1, 5], [7, -1]]))
    expected = hashing.hash_bucket(["5", "7"], 10).tolist()
    assert hashing.hash_bucket_ids(ints, 10, dense=True).to_lists() == [
        [expected[0]],
        [expected[1]],
    ]


# -- vocabularies ---------------------------------------------------------------------------


def test_vocabulary_ids_oov_after_vocabulary() -> None:
    rag = Ragged.from_rows([["b", "zz", "a"], ["q"], []])
    got = hashing.vocabulary_ids(rag, ["a", "b", "c"], num_oov_buckets=4)
    oov = (3 + hashing.hash_bucket(["zz", "q"], 4)).tolist()
    assert got.to_lists() == [[1, oov[0], 0], [oov[1]], []]


def test_vocabulary_ids_default_value() -> None:
    rag = Ragged.from_rows([[b"b", b"zz"]])
    assert hashing.vocabulary_ids(rag, [b"a", b"b"]).to_lists() == [[1, -1]]
    assert hashing.vocabulary_ids(rag, ["a", "b"], default_value=9).to_lists() == [[1, 9]]


def test_vocabulary_ids_integers() -> None:
    rag = Ragged.from_rows([[20, 30, -7], [10]])
    got = hashing.vocabulary_ids(rag, [10, 20], num_oov_buckets=3)
    oov = (2 + hashing.hash_bucket(["30", "-7"], 3)).tolist()
    assert got.to_lists() == [[1, oov[0], oov[1]], [0]]
    assert got.values.dtype == np.int64


def test_vocabulary_ids_dense_drops_ignore_values() -> None:
    rag = Ragged.from_dense(np.array([["a", ""]], dtype=object))
    assert hashing.vocabulary_ids(rag, ["a"], dense=True).to_lists() == [[0]]
    assert hashing.vocabulary_ids(rag, ["a"]).to_lists() == [[0, -1]]


def test_vocabulary_ids_errors() -> None:
    rag = Ragged.from_rows([["a"]])
    with pytest.raises(ConfigError, match=r"must not contain duplicates.*\[b'a'\]"):
        hashing.vocabulary_ids(rag, ["a", "b", "a"])
    with pytest.raises(ConfigError, match=r"must not contain duplicates.*\[3\]"):
        hashing.vocabulary_ids(Ragged.from_rows([[1]]), [3, 1, 3])
    with pytest.raises(ConfigError, match="both be integers or both be strings"):
        hashing.vocabulary_ids(rag, [1, 2])
    with pytest.raises(
        ConfigError, match=r"not both\. Received: num_oov_buckets=2, default_value=0"
    ):
        hashing.vocabulary_ids(rag, ["a"], num_oov_buckets=2, default_value=0)
    with pytest.raises(ConfigError, match="Received: num_oov_buckets=-1"):
        hashing.vocabulary_ids(rag, ["a"], num_oov_buckets=-1)
    with pytest.raises(ConfigError, match="non-empty"):
        hashing.vocabulary_ids(rag, [])


# -- identity -------------------------------------------------------------------------------


def test_identity_ids() -> None:
    rag = Ragged.from_rows([[0, 4, 5, -3, -1], []])
    assert hashing.identity_ids(rag, 5).to_lists() == [[0, 4, 5, -3, -1], []]
    assert hashing.identity_ids(rag, 5, default_value=2).to_lists() == [[0, 4, 2, 2, 2], []]
    dense = Ragged.from_dense(np.array([[1, -1]]))
    assert hashing.identity_ids(dense, 5, dense=True).to_lists() == [[1]]


def test_identity_ids_errors() -> None:
    rag = Ragged.from_rows([[1]])
    with pytest.raises(ConfigError, match=r"in \[0, num_buckets=5\). Received: default_value=5"):
        hashing.identity_ids(rag, 5, default_value=5)
    with pytest.raises(ConfigError, match="need integer values"):
        hashing.identity_ids(Ragged.from_rows([["a"]]), 5)


# -- bucketize ------------------------------------------------------------------------------


def test_bucketize_is_left_closed_with_nan_last() -> None:
    got = hashing.bucketize([-np.inf, -1.0, 0.0, 0.999, 1.0, 2.0, np.inf, np.nan], [0.0, 1.0, 2.0])
    assert got.tolist() == [0, 0, 1, 1, 2, 3, 3, 3]


def test_bucketize_rounds_boundaries_to_float32() -> None:
    # 0.1 as float32 is 0.100000001490116..., so 0.1 (float64) lies below it.
    assert hashing.bucketize(np.array([0.1], dtype=np.float64), [0.1]).tolist() == [0]
    assert hashing.bucketize(np.array([0.1], dtype=np.float32), [0.1]).tolist() == [1]


def test_bucketize_rejects_unsorted_boundaries() -> None:
    with pytest.raises(ConfigError, match=r"sorted in increasing order.*Received: boundaries=\[1"):
        hashing.bucketize([0.0], [1.0, 0.0])
    with pytest.raises(ConfigError, match="without repeats"):
        hashing.bucketize([0.0], [1.0, 1.0])


def test_bucketized_ids_offset_by_position() -> None:
    rag = Ragged.from_dense(np.array([[-1.0, 0.5, 9.0]]))
    # 3 buckets per position: [0,1,2], [3,4,5], [6,7,8]
    assert hashing.bucketized_ids(rag, [0.0, 1.0]).to_lists() == [[0, 4, 8]]


def test_bucketized_ids_cast_to_float32() -> None:
    rag = Ragged.from_dense(np.array([[0.1]], dtype=np.float64))
    assert hashing.bucketized_ids(rag, [0.1]).to_lists() == [[1]]


# -- crosses --------------------------------------------------------------------------------

_CROSS_INPUTS = [
    Ragged.from_rows([["batch1-FC1-F1"]]),
    Ragged.from_rows([["batch1-FC2-F1"]]),
    Ragged.from_rows([["batch1-FC3-F1"]]),
]


@pytest.mark.parametrize(
    ("hash_key", "num_buckets", "expected"),
    [
        (None, 0, 1971693436396284976),
        (None, 100, 83),
        (DEFAULT_HASH_KEY + 1, 0, 4847552627144134031),
        (DEFAULT_HASH_KEY + 1, 100, 31),
    ],
)
def test_cross_ids_tf_kernel_vectors(hash_key: int | None, num_buckets: int, expected: int) -> None:
    got = hashing.cross_ids(_CROSS_INPUTS, num_buckets, hash_key=hash_key)
    assert got.to_lists() == [[expected]]


def test_cross_ids_hash_key_zero_means_default() -> None:
    assert hashing.cross_ids(_CROSS_INPUTS, 0, hash_key=0).to_lists() == [[1971693436396284976]]


def test_cross_ids_keras_hashed_crossing_vector() -> None:
    a = Ragged.from_dense(np.array(["A", "B", "A", "B", "A"], dtype=object))
    b = Ragged.from_dense(np.array([101, 101, 101, 102, 102]))
    got = hashing.cross_ids([a, b], 5, dense=[True, True])
    assert got.values.tolist() == [1, 4, 1, 1, 3]


def test_cross_ids_multivalent_matches_python_reference() -> None:
    rng = np.random.default_rng(7)
    pool = ["", "a", "日本", "x" * 40]
    ints = [-1, 0, 3, 2**62]
    inputs_rows = [
        [[pool[i] for i in rng.integers(0, 4, rng.integers(0, 4))] for _ in range(30)],
        [[ints[i] for i in rng.integers(0, 4, rng.integers(0, 3))] for _ in range(30)],
        [[pool[i] for i in rng.integers(0, 4, rng.integers(1, 3))] for _ in range(30)],
    ]
    inputs = [
        Ragged.from_rows(rows, dtype=object if k != 1 else np.int64)
        for k, rows in enumerate(inputs_rows)
    ]
    for num_buckets, key in [(0, DEFAULT_HASH_KEY), (1000, DEFAULT_HASH_KEY), (7, 99)]:
        got = hashing.cross_ids(inputs, num_buckets, hash_key=key)
        assert got.to_lists() == _py_cross(inputs_rows, num_buckets, key)
    assert any(len(r) == 0 for r in got.to_lists())  # empty inputs give empty crosses
    assert max(len(r) for r in got.to_lists()) > 2


def test_cross_ids_sparse_inputs_come_first() -> None:
    a = Ragged.from_rows([["x"]])
    b = Ragged.from_rows([["y"]])
    assert (
        hashing.cross_ids([a, b], 1000, dense=[True, False]).to_lists()
        == hashing.cross_ids([b, a], 1000).to_lists()
    )
    assert hashing.cross_ids([a, b], 1000).to_lists() != hashing.cross_ids([b, a], 1000).to_lists()


def test_cross_ids_negative_ints_used_raw() -> None:
    got = hashing.cross_ids([Ragged.from_rows([[-1]])], 0)
    assert got.to_lists() == [[_py_cat64(DEFAULT_HASH_KEY, 2**64 - 1) % (2**63 - 1)]]


def test_cross_ids_errors() -> None:
    a = Ragged.from_rows([["x"]])
    with pytest.raises(ConfigError, match="at least one column"):
        hashing.cross_ids([], 10)
    with pytest.raises(ConfigError, match=r"same number of rows\. Received: \[1, 2\]"):
        hashing.cross_ids([a, Ragged.from_rows([["x"], ["y"]])], 10)
    with pytest.raises(ConfigError, match="Received: num_buckets=-1"):
        hashing.cross_ids([a], -1)
    with pytest.raises(ConfigError, match=r"signed 64-bit integer\. Received: hash_key=1844"):
        hashing.cross_ids([a], 10, hash_key=2**64 - 1)
    with pytest.raises(ConfigError, match="one flag per input"):
        hashing.cross_ids([a], 10, dense=[True, False])
    with pytest.raises(ConfigError, match="bucketize floats first"):
        hashing.cross_ids([Ragged.from_rows([[1.5]])], 10)


# -- Ragged ---------------------------------------------------------------------------------


def test_ragged_validation() -> None:
    with pytest.raises(ConfigError, match=r"add up to the number of values. Received: sum"):
        Ragged(np.array([1, 2]), np.array([1]))
    with pytest.raises(ConfigError, match="non-negative"):
        Ragged(np.array([1]), np.array([2, -1]))
    with pytest.raises(ConfigError, match="rank 1 or 2"):
        Ragged.from_dense(np.zeros((1, 1, 1)))


def test_ragged_accessors() -> None:
    rag = Ragged.from_rows([[1, 2], [], [3]])
    assert rag.num_rows == 3
    assert rag.row_starts.tolist() == [0, 2, 2]
    assert rag.row_ids.tolist() == [0, 0, 2]
    assert Ragged.from_rows([[], []]).to_lists() == [[], []]


def test_surrogate_escaped_str_hashes_as_its_bytes() -> None:
    raw = b"\xff\xfeab"
    text = raw.decode("utf-8", "surrogateescape")
    assert hashing.fingerprint64(text) == hashing.fingerprint64(raw)
    assert hashing.hash_bucket([text], 97).tolist() == hashing.hash_bucket([raw], 97).tolist()
    rag = Ragged.from_rows([[raw]])
    assert hashing.vocabulary_ids(rag, ["a", text]).to_lists() == [[1]]
