"""A single self-contained HTML report of dataset statistics.

`render_html` turns the ``featurepipe inspect stats --json`` document (or a
`featurepipe.analysis.DatasetStatistics`) into one HTML file with inline CSS,
inline SVG charts and a few lines of inline JavaScript (a name filter): no
network, no CDN, no notebook. The page has a summary table of every feature
(kind, presence, list lengths, distinct values, moments) and a card per
feature with its histogram (numeric) or top values (bytes), its missing rate
and its list-length distribution. Every string from the data is escaped.
"""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from featurepipe._util import write_text
from featurepipe.analysis._stats import is_unique_count

__all__ = ["render_html", "write_html"]

_BAR_COLOR = "#3b6fb6"
_MISSING_COLOR = "#d9534f"
_HIST_W, _HIST_H = 340, 130
_MAX_LABEL = 48  # characters of a value shown before eliding

_CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#f5f6f8}
header{background:#1f2a44;color:#fff;padding:14px 24px}
header h1{font-size:20px;margin:0 0 4px}
header .meta{opacity:.85;font-size:13px}
main{max-width:1440px;margin:0 auto;padding:16px 24px 48px}
h2{font-size:16px;margin:24px 0 8px}
.tablewrap{overflow-x:auto;background:#fff;border:1px solid #dde1e8;border-radius:6px}
table{border-collapse:collapse;width:100%}
th,td{padding:5px 7px;border-bottom:1px solid #eceff3;text-align:right;white-space:nowrap}
th{background:#f0f2f6;font-weight:600;position:sticky;top:0}
td.name,th.name{text-align:left;font-weight:600;max-width:260px;overflow:hidden;
text-overflow:ellipsis}
td.kind,th.kind{text-align:left}
td.topv{text-align:left;max-width:200px;overflow:hidden;text-overflow:ellipsis}
tr:hover td{background:#f7f9fc}
.kind-bytes{color:#7a3e9d}.kind-int64{color:#1d6b3a}.kind-float{color:#1f5fa8}
.kind-none{color:#888}
.miss{display:inline-block;width:60px;height:8px;background:#e6e8ec;border-radius:4px;
vertical-align:middle;margin-right:6px;overflow:hidden}
.miss i{display:block;height:100%;background:#d9534f}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:14px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:12px 14px}
.card h3{font-size:15px;margin:0 0 2px;word-break:break-all}
.card .sub{color:#5b6475;font-size:12px;margin-bottom:8px}
.card dl{display:grid;grid-template-columns:auto 1fr auto 1fr;gap:2px 10px;margin:6px 0;
font-size:12.5px}
.card dt{color:#5b6475}.card dd{margin:0;font-variant-numeric:tabular-nums}
.top{width:100%;font-size:12.5px}
.top td{padding:2px 4px;border:0}
.top td.v{text-align:left;max-width:200px;overflow:hidden;text-overflow:ellipsis}
.top .bar{height:10px;background:#7a3e9d;border-radius:2px;min-width:1px}
.note{color:#8a5a00;font-size:12px}
.uniq{color:#8a5a00;font-size:11px;white-space:nowrap}
svg text{font-size:10px;fill:#5b6475}
#filter{padding:5px 8px;border:1px solid #c6ccd6;border-radius:4px;width:260px}
.hidden{display:none}
td.desc{text-align:left;white-space:normal}
tr.anomaly td{background:#fff5f5}
.ok{color:#1d6b3a;font-weight:600}
"""

_JS = """
(function(){
  var box=document.getElementById('filter');
  document.body.setAttribute('data-ready','1');
  if(!box){return;}
  box.addEventListener('input',function(){
    var q=box.value.toLowerCase();
    document.querySelectorAll('[data-feature]').forEach(function(el){
      var hit=el.getAttribute('data-feature').toLowerCase().indexOf(q)>=0;
      el.classList.toggle('hidden',!hit);
    });
  });
})();
"""


def render_html(
    stats: Any,
    *,
    title: str = "featurepipe statistics",
    anomalies: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """Renders statistics as one self-contained HTML page.

    Args:
        stats: a `featurepipe.analysis.DatasetStatistics`, or its ``to_json()`` document.
        title: the page title. Defaults to `"featurepipe statistics"`.
        anomalies: anomalies to list above the summary (`featurepipe.analysis.Anomaly`
            ``to_json()`` dicts, from ``inspect validate``); ``None`` for no
            such section. Defaults to `None`.

    Returns:
        The HTML text.

    Examples:
        >>> page = render_html({"num_examples": 0, "features": [], "sources": []})
        >>> page.startswith("<!DOCTYPE html>") and "http" not in page.split("<body>")[1]
        True
    """
    doc: Mapping[str, Any] = stats.to_json() if hasattr(stats, "to_json") else stats
    # Natural order for display: C2 before C10.
    features: Sequence[Mapping[str, Any]] = sorted(
        doc.get("features", []), key=lambda f: _natural_key(str(f["name"]))
    )
    sources = list(doc.get("sources", []))
    e = html.escape
    meta = [f"{_int(doc.get('num_examples', 0))} examples", f"{len(features)} features"]
    if sources:
        shown = ", ".join(os.path.basename(s) for s in sources[:3])
        more = f" and {len(sources) - 3} more" if len(sources) > 3 else ""
        meta.append(f"from {shown}{more}")
    if doc.get("featurepipe_version"):
        meta.append(f"featurepipe {doc['featurepipe_version']}")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f'<header><h1>{e(title)}</h1><div class="meta">{e(" · ".join(meta))}</div></header>',
        "<main>",
        '<p><input id="filter" type="search" placeholder="Filter features by name" '
        'aria-label="Filter features by name"></p>',
        *(() if anomalies is None else (_anomalies_table(anomalies),)),
        "<h2>Summary</h2>",
        _summary_table(features),
        "<h2>Features</h2>",
        '<div class="cards">',
        *(_card(i, f) for i, f in enumerate(features)),
        "</div></main>",
        f"<script>{_JS}</script></body></html>",
    ]
    return "\n".join(parts)


def write_html(stats: Any, path: str | os.PathLike[str], **kwargs: Any) -> None:
    """Writes `render_html` output to ``path`` (UTF-8), replacing it atomically.

    Args:
        stats: as for `render_html`.
        path: the output file.
        **kwargs: passed to `render_html`.
    """
    text = render_html(stats, **kwargs)
    write_text(path, text)


def _anomalies_table(anomalies: Sequence[Mapping[str, Any]]) -> str:
    e = html.escape
    if not anomalies:
        return '<h2>Anomalies</h2><p class="ok">No anomalies: the data fits the schema.</p>'
    head = (
        '<tr><th class="name">feature</th><th class="kind">anomaly</th><th>severity</th>'
        '<th>count</th><th class="kind">description</th></tr>'
    )
    rows = []
    for a in anomalies:
        count = a.get("count")
        shown = "?" if count is None else ("\u2265" if a.get("approximate") else "") + _int(count)
        rows.append(
            f'<tr class="anomaly" data-feature="{e(str(a.get("feature", "")))}">'
            f'<td class="name">{e(str(a.get("feature", "")))}</td>'
            f'<td class="kind"><code>{e(str(a.get("type", "")))}</code></td>'
            f'<td>{e(str(a.get("severity", "")))}</td><td>{shown}</td>'
            f'<td class="desc">{e(str(a.get("description", "")))}</td></tr>'
        )
    return (
        f"<h2>Anomalies ({len(anomalies)})</h2>"
        f'<div class="tablewrap"><table>{head}{"".join(rows)}</table></div>'
    )


def _summary_table(features: Sequence[Mapping[str, Any]]) -> str:
    head = (
        '<tr><th class="name">feature</th><th class="kind">kind</th><th>missing</th>'
        "<th>values / example<br><small>min · mean · max</small></th><th>distinct≈</th>"
        "<th>mean</th><th>std</th><th>min</th><th>median</th><th>max</th>"
        "<th>NaN / inf</th><th>top value</th></tr>"
    )
    rows = []
    for i, f in enumerate(features):
        vc = f.get("value_counts", {})
        num = f.get("numeric")
        byt = f.get("bytes")
        rate = float(f.get("missing_rate", 0.0))
        cells = [
            f'<td class="name"><a href="#f{i}">{html.escape(str(f["name"]))}</a></td>',
            f'<td class="kind">{_kind(f.get("kind"))}</td>',
            f'<td><span class="miss"><i style="width:{rate * 100:.1f}%"></i></span>'
            f"{rate * 100:.1f}%</td>",
            f"<td>{_int(vc.get('min', 0))} · {_num(vc.get('mean', 0.0))} · "
            f"{_int(vc.get('max', 0))}</td>",
            f"<td>{_int(f.get('distinct_estimate', 0))}{_unique_mark(f)}</td>",
        ]
        if num:
            cells += [
                f"<td>{_num(num['mean'])}</td>",
                f"<td>{_num(num['std'])}</td>",
                f"<td>{_num(num['min'])}</td>",
                f"<td>{_num(_median(num))}</td>",
                f"<td>{_num(num['max'])}</td>",
                f"<td>{_int(num['num_nan'])} / {_int(num['num_inf'])}</td>",
            ]
        else:
            cells += ["<td></td>"] * 6
        if byt and byt.get("top_values"):
            value, count = byt["top_values"][0]
            cells.append(f'<td class="topv">{_value(value)} ({_int(count)})</td>')
        else:
            cells.append("<td></td>")
        rows.append(f'<tr data-feature="{html.escape(str(f["name"]))}">{"".join(cells)}</tr>')
    return f'<div class="tablewrap"><table>{head}{"".join(rows)}</table></div>'


def _unique_mark(f: Mapping[str, Any]) -> str:
    # From the counts, so that statistics files of older versions (no "unique" key) get it.
    distinct = int(f.get("distinct_estimate", 0) or 0)
    num_values = int(f.get("value_counts", {}).get("num_values", 0) or 0)
    if not is_unique_count(distinct, num_values):
        return ""
    return (
        ' <span class="uniq" title="every value appears once: an id, not a feature to '
        'learn from">unique (row id?)</span>'
    )


def _card(i: int, f: Mapping[str, Any]) -> str:
    name = html.escape(str(f["name"]))
    vc = f.get("value_counts", {})
    rate = float(f.get("missing_rate", 0.0))
    out = [
        f'<section class="card" id="f{i}" data-feature="{name}">',
        f"<h3>{name}</h3>",
        f'<div class="sub">{_kind(f.get("kind"))} · present in {_int(f.get("num_present", 0))}'
        f" of {_int(f.get('num_examples', 0))} examples · missing {rate * 100:.1f}%</div>",
        f'<span class="miss" style="width:100%"><i style="width:{rate * 100:.2f}%"></i></span>',
    ]
    num = f.get("numeric")
    byt = f.get("bytes")
    stats_pairs: list[tuple[str, str]] = [
        ("values", _int(vc.get("num_values", 0))),
        ("distinct≈", _int(f.get("distinct_estimate", 0)) + _unique_mark(f)),
        ("list len", f"{_int(vc.get('min', 0))}\u2013{_int(vc.get('max', 0))}"),
        ("empty lists", _int(vc.get("num_empty_lists", 0))),
    ]
    if num:
        stats_pairs += [
            ("mean", _num(num["mean"])),
            ("std", _num(num["std"])),
            ("min", _num(num["min"])),
            ("max", _num(num["max"])),
            ("median", _num(_median(num))),
            ("zeros", _int(num["num_zeros"])),
            ("NaN", _int(num["num_nan"])),
            ("±inf", _int(num["num_inf"])),
        ]
    if byt:
        stats_pairs += [
            ("avg bytes", _num(byt["avg_length"])),
            ("bytes min-max", f"{_int(byt['min_length'])}\u2013{_int(byt['max_length'])}"),
        ]
    out.append(
        "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{v}</dd>" for k, v in stats_pairs) + "</dl>"
    )
    if num:
        out.append(_histogram_svg(num.get("histogram", {}), f"Histogram of {f['name']}"))
    if byt:
        out.append(_top_values(byt))
    out.append(_lengths_svg(f.get("length_histogram", []), f"List lengths of {f['name']}"))
    out.append("</section>")
    return "\n".join(out)


def _histogram_svg(hist: Mapping[str, Any], label: str) -> str:
    counts = [float(c) for c in hist.get("counts", [])]
    edges = list(hist.get("edges", []))
    if not counts:
        return '<div class="note">No finite values to plot.</div>'
    return _bars_svg(
        counts,
        [f"[{_num(edges[j])}, {_num(edges[j + 1])})" for j in range(len(counts))],
        left=_num(edges[0]),
        right=_num(edges[-1]),
        label=label,
        color=_BAR_COLOR,
    )


def _lengths_svg(slots: Sequence[int], label: str) -> str:
    if not slots or not any(slots):
        return ""
    last = max(i for i, c in enumerate(slots) if c)
    if sum(1 for c in slots if c) == 1:
        plus = "+" if last == len(slots) - 1 else ""
        return (
            f'<div class="sub" style="margin-top:6px">values per example: always {last}{plus}</div>'
        )
    shown = [float(c) for c in slots[: last + 1]]
    names = [f"{j} values" for j in range(len(shown))]
    if last == len(slots) - 1:
        names[-1] = f"{last}+ values"
    right = f"{last}+" if last == len(slots) - 1 else str(last)
    return '<div class="sub" style="margin-top:6px">values per example</div>' + _bars_svg(
        shown, names, left="0", right=right, label=label, color="#6c7a91", height=60
    )


def _bars_svg(
    counts: Sequence[float],
    names: Sequence[str],
    *,
    left: str,
    right: str,
    label: str,
    color: str,
    height: int = _HIST_H,
) -> str:
    w, h, pad, head = _HIST_W, height, 14, 12  # pad: x labels below; head: y label above
    top = max(counts) or 1.0
    bw = w / len(counts)
    bars = []
    for j, c in enumerate(counts):
        bh = 0.0 if c <= 0 else max(1.0, (h - pad - head) * c / top)
        bars.append(
            f'<rect x="{j * bw + 0.5:.2f}" y="{h - pad - bh:.2f}" width="{max(bw - 1, 0.5):.2f}" '
            f'height="{bh:.2f}" fill="{color}"><title>{html.escape(names[j])}: '
            f"{_int(round(c))}</title></rect>"
        )
    return (
        f'<svg role="img" aria-label="{html.escape(label)}" width="100%" viewBox="0 0 {w} {h + 2}"'
        f' preserveAspectRatio="none" style="max-height:{h + 2}px">'
        f'<line x1="0" y1="{h - pad}" x2="{w}" y2="{h - pad}" stroke="#c6ccd6"/>'
        + "".join(bars)
        + f'<text x="1" y="{h}">{html.escape(left)}</text>'
        f'<text x="{w - 1}" y="{h}" text-anchor="end">{html.escape(right)}</text>'
        f'<text x="1" y="9">{_int(round(top))}</text></svg>'
    )


def _top_values(byt: Mapping[str, Any]) -> str:
    top = byt.get("top_values", [])
    if not top:
        return '<div class="note">No values.</div>'
    peak = max(int(c) for _, c in top) or 1
    rows = "".join(
        f'<tr><td class="v" title="{html.escape(_plain(v))}">{_value(v)}</td>'
        f'<td style="width:45%"><div class="bar" style="width:{100 * int(c) / peak:.1f}%"></div>'
        f"</td><td>{_int(c)}</td></tr>"
        for v, c in top
    )
    note = (
        ""
        if byt.get("top_values_exact", True)
        else '<div class="note">Too many distinct values to count exactly: counts are lower '
        "bounds.</div>"
    )
    return (
        f'<div class="sub" style="margin-top:6px">top values</div>'
        f'<table class="top">{rows}</table>{note}'
    )


def _natural_key(name: str) -> list[Any]:
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)
    ]


def _plain(v: Any) -> str:
    if isinstance(v, Mapping) and "base64" in v:
        return f"base64:{v['base64']}"
    return str(v)


def _value(v: Any) -> str:
    text = _plain(v)
    if text == "":
        return "<i>(empty)</i>"
    if len(text) > _MAX_LABEL:
        text = text[: _MAX_LABEL - 1] + "…"
    return html.escape(text)


def _kind(kind: Any) -> str:
    k = "none" if kind is None else str(kind)
    css = k if k in {"bytes", "int64", "float"} else "none"
    return f'<span class="kind-{css}">{html.escape(k)}</span>'


def _median(num: Mapping[str, Any]) -> Any:
    for q, v in num.get("quantiles", []):
        if q == 0.5:
            return v
    return None


def _num(x: Any) -> str:
    if x is None:
        return "\u2013"
    if isinstance(x, str):
        return {"NaN": "NaN", "Infinity": "∞", "-Infinity": "\u2212∞"}.get(x, html.escape(x))
    v = float(x)
    if math.isnan(v):
        return "NaN"
    if v != 0 and (abs(v) >= 1e7 or abs(v) < 1e-3):
        return f"{v:.4g}"
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.4g}" if abs(v) >= 1000 else f"{v:.4g}"


def _int(x: Any) -> str:
    try:
        return f"{int(x):,}"
    except (TypeError, ValueError):
        return html.escape(str(x))
