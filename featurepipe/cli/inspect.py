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
    Progress,
    add_read_compression,
    error,
    non_negative_int,
    print_json,
)

__all__ = ["add_parser"]

_DESCRIPTION = """\
Look inside TFRecord files: count records, print the first ones, infer the
schema, verify every CRC and payload, or write an index. Payloads may be
tf.Example, tf.SequenceExample (context and feature lists are shown apart) or
other bytes (shown as a length and a short preview). Compression (GZIP / ZLIB)
is detected from each file's first bytes.
"""

_PAYLOAD_HELP = (
    "what the records must be: example, sequence_example, or any bytes; default auto: "
    "each record's kind is detected, and a file is held to the kind most of its records have"
)
_KIND_LABEL = {"example": "Example", "sequence_example": "SequenceExample", "other": "other bytes"}
_PREVIEW_BYTES = 32


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
        "print the first records",
        "Print the first N records of a file, one block per record (or one JSON object "
        "per line with --json: feature -> {KIND: [values]} for an Example; "
        '{"context": {...}, "feature_lists": {NAME: [{KIND: [values]}, ...]}} for a '
        'SequenceExample; {"other": {"length": N, "hex": ..., "base64": ...}} (the first '
        f"{_PREVIEW_BYTES} bytes) for other bytes).",
        "featurepipe inspect head data.tfrecord -n 2 --json",
    )
    h.add_argument("path", metavar="PATH")
    h.add_argument("-n", "--num", type=non_negative_int, default=5, help="how many (default 5)")
    h.add_argument(
        "--max-values", type=non_negative_int, default=10, help="values shown per feature (text)"
    )
    h.add_argument(
        "--payload", choices=("auto", "example", "sequence_example", "any"), default="auto",
        help="read every record as this kind (an error when one is not); default: detect",
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
        "Read every record of every file, verify both CRCs of each and detect each "
        "payload's kind (tf.Example, tf.SequenceExample or other bytes; the counts are "
        "shown per file); report every problem with its record index, byte offset and "
        "reason, then exit 1 if there was any. A file is damaged for framing or compression "
        "damage, and for records that do not decode as the file's kind: with --payload "
        "auto (the default) the kind most of its records have, so a file of Examples with "
        "one undecodable record is damaged while a file of raw bytes is not. Damage is "
        "skipped over, so one bad record does not hide the problems after it.",
        "featurepipe inspect verify data/*.tfrecord --json",
    )
    v.add_argument("paths", nargs="+", metavar="PATH")
    v.add_argument(
        "--frames-only",
        action="store_true",
        help="check only the TFRecord framing, not the payloads (same as --payload any, "
        "without counting kinds)",
    )
    v.add_argument(
        "--payload", choices=("auto", "example", "sequence_example", "any"), default="auto",
        help=_PAYLOAD_HELP,
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
        add_read_compression(p)
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
    from featurepipe.example import (
        decode_example,
        decode_sequence_example,
        feature_to_json,
        payload_kind,
    )

    path = _paths([args.path])[0]
    for k, rec in enumerate(_records(path, args.compression, "head")):
        if k >= args.num:
            break
        kind = args.payload
        if kind == "auto":
            kind = payload_kind(rec.data)
        elif kind == "any":
            kind = "other"
        where = {"path": path, "record": rec.index, "offset": rec.offset}
        if not args.json and k:
            print()
        if kind == "other":
            _head_other(rec, args.json)
            continue
        if kind == "sequence_example":
            seq = decode_sequence_example(rec.data, **where)
            if args.json:
                obj: dict[str, Any] = {
                    "context": {n: feature_to_json(f) for n, f in seq.context.items()},
                    "feature_lists": {
                        n: [feature_to_json(f) for f in steps]
                        for n, steps in seq.feature_lists.items()
                    },
                }
                print(json.dumps(obj, ensure_ascii=False, allow_nan=False))
                continue
            print(
                f"record {rec.index}  (offset {rec.offset}, {len(rec.data)} bytes, "
                "SequenceExample)"
            )
            print("  context:")
            _print_features(seq.context, args.max_values, "    ")
            print("  feature lists:")
            if not seq.feature_lists:
                print("    (no feature lists)")
            width = max((len(n) for n in seq.feature_lists), default=0)
            for name, steps in seq.feature_lists.items():
                kinds = {f.kind for f in steps if f.kind is not None}
                shown = ", ".join(_show(f, args.max_values) for f in steps[: args.max_values])
                more = len(steps) - min(len(steps), args.max_values)
                print(
                    f"    {name:<{width}}  {(kinds.pop() if len(kinds) == 1 else 'none'):<5}  "
                    f"{len(steps)} steps: [{shown}"
                    f"{f', ... (+{more} more steps)' if more > 0 else ''}]"
                )
            continue
        ex = decode_example(rec.data, **where)
        if args.json:
            obj = {name: feature_to_json(feat) for name, feat in ex.items()}
            print(json.dumps(obj, ensure_ascii=False, allow_nan=False))
            continue
        print(f"record {rec.index}  (offset {rec.offset}, {len(rec.data)} bytes)")
        _print_features(ex, args.max_values, "  ")
    return EXIT_OK


def _print_features(features: dict[str, Any], limit: int, indent: str) -> None:
    if not features:
        print(f"{indent}(no features)")
    width = max((len(n) for n in features), default=0)
    for name, feat in features.items():
        print(f"{indent}{name:<{width}}  {feat.kind or 'none':<5}  {_show(feat, limit)}")


def _head_other(rec: Any, as_json: bool) -> None:
    """A record that is neither an Example nor a SequenceExample: length and a preview."""
    head = bytes(rec.data[:_PREVIEW_BYTES])
    more = len(rec.data) > len(head)
    if as_json:
        obj = {
            "other": {
                "length": len(rec.data),
                "hex": head.hex(),
                "base64": base64.b64encode(head).decode(),
                "truncated": more,
            }
        }
        print(json.dumps(obj))
        return
    print(
        f"record {rec.index}  (offset {rec.offset}, {len(rec.data)} bytes, other bytes: "
        "not a tf.Example or tf.SequenceExample)"
    )
    dots = " ..." if more else ""
    print(f"  hex     {head.hex(' ')}{dots}")
    print(f"  base64  {base64.b64encode(head).decode()}{dots}")


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


class _FeatureListCounts:
    """Schema facts of the feature lists of SequenceExamples: kinds, presence, steps, values."""

    def __init__(self) -> None:
        self.lists: dict[str, dict[str, Any]] = {}

    def add(self, batch: Any) -> None:
        for name, col in batch.feature_lists.items():
            st = self.lists.setdefault(
                name, {"kinds": {}, "present": 0, "steps": None, "values_per_step": None}
            )
            present = int(col.present.sum())
            st["present"] += present
            if col.kind is not None:
                st["kinds"][col.kind] = st["kinds"].get(col.kind, 0) + present
            steps = col.step_lengths[col.present]
            if steps.size:
                st["steps"] = _widen(st["steps"], int(steps.min()), int(steps.max()))
            if col.value_lengths.size:
                st["values_per_step"] = _widen(
                    st["values_per_step"], int(col.value_lengths.min()),
                    int(col.value_lengths.max()),
                )

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for name in sorted(self.lists):
            st = self.lists[name]
            kinds = st["kinds"]
            out[name] = {
                "kind": next(iter(kinds)) if len(kinds) == 1 else None,
                "present": st["present"],
                "steps": st["steps"] or [0, 0],
                "values_per_step": st["values_per_step"] or [0, 0],
            }
            if len(kinds) > 1:
                out[name]["kinds"] = dict(sorted(kinds.items()))
        return out


def _widen(span: list[int] | None, lo: int, hi: int) -> list[int]:
    return [lo, hi] if span is None else [min(span[0], lo), max(span[1], hi)]


def _schema(args: argparse.Namespace) -> int:
    from featurepipe.errors import ExampleDecodeError
    from featurepipe.example import (
        SchemaInferrer,
        add_records,
        decode_sequence_example,
        decode_sequence_examples,
        payload_kind,
    )

    inf = SchemaInferrer()
    stats_acc = None
    adder: Any = add_records
    if args.with_domains:
        from featurepipe.analysis import VALIDATION_TOP_K, StatisticsAccumulator, StatsOptions

        stats_acc = StatisticsAccumulator(StatsOptions(top_k=VALIDATION_TOP_K))
        adder = _records_with_statistics(stats_acc)
    kinds = {"example": 0, "sequence_example": 0, "other": 0}
    lists = _FeatureListCounts()
    records = 0
    left = args.limit

    def add_sequences(batch: list[Any], path: str) -> None:
        try:
            b = decode_sequence_examples(
                [r.data for r in batch], path=path, first_index=batch[0].index
            )
        except ExampleDecodeError as e:
            if e.reason != "mixed_kind":
                raise
            for r in batch:  # count the conflict instead of failing on it
                seq = decode_sequence_example(r.data, path=path, record=r.index)
                inf.add_example(seq.context)
            return
        inf.add_batch(b.context)
        if stats_acc is not None:
            stats_acc.add(b.context)
        lists.add(b)

    for path in _paths(args.paths):
        if left is not None and left <= 0:
            break
        batch: list[Any] = []

        def flush(batch: list[Any], path: str = path) -> None:
            routed = [payload_kind(r.data, check=False) for r in batch]
            if all(k == "example" for k in routed):
                try:
                    adder(inf, (r.data for r in batch), path=path)
                    kinds["example"] += len(batch)
                    return
                except ExampleDecodeError:
                    routed = [payload_kind(r.data) for r in batch]
            else:
                routed = [payload_kind(r.data) for r in batch]
            for k in routed:
                kinds[k] += 1
            if kinds["sequence_example"]:
                # Examples are SequenceExamples with no feature lists: one decoder for both
                protos = [r for r, k in zip(batch, routed, strict=True) if k != "other"]
                if protos:
                    add_sequences(protos, path)
            else:
                exs = [r.data for r, k in zip(batch, routed, strict=True) if k == "example"]
                if exs:
                    adder(inf, iter(exs), path=path)

        for rec in _records(path, args.compression, "schema"):
            if left is not None:
                if left <= 0:
                    break
                left -= 1
            records += 1
            batch.append(rec)
            if len(batch) >= 4096:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
    schema = inf.extract()
    conflicts = inf.conflicts
    if stats_acc is not None:
        from featurepipe.analysis import infer_constraints

        schema = infer_constraints(
            stats_acc.extract(), schema, max_domain_size=args.max_domain_size
        )
    feature_lists = lists.to_dict()
    for name, fl in feature_lists.items():
        if "kinds" in fl:
            conflicts[f"feature list {name}"] = fl["kinds"]
    sequences = kinds["sequence_example"] > 0
    if args.json:
        out = schema.to_dict()
        out["records"] = records
        out["payload_kinds"] = kinds
        if sequences:
            out["feature_lists"] = feature_lists
        if conflicts:
            out["kind_conflicts"] = conflicts
        print_json(out)
    else:
        counts = inf.feature_counts()
        if kinds["example"] == records:
            print(f"{records:,} records")
        else:
            print(
                f"{records:,} records: "
                + ", ".join(f"{n:,} {_KIND_LABEL[k]}" for k, n in kinds.items() if n)
            )
        if kinds["other"]:
            print(
                f"({kinds['other']:,} records are neither tf.Example nor tf.SequenceExample "
                "and are left out of the schema)"
            )
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
        if sequences:
            print("context:")
        _print_table(rows, "  " if sequences else "")
        if sequences:
            print("feature lists:")
            fl_rows = [("feature_list", "kind", "present", "steps", "values/step")]
            for name, fl in feature_lists.items():
                fl_rows.append((
                    name,
                    fl["kind"] or ("mixed" if "kinds" in fl else "none"),
                    f"{fl['present'] / inf.num_rows:.1%}" if inf.num_rows else "-",
                    _span(fl["steps"]),
                    _span(fl["values_per_step"]),
                ))
            _print_table(fl_rows, "  ")
        if schema.constraints:
            print("\nconstraints (edit the --json output to change them):")
            for fc in schema.constraints:
                print(f"  {fc.name}: {json.dumps(fc.to_dict(), ensure_ascii=False)}")
    for name, kinds_of in sorted(conflicts.items()):
        label = name if name.startswith("feature list ") else f"feature {name!r}"
        error(
            f"{label} has more than one kind: "
            + ", ".join(f"{k} in {n:,} records" for k, n in sorted(kinds_of.items())),
            hint="tf.io.parse_example fails on such data; fix the writer or convert again",
        )
    return EXIT_DATA if conflicts else EXIT_OK


def _span(span: list[int]) -> str:
    return str(span[0]) if span[0] == span[1] else f"{span[0]}..{span[1]}"


def _print_table(rows: list[tuple[Any, ...]], indent: str) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        line = "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
        print(indent + line)


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


#: "other" records remembered per file while its kind is not known (auto mode).
_MAX_PENDING = 100_000


class _PayloadCheck:
    """Counts the payload kinds of one file and collects the records that fail its kind.

    ``expect`` is ``"example"``, ``"sequence_example"``, ``"any"`` or
    ``"auto"``. In auto mode the file's kind is known only at its end (the
    kind most records have), so each record that is neither an Example nor a
    SequenceExample is checked at once against both, and kept (index,
    offset, both outcomes) until then.
    """

    def __init__(self, expect: str) -> None:
        self.expect = expect
        self.kinds = {"example": 0, "sequence_example": 0, "other": 0}
        self.problems: list[dict[str, Any]] = []
        self.pending: list[tuple[int, int, str | None, str | None]] = []
        self.unlisted = 0

    def add_batch(self, batch: list[Any]) -> None:
        from featurepipe.errors import DataError
        from featurepipe.example import decode_examples, decode_sequence_examples, payload_kind

        routed = [payload_kind(r.data, check=False) for r in batch]
        ok_routed = False  # the batch decoders accepted every record as routed
        if "other" not in routed:
            decode = decode_examples if "sequence_example" not in routed else (
                decode_sequence_examples
            )
            try:
                decode([r.data for r in batch])
                ok_routed = True
            except DataError:
                pass
        for r, k in zip(batch, routed, strict=True):
            kind = k if ok_routed or k == "other" else payload_kind(r.data)
            self.kinds[kind] += 1
            if self.expect == "any":
                continue
            if kind == "sequence_example" and self.expect == "example":
                self._problem(
                    r, "not_an_example",
                    "a tf.SequenceExample (it has feature lists, field 2, that a tf.Example "
                    "reader drops without a word); read the file with --payload "
                    "sequence_example",
                )
            elif kind == "other":
                ex_err = self._error(r, "example")
                seq_err = self._error(r, "sequence_example")
                if self.expect == "example" and ex_err is not None:
                    self._problem(r, "not_an_example", ex_err)
                elif self.expect == "sequence_example" and seq_err is not None:
                    self._problem(r, "not_a_sequence_example", seq_err)
                elif self.expect == "auto" and (ex_err is not None or seq_err is not None):
                    if len(self.pending) < _MAX_PENDING:
                        self.pending.append((r.index, r.offset, ex_err, seq_err))
                    else:
                        self.unlisted += 1

    @staticmethod
    def _error(r: Any, kind: str) -> str | None:
        from featurepipe.errors import DataError
        from featurepipe.example import decode_example, decode_sequence_example

        try:
            (decode_example if kind == "example" else decode_sequence_example)(r.data)
        except DataError as e:
            return e.detail
        return None

    def _problem(self, r: Any, reason: str, detail: str) -> None:
        self.problems.append(
            {"record": r.index, "offset": r.offset, "reason": reason, "detail": detail}
        )

    def finish(self) -> tuple[int, list[dict[str, Any]]]:
        """The number of records that failed, and the problems (auto mode decides here)."""
        if self.expect == "auto":
            proto = self.kinds["example"] + self.kinds["sequence_example"]
            if self.kinds["other"] < proto:  # a file of protos with a few bad records
                seq = self.kinds["sequence_example"] > 0
                reason = "not_a_sequence_example" if seq else "not_an_example"
                for index, offset, ex_err, seq_err in self.pending:
                    detail = seq_err if seq else ex_err
                    if detail is not None:
                        self.problems.append(
                            {"record": index, "offset": offset, "reason": reason,
                             "detail": detail + " (the file's other records are "
                             f"{'SequenceExamples' if seq else 'Examples'})"}
                        )
                if self.unlisted:
                    self.problems.append(
                        {"record": None, "offset": None, "reason": reason,
                         "detail": f"{self.unlisted:,} more records like the ones above "
                         "(not listed)"}
                    )
            self.pending.clear()
        failed = sum(1 for p in self.problems if p["record"] is not None) + self.unlisted * (
            bool(self.problems)
        )
        return failed, self.problems

    def label(self) -> str:
        """The file's payload: one kind, ``"mixed"``, or ``"none"`` for no records."""
        present = [k for k, n in self.kinds.items() if n]
        if not present:
            return "none"
        return present[0] if len(present) == 1 else "mixed"


def _verify(args: argparse.Namespace) -> int:
    from featurepipe.errors import DataError
    from featurepipe.tfrecord import CorruptionReport

    expect = "any" if args.frames_only else args.payload
    files: list[dict[str, Any]] = []
    all_ok = True
    for path in _paths(args.paths):
        report = CorruptionReport()
        problems: list[dict[str, Any]] = []
        check = _PayloadCheck(expect)
        seen = 0
        batch: list[Any] = []
        try:
            for rec in _records(path, args.compression, "verify", on_corrupt="skip",
                                report=report):
                seen += 1
                if args.frames_only:
                    continue
                batch.append(rec)
                if len(batch) >= 1024:
                    check.add_batch(batch)
                    batch = []
            if batch:
                check.add_batch(batch)
        except DataError as e:  # not recoverable by skipping (e.g. unreadable)
            problems.append({"record": e.record, "offset": e.offset, "reason": e.reason,
                             "detail": e.detail, **_compressed_offset(e.detail)})
        except OSError as e:
            problems.append({"record": None, "offset": None, "reason": "io_error",
                             "detail": str(e)})
        failed, payload_problems = check.finish()
        problems.extend(payload_problems)
        for s in report.skipped:
            problem = {"record": s.record, "offset": s.offset, "reason": s.reason,
                       "detail": f"{s.length} bytes skipped"}
            if s.detail:
                problem["detail"] = f"{s.detail}; {s.length} bytes skipped"
            if s.compressed_offset is not None:
                problem["compressed_offset"] = s.compressed_offset
            problems.append(problem)
        problems.sort(key=lambda p: (p["offset"] is None, p["offset"] or 0))
        ok = not problems
        all_ok &= ok
        entry: dict[str, Any] = {
            "path": path, "ok": ok, "records": seen - failed, "problems": problems,
        }
        if not args.frames_only:
            entry["payload"] = check.label()
            entry["payload_kinds"] = check.kinds
        files.append(entry)
    if args.json:
        print_json({"files": files})
    else:
        for f in files:
            state = "OK" if f["ok"] else f"DAMAGED ({len(f['problems'])} problem(s))"
            kinds = f.get("payload_kinds", {})
            shown = ""
            if kinds and f["payload"] not in ("example", "none"):
                shown = ": " + ", ".join(
                    f"{n:,} {_KIND_LABEL[k]}" for k, n in kinds.items() if n
                )
            print(f"{f['path']}: {state}, {f['records']:,} intact records{shown}")
            for p in f["problems"]:
                where = (
                    f", compressed offset {p['compressed_offset']}"
                    if "compressed_offset" in p else ""
                )
                print(
                    f"  record {p['record']}, offset {p['offset']}{where}: {p['reason']}: "
                    f"{p['detail']}"
                )
    if not all_ok and not args.json:
        print("verify failed: at least one file is damaged", file=sys.stderr)
    return EXIT_OK if all_ok else EXIT_DATA


def _compressed_offset(detail: str | None) -> dict[str, int]:
    """``{"compressed_offset": N}`` when a compressed-stream error names its byte, else ``{}``.

    The decompressor (``featurepipe.tfrecord``) names the compressed byte in
    its message ("... at compressed byte N", "... near compressed byte N");
    the record offset stays the one in the decompressed stream.
    """
    import re

    m = re.search(r"compressed byte (\d+)", detail or "")
    return {"compressed_offset": int(m.group(1))} if m else {}


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
