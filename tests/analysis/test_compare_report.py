"""The comparison HTML report (featurepipe.analysis._compare_report).

The Chromium test needs Debian's ``chromium`` package (``apt-get install -y chromium``) and
skips when no ``chromium`` / ``chromium-browser`` / ``google-chrome`` binary is on PATH.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from featurepipe.analysis import (
    StatisticsAccumulator,
    StatsOptions,
    compare_statistics,
    render_compare_html,
    write_compare_html,
)
from featurepipe.example import decode_examples, encode_example

NAMES = ["price", "city", "weird <b>&\"name'", "label", "gone", "fresh"]


def make_stats(n: int, shift: float, seed: int, cities: list[bytes], gone: bool) -> Any:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        row: dict[str, object] = {
            NAMES[0]: float(rng.lognormal(3 + shift, 1)) if i % 7 else float("nan"),
            NAMES[1]: cities[i % len(cities)],
            NAMES[2]: [b"<script>alert(1)</script>", b"ok"][i % 2],
            NAMES[3]: int(rng.random() < 0.3 + shift / 4),
        }
        if gone:
            row[NAMES[4]] = 1.0
        else:
            row[NAMES[5]] = b"x"
        records.append(encode_example(row))
    acc = StatisticsAccumulator(StatsOptions(top_k=1000))
    acc.add(decode_examples(records))
    return acc.extract(sources=[f"data-{seed}.tfrecord"])


def make_comparison() -> Any:
    base = make_stats(400, 0.0, 1, [b"Paris", b"Berlin", b"\xff\xfe"], gone=True)
    cur = make_stats(300, 0.4, 2, [b"Paris", b"Berlin", b"Berlin", b"Lima"], gone=False)
    return compare_statistics(base, cur, threshold=0.1)


def _visible_text(page: str) -> str:
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

    _Text(convert_charrefs=True).feed(page)
    return " ".join(chunks)


def _cards(page: str) -> dict[str, str]:
    """Visible text of each feature card, by feature name."""
    import html

    out = {}
    for part in page.split('<section class="card"')[1:]:
        name = html.unescape(re.search(r'data-feature="([^"]*)"', part).group(1))  # type: ignore[union-attr]
        out[name] = _visible_text(part.split("</section>")[0])
    return out


def check_page(page: str) -> None:
    cards = _cards(page)
    assert set(cards) == set(NAMES)
    for name, text in cards.items():
        assert "baseline" in text and "current" in text, name
    # both datasets' numbers on every card present in both
    for name in NAMES[:4]:
        assert "400 of 400" in cards[name] and "300 of 300" in cards[name], name
    assert "not in this dataset" in cards["gone"] and "not in this dataset" in cards["fresh"]
    # top values with both counts: Berlin 133 of 400 vs 150 of 300
    city = cards["city"]
    assert re.search(r"Berlin\s+133\s+33\.\d%\s+150\s+50\.0%", city), city
    assert "Lima" in city and "new" in city and "vanished" in city
    # overlaid histograms: two series
    assert page.count('fill="#3b6fb6" fill-opacity') > 3
    assert page.count('fill="#e07b22" fill-opacity') > 3


def test_render_offline_escaped_and_sorted() -> None:
    page = render_compare_html(make_comparison())
    assert page.startswith("<!DOCTYPE html>")
    body = page.split("<body>")[1]
    assert "http" not in body and "<script>alert" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    check_page(page)
    # summary rows follow the comparison order: one-sided features first, then by distance
    order = re.findall(r'<tr data-feature="([^"]*)"', page)
    assert order[:2] == ["fresh", "gone"]
    cmp = make_comparison()
    dists = [f.distance for f in cmp.features if f.distance is not None]
    assert dists == sorted(dists, reverse=True)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_compare_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    page = tmp_path / "compare.html"
    write_compare_html(make_comparison(), page)
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
    assert 'data-ready="1"' in dom.stdout
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not [ln for ln in console if "rror" in ln or "Uncaught" in ln], console
    check_page(dom.stdout)
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [*flags, f"--screenshot={shot}", page.as_uri()],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    pil = pytest.importorskip("PIL.Image")
    with pil.open(shot) as img:
        assert img.size == (1366, 900)
        colors = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colors is not None and len(colors) > 50
