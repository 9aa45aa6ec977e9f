"""The public API: `sftgate.__all__`, `sftgate.check()`, `Report`, `Finding` and the error types."""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import pytest

import sftgate
from sftgate.baseline import fingerprint

DOCUMENTED = {
    "Action", "ConfigError", "Example", "Finding", "LineStatus", "Profile", "Report", "Severity",
    "SftgateError", "SourceError", "UsageError", "__version__", "all_rules", "check", "load_profile",
    "prepare", "Prepared",
}


def test_all_is_exactly_the_documented_surface():
    assert set(sftgate.__all__) == DOCUMENTED
    assert len(sftgate.__all__) == len(DOCUMENTED)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_every_public_name_is_importable(name):
    module = importlib.import_module("sftgate")
    assert getattr(module, name) is not None
    namespace: dict = {}
    exec(f"from sftgate import {name}", namespace)  # noqa: S102 - the import statement is the test
    assert namespace[name] is getattr(sftgate, name)


def test_version_is_a_string():
    assert isinstance(sftgate.__version__, str) and sftgate.__version__[0].isdigit()


def test_error_hierarchy():
    for error in (sftgate.SourceError, sftgate.ConfigError, sftgate.UsageError):
        assert issubclass(error, sftgate.SftgateError)
    assert issubclass(sftgate.SftgateError, Exception)


def test_check_returns_a_report(tmp_path, records, write_jsonl):
    train = write_jsonl(tmp_path / "train.jsonl", [records.good(0), records.model_twice(1), records.good(2)])
    val = write_jsonl(tmp_path / "val.jsonl", [records.good(3)])
    report = sftgate.check(train, validation=val, profile="gemini-2.0-flash", workers=1)
    assert isinstance(report, sftgate.Report)
    assert report.passed is False and report.exit_code == 1
    assert all(isinstance(f, sftgate.Finding) for f in report.findings)
    [finding] = [f for f in report.findings if f.code == "STR002"]
    assert finding.severity is sftgate.Severity.ERROR
    assert (finding.source, finding.line, finding.pointer) == (str(train), 2, "/contents/2")
    assert finding.message == 'turn 3 has role "model" twice in a row'
    assert finding.location == f"{train}:2:/contents/2"
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.line = 3  # type: ignore[misc]

    data = report.to_dict()
    json.dumps(data)  # plain data
    assert data["gate"]["passed"] is False
    assert [i["split"] for i in data["inputs"]] == ["train", "validation"]
    assert data["profile"]["target"] == "gemini-2.0-flash"
    assert {"code": "STR002", "severity": "error", "message": finding.message, "source": str(train), "line": 2,
            "pointer": "/contents/2", "column": None, "hint": finding.hint,
            "related": None, "similarity": None, "fingerprint": finding.fingerprint} in data["findings"]
    assert finding.fingerprint == fingerprint(train.read_bytes().splitlines()[1]).hex()


def test_check_passing_report(oasst):
    report = sftgate.check(oasst / "train.jsonl", validation=oasst / "validation.jsonl", workers=1)
    assert report.passed is True and report.exit_code == 0
    assert not [f for f in report.findings if f.severity is sftgate.Severity.ERROR]
    assert [i.lines for i in report.inputs] == [501, 63]


def test_check_accepts_str_and_path(tmp_path, records, write_jsonl, without_volatile):
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(0)])
    by_path = sftgate.check(Path(path), workers=1)
    by_str = sftgate.check(str(path), workers=1)
    assert without_volatile(by_path) == without_volatile(by_str)


def test_check_with_a_profile_object_name_and_rules(tmp_path, records, write_jsonl, write_rules):
    path = write_jsonl(tmp_path / "t.jsonl", [records.ends_with_user(0)])
    rules = write_rules(tmp_path / "r.yaml", "rules:\n  STR004: {severity: error}\n")
    report = sftgate.check(path, profile="gemini-1.5-pro-002", rules=rules, select=["STR"], workers=1)
    assert {r.code for r in report.rules} == {"STR004"}
    assert report.rules[0].severity is sftgate.Severity.ERROR


def test_missing_input_raises_source_error(tmp_path):
    with pytest.raises(sftgate.SourceError, match="no such file"):
        sftgate.check(tmp_path / "absent.jsonl")


def test_directory_raises_source_error(tmp_path):
    with pytest.raises(sftgate.SourceError, match="directory"):
        sftgate.check(tmp_path)


def test_bad_rules_file_raises_config_error(tmp_path, clean_file, write_rules):
    rules = write_rules(tmp_path / "r.yaml", "limts: {}\n")
    with pytest.raises(sftgate.ConfigError, match="limits"):
        sftgate.check(clean_file, rules=rules)


def test_unknown_profile_raises_config_error(clean_file):
    with pytest.raises(sftgate.ConfigError, match="no-such-model"):
        sftgate.check(clean_file, profile="no-such-model")


@pytest.mark.parametrize("workers", [0, -1])
def test_bad_workers_raises_usage_error(clean_file, workers):
    with pytest.raises(sftgate.UsageError, match=str(workers)):
        sftgate.check(clean_file, workers=workers)


def test_unknown_select_code_raises(clean_file):
    with pytest.raises(sftgate.SftgateError, match="XYZ999"):
        sftgate.check(clean_file, select=["XYZ999"])


def test_all_rules_and_enums():
    codes = [r.code for r in sftgate.all_rules()]
    assert codes == sorted(codes) and len(codes) == len(set(codes))
    assert {s.value for s in sftgate.Severity} == {"error", "warning", "info"}
    assert {a.value for a in sftgate.Action} == {"flag", "drop", "fix"}
    assert sftgate.LineStatus.INVALID_RECORD.is_record and not sftgate.LineStatus.BLANK.is_record


def test_rule_docstrings_have_the_headings():
    for rule in sftgate.all_rules():
        doc = rule.doc()
        for heading in ("## What it does", "## Why is this bad?", "## Example"):
            assert heading in doc, (rule.code, heading)
        assert rule.summary()
