"""The Vertex Gemini `contents` format -> `Example`.

Called only on objects that passed the example schema, so shapes (lists, strings, objects) can be
trusted here; meaning (roles, part kinds, media) is for the rules to judge.
"""

from __future__ import annotations

from typing import Any

from sftgate.model import DATA_KEYS, Example, Origin, Part, PartKind, Turn


def to_part(raw: dict[str, Any]) -> Part:
    for key in raw:
        kind = DATA_KEYS.get(key)
        if kind is not None:
            return Part(kind, raw[key], raw)
    return Part(PartKind.UNKNOWN, None, raw)


def to_example(obj: dict[str, Any], origin: Origin) -> Example:
    turns = tuple(
        Turn(index=i, role=c.get("role"), parts=tuple(to_part(p) for p in c["parts"]))
        for i, c in enumerate(obj["contents"])
    )
    system_key = "systemInstruction" if "systemInstruction" in obj else None
    if system_key is None and "system_instruction" in obj:
        system_key = "system_instruction"
    system = tuple(to_part(p) for p in obj[system_key]["parts"]) if system_key else ()
    return Example(
        origin=origin,
        turns=turns,
        system=system,
        system_key=system_key,
        tools=tuple(obj.get("tools", ())),
        generation_config=obj.get("generationConfig"),
        record=obj,
    )
