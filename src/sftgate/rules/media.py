"""Media (MED): do the files that `fileData` parts name exist in Cloud Storage, within the limits?

These rules run only with `--verify-media`: the engine (`engine.media`) collects every distinct
`gs://` fileUri of the training and validation files, asks Cloud Storage about them in batches,
and hands the answers to the rules as one `MediaAnalysis`. The rules only judge the answers; the
profile does not switch them on, the flag does (`sftgate rules` lists them either way).
HTTP(S) URIs are not fetched: they are counted in the report as not verified.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sftgate.model import Action, Finding, Severity
from sftgate.rules.base import DatasetRule, RuleContext, family_findings, quote

if TYPE_CHECKING:
    from sftgate.config import Profile

MODALITIES = ("image", "document", "audio", "video")
UNKNOWN = -1  # a use whose mimeType is none of the modalities' (STR007 reports it)
USE_FIELDS = 5  # a use is (source, line, turn, part, modality): five ints in an `array('q')`
_URI_SHOWN = 200  # characters of a URI shown in a message

FOUND, MISSING, UNREADABLE = "found", "missing", "unreadable"
_NOUN = {"image": "image", "document": "PDF", "audio": "audio file", "video": "video"}
_SHRINK = {"image": "downscale or re-encode it (JPEG, WebP)", "document": "split the PDF",
           "audio": "trim it or split it into shorter files", "video": "trim it, lower its bitrate or split it into clips"}


@dataclass(frozen=True, slots=True)
class MediaObject:
    """One distinct `gs://` fileUri: what Cloud Storage said about it, and the records using it."""

    uri: str
    uses: array  # flat (source, line, turn, part, modality) per fileData part that names the URI
    state: str = FOUND  # FOUND | MISSING | UNREADABLE (its bucket refused to answer)
    size: int | None = None  # bytes, when FOUND
    reason: str | None = None  # when MISSING: why ("no such object", "no such bucket gs://b", an invalid URI)

    def each_use(self) -> Iterator[tuple[int, int, int, int, int]]:
        uses = self.uses
        for i in range(0, len(uses), USE_FIELDS):
            yield uses[i], uses[i + 1], uses[i + 2], uses[i + 3], uses[i + 4]

    @property
    def modality(self) -> int:
        """The modality of the first use (a URI named with two MIME types is counted once)."""
        return self.uses[4]


@dataclass(frozen=True)
class MediaAnalysis:
    """Every fileData reference of the training and validation files, and Cloud Storage's answers."""

    sources: tuple[str, ...]  # source index -> name
    objects: dict[str, MediaObject]  # gs:// URIs, in order of first use
    unreadable: dict[str, str] = field(default_factory=dict)  # bucket -> why it could not be read
    references: int = 0  # fileData parts with a string fileUri
    not_verified: int = 0  # distinct http(s) URIs: not fetched
    other: int = 0  # distinct URIs of any other scheme (STR006 reports them)


def pointer(turn: int, part: int) -> str:
    return f"/contents/{turn}/parts/{part}/fileData/fileUri"


def limit(profile: Profile, modality: int) -> int | None:
    """The target's byte limit for one file of the modality; None for an unknown modality."""
    if modality == UNKNOWN:
        return None
    value = profile.media[MODALITIES[modality]].get("max_bytes")
    return None if value is None else int(value)


def size_text(n: int) -> str:
    """`20,971,520 bytes (20.0 MiB)`: the exact count, and a size a person reads."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n:,} bytes ({n / scale:.1f} {unit})"
    return f"{n:,} bytes"


class MissingMedia(DatasetRule):
    """## What it does
    Flags a `gs://` fileUri whose object (or bucket) does not exist in Cloud Storage.

    Runs only with `--verify-media`, which asks Cloud Storage about every distinct `gs://` URI of
    the training and validation files; HTTP(S) URIs are not fetched. A URI that cannot name an
    object (an invalid bucket name) is reported too. One finding per record that uses the URI.

    ## Why is this bad?
    The tuning service reads every media file of the dataset; a file that is not there fails the
    example, or the whole job, after the upload and the wait. A moved folder or a mistyped bucket
    breaks every example that uses it.

    ## Example
    `"fileUri": "gs://my-bucket/images/cat.png"` after the images moved to `gs://my-bucket/img/`.
    Use instead: upload the object, or correct the URI. With the action `drop` (the default),
    `prepare --verify-media` moves the record to the quarantine.
    """

    code = "MED001"
    name = "missing-media"
    default_severity = Severity.ERROR
    default_action = Action.DROP

    def check(self, analysis: MediaAnalysis, ctx: RuleContext) -> Iterator[Finding]:
        for obj in analysis.objects.values():
            if obj.state != MISSING:
                continue
            shown = quote(obj.uri, _URI_SHOWN)
            message = (f"media file {shown} does not exist" if obj.reason == "no such object"
                       else f"media file {shown} does not exist: {obj.reason}")
            for source, line, turn, part, _ in obj.each_use():
                yield self.finding(analysis.sources[source], line, message, pointer=pointer(turn, part),
                                   hint="upload the object or correct the fileUri")


class MediaTooLarge(DatasetRule):
    """## What it does
    Flags a `gs://` media file larger than the target accepts for its modality.

    The modality is the part's `mimeType` (image, PDF, audio or video); the size is the object's
    as Cloud Storage reports it. Runs only with `--verify-media`; HTTP(S) files are not fetched,
    so their size is not checked. One finding per record that uses the file.

    ## Why is this bad?
    Vertex AI tuning takes images and PDFs of at most 20 MB and audio and video files of at most
    100 MB; a larger file is rejected with its example, or fails the job.

    ## Example
    A 35 MB PNG screenshot: `{"mimeType": "image/png", "fileUri": "gs://b/screens/full.png"}`.
    Use instead: downscale or re-encode it, and upload it again. With the action `drop` (the
    default), `prepare --verify-media` moves the record to the quarantine.

    ## Options
    - `media.image.max_bytes`, `media.document.max_bytes`, `media.audio.max_bytes`,
      `media.video.max_bytes`
    """

    code = "MED002"
    name = "media-too-large"
    default_severity = Severity.ERROR
    default_action = Action.DROP

    def check(self, analysis: MediaAnalysis, ctx: RuleContext) -> Iterator[Finding]:
        profile = ctx.profile
        for obj in analysis.objects.values():
            if obj.state != FOUND:
                continue
            assert obj.size is not None
            for source, line, turn, part, modality in obj.each_use():
                most = limit(profile, modality)
                if most is None or obj.size <= most:
                    continue
                kind = MODALITIES[modality]
                yield self.finding(
                    analysis.sources[source], line,
                    f"{_NOUN[kind]} {quote(obj.uri, _URI_SHOWN)} is {size_text(obj.size)}; {profile.target} "
                    f"accepts at most {size_text(most)} per {_NOUN[kind]}",
                    pointer=pointer(turn, part), hint=_SHRINK[kind])


class MediaUnreadable(DatasetRule):
    """## What it does
    Warns, once per bucket, when Cloud Storage refuses to say whether the media files in it exist.

    Runs only with `--verify-media`. Permission denied is this warning; a bucket that does not
    exist is MED001 on every record that uses it.

    ## Why is this bad?
    Nothing is known about these files: they pass the check unverified. If your account may not
    read the bucket, the Vertex AI service agent that runs the tuning job may not either, and a
    job that cannot read its media fails.

    ## Example
    `gs://partner-data/...`, owned by another project that granted you no `storage.objects.get`.
    Use instead: grant read access on the bucket (Storage Object Viewer) to yourself and to the
    Vertex AI service agent, or copy the files to a bucket of your project.
    """

    code = "MED003"
    name = "media-unreadable"
    default_severity = Severity.WARNING
    default_action = Action.FLAG

    def check(self, analysis: MediaAnalysis, ctx: RuleContext) -> Iterator[Finding]:
        in_bucket: dict[str, list[MediaObject]] = {}
        for obj in analysis.objects.values():
            if obj.state == UNREADABLE:
                in_bucket.setdefault(obj.uri[len("gs://"):].split("/", 1)[0], []).append(obj)
        for bucket, why in analysis.unreadable.items():
            objects = in_bucket[bucket]
            uses = [use for obj in objects for use in obj.each_use()]
            source, line, _, _, _ = min(uses)
            records = len({(s, n) for s, n, _, _, _ in uses})
            yield self.finding(analysis.sources[source], None,
                               f"gs://{bucket}: {why}; {len(objects):,} media file(s) used by {records:,} record(s) "
                               f"are not verified (first at line {line:,})",
                               hint="grant read access on the bucket to yourself and to the Vertex AI service agent")


def findings(analysis: MediaAnalysis, ctx: RuleContext, selected: Iterable[str]) -> list[Finding]:
    """Every MED finding, for the selected codes."""
    return family_findings((MissingMedia, MediaTooLarge, MediaUnreadable), analysis, ctx, selected)


def summary(analysis: MediaAnalysis, profile: Profile) -> dict[str, Any]:
    """The report's `media` section: what was checked, what was found, bytes per modality."""
    states = {FOUND: 0, MISSING: 0, UNREADABLE: 0}
    too_large = 0
    by_modality: dict[str, dict[str, int]] = {}
    for obj in analysis.objects.values():
        states[obj.state] += 1
        if obj.state != FOUND:
            continue
        assert obj.size is not None
        if any((most := limit(profile, use[4])) is not None and obj.size > most for use in obj.each_use()):
            too_large += 1
        kind = MODALITIES[obj.modality] if obj.modality != UNKNOWN else "unknown"
        row = by_modality.setdefault(kind, {"objects": 0, "bytes": 0, "largest": 0})
        row["objects"] += 1
        row["bytes"] += obj.size
        row["largest"] = max(row["largest"], obj.size)
    order = [*MODALITIES, "unknown"]
    return {
        "references": analysis.references,
        "uris": len(analysis.objects) + analysis.not_verified + analysis.other,
        "checked": len(analysis.objects),
        "found": states[FOUND],
        "missing": states[MISSING],
        "too_large": too_large,
        "unreadable": states[UNREADABLE],
        "unreadable_buckets": sorted(analysis.unreadable),
        "not_verified": analysis.not_verified,
        "other_schemes": analysis.other,
        "by_modality": {kind: by_modality[kind] for kind in order if kind in by_modality},
    }
