"""JUnit XML: each rule a test case, for CI systems that chart test results.

    <testsuites ...><testsuite name="sftgate" ...>
      <testcase classname="sftgate.STR" name="STR002 consecutive-same-role">
        <failure type="STR002" message="1 finding">train.jsonl:65 turn 3 has role "model" twice in a row</failure>

Every enabled rule is a test case, so a rule that found nothing shows as a passing test. A rule
fails when it has findings at or above the gate's `fail_on`; a rule whose findings are all below
it passes and carries them in `<system-out>`. Rules switched off in the profile are skipped test
cases. One more test case, `gate`, fails when the gate does (whole-file findings, or too many
failing lines), with the gate's reason. Built with ElementTree, which escapes; characters XML 1.0
cannot hold at all (control characters) are dropped from every text.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import UTC, datetime

from sftgate.model import Finding
from sftgate.report.model import Report, RuleSummary
from sftgate.rules.base import REGISTRY

# Everything outside XML 1.0's Char production: C0 controls but tab/LF/CR, surrogates, U+FFFE/F.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """`text` without the characters an XML 1.0 document cannot contain, even escaped."""
    return _NOT_XML.sub("", text)


def render(report: Report) -> str:
    suite = ET.Element("testsuite", name="sftgate")
    properties = ET.SubElement(suite, "properties")
    for name, value in _properties(report):
        ET.SubElement(properties, "property", name=name, value=xml_text(value))
    cases = _cases(report)
    for case in cases:
        suite.append(case)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0", "skipped": str(skipped),
              "time": f"{report.duration_s:.3f}"}
    suite.attrib.update(counts)
    started = _timestamp(report.started_at)
    if started is not None:
        suite.set("timestamp", started)
    root = ET.Element("testsuites", name="sftgate", **counts)
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _timestamp(stamp: str) -> str | None:
    """The start time as JUnit's schema writes it: UTC, no offset. None when it does not parse."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _properties(report: Report) -> list[tuple[str, str]]:
    gate = report.gate
    return [
        ("sftgate.version", report.tool_version),
        ("profile", str(report.profile.get("name", ""))),
        ("target", str(report.profile.get("target", ""))),
        ("fail_on", gate.fail_on.value),
        ("gate", "passed" if gate.passed else "failed"),
        ("gate.reason", gate.reason),
        *((f"input.{i.split}", i.path) for i in report.inputs),
    ]


def _cases(report: Report) -> list[ET.Element]:
    """One test case per rule, by code, then the gate's."""
    configured = report.profile.get("rules", {})
    summaries = {r.code: r for r in report.rules}
    listed: dict[str, list[Finding]] = defaultdict(list)
    for f in report.findings:
        listed[f.code].append(f)
    cases = []
    for code in sorted(set(configured) | set(summaries) | set(listed)):
        enabled = configured.get(code, {}).get("enabled", True) or code in summaries
        summary = summaries.get(code)
        case = ET.Element("testcase", classname=f"sftgate.{code.rstrip('0123456789')}",
                          name=f"{code} {_rule_name(code, summary)}")
        if not enabled:
            ET.SubElement(case, "skipped", message="disabled in the profile")
        elif summary is not None or listed[code]:
            count = summary.count if summary is not None else len(listed[code])
            severity = summary.severity if summary is not None else max(
                (f.severity for f in listed[code]), key=lambda s: s.rank)
            body = _body(listed[code], count)
            if severity.at_least(report.gate.fail_on):
                failure = ET.SubElement(case, "failure", type=code,
                                        message=f"{count:,} finding{'s' if count != 1 else ''}")
                failure.text = body
            else:
                ET.SubElement(case, "system-out").text = body
        cases.append(case)
    cases.append(_gate_case(report))
    return cases


def _rule_name(code: str, summary: RuleSummary | None) -> str:
    if summary is not None:
        return summary.name
    rule = REGISTRY.get(code)
    return rule.name if rule is not None else code.lower()


def _body(findings: list[Finding], count: int) -> str:
    lines = [xml_text(_line(f)) for f in findings]
    if count > len(findings):
        lines.append(f"... and {count - len(findings):,} more (report.max_findings_per_rule)")
    return "\n".join(lines)


def _line(f: Finding) -> str:
    where = f.source
    if f.line is not None:
        where += f":{f.line}" + (f":{f.column}" if f.column is not None else "")
    return f"{where} {f.message}"


def _gate_case(report: Report) -> ET.Element:
    gate = report.gate
    case = ET.Element("testcase", classname="sftgate", name="gate")
    detail = (f"fail_on: {gate.fail_on.value}; {gate.failing_lines:,} of {gate.lines:,} lines fail "
              f"(allowed fraction {gate.max_error_fraction:g}); {gate.file_findings:,} whole-file finding(s) "
              f"at {gate.fail_on.value} or above")
    if gate.passed:
        ET.SubElement(case, "system-out").text = xml_text(f"{gate.reason}\n{detail}")
    else:
        failure = ET.SubElement(case, "failure", type="gate", message=xml_text(gate.reason))
        whole_file = [f for f in report.findings
                      if f.line is None and f.severity.at_least(gate.fail_on)]
        failure.text = "\n".join([xml_text(detail), *(xml_text(_line(f)) for f in whole_file)])
    return case

