"""Exact similarity of token sequences and the size of a replaced span (`sftgate.analysis.similarity`)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.analysis import similarity
from sftgate.analysis.similarity import Match, changed_span, compare, overlap
from sftgate.analysis.text import fold, token_hashes

# Open-Assistant en_100_tree (Apache-2.0): three sentences of one answer.
FIRST = "The Chernobyl nuclear power plant accident happened on April 26, 1986."
SECOND = "It was a major nuclear accident that occurred in Ukraine, then part of the Soviet Union."
THIRD = "The explosion at the reactor caused a fire and released radioactive material into the atmosphere."
ANSWER = f"{FIRST} {SECOND} {THIRD}"


def tokens(text: str) -> list[int]:
    return token_hashes([fold(text)])[0].tolist()


# --- compare and overlap -------------------------------------------------------------------------


def test_identical():
    a = tokens(ANSWER)
    assert compare(a, list(a)) == Match(1.0, 1.0, len(a), 0)
    assert changed_span(a, list(a)) == 0
    assert overlap(a, list(a)) == 1.0


def test_typo_costs_one_token_on_each_side():
    a, b = tokens(ANSWER), tokens(ANSWER.replace("happened", "hapened"))
    m = compare(a, b)
    assert m.similarity == pytest.approx(1 - 2 / (2 * len(a)))
    assert m.containment == pytest.approx(1 - 1 / len(a))
    assert m.shorter == len(a)
    assert m.replaced_at_most == 1


def test_appended_boilerplate_is_contained():
    a = tokens(ANSWER)
    b = tokens(ANSWER + " I hope this helps! Let me know if you have any other questions.")
    m = compare(a, b)
    assert m.containment == 1.0
    assert m.similarity == pytest.approx(2 * len(a) / (len(a) + len(b)))
    assert m.shorter == len(a)
    assert m.replaced_at_most == 0  # nothing of the shorter side is missing from the longer


def test_swapped_sentences_have_the_same_token_set():
    a, b = tokens(ANSWER), tokens(f"{SECOND} {FIRST} {THIRD}")
    assert overlap(a, b) == 1.0
    assert compare(a, b).similarity < 1.0


def test_overlap_is_the_jaccard_of_token_sets():
    assert overlap([1, 2, 3, 3], [3, 4]) == pytest.approx(1 / 4)
    assert overlap([], []) == 1.0
    assert overlap([], [1]) == 0.0


def test_empty_sides():
    assert compare([], []) == Match(1.0, 1.0, 0, 0)
    assert compare([], [1, 2]) == Match(0.0, 0.0, 0, 0)
    assert compare([1, 2], []).shorter == 0


def test_very_long_sides_fall_back_to_token_sets(monkeypatch):
    monkeypatch.setattr(similarity, "_LONG", 10)
    a = tokens(ANSWER)
    b = tokens(f"{THIRD} {SECOND} novel words here {FIRST}")
    m = compare(a, b)
    assert m.similarity == m.containment == overlap(a, b)
    assert m.similarity == pytest.approx(len(set(a)) / len(set(a) | set(b)))
    assert changed_span(a, b) == 0


@settings(max_examples=300, deadline=None)
@given(a=st.lists(st.integers(0, 8), max_size=30), b=st.lists(st.integers(0, 8), max_size=30))
def test_replaced_at_most_bounds_changed_span(a, b):
    # Verification skips the alignment walk when this bound is within the limit.
    m = compare(a, b)
    assert changed_span(a, b) <= m.replaced_at_most <= m.shorter
    assert 0.0 <= m.similarity <= m.containment + 1e-12 <= 1.0 + 1e-12
    assert compare(b, a) == m


# --- changed_span --------------------------------------------------------------------------------


def test_changed_span_of_one_typo_is_one():
    assert changed_span(tokens(ANSWER), tokens(ANSWER.replace("happened", "hapened"))) == 1


def test_changed_span_of_scattered_typos_is_one():
    typos = ANSWER.replace("happened", "hapened").replace("radioactive", "radioactvie").replace("Union", "Unoin")
    assert changed_span(tokens(ANSWER), tokens(typos)) == 1


def test_changed_span_of_two_neighbouring_edits_is_two():
    assert changed_span(tokens(ANSWER), tokens(ANSWER.replace("major nuclear", "grave atomic"))) == 2


def test_changed_span_of_a_moved_sentence_is_zero():
    assert changed_span(tokens(ANSWER), tokens(f"{SECOND} {THIRD} {FIRST}")) == 0
    assert changed_span(tokens(ANSWER), tokens(f"{FIRST} {THIRD} {SECOND}")) == 0


def test_changed_span_of_a_replaced_sentence_is_its_length():
    old = "It was a major nuclear accident."
    new = "Thousands fled Pripyat within two days."
    a, b = tokens(f"{FIRST} {old} {THIRD}"), tokens(f"{FIRST} {new} {THIRD}")
    assert changed_span(a, b) == len(tokens(old)) == len(tokens(new)) == 6


def test_a_word_shared_by_chance_does_not_split_a_replaced_sentence():
    old = "It was a major nuclear accident in Ukraine."
    new = "Thousands fled Pripyat in under two days."
    a, b = tokens(f"{FIRST} {old} {THIRD}"), tokens(f"{FIRST} {new} {THIRD}")
    assert changed_span(a, b) >= 6  # seven new words on each side, "in" matched between them


def test_replaced_spans_count_only_new_tokens():
    # The question of a templated example replaced by a shorter one: min(new deleted, new inserted).
    a = tokens("Read the chat and answer: Which time did Person 2 suggest first?")
    b = tokens("Read the chat and answer: Who suggests the coffee shop?")
    # which, time, did, person, 2, suggest, first replaced by who, suggests, the, coffee, shop.
    assert changed_span(a, b) == 5


@pytest.mark.parametrize("edit", [
    lambda s: s + " I hope this helps! Let me know if you have any other questions.",
    lambda s: "Sure, here is the answer. " + s,
    lambda s: s[: s.index(" The explosion")],  # truncation
    lambda s: s.replace(" It was a major", " It was, to be fair, a major"),  # an insertion in the middle
])
def test_changed_span_of_a_pure_insertion_or_deletion_is_zero(edit):
    assert changed_span(tokens(ANSWER), tokens(edit(ANSWER))) == 0
    assert changed_span(tokens(edit(ANSWER)), tokens(ANSWER)) == 0


def test_changed_span_is_symmetric_on_replacements():
    a = tokens(ANSWER)
    b = tokens(ANSWER.replace("Ukraine, then part of the Soviet Union", "a republic governed from Moscow"))
    assert changed_span(a, b) == changed_span(b, a) == 5
