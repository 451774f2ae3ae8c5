"""The tfrecord (vahidk/tfrecord) side of the torch-loader benchmark, in its own venv.

``bench/.venvs/tfrecord/bin/python bench/torch_loader/peer_tfrecord.py JSON``: the
``tfrecord`` package's ``TFRecordDataset`` (with its index, so that each DataLoader
worker reads its own share) in a ``DataLoader(batch_size=1024, num_workers=N)``
whose ``collate_fn`` computes the benchmark's ten columns in Python / numpy as a
user of that package writes them: ``pyfarmhash`` fingerprints for hashed ids and
crosses (TensorFlow's ``Fingerprint64`` / ``FingerprintCat64``), a dict lookup
for vocabularies, ``np.searchsorted`` for buckets, numpy for z-scores, then
torch tensors (``EmbeddingBag``'s values and offsets).

Notes on the package (tfrecord 1.14.6): it reads the CRC fields but does not
check them; with a ``description`` it raises on a missing feature, so it is
given none and decodes every feature of each record (the Criteo data has
missing values). Imports only the standard library, numpy, torch, farmhash and
tfrecord (the venv has no featurepipe and no TensorFlow). Prints one JSON line
like ``bench/torch_loader/worker.py``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

import farmhash
import numpy as np
import torch
from tfrecord.tools.tfrecord2idx import create_index
from tfrecord.torch.dataset import TFRecordDataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cols  # this folder: stdlib-only constants

MASK = (1 << 64) - 1
MUL = 0xC6A4A7935BD1E995


def fingerprint_cat64(a: int, b: int) -> int:
    """TensorFlow's FingerprintCat64 on Python ints (tsl/platform/fingerprint.h)."""
    r = a ^ MUL
    m = (b * MUL) & MASK
    r ^= ((m ^ (m >> 47)) * MUL) & MASK
    r = (r * MUL) & MASK
    r = ((r ^ (r >> 47)) * MUL) & MASK
    return r ^ (r >> 47)


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Collate:
    """Raw examples (dicts of numpy arrays / bytes) -> the ten columns as tensors."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.moments = {k: plan["moments"][k] for k in cols.NUMERIC}
        self.bounds = {k: np.asarray(plan["boundaries"][k], np.float32) for k in cols.BUCKETIZED}
        self.vocab = {
            k: {v.encode(): i for i, v in enumerate(plan["vocabularies"][k])}
            for k in (*cols.VOCAB, *cols.EMB_VOCAB)
        }

    @staticmethod
    def _ints(rows: list[dict[str, Any]], key: str) -> np.ndarray:
        return np.array([int(r[key][0]) if key in r and len(r[key]) else 0 for r in rows], np.int64)

    @staticmethod
    def _strings(rows: list[dict[str, Any]], key: str) -> list[bytes | None]:
        out: list[bytes | None] = []
        for r in rows:
            v = r.get(key)
            out.append(bytes(v) if isinstance(v, bytes | bytearray | memoryview) else None)
        return out

    @staticmethod
    def _ragged(ids: list[int | None]) -> tuple[torch.Tensor, torch.Tensor]:
        present = [i for i in ids if i is not None]
        lengths = np.array([0] + [0 if i is None else 1 for i in ids[:-1]], np.int64)
        return torch.tensor(present, dtype=torch.int64), torch.from_numpy(np.cumsum(lengths))

    def __call__(self, rows: list[dict[str, Any]]) -> tuple[dict[str, Any], torch.Tensor]:
        out: dict[str, Any] = {}
        for k in cols.NUMERIC:
            mean, var = self.moments[k]
            x = (self._ints(rows, k).astype(np.float32) - np.float32(mean)) / np.float32(
                np.sqrt(var)
            )
            out[k] = torch.from_numpy(x.reshape(-1, 1))
        for k in cols.BUCKETIZED:
            x = np.log(self._ints(rows, k).astype(np.float32) + np.float32(cols.LOG_OFFSET))
            ids = np.searchsorted(self.bounds[k], x, side="right").astype(np.int64)
            out[f"{k}_bucketized"] = (torch.from_numpy(ids), torch.arange(len(rows)))
        strings = {
            k: self._strings(rows, k)
            for k in {*cols.HASHED, *cols.CROSS, *cols.VOCAB, *cols.EMB_HASHED, *cols.EMB_VOCAB}
        }
        fps: dict[str, list[int | None]] = {
            k: [None if s is None else farmhash.fingerprint64(s) for s in strings[k]]
            for k in {*cols.HASHED, *cols.CROSS, *cols.EMB_HASHED}
        }
        for k in cols.HASHED:
            out[k] = self._ragged([None if f is None else f % cols.HASH_BINS for f in fps[k]])
        for k in cols.EMB_HASHED:
            out[f"{k}_embedding"] = self._ragged(
                [None if f is None else f % cols.HASH_BINS for f in fps[k]]
            )
        for k, name in [(k, k) for k in cols.VOCAB] + [
            (k, f"{k}_embedding") for k in cols.EMB_VOCAB
        ]:
            vocab = self.vocab[k]
            oov = len(vocab)  # one OOV bucket: every unknown value gets id len(vocab)
            out[name] = self._ragged([None if s is None else vocab.get(s, oov) for s in strings[k]])
        crossed: list[int | None] = []
        for row in zip(*(fps[k] for k in cols.CROSS), strict=True):
            if any(f is None for f in row):
                crossed.append(None)
                continue
            h = cols.DEFAULT_HASH_KEY
            for f in row:
                h = fingerprint_cat64(h, f)  # type: ignore[arg-type]
            crossed.append(h % cols.HASH_BINS)
        out["_X_".join(cols.CROSS)] = self._ragged(crossed)
        label = torch.from_numpy(self._ints(rows, "label"))
        return out, label


def _checksum(features: dict[str, Any]) -> dict[str, float]:
    out = {}
    for name, v in features.items():
        t = v[0] if isinstance(v, tuple) else v
        out[name] = float(t.double().sum())
    return out


def main() -> int:
    a = json.loads(sys.argv[1])
    with open(a["plan"]) as f:
        plan = json.load(f)
    index = a["index"]
    if a["workers"] > 0 and not os.path.exists(index):
        create_index(a["path"], index)
    # with an index and no worker shard, tfrecord starts at a random record: no index then
    ds = TFRecordDataset(a["path"], index if a["workers"] > 0 else None, description=None)
    dl = torch.utils.data.DataLoader(
        ds, batch_size=cols.BATCH_SIZE, num_workers=a["workers"], collate_fn=Collate(plan)
    )
    examples = batches = 0
    checksum: dict[str, float] = {}
    t0, c0 = time.perf_counter(), _cpu()
    it = iter(dl)
    for features, label in it:
        examples += int(label.shape[0])
        batches += 1
        if batches == 1:
            checksum = _checksum(features)
    del it
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    print(
        json.dumps(
            {
                "examples": examples,
                "batches": batches,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "checksum": checksum,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
