"""Token rules (TOK): the examples the service would drop or that waste tokens, and the counts
behind the cost estimate.

Accounting follows Google's token notebook: every model turn is one training record, whose
input is the system instruction (and tool declarations) plus every earlier turn, and whose
output is that model turn. Function calls and responses count as their JSON text; media parts
count with the profile's per-modality estimates (`tokens.media`) when their size is known, and
are listed as not counted otherwise. A billable record adds `tokens.per_record_overhead`.

Tokenising is the most expensive step of a check, so a `Meter` tokenises only what can
matter. A text of n UTF-8 bytes has between lo(n) and hi(n) tokens (a byte-level BPE token is
at least one byte and at most the longest token): an example whose upper bound is below the
warning line of TOK002 cannot break the limit and is not tokenised for it. Statistics are
exact (every example counted) for inputs up to `tokens.exact_below_bytes` or with
`--exact-tokens`; larger inputs count a seeded random sample of examples (chosen by a hash
of each line's byte offset, so the same whatever the workers) and scale the bytes of all
examples by the sample's tokens per byte (`analysis.tokenstats.ratio_estimate`).
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from sftgate.analysis import tokenizers
from sftgate.analysis.text import json_text
from sftgate.analysis.tokenstats import distribution, ratio_estimate
from sftgate.model import Action, Example, Finding, PartKind, Severity
from sftgate.rules.base import RecordRule, RuleContext

CODES = ("TOK001", "TOK002", "TOK003", "TOK004", "TOK005")
_M64 = (1 << 64) - 1
_ALNUM = re.compile(r"[^\W_]")  # a letter or a digit, in any script
_TEXT = PartKind.TEXT
_MEDIA = (PartKind.FILE_DATA, PartKind.INLINE_DATA)
# Separators str.split() cuts at that are not Unicode White_Space (tiktoken's \s): a text
# holding one gets no word floor, since a tokenizer piece may span them.
_NOT_REGEX_SPACE = re.compile("[\x1c-\x1f]")


def _nbytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _mix(x: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _duration(value: Any) -> float | None:
    """Seconds of a proto Duration as JSON writes it ("5s", "1.5s") or as {seconds, nanos}."""
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            return None
    if isinstance(value, Mapping):
        try:
            return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
        except (TypeError, ValueError):
            return None
    return None


@dataclass(frozen=True)
class MediaEstimates:
    image: int
    audio_per_second: float
    video_fps: float
    video_frame: Mapping[str, int]

    @classmethod
    def from_profile(cls, section: Mapping[str, Any]) -> MediaEstimates:
        return cls(int(section["image"]), float(section["audio_per_second"]), float(section["video_fps"]),
                   dict(section["video_frame"]))

    def tokens(self, kind: PartKind, value: Any, raw: Mapping[str, Any], resolution: str | None) -> int | None:
        """Estimated tokens of one media part; None when its size is unknown (a PDF, a whole
        audio or video file without clip offsets, an unknown MIME type)."""
        mime = value.get("mimeType", "") if isinstance(value, Mapping) else ""
        if not isinstance(mime, str):
            return None
        if mime.startswith("image/"):
            return self.image
        if mime.startswith(("video/", "audio/")):
            clip = raw.get("videoMetadata")
            if not isinstance(clip, Mapping):
                return None
            start, end = _duration(clip.get("startOffset", "0s")), _duration(clip.get("endOffset"))
            if start is None or end is None or end < start:
                return None
            seconds = end - start
            if mime.startswith("audio/"):
                return math.ceil(seconds * self.audio_per_second)
            frame = self.video_frame.get(resolution or "default", self.video_frame.get("default", 0))
            fps = clip.get("fps", self.video_fps)  # the part's own sampling rate, when it sets one
            if not isinstance(fps, int | float) or isinstance(fps, bool) or fps <= 0:
                return None
            return math.ceil(seconds * fps) * int(frame)
        return None


@dataclass(frozen=True)
class TokenSettings:
    """The `tokens:` section of a profile, resolved."""

    tokenizer: str
    per_record_overhead: int
    limit: int
    near_limit: float
    min_output_tokens: int
    max_output_tokens: int
    dominant_share: float
    dominant_min_tokens: int
    dominant_max_answer: int
    exact_below_bytes: int
    sample_bytes: int
    seed: int
    media: MediaEstimates

    @classmethod
    def from_profile(cls, profile: Any, tokenizer: str | None = None) -> TokenSettings:
        s = profile.tokens
        return cls(
            tokenizer=tokenizers.resolve(tokenizer or s["tokenizer"]),
            per_record_overhead=int(s["per_record_overhead"]), limit=int(profile.limits["max_tokens_per_example"]),
            near_limit=float(s["near_limit"]), min_output_tokens=int(s["min_output_tokens"]),
            max_output_tokens=int(s["max_output_tokens"]), dominant_share=float(s["dominant_share"]),
            dominant_min_tokens=int(s["dominant_min_tokens"]), dominant_max_answer=int(s["dominant_max_answer_tokens"]),
            exact_below_bytes=int(s["exact_below_bytes"]),
            sample_bytes=int(s["sample_bytes"]), seed=int(s["seed"]),
            media=MediaEstimates.from_profile(s["media"]),
        )

    @property
    def warn_at(self) -> int:
        """The fewest tokens TOK002 flags."""
        return math.ceil(self.limit * (1 - self.near_limit))

    def sample_rate(self, size: int, exact: bool) -> float:
        """The share of examples counted for the statistics of an input of `size` bytes."""
        if exact or size <= self.exact_below_bytes:
            return 1.0
        return min(1.0, self.sample_bytes / max(1, size))


@dataclass(slots=True)
class Measured:
    """What the meter learned about one example. Token counts are None where not counted."""

    turn_bytes: list[int]  # text bytes per turn (function parts as JSON)
    system_bytes: int  # system instruction and tool declarations
    model_turns: list[int]  # indices into the turns of the model turns
    media: list[int]  # estimated media tokens per turn
    system_media: int
    uncounted: int  # media parts whose tokens are unknown
    empty_model_turns: list[int]  # model turns with no letter, digit or media
    sampled: bool
    turn_tokens: list[int | None] = field(default_factory=list)
    system_tokens: int | None = None

    @property
    def counted(self) -> bool:
        return self.system_tokens is not None and all(t is not None for t in self.turn_tokens)

    @property
    def example_tokens(self) -> int | None:
        """System instruction, tools and every turn, media included: what the limit applies to."""
        if not self.counted:
            return None
        return self.system_tokens + sum(self.turn_tokens) + self.system_media + sum(self.media)  # type: ignore[arg-type, operator]

    @property
    def output_tokens(self) -> int | None:
        if not self.counted:
            return None
        return sum(self.turn_tokens[k] + self.media[k] for k in self.model_turns)  # type: ignore[operator]

    def records(self) -> list[tuple[int, int]]:
        """(input, output) tokens of each training record (model turn), media included."""
        assert self.counted
        out = []
        before = self.system_tokens + self.system_media  # type: ignore[operator]
        done = 0
        for k in self.model_turns:
            before += sum(self.turn_tokens[j] + self.media[j] for j in range(done, k))  # type: ignore[operator]
            done = k
            out.append((before, self.turn_tokens[k] + self.media[k]))  # type: ignore[operator]
        return out


class Meter:
    """Counts the tokens of examples for the TOK rules and the statistics of one input.

    One per process and input (the sample depends on the input's size). `measure` caches its
    result on the example, so the rules and the statistics share one count.
    """

    def __init__(self, profile: Any, split: str, *, sample_rate: float = 1.0, tokenizer: str | None = None) -> None:
        self.settings = s = TokenSettings.from_profile(profile, tokenizer)
        self._target = profile.target
        self.split = split
        on = profile.is_on
        self.sample_rate = sample_rate
        self._threshold = _M64 if sample_rate >= 1 else int(sample_rate * _M64)
        self._seed = _mix(s.seed)
        # The most tokens an example may have without any limit rule firing.
        self._limit_line = s.warn_at if on("TOK002") else s.limit + 1
        self._min_output = s.min_output_tokens if on("TOK003") else 0
        self._max_output = s.max_output_tokens if on("TOK004") else None
        self._dominant = on("TOK005")
        self._resolution: str | None = None
        self.columns = TokenColumns()

    @cached_property
    def tokenizer(self) -> tokenizers.Tokenizer:
        """Loaded on first use: a pass whose rules count no tokens does not pay for loading it."""
        return tokenizers.load(self.settings.tokenizer, target=self._target)

    @cached_property
    def _bounds(self) -> tuple[int | None, int]:
        bounds = self.tokenizer.scalar_bounds()
        return bounds if bounds is not None else (None, 0)

    @property
    def _longest(self) -> int | None:
        return self._bounds[0]

    @property
    def _extra(self) -> int:
        return self._bounds[1]

    @cached_property
    def _word_floor(self) -> bool:
        return bool(getattr(self.tokenizer, "word_floor", False))

    # -- bounds ------------------------------------------------------------------------------

    def _hi(self, n: int, pieces: int) -> int:
        return n + self._extra * pieces

    def _lo(self, n: int) -> int:
        return -(-n // self._longest) if self._longest else 0

    # -- measuring ---------------------------------------------------------------------------

    def measure(self, example: Example) -> Measured:
        cached = example.__dict__.get("_tokens")
        if cached is not None:
            return cached
        m = self._measure(example)
        example.__dict__["_tokens"] = m
        return m

    def _measure(self, example: Example) -> Measured:
        config = example.generation_config
        resolution = config.get("mediaResolution") if config else None
        uncounted = 0
        system_texts = [p.value for p in example.system if p.kind is _TEXT]
        if example.tools:
            system_texts.append(json_text(list(example.tools)))
        turn_texts: list[list[str]] = []
        turn_bytes: list[int] = []
        media: list[int] = []
        model_turns: list[int] = []
        empty: list[int] = []
        alnum = _ALNUM.search
        for k, turn in enumerate(example.turns):
            parts = turn.parts
            if len(parts) == 1 and parts[0].kind is _TEXT:  # most turns: one text part
                text = parts[0].value
                texts, n_bytes, tokens_here = [text], len(text) if text.isascii() else _nbytes(text), 0
            else:
                texts, tokens_here, missing = self._parts(parts, resolution)
                uncounted += missing
                n_bytes = sum(_nbytes(t) for t in texts)
            turn_texts.append(texts)
            turn_bytes.append(n_bytes)
            media.append(tokens_here)
            if turn.role == "model":
                model_turns.append(k)
                if not tokens_here and not any(alnum(t) for t in texts):
                    empty.append(k)
        system_bytes = sum(_nbytes(t) for t in system_texts)
        sampled = self._threshold == _M64 or (_mix(example.origin.offset ^ self._seed) < self._threshold)
        m = Measured(turn_bytes, system_bytes, model_turns, media, 0, uncounted, empty, sampled,
                     [None] * len(turn_texts))
        count = self.tokenizer.count
        if sampled or self._longest is None or self._needs_all(m, turn_texts, system_texts):
            counts = count(system_texts + [t for texts in turn_texts for t in texts]) if (
                system_texts or any(turn_texts)) else []
            m.system_tokens = sum(counts[:len(system_texts)])
            at = len(system_texts)
            for k, texts in enumerate(turn_texts):
                m.turn_tokens[k] = sum(counts[at:at + len(texts)])
                at += len(texts)
            return m
        # Only some model turns can matter (TOK003's minimum, TOK004's maximum).
        for k in model_turns:
            n, pieces = turn_bytes[k], len(turn_texts[k])
            low = self._lo(n) + media[k]
            high = self._hi(n, pieces) + media[k]
            if (self._min_output > 1 and low < self._min_output) or (
                    self._max_output is not None and high > self._max_output):
                m.turn_tokens[k] = sum(count(turn_texts[k])) if turn_texts[k] else 0
        return m

    def _parts(self, parts: tuple, resolution: str | None) -> tuple[list[str], int, int]:
        """(texts, estimated media tokens, media parts not counted) of a turn's parts."""
        texts: list[str] = []
        tokens, missing = 0, 0
        estimate = self.settings.media.tokens
        for part in parts:
            kind = part.kind
            if kind is _TEXT:
                texts.append(part.value)
            elif kind in _MEDIA:
                n = estimate(kind, part.value, part.raw, resolution)
                if n is None:
                    missing += 1
                else:
                    tokens += n
            else:
                texts.append(json_text(part.value if kind is not PartKind.UNKNOWN else part.raw))
        return texts, tokens, missing

    def _needs_all(self, m: Measured, turn_texts: list[list[str]], system_texts: list[str]) -> bool:
        pieces = len(system_texts) + sum(len(t) for t in turn_texts)
        text_bytes = m.system_bytes + sum(m.turn_bytes)
        media = m.system_media + sum(m.media)
        high = self._hi(text_bytes, pieces) + media
        if high >= self._limit_line:
            return True
        s = self.settings
        if self._dominant and m.model_turns and high >= s.dominant_min_tokens:
            # TOK005 needs exact counts only where the answers may be short enough.
            cap = s.dominant_max_answer
            floor = sum(m.media[k] for k in m.model_turns)
            for k in m.model_turns:
                for text in turn_texts[k]:
                    floor += self._floor(text, cap)
                    if floor > cap:
                        return False
            return True
        return False

    def _floor(self, text: str, cap: int) -> int:
        """A lower bound on the tokens of `text`, exact enough to tell whether it exceeds `cap`:
        ceil(bytes / longest token), or, for a tokenizer whose pre-tokenizer never joins two
        whitespace-separated words into one piece (tiktoken), its words (counted up to cap + 1)."""
        low = self._lo(_nbytes(text))
        if self._word_floor and low <= cap and not _NOT_REGEX_SPACE.search(text):
            low = max(low, len(text.split(None, cap)))
        return low

    # -- statistics --------------------------------------------------------------------------

    def collect(self, example: Example) -> None:
        """Add the example to this input's token columns (after the rules ran)."""
        self.columns.add(self.measure(example), self.settings.limit)


class TokenColumns:
    """Per-example token statistics of one input, in input order; chunks merge by appending."""

    _EXAMPLE = ("records", "turns", "x_example", "x_billable", "media_example", "media_billable", "uncounted",
                "sampled", "over", "t_example", "y_billable")

    def __init__(self) -> None:
        self.records, self.turns, self.uncounted = array("i"), array("i"), array("i")
        self.x_example, self.x_billable = array("q"), array("q")
        self.media_example, self.media_billable = array("q"), array("q")
        self.sampled, self.over = array("b"), array("b")
        self.t_example, self.y_billable = array("q"), array("q")  # -1: not counted
        self.rec_input, self.rec_output = array("q"), array("q")  # records of sampled examples

    def add(self, m: Measured, limit: int) -> None:
        n_records = len(m.model_turns)
        self.records.append(n_records)
        self.turns.append(len(m.turn_bytes))
        self.uncounted.append(m.uncounted)
        self.x_example.append(m.system_bytes + sum(m.turn_bytes))
        # A turn is in every record whose model turn is at or after it.
        x_bill = m.system_bytes * n_records
        media_bill = m.system_media * n_records
        y_bill = m.system_tokens * n_records if m.counted else -1  # type: ignore[operator]
        r = 0
        for k in range(len(m.turn_bytes)):
            while r < n_records and m.model_turns[r] < k:
                r += 1
            weight = n_records - r
            x_bill += m.turn_bytes[k] * weight
            media_bill += m.media[k] * weight
            if y_bill >= 0:
                y_bill += m.turn_tokens[k] * weight  # type: ignore[operator]
        self.x_billable.append(x_bill)
        self.media_example.append(m.system_media + sum(m.media))
        self.media_billable.append(media_bill)
        total = m.example_tokens
        self.t_example.append(-1 if total is None else total)
        self.y_billable.append(y_bill)
        self.over.append(total is not None and total > limit)
        self.sampled.append(m.sampled)
        if m.sampled:
            for i, o in m.records():
                self.rec_input.append(i)
                self.rec_output.append(o)

    def extend(self, other: TokenColumns) -> None:
        for name in (*self._EXAMPLE, "rec_input", "rec_output"):
            getattr(self, name).extend(getattr(other, name))

    def __len__(self) -> int:
        return len(self.records)

    def array(self, name: str) -> np.ndarray:
        column = getattr(self, name)
        return np.frombuffer(column, dtype={"i": np.int32, "q": np.int64, "b": np.int8}[column.typecode]) \
            if len(column) else np.zeros(0, dtype=np.int64)


def summarise(columns: TokenColumns, settings: TokenSettings, *, sample_rate: float) -> dict[str, Any]:
    """One input's token statistics for the report: distributions and billable tokens."""
    c = {name: columns.array(name).astype(np.int64) for name in (*TokenColumns._EXAMPLE, "rec_input", "rec_output")}
    n = len(columns)
    sampled = c["sampled"].astype(bool)
    over = c["over"].astype(bool)
    records = int(c["records"].sum())
    kept = ~over  # the service drops over-long examples and does not bill them
    overhead = settings.per_record_overhead * int(c["records"][kept].sum())
    media = int(c["media_billable"][kept].sum())
    exact = bool(sampled.all())
    use = sampled & kept
    text = ratio_estimate(c["y_billable"][use], c["x_billable"][use], float(c["x_billable"][kept].sum()),
                          int(kept.sum()))
    examples_counted = c["t_example"] >= 0
    example_total = ratio_estimate(c["t_example"][sampled], c["x_example"][sampled], float(c["x_example"].sum()), n)
    billable = {
        "value": round(text.value) + media + overhead,
        "low": round(text.low) + media + overhead,
        "high": round(text.high) + media + overhead,
        "confidence": 0.95,
        "exact": exact,
        "relative_half_width": 0.0 if exact else round(text.relative_half_width * text.value
                                                       / max(1.0, text.value + media + overhead), 6),
        "text": round(text.value), "media": media, "overhead": overhead,
    }
    over_n = int(over.sum())
    return {
        "mode": "exact" if exact else "sampled",
        "examples": n,
        "records": records,
        "sample": None if exact else {"examples": int(sampled.sum()), "rate": round(sample_rate, 6),
                                      "seed": settings.seed},
        "examples_tokenised": int(examples_counted.sum()),
        "input_tokens": distribution(c["rec_input"]),
        "output_tokens": distribution(c["rec_output"]),
        "example_tokens": distribution(c["t_example"][sampled]),
        "turns": distribution(c["turns"]),
        "records_per_example": distribution(c["records"]),
        "total_tokens": {"value": round(example_total.value), "low": round(example_total.low),
                         "high": round(example_total.high), "exact": exact},
        "over_limit": {"examples": over_n, "share": round(over_n / n, 6) if n else 0.0, "limit": settings.limit},
        "media_parts_not_counted": int(c["uncounted"].sum()),
        "billable_tokens": billable,
    }


# --- rules -------------------------------------------------------------------------------------


def measure(example: Example, ctx: RuleContext) -> Measured:
    meter = ctx.meter
    if meter is None:  # a rule used on its own, outside a check pass: count exactly
        meter = _standalone(ctx)
    return meter.measure(example)


_STANDALONE: dict[tuple[int, str], tuple[Any, Meter]] = {}


def _standalone(ctx: RuleContext) -> Meter:
    """An exact meter per profile and split, for rules called outside a check pass. The profile
    is kept beside its meter so that a new profile reusing a freed one's id is not matched."""
    key = (id(ctx.profile), ctx.split)
    held = _STANDALONE.get(key)
    if held is None or held[0] is not ctx.profile:
        held = _STANDALONE[key] = (ctx.profile, Meter(ctx.profile, ctx.split))
    return held[1]


def _pointer(k: int) -> str:
    return f"/contents/{k}"


class OverTokenLimit(RecordRule):
    """## What it does
    Flags an example with more tokens than the target model accepts per example (131,072 for
    Gemini 2.x and later, 32,000 for Gemini 1.5): system instruction, tool declarations, every
    turn, and media at the profile's estimates.

    Examples whose UTF-8 size proves them short enough (a byte-level BPE token is at least one
    byte) are not tokenised at all; the rest are counted with the profile's tokenizer.

    ## Why is this bad?
    The tuning service drops it: you lose the example without an error, and if more than 10 %
    of a video dataset is dropped the job fails before training.

    ## Example
    A 180,000-token contract with its summary, for gemini-2.5-flash.
    Use instead: split the document, or shorten the context.

    ## Options
    - `limits.max_tokens_per_example`
    - `tokens.tokenizer`: which tokenizer counts (or --tokenizer).
    """

    code = "TOK001"
    name = "over-token-limit"
    default_severity = Severity.ERROR
    default_action = Action.DROP

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        total = measure(example, ctx).example_tokens
        limit = ctx.profile.limits["max_tokens_per_example"]
        if total is None or total <= limit:
            return ()
        return (self.at(example, f"{total:,} tokens; {ctx.profile.target} accepts {limit:,} per example",
                        hint="the service drops it: shorten or split the example"),)


class NearTokenLimit(RecordRule):
    """## What it does
    Warns about an example within `tokens.near_limit` (10 %) of the per-example token limit.

    ## Why is this bad?
    Unless the tokenizer is the target model's own, counts are estimates: a few percent more
    tokens on the service's side and the example is dropped.

    ## Example
    An example of 121,000 counted tokens for a 131,072 limit.
    Use instead: shorten it, or count with the model's tokenizer (`--tokenizer sentencepiece:PATH`).

    ## Options
    - `tokens.near_limit`: the share of the limit (default 0.10).
    """

    code = "TOK002"
    name = "near-token-limit"
    default_severity = Severity.WARNING

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        total = measure(example, ctx).example_tokens
        limit = ctx.profile.limits["max_tokens_per_example"]
        warn_at = math.ceil(limit * (1 - float(ctx.profile.tokens["near_limit"])))
        if total is None or not warn_at <= total <= limit:
            return ()
        return (self.at(example, f"{total:,} tokens, within {1 - total / limit:.1%} of the {limit:,} limit",
                        hint="a different tokenizer may count it over the limit"),)


class EmptyOutput(RecordRule):
    """## What it does
    Flags a model turn that is empty or near-empty: no letter or digit in it (only whitespace
    or punctuation), or fewer than `tokens.min_output_tokens` tokens.

    ## Why is this bad?
    The model learns to answer with nothing. Each model turn is a training record you pay for,
    and an empty target teaches the model to stop early.

    ## Example
    `{"role": "model", "parts": [{"text": " "}]}` or `"..."`.
    Use instead: write the answer, or drop the example.

    ## Options
    - `tokens.min_output_tokens`: the fewest tokens a model turn should have (default 1: only
      turns without a letter or digit are flagged).
    """

    code = "TOK003"
    name = "empty-output"
    default_severity = Severity.WARNING

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        m = measure(example, ctx)
        minimum = int(ctx.profile.tokens["min_output_tokens"])
        out = []
        for k in m.model_turns:
            if k in m.empty_model_turns:
                out.append(self.at(example, f"model turn {k + 1} has no letter or digit", pointer=_pointer(k)))
            elif m.turn_tokens[k] is not None and m.turn_tokens[k] + m.media[k] < minimum:  # type: ignore[operator]
                n = m.turn_tokens[k] + m.media[k]  # type: ignore[operator]
                out.append(self.at(example, f"model turn {k + 1} has {n} token{'s' * (n != 1)}; "
                                            f"at least {minimum} expected", pointer=_pointer(k)))
        return out


class LongOutput(RecordRule):
    """## What it does
    Flags a model turn with more tokens than `tokens.max_output_tokens`. Off by default; turn it
    on for classification or extraction data, where an answer should be a label or a field.

    ## Why is this bad?
    A long answer in a dataset of short ones is usually a labelling or formatting slip (a
    whole document pasted as the label), and it dominates the loss of its record.

    ## Example
    A sentiment dataset whose answers are one word, with one 900-token answer.
    Use instead: fix the answer. Enable with `--select TOK004` or `rules: {TOK004: {enabled: true}}`.

    ## Options
    - `tokens.max_output_tokens`: the most tokens a model turn may have (default 1,024).
    """

    code = "TOK004"
    name = "long-output"
    default_severity = Severity.WARNING
    enabled_by_default = False

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        m = measure(example, ctx)
        maximum = int(ctx.profile.tokens["max_output_tokens"])
        out = []
        for k in m.model_turns:
            n = m.turn_tokens[k]
            if n is not None and n + m.media[k] > maximum:
                out.append(self.at(example, f"model turn {k + 1} has {n + m.media[k]:,} tokens; "
                                            f"at most {maximum:,} expected", pointer=_pointer(k)))
        return out


class DominantPrompt(RecordRule):
    """## What it does
    Notes a long context with a tiny answer: the model's answers have at most
    `tokens.dominant_max_answer_tokens` (16) tokens while the prompt holds more than
    `tokens.dominant_share` (95 %) of the example's tokens, in examples of at least
    `tokens.dominant_min_tokens` (512) tokens.

    Counted exactly, and only where it can fire: an answer with more whitespace-separated words
    than the maximum has more tokens than that too (each word is at least one token of a
    byte-level BPE), so such examples are not tokenised for this rule.

    ## Why is this bad?
    You pay for every input token of every record and learn only from the output: such
    examples cost much and teach little. Fine for long-document classification; worth knowing
    when it is a mistake (a whole chat history in front of a one-word label).

    ## Example
    A 6,000-token document followed by the answer "Yes".

    ## Options
    - `tokens.dominant_max_answer_tokens` (default 16), `tokens.dominant_share` (default 0.95),
      `tokens.dominant_min_tokens` (default 512).
    """

    code = "TOK005"
    name = "dominant-prompt"
    default_severity = Severity.INFO

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        m = measure(example, ctx)
        total, output = m.example_tokens, m.output_tokens
        s = ctx.profile.tokens
        if total is None or output is None or not m.model_turns or total < int(s["dominant_min_tokens"]):
            return ()
        if output > int(s["dominant_max_answer_tokens"]) or (total - output) <= float(s["dominant_share"]) * total:
            return ()
        return (self.at(example, f"the prompt holds {(total - output) / total:.1%} of {total:,} tokens; "
                                 f"the answer has {output:,}"),)
