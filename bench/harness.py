"""Shared machinery for the benchmarks: subprocess measurements, machine facts, results.

Every measured thing runs in a subprocess of its own. :func:`measure` starts
it, waits with ``os.wait4`` so the resource usage (peak RSS, CPU time) is that
child's alone, and reads one JSON object the child prints as its last stdout
line (the child's own timing of the measured loop, excluding imports and
set-up). A benchmark then turns repetitions into a :class:`Result` (median
seconds, MB/s, records/s, peak RSS) and writes the run as JSON under
``bench/results/``.

>>> r = Result("x", "f", records=1000, stream_bytes=2_000_000, seconds=[2.0, 1.0, 4.0])
>>> r.median_seconds, r.mb_per_s, r.records_per_s
(2.0, 1.0, 500.0)
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BENCH_DIR",
    "RESULTS_DIR",
    "ROOT",
    "Measurement",
    "Result",
    "drop_from_page_cache",
    "machine_info",
    "markdown_table",
    "measure",
    "replace_readme_section",
    "warm_page_cache",
    "write_results",
]

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
MB = 1_000_000


@dataclass
class Measurement:
    """One subprocess run.

    Args:
        wall_s: Whole-process wall time, start to exit.
        user_s: CPU time in user mode (the child alone).
        sys_s: CPU time in the kernel (the child alone).
        max_rss_mb: Peak resident set size of the child, MB.
        returncode: Exit status.
        report: The JSON object the child printed last (``{}`` if none).
        stderr_tail: The end of stderr, for diagnosing failures.
        stdout_tail: The end of stdout.
    """

    wall_s: float
    user_s: float
    sys_s: float
    max_rss_mb: float
    returncode: int
    report: dict[str, Any] = field(default_factory=dict)
    stderr_tail: str = ""
    stdout_tail: str = ""


def measure(cmd: Sequence[str | os.PathLike[str]], *, env: Mapping[str, str] | None = None,
            cwd: str | os.PathLike[str] | None = None, timeout: float = 1800.0) -> Measurement:
    """Runs ``cmd`` as a child process and measures it alone.

    Args:
        cmd: The command.
        env: Extra environment variables (added to this process's).
        cwd: Working folder (default: the repository root).
        timeout: Seconds before the child is killed.

    Returns:
        The measurement; ``report`` is the last stdout line parsed as JSON when it is
        a JSON object.

    >>> m = measure([sys.executable, "-c", "print('{\\"ok\\": 1}')"])
    >>> m.returncode, m.report
    (0, {'ok': 1})
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    with tempfile.TemporaryDirectory(prefix="fp-bench-") as tmp:
        out_path, err_path = Path(tmp, "out"), Path(tmp, "err")
        spec = {"cmd": [str(c) for c in cmd], "cwd": str(cwd or ROOT), "timeout": timeout,
                "out": str(out_path), "err": str(err_path)}
        # A fresh, small launcher starts the child: Linux carries the peak RSS of the
        # process that calls exec into the child's ru_maxrss, so starting it straight from
        # this (possibly large) process would inflate the child's peak RSS.
        launcher = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, json.dumps(spec)],
                                  env=full_env, check=False, capture_output=True, text=True)
        if launcher.returncode != 0:
            raise RuntimeError(f"benchmark launcher failed: {launcher.stderr[-2000:]}")
        usage = json.loads(launcher.stdout)
        stdout = out_path.read_bytes().decode("utf-8", "replace")
        stderr = err_path.read_bytes().decode("utf-8", "replace")
    wall = usage["wall_s"]
    report: dict[str, Any] = {}
    lines = stdout.strip().splitlines()
    if lines:
        try:
            parsed = json.loads(lines[-1])
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            try:  # a pretty-printed JSON document
                parsed = json.loads(stdout)
            except json.JSONDecodeError:
                parsed = None
        if isinstance(parsed, dict):
            report = parsed
    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss = usage["maxrss"] / (MB if sys.platform == "darwin" else MB / 1024)
    return Measurement(round(wall, 4), round(usage["user_s"], 4), round(usage["sys_s"], 4),
                       round(rss, 1), usage["returncode"], report, stderr[-3000:],
                       stdout[-3000:])


# Run with ``python -S -c``: stdlib only. Starts spec["cmd"], waits for it with wait4 (its
# rusage alone), kills it after spec["timeout"] seconds, prints the numbers as JSON.
_LAUNCHER = """
import json, os, subprocess, sys, time
spec = json.loads(sys.argv[1])
with open(spec["out"], "wb") as out, open(spec["err"], "wb") as err:
    t0 = time.perf_counter()
    proc = subprocess.Popen(spec["cmd"], stdout=out, stderr=err, cwd=spec["cwd"])
    deadline = t0 + spec["timeout"]
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.002)
    wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime,
                  "maxrss": usage.ru_maxrss, "returncode": os.waitstatus_to_exitcode(status)}))
"""


@dataclass
class Result:
    """Repetitions of one measured thing, summarised.

    Args:
        name: What was measured (a row of the table).
        file: Which data file (a short label).
        records: Records processed per repetition.
        stream_bytes: Bytes processed per repetition (the uncompressed record stream).
        seconds: The timed span of each repetition.
        wall_s: Whole-process wall time of each repetition.
        max_rss_mb: The largest peak RSS over the repetitions.
        cpu_s: User + system CPU time of the median repetition's process.
        note: A short remark shown in the table.
        error: Why the thing could not be measured, if it could not.
    """

    name: str
    file: str
    records: int = 0
    stream_bytes: int = 0
    seconds: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    max_rss_mb: float = 0.0
    cpu_s: float = 0.0
    note: str = ""
    error: str = ""

    @property
    def median_seconds(self) -> float:
        """Median of ``seconds`` (0.0 when nothing was measured)."""
        return statistics.median(self.seconds) if self.seconds else 0.0

    @property
    def best_seconds(self) -> float:
        """Fastest repetition (0.0 when nothing was measured): less sensitive to other load."""
        return min(self.seconds) if self.seconds else 0.0

    @property
    def median_wall_s(self) -> float:
        """Median whole-process wall time."""
        return statistics.median(self.wall_s) if self.wall_s else 0.0

    @property
    def mb_per_s(self) -> float:
        """Decimal MB per second over the median repetition."""
        s = self.median_seconds
        return self.stream_bytes / MB / s if s > 0 else 0.0

    @property
    def records_per_s(self) -> float:
        """Records per second over the median repetition."""
        s = self.median_seconds
        return self.records / s if s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The result with its derived numbers, for the results file."""
        d = asdict(self)
        best = self.best_seconds
        d.update(median_seconds=self.median_seconds, median_wall_s=self.median_wall_s,
                 mb_per_s=round(self.mb_per_s, 2), records_per_s=round(self.records_per_s, 1),
                 best_seconds=best,
                 best_mb_per_s=round(self.stream_bytes / MB / best, 2) if best else 0.0,
                 best_records_per_s=round(self.records / best, 1) if best else 0.0)
        return d


def _run_text(cmd: Sequence[str]) -> str:
    try:
        return subprocess.run(list(cmd), check=False, capture_output=True, text=True,
                              timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info(versions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Facts about this machine for the results: CPU model, cores, RAM, OS, Python.

    Args:
        versions: Library versions to record alongside (name -> version).

    Returns:
        A JSON-able dict.
    """
    lscpu = _run_text(["lscpu"])
    model = re.search(r"^Model name:\s*(.+)$", lscpu, re.M)
    mem_kib = 0
    try:
        meminfo = Path("/proc/meminfo").read_text()
        m = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.M)
        mem_kib = int(m.group(1)) if m else 0
    except OSError:
        pass
    disk = shutil.disk_usage(BENCH_DIR)
    return {
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "cpus": os.cpu_count(),
        "ram_gib": round(mem_kib / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "disk_free_gib": round(disk.free / 2**30, 1),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg")
        else None,
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": dict(versions or {}),
    }


def warm_page_cache(path: str | os.PathLike[str], block: int = 1 << 20) -> float:
    """Reads a file once so that it sits in the page cache; returns the seconds it took."""
    buf = bytearray(block)
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass
    return time.perf_counter() - t0


def drop_from_page_cache(path: str | os.PathLike[str]) -> bool:
    """Asks the kernel to evict a file's clean pages (Linux); True when it could ask."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def write_results(bench_name: str, payload: Mapping[str, Any],
                  results_dir: str | os.PathLike[str] | None = None) -> Path:
    """Writes ``payload`` to ``bench/results/<bench_name>-<UTC time>.json``; returns the path."""
    d = Path(results_dir) if results_dir is not None else RESULTS_DIR
    d.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = d / f"{bench_name}-{stamp}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Formats a GitHub markdown table.

    >>> print(markdown_table(["a", "b"], [[1, "x"]]))
    | a | b |
    |---|---|
    | 1 | x |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def replace_readme_section(readme: str | os.PathLike[str], section: str, text: str) -> None:
    """Replaces the text between ``<!-- section:start -->`` and ``<!-- section:end -->``.

    The markers are appended at the end of the file when they are missing.

    Args:
        readme: The markdown file.
        section: The marker name.
        text: The new content between the markers.
    """
    path = Path(readme)
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    old = path.read_text() if path.exists() else ""
    block = f"{start}\n{text.strip()}\n{end}"
    if start in old and end in old:
        head, rest = old.split(start, 1)
        tail = rest.split(end, 1)[1]
        new = head + block + tail
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.write_text(new)
