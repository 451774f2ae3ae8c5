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
import pathlib
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
    # One module from several files (csrc/): plain-C kernels that never include Python.h
    # (csrc/kernels) under a thin CPython binding layer (csrc/bindings; bindings/module.c owns
    # the module and its multi-phase init and calls the exec function of each other part).
    root = pathlib.Path(__file__).resolve().parent
    kernels = sorted(p.relative_to(root).as_posix() for p in (root / "csrc/kernels").glob("*.c"))
    bindings = sorted(p.relative_to(root).as_posix() for p in (root / "csrc/bindings").glob("*.c"))
    headers = sorted(p.relative_to(root).as_posix() for p in (root / "csrc").glob("*/*.h"))
    return [
        Extension(
            "featurepipe._speedups",
            sources=[*bindings, *kernels],
            depends=headers,
            include_dirs=["csrc"],
        )
    ]


if __name__ == "__main__":  # setuptools runs this file as __main__; a bare import does nothing
    setup(ext_modules=_ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
