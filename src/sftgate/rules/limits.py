"""File-level limits (LIM) of the target model: file size and example counts per split."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sftgate.model import Finding, Severity
from sftgate.rules.base import FileRule, RuleContext


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


class FileTooLarge(FileRule):
    """## What it does
    Flags an input file larger than the target's maximum dataset file size (1 GB), measured on
    the JSONL content (decompressed when the input is compressed).

    ## Why is this bad?
    The tuning service rejects the file before training starts.

    ## Example
    A 1.4 GB `train.jsonl` for gemini-2.5-flash.
    Use instead: split into shards (`sftgate prepare` does), or sample the data.

    ## Options
    - `limits.max_file_bytes`
    """

    code = "LIM001"
    name = "file-too-large"
    default_severity = Severity.ERROR

    def check(self, stats: Any, ctx: RuleContext) -> Iterator[Finding]:
        limit = ctx.profile.limits["max_file_bytes"]
        if stats.content_bytes > limit:
            yield self.finding(stats.source, None, f"file has {stats.content_bytes:,} bytes of JSONL; "
                               f"{ctx.profile.target} accepts {limit:,}", hint="split it into shards")


class TooManyExamples(FileRule):
    """## What it does
    Flags a training file with more examples than the target accepts: the text-only maximum,
    or the multimodal maximum when any example carries media.

    ## Why is this bad?
    The job is rejected, or the surplus is ignored; either way you find out after the upload.

    ## Example
    400,000 image-captioning examples for gemini-2.5-flash (multimodal maximum 300,000).

    ## Options
    - `limits.max_examples_text`, `limits.max_examples_multimodal`
    """

    code = "LIM002"
    name = "too-many-examples"
    default_severity = Severity.ERROR

    def check(self, stats: Any, ctx: RuleContext) -> Iterator[Finding]:
        if ctx.split != "train":
            return
        media = stats.media_records > 0
        key = "max_examples_multimodal" if media else "max_examples_text"
        limit = ctx.profile.limits[key]
        if limit is not None and stats.records > limit:
            kind = "multimodal" if media else "text-only"
            yield self.finding(stats.source, None, f"{_n(stats.records, 'example')}; {ctx.profile.target} accepts "
                               f"{limit:,} {kind} training examples", hint="sample or deduplicate the data")


class TooManyValidationExamples(FileRule):
    """## What it does
    Flags a validation file with more examples than the target accepts (256 for Gemini 1.5,
    5,000 for Gemini 2.x and later).

    ## Why is this bad?
    The tuning job is rejected. Validation runs at every checkpoint, so a large set also
    slows tuning without making the loss estimate better.

    ## Example
    A 10,000-example validation file for gemini-2.5-flash.
    Use instead: a random sample of at most 5,000.

    ## Options
    - `limits.max_validation_examples`
    """

    code = "LIM003"
    name = "too-many-validation-examples"
    default_severity = Severity.ERROR

    def check(self, stats: Any, ctx: RuleContext) -> Iterator[Finding]:
        limit = ctx.profile.limits["max_validation_examples"]
        if ctx.split == "validation" and stats.records > limit:
            yield self.finding(stats.source, None, f"{_n(stats.records, 'validation example')}; "
                               f"{ctx.profile.target} accepts {limit:,}", hint=f"sample {limit:,} of them")


class TooFewExamples(FileRule):
    """## What it does
    Warns when the training file has fewer examples than the recommended minimum (100).

    ## Why is this bad?
    Google's guidance is to start with at least 100 examples (100 to 500 for good results);
    with fewer, the tuned model overfits or barely changes, and you pay for the job anyway.

    ## Example
    A 40-example training file.

    ## Options
    - `limits.min_recommended_examples`
    """

    code = "LIM004"
    name = "too-few-examples"
    default_severity = Severity.WARNING

    def check(self, stats: Any, ctx: RuleContext) -> Iterator[Finding]:
        minimum = ctx.profile.limits["min_recommended_examples"]
        if ctx.split == "train" and stats.records < minimum:
            yield self.finding(stats.source, None, f"{_n(stats.records, 'training example')}; "
                               f"at least {minimum:,} are recommended", hint="add examples before tuning")
