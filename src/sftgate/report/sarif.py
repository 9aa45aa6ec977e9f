"""SARIF 2.1.0: the report as GitHub code scanning and other SARIF viewers read it.

One run: the rules that have findings, one result per listed finding, the inputs as artifacts
with their SHA-256, and one invocation whose properties carry the gate. A result's
`partialFingerprints["sftgate/v1"]` is the fingerprint of its line's bytes, so an alert follows
its record when lines above it are inserted or deleted.

Locations: a relative path is a relative URI against `%SRCROOT%` (the checkout, for code
scanning); an absolute path a `file://` URI; a `gs://` (or any other) URI stays as it is.
A whole-file finding has an artifact location and no region. Columns are sftgate's byte
columns, exact for ASCII lines.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

import orjson

from sftgate.model import Finding, Severity
from sftgate.report.model import Report, RuleSummary
from sftgate.rules.base import REGISTRY

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/sftgate/sftgate"
FINGERPRINT_KEY = "sftgate/v1"
SRCROOT = "%SRCROOT%"

LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_RELATED = re.compile(r"^(?P<path>.+):(?P<line>[0-9]+)$")
# Characters a URI may hold as they are: a valid URI passes through unchanged.
_URI_SAFE = ":/?#[]@!$&'()*+,;=%~"


def render(report: Report) -> str:
    log = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [_run(report)]}
    return orjson.dumps(log, option=orjson.OPT_INDENT_2).decode() + "\n"


def _run(report: Report) -> dict[str, Any]:
    rules = _rule_summaries(report)
    index = {r.code: i for i, r in enumerate(rules)}
    artifacts = {i.path: n for n, i in enumerate(report.inputs)}
    return {
        "tool": {"driver": {
            "name": "sftgate",
            "version": report.tool_version,
            "informationUri": INFORMATION_URI,
            "rules": [_descriptor(r) for r in rules],
        }},
        "invocations": [_invocation(report, index)],
        "artifacts": [_artifact(i) for i in report.inputs],
        "results": [_result(f, index, artifacts) for f in report.findings],
    }


def _rule_summaries(report: Report) -> list[RuleSummary]:
    """The report's rules, plus any code a listed finding has that the rule table lacks (a
    hand-edited JSON report), so that every result has a descriptor to point at."""
    rules = {r.code: r for r in report.rules}
    for f in report.findings:
        if f.code not in rules:
            rule = REGISTRY.get(f.code)
            rules[f.code] = RuleSummary(f.code, rule.name if rule else f.code.lower(), f.severity, 1, 1)
    return [rules[code] for code in sorted(rules)]


def family(code: str) -> str:
    """`LEAK001` -> `LEAK`: the rule family, the letters of its code."""
    return code.rstrip("0123456789")


def _descriptor(summary: RuleSummary) -> dict[str, Any]:
    rule = REGISTRY.get(summary.code)
    doc = rule.doc() if rule is not None else ""
    short = (rule.summary() if rule is not None else "") or summary.name
    return {
        "id": summary.code,
        "name": summary.name,
        "shortDescription": {"text": short},
        "fullDescription": {"text": doc or short},
        "help": {"text": doc or short, "markdown": doc or short},
        "defaultConfiguration": {"level": LEVEL[summary.severity]},
        "properties": {"tags": [family(summary.code)]},
    }


def _invocation(report: Report, index: dict[str, int]) -> dict[str, Any]:
    gate = report.gate
    invocation: dict[str, Any] = {"executionSuccessful": True}
    started = _utc(report.started_at)
    if started is not None:
        invocation["startTimeUtc"] = started
    notes = [
        {"level": "note",
         "message": {"text": f"{r.count - r.listed:,} more {r.code} finding(s) not listed "
                             f"(report.max_findings_per_rule); {r.count:,} in all"},
         "associatedRule": {"id": r.code, "index": index[r.code]}}
        for r in report.rules if r.count > r.listed
    ]
    if notes:
        invocation["toolExecutionNotifications"] = notes
    invocation["properties"] = {
        "gate": gate.to_dict(),
        "verdict": "passed" if gate.passed else "failed",
        "profile": report.profile.get("name"),
        "target": report.profile.get("target"),
        "findings": report.total_findings,
        "listed": len(report.findings),
        "by_severity": {s.value: report.severity_counts.get(s.value, 0) for s in Severity},
    }
    return invocation


def _utc(stamp: str) -> str | None:
    """An ISO 8601 time as SARIF writes it (`...Z`); None when it does not parse."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat() + "Z"


def _artifact(summary: Any) -> dict[str, Any]:
    return {
        "location": artifact_location(summary.path),
        "length": summary.bytes,
        "roles": ["analysisTarget"],
        "hashes": {"sha-256": summary.sha256},
        "properties": {"split": summary.split, "lines": summary.lines, "records": summary.records,
                       "compression": summary.compression},
    }


def artifact_location(source: str) -> dict[str, Any]:
    """A finding's `source` as a SARIF artifactLocation."""
    if _SCHEME.match(source):
        return {"uri": quote(source, safe=_URI_SAFE)}
    path = PurePath(source)
    if path.is_absolute():
        return {"uri": Path(source).as_uri()}
    return {"uri": quote(path.as_posix(), safe="/"), "uriBaseId": SRCROOT}


def _physical(source: str, line: int | None, column: int | None, artifacts: dict[str, int]) -> dict[str, Any]:
    location = artifact_location(source)
    if source in artifacts:
        location["index"] = artifacts[source]
    physical: dict[str, Any] = {"artifactLocation": location}
    if line is not None:
        region = {"startLine": line}
        if column is not None:
            region["startColumn"] = column
        physical["region"] = region
    return physical


def _result(f: Finding, index: dict[str, int], artifacts: dict[str, int]) -> dict[str, Any]:
    text = f.message if not f.hint else f"{f.message}\nhint: {f.hint}"
    result: dict[str, Any] = {
        "ruleId": f.code,
        "ruleIndex": index[f.code],
        "level": LEVEL[f.severity],
        "message": {"text": text},
        "locations": [{"physicalLocation": _physical(f.source, f.line, f.column, artifacts)}],
    }
    if f.fingerprint:
        result["partialFingerprints"] = {FINGERPRINT_KEY: f.fingerprint}
    if f.related:
        match = _RELATED.match(f.related)
        path, line = (match["path"], int(match["line"])) if match else (f.related, None)
        what = "related record" if f.similarity is None else f"related record (similarity {f.similarity:.2f})"
        result["relatedLocations"] = [{"id": 1, "physicalLocation": _physical(path, line, None, artifacts),
                                       "message": {"text": what}}]
    properties = {k: v for k, v in (("pointer", f.pointer), ("similarity", f.similarity)) if v is not None}
    if properties:
        result["properties"] = properties
    return result
