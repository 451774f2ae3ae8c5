"""Validation benchmark (issue 15): `inspect validate` and `inspect compare` vs TFDV.

On Criteo-like data (13 int features, 26 bytes features, a label; many values
missing): the *baseline* is the first ``--rows`` examples of the generator
(seed 0) and the *current* data the next ``--rows`` (same distribution, other
rows). A schema with domains is inferred from the baseline first (not timed):
``featurepipe inspect schema --json --with-domains`` for featurepipe, TFDV's
``infer_schema`` for TFDV. Then each thing runs in a process of its own,
``--repeat`` times (median reported), with its peak RSS:

* ``featurepipe inspect validate CURRENT --schema S --json`` (whole process:
  start-up, read, statistics, exact domain counts, anomalies, JSON out);
* ``featurepipe inspect compare BASELINE CURRENT --json`` (whole process, both
  files read; examples/s counts both);
* TFDV ``generate_statistics_from_tfrecord`` + ``validate_statistics`` of the
  current data against its schema (whole process), in the TFDV venv
  (``bench/.venvs/tfdv``; ``python -m bench.peers tfdv`` makes it);
* TFDV statistics of both files + ``validate_statistics`` with skew
  comparators on every feature (whole process).

It also reports the distances each side measured per feature: TFDV's,
featurepipe's with TFDV's method (``bins="tfdv"``, from featurepipe's
statistics), and featurepipe's default (common pooled-quantile bins). Target:
featurepipe >= 5x TFDV's examples/s. Results go to
``bench/results/validate-<time>.json``.
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
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}
TARGET = 5.0


def _cli() -> list[str]:
    script = Path(PY).parent / "featurepipe"
    if script.exists():
        return [str(script)]
    return [PY, "-c", "import sys; from featurepipe.cli.main import main; sys.exit(main())"]


def _tfdv_python() -> Path | None:
    from bench import peers

    py = peers.peer_python("tfdv")
    if py is None:
        venv_py = peers.VENVS / "tfdv" / "bin" / "python"  # made by bench/stats --setup-tfdv
        py = venv_py if venv_py.exists() else None
    if py is None:
        return None
    probe = subprocess.run(
        [str(py), "-c", "import tensorflow_data_validation"],
        check=False,
        capture_output=True,
        env={**os.environ, **TF_ENV},
    )
    return py if probe.returncode == 0 else None


def _data(rows: int) -> tuple[Any, Any]:
    """(baseline, current): the first ``rows`` examples and the next ``rows``."""
    base = datagen._cached(
        datagen.DATA_DIR / f"criteo-s0-{rows}rows.tfrecord",
        lambda p: datagen.write_criteo_tfrecord(p, num_rows=rows),
    )
    both = datagen._cached(
        datagen.DATA_DIR / f"criteo-s0-{2 * rows}rows.tfrecord",
        lambda p: datagen.write_criteo_tfrecord(p, num_rows=2 * rows),
    )

    def second_half(path: Path) -> Any:
        from featurepipe.tfrecord import TFRecordWriter

        n = 0
        with TFRecordWriter(str(path)) as w:
            for i, rec in enumerate(datagen.iter_framed_records(both.path)):
                if i >= rows:
                    w.write(rec)
                    n += 1
        info = dict(base.__dict__)
        info.update(
            path=str(path),
            records=n,
            stream_bytes=os.path.getsize(path),
            file_bytes=os.path.getsize(path),
        )
        return datagen.DatasetInfo(**info)

    cur = datagen._cached(datagen.DATA_DIR / f"criteo-s0-{rows}rows-next.tfrecord", second_half)
    return base, cur


def _measure(
    name: str,
    cmd: list[str],
    *,
    records: int,
    stream_bytes: int,
    repeat: int,
    count: Any,
    env: dict[str, str] | None = None,
    ok_codes: tuple[int, ...] = (0,),
    note: str = "",
) -> tuple[Result, dict[str, Any]]:
    res = Result(name, "criteo", records=records, stream_bytes=stream_bytes, note=note)
    report: dict[str, Any] = {}
    for _ in range(repeat):
        m = harness.measure(cmd, env=env, timeout=3600)
        if m.returncode not in ok_codes:
            lines = [ln for ln in m.stderr_tail.strip().splitlines() if ln.strip()]
            res.error = f"exit {m.returncode}: {lines[-1] if lines else 'no stderr'}"[:300]
            break
        got = count(m.report)
        if got != records:
            res.error = f"counted {got} examples, expected {records}"
            break
        report = m.report
        res.wall_s.append(m.wall_s)
        res.seconds.append(m.wall_s)
        res.max_rss_mb = max(res.max_rss_mb, m.max_rss_mb)
        res.cpu_s = round(m.user_s + m.sys_s, 2)
    status = (
        f"ERROR {res.error}"
        if res.error
        else f"{res.median_seconds:8.2f} s {res.records_per_s:10,.0f} examples/s "
        f"rss {res.max_rss_mb:7.1f} MB"
    )
    print(f"  {name:58s} {status}", flush=True)
    return res, report


def _our_tfdv_method(base: str, cur: str) -> dict[str, float | None]:
    """featurepipe's statistics, compared with TFDV's rebinning (``bins="tfdv"``)."""
    from featurepipe.analysis import (
        VALIDATION_TOP_K,
        StatsOptions,
        compare_statistics,
        compute_statistics,
    )

    opts = StatsOptions(top_k=VALIDATION_TOP_K)
    cmp = compare_statistics(
        compute_statistics(base, options=opts), compute_statistics(cur, options=opts), bins="tfdv"
    )
    return {f.name: f.distance for f in cmp.features}


def main(argv: list[str] | None = None) -> int:
    """Runs the validation benchmark; returns 0 (missed targets are reported, not failures)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench validate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=200_000, help="examples per side (200000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per thing (default 1)")
    parser.add_argument("--only", default="fp,tfdv", help="comma list of: fp, tfdv")
    parser.add_argument("--results-dir", default=None, help="default bench/results")
    parser.add_argument("--no-results", action="store_true", help="do not write results JSON")
    args = parser.parse_args(argv)
    groups = {g.strip() for g in args.only.split(",") if g.strip()}

    base, cur = _data(args.rows)
    for info in (base, cur):
        harness.warm_page_cache(info.path)
        print(f"data: {info.path}: {info.records:,} examples, {info.file_bytes / 1e6:.1f} MB")
    one = {"records": cur.records, "stream_bytes": cur.stream_bytes, "repeat": args.repeat}
    two = {
        "records": base.records + cur.records,
        "stream_bytes": base.stream_bytes + cur.stream_bytes,
        "repeat": args.repeat,
    }
    results: list[Result] = []
    reports: dict[str, dict[str, Any]] = {}
    work = Path(tempfile.mkdtemp(prefix="fp-bench-validate-"))
    try:
        if "fp" in groups:
            schema = work / "schema.json"
            out = subprocess.run(
                [*_cli(), "inspect", "schema", base.path, "--json", "--with-domains"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            schema.write_text(out, encoding="utf-8")
            r, rep = _measure(
                "featurepipe inspect validate --json (whole process)",
                [*_cli(), "inspect", "validate", cur.path, "--schema", str(schema), "--json"],
                count=lambda rep: rep.get("num_examples"),
                ok_codes=(0, 1),
                **one,
            )
            results.append(r)
            reports["fp_validate"] = {
                "num_anomalies": rep.get("num_anomalies"),
                "types": sorted({a["type"] for a in rep.get("anomalies", [])}),
            }
            r, rep = _measure(
                "featurepipe inspect compare --json (whole process)",
                [*_cli(), "inspect", "compare", base.path, cur.path, "--json"],
                count=lambda rep: (rep.get("baseline") or {}).get("num_examples", 0)
                + (rep.get("current") or {}).get("num_examples", 0),
                **two,
            )
            results.append(r)
            reports["fp_compare"] = {
                f["name"]: f["distance"] for f in rep.get("features", []) if f.get("metric")
            }
            reports["fp_compare_tfdv_bins"] = _our_tfdv_method(base.path, cur.path)
        if "tfdv" in groups:
            py = _tfdv_python()
            if py is None:
                for what in ("validate", "compare"):
                    results.append(
                        Result(
                            f"TFDV {what}",
                            "criteo",
                            error="no TFDV venv (run `python -m bench.peers tfdv`)",
                        )
                    )
                print("  TFDV: not installed (run `python -m bench.peers tfdv`)", flush=True)
            else:
                tschema = work / "schema.pbtxt"
                worker = [str(py), "-m", "bench.validate.worker"]
                setup = json.dumps({"path": base.path, "schema": str(tschema)})
                subprocess.run(
                    [*worker, "tfdv_schema", setup],
                    check=True,
                    capture_output=True,
                    env={**os.environ, **TF_ENV},
                    cwd=ROOT,
                )
                r, rep = _measure(
                    "TFDV generate_statistics + validate_statistics (whole process)",
                    [*worker, "tfdv_validate", setup.replace(base.path, cur.path)],
                    count=lambda rep: rep.get("records"),
                    env=TF_ENV,
                    **one,
                )
                results.append(r)
                reports["tfdv_validate"] = rep.get("anomalies", {})
                task = {"base": base.path, "cur": cur.path, "schema": str(tschema)}
                r, rep = _measure(
                    "TFDV statistics x2 + skew comparators (whole process)",
                    [*worker, "tfdv_compare", json.dumps(task)],
                    count=lambda rep: rep.get("records"),
                    env=TF_ENV,
                    **two,
                )
                results.append(r)
                reports["tfdv_compare"] = rep.get("distances", {})
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ratios = _ratios(results)
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
        print(f"  {ratio['what']}: {value} (target {TARGET}x: {verdict})")
    distances = _distance_table(reports)
    if distances:
        print()
        print(
            harness.markdown_table(
                ["feature", "TFDV", "featurepipe, TFDV's bins", "featurepipe (default)"],
                [
                    [d["feature"], _fmt(d["tfdv"]), _fmt(d["fp_tfdv_bins"]), _fmt(d["fp"])]
                    for d in distances
                ],
            )
        )
    if not args.no_results:
        payload = {
            "machine": harness.machine_info(),
            "data": {"baseline": base.__dict__, "current": cur.__dict__},
            "results": [r.to_json() for r in results],
            "ratios": ratios,
            "reports": reports,
            "distances": distances,
        }
        print(f"\nresults: {harness.write_results('validate', payload, args.results_dir)}")
    return 0


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def _distance_table(reports: dict[str, Any]) -> list[dict[str, Any]]:
    ours = reports.get("fp_compare") or {}
    same_bins = reports.get("fp_compare_tfdv_bins") or {}
    tfdv = reports.get("tfdv_compare") or {}
    names = sorted(
        set(ours) | set(tfdv), key=lambda n: (n[0], int(n[1:]) if n[1:].isdigit() else 0)
    )
    out = []
    for n in names:
        t = tfdv.get(n) or {}
        out.append(
            {
                "feature": n,
                "tfdv": next(iter(t.values()), None),
                "tfdv_metric": next(iter(t), None),
                "fp_tfdv_bins": same_bins.get(n),
                "fp": ours.get(n),
            }
        )
    return out


def _ratios(results: list[Result]) -> list[dict[str, Any]]:
    def find(prefix: str) -> Result | None:
        for r in results:
            if r.name.startswith(prefix) and not r.error and r.seconds:
                return r
        return None

    out = []
    for what, ours, theirs in (
        ("validate examples/s / TFDV", "featurepipe inspect validate", "TFDV generate_statistics"),
        ("compare examples/s / TFDV", "featurepipe inspect compare", "TFDV statistics x2"),
    ):
        a, b = find(ours), find(theirs)
        value = b.median_seconds / a.median_seconds if a and b and a.median_seconds else None
        out.append(
            {
                "what": what,
                "value": value,
                "target": TARGET,
                "met": None if value is None else value >= TARGET,
            }
        )
    return out


if __name__ == "__main__":
    raise SystemExit(main())
