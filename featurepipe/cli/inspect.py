"""``featurepipe inspect``: count, head, schema, verify and index TFRecord files.

Works on any TFRecord file, uncompressed, GZIP or ZLIB (sniffed from the
first bytes), without TensorFlow. Every verb takes ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Iterator
from typing import IO, Any

from featurepipe.cli._common import (
    EXIT_DATA,
    EXIT_OK,
    READ_COMPRESSIONS,
    Progress,
    error,
    non_negative_int,
    print_json,
)

__all__ = ["add_parser"]

_DESCRIPTION = """\
Look inside TFRecord files of tf.Example: count records, print the first
ones, infer the schema, verify every CRC and payload, or write an index.
Compression (GZIP / ZLIB) is detected from each file's first bytes.
"""

_COMPRESSION_HELP = "compression of the files; default: detect from the first bytes"


def add_parser(subparsers: Any) -> None:
    """Register ``inspect`` and its verbs."""
    p = subparsers.add_parser(
        "inspect",
        help="look inside TFRecord files (count, head, schema, stats, validate, compare, verify, "
        "index)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(_parser=p)
    verbs = p.add_subparsers(dest="inspect_verb", metavar="VERB")

    c = _verb(
        verbs,
        "count",
        "records per file and in total",
        "Count records, per file and in total. A current index sidecar (.fpidx, see "
        "`featurepipe inspect index`) answers at once; otherwise the file is scanned and "
        "verified.",
        "featurepipe inspect count data/train-*.tfrecord.gz --json",
    )
    c.add_argument("paths", nargs="+", metavar="PATH", help="files, globs or PREFIX@N")
    c.add_argument("--no-index", action="store_true", help="scan even when an index exists")
    c.set_defaults(func=_count)

    h = _verb(
        verbs,
        "head",
        "print the first Examples",
        "Print the first N Examples of a file, one block per record (or one JSON object "
        "per line with --json: feature -> {KIND: [values]}).",
        "featurepipe inspect head data.tfrecord -n 2 --json",
    )
    h.add_argument("path", metavar="PATH")
    h.add_argument("-n", "--num", type=non_negative_int, default=5, help="how many (default 5)")
    h.add_argument(
        "--max-values", type=non_negative_int, default=10, help="values shown per feature (text)"
    )
    h.set_defaults(func=_head)

    s = _verb(
        verbs,
        "schema",
        "infer the schema",
        "Infer the schema (kind, shape, presence of each feature) from the Examples and "
        "print it; --json prints featurepipe's schema JSON, usable as `convert --schema`. "
        "--with-domains also proposes constraints for `inspect validate`: presence, values "
        "per example, string domains (the exact vocabulary, up to --max-domain-size values) "
        "and numeric min / max, for you to review and edit (the min / max are this data's "
        "extremes: widen them, new data often goes past them).",
        "featurepipe inspect schema data/*.tfrecord --json --with-domains > schema.json",
    )
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.add_argument(
        "--limit", type=non_negative_int, default=None, help="infer from the first N records only"
    )
    s.add_argument(
        "--with-domains",
        action="store_true",
        help="also infer constraints: presence, value counts, domains (for inspect validate)",
    )
    s.add_argument(
        "--max-domain-size",
        type=non_negative_int,
        default=100,
        help="largest vocabulary turned into a string domain (default 100)",
    )
    s.set_defaults(func=_schema)

    v = _verb(
        verbs,
        "verify",
        "check every record; exit 1 on any problem",
        "Read every record of every file, verify both CRCs of each and parse each payload "
        "as a tf.Example; report every problem with its record index, byte offset and "
        "reason, then exit 1 if there was any. Damage is skipped over, so one bad record "
        "does not hide the problems after it.",
        "featurepipe inspect verify data/*.tfrecord --json",
    )
    v.add_argument("paths", nargs="+", metavar="PATH")
    v.add_argument(
        "--frames-only",
        action="store_true",
        help="check only the TFRecord framing, not that payloads are tf.Examples",
    )
    v.set_defaults(func=_verify)

    i = _verb(
        verbs,
        "index",
        "write the .fpidx index sidecar",
        "Scan (and verify) each file and write PATH.fpidx beside it: an O(1) record count, "
        "random access to record i and exact splits into N parts.",
        "featurepipe inspect index data/*.tfrecord",
    )
    i.add_argument("paths", nargs="+", metavar="PATH")
    i.set_defaults(func=_index)

    import importlib

    try:
        stats = importlib.import_module("featurepipe.cli.stats")
    except ModuleNotFoundError as e:  # pragma: no cover - partial install
        if e.name != "featurepipe.cli.stats":
            raise
    else:
        stats.add_parser(verbs)
    try:
        validate = importlib.import_module("featurepipe.cli.validate")
    except ModuleNotFoundError as e:  # pragma: no cover - partial install
        if e.name != "featurepipe.cli.validate":
            raise
    else:
        validate.add_parser(verbs)


def _verb(verbs: Any, name: str, help_: str, description: str, example: str) -> Any:
    p = verbs.add_parser(
        name,
        help=help_,
        description=description,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    if name != "index":
        p.add_argument(
            "--compression", choices=READ_COMPRESSIONS, default="auto",
            help=_COMPRESSION_HELP,
        )
    return p


def _paths(patterns: list[str]) -> list[str]:
    from featurepipe.tfrecord import expand_paths

    return expand_paths(patterns)


def _tracked(path: str, label: str) -> tuple[IO[bytes], Progress]:
    """Open ``path`` and a progress bar driven by the raw file position."""
    f = open(path, "rb")  # noqa: SIM115 - closed by the caller
    return f, Progress(f"{label} {os.path.basename(path)}", os.path.getsize(path))


def _records(
    path: str, compression: str, label: str, **kw: Any
) -> Iterator[Any]:
    """Iterate `Record`s of one file with a progress bar."""
    from featurepipe.tfrecord import iter_records

    f, bar = _tracked(path, label)
    try:
        for n, rec in enumerate(
            iter_records(f, compression=compression, **kw),  # type: ignore[arg-type]
            1,
        ):
            if not n & 0x3FF:
                bar.update(f.tell(), n)
            yield rec._replace(path=path)
    finally:
        bar.close()
        f.close()


# --------------------------------------------------------------------------- count


def _count(args: argparse.Namespace) -> int:
    from featurepipe.tfrecord import load_index

    files: list[dict[str, Any]] = []
    status = EXIT_OK
    for path in _paths(args.paths):
        entry: dict[str, Any] = {"path": path}
        idx = None if args.no_index else load_index(path, header_only=True)
        if idx is not None:
            entry["records"] = idx.count
            entry["source"] = "index"
        else:
            n, problem = _count_file(path, args.compression)
            if problem is not None:
                status = EXIT_DATA
                entry["error"] = problem
                error(problem)
            entry["records"] = n
            entry["source"] = "scan"
        files.append(entry)
    total = sum(f["records"] for f in files)
    if args.json:
        print_json({"files": files, "total": total})
    else:
        width = max(len(f"{total:,}"), 7)
        for f in files:
            mark = "" if "error" not in f else "  (damaged: counted up to the damage)"
            print(f"{f['records']:>{width},}  {f['path']}{mark}")
        if len(files) > 1:
            print(f"{total:>{width},}  total")
    return status


def _count_file(path: str, compression: str) -> tuple[int, str | None]:
    """Count (verifying) without materialising records; ``(count so far, error)``."""
    from featurepipe.errors import DataError
    from featurepipe.tfrecord import count_frames

    f, bar = _tracked(path, "count")
    seen = 0

    def progress(total: int) -> None:
        nonlocal seen
        seen = total
        bar.update(f.tell(), total)

    try:
        return count_frames(f, compression=compression, progress=progress), None  # type: ignore[arg-type]
    except DataError as e:  # names the file: it is the file object's name
        return seen, str(e)
    finally:
        bar.close()
        f.close()


# --------------------------------------------------------------------------- head


def _head(args: argparse.Namespace) -> int:
    from featurepipe.example import decode_example, feature_to_json

    path = _paths([args.path])[0]
    for k, rec in enumerate(_records(path, args.compression, "head")):
        if k >= args.num:
            break
        ex = decode_example(rec.data, path=path, record=rec.index, offset=rec.offset)
        if args.json:
            obj = {name: feature_to_json(feat) for name, feat in ex.items()}
            print(json.dumps(obj, ensure_ascii=False, allow_nan=False))
            continue
        if k:
            print()
        print(f"record {rec.index}  (offset {rec.offset}, {len(rec.data)} bytes)")
        if not ex:
            print("  (no features)")
        width = max((len(n) for n in ex), default=0)
        for name, feat in ex.items():
            print(f"  {name:<{width}}  {feat.kind or 'none':<5}  {_show(feat, args.max_values)}")
    return EXIT_OK


def _show(feat: Any, limit: int) -> str:
    vals = list(feat.values[:limit])
    if feat.kind == "bytes":
        shown = []
        for v in vals:
            try:
                shown.append(repr(v.decode("utf-8")))
            except UnicodeDecodeError:
                shown.append(f"b64:{base64.b64encode(v).decode()}")
        text = ", ".join(shown)
    elif feat.kind == "float":
        from featurepipe.example import float32_repr

        text = ", ".join(str(float32_repr(float(v))).lower() for v in vals)
    else:
        text = ", ".join(str(int(v)) for v in vals)
    more = len(feat.values) - len(vals)
    return f"[{text}{f', ... (+{more} more)' if more > 0 else ''}]"


# --------------------------------------------------------------------------- schema


def _schema(args: argparse.Namespace) -> int:
    from featurepipe.example import SchemaInferrer, add_records

    inf = SchemaInferrer()
    stats_acc = None
    adder: Any = add_records
    if args.with_domains:
        from featurepipe.analysis import VALIDATION_TOP_K, StatisticsAccumulator, StatsOptions

        stats_acc = StatisticsAccumulator(StatsOptions(top_k=VALIDATION_TOP_K))
        adder = _records_with_statistics(stats_acc)
    left = args.limit
    for path in _paths(args.paths):
        if left is not None and left <= 0:
            break

        def limited(path: str = path) -> Iterator[bytes]:
            nonlocal left
            for rec in _records(path, args.compression, "schema"):
                if left is not None:
                    if left <= 0:
                        return
                    left -= 1
                yield rec.data

        adder(inf, limited(), path=path)
    schema = inf.extract()
    conflicts = inf.conflicts
    if stats_acc is not None:
        from featurepipe.analysis import infer_constraints

        schema = infer_constraints(
            stats_acc.extract(), schema, max_domain_size=args.max_domain_size
        )
    if args.json:
        out = schema.to_dict()
        out["records"] = inf.num_rows
        if conflicts:
            out["kind_conflicts"] = conflicts
        print_json(out)
    else:
        counts = inf.feature_counts()
        print(f"{inf.num_rows:,} records")
        rows = [("feature", "kind", "shape", "required", "present", "values/row")]
        for f in schema:
            c = counts[f.name]
            shape = "var" if f.shape is None else str(list(f.shape))
            present = f"{c['present'] / inf.num_rows:.1%}" if inf.num_rows else "-"
            per_row = (
                f"{c['min_count']}" if c["min_count"] == c["max_count"]
                else f"{c['min_count']}..{c['max_count']}"
            )
            rows.append((f.name, f.kind, shape, "yes" if f.required else "no", present, per_row))
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        if schema.constraints:
            print("\nconstraints (edit the --json output to change them):")
            for fc in schema.constraints:
                print(f"  {fc.name}: {json.dumps(fc.to_dict(), ensure_ascii=False)}")
    for name, kinds in sorted(conflicts.items()):
        error(
            f"feature {name!r} has more than one kind: "
            + ", ".join(f"{k} in {n:,} records" for k, n in sorted(kinds.items())),
            hint="tf.io.parse_example fails on such data; fix the writer or convert again",
        )
    return EXIT_DATA if conflicts else EXIT_OK


def _records_with_statistics(acc: Any) -> Any:
    """An ``add_records`` that also feeds each decoded batch to a statistics accumulator.

    A batch in which a feature has two kinds goes to the schema inferrer
    Example by Example (as ``add_records`` does) and is left out of the
    statistics; the schema then reports the kind conflict.
    """
    from featurepipe.errors import ExampleDecodeError
    from featurepipe.example import decode_example, decode_examples

    def add(inferrer: Any, records: Iterator[bytes], *, path: str | None = None) -> None:
        batch: list[bytes] = []
        first = 0

        def flush() -> None:
            nonlocal first
            try:
                cols = decode_examples(batch, path=path, first_index=first)
            except ExampleDecodeError as e:
                if e.reason != "mixed_kind":
                    raise
                for i, data in enumerate(batch):
                    inferrer.add_example(decode_example(data, path=path, record=first + i))
            else:
                inferrer.add_batch(cols)
                acc.add(cols)
            first += len(batch)
            batch.clear()

        for data in records:
            batch.append(data)
            if len(batch) >= 4096:
                flush()
        if batch:
            flush()

    return add


# --------------------------------------------------------------------------- verify


def _verify(args: argparse.Namespace) -> int:
    from featurepipe.errors import DataError
    from featurepipe.example import decode_example, decode_examples
    from featurepipe.tfrecord import CorruptionReport

    files: list[dict[str, Any]] = []
    all_ok = True
    for path in _paths(args.paths):
        report = CorruptionReport()
        problems: list[dict[str, Any]] = []
        good = 0
        batch: list[Any] = []

        def check(batch: list[Any], problems: list[dict[str, Any]] = problems) -> int:
            """Decode a batch; on failure find each bad record. Returns the good count."""
            try:
                decode_examples([r.data for r in batch])
                return len(batch)
            except DataError:
                pass
            ok = 0
            for r in batch:
                try:
                    decode_example(r.data)
                    ok += 1
                except DataError as e:
                    problems.append(
                        {"record": r.index, "offset": r.offset, "reason": e.reason,
                         "detail": e.detail}
                    )
            return ok

        try:
            for rec in _records(path, args.compression, "verify", on_corrupt="skip",
                                report=report):
                if args.frames_only:
                    good += 1
                    continue
                batch.append(rec)
                if len(batch) >= 1024:
                    good += check(batch)
                    batch = []
            if batch:
                good += check(batch)
        except DataError as e:  # not recoverable by skipping (e.g. unreadable)
            problems.append({"record": e.record, "offset": e.offset, "reason": e.reason,
                             "detail": e.detail})
        except OSError as e:
            problems.append({"record": None, "offset": None, "reason": "io_error",
                             "detail": str(e)})
        for s in report.skipped:
            problems.append(
                {"record": s.record, "offset": s.offset, "reason": s.reason,
                 "detail": f"{s.length} bytes skipped"}
            )
        problems.sort(key=lambda p: (p["offset"] is None, p["offset"] or 0))
        ok = not problems
        all_ok &= ok
        files.append({"path": path, "ok": ok, "records": good, "problems": problems})
    if args.json:
        print_json({"files": files})
    else:
        for f in files:
            state = "OK" if f["ok"] else f"DAMAGED ({len(f['problems'])} problem(s))"
            print(f"{f['path']}: {state}, {f['records']:,} intact records")
            for p in f["problems"]:
                print(
                    f"  record {p['record']}, offset {p['offset']}: {p['reason']}: {p['detail']}"
                )
    if not all_ok and not args.json:
        print("verify failed: at least one file is damaged", file=sys.stderr)
    return EXIT_OK if all_ok else EXIT_DATA


# --------------------------------------------------------------------------- index


def _index(args: argparse.Namespace) -> int:
    from featurepipe.errors import DataError
    from featurepipe.tfrecord import build_index, index_path

    files = []
    status = EXIT_OK
    for path in _paths(args.paths):
        try:
            idx = build_index(path)
            files.append({"path": path, "records": idx.count, "index": index_path(path)})
            if not args.json:
                print(f"{path}: {idx.count:,} records -> {index_path(path)}")
        except DataError as e:
            status = EXIT_DATA
            error(f"{e} (no index written)")
            files.append({"path": path, "error": str(e)})
    if args.json:
        print_json({"files": files})
    return status
