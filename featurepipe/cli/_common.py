"""Shared pieces of the command line: exit codes, output, progress, argument types.

The argument types and choices here are the one set for every verb and for the
Beam jobs in ``pipelines/`` (which import them; featurepipe never imports
``pipelines``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

from featurepipe.tfrecord import COMPRESSIONS

__all__ = [
    "EXIT_DATA",
    "EXIT_OK",
    "EXIT_USAGE",
    "READ_COMPRESSIONS",
    "WRITE_COMPRESSIONS",
    "Progress",
    "add_beam_arguments",
    "add_read_compression",
    "beam_arguments",
    "error",
    "fraction",
    "non_negative_int",
    "positive_int",
    "print_json",
    "read_progress",
]

#: ``--compression`` choices of a reader (``auto`` detects from the first bytes) ...
READ_COMPRESSIONS: tuple[str, ...] = ("auto", *COMPRESSIONS)
#: ... and of a writer.
WRITE_COMPRESSIONS: tuple[str, ...] = tuple(COMPRESSIONS)


def add_read_compression(p: argparse.ArgumentParser) -> None:
    """Adds ``--compression`` to a verb that reads TFRecord files (``auto`` by default)."""
    p.add_argument(
        "--compression",
        choices=READ_COMPRESSIONS,
        default="auto",
        help="compression of the files; default: detect from the first bytes",
    )


EXIT_OK = 0
EXIT_DATA = 1
EXIT_USAGE = 2


def error(message: str, *, hint: str | None = None) -> None:
    """Print ``Error: message`` (and a hint) to stderr, click's format."""
    print(f"Error: {message}", file=sys.stderr)
    if hint:
        print(f"Hint: {hint}", file=sys.stderr)


def print_json(obj: Any, *, indent: int | None = 2) -> None:
    """Print ``obj`` as strict JSON (no NaN literals) to stdout."""
    print(json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False))


def _int_at_least(text: str, low: int) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if n < low:
        raise argparse.ArgumentTypeError(f"{n} is not >= {low}")
    return n


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0.

    >>> non_negative_int("0")
    0
    """
    return _int_at_least(text, 0)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1.

    >>> positive_int("3")
    3
    """
    return _int_at_least(text, 1)


def fraction(text: str) -> float:
    """argparse type: a number in the open interval (0, 1).

    >>> fraction("0.25")
    0.25
    """
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < x < 1.0:
        raise argparse.ArgumentTypeError(f"{x} is not in the open interval (0, 1)")
    return x


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal.

    Args:
        label: what is being done, e.g. ``"verify data.tfrecord"``.
        total: total bytes, or ``None`` when unknown.
        stream: where to draw. Defaults to `sys.stderr`.
        enabled: force on or off; ``None`` means "when ``stream`` is a TTY".
            Defaults to `None`.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        stream: IO[str] | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = (
            enabled
            if enabled is not None
            else (self.stream.isatty() and os.environ.get("TERM") != "dumb")
        )
        self.label = label
        self.total = total
        self.start = time.monotonic()
        self._last = 0.0
        self._drawn = False

    def update(self, done: int, records: int) -> None:
        """Redraw (at most ten times a second)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        rate = records / max(now - self.start, 1e-9)
        if self.total:
            frac = min(1.0, done / self.total)
            bar = "#" * int(frac * 24)
            line = (
                f"{self.label} [{bar:<24}] {frac:4.0%} {_human_bytes(done)}/"
                f"{_human_bytes(self.total)} {records:,} records ({rate:,.0f}/s)"
            )
        else:
            line = f"{self.label} {records:,} records ({rate:,.0f}/s)"
        self.stream.write("\r" + line[:160] + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def add_records(self, records: int, nbytes: int) -> None:
        """Redraw after ``records`` records of ``nbytes`` payload bytes in all (analysis callbacks).

        16 bytes of framing per record count too: 8 (length) + 4 (length CRC) + 4 (data CRC).
        """
        self.update(nbytes + 16 * records, records)

    def close(self) -> None:
        """Clear the line."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


@contextlib.contextmanager
def read_progress(label: str, paths: Sequence[str]) -> Iterator[Callable[[int, int], None]]:
    """A `Progress` over reading the TFRecord files ``paths``, cleared on exit.

    Yields:
        The ``progress(records, payload_bytes)`` callback the analysis functions take.
    """
    bar = Progress(label, sum(os.path.getsize(p) for p in paths))
    try:
        yield bar.add_records
    finally:
        bar.close()


def add_beam_arguments(p: argparse.ArgumentParser) -> None:
    """The Beam runner options shared by the verbs that run a Beam job."""
    p.add_argument(
        "--runner",
        default=None,
        help="Beam runner: direct (the default), dask (see --dask-address, --dask-workers), "
        "dataflow, flink, spark, or a runner name or class path",
    )
    p.add_argument(
        "--direct-running-mode",
        "--direct_running_mode",
        dest="direct_running_mode",
        choices=("in_memory", "multi_threading", "multi_processing"),
        default=None,
        help="DirectRunner mode",
    )
    p.add_argument(
        "--direct-num-workers",
        "--direct_num_workers",
        dest="direct_num_workers",
        type=int,
        default=None,
        help="DirectRunner workers",
    )
    p.add_argument(
        "--beam-options",
        "--beam_options",
        dest="beam_options",
        default="",
        metavar="'--OPT VALUE ...'",
        help="more Beam pipeline options, as one quoted string",
    )


def beam_arguments(args: argparse.Namespace) -> list[str]:
    """Beam pipeline arguments from `add_beam_arguments`' options.

    The runner defaults to the DirectRunner explicitly: without ``--runner``
    Beam first tries to download its Prism runner, which fails offline.
    """
    import shlex

    out = shlex.split(args.beam_options or "")
    if not any(a == "--runner" or a.startswith("--runner=") for a in out):
        out.append(f"--runner={args.runner or 'DirectRunner'}")
    if args.direct_running_mode:
        out.append(f"--direct_running_mode={args.direct_running_mode}")
    if args.direct_num_workers:
        out.append(f"--direct_num_workers={args.direct_num_workers}")
    return out
