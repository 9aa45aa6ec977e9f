"""The rule catalogue. Importing this package registers every rule in `REGISTRY` (code -> class)."""

from sftgate.rules import content, convert, declared, dedup, fmt, leakage, limits, media, pii, schema, skew, structure, tokens  # noqa: F401  (registers the rules)
from sftgate.rules.base import (
    REGISTRY,
    ConversionRule,
    DatasetRule,
    FileRule,
    LineRule,
    ObjectRule,
    RecordRule,
    Rule,
    RuleContext,
)


def all_rules() -> list[type[Rule]]:
    """Every rule, sorted by code."""
    return [REGISTRY[code] for code in sorted(REGISTRY)]


__all__ = ["REGISTRY", "ConversionRule", "DatasetRule", "FileRule", "LineRule", "ObjectRule", "RecordRule", "Rule", "RuleContext", "all_rules"]
