"""The compiled verification kernel (`sftgate.analysis.kernels`) against the measures it
replaces: `rules.dedup.verify_edges` must score every pair exactly as `Verification.match`
does on Python lists with `analysis.similarity`."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.analysis import kernels
from sftgate.analysis.text import fold, token_hashes
from sftgate.rules.dedup import Verification, token_arrays, verify_edges

DEFAULT = Verification(similarity=0.85, max_changed_span=3, containment_min_tokens=20, containment_min_ratio=0.5)

# Open-Assistant en_100_tree (Apache-2.0): one answer and edits of it.
ANSWER = ("The Chernobyl nuclear power plant accident happened on April 26, 1986. It was a major nuclear accident "
          "that occurred in Ukraine, then part of the Soviet Union. The explosion at the reactor caused a fire "
          "and released radioactive material into the atmosphere.")


def tokens(text: str) -> list[int]:
    return token_hashes([fold(text)])[0].astype(np.uint32).tolist()


class ListSource:
    """A token source over Python lists, without `token_arrays`: the generic path."""

    def __init__(self, records: list[tuple[list[int], list[int]]]) -> None:
        self.records = records

    def tokens(self, record: int) -> tuple[list[int], list[int]]:
        return self.records[record]


def reference(records, edges, verification):
    scores = []
    for u, v in edges:
        score = verification.match(records[u], records[v])
        scores.append(np.nan if score is None else score)
    return np.array(scores)


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(got[~np.isnan(got)], want[~np.isnan(want)])  # exactly, not approximately


side = st.lists(st.integers(0, 12), max_size=70)
verifications = st.builds(
    Verification, similarity=st.sampled_from([0.0, 0.5, 0.85, 1.0]), max_changed_span=st.integers(0, 4),
    containment_min_tokens=st.integers(0, 30), containment_min_ratio=st.sampled_from([0.0, 0.5, 1.0]),
    prompt_only=st.booleans())


@settings(max_examples=300, deadline=None)
@given(records=st.lists(st.tuples(side, side), min_size=2, max_size=8), data=st.data(), verification=verifications)
def test_the_kernel_scores_exactly_as_the_python_measures(records, data, verification):
    n = len(records)
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=1, max_size=20))
    edges = np.array(pairs, dtype=np.int64)
    assert_same(verify_edges(edges, ListSource(records), verification), reference(records, pairs, verification))


def edited(text: str, *edits: tuple[str, str]) -> str:
    for old, new in edits:
        text = text.replace(old, new)
    return text


def test_real_edits_score_as_before():
    texts = [
        ANSWER,
        edited(ANSWER, ("happened", "hapened")),  # a typo
        ANSWER + " I hope this helps! Let me know if you have any other questions.",  # boilerplate
        edited(ANSWER, ("It was a major nuclear accident", "Thousands fled Pripyat within two days")),  # replaced
        ANSWER[: ANSWER.index(" The explosion")],  # truncated
        "What happened at Chernobyl?",
    ]
    records = [(tokens("Tell me about Chernobyl."), tokens(t)) for t in texts]
    records += [(tokens(t), tokens("Sure.")) for t in texts]
    pairs = [(u, v) for u in range(len(records)) for v in range(len(records))]
    edges = np.array(pairs, dtype=np.int64)
    for verification in (DEFAULT, replace(DEFAULT, prompt_only=True), replace(DEFAULT, max_changed_span=0)):
        want = reference(records, pairs, verification)
        assert_same(verify_edges(edges, ListSource(records), verification), want)
        assert (~np.isnan(want)).sum() > len(texts)  # not only identical pairs pass


@pytest.mark.parametrize("length", [70, 64, 65, 128, 1000])
def test_alignment_across_machine_words(length):
    # The bit-parallel alignment carries across 64-bit words; a typo every 37 tokens.
    rng = np.random.default_rng(length)
    a = rng.integers(0, 50, length).tolist()
    b = list(a)
    for i in range(5, length, 37):
        b[i] = 99
    records = [(a, []), (b, []), (b[: length // 2], []), (a[::-1], [])]
    pairs = [(u, v) for u in range(4) for v in range(4)]
    for verification in (DEFAULT, replace(DEFAULT, similarity=0.0, max_changed_span=100)):
        assert_same(verify_edges(np.array(pairs), ListSource(records), verification),
                    reference(records, pairs, verification))


def test_sides_longer_than_the_bit_tables_are_scored_in_python():
    rng = np.random.default_rng(7)
    long_a = rng.integers(0, 3000, kernels.MAX_PATTERN + 100).tolist()
    long_b = list(long_a)
    long_b[10] = 5000
    short = long_a[:300]
    records = [(long_a, [1]), (long_b, [1]), (short, [1])]
    pairs = [(0, 1), (1, 0), (0, 2), (2, 0), (0, 0)]
    edges = np.array(pairs, dtype=np.int64)
    assert_same(verify_edges(edges, ListSource(records), DEFAULT), reference(records, pairs, DEFAULT))
    # Both sides too long for the bit tables: flagged for the fallback, not scored by the kernel.
    values, prompt, response = token_arrays(ListSource(records), np.arange(3))
    start = np.cumsum(prompt + response) - (prompt + response)
    _, flags = kernels.match_edges(edges, values, start, prompt, response, 0.85, 3, 20, 0.5, False)
    assert flags[0] & kernels.FALLBACK and flags[1] & kernels.FALLBACK
    assert not flags[2] & kernels.FALLBACK


def test_very_long_sides_are_compared_by_token_sets():
    a = list(range(kernels.LONG + 10))
    b = a[::-1]  # the same set, nothing aligned in order
    records = [(a, []), (b, [])]
    got = verify_edges(np.array([[0, 1]]), ListSource(records), replace(DEFAULT, prompt_only=True))
    assert got[0] == 1.0
