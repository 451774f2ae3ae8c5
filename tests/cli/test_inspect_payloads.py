"""``featurepipe inspect`` on TFRecord files whose payloads are not (all) tf.Example.

The files are written by TensorFlow itself (``tf.io.TFRecordWriter``), holding
SequenceExamples, raw bytes (serialized tensors, PNG images) and a mix with
Examples; what ``head`` and ``schema`` print is checked against
``tf.io.parse_sequence_example``.
"""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from featurepipe.cli.main import main

tf = pytest.importorskip("tensorflow")  # in requirements/lock.txt: CI fails if it is missing


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _seq(i: int) -> bytes:
    """A SequenceExample built and serialized by TensorFlow."""
    n_steps = i % 4 + 1
    f = tf.train.Feature
    context = tf.train.Features(feature={
        "id": f(int64_list=tf.train.Int64List(value=[i])),
        "lang": f(bytes_list=tf.train.BytesList(value=[b"en" if i % 2 else b"de"])),
    })
    lists = tf.train.FeatureLists(feature_list={
        "tok": tf.train.FeatureList(feature=[
            f(int64_list=tf.train.Int64List(value=list(range(i, i + k % 3 + 1))))
            for k in range(n_steps)
        ]),
        "dwell": tf.train.FeatureList(feature=[
            f(float_list=tf.train.FloatList(value=[0.5 * k])) for k in range(n_steps)
        ]),
    })
    return tf.train.SequenceExample(context=context, feature_lists=lists).SerializeToString()


def _example(i: int) -> bytes:
    f = tf.train.Feature
    return tf.train.Example(features=tf.train.Features(feature={
        "id": f(int64_list=tf.train.Int64List(value=[i])),
    })).SerializeToString()


def _raw(i: int) -> bytes:
    if i % 2:
        return tf.io.serialize_tensor(tf.constant([float(i), 2.0])).numpy()
    return tf.io.encode_png(tf.zeros([2, 2, 1], tf.uint8)).numpy()


def _write(path, payloads, compression=None):
    options = tf.io.TFRecordOptions(compression_type=compression) if compression else None
    with tf.io.TFRecordWriter(str(path), options) as w:
        for p in payloads:
            w.write(p)
    return str(path)


def _offsets(payloads):
    out, pos = [], 0
    for p in payloads:
        out.append(pos)
        pos += len(p) + 16
    return out


SEQ = [_seq(i) for i in range(6)]
RAW = [_raw(i) for i in range(5)]
MIX = [SEQ[0], _example(1), SEQ[2], _example(3)]


@pytest.fixture
def files(tmp_path):
    return {
        "seq": _write(tmp_path / "seq.tfrecord", SEQ),
        "seq_gz": _write(tmp_path / "seq.tfrecord.gz", SEQ, "GZIP"),
        "raw": _write(tmp_path / "raw.tfrecord", RAW),
        "mix": _write(tmp_path / "mix.tfrecord", MIX),
        "ex": _write(tmp_path / "ex.tfrecord", [_example(i) for i in range(3)]),
    }


def _verify(capsys, *argv):
    code, out, _ = run(capsys, "inspect", "verify", "--json", *argv)
    return code, json.loads(out)["files"]


def test_verify_ok_on_intact_files_with_kinds(capsys, files):
    code, got = _verify(capsys, files["seq"], files["seq_gz"], files["raw"], files["mix"])
    assert code == 0
    assert [(f["ok"], f["records"], f["payload"], f["payload_kinds"]) for f in got] == [
        (True, 6, "sequence_example", {"example": 0, "sequence_example": 6, "other": 0}),
        (True, 6, "sequence_example", {"example": 0, "sequence_example": 6, "other": 0}),
        (True, 5, "other", {"example": 0, "sequence_example": 0, "other": 5}),
        (True, 4, "mixed", {"example": 2, "sequence_example": 2, "other": 0}),
    ]
    code, out, _ = run(capsys, "inspect", "verify", files["raw"], files["mix"], files["ex"])
    assert code == 0
    assert out.splitlines() == [
        f"{files['raw']}: OK, 5 intact records: 5 other bytes",
        f"{files['mix']}: OK, 4 intact records: 2 Example, 2 SequenceExample",
        f"{files['ex']}: OK, 3 intact records",  # a file of Examples: the line of before
    ]


def test_verify_an_undecodable_record_in_a_file_of_one_kind(capsys, tmp_path):
    bad = b"\x12\x03\x0a\x01"  # field 2 that is cut short
    payloads = [*SEQ[:3], bad, *SEQ[3:]]
    p = _write(tmp_path / "bad-seq.tfrecord", payloads)
    code, got = _verify(capsys, p)
    assert code == 1
    (f,) = got
    assert (f["ok"], f["records"], f["payload"]) == (False, 6, "mixed")
    assert f["payload_kinds"] == {"example": 0, "sequence_example": 6, "other": 1}
    assert [(q["record"], q["offset"], q["reason"]) for q in f["problems"]] == [
        (3, _offsets(payloads)[3], "not_a_sequence_example")
    ]
    # Examples with one record of other bytes: a damaged file of Examples
    exs = [_example(i) for i in range(4)]
    p = _write(tmp_path / "bad-ex.tfrecord", [*exs[:1], RAW[0], *exs[1:]])
    code, got = _verify(capsys, p)
    assert code == 1
    assert [(q["record"], q["offset"], q["reason"]) for q in got[0]["problems"]] == [
        (1, len(exs[0]) + 16, "not_an_example")
    ]


def test_verify_frame_damage_in_a_file_of_sequence_examples(capsys, tmp_path):
    p = _write(tmp_path / "crc.tfrecord", SEQ)
    data = bytearray(open(p, "rb").read())
    off = _offsets(SEQ)[2]
    data[off + 12 + 3] ^= 1  # a payload byte of record 2: its data CRC fails
    open(p, "wb").write(bytes(data))
    code, got = _verify(capsys, p)
    assert code == 1
    assert [(q["record"], q["offset"], q["reason"]) for q in got[0]["problems"]] == [
        (2, off, "data_crc_mismatch")
    ]
    assert got[0]["payload_kinds"]["sequence_example"] == 5


def test_verify_payload_option(capsys, files):
    code, got = _verify(capsys, "--payload", "example", files["seq"], files["mix"])
    assert code == 1
    assert [q["record"] for q in got[0]["problems"]] == list(range(6))
    assert {q["reason"] for q in got[0]["problems"]} == {"not_an_example"}
    assert "--payload sequence_example" in got[0]["problems"][0]["detail"]
    assert [q["record"] for q in got[1]["problems"]] == [0, 2]
    code, got = _verify(capsys, "--payload", "sequence_example", files["mix"], files["raw"])
    assert code == 1
    assert got[0]["ok"] and not got[1]["ok"]  # Examples are SequenceExamples without lists
    # The PNGs fail; the serialized tensors (fields 1, 2, ... of a TensorProto) parse as
    # protobuf, unknown fields skipped, as they do for TF's parse_sequence_example: an
    # explicit --payload holds records to what TF's decoder accepts. payload_kind (and
    # the counts) still call them other bytes.
    assert [q["record"] for q in got[1]["problems"]] == [0, 2, 4]
    code, got = _verify(capsys, "--payload", "any", files["raw"], files["seq"])
    assert code == 0


def test_head_json_of_sequence_examples_matches_tf(capsys, files):
    code, out, _ = run(capsys, "inspect", "head", files["seq_gz"], "-n", "6", "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    ctx, fl, _ = tf.io.parse_sequence_example(
        SEQ,
        context_features={"id": tf.io.FixedLenFeature([], tf.int64),
                          "lang": tf.io.FixedLenFeature([], tf.string)},
        sequence_features={"tok": tf.io.RaggedFeature(tf.int64),
                           "dwell": tf.io.RaggedFeature(tf.float32)},
    )
    for i, obj in enumerate(lines):
        assert set(obj) == {"context", "feature_lists"}
        assert obj["context"] == {
            "id": {"int64": [int(ctx["id"][i])]},
            "lang": {"bytes": [ctx["lang"][i].numpy().decode()]},
        }
        assert [s["int64"] for s in obj["feature_lists"]["tok"]] == fl["tok"][i].to_list()
        assert [s["float"] for s in obj["feature_lists"]["dwell"]] == fl["dwell"][i].to_list()


def test_head_text_of_a_sequence_example(capsys, files):
    code, out, _ = run(capsys, "inspect", "head", files["seq"], "-n", "1")
    assert code == 0
    assert out.splitlines() == [
        f"record 0  (offset 0, {len(SEQ[0])} bytes, SequenceExample)",
        "  context:",
        "    id    int64  [0]",
        "    lang  bytes  ['de']",
        "  feature lists:",
        "    dwell  float  1 steps: [[0.0]]",
        "    tok    int64  1 steps: [[0]]",
    ]


def test_head_on_other_bytes_shows_a_preview(capsys, files):
    code, out, _ = run(capsys, "inspect", "head", files["raw"], "-n", "2", "--json")
    assert code == 0
    first, second = (json.loads(line)["other"] for line in out.splitlines())
    assert first["length"] == len(RAW[0]) and first["hex"] == RAW[0][:32].hex()
    assert first["truncated"] == (len(RAW[0]) > 32)
    assert second["hex"] == RAW[1][:32].hex()
    code, out, _ = run(capsys, "inspect", "head", files["raw"], "-n", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        f"record 0  (offset 0, {len(RAW[0])} bytes, other bytes: not a tf.Example or "
        "tf.SequenceExample)"
    )
    assert lines[1].startswith("  hex     89 50 4e 47")  # PNG's signature
    assert lines[2].startswith("  base64  iVBORw0KGgo")
    code, _, err = run(capsys, "inspect", "head", files["raw"], "--payload", "example")
    assert code == 1 and "record 0" in err and "not_an_example" in err


def test_schema_of_sequence_examples(capsys, files):
    code, out, _ = run(capsys, "inspect", "schema", "--json", files["seq"])
    assert code == 0
    d = json.loads(out)
    assert d["records"] == 6
    assert d["payload_kinds"] == {"example": 0, "sequence_example": 6, "other": 0}
    assert {f["name"]: f["kind"] for f in d["features"]} == {"id": "int64", "lang": "bytes"}
    _, fl, lens = tf.io.parse_sequence_example(
        SEQ,
        sequence_features={"tok": tf.io.RaggedFeature(tf.int64),
                           "dwell": tf.io.RaggedFeature(tf.float32)},
    )
    steps = fl["tok"].row_lengths().numpy()
    per_step = fl["tok"].values.row_lengths().numpy()
    assert d["feature_lists"]["tok"] == {
        "kind": "int64", "present": 6, "steps": [int(steps.min()), int(steps.max())],
        "values_per_step": [int(per_step.min()), int(per_step.max())],
    }
    assert d["feature_lists"]["dwell"]["kind"] == "float"
    code, out, _ = run(capsys, "inspect", "schema", files["seq"])
    assert out.splitlines()[0] == "6 records: 6 SequenceExample"
    assert "context:" in out and "feature lists:" in out
    assert "  tok           int64  100.0%   1..4   1..3" in out.splitlines()


def test_schema_of_a_mix_and_of_raw_bytes(capsys, files):
    code, out, _ = run(capsys, "inspect", "schema", "--json", files["mix"])
    d = json.loads(out)
    assert d["payload_kinds"] == {"example": 2, "sequence_example": 2, "other": 0}
    assert d["feature_lists"]["tok"]["present"] == 2
    code, out, _ = run(capsys, "inspect", "schema", files["raw"])
    assert code == 0
    assert out.splitlines()[:2] == [
        "5 records: 5 other bytes",
        "(5 records are neither tf.Example nor tf.SequenceExample and are left out of the "
        "schema)",
    ]


def test_compressed_problems_carry_the_compressed_offset(capsys, tmp_path):
    p = _write(tmp_path / "a.tfrecord", SEQ[:2])
    raw = open(p, "rb").read()
    first = zlib.compress(raw)
    z = tmp_path / "two-streams.tfrecord.zz"
    z.write_bytes(first + zlib.compress(raw))  # a second ZLIB stream after the first
    code, got = _verify(capsys, str(z))
    assert code == 1
    (problem,) = got[0]["problems"]
    assert problem["compressed_offset"] == len(first)
    assert problem["offset"] == len(raw)  # in the decompressed stream, as before
    code, out, _ = run(capsys, "inspect", "verify", str(z))
    assert f"compressed offset {len(first)}:" in out


def test_tf_reads_what_inspect_reports(files):
    # the same record count as TF's own reader, for each kind of file
    for name in ("seq", "raw", "mix"):
        n = sum(1 for _ in tf.data.TFRecordDataset(files[name]))
        assert n == {"seq": 6, "raw": 5, "mix": 4}[name]
    assert np.array_equal(
        tf.io.parse_tensor(RAW[1], tf.float32).numpy(), np.array([1.0, 2.0], np.float32)
    )


def test_stats_of_sequence_examples(capsys, files):
    code, out, _ = run(capsys, "inspect", "stats", "--json", files["mix"])
    assert code == 0
    d = json.loads(out)
    feats = {f["name"]: f for f in d["features"]}
    assert set(feats) == {"id", "lang", "feature_lists/tok", "feature_lists/dwell"}
    _, fl, _ = tf.io.parse_sequence_example(
        MIX, sequence_features={"tok": tf.io.RaggedFeature(tf.int64)}
    )
    tok = feats["feature_lists/tok"]
    per_sequence = [len(fl["tok"][i].flat_values) for i in range(len(MIX))]
    assert tok["num_missing"] == 2  # the two Examples have no feature lists
    assert tok["value_counts"]["max"] == max(per_sequence)
    assert tok["numeric"]["max"] == float(fl["tok"].flat_values.numpy().max())
    code, out, _ = run(capsys, "inspect", "stats", files["seq"])
    assert code == 0 and out.splitlines()[0] == "6 examples, 4 features"
