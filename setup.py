"""Build hook for featurepipe's optional C extension, ``featurepipe._speedups``.

Everything else about the package lives in pyproject.toml. The extension only
speeds up hot loops that also exist in pure Python (TFRecord framing with
CRC-32C and tf.Example batch decoding), so a machine without a C compiler or
Python headers still installs featurepipe: the build prints a warning and
skips the extension.

Environment switches:
    FEATUREPIPE_NO_EXT=1       do not build the extension at all.
    FEATUREPIPE_REQUIRE_EXT=1  fail the install if the extension does not build.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """``build_ext`` that warns and carries on when the C extension fails."""

    def build_extensions(self) -> None:
        if self.compiler.compiler_type == "unix":
            for ext in self.extensions:
                ext.extra_compile_args = [*ext.extra_compile_args, "-O3"]
        super().build_extensions()

    def run(self) -> None:
        self._warned = False
        try:
            super().run()
        except Exception as e:  # no compiler at all, or a broken toolchain
            if not self._warned:  # else: the in-place copy of the failed build
                self._skip(e)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as e:  # compile or link error
            self._skip(e)

    def _skip(self, error: Exception) -> None:
        if os.environ.get("FEATUREPIPE_REQUIRE_EXT") == "1":
            raise error
        self._warned = True
        print(
            "WARNING: featurepipe's optional C extension (featurepipe._speedups) could not be "
            f"built ({type(error).__name__}: {error}). featurepipe works without it, only "
            "slower: install a C compiler and the Python headers (e.g. `apt-get install gcc "
            "python3-dev`) and reinstall to get it.",
            file=sys.stderr,
        )


def _ext_modules() -> list[Extension]:
    if os.environ.get("FEATUREPIPE_NO_EXT") == "1":
        return []
    # One module from several files: _speedups.c (CRC, framing, Example decoding) owns the
    # module init and calls the register function of each other part (_speedups.h).
    sources = [
        "featurepipe/_speedups.c",
        "featurepipe/_speedups_csv.c",
        "featurepipe/_speedups_columns.c",
    ]
    return [
        Extension("featurepipe._speedups", sources=sources, depends=["featurepipe/_speedups.h"])
    ]


if __name__ == "__main__":  # setuptools runs this file as __main__; a bare import does nothing
    setup(ext_modules=_ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
