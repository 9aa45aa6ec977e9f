"""`sftgate convert`: write a file of another SFT format (or container) as Gemini JSON Lines.

The input is read as `check` reads it (engine.inputs: JSON arrays, CSV and Parquet unpacked; the
format given or detected from the first records), each record is converted once
(`formats.convert`) and written in canonical form (one compact line, keys sorted). Nothing is
lost silently: every line of the input is written, blank, or listed as not converted with its
reason, and the counts say so.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from sftgate.engine.inputs import resolve
from sftgate.engine.passes import CONTAINER_ERROR, canonical
from sftgate.errors import UsageError
from sftgate.formats.convert import FORMATS, convert, parse_map
from sftgate.io.reader import LineReader
from sftgate.io.sources import open_source

MAX_LINE_BYTES = 1 << 30


@dataclass
class Conversion:
    """What `convert_file` did."""

    source: str
    output: str
    container: str
    format: str
    detected: bool
    lines: int = 0
    written: int = 0
    blank: int = 0
    failed: int = 0  # records (or lines) not converted
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, why), the first `max_listed`
    notes: int = 0  # what conversions could not carry (CNV002's findings in a check)
    noted: list[tuple[int, str]] = field(default_factory=list)  # (line, note), the first `max_listed`

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def convert_file(path: str | os.PathLike[str], out: str | os.PathLike[str], *, input_format: str = "auto",
                 mapping: str | dict[str, str] | None = None, max_listed: int = 20) -> Conversion:
    """Convert `path` to Gemini JSON Lines at `out` (written whole, then renamed into place)."""
    if input_format not in ("auto", *FORMATS):
        raise UsageError(f"unknown input format {input_format!r}; formats: auto, {', '.join(FORMATS)}")
    columns = parse_map(mapping) if isinstance(mapping, str) else dict(mapping or {})
    target = Path(out)
    if str(out).startswith("gs://"):
        raise UsageError("convert writes a local file; copy it to Cloud Storage afterwards (or use prepare)")
    if not target.parent.is_dir():
        raise UsageError(f"{target.parent}: no such directory")
    source = open_source(path)
    with tempfile.TemporaryDirectory(prefix="sftgate-convert-") as stage:
        read = resolve(source, input_format=input_format, mapping=columns, stage_dir=stage)
        reading = read.reading
        done = Conversion(source=source.name, output=str(target), container=reading.container,
                          format=reading.format, detected=read.detected)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh, read.source.open() as stream:
                reader = LineReader(stream, max_line_bytes=MAX_LINE_BYTES)
                for _, data, length, _ in reader:
                    done.lines += 1
                    line = _convert_line(data, length, reading.format, columns, done, max_listed)
                    if line is not None:
                        fh.write(line)
                        done.written += 1
                if reader.broken:
                    _fail(done, done.lines, f"the input ends early ({reader.broken})", max_listed)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return done


def _convert_line(data: bytes | None, length: int, fmt: str, columns: dict[str, str], done: Conversion,
                  max_listed: int) -> bytes | None:
    number = done.lines
    if data is None:
        _fail(done, number, f"line of {length:,} bytes is too long to convert", max_listed)
        return None
    if not data.strip():
        done.blank += 1
        return None
    try:
        obj = orjson.loads(data.removeprefix(b"\xef\xbb\xbf") if number == 1 else data)
    except orjson.JSONDecodeError as exc:
        _fail(done, number, f"invalid JSON ({exc})", max_listed)
        return None
    if isinstance(obj, dict) and CONTAINER_ERROR in obj:
        _fail(done, number, str(obj[CONTAINER_ERROR]), max_listed)
        return None
    converted = convert(obj, fmt, columns)
    for note in converted.notes:
        done.notes += 1
        if len(done.noted) < max_listed:
            done.noted.append((number, note.message))
    if converted.record is None:
        _fail(done, number, converted.error or "cannot be converted", max_listed)
        return None
    try:
        return canonical(converted.record)
    except (orjson.JSONEncodeError, TypeError) as exc:
        _fail(done, number, f"cannot be written as JSON ({exc})", max_listed)
        return None


def _fail(done: Conversion, line: int, why: str, max_listed: int) -> None:
    done.failed += 1
    if len(done.errors) < max_listed:
        done.errors.append((line, why))
