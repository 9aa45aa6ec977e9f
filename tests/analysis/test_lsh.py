"""LSH banding: the detection curve, the choice of bands x rows, star edges and cross edges
(`sftgate.analysis.lsh`)."""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sftgate.analysis import lsh
from sftgate.analysis.lsh import (
    choose_bands,
    cross_edges,
    map_bands,
    probability,
    star_edges,
)


def _cost(bands: int, rows: int, threshold: float) -> float:
    """Half the false-positive area below the threshold plus half the false-negative area above."""
    lo, hi = np.linspace(0.0, threshold, 201), np.linspace(threshold, 1.0, 201)
    fp = np.trapezoid(1.0 - (1.0 - lo**rows) ** bands, lo)
    fn = np.trapezoid((1.0 - hi**rows) ** bands, hi)
    return 0.5 * fp + 0.5 * fn


# --- probability ---------------------------------------------------------------------------------


def test_probability_is_the_s_curve():
    assert probability(0.0, 20, 5) == 0.0
    assert probability(1.0, 20, 5) == 1.0
    assert probability(0.5, 1, 1) == pytest.approx(0.5)
    assert probability(0.8, 3, 2) == pytest.approx(1 - (1 - 0.64) ** 3)


@pytest.mark.parametrize(("bands", "rows"), [(1, 1), (25, 5), (14, 9), (5, 25), (128, 1)])
def test_probability_rises_with_similarity(bands, rows):
    curve = [probability(s, bands, rows) for s in np.linspace(0.0, 1.0, 101)]
    assert all(b >= a for a, b in pairwise(curve))
    assert all(0.0 <= p <= 1.0 for p in curve)


# --- choose_bands --------------------------------------------------------------------------------


@pytest.mark.parametrize("num_perm", [64, 128, 256])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.9])
def test_choose_bands_fits_the_signature_and_aims_at_the_threshold(threshold, num_perm):
    bands, rows = choose_bands(threshold, num_perm)
    assert bands >= 1 and rows >= 1 and bands * rows <= num_perm
    # The steep part of the curve sits near (1/bands)^(1/rows).
    assert abs((1 / bands) ** (1 / rows) - threshold) < 0.1
    assert probability(min(1.0, threshold + 0.2), bands, rows) > 0.75
    assert probability(max(0.0, threshold - 0.2), bands, rows) < 0.25


@pytest.mark.parametrize("threshold", [0.35, 0.5, 0.8])
def test_choose_bands_beats_its_neighbours(threshold):
    num_perm = 128
    bands, rows = choose_bands(threshold, num_perm)
    best = _cost(bands, rows, threshold)
    for b, r in [(bands + 1, rows), (bands - 1, rows), (bands, rows + 1), (bands, rows - 1),
                 (1, num_perm), (num_perm, 1), (num_perm // 2, 2)]:
        if b >= 1 and r >= 1 and b * r <= num_perm:
            assert best <= _cost(b, r, threshold) + 1e-9, (b, r)


def test_higher_thresholds_catch_fewer_dissimilar_pairs():
    at_03 = [probability(0.3, *choose_bands(t, 128)) for t in (0.3, 0.5, 0.7, 0.9)]
    assert at_03 == sorted(at_03, reverse=True)


# --- star_edges ----------------------------------------------------------------------------------


def _expected_edges(keys: np.ndarray, ids: np.ndarray) -> set[tuple[int, int]]:
    """Every member of a bucket linked to the bucket's earliest id, over all bands."""
    out = set()
    for b in range(keys.shape[1]):
        buckets: dict[int, list[int]] = defaultdict(list)
        for key, i in zip(keys[:, b].tolist(), ids.tolist(), strict=True):
            buckets[key].append(i)
        for members in buckets.values():
            out.update((min(members), m) for m in members if m != min(members))
    return out


def test_bucket_members_are_linked_to_the_earliest_record():
    ids = np.array([10, 11, 12, 13, 20], dtype=np.int64)
    keys = np.array([[5, 1], [5, 2], [7, 2], [5, 3], [7, 9]], dtype=np.uint64)
    edges = star_edges(keys, ids)
    assert edges.dtype == np.int64
    assert edges.tolist() == [[10, 11], [10, 13], [11, 12], [12, 20]]


def test_pairs_sharing_several_bands_give_one_edge():
    keys = np.array([[1, 2, 3], [1, 2, 3], [1, 2, 4]], dtype=np.uint64)
    edges = star_edges(keys, np.array([0, 1, 2], dtype=np.int64))
    assert edges.tolist() == [[0, 1], [0, 2]]


def test_no_buckets_no_edges():
    assert star_edges(np.zeros((0, 4), dtype=np.uint64), np.zeros(0, dtype=np.int64)).shape == (0, 2)
    keys = np.arange(12, dtype=np.uint64).reshape(3, 4)
    assert star_edges(keys, np.array([0, 1, 2], dtype=np.int64)).shape == (0, 2)


def test_keys_that_differ_only_in_their_top_bits_share_a_bucket():
    """The positions are packed below the keys, whose top bits make room: such keys share a
    bucket (verification rejects what that adds); the lower bits still tell buckets apart."""
    keys = np.array([[1], [1 | (1 << 63)], [2 | (1 << 62)], [2]], dtype=np.uint64)
    assert star_edges(keys, np.arange(4, dtype=np.int64)).tolist() == [[0, 1], [2, 3]]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=arrays(np.uint64, st.tuples(st.integers(1, 30), st.integers(1, 11)), elements=st.integers(0, 4)),
       gaps=st.lists(st.integers(1, 5), min_size=30, max_size=30), at_once=st.sampled_from([1, 3, 8]))
def test_star_edges_match_a_reference(keys, gaps, at_once, monkeypatch):
    monkeypatch.setattr(lsh, "BANDS_AT_ONCE", at_once)  # bands taken together, merged group by group
    ids = np.cumsum(np.array(gaps[: keys.shape[0]], dtype=np.int64))  # increasing, not contiguous
    edges = star_edges(keys, ids)
    pairs = [tuple(e) for e in edges.tolist()]
    assert pairs == sorted(set(pairs)), "sorted, without duplicates"
    assert all(u < v for u, v in pairs)
    assert set(pairs) == _expected_edges(keys, ids)
    # The same keys as some rows of a larger table (`rows`: taken band group by group).
    table = np.vstack((np.full((2, keys.shape[1]), 3, dtype=np.uint64), keys[::-1], np.ones((1, keys.shape[1]), dtype=np.uint64)))
    rows = np.arange(keys.shape[0])[::-1] + 2
    assert np.array_equal(star_edges(table, ids, rows=rows), edges)


# --- cross edges ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), held=st.sampled_from([3, 1 << 25]), at_once=st.sampled_from([1, 2, 8]))
def test_cross_edges_pair_every_query_with_every_index_record_sharing_a_band_key(data, held, at_once, monkeypatch):
    # Keys from a tiny set, so buckets are shared; some differ only in their top bits (the
    # lookup truncates them, the comparison after it must not), and 0 means "no signature".
    monkeypatch.setattr(lsh, "_HELD_PAIRS", held)  # 3: merge what is held after nearly every band
    bands = data.draw(st.integers(1, 4))
    pool = np.array([0, 1, 2, 1 | (1 << 63), 2 | (1 << 62), 12345], dtype=np.uint64)
    keys = st.lists(st.lists(st.sampled_from(range(pool.size)), min_size=bands, max_size=bands), max_size=12)
    q = pool[np.array(data.draw(keys), dtype=np.int64).reshape(-1, bands)]
    x = pool[np.array(data.draw(keys), dtype=np.int64).reshape(-1, bands)]
    q_ids = np.array(sorted(data.draw(st.sets(st.integers(0, 1000), min_size=len(q), max_size=len(q)))), dtype=np.int64)
    x_ids = np.array(sorted(data.draw(st.sets(st.integers(0, 1000), min_size=len(x), max_size=len(x)))), dtype=np.int64)
    want = sorted({(int(q_ids[i]), int(x_ids[j])) for i in range(len(q)) for j in range(len(x))
                   for b in range(bands) if q[i, b] != 0 and q[i, b] == x[j, b]})
    got = cross_edges(q, q_ids, x, x_ids, partial(map_bands, at_once=at_once))  # bands in groups, merged
    assert got.dtype == np.int64 and got.shape[1] == 2
    assert [tuple(e) for e in got.tolist()] == want
    table = np.vstack((pool[:3, None].repeat(bands, axis=1), x))  # the index as rows of a larger table
    got = cross_edges(q, q_ids, table, x_ids, partial(map_bands, at_once=at_once), index_rows=np.arange(len(x)) + 3)
    assert [tuple(e) for e in got.tolist()] == want
