"""`sftgate prepare`: shards, validation, quarantine, manifest; accounting, determinism, atomicity."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import itertools
import json
import os
from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sftgate
from sftgate.config import load_profile
from sftgate.engine import local
from sftgate.engine.prepare import prepare
from sftgate.errors import ConfigError, SftgateError, UsageError
from sftgate.rules import REGISTRY, RuleContext
from sftgate.rules.structure import InvalidRole, ThoughtPart

REPO = Path(__file__).resolve().parents[1]
MANIFEST_SCHEMA = json.loads((REPO / "schemas" / "manifest.schema.json").read_text())


def _lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert not data or data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def _jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in _lines(path)]


def _manifest(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    jsonschema.validate(manifest, MANIFEST_SCHEMA)
    return manifest


def _messy(records) -> list:
    """One line of each kind the quarantine and the fixes must handle; comments name them."""
    role = records.good(1)
    role["contents"][1]["role"] = "assistant"  # STR001, fixed to "model"
    unknown_role = records.good(2)
    unknown_role["contents"][1]["role"] = "narrator"  # STR001, cannot be fixed
    thought = records.good(3)
    thought["contents"][1]["parts"].insert(0, {"text": "Let me think about it.", "thought": True})  # STR012, fixed
    return [
        b"\xef\xbb\xbf" + records.line(records.good(0)),  # 1 BOM on a good record: kept, BOM gone
        records.good(4),  # 2 kept
        b"",  # 3 blank
        b'{"contents": [',  # 4 FMT001
        b'{"contents": "\xff"}',  # 5 FMT002
        b"[1, 2]",  # 6 FMT003
        records.model_twice(5),  # 7 STR002: dropped
        role,  # 8 fixed
        unknown_role,  # 9 quarantined: the fix fails
        thought,  # 10 fixed
        records.good(4),  # 11 DUP001 of line 2
        records.line(records.good(6)) + b"\r",  # 12 CRLF: kept, CR gone
        {"contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]},
                      {"role": "model", "parts": [{"text": "Paris."}]}]},  # 13 kept
        b"   ",  # 14 blank
    ]


def test_every_line_ends_in_one_place(tmp_path, records, write_jsonl):
    src = write_jsonl(tmp_path / "messy.jsonl", _messy(records), final_newline=False)
    out = tmp_path / "out"
    done = prepare(src, out=out, workers=1)
    manifest = _manifest(out)
    counts = manifest["counts"]
    assert counts["lines_read"] == 14
    assert counts["lines_read"] == counts["train_examples"] + counts["validation_examples"] \
        + counts["quarantined"] + counts["blank_lines"]
    assert (counts["train_examples"], counts["quarantined"], counts["blank_lines"]) == (6, 6, 2)
    assert manifest["accounting"] == [{"source": str(src), "split": "train", "lines": 14, "train": 6, "validation": 0,
                                       "quarantine": 6, "blank": 2, "balanced": True}]
    quarantine = _jsonl(out / "quarantine.jsonl")
    assert [q["line"] for q in quarantine] == [4, 5, 6, 7, 9, 11]
    assert [q["codes"] for q in quarantine] == [["FMT001"], ["FMT002"], ["FMT003"], ["STR002"], ["STR001"], ["DUP001"]]
    assert "cannot be fixed" in quarantine[4]["reasons"][0]["message"]
    assert quarantine[5]["reasons"][0]["related"] == f"{src}:2"
    # the original bytes, exactly; invalid UTF-8 in base64
    raw = src.read_bytes().split(b"\n")
    assert quarantine[0]["record"].encode() == raw[3]
    assert "record" not in quarantine[1] and quarantine[1]["record_base64"]
    assert all(q["offset"] == sum(len(r) + 1 for r in raw[:q["line"] - 1]) for q in quarantine)
    assert counts["fixed_by_rule"] == {"STR001": 1, "STR012": 1}
    assert counts["quarantined_by_status"] == {"invalid_json": 1, "invalid_utf8": 1, "not_object": 1}
    assert done.exit_code == 1  # STR002 and friends are errors: the gate fails, the files are written
    assert manifest["gate"]["passed"] is False and manifest["gate"]["exit_code"] == 1


def test_written_records_are_canonical_and_fixed(tmp_path, records, write_jsonl):
    src = write_jsonl(tmp_path / "messy.jsonl", _messy(records), final_newline=False)
    out = tmp_path / "out"
    prepare(src, out=out, workers=1)
    lines = _lines(out / "train.jsonl")
    for line in lines:
        obj = orjson.loads(line)
        assert line == orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)  # compact, keys sorted, no BOM, no CR
    kept = [orjson.loads(line) for line in lines]
    assert kept[0] == records.good(0)
    assert kept[2]["contents"][1]["role"] == "model"  # the fixed role
    assert kept[3]["contents"][1]["parts"] == records.good(3)["contents"][1]["parts"]  # the thought is gone
    assert sftgate.check(out / "train.jsonl", select=["FMT", "SCH", "STR001", "STR002", "STR012"]).passed


def test_a_fixed_record_that_still_breaks_a_rule_goes_to_the_quarantine(tmp_path, records, write_jsonl):
    both = records.model_twice(0)  # user, model, model: STR002 ...
    both["contents"][0]["role"] = "human"  # ... and legacy roles (STR001), which the fix renames
    both["contents"][1]["role"] = both["contents"][2]["role"] = "assistant"
    src = write_jsonl(tmp_path / "t.jsonl", [records.good(0), both])
    out = tmp_path / "out"
    prepare(src, out=out, workers=1, select=["STR"])
    quarantine = _jsonl(out / "quarantine.jsonl")
    assert [q["line"] for q in quarantine] == [2]
    assert quarantine[0]["codes"] == ["STR002"]
    assert "after fixing STR001" in quarantine[0]["reasons"][0]["message"]


def _force_small_ranges(monkeypatch: pytest.MonkeyPatch, size: int = 2048) -> None:
    monkeypatch.setattr(local, "CHUNK_BYTES", size)
    plan = local.plan_ranges
    monkeypatch.setattr(local, "plan_ranges", lambda stream, total, _chunk: plan(stream, total, size))


def _count_maps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of items of each `LocalExecutor.map` call from now on (the chunks the workers write)."""
    mapped: list[int] = []
    real_map = local.LocalExecutor.map

    def map_(self, fn, items, **kwargs):
        items = list(items)
        mapped.append(len(items))
        return real_map(self, fn, items, **kwargs)

    monkeypatch.setattr(local.LocalExecutor, "map", map_)
    return mapped


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix == ".jsonl"}


def _stable(manifest: dict) -> dict:
    manifest = copy.deepcopy(manifest)
    manifest.pop("created_at")
    manifest.pop("location")
    manifest["tuning"].pop("upload")  # names the output directory
    for out in manifest["outputs"]:
        out.pop("uri")
        if out["role"] == "report":  # the report holds the run's time and duration
            for key in ("bytes", "sha256", "crc32c"):
                out.pop(key)
    return manifest


def test_output_is_byte_identical_for_any_worker_count(tmp_path, records, write_jsonl, monkeypatch):
    rows = []
    for i in range(120):
        row = {"contents": [{"role": "user", "parts": [{"text": f"What is {i} times {i + 3}?"}]},
                            {"role": "model", "parts": [{"text": f"{i} times {i + 3} is {i * (i + 3)}."}]}]}
        if i % 7 == 0:
            row["contents"].append(row["contents"][1])  # STR002
        rows.append(row)
        if i % 11 == 0:
            rows.append(b"not json")
    src = write_jsonl(tmp_path / "train.jsonl", rows * 2)  # every record twice: DUP001
    _force_small_ranges(monkeypatch)
    results = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        done = prepare(src, out=out, workers=workers, split_validation=0.1, seed=3, max_shard_examples=40)
        results[workers] = (_outputs(out), _stable(done.manifest))
    assert results[1][0] == results[2][0]
    assert results[1][1] == results[2][1]
    assert len([n for n in results[1][0] if n.startswith("train-")]) > 1


def test_chunks_written_over_the_workers_match_one_process(tmp_path, records, write_jsonl, write_rules,
                                                          monkeypatch):
    """Every kind of line (fixed, failed fixes, drops, duplicates, blanks, a validation file
    over its cap), written chunk by chunk in the workers and in this process: the same bytes."""
    train = write_jsonl(tmp_path / "train.jsonl", _messy(records) * 12, final_newline=False)
    val = write_jsonl(tmp_path / "val.jsonl", [records.long_text(i, 200 + i) for i in range(30)] + _messy(records))
    rules = write_rules(tmp_path / "r.yaml", "extends: gemini-2.5-flash\nlimits:\n  max_validation_examples: 9\n")
    _force_small_ranges(monkeypatch, 1024)
    mapped = _count_maps(monkeypatch)
    results = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        done = prepare(train, validation=val, out=out, rules=rules, workers=workers, max_shard_bytes=3000)
        results[workers] = (_outputs(out), _stable(done.manifest))
    assert mapped and min(mapped) > 1  # the workers wrote the chunks of both files
    assert results[1] == results[2]
    counts = results[2][1]["counts"]
    assert counts["fixed_by_rule"] == {"STR001": 1, "STR012": 1}  # the other copies are duplicates
    assert counts["validation_over_cap"] > 0 and counts["quarantined_by_rule"]["LIM003"] == counts["validation_over_cap"]
    assert counts["quarantined_by_rule"]["DUP001"] >= 11 * 8
    quarantine = _jsonl(tmp_path / "out2" / "quarantine.jsonl")
    order = [(("train", "validation").index(q["split"]), q["line"]) for q in quarantine]
    assert order == sorted(order)  # in input order
    for q in quarantine:  # the original bytes, at the offset given
        source = train if q["split"] == "train" else val
        if "record" in q:
            assert source.read_bytes()[q["offset"]:q["offset"] + q["length"]] == q["record"].encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 50), max_size=60), cuts=st.lists(st.integers(0, 60), max_size=6),
       max_bytes=st.integers(1, 120), max_examples=st.none() | st.integers(1, 8))
def test_shards_cut_blocks_as_one_record_at_a_time(tmp_path, sizes, cuts, max_bytes, max_examples):
    """Chunks place blocks of records (`_cut`, `_place`); the shards are those of writing each
    record alone, and the parent's staged shards hash what the writers placed."""
    from sftgate.engine.prepare import _SHARD, _Ledger, _Part, _place, _Shards, _Targets
    from sftgate.io.sinks import LocalDestination

    records = [bytes([65 + i % 26]) * (n - 1) + b"\n" for i, n in enumerate(sizes)]
    expected: list[list[bytes]] = []  # the rule, one record at a time
    for record in records:
        shard = expected[-1] if expected else None
        if shard is None or (shard and (sum(map(len, shard)) + len(record) > max_bytes
                                        or (max_examples is not None and len(shard) >= max_examples))):
            expected.append([])
        expected[-1].append(record)
    out = tmp_path / f"shards-{len(list(tmp_path.iterdir()))}"
    destination = LocalDestination(out)
    destination.claim(overwrite=False)
    shards = _Shards(destination)
    quarantine = destination.stage("quarantine", placed=True)
    targets = _Targets(ledger=str(destination.staged_path("ledger")), owner=os.getpid(), quarantine=str(quarantine.path),
                       validation=None, shards=str(destination.staged_path(_SHARD)), max_bytes=max_bytes,
                       max_examples=max_examples)
    ledger = _Ledger(targets.ledger, os.getpid(), create=True)
    ledger.post(0, (0, 0, 0, 0, 0))
    ledger.close()
    bounds = sorted({0, len(records), *(c for c in cuts if c <= len(records))})
    for index, (a, b) in enumerate(itertools.pairwise(bounds)):
        # a piece a record (Gemini lines written again), or all in one (`_gather` of a spill)
        pieces = records[a:b] if index % 2 else [b"".join(records[a:b])]
        part = _Part(train_sizes=np.array(sizes[a:b], dtype=np.int64), validation_count=0, validation_bytes=0,
                     quarantined=1, blank=0, content=(0, 0), train=pieces, entries=[b"{}\n"], quarantine_bytes=3)
        part = _place(part, targets, index)
        assert not part.train and not part.entries and sum(n for _, _, n in part.train_pieces) == b - a
        for shard, length, examples in part.train_pieces:
            shards.placed(shard, length, examples)
        quarantine.placed(part.quarantine_bytes, 1)
    files = shards.close()
    assert [(out / f.staged.name).read_bytes() for f in files] == [b"".join(s) for s in expected or [[]]]
    assert [f.examples for f in files] == [len(s) for s in expected or [[]]]
    for f in files:
        assert f.sha256 == hashlib.sha256((out / f.staged.name).read_bytes()).hexdigest()
    assert (out / quarantine.path.name).read_bytes() == b"{}\n" * (len(bounds) - 1)
    quarantine.close("quarantine.jsonl")


def test_shards_respect_the_limits_and_join_to_the_whole(tmp_path, records, write_jsonl):
    src = write_jsonl(tmp_path / "train.jsonl", [records.long_text(i, 300 + 40 * i) for i in range(20)])
    whole = tmp_path / "whole"
    prepare(src, out=whole, workers=1, select=["FMT", "SCH", "STR"])
    assert _outputs(whole).keys() == {"train.jsonl", "quarantine.jsonl"}
    limit = 2000
    sharded = tmp_path / "sharded"
    done = prepare(src, out=sharded, workers=1, select=["FMT", "SCH", "STR"], max_shard_bytes=limit)
    names = sorted(n for n in _outputs(sharded) if n.startswith("train"))
    assert len(names) > 2 and names[0] == f"train-00000-of-{len(names):05d}.jsonl"
    assert b"".join((sharded / n).read_bytes() for n in names) == (whole / "train.jsonl").read_bytes()
    for name in names:
        data = (sharded / name).read_bytes()
        assert len(data) <= limit or data.count(b"\n") == 1  # one record larger than the limit stands alone
        assert sftgate.check(sharded / name, select=["FMT", "SCH", "STR"]).passed
    shards = [o for o in done.manifest["outputs"] if o["role"] == "train"]
    assert sum(o["examples"] for o in shards) == 20
    assert done.manifest["tuning"]["training_shards"] == len(names)
    by_count = tmp_path / "by-count"
    prepare(src, out=by_count, workers=1, select=["FMT", "SCH", "STR"], max_shard_examples=7)
    assert [len(_lines(by_count / n)) for n in sorted(_outputs(by_count)) if n.startswith("train")] == [7, 7, 6]


def test_split_validation_moves_the_planned_lines(tmp_path, oasst):
    out = tmp_path / "out"
    done = prepare(oasst / "train.jsonl", out=out, split_validation=40, seed=1, workers=1)
    split = done.report.split
    validation = _lines(out / "validation.jsonl")
    train = _lines(out / "train.jsonl")
    counts = done.manifest["counts"]
    assert len(validation) == counts["validation_examples"] <= split["validation_examples"]
    assert len(validation) > 30
    assert not set(validation) & set(train)
    assert counts["train_examples"] + counts["validation_examples"] + counts["quarantined"] == 501
    assert done.manifest["split"]["validation_examples"] == split["validation_examples"]
    assert "validation_lines" not in done.manifest["split"]
    assert done.manifest["tuning"]["validation_dataset_uri"].endswith("/validation.jsonl")


def test_validation_is_capped_by_a_seeded_sample(tmp_path, records, write_jsonl, write_rules):
    train = write_jsonl(tmp_path / "train.jsonl", [records.good(i) for i in range(3)])
    rows = [records.long_text(i, 200 + i) for i in range(12)]
    val = write_jsonl(tmp_path / "val.jsonl", rows)
    rules = write_rules(tmp_path / "r.yaml", "extends: gemini-2.5-flash\nlimits:\n  max_validation_examples: 5\n")
    kept = []
    for seed in (0, 0, 9):
        out = tmp_path / f"out{len(kept)}"
        done = prepare(train, validation=val, out=out, rules=rules, seed=seed, workers=1, select=["FMT", "STR"])
        kept.append(_lines(out / "validation.jsonl"))
        quarantine = _jsonl(out / "quarantine.jsonl")
        assert len(kept[-1]) == 5 and len(quarantine) == 7
        assert {q["codes"][0] for q in quarantine} == {"LIM003"}
        assert done.manifest["counts"]["validation_over_cap"] == 7
    assert kept[0] == kept[1] != kept[2]


def test_large_quarantined_records_are_pointed_to(tmp_path, records, write_jsonl, write_rules):
    src = write_jsonl(tmp_path / "t.jsonl", [records.good(0), records.model_twice(1)])
    rules = write_rules(tmp_path / "r.yaml", "output:\n  quarantine_record_max_bytes: 50\n")
    out = tmp_path / "out"
    prepare(src, out=out, rules=rules, workers=1)
    (entry,) = _jsonl(out / "quarantine.jsonl")
    assert "record" not in entry and "over output.quarantine_record_max_bytes (50)" in entry["record_omitted"]
    assert src.read_bytes()[entry["offset"]:entry["offset"] + entry["length"]] == records.line(records.model_twice(1))


def test_unknown_keys_kept_or_stripped(tmp_path, records, write_jsonl, write_rules):
    row = records.good(0)
    row["meta"] = {"id": 7}
    src = write_jsonl(tmp_path / "t.jsonl", [row])
    out = tmp_path / "keep"
    prepare(src, out=out, workers=1)
    assert _jsonl(out / "train.jsonl") == [row]
    rules = write_rules(tmp_path / "r.yaml", "output:\n  unknown_keys: strip\n")
    out = tmp_path / "strip"
    prepare(src, out=out, rules=rules, workers=1)
    assert _jsonl(out / "train.jsonl") == [records.good(0)]


@pytest.mark.parametrize("listed", [None, 0])
def test_a_json_array_file_goes_to_the_quarantine_line_by_line(tmp_path, records, write_rules, listed):
    """Every line, with the file's FMT010 as the reason, even when the report lists no findings."""
    src = tmp_path / "array.json"
    src.write_text(json.dumps([records.good(0), records.good(1)], indent=2))
    out = tmp_path / "out"
    rules = None if listed is None else write_rules(tmp_path / "r.yaml", f"report:\n  max_findings_per_rule: {listed}\n")
    done = prepare(src, out=out, workers=1, input_format="gemini", rules=rules)  # as Vertex reads it; auto unpacks it
    quarantine = _jsonl(out / "quarantine.jsonl")
    assert len(quarantine) == src.read_text().count("\n") + 1
    assert {tuple(q["codes"]) for q in quarantine} == {("FMT010",)}
    assert "".join(q["record"] + "\n" for q in quarantine).rstrip("\n") == src.read_text()
    assert done.manifest["counts"]["train_examples"] == 0 and done.exit_code == 1
    assert done.manifest["counts"]["quarantined_by_rule"]["FMT010"] == len(quarantine)


def test_gzip_input(tmp_path, records):
    rows = [records.good(0), records.model_twice(1), records.good(2), records.good(0)]
    src = tmp_path / "t.jsonl.gz"
    src.write_bytes(gzip.compress(b"".join(records.line(r) + b"\n" for r in rows)))
    out = tmp_path / "out"
    prepare(src, out=out, workers=1)
    assert [q["line"] for q in _jsonl(out / "quarantine.jsonl")] == [2, 4]
    assert _jsonl(out / "quarantine.jsonl")[1]["record"].encode() == records.line(records.good(0))
    assert _jsonl(out / "train.jsonl") == [records.good(0), records.good(2)]


def test_leaking_training_copies_are_quarantined(tmp_path, records, write_jsonl):
    train = write_jsonl(tmp_path / "train.jsonl", [records.good(i) for i in range(6)])
    val = write_jsonl(tmp_path / "val.jsonl", [records.good(2)])
    out = tmp_path / "out"
    prepare(train, validation=val, out=out, workers=1)
    (entry,) = _jsonl(out / "quarantine.jsonl")
    assert (entry["line"], entry["codes"], entry["split"]) == (3, ["LEAK001"], "train")
    assert _jsonl(out / "validation.jsonl") == [records.good(2)]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_line_quarantined_by_two_rules_lists_both_in_the_order_found(tmp_path, records, write_jsonl, monkeypatch,
                                                                      workers):
    """A training copy that also leaks into the validation file: DUP001 (columns), then LEAK001
    (a finding of its own); a copy that only repeats has DUP001 alone."""
    rows = [records.good(i) for i in range(6)]
    train = write_jsonl(tmp_path / "train.jsonl", rows + [rows[2], rows[4]])
    val = write_jsonl(tmp_path / "val.jsonl", [records.good(2)])
    _force_small_ranges(monkeypatch, 512)
    monkeypatch.setattr(local, "RUNNING_POOL_BYTES", 0)
    out = tmp_path / "out"
    prepare(train, validation=val, out=out, workers=workers)
    entries = {e["line"]: e for e in _jsonl(out / "quarantine.jsonl")}
    assert sorted(entries) == [3, 7, 8]
    assert [r["code"] for r in entries[7]["reasons"]] == ["DUP001", "LEAK001"] and entries[7]["codes"] == \
        ["DUP001", "LEAK001"]
    assert entries[7]["reasons"][0] == {"code": "DUP001", "severity": "warning", "message": "exact duplicate of line 3",
                                        "related": f"{train}:3", "similarity": 1.0}
    assert entries[8]["reasons"] == [{"code": "DUP001", "severity": "warning",
                                      "message": "exact duplicate of line 5", "related": f"{train}:5",
                                      "similarity": 1.0}]
    assert entries[3]["codes"] == ["LEAK001"]


def test_a_cluster_survives_when_its_first_member_is_dropped(tmp_path, records, write_jsonl, write_rules):
    # Line 1 carries a BOM and the profile drops it (FMT004: drop); line 3 is the same example.
    # The cluster's survivor must be line 3, not the dropped line 1: the example is not lost.
    rules = write_rules(tmp_path / "r.yaml", "rules:\n  FMT004: {action: drop}\n")
    src = write_jsonl(tmp_path / "t.jsonl", [b"\xef\xbb\xbf" + records.line(records.good(0)), records.good(1),
                                             records.good(0)])
    out = tmp_path / "out"
    prepare(src, out=out, rules=rules, workers=1, select=["FMT004", "DUP001"])
    assert [(q["line"], q["codes"]) for q in _jsonl(out / "quarantine.jsonl")] == [(1, ["FMT004"])]
    assert _jsonl(out / "train.jsonl") == [records.good(1), records.good(0)]
    report = sftgate.check(src, rules=rules, select=["FMT004", "DUP001"])
    assert [(f.code, f.line, f.related) for f in report.findings if f.code == "DUP001"] == [("DUP001", 1, f"{src}:3")]


def test_refuses_a_non_empty_location_unless_overwrite(tmp_path, records, write_jsonl):
    src = write_jsonl(tmp_path / "t.jsonl", [records.good(i) for i in range(4)])
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty .*notes.txt.*--overwrite"):
        prepare(src, out=out, workers=1)
    prepare(src, out=out, workers=1, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"  # only sftgate's own files are replaced
    with pytest.raises(UsageError, match="finished run"):
        prepare(src, out=out, workers=1)
    file_out = tmp_path / "file"
    file_out.write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        prepare(src, out=file_out, workers=1)


def test_overwrite_removes_stale_shards(tmp_path, records, write_jsonl):
    src = write_jsonl(tmp_path / "t.jsonl", [records.good(i) for i in range(7)])
    out = tmp_path / "out"
    prepare(src, out=out, workers=1, max_shard_examples=2, select=["FMT"])
    assert len(list(out.glob("train-*"))) == 4
    prepare(src, out=out, workers=1, overwrite=True, select=["FMT"])
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "quarantine.jsonl", "report.json", "train.jsonl"]


def test_an_interrupted_run_leaves_no_manifest_and_resumes(tmp_path, records, write_jsonl, monkeypatch):
    from sftgate.io import sinks

    src = write_jsonl(tmp_path / "t.jsonl", [records.good(i) for i in range(5)])
    out = tmp_path / "out"

    def fail(self, data):
        raise OSError("disk full")

    monkeypatch.setattr(sinks.LocalDestination, "publish_manifest", fail)
    with pytest.raises(OSError):
        prepare(src, out=out, workers=1)
    assert (out / "train.jsonl").exists() and not (out / "manifest.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".sftgate-tmp-")]
    monkeypatch.undo()
    done = prepare(src, out=out, workers=1)  # no --overwrite needed: the run was not finished
    assert done.manifest["complete"] and (out / "manifest.json").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failure_while_writing_leaves_only_temporary_names_and_cleans_them(tmp_path, records, write_jsonl,
                                                                           monkeypatch, workers):
    """The parent fails while chunks are placed (in this process, or in the workers, where
    writers wait for chunks that will not come): it stops them, and cleans up after them."""
    from sftgate.engine import prepare as prepare_module

    src = write_jsonl(tmp_path / "t.jsonl", [records.long_text(i, 400 + i) for i in range(12)])
    out = tmp_path / "out"
    real = prepare_module._Shards.placed
    calls = []

    def placed(self, shard, length, examples):
        calls.append(1)
        if len(calls) == 3:  # shards with records in them are staged by now
            assert [p for p in out.iterdir() if p.name.startswith(".sftgate-tmp-train-")]
            raise OSError("disk full")
        real(self, shard, length, examples)

    _force_small_ranges(monkeypatch, 1024)  # a chunk writes several times
    monkeypatch.setattr(prepare_module._Shards, "placed", placed)
    mapped = _count_maps(monkeypatch)
    with pytest.raises(OSError):
        prepare(src, out=out, workers=workers, max_shard_bytes=1000)
    assert len(calls) == 3 and bool(mapped) == (workers > 1)
    assert list(out.iterdir()) == []


def _duplicated(records, n: int = 40) -> list:
    """Long records, many of them more than once (DUP001)."""
    return [records.long_text(i, 300 + i) for i in range(n)] * 2


def test_the_outputs_are_written_while_the_composition_rules_run(tmp_path, records, write_jsonl, monkeypatch):
    """Once every line's place is known, the workers write the chunks while this process runs
    the composition rules: the first chunk is handed out before they end."""
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from sftgate.engine import run as run_module

    src = write_jsonl(tmp_path / "t.jsonl", _duplicated(records))
    _force_small_ranges(monkeypatch, 4096)
    monkeypatch.setattr(local, "RUNNING_POOL_BYTES", 0)
    handed_out = threading.Event()
    submit = ProcessPoolExecutor.submit

    def logged_submit(self, fn, *args, **kwargs):
        if getattr(args[0] if args else None, "__name__", "") == "_write_chunk":
            handed_out.set()
        return submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(ProcessPoolExecutor, "submit", logged_submit)
    composed = run_module._skew
    seen = []

    def skew(*args, **kwargs):
        seen.append(handed_out.wait(60))  # False if writing waited for this step to end
        return composed(*args, **kwargs)

    monkeypatch.setattr(run_module, "_skew", skew)
    done = prepare(src, out=tmp_path / "out", workers=2)
    assert seen == [True]
    counts = done.manifest["counts"]
    assert counts["quarantined_by_rule"]["DUP001"] >= 40 and counts["train_examples"] + counts["quarantined"] == 80


@pytest.mark.parametrize("command", ["check", "prepare"])
def test_the_composition_rules_leave_the_writers_their_cores(tmp_path, records, write_jsonl, monkeypatch, command):
    """While the workers write, the composition rules' BLAS and OpenMP threads are held to the
    cores the workers leave (one here: 3 cores, 2 workers); a check keeps them all."""
    import scipy.linalg  # noqa: F401 - loads its BLAS, as sklearn its OpenMP, before the limits are set
    import sklearn.cluster  # noqa: F401
    from threadpoolctl import threadpool_info, threadpool_limits

    from sftgate.engine import run as run_module

    src = write_jsonl(tmp_path / "t.jsonl", _duplicated(records))
    _force_small_ranges(monkeypatch, 4096)
    monkeypatch.setattr(local, "RUNNING_POOL_BYTES", 0)
    monkeypatch.setattr(run_module, "default_workers", lambda: 3)
    composed = run_module._skew
    seen: list[set[int]] = []

    def threads(apis=("blas",)) -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] in apis}

    def skew(*args, **kwargs):
        seen.append(threads(("blas", "openmp")))
        return composed(*args, **kwargs)

    monkeypatch.setattr(run_module, "_skew", skew)
    with threadpool_limits(limits=4):
        assert threads() == {4}
        if command == "prepare":
            prepare(src, out=tmp_path / "out", workers=2)
        else:
            sftgate.check(src, workers=2)
        after = threads()
    assert seen == ([{1}] if command == "prepare" else [{4}])
    assert after == {4}  # as they were


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("failing", ["composition", "closing the feature tables"])
def test_a_failure_of_the_rules_still_to_run_stops_the_writing(tmp_path, records, write_jsonl, monkeypatch,
                                                               workers, failing):
    """A step after the writing started fails: the writing stops, nothing is published and no
    writer is left running."""
    import threading

    from sftgate.engine import features
    from sftgate.engine import prepare as prepare_module
    from sftgate.engine import run as run_module

    src = write_jsonl(tmp_path / "t.jsonl", _duplicated(records))
    _force_small_ranges(monkeypatch, 4096)
    monkeypatch.setattr(local, "RUNNING_POOL_BYTES", 0)

    def fail(*args, **kwargs):
        raise SftgateError(f"{failing} failed")

    if failing == "composition":
        monkeypatch.setattr(run_module, "_skew", fail)
    else:
        monkeypatch.setattr(features.FeatureTable, "close", fail)
    stopped = []
    stop = prepare_module._Writing.stop
    monkeypatch.setattr(prepare_module._Writing, "stop", lambda self: stopped.append(1) or stop(self))
    out = tmp_path / "out"
    with pytest.raises(SftgateError, match=f"{failing} failed"):
        prepare(src, out=out, workers=workers)
    assert stopped  # told to stop, not left to end on its own
    assert not [t for t in threading.enumerate() if t.name == "sftgate-write"]
    assert list(out.iterdir()) == []


def test_fix_actions_are_only_for_rules_that_can_fix(tmp_path, write_rules):
    rules = write_rules(tmp_path / "r.yaml", "rules:\n  STR002: {action: fix}\n")
    with pytest.raises(ConfigError, match="STR002 .* cannot fix"):
        load_profile(rules_file=rules)
    for code, rule in REGISTRY.items():
        if rule.default_action.value == "fix":
            assert rule.fixes in ("output", "record"), code


@pytest.mark.parametrize(("contents", "system", "expected"), [
    ([("assistant", "hi")], None, ["model"]),
    ([("user", "q"), ("Model", "a")], None, ["user", "model"]),
    ([("human", "q"), ("gpt", "a"), (None, "q2"), ("bot", "a2")], None, ["user", "model", "user", "model"]),
    ([("system", "be brief"), ("user", "q"), ("model", "a")], "be brief", ["user", "model"]),
    ([("user", "q"), ("narrator", "a")], None, None),
])
def test_role_fix(contents, system, expected):
    obj = {"contents": [{"parts": [{"text": t}], **({"role": r} if r else {})} for r, t in contents]}
    ok = InvalidRole().fix(obj, RuleContext(profile=load_profile()))
    assert ok == (expected is not None)
    if ok:
        assert [t["role"] for t in obj["contents"]] == expected
        assert obj.get("systemInstruction") == ({"parts": [{"text": system}]} if system else None)


def test_thought_fix():
    obj = {"contents": [{"role": "user", "parts": [{"text": "q"}]},
                        {"role": "model", "parts": [{"text": "hmm", "thought": True},
                                                    {"text": "a", "thoughtSignature": "xyz"}]}]}
    ctx = RuleContext(profile=load_profile())
    assert ThoughtPart().fix(obj, ctx)
    assert obj["contents"][1]["parts"] == [{"text": "a"}]
    assert not ThoughtPart().fix({"contents": [{"role": "model", "parts": [{"text": "x", "thought": True}]}]}, ctx)


def test_cli_prepare(tmp_path, oasst, run_cli, assert_usage_error):
    out = tmp_path / "out"
    result = run_cli("prepare", oasst / "train.jsonl", "--validation", oasst / "validation.jsonl", "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"prepared {out}" in result.stdout and "lines read" in result.stdout and "tuningJobs" in result.stdout
    again = run_cli("prepare", oasst / "train.jsonl", "--out", out)
    assert_usage_error(again, "finished run", "--overwrite")
    as_json = run_cli("prepare", oasst / "train.jsonl", "--out", out, "--overwrite", "--format", "json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["outputs"][0]["name"] == "train.jsonl"
    assert_usage_error(run_cli("prepare", oasst / "train.jsonl"), "--out")
    assert_usage_error(run_cli("prepare", oasst / "train.jsonl", "--out", tmp_path / "o2", "--max-shard-bytes", "0"),
                       "at least 1")


def test_nothing_kept_means_no_tuning_command(tmp_path, records, write_jsonl, run_cli):
    """When every line is quarantined, prepare does not offer a tuning call on an empty file:
    the manifest's first tuning note and the summary say there is nothing to tune on."""
    src = write_jsonl(tmp_path / "t.jsonl", [records.model_twice(i) for i in range(3)])
    out = tmp_path / "out"
    result = run_cli("prepare", src, "--out", out)
    assert result.returncode == 1, result.stderr
    assert "nothing to tune on" in result.stdout and "tune:" not in result.stdout and "upload:" not in result.stdout
    assert _manifest(out)["tuning"]["notes"][0].startswith("no training example was kept")
    kept = run_cli("prepare", src, "--out", tmp_path / "kept", "--ignore", "STR002")
    assert "tune:" in kept.stdout and "nothing to tune on" not in kept.stdout
    assert not any("nothing to tune" in note for note in _manifest(tmp_path / "kept")["tuning"]["notes"])


def test_cli_prepare_gate_failure_exit_1(tmp_path, records, write_jsonl, run_cli):
    src = write_jsonl(tmp_path / "t.jsonl", [records.good(0), records.model_twice(1)])
    out = tmp_path / "out"
    result = run_cli("prepare", src, "--out", out)
    assert result.returncode == 1, result.stderr
    assert "the gate failed" in result.stdout
    assert _manifest(out)["gate"]["passed"] is False


def test_a_json_array_file_is_unpacked_and_written_as_jsonl(tmp_path, records):
    src = tmp_path / "array.json"
    src.write_text(json.dumps([records.good(0), records.good(1)], indent=2))
    done = prepare(src, out=tmp_path / "out", workers=1)
    assert _jsonl(tmp_path / "out" / "train.jsonl") == [records.good(0), records.good(1)]
    assert "CNV003" not in {f.code for f in done.report.findings}


def test_staged_files_hash_large_blocks_and_small_writes_alike(tmp_path):
    """Blocks of 1 MiB or more go to the writer thread as they are, small writes gathered; the
    file and its checksums are those of the bytes in order."""
    import hashlib

    import google_crc32c

    from sftgate.io.sinks import Staged

    big = bytes(range(256)) * (5 << 12)  # 5 MiB
    pieces = [b"a" * 100, big[7:], b"b" * 2000, big[:1 << 20], b"c" * 50]
    staged = Staged(tmp_path / "f")
    for piece in pieces:
        staged.write(piece, 1)
    done = staged.close("f.jsonl")
    whole = b"".join(pieces)
    assert (tmp_path / "f").read_bytes() == whole
    assert done.bytes == len(whole) and done.examples == len(pieces)
    assert done.sha256 == hashlib.sha256(whole).hexdigest()
    assert base64.b64decode(done.crc32c) == google_crc32c.Checksum(whole).digest()


def test_progress_phases_of_prepare(tmp_path, records, write_jsonl):
    """Writing and publishing are passes of their own; the report's duration is the check's."""
    from sftgate.engine.progress import _Timed

    class Phases(_Timed):
        def __init__(self):
            super().__init__()
            self.done = []

        def finished(self, name, seconds):
            self.done.append(name)

    src = write_jsonl(tmp_path / "t.jsonl", [records.good(i) for i in range(5)])
    phases = Phases()
    prepare(src, out=tmp_path / "out", workers=1, progress=phases)
    assert phases.done[-2].startswith("write ") and phases.done[-1] == "publish"


@pytest.mark.parametrize("change", ["other record", "same size"])
def test_a_line_that_reads_differently_when_written_is_an_error(tmp_path, records, write_jsonl, monkeypatch,
                                                                change):
    """Gemini lines are not spilled: the writer reads a kept line again. If it is not what the
    check read (its fingerprint differs: the file changed), prepare stops with one line and
    publishes nothing; also when the change keeps the line's and the record's sizes."""
    from sftgate.engine import prepare as prepare_module

    src = write_jsonl(tmp_path / "t.jsonl", [records.good(i) for i in range(3)])
    real = prepare_module._Emitter.plan

    def plan(self, runs):  # the check pass is over: the file changes before the writers read it again
        first, *rest = src.read_bytes().splitlines(keepends=True)
        rest = [b'{"contents": []}\n'] * len(rest) if change == "other record" else \
            [line.replace(b"a", b"e", 1) for line in rest]
        src.write_bytes(b"".join([first, *rest]))
        return real(self, runs)

    monkeypatch.setattr(prepare_module._Emitter, "plan", plan)
    out = tmp_path / "out"
    with pytest.raises(sftgate.SftgateError, match=r"t\.jsonl: the line at byte [\d,]+ is not what it was"):
        prepare(src, out=out, workers=1)
    assert not (out / "manifest.json").exists()


@pytest.mark.parametrize("checked", [True, False])
def test_a_record_nested_deeper_than_the_writer_goes_to_the_quarantine(tmp_path, records, write_jsonl, monkeypatch,
                                                                       checked):
    """orjson reads 1,024 levels of nesting but writes 254: the check flags a deeper record
    (FMT001) and prepare quarantines it with that reason. Should one get past the check, the
    writer that keeps it finds out when it writes it, and quarantines it saying so, in line
    order."""
    from sftgate.engine import passes

    if not checked:
        monkeypatch.setattr(passes, "_too_deep", lambda obj: False)
    deep: object = 0
    for _ in range(300):
        deep = [deep]
    nested = {**records.good(1), "generationConfig": {"responseSchema": deep}}  # free-form: no rule objects
    src = write_jsonl(tmp_path / "t.jsonl", [records.good(0), nested, records.good(2), records.model_twice(3)])
    done = prepare(src, out=tmp_path / "out", workers=1, profile="gemini-2.5-flash")
    quarantine = _jsonl(tmp_path / "out" / "quarantine.jsonl")
    why = "invalid JSON: nested deeper than 254 levels, the most sftgate writes back" if checked else \
        "line is not written: cannot be written back as JSON"
    assert [(q["line"], q["reasons"][0]["message"]) for q in quarantine] == [
        (2, why), (4, quarantine[1]["reasons"][0]["message"])]
    assert [q["codes"] for q in quarantine] == [["FMT001"] if checked else [], ["STR002"]]
    assert [json.loads(line)["contents"][0]["parts"][0]["text"] for line in _lines(tmp_path / "out" / "train.jsonl")] \
        == [records.good(0)["contents"][0]["parts"][0]["text"], records.good(2)["contents"][0]["parts"][0]["text"]]
    assert done.manifest["accounting"][0] | {"source": None} == {
        "source": None, "split": "train", "lines": 4, "train": 2, "validation": 0, "quarantine": 2, "blank": 0,
        "balanced": True}


def test_a_chunk_that_fails_in_a_worker_stops_the_chunks_after_it(tmp_path, records, write_jsonl, monkeypatch):
    """Chunks are placed in turn through the ledger: when one fails in a worker, the writers
    of the chunks after it stop instead of waiting for it, the run reports that chunk's error,
    and nothing is left behind, not even the ledger."""
    from sftgate.engine import prepare as prepare_module

    src = write_jsonl(tmp_path / "t.jsonl", [records.long_text(i, 300 + i) for i in range(60)])
    real = prepare_module._ChunkWriter.write
    failing = 3

    def write(self, task, reader):
        if task.index == failing:
            raise sftgate.SftgateError(f"chunk {task.index} cannot be written")
        return real(self, task, reader)

    _force_small_ranges(monkeypatch, 2048)
    monkeypatch.setattr(prepare_module._ChunkWriter, "write", write)  # the workers fork after this
    log = tmp_path / "abandoned"  # written by the worker processes
    real_wait = prepare_module._Ledger.wait

    def wait(self, index):
        try:
            return real_wait(self, index)
        except prepare_module._Abandoned:
            with open(log, "a") as fh:
                fh.write(f"{index}\n")
            raise

    monkeypatch.setattr(prepare_module._Ledger, "wait", wait)
    mapped = _count_maps(monkeypatch)
    out = tmp_path / "out"
    with pytest.raises(sftgate.SftgateError, match=f"chunk {failing} cannot be written"):
        prepare(src, out=out, workers=2)
    assert mapped and mapped[0] > failing + 2  # over the workers, with chunks after the failed one
    assert list(out.iterdir()) == []
    stopped = sorted(int(n) for n in log.read_text().split()) if log.exists() else []
    assert stopped and min(stopped) == failing + 1  # the next chunk's writer stopped, it did not wait
    # in this process, the chunks after the failed one are not even started
    log.unlink()
    with pytest.raises(sftgate.SftgateError, match=f"chunk {failing} cannot be written"):
        prepare(src, out=out, workers=1)
    assert list(out.iterdir()) == [] and not log.exists()


def test_the_ledger_hands_out_only_whole_slots_and_stops_waiting_writers(tmp_path):
    import subprocess
    import sys
    import threading
    import time

    from sftgate.engine.prepare import _Abandoned, _Ledger

    path = str(tmp_path / "ledger")
    ledger = _Ledger(path, os.getpid(), create=True)
    ledger.post(0, (1, 2, 3, 4, 5))
    assert ledger.wait(0) == (1, 2, 3, 4, 5)
    # the fields of chunk 1's slot without their check: not taken until the check is written
    slot = _Ledger.SLOT
    os.pwrite(ledger.fd, slot.pack(6, 7, 8, 9, 10, 0)[:-8], 2 * slot.size)
    later = threading.Timer(0.05, lambda: ledger.post(1, (6, 7, 8, 9, 10)))
    later.start()
    started = time.perf_counter()
    assert ledger.wait(1) == (6, 7, 8, 9, 10)
    assert time.perf_counter() - started >= 0.04
    later.join()
    ledger.fail(2)
    with pytest.raises(_Abandoned, match="chunk 1 failed"):
        ledger.wait(2)
    stopping = threading.Timer(0.05, ledger.stop)  # the owner stops the run while a writer waits
    stopping.start()
    with pytest.raises(_Abandoned, match="the run stopped"):
        ledger.wait(3)
    stopping.join()
    ledger.close()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    orphan = _Ledger(str(tmp_path / "other"), int(gone.stdout), create=True)  # its owner has exited
    with pytest.raises(_Abandoned, match="the run stopped"):
        orphan.wait(0)
    orphan.close()
    with pytest.raises(FileNotFoundError):  # only the owner creates it
        _Ledger(str(tmp_path / "none"), os.getpid())


def test_placed_files_hash_what_others_wrote_and_check_their_size(tmp_path):
    import hashlib

    import google_crc32c

    from sftgate.io.sinks import Staged

    staged = Staged(tmp_path / "f", placed=True)
    with pytest.raises(ValueError, match="written by its chunk writers"):
        staged.write(b"x")
    data = bytes(range(256)) * 40000  # ~10 MiB: read back in several pieces
    with open(tmp_path / "f", "r+b") as other:  # another process's writes, out of order
        other.seek(5000)
        other.write(data[5000:])
        other.seek(0)
        other.write(data[:5000])
    staged.placed(5000, 1)
    staged.placed(len(data) - 5000, 2)
    done = staged.close("f.jsonl")
    assert done.bytes == len(data) and done.examples == 3
    assert done.sha256 == hashlib.sha256(data).hexdigest()
    assert base64.b64decode(done.crc32c) == google_crc32c.Checksum(data).digest()
    short = Staged(tmp_path / "g", placed=True)
    (tmp_path / "g").write_bytes(b"abc")
    short.placed(2, 1)
    with pytest.raises(OSError, match="3 bytes staged where 2 were placed"):
        short.close("g.jsonl")


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise on this platform")
@pytest.mark.parametrize("placed", [False, True])
def test_staged_files_drop_hashed_bytes_from_the_page_cache_behind_them(tmp_path, monkeypatch, placed):
    """What is hashed has its writeback started at once, every byte exactly once, and is
    dropped from the page cache `DROP_LAG` bytes later, in order; the bytes are unchanged."""
    import hashlib

    from sftgate.io import sinks

    calls = []
    real = os.posix_fadvise

    def fadvise(fd, offset, length, advice):
        assert advice == os.POSIX_FADV_DONTNEED and length > 0  # a length of 0 would mean "to the end"
        calls.append((offset, length))
        real(fd, offset, length, advice)

    monkeypatch.setattr(sinks.os, "posix_fadvise", fadvise)
    monkeypatch.setattr(sinks.Staged, "DROP_LAG", 3 << 20)
    block = bytes(range(256)) * 4096  # 1 MiB
    staged = sinks.Staged(tmp_path / "f", placed=placed)
    for k in range(12):
        if placed:
            with open(tmp_path / "f", "r+b") as other:
                other.seek(k * len(block))
                other.write(block)
            staged.placed(len(block), 1)
        else:
            staged.write(block, 1)
    done = staged.close("f.jsonl")
    assert done.sha256 == hashlib.sha256(block * 12).hexdigest()
    # Each hashed block: its writeback, then (every 3 MiB once 6 MiB are hashed) a drop that
    # reaches 3 MiB behind.
    kicks = [(k << 20, 1 << 20) for k in range(12)]
    drops = [(0, 3 << 20), (3 << 20, 3 << 20), (6 << 20, 3 << 20)]
    assert [c for c in calls if c in kicks] == kicks
    assert [c for c in calls if c not in kicks] == drops
    assert calls.index(drops[0]) == calls.index(kicks[5]) + 1  # after the 6th MiB is hashed


def test_pwrite_lays_pieces_end_to_end_past_the_pieces_one_call_takes(tmp_path):
    """Quarantine entries go to the staged file as pieces (`os.pwritev`, at most IOV_MAX a
    call): the file holds them end to end from the offset, and a bytes view the same."""
    from sftgate.engine.prepare import _IOV_MAX, _pwrite

    pieces = [b"%d:" % i * (i % 7 + 1) for i in range(2 * _IOV_MAX + 5)]
    target = tmp_path / "q"
    target.write_bytes(b"#" * 10)
    _pwrite(str(target), pieces, 10)
    _pwrite(str(target), memoryview(b"end"), 10 + sum(map(len, pieces)))
    assert target.read_bytes() == b"#" * 10 + b"".join(pieces) + b"end"


def test_duplicates_entries_written_in_bulk_are_those_written_one_by_one(tmp_path, records, write_jsonl,
                                                                      monkeypatch):
    """The entries of records that one DUP finding quarantines are written by `entries.render`
    (`_ChunkWriter._bulk`); between them, the writer's loop writes the others (drops, failed
    fixes, lines with two reasons, non-JSON lines). In this process and in the workers, the
    same bytes as the loop writing every entry."""
    from sftgate.engine import prepare as prepare_module

    rows: list = []
    for i in range(40):
        row = records.long_text(i, 300 + 7 * i)
        row["contents"][0]["parts"][0]["text"] += f' "quoted" \\ back\tslash é € 😀 \u2028 #{i}'
        near = copy.deepcopy(row)
        near["contents"][1]["parts"][0]["text"] = near["contents"][1]["parts"][0]["text"].replace("while", "bit", 1)
        rows += [row, near, records.line(row).replace(b'{"contents":', b'{"contents":\t', 1)]  # DUP002, DUP001
        if i % 9 == 0:
            rows += [b"not json", records.model_twice(i)]
    rows += _messy(records)
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    val = write_jsonl(tmp_path / "val.jsonl", [rows[0]])  # its training copies leak: DUP and LEAK
    _force_small_ranges(monkeypatch, 8192)
    monkeypatch.setattr(local, "RUNNING_POOL_BYTES", 0)
    real = prepare_module._ChunkWriter._bulk
    monkeypatch.setattr(prepare_module._ChunkWriter, "_bulk",  # in this process: the writer's loop alone
                        lambda self, task, fate, reader, lone: prepare_module._Bulk.empty(len(fate)))
    prepare(train, validation=val, out=tmp_path / "loop", workers=1)
    expected = _outputs(tmp_path / "loop")
    made: list[int] = []

    def counted(self, task, fate, reader, lone):
        bulk = real(self, task, fate, reader, lone)
        made.append(bulk.count)
        return bulk

    monkeypatch.setattr(prepare_module._ChunkWriter, "_bulk", counted)
    quarantine = _jsonl(tmp_path / "loop" / "quarantine.jsonl")
    codes = {tuple(q["codes"]) for q in quarantine}
    assert {("DUP001",), ("DUP002",)} <= codes and any(len(c) > 1 for c in codes) and len(codes) > 4
    for workers in (1, 2):
        prepare(train, validation=val, out=tmp_path / f"bulk{workers}", workers=workers)
        assert _outputs(tmp_path / f"bulk{workers}") == expected
        if workers == 1:  # (the workers' are not counted here)
            assert sum(made) == sum(q["codes"] in (["DUP001"], ["DUP002"]) for q in quarantine) >= 70
    for q in quarantine:
        if "record" in q:
            assert train.read_bytes()[q["offset"]:q["offset"] + q["length"]] == q["record"].encode()
