"""The skew and composition step of a check: feature columns and text samples in, a
`rules.skew.SkewResult` out.

The check pass has already put the skew columns (`features.SKEW_COLUMNS`) of every training
example, and of every production sample, in the runs' feature tables. This step adds what is
computed on a seeded sample only, because it costs more per text:

- the sample: the `skew.train_texts` training records (and `skew.prod_texts` production
  records) with the smallest `analysis.skew.sample_priority` of their position (the file's line
  number), read again by offset. The priority depends on the line, not on which worker read
  it, so the sample is the same for any number of workers;
- on the sample: prompt tokens (the profile's tokenizer) and language (py3langid, on the
  first 400 characters of up to 2,000 texts a side); their tests use the sample sizes.

Then `analysis.skew.analyse` compares the two sides (or, without production, describes the
training side: composition and labels), and `rules.skew.compare_systems` compares system
instructions when production says which it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from sftgate.analysis import skew as stats
from sftgate.analysis.content import detect_language
from sftgate.analysis.textfeatures import CATEGORICAL, NUMERIC, SCRIPTS
from sftgate.analysis.tokenizers import Tokenizer
from sftgate.config import Profile
from sftgate.engine.features import MEDIA_KINDS, FeatureTable
from sftgate.formats import to_example
from sftgate.model import Origin, PartKind
from sftgate.rules.skew import CompositionSettings, SkewResult, compare_systems, skew_settings

NUMERIC_COLUMNS: tuple[str, ...] = (*NUMERIC, "user_turns", "media_parts")
CATEGORICAL_COLUMNS: tuple[str, ...] = (*CATEGORICAL, "media_kind")
SAMPLED: tuple[str, ...] = ("prompt_tokens", "language")  # computed on the text samples only
LABELS: dict[str, dict[Any, str]] = {"script": dict(enumerate(SCRIPTS)), "media_kind": dict(enumerate(MEDIA_KINDS))}
_LANGUAGE_TEXTS = 2000
_LANGUAGE_CHARS = 400
_FILE_BITS = 40  # a production file's index goes above its line numbers in the sample position
_TEXT = PartKind.TEXT

ReadRecords = Callable[[Any, list[tuple[int, int, str]]], Iterator[tuple[str, bytes]]]


class Run(Protocol):
    """What this step reads of an input's run (`engine.run._FileRun`)."""

    source: Any
    lines: np.ndarray
    table: FeatureTable | None
    bare_prompts: int

    def parse(self, data: bytes) -> object: ...


@dataclass
class Sample:
    """Texts of sampled records, in file order: prompt (system instruction + user turns), the
    user turns alone, and the last model answer ("" without one)."""

    prompts: list[str]
    users: list[str]
    answers: list[str]


def analyse(train: Run, production: Sequence[Run], profile: Profile, counter: Tokenizer,
            read_records: ReadRecords) -> SkewResult | None:
    """The skew result of a check; None when the training run kept no features."""
    if train.table is None:
        return None
    section = profile.data["skew"]
    settings = skew_settings(section)
    seed = int(section["seed"])
    composition = CompositionSettings.from_profile(profile.data["composition"])
    train_sample = sample([train], settings.train_texts, seed, read_records)
    names = tuple(run.source.name for run in production)
    if not production:
        side = stats.Side(texts=train_sample.prompts, answers=train_sample.answers)
        result = stats.analyse(side, None, settings=settings, seed=seed)
        return SkewResult(train.source.name, (), seed, result, None, composition)
    prod_runs = [run for run in production if run.table is not None and run.table.has("chars")]
    prod_sample = sample(prod_runs, settings.prod_texts, seed, read_records)
    n_prod = sum(len(run.table) for run in prod_runs if run.table is not None)
    if n_prod < 2 or len(prod_sample.prompts) < 2:
        result = stats.analyse(stats.Side(texts=train_sample.prompts, answers=train_sample.answers), None,
                               settings=settings, seed=seed)
        why = (f"{n_prod:,} production prompt(s) read from {', '.join(names)}: too few to compare with the "
               f"training data (50 at the very least)")
        return SkewResult(train.source.name, names, seed, result, None, composition, too_few=why)
    train_side = _side([train], train_sample, counter, answers=True)
    prod_side = _side(prod_runs, prod_sample, counter, answers=False)
    result = stats.analyse(train_side, prod_side, settings=settings, seed=seed, labels=LABELS)
    # The sample size needed is judged on the columns of every record, not on the sampled ones.
    full = [s for s in result.numeric if s.feature not in SAMPLED]
    result = replace(result, sample_size=stats.required_production_size(full, settings=settings, n_prod=n_prod))
    system = None
    bare = sum(run.bare_prompts for run in prod_runs)
    if bare < n_prod:  # some production samples say which system instruction they were sent with
        train_keys = train.table.column("system")
        prod_keys = np.concatenate([run.table.column("system") for run in prod_runs if run.table is not None])
        known = _known_rows(prod_runs)
        system = compare_systems(train_keys, prod_keys[known], float(section["system_min_share"]))
    return SkewResult(train.source.name, names, seed, result, system, composition)


def sample(runs: Sequence[Run], k: int, seed: int, read_records: ReadRecords) -> Sample:
    """The texts of the `k` records of `runs` with the smallest sample priority, in file order."""
    positions, owners = [], []
    for i, run in enumerate(runs):
        if run.table is None:
            continue
        positions.append(run.lines.astype(np.uint64) + np.uint64(i << _FILE_BITS))
        owners.append(np.full(run.lines.size, i, dtype=np.int64))
    if not positions:
        return Sample([], [], [])
    position = np.concatenate(positions)
    owner = np.concatenate(owners)
    record = np.concatenate([np.arange(run.lines.size) for run in runs if run.table is not None])
    chosen = np.sort(stats.bottom_k(stats.sample_priority(position, seed), k))
    out = Sample([], [], [])
    for i, run in enumerate(runs):
        mine = record[chosen[owner[chosen] == i]]
        if not mine.size or run.table is None:
            continue
        offsets, lengths = run.table.column("offset"), run.table.column("length")
        places = [(int(offsets[r]), int(lengths[r]), str(r)) for r in mine.tolist()]
        texts = {int(where): _texts(run, data) for where, data in read_records(run.source, places)}
        for r in mine.tolist():
            prompt, users, answer = texts.get(r, ("", "", ""))
            out.prompts.append(prompt)
            out.users.append(users)
            out.answers.append(answer)
    return out


def _texts(run: Run, data: bytes) -> tuple[str, str, str]:
    """(prompt, user turns, last answer) of one record's line."""
    try:
        example = to_example(run.parse(data), Origin(run.source.name, 0, 0, 0))  # type: ignore[arg-type]
    except (ValueError, TypeError, KeyError, AttributeError):
        return "", "", ""

    def text(parts: tuple) -> str:
        return "\n".join(part.value for part in parts if part.kind is _TEXT)

    system = text(example.system)
    users = "\n".join(text(turn.parts) for turn in example.turns if turn.effective_role == "user")
    last = example.last_model_index
    answer = text(example.turns[last].parts) if last is not None else ""
    return f"{system}\n{users}".strip(), users, answer


def _side(runs: Sequence[Run], texts: Sample, counter: Tokenizer, *, answers: bool) -> stats.Side:
    tables = [run.table for run in runs if run.table is not None]
    numeric = {name: np.concatenate([t.column(name) for t in tables]) for name in NUMERIC_COLUMNS}
    categorical = {name: np.concatenate([t.column(name) for t in tables]) for name in CATEGORICAL_COLUMNS}
    numeric["prompt_tokens"] = np.array(counter.count(texts.users), dtype=np.int64)
    languages = [detect_language(t[:_LANGUAGE_CHARS])[0] or "unknown" for t in texts.users[:_LANGUAGE_TEXTS]]
    categorical["language"] = np.array(languages, dtype=object).astype(str)
    return stats.Side(numeric=numeric, categorical=categorical, texts=texts.prompts,
                      answers=texts.answers if answers else None)


def _known_rows(runs: Sequence[Run]) -> np.ndarray:
    """Which production records' system instruction is known: those of files not made only of
    bare prompts (within a file, bare and structured samples are not told apart by record)."""
    parts = [np.full(len(run.table), run.bare_prompts < len(run.table), dtype=bool)
             for run in runs if run.table is not None]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
