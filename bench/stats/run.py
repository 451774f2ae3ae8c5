"""Statistics benchmark (issue 4): `inspect stats` and `analyze` vs TFDV and a Python loop.

On the same 200k-row Criteo-like TFRecord file (13 int features, 26 bytes
features, a label; many values missing), each thing runs in a process of its
own, ``--repeat`` times (the median is reported), with its peak RSS:

* ``featurepipe inspect stats --json FILE`` (whole process: start-up, read,
  decode, statistics, JSON out) and `compute_statistics` alone (timed call);
* ``featurepipe analyze FILE --spec S`` -- vocabularies of C1..C26, 10-bucket
  quantiles and moments of I1..I13, plus statistics -- with ``--local`` (no
  Beam), on the DirectRunner in-process, and on the DirectRunner with
  ``--direct_running_mode=multi_processing --direct_num_workers=N``;
* TFDV ``generate_statistics_from_tfrecord`` in its own venv
  (``bench/.venvs/tfdv``, made with ``--setup-tfdv``), in-process and
  multi_processing: TFDV's default statistics (numeric stats and histograms,
  top-k and distinct counts of strings);
* a straightforward Python loop over protobuf-decoded Examples (counts,
  min / max / sums, Counters of strings).

Targets: ``inspect stats`` >= 3x TFDV's examples/s, ``analyze`` >= 2x TFDV on
the same runner mode. Results go to ``bench/results/stats-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import datagen, harness
from bench.harness import Result

__all__ = ["main"]

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]
TFDV_VENV = ROOT / "bench" / ".venvs" / "tfdv"
# The newest TFDV release with Python 3.11 wheels in the registry here, pinned with the versions
# it resolves to (unpinned, pip backtracks for many minutes over apache-beam / pyarrow).
TFDV_REQUIREMENTS = (
    "tensorflow-data-validation==1.16.1",
    "tfx-bsl==1.16.1",
    "tensorflow-metadata==1.16.1",
    "tensorflow==2.16.2",
    "pyarrow==10.0.1",
    "apache-beam[gcp]==2.60.0",
    "numpy==1.26.4",
    "pandas==1.5.3",
    "pyfarmhash==0.3.2",
    "protobuf==4.25.5",
)
TFDV_REQUIREMENT = TFDV_REQUIREMENTS[0]
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}
TARGETS = {"inspect_stats_vs_tfdv": 3.0, "analyze_vs_tfdv": 2.0}


def _spec() -> dict[str, Any]:
    return {
        "format_version": 1,
        "analyzers": (
            [{"analyzer": "vocabulary", "key": f"C{i}"} for i in range(1, 27)]
            + [{"analyzer": "quantiles", "key": f"I{i}", "num_bins": 10} for i in range(1, 14)]
            + [{"analyzer": "moments", "key": f"I{i}"} for i in range(1, 14)]
        ),
    }


def _cli() -> list[str]:
    script = Path(PY).parent / "featurepipe"
    if script.exists():
        return [str(script)]
    return [PY, "-c", "import sys; from featurepipe.cli.main import main; sys.exit(main())"]


def _tfdv_python() -> Path | None:
    py = TFDV_VENV / "bin" / "python"
    if not py.exists():
        return None
    probe = subprocess.run(
        [str(py), "-c", "import tensorflow_data_validation"],
        check=False,
        capture_output=True,
        env={**os.environ, **TF_ENV},
    )
    return py if probe.returncode == 0 else None


def setup_tfdv() -> str:
    """Creates ``bench/.venvs/tfdv`` with TFDV (minutes; pulls TensorFlow and Beam)."""
    import venv

    venv.create(TFDV_VENV, with_pip=True, clear=True)
    pip = TFDV_VENV / "bin" / "pip"
    proc = subprocess.run(
        [str(pip), "install", "-q", *TFDV_REQUIREMENTS], check=False, capture_output=True, text=True
    )
    return "ok" if proc.returncode == 0 else proc.stderr.strip()[-500:]


def _measure(
    name: str,
    cmd: list[str],
    *,
    records: int,
    stream_bytes: int,
    repeat: int,
    timed: str,
    env: dict[str, str] | None = None,
    note: str = "",
    before: Any = None,
    timeout: float = 1800.0,
) -> Result:
    res = Result(name, "criteo-200k", records=records, stream_bytes=stream_bytes, note=note)
    for _ in range(repeat):
        if before is not None:
            before()
        m = harness.measure(cmd, env=env, timeout=timeout)
        if m.returncode != 0:
            lines = [ln for ln in m.stderr_tail.strip().splitlines() if ln.strip()]
            res.error = f"exit {m.returncode}: {lines[-1] if lines else 'no stderr'}"[:300]
            break
        got = m.report.get("records", m.report.get("num_examples"))
        if got is not None and int(got) != records:
            res.error = f"counted {got} examples, the file has {records}"
            break
        res.wall_s.append(m.wall_s)
        res.seconds.append(m.wall_s if timed == "process" else float(m.report["seconds"]))
        res.max_rss_mb = max(res.max_rss_mb, m.max_rss_mb)
        res.cpu_s = round(m.user_s + m.sys_s, 2)
    status = (
        f"ERROR {res.error}"
        if res.error
        else f"{res.median_seconds:8.2f} s {res.records_per_s:10,.0f} examples/s "
        f"rss {res.max_rss_mb:7.1f} MB"
    )
    print(f"  {name:52s} {status}", flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    """Runs the statistics benchmark; returns 0 (missed targets are reported, not failures)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench stats",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=200_000, help="examples (default 200000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per thing (default 3)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help="DirectRunner multi_processing workers (default: CPU count)",
    )
    parser.add_argument(
        "--only",
        default="stats,analyze,tfdv,pyloop",
        help="comma list of: stats, analyze, tfdv, pyloop",
    )
    parser.add_argument(
        "--setup-tfdv",
        action="store_true",
        help=f"first create bench/.venvs/tfdv with {TFDV_REQUIREMENT}",
    )
    parser.add_argument("--results-dir", default=None, help="default bench/results")
    parser.add_argument("--no-results", action="store_true", help="do not write results JSON")
    args = parser.parse_args(argv)
    groups = {g.strip() for g in args.only.split(",") if g.strip()}
    if args.setup_tfdv:
        print(f"setting up {TFDV_VENV}: {setup_tfdv()}", flush=True)

    path = datagen.DATA_DIR / f"criteo-s0-{args.rows}rows.tfrecord"
    info = datagen._cached(path, lambda p: datagen.write_criteo_tfrecord(p, num_rows=args.rows))
    harness.warm_page_cache(info.path)
    print(
        f"data: {info.path}: {info.records:,} examples, {info.file_bytes / 1e6:.1f} MB", flush=True
    )
    common: dict[str, Any] = {
        "records": info.records,
        "stream_bytes": info.stream_bytes,
        "repeat": args.repeat,
    }
    results: list[Result] = []
    work = Path(tempfile.mkdtemp(prefix="fp-bench-stats-"))
    spec = work / "spec.json"
    spec.write_text(json.dumps(_spec()))
    out = work / "artifacts"

    def clean() -> None:
        shutil.rmtree(out, ignore_errors=True)

    multi = ["--direct-running-mode", "multi_processing", "--direct-num-workers", str(args.workers)]
    try:
        if "stats" in groups:
            results.append(
                _measure(
                    "featurepipe inspect stats --json (whole process)",
                    [*_cli(), "inspect", "stats", "--json", info.path],
                    timed="process",
                    **common,
                )
            )
            results.append(
                _measure(
                    "featurepipe compute_statistics (timed call)",
                    [PY, "-m", "bench.stats.worker", "fp_stats", json.dumps({"path": info.path})],
                    timed="loop",
                    **common,
                )
            )
        if "analyze" in groups:
            base = [*_cli(), "analyze", info.path, "--spec", str(spec), "--output", str(out)]
            results.append(
                _measure(
                    "featurepipe analyze --local (no Beam)",
                    [*base, "--local"],
                    timed="process",
                    before=clean,
                    **common,
                )
            )
            results.append(
                _measure(
                    "featurepipe analyze, DirectRunner in-process",
                    base,
                    timed="process",
                    before=clean,
                    **common,
                )
            )
            results.append(
                _measure(
                    f"featurepipe analyze, DirectRunner multi_processing x{args.workers}",
                    [*base, *multi],
                    timed="process",
                    before=clean,
                    **common,
                )
            )
        if "tfdv" in groups:
            py = _tfdv_python()
            if py is None:
                results.append(
                    Result(
                        "TFDV generate_statistics_from_tfrecord",
                        "criteo-200k",
                        error=f"no TFDV venv at {TFDV_VENV} (run with --setup-tfdv)",
                    )
                )
                print("  TFDV: not installed (run with --setup-tfdv)", flush=True)
            else:
                for label, beam_argv in (
                    ("in-process", []),
                    (
                        f"multi_processing x{args.workers}",
                        [
                            "--direct_running_mode=multi_processing",
                            f"--direct_num_workers={args.workers}",
                        ],
                    ),
                ):
                    task = json.dumps({"path": info.path, "argv": beam_argv})
                    results.append(
                        _measure(
                            f"TFDV generate_statistics_from_tfrecord, {label}",
                            [str(py), "-m", "bench.stats.worker", "tfdv", task],
                            env=TF_ENV,
                            timed="process",
                            note="whole process",
                            **common,
                        )
                    )
        if "pyloop" in groups:
            results.append(
                _measure(
                    "Python loop over protobuf-decoded Examples (timed loop)",
                    [PY, "-m", "bench.stats.worker", "pyloop", json.dumps({"path": info.path})],
                    timed="loop",
                    **common,
                )
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ratios = _ratios(results, args.workers)
    rows = [
        [
            r.name,
            "ERROR: " + r.error if r.error else f"{r.median_seconds:.2f}",
            f"{r.records_per_s:,.0f}" if not r.error else "",
            f"{r.max_rss_mb:,.0f}",
        ]
        for r in results
    ]
    print()
    print(harness.markdown_table(["what", "seconds (median)", "examples/s", "peak RSS MB"], rows))
    print()
    for ratio in ratios:
        value = "n/a" if ratio["value"] is None else f"{ratio['value']:.2f}x"
        verdict = {True: "met", False: "NOT met", None: "not measured"}[ratio["met"]]
        target = "" if ratio["target"] is None else f" (target {ratio['target']}x: {verdict})"
        print(f"  {ratio['what']}: {value}{target}")
    if not args.no_results:
        payload = {
            "machine": harness.machine_info(),
            "data": info.__dict__,
            "results": [r.to_json() for r in results],
            "ratios": ratios,
        }
        print(f"\nresults: {harness.write_results('stats', payload, args.results_dir)}")
    return 0


def _ratios(results: list[Result], workers: int) -> list[dict[str, Any]]:
    def find(prefix: str) -> Result | None:
        for r in results:
            if r.name.startswith(prefix) and not r.error and r.seconds:
                return r
        return None

    def add(
        what: str, ours: Result | None, theirs: Result | None, target: float | None
    ) -> dict[str, Any]:
        value = (
            theirs.median_seconds / ours.median_seconds
            if ours is not None and theirs is not None and ours.median_seconds
            else None
        )
        return {
            "what": what,
            "value": value,
            "target": target,
            "met": None if value is None or target is None else value >= target,
        }

    tfdv_in = find("TFDV generate_statistics_from_tfrecord, in-process")
    tfdv_multi = find("TFDV generate_statistics_from_tfrecord, multi_processing")
    return [
        add(
            "inspect stats examples/s / TFDV in-process examples/s",
            find("featurepipe inspect stats"),
            tfdv_in,
            TARGETS["inspect_stats_vs_tfdv"],
        ),
        add(
            "analyze (DirectRunner in-process) / TFDV in-process",
            find("featurepipe analyze, DirectRunner in-process"),
            tfdv_in,
            TARGETS["analyze_vs_tfdv"],
        ),
        add(
            f"analyze (multi_processing x{workers}) / TFDV multi_processing x{workers}",
            find("featurepipe analyze, DirectRunner multi_processing"),
            tfdv_multi,
            TARGETS["analyze_vs_tfdv"],
        ),
        add(
            "analyze --local / TFDV in-process", find("featurepipe analyze --local"), tfdv_in, None
        ),
        add(
            "inspect stats / Python protobuf loop",
            find("featurepipe inspect stats"),
            find("Python loop"),
            None,
        ),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
