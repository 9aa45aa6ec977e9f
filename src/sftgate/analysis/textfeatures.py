"""Per-example features of a prompt, for comparing a training set with production traffic.

`prompt_features(text)` returns one tuple of numbers per prompt (the names are `NUMERIC` then
`CATEGORICAL`); `feature_columns(texts)` stacks them into numpy columns, which is the form the
skew analysis (`analysis/skew.py`) reads and the engine merges across workers. The text is the
*asked* side of an example: its user turns joined by a newline, without the system
instruction, which is compared separately as a categorical key (`system_key`).

The set, and why each one:

| name | kind | what |
|---|---|---|
| chars | count | characters |
| words | count | whitespace-separated words (each character of a spaceless script counts as one) |
| lines | count | lines |
| code_share | share | characters in fenced blocks or code-like lines, over characters |
| markdown_share | share | lines starting with a heading, bullet, numbered item or table row, over lines |
| digit_share | share | ASCII digits over characters |
| upper_share | share | ASCII capitals over ASCII letters |
| punct_share | share | ASCII punctuation over characters |
| has_json | flag | a JSON object key (`{"key":`) appears |
| has_url | flag | `http://`, `https://` or `www.` appears |
| question | flag | ends with a question mark, or starts with an interrogative word |
| script | category | the dominant script of the letters (`SCRIPTS`) |

Counts are compared on a log scale, shares as they are, flags and the script as categories.
Character counts of a whole batch come from one numpy `bincount` over (text, byte class);
regular expressions run only on texts whose byte counts say they can match (a brace, a
semicolon, backticks, a slash, non-ASCII letters). About 20-25 µs per 700-character prompt on
the 2-vCPU benchmark VM, so the feature pass can afford it on every record.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from hashlib import blake2b

import numpy as np

NUMERIC: tuple[str, ...] = ("chars", "words", "lines", "code_share", "markdown_share", "digit_share",
                            "upper_share", "punct_share")
CATEGORICAL: tuple[str, ...] = ("has_json", "has_url", "question", "script")
NAMES: tuple[str, ...] = NUMERIC + CATEGORICAL

# Codes of the `script` column; NONE is a prompt without letters.
SCRIPTS: tuple[str, ...] = ("none", "latin", "cjk", "cyrillic", "arabic", "devanagari", "greek", "hebrew",
                            "hangul", "thai", "other")
_SCRIPT_CODE = {name: i for i, name in enumerate(SCRIPTS)}

# Byte classes counted per text in one numpy pass. UTF-8 continuation bytes are not
# characters, lead bytes of longer sequences are; a few punctuation marks get classes of their
# own because they say whether a regular expression can match at all.
(_OTHER, _DIGIT, _UPPER, _LOWER, _PUNCT, _NEWLINE, _SPACE, _CONT, _LEAD, _BRACE, _SEMI, _BACKTICK, _LT,
 _SLASH) = range(14)  # _NEWLINE and _SPACE must stay adjacent
_N_CLASSES = 14
_PUNCT_CLASSES = [_PUNCT, _BRACE, _SEMI, _BACKTICK, _LT, _SLASH]
_ASCII_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def _byte_classes() -> np.ndarray:
    table = np.full(256, _OTHER, dtype=np.uint8)
    table[48:58] = _DIGIT
    table[65:91] = _UPPER
    table[97:123] = _LOWER
    table[[ord(c) for c in _ASCII_PUNCT]] = _PUNCT
    for char, cls in (("{", _BRACE), (";", _SEMI), ("`", _BACKTICK), ("<", _LT), ("/", _SLASH)):
        table[ord(char)] = cls
    table[[0, 9, 11, 12, 13, 32]] = _SPACE  # NUL separates the texts of a batch
    table[10] = _NEWLINE
    table[0x80:0xC0] = _CONT
    table[0xC0:] = _LEAD
    return table


_CLASSES = _byte_classes()
_BATCH_BYTES = 1 << 22  # texts are counted in numpy in groups of about this many bytes

_SCRIPT_RES = (  # non-ASCII letters by script; Latin letters with diacritics count as Latin
    ("latin", re.compile(r"[\u00c0-\u024f\u1e00-\u1eff]")),
    ("cjk", re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")),
    ("cyrillic", re.compile(r"[\u0400-\u04ff]")),
    ("arabic", re.compile(r"[\u0600-\u06ff\u0750-\u077f]")),
    ("devanagari", re.compile(r"[\u0900-\u097f]")),
    ("greek", re.compile(r"[\u0370-\u03ff]")),
    ("hebrew", re.compile(r"[\u0590-\u05ff]")),
    ("hangul", re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")),
    ("thai", re.compile(r"[\u0e00-\u0e7f]")),
)
_SPACELESS = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SCRIPT_WINDOW = 2000  # characters looked at for the script
_SPACELESS_CODES = (_SCRIPT_CODE["cjk"], _SCRIPT_CODE["thai"])
_ASCII_LETTERS = np.array(list(range(65, 91)) + list(range(97, 123)), dtype=np.uint8)

_FENCE = "```"
_CODE_LINE = re.compile(
    r"^[ \t]*(?:(?:def|class|import|from|return|if|elif|for|while|function|const|let|var|public|private|"
    r"static|void|int|#include|SELECT|INSERT|UPDATE|CREATE)\b[^\n]*|[^\n]*[;{}][ \t]*|<[/a-zA-Z][^>\n]*>[^\n]*)$",
    re.MULTILINE)
_JSON_KEY = re.compile(r"[{,]\s*\"[^\"\n]{1,80}\"\s*:")
_URL = re.compile(r"https?://|www\.")
_QUESTION_WORDS = frozenset(
    ["what", "why", "how", "when", "where", "who", "whom", "whose", "which", "is", "are", "am", "was", "were", "do", "does", "did", "can", "could", "should", "would", "will", "shall", "may", "might", "have", "has", "had", "isn't", "aren't", "don't", "doesn't", "didn't", "can't", "won't"])
_QUESTION_MARKS = ("?", "？", "؟")


def prompt_features(text: str) -> tuple[float, ...]:
    """The `NAMES` features of one prompt, in that order (counts and shares as floats, codes as ints).

    For many prompts use `feature_columns`, which counts characters of a whole batch in numpy.
    """
    cols = feature_columns([text])
    return tuple(float(cols[name][0]) if name in NUMERIC else int(cols[name][0]) for name in NAMES)


def feature_columns(texts: Sequence[str]) -> dict[str, np.ndarray]:
    """`prompt_features` of every text as named columns: float32 for `NUMERIC`, int8 for `CATEGORICAL`."""
    texts = list(texts)
    n = len(texts)
    out = {name: np.zeros(n, dtype=np.float32 if name in NUMERIC else np.int8) for name in NAMES}
    start = 0
    while start < n:
        stop, size = start, 0
        while stop < n and (size < _BATCH_BYTES or stop == start):
            size += len(texts[stop]) + 1
            stop += 1
        _fill(texts[start:stop], out, start)
        start = stop
    return out


def _fill(texts: list[str], out: dict[str, np.ndarray], offset: int) -> None:
    raws = [t.encode("utf-8", "surrogatepass") for t in texts]
    n = len(raws)
    lengths = np.fromiter((len(r) + 1 for r in raws), dtype=np.int64, count=n)
    buf = np.frombuffer(b"\0".join(raws) + b"\0\0\0", dtype=np.uint8)
    size = int(lengths.sum())
    # One bincount over (text, byte class, starts a word) gives every per-text count at once.
    idx = np.repeat(np.arange(0, n * 2 * _N_CLASSES, 2 * _N_CLASSES, dtype=np.int64), lengths)
    cls = _CLASSES[buf[:size]]
    idx += cls
    space = (cls - np.uint8(_NEWLINE)) <= 1  # _NEWLINE or _SPACE
    word_start = np.empty(size, dtype=np.uint8)
    word_start[:1] = ~space[:1]
    np.greater(space[:-1], space[1:], out=word_start[1:])
    word_start *= _N_CLASSES
    idx += word_start
    both = np.bincount(idx, minlength=n * 2 * _N_CLASSES).reshape(n, 2, _N_CLASSES)
    counts = both.sum(axis=1)
    words = both[:, 1].sum(axis=1)
    markdown_lines = np.bincount(idx[_markdown_starts(buf, size)] // (2 * _N_CLASSES), minlength=n)

    chars = lengths - 1 - counts[:, _CONT]
    lines = np.where(chars > 0, counts[:, _NEWLINE] + 1, 0)
    letters = counts[:, _UPPER] + counts[:, _LOWER]
    sl = slice(offset, offset + n)
    out["chars"][sl] = chars
    out["lines"][sl] = lines
    out["markdown_share"][sl] = np.minimum(1.0, markdown_lines / np.maximum(lines, 1))
    out["digit_share"][sl] = counts[:, _DIGIT] / np.maximum(chars, 1)
    out["upper_share"][sl] = counts[:, _UPPER] / np.maximum(letters, 1)
    out["punct_share"][sl] = counts[:, _PUNCT_CLASSES].sum(axis=1) / np.maximum(chars, 1)
    codes = np.where(letters > 0, _SCRIPT_CODE["latin"], _SCRIPT_CODE["none"]).astype(np.int8)
    for i in np.flatnonzero(counts[:, _LEAD]).tolist():
        codes[i] = _script(texts[i], int(letters[i]))
        if codes[i] in _SPACELESS_CODES:
            words[i] += len(_SPACELESS.findall(texts[i]))
    out["script"][sl] = codes
    out["words"][sl] = words
    code = out["code_share"][sl]
    maybe_code = (counts[:, _BACKTICK] >= 6) | (counts[:, [_BRACE, _SEMI, _LT]].sum(axis=1) > 0)
    for i in np.flatnonzero(maybe_code).tolist():
        code[i] = _code_chars(texts[i]) / chars[i]
    has_json = out["has_json"][sl]
    for i in np.flatnonzero(counts[:, _BRACE]).tolist():
        has_json[i] = _JSON_KEY.search(texts[i]) is not None
    has_url = out["has_url"][sl]
    for i in np.flatnonzero(counts[:, _SLASH]).tolist():
        has_url[i] = _URL.search(texts[i]) is not None
    out["question"][sl] = [_question(t) for t in texts]


def _markdown_starts(buf: np.ndarray, size: int) -> np.ndarray:
    """Positions of lines that start with a Markdown heading, bullet, numbered item or table row."""
    p = np.flatnonzero((buf[:size] == 10) | (buf[:size] == 0)) + 1
    p = np.concatenate(([0], p[p < size]))
    b0, b1, b2 = buf[p], buf[p + 1], buf[p + 2]
    digit0, digit1 = (b0 >= 48) & (b0 <= 57), (b1 >= 48) & (b1 <= 57)
    closes = (b1 == ord(".")) | (b1 == ord(")"))
    marker = (((b0 == ord("#")) & ((b1 == 32) | (b1 == ord("#"))))
              | (((b0 == ord("-")) | (b0 == ord("*")) | (b0 == ord("+"))) & (b1 == 32))
              | (digit0 & closes & (b2 == 32))
              | (digit0 & digit1 & ((b2 == ord(".")) | (b2 == ord(")"))))
              | (b0 == ord("|")))
    return p[marker]


def merge_columns(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Columns of several chunks, concatenated in the order given (chunks in input order)."""
    if not parts:
        return {}
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def system_key(text: str | None) -> int:
    """A 63-bit key of a system instruction's text (whitespace collapsed); 0 when there is none."""
    if not text or not text.strip():
        return 0
    digest = blake2b(" ".join(text.split()).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return (int.from_bytes(digest, "little") >> 1) or 1


def _script(text: str, ascii_letters: int) -> int:
    window = text[:_SCRIPT_WINDOW]
    if len(text) > _SCRIPT_WINDOW:
        raw = window.encode("utf-8", "surrogatepass")
        ascii_letters = int(np.isin(np.frombuffer(raw, dtype=np.uint8), _ASCII_LETTERS).sum())
    best, best_count = "latin", ascii_letters
    for name, pattern in _SCRIPT_RES:
        count = len(pattern.findall(window))
        if name == "latin":
            best_count += count
            continue
        if name in ("cjk", "thai"):
            count *= 3  # one character of a spaceless script is about a word: weigh it like one
        if count > best_count:
            best, best_count = name, count
    if best_count == 0:
        return _SCRIPT_CODE["other"] if any(ch.isalpha() for ch in window) else _SCRIPT_CODE["none"]
    return _SCRIPT_CODE[best]


def _code_chars(text: str) -> int:
    chars = 0
    if _FENCE in text:
        pieces = text.split(_FENCE)
        chars += sum(len(p) for p in pieces[1:-1:2] if p)  # between an opening and a closing fence
        text = "".join(pieces[0::2])
    chars += sum(len(m) for m in _CODE_LINE.findall(text))
    return chars


def _question(text: str) -> int:
    stripped = text.rstrip()
    if stripped.endswith(_QUESTION_MARKS):
        return 1
    head = stripped[:24].lstrip().split(None, 1)
    return 1 if head and head[0].lower().strip(",:") in _QUESTION_WORDS else 0
