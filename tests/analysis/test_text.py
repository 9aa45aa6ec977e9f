"""Exact keys, folding and token hashing (`sftgate.analysis.text`)."""

from __future__ import annotations

import numpy as np
import pytest

from sftgate.analysis import text
from sftgate.analysis.text import exact_text, fold, key64, token_hashes

# Open-Assistant en_100_tree (Apache-2.0).
CHERNOBYL = ("The Chernobyl nuclear power plant accident happened on April 26, 1986. It was a major nuclear "
             "accident that occurred in Ukraine, then part of the Soviet Union.")
HONEYCOMB = "Honeycombs are a natural phenomenon. They are formed by bees using their specialized glands."


def tokens(s: str) -> list[int]:
    """The token hashes of one folded text."""
    hashes, counts, _ = token_hashes([fold(s)])
    assert counts.tolist() == [hashes.size]
    return hashes.tolist()


def split(hashes: np.ndarray, counts: np.ndarray) -> list[list[int]]:
    ends = np.cumsum(counts)
    return [hashes[e - c:e].tolist() for c, e in zip(counts.tolist(), ends.tolist(), strict=True)]


# --- token_hashes --------------------------------------------------------------------------------


def test_tokens_are_runs_of_letters_digits_and_underscores():
    hashes, counts, spaceless = token_hashes(["it's snake_case, 26 April 1986!"])
    # it / s / snake_case / 26 / april / 1986: the apostrophe splits, the underscore does not.
    assert counts.tolist() == [6] and spaceless.tolist() == [0]
    assert hashes.dtype == np.uint64


def test_equal_tokens_hash_equally_wherever_they_are():
    first = tokens("the accident happened at the plant")
    assert first[0] == first[4]  # "the" twice in one text
    other = tokens("The plant: the accident.")
    assert set(other) == {first[0], first[1], first[5]}
    assert len(set(first)) == 5  # different words, different hashes


def test_equal_tokens_hash_equally_across_calls_and_batches(monkeypatch):
    texts = [fold(t) for t in (CHERNOBYL, HONEYCOMB, "", "bees" * 3, CHERNOBYL, "中文字", HONEYCOMB)] * 5
    whole = token_hashes(texts)
    monkeypatch.setattr(text, "_BATCH_CHARS", 16)  # a batch per text or two, and a text longer than a batch
    batched = token_hashes(texts)
    for a, b in zip(whole, batched, strict=True):
        np.testing.assert_array_equal(a, b)
    one_by_one = [token_hashes([t]) for t in texts]
    assert split(whole[0], whole[1]) == [h.tolist() for h, _, _ in one_by_one]


def test_counts_and_spaceless_per_text():
    hashes, counts, spaceless = token_hashes(["bees build honeycombs", "", "蜜蜂 build 蜂巢", "。、"])
    assert counts.tolist() == [3, 0, 5, 0]
    assert spaceless.tolist() == [0, 0, 4, 0]
    assert hashes.size == 8


@pytest.mark.parametrize(("sample", "n"), [
    ("桃花源记", 4),  # CJK unified ideographs
    ("ひらがなカタカナ", 8),  # kana
    ("สวัสดี", 6),  # Thai: every code point, vowel signs included
    ("ພາສາລາວ", 7),  # Lao
    ("\U00020000\U0002a6d6", 2),  # CJK extension B, outside the BMP
])
def test_spaceless_scripts_are_one_token_per_character(sample, n):
    _, counts, spaceless = token_hashes([fold(sample)])
    assert counts.tolist() == [n] and spaceless.tolist() == [n]


def test_spaceless_characters_hash_like_the_same_character_elsewhere():
    a = tokens("桃花")
    b = tokens("花桃 and 桃")
    assert b[0] == a[1] and b[1] == a[0] and b[3] == a[0]


def test_other_astral_characters_are_no_tokens():
    _, counts, _ = token_hashes(["🐝🍯", "bees 🐝 honey"])
    assert counts.tolist() == [0, 2]


def test_nul_inside_a_text_separates_tokens_and_keeps_counts():
    hashes, counts, _ = token_hashes(["bees\x00honey", "\x00", "pollen\x00"])
    assert counts.tolist() == [2, 0, 1]
    assert hashes.tolist() == tokens("bees honey") + tokens("pollen")


def test_empty_inputs():
    hashes, counts, spaceless = token_hashes([])
    assert hashes.size == counts.size == spaceless.size == 0
    hashes, counts, spaceless = token_hashes(["", "", ""])
    assert hashes.size == 0 and counts.tolist() == [0, 0, 0] and spaceless.tolist() == [0, 0, 0]


def test_lone_surrogate_does_not_break_hashing():
    _, counts, _ = token_hashes(["bees\ud800honey"])
    assert counts.tolist() == [2]


def test_combining_marks_belong_to_their_word():
    assert len(tokens("हिन्दी")) == 1
    assert tokens("दिन") != tokens("दान")


# --- fold ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "folded"), [
    ("ＡＢＣ１２３", "abc123"),  # full-width
    ("ﬁne", "fine"),  # ligature
    ("Straße", "strasse"),  # full case folding, not lower()
    ("Cafe\u0301", "café"),  # composed
    ("HELLO World", "hello world"),
])
def test_fold(raw, folded):
    assert fold(raw) == folded


def test_folded_variants_give_the_same_tokens():
    assert tokens("ＡＰＲＩＬ 26, 1986") == tokens("april 26 1986")
    assert tokens("The ﬁrst STEP") == tokens("the first step")


# --- exact_text and key64 ------------------------------------------------------------------------


def test_exact_text_collapses_whitespace_and_composes():
    assert exact_text("  Who  are\tyou?\n\u00a0") == "who are you?"
    assert exact_text("Cafe\u0301") == exact_text("Café")
    assert exact_text("ideographic\u3000space") == "ideographic space"


def test_exact_text_case_option():
    assert exact_text("Who Are You?") == "who are you?"
    assert exact_text("Who Are You?", case=False) == "Who Are You?"
    assert exact_text("STRASSE") == exact_text("straße")


def test_exact_text_punctuation_option():
    assert exact_text("Who are you?") != exact_text("Who are you")
    assert exact_text("“Who” are you?", punctuation=True) == "who are you"
    assert exact_text("¿Qué — tal?", punctuation=True) == "qué tal"
    assert exact_text("$5 + 3 = 8", punctuation=True) == "$5 + 3 = 8"  # symbols are not punctuation


def test_exact_text_keeps_full_width_forms_apart():
    # NFC, not NFKC: exact duplicates are exact; fold() is the lenient form.
    assert exact_text("ＡＢＣ") != exact_text("ABC")


def test_key64_is_a_stable_64_bit_key():
    assert key64("who are you?") == key64("who are you?")
    assert key64("who are you?") != key64("who are you")
    keys = {key64(f"line {i}") for i in range(10_000)}
    assert len(keys) == 10_000
    assert all(0 <= k < 1 << 64 for k in keys)
    assert isinstance(key64("\ud800"), int)  # a lone surrogate from JSON does not raise


def test_json_text_is_compact_with_keys_sorted():
    from sftgate.analysis.text import json_text

    assert json_text({"b": [1, "é"], "a": None}) == '{"a":null,"b":[1,"é"]}'
