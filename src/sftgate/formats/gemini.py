"""The Vertex Gemini `contents` format -> `Example`.

Called only on objects that passed the example schema, so shapes (lists, strings, objects) can be
trusted here; meaning (roles, part kinds, media) is for the rules to judge.
"""

from __future__ import annotations

from typing import Any

from sftgate.model import DATA_KEYS, IRREGULAR, TOOLS, Example, Origin, Part, PartKind, Turn


_UNKNOWN = PartKind.UNKNOWN.value


def to_part(raw: dict[str, Any]) -> Part:
    for key in raw:
        kind = DATA_KEYS.get(key)
        if kind is not None:
            return Part(kind, raw[key], raw)
    return Part(PartKind.UNKNOWN, None, raw)


def to_example(obj: dict[str, Any], origin: Origin) -> Example:
    # The hottest function of a run: written out rather than calling to_part, and the shape
    # uses the data key itself, which is the PartKind's value.
    shape: set[str] = set()
    turns = []
    last_model = None
    data_keys = DATA_KEYS
    new = tuple.__new__  # skips the NamedTuple's Python-level __new__
    for i, content in enumerate(obj["contents"]):
        parts = []
        for raw in content["parts"]:
            for key in raw:
                kind = data_keys.get(key)
                if kind is not None:
                    parts.append(new(Part, (kind, raw[key], raw)))
                    shape.add(key)
                    break
            else:
                parts.append(Part(PartKind.UNKNOWN, None, raw))
                shape.add(_UNKNOWN)
            if len(raw) != 1:
                shape.add(IRREGULAR)
        role = content.get("role")
        if role == "model":
            last_model = i
        turns.append(new(Turn, (i, role, tuple(parts))))
    system_key = "systemInstruction" if "systemInstruction" in obj else None
    if system_key is None and "system_instruction" in obj:
        system_key = "system_instruction"
    system = tuple(to_part(p) for p in obj[system_key]["parts"]) if system_key else ()
    tools = tuple(obj.get("tools", ()))
    if tools:
        shape.add(TOOLS)
    return Example.build(
        origin=origin,
        turns=tuple(turns),
        system=system,
        system_key=system_key,
        tools=tools,
        generation_config=obj.get("generationConfig"),
        record=obj,
        shape=frozenset(shape),
        last_model_index=last_model,
    )


def display_text(obj: Any, limit: int) -> str:
    """A record for people to read: the system instruction and each turn as a `role: text`
    paragraph, non-text parts named in brackets; cut at `limit` characters. Tolerates any
    JSON value (a record that broke the schema is shown as far as it can be)."""
    if not isinstance(obj, dict):
        return _cut(str(obj), limit)
    out = []
    system = obj.get("systemInstruction", obj.get("system_instruction"))
    if isinstance(system, dict):
        out.append("system: " + _parts_text(system.get("parts")))
    contents = obj.get("contents")
    for turn in contents if isinstance(contents, list) else ():
        if isinstance(turn, dict):
            out.append(f"{turn.get('role') or 'user'}: {_parts_text(turn.get('parts'))}")
    return _cut("\n\n".join(out), limit)


def _parts_text(parts: Any) -> str:
    texts = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("fileData"), dict):
            data = part["fileData"]
            texts.append(f"[fileData {data.get('mimeType', '')} {data.get('fileUri', '')}]".replace("  ", " "))
        else:
            texts.append(f"[{next(iter(part), 'part')}]")
    return "\n".join(texts)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
