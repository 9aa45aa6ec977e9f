"""Run every rule case in `tests/rules/cases/<CODE>.yaml` (sqlfluff style: cases are data).

Each case describes one input file (`records`, `lines`, `text` or `base64`, optionally gzipped
or truncated; named `case.jsonl`, or `case` + `suffix`, e.g. `.txt`) and the findings of the
file's rule that `sftgate.check()` must report for it. By default the case file is the training
file. With `split: validation` or `split: eval` it is checked as the validation file or as an
eval set (`eval_sets=[...]`) beside a training file: the case's `train_records`, or 200 valid,
distinct examples when it gives none; `train_records` alone means `split: validation`.

Statistical rules need hundreds of records: `records_from` builds the file from parts, each
`{file: PATH, first: N, skip: M}` (records of a file under ../shared/data: Gemini JSONL, or an
Alpaca JSON array converted to Gemini), `{text: "... {i} ...", n: N}` (N one-turn examples,
`{i}` the example's index; `answer` optional) or `{record: {...}, n: N}` (one record repeated).
`production` (records or prompt strings), `production_from` (parts, as `records_from`) or
`production_lines` (with `production_suffix`, e.g. `.txt`) give a production sample, checked
with `production=[...]`.

A `pass_*` case expects no findings of the rule; a `fail_*` case lists them, in report order:
those on the case file, and, when the case gives `train_records`, those on the training file
(which come first). Expected findings are compared on the keys they give: `code`, `line`,
`pointer`, `column`, `severity`, `message_contains` (a fragment of the message, or a list of
fragments), `file` (`case` or `train`: the file the finding is on) and `related` (the other
record of a pair, as `train.jsonl:3`), so a case pins what it is about and nothing else.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

import sftgate
from sftgate.rules import REGISTRY

CASES_DIR = Path(__file__).parent / "cases"
INPUT_KEYS = ("records", "lines", "text", "base64", "records_from")
PRODUCTION_KEYS = ("production", "production_from", "production_lines")
CASE_KEYS = frozenset(INPUT_KEYS) | {"gzip", "truncate_gzip", "suffix", "split", "train_records", "profile", "findings",
                                     "xfail_reason", "production_suffix", *PRODUCTION_KEYS}
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SPLITS = ("train", "validation", "eval")
FINDING_KEYS = frozenset({"code", "line", "pointer", "column", "severity", "message_contains", "file", "related"})
FILES = ("case", "train")
FILE_KEYS = frozenset({"rule", "description", "profile", "cases"})

# The train file a `split: validation` or `split: eval` case without `train_records` is checked
# beside: 200 distinct, valid examples.
_DIALOGUES = [
    ("#Person1#: Hello, how are you doing today?\n#Person2#: I've been having trouble breathing lately.",
     "#Person2# has trouble breathing and the doctor asks about it."),
    ("#Person1#: Hey Jimmy. Let's go workout later today.\n#Person2#: Sure. What time do you want to go?",
     "#Person1# and Jimmy plan to work out later today."),
    ("#Person1#: I need to buy some flowers for my wife.\n#Person2#: Perhaps you'd be interested in red roses.",
     "#Person1# wants to buy flowers for his wife and #Person2# suggests red roses."),
    ("#Person1#: How can I find the best 401k plan for my needs?\n#Person2#: Start by comparing fees.",
     "#Person2# advises #Person1# to compare the fees of 401k plans."),
]


def _good_train_records() -> list[dict[str, Any]]:
    records = []
    for i in range(200):
        dialogue, summary = _DIALOGUES[i % len(_DIALOGUES)]
        records.append({"contents": [
            {"role": "user", "parts": [{"text": f"Summarise dialogue dev_{i}:\n{dialogue}"}]},
            {"role": "model", "parts": [{"text": summary}]},
        ]})
    return records


def load_case_files() -> dict[str, dict[str, Any]]:
    """{file stem: parsed YAML} for every case file, sorted by name."""
    return {path.stem: yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(CASES_DIR.glob("*.yaml"))}


def _params() -> list[Any]:
    params = []
    for stem, spec in load_case_files().items():
        for name, case in (spec.get("cases") or {}).items():
            marks = []
            if isinstance(case, dict) and case.get("xfail_reason"):
                marks.append(pytest.mark.xfail(reason=case["xfail_reason"], strict=True))
            params.append(pytest.param(spec, name, case, id=f"{stem}-{name}", marks=marks))
    return params


def _records_bytes(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def built_records(parts: list[dict[str, Any]]) -> list[Any]:
    """The records a `records_from` / `production_from` list describes."""
    from sftgate.formats.convert import convert

    out: list[Any] = []
    for part in parts:
        if "file" in part:
            path = SHARED_DATA / part["file"]
            if not path.exists():
                pytest.skip(f"shared data not present at {path}")
            if path.suffix == ".json":
                items = [convert(r, "alpaca").record for r in json.loads(path.read_text(encoding="utf-8"))]
            else:
                items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            skip = int(part.get("skip", 0))
            out += items[skip:skip + int(part["first"])]
        elif "text" in part:
            for i in range(int(part["n"])):
                turns = [{"role": "user", "parts": [{"text": part["text"].format(i=i)}]}]
                if "answer" in part:
                    turns.append({"role": "model", "parts": [{"text": part["answer"].format(i=i)}]})
                out.append({"contents": turns})
        else:
            out += [part["record"]] * int(part["n"])
    return out


def production_bytes(case: dict[str, Any]) -> bytes | None:
    """The production sample a case gives, or None."""
    if "production_lines" in case:
        return "".join(line + "\n" for line in case["production_lines"]).encode("utf-8")
    if "production_from" in case:
        return _records_bytes(built_records(case["production_from"]))
    if "production" in case:
        return _records_bytes(case["production"])
    return None


def case_bytes(case: dict[str, Any]) -> bytes:
    """The exact bytes of the file a case describes."""
    given = [k for k in INPUT_KEYS if k in case]
    assert len(given) == 1, f"a case gives exactly one of {INPUT_KEYS}, not {given}"
    key = given[0]
    if key == "records":
        data = _records_bytes(case["records"])
    elif key == "records_from":
        data = _records_bytes(built_records(case["records_from"]))
    elif key == "lines":
        data = "".join(line + "\n" for line in case["lines"]).encode("utf-8")
    elif key == "text":
        data = case["text"].encode("utf-8")
    else:
        data = base64.b64decode(case["base64"], validate=True)
    if case.get("gzip"):
        data = gzip.compress(data, mtime=0)
        if case.get("truncate_gzip"):
            data = data[: -case["truncate_gzip"]]
    else:
        assert "truncate_gzip" not in case, "truncate_gzip needs gzip: true"
    return data


def _relative(related: str | None, directory: Path) -> str | None:
    """A finding's `related` location without the temporary directory the case files sit in."""
    return None if related is None else related.removeprefix(f"{directory}{os.sep}")


def case_split(case: dict[str, Any]) -> str:
    """The split a case's file is checked as: `train_records` alone means validation."""
    return case.get("split", "validation" if "train_records" in case else "train")


def _project(actual: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """`actual` restricted to the keys `expected` gives, so that a diff shows only what matters."""
    out = {k: actual[k] for k in expected if k != "message_contains"}
    if "message_contains" in expected:
        wanted = expected["message_contains"]
        fragments = [wanted] if isinstance(wanted, str) else wanted
        out["message_contains"] = wanted if all(f in actual["message"] for f in fragments) else actual["message"]
    return out


@pytest.mark.parametrize(("spec", "name", "case"), _params())
def test_rule_case(spec: dict[str, Any], name: str, case: dict[str, Any], tmp_path: Path) -> None:
    rule = spec["rule"]
    split = case_split(case)
    assert split in SPLITS, f"split is one of {SPLITS}, not {split!r}"
    target = tmp_path / ("case" + case.get("suffix", ".jsonl") + (".gz" if case.get("gzip") else ""))
    target.write_bytes(case_bytes(case))
    if split == "train":
        assert "train_records" not in case, "train_records needs split: validation or eval"
        train = target
    else:
        train = tmp_path / "train.jsonl"
        train.write_bytes(_records_bytes(case.get("train_records", _good_train_records())))
    profile = case.get("profile", spec.get("profile"))
    rules = None
    if profile is not None:
        rules = tmp_path / "rules.yaml"
        rules.write_text(yaml.safe_dump(profile), encoding="utf-8")

    production = production_bytes(case)
    prod_path = tmp_path / ("production" + case.get("production_suffix", ".jsonl"))
    if production is not None:
        prod_path.write_bytes(production)
    report = sftgate.check(str(train), validation=str(target) if split == "validation" else None,
                           eval_sets=[str(target)] if split == "eval" else [],
                           production=[str(prod_path)] if production is not None else [],
                           rules=None if rules is None else str(rules), select=[rule], workers=1)

    # The default training file is scaffolding: only a case's own `train_records` are under test.
    file_of = {str(target): "case"} | ({str(train): "train"} if "train_records" in case else {})
    actual = [{**f.to_dict(), "file": file_of[f.source], "related": _relative(f.related, tmp_path)}
              for f in report.findings if f.source in file_of and f.code == rule]
    expected = case.get("findings") or []
    # Findings beyond those expected are shown with their location and message.
    extra = ("code", "file", "line", "pointer", "related", "message")
    shown = [_project(a, expected[i]) if i < len(expected) else {k: a[k] for k in extra}
             for i, a in enumerate(actual)]
    assert shown == expected


@pytest.mark.parametrize("stem", sorted(load_case_files()))
def test_case_file_is_well_formed(stem: str) -> None:
    spec = load_case_files()[stem]
    assert spec.get("rule") == stem, f"{stem}.yaml must say `rule: {stem}`"
    assert set(spec) <= FILE_KEYS, f"unknown keys {set(spec) - FILE_KEYS}"
    cases = spec.get("cases") or {}
    assert any(n.startswith("pass_") for n in cases), "needs a pass_* case"
    assert any(n.startswith("fail_") for n in cases), "needs a fail_* case"
    for name, case in cases.items():
        assert name.startswith(("pass_", "fail_")), f"{name}: case names start with pass_ or fail_"
        assert isinstance(case, dict) and set(case) <= CASE_KEYS, f"{name}: unknown keys {set(case) - CASE_KEYS}"
        assert sum(k in case for k in INPUT_KEYS) == 1, f"{name}: give exactly one of {INPUT_KEYS}"
        assert case_split(case) in SPLITS, f"{name}: split is one of {SPLITS}"
        assert case_split(case) != "train" or "train_records" not in case, f"{name}: train_records needs a split"
        assert isinstance(case.get("train_records", []), list), f"{name}: train_records is a list of records"
        assert str(case.get("suffix", ".x")).startswith("."), f"{name}: a suffix starts with a dot"
        findings = case.get("findings") or []
        if name.startswith("pass_"):
            assert not findings, f"{name}: a pass case expects no findings"
        else:
            assert findings, f"{name}: a fail case lists its findings"
        for finding in findings:
            assert set(finding) <= FINDING_KEYS, f"{name}: unknown finding keys {set(finding) - FINDING_KEYS}"
            assert finding.get("code") == stem and "line" in finding, f"{name}: each finding gives code {stem} and line"
            assert finding.get("file", "case") in FILES, f"{name}: a finding's file is one of {FILES}"
            wanted = finding.get("message_contains", "")
            assert isinstance(wanted, str) or (wanted and all(isinstance(w, str) for w in wanted)), \
                f"{name}: message_contains is a string or a list of strings"
            assert finding.get("file") != "train" or "train_records" in case, f"{name}: file: train needs train_records"


def test_every_rule_has_cases() -> None:
    files = load_case_files()
    missing = sorted(set(REGISTRY) - set(files))
    assert not missing, f"rules without tests/rules/cases/<CODE>.yaml: {missing}"
    unknown = sorted(set(files) - set(REGISTRY))
    assert not unknown, f"case files for codes that are not registered: {unknown}"
    for code in REGISTRY:
        names = list(files[code].get("cases") or {})
        assert any(n.startswith("pass_") for n in names) and any(n.startswith("fail_") for n in names), code
