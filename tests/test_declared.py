"""Content rules users declare in YAML (`content.rules`, CNT100-CNT999): each kind with a passing
and a failing record, load-time validation, merging across files, and `prepare` dropping."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest

import sftgate
from sftgate.config import load_profile
from sftgate.engine.prepare import prepare
from sftgate.errors import ConfigError


def _example(prompt: str, answer: str, system: str | None = None) -> dict:
    row = {"contents": [{"role": "user", "parts": [{"text": prompt}]}, {"role": "model", "parts": [{"text": answer}]}]}
    if system is not None:
        row["systemInstruction"] = {"parts": [{"text": system}]}
    return row


def _check(tmp_path: Path, write_jsonl, rules_yaml: str, rows: list[dict], **options) -> list:
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_yaml, encoding="utf-8")
    src = write_jsonl(tmp_path / "train.jsonl", rows)
    report = sftgate.check(src, rules=rules, workers=1, **options)
    return [(f.code, f.line, f.pointer, f.message) for f in report.findings if f.code.startswith("CNT1")]


def test_regex_rule_flags_a_match_in_the_field_it_names(tmp_path, write_jsonl):
    found = _check(tmp_path, write_jsonl, """
content:
  rules:
    - {code: CNT101, kind: regex, field: response, pattern: "(?i)as an ai language model", severity: error}
""", [_example("As an AI language model, what are you?", "I answer questions."),
      _example("Who are you?", "As an AI language model, I cannot have opinions.")])
    assert [(c, line, p) for c, line, p, _ in found] == [("CNT101", 2, "/contents/1")]
    assert 'matches "(?i)as an ai language model": "As an AI language model"' in found[0][3]


def test_regex_must_match_and_a_custom_message(tmp_path, write_jsonl):
    found = _check(tmp_path, write_jsonl, """
content:
  rules:
    - {code: CNT102, kind: regex, field: response, pattern: "^(positive|negative|neutral)$", must_match: true,
       message: answer is not a sentiment label}
""", [_example("I love it", "positive"), _example("Meh", "It is neutral, I think.")])
    assert [(c, line, m) for c, line, _, m in found] == [("CNT102", 2, "turn 2 (model): answer is not a sentiment label")]


def test_length_rule_in_chars_words_and_tokens(tmp_path, write_jsonl):
    found = _check(tmp_path, write_jsonl, """
content:
  rules:
    - {code: CNT110, kind: length, field: prompt, unit: chars, min: 10}
    - {code: CNT111, kind: length, field: response, unit: words, max: 5}
    - {code: CNT112, kind: length, field: response, unit: tokens, max: 20}
""", [_example("Hi", "Hello there."),
      _example("Summarise the plot of Hamlet.", "A prince avenges his father and everyone dies at the end."),
      _example("Count to thirty in words.", " ".join(["one"] * 30))])
    assert {(c, line) for c, line, _, _ in found} == {("CNT110", 1), ("CNT111", 2), ("CNT111", 3), ("CNT112", 3)}
    messages = {c: m for c, line, _, m in found if line in (1, 3)}
    assert "has 2 chars, fewer than 10" in messages["CNT110"]
    assert "more than 20" in messages["CNT112"]


def test_language_rule(tmp_path, write_jsonl):
    found = _check(tmp_path, write_jsonl, """
content:
  rules:
    - {code: CNT120, kind: language, field: response, languages: [en], min_chars: 20}
""", [_example("Describe Paris.", "Paris is the capital of France, famous for its museums and cafés."),
      _example("Describe Paris.", "Paris est la capitale de la France, célèbre pour ses musées et ses cafés."),
      _example("Say hi.", "Salut !")])  # too short to judge
    assert [(c, line) for c, line, _, _ in found] == [("CNT120", 2)]
    assert "is in 'fr'" in found[0][3]


def test_contains_json_rule_with_a_schema_file_beside_the_rules(tmp_path, write_jsonl):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "answer.json").write_text(json.dumps({
        "type": "object", "required": ["label"], "properties": {"label": {"enum": ["spam", "ham"]}}}))
    found = _check(tmp_path, write_jsonl, """
content:
  rules:
    - {code: CNT130, kind: contains_json, schema: schemas/answer.json}
""", [_example("Classify: win a prize now", '{"label": "spam"}'),
      _example("Classify: lunch at noon?", '```json\n{"label": "ham"}\n```'),
      _example("Classify: hello", "ham"),
      _example("Classify: meeting", '{"label": "maybe"}')])
    assert [(c, line) for c, line, _, _ in found] == [("CNT130", 3), ("CNT130", 4)]
    assert "is not JSON" in found[0][3]
    assert "does not match the schema" in found[1][3] and "/label" in found[1][3]


@pytest.mark.parametrize(("spec", "needle"), [
    ('{code: CNT101, kind: regex, pattern: "(unclosed"}', "invalid pattern"),
    ('{code: CNT050, kind: regex, pattern: "x"}', "/content/rules/0/code: 'CNT050' does not match"),
    ('{code: CNT101, kind: regex}', "needs a pattern"),
    ('{code: CNT101, kind: length, unit: chars}', "needs min or max"),
    ('{code: CNT101, kind: contains_json, schema: missing.json}', "no such file"),
    ('{code: CNT101, kind: regex, pattern: "x", action: fix}', "'fix' is not one of ['flag', 'drop']"),
    ('{code: CNT101, kind: regex, pattern: "x"}\n    - {code: CNT101, kind: regex, pattern: "y"}', "CNT101 is declared twice"),
    ('{code: CNT101, kind: regex, pattern: "x", colour: red}', "unknown key 'colour'"),
])
def test_a_bad_declared_rule_is_a_config_error_at_load(tmp_path, spec, needle):
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"content:\n  rules:\n    - {spec}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_profile(rules_file=rules)


def test_a_bad_pattern_on_the_command_line_is_one_error_line(tmp_path, write_jsonl, run_cli, assert_usage_error):
    rules = tmp_path / "rules.yaml"
    rules.write_text('content:\n  rules:\n    - {code: CNT101, kind: regex, pattern: "(a"}\n', encoding="utf-8")
    src = write_jsonl(tmp_path / "t.jsonl", [_example("q", "a")])
    assert_usage_error(run_cli("check", src, "--rules", rules), "CNT101", "invalid pattern")


def test_declared_rules_merge_by_code_across_files_and_obey_select(tmp_path, write_jsonl):
    (tmp_path / "team.yaml").write_text("""
extends: gemini-2.5-flash
content:
  rules:
    - {code: CNT101, kind: regex, pattern: "lorem"}
    - {code: CNT102, kind: regex, pattern: "ipsum"}
""", encoding="utf-8")
    (tmp_path / "mine.yaml").write_text("""
extends: team.yaml
content:
  rules:
    - {code: CNT102, kind: regex, pattern: "dolor", severity: error}
rules:
  CNT101: {severity: info}
""", encoding="utf-8")
    profile = load_profile(tmp_path / "mine.yaml")
    assert [s["code"] for s in profile.declared] == ["CNT101", "CNT102"]
    assert profile.severity("CNT101").value == "info" and profile.severity("CNT102").value == "error"
    src = write_jsonl(tmp_path / "t.jsonl", [_example("lorem ipsum", "dolor sit amet")])
    report = sftgate.check(src, profile=tmp_path / "mine.yaml", workers=1)
    assert sorted((f.code, f.severity.value) for f in report.findings if f.code.startswith("CNT1")) == [
        ("CNT101", "info"), ("CNT102", "error")]
    assert not report.gate.passed
    report = sftgate.check(src, profile=tmp_path / "mine.yaml", ignore=["CNT102"], workers=1)
    assert [f.code for f in report.findings if f.code.startswith("CNT1")] == ["CNT101"]
    names = {r.code: r.name for r in report.rules}
    assert names["CNT101"] == "declared-cnt101"


def test_prepare_drops_what_a_declared_drop_rule_finds(tmp_path, write_jsonl):
    rules = tmp_path / "rules.yaml"
    rules.write_text('content:\n  rules:\n    - {code: CNT140, kind: regex, field: response, pattern: "(?i)^sorry", '
                     'action: drop}\n', encoding="utf-8")
    rows = [_example(f"What is {i} squared?", f"{i * i}." if i % 4 else "Sorry, I cannot help.") for i in range(12)]
    src = write_jsonl(tmp_path / "t.jsonl", rows)
    prepare(src, out=tmp_path / "out", rules=rules, workers=2)
    train = (tmp_path / "out" / "train.jsonl").read_bytes().splitlines()
    quarantine = [orjson.loads(q) for q in (tmp_path / "out" / "quarantine.jsonl").read_bytes().splitlines()]
    assert len(train) == 9 and len(quarantine) == 3
    assert {r["code"] for q in quarantine for r in q["reasons"]} == {"CNT140"}
