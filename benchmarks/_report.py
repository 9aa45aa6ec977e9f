"""Small helpers the benchmark scripts share: rounding, formatting, verdicts, JSON, warm cache."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

MIB = 1 << 20


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def warm(*paths: Path) -> None:
    """Read files once so that every measured run starts with them in the page cache."""
    for path in paths:
        with path.open("rb", buffering=0) as f:
            while f.read(16 * MIB):
                pass


def fmt(value: Any, spec: str = "") -> str:
    return "—" if value is None else format(value, spec)


def verdict(ok: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[ok]


def jsonable(value: Any) -> Any:
    """Dataclasses (a benchmark's runs) as dicts, recursively through dicts and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value
