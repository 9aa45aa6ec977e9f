"""`prepare`: check, then write what passed: Vertex-ready shards, the quarantine, the manifest.

The check pass (`run.execute` with an emit directory) keeps, per chunk, each line's status and
the size of its canonical form (`passes.EmitChunk`; records converted from another format are
spilled in that form). The plan gives every line one place: a training shard, the validation
file, the quarantine (with the findings whose action is drop, or a record fix that failed), or
the blank-line count. The emit pass writes the chunks over the workers: kept lines are parsed
again and written in canonical form, quarantined and fixed ones read or checked again; each
chunk's writer places its bytes at the offsets a shared ledger hands out in input order.
Nothing depends on the number of workers: outputs are byte-identical for the same inputs,
profile and seed.

Accounting, per input: lines = examples written + lines quarantined + blank lines. It is
checked before anything is published.
"""

from __future__ import annotations

import base64
import bisect
import functools
import mmap
import os
import shlex
import struct
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import accumulate, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

from sftgate._version import __version__
from sftgate.baseline import crc32c_halves, fingerprint_crc32c
from sftgate.config import DEFAULT_PROFILE, Profile, load_profile
from sftgate.engine.local import LocalExecutor
from sftgate.engine.passes import (
    GEMINI,
    STATUSES,
    Checker,
    EmitChunk,
    Reading,
    canonical,
    canonical_or_none,
)
from sftgate.engine.progress import Progress
from sftgate.engine.run import Execution, PathLike, _FileRun, execute
from sftgate.errors import SftgateError, UsageError
from sftgate.io import gcs
from sftgate.io.reader import BROKEN, NEWLINE, LineReader
from sftgate.io.sinks import (
    Destination,
    OutputFile,
    Published,
    Staged,
    open_destination,
)
from sftgate.io.sources import Source
from sftgate.model import Finding, FindingColumns, LineStatus
from sftgate.report import json as json_report
from sftgate.report.model import Report
from sftgate.rules import REGISTRY
from sftgate.rules.fmt import decode_line

MANIFEST_VERSION = "1.0"
_BLANK = STATUSES.index(LineStatus.BLANK)


@dataclass(frozen=True)
class OutputSettings:
    unknown_keys: str
    max_shard_bytes: int
    max_shard_examples: int | None
    quarantine_record_max_bytes: int

    @classmethod
    def from_profile(cls, profile: Profile, max_shard_bytes: int | None = None,
                     max_shard_examples: int | None = None) -> OutputSettings:
        section = profile.data["output"]
        size = max_shard_bytes or section["max_shard_bytes"] or profile.limits["max_file_bytes"]
        count = max_shard_examples or section["max_shard_examples"]
        if int(size) < 1 or (count is not None and int(count) < 1):
            raise UsageError("shard limits must be at least 1")
        return cls(unknown_keys=section["unknown_keys"], max_shard_bytes=int(size),
                   max_shard_examples=None if count is None else int(count),
                   quarantine_record_max_bytes=int(section["quarantine_record_max_bytes"]))


@dataclass
class Prepared:
    """What `prepare` did: the check's report, the manifest it wrote, and where the files are."""

    report: Report
    manifest: dict[str, Any]
    published: list[Published]

    @property
    def exit_code(self) -> int:
        return self.report.exit_code


def prepare(
    train: PathLike,
    *,
    out: PathLike,
    validation: PathLike | None = None,
    eval_sets: Sequence[PathLike] = (),
    split_validation: float | None = None,
    seed: int = 0,
    stratify_by: str = "cluster",
    profile: str | Path = DEFAULT_PROFILE,
    rules: PathLike | None = None,
    select: str | Sequence[str] | None = None,
    ignore: str | Sequence[str] | None = None,
    workers: int | None = None,
    tokenizer: str | None = None,
    exact_tokens: bool = False,
    epochs: Sequence[int] | None = None,
    price_per_million: float | None = None,
    overwrite: bool = False,
    max_shard_bytes: int | None = None,
    max_shard_examples: int | None = None,
    verify_media: bool = False,
    baseline: str | os.PathLike[str] | None = None,
    input_format: str | None = None,
    mapping: str | dict[str, str] | None = None,
    production: Sequence[str | os.PathLike[str]] = (),
    keep_source: str | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    progress: Progress | None = None,
) -> Prepared:
    """Check `train` (and `validation`, or plan a split with `split_validation`; eval sets are
    checked for leakage only), then write to `out` (a directory or `gs://bucket/prefix`):
    `train.jsonl` or `train-NNNNN-of-NNNNN.jsonl` shards, `validation.jsonl`,
    `quarantine.jsonl`, `report.json` and, last, `manifest.json`.

    Refuses a non-empty `out` unless `overwrite` (an unfinished run of ours, without a
    manifest, is resumed). The gate still applies: the outputs are written when it fails, the
    manifest says so, and `Prepared.exit_code` is 1. `verify_media` checks the gs:// media
    against Cloud Storage (see `check`): records whose media is missing or too large go to the
    quarantine. `baseline` leaves out the findings it recorded (see `check`): they neither
    fail the gate nor drop or fix a record. `input_format` and `mapping` say how records are
    read (see `check`): records converted from another format are written as Gemini examples.
    `production` samples are compared with the training data (the SKEW rules, see `check`);
    they are read, never written.
    `keep_source` picks each duplicate cluster's survivor by a record field (see `check`).
    `executor` and `ray_address` say where the work runs (see `check`); the outputs are the
    same byte for byte.
    Raises `SftgateError` for usage errors.
    """
    progress = progress or Progress()
    resolved = load_profile(profile, rules_file=rules, select=select, ignore=ignore)
    settings = OutputSettings.from_profile(resolved, max_shard_bytes, max_shard_examples)
    destination = open_destination(out)

    def emit(runs: list[_FileRun], executor: LocalExecutor) -> _Writing:  # once every line's place is known
        return _Writing(_Emitter(executor.profile, settings, destination, seed), runs, executor)

    destination.claim(overwrite)
    try:
        with tempfile.TemporaryDirectory(prefix="sftgate-spill-") as spill:
            execution = execute(
                train, validation=validation, eval_sets=eval_sets, profile=resolved, workers=workers,
                split_validation=split_validation, seed=seed, stratify_by=stratify_by, tokenizer=tokenizer,
                exact_tokens=exact_tokens, epochs=epochs, price_per_million=price_per_million,
                verify_media=verify_media, baseline=baseline, input_format=input_format, mapping=mapping,
                production=production, keep_source=keep_source, executor=executor, ray_address=ray_address,
                emit_dir=spill, progress=progress, emit=emit,
            )
            written = execution.emitted
        progress.phase("publish")
        report = execution.report
        staged_report = destination.stage("report")
        staged_report.write(json_report.render(report))
        files = [*written.files, staged_report.close("report.json", examples=False)]
        published = destination.publish(files)
        manifest = _manifest(execution, written, files, published, destination, seed)
        destination.publish_manifest(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    finally:
        destination.close()
        progress.end_pass()
    return Prepared(report=report, manifest=manifest, published=published)


# --- the emit pass ---------------------------------------------------------------------------
#
# The parent decides each line's fate with array operations (`_Emitter._fates`); chunk by
# chunk, a `_ChunkWriter` (in a worker process for plain files, here for streams) writes the
# kept canonical records and renders the quarantine entries, then places them in the staged
# files itself (`_place`): the ledger gives each chunk, in input order, its offsets and the
# training shards it falls in. The parent only reads back what was placed, in order, to hash it.
# Workers that do not share this machine's disk (Ray) only render (`_render_chunk`); the parent
# places their parts in order, through the same ledger.

BLANK, TRAIN, VALIDATION, FIX_TRAIN, FIX_VALIDATION, DROP, DATASET, OVER_CAP = range(8)
_STATUS_VALUE = [status.value for status in STATUSES]
_TOO_LONG = STATUSES.index(LineStatus.TOO_LONG)
_NOT_RECORD = [not status.is_record for status in STATUSES]
_STATUS_JSON = [orjson.dumps(value) for value in _STATUS_VALUE]
_RECORD = ~np.array(_NOT_RECORD)  # by status index, for arrays of them


@dataclass
class _Tally:
    """Where one input's lines went."""

    source: str
    split: str
    lines: int
    train: int = 0
    validation: int = 0
    quarantine: int = 0
    blank: int = 0

    @property
    def placed(self) -> int:
        return self.train + self.validation + self.quarantine + self.blank

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "split": self.split, "lines": self.lines, "train": self.train,
                "validation": self.validation, "quarantine": self.quarantine, "blank": self.blank,
                "balanced": self.placed == self.lines}


@dataclass
class _Written:
    files: list[OutputFile]
    tallies: list[_Tally]
    quarantined_by_rule: Counter[str] = field(default_factory=Counter)
    quarantined_by_status: Counter[str] = field(default_factory=Counter)
    fixed_by_rule: Counter[str] = field(default_factory=Counter)
    fixed: int = 0
    validation_over_cap: int = 0


class _Shards:
    """The staged training shards, as the chunk writers place records in them (`_cut`)."""

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self.staged: list[Staged] = []

    def placed(self, shard: int, length: int, examples: int) -> None:
        while len(self.staged) <= shard:
            self.staged.append(self.destination.stage(f"{_SHARD}{len(self.staged):05d}", placed=True))
        self.staged[shard].placed(length, examples)

    def close(self) -> list[OutputFile]:
        staged = self.staged or [self.destination.stage(f"{_SHARD}00000")]
        if len(staged) == 1:
            return [staged[0].close("train.jsonl")]
        n = len(staged)
        return [s.close(f"train-{i:05d}-of-{n:05d}.jsonl") for i, s in enumerate(staged)]


_SHARD = "train-"  # staged shards are keyed train-00000, train-00001, ...


def _cut(sizes: np.ndarray, shard: int, used: int, held: int, max_bytes: int, max_examples: int | None
         ) -> tuple[list[tuple[int, int, int, int, int]], tuple[int, int, int]]:
    """Records laid end to end, `sizes` bytes each, cut between shards as writing them one at a
    time would: a shard takes records while they fit, and at least one. The current shard is
    `shard`, with `used` bytes and `held` records in it. Returns the pieces, as (shard, offset
    in it, start, end in the records, records), and the shard state after them."""
    ends = np.cumsum(sizes)
    pieces = []
    done = 0  # records placed
    while done < len(sizes):
        at = int(ends[done - 1]) if done else 0
        fit = int(np.searchsorted(ends[done:], at + max_bytes - used, side="right"))
        if max_examples is not None:
            fit = min(fit, max_examples - held)
        if fit <= 0 and held:
            shard, used, held = shard + 1, 0, 0
            continue
        fit = max(fit, 1)
        end = int(ends[done + fit - 1])
        pieces.append((shard, used, at, end, fit))
        used, held, done = used + end - at, held + fit, done + fit
    return pieces, (shard, used, held)


@dataclass(frozen=True)
class _Targets:
    """Where chunk writers put their records: the staged files, at offsets the ledger gives."""

    ledger: str
    owner: int  # the process that accounts for the chunks (`_Ledger`)
    quarantine: str
    validation: str | None
    shards: str  # a shard's path is this followed by its number, as `_Shards` stages it
    max_bytes: int
    max_examples: int | None


class _Ledger:
    """Where each chunk's outputs end, shared by the processes that write the chunks.

    Chunk i's slot holds the state before it (the quarantine's and the validation file's
    sizes, the current shard, its bytes and records); chunk i's writer waits for it, takes its
    offsets, and posts chunk i + 1's before writing, so the next chunk's writer need not wait
    for its bytes, only for its sizes. Chunks are handed out in order, so every chunk a writer
    waits for has a writer of its own, unless the run stops: a writer that fails posts a
    failure in the next slot, and the owner (the process that accounts for the chunks) posts
    one in the run's own slot, before them all, whenever it stops early (a chunk's error, its
    own, an interrupt), so no writer waits for a chunk that will not come. A writer also stops
    if the owner is gone."""

    SLOT = struct.Struct("<6q")  # five fields, then a check that they were written whole
    FAILED = -1

    def __init__(self, path: str, owner: int, *, create: bool = False) -> None:
        self.fd = os.open(path, os.O_RDWR | (os.O_CREAT | os.O_TRUNC if create else 0), 0o644)
        self.owner = owner

    @staticmethod
    def _check(fields: Sequence[int]) -> int:
        return (hash(tuple(fields)) & 0x7FFF_FFFF_FFFF_FFFF) | 1  # never 0 (unwritten) nor FAILED

    def _at(self, index: int) -> int:
        return (index + 1) * self.SLOT.size  # slot 0 is the run's

    def wait(self, index: int) -> tuple[int, int, int, int, int]:
        delay = 0.0002
        while True:
            data = os.pread(self.fd, self.SLOT.size, self._at(index))
            if len(data) == self.SLOT.size:
                *fields, check = self.SLOT.unpack(data)
                if check == self.FAILED:
                    raise _Abandoned(f"chunk {index - 1} failed")
                if check and check == self._check(fields):
                    return tuple(fields)  # type: ignore[return-value]
            if self._stopped():
                raise _Abandoned("the run stopped")
            time.sleep(delay)
            delay = min(2 * delay, 0.005)

    def _stopped(self) -> bool:
        data = os.pread(self.fd, self.SLOT.size, 0)
        if len(data) == self.SLOT.size and self.SLOT.unpack(data)[-1] == self.FAILED:
            return True
        try:
            os.kill(self.owner, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # there, someone else's: the pid was reused, so the owner is gone
            return True
        return False

    def post(self, index: int, fields: Sequence[int]) -> None:
        # The fields, then the check: a reader never takes a half-written slot.
        at = self._at(index)
        os.pwrite(self.fd, self.SLOT.pack(*fields, 0)[:-8], at)
        os.pwrite(self.fd, self.SLOT.pack(*fields, self._check(fields))[-8:], at + self.SLOT.size - 8)

    def fail(self, index: int) -> None:
        os.pwrite(self.fd, self.SLOT.pack(0, 0, 0, 0, 0, self.FAILED), self._at(index))

    def stop(self) -> None:
        """Stop every writer that waits (the owner stops early)."""
        os.pwrite(self.fd, self.SLOT.pack(0, 0, 0, 0, 0, self.FAILED), 0)

    @classmethod
    def abandon(cls, targets: _Targets, index: int) -> None:
        ledger = cls(targets.ledger, targets.owner)
        try:
            ledger.fail(index)
        finally:
            ledger.close()

    def close(self) -> None:
        os.close(self.fd)


class _Abandoned(RuntimeError):
    """A chunk writer stopped because an earlier chunk failed (whose error is the one reported)."""


def _pwrite(path: str, data: memoryview | list[bytes | memoryview], offset: int) -> None:
    """Write `data` (bytes, or pieces laid end to end: copied once, by the kernel) at `offset`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        if isinstance(data, list):
            for lo in range(0, len(data), _IOV_MAX):
                batch = data[lo:lo + _IOV_MAX]
                done, size = os.pwritev(fd, batch, offset), sum(map(len, batch))
                if done < size:  # a short write: the rest one piece at a time
                    _write_all(fd, memoryview(b"".join(batch))[done:], offset + done)
                offset += size
        else:
            _write_all(fd, data, offset)
    finally:
        os.close(fd)


def _write_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        done = os.pwrite(fd, data, offset)
        data, offset = data[done:], offset + done


def _iov_max() -> int:
    """The pieces one `pwritev` takes: the system's limit, at most 1,024 (16, POSIX's least, when unknown)."""
    try:
        limit = os.sysconf("SC_IOV_MAX")
    except (AttributeError, ValueError, OSError):
        limit = -1
    return min(limit, 1024) if limit > 0 else 16


_IOV_MAX = _iov_max()


def _write_placed(writer: _ChunkWriter, task: _ChunkTask, reader: _Reader) -> _Part:
    """Write one chunk and place its outputs in the staged files (in this process or a worker)."""
    try:
        part = writer.write(task, reader)
    except BaseException:
        _Ledger.abandon(task.targets, task.index + 1)
        raise
    return _place(part, task.targets, task.index)


def _place(part: _Part, targets: _Targets, index: int) -> _Part:
    """Write a chunk's outputs where the ledger's slot `index` says, once the chunks before
    it are placed; `part` keeps what it wrote where, not the bytes."""
    ledger = _Ledger(targets.ledger, targets.owner)
    try:
        try:
            quarantined, validated, shard, used, held = ledger.wait(index)
            pieces, after = _cut(part.train_sizes, shard, used, held, targets.max_bytes, targets.max_examples)
            train, validation, quarantine = part.take()
            ledger.post(index + 1, (quarantined + part.quarantine_bytes, validated + part.validation_bytes, *after))
        except BaseException:
            ledger.fail(index + 1)
            raise
        ends = list(accumulate(map(len, train)))
        for shard, offset, start, end, _ in pieces:
            _pwrite(f"{targets.shards}{shard:05d}", _between(train, ends, start, end), offset)
        if validation:
            assert targets.validation is not None
            _pwrite(targets.validation, validation, validated)
        if quarantine:
            _pwrite(targets.quarantine, quarantine, quarantined)
    finally:
        ledger.close()
    part.train_pieces = [(shard, end - start, n) for shard, _, start, end, n in pieces]
    return part


def _between(pieces: list[bytes], ends: list[int], start: int, end: int) -> list[bytes | memoryview]:
    """Bytes [start, end) of `pieces` laid end to end (`ends`: where each ends), as pieces."""
    out: list[bytes | memoryview] = []
    k = bisect.bisect_right(ends, start)
    while k < len(pieces) and start < end:
        piece, begin = pieces[k], ends[k] - len(pieces[k])
        lo, hi = start - begin, min(end, ends[k]) - begin
        out.append(piece if lo == 0 and hi == len(piece) else memoryview(piece)[lo:hi])
        start = begin + hi
        k += 1
    return out


class _Reader:
    """A record's original bytes by offset, for the quarantine; forward-only on streams.

    `window` names a chunk's span; the first record read from it reads the whole span, so the
    records quarantined from a chunk are slices of one read rather than one seek and read each."""

    WINDOW_MAX = 64 << 20

    def __init__(self, source: Source) -> None:
        self.stream: BinaryIO = source.open()
        self.seekable = source.ranged  # a plain object too: a seek starts a ranged GET there
        self.at = 0
        self.span = (0, 0)
        self.view = memoryview(b"")
        self.pending: tuple[int, int] | None = None

    def window(self, start: int, end: int) -> None:
        """The next reads are in [start, end): it is read whole at the first (a stream's always,
        since it cannot go back for a record it passed)."""
        self.span, self.view = (0, 0), memoryview(b"")
        self.pending = (start, end) if end - start <= self.WINDOW_MAX or not self.seekable else None

    def read(self, offset: int, length: int) -> bytes | memoryview | None:
        """`length` bytes at `offset` (a view of the window when they lie in it), or None."""
        self._load(offset)
        start, end = self.span
        if start <= offset and offset + length <= end:
            return self.view[offset - start:offset - start + length]
        return self._read(offset, length)

    def spans(self, offsets: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The bytes of the window, and where each record (ascending `offsets`) starts in
        them: -1 for those not in it (read one by one)."""
        if len(offsets):
            self._load(int(offsets[0]))
        start, end = self.span
        at = offsets - start
        at[(offsets < start) | (offsets + lengths > end)] = -1
        return np.frombuffer(self.view, dtype=np.uint8), at

    def loaded(self, offset: int) -> tuple[int, bytes]:
        """Where the window starts and its bytes, read first if `offset` is in it or past its
        start (b"" when there is none)."""
        self._load(offset)
        window = self.view.obj
        return self.span[0], window if type(window) is bytes else bytes(window)  # (a stream may read a bytearray)

    def _load(self, offset: int) -> None:
        """Read the window if it is pending and `offset` is in it or past its start."""
        if self.pending is not None and self.pending[0] <= offset:
            start, end = self.pending
            self.pending = None
            data = self._read(start, end - start)
            if data is not None:
                self.span, self.view = (start, start + len(data)), memoryview(data)

    def _read(self, offset: int, length: int) -> bytes | None:
        try:
            if self.seekable:
                self.stream.seek(offset)
            else:
                if offset < self.at:
                    return None
                while self.at < offset:
                    skipped = len(self.stream.read(min(offset - self.at, 1 << 20)))
                    if not skipped:
                        return None
                    self.at += skipped
            data = self.stream.read(length)
        except (OSError, EOFError, ValueError):
            return None
        self.at = offset + len(data)
        return data

    def close(self) -> None:
        self.stream.close()


class _Span(_Reader):
    """A `_Reader` of one chunk's bytes, read by the parent (`_pieces`)."""

    def __init__(self, pieces: list[tuple[int, bytes]]) -> None:  # no stream: the bytes are here
        self.seekable, self.at, self.pending = True, 0, None
        self.pieces = pieces
        self.starts = [start for start, _ in pieces]

    def window(self, start: int, end: int) -> None:
        """Nothing to read ahead: the pieces are all there is."""

    def read(self, offset: int, length: int) -> bytes | memoryview | None:
        i = bisect.bisect_right(self.starts, offset) - 1
        if i < 0:
            return None
        start, data = self.pieces[i]
        if offset + length > start + len(data):
            return None  # not sent: a line too long to be read, or one the parent could not read
        return memoryview(data)[offset - start:offset - start + length]

    def loaded(self, offset: int) -> tuple[int, bytes]:
        """No window: the pieces are read one by one."""
        return 0, b""

    def spans(self, offsets: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pieces laid end to end, and where each record starts in them (-1: not sent)."""
        if not self.pieces:
            return np.zeros(0, dtype=np.uint8), np.full(len(offsets), -1, dtype=np.int64)
        sizes = np.array([len(data) for _, data in self.pieces], dtype=np.int64)
        piece = np.searchsorted(np.array(self.starts, dtype=np.int64), offsets, side="right") - 1
        inside = offsets - np.take(self.starts, piece, mode="clip")
        bases = np.cumsum(sizes) - sizes
        at = np.where((piece >= 0) & (inside + lengths <= np.take(sizes, piece, mode="clip")),
                      np.take(bases, piece, mode="clip") + inside, -1)
        return np.frombuffer(b"".join(data for _, data in self.pieces), dtype=np.uint8), at

    def close(self) -> None:
        """No stream to close."""


def _pieces(chunk: EmitChunk, reader: _Reader) -> list[tuple[int, bytes]]:
    """A chunk's bytes as (offset, bytes) runs of consecutive lines, read with `reader` (in
    input order, so a stream does too); the lines too long to be loaded are left out."""
    status = np.frombuffer(bytes(chunk.status), dtype=np.uint8)
    offsets = np.frombuffer(chunk.offsets, dtype=np.int64)
    ends = offsets + np.frombuffer(chunk.lengths, dtype=np.int64)
    out: list[tuple[int, bytes]] = []
    runs = np.flatnonzero(np.diff(np.r_[0, (status != _TOO_LONG).astype(np.int8), 0]))  # starts, stops
    for first, stop in zip(runs[0::2].tolist(), runs[1::2].tolist(), strict=True):
        at = int(offsets[first])
        data = reader._read(at, int(ends[stop - 1]) - at)
        if data is not None:
            out.append((at, data))
    return out


# A dataset rule's finding that quarantines a line, as the chunk writer needs it: (line, group,
# code, message, pointer, column, related, similarity), `group` the place of its rule's findings
# among the file's (`_FileRun.reasons`). A chunk's go to its writer as one JSON array (orjson
# writes and reads them ten times faster than pickle), and the columns of rules that find one
# per record as columns, which the writer turns into reasons (`FindingColumns.reasons`).
_DatasetReason = tuple[int, int, str, str, str | None, int | None, str | None, float | None]


@dataclass
class _ChunkTask:
    """One chunk's lines and their fates: what a `_ChunkWriter` needs to write them."""

    source: Source
    split: str
    reading: Reading
    base: int  # lines before the chunk
    emit: EmitChunk
    fate: bytes  # one of BLANK ... OVER_CAP per line
    reasons: bytes  # the chunk's DATASET lines' `_DatasetReason`s in line order, a JSON array
    columns: list[tuple[int, FindingColumns]]  # and their reasons as columns, with their group
    over_cap: dict[str, Any] | None  # the reason of OVER_CAP lines
    settings: OutputSettings
    targets: _Targets
    index: int  # the chunk's slot in the ledger
    span: list[tuple[int, bytes]] | None = None  # the chunk's bytes (`_pieces`) for a writer that cannot open the input


@dataclass
class _Part:
    """A chunk written: its training records (`train`), validation records (`validation`) and
    quarantine entries (`entries`), each a list of pieces that a kernel `pwritev` lays end to
    end in the staged file, without a copy here; and what the manifest counts."""

    train_sizes: np.ndarray
    validation_count: int
    validation_bytes: int
    quarantined: int
    blank: int
    content: tuple[int, int]  # (bytes, lines) read, for the progress bar
    train: list[bytes] = field(default_factory=list)
    validation: list[bytes] = field(default_factory=list)
    entries: list[bytes | memoryview] = field(default_factory=list)
    quarantine_bytes: int = 0  # len of the entries, laid end to end
    by_codes: Counter[tuple[str, ...]] = field(default_factory=Counter)  # quarantine entries by their codes
    by_status: Counter[str] = field(default_factory=Counter)  # ... of lines that are no record
    fixed_by_rule: Counter[str] = field(default_factory=Counter)
    fixed: int = 0
    # once placed (`_write_placed`), the pieces are gone and these say where they went:
    train_pieces: list[tuple[int, int, int]] = field(default_factory=list)  # (shard, bytes, records)

    def quarantine(self, entries: list[bytes | memoryview], count: int | None = None) -> None:
        """The chunk's quarantine entries, in order: `count` of them in `entries` (one each
        when None; pieces of several, else)."""
        self.entries, self.quarantine_bytes = entries, sum(map(len, entries))
        self.quarantined = len(entries) if count is None else count

    def portable(self) -> _Part:
        """The part with its entries as bytes, to be sent to another process."""
        self.entries = [bytes(piece) if isinstance(piece, memoryview) else piece for piece in self.entries]
        return self

    def take(self) -> tuple[list[bytes], list[bytes], list[bytes | memoryview]]:
        """The pieces of the training records, the validation records and the quarantine
        entries; the part keeps none of them."""
        taken = self.train, self.validation, self.entries
        self.train, self.validation, self.entries = [], [], []
        return taken


class _ChunkWriter:
    """Writes chunks (`_ChunkTask`) with one profile's record rules."""

    def __init__(self, profile: Profile, settings: OutputSettings) -> None:
        self.profile = profile
        self.settings = settings
        self.checkers: dict[tuple[str, Reading], Checker] = {}
        self.severities: dict[str, str] = {}
        self.scratch: np.ndarray | None = None  # where `_bulk` writes a chunk's entries

    def _checker(self, split: str, reading: Reading = GEMINI) -> Checker:
        """The record rules of one split, reading lines as `reading` says (the input's own
        lines), or as Gemini records (their canonical form, already converted)."""
        if (split, reading) not in self.checkers:
            self.checkers[split, reading] = Checker(self.profile, split, features=False, reading=reading)
        return self.checkers[split, reading]

    def severity(self, code: str) -> str:
        severity = self.severities.get(code)
        if severity is None:
            severity = self.severities[code] = self.profile.severity(code).value
        return severity

    def reason(self, code: str, message: str, pointer: str | None = None, column: int | None = None,
               related: str | None = None, similarity: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"code": code, "severity": self.severity(code), "message": message}
        if pointer is not None:
            out["pointer"] = pointer
        if column is not None:
            out["column"] = column
        if related is not None:
            out["related"] = related
        if similarity is not None:
            out["similarity"] = similarity
        return out

    def finding_reason(self, finding: Finding, note: str = "") -> dict[str, Any]:
        return self.reason(finding.code, finding.message + note, finding.pointer, finding.column, finding.related,
                           finding.similarity)

    def write(self, task: _ChunkTask, reader: _Reader) -> _Part:
        emit = task.emit
        fate = np.frombuffer(task.fate, dtype=np.uint8)
        sizes = np.frombuffer(emit.canonical, dtype=np.int64)
        spill = _spilled(emit.spill, int(sizes[(fate >= TRAIN) & (fate <= FIX_VALIDATION)].sum())) \
            if emit.spill else None
        ends = np.cumsum(sizes)
        offsets, lengths, status = emit.offsets, emit.lengths, emit.status
        ends_at, sizes_at = ends.tolist(), sizes.tolist()
        if len(offsets):
            reader.window(offsets[0], offsets[-1] + lengths[-1])
        again: dict[int, bytes] = {}
        if spill is None:  # Gemini lines: those kept are parsed and written again, first
            for i, data in self._rewritten(task, reader, np.flatnonzero((fate >= TRAIN) & (fate <= FIX_VALIDATION))):
                if data is None:  # it cannot be written: to the quarantine, saying so
                    fate = fate.copy() if not fate.flags.writeable else fate
                    fate[i] = DROP
                else:
                    again[i] = data

        def record(i: int) -> bytes:
            """Line i's canonical form: spilled (a converted record), or its line written again."""
            if spill is not None:
                return spill[ends_at[i] - sizes_at[i]:ends_at[i]]
            return again[i]

        part = _Part(train_sizes=sizes[:0], validation_count=0, validation_bytes=0, quarantined=0,
                     blank=int(np.count_nonzero(fate == BLANK)), content=(sum(lengths) + len(lengths), len(lengths)))
        quarantine: list[bytes] = []
        fixed: dict[int, bytes | None] = {}  # index -> the fixed record, or None when it went to the quarantine
        rows = orjson.loads(task.reasons)
        # a line whose only reason is one of the columns': (its code, the entry's reasons as JSON)
        alone: dict[int, tuple[str, bytes]] = {}
        bulk = _Bulk.empty(len(fate))
        if task.columns:
            lines, counts = np.unique(np.concatenate([np.array([row[0] for row in rows], dtype=np.int64),
                                                      *(found.lines for _, found in task.columns)]),
                                      return_counts=True)
            once = lines[counts == 1]
            lone = []
            for group, found in task.columns:
                only = np.isin(found.lines, once)
                lone.append(found.take(only))
                rows.extend(found.take(~only).reasons(group))
            rows.sort(key=itemgetter(0, 1))  # stable: by line, then as the rules found them
            bulk = self._bulk(task, fate, reader, lone)
            for found in lone:  # those the bulk did not write, one by one
                left = found.take(~np.isin(found.lines, bulk.lines))
                alone.update(zip(left.lines.tolist(),
                                 zip(repeat(found.code), left.reason_arrays(self.severity(found.code)))))
            part.by_codes.update(bulk.codes)
        reasons = iter(rows)
        pending = next(reasons, None)
        source, split, limit = task.source.name, task.split, self.settings.quarantine_record_max_bytes
        fates, base, reason, render = fate.tolist(), task.base, self.reason, self._render
        at: list[int] = []  # the chunk position of each entry in `quarantine`
        last = -1
        for i in np.flatnonzero((fate >= FIX_TRAIN) & ~bulk.done).tolist():
            at.extend(repeat(last, len(quarantine) - len(at)))
            last = i
            kind, line, code, offset, length = fates[i], base + i + 1, status[i], offsets[i], lengths[i]
            if kind <= FIX_VALIDATION:
                fixed[i] = self._fix(task, reader, part, quarantine, line, code, offset, length, record(i))
                continue
            # the bytes, unless the entry points to them instead (a drop's re-check reads them anyway)
            raw = None if code == _TOO_LONG or (length > limit and kind != DROP) else reader.read(offset, length)
            if kind == DATASET:
                if line in alone:  # a dataset rule's line is a record: no status to count
                    found, json = alone[line]
                    part.by_codes[found,] += 1
                    quarantine.append(_entry(source, split, line, _STATUS_VALUE[code], offset, length, [found],
                                             json, raw, limit))
                    continue
                why = []
                while pending is not None and pending[0] < line:  # a line quarantined for another reason
                    pending = next(reasons, None)
                while pending is not None and pending[0] == line:
                    why.append(reason(*pending[2:]))
                    pending = next(reasons, None)
            elif kind == DROP:
                why = self._drop_reasons(task, line, code, offset, length, raw)
            else:
                assert task.over_cap is not None
                why = [task.over_cap]
            quarantine.append(render(part, source, split, line, code, offset, length, why, raw, limit))
        at.extend(repeat(last, len(quarantine) - len(at)))
        count = len(quarantine) + bulk.count
        entries = bulk.merged(quarantine, at)
        for kinds in ((TRAIN, FIX_TRAIN), (VALIDATION, FIX_VALIDATION)):
            if not fixed and spill is not None:
                keep = fate == kinds[0]
                gathered, kept = _gather(spill, ends, sizes, keep), sizes[keep]
                chosen = [gathered] if gathered else []
            else:  # record by record, each its own piece: the kernel's pwritev lays them end to end
                keep = (fate == kinds[0]) | (fate == kinds[1])
                chosen = [fixed[i] if i in fixed else record(i) for i in np.flatnonzero(keep).tolist()]
                chosen = [data for data in chosen if data is not None]
                kept = np.fromiter(map(len, chosen), dtype=np.int64, count=len(chosen))
            if kinds[0] == TRAIN:
                part.train, part.train_sizes = chosen, kept
            else:
                part.validation, part.validation_count, part.validation_bytes = chosen, len(kept), int(kept.sum())
        part.quarantine(entries, count)
        if isinstance(spill, mmap.mmap):
            spill.close()
        return part

    def _bulk(self, task: _ChunkTask, fate: np.ndarray, reader: _Reader, lone: list[FindingColumns]) -> _Bulk:
        """The entries of the records that one finding of `lone` quarantines, written by
        `entries.render`; those it cannot write (not in the chunk's window, not UTF-8, or a
        message it does not know) are left to the writer's loop."""
        from sftgate.engine import entries  # numba: only when a chunk has such records

        emit, base, limit = task.emit, task.base, self.settings.quarantine_record_max_bytes
        status = np.frombuffer(emit.status, dtype=np.uint8)
        offsets = np.frombuffer(emit.offsets, dtype=np.int64)
        lengths = np.frombuffer(emit.lengths, dtype=np.int64)
        templates, codes, columns = [], [], []
        for found in lone:
            template = entries.Template.of(task.source.name, task.split, found.code, self.severity(found.code),
                                           found.message, found.source)
            i = found.lines - base - 1
            ok = (fate[i] == DATASET) & _RECORD[status[i]] & (status[i] != _TOO_LONG) & (lengths[i] <= limit)
            if template is None or not ok.any():
                continue
            columns.append((np.full(int(ok.sum()), len(templates)), i[ok], found.related[ok], found.scores[ok]))
            templates.append(template)
            codes.append(found.code)
        if not templates:
            return _Bulk.empty(len(fate))
        which, where, related, scores = (np.concatenate(c) for c in zip(*columns, strict=True))
        order = np.argsort(where, kind="stable")
        which, where, related, scores = which[order], where[order], related[order], scores[order]
        data, start = reader.spans(offsets[where], lengths[where])
        there = start >= 0
        which, where, related, scores, start = which[there], where[there], related[there], scores[there], start[there]
        ints = np.stack([where + (base + 1), offsets[where], lengths[where], related])
        # The entries are views of the writer's buffer until the chunk is placed; the next
        # chunk writes over them (`_render_chunk` copies them first).
        out, ends = entries.render(templates, which, ints, _STATUS_JSON, status[where], scores, data, start,
                                   self.scratch)
        self.scratch = out
        written = np.diff(ends, prepend=0) > 0
        done = np.zeros(len(fate), dtype=bool)
        done[where[written]] = True
        made = np.bincount(which[written], minlength=len(templates)).tolist()
        return _Bulk(done=done, positions=where, lines=ints[0][written], data=out, ends=ends.tolist(),
                     codes=Counter({(code,): n for code, n in zip(codes, made, strict=True) if n}))

    def _rewritten(self, task: _ChunkTask, reader: _Reader, kept: np.ndarray) -> Iterator[tuple[int, bytes | None]]:
        """(i, its canonical form, or None when the object cannot be written back as JSON) for
        each Gemini line i of `kept`, from the line read again as the check pass parsed it
        (orjson; `decode_line` for what orjson refuses, such as a BOM).

        The line must be the one checked: its CRC-32C, the first half of its fingerprint, is
        compared (`baseline.fingerprint_crc32c`; the CRC-32 half would double the cost of the
        check, on every kept line, for a change that CRC-32C misses once in 2**32)."""
        if not len(kept):
            return
        emit, source, strip = task.emit, task.source.name, self.settings.unknown_keys == "strip"
        offsets, lengths, read, loads = emit.offsets, emit.lengths, reader.read, orjson.loads
        checked = crc32c_halves(emit.marks)
        start, window = reader.loaded(offsets[kept[0]])
        stop = start + len(window)
        for i in kept.tolist():
            offset, length = offsets[i], lengths[i]
            if start <= offset and offset + length <= stop:  # (a slice of bytes is bytes: one copy)
                line = window[offset - start:offset - start + length]
            else:
                raw = read(offset, length)
                line = None if raw is None else bytes(raw)
            if line is None or fingerprint_crc32c(line) != checked[i]:
                raise SftgateError(f"{source}: the line at byte {offset:,} is not what it was when it was "
                                   "checked; did the file change during the run?")
            try:
                obj = loads(line)
            except orjson.JSONDecodeError:
                obj = decode_line(line, length, source=source, line=0, first=offset == 0, max_line_bytes=length + 1)[1]
            yield i, canonical_or_none(obj, strip) if type(obj) is dict else None

    def _recheck(self, task: _ChunkTask, line: int, code: int, offset: int, length: int, data: bytes | None,
                 reading: Reading = GEMINI) -> list[Finding]:
        """The findings of the per-record rules on one line, as the check pass made them
        (`reading`: the input's, for its own bytes; Gemini for a canonical record)."""
        end = BROKEN if STATUSES[code] is LineStatus.TRUNCATED else NEWLINE
        result = self._checker(task.split, reading).check_lines([(offset, data, length, end)], source=task.source.name,
                                                                starts_file=offset == 0)
        return [replace(f, line=line) for f in result.findings if f.line is not None]

    def _drop_reasons(self, task: _ChunkTask, line: int, code: int, offset: int, length: int,
                      raw: bytes | memoryview | None) -> list[dict[str, Any]]:
        found = self._recheck(task, line, code, offset, length, None if raw is None else bytes(raw), task.reading)
        drops = self._checker(task.split).drops
        reasons = [self.finding_reason(f) for f in found if f.code in drops] or [self.finding_reason(f) for f in found]
        if not reasons:  # its rule is switched off, or the record has no canonical form
            status = STATUSES[code]
            what = status.value.replace("_", " ") if not status.is_record else "cannot be written back as JSON"
            reasons = [{"code": None, "message": f"line is not written: {what}"}]
        return reasons

    def _fix(self, task: _ChunkTask, reader: _Reader, part: _Part, quarantine: list[bytes], line: int, code: int,
             offset: int, length: int, data: bytes) -> bytes | None:
        """The record rewritten by the fixes of the rules that found something in it; None
        (and a quarantine entry) when a fix fails or the fixed record still breaks a rule."""
        checker = self._checker(task.split)
        found = self._recheck(task, line, code, offset, length, data[:-1])
        codes = sorted({f.code for f in found if f.code in checker.fixes})
        obj = orjson.loads(data)
        failed = [c for c in codes if not REGISTRY[c]().fix(obj, checker.ctx)]
        if failed:
            why = [self.finding_reason(f, " (cannot be fixed)") for f in found if f.code in failed]
        else:
            fixed = canonical(obj, self.settings.unknown_keys == "strip")
            after = self._recheck(task, line, code, offset, length, fixed[:-1])
            remaining = [f for f in after if f.code in checker.drops or f.code in checker.fixes]
            if not remaining:
                part.fixed += 1
                part.fixed_by_rule.update(codes)
                return fixed
            why = [self.finding_reason(f, f" (after fixing {', '.join(codes)})") for f in remaining]
        raw = None if code == _TOO_LONG else reader.read(offset, length)
        quarantine.append(self._render(part, task.source.name, task.split, line, code, offset, length, why, raw,
                                      self.settings.quarantine_record_max_bytes))
        return None

    @staticmethod
    def _render(part: _Part, source: str, split: str, line: int, code: int, offset: int, length: int,
               reasons: list[dict[str, Any]], raw: bytes | memoryview | None, limit: int) -> bytes:
        if len(reasons) == 1:
            first = reasons[0]["code"]
            codes = [first] if first else []
        else:
            codes = sorted({r["code"] for r in reasons if r["code"]})
        part.by_codes[tuple(codes)] += 1
        if _NOT_RECORD[code]:
            part.by_status[_STATUS_VALUE[code]] += 1
        return _entry(source, split, line, _STATUS_VALUE[code], offset, length, codes, reasons, raw, limit)


@dataclass
class _Bulk:
    """A chunk's quarantine entries written at once (`_ChunkWriter._bulk`), in line order."""

    done: np.ndarray  # by chunk position: its entry is here
    positions: np.ndarray  # the chunk position of each entry tried, ascending
    lines: np.ndarray  # the lines of those written
    data: np.ndarray  # the entries, end to end
    ends: list[int]  # where each one tried ends in `data` (where the one before ends: not written)
    codes: Counter[tuple[str, ...]]

    @classmethod
    def empty(cls, n: int) -> _Bulk:
        return cls(np.zeros(n, dtype=bool), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                   np.zeros(0, dtype=np.uint8), [], Counter())

    @property
    def count(self) -> int:
        return sum(self.codes.values())

    def merged(self, entries: list[bytes], at: list[int]) -> list[bytes | memoryview]:
        """All the chunk's entries in order, as pieces: `entries` (those of chunk positions
        `at`, ascending) between runs of these."""
        if not self.ends:
            return entries
        view = memoryview(self.data)
        ends, out, cut = self.ends, [], 0
        for k, entry in zip(np.searchsorted(self.positions, at).tolist(), entries, strict=True):
            stop = ends[k - 1] if k else 0
            if stop > cut:
                out.append(view[cut:stop])
                cut = stop
            out.append(entry)
        if ends[-1] > cut:
            out.append(view[cut:ends[-1]])
        return out


def _spilled(path: str | bytes, needed: int) -> bytes | mmap.mmap:
    """A chunk's spill file, which goes now: read when most of it is `needed`, else mapped
    into memory, so that only the records written are read. (Its bytes, when they came with
    the task: `_ChunkTask.span`.)"""
    if isinstance(path, bytes):
        return path
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if not size or 2 * needed >= size:
            data: bytes | mmap.mmap = fh.read()
        else:
            data = mmap.mmap(fh.fileno(), size, prot=mmap.PROT_READ)
    os.unlink(path)
    return data


def _gather(data: bytes | mmap.mmap, ends: np.ndarray, sizes: np.ndarray, keep: np.ndarray) -> bytes:
    """The pieces of `data` (`sizes` bytes each, ending at `ends`) that `keep` marks, joined;
    runs of kept pieces are copied as one."""
    at = np.flatnonzero(keep)
    if not at.size:
        return b""
    breaks = np.flatnonzero(np.diff(at) != 1) + 1
    first, last = at[np.r_[0, breaks]], at[np.r_[breaks - 1, at.size - 1]]
    starts, stops = (ends[first] - sizes[first]).tolist(), ends[last].tolist()
    if len(starts) == 1 and starts[0] == 0 and stops[0] == len(data) and isinstance(data, bytes):
        return data
    with memoryview(data) as view:
        return b"".join(view[a:b] for a, b in zip(starts, stops, strict=True))


def _entry(source: str, split: str, line: int, status: str, offset: int, length: int, codes: list[str],
           reasons: list[dict[str, Any]] | bytes, raw: bytes | memoryview | None, limit: int) -> bytes:
    """One line of the quarantine: where the line was, why it is there (`reasons`, or the JSON
    array they make), and its bytes.

    A JSON object with keys source, split, line, offset, length, status, codes, reasons and one
    of record, record_base64 and record_omitted; made of pieces orjson wrote, which takes half
    the time of one dict written whole."""
    head = b'%b%d,"offset":%d,"length":%d,"status":%b,"codes":%b,"reasons":%b' % (
        _entry_start(source, split), line, offset, length, _json_string(status), orjson.dumps(codes),
        reasons if isinstance(reasons, bytes) else orjson.dumps(reasons))
    if length > limit or raw is None:
        omitted = (f"{length:,} bytes at offset {offset:,} of {source}"
                   + (f", over output.quarantine_record_max_bytes ({limit:,})" if length > limit else ", unreadable"))
        return head + b',"record_omitted":' + orjson.dumps(omitted) + b"}\n"
    try:  # one copy of the record's JSON string, not one per piece added
        return b"".join((head, b',"record":', orjson.dumps(str(raw, "utf-8")), b"}\n"))
    except UnicodeDecodeError:
        return head + b',"record_base64":"' + base64.b64encode(raw) + b'"}\n'


@functools.lru_cache(maxsize=64)
def _entry_start(source: str, split: str) -> bytes:
    """A quarantine entry's bytes up to its line number."""
    return b'{"source":%b,"split":%b,"line":' % (orjson.dumps(source), orjson.dumps(split))


@functools.lru_cache(maxsize=64)
def _json_string(text: str) -> bytes:
    return orjson.dumps(text)


_WRITER: _ChunkWriter | None = None  # a worker's writer, kept while the profile and settings are the same


def _writer(profile: Profile, settings: OutputSettings) -> _ChunkWriter:
    global _WRITER
    writer = _WRITER
    if writer is None or writer.profile is not profile or writer.settings != settings:
        writer = _WRITER = _ChunkWriter(profile, settings)
    return writer


def _write_chunk(profile: Profile, task: _ChunkTask) -> _Part:
    """Write one chunk in a worker process (`LocalExecutor.map`)."""
    reader = _Reader(task.source)
    try:
        return _write_placed(_writer(profile, task.settings), task, reader)
    finally:
        reader.close()


def _render_chunk(profile: Profile, task: _ChunkTask) -> _Part:
    """Write one chunk's outputs into its `_Part` (a worker that does not share the staged
    files: `RayExecutor.map`); the caller places them. The chunk's bytes are read from the
    input, or come with the task (`span`)."""
    reader = _Reader(task.source) if task.span is None else _Span(task.span)
    try:
        return _writer(profile, task.settings).write(task, reader).portable()
    finally:
        reader.close()


class _Writing:
    """The emit pass in a thread of this process, while `execute` does the check's last steps:
    the workers write the chunks, this thread hands them out and hashes what they placed."""

    def __init__(self, emitter: _Emitter, runs: list[_FileRun], executor: LocalExecutor) -> None:
        self.emitter = emitter
        emitter.plan(runs)  # here: the runs are not to be read while the caller goes on
        self.written: _Written | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._write, args=(executor,), name="sftgate-write", daemon=True)
        self.thread.start()

    def _write(self, executor: LocalExecutor) -> None:
        try:
            self.written = self.emitter.write(executor)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread by `result`
            self.error = exc

    def result(self, progress: Progress) -> _Written:
        """Wait for the pass to end, `progress` showing it as the write pass from here on."""
        plans = self.emitter.plans
        progress.phase("write " + ", ".join(run.source.name for run, _ in plans),
                       sum(run.stats.content_bytes for run, _ in plans))
        shown = (0, 0)
        try:
            while True:
                self.thread.join(0.05)
                ended = not self.thread.is_alive()  # asked before the counts are read: then they are final
                done = tuple(self.emitter.done)
                if done != shown:
                    progress.advance(done[0] - shown[0], done[1] - shown[1])
                    shown = done
                if ended:
                    break
        except BaseException:
            self.stop()
            raise
        if self.error is not None:
            raise self.error
        assert self.written is not None
        return self.written

    def stop(self) -> None:
        """Stop early: no chunk is handed out any more, and the writers that wait are told;
        returns when nothing writes."""
        self.emitter.stopping = True
        self.thread.join()


class _Emitter:
    def __init__(self, profile: Profile, settings: OutputSettings, destination: Destination, seed: int) -> None:
        self.profile = profile
        self.settings = settings
        self.destination = destination
        self.seed = seed
        self.shards = _Shards(destination)
        self.validation: Staged | None = None
        self.quarantine = destination.stage("quarantine", placed=True)
        self.out = _Written(files=[], tallies=[])
        self.targets: _Targets | None = None
        self.ledger: _Ledger  # opened by write()
        self.chunks = 0  # chunks placed so far: the next one's ledger slot
        self.plans: list[tuple[_FileRun, tuple | None]] = []  # the runs written, with their lines' fates
        self.done = [0, 0]  # bytes and lines of the inputs written so far
        self.stopping = False  # set from another thread: stop handing out chunks

    def plan(self, runs: list[_FileRun]) -> None:
        """Each written input's lines' fates (`_fates`), from what its run found."""
        self.plans = [(run, self._fates(run) if run.emits else None)
                      for run in runs if run.split in ("train", "validation")]
        for run in runs:
            run.planned = True

    def write(self, executor: LocalExecutor | None = None) -> _Written:
        """Write the planned inputs' lines to the staged outputs."""
        runs = [run for run, _ in self.plans]
        wants_validation = any(r.split == "validation" for r in runs) or any(r.split_plan for r in runs)
        if wants_validation:
            self.validation = self.destination.stage("validation", placed=True)
        path = self.destination.staged_path("ledger")
        self.targets = _Targets(
            ledger=str(path), owner=os.getpid(), quarantine=str(self.quarantine.path),
            validation=None if self.validation is None else str(self.validation.path),
            shards=str(self.destination.staged_path(_SHARD)), max_bytes=self.settings.max_shard_bytes,
            max_examples=self.settings.max_shard_examples,
        )
        self.ledger = _Ledger(str(path), os.getpid(), create=True)
        try:
            self.ledger.post(0, (0, 0, 0, 0, 0))
            for run, fates in self.plans:
                self._emit(run, fates, executor)
        finally:  # no writer is running by now (`_emit_chunks` waits for them)
            self.ledger.close()
            path.unlink(missing_ok=True)
        files = self.shards.close()
        if self.validation is not None:
            files.append(self.validation.close("validation.jsonl"))
        files.append(self.quarantine.close("quarantine.jsonl"))
        self.out.files = files
        return self.out

    def _emit(self, run: _FileRun, fates: tuple | None, executor: LocalExecutor | None) -> None:
        tally = _Tally(run.source.name, run.split, run.stats.lines)
        self.out.tallies.append(tally)
        if fates is None:
            self._quarantine_all(run, tally)
        else:
            self._emit_chunks(run, fates, executor, tally)
        if tally.placed != tally.lines:  # a bug, never the data: stop before anything is published
            raise RuntimeError(f"{run.source.name}: {tally.lines} lines read but {tally.placed} placed")

    def _emit_chunks(self, run: _FileRun, fates: tuple, executor: LocalExecutor | None, tally: _Tally) -> None:
        assert self.targets is not None
        fate, reasons, lines, columns, over_cap = fates
        # Over the workers when they run (they checked a large file) and can read this one in
        # ranges, or when this process sends them what they write (workers elsewhere: Ray).
        parallel = executor is not None and executor.workers > 1 and executor.running and len(run.emits) > 1 and \
            (executor.reads_ranges(run.source) or not executor.shares_disk)
        start, self.chunks = self.chunks, self.chunks + len(run.emits)

        def tasks(spans: _Reader | None = None, ship: bool = False) -> Iterator[_ChunkTask]:  # made as handed out
            for index, (base, chunk) in enumerate(run.emits, start):
                n = len(chunk.status)
                first, last = np.searchsorted(lines, [base + 1, base + n + 1]).tolist()
                cut = [(group, found, np.searchsorted(found.lines, [base + 1, base + n + 1]).tolist())
                       for group, found in columns]
                task = _ChunkTask(run.source, run.split, run.reading, base, chunk, fate[base:base + n].tobytes(),
                                  orjson.dumps(reasons[first:last]),
                                  [(group, found.take(slice(a, b))) for group, found, (a, b) in cut if b > a],
                                  over_cap, self.settings, self.targets, index)
                if spans is not None:  # the chunk's bytes go with it, read here in input order
                    task.span = _pieces(chunk, spans)
                if ship and chunk.spill:  # its converted records too: the spill file is this machine's
                    with open(chunk.spill, "rb") as fh:
                        task.emit = replace(chunk, spill=fh.read())
                yield task

        if parallel and not executor.shares_disk:  # type: ignore[union-attr]
            assert executor is not None
            # Workers elsewhere render; this process places their outputs, in order.
            spans = None if executor.reads_ranges(run.source) else _Reader(run.source)
            rendered = executor.map(_render_chunk, tasks(spans, ship=not executor.sees_local_files))
            try:
                self._account((_place(part, self.targets, index) for index, part in enumerate(rendered, start)),
                              tally)
            finally:
                rendered.close()
                if spans is not None:
                    spans.close()
            return
        if parallel:
            assert executor is not None
            # If anything stops this early, the ledger stops the writers that wait, and closing
            # the map waits for those that run, so none writes while the outputs are cleaned up.
            parts = executor.map(_write_chunk, tasks(), on_stop=self.ledger.stop)
            try:
                self._account(parts, tally)
            finally:
                parts.close()
            return
        writer, reader = _ChunkWriter(self.profile, self.settings), _Reader(run.source)
        try:
            self._account((_write_placed(writer, task, reader) for task in tasks()), tally)
        finally:
            reader.close()

    def _account(self, parts: Iterator[_Part], tally: _Tally) -> None:
        """Chunks placed in the staged files, in input order: hash what they wrote, count them."""
        out = self.out
        for part in parts:
            if self.stopping:
                raise _Abandoned("the run stopped")
            for shard, length, examples in part.train_pieces:
                self.shards.placed(shard, length, examples)
            if part.validation_count:
                assert self.validation is not None
                self.validation.placed(part.validation_bytes, part.validation_count)
            if part.quarantined:
                self.quarantine.placed(part.quarantine_bytes, part.quarantined)
            tally.train += len(part.train_sizes)
            tally.validation += part.validation_count
            tally.quarantine += part.quarantined
            tally.blank += part.blank
            for codes, n in part.by_codes.items():
                for code in codes:
                    out.quarantined_by_rule[code] += n
            out.quarantined_by_status.update(part.by_status)
            out.fixed_by_rule.update(part.fixed_by_rule)
            out.fixed += part.fixed
            self.done[0] += part.content[0]
            self.done[1] += part.content[1]

    def _fates(self, run: _FileRun) -> tuple[np.ndarray, list[_DatasetReason], np.ndarray,
                                             list[tuple[int, FindingColumns]], dict[str, Any] | None]:
        """Each line's fate (BLANK ... OVER_CAP), the dataset rules' reasons for the lines they
        quarantine (tuples in line order, and those lines; columns by line, with their group),
        and the reason of lines over the validation cap."""
        n = run.stats.lines
        status = np.concatenate([np.frombuffer(bytes(c.status), dtype=np.uint8) for _, c in run.emits])
        sizes = np.concatenate([np.frombuffer(c.canonical, dtype=np.int64) for _, c in run.emits])
        dropped = np.zeros(n + 1, dtype=bool)
        dropped[run.drop_lines] = True
        fixing = np.zeros(n + 1, dtype=bool)
        fixing[run.fix_lines] = True
        reasons: list[_DatasetReason] = []
        columns: list[tuple[int, FindingColumns]] = []
        for group, found in enumerate(run.reasons or ()):
            if isinstance(found, FindingColumns):
                columns.append((group, found.take(np.argsort(found.lines, kind="stable"))))
            else:
                reasons.extend((row[0], group, *row[1:]) for row in found)
        reasons.sort(key=itemgetter(0))  # stable: a line's keep their order
        lines = np.fromiter((row[0] for row in reasons), dtype=np.int64, count=len(reasons))
        dataset = np.zeros(n + 1, dtype=bool)
        dataset[lines] = True
        for _, found in columns:
            dataset[found.lines] = True
        to_validation = np.zeros(n + 1, dtype=bool)
        if run.split_plan:
            to_validation[np.asarray(run.split_plan["validation_lines"], dtype=np.int64)] = True
        over_cap = None
        if run.split == "validation":
            to_validation[:] = True
            over_cap = self._cap_validation(n, status, sizes, dropped, dataset, to_validation)
        fate = np.where(to_validation[1:], VALIDATION, TRAIN).astype(np.uint8)
        fate[fixing[1:]] += FIX_TRAIN - TRAIN
        if run.split == "validation":
            fate[~to_validation[1:]] = OVER_CAP
        fate[dataset[1:]] = DATASET
        fate[~_RECORD[status] | dropped[1:] | (sizes == 0)] = DROP
        fate[status == _BLANK] = BLANK
        return fate, reasons, lines, columns, over_cap

    def _cap_validation(self, n: int, status: np.ndarray, sizes: np.ndarray, dropped: np.ndarray,
                        dataset: np.ndarray, keep: np.ndarray) -> dict[str, Any] | None:
        """Keep at most the target's validation maximum: a seeded sample of the candidates.
        Returns the quarantine reason of the others (None when all fit)."""
        cap = self.profile.limits.get("max_validation_examples")
        lines = np.arange(1, n + 1)
        candidates = lines[_RECORD[status] & (sizes != 0) & ~dropped[1:] & ~dataset[1:]]
        if cap is None or candidates.size <= int(cap):
            return None
        chosen = np.random.default_rng(self.seed).choice(candidates, int(cap), replace=False)
        keep[:] = False
        keep[chosen] = True
        self.out.validation_over_cap = int(candidates.size - int(cap))
        return {
            "code": "LIM003", "severity": self.profile.severity("LIM003").value,
            "message": f"the validation file has {candidates.size:,} usable examples and the target takes at most "
                       f"{int(cap):,}; this one is not in the seeded sample (seed {self.seed})",
        }

    def _quarantine_all(self, run: _FileRun, tally: _Tally) -> None:
        """An input the pass did not read line by line (a JSON array file): every line goes
        to the quarantine, with the file's finding as the reason."""
        writer = _ChunkWriter(self.profile, self.settings)
        # The file's FMT010 is one of the findings a report may list, which the profile may cap
        # at none: taken from those kept before the report's cap applies.
        kept = [*run.findings, *run.capped.get("FMT010", ())]
        why = [writer.finding_reason(f) for f in kept if f.line is None and f.code == "FMT010"] \
            or [{"code": None, "message": "the file is not JSON Lines"}]
        codes = sorted({r["code"] for r in why if r["code"]})
        limit = self.settings.quarantine_record_max_bytes
        status = LineStatus.JSON_ARRAY_FILE.value
        reader = _Reader(run.source)
        entries: list[bytes] = []

        def place() -> None:  # the entries so far, as one chunk
            part = _Part(train_sizes=np.zeros(0, dtype=np.int64), validation_count=0, validation_bytes=0,
                         quarantined=0, blank=0, content=(0, 0))
            part.quarantine(entries.copy())
            entries.clear()
            self._account(iter([_place(part, self.targets, self.chunks)]), tally)  # type: ignore[arg-type]
            self.chunks += 1

        try:
            with run.source.open() as stream:
                lines = LineReader(stream, max_line_bytes=limit)
                for number, (offset, _, length, _) in enumerate(lines, 1):
                    raw = reader.read(offset, length) if length <= limit else None
                    entries.append(_entry(run.source.name, run.split, number, status, offset, length, codes,
                                          why, raw, limit))
                    self.out.quarantined_by_rule.update(codes)
                    self.out.quarantined_by_status[status] += 1
                    if len(entries) >= 4096:
                        place()
            if entries:
                place()
        finally:
            reader.close()


# --- the manifest ----------------------------------------------------------------------------


def _manifest(execution: Execution, written: _Written, files: list[OutputFile], published: list[Published],
              destination: Destination, seed: int) -> dict[str, Any]:
    report = execution.report
    where = {p.name: p for p in published}
    roles = {"validation.jsonl": "validation", "quarantine.jsonl": "quarantine", "report.json": "report"}
    outputs = [{
        "name": f.name, "uri": where[f.name].uri, "role": roles.get(f.name, "train"), "bytes": f.bytes,
        "examples": f.examples, "sha256": f.sha256, "crc32c": f.crc32c, "reused": where[f.name].reused,
    } for f in files]
    train_uris = [o["uri"] for o in outputs if o["role"] == "train"]
    validation_uri = next((o["uri"] for o in outputs if o["role"] == "validation"), None)
    tallies = [t.to_dict() for t in written.tallies]
    tuning = tuning_call(execution.profile.target, train_uris, validation_uri, destination.location,
                         Path(report.inputs[0].path).name if report.inputs else "train")
    if not sum(t["train"] for t in tallies):
        tuning["notes"].insert(0, "no training example was kept: there is nothing to tune on (quarantine.jsonl "
                                  "says why each line was removed)")
    split = report.split
    return {
        "manifest_version": MANIFEST_VERSION,
        "tool": {"name": "sftgate", "version": __version__},
        "created_at": report.started_at,
        "complete": True,
        "location": destination.location,
        "seed": seed,
        "gate": {"passed": report.gate.passed, "reason": report.gate.reason, "exit_code": report.exit_code},
        "inputs": [{"path": s.path, "split": s.split, "sha256": s.sha256, "bytes": s.bytes,
                    "compression": s.compression, "lines": s.lines, "records": s.records,
                    "blank_lines": s.blank_lines, "written": s.split in ("train", "validation")} for s in report.inputs],
        "outputs": outputs,
        "counts": {
            "lines_read": sum(t["lines"] for t in tallies),
            "train_examples": sum(t["train"] for t in tallies),
            "validation_examples": sum(t["validation"] for t in tallies),
            "quarantined": sum(t["quarantine"] for t in tallies),
            "blank_lines": sum(t["blank"] for t in tallies),
            "fixed": written.fixed,
            "quarantined_by_rule": dict(sorted(written.quarantined_by_rule.items())),
            "quarantined_by_status": dict(sorted(written.quarantined_by_status.items())),
            "fixed_by_rule": dict(sorted(written.fixed_by_rule.items())),
            "validation_over_cap": written.validation_over_cap,
        },
        "accounting": tallies,
        "split": None if split is None else {k: v for k, v in split.items() if k != "validation_lines"},
        "profile": execution.profile.to_dict(),
        "tuning": tuning,
    }


def tuning_call(base_model: str, train_uris: list[str], validation_uri: str | None, location: str,
                train_name: str) -> dict[str, Any]:
    """How to start the tuning job on what was written: the URIs, and the same call as
    google-genai Python, REST (curl with a gcloud token) and the upload command when the
    output is local."""
    remote = gcs.is_gcs(location)
    display = "sftgate-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in
                                   train_name.split(".")[0])[:100]
    if remote:
        train_uri, val_uri, upload = train_uris[0], validation_uri, None
    else:
        bucket = "gs://YOUR_BUCKET/sftgate"
        train_uri = f"{bucket}/{Path(train_uris[0]).name}"
        val_uri = None if validation_uri is None else f"{bucket}/{Path(validation_uri).name}"
        files = " ".join(shlex.quote(u) for u in [*train_uris, *([validation_uri] if validation_uri else [])])
        upload = f"gcloud storage cp {files} {bucket}/"
    spec: dict[str, Any] = {"trainingDatasetUri": train_uri}
    if val_uri:
        spec["validationDatasetUri"] = val_uri
    body = {"baseModel": base_model, "supervisedTuningSpec": spec, "tunedModelDisplayName": display}
    rest = ("curl -X POST -H \"Authorization: Bearer $(gcloud auth print-access-token)\" "
            "-H \"Content-Type: application/json\" "
            "\"https://us-central1-aiplatform.googleapis.com/v1/projects/PROJECT_ID/locations/us-central1/tuningJobs\" "
            f"-d '{orjson.dumps(body).decode()}'")
    def q(text: str) -> str:  # a Python string literal, double-quoted
        return orjson.dumps(text).decode()

    validation_line = (f"        validation_dataset=types.TuningValidationDataset(gcs_uri={q(val_uri)}),\n"
                       if val_uri else "")
    python = (
        "from google import genai\n"
        "from google.genai import types\n\n"
        "client = genai.Client(vertexai=True, project=\"PROJECT_ID\", location=\"us-central1\")\n"
        "job = client.tunings.tune(\n"
        f"    base_model={q(base_model)},\n"
        f"    training_dataset=types.TuningDataset(gcs_uri={q(train_uri)}),\n"
        "    config=types.CreateTuningJobConfig(\n"
        f"        tuned_model_display_name={q(display)},\n"
        f"{validation_line}"
        "    ),\n"
        ")\n"
    )
    notes = []
    if not remote:
        notes.append("the output is local: upload it (the `upload` command) and replace gs://YOUR_BUCKET")
    if len(train_uris) > 1:
        notes.append(f"the training data is in {len(train_uris)} shards and a tuning job takes one training "
                     "file: each shard is valid on its own; the call names the first")
    return {"base_model": base_model, "training_dataset_uri": train_uri, "validation_dataset_uri": val_uri,
            "training_shards": len(train_uris), "upload": upload, "rest": rest, "python": python, "notes": notes}
