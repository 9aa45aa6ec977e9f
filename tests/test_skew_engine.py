"""Skew against production samples and training-set composition, through `sftgate.check`.

The bench outcomes of issue 6 (../shared/data/bench/skew): the same distribution is not flagged,
another domain and style is (with terms that make sense), prompts three times longer are flagged
on length only; two random halves of one real pool are not flagged at 200, 2,000 and 20,000 a
side. Then the ways production samples are given, and determinism.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from realpool import real_texts

import sftgate
from sftgate.cli import main
from sftgate.engine import local

BENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "bench" / "skew"
SKEW = ["SKEW001", "SKEW002", "SKEW003", "SKEW004", "SKEW005"]


@pytest.fixture(scope="module")
def bench() -> Path:
    if not BENCH.is_dir():
        pytest.skip(f"skew bench not present at {BENCH}")
    return BENCH


def _flags(report: sftgate.Report) -> list[tuple[str, str]]:
    """(code, message) of the SKEW findings at warning or above."""
    return [(f.code, f.message) for f in report.findings if f.code.startswith("SKEW") and f.severity.rank >= 1]


def test_production_from_the_same_distribution_is_not_flagged(bench: Path) -> None:
    report = sftgate.check(bench / "train.jsonl", production=[bench / "prod_same.jsonl"], select=SKEW, workers=1)
    assert _flags(report) == []
    skew = report.skew
    assert skew is not None and skew["production"] == [str(bench / "prod_same.jsonl")]
    assert skew["domain"]["level"] is None and skew["domain"]["auc"] < 0.6
    assert skew["samples"]["train_records"] == 3000 and skew["samples"]["prod_records"] == 1000
    assert report.passed


def test_another_domain_and_style_is_flagged_with_terms_that_explain_it(bench: Path) -> None:
    report = sftgate.check(bench / "train.jsonl", production=[bench / "prod_shifted.jsonl"], select=SKEW, workers=1)
    codes = {code for code, _ in _flags(report)}
    assert {"SKEW001", "SKEW002", "SKEW003", "SKEW004"} <= codes
    domain = report.skew["domain"]
    assert domain["level"] == "error" and domain["auc"] > 0.95
    train_terms = {t["term"] for t in domain["train_terms"][:6]}
    prod_terms = {t["term"] for t in domain["prod_terms"][:8]}
    assert {"dialogue", "person1"} <= train_terms  # DialogSum's "Summarize the dialogue. #Person1#: ..."
    assert prod_terms & {"the given", "given", "generate", "write a", "create a"}  # instruction-style requests
    assert [f.severity.value for f in report.findings if f.code == "SKEW002"] == ["error"]
    assert report.exit_code == 1  # the gate fails on the domain shift's error


def test_three_times_longer_prompts_are_flagged_on_length_only(bench: Path) -> None:
    report = sftgate.check(bench / "train.jsonl", production=[bench / "prod_length.jsonl"], select=SKEW, workers=1)
    flagged = {s["feature"] for s in report.skew["numeric"] + report.skew["categorical"] if s["flagged"]}
    assert flagged == {"chars", "words", "lines", "prompt_tokens"}
    assert {code for code, _ in _flags(report)} == {"SKEW001"}
    chars = next(s for s in report.skew["numeric"] if s["feature"] == "chars")
    assert 2.5 < chars["ratio"] < 3.5 and "longer" in chars["message"]


@pytest.mark.parametrize("size", [200, 2000, 20000])
def test_random_halves_of_one_real_pool_are_not_flagged(real_data: Path, tmp_path: Path, size: int) -> None:
    texts = real_texts(real_data, seed=7)
    assert len(texts) >= 2 * size
    train, prod = tmp_path / "train.jsonl", tmp_path / "prod.jsonl"
    train.write_bytes(b"".join(orjson.dumps({"contents": [{"role": "user", "parts": [{"text": t}]},
                                                          {"role": "model", "parts": [{"text": "ok"}]}]}) + b"\n"
                               for t in texts[:size]))
    prod.write_bytes(b"".join(orjson.dumps(t) + b"\n" for t in texts[size:2 * size]))  # prompt strings
    report = sftgate.check(train, production=[prod], select=SKEW, workers=1)
    assert _flags(report) == []
    assert report.skew["samples"]["prod_records"] == size


def test_production_samples_in_every_shape_are_read(tmp_path: Path, bench: Path) -> None:
    train = bench / "train.jsonl"
    lines = [json.loads(line) for line in (bench / "prod_same.jsonl").read_text("utf-8").splitlines()][:120]
    shapes = []
    for i, record in enumerate(lines):
        system = record["systemInstruction"]["parts"][0]["text"]
        user = record["contents"][0]["parts"][0]["text"]
        shapes.append([
            record,  # Gemini, user turn only
            {"request": record},  # a request-response log
            {"full_request": json.dumps({"contents": record["contents"], "system_instruction": record["systemInstruction"]})},
            {"model": "gpt-4o", "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]},
        ][i % 4])
    prod = tmp_path / "prod.jsonl"
    prod.write_text("".join(json.dumps(s) + "\n" for s in shapes) + '{"foo": 1}\n', "utf-8")
    listed = tmp_path / "prompts.txt"
    listed.write_text("".join(s["contents"][0]["parts"][0]["text"].replace("\n", " ") + "\n" for s in lines[:30]), "utf-8")
    report = sftgate.check(train, production=[prod, listed], select=[*SKEW, "CNV001"], workers=1)
    assert report.skew["samples"]["prod_records"] == 150
    assert report.skew["system"]["prod_share"] == 1.0  # the prompt list's system instruction is unknown, not "none"
    bad = [f for f in report.findings if f.code == "CNV001"]
    assert [(f.source, f.line) for f in bad] == [(str(prod), 121)] and "no prompt found (keys: foo)" in bad[0].message
    inputs = {s.path: s.split for s in report.inputs}
    assert inputs == {str(train): "train", str(prod): "production", str(listed): "production"}
    assert not any(c.startswith(("STR", "TOK", "DUP")) for c in report.counts_by_code())  # production is not tuned on


def test_skew_result_does_not_depend_on_the_number_of_workers(bench: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "CHUNK_BYTES", 1 << 20)  # the 2.4 MB training file in several ranges
    one = sftgate.check(bench / "train.jsonl", production=[bench / "prod_length.jsonl"], select=SKEW, workers=1)
    two = sftgate.check(bench / "train.jsonl", production=[bench / "prod_length.jsonl"], select=SKEW, workers=2)
    assert two.workers == 2
    assert json.dumps(one.skew, sort_keys=True) == json.dumps(two.skew, sort_keys=True)
    assert [f.message for f in one.findings] == [f.message for f in two.findings]


def test_composition_runs_without_production(bench: Path) -> None:
    report = sftgate.check(bench / "train.jsonl", select=["COMP"], workers=1)
    assert report.skew is not None and report.skew["production"] == []
    assert report.skew["composition"]["n"] == 3000 and report.skew["domain"] is None
    assert sftgate.check(bench / "train.jsonl", select=["STR"], workers=1).skew is None


def test_cli_compares_and_writes_the_skew_section(bench: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "report.json"
    code = main(["check", str(bench / "train.jsonl"), "--production", str(bench / "prod_shifted.jsonl"),
                 "--select", "SKEW", "--report-json", str(out), "--workers", "1"])
    assert code == 1
    data = json.loads(out.read_text("utf-8"))
    assert data["skew"]["domain"]["level"] == "error"
    assert "SKEW002" in capsys.readouterr().out


@pytest.mark.parametrize("texts", [["same"] * 300, ["😀" * (i % 9 + 1) for i in range(100)], [" . ", "?"] * 50],
                         ids=["identical", "emoji-only", "punctuation-only"])
def test_degenerate_texts_give_a_report_not_a_traceback(tmp_path: Path, texts: list[str]) -> None:
    # No term in any text (emoji, punctuation) or one text repeated: the classifier and the
    # clustering have nothing to work on, and say so.
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"contents": [{"role": "user", "parts": [{"text": t}]},
                                                      {"role": "model", "parts": [{"text": "ok"}]}]}) + "\n"
                             for t in texts), "utf-8")
    report = sftgate.check(train, production=[train], select=[*SKEW, "COMP"], workers=1)
    assert report.skew["domain"]["auc"] <= 0.6
    assert not [f for f in report.findings if f.code == "SKEW002"]
