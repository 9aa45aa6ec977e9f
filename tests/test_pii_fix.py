"""PII rules through `sftgate.prepare`: the fix writes redacted records to the training shard, a
secret drops its record by default, the fix reads the profile's `pii` options as the check does,
and the rules' `fix` on a parsed record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

import sftgate
from sftgate.rules.base import RuleContext
from sftgate.rules.pii import EmailAddress, ExposedSecret, PhoneNumber

AWS_KEY_ID = "AKIA2OGYBAH6QRLZVXNM"


def _record(user: str, model: str, system: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": user}]},
                                           {"role": "model", "parts": [{"text": model}]}]}
    if system is not None:
        record["systemInstruction"] = {"parts": [{"text": system}]}
    return record


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _profile(tmp_path: Path, rules: dict[str, Any], **sections: Any) -> Path:
    path = tmp_path / "rules.yaml"
    data = {"extends": "gemini-2.5-flash", "rules": rules, **sections}
    path.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
    return path


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


RECORDS = [
    _record("What's the capital of France?", "Paris."),
    _record("What's your email address?", "It's mark889@gmail.com, or call (415) 867-5309.",
            system="Escalate to sabita@ifi.uio.no."),
    _record("Write to user@example.com", "Done: user@example.com is a documentation address."),
]


def test_fix_writes_the_redacted_record_to_the_training_shard(tmp_path: Path) -> None:
    src = _write(tmp_path / "train.jsonl", RECORDS)
    out = tmp_path / "out"
    done = sftgate.prepare(src, out=out, rules=_profile(tmp_path, {"PII001": {"action": "fix"}}),
                           select=["PII"], workers=1)
    kept = _jsonl(out / "train.jsonl")
    assert len(kept) == 3
    assert kept[0] == RECORDS[0] and kept[2] == RECORDS[2]
    assert kept[1] == {
        "systemInstruction": {"parts": [{"text": "Escalate to [EMAIL]."}]},
        "contents": [{"role": "user", "parts": [{"text": "What's your email address?"}]},
                     {"role": "model", "parts": [{"text": "It's [EMAIL], or call (415) 867-5309."}]}]}
    assert not (out / "quarantine.jsonl").exists() or _jsonl(out / "quarantine.jsonl") == []
    assert done.manifest["counts"]["fixed_by_rule"] == {"PII001": 1}
    # The written shard is clean for the fixed rule; the phone (flag) is still reported.
    after = sftgate.check(out / "train.jsonl", select=["PII001", "PII002"])
    assert [(f.code, f.line) for f in after.findings] == [("PII002", 2)]


def test_every_rule_fixes_its_own_kinds(tmp_path: Path) -> None:
    src = _write(tmp_path / "train.jsonl", RECORDS)
    out = tmp_path / "out"
    rules = {code: {"action": "fix"} for code in ("PII001", "PII002")}
    sftgate.prepare(src, out=out, rules=_profile(tmp_path, rules), select=["PII"], workers=1)
    kept = _jsonl(out / "train.jsonl")
    assert kept[1]["contents"][1]["parts"][0]["text"] == "It's [EMAIL], or call [PHONE]."


def test_a_secret_drops_its_record_by_default(tmp_path: Path) -> None:
    leaked = _record("Why does boto3 fail?", f"Your key {AWS_KEY_ID} was revoked.")
    src = _write(tmp_path / "train.jsonl", [RECORDS[0], leaked])
    out = tmp_path / "out"
    sftgate.prepare(src, out=out, select=["PII"], workers=1)
    assert _jsonl(out / "train.jsonl") == [RECORDS[0]]
    quarantine = _jsonl(out / "quarantine.jsonl")
    assert [(q["line"], q["codes"]) for q in quarantine] == [(2, ["PII006"])]
    assert AWS_KEY_ID not in quarantine[0]["reasons"][0]["message"]  # the message masks it: AKIA…VXNM
    assert "AKIA…VXNM" in quarantine[0]["reasons"][0]["message"]


def test_a_secret_with_action_fix_is_redacted(tmp_path: Path) -> None:
    leaked = _record("Why does boto3 fail?", f"Your key {AWS_KEY_ID} was revoked.")
    src = _write(tmp_path / "train.jsonl", [leaked])
    out = tmp_path / "out"
    sftgate.prepare(src, out=out, rules=_profile(tmp_path, {"PII006": {"action": "fix"}}), select=["PII"], workers=1)
    assert _jsonl(out / "train.jsonl")[0]["contents"][1]["parts"][0]["text"] == "Your key [AWS_ACCESS_KEY] was revoked."


def _answers(path: Path) -> list[str]:
    return [r["contents"][1]["parts"][0]["text"] for r in _jsonl(path)]


def test_fix_keeps_addresses_at_allowed_domains(tmp_path: Path) -> None:
    answer = "Write to help@acme.com or billing@eu.acme.com; escalations go to jane.doe@gmail.com."
    src = _write(tmp_path / "train.jsonl", [_record("Who handles refunds?", answer)])
    out = tmp_path / "out"
    rules = _profile(tmp_path, {"PII001": {"action": "fix"}}, pii={"allow_domains": ["acme.com"]})
    done = sftgate.prepare(src, out=out, rules=rules, select=["PII"], workers=1)
    assert _answers(out / "train.jsonl") == [
        "Write to help@acme.com or billing@eu.acme.com; escalations go to [EMAIL]."]
    assert done.manifest["counts"]["fixed_by_rule"] == {"PII001": 1}


def test_fix_redacts_secrets_at_the_profile_entropy(tmp_path: Path) -> None:
    # Entropy 2.6 bits per character: a secret at the profile's 2.0, not at the default 3.5.
    low = 'api_key = "q7Rm2Kq7Rm2Kq7Rm2Kq7"'
    src = _write(tmp_path / "train.jsonl", [_record("Why is my request refused?", f"You sent {low}.")])
    out = tmp_path / "out"
    rules = _profile(tmp_path, {"PII006": {"action": "fix"}}, pii={"generic_secret_min_entropy": 2.0})
    done = sftgate.prepare(src, out=out, rules=rules, select=["PII"], workers=1)
    assert _answers(out / "train.jsonl") == ['You sent api_key = "[SECRET]".']
    assert done.manifest["counts"]["fixed_by_rule"] == {"PII006": 1}
    assert done.manifest["counts"]["quarantined"] == 0


def test_fix_keeps_values_below_the_profile_entropy(tmp_path: Path) -> None:
    # Entropy 4.6: a secret at the default 3.5, not at the profile's 5.0; the AWS key is one at any.
    answer = f'Your key {AWS_KEY_ID} was revoked; keep api_key = "Zx8Vn4Lw2Qt6Ry1Mk5Pb9Hc3".'
    src = _write(tmp_path / "train.jsonl", [_record("Why does boto3 fail?", answer)])
    out = tmp_path / "out"
    rules = _profile(tmp_path, {"PII006": {"action": "fix"}}, pii={"generic_secret_min_entropy": 5.0})
    sftgate.prepare(src, out=out, rules=rules, select=["PII"], workers=1)
    assert _answers(out / "train.jsonl") == [
        'Your key [AWS_ACCESS_KEY] was revoked; keep api_key = "Zx8Vn4Lw2Qt6Ry1Mk5Pb9Hc3".']


def test_fix_on_a_parsed_record_reads_the_context_profile(tmp_path: Path) -> None:
    allowing = sftgate.load_profile(rules_file=_profile(tmp_path, {}, pii={"allow_domains": ["@Acme.com"]}))
    obj = _record("Who handles refunds?", "Write to help@acme.com or jane.doe@gmail.com.")
    assert EmailAddress().fix(obj, RuleContext(profile=allowing)) is True
    assert obj["contents"][1]["parts"][0]["text"] == "Write to help@acme.com or [EMAIL]."
    assert EmailAddress().fix(obj, RuleContext(profile=sftgate.load_profile())) is True
    assert obj["contents"][1]["parts"][0]["text"] == "Write to [EMAIL] or [EMAIL]."


def test_fix_on_a_parsed_record_covers_function_parts() -> None:
    obj = {"contents": [
        {"role": "user", "parts": [{"text": "Who ordered #1042? Call me at +44 20 7946 0958"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_order", "args": {"id": 1042, "cc": "jane@gmail.com"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_order", "response": {
            "customer": {"emails": ["emma.watson@gmail.com", "help@example.com"], "phone": "(415) 867-5309"}}}}]},
        {"role": "model", "parts": [{"text": "Emma (emma.watson@gmail.com) ordered it."}]}]}
    ctx = RuleContext(profile=sftgate.load_profile())
    assert EmailAddress().fix(obj, ctx) is True
    assert obj["contents"][0]["parts"][0]["text"] == "Who ordered #1042? Call me at +44 20 7946 0958"
    assert obj["contents"][1]["parts"][0]["functionCall"]["args"] == {"id": 1042, "cc": "[EMAIL]"}
    assert obj["contents"][2]["parts"][0]["functionResponse"]["response"] == {
        "customer": {"emails": ["[EMAIL]", "help@example.com"], "phone": "(415) 867-5309"}}
    assert obj["contents"][3]["parts"][0]["text"] == "Emma ([EMAIL]) ordered it."
    assert PhoneNumber().fix(obj, ctx) is True
    assert obj["contents"][0]["parts"][0]["text"] == "Who ordered #1042? Call me at [PHONE]"
    assert obj["contents"][2]["parts"][0]["functionResponse"]["response"]["customer"]["phone"] == "[PHONE]"
    before = json.dumps(obj)
    assert ExposedSecret().fix(obj, ctx) is True and json.dumps(obj) == before  # nothing of its kinds
