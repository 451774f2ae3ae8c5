"""Dispatch: ``python -m bench NAME [ARGS...]`` runs ``bench/NAME/run.py``'s ``main(ARGS)``.

Besides the benchmarks found as ``bench/<name>/run.py``, three tools are built in:

* ``python -m bench peers [NAME...]`` -- set up the peer venvs (``bench.peers``);
* ``python -m bench datagen ...`` -- make cached data files (``bench.datagen``);
* ``python -m bench all [ARGS...]`` -- every benchmark in turn, each given ARGS.

``python3 dev.py bench NAME ...`` calls this inside the project venv.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
TOOLS = {"peers": "bench.peers", "datagen": "bench.datagen"}


def discover() -> dict[str, Path]:
    """Benchmarks: the sub-folders of bench/ that hold a run.py, by name."""
    return {p.parent.name: p for p in sorted(BENCH_DIR.glob("*/run.py"))
            if not p.parent.name.startswith((".", "_")) and p.parent.name.isidentifier()}


def _summary(module_name: str) -> str:
    try:
        doc = importlib.import_module(module_name).__doc__ or ""
    except ImportError as e:
        return f"(cannot import: {e})"
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _entry(module_name: str) -> Callable[[list[str]], int]:
    module = importlib.import_module(module_name)
    fn = getattr(module, "main", None)
    if fn is None:
        raise SystemExit(f"{module_name} has no main(argv) function; add one to run it here")
    return fn  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    """Runs the named benchmark or tool; prints the list for ``--list`` or no name."""
    args = sys.argv[1:] if argv is None else argv
    benches = discover()
    if not args or args[0] in ("-h", "--help", "--list", "list"):
        print(__doc__)
        print("benchmarks:")
        for name in benches:
            print(f"  {name:10s} {_summary(f'bench.{name}.run')}")
        print("tools:")
        for name, mod in TOOLS.items():
            print(f"  {name:10s} {_summary(mod)}")
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name == "all":
        rc = 0
        for bench in benches:
            print(f"=== {bench} ===", flush=True)
            rc |= _entry(f"bench.{bench}.run")(rest)
        return rc
    if name in TOOLS:
        return _entry(TOOLS[name])(rest)
    if name not in benches:
        print(f"unknown benchmark {name!r}; expected one of {sorted(benches) + sorted(TOOLS)} "
              "(see python -m bench --list)", file=sys.stderr)
        return 2
    return _entry(f"bench.{name}.run")(rest)


if __name__ == "__main__":
    raise SystemExit(main())
