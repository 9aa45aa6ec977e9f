"""The `Report`: everything one run found, in one object that every emitter renders.

Its JSON form is a contract (`schemas/report.schema.json`): fields are added, never renamed or
removed, without a version bump of `REPORT_VERSION`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sftgate.model import Finding, Severity

REPORT_VERSION = "1.8"


@dataclass(frozen=True)
class InputSummary:
    path: str
    split: str  # train | validation | eval | production (since 1.7)
    sha256: str
    bytes: int  # on disk
    content_bytes: int  # JSONL bytes read (decompressed)
    compression: str | None
    lines: int
    records: int  # lines that parsed as JSON objects
    accounting: dict[str, int]  # LineStatus value -> lines; sums to `lines`
    blank_lines: int
    truncated: str | None  # why the input ended early, if it did
    container: str | None = "jsonl"  # jsonl | json | csv | parquet (None: a report older than 1.6)
    format: str | None = "gemini"  # the format its records were converted from (formats.convert.FORMATS)
    format_detected: bool | None = False  # the format was detected from the first records

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "split": self.split,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "content_bytes": self.content_bytes,
            "compression": self.compression,
            "lines": self.lines,
            "records": self.records,
            "blank_lines": self.blank_lines,
            "accounting": dict(sorted(self.accounting.items())),
            "truncated": self.truncated,
            "container": self.container,
            "format": self.format,
            "format_detected": self.format_detected,
        }


@dataclass(frozen=True)
class RuleSummary:
    code: str
    name: str
    severity: Severity
    count: int  # findings, uncapped
    listed: int  # findings included in the report

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "severity": self.severity.value,
                "count": self.count, "listed": self.listed}


@dataclass(frozen=True)
class Gate:
    passed: bool
    fail_on: Severity
    max_error_fraction: float
    failing_lines: int  # lines with a finding at or above `fail_on`
    lines: int
    file_findings: int  # whole-file findings at or above `fail_on`
    reason: str

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "fail_on": self.fail_on.value,
            "max_error_fraction": self.max_error_fraction,
            "failing_lines": self.failing_lines,
            "lines": self.lines,
            "file_findings": self.file_findings,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Report:
    tool_version: str
    started_at: str  # ISO 8601, UTC
    duration_s: float
    profile: dict[str, Any]
    inputs: list[InputSummary]
    rules: list[RuleSummary]  # rules with at least one finding, by code
    findings: list[Finding]  # sorted by input order, line, code; capped per rule
    gate: Gate
    workers: int
    severity_counts: dict[str, int] = field(default_factory=dict)
    duplicates: list[dict[str, Any]] = field(default_factory=list)  # one per file DUP rules ran on
    leakage: dict[str, Any] | None = None  # LEAK rules: what leaks from training into each other set
    split: dict[str, Any] | None = None  # --split-validation: the planned split
    tokens: dict[str, Any] | None = None  # token statistics, billing estimate, advice (rules.advice)
    media: dict[str, Any] | None = None  # --verify-media: what Cloud Storage said (rules.media.summary)
    suppressed: dict[str, Any] | None = None  # findings left out by waivers and the baseline (sftgate.baseline)
    skew: dict[str, Any] | None = None  # training-serving skew and composition (analysis.skew.SkewAnalysis + files)
    examples: dict[str, str] = field(default_factory=dict)  # `path:line` -> the text of records the sections name

    @property
    def exit_code(self) -> int:
        return self.gate.exit_code

    @property
    def passed(self) -> bool:
        return self.gate.passed

    @property
    def total_findings(self) -> int:
        return sum(r.count for r in self.rules)

    def counts_by_code(self) -> Counter[str]:
        return Counter({r.code: r.count for r in self.rules})

    def to_dict(self) -> dict[str, Any]:
        return {
            "report_version": REPORT_VERSION,
            "tool": {"name": "sftgate", "version": self.tool_version},
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "workers": self.workers,
            "profile": self.profile,
            "inputs": [i.to_dict() for i in self.inputs],
            "gate": self.gate.to_dict(),
            "summary": {
                "findings": self.total_findings,
                "listed": len(self.findings),
                "by_severity": {s.value: self.severity_counts.get(s.value, 0) for s in Severity},
            },
            "rules": [r.to_dict() for r in self.rules],
            "findings": [f.to_dict() for f in self.findings],
            "duplicates": self.duplicates,
            "leakage": self.leakage,
            "split": self.split,
            "tokens": self.tokens,
            # Since 1.7, when the skew or composition analysis ran (with --production, or any COMP rule on).
            **({"skew": self.skew} if self.skew is not None else {}),
            # Since 1.4, and only with --verify-media: reports without it keep their 1.3 keys.
            **({"media": self.media} if self.media is not None else {}),
            # Since 1.5.
            "suppressed": self.suppressed,
            "examples": self.examples,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """A report saved as JSON (`--report-json`), back as the object every emitter renders.
        Reports of every 1.x version load; keys a version did not have get their empty value."""
        if not isinstance(data, dict):
            raise ValueError("the file holds no JSON object")
        version = str(data.get("report_version", ""))
        if not version.startswith("1."):
            raise ValueError(f"report_version {version or '(none)'} is not one this sftgate reads (1.x)")
        return cls(
            tool_version=data["tool"]["version"],
            started_at=data["started_at"],
            duration_s=float(data["duration_s"]),
            profile=data["profile"],
            inputs=[InputSummary(**{k: i.get(k) for k in InputSummary.__dataclass_fields__})
                    for i in data["inputs"]],
            rules=[RuleSummary(r["code"], r["name"], Severity(r["severity"]), r["count"], r["listed"])
                   for r in data["rules"]],
            findings=[Finding.from_dict(f) for f in data["findings"]],
            gate=Gate(**{**data["gate"], "fail_on": Severity(data["gate"]["fail_on"])}),
            workers=int(data["workers"]),
            severity_counts=dict(data["summary"]["by_severity"]),
            duplicates=data.get("duplicates") or [],
            leakage=data.get("leakage"),
            split=data.get("split"),
            tokens=data.get("tokens"),
            media=data.get("media"),
            suppressed=data.get("suppressed"),
            skew=data.get("skew"),
            examples=data.get("examples") or {},
        )
