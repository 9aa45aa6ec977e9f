"""The report options of `check` and `prepare`, and `sftgate report`, end to end on the command line."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest


@pytest.fixture
def family(tmp_path):
    from conftest import family_dataset

    family_dataset(tmp_path)
    return tmp_path


def test_check_writes_every_report_file(family, run_cli):
    result = run_cli("check", "train.jsonl", "--validation", "validation.jsonl", "--eval", "heldout.jsonl",
                     "--report-json", "r.json", "--report-html", "r.html", "--report-sarif", "r.sarif",
                     "--report-junit", "r.xml", "--summary-md", "summary.md", "--format", "github", cwd=family)
    assert result.returncode == 1
    report = json.loads((family / "r.json").read_text())
    errors = sum(1 for f in report["findings"] if f["severity"] == "error")
    assert result.stdout.count("::error ") == errors + 1  # each error finding, and the gate's summary line

    sarif = json.loads((family / "r.sarif").read_text())
    assert len(sarif["runs"][0]["results"]) == len(report["findings"])
    first = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert first["uri"] == "train.jsonl" and first["uriBaseId"] == "%SRCROOT%"

    suite = ET.parse(family / "r.xml").getroot()
    failed = {case.get("name").split()[0] for case in suite.iter("testcase") if case.find("failure") is not None}
    assert {"STR002", "SCH001", "LEAK001"} <= failed and "DUP002" not in failed  # a warning does not fail

    summary = (family / "summary.md").read_text()
    assert "FAILED" in summary and "| STR002 |" in summary

    page = (family / "r.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html>") and "STR002" in page


def test_report_files_are_the_same_from_a_saved_report(family, run_cli):
    assert run_cli("check", "train.jsonl", "--validation", "validation.jsonl", "--report-json", "r.json",
                   "--report-sarif", "direct.sarif", "--summary-md", "direct.md", "--report-html", "direct.html",
                   "--report-junit", "direct.xml", "-q", cwd=family).returncode == 1
    again = run_cli("report", "r.json", "--report-sarif", "again.sarif", "--summary-md", "again.md",
                    "--html", "again.html", "--report-junit", "again.xml", "--format", "markdown", cwd=family)
    assert again.returncode == 1
    for name in ("sarif", "md", "html", "xml"):
        assert (family / f"direct.{name}").read_bytes() == (family / f"again.{name}").read_bytes(), name
    assert again.stdout == (family / "direct.md").read_text()


@pytest.mark.parametrize("fmt", ["markdown", "junit", "sarif", "github", "json", "text"])
def test_every_format_on_a_passing_run(fmt, tmp_path, clean_file, run_cli):
    result = run_cli("check", clean_file, "--format", fmt, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert result.stderr == ""


def test_prepare_writes_report_files(tmp_path, clean_file, run_cli):
    result = run_cli("prepare", clean_file, "--out", "out", "--report-html", "r.html", "--summary-md", "s.md",
                     "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Gate PASSED") and result.stdout.count("\n") == 1
    assert (tmp_path / "r.html").stat().st_size > 1000 and "PASSED" in (tmp_path / "s.md").read_text()


def test_unwritable_report_file_is_one_line(tmp_path, clean_file, run_cli, assert_usage_error):
    result = run_cli("check", clean_file, "--report-html", str(tmp_path / "no" / "such" / "dir.html"), cwd=tmp_path)
    assert_usage_error(result, "dir.html", "cannot write the report")
