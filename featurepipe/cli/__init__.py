"""The ``featurepipe`` command line.

Starting it imports only the standard library and featurepipe's core: never
TensorFlow, Keras or Apache Beam (the ``convert``, ``analyze`` and ``train``
verbs import them when they run). See ``featurepipe --help``.
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 data problem, 2 usage)."""
    from featurepipe.cli.main import main as _main

    return _main(argv)
