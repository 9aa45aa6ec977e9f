"""The JSON report (`--report-json`, `--format json`): the contract in schemas/report.schema.json."""

from __future__ import annotations

import orjson

from sftgate.report.model import Report


def render(report: Report) -> bytes:
    """Indented, key order fixed by the model, newline-terminated."""
    return orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"
