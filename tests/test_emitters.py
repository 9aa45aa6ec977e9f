"""The SARIF, JUnit, GitHub Actions and Markdown emitters, on one shared report with findings of
every rule family (`family_report` plus a MED finding added by hand) and on a clean one."""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sftgate.model import Finding, Severity
from sftgate.report import github, junit, markdown, sarif
from sftgate.report.model import Gate, InputSummary, Report, RuleSummary
from sftgate.rules.base import REGISTRY

SARIF_SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
EMITTERS = (sarif, junit, github, markdown)
FAMILIES = {"FMT", "SCH", "STR", "TOK", "LIM", "DUP", "LEAK", "MED", "CNT"}  # CNT001: an OASST answer says "I am an AI language model"


# --- reports ----------------------------------------------------------------------------------

def with_findings(report: Report, extra: list[Finding], **changes: Any) -> Report:
    """`report` with `extra` findings listed, and its rule table and severity counts to match."""
    findings = [*report.findings, *extra]
    counts = Counter(f.code for f in findings)
    listed = {r.code: r for r in report.rules}
    rules = []
    for code in sorted(counts):
        old = listed.get(code)
        if old is not None:
            rules.append(dataclasses.replace(old, count=old.count + counts[code] - old.listed,
                                             listed=counts[code]))
        else:
            f = next(f for f in extra if f.code == code)
            rules.append(RuleSummary(code, REGISTRY[code].name, f.severity, counts[code], counts[code]))
    severity = Counter()
    for r in rules:
        severity[r.severity.value] += r.count
    return dataclasses.replace(report, findings=findings, rules=rules, severity_counts=dict(severity), **changes)


@pytest.fixture(scope="module")
def report(family_report: Report) -> Report:
    """The family report with a MED001 finding, as `--verify-media` would have made it."""
    train = family_report.inputs[0].path
    missing = Finding(code="MED001", severity=Severity.ERROR, source=train, line=3, pointer="/contents/0/parts/1",
                      message='media file "gs://bucket/img/cat.png" does not exist',
                      hint="upload the object or correct the fileUri", fingerprint="0123456789abcdef")
    media = {"references": 1, "uris": 1, "checked": 1, "found": 0, "missing": 1, "too_large": 0, "unreadable": 0,
             "unreadable_buckets": [], "not_verified": 0, "other_schemes": 0, "by_modality": {}}
    return with_findings(family_report, [missing], media=media)


@pytest.fixture(scope="module")
def clean_report(tmp_path_factory: pytest.TempPathFactory, records: Any, write_jsonl: Any) -> Report:
    """Seven distinct valid records, LIM004 (too few examples) switched off: no finding, the gate passes."""
    import sftgate

    path = write_jsonl(tmp_path_factory.mktemp("clean") / "train.jsonl", [records.good(i) for i in range(7)])
    return sftgate.check(path, ignore=["LIM004"], workers=1)


def capped(report: Report, code: str, keep: int) -> Report:
    """`report` as if report.max_findings_per_rule had listed only `keep` findings of `code`."""
    findings, seen = [], 0
    for f in report.findings:
        if f.code == code:
            seen += 1
            if seen > keep:
                continue
        findings.append(f)
    rules = [dataclasses.replace(r, listed=keep) if r.code == code else r for r in report.rules]
    return dataclasses.replace(report, findings=findings, rules=rules)


def test_the_shared_reports_are_what_the_tests_assume(report: Report, clean_report: Report) -> None:
    assert {r.code.rstrip("0123456789") for r in report.rules} == FAMILIES
    assert not report.passed
    assert any(f.line is None for f in report.findings)
    assert clean_report.passed and not clean_report.findings and not clean_report.rules


@pytest.mark.parametrize("emitter", EMITTERS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_render_is_deterministic_and_depends_only_on_the_report(emitter: Any, report: Report) -> None:
    first = emitter.render(report)
    assert isinstance(first, str) and first.endswith("\n")
    assert emitter.render(report) == first
    # A report saved as JSON (which keeps the duration to the millisecond) and loaded again renders the same.
    report = dataclasses.replace(report, duration_s=round(report.duration_s, 3))
    assert emitter.render(Report.from_dict(report.to_dict())) == emitter.render(report)


# --- SARIF ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    cls = jsonschema.validators.validator_for(schema)
    assert cls is jsonschema.Draft4Validator
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def sarif_log(report: Report, validator: Any) -> dict[str, Any]:
    log = json.loads(sarif.render(report))
    validator.validate(log)
    return log


def test_sarif_validates_against_the_sarif_schema(report: Report, clean_report: Report, sarif_validator: Any) -> None:
    for r in (report, clean_report, capped(report, "DUP003", 3)):
        log = sarif_log(r, sarif_validator)
        assert log["version"] == "2.1.0"
        assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
        assert len(log["runs"]) == 1


def test_the_sarif_schema_rejects_a_broken_log(report: Report, sarif_validator: Any) -> None:
    """The validation can fail: a level SARIF does not know, a line 0, a result without a message."""
    for path, value in ((("results", 0, "level"), "fatal"),
                        (("results", 1, "locations", 0, "physicalLocation", "region", "startLine"), 0)):
        log = json.loads(sarif.render(report))
        target = log["runs"][0]
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        with pytest.raises(jsonschema.ValidationError):
            sarif_validator.validate(log)
    log = json.loads(sarif.render(report))
    del log["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        sarif_validator.validate(log)


def test_sarif_has_one_result_per_listed_finding_at_its_line(report: Report, sarif_validator: Any) -> None:
    run = sarif_log(report, sarif_validator)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "sftgate"
    assert run["tool"]["driver"]["version"] == report.tool_version
    assert [d["id"] for d in rules] == [r.code for r in report.rules]
    assert len(run["results"]) == len(report.findings)
    for finding, result in zip(report.findings, run["results"], strict=True):
        assert result["ruleId"] == finding.code
        assert rules[result["ruleIndex"]]["id"] == finding.code
        assert result["level"] == {"error": "error", "warning": "warning", "info": "note"}[finding.severity.value]
        assert result["message"]["text"].startswith(finding.message)
        physical = result["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == Path(finding.source).as_uri()
        if finding.line is None:
            assert "region" not in physical
        else:
            assert physical["region"]["startLine"] == finding.line
            assert physical["region"].get("startColumn") == finding.column
        if finding.fingerprint:
            assert result["partialFingerprints"] == {"sftgate/v1": finding.fingerprint}
        else:
            assert "partialFingerprints" not in result
    by_code = {r["ruleId"]: r for r in run["results"]}
    assert by_code["FMT001"]["locations"][0]["physicalLocation"]["region"] == {"startLine": 69, "startColumn": 62}
    assert by_code["MED001"]["message"]["text"].endswith("\nhint: upload the object or correct the fileUri")
    lim = by_code["LIM004"]["locations"][0]["physicalLocation"]
    assert lim == {"artifactLocation": {"uri": Path(report.inputs[0].path).as_uri(), "index": 0}}


def test_sarif_rules_carry_their_documentation_and_level(report: Report, sarif_validator: Any) -> None:
    rules = {d["id"]: d for d in sarif_log(report, sarif_validator)["runs"][0]["tool"]["driver"]["rules"]}
    str002 = rules["STR002"]
    assert str002["name"] == "consecutive-same-role"
    assert str002["shortDescription"]["text"] == REGISTRY["STR002"].summary()
    assert str002["fullDescription"]["text"] == REGISTRY["STR002"].doc()
    assert str002["help"]["markdown"].startswith("## What it does")
    assert str002["defaultConfiguration"]["level"] == "error"
    assert rules["DUP003"]["defaultConfiguration"]["level"] == "warning"
    assert rules["LEAK001"]["properties"]["tags"] == ["LEAK"]
    assert rules["MED001"]["properties"]["tags"] == ["MED"]


def test_sarif_related_locations_artifacts_and_invocation(report: Report, sarif_validator: Any) -> None:
    run = sarif_log(report, sarif_validator)["runs"][0]
    exact = next(r for r, f in zip(run["results"], report.findings, strict=True) if f.code == "DUP001")
    related = exact["relatedLocations"][0]["physicalLocation"]
    assert related["region"] == {"startLine": 1}
    assert related["artifactLocation"]["uri"] == Path(report.inputs[0].path).as_uri()
    assert [a["hashes"]["sha-256"] for a in run["artifacts"]] == [i.sha256 for i in report.inputs]
    assert [a["location"]["uri"] for a in run["artifacts"]] == [Path(i.path).as_uri() for i in report.inputs]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is True
    assert invocation["properties"]["verdict"] == "failed"
    assert invocation["properties"]["gate"] == report.gate.to_dict()
    assert "toolExecutionNotifications" not in invocation


def test_sarif_says_when_findings_were_capped(report: Report, sarif_validator: Any) -> None:
    short = capped(report, "DUP003", 3)
    run = sarif_log(short, sarif_validator)["runs"][0]
    assert sum(r["ruleId"] == "DUP003" for r in run["results"]) == 3
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert len(notes) == 1
    assert notes[0]["associatedRule"]["id"] == "DUP003"
    assert notes[0]["message"]["text"].startswith("14 more DUP003 finding(s) not listed")


def test_sarif_uris_of_relative_absolute_and_cloud_storage_sources(clean_report: Report, sarif_validator: Any) -> None:
    findings = [
        Finding("FMT005", Severity.WARNING, "blank line", "data/my train#1.jsonl", line=4, fingerprint="00ff00ff00ff00ff"),
        Finding("DUP004", Severity.INFO, "near-duplicate prompt", "./data/val.jsonl", line=2,
                related="gs://bucket/dir/train.jsonl:7"),
        Finding("LIM004", Severity.WARNING, "3 training examples", "gs://bucket/dir/train.jsonl"),
    ]
    run = sarif_log(with_findings(clean_report, findings), sarif_validator)["runs"][0]
    locations = [r["locations"][0]["physicalLocation"] for r in run["results"]]
    assert locations[0]["artifactLocation"] == {"uri": "data/my%20train%231.jsonl", "uriBaseId": "%SRCROOT%"}
    assert locations[1]["artifactLocation"] == {"uri": "data/val.jsonl", "uriBaseId": "%SRCROOT%"}
    assert locations[2] == {"artifactLocation": {"uri": "gs://bucket/dir/train.jsonl"}}
    related = run["results"][1]["relatedLocations"][0]["physicalLocation"]
    assert related == {"artifactLocation": {"uri": "gs://bucket/dir/train.jsonl"}, "region": {"startLine": 7}}
    assert run["results"][1]["level"] == "note"
    levels = {d["id"]: d["defaultConfiguration"]["level"] for d in run["tool"]["driver"]["rules"]}
    assert levels == {"DUP004": "note", "FMT005": "warning", "LIM004": "warning"}
    assert run["invocations"][0]["properties"]["verdict"] == "passed"


# --- JUnit ------------------------------------------------------------------------------------

def junit_xml(report: Report) -> ET.Element:
    text = junit.render(report)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text)


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {c.get("name").split()[0]: c for c in root.iter("testcase")}


def test_junit_has_a_test_case_per_enabled_rule_and_the_gate(report: Report) -> None:
    root = junit_xml(report)
    suite = root.find("testsuite")
    assert root.tag == "testsuites" and suite.get("name") == "sftgate"
    by_code = cases(root)
    configured = report.profile["rules"]
    assert set(by_code) == set(configured) | {"gate"}
    for code, case in by_code.items():
        if code != "gate":
            assert case.get("classname") == f"sftgate.{code.rstrip('0123456789')}"
    disabled = {c for c, s in configured.items() if not s["enabled"]}
    assert disabled == {"TOK004"}
    assert {c for c, case in by_code.items() if case.find("skipped") is not None} == disabled
    failures = [c for c in by_code.values() if c.find("failure") is not None]
    for element in (root, suite):
        assert element.get("tests") == str(len(by_code))
        assert element.get("failures") == str(len(failures))
        assert element.get("errors") == "0"
        assert element.get("skipped") == str(len(disabled))
    assert suite.get("time") == f"{report.duration_s:.3f}"
    assert suite.get("timestamp") == report.started_at.removesuffix("+00:00")
    assert by_code["STR002"].get("name") == "STR002 consecutive-same-role"


@pytest.mark.parametrize("fail_on", [Severity.ERROR, Severity.WARNING])
def test_junit_fails_the_rules_with_findings_at_or_above_fail_on(report: Report, fail_on: Severity) -> None:
    report = dataclasses.replace(report, gate=dataclasses.replace(report.gate, fail_on=fail_on))
    by_code = cases(junit_xml(report))
    failing = {r.code for r in report.rules if r.severity.at_least(fail_on)}
    assert {c for c, case in by_code.items() if case.find("failure") is not None} == failing | {"gate"}
    if fail_on is Severity.ERROR:
        assert failing == {"FMT001", "LEAK001", "MED001", "SCH001", "SCH003", "STR002", "STR003"}
        dup = by_code["DUP001"]
        assert dup.find("failure") is None
        assert dup.find("system-out").text.splitlines() == [f"{report.inputs[0].path}:61 exact duplicate of line 1",
                                                           f"{report.inputs[0].path}:62 exact duplicate of line 2"]
    else:
        assert {"DUP001", "LIM004", "TOK003"} <= failing
    failure = by_code["STR002"].find("failure")
    assert failure.get("type") == "STR002" and failure.get("message") == "1 finding"
    assert failure.text == f'{report.inputs[0].path}:65 turn 3 has role "model" twice in a row'
    assert by_code["FMT001"].find("failure").text.startswith(f"{report.inputs[0].path}:69:62 invalid JSON")
    assert by_code["LEAK001"].find("failure").get("message") == "2 findings"
    assert by_code["STR001"].find("failure") is None and by_code["STR001"].find("system-out") is None
    gate = by_code["gate"].find("failure")
    assert gate.get("message") == report.gate.reason


def test_junit_whole_file_gate_failure_and_capped_findings(report: Report) -> None:
    source = report.inputs[0].path
    whole = Finding("FMT010", Severity.ERROR, "the file is one JSON array, not JSON Lines", source)
    failing = with_findings(report, [whole])
    failing = dataclasses.replace(failing, gate=dataclasses.replace(
        failing.gate, file_findings=1, reason="1 whole-file finding(s) at error or above"))
    by_code = cases(junit_xml(capped(failing, "DUP003", 2)))
    assert by_code["FMT010"].find("failure").text == f"{source} the file is one JSON array, not JSON Lines"
    gate = by_code["gate"].find("failure")
    assert gate.get("message") == "1 whole-file finding(s) at error or above"
    assert gate.text.splitlines()[-1] == f"{source} the file is one JSON array, not JSON Lines"
    dup = by_code["DUP003"].find("system-out").text.splitlines()
    assert len(dup) == 3 and dup[-1] == "... and 15 more (report.max_findings_per_rule)"


def test_junit_escapes_markup_and_drops_control_characters(clean_report: Report) -> None:
    nasty = Finding("SCH001", Severity.ERROR, 'bad <text> & "quotes"\x00\x1b[31m\x7f ok\ufffe',
                    "data/a&b<c>.jsonl", line=2, pointer="/contents")
    text = junit.render(with_findings(clean_report, [nasty]))
    assert "\x00" not in text and "\x1b" not in text and "\ufffe" not in text
    failure = cases(ET.fromstring(text))["SCH001"].find("failure")
    assert failure.text == 'data/a&b<c>.jsonl:2 bad <text> & "quotes"[31m\x7f ok'


def test_junit_on_a_clean_report_passes_every_case(clean_report: Report) -> None:
    root = junit_xml(clean_report)
    by_code = cases(root)
    assert root.get("failures") == "0"
    assert by_code["LIM004"].find("skipped") is not None
    assert all(c.find("failure") is None for c in by_code.values())
    assert by_code["gate"].find("system-out").text.startswith("no finding at error or above")


# --- GitHub Actions ---------------------------------------------------------------------------

def test_github_annotates_each_listed_finding_then_summarises(report: Report) -> None:
    lines = github.render(report).splitlines()
    assert len(lines) == len(report.findings) + 1
    kinds = Counter(line.split(" ", 1)[0] for line in lines[:-1])
    severities = Counter(f.severity for f in report.findings)
    assert kinds == {"::error": severities[Severity.ERROR], "::warning": severities[Severity.WARNING]}
    source = report.inputs[0].path.replace(":", "%3A").replace(",", "%2C")
    assert (f"::error file={source},line=65,title=STR002 consecutive-same-role::"
            f"turn 3 has role \"model\" twice in a row%0Ahint: user and model turns must alternate") in lines
    assert f"::error file={source},line=69,col=62,title=FMT001 invalid-json::" \
           "invalid JSON: unexpected end of data at column 62" in lines
    assert f"::warning file={source},title=LIM004 too-few-examples::" \
           "69 training examples; at least 100 are recommended%0Ahint: add examples before tuning" in lines
    assert lines[-1] == ("::error title=sftgate gate failed::37 findings (8 error, 29 warning, 0 info) in 3 file(s); "
                         "fail_on error: 7 of 79 lines (8.86%25) have findings at error or above; "
                         "the profile allows 0.00%25")


def test_github_escapes_like_the_actions_toolkit(clean_report: Report) -> None:
    odd = Finding("DUP004", Severity.INFO, "100% alike,\r\nsee: line 2", "data/a,b:c%d.jsonl", line=3, column=5)
    lines = github.render(with_findings(clean_report, [odd])).splitlines()
    assert lines[0] == ("::notice file=data/a%2Cb%3Ac%25d.jsonl,line=3,col=5,title=DUP004 repeated-prompt::"
                        "100%25 alike,%0D%0Asee: line 2")
    assert github.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert github.escape_data("a:b,c%\r") == "a:b,c%25%0D"


def test_github_summary_of_a_clean_and_of_a_capped_report(report: Report, clean_report: Report) -> None:
    assert github.render(clean_report) == ("::notice title=sftgate gate passed::0 findings (0 error, 0 warning, "
                                           "0 info) in 1 file(s); fail_on error: no finding at error or above\n")
    last = github.render(capped(report, "DUP003", 3)).splitlines()[-1]
    assert "; 23 annotated, 14 not listed (report.max_findings_per_rule);" in last


# --- Markdown ---------------------------------------------------------------------------------

def table_rows(document: str, header: str) -> list[list[str]]:
    """The cells of the table under `header`, split at unescaped pipes."""
    lines = document.split(header + "\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[2:]]


def test_markdown_summary_of_the_family_report(report: Report) -> None:
    text = markdown.render(report)
    assert text.startswith("## sftgate: FAILED\n\n**Gate FAILED** (fail_on: error): "
                           "7 of 79 lines (8.86%) have findings at error or above; the profile allows 0.00%.")
    inputs = table_rows(text, "### Inputs")
    assert [row[0] for row in inputs] == [f"`{i.path}`" for i in report.inputs]
    assert inputs[0][1:] == ["train", "71", "69", "blank 1, invalid json 1, invalid record 4, valid 65"]
    rules = table_rows(text, "### Findings by rule")
    assert ["MED001", "missing-media", "error", "1"] in rules
    assert ["DUP003", "conflicting-answers", "warning", "17"] in rules
    assert rules[-1] == ["**total**", "", "", "**37**"]
    first = table_rows(text, "### First findings")
    assert len(first) == 20
    assert first[0] == [f"`{report.inputs[0].path}`", "LIM004", "69 training examples; at least 100 are recommended"]
    assert "The first 20 of 37 listed findings." in text
    for section in ("**Duplicates** in", "**Leakage** into", "**Tokens** in", "**Media**: 1 gs:// file(s) checked, 1 missing"):
        assert section in text
    train_tokens = report.tokens["splits"][0]
    assert (f"**Tokens** in `{report.inputs[0].path}`: {train_tokens['billable_tokens']['value']:,} billable token(s) "
            f"(estimated) in {train_tokens['examples']:,} example(s); 0 over the 131,072-token limit") in text
    assert "not listed in the report" not in text


def test_markdown_escapes_table_cells(clean_report: Report) -> None:
    odd = Finding("SCH001", Severity.ERROR, "a | b\nc *not bold* <b>x</b> @octocat #12 & `tick`",
                  "data/x|y.jsonl", line=5)
    text = markdown.render(with_findings(clean_report, [odd]))
    row = table_rows(text, "### Findings")[0]
    assert row == ["`data/x\\|y.jsonl:5`", "SCH001",
                   "a \\| b<br>c \\*not bold\\* \\<b\\>x\\</b\\> @\u200boctocat #\u200b12 &amp; \\`tick\\`"]


def test_markdown_of_a_clean_report(clean_report: Report) -> None:
    text = markdown.render(clean_report)
    assert text.startswith("## sftgate: PASSED\n\n**Gate PASSED** (fail_on: error): no finding at error or above.")
    assert "No findings." in text
    assert "### Findings by rule" not in text


def test_markdown_suppressed_and_capped(report: Report) -> None:
    suppressed = {"findings": 12, "by_code": {"DUP002": 10, "FMT005": 2},
                  "waivers": {"entries": [{"code": "DUP002"}], "findings": 10, "by_code": {"DUP002": 10}},
                  "baseline": {"file": "baseline.json", "entries": 40, "findings": 2, "by_code": {"FMT005": 2}}}
    text = markdown.render(dataclasses.replace(capped(report, "DUP003", 3), suppressed=suppressed))
    assert ("- **Suppressed**: 12 finding(s) left out: 10 by 1 waiver(s); 2 by the baseline `baseline.json` "
            "(40 entries)") in text
    assert "> 14 more findings not listed in the report (report.max_findings_per_rule): DUP003 14." in text


def test_markdown_stays_under_the_comment_limit(report: Report) -> None:
    long = "x | y " * 2_000 + "\n" * 50
    template = report.findings[1]
    many = [dataclasses.replace(template, line=i, message=f"{i}: {long}") for i in range(1, 5_001)]
    huge = dataclasses.replace(report, findings=many,
                               rules=[RuleSummary("DUP003", "conflicting-answers", Severity.WARNING, 90_000, 5_000)],
                               severity_counts={"warning": 90_000})
    text = markdown.render(huge)
    assert len(text) <= markdown.MAX_CHARS
    assert len(table_rows(text, "### First findings")) == 20
    assert "> 85,000 more findings not listed" in text
    assert "Cut here" not in text

    one = report.inputs[0]
    inputs = [dataclasses.replace(one, path=f"data/shard-{i:05d}/" + "deep/" * 20 + "train.jsonl")
              for i in range(3_000)]
    cut = markdown.render(dataclasses.replace(huge, inputs=inputs))
    assert len(cut) <= markdown.MAX_CHARS
    assert cut.startswith("## sftgate: FAILED")
    assert cut.endswith("The JSON report (`--report-json`) has everything.\n")
    assert "**Cut here**: this summary stops at 60,000 characters" in cut
    assert all(line.startswith("| `data/shard-") or not line.startswith("| `data")
               for line in cut.splitlines())  # rows are whole: the cut falls between lines


def test_emitters_render_a_minimal_hand_built_report(sarif_validator: Any) -> None:
    """A minimal hand-built report (no tokens, duplicates, leakage): every emitter renders it."""
    empty = Report(
        tool_version="9.9.9", started_at="not a time", duration_s=0.0,
        profile={"name": "p", "target": "t", "files": [], "settings": {}, "rules": {}},
        inputs=[InputSummary("in.jsonl", "train", "0" * 64, 0, 0, None, 0, 0, {}, 0, None)],
        rules=[], findings=[],
        gate=Gate(passed=True, fail_on=Severity.ERROR, max_error_fraction=0.0, failing_lines=0, lines=0,
                  file_findings=0, reason="no finding at error or above"),
        workers=1,
    )
    log = sarif_log(empty, sarif_validator)
    assert "startTimeUtc" not in log["runs"][0]["invocations"][0]
    assert log["runs"][0]["artifacts"][0]["location"] == {"uri": "in.jsonl", "uriBaseId": "%SRCROOT%"}
    assert [c.get("name") for c in junit_xml(empty).iter("testcase")] == ["gate"]
    assert "timestamp" not in junit_xml(empty).find("testsuite").attrib
    assert github.render(empty).startswith("::notice title=sftgate gate passed::0 findings")
    assert "| `in.jsonl` | train | 0 | 0 | empty |" in markdown.render(empty)
