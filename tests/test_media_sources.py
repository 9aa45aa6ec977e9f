"""`engine.media.verify_media` reading records as the check saw them: a per-source parse that
converts another format's lines (OpenAI `image_url` parts become `fileData`), against a real
Cloud Storage JSON API on loopback (`gcp-storage-emulator`, tests/gcs_server.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from sftgate.config import load_profile
from sftgate.engine import media
from sftgate.formats.convert import convert
from sftgate.io import gcs
from sftgate.io.sources import open_source


def openai_parse(data: bytes) -> object:
    """An OpenAI line as the check reads it: converted to Gemini (the source record when it does
    not convert)."""
    obj = orjson.loads(data)
    return convert(obj, "openai", {}).record or obj


def openai_example(question: str, url: str | None = None) -> dict[str, Any]:
    content: Any = question
    if url is not None:
        content = [{"type": "text", "text": question}, {"type": "image_url", "image_url": {"url": url}}]
    return {"messages": [{"role": "system", "content": "Answer in one word."},
                         {"role": "user", "content": content},
                         {"role": "assistant", "content": "Cat."}]}


def gemini_example(question: str, uri: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": question},
                                                    {"fileData": {"mimeType": "image/png", "fileUri": uri}}]},
                         {"role": "model", "parts": [{"text": "Cat."}]}]}


def med(found: list) -> list[tuple[str, str, int | None, str | None]]:
    return [(f.code, Path(f.source).name, f.line, f.pointer) for f in found]


@pytest.fixture
def openai_file(gcs_bucket: str, tmp_path: Path, write_jsonl) -> Path:
    root = f"gs://{gcs_bucket}"
    gcs.upload_bytes(b"\x89" * 1_000, f"{root}/cat.png", content_type="image/png")
    return write_jsonl(tmp_path / "chat.jsonl", [
        openai_example("What animal is this?", f"{root}/cat.png"),
        openai_example("What is the capital of France?"),
        openai_example("And this one?", f"{root}/missing.png"),
        b'{"messages": [',  # does not parse: the check reports it, verify_media skips it
        openai_example("Is it on the web?", "https://example.com/cat.png"),
    ])


def test_an_openai_image_url_naming_a_missing_object_is_found(openai_file: Path, gcs_bucket: str) -> None:
    profile = load_profile()
    found, summary = media.verify_media([open_source(openai_file)], profile, parsers=[openai_parse])
    # The pointer is the converted record's: the system message went to the system instruction.
    assert med(found) == [("MED001", "chat.jsonl", 3, "/contents/0/parts/1/fileData/fileUri")]
    assert found[0].message == f'media file "gs://{gcs_bucket}/missing.png" does not exist'
    assert (summary["references"], summary["checked"], summary["found"], summary["missing"],
            summary["not_verified"]) == (3, 2, 1, 1, 1)


def test_each_source_is_read_with_its_own_parse(openai_file: Path, gcs_bucket: str, tmp_path: Path,
                                                write_jsonl) -> None:
    """None reads a source as Gemini JSON Lines, as without `parsers`."""
    gemini = write_jsonl(tmp_path / "gemini.jsonl", [gemini_example("What is it?", f"gs://{gcs_bucket}/gone.png")])
    sources = [open_source(gemini), open_source(openai_file)]
    found, _ = media.verify_media(sources, load_profile(), parsers=[None, openai_parse])
    assert med(found) == [("MED001", "gemini.jsonl", 1, "/contents/0/parts/1/fileData/fileUri"),
                          ("MED001", "chat.jsonl", 3, "/contents/0/parts/1/fileData/fileUri")]
    with pytest.raises(ValueError):
        media.verify_media(sources, load_profile(), parsers=[openai_parse])
