"""The local executor: one file checked in chunks over worker processes, merged in input order.

Plain files are cut into byte ranges that start at line starts; each worker opens the file and
reads its own range, so the parent moves no data. Compressed streams cannot be cut, so the
parent decompresses and hands out batches of lines. Small inputs run in the calling process:
starting workers would cost more than it saves.

Results do not depend on the number of workers or the chunk size: each chunk numbers its lines
from 1, keeps its first N findings per rule, and the merge rebases and re-caps in input order.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from array import array
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from sftgate.config import Profile
from sftgate.engine.passes import ChunkResult, Checker
from sftgate.io.reader import LineReader, plan_ranges
from sftgate.io.sources import Source
from sftgate.model import Finding

CHUNK_BYTES = 16 << 20  # a plain file is cut into ranges of about this size
BATCH_LINES_BYTES = 8 << 20  # compressed input is handed out in batches of about this size


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class FileResult:
    """One file's chunks merged: line numbers are the file's own."""

    lines: int = 0
    content_bytes: int = 0
    status: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # findings per code, uncapped
    listed: Counter[str] = field(default_factory=Counter)  # findings per code kept in `findings`
    failing_lines: array = field(default_factory=lambda: array("q"))
    crlf_lines: int = 0
    first_crlf_line: int | None = None
    last_end: int = 0
    media_records: int = 0
    record_lines: array = field(default_factory=lambda: array("q"))
    media_resolution: bytearray = field(default_factory=bytearray)
    has_system: bytearray = field(default_factory=bytearray)

    def add(self, chunk: ChunkResult, cap: int) -> None:
        base = self.lines
        for finding in chunk.findings:
            if self.listed[finding.code] < cap:
                self.listed[finding.code] += 1
                self.findings.append(replace(finding, line=finding.line + base) if finding.line else finding)
        self.counts.update(chunk.counts)
        self.status.update(chunk.status)
        _extend_rebased(self.failing_lines, chunk.failing_lines, base)
        _extend_rebased(self.record_lines, chunk.record_lines, base)
        self.media_resolution.extend(chunk.media_resolution)
        self.has_system.extend(chunk.has_system)
        self.media_records += chunk.media_records
        self.crlf_lines += chunk.crlf_lines
        if self.first_crlf_line is None and chunk.first_crlf_line is not None:
            self.first_crlf_line = chunk.first_crlf_line + base
        self.content_bytes += chunk.content_bytes
        if chunk.lines:
            self.last_end = chunk.last_end
        self.lines += chunk.lines


def _extend_rebased(into: array, lines: array, base: int) -> None:
    """Append a chunk's local line numbers, shifted by the lines before it (vectorised)."""
    if lines:
        into.frombytes((np.frombuffer(lines, dtype=np.int64) + base).tobytes())


# --- worker side -----------------------------------------------------------------------------

_PROFILE: Profile | None = None
_CHECKERS: dict[str, Checker] = {}


def _init_worker(profile: Profile) -> None:
    global _PROFILE
    _PROFILE = profile
    _CHECKERS.clear()


def _checker(split: str) -> Checker:
    if split not in _CHECKERS:
        assert _PROFILE is not None, "worker used before _init_worker"
        _CHECKERS[split] = Checker(_PROFILE, split)
    return _CHECKERS[split]


def _check_range(source: Source, split: str, start: int, end: int) -> ChunkResult:
    checker = _checker(split)
    with source.open() as stream:
        reader = LineReader(stream, max_line_bytes=checker.max_line, start=start, end=end)
        return checker.check_lines(reader, source=source.name, starts_file=start == 0)


def _check_batch(source_name: str, split: str, lines: list, starts_file: bool) -> ChunkResult:
    return _checker(split).check_lines(lines, source=source_name, starts_file=starts_file)


# --- parent side -----------------------------------------------------------------------------


class LocalExecutor:
    """Runs the check pass over files with up to `workers` processes."""

    def __init__(self, profile: Profile, workers: int) -> None:
        self.profile = profile
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # fork is fast and safe when this process runs no other thread (the CLI); otherwise
            # (a notebook, polars' thread pool) forkserver, so no thread's locks are forked.
            alone = threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if alone else "forkserver")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context,
                                             initializer=_init_worker, initargs=(self.profile,))
            self._pool.submit(int).result()  # start the workers now, before the caller's threads
        return self._pool

    def uses_pool(self, source: Source) -> bool:
        """Whether `source` is large enough to be worth checking in worker processes."""
        if self.workers < 2:
            return False
        return source.size > (CHUNK_BYTES if source.seekable else BATCH_LINES_BYTES // 4)

    def check_source(self, source: Source, split: str) -> tuple[FileResult, str | None]:
        """(merged result, why the stream broke or None)."""
        result = FileResult()
        cap = self.profile.max_findings_per_rule
        if self.uses_pool(source) and source.seekable:
            for chunk in self._ranges(source, split):
                result.add(chunk, cap)
            return result, None
        if self.uses_pool(source):
            broken = self._batches(source, split, result, cap)
            return result, broken
        checker = Checker(self.profile, split)
        with source.open() as stream:
            reader = LineReader(stream, max_line_bytes=checker.max_line)
            result.add(checker.check_lines(reader, source=source.name, starts_file=True), cap)
        return result, reader.broken

    def _ranges(self, source: Source, split: str) -> Iterator[ChunkResult]:
        chunk = max(1 << 20, min(CHUNK_BYTES, source.size // (self.workers * 4) + 1))
        with open(source.path, "rb") as stream:
            ranges = plan_ranges(stream, source.size, chunk)
        n = len(ranges)
        yield from self.pool().map(_check_range, [source] * n, [split] * n,
                                   [a for a, _ in ranges], [b for _, b in ranges])

    def _batches(self, source: Source, split: str, result: FileResult, cap: int) -> str | None:
        pool = self.pool()
        in_flight: deque[Future[ChunkResult]] = deque()
        batch: list = []
        size = 0
        first = True
        max_line = self.profile.format["max_line_bytes"]
        with source.open() as stream:
            reader = LineReader(stream, max_line_bytes=max_line)
            for line in reader:
                batch.append(line)
                size += line[2]
                if size >= BATCH_LINES_BYTES:
                    in_flight.append(pool.submit(_check_batch, source.name, split, batch, first))
                    batch, size, first = [], 0, False
                    while len(in_flight) > self.workers * 2:  # bound memory: at most 2 batches per worker
                        result.add(in_flight.popleft().result(), cap)
            if batch or first:
                in_flight.append(pool.submit(_check_batch, source.name, split, batch, first))
            while in_flight:
                result.add(in_flight.popleft().result(), cap)
        return reader.broken
