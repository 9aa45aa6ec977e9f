"""The compiled kernels (`sftgate.analysis.kernels`) against the definitions they compute:
`rules.dedup.verify_edges` must score every pair exactly as `Verification.match` does on
Python lists with `analysis.similarity`, and the compiled features must be bit for bit the
tokens and band keys of `analysis.text` and `analysis.minhash` in numpy."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.analysis import kernels
from sftgate.analysis.minhash import band_keys, shingles, signatures
from sftgate.analysis.ngrams import MULTIPLIERS
from sftgate.analysis.text import classes, fold, mix64, token_hashes
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


# --- features: the compiled pass against the numpy definitions -----------------------------------

def numpy_features(sides: list[str], size: int, spaceless_size: int, num_perm: int, seed: int, bands: int,
                   rows: int):
    """What engine/features computed with numpy before the kernel: the reference."""
    hashes, counts, spaceless = token_hashes(sides)
    per_record = counts[0::2] + counts[1::2]
    mostly = 2 * (spaceless[0::2] + spaceless[1::2]) > per_record
    sh, owner = shingles(hashes, per_record, np.where(mostly, spaceless_size, size))
    keys = band_keys(signatures(sh, owner, per_record.size, num_perm, seed), bands, rows)
    return hashes, counts[0::2], counts[1::2], mostly, keys


def kernel_features(sides: list[str], size: int, spaceless_size: int, num_perm: int, seed: int, bands: int,
                    rows: int):
    cp = np.frombuffer("".join(sides).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    bounds = np.zeros(len(sides) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in sides], out=bounds[1:])
    mixed = mix64(np.full(1, seed, dtype=np.uint64))[0]
    return kernels.record_features(cp, bounds, classes(), size, spaceless_size, num_perm, mixed, bands, rows,
                                   MULTIPLIERS)


def assert_features_equal(sides, **settings):
    for want, got in zip(numpy_features(sides, **settings), kernel_features(sides, **settings), strict=True):
        assert np.array_equal(np.asarray(want), np.asarray(got))


REAL_SIDES = [
    fold("Summarize the dialogue.\n#Person1#: Hi, Mr. Smith. I'm Doctor Hawkins. Why are you here today?"),
    fold("Mr. Smith is getting a check-up from Doctor Hawkins."),
    fold("请用一句话总结：今天天气很好，我们去公园散步了。"),  # spaceless: character tokens
    fold("今天天气很好。"),
    fold("สวัสดีครับ ยินดีต้อนรับ"),  # Thai
    fold("Ｆｕｌｌｗｉｄｔｈ ligature ﬁ café naïve Ünïcödé \U00020000\U0001F600 x"),  # NFKC, astral
    "",  # a record without a prompt
    fold("ok"),  # shorter than a shingle
    "", "",  # a record without tokens at all
]


@pytest.mark.parametrize("size, spaceless_size, num_perm, bands, rows", [
    (3, 3, 128, 32, 4),  # the default profile
    (1, 2, 64, 16, 4),
    (5, 1, 100, 20, 5),  # bins that do not divide the hash range evenly; densification
])
def test_the_compiled_features_equal_the_numpy_definitions(size, spaceless_size, num_perm, bands, rows):
    assert_features_equal(REAL_SIDES, size=size, spaceless_size=spaceless_size, num_perm=num_perm, seed=7,
                          bands=bands, rows=rows)


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(st.text(alphabet=st.sampled_from("ab c\n\u00e9\u4e2d\u6587\u0e01\u0301.\U00020001"),
                              max_size=40), min_size=2, max_size=12).filter(lambda t: len(t) % 2 == 0),
       size=st.integers(1, 6), seed=st.integers(0, 2**32))
def test_the_compiled_features_equal_numpy_on_any_text(texts, size, seed):
    assert_features_equal(texts, size=size, spaceless_size=2, num_perm=32, seed=seed, bands=8, rows=4)


@settings(max_examples=100, deadline=None)
@given(counts=st.lists(st.integers(0, 12), min_size=1, max_size=10), size=st.integers(1, 5), data=st.data())
def test_band_keys_of_token_arrays_equal_the_numpy_definitions(counts, size, data):
    counts = np.array(counts, dtype=np.int64)
    tokens = np.array(data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=int(counts.sum()),
                                         max_size=int(counts.sum()))), dtype=np.uint64)
    sizes = np.full(counts.size, size, dtype=np.int64)
    sh, owner = shingles(tokens, counts, sizes)
    want = band_keys(signatures(sh, owner, counts.size, 64, 3), 16, 4)
    got = kernels.token_bands(tokens, counts, sizes, 64, mix64(np.full(1, 3, dtype=np.uint64))[0], 16, 4,
                              MULTIPLIERS)
    assert np.array_equal(want, got)
