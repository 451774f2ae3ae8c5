"""Micro-benchmark of the C extension featurepipe._speedups against the pure-Python paths.

Measures, in one run on this machine:

* ``scan_records`` (framing + CRC-32C of length and data + a bytes object per
  record) in MB/s and records/s, on a file of ~600-byte records and on a file
  of 64 KiB records, next to a raw sequential read of the same file (the
  physical limit: ``readinto`` a reused buffer) and to the pure-Python scanner.
  "file read()" reads 4 MiB chunks with ``f.read`` (a fresh buffer each time,
  so page faults); "file readinto()" reuses one buffer;
* ``decode_columns`` records/s on Criteo-like Examples (label, 13 int64, 26
  8-char bytes features) against protobuf ``Example.FromString`` per record
  (parse only, and parse + gathering columns in Python).

Files are made under ``--dir`` (default: a temporary directory) and removed
afterwards; the page cache is warm (each file is read once before timing).

    python -m bench native [--mb 200] [--rows 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path

import crc32c

from featurepipe import _speedups as sp
from featurepipe.example.proto import example_pb2

CHUNK = 4 * 1024 * 1024


def _masked(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _write_file(path: Path, record_bytes: int, total_mb: int) -> int:
    """Random records of ``record_bytes`` each, framed, until ``total_mb``; returns count."""
    pool = os.urandom(record_bytes + 4096)
    n = 0
    size = 0
    with open(path, "wb") as f:
        parts: list[bytes] = []
        while size < total_mb * 1_000_000:
            start = (n * 7919) % 4096
            data = pool[start : start + record_bytes]
            head = struct.pack("<Q", len(data))
            parts.append(head + struct.pack("<I", _masked(head)))
            parts.append(data)
            parts.append(struct.pack("<I", _masked(data)))
            size += len(data) + 16
            n += 1
            if len(parts) > 30000:
                f.write(b"".join(parts))
                parts.clear()
        f.write(b"".join(parts))
    return n


_CLOCK: Callable[[], float] = time.perf_counter


def _best(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    best = float("inf")
    out = 0
    for _ in range(repeat):
        t0 = _CLOCK()
        out = fn()
        best = min(best, _CLOCK() - t0)
    return best, out


def _raw_read(path: Path) -> int:
    buf = bytearray(CHUNK)
    total = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                return total
            total += n


def _scan_file(path: Path, scan: Callable[..., tuple[list[bytes], int, int]]) -> int:
    count = 0
    rest = b""
    with open(path, "rb", buffering=0) as f:
        while True:
            chunk = f.read(CHUNK)
            buf = rest + chunk if rest else chunk
            recs, pos, status = scan(buf, 0, True, 1 << 30)
            count += len(recs)
            if status != 0:
                raise RuntimeError(f"scan stopped with status {status}")
            rest = buf[pos:]
            if not chunk:
                if rest:
                    raise RuntimeError("trailing bytes")
                return count


def _scan_file_readinto(path: Path) -> int:
    """Reader design without fresh allocations: ``readinto`` one reused buffer."""
    buf = bytearray(2 * CHUNK)
    mv = memoryview(buf)
    have = count = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            got = f.readinto(mv[have : have + CHUNK])
            have += got
            recs, pos, status = sp.scan_records(mv[:have], 0, True, 1 << 30)
            count += len(recs)
            if status != 0:
                raise RuntimeError(f"scan stopped with status {status}")
            rest = have - pos
            if rest > CHUNK:  # a record larger than the buffer: grow it
                mv.release()
                buf.extend(bytes(rest))
                mv = memoryview(buf)
            mv[:rest] = mv[pos:have]
            have = rest
            if not got:
                if have:
                    raise RuntimeError("trailing bytes")
                return count


def _py_scan() -> Callable[..., tuple[list[bytes], int, int]] | None:
    try:
        from featurepipe.tfrecord._framing import scan_records_py
    except ImportError:
        return None
    return scan_records_py


def _scan_memory(data: bytes, verify: bool) -> int:
    """Scan an in-memory file in 4 MiB windows (no I/O; records freed per window)."""
    mv = memoryview(data)
    pos = count = 0
    while pos < len(data):
        recs, used, _ = sp.scan_records(mv[pos : pos + CHUNK], 0, verify, 1 << 30)
        count += len(recs)
        pos += used
    return count


def bench_scan(workdir: Path, mb: int, repeat: int) -> list[str]:
    """Scan rows for a file of ~600-byte records and one of 64 KiB records."""
    lines = []
    for label, size in (("600 B records", 600), ("64 KiB records", 64 * 1024)):
        path = workdir / f"scan-{size}.tfrecord"
        n = _write_file(path, size, mb)
        nbytes = path.stat().st_size
        _raw_read(path)  # warm the page cache
        data = path.read_bytes()
        rows = [
            ("raw read (readinto 4 MiB)", _best(partial(_raw_read, path), repeat)[0]),
            (
                "C scan_records, file read(), verify",
                _best(partial(_scan_file, path, sp.scan_records), repeat)[0],
            ),
            (
                "C scan_records, file readinto(), verify",
                _best(partial(_scan_file_readinto, path), repeat)[0],
            ),
            (
                "C scan_records, in memory, verify",
                _best(partial(_scan_memory, data, True), repeat)[0],
            ),
            (
                "C scan_records, in memory, no verify",
                _best(partial(_scan_memory, data, False), repeat)[0],
            ),
        ]
        del data
        py = _py_scan()
        if py is not None:
            rows.append(
                (
                    "Python scan_records_py, file read(), verify",
                    _best(partial(_scan_file, path, py), 1)[0],
                )
            )
        t_raw = rows[0][1]
        lines.append(f"{label}: {n} records, {nbytes / 1e6:.0f} MB")
        for name, t in rows:
            lines.append(
                f"  {name:40s} {nbytes / t / 1e6:9.0f} MB/s {n / t / 1e6:8.3f} M rec/s"
                f"  ({t_raw / t:6.1%} of raw read)"
            )
        path.unlink()
    return lines


def _criteo(rows: int) -> list[bytes]:
    try:
        from bench.datagen import criteo_examples

        return list(criteo_examples(rows, seed=0))
    except ImportError:
        recs = []
        for i in range(rows):
            ex = example_pb2.Example()
            ex.features.feature["label"].int64_list.value.append(i % 2)
            for j in range(13):
                ex.features.feature[f"I{j + 1}"].int64_list.value.append((i * j) % 1000)
            for j in range(26):
                ex.features.feature[f"C{j + 1}"].bytes_list.value.append(
                    f"{(i * 31 + j) % 100000:08x}".encode()
                )
            recs.append(ex.SerializeToString(deterministic=True))
        return recs


def _protobuf_parse(records: Iterable[bytes]) -> int:
    parse = example_pb2.Example.FromString
    n = 0
    for r in records:
        parse(r)
        n += 1
    return n


def _protobuf_columns(records: Sequence[bytes]) -> int:
    """Per-record protobuf parsing into Python column lists (the shape decode_columns returns)."""
    parse = example_pb2.Example.FromString
    cols: dict[str, list[object]] = {}
    for r in records:
        for name, feat in parse(r).features.feature.items():
            which = feat.WhichOneof("kind")
            if which is not None:
                cols.setdefault(name, []).extend(getattr(feat, which).value)
    return len(cols)


def bench_decode(rows: int, repeat: int, batch: int) -> list[str]:
    recs = _criteo(rows)
    avg = sum(map(len, recs)) / len(recs)
    batches = [recs[i : i + batch] for i in range(0, len(recs), batch)]

    def c_decode() -> int:
        for b in batches:
            _, _, reason = sp.decode_columns(b)
            assert reason == "", reason
        return 0

    rows_out = [
        (
            "protobuf FromString per record (parse only)",
            _best(partial(_protobuf_parse, recs), repeat)[0],
        ),
        (
            "protobuf FromString + Python column lists",
            _best(partial(_protobuf_columns, recs), repeat)[0],
        ),
        (f"C decode_columns, batches of {batch}", _best(c_decode, repeat)[0]),
    ]
    try:
        from featurepipe.example import decode_examples

        def lead_decode() -> int:
            for b in batches:
                decode_examples(b)
            return 0

        name = f"featurepipe.decode_examples, batches of {batch}"
        rows_out.append((name, _best(lead_decode, repeat)[0]))
    except ImportError:
        pass
    base = rows_out[0][1]
    lines = [f"decode: {len(recs)} Criteo-like Examples, {avg:.0f} B average"]
    for name, t in rows_out:
        rate = len(recs) / t / 1e6
        lines.append(f"  {name:48s} {rate:7.3f} M rec/s  ({base / t:5.2f}x FromString)")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench native", description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200, help="size of each scan test file, MB")
    ap.add_argument("--rows", type=int, default=100_000, help="Criteo-like Examples to decode")
    ap.add_argument("--batch", type=int, default=1024, help="records per decode_columns call")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs")
    ap.add_argument("--dir", default=None, help="where to write the scan files")
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time, or this process's CPU time (steadier on a busy machine)",
    )
    args = ap.parse_args(argv)
    global _CLOCK  # noqa: PLW0603 - set once from the command line
    _CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"crc backend: {sp.crc_backend}; cpus: {os.cpu_count()}; clock: {args.clock}", flush=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        for line in bench_scan(Path(d), args.mb, args.repeat):
            print(line, flush=True)
    for line in bench_decode(args.rows, args.repeat, args.batch):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
