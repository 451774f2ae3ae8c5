"""The generated protos match protos/ and are wire-compatible with TensorFlow's."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_generated_code_matches_sources():
    pytest.importorskip("grpc_tools")
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr


def test_proto_package_is_not_tensorflow():
    from featurepipe.example.proto import example_pb2

    assert example_pb2.Example.DESCRIPTOR.full_name == "featurepipe.proto.Example"
    for src in (ROOT / "protos").rglob("*.proto"):
        assert "package tensorflow" not in src.read_text()


def test_field_numbers_match_tensorflow():
    from featurepipe.example.proto import example_pb2, feature_pb2

    f = feature_pb2.Feature.DESCRIPTOR.fields_by_name
    assert (f["bytes_list"].number, f["float_list"].number, f["int64_list"].number) == (1, 2, 3)
    assert example_pb2.Example.DESCRIPTOR.fields_by_name["features"].number == 1
    assert feature_pb2.FloatList.DESCRIPTOR.fields_by_name["value"].number == 1
