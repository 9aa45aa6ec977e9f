"""The shared vocabulary: severities, actions, findings, and the canonical `Example`.

Every other module speaks in these types. They are frozen so that a finding or an example can be
passed between rules, processes and emitters without anyone changing it under someone else.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import orjson


class Severity(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class Action(enum.Enum):
    """What `prepare` does with a record that has a finding of this rule."""

    FLAG = "flag"  # report only; the record is kept
    DROP = "drop"  # the record goes to the quarantine
    FIX = "fix"  # the record is rewritten (where the rule knows how) and kept


class LineStatus(enum.Enum):
    """Where one physical input line ends up in the accounting. Each line gets exactly one."""

    VALID = "valid"  # a JSON object with no finding at error severity
    INVALID_RECORD = "invalid_record"  # a JSON object with at least one error finding
    BLANK = "blank"
    INVALID_UTF8 = "invalid_utf8"
    NUL_BYTE = "nul_byte"
    INVALID_JSON = "invalid_json"
    NOT_OBJECT = "not_object"
    TOO_LONG = "too_long"
    TRUNCATED = "truncated"
    JSON_ARRAY_FILE = "json_array_file"

    @property
    def is_record(self) -> bool:
        """True for lines that parsed as a JSON object: the dataset's examples."""
        return self in (LineStatus.VALID, LineStatus.INVALID_RECORD)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at one place. Identity (for baselines and waivers) is (code, source, line)."""

    code: str
    severity: Severity
    message: str
    source: str
    line: int | None = None  # 1-based; None for a finding about the whole file
    pointer: str | None = None  # JSON pointer inside the record, e.g. /contents/2/role
    column: int | None = None  # 1-based byte column, for parse errors
    hint: str | None = None
    related: str | None = None  # `path:line` of the record this one duplicates or leaks from
    similarity: float | None = None  # measured similarity to `related`
    fingerprint: str | None = None  # of the line's bytes (16 hex digits): finds the record again after lines move

    @property
    def location(self) -> str:
        """`path:line:pointer-or-column`, the way linters print it."""
        out = self.source
        if self.line is not None:
            out += f":{self.line}"
            if self.column is not None:
                out += f":{self.column}"
            elif self.pointer:
                out += f":{self.pointer}"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "source": self.source,
            "line": self.line,
            "pointer": self.pointer,
            "column": self.column,
            "hint": self.hint,
            "related": self.related,
            "similarity": self.similarity,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """The inverse of `to_dict` (a saved JSON report's findings)."""
        return cls(
            code=data["code"], severity=Severity(data["severity"]), message=data["message"],
            source=data["source"], line=data.get("line"), pointer=data.get("pointer"), column=data.get("column"),
            hint=data.get("hint"), related=data.get("related"), similarity=data.get("similarity"),
            fingerprint=data.get("fingerprint"),
        )


@dataclass(frozen=True, eq=False)
class FindingColumns:
    """Many findings of one rule on one file, as columns: each says that the record on its line
    repeats the record on `related` (a line of the same file), with similarity `scores`.

    What a dataset rule with a finding per record yields instead of that many `Finding`s (DUP001
    and DUP002: a file of near-duplicates has one per record); the engine counts, caps and
    quarantines them as arrays and makes `Finding`s only of those a report lists. `message`
    formats a finding's message from `line` (the related line) and `score`."""

    code: str
    severity: Severity
    source: str
    message: str
    lines: Any  # np.ndarray of int64: each finding's line
    related: Any  # np.ndarray of int64
    scores: Any  # np.ndarray of float64: the measured similarity, unrounded

    def __len__(self) -> int:
        return len(self.lines)

    def __iter__(self) -> Iterator[Finding]:
        code, severity, source = self.code, self.severity, self.source
        return (Finding(code, severity, message, source, line, related=related, similarity=similarity)
                for line, message, related, similarity in self._rows())

    def finding(self, i: int, severity: Severity | None = None, fingerprint: str | None = None) -> Finding:
        """The i-th, as a `Finding` (with `severity` instead of the rule's own)."""
        line, message, related, similarity = self.fields(i)
        return Finding(self.code, severity or self.severity, message, self.source, line, related=related,
                       similarity=similarity, fingerprint=fingerprint)

    def fields(self, i: int) -> tuple[int, str, str, float]:
        """The i-th's line, message, related (`path:line`) and similarity, as its `Finding` has them."""
        return self._fields(int(self.lines[i]), int(self.related[i]), float(self.scores[i]))

    def _fields(self, line: int, related: int, score: float) -> tuple[int, str, str, float]:
        return line, self.message.format(line=related, score=score), f"{self.source}:{related}", round(score, 4)

    def _rows(self) -> Iterator[tuple[int, str, str, float]]:
        """`fields` of each, in order (the arrays read as Python numbers once, not item by item)."""
        return map(self._fields, self.lines.tolist(), self.related.tolist(), self.scores.tolist())

    def reason_arrays(self, severity: str) -> list[bytes]:
        """Each as the JSON array of reasons of a quarantine entry that has this one reason:
        `[{"code", "severity", "message", "related", "similarity"}]`, the bytes orjson writes
        for the dict of `fields`, made in one pass (a file of duplicates has an entry per record).

        The message template is escaped once: what `format` puts in it are numbers, which JSON
        strings take as they are."""
        dumps = orjson.dumps
        start = b'[{"code":%b,"severity":%b,"message":"' % (dumps(self.code), dumps(severity))
        template = dumps(self.message)[1:-1].decode()
        related = b'","related":' + dumps(self.source)[:-1].replace(b"%", b"%%") + b':%d","similarity":%b}]'
        scores = np.asarray(self.scores, dtype=np.float64).tolist()  # as `fields` has them: floats
        # A finite float's repr is the shortest that reads back, as orjson writes it (and 10x
        # faster than orjson.dumps of one float); orjson writes null for the others.
        number = (lambda x: b"%r" % x) if np.isfinite(self.scores).all() else dumps
        return [start + template.format(line=line, score=score).encode() + related % (line, number(round(score, 4)))
                for line, score in zip(self.related.tolist(), scores)]

    def take(self, index: Any) -> FindingColumns:
        """Those at `index` (an array of positions, or a mask), in that order."""
        return FindingColumns(self.code, self.severity, self.source, self.message, self.lines[index],
                              self.related[index], self.scores[index])

    def reasons(self, group: int) -> list[tuple]:
        """Each as the reason its line is quarantined: (line, group, code, message, pointer,
        column, related, similarity), `group` saying when it was found among a file's reasons."""
        code = self.code
        return [(line, group, code, message, None, None, related, similarity)
                for line, message, related, similarity in self._rows()]


class Origin(NamedTuple):
    """Where a record came from: enough to find it again without keeping its bytes."""

    source: str
    line: int  # 1-based; within a chunk before the engine rebases it
    offset: int  # byte offset of the line's first byte (in the decompressed stream)
    length: int  # bytes, without the line ending


class PartKind(enum.Enum):
    TEXT = "text"
    FILE_DATA = "fileData"
    FUNCTION_CALL = "functionCall"
    FUNCTION_RESPONSE = "functionResponse"
    INLINE_DATA = "inlineData"
    EXECUTABLE_CODE = "executableCode"
    CODE_EXECUTION_RESULT = "codeExecutionResult"
    UNKNOWN = "unknown"  # no data key we know; the raw keys are kept on the part


# Keys of a Part object that carry its data (a proto `oneof`); the rest are modifiers.
DATA_KEYS: dict[str, PartKind] = {kind.value: kind for kind in PartKind if kind is not PartKind.UNKNOWN}
MODIFIER_KEYS = frozenset({"videoMetadata", "thought", "thoughtSignature", "mediaResolution"})


class Part(NamedTuple):
    """One part of a turn. A NamedTuple rather than a dataclass: millions are built per run."""

    kind: PartKind
    value: Any  # the text for TEXT, otherwise the object under the data key
    raw: dict[str, Any]  # the part as written (modifiers, unknown keys)

    @property
    def text(self) -> str | None:
        return self.value if self.kind is PartKind.TEXT else None


class Turn(NamedTuple):
    index: int  # position in `contents`
    role: str | None  # as written; None when the key is absent
    parts: tuple[Part, ...]

    @property
    def pointer(self) -> str:
        return f"/contents/{self.index}"

    @property
    def effective_role(self) -> str:
        """The role the service applies: an absent role defaults to `user`."""
        return "user" if self.role is None else self.role

    @property
    def text(self) -> str:
        return "\n".join(p.value for p in self.parts if p.kind is PartKind.TEXT)


# generationConfig.mediaResolution values (the schema admits no others), stored as their index.
MEDIA_RESOLUTIONS: tuple[str | None, ...] = (
    None,
    "MEDIA_RESOLUTION_UNSPECIFIED",
    "MEDIA_RESOLUTION_LOW",
    "MEDIA_RESOLUTION_MEDIUM",
    "MEDIA_RESOLUTION_HIGH",
)
MEDIA_RESOLUTION_CODE = {value: i for i, value in enumerate(MEDIA_RESOLUTIONS)}

# Part shapes an example can hold besides its kinds' values: rules declare which they need.
IRREGULAR = "irregular"  # a part with more or other keys than exactly one data key
TOOLS = "tools"  # the example declares tools


class cached:  # noqa: N801 - used like functools.cached_property
    """`functools.cached_property` without the per-access lock it takes on Python 3.11.

    The first access computes the value and stores it in the instance dict, where later
    accesses find it directly (a non-data descriptor). Examples are not shared between threads.
    """

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


@dataclass(frozen=True)
class Example:
    """One canonical SFT example, whatever format it was read from.

    Text views are computed on first use and cached, so a rule that never reads the normalised
    text costs nothing for it, and two rules that do share one computation.
    """

    origin: Origin
    turns: tuple[Turn, ...]
    system: tuple[Part, ...] = ()
    system_key: str | None = None  # "systemInstruction" or "system_instruction" when present
    tools: tuple[dict[str, Any], ...] = ()
    generation_config: dict[str, Any] | None = None
    record: dict[str, Any] = field(default_factory=dict, repr=False)  # the parsed line
    # Part kinds present in `contents` (PartKind values), plus IRREGULAR and TOOLS when they
    # apply: the engine runs a rule only on examples that hold what the rule looks at.
    shape: frozenset[str] = frozenset()
    last_model_index: int | None = field(init=False, default=None)  # the last model turn's index

    def __post_init__(self) -> None:
        last = next((t.index for t in reversed(self.turns) if t.role == "model"), None)
        object.__setattr__(self, "last_model_index", last)

    @classmethod
    def build(
        cls,
        *,
        origin: Origin,
        turns: tuple[Turn, ...],
        system: tuple[Part, ...],
        system_key: str | None,
        tools: tuple[dict[str, Any], ...],
        generation_config: dict[str, Any] | None,
        record: dict[str, Any],
        shape: frozenset[str],
        last_model_index: int | None,
    ) -> Example:
        """The constructor the reader uses, once per record; the caller, which has just walked
        the turns, passes `last_model_index`.

        A frozen dataclass's `__init__` sets each field through `object.__setattr__` (2.5 µs a
        record here); filling the instance dict directly costs 1 µs and gives the same object.
        """
        self = object.__new__(cls)
        self.__dict__.update(origin=origin, turns=turns, system=system, system_key=system_key, tools=tools,
                             generation_config=generation_config, record=record, shape=shape,
                             last_model_index=last_model_index)
        return self

    @cached
    def system_text(self) -> str:
        return "\n".join(p.value for p in self.system if p.kind is PartKind.TEXT)

    @cached
    def prompt_text(self) -> str:
        """System instruction and every turn before the last model turn."""
        end = self.last_model_index if self.last_model_index is not None else len(self.turns)
        pieces = [self.system_text] if self.system_text else []
        pieces += [t.text for t in self.turns[:end]]
        return "\n".join(pieces)

    @cached
    def response_text(self) -> str:
        """The last model turn: what this example teaches the model to say."""
        if self.last_model_index is None:
            return ""
        return self.turns[self.last_model_index].text

    @cached
    def full_text(self) -> str:
        pieces = [self.system_text] if self.system_text else []
        pieces += [t.text for t in self.turns]
        return "\n".join(pieces)


@dataclass
class FileStats:
    """What the pass learned about one input file, for file-level rules and the report.

    Per-record columns (`record_lines`, `media_resolution`, `has_system`) hold one entry per
    example that passed the schema: memory grows with the number of records, not their text.
    """

    source: str
    split: str
    size: int  # bytes on disk
    content_bytes: int = 0  # bytes of JSONL read (decompressed)
    lines: int = 0
    records: int = 0  # lines that parsed as JSON objects
    status: dict[str, int] = field(default_factory=dict)  # LineStatus value -> lines
    crlf_lines: int = 0
    first_crlf_line: int | None = None
    final_newline: bool = True
    broken: str | None = None  # why the stream ended early
    json_array: bool = False
    container: str = "jsonl"  # how the records are stored (formats.containers.CONTAINERS)
    input_format: str = "gemini"  # the format they are converted from (formats.convert.FORMATS)
    media_records: int = 0
    record_lines: Sequence[int] = ()  # array('q'): the line of each schema-valid example
    media_resolution: bytes = b""  # index into MEDIA_RESOLUTIONS, per example
    has_system: bytes = b""  # 1 if the example sets a system instruction, per example
