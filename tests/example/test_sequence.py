"""tf.SequenceExample codec and payload kinds, checked against TensorFlow itself."""

from __future__ import annotations

import numpy as np
import pytest

from featurepipe.errors import ConfigError, ExampleDecodeError
from featurepipe.example import (
    Feature,
    decode_example,
    decode_sequence_example,
    decode_sequence_examples,
    encode_example,
    encode_sequence_example,
    payload_kind,
)

tf = pytest.importorskip("tensorflow")  # in requirements/lock.txt: CI fails if it is missing


def _tf_feature(value):
    if isinstance(value, Feature):
        if value.kind is None:
            return tf.train.Feature()
        value = value.values
    if isinstance(value, list) and value and all(isinstance(v, (bytes, str)) for v in value):
        vals = [v.encode() if isinstance(v, str) else v for v in value]
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=vals))
    arr = np.asarray(value)
    if arr.dtype.kind in "iub":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=arr.reshape(-1).tolist()))
    if arr.dtype.kind == "f":
        return tf.train.Feature(float_list=tf.train.FloatList(value=arr.reshape(-1).tolist()))
    vals = [v.encode() if isinstance(v, str) else bytes(v) for v in arr.reshape(-1).tolist()]
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=vals))


def tf_sequence_example(context, feature_lists):
    """The same SequenceExample built with TensorFlow's own classes."""
    kw = {}
    if context is not None:
        kw["context"] = tf.train.Features(
            feature={k: _tf_feature(v) for k, v in context.items()}
        )
    if feature_lists is not None:
        kw["feature_lists"] = tf.train.FeatureLists(
            feature_list={
                k: tf.train.FeatureList(feature=[_tf_feature(s) for s in steps])
                for k, steps in feature_lists.items()
            }
        )
    return tf.train.SequenceExample(**kw)


CASES = [
    ({"id": [7], "user": [b"u1"], "w": [0.5]},
     {"tok": [[1, 2], [3], [-(2**63), 2**63 - 1]], "dwell": [[0.25], [1e-45, -0.0]],
      "cat": [[b"a"], [b"\xff\x00", "unicodé ☃"]]}),
    ({}, {}),
    (None, {"x": [[1]]}),
    ({"c": [1]}, None),
    (None, None),
    ({"z": [1], "a": [2], "ab": [3], "": [4]},  # upb's map order: "ab" before "a", "" last
     {"b": [[1]], "ba": [[2]], "": [[3]]}),
    ({"kindless": Feature(None, np.empty(0))},
     {"steps": [Feature("int64", np.array([], np.int64)), Feature(None, np.empty(0)), [5]],
      "no_steps": []}),
]


@pytest.mark.parametrize(("context", "feature_lists"), CASES)
def test_encode_is_byte_identical_to_tf_deterministic(context, feature_lists):
    ours = encode_sequence_example(context, feature_lists)
    theirs = tf_sequence_example(context, feature_lists).SerializeToString(deterministic=True)
    assert ours == theirs


def test_golden_bytes():
    data = encode_sequence_example({"id": 1}, {"t": [[2], [3, 4]]})
    assert data.hex() == (
        "0a0d" "0a0b" "0a026964" "1205" "1a030a0101"  # context: id -> int64_list [1]
        "1216" "0a14" "0a0174" "120f"  # feature_lists: t -> FeatureList of 2 steps
        "0a05" "1a030a0102"  # step [2]
        "0a06" "1a040a020304"  # step [3, 4] (packed)
    )
    assert data == tf_sequence_example(
        {"id": [1]}, {"t": [[2], [3, 4]]}
    ).SerializeToString(deterministic=True)


def test_decode_matches_tf_parse_sequence_example():
    context, lists = CASES[0]
    data = encode_sequence_example(context, lists)
    seq = decode_sequence_example(data)
    ctx, fl = tf.io.parse_single_sequence_example(
        data,
        context_features={
            "id": tf.io.FixedLenFeature([], tf.int64),
            "user": tf.io.FixedLenFeature([], tf.string),
            "w": tf.io.FixedLenFeature([], tf.float32),
        },
        sequence_features={
            "tok": tf.io.RaggedFeature(tf.int64),
            "dwell": tf.io.RaggedFeature(tf.float32),
            "cat": tf.io.RaggedFeature(tf.string),
        },
    )
    assert seq.context["id"].values.tolist() == [int(ctx["id"].numpy())]
    assert seq.context["user"].values.tolist() == [ctx["user"].numpy()]
    assert seq.context["w"].values.tolist() == [float(ctx["w"].numpy())]
    for name in ("tok", "dwell", "cat"):
        ours = [s.values.tolist() for s in seq.feature_lists[name]]
        assert ours == fl[name].to_list()


def _batch_records():
    rng = np.random.default_rng(1)
    recs = []
    for i in range(50):
        n_steps = int(rng.integers(0, 6))
        lists = {
            "tok": [rng.integers(-5, 1000, int(rng.integers(0, 4))) for _ in range(n_steps)],
            "f": [rng.random(int(rng.integers(1, 3))).astype(np.float32)
                  for _ in range(n_steps)],
        }
        if i % 3:
            lists["s"] = [[f"v{i}-{k}"] for k in range(n_steps)]
        recs.append(encode_sequence_example({"id": i, "w": float(i) / 4}, lists))
    recs.append(encode_example({"id": 99, "w": 1.0}))  # an Example: no feature lists
    return recs


def test_batch_decoder_matches_tf():
    recs = _batch_records()
    b = decode_sequence_examples(recs)
    assert b.num_rows == len(recs)
    ctx, fl, lens = tf.io.parse_sequence_example(
        recs,
        context_features={"id": tf.io.FixedLenFeature([], tf.int64),
                          "w": tf.io.FixedLenFeature([], tf.float32)},
        sequence_features={"tok": tf.io.RaggedFeature(tf.int64),
                           "f": tf.io.RaggedFeature(tf.float32),
                           "s": tf.io.RaggedFeature(tf.string)},
    )
    assert b.context["id"].values.tolist() == ctx["id"].numpy().tolist()
    assert b.context["w"].values.tolist() == ctx["w"].numpy().tolist()
    for name in ("tok", "f", "s"):
        col = b.feature_lists[name]
        theirs = fl[name]  # ragged [sequence, step, value]
        assert col.values.tolist() == theirs.flat_values.numpy().tolist()
        assert col.step_lengths.tolist() == theirs.row_lengths().numpy().tolist()
        assert col.value_lengths.tolist() == theirs.values.row_lengths().numpy().tolist()
        assert col.row_lengths.tolist() == [
            len(theirs[i].flat_values) for i in range(len(recs))
        ]
        for i in (0, 7, len(recs) - 1):
            assert [s.tolist() for s in col.sequence(i)] == theirs[i].to_list()
    s = b.feature_lists["s"]
    assert s.present.tolist() == [bool(i % 3) for i in range(50)] + [False]


def test_batch_decoder_mixed_kind_and_bad_record():
    a = encode_sequence_example({}, {"x": [[1]]})
    b = encode_sequence_example({}, {"x": [[1.5]]})
    with pytest.raises(ExampleDecodeError) as ei:
        decode_sequence_examples([a, b], path="f", first_index=10)
    assert (ei.value.reason, ei.value.record) == ("mixed_kind", 11)
    with pytest.raises(ExampleDecodeError) as ei:
        decode_sequence_examples([a, b"\x12\x05ab"], path="f")
    assert (ei.value.reason, ei.value.record) == ("not_a_sequence_example", 1)
    assert "f, record 1" in str(ei.value)


def test_encode_rejects_a_feature_list_that_is_not_a_list_of_steps():
    with pytest.raises(ConfigError, match="list of steps"):
        encode_sequence_example({}, {"x": 5})  # type: ignore[dict-item]


def test_payload_kinds_and_the_ambiguity_rule():
    ex = encode_example({"a": 1})
    seq = encode_sequence_example({"a": 1}, {"b": [[1]]})
    assert payload_kind(ex) == "example"
    assert payload_kind(seq) == "sequence_example"
    # no field 2: an Example (also a SequenceExample without feature lists)
    assert payload_kind(b"") == "example"
    assert payload_kind(encode_sequence_example({"a": 1})) == "example"
    assert payload_kind(encode_sequence_example(None, {})) == "sequence_example"
    # other bytes: a serialized tensor, an image header, a field other than 1 / 2, damage
    tensor = tf.io.serialize_tensor(tf.constant([1.0, 2.0])).numpy()
    assert payload_kind(tensor) == "other"
    assert payload_kind(b"\x89PNG\r\n\x1a\n") == "other"
    assert payload_kind(b"\x18\x01") == "other"  # field 3: protobuf would accept it
    assert payload_kind(ex[:-1]) == "other"  # cut short
    assert payload_kind(b"\x0a\x02\xff\xff") == "other"  # field 1, but not Features
    assert payload_kind(seq, check=False) == "sequence_example"
    # what TF's reader silently does with a SequenceExample read as an Example
    assert list(decode_example(seq)) == ["a"]


def _raw_equal(a, b):
    """Compare two decoder results (lists, contexts, err_record, err_reason)."""
    assert a[2:] == b[2:]
    assert a[1] == b[1]
    if a[0] is None:
        assert b[0] is None
        return
    assert a[0].keys() == b[0].keys()
    for name in a[0]:
        assert tuple(a[0][name]) == tuple(b[0][name]), name


@pytest.mark.parametrize("native", [None, False])
def test_compiled_and_protobuf_decoders_agree(native):
    # native=None is the compiled decoder when it is built (the pure-Python leg of
    # dev.py test runs this with the extension off: both are then protobuf's)
    from featurepipe.example import _sequence

    recs = _batch_records()
    recs += [
        b"",  # empty: no context, no lists
        encode_sequence_example(None, {"e": []}),  # a list with no steps
        encode_sequence_example({}, {"k": [Feature(None, np.empty(0)), [1.5]]}),
        encode_sequence_example(
            {"n": [1.5]}, {"b": [[b"\xff"], Feature("bytes", np.empty(0, object))]}
        ),
    ]
    got = decode_sequence_examples(recs, native=native)
    ref = decode_sequence_examples(recs, native=False)
    assert got.context.columns.keys() == ref.context.columns.keys()
    for name, col in got.feature_lists.items():
        other = ref.feature_lists[name]
        assert col.kind == other.kind
        for field in ("values", "value_lengths", "step_lengths", "present"):
            assert getattr(col, field).tolist() == getattr(other, field).tolist(), (name, field)
    if _sequence._decode_feature_lists_native is not None:
        py = _sequence._decode_feature_lists_py
        c = _sequence._decode_feature_lists_native
        _raw_equal(c(recs), py(recs))
        _raw_equal(c([]), py([]))
        bad = [recs[0], encode_sequence_example({}, {"tok": [[1.5]]})]
        assert c(bad)[2:] == py(bad)[2:] == (1, "mixed_kind")
        cut = [recs[0], recs[1][:-1]]
        assert py(cut)[2:] == (1, "not_a_sequence_example")
        assert c(cut)[2] == 1 and c(cut)[3] in ("not_a_sequence_example", "slow_path")
        # an unusual encoding (field 2 twice): protobuf decides, and merges
        twice = encode_sequence_example({}, {"a": [[1]]}) + encode_sequence_example(
            None, {"b": [[2]]}
        )
        assert c([twice])[3] == "slow_path"
        merged = decode_sequence_examples([twice])
        assert sorted(merged.feature_lists) == ["a", "b"]


def test_compiled_decoder_on_damaged_bytes_agrees_with_protobuf():
    # cut and flipped bytes of valid records: the compiled decoder either decodes what
    # protobuf decodes (the same tuples), leaves it to protobuf (slow_path), or rejects
    # what protobuf rejects too; never reads out of bounds (run under the sanitizer-free
    # build, a crash would show here)
    from featurepipe.example import _sequence

    c = _sequence._decode_feature_lists_native
    py = _sequence._decode_feature_lists_py
    rng = np.random.default_rng(7)
    base = _batch_records()[:20]
    for _ in range(3000):
        rec = bytearray(base[int(rng.integers(len(base)))])
        if rng.random() < 0.5:
            del rec[int(rng.integers(len(rec) + 1)) :]
        for _ in range(int(rng.integers(1, 4))):
            if rec:
                rec[int(rng.integers(len(rec)))] = int(rng.integers(256))
        recs = [bytes(rec)]
        ref = py(recs)
        if c is None:
            continue
        got = c(recs)
        if got[3] == "slow_path":
            continue
        if got[3] == "not_a_sequence_example":
            assert ref[3] == "not_a_sequence_example", rec.hex()
            continue
        if ref[3] == "not_a_sequence_example":
            # the compiled decoder leaves the context field to decode_examples, which
            # finds the damage: the batch decoder still refuses the record
            assert got[1] is not None
            with pytest.raises(ExampleDecodeError) as ei:
                decode_sequence_examples(recs, first_index=5)
            assert (ei.value.reason, ei.value.record) == ("not_a_sequence_example", 5)
            continue
        _raw_equal(got, ref)
