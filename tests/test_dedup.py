"""The duplicate rules end to end, through `sftgate.check()`: clusters, survivors, chunking,
records without text, the report's `duplicates` section, and the DEV near-duplicate benchmark."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sftgate
from sftgate.analysis.lsh import probability
from sftgate.engine import local

BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bench"
DROPPING = ("DUP001", "DUP002")

# Open-Assistant en_100_tree (Apache-2.0).
BASES = [
    ("When did the nuclear disaster at Chernobyl happen?",
     ("The Chernobyl nuclear power plant accident happened on April 26, 1986. It was a major nuclear accident "
      "that occurred in Ukraine, then part of the Soviet Union. The explosion at the reactor caused a fire and "
      "released radioactive material into the atmosphere.")),
    ("Who invented the honeycomb?",
     ("Honeycombs are a natural phenomenon. They are formed by bees using their specialized glands. The bees "
      "use the honeycomb to store their honey and pollen.")),
    ("what is the speed of an unladen swallow ?",
     ("The phrase \"unladen swallow\" is a reference to a popular line from the movie \"Monty Python and the "
      "Holy Grail\" and is not a scientifically recognized term. The speed of a swallow is around 17 meters per "
      "second (62 km/h), although this can vary depending on the species of swallow and the conditions.")),
    ("Why did the colony fail in the Roanoke Expedition?",
     ("The colonists failed because they didn’t have enough supplies to survive. They were also unable to get "
      "help from the local Native Americans, who were not friendly to the English.")),
    ("Who are you?",
     ("I am an open-source AI language model trained to assist you and engage in conversation on a variety of "
      "topics.")),
]
BOILERPLATE = " I hope this helps! Let me know if you have any other questions."


def example(question: str, answer: str, *, system: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": question}]},
                                           {"role": "model", "parts": [{"text": answer}]}]}
    if system is not None:
        record["systemInstruction"] = {"parts": [{"text": system}]}
    return record


def media_only(image: str) -> dict[str, Any]:
    """An example with no text at all: an image and a caption image (Vertex AI sample files)."""
    return {"contents": [
        {"role": "user", "parts": [{"fileData": {"mimeType": "image/jpeg",
                                                 "fileUri": f"gs://cloud-samples-data/generative-ai/image/{image}"}}]},
        {"role": "model", "parts": [{"fileData": {"mimeType": "image/jpeg",
                                                  "fileUri": "gs://my-tuning-bucket/captions/caption-card.jpeg"}}]},
    ]}


def dup_findings(report: sftgate.Report) -> list[dict[str, Any]]:
    return [f.to_dict() for f in report.findings if f.code.startswith("DUP")]


def dropped(report: sftgate.Report) -> dict[int, sftgate.Finding]:
    """Line -> its DUP001/DUP002 finding; a line gets at most one."""
    out: dict[int, sftgate.Finding] = {}
    for f in report.findings:
        if f.code in DROPPING:
            assert f.line not in out, f"line {f.line} dropped twice"
            out[f.line] = f
    return out


def line_of(where: str) -> int:
    return int(where.rsplit(":", 1)[1])


# --- survivors -----------------------------------------------------------------------------------


@pytest.fixture
def cluster_file(tmp_path, write_jsonl):
    """Line 1 an answer, line 2 the same with boilerplate appended (the longest), line 3 another
    example, line 4 line 1 again with other spacing and case."""
    question, answer = BASES[3]
    return write_jsonl(tmp_path / "train.jsonl", [
        example(question, answer),
        example(question, answer + BOILERPLATE),
        example(*BASES[1]),
        example(question.upper(), answer.replace(". ", ".  ")),
    ])


def test_survivor_first_keeps_the_earliest(cluster_file):
    report = sftgate.check(str(cluster_file), select=["DUP"], workers=1)
    found = {line: (f.code, f.message, f.related) for line, f in dropped(report).items()}
    assert found == {
        2: ("DUP002", "near-duplicate of line 1 (similarity 1.00)", f"{cluster_file}:1"),
        4: ("DUP001", "exact duplicate of line 1", f"{cluster_file}:1"),
    }
    [cluster] = report.duplicates[0]["listed_clusters"]
    assert cluster["survivor"] == f"{cluster_file}:1" and cluster["size"] == 3
    assert report.duplicates[0]["exact_dropped"] == 1 and report.duplicates[0]["near_dropped"] == 1


def test_survivor_longest_keeps_the_longest(cluster_file, tmp_path, write_rules):
    rules = write_rules(tmp_path / "rules.yaml", "dedup:\n  survivor: longest\n")
    report = sftgate.check(str(cluster_file), rules=str(rules), select=["DUP"], workers=1)
    found = {line: (f.code, f.message, f.related) for line, f in dropped(report).items()}
    # Line 4 is matched on its way to the survivor: through line 1, its exact copy.
    assert found == {
        1: ("DUP002", "near-duplicate of line 2 (similarity 1.00)", f"{cluster_file}:2"),
        4: ("DUP001", "exact duplicate of line 1", f"{cluster_file}:1"),
    }
    [cluster] = report.duplicates[0]["listed_clusters"]
    assert cluster["survivor"] == f"{cluster_file}:2"
    assert report.duplicates[0]["settings"]["survivor"] == "longest"


def test_longest_ties_go_to_the_earliest(tmp_path, write_jsonl, write_rules):
    path = write_jsonl(tmp_path / "train.jsonl", [example(*BASES[2]), example(*BASES[1]), example(*BASES[1])])
    rules = write_rules(tmp_path / "rules.yaml", "dedup:\n  survivor: longest\n")
    report = sftgate.check(str(path), rules=str(rules), select=["DUP001"], workers=1)
    assert [(f.line, f.related) for f in report.findings] == [(3, f"{path}:2")]


SOURCES = "dedup:\n  survivor: source\n  source:\n    field: /meta/source\n    prefer: [human, curated]\n"


def sourced(record: dict[str, Any], source: Any) -> dict[str, Any]:
    return {**record, "meta": {"source": source}}


def test_survivor_source_keeps_the_most_preferred(cluster_file, tmp_path, write_jsonl, write_rules, validate_report):
    # The cluster of lines 1, 2 and 4: line 4 is the only human one, line 2 the only curated one.
    records = [json.loads(line) for line in cluster_file.read_text().splitlines()]
    path = write_jsonl(tmp_path / "sourced.jsonl", [sourced(r, s) for r, s in
                                                    zip(records, ["synthetic", "curated", "human", "human"],
                                                        strict=True)])
    rules = write_rules(tmp_path / "rules.yaml", SOURCES)
    report = sftgate.check(str(path), rules=str(rules), select=["DUP"], workers=1)
    found = {line: (f.code, f.related) for line, f in dropped(report).items()}
    assert found == {1: ("DUP001", f"{path}:4"), 2: ("DUP002", f"{path}:1")}
    [summary] = report.duplicates
    [cluster] = summary["listed_clusters"]
    assert cluster["survivor"] == f"{path}:4" and cluster["survivor_source"] == "human"
    assert summary["settings"]["survivor"] == "source"
    assert summary["settings"]["source"] == {"field": "/meta/source", "prefer": ["human", "curated"], "then": "first"}
    validate_report(json.loads(json.dumps(report.to_dict())))

    # Without a human member the curated one survives; without either, the first.
    path = write_jsonl(tmp_path / "curated.jsonl", [sourced(r, s) for r, s in
                                                    zip(records, ["synthetic", "curated", "human", None],
                                                        strict=True)])
    [cluster] = sftgate.check(str(path), rules=str(rules), select=["DUP"], workers=1).duplicates[0]["listed_clusters"]
    assert (cluster["survivor"], cluster["survivor_source"]) == (f"{path}:2", "curated")
    path = write_jsonl(tmp_path / "none.jsonl", [records[0], sourced(records[1], "web"), *records[2:]])
    [cluster] = sftgate.check(str(path), rules=str(rules), select=["DUP"], workers=1).duplicates[0]["listed_clusters"]
    assert (cluster["survivor"], cluster["survivor_source"]) == (f"{path}:1", None)


def test_survivor_source_then_longest(tmp_path, write_jsonl, write_rules):
    question, answer = BASES[3]
    path = write_jsonl(tmp_path / "train.jsonl", [
        sourced(example(question, answer), "human"),
        sourced(example(question, answer + BOILERPLATE), "synthetic"),  # the longest, not preferred
        sourced(example(question, answer + " Hope this helps."), "human"),  # the longest human one
    ])
    first = sftgate.check(str(path), rules=str(write_rules(tmp_path / "a.yaml", SOURCES)), select=["DUP"], workers=1)
    assert first.duplicates[0]["listed_clusters"][0]["survivor"] == f"{path}:1"
    longest = sftgate.check(str(path), rules=str(write_rules(tmp_path / "b.yaml", SOURCES + "    then: longest\n")),
                            select=["DUP"], workers=1)
    assert longest.duplicates[0]["listed_clusters"][0]["survivor"] == f"{path}:3"
    assert set(dropped(longest)) == {1, 2}


def test_survivor_source_compares_json_values(tmp_path, write_jsonl, write_rules):
    # Numbers, booleans and strings are JSON values: 2 and 2.0 are one value, "2" another; a
    # pointer into a list, and a key with a slash (~1), resolve as RFC 6901 says.
    base = example(*BASES[1])
    path = write_jsonl(tmp_path / "train.jsonl", [
        {**base, "tags": [{"tier/level": "2"}]},
        {**base, "tags": [{"tier/level": 2.0}]},
        {**base, "tags": []},
        {**base, "tags": [{"tier/level": True}]},
    ])
    rules = write_rules(tmp_path / "rules.yaml", "dedup:\n  survivor: source\n  source:\n    field: /tags/0/tier~1level\n"
                                                  "    prefer: [true, 2]\n")
    report = sftgate.check(str(path), rules=str(rules), select=["DUP001"], workers=1)
    [cluster] = report.duplicates[0]["listed_clusters"]
    assert (cluster["survivor"], cluster["survivor_source"]) == (f"{path}:4", True)
    rules = write_rules(tmp_path / "two.yaml", "dedup:\n  survivor: source\n  source:\n    field: /tags/0/tier~1level\n"
                                                "    prefer: [2]\n")
    [cluster] = sftgate.check(str(path), rules=str(rules), select=["DUP001"], workers=1).duplicates[0]["listed_clusters"]
    assert (cluster["survivor"], cluster["survivor_source"]) == (f"{path}:2", 2)


def test_survivor_source_never_keeps_a_record_that_is_dropped_anyway(tmp_path, write_jsonl, write_rules):
    # Line 2 is human but carries a secret (PII006, action drop): the synthetic line 1 survives.
    question, answer = BASES[0]
    secret = answer + " My key is AKIA2OGYBAH6QRLZVXNM."
    path = write_jsonl(tmp_path / "train.jsonl", [sourced(example(question, answer), "synthetic"),
                                                  sourced(example(question, secret), "human")])
    rules = write_rules(tmp_path / "rules.yaml", SOURCES)
    done = sftgate.prepare(str(path), out=str(tmp_path / "out"), rules=str(rules), select=["DUP", "PII006"],
                           workers=1)
    assert {(f.code, f.line) for f in done.report.findings} == {("PII006", 2), ("DUP002", 2)}
    assert done.report.duplicates[0]["listed_clusters"][0]["survivor"] == f"{path}:1"
    kept = (tmp_path / "out" / "train.jsonl").read_text().splitlines()
    assert [json.loads(line)["meta"]["source"] for line in kept] == ["synthetic"]


def test_survivor_source_reads_the_record_as_read(tmp_path, write_jsonl):
    # Alpaca records, converted before the checks: the pointer reads the Alpaca record.
    row = {"instruction": BASES[2][0], "input": "", "output": BASES[2][1]}
    path = write_jsonl(tmp_path / "train.jsonl", [{**row, "origin": "web"}, {**row, "origin": "expert"}])
    report = sftgate.check(str(path), select=["DUP"], workers=1, keep_source="/origin=expert")
    [cluster] = report.duplicates[0]["listed_clusters"]
    assert (cluster["survivor"], cluster["survivor_source"]) == (f"{path}:2", "expert")


@pytest.mark.parametrize(("rules", "message"), [
    ("dedup:\n  survivor: source\n", "/dedup/source/field: survivor `source` needs the JSON pointer"),
    ("dedup:\n  survivor: source\n  source:\n    field: /source\n", "/dedup/source/prefer: survivor `source` needs"),
    ("dedup:\n  survivor: source\n  source:\n    field: source\n    prefer: [a]\n", "/dedup/source/field"),
    ("dedup:\n  source:\n    prefer: [a, a]\n", "/dedup/source/prefer"),
    ("dedup:\n  survivor: best\n", "/dedup/survivor"),
])
def test_survivor_source_settings_are_checked(tmp_path, write_rules, rules, message):
    from sftgate.config import load_profile
    from sftgate.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace("`", ".").replace("/", ".")):
        load_profile(rules_file=write_rules(tmp_path / "rules.yaml", rules))


def test_workers_and_chunks_do_not_change_the_survivors_by_source(tmp_path, oasst, write_jsonl, write_rules,
                                                                  monkeypatch, without_volatile):
    lines = _with_copies(oasst)
    cycle = ["synthetic", "human", None, "curated", "web"]
    records = [sourced(json.loads(line), cycle[i % 5]) for i, line in enumerate(lines)]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    rules = write_rules(tmp_path / "rules.yaml", SOURCES)
    serial = sftgate.check(str(path), rules=str(rules), select=["DUP001", "DUP002"], workers=1)
    rank = {"human": 0, "curated": 1}
    clusters = serial.duplicates[0]["listed_clusters"]
    assert len(clusters) > 10
    for cluster in clusters:
        members = [line_of(cluster["survivor"]), *(line_of(m["record"]) for m in cluster["members"])]
        ranks = [rank.get(records[line - 1]["meta"]["source"], 2) for line in members]
        assert ranks[0] == min(ranks), "a cluster kept a less preferred member"
        assert members[0] == min(m for m, r in zip(members, ranks, strict=True) if r == ranks[0])
    assert any(line_of(c["survivor"]) > min(line_of(m["record"]) for m in c["members"]) for c in clusters)

    chunks = _small_chunks(monkeypatch)
    parallel = sftgate.check(str(path), rules=str(rules), select=["DUP001", "DUP002"], workers=2)
    assert len(chunks) > 20
    assert parallel.duplicates == serial.duplicates
    assert without_volatile(parallel) == without_volatile(serial)


# --- chunking and workers ------------------------------------------------------------------------


def _with_copies(oasst: Path) -> list[bytes]:
    """The shipped OASST sample with exact and edited copies placed far from their originals."""
    lines = (oasst / "train.jsonl").read_bytes().splitlines()[:300]
    out = list(lines)
    for i in range(0, 300, 23):
        record = json.loads(lines[i])
        turns = record["contents"]
        turns[0]["parts"][0]["text"] = "  " + turns[0]["parts"][0]["text"].upper()
        out.append(json.dumps(record, ensure_ascii=False).encode())  # an exact copy, after normalisation
        answer = turns[-1]["parts"][0]["text"]
        turns[-1]["parts"][0]["text"] = answer + BOILERPLATE
        out.insert(len(out) // 2, json.dumps(record, ensure_ascii=False).encode())  # a near copy
    return out


def _small_chunks(monkeypatch) -> list[int]:
    """Make the next check cut its file into 8 KiB chunks and verify candidate pairs in blocks
    of 16 over the workers; returns the list the lines of each merged chunk are appended to."""
    monkeypatch.setattr(local, "VERIFY_BLOCK", 16)  # candidate pairs verified in blocks over the workers
    size = 8192  # `_ranges` never plans chunks under 1 MiB unless plan_ranges is told otherwise
    monkeypatch.setattr(local, "CHUNK_BYTES", size)
    plan = local.plan_ranges
    monkeypatch.setattr(local, "plan_ranges", lambda stream, total, _chunk: plan(stream, total, size))
    chunks: list[int] = []  # lines per chunk the parent merges
    merge = local.ChunkResult.merge

    def counting_merge(result: local.ChunkResult, chunk: local.ChunkResult, cap: int) -> None:
        chunks.append(chunk.lines)
        merge(result, chunk, cap)

    monkeypatch.setattr(local.ChunkResult, "merge", counting_merge)
    return chunks


def test_workers_and_chunks_do_not_change_the_duplicates(tmp_path, oasst, write_jsonl, write_rules, monkeypatch,
                                                         without_volatile):
    path = write_jsonl(tmp_path / "train.jsonl", _with_copies(oasst))
    rules = write_rules(tmp_path / "rules.yaml", "dedup:\n  prompt_repeats: 3\n")
    serial = sftgate.check(str(path), rules=str(rules), select=["DUP"], workers=1)
    assert {f.code for f in serial.findings} == {"DUP001", "DUP002", "DUP003", "DUP004"}
    assert serial.duplicates[0]["candidate_pairs"] > 4 * 16

    chunks = _small_chunks(monkeypatch)
    parallel = sftgate.check(str(path), rules=str(rules), select=["DUP"], workers=2)
    assert len(chunks) > 20 and sum(chunks) == parallel.inputs[0].lines

    assert dup_findings(parallel) == dup_findings(serial)
    assert parallel.duplicates == serial.duplicates
    assert without_volatile(parallel) == without_volatile(serial)


# --- invariants on random data -------------------------------------------------------------------


def _edit(kind: str, question: str, answer: str, k: int) -> tuple[str, str, str | None]:
    words = answer.split(" ")
    i = k % len(words)
    if kind == "case":
        return question.upper(), answer, None
    if kind == "space":
        return question, answer.replace(" ", "  ", 3), None
    if kind == "typo" and len(words[i]) > 1:
        w = words[i]
        words[i] = w[1] + w[0] + w[2:]
        return question, " ".join(words), None
    if kind == "word":
        words[i] = ("indeed", "reportedly", "Vesuvius", "42")[k % 4]
        return question, " ".join(words), None
    if kind == "boilerplate":
        return question, answer + BOILERPLATE, None
    if kind == "truncate":
        return question, answer[: answer.rfind(". ") + 1] or answer, None
    if kind == "system":
        return question, answer, "Answer in plain English."
    return question, answer, None


EDITS = ("case", "space", "typo", "word", "boilerplate", "truncate", "system")

datasets = st.lists(
    st.tuples(st.integers(0, len(BASES) - 1), st.lists(st.sampled_from(EDITS), max_size=2), st.integers(0, 60)),
    min_size=2, max_size=14,
)


def _build(spec: list[tuple[int, list[str], int]]) -> list[dict[str, Any]]:
    records = []
    for base, edits, k in spec:
        question, answer = BASES[base]
        system = None
        for kind in edits:
            question, answer, added = _edit(kind, question, answer, k)
            system = system or added
        records.append(example(question, answer, system=system))
    return records


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=datasets, policy=st.sampled_from(["first", "longest"]))
def test_every_cluster_keeps_exactly_one_member(spec, policy, tmp_path, write_jsonl, write_rules):
    records = _build(spec)
    path = write_jsonl(tmp_path / "train.jsonl", records)
    rules = write_rules(tmp_path / "rules.yaml", f"dedup:\n  survivor: {policy}\n")
    report = sftgate.check(str(path), rules=str(rules), select=["DUP001", "DUP002"], workers=1)
    gone = dropped(report)
    n = len(records)
    [summary] = report.duplicates

    for line, f in gone.items():
        assert f.related is not None and f.related.startswith(f"{path}:")
        assert 1 <= line_of(f.related) <= n and line_of(f.related) != line
        if f.code == "DUP001":
            assert f.similarity == 1.0
        else:
            assert summary["settings"]["similarity"] <= f.similarity <= 1.0
    # Following `related` from a dropped record always ends at a kept one.
    for line in gone:
        seen = {line}
        while line in gone:
            line = line_of(gone[line].related)
            assert line not in seen, "related records form a cycle"
            seen.add(line)

    assert summary["records"] == n and summary["clusters"] == len(summary["listed_clusters"])
    members: set[int] = set()
    for cluster in summary["listed_clusters"]:
        survivor = line_of(cluster["survivor"])
        lines = [line_of(m["record"]) for m in cluster["members"]]
        assert cluster["size"] == len(lines) + 1 == len({survivor, *lines})
        assert survivor not in gone, "a cluster lost every member"
        assert set(lines) <= set(gone)
        assert {line_of(m["matched"]) for m in cluster["members"]} <= {survivor, *lines}
        members.update(lines)
    assert members == set(gone)
    assert summary["exact_dropped"] == sum(f.code == "DUP001" for f in gone.values())
    assert summary["near_dropped"] == sum(f.code == "DUP002" for f in gone.values())

    # Identical records: all but one are dropped.
    copies: dict[str, list[int]] = defaultdict(list)
    for line, record in enumerate(records, start=1):
        copies[json.dumps(record, sort_keys=True)].append(line)
    for lines in copies.values():
        assert sum(line not in gone for line in lines) <= 1


# --- records without text ------------------------------------------------------------------------


def test_records_without_tokens_are_compared_exactly(tmp_path, write_jsonl):
    # Emoji are no tokens: these examples have no text to shingle.
    path = write_jsonl(tmp_path / "train.jsonl", [
        example("🐝🍯", "👍"),
        example(*BASES[1]),
        example("🐝🍯", "👍"),
        example("🐝🍯", "👎"),
        example("🐝🍯", "👍"),
    ])
    report = sftgate.check(str(path), select=["DUP001", "DUP002"], workers=1)
    assert [(f.code, f.line, f.related) for f in report.findings] == [
        ("DUP001", 3, f"{path}:1"), ("DUP001", 5, f"{path}:1")]
    summary = report.duplicates[0]
    assert summary["records_without_text"] == 4
    assert summary["candidate_pairs"] == 0


def test_media_only_records_are_compared_exactly(tmp_path, write_jsonl):
    path = write_jsonl(tmp_path / "train.jsonl", [
        media_only("scones.jpg"), example(*BASES[1]), media_only("scones.jpg"), media_only("croissant.jpeg"),
    ])
    report = sftgate.check(str(path), select=["DUP001", "DUP002"], workers=1)
    summary = report.duplicates[0]
    assert [(f.code, f.line) for f in report.findings] == [("DUP001", 3)]
    assert summary["records_without_text"] == 3


def test_same_question_about_different_images_is_not_a_near_duplicate(tmp_path, write_jsonl):
    def about(image: str) -> dict[str, Any]:
        record = example("Is there a cat in this image?", "Yes")
        record["contents"][0]["parts"].insert(
            0, {"fileData": {"mimeType": "image/jpeg", "fileUri": f"gs://my-tuning-bucket/images/{image}"}})
        return record

    path = write_jsonl(tmp_path / "train.jsonl", [about("cat-0001.jpg"), about("cat-0002.jpg")])
    report = sftgate.check(str(path), select=["DUP002"], workers=1)
    assert report.findings == []


def test_turn_boundaries_are_part_of_the_prompt(tmp_path, write_jsonl, write_rules):
    two_turns = example("Translate to French: hello", "bonjour")
    two_turns["contents"] += [{"role": "user", "parts": [{"text": "Now in German"}]},
                              {"role": "model", "parts": [{"text": "hallo"}]}]
    one_turn = example("Translate to French: hello model bonjour user Now in German", "guten Tag")
    path = write_jsonl(tmp_path / "train.jsonl", [two_turns, one_turn])
    rules = write_rules(tmp_path / "rules.yaml", "dedup:\n  prompt_repeats: 1\n")
    report = sftgate.check(str(path), rules=str(rules), select=["DUP003", "DUP004"], workers=1)
    assert report.findings == []


# --- the report ----------------------------------------------------------------------------------


def test_report_settings_and_detection_curve(cluster_file):
    report = sftgate.check(str(cluster_file), select=["DUP"], workers=1)
    [summary] = report.duplicates
    assert summary["source"] == str(cluster_file) and summary["split"] == "train" and summary["records"] == 4
    settings_ = summary["settings"]
    curve = settings_["detection_curve"]
    assert list(curve) == ["0.5", "0.7", "0.8", "0.9"]
    bands, rows = settings_["bands"], settings_["rows"]
    assert bands * rows <= settings_["num_perm"]
    assert curve == {s: round(probability(float(s), bands, rows), 4) for s in curve}
    assert list(curve.values()) == sorted(curve.values())
    assert json.loads(json.dumps(report.to_dict()))["duplicates"] == report.duplicates


def test_each_file_is_deduplicated_on_its_own(tmp_path, write_jsonl):
    train = write_jsonl(tmp_path / "train.jsonl", [example(*BASES[0]), example(*BASES[1])])
    validation = write_jsonl(tmp_path / "validation.jsonl", [example(*BASES[1]), example(*BASES[1])])
    report = sftgate.check(str(train), validation=str(validation), select=["DUP"], workers=1)
    assert [(f.source, f.line, f.related) for f in report.findings] == [
        (str(validation), 2, f"{validation}:1")]
    assert [(d["source"], d["split"], d["records"]) for d in report.duplicates] == [
        (str(train), "train", 2), (str(validation), "validation", 2)]


def test_no_duplicates_section_without_dup_rules(cluster_file):
    report = sftgate.check(str(cluster_file), select=["STR"], workers=1)
    assert report.duplicates == []
    assert "DUP001" not in report.counts_by_code()


# --- the DEV benchmark ---------------------------------------------------------------------------


@pytest.mark.slow
def test_near_duplicate_benchmark_floor(tmp_path, write_rules):
    if not (BENCH / "neardup.jsonl").is_file():
        pytest.skip(f"the DEV benchmark is not present at {BENCH}")
    rules = write_rules(tmp_path / "rules.yaml", "report:\n  max_findings_per_rule: 100000\n")
    report = sftgate.check(str(BENCH / "neardup.jsonl"), rules=str(rules), select=list(DROPPING))
    assert sum(r.count for r in report.rules) == sum(r.listed for r in report.rules), "findings were capped"
    removed = set(dropped(report))

    labels = [json.loads(line) for line in (BENCH / "neardup.labels.jsonl").read_text(encoding="utf-8").splitlines()]
    group_of = {label["line"]: label["group"] for label in labels}
    groups: dict[str, list[int]] = defaultdict(list)
    for label in labels:
        groups[label["group"]].append(label["line"])
    kept = {g for g, lines in groups.items() if any(line not in removed for line in lines)}
    right = sum(group_of[line] in kept for line in removed)
    precision = right / len(removed)
    recall = right / sum(len(lines) - 1 for lines in groups.values())
    negatives = [label["line"] for label in labels if label["kind"] in ("short_label_negative", "template_negative")]
    negatives_removed = sum(line in removed for line in negatives) / len(negatives)

    assert recall >= 0.97, (recall, precision, negatives_removed)
    assert precision >= 0.99, (recall, precision, negatives_removed)
    assert negatives_removed <= 0.02, (recall, precision, negatives_removed)


def test_a_subset_of_a_feature_table_knows_its_columns(oasst):
    from sftgate.config import load_profile
    from sftgate.engine.features import DedupSettings, FeatureBuilder, FeatureTable, SubsetTable
    from sftgate.formats import to_example
    from sftgate.model import Origin

    builder = FeatureBuilder(DedupSettings.from_profile(load_profile("gemini-2.5-flash").dedup))
    for i, line in enumerate((oasst / "train.jsonl").read_text(encoding="utf-8").splitlines()[:5]):
        builder.add(to_example(json.loads(line), Origin("t", i + 1, 0, len(line))))
    table = FeatureTable()
    table.append(builder.finish())
    try:
        subset = SubsetTable(table, np.array([1, 3]))
        assert subset.has("exact") and not subset.has("user_turns")  # skew columns were not collected
        assert subset.column("exact").size == 2
    finally:
        table.close()


# --- verifying only what clustering needs ----------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 40), data=st.data(), block=st.sampled_from([1, 3, 1 << 15]))
def test_skipping_redundant_pairs_keeps_the_clusters(n, data, block, monkeypatch):
    # Verification stops at pairs whose records verified pairs have already joined: the clusters
    # (connected components of the verified pairs) must be those of verifying every pair.
    from sftgate.analysis.unionfind import components
    from sftgate.rules import dedup

    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
                               .filter(lambda p: p[0] < p[1]), unique=True, max_size=3 * n))
    edges = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    truth = {p: data.draw(st.booleans()) for p in pairs}
    asked: list[tuple[int, int]] = []

    def verify(block_edges, tokens, verification):
        asked.extend(map(tuple, block_edges.tolist()))
        return np.array([0.9 if truth[tuple(e)] else np.nan for e in block_edges.tolist()])

    monkeypatch.setattr(dedup, "SPANNING_BLOCK", block)
    found, scores, skipped = dedup.verify_spanning(edges, n, None, None, verify)  # type: ignore[arg-type]
    everything = np.array([p for p in pairs if truth[p]], dtype=np.int64).reshape(-1, 2)
    assert np.array_equal(components(n, found), components(n, everything))
    assert len(asked) == len(set(asked)) == len(pairs) - skipped
    assert sorted(map(tuple, found.tolist())) == sorted(p for p in asked if truth[p])
    assert np.all(scores == 0.9)
    # A skipped pair is never one that would have joined two clusters.
    labels = components(n, found)
    for p in set(pairs) - set(asked):
        assert labels[p[0]] == labels[p[1]]


def test_duplicate_copies_are_verified_about_once_each(tmp_path, write_jsonl):
    # Twelve copies of one example with a typo each: every copy is a candidate of every other
    # (66 pairs), but eleven verified pairs already make the cluster.
    question, answer = BASES[0]
    words = answer.split()
    records = []
    for k in range(12):
        edited = list(words)
        edited[3 + 2 * k] = edited[3 + 2 * k] + "x"
        records.append(example(question, " ".join(edited)))
    path = write_jsonl(tmp_path / "copies.jsonl", records)
    [summary] = sftgate.check(str(path), select=["DUP002"], workers=1).duplicates
    assert summary["near_dropped"] == 11 and summary["clusters"] == 1
    assert summary["candidate_pairs"] > 11
    assert summary["verified_pairs"] == 11
    assert summary["skipped_pairs"] == summary["candidate_pairs"] - 11


# --- the cluster walk ------------------------------------------------------------------------------


def reference_clusters(n, exact_edges, near_edges, near_scores, policy, total_tokens, eligible, rank=None):
    """Clusters as a plain breadth-first walk over Python dicts: survivor (first or longest of
    the eligible members, else of all), each member matched to the neighbour it was reached
    from, preferring exact edges, then the most similar, then the earliest record."""
    from collections import deque

    adjacent: dict[int, list] = defaultdict(list)
    for (u, v), exact, score in [(e, True, 1.0) for e in exact_edges.tolist()] + \
            [(e, False, s) for e, s in zip(near_edges.tolist(), near_scores.tolist(), strict=True)]:
        adjacent[u].append((not exact, -score, v, score, exact))
        adjacent[v].append((not exact, -score, u, score, exact))
    seen_all, clusters = set(), []
    for start in sorted(adjacent):
        if start in seen_all:
            continue
        members, queue = {start}, deque([start])
        while queue:
            for *_, other, _, _ in adjacent[queue.popleft()]:
                if other not in members:
                    members.add(other)
                    queue.append(other)
        seen_all |= members
        members = sorted(members)
        pool = [m for m in members if eligible[m]] or members
        if rank is not None:
            pool = [m for m in pool if rank[m] == min(rank[p] for p in pool)]
        survivor = max(pool, key=lambda r: (int(total_tokens[r]), -r)) if policy == "longest" else pool[0]
        matched, queue, seen = {}, deque([survivor]), {survivor}
        while queue:
            node = queue.popleft()
            for _, _, other, score, exact in sorted(adjacent[node]):
                if other not in seen:
                    seen.add(other)
                    matched[other] = (node, score, "DUP001" if exact else "DUP002")
                    queue.append(other)
        clusters.append((survivor, [(m, *matched[m]) for m in members if m != survivor]))
    return clusters


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 30), data=st.data(), policy=st.sampled_from(["first", "longest"]), ranked=st.booleans())
def test_the_cluster_walk_matches_a_plain_breadth_first_walk(n, data, policy, ranked):
    from sftgate.rules.dedup import DuplicateAnalysis, _cluster

    pair = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] < p[1])
    exact = sorted(data.draw(st.lists(pair, unique=True, max_size=n)))
    near = sorted(set(data.draw(st.lists(pair, unique=True, max_size=2 * n))) - set(exact))
    scores = np.array(data.draw(st.lists(st.sampled_from([0.86, 0.9, 0.95, 1.0]), min_size=len(near),
                                         max_size=len(near))), dtype=np.float64)
    tokens = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int64)
    eligible = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    exact_edges = np.array(exact, dtype=np.int64).reshape(-1, 2)
    near_edges = np.array(near, dtype=np.int64).reshape(-1, 2)
    out = DuplicateAnalysis(source="t", lines=np.arange(1, n + 1), records=n, without_text=0)
    rank = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), dtype=np.int32) if ranked else None
    _cluster(out, n, exact_edges, near_edges, scores, policy, tokens, eligible, rank)
    want = reference_clusters(n, exact_edges, near_edges, scores, policy, tokens, eligible, rank)
    assert [(c.survivor, c.members) for c in out.clusters] == want
    largest = sorted(want, key=lambda c: (-len(c[1]), c[0]))[:3]  # what the report lists: largest, then first
    assert [(c.survivor, c.members) for c in out.largest(3)] == largest and out.cluster_count == len(want)
    assert sorted(map(tuple, out.matched.tolist())) == sorted((m[0], m[1]) for _, members in want for m in members)
    assert out.exact_dropped == sum(m[3] == "DUP001" for _, members in want for m in members)
    assert out.near_dropped == sum(m[3] == "DUP002" for _, members in want for m in members)


@pytest.mark.parametrize("batch", [2, 1 << 16])
def test_a_capped_report_lists_the_first_findings_of_the_uncapped_one(tmp_path, oasst, write_jsonl, write_rules,
                                                                      monkeypatch, batch):
    # Dataset findings beyond what the report lists are not kept (a file of near duplicates has
    # one per record): what is listed must still be the first in report order, and counted.
    from sftgate.engine import run

    monkeypatch.setattr(run, "_ADD_BATCH", batch)
    path = write_jsonl(tmp_path / "train.jsonl", _with_copies(oasst))
    full = sftgate.check(str(path), select=["DUP"], workers=1,
                         rules=str(write_rules(tmp_path / "all.yaml", "report:\n  max_findings_per_rule: 100000\n")))
    capped = sftgate.check(str(path), select=["DUP"], workers=1,
                           rules=str(write_rules(tmp_path / "cap.yaml", "report:\n  max_findings_per_rule: 3\n")))
    for code in ("DUP001", "DUP002"):
        everything = [f for f in full.findings if f.code == code]
        assert len(everything) > 3
        assert [f for f in capped.findings if f.code == code] == everything[:3]
    assert {r.code: r.count for r in capped.rules} == {r.code: r.count for r in full.rules}


def test_keep_source_on_the_command_line(cluster_file, tmp_path, write_jsonl, run_cli, assert_usage_error):
    records = [json.loads(line) for line in cluster_file.read_text().splitlines()]
    path = write_jsonl(tmp_path / "sourced.jsonl", [{**r, "source": s} for r, s in
                                                    zip(records, ["web", "web", "web", "expert"], strict=True)])
    result = run_cli("prepare", str(path), "--out", str(tmp_path / "out"), "--select", "DUP",
                     "--keep-source", "/source=expert", "--workers", "1", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    kept = [json.loads(line)["source"] for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert kept == ["web", "expert"]  # line 3, and line 4 for the cluster of lines 1, 2 and 4
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["duplicates"][0]["listed_clusters"][0]["survivor"].endswith(":4")
    for bad in ("source=expert", "/source=", "/source=a,a"):
        assert_usage_error(run_cli("check", str(path), "--keep-source", bad, cwd=tmp_path), "--keep-source")
