"""The tf.estimator fixtures (issue 13), committed as one archive, ``fixtures.tar.xz``.

``make_fixtures.py`` (TensorFlow 2.15) writes ``data/`` and one folder per case,
then packs them into ``fixtures.tar.xz``; only the archive is committed (the
folders are git-ignored). The tests call :func:`estimator_fixtures`, which
unpacks the archive once into a cache folder and returns it. The archive
always wins: folders left here by a run of ``make_fixtures.py`` are never read
by the tests (that run also rewrote the archive).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
ARCHIVE = HERE / "fixtures.tar.xz"
COLUMNS = HERE / "feature_columns_def.py"


def _members() -> list[tarfile.TarInfo]:
    with tarfile.open(ARCHIVE, "r:xz") as tar:
        return [m for m in tar.getmembers() if m.isfile()]


def _complete(folder: Path, members: list[tarfile.TarInfo]) -> bool:
    """Every file there with its size (a temp-folder cleaner may have removed some)."""
    try:
        if (folder / COLUMNS.name).read_bytes() != COLUMNS.read_bytes():
            return False
        return all((folder / m.name).stat().st_size == m.size for m in members)
    except OSError:
        return False


@functools.cache
def estimator_fixtures() -> Path:
    """The folder holding the unpacked fixtures: ``data/``, ``<case>/``, ``feature_columns_def.py``.

    ``<tempdir>/featurepipe-estimator-fixtures-<key>``, where ``<key>`` is the first
    12 hex digits of the SHA-256 of ``fixtures.tar.xz`` followed by
    ``feature_columns_def.py`` (copied in from this folder, next to the ``data/``
    its ``CITIES_FILE`` names). Unpacked once (into a temporary sibling, then
    renamed, so a folder of that name is always whole; a concurrent process
    that renames first wins) and reused by later runs while its files are all there.
    """
    if not ARCHIVE.is_file():
        raise FileNotFoundError(
            f"{ARCHIVE} is missing: restore it with `git checkout -- {ARCHIVE.name}` "
            "or regenerate it with make_fixtures.py (see README.md there)"
        )
    digest = hashlib.sha256(ARCHIVE.read_bytes() + COLUMNS.read_bytes()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"featurepipe-estimator-fixtures-{digest}"
    members = _members()
    if _complete(target, members):
        return target
    if target.exists():  # damaged: move it aside (one atomic rename) before unpacking again
        trash = Path(tempfile.mkdtemp(prefix=target.name + ".old-", dir=target.parent))
        with contextlib.suppress(OSError):  # someone else moved or replaced it meanwhile
            os.rename(target, trash / "x")
        shutil.rmtree(trash, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".part-", dir=target.parent))
    try:
        with tarfile.open(ARCHIVE, "r:xz") as tar:
            tar.extractall(tmp, filter="data")
        shutil.copyfile(COLUMNS, tmp / COLUMNS.name)
        tmp.chmod(0o755)  # mkdtemp made it 0700
        try:
            os.rename(tmp, target)
        except OSError:
            if not _complete(target, members):  # not a concurrent unpacker that won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@functools.cache
def feature_columns_module() -> ModuleType:
    """``feature_columns_def`` imported from :func:`estimator_fixtures` (as the tests do)."""
    folder = str(estimator_fixtures())
    sys.path.insert(0, folder)
    try:
        module = importlib.import_module("feature_columns_def")
    finally:
        sys.path.remove(folder)
    if Path(module.__file__ or "").parent != Path(folder):
        raise ImportError(f"feature_columns_def came from {module.__file__}, not from {folder}")
    return module
