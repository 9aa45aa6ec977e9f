"""Real files people try to tune on (../shared/data/real): each is read fully and judged correctly."""

from __future__ import annotations

import pytest

import sftgate
from sftgate.model import Severity


def test_legacy_gemini_messages_file(real_data, run_cli, physical_lines):
    path = real_data / "vertex" / "training_data_wrong.jsonl"
    data = path.read_bytes()
    assert physical_lines(data) == 36

    result = run_cli("check", path, "--format", "json", "--input-format", "gemini")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stderr == ""

    converted = sftgate.check(path, workers=1)  # auto: detected and converted; only CNV003 fails the gate
    assert converted.inputs[0].format == "gemini-messages" and converted.inputs[0].records == 36
    assert {f.code for f in converted.findings if f.severity is Severity.ERROR} == {"CNV003"}

    report = sftgate.check(path, workers=1, input_format="gemini")  # read as Vertex reads it
    foreign = [f for f in report.findings if f.code == "SCH003"]
    assert [f.line for f in foreign] == list(range(1, 37))
    for finding in foreign:
        assert finding.severity is Severity.ERROR
        assert "Gemini 1.0 `messages`" in finding.message
        assert finding.hint and "convert" in finding.hint and "contents" in finding.hint
    assert not [f for f in report.findings if f.code == "SCH001"]  # the format is named, not a pile of errors
    assert report.inputs[0].lines == 36
    assert report.to_dict()["inputs"][0]["accounting"] == {"invalid_record": 36}
    assert report.gate.failing_lines == 36


def test_valid_gemini_file_without_trailing_newline(real_data, run_cli):
    path = real_data / "vertex" / "patient_1_glucose_examples.jsonl"
    assert not path.read_bytes().endswith(b"\n")
    report = sftgate.check(path, workers=1)
    assert not [f for f in report.findings if f.severity is Severity.ERROR]
    [newline] = [f for f in report.findings if f.code == "FMT008"]
    assert newline.severity is Severity.INFO and newline.line == report.inputs[0].lines
    assert report.passed
    assert run_cli("check", path).returncode == 0


@pytest.mark.parametrize("name", ["chat/lima.json", "alpaca/alpaca_5000.json"])
def test_json_array_datasets(real_data, run_cli, physical_lines, name):
    path = real_data / name
    report = sftgate.check(path, workers=1, input_format="gemini")  # read as Vertex reads it
    assert report.counts_by_code()["FMT010"] == 1
    [finding] = [f for f in report.findings if f.code == "FMT010"]
    assert finding.line is None and "jq" in (finding.hint or "")
    lines = physical_lines(path.read_bytes())
    assert report.inputs[0].lines == lines
    assert report.to_dict()["inputs"][0]["accounting"] == {"json_array_file": lines}
    assert report.exit_code == 1
    result = run_cli("check", path, "--input-format", "gemini")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{path} FMT010 [error] file is a JSON array" in result.stdout


def test_shipped_oasst_sample_passes(oasst, run_cli):
    report = sftgate.check(oasst / "train.jsonl", validation=oasst / "validation.jsonl", workers=1)
    assert report.passed
    assert [i.accounting for i in report.inputs] == [{"valid": 501}, {"valid": 63}]
    result = run_cli("check", oasst / "train.jsonl", "--validation", oasst / "validation.jsonl")
    assert result.returncode == 0


@pytest.mark.parametrize("name", [
    "chat/oasst_en_100_tree.jsonl", "chat/sharegpt_first3000.json", "chat/fastchat_dummy_conversation.json",
    "alpaca/seed_tasks.jsonl", "dialogsum/dialogsum.dev.jsonl", "prod_prompts/mt_bench_question.jsonl",
])
def test_other_real_files_are_read_without_crashing(real_data, physical_lines, name):
    path = real_data / name
    if not path.is_file():
        pytest.skip(f"{name} not in the real data set")
    report = sftgate.check(path, workers=1, input_format="gemini")
    summary = report.to_dict()["inputs"][0]
    assert summary["lines"] == physical_lines(path.read_bytes())
    assert sum(summary["accounting"].values()) == summary["lines"]
    assert report.exit_code == 1  # none of them is in the Gemini `contents` format
