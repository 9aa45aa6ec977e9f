"""Baselines (--write-baseline / --baseline), waivers in the profile, `sftgate report`, -q and -v."""

from __future__ import annotations

import json

import pytest

import sftgate
from sftgate.baseline import Baseline, Waiver, fingerprint, same_source
from sftgate.errors import ConfigError, UsageError
from sftgate.model import Finding, Severity


def _dataset(tmp_path, records, write_jsonl):
    rows = [records.good(i) for i in range(7)]
    rows[3] = records.model_twice(3)  # STR002 on line 4
    rows.append(records.number_text(2))  # SCH001 on line 8
    rows.append(records.good(0))  # DUP001 on line 9
    return write_jsonl(tmp_path / "train.jsonl", rows)


def test_baseline_accepts_old_findings_and_fails_on_new_ones(tmp_path, records, write_jsonl, run_cli):
    train = _dataset(tmp_path, records, write_jsonl)
    assert run_cli("check", train, cwd=tmp_path).returncode == 1

    written = run_cli("check", "train.jsonl", "--write-baseline", "baseline.json", "-q", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert "wrote baseline.json" in written.stderr
    data = json.loads((tmp_path / "baseline.json").read_text())
    assert data["sftgate_baseline"] == 1
    assert {(e["code"], e["line"]) for e in data["findings"]} >= {("STR002", 4), ("SCH001", 8), ("DUP001", 9)}
    assert all(e["source"] == "train.jsonl" for e in data["findings"])

    passed = run_cli("check", "train.jsonl", "--baseline", "baseline.json", "--format", "json", cwd=tmp_path)
    assert passed.returncode == 0, passed.stdout[-2000:]
    report = json.loads(passed.stdout)
    assert report["findings"] == []
    assert report["suppressed"]["baseline"]["findings"] == len(data["findings"])
    assert report["suppressed"]["by_code"]["STR002"] == 1

    # Lines inserted above the old problems move them; a new problem is the only one reported.
    lines = train.read_bytes().splitlines(keepends=True)
    new = json.dumps(records.ends_with_user(2) | {"contents": [{"role": "user", "parts": [{"text": "?"}]}]})
    train.write_bytes(b"".join([json.dumps(records.good(5)).encode() + b"\n", new.encode() + b"\n", *lines]))
    again = run_cli("check", "train.jsonl", "--baseline", "baseline.json", "--format", "json", cwd=tmp_path)
    assert again.returncode == 1
    found = json.loads(again.stdout)["findings"]
    assert {(f["code"], f["line"]) for f in found if f["severity"] == "error"} == {("STR003", 2)}
    # The moved STR002 (now line 6) is still recognised by its content.
    assert not any(f["code"] == "STR002" for f in found)


def test_baseline_is_deterministic_and_ordered(tmp_path, records, write_jsonl, run_cli):
    _dataset(tmp_path, records, write_jsonl)
    for name, workers in (("one.json", "1"), ("two.json", "2")):
        assert run_cli("check", "train.jsonl", "--workers", workers, "--write-baseline", name, "-q",
                       cwd=tmp_path).returncode == 0
    assert (tmp_path / "one.json").read_bytes() == (tmp_path / "two.json").read_bytes()


def test_baseline_records_findings_beyond_the_report_cap(tmp_path, records, write_jsonl, write_rules):
    rows = [records.model_twice(i) for i in range(30)]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    rules = write_rules(tmp_path / "cap.yaml", "report:\n  max_findings_per_rule: 5\nignore: [DUP]\n")
    from sftgate.engine.run import execute

    execution = execute(train, rules=rules, all_findings=True, workers=1)
    assert execution.report.counts_by_code()["STR002"] == 30
    assert sum(f.code == "STR002" for f in execution.report.findings) == 5
    assert sum(f.code == "STR002" for f in execution.findings) == 30
    assert execution.report.profile["settings"]["report"]["max_findings_per_rule"] == 5


def test_the_baseline_file_and_its_errors(tmp_path):
    assert fingerprint(b"abc\r") == fingerprint(b"abc") != fingerprint(b"abd")
    with pytest.raises(UsageError, match="no such baseline"):
        Baseline.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(UsageError, match="not a sftgate baseline"):
        Baseline.load(bad)
    bad.write_text("{")
    with pytest.raises(UsageError, match="invalid JSON"):
        Baseline.load(bad)
    bad.write_text('{"sftgate_baseline": 1, "findings": [{"line": 3}]}')
    with pytest.raises(UsageError, match=r"findings\[0\] needs a code and a source"):
        Baseline.load(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"sftgate_baseline": 1, "findings": [
        {"code": "STR002", "source": "t.jsonl", "line": 9, "fingerprint": "00ff00ff00ff00ff"},
        {"code": "LIM004", "source": "t.jsonl", "line": None, "fingerprint": None},
    ]}))
    baseline = Baseline.load(good)
    err = Severity.ERROR
    assert Finding("STR002", err, "m", "t.jsonl", 1, fingerprint="00ff00ff00ff00ff") in baseline
    assert Finding("STR002", err, "m", "u.jsonl", 1, fingerprint="00ff00ff00ff00ff") not in baseline
    assert Finding("STR003", err, "m", "t.jsonl", 1, fingerprint="00ff00ff00ff00ff") not in baseline
    assert Finding("LIM004", err, "other words", "t.jsonl") in baseline
    assert Finding("LIM004", err, "m", "t.jsonl", 2) not in baseline


def test_write_baseline_with_baseline_is_a_usage_error(tmp_path, clean_file, run_cli, assert_usage_error):
    result = run_cli("check", clean_file, "--baseline", "a.json", "--write-baseline", "b.json", cwd=tmp_path)
    assert_usage_error(result, "--write-baseline", "--baseline")
    missing = run_cli("check", clean_file, "--baseline", "nope.json", cwd=tmp_path)
    assert_usage_error(missing, "nope.json", "no such baseline")


def test_waivers_in_the_profile(tmp_path, records, write_jsonl, write_rules):
    train = _dataset(tmp_path, records, write_jsonl)
    rules = write_rules(tmp_path / "waive.yaml", """
ignore:
  - {code: STR002, source: train.jsonl, lines: [4], reason: checked by hand}
  - {code: SCH, source: "*.jsonl"}
  - {code: DUP001, source: other.jsonl}
""")
    report = sftgate.check(train, rules=rules, workers=1)
    codes = report.counts_by_code()
    assert "STR002" not in codes and "SCH001" not in codes
    assert codes["DUP001"] == 1  # the waiver names another file
    assert report.passed  # what failed the gate is waived; DUP001 is a warning
    waived = report.suppressed["waivers"]
    assert waived["by_code"] == {"SCH001": 1, "STR002": 1}
    assert waived["entries"][0] == {"code": "STR002", "source": "train.jsonl", "lines": [4],
                                    "reason": "checked by hand"}
    assert report.suppressed["baseline"] is None

    other_line = write_rules(tmp_path / "line.yaml", "ignore:\n  - {code: STR002, lines: [5]}\n")
    assert sftgate.check(train, rules=other_line, workers=1).counts_by_code()["STR002"] == 1


def test_waivers_apply_to_prepare(tmp_path, records, write_jsonl, write_rules):
    train = _dataset(tmp_path, records, write_jsonl)
    rules = write_rules(tmp_path / "waive.yaml", "ignore:\n  - {code: DUP001}\n")
    done = sftgate.prepare(train, out=tmp_path / "out", rules=rules, workers=1)
    kept = (tmp_path / "out" / "train.jsonl").read_bytes().count(b"\n")
    assert kept == 7  # 9 lines: STR002 and SCH001 quarantined, the waived duplicate kept
    assert done.manifest["counts"]["quarantined"] == 2


def test_waiver_errors(tmp_path, clean_file, write_rules):
    unknown = write_rules(tmp_path / "unknown.yaml", "ignore:\n  - {code: XYZ001}\n")
    with pytest.raises(ConfigError, match="names no rule"):
        sftgate.check(clean_file, rules=unknown)
    misspelt = write_rules(tmp_path / "misspelt.yaml", "ignore:\n  - {code: STR002, line: 3}\n")
    with pytest.raises(ConfigError, match="ignore"):
        sftgate.check(clean_file, rules=misspelt)


def test_waiver_source_matching():
    assert same_source("train.jsonl", "data/train.jsonl")
    assert same_source("data/*.jsonl", "data/train.jsonl")
    assert same_source("*.jsonl", "a/b/train.jsonl")
    assert not same_source("rain.jsonl", "data/train.jsonl")
    assert not same_source("train.jsonl", "data/train.jsonl.gz")
    waiver = Waiver("DUP", "train.jsonl", frozenset({3}), None)
    assert waiver.matches(Finding("DUP002", Severity.WARNING, "m", "x/train.jsonl", 3))
    assert not waiver.matches(Finding("DUP002", Severity.WARNING, "m", "x/train.jsonl", 4))
    assert not waiver.matches(Finding("STR002", Severity.WARNING, "m", "x/train.jsonl", 3))


def test_report_command_rerenders_a_saved_report(tmp_path, records, write_jsonl, run_cli, assert_usage_error):
    _dataset(tmp_path, records, write_jsonl)
    first = run_cli("check", "train.jsonl", "--report-json", "r.json", "--no-hints", cwd=tmp_path)
    assert first.returncode == 1
    again = run_cli("report", "r.json", "--no-hints", cwd=tmp_path)
    assert again.returncode == 1
    assert again.stdout == first.stdout
    as_json = run_cli("report", "r.json", "--format", "json", cwd=tmp_path)
    assert json.loads(as_json.stdout) == json.loads((tmp_path / "r.json").read_text())
    quiet = run_cli("report", "r.json", "-q", cwd=tmp_path)
    assert quiet.stdout.startswith("Gate FAILED") and quiet.stdout.count("\n") == 1

    assert_usage_error(run_cli("report", "missing.json", cwd=tmp_path), "missing.json", "no such report")
    (tmp_path / "list.json").write_text("[1]")
    assert_usage_error(run_cli("report", "list.json", cwd=tmp_path), "not a sftgate JSON report")
    (tmp_path / "old.json").write_text('{"report_version": "0.9"}')
    assert_usage_error(run_cli("report", "old.json", cwd=tmp_path), "report_version 0.9")


def test_report_command_reads_a_prepared_directory(tmp_path, clean_file, run_cli):
    assert run_cli("prepare", clean_file, "--out", "out", "-q", cwd=tmp_path).returncode == 0
    result = run_cli("report", "out", "-q", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("Gate PASSED")


def test_quiet_and_verbose(tmp_path, clean_file, run_cli):
    quiet = run_cli("check", clean_file, "-q", cwd=tmp_path)
    assert quiet.returncode == 0
    assert quiet.stdout.startswith("Gate PASSED") and quiet.stdout.count("\n") == 1
    assert quiet.stderr == ""
    verbose = run_cli("check", clean_file, "-v", cwd=tmp_path)
    assert f"sftgate: check {clean_file}:" in verbose.stderr and "lines/s" in verbose.stderr
    assert "sftgate: duplicates" in verbose.stderr
    plain = run_cli("check", clean_file, cwd=tmp_path)  # not a terminal: no progress output at all
    assert plain.stderr == ""


def _stderr_on_a_terminal(args: list[str], cwd, env: dict[str, str]) -> tuple[int, bytes]:
    """Run the CLI with stderr on a pseudo-terminal (stdout piped); (exit code, terminal bytes)."""
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "sftgate", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=slave, env={**os.environ, "TERM": "xterm", **env})
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return proc.wait(timeout=60), seen


def test_progress_bar_on_a_terminal_only_outside_ci(tmp_path, clean_file):
    name = clean_file.name  # relative: a long path would be shortened to fit the terminal
    code, seen = _stderr_on_a_terminal(["check", name], tmp_path, {"CI": ""})
    assert code == 0
    assert f"check {name}".encode() in seen and b"lines" in seen
    code, seen = _stderr_on_a_terminal(["check", name], tmp_path, {"CI": "true"})
    assert code == 0 and seen == b""
    code, seen = _stderr_on_a_terminal(["check", name, "--quiet"], tmp_path, {"CI": ""})
    assert code == 0 and seen == b""


def test_the_crc32c_half_of_a_fingerprint():
    """What prepare's writers check a kept line against: the fingerprint's first half, with the
    same rule for a trailing CR."""
    from sftgate.baseline import crc32c_halves, fingerprint, fingerprint_crc32c

    lines = [b'{"contents": []}', b'{"contents": []}\r', b"", b"\xff\x00 not json"]
    marks = b"".join(fingerprint(line) for line in lines)
    assert crc32c_halves(marks) == [fingerprint_crc32c(line) for line in lines]
    assert [int.from_bytes(fingerprint(line)[:4], "big") for line in lines] == crc32c_halves(marks)
    assert fingerprint_crc32c(lines[0]) == fingerprint_crc32c(lines[1]) != fingerprint_crc32c(b'{"contents":[]}')
