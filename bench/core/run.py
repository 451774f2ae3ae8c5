"""Core benchmark (issue 2): TFRecord read+verify, `inspect count` and batch decode vs peers.

One run measures, on the same generated files, each thing in its own process:

* reading: featurepipe ``read_records`` (CRCs verified), ``tf.data.TFRecordDataset``
  batched by 1024, the ``tfrecord`` package's iterator, and a raw sequential
  read of the file (the physical limit) -- on the ~1 GB Criteo-like file of
  small records and on a file of large (>= 64 KiB) records;
* counting: whole-process time of ``featurepipe inspect count FILE`` (without
  and with the index sidecar) against Python one-liners over
  ``tf.data.TFRecordDataset``;
* decoding: records/s of ``featurepipe.example.decode_examples`` against
  protobuf ``FromString`` per record (alone, and gathered into numpy columns),
  ``tf.io.parse_example`` and tfx-bsl's ``ExamplesToRecordBatchDecoder``, all on
  batches of 1024 of the same records.

Then it prints the table and the target ratios, and writes everything to
``bench/results/core-<time>.json``. Run ``python -m bench core --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import datagen, harness, peers
from bench.harness import Measurement, Result

__all__ = ["main"]

PY = sys.executable
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}
TF_COUNT_NAIVE = ("import sys, tensorflow as tf; "
                  "print(sum(1 for _ in tf.data.TFRecordDataset(sys.argv[1])))")
TF_COUNT_BATCHED = ("import sys, tensorflow as tf; print(sum(int(b.shape[0]) for b in "
                    "tf.data.TFRecordDataset(sys.argv[1]).batch(1024)))")
TF_COUNT_REDUCE = ("import sys, tensorflow as tf; print(int(tf.data.TFRecordDataset(sys.argv[1])"
                   ".reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)))")

# name, metric, target -- "ratio" rows of the table; see _ratios().
TARGETS = {
    "read_verify_vs_tf_data": 1.5,
    "read_verify_vs_raw_large": 0.40,
    "inspect_count_vs_tf_oneliner": 5.0,
    "decode_vs_tfxbsl": 1.0,
}


def _worker_cmd(python: str | os.PathLike[str], task: str, args: dict[str, Any]) -> list[str]:
    return [str(python), "-m", "bench.core.worker", task, json.dumps(args)]


@dataclass
class _Job:
    """One measured thing, planned; run ``repeat`` times by ``_Runner.execute``."""

    result: Result
    cmd: list[str]
    env: dict[str, str] | None
    files: Sequence[str]
    timed: str  # "loop": the worker's own timing; "process": whole-process wall time
    check: Callable[[Measurement], str] | None
    repeat: int
    before: Callable[[], str] | None = None  # returns an error text, "" when fine
    after: Callable[[], None] | None = None
    on_report: Callable[[dict[str, Any], Result], None] | None = None
    runs: list[Measurement] = field(default_factory=list)


class _Runner:
    """Plans measurements, then runs them in rounds: every thing once, then every thing
    again, ... so that other load on the machine spreads over all of them alike."""

    def __init__(self, repeat: int, cold: bool, timeout: float, verbose: bool = True) -> None:
        self.repeat = repeat
        self.cold = cold
        self.timeout = timeout
        self.verbose = verbose
        self.results: list[Result] = []
        self.jobs: list[_Job] = []

    def add(self, name: str, label: str, cmd: list[str], *, records: int, stream_bytes: int,
            files: Sequence[str] = (), env: dict[str, str] | None = None, note: str = "",
            timed: str = "loop", check: Callable[[Measurement], str] | None = None,
            repeat: int | None = None, before: Callable[[], str] | None = None,
            after: Callable[[], None] | None = None,
            on_report: Callable[[dict[str, Any], Result], None] | None = None) -> Result:
        """Plans ``cmd``; returns its (still empty) Result."""
        res = Result(name, label, records=records, stream_bytes=stream_bytes, note=note)
        self.results.append(res)
        self.jobs.append(_Job(res, cmd, env, files, timed, check, repeat or self.repeat,
                              before, after, on_report))
        return res

    def missing(self, name: str, label: str, error: str) -> None:
        """Records a thing that cannot be measured, and why."""
        self.results.append(Result(name, label, error=error))

    def execute(self) -> None:
        """Runs every planned job ``repeat`` times, interleaved."""
        rounds = max((j.repeat for j in self.jobs), default=0)
        for rnd in range(rounds):
            if self.verbose:
                print(f"round {rnd + 1}/{rounds}:", flush=True)
            for job in self.jobs:
                if rnd < job.repeat and not job.result.error:
                    self._once(job)
        for job in self.jobs:
            res = job.result
            if job.runs:
                res.max_rss_mb = max(m.max_rss_mb for m in job.runs)
                mid = sorted(job.runs, key=lambda m: m.wall_s)[len(job.runs) // 2]
                res.cpu_s = round(mid.user_s + mid.sys_s, 2)
                if job.on_report is not None:
                    job.on_report(job.runs[-1].report, res)

    def _once(self, job: _Job) -> None:
        res = job.result
        problem = job.before() if job.before is not None else ""
        m: Measurement | None = None
        try:
            if not problem:
                if self.cold:
                    for f in job.files:
                        harness.drop_from_page_cache(f)
                m = harness.measure(job.cmd, env=job.env, timeout=self.timeout)
                if m.returncode != 0:
                    lines = [ln for ln in m.stderr_tail.strip().splitlines() if ln.strip()]
                    problem = f"exit {m.returncode}: {lines[-1] if lines else 'no stderr'}"
                    if m.wall_s >= self.timeout:
                        problem = f"timed out after {self.timeout:g} s"
                elif job.check is not None:
                    problem = job.check(m)
        finally:
            if job.after is not None:
                job.after()
        if problem or m is None:
            res.error = problem[:300] or "not run"
        else:
            job.runs.append(m)
            res.wall_s.append(m.wall_s)
            res.seconds.append(m.wall_s if job.timed == "process"
                               else float(m.report["seconds"]))
        if self.verbose:
            if res.error:
                status = f"ERROR {res.error}"
            else:
                s = res.seconds[-1]
                status = (f"{s:8.3f} s  {res.stream_bytes / 1e6 / s:9.1f} MB/s "
                          f"{res.records / s:12,.0f} rec/s  rss {m.max_rss_mb if m else 0:7.1f} MB")
            print(f"  {res.name:44s} [{res.file}] {status}", flush=True)


def _count_check(expected: int) -> Callable[[Measurement], str]:
    def check(m: Measurement) -> str:
        got = m.report.get("records")
        if got is None:
            got = m.report.get("total")
        if got is None:
            try:
                got = int(m.stdout_tail.strip().splitlines()[-1])
            except (ValueError, IndexError):
                return f"could not read a record count from stdout: {m.stdout_tail[-200:]!r}"
        if int(got) != expected:
            return f"counted {got} records, the file has {expected}"
        return ""

    return check


def _featurepipe_cli() -> list[str]:
    script = Path(PY).parent / "featurepipe"
    if script.exists():
        return [str(script)]
    return [PY, "-c", "import sys; from featurepipe.cli.main import main; sys.exit(main())"]


def _versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for dist in ("featurepipe", "numpy", "protobuf", "crc32c", "tensorflow-cpu", "tensorflow"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    try:
        from google.protobuf.internal import api_implementation

        out["protobuf_backend"] = api_implementation.Type()
    except ImportError:
        pass
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=harness.ROOT,
                          check=False, capture_output=True, text=True).stdout.strip()
    if head:
        out["git HEAD"] = head
    try:
        import featurepipe._speedups  # noqa: F401
    except ImportError:
        out["featurepipe._speedups"] = "not built"
    else:
        out["featurepipe._speedups"] = "built"
    for name in peers.PEERS:
        st = peers.peer_status(name)
        if st.get("ok"):
            freeze = st.get("freeze")
            for line in freeze if isinstance(freeze, list) else []:
                if str(line).lower().startswith(("tfrecord==", "tfx-bsl==", "tensorflow==")):
                    out[f"{name} venv: {line}"] = ""
        else:
            out[f"{name} venv"] = f"missing: {st.get('error')}"
    return out


def _reads(r: _Runner, info: datagen.DatasetInfo, label: str, batch: int) -> None:
    path = info.path
    common = {"records": info.records, "stream_bytes": info.stream_bytes, "files": [path]}
    check = _count_check(info.records)

    def scan_note(report: dict[str, Any], res: Result) -> None:
        res.note = "compiled scan" if report.get("compiled_scan") else "pure Python"

    r.add("raw sequential read (1 MiB blocks)", label, _worker_cmd(PY, "raw", {"path": path}),
          note="physical limit", **common)  # type: ignore[arg-type]
    r.add("featurepipe read_records (CRC verified)", label,
          _worker_cmd(PY, "fp_read", {"path": path}), check=check, on_report=scan_note,
          **common)  # type: ignore[arg-type]
    r.add("featurepipe read_records, pure-Python scan", label,
          _worker_cmd(PY, "fp_read", {"path": path, "pure": True}), check=check,
          note="_speedups not used", **common)  # type: ignore[arg-type]
    r.add(f"tf.data.TFRecordDataset .batch({batch})", label,
          _worker_cmd(PY, "tf_data", {"path": path, "batch": batch}), env=TF_ENV, check=check,
          note="CRC verified", **common)  # type: ignore[arg-type]
    py = peers.peer_python("tfrecord")
    if py is None:
        r.missing("tfrecord pkg tfrecord_iterator", label,
                  str(peers.peer_status("tfrecord").get("error")))
    else:
        r.add("tfrecord pkg tfrecord_iterator", label,
              _worker_cmd(py, "tfrecord_pkg", {"path": path}), check=check,
              note="no CRC check", **common)  # type: ignore[arg-type]


def _counts(r: _Runner, info: datagen.DatasetInfo, label: str) -> None:
    path = info.path
    common = {"records": info.records, "stream_bytes": info.stream_bytes, "files": [path],
              "timed": "process", "check": _count_check(info.records)}
    cli = _featurepipe_cli()
    r.add("featurepipe inspect count (no index)", label,
          [*cli, "inspect", "count", "--json", path], note="whole process",
          **common)  # type: ignore[arg-type]
    # The per-record Python loop takes minutes at 1 GB: one run (the target uses the faster
    # one-liner below anyway).
    r.add("python one-liner: sum(1 for _ in TFRecordDataset)", label,
          [PY, "-c", TF_COUNT_NAIVE, path], env=TF_ENV, note="whole process; 1 run",
          repeat=1, **common)  # type: ignore[arg-type]
    r.add("python one-liner: TFRecordDataset.reduce", label, [PY, "-c", TF_COUNT_REDUCE, path],
          env=TF_ENV, note="whole process", **common)  # type: ignore[arg-type]
    r.add("python one-liner: batched, sum of batch sizes", label,
          [PY, "-c", TF_COUNT_BATCHED, path], env=TF_ENV,
          note="whole process; .batch(1024)", **common)  # type: ignore[arg-type]
    # With the index: build the sidecar (not timed) before each run and remove it after, so
    # the "no index" runs always scan.
    folder = Path(path).parent
    made: list[Path] = []

    def build_index() -> str:
        before = set(folder.iterdir())
        proc = subprocess.run([*cli, "inspect", "index", path], check=False,
                              capture_output=True, text=True)
        made[:] = sorted(set(folder.iterdir()) - before)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no stderr"])[-1]
            return f"inspect index failed: {last[-200:]}"
        return ""

    def remove_index() -> None:
        for p in made:
            p.unlink(missing_ok=True)

    def sidecar_note(report: dict[str, Any], res: Result) -> None:
        res.note = f"sidecar {', '.join(p.name for p in made) or '?'}; whole process"

    r.add("featurepipe inspect count (with index)", label,
          [*cli, "inspect", "count", "--json", path], before=build_index, after=remove_index,
          on_report=sidecar_note, **common)  # type: ignore[arg-type]


def _decodes(r: _Runner, info: datagen.DatasetInfo, label: str, n: int, batch: int) -> None:
    args = {"path": info.path, "records": n, "batch": batch}
    common = {"records": n, "stream_bytes": _prefix_bytes(info.path, n)}

    def decoder_note(report: dict[str, Any], res: Result) -> None:
        res.note = ("compiled decoder" if report.get("compiled_decoder")
                    else "pure Python (protobuf)")

    r.add("featurepipe decode_examples -> columns", label, _worker_cmd(PY, "decode_fp", args),
          on_report=decoder_note, **common)  # type: ignore[arg-type]
    # The per-record Python paths are ~50x slower: a quarter of the records keeps the run short
    # (they are rates; the records are the first of the same file).
    slow_n = max(batch, n // 4)
    slow_args = {**args, "records": slow_n}
    slow = {"records": slow_n, "stream_bytes": _prefix_bytes(info.path, slow_n)}
    r.add("featurepipe decode_examples(native=False)", label,
          _worker_cmd(PY, "decode_fp", {**slow_args, "native": False}),
          note=f"pure-Python path; first {slow_n:,}", **slow)  # type: ignore[arg-type]
    r.add("protobuf FromString per record", label, _worker_cmd(PY, "decode_pb", args),
          note="parse only", **common)  # type: ignore[arg-type]
    r.add("protobuf FromString -> numpy columns", label,
          _worker_cmd(PY, "decode_pb_columns", slow_args),
          note=f"first {slow_n:,}", **slow)  # type: ignore[arg-type]
    r.add(f"tf.io.parse_example (VarLen, batch {batch})", label,
          _worker_cmd(PY, "decode_tf", args), env=TF_ENV, note="SparseTensors",
          **common)  # type: ignore[arg-type]
    py = peers.peer_python("tfxbsl")
    if py is None:
        r.missing("tfx-bsl ExamplesToRecordBatchDecoder", label,
                  str(peers.peer_status("tfxbsl").get("error")))
        return
    r.add("tfx-bsl ExamplesToRecordBatchDecoder", label,
          _worker_cmd(py, "decode_tfxbsl", {**args, "schema": False}), env=TF_ENV,
          note="no schema; Arrow", **common)  # type: ignore[arg-type]
    r.add("tfx-bsl ExamplesToRecordBatchDecoder+schema", label,
          _worker_cmd(py, "decode_tfxbsl", {**args, "schema": True}), env=TF_ENV,
          note="TFMD schema; Arrow", **common)  # type: ignore[arg-type]


def _prefix_bytes(path: str, n: int) -> int:
    total = 0
    for rec in datagen.iter_framed_records(path, limit=n):
        total += len(rec) + 16
    return total


def _find(results: list[Result], name: str, label: str) -> Result | None:
    for res in results:
        if res.name.startswith(name) and res.file == label and not res.error and res.seconds:
            return res
    return None


def _ratio(num: float | None, den: float | None) -> float | None:
    if not num or not den:
        return None
    return num / den


def _ratios(results: list[Result]) -> list[dict[str, Any]]:
    """The target ratios. Each compares two things done on the same records, so a ratio of
    speeds is the inverse ratio of times; ``value`` uses median times, ``value_best`` the
    fastest repetition of each (less sensitive to other load on the machine)."""

    def f(name: str, label: str) -> Result | None:
        return _find(results, name, label)

    def speedup(ours: Result | None, theirs: Result | None) -> tuple[float | None, float | None]:
        """How many times faster ``ours`` is than ``theirs`` (median, best)."""
        if ours is None or theirs is None:
            return None, None
        return (_ratio(theirs.median_seconds, ours.median_seconds),
                _ratio(theirs.best_seconds, ours.best_seconds))

    out: list[dict[str, Any]] = []

    def add(key: str, what: str, values: tuple[float | None, float | None],
            target: float | None = None) -> None:
        value, best = values
        met = None if value is None or target is None else value >= target
        out.append({"key": key, "what": what, "value": value, "value_best": best,
                    "target": target, "met": met})

    def fastest(*cands: Result | None) -> Result | None:
        found = [c for c in cands if c is not None]
        return min(found, key=lambda x: x.median_seconds) if found else None

    add("read_verify_vs_tf_data", "read+verify records/s ÷ batched tf.data records/s (Criteo)",
        speedup(f("featurepipe read_records (CRC", "criteo"), f("tf.data", "criteo")),
        TARGETS["read_verify_vs_tf_data"])
    add("read_verify_vs_raw_large", "read+verify MB/s ÷ raw read MB/s (large records)",
        speedup(f("featurepipe read_records (CRC", "large"), f("raw sequential", "large")),
        TARGETS["read_verify_vs_raw_large"])
    tf_count = fastest(f("python one-liner: sum", "criteo"),
                       f("python one-liner: TFRecordDataset.reduce", "criteo"))
    add("inspect_count_vs_tf_oneliner",
        "TF per-record one-liner wall ÷ `inspect count` wall (no index; faster of sum/reduce)",
        speedup(f("featurepipe inspect count (no index)", "criteo"), tf_count),
        TARGETS["inspect_count_vs_tf_oneliner"])
    add("inspect_count_index_vs_tf_oneliner", "same, `inspect count` with the index sidecar",
        speedup(f("featurepipe inspect count (with index)", "criteo"), tf_count))
    tf_batched = f("python one-liner: batched", "criteo")
    add("inspect_count_vs_tf_batched",
        "TF batched one-liner wall ÷ `inspect count` wall (no index)",
        speedup(f("featurepipe inspect count (no index)", "criteo"), tf_batched))
    add("inspect_count_index_vs_tf_batched", "same, `inspect count` with the index sidecar",
        speedup(f("featurepipe inspect count (with index)", "criteo"), tf_batched))
    dec = f("featurepipe decode_examples -> columns", "criteo")
    bsl = fastest(f("tfx-bsl ExamplesToRecordBatchDecoder", "criteo"),
                  f("tfx-bsl ExamplesToRecordBatchDecoder+schema", "criteo"))
    add("decode_vs_tfxbsl", "decode_examples records/s ÷ tfx-bsl records/s (faster variant)",
        speedup(dec, bsl), TARGETS["decode_vs_tfxbsl"])
    pbc = f("protobuf FromString -> numpy columns", "criteo")
    add("tfxbsl_vs_pb_columns", "tfx-bsl ÷ protobuf-per-record-into-columns (issue says ~2.5)",
        speedup(bsl, pbc))
    add("decode_vs_pb_columns", "decode_examples ÷ protobuf-per-record-into-columns",
        speedup(dec, pbc))
    add("decode_vs_tf_parse_example", "decode_examples ÷ tf.io.parse_example",
        speedup(dec, f("tf.io.parse_example", "criteo")))
    add("pure_read_vs_tf_data", "pure-Python read+verify ÷ batched tf.data (Criteo)",
        speedup(f("featurepipe read_records, pure", "criteo"), f("tf.data", "criteo")))
    add("pure_decode_vs_tfxbsl", "decode_examples(native=False) ÷ tfx-bsl",
        speedup(f("featurepipe decode_examples(native=False)", "criteo"), bsl))
    return out


def _tables(results: list[Result], ratios: list[dict[str, Any]]) -> str:
    rows = []
    for res in results:
        if res.error:
            err = " ".join(res.error.split()).replace("|", "/")
            rows.append([res.name, res.file, "", "", "", "", "", "", "", f"n/a: {err}"])
            continue
        rows.append([res.name, res.file, f"{res.records:,}", f"{res.stream_bytes / 1e6:,.0f}",
                     f"{res.median_seconds:.3f}", f"{res.mb_per_s:,.1f}",
                     f"{res.records_per_s:,.0f}", f"{res.cpu_s:.2f}", f"{res.max_rss_mb:,.0f}",
                     res.note])
    table = harness.markdown_table(
        ["what", "file", "records", "MB", "median s", "MB/s", "records/s", "CPU s",
         "peak RSS MB", "note"], rows)
    rrows = []
    for q in ratios:
        value = "n/a" if q["value"] is None else f"{q['value']:.2f}x"
        best = "n/a" if q["value_best"] is None else f"{q['value_best']:.2f}x"
        target = "" if q["target"] is None else f">= {q['target']:g}x"
        met = "" if q["met"] is None else ("met" if q["met"] else "**missed**")
        rrows.append([q["what"], value, best, target, met])
    return table + "\n\n" + harness.markdown_table(
        ["ratio", "median", "best of runs", "target", "(on the median)"], rrows)


def _readme_text(payload: dict[str, Any]) -> str:
    """The README section for a results payload: where and how it ran, then the tables."""
    machine = payload["machine"]
    versions: dict[str, str] = machine["versions"]
    data = payload["data"]
    lines = [
        f"Run {machine['date_utc']}: `python -m bench core {' '.join(payload['argv'])}`",
        f"Machine: {machine['cpu_model']}, {machine['cpus']} CPUs, {machine['ram_gib']} GiB RAM, "
        f"{machine['os']}, Python {machine['python']}",
        "Versions: " + ", ".join(f"{k} {val}".strip() for k, val in versions.items()),
        f"Page cache: {payload['page_cache']}",
        f"Load average (1/5/15 min) at start {payload.get('load_avg_at_start')}, at end "
        f"{machine.get('load_avg_1_5_15')} on {machine['cpus']} CPUs "
        "(other work on the machine; every run's seconds are in the results JSON)",
        "Data: " + "; ".join(f"{v['records']:,} {k} records, {v['file_bytes'] / 1e6:,.0f} MB"
                             for k, v in data.items()),
    ]
    return "  \n".join(lines) + "\n\n" + str(payload["table_markdown"])


def _update_readme(payload: dict[str, Any]) -> None:
    harness.replace_readme_section(harness.BENCH_DIR / "README.md", "core-results",
                                   _readme_text(payload))
    print("updated bench/README.md")


def main(argv: list[str] | None = None) -> int:
    """Runs the core benchmark; returns 0 (a missed target is reported, not an exit status)."""
    parser = argparse.ArgumentParser(prog="python -m bench core", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=1000.0,
                        help="size of the Criteo-like file, decimal MB (default 1000)")
    parser.add_argument("--large-size-mb", type=float, default=None,
                        help="size of the large-record file (default: --size-mb)")
    parser.add_argument("--decode-records", type=int, default=262_144,
                        help="records decoded by each decoder (default 262144 = 256 batches)")
    parser.add_argument("--batch", type=int, default=1024, help="batch size (default 1024)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per measured thing; the median is reported (default 3)")
    parser.add_argument("--only", default="read,count,decode",
                        help="comma list of groups to run: read, count, decode")
    parser.add_argument("--cold", action="store_true",
                        help="evict the file from the page cache before every run "
                             "(default: read it once first, so every run reads from cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per process")
    parser.add_argument("--results-dir", default=None, help="default bench/results")
    parser.add_argument("--no-results", action="store_true", help="do not write results JSON")
    parser.add_argument("--update-readme", action="store_true",
                        help="replace the table in bench/README.md with this run's")
    parser.add_argument("--readme-from", metavar="RESULTS_JSON", default=None,
                        help="only rewrite bench/README.md's table from a results file")
    args = parser.parse_args(argv)
    if args.readme_from:
        _update_readme(json.loads(Path(args.readme_from).read_text()))
        return 0
    groups = {g.strip() for g in args.only.split(",") if g.strip()}
    unknown = groups - {"read", "count", "decode"}
    if unknown or args.repeat < 1 or args.size_mb <= 0:
        parser.error(f"bad arguments: --only groups {sorted(unknown)} unknown, or --repeat < 1, "
                     f"or --size-mb <= 0. Received: only={args.only!r}, repeat={args.repeat}, "
                     f"size_mb={args.size_mb}")

    load_at_start = [round(x, 2) for x in os.getloadavg()]
    print(f"data: Criteo-like {args.size_mb:g} MB (bench/data, cached between runs)", flush=True)
    criteo = datagen.ensure_criteo_tfrecord(args.size_mb, seed=args.seed)
    large = (datagen.ensure_large_tfrecord(args.large_size_mb or args.size_mb, seed=args.seed)
             if "read" in groups else None)
    for info in (criteo, large):
        if info is not None:
            print(f"  {info.path}: {info.records:,} records, {info.file_bytes / 1e6:,.1f} MB "
                  f"(encoder: {info.encoder})", flush=True)
    cache_note = "cold: evicted with posix_fadvise(DONTNEED) before every run"
    if not args.cold:
        warm = {Path(i.path).name: round(harness.warm_page_cache(i.path), 2)
                for i in (criteo, large) if i is not None}
        cache_note = f"warm: each file read once before timing ({warm} s)"
    print(f"page cache: {cache_note}", flush=True)

    r = _Runner(args.repeat, args.cold, args.timeout)
    if "read" in groups:
        _reads(r, criteo, "criteo", args.batch)
        assert large is not None
        _reads(r, large, "large", args.batch)
    if "count" in groups:
        _counts(r, criteo, "criteo")
    if "decode" in groups:
        n = min(args.decode_records, criteo.records)
        print(f"decode: {n:,} records in batches of {args.batch}", flush=True)
        _decodes(r, criteo, "criteo", n, args.batch)
    r.execute()

    ratios = _ratios(r.results)
    text = _tables(r.results, ratios)
    machine = harness.machine_info(_versions())
    print()
    print(text)
    payload = {
        "benchmark": "core",
        "argv": sys.argv[1:] if argv is None else list(argv),
        "machine": machine,
        "page_cache": cache_note,
        "load_avg_at_start": load_at_start,
        "data": {k: asdict(v) for k, v in (("criteo", criteo), ("large", large)) if v},
        "results": [res.to_json() for res in r.results],
        "ratios": ratios,
        "table_markdown": text,
    }
    if not args.no_results:
        path = harness.write_results("core", payload, args.results_dir)
        print(f"\nresults: {path}")
    if args.update_readme:
        _update_readme(payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
