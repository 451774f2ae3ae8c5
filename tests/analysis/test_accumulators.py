"""Tests for featurepipe.analysis._accumulators and featurepipe.analysis._quantiles against exact numpy answers."""

from __future__ import annotations

import math
import pickle
import random
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurepipe.analysis._accumulators import (
    CountAccumulator,
    DistinctCountAccumulator,
    MomentsAccumulator,
    QuantileSketch,
    ValueCountAccumulator,
    VocabularyAccumulator,
    hash_values,
    merge_all,
    sort_vocabulary,
)
from featurepipe.errors import ConfigError


def rank_error(data: np.ndarray, boundaries: np.ndarray, num_buckets: int) -> float:
    """Largest normalized distance between a boundary's true rank range and its target rank."""
    x = np.sort(data[~np.isnan(data)])
    n = x.size
    worst = 0.0
    for i, b in enumerate(boundaries, start=1):
        target = i / num_buckets * n
        lo = np.searchsorted(x, b, side="left")  # values < b
        hi = np.searchsorted(x, b, side="right")  # values <= b
        worst = max(worst, max(0.0, lo - target, target - hi) / n)
    return worst


def sketch_of(data: np.ndarray, eps: float, *, batches: int = 50, seed: int = 0) -> QuantileSketch:
    s = QuantileSketch(eps, seed=seed)
    for chunk in np.array_split(data, batches):
        s.add(chunk)
    return s


_RNG = np.random.default_rng(1234)
_N = 200_000
DATASETS = {
    "sorted": np.arange(_N, dtype=np.float64),
    "reversed": np.arange(_N, dtype=np.float64)[::-1].copy(),
    "duplicates": _RNG.integers(0, 7, _N).astype(np.float64),
    "single_value": np.full(_N, 3.25),
    "nan_present": np.where(_RNG.random(_N) < 0.2, np.nan, _RNG.normal(size=_N)),
    "skewed_lognormal": _RNG.lognormal(0.0, 4.0, _N),
    "heavy_mass_plus_tail": np.concatenate([np.zeros(_N // 2), _RNG.pareto(1.0, _N // 2)]),
    "with_infinities": np.concatenate(
        [_RNG.normal(size=_N - 100), np.full(50, np.inf), np.full(50, -np.inf)]
    ),
}


# -- quantiles --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize("eps", [0.01, 0.002])
def test_quantile_rank_error_within_eps(name: str, eps: float) -> None:
    data = DATASETS[name]
    sketch = sketch_of(data, eps)
    for num_buckets in (2, 10, 100):
        b = sketch.boundaries(num_buckets)
        assert b.shape == (num_buckets - 1,)
        assert np.all(np.diff(b) >= 0)
        assert rank_error(data, b, num_buckets) <= eps
    # The state stays small: bounded by eps, not by the 200k inputs.
    assert sketch.num_retained < 4 * sketch.k + 64
    assert sketch.count == int(np.count_nonzero(~np.isnan(data)))


def test_quantile_sketch_is_exact_before_compaction() -> None:
    data = _RNG.normal(size=300)
    sketch = sketch_of(data, 0.01, batches=7)
    q = np.linspace(0.0, 1.0, 21)
    np.testing.assert_array_equal(sketch.quantiles(q), np.quantile(data, q, method="inverted_cdf"))


def test_quantile_single_value_and_nan() -> None:
    sketch = QuantileSketch()
    sketch.add([np.nan, 5.0, np.nan])
    assert sketch.num_nan == 2
    assert sketch.boundaries(4).tolist() == [5.0, 5.0, 5.0]
    only_nan = QuantileSketch()
    only_nan.add([np.nan])
    assert only_nan.boundaries(4).size == 0
    assert only_nan.count == 0


def test_quantile_extremes_are_exact() -> None:
    data = DATASETS["skewed_lognormal"]
    sketch = sketch_of(data, 0.01)
    lo, hi = sketch.quantiles([0.0, 1.0])
    assert lo == data.min()
    assert hi == data.max()


def test_quantile_bucketize_is_balanced() -> None:
    # Boundaries follow Discretization / bucketized_column: bucket = digitize(x, boundaries).
    data = DATASETS["skewed_lognormal"]
    sketch = sketch_of(data, 0.005)
    counts = np.bincount(np.digitize(data, sketch.boundaries(10)), minlength=10)
    assert counts.size == 10
    assert np.all(np.abs(counts / data.size - 0.1) <= 2 * 0.005)


def test_quantile_sketch_deterministic_given_seed() -> None:
    data = DATASETS["skewed_lognormal"]
    a = sketch_of(data, 0.01, seed=7).boundaries(50)
    b = sketch_of(data, 0.01, seed=7).boundaries(50)
    np.testing.assert_array_equal(a, b)


def test_quantile_sketch_pickle_round_trip() -> None:
    sketch = sketch_of(DATASETS["nan_present"], 0.01)
    clone = pickle.loads(pickle.dumps(sketch))
    np.testing.assert_array_equal(clone.boundaries(20), sketch.boundaries(20))
    assert len(pickle.dumps(sketch)) < 64 * 1024


def test_quantile_histogram_counts_match_numpy() -> None:
    data = _RNG.normal(size=50_000)
    sketch = sketch_of(data, 0.002)
    hist = sketch.histogram(10)
    exact, edges = np.histogram(data, bins=10, range=(data.min(), data.max()))
    np.testing.assert_allclose(hist.edges, edges)
    assert sum(hist.counts) == pytest.approx(data.size)
    assert np.max(np.abs(np.asarray(hist.counts) - exact)) <= 2 * 0.002 * data.size


def test_quantile_argument_errors() -> None:
    with pytest.raises(ConfigError, match="Received: eps=0"):
        QuantileSketch(eps=0)
    with pytest.raises(ConfigError, match="Received: num_buckets=0"):
        QuantileSketch().boundaries(0)
    with pytest.raises(ConfigError, match="fractions"):
        QuantileSketch().quantiles([1.5])
    with pytest.raises(ConfigError, match="different `eps`"):
        QuantileSketch(0.01).merge(QuantileSketch(0.001))


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=60_000), min_size=1, max_size=12),
    dataset=st.sampled_from(["skewed_lognormal", "duplicates", "reversed", "nan_present"]),
    tree=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_quantile_merge_of_random_splits_within_eps(
    cuts: list[int], dataset: str, tree: bool, seed: int
) -> None:
    data = DATASETS[dataset][:60_000]
    eps = 0.01
    parts = np.split(data, sorted(cuts))
    sketches = []
    for i, part in enumerate(parts):
        s = QuantileSketch(eps, seed=seed + i)
        s.add(part)
        sketches.append(s)
    if tree:  # pairwise merge tree, as a distributed combine would do
        while len(sketches) > 1:
            sketches = [merge_all(sketches[i : i + 2]) for i in range(0, len(sketches), 2)]
        merged = sketches[0]
    else:
        merged = merge_all(sketches)
    assert merged.count == int(np.count_nonzero(~np.isnan(data)))
    for num_buckets in (4, 32):
        assert rank_error(data, merged.boundaries(num_buckets), num_buckets) <= eps


# -- moments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "scale"),
    [(1e9, 1.0), (1e12, 1e-2), (-3e15, 1.0), (0.0, 1e-30), (1e150, 1e140)],
)
def test_moments_large_magnitude_no_cancellation(offset: float, scale: float) -> None:
    rng = np.random.default_rng(5)
    data = offset + scale * rng.normal(size=100_000)
    parts = [MomentsAccumulator() for _ in range(37)]
    for acc, chunk in zip(parts, np.array_split(data, 37), strict=True):
        acc.add(chunk)
    m = merge_all(parts).extract()
    # Reference: numpy's two-pass variance of the data shifted by one of its values (the
    # subtraction is exact for nearby floats); plain np.var loses digits itself at 3e15.
    exact_var = np.var(data - data[0])
    assert m.count == data.size
    assert m.mean == pytest.approx(np.mean(data), rel=1e-12, abs=0)
    assert m.variance == pytest.approx(exact_var, rel=1e-6)
    assert m.std == pytest.approx(math.sqrt(exact_var), rel=1e-6)
    assert (m.min, m.max) == (data.min(), data.max())


def test_moments_exact_against_rationals() -> None:
    # Values near -3e15 are multiples of 0.5; compare with the exact rational variance.
    data = -3e15 + np.random.default_rng(5).normal(size=20_000)
    twice = [int(v * 2) for v in data]
    n, s, ss = len(twice), sum(twice), sum(i * i for i in twice)
    exact = Fraction(ss * n - s * s, n * n) / 4
    acc = MomentsAccumulator()
    for chunk in np.array_split(data, 9):
        acc.add(chunk)
    assert acc.extract().variance == pytest.approx(float(exact), rel=1e-12)
    assert acc.extract().mean == pytest.approx(float(Fraction(s, 2 * n)), abs=0.5)  # 1 ulp


def test_moments_naive_formula_would_fail() -> None:
    # Sanity check that the case above is really adversarial for E[x^2] - E[x]^2.
    data = 1e9 + np.random.default_rng(0).normal(size=10_000)
    naive = np.mean(data**2) - np.mean(data) ** 2
    assert abs(naive - np.var(data)) > 0.5 * np.var(data)
    acc = MomentsAccumulator()
    for chunk in np.array_split(data, 10):
        acc.add(chunk)
    assert acc.extract().variance == pytest.approx(np.var(data), rel=1e-6)


def test_moments_single_values_merged_one_by_one() -> None:
    data = 1e9 + np.arange(1000) % 7
    acc = MomentsAccumulator()
    for v in data:
        acc.add([v])
    assert acc.extract().variance == pytest.approx(np.var(data), rel=1e-12)


def test_moments_nan_inf_and_empty() -> None:
    acc = MomentsAccumulator()
    acc.add(np.array([np.nan, np.inf, -np.inf, 0.0, 2.0], dtype=np.float32))
    m = acc.extract()
    got = (m.count, m.mean, m.variance, m.num_nan, m.num_inf, m.num_zeros)
    assert got == (2, 1.0, 1.0, 1, 2, 1)
    assert (m.min, m.max) == (-math.inf, math.inf)
    empty = MomentsAccumulator().extract()
    assert empty.count == 0
    assert math.isnan(empty.mean)
    assert math.isnan(empty.min)
    assert merge_all([MomentsAccumulator(), acc]).extract() == m


def test_moments_integers() -> None:
    acc = MomentsAccumulator()
    acc.add(np.array([1, 2, 3, 4], dtype=np.int64))
    assert acc.extract().variance == 1.25


# -- counts -----------------------------------------------------------------------------------


def test_counts_and_value_counts() -> None:
    present = np.array([True, False, True, True])
    lengths = np.array([2, 0, 0, 5])
    a, b = CountAccumulator(), CountAccumulator()
    a.add(present[:2])
    b.add(present[2:])
    c = a.merge(b).extract()
    assert (c.num_rows, c.num_present, c.num_missing, c.missing_rate) == (4, 3, 1, 0.25)
    va, vb = ValueCountAccumulator(), ValueCountAccumulator()
    va.add(lengths[:2], present[:2])
    vb.add(lengths[2:], present[2:])
    v = va.merge(vb).extract()
    assert (v.num_examples, v.num_values, v.num_empty, v.min, v.max) == (3, 7, 1, 0, 5)
    assert v.mean == pytest.approx(7 / 3)
    assert ValueCountAccumulator().merge(ValueCountAccumulator()).extract().max == 0
    with pytest.raises(ConfigError, match="len\\(present\\)=1"):
        ValueCountAccumulator().add([1, 2], [True])


# -- vocabulary -------------------------------------------------------------------------------


def _tokens(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    words = [b"apple", b"b", b"banana", b"\xff\x00", b"", b"a", b"A", b"zz"]
    out = []
    for w in words:  # several words share each frequency: ties everywhere
        out.extend([w] * (1 + words.index(w) % 3))
    rng.shuffle(out)
    return out


def test_vocabulary_order_count_desc_then_bytes_asc() -> None:
    acc = VocabularyAccumulator()
    acc.add(np.array(_tokens(0), dtype=object))
    vocab = acc.extract()
    expected = sorted(set(_tokens(0)), key=lambda w: (-_tokens(0).count(w), w))
    assert list(vocab.values) == expected
    assert list(vocab.frequencies) == [_tokens(0).count(w) for w in expected]
    assert vocab.num_distinct == 8
    assert vocab.total == len(_tokens(0))


@pytest.mark.parametrize("seed", range(5))
def test_vocabulary_ties_deterministic_regardless_of_batch_order(seed: int) -> None:
    tokens = _tokens(seed)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(tokens)), 3))
    parts = [tokens[i:j] for i, j in zip([0, *cuts], [*cuts, len(tokens)], strict=True)]
    rng.shuffle(parts)
    accs = []
    for part in parts:
        acc = VocabularyAccumulator(top_k=5, min_frequency=2)
        acc.add(np.array(part, dtype=object))
        accs.append(acc)
    reference = VocabularyAccumulator(top_k=5, min_frequency=2)
    reference.add(np.array(_tokens(0), dtype=object))
    assert merge_all(accs).extract() == reference.extract()


def test_vocabulary_integers_str_and_limits() -> None:
    acc = VocabularyAccumulator(min_frequency=2)
    acc.add(np.array([3, -1, 3, -1, 10, 2**40, 2**40]))
    assert acc.extract().values == (-1, 3, 2**40)
    s = VocabularyAccumulator()
    s.add(np.array(["é", "é", "x"]))
    assert s.extract().values == ("é".encode(), b"x")
    assert sort_vocabulary([(b"a", 1)], top_k=0) == []
    with pytest.raises(ConfigError, match="Received: top_k=-1"):
        VocabularyAccumulator(top_k=-1)
    with pytest.raises(ConfigError, match="Received: min_frequency=0"):
        VocabularyAccumulator(min_frequency=0)
    with pytest.raises(ConfigError, match="dtype float64"):
        VocabularyAccumulator().add(np.array([1.5]))


# -- distinct count ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 10, 1_000, 50_000, 400_000])
def test_distinct_count_within_error(n: int) -> None:
    values = np.arange(n, dtype=np.int64) * 7919
    parts = [DistinctCountAccumulator() for _ in range(4)]
    for acc, chunk in zip(parts, np.array_split(np.concatenate([values, values]), 4), strict=True):
        acc.add(chunk)
    estimate = merge_all(parts).extract()
    # 1.04 / sqrt(4096) = 1.6% standard error; allow 4 sigma.
    assert abs(estimate - n) <= max(2, 0.065 * n)


def _splitmix_ref(x: int) -> int:
    m = (1 << 64) - 1
    z = (x + 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def _hash_ref(v: bytes) -> int:
    """Independent, pure-Python statement of the documented bytes hash."""
    if len(v) > 64:
        import hashlib

        return int.from_bytes(hashlib.blake2b(v, digest_size=8).digest(), "little")
    h = _splitmix_ref(len(v))
    padded = v + b"\x00" * (-len(v) % 8)
    for i in range(0, len(padded), 8):
        h = _splitmix_ref(h ^ int.from_bytes(padded[i : i + 8], "little"))
    return h


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=90), max_size=30))
def test_hash_values_bytes_match_reference(values: list[bytes]) -> None:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    assert hash_values(arr).tolist() == [_hash_ref(v) for v in values]


def test_hash_values_stable_and_batch_independent() -> None:
    # Golden: hashes feed distinct counts and vocabulary shards that merge across processes
    # and versions, so they must never change.
    assert int(hash_values(np.array([b"abc"], dtype=object))[0]) == 0x347774C605D70C76
    alone = hash_values(np.array([b"a\x00"], dtype=object))[0]
    mixed = hash_values(np.array([b"a", b"a\x00", b"x" * 40, b"y" * 100], dtype=object))
    assert mixed[1] == alone  # the batch's longest value does not change a hash
    assert mixed[0] != mixed[1]  # trailing NUL bytes count
    assert len(set(mixed.tolist())) == 4


def test_distinct_count_bytes() -> None:
    values = np.array([f"user-{i}".encode() for i in range(20_000)], dtype=object)
    a = DistinctCountAccumulator()
    a.add(values)
    assert abs(a.extract() - 20_000) <= 0.065 * 20_000
    assert len(pickle.dumps(a)) < 5000
    with pytest.raises(ConfigError, match="Received: precision=3"):
        DistinctCountAccumulator(precision=3)
    with pytest.raises(ConfigError, match="different precision"):
        a.merge(DistinctCountAccumulator(precision=10))


def test_merge_all_needs_input() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        merge_all([])


@settings(max_examples=60, deadline=None)
@given(
    counts=st.dictionaries(st.binary(max_size=3), st.integers(1, 5), max_size=40),
    top_k=st.one_of(st.none(), st.integers(0, 45)),
    min_frequency=st.integers(1, 4),
)
def test_sort_vocabulary_matches_brute_force(
    counts: dict[bytes, int], top_k: int | None, min_frequency: int
) -> None:
    items = list(counts.items())
    random.Random(len(items)).shuffle(items)
    expected = sorted(
        [(v, c) for v, c in counts.items() if c >= min_frequency], key=lambda vc: (-vc[1], vc[0])
    )
    if top_k is not None:
        expected = expected[:top_k]
    assert sort_vocabulary(items, top_k=top_k, min_frequency=min_frequency) == expected


def test_quantile_many_small_merges_within_eps() -> None:
    # A Beam combine may merge thousands of tiny partial sketches one after another.
    data = DATASETS["skewed_lognormal"]
    parts = []
    for i, chunk in enumerate(np.array_split(data, 1000)):
        s = QuantileSketch(0.01, seed=i)
        s.add(chunk)
        parts.append(s)
    merged = merge_all(parts)
    assert merged.count == data.size
    assert rank_error(data, merged.boundaries(100), 100) <= 0.01
    assert merged.num_retained < 4 * merged.k + 64
