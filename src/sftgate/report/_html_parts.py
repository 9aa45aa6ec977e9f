"""The building blocks of the HTML report: its stylesheet and script, SVG charts, the word diff.

Charts are drawn here as inline SVG so that they render without JavaScript and without any
fetch; the page's Content-Security-Policy forbids fetches anyway. Everything that reaches the
page goes through `esc`.
"""

from __future__ import annotations

import difflib
import html
import math
import re
from collections.abc import Sequence
from typing import Any

# The one fetch policy of the page: nothing from the network, inline style and script only.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

STYLE = """
:root{--fg:#1d2939;--muted:#667085;--line:#e4e7ec;--bg:#f5f6f8;--card:#fff;--accent:#3e63dd;
--err:#b42318;--err-bg:#fef3f2;--warn:#a15c07;--warn-bg:#fffaeb;--info:#175cd3;--info-bg:#eff8ff;
--ok:#067647;--ok-bg:#ecfdf3;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
header{background:#101828;color:#fff;padding:14px 24px 0}
header h1{margin:0;font-size:20px;font-weight:600}
header h1 .badge{margin-left:10px;vertical-align:2px}
header .meta{margin:2px 0 8px;color:#d0d5dd;font-size:13px}
header .meta code{color:#fff}
nav{display:flex;flex-wrap:wrap;gap:2px 14px;padding:6px 0 10px;font-size:13px}
nav a{color:#c7d7fe;text-decoration:none}
nav a:hover{color:#fff;text-decoration:underline}
main{max-width:1240px;margin:0 auto;padding:16px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 18px 16px;
margin:0 0 16px;scroll-margin-top:8px}
h2{font-size:17px;margin:0 0 8px}
h3{font-size:14px;margin:16px 0 6px}
h4{font-size:13px;margin:10px 0 4px;color:var(--muted);font-weight:600}
p{margin:6px 0}
a{color:var(--accent)}
code,.mono{font-family:var(--mono);font-size:12.5px}
.muted{color:var(--muted)}
.note{color:var(--muted);font-size:13px}
.cut{background:var(--warn-bg);border-left:3px solid var(--warn);padding:4px 10px;border-radius:4px;font-size:13px}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;font-weight:700;font-size:13px;letter-spacing:.04em}
.badge.passed{background:var(--ok-bg);color:var(--ok)}
.badge.failed{background:var(--err-bg);color:var(--err)}
#verdict.passed{border-left:6px solid var(--ok)}
#verdict.failed{border-left:6px solid var(--err)}
#verdict .big{font-size:26px;font-weight:800;letter-spacing:.04em;margin-right:10px}
#verdict.passed .big{color:var(--ok)}
#verdict.failed .big{color:var(--err)}
.stats{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.stat{border:1px solid var(--line);border-radius:8px;padding:6px 12px;min-width:120px}
.stat b{display:block;font-size:20px;font-variant-numeric:tabular-nums}
.stat span{color:var(--muted);font-size:12px}
.stat.error b{color:var(--err)}
.stat.warning b{color:var(--warn)}
.stat.info b{color:var(--info)}
.table-wrap{overflow-x:auto;margin:6px 0}
table{border-collapse:collapse;width:100%;font-size:13px}
table.narrow{width:auto;min-width:50%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#f9fafb;font-weight:600;white-space:nowrap}
th[data-sort-dir]::after{content:" \\2195";color:var(--muted)}
table.sortable th{cursor:pointer}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.loc{font-family:var(--mono);font-size:12px;overflow-wrap:anywhere;min-width:9em}
td.msg{min-width:18em}
tr.sev-error td:first-child{box-shadow:inset 3px 0 var(--err)}
tr.sev-warning td:first-child{box-shadow:inset 3px 0 var(--warn)}
tr.sev-info td:first-child{box-shadow:inset 3px 0 var(--info)}
.sev{display:inline-block;padding:0 7px;border-radius:4px;font-size:12px;font-weight:600}
.sev.error{background:var(--err-bg);color:var(--err)}
.sev.warning{background:var(--warn-bg);color:var(--warn)}
.sev.info{background:var(--info-bg);color:var(--info)}
.action{font-size:12px;color:var(--muted)}
.action.drop{color:var(--err)}
svg{display:block}
svg.meter{display:inline-block;width:90px;height:8px;margin-right:10px;background:#f2f4f7;border-radius:4px}
svg.meter rect{fill:var(--accent)}
svg.accounting{width:100%;height:10px;border-radius:5px;margin-top:3px}
.acc-valid{fill:#32d583}.acc-invalid_record{fill:#f97066}.acc-blank{fill:#d0d5dd}.acc-other{fill:#fdb022}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:var(--muted);margin:4px 0}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.legend .acc-valid{background:#32d583}.legend .acc-invalid_record{background:#f97066}
.legend .acc-blank{background:#d0d5dd}.legend .acc-other{background:#fdb022}
.legend .series-a{background:#4e79a7}.legend .series-b{background:#f28e2b}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:12px}
figure{margin:0;border:1px solid var(--line);border-radius:8px;padding:8px 10px}
figcaption{font-size:12.5px;font-weight:600;margin-bottom:2px}
figure svg{width:100%;height:auto}
.chart .bar{fill:#4e79a7}.chart .bar:hover{fill:#2f4b7c}
.chart .series-b{fill:#f28e2b;fill-opacity:.75}
.chart .axis{stroke:#98a2b3;stroke-width:1}
.chart .grid{stroke:#eaecf0;stroke-width:1}
.chart text{font:11px system-ui,sans-serif;fill:#667085}
.chart .limit{stroke:#d92d20;stroke-width:1.5;stroke-dasharray:4 3}
.chart text.limit-label{fill:#d92d20;font-weight:600}
svg.spark{width:160px;height:36px;background:#f9fafb;border-radius:3px}
.spark .train{fill:#4e79a7;fill-opacity:.6}
.spark .prod{fill:none;stroke:#f28e2b;stroke-width:1.5}
.spark .hit{fill:transparent}.spark .hit:hover{fill:#10182810}
.snippet{margin:0 0 6px;padding-left:6px;border-left:2px solid var(--line);white-space:pre-wrap;word-break:break-word;
font:12px/1.4 var(--mono);max-height:9em;overflow:auto}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:10px;margin:6px 0 12px}
.pane h4{margin:0 0 3px}
pre.text{margin:0;white-space:pre-wrap;word-break:break-word;background:#f9fafb;border:1px solid var(--line);
border-radius:6px;padding:8px 10px;font:12.5px/1.45 var(--mono);max-height:22em;overflow:auto}
ins{background:#d1fadf;color:#054f31;text-decoration:none;border-radius:2px}
del{background:#fee4e2;color:#7a271a;text-decoration:line-through;border-radius:2px}
mark{background:#fef0c7;border-radius:2px}
details{margin:6px 0}
summary{cursor:pointer;font-weight:600;font-size:13px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0;font-size:13px}
dl.kv dt{color:var(--muted)}
dl.kv dd{margin:0}
.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:8px 0}
.filters select,.filters input{font:inherit;padding:4px 6px;border:1px solid #d0d5dd;border-radius:6px;background:#fff}
.filters input{min-width:16em}
[hidden]{display:none!important}
footer{max-width:1240px;margin:0 auto;padding:0 16px 24px;color:var(--muted);font-size:12px}
@media (max-width:760px){
header{padding:12px 14px 0}main{padding:10px}section{padding:12px}
.pair{grid-template-columns:1fr}.stat{min-width:44%}.filters input{min-width:0;flex:1}}
"""

# Sorting for every `table.sortable`, filtering for the findings table. Without it the page
# shows every row it holds; the filter controls stay hidden.
SCRIPT = """
(function () {
  "use strict";
  function key(cell) {
    var v = cell.getAttribute("data-v");
    if (v !== null) { return parseFloat(v); }
    return cell.textContent.trim().toLowerCase();
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.setAttribute("data-sort-dir", "");
      th.addEventListener("click", function () {
        var dir = th.getAttribute("data-sort-dir") === "asc" ? "desc" : "asc";
        th.setAttribute("data-sort-dir", dir);
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          var c = x < y ? -1 : x > y ? 1 : 0;
          return dir === "asc" ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  var table = document.getElementById("findings-table");
  var box = document.getElementById("findings-filters");
  if (!table || !box) { return; }
  var rule = document.getElementById("filter-rule");
  var sev = document.getElementById("filter-severity");
  var text = document.getElementById("filter-text");
  var count = document.getElementById("filter-count");
  var rows = table.tBodies[0].rows;
  function apply() {
    var r = rule.value, s = sev.value, t = text.value.trim().toLowerCase(), shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var ok = (!r || row.getAttribute("data-code") === r) && (!s || row.getAttribute("data-sev") === s) &&
               (!t || row.textContent.toLowerCase().indexOf(t) >= 0);
      row.hidden = !ok;
      if (ok) { shown++; }
    }
    count.textContent = shown.toLocaleString("en-US") + " of " + rows.length.toLocaleString("en-US") + " rows";
  }
  rule.addEventListener("change", apply);
  sev.addEventListener("change", apply);
  text.addEventListener("input", apply);
  Array.prototype.forEach.call(document.querySelectorAll("a[data-rule]"), function (a) {
    a.addEventListener("click", function () { rule.value = a.getAttribute("data-rule"); apply(); });
  });
  box.hidden = false;
  apply();
})();
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def cut(text: str, limit: int) -> str:
    """`text` up to `limit` characters; a longer one ends with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- charts ------------------------------------------------------------------------------------

_W, _H = 400, 170  # the viewBox; the figure scales it to its column
_LEFT, _RIGHT, _TOP, _BOTTOM = 40, 10, 14, 26


def _compact(n: float) -> str:
    """A tick label: 4K for 4,096, 1M for 1,048,576 (token buckets are powers of two)."""
    for suffix, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g}{suffix}"
    return f"{n:g}"


def _frame(body: list[str], label: str, ymax: float, yfmt: str) -> str:
    """An SVG with a y axis from 0 to `ymax` around the plot `body`."""
    bottom = _H - _BOTTOM
    out = [f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-label="{esc(label)}">',
           f"<title>{esc(label)}</title>"]
    for frac in (0.5, 1.0):
        y = bottom - frac * (bottom - _TOP)
        out.append(f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}"/>')
        out.append(f'<text x="{_LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">{esc(format(ymax * frac, yfmt))}</text>')
    out.append(f'<text x="{_LEFT - 4}" y="{bottom + 3}" text-anchor="end">0</text>')
    out.extend(body)
    out.append(f'<line class="axis" x1="{_LEFT}" y1="{bottom}" x2="{_W - _RIGHT}" y2="{bottom}"/>')
    out.append("</svg>")
    return "".join(out)


def log2_histogram(bins: Sequence[dict[str, Any]], *, limit: int | None, label: str) -> str:
    """Bars over power-of-two buckets ([0,1), [1,2), [2,4), …) with the token `limit` as a
    dashed line. The axis reaches the limit, so that the distance to it shows."""
    counts: dict[int, int] = {}
    for b in bins:
        counts[int(b["from"]).bit_length()] = counts.get(int(b["from"]).bit_length(), 0) + int(b["count"])
    limit_x = 1 + math.log2(limit) if limit else None
    slots = max([*counts, 0]) + 1
    if limit_x is not None:
        slots = max(slots, math.ceil(limit_x) + 1)
    width = (_W - _LEFT - _RIGHT) / slots
    bottom = _H - _BOTTOM
    top = max(counts.values(), default=0)
    ymax = float(max(top, 1))
    body: list[str] = []
    for k in range(slots):
        n = counts.get(k, 0)
        if n:
            h = n / ymax * (bottom - _TOP)
            lo, hi = (0, 1) if k == 0 else (1 << (k - 1), 1 << k)
            body.append(f'<rect class="bar" x="{_LEFT + k * width + 1:.1f}" y="{bottom - h:.1f}" '
                        f'width="{max(width - 2, 1):.1f}" height="{h:.1f}"><title>{lo:,}–{hi - 1:,} tokens: '
                        f"{n:,}</title></rect>")
    for k in range(0, slots, 4):
        value = 0 if k == 0 else 1 << (k - 1)
        x = _LEFT + k * width
        body.append(f'<line class="axis" x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}"/>'
                    f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">{_compact(value)}</text>')
    if limit_x is not None:
        x = _LEFT + limit_x * width
        body.append(f'<line class="limit" x1="{x:.1f}" y1="{_TOP - 6}" x2="{x:.1f}" y2="{bottom}"/>'
                    f'<text class="limit-label" x="{x - 4:.1f}" y="{_TOP + 4}" text-anchor="end">'
                    f"limit {limit:,}</text>")
    if not top:
        body.append(f'<text x="{_W / 2:.0f}" y="{_H / 2:.0f}" text-anchor="middle">no examples</text>')
    return _frame(body, label, ymax, ",.0f")


def overlay_bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *, label: str) -> str:
    """Two distributions over the same bins, as shares, one bar beside the other per bin."""
    slots = max(len(labels), 1)
    width = (_W - _LEFT - _RIGHT) / slots
    bottom = _H - _BOTTOM
    ymax = max((v for _, values in series for v in values), default=0.0) or 1.0
    body: list[str] = []
    for s, (name, values) in enumerate(series[:2]):
        cls = "bar" if s == 0 else "bar series-b"
        for k, v in enumerate(values):
            if v:
                h = v / ymax * (bottom - _TOP)
                x = _LEFT + k * width + 1 + s * (width - 2) / 2
                body.append(f'<rect class="{cls}" x="{x:.1f}" y="{bottom - h:.1f}" '
                            f'width="{max((width - 2) / 2, 1):.1f}" height="{h:.1f}"><title>{esc(name)} {esc(labels[k])}: {v:.1%}</title></rect>')
    step = max(1, math.ceil(slots / 8))
    for k in range(0, len(labels), step):
        x = _LEFT + (k + 0.5) * width
        body.append(f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">{esc(cut(labels[k], 12))}</text>')
    return _frame(body, label, ymax, ".0%")


_SW, _SH = 160, 36  # a histogram small enough for a table cell


def _edge(x: float) -> str:
    """A bin edge in the feature's units: counts as whole numbers, shares with 2 significant digits."""
    return f"{x:,.0f}" if abs(x) >= 10 else f"{x:.1f}" if abs(x) >= 1 else f"{x:.2g}"


def spark_histogram(edges: Sequence[float], train: Sequence[float], prod: Sequence[float], *, label: str) -> str:
    """Two distributions over the same bins, as shares: the training side as bars, the
    production side as a line stepping over them. Each bin's tooltip gives both shares."""
    slots = max(len(train), len(prod), 1)
    width = _SW / slots
    ymax = max([*train, *prod, 0.0]) or 1.0
    height = _SH - 3
    out = [(f'<svg class="spark" viewBox="0 0 {_SW} {_SH}" role="img" aria-label="{esc(label)}">'
            f"<title>{esc(label)}</title>")]
    for k, v in enumerate(train):
        if v:
            h = v / ymax * height
            out.append(f'<rect class="train" x="{k * width + 0.5:.1f}" y="{_SH - h:.1f}" '
                       f'width="{max(width - 1, 0.5):.1f}" height="{h:.1f}"/>')
    ys = [_SH - v / ymax * height for v in prod]
    steps = " ".join(f"{k * width:.1f},{y:.1f} {(k + 1) * width:.1f},{y:.1f}" for k, y in enumerate(ys))
    if steps:
        out.append(f'<polyline class="prod" points="{steps}"/>')
    for k in range(slots):
        span = f"{_edge(edges[k])}–{_edge(edges[k + 1])}" if k + 1 < len(edges) else f"bin {k + 1}"
        shares = ", ".join(f"{name} {values[k]:.1%}" for name, values in (("training", train), ("production", prod))
                           if k < len(values))
        out.append(f'<rect class="hit" x="{k * width:.1f}" y="0" width="{width:.1f}" height="{_SH}">'
                   f"<title>{esc(span)}: {esc(shares)}</title></rect>")
    out.append("</svg>")
    return "".join(out)


def edge_range(edges: Sequence[float]) -> str:
    """The range a histogram covers, as its first and last edges."""
    return f"{_edge(edges[0])}–{_edge(edges[-1])}" if edges else ""


def stacked_bar(parts: Sequence[tuple[str, str, int]], *, label: str) -> str:
    """One horizontal bar split into (css class, name, count) segments."""
    total = sum(n for _, _, n in parts) or 1
    out = [(f'<svg class="accounting" viewBox="0 0 1000 10" preserveAspectRatio="none" role="img" '
           f'aria-label="{esc(label)}">')]
    x = 0.0
    for cls, name, n in parts:
        if n:
            w = n / total * 1000
            out.append(f'<rect class="{esc(cls)}" x="{x:.2f}" width="{w:.2f}" height="10">'
                       f"<title>{esc(name)}: {n:,}</title></rect>")
            x += w
    out.append("</svg>")
    return "".join(out)


def meter(value: float, most: float) -> str:
    share = 0.0 if most <= 0 else min(value / most, 1.0)
    return (f'<svg class="meter" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true">'
            f'<rect width="{share * 100:.1f}" height="8"/></svg>')


# --- word diff ---------------------------------------------------------------------------------

_WORDS = re.compile(r"\s+|\S+")


def word_diff(old: str, new: str) -> tuple[str, str, int, int]:
    """`old` and `new` as escaped HTML with the words only `old` has in <del> and the words only
    `new` has in <ins>; then how many words were deleted and inserted."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    left: list[str] = []
    right: list[str] = []
    deleted = inserted = 0
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            left.append(esc("".join(a[i1:i2])))
            right.append(esc("".join(b[j1:j2])))
            continue
        if i2 > i1:
            left.append(f"<del>{esc(''.join(a[i1:i2]))}</del>")
            deleted += sum(1 for w in a[i1:i2] if not w.isspace())
        if j2 > j1:
            right.append(f"<ins>{esc(''.join(b[j1:j2]))}</ins>")
            inserted += sum(1 for w in b[j1:j2] if not w.isspace())
    return "".join(left), "".join(right), deleted, inserted
