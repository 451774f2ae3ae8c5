"""Regenerate featurepipe/example/proto/*_pb2.py(.pyi) from protos/.

Run from the repository root with the project's venv:

    .venv/bin/python scripts/gen_protos.py          # write the generated files
    .venv/bin/python scripts/gen_protos.py --check  # exit 1 if they are stale

The generated files are committed; tests/test_proto.py runs ``--check`` so a
change to a .proto without regenerating fails the suite.
"""

from __future__ import annotations

import argparse
import filecmp
import pathlib
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_PKG = ROOT / "featurepipe" / "example" / "proto"
SOURCES = ["featurepipe/example/proto/feature.proto", "featurepipe/example/proto/example.proto"]


def _generate(out_dir: pathlib.Path) -> None:
    from grpc_tools import protoc  # build-time only dependency

    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *SOURCES,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    ns = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = pathlib.Path(tmp)
        _generate(tmp_path)
        generated = sorted((tmp_path / "featurepipe" / "example" / "proto").glob("*_pb2.py*"))
        stale = [
            g.name
            for g in generated
            if not (OUT_PKG / g.name).exists()
            or not filecmp.cmp(g, OUT_PKG / g.name, shallow=False)
        ]
        if ns.check:
            if stale:
                print(
                    f"stale generated protos: {stale}; run scripts/gen_protos.py",
                    file=sys.stderr,
                )
                return 1
            return 0
        for g in generated:
            shutil.copyfile(g, OUT_PKG / g.name)
        print(f"wrote {[g.name for g in generated]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
