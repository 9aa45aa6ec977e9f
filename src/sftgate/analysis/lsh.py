"""Locality-sensitive hashing over MinHash band keys, and its detection curve.

Records whose signatures agree on all `rows` values of at least one of `bands` bands become
candidate pairs. For two records with Jaccard similarity s the probability of that is
1 - (1 - s^rows)^bands, an S-curve whose steep part sits near (1/bands)^(1/rows).

Candidates are produced as star edges: within a bucket (records sharing one band key), every
record is linked to the bucket's first record in input order, never all pairs, so a bucket of
m records costs m - 1 edges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from sftgate.analysis.arrays import merge_unique, unique


def probability(similarity: float, bands: int, rows: int) -> float:
    """P(two records of this Jaccard similarity become candidates)."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def choose_bands(threshold: float, num_perm: int, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows), bands x rows <= num_perm, minimising the weighted area of false positives
    (below `threshold`) and false negatives (above it) under the S-curve, as datasketch does."""
    grid_lo = np.linspace(0.0, threshold, 201)
    grid_hi = np.linspace(threshold, 1.0, 201)
    best, best_cost = (1, num_perm), float("inf")
    for rows in range(1, num_perm + 1):
        for bands in range(1, num_perm // rows + 1):
            fp = np.trapezoid(1.0 - (1.0 - grid_lo**rows) ** bands, grid_lo)
            fn = np.trapezoid((1.0 - grid_hi**rows) ** bands, grid_hi)
            cost = (1.0 - fn_weight) * fp + fn_weight * fn
            if cost < best_cost - 1e-12:
                best, best_cost = (bands, rows), cost
    return best


BandFn = Callable[..., np.ndarray]  # (some band columns of each matrix, *args) -> packed edges, sorted, unique
Rows = tuple[np.ndarray | None, ...]  # per matrix: the rows to take (None: every row)
BandMap = Callable[[BandFn, tuple[np.ndarray, ...], tuple, Rows], Iterator[np.ndarray]]


def map_bands(fn: BandFn, matrices: tuple[np.ndarray, ...], args: tuple, rows: Rows = (),
              at_once: int = 0) -> Iterator[np.ndarray]:
    """`fn(*(band_columns(m, r, lo, hi) for m, r in zip(matrices, rows)), *args)` for each
    group of `at_once` bands (default `BANDS_AT_ONCE`), here, in band order. Band keys are only
    ever compared within a band, so the union of the groups' edges does not depend on where
    the bands are cut: an executor may hand the groups to its workers (`RayExecutor.map_bands`)."""
    at_once = at_once or BANDS_AT_ONCE
    rows = rows or (None,) * len(matrices)
    for lo in range(0, matrices[0].shape[1], at_once):
        yield fn(*(band_columns(m, r, lo, lo + at_once) for m, r in zip(matrices, rows, strict=True)), *args)


def band_columns(matrix: np.ndarray, rows: np.ndarray | None, lo: int, hi: int) -> np.ndarray:
    """Bands lo..hi of the matrix's `rows` (all rows: None): the keys of a group of bands, cut
    from the whole table's without copying the selected rows' every band first."""
    return matrix[:, lo:hi] if rows is None else matrix[rows, lo:hi]


def star_edges(keys: np.ndarray, ids: np.ndarray, each: BandMap | None = None,
               rows: np.ndarray | None = None) -> np.ndarray:
    """Candidate edges (m, 2) int64 of `ids`, sorted and unique: (first in bucket, member).

    `keys` is (n, bands) from `minhash.band_keys`, or, with `rows`, a larger table whose rows
    `rows` are the ids' keys (taken group of bands by group, never copied whole); `ids` are
    increasing record indexes, below 2^31, so the first record of a bucket is the one
    earliest in the input. `each` maps the work over groups of bands (default `map_bands`:
    here).
    """
    # Per band, each record's bucket head (`kernels.band_heads`: one radix sort of the keys with
    # their positions packed below them). The keys' top bits make room for the positions: keys
    # that differ only there share a bucket, which at worst adds a pair that verification
    # rejects. A record's distinct heads over a few bands at a time are its edges
    # (`kernels.star_pairs`), merged group by group: memory holds the distinct edges, not
    # bands x edges, since in duplicate-heavy data every band repeats most of the same pairs.
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    bits = max(1, ids.size.bit_length())  # of all the records, whichever bands a group holds
    edges = np.zeros(0, dtype=np.int64)
    for part in (each or map_bands)(star_group, (keys,), (ids, bits), (rows,)):
        edges = merge_unique(edges, part)
    return np.stack((edges >> 31, edges & ((1 << 31) - 1)), axis=1)


def star_group(keys: np.ndarray, ids: np.ndarray, bits: int) -> np.ndarray:
    """`star_edges`' work on a few bands (n, k) of keys: their distinct pairs, packed as
    head << 31 | member, sorted."""
    from sftgate.analysis import kernels  # numba, as the rest of the duplicate analysis

    heads = np.empty((keys.shape[0], keys.shape[1]), dtype=np.int32)
    for b in range(keys.shape[1]):
        kernels.band_heads(np.ascontiguousarray(keys[:, b]), bits, heads[:, b])
    return unique(kernels.star_pairs(heads, ids))


BANDS_AT_ONCE = 8  # bands whose heads are held together: n x 8 int32


def cross_edges(query_keys: np.ndarray, query_ids: np.ndarray, index_keys: np.ndarray,
                index_ids: np.ndarray, each: BandMap | None = None, index_rows: np.ndarray | None = None) -> np.ndarray:
    """Candidate edges (m, 2) int64 between two sets: (query id, index id), sorted and unique.

    Every query record is paired with every index record it shares a band key with. Per band
    the index keys are sorted once and the query's keys looked up among them, so the cost
    grows with the index size and the pairs found, not their product. Rows whose keys are all 0
    (no signature) take no part. `each` maps the work over groups of bands (default
    `map_bands`: here). With `index_rows`, the index's keys are those rows of `index_keys`
    (as `star_edges`' `rows`).
    """
    if not query_ids.size or not index_ids.size:
        return np.zeros((0, 2), dtype=np.int64)
    edges = np.zeros(0, dtype=np.int64)
    query_ids = query_ids.astype(np.int64) << 31
    index_ids = index_ids.astype(np.int64)
    for part in (each or map_bands)(cross_group, (query_keys, index_keys), (query_ids, index_ids),
                                    (None, index_rows)):
        edges = merge_unique(edges, part)
    return np.stack((edges >> 31, edges & ((1 << 31) - 1)), axis=1)


def cross_group(query_keys: np.ndarray, index_keys: np.ndarray, query_ids: np.ndarray,
                index_ids: np.ndarray) -> np.ndarray:
    """`cross_edges`' work on a few bands of both sets' keys: their distinct pairs, packed as
    query id << 31 | index id (`query_ids` come shifted), sorted."""
    edges = np.zeros(0, dtype=np.int64)
    parts: list[np.ndarray] = []
    held = 0
    # As in star_edges, each band's index keys are sorted with their positions packed below
    # them; the keys' top bits make room, so a lookup among the truncated keys is followed by a
    # comparison of the whole keys.
    bits = np.uint64(max(1, int(index_keys.shape[0]).bit_length()))
    low = (np.uint64(1) << bits) - np.uint64(1)
    kept = np.uint64(0xFFFFFFFFFFFFFFFF) >> bits
    positions = np.arange(index_keys.shape[0], dtype=np.uint64)
    for b in range(query_keys.shape[1]):
        column = index_keys[:, b]
        packed = np.sort((column << bits) | positions)
        ordered = packed >> bits
        # The query's keys are looked up in sorted order: searchsorted walks the index far
        # faster for increasing needles.
        wanted = query_keys[:, b]
        by_key = np.argsort(wanted & kept)
        needles = (wanted & kept)[by_key]
        lo = np.searchsorted(ordered, needles, side="left")
        n = np.where(wanted[by_key] != 0, np.searchsorted(ordered, needles, side="right") - lo, 0)
        hit = np.flatnonzero(n)
        if not hit.size:
            continue
        n = n[hit]
        query_side = by_key[np.repeat(hit, n)]
        offsets = np.arange(query_side.size, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
        index_side = (packed[np.repeat(lo[hit], n) + offsets] & low).astype(np.int64)
        same = column[index_side] == wanted[query_side]
        parts.append(query_ids[query_side[same]] | index_ids[index_side[same]])
        held += parts[-1].size
        if held > _HELD_PAIRS:  # bands x pairs may exceed memory: merge what is held so far
            edges = merge_unique(edges, unique(np.concatenate(parts)))
            parts, held = [], 0
    if parts:
        edges = merge_unique(edges, unique(np.concatenate(parts)))
    return edges


_HELD_PAIRS = 1 << 25  # packed pairs cross_edges holds before merging them
