"""Compiled kernels (numba) for the hot loops of near-duplicate detection.

`record_features` (and `token_bands`) compute a batch of records' tokens and MinHash band keys
bit for bit as the numpy definitions of `analysis.text` and `analysis.minhash` do, in one loop
without per-token temporaries.

`match_edges` scores a block of candidate pairs exactly as `rules.dedup.Verification.match`
does with the measures of `analysis.similarity`, but over uint32 token arrays, without turning
tokens into Python objects: the longest common subsequence by Hyyrö's bit-parallel algorithm
(the one rapidfuzz's Indel distance uses), token-set overlap by sorting. What it cannot settle
alone it flags for the caller: whether a side's alignment must be walked (`changed_span`, rare:
only pairs that may have replaced more tokens at one place than the limit), and sides too long
for its bit tables (more than `MAX_PATTERN` tokens on the shorter side), which the caller scores
with `analysis.similarity` itself.

`exact_keys` hashes records' exact, prompt, response and asked keys from their folded texts,
collapsing whitespace as it goes (`analysis.text.exact_text` defines the text). `walk_clusters`
is the breadth-first walk that matches each duplicate to a neighbour; `window_hits` streams
n-gram windows through an `analysis.ngrams.NgramIndex`; `shared_pairs` and `pair_grams` count
and list the n-grams each (query, training) pair of the leakage rules shares; `radix_sort` is
a stable sort of 64-bit keys with a payload. `band_heads` and `star_pairs` make the LSH star
edges of `analysis.lsh.star_edges`.

numba is imported only with this module, which only feature building, verification and the
dataset analyses import: a check with no rule that needs features does not pay for it. Kernels
are compiled on first use and cached on disk.
"""

from __future__ import annotations

import os

# numba colours its error messages through colorama, whose exit handler writes a reset code to
# the terminal: that would break NO_COLOR and --color never. sftgate never shows numba's errors.
os.environ.setdefault("NUMBA_DISABLE_ERROR_MESSAGE_HIGHLIGHTING", "1")

import numba as nb
import numpy as np

LONG = 50_000  # as analysis.similarity._LONG: beyond this on both sides, token sets only
MAX_PATTERN = 8_192  # the shorter side's tokens the bit tables hold at most (~4 MiB)

# Flags of match_edges, per edge.
SPAN_PROMPT = 1  # the prompt side's changed span must be measured
SPAN_RESPONSE = 2  # the response side's
FALLBACK = 4  # a side is too long for the kernel: score the pair in Python

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@nb.njit(cache=True, inline="always")
def _popcount(x: np.uint64) -> int:
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return int((x * _H01) >> np.uint64(56))


@nb.njit(cache=True)
def _pattern(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What aligning against `a` needs: (hash table slots -> token, slots -> distinct index or
    -1, count of each distinct token in `a`, PM: the bit positions of each distinct token)."""
    m = a.size
    size = 16
    while size < 2 * m:
        size <<= 1
    keys = np.zeros(size, dtype=np.uint32)
    index = np.full(size, -1, dtype=np.int32)
    counts = np.zeros(m, dtype=np.int32)
    words = (m + 63) >> 6
    pm = np.zeros((m, words), dtype=np.uint64)  # rows past the distinct count stay unused
    distinct = 0
    for i in range(m):
        slot = _find(keys, index, a[i])
        if index[slot] < 0:
            keys[slot] = a[i]
            index[slot] = distinct
            distinct += 1
        k = index[slot]
        counts[k] += 1
        pm[k, i >> 6] |= np.uint64(1) << np.uint64(i & 63)
    return keys, index, counts[:distinct], pm


@nb.njit(cache=True, inline="always")
def _find(keys: np.ndarray, index: np.ndarray, token: np.uint32) -> int:
    """The slot of `token` in an open-addressing table, or the empty slot where it would go."""
    mask = keys.size - 1
    slot = np.int64(token) & mask  # tokens are hashes already: their low bits are uniform
    while index[slot] >= 0 and keys[slot] != token:
        slot = (slot + 1) & mask
    return slot


@nb.njit(cache=True)
def _lcs(words: int, m: int, pm: np.ndarray, found: np.ndarray) -> int:
    """Length of the longest common subsequence of a pattern (`m` tokens, bit table `pm`) and a
    text given as the distinct index in the pattern of each of its tokens (`found`, -1: absent).

    Hyyrö (2004): V starts all ones; for each token c of the text, with PM the positions of c
    in the pattern, U = V & PM and V = (V + U) | (V - U); the LCS is the number of zero bits of V."""
    v = np.full(words, np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    for j in range(found.size):
        k = found[j]
        if k < 0:
            continue  # U = 0 leaves V as it is
        carry = np.uint64(0)
        for w in range(words):
            x = v[w]
            u = x & pm[k, w]
            s = x + u
            c1 = s < x
            s2 = s + carry
            c2 = s2 < s
            v[w] = s2 | (x - u)
            carry = np.uint64(1) if (c1 or c2) else np.uint64(0)
    ones = 0
    for w in range(words):
        x = v[w]
        if w == words - 1 and m & 63:
            x &= (np.uint64(1) << np.uint64(m & 63)) - np.uint64(1)
        ones += _popcount(x)
    return m - ones


@nb.njit(cache=True)
def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of the token sets of a and b (1.0 for two empty sets)."""
    sa, sb = np.sort(a), np.sort(b)
    i = j = common = distinct_a = distinct_b = 0
    while i < sa.size or j < sb.size:
        if j == sb.size or (i < sa.size and sa[i] < sb[j]):
            value = sa[i]
            distinct_a += 1
        elif i == sa.size or sb[j] < sa[i]:
            value = sb[j]
            distinct_b += 1
        else:
            value = sa[i]
            distinct_a += 1
            distinct_b += 1
            common += 1
        while i < sa.size and sa[i] == value:
            i += 1
        while j < sb.size and sb[j] == value:
            j += 1
    union = distinct_a + distinct_b - common
    return common / union if union else 1.0


@nb.njit(cache=True)
def _side(a: np.ndarray, b: np.ndarray, keys: np.ndarray, index: np.ndarray, counts: np.ndarray, pm: np.ndarray,
          seen: np.ndarray, found: np.ndarray, threshold: float, min_tokens: int,
          min_ratio: float) -> tuple[float, int]:
    """`Verification._side` over arrays, `a` given as its `_pattern` (`seen`: zeros, one per
    distinct token of `a`, left zeroed; `found`: scratch for b's tokens): (score, replaced at
    most). A score below `threshold` is only known to be below it."""
    la, lb = a.size, b.size
    same = la == lb
    if same:
        for i in range(la):
            if a[i] != b[i]:
                same = False
                break
    if same:
        return 1.0, 0
    shorter = min(la, lb)
    if shorter == 0:  # one side empty, the other not: nothing in common
        return 0.0, 0
    allowed = shorter >= min_tokens and shorter >= min_ratio * max(la, lb)  # containment counts
    # Tokens in common, counted with repeats, bound the longest common subsequence; distinct
    # tokens in common bound the token-set overlap. When both bounds fall short, so does the pair.
    common = shared = 0
    outside = False
    for j in range(lb):
        slot = _find(keys, index, b[j])
        k = index[slot] if keys[slot] == b[j] else -1
        found[j] = k
        if k < 0:
            outside = True
            continue
        seen[k] += 1
        if seen[k] == 1:
            shared += 1
        if seen[k] <= counts[k]:
            common += 1
    for j in range(lb):
        if found[j] >= 0:
            seen[found[j]] = 0
    # |B| >= shared (+1 when b has a token a lacks), so overlap <= shared / |A u B|.
    union_low = counts.size + (1 if outside else 0)
    overlap_bound = shared / union_low
    bound = 1.0 - (la + lb - 2 * common) / (la + lb)
    if allowed:
        bound = max(bound, common / shorter)
    if bound < threshold and overlap_bound < threshold:
        return max(bound, overlap_bound), 0
    lcs = _lcs(pm.shape[1], la, pm, found[:lb])
    score = 1.0 - (la + lb - 2 * lcs) / (la + lb)
    if allowed:
        score = max(score, lcs / shorter)
    if score < threshold:
        score = max(score, shared / union_low if not outside else _overlap(a, b))
    return score, shorter - lcs


@nb.njit(cache=True)
def _score(a: np.ndarray, b: np.ndarray, cache: tuple, seen: np.ndarray, found: np.ndarray, threshold: float,
           min_tokens: int, min_ratio: float) -> tuple[float, int, bool]:
    """One side of a pair: (score, replaced at most, too long for the kernel). `cache` is `a`'s
    `_pattern` when a is short enough to be the pattern."""
    la, lb = a.size, b.size
    if la > LONG and lb > LONG:
        return _overlap(a, b), 0, False  # as analysis.similarity.compare: token sets only
    if la <= MAX_PATTERN:
        keys, index, counts, pm = cache
        return (*_side(a, b, keys, index, counts, pm, seen, found, threshold, min_tokens, min_ratio), False)
    if lb <= MAX_PATTERN:  # the similarity measures are symmetric: b is the pattern
        keys, index, counts, pm = _pattern(b)
        return (*_side(b, a, keys, index, counts, pm, seen, found, threshold, min_tokens, min_ratio), False)
    return 0.0, 0, True


@nb.njit(cache=True)
def match_edges(edges: np.ndarray, tokens: np.ndarray, start: np.ndarray, prompt: np.ndarray,
                response: np.ndarray, threshold: float, limit: int, min_tokens: int, min_ratio: float,
                prompt_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """Score candidate pairs: (similarity or NaN, flags) per edge.

    `edges` (m, 2) index the records of a block whose tokens are `tokens`: record i's prompt
    side at start[i] (prompt[i] tokens), its response side right after (response[i] tokens).
    A score with a SPAN flag still depends on the changed span of the flagged sides; a FALLBACK
    edge has no score yet. The first record of each edge is the pattern its sides are aligned
    against; edges sorted by first record reuse one pattern."""
    m = edges.shape[0]
    scores = np.full(m, np.nan)
    flags = np.zeros(m, dtype=np.uint8)
    longest = 1
    for r in range(start.size):
        longest = max(longest, prompt[r], response[r])
    seen = np.zeros(min(longest, MAX_PATTERN) + 1, dtype=np.int32)
    found = np.empty(longest + 1, dtype=np.int32)
    empty = _pattern(tokens[:0])
    head = -1
    p_cache = r_cache = empty
    for e in range(m):
        u, v = edges[e, 0], edges[e, 1]
        a = tokens[start[u]:start[u] + prompt[u]]
        b = tokens[start[v]:start[v] + prompt[v]]
        ra = tokens[start[u] + prompt[u]:start[u] + prompt[u] + response[u]]
        rb = tokens[start[v] + prompt[v]:start[v] + prompt[v] + response[v]]
        if u != head:
            head = u
            p_cache = _pattern(a) if a.size <= MAX_PATTERN else empty
            r_cache = _pattern(ra) if ra.size <= MAX_PATTERN and not prompt_only else empty
        p_score, p_bound, p_long = _score(a, b, p_cache, seen, found, threshold, min_tokens, min_ratio)
        if p_long:
            flags[e] = FALLBACK
            continue
        if p_score < threshold:
            continue
        flag = SPAN_PROMPT if p_bound > limit else 0
        if prompt_only:
            scores[e] = p_score
            flags[e] = flag
            continue
        r_score, r_bound, r_long = _score(ra, rb, r_cache, seen, found, threshold, min_tokens, min_ratio)
        if r_long:
            flags[e] = FALLBACK
            continue
        if r_score < threshold:
            continue
        if r_bound > limit:
            flag |= SPAN_RESPONSE
        scores[e] = min(p_score, r_score)
        flags[e] = flag
    return scores, flags


# --- features: tokens, shingles, MinHash band keys -----------------------------------------------
#
# One pass over a batch of records' text, computing exactly what `analysis.text.token_hashes`,
# `analysis.minhash.shingles`, `signatures` and `band_keys` compute in numpy (the tests hold the
# two to the same bits), without the numpy temporaries: every array those make per code point
# or per token is a register here.

_P = np.uint64(0x100000001B3)  # as analysis.text._P
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_OFFSET = np.uint32(0x9E3779B1)  # as analysis.minhash._OFFSET
EMPTY = np.uint32(0xFFFFFFFF)
_WORD, _SPACELESS = 1, 2  # as analysis.text.WORD, SPACELESS


@nb.njit(cache=True, inline="always")
def _mix64(x: np.uint64) -> np.uint64:
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@nb.njit(cache=True, inline="always")
def _class(table: np.ndarray, c: np.uint32) -> int:
    if c < 0x10000:
        return table[c]
    return _SPACELESS if 0x20000 <= c <= 0x3FFFF else 0


@nb.njit(cache=True)
def _tokenize(cp: np.ndarray, lo: int, hi: int, table: np.ndarray, out: np.ndarray, n: int) -> tuple[int, int]:
    """Append the token hashes of cp[lo:hi] to out[n:]: (new n, one-character spaceless tokens)."""
    spaceless = 0
    i = lo
    while i < hi:
        cls = _class(table, cp[i])
        if cls == _SPACELESS:
            out[n] = _mix64(np.uint64(cp[i]))
            n += 1
            spaceless += 1
            i += 1
        elif cls == _WORD:
            h = np.uint64(0)
            power = np.uint64(1)
            while i < hi and _class(table, cp[i]) == _WORD:
                h += np.uint64(cp[i]) * power
                power *= _P
                i += 1
            out[n] = _mix64(h)
            n += 1
        else:
            i += 1
    return n, spaceless


@nb.njit(cache=True)
def _bands(tokens: np.ndarray, lo: int, count: int, size: int, num_perm: int, seed: np.uint64, rows: int,
           multipliers: np.ndarray, sig: np.ndarray, keys: np.ndarray) -> None:
    """The band keys of one record's tokens[lo:lo + count] into `keys` (zeros without tokens)."""
    sig[:] = EMPTY
    if count == 0:
        keys[:] = 0
        return
    if count < size:  # one shingle of every token (minhash._whole)
        h = np.uint64(0)
        for k in range(count):
            h = _mix64(h * _GOLDEN + tokens[lo + k])
        _minhash(_mix64(h ^ np.uint64(count)), num_perm, seed, sig)
    else:
        for i in range(lo, lo + count - size + 1):
            if size == 1:
                h = tokens[i]
            else:
                h = np.uint64(0)
                for k in range(size):
                    h += tokens[i + k] * multipliers[k]
                h = _mix64(h)
            _minhash(h, num_perm, seed, sig)
    # Densify (minhash._densify): an empty bin borrows from the next non-empty bin to its
    # right, circularly, offset by the distance.
    filled = 0
    for j in range(num_perm):
        if sig[j] != EMPTY:
            filled += 1
    if filled < num_perm:
        out = sig.copy()
        for j in range(num_perm):
            if sig[j] == EMPTY:
                d = 1
                while sig[(j + d) % num_perm] == EMPTY:
                    d += 1
                borrowed = np.uint32(sig[(j + d) % num_perm] + np.uint32(d) * _OFFSET)
                out[j] = min(borrowed, EMPTY - np.uint32(1))
        sig[:] = out
    for b in range(keys.size):
        k = np.uint64(b + 1) * _GOLDEN
        for r in range(rows):
            k = _mix64(k ^ np.uint64(sig[b * rows + r]))
        keys[b] = k


@nb.njit(cache=True, inline="always")
def _minhash(h: np.uint64, num_perm: int, seed: np.uint64, sig: np.ndarray) -> None:
    x = _mix64(h ^ seed)
    b = ((x >> np.uint64(32)) * np.uint64(num_perm)) >> np.uint64(32)
    value = np.uint32(min(x & np.uint64(0xFFFFFFFF), np.uint64(0xFFFFFFFE)))
    sig[b] = min(sig[b], value)


@nb.njit(cache=True)
def record_features(cp: np.ndarray, bounds: np.ndarray, table: np.ndarray, size: int, spaceless_size: int,
                    num_perm: int, seed: np.uint64, bands: int, rows: int,
                    multipliers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tokens and band keys of records whose two sides' code points are cp[bounds[2i]:bounds[2i+1]]
    (prompt side) and cp[bounds[2i+1]:bounds[2i+2]] (response side):
    (token hashes uint64, prompt-side counts, response-side counts, mostly spaceless, band keys).

    A record's shingles are windows of `size` tokens, or `spaceless_size` when most of its
    tokens are characters of a spaceless script, over its prompt side then its response side."""
    n = (bounds.size - 1) // 2
    hashes = np.empty(cp.size, dtype=np.uint64)
    prompt = np.zeros(n, dtype=np.int64)
    response = np.zeros(n, dtype=np.int64)
    spaceless = np.zeros(n, dtype=np.bool_)
    keys = np.zeros((n, bands), dtype=np.uint64)
    sig = np.empty(num_perm, dtype=np.uint32)
    at = 0
    for r in range(n):
        first = at
        at, p_single = _tokenize(cp, bounds[2 * r], bounds[2 * r + 1], table, hashes, at)
        prompt[r] = at - first
        at, r_single = _tokenize(cp, bounds[2 * r + 1], bounds[2 * r + 2], table, hashes, at)
        response[r] = at - first - prompt[r]
        count = at - first
        spaceless[r] = 2 * (p_single + r_single) > count
        _bands(hashes, first, count, spaceless_size if spaceless[r] else size, num_perm, seed, rows,
               multipliers, sig, keys[r])
    return hashes[:at], prompt, response, spaceless, keys


@nb.njit(cache=True)
def token_bands(tokens: np.ndarray, starts: np.ndarray, counts: np.ndarray, sizes: np.ndarray, num_perm: int,
                seed: np.uint64, bands: int, rows: int, multipliers: np.ndarray) -> np.ndarray:
    """(n, bands) band keys of records given as tokens (uint64; record i is
    tokens[starts[i]:starts[i] + counts[i]]) with a window size each:
    `minhash.band_keys(signatures(shingles(...)))`."""
    n = counts.size
    keys = np.zeros((n, bands), dtype=np.uint64)
    sig = np.empty(num_perm, dtype=np.uint32)
    for r in range(n):
        _bands(tokens, starts[r], counts[r], sizes[r], num_perm, seed, rows, multipliers, sig, keys[r])
    return keys


# --- exact keys ---------------------------------------------------------------------------------
# A record's exact keys hash its texts as `analysis.text.exact_text` writes them: the texts come
# prepared (`exact_fold`: NFC, case folded) and whitespace runs are collapsed here, while hashing.
# The hash is xxHash64's round over code points, then over the pieces' hashes: a sequence of
# values, whatever their count, gives one key; equal sequences, equal keys.

_K1 = np.uint64(0x9E3779B185EBCA87)  # xxHash64's primes
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)
_PIECE, _PROMPT, _EXACT, _ASKED = (np.uint64(0x27D4EB2F165667C5 * k & 0xFFFFFFFFFFFFFFFF) for k in (1, 3, 5, 7))
_SPACE = np.uint64(0x20)


@nb.njit(cache=True, inline="always")
def _round(acc: np.uint64, x: np.uint64) -> np.uint64:
    acc = acc + x * _K2
    acc = (acc << np.uint64(31)) | (acc >> np.uint64(33))
    return acc * _K1


@nb.njit(cache=True)
def _piece(cp: np.ndarray, lo: int, hi: int, spaces: np.ndarray) -> np.uint64:
    """The key of cp[lo:hi] with whitespace stripped at both ends and each inner run one space.

    Code points go two to a round (the first in the high half); an odd last one alone. With the
    count of code points mixed in at the end, that reads every sequence one way only."""
    acc = _PIECE
    n = 0
    held = np.uint64(0)  # the first code point of a pair not yet hashed (when n is odd)
    gap = False
    for j in range(lo, hi):
        c = cp[j]
        if c < spaces.size and spaces[c]:
            gap = n > 0
            continue
        if gap:
            if n & 1:
                acc = _round(acc, (held << np.uint64(32)) | _SPACE)
            else:
                held = _SPACE
            n += 1
            gap = False
        if n & 1:
            acc = _round(acc, (held << np.uint64(32)) | np.uint64(c))
        else:
            held = np.uint64(c)
        n += 1
    if n & 1:
        acc = _round(acc, held)
    return _mix64(acc ^ np.uint64(n))


@nb.njit(cache=True)
def exact_keys(cp: np.ndarray, bounds: np.ndarray, roles: np.ndarray, first: np.ndarray, last: np.ndarray,
               media: np.ndarray, model: np.uint64,
               spaces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The (exact, prompt, response, asked) keys of records given as pieces of text.

    Piece k is cp[bounds[k]:bounds[k + 1]] with role code roles[k]; record r's pieces are
    first[r] (its system instruction, maybe empty) up to first[r + 1] (its turns). last[r] is
    the index among its turns of the last model turn (-1: none); media[r] the key of its media
    references (0: none); `model` the role code of model turns; `spaces` flags the code points
    that are whitespace (all below spaces.size).

    - prompt: the system instruction and the turns before the last model turn (roles and
      texts), and the media
    - response: the last model turn's text (an empty text's key without one)
    - exact: prompt and response keys, and the turns after the last model turn
    - asked: every turn that is not the model's (roles and texts, no system instruction), and
      the media"""
    pieces = bounds.size - 1
    h = np.empty(pieces, dtype=np.uint64)
    for k in range(pieces):
        h[k] = _piece(cp, bounds[k], bounds[k + 1], spaces)
    empty = _mix64(_PIECE)
    n = first.size - 1
    exact = np.empty(n, dtype=np.uint64)
    prompt = np.empty(n, dtype=np.uint64)
    response = np.empty(n, dtype=np.uint64)
    asked = np.empty(n, dtype=np.uint64)
    for r in range(n):
        s = first[r]
        turns = first[r + 1] - s - 1
        end = last[r] if last[r] >= 0 else turns
        acc = _PROMPT
        for k in range(s, s + 1 + end):  # the system instruction, then the turns before
            acc = _round(_round(acc, roles[k]), h[k])
        p = _mix64(_round(acc, media[r]) ^ np.uint64(2 * end + 3))
        a = h[s + 1 + end] if last[r] >= 0 else empty
        acc = _round(_round(_EXACT, p), a)
        for k in range(s + 2 + end, s + 1 + turns):
            acc = _round(_round(acc, roles[k]), h[k])
        e = _mix64(acc ^ np.uint64(2 * max(turns - end, 1)))  # 2 values, and 2 per turn after
        acc = _ASKED
        count = 1
        for k in range(s + 1, s + 1 + turns):
            if roles[k] != model:
                acc = _round(_round(acc, roles[k]), h[k])
                count += 2
        prompt[r], response[r], exact[r] = p, a, e
        asked[r] = _mix64(_round(acc, media[r]) ^ np.uint64(count))
    return exact, prompt, response, asked


# --- n-gram windows against an index -------------------------------------------------------------


@nb.njit(cache=True, inline="always")
def _window_hash(tokens: np.ndarray, i: int, s: int, multipliers: np.ndarray) -> np.uint64:
    """The hash of the window of s tokens at tokens[i], as `ngrams.windows` computes it."""
    if s == 1:
        return np.uint64(tokens[i])
    h = np.uint64(0)
    for k in range(s):
        h += np.uint64(tokens[i + k]) * multipliers[k]
    return _mix64(h)


@nb.njit(cache=True)
def record_windows(tokens: np.ndarray, starts: np.ndarray, counts: np.ndarray, sizes: np.ndarray,
                   multipliers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`ngrams.windows` of records laid out anywhere: record i is tokens[starts[i]:starts[i] +
    counts[i]], cut into windows of sizes[i] tokens. (hashes, owner record, start position), in
    record order, then position order."""
    total = 0
    for r in range(counts.size):
        if sizes[r] >= 1 and counts[r] >= sizes[r]:
            total += counts[r] - sizes[r] + 1
    out_h = np.empty(total, dtype=np.uint64)
    out_o = np.empty(total, dtype=np.int64)
    out_p = np.empty(total, dtype=np.int64)
    m = 0
    for r in range(counts.size):
        s = sizes[r]
        if s < 1:
            continue
        lo = starts[r]
        for i in range(lo, lo + counts[r] - s + 1):
            h = _window_hash(tokens, i, s, multipliers)
            out_h[m] = h
            out_o[m] = r
            out_p[m] = i - lo
            m += 1
    return out_h, out_o, out_p


@nb.njit(cache=True)
def window_hits(tokens: np.ndarray, starts: np.ndarray, counts: np.ndarray, sizes: np.ndarray,
                multipliers: np.ndarray, words: np.ndarray, shift: np.uint64,
                indexed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The windows of records that occur in an `ngrams.NgramIndex`: (position in `indexed`,
    record).

    Record i is tokens[starts[i]:starts[i] + counts[i]], cut into windows of sizes[i] tokens
    hashed as `ngrams.windows` does; a window is kept when the index's filter (`words`, `shift`:
    `ngrams.NgramProbe`) lets it through and its sorted distinct hashes (`indexed`) hold it. In
    record order, then position order; a hash repeated in a record is listed each time."""
    found_h = np.empty(1024, dtype=np.int64)
    found_r = np.empty(1024, dtype=np.int64)
    m = 0
    one, low = np.uint64(1), np.uint64(63)
    for r in range(counts.size):
        s = sizes[r]
        lo = starts[r]
        for i in range(lo, lo + counts[r] - s + 1):
            h = _window_hash(tokens, i, s, multipliers)
            bits = (one << (h & low)) | (one << ((h >> np.uint64(6)) & low))  # as ngrams.filter_bits
            if words[h >> shift] & bits != bits:
                continue
            at = np.searchsorted(indexed, h)
            if at == indexed.size or indexed[at] != h:
                continue
            if m == found_h.size:
                found_h = np.concatenate((found_h, np.empty(m, dtype=np.int64)))
                found_r = np.concatenate((found_r, np.empty(m, dtype=np.int64)))
            found_h[m] = at
            found_r[m] = r
            m += 1
    return found_h[:m], found_r[:m]


# --- duplicate clusters -------------------------------------------------------------------------


@nb.njit(cache=True)
def walk_clusters(starts: np.ndarray, others: np.ndarray, survivors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Breadth-first from each survivor over edges grouped by node: node v's neighbours are
    others[starts[v]:starts[v + 1]], in the order to prefer them. Returns, per node, the node
    it was reached from (-1: a survivor, or not reached) and the index of that edge."""
    n = starts.size - 1
    matched = np.full(n, -1, dtype=np.int64)
    via = np.full(n, -1, dtype=np.int64)
    seen = np.zeros(n, dtype=np.bool_)
    queue = np.empty(n, dtype=np.int64)
    for s in survivors:
        seen[s] = True
        queue[0] = s
        head, tail = 0, 1
        while head < tail:
            node = queue[head]
            head += 1
            for i in range(starts[node], starts[node + 1]):
                other = others[i]
                if not seen[other]:
                    seen[other] = True
                    matched[other] = node
                    via[other] = i
                    queue[tail] = other
                    tail += 1
    return matched, via


# --- n-gram overlap -------------------------------------------------------------------------------


@nb.njit(cache=True)
def _by_owner(bounds: np.ndarray, owners: np.ndarray, base: int, n_query: int) -> tuple[np.ndarray, np.ndarray]:
    """The grams each query record holds, ascending: record q's are grams[start[q]:start[q + 1]]
    (gram g is held by owners[bounds[g]:bounds[g + 1]], global ids from `base`)."""
    start = np.zeros(n_query + 1, dtype=np.int64)
    for j in range(owners.size):
        start[owners[j] - base + 1] += 1
    for q in range(n_query):
        start[q + 1] += start[q]
    fill = start[:n_query].copy()
    grams = np.empty(owners.size, dtype=np.int64)
    for g in range(bounds.size - 1):
        for j in range(bounds[g], bounds[g + 1]):
            q = owners[j] - base
            grams[fill[q]] = g
            fill[q] += 1
    return start, grams


@nb.njit(cache=True)
def shared_pairs(hit_start: np.ndarray, hit_train: np.ndarray, bounds: np.ndarray, owners: np.ndarray, base: int,
                 n_query: int, n_train: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (query record, training record) pairs that share n-grams, and how many: sorted by
    query then training record. Training record hit_train[k] holds gram g for k in
    hit_start[g]:hit_start[g + 1] (distinct); the query side as in `_by_owner`. Each query's
    pairs are counted in a dense array over the training records: no (pair, gram) list exists."""
    q_start, q_grams = _by_owner(bounds, owners, base, n_query)
    counts = np.zeros(n_train, dtype=np.int64)
    touched = np.empty(n_train, dtype=np.int64)
    query = np.empty(1024, dtype=np.int64)
    train = np.empty(1024, dtype=np.int64)
    count = np.empty(1024, dtype=np.int64)
    m = 0
    for q in range(n_query):
        n = 0
        for i in range(q_start[q], q_start[q + 1]):
            g = q_grams[i]
            for k in range(hit_start[g], hit_start[g + 1]):
                t = hit_train[k]
                if counts[t] == 0:
                    touched[n] = t
                    n += 1
                counts[t] += 1
        if n == 0:
            continue
        mine = np.sort(touched[:n])
        if m + n > query.size:
            grow = max(m + n, 2 * query.size)
            query = np.concatenate((query[:m], np.empty(grow - m, dtype=np.int64)))
            train = np.concatenate((train[:m], np.empty(grow - m, dtype=np.int64)))
            count = np.concatenate((count[:m], np.empty(grow - m, dtype=np.int64)))
        for t in mine:
            query[m] = q + base
            train[m] = t
            count[m] = counts[t]
            counts[t] = 0
            m += 1
    return query[:m], train[:m], count[:m]


@nb.njit(cache=True)
def pair_grams(query: np.ndarray, train: np.ndarray, hit_start: np.ndarray, hit_train: np.ndarray,
               bounds: np.ndarray, owners: np.ndarray, base: int, n_query: int) -> tuple[np.ndarray, np.ndarray]:
    """The grams each of some (query record, training record) pairs shares, ascending: pair i's
    are grams[start[i]:start[i + 1]] (the inputs as in `shared_pairs`; hit_train ascending
    within each gram)."""
    q_start, q_grams = _by_owner(bounds, owners, base, n_query)
    start = np.zeros(query.size + 1, dtype=np.int64)
    out = np.empty(1024, dtype=np.int64)
    m = 0
    for p in range(query.size):
        q, t = query[p] - base, train[p]
        for i in range(q_start[q], q_start[q + 1]):
            g = q_grams[i]
            lo, hi = hit_start[g], hit_start[g + 1]
            at = lo + np.searchsorted(hit_train[lo:hi], t)
            if at < hi and hit_train[at] == t:
                if m == out.size:
                    out = np.concatenate((out, np.empty(m, dtype=np.int64)))
                out[m] = g
                m += 1
        start[p + 1] = m
    return start, out[:m]


# --- sorting ------------------------------------------------------------------------------------

_RADIX_BITS = 11


@nb.njit(cache=True)
def radix_sort(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`keys` (uint64) sorted, and `values` (int64) in the same order; stable (equal keys keep
    their order). Least significant digit first, 11 bits a pass: six linear passes, a few
    times faster than numpy's argsort of 64-bit keys."""
    return _radix(keys, values, True)


@nb.njit(cache=True)
def _radix_sorted(keys: np.ndarray) -> np.ndarray:
    """`keys` (uint64) sorted: `radix_sort` without a payload."""
    return _radix(keys, np.empty(0, dtype=np.int64), False)[0]


@nb.njit(cache=True)
def _radix(keys: np.ndarray, values: np.ndarray, carry: bool) -> tuple[np.ndarray, np.ndarray]:
    n = keys.size
    mask = np.uint64((1 << _RADIX_BITS) - 1)
    k_in, k_out = keys.copy(), np.empty_like(keys)
    v_in = values.copy() if carry else values
    v_out = np.empty_like(values)
    counts = np.zeros(1 << _RADIX_BITS, dtype=np.int64)
    for shift in range(0, 64, _RADIX_BITS):
        s = np.uint64(shift)
        counts[:] = 0
        for i in range(n):
            counts[(k_in[i] >> s) & mask] += 1
        if counts.max() == n:  # every key has the same digit here: nothing moves
            continue
        total = 0
        for d in range(counts.size):
            c = counts[d]
            counts[d] = total
            total += c
        for i in range(n):
            d = (k_in[i] >> s) & mask
            at = counts[d]
            k_out[at] = k_in[i]
            if carry:
                v_out[at] = v_in[i]
            counts[d] = at + 1
        k_in, k_out = k_out, k_in
        v_in, v_out = v_out, v_in
    return k_in, v_in


# --- LSH buckets ----------------------------------------------------------------------------------


@nb.njit(cache=True)
def band_heads(keys: np.ndarray, bits: int, heads: np.ndarray) -> None:
    """Each record's bucket head in one band: the first position holding the same key,
    ignoring the key's top `bits` bits (`analysis.lsh.star_edges` says why). `keys` (n,)
    uint64; `heads` (n,) int32, written."""
    n = keys.size
    b = np.uint64(bits)
    low = (np.uint64(1) << b) - np.uint64(1)
    packed = np.empty(n, dtype=np.uint64)
    for i in range(n):
        packed[i] = (keys[i] << b) | np.uint64(i)
    packed = _radix_sorted(packed)
    head = 0
    for k in range(n):
        at = np.int64(packed[k] & low)
        if k == 0 or (packed[k] >> b) != (packed[k - 1] >> b):
            head = at
        heads[at] = head


@nb.njit(cache=True)
def star_pairs(heads: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The distinct (head, record) pairs of a few bands' `band_heads` (n, bands), a record
    never paired with itself, packed as ids[head] << 31 | ids[record] (ids below 2^31); in
    no particular order."""
    n, bands = heads.shape
    count = 0
    for twice in range(2):  # count, then write
        out = np.empty(count, dtype=np.int64)
        count = 0
        for r in range(n):
            for j in range(bands):
                h = heads[r, j]
                if h == r:
                    continue
                seen = False
                for i in range(j):
                    if heads[r, i] == h:
                        seen = True
                        break
                if not seen:
                    if twice:
                        out[count] = (ids[h] << 31) | ids[r]
                    count += 1
    return out

