"""Text content primitives: timed patterns, language, JSON payloads, and the cheap detectors the
built-in content rules use (phrases, mojibake, control characters, repetition, template markers).

Nothing here knows about rules or profiles. Every detector that runs on every text returns
`None` fast when a quick test (an `isascii()`, a substring, one compiled search) finds nothing,
and compiles what it needs once per process (per phrase or marker tuple).
"""

from __future__ import annotations

import contextlib
import re
import zlib
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import regex

# --- user patterns, run with a time limit ---------------------------------------------------


class PatternTimeout(Exception):
    """A pattern's search hit its time limit (catastrophic backtracking on this text)."""


class TimedPattern:
    """A user's regular expression, compiled once with the `regex` module (which can stop a
    search after a time limit) and searched with a limit per call.

    `regex` is mostly compatible with `re` (version 0 behaviour); it also optimises some classic
    pathological forms (`(a+)+$` finishes at once) but not all (`(a|aa)+$` does not), which is
    why the limit is needed.
    """

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str) -> None:
        if not isinstance(pattern, str):
            raise ValueError(f"a pattern is a string, not {type(pattern).__name__}")  # noqa: TRY004 - one error kind for the loader
        try:
            self._compiled = regex.compile(pattern)
        except regex.error as exc:
            where = f" at position {exc.pos}" if getattr(exc, "pos", None) is not None else ""
            raise ValueError(f"invalid pattern: {exc.msg if hasattr(exc, 'msg') else exc}{where}") from None
        except (OverflowError, RecursionError) as exc:  # absurd repeat counts, deep nesting
            raise ValueError(f"invalid pattern: {exc}") from None
        self.pattern = pattern

    def search(self, text: str, timeout: float) -> tuple[int, int] | None:
        """The span of the first match, or None; PatternTimeout after `timeout` seconds."""
        try:
            match = self._compiled.search(text, timeout=timeout)
        except TimeoutError:
            raise PatternTimeout(f"pattern {self.pattern!r} took longer than {timeout:g} s") from None
        return None if match is None else match.span()

    def __reduce__(self) -> tuple[Any, ...]:  # travels to worker processes with the profile
        return (TimedPattern, (self.pattern,))

    def __repr__(self) -> str:
        return f"TimedPattern({self.pattern!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TimedPattern) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)


# --- language ------------------------------------------------------------------------------

_IDENTIFIER: Any = None
_LANGUAGE_MIN_LETTERS = 3  # "ok", "Hi" are too short to tell; an ideograph or kana counts 2 ("你好")
_LANGUAGE_MAX_CHARS = 4096  # the first 4 KiB tell the language; the rest only costs time


def _identifier() -> Any:
    global _IDENTIFIER
    if _IDENTIFIER is None:
        from py3langid import langid  # 0.8 s to load the model: only when a rule asks

        if hasattr(langid.LanguageIdentifier, "from_model_file"):  # py3langid >= 0.3
            _IDENTIFIER = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
        else:  # pragma: no cover - older releases
            _IDENTIFIER = langid.LanguageIdentifier.from_pickled_model(langid.MODEL_FILE, norm_probs=True)
    return _IDENTIFIER


def _enough_letters(text: str) -> bool:
    letters = 0
    for ch in text:
        if ch.isalpha():
            letters += 2 if ch >= "\u2e80" else 1  # CJK, kana, hangul: a word in one or two characters
            if letters >= _LANGUAGE_MIN_LETTERS:
                return True
    return False


def detect_language(text: str) -> tuple[str, float]:
    """The text's language (ISO 639-1, as py3langid names it) and its probability in [0, 1]
    (normalised over the languages the model knows); `("", 0.0)` for a text too short to tell
    (fewer than 3 letters, an ideograph or kana counting 2) or without letters. Only the first
    4,096 characters are read."""
    sample = text[:_LANGUAGE_MAX_CHARS]
    if not _enough_letters(sample):
        return ("", 0.0)
    code, prob = _identifier().classify(sample)
    return (str(code), max(0.0, min(1.0, float(prob))))


# --- JSON payloads -------------------------------------------------------------------------

_FENCE = re.compile(r"\A\s*```[ \t]*(?:json)?[ \t]*\r?\n(.*?)\r?\n?[ \t]*```\s*\Z", re.DOTALL | re.IGNORECASE)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_payload(text: str, allow_fence: bool = True) -> tuple[Any, str | None]:
    """`(value, None)` when `text` is one JSON value, else `(None, reason)` with the line and
    column of the problem (in `text`). With `allow_fence`, a text that is exactly one fenced
    block (```json or ```, surrounding whitespace allowed) is unwrapped first."""
    import json

    import orjson

    body, line_shift = text, 0
    if allow_fence and "```" in text:
        fenced = _FENCE.match(text)
        if fenced is not None and "```" not in fenced.group(1):
            body = fenced.group(1)
            line_shift = text.count("\n", 0, fenced.start(1))
    if not body.strip():
        return None, "empty text" if not line_shift else "empty code block"
    with contextlib.suppress(orjson.JSONDecodeError):  # diagnosed below; the stdlib also reads big integers
        return orjson.loads(body), None
    try:
        return json.loads(body, parse_constant=_reject_constant), None
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at line {exc.lineno + line_shift} column {exc.colno}"
    except ValueError as exc:  # NaN, Infinity
        return None, str(exc)
    except RecursionError:
        return None, "nested too deeply"


_VALIDATORS: dict[int, tuple[Mapping[str, Any], Any]] = {}


def _validator(schema: Mapping[str, Any]) -> Any:
    held = _VALIDATORS.get(id(schema))
    if held is not None and held[0] is schema:  # the schema is kept alive, so its id is not reused
        return held[1]
    from jsonschema import (
        Draft202012Validator,  # 0.13 s to import: only when a rule asks
    )

    validator = Draft202012Validator(schema)
    _VALIDATORS[id(schema)] = (schema, validator)
    return validator


def check_json_schema(schema: Mapping[str, Any]) -> None:
    """Raise ValueError (one line, with the pointer) when `schema` is not a valid Draft 2020-12
    schema: for validating a rules file's schema when it is loaded."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"invalid JSON Schema: {_pointer(exc.absolute_path)}: {exc.message}") from None


def _pointer(path: Sequence[Any]) -> str:
    if not path:
        return "(root)"
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def json_schema_errors(value: Any, schema: Mapping[str, Any], limit: int = 3) -> list[str]:
    """At most `limit` messages `"<pointer>: <message>"` for what in `value` breaks `schema`
    (Draft 2020-12), in document order; [] when it conforms."""
    errors = sorted(_validator(schema).iter_errors(value), key=lambda e: (_pointer(e.absolute_path), e.message))
    return [f"{_pointer(e.absolute_path)}: {_short(e.message)}" for e in errors[:limit]]


def _short(message: str, limit: int = 160) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"


# --- phrases -------------------------------------------------------------------------------

_APOSTROPHE = "['\u2019\u02bc]"  # a straight, a curly or a modifier-letter apostrophe


def _phrase_atoms(phrase: str) -> list[str]:
    """A phrase as regex atoms, one per character (lower-cased), plus separators."""
    words = phrase.split(" ")
    atoms: list[str] = []
    for k, word in enumerate(words):
        if k:
            atoms.append(r"\s+")
        optional = word.endswith(",") and k < len(words) - 1  # "I'm sorry, but" finds "I'm sorry but"
        for ch in word[:-1] if optional else word:
            atoms.append(_APOSTROPHE if ch in "'\u2019" else re.escape(ch.lower()))
        if optional:
            atoms.append(",?")
    if phrase[-1].isalnum() or phrase[-1] == "_":
        atoms.append(r"(?!\w)")
    return atoms


def _trie_regex(sequences: list[list[str]]) -> str:
    """One regex for many atom sequences, factored by common prefixes: at each position the
    engine follows one branch instead of trying every phrase (80 times faster than a flat
    alternation of 60 phrases)."""
    trie: dict[str, Any] = {}
    for atoms in sequences:
        node = trie
        for atom in atoms:
            node = node.setdefault(atom, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [atom + emit(child) for atom, child in node.items() if atom]
        if not branches:
            return ""
        if "" in node:  # a phrase ends here and longer ones go on: the rest is optional
            return "(?:" + "|".join(branches) + ")?"
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return emit(trie)


@lru_cache(maxsize=64)
def _phrase_patterns(phrases: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
    """(for lower-cased ASCII text, for any text with IGNORECASE), or None for no phrases."""
    cleaned = {" ".join(p.split()) for p in phrases if p and p.strip()}
    if not cleaned:
        return None
    body = _trie_regex([_phrase_atoms(p) for p in sorted(cleaned)])
    starts = {p[0].isalnum() or p[0] == "_" for p in cleaned}
    head = r"\b" if starts == {True} else r"(?:(?<!\w)(?=\w)|(?=\W))" if True in starts else ""
    return re.compile(head + body), re.compile(head + body, re.IGNORECASE)


def find_phrase(text: str, phrases: Sequence[str]) -> str | None:
    """The first of `phrases` found in `text`, as written there; None if none is.

    Case-insensitive; whitespace matches any run of whitespace; an apostrophe matches ' or ’; a
    comma inside the phrase is optional (one that ends it is not: "as an AI," is not "as an AI");
    a phrase that starts or ends with a letter must start or end a word there ("I cannot" is not
    found in "I cannotate"). One compiled pattern (a prefix trie) per tuple of phrases, cached.
    """
    patterns = _phrase_patterns(tuple(phrases))
    if patterns is None:
        return None
    if text.isascii():  # lower() keeps every position: search the lower-cased text, 1.5x faster
        match = patterns[0].search(text.lower())
        return None if match is None else text[match.start():match.end()]
    match = patterns[1].search(text)
    return None if match is None else match.group()


# --- mojibake ------------------------------------------------------------------------------

# What a UTF-8 continuation byte (0x80-0xBF) becomes when the bytes are read as CP1252 (or, for
# 0x80-0x9F and CP1252's five undefined bytes, as Latin-1: C1 controls).
_CONT = "\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201a" \
        "\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122"
# The same without what real text puts after an accented letter: typographic quotes, dashes,
# the ellipsis, guillemets, the no-break space, ordinals, superscripts, the degree sign and the
# middle dot ("Fuß“", "JOSÉ…", "allé…»", "café »", "112 Å²", "Nº").
_CONT_STRICT = "\u0080-\u009f\u00a1-\u00a9\u00ac-\u00af\u00b1\u00b4-\u00b6\u00b8\u00bc-\u00bf\u0152\u0153" \
               "\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u201a\u2020-\u2022\u2030\u2039\u203a\u20ac\u2122"
_MOJIBAKE = re.compile(
    "\ufffd+"  # the replacement character: bytes already lost
    f"|\u00e2\u20ac[{_CONT}]?"  # â€: U+2000-U+203F (’ “ ” – — …), by far the commonest
    f"|[\u00c2\u00c3][{_CONT}]"  # Â, Ã + a continuation: Latin-1 letters and symbols (Ã©, Â°, Â\xa0)
    f"|[\u00e0-\u00ef][{_CONT_STRICT}][{_CONT}]"  # other three-byte characters: â„¢ (™), ä¸­ (中)
    f"|\u00f0[{_CONT}]{{3}}"  # four-byte characters: emoji (ðŸ˜€)
    f"|[\u00c4-\u00df][{_CONT_STRICT}]"  # other two-byte leads: Polish Å‚, Cyrillic Ð¿, Hebrew ×©
)


def mojibake(text: str) -> str | None:
    """The first sequence that shows text decoded with the wrong encoding: U+FFFD, or UTF-8
    bytes read as CP1252/Latin-1 ("Ã©" for é, "â€™" for ’, "Ð¿" for п); None if none.

    A lead character (Ã, Â, â, Ð, ...) counts only when followed by the characters the UTF-8
    continuation bytes become, so real French, German, Portuguese or Polish text does not match.
    """
    if text.isascii():
        return None
    match = _MOJIBAKE.search(text)
    return None if match is None else match.group()


# --- control characters --------------------------------------------------------------------

# C0 controls except tab, line feed and carriage return; DEL; C1 controls. Zero-width and
# bidirectional formatting characters (U+200B-U+200F, U+202A-U+202E, U+2066-U+2069, U+FEFF) are
# not flagged: ZWJ builds emoji sequences, ZWNJ is spelling in Persian and Indic scripts, and
# RTL text legitimately carries direction marks.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# What fix_controls does: a terminal escape sequence goes whole (ESC [ 3 1 m), a vertical tab,
# form feed or NEL becomes a line break (they separate lines or pages), anything else goes.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_BREAKS = str.maketrans({"\x0b": "\n", "\x0c": "\n", "\x85": "\n"})
_DELETE = str.maketrans(dict.fromkeys([*range(0x09), *range(0x0E, 0x20), 0x7F,
                                       *range(0x80, 0x85), *range(0x86, 0xA0)]))


def control_character(text: str) -> tuple[int, str] | None:
    """The index and character of the first control character (C0 but tab, LF and CR; DEL;
    C1) in `text`; None if there is none."""
    match = _CONTROL.search(text)
    return None if match is None else (match.start(), match.group())


def strip_controls(text: str) -> str:
    """`text` without the characters `control_character` finds: terminal escape sequences
    removed whole, vertical tab, form feed and NEL made line feeds, the others deleted."""
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return text.translate(_BREAKS).translate(_DELETE)


# --- repetition ----------------------------------------------------------------------------


def compression_ratio(text: str) -> float:
    """UTF-8 bytes of `text` over its zlib-compressed size (level 6); 0.0 for an empty text.
    Natural prose is around 2-3.5; text that repeats itself compresses far better."""
    data = text.encode("utf-8")
    if not data:
        return 0.0
    return len(data) / len(zlib.compress(data, 6))


_NOT_PROSE = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|^[ \t]*\|[^\n]*|^[^\w\n]+$", re.DOTALL | re.MULTILINE)


def prose(text: str) -> str:
    """`text` without code blocks, table rows (`| a | b |`) and lines without a letter or digit
    (`+-----+`, `***`), whitespace runs made one space:
    what `compression_ratio` should judge. Code, ASCII diagrams and tables repeat by design
    (ratios of 6 to 11 on ShareGPT answers, where prose stays under 6.1)."""
    text = _NOT_PROSE.sub(" ", text)
    return " ".join(text.split())


# --- template markers ----------------------------------------------------------------------

# Code blocks and inline code: a marker shown as code is documentation, not a leftover.
_CODE = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]+`", re.DOTALL)
# {{name}}, {{ user.name }}: an unfilled variable. Not LaTeX (`x_{{A}}`, `\\frac{{a}}`: after
# `_ ^ \\ { $` or a word character), and not a one-letter name (`{{A}}` is usually maths).
_PLACEHOLDER = r"(?<![\w\\_^{$])\{\{\s*[A-Za-z_][\w.\-]+\s*\}\}(?!\})"


def _marker_part(marker: str) -> str:
    """A marker's pattern. Literal, except three markers that are also ordinary text:
    `{{` is found only as a `{{name}}` placeholder, `<s>` only where a text starts and `</s>`
    only where it ends (Llama's BOS/EOS; `<s>` is also HTML strikethrough)."""
    if marker == "{{":
        return _PLACEHOLDER
    if marker == "<s>":
        return r"\A\s*<s>"
    if marker == "</s>":
        return r"</s>(?=\s*\Z)"
    return re.escape(marker)


@lru_cache(maxsize=64)
def _marker_patterns(markers: tuple[str, ...]) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    markers = tuple(m for m in dict.fromkeys(markers) if m)
    if not markers:
        return None, None
    # The prefilter: the markers' literal text in one search ("{{" itself for placeholders);
    # `<`, `[`, `#` and `{` are rare in prose, so the engine skips most positions at once.
    literals = re.compile("|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True)))
    parts = sorted((_marker_part(m) for m in markers), key=len, reverse=True)
    return literals, re.compile("|".join(parts))


def template_marker(text: str, markers: Sequence[str]) -> str | None:
    """The first of `markers` left in `text` outside code spans and blocks, as found; None if
    none is. See `_marker_part` for `{{`, `<s>` and `</s>`."""
    literals, pattern = _marker_patterns(tuple(markers))
    if pattern is None or literals is None or literals.search(text) is None:
        return None
    match = pattern.search(text)
    if match is None:
        return None
    if "`" in text or "~~~" in text:
        match = pattern.search(_CODE.sub(lambda m: " " * len(m.group()), text))
        if match is None:
            return None
    return match.group().strip()
