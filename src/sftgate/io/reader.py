"""Stream lines with their byte offsets, in bounded memory.

A line is yielded as `(offset, data, length, end)`:

- `offset`: byte offset of the line's first byte in the (decompressed) stream;
- `data`: the line's bytes without the `\\n`, or None when the line is longer than
  `max_line_bytes` (its bytes are skipped, never held: a 2 GB line costs one read block);
- `length`: the line's length in bytes without the `\\n`;
- `end`: how the line ended: `NEWLINE`, `EOF` (last line, no newline) or `BROKEN` (the stream
  failed, e.g. a truncated gzip member, in the middle of this line).

If the stream fails between lines, `LineReader.broken` holds the reason and no line is invented.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import BinaryIO

NEWLINE, EOF, BROKEN = 0, 1, 2
BLOCK = 1 << 22  # 4 MiB: large enough to amortise reads, small enough to bound memory

Line = tuple[int, bytes | None, int, int]


class LineReader:
    def __init__(
        self,
        stream: BinaryIO,
        *,
        max_line_bytes: int,
        start: int = 0,
        end: int | None = None,
        block: int = BLOCK,
    ) -> None:
        self._stream = stream
        self._max = max_line_bytes
        self._start = start
        self._end = end
        self._block = block
        self.broken: str | None = None  # why the stream stopped early, if it did

    def _blocks(self) -> Iterator[bytes]:
        remaining = None if self._end is None else self._end - self._start
        while remaining is None or remaining > 0:
            want = self._block if remaining is None else min(self._block, remaining)
            try:
                data = self._stream.read(want)
            except (EOFError, OSError, zlib.error) as exc:
                self.broken = _describe(exc)
                return
            if not data:
                return
            if remaining is not None:
                remaining -= len(data)
            yield data

    def __iter__(self) -> Iterator[Line]:
        if self._start and self._stream.seekable():
            self._stream.seek(self._start)
        offset = self._start  # where the current (possibly partial) line starts
        pending: list[bytes] = []  # pieces of a line that spans blocks
        pending_len = 0
        skipping = False  # the current line is over the limit: count its bytes, keep none
        limit = self._max
        for block in self._blocks():
            pieces = block.split(b"\n")
            tail = pieces.pop()  # the bytes after the block's last newline: an unfinished line
            for piece in pieces:
                n = pending_len + len(piece)
                if skipping or n > limit:
                    yield offset, None, n, NEWLINE
                elif pending:
                    pending.append(piece)
                    yield offset, b"".join(pending), n, NEWLINE
                else:
                    yield offset, piece, n, NEWLINE
                offset += n + 1
                pending.clear()
                pending_len = 0
                skipping = False
            if tail:
                pending_len += len(tail)
                if skipping or pending_len > limit:
                    skipping = True
                    pending.clear()
                else:
                    pending.append(tail)
        if pending_len:
            end = BROKEN if self.broken else EOF
            yield offset, None if skipping else b"".join(pending), pending_len, end


def _describe(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "compressed stream ended before its end marker (truncated file)"
    text = str(exc) or type(exc).__name__
    return f"stream could not be read: {text}"


def plan_ranges(stream: BinaryIO, size: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """Split a seekable file into byte ranges that each start at a line start.

    Each cut is moved forward to just after the next newline, so a range holds whole lines. A
    line longer than a chunk simply makes its range longer.
    """
    if size <= chunk_bytes:
        return [(0, size)]
    cuts = [0]
    target = chunk_bytes
    while target < size:
        cut = _next_line_start(stream, target, size)
        if cut >= size:
            break
        if cut > cuts[-1]:
            cuts.append(cut)
        target = max(cut, target) + chunk_bytes
    cuts.append(size)
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def _next_line_start(stream: BinaryIO, pos: int, size: int) -> int:
    """The offset just after the first newline at or after `pos - 1` (so `pos` itself counts)."""
    at = pos - 1
    stream.seek(at)
    while at < size:
        block = stream.read(1 << 16)
        if not block:
            break
        i = block.find(b"\n")
        if i >= 0:
            return at + i + 1
        at += len(block)
    return size
