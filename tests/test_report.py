"""The report: its JSON contract, and the text and JSON emitters rendering one shared `Report`."""

from __future__ import annotations

import gzip
import json
import re

import pytest

import sftgate
from sftgate.model import Finding, Severity
from sftgate.report import json as json_report
from sftgate.report import text as text_report
from sftgate.report.model import Gate, InputSummary, Report, RuleSummary


def shared_report() -> Report:
    """One report every emitter renders: two files, a whole-file finding, a column, a pointer, a cap."""
    E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO  # noqa: N806
    findings = [
        Finding("LIM004", W, "3 training examples; at least 100 are recommended", "train.jsonl",
                hint="add examples before tuning"),
        Finding("STR002", E, 'turn 3 has role "model" twice in a row', "train.jsonl", 2, "/contents/2",
                hint="user and model turns must alternate"),
        Finding("FMT009", E, "NUL byte at column 31", "train.jsonl", 3, column=31),
        Finding("FMT008", I, "last line has no newline at the end", "train.jsonl", 4),
        Finding("SCH001", E, '/contents/1/parts/0/text: 42 is not of type "string"', "val.jsonl", 1,
                "/contents/1/parts/0/text"),
    ]
    rules = [
        RuleSummary("FMT008", "missing-final-newline", I, 1, 1),
        RuleSummary("FMT009", "nul-byte", E, 1, 1),
        RuleSummary("LIM004", "too-few-examples", W, 1, 1),
        RuleSummary("SCH001", "schema-violation", E, 4, 1),
        RuleSummary("STR002", "consecutive-same-role", E, 1, 1),
    ]
    inputs = [
        InputSummary("train.jsonl", "train", "ab" * 32, 1234, 1234, None, 4, 3,
                     {"valid": 2, "invalid_record": 1, "nul_byte": 1}, 0, None),
        InputSummary("val.jsonl", "validation", "cd" * 32, 800, 2000, "gzip", 5, 5,
                     {"invalid_record": 4, "valid": 1}, 0, None),
    ]
    gate = Gate(passed=False, fail_on=E, max_error_fraction=0.0, failing_lines=6, lines=9, file_findings=0,
                reason="6 of 9 lines (66.67%) have findings at error or above; the profile allows 0.00%")
    return Report(tool_version="9.9.9", started_at="2025-01-02T03:04:05+00:00", duration_s=0.5,
                  profile={"name": "gemini-2.5-flash", "target": "gemini-2.5-flash", "files": [], "settings": {},
                           "rules": {}},
                  inputs=inputs, rules=rules, findings=findings, gate=gate, workers=2,
                  severity_counts={"error": 6, "warning": 1, "info": 1})


GOLDEN_TEXT = """\
train.jsonl LIM004 [warning] 3 training examples; at least 100 are recommended
    hint: add examples before tuning
train.jsonl:2:/contents/2 STR002 [error] turn 3 has role "model" twice in a row
    hint: user and model turns must alternate
train.jsonl:3:31 FMT009 [error] NUL byte at column 31
train.jsonl:4 FMT008 [info] last line has no newline at the end

val.jsonl:1:/contents/1/parts/0/text SCH001 [error] /contents/1/parts/0/text: 42 is not of type "string"
… 3 more SCH001 finding(s) not listed (report.max_findings_per_rule)

Findings by rule:
  FMT008  missing-final-newline  info             1
  FMT009  nul-byte               error            1
  LIM004  too-few-examples       warning          1
  SCH001  schema-violation       error            4
  STR002  consecutive-same-role  error            1
  total: 6 errors, 1 warning, 1 info

train.jsonl (train): 4 lines, 3 examples [invalid record 1, nul byte 1, valid 2]
val.jsonl (validation): 5 lines, 5 examples [invalid record 4, valid 1]
Gate FAILED for gemini-2.5-flash (fail_on: error): 6 of 9 lines (66.67%) have findings at error or above; \
the profile allows 0.00%. (0.50s)
"""


# --- emitters against the shared report ----------------------------------------------------------

def test_text_golden():
    assert text_report.render(shared_report()) == GOLDEN_TEXT


def test_text_without_hints_drops_only_hint_lines():
    expected = "".join(line for line in GOLDEN_TEXT.splitlines(keepends=True) if not line.startswith("    hint:"))
    assert text_report.render(shared_report(), show_hints=False) == expected


def test_text_color_only_adds_escapes():
    coloured = text_report.render(shared_report(), color=True)
    assert "\x1b[1;31m[error]\x1b[0m" in coloured and "\x1b[1;31mFAILED\x1b[0m" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == GOLDEN_TEXT
    assert "\x1b[" not in text_report.render(shared_report(), color=False)


def test_json_renders_the_same_report(validate_report):
    report = shared_report()
    rendered = json_report.render(report)
    assert rendered.endswith(b"}\n") and rendered.startswith(b'{\n  "report_version"')
    data = json.loads(rendered)
    validate_report(data)
    assert data == json.loads(json.dumps(report.to_dict()))
    assert list(data) == ["report_version", "tool", "started_at", "duration_s", "workers", "profile", "inputs",
                          "gate", "summary", "rules", "findings", "duplicates", "leakage", "split", "tokens",
                          "suppressed", "examples"]
    assert data["tool"] == {"name": "sftgate", "version": "9.9.9"}
    assert data["summary"] == {"findings": 8, "listed": 5, "by_severity": {"info": 1, "warning": 1, "error": 6}}
    assert data["findings"][2] == {"code": "FMT009", "severity": "error", "message": "NUL byte at column 31",
                                   "source": "train.jsonl", "line": 3, "pointer": None, "column": 31, "hint": None,
                                   "related": None, "similarity": None, "fingerprint": None}
    assert data["inputs"][0]["accounting"] == {"invalid_record": 1, "nul_byte": 1, "valid": 2}  # sorted keys
    assert data["gate"]["passed"] is False and data["gate"]["fail_on"] == "error"


def test_emitters_render_the_same_findings():
    report = shared_report()
    data = json.loads(json_report.render(report))
    text = text_report.render(report, show_hints=False)
    from_json = [f"{Finding(**{**f, 'severity': Severity(f['severity'])}).location} {f['code']} "
                 f"[{f['severity']}] {f['message']}" for f in data["findings"]]
    assert all(line in text.splitlines() for line in from_json)


# --- reports from real runs ----------------------------------------------------------------------

def _inputs(tmp_path, records, write_jsonl):
    good = records.line(records.good(0))
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [good, b"", good[:9] + b"\x00" + good[9:], records.model_twice(1),
                                                   repr(records.good(2)), b"\xff\xfe", b"[1, 2]"],
                        final_newline=False)
    array = tmp_path / "array.json"
    array.write_text(json.dumps([records.good(i) for i in range(3)], indent=2), encoding="utf-8")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    packed = tmp_path / "cut.jsonl.gz"
    whole = gzip.compress(b"\n".join(records.line(records.long_text(i, 500)) for i in range(300)))
    packed.write_bytes(whole[: len(whole) * 2 // 3])
    val = write_jsonl(tmp_path / "val.jsonl", [records.number_text(3), records.good(4)], eol=b"\r\n")
    return {"mixed": (mixed, None), "array": (array, None), "empty": (empty, None), "gzip-cut": (packed, None),
            "with-validation": (mixed, val)}


@pytest.mark.parametrize("case", ["mixed", "array", "empty", "gzip-cut", "with-validation"])
def test_reports_from_runs_validate(tmp_path, records, write_jsonl, validate_report, case):
    train, val = _inputs(tmp_path, records, write_jsonl)[case]
    report = sftgate.check(train, validation=val, workers=1)
    data = json.loads(json_report.render(report))
    validate_report(data)
    for summary in data["inputs"]:
        assert sum(summary["accounting"].values()) == summary["lines"]
    assert data["summary"]["findings"] == sum(r["count"] for r in data["rules"])
    assert data["summary"]["listed"] == len(data["findings"]) == sum(r["listed"] for r in data["rules"])
    assert sum(data["summary"]["by_severity"].values()) == data["summary"]["findings"]


def test_text_groups_findings_by_file(tmp_path, records, write_jsonl):
    train = write_jsonl(tmp_path / "train.jsonl", [records.model_twice(0), records.good(1), records.number_text(2)])
    val = write_jsonl(tmp_path / "val.jsonl", [records.number_text(3), records.model_twice(4)])
    out = text_report.render(sftgate.check(train, validation=val, workers=1), show_hints=False)
    blocks = out.split("\n\n")
    train_block = blocks[0].splitlines()
    val_block = blocks[1].splitlines()
    assert train_block and all(line.startswith(str(train)) for line in train_block)
    assert val_block and all(line.startswith(str(val)) for line in val_block)
    assert f"{train}:1:/contents/2 STR002" in blocks[0] and f"{val}:2:/contents/2 STR002" in blocks[1]
    assert "Findings by rule:" in out
    assert re.search(r"^  STR002  consecutive-same-role\s+error\s+2$", out, re.M)
    assert re.search(r"^  SCH001  schema-violation\s+error\s+2$", out, re.M)
    assert f"{train} (train): 3 lines, 3 examples" in out and f"{val} (validation): 2 lines, 2 examples" in out
    assert out.splitlines()[-1].startswith("Gate FAILED for gemini-2.5-flash (fail_on: error): 4 of 5 lines")


def test_passing_text_report(oasst):
    out = text_report.render(sftgate.check(oasst / "train.jsonl", workers=1))
    assert out.splitlines()[-1].startswith("Gate PASSED for gemini-2.5-flash (fail_on: error): no finding at error")


@pytest.mark.parametrize("cap", [0, 3])
def test_findings_capped_per_rule_with_totals_counted(tmp_path, records, write_jsonl, write_rules, cap):
    rows = [records.model_twice(i) if i % 2 else records.good(i) for i in range(20)]  # STR002 on lines 2, 4, ... 20
    rows += [b""] * 4
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    rules = write_rules(tmp_path / "cap.yaml", f"report:\n  max_findings_per_rule: {cap}\n")
    report = sftgate.check(path, rules=rules, ignore=["DUP"], workers=1)  # the rows repeat conversations
    by_code = {r.code: r for r in report.rules}
    assert (by_code["STR002"].count, by_code["STR002"].listed) == (10, min(cap, 10))
    assert (by_code["FMT005"].count, by_code["FMT005"].listed) == (4, min(cap, 4))
    assert [f.line for f in report.findings if f.code == "STR002"] == list(range(2, 21, 2))[:cap]
    assert report.gate.failing_lines == 10 and not report.passed  # the cap hides findings, not failures

    data = report.to_dict()
    assert data["summary"]["findings"] == report.total_findings == 10 + 4 + 1  # + LIM004
    text = text_report.render(report)
    assert f"… {10 - cap} more STR002 finding(s) not listed (report.max_findings_per_rule)" in text
    assert re.search(r"^  STR002  consecutive-same-role\s+error\s+10$", text, re.M)
