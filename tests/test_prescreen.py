"""The validation pass's pre-screen (`rules.structure.plain_and_clean`): a record it accepts
would get no finding from the rules it answers for, so skipping the Example loses nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sftgate
from sftgate.config import load_profile
from sftgate.engine import passes
from sftgate.engine.passes import Checker
from sftgate.formats import to_example
from sftgate.model import Origin
from sftgate.rules import RuleContext
from sftgate.rules.schema import example_validator
from sftgate.rules.structure import PLAIN_RULES, plain_and_clean

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "oasst" / "train.jsonl"
VALIDATION = ["FMT", "SCH", "STR", "LIM"]

texts = st.sampled_from(["", " ", "\n\t", "\u3000", "x", "Hello there.", "\u00a0ok"])
parts = st.one_of(
    texts.map(lambda t: {"text": t}),
    texts.map(lambda t: {"text": t, "thought": True}),
    st.just({"fileData": {"mimeType": "image/png", "fileUri": "gs://b/cat.png"}}),
    st.just({"inlineData": {"mimeType": "image/png", "data": "AAAA"}}),
    st.just({"functionCall": {"name": "f", "args": {}}}),
    st.just({"functionResponse": {"name": "f", "response": {}}}),
    st.just({"thought": True}),
)
roles = st.sampled_from(["user", "model", "user", "model", None, "assistant", "Model", "system"])


@st.composite
def records(draw: st.DrawFn) -> dict:
    contents = []
    for _ in range(draw(st.integers(1, 5))):
        turn: dict = {"parts": draw(st.lists(parts, min_size=1, max_size=3))}
        role = draw(roles)
        if role is not None:
            turn["role"] = role
        contents.append(turn)
    record: dict = {"contents": contents}
    system = draw(st.sampled_from([None, "systemInstruction", "system_instruction"]))
    if system is not None:
        record[system] = {"parts": draw(st.lists(texts.map(lambda t: {"text": t}), min_size=1, max_size=2))}
    if draw(st.booleans()) and draw(st.booleans()):
        record["tools"] = [{"functionDeclarations": [{"name": "f", "description": "d"}]}]
    return record


def _plain_record(turns: int = 2) -> dict:
    roles_ = ["user", "model"] * turns
    return {"contents": [{"role": r, "parts": [{"text": f"turn {i}"}]} for i, r in enumerate(roles_)]}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_an_accepted_record_gets_no_finding_from_the_rules_it_answers_for(record: dict) -> None:
    if not example_validator().is_valid(record) or not plain_and_clean(record):
        return
    example = to_example(record, Origin("t.jsonl", 1, 0, 10))
    assert example.shape == frozenset({"text"})
    ctx = RuleContext(profile=load_profile("gemini-2.5-flash"), split="train")
    found = [f for rule in PLAIN_RULES for f in rule().check(example, ctx)]
    assert found == []


@pytest.mark.parametrize("change", [
    lambda r: r["contents"][1].pop("role"),
    lambda r: r["contents"][1].update(role="assistant"),
    lambda r: r["contents"].pop(),  # last turn user
    lambda r: r["contents"][0].update(role="model"),  # model twice in a row
    lambda r: r["contents"][1]["parts"].append({"text": " "}),
    lambda r: r["contents"][0]["parts"].append({"fileData": {"mimeType": "image/png", "fileUri": "gs://b/x"}}),
    lambda r: r["contents"][0]["parts"][0].update(thought=True),
    lambda r: r.update(tools=[{"functionDeclarations": [{"name": "f"}]}]),
    lambda r: r.update(systemInstruction={"parts": [{"text": ""}]}),
])
def test_anything_a_rule_could_flag_takes_the_full_path(change) -> None:
    record = _plain_record()
    assert plain_and_clean(record)
    change(record)
    assert not plain_and_clean(record)


def test_the_prescreen_is_used_only_when_nothing_else_reads_the_example() -> None:
    validation = load_profile("gemini-2.5-flash", select=VALIDATION)
    assert Checker(validation, "train", features=False, token_sample=None).prescreen
    assert not Checker(validation, "train", features=True, token_sample=None).prescreen
    assert not Checker(validation, "train", features=False, token_sample=1.0).prescreen
    # Content rules read every text example: no pre-screen.
    assert not Checker(load_profile("gemini-2.5-flash"), "train", features=False, token_sample=None).prescreen


def test_a_validation_run_reports_the_same_with_and_without_the_prescreen(tmp_path: Path, monkeypatch) -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:200]
    broken = [_plain_record(1), _plain_record(2)]
    broken[0]["contents"][1]["role"] = "assistant"
    broken[1]["contents"][2]["parts"][0]["text"] = "  "
    mixed = lines[:100] + [json.dumps(r) for r in broken] + [
        json.dumps({"systemInstruction": {"parts": [{"text": "Be brief."}]}, **_plain_record(1),
                    "generationConfig": {"mediaResolution": "MEDIA_RESOLUTION_LOW"}})] + lines[100:]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(mixed) + "\n", encoding="utf-8")

    def report() -> dict:
        out = sftgate.check(path, select=VALIDATION, workers=1).to_dict()
        out.pop("duration_s", None)
        out.pop("started_at", None)  # the two runs may start in different seconds
        return out

    fast = report()
    accepted = sum(plain_and_clean(json.loads(line)) for line in mixed)
    assert accepted >= 0.8 * len(mixed)  # the pre-screen does take most real records
    monkeypatch.setattr(passes, "plain_and_clean", lambda obj: False)
    assert report() == fast
    codes = {f["code"] for f in fast["findings"]}
    assert {"STR001", "STR005", "STR014"} <= codes
