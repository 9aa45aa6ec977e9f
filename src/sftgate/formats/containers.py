"""How records are stored in an input file: JSON Lines, a JSON array, CSV (or TSV), Parquet.

`sniff` names the container from a file's first bytes and its name; `read_items` reads the
records of a JSON array, CSV or Parquet file one `Item` at a time (JSON Lines is read by the
engine's own line reader). A record the container cannot give (a short CSV row, a broken array
element) is an `Item` with an error, never an exception, so every record ends in exactly one
place.

- JSON array: the file is read whole (an array has no record boundaries to stream by; such
  files are small in practice: the 21 MB ShareGPT sample reads in well under a second). UTF-8,
  with or without a BOM. Each element is decoded in place with `json.JSONDecoder.raw_decode`,
  so its Item carries the line it starts on. A file that stops being a valid array (a broken
  element, a missing comma, text after the closing bracket) gives one Item with the error,
  naming line and column, and reading stops: after a syntax error nothing says where the next
  element starts.
- CSV: the `csv` module, a header row required, UTF-8 with or without a BOM, every field a
  string (an empty field is ""), quoted fields may span lines. Blank lines are skipped. A row
  with more or fewer fields than the header is an Item with an error. A file whose name ends
  in `.tsv` (before any `.gz`/`.zst`) is tab-separated.
- Parquet: `pyarrow.parquet.ParquetFile` over the stream (copied to a temporary file first
  when it cannot seek), read in batches; each row is a dict of plain Python values. Binary
  values that are UTF-8 are strings (many writers store text as binary); other binary values
  make the row an Item with an error (base64 would turn bytes into text nobody meant as a
  prompt). Dates, times and decimals become their ISO / decimal text; NaN stays a float,
  which the table converter reports as an empty value.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any, BinaryIO, NamedTuple

import orjson

CONTAINERS = ("jsonl", "json", "csv", "parquet")
_COMPRESSED = (".gz", ".gzip", ".zst", ".zstd")
_BATCH_ROWS = 1024


class Item(NamedTuple):
    number: int  # 1-based record number in the container
    line: int | None  # physical line where the record starts (Parquet: None)
    value: Any  # the record as a JSON-able value (CSV: dict of column -> str)
    error: str | None  # a record that cannot be read: value None and the reason


def _suffix(path: str | PurePath) -> str:
    name = PurePath(str(path)).name.lower()
    for ext in _COMPRESSED:
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return PurePath(name).suffix


def sniff(path: str | Path, head: bytes) -> str:
    """The container of a file from its first bytes (`head`, decompressed, up to 64 KiB) and its
    name: Parquet magic (or a `.parquet`/`.pq` name) -> parquet; `.csv`/`.tsv` -> csv; a file
    whose first non-blank byte is `[` -> json, unless its first line is a whole JSON value and
    more lines follow (JSON Lines whose first record is an array); anything else -> jsonl."""
    suffix = _suffix(path)
    if head[:4] == b"PAR1" or suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".tsv"):
        return "csv"
    text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    text = text.lstrip(b" \t\r\n")
    if not text.startswith(b"["):
        return "jsonl"
    first, newline, rest = text.partition(b"\n")
    if newline and rest.strip():
        first = first.rstrip()
        try:
            orjson.loads(first)
        except orjson.JSONDecodeError as exc:
            # An array spread over lines is cut short: its parse fails at the end of the line. A
            # line that fails earlier (bad syntax, nesting too deep) is a broken JSONL line.
            return "json" if exc.pos >= len(first) - 1 else "jsonl"
        return "jsonl"
    return "json"


def read_items(stream: BinaryIO, container: str, *, name: str) -> Iterator[Item]:
    """The records of a `json`, `csv` or `parquet` stream, in order (see the module docstring
    for how each is read). `name` is the file's name: it picks the CSV delimiter (`.tsv`: tab)."""
    if container == "json":
        return _json_items(stream)
    if container == "csv":
        return _csv_items(stream, "\t" if _suffix(name) == ".tsv" else ",")
    if container == "parquet":
        return _parquet_items(stream)
    raise ValueError(f"read_items reads json, csv or parquet containers, not {container!r}")


# --- JSON array ---------------------------------------------------------------------------------


def _json_items(stream: BinaryIO) -> Iterator[Item]:
    data = stream.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        yield Item(1, None, None, f"the file is not UTF-8: invalid byte at line {line}")
        return
    decoder = json.JSONDecoder(parse_constant=_not_json)  # NaN and Infinity are not JSON, as a JSONL line's
    ws = " \t\r\n"
    n = len(text)
    pos = 0
    line = 1
    counted = 0  # `line` counts the newlines before this position

    def line_at(p: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, p)
        counted = p
        return line

    def where(p: int) -> str:
        row = line_at(p)
        return f"line {row} column {p - (text.rfind(chr(10), 0, p) + 1) + 1}"

    def skip(p: int) -> int:
        while p < n and text[p] in ws:
            p += 1
        return p

    pos = skip(pos)
    number = 1
    if pos >= n or text[pos] != "[":
        yield Item(number, None, None, f"not a JSON array: expected '[' at {where(pos)}")
        return
    pos = skip(pos + 1)
    if pos < n and text[pos] == "]":
        pos = skip(pos + 1)
    else:
        while True:
            start_line = line_at(pos)
            try:
                value, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                yield Item(number, start_line, None,
                           f"array element {number} is not valid JSON: {exc.msg} at {where(exc.pos)}")
                return
            except RecursionError:
                yield Item(number, start_line, None, f"array element {number} is nested too deeply to read")
                return
            except ValueError as exc:  # NaN, Infinity; an integer of more digits than Python converts
                yield Item(number, start_line, None, f"array element {number} is not valid JSON: {exc}")
                return
            yield Item(number, start_line, value, None)
            number += 1
            pos = skip(end)
            if pos < n and text[pos] == ",":
                pos = skip(pos + 1)
                continue
            if pos < n and text[pos] == "]":
                pos = skip(pos + 1)
                break
            found = "the end of the file" if pos >= n else repr(text[pos])
            yield Item(number, line_at(pos), None,
                       f"the array breaks after element {number - 1}: expected ',' or ']' at {where(pos)}, "
                       f"found {found}")
            return
    if pos < n:
        yield Item(number, line_at(pos), None, f"text after the end of the array at {where(pos)}")


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


# --- CSV ----------------------------------------------------------------------------------------


def _csv_items(stream: BinaryIO, delimiter: str) -> Iterator[Item]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a dialogue cell can exceed the 128 KiB default
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    number = 0
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row:
                continue  # a blank line
            if header is None:
                header = row
                continue
            number += 1
            if len(row) != len(header):
                yield Item(number, line, None,
                           f"row has {len(row)} field{'s' if len(row) != 1 else ''}; the header has {len(header)}")
                continue
            yield Item(number, line, dict(zip(header, row)), None)
    except UnicodeDecodeError:
        yield Item(number + 1, start, None, f"the file is not UTF-8 (at or after line {start})")
    except csv.Error as exc:
        yield Item(number + 1, start, None, f"unreadable CSV at line {reader.line_num}: {exc}")
    finally:
        text.detach()  # leave the caller's stream open


# --- Parquet ------------------------------------------------------------------------------------


def _parquet_items(stream: BinaryIO) -> Iterator[Item]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    seekable = getattr(stream, "seekable", lambda: False)()
    spool = None
    if not seekable:
        spool = tempfile.TemporaryFile()
        shutil.copyfileobj(stream, spool, 1 << 20)
        spool.seek(0)
    try:
        try:
            table = pq.ParquetFile(spool if spool is not None else stream)
        except (pa.ArrowException, OSError, ValueError) as exc:
            yield Item(1, None, None, f"not a readable Parquet file: {exc}")
            return
        number = 0
        try:
            for batch in table.iter_batches(batch_size=_BATCH_ROWS):
                for row in batch.to_pylist():
                    number += 1
                    try:
                        yield Item(number, None, {k: _plain(v, k) for k, v in row.items()}, None)
                    except _Binary as exc:
                        yield Item(number, None, None, str(exc))
        except (pa.ArrowException, OSError, ValueError) as exc:
            yield Item(number + 1, None, None, f"Parquet data unreadable after row {number}: {exc}")
    finally:
        if spool is not None:
            spool.close()


class _Binary(ValueError):
    pass


def _plain(value: Any, column: str) -> Any:
    """A pyarrow Python value as a JSON value."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise _Binary(f'column "{column}" holds binary data that is not UTF-8 text') from None
    if isinstance(value, dict):
        return {str(k): _plain(v, column) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(kv, tuple) and len(kv) == 2 for kv in value) and isinstance(value, list) \
                and all(isinstance(kv[0], str) for kv in value):
            return {k: _plain(v, column) for k, v in value}  # a Parquet map
        return [_plain(v, column) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, datetime.timedelta)):
        return str(value)
    return str(value)
