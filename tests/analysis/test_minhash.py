"""Shingles, one-permutation MinHash signatures and LSH band keys (`sftgate.analysis.minhash`)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.analysis.minhash import EMPTY, band_keys, shingles, signatures
from sftgate.analysis.text import fold, token_hashes


def record_tokens(*texts: str) -> tuple[np.ndarray, np.ndarray]:
    hashes, counts, _ = token_hashes([fold(t) for t in texts])
    return hashes, counts


def per_record(hashes: np.ndarray, owner: np.ndarray, n: int) -> list[Counter[int]]:
    out: list[Counter[int]] = [Counter() for _ in range(n)]
    for h, o in zip(hashes.tolist(), owner.tolist(), strict=True):
        out[o][h] += 1
    return out


# --- shingles ------------------------------------------------------------------------------------


def test_window_counts_per_record():
    tokens, counts = record_tokens("bees use the honeycomb to store honey", "store honey", "", "the bees store")
    assert counts.tolist() == [7, 2, 0, 3]
    hashes, owner = shingles(tokens, counts, 3)
    # 7 - 3 + 1 windows; a record shorter than the window gets one shingle; no tokens, none.
    assert np.bincount(owner, minlength=4).tolist() == [5, 1, 0, 1]
    assert hashes.dtype == np.uint64 and owner.size == hashes.size


def test_single_token_shingles_are_the_tokens():
    tokens, counts = record_tokens("bees use the honeycomb", "", "honey")
    hashes, owner = shingles(tokens, counts, 1)
    assert sorted(zip(owner.tolist(), hashes.tolist())) == sorted(
        zip([0, 0, 0, 0, 2], tokens.tolist()))


def test_equal_windows_hash_equally_in_any_record():
    tokens, counts = record_tokens("bees use the honeycomb", "so the honeycomb stores honey")
    hashes, owner = shingles(tokens, counts, 2)
    first, second = per_record(hashes, owner, 2)
    assert len(first & second) == 1  # "the honeycomb"
    assert len(first) == 3 and len(second) == 4


def test_window_order_matters():
    tokens, counts = record_tokens("bees honey pollen", "pollen honey bees", "honey bees pollen")
    hashes, _ = shingles(tokens, counts, 3)
    assert len(set(hashes.tolist())) == 3


def test_short_records_compare_only_with_the_same_tokens():
    tokens, counts = record_tokens("positive", "Positive.", "negative", "not positive")
    hashes, owner = shingles(tokens, counts, 3)
    assert owner.tolist().count(3) == 1
    by_record = dict(zip(owner.tolist(), hashes.tolist(), strict=True))
    assert by_record[0] == by_record[1]
    assert len({by_record[0], by_record[2], by_record[3]}) == 3


def test_windows_never_cross_records():
    tokens, counts = record_tokens("bees honey", "pollen wax")
    hashes, _ = shingles(tokens, counts, 2)
    assert hashes.size == 2
    across, across_counts = record_tokens("honey pollen")
    assert shingles(across, across_counts, 2)[0][0] not in hashes.tolist()


def test_a_size_per_record():
    tokens, counts = record_tokens("bees use the honeycomb", "桃花源记", "bees use the honeycomb")
    _, owner = shingles(tokens, counts, np.array([1, 3, 2]))
    assert np.bincount(owner, minlength=3).tolist() == [4, 2, 3]


@settings(max_examples=60, deadline=None)
@given(records=st.lists(st.lists(st.integers(0, 6), max_size=12), max_size=8), size=st.integers(1, 5))
def test_shingles_of_a_batch_are_those_of_each_record_alone(records, size):
    vocabulary = np.array([0x9E3779B97F4A7C15 * (v + 1) % (1 << 64) for v in range(7)], dtype=np.uint64)
    counts = np.array([len(r) for r in records], dtype=np.int64)
    tokens = vocabulary[np.array([v for r in records for v in r], dtype=np.int64)]
    together = per_record(*shingles(tokens, counts, size), len(records))
    for i, r in enumerate(records):
        alone = shingles(vocabulary[np.array(r, dtype=np.int64)], np.array([len(r)]), size)[0]
        assert together[i] == Counter(alone.tolist())
        assert sum(together[i].values()) == (0 if not r else max(1, len(r) - size + 1))


# --- signatures ----------------------------------------------------------------------------------


def test_signatures_are_deterministic_for_a_seed():
    tokens, counts = record_tokens("bees use the honeycomb to store honey", "store honey", "")
    hashes, owner = shingles(tokens, counts, 2)
    a = signatures(hashes, owner, 3, 64, seed=1)
    b = signatures(hashes.copy(), owner.copy(), 3, 64, seed=1)
    c = signatures(hashes, owner, 3, 64, seed=2)
    assert a.shape == (3, 64) and a.dtype == np.uint32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:2], c[:2])


def test_signature_ignores_shingle_order_and_repeats():
    rng = np.random.default_rng(7)
    values = rng.integers(0, 1 << 63, size=50, dtype=np.int64).astype(np.uint64)
    owner = np.zeros(50, dtype=np.int64)
    shuffled = np.concatenate((rng.permutation(values), values[:10]))
    a = signatures(values, owner, 1, 128, seed=1)
    b = signatures(shuffled, np.zeros(60, dtype=np.int64), 1, 128, seed=1)
    np.testing.assert_array_equal(a, b)


def test_records_without_shingles_are_empty_and_the_rest_are_dense():
    tokens, counts = record_tokens("", "honey", "bees use the honeycomb to store honey", "")
    hashes, owner = shingles(tokens, counts, 3)
    sig = signatures(hashes, owner, 4, 128, seed=1)
    assert (sig[0] == EMPTY).all() and (sig[3] == EMPTY).all()
    # One shingle fills one bin of 128; densification fills the rest.
    assert not (sig[1] == EMPTY).any() and not (sig[2] == EMPTY).any()


def test_no_records_at_all():
    sig = signatures(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64), 0, 64, seed=1)
    assert sig.shape == (0, 64)
    assert band_keys(sig, 8, 8).shape == (0, 8)


def _sets_with_jaccard(rng: np.random.Generator, size: int, jaccard: float) -> tuple[np.ndarray, np.ndarray]:
    """Two sets of `size` random 64-bit values sharing round(2 j size / (1 + j)) of them."""
    shared = round(2 * jaccard * size / (1 + jaccard))
    pool = rng.integers(0, 1 << 63, size=2 * size, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    a = pool[:size]
    b = np.concatenate((a[:shared], pool[size:2 * size - shared]))
    return a, b


@pytest.mark.parametrize("size", [30, 400])
@pytest.mark.parametrize("jaccard", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_signature_agreement_estimates_jaccard(jaccard, size):
    rng = np.random.default_rng(int(jaccard * 100) + size)
    errors = []
    for trial in range(20):
        a, b = _sets_with_jaccard(rng, size, jaccard)
        true = len(set(a.tolist()) & set(b.tolist())) / len(set(a.tolist()) | set(b.tolist()))
        hashes = np.concatenate((a, b))
        owner = np.repeat(np.arange(2), [a.size, b.size])
        sig = signatures(hashes, owner, 2, 128, seed=trial + 1)
        estimate = float((sig[0] == sig[1]).mean())
        assert abs(estimate - true) < 0.25, (trial, estimate, true)  # about 5 standard deviations
        errors.append(estimate - true)
    # Unbiased on average: 20 trials of 128 bins bring the mean error well under 0.05.
    assert abs(float(np.mean(errors))) < 0.05


# --- band keys -----------------------------------------------------------------------------------


def test_band_keys_agree_exactly_on_the_bands_whose_values_agree():
    tokens, counts = record_tokens("bees use the honeycomb to store honey and pollen", "", "store honey")
    hashes, owner = shingles(tokens, counts, 2)
    sig = signatures(hashes, owner, 3, 32, seed=1)
    changed = sig.copy()
    changed[0, 10] ^= np.uint32(1)  # one value of band 1 (columns 8..15)
    keys = band_keys(np.concatenate((sig, changed)), 4, 8)
    assert keys.shape == (6, 4) and keys.dtype == np.uint64
    assert (keys[0] == keys[3]).tolist() == [True, False, True, True]
    assert (keys[1] == 0).all() and (keys[4] == 0).all()  # no shingles: key 0, left out of LSH
    assert (keys[0] != 0).all() and (keys[2] != 0).all()


def test_band_keys_differ_between_bands_holding_the_same_values():
    sig = np.tile(np.arange(8, dtype=np.uint32), (1, 2))  # bands 0 and 1 hold the same values
    keys = band_keys(sig, 2, 8)
    assert keys[0, 0] != keys[0, 1]
