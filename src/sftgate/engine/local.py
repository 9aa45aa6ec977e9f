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
from collections import deque
from itertools import chain
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from concurrent.futures import Future, ProcessPoolExecutor, wait

import numpy as np

from sftgate.analysis.arrays import unique
from sftgate.config import Profile
from sftgate.analysis.blocks import BlockFn, map_blocks, run_blocks
from sftgate.analysis.lsh import BandFn, Rows, map_bands
from sftgate.engine.features import FeatureTable, SliceSet, SpillSlice, TableSet
from sftgate.engine.passes import GEMINI, Checker, ChunkResult, Reading
from sftgate.engine.progress import Progress
from sftgate.formats.prompts import prompt_lines
from sftgate.io.reader import Line, LineReader, plan_ranges
from sftgate.io.sources import Source
from sftgate.rules.dedup import ClusterRows, TokenSource, Verification, cluster_rows, verify_edges

VERIFY_BLOCK = 4096  # candidate edges verified per task
MAP_MIN_RECORDS = 20_000  # fewer records are mapped over in this process
CHUNK_BYTES = 16 << 20  # a plain file is cut into ranges of about this size
RUNNING_POOL_BYTES = 2 << 20  # a plain file larger than this goes to workers already started
BATCH_LINES_BYTES = 8 << 20  # compressed input is handed out in batches of about this size


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# --- worker side -----------------------------------------------------------------------------

_PROFILE: Profile | None = None
_CHECKERS: dict[tuple[str, bool, float, str | None, Reading, bool], Checker] = {}


def _init_worker(profile: Profile) -> None:
    global _PROFILE
    _PROFILE = profile
    _CHECKERS.clear()


def _checker(split: str, features: bool, token_sample: float | None, emit_dir: str | None, reading: Reading,
             skew: bool) -> Checker:
    key = (split, features, token_sample, emit_dir, reading, skew)
    if key not in _CHECKERS:
        assert _PROFILE is not None, "worker used before _init_worker"
        _CHECKERS[key] = Checker(_PROFILE, split, features, token_sample, emit_dir, reading, skew)
    return _CHECKERS[key]


def _check_range(source: Source, split: str, features: bool, token_sample: float | None, emit_dir: str | None,
                 reading: Reading, skew: bool, start: int, end: int) -> ChunkResult:
    return _check_range_with(_checker(split, features, token_sample, emit_dir, reading, skew), source, start, end)


def _check_range_with(checker: Checker, source: Source, start: int, end: int) -> ChunkResult:
    with source.open() as stream:
        reader = LineReader(stream, max_line_bytes=checker.max_line, start=start, end=end)
        return checker.check_lines(reader, source=source.name, starts_file=start == 0)


def _with_profile(fn: Callable[[Profile, Any], Any], item: Any) -> Any:
    assert _PROFILE is not None, "worker used before _init_worker"
    return fn(_PROFILE, item)


def _verify_block(edges: np.ndarray, tokens: SpillSlice | SliceSet, verification: Verification) -> np.ndarray:
    return verify_edges(edges, tokens, verification)


def _check_batch(source_name: str, split: str, features: bool, token_sample: float | None, emit_dir: str | None,
                 reading: Reading, skew: bool, lines: list, starts_file: bool) -> ChunkResult:
    checker = _checker(split, features, token_sample, emit_dir, reading, skew)
    return checker.check_lines(lines, source=source_name, starts_file=starts_file)


# --- parent side -----------------------------------------------------------------------------


class LocalExecutor:
    """Runs the check pass over files with up to `workers` processes."""

    shares_disk = True  # the workers see the files this process writes (spill files, staged outputs)
    sees_local_files = True  # the workers can open this machine's files by path (inputs, spills)
    start_phase: str | None = None  # a pass of its own for starting the workers (`-v`), when it takes long

    def __init__(self, profile: Profile, workers: int, progress: Progress | None = None) -> None:
        self.profile = profile
        self.workers = workers
        self.progress = progress or Progress()
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

    @property
    def running(self) -> bool:
        """Whether the worker processes have been started."""
        return self._pool is not None

    def uses_pool(self, source: Source) -> bool:
        """Whether `source` is large enough to be worth checking in worker processes: once
        they run (a large training file started them), a few chunks' worth is enough."""
        if self.workers < 2:
            return False
        if self._pool is not None and source.seekable:
            return source.size > RUNNING_POOL_BYTES
        return source.size > (CHUNK_BYTES if source.seekable else BATCH_LINES_BYTES // 4)

    def reads_ranges(self, source: Source) -> bool:
        """Whether the workers read `source` themselves, by byte ranges (else this process
        streams its lines to them)."""
        return source.seekable

    def check_source(self, source: Source, split: str, *, features: bool = True, prompts: bool = False,
                     token_sample: float | None = 1.0, emit_dir: str | None = None,
                     reading: Reading = GEMINI, skew: bool = False,
                     started: Iterator[ChunkResult] | None = None) -> tuple[ChunkResult, str | None]:
        """(merged result, why the stream broke or None). `features`: collect dataset-rule
        features; `prompts`: the file is a plain-text prompt list (read in this process);
        `token_sample`: the share of examples the token statistics count; `emit_dir`: keep
        what `prepare` needs to write the lines again (see `passes.EmitChunk`); `reading`: how
        the records are read (converted from another format); `skew`: collect the skew columns;
        `started`: what `start_check` with the same arguments returned."""
        result = ChunkResult()
        cap = self.profile.max_findings_per_rule
        task = (split, features, token_sample, emit_dir, reading, skew)
        if started is not None or (self.uses_pool(source) and self.reads_ranges(source) and not prompts):
            for chunk in started if started is not None else self._ranges(source, task):
                self._merge(result, chunk, cap)
            return result, None
        if self.uses_pool(source) and not prompts:
            broken = self._batches(source, task, result, cap)
            return result, broken
        checker = Checker(self.profile, split, features, token_sample, emit_dir, reading, skew)
        if source.seekable and not prompts and source.size > CHUNK_BYTES:
            # In this process, still by ranges: the progress bar moves, and results are the same.
            with open(source.path, "rb") as stream:
                ranges = plan_ranges(stream, source.size, CHUNK_BYTES)
            for start, end in ranges:
                self._merge(result, _check_range_with(checker, source, start, end), cap)
            return result, None
        with source.open() as stream:
            reader = LineReader(stream, max_line_bytes=checker.max_line)
            lines = prompt_lines(reader) if prompts else reader
            self._merge(result, checker.check_lines(lines, source=source.name, starts_file=True), cap)
        return result, reader.broken

    def start_check(self, source: Source, split: str, *, features: bool = True, prompts: bool = False,
                    token_sample: float | None = 1.0, emit_dir: str | None = None, reading: Reading = GEMINI,
                    skew: bool = False) -> Iterator[ChunkResult] | None:
        """The chunks of `check_source`'s pass, handed to the workers now (its results, for
        `check_source(..., started=)`), when the workers read the input by ranges; else None."""
        if prompts or not (self.uses_pool(source) and self.reads_ranges(source)):
            return None
        return self._ranges(source, (split, features, token_sample, emit_dir, reading, skew))

    def _merge(self, result: ChunkResult, chunk: ChunkResult, cap: int) -> None:
        result.merge(chunk, cap)
        self.progress.advance(chunk.content_bytes, chunk.lines)

    def verify_edges(self, edges: np.ndarray, tokens: TokenSource, verification: Verification) -> np.ndarray:
        """`rules.dedup.verify_edges`, with blocks of edges spread over the worker processes.

        Edges are in order (sorted by first record), so a block's records are mostly one
        bucket's: each task carries only the offsets of the records its edges name.
        """
        return self.start_verify(edges, tokens, verification)()

    def start_verify(self, edges: np.ndarray, tokens: TokenSource,
                     verification: Verification) -> Callable[[], np.ndarray]:
        """`verify_edges`, started: the blocks go to the workers now, and the function returned
        waits for their scores (so the caller can do its own work meanwhile). In this process,
        the work is done when the function is called."""
        if self.workers < 2 or edges.shape[0] <= VERIFY_BLOCK or not isinstance(tokens, FeatureTable | TableSet):
            return lambda: verify_edges(edges, tokens, verification)
        pool = self.pool()
        # Each block's slice is made as it is submitted: the workers start on the first blocks
        # while this process slices the next ones.
        parts = [pool.submit(_verify_block, block, tokens.slice(unique(block)), verification)
                 for block in (edges[i:i + VERIFY_BLOCK] for i in range(0, edges.shape[0], VERIFY_BLOCK))]
        return lambda: np.concatenate([part.result() for part in parts])

    def cluster_rows(self, edges: np.ndarray, exact: np.ndarray, score: np.ndarray, keys: np.ndarray, policy: str,
                     ranked: bool) -> ClusterRows:
        """`rules.dedup.cluster_rows`, here: the edges are at most ~2 per record (verification
        stops at a spanning forest, exact copies join their first), so they fit where the
        feature columns do."""
        return cluster_rows(edges, exact, score, keys, policy, ranked)

    def map_bands(self, fn: BandFn, matrices: tuple[np.ndarray, ...], args: tuple, rows: Rows = ()
                  ) -> Iterator[np.ndarray]:
        """`analysis.lsh.map_bands`, in this process: handing groups of bands to the worker
        processes gains nothing on one machine (copying the keys to them costs what the sorts
        save: 1.34 s against 1.29 s for 647k records, 32 bands, 2 workers), and during leakage's
        lookup they are busy with its n-gram scan."""
        return map_bands(fn, matrices, args, rows)

    def map(self, fn: Callable[[Profile, Any], Any], items: Iterable[Any],
            on_stop: Callable[[], None] | None = None) -> Iterator[Any]:
        """`fn(profile, item)` for each item over the worker processes (which hold the profile),
        results in order, a few tasks ahead of the caller; here with one worker. `fn`, the
        items and the results must pickle. If it stops early (a task's error, or the caller
        closes it), `on_stop()` is called, the tasks not started are cancelled and those that
        have are waited for: tasks that wait for each other must stop on `on_stop`'s signal."""
        if self.workers < 2:
            for item in items:
                yield fn(self.profile, item)
            return
        pool = self.pool()
        pending: deque[Future[Any]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(_with_profile, fn, item))
                if len(pending) > 2 * self.workers:  # results wait in memory: a few at most
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            if pending:  # stopped early: no task is still running when the caller cleans up
                if on_stop is not None:
                    on_stop()
                for future in pending:
                    future.cancel()
                wait(pending)

    def map_blocks(self, table: Any, fn: BlockFn, args: tuple) -> Iterator[Any]:
        """`features.map_blocks` over the worker processes: the table's records cut into
        runs, each worker reading its runs from the spill file. `fn` and `args` must pickle;
        results come in record order, so they do not depend on the number of workers. The
        tasks are handed out when this is called, not when the results are first asked for:
        the caller can start the work early and do its own meanwhile."""
        if self.workers < 2 or not isinstance(table, FeatureTable) or len(table) < MAP_MIN_RECORDS:
            return map_blocks(table, fn, args)
        ranges = table.ranges(self.workers * 4)
        return chain.from_iterable(self.pool().map(run_blocks, ranges, [fn] * len(ranges), [args] * len(ranges)))

    def _ranges(self, source: Source, task: tuple) -> Iterator[ChunkResult]:
        """The pass over `source` by byte ranges; the tasks are handed out when this is called."""
        chunk = max(1 << 20, min(CHUNK_BYTES, source.size // (self.workers * 4) + 1))
        with open(source.path, "rb") as stream:
            ranges = plan_ranges(stream, source.size, chunk)
        n = len(ranges)
        return self.pool().map(_check_range, [source] * n, *([item] * n for item in task),
                               [a for a, _ in ranges], [b for _, b in ranges])

    def _batches(self, source: Source, task: tuple, result: ChunkResult, cap: int) -> str | None:
        pool = self.pool()
        in_flight: deque[Future[ChunkResult]] = deque()
        max_line = self.profile.format["max_line_bytes"]
        with source.open() as stream:
            reader = LineReader(stream, max_line_bytes=max_line)
            for batch, first in line_batches(reader, BATCH_LINES_BYTES):
                in_flight.append(pool.submit(_check_batch, source.name, *task, batch, first))
                while len(in_flight) > self.workers * 2:  # bound memory: at most 2 batches per worker
                    self._merge(result, in_flight.popleft().result(), cap)
            while in_flight:
                self._merge(result, in_flight.popleft().result(), cap)
        return reader.broken


def line_batches(reader: Iterable[Line], limit: int) -> Iterator[tuple[list[Line], bool]]:
    """(lines, whether they start the input) in batches of about `limit` bytes: what a stream's
    lines go out to the workers in; one empty batch for an empty input."""
    batch: list[Line] = []
    size = 0
    first = True
    for line in reader:
        batch.append(line)
        size += line[2]
        if size >= limit:
            yield batch, first
            batch, size, first = [], 0, False
    if batch or first:
        yield batch, first
