"""The stub ``featurepipe/_speedups.pyi`` says what the built extension is.

The stub is parsed with :mod:`ast` (it is never imported) and compared with
the compiled module: the set of names, every function's and method's
parameters (names, count, positional-only or not, defaults) against
:func:`inspect.signature` (each C function carries a ``__text_signature__``),
and the tuple layouts the stub documents against what the C code accepts and
returns. Skipped when the extension is not built.
"""

from __future__ import annotations

import ast
import inspect
import pathlib
import struct
from typing import Any

import pytest

sp = pytest.importorskip("featurepipe._speedups", reason="C extension not built")

STUB = pathlib.Path(__file__).resolve().parents[1] / "featurepipe" / "_speedups.pyi"
TREE = ast.parse(STUB.read_text(encoding="utf-8"))


def _is_alias(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.AnnAssign)
        and isinstance(node.annotation, ast.Name)
        and node.annotation.id == "TypeAlias"
    )


def _stub_names() -> set[str]:
    names: set[str] = set()
    for node in TREE.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and not _is_alias(node):
            assert isinstance(node.target, ast.Name)
            names.add(node.target.id)
    return names


def _aliases() -> dict[str, ast.expr]:
    out: dict[str, ast.expr] = {}
    for node in TREE.body:
        if _is_alias(node):
            assert isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            assert node.value is not None
            out[node.target.id] = node.value
    return out


def _tuple_lengths(expr: ast.expr) -> list[int]:
    """Item counts of ``tuple[...]`` (or a union of them) in an alias."""
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        return _tuple_lengths(expr.left) + _tuple_lengths(expr.right)
    assert isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name)
    assert expr.value.id == "tuple", ast.unparse(expr)
    items = expr.slice.elts if isinstance(expr.slice, ast.Tuple) else [expr.slice]
    return [len(items)]


def _alias_length(name: str) -> int:
    (n,) = _tuple_lengths(_aliases()[name])
    return n


def _functions(body: list[ast.stmt]) -> dict[str, list[ast.FunctionDef]]:
    """Every def by name (overloads together), properties left out."""
    out: dict[str, list[ast.FunctionDef]] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef):
            decorators = {d.id for d in node.decorator_list if isinstance(d, ast.Name)}
            if "property" not in decorators:
                out.setdefault(node.name, []).append(node)
    return out


def _stub_params(fn: ast.FunctionDef, *, method: bool) -> list[tuple[str, str, bool]]:
    """(name, kind, has default) per parameter, as inspect.Parameter names kinds."""
    a = fn.args
    positional = [(p, "POSITIONAL_ONLY") for p in a.posonlyargs]
    positional += [(p, "POSITIONAL_OR_KEYWORD") for p in a.args]
    first_default = len(positional) - len(a.defaults)
    out = [(p.arg, kind, i >= first_default) for i, (p, kind) in enumerate(positional)]
    if a.vararg or a.kwarg:
        raise AssertionError(f"{fn.name}: the C functions take no *args / **kwargs")
    out += [
        (p.arg, "KEYWORD_ONLY", d is not None)
        for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)
    ]
    return out[1:] if method else out


def _c_params(obj: Any) -> list[tuple[str, str, bool]]:
    sig = inspect.signature(obj)
    return [
        (p.name, p.kind.name, p.default is not inspect.Parameter.empty)
        for p in sig.parameters.values()
    ]


def _compare(name: str, defs: list[ast.FunctionDef], obj: Any, *, method: bool) -> None:
    want = _c_params(obj)
    for fn in defs:
        got = _stub_params(fn, method=method)
        if len(defs) > 1:  # overloads: defaults may differ between them
            assert [g[:2] for g in got] == [w[:2] for w in want], (name, got, want)
        else:
            assert got == want, (name, got, want)


# --------------------------------------------------------------------------- names


def test_stub_and_module_have_the_same_names() -> None:
    module = {n for n in dir(sp) if not (n.startswith("__") and n.endswith("__"))}
    assert _stub_names() == module


def test_every_function_has_a_text_signature() -> None:
    for name in _stub_names():
        obj = getattr(sp, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__text_signature__, name
            inspect.signature(obj)  # parses


# --------------------------------------------------------------------------- parameters


def test_function_parameters_match_the_stub() -> None:
    functions = _functions(TREE.body)
    assert functions, "no functions in the stub"
    for name, defs in functions.items():
        _compare(name, defs, getattr(sp, name), method=False)


def test_columns_runner_matches_the_stub() -> None:
    (cls,) = [n for n in TREE.body if isinstance(n, ast.ClassDef) and n.name == "ColumnsRunner"]
    methods = _functions(cls.body)
    init = methods.pop("__init__")
    _compare("ColumnsRunner", init, sp.ColumnsRunner, method=True)  # the type's signature
    assert set(methods) == {
        n for n, v in vars(sp.ColumnsRunner).items() if callable(v) and not n.startswith("_")
    }
    for name, defs in methods.items():
        _compare(f"ColumnsRunner.{name}", defs, getattr(sp.ColumnsRunner, name), method=False)
    properties = {
        n.name
        for n in cls.body
        if isinstance(n, ast.FunctionDef)
        and any(isinstance(d, ast.Name) and d.id == "property" for d in n.decorator_list)
    }
    assert properties == {
        n for n, v in vars(sp.ColumnsRunner).items() if inspect.isgetsetdescriptor(v)
    }


def test_the_check_catches_a_stale_stub() -> None:
    """The comparison fails on the stub's old mistakes (a guard for the guard)."""
    old = ast.parse("def csv_cut(buf, start, delimiter, quotechar, max_records, at_eof): ...")
    fn = old.body[0]
    assert isinstance(fn, ast.FunctionDef)
    with pytest.raises(AssertionError):
        _compare("csv_cut", [fn], sp.csv_cut, method=False)


# --------------------------------------------------------------------------- tuple layouts


def _error(fn: Any, *args: Any) -> str:
    with pytest.raises((TypeError, ValueError)) as info:
        fn(*args)
    return str(info.value)


def test_csv_plan_item_layout() -> None:
    lengths = sorted(_tuple_lengths(_aliases()["_CsvPlanItem"]))
    assert lengths == [6, 8]
    key = b"\x0a\x01a\x12"
    full = (0, 2, False, key, None, (b"",), None, -1)
    assert len(full) == lengths[-1]
    # every documented length is accepted, as the Python side builds it
    for n in lengths:
        records, positions, deferred = sp.csv_convert(b"1.5\n", ",", '"', 1 << 20, 1, [full[:n]], 1)
        assert len(records) == 1 and positions == [1] and deferred == []
    # a wrong length is refused with an error that names the layout's lengths
    for bad in (lengths[0] - 1, lengths[-1] + 1):
        item = (*full, 0)[:bad]
        message = _error(sp.csv_convert, b"1\n", ",", '"', 1 << 20, 1, [item], 1)
        assert f"{lengths[0]} to {lengths[-1]} items" in message, message
        assert f"a tuple of {bad} items" in message, message


@pytest.mark.parametrize(
    ("alias", "position", "what"),
    [
        ("_ColumnsFeature", 0, "feature"),
        ("_ColumnsOp", 1, "op"),
        ("_ColumnsVocabulary", 2, "vocabulary"),
    ],
)
def test_columns_compile_item_layouts(alias: str, position: int, what: str) -> None:
    n = _alias_length(alias)
    parts: list[list[Any]] = [[], [], []]
    parts[position] = [(0,) * (n - 1)]
    message = _error(sp.columns_compile, *parts)
    assert f"columns_compile {what}() takes exactly {n} arguments" in message, message


def _example(**features: list[int]) -> bytes:
    from featurepipe.example.proto import example_pb2

    ex = example_pb2.Example()
    for k, v in features.items():
        ex.features.feature[k].int64_list.value.extend(v)
    return ex.SerializeToString()


def test_decode_columns_column_layout() -> None:
    columns, index, reason = sp.decode_columns([_example(a=[1, 2]), _example(a=[3])])
    assert columns is not None and (index, reason) == (-1, "")
    assert len(columns["a"]) == _alias_length("_DecodedColumn")


def test_csv_infer_layouts() -> None:
    rows, counts, unsure, deferred = sp.csv_infer(
        b"1,x\n1e5_0,y\n\xff,z\n", ",", '"', 1 << 20, 2, (b"",), b"\x00\x00", 1
    )
    assert rows == 2
    assert [len(c) for c in counts] == [_alias_length("_CsvCounts")] * 2
    assert unsure and {len(u) for u in unsure} == {_alias_length("_CsvUnsure")}
    assert deferred and {len(d) for d in deferred} == {_alias_length("_CsvSpan")}


@pytest.mark.skipif(not hasattr(sp, "ColumnsRunner"), reason="no ColumnsRunner on this platform")
def test_columns_runner_unit_layouts() -> None:
    assert _alias_length("_RunnerFrames") == 4 and _alias_length("_RunnerGather") == 4
    plan = sp.columns_compile(
        [(b"a", 3, 1, None)], [(7, 0, False, 1, 0, 0.0, 0.0, (), 0, -1, 0, None, 0, ())], []
    )
    runner = sp.ColumnsRunner(plan, 1)
    try:
        records = [_example(a=[5]), _example(a=[6])]
        frames = sp.frame_records(records)
        starts, _, _ = sp.scan_frames(frames, 0, 1 << 20)
        runner.submit([(frames, starts, 0, 2)])
        out = runner.take()
        assert out is not None
        buffers, widths = out
        assert widths == (1,)
        assert struct.unpack("<2q", bytes(memoryview(buffers[0]))) == (5, 6)
        message = _error(runner.submit, [(frames, starts, 0)])
        assert "exactly 4" in message or "4 arguments" in message, message
    finally:
        runner.close()
