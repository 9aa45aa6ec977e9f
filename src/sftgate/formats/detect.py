"""Recognise SFT records written in another format than Vertex Gemini `contents`.

Each format is told apart by the keys and roles its records carry. Detection looks at one object
at a time, so a file that mixes formats gets a finding on each line that is not Gemini. The
`name` of each format is its `--from` name in `formats/convert.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ForeignFormat:
    name: str  # the `--from` name the converter uses
    title: str  # how a person calls it
    hint: str  # how to get from it to Gemini
    matches: Callable[[dict[str, Any]], bool]


def _message_roles(obj: dict[str, Any], key: str = "role") -> set[str] | None:
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    if not all(isinstance(m, dict) for m in messages):
        return None
    return {str(m.get(key)) for m in messages if key in m}


def _is_gemini_messages(obj: dict[str, Any]) -> bool:
    roles = _message_roles(obj)
    return roles is not None and "model" in roles and roles <= {"system", "user", "model"}


def _is_openai_chat(obj: dict[str, Any]) -> bool:
    roles = _message_roles(obj)
    return roles is not None and bool(roles & {"assistant", "tool", "function", "developer"})


def _is_palm_chat(obj: dict[str, Any]) -> bool:
    roles = _message_roles(obj, "author")
    return roles is not None and bool(roles)


def _is_sharegpt(obj: dict[str, Any]) -> bool:
    # An empty `conversations` list is still ShareGPT (the format's own broken record, which the
    # converter reports as "no turns"); some variants spell the turns {role, content}.
    turns = obj.get("conversations")
    if not isinstance(turns, list):
        return False
    return not turns or any(isinstance(t, dict) and ("from" in t or "role" in t) for t in turns)


def _is_oasst_tree(obj: dict[str, Any]) -> bool:
    prompt = obj.get("prompt")
    return isinstance(prompt, dict) and "replies" in prompt and ("role" in prompt or "text" in prompt)


# Column names a table's prompt, response and system columns are guessed from, in order of
# preference (`--from table` without `--map`).
PROMPT_COLUMNS = ("prompt", "question", "input", "query", "instruction")
RESPONSE_COLUMNS = ("response", "answer", "output", "completion", "target")
SYSTEM_COLUMNS = ("system", "system_prompt")


def _is_table(obj: dict[str, Any]) -> bool:
    # Flat rows only (what CSV and Parquet give), with a guessable prompt and response column:
    # a record of other shapes is not claimed, so SCH001 still explains it.
    if not any(k in obj for k in PROMPT_COLUMNS) or not any(k in obj for k in RESPONSE_COLUMNS):
        return False
    return all(v is None or isinstance(v, (str, int, float)) for v in obj.values())


_TO_CONTENTS = "each turn becomes {role: user|model, parts: [{text}]} under `contents`"

FOREIGN_FORMATS: tuple[ForeignFormat, ...] = (
    ForeignFormat(
        "gemini-messages",
        "the Gemini 1.0 `messages` format",
        f"{_TO_CONTENTS}; a leading system message becomes `systemInstruction`",
        _is_gemini_messages,
    ),
    ForeignFormat(
        "openai",
        "the OpenAI chat fine-tuning format",
        f"{_TO_CONTENTS} (assistant -> model); system messages become `systemInstruction`",
        _is_openai_chat,
    ),
    ForeignFormat(
        "palm-chat",
        "the PaLM chat-bison format (`context` + `messages[author]`)",
        f"{_TO_CONTENTS}; `context` becomes `systemInstruction`",
        _is_palm_chat,
    ),
    ForeignFormat(
        "palm-text",
        "the PaLM text-bison format (`input_text`/`output_text`)",
        "input_text becomes a user turn and output_text a model turn under `contents`",
        lambda obj: "input_text" in obj and "output_text" in obj,
    ),
    ForeignFormat(
        "alpaca",
        "the Alpaca format (`instruction`/`input`/`output`)",
        "instruction (+ input) becomes a user turn and output a model turn under `contents`",
        lambda obj: "instruction" in obj and "output" in obj,
    ),
    ForeignFormat(
        "sharegpt",
        "the ShareGPT format (`conversations[from, value]`)",
        f"{_TO_CONTENTS} (human -> user, gpt -> model)",
        _is_sharegpt,
    ),
    ForeignFormat(
        "openai-completions",
        "the OpenAI legacy completions format (`prompt`/`completion`)",
        "prompt becomes a user turn and completion a model turn under `contents`",
        lambda obj: "prompt" in obj and "completion" in obj,
    ),
    ForeignFormat(
        "oasst",
        "an Open-Assistant message tree (`prompt` with `replies`)",
        "the best-ranked path through the tree becomes one conversation (prompter -> user, "
        "assistant -> model) under `contents`",
        _is_oasst_tree,
    ),
    ForeignFormat(
        "table",
        "a table layout (prompt and response columns)",
        "the prompt column becomes a user turn and the response column a model turn under "
        "`contents` (`sftgate convert --from table --map prompt=COL,response=COL`)",
        _is_table,
    ),
)


def detect_foreign(obj: dict[str, Any]) -> ForeignFormat | None:
    """The non-Gemini format `obj` is written in, or None (Gemini, or nothing we recognise).
    The first format that matches wins, so the specific formats come before `table`, which
    claims any flat row with a guessable prompt and response column."""
    if "contents" in obj:
        return None
    for fmt in FOREIGN_FORMATS:
        if fmt.matches(obj):
            return fmt
    return None
