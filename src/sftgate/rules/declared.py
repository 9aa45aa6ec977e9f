"""Content rules users declare in YAML (CNT100-CNT999), without writing Python.

A profile's `content.rules` lists them:

    content:
      rules:
        - {code: CNT101, kind: regex, field: response, pattern: "(?i)as an ai language model",
           severity: warning, action: drop, message: "model turn talks like a chatbot"}
        - {code: CNT102, kind: length, field: response, unit: tokens, max: 512}
        - {code: CNT103, kind: language, field: any, languages: [en, de]}
        - {code: CNT104, kind: contains_json, field: response, schema: schemas/answer.json}

Kinds: `regex` (a match is a finding; with `must_match: true`, no match is), `length` (`min`
and/or `max` in `chars`, `words` or `tokens` of the profile's tokenizer), `language` (the
detected language is not among `languages`; texts shorter than `min_chars` letters, or detected
with less than `min_confidence`, are not judged), `contains_json` (the text parses as JSON,
optionally as one ```json fenced block, and matches `schema`, a JSON Schema file relative to the
rules file). `field` says which texts: `response` (each model turn), `prompt` (each other turn),
`system` (the system instruction) or `any` (all of them); each is judged on its own, and a
finding points at its turn.

Specs are checked when the profile loads (`declare`): a pattern that does not compile, a schema
file that is missing or not a JSON Schema, a code outside CNT100-CNT999 or defined twice is a
`ConfigError`. Patterns run with a time limit per text (`timeout_ms`, default 100): a pattern
that backtracks catastrophically on a record gives a CNT099 finding there, not a hang.

Declared rules are not in `REGISTRY` (which holds the built-in catalogue, the same in every
process): the profile carries them, and each process builds them from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from sftgate.analysis.content import (
    PatternTimeout,
    TimedPattern,
    check_json_schema,
    detect_language,
    json_schema_errors,
    parse_json_payload,
)
from sftgate.errors import ConfigError
from sftgate.model import Action, Example, Finding, PartKind, Severity
from sftgate.rules.base import RecordRule, Rule, RuleContext, quote

CODE = re.compile(r"^CNT[1-9][0-9]{2}$")
KINDS = ("regex", "length", "language", "contains_json")
FIELDS = ("response", "prompt", "system", "any")
DEFAULT_TIMEOUT_MS = 100
_TIMED_OUT = "timed out"  # what a regex rule's judgement says when its pattern ran out of time
_TEXT = PartKind.TEXT


class ContentRuleTimeout(Rule):
    """## What it does
    Flags a record on which a declared `regex` content rule's pattern ran out of time
    (`timeout_ms`, 100 ms by default): the rule could not judge this record.

    ## Why is this bad?
    A pattern with nested repetition (`(a|aa)+$`) can take exponential time on some texts. The
    check stops it instead of hanging, but the record went unchecked by that rule, and the
    pattern should be rewritten.

    ## Example
    `{code: CNT101, kind: regex, pattern: "(a|aa)+$"}` on a text of 40 `a`s and a `b`.
    Use instead: a pattern without nested quantifiers, e.g. `a+$`.
    """

    code = "CNT099"
    name = "content-rule-timeout"
    default_severity = Severity.WARNING
    kind = "record"  # found by the declared regex rules while they judge an example


class DeclaredRule(RecordRule):
    """One rule of a profile's `content.rules`; `code`, `name`, `default_severity` and
    `default_action` are set on the instance from its spec."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = spec
        self.code = spec["code"]  # type: ignore[misc]
        self.name = spec.get("name") or f"declared-{self.code.lower()}"  # type: ignore[misc]
        self.default_severity = Severity(spec.get("severity", "warning"))  # type: ignore[misc]
        self.default_action = Action(spec.get("action", "flag"))  # type: ignore[misc]
        self.field = spec.get("field", "response" if spec["kind"] == "contains_json" else "any")
        self.message = spec.get("message")
        kind = self.kind_name = spec["kind"]
        if kind == "regex":
            self.pattern = TimedPattern(spec["pattern"])
            self.must_match = bool(spec.get("must_match", False))
            self.timeout = int(spec.get("timeout_ms", DEFAULT_TIMEOUT_MS)) / 1000
        elif kind == "length":
            self.unit = spec.get("unit", "chars")
            self.low, self.high = spec.get("min"), spec.get("max")
        elif kind == "language":
            self.languages = frozenset(spec["languages"])
            self.min_chars = int(spec.get("min_chars", 40))
            self.min_confidence = float(spec.get("min_confidence", 0.9))
        else:
            self.allow_fence = bool(spec.get("allow_fence", True))
            self.schema = _schema_file(spec["schema"]) if spec.get("schema") else None

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        judge = getattr(self, f"_{self.kind_name}")
        found: list[Finding] = []
        origin = example.origin
        for pointer, label, text in _texts(example, self.field):
            why = judge(text, ctx)
            if why is None:
                continue
            if why is _TIMED_OUT:
                found.append(ContentRuleTimeout.finding(
                    origin.source, origin.line, f"{self.code}'s pattern {quote(self.pattern.pattern)} took longer "
                    f"than {self.timeout * 1000:g} ms on {label}; {self.code} did not judge it", pointer=pointer,
                    hint="rewrite the pattern without nested repetition, or raise its timeout_ms"))
                continue
            message = f"{label}: {self.message}" if self.message else f"{label} {why}"
            found.append(Finding(code=self.code, severity=self.default_severity, message=message,
                                 source=origin.source, line=origin.line, pointer=pointer))
        return found

    # -- kinds: None when the text passes, otherwise what is wrong -----------------------------

    def _regex(self, text: str, ctx: RuleContext) -> str | None:
        try:
            span = self.pattern.search(text, self.timeout)
        except PatternTimeout:
            return _TIMED_OUT
        if self.must_match:
            return None if span is not None else f"does not match {quote(self.pattern.pattern)}"
        if span is None:
            return None
        return f"matches {quote(self.pattern.pattern)}: {quote(text[span[0]:span[1]])}"

    def _length(self, text: str, ctx: RuleContext) -> str | None:
        if self.unit == "chars":
            n = len(text)
        elif self.unit == "words":
            n = len(text.split())
        else:
            n = ctx.meter.tokenizer.count([text])[0] if ctx.meter is not None else len(text.encode())
        if self.low is not None and n < self.low:
            return f"has {n:,} {self.unit}, fewer than {self.low:,}"
        if self.high is not None and n > self.high:
            return f"has {n:,} {self.unit}, more than {self.high:,}"
        return None

    def _language(self, text: str, ctx: RuleContext) -> str | None:
        if sum(ch.isalpha() for ch in text[:4096]) < self.min_chars:
            return None
        code, confidence = detect_language(text)
        if not code or code in self.languages or confidence < self.min_confidence:
            return None
        return f"is in {code!r} ({confidence:.0%} sure), not {', '.join(sorted(self.languages))}"

    def _contains_json(self, text: str, ctx: RuleContext) -> str | None:
        value, error = parse_json_payload(text, self.allow_fence)
        if error is not None:
            return f"is not JSON: {error}"
        if self.schema is not None:
            errors = json_schema_errors(value, self.schema)
            if errors:
                return f"does not match the schema: {'; '.join(errors)}"
        return None


def _texts(example: Example, field: str) -> Iterator[tuple[str, str, str]]:
    """(pointer, label, text) of each text the field covers."""
    if field in ("system", "any") and example.system:
        yield "/systemInstruction", "system instruction", example.system_text
    if field == "system":
        return
    for turn in example.turns:
        model = turn.role == "model"
        if (field == "response" and not model) or (field == "prompt" and model):
            continue
        if any(p.kind is _TEXT for p in turn.parts):
            yield turn.pointer, f"turn {turn.index + 1} ({turn.effective_role})", turn.text


@cache
def _schema_file(path: str) -> Any:
    return orjson.loads(Path(path).read_bytes())


def declare(specs: Sequence[Mapping[str, Any]], *, where: str) -> None:
    """Check a profile's declared rules beyond what rules.schema.json says (a pattern that
    compiles, a schema file that is a JSON Schema, what each kind needs; schema paths are
    already absolute, see `config`); raises ConfigError naming the rule and what is wrong."""
    for i, spec in enumerate(specs):
        at = f"{where}: /content/rules/{i} ({spec['code']})"
        kind = spec["kind"]
        if kind == "regex" and "pattern" not in spec:
            raise ConfigError(f"{at}: a regex rule needs a pattern")
        if kind == "length" and spec.get("min") is None and spec.get("max") is None:
            raise ConfigError(f"{at}: a length rule needs min or max")
        if kind == "language" and not spec.get("languages"):
            raise ConfigError(f"{at}: a language rule needs languages")
        if kind == "contains_json" and spec.get("schema"):
            try:
                check_json_schema(_schema_file(spec["schema"]))
            except FileNotFoundError:
                raise ConfigError(f"{at}: schema {spec['schema']}: no such file") from None
            except (OSError, orjson.JSONDecodeError, ValueError) as exc:
                raise ConfigError(f"{at}: schema {spec['schema']}: {str(exc).splitlines()[0]}") from None
        try:
            DeclaredRule(spec)
        except ValueError as exc:  # the pattern does not compile
            raise ConfigError(f"{at}: {exc}") from None


def build(specs: Iterable[Mapping[str, Any]]) -> dict[str, DeclaredRule]:
    """The rules of checked specs, by code (once per process and profile)."""
    return {spec["code"]: DeclaredRule(spec) for spec in specs}
