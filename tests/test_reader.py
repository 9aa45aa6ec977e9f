"""`LineReader` and `plan_ranges`: exact offsets and lengths, bounded memory, ranges that tile a file."""

from __future__ import annotations

import io
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.io.reader import BROKEN, EOF, NEWLINE, LineReader, plan_ranges


def expected_lines(data: bytes, max_line: int, base: int = 0) -> list[tuple[int, bytes | None, int, int]]:
    """The reader's contract, computed the obvious way from the whole input."""
    out = []
    offset = base
    pieces = data.split(b"\n")
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        if last and not piece:
            break
        out.append((offset, piece if len(piece) <= max_line else None, len(piece), EOF if last else NEWLINE))
        offset += len(piece) + 1
    return out


def read(data: bytes, *, max_line: int = 1 << 20, block: int = 7, start: int = 0, end: int | None = None):
    reader = LineReader(io.BytesIO(data), max_line_bytes=max_line, start=start, end=end, block=block)
    return list(reader), reader


def test_lines_spanning_tiny_blocks():
    data = b'{"a": 1}\n\nhello world, this spans blocks\r\nx\n{"b": [1, 2]}'
    lines, reader = read(data, block=7)
    assert lines == [
        (0, b'{"a": 1}', 8, NEWLINE),
        (9, b"", 0, NEWLINE),
        (10, b"hello world, this spans blocks\r", 31, NEWLINE),
        (42, b"x", 1, NEWLINE),
        (44, b'{"b": [1, 2]}', 13, EOF),
    ]
    assert reader.broken is None


@pytest.mark.parametrize("block", [1, 2, 3, 7, 8, 9, 64, 1 << 22])
def test_block_size_does_not_change_the_lines(block):
    data = b"alpha\nbeta\n\n\ngamma delta epsilon\nz\n"
    assert read(data, block=block)[0] == expected_lines(data, 1 << 20)


def test_empty_input_has_no_lines():
    assert read(b"")[0] == []


def test_single_newline_is_one_blank_line():
    assert read(b"\n")[0] == [(0, b"", 0, NEWLINE)]


def test_newline_exactly_at_block_boundary():
    assert read(b"abcdef\nghijkl\n", block=7)[0] == [(0, b"abcdef", 6, NEWLINE), (7, b"ghijkl", 6, NEWLINE)]


@pytest.mark.parametrize("block", [1, 4, 7, 100])
def test_limit_is_inclusive(block):
    data = b"12345\n123456\n1234567\n"
    assert read(data, max_line=6, block=block)[0] == [
        (0, b"12345", 5, NEWLINE), (6, b"123456", 6, NEWLINE), (13, None, 7, NEWLINE),
    ]


@pytest.mark.parametrize("block", [3, 7, 64])
def test_too_long_line_yields_none_with_its_length_and_the_next_lines_continue(block):
    long = b"x" * 100
    data = b"ok\n" + long + b"\nafter\n" + long
    assert read(data, max_line=10, block=block)[0] == [
        (0, b"ok", 2, NEWLINE), (3, None, 100, NEWLINE), (104, b"after", 5, NEWLINE), (110, None, 100, EOF),
    ]


def test_range_reads_only_its_lines_with_absolute_offsets():
    data = b"aa\nbbb\ncccc\nddddd\n"
    assert read(data, start=3, end=12)[0] == [(3, b"bbb", 3, NEWLINE), (7, b"cccc", 4, NEWLINE)]
    assert read(data, start=12, end=len(data))[0] == [(12, b"ddddd", 5, NEWLINE)]


class _Breaking(io.RawIOBase):
    """Yields `data`, then raises `exc` as a truncated gzip stream does."""

    def __init__(self, data: bytes, exc: BaseException) -> None:
        self._data, self._exc = data, exc

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if not self._data:
            raise self._exc
        piece, self._data = self._data[:n], self._data[n:]
        return piece


def test_stream_breaking_inside_a_line_marks_it_broken():
    reader = LineReader(_Breaking(b"one\ntwo\nthr", EOFError("cut")), max_line_bytes=100, block=4)
    assert list(reader) == [(0, b"one", 3, NEWLINE), (4, b"two", 3, NEWLINE), (8, b"thr", 3, BROKEN)]
    assert "truncated" in reader.broken


def test_stream_breaking_between_lines_invents_no_line():
    reader = LineReader(_Breaking(b"one\ntwo\n", OSError("disk gone")), max_line_bytes=100, block=4)
    assert list(reader) == [(0, b"one", 3, NEWLINE), (4, b"two", 3, NEWLINE)]
    assert "disk gone" in reader.broken


class _Generated(io.RawIOBase):
    """`size` bytes of one line (no newline until the end), produced on demand, never stored."""

    def __init__(self, size: int) -> None:
        self._left = size
        self._newline = True

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._left:
            n = min(n, self._left)
            self._left -= n
            return b"y" * n
        if self._newline:
            self._newline = False
            return b"\nshort\n"
        return b""


def test_huge_line_is_never_held():
    size = 20 << 20
    reader = LineReader(_Generated(size), max_line_bytes=1 << 20, block=64 << 10)
    tracemalloc.start()
    try:
        lines = list(reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == [(0, None, size, NEWLINE), (size + 1, b"short", 5, NEWLINE)]
    assert peak < 2 << 20, f"peak {peak:,} bytes while reading a {size:,}-byte line"


# --- property tests ------------------------------------------------------------------------------

content = st.binary(max_size=300).map(lambda b: b.replace(b"\x01", b"\n").replace(b"\x02", b"\n"))
lines_like = st.lists(st.sampled_from([b"", b"a", b"bc", b"{}", b"\r", b"0123456789abcdef", b"x" * 40]),
                      max_size=40).map(lambda ls: b"\n".join(ls))
inputs = st.one_of(content, lines_like, lines_like.map(lambda b: b + b"\n"))


@settings(max_examples=300, deadline=None)
@given(data=inputs, block=st.integers(1, 50), max_line=st.integers(0, 60))
def test_reader_matches_a_whole_file_split(data, block, max_line):
    assert read(data, max_line=max_line, block=block)[0] == expected_lines(data, max_line)


@settings(max_examples=300, deadline=None)
@given(data=inputs, chunk=st.integers(1, 80), block=st.integers(1, 50))
def test_plan_ranges_tile_the_file_at_line_starts(data, chunk, block):
    ranges = plan_ranges(io.BytesIO(data), len(data), chunk)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    for (_, end), (start, _) in zip(ranges, ranges[1:], strict=False):
        assert end == start
    for start, end in ranges:
        assert start < end or len(data) == 0
        assert start == 0 or data[start - 1 : start] == b"\n"
    whole = read(data, max_line=30, block=block)[0]
    pieced = []
    for start, end in ranges:
        pieced += read(data, max_line=30, block=block, start=start, end=end)[0]
    assert pieced == whole


def test_plan_ranges_small_file_is_one_range():
    assert plan_ranges(io.BytesIO(b"a\nb\n"), 4, 100) == [(0, 4)]


def test_plan_ranges_long_line_stretches_its_range():
    data = b"short\n" + b"L" * 50 + b"\nshort\nshort\n"
    ranges = plan_ranges(io.BytesIO(data), len(data), 10)
    assert len(ranges) > 1
    long_start, long_end = 6, 57  # the 50-byte line and its newline
    assert any(start <= long_start and long_end <= end for start, end in ranges)
