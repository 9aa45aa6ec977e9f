"""The leakage rules against the DEV benchmark's labelled leaks (shared/data/bench/leakage).

The floors are the issue's; benchmarks/bench_leak.py --quality prints the same scores in full.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sftgate

LEAKAGE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bench" / "leakage"
RECALL_FLOORS = {"exact": 0.95, "near": 0.95, "context_shared": 0.9}
PRECISION_FLOOR = 0.98


def _jsonl(path: Path) -> list[dict]:
    with path.open("rb") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_leakage_benchmark_floors(tmp_path, write_rules):
    if not (LEAKAGE / "leakage.labels.jsonl").is_file():
        pytest.skip(f"the DEV leakage benchmark is not present at {LEAKAGE}")
    rules = write_rules(tmp_path / "rules.yaml", "leak:\n  max_listed: 100000\n")
    report = sftgate.check(str(LEAKAGE / "train.jsonl"), validation=str(LEAKAGE / "validation.jsonl"),
                           rules=str(rules), workers=1)

    side = next(s for s in report.leakage["sets"] if s["split"] == "validation")
    assert len(side["listed"]) == side["leaking_records"], "leaking records were capped"
    flagged = {int(item["record"].rsplit(":", 1)[1]) for item in side["listed"]}
    labels = {lab["line"]: lab for lab in _jsonl(LEAKAGE / "leakage.labels.jsonl")}

    recall = {}
    for kind in RECALL_FLOORS:
        lines = [n for n, lab in labels.items() if lab["kind"] == kind]
        assert lines, f"no labelled {kind} leaks"
        recall[kind] = sum(n in flagged for n in lines) / len(lines)
    precision = sum(n in labels for n in flagged) / len(flagged) if flagged else 0.0

    for kind, floor in RECALL_FLOORS.items():
        assert recall[kind] >= floor, (kind, recall, precision)
    assert precision >= PRECISION_FLOOR, (recall, precision, sorted(flagged - set(labels)))
