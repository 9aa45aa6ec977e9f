"""Prompts without answers: plain-text prompt lists, and production samples of any common shape.

A plain-text list (an eval set or a production sample written one prompt per line): each
non-blank line becomes a one-turn example, `{"contents": [{"role": "user", "parts": [{"text":
line}]}]}`, that goes through the same pass as JSONL (so its line numbers, offsets and
accounting are the file's). A blank line stays blank. Bytes that are not UTF-8 are replaced
(U+FFFD) rather than lost: the prompt is still compared.

A production sample in JSON Lines may hold, per line (`prompt_record`): a JSON string; a Gemini
request or example (`contents`, user turns only allowed; `systemInstruction` or
`system_instruction`); an OpenAI chat request or log (`messages`, assistant turns optional);
an object with one prompt field (`prompt`, `text`, `input`, `query`, `question`); or any of
these wrapped in a request-response log (`request`, `full_request`, `instance`; a
`full_request` stored as a JSON string is parsed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import orjson

from sftgate.formats.convert import convert
from sftgate.io.reader import Line

_BOM = b"\xef\xbb\xbf"


def prompt_json(data: bytes) -> bytes:
    """One line of a prompt list as a JSON example (b"" for a blank line)."""
    text = data.removeprefix(_BOM).rstrip(b"\r").decode("utf-8", "replace")
    if not text.strip():
        return b""
    return orjson.dumps({"contents": [{"role": "user", "parts": [{"text": text}]}]})


def prompt_lines(lines: Iterable[Line]) -> Iterator[Line]:
    """A `LineReader`'s lines of a prompt list, each turned into a JSON example line."""
    for offset, data, length, end in lines:
        yield offset, (None if data is None else prompt_json(data)), length, end


_WRAPPERS = ("request", "full_request", "instance")
_PROMPT_FIELDS = ("prompt", "text", "input", "query", "question")


class Prompt(NamedTuple):
    record: dict[str, Any] | None  # the sample as a Gemini record; None when it holds no prompt
    error: str | None  # why not, when record is None
    bare: bool = False  # read from a bare prompt (a string, a prompt field): no system instruction was given


def prompt_record(value: Any) -> Prompt:
    """One production sample as a Gemini record, or why it holds no prompt."""
    for _ in range(3):  # wrappers nest at most this deep in the logs we know
        if not isinstance(value, dict):
            break
        inner = next((value[k] for k in _WRAPPERS if k in value), None)
        if isinstance(inner, str):
            try:
                inner = orjson.loads(inner)
            except orjson.JSONDecodeError:
                return Prompt(None, "its request is a string that is not JSON")
        if not isinstance(inner, dict):
            break
        value = inner
    if isinstance(value, str):
        return Prompt(_user(value), None, bare=True)
    if not isinstance(value, dict):
        return Prompt(None, f"a production sample is a prompt string or a JSON object, not {type(value).__name__}")
    if "contents" in value:
        record = dict(value)
        if "system_instruction" in record and "systemInstruction" not in record:
            record["systemInstruction"] = record.pop("system_instruction")
        return Prompt(record, None)
    if isinstance(value.get("messages"), list):
        converted = convert({"messages": value["messages"]}, "openai", {})
        return Prompt(converted.record, converted.error)
    for key in _PROMPT_FIELDS:
        if isinstance(value.get(key), str):
            return Prompt(_user(value[key]), None, bare=True)
    keys = ", ".join(sorted(map(str, value))[:6]) or "none"
    return Prompt(None, f"no prompt found (keys: {keys}); a production sample holds `contents`, `messages`, "
                  f"or one of {', '.join(_PROMPT_FIELDS)}")


def _user(text: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}
