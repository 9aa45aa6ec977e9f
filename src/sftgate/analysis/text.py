"""Text keys and tokens for comparing records: exact keys, folded text, hashed tokens.

Two normalisations serve two purposes:

- `exact_text` is what "the same example" means for exact duplicates: Unicode NFC, runs of
  whitespace collapsed to one space, optionally case-folded and stripped of punctuation.
- `fold` + `token_hashes` is what near-duplicate and leakage detection compare: NFKC and
  case folding (full-width letters, ligatures and the like become plain ones), then tokens.
  A token is a run of letters, digits, underscores and combining marks, or one character of a
  script written without spaces (Chinese, Japanese kana, Thai, Lao, Khmer, Myanmar), so text in those scripts
  is compared character by character without a language-specific word segmenter. Punctuation
  and whitespace separate tokens and are not tokens themselves.

Tokens are hashed to 64 bits in numpy over a whole batch of texts at once (a polynomial hash
of the token's code points, then a mixer): there is no Python-level work per token.
"""

from __future__ import annotations

import sys
import unicodedata
from functools import lru_cache
from hashlib import blake2b

import numpy as np
import orjson

# Code points written without spaces between words: each is one token.
SPACELESS_RANGES: tuple[tuple[int, int], ...] = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x31F0, 0x31FF),  # Katakana extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)

OTHER, WORD, SPACELESS = 0, 1, 2

_PUNCT = None  # built on first use: str.translate table deleting Unicode punctuation


@lru_cache(maxsize=1)
def classes() -> np.ndarray:
    """Class of every BMP code point, plus one slot (index 0x10000) for all astral ones."""
    table = np.zeros(0x10001, dtype=np.uint8)
    # Letters, digits, underscore, and combining marks (Devanagari and Arabic vowel signs belong
    # to their word, not between two words).
    word = [c for c in range(0x10000)
            if chr(c).isalnum() or c == 0x5F or unicodedata.category(chr(c)) in ("Mn", "Mc", "Me")]
    table[word] = WORD
    for lo, hi in SPACELESS_RANGES:
        if lo < 0x10000:
            table[lo:hi + 1] = SPACELESS
    return table


def _punctuation_table() -> dict[int, None]:
    global _PUNCT
    if _PUNCT is None:
        _PUNCT = {c: None for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)).startswith("P")}
    return _PUNCT


def exact_text(text: str, *, case: bool = True, punctuation: bool = False) -> str:
    """NFC with whitespace collapsed; `case` folds case, `punctuation` deletes punctuation."""
    return " ".join(exact_fold(text, case=case, punctuation=punctuation).split())


def exact_fold(text: str, *, case: bool = True, punctuation: bool = False) -> str:
    """`exact_text` but for collapsing whitespace (`kernels.exact_keys` does that as it hashes).

    Collapsing commutes with the rest: NFC and case folding map whitespace to whitespace and
    nothing else to it (tests check every code point), and str.split() splits on the code
    points `spaces()` flags."""
    ascii = text.isascii()
    if not ascii:  # ASCII is NFC already; the check costs far less than normalize()
        text = unicodedata.normalize("NFC", text)
    if punctuation:
        text = text.translate(_punctuation_table())
    if not case:
        return text
    return text.lower() if ascii else text.casefold()  # casefold() is lower() on ASCII, only slower


@lru_cache(maxsize=1)
def spaces() -> np.ndarray:
    """1 for each code point str.split() splits on (all below U+3001), else 0."""
    table = np.zeros(0x3001, dtype=np.uint8)
    table[[c for c in range(table.size) if chr(c).isspace()]] = 1
    return table


def key64(text: str) -> int:
    """A 64-bit key of a text (BLAKE2b): equal texts, equal keys; collisions need 2^32 texts."""
    return int.from_bytes(blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def fold(text: str) -> str:
    """NFKC and case folding: the form `token_hashes` reads."""
    if text.isascii():
        return text.lower()  # NFKC leaves ASCII alone, and casefold() is lower() on it
    return unicodedata.normalize("NFKC", text).casefold()


# --- hashing -----------------------------------------------------------------------------------

_P = np.uint64(0x100000001B3)  # odd multiplier of the polynomial hash (FNV prime)
_P_INV = np.uint64(pow(0x100000001B3, -1, 1 << 64))
_BATCH_CHARS = 1 << 21  # texts are hashed in groups of about this many code points


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: spreads every input bit over the output (uint64 in, uint64 out)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def token_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokens of each text, hashed: (hashes uint64, counts per text int64, spaceless per text).

    `hashes` lists the tokens of text 0, then text 1, and so on; `counts[i]` is how many belong
    to text i and `spaceless[i]` how many of those are single characters of a spaceless script.
    Texts should be `fold`ed first. Equal tokens get equal hashes in every call and process.
    """
    counts = np.zeros(len(texts), dtype=np.int64)
    spaceless = np.zeros(len(texts), dtype=np.int64)
    parts: list[np.ndarray] = []
    start = 0
    while start < len(texts):
        stop, size = start, 0
        while stop < len(texts) and (size < _BATCH_CHARS or stop == start):
            size += len(texts[stop]) + 1
            stop += 1
        h, c, s = _hash_batch(texts[start:stop])
        parts.append(h)
        counts[start:stop] = c
        spaceless[start:stop] = s
        start = stop
    hashes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
    return hashes, counts, spaceless


def token_spans(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) character offsets of the tokens of a `fold`ed text, as `token_hashes` cuts it."""
    cp = np.frombuffer((text + "\x00").encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    starts, ends, _ = _bounds(cp)
    return starts, ends


def _bounds(cp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token starts, ends and whether each is a one-character spaceless token, over code points."""
    cls = classes()[np.minimum(cp, 0x10000)]
    astral = np.flatnonzero(cp >= 0x10000)
    if astral.size:
        cls[astral] = np.where((cp[astral] >= 0x20000) & (cp[astral] <= 0x3FFFF), SPACELESS, OTHER)
    word = cls == WORD
    single = cls == SPACELESS
    before = np.concatenate(([False], word[:-1]))
    after = np.concatenate((word[1:], [False]))
    # Every token has one first and one last character, and tokens do not overlap: the two
    # position lists below are in the same order (a one-character token starts and ends at once).
    starts = np.flatnonzero((word & ~before) | single)
    ends = np.flatnonzero((word & ~after) | single) + 1
    return starts, ends, single[starts]


def _hash_batch(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    joined = "\x00".join(texts) + "\x00"  # NUL is no token character: texts never run together
    cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    starts, ends, is_single = _bounds(cp)

    # Polynomial hash of each token: (H[end] - H[start]) * P^-start, H the prefix sums of cp * P^k.
    n = cp.size
    powers = np.full(n, _P, dtype=np.uint64)
    powers[0] = 1
    np.cumprod(powers, out=powers)
    prefix = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(cp.astype(np.uint64) * powers, out=prefix[1:])
    inverse = np.full(n, _P_INV, dtype=np.uint64)
    inverse[0] = 1
    np.cumprod(inverse, out=inverse)
    hashes = mix64((prefix[ends] - prefix[starts]) * inverse[starts])

    # Which text each token belongs to (a NUL inside a text is no token character either).
    lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts))
    text_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    owner = np.searchsorted(text_starts, starts, side="right") - 1
    counts = np.bincount(owner, minlength=len(texts))
    spaceless = np.bincount(owner[is_single], minlength=len(texts))
    return hashes, counts, spaceless


def json_text(value: object) -> str:
    """A free-form JSON value (function call arguments, a tool declaration) as compact JSON
    text with its keys sorted: what token counts and text views read of it. The check pass
    reads no record nested deeper than orjson writes (`engine.passes.MAX_DEPTH`)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
