"""Plain-text prompt lists: an eval set written one prompt per line.

Each non-blank line becomes a one-turn example, `{"contents": [{"role": "user", "parts":
[{"text": line}]}]}`, that goes through the same pass as JSONL (so its line numbers, offsets
and accounting are the file's). A blank line stays blank. Bytes that are not UTF-8 are
replaced (U+FFFD) rather than lost: the prompt is still compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson

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
