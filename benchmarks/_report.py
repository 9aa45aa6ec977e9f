"""Small helpers the benchmark scripts share: rounding, formatting, verdicts, JSON, warm cache,
the child-process entry point."""

from __future__ import annotations

import dataclasses
import json
import resource
from collections.abc import Callable
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


def _rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def run_child(spec_json: str, kinds: dict[str, Callable[[dict], dict]], children: bool = False) -> int:
    """A measured child's main: run `kinds[spec["kind"]](spec)` and print its result as one JSON
    line, with the child's peak RSS (and its own children's, if asked); an exception is printed
    as {"error": ...} for the parent, then raised."""
    spec = json.loads(spec_json)
    try:
        result = kinds[spec["kind"]](spec)
    except BaseException as exc:  # reported to the parent instead of a bare traceback
        first = (str(exc).strip().splitlines() or [""])[0]
        print(json.dumps({"error": f"{type(exc).__name__}: {first}"}), flush=True)
        raise
    result["rss_self_mib"] = _rss_mib(resource.RUSAGE_SELF)
    if children:
        result["rss_children_mib"] = _rss_mib(resource.RUSAGE_CHILDREN)
    print(json.dumps(result), flush=True)
    return 0


def generated_file_args(ap: Any, here: Path, shared: Path) -> None:
    """The options of a benchmark of bench_check's generated file: its seed, where it is cached
    (with the outputs and logs), the shared/ folder, regenerating it, and a JSON copy of the figures."""
    ap.add_argument("--seed", type=int, default=20240601, help="generator seed (default 20240601)")
    ap.add_argument("--data-dir", type=Path, default=here / ".data", help="generated files, outputs and logs")
    ap.add_argument("--shared", type=Path, default=shared, help="shared/ folder (data/real)")
    ap.add_argument("--regen", action="store_true", help="regenerate the file even if cached")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")

