"""featurepipe.example._schema: value objects, JSON form, inference."""

from __future__ import annotations

import json

import pytest

from featurepipe.errors import ConfigError
from featurepipe.example._codec import decode_example, encode_example
from featurepipe.example._schema import FeatureSchema, Schema, SchemaInferrer, infer_schema


def test_json_round_trip_carries_format_version(tmp_path):
    s = Schema(
        (
            FeatureSchema("label", "int64", shape=()),
            FeatureSchema("x", "float", shape=(3,), required=False, default=[0, 0.5, 1]),
            FeatureSchema("tags", "bytes", value_separator="|", missing_values=("", "NA")),
        )
    )
    d = json.loads(s.to_json())
    assert d["format_version"] == 1 and "featurepipe_version" in d
    p = tmp_path / "schema.json"
    s.save(p)
    assert Schema.load(p) == s
    assert Schema.load(p).to_json() == s.to_json()  # save -> load -> save is stable


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "string"}, "Allowed values are.*Received: kind='string'"),
        ({"shape": (-1,)}, "Received: shape=\\(-1,\\)"),
        ({"default": 1}, "needs a fixed `shape`"),
        ({"shape": (2,), "default": [1]}, "must have 2 value"),
        ({"shape": (), "default": "a"}, "must be ints"),
    ],
)
def test_feature_schema_errors(kwargs, match):
    args = {"name": "x", "kind": "int64", **kwargs}
    with pytest.raises(ConfigError, match=match):
        FeatureSchema(**args)


def test_schema_json_errors():
    with pytest.raises(ConfigError, match="format_version"):
        Schema.from_json('{"features": []}')
    with pytest.raises(ConfigError, match="newer than this featurepipe"):
        Schema.from_json('{"format_version": 99, "features": []}')
    with pytest.raises(ConfigError, match="Unknown key"):
        Schema.from_json('{"format_version": 1, "features": [{"name": "a", "kind": "int64", '
                         '"dtype": "x"}]}')
    with pytest.raises(ConfigError, match="appears twice"):
        Schema((FeatureSchema("a", "int64"), FeatureSchema("a", "float")))
    with pytest.raises(KeyError, match="select from"):
        Schema((FeatureSchema("a", "int64"),))["b"]


def test_inference_shapes_and_presence():
    recs = [
        encode_example({"a": 1, "v": [1.0, 2.0], "var": [1], "opt": "x"}),
        encode_example({"a": 2, "v": [3.0, 4.0], "var": [1, 2, 3]}),
    ]
    s = infer_schema(recs)
    assert s["a"] == FeatureSchema("a", "int64", shape=())
    assert s["v"] == FeatureSchema("v", "float", shape=(2,))
    assert s["var"] == FeatureSchema("var", "int64", shape=None)
    assert s["opt"] == FeatureSchema("opt", "bytes", shape=(), required=False)


def test_inference_reports_kind_conflicts_instead_of_failing():
    recs = [encode_example({"x": 1})] * 3 + [encode_example({"x": 1.5})]
    inf = SchemaInferrer()
    from featurepipe.example._schema import add_records

    add_records(inf, recs)
    assert inf.conflicts == {"x": {"int64": 3, "float": 1}}
    assert inf.extract()["x"].kind == "int64"


def test_inferrers_merge_like_one():
    recs = [encode_example({"x": [1] * (i % 3 + 1), "y": "s"}) for i in range(10)]
    whole = SchemaInferrer()
    for r in recs:
        whole.add_example(decode_example(r))
    a, b = SchemaInferrer(), SchemaInferrer()
    for r in recs[:4]:
        a.add_example(decode_example(r))
    for r in recs[4:]:
        b.add_example(decode_example(r))
    assert a.merge(b).extract() == whole.extract()
    assert whole.feature_counts()["x"]["min_count"] == 1
    assert whole.feature_counts()["x"]["max_count"] == 3
