"""The core and the CLI never import TensorFlow, Keras or Beam; the public API is tidy."""

from __future__ import annotations

import subprocess
import sys

import featurepipe

HEAVY = ("tensorflow", "keras", "apache_beam", "pyarrow", "torch", "jax")


def test_core_and_cli_import_no_framework():
    code = (
        "import sys, featurepipe, featurepipe.tfrecord._reader, featurepipe.tfrecord._writer, "
        "featurepipe.example._codec, "
        "featurepipe.example._schema, featurepipe.tfrecord._index, featurepipe.cli.main\n"
        "featurepipe.cli.main.build_parser()\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_import_featurepipe_does_not_load_numpy():
    # `featurepipe --version` and error paths stay fast: numpy loads on use.
    code = "import sys, featurepipe; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_exported_members_sorted_and_present():
    assert featurepipe.__all__ == sorted(featurepipe.__all__)
    for name in featurepipe.__all__:
        assert hasattr(featurepipe, name), name
