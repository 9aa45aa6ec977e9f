"""Inputs in other formats: `check` and `prepare` read JSON arrays, CSV, Parquet and other SFT
formats by converting them (`--input-format`, `--map`), and `sftgate convert` writes them as
Gemini JSON Lines. The converters themselves are tested in test_convert.py."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sftgate
from sftgate.engine import local
from sftgate.engine.prepare import prepare
from sftgate.errors import UsageError

ALPACA = [
    {"instruction": "Name a primary colour.", "input": "", "output": "Red is a primary colour."},
    {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour."},
    {"instruction": "What is the capital of Peru?", "input": "", "output": "Lima."},
    {"instruction": "Give an antonym.", "input": "hot", "output": "Cold."},
]
SHAREGPT = [
    {"id": "a_0", "conversations": [{"from": "human", "value": "Write a haiku about rain."},
                                    {"from": "gpt", "value": "Soft rain on the roof, the gutters hum along."}]},
    {"id": "a_1", "conversations": [{"from": "gpt", "value": "and then the sun came out."}]},  # a continuation chunk
    {"id": "b_0", "conversations": [{"from": "human", "value": "How far is the Moon?"},
                                    {"from": "gpt", "value": "About 384,400 km on average."}]},
    {"id": "c_0", "conversations": []},
]


def _write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
    return path


def _jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_a_json_array_is_unpacked_and_its_format_detected(tmp_path, validate_report):
    src = _write_json(tmp_path / "alpaca.json", ALPACA + [{"instruction": "Say nothing.", "input": "", "output": ""}])
    report = sftgate.check(src, workers=1)
    data = report.to_dict()
    validate_report(data)
    (summary,) = data["inputs"]
    assert (summary["container"], summary["format"], summary["format_detected"]) == ("json", "alpaca", True)
    assert summary["records"] == 5 and summary["lines"] == 5
    codes = [(f.code, f.line) for f in report.findings]
    assert ("CNV003", None) in codes and not report.gate.passed
    assert ("STR005", 5) in codes  # the fifth record's empty output: line numbers count records
    assert not [c for c, _ in codes if c in ("FMT010", "SCH001", "SCH003")]


def test_input_format_gemini_reads_the_file_as_vertex_does(tmp_path):
    src = _write_json(tmp_path / "alpaca.json", ALPACA)
    report = sftgate.check(src, input_format="gemini", select=["FMT010", "CNV"], workers=1)
    assert [f.code for f in report.findings] == ["FMT010"]
    jsonl = tmp_path / "alpaca.jsonl"
    jsonl.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in ALPACA))
    report = sftgate.check(jsonl, input_format="gemini", select=["SCH"], workers=1)
    assert {f.code for f in report.findings} == {"SCH003"}


def test_records_that_do_not_convert_are_findings_and_the_run_goes_on(tmp_path):
    src = _write_json(tmp_path / "sharegpt.json", SHAREGPT)
    report = sftgate.check(src, workers=1)
    failed = {f.line: f.message for f in report.findings if f.code == "CNV001"}
    assert set(failed) == {2, 4}
    assert "assistant turn before any user turn" in failed[2]
    assert report.inputs[0].records == 4


def test_a_csv_table_with_a_map(tmp_path):
    src = tmp_path / "qa.csv"
    src.write_text('question,answer,id\n"Why is the sky blue?","Rayleigh scattering.",1\n'
                   '"How old are you, Su?","I am seven.",2\n', encoding="utf-8")
    report = sftgate.check(src, mapping="prompt=question,response=answer", ignore=["LIM004"], workers=1)
    assert report.inputs[0].format == "table" and report.inputs[0].container == "csv"
    assert {f.code for f in report.findings} == {"CNV003"}


def test_a_table_whose_columns_cannot_be_guessed_is_a_usage_error(tmp_path, run_cli, assert_usage_error):
    src = tmp_path / "t.csv"
    src.write_text("a,b\nx,y\n", encoding="utf-8")
    with pytest.raises(UsageError, match="--map"):
        sftgate.check(src, workers=1)
    assert_usage_error(run_cli("check", src), "columns: a, b", "--map prompt=COL,response=COL")


def test_records_of_a_table_no_detector_reads_say_how_to_map_them(tmp_path, run_cli):
    """JSON Lines rows whose prompt and response fields have names no detector guesses
    (DialogSum's `dialogue` and `summary`) are SCH001s whose hint names --map; mapped, they read."""
    src = tmp_path / "dialogsum.jsonl"
    src.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in [
        {"fname": "dev_1", "dialogue": "#Person1#: Good morning.\n#Person2#: Morning!", "summary": "They greet."},
        {"fname": "dev_2", "dialogue": "#Person1#: How old are you?\n#Person2#: Seven.", "summary": "One is seven.",
         "turns": 2},
    ]))
    report = sftgate.check(src, workers=1)
    root = [f for f in report.findings if f.code == "SCH001"]
    assert [f.line for f in root] == [1, 2] and all(f.pointer == "/" for f in root)
    assert all("--map prompt=COL,response=COL" in f.hint and '"dialogue"' in f.hint and '"summary"' in f.hint
               and "turns" not in f.hint for f in root)
    assert "--map prompt=COL,response=COL" in run_cli("check", src).stdout
    mapped = sftgate.check(src, mapping="prompt=dialogue,response=summary", ignore=["LIM004"], workers=1)
    assert "SCH001" not in {f.code for f in mapped.findings}


def test_a_record_without_text_fields_gets_no_map_hint(tmp_path):
    src = tmp_path / "odd.jsonl"
    src.write_bytes(b'{"messages": 3, "id": 1}\n')
    [root] = [f for f in sftgate.check(src, workers=1).findings if f.code == "SCH001"]
    assert root.pointer == "/" and root.hint is None


def test_unknown_input_format_is_a_usage_error(tmp_path, run_cli):
    src = _write_json(tmp_path / "a.json", ALPACA)
    with pytest.raises(UsageError, match="unknown input format"):
        sftgate.check(src, input_format="yaml")
    assert run_cli("check", src, "--input-format", "yaml").returncode == 2


def test_parquet_through_prepare_writes_gemini_records(tmp_path):
    src = tmp_path / "qa.parquet"
    pq.write_table(pa.table({"prompt": [r["instruction"] for r in ALPACA], "response": [r["output"] for r in ALPACA]}),
                   src)
    done = prepare(src, out=tmp_path / "out", workers=1)
    written = _jsonl(tmp_path / "out" / "train.jsonl")
    assert written[0] == {"contents": [{"role": "user", "parts": [{"text": "Name a primary colour."}]},
                                       {"role": "model", "parts": [{"text": "Red is a primary colour."}]}]}
    assert len(written) == 4
    assert done.report.inputs[0].container == "parquet"
    assert "CNV003" not in {f.code for f in done.report.findings} and done.exit_code == 0


def test_prepare_converts_quarantines_and_is_the_same_for_any_worker_count(tmp_path, monkeypatch):
    rows = []
    for i in range(150):
        rows.append({"messages": [{"role": "system", "content": "Answer with the number only."},
                                  {"role": "user", "content": f"What is {i} plus {i * 7}?"},
                                  {"role": "assistant", "content": f"{i + i * 7}"}]})
        if i % 13 == 0:
            rows.append({"messages": [{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "hi"}]})
    src = tmp_path / "openai.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    monkeypatch.setattr(local, "CHUNK_BYTES", 2048)
    plan = local.plan_ranges
    monkeypatch.setattr(local, "plan_ranges", lambda stream, total, _chunk: plan(stream, total, 2048))
    outputs = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        prepare(src, out=out, workers=workers, select=["CNV", "STR", "SCH"])
        outputs[workers] = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix == ".jsonl"}
    assert outputs[1] == outputs[2]
    train = [orjson.loads(line) for line in outputs[1]["train.jsonl"].splitlines()]
    quarantine = [orjson.loads(line) for line in outputs[1]["quarantine.jsonl"].splitlines()]
    assert len(train) == 150 and len(quarantine) == 12
    assert train[0]["systemInstruction"] == {"parts": [{"text": "Answer with the number only."}]}
    assert {r["code"] for q in quarantine for r in q["reasons"]} == {"CNV001"}


def test_an_eval_set_in_another_format_is_checked_for_leakage(tmp_path, records, write_jsonl):
    train = write_jsonl(tmp_path / "train.jsonl", [records.good(i) for i in range(7)])
    asked = records.good(3)["contents"]
    eval_rows = [{"instruction": asked[0]["parts"][0]["text"], "input": "", "output": asked[1]["parts"][0]["text"]}]
    evals = write_jsonl(tmp_path / "heldout.jsonl", eval_rows)
    report = sftgate.check(train, eval_sets=[evals], select=["LEAK001"], workers=1)
    assert [(f.code, f.line) for f in report.findings] == [("LEAK001", 4)]


def test_convert_writes_gemini_jsonl_and_lists_what_did_not_convert(tmp_path, run_cli):
    src = _write_json(tmp_path / "sharegpt.json", SHAREGPT)
    out = tmp_path / "out.jsonl"
    result = run_cli("convert", src, "-o", out)
    assert result.returncode == 1, result.stderr
    assert f"{src}:2: CNV001 assistant turn before any user turn" in result.stdout
    assert "2 sharegpt records (detected) from a JSON array file written" in result.stdout
    assert "2 not converted" in result.stdout
    written = _jsonl(out)
    assert [w["contents"][0]["parts"][0]["text"] for w in written] == ["Write a haiku about rain.",
                                                                       "How far is the Moon?"]
    assert sftgate.check(out, workers=1).gate.passed


def test_convert_with_a_given_format_and_map(tmp_path, run_cli):
    src = tmp_path / "qa.tsv"
    src.write_text("q\ta\tsys\nWhy is the sky blue?\tRayleigh scattering.\tBe brief.\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = run_cli("convert", src, "-o", out, "--from", "table", "--map", "prompt=q,response=a,system=sys")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _jsonl(out) == [{"contents": [{"role": "user", "parts": [{"text": "Why is the sky blue?"}]},
                                         {"role": "model", "parts": [{"text": "Rayleigh scattering."}]}],
                            "systemInstruction": {"parts": [{"text": "Be brief."}]}}]


def test_convert_usage_errors(tmp_path, run_cli, assert_usage_error):
    src = _write_json(tmp_path / "a.json", ALPACA)
    assert_usage_error(run_cli("convert", src, "-o", tmp_path / "missing" / "out.jsonl"), "no such directory")
    assert_usage_error(run_cli("convert", tmp_path / "nope.json", "-o", tmp_path / "o.jsonl"), "nope.json")
    assert_usage_error(run_cli("convert", src, "-o", tmp_path / "o.jsonl", "--map", "prompt"), "prompt")
