"""featurepipe.example._codec: encoding, decoding, columnar batches, JSON forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from featurepipe.errors import ConfigError, ExampleDecodeError
from featurepipe.example import _codec as ex_mod
from featurepipe.example._codec import (
    Feature,
    decode_example,
    decode_examples,
    encode_example,
    feature_to_json,
)
from featurepipe.example.proto import example_pb2
from featurepipe.tfrecord import read_records
from tests.conftest import TESTDATA
from tests.testdata.make_golden import golden_examples

NATIVE = [False] + ([True] if ex_mod._decode_columns_native is not None else [])


def _protobuf_bytes(d):
    ex = example_pb2.Example()
    ex.features.SetInParent()
    for name, (kind, vals) in d.items():
        f = ex.features.feature[name]
        if kind == "int64":
            f.int64_list.value.extend(vals)
            f.int64_list.SetInParent()
        elif kind == "float":
            f.float_list.value.extend(vals)
            f.float_list.SetInParent()
        elif kind == "bytes":
            f.bytes_list.value.extend(vals)
            f.bytes_list.SetInParent()
        else:
            f.SetInParent()
    return ex.SerializeToString(deterministic=True)


def _typed(d):
    out = {}
    for name, (kind, vals) in d.items():
        dtype = {"int64": np.int64, "float": np.float32, "bytes": object, None: np.float32}[kind]
        out[name] = Feature(kind, np.array(vals, dtype=dtype))
    return out


@pytest.mark.parametrize("d", golden_examples())
def test_encode_equals_protobuf_deterministic(d):
    assert encode_example(_typed(d)) == _protobuf_bytes(d)


def test_encode_infers_kinds_from_python_values():
    data = encode_example(
        {"i": 3, "f": 1.5, "s": "é", "b": b"\x00", "il": [1, 2], "fl": [1, 2.5], "n": None}
    )
    got = decode_example(data)
    assert {k: v.kind for k, v in got.items()} == {
        "b": "bytes", "f": "float", "fl": "float", "i": "int64", "il": "int64", "s": "bytes"
    }
    assert got["s"].values.tolist() == ["é".encode()]
    assert got["fl"].values.tolist() == [1.0, 2.5]


def test_encode_numpy_arrays():
    got = decode_example(
        encode_example({"u8": np.arange(3, dtype=np.uint8), "f64": np.array([[0.25, 2]]),
                        "s": np.array(["a", "bc"])})
    )
    assert got["u8"].kind == "int64" and got["u8"].values.tolist() == [0, 1, 2]
    assert got["f64"].values.dtype == np.float32 and got["f64"].values.tolist() == [0.25, 2.0]
    assert got["s"].values.tolist() == [b"a", b"bc"]


def test_encode_errors_say_what_to_do():
    with pytest.raises(ConfigError, match="empty list has no kind"):
        encode_example({"x": []})
    with pytest.raises(ConfigError, match="does not fit in int64"):
        encode_example({"x": 2**63})
    with pytest.raises(ConfigError, match="Received: \\['int', 'str'\\]"):
        encode_example({"x": [1, "a"]})
    with pytest.raises(ConfigError, match="unsupported value type dict"):
        encode_example({"x": {}})


def test_golden_file_decodes_exactly():
    expected = golden_examples()
    records = list(read_records(TESTDATA / "golden.tfrecord"))
    assert len(records) == len(expected)
    for data, want in zip(records, expected, strict=True):
        got = decode_example(data)
        assert sorted(got) == sorted(want)
        for name, (kind, vals) in want.items():
            assert got[name].kind == kind, name
            if kind == "float":
                np.testing.assert_array_equal(got[name].values, np.array(vals, np.float32))
                assert [math.copysign(1, v) for v in got[name].values] == [
                    math.copysign(1, v) for v in np.array(vals, np.float32)
                ]
            elif kind is not None:
                assert got[name].values.tolist() == vals


@pytest.mark.parametrize("native", NATIVE)
def test_decode_examples_columns(native):
    records = list(read_records(TESTDATA / "golden.tfrecord"))
    batch = decode_examples(records, native=native)
    assert batch.num_rows == 4
    label = batch["label"]
    assert label.values.tolist() == [1, 0]
    assert label.row_lengths.tolist() == [1, 1, 0, 0]
    assert label.present.tolist() == [True, True, False, False]
    i1 = batch["I1"]
    assert i1.values.tolist() == [0, -1, 2**53 + 1, -(2**63), 2**63 - 1]
    empty = batch["empty_int"]
    assert (empty.kind, empty.present.tolist()) == ("int64", [False, True, False, False])
    kindless = batch["kindless"]
    assert kindless.kind is None
    assert kindless.kindless.tolist() == [False, True, False, False]
    assert kindless.present.tolist() == [False] * 4
    assert batch["C1"].row(0).tolist() == [b"68fd1e64", "unicodé ☃".encode(), b""]
    assert batch["big"].row_splits.tolist() == [0, 0, 0, 0, 1]


def test_native_and_python_decoders_agree():
    if ex_mod._decode_columns_native is None:
        pytest.skip("featurepipe._speedups is not built")
    records = list(read_records(TESTDATA / "golden.tfrecord")) * 3
    a = decode_examples(records, native=True)
    b = decode_examples(records, native=False)
    assert a.columns.keys() == b.columns.keys()
    for name in a.columns:
        ca, cb = a[name], b[name]
        assert ca.kind == cb.kind
        np.testing.assert_array_equal(ca.values, cb.values)
        np.testing.assert_array_equal(ca.row_lengths, cb.row_lengths)
        np.testing.assert_array_equal(ca.present, cb.present)
        np.testing.assert_array_equal(ca.kindless, cb.kindless)


@pytest.mark.parametrize("native", NATIVE)
def test_decode_errors_name_the_record_and_never_echo_payload(native):
    good = encode_example({"x": 1})
    secret = b"\x0a\xff\xff\xff\xff\x0fSECRET-PAYLOAD"
    with pytest.raises(ExampleDecodeError, match="record 11") as ei:
        decode_examples([good, secret], path="f.tfrecord", first_index=10, native=native)
    assert ei.value.reason == "not_an_example"
    assert "SECRET" not in str(ei.value)
    with pytest.raises(ExampleDecodeError, match="mixed_kind") as ei:
        decode_examples([good, encode_example({"x": 1.0})], native=native)
    assert ei.value.record == 1


def test_feature_to_json_contract():
    d = decode_example(
        encode_example(
            {
                "i": [2**63 - 1, -(2**63)],
                "f": [float("nan"), float("inf"), float("-inf"), 0.1],
                "b": [b"ok", b"\xff"],
                "none": Feature(None, np.array([])),
            }
        )
    )
    assert feature_to_json(d["i"]) == {"int64": [2**63 - 1, -(2**63)]}
    assert feature_to_json(d["f"]) == {"float": ["NaN", "Infinity", "-Infinity", 0.1]}
    assert feature_to_json(d["b"]) == {"bytes": ["ok", {"base64": "/w=="}]}
    assert feature_to_json(d["none"]) == {"none": []}
