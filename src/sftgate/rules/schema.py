"""Schema (SCH): does the object have the shape of a Gemini tuning example?

Every object is validated against `schemas/gemini-sft-example.schema.json` with jsonschema-rs
(compiled once per process; about a microsecond per record), and every violation is reported
with its JSON pointer, not only the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from sftgate._resources import load_schema
from sftgate.formats import detect_foreign
from sftgate.model import Action, Finding, Origin, Severity
from sftgate.rules.base import ObjectRule, RuleContext, quote

EXAMPLE_SCHEMA = "gemini-sft-example.schema.json"
_MAX_MESSAGE = 240


@cache
def example_validator() -> Any:
    import jsonschema_rs

    return jsonschema_rs.validator_for(load_schema(EXAMPLE_SCHEMA))


@cache
def known_top_level_keys() -> frozenset[str]:
    return frozenset(load_schema(EXAMPLE_SCHEMA)["properties"])


def pointer(path: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path) or "/"


class SchemaViolation(ObjectRule):
    """## What it does
    Validates each record against the Gemini SFT example schema and reports every violation
    with its JSON pointer: missing `contents` or `parts`, wrong types (a number where text
    belongs), non-text parts in `systemInstruction`, malformed `fileData`, `functionCall`,
    `functionResponse`, `videoMetadata`, `tools` or `generationConfig`.

    ## Why is this bad?
    The tuning service rejects or drops records that do not parse as its request type, often
    with an error that names only the first problem of the first bad line.

    ## Example
    `{"contents": [{"role": "user", "parts": [{"text": 42}]}]}` -> `/contents/0/parts/0/text:
    42 is not of type "string"`. A record without `contents` whose fields hold text (the row
    of a table whose prompt and response columns no format detector guessed, such as
    DialogSum's `dialogue` and `summary`) gets a hint naming them and `--map`.
    """

    code = "SCH001"
    name = "schema-violation"
    default_severity = Severity.ERROR
    default_action = Action.DROP

    def check(self, obj: dict[str, Any], origin: Origin, ctx: RuleContext) -> Iterator[Finding]:
        validator = example_validator()
        if validator.is_valid(obj):
            return
        errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.instance_path])
        for error in errors:
            where = pointer(error.instance_path)
            message = error.message
            if len(message) > _MAX_MESSAGE:
                message = message[: _MAX_MESSAGE - 1] + "…"
            hint = _table_hint(obj) if where == "/" and "contents" not in obj else None
            yield self.at(origin, f"{where}: {message}", pointer=where, hint=hint)


def _table_hint(obj: dict[str, Any]) -> str | None:
    """For a record without `contents` that holds text in named fields (a row of a table
    whose prompt and response columns no detector guessed): how to read it as one."""
    texts = [key for key, value in obj.items() if isinstance(value, str)]
    if len(texts) < 2:
        return None
    shown = ", ".join(quote(key) for key in texts[:8]) + (", …" if len(texts) > 8 else "")
    return (f"if the file is a table, name its prompt and response columns: --map prompt=COL,response=COL "
            f"(this record's text fields: {shown})")


class UnknownTopLevelKey(ObjectRule):
    """## What it does
    Flags top-level keys that the Gemini example format does not define.

    ## Why is this bad?
    The service's handling of unknown keys is undocumented: it may ignore them or reject the
    line. They are often leftovers of another format (`id`, `messages`, `label`) that show
    the conversion missed something.

    ## Example
    `{"contents": [...], "id": 17}`.
    Use instead: keep bookkeeping fields in a separate file keyed by line number.
    """

    code = "SCH002"
    name = "unknown-top-level-key"
    default_severity = Severity.WARNING

    def check(self, obj: dict[str, Any], origin: Origin, ctx: RuleContext) -> Iterable[Finding]:
        if obj.keys() <= known_top_level_keys():
            return ()  # the common case, without the cost of a generator
        return self._findings(obj, origin)

    def _findings(self, obj: dict[str, Any], origin: Origin) -> Iterator[Finding]:
        known = known_top_level_keys()
        for key in obj:
            if key not in known:
                yield self.at(origin, f"unknown top-level key {quote(key)}", pointer=pointer([key]),
                              hint=f"known keys: {', '.join(sorted(known))}")


class ForeignFormat(ObjectRule):
    """## What it does
    Recognises a record written in another SFT format than Vertex Gemini `contents`: the Gemini
    1.0 `messages` format, OpenAI chat, PaLM text or chat, Alpaca, ShareGPT, OpenAI completions.

    ## Why is this bad?
    Current Gemini models tune only on the `contents` format; a file in an older format fails
    as a whole. Naming the format beats a screen of schema errors.

    ## Example
    `{"messages": [{"role": "user", "content": "Hi"}, {"role": "model", "content": "Hello"}]}`
    is the Gemini 1.0 format.
    Use instead: `{"contents": [{"role": "user", "parts": [{"text": "Hi"}]}, ...]}`.
    """

    code = "SCH003"
    name = "foreign-format"
    default_severity = Severity.ERROR
    default_action = Action.DROP

    def check(self, obj: dict[str, Any], origin: Origin, ctx: RuleContext) -> Iterator[Finding]:
        fmt = detect_foreign(obj)
        if fmt is not None:
            yield self.at(origin, f"record is in {fmt.title}, not the Gemini `contents` format",
                          hint=f"convert it: {fmt.hint}")
