"""`engine.entries`: quarantine entries written in bulk are the bytes written one by one."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.engine import entries, prepare
from sftgate.engine.prepare import _STATUS_JSON, _STATUS_VALUE, _entry, _Reader, _Span
from sftgate.io.sources import open_source
from sftgate.model import FindingColumns, Severity

MESSAGES = {
    "DUP001": "exact duplicate of line {line}",
    "DUP002": "near-duplicate of line {line} (similarity {score:.2f})",
    "ODD": 'quote " back \\ tab \t {{brace}} é line {line} {score:.3f} {score!r:>12} {score:e}',
}

# A record's bytes: JSON's specials, every control character, multi-byte UTF-8 of each length,
# the separators orjson leaves alone (U+2028), and bytes that are not UTF-8.
_PIECES = st.sampled_from([
    b'{"contents":[{"role":"user","parts":[{"text":"', b'"}]}]}', b"plain text ", b'"', b"\\", b"\\n",
    *(bytes([c]) for c in range(32)), b"\x7f", "é".encode(), "€".encode(), "😀".encode(), "\u2028".encode(),
    b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xc3", b"\xf0\x9f\x98",
])
_RECORDS = st.lists(_PIECES, max_size=40).map(b"".join)
_SOURCES = st.sampled_from(["t.jsonl", 'dir "q"\\é.jsonl', "gs://b/50%_a%20b.jsonl"])
_SCORES = st.floats(allow_nan=True, allow_infinity=True) | st.floats(0, 1) | st.sampled_from([0.995, 0.12345, -0.0])


def _one_by_one(source: str, related_source: str, code: str, line: int, offset: int, status: int, related: int,
                score: float, raw: bytes) -> bytes:
    """What the writer's loop writes for the entry (`prepare._entry`, the reasons from
    `FindingColumns.reason_arrays`)."""
    found = FindingColumns(code, Severity.WARNING, related_source, MESSAGES[code], np.array([line]),
                           np.array([related]), np.array([score]))
    return _entry(source, "train", line, _STATUS_VALUE[status], offset, len(raw), [code],
                  found.reason_arrays("warning")[0], raw, 1 << 20)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(_RECORDS, st.sampled_from(sorted(MESSAGES)), st.integers(0, 2 ** 40),
                               st.integers(0, len(_STATUS_VALUE) - 1), _SCORES), max_size=25),
       source=_SOURCES, related_source=_SOURCES)
def test_entries_are_the_bytes_the_writer_writes_one_by_one(rows, source, related_source):
    codes = sorted(MESSAGES)
    templates = [entries.Template.of(source, "train", code, "warning", MESSAGES[code], related_source)
                 for code in codes]
    data = b"".join(raw + b"\n" for raw, *_ in rows)
    at = np.cumsum([0] + [len(raw) + 1 for raw, *_ in rows])[:-1].astype(np.int64)
    n = len(rows)
    lines = np.arange(n, dtype=np.int64) * 3 + 1
    offsets = at + 10_000_000_000
    lengths = np.array([len(raw) for raw, *_ in rows], dtype=np.int64)
    related = np.array([r[2] for r in rows], dtype=np.int64)
    which = np.array([codes.index(r[1]) for r in rows], dtype=np.int64)
    status = np.array([r[3] for r in rows], dtype=np.uint8)
    scores = np.array([r[4] for r in rows], dtype=np.float64)
    out, ends = entries.render(templates, which, np.stack([lines, offsets, lengths, related]), _STATUS_JSON,
                               status, scores, np.frombuffer(data, dtype=np.uint8), at)
    start = 0
    for e, (raw, code, rel, st_, score) in enumerate(rows):
        got = bytes(out[start:ends[e]])
        start = ends[e]
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            assert got == b""  # left to the writer's loop, which writes its bytes in base64
            continue
        expected = _one_by_one(source, related_source, code, int(lines[e]), int(offsets[e]), st_, rel, score, raw)
        assert got == expected
        orjson.loads(got)


def test_a_buffer_used_before_is_written_over_when_large_enough():
    template = entries.Template.of("t.jsonl", "train", "DUP001", "warning", MESSAGES["DUP001"], "t.jsonl")
    data = np.frombuffer(b'{"a":"x"}\n', dtype=np.uint8)
    ints = np.array([[1], [0], [9], [4]], dtype=np.int64)

    def render(out=None):
        return entries.render([template], np.zeros(1, dtype=np.int64), ints, _STATUS_JSON, np.zeros(1, np.uint8),
                              np.ones(1), data, np.zeros(1, dtype=np.int64), out)

    first, ends = render()
    again, _ = render(first)
    assert again is first
    smaller = np.zeros(10, dtype=np.uint8)
    assert render(smaller)[0] is not smaller
    assert orjson.loads(bytes(first[:ends[0]]))["record"] == '{"a":"x"}'


@pytest.mark.parametrize("message", ["line {line:,}", "{other} of {line}", "{line.real}", "{score:{width}}",
                                     "{0}"])
def test_a_message_with_other_fields_has_no_template(message):
    assert entries.Template.of("t.jsonl", "train", "DUP001", "warning", message, "t.jsonl") is None


def test_readers_say_where_each_record_is_in_the_bytes_they_hold(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(b"%03d-line\n" % i for i in range(100)))  # 8 bytes and a newline each
    lengths = np.full(4, 8, dtype=np.int64)
    reader = _Reader(open_source(str(path)))
    try:
        reader.window(0, 500)
        data, at = reader.spans(np.array([0, 45, 495, 891], dtype=np.int64), lengths)
    finally:
        reader.close()
    assert at.tolist() == [0, 45, -1, -1]  # past the window: read one by one
    assert bytes(data[at[1]:at[1] + 8]) == b"005-line"
    whole = path.read_bytes()
    span = _Span([(0, whole[:27]), (45, whole[45:63]), (891, whole[891:])])
    data, at = span.spans(np.array([0, 45, 891, 895], dtype=np.int64), lengths)
    assert at.tolist() == [0, 27, 45, -1]  # the last runs past what was sent
    assert [bytes(data[a:a + 8]) for a in at[:3].tolist()] == [b"000-line", b"005-line", b"099-line"]
    assert _Span([]).spans(np.array([0, 9]), np.array([8, 8]))[1].tolist() == [-1, -1]


def test_the_bulk_merges_the_writers_entries_in_chunk_order():
    bulk = prepare._Bulk(done=np.array([True, False, True, True, False, True]), positions=np.array([0, 2, 3, 5]),
                         lines=np.array([1, 3, 4, 6]), data=np.frombuffer(b"AACCCDF", dtype=np.uint8),
                         ends=[2, 5, 6, 7], codes=prepare.Counter())
    pieces = bulk.merged([b"b", b"e", b"e2"], [1, 4, 4])
    assert b"".join(pieces) == b"AAbCCCDee2F"
    assert len(pieces) == 6  # runs of the bulk's entries are one piece each
    assert prepare._Bulk.empty(3).merged([b"x"], [0]) == [b"x"]
