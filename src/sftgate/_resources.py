"""Where the data files that ship with sftgate live.

The profiles (`rules/`) and JSON Schemas (`schemas/`) sit at the top of the repository, where
users read them. A wheel carries copies under `sftgate/_data/`; an editable install or a
checkout reads the repository's own.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_dir(kind: str) -> Path:
    """The directory holding `kind` ("rules" or "schemas")."""
    for candidate in (_PACKAGE / "_data" / kind, _PACKAGE.parents[1] / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"sftgate is installed without its {kind}/ directory")


@cache
def load_schema(name: str) -> dict:
    import orjson

    return orjson.loads((data_dir("schemas") / name).read_bytes())


def builtin_profiles() -> list[str]:
    return sorted(p.stem for p in data_dir("rules").glob("*.yaml"))
