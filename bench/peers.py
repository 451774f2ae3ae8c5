"""Set up the peer libraries the benchmarks compare against, each in its own venv.

Some peers cannot share the project's virtual environment:

* ``tfrecord`` (PyPI, the vahidk reader) ships its own ``example_pb2`` in the
  ``tensorflow`` proto package, so it cannot be imported in the same process as
  TensorFlow; the harness always runs it in a separate process from its own
  small venv.
* ``tfx-bsl`` pulls the full ``tensorflow`` package (not ``tensorflow-cpu``),
  ``apache-beam[gcp]`` and pinned ``pyarrow``; installing it into the project
  venv would replace the project's TensorFlow, so it gets its own venv.
* ``tensorflow-data-validation`` (TFDV, for ``bench/validate``) pulls the
  same, plus tensorflow-metadata; its own venv too.

The venvs live under ``bench/.venvs/<name>`` (git-ignored). Each gets a
``featurepipe-peer.json`` status file recording the pinned specs, whether the
install worked, and the tail of pip's output when it did not, so the benchmark
can say *why* a peer is missing instead of silently skipping it.

Usage::

    python -m bench.peers                 # set up every peer (minutes; ~3 GB on disk)
    python -m bench.peers tfrecord        # just one
    python -m bench.peers --status        # what is installed
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PEERS", "PeerSpec", "peer_python", "peer_status", "setup_peer"]

VENVS = Path(__file__).resolve().parent / ".venvs"
STATUS_FILE = "featurepipe-peer.json"


@dataclass(frozen=True)
class PeerSpec:
    """A peer library and the pinned requirements of its venv.

    Args:
        name: Folder name under ``bench/.venvs``.
        requirements: pip requirement specifiers, pinned.
        probe: Python code run in the new venv to prove the install works.
        why: One line on why this peer has its own venv.
    """

    name: str
    requirements: tuple[str, ...]
    probe: str
    why: str


PEERS: dict[str, PeerSpec] = {
    "tfrecord": PeerSpec(
        name="tfrecord",
        requirements=("tfrecord==1.14.6", "numpy", "protobuf>=5,<7"),
        probe="import tfrecord, tfrecord.reader; print(tfrecord.__file__)",
        why="its example_pb2 uses the 'tensorflow' proto package and clashes with TensorFlow",
    ),
    "tfxbsl": PeerSpec(
        name="tfxbsl",
        requirements=("tfx-bsl==1.21.0",),
        probe=(
            "from tfx_bsl.coders import example_coder; "
            "print(example_coder.ExamplesToRecordBatchDecoder)"
        ),
        why="pulls the full 'tensorflow' and apache-beam[gcp]; would replace the project's TF",
    ),
    "tfdv": PeerSpec(
        name="tfdv",
        # 1.21.0 (the pin) has no wheel for this Python in the registry here (pip:
        # "from versions: 1.15.1, 1.16.0, 1.16.1"); 1.16.1 with the versions bench/stats pins
        # (unpinned, pip backtracks for many minutes over apache-beam / pyarrow).
        requirements=(
            "tensorflow-data-validation==1.16.1",
            "tfx-bsl==1.16.1",
            "tensorflow-metadata==1.16.1",
            "tensorflow==2.16.2",
            "pyarrow==10.0.1",
            "apache-beam[gcp]==2.60.0",
            "numpy==1.26.4",
            "pandas==1.5.3",
            "pyfarmhash==0.3.2",
            "protobuf==4.25.5",
        ),
        probe=(
            "import tensorflow_data_validation as tfdv; "
            "print(tfdv.__version__, tfdv.validate_statistics)"
        ),
        why="TFDV pulls the full 'tensorflow', tfx-bsl and apache-beam[gcp] (the validate bench)",
    ),
}


def _venv_python(root: Path) -> Path:
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def peer_status(name: str) -> dict[str, object]:
    """Returns the recorded install status of peer ``name``.

    Args:
        name: A key of ``PEERS``.

    Returns:
        The status dict (``{"ok": bool, ...}``); ``{"ok": False, "error": "not set up"}``
        when ``python -m bench.peers`` has not been run.

    Raises:
        KeyError: ``name`` is not a known peer.
    """
    spec = PEERS[name]
    path = VENVS / spec.name / STATUS_FILE
    if not path.exists():
        return {"ok": False, "error": f"not set up; run `python -m bench.peers {name}`"}
    data: dict[str, object] = json.loads(path.read_text())
    return data


def peer_python(name: str) -> Path | None:
    """Returns the interpreter of peer ``name``'s venv, or None when it is not usable."""
    if not peer_status(name).get("ok"):
        return None
    py = _venv_python(VENVS / PEERS[name].name)
    return py if py.exists() else None


def setup_peer(name: str, *, base_python: str = sys.executable,
               force: bool = False) -> dict[str, object]:
    """Creates (or reuses) the venv of peer ``name`` and installs its pinned requirements.

    Args:
        name: A key of ``PEERS``.
        base_python: Interpreter the venv is made from (Python 3.11 by default: the
            project's). The venv is made by running ``base_python -m venv``.
        force: Reinstall even when the status file says the venv is fine.

    Returns:
        The status dict written to ``bench/.venvs/<name>/featurepipe-peer.json``.
    """
    spec = PEERS[name]
    root = VENVS / spec.name
    status_path = root / STATUS_FILE
    if not force and status_path.exists() and peer_status(name).get("ok"):
        return peer_status(name)
    root.mkdir(parents=True, exist_ok=True)
    py = _venv_python(root)
    t0 = time.time()
    log: list[str] = []

    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        print("+", " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
        log.append(proc.stdout[-4000:] + proc.stderr[-4000:])
        return proc

    status: dict[str, object] = {"name": name, "requirements": list(spec.requirements),
                                 "why_separate": spec.why}
    if not py.exists():
        if base_python == sys.executable and sys.prefix != sys.base_prefix:
            # Creating a venv from inside a venv: use the stdlib builder on the base.
            venv.EnvBuilder(with_pip=True, clear=True).create(root)
        else:
            run([base_python, "-m", "venv", "--clear", str(root)])
    proc = run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                *spec.requirements])
    if proc.returncode != 0:
        status.update(ok=False, error="pip install failed", log_tail="\n".join(log)[-6000:])
    else:
        probe = run([str(py), "-c", spec.probe])
        if probe.returncode != 0:
            status.update(ok=False, error="installed but import failed",
                          log_tail=probe.stderr[-6000:])
        else:
            frozen = subprocess.run([str(py), "-m", "pip", "freeze"], check=False,
                                    capture_output=True, text=True).stdout
            status.update(ok=True, python=str(py), freeze=frozen.splitlines())
    status["seconds"] = round(time.time() - t0, 1)
    status_path.write_text(json.dumps(status, indent=2) + "\n")
    return status


def main(argv: list[str] | None = None) -> int:
    """Command line: set up the named peers (all by default) or print their status."""
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"peers to set up, of {sorted(PEERS)} (default: all)")
    parser.add_argument("--status", action="store_true", help="only print the recorded status")
    parser.add_argument("--force", action="store_true", help="reinstall even if set up")
    args = parser.parse_args(argv)
    names = args.names or list(PEERS)
    unknown = sorted(set(names) - set(PEERS))
    if unknown:
        parser.error(f"unknown peer(s) {unknown}; expected some of {sorted(PEERS)}")
    rc = 0
    for name in names:
        st = peer_status(name) if args.status else setup_peer(name, force=args.force)
        ok = bool(st.get("ok"))
        rc |= 0 if ok else 1
        print(f"{name:10s} {'ok' if ok else 'MISSING'}  {st.get('error', '') if not ok else ''}")
        if not ok and st.get("log_tail") and not args.status:
            print(str(st["log_tail"])[-2000:])
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
