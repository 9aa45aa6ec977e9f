"""The check pass end to end through `sftgate.check`: bad input, line accounting, parallel runs."""

from __future__ import annotations

import gzip
import json
import re
import tempfile
import zlib
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sftgate
import sftgate.engine.local as local
from sftgate.model import Severity

MAX_LINE = 1000  # format.max_line_bytes in the small-limit rules file


@pytest.fixture(scope="module")
def small_lines(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "small-lines.yaml"
    path.write_text(f"format:\n  max_line_bytes: {MAX_LINE}\n", encoding="utf-8")
    return path


def _at(report: sftgate.Report, code: str) -> list[sftgate.Finding]:
    return [f for f in report.findings if f.code == code]


def _codes_by_line(report: sftgate.Report) -> dict[int | None, set[str]]:
    out: dict[int | None, set[str]] = {}
    for f in report.findings:
        out.setdefault(f.line, set()).add(f.code)
    return out


def _accounting(report: sftgate.Report, i: int = 0) -> dict[str, int]:
    return report.to_dict()["inputs"][i]["accounting"]


# --- bad input is a finding with a location ------------------------------------------------------

def test_nul_byte(tmp_path, records, write_jsonl):
    good = records.line(records.good(0))
    path = write_jsonl(tmp_path / "t.jsonl", [good, good[:25] + b"\x00" + good[25:], records.good(1)])
    report = sftgate.check(path, workers=1)
    assert report.exit_code == 1
    [nul] = _at(report, "FMT009")
    assert (nul.line, nul.column, nul.severity) == (2, 26, Severity.ERROR)
    assert _accounting(report) == {"nul_byte": 1, "valid": 2}


def test_invalid_utf8_reports_the_byte_column(tmp_path, records, write_jsonl):
    bad = records.line(records.good(3)).replace(b"Rayleigh", b"Ray\xffleigh")
    column = bad.index(b"\xff") + 1
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(0), bad])
    report = sftgate.check(path, workers=1)
    assert report.exit_code == 1
    [finding] = _at(report, "FMT002")
    assert (finding.line, finding.column) == (2, column)
    assert f"byte {column - 1}" in finding.message and "0xff" in finding.message
    assert _accounting(report) == {"invalid_utf8": 1, "valid": 1}


def test_latin1_line_that_is_otherwise_json(tmp_path, records, write_jsonl):
    bad = json.dumps(records.good(4), ensure_ascii=False).encode("latin-1")  # "días" -> 0xed
    path = write_jsonl(tmp_path / "t.jsonl", [bad])
    [finding] = _at(sftgate.check(path, workers=1), "FMT002")
    assert finding.column == bad.index(b"\xed") + 1


def test_python_repr_line_gets_a_json_dumps_hint(tmp_path, records, write_jsonl):
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(0), repr(records.good(1)), records.good(2)])
    report = sftgate.check(path, workers=1)
    assert report.exit_code == 1
    [finding] = _at(report, "FMT001")
    assert finding.line == 2
    assert "json.dumps" in (finding.hint or "")
    assert "Python" in finding.message
    assert _accounting(report) == {"invalid_json": 1, "valid": 2}


@pytest.mark.parametrize("nested", [b'{"a":' * 5000 + b"1" + b"}" * 5000, b"[" * 5000 + b"]" * 5000],
                         ids=["objects", "arrays"])
def test_deeply_nested_json(tmp_path, records, write_jsonl, nested):
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(0), nested, records.good(1)])
    report = sftgate.check(path, workers=1)
    assert report.exit_code == 1
    [finding] = _at(report, "FMT001")
    assert finding.line == 2
    assert "1,024" in finding.message
    assert _accounting(report) == {"invalid_json": 1, "valid": 2}


def test_deeply_nested_array_on_the_first_line(tmp_path, records, write_jsonl):
    path = write_jsonl(tmp_path / "t.jsonl", [b"[" * 5000 + b"]" * 5000, records.good(0), records.model_twice(1)])
    report = sftgate.check(path, workers=1)
    assert [(f.code, f.line) for f in report.findings if f.severity is Severity.ERROR] == \
        [("FMT001", 1), ("STR002", 3)]


@pytest.mark.parametrize("where", ["functionCall", "functionResponse", "tools", "generationConfig", "unknown key",
                                   "part key", "contents"])
@pytest.mark.parametrize("levels", [240, 300, 1000])
def test_nesting_deeper_than_the_writer_goes_is_flagged_where_it_can_hide(tmp_path, records, write_jsonl, where,
                                                                          levels):
    """orjson reads 1,024 levels but writes 254: a record nested deeper, valid or not, wherever
    the schema leaves values open, is FMT001 and read no further (the schema's error listing,
    the PII scan, token counts and prepare's writer cannot walk it); one less deep is checked."""
    deep = "@DEEP@"  # replaced once written: json.dumps cannot write 1,000 levels
    record = records.good(1)
    if where == "tools":
        record["tools"] = [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object", "default": deep}}]}]
    elif where == "generationConfig":
        record["generationConfig"] = {"responseSchema": deep}
    elif where == "unknown key":
        record["extra"] = deep
    elif where == "part key":
        record["contents"][0]["parts"][0]["zzz"] = deep
    elif where == "contents":
        record["contents"] = deep
    else:
        part = {"name": "f", "args" if where == "functionCall" else "response": {"n": deep, "mail": "ann@example.com"}}
        record["contents"].insert(1, {"role": "model", "parts": [{where: part}]})
        record["contents"].insert(2, {"role": "user", "parts": [{"text": "and then?"}]})
    line = json.dumps(record).replace('"@DEEP@"', "[" * levels + "0" + "]" * levels)
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(0), line, line, records.good(2)])
    report = sftgate.check(path, workers=1)
    flagged = [f.line for f in _at(report, "FMT001")]
    if levels > 250:  # the record's own levels come on top
        assert flagged == [2, 3]
        assert "254 levels" in _at(report, "FMT001")[0].message or "1,024" in _at(report, "FMT001")[0].message
    elif where == "contents":  # not deep enough: the schema's error listing walks it
        assert flagged == [] and [f.line for f in _at(report, "SCH001")] == [2, 3]
    else:
        assert flagged == []
        assert [f.line for f in _at(report, "DUP001")] == [3]  # the copy is found


def test_number_where_text_belongs(tmp_path, records, write_jsonl):
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(0), records.number_text(1)])
    report = sftgate.check(path, workers=1)
    assert report.exit_code == 1
    [finding] = _at(report, "SCH001")
    assert (finding.line, finding.pointer) == (2, "/contents/1/parts/0/text")
    assert "42" in finding.message and "string" in finding.message
    assert _accounting(report) == {"invalid_record": 1, "valid": 1}


@pytest.mark.parametrize("indent", [None, 2], ids=["one-line", "pretty"])
def test_json_array_file(tmp_path, records, physical_lines, indent):
    path = tmp_path / "data.json"
    path.write_text(json.dumps([records.good(i) for i in range(5)], indent=indent) + "\n", encoding="utf-8")
    report = sftgate.check(path, workers=1, input_format="gemini")  # read as Vertex reads it (auto unpacks it)
    assert report.exit_code == 1
    assert report.counts_by_code()["FMT010"] == 1
    [finding] = _at(report, "FMT010")
    assert finding.line is None
    assert not {"FMT001", "FMT003", "SCH001"} & set(report.counts_by_code())
    lines = physical_lines(path.read_bytes())
    assert report.inputs[0].lines == lines
    assert _accounting(report) == {"json_array_file": lines}


@pytest.mark.parametrize("element", ['{"n": NaN}', '{"n": -Infinity}', '{"n": ' + "9" * 5000 + "}"],
                         ids=["nan", "infinity", "5000-digit integer"])
def test_json_array_element_that_is_not_json_is_a_finding(tmp_path, records, element):
    """The standard library's reader of JSON array files takes NaN and Infinity, and refuses
    integers of more than 4,300 digits with a ValueError: both are a finding on the element."""
    path = tmp_path / "data.json"
    path.write_text("[" + json.dumps(records.good(0)) + ", " + element + "]", encoding="utf-8")
    report = sftgate.check(path, workers=1)
    [finding] = _at(report, "CNV001")
    assert finding.line == 2 and "array element 2 is not valid JSON" in finding.message


@pytest.mark.parametrize(("options", "says"), [
    ({"split_validation": 0.1, "seed": -1}, "seed must be a whole number from 0 to 2^64 - 1"),
    ({"seed": 2**64}, "seed must be"),
    ({"split_validation": 1e20}, "below 2^63"),
    ({"epochs": [3, 10**22]}, "epochs must be between 1 and 1,000"),
])
def test_numbers_the_report_cannot_hold_are_usage_errors(tmp_path, records, write_jsonl, options, says):
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(i) for i in range(3)])
    with pytest.raises(sftgate.UsageError, match=re.escape(says)):
        sftgate.check(path, workers=1, **options)


def test_jsonl_whose_first_line_is_an_array_is_not_an_array_file(tmp_path, records, write_jsonl):
    path = write_jsonl(tmp_path / "t.jsonl", [["user", "model"], records.good(0)])
    report = sftgate.check(path, workers=1)
    assert [f.line for f in _at(report, "FMT003")] == [1]
    assert "FMT010" not in report.counts_by_code()
    assert _accounting(report) == {"not_object": 1, "valid": 1}


def test_line_longer_than_the_limit_is_skipped_and_the_rest_checked(tmp_path, records, write_jsonl, small_lines):
    long = records.line(records.long_text(0, 50_000))
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(0), long, records.good(1), records.model_twice(2)])
    report = sftgate.check(path, rules=small_lines, workers=1)
    assert report.exit_code == 1
    [finding] = _at(report, "FMT011")
    assert finding.line == 2
    assert f"{len(long):,}" in finding.message and f"{MAX_LINE:,}" in finding.message
    assert [(f.line, f.pointer) for f in _at(report, "STR002")] == [(4, "/contents/2")]
    assert _accounting(report) == {"too_long": 1, "valid": 2, "invalid_record": 1}


def _gzip_cut(records, tmp_path: Path, n: int = 200) -> tuple[Path, bytes]:
    """A gzip file cut in half; returns it and the bytes a decoder can still recover from it."""
    data = b"\n".join(records.line(records.long_text(i, 300 + 7 * i)) for i in range(n)) + b"\n"
    whole = gzip.compress(data)
    cut = whole[: len(whole) // 2]
    path = tmp_path / "train.jsonl.gz"
    path.write_bytes(cut)
    recoverable = zlib.decompressobj(wbits=31).decompress(cut)
    assert 0 < recoverable.count(b"\n") < n
    return path, recoverable


def test_truncated_gzip_is_reported(tmp_path, records):
    path, _ = _gzip_cut(records, tmp_path)
    report = sftgate.check(path, workers=1)
    assert report.exit_code == 1
    assert "FMT012" in report.counts_by_code()
    assert "FMT007" not in report.counts_by_code()  # not "empty": it is cut
    assert report.inputs[0].truncated
    summary = report.to_dict()["inputs"][0]
    assert sum(summary["accounting"].values()) == summary["lines"]


def test_truncated_gzip_counts_and_checks_the_lines_before_the_cut(tmp_path, records, physical_lines):
    path, recoverable = _gzip_cut(records, tmp_path)
    report = sftgate.check(path, workers=1)
    complete = recoverable.count(b"\n")
    assert report.inputs[0].lines == physical_lines(recoverable)
    assert report.inputs[0].accounting.get("valid") == complete
    if not recoverable.endswith(b"\n"):  # the cut falls inside a line: that line is the truncated one
        assert report.inputs[0].accounting.get("truncated") == 1
        assert [f.line for f in _at(report, "FMT012")] == [complete + 1]


def test_empty_file(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"")
    report = sftgate.check(path, workers=1)
    assert report.exit_code == 1
    [finding] = _at(report, "FMT007")
    assert finding.line is None
    assert report.inputs[0].lines == 0 and _accounting(report) == {}


@pytest.mark.parametrize("content", [b"\n", b"  \n\t\n\n", b"\xef\xbb\xbf\n"], ids=["newline", "blanks", "bom"])
def test_a_file_of_blank_lines_holds_no_records(tmp_path, records, write_jsonl, content):
    path = tmp_path / "t.jsonl"
    path.write_bytes(content)
    report = sftgate.check(path, workers=1)
    assert report.exit_code == 1
    [finding] = _at(report, "FMT007")
    assert "holds no records" in finding.message
    one = write_jsonl(tmp_path / "one.jsonl", [records.good(0), b""])  # a record and a blank line: not this
    assert not _at(sftgate.check(one, workers=1), "FMT007")


def test_empty_gzip_file(tmp_path):
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(gzip.compress(b""))
    report = sftgate.check(path, workers=1)
    assert "FMT007" in report.counts_by_code()
    assert report.inputs[0].compression == "gzip"


def test_bom(tmp_path, records, write_jsonl):
    path = write_jsonl(tmp_path / "t.jsonl", [b"\xef\xbb\xbf" + records.line(records.good(0)), records.good(1)])
    report = sftgate.check(path, workers=1)
    assert report.exit_code == 0
    assert [(f.line, f.severity) for f in _at(report, "FMT004")] == [(1, Severity.WARNING)]
    assert _accounting(report) == {"valid": 2}


def test_crlf(tmp_path, records, write_jsonl):
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(i) for i in range(4)], eol=b"\r\n")
    report = sftgate.check(path, workers=1)
    assert report.exit_code == 0
    [finding] = _at(report, "FMT006")
    assert finding.line == 1 and "4 of 4 lines" in finding.message
    assert _accounting(report) == {"valid": 4}


def test_cr_only_line_endings_say_so(tmp_path, records, write_jsonl):
    """Lines ended by a CR alone read as one line of records one after another: FMT001, whose
    hint names the line endings rather than leaving the parser's message alone."""
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(i) for i in range(3)], eol=b"\r")
    [finding] = _at(sftgate.check(path, workers=1), "FMT001")
    assert finding.line == 1 and "CR alone" in (finding.hint or "")


def test_mixed_line_endings_count_and_first_line(tmp_path, records):
    lines = [records.line(records.good(i)) for i in range(5)]
    path = tmp_path / "t.jsonl"
    path.write_bytes(lines[0] + b"\n" + lines[1] + b"\n" + lines[2] + b"\r\n" + lines[3] + b"\n" + lines[4] + b"\r\n")
    [finding] = _at(sftgate.check(path, workers=1), "FMT006")
    assert finding.line == 3 and "2 of 5 lines" in finding.message


def test_blank_lines(tmp_path, records, write_jsonl):
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(0), b"", b"  \t ", records.good(1), b""])
    report = sftgate.check(path, workers=1)
    assert report.exit_code == 0
    assert [f.line for f in _at(report, "FMT005")] == [2, 3, 5]
    assert report.inputs[0].blank_lines == 3
    assert _accounting(report) == {"blank": 3, "valid": 2}


def test_missing_final_newline(tmp_path, records, write_jsonl):
    path = write_jsonl(tmp_path / "t.jsonl", [records.good(0), records.good(1)], final_newline=False)
    report = sftgate.check(path, workers=1)
    assert report.exit_code == 0
    assert [(f.line, f.severity) for f in _at(report, "FMT008")] == [(2, Severity.INFO)]
    assert report.inputs[0].lines == 2


def test_gzip_input_reads_like_plain(tmp_path, records, write_jsonl, without_volatile):
    rows = [records.good(0), records.model_twice(1), b"", records.good(2)]
    plain = write_jsonl(tmp_path / "t.jsonl", rows)
    packed = tmp_path / "t.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = sftgate.check(plain, workers=1), sftgate.check(packed, workers=1)
    assert b.inputs[0].compression == "gzip"
    assert [(f.code, f.line, f.pointer) for f in a.findings] == [(f.code, f.line, f.pointer) for f in b.findings]
    assert a.inputs[0].accounting == b.inputs[0].accounting


def test_gzip_named_jsonl_is_sniffed(tmp_path, records):
    path = tmp_path / "t.jsonl"  # gzip content, plain name
    path.write_bytes(gzip.compress(records.line(records.good(0)) + b"\n"))
    report = sftgate.check(path, workers=1)
    assert report.inputs[0].compression == "gzip" and _accounting(report) == {"valid": 1}


# --- accounting: every physical line lands in exactly one bucket ---------------------------------

def _messy_rows(records) -> tuple[list[bytes], dict[int, str], Counter[str]]:
    """(lines with their endings, expected finding code per line, expected accounting)."""
    good = records.line(records.good(0))
    plan = [
        (records.line(records.good(1)) + b"\r\n", None, "valid"),
        (b"\n", "FMT005", "blank"),
        (b"   \t\n", "FMT005", "blank"),
        (b'{"contents": [\n', "FMT001", "invalid_json"),
        (good.replace(b'"text": "', b'"text": "\xe4', 1) + b"\n", "FMT002", "invalid_utf8"),
        (good[:12] + b"\x00" + good[12:] + b"\n", "FMT009", "nul_byte"),
        (b'["user", "model"]\n', "FMT003", "not_object"),
        (b'"just a string"\n', "FMT003", "not_object"),
        (records.line(records.good(2)) + b"\n", None, "valid"),
        (records.line(records.model_twice(3)) + b"\n", "STR002", "invalid_record"),
        (records.line(records.number_text(4)) + b"\n", "SCH001", "invalid_record"),
        (records.line(records.long_text(5, 5000)) + b"\n", "FMT011", "too_long"),
        (repr(records.good(6)).encode() + b"\r\n", "FMT001", "invalid_json"),
        (records.line(records.good(3)) + b"\r\n", None, "valid"),
        (records.line(records.good(4)), "FMT008", "valid"),  # no final newline
    ]
    rows = [row for row, _, _ in plan]
    codes = {i + 1: code for i, (_, code, _) in enumerate(plan) if code}
    return rows, codes, Counter(status for _, _, status in plan)


def _assert_accounting(report: sftgate.Report, data: bytes, expected: Counter[str], physical_lines) -> None:
    summary = report.to_dict()["inputs"][0]
    assert sum(summary["accounting"].values()) == summary["lines"]
    assert summary["lines"] == physical_lines(data)
    assert summary["accounting"] == dict(expected)
    assert summary["records"] == expected["valid"] + expected["invalid_record"]
    assert summary["blank_lines"] == expected["blank"]


def test_accounting_on_messy_input(tmp_path, records, small_lines, physical_lines):
    rows, codes, expected = _messy_rows(records)
    data = b"".join(rows)
    path = tmp_path / "messy.jsonl"
    path.write_bytes(data)
    report = sftgate.check(path, rules=small_lines, workers=1)
    _assert_accounting(report, data, expected, physical_lines)
    by_line = _codes_by_line(report)
    for line, code in codes.items():
        assert code in by_line.get(line, set()), (line, code, by_line.get(line))
    assert [(f.line, f.message.split()[0]) for f in _at(report, "FMT006")] == [(1, "3")]


def test_accounting_on_messy_gzip_input(tmp_path, records, small_lines, physical_lines):
    rows, codes, expected = _messy_rows(records)
    data = b"".join(rows)
    path = tmp_path / "messy.jsonl.gz"
    path.write_bytes(gzip.compress(data))
    report = sftgate.check(path, rules=small_lines, workers=1)
    _assert_accounting(report, data, expected, physical_lines)
    by_line = _codes_by_line(report)
    assert all(code in by_line.get(line, set()) for line, code in codes.items())


# Line kinds for the property test: (bytes builder, expected status, expected finding code).
def _kinds(records) -> dict[str, tuple[bytes, str, str | None]]:
    good = records.line(records.good(2))
    return {
        "valid": (records.line(records.good(0)), "valid", None),
        "valid_system": (records.line(records.good(5, system="Answer briefly.")), "valid", None),
        "invalid_record": (records.line(records.model_twice(1)), "invalid_record", "STR002"),
        "schema": (records.line(records.number_text(3)), "invalid_record", "SCH001"),
        "warning_only": (records.line(records.ends_with_user(4)), "valid", "STR004"),
        "blank": (b"", "blank", "FMT005"),
        "whitespace": (b" \t  ", "blank", "FMT005"),
        "invalid_json": (b'{"contents": [{"role": "user",}]}', "invalid_json", "FMT001"),
        "py_repr": (repr(records.good(6)).encode(), "invalid_json", "FMT001"),
        "invalid_utf8": (good.replace(b'"text": "', b'"text": "\xe0', 1), "invalid_utf8", "FMT002"),
        "nul": (good[:5] + b"\x00" + good[5:], "nul_byte", "FMT009"),
        "string": (b'"hello"', "not_object", "FMT003"),
        "number": (b"12.5", "not_object", "FMT003"),
        "null": (b"null", "not_object", "FMT003"),
        "too_long": (records.line(records.long_text(1, 3 * MAX_LINE)), "too_long", "FMT011"),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_accounting_invariant_property(records, small_lines, physical_lines, data):
    kinds = _kinds(records)
    chosen = data.draw(st.lists(st.tuples(st.sampled_from(sorted(kinds)), st.booleans()), max_size=25), label="lines")
    final_newline = data.draw(st.booleans(), label="final_newline")
    bom = data.draw(st.booleans(), label="bom")
    compress = data.draw(st.booleans(), label="gzip")
    if chosen and not final_newline and chosen[-1][0] == "blank":
        final_newline = True  # an empty unterminated last line is no line at all

    pieces = []
    for i, (kind, crlf) in enumerate(chosen):
        body = kinds[kind][0]
        last = i == len(chosen) - 1
        end = b"" if last and not final_newline else (b"\r\n" if crlf else b"\n")
        pieces.append(body + end)
    content = b"".join(pieces)
    if bom and content:
        content = b"\xef\xbb\xbf" + content

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("t.jsonl.gz" if compress else "t.jsonl")
        path.write_bytes(gzip.compress(content) if compress else content)
        report = sftgate.check(path, rules=small_lines, workers=1)

    summary = report.to_dict()["inputs"][0]
    assert sum(summary["accounting"].values()) == summary["lines"] == physical_lines(content) == len(chosen)
    assert summary["accounting"] == dict(Counter(kinds[k][1] for k, _ in chosen))
    by_line = _codes_by_line(report)
    for number, (kind, _) in enumerate(chosen, start=1):
        status, code = kinds[kind][1], kinds[kind][2]
        found = by_line.get(number, set())
        if code is not None:
            assert code in found, (number, kind, found)
        errors = {f.code for f in report.findings if f.line == number and f.severity is Severity.ERROR}
        assert bool(errors) == (status not in ("valid", "blank")), (number, kind, errors)
    if bom and content and chosen[0][0] != "too_long":  # a too-long line is never held, so never looked at
        assert "FMT004" in by_line.get(1, set())


# --- determinism and parallelism -----------------------------------------------------------------

@pytest.fixture(scope="module")
def capped(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "capped.yaml"
    path.write_text("report:\n  max_findings_per_rule: 5\nformat:\n  max_line_bytes: 4000\n", encoding="utf-8")
    return path


def _spread_file(records, path: Path) -> tuple[bytes, dict[str, list[int]]]:
    """A few hundred KB with findings all over it; returns the bytes and the lines per code."""
    rows: list[bytes] = [b"\xef\xbb\xbf" + records.line(records.good(0))]
    expected: dict[str, list[int]] = {"FMT004": [1]}
    for n in range(2, 1601):
        if n % 37 == 0:
            row, code = records.line(records.model_twice(n)), "STR002"
        elif n % 53 == 0:
            row, code = records.line(records.number_text(n)), "SCH001"
        elif n % 101 == 0:
            row, code = b"", "FMT005"
        elif n % 211 == 0:
            row, code = records.line(records.long_text(n, 6000)), "FMT011"
        elif n % 71 == 0:
            row, code = records.line(records.ends_with_user(n)), "STR004"
        else:
            row, code = records.line(records.good(n)), None
        if n > 900 and n % 5 == 0 and row and code != "FMT011":  # a too-long line is never looked at
            row += b"\r"  # CRLF only in the second half: its first line must be rebased
            expected.setdefault("CRLF", []).append(n)
        rows.append(row)
        if code:
            expected.setdefault(code, []).append(n)
    data = b"\n".join(rows)  # no final newline: FMT008 comes from the last chunk
    path.write_bytes(data)
    return data, expected


class _ChunkCounter:
    """Counts the chunks the parent merges, whichever path (ranges or batches) produced them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.chunks = 0
        merge = local.ChunkResult.merge

        def counting_merge(result, chunk, cap):
            self.chunks += 1
            return merge(result, chunk, cap)

        monkeypatch.setattr(local.ChunkResult, "merge", counting_merge)


def _force_small_ranges(monkeypatch: pytest.MonkeyPatch, size: int = 4096) -> None:
    """CHUNK_BYTES alone is not enough: `_ranges` never plans chunks under 1 MiB."""
    monkeypatch.setattr(local, "CHUNK_BYTES", size)
    plan = local.plan_ranges
    monkeypatch.setattr(local, "plan_ranges", lambda stream, total, _chunk: plan(stream, total, size))


def _check_capped_listing(report: sftgate.Report, expected: dict[str, list[int]], cap: int) -> None:
    counts = report.counts_by_code()
    listed = {r.code: r.listed for r in report.rules}
    for code in ("STR002", "SCH001", "FMT005", "FMT011", "STR004"):
        assert counts[code] == len(expected[code]), code
        assert listed[code] == min(cap, len(expected[code]))
        assert [f.line for f in _at(report, code)] == expected[code][:cap], code


def test_parallel_ranges_give_the_same_report(tmp_path, records, capped, monkeypatch, without_volatile):
    data, expected = _spread_file(records, tmp_path / "train.jsonl")
    assert len(data) > 200_000
    serial = sftgate.check(tmp_path / "train.jsonl", rules=capped, workers=1)
    _force_small_ranges(monkeypatch)
    counter = _ChunkCounter(monkeypatch)
    parallel = sftgate.check(tmp_path / "train.jsonl", rules=capped, workers=2)
    assert counter.chunks > 20
    assert without_volatile(parallel) == without_volatile(serial)
    _check_capped_listing(parallel, expected, cap=5)
    [crlf] = _at(parallel, "FMT006")
    assert crlf.line == expected["CRLF"][0] and f"{len(expected['CRLF'])} of" in crlf.message
    assert [f.line for f in _at(parallel, "FMT004")] == [1]
    assert [f.line for f in _at(parallel, "FMT008")] == [1600]
    assert parallel.inputs[0].lines == 1600


def test_parallel_ranges_match_serial_uncapped(tmp_path, records, monkeypatch, without_volatile):
    _spread_file(records, tmp_path / "train.jsonl")
    serial = sftgate.check(tmp_path / "train.jsonl", workers=1)
    _force_small_ranges(monkeypatch, 8192)
    parallel = sftgate.check(tmp_path / "train.jsonl", workers=2)
    assert without_volatile(parallel) == without_volatile(serial)
    lines = [f.line or 0 for f in parallel.findings]
    assert lines == sorted(lines)


def test_chunk_bytes_alone_with_a_file_over_the_floor(tmp_path, records, monkeypatch, without_volatile):
    rows = [records.model_twice(i) if i % 997 == 0 else records.good(i) for i in range(9000)]
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"\n".join(records.line(r) for r in rows) + b"\n")
    assert path.stat().st_size > 2 << 20
    serial = sftgate.check(path, workers=1)
    monkeypatch.setattr(local, "CHUNK_BYTES", 4096)
    counter = _ChunkCounter(monkeypatch)
    parallel = sftgate.check(path, workers=2)
    assert counter.chunks >= 2
    assert without_volatile(parallel) == without_volatile(serial)
    assert [f.line for f in _at(parallel, "STR002")] == [i + 1 for i in range(0, 9000, 997)]


def test_parallel_gzip_batches_give_the_same_report(tmp_path, records, capped, monkeypatch, without_volatile):
    data, expected = _spread_file(records, tmp_path / "plain.jsonl")
    path = tmp_path / "train.jsonl.gz"
    path.write_bytes(gzip.compress(data))
    serial = sftgate.check(path, rules=capped, workers=1)
    monkeypatch.setattr(local, "BATCH_LINES_BYTES", 4096)
    counter = _ChunkCounter(monkeypatch)
    parallel = sftgate.check(path, rules=capped, workers=2)
    assert counter.chunks > 20
    assert without_volatile(parallel) == without_volatile(serial)
    _check_capped_listing(parallel, expected, cap=5)
    assert [f.line for f in _at(parallel, "FMT006")] == [expected["CRLF"][0]]
    assert [f.line for f in _at(parallel, "FMT004")] == [1]


def test_same_input_same_report(tmp_path, records, without_volatile):
    _spread_file(records, tmp_path / "train.jsonl")
    first = sftgate.check(tmp_path / "train.jsonl", workers=1)
    again = sftgate.check(tmp_path / "train.jsonl", workers=1)
    assert without_volatile(first) == without_volatile(again)


def test_findings_are_in_input_order_across_train_and_validation(tmp_path, records, write_jsonl):
    train = write_jsonl(tmp_path / "train.jsonl", [records.model_twice(0), records.good(1), records.number_text(2)])
    val = write_jsonl(tmp_path / "val.jsonl", [records.number_text(3), records.model_twice(4)])
    report = sftgate.check(train, validation=val, workers=1)
    located = [(f.source, f.line) for f in report.findings if f.line is not None]
    order = {str(train): 0, str(val): 1}
    assert located == sorted(located, key=lambda x: (order[x[0]], x[1]))
    assert [(i.path, i.split) for i in report.inputs] == [(str(train), "train"), (str(val), "validation")]
