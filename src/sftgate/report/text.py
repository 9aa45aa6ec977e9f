"""The terminal report: findings like a linter, then counts per rule, accounting and the gate.

    train.jsonl:12:/contents/2 STR002 [error] turn 3 has role "model" twice in a row

Colour only when asked (a TTY without NO_COLOR, or --color always); CI logs stay plain.
"""

from __future__ import annotations

from sftgate.model import Finding, Severity
from sftgate.report.model import Report

_RESET = "\033[0m"
_STYLE = {
    "error": "\033[1;31m",
    "warning": "\033[33m",
    "info": "\033[36m",
    "code": "\033[1m",
    "dim": "\033[2m",
    "pass": "\033[1;32m",
    "fail": "\033[1;31m",
}


class _Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, style: str) -> str:
        return f"{_STYLE[style]}{text}{_RESET}" if self.color else text


def render(report: Report, *, color: bool = False, show_hints: bool = True, quiet: bool = False) -> str:
    """The findings, the tables and the verdict; with `quiet`, the verdict line alone."""
    paint = _Painter(color)
    if quiet:
        return _verdict(report, paint) + "\n"
    out: list[str] = []
    current = None
    for finding in report.findings:
        if finding.source != current and current is not None:
            out.append("")
        current = finding.source
        out.append(_line(finding, paint))
        if show_hints and finding.hint:
            out.append(paint(f"    hint: {finding.hint}", "dim"))
    omitted = [(r.code, r.count - r.listed) for r in report.rules if r.count > r.listed]
    for code, n in omitted:
        out.append(paint(f"… {n:,} more {code} finding(s) not listed (report.max_findings_per_rule)", "dim"))
    if report.findings:
        out.append("")
    out.extend(_rule_table(report, paint))
    out.extend(_accounting(report))
    out.extend(_duplicates(report))
    out.extend(_leakage(report))
    out.extend(_split(report))
    out.extend(_tokens(report))
    out.extend(_media(report))
    out.extend(_skew(report, paint))
    out.extend(_suppressed(report))
    out.append(_verdict(report, paint))
    return "\n".join(out) + "\n"


def _line(f: Finding, paint: _Painter) -> str:
    severity = paint(f"[{f.severity.value}]", f.severity.value)
    return f"{f.location} {paint(f.code, 'code')} {severity} {f.message}"


def _rule_table(report: Report, paint: _Painter) -> list[str]:
    if not report.rules:
        return []
    width = max(len(r.name) for r in report.rules)
    rows = ["Findings by rule:"]
    for r in report.rules:
        sev = paint(f"{r.severity.value:<7}", r.severity.value)
        rows.append(f"  {r.code}  {r.name:<{width}}  {sev}  {r.count:>9,}")
    counts = report.severity_counts
    parts = [f"{counts.get(s.value, 0):,} {s.value}{'s' if counts.get(s.value, 0) != 1 else ''}"
             for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)]
    rows.append(f"  total: {', '.join(parts)}")
    rows.append("")
    return rows


def _read_as(i) -> str:
    """How a converted input was read: "; alpaca records unpacked from a JSON array ..."."""
    if i.format in (None, "gemini") and i.container in (None, "jsonl"):
        return ""
    if i.format == "prompts":  # a production sample: prompts of any shape, read as prompts
        return "; read as production prompts" + ("" if i.container in (None, "jsonl") else
                                                 f" from a {i.container} file; line numbers count records")
    how = "detected" if i.format_detected else "given"
    if i.container in (None, "jsonl"):
        return f"; {i.format} records converted to Gemini (format {how})"
    title = {"json": "JSON array", "csv": "CSV file", "parquet": "Parquet file"}.get(i.container, i.container)
    return f"; {i.format} records unpacked from a {title} (format {how}); line numbers count records"


def _accounting(report: Report) -> list[str]:
    rows = []
    for i in report.inputs:
        detail = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(i.accounting.items()))
        rows.append(f"{i.path} ({i.split}): {i.lines:,} lines, {i.records:,} examples [{detail or 'empty'}]"
                    + _read_as(i))
    return rows


def _duplicates(report: Report) -> list[str]:
    rows = []
    for d in report.duplicates:
        s = d["settings"]
        curve = "/".join(f"{p:.2f}" for p in s["detection_curve"].values())
        points = "/".join(s["detection_curve"])
        rows.append(
            f"{d['source']} duplicates: {d['exact_dropped']:,} exact and {d['near_dropped']:,} near-duplicate "
            f"example(s) to drop in {d['clusters']:,} cluster(s); {d['candidate_pairs']:,} candidate pair(s), "
            f"{d['verified_pairs']:,} verified{skipped_note(d)}; LSH {s['bands']}x{s['rows']} detects J {points} "
            f"with P {curve}" + _kept_by(s)
        )
    return rows


def _kept_by(settings: dict) -> str:
    """The survivor policy `source`, said: "; kept by /source: human > curated"."""
    source = settings.get("source")
    if settings.get("survivor") != "source" or source is None:
        return ""
    then = ", then longest" if source["then"] == "longest" else ""
    return f"; kept by {source['field']}: {' > '.join(str(v) for v in source['prefer'])}{then}"


def _leakage(report: Report) -> list[str]:
    if report.leakage is None:
        return []
    rows = []
    for s in report.leakage["sets"]:
        kinds = ", ".join(f"{kind.replace('_', ' ')} {n:,}" for kind, n in s["by_kind"].items() if n)
        rows.append(f"{s['source']} leakage ({s['name']}): {s['leaking_records']:,} of {s['records']:,} examples "
                    f"leak from {report.leakage['train']}" + (f" [{kinds}]" if kinds else ""))
    flagged = report.leakage["training_records_flagged"]
    if flagged:
        rows.append(f"{report.leakage['train']}: {flagged:,} training example(s) carry a LEAK finding (dropped by "
                    f"`sftgate prepare`)")
    return rows


def _split(report: Report) -> list[str]:
    s = report.split
    if s is None:
        return []
    capped = f", capped by the {s['capped_by']}" if s["capped_by"] else ""
    check = "clean" if s["leak_check"]["clean"] else "NOT clean"
    moved = s["leak_check"]["moved_back"]
    return [f"split: {s['validation_examples']:,} validation / {s['train_examples']:,} train examples "
            f"(asked {s['requested_examples']:,}{capped}; stratified by {s['stratify_by']}, seed {s['seed']}); "
            f"{s['groups_kept_whole']:,} group(s) kept whole, largest {s['largest_group']:,}; leak check {check}"
            + (f" after moving {moved:,} back to train" if moved else "")]


def _millions(n: float) -> str:
    return f"{n / 1e6:,.2f}M" if n >= 1e6 else f"{n:,.0f}"


def _tokens(report: Report) -> list[str]:
    t = report.tokens
    if t is None or not t["splits"]:
        return []
    tok = t["tokenizer"]
    rows = [(f"tokens counted by {tok['spec']} ({'exact' if tok['exact'] else 'an estimate'} for "
             f"{report.profile.get('target', '?')})")]
    for s in t["splits"]:
        b = s["billable_tokens"]
        if s["mode"] == "exact":
            how = f"{b['value']:,} billable tokens (every example counted)"
        else:
            how = (f"about {b['value']:,} billable tokens (±{b['relative_half_width']:.2%} at 95%, from "
                   f"{s['sample']['examples']:,} sampled examples; --exact-tokens counts all)")
        over = s["over_limit"]
        rows.append(f"{s['source']} tokens: {s['examples']:,} examples, {s['records']:,} training records, {how}; "
                    f"{over['examples']:,} over the {over['limit']:,}-token limit"
                    + (f"; {s['media_parts_not_counted']:,} media part(s) not counted (size unknown)"
                       if s["media_parts_not_counted"] else ""))
    billing = t["billing"]
    if billing["training_billable_tokens"]["value"]:
        parts = []
        for row in billing["epochs"]:
            cost = f" = {row['cost']:,.2f}" if "cost" in row else ""
            parts.append(f"{row['epochs']} epoch{'s' * (row['epochs'] != 1)} {_millions(row['tokens'])}{cost}")
        price = billing["price_per_million"]
        rows.append("training tokens x epochs: " + ", ".join(parts)
                    + (f" (at {price:g} per million)" if price is not None else ""))
    if t["advice"]:
        first = t["advice"][0]
        settings = "; ".join(f"{a['setting']}: {a['advice']}" for a in t["advice"])
        sources = list(dict.fromkeys(a["source"] for a in t["advice"]))
        rows.append(f"advice for {first['basis']}: {settings} [{' / '.join(sources)}]")
    for d in t["diagnoses"]:
        rows.append(f"diagnosis ({d['symptom']}): {d['finding']}")
    return rows


def _media(report: Report) -> list[str]:
    m = report.media
    if m is None:
        return []
    sizes = ", ".join(f"{kind} {row['objects']:,} ({_bytes(row['bytes'])})" for kind, row in m["by_modality"].items())
    unverified = m["not_verified"] + m["unreadable"]
    return [f"media: {m['checked']:,} gs:// file(s) checked, {m['missing']:,} missing, {m['too_large']:,} too large"
            + (f"; {unverified:,} not verified ({m['not_verified']:,} http(s), not fetched; "
               f"{m['unreadable']:,} in unreadable buckets)" if unverified else "")
            + (f"; found: {sizes}" if sizes else "")]


def _skew(report: Report, paint: _Painter) -> list[str]:
    """The production comparison in one line, then one line per thing it flagged; the training
    set's composition and labels."""
    s = report.skew
    if s is None:
        return []
    rows = []
    if s["production"]:
        samples, domain = s["samples"], s["domain"]
        line = (f"skew: {', '.join(s['production'])} ({samples.get('prod_records', 0):,} records) against "
                f"{s['training']} ({samples.get('train_records', 0):,})")
        if domain is not None:
            level = paint(domain["level"], domain["level"]) if domain["level"] else "not flagged"
            line += (f": classifier ROC AUC {domain['auc']:.2f} (95% CI {domain['low']:.2f}-{domain['high']:.2f}; "
                     f"chance up to {domain['chance']:.2f}), {level}")
        rows.append(line)
        rows += [f"  {f['feature']}: {f['message']}" for f in (*s["numeric"], *s["categorical"]) if f["flagged"]]
        if s["coverage"] is not None:
            rows.append(f"  coverage: {s['coverage']['message']}")
        system = s.get("system")
        if system is not None and system["flagged"]:
            rows.append(f"  system instruction: {system['message']}")
        size = s["sample_size"]
        if size is not None and not size["sufficient"]:
            rows.append(f"  sample size: {size['message']}")
    if s["composition"] is not None:
        rows.append(f"composition of {s['training']}: {s['composition']['message']}")
    labels = s["labels"]
    if labels is not None and labels["classification"]:
        rows.append(f"labels of {s['training']}: {labels['message']}")
    return rows


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,} B"


def _suppressed(report: Report) -> list[str]:
    s = report.suppressed
    if s is None:
        return []
    parts = []
    if s["waivers"]["entries"]:
        parts.append(f"{s['waivers']['findings']:,} by {len(s['waivers']['entries'])} waiver(s) in the profile")
    if s["baseline"] is not None:
        b = s["baseline"]
        parts.append(f"{b['findings']:,} by the baseline {b['file']} ({b['entries']:,} entries)")
    codes = ", ".join(f"{code} {n:,}" for code, n in s["by_code"].items())
    return [f"suppressed: {s['findings']:,} finding(s) left out of the gate: {'; '.join(parts)}"
            + (f" ({codes})" if codes else "")]


def _verdict(report: Report, paint: _Painter) -> str:
    gate = report.gate
    word = paint("PASSED", "pass") if gate.passed else paint("FAILED", "fail")
    target = report.profile.get("target", "?")
    return f"Gate {word} for {target} (fail_on: {gate.fail_on.value}): {gate.reason}. ({report.duration_s:.2f}s)"


def render_prepared(manifest: dict) -> str:
    """What `prepare` wrote, after the check's report: files, counts and how to tune on them."""
    counts = manifest["counts"]
    lines = ["", f"prepared {manifest['location']}:"]
    for out in manifest["outputs"]:
        what = "" if out["examples"] is None else f"{out['examples']:,} {'lines' if out['role'] == 'quarantine' else 'examples'}, "
        reused = ", already uploaded" if out["reused"] else ""
        lines.append(f"  {out['name']}: {what}{out['bytes']:,} bytes{reused}")
    lines.append(f"  {counts['lines_read']:,} lines read = {counts['train_examples']:,} train "
                 f"+ {counts['validation_examples']:,} validation + {counts['quarantined']:,} quarantined "
                 f"+ {counts['blank_lines']:,} blank; {counts['fixed']:,} fixed")
    if counts["quarantined_by_rule"]:
        top = ", ".join(f"{code} {n:,}" for code, n in counts["quarantined_by_rule"].items())
        lines.append(f"  quarantined by rule: {top}")
    tuning = manifest["tuning"]
    if counts["train_examples"]:  # (else the notes say there is nothing to tune on)
        if tuning["upload"]:
            lines.append(f"  upload: {tuning['upload']}")
        lines.append(f"  tune: {tuning['rest']}")
        lines.extend(f"  note: {note}" for note in tuning["notes"])
    else:
        lines.append(f"  note: {tuning['notes'][0]}")
    if not manifest["gate"]["passed"]:
        lines.append("  the gate failed: the files are written, and manifest.json says the gate failed")
    return "\n".join(lines) + "\n"


def skipped_note(d: dict) -> str:
    """How many candidate pairs were not verified, their examples already in one cluster."""
    skipped = d.get("skipped_pairs", 0)  # absent from reports of earlier versions
    return f", {skipped:,} skipped (already in one cluster)" if skipped else ""
