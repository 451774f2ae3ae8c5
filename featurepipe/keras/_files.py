"""The data files of file patterns, for both input paths of `featurepipe.keras` (no TensorFlow).

``tf.data`` (:func:`~featurepipe.keras.make_dataset`) globs remote patterns
with ``tf.io.gfile``; the JAX / PyTorch path (``featurepipe.data``) reads local
files only. Local patterns go through the one expansion of ``featurepipe
inspect`` (paths, globs, ``PREFIX@N``) in both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from featurepipe.errors import ConfigError
from featurepipe.tfrecord import expand_paths

__all__ = ["match_files"]


def match_files(
    pattern: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    remote: Callable[[str], list[str]],
) -> list[str]:
    """The sorted, distinct files of one pattern or a list of them.

    Args:
        pattern: a path, a glob, ``PREFIX@N``, or a list of these.
        remote: the files of a pattern with a scheme (``gs://...``); it may
            raise instead, for a path that reads local files only.

    Returns:
        The files, sorted, each once.

    Raises:
        ConfigError: a pattern matches no file.

    Examples:
        >>> match_files("nothing-here-*.tfrecord", remote=list)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        featurepipe.errors.ConfigError: No files match 'nothing-here-*.tfrecord': ...
    """
    patterns = (
        [os.fspath(pattern)]
        if isinstance(pattern, str | os.PathLike)
        else [os.fspath(p) for p in pattern]
    )
    files: list[str] = []
    for p in patterns:
        if "://" in p:
            matched = remote(p)
        else:
            try:
                matched = expand_paths(p)
            except ConfigError as e:
                raise ConfigError(f"No files match {p!r}: {e}") from None
        if not matched:
            raise ConfigError(f"No files match {p!r}.")
        files.extend(matched)
    # expand_paths leaves out the index sidecars (FILE.fpidx) a glob also matches.
    return sorted(set(files))
