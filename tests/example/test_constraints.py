"""Schema constraints (featurepipe.example.FeatureConstraints) and their JSON form."""

from __future__ import annotations

import json

import pytest

from featurepipe.errors import ConfigError
from featurepipe.example import FeatureConstraints, FeatureSchema, Schema

# The keys a feature of the schema JSON had before constraints existed: a
# featurepipe that predates them rejects any other key inside a feature.
OLD_FEATURE_KEYS = {
    "name", "kind", "shape", "required", "default", "value_separator", "missing_values",
}


def make_schema() -> Schema:
    feats = (
        FeatureSchema("city", "bytes", shape=()),
        FeatureSchema("n", "int64", shape=()),
        FeatureSchema("x", "float", required=False),
    )
    cons = (
        FeatureConstraints(
            "city", values=("Oslo", b"\xff"), max_fraction_outside=0.1, skew_threshold=0.2
        ),
        FeatureConstraints("n", min=0, max=9, min_fraction=0.5, min_count=3, drift_threshold=0.1),
        FeatureConstraints("x", min_values=1, max_values=4),
    )
    return Schema(feats, cons)


def test_round_trip_and_layout() -> None:
    s = make_schema()
    doc = json.loads(s.to_json())
    assert Schema.from_json(s.to_json()) == s
    assert doc["format_version"] == 1
    for f in doc["features"]:
        assert set(f) <= OLD_FEATURE_KEYS
    assert doc["constraints"] == {
        "city": {
            "domain": {"values": ["Oslo", {"base64": "/w=="}], "max_fraction_outside": 0.1},
            "skew_threshold": 0.2,
        },
        "n": {
            "presence": {"min_fraction": 0.5, "min_count": 3},
            "domain": {"min": 0, "max": 9},
            "drift_threshold": 0.1,
        },
        "x": {"value_count": {"min": 1, "max": 4}},
    }
    assert s.constraints_for("city").values == (b"Oslo", b"\xff")  # type: ignore[union-attr]


def test_old_schema_reads_and_writes_unchanged() -> None:
    s = Schema((FeatureSchema("a", "int64", shape=()),))
    assert "constraints" not in s.to_dict()
    assert s.constraints == ()
    # empty constraints are dropped
    assert Schema(s.features, (FeatureConstraints("a"),)).constraints == ()


def test_older_reader_ignores_constraints() -> None:
    # What a featurepipe without constraints does: read format_version and the
    # features list, ignore other top-level keys.
    doc = json.loads(make_schema().to_json())
    old = {k: doc[k] for k in ("format_version", "featurepipe_version", "features")}
    assert Schema.from_dict(old) == Schema(make_schema().features)


def test_with_constraints_replaces() -> None:
    s = make_schema().with_constraints([FeatureConstraints("n", max=5)])
    assert s.constraints_for("n") == FeatureConstraints("n", max=5)
    assert s.constraints_for("city") is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_fraction": 1.5}, "min_fraction"),
        ({"min_count": -1}, "min_count"),
        ({"min_values": 2, "max_values": 1}, "larger than"),
        ({"min": 3, "max": 1}, "larger than"),
        ({"max_fraction_outside": 0.1}, "needs domain"),
        ({"values": (b"a",), "min": 0}, "not both"),
        ({"skew_threshold": -0.1}, "skew_threshold"),
        ({"values": (1,)}, "str or bytes"),
    ],
)
def test_bad_constraints(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FeatureConstraints("f", **kwargs)  # type: ignore[arg-type]


def test_constraints_must_fit_the_schema() -> None:
    feats = (FeatureSchema("c", "bytes"), FeatureSchema("n", "int64"))
    with pytest.raises(ConfigError, match="not in the schema"):
        Schema(feats, (FeatureConstraints("zz", min=1),))
    with pytest.raises(ConfigError, match="for bytes features"):
        Schema(feats, (FeatureConstraints("n", values=(b"a",)),))
    with pytest.raises(ConfigError, match="is bytes"):
        Schema(feats, (FeatureConstraints("c", min=0),))
    with pytest.raises(ConfigError, match="twice"):
        Schema(feats, (FeatureConstraints("n", min=0), FeatureConstraints("n", max=1)))


def test_bad_json() -> None:
    base = {"format_version": 1, "features": [{"name": "c", "kind": "bytes"}]}
    with pytest.raises(ConfigError, match="Unknown key"):
        Schema.from_dict({**base, "constraints": {"c": {"domian": {}}}})
    with pytest.raises(ConfigError, match="Unknown key"):
        Schema.from_dict({**base, "constraints": {"c": {"domain": {"vals": []}}}})
    with pytest.raises(ConfigError, match="must be an object"):
        Schema.from_dict({**base, "constraints": ["c"]})
    with pytest.raises(ConfigError, match="base64"):
        Schema.from_dict({**base, "constraints": {"c": {"domain": {"values": [3]}}}})
