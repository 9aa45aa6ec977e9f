"""Leakage and the validation split end to end, through `sftgate.check()`: workers and chunking
do not change the result, eval sets (JSONL and plain text), the report sections, and the split's
invariants (groups never straddle it, the caps, the seed, the leak check of the result)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sftgate
from sftgate.engine import local
from sftgate.engine.split import SplitRequest, plan

BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bench" / "leakage"
needs_bench = pytest.mark.skipif(not BENCH.is_dir(), reason="../shared/data/bench is not beside the repository")


def _lines(path: Path) -> list[str]:
    # Not splitlines(): JSON strings may hold U+2028, which it treats as a line break.
    return path.read_text(encoding="utf-8").removesuffix("\n").split("\n")


def _leaking(report: sftgate.Report) -> dict[str, dict[int, str]]:
    """{set name: {line: code}} of every listed leaking record."""
    assert report.leakage is not None
    return {s["name"]: {int(r["record"].rsplit(":", 1)[1]): r["code"] for r in s["listed"]}
            for s in report.leakage["sets"]}


@pytest.fixture(scope="module")
def leak_files(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A 1,200-record slice of the DEV leakage scenario: training file, validation file with its
    leaking lines kept, and a plain-text eval set of validation prompts."""
    if not BENCH.is_dir():
        pytest.skip("../shared/data/bench is not beside the repository")
    out = tmp_path_factory.mktemp("leak")
    labels = [json.loads(line) for line in _lines(BENCH / "leakage.labels.jsonl")]
    train_lines = _lines(BENCH / "train.jsonl")
    val_lines = _lines(BENCH / "validation.jsonl")
    keep_train = sorted({t for label in labels for t in label["train_lines"]} | set(range(1, 1001)))
    (out / "train.jsonl").write_text("".join(train_lines[i - 1] + "\n" for i in keep_train), encoding="utf-8")
    (out / "validation.jsonl").write_text("".join(line + "\n" for line in val_lines), encoding="utf-8")
    prompts = [json.loads(line)["contents"][0]["parts"][0]["text"].replace("\n", " ") for line in val_lines[:100]]
    (out / "prompts.txt").write_text("".join(p + "\n" for p in prompts), encoding="utf-8")
    return out / "train.jsonl", out / "validation.jsonl", out / "prompts.txt"


@needs_bench
def test_workers_and_chunks_do_not_change_leakage(leak_files, monkeypatch, without_volatile):
    train, validation, prompts = leak_files
    serial = sftgate.check(str(train), validation=str(validation), eval_sets=[str(prompts)], workers=1)
    assert serial.leakage is not None and serial.leakage["candidate_pairs"] > 16

    monkeypatch.setattr(local, "VERIFY_BLOCK", 16)
    monkeypatch.setattr(local, "MAP_MIN_RECORDS", 0)  # the n-gram scan and prompt band keys in 8 runs over the workers
    monkeypatch.setattr(local, "RUNNING_POOL_BYTES", 0)  # the validation file too, once the training file started them
    pooled = []
    ranges_of = local.LocalExecutor._ranges
    monkeypatch.setattr(local.LocalExecutor, "_ranges", lambda self, source, task: pooled.append(task[0]) or
                        ranges_of(self, source, task))
    ranges = []
    table_ranges = local.FeatureTable.ranges
    monkeypatch.setattr(local.FeatureTable, "ranges", lambda table, parts: ranges.append(parts) or
                        table_ranges(table, parts))
    size = 1 << 16
    monkeypatch.setattr(local, "CHUNK_BYTES", size)
    planner = local.plan_ranges
    monkeypatch.setattr(local, "plan_ranges", lambda stream, total, _chunk: planner(stream, total, size))
    parallel = sftgate.check(str(train), validation=str(validation), eval_sets=[str(prompts)], workers=2)
    assert ranges == [8, 8, 8]  # prompt band keys of the training file and of the prompts, the n-gram scan
    assert pooled == ["train", "validation"]  # the prompt list is read in the parent
    assert parallel.leakage == serial.leakage
    assert without_volatile(parallel) == without_volatile(serial)


@needs_bench
def test_worker_tasks_start_before_this_process_does_its_own_share(leak_files, monkeypatch):
    # The workers compute while the parent works: the validation file's chunks and the training
    # prompts' band keys are handed out before the training file's duplicate findings are
    # stamped; in the leakage analysis, the scan as soon as the n-gram index is built, before the
    # LSH edges, and LEAK002's verification before the shared n-grams are counted.
    from concurrent.futures import ProcessPoolExecutor

    from sftgate.rules import dedup, leakage

    train, validation, prompts = leak_files
    monkeypatch.setattr(local, "VERIFY_BLOCK", 16)
    monkeypatch.setattr(local, "MAP_MIN_RECORDS", 0)
    monkeypatch.setattr(local, "RUNNING_POOL_BYTES", 0)  # the validation file goes to the workers
    monkeypatch.setattr(local, "CHUNK_BYTES", 1 << 16)  # and so does the training file, in chunks
    planner = local.plan_ranges
    monkeypatch.setattr(local, "plan_ranges", lambda stream, total, _chunk: planner(stream, total, 1 << 16))
    events: list[str] = []
    submit = ProcessPoolExecutor.submit

    def logged_submit(self, fn, *args, **kwargs):
        called, arguments = fn, args
        if isinstance(fn, functools.partial):  # a batch of Executor.map's calls: name the first
            called, arguments = fn.args[0], args[0][0]
        name = getattr(called, "__name__", "")
        if name == "run_blocks":
            name = arguments[1].__name__  # the block function: prompt_band_block or scan_block
        elif name == "_check_range":
            name = f"_check_range {arguments[1]}"  # the split
        events.append(f"submit {name}")
        return submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(ProcessPoolExecutor, "submit", logged_submit)
    for owner, attr in ((leakage, "analyse"), (leakage, "_query_ngrams"), (leakage, "cross_edges"),
                        (leakage, "_shared"), (dedup, "findings")):
        original = getattr(owner, attr)
        monkeypatch.setattr(owner, attr, lambda *a, _f=original, _n=attr, **k: events.append(_n) or _f(*a, **k))
    report = sftgate.check(str(train), validation=str(validation), eval_sets=[str(prompts)], workers=2)
    assert report.leakage is not None and report.leakage["verified_pairs"] > 0
    stamped = events.index("findings")  # the training file's duplicate findings
    assert events.index("submit _check_range validation") < stamped
    assert events.index("submit prompt_band_block") < stamped  # the training prompts' (the eval set is bare prompts)

    def first(event: str) -> int:  # in the leakage analysis (the duplicate analysis verifies edges too)
        return events.index(event, events.index("analyse"))

    assert first("_query_ngrams") < first("submit scan_block")
    assert first("submit scan_block") < first("cross_edges") < first("submit _verify_block") < first("_shared")


@needs_bench
def test_leaks_are_found_in_the_validation_file_and_in_plain_text_prompts(leak_files):
    train, validation, prompts = leak_files
    report = sftgate.check(str(train), validation=str(validation), eval_sets=[str(prompts)], workers=1)
    labels = {json.loads(line)["line"]: json.loads(line) for line in _lines(BENCH / "leakage.labels.jsonl")}
    found = _leaking(report)
    assert set(found["validation"]) == set(labels)
    kinds = {"exact": "LEAK001", "near": "LEAK002", "context_shared": "LEAK003"}
    assert sum(found["validation"][line] == kinds[label["kind"]] for line, label in labels.items()) >= 38
    # The eval set holds the first 100 validation prompts, bare: those whose prompt is a
    # training prompt (exact leaks, and near leaks that only changed the answer) or shares its
    # dialogue leak too.
    assert found["prompts"]
    assert set(found["prompts"]) <= {line for line in labels if line <= 100}
    inputs = {i.path: i.split for i in report.inputs}
    assert inputs[str(prompts)] == "eval"
    # Findings sit on the training copies, which `prepare` drops; the eval and validation files
    # carry none.
    leak_sources = {f.source for f in report.findings if f.code.startswith("LEAK")}
    assert leak_sources == {str(train)}


def test_drop_from_validation_moves_the_finding(tmp_path, write_jsonl, write_rules, oasst):
    records = [json.loads(line) for line in _lines(oasst / "train.jsonl")[:30]]
    train = write_jsonl(tmp_path / "train.jsonl", records)
    val = write_jsonl(tmp_path / "val.jsonl", [records[4], records[20]])
    rules = write_rules(tmp_path / "rules.yaml", "leak:\n  drop_from: validation\n")
    on_train = sftgate.check(str(train), validation=str(val), select=["LEAK001"], workers=1)
    on_val = sftgate.check(str(train), validation=str(val), select=["LEAK001"], rules=str(rules), workers=1)
    assert [(f.source, f.line) for f in on_train.findings] == [(str(train), 5), (str(train), 21)]
    assert [(f.source, f.line, f.related) for f in on_val.findings] == [
        (str(val), 1, f"{train}:5"), (str(val), 2, f"{train}:21")]


def test_an_eval_set_is_not_held_to_the_training_rules(tmp_path, write_jsonl):
    # Bare prompts (no model turn) would break STR rules in a training file; in an eval set they
    # are what the set is. LIM rules (counts, sizes) do not apply either.
    train = write_jsonl(tmp_path / "train.jsonl", [
        {"contents": [{"role": "user", "parts": [{"text": f"Question number {i} about tides?"}]},
                      {"role": "model", "parts": [{"text": f"Answer {i}."}]}]} for i in range(120)])
    bare = write_jsonl(tmp_path / "bench.jsonl", [{"contents": [{"role": "user", "parts": [{"text": "Why?"}]}]}])
    report = sftgate.check(str(train), eval_sets=[str(bare)], workers=1)
    assert [f for f in report.findings if f.source == str(bare)] == []
    assert report.passed


def test_eval_sets_are_named_by_their_stem_and_stay_unique(tmp_path, write_jsonl, oasst):
    records = [json.loads(line) for line in _lines(oasst / "train.jsonl")[:20]]
    train = write_jsonl(tmp_path / "train.jsonl", records)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = write_jsonl(tmp_path / "a" / "mmlu.jsonl", records[:2])
    two = write_jsonl(tmp_path / "b" / "mmlu.jsonl", records[2:3])
    report = sftgate.check(str(train), eval_sets=[str(one), str(two)], workers=1)
    assert [s["name"] for s in report.leakage["sets"]] == ["mmlu", "mmlu-2"]
    assert [s["leaking_records"] for s in report.leakage["sets"]] == [2, 1]


def _chat(prompt: str, answer: str) -> dict:
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]},
                         {"role": "model", "parts": [{"text": answer}]}]}


def _words(rng, n: int) -> str:
    return " ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
                    for _ in range(n))


def test_a_document_copied_many_times_is_not_boilerplate(tmp_path, write_jsonl):
    # A leaked document sits in 15 near-copies of one training example (more than common_in,
    # 10): the copies are one family, so its n-grams still count, for the shared source (LEAK003)
    # and for an eval answer taken from it (LEAK004). An instruction that opens 15 different
    # documents stays boilerplate, and does not make unrelated prompts share a source.
    import random
    rng = random.Random(5)
    doc = _words(rng, 120)
    answer = _words(rng, 40)
    instruction = "Read the passage below carefully and answer the question that follows it in one sentence."
    copies = [_chat(f"{doc}\nWhat is the passage about? [variant {i}]", f"{answer} [variant {i}]") for i in range(15)]
    others = [_chat(f"{instruction}\n{_words(rng, 60)}\nWho is named?", _words(rng, 12)) for _ in range(15)]
    filler = [_chat(_words(rng, 30), _words(rng, 20)) for _ in range(100)]
    train = write_jsonl(tmp_path / "train.jsonl", copies + others + filler)
    val = write_jsonl(tmp_path / "val.jsonl", [
        _chat(f"{doc}\nHow many people does the passage name?", "Two."),
        _chat(f"{instruction}\n{_words(rng, 60)}\nWho is named?", "Nobody."),
        _chat(_words(rng, 40), _words(rng, 10))])
    bench = write_jsonl(tmp_path / "bench.jsonl", [_chat("Summarise the text in a paragraph.", answer)])
    report = sftgate.check(str(train), validation=str(val), eval_sets=[str(bench)], workers=1)
    found = _leaking(report)
    assert found["validation"] == {1: "LEAK003"}
    assert found["bench"] == {1: "LEAK004"}
    leak003 = {f.line for f in report.findings if f.code == "LEAK003"}
    assert leak003 == set(range(1, 16))  # every copy of the document is dropped
    # The families come from the duplicate clusters even when no DUP rule is selected.
    only = sftgate.check(str(train), validation=str(val), eval_sets=[str(bench)], select=["LEAK"], workers=1)
    assert _leaking(only) == found


def test_no_leakage_section_without_other_sets_or_rules(tmp_path, write_jsonl, oasst):
    train = write_jsonl(tmp_path / "train.jsonl", [json.loads(line) for line in _lines(oasst / "train.jsonl")[:20]])
    assert sftgate.check(str(train), workers=1).leakage is None
    assert sftgate.check(str(train), validation=str(train), ignore=["LEAK"], workers=1).leakage is None


# --- the split ---------------------------------------------------------------------------------


@needs_bench
def test_split_keeps_leaking_pairs_together_and_checks_clean(tmp_path):
    # The DEV scenario's training and validation files in one: its 40 leaking pairs (exact,
    # near, shared dialogue) must each land on one side.
    both = tmp_path / "both.jsonl"
    both.write_bytes((BENCH / "train.jsonl").read_bytes() + (BENCH / "validation.jsonl").read_bytes())
    report = sftgate.check(str(both), split_validation=0.2, seed=7, workers=1)
    split = report.split
    assert split is not None and split["leak_check"] == {
        "clean": True, "rounds": 1, "moved_back": 0, "last_round": {"exact": 0, "near": 0, "shared_source": 0}}
    assert split["validation_examples"] == split["target_examples"] == 1100
    assert split["groups_kept_whole"] >= 40
    chosen = set(split["validation_lines"])
    offset = len(_lines(BENCH / "train.jsonl"))
    for line in _lines(BENCH / "leakage.labels.jsonl"):
        label = json.loads(line)
        sides = {label["line"] + offset in chosen} | {t in chosen for t in label["train_lines"]}
        assert len(sides) == 1, label


def test_split_caps_at_the_profile_validation_maximum_and_the_fraction(tmp_path, write_jsonl):
    n = 1000
    path = write_jsonl(tmp_path / "train.jsonl", [
        {"contents": [{"role": "user", "parts": [{"text": f"What is {i} times {i + 7}?"}]},
                      {"role": "model", "parts": [{"text": f"{i} times {i + 7} is {i * (i + 7)}."}]}]}
        for i in range(n)])
    old = sftgate.check(str(path), split_validation=400, profile="gemini-1.5-flash-002", workers=1).split
    assert (old["target_examples"], old["capped_by"]) == (256, "validation maximum")
    assert old["validation_examples"] == 256
    new = sftgate.check(str(path), split_validation=400, workers=1).split
    assert new["target_examples"] == int(0.3 * n) and new["capped_by"] == "max_fraction"
    small = sftgate.check(str(path), split_validation=0.05, workers=1).split
    assert small["target_examples"] == round(0.05 * n) and small["capped_by"] is None


def test_split_is_seeded(tmp_path, write_jsonl, oasst):
    path = write_jsonl(tmp_path / "train.jsonl", [json.loads(line) for line in _lines(oasst / "train.jsonl")])
    a = sftgate.check(str(path), split_validation=0.1, seed=1, workers=1).split
    again = sftgate.check(str(path), split_validation=0.1, seed=1, workers=2).split
    b = sftgate.check(str(path), split_validation=0.1, seed=2, workers=1).split
    assert a == again
    assert a["validation_lines"] != b["validation_lines"]
    assert a["validation_examples"] == b["validation_examples"]


def test_split_with_a_validation_file_is_a_usage_error(tmp_path, write_jsonl, oasst, run_cli):
    path = write_jsonl(tmp_path / "train.jsonl", [json.loads(line) for line in _lines(oasst / "train.jsonl")[:10]])
    with pytest.raises(sftgate.SftgateError, match="split-validation"):
        sftgate.check(str(path), validation=str(path), split_validation=0.1)
    for bad in ("0", "-1", "1.5", "half"):
        result = run_cli("check", path, "--split-validation", bad)
        assert result.returncode == 2 and "split-validation" in result.stderr, bad


def test_stratify_by_label_keeps_label_shares(tmp_path, write_jsonl):
    # 300 classification examples, 80 % "positive" and 20 % "negative": a stratified 10 %
    # validation split holds 24 and 6.
    records = [{"contents": [{"role": "user", "parts": [{"text": f"Review {i}: the {w} was {adj} overall"}]},
                             {"role": "model", "parts": [{"text": label}]}]}
               for i, (w, adj, label) in enumerate(
                   [("food", f"grand{i}", "positive") if i % 5 else ("room", f"dull{i}", "negative")
                    for i in range(300)])]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    split = sftgate.check(str(path), split_validation=0.1, stratify_by="label", workers=1).split
    chosen = split["validation_lines"]
    negatives = sum(1 for line in chosen if (line - 1) % 5 == 0)
    assert len(chosen) == 30 and negatives == 6


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=60), share=st.floats(0.01, 0.5),
       seed=st.integers(0, 2**31), by=st.sampled_from(["cluster", "none"]))
def test_plan_never_separates_a_group(sizes, share, seed, by):
    import numpy as np

    from sftgate.engine.split import cluster_strata

    groups = np.repeat(np.arange(len(sizes), dtype=np.int64) * 7, sizes)
    n = groups.size
    target = max(1, int(share * n))
    strata = cluster_strata(groups) if by == "cluster" else np.zeros(n, dtype=np.int64)
    chosen = plan(groups, strata, SplitRequest(share, by, seed), target)
    for g in np.unique(groups):
        assert len(set(chosen[groups == g].tolist())) == 1
    assert chosen.sum() <= target
    # Singletons alone can always fill the target exactly.
    if sum(1 for s in sizes if s == 1) >= target:
        assert chosen.sum() == target
