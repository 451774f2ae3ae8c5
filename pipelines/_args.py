"""Argument helpers shared by the Beam job modules and the ``featurepipe`` verbs.

The same options are spelled two ways: the Beam job (``python -m pipelines.X``)
takes ``--input`` (repeatable) and underscores, like Beam's own examples; the
CLI (``featurepipe X``) takes positional inputs and dashes. Both spellings of a
multi-word option are accepted either way.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["add_inputs", "option_adder"]


def add_inputs(parser: argparse.ArgumentParser, *, cli: bool, what: str) -> None:
    """Add the inputs: positional for the CLI, a repeatable ``--input`` for the job."""
    if cli:
        parser.add_argument("input", nargs="+", help=f"{what} files or globs (local, gs://, s3://)")
    else:
        parser.add_argument(
            "--input", action="append", required=True, help=f"{what} file or glob; repeat for more"
        )


def option_adder(parser: argparse.ArgumentParser, *, cli: bool) -> Callable[..., None]:
    """A function ``opt(name, **kw)`` adding ``--a-b`` and ``--a_b`` (the preferred first)."""

    def opt(name: str, **kw: Any) -> None:
        dash, under = f"--{name.replace('_', '-')}", f"--{name}"
        names = [dash, under] if dash != under else [dash]
        if not cli:
            names.reverse()
        parser.add_argument(*names, dest=name, **kw)

    return opt
