"""The HTML report: one self-contained file a person opens to understand a dataset in a minute.

    sftgate check train.jsonl --report-html report.html

Sections in reading order, each with an id: #verdict, #inputs, #rules, #tokens, #cost,
#duplicates, #leakage, #skew, #split, #media, #suppressed, #findings (skew, split, media and
suppressed only when the report has them). No network: the stylesheet is inline, charts are
inline SVG, and a Content-Security-Policy forbids every fetch. A small inline script sorts and
filters tables; without it the page reads the same.

The file stays small whatever the dataset: long lists are cut at the caps below (findings
round-robin across rules, so that every rule keeps rows), and the page says where and by how much.
The same `Report` gives the same bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sftgate.model import Finding, Severity
from sftgate.report._html_parts import (
    CSP,
    SCRIPT,
    STYLE,
    cut,
    edge_range,
    esc,
    log2_histogram,
    meter,
    overlay_bars,
    spark_histogram,
    stacked_bar,
    word_diff,
)
from sftgate.report.model import Report
from sftgate.report.text import skipped_note

MAX_FINDING_ROWS = 2_000  # rows of the findings table, across rules
FINDING_ROWS_BYTES = 2_500_000  # and their bytes: long messages cut the rows sooner
MAX_FAILING_LINES = 20  # locations the verdict names
MAX_CLUSTERS = 25  # duplicate clusters listed per file
MAX_MEMBERS = 10  # members listed per cluster
MAX_CONFLICTS = 10  # DUP003 groups per file
MAX_LEAKS = 25  # leaking records listed per validation/eval set
MAX_MATCHES = 5  # training matches listed per leaking record
MAX_PAIRS = 6  # side-by-side texts, in each of the duplicates and leakage sections
MAX_TEXT = 3_000  # characters of one record's text in a side-by-side pane
MAX_ENTRIES = 50  # waiver entries, unreadable buckets, skew features
_CELL = {"loc": 200, "message": 400, "hint": 300, "related": 200}  # characters per findings-table cell

_SEVERITIES = (Severity.ERROR, Severity.WARNING, Severity.INFO)
_ACCOUNTING = {"valid": "acc-valid", "invalid_record": "acc-invalid_record", "blank": "acc-blank"}


class _Section(NamedTuple):
    id: str
    title: str
    body: str
    css: str = ""  # a class of the <section>


@dataclass(frozen=True)
class _Page:
    report: Report
    base: str  # the directory every input is in, left out of the paths shown; "" when none
    rows: dict[int, str]  # the findings table's rows, by index into `report.findings`

    def path(self, text: str) -> str:
        return _short(text, self.base)


def _short(text: str, base: str) -> str:
    """A path or `path:line` as shown: without the inputs' common directory."""
    return text[len(base):] if base and text.startswith(base) else text


def render(report: Report) -> str:
    base = _common_dir([i.path for i in report.inputs])
    page = _Page(report, base, _rows(report.findings, base))
    sections = [
        _verdict(page), _inputs(page), _rules(page), _tokens(page), _cost(page), _duplicates(page),
        _leakage(page), _skew(page), _split(page), _media(page), _suppressed(page), _findings(page),
    ]
    sections = [s for s in sections if s is not None]
    nav = "".join(f'<a href="#{s.id}">{esc(s.title)}</a>' for s in sections)
    gate = report.gate
    word = "PASSED" if gate.passed else "FAILED"
    target = report.profile.get("target", "?")
    where = f' · files in <code>{esc(page.base)}</code>' if page.base else ""
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>{word}: sftgate report for {esc(target)}</title>\n",
        f"<style>{STYLE}</style>\n</head>\n<body>\n<header>\n",
        f'<h1>sftgate report<span class="badge {word.lower()}">{word}</span></h1>\n',
        (f'<p class="meta">target <code>{esc(target)}</code> · profile {esc(report.profile.get("name", "?"))} · '
         f"sftgate {esc(report.tool_version)} · {esc(report.started_at)} · {report.duration_s:.2f}s{where}</p>\n"),
        f"<nav>{nav}</nav>\n</header>\n<main>\n",
        *map(_section, sections),
        ("</main>\n<footer>Written by sftgate: no network requests; the script only sorts and filters "
         "tables. The JSON report (<code>--report-json</code>) holds everything this page cuts.</footer>\n"),
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n",
    ])


def _section(s: _Section) -> str:
    css = f' class="{s.css}"' if s.css else ""
    return f'<section id="{s.id}"{css}>\n<h2>{esc(s.title)}</h2>\n{s.body}</section>\n'


def _common_dir(paths: Sequence[str]) -> str:
    if not paths or any("/" not in p for p in paths):
        return ""
    dirs = [p.rpartition("/")[0] + "/" for p in paths]
    common = min(dirs)
    for d in dirs:
        while not d.startswith(common):
            common = common[:-1].rpartition("/")[0] + "/" if common.count("/") > 1 else ""
    return common if len(common) > 1 else ""


# --- small pieces ------------------------------------------------------------------------------

def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else esc(value)


def _sev(severity: str) -> str:
    return f'<span class="sev {esc(severity)}">{esc(severity)}</span>'


def _table(head: Sequence[str], rows: Sequence[str], *, sortable: bool = True, narrow: bool = False,
           table_id: str = "") -> str:
    """A table; a heading that starts with # is of a numeric column."""
    cols = "".join(f'<th class="num">{esc(h[1:])}</th>' if h.startswith("#") else f"<th>{esc(h)}</th>"
                   for h in head)
    classes = " ".join(c for c, on in (("sortable", sortable), ("narrow", narrow)) if on)
    attrs = (f' id="{table_id}"' if table_id else "") + (f' class="{classes}"' if classes else "")
    return (f'<div class="table-wrap"><table{attrs}><thead><tr>{cols}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>\n")


def _num(value: float | None, shown: str | None = None) -> str:
    """A numeric cell; `data-v` is what the script sorts by."""
    key = f' data-v="{value}"' if isinstance(value, int | float) else ""
    return f'<td class="num"{key}>{shown if shown is not None else _amount(value)}</td>'


def _amount(value: Any) -> str:
    """A statistic: whole numbers with thousands separators, others with one decimal, None as a dash."""
    if value is None:
        return "—"
    return f"{value:,.1f}" if isinstance(value, float) else _n(value)


def _stats(*tiles: tuple[Any, ...]) -> str:
    """Big numbers in a row: (value, label) or (value, label, css class: a severity)."""
    out = "".join(f'<div class="stat {esc(t[2] if len(t) > 2 else "")}"><b>{_n(t[0])}</b><span>{esc(t[1])}</span></div>'
                  for t in tiles)
    return f'<div class="stats">{out}</div>\n'


def _kv(pairs: Sequence[tuple[str, str]]) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>\n"


def _cut_note(shown: int, total: int, what: str) -> str:
    if shown >= total:
        return ""
    return (f'<p class="cut">Showing {shown:,} of {total:,} {esc(what)}: the rest were cut to keep this file '
            "small.</p>\n")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 or word == 'info' else 's'}"


# --- sections ----------------------------------------------------------------------------------

def _verdict(page: _Page) -> _Section:
    report, gate = page.report, page.report.gate
    word = "PASSED" if gate.passed else "FAILED"
    counts = report.severity_counts
    stats = [
        (report.total_findings, "findings"),
        *((counts.get(s.value, 0), f"{s.value}s" if s is not Severity.INFO else "info", s.value) for s in _SEVERITIES),
        (f"{gate.failing_lines:,} / {gate.lines:,}", f"lines failing at {gate.fail_on.value} or above"),
        (sum(i.records for i in report.inputs), "examples read"),
        (len(report.inputs), "input files"),
    ]
    failing: dict[str, None] = {}
    for f in report.findings:
        if f.line is not None and f.severity.at_least(gate.fail_on):
            failing.setdefault(f"{page.path(f.source)}:{f.line}")
    shown = list(failing)[:MAX_FAILING_LINES]
    body = [
        f'<p><span class="big">{word}</span>{esc(gate.reason)}</p>\n',
        (f'<p class="note">fail_on {_sev(gate.fail_on.value)} · max_error_fraction {gate.max_error_fraction:.2%} · '
         f"{_plural(gate.file_findings, 'whole-file finding')} at {esc(gate.fail_on.value)} or above</p>\n"),
        _stats(*stats),
    ]
    if shown:
        more = gate.failing_lines - len(shown)
        body.append("<p>Failing lines: " + ", ".join(f"<code>{esc(s)}</code>" for s in shown)
                    + (f" and {more:,} more" if more > 0 else "") + ".</p>\n")
    return _Section("verdict", "Verdict", "".join(body), word.lower())


def _inputs(page: _Page) -> _Section:
    rows = []
    for i in page.report.inputs:
        acc = i.accounting
        other = {k: v for k, v in sorted(acc.items()) if k not in _ACCOUNTING}
        parts = [(cls, key.replace("_", " "), acc.get(key, 0)) for key, cls in _ACCOUNTING.items()]
        parts += [("acc-other", key.replace("_", " "), n) for key, n in other.items()]
        detail = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in other.items())
        detail = f' <span class="note">({esc(detail)})</span>' if detail else ""
        truncated = f'<br><span class="sev error">ended early</span> {esc(i.truncated)}' if i.truncated else ""
        rows.append(
            f'<tr><td class="loc">{esc(page.path(i.path))}{truncated}'
            f'{stacked_bar(parts, label=f"{i.path}: lines by where they ended up")}</td>'
            f"<td>{esc(i.split)}</td>{_num(i.lines)}{_num(acc.get('valid', 0))}{_num(acc.get('invalid_record', 0))}"
            f"{_num(sum(other.values()), _n(sum(other.values())) + detail)}"
            f"{_num(acc.get('blank', 0))}{_num(i.bytes, _bytes(i.bytes))}"
            f"<td>{esc(i.compression or '—')}</td>"
            f'<td class="mono" title="{esc(i.sha256)}">{esc(i.sha256[:12])}</td></tr>')
    legend = ('<div class="legend"><span><i class="acc-valid"></i>valid</span>'
              '<span><i class="acc-invalid_record"></i>invalid record (a JSON object with an error)</span>'
              '<span><i class="acc-other"></i>not a record (bad JSON, encoding, too long…)</span>'
              '<span><i class="acc-blank"></i>blank</span></div>\n')
    body = ("<p>Every line of every input, by where it ends up: valid lines are kept, invalid records and lines "
            "that are not records go to the quarantine.</p>\n" + legend
            + _table(["file", "split", "#lines", "#valid", "#invalid records", "#not records", "#blank", "#size",
                      "compression", "sha256"], rows))
    return _Section("inputs", "Inputs", body)


def _rules(page: _Page) -> _Section:
    report = page.report
    if not report.rules:
        return _Section("rules", "Findings by rule", "<p>No rule found anything.</p>\n")
    actions = report.profile.get("rules", {})
    shown = Counter(report.findings[i].code for i in page.rows)
    most = max((r.count for r in report.rules), default=0)
    rows = []
    for r in report.rules:
        action = actions.get(r.code, {}).get("action", "")
        rows.append(
            f'<tr class="sev-{r.severity.value}"><td><a href="#findings" data-rule="{esc(r.code)}">'
            f"<code>{esc(r.code)}</code></a></td><td>{esc(r.name)}</td>"
            f'<td data-v="{r.severity.rank}">{_sev(r.severity.value)}</td>'
            f'<td><span class="action {esc(action)}">{esc(action or "—")}</span></td>'
            f"{_num(r.count, meter(r.count, most) + _n(r.count))}{_num(r.listed)}{_num(shown.get(r.code, 0))}</tr>")
    counts = report.severity_counts
    total = ", ".join(_plural(counts.get(s.value, 0), s.value) for s in _SEVERITIES)
    body = (f"<p>{_plural(report.total_findings, 'finding')} from {_plural(len(report.rules), 'rule')}: {total}. "
            "The action says what <code>sftgate prepare</code> does with a record that has the finding "
            "(drop: to the quarantine; fix: rewritten; flag: kept).</p>\n"
            + _table(["rule", "name", "severity", "action", "#findings", "#in the JSON report", "#on this page"], rows))
    return _Section("rules", "Findings by rule", body)


def _tokens(page: _Page) -> _Section:
    t = page.report.tokens
    if t is None or not t.get("splits"):
        return _Section("tokens", "Tokens", "<p>This report has no token statistics.</p>\n")
    tok, limit = t["tokenizer"], t["limit"]
    exact = "exact" if tok["exact"] else "an estimate"
    body = [(f"<p>Counted with <code>{esc(tok['spec'])}</code> ({exact} for "
             f"<code>{esc(page.report.profile.get('target', '?'))}</code>); the dashed line is the "
             f"model's limit of {limit:,} tokens per example. Buckets double in width.</p>\n")]
    if not tok["exact"]:
        body.append(f'<p class="note">{esc(tok["note"])}</p>\n')
    for s in t["splits"]:
        over = s["over_limit"]
        how = ("every example counted" if s["mode"] == "exact" else
               f"distributions from {s['sample']['examples']:,} sampled examples" if s.get("sample") else "sampled")
        body.append(f"<h3>{esc(s['split'])}: <code>{esc(page.path(s['source']))}</code></h3>\n"
                    f"<p>{_plural(s['examples'], 'example')}, {_plural(s['records'], 'training record')} "
                    f"(one per model turn); {how}; <b>{over['examples']:,}</b> over the {over['limit']:,}-token limit"
                    + (f"; {s['media_parts_not_counted']:,} media part(s) not counted" if s["media_parts_not_counted"]
                       else "") + ".</p>\n")
        charts = []
        for key, title in (("input_tokens", "input tokens per training record"),
                           ("output_tokens", "output tokens per training record"),
                           ("example_tokens", "tokens per example")):
            dist = s[key]
            label = f"{s['split']}: {title}"
            charts.append(f"<figure><figcaption>{esc(title)}</figcaption>"
                          f"{log2_histogram(dist['histogram'], limit=limit, label=label)}"
                          f'<p class="note">p50 {_amount(dist["p50"])} · p95 {_amount(dist["p95"])} · '
                          f'max {_amount(dist["max"])} · mean {_amount(dist["mean"])}</p></figure>')
        body.append(f'<div class="charts">{"".join(charts)}</div>\n')
        rows = [f"<tr><td>{esc(key.replace('_', ' '))}</td>"
                + "".join(_num(s[key][k]) for k in ("count", "min", "p5", "p50", "p95", "max", "mean", "sum")) + "</tr>"
                for key in ("input_tokens", "output_tokens", "example_tokens", "turns", "records_per_example")
                if key in s]
        body.append("<details><summary>Percentiles</summary>"
                    + _table(["", "#count", "#min", "#p5", "#p50", "#p95", "#max", "#mean", "#sum"], rows,
                             sortable=False, narrow=True) + "</details>\n")
    return _Section("tokens", "Tokens", "".join(body))


def _cost(page: _Page) -> _Section | None:
    t = page.report.tokens
    if t is None:
        return None
    billing = t["billing"]
    train, val = billing["training_billable_tokens"], billing["validation_billable_tokens"]
    price = billing["price_per_million"]
    rows = []
    for row in billing["epochs"]:
        spread = f" ({row['low']:,}–{row['high']:,})" if row["low"] != row["high"] else ""
        default = " (default)" if row["epochs"] == billing["default_epochs"] else ""
        cost = _num(row["cost"], f"{row['cost']:,.2f}") if "cost" in row else "<td class=num>—</td>"
        tokens = _num(row["tokens"], _n(row["tokens"]) + spread)
        rows.append(f"<tr><td>{row['epochs']:,}{default}</td>{tokens}{cost}</tr>")
    body = [
        "<p>Vertex AI bills tuning by training tokens times epochs.</p>\n",
        _kv([("training billable tokens", _estimate(train)),
             ("validation billable tokens", _estimate(val) if val else "—"),
             ("price per million tokens", f"{price:g}" if price is not None else
              "not given (<code>--price-per-million PRICE</code> adds the cost)")]),
        _table(["epochs", "#billable tokens", "#cost"], rows, sortable=False, narrow=True),
        f'<p class="note">{esc(billing["note"])}</p>\n',
    ]
    if t["advice"]:
        bases = list(dict.fromkeys(a["basis"] for a in t["advice"]))
        one = len(bases) == 1  # then it heads the table rather than filling a column
        advice = [f"<tr><td><code>{esc(a['setting'])}</code></td><td>{esc(a['advice'])}</td>"
                  + ("" if one else f"<td>{esc(a['basis'])}</td>") + "</tr>" for a in t["advice"]]
        sources = list(dict.fromkeys(a["source"] for a in t["advice"]))
        body += ["<h3>Hyperparameters</h3>\n", f"<p>For {esc(bases[0])}:</p>\n" if one else "",
                 _table(["setting", "advice", *([] if one else ["basis"])], advice, sortable=False, narrow=True),
                 "".join(f'<p class="note">{esc(s)}</p>\n' for s in sources)]
    if t["diagnoses"]:
        body.append("<h3>Diagnoses</h3>\n<ul>" + "".join(
            f"<li><b>{esc(d['symptom'])}</b>: {esc(d['finding'])} <span class=note>({esc(d['source'])})</span></li>"
            for d in t["diagnoses"]) + "</ul>\n")
    return _Section("cost", "Cost and hyperparameters", "".join(body))


def _estimate(e: dict[str, Any]) -> str:
    if e["exact"] or e["low"] == e["high"]:
        return f"<b>{e['value']:,}</b>"
    return f"<b>about {e['value']:,}</b> ({e['low']:,}–{e['high']:,} at {e['confidence']:.0%})"


def _duplicates(page: _Page) -> _Section:
    files = page.report.duplicates
    if not files:
        return _Section("duplicates", "Duplicates", "<p>The duplicate rules did not run on any file.</p>\n")
    body = [("<p>Exact and near-duplicate examples, grouped in clusters: the survivor is kept, the other members "
            "are dropped by <code>sftgate prepare</code>.</p>\n")]
    pairs = MAX_PAIRS
    for d in files:
        s = d["settings"]
        curve = ", ".join(f"J {j}: {p:.0%}" for j, p in s["detection_curve"].items())
        body += [f"<h3><code>{esc(page.path(d['source']))}</code> ({esc(d['split'])})</h3>\n",
                 _stats((d["records"], "examples compared"),
                        (d["exact_dropped"], "exact duplicates to drop", "warning"),
                        (d["near_dropped"], "near duplicates to drop", "warning"), (d["clusters"], "clusters"),
                        (d["conflict_groups"], "prompts with conflicting answers")),
                 (f'<p class="note">MinHash LSH {s["bands"]}×{s["rows"]}, similarity ≥ {esc(s["similarity"])}; '
                 f"{d['candidate_pairs']:,} candidate pairs, {d['verified_pairs']:,} verified"
                 f"{skipped_note(d)}; the chance to catch a "
                 f"pair of Jaccard similarity J: {esc(curve)}.{_survivor_note(s)}</p>\n")]
        clusters = d["listed_clusters"]
        rows = []
        for c in clusters[:MAX_CLUSTERS]:
            members = c["members"][:MAX_MEMBERS]
            more = len(c["members"]) - len(members)
            listed = "<br>".join(f"<code>{esc(page.path(m['record']))}</code> {esc(m['code'])} "
                                 f"{m['similarity']:.2f} of <code>{esc(page.path(m['matched']))}</code>"
                                 for m in members) + (f"<br>and {more:,} more" if more > 0 else "")
            kept = esc(page.path(c["survivor"]))
            if "survivor_source" in c:  # survivor policy `source`: the survivor's preferred value
                value = c["survivor_source"]
                kept += f"<br>{'source ' + esc(value) if value is not None else 'no preferred source'}"
            rows.append(f"<tr>{_num(c['size'])}<td class=loc>{kept}</td><td>{listed}</td></tr>")
        if rows:
            body += [_cut_note(min(len(clusters), MAX_CLUSTERS), d["clusters"], "clusters"),
                     _table(["#size", "survivor (kept)", "members (dropped): code, similarity, of"], rows)]
        # Near duplicates first: their differences are what a person wants to see.
        for c in sorted((c for c in clusters if c["members"]), key=lambda c: c["members"][0]["code"] != "DUP002"):
            if not pairs:
                break
            first = c["members"][0]
            diff, same = _pair(page, c["survivor"], first["record"], ("survivor", "kept"),
                               ("member", f"{first['code']}, dropped"))
            if diff:
                pairs -= 1
                body.append(f"<details{'' if same else ' open'}><summary>{esc(first['code'])}: "
                            f"<code>{esc(page.path(first['record']))}</code> against "
                            f"<code>{esc(page.path(c['survivor']))}</code> (similarity {first['similarity']:.2f}"
                            f"{', identical text' if same else ''})</summary>{diff}</details>\n")
        body.append(_conflicts(page, d))
    return _Section("duplicates", "Duplicates", "".join(body))


def _survivor_note(settings: dict) -> str:
    """How survivors were chosen, when not simply the first member."""
    policy = settings.get("survivor", "first")
    if policy == "longest":
        return " Each cluster keeps its member with most tokens."
    if policy != "source" or "source" not in settings:
        return ""
    source = settings["source"]
    order = " &gt; ".join(esc(v) for v in source["prefer"])
    then = "the one with most tokens" if source["then"] == "longest" else "the first"
    return (f" Each cluster keeps a member whose <code>{esc(source['field'])}</code> is the most preferred of "
            f"{order} (then others), and of those {then}.")


def _conflicts(page: _Page, d: dict[str, Any]) -> str:
    out = []
    if d["conflicts"]:
        groups = d["conflicts"][:MAX_CONFLICTS]
        items = []
        for group in groups:
            answers = "".join(f"<li>×{a['count']:,} “{esc(a['answer'])}” <span class=note>"
                              f"{esc(', '.join(page.path(r) for r in a['records'][:MAX_MATCHES]))}</span></li>"
                              for a in group[:MAX_MEMBERS])
            items.append(f"<li><ul>{answers}</ul></li>")
        out.append(f"<details><summary>{_plural(d['conflict_groups'], 'prompt')} with conflicting answers (DUP003)"
                   f"</summary>{_cut_note(len(groups), d['conflict_groups'], 'prompts')}<ol>{''.join(items)}</ol>"
                   "</details>\n")
    if d["repeated_prompts"]:
        out.append("<h4>Prompts repeated many times</h4>\n<ul>" + "".join(
            f"<li>×{p['count']:,} <code>{esc(page.path(p['first']))}</code></li>"
            for p in d["repeated_prompts"][:MAX_CONFLICTS]) + "</ul>\n")
    return "".join(out)


def _pair(page: _Page, old: str, new: str, old_role: tuple[str, str], new_role: tuple[str, str],
          span: str | None = None) -> tuple[str, bool]:
    """Two records' texts side by side, the words only one of them has highlighted ("" when the
    report lacks a text), and whether the texts are the same. A role is (name, what happens to it)."""
    examples = page.report.examples
    if old not in examples or new not in examples:
        return "", False
    left, right, deleted, inserted = word_diff(cut(examples[old], MAX_TEXT), cut(examples[new], MAX_TEXT))
    same = not deleted and not inserted
    summary = ("identical text" if same else
               f"{_plural(deleted, 'word')} only in the {esc(old_role[0])} (<del>struck</del>), "
               f"{inserted:,} only in the {esc(new_role[0])} (<ins>marked</ins>)")
    shared = f'<p class="note">shared span: <mark>{esc(span)}</mark></p>' if span else ""
    panes = "".join(f'<div class="pane"><h4>{esc(role[0])}{f" ({esc(role[1])})" if role[1] else ""}: '
                    f'<code>{esc(page.path(key))}</code></h4>'
                    f'<pre class="text">{text}</pre></div>'
                    for role, key, text in ((old_role, old, left), (new_role, new, right)))
    return f'<p class="note">{summary}</p>{shared}<div class="pair">{panes}</div>', same


def _leakage(page: _Page) -> _Section:
    leak = page.report.leakage
    if leak is None:
        return _Section("leakage", "Leakage", "<p>No validation or eval set was compared with the training data.</p>\n")
    body = [(f"<p>Records of each validation and eval set that also appear in the training file "
             f"<code>{esc(page.path(leak['train']))}</code>: a model tuned on them is scored on what it memorised. "
             f"{_plural(leak['training_records_flagged'], 'training example')} carry a LEAK finding; "
             f"{leak['candidate_pairs']:,} near-copy candidates, {leak['verified_pairs']:,} verified.</p>\n")]
    pairs = MAX_PAIRS
    for s in leak["sets"]:
        kinds = [(n, k.replace("_", " "), "error" if n else "") for k, n in s["by_kind"].items()]
        body += [f"<h3>{esc(s['name'])}: <code>{esc(page.path(s['source']))}</code></h3>\n",
                 _stats((f"{s['leaking_records']:,} / {s['records']:,}", "records leak"), *kinds)]
        listed = s["listed"]
        rows = [_leak_row(page, item) for item in listed[:MAX_LEAKS]]
        if rows:
            body += [_cut_note(len(rows), s["leaking_records"], "leaking records"),
                     _table(["record", "kind", "code", "#training matches", "training matches: code, score"], rows)]
        for item in listed:
            if not pairs:
                break
            if not item["matches"]:
                continue
            match = item["matches"][0]
            diff, _ = _pair(page, match["record"], item["record"], ("training record", ""),
                            (f"{s['name']} record", item["code"]), match.get("span"))
            if diff:
                pairs -= 1
                body.append(f"<details open><summary>{esc(item['kind'].replace('_', ' '))} leak: "
                            f"<code>{esc(page.path(item['record']))}</code> from "
                            f"<code>{esc(page.path(match['record']))}</code></summary>{diff}</details>\n")
    return _Section("leakage", "Leakage", "".join(body))


def _leak_row(page: _Page, item: dict[str, Any]) -> str:
    matches = []
    for m in item["matches"][:MAX_MATCHES]:
        span = ""
        if "span_tokens" in m:
            span = f" · shared span of {m['span_tokens']:,} tokens"
            if m.get("span"):
                span += f": <mark>{esc(cut(m['span'], 200))}</mark>"
        matches.append(f"<code>{esc(page.path(m['record']))}</code> {esc(m['code'])} {m['score']:.2f}{span}")
    more = item["training_matches"] - len(matches)
    return (f"<tr><td class=loc>{esc(page.path(item['record']))}</td><td>{esc(item['kind'].replace('_', ' '))}</td>"
            f"<td>{esc(item['code'])}</td>{_num(item['training_matches'])}"
            f"<td>{'<br>'.join(matches)}{f'<br>and {more:,} more' if more > 0 else ''}</td></tr>")


def _skew(page: _Page) -> _Section | None:
    """Training against production (features, the domain classifier, coverage), then what the
    training set is made of (composition, labels); the composition alone without production."""
    s = page.report.skew
    if s is None:
        return None
    training = f"<code>{esc(page.path(s['training']))}</code>"
    samples = s["samples"]
    body = []
    if s["production"]:
        files = ", ".join(f"<code>{esc(page.path(f))}</code>" for f in s["production"])
        d, c, size = s["domain"], s["coverage"], s["sample_size"]
        flagged = [f for f in (*s["numeric"], *s["categorical"]) if f["flagged"]]
        tiles: list[tuple[Any, ...]] = [(len(flagged), "features flagged", "warning" if flagged else "")]
        if d is not None:
            tiles.append((f"{d['auc']:.2f}", "classifier ROC AUC", d["level"] or ""))
        if c is not None:
            tiles.append((f"{c['uncovered_share']:.1%}", "of production uncovered", "warning" if c["flagged"] else ""))
        tiles.append((samples.get("prod_records", 0), "production records",
                      "warning" if size is not None and not size["sufficient"] else ""))
        body += [(f"<p>The training file {training} ({samples.get('train_records', 0):,} records) against the "
                  f"production sample {files} ({samples.get('prod_records', 0):,} records): what the model will be "
                  "asked that it was not tuned on. A feature is flagged when its distance is beyond what two "
                  "samples of one distribution show at these sizes (the critical value) and at least a minimum "
                  "effect.</p>\n"),
                 _stats(*tiles),
                 f'<p class="note">{esc(size["message"])}</p>\n' if size is not None else "",
                 _skew_features(s), _skew_domain(s), _skew_coverage(s)]
    else:
        body.append(f"<p>What the training file {training} is made of. No production sample was compared: give one "
                    "with <code>--production PROD.jsonl</code> (a JSONL sample of real requests) to see how the "
                    "training data differs from the traffic the model will serve.</p>\n")
    body += [_skew_composition(s), _skew_labels(s)]
    return _Section("skew", "Skew and composition", "".join(body))


def _flag(flagged: bool) -> str:
    return '<span class="sev warning">flagged</span>' if flagged else '<span class="note">no</span>'


def _flagged_row(flagged: bool) -> str:
    return '<tr class="sev-warning">' if flagged else "<tr>"


def _flag_cell(flagged: bool) -> str:
    return f'<td data-v="{int(flagged)}">{_flag(flagged)}</td>'


def _fixed(value: float, digits: int = 3) -> str:
    """A numeric cell shown with `digits` decimals."""
    return _num(value, f"{value:.{digits}f}")


def _pct(value: float | None) -> str:
    return _num(value, "—" if value is None else f"{value:.1%}")


def _stat(value: float | None) -> str:
    """A median in the feature's units: whole numbers as such, shares with 3 digits."""
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.3g}"


def _snippets(texts: Sequence[str]) -> str:
    return "".join(f'<pre class="snippet">{esc(cut(t, MAX_TEXT))}</pre>' for t in texts)


def _skew_features(s: dict[str, Any]) -> str:
    body = []
    rows = []
    for f in s["numeric"][:MAX_ENTRIES]:
        h = f["histogram"]
        edges = h.get("edges", [])
        chart = spark_histogram(edges, h.get("train", []), h.get("prod", []),
                                label=f"{f['feature']}: training (bars) and production (line)")
        rows.append(f"{_flagged_row(f['flagged'])}<td><code>{esc(f['feature'])}</code></td>"
                    f'<td>{chart}<span class="note">{esc(edge_range(edges))}</span></td>'
                    f"{_num(f['train_median'], _stat(f['train_median']))}"
                    f"{_num(f['prod_median'], _stat(f['prod_median']))}{_fixed(f['distance'])}{_fixed(f['critical'])}"
                    f"{_flag_cell(f['flagged'])}<td class=\"msg\">{esc(f['message'])}</td></tr>")
    if rows:
        body += [('<h3>Features</h3>\n<div class="legend"><span><i class="series-a"></i>training (bars)</span>'
                  '<span><i class="series-b"></i>production (line)</span></div>\n'),
                 _cut_note(len(rows), len(s["numeric"]), "features"),
                 _table(["feature", "distribution", "#training median", "#production median", "#distance",
                         "#critical", "flagged", "change"], rows)]
    rows, charts = [], []
    for f in s["categorical"][:MAX_ENTRIES]:
        moved = "<br>".join(f"{esc(c['category'])} {c['train_share']:.1%} → {c['prod_share']:.1%}" for c in f["changes"])
        rows.append(f"{_flagged_row(f['flagged'])}<td><code>{esc(f['feature'])}</code></td><td>{moved}</td>"
                    f"{_fixed(f['distance'])}{_fixed(f['critical'])}{_flag_cell(f['flagged'])}"
                    f"<td class=\"msg\">{esc(f['message'])}</td></tr>")
        if f["flagged"] and f["changes"]:
            series = [(name, [c[key] for c in f["changes"]])
                      for name, key in (("training", "train_share"), ("production", "prod_share"))]
            chart = overlay_bars([c["category"] for c in f["changes"]], series,
                                 label=f"{f['feature']}: training and production shares")
            charts.append(f"<figure><figcaption>{esc(f['feature'])}</figcaption>{chart}</figure>")
    if rows:
        body += [("<h3>Categories</h3>\n<p>The categories whose shares moved most (training → production); the "
                  "distance is Jensen-Shannon's.</p>\n"),
                 _table(["feature", "changes", "#distance", "#critical", "flagged", "change"], rows)]
    if charts:
        body.append('<div class="legend"><span><i class="series-a"></i>training</span>'
                    '<span><i class="series-b"></i>production</span></div>\n'
                    f'<div class="charts">{"".join(charts)}</div>\n')
    system = s.get("system")
    if system is not None:
        numbers = [(k.replace("_", " "), f"{v:.1%}" if k.endswith("_share") else _n(v)) for k, v in system.items()
                   if k not in ("flagged", "message") and isinstance(v, int | float)]
        body += [f"<h3>System instructions</h3>\n<p>{_flag(system['flagged'])} {esc(system['message'])}</p>\n",
                 _kv(numbers) if numbers else ""]
    return "".join(body)


def _skew_domain(s: dict[str, Any]) -> str:
    d = s["domain"]
    if d is None:
        return ""
    folds = ", ".join(f"{a:.2f}" for a in d["fold_aucs"])
    body = [("<h3>Domain classifier</h3>\n<p>A classifier trained to tell production prompts from training prompts "
             f"reaches ROC AUC <b>{d['auc']:.2f}</b> (95% interval {d['low']:.2f}–{d['high']:.2f}; two samples of "
             f"one distribution reach {d['chance']:.2f} by chance) over {d['n_train']:,} training and "
             f"{d['n_prod']:,} production texts" + (f"; per fold {folds}" if folds else "") + ". "
             + (_sev(d["level"]) if d["level"] else "Not flagged.") + "</p>\n"),
            f'<p class="note">{esc(d["message"])}</p>\n']
    panes = []
    for side, key in (("training", "train_terms"), ("production", "prod_terms")):
        rows = [f"<tr><td>{esc(t['term'])}</td>{_pct(t['train_share'])}{_pct(t['prod_share'])}{_fixed(t['z'], 1)}</tr>"
                for t in d[key]]
        table = (_table(["term", "#in training", "#in production", "#z"], rows, narrow=True) if rows
                 else '<p class="note">none stands out</p>\n')
        panes.append(f'<div class="pane"><h4>Typical of {side}</h4>{table}</div>')
    body.append(f'<div class="pair terms">{"".join(panes)}</div>\n')
    if d["least_covered"]:
        rows = [f"<tr><td>{_snippets([e['prod_text']])}</td>{_fixed(e['similarity'], 2)}"
                f"<td>{_snippets([e['train_text']])}</td></tr>" for e in d["least_covered"]]
        body += ["<h3>Production prompts least like any training prompt</h3>\n",
                 _table(["production prompt", "#cosine", "nearest training prompt"], rows, sortable=False)]
    return "".join(body)


def _skew_coverage(s: dict[str, Any]) -> str:
    c = s["coverage"]
    if c is None:
        return ""
    clusters = c["clusters"]
    rows = [f"{_flagged_row(k['flagged'])}{_pct(k['share'])}{_num(k['size'])}{_num(k['holdout'])}"
            f"{_num(k['p_value'], format(k['p_value'], '.2g'))}{_flag_cell(k['flagged'])}<td>{_snippets(k['examples'])}</td></tr>"
            for k in clusters[:MAX_CLUSTERS]]
    body = [f"<h3>Coverage</h3>\n<p>{_flag(c['flagged'])} {esc(c['message'])}</p>\n"]
    if rows:
        body += [("<p>Production texts with no similar training text, in clusters; a cluster is flagged when it "
                  "holds far more production texts than held-out training texts fall in it by chance.</p>\n"),
                 _cut_note(len(rows), len(clusters), "clusters"),
                 _table(["#share of production", "#texts", "#held-out training", "#p-value", "flagged",
                         "production prompts"], rows)]
    return "".join(body)


def _skew_composition(s: dict[str, Any]) -> str:
    c = s["composition"]
    if c is None:
        return ""
    clusters = c["clusters"]
    production = any(k["prod_share"] is not None for k in clusters)
    most = max((k["share"] for k in clusters), default=0.0)
    rows = [f"<tr>{_num(i)}{_num(k['topic'] + 1)}{_num(k['share'], meter(k['share'], most) + format(k['share'], '.1%'))}"
            + (_pct(k["prod_share"]) if production else "")
            + f"<td>{esc(', '.join(k['terms']))}</td><td>{_snippets(k['examples'])}</td></tr>"
            for i, k in enumerate(clusters[:MAX_CLUSTERS], 1)]
    body = ["<h3>Composition of the training set</h3>\n",
            _stats((len(c["topics"]), "topics"), (f"{c['largest_share']:.1%}", "in the largest topic"),
                   (f"{c['effective_topics']:.1f}", "effective topics"), (c["k"], "clusters"),
                   (f"{c['effective_clusters']:.1f}", "effective clusters")),
            f"<p>{esc(c['message'])}. Clusters whose centres are alike form one topic"
            + ("; a cluster's production share is that of the production texts nearest it" if production else "")
            + ".</p>\n"]
    if rows:
        body += [_cut_note(len(rows), len(clusters), "clusters"),
                 _table(["#cluster", "#topic", "#share", *(["#production share"] if production else []), "terms",
                         "representative prompts"], rows)]
    return "".join(body)


def _skew_labels(s: dict[str, Any]) -> str:
    labels = s["labels"]
    if labels is None:
        return ""
    body = [f"<h3>Labels</h3>\n<p>{esc(labels['message'])}</p>\n"]
    if labels["classification"]:
        counts = labels["labels"]
        most = max((row["count"] for row in counts), default=0)
        n = max(labels["n"], 1)
        rows = [f"<tr><td>{esc(row['label'])}</td>{_num(row['count'], meter(row['count'], most) + _n(row['count']))}"
                f"{_pct(row['count'] / n)}</tr>" for row in counts[:MAX_ENTRIES]]
        body += [_cut_note(len(rows), len(counts), "labels"), _table(["label", "#count", "#share"], rows, narrow=True)]
    return "".join(body)


def _split(page: _Page) -> _Section | None:
    s = page.report.split
    if s is None:
        return None
    check = s["leak_check"]
    parts = [("acc-valid", "train", s["train_examples"]), ("acc-other", "validation", s["validation_examples"])]
    lines = s["validation_lines"]
    body = [
        _stats((s["train_examples"], "train examples"), (s["validation_examples"], "validation examples"),
               (s["groups_kept_whole"], "groups kept whole"),
               ("clean" if check["clean"] else "NOT clean", "leak check", "" if check["clean"] else "error")),
        stacked_bar(parts, label="train and validation examples"),
        ('<div class="legend"><span><i class="acc-valid"></i>train</span>'
         '<span><i class="acc-other"></i>validation</span></div>\n'),
        _kv([("asked for", f"{_n(s['requested'])} ({s['requested_examples']:,} examples)"
              + (f", capped by the {esc(s['capped_by'])}" if s["capped_by"] else "")),
             ("stratified by", esc(s["stratify_by"])), ("seed", _n(s["seed"])),
             ("groups", f"{s['groups']:,}, largest {s['largest_group']:,} examples"),
             ("leak check", f"{_plural(check['rounds'], 'round')}, {check['moved_back']:,} moved back to train"
              + "".join(f", {esc(k)} {_n(v)}" for k, v in check.get("last_round", {}).items())),
             ("validation lines", ", ".join(f"{n:,}" for n in lines[:MAX_FAILING_LINES])
              + (f" and {len(lines) - MAX_FAILING_LINES:,} more" if len(lines) > MAX_FAILING_LINES else ""))]),
    ]
    return _Section("split", "Validation split", "".join(body))


def _media(page: _Page) -> _Section | None:
    m = page.report.media
    if m is None:
        return None
    rows = [f"<tr><td>{esc(kind)}</td>{_num(r['objects'])}{_num(r['bytes'], _bytes(r['bytes']))}"
            f"{_num(r['largest'], _bytes(r['largest']))}</tr>" for kind, r in m["by_modality"].items()]
    buckets = m["unreadable_buckets"]
    body = [
        _stats((m["checked"], "gs:// files checked"), (m["found"], "found"),
               (m["missing"], "missing", "error" if m["missing"] else ""),
               (m["too_large"], "too large", "error" if m["too_large"] else ""),
               (m["unreadable"], "in unreadable buckets", "warning" if m["unreadable"] else "")),
        _kv([("fileData references", f"{m['references']:,}"), ("distinct URIs", f"{m['uris']:,}"),
             ("http(s), not verified", f"{m['not_verified']:,}"), ("other schemes", f"{m['other_schemes']:,}")]
            + ([("unreadable buckets", ", ".join(f"<code>{esc(b)}</code>" for b in buckets[:MAX_ENTRIES])
                 + (f" and {len(buckets) - MAX_ENTRIES:,} more" if len(buckets) > MAX_ENTRIES else ""))]
               if buckets else [])),
    ]
    if rows:
        body.append(_table(["modality", "#objects", "#bytes", "#largest"], rows, narrow=True))
    return _Section("media", "Media", "".join(body))


def _suppressed(page: _Page) -> _Section | None:
    s = page.report.suppressed
    if s is None:
        return None
    waivers, base = s["waivers"], s["baseline"]
    codes = sorted(set(s["by_code"]))
    rows = [f"<tr><td><code>{esc(c)}</code></td>{_num(s['by_code'][c])}{_num(waivers['by_code'].get(c, 0))}"
            f"{_num((base or {}).get('by_code', {}).get(c, 0))}</tr>" for c in codes]
    body = [f"<p>{_plural(s['findings'], 'finding')} left out of the counts, the gate and <code>prepare</code>: "
            f"{waivers['findings']:,} by the profile's waivers"
            + (f", {base['findings']:,} by the baseline <code>{esc(base['file'])}</code> ({base['entries']:,} entries)"
               if base else "") + ".</p>\n"]
    if rows:
        body.append(_table(["rule", "#suppressed", "#by waivers", "#by the baseline"], rows, narrow=True))
    entries = waivers["entries"]
    if entries:
        items = []
        for w in entries[:MAX_ENTRIES]:
            lines = w.get("lines")
            where = (f" in <code>{esc(w['source'])}</code>" if w.get("source") else "") + (
                f" lines {esc(', '.join(map(str, lines[:MAX_FAILING_LINES])))}"
                + ("…" if len(lines) > MAX_FAILING_LINES else "") if lines else "")
            reason = f": {esc(w['reason'])}" if w.get("reason") else ' <span class="note">(no reason given)</span>'
            items.append(f"<li><code>{esc(w['code'])}</code>{where}{reason}</li>")
        body.append("<h3>Waivers</h3>\n" + _cut_note(min(len(entries), MAX_ENTRIES), len(entries), "waivers")
                    + f"<ul>{''.join(items)}</ul>\n")
    return _Section("suppressed", "Suppressed findings", "".join(body))


# --- the findings table ------------------------------------------------------------------------

def _round_robin(findings: Sequence[Finding]) -> Iterator[int]:
    """Indices of `findings`: the first of each rule (by code), then the second of each, …"""
    by_code: dict[str, list[int]] = {}
    for i, f in enumerate(findings):
        by_code.setdefault(f.code, []).append(i)
    queues = [by_code[code] for code in sorted(by_code)]
    for depth in range(max(map(len, queues), default=0)):
        for queue in queues:
            if depth < len(queue):
                yield queue[depth]


def _rows(findings: Sequence[Finding], base: str) -> dict[int, str]:
    """The rows the table holds, by index into `findings`: round-robin across rules until the row
    cap or the byte budget is reached."""
    rows: dict[int, str] = {}
    size = 0
    for i in _round_robin(findings):
        if len(rows) == MAX_FINDING_ROWS:
            break
        row = _finding_row(findings[i], base)
        size += len(row.encode("utf-8"))
        if size > FINDING_ROWS_BYTES:
            break
        rows[i] = row
    return rows


def _finding_row(f: Finding, base: str) -> str:
    related = ""
    if f.related:
        related = esc(cut(_short(f.related, base), _CELL["related"]))
        if f.similarity is not None:
            related += f" <span class=note>({f.similarity:.2f})</span>"
    sev = f.severity.value
    return (f'<tr class="sev-{sev}" data-code="{esc(f.code)}" data-sev="{sev}">'
            f'<td class="loc">{esc(cut(_short(f.location, base), _CELL["loc"]))}</td>'
            f'<td><code>{esc(f.code)}</code></td><td data-v="{f.severity.rank}">{_sev(sev)}</td>'
            f'<td class="msg">{esc(cut(f.message, _CELL["message"]))}</td>'
            f"<td>{esc(cut(f.hint or '', _CELL['hint']))}</td><td class=loc>{related}</td></tr>")


def _findings(page: _Page) -> _Section:
    report = page.report
    if not report.findings:
        return _Section("findings", "All findings", "<p>No findings.</p>\n")
    rows = [page.rows[i] for i in sorted(page.rows)]
    total, listed = report.total_findings, len(report.findings)
    notes = []
    if len(rows) < listed:
        notes.append(f'<p class="cut">Showing {len(rows):,} of {listed:,} listed findings: rows were cut to keep this '
                     f"file small, taking rows from every rule in turn so that each rule keeps some.</p>\n")
    if listed < total:
        notes.append(f'<p class="note">The report lists {listed:,} of {total:,} findings '
                     f"(report.max_findings_per_rule); the rules table has every count.</p>\n")
    options = "".join(f'<option value="{esc(r.code)}">{esc(r.code)} {esc(r.name)} ({r.count:,})</option>'
                      for r in report.rules)
    severities = "".join(f'<option value="{s.value}">{s.value}</option>' for s in _SEVERITIES)
    filters = ('<div class="filters" id="findings-filters" hidden>'
               f'<select id="filter-rule" aria-label="rule"><option value="">all rules</option>{options}</select>'
               f'<select id="filter-severity" aria-label="severity"><option value="">all severities</option>'
               f"{severities}</select>"
               '<input id="filter-text" type="search" placeholder="filter by text" aria-label="text filter">'
               '<span id="filter-count" class="note"></span></div>\n')
    body = ("".join(notes) + filters
            + _table(["location", "rule", "severity", "message", "hint", "related"], rows, table_id="findings-table"))
    return _Section("findings", "All findings", body)


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,} B"
