"""Quarantine entries of many records at once, by one compiled loop (numba).

A file of duplicates quarantines most of its records with one dataset finding each (DUP001,
DUP002): their entries are one JSON object but for a few numbers and the record's bytes as a
JSON string. Written one by one in Python (`prepare._entry`), an entry costs ~6 µs, most of it
the record's UTF-8 decoding and escaping; here a chunk's entries are one loop over their
records' bytes, ~1 ns a byte.

`Template.of` turns a rule's finding (code, severity, message template) into a program of
pieces: literal bytes, integers (the line, its offset and length, the related line), strings
picked from a table (the status, the score as the message formats it, the similarity) and the
record, escaped as orjson escapes a string (`"`, `\\`, control characters; nothing else) and
checked to be UTF-8 as it is copied. `render` runs each entry through its template's program.
The bytes are those `prepare._entry` writes for the same entry; a test compares them.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Sequence
from dataclasses import dataclass

import numba as nb
import numpy as np
import orjson

LITERAL, INTEGER, PICK, RECORD = range(4)
LINE, OFFSET, LENGTH, RELATED = range(4)  # the integer columns
STATUS, SIMILARITY = "status", "similarity"  # picks every template has; a score's are ("score", spec, conversion)


@dataclass(frozen=True)
class Template:
    """One kind of entry as a program: (kind, argument) pairs, the arguments of LITERAL
    indexes into `literals`, of INTEGER a column (LINE ... RELATED), of PICK a pick's key."""

    ops: tuple[tuple[int, object], ...]
    literals: tuple[bytes, ...]

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def of(source: str, split: str, code: str, severity: str, message: str, related_source: str
           ) -> Template | None:
        """The entry of a record quarantined by one finding of `code` whose message is
        `message`'s template formatted with `line` (the related line) and `score` (see
        `model.FindingColumns`); None when the template has other fields."""
        dumps = orjson.dumps
        ops: list[tuple[int, object]] = []
        literals: list[bytes] = []

        def literal(data: bytes) -> None:
            if data:
                ops.append((LITERAL, len(literals)))
                literals.append(data)

        literal(b'{"source":%b,"split":%b,"line":' % (dumps(source), dumps(split)))
        ops.append((INTEGER, LINE))
        literal(b',"offset":')
        ops.append((INTEGER, OFFSET))
        literal(b',"length":')
        ops.append((INTEGER, LENGTH))
        literal(b',"status":')
        ops.append((PICK, STATUS))
        literal(b',"codes":%b,"reasons":[{"code":%b,"severity":%b,"message":"' % (
            dumps([code]), dumps(code), dumps(severity)))
        # The template is escaped before it is formatted, as `FindingColumns.reason_arrays` does:
        # what the fields put in are numbers, which a JSON string takes as they are.
        for text, name, spec, conversion in string.Formatter().parse(dumps(message)[1:-1].decode()):
            literal(text.encode())
            if name is None:
                continue
            if name == "line" and not spec and conversion is None:
                ops.append((INTEGER, RELATED))
            elif name == "score" and "{" not in (spec or ""):
                ops.append((PICK, ("score", spec or "", conversion)))
            else:
                return None
        literal(b'","related":' + dumps(related_source)[:-1] + b":")
        ops.append((INTEGER, RELATED))
        literal(b'","similarity":')
        ops.append((PICK, SIMILARITY))
        literal(b'}],"record":"')
        ops.append((RECORD, 0))
        literal(b'"}\n')
        return Template(tuple(ops), tuple(literals))

    @property
    def fixed_bytes(self) -> int:
        return sum(map(len, self.literals))


def _pick(key: object, value: float) -> bytes:
    """The bytes a pick puts in an entry for a score `value`."""
    if key == SIMILARITY:  # as the finding keeps it: rounded; a finite float's repr is what orjson writes
        rounded = round(value, 4)
        return b"%r" % rounded if np.isfinite(rounded) else orjson.dumps(rounded)
    _, spec, conversion = key  # type: ignore[misc]
    shown = value if conversion is None else {"r": repr, "s": str, "a": ascii}[conversion](value)
    return orjson.dumps(format(shown, spec))[1:-1]


def render(templates: Sequence[Template], which: np.ndarray, ints: np.ndarray, statuses: Sequence[bytes],
           status: np.ndarray, scores: np.ndarray, data: np.ndarray, at: np.ndarray,
           out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The entries laid end to end, and where each ends in them: entry e by `templates[which[e]]`,
    with the integer columns `ints[:, e]` (LINE, OFFSET, LENGTH, RELATED), the status
    `statuses[status[e]]` (JSON strings), the score `scores[e]` and the record
    `data[at[e]:at[e] + ints[LENGTH, e]]`. An entry whose record is not UTF-8 is left out: its
    end is the one before it (the caller writes it another way).

    They are written into `out` when it is large enough (a buffer used before: memory a
    process has touched costs less to write than new pages), else into a new array."""
    n = len(which)
    keys = sorted({arg for t in templates for kind, arg in t.ops if kind == PICK and arg != STATUS},
                  key=repr)
    table = list(statuses)
    picks = np.empty((1 + len(keys), n), dtype=np.int64)
    picks[0] = status
    if n and keys:
        # by their bits: 0.0 and -0.0 are equal but written apart
        bits, inverse = np.unique(np.asarray(scores, dtype=np.float64).view(np.int64), return_inverse=True)
        values = bits.view(np.float64).tolist()
        for row, key in enumerate(keys, 1):
            picks[row] = len(table) + inverse.reshape(-1)
            table.extend(_pick(key, value) for value in values)
    column = {STATUS: 0, **{key: row for row, key in enumerate(keys, 1)}}
    literals: list[bytes] = []
    ops: list[int] = []
    starts = [0]
    for t in templates:
        for kind, arg in t.ops:
            ops += (kind, len(literals) + arg if kind == LITERAL else column[arg] if kind == PICK else arg)  # type: ignore[operator]
        literals.extend(t.literals)
        starts.append(len(ops) // 2)
    widest = max(map(len, table)) if table else 0
    per_entry = max(t.fixed_bytes + 19 * sum(kind == INTEGER for kind, _ in t.ops)
                    + widest * sum(kind == PICK for kind, _ in t.ops) for t in templates) if templates else 0
    lengths = ints[LENGTH]
    # The largest the entries can be (a control character takes 6 bytes): the pages past those
    # written are never touched.
    largest = n * per_entry + 6 * int(lengths.sum()) + 1
    if out is None or out.size < largest:  # a power of two: the next chunks, about as large, fit
        out = np.empty(1 << (largest - 1).bit_length(), dtype=np.uint8)
    ends = np.empty(n, dtype=np.int64)
    lit_at = np.cumsum([0, *map(len, literals)], dtype=np.int64)
    table_at = np.cumsum([0, *map(len, table)], dtype=np.int64)
    _render(np.asarray(ops, dtype=np.int64), np.frombuffer(b"".join(literals), dtype=np.uint8), lit_at,
            np.asarray(starts, dtype=np.int64), np.asarray(which, dtype=np.int64), np.ascontiguousarray(ints),
            picks, np.frombuffer(b"".join(table), dtype=np.uint8), table_at, data, np.asarray(at, dtype=np.int64),
            out, ends)
    return out, ends


@nb.njit(cache=True, inline="always")
def _digits(value: int, out: np.ndarray, j: int) -> int:
    """A non-negative integer's digits, from out[j] (lines, offsets and lengths are never below 0)."""
    n, rest = 1, value
    while rest >= 10:
        rest //= 10
        n += 1
    for k in range(n - 1, -1, -1):
        out[j + k] = 48 + value % 10
        value //= 10
    return j + n


_SHORT = np.zeros(32, dtype=np.uint8)  # control characters with a short escape, as orjson writes them
for _c, _e in ((8, "b"), (9, "t"), (10, "n"), (12, "f"), (13, "r")):
    _SHORT[_c] = ord(_e)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


@nb.njit(cache=True, inline="always")
def _escape(data: np.ndarray, i: int, end: int, out: np.ndarray, j: int, short: np.ndarray, hexes: np.ndarray
            ) -> int:
    """data[i:end] as the inside of a JSON string, from out[j]; the end, or -1 if it is not UTF-8."""
    while i < end:
        c = data[i]
        if c < 0x80:
            if c >= 0x20 and c != 34 and c != 92:
                out[j] = c
                j += 1
            elif c >= 0x20:  # " and \
                out[j] = 92
                out[j + 1] = c
                j += 2
            elif short[c]:
                out[j] = 92
                out[j + 1] = short[c]
                j += 2
            else:
                out[j] = 92
                out[j + 1] = 117  # u
                out[j + 2] = 48
                out[j + 3] = 48
                out[j + 4] = hexes[c >> 4]
                out[j + 5] = hexes[c & 15]
                j += 6
            i += 1
            continue
        # A multi-byte sequence, as Python's strict UTF-8 decoder takes them (no surrogates,
        # no overlong forms, nothing past U+10FFFF).
        if 0xC2 <= c <= 0xDF:
            more, low, high = 1, 0x80, 0xBF
        elif c == 0xE0:
            more, low, high = 2, 0xA0, 0xBF
        elif c == 0xED:
            more, low, high = 2, 0x80, 0x9F
        elif 0xE1 <= c <= 0xEF:
            more, low, high = 2, 0x80, 0xBF
        elif c == 0xF0:
            more, low, high = 3, 0x90, 0xBF
        elif 0xF1 <= c <= 0xF3:
            more, low, high = 3, 0x80, 0xBF
        elif c == 0xF4:
            more, low, high = 3, 0x80, 0x8F
        else:
            return -1
        if i + more >= end:  # cut short by the record's end
            return -1
        second = data[i + 1]
        if second < low or second > high:
            return -1
        for k in range(2, more + 1):
            if data[i + k] & 0xC0 != 0x80:
                return -1
        for k in range(more + 1):
            out[j + k] = data[i + k]
        j += more + 1
        i += more + 1
    return j


@nb.njit(cache=True, nogil=True)
def _render(ops: np.ndarray, literals: np.ndarray, lit_at: np.ndarray, starts: np.ndarray, which: np.ndarray,
            ints: np.ndarray, picks: np.ndarray, table: np.ndarray, table_at: np.ndarray, data: np.ndarray,
            at: np.ndarray, out: np.ndarray, ends: np.ndarray) -> None:
    short, hexes = _SHORT, _HEX
    j = 0
    for e in range(which.size):
        begin = j
        program = which[e]
        for k in range(starts[program], starts[program + 1]):
            kind, arg = ops[2 * k], ops[2 * k + 1]
            if kind == LITERAL:
                for b in range(lit_at[arg], lit_at[arg + 1]):
                    out[j] = literals[b]
                    j += 1
            elif kind == INTEGER:
                j = _digits(ints[arg, e], out, j)
            elif kind == PICK:
                s = picks[arg, e]
                for b in range(table_at[s], table_at[s + 1]):
                    out[j] = table[b]
                    j += 1
            else:
                j = _escape(data, at[e], at[e] + ints[LENGTH, e], out, j, short, hexes)
                if j < 0:
                    break
        if j < 0:
            j = begin
        ends[e] = j
