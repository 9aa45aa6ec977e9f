"""Findings as columns (`FindingColumns`, DUP001 and DUP002): a run counts, caps, waives and
quarantines them exactly as it does the same findings one by one."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sftgate.baseline import Baseline
from sftgate.config import DEFAULT_PROFILE, load_profile, with_baseline
from sftgate.engine.run import _FileRun, _order
from sftgate.model import Finding, FindingColumns, Severity

N = 400


def _run(profile) -> _FileRun:
    return _FileRun(source=SimpleNamespace(name="t.jsonl"), split="train", name="t.jsonl", profile=profile,
                    stats=None, summary=None, lines=np.arange(1, N + 1, dtype=np.int64),  # type: ignore[arg-type]
                    keep=profile.max_findings_per_rule, reasons=[],
                    fingerprints=np.random.default_rng(1).bytes(8 * N))


def _columns(code: str, message: str, seed: int, count: int) -> FindingColumns:
    rng = np.random.default_rng(seed)
    lines = rng.permutation(np.arange(1, N + 1))[:count]
    return FindingColumns(code, Severity.WARNING, "t.jsonl", message, lines, rng.integers(1, N + 1, count),
                          rng.uniform(0.85, 1.0, count))


def _reasons(run: _FileRun) -> list[tuple]:
    """The run's quarantine reasons in the order prepare gives them: by line, then as found."""
    rows = []
    for group in run.reasons or ():
        rows += [row[:1] + row[2:] for row in group.reasons(0)] if isinstance(group, FindingColumns) else group
    return sorted(rows, key=lambda row: row[0])


@pytest.mark.parametrize(("rules", "baseline", "judged"), [
    ("report:\n  max_findings_per_rule: 3\n", None, False),  # capped
    ("gate:\n  fail_on: warning\nreport:\n  max_findings_per_rule: 1000\n", None, False),  # all listed, failing
    ("ignore:\n  - {code: DUP002, lines: [5, 9, 200]}\n", None, True),  # waivers judge one at a time
    ("ignore:\n  - {code: STR002}\n", "LEAK001", False),  # ... unless none may leave a DUP finding out
    ("report:\n  max_findings_per_rule: 5\n", "DUP002", True),  # the baseline holds DUP002 findings
])
def test_columns_count_cap_and_quarantine_like_the_same_findings(tmp_path, monkeypatch, rules, baseline, judged):
    path = tmp_path / "rules.yaml"
    path.write_text(rules, encoding="utf-8")
    profile = load_profile(DEFAULT_PROFILE, rules_file=path)
    near = _columns("DUP002", "near-duplicate of line {line} (similarity {score:.2f})", 2, 300)
    exact = _columns("DUP001", "exact duplicate of line {line}", 3, 50)
    other = Finding("DUP004", Severity.INFO, "this prompt appears 2 times (also line 7)", "t.jsonl", 5)
    if baseline is not None:  # a baseline of the records on every third line
        prints = _run(profile).fingerprints
        keys = {(baseline, "t.jsonl", prints[8 * (line - 1):8 * line].hex()) for line in range(1, N + 1, 3)}
        profile = with_baseline(profile, Baseline(path="baseline.json", keys=frozenset(keys)))
    as_columns, one_by_one = _run(profile), _run(profile)
    one_at_a_time = []
    add = _FileRun._add
    monkeypatch.setattr(_FileRun, "_add", lambda self, found: one_at_a_time.extend(
        f.code for f in found if self is as_columns) or add(self, found))
    as_columns.add([other, near, exact])
    one_by_one.add([other, *near, *exact])
    assert ("DUP002" in one_at_a_time) == judged
    if baseline == "DUP002":
        assert as_columns.suppressed["baseline", "DUP002"] > 0
    assert as_columns.counts == one_by_one.counts and as_columns.counts["DUP002"] + \
        as_columns.suppressed["waiver", "DUP002"] + as_columns.suppressed["baseline", "DUP002"] == 300
    assert as_columns.failing == one_by_one.failing
    assert as_columns.suppressed == one_by_one.suppressed
    in_report_order = _order(["t.jsonl"])  # as the report lists them
    assert [f.to_dict() for f in sorted(as_columns.listed(), key=in_report_order)] == \
        [f.to_dict() for f in sorted(one_by_one.listed(), key=in_report_order)]
    assert _reasons(as_columns) == _reasons(one_by_one)
    assert len(_reasons(as_columns)) == as_columns.counts["DUP001"] + as_columns.counts["DUP002"]


def test_a_finding_made_from_columns_reads_as_the_rule_wrote_it():
    found = FindingColumns("DUP002", Severity.WARNING, "t.jsonl", "near-duplicate of line {line} "
                           "(similarity {score:.2f})", np.array([12]), np.array([5]), np.array([0.96154]))
    assert found.finding(0) == Finding("DUP002", Severity.WARNING, "near-duplicate of line 5 (similarity 0.96)",
                                       "t.jsonl", 12, related="t.jsonl:5", similarity=0.9615)
    assert found.reasons(4) == [(12, 4, "DUP002", "near-duplicate of line 5 (similarity 0.96)", None, None,
                                 "t.jsonl:5", 0.9615)]


def test_no_finding_drops_a_line_once_prepare_placed_the_lines(tmp_path):
    run = _run(load_profile(DEFAULT_PROFILE))
    run.planned = True
    run.add([Finding("DUP004", Severity.INFO, "a prompt repeats", "t.jsonl", 5)])  # flags: fine
    with pytest.raises(RuntimeError, match="DUP002 drops lines after prepare placed them"):
        run.add([_columns("DUP002", "near-duplicate of line {line}", 2, 10)])


@pytest.mark.parametrize(("source", "message", "scores"), [
    ("t.jsonl", "near-duplicate of line {line} (similarity {score:.2f})", np.random.default_rng(3).uniform(0, 1, 300)),
    ('dir "q"\\é.jsonl', 'quote " back \\ tab \t {{brace}} é line {line} {score:.3f}',
     np.array([1.0, 0.0, 1e-4, 0.99995, 0.5, 0.123456789])),
    ("t.jsonl", "exact duplicate of line {line}", np.array([np.nan, np.inf, -np.inf, 0.25])),
    ("gs://b/50%_a%20b%%c.jsonl", "near-duplicate of line {line} (similarity {score:.2f}) 100%",
     np.array([0.9, 1.0, -0.0])),
    ("t.jsonl", "exact duplicate of line {line}", np.array([1, 0], dtype=np.int64)),  # floats, as `fields` has
])
def test_reason_arrays_are_the_bytes_orjson_writes_for_each_findings_reason(source, message, scores):
    """The quarantine's one-reason arrays, made in one pass from the escaped template, equal
    orjson's writing of each finding's fields (a non-finite score: null, as orjson writes it)."""
    import orjson

    n = len(scores)
    found = FindingColumns("DUP002", Severity.WARNING, source, message, np.arange(1, n + 1),
                           np.arange(n) * 7 + 2, scores)
    expected = []
    for i in range(n):
        _, text, related, similarity = found.fields(i)
        expected.append(orjson.dumps([{"code": "DUP002", "severity": "error", "message": text, "related": related,
                                       "similarity": similarity}]))
    assert found.reason_arrays("error") == expected
