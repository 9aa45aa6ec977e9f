"""Content rules (CNT001-CNT099): built-in checks of what the texts of an example say.

Each rule looks at text parts one by one and reports the part (`/contents/3/parts/0`). They run
on every example, so each returns a list, empty unless its detector (`analysis/content.py`, each
with its own quick test: `isascii()`, a substring, one compiled search) finds something. The user-declared
content rules of a profile (CNT100 and up) are in `rules/declared.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sftgate.analysis.content import (
    compression_ratio,
    control_character,
    find_phrase,
    mojibake,
    parse_json_payload,
    prose,
    strip_controls,
    template_marker,
)
from sftgate.model import Action, Example, Finding, PartKind, Severity
from sftgate.rules.base import RecordRule, RuleContext, quote


def _settings(ctx: RuleContext) -> Mapping[str, Any]:
    return ctx.profile.data["content"]


def _text_parts(example: Example, *, model_only: bool) -> Iterator[tuple[str, str, str]]:
    """(where, pointer, text) of the text parts a rule reads: the model turns', or every turn's
    and the system instruction's."""
    if not model_only:
        for i, part in enumerate(example.system):
            if part.kind is PartKind.TEXT:
                yield "systemInstruction", f"/{example.system_key}/parts/{i}", part.value
    for turn in example.turns:
        if model_only and turn.role != "model":
            continue
        for i, part in enumerate(turn.parts):
            if part.kind is PartKind.TEXT:
                yield f"turn {turn.index + 1}", f"{turn.pointer}/parts/{i}", part.value


_CONTROL_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "BS", 0x0B: "VT", 0x0C: "FF", 0x1B: "ESC", 0x7F: "DEL",
                  0x85: "NEL", 0xA0: "NBSP"}


def _char_name(ch: str) -> str:
    code = ord(ch)
    name = _CONTROL_NAMES.get(code)
    return f"U+{code:04X}" + (f" ({name})" if name else "")


class RefusalPhrase(RecordRule):
    """## What it does
    Flags a model turn that contains a refusal or AI-boilerplate phrase from the profile's list
    ("as an AI language model", "I'm sorry, but I can't", "my knowledge cutoff", ...).

    Phrases are found case-insensitively; whitespace matches any whitespace, an apostrophe
    matches a curly one, a comma inside a phrase is optional, and a phrase that starts or ends
    with a letter must start or end a word. A profile that sets the list replaces it.

    ## Why is this bad?
    Answers distilled from another assistant carry its refusals, disclaimers and identity. Tuned
    on them, the model learns to refuse harmless requests, to hedge, or to call itself ChatGPT.
    The action is `flag` by default because safety datasets teach refusals on purpose; set it to
    `drop` when the dataset should have none.

    ## Example
    A model turn "As an AI language model, I cannot browse the internet, but...".
    Use instead: regenerate or rewrite the answer, or drop the example.

    ## Options
    - `content.refusal_phrases`: the phrases.
    """

    code = "CNT001"
    name = "refusal-phrase"
    default_severity = Severity.WARNING
    default_action = Action.FLAG

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        phrases = _settings(ctx)["refusal_phrases"]
        found: list[Finding] = []
        for turn in example.turns:
            if turn.role != "model":
                continue
            for i, part in enumerate(turn.parts):
                if part.kind is PartKind.TEXT and (hit := find_phrase(part.value, phrases)) is not None:
                    found.append(self.at(example, f"turn {turn.index + 1} says {quote(hit)}",
                                         pointer=f"{turn.pointer}/parts/{i}",
                                         hint="rewrite or regenerate the answer, or drop the example"))
        return found


class Mojibake(RecordRule):
    """## What it does
    Flags a text part with the replacement character U+FFFD or with UTF-8 read as CP1252 or
    Latin-1: "Ã©" for é, "â€™" for ’, "Ð¿" for п, "ðŸ˜€" for an emoji.

    ## Why is this bad?
    The text was decoded with the wrong encoding somewhere upstream (or its bytes were lost: a
    U+FFFD cannot be undone). The model learns to write the garbled sequences. Only sequences
    that real accented text does not form are flagged: a lead character (Ã, Â, â, Ð, ...) must
    be followed by what UTF-8 continuation bytes become, and after the rarer leads typographic
    quotes, dashes and ellipses do not count ("Fuß“" and "JOSÉ…" are fine).

    ## Example
    `{"text": "Itâ€™s a cafÃ© near the station"}`.
    Use instead: decode the source as UTF-8 (or repair it, e.g. with ftfy) and rebuild the
    example; drop examples with U+FFFD.
    """

    code = "CNT002"
    name = "mojibake"
    default_severity = Severity.WARNING
    default_action = Action.FLAG

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        found: list[Finding] = []
        for where, pointer, text in _text_parts(example, model_only=False):
            if (hit := mojibake(text)) is not None:
                what = "replacement character U+FFFD" if hit[0] == "\ufffd" else f"mojibake {quote(hit)}"
                found.append(self.at(example, f"{where} has {what}", pointer=pointer,
                                     hint="re-decode the source as UTF-8, or repair the text (ftfy)"))
        return found


class ControlCharacter(RecordRule):
    """## What it does
    Flags a text part that holds a control character: C0 (U+0000-U+001F) other than tab, line
    feed and carriage return, DEL, or C1 (U+0080-U+009F). Zero-width and bidirectional
    formatting characters are not flagged: they are part of emoji sequences, Persian and Indic
    spelling, and right-to-left text.

    ## Why is this bad?
    Control characters are residue of terminals (ANSI colour codes), PDF extraction (form
    feeds), binary data or a wrong decoding (C1 characters are CP1252 punctuation read as
    Latin-1). The model learns to emit invisible bytes that break the programs reading its output.

    ## Example
    `{"text": "\\u001b[31mError\\u001b[0m: file not found"}`.
    Use instead: "Error: file not found". With the action `fix` (the default), `prepare`
    removes terminal escape sequences whole, turns vertical tabs, form feeds and NEL into line
    feeds, and deletes the other control characters from every text part; a part left empty
    sends the record to the quarantine.
    """

    code = "CNT003"
    name = "control-character"
    default_severity = Severity.WARNING
    default_action = Action.FIX
    fixes = "record"

    def fix(self, obj: dict[str, Any], ctx: RuleContext) -> bool:
        parts = [part for turn in obj["contents"] for part in turn.get("parts", ())]
        for key in ("systemInstruction", "system_instruction"):
            if isinstance(obj.get(key), dict):
                parts += obj[key].get("parts") or []
        for part in parts:
            text = part.get("text") if isinstance(part, dict) else None
            if isinstance(text, str) and control_character(text) is not None:
                part["text"] = cleaned = strip_controls(text)
                if not cleaned.strip():
                    return False
        return True

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        found: list[Finding] = []
        for where, pointer, text in _text_parts(example, model_only=False):
            if (hit := control_character(text)) is not None:
                index, ch = hit
                count = sum(1 for c in text if c < " " and c not in "\t\n\r" or "\x7f" <= c <= "\x9f")
                more = f" ({count} in all)" if count > 1 else ""
                found.append(self.at(example, f"{where} has control character {_char_name(ch)} at character "
                                              f"{index + 1}{more}: {quote(text[max(0, index - 15):index + 15])}",
                                     pointer=pointer, hint="remove control characters (action fix)"))
        return found


class RepetitiveText(RecordRule):
    """## What it does
    Flags a model turn's text part whose prose compresses far better than language does: its
    UTF-8 size over its zlib-compressed size is above the limit (prose is about 2 to 3.5). Code
    blocks and table rows are left out and whitespace runs count as one space, since code, ASCII
    diagrams and tables repeat by design; an answer that is one JSON value is not measured.

    ## Why is this bad?
    An answer that repeats a sentence, a line or a token over and over is a generation that
    looped or a scraping artefact. Tuned on it, the model learns to loop.

    ## Example
    A 2,000-character answer that is "I love you. " two hundred times (ratio 60).
    Use instead: cut the repetition or drop the example.

    ## Options
    - `content.max_compression_ratio`: the largest ratio that passes.
    - `content.repetition_min_chars`: shorter prose is not measured (a short text compresses
      badly, whatever it says).
    """

    code = "CNT004"
    name = "repetitive-text"
    default_severity = Severity.WARNING
    default_action = Action.FLAG

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        settings = _settings(ctx)
        shortest, limit = settings["repetition_min_chars"], settings["max_compression_ratio"]
        found: list[Finding] = []
        for turn in example.turns:
            if turn.role != "model":
                continue
            for i, part in enumerate(turn.parts):
                if part.kind is not PartKind.TEXT or len(part.value) < shortest:
                    continue
                if part.value.lstrip()[:1] in ("{", "[") and parse_json_payload(part.value)[1] is None:
                    continue  # a JSON answer (format tuning) repeats its keys by design
                text = prose(part.value)
                if len(text) >= shortest and (ratio := compression_ratio(text)) > limit:
                    found.append(self.at(example, f"turn {turn.index + 1} compresses {ratio:.1f}x (limit {limit:g}) "
                                                  f"over {len(text):,} characters of prose: {quote(text)}",
                                         pointer=f"{turn.pointer}/parts/{i}",
                                         hint="cut the repeated text or drop the example"))
        return found


class TemplateMarker(RecordRule):
    """## What it does
    Flags a text part with a chat-template or prompt-template marker left in it
    (`<|im_start|>`, `[INST]`, `<start_of_turn>`, an unfilled `{{name}}`, ...), outside code
    blocks and inline code.

    Markers are matched literally and case-sensitively, except three that are also ordinary
    text: `{{` is found only as a `{{name}}` placeholder (not in LaTeX such as `x_{{A}}`), `<s>`
    only at the start of a text and `</s>` only at its end (Llama's BOS and EOS; elsewhere they
    are HTML strikethrough). A profile that sets the list replaces it.

    ## Why is this bad?
    The tuning service applies Gemini's own template. Markers of another model's template in
    the text mean the data was rendered for that model (the turns are probably merged into one
    text), and an unfilled `{{variable}}` means a prompt template was never filled in. The model
    learns to write the markers.

    ## Example
    `{"role": "user", "parts": [{"text": "<s>[INST] Summarise this article [/INST]"}]}`.
    Use instead: split the rendered conversation into `contents` turns without markers, or
    fill the template.

    ## Options
    - `content.template_markers`: the markers.
    """

    code = "CNT005"
    name = "template-marker"
    default_severity = Severity.WARNING
    default_action = Action.FLAG

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        markers = _settings(ctx)["template_markers"]
        found: list[Finding] = []
        for where, pointer, text in _text_parts(example, model_only=False):
            if (hit := template_marker(text, markers)) is not None:
                found.append(self.at(example, f"{where} has template marker {quote(hit)}", pointer=pointer,
                                     hint="remove the other template's markers, or fill the placeholder"))
        return found
