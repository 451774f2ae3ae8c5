"""Small helpers every layer uses (standard library only): atomic local writes, JSON values.

Atomic writes: every local file featurepipe writes (TFRecord files, index
sidecars, schemas, column specs, analysis artifacts, HTML reports) goes
through `AtomicFile`: a temporary file in the same directory, written,
flushed and fsynced, renamed over the final name with `os.replace`, and the
directory fsynced where the platform allows it; on any error the temporary
file is removed. A reader therefore sees the old file or the new one, never a
part, and a crash leaves at most a hidden ``.NAME.tmp-XXXX`` file. (Beam's
output publishing keeps Beam's FileSystems for remote paths.)
"""

from __future__ import annotations

import base64
import contextlib
import math
import os
import secrets
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["AtomicFile", "atomic_write", "json_float", "json_value", "write_bytes", "write_text"]


def _fsync_dir(directory: str) -> None:
    """fsync a directory so a rename in it is durable (a no-op where unsupported)."""
    flags = getattr(os, "O_DIRECTORY", 0) | os.O_RDONLY
    try:
        fd = os.open(directory, flags)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicFile:
    """A local file written under a temporary name and renamed into place on `commit`.

    The temporary file ``.NAME.tmp-XXXXXXXX`` lies in the final file's
    directory (a rename never crosses file systems) and is created with the
    usual permissions (``0o666`` less the umask). `commit` flushes, fsyncs,
    renames with `os.replace` and fsyncs the directory; `discard` (or any
    error in `commit`) removes the temporary file. As a context manager it
    commits on a clean exit and discards on an exception.

    Args:
        path: the final path.
        mode: ``"wb"`` or ``"w"``. Defaults to `"wb"`.
        encoding: for text mode. Defaults to `None` (``"utf-8"`` in text mode).

    Examples:

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "a.bin")
    >>> with AtomicFile(p) as f:
    ...     _ = f.write(b"abc")
    >>> open(p, "rb").read(), os.listdir(os.path.dirname(p))
    (b'abc', ['a.bin'])
    """

    def __init__(
        self, path: str | os.PathLike[str], mode: str = "wb", *, encoding: str | None = None
    ) -> None:
        if mode not in ("wb", "w"):
            raise ValueError(f"`mode` must be 'wb' or 'w'. Received: mode={mode!r}")
        self.path = os.fspath(path)
        self.directory, base = os.path.split(os.path.abspath(self.path))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        while True:
            tmp = os.path.join(self.directory, f".{base}.tmp-{secrets.token_hex(4)}")
            try:
                fd = os.open(tmp, flags, 0o666)
                break
            except FileExistsError:  # pragma: no cover - a 32-bit name collision
                continue
        self.tmp = tmp
        try:
            if mode == "w":
                self.file: IO[Any] = os.fdopen(fd, "w", encoding=encoding or "utf-8")
            else:
                self.file = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        self.closed = False

    def write(self, data: Any) -> int:
        """Write to the temporary file."""
        n: int = self.file.write(data)
        return n

    def flush(self) -> None:
        """Flush Python's buffer to the temporary file."""
        self.file.flush()

    def fileno(self) -> int:
        """The temporary file's descriptor."""
        return self.file.fileno()

    def commit(self) -> None:
        """Flush, fsync, rename into place and fsync the directory; idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self._remove()
            raise
        _fsync_dir(self.directory)

    def discard(self) -> None:
        """Close and remove the temporary file; the final path is left untouched."""
        if self.closed:
            return
        self.closed = True
        self._remove()

    def _remove(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            self.commit()
        else:
            self.discard()


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "wb", *, encoding: str | None = None
) -> Iterator[IO[Any]]:
    """Open ``path`` for an atomic write (see `AtomicFile`); yields the file object.

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> with atomic_write(p, "w") as f:
    ...     _ = f.write("hi")
    >>> open(p).read()
    'hi'
    """
    with AtomicFile(path, mode, encoding=encoding) as f:
        yield f.file


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "a.bin")
    >>> write_bytes(p, b"xy"); open(p, "rb").read()
    b'xy'
    """
    with AtomicFile(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically.

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> write_text(p, "é\\n"); open(p, encoding="utf-8").read()
    'é\\n'
    """
    with AtomicFile(path, "w", encoding=encoding) as f:
        f.write(text)


def json_float(x: float) -> float | str:
    """JSON form of a float: a number, or ``"NaN"`` / ``"Infinity"`` / ``"-Infinity"``.

    The one place featurepipe spells non-finite floats for strict JSON (the
    ``inspect head`` contract, statistics and analysis artifacts).

    >>> json_float(1.5), json_float(float("-inf"))
    (1.5, '-Infinity')
    """
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return float(x)


def json_value(v: bytes | int | str) -> str | int | dict[str, str]:
    """JSON form of a feature value: UTF-8 text when it decodes, else ``{"base64": ...}``.

    >>> json_value(b"ok"), json_value(b"\\xff"), json_value(7)
    ('ok', {'base64': '/w=='}, 7)
    """
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(v).decode("ascii")}
    return v
