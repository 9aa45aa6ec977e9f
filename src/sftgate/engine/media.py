"""`--verify-media`: the `gs://` media that `fileData` parts name, checked against Cloud Storage.

The per-file passes never touch the network. With `--verify-media` the engine reads each
training and validation source once more, its records as the check saw them (an input of another
format converted to Gemini by the parse the engine passes), collects every distinct fileUri with
the records that use it (five ints per use, in an `array`), asks Cloud Storage about the `gs://` ones in batches
(`gcs.stat_many`: one listing for a crowded "directory", concurrent single requests for the
rest), one bucket at a time, and hands the answers to the MED rules. HTTP(S) URIs are not
fetched: they are counted as not verified.

What Cloud Storage answers, per bucket:

- an object, or no object: the URI is found (with its size) or missing (MED001);
- no such bucket: every URI in it is missing (MED001): the tuning service cannot read it either;
- permission denied: the bucket's URIs are unreadable (one MED003 for the bucket);
- anything else (no `gcs` extra, no or rejected credentials, no network, a failing service)
  stops the run with one `SftgateError` (exit code 2): a check that could not look is not a pass.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson

from sftgate.config import Profile
from sftgate.errors import SftgateError, UsageError
from sftgate.io import gcs
from sftgate.io.reader import LineReader
from sftgate.io.sources import Source
from sftgate.model import Finding
from sftgate.rules import RuleContext, media
from sftgate.rules.fmt import BOM
from sftgate.rules.structure import _modality

STAT_WORKERS = 16  # concurrent requests per batch (gcs keeps 32 connections per host)
_KEY = b'"fileData"'  # Gemini lines without it hold no media: skipped without parsing

# One line of a source, as the check read it: a record (a Gemini one when it converts); raises
# orjson.JSONDecodeError when the line is not JSON.
Parse = Callable[[bytes], object]


def verify_media(sources: Sequence[Source], profile: Profile, *, parsers: Sequence[Parse | None] | None = None,
                 workers: int = STAT_WORKERS) -> tuple[list[Finding], dict[str, Any]]:
    """The MED findings of the training and validation `sources` and the report's `media` section.

    `parsers`, one per source, reads its lines as the check did (the engine's `_FileRun.parse`,
    which converts another format); None for a source, or no `parsers`, reads Gemini JSON."""
    analysis = analyse(sources, profile, parsers=parsers, workers=workers)
    found = media.findings(analysis, RuleContext(profile=profile, split="train"), profile.selected)
    return found, media.summary(analysis, profile)


def analyse(sources: Sequence[Source], profile: Profile, *, parsers: Sequence[Parse | None] | None = None,
            workers: int = STAT_WORKERS) -> media.MediaAnalysis:
    """Collect the fileData URIs of `sources`, then ask Cloud Storage about the gs:// ones."""
    if parsers is not None and len(parsers) != len(sources):
        raise ValueError(f"{len(parsers)} parsers for {len(sources)} sources")
    uses, references = _collect(sources, profile, parsers or [None] * len(sources))
    objects: dict[str, media.MediaObject] = {}
    by_bucket: dict[str, list[str]] = {}
    not_verified = other = 0
    for uri, used in uses.items():
        if uri.startswith(gcs.SCHEME):
            try:
                bucket, name = gcs.split_uri(uri)
            except UsageError as exc:  # cannot name an object: an invalid bucket or object name
                objects[uri] = media.MediaObject(uri, used, media.MISSING, reason=_reason(exc, uri))
                continue
            if not name:
                other += 1  # a bare bucket: STR006 reports it
                continue
            objects[uri] = media.MediaObject(uri, used)
            by_bucket.setdefault(bucket, []).append(uri)
        elif uri[:8].lower().startswith(("http://", "https://")):
            not_verified += 1
        else:
            other += 1
    unreadable: dict[str, str] = {}
    for bucket, uris in by_bucket.items():
        if (why := _ask(bucket, uris, objects, workers)) is not None:
            unreadable[bucket] = why
    return media.MediaAnalysis(sources=tuple(s.name for s in sources), objects=objects, unreadable=unreadable,
                               references=references, not_verified=not_verified, other=other)


def _ask(bucket: str, uris: list[str], objects: dict[str, media.MediaObject], workers: int) -> str | None:
    """Cloud Storage's answers for the URIs of one bucket, into `objects`; why the bucket could
    not be read (permission denied), or None."""
    try:
        answers = gcs.stat_many(uris, workers=workers)
    except SftgateError as exc:
        # gcs tells what failed only in its one-line message, which names the bucket.
        message = str(exc)
        if message.endswith(f"no such bucket gs://{bucket}"):
            for uri in uris:
                objects[uri] = media.MediaObject(uri, objects[uri].uses, media.MISSING,
                                                 reason=f"no such bucket gs://{bucket}")
            return None
        if (at := message.find(": permission denied (")) >= 0:
            for uri in uris:
                objects[uri] = media.MediaObject(uri, objects[uri].uses, media.UNREADABLE)
            return message[at + 2:]
        raise
    for uri, info in answers.items():
        if info is None:
            objects[uri] = media.MediaObject(uri, objects[uri].uses, media.MISSING, reason="no such object")
        else:
            objects[uri] = media.MediaObject(uri, objects[uri].uses, media.FOUND, size=info.size)
    return None


def _collect(sources: Sequence[Source], profile: Profile,
             parsers: Sequence[Parse | None]) -> tuple[dict[str, array], int]:
    """{fileUri: flat (source, line, turn, part, modality) per use}, in order of first use, and
    the number of uses. Lines that do not parse, or parts that are not `fileData` with a string
    `fileUri`, are skipped: the per-file pass has already reported them."""
    max_line = int(profile.format["max_line_bytes"])
    modalities: dict[Any, int] = {}
    uses: dict[str, array] = {}
    references = 0
    for index, (source, parse) in enumerate(zip(sources, parsers, strict=True)):
        for number, obj in _records(source, parse, max_line):
            contents = obj.get("contents") if isinstance(obj, dict) else None
            if not isinstance(contents, list):
                continue
            for t, turn in enumerate(contents):
                parts = turn.get("parts") if isinstance(turn, dict) else None
                if not isinstance(parts, list):
                    continue
                for p, part in enumerate(parts):
                    file_data = part.get("fileData") if isinstance(part, dict) else None
                    if not isinstance(file_data, dict) or not isinstance(uri := file_data.get("fileUri"), str):
                        continue
                    mime = file_data.get("mimeType")
                    if mime not in modalities:
                        modalities[mime] = _modality_index(mime, profile)
                    used = uses.get(uri)
                    if used is None:
                        used = uses[uri] = array("q")
                    used.extend((index, number, t, p, modalities[mime]))
                    references += 1
    return uses, references


def _records(source: Source, parse: Parse | None, max_line: int) -> Iterator[tuple[int, object]]:
    """(line, record) for each line of `source` that parses. Gemini lines (`parse` None) without
    "fileData" are skipped unparsed; a line of another format names its media in its own words
    (`image_url`), so with `parse` every line is read."""
    load = orjson.loads if parse is None else parse
    with source.open() as stream:
        for number, (_, data, _, _) in enumerate(LineReader(stream, max_line_bytes=max_line), 1):
            if data is None or (parse is None and _KEY not in data):
                continue
            if number == 1 and data.startswith(BOM):
                data = data[len(BOM):]
            try:
                obj = load(data)
            except orjson.JSONDecodeError:
                continue
            yield number, obj


def _modality_index(mime: Any, profile: Profile) -> int:
    kind = _modality(mime, profile.media) if isinstance(mime, str) else None
    return media.MODALITIES.index(kind) if kind in media.MODALITIES else media.UNKNOWN


def _reason(exc: SftgateError, uri: str) -> str:
    """The error's message without the URI it starts with."""
    return str(exc).removeprefix(f"{uri}: ").removeprefix(f"{uri!r}: ")
