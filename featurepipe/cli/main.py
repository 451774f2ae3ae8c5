"""``featurepipe``: the command line entry point (argparse, stdlib only).

Each verb lives in its own module with an ``add_parser(subparsers)`` function
that registers it and sets ``func``; heavy imports happen inside ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the verb; returns the exit status."""
    from featurepipe.errors import ConfigError, DataError

    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # `featurepipe` or `featurepipe inspect` alone: show the relevant help.
        (getattr(args, "_parser", None) or parser).print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(func(args))
    except ConfigError as e:
        error(str(e))
        return EXIT_USAGE
    except DataError as e:
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
