"""``featurepipe``: the command line entry point (argparse, stdlib only).

Each verb lives in its own module with an ``add_parser(subparsers)`` function
that registers it and sets ``func``; heavy imports happen inside ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from featurepipe._version import __version__
from featurepipe.cli._common import EXIT_DATA, EXIT_USAGE, error

__all__ = ["build_parser", "main"]

# Top-level verbs, by module. A module that is not there (a partial install)
# is left out of the parser rather than breaking every other verb.
_VERBS = (
    "featurepipe.cli.inspect",
    "featurepipe.cli.convert",
    "featurepipe.cli.analyze",
    "featurepipe.cli.train",
    "featurepipe.cli.columns",
    "featurepipe.cli.migrate",
)

_EPILOG = """\
examples:
  featurepipe inspect count data/*.tfrecord.gz
  featurepipe inspect head data/train-00000-of-00004.tfrecord -n 3 --json
  featurepipe inspect verify data/*.tfrecord
  featurepipe convert rows.csv --output out/train --num-shards 4

Exit status: 0 fine, 1 a problem with the data, 2 a usage error.
"""


def version_string() -> str:
    """What ``featurepipe --version`` prints: the version and the active implementation.

    The implementation is :data:`featurepipe._native.implementation`: the compiled
    extension, or the pure-Python paths (and why).

    >>> version_string().startswith("featurepipe ")
    True
    """
    from featurepipe._native import implementation

    return f"featurepipe {__version__} ({implementation})"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="featurepipe",
        description="Raw tabular data to trained models through TFRecord files.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_string())
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for mod_name in _VERBS:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name != mod_name:
                raise
            continue
        mod.add_parser(sub)
    return parser


class _Formatter(logging.Formatter):
    """featurepipe's warnings as ``Warning: ...``; other libraries' with their logger's name."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            message = f"{message}\n{record.exc_text}"
        level = record.levelname.capitalize()
        if record.name == "featurepipe" or record.name.startswith("featurepipe."):
            return f"{level}: {message}"
        return f"{level}: {record.name}: {message}"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the ``sys.stderr`` of the moment (tests and callers may replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(verbose: bool = False) -> None:
    """Log records to stderr the CLI's way (warnings and above; INFO with ``verbose``).

    One handler on the root logger, so a library's module-level ``logging.warning``
    does not install Python's default ``LEVEL:name:message`` handler; known
    third-party noise (``apitools not found ...``) is dropped. Idempotent.
    """
    root = logging.getLogger()
    level = logging.INFO if verbose else logging.WARNING
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(_Formatter())
        root.addHandler(handler)
    handler.setLevel(level)
    root.setLevel(level)
    try:
        from featurepipe.beam import quiet_third_party_noise
    except ImportError:  # pragma: no cover - a partial install
        return
    quiet_third_party_noise()


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the verb; returns the exit status.

    Errors print one line, ``Error: ...`` (the file, the record, what to do);
    the traceback only with ``--verbose`` (where a verb has it).
    """
    from featurepipe.errors import ConfigError, DataError

    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # `featurepipe` or `featurepipe inspect` alone: show the relevant help.
        (getattr(args, "_parser", None) or parser).print_help(sys.stderr)
        return EXIT_USAGE
    verbose = bool(getattr(args, "verbose", False))
    setup_logging(verbose)
    try:
        return int(func(args))
    except ConfigError as e:
        if verbose:
            traceback.print_exc()
        error(str(e))
        return EXIT_USAGE
    except DataError as e:
        if verbose:
            traceback.print_exc()
        error(str(e))
        return EXIT_DATA
    except BrokenPipeError:  # `featurepipe inspect head ... | head -1`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        error("interrupted")
        return 130


def console_main() -> None:  # pragma: no cover - the installed script
    """Entry point of the installed ``featurepipe`` script."""
    raise SystemExit(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()
