"""Profiles and rules files: loading, `extends`, validation errors, overrides and the gate."""

from __future__ import annotations

import pytest

import sftgate
from sftgate._resources import builtin_profiles
from sftgate.config import DEFAULT_PROFILE
from sftgate.model import Action, Severity
from sftgate.rules import REGISTRY

SECTIONS = ("limits", "media", "format", "structure", "gate", "report")


@pytest.mark.parametrize("name", builtin_profiles())
def test_every_builtin_profile_loads(name):
    profile = sftgate.load_profile(name)
    assert isinstance(profile, sftgate.Profile)
    for section in SECTIONS:
        assert section in profile.data
    assert set(profile.rules) == set(REGISTRY)
    assert profile.selected <= set(REGISTRY)
    assert profile.files[0].endswith("base.yaml")


def test_builtins_include_the_default():
    assert DEFAULT_PROFILE in builtin_profiles()
    assert sftgate.load_profile().target == DEFAULT_PROFILE


def test_profile_survives_pickling():
    import pickle

    profile = sftgate.load_profile("gemini-1.5-flash-002", ignore=["STR004"])
    again = pickle.loads(pickle.dumps(profile))
    assert again.to_dict() == profile.to_dict()
    assert again.selected == profile.selected


def test_user_file_extending_a_builtin(tmp_path, write_rules):
    rules = write_rules(tmp_path / "mine.yaml",
                        "extends: gemini-1.5-flash-002\nlimits:\n  min_recommended_examples: 3\n")
    profile = sftgate.load_profile(rules_file=rules)  # its own extends wins over the default profile
    assert profile.limits["max_validation_examples"] == 256
    assert profile.limits["min_recommended_examples"] == 3
    assert profile.target == "gemini-1.5-flash-002"


def test_extends_chain_through_user_files(tmp_path, write_rules):
    write_rules(tmp_path / "team.yaml", "extends: gemini-1.5-flash-002\ngate:\n  fail_on: warning\n")
    (tmp_path / "sub").mkdir()
    mine = write_rules(tmp_path / "sub" / "mine.yaml", "extends: ../team.yaml\nreport:\n  max_findings_per_rule: 7\n")
    profile = sftgate.load_profile(rules_file=mine)
    assert profile.limits["max_validation_examples"] == 256
    assert profile.fail_on is Severity.WARNING
    assert profile.max_findings_per_rule == 7
    assert [f.split("/")[-1] for f in profile.files] == ["base.yaml", "gemini-1.5-flash-002.yaml", "team.yaml",
                                                         "mine.yaml"]


def test_rules_file_without_extends_extends_the_profile(tmp_path, write_rules):
    rules = write_rules(tmp_path / "mine.yaml", "gate:\n  max_error_fraction: 0.1\n")
    on_old = sftgate.load_profile("gemini-1.5-flash-002", rules_file=rules)
    on_default = sftgate.load_profile(rules_file=rules)
    assert on_old.limits["max_validation_examples"] == 256
    assert on_default.limits["max_validation_examples"] == 5000
    assert on_old.max_error_fraction == on_default.max_error_fraction == 0.1


def test_rules_file_without_extends_extends_profile_on_the_command_line(tmp_path, records, write_jsonl,
                                                                       write_rules, run_cli):
    rules = write_rules(tmp_path / "mine.yaml", "ignore: [LIM004, LEAK]\n")  # validation repeats training records
    train = write_jsonl(tmp_path / "train.jsonl", [records.good(i) for i in range(3)])
    val = write_jsonl(tmp_path / "val.jsonl", [records.good(i) for i in range(300)])
    old = run_cli("check", train, "--validation", val, "--profile", "gemini-1.5-flash-002", "--rules", rules)
    new = run_cli("check", train, "--validation", val, "--rules", rules)
    assert old.returncode == 1 and "LIM003" in old.stdout  # 300 > 256
    assert new.returncode == 0 and "LIM003" not in new.stdout


def test_profile_given_as_a_path(tmp_path, write_rules):
    path = write_rules(tmp_path / "target.yaml", "extends: gemini-2.0-flash\ndescription: our target\n")
    profile = sftgate.load_profile(str(path))
    assert profile.target == "gemini-2.0-flash"
    assert profile.data["description"] == "our target"


@pytest.mark.parametrize("files", [
    {"a.yaml": "extends: a.yaml\n"},
    {"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: c.yaml\n", "c.yaml": "extends: a.yaml\n"},
], ids=["self", "three"])
def test_extends_loop_is_a_config_error(tmp_path, write_rules, files):
    for name, text in files.items():
        write_rules(tmp_path / name, text)
    with pytest.raises(sftgate.ConfigError, match="loop"):
        sftgate.load_profile(rules_file=tmp_path / "a.yaml")


def test_extends_unknown_builtin_is_a_config_error(tmp_path, write_rules):
    rules = write_rules(tmp_path / "mine.yaml", "extends: gemini-1.5-flash-003\n")
    with pytest.raises(sftgate.ConfigError, match="gemini-1.5-flash-00"):
        sftgate.load_profile(rules_file=rules)


def test_yaml_syntax_error_names_file_and_line(tmp_path, write_rules):
    rules = write_rules(tmp_path / "broken.yaml", "gate:\n  fail_on: error\nlimits:\n  max_tokens_per_example: [8000\n")
    with pytest.raises(sftgate.ConfigError) as err:
        sftgate.load_profile(rules_file=rules)
    message = str(err.value)
    assert f"{rules}:" in message
    line = int(message.split(f"{rules}:", 1)[1].split(":", 1)[0])
    assert 4 <= line <= 5  # the unclosed list opens on line 4; the parser notices at its end
    assert "\n" not in message


def test_yaml_python_tag_is_rejected_and_not_executed(tmp_path, write_rules):
    marker = tmp_path / "executed"
    rules = write_rules(tmp_path / "evil.yaml", f'rules: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(sftgate.ConfigError, match="evil.yaml"):
        sftgate.load_profile(rules_file=rules)
    assert not marker.exists()


def test_yaml_python_tag_through_the_cli(tmp_path, write_rules, clean_file, run_cli, assert_usage_error):
    marker = tmp_path / "executed"
    rules = write_rules(tmp_path / "evil.yaml", f'extends: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert_usage_error(run_cli("check", clean_file, "--rules", rules), "evil.yaml")
    assert not marker.exists()


@pytest.mark.parametrize("text, needles", [
    ("limts:\n  max_tokens_per_example: 8000\n", ("limts", "limits")),
    ("limits:\n  max_tokns_per_example: 8000\n", ("max_tokns_per_example", "max_tokens_per_example")),
    ("rules:\n  STR004: {severity: critical}\n", ("STR004",)),
    ("rules:\n  STR004: {sevrity: info}\n", ("sevrity", "severity")),
    ("rules:\n  STR099: {enabled: false}\n", ("STR099", "STR009")),
    ("gate:\n  max_error_fraction: 2\n", ("max_error_fraction",)),
    ("- just\n- a list\n", ("mapping",)),
    ("select: [XYZ999]\n", ("XYZ999",)),
], ids=["top-key", "nested-key", "severity-value", "setting-key", "rule-code", "range", "not-mapping", "select"])
def test_invalid_rules_file_is_a_config_error_naming_file_and_key(tmp_path, write_rules, text, needles):
    rules = write_rules(tmp_path / "mine.yaml", text)
    with pytest.raises(sftgate.ConfigError) as err:
        sftgate.load_profile(rules_file=rules)
    message = str(err.value)
    assert "mine.yaml" in message
    for needle in needles:
        assert needle in message
    assert "\n" not in message


def test_empty_rules_file_is_the_profile(tmp_path, write_rules):
    rules = write_rules(tmp_path / "empty.yaml", "")
    assert sftgate.load_profile(rules_file=rules).data == sftgate.load_profile().data


# --- overrides change the run --------------------------------------------------------------------

def test_severity_and_action_override(tmp_path, records, write_jsonl, write_rules):
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(0), records.ends_with_user(1)])
    plain = sftgate.check(path, workers=1)
    assert plain.exit_code == 0
    assert [f.severity for f in plain.findings if f.code == "STR004"] == [Severity.WARNING]

    rules = write_rules(tmp_path / "strict.yaml", "rules:\n  STR004: {severity: error, action: drop}\n")
    strict = sftgate.check(path, rules=rules, workers=1)
    assert [f.severity for f in strict.findings if f.code == "STR004"] == [Severity.ERROR]
    assert [r.severity for r in strict.rules if r.code == "STR004"] == [Severity.ERROR]
    assert strict.profile["rules"]["STR004"] == {"severity": "error", "action": "drop", "enabled": True}
    assert sftgate.load_profile(rules_file=rules).rules["STR004"].action is Action.DROP
    assert strict.exit_code == 1
    assert strict.to_dict()["inputs"][0]["accounting"] == {"valid": 1, "invalid_record": 1}


def test_downgrading_an_error_lets_the_gate_pass(tmp_path, records, write_jsonl, write_rules):
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(0), records.model_twice(1)])
    rules = write_rules(tmp_path / "lenient.yaml", "rules:\n  STR002: {severity: info}\n")
    report = sftgate.check(path, rules=rules, workers=1)
    assert [(f.code, f.severity) for f in report.findings if f.line == 2] == [("STR002", Severity.INFO)]
    assert report.exit_code == 0
    assert report.to_dict()["inputs"][0]["accounting"] == {"valid": 2}


def test_disabling_a_rule(tmp_path, records, write_jsonl, write_rules):
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(0), records.ends_with_user(1)])
    rules = write_rules(tmp_path / "off.yaml", "rules:\n  STR004: {enabled: false}\n")
    report = sftgate.check(path, rules=rules, workers=1)
    assert "STR004" not in report.counts_by_code()
    assert report.profile["rules"]["STR004"]["enabled"] is False
    assert "STR004" in sftgate.check(path, workers=1).counts_by_code()


def test_select_names_a_disabled_rule_back_on(tmp_path, records, write_jsonl, write_rules):
    path = write_jsonl(tmp_path / "t.jsonl", [records.ends_with_user(1)])
    rules = write_rules(tmp_path / "off.yaml", "rules:\n  STR004: {enabled: false}\n")
    report = sftgate.check(path, rules=rules, select=["STR004"], workers=1)
    assert set(report.counts_by_code()) == {"STR004"}


def test_ignore_in_rules_file_and_argument_add_up(tmp_path, records, write_jsonl, write_rules):
    path = write_jsonl(tmp_path / "t.jsonl", [records.ends_with_user(0), records.model_twice(1), b""])
    rules = write_rules(tmp_path / "ign.yaml", "ignore: [FMT]\n")
    report = sftgate.check(path, rules=rules, ignore=["STR004"], workers=1)
    assert "STR002" in report.counts_by_code()
    assert not {c for c in report.counts_by_code() if c.startswith("FMT") or c == "STR004"}

def test_select_and_ignore_take_a_comma_separated_string_as_the_cli_does():
    from sftgate.config import load_profile

    as_text = load_profile(select="dup, STR", ignore="STR004")
    assert as_text.selected == load_profile(select=["DUP", "STR"], ignore=["STR004"]).selected
    assert "DUP001" in as_text.selected and "STR004" not in as_text.selected and "TOK001" not in as_text.selected



# --- the gate ------------------------------------------------------------------------------------

def test_fail_on_warning_fails_a_warning_only_file(tmp_path, records, write_jsonl, write_rules, run_cli):
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(i) for i in range(5)] + [records.ends_with_user(5)])
    rules = write_rules(tmp_path / "gate.yaml", "gate: {fail_on: warning}\nlimits: {min_recommended_examples: 1}\n")
    assert run_cli("check", path).returncode == 0
    result = run_cli("check", path, "--rules", rules)
    assert result.returncode == 1, result.stdout
    assert "1 of 6 lines" in result.stdout
    report = sftgate.check(path, rules=rules, workers=1)
    assert (report.gate.failing_lines, report.gate.fail_on) == (1, Severity.WARNING)


def test_fail_on_warning_counts_whole_file_warnings(tmp_path, records, write_jsonl, write_rules):
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(i) for i in range(5)])  # LIM004: under 100
    rules = write_rules(tmp_path / "gate.yaml", "gate: {fail_on: warning}\n")
    report = sftgate.check(path, rules=rules, workers=1)
    assert not report.passed and report.gate.file_findings == 1


@pytest.mark.parametrize("bad, passed", [(0, True), (1, True), (5, True), (6, False), (10, False)])
def test_max_error_fraction(tmp_path, records, write_jsonl, write_rules, run_cli, bad, passed):
    rows = [records.model_twice(i) if i < bad else records.good(i) for i in range(10)]
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    rules = write_rules(tmp_path / "gate.yaml", "gate: {max_error_fraction: 0.5}\n")
    report = sftgate.check(path, rules=rules, workers=1)
    assert report.passed is passed
    assert report.gate.failing_lines == bad and report.gate.lines == 10
    if bad in (1, 6):
        assert run_cli("check", path, "--rules", rules).returncode == (0 if passed else 1)


def test_a_line_with_several_errors_fails_once(tmp_path, records, write_jsonl):
    obj = records.model_twice(0)
    obj["contents"][0]["role"] = "assistant"
    obj["contents"][1]["parts"][0]["text"] = " "
    path = write_jsonl(tmp_path / "t.jsonl", [obj, records.good(1)])
    report = sftgate.check(path, workers=1)
    assert len({f.code for f in report.findings if f.line == 1 and f.severity is Severity.ERROR}) >= 2
    assert report.gate.failing_lines == 1
