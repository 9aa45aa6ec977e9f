"""GitHub Actions workflow commands: findings as annotations on a workflow run.

    ::error file=train.jsonl,line=65,title=STR002 consecutive-same-role::turn 3 has role "model" twice in a row

One command per listed finding (error -> `::error`, warning -> `::warning`, info -> `::notice`),
then one summary command: `::error` when the gate failed, `::notice` when it passed, with the
counts, what was not listed, and the gate's reason. A whole-file finding names the file and no
line. Values are escaped the way GitHub's toolkit (`@actions/core`) escapes them, so a `%`, a
newline, a `:` or a `,` in a message or a file name cannot end a command early.
"""

from __future__ import annotations

from sftgate.model import Finding, Severity
from sftgate.report.model import Report

COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """A command's message, as `escapeData` in @actions/core."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A command property's value, as `escapeProperty` in @actions/core."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str | int | None) -> str:
    """`::name key=value,...::message`, leaving out properties that are None."""
    shown = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items()
                     if value is not None)
    return f"::{name}{' ' + shown if shown else ''}::{escape_data(message)}"


def render(report: Report) -> str:
    names = {r.code: r.name for r in report.rules}
    lines = [_annotation(f, names.get(f.code)) for f in report.findings]
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


def _annotation(f: Finding, name: str | None) -> str:
    message = f.message if not f.hint else f"{f.message}\nhint: {f.hint}"
    return command(
        COMMAND[f.severity], message,
        file=f.source,
        line=f.line,
        col=f.column if f.line is not None else None,
        title=f"{f.code} {name}" if name else f.code,
    )


def _summary(report: Report) -> str:
    gate = report.gate
    counts = report.severity_counts
    by_severity = ", ".join(f"{counts.get(s.value, 0):,} {s.value}" for s in (Severity.ERROR, Severity.WARNING,
                                                                              Severity.INFO))
    total = report.total_findings
    text = f"{total:,} finding{'s' if total != 1 else ''} ({by_severity}) in {len(report.inputs):,} file(s)"
    if len(report.findings) < total:
        text += (f"; {len(report.findings):,} annotated, {total - len(report.findings):,} not listed "
                 f"(report.max_findings_per_rule)")
    text += f"; fail_on {gate.fail_on.value}: {gate.reason}"
    if gate.passed:
        return command("notice", text, title="sftgate gate passed")
    return command("error", text, title="sftgate gate failed")
