"""The compiled kernels (`sftgate.analysis.kernels`) against the definitions they compute:
`rules.dedup.verify_edges` must score every pair exactly as `Verification.match` does on
Python lists with `analysis.similarity`, and the compiled features must be bit for bit the
tokens and band keys of `analysis.text` and `analysis.minhash` in numpy."""

from __future__ import annotations

import sys
import unicodedata
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.analysis import kernels
from sftgate.analysis.minhash import band_keys, shingles, signatures
from sftgate.analysis.ngrams import MAX_SIZE, MULTIPLIERS, NgramIndex, windows
from sftgate.analysis.text import classes, exact_text, fold, mix64, spaces, token_hashes
from sftgate.config import load_profile
from sftgate.engine.features import DedupSettings, FeatureBuilder, _parts_text
from sftgate.formats import to_example
from sftgate.model import Example, Origin
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
    # The kernel reads records where they lie: here with gaps of other tokens between them.
    gaps = np.array(data.draw(st.lists(st.integers(0, 3), min_size=counts.size, max_size=counts.size)), dtype=np.int64)
    starts = np.cumsum(counts + gaps) - counts
    spread = np.full(int(starts[-1] + counts[-1]), 7, dtype=np.uint64)
    for start, count, first in zip(starts, counts, np.cumsum(counts) - counts, strict=True):
        spread[start:start + count] = tokens[first:first + count]
    got = kernels.token_bands(spread, starts, counts, sizes, 64, mix64(np.full(1, 3, dtype=np.uint64))[0], 16, 4,
                              MULTIPLIERS)
    assert np.array_equal(want, got)


# --- exact keys --------------------------------------------------------------------------------
# The keys stand for strings: before the kernel they were BLAKE2b digests of exactly these. Keys
# must be equal exactly when the strings are.


def reference_strings(example: Example, case: bool, punctuation: bool) -> tuple:
    """(exact, prompt, response, asked): what each key identifies, written out as strings."""
    media: list[str] = []
    system = _parts_text(example.system, media)
    turns = [(t.effective_role, _parts_text(t.parts, media)) for t in example.turns]
    last = example.last_model_index
    end = last if last is not None else len(turns)
    normed = [f"{role}\x1f{exact_text(text, case=case, punctuation=punctuation)}" for role, text in turns]
    media_key = "\x1e".join(media)
    prompt = "\x1e".join([f"system\x1f{exact_text(system, case=case, punctuation=punctuation)}", *normed[:end]])
    prompt += f"\x1d{media_key}"
    response = normed[last].partition("\x1f")[2] if last is not None else ""
    exact = (prompt, response, "\x1e".join(normed[end + 1:]))
    asked = "\x1e".join([n for n, (role, _) in zip(normed, turns, strict=True) if role != "model"] + [media_key])
    return exact, prompt, response, asked


PIECES = ["a", "A", "b", " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2028", "\x1e", "\x1f", "é", "e\u0301",
          "ß", "ss", "ﬁ", ",", "!"]
text_strategy = st.lists(st.sampled_from(PIECES), max_size=5).map("".join)
turn_strategy = st.tuples(st.sampled_from(["user", "model", "model", None, "tool"]),
                          st.lists(st.one_of(text_strategy.map(lambda t: {"text": t}),
                                             st.sampled_from([{"fileData": {"fileUri": "gs://b/x.png",
                                                                            "mimeType": "image/png"}}])),
                                   min_size=1, max_size=2))
record_strategy = st.builds(
    lambda system, turns: {**({"systemInstruction": {"parts": [{"text": system}]}} if system is not None else {}),
                           "contents": [{**({"role": role} if role else {}), "parts": parts} for role, parts in turns]},
    st.one_of(st.none(), text_strategy), st.lists(turn_strategy, min_size=1, max_size=4))


@settings(max_examples=150, deadline=None)
@given(records=st.lists(record_strategy, min_size=2, max_size=12), case=st.booleans(), punctuation=st.booleans())
def test_exact_keys_are_equal_exactly_when_the_normalised_texts_are(records, case, punctuation):
    settings_ = replace(DedupSettings.from_profile(load_profile("gemini-2.5-flash").dedup), case=case,
                        punctuation=punctuation)
    builder = FeatureBuilder(settings_, dedup=False)
    examples = [to_example(record, Origin("t", i + 1, 0, 1)) for i, record in enumerate(records)]
    for example in examples:
        builder.add(example)
    chunk = builder.finish()
    strings = [reference_strings(example, case, punctuation) for example in examples]
    for k, name in enumerate(["exact", "prompt", "response", "asked"]):
        keys = getattr(chunk, name)
        for i in range(len(examples)):
            for j in range(len(examples)):
                assert (keys[i] == keys[j]) == (strings[i][k] == strings[j][k]), (name, records[i], records[j])


def test_a_bare_prompt_is_asked_as_a_training_prompt():
    builder = FeatureBuilder(DedupSettings.from_profile(load_profile("gemini-2.5-flash").dedup), dedup=False)
    builder.add(to_example({"systemInstruction": {"parts": [{"text": "Be brief."}]},
                            "contents": [{"role": "user", "parts": [{"text": "What is  the capital of France?"}]},
                                         {"role": "model", "parts": [{"text": "Paris."}]}]}, Origin("t", 1, 0, 1)))
    builder.add(to_example({"contents": [{"role": "user", "parts": [{"text": "what is the capital of france?\n"}]}]},
                           Origin("e", 1, 0, 1)))
    chunk = builder.finish()
    assert chunk.asked[0] == chunk.asked[1]
    assert chunk.prompt[0] != chunk.prompt[1] and chunk.exact[0] != chunk.exact[1]


def test_collapsing_whitespace_commutes_with_nfc_and_case_folding():
    # exact_fold leaves whitespace to the kernel: that is exact_text only if NFC and casefold()
    # map whitespace to whitespace and nothing else to it, and `spaces()` is what str.split() uses.
    table = spaces()
    for c in range(sys.maxunicode + 1):
        if 0xD800 <= c < 0xE000:
            continue
        char = chr(c)
        space = char.isspace()
        assert (c < table.size and table[c] == 1) == space, hex(c)
        for folded in (unicodedata.normalize("NFC", char), char.casefold(), char.lower()):
            if space:
                assert folded.isspace(), hex(c)
            else:
                assert not any(f.isspace() for f in folded), hex(c)


@pytest.mark.parametrize("text", ["", " ", "a", "a b", " a\t\u3000b \n", "ab" * 3, "abc", "x" * 1001, "日本 語"])
def test_a_piece_key_depends_on_its_collapsed_text_only(text):
    def key(piece: str) -> int:
        cp = np.frombuffer(piece.encode("utf-32-le"), dtype=np.uint32)
        return int(kernels.exact_keys(cp, np.array([0, cp.size]), np.zeros(1, dtype=np.uint64),
                                      np.array([0, 1]), np.array([-1]), np.zeros(1, dtype=np.uint64),
                                      np.uint64(1), spaces())[1][0])  # the prompt key: the system text

    collapsed = " ".join(text.split())
    assert key(text) == key(collapsed) == key(f"  {collapsed}\n")
    assert key(text) != key(collapsed + "a")
    assert not collapsed or key(text) != key(collapsed[:-1])


# --- n-gram windows against an index -------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(counts=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15)), min_size=1, max_size=12),
       sizes=st.data(), data=st.data())
def test_window_hits_are_the_windows_the_index_finds(counts, sizes, data):
    # A tiny alphabet, so that windows repeat within and across records and the index holds some.
    prompt = np.array([c[0] for c in counts], dtype=np.int64)
    response = np.array([c[1] for c in counts], dtype=np.int64)
    total = prompt + response
    tokens = np.array(data.draw(st.lists(st.integers(0, 3), min_size=int(total.sum()), max_size=int(total.sum()))),
                      dtype=np.uint32)
    size = np.array(sizes.draw(st.lists(st.sampled_from([1, 2, 3, 13]), min_size=len(counts),
                                        max_size=len(counts))), dtype=np.int64)
    query = np.array(data.draw(st.lists(st.integers(0, 3), max_size=40)), dtype=np.uint32)
    q_counts = np.array([query.size], dtype=np.int64)
    indexed = []
    for s in (1, 2, 3, 13):
        h, o, _ = windows(query, q_counts, s)
        indexed.append(h)
    index = NgramIndex(np.concatenate(indexed), np.zeros(sum(h.size for h in indexed), dtype=np.int64))
    starts = np.cumsum(total) - total
    for side in (prompt, total):  # the prompt sides, then whole records
        part = np.concatenate([tokens[a:a + c] for a, c in zip(starts, side, strict=True)]) if tokens.size else tokens
        h, o, p = windows(part, side, size)
        hit = np.flatnonzero(np.isin(h, index.grams))  # the windows the index holds
        order = np.lexsort((p[hit], o[hit]))  # `windows` groups by size; hits come in record order
        got_g, got_o = index.hits(tokens, starts, side, size)
        assert np.array_equal(index.grams[got_g], h[hit][order]) and np.array_equal(got_o, o[hit][order])
        which, held = index.owners(got_g)  # every query record holding the gram: here only record 0
        assert np.array_equal(which, np.arange(got_g.size)) and not held.any()


def test_the_probe_filter_lets_few_absent_hashes_through():
    # Every indexed hash passes; of hashes not indexed, fewer than 1 in 40 (the lookup after
    # the filter settles them). Seeded, so the count is the same on every run.
    from sftgate.analysis.ngrams import NgramProbe, filter_bits

    rng = np.random.default_rng(7)
    grams = np.unique(rng.integers(0, 2**64 - 1, 100_000, dtype=np.uint64))
    probe = NgramProbe(grams)

    def passes(hashes: np.ndarray) -> np.ndarray:
        bits = filter_bits(hashes)
        return (probe.words[(hashes >> probe.shift).astype(np.int64)] & bits) == bits

    assert passes(grams).all()
    absent = rng.integers(0, 2**64 - 1, 1_000_000, dtype=np.uint64)
    absent = absent[~np.isin(absent, grams)]
    assert passes(absent).mean() < 1 / 40


def test_window_hits_refuse_sizes_the_multipliers_do_not_cover():
    index = NgramIndex(np.array([1], dtype=np.uint64), np.array([0]))
    with pytest.raises(ValueError):
        index.hits(np.zeros(100, dtype=np.uint32), np.array([0]), np.array([100]), np.array([MAX_SIZE + 1]))


@settings(max_examples=150, deadline=None)
@given(counts=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15)), min_size=1, max_size=12), data=st.data())
def test_record_windows_are_the_windows_in_record_order(counts, data):
    from sftgate.analysis.ngrams import record_windows

    prompt = np.array([c[0] for c in counts], dtype=np.int64)
    response = np.array([c[1] for c in counts], dtype=np.int64)
    total = prompt + response
    tokens = np.array(data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=int(total.sum()),
                                         max_size=int(total.sum()))), dtype=np.uint32)
    size = np.array(data.draw(st.lists(st.sampled_from([1, 2, 3, 13]), min_size=len(counts), max_size=len(counts))),
                    dtype=np.int64)
    starts = np.cumsum(total) - total
    for at, side in ((starts, prompt), (starts + prompt, response)):  # prompt sides, then response sides
        part = np.concatenate([tokens[a:a + c] for a, c in zip(at, side, strict=True)]) if tokens.size else tokens
        h, o, p = windows(part, side, size)
        order = np.lexsort((p, o))
        got = record_windows(tokens, at, side, size)
        assert all(np.array_equal(g, w[order]) for g, w in zip(got, (h, o, p), strict=True))


# --- pairs sharing n-grams ------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n_query=st.integers(1, 6), n_train=st.integers(1, 8), base=st.integers(0, 5))
def test_shared_pairs_count_the_grams_each_pair_holds_in_common(data, n_query, n_train, base):
    # An index of query records' grams (numbered 0..n_grams-1) and training records' hits on
    # them, against a count over Python sets.
    n_grams = data.draw(st.integers(1, 10))
    query_sets = [set(data.draw(st.lists(st.integers(0, n_grams - 1), max_size=6))) for _ in range(n_query)]
    train_sets = [set(data.draw(st.lists(st.integers(0, n_grams - 1), max_size=6))) for _ in range(n_train)]
    owners = [[base + q for q in range(n_query) if g in query_sets[q]] for g in range(n_grams)]
    bounds = np.r_[0, np.cumsum([len(o) for o in owners])].astype(np.int64)
    flat_owners = np.array([q for o in owners for q in o], dtype=np.int64)
    hits = sorted((g, t) for t in range(n_train) for g in train_sets[t])  # by gram, then training record
    hit_train = np.array([t for _, t in hits], dtype=np.int64)
    hit_start = np.searchsorted(np.array([g for g, _ in hits], dtype=np.int64), np.arange(n_grams + 1))
    want = sorted((base + q, t, len(query_sets[q] & train_sets[t]))
                  for q in range(n_query) for t in range(n_train) if query_sets[q] & train_sets[t])
    query, train, count = kernels.shared_pairs(hit_start, hit_train, bounds, flat_owners, base, n_query, n_train)
    assert list(zip(query.tolist(), train.tolist(), count.tolist(), strict=True)) == want
    start, grams = kernels.pair_grams(query, train, hit_start, hit_train, bounds, flat_owners, base, n_query)
    for i, (q, t, _) in enumerate(want):
        assert grams[start[i]:start[i + 1]].tolist() == sorted(query_sets[q - base] & train_sets[t])


# --- sorting --------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(keys=st.lists(st.integers(0, 2**64 - 1) | st.sampled_from([0, 5, 2**63, 2**64 - 1]), max_size=60),
       data=st.data())
def test_radix_sort_is_a_stable_sort_by_key(keys, data):
    keys = np.array(keys, dtype=np.uint64)
    values = np.array(data.draw(st.lists(st.integers(-5, 5), min_size=keys.size, max_size=keys.size)), dtype=np.int64)
    got_keys, got_values = kernels.radix_sort(keys, values)
    order = np.argsort(keys, kind="stable")
    assert np.array_equal(got_keys, keys[order]) and np.array_equal(got_values, values[order])
    assert np.array_equal(kernels._radix_sorted(keys), np.sort(keys))  # without a payload


@settings(max_examples=150, deadline=None)
@given(pairs=st.lists(st.tuples(st.sampled_from([0, 7, 2**40 + 3, 2**64 - 1]) | st.integers(0, 2**64 - 1),
                                st.integers(0, 2**31 - 1) | st.integers(0, 3)), max_size=40),
       in_record_order=st.booleans())
def test_unique_pairs_are_the_distinct_pairs_sorted(pairs, in_record_order):
    from sftgate.analysis.ngrams import unique_pairs

    if in_record_order:  # as record_windows lists them: the compiled path
        pairs = sorted(pairs, key=lambda p: p[1])
    hashes = np.array([h for h, _ in pairs], dtype=np.uint64)
    records = np.array([r for _, r in pairs], dtype=np.int64)
    got_h, got_r = unique_pairs(hashes, records)
    want = sorted(set(pairs))
    assert list(zip(got_h.tolist(), got_r.tolist(), strict=True)) == want
