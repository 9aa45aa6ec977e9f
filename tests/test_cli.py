"""The `sftgate` command, run as a user runs it: a subprocess, exit codes, stdout and stderr."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys

import pytest

from sftgate.rules import REGISTRY

ANSI = "\x1b["
# path:line[:column-or-pointer] CODE [severity] message   (path alone for whole-file findings)
FINDING_LINE = re.compile(r"^(?P<path>\S+?)(?::(?P<line>\d+)(?::(?P<where>\S+))?)? "
                          r"(?P<code>[A-Z]{3,4}\d{3}) \[(?P<severity>error|warning|info)\] (?P<message>.+)$")


def _finding_lines(stdout: str) -> list[re.Match[str]]:
    return [m for line in stdout.splitlines() if (m := FINDING_LINE.match(line))]


@pytest.fixture
def mixed_file(tmp_path, records, write_jsonl):
    """Line 2: STR002 error; line 3: SCH001 error; line 4: blank (FMT005); line 5: STR004 warning."""
    return write_jsonl(tmp_path / "train.jsonl", [
        records.good(0), records.model_twice(1), records.number_text(2), b"", records.ends_with_user(3),
        records.good(4),
    ])


def _codes_in_json(stdout: str) -> set[str]:
    data = json.loads(stdout)
    return {f["code"] for f in data["findings"]} | {r["code"] for r in data["rules"]}


# --- exit codes --------------------------------------------------------------------------------

def test_clean_oasst_sample_exits_0(oasst, run_cli):
    result = run_cli("check", oasst / "train.jsonl", "--validation", oasst / "validation.jsonl")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert "Gate PASSED" in result.stdout
    assert not [m for m in _finding_lines(result.stdout) if m["severity"] == "error"]


def test_file_with_errors_exits_1_and_prints_linter_lines(tmp_path, records, write_jsonl, run_cli):
    write_jsonl(tmp_path / "train.jsonl", [records.good(0), records.good(1), records.model_twice(2)])
    result = run_cli("check", "train.jsonl", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert 'train.jsonl:3:/contents/2 STR002 [error] turn 3 has role "model" twice in a row' in lines
    assert "Gate FAILED" in result.stdout


def test_every_finding_line_has_the_linter_format(mixed_file, run_cli):
    result = run_cli("check", mixed_file.name, "--no-hints", cwd=mixed_file.parent)
    found = _finding_lines(result.stdout)
    by_code = {m["code"]: m for m in found}
    assert {"STR002", "SCH001", "FMT005", "STR004"} <= by_code.keys()
    assert (by_code["STR002"]["line"], by_code["STR002"]["where"]) == ("2", "/contents/2")
    assert (by_code["SCH001"]["line"], by_code["SCH001"]["where"]) == ("3", "/contents/1/parts/0/text")
    assert (by_code["FMT005"]["line"], by_code["FMT005"]["severity"]) == ("4", "warning")
    assert (by_code["STR004"]["line"], by_code["STR004"]["severity"]) == ("5", "warning")
    assert all(m["path"] == "train.jsonl" for m in found)


def test_column_is_printed_for_parse_errors(tmp_path, records, write_jsonl, run_cli):
    line = records.line(records.good(0))
    write_jsonl(tmp_path / "train.jsonl", [records.good(1), line[:30] + b"\x00" + line[30:]])
    result = run_cli("check", "train.jsonl", cwd=tmp_path)
    assert result.returncode == 1
    assert "train.jsonl:2:31 FMT009 [error] NUL byte at column 31" in result.stdout.splitlines()


# --- exit code 2: the call is wrong, not the data ------------------------------------------------

def test_missing_file_exits_2(tmp_path, run_cli, assert_usage_error):
    assert_usage_error(run_cli("check", "nope.jsonl", cwd=tmp_path), "nope.jsonl", "no such file")


def test_missing_validation_file_exits_2(clean_file, run_cli, assert_usage_error):
    result = run_cli("check", clean_file.name, "--validation", "val.jsonl", cwd=clean_file.parent)
    assert_usage_error(result, "val.jsonl")


def test_directory_exits_2(tmp_path, run_cli, assert_usage_error):
    (tmp_path / "data").mkdir()
    assert_usage_error(run_cli("check", "data", cwd=tmp_path), "data", "directory")


def test_permission_denied_exits_2(clean_file, run_cli, assert_usage_error):
    clean_file.chmod(0)
    try:
        if os.access(clean_file, os.R_OK):
            pytest.skip("chmod 000 does not stop this user from reading (running as root?)")
        assert_usage_error(run_cli("check", clean_file.name, cwd=clean_file.parent), "permission denied")
    finally:
        clean_file.chmod(0o644)


def test_unknown_profile_exits_2(clean_file, run_cli, assert_usage_error):
    line = assert_usage_error(run_cli("check", clean_file, "--profile", "gemini-2.5-flashh"), "gemini-2.5-flashh")
    assert "gemini-2.5-flash" in line.replace("gemini-2.5-flashh", "")  # suggests or lists the real one


def test_rules_file_with_typo_key_exits_2_and_suggests(clean_file, run_cli, assert_usage_error, write_rules):
    rules = write_rules(clean_file.parent / "my-rules.yaml", "limts:\n  max_tokens_per_example: 8000\n")
    result = run_cli("check", clean_file, "--rules", rules)
    assert_usage_error(result, "my-rules.yaml", "limts", "limits")


def test_rules_file_with_nested_typo_key_exits_2_and_suggests(clean_file, run_cli, assert_usage_error, write_rules):
    rules = write_rules(clean_file.parent / "my-rules.yaml", "gate:\n  fail_onn: warning\n")
    assert_usage_error(run_cli("check", clean_file, "--rules", rules), "my-rules.yaml", "fail_onn", "fail_on")


def test_rules_file_with_unknown_rule_code_exits_2_and_suggests(clean_file, run_cli, assert_usage_error,
                                                                write_rules):
    rules = write_rules(clean_file.parent / "my-rules.yaml", "rules:\n  STR099: {severity: warning}\n")
    line = assert_usage_error(run_cli("check", clean_file, "--rules", rules), "my-rules.yaml", "STR099")
    suggestion = re.search(r"did you mean '?([A-Z]{3,4}\d{3})", line)
    assert suggestion and suggestion[1] in REGISTRY, line


def test_rules_file_with_malformed_rule_code_suggests_a_near_code(clean_file, run_cli, assert_usage_error,
                                                                  write_rules):
    rules = write_rules(clean_file.parent / "my-rules.yaml", "rules:\n  STR02: {severity: warning}\n")
    line = assert_usage_error(run_cli("check", clean_file, "--rules", rules), "my-rules.yaml", "STR02")
    suggestion = re.search(r"did you mean '?([A-Z]{3,4}\d{3})", line)
    assert suggestion and suggestion[1].startswith("STR0") and suggestion[1] in REGISTRY, line


def test_rules_file_missing_exits_2(clean_file, run_cli, assert_usage_error):
    assert_usage_error(run_cli("check", clean_file, "--rules", clean_file.parent / "absent.yaml"), "absent.yaml")


def test_select_unknown_code_exits_2(clean_file, run_cli, assert_usage_error):
    assert_usage_error(run_cli("check", clean_file, "--select", "XYZ999"), "XYZ999")


def test_ignore_unknown_code_exits_2(clean_file, run_cli, assert_usage_error):
    assert_usage_error(run_cli("check", clean_file, "--ignore", "STR004,QQQ"), "QQQ")


def test_select_with_empty_item_exits_2(clean_file, run_cli, assert_usage_error):
    assert_usage_error(run_cli("check", clean_file, "--select", "STR,,FMT"))


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_bad_workers_exits_2(clean_file, run_cli, assert_usage_error, value):
    assert_usage_error(run_cli("check", clean_file, "--workers", value), value)


def test_unknown_option_exits_2(clean_file, run_cli, assert_usage_error):
    assert_usage_error(run_cli("check", clean_file, "--frobnicate"), "--frobnicate")


def test_report_json_unwritable_exits_2(clean_file, run_cli, assert_usage_error):
    target = clean_file.parent / "no-such-dir" / "report.json"
    assert_usage_error(run_cli("check", clean_file, "--report-json", target), "report.json")


# --- --select / --ignore -------------------------------------------------------------------------

def test_select_prefix_keeps_only_that_family(mixed_file, run_cli):
    result = run_cli("check", mixed_file, "--select", "STR", "--format", "json")
    codes = _codes_in_json(result.stdout)
    assert codes == {"STR002", "STR004"}
    assert result.returncode == 1


def test_select_lower_case_and_exact_code(mixed_file, run_cli):
    result = run_cli("check", mixed_file, "--select", "str004", "--format", "json")
    assert _codes_in_json(result.stdout) == {"STR004"}
    assert result.returncode == 0  # only a warning is left


def test_ignore_codes_and_prefixes(mixed_file, run_cli):
    result = run_cli("check", mixed_file, "--ignore", "STR004,FMT", "--format", "json")
    codes = _codes_in_json(result.stdout)
    assert {"STR002", "SCH001"} <= codes
    assert "STR004" not in codes
    assert not {c for c in codes if c.startswith("FMT")}


def test_ignoring_every_error_rule_passes_the_gate(mixed_file, run_cli):
    result = run_cli("check", mixed_file, "--ignore", "STR002,SCH001")
    assert result.returncode == 0, result.stdout


# --- output formats ------------------------------------------------------------------------------

def test_format_json_validates_and_report_json_writes_the_same(mixed_file, run_cli, validate_report):
    out = mixed_file.parent / "report.json"
    result = run_cli("check", mixed_file, "--format", "json", "--report-json", out)
    assert result.returncode == 1
    printed = json.loads(result.stdout)
    validate_report(printed)
    assert json.loads(out.read_text(encoding="utf-8")) == printed
    assert printed["gate"]["passed"] is False
    assert {(f["code"], f["line"]) for f in printed["findings"]} >= {("STR002", 2), ("SCH001", 3), ("FMT005", 4)}


def test_report_json_with_text_output(mixed_file, run_cli, validate_report):
    out = mixed_file.parent / "report.json"
    result = run_cli("check", mixed_file, "--report-json", out)
    assert "Gate FAILED" in result.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    validate_report(data)
    assert data["inputs"][0]["lines"] == 6
    assert not list(mixed_file.parent.glob("*.tmp"))


def test_hints_are_printed_unless_no_hints(mixed_file, run_cli):
    with_hints = run_cli("check", mixed_file).stdout
    without = run_cli("check", mixed_file, "--no-hints").stdout
    assert "    hint: user and model turns must alternate" in with_hints.splitlines()
    assert "hint:" not in without
    assert _finding_lines(with_hints) and [m[0] for m in _finding_lines(with_hints)] == \
        [m[0] for m in _finding_lines(without)]


def test_no_ansi_when_stdout_is_not_a_tty(mixed_file, run_cli):
    assert ANSI not in run_cli("check", mixed_file).stdout
    assert ANSI not in run_cli("check", mixed_file, "--color", "auto").stdout


def test_color_always_adds_ansi(mixed_file, run_cli):
    coloured = run_cli("check", mixed_file, "--color", "always").stdout
    assert ANSI in coloured
    plain = run_cli("check", mixed_file).stdout
    assert _strip_duration(re.sub(r"\x1b\[[0-9;]*m", "", coloured)) == _strip_duration(plain)


def _strip_duration(text: str) -> str:
    return re.sub(r"\(\d+\.\d\ds\)", "(…s)", text)


def _run_on_tty(args: list[str], env: dict[str, str]) -> str:
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    try:
        full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")} | env
        proc = subprocess.run([sys.executable, "-m", "sftgate", *args], stdout=follower,
                              stderr=subprocess.PIPE, env=full_env, timeout=120)
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO once the follower side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.returncode in (0, 1), proc.stderr
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_color_on_a_tty_unless_no_color_or_never(mixed_file):
    assert ANSI in _run_on_tty(["check", str(mixed_file)], {})
    assert ANSI not in _run_on_tty(["check", str(mixed_file)], {"NO_COLOR": "1"})
    assert ANSI not in _run_on_tty(["check", str(mixed_file), "--color", "never"], {})


# --- bad input through the command: findings, never a traceback ----------------------------------

def _bad_inputs(tmp_path, records, write_jsonl):
    good = records.line(records.good(0))
    gz = tmp_path / "cut.jsonl.gz"
    whole = gzip.compress(b"\n".join(records.line(records.long_text(i, 400)) for i in range(200)) + b"\n")
    gz.write_bytes(whole[: len(whole) // 2])
    cases = {
        "nul": write_jsonl(tmp_path / "nul.jsonl", [good, good[:10] + b"\x00" + good[10:]]),
        "utf8": write_jsonl(tmp_path / "utf8.jsonl", [good, good.replace(b"France", b"Fr\xe9nce")
                                                      .replace(b"401k", b"4\xff1k")]),
        "repr": write_jsonl(tmp_path / "repr.jsonl", [good, repr(records.good(1))]),
        "deep": write_jsonl(tmp_path / "deep.jsonl", [good, b'{"a":' * 5000 + b"1" + b"}" * 5000]),
        "array": tmp_path / "array.json",
        "empty": write_jsonl(tmp_path / "empty.jsonl", []),
        "gzip-cut": gz,
        "binary": tmp_path / "binary.jsonl",
    }
    cases["array"].write_text(json.dumps([records.good(i) for i in range(3)], indent=2))
    cases["binary"].write_bytes(bytes(range(256)) * 40)
    return cases


@pytest.mark.parametrize("case", ["nul", "utf8", "repr", "deep", "array", "empty", "gzip-cut", "binary"])
def test_bad_input_is_a_finding_not_a_crash(tmp_path, records, write_jsonl, run_cli, case):
    path = _bad_inputs(tmp_path, records, write_jsonl)[case]
    result = run_cli("check", path.name, cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert result.stderr == ""
    assert result.returncode == 1, result.stdout
    assert "Gate FAILED" in result.stdout


# --- other commands ------------------------------------------------------------------------------

def test_rules_lists_every_code(run_cli):
    result = run_cli("rules")
    assert result.returncode == 0
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert listed == set(REGISTRY)


def test_rules_code_prints_its_documentation(run_cli):
    result = run_cli("rules", "STR002")
    assert result.returncode == 0
    assert result.stdout.startswith("STR002 consecutive-same-role\n")
    assert "## What it does" in result.stdout and "## Why is this bad?" in result.stdout
    by_name = run_cli("rules", "consecutive-same-role")
    assert by_name.stdout == result.stdout


def test_rules_unknown_code_exits_2_with_suggestion(run_cli, assert_usage_error):
    assert_usage_error(run_cli("rules", "STR0022"), "STR0022", "did you mean")


def test_profiles_lists_the_builtins_and_marks_the_default(run_cli):
    result = run_cli("profiles")
    assert result.returncode == 0
    names = [line.split(":")[0] for line in result.stdout.splitlines()]
    assert "gemini-2.5-flash (default)" in names
    assert "gemini-1.5-flash-002" in names
    assert "base" not in names


def test_version(run_cli):
    import sftgate

    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"sftgate {sftgate.__version__}"
