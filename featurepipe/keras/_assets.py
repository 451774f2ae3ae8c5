"""Vocabularies of a layer's column specs as asset files of a ``.keras`` archive.

``DenseFeatures.get_config`` leaves vocabularies out of the JSON config (large
vocabularies make huge configs, and file paths in configs are unsafe to load)
and records ``[key, dtype, size]`` for each; ``save_assets`` writes one text file
per vocabulary (UTF-8, one value per line, integers in decimal), and
``load_assets`` reads them back. Between construction from a config and
``load_assets``, the specs hold placeholder vocabularies of the right sizes, so
weights of the right shapes can be built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from featurepipe.columns import ColumnSpecs, VocabularyColumn, walk_columns
from featurepipe.errors import ConfigError

__all__ = ["AssetVocabularies", "read_vocabularies", "split_vocabularies", "write_vocabularies"]

AssetVocabularies = list[list[Any]]  # [[key, dtype, size], ...]


def split_vocabularies(
    specs: ColumnSpecs,
) -> tuple[dict[str, Any], AssetVocabularies, dict[str, tuple[str | int, ...]]]:
    """The specs config without vocabularies, their ``[key, dtype, size]`` list and values.

    A vocabulary stays inline when one feature has two different vocabularies,
    or a value holds a line break (it would not fit a one-value-per-line file).
    """
    by_key: dict[str, tuple[str, tuple[str | int, ...]] | None] = {}
    for spec in walk_columns(specs.columns):
        if not isinstance(spec, VocabularyColumn) or spec.vocabulary is None:
            continue
        vocab = spec.load_vocabulary()
        entry = (spec.dtype, vocab)
        conflicting = spec.key in by_key and by_key[spec.key] != entry
        multiline = any(isinstance(v, str) and ("\n" in v or "\r" in v) for v in vocab)
        by_key[spec.key] = None if conflicting or multiline else entry
    moved = {k: v for k, v in by_key.items() if v is not None}
    config = _strip(specs.get_config(), set(moved))
    listing = [[k, dtype, len(vocab)] for k, (dtype, vocab) in sorted(moved.items())]
    return config, listing, {k: vocab for k, (_, vocab) in moved.items()}


def placeholder_specs(config: Mapping[str, Any], listing: AssetVocabularies) -> ColumnSpecs:
    """Specs from a stripped config, with placeholder vocabularies of the recorded sizes."""
    return ColumnSpecs.from_config(config).resolve(
        _Vocabularies({k: tuple(range(int(n))) for k, _, n in listing})
    )


def loaded_specs(
    config: Mapping[str, Any], vocabularies: Mapping[str, Sequence[str | int]]
) -> ColumnSpecs:
    """Specs from a stripped config with the real vocabularies."""
    return ColumnSpecs.from_config(config).resolve(_Vocabularies(vocabularies))


def write_vocabularies(
    dir_path: str, vocabularies: Mapping[str, Sequence[str | int]], listing: AssetVocabularies
) -> None:
    """Writes ``vocabulary_<i>.txt`` for the ``i``-th entry of ``listing``."""
    for i, (key, _, _) in enumerate(listing):
        lines = [str(v) for v in vocabularies[key]]
        data = "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")
        with open(os.path.join(dir_path, f"vocabulary_{i}.txt"), "wb") as f:
            f.write(data)


def read_vocabularies(
    dir_path: str, listing: AssetVocabularies
) -> dict[str, tuple[str | int, ...]]:
    """Reads what :func:`write_vocabularies` wrote, checking each size.

    Raises:
        ConfigError: if a file is missing or holds another number of values.
    """
    out: dict[str, tuple[str | int, ...]] = {}
    for i, (key, dtype, size) in enumerate(listing):
        path = os.path.join(dir_path, f"vocabulary_{i}.txt")
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "surrogateescape")
        except OSError as e:
            raise ConfigError(f"The vocabulary asset of {key!r} cannot be read: {e}") from e
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) != size:
            raise ConfigError(
                f"The vocabulary asset of {key!r} has {len(lines)} values; the config says {size}."
            )
        out[key] = tuple(int(v) for v in lines) if dtype == "int64" else tuple(lines)
    return out


class _Vocabularies:
    """An Artifacts implementation that only knows vocabularies."""

    def __init__(self, vocabularies: Mapping[str, Sequence[str | int]]) -> None:
        self._vocabularies = vocabularies

    def vocabulary(self, key: str) -> Sequence[str | int]:
        return self._vocabularies[key]

    def boundaries(self, key: str, num_bins: int) -> Sequence[float]:
        raise ConfigError(f"No boundaries of {key!r} are stored with the layer.")

    def moments(self, key: str) -> Mapping[str, float]:
        raise ConfigError(f"No moments of {key!r} are stored with the layer.")


def _strip(config: Any, keys: set[str]) -> Any:
    """A copy of a specs config with the vocabularies of ``keys`` set to None."""
    if isinstance(config, list):
        return [_strip(c, keys) for c in config]
    if not isinstance(config, dict):
        return config
    out = {k: _strip(v, keys) for k, v in config.items()}
    if out.get("class_name") == "VocabularyColumn":
        inner = dict(out["config"])
        if inner.get("key") in keys:
            inner["vocabulary"] = None
            inner["vocabulary_size"] = None
        out["config"] = inner
    return out
