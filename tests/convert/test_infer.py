"""Tests for featurepipe.convert._infer: a schema from every raw row."""

from __future__ import annotations

from featurepipe.convert._encode import ConvertOptions
from featurepipe.convert._infer import RawSchemaInferrer
from featurepipe.convert._sources import RowBatch


def test_inference_counts_every_row_and_promotes_kinds() -> None:
    inf = RawSchemaInferrer(ConvertOptions(missing_values=("", "NA"), list_columns=("tags",)))
    first = {
        "i": ["1"] * 5000,
        "f": ["1"] * 5000,
        "s": ["1"] * 5000,
        "m": ["1"] * 5000,
        "tags": ["a|b"] * 5000,
    }
    inf.add_batch(RowBatch("t.csv", "csv", "line", list(range(5000)), first, []))
    # One float and one word, far into the data, must still change the kinds.
    inf.add_batch(
        RowBatch(
            "t.csv",
            "csv",
            "line",
            [9000],
            {"i": ["2"], "f": ["2.5"], "s": ["word"], "m": ["NA"], "tags": ["c"]},
            [],
        )
    )
    got = {f.name: (f.kind, f.required, f.shape, f.value_separator) for f in inf.extract()}
    assert got == {
        "i": ("int64", True, (), None),
        "f": ("float", True, (), None),
        "s": ("bytes", True, (), None),
        "m": ("int64", False, (), None),
        "tags": ("bytes", True, None, "|"),
    }


def test_inference_merge_equals_single_pass_and_json_lists() -> None:
    rows = [{"a": 1, "b": [1, 2]}, {"a": 2.5, "b": None}, {"a": 3, "b": [3]}, {"b": [1.5]}]
    batches = [
        RowBatch("j", "jsonl", "line", [i + 1], {k: [r.get(k)] for k in ("a", "b")}, [])
        for i, r in enumerate(rows)
    ]
    whole = RawSchemaInferrer()
    parts = [RawSchemaInferrer(), RawSchemaInferrer()]
    for i, b in enumerate(batches):
        whole.add_batch(b)
        parts[i % 2].add_batch(b)
    merged = parts[0].merge(parts[1])
    assert merged.extract() == whole.extract()
    got = {f.name: (f.kind, f.required, f.shape) for f in whole.extract()}
    assert got == {"a": ("float", False, ()), "b": ("float", False, None)}


def test_integers_outside_int64_make_a_number_column_in_any_order() -> None:
    big = "9" * 20
    for order in (["1.5", big], [big, "1.5"], [big]):
        inf = RawSchemaInferrer()
        for i, v in enumerate(order):  # one batch per value: the order of batches must not matter
            inf.add_batch(RowBatch("t.csv", "csv", "line", [i + 2], {"x": [v]}, []))
        assert inf.extract()["x"].kind == "float", order
    inf = RawSchemaInferrer()
    inf.add_batch(RowBatch("t.jsonl", "jsonl", "line", [1, 2], {"x": [2**70, 1]}, []))
    assert inf.extract()["x"].kind == "float"
