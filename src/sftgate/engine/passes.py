"""The check pass over one chunk of lines: decode, object rules, example, record rules, features.

`check_lines` is a pure function of its lines and the profile, so the executor may run chunks
in any process and any order; line numbers inside a `ChunkResult` are local to the chunk (1 =
the chunk's first line) and the executor rebases them when it merges chunks in input order.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from orjson import OPT_APPEND_NEWLINE, OPT_SORT_KEYS, JSONDecodeError, JSONEncodeError, dumps, loads

from sftgate.baseline import fingerprint
from sftgate.config import Profile
from sftgate.engine.features import (
    DedupSettings,
    FeatureBuilder,
    FeatureChunk,
    FeatureTable,
)
from sftgate.formats import detect_foreign, to_example
from sftgate.formats.convert import Converted, convert
from sftgate.formats.prompts import prompt_record
from sftgate.io.reader import BROKEN, NEWLINE, Line
from sftgate.model import (
    MEDIA_RESOLUTION_CODE,
    Action,
    Finding,
    LineStatus,
    Origin,
    PartKind,
    Severity,
)
from sftgate.rules import REGISTRY, ObjectRule, RecordRule, RuleContext, declared
from sftgate.rules.convert import ConversionLoss, UnconvertibleRecord
from sftgate.rules.dedup import SourcePreference
from sftgate.rules.fmt import InvalidJson, TruncatedInput, decode_line
from sftgate.rules.schema import ForeignFormat, SchemaViolation, example_validator
from sftgate.rules.structure import PLAIN_RULES, plain_and_clean
from sftgate.rules.tokens import Meter, TokenColumns

_FILE_DATA = PartKind.FILE_DATA.value
_PLAIN_TOP = frozenset({"contents", "systemInstruction", "system_instruction"})  # keys whose values the schema bounds
_PLAIN_SHAPE = frozenset({PartKind.TEXT.value})
MAX_DEPTH = 254  # levels of nesting orjson writes back (it reads 1,024): a deeper record is FMT001


def _deeper(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a JSON value nests more than `limit` objects and arrays (itself at level 1);
    without recursion."""
    stack = [(value, 1)]
    while stack:
        value, level = stack.pop()
        if level > limit:
            return True
        inner = value.values() if type(value) is dict else value
        stack.extend((v, level + 1) for v in inner if type(v) is dict or type(v) is list)
    return False


def _too_deep(obj: dict[str, Any]) -> bool:
    """Whether a record nests deeper than orjson writes back: asked of orjson (~1 µs a record),
    then, if it refuses, confirmed by `_deeper`."""
    try:
        dumps(obj)
    except JSONEncodeError:
        return _deeper(obj)
    return False


def _nested(origin: Origin) -> Finding:
    return InvalidJson.finding(origin.source, origin.line,
                               f"invalid JSON: nested deeper than {MAX_DEPTH} levels, the most sftgate writes back",
                               hint="flatten the deep value, or pass it as a JSON string")
new_tuple = tuple.__new__  # builds an Origin without the NamedTuple's Python-level __new__
STATUSES = list(LineStatus)  # EmitChunk.status holds indexes into this list
_STATUS_INDEX = {status: i for i, status in enumerate(STATUSES)}
CANONICAL = OPT_SORT_KEYS | OPT_APPEND_NEWLINE  # how `prepare` writes a record: compact, keys sorted
# Top-level keys of a Gemini example; `prepare` may strip the others (output.unknown_keys).
EXAMPLE_KEYS = frozenset({"systemInstruction", "system_instruction", "contents", "tools", "toolConfig",
                          "generationConfig"})


# A staged line (engine.inputs) for a record its container could not give: {CONTAINER_ERROR: why}.
CONTAINER_ERROR = "\u0000sftgate: unreadable record"


@dataclass(frozen=True, slots=True)
class Reading:
    """How an input's records are read (engine.inputs decides it per input): the container they
    were stored in (`jsonl`, or `json`/`csv`/`parquet` staged as JSON Lines of source records),
    the format each record is converted from (`gemini`: none) and the table column mapping."""

    format: str = "gemini"
    container: str = "jsonl"
    mapping: tuple[tuple[str, str], ...] = ()

    @property
    def converts(self) -> bool:
        return self.format != "gemini"


GEMINI = Reading()
PROMPTS = "prompts"  # Reading.format of a production sample: each record read by `prompts.prompt_record`
UNSCORED = frozenset({"eval", "production"})  # splits read but not tuned on: no record rules, no tokens


def canonical(obj: dict[str, Any], strip_unknown: bool = False) -> bytes:
    """A record as `prepare` writes it: one line of compact UTF-8 JSON, keys sorted, `\n` at
    the end; with `strip_unknown`, top-level keys the example format does not define removed."""
    if strip_unknown and not obj.keys() <= EXAMPLE_KEYS:
        obj = {k: v for k, v in obj.items() if k in EXAMPLE_KEYS}
    return dumps(obj, option=CANONICAL)


def canonical_or_none(obj: dict[str, Any], strip_unknown: bool) -> bytes | None:
    """`canonical`, or None for an object orjson cannot write back (the line has no canonical form)."""
    try:
        return canonical(obj, strip_unknown)
    except (JSONEncodeError, TypeError):
        return None


@dataclass
class EmitChunk:
    """What `prepare` needs to write a chunk's lines again without re-checking them.

    Per line: its status (an index into STATUSES), where it is in the input, its fingerprint
    (`baseline.fingerprint`, 8 bytes in `marks`) and the size of its canonical form (0: none;
    the line is not an object, or the object cannot be written).
    Records converted from another format are spilled, in their canonical form, to the file
    `spill`; a Gemini line is its own record, so prepare's writers parse and write again only
    the lines they keep, and `spill` is "" (no file: most of a file's bytes are not written
    twice). A Gemini object's size is `UNMEASURED`: the writer that keeps it writes it, and
    quarantines it then if it cannot (the check pass already makes a record nested deeper than
    orjson writes an FMT001; this is the last guard); the fingerprint tells the writer that the
    line it reads again is the one checked.
    """

    spill: str
    status: bytearray = field(default_factory=bytearray)
    offsets: array = field(default_factory=lambda: array("q"))
    lengths: array = field(default_factory=lambda: array("q"))
    canonical: array = field(default_factory=lambda: array("q"))
    marks: bytearray = field(default_factory=bytearray)


UNMEASURED = -1  # `EmitChunk.canonical` of a Gemini object: measured when written


@dataclass
class ChunkResult:
    """What the pass learned from some lines: one chunk, or a whole file once chunks are merged.

    A chunk numbers its lines from 1; `merge` appends a later chunk, shifting its line numbers
    by the lines already held, so a merged result numbers lines as the file does.
    """

    lines: int = 0
    content_bytes: int = 0
    status: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)  # capped per rule, local line numbers
    counts: Counter[str] = field(default_factory=Counter)  # findings per code, uncapped
    listed: Counter[str] = field(default_factory=Counter)  # findings per code kept in `findings`
    failing_lines: array = field(default_factory=lambda: array("q"))  # local lines at >= fail_on
    drop_lines: array = field(default_factory=lambda: array("q"))  # lines with a drop-action finding and no fix
    fix_lines: array = field(default_factory=lambda: array("q"))  # lines a record fix rewrites (then checked again)
    crlf_lines: int = 0
    first_crlf_line: int | None = None
    last_end: int = NEWLINE  # how the chunk's last line ended (NEWLINE, EOF or BROKEN)
    media_records: int = 0
    record_lines: array = field(default_factory=lambda: array("q"))
    record_fingerprints: bytearray = field(default_factory=bytearray)  # 8 bytes per record (baseline.fingerprint)
    suppressed: Counter[tuple[str, str]] = field(default_factory=Counter)  # (waiver|baseline, code) -> findings left out
    media_resolution: bytearray = field(default_factory=bytearray)  # MEDIA_RESOLUTIONS index
    has_system: bytearray = field(default_factory=bytearray)
    bare_prompts: int = 0  # production samples read as a bare prompt (a string, a prompt field): no system instruction known
    # Dataset-rule features: a chunk's FeatureChunk; once merged, the file's FeatureTable.
    features: FeatureChunk | FeatureTable | None = None
    tokens: TokenColumns | None = None  # token statistics per example (training and validation files)
    emit: EmitChunk | None = None  # for `prepare`: a chunk's lines, to write them again
    emits: list[tuple[int, EmitChunk]] = field(default_factory=list)  # merged: (lines before it, chunk)

    def add_record(self, line: int, mark: bytes, config: dict[str, Any] | None, has_system: bool) -> None:
        """The per-record columns of one record that reached the record rules (or passed the pre-screen)."""
        self.record_lines.append(line)
        self.record_fingerprints += mark
        self.media_resolution.append(MEDIA_RESOLUTION_CODE[config.get("mediaResolution")] if config else 0)
        self.has_system.append(has_system)

    def merge(self, chunk: ChunkResult, cap: int) -> None:
        """Append `chunk`, the lines that follow these; keep at most `cap` findings per rule."""
        base = self.lines
        for finding in chunk.findings:
            if self.listed[finding.code] < cap:
                self.listed[finding.code] += 1
                self.findings.append(replace(finding, line=finding.line + base) if finding.line else finding)
        self.counts.update(chunk.counts)
        self.status.update(chunk.status)
        _extend_rebased(self.failing_lines, chunk.failing_lines, base)
        _extend_rebased(self.drop_lines, chunk.drop_lines, base)
        _extend_rebased(self.fix_lines, chunk.fix_lines, base)
        _extend_rebased(self.record_lines, chunk.record_lines, base)
        self.record_fingerprints.extend(chunk.record_fingerprints)
        self.suppressed.update(chunk.suppressed)
        self.media_resolution.extend(chunk.media_resolution)
        self.has_system.extend(chunk.has_system)
        self.media_records += chunk.media_records
        self.bare_prompts += chunk.bare_prompts
        self.crlf_lines += chunk.crlf_lines
        if self.first_crlf_line is None and chunk.first_crlf_line is not None:
            self.first_crlf_line = chunk.first_crlf_line + base
        self.content_bytes += chunk.content_bytes
        if chunk.features is not None:
            if self.features is None:
                self.features = FeatureTable()
            assert isinstance(self.features, FeatureTable) and isinstance(chunk.features, FeatureChunk)
            self.features.append(chunk.features)
        if chunk.tokens is not None:
            if self.tokens is None:
                self.tokens = TokenColumns()
            self.tokens.extend(chunk.tokens)
        if chunk.emit is not None:
            self.emits.append((base, chunk.emit))
        if chunk.lines:
            self.last_end = chunk.last_end
        self.lines += chunk.lines


def _conversion_findings(converted: Converted, origin: Origin) -> list[Finding]:
    found = [ConversionLoss.at(origin, note.message, pointer=note.pointer or None) for note in converted.notes]
    if converted.error is not None:
        found.append(UnconvertibleRecord.at(origin, converted.error, pointer=converted.error_pointer or None))
    return found


def _extend_rebased(into: array, lines: array, base: int) -> None:
    """Append a chunk's local line numbers, shifted by the lines before it (vectorised)."""
    if lines:
        into.frombytes((np.frombuffer(lines, dtype=np.int64) + base).tobytes())


class Checker:
    """The rules of one profile, prepared once per process and applied to many chunks."""

    def __init__(self, profile: Profile, split: str, features: bool = True, token_sample: float | None = 1.0,
                 emit_dir: str | None = None, reading: Reading = GEMINI, skew: bool = False) -> None:
        """`features`: collect the dataset rules' features (when a DUP or LEAK rule will use them);
        `skew`: collect the skew analysis' columns too (`features.SKEW_COLUMNS`);
        `token_sample`: the share of examples whose tokens the statistics count (None: no
        statistics, when no TOK rule is on; an eval set, read but not tuned on, counts none); `emit_dir`: keep what `prepare` needs to write the
        lines again (an `EmitChunk` per chunk, canonical records spilled to this directory);
        `reading`: how the lines' records are read (converted from another format first)."""
        self.profile = profile
        self.reading = reading
        self.mapping = dict(reading.mapping)
        self.token_sample = token_sample
        # The meter also counts for the record rules (TOK, declared token lengths); it collects
        # statistics only when they are wanted.
        self.meter = None if split in UNSCORED else Meter(profile, split, sample_rate=token_sample or 1.0)
        self.collects_tokens = self.meter is not None and token_sample is not None
        self.ctx = RuleContext(profile=profile, split=split, meter=self.meter)
        on = profile.is_on
        self.object_rules = [
            REGISTRY[c]() for c in sorted(REGISTRY)
            if issubclass(REGISTRY[c], ObjectRule) and on(c) and REGISTRY[c] not in (SchemaViolation, ForeignFormat)
        ]
        # An eval set or a production sample is read, not tuned on: no structure rules.
        self.record_rules = [] if split in UNSCORED else [
            REGISTRY[c]() for c in sorted(REGISTRY) if issubclass(REGISTRY[c], RecordRule) and on(c)
        ] + [rule for code, rule in sorted(declared.build(profile.declared).items())
             if on(code) or (rule.kind_name == "regex" and on(declared.ContentRuleTimeout.code))]
        # Which record rules can find anything in an example of a given shape; a dataset has
        # few distinct shapes, so this is computed a handful of times per run.
        self._rules_by_shape: dict[frozenset[str], list[RecordRule]] = {}
        self.schema_on = on(SchemaViolation.code)
        # A converted file's records are all read in its format: what is not is a CNV001, not an SCH003.
        self.foreign_on = on(ForeignFormat.code) and not reading.converts
        self.severity = {c: setting.severity for c, setting in profile.rules.items()}
        self.selected = profile.selected
        self.fail_rank = profile.fail_on.rank
        self.cap = profile.max_findings_per_rule
        self.suppress = profile.suppress or None
        self.max_line = profile.format["max_line_bytes"]
        self.validator = example_validator()
        self.features = FeatureBuilder(DedupSettings.from_profile(profile.dedup), dedup=features, skew=skew) \
            if features or skew else None
        # The survivor policy `source` ranks each record by a field of the record as read.
        self.preference = SourcePreference.from_profile(profile.dedup) if features and split not in UNSCORED else None
        self.prompts = reading.format == PROMPTS
        # A plain text conversation that the few rules for its shape cannot flag needs no
        # Example, when nothing else reads one (features, token statistics).
        plain = frozenset({PartKind.TEXT.value})
        self.prescreen = self.features is None and not self.collects_tokens and all(
            type(rule) in PLAIN_RULES for rule in self.record_rules if rule.triggers is None or rule.triggers & plain)
        self.emit_dir = emit_dir
        self.strip_unknown = profile.data.get("output", {}).get("unknown_keys") == "strip"
        self.drops = frozenset(c for c in profile.rules if profile.action(c) is Action.DROP)
        self.fixes = frozenset(c for c in REGISTRY
                               if profile.action(c) is Action.FIX and REGISTRY[c].fixes == "record")

    def check_lines(self, lines: Iterable[Line], *, source: str, starts_file: bool) -> ChunkResult:
        """Check `lines`, as a `LineReader` yields them; `starts_file` if the first is line 1."""
        out = ChunkResult()
        number = 0
        last_end = NEWLINE
        emit = spilled = None
        if self.emit_dir is not None:
            emit, spilled = EmitChunk(spill=""), []
            out.emit = emit
        for offset, data, length, end in lines:
            number += 1
            last_end = end
            out.content_bytes += length + (end == NEWLINE)
            # Fast path: most lines are one JSON object. orjson rejects everything decode_line
            # diagnoses (NUL, bad UTF-8, blank, non-JSON) except a trailing CR, which is JSON
            # whitespace; a BOM (line 1 only) and a truncated last line take the slow path.
            obj = None
            mark = fingerprint(data) if data is not None else b"\0" * 8
            if data is not None and end != BROKEN and (offset or not starts_file):
                try:
                    obj = loads(data)
                except JSONDecodeError:
                    pass
            if type(obj) is dict or (self.prompts and type(obj) is str):
                status, crlf = LineStatus.VALID, data.endswith(b"\r")
                found, obj = self._check_object(obj, new_tuple(Origin, (source, number, offset, length)), out, mark)
            elif end == BROKEN:
                status, crlf = LineStatus.TRUNCATED, False
                found = [TruncatedInput.finding(source, number, "input ends in the middle of this line",
                                                hint="the file is truncated or corrupt; copy it again")]
            else:
                status, obj, found, crlf = decode_line(
                    data, length, source=source, line=number, first=starts_file and offset == 0,
                    max_line_bytes=self.max_line, strings=self.prompts,
                )
                if obj is not None:
                    more, obj = self._check_object(obj, Origin(source, number, offset, length), out, mark)
                    found += more
            if crlf:
                out.crlf_lines += 1
                if out.first_crlf_line is None:
                    out.first_crlf_line = number
            if found:
                status = self._record(out, number, status, found, mark.hex() if data is not None else None)
            else:
                out.status[status.value] += 1
            if emit is not None:
                self._keep(emit, spilled, number, status, obj if type(obj) is dict else None, offset, length, mark)
        out.lines = number
        out.last_end = last_end
        if emit is not None and self.reading.converts:
            emit.spill = self._spill(spilled)
        if self.features is not None:
            out.features = self.features.finish()
        if self.collects_tokens:
            out.tokens, self.meter.columns = self.meter.columns, TokenColumns()  # type: ignore[union-attr]
        return out

    def _check_object(self, obj: dict[str, Any], origin: Origin, out: ChunkResult,
                      mark: bytes) -> tuple[list[Finding], dict[str, Any] | None]:
        """The findings on one object, and the Gemini record they are about (the object, or
        what it converts to; None when it does not convert)."""
        found: list[Finding] = []
        ctx = self.ctx
        read = obj
        if self.reading.container != "jsonl" and type(obj) is dict and CONTAINER_ERROR in obj:
            found.append(UnconvertibleRecord.at(origin, str(obj[CONTAINER_ERROR])))
            return found, None
        if self.prompts:
            record, why, bare = prompt_record(obj)
            if record is None:
                found.append(UnconvertibleRecord.at(origin, str(why)))
                return found, None
            out.bare_prompts += bare
            obj = record
        elif self.reading.converts:
            converted = convert(obj, self.reading.format, self.mapping)
            found.extend(_conversion_findings(converted, origin))
            if converted.record is None:
                return found, None
            obj = converted.record
        foreign = detect_foreign(obj) if self.foreign_on and "contents" not in obj else None
        if foreign is not None:
            found.extend(ForeignFormat().check(obj, origin, ctx))
            return found, obj
        for rule in self.object_rules:
            found.extend(rule.check(obj, origin, ctx))
        # Only where the schema leaves values open can a record nest deeper than the writer goes:
        # such a record is not read further (the schema's error listing cannot walk it either).
        plain = obj.keys() <= _PLAIN_TOP
        if not self.validator.is_valid(obj):
            if _too_deep(obj):
                found.append(_nested(origin))
                return found, None
            if self.schema_on:
                found.extend(SchemaViolation().check(obj, origin, ctx))
            return found, obj  # structure rules read shapes the schema guarantees
        if not plain and _too_deep(obj):
            found.append(_nested(origin))
            return found, None
        if self.prescreen and plain_and_clean(obj):
            out.add_record(origin.line, mark, obj.get("generationConfig"),
                           "systemInstruction" in obj or "system_instruction" in obj)
            return found, obj
        example = to_example(obj, origin)
        shape = example.shape
        if plain and not shape <= _PLAIN_SHAPE and _too_deep(obj):  # function call arguments, unknown part keys
            found.append(_nested(origin))
            return found, None
        rules = self._rules_by_shape.get(shape)
        if rules is None:
            rules = self._rules_by_shape[shape] = [
                r for r in self.record_rules if r.triggers is None or r.triggers & shape
            ]
        for rule in rules:
            found.extend(rule.check(example, ctx))
        out.add_record(origin.line, mark, example.generation_config, example.system_key is not None)
        if self.features is not None:
            self.features.add(example, 0 if self.preference is None else self.preference.rank(read))
        if self.collects_tokens:
            self.meter.collect(example)  # type: ignore[union-attr]
        if _FILE_DATA in shape:
            out.media_records += 1
        return found, obj

    def _keep(self, emit: EmitChunk, spilled: list[bytes], number: int, status: LineStatus,
              obj: dict[str, Any] | None, offset: int, length: int, mark: bytes) -> None:
        """Note what `prepare` needs of one line; spill a converted record's canonical form."""
        emit.status.append(_STATUS_INDEX[status])
        emit.offsets.append(offset)
        emit.lengths.append(length)
        emit.marks += mark
        if obj is None:
            size = 0  # the emit pass quarantines it, saying why
        elif self.reading.converts:
            data = canonical_or_none(obj, self.strip_unknown)
            if data is not None:
                spilled.append(data)
            size = 0 if data is None else len(data)
        else:  # the line itself, written by the writer that keeps it
            size = UNMEASURED
        emit.canonical.append(size)

    def _spill(self, spilled: list[bytes]) -> str:
        assert self.emit_dir is not None
        fd, path = tempfile.mkstemp(dir=self.emit_dir, suffix=".spill")
        with os.fdopen(fd, "wb") as fh:
            fh.writelines(spilled)
        return path

    def _record(self, out: ChunkResult, number: int, status: LineStatus, found: list[Finding],
                mark: str | None) -> LineStatus:
        worst = -1
        is_error = False
        drop = fix = False
        for finding in found:
            code = finding.code
            if code not in self.selected:
                continue
            finding = replace(finding, severity=self.severity[code], fingerprint=mark)
            if self.suppress is not None and (why := self.suppress.why(finding)) is not None:
                out.suppressed[why, code] += 1
                continue
            drop = drop or code in self.drops
            fix = fix or code in self.fixes
            severity = finding.severity
            out.counts[code] += 1
            if out.counts[code] <= self.cap:
                out.findings.append(finding)
            worst = max(worst, severity.rank)
            is_error = is_error or severity is Severity.ERROR
        if status is LineStatus.VALID and is_error:
            status = LineStatus.INVALID_RECORD
        out.status[status.value] += 1
        if worst >= self.fail_rank:
            out.failing_lines.append(number)
        if fix:  # fixed first, then checked again: a legacy role also means "no model turn"
            out.fix_lines.append(number)
        elif drop:
            out.drop_lines.append(number)
        return status
