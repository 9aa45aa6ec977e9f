"""Content primitives (`sftgate.analysis.content`): timed patterns, language, JSON payloads and
the detectors of the built-in content rules."""

from __future__ import annotations

import contextlib
import pickle
import time

import pytest

from sftgate.analysis.content import (
    PatternTimeout,
    TimedPattern,
    check_json_schema,
    compression_ratio,
    control_character,
    detect_language,
    find_phrase,
    json_schema_errors,
    mojibake,
    parse_json_payload,
    prose,
    strip_controls,
    template_marker,
)

# --- TimedPattern --------------------------------------------------------------------------


def test_pattern_finds_the_first_span() -> None:
    pattern = TimedPattern(r"(?i)as an ai language model")
    assert pattern.search("Sure. As an AI language model, I...", timeout=0.5) == (6, 29)
    assert pattern.search("Paris is the capital of France.", timeout=0.5) is None


@pytest.mark.parametrize(("pattern", "text"), [(r"(a|aa)+$", "a" * 40 + "b"), (r"(a|a)+b", "a" * 40)])
def test_pathological_pattern_times_out_within_the_limit(pattern: str, text: str) -> None:
    timed = TimedPattern(pattern)
    start = time.perf_counter()
    with pytest.raises(PatternTimeout, match="longer than 0.2 s"):
        timed.search(text, timeout=0.2)
    assert time.perf_counter() - start < 1.0


def test_nested_quantifier_that_regex_optimises_does_not_hang() -> None:
    # The example: `regex` finishes it at once (re would backtrack for minutes).
    start = time.perf_counter()
    # A regex release without the optimisation stops it at the limit instead, which is the point.
    with contextlib.suppress(PatternTimeout):
        assert TimedPattern(r"(a+)+$").search("a" * 40 + "b", timeout=0.2) is None
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(("pattern", "reason"), [
    ("(unclosed", "missing ) at position 9"),
    ("[a-", "at position"),
    ("a{2,1}", "at position"),
    ("*x", "nothing to repeat at position 0"),
])
def test_invalid_pattern_is_a_one_line_value_error_with_its_position(pattern: str, reason: str) -> None:
    with pytest.raises(ValueError, match="invalid pattern") as info:
        TimedPattern(pattern)
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


def test_pattern_pickles_for_worker_processes() -> None:
    pattern = pickle.loads(pickle.dumps(TimedPattern(r"\bfoo\b")))
    assert pattern == TimedPattern(r"\bfoo\b")
    assert pattern.search("a foo b", timeout=0.5) == (2, 5)


# --- detect_language -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "code"), [
    ("How can I find the best 401k plan for my needs?", "en"),
    ("Bonjour, comment allez-vous aujourd'hui ?", "fr"),
    ("Guten Morgen, wie geht es dir heute?", "de"),
    ("你好，今天天气怎么样？", "zh"),
    ("今日はいい天気ですね。", "ja"),
])
def test_short_texts_get_their_language(text: str, code: str) -> None:
    found, probability = detect_language(text)
    assert found == code
    assert 0.5 < probability <= 1.0


@pytest.mark.parametrize("text", ["", "   ", "12345 !!!", "3.14 + 2.72 = 5.86", "😀😀", "ok", "--- | --- |"])
def test_texts_without_enough_letters_have_no_language(text: str) -> None:
    assert detect_language(text) == ("", 0.0)


def test_probabilities_are_normalised() -> None:
    _, probability = detect_language("The quick brown fox jumps over the lazy dog near the river bank.")
    assert 0.9 < probability <= 1.0


# --- parse_json_payload, json_schema_errors --------------------------------------------------


def test_json_payload_parses() -> None:
    assert parse_json_payload('{"label": "positive", "score": 0.9}') == ({"label": "positive", "score": 0.9}, None)
    assert parse_json_payload("  [1, 2, 3]\n") == ([1, 2, 3], None)
    assert parse_json_payload(str(2**70)) == (2**70, None)  # beyond orjson's integers


@pytest.mark.parametrize("text", ['```json\n{"a": 1}\n```', '\n ```JSON\n{"a": 1}\n```  \n', '```\n{"a": 1}```'])
def test_one_fenced_block_is_unwrapped(text: str) -> None:
    assert parse_json_payload(text) == ({"a": 1}, None)


def test_fence_is_not_unwrapped_when_not_allowed_or_not_alone() -> None:
    value, reason = parse_json_payload('```json\n{"a": 1}\n```', allow_fence=False)
    assert value is None and reason is not None and "line 1 column 1" in reason
    value, reason = parse_json_payload('Here it is:\n```json\n{"a": 1}\n```')
    assert value is None and reason is not None
    value, reason = parse_json_payload('```json\n{"a": 1}\n```\n```json\n{"b": 2}\n```')
    assert value is None and reason is not None


def test_invalid_json_reason_gives_line_and_column_in_the_text() -> None:
    value, reason = parse_json_payload('{\n  "a": 1,\n  "b": }')
    assert value is None
    assert reason == "Expecting value at line 3 column 8"
    # inside a fence, lines count from the text's first line (the fence is line 1)
    _, reason = parse_json_payload('```json\n{\n  "a": 1,\n  "b": }\n```')
    assert reason == "Expecting value at line 4 column 8"


@pytest.mark.parametrize(("text", "reason"), [("", "empty text"), ("```json\n\n```", "empty code block"),
                                              ("NaN", "NaN is not JSON"), ('{"a": 1} extra', "Extra data")])
def test_json_payload_problems(text: str, reason: str) -> None:
    value, found = parse_json_payload(text)
    assert value is None and found is not None and reason in found


SCHEMA = {
    "type": "object",
    "required": ["label", "score"],
    "additionalProperties": False,
    "properties": {"label": {"enum": ["positive", "negative"]}, "score": {"type": "number"},
                   "tags": {"type": "array", "items": {"type": "string"}}},
}


def test_schema_errors_are_pointer_and_message() -> None:
    assert json_schema_errors({"label": "positive", "score": 1}, SCHEMA) == []
    errors = json_schema_errors({"label": "neutral", "tags": ["a", 2]}, SCHEMA)
    assert errors == [
        "(root): 'score' is a required property",
        "/label: 'neutral' is not one of ['positive', 'negative']",
        "/tags/1: 2 is not of type 'string'",
    ]
    assert len(json_schema_errors({"label": "x", "tags": [1, 2, 3]}, SCHEMA, limit=2)) == 2


def test_schema_validator_is_compiled_once_per_schema() -> None:
    from sftgate.analysis import content

    json_schema_errors({}, SCHEMA)
    held = content._VALIDATORS[id(SCHEMA)]
    json_schema_errors({"label": "positive"}, SCHEMA)
    assert content._VALIDATORS[id(SCHEMA)] is held


def test_invalid_schema_is_a_value_error() -> None:
    check_json_schema(SCHEMA)
    with pytest.raises(ValueError, match=r"invalid JSON Schema: /properties/score/type: "):
        check_json_schema({"properties": {"score": {"type": "numbr"}}})


# --- find_phrase ---------------------------------------------------------------------------

PHRASES = ("as an AI language model", "I'm sorry, but I can't", "I cannot fulfill", "as an AI,", "my knowledge cutoff")


@pytest.mark.parametrize(("text", "found"), [
    ("As an AI language model, I have no opinions.", "As an AI language model"),
    ("I’m sorry, but I can’t help with that.", "I’m sorry, but I can’t"),  # curly apostrophes
    ("I'm sorry but I can't do that.", "I'm sorry but I can't"),  # the inner comma is optional
    ("Well... I CANNOT FULFILL this request", "I CANNOT FULFILL"),
    ("As an AI, I do not have consciousness", "As an AI,"),
    ("as of my knowledge\ncutoff in 2021", "my knowledge\ncutoff"),
    ("Über: I cannot fulfill it", "I cannot fulfill"),  # non-ASCII text
])
def test_phrase_found_as_written(text: str, found: str) -> None:
    assert find_phrase(text, PHRASES) == found


@pytest.mark.parametrize("text", [
    "I cannot fulfilling", "I was writing to you not as an AI tool, but as a person",
    "Paris is the capital of France.", "MYI cannot fulfill", "",
])
def test_phrase_not_found(text: str) -> None:
    assert find_phrase(text, PHRASES) is None


def test_no_phrases_find_nothing() -> None:
    assert find_phrase("As an AI language model", ()) is None


# --- mojibake ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "found"), [
    ("It\u00e2\u20ac\u2122s a caf\u00c3\u00a9", "\u00e2\u20ac\u2122"),  # Itâ€™s a cafÃ©
    ("caf\u00c3\u00a9 au lait", "\u00c3\u00a9"),
    ("30\u00c2\u00b0C", "\u00c2\u00b0"),
    ("\u00d0\u0178\u00d1\u20ac\u00d0\u00b8\u00d0\u00b2\u00d0\u00b5\u00d1\u201a", "\u00d0\u0178"),  # Привет
    ("\u00e4\u00b8\u00ad\u00e6\u2013\u2021", "\u00e4\u00b8\u00ad"),  # 中文
    ("\u00f0\u0178\u02dc\u20ac party", "\u00f0\u0178\u02dc\u20ac"),  # 😀
    ("Zaku\u00c5\u201a\u00c3\u00b3w", "\u00c5\u201a"),  # Zakułów read as CP1252
    ("lost \ufffd\ufffd bytes", "\ufffd\ufffd"),
])
def test_mojibake_found(text: str, found: str) -> None:
    assert mojibake(text) == found


@pytest.mark.parametrize("text", [
    "Plain ASCII text.", "café au lait, naïve, Zürich", "Fuß“ und Straße“", "«Il est allé…»", "JOSÉ… SÃO PAULO",
    "Zażółć gęślą jaźń", "TPSA: 112 Å²", "Nº 5, 3×4", "Привет, мир", "中文和日本語", "Ελληνικά", "שלום", "😀 ok",
])
def test_real_text_is_not_mojibake(text: str) -> None:
    assert mojibake(text) is None


# --- control characters --------------------------------------------------------------------


@pytest.mark.parametrize(("text", "found"), [
    ("a\x00b", (1, "\x00")), ("\x1b[31mred", (0, "\x1b")), ("5:00pm\x028:00pm", (6, "\x02")),
    ("x\x7f", (1, "\x7f")), ("smart\x92quote", (5, "\x92")), ("page\x0cbreak", (4, "\x0c")),
])
def test_control_character_found(text: str, found: tuple[int, str]) -> None:
    assert control_character(text) == found


@pytest.mark.parametrize("text", ["tab\tnew\nline\r\n", "emoji 👨\u200d👩\u200d👧", "می\u200cخواهم",
                                  "\u200fשלום", "no-break\u00a0space", ""])
def test_allowed_characters_are_not_controls(text: str) -> None:
    assert control_character(text) is None


def test_strip_controls() -> None:
    assert strip_controls("\x1b[31mError\x1b[0m: x\x00y") == "Error: xy"
    assert strip_controls("page\x0cbreak\x0bv\x85nel") == "page\nbreak\nv\nnel"
    assert strip_controls("tab\tok\r\n") == "tab\tok\r\n"
    assert control_character(strip_controls("".join(map(chr, range(0xA0))))) is None


# --- compression ratio ---------------------------------------------------------------------


def test_compression_ratio_separates_loops_from_prose() -> None:
    text = ("The Chernobyl nuclear power plant accident happened on April 26, 1986. It was a major nuclear "
            "accident that occurred in Ukraine, then part of the Soviet Union. Honeycombs are a natural "
            "phenomenon formed by bees using their specialized glands to produce wax.")
    ratio = compression_ratio(text)
    assert ratio > 1.0 and ratio < 2.5
    assert compression_ratio("I love you. " * 100) > 20
    assert compression_ratio("") == 0.0


def test_prose_leaves_out_code_tables_and_drawings() -> None:
    text = "Intro\n\n```sql\nSELECT 1;\n```\n| a | b |\n|---|---|\n+-----+\n|  x  |\n+-----+\nOutro  text"
    assert prose(text) == "Intro Outro text"


# --- template markers ----------------------------------------------------------------------

MARKERS = ("<|im_start|>", "[INST]", "[/INST]", "<s>", "</s>", "### Instruction:", "{{")


@pytest.mark.parametrize(("text", "found"), [
    ("<|im_start|>user\nHi<|im_end|>", "<|im_start|>"),
    ("<s>[INST] Summarise this [/INST]", "<s>"),
    ("Summarise this [/INST]", "[/INST]"),
    ("The answer.</s>", "</s>"),
    ("Dear {{ first_name }}, thanks", "{{ first_name }}"),
    ("### Instruction:\nTranslate", "### Instruction:"),
])
def test_marker_found(text: str, found: str) -> None:
    assert template_marker(text, MARKERS) == found


@pytest.mark.parametrize("text", [
    "Use `{{ name }}` in a Jinja template.",
    "```html\n<p>Hello {{ user.name }}</p>\n```",
    "Llama 2 prompts look like `<s>[INST] ... [/INST]`.",
    r"where $\mathbb{1}\_{{A}}$ is the indicator",
    "Strike <s>this</s> out in HTML.",
    "A set {{1, 2}, {3}} of sets",
    "Plain text without markers.",
])
def test_marker_not_found(text: str) -> None:
    assert template_marker(text, MARKERS) is None


# --- CNT003's fix (rules/content.py), on the raw record ----------------------------------------


def test_control_character_fix_cleans_every_text_part() -> None:
    from sftgate.config import load_profile
    from sftgate.rules.base import RuleContext
    from sftgate.rules.content import ControlCharacter

    record = {"systemInstruction": {"parts": [{"text": "Be brief.\x00"}]},
              "contents": [{"role": "user", "parts": [{"text": "5:00pm\x028:00pm"}, {"fileData": {"fileUri": "gs://b/x.png", "mimeType": "image/png"}}]},
                           {"role": "model", "parts": [{"text": "\x1b[31mError\x1b[0m\x0cnext"}]}]}
    assert ControlCharacter().fix(record, RuleContext(profile=load_profile())) is True
    assert record["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert record["contents"][0]["parts"][0]["text"] == "5:00pm8:00pm"
    assert record["contents"][1]["parts"][0]["text"] == "Error\nnext"
    assert record["contents"][0]["parts"][1] == {"fileData": {"fileUri": "gs://b/x.png", "mimeType": "image/png"}}


def test_control_character_fix_fails_when_a_part_is_left_empty() -> None:
    from sftgate.config import load_profile
    from sftgate.rules.base import RuleContext
    from sftgate.rules.content import ControlCharacter

    record = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}, {"role": "model", "parts": [{"text": "\x00\x01"}]}]}
    assert ControlCharacter().fix(record, RuleContext(profile=load_profile())) is False
