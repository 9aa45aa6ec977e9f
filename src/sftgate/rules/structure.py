"""Structure (STR): is the conversation one the tuning service can learn from?

These rules run on examples that passed the schema, so every turn has a `parts` list of objects
and every text is a string; they judge meaning: roles, turn order, part kinds, media and
function calling.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from sftgate.model import (
    DATA_KEYS,
    IRREGULAR,
    MEDIA_RESOLUTIONS,
    MODIFIER_KEYS,
    TOOLS,
    Action,
    Example,
    Finding,
    PartKind,
    Severity,
)
from sftgate.rules.base import FileRule, RecordRule, RuleContext, quote

ROLES = ("user", "model")
_FUNCTION_KINDS = frozenset({PartKind.FUNCTION_CALL.value, PartKind.FUNCTION_RESPONSE.value})
_ROLE_HINTS = {
    "assistant": 'use "model" for the model\'s turns',
    "bot": 'use "model" for the model\'s turns',
    "gpt": 'use "model" for the model\'s turns',
    "human": 'use "user" for the user\'s turns',
    "system": "move the system prompt to the top-level `systemInstruction`",
    "function": "a functionResponse turn carries no role (or role user)",
    "tool": "a functionResponse turn carries no role (or role user)",
}


def _only_function_responses(turn: Any) -> bool:
    return all(p.kind is PartKind.FUNCTION_RESPONSE for p in turn.parts)


# What `prepare` rewrites a role to (STR001's fix); any other role cannot be fixed.
_ROLE_FIXES = {"user": "user", "human": "user", "model": "model", "assistant": "model", "bot": "model",
               "gpt": "model", "ai": "model", "chatbot": "model"}


def _fix_roles(obj: dict[str, Any]) -> bool:
    """STR001's fix on a raw record: legacy and mis-cased roles renamed; a leading `system`
    turn of text moved to `systemInstruction` (when there is none); a `function`/`tool` turn of
    function responses made a `user` turn; a missing role inferred from the turn before it
    (the opposite role). False when a role is none of these."""
    contents = obj["contents"]
    first = contents[0] if contents else None
    if isinstance(first, dict) and isinstance(first.get("role"), str) and first["role"].lower() == "system":
        parts = first.get("parts") or []
        if "systemInstruction" in obj or "system_instruction" in obj or not parts \
                or not all(isinstance(p, dict) and set(p) == {"text"} for p in parts) or len(contents) < 2:
            return False
        obj["systemInstruction"] = {"parts": parts}
        del contents[0]
    previous = None
    for i, turn in enumerate(contents):
        role = turn.get("role")
        responses = all(isinstance(p, dict) and "functionResponse" in p for p in turn.get("parts", ()))
        if role is None:
            if i == 0 or responses:
                previous = "user"
                continue
            if previous is None:
                return False
            turn["role"] = "model" if previous == "user" else "user"
        elif isinstance(role, str) and role.lower() in _ROLE_FIXES:
            turn["role"] = _ROLE_FIXES[role.lower()]
        elif isinstance(role, str) and role.lower() in ("function", "tool") and responses:
            turn["role"] = "user"
        else:
            return False
        previous = turn["role"]
    return True


def plain_and_clean(obj: dict[str, Any]) -> bool:
    """True when a schema-valid record is a plain text conversation that none of the always-on
    structure rules (STR001-005, `PLAIN_RULES`) can flag: every part is exactly `{"text": ...}`
    and not blank, roles alternate user/model and the last is model, no `tools`. Such a record's
    Example has the shape `{"text"}`. A pass whose rules for that shape are only these skips
    building the Example for it; anything else (a missing role, a media part, an extra key in a
    part) returns False and takes the full path. tests/test_prescreen.py holds it to that."""
    previous = None
    for content in obj["contents"]:
        role = content.get("role")
        if role == previous or (role != "user" and role != "model"):
            return False
        previous = role
        for part in content["parts"]:
            if len(part) != 1:
                return False
            text = part.get("text")
            if not text or text.isspace():  # None: another kind of part
                return False
    if previous != "model" or "tools" in obj:
        return False
    system = obj.get("systemInstruction", obj.get("system_instruction"))
    if system is not None:
        for part in system["parts"]:
            text = part.get("text")
            if not text or text.isspace():
                return False
    return True


class InvalidRole(RecordRule):
    """## What it does
    Flags a turn whose role is not `user` or `model`, and a missing role where the service
    would default it to `user` by mistake. A role-less turn is accepted when it carries only
    `functionResponse` parts (Google's function-calling example) or is the first turn.

    ## Why is this bad?
    Gemini tuning knows two roles. `assistant`, `system` or `function` turns come from other
    formats and are rejected (`unrecognized_role` in Google's validator), and a model turn
    without a role silently becomes a user turn.

    ## Example
    `{"role": "assistant", "parts": [{"text": "Hello"}]}`.
    Use instead: `{"role": "model", ...}`. With the action `fix` (the default), `prepare`
    renames `assistant`, `bot`, `gpt`, `ai` and `chatbot` to `model` and `human` to `user`,
    lower-cases roles, moves a leading text-only `system` turn to `systemInstruction`, makes a
    `function`/`tool` turn of function responses a `user` turn, and gives a missing role the
    opposite of the turn before; a record with any other role goes to the quarantine.
    """

    code = "STR001"
    name = "invalid-role"
    default_severity = Severity.ERROR
    default_action = Action.FIX
    fixes = "record"

    def fix(self, obj: dict[str, Any], ctx: RuleContext) -> bool:
        return _fix_roles(obj)

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        for turn in example.turns:
            if turn.role not in ROLES:
                return self._findings(example)
        return ()  # the common case, without the cost of a generator

    def _findings(self, example: Example) -> Iterator[Finding]:
        for turn in example.turns:
            role = turn.role
            if role in ROLES:
                continue
            if role is None:
                if turn.index == 0 or _only_function_responses(turn):
                    continue
                yield self.at(example, f'turn {turn.index + 1} has no role, so it counts as "user"',
                              pointer=f"{turn.pointer}", hint='set "role": "user" or "model"')
                continue
            hint = _ROLE_HINTS.get(role.lower())
            if role.lower() in ROLES:
                hint = f'roles are lower-case: "{role.lower()}"'
            yield self.at(example, f'turn {turn.index + 1} has role {quote(role)}; expected "user" or "model"',
                          pointer=f"{turn.pointer}/role", hint=hint)


class ConsecutiveSameRole(RecordRule):
    """## What it does
    Flags two consecutive turns with the same role (a role-less turn counts as `user`).

    ## Why is this bad?
    A conversation alternates between user and model. Two model turns in a row usually mean a
    lost user message or a merge bug; Google's validator rejects them (`consecutive_turns`).

    ## Example
    user, model, model.
    Use instead: merge the two model turns, or restore the user turn between them.
    """

    code = "STR002"
    name = "consecutive-same-role"
    default_severity = Severity.ERROR
    default_action = Action.DROP

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        previous = None
        for turn in example.turns:
            role = "user" if turn.role is None else turn.role
            if role == previous:
                return self._findings(example)
            previous = role
        return ()  # the roles alternate: the common case, without the cost of a generator

    def _findings(self, example: Example) -> Iterator[Finding]:
        previous = None
        for turn in example.turns:
            role = turn.effective_role
            if role not in ROLES:
                previous = None  # InvalidRole reports it; do not pile a second finding on it
                continue
            if role == previous:
                yield self.at(example, f"turn {turn.index + 1} has role {quote(role)} twice in a row",
                              pointer=turn.pointer, hint="user and model turns must alternate")
            previous = role


class NoModelTurn(RecordRule):
    """## What it does
    Flags an example without any `model` turn.

    ## Why is this bad?
    The model learns from its own turns only: each model turn is one training record. An
    example without one costs tokens and teaches nothing.

    ## Example
    `{"contents": [{"role": "user", "parts": [{"text": "Summarise this"}]}]}`.
    Use instead: add the answer as a `model` turn.
    """

    code = "STR003"
    name = "no-model-turn"
    default_severity = Severity.ERROR
    default_action = Action.DROP

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        if example.last_model_index is not None:
            return ()
        return [self.at(example, f"no model turn in {len(example.turns)} turn(s)", pointer="/contents",
                        hint="add the expected answer as a turn with role model")]


class LastTurnNotModel(RecordRule):
    """## What it does
    Warns when the last turn is not a `model` turn.

    ## Why is this bad?
    Trailing user turns are context that no model turn answers: they cost tokens and are not
    learned from. Usually a conversation was cut in the wrong place.

    ## Example
    user, model, user.
    Use instead: end the example with the model's answer.
    """

    code = "STR004"
    name = "last-turn-not-model"
    default_severity = Severity.WARNING

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        last = example.turns[-1]
        if last.role == "model" or example.last_model_index is None:  # no model turn: STR003 says it
            return ()
        return [self.at(example, f"last turn (turn {last.index + 1}) has role {quote(last.effective_role)}, not model",
                        pointer=last.pointer, hint="end the example with the model's answer")]


class EmptyText(RecordRule):
    """## What it does
    Flags a text part that is empty or only whitespace, in `contents` or `systemInstruction`.

    ## Why is this bad?
    An empty user turn asks nothing and an empty model turn teaches the model to answer with
    nothing; Google's validator rejects them (`missing_text`).

    ## Example
    `{"role": "model", "parts": [{"text": " "}]}`.
    Use instead: drop the example or fill in the turn.
    """

    code = "STR005"
    name = "empty-text"
    default_severity = Severity.ERROR
    default_action = Action.DROP

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        for part in example.system:
            if part.kind is PartKind.TEXT and (not part.value or part.value.isspace()):
                return self._findings(example)
        for turn in example.turns:
            for part in turn.parts:
                if part.kind is PartKind.TEXT and (not part.value or part.value.isspace()):
                    return self._findings(example)
        return ()

    def _findings(self, example: Example) -> Iterator[Finding]:
        for i, part in enumerate(example.system):
            if part.kind is PartKind.TEXT and (not part.value or part.value.isspace()):
                what = "empty" if not part.value else "only whitespace"
                yield self.at(example, f"systemInstruction text is {what}",
                              pointer=f"/{example.system_key}/parts/{i}/text")
        for turn in example.turns:
            for i, part in enumerate(turn.parts):
                if part.kind is PartKind.TEXT and (not part.value or part.value.isspace()):
                    what = "empty" if not part.value else "only whitespace"
                    yield self.at(example, f"turn {turn.index + 1} ({turn.effective_role}) text is {what}",
                                  pointer=f"{turn.pointer}/parts/{i}/text")


def _file_parts(example: Example) -> Iterator[tuple[str, dict[str, Any]]]:
    for turn in example.turns:
        for i, part in enumerate(turn.parts):
            if part.kind is PartKind.FILE_DATA:
                yield f"{turn.pointer}/parts/{i}/fileData", part.value


def _modality(mime: str, media: Any) -> str | None:
    base = mime.split(";", 1)[0].strip().lower()
    for modality in ("image", "document", "audio", "video"):
        if base in media[modality]["mime_types"]:
            return modality
    prefix = base.split("/", 1)[0]
    if prefix in ("image", "audio", "video"):
        return prefix
    if base == "application/pdf":
        return "document"
    return None


class InvalidFileUri(RecordRule):
    """## What it does
    Flags a `fileData.fileUri` that is not a Cloud Storage (`gs://bucket/object`) or HTTP(S)
    URL, or whose scheme the profile does not allow.

    ## Why is this bad?
    The tuning service fetches media itself: a local path or a `data:` URI cannot be read and
    the example is dropped as containing an invalid file.

    ## Example
    `"fileUri": "images/cat.png"` (a local path).
    Use instead: upload the file and use `"gs://my-bucket/cat.png"`.

    ## Options
    - `media.allowed_uri_schemes`
    """

    code = "STR006"
    name = "invalid-file-uri"
    default_severity = Severity.ERROR
    default_action = Action.DROP
    triggers = frozenset({PartKind.FILE_DATA.value})

    def check(self, example: Example, ctx: RuleContext) -> Iterator[Finding]:
        allowed = ctx.profile.media["allowed_uri_schemes"]
        for where, data in _file_parts(example):
            uri = data["fileUri"]
            scheme, sep, rest = uri.partition("://")
            if not sep or scheme.lower() not in allowed:
                shown = ", ".join(f"{s}://" for s in allowed)
                yield self.at(example, f"fileUri {quote(uri)} is not a {shown} URI",
                              pointer=f"{where}/fileUri", hint="upload the file to Cloud Storage")
            elif scheme.lower() == "gs" and ("/" not in rest or not rest.split("/", 1)[1]):
                yield self.at(example, f"fileUri {quote(uri)} names a bucket but no object",
                              pointer=f"{where}/fileUri", hint="use gs://BUCKET/OBJECT")


class UnsupportedMimeType(RecordRule):
    """## What it does
    Flags a `fileData.mimeType` the target model does not accept for tuning.

    ## Why is this bad?
    Examples with unsupported media are dropped by the service ("contains an invalid image");
    GIF images or MKV videos are common surprises.

    ## Example
    `{"mimeType": "image/gif", "fileUri": "gs://b/a.gif"}` for gemini-2.5-flash.
    Use instead: convert to PNG or JPEG.

    ## Options
    - `media.image.mime_types`, `media.document.mime_types`, `media.audio.mime_types`,
      `media.video.mime_types`
    """

    code = "STR007"
    name = "unsupported-mime-type"
    default_severity = Severity.ERROR
    default_action = Action.DROP
    triggers = frozenset({PartKind.FILE_DATA.value})

    def check(self, example: Example, ctx: RuleContext) -> Iterator[Finding]:
        media = ctx.profile.media
        for where, data in _file_parts(example):
            mime = data["mimeType"]
            modality = _modality(mime, media)
            base = mime.split(";", 1)[0].strip().lower()
            if modality is None or base not in media[modality]["mime_types"]:
                accepted = ", ".join(media[modality]["mime_types"]) if modality else "image, PDF, audio or video types"
                yield self.at(example, f"MIME type {quote(mime)} is not accepted by {ctx.profile.target}",
                              pointer=f"{where}/mimeType", hint=f"accepted: {accepted}")


class TooManyMedia(RecordRule):
    """## What it does
    Flags an example with more images, PDFs, audio or video files than the target accepts in
    one example (by default 30 images, 4 PDFs, 1 audio file, 1 video).

    ## Why is this bad?
    The service drops the whole example ("contains too many images"); for video, when more
    than 10% of examples are dropped the job fails before training.

    ## Example
    Two videos in one example.
    Use instead: split into one example per video.

    ## Options
    - `media.image.max_per_example`, `media.document.max_per_example`,
      `media.audio.max_per_example`, `media.video.max_per_example`
    """

    code = "STR008"
    name = "too-many-media"
    default_severity = Severity.ERROR
    default_action = Action.DROP
    triggers = frozenset({PartKind.FILE_DATA.value})

    def check(self, example: Example, ctx: RuleContext) -> Iterator[Finding]:
        media = ctx.profile.media
        counts = Counter(_modality(d["mimeType"], media) for _, d in _file_parts(example))
        for modality in ("image", "document", "audio", "video"):
            limit = media[modality]["max_per_example"]
            if counts[modality] > limit:
                yield self.at(example, f"{counts[modality]} {modality} files in one example; "
                                       f"{ctx.profile.target} accepts {limit}",
                              pointer="/contents", hint="split the example")


def _declared_functions(example: Example) -> set[str]:
    return {
        decl["name"]
        for tool in example.tools
        for decl in tool.get("functionDeclarations", ())
    }


class UndeclaredFunction(RecordRule):
    """## What it does
    When the example declares `tools`, flags a `functionCall` or `functionResponse` whose name
    is not among the declared functions.

    ## Why is this bad?
    The model learns to call a function it was never shown; at serving time the call fails or
    the model invents arguments. Usually a renamed tool or a copy-paste error.

    ## Example
    `tools` declares `get_weather`; the model turn calls `getWeather`.
    """

    code = "STR009"
    name = "undeclared-function"
    default_severity = Severity.WARNING
    triggers = frozenset({TOOLS})

    def check(self, example: Example, ctx: RuleContext) -> Iterator[Finding]:
        if not example.tools:
            return
        declared = _declared_functions(example)
        for turn in example.turns:
            for i, part in enumerate(turn.parts):
                if part.kind in (PartKind.FUNCTION_CALL, PartKind.FUNCTION_RESPONSE):
                    name = part.value["name"]
                    if name not in declared:
                        yield self.at(example, f"{part.kind.value} {quote(name)} is not declared in tools",
                                      pointer=f"{turn.pointer}/parts/{i}/{part.kind.value}/name",
                                      hint="declared: " + (", ".join(sorted(declared)) or "none"))


class UnmatchedFunctionCall(RecordRule):
    """## What it does
    Flags a `functionCall` that the next turn does not answer with a `functionResponse` of the
    same name, and a `functionResponse` that answers no call in the turn before it. A call in
    the last turn is fine: that is the model learning to call.

    ## Why is this bad?
    The model learns a conversation that cannot happen: results without calls, or calls whose
    results never arrive, which teaches it to hallucinate tool output.

    ## Example
    model: functionCall `search`; user: text "thanks".
    Use instead: the turn after the call carries `{"functionResponse": {"name": "search", ...}}`.
    """

    code = "STR010"
    name = "unmatched-function-call"
    default_severity = Severity.WARNING
    triggers = _FUNCTION_KINDS

    def check(self, example: Example, ctx: RuleContext) -> Iterator[Finding]:
        turns = example.turns
        for t, turn in enumerate(turns):
            calls = [p.value["name"] for p in turn.parts if p.kind is PartKind.FUNCTION_CALL]
            if calls and t + 1 < len(turns):
                answered = Counter(p.value["name"] for p in turns[t + 1].parts
                                   if p.kind is PartKind.FUNCTION_RESPONSE)
                for name in calls:
                    if answered[name] > 0:
                        answered[name] -= 1
                    else:
                        yield self.at(example, f"functionCall {quote(name)} in turn {t + 1} is not answered "
                                               f"by a functionResponse in turn {t + 2}", pointer=turn.pointer)
            if t == 0:
                previous_calls: Counter[str] = Counter()
            else:
                previous_calls = Counter(p.value["name"] for p in turns[t - 1].parts
                                         if p.kind is PartKind.FUNCTION_CALL)
            for i, part in enumerate(turn.parts):
                if part.kind is PartKind.FUNCTION_RESPONSE:
                    name = part.value["name"]
                    if previous_calls[name] > 0:
                        previous_calls[name] -= 1
                    else:
                        yield self.at(example, f"functionResponse {quote(name)} in turn {t + 1} answers no "
                                               "functionCall in the turn before",
                                      pointer=f"{turn.pointer}/parts/{i}")


class InlineData(RecordRule):
    """## What it does
    Flags `inlineData` parts (base64 media inside the JSON line).

    ## Why is this bad?
    Tuning reads media from Cloud Storage (`fileData`) only; inline media is rejected ("No
    inline data" in Google's tuning notebooks) and bloats the file past its size limit.

    ## Example
    `{"inlineData": {"mimeType": "image/png", "data": "iVBORw0..."}}`.
    Use instead: upload the image and reference it with `fileData`.
    """

    code = "STR011"
    name = "inline-data"
    default_severity = Severity.ERROR
    default_action = Action.DROP
    triggers = frozenset({PartKind.INLINE_DATA.value})

    def check(self, example: Example, ctx: RuleContext) -> Iterator[Finding]:
        for turn in example.turns:
            for i, part in enumerate(turn.parts):
                if part.kind is PartKind.INLINE_DATA:
                    size = len(part.value.get("data", ""))
                    yield self.at(example, f"inlineData ({part.value.get('mimeType', '?')}, {size:,} base64 chars) "
                                           "is not accepted for tuning",
                                  pointer=f"{turn.pointer}/parts/{i}/inlineData",
                                  hint="upload the file to Cloud Storage and use fileData")


class ThoughtPart(RecordRule):
    """## What it does
    Flags parts marked as model thoughts (`"thought": true`) or carrying a `thoughtSignature`.

    ## Why is this bad?
    Supervised tuning learns from the answers and omits the thinking process; thought parts
    are not documented as tuning input, and training on them teaches the model to print its
    reasoning as the answer.

    ## Example
    `{"text": "Let me think...", "thought": true}` in a model turn.
    Use instead: keep only the final answer. With the action `fix` (the default), `prepare`
    removes thought parts and `thoughtSignature` keys (a turn left with no part goes to the
    quarantine).
    """

    code = "STR012"
    name = "thought-part"
    default_severity = Severity.WARNING
    default_action = Action.FIX
    fixes = "record"
    triggers = frozenset({IRREGULAR, PartKind.UNKNOWN.value})

    def fix(self, obj: dict[str, Any], ctx: RuleContext) -> bool:
        """Thought parts removed, `thoughtSignature` keys dropped; False if a turn is left empty."""
        for turn in obj["contents"]:
            parts = [p for p in turn["parts"] if p.get("thought") in (None, False)]
            for part in parts:
                part.pop("thoughtSignature", None)
                part.pop("thought", None)
            if not parts:
                return False
            turn["parts"] = parts
        return True

    def check(self, example: Example, ctx: RuleContext) -> Iterator[Finding]:
        for turn in example.turns:
            for i, part in enumerate(turn.parts):
                keys = [k for k in ("thought", "thoughtSignature") if part.raw.get(k) not in (None, False)]
                if keys:
                    yield self.at(example, f"turn {turn.index + 1} part {i + 1} has {' and '.join(keys)}",
                                  pointer=f"{turn.pointer}/parts/{i}", hint="remove thought parts")


_SNAKE = {"file_data": "fileData", "function_call": "functionCall", "function_response": "functionResponse",
          "inline_data": "inlineData", "video_metadata": "videoMetadata"}
_HANDLED_ELSEWHERE = {PartKind.INLINE_DATA}


class UnsupportedPart(RecordRule):
    """## What it does
    Flags a part that is not one of the kinds tuning documents (`text`, `fileData`,
    `functionCall`, `functionResponse`, with `videoMetadata` beside `fileData`): parts with no
    known kind, unknown keys, two kinds in one part, or `executableCode` /
    `codeExecutionResult`.

    ## Why is this bad?
    A part holds exactly one kind of data; the service rejects or drops anything else
    (`invalid_part` in Google's validator). snake_case keys (`file_data`) are a sign of data
    written for another API.

    ## Example
    `{"text": "see image", "fileData": {...}}` (two kinds), or `{"image": "gs://..."}`.
    Use instead: one part per kind: `[{"text": "see image"}, {"fileData": {...}}]`.
    """

    code = "STR013"
    name = "unsupported-part"
    default_severity = Severity.ERROR
    default_action = Action.DROP
    triggers = frozenset({IRREGULAR, PartKind.UNKNOWN.value, PartKind.EXECUTABLE_CODE.value, PartKind.CODE_EXECUTION_RESULT.value})

    def check(self, example: Example, ctx: RuleContext) -> Iterator[Finding]:
        for turn in example.turns:
            for i, part in enumerate(turn.parts):
                where = f"{turn.pointer}/parts/{i}"
                kinds = [k for k in part.raw if k in DATA_KEYS]
                unknown = [k for k in part.raw if k not in DATA_KEYS and k not in MODIFIER_KEYS]
                if unknown:
                    key = unknown[0]
                    hint = f"use {_SNAKE[key]!r}" if key in _SNAKE else "a part holds text, fileData, functionCall or functionResponse"
                    yield self.at(example, f"part has unknown key {quote(key)}", pointer=f"{where}/{key}", hint=hint)
                elif not kinds:
                    yield self.at(example, "part has no data (text, fileData, functionCall or functionResponse)",
                                  pointer=where)
                if len(kinds) > 1:
                    yield self.at(example, f"part has {' and '.join(kinds)}; a part holds one kind",
                                  pointer=where, hint="split it into one part per kind")
                if part.kind in (PartKind.EXECUTABLE_CODE, PartKind.CODE_EXECUTION_RESULT):
                    yield self.at(example, f"{part.kind.value} parts are not accepted for tuning",
                                  pointer=f"{where}/{part.kind.value}", hint="write the code as text")
                if "videoMetadata" in part.raw and part.kind is not PartKind.FILE_DATA:
                    yield self.at(example, "videoMetadata without fileData in the same part",
                                  pointer=f"{where}/videoMetadata", hint="put videoMetadata beside the video's fileData")


class FunctionCallingUnsupported(RecordRule):
    """## What it does
    Flags `functionCall` and `functionResponse` parts (once per example) when the target
    profile says the model does not accept them for tuning. A `tools` declaration alone is
    not flagged: the reported rejection names the parts.

    ## Why is this bad?
    Function-call datasets that tuned gemini-2.0-flash fail on gemini-2.5-flash: "contains an
    unsupported modality [function call] in the 'parts' field" (googleapis/python-aiplatform
    #6127). The whole job fails after upload.

    ## Example
    A `functionCall` part in a gemini-2.5-flash dataset.
    Use instead: tune gemini-2.0-flash, or express the calls as text.

    ## Options
    - `structure.function_calling`
    """

    code = "STR015"
    name = "function-calling-unsupported"
    default_severity = Severity.WARNING
    triggers = _FUNCTION_KINDS

    def check(self, example: Example, ctx: RuleContext) -> Iterator[Finding]:
        if ctx.profile.structure["function_calling"]:
            return
        for turn in example.turns:
            for i, part in enumerate(turn.parts):
                if part.kind in (PartKind.FUNCTION_CALL, PartKind.FUNCTION_RESPONSE):
                    yield self.at(example, f"{part.kind.value} parts are rejected by {ctx.profile.target} tuning",
                                  pointer=f"{turn.pointer}/parts/{i}",
                                  hint="see googleapis/python-aiplatform#6127; gemini-2.0-flash accepts them")
                    return


class MediaResolutionMismatch(FileRule):
    """## What it does
    Flags lines whose `generationConfig.mediaResolution` differs from the rest of the file
    (the most common value, unset counting as a value).

    ## Why is this bad?
    Video tuning requires the same `mediaResolution` on every line of the training and
    validation files; it also changes the token count of every image and frame.

    ## Example
    999 lines with `MEDIA_RESOLUTION_LOW` and one with `MEDIA_RESOLUTION_HIGH`.
    Use instead: one value for the whole file.
    """

    code = "STR014"
    name = "media-resolution-mismatch"
    default_severity = Severity.ERROR

    def check(self, stats: Any, ctx: RuleContext) -> Iterator[Finding]:
        if len(set(stats.media_resolution)) <= 1:  # one value for the whole file: the usual case
            return
        values = [MEDIA_RESOLUTIONS[code] for code in stats.media_resolution]
        counts = Counter(values)
        if len(counts) <= 1:
            return
        # The most common value is the file's; ties go to the value of the earliest record.
        first_seen = {v: i for i, v in reversed(list(enumerate(values)))}
        expected = min(counts, key=lambda v: (-counts[v], first_seen[v]))
        shown = {v: v or "unset" for v in counts}
        summary = ", ".join(f"{shown[v]} on {n:,}" for v, n in counts.most_common())
        for line, value in zip(stats.record_lines, values, strict=True):
            if value != expected:
                yield self.finding(stats.source, line, f"mediaResolution is {shown[value]}; the file uses "
                                   f"{shown[expected]} ({summary})", pointer="/generationConfig/mediaResolution",
                                   hint="use one mediaResolution on every line")


class InconsistentSystemInstruction(FileRule):
    """## What it does
    Notes a file where some examples have a `systemInstruction` and others do not.

    ## Why is this bad?
    If production requests always carry a system instruction, examples without one teach
    behaviour the model will never be asked for (and vice versa); often a conversion step
    dropped it for part of the data.

    ## Example
    900 examples with the support-bot instruction, 100 without.
    """

    code = "STR016"
    name = "inconsistent-system-instruction"
    default_severity = Severity.INFO

    def check(self, stats: Any, ctx: RuleContext) -> Iterator[Finding]:
        flags = stats.has_system
        with_si = sum(flags)
        if 0 < with_si < len(flags):
            minority = 0 if with_si * 2 >= len(flags) else 1
            first = next(line for line, f in zip(stats.record_lines, flags, strict=True) if f == minority)
            state = "without" if minority == 0 else "with"
            yield self.finding(stats.source, first,
                               f"systemInstruction is set on {with_si:,} of {len(flags):,} examples "
                               f"(first example {state} one here)",
                               hint="give every example the system instruction production uses")


# The rules `plain_and_clean` answers for: each finds nothing in a record it accepts.
PLAIN_RULES = frozenset({InvalidRole, ConsecutiveSameRole, NoModelTurn, LastTurnNotModel, EmptyText})
