"""TFRecord paths: shard names (``PREFIX-00003-of-00010``) and the one path expansion.

`expand_paths` is what every reader of local files calls (the readers, the
index, statistics, `featurepipe inspect`, ``keras.make_dataset``); Beam's
input expansion keeps Beam's FileSystems for remote schemes and calls it for
local paths.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable

from featurepipe.errors import ConfigError

__all__ = ["INDEX_SUFFIX", "expand_paths", "is_sharded_spec", "shard_name", "sharded_paths"]

#: Appended to a TFRecord file's name to name its index sidecar (see _index).
INDEX_SUFFIX = ".fpidx"

_SHARD_RE = re.compile(r"^(?P<prefix>.+)@(?P<n>\d+)(?P<suffix>(\.[A-Za-z0-9_.]+)?)$")


def shard_name(prefix: str, index: int, num_shards: int, suffix: str = "") -> str:
    """The name of shard ``index`` of ``num_shards``: ``PREFIX-00003-of-00010SUFFIX``.

    Args:
        prefix: path prefix, e.g. ``"out/train"``.
        index: 0-based shard index.
        num_shards: total number of shards (at least 1).
        suffix: appended as is, e.g. ``".tfrecord.gz"``. Defaults to `""`.

    Returns:
        The shard's file name.

    Raises:
        ConfigError: when ``index`` is not in ``[0, num_shards)``.

    Examples:

    >>> shard_name("out/train", 3, 10, ".tfrecord")
    'out/train-00003-of-00010.tfrecord'
    """
    if num_shards < 1 or not 0 <= index < num_shards:
        raise ConfigError(
            "`index` must be in [0, num_shards) and `num_shards` >= 1. "
            f"Received: index={index}, num_shards={num_shards}"
        )
    return f"{prefix}-{index:05d}-of-{num_shards:05d}{suffix}"


def sharded_paths(prefix: str, num_shards: int, suffix: str = "") -> list[str]:
    """All shard names for ``prefix``; see `shard_name`.

    Examples:

    >>> sharded_paths("a", 2)
    ['a-00000-of-00002', 'a-00001-of-00002']
    """
    return [shard_name(prefix, i, num_shards, suffix) for i in range(num_shards)]


def expand_paths(sources: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[str]:
    """Expand paths, globs and sharded specs into a list of existing files.

    Each source may be a plain path, a glob (``data/*.tfrecord``) or a sharded
    spec ``PREFIX@N[.SUFFIX]`` that names ``PREFIX-00000-of-0000N[.SUFFIX]``
    and the rest. Globs are sorted; the order of sources is kept; duplicates
    are dropped. A glob leaves out the index sidecars (``FILE.fpidx``) of the
    files it matches -- ``train-*`` means the data, not the indexes the readers
    wrote beside it -- unless the pattern itself ends with ``.fpidx``.

    Args:
        sources: one source or an iterable of them.

    Returns:
        The file paths, as strings.

    Raises:
        ConfigError: when a source matches no file, or a sharded spec misses shards.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    out: list[str] = []
    seen: set[str] = set()
    for src in sources:
        s = os.fspath(src)
        m = _SHARD_RE.match(s)
        if m and not os.path.exists(s):
            names = sharded_paths(m["prefix"], int(m["n"]), m["suffix"])
            missing = [n for n in names if not os.path.exists(n)]
            if missing:
                raise ConfigError(
                    f"Sharded spec {s!r} names {len(names)} shards but {len(missing)} "
                    f"are missing, e.g. {missing[0]!r}."
                )
            matches = names
        elif glob.has_magic(s):
            matches = _without_sidecars(s, sorted(glob.glob(s)))
            if not matches:
                raise ConfigError(f"No file matches the pattern {s!r}.")
        else:
            if not os.path.exists(s):
                raise ConfigError(f"No such file: {s!r}.")
            matches = [s]
        for p in matches:
            if p not in seen:
                seen.add(p)
                out.append(p)
    return out




def is_sharded_spec(source: str | os.PathLike[str]) -> bool:
    """True when ``source`` reads as ``PREFIX@N[.SUFFIX]`` and is not itself a file.

    >>> is_sharded_spec("out/train@4"), is_sharded_spec("out/train-*")
    (True, False)
    """
    s = os.fspath(source)
    return bool(_SHARD_RE.match(s)) and not os.path.exists(s)


def _without_sidecars(pattern: str, matches: list[str]) -> list[str]:
    """``matches`` less the index sidecars of other matches (see `expand_paths`)."""
    if pattern.endswith(INDEX_SUFFIX):
        return matches
    found = set(matches)
    return [
        m for m in matches if not (m.endswith(INDEX_SUFFIX) and m[: -len(INDEX_SUFFIX)] in found)
    ]
