"""What a rule is: a code, a name, a default severity and action, a docstring, and a check.

Rules come in six kinds, by what they look at:

- `LineRule`: the raw bytes of one line (format problems found while decoding it);
- `ConversionRule`: one record of another format while it is converted to Gemini (`formats.convert`);
- `ObjectRule`: one parsed JSON object, before it is read as an example (schema, legacy formats);
- `RecordRule`: one canonical `Example` (structure, media, function calling);
- `FileRule`: the summary of a whole file after the pass (counts, sizes, consistency);
- `DatasetRule`: the per-record features of a whole file (duplicates, conflicts, leakage).

A check returns any iterable of findings: usually a generator; rules that run on every record
return `()` when a quick test finds nothing, which skips the cost of creating a generator.

Rules are pure: no I/O, no processes. They say *what* is wrong; the engine decides when they run.
Severity and action in the profile override the defaults; the engine stamps the configured
severity on each finding, so a rule only ever names its own code.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sftgate.model import Action, Example, Finding, Origin, Severity

if TYPE_CHECKING:
    from sftgate.config import Profile

REGISTRY: dict[str, type[Rule]] = {}

_CODE = re.compile(r"^[A-Z]{3,4}[0-9]{3}$")


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What a rule may read besides the data: the resolved profile and the split being checked."""

    profile: Profile
    split: str = "train"  # train | validation
    meter: Any = None  # the input's token meter (rules.tokens.Meter), set by the check pass


class Rule(ABC):
    code: ClassVar[str]
    name: ClassVar[str]
    default_severity: ClassVar[Severity]
    default_action: ClassVar[Action] = Action.FLAG
    kind: ClassVar[str] = "rule"
    # How `prepare` fixes what the rule finds, when its action is `fix`: "" it cannot (the
    # action must be flag or drop); "output" writing the canonical record fixes it (a BOM,
    # CRLF endings); "record" its `fix` method rewrites the parsed record.
    fixes: ClassVar[str] = ""

    def fix(self, obj: dict[str, Any], ctx: RuleContext) -> bool:
        """Rewrite `obj` in place so the rule finds nothing; False when it cannot be fixed
        (the record then goes to the quarantine). `ctx` is the one the check read, so a fix
        sees the options its check saw. Rules with `fixes = "record"` override it; the others
        fix nothing."""
        return False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__dict__.get("code")
        if code is None:  # an abstract kind such as RecordRule
            return
        if not _CODE.match(code):
            raise ValueError(f"rule code {code!r} must look like ABC123")
        if code in REGISTRY:
            raise ValueError(f"rule code {code} is defined twice: {REGISTRY[code]} and {cls}")
        REGISTRY[code] = cls

    @classmethod
    def summary(cls) -> str:
        """The first sentence under '## What it does': the one line `sftgate rules` prints."""
        doc = cls.doc()
        body = doc.split("## What it does", 1)[-1].strip()
        first = body.split("\n\n", 1)[0]
        return " ".join(first.split())

    @classmethod
    def doc(cls) -> str:
        import inspect

        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def options(cls) -> list[str]:
        """Profile keys this rule reads, listed under '## Options' as `dotted.path` items."""
        doc = cls.doc()
        if "## Options" not in doc:
            return []
        section = doc.split("## Options", 1)[1].split("\n## ", 1)[0]
        return re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", section)

    @classmethod
    def finding(
        cls,
        source: str,
        line: int | None,
        message: str,
        *,
        pointer: str | None = None,
        column: int | None = None,
        hint: str | None = None,
        related: str | None = None,
        similarity: float | None = None,
    ) -> Finding:
        return Finding(
            code=cls.code,
            severity=cls.default_severity,
            message=message,
            source=source,
            line=line,
            pointer=pointer,
            column=column,
            hint=hint,
            related=related,
            similarity=similarity,
        )

    @classmethod
    def at(cls, origin: Origin | Example, message: str, **where: Any) -> Finding:
        """A finding at a record's line."""
        if isinstance(origin, Example):
            origin = origin.origin
        return cls.finding(origin.source, origin.line, message, **where)


class LineRule(Rule):
    kind = "line"


class ConversionRule(Rule):
    """Findings made while a record of another format is converted: the engine converts each
    record once and builds the findings with `at`, so these rules have no `check` of their own."""

    kind = "conversion"


class ObjectRule(Rule):
    kind = "object"

    @abstractmethod
    def check(self, obj: dict[str, Any], origin: Origin, ctx: RuleContext) -> Iterable[Finding]:
        ...


class RecordRule(Rule):
    kind = "record"
    # The example shapes (PartKind values, IRREGULAR, TOOLS) this rule can find something in;
    # None: every example. The engine skips the rule on examples with none of them.
    triggers: ClassVar[frozenset[str] | None] = None

    @abstractmethod
    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        ...


class FileRule(Rule):
    kind = "file"

    @abstractmethod
    def check(self, stats: Any, ctx: RuleContext) -> Iterator[Finding]:
        ...


class DatasetRule(Rule):
    """A rule over a whole file's features. Rules of one family usually share one analysis
    (clustering records is done once, not once per code): `check` receives it."""

    kind = "dataset"

    @abstractmethod
    def check(self, analysis: Any, ctx: RuleContext) -> Iterable[Finding]:
        ...


def family_findings(rules: Iterable[type[DatasetRule]], analysis: Any, ctx: RuleContext,
                    selected: Iterable[str]) -> list[Finding]:
    """The findings of the selected rules of one family, from the analysis they share."""
    return list(iter_family_findings(rules, analysis, ctx, selected))


def iter_family_findings(rules: Iterable[type[DatasetRule]], analysis: Any, ctx: RuleContext,
                         selected: Iterable[str]) -> Iterator[Finding]:
    """`family_findings` one at a time, for a family that may have millions (DUP)."""
    chosen = set(selected)
    for rule in rules:
        if rule.code in chosen:
            yield from rule().check(analysis, ctx)


def quote(text: str, limit: int = 40) -> str:
    """A value shown inside a message: JSON-quoted and cut so one message stays one line."""
    import orjson

    shown = orjson.dumps(text[:limit]).decode()
    return shown if len(text) <= limit else shown[:-1] + '…"'
