"""File and line format (FMT): is each line one UTF-8 JSON object, and is the file JSON Lines?

Line-level checks run in `decode_line`, in the order a parser meets the problems: length, BOM,
line ending, blank, NUL, UTF-8, JSON, object. The first that fails decides the line's status;
the run goes on with the next line. File-level checks read the pass's `FileStats`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from sftgate.model import Action, Finding, LineStatus, Severity
from sftgate.rules.base import FileRule, LineRule, RuleContext

BOM = b"\xef\xbb\xbf"


class InvalidJson(LineRule):
    """## What it does
    Flags a line that is not valid JSON, with the parser's message and column.

    ## Why is this bad?
    The tuning service parses every line as JSON; one broken line fails the upload or is
    dropped, and a Python `repr` written by mistake (single quotes, `None`, `True`) breaks
    every line of the file.

    ## Example
    `{'contents': [...]}` (single quotes), `{"contents": [...],}` (trailing comma), or a line
    nested deeper than 254 levels (sftgate reads 1,024 but writes back at most 254: a function
    call's arguments that deep are flagged here rather than dropped by `prepare` unannounced).
    Use instead: write each record with `json.dumps(record)`.
    """

    code = "FMT001"
    name = "invalid-json"
    default_severity = Severity.ERROR
    default_action = Action.DROP


class InvalidUtf8(LineRule):
    """## What it does
    Flags a line whose bytes are not valid UTF-8, with the offset of the first bad byte.

    ## Why is this bad?
    JSON Lines is UTF-8. A file saved as Latin-1 or Windows-1252, or cut in the middle of a
    multi-byte character, cannot be read by the service.

    ## Example
    `{"contents": [{"role": "user", "parts": [{"text": "caf\\xe9"}]}]}` written in Latin-1.
    Use instead: re-encode the file as UTF-8.
    """

    code = "FMT002"
    name = "invalid-utf8"
    default_severity = Severity.ERROR
    default_action = Action.DROP


class NotAnObject(LineRule):
    """## What it does
    Flags a line that is valid JSON but not an object (an array, string, number or null).

    ## Why is this bad?
    Each line of a tuning file must be one example object with `contents`.

    ## Example
    `["user question", "model answer"]`.
    Use instead: `{"contents": [{"role": "user", ...}, {"role": "model", ...}]}`.
    """

    code = "FMT003"
    name = "not-an-object"
    default_severity = Severity.ERROR
    default_action = Action.DROP


class Utf8Bom(LineRule):
    """## What it does
    Flags a UTF-8 byte order mark at the start of the file.

    ## Why is this bad?
    JSON forbids a BOM; strict parsers reject the first line, so the first example is lost or
    the upload fails. Editors on Windows add it silently.

    ## Example
    A file whose first bytes are `EF BB BF {"contents": ...`.
    Use instead: save as UTF-8 without BOM (`prepare` strips it).
    """

    code = "FMT004"
    name = "utf8-bom"
    default_severity = Severity.WARNING
    default_action = Action.FIX
    fixes = "output"  # the canonical output fixes it


class BlankLine(LineRule):
    """## What it does
    Flags an empty or whitespace-only line.

    ## Why is this bad?
    A blank line is not an example; JSONL readers differ on whether they skip it or fail.

    ## Example
    Two records separated by an empty line.
    Use instead: one record per line, no empty lines.
    """

    code = "FMT005"
    name = "blank-line"
    default_severity = Severity.WARNING
    default_action = Action.DROP


class CrlfLineEndings(FileRule):
    """## What it does
    Flags a file whose lines end with CR LF (`\\r\\n`) instead of LF, once per file with the count.

    ## Why is this bad?
    The carriage return is not part of the JSON; most readers tolerate it, some keep it in the
    last value or reject the line. Mixed endings also show that files were concatenated from
    different tools.

    ## Example
    A file saved by a Windows editor.
    Use instead: LF line endings (`prepare` rewrites them).
    """

    code = "FMT006"
    name = "crlf-line-endings"
    default_severity = Severity.WARNING
    default_action = Action.FIX
    fixes = "output"  # the canonical output fixes it

    def check(self, stats: Any, ctx: RuleContext) -> Iterator[Finding]:
        if stats.crlf_lines:
            yield self.finding(
                stats.source,
                stats.first_crlf_line,
                f"{stats.crlf_lines:,} of {stats.lines:,} lines end with CR LF",
                hint="save with LF (\\n) line endings",
            )


class EmptyFile(FileRule):
    """## What it does
    Flags an input file with no bytes at all (or, once decompressed, no content), and one
    whose lines are all blank.

    ## Why is this bad?
    An empty training or validation file is almost always a failed export; the tuning job
    fails on it after you have waited for it to start.

    ## Example
    `train.jsonl` of 0 bytes, or of one newline.
    Use instead: check the export that wrote it.
    """

    code = "FMT007"
    name = "empty-file"
    default_severity = Severity.ERROR

    def check(self, stats: Any, ctx: RuleContext) -> Iterator[Finding]:
        if stats.broken is not None:
            return
        if stats.lines == 0:
            yield self.finding(stats.source, None, "file is empty (0 bytes of content)")
        elif stats.status.get(LineStatus.BLANK.value, 0) == stats.lines:
            yield self.finding(stats.source, None, f"file holds no records: its {stats.lines:,} "
                               f"line{'s are' if stats.lines > 1 else ' is'} blank")


class MissingFinalNewline(FileRule):
    """## What it does
    Notes that the last line of the file does not end with a newline.

    ## Why is this bad?
    Harmless to the service, but `cat a.jsonl b.jsonl` then glues the last record of one file
    to the first of the next, producing an invalid line.

    ## Example
    A file written with `"\\n".join(lines)`.
    Use instead: end every line, including the last, with `\\n`.
    """

    code = "FMT008"
    name = "missing-final-newline"
    default_severity = Severity.INFO
    default_action = Action.FIX
    fixes = "output"  # the canonical output fixes it

    def check(self, stats: Any, ctx: RuleContext) -> Iterator[Finding]:
        if stats.lines and not stats.final_newline and stats.broken is None:
            yield self.finding(stats.source, stats.lines, "last line has no newline at the end")


class NulByte(LineRule):
    """## What it does
    Flags a line that contains a NUL (0x00) byte, with its column.

    ## Why is this bad?
    NUL bytes come from binary files, UTF-16 text or corrupted copies; they are not valid in
    JSON text and often mean the whole file was written with the wrong encoding.

    ## Example
    A file saved as UTF-16 (`{\\x00"\\x00c\\x00...`).
    Use instead: re-export as UTF-8 JSON Lines.
    """

    code = "FMT009"
    name = "nul-byte"
    default_severity = Severity.ERROR
    default_action = Action.DROP


class JsonArrayFile(FileRule):
    """## What it does
    Flags a file that holds one JSON array of records instead of one record per line.

    ## Why is this bad?
    Vertex AI tuning reads JSON Lines only; an array file fails as a whole (`training_dataset_uri
    should be a GCS object of type JSONL`). Alpaca, LIMA and ShareGPT ship as arrays.

    ## Example
    `[{"contents": ...}, {"contents": ...}]` or the same array pretty-printed over many lines.
    Use instead: one object per line, e.g. `jq -c '.[]' data.json > data.jsonl`.
    """

    code = "FMT010"
    name = "json-array-file"
    default_severity = Severity.ERROR
    default_action = Action.DROP

    def check(self, stats: Any, ctx: RuleContext) -> Iterator[Finding]:
        if stats.json_array:
            yield self.finding(
                stats.source,
                None,
                f"file is a JSON array ({stats.lines:,} line{'' if stats.lines == 1 else 's'}), not JSON Lines",
                hint=f"write one object per line, e.g. jq -c '.[]' {stats.source} > out.jsonl",
            )


class LineTooLong(LineRule):
    """## What it does
    Flags a line longer than `format.max_line_bytes` without loading it into memory.

    ## Why is this bad?
    No tuning example is that large (the token limit is reached long before); such a line is
    usually a whole file glued into one line, or binary data, and would exhaust memory.

    ## Example
    A 2 GB line produced by writing a JSON array without newlines.

    ## Options
    - `format.max_line_bytes`
    """

    code = "FMT011"
    name = "line-too-long"
    default_severity = Severity.ERROR
    default_action = Action.DROP


class TruncatedInput(LineRule):
    """## What it does
    Flags an input that ends in the middle of its data, such as a truncated gzip stream.

    ## Why is this bad?
    An interrupted download or copy loses the records after the cut, silently, unless someone
    checks; the lines read before the cut are still checked and counted.

    ## Example
    `train.jsonl.gz` whose last megabyte is missing.
    Use instead: copy the file again and compare its checksum.
    """

    code = "FMT012"
    name = "truncated-input"
    default_severity = Severity.ERROR
    default_action = Action.DROP


_PY_REPR = re.compile(rb"^\s*\[?\s*\{\s*'|':\s*(None|True|False)\b")


def decode_line(
    data: bytes | None, length: int, *, source: str, line: int, first: bool, max_line_bytes: int,
    strings: bool = False,
) -> tuple[LineStatus, dict[str, Any] | str | None, list[Finding], bool]:
    """Decode one line: (status, object or None, findings, ended with CR). With `strings`, a
    JSON string is a value too (a production sample's prompt).

    The status is final except for objects, which the record rules may still mark invalid.
    """
    findings: list[Finding] = []
    if data is None:
        msg = f"line is {length:,} bytes; the limit is {max_line_bytes:,}"
        findings.append(LineTooLong.finding(source, line, msg, hint="raise format.max_line_bytes"))
        return LineStatus.TOO_LONG, None, findings, False
    if first and data.startswith(BOM):
        data = data[3:]
        findings.append(Utf8Bom.finding(source, line, "file starts with a UTF-8 byte order mark",
                                        hint="save as UTF-8 without BOM"))
    crlf = data.endswith(b"\r")
    if crlf:
        data = data[:-1]
    if not data or data.isspace():  # isspace stops at the first other byte; strip would copy
        findings.append(BlankLine.finding(source, line, "blank line"))
        return LineStatus.BLANK, None, findings, crlf
    nul = data.find(b"\x00")
    if nul >= 0:
        findings.append(NulByte.finding(source, line, f"NUL byte at column {nul + 1}", column=nul + 1,
                                        hint="the file may be UTF-16 or binary; re-export as UTF-8"))
        return LineStatus.NUL_BYTE, None, findings, crlf
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        status, finding = _parse_failure(data, exc, source, line)
        findings.append(finding)
        return status, None, findings, crlf
    if not isinstance(obj, dict) and not (strings and isinstance(obj, str)):
        kind = _json_kind(obj)
        findings.append(NotAnObject.finding(source, line, f"line is a JSON {kind}, not an object",
                                            hint='each line must be one {"contents": [...]} object'))
        return LineStatus.NOT_OBJECT, None, findings, crlf
    return LineStatus.VALID, obj, findings, crlf


def _parse_failure(
    data: bytes, exc: orjson.JSONDecodeError, source: str, line: int
) -> tuple[LineStatus, Finding]:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as bad:
        msg = f"invalid UTF-8 at byte {bad.start} of the line (0x{data[bad.start]:02x})"
        return LineStatus.INVALID_UTF8, InvalidUtf8.finding(
            source, line, msg, column=bad.start + 1, hint="re-encode the file as UTF-8"
        )
    reason = str(exc).split(": line ", 1)[0]
    hint = None
    if _PY_REPR.search(data):
        reason = f"looks like a Python dict, not JSON ({reason})"
        hint = "write records with json.dumps(record), not str(record)"
    elif reason.startswith("depth limit exceeded"):
        reason = "JSON nested deeper than 1,024 levels"
    elif b"\r{" in data or b"\r[" in data:  # records one after another, each ended by a CR alone
        hint = "the file's lines seem to end with CR alone (old Mac style): convert them to LF"
    return LineStatus.INVALID_JSON, InvalidJson.finding(
        source, line, f"invalid JSON: {reason} at column {exc.colno}", column=exc.colno, hint=hint
    )


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
