"""Other SFT formats -> the Vertex Gemini `contents` format, one record at a time.

`convert(obj, fmt)` turns one source record into a Gemini record, or says why it cannot (an
error that names the turn), and lists what the Gemini record could not carry (`Note`s). It never
raises for bad data: the engine turns errors into CNV001 and notes into CNV002 findings and the
run goes on. `detect(objs)` names the format of a file from its first records.

Decisions that hold for every format:

- Text is never changed: no stripping, no normalising. Where a converter joins texts (two system
  messages, an Alpaca instruction and its input) it joins them with a blank line ("\\n\\n").
- Every source turn stays a turn, in order. Consecutive turns of the same role are kept apart
  (STR002 reports them), except consecutive tool results, which answer one model turn and so
  go into one `user` turn of `functionResponse` parts, as in Google's function-calling example.
- A conversation must start with a user turn: a model turn before any user turn is an error
  ("assistant turn before any user turn"); such records are usually chunks of a longer
  conversation and would teach an answer to a question the example does not contain. A
  conversation with no user or model turn at all is an error ("no turns").
- A conversation without a model turn, a trailing user turn or an empty text still converts:
  the STR rules judge those on the Gemini record, as they would in a Gemini file.
- System messages become one `systemInstruction` text part (several joined with "\\n\\n"),
  without a role: Vertex ignores the role of a system instruction.
- A record that is already a Gemini record (it has `contents`) in a file of another format is
  passed through unchanged.
- Unknown top-level keys get a note (`top-level key "x" is not carried`), except well-known
  bookkeeping keys (`id`, `source`, `lang`, ... see `_BOOKKEEPING`), which every record of some
  datasets has and whose loss needs no warning on every line. Table rows never note the
  columns the mapping leaves out: choosing columns is what the mapping is for.
"""

from __future__ import annotations

import json
import math
import mimetypes
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from sftgate.errors import UsageError
from sftgate.formats.detect import PROMPT_COLUMNS, RESPONSE_COLUMNS, SYSTEM_COLUMNS, detect_foreign

FORMATS: tuple[str, ...] = (
    "gemini", "openai", "openai-completions", "gemini-messages", "palm-text", "palm-chat",
    "alpaca", "sharegpt", "oasst", "table",
)
MAP_KEYS = ("prompt", "response", "system")

# Top-level keys that are bookkeeping, not training content: not carried, not noted.
_BOOKKEEPING = frozenset({
    "id", "_id", "uuid", "idx", "index", "source", "dataset", "lang", "language", "category",
    "tags", "meta", "metadata", "url", "license", "model", "timestamp", "created_at",
})
_REMOTE = ("gs://", "http://", "https://")
_BLANK = "\n\n"


class Note(NamedTuple):
    pointer: str  # JSON pointer into the SOURCE record ("/messages/3/weight"), "" for the whole record
    message: str  # one line: what could not be carried


@dataclass(frozen=True, slots=True)
class Converted:
    record: dict[str, Any] | None  # the Gemini record; None when it cannot be converted
    error: str | None  # why it cannot be converted (one line, names the turn), when record is None
    notes: tuple[Note, ...] = ()  # what the conversion could not carry (the record still converted)
    error_pointer: str = ""  # where in the source record the error is


class _Unconvertible(Exception):
    def __init__(self, message: str, pointer: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer


def parse_map(text: str | None) -> dict[str, str]:
    """`"prompt=col,response=col,system=col"` -> `{"prompt": "col", ...}`; None or "" -> {}.
    Column names are taken as written (spaces around `=` and `,` are stripped)."""
    mapping: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, column = (s.strip() for s in item.partition("="))
        if not sep or not key or not column:
            raise UsageError(f"--map item {item.strip()!r} is not KEY=COLUMN (keys: {', '.join(MAP_KEYS)})")
        if key not in MAP_KEYS:
            raise UsageError(f"--map key {key!r} is unknown; keys: {', '.join(MAP_KEYS)}")
        if key in mapping:
            raise UsageError(f"--map names {key!r} twice")
        mapping[key] = column
    return mapping


def convert(obj: Any, fmt: str, mapping: Mapping[str, str] | None = None) -> Converted:
    """One source record in format `fmt` -> a `Converted`. `mapping` is used by `table` only
    (an empty or missing mapping: columns are guessed). Never raises for bad data; an unknown
    `fmt` is a `UsageError`. `gemini` returns a dict unchanged; a value that is not a JSON
    object is an error in every format."""
    converter = _CONVERTERS.get(fmt)
    if converter is None:
        raise UsageError(f"unknown input format {fmt!r}; formats: {', '.join(FORMATS)}")
    if not isinstance(obj, dict):
        return Converted(None, f"record is {_kind(obj)}, not a JSON object")
    if fmt == "gemini" or ("contents" in obj and fmt != "table"):
        return Converted(obj, None)
    out = _Builder()
    try:
        converter(obj, out, mapping or {})
        record = out.finish()
    except _Unconvertible as exc:
        return Converted(None, exc.message, tuple(out.notes), exc.pointer)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as exc:
        # A shape no converter branch foresaw: still a finding, never a crash.
        return Converted(None, f"cannot convert the record as {fmt}: {type(exc).__name__}: {exc}",
                         tuple(out.notes))
    return Converted(record, None, tuple(out.notes))


def detect(objs: Sequence[Any], mapping: Mapping[str, str] | None = None) -> str | None:
    """The format of a file from its first records: `table` when a column `mapping` is given;
    otherwise the most common format among the records recognised (`gemini` for records with
    `contents`, else `detect_foreign`'s), ties going to the format seen first; None when no
    record is recognised."""
    if mapping:
        return "table"
    counts: Counter[str] = Counter()
    for obj in objs:
        if not isinstance(obj, dict):
            continue
        if "contents" in obj:
            counts["gemini"] += 1
        elif (found := detect_foreign(obj)) is not None:
            counts[found.name] += 1
    if not counts:
        return None
    return max(counts, key=counts.__getitem__)  # Counter keeps first-seen order: ties go to it


# --- building a Gemini record -------------------------------------------------------------------


class _Builder:
    """The Gemini record being built, and the notes on what it does not carry."""

    def __init__(self) -> None:
        self.system: list[str] = []
        self.contents: list[dict[str, Any]] = []
        self.tools: list[dict[str, Any]] = []
        self.notes: list[Note] = []

    def note(self, pointer: str, message: str) -> None:
        self.notes.append(Note(pointer, message))

    def turn(self, role: str, parts: list[dict[str, Any]], label: str, pointer: str) -> None:
        if not self.contents and role == "model":
            raise _Unconvertible(f"assistant turn before any user turn ({label})", pointer)
        self.contents.append({"role": role, "parts": parts})

    def text_turn(self, role: str, text: str, label: str, pointer: str) -> None:
        self.turn(role, [{"text": text}], label, pointer)

    def finish(self) -> dict[str, Any]:
        if not self.contents:
            what = " (only a system message)" if self.system else ""
            raise _Unconvertible(f"no turns{what}: nothing for the model to learn")
        record: dict[str, Any] = {}
        if self.system:
            record["systemInstruction"] = {"parts": [{"text": _BLANK.join(self.system)}]}
        record["contents"] = self.contents
        if self.tools:
            record["tools"] = [{"functionDeclarations": self.tools}]
        return record


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
             list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _ptr(*path: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _string(value: Any, what: str, pointer: str) -> str:
    if not isinstance(value, str):
        raise _Unconvertible(f"{what} is {_kind(value)}, not text", pointer)
    return value


def _require(obj: dict[str, Any], key: str, fmt: str) -> Any:
    if key not in obj:
        other = detect_foreign(obj)
        where = f"; the record looks like {other.title}" if other is not None and other.name != fmt else ""
        raise _Unconvertible(f'no "{key}" key: the record is not in the {fmt} format{where}')
    return obj[key]


def _note_unknown_keys(obj: dict[str, Any], known: frozenset[str] | set[str], out: _Builder) -> None:
    for key in obj:
        if key not in known and key not in _BOOKKEEPING:
            out.note(_ptr(key), f'top-level key "{key}" is not carried')


def _list_of_objects(obj: dict[str, Any], key: str, fmt: str) -> list[dict[str, Any]]:
    items = _require(obj, key, fmt)
    if not isinstance(items, list):
        raise _Unconvertible(f'"{key}" is {_kind(items)}, not a list', _ptr(key))
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _Unconvertible(f"{key} item {i + 1} is {_kind(item)}, not an object", _ptr(key, i))
    return items


# --- OpenAI chat and Gemini 1.0 messages --------------------------------------------------------

_OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "model",
                 "model": "model", "tool": "tool", "function": "function"}
_MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "function_call", "tool_call_id", "weight"})
_OPENAI_KEYS = frozenset({"messages", "tools", "functions", "parallel_tool_calls"})


def _openai(obj: dict[str, Any], out: _Builder, mapping: Mapping[str, str]) -> None:
    """OpenAI chat fine-tuning records (`messages`, `tools`).

    - system and developer messages, wherever they are, join the system instruction; one that
      comes after the conversation started is noted (its place is lost).
    - user -> user, assistant -> model (`model` is accepted as a spelling of assistant).
    - content: a string, null (an assistant message with tool calls), or a list of parts:
      `text`, and `image_url` whose URL is gs:// or http(s) -> `fileData` with the MIME type
      guessed from the URL's extension (unknown: error). A `data:` URL, `input_audio` or
      `file` part is an error: Vertex tuning reads media only from URIs.
    - `tool_calls` (and the legacy `function_call`) -> `functionCall` parts after the text; the
      arguments JSON string is parsed and must be an object. Call ids are not carried (Vertex
      pairs calls and responses by order and name).
    - `tool` messages (and legacy `function` messages) -> `functionResponse` parts, the name
      from the call with the same `tool_call_id` (or the message's `name`); consecutive ones
      share one user turn. The response is the content parsed as JSON when it is an object,
      else `{"content": text}`.
    - `tools` / legacy `functions` -> one `functionDeclarations` tool; see `_declaration`.
    - Noted: `weight: 0` (Vertex trains on every model turn), a message `name`,
      `parallel_tool_calls`, an image `detail`, other unknown keys.
    """
    messages = _list_of_objects(obj, "messages", "openai")
    _note_unknown_keys(obj, _OPENAI_KEYS, out)
    if "tools" in obj:
        _tools(obj["tools"], out)
    if "functions" in obj:
        _functions(obj["functions"], out)
    if "parallel_tool_calls" in obj:
        out.note("/parallel_tool_calls", '"parallel_tool_calls" is not carried: Vertex has no such setting')
    calls: dict[str, str] = {}  # tool_call_id -> function name
    for i, message in enumerate(messages):
        here = _ptr("messages", i)
        label = f"message {i + 1}"
        role = message.get("role")
        kind = _OPENAI_ROLES.get(role) if isinstance(role, str) else None
        if kind is None:
            raise _Unconvertible(f"{label} has role {json.dumps(role)}; expected system, user, assistant or tool",
                                 here + "/role")
        for key in message:
            if key not in _MESSAGE_KEYS:
                out.note(_ptr("messages", i, key), f'{label} key "{key}" is not carried')
        if "name" in message and kind in ("system", "user", "model"):
            out.note(here + "/name", f'{label} "name" is not carried: Vertex turns have no speaker names')
        if kind == "system":
            if out.contents:
                out.note(here, f"{label} is a system message after the conversation started; "
                               "its text joins the system instruction, its place is lost")
            out.system.append(_text_only(message.get("content"), f"{label} (system)", here))
        elif kind == "user":
            out.turn("user", _content_parts(message.get("content"), label, here, out), label, here)
        elif kind == "model":
            _assistant(message, i, out, calls)
        else:
            _tool_result(message, i, kind, out, calls)


def _text_only(content: Any, label: str, here: str) -> str:
    """The text of a system or tool message: a string, or text parts joined with "\n\n"."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise _Unconvertible(f"{label} has a content part that is not text; only text can be carried "
                                     "here", f"{here}/content/{j}")
            texts.append(part["text"])
        return _BLANK.join(texts)
    raise _Unconvertible(f"{label} content is {_kind(content)}, not text", here + "/content")


def _content_parts(content: Any, label: str, here: str, out: _Builder,
                   *, allow_none: bool = False) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if content is None and allow_none:
        return []
    if not isinstance(content, list):
        raise _Unconvertible(f"{label} content is {_kind(content)}, not text or a list of parts", here + "/content")
    parts = []
    for j, part in enumerate(content):
        where = f"{here}/content/{j}"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"text": part["text"]})
        elif kind == "image_url":
            parts.append(_image(part, label, where, out))
        elif kind in ("input_audio", "file", "input_file", "audio"):
            raise _Unconvertible(f"{label} has an {kind} part; Vertex tuning reads media from gs:// or "
                                 "http(s) URIs: upload it and use an image_url/fileData reference", where)
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            parts.append({"text": part["refusal"]})
        else:
            raise _Unconvertible(f"{label} has a content part of type {json.dumps(kind)} that cannot be converted",
                                 where)
    if not parts and not allow_none:
        raise _Unconvertible(f"{label} has an empty content list", here + "/content")
    return parts


def _image(part: dict[str, Any], label: str, where: str, out: _Builder) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise _Unconvertible(f"image_url in {label} has no URL", where)
    if url.startswith("data:"):
        raise _Unconvertible(f"image_url in {label} is a data: URL; Vertex tuning reads media from gs:// "
                             "or http(s) URIs: upload it", where + "/image_url")
    if not url.lower().startswith(_REMOTE):
        raise _Unconvertible(f"image_url in {label} is not a gs:// or http(s) URI ({url[:60]}); "
                             "Vertex tuning reads media from gs:// or http(s) URIs: upload it", where + "/image_url")
    path = url.split("?", 1)[0].split("#", 1)[0]
    mime, _ = mimetypes.guess_type(path, strict=False)
    if mime is None:
        raise _Unconvertible(f"image_url in {label} has no file extension to tell its media type from "
                             f"({url[:80]}); Vertex needs a mimeType", where + "/image_url")
    if isinstance(image, dict) and image.get("detail") not in (None, "auto"):
        out.note(where + "/image_url/detail",
                 f'image detail {json.dumps(image["detail"])} in {label} is not carried')
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _assistant(message: dict[str, Any], i: int, out: _Builder, calls: dict[str, str]) -> None:
    here = _ptr("messages", i)
    label = f"message {i + 1}"
    parts = _content_parts(message.get("content"), label, here, out, allow_none=True)
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            raise _Unconvertible(f"{label} tool_calls is {_kind(tool_calls)}, not a list", here + "/tool_calls")
        for j, call in enumerate(tool_calls):
            where = f"{here}/tool_calls/{j}"
            if not isinstance(call, dict) or call.get("type", "function") != "function" \
                    or not isinstance(call.get("function"), dict):
                raise _Unconvertible(f"{label} tool call {j + 1} is not a function call", where)
            part = _function_call(call["function"], f"{label} tool call {j + 1}", where + "/function")
            if isinstance(call.get("id"), str):
                calls[call["id"]] = part["functionCall"]["name"]
            parts.append(part)
    legacy = message.get("function_call")
    if legacy is not None:
        if not isinstance(legacy, dict):
            raise _Unconvertible(f"{label} function_call is {_kind(legacy)}, not an object", here + "/function_call")
        parts.append(_function_call(legacy, f"{label} function_call", here + "/function_call"))
    if not parts:
        raise _Unconvertible(f"{label} (assistant) has no content and no tool calls", here)
    weight = message.get("weight", 1)
    if weight == 0:
        out.note(here + "/weight", f'assistant {label} has "weight": 0; Vertex trains on every model turn')
    elif weight != 1:
        out.note(here + "/weight", f'{label} "weight": {json.dumps(weight)} is not carried')
    out.turn("model", parts, label, here)


def _function_call(function: dict[str, Any], what: str, where: str) -> dict[str, Any]:
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise _Unconvertible(f"{what} has no function name", where + "/name")
    arguments = function.get("arguments", "{}")
    if isinstance(arguments, str):
        try:
            arguments = orjson.loads(arguments) if arguments.strip() else {}  # as a JSONL line: no NaN
        except ValueError as exc:
            raise _Unconvertible(f"{what} ({name}) arguments are not valid JSON: {exc}", where + "/arguments") from None
    if not isinstance(arguments, dict):
        raise _Unconvertible(f"{what} ({name}) arguments are {_kind(arguments)}, not a JSON object",
                             where + "/arguments")
    return {"functionCall": {"name": name, "args": arguments}}


def _tool_result(message: dict[str, Any], i: int, kind: str, out: _Builder, calls: dict[str, str]) -> None:
    here = _ptr("messages", i)
    label = f"message {i + 1}"
    call_id = message.get("tool_call_id")
    name = calls.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        name = message.get("name")
    if not isinstance(name, str) or not name:
        if isinstance(call_id, str):
            raise _Unconvertible(f'{label} ({kind}) answers tool_call_id "{call_id}", which no earlier '
                                 "assistant tool call has", here + "/tool_call_id")
        raise _Unconvertible(f"{label} ({kind}) names no function (no tool_call_id or name)", here)
    content = message.get("content")
    text = "" if content is None else _text_only(content, f"{label} ({kind})", here)
    response: Any = None
    if text.lstrip().startswith("{"):
        try:
            response = orjson.loads(text)
        except ValueError:
            response = None
    if not isinstance(response, dict):
        response = {"content": text}
    part = {"functionResponse": {"name": name, "response": response}}
    last = out.contents[-1] if out.contents else None
    if last is not None and last["role"] == "user" and all("functionResponse" in p for p in last["parts"]):
        last["parts"].append(part)
    else:
        out.turn("user", [part], label, here)


def _tools(tools: Any, out: _Builder) -> None:
    if not isinstance(tools, list):
        raise _Unconvertible(f'"tools" is {_kind(tools)}, not a list', "/tools")
    for j, tool in enumerate(tools):
        where = f"/tools/{j}"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" \
                or not isinstance(tool.get("function"), dict):
            raise _Unconvertible(f"tool {j + 1} is not a function tool; Vertex tuning declares functions only", where)
        out.tools.append(_declaration(tool["function"], f"tool {j + 1}", where + "/function", out))


def _functions(functions: Any, out: _Builder) -> None:
    if not isinstance(functions, list):
        raise _Unconvertible(f'"functions" is {_kind(functions)}, not a list', "/functions")
    for j, function in enumerate(functions):
        if not isinstance(function, dict):
            raise _Unconvertible(f"function {j + 1} is {_kind(function)}, not an object", f"/functions/{j}")
        out.tools.append(_declaration(function, f"function {j + 1}", f"/functions/{j}", out))


# The fields of Vertex's `Schema` (aiplatform v1 REST reference, "a subset of OpenAPI 3.0"; it
# has `additionalProperties`, `anyOf`, `ref` and `defs` since 2025), and the JSON Schema keywords
# it spells differently. Anything else (`$schema`, `oneOf`, `allOf`, `const`, ...) is left out
# and noted: the service parses declarations as protos and rejects unknown fields.
_SCHEMA_KEYS = frozenset({
    "type", "format", "title", "description", "nullable", "default", "items", "minItems",
    "maxItems", "enum", "properties", "propertyOrdering", "required", "minProperties",
    "maxProperties", "minimum", "maximum", "minLength", "maxLength", "pattern", "example",
    "anyOf", "additionalProperties", "ref", "defs",
})
_RENAMED = {"$ref": "ref", "$defs": "defs", "definitions": "defs"}


def _declaration(function: dict[str, Any], what: str, where: str, out: _Builder) -> dict[str, Any]:
    """An OpenAI function definition -> a Vertex `functionDeclaration`. `parameters` is JSON
    Schema; Vertex's is an OpenAPI 3.0 subset: type names are upper-cased (`"object"` ->
    `"OBJECT"`), a type list with "null" becomes `nullable`, `$ref`/`$defs` become `ref`/`defs`,
    and keywords Vertex lacks are left out, each noted. `strict` is noted."""
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise _Unconvertible(f"{what} has no function name", where + "/name")
    declaration: dict[str, Any] = {"name": name}
    if isinstance(function.get("description"), str):
        declaration["description"] = function["description"]
    if "parameters" in function:
        params = function["parameters"]
        if not isinstance(params, dict):
            raise _Unconvertible(f"{what} ({name}) parameters are {_kind(params)}, not an object",
                                 where + "/parameters")
        declaration["parameters"] = _schema(params, where + "/parameters", f"{what} ({name})", out)
    for key in function:
        if key not in ("name", "description", "parameters"):
            out.note(f"{where}/{key}", f'{what} ({name}) key "{key}" is not carried')
    return declaration


def _schema(node: Any, where: str, what: str, out: _Builder) -> Any:
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        here = f"{where}/{key}"
        target = _RENAMED.get(key, key)
        if target not in _SCHEMA_KEYS:
            out.note(here, f'{what} parameters keyword "{key}" is not in Vertex\'s schema subset; left out')
            continue
        if target == "type":
            value = _schema_type(value, result)
        elif target == "ref" and isinstance(value, str):
            value = value.replace("#/$defs/", "#/defs/").replace("#/definitions/", "#/defs/")
        elif target in ("properties", "defs") and isinstance(value, dict):
            value = {k: _schema(v, f"{here}/{k}", what, out) for k, v in value.items()}
        elif target in ("items", "additionalProperties"):
            value = _schema(value, here, what, out)
        elif target == "anyOf" and isinstance(value, list):
            value = [_schema(v, f"{here}/{n}", what, out) for n, v in enumerate(value)]
        result[target] = value
    return result


def _schema_type(value: Any, result: dict[str, Any]) -> Any:
    if isinstance(value, list):
        types = [t for t in value if t != "null"]
        if len(types) < len(value):
            result["nullable"] = True
        if len(types) == 1:
            value = types[0]
        else:
            return [t.upper() if isinstance(t, str) else t for t in types]
    return value.upper() if isinstance(value, str) else value


def _gemini_messages(obj: dict[str, Any], out: _Builder, mapping: Mapping[str, str]) -> None:
    """Gemini 1.0 `messages` ({role: system|user|model, content}): a leading system message
    -> systemInstruction; a system message after the first turn is an error, as the format
    allowed system only first (its position is part of what it meant)."""
    messages = _list_of_objects(obj, "messages", "gemini-messages")
    _note_unknown_keys(obj, {"messages"}, out)
    for i, message in enumerate(messages):
        here = _ptr("messages", i)
        label = f"message {i + 1}"
        role = message.get("role")
        text = _string(message.get("content"), f"{label} content", here + "/content")
        for key in message:
            if key not in ("role", "content"):
                out.note(f"{here}/{key}", f'{label} key "{key}" is not carried')
        if role == "system":
            if out.contents:
                raise _Unconvertible(f"{label} is a system message after the conversation started; "
                                     "the format allows system only first", here)
            out.system.append(text)
        elif role in ("user", "model"):
            out.text_turn(role, text, label, here)
        else:
            raise _Unconvertible(f"{label} has role {json.dumps(role)}; expected system, user or model", here + "/role")


# --- PaLM, completions, Alpaca ------------------------------------------------------------------


def _pair(obj: dict[str, Any], out: _Builder, fmt: str, prompt: str, response: str) -> None:
    user = _string(_require(obj, prompt, fmt), f'"{prompt}"', _ptr(prompt))
    model = _string(_require(obj, response, fmt), f'"{response}"', _ptr(response))
    _note_unknown_keys(obj, {prompt, response}, out)
    out.text_turn("user", user, f'"{prompt}"', _ptr(prompt))
    out.text_turn("model", model, f'"{response}"', _ptr(response))


def _palm_text(obj: dict[str, Any], out: _Builder, mapping: Mapping[str, str]) -> None:
    """PaLM text-bison `input_text`/`output_text` -> a user and a model turn."""
    _pair(obj, out, "palm-text", "input_text", "output_text")


def _completions(obj: dict[str, Any], out: _Builder, mapping: Mapping[str, str]) -> None:
    """OpenAI legacy `prompt`/`completion` -> a user and a model turn. Separators and stop
    sequences the old format needed ("\\n\\n###\\n\\n", " END") are text and are kept."""
    _pair(obj, out, "openai-completions", "prompt", "completion")


_PALM_USER = frozenset({"user", "human"})
_PALM_MODEL = frozenset({"assistant", "model", "bot", "ai"})


def _palm_chat(obj: dict[str, Any], out: _Builder, mapping: Mapping[str, str]) -> None:
    """PaLM chat-bison: `context` -> systemInstruction; `messages[{author, content}]`. The
    authors `user`/`human` and `assistant`/`model`/`bot`/`ai` mean what they say; chat-bison
    also took any two author names, so otherwise the first author is the user and the second the
    model (a third author is an error). `examples` (few-shot pairs) are noted, not carried."""
    messages = _list_of_objects(obj, "messages", "palm-chat")
    _note_unknown_keys(obj, {"messages", "context", "examples"}, out)
    if "context" in obj and obj["context"] not in (None, ""):
        out.system.append(_string(obj["context"], '"context"', "/context"))
    if obj.get("examples"):
        out.note("/examples", f'"examples" ({len(obj["examples"]) if isinstance(obj["examples"], list) else 1} '
                              "few-shot) are not carried: a tuning example is the conversation itself")
    authors = {str(m.get("author")) for m in messages}
    known = authors <= (_PALM_USER | _PALM_MODEL)
    order: list[str] = []
    for i, message in enumerate(messages):
        here = _ptr("messages", i)
        label = f"message {i + 1}"
        author = message.get("author")
        if not isinstance(author, str):
            raise _Unconvertible(f"{label} author is {_kind(author)}, not a name", here + "/author")
        text = _string(message.get("content"), f"{label} content", here + "/content")
        if known:
            role = "user" if author in _PALM_USER else "model"
        else:
            if author not in order:
                order.append(author)
            if len(order) > 2:
                raise _Unconvertible(f'{label} has a third author "{author}" (after "{order[0]}" and '
                                     f'"{order[1]}"); a conversation has a user and a model', here + "/author")
            role = "user" if author == order[0] else "model"
        out.text_turn(role, text, f"{label}, by {author}", here)


def _alpaca(obj: dict[str, Any], out: _Builder, mapping: Mapping[str, str]) -> None:
    """Alpaca `instruction`/`input`/`output`: the user turn is the instruction, followed by
    "\\n\\n" and the input when the input is not empty (just the input when the instruction is
    empty); the output is the model turn. `history` [[user, assistant], ...] gives the earlier
    turns and `system` the system instruction (LLaMA-Factory's Alpaca)."""
    instruction = _string(_require(obj, "instruction", "alpaca"), '"instruction"', "/instruction")
    output = _string(_require(obj, "output", "alpaca"), '"output"', "/output")
    extra = obj.get("input")
    extra = "" if extra is None else _string(extra, '"input"', "/input")
    _note_unknown_keys(obj, {"instruction", "input", "output", "history", "system"}, out)
    if obj.get("system") not in (None, ""):
        out.system.append(_string(obj["system"], '"system"', "/system"))
    history = obj.get("history") or []
    if not isinstance(history, list):
        raise _Unconvertible(f'"history" is {_kind(history)}, not a list of [user, assistant] pairs', "/history")
    for i, pair in enumerate(history):
        here = _ptr("history", i)
        if not isinstance(pair, list) or len(pair) != 2:
            raise _Unconvertible(f"history item {i + 1} is not a [user, assistant] pair", here)
        out.text_turn("user", _string(pair[0], f"history item {i + 1} user text", here + "/0"),
                      f"history item {i + 1}", here)
        out.text_turn("model", _string(pair[1], f"history item {i + 1} assistant text", here + "/1"),
                      f"history item {i + 1}", here)
    prompt = _BLANK.join(t for t in (instruction, extra) if t) if extra else instruction
    out.text_turn("user", prompt, '"instruction"', "/instruction")
    out.text_turn("model", output, '"output"', "/output")


# --- ShareGPT and Open-Assistant ----------------------------------------------------------------

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "model", "assistant": "model",
                   "model": "model", "system": "system"}


def _sharegpt(obj: dict[str, Any], out: _Builder, mapping: Mapping[str, str]) -> None:
    """ShareGPT `conversations[{from, value}]` (or `{role, content}`): human/user -> user,
    gpt/assistant/model -> model, a leading system turn (or a top-level `system`, as in
    LLaMA-Factory) -> systemInstruction. A system turn after the conversation started, and any
    other speaker ("bing", "chatgpt", "tool", "observation"), are errors that name it: what they
    mean differs between datasets, so the user decides."""
    turns = _list_of_objects(obj, "conversations", "sharegpt")
    _note_unknown_keys(obj, {"conversations", "system"}, out)
    if obj.get("system") not in (None, ""):
        out.system.append(_string(obj["system"], '"system"', "/system"))
    for i, turn in enumerate(turns):
        here = _ptr("conversations", i)
        label = f"turn {i + 1}"
        role_key, text_key = ("from", "value") if "from" in turn else ("role", "content")
        speaker = turn.get(role_key)
        role = _SHAREGPT_ROLES.get(speaker) if isinstance(speaker, str) else None
        if role is None:
            raise _Unconvertible(f'{label} is from {json.dumps(speaker)}; expected human, gpt or a leading system',
                                 f"{here}/{role_key}")
        text = _string(turn.get(text_key), f"{label} ({speaker}) {text_key}", f"{here}/{text_key}")
        if role == "system":
            if out.contents:
                raise _Unconvertible(f"{label} is a system turn after the conversation started", here)
            out.system.append(text)
        else:
            out.text_turn(role, text, f"{label}, from {speaker}", here)


def _oasst(obj: dict[str, Any], out: _Builder, mapping: Mapping[str, str]) -> None:
    """An Open-Assistant message tree (`prompt` with nested `replies`) -> one conversation: at
    each level the best-ranked reply (lowest `rank`; unranked after ranked; ties by order),
    skipping deleted replies and those whose `review_result` is false. prompter -> user,
    assistant -> model. The other branches are not converted and not noted: every tree has
    them, and one conversation per tree is what this converter is for. A trailing prompter
    message that no assistant answered is left out and noted (a conversation ends with the
    model's answer). A tree with no assistant reply is an error."""
    node = _require(obj, "prompt", "oasst")
    if not isinstance(node, dict):
        raise _Unconvertible(f'"prompt" is {_kind(node)}, not a message', "/prompt")
    _note_unknown_keys(obj, {"prompt", "message_tree_id", "tree_state"}, out)
    path: list[tuple[dict[str, Any], str]] = [(node, "/prompt")]
    while True:
        node, where = path[-1]
        replies = node.get("replies") or []
        if not isinstance(replies, list):
            raise _Unconvertible(f'"replies" is {_kind(replies)}, not a list', where + "/replies")
        usable = [(j, r) for j, r in enumerate(replies) if isinstance(r, dict)
                  and not r.get("deleted") and r.get("review_result") is not False]
        if not usable:
            break
        j, best = min(usable, key=lambda jr: (not isinstance(jr[1].get("rank"), (int, float)),
                                              jr[1].get("rank") if isinstance(jr[1].get("rank"), (int, float)) else 0,
                                              jr[0]))
        path.append((best, f"{where}/replies/{j}"))
    while len(path) > 1 and path[-1][0].get("role") != "assistant":
        node, where = path.pop()
        out.note(where, "the last prompter message has no assistant reply; left out")
    if len(path) == 1:
        raise _Unconvertible("the tree has no assistant reply to its prompt", "/prompt/replies")
    for depth, (node, where) in enumerate(path):
        role = {"prompter": "user", "assistant": "model"}.get(node.get("role"))
        if role is None:
            raise _Unconvertible(f"message {depth + 1} has role {json.dumps(node.get('role'))}; "
                                 "expected prompter or assistant", where + "/role")
        text = _string(node.get("text"), f"message {depth + 1} text", where + "/text")
        out.text_turn(role, text, f"message {depth + 1}, {node['role']}", where)


# --- tables -------------------------------------------------------------------------------------


def _table(obj: dict[str, Any], out: _Builder, mapping: Mapping[str, str]) -> None:
    """A table row (CSV, Parquet, or flat JSON): the prompt column -> a user turn, the response
    column -> a model turn, an optional system column -> systemInstruction. Without a mapping the
    columns are guessed (`detect.PROMPT_COLUMNS`, `RESPONSE_COLUMNS`, `SYSTEM_COLUMNS`, first
    present wins). A missing column or a null/NaN prompt or response is an error naming the
    column; numbers become their text; an empty or null system value means no system
    instruction. Other columns are not carried and not noted."""
    prompt = mapping.get("prompt") or _guess(obj, PROMPT_COLUMNS, "prompt")
    response = mapping.get("response") or _guess(obj, RESPONSE_COLUMNS, "response")
    system = mapping.get("system") or next((c for c in SYSTEM_COLUMNS if c in obj), None)
    if system is not None:
        if system not in obj:
            raise _Unconvertible(f'no column "{system}" (the system column)', "")
        value = obj[system]
        if value is not None and value != "" and not _is_nan(value):
            out.system.append(_cell(value, system, "system"))
    out.text_turn("user", _cell(obj.get(prompt, _MISSING), prompt, "prompt"), f'column "{prompt}"', _ptr(prompt))
    out.text_turn("model", _cell(obj.get(response, _MISSING), response, "response"), f'column "{response}"',
                  _ptr(response))


_MISSING = object()


def _guess(obj: dict[str, Any], names: tuple[str, ...], what: str) -> str:
    for name in names:
        if name in obj:
            return name
    raise _Unconvertible(f"no {what} column (looked for {', '.join(names)}); name it with --map {what}=COLUMN")


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _cell(value: Any, column: str, what: str) -> str:
    if value is _MISSING:
        raise _Unconvertible(f'no column "{column}" (the {what} column)', "")
    if isinstance(value, str):
        return value
    if value is None or _is_nan(value):
        raise _Unconvertible(f'column "{column}" (the {what}) is empty (null)', _ptr(column))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Unconvertible(f'column "{column}" (the {what}) is {_kind(value)}, not text', _ptr(column))
    return str(value)  # Python's shortest round-trip text: 3 -> "3", 2.5 -> "2.5", 3.0 -> "3.0"


_CONVERTERS: dict[str, Callable[[dict[str, Any], _Builder, Mapping[str, str]], None]] = {
    "gemini": lambda obj, out, mapping: None,
    "openai": _openai,
    "openai-completions": _completions,
    "gemini-messages": _gemini_messages,
    "palm-text": _palm_text,
    "palm-chat": _palm_chat,
    "alpaca": _alpaca,
    "sharegpt": _sharegpt,
    "oasst": _oasst,
    "table": _table,
}
