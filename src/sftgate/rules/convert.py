"""Conversion (CNV): records read in another format than Vertex Gemini, and what converting them cost.

`check` and `prepare` read OpenAI, Gemini 1.0, PaLM, Alpaca, ShareGPT, Open-Assistant and table
files by converting each record to a Gemini example first (`formats.convert`, chosen with
`input.format` or `--input-format`, detected from the first records by default). The engine
converts each record once and reports here what could not be converted (CNV001) or carried
(CNV002); CNV003 says once per file that it was converted, so nobody uploads it as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sftgate.model import Action, Finding, Severity
from sftgate.rules.base import ConversionRule, FileRule, RuleContext

# How a person calls each container the converters read (formats.containers.CONTAINERS).
CONTAINER_TITLES = {"jsonl": "JSON Lines", "json": "JSON array", "csv": "CSV", "parquet": "Parquet"}


class UnconvertibleRecord(ConversionRule):
    """## What it does
    Flags a record that cannot be converted to the Gemini format from the format its file is
    read in, with the reason: an assistant turn before any user turn, a role the format does
    not define, a missing field, a tool call whose arguments are not a JSON object, an image
    given as a `data:` URL.

    ## Why is this bad?
    Tuning reads only Gemini examples. A record that cannot be converted would be dropped
    silently by a script, or worse, converted into an example that teaches the wrong turn.

    ## Example
    A ShareGPT conversation that starts with `{"from": "gpt", ...}` (a continuation chunk of a
    split conversation): "assistant turn before any user turn".
    """

    code = "CNV001"
    name = "unconvertible-record"
    default_severity = Severity.ERROR
    default_action = Action.DROP


class ConversionLoss(ConversionRule):
    """## What it does
    Notes what a record's conversion could not carry into the Gemini example: an assistant
    turn's `"weight": 0` (Vertex trains on every model turn), a message `name`, few-shot
    `examples` of a PaLM chat record, a second system message joined into the first.

    ## Why is this bad?
    The converted example is not exactly what the source said. Usually harmless; sometimes
    (a turn the source excluded from training) it changes what the model learns.

    ## Example
    `{"role": "assistant", "content": "...", "weight": 0}` in an OpenAI chat record.
    Use instead: drop the turn, or the example, before converting if it must not be learned.
    """

    code = "CNV002"
    name = "conversion-loss"
    default_severity = Severity.WARNING


class ConvertedInput(FileRule):
    """## What it does
    Flags, once per file, that the file is not Gemini JSON Lines: a JSON array, CSV or Parquet
    file, or records in another SFT format, which sftgate read by converting them.

    ## Why is this bad?
    The checks ran on the converted records, but Vertex AI cannot read this file as it is: a
    tuning job given it fails. Tune on what `sftgate prepare` writes (or `sftgate convert`),
    not on this file. `prepare` itself does not raise it, since what it writes is the fix; eval
    sets, which are not uploaded, never get it.

    ## Example
    `train.json` holding an Alpaca array: "read as alpaca records from a JSON array".
    """

    code = "CNV003"
    name = "converted-input"
    default_severity = Severity.ERROR

    def check(self, stats: Any, ctx: RuleContext) -> Iterator[Finding]:
        if stats.input_format == "gemini" and stats.container == "jsonl":
            return
        title = CONTAINER_TITLES.get(stats.container, stats.container)
        read_as = f"{stats.input_format} records" if stats.input_format != "gemini" else "Gemini records"
        yield self.finding(
            stats.source, None,
            f"file is read as {read_as} from {'a' if title[0] not in 'AEIOU' else 'an'} {title} file; "
            f"Vertex AI reads only Gemini JSON Lines",
            hint=f"tune on the files `sftgate prepare {stats.source} --out DIR` writes, or run "
                 f"`sftgate convert {stats.source} -o OUT.jsonl`",
        )
