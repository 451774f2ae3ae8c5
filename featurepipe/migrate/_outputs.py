"""The model-output half of ``featurepipe migrate check``: old SavedModel vs migrated.

:func:`compare_saved_models` feeds the same serialized ``tf.Example`` records
to every signature of two SavedModels -- the Estimator's export and the
migrated model's ``export_serving(..., signatures="estimator")`` -- and compares
them signature by signature and output key by output key: the signature names,
their input keys, output keys, dtypes and shapes (what a TensorFlow Serving
client depends on), and the values (numbers: the largest absolute difference
and the rows where it is largest; strings: the rows that differ).

A value differs when ``|new - old| > tolerance * max(1, |old|)``; a section is
faithful when no value differs and the contract (names, keys, dtypes, shapes)
is identical. TensorFlow is imported when the function is called; the records
are read with featurepipe's own reader (CRC-verified), so every row in the
report names its file, record number and byte offset.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from featurepipe.errors import ConfigError
from featurepipe.tfrecord import Record, expand_paths, iter_records

__all__ = ["compare_saved_models", "format_outputs", "resolve_saved_model"]


def resolve_saved_model(path: str | os.PathLike[str]) -> str:
    """The SavedModel directory that ``path`` names.

    ``path`` is a SavedModel directory (it holds ``saved_model.pb``), or a
    directory with an ``export/`` folder of timestamped SavedModels (what
    ``featurepipe migrate estimator`` and ``Estimator.export_saved_model``
    write; the newest is taken), or such an ``export/`` folder itself.

    Raises:
        ConfigError: ``path`` holds no SavedModel.

    Examples:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for ts in ("1700000000", "1800000000"):
        ...     (d / "export" / ts).mkdir(parents=True)
        ...     _ = (d / "export" / ts / "saved_model.pb").write_bytes(b"")
        >>> pathlib.Path(resolve_saved_model(d)).name
        '1800000000'
    """
    root = os.fspath(path)
    if os.path.isfile(os.path.join(root, "saved_model.pb")):
        return root
    for folder in (os.path.join(root, "export"), root):
        if not os.path.isdir(folder):
            continue
        stamps = sorted(
            (
                name
                for name in os.listdir(folder)
                if name.isdigit() and os.path.isfile(os.path.join(folder, name, "saved_model.pb"))
            ),
            key=int,
        )
        if stamps:
            return os.path.join(folder, stamps[-1])
    raise ConfigError(
        f"No SavedModel in {root!r}: expected a directory with saved_model.pb, or one with "
        "export/<timestamp>/saved_model.pb (what `featurepipe migrate estimator` and "
        "Estimator.export_saved_model write)."
    )


def _contract(loaded: Any) -> dict[str, dict[str, Any]]:
    """``{signature: {"inputs": {key: (dtype, shape)}, "outputs": {...}}}``."""
    out: dict[str, dict[str, Any]] = {}
    for name, fn in loaded.signatures.items():
        _, kwargs = fn.structured_input_signature
        inputs = {k: (spec.dtype.name, _shape(spec.shape)) for k, spec in kwargs.items()}
        outputs = {
            k: (spec.dtype.name, _shape(spec.shape)) for k, spec in fn.structured_outputs.items()
        }
        out[name] = {"inputs": inputs, "outputs": outputs}
    return out


def _shape(shape: Any) -> list[int] | None:
    if shape.rank is None:
        return None
    return [-1 if d is None else int(d) for d in shape.as_list()]


def _batches(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    batch_size: int,
    max_rows: int | None,
    compression: Any,
) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for seen, rec in enumerate(iter_records(expand_paths(data), compression=compression)):
        if max_rows is not None and seen >= max_rows:
            break
        batch.append(rec)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


class _KeyStats:
    """Running comparison of one output key."""

    def __init__(self, worst: int) -> None:
        self.rows = 0
        self.differing = 0
        self.max_abs_diff = 0.0
        self.worst = worst
        self._heap: list[tuple[float, int, dict[str, Any]]] = []
        self.problem: str | None = None

    def add(
        self,
        old: np.ndarray[Any, Any],
        new: np.ndarray[Any, Any],
        where: list[Record],
        first_row: int,
        tolerance: float,
    ) -> None:
        n = len(where)
        self.rows += n
        if old.shape != new.shape:
            self.problem = self.problem or f"shape {list(new.shape)} != old {list(old.shape)}"
            self.differing += n
            return
        a = old.reshape(n, -1)
        b = new.reshape(n, -1)
        if a.dtype.kind in "SUO" or b.dtype.kind in "SUO":
            row_bad = np.any(a.astype(object) != b.astype(object), axis=1)
            score = row_bad.astype(np.float64)
        else:
            a64 = a.astype(np.float64)
            diff = np.abs(b.astype(np.float64) - a64)
            row_bad = np.any(diff > tolerance * np.maximum(1.0, np.abs(a64)), axis=1)
            score = diff.max(axis=1) if diff.shape[1] else np.zeros(n)
            if score.size:
                self.max_abs_diff = max(self.max_abs_diff, float(score.max()))
        self.differing += int(row_bad.sum())
        for r in np.argsort(-score)[: self.worst]:
            r = int(r)
            if score[r] <= 0 and not row_bad[r]:
                break
            rec = where[r]
            entry = {
                "row": first_row + r,
                "path": rec.path,
                "record": rec.index,
                "offset": rec.offset,
                "old": _plain(a[r]),
                "new": _plain(b[r]),
                "abs_diff": float(score[r]) if a.dtype.kind not in "SUO" else None,
            }
            item = (float(score[r]), -(first_row + r), entry)
            if len(self._heap) < self.worst:
                heapq.heappush(self._heap, item)
            elif item[:2] > self._heap[0][:2]:
                heapq.heapreplace(self._heap, item)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "differing": self.differing,
            "max_abs_diff": self.max_abs_diff,
            "problem": self.problem,
            "worst_rows": [e for _, _, e in sorted(self._heap, key=lambda t: (-t[0], -t[1]))],
        }


def _plain(values: np.ndarray[Any, Any]) -> list[Any]:
    out: list[Any] = []
    for v in values.tolist():
        out.append(v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
    return out


def compare_saved_models(
    old: str | os.PathLike[str],
    new: str | os.PathLike[str],
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    tolerance: float = 1e-5,
    batch_size: int = 512,
    max_rows: int | None = None,
    worst: int = 5,
    compression: Any = "auto",
) -> dict[str, Any]:
    """Compares every signature of two SavedModels on the same records.

    Args:
        old: the Estimator's SavedModel (a directory; see :func:`resolve_saved_model`).
        new: the migrated model's SavedModel (or the ``OUT`` directory of
            ``featurepipe migrate estimator``).
        data: TFRecord files of serialized ``tf.Example`` (glob, list, ``PREFIX@N``).
        tolerance: numbers may differ by ``tolerance * max(1, |old|)``. Defaults to 1e-5.
        batch_size: records per call. Defaults to 512.
        max_rows: read at most this many records. Defaults to `None` (all).
        worst: rows shown per output key (largest differences first). Defaults to 5.
        compression: of the files; ``"auto"`` detects it. Defaults to `"auto"`.

    Returns:
        The ``outputs`` section of the ``migrate check`` report (JSON-ready):
        ``faithful``, ``old``, ``new``, ``rows``, ``tolerance``,
        ``missing_signatures`` / ``extra_signatures``, and per signature its
        contract differences and per output key ``rows``, ``differing``,
        ``max_abs_diff`` and ``worst_rows`` (row, file, record, offset, both values).

    Raises:
        ConfigError: a path that holds no SavedModel, or a signature that does
            not take one string tensor of serialized examples.
    """
    import tensorflow as tf

    old_dir, new_dir = resolve_saved_model(old), resolve_saved_model(new)
    old_model, new_model = tf.saved_model.load(old_dir), tf.saved_model.load(new_dir)
    old_c, new_c = _contract(old_model), _contract(new_model)
    names = sorted(set(old_c) & set(new_c))
    section: dict[str, Any] = {
        "old": old_dir,
        "new": new_dir,
        "tolerance": tolerance,
        "missing_signatures": sorted(set(old_c) - set(new_c)),
        "extra_signatures": sorted(set(new_c) - set(old_c)),
        "signatures": {},
    }
    stats: dict[str, dict[str, _KeyStats]] = {}
    calls: dict[str, tuple[str, Any, Any]] = {}
    contract_ok = not section["missing_signatures"] and not section["extra_signatures"]
    for name in names:
        o, n = old_c[name], new_c[name]
        problems = []
        if o["inputs"] != n["inputs"]:
            problems.append(f"inputs {_fmt(n['inputs'])} != old {_fmt(o['inputs'])}")
        missing = sorted(set(o["outputs"]) - set(n["outputs"]))
        extra = sorted(set(n["outputs"]) - set(o["outputs"]))
        if missing:
            problems.append(f"missing output keys {missing}")
        if extra:
            problems.append(f"extra output keys {extra}")
        for key in sorted(set(o["outputs"]) & set(n["outputs"])):
            if o["outputs"][key] != n["outputs"][key]:
                problems.append(
                    f"output {key!r}: {_fmt1(n['outputs'][key])} != old {_fmt1(o['outputs'][key])}"
                )
        contract_ok = contract_ok and not problems
        section["signatures"][name] = {"contract_problems": problems}
        keys = list(o["inputs"])
        if len(keys) != 1 or o["inputs"][keys[0]][0] != "string":
            raise ConfigError(
                f"Signature {name!r} of {old_dir} takes {_fmt(o['inputs'])}; `migrate check` "
                "compares signatures that take one string tensor of serialized tf.Example."
            )
        new_keys = list(n["inputs"])
        calls[name] = (keys[0], old_model.signatures[name], (new_keys, new_model.signatures[name]))
        stats[name] = {k: _KeyStats(worst) for k in sorted(set(o["outputs"]) & set(n["outputs"]))}
    rows = 0
    for batch in _batches(data, batch_size, max_rows, compression):
        serialized = tf.constant([r.data for r in batch])
        for name, (key, old_fn, (new_keys, new_fn)) in calls.items():
            got_old = old_fn(**{key: serialized})
            if len(new_keys) != 1:
                continue  # reported as a contract problem above
            got_new = new_fn(**{new_keys[0]: serialized})
            for out_key, st in stats[name].items():
                st.add(got_old[out_key].numpy(), got_new[out_key].numpy(), batch, rows, tolerance)
        rows += len(batch)
    values_ok = True
    for name, per_key in stats.items():
        outputs = {k: st.to_json() for k, st in per_key.items()}
        section["signatures"][name]["outputs"] = outputs
        values_ok = values_ok and all(
            v["differing"] == 0 and v["problem"] is None for v in outputs.values()
        )
    section["rows"] = rows
    section["faithful"] = bool(contract_ok and values_ok and rows > 0)
    if rows == 0:
        section["problem"] = "no records were read"
    return section


def _fmt(io: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {_fmt1(v)}" for k, v in sorted(io.items())) or "nothing"


def _fmt1(spec: tuple[str, Any]) -> str:
    dtype, shape = spec
    return f"{dtype}{shape}"


def format_outputs(section: dict[str, Any]) -> list[str]:
    """The human-readable lines of an :func:`compare_saved_models` section."""
    lines = [
        f"Model outputs: {section['old']} (old) vs {section['new']} (migrated) on "
        f"{section.get('rows', 0):,} rows (tolerance {section['tolerance']:g})"
    ]
    for what in ("missing", "extra"):
        names = section.get(f"{what}_signatures") or []
        if names:
            lines.append(f"  {what} signatures in the migrated model: {', '.join(names)}")
    for name, sig in sorted(section.get("signatures", {}).items()):
        lines.append(f"  signature {name}:")
        for problem in sig.get("contract_problems", []):
            lines.append(f"    contract: {problem}")
        for key, st in sorted(sig.get("outputs", {}).items()):
            status = "ok" if st["differing"] == 0 and st["problem"] is None else "DIFFERS"
            lines.append(
                f"    {key:<16} {status:<7} {st['differing']:,}/{st['rows']:,} rows differ, "
                f"max |diff| {st['max_abs_diff']:.3g}"
                + (f" ({st['problem']})" if st["problem"] else "")
            )
            if status != "ok":
                for w in st["worst_rows"]:
                    lines.append(
                        f"      row {w['row']:,} ({w['path']}, record {w['record']}, offset "
                        f"{w['offset']}): old {w['old']} new {w['new']}"
                    )
    if section.get("problem"):
        lines.append(f"  problem: {section['problem']}")
    lines.append(
        "  faithful: every signature gives the same outputs"
        if section.get("faithful")
        else "  NOT faithful: see above"
    )
    return lines
