"""The package's import graph goes one way: lower layers never import higher ones.

Reads every module under ``featurepipe/`` with :mod:`ast` (nothing is imported),
collects every import of featurepipe code -- at module level, inside functions,
under ``TYPE_CHECKING`` and through ``importlib.import_module("featurepipe...")``
-- and checks three rules:

1. a package imports only the packages below it in :data:`ALLOWED`;
2. outside its package, nobody imports a private module (``featurepipe.tfrecord._index``):
   what crosses a package boundary is public in that package's ``__init__``;
3. no import cycle between modules, lazy imports included.

The layers (also in DESIGN.md and the CHANGELOG)::

    base (errors, _version, _native, _util) <- tfrecord <- example <- convert, columns
    columns <- analysis <- beam, keras <- cli
"""

from __future__ import annotations

import ast
import pathlib
from collections import defaultdict

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "featurepipe"

BASE = {"errors", "_version", "_native", "_util", "_speedups"}

# package -> the packages it may import (besides itself). "featurepipe" is the
# top-level facade (featurepipe/__init__.py), which re-exports the core.
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "tfrecord": {"base"},
    "example": {"base", "tfrecord"},
    "convert": {"base", "tfrecord", "example"},
    "columns": {"base", "tfrecord", "example"},
    "analysis": {"base", "tfrecord", "example", "columns"},
    "data": {"base", "tfrecord", "example", "columns"},
    "featurepipe": {"base", "tfrecord", "example", "columns"},
    "beam": {"base", "tfrecord", "example", "convert", "columns", "analysis"},
    "keras": {"base", "tfrecord", "example", "columns", "analysis", "data"},
    "torch": {"base", "tfrecord", "example", "columns", "data"},
    "grain": {"base", "tfrecord", "example", "columns", "data"},
    "migrate": {"base", "tfrecord", "example", "columns", "analysis", "keras"},
    "cli": {
        "base", "tfrecord", "example", "convert", "columns", "analysis", "data",
        "beam", "keras", "torch", "grain", "migrate", "featurepipe",
    },
}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "featurepipe"
    if parts[1] in BASE:
        return "base"
    return parts[1]


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    is_pkg = False  # relative imports: resolved against the containing package
    del is_pkg
    base = base[: len(base) - node.level + (1 if _is_package(module) else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_package(module: str) -> bool:
    return (ROOT / module.replace(".", "/") / "__init__.py").exists()


def _exists(module: str) -> bool:
    p = ROOT / module.replace(".", "/")
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def _imports(path: pathlib.Path, module: str | None = None) -> list[tuple[int, str]]:
    """(line, imported featurepipe module) for every import in the file."""
    module = module or _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            for a in node.names:  # `from featurepipe.x import y` may import module y
                sub = f"{target}.{a.name}"
                found.append((node.lineno, sub if _exists(sub) else target))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return [(line, m) for line, m in found if m == "featurepipe" or m.startswith("featurepipe.")]


def _graph() -> dict[str, list[tuple[int, str]]]:
    return {
        _module_name(p): _imports(p)
        for p in sorted(PACKAGE.rglob("*.py"))
        if "proto" not in p.relative_to(PACKAGE).parts  # generated code
    }


GRAPH = _graph()


def test_graph_is_not_empty() -> None:
    # the checks below would pass on nothing: make sure they see the real package
    assert "featurepipe.tfrecord" in GRAPH and "featurepipe.cli.main" in GRAPH
    assert sum(len(v) for v in GRAPH.values()) > 100
    assert set(ALLOWED) >= {_package_of(m) for m in GRAPH}


def _upward(graph: dict[str, list[tuple[int, str]]]) -> list[str]:
    wrong = []
    for module, imports in graph.items():
        pkg = _package_of(module)
        for line, target in imports:
            tpkg = _package_of(target)
            if tpkg != pkg and tpkg not in ALLOWED[pkg]:
                wrong.append(f"{module}:{line} ({pkg}) imports {target} ({tpkg})")
    return wrong


def test_imports_go_down_only() -> None:
    wrong = _upward(GRAPH)
    assert not wrong, "upward or sideways imports:\n" + "\n".join(wrong)


def test_the_rule_catches_an_upward_import_inside_a_function(tmp_path: pathlib.Path) -> None:
    # the same reading as GRAPH's, on a module that imports the Keras layer lazily
    source = tmp_path / "_probe_upward.py"
    source.write_text("def f():\n    from featurepipe.keras import train\n    return train\n")
    name = "featurepipe.tfrecord._probe_upward"
    graph = {name: _imports(source, name)}
    assert _upward(graph) == [
        "featurepipe.tfrecord._probe_upward:2 (tfrecord) imports featurepipe.keras (keras)"
    ]


def test_private_modules_stay_inside_their_package() -> None:
    wrong = []
    for module, imports in GRAPH.items():
        pkg = _package_of(module)
        for line, target in imports:
            parts = target.split(".")
            private = [p for p in parts[2:] if p.startswith("_")]
            if len(parts) > 2 and private and _package_of(target) != pkg:
                if _package_of(target) == "base":
                    continue
                wrong.append(f"{module}:{line} imports {target}")
    assert not wrong, "private modules used across packages:\n" + "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, imports in GRAPH.items():
        for _, target in imports:
            # importing a package runs its __init__: an edge to the package, not
            # to a sibling module re-exported there
            if target != module and target in GRAPH and not module.startswith(target + "."):
                edges[module].add(target)
    assert _cycles(edges) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ],
)
def test_cycle_finder_finds_cycles(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert _cycles(graph) == expected


def test_featurepipe_never_imports_pipelines() -> None:
    # `pipelines/` holds the repository's job entry points; it is not installed, so the
    # library must not reach for it (lazily or not).
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names = [node.args[0].value]
            wrong += [
                f"{_module_name(path)}:{node.lineno} imports {n}"
                for n in names
                if n == "pipelines" or n.startswith("pipelines.")
            ]
    assert not wrong, "featurepipe imports the repository's pipelines/:\n" + "\n".join(wrong)
