"""Token n-grams (windows) and a membership index over them, for shingling and for overlap.

A window is `size` consecutive tokens of one record (`analysis.text` tokens, hashed). Its hash
is a linear combination of its token hashes with fixed odd multipliers, mixed once more: order
matters, and equal windows hash equally in every record, call and process. MinHash shingles
(`analysis.minhash`) and the n-gram overlap of the leakage rules are both windows.

`NgramIndex` answers "which of these n-grams occur in the indexed records, and in which": the
smaller side of a comparison is indexed (sorted hashes with their records, behind a bitmap
that rejects almost every absent n-gram with one memory read), and the larger side streams
through it in blocks.
"""

from __future__ import annotations

import numpy as np

from sftgate.analysis.arrays import unique
from sftgate.analysis.text import mix64

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# Odd multipliers for the tokens of a window (position k uses MULTIPLIERS[k]; analysis.kernels
# too); fixed forever, since signatures must not change between versions without a reason.
MULTIPLIERS = mix64(np.arange(1, 65, dtype=np.uint64) * _GOLDEN) | np.uint64(1)
MAX_SIZE = MULTIPLIERS.size


def windows(tokens: np.ndarray, counts: np.ndarray,
            size: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every window of `size` tokens: (hashes uint64, owner record int64, start position int64).

    `tokens` holds the token hashes of record 0, then record 1, ...; `counts[i]` how many are
    record i's. `size` is one window size or one per record (at most `MAX_SIZE`). Windows never
    cross records; a record shorter than its window has none. Windows come grouped by size,
    in token order within a size. A one-token window's hash is the token's.
    """
    n = counts.size
    counts = np.asarray(counts, dtype=np.int64)
    sizes = np.broadcast_to(np.asarray(size, dtype=np.int64), (n,))
    if sizes.size and int(sizes.max(initial=0)) > MAX_SIZE:
        raise ValueError(f"windows of more than {MAX_SIZE} tokens are not supported")
    tokens = tokens.astype(np.uint64, copy=False)
    starts = np.cumsum(counts) - counts
    owner = np.repeat(np.arange(n, dtype=np.int64), counts)
    position = np.arange(tokens.size, dtype=np.int64) - starts[owner]  # index inside its record
    out_h: list[np.ndarray] = []
    out_o: list[np.ndarray] = []
    out_p: list[np.ndarray] = []
    for s in unique(sizes[counts >= sizes]).tolist():
        m = tokens.size - s + 1
        if m <= 0 or s < 1:
            continue
        valid = (sizes[owner[:m]] == s) & (position[:m] + s <= counts[owner[:m]])
        if s == 1:
            out_h.append(tokens[valid])
        else:
            h = tokens[:m] * MULTIPLIERS[0]
            for k in range(1, s):
                h += tokens[k:k + m] * MULTIPLIERS[k]
            out_h.append(mix64(h[valid]))
        out_o.append(owner[:m][valid])
        out_p.append(position[:m][valid])
    if not out_h:
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros(0, dtype=np.uint64), empty, empty.copy()
    return np.concatenate(out_h), np.concatenate(out_o), np.concatenate(out_p)


def record_windows(tokens: np.ndarray, starts: np.ndarray, counts: np.ndarray,
                   sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`windows` of records at any place in `tokens` (record i is tokens[starts[i]:starts[i] +
    counts[i]]), in one compiled pass: (hashes, owner record, start position), in record order,
    then position order."""
    from sftgate.analysis import kernels  # numba

    sizes = np.asarray(sizes, dtype=np.int64)
    if sizes.size and int(sizes.max()) > MAX_SIZE:
        raise ValueError(f"windows of more than {MAX_SIZE} tokens are not supported")
    return kernels.record_windows(tokens, np.asarray(starts, dtype=np.int64), np.asarray(counts, dtype=np.int64),
                                  sizes, MULTIPLIERS)


def unique_pairs(hashes: np.ndarray, records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (hash, record) pairs, sorted by hash then record (uint64, int64); records
    are in [0, 2^31).

    Pairs listed in record order (as `record_windows` gives them) need only a stable sort by
    hash: a compiled radix sort. Otherwise one argsort and a comparison with the neighbour:
    several times faster than `np.unique(..., axis=0)`, which sorts the rows as opaque bytes."""
    if not hashes.size:
        return hashes.astype(np.uint64), records.astype(np.int64)
    hashes, records = hashes.astype(np.uint64, copy=False), records.astype(np.int64, copy=False)
    if bool((records[1:] >= records[:-1]).all()):
        from sftgate.analysis import kernels  # numba

        h, r = kernels.radix_sort(hashes, records)
        keep = np.empty(h.size, dtype=bool)
        keep[0] = True
        keep[1:] = (h[1:] != h[:-1]) | (r[1:] != r[:-1])
        return h[keep], r[keep]
    # Records are below 2^31: sorted by hash (an unstable argsort, twice as fast as a lexsort),
    # each pair is packed as (the hash's rank << 31 | record) and the packed values sorted.
    order = np.argsort(hashes)
    h = hashes[order]
    new = np.empty(h.size, dtype=bool)
    new[0] = True
    new[1:] = h[1:] != h[:-1]
    distinct = h[new]
    rank = np.cumsum(new, dtype=np.int64)
    rank -= 1
    rank <<= 31
    rank |= records[order]
    packed = np.sort(rank)
    keep = np.empty(packed.size, dtype=bool)
    keep[0] = True
    keep[1:] = packed[1:] != packed[:-1]
    packed = packed[keep]
    return distinct[packed >> 31], packed & ((1 << 31) - 1)


class NgramProbe:
    """What `NgramIndex.hits` needs of an index, small enough to send to a worker process: the
    distinct n-gram hashes, sorted (gram g is grams[g]), behind a filter of 16 to 32 bits per
    n-gram that lets an absent hash through with p < 1/40 (about 1/60 at 16): a Bloom filter of
    two bits, both in the 64-bit word the hash's top bits choose (one memory read per window)."""

    def __init__(self, grams: np.ndarray) -> None:
        self.grams = grams
        bits = max(10, int(np.ceil(np.log2(max(1, grams.size) * 16 / 64))))  # log2 of the words
        self.shift = np.uint64(64 - bits)
        self.words = np.zeros(1 << bits, dtype=np.uint64)
        np.bitwise_or.at(self.words, (grams >> self.shift).astype(np.int64), filter_bits(grams))

    def hits(self, tokens: np.ndarray, starts: np.ndarray, counts: np.ndarray,
             sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The windows of some records that occur here: (gram number, owner record), as
        looking each of `windows` up among the indexed hashes would give them (`grams[number]` is the hash), in one
        compiled pass without holding every window.

        Record i is tokens[starts[i]:starts[i] + counts[i]], windows of sizes[i] tokens. A hash
        repeated within a record is listed each time."""
        from sftgate.analysis import kernels  # numba

        sizes = np.asarray(sizes, dtype=np.int64)
        if sizes.size and (int(sizes.max()) > MAX_SIZE or int(sizes.min()) < 1):
            raise ValueError(f"windows of 1 to {MAX_SIZE} tokens only")
        if not self.grams.size:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return kernels.window_hits(tokens, np.asarray(starts, dtype=np.int64), np.asarray(counts, dtype=np.int64),
                                   sizes, MULTIPLIERS, self.words, self.shift, self.grams)


def filter_bits(hashes: np.ndarray) -> np.ndarray:
    """The two bits of each hash in its `NgramProbe` word: from its low 12 bits (the word is
    chosen by the top bits)."""
    one = np.uint64(1)
    return (one << (hashes & np.uint64(63))) | (one << ((hashes >> np.uint64(6)) & np.uint64(63)))


class NgramIndex:
    """The n-grams of some records, for membership queries: which hashes occur, in which records.

    Built once from (hash, record) pairs; duplicates are dropped. `hits` (its `probe`'s)
    windows records of the other side and looks them up in one pass; `owners` says which
    indexed records hold the n-grams found.
    """

    def __init__(self, hashes: np.ndarray, records: np.ndarray) -> None:
        self.hashes, self.records = unique_pairs(hashes.astype(np.uint64, copy=False),
                                                 records.astype(np.int64, copy=False))  # by hash
        # The distinct n-grams, numbered in hash order: gram g is held by
        # records[bounds[g]:bounds[g + 1]].
        firsts = np.flatnonzero(np.r_[True, self.hashes[1:] != self.hashes[:-1]]) if self.hashes.size \
            else np.zeros(0, dtype=np.int64)
        self.probe = NgramProbe(self.hashes[firsts])
        self.grams = self.probe.grams
        self.bounds = np.r_[firsts, self.hashes.size].astype(np.int64)

    def __len__(self) -> int:
        return self.hashes.size

    def hits(self, tokens: np.ndarray, starts: np.ndarray, counts: np.ndarray,
             sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`NgramProbe.hits` of this index."""
        return self.probe.hits(tokens, starts, counts, sizes)

    def owners(self, grams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index into `grams`, indexed record) for every indexed record holding each gram
        (numbers, as `hits` gives them)."""
        lo = self.bounds[grams]
        n = self.bounds[grams + 1] - lo
        which = np.repeat(np.arange(grams.size, dtype=np.int64), n)
        offsets = np.arange(which.size, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
        return which, self.records[np.repeat(lo, n) + offsets]

    def gram_of_entries(self) -> np.ndarray:
        """The gram number of each (hash, record) entry."""
        return np.repeat(np.arange(self.grams.size, dtype=np.int64), np.diff(self.bounds))
