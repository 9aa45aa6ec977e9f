"""`check`: open the inputs, run the pass, apply file rules and the gate, build the `Report`."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
import orjson

from sftgate.analysis.arrays import isin
from sftgate.analysis.heap import give_back
from sftgate._version import __version__
from sftgate.analysis import tokenizers
from sftgate.analysis.unionfind import components
from sftgate.baseline import Baseline
from sftgate.config import DEFAULT_PROFILE, Profile, load_profile, override, with_baseline
from sftgate.engine import media
from sftgate.engine import skew as skew_step
from sftgate.engine.features import (
    DedupSettings,
    FeatureTable,
    SubsetTable,
    TableSet,
    prompt_side,
)
from sftgate.engine.inputs import Input, resolve
from sftgate.engine.local import LocalExecutor, default_workers
from sftgate.engine.passes import GEMINI, PROMPTS, UNSCORED, ChunkResult, Reading
from sftgate.engine.progress import Progress
from sftgate.engine.split import (
    SplitRequest,
    cluster_strata,
    label_strata,
    plan,
    target_size,
)
from sftgate.errors import SftgateError, UsageError
from sftgate.formats import to_example
from sftgate.formats.convert import FORMATS, convert, parse_map
from sftgate.formats.gemini import display_text
from sftgate.formats.prompts import prompt_json, prompt_record
from sftgate.io.reader import BROKEN, NEWLINE
from sftgate.io.sources import Source, open_source
from sftgate.model import Action, FileStats, Finding, FindingColumns, LineStatus, Origin, Severity
from sftgate.report.model import Gate, InputSummary, Report, RuleSummary
from sftgate.rules import REGISTRY, FileRule, RuleContext, dedup, leakage
from sftgate.rules import skew as skew_rules
from sftgate.rules.advice import tokens_section
from sftgate.rules.convert import ConvertedInput
from sftgate.rules.dedup import Verification
from sftgate.rules.fmt import BOM, TruncatedInput
from sftgate.rules.tokens import TokenSettings, summarise

PathLike = str | os.PathLike[str]


MAX_EPOCHS = 1_000  # a cost estimate's epochs at most: beyond any tuning job, and the counts stay in 64 bits


def check(
    train: PathLike,
    *,
    validation: PathLike | None = None,
    eval_sets: Sequence[PathLike] = (),
    profile: str | Path = DEFAULT_PROFILE,
    rules: PathLike | None = None,
    select: str | Sequence[str] | None = None,
    ignore: str | Sequence[str] | None = None,
    workers: int | None = None,
    split_validation: float | None = None,
    seed: int = 0,
    stratify_by: str = "cluster",
    tokenizer: str | None = None,
    exact_tokens: bool = False,
    epochs: Sequence[int] | None = None,
    price_per_million: float | None = None,
    verify_media: bool = False,
    baseline: PathLike | None = None,
    input_format: str | None = None,
    mapping: str | dict[str, str] | None = None,
    production: Sequence[PathLike] = (),
    keep_source: str | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> Report:
    """Check a training file (and a validation file, and eval sets) against a profile; return
    the `Report`.

    `eval_sets` are JSONL files of examples or plain-text files (`.txt`) of one prompt per
    line; each is checked for leakage from the training data under its file stem.
    `split_validation` (a share below 1, or a number of examples) plans a validation split of
    the training file (see `engine.split`), with `seed` and `stratify_by`.
    `tokenizer` replaces the profile's `tokens.tokenizer`; `exact_tokens` counts every token
    even of large inputs; `epochs` and `price_per_million` shape the cost estimate.
    `verify_media` asks Cloud Storage whether every `gs://` fileUri of the training and
    validation files exists and is within the target's size limit (the MED rules; http(s)
    URIs are not fetched); without it nothing touches the network but gs:// inputs.
    `baseline` (a file `--write-baseline` wrote) leaves out the findings it recorded: the
    report counts them under `suppressed`, and the gate does not see them.
    `input_format` (`auto`, `gemini` or a `formats.convert.FORMATS` name; default the
    profile's `input.format`, `auto`) says how records are read: in `auto`, JSON arrays, CSV
    and Parquet files are unpacked and records in another SFT format converted to Gemini
    before the checks (the report's inputs say what was detected); `mapping` names the
    columns of a table (`"prompt=question,response=answer"` or a dict).
    `production` are samples of production prompts (JSONL of Gemini records, user turns only
    allowed, OpenAI chat requests, request-response logs or prompt strings; or `.txt` lists of
    one prompt per line), pooled: the SKEW rules compare the training file with them, and the
    report's `skew` section says how and where they differ (see `engine.skew`).
    `keep_source` (`"/source=human,curated"`: a JSON pointer into each record as read, then
    its preferred values, most preferred first) sets the survivor policy `source`: each
    duplicate cluster keeps a member of the most preferred source (`dedup.source`).
    `executor` is `local` (worker processes on this machine) or `ray` (Ray Data, extra
    `[ray]`: a local Ray instance, or the cluster at `ray_address`); both give the same report.

    Raises `SftgateError` (exit code 2 on the command line) for what stops the run from
    starting: a missing input, an invalid rules file, a bad option. Problems inside the files
    are findings in the report.
    """
    return execute(
        train, validation=validation, eval_sets=eval_sets, profile=profile, rules=rules, select=select,
        ignore=ignore, workers=workers, split_validation=split_validation, seed=seed, stratify_by=stratify_by,
        tokenizer=tokenizer, exact_tokens=exact_tokens, epochs=epochs, price_per_million=price_per_million,
        verify_media=verify_media, baseline=baseline, input_format=input_format, mapping=mapping,
        production=production, keep_source=keep_source, executor=executor, ray_address=ray_address,
    ).report


class Writing(Protocol):
    """An emit pass under way (`execute`'s `emit`)."""

    def result(self, progress: Progress) -> Any:
        """Wait for it to finish (`progress` shows the wait) and return what it wrote."""

    def stop(self) -> None:
        """Stop it early, and wait until nothing writes any more."""


@dataclass
class Execution:
    """A finished check: the report, and each input's run (what `prepare` writes from)."""

    report: Report
    profile: Profile
    runs: list[_FileRun]
    findings: list[Finding] = field(default_factory=list)  # every finding, uncapped (with all_findings)
    emitted: Any = None  # what `emit` returned


def execute(
    train: PathLike,
    *,
    validation: PathLike | None = None,
    eval_sets: Sequence[PathLike] = (),
    profile: str | Path | Profile = DEFAULT_PROFILE,
    rules: PathLike | None = None,
    select: str | Sequence[str] | None = None,
    ignore: str | Sequence[str] | None = None,
    workers: int | None = None,
    split_validation: float | None = None,
    seed: int = 0,
    stratify_by: str = "cluster",
    tokenizer: str | None = None,
    exact_tokens: bool = False,
    epochs: Sequence[int] | None = None,
    price_per_million: float | None = None,
    verify_media: bool = False,
    baseline: PathLike | None = None,
    input_format: str | None = None,
    mapping: str | dict[str, str] | None = None,
    production: Sequence[PathLike] = (),
    keep_source: str | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    emit_dir: str | None = None,
    emit: Callable[[list[_FileRun], LocalExecutor], Writing] | None = None,
    all_findings: bool = False,
    progress: Progress | None = None,
) -> Execution:
    """`check`, keeping the runs; with `emit_dir`, the training and validation passes keep
    what `prepare` needs to write their lines again (canonical records spilled there), and
    `emit(runs, executor)` starts `prepare`'s emit pass once every line's place is known, while
    the worker processes still run: before the composition and skew rules (whose findings are
    about whole files), so that the workers write while this process does the rest (the
    `Writing`'s result is `Execution.emitted`); with
    `all_findings`, `Execution.findings` holds every finding, not only those the report lists
    (what `--write-baseline` records)."""
    started = datetime.now(UTC)
    clock = time.perf_counter()
    if workers is not None and workers < 1:
        raise UsageError(f"workers must be at least 1, not {workers}")
    if emit is not None and emit_dir is None:
        raise ValueError("emit needs emit_dir: without it the pass keeps nothing to write the lines from")
    if isinstance(profile, Profile):
        resolved = profile
    else:
        resolved = load_profile(profile, rules_file=rules, select=select, ignore=ignore)
    if tokenizer is not None:
        resolved = override(resolved, {"tokens": {"tokenizer": tokenizer}})
    if input_format is not None or mapping is not None:
        resolved = override(resolved, {"input": _input_settings(input_format, mapping)})
    if keep_source is not None:
        resolved = override(resolved, {"dedup": source_settings(keep_source)})
    if baseline is not None:
        resolved = with_baseline(resolved, Baseline.load(baseline))
    shown, listed_cap = resolved, resolved.max_findings_per_rule
    if all_findings:
        resolved = override(resolved, {"report": {"max_findings_per_rule": _UNCAPPED}})
    if epochs is not None and any(not 1 <= int(e) <= MAX_EPOCHS for e in epochs):
        wrong = next(e for e in epochs if not 1 <= int(e) <= MAX_EPOCHS)
        raise UsageError(f"epochs must be between 1 and {MAX_EPOCHS:,}, not {wrong}")
    if not 0 <= int(seed) < 2**64:  # numpy's generators take 64 bits, and the manifest records it
        raise UsageError(f"the seed must be a whole number from 0 to 2^64 - 1, not {seed}")
    if price_per_million is not None and not 0 <= price_per_million < float("inf"):
        raise UsageError(f"the price per million tokens must be a number at least 0, not {price_per_million}")
    token_settings = TokenSettings.from_profile(resolved)
    if split_validation is not None and validation is not None:
        raise UsageError("--split-validation builds a validation set; it cannot be combined with --validation")
    plan_split = SplitRequest.parse(split_validation, stratify_by, seed) if split_validation is not None else None
    opened = [(open_source(train), "train", "train")]
    if validation is not None:
        opened.append((open_source(validation), "validation", "validation"))
    names = {"train", "validation"}
    for path in eval_sets:
        source = open_source(path)
        opened.append((source, "eval", _eval_name(source, names)))
    compared = len(opened) > 1
    for path in production:
        source = open_source(path)
        opened.append((source, "production", source.name))
    run_on = _executor(executor, ray_address, resolved, workers, progress or Progress())
    leak_on = any(c.startswith("LEAK") for c in resolved.selected) and compared
    dup_on = any(c.startswith("DUP") for c in resolved.selected)
    skew_on = bool(production) and any(c.startswith("SKEW") for c in resolved.selected)
    comp_on = skew_on or any(c.startswith("COMP") for c in resolved.selected)
    # Token statistics (the report's tokens section) come with the TOK rules, or when asked for.
    tokens_on = any(c.startswith("TOK") for c in resolved.selected) or exact_tokens or bool(epochs) or \
        price_per_million is not None
    # Load the tokenizer here, before any worker, so a bad spec is one error, not one per process;
    # and only when something counts tokens (loading costs a third of a second).
    counts_tokens = tokens_on or skew_on or any(
        spec.get("unit") == "tokens" and spec["code"] in resolved.selected for spec in resolved.declared)
    spec = tokenizers.resolve(resolved.tokens["tokenizer"])  # a misspelt kind is an error even so
    counter = tokenizers.load(spec, target=resolved.target) if counts_tokens else None

    runs: list[_FileRun] = []
    leakage = split_report = skew_result = None
    examples: dict[str, str] = {}
    progress = run_on.progress
    media_summary = emitted = writing = None
    with _worker_errors(), run_on, _staging(emit_dir) as stage_dir, _stopped_on_error(lambda: writing):
        try:
            inputs = [(_resolve(source, split, resolved, stage_dir), split, name) for source, split, name in opened]
            if any(run_on.uses_pool(read.source) for read, _, _ in inputs):
                if run_on.start_phase:
                    progress.phase(run_on.start_phase)
                run_on.pool()  # start workers before the hashing threads exist
            passes: list[_Pass] = []
            for read, split, name in inputs:
                if split == "production":
                    features, skew = False, skew_on
                else:
                    features = leak_on or plan_split is not None or (split == "train" and comp_on) or \
                        (dup_on and split != "eval")
                    skew = skew_on and split == "train"
                rate = None if not tokens_on else 1.0 if split in UNSCORED else \
                    token_settings.sample_rate(read.source.size, exact_tokens)
                passes.append(_Pass(read, split, name, features, rate, None if split in UNSCORED else emit_dir, skew))

            def start_the_rest(train: _FileRun) -> None:  # while this process stamps the training file's findings
                for later in passes[1:]:
                    later.start(run_on)
                if leak_on and train.table is not None and any(p.split == "eval" and p.prompts for p in passes):
                    # Bare prompts are matched against the training prompts' own band keys.
                    train.table.start_prompt_bands(DedupSettings.from_profile(resolved.dedup), run_on.map_blocks)

            for i, one in enumerate(passes):
                runs.append(_check_one(run_on, one, resolved, start_the_rest if i == 0 else None))
            if leak_on:
                progress.phase("leakage")
                leakage = _leakage(runs, resolved, run_on)
                give_back()  # the analysis' temporaries, kept by the C heap otherwise (`analysis.heap`)
            if plan_split is not None and runs[0].table is not None:
                progress.phase("validation split")
                split_report = runs[0].split_plan = _split(runs[0], resolved, plan_split, run_on)
                give_back()
            if verify_media:
                progress.phase("media")
                media_summary = _media(runs, resolved)
            if emit is not None:  # every line's place is known: the rules still to run are about whole files
                writing = emit(runs, run_on)
            if comp_on:
                progress.phase("skew" if skew_on else "composition")
                with _cores_left(run_on, writing is not None):
                    skew_result = _skew(runs, resolved, counter, skew_on)  # type: ignore[arg-type]
            examples = _examples(runs, leakage, resolved)
        finally:
            for run in runs:
                if run.table is not None:
                    run.table.close()
        checked = time.perf_counter() - clock  # the report's duration: the check's, not the writing's
        if writing is not None:
            emitted = writing.result(progress)
    progress.end_pass()

    summaries = [run.summary for run in runs]
    findings = [f for run in runs for f in run.listed()]
    counts = sum((run.counts for run in runs), Counter())
    failing = sum(len(run.failing) for run in runs)
    file_findings = sum(run.whole_file for run in runs)
    findings = sorted(findings, key=_order([s.path for s in summaries]))
    everything = findings if all_findings else []
    findings = _cap(findings, listed_cap)
    total_lines = sum(s.lines for s in summaries)
    gate = _gate(resolved, failing, total_lines, file_findings)
    listed = Counter(f.code for f in findings)
    severity = {code: resolved.severity(code) for code in counts}
    for f in findings:  # a rule may raise its findings above the configured severity (SKEW002)
        if f.severity.rank > severity[f.code].rank:
            severity[f.code] = f.severity
    rule_summaries = [
        RuleSummary(code, resolved.rule_name(code), severity[code], n, listed[code])
        for code, n in sorted(counts.items()) if n
    ]
    by_severity = Counter()
    for r in rule_summaries:
        by_severity[r.severity.value] += r.count
    report = Report(
        tool_version=__version__,
        started_at=started.isoformat(timespec="seconds"),
        duration_s=round(checked, 3),  # as the JSON report keeps it: re-rendered reports match
        profile=shown.to_dict(),
        inputs=summaries,
        rules=rule_summaries,
        findings=findings,
        gate=gate,
        workers=run_on.workers,
        severity_counts=dict(by_severity),
        duplicates=[run.duplicates for run in runs if run.duplicates is not None],
        leakage=leakage,
        split=split_report,
        tokens=tokens_section([run.tokens for run in runs if run.tokens is not None], resolved,
                              tokenizer=counter.describe(resolved.target), epochs=epochs,  # type: ignore[union-attr]
                              price_per_million=price_per_million) if tokens_on else None,
        media=media_summary,
        skew=skew_result.to_dict() if skew_result is not None else None,
        suppressed=_suppressed(runs, resolved),
        examples=examples,
    )
    return Execution(report=report, profile=resolved, runs=runs, findings=everything, emitted=emitted)


@contextmanager
def _cores_left(executor: LocalExecutor, writing: bool) -> Iterator[None]:
    """While `prepare`'s writers run in this machine's worker processes, the BLAS and OpenMP
    thread pools of the skew and composition rules (k-means, SVD, the classifier) are held to
    the cores the workers leave, at least one: a second thread would wait for a core a writer
    holds, and OpenBLAS and OpenMP threads spin while they wait."""
    if not writing or type(executor) is not LocalExecutor:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=max(1, default_workers() - executor.workers)):
        yield


_UNCAPPED = 1 << 62
_ADD_BATCH = 1 << 16  # findings _FileRun.add stamps at a time


def _input_settings(input_format: str | None, mapping: str | dict[str, str] | None) -> dict:
    """The profile's `input` section as `--input-format` and `--map` set it."""
    settings: dict = {}
    if input_format is not None:
        if input_format not in ("auto", *FORMATS):
            raise UsageError(f"unknown input format {input_format!r}; formats: auto, {', '.join(FORMATS)}")
        settings["format"] = input_format
    if mapping is not None:
        settings["map"] = parse_map(mapping) if isinstance(mapping, str) else dict(mapping)
    return settings


def source_settings(text: str) -> dict:
    """The profile's `dedup` keys `--keep-source POINTER=VALUE[,VALUE...]` sets."""
    pointer, _, values = text.partition("=")
    prefer = [v.strip() for v in values.split(",") if v.strip()]
    if not pointer.startswith("/") or not prefer:
        raise UsageError(f"--keep-source {text!r}: give a JSON pointer and the preferred values, most preferred "
                         "first, as in /source=human,curated")
    if len(set(prefer)) < len(prefer):
        raise UsageError(f"--keep-source {text!r}: a value is named twice")
    return {"survivor": "source", "source": {"field": pointer, "prefer": prefer}}


@contextmanager
def _staging(emit_dir: str | None) -> Iterator[str]:
    """Where JSON array, CSV and Parquet inputs are staged as JSON Lines: `prepare`'s spill
    directory (the emit pass reads them again), or a temporary directory for the check."""
    if emit_dir is not None:
        yield emit_dir
        return
    with tempfile.TemporaryDirectory(prefix="sftgate-stage-") as path:
        yield path


def _resolve(source: Source, split: str, profile: Profile, stage_dir: str) -> Input:
    settings = profile.data["input"]
    if split == "production":  # samples of any shape: each record is read by prompts.prompt_record
        return resolve(source, input_format=PROMPTS, mapping={}, stage_dir=stage_dir, prompts=_is_prompt_list(source))
    return resolve(source, input_format=settings["format"], mapping=dict(settings["map"]), stage_dir=stage_dir,
                   prompts=split == "eval" and _is_prompt_list(source))


def _suppressed(runs: list[_FileRun], profile: Profile) -> dict | None:
    """The report's `suppressed` section: what waivers and the baseline left out, per rule."""
    suppress = profile.suppress
    if not suppress:
        return None
    counts = sum((run.suppressed for run in runs), Counter())

    def by_code(kind: str | None) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (why, code), n in counts.items():
            if kind is None or why == kind:
                out[code] += n
        return dict(sorted(out.items()))

    base = suppress.baseline
    return {
        "findings": sum(counts.values()),
        "by_code": by_code(None),
        "waivers": {"entries": [w.to_dict() for w in suppress.waivers],
                    "findings": sum(by_code("waiver").values()), "by_code": by_code("waiver")},
        "baseline": None if base is None else {
            "file": base.path, "entries": len(base), "findings": sum(by_code("baseline").values()),
            "by_code": by_code("baseline"),
        },
    }


def _examples(runs: list[_FileRun], leakage: dict | None, profile: Profile) -> dict[str, str]:
    """The text of the records the report's duplicate clusters and leak pairs list first:
    a cluster's survivor and first member, a leaking record and its first training match."""
    limit, chars = int(profile.data["report"]["max_examples"]), int(profile.data["report"]["max_example_chars"])
    wanted: list[str] = []
    for run in runs:
        for cluster in (run.duplicates or {}).get("listed_clusters", []):
            wanted += [cluster["survivor"], cluster["members"][0]["record"]] if cluster["members"] else []
    for side in (leakage or {}).get("sets", []):
        for leak in side["listed"]:
            wanted += [leak["record"], leak["matches"][0]["record"]] if leak["matches"] else [leak["record"]]
    wanted = list(dict.fromkeys(wanted))[:limit]
    if not wanted:
        return {}
    by_source = {run.source.name: run for run in runs}
    places: dict[str, list[tuple[int, int, str]]] = {}
    for where in wanted:
        name, _, line = where.rpartition(":")
        run = by_source.get(name)
        if run is None or run.table is None or not line.isdigit():
            continue
        i = int(np.searchsorted(run.lines, int(line)))
        if i < len(run.lines) and run.lines[i] == int(line):
            offset, length = int(run.table.column("offset")[i]), int(run.table.column("length")[i])
            places.setdefault(name, []).append((offset, length, where))
    texts: dict[str, str] = {}
    for name, wanted_here in places.items():
        run = by_source[name]
        for where, data in _read_records(run.source, wanted_here):
            try:
                obj = run.parse(data)
            except orjson.JSONDecodeError:
                obj = data.decode("utf-8", "replace")
            texts[where] = display_text(obj, chars)
    return {where: texts[where] for where in wanted if where in texts}


def _read_records(source: Source, places: list[tuple[int, int, str]]) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of some lines, given as (offset, length, name), in one pass over the source."""
    with source.open() as stream:
        position = 0
        for offset, length, where in sorted(places):
            if source.seekable:
                stream.seek(offset)
            else:
                while position < offset:
                    got = stream.read(min(offset - position, 1 << 20))
                    if not got:
                        return
                    position += len(got)
            data = stream.read(length)
            position = offset + len(data)
            yield where, data


def _eval_name(source: Source, taken: set[str]) -> str:
    """An eval set's name in the report: its file stem (without .jsonl/.txt/.gz), made unique."""
    name = source.path.name
    for suffix in (".gz", ".zst", ".jsonl", ".json", ".txt"):
        name = name.removesuffix(suffix)
    base, n = name or "eval", 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


EXECUTORS = ("local", "ray")


def _executor(kind: str, address: str | None, profile: Profile, workers: int | None,
              progress: Progress) -> LocalExecutor:
    """The executor a run asked for; Ray is imported only for `ray`."""
    if kind not in EXECUTORS:
        raise UsageError(f"unknown executor {kind!r}: choose one of {', '.join(EXECUTORS)}")
    if kind == "local":
        if address is not None:
            raise UsageError("--ray-address needs --executor ray")
        return LocalExecutor(profile, workers or default_workers(), progress)
    from sftgate.engine.ray_executor import RayExecutor  # a UsageError when the extra is missing

    return RayExecutor(profile, workers, progress, address)


@contextmanager
def _stopped_on_error(writing: Callable[[], Writing | None]) -> Iterator[None]:
    """Whatever fails, the emit pass under way (if any) stops first: nothing writes while the
    workers stop and the staging area is cleaned up."""
    try:
        yield
    except BaseException:
        started = writing()
        if started is not None:
            started.stop()
        raise


@contextmanager
def _worker_errors() -> Iterator[None]:
    try:
        yield
    except BrokenProcessPool:
        raise SftgateError(
            "worker processes died; if you call sftgate.check() from a script that runs other threads, "
            "put the call under `if __name__ == '__main__':` or pass workers=1"
        ) from None


@dataclass
class _FileRun:
    """One input's results while the run goes on: dataset rules add findings to it later."""

    source: Source  # what the pass read (a staged input is named as the input)
    split: str
    name: str
    profile: Profile
    stats: FileStats
    summary: InputSummary
    lines: np.ndarray  # record index -> line
    findings: list[Finding] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    failing: set[int] = field(default_factory=set)  # lines at or above fail_on
    drop_lines: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # a drop-action finding, no fix
    fix_lines: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # a record fix (checked again after it)
    whole_file: int = 0  # findings about the file itself at or above fail_on
    table: FeatureTable | None = None
    duplicates: dict | None = None
    dup_analysis: dedup.DuplicateAnalysis | None = None
    tokens: dict | None = None  # token statistics (training and validation files)
    emits: list = field(default_factory=list)  # for `prepare`: (lines before, passes.EmitChunk) per chunk
    split_plan: dict | None = None  # the training run's planned validation split
    fingerprints: bytes = b""  # 8 bytes per record (baseline.fingerprint), aligned with `lines`
    suppressed: Counter[tuple[str, str]] = field(default_factory=Counter)  # (waiver|baseline, code) -> findings
    reading: Reading = GEMINI  # how its records are read (converted from another format)
    bare_prompts: int = 0  # production samples read from a bare prompt (no system instruction known)
    # Findings of file and dataset rules kept per code: the first `keep` in report order are all
    # a report lists (every one with `all_findings`, whose cap is out of reach).
    keep: int = 0
    capped: dict[str, list[Finding]] = field(default_factory=dict)
    # For prepare (else None): every dataset-rule finding whose action is drop, as the reason its
    # line is quarantined, in groups in the order found: a list of (line, code, message, pointer,
    # column, related, similarity) tuples (light, and they leave the GC alone), or columns.
    reasons: list[list[tuple] | FindingColumns] | None = None
    planned: bool = False  # prepare has placed the lines: no finding may drop one any more

    def parse(self, data: bytes) -> object:
        """A line of this input as the checks saw it: parsed, converted to Gemini when the input
        is in another format (the source record when it does not convert); raises
        orjson.JSONDecodeError."""
        if self.split in UNSCORED and _is_prompt_list(self.source):
            data = prompt_json(data)
        obj = orjson.loads(data)
        if self.reading.format == PROMPTS:
            return prompt_record(obj).record or obj
        if self.reading.converts:
            converted = convert(obj, self.reading.format, dict(self.reading.mapping)).record
            return obj if converted is None else converted
        return obj

    def add(self, found: Iterable[Finding | FindingColumns]) -> None:
        """Findings of file and dataset rules: stamped with the profile's severity and the
        record's fingerprint, checked against waivers and the baseline, and counted. Taken in
        batches, so that a rule's million findings never all exist at once when `keep` caps them;
        columns as columns (`_add_columns`)."""
        found = iter(found)
        while batch := list(islice(found, _ADD_BATCH)):
            at = 0
            for i, item in enumerate(batch):
                if isinstance(item, FindingColumns):
                    self._add(batch[at:i])  # type: ignore[arg-type]
                    self._add_columns(item)
                    at = i + 1
            self._add(batch[at:])  # type: ignore[arg-type]

    def _add_columns(self, found: FindingColumns) -> None:
        """`_add` of many findings of one rule at once: counted, capped and kept as reasons with
        array operations; only those a report may list become `Finding`s. Waivers and the
        baseline that may leave some out judge them one at a time, and so does a rule that may
        raise its severity."""
        profile, code = self.profile, found.code
        if code not in profile.selected or not len(found):
            return
        rule = REGISTRY.get(code)
        if profile.suppress.judges(code) or getattr(rule, "escalates", False):
            for start in range(0, len(found), _ADD_BATCH):
                self._add(list(found.take(slice(start, start + _ADD_BATCH))))
            return
        severity = profile.severity(code)
        self.counts[code] += len(found)
        if severity.rank >= profile.fail_on.rank:
            self.failing.update(found.lines.tolist())
        if self.reasons is not None and getattr(rule, "kind", "") == "dataset" and profile.action(code) is Action.DROP:
            self._dropping(code)
            self.reasons.append(found)
        # A report lists the first `keep` of a code in line order (one source, no pointers).
        first = found.take(np.argsort(found.lines, kind="stable")[:self.keep])
        prints = self.fingerprints_of(first.lines.tolist())
        kept = self.capped.setdefault(code, [])
        kept.extend(first.finding(i, severity, fingerprint) for i, fingerprint in enumerate(prints))
        if len(kept) >= max(4 * self.keep, _ADD_BATCH):
            self._trim(code)

    def listed(self) -> list[Finding]:
        """The findings a report may list: the pass's, and of each other code the first `keep`."""
        return self.findings + [f for code in sorted(self.capped) for f in self._trim(code)]

    def _trim(self, code: str) -> list[Finding]:
        kept = self.capped[code]
        if len(kept) > self.keep:
            kept.sort(key=_order([self.source.name]))
            del kept[self.keep:]
        return kept

    def _add(self, found: list[Finding]) -> None:
        profile = self.profile
        suppress = profile.suppress or None
        selected = profile.selected
        fail_rank = profile.fail_on.rank
        found = [f for f in found if f.code in selected]
        prints = iter(self.fingerprints_of([f.line for f in found if f.fingerprint is None]))
        severities: dict[str, tuple[Severity, bool, int, bool]] = {}
        reasons = self.reasons
        for f in found:
            code = f.code
            if code not in severities:
                severity = profile.severity(code)
                rule = REGISTRY.get(code)
                drops = getattr(rule, "kind", "") == "dataset" and profile.action(code) is Action.DROP
                severities[code] = (severity, getattr(rule, "escalates", False), severity.rank, drops)
            severity, escalates, rank, drops = severities[code]
            if escalates and f.severity.rank > rank:
                severity, rank = f.severity, f.severity.rank  # the rule's own second threshold (SKEW002 at skew.auc_error)
            finding = Finding(code, severity, f.message, f.source, f.line, f.pointer, f.column, f.hint, f.related,
                              f.similarity, f.fingerprint or next(prints))
            if suppress is not None and (why := suppress.why(finding)) is not None:
                self.suppressed[why, code] += 1
                continue
            if drops and reasons is not None and f.line is not None:
                self._dropping(code)
                if not reasons or not isinstance(reasons[-1], list):
                    reasons.append([])
                reasons[-1].append((f.line, code, f.message, f.pointer, f.column, f.related,  # type: ignore[union-attr]
                                    f.similarity))
            kept = self.capped.setdefault(code, [])
            kept.append(finding)
            if len(kept) >= max(4 * self.keep, _ADD_BATCH):
                self._trim(code)
            self.counts[code] += 1
            if rank >= fail_rank:
                if finding.line is None:
                    self.whole_file += 1
                else:
                    self.failing.add(finding.line)

    def _dropping(self, code: str) -> None:
        if self.planned:  # a bug: the outputs would not say what the report does
            raise RuntimeError(f"{self.source.name}: {code} drops lines after prepare placed them")

    def fingerprints_of(self, lines: list[int | None]) -> list[str | None]:
        """The fingerprints of the records on some lines (None: not a record, or no line)."""
        if not lines:
            return []
        wanted = np.array([-1 if line is None else line for line in lines], dtype=np.int64)
        at = np.minimum(np.searchsorted(self.lines, wanted), max(len(self.lines) - 1, 0))
        known = (self.lines[at] == wanted) if len(self.lines) else np.zeros(wanted.size, dtype=bool)
        data = self.fingerprints
        return [data[8 * i:8 * i + 8].hex() if ok else None
                for i, ok in zip(at.tolist(), known.tolist(), strict=True)]


@dataclass
class _Pass:
    """One input's check pass, as `execute` plans it."""

    read: Input
    split: str
    name: str
    features: bool
    token_sample: float | None
    emit_dir: str | None
    skew: bool
    started: Iterator[ChunkResult] | None = None  # its chunks, handed to the workers before it was its turn

    @cached_property
    def json_array(self) -> bool:  # a JSON array written as .jsonl: its lines are only counted (read once)
        read = self.read
        return not read.staged and read.reading.container == "jsonl" and _is_json_array(read.source)

    @property
    def prompts(self) -> bool:
        return self.split in UNSCORED and _is_prompt_list(self.read.source)

    def start(self, executor: LocalExecutor) -> None:
        """Hand this pass's chunks to the workers now, when they read the input by ranges: they
        check it while this process does other work, and `_check_one` merges the results."""
        if not self.json_array:
            self.started = executor.start_check(self.read.source, self.split, features=self.features,
                                                prompts=self.prompts, token_sample=self.token_sample,
                                                emit_dir=self.emit_dir, reading=self.read.reading, skew=self.skew)


def _check_one(executor: LocalExecutor, one: _Pass, profile: Profile,
               meanwhile: Callable[[_FileRun], None] | None = None) -> _FileRun:
    """One input's pass and file rules, and the training and validation files' duplicate
    analysis; `meanwhile(run)` is called once the pass and the analysis are done, before their
    findings are stamped (the parent's own work, while the workers can take more)."""
    read, split, name, token_sample, emit_dir = one.read, one.split, one.name, one.token_sample, one.emit_dir
    source, reading = read.source, read.reading
    executor.progress.phase(f"check {source.name}", source.size if source.compression is None else None)
    digest = _Sha256(read.original)
    if one.json_array:
        result, broken = _count_only(source), None
        json_array = True
    else:
        prompts = one.prompts
        result, broken = executor.check_source(source, split, features=one.features, prompts=prompts,
                                               token_sample=token_sample, emit_dir=emit_dir, reading=reading,
                                               skew=one.skew, started=one.started)
        if prompts:
            result.bare_prompts = sum(n for status, n in result.status.items() if LineStatus(status).is_record)
        json_array = False
    stats = FileStats(
        source=source.name, split=split, size=source.size, content_bytes=result.content_bytes,
        lines=result.lines, records=sum(n for status, n in result.status.items() if LineStatus(status).is_record),
        status=dict(result.status), crlf_lines=result.crlf_lines, first_crlf_line=result.first_crlf_line,
        final_newline=result.last_end == NEWLINE or read.staged, broken=broken, json_array=json_array,
        container=reading.container, input_format=reading.format, media_records=result.media_records, record_lines=result.record_lines,
        media_resolution=result.media_resolution, has_system=result.has_system,
    )
    run = _FileRun(source=source, split=split, name=name, profile=profile, stats=stats, reading=reading,
                   summary=_summary(read, split, stats, digest.result()),
                   lines=np.frombuffer(result.record_lines, dtype=np.int64),
                   findings=list(result.findings), counts=Counter(result.counts), failing=set(result.failing_lines),
                   keep=profile.max_findings_per_rule, reasons=None if emit_dir is None else [],
                   emits=result.emits, drop_lines=np.frombuffer(result.drop_lines, dtype=np.int64),
                   fix_lines=np.frombuffer(result.fix_lines, dtype=np.int64),
                   fingerprints=bytes(result.record_fingerprints), suppressed=Counter(result.suppressed),
                   bare_prompts=result.bare_prompts)
    if result.tokens is not None:
        run.tokens = {"split": split, "source": source.name,
                      **summarise(result.tokens, TokenSettings.from_profile(profile), sample_rate=token_sample or 1.0)}
    extra = _file_findings(stats, split, profile)
    if emit_dir is not None:  # prepare writes the file's records as Gemini JSON Lines: CNV003 is what it fixes
        extra = [f for f in extra if f.code != ConvertedInput.code]
    if broken and result.last_end != BROKEN:
        extra.append(TruncatedInput.finding(source.name, None, f"input ends early: {broken}; "
                                            f"{stats.lines:,} lines were read", hint="copy the file again"))
    run.add(extra)
    if isinstance(result.features, FeatureTable):
        run.table = result.features
        if split not in UNSCORED and any(c.startswith("DUP") for c in profile.selected):
            executor.progress.phase(f"duplicates {source.name}")
            analysis = run.dup_analysis = _duplicates(run, profile, executor, profile.selected)
            if meanwhile is not None:
                meanwhile(run)
                meanwhile = None
            run.add(dedup.findings(analysis, RuleContext(profile=profile, split=split), profile.selected))
            run.duplicates = dedup.summary(analysis, split, profile.dedup["max_clusters"])
    if meanwhile is not None:
        meanwhile(run)
    return run


def _is_prompt_list(source: Source) -> bool:
    """An eval set written as plain text, one prompt per line (`.txt`, optionally compressed)."""
    return source.path.name.removesuffix(".gz").removesuffix(".zst").endswith(".txt")


def _duplicates(run: _FileRun, profile: Profile, executor: LocalExecutor,
                selected: frozenset[str]) -> dedup.DuplicateAnalysis:
    table = run.table
    assert table is not None
    settings = DedupSettings.from_profile(profile.dedup)
    columns = {name: table.column(name) for name in
               ("exact", "prompt", "response", "media", "prompt_tokens", "response_tokens", "bands", "rank")}
    return dedup.analyse(
        source=run.source.name, lines=run.lines, columns=columns, tokens=table,
        snippets=table.snippets, section=profile.dedup, bands=settings.bands, rows=settings.rows,
        selected=selected, verify=executor.verify_edges, eligible=~isin(run.lines, run.drop_lines),
        clusterer=executor.cluster_rows, band_map=executor.map_bands,
    )


_LEAK_COLUMNS = ("exact", "asked", "answered", "spaceless", "media", "prompt_tokens", "response_tokens", "bands")


def _side(run: _FileRun, analysis: dedup.DuplicateAnalysis | None = None) -> leakage.Side:
    """The run as the leakage analysis sees it; a training run's families are its DUP clusters
    (those of `analysis`, or of the run's own duplicate analysis) joined with exact copies."""
    assert run.table is not None
    columns = {c: run.table.column(c) for c in _LEAK_COLUMNS}
    analysis = analysis or run.dup_analysis
    family = None
    if run.split == "train":
        family = leakage.families(columns["exact"], _cluster_edges(analysis))
    return leakage.Side(name=run.name, split=run.split, source=run.source.name, lines=run.lines,
                        columns=columns, tokens=run.table, family=family)


def _cluster_edges(analysis: dedup.DuplicateAnalysis | None) -> np.ndarray:
    """(m, 2) (member, the record it matched) of every duplicate cluster."""
    return np.zeros((0, 2), dtype=np.int64) if analysis is None else analysis.matched


def _leakage(runs: list[_FileRun], profile: Profile, executor: LocalExecutor) -> dict | None:
    """LEAK findings on the runs they belong to; the report's `leakage` section."""
    train, others = runs[0], [run for run in runs[1:] if run.table is not None and run.split != "production"]
    if train.table is None or not others:
        return None
    settings = DedupSettings.from_profile(profile.dedup)
    if train.dup_analysis is None and {"LEAK003", "LEAK004"} & profile.selected:
        # N-gram boilerplate is counted in documents: the training file's duplicate families
        # are needed whether or not the DUP rules report anything.
        train.dup_analysis = _duplicates(train, profile, executor, frozenset({"DUP001", "DUP002"}))
    sides = [_side(run) for run in [train, *others]]
    tables = {id(side): run for side, run in zip(sides, [train, *others], strict=True)}

    texts: dict[tuple[int, int], str] = {}

    def text_of(side: leakage.Side, record: int) -> str:
        if (id(side), record) not in texts:
            texts[id(side), record] = read_text(side, record)
        return texts[id(side), record]

    def read_text(side: leakage.Side, record: int) -> str:
        run = tables[id(side)]
        table = run.table
        data = _read_record(run.source, int(table.column("offset")[record]), int(table.column("length")[record]))
        try:
            obj = run.parse(data)
            return prompt_side(to_example(obj, Origin(run.source.name, 0, 0, 0)), settings)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return ""

    analysis = _analyse_leaks(sides, profile, profile.selected, executor, text_of)
    found = leakage.findings(analysis, RuleContext(profile=profile, split="train"), profile.selected)
    by_source = {run.source.name: run for run in runs}
    grouped: dict[str, list[Finding]] = {}
    for finding in found:
        grouped.setdefault(finding.source, []).append(finding)
    for name, theirs in grouped.items():  # in batches: a run stamps many findings at once
        by_source[name].add(theirs)
    return leakage.summary(analysis)


def _skew(runs: list[_FileRun], profile: Profile, counter: tokenizers.Tokenizer,
          skew_on: bool) -> skew_rules.SkewResult | None:
    """SKEW and COMP findings on the training run; the result the report's `skew` section shows."""
    production = [run for run in runs if run.split == "production"] if skew_on else []
    result = skew_step.analyse(runs[0], production, profile, counter, _read_records)
    if result is not None:
        runs[0].add(skew_rules.findings(result, RuleContext(profile=profile, split="train"), profile.selected))
    return result


def _media(runs: list[_FileRun], profile: Profile) -> dict | None:
    """MED findings on the training and validation runs they belong to; the report's `media`
    section. None when no MED rule is selected: then nothing is asked of Cloud Storage."""
    if not any(code.startswith("MED") for code in profile.selected):
        return None
    tuned = [run for run in runs if run.split not in UNSCORED and not run.stats.json_array]
    found, summary = media.verify_media([run.source for run in tuned], profile,
                                        parsers=[run.parse if run.reading.converts else None for run in tuned])
    by_source = {run.source.name: run for run in reversed(tuned)}
    for finding in found:
        by_source[finding.source].add([finding])
    return summary


def _analyse_leaks(sides: list[leakage.Side], profile: Profile, selected: frozenset[str], executor: LocalExecutor,
                   text_of: leakage.TextOf | None = None) -> leakage.LeakAnalysis:
    """`leakage.analyse` of sides[1:] against sides[0]; each side's tokens is a FeatureTable or SubsetTable."""
    settings = DedupSettings.from_profile(profile.dedup)
    bands: dict[int, leakage.Started] = {}

    def prompt_bands(side: leakage.Side) -> leakage.Started:
        if id(side) not in bands:
            bands[id(side)] = side.tokens.start_prompt_bands(settings, executor.map_blocks)  # type: ignore[attr-defined]
        return bands[id(side)]

    return leakage.analyse(
        train=sides[0], others=sides[1:], settings=leakage.LeakSettings.from_profile(profile.leak),
        verification=Verification.from_profile(profile.dedup["near"]), selected=selected,
        tokens=TableSet([side.tokens for side in sides]), prompt_bands=prompt_bands,  # type: ignore[misc]
        text_of=text_of, verify=executor.start_verify, each=executor.map_blocks, band_map=executor.map_bands,
    )


_SPLIT_CHECK = frozenset({"LEAK001", "LEAK002", "LEAK003"})
_SPLIT_ROUNDS = 5


def _split(run: _FileRun, profile: Profile, request: SplitRequest, executor: LocalExecutor) -> dict:
    """Plan a validation split of the training file; the report's `split` section."""
    table = run.table
    assert table is not None
    n = len(table)
    section = profile.leak["split"]
    requested, target, capped_by = target_size(request, n, profile.limits.get("max_validation_examples"),
                                               float(section["max_fraction"]))
    analysis = run.dup_analysis or _duplicates(run, profile, executor, frozenset({"DUP001", "DUP002"}))
    settings = leakage.LeakSettings.from_profile(profile.leak)
    whole = _side(run, analysis)
    edges = [_cluster_edges(analysis), leakage.source_edges(whole, settings)]
    groups = components(n, np.concatenate(edges))
    if request.stratify_by == "cluster":
        strata = cluster_strata(groups)
    elif request.stratify_by == "label":
        strata = label_strata(table.column("response"), table.column("response_tokens"),
                              int(section["label_max_tokens"]))
    else:
        strata = np.zeros(n, dtype=np.int64)
    blocked = np.zeros(n, dtype=bool)
    validation = plan(groups, strata, request, target)

    # The leak check of the result: the two parts against each other. Whatever still leaks
    # (what sampling or star-shaped candidate edges missed) goes back to training with its
    # group, and the plan is redone without those groups, until the check is clean.
    moved, rounds, clean, kinds = 0, 0, True, {}
    while validation.any():
        rounds += 1
        parts = [_subset_side(run, np.flatnonzero(~validation), "train", "train", whole.family),
                 _subset_side(run, np.flatnonzero(validation), "validation", "validation")]
        check = _analyse_leaks(parts, profile, _SPLIT_CHECK, executor)
        leaking = sorted({leak.record for leak in check.sides[0].leaks})
        kinds = {leakage.KINDS[code]: sum(1 for leak in check.sides[0].leaks if leak.code == code)
                 for code in sorted(_SPLIT_CHECK)}
        clean = not leaking
        if clean or rounds > _SPLIT_ROUNDS:
            break
        back = isin(groups, groups[parts[1].tokens.records[leaking]])  # type: ignore[attr-defined]
        moved += int((back & validation).sum())
        blocked |= back
        if rounds < _SPLIT_ROUNDS:
            validation = plan(groups, strata, request, target, blocked)  # refill without them
        else:
            validation &= ~blocked  # last round: only take out, then check once more
    lines = run.lines
    sizes = np.bincount(np.unique(groups, return_inverse=True)[1].ravel())
    return {
        "requested": request.size if request.size < 1 else int(request.size),
        "requested_examples": requested,
        "target_examples": target,
        "capped_by": capped_by,
        "seed": request.seed,
        "stratify_by": request.stratify_by,
        "records": n,
        "train_examples": int(n - validation.sum()),
        "validation_examples": int(validation.sum()),
        "groups": int(sizes.size),
        "groups_kept_whole": int((sizes > 1).sum()),
        "largest_group": int(sizes.max(initial=0)),
        "leak_check": {"clean": clean, "rounds": rounds, "moved_back": moved, "last_round": kinds},
        "validation_lines": lines[validation].tolist(),
    }


def _subset_side(run: _FileRun, records: np.ndarray, name: str, split: str,
                 family: np.ndarray | None = None) -> leakage.Side:
    """Some records of the run as a side of their own; `family` (the whole run's) is relabelled
    to the subset's indices: each record by the first subset record of its family."""
    assert run.table is not None
    subset = SubsetTable(run.table, records)
    if family is not None:
        _, first, inverse = np.unique(family[records], return_index=True, return_inverse=True)
        family = first[inverse.ravel()]
    return leakage.Side(name=name, split=split, source=run.source.name, lines=run.lines[records],
                        columns={c: subset.column(c) for c in _LEAK_COLUMNS}, tokens=subset, family=family)


def _read_record(source: Source, offset: int, length: int) -> bytes:
    """One line's bytes, by its offset in the (decompressed) content."""
    return next((data for _, data in _read_records(source, [(offset, length, "")])), b"")


def _file_findings(stats: FileStats, split: str, profile: Profile) -> list[Finding]:
    ctx = RuleContext(profile=profile, split=split)
    out: list[Finding] = []
    for code in sorted(REGISTRY):
        rule = REGISTRY[code]
        if split in UNSCORED and not code.startswith("FMT"):
            continue  # an eval set or production sample is read, not tuned on: only its format matters
        if issubclass(rule, FileRule) and profile.is_on(code):
            out.extend(rule().check(stats, ctx))
    return out


def _is_json_array(source: Source) -> bool:
    """A file whose first value is a JSON array of records, rather than JSON Lines.

    True when the first non-blank byte is `[` and either the first line is not complete JSON
    (a pretty-printed array) or it is the only non-blank line (a one-line array). A JSONL file
    whose first line happens to be an array gets a not-an-object finding on that line instead.
    """
    with source.open() as stream:
        try:
            head = stream.read(1 << 16)
            if head.startswith(BOM):
                head = head[3:]
            body = head.lstrip()
            if not body.startswith(b"["):
                return False
            newline = body.find(b"\n")
            if newline < 0:
                return _rest_is_one_line(stream)
        except (EOFError, OSError, zlib.error):
            return False
    line = body[:newline].rstrip()
    try:
        first = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        # An array spread over lines is cut short: its parse fails at the end of the line. A
        # line that fails earlier (bad syntax, nesting too deep) is a broken JSONL line.
        return exc.pos >= len(line) - 1
    return isinstance(first, list) and not body[newline:].strip()


def _rest_is_one_line(stream: BinaryIO) -> bool:
    """After a first line longer than the head: True if nothing but blanks follows it.

    A long line starting with `[` and followed by records is a JSONL file with a bad first line;
    alone, it is a one-line JSON array. Read in blocks, so a 2 GB line costs no memory.
    """
    seen_newline = False
    while block := stream.read(1 << 20):
        if not seen_newline:
            cut = block.find(b"\n")
            if cut < 0:
                continue
            seen_newline, block = True, block[cut + 1:]
        if block.strip():
            return False
    return True


def _count_only(source: Source) -> ChunkResult:
    """Line accounting for a file that is not read line by line (a JSON array file)."""
    result = ChunkResult()
    with source.open() as stream:
        tail = b""
        while block := stream.read(1 << 22):
            result.lines += block.count(b"\n")
            result.content_bytes += len(block)
            tail = block[-1:]
    if tail and tail != b"\n":
        result.lines += 1
    result.last_end = NEWLINE if tail == b"\n" or not tail else 1
    result.status[LineStatus.JSON_ARRAY_FILE.value] = result.lines
    return result


class _Sha256:
    """Hash a file (as stored: compressed bytes stay compressed) in a thread while the pass
    reads it (hashlib releases the GIL). A gs:// object is read a second time for it."""

    def __init__(self, source: Source) -> None:
        self._digest = ""
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(source,), daemon=True)
        self._thread.start()

    def _run(self, source: Source) -> None:
        h = hashlib.sha256()
        try:
            with source.open_raw() as fh:
                while block := fh.read(1 << 22):
                    h.update(block)
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread by result()
            self._error = exc
            return
        self._digest = h.hexdigest()

    def result(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digest


def _summary(read: Input, split: str, stats: FileStats, sha256: str) -> InputSummary:
    source = read.original
    return InputSummary(
        path=source.name, split=split, sha256=sha256, bytes=source.size, content_bytes=stats.content_bytes,
        compression=source.compression, lines=stats.lines, records=stats.records,
        accounting={k: v for k, v in stats.status.items() if v},
        blank_lines=stats.status.get(LineStatus.BLANK.value, 0), truncated=stats.broken,
        container=read.reading.container, format=read.reading.format, format_detected=read.detected,
    )


def _order(paths: list[str]):
    rank = {p: i for i, p in enumerate(paths)}

    pointers: dict[str | None, tuple] = {}

    def key(f: Finding) -> tuple:
        steps = pointers.get(f.pointer)
        if steps is None:
            # /contents/2 before /contents/10: pointer segments that are indexes compare as numbers
            steps = pointers[f.pointer] = tuple((0, int(s), "") if s.isdigit() else (1, 0, s)
                                                for s in (f.pointer or "").split("/"))
        return (rank.get(f.source, len(rank)), -1 if f.line is None else f.line, f.code, steps, f.column or 0)

    return key


def _cap(findings: list[Finding], cap: int) -> list[Finding]:
    listed: Counter[str] = Counter()
    out = []
    for f in findings:
        if listed[f.code] < cap:
            listed[f.code] += 1
            out.append(f)
    return out


def _gate(profile: Profile, failing: int, lines: int, file_findings: int) -> Gate:
    fail_on, allowed = profile.fail_on, profile.max_error_fraction
    fraction = failing / lines if lines else 0.0
    passed = file_findings == 0 and fraction <= allowed
    if file_findings:
        reason = f"{file_findings} whole-file finding(s) at {fail_on.value} or above"
    elif not passed:
        reason = (f"{failing:,} of {lines:,} lines ({fraction:.2%}) have findings at {fail_on.value} or above; "
                  f"the profile allows {allowed:.2%}")
    elif failing:
        reason = f"{failing:,} of {lines:,} lines ({fraction:.2%}) fail, within the allowed {allowed:.2%}"
    else:
        reason = f"no finding at {fail_on.value} or above"
    return Gate(passed=passed, fail_on=fail_on, max_error_fraction=allowed, failing_lines=failing,
                lines=lines, file_findings=file_findings, reason=reason)

