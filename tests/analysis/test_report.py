"""Tests for featurepipe.analysis._report: content, escaping, self-containment, a headless Chromium render.

The Chromium test needs Debian's ``chromium`` package (``apt-get install -y chromium``) and
skips when no ``chromium`` / ``chromium-browser`` / ``google-chrome`` binary is on PATH.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from featurepipe.analysis._report import render_html, write_html
from featurepipe.analysis._stats import DatasetStatistics, StatisticsAccumulator
from featurepipe.example._codec import decode_examples, encode_example

NAMES = ["label", "price", "city", "tags", "weird <b>&\"name'", "a_long_feature_name_" * 4, "gone"]


def make_stats() -> DatasetStatistics:
    rng = np.random.default_rng(3)
    records = []
    for i in range(400):
        row: dict[str, object] = {
            NAMES[0]: int(rng.random() < 0.3),
            NAMES[1]: float(rng.lognormal(3, 1)) if i % 5 else float("nan"),
            NAMES[2]: [b"Paris", b"Berlin", b"<script>alert(1)</script>", b"\xff\xfe"][i % 4],
            NAMES[3]: np.array([b"x", b"y"][: i % 3], dtype=object),
            NAMES[4]: [float(i), float("inf")],
            NAMES[5]: i,
        }
        if i % 3 == 0:
            del row[NAMES[2]]
        records.append(encode_example(row))
    records.append(encode_example({NAMES[6]: np.array([], np.int64)}))
    acc = StatisticsAccumulator()
    acc.add(decode_examples(records))
    return acc.extract(["/data/part-00000-of-00001.tfrecord"])


def test_report_contains_every_feature_escaped() -> None:
    page = render_html(make_stats())
    for name in NAMES:
        assert page.count(_esc(name)) >= 2  # summary row and card
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "weird <b>" not in page
    assert "base64:" in page  # non-UTF-8 bytes are shown as base64
    assert "part-00000-of-00001.tfrecord" in page
    assert page.count("<svg") >= 3


def test_report_is_self_contained() -> None:
    page = render_html(make_stats())
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "<link" not in page
    assert "@import" not in page
    assert "url(" not in page
    assert page.count("<script>") == 1


def test_report_accepts_json_document_with_special_floats() -> None:
    doc = json.loads(json.dumps(make_stats().to_json(), allow_nan=False))
    page = render_html(doc, title="My <data>")
    assert "My &lt;data&gt;" in page
    assert "∞" in page  # the max of a feature with +inf values
    empty = render_html({"num_examples": 0, "features": []})
    assert "0 examples" in empty


def test_write_html_atomic(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    write_html(make_stats(), out)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def _esc(s: str) -> str:
    import html

    return html.escape(s)


def _visible_text(page: str) -> str:
    """The text nodes of a page outside <script>/<style>, unescaped."""
    from html.parser import HTMLParser

    chunks: list[str] = []

    class _Text(HTMLParser):
        skip = 0

        def handle_starttag(self, tag: str, attrs: object) -> None:
            self.skip += tag in ("script", "style")

        def handle_endtag(self, tag: str) -> None:
            self.skip -= tag in ("script", "style")

        def handle_data(self, data: str) -> None:
            if not self.skip:
                chunks.append(data)

    _Text().feed(page)
    return "\n".join(chunks)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    page = tmp_path / "report.html"
    write_html(make_stats(), page)
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1366,900",
    ]
    dom = subprocess.run(
        [*flags, "--dump-dom", page.as_uri()],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    # The inline script ran to its end (it marks <body data-ready="1">) and logged no error.
    assert 'data-ready="1"' in dom.stdout
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not [ln for ln in console if "rror" in ln or "Uncaught" in ln], console
    text = _visible_text(dom.stdout)
    for name in NAMES:
        assert name in text
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [*flags, f"--screenshot={shot}", page.as_uri()],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    pil = pytest.importorskip("PIL.Image")
    with pil.open(shot) as img:
        assert img.size == (1366, 900)
        colors = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colors is not None
        assert len(colors) > 50  # text, bars and charts rendered, not a blank page


def test_report_marks_unique_columns() -> None:
    acc = StatisticsAccumulator()
    acc.add(decode_examples([encode_example({"id": i, "c": i % 3}) for i in range(300)]))
    page = render_html(acc.extract())
    assert page.count("unique (row id?)") == 2  # the id's summary row and card, not c's
    row = re.search(r'<tr data-feature="id">.*?</tr>', page)
    assert row is not None and "unique (row id?)" in row.group(0)
    # A statistics file of an older version (no "unique" key) gets the mark from its counts.
    doc = acc.extract().to_json()
    for f in doc["features"]:
        del f["unique"]
    assert render_html(doc).count("unique (row id?)") == 2
