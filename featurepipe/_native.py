"""The one loader of featurepipe's compiled extension, ``featurepipe._speedups``.

Everything the extension does also exists in pure Python (the "twins", checked
against it by differential tests): TFRecord frame scanning and framing with both
CRC-32Cs, tf.Example batch decoding, the CSV fast path and the feature-column
runner. Code that can use it imports :data:`speedups` from here and takes its
pure-Python twin when it is ``None``; nothing else imports ``_speedups``.

Which implementation is active is :data:`implementation` (``featurepipe
--version`` prints it). When the extension is missing, importing featurepipe
warns once and carries on, slower. ``FEATUREPIPE_PURE_PYTHON=1`` in the
environment turns it off on purpose (no warning): ``python3 dev.py test`` (what
CI runs) runs the core tests a second time that way, so the twins stay exercised.
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

__all__ = ["PURE_PYTHON_ENV", "implementation", "speedups"]

PURE_PYTHON_ENV = "FEATUREPIPE_PURE_PYTHON"


def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0"):
        return None, f"pure Python ({PURE_PYTHON_ENV}=1)"
    try:
        module = importlib.import_module("featurepipe._speedups")
    except ImportError as e:
        warnings.warn(
            f"featurepipe's compiled extension is not available ({e}); using the pure-Python "
            "paths (same results, slower). Reinstall with a C compiler and the Python headers "
            "(e.g. `apt-get install gcc python3-dev`) to build it.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None, "pure Python (featurepipe._speedups is not built)"
    return module, f"compiled ({module.__name__}, {os.path.basename(module.__file__ or '?')})"


speedups, implementation = _load()
