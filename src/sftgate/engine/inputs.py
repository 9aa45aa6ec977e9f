"""What each input is before the check pass reads it: its container and the format of its records.

The check pass reads JSON Lines. A JSON array, CSV or Parquet file is first staged as JSON Lines
of its records (one line per record, in the container's order, so a finding's line number is
the record's number) in a temporary directory that lives as long as the run; a record the
container cannot give is staged as `{CONTAINER_ERROR: why}` and becomes a CNV001 finding on its
line, so every record still ends in exactly one place. Then the records' format is the one the
user asked for (`input.format`, `--input-format`) or the one the first records are written in
(`formats.convert.detect`); the pass converts each record from it (`passes.Reading`).

`input.format: gemini` reads the file as Vertex would: nothing is staged or converted, a JSON
array file is an FMT010 and records in another format are SCH003s.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import orjson

from sftgate.engine.passes import CONTAINER_ERROR, GEMINI, Reading
from sftgate.errors import SourceError, UsageError
from sftgate.formats.containers import read_items, sniff
from sftgate.formats.convert import detect
from sftgate.io.reader import LineReader
from sftgate.io.sources import Source

DETECT_RECORDS = 100  # the format is detected from this many first records
_HEAD = 1 << 16


@dataclass(frozen=True)
class Input:
    """One input as the pass reads it."""

    source: Source  # what the pass reads: the input itself, or its staged JSON Lines (under the input's name)
    original: Source  # the input as the user named it: its size and sha256 go in the report
    reading: Reading
    detected: bool = False  # the format was detected from the first records, not asked for

    @property
    def staged(self) -> bool:
        return self.source is not self.original


def resolve(source: Source, *, input_format: str, mapping: dict[str, str], stage_dir: str,
            prompts: bool = False) -> Input:
    """How to read `source`: staged or not, converted from which format. `prompts`: a plain-text
    prompt list (an eval set), read as it is."""
    if prompts:
        return Input(source, source, GEMINI)
    pairs = tuple(sorted(mapping.items()))
    if input_format == "gemini":
        return Input(source, source, Reading(mapping=pairs))
    container = _container(source)
    read = source if container == "jsonl" else _stage(source, container, stage_dir)
    if input_format != "auto":
        return Input(read, source, Reading(format=input_format, container=container, mapping=pairs))
    first = _first_records(read)
    found = detect(first, mapping or None)
    if found is None and container in ("csv", "parquet"):
        columns = ", ".join(str(k) for k in (first[0] if first else {}))
        raise UsageError(f"{source.name}: cannot tell which columns hold the prompt and the response "
                         f"(columns: {columns or 'none'}); name them with --map prompt=COL,response=COL")
    found = found or "gemini"
    return Input(read, source, Reading(format=found, container=container, mapping=pairs), detected=True)


def _container(source: Source) -> str:
    with source.open() as stream:
        try:
            head = stream.read(_HEAD)
        except (EOFError, OSError, zlib.error):  # a broken stream: the pass reports it (FMT012)
            return "jsonl"
    return sniff(source.path, head)


def _stage(source: Source, container: str, stage_dir: str) -> Source:
    """`source`'s records as JSON Lines in `stage_dir`, named as the input in findings."""
    fd, path = tempfile.mkstemp(dir=stage_dir, prefix="input-", suffix=".jsonl")
    with os.fdopen(fd, "wb") as out, source.open() as stream:
        block: list[bytes] = []
        for item in read_items(stream, container, name=source.name):
            if item.error is not None:
                line = orjson.dumps({CONTAINER_ERROR: item.error})
            else:
                try:
                    line = orjson.dumps(item.value)
                except (orjson.JSONEncodeError, TypeError) as exc:
                    line = orjson.dumps({CONTAINER_ERROR: f"record {item.number} holds a value JSON cannot "
                                                          f"hold ({exc})"})
            block.append(line + b"\n")
            if len(block) >= 4096:
                out.writelines(block)
                block.clear()
        out.writelines(block)
    staged = Path(path)
    return Source(path=staged, name=source.name, size=staged.stat().st_size, compression=None)


def _first_records(source: Source) -> list[object]:
    """The JSON objects among the first lines, for format detection (bad lines are skipped:
    the pass reports them)."""
    records: list[object] = []
    try:
        with source.open() as stream:
            for _, data, _, _ in LineReader(stream, max_line_bytes=1 << 26):
                if data is None:
                    continue
                try:
                    value = orjson.loads(data)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(value, dict):
                    records.append(value)
                    if len(records) >= DETECT_RECORDS:
                        break
    except (EOFError, OSError, zlib.error, SourceError):  # a broken stream: the pass reports it
        pass
    return records
