"""MinHash signatures by one-permutation hashing, vectorised over a batch of records.

Classic MinHash applies K hash functions to every shingle (K x shingles work). One-permutation
hashing (Li, Owen and Zhang, 2012) hashes every shingle once, splits the hash range into K bins
and keeps the minimum per bin: the same collision probability per bin (the Jaccard similarity
of the two shingle sets) for one K-th of the work. Bins left empty by a small set are filled
by rotation densification (Shrivastava and Li, 2014): an empty bin takes the value of the next
non-empty bin to its right, circularly, offset by the distance, so two records' empty bins
agree exactly when the bins they borrow from agree.

A shingle is `size` consecutive tokens (`analysis.text`). A record with fewer tokens than
`size` has one shingle, all its tokens, so short records still get a signature: one that only
an identical token sequence matches. A record without tokens has no signature (all EMPTY).
"""

from __future__ import annotations

import numpy as np

from sftgate.analysis.ngrams import windows
from sftgate.analysis.text import mix64

EMPTY = np.uint32(0xFFFFFFFF)  # a bin no shingle fell in (values are capped one below)
_OFFSET = np.uint32(0x9E3779B1)  # densification offset per bin of distance (odd: a bijection)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def shingles(tokens: np.ndarray, counts: np.ndarray, size: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every window of `size` tokens: (hashes uint64, owner record index), in no
    particular order.

    `tokens` holds the token hashes of record 0, then record 1, ...; `counts[i]` how many are
    record i's. `size` is one window size or one per record. Windows never cross records
    (`ngrams.windows`); a record shorter than its window gets one shingle of all its tokens.
    """
    n = counts.size
    sizes = np.broadcast_to(np.asarray(size, dtype=np.int64), (n,))
    starts = (np.cumsum(counts) - counts).astype(np.int64)
    hashes, owner, _ = windows(tokens, counts, sizes)
    short = np.flatnonzero((counts > 0) & (counts < sizes))
    if not short.size:
        return hashes, owner
    return (np.concatenate((hashes, _whole(tokens, starts[short], counts[short]))),
            np.concatenate((owner, short)))


def _whole(tokens: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """One hash of all the tokens of each short record (fewer tokens than the window)."""
    h = np.zeros(starts.size, dtype=np.uint64)
    for k in range(int(counts.max())):
        live = counts > k
        h[live] = mix64(h[live] * _GOLDEN + tokens[starts[live] + k])
    return mix64(h ^ counts.astype(np.uint64))


def signatures(hashes: np.ndarray, owner: np.ndarray, n: int, num_perm: int, seed: int) -> np.ndarray:
    """One-permutation MinHash signatures: (n, num_perm) uint32, densified; EMPTY rows for
    records without shingles."""
    h = mix64(hashes ^ mix64(np.full(1, seed, dtype=np.uint64)))
    bins = ((h >> np.uint64(32)) * np.uint64(num_perm)) >> np.uint64(32)  # fair range reduction
    values = np.minimum((h & np.uint64(0xFFFFFFFF)).astype(np.uint32), EMPTY - np.uint32(1))
    sig = np.full(n * num_perm, EMPTY, dtype=np.uint32)
    np.minimum.at(sig, owner * num_perm + bins.astype(np.int64), values)
    sig = sig.reshape(n, num_perm)
    return _densify(sig)


def _densify(sig: np.ndarray) -> np.ndarray:
    empty = sig == EMPTY
    if not empty.any():
        return sig
    rows = np.flatnonzero(empty.any(axis=1) & ~empty.all(axis=1))  # partly empty: densify these
    k = sig.shape[1]
    cols = np.arange(k, dtype=np.int64)
    empty_rows = empty[rows]
    # For each position, the next non-empty column to the right, wrapping around once.
    nxt = np.where(~empty_rows, cols, 2 * k)
    doubled = np.concatenate((nxt, nxt + k), axis=1)
    doubled[doubled >= 2 * k] = 4 * k  # an empty column in either copy: "none"
    nearest = np.minimum.accumulate(doubled[:, ::-1], axis=1)[:, ::-1][:, :k]
    out = sig.copy()
    src = nearest
    distance = (src - cols).astype(np.uint32)
    borrowed = sig[rows[:, None], src % k] + distance * _OFFSET
    fill = empty_rows
    out[rows] = np.where(fill, np.minimum(borrowed, EMPTY - np.uint32(1)), sig[rows])
    return out


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64: one key per band of `rows` consecutive signature values; records
    with an EMPTY signature get key 0 in every band (the caller leaves them out of LSH)."""
    n = sig.shape[0]
    keys = np.zeros((n, bands), dtype=np.uint64)
    for b in range(bands):
        k = np.full(n, b + 1, dtype=np.uint64) * _GOLDEN
        for r in range(rows):
            k = mix64(k ^ sig[:, b * rows + r].astype(np.uint64))
        keys[:, b] = k
    keys[sig[:, 0] == EMPTY] = 0
    return keys
