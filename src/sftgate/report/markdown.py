"""A compact Markdown summary, for a pull-request comment or `$GITHUB_STEP_SUMMARY`.

The verdict and the gate's reason first, then the inputs, the findings by rule, the first
findings, one line each for the duplicates, leakage, tokens, media, split and suppressed
sections the report has, and the skew and composition tables when the report has them. GitHub refuses comments over 65,536 characters, so the output never
exceeds `MAX_CHARS`: a long report is cut at a line and says so.

Everything taken from the data is escaped: a `|` cannot split a table cell, a newline cannot end
a row, `*`, `_`, `<` and the like render as themselves, and an `@name` or `#12` quoted from a
record does not mention anyone or link an issue (a zero-width space follows the sign).
"""

from __future__ import annotations

import re
from typing import Any

from sftgate.model import Finding, Severity
from sftgate.report.model import Report

MAX_CHARS = 60_000
FIRST_FINDINGS = 20
MAX_CELL = 300  # characters of one message or path shown in a table cell
MAX_SKEW_ROWS = 20  # rows of a skew table (clusters, labels)
MAX_TERMS = 8  # discriminative terms named each way
MAX_PROMPT = 120  # characters of one example prompt

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NEWLINE = re.compile("\r\n|\r|\n")
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
_REFERENCE = re.compile(r"([@#])(?=\w)")


def text(value: str, *, limit: int = MAX_CELL) -> str:
    """Data shown as literal Markdown text on one line (a table cell or a list item)."""
    value = _CONTROL.sub("", value)
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    value = value.replace("&", "&amp;")
    value = _SPECIAL.sub(r"\\\1", value)
    value = _REFERENCE.sub("\\1\u200b", value)
    return _NEWLINE.sub("<br>", value)


def code(value: str, *, table: bool = True, limit: int = MAX_CELL) -> str:
    """Data shown as a code span (file names): a fence longer than any run of backticks in it."""
    value = _NEWLINE.sub(" ", _CONTROL.sub("", value))
    if len(value) > limit:
        value = "…" + value[-(limit - 1):]  # the end of a path says most
    if table:
        value = value.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", value)), default=0) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def render(report: Report) -> str:
    blocks = [
        _verdict(report),
        _inputs(report),
        _rules(report),
        _findings(report),
        _sections(report),
        _skew(report),
    ]
    return fit("\n\n".join(b for b in blocks if b) + "\n")


def fit(document: str, limit: int = MAX_CHARS) -> str:
    """`document`, or as many of its first lines as leave room to say it was cut."""
    if len(document) <= limit:
        return document
    note = (f"\n\n**Cut here**: this summary stops at {limit:,} characters (a GitHub comment holds "
            f"65,536); {len(document):,} in all. The JSON report (`--report-json`) has everything.\n")
    head = document[: limit - len(note)]
    head = head[: head.rfind("\n")] if "\n" in head else head
    return head + note


def _verdict(report: Report) -> str:
    gate = report.gate
    counts = report.severity_counts
    total = report.total_findings
    by_severity = ", ".join(f"{counts.get(s.value, 0):,} {s.value}" for s in (Severity.ERROR, Severity.WARNING,
                                                                              Severity.INFO))
    word = "PASSED" if gate.passed else "FAILED"
    return "\n".join([
        f"## sftgate: {word}",
        "",
        f"**Gate {word}** (fail_on: {gate.fail_on.value}): {text(gate.reason)}.",
        "",
        (f"Target {code(str(report.profile.get('target', '?')), table=False)}, "
         f"profile {code(str(report.profile.get('name', '?')), table=False)}; "
         f"{total:,} finding{'s' if total != 1 else ''} ({by_severity}); "
         f"sftgate {text(report.tool_version)} in {report.duration_s:.2f}s."),
    ])


def _table(header: list[str], align: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |",
            *("| " + " | ".join(row) + " |" for row in rows)]


def _inputs(report: Report) -> str:
    if not report.inputs:
        return ""
    rows = []
    for i in report.inputs:
        accounting = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(i.accounting.items()))
        truncated = f"; truncated: {text(i.truncated)}" if i.truncated else ""
        rows.append([code(i.path), i.split, f"{i.lines:,}", f"{i.records:,}", (accounting or "empty") + truncated])
    return "\n".join(["### Inputs", "",
                      *_table(["file", "split", "lines", "records", "accounting"],
                              ["---", "---", "---:", "---:", "---"], rows)])


def _rules(report: Report) -> str:
    if not report.rules:
        return ""
    rows = [[r.code, text(r.name), r.severity.value, f"{r.count:,}"] for r in report.rules]
    rows.append(["**total**", "", "", f"**{report.total_findings:,}**"])
    return "\n".join(["### Findings by rule", "",
                      *_table(["code", "name", "severity", "count"], ["---", "---", "---", "---:"], rows)])


def _location(f: Finding) -> str:
    return f.source if f.line is None else f"{f.source}:{f.line}"


def _findings(report: Report) -> str:
    if not report.findings:
        return "No findings."
    shown = report.findings[:FIRST_FINDINGS]
    out = ["### First findings" if len(report.findings) > len(shown) else "### Findings", "",
           *_table(["location", "code", "message"], ["---", "---", "---"],
                   [[code(_location(f)), f.code, text(f.message)] for f in shown])]
    if len(report.findings) > len(shown):
        out += ["", f"The first {len(shown):,} of {len(report.findings):,} listed findings."]
    omitted = [(r.code, r.count - r.listed) for r in report.rules if r.count > r.listed]
    if omitted:
        total = sum(n for _, n in omitted)
        detail = ", ".join(f"{c} {n:,}" for c, n in omitted)
        out += ["", (f"> {total:,} more finding{'s' if total != 1 else ''} not listed in the report "
                     f"(report.max_findings_per_rule): {detail}.")]
    return "\n".join(out)


def _sections(report: Report) -> str:
    items = [*_duplicates(report), *_leakage(report), *_tokens(report), *_media(report), *_split(report),
             *_suppressed(report)]
    if not items:
        return ""
    return "\n".join(["### Details", "", *(f"- {item}" for item in items)])


def _duplicates(report: Report) -> list[str]:
    return [f"**Duplicates** in {code(d['source'], table=False)}: {d['exact_dropped']:,} exact and "
            f"{d['near_dropped']:,} near-duplicate example(s) to drop in {d['clusters']:,} cluster(s); "
            f"{d.get('conflict_groups', 0):,} prompt(s) with conflicting answers"
            for d in report.duplicates]


def _leakage(report: Report) -> list[str]:
    leakage = report.leakage
    if leakage is None:
        return []
    out = []
    for s in leakage["sets"]:
        kinds = ", ".join(f"{kind.replace('_', ' ')} {n:,}" for kind, n in s["by_kind"].items() if n)
        out.append(f"**Leakage** into {code(s['source'], table=False)} ({text(s['name'])}): "
                   f"{s['leaking_records']:,} of {s['records']:,} example(s) leak from "
                   f"{code(leakage['train'], table=False)}" + (f" ({kinds})" if kinds else ""))
    if leakage.get("training_records_flagged"):
        out.append(f"**Leakage**: {leakage['training_records_flagged']:,} training example(s) carry a LEAK "
                   f"finding (dropped by `sftgate prepare`)")
    return out


def _tokens(report: Report) -> list[str]:
    tokens = report.tokens
    if tokens is None:
        return []
    exact = tokens.get("tokenizer", {}).get("exact", False)
    out = []
    for s in tokens["splits"]:
        billable = s["billable_tokens"]
        how = [] if exact else ["estimated"]
        if s["mode"] != "exact":
            how.append(f"±{billable.get('relative_half_width', 0):.1%} from a sample")
        over = s["over_limit"]
        out.append(f"**Tokens** in {code(s['source'], table=False)}: {billable['value']:,} billable token(s)"
                   + (f" ({', '.join(how)})" if how else "")
                   + f" in {s['examples']:,} example(s); {over['examples']:,} over the {over['limit']:,}-token limit")
    return out


def _media(report: Report) -> list[str]:
    m = report.media
    if m is None:
        return []
    return [(f"**Media**: {m['checked']:,} gs:// file(s) checked, {m['missing']:,} missing, "
             f"{m['too_large']:,} too large, {m['unreadable']:,} unreadable; {m['not_verified']:,} http(s) "
             f"not verified")]


def _split(report: Report) -> list[str]:
    s = report.split
    if s is None:
        return []
    clean = "clean" if s["leak_check"]["clean"] else "not clean"
    return [(f"**Split**: {s['validation_examples']:,} validation / {s['train_examples']:,} train example(s); "
             f"leak check {clean}")]


def _suppressed(report: Report) -> list[str]:
    s: dict[str, Any] | None = report.suppressed
    if s is None:
        return []
    parts = []
    waivers = s.get("waivers") or {}
    if waivers.get("entries"):
        parts.append(f"{waivers['findings']:,} by {len(waivers['entries']):,} waiver(s)")
    baseline = s.get("baseline")
    if baseline is not None:
        parts.append(f"{baseline['findings']:,} by the baseline {code(baseline['file'], table=False)} "
                     f"({baseline['entries']:,} entries)")
    return [f"**Suppressed**: {s['findings']:,} finding(s) left out" + (f": {'; '.join(parts)}" if parts else "")]


def _stat(value: float | None) -> str:
    """A median or mean in the feature's units: whole numbers as such, small shares with 3 digits."""
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.3g}"


def _prompt(value: str) -> str:
    return text(" ".join(value.split()), limit=MAX_PROMPT)


def _skew(report: Report) -> str:
    s = report.skew
    if s is None:
        return ""
    out = ["### Skew and composition", ""]
    training = code(s["training"], table=False)
    if s["production"]:
        samples = s["samples"]
        files = ", ".join(code(f, table=False) for f in s["production"])
        flagged = ", ".join(text(f) for f in s["flags"]) or "nothing"
        out += [(f"Training {training} ({samples.get('train_records', 0):,} records) against production {files} "
                 f"({samples.get('prod_records', 0):,} records); flagged: {flagged}."), ""]
        out += _skew_features(s)
        out += _skew_domain(s)
    out += _skew_composition(s, training)
    labels = s["labels"]
    if labels is not None and labels["classification"]:
        rows = [[text(row["label"]), f"{row['count']:,}", f"{row['count'] / max(labels['n'], 1):.1%}"]
                for row in labels["labels"][:MAX_SKEW_ROWS]]
        out += [f"**Labels** of {training}: {text(labels['message'])}", "",
                *_table(["label", "count", "share"], ["---", "---:", "---:"], rows), ""]
    return "\n".join(out).rstrip()


def _skew_features(s: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if s["numeric"]:
        rows = [[text(f["feature"]), _stat(f["train_median"]), _stat(f["prod_median"]), f"{f['distance']:.3f}",
                 f"{f['critical']:.3f}", "**yes**" if f["flagged"] else "no"] for f in s["numeric"]]
        out += [*_table(["feature", "training median", "production median", "distance", "critical", "flagged"],
                        ["---", "---:", "---:", "---:", "---:", "---"], rows), ""]
    flagged = [f for f in (*s["numeric"], *s["categorical"]) if f["flagged"]]
    system = s.get("system")
    items = [f"- **{text(f['feature'])}**: {text(f['message'])}" for f in flagged]
    if system is not None and system["flagged"]:
        items.append(f"- **system instruction**: {text(system['message'])}")
    if items:
        out += items + [""]
    changes = [[text(f["feature"]), text(c["category"]), f"{c['train_share']:.1%}", f"{c['prod_share']:.1%}"]
               for f in s["categorical"] if f["flagged"] for c in f["changes"]]
    if changes:
        out += [*_table(["feature", "category", "training share", "production share"],
                        ["---", "---", "---:", "---:"], changes), ""]
    return out


def _skew_domain(s: dict[str, Any]) -> list[str]:
    out: list[str] = []
    d = s["domain"]
    if d is not None:
        level = f"**{d['level']}**" if d["level"] else "not flagged"
        terms = "; ".join(f"typical of {side}: " + ", ".join(text(t["term"]) for t in d[key][:MAX_TERMS])
                          for side, key in (("training", "train_terms"), ("production", "prod_terms")) if d[key])
        out += [f"**Domain classifier**: ROC AUC {d['auc']:.2f} (95% CI {d['low']:.2f}–{d['high']:.2f}; chance up "
                f"to {d['chance']:.2f}), {level}" + (f". {terms[0].upper()}{terms[1:]}." if terms else "."), ""]
    c = s["coverage"]
    if c is not None:
        out += [f"**Coverage**: {text(c['message'])}", ""]
        rows = [[f"{k['share']:.1%}", f"{k['size']:,}", f"{k['holdout']:,}", f"{k['p_value']:.2g}",
                 "<br>".join(_prompt(e) for e in k["examples"])]
                for k in c["clusters"] if k["flagged"]][:MAX_SKEW_ROWS]
        if rows:
            out += [*_table(["share of production", "texts", "held-out training", "p-value", "example prompts"],
                            ["---:", "---:", "---:", "---:", "---"], rows), ""]
    size = s["sample_size"]
    if size is not None:
        out += [f"**Sample size**: {text(size['message'])}", ""]
    return out


def _skew_composition(s: dict[str, Any], training: str) -> list[str]:
    c = s["composition"]
    if c is None:
        return []
    production = any(k["prod_share"] is not None for k in c["clusters"])
    rows = [[str(i), str(k["topic"] + 1), f"{k['share']:.1%}",
             *([f"{k['prod_share']:.1%}" if k["prod_share"] is not None else "—"] if production else []),
             ", ".join(text(t) for t in k["terms"])] for i, k in enumerate(c["clusters"][:MAX_SKEW_ROWS], 1)]
    out = [f"**Composition** of {training}: {text(c['message'])}", ""]
    if rows:
        out += [*_table(["cluster", "topic", "share", *(["production share"] if production else []), "terms"],
                        ["---:", "---:", "---:", *(["---:"] if production else []), "---"], rows), ""]
    return out
