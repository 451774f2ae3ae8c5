"""A single self-contained HTML report of a skew / drift comparison.

`render_compare_html` turns a `featurepipe.analysis.Comparison` (two datasets'
statistics compared by `featurepipe.analysis.compare_statistics`) into one HTML
file in the style of the statistics report (`featurepipe.analysis.render_html`):
inline CSS, inline SVG, a few lines of inline JavaScript, no network. A summary
table lists every feature, most different first, with its distance, threshold
and change in missing fraction; then a card per feature shows both datasets
side by side: presence and summary numbers of each, the two histograms overlaid
on common bins (fractions of each dataset's values) for numbers, and the top
values with both counts and frequencies for bytes. Every string from the data
is escaped.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from typing import Any

from featurepipe.analysis._compare import Comparison, FeatureComparison, align_histograms
from featurepipe.analysis._report import _CSS, _int, _kind, _num, _plain, _value

__all__ = ["render_compare_html", "write_compare_html"]

_BASE_COLOR = "#3b6fb6"
_CUR_COLOR = "#e07b22"
_W, _H = 360, 140
_TOP_ROWS = 20

_MORE_CSS = """
.cards{grid-template-columns:repeat(auto-fill,minmax(520px,1fr))}
.sides{display:grid;grid-template-columns:1fr 1fr;gap:10px;margin:6px 0}
.side{border:1px solid #eceff3;border-radius:4px;padding:6px 8px;font-size:12.5px}
.side h4{margin:0 0 4px;font-size:12.5px}
.side.base h4{color:#3b6fb6}.side.cur h4{color:#c0601a}
.side dl{grid-template-columns:auto 1fr;margin:0}
.flag{color:#fff;background:#d9534f;border-radius:3px;padding:0 5px;font-size:11px;
font-weight:600;margin-left:6px}
.status{color:#fff;background:#6c7a91;border-radius:3px;padding:0 5px;font-size:11px;
margin-left:6px}
.dist{display:inline-block;width:70px;height:8px;background:#e6e8ec;border-radius:4px;
vertical-align:middle;margin-right:6px;overflow:hidden}
.dist i{display:block;height:100%;background:#7a3e9d}
tr.flagged td{background:#fff5f5}
.legend{font-size:12.5px;margin:4px 0 10px}
.legend b{display:inline-block;width:12px;height:10px;margin:0 4px 0 12px;vertical-align:middle}
.both td{padding:2px 4px;border:0;font-size:12.5px}
.both td.v{text-align:left;max-width:180px;overflow:hidden;text-overflow:ellipsis}
.both .bar{height:5px;border-radius:2px;min-width:1px;margin:1px 0}
.tag{font-size:10.5px;color:#8a5a00;margin-left:4px}
"""

_JS = """
(function(){
  var box=document.getElementById('filter');
  if(box){
    box.addEventListener('input',function(){
      var q=box.value.toLowerCase();
      document.querySelectorAll('[data-feature]').forEach(function(el){
        var hit=el.getAttribute('data-feature').toLowerCase().indexOf(q)>=0;
        el.classList.toggle('hidden',!hit);
      });
    });
  }
  document.body.setAttribute('data-ready','1');
})();
"""


def render_compare_html(
    comparison: Comparison, *, title: str = "featurepipe comparison"
) -> str:
    """Renders a `Comparison` as one self-contained HTML page.

    Args:
        comparison: `featurepipe.analysis.compare_statistics`' result.
        title: the page title. Defaults to `"featurepipe comparison"`.

    Returns:
        The HTML text.

    Examples:
        >>> from featurepipe.analysis import compare_statistics
        >>> empty = {"format_version": 1, "num_examples": 0, "features": [], "sources": []}
        >>> page = render_compare_html(compare_statistics(empty, empty))
        >>> page.startswith("<!DOCTYPE html>") and "http" not in page.split("<body>")[1]
        True
    """
    e = html.escape
    c = comparison
    flagged = len(c.anomalies)
    meta = [
        f"{c.mode}",
        f"baseline: {_int(c.baseline.get('num_examples', 0))} examples{_from(c.baseline)}",
        f"current: {_int(c.current.get('num_examples', 0))} examples{_from(c.current)}",
        f"{len(c.features)} features, {flagged} over the threshold",
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{e(title)}</title><style>{_CSS}{_MORE_CSS}</style></head><body>",
        f'<header><h1>{e(title)}</h1><div class="meta">{e(" · ".join(meta))}</div></header>',
        "<main>",
        '<p><input id="filter" type="search" placeholder="Filter features by name" '
        'aria-label="Filter features by name"></p>',
        f'<div class="legend">Colors:<b style="background:{_BASE_COLOR}"></b>baseline'
        f'<b style="background:{_CUR_COLOR}"></b>current · L-inf: largest difference of value '
        "frequencies (bytes) · JS: Jensen-Shannon divergence, log base 2, of the histograms on "
        "common bins (numbers)</div>",
        "<h2>Summary (most different first)</h2>",
        _summary(c.features),
        "<h2>Features</h2>",
        '<div class="cards">',
        *(_card(i, f) for i, f in enumerate(c.features)),
        "</div></main>",
        f"<script>{_JS}</script></body></html>",
    ]
    return "\n".join(parts)


def write_compare_html(
    comparison: Comparison, path: str | os.PathLike[str], **kwargs: Any
) -> None:
    """Writes `render_compare_html` output to ``path`` (UTF-8), replacing it atomically.

    Args:
        comparison: as for `render_compare_html`.
        path: the output file.
        **kwargs: passed to `render_compare_html`.
    """
    text = render_compare_html(comparison, **kwargs)
    tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _from(doc: Mapping[str, Any]) -> str:
    sources = list(doc.get("sources", []))
    if not sources:
        return ""
    shown = ", ".join(os.path.basename(s) for s in sources[:2])
    more = f" and {len(sources) - 2} more" if len(sources) > 2 else ""
    return f" from {shown}{more}"


def _metric(f: FeatureComparison) -> str:
    return {"linf": "L-inf", "jensen_shannon": "JS"}.get(f.metric or "", "\u2013")


def _distance(f: FeatureComparison) -> str:
    if f.status != "both":
        return f'<span class="status">{html.escape(f.status.replace("_", " "))}</span>'
    if f.distance is None:
        return "\u2013"
    return (
        f'<span class="dist"><i style="width:{min(f.distance, 1.0) * 100:.1f}%"></i></span>'
        f"{f.distance:.4g}"
    )


def _pct(x: float | None) -> str:
    return "\u2013" if x is None else f"{x * 100:.1f}%"


def _summary(features: Sequence[FeatureComparison]) -> str:
    head = (
        '<tr><th class="name">feature</th><th class="kind">kind</th><th>metric</th>'
        "<th>distance</th><th>threshold</th><th>missing<br><small>baseline → current"
        "</small></th><th>new / vanished values</th></tr>"
    )
    rows = []
    dash = "\u2013"
    for i, f in enumerate(features):
        flag = '<span class="flag">over</span>' if f.flagged else ""
        nv = dash if f.new_values is None else _int(len(f.new_values))
        vv = dash if f.vanished_values is None else _int(len(f.vanished_values))
        last = f"{nv} / {vv}" if f.metric == "linf" else ""
        threshold = dash if f.threshold is None else _num(f.threshold)
        css = ' class="flagged"' if f.flagged else ""
        rows.append(
            f'<tr data-feature="{html.escape(f.name)}"{css}>'
            f'<td class="name"><a href="#c{i}">{html.escape(f.name)}</a>{flag}</td>'
            f'<td class="kind">{_kind(f.kind)}</td><td>{_metric(f)}</td>'
            f"<td>{_distance(f)}</td><td>{threshold}</td>"
            f"<td>{_pct(f.baseline_missing_rate)} → {_pct(f.current_missing_rate)}</td>"
            f"<td>{last}</td></tr>"
        )
    return f'<div class="tablewrap"><table>{head}{"".join(rows)}</table></div>'


def _side(label: str, css: str, f: Mapping[str, Any] | None, rate: float | None) -> str:
    if f is None:
        return (
            f'<div class="side {css}"><h4>{label}</h4><div class="note">not in this dataset'
            "</div></div>"
        )
    vc = f.get("value_counts", {})
    pairs: list[tuple[str, str]] = [
        ("present", f"{_int(f.get('num_present', 0))} of {_int(f.get('num_examples', 0))}"),
        ("missing", _pct(rate)),
        ("values", _int(vc.get("num_values", 0))),
        ("distinct≈", _int(f.get("distinct_estimate", 0))),
    ]
    num = f.get("numeric")
    if num:
        pairs += [
            ("mean", _num(num.get("mean"))),
            ("std", _num(num.get("std"))),
            ("min", _num(num.get("min"))),
            ("max", _num(num.get("max"))),
        ]
        if num.get("num_nan") or num.get("num_inf"):
            pairs.append(("NaN / inf", f"{_int(num.get('num_nan'))} / {_int(num.get('num_inf'))}"))
    byt = f.get("bytes")
    if byt and byt.get("top_values"):
        v, k = byt["top_values"][0]
        pairs.append(("top", f"{_value(v)} ({_int(k)})"))
    dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{v}</dd>" for k, v in pairs)
    return f'<div class="side {css}"><h4>{label}</h4><dl>{dl}</dl></div>'


def _card(i: int, f: FeatureComparison) -> str:
    name = html.escape(f.name)
    flag = '<span class="flag">over threshold</span>' if f.flagged else ""
    sub = [f"{_kind(f.kind)}"]
    if f.status == "both" and f.distance is not None:
        sub.append(f"{_metric(f)} {f.distance:.4g}")
        if f.metric == "linf" and f.at_value is not None:
            sub.append(f"largest at {_value(f.at_value)}")
    elif f.status != "both":
        sub.append(html.escape(f.status.replace("_", " ")))
    if f.threshold is not None:
        sub.append(f"threshold {_num(f.threshold)}")
    out = [
        f'<section class="card" id="c{i}" data-feature="{name}">',
        f"<h3>{name}{flag}</h3>",
        f'<div class="sub">{" · ".join(sub)}</div>',
        '<div class="sides">',
        _side("baseline", "base", f.baseline, f.baseline_missing_rate),
        _side("current", "cur", f.current, f.current_missing_rate),
        "</div>",
    ]
    bnum = (f.baseline or {}).get("numeric")
    cnum = (f.current or {}).get("numeric")
    if f.histograms is not None:
        out.append(_overlaid_histogram(f.histograms[0], f.histograms[1], f.name, quantile=True))
    elif bnum or cnum:
        out.append(_overlaid_histogram(_hist_of(bnum or {}), _hist_of(cnum or {}), f.name))
    bbyt = (f.baseline or {}).get("bytes")
    cbyt = (f.current or {}).get("bytes")
    if bbyt or cbyt:
        out.append(_top_values_both(f, bbyt or {}, cbyt or {}))
    out.append("</section>")
    return "\n".join(out)


def _hist_of(num: Mapping[str, Any]) -> dict[str, Any]:
    h = dict(num.get("histogram") or {})
    h["num_nan"] = num.get("num_nan", 0)
    h["num_inf"] = num.get("num_inf", 0)
    return h


def _overlaid_histogram(
    hist_a: Mapping[str, Any], hist_b: Mapping[str, Any], name: str, *, quantile: bool = False
) -> str:
    labels, a, b = align_histograms(hist_a, hist_b)
    if not labels:
        return '<div class="note">No finite values to plot.</div>'
    ta, tb = sum(a) or 1.0, sum(b) or 1.0
    fa = [x / ta for x in a]
    fb = [x / tb for x in b]
    top = max(fa + fb) or 1.0
    w, h, pad, head = _W, _H, 14, 12
    bw = w / len(labels)
    bars = []
    for j, lab in enumerate(labels):
        for frac, color in ((fa[j], _BASE_COLOR), (fb[j], _CUR_COLOR)):
            bh = 0.0 if frac <= 0 else max(1.0, (h - pad - head) * frac / top)
            who = "baseline" if color == _BASE_COLOR else "current"
            bars.append(
                f'<rect x="{j * bw + 0.5:.2f}" y="{h - pad - bh:.2f}" '
                f'width="{max(bw - 1, 0.5):.2f}" height="{bh:.2f}" fill="{color}" '
                f'fill-opacity="0.55"><title>{html.escape(lab)} {who}: {frac * 100:.2f}%'
                "</title></rect>"
            )
    first, last = labels[0], labels[-1]
    left = first.split(",")[0].lstrip("[=") if first.startswith(("[", "=")) else first
    right = last.split(", ")[-1].rstrip(")") if last.startswith("[") else last.lstrip("=")
    return (
        '<div class="sub" style="margin-top:6px">histograms on common bins '
        f"{'(equal pooled mass) ' if quantile else ''}(share of each dataset's values)</div>"
        f'<svg role="img" aria-label="Histograms of {html.escape(name)}" width="100%" '
        f'viewBox="0 0 {w} {h + 2}" preserveAspectRatio="none" style="max-height:{h + 2}px">'
        f'<line x1="0" y1="{h - pad}" x2="{w}" y2="{h - pad}" stroke="#c6ccd6"/>'
        + "".join(bars)
        + f'<text x="1" y="{h}">{html.escape(left)}</text>'
        f'<text x="{w - 1}" y="{h}" text-anchor="end">{html.escape(right)}</text>'
        f'<text x="1" y="9">{top * 100:.1f}%</text></svg>'
    )


def _num_values(f: Mapping[str, Any] | None) -> int:
    return int(((f or {}).get("value_counts") or {}).get("num_values", 0))


def _top_values_both(
    f: FeatureComparison, bbyt: Mapping[str, Any], cbyt: Mapping[str, Any]
) -> str:
    def table(byt: Mapping[str, Any]) -> dict[str, tuple[Any, int]]:
        return {_plain(v): (v, int(c)) for v, c in byt.get("top_values", [])}

    tb, tc = table(bbyt), table(cbyt)
    # shares of all values (not only of the listed ones)
    sb = max(sum(c for _, c in tb.values()), _num_values(f.baseline)) or 1
    sc = max(sum(c for _, c in tc.values()), _num_values(f.current)) or 1
    keys = sorted(
        set(tb) | set(tc),
        key=lambda k: (-max(tb.get(k, (None, 0))[1] / sb, tc.get(k, (None, 0))[1] / sc), k),
    )
    if not keys:
        return '<div class="note">No values.</div>'
    new = {_plain(v) for v, _ in f.new_values or ()}
    gone = {_plain(v) for v, _ in f.vanished_values or ()}
    peak = max(
        max((c / sb for _, c in tb.values()), default=0.0),
        max((c / sc for _, c in tc.values()), default=0.0),
    ) or 1.0
    rows = []
    for k in keys[:_TOP_ROWS]:
        v = (tb.get(k) or tc.get(k) or (k, 0))[0]
        cb = tb.get(k, (None, 0))[1]
        cc = tc.get(k, (None, 0))[1]
        tag = (
            '<span class="tag">new</span>' if k in new
            else '<span class="tag">vanished</span>' if k in gone else ""
        )
        rows.append(
            f'<tr><td class="v" title="{html.escape(k)}">{_value(v)}{tag}</td>'
            f'<td style="width:34%"><div class="bar" style="width:{100 * cb / sb / peak:.1f}%;'
            f'background:{_BASE_COLOR}"></div><div class="bar" style="width:'
            f'{100 * cc / sc / peak:.1f}%;background:{_CUR_COLOR}"></div></td>'
            f'<td class="nb">{_int(cb)}</td><td>{cb / sb * 100:.1f}%</td>'
            f'<td class="nc">{_int(cc)}</td><td>{cc / sc * 100:.1f}%</td></tr>'
        )
    more = len(keys) - _TOP_ROWS
    note = f'<div class="note">{more} more values not shown.</div>' if more > 0 else ""
    return (
        '<div class="sub" style="margin-top:6px">top values</div>'
        '<table class="both"><tr><td></td><td></td><td><b>baseline</b></td><td></td>'
        f'<td><b>current</b></td><td></td></tr>{"".join(rows)}</table>{note}'
    )
