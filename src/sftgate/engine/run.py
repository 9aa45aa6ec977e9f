"""`check`: open the inputs, run the pass, apply file rules and the gate, build the `Report`."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import orjson

from sftgate._version import __version__
from sftgate.config import DEFAULT_PROFILE, Profile, load_profile
from sftgate.engine.features import DedupSettings, FeatureTable
from sftgate.engine.local import LocalExecutor, default_workers
from sftgate.engine.passes import ChunkResult
from sftgate.errors import SftgateError, UsageError
from sftgate.io.reader import BROKEN, NEWLINE
from sftgate.io.sources import Source, open_source
from sftgate.model import FileStats, Finding, LineStatus
from sftgate.report.model import Gate, InputSummary, Report, RuleSummary
from sftgate.rules import REGISTRY, FileRule, RuleContext, dedup
from sftgate.rules.fmt import BOM, TruncatedInput

PathLike = str | os.PathLike[str]


def check(
    train: PathLike,
    *,
    validation: PathLike | None = None,
    profile: str | Path = DEFAULT_PROFILE,
    rules: PathLike | None = None,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    workers: int | None = None,
) -> Report:
    """Check a training file (and a validation file) against a profile; return the `Report`.

    Raises `SftgateError` (exit code 2 on the command line) for what stops the run from
    starting: a missing input, an invalid rules file, a bad option. Problems inside the files
    are findings in the report.
    """
    started = datetime.now(UTC)
    clock = time.perf_counter()
    if workers is not None and workers < 1:
        raise UsageError(f"workers must be at least 1, not {workers}")
    resolved = load_profile(profile, rules_file=rules, select=select, ignore=ignore)
    inputs = [(open_source(train), "train")]
    if validation is not None:
        inputs.append((open_source(validation), "validation"))
    n_workers = workers or default_workers()

    summaries, findings, counts, failing, file_findings, duplicates = [], [], Counter(), 0, 0, []
    with _worker_errors(), LocalExecutor(resolved, n_workers) as executor:
        if any(executor.uses_pool(source) for source, _ in inputs):
            executor.pool()  # start workers before the hashing threads exist
        for source, split in inputs:
            digest = _Sha256(source.path)
            stats, file_found, counts_here, failing_here, whole_file, dup = _check_one(executor, source, split, resolved)
            if dup is not None:
                duplicates.append(dup)
            summaries.append(_summary(source, split, stats, digest.result()))
            findings.extend(file_found)
            counts.update(counts_here)
            failing += failing_here
            file_findings += whole_file

    findings = _cap(sorted(findings, key=_order([s.path for s in summaries])), resolved.max_findings_per_rule)
    total_lines = sum(s.lines for s in summaries)
    gate = _gate(resolved, failing, total_lines, file_findings)
    listed = Counter(f.code for f in findings)
    rule_summaries = [
        RuleSummary(code, REGISTRY[code].name, resolved.severity(code), n, listed[code])
        for code, n in sorted(counts.items()) if n
    ]
    by_severity = Counter()
    for r in rule_summaries:
        by_severity[r.severity.value] += r.count
    return Report(
        tool_version=__version__,
        started_at=started.isoformat(timespec="seconds"),
        duration_s=time.perf_counter() - clock,
        profile=resolved.to_dict(),
        inputs=summaries,
        rules=rule_summaries,
        findings=findings,
        gate=gate,
        workers=n_workers,
        severity_counts=dict(by_severity),
        duplicates=duplicates,
    )


@contextmanager
def _worker_errors() -> Iterator[None]:
    try:
        yield
    except BrokenProcessPool:
        raise SftgateError(
            "worker processes died; if you call sftgate.check() from a script that runs other threads, "
            "put the call under `if __name__ == '__main__':` or pass workers=1"
        ) from None


def _check_one(
    executor: LocalExecutor, source: Source, split: str, profile: Profile
) -> tuple[FileStats, list[Finding], Counter[str], int, int, dict | None]:
    """(file stats, all findings, counts per code, lines failing the gate, whole-file failures,
    the duplicates summary or None)."""
    if _is_json_array(source):
        result, broken = _count_only(source), None
        json_array = True
    else:
        result, broken = executor.check_source(source, split)
        json_array = False
    stats = FileStats(
        source=source.name, split=split, size=source.size, content_bytes=result.content_bytes,
        lines=result.lines, records=sum(n for status, n in result.status.items() if LineStatus(status).is_record),
        status=dict(result.status), crlf_lines=result.crlf_lines, first_crlf_line=result.first_crlf_line,
        final_newline=result.last_end == NEWLINE, broken=broken, json_array=json_array,
        media_records=result.media_records, record_lines=result.record_lines,
        media_resolution=result.media_resolution, has_system=result.has_system,
    )
    findings = list(result.findings)
    counts = Counter(result.counts)
    failing = set(result.failing_lines)
    extra = _file_findings(stats, split, profile)
    if broken and result.last_end != BROKEN:
        extra.append(TruncatedInput.finding(source.name, None, f"input ends early: {broken}; "
                                            f"{stats.lines:,} lines were read", hint="copy the file again"))
    duplicates = None
    if isinstance(result.features, FeatureTable):
        try:
            analysis = _duplicates(result, source.name, profile, executor)
        finally:
            result.features.close()
        extra.extend(dedup.findings(analysis, RuleContext(profile=profile, split=split), profile.selected))
        duplicates = dedup.summary(analysis, split, profile.dedup["max_clusters"])
    whole_file = 0  # findings about the file itself at or above fail_on: they fail the gate
    for finding in extra:
        if finding.code not in profile.selected:
            continue
        finding = replace(finding, severity=profile.severity(finding.code))
        findings.append(finding)
        counts[finding.code] += 1
        if finding.severity.at_least(profile.fail_on):
            if finding.line is None:
                whole_file += 1
            else:
                failing.add(finding.line)
    return stats, findings, counts, len(failing), whole_file, duplicates


def _duplicates(result: ChunkResult, source: str, profile: Profile, executor: LocalExecutor) -> dedup.DuplicateAnalysis:
    table = result.features
    assert isinstance(table, FeatureTable)
    settings = DedupSettings.from_profile(profile.dedup)
    columns = {name: table.column(name) for name in
               ("exact", "prompt", "response", "media", "prompt_tokens", "response_tokens", "bands")}
    return dedup.analyse(
        source=source, lines=np.frombuffer(result.record_lines, dtype=np.int64), columns=columns, tokens=table,
        snippets=table.snippets, section=profile.dedup, bands=settings.bands, rows=settings.rows,
        selected=profile.selected, verify=executor.verify_edges,
    )


def _file_findings(stats: FileStats, split: str, profile: Profile) -> list[Finding]:
    ctx = RuleContext(profile=profile, split=split)
    out: list[Finding] = []
    for code in sorted(REGISTRY):
        rule = REGISTRY[code]
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
    """Hash a file in a thread while the pass reads it (hashlib releases the GIL)."""

    def __init__(self, path: Path) -> None:
        self._digest = ""
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
        self._digest = h.hexdigest()

    def result(self) -> str:
        self._thread.join()
        return self._digest


def _summary(source: Source, split: str, stats: FileStats, sha256: str) -> InputSummary:
    return InputSummary(
        path=source.name, split=split, sha256=sha256, bytes=source.size, content_bytes=stats.content_bytes,
        compression=source.compression, lines=stats.lines, records=stats.records,
        accounting={k: v for k, v in stats.status.items() if v},
        blank_lines=stats.status.get(LineStatus.BLANK.value, 0), truncated=stats.broken,
    )


def _order(paths: list[str]):
    rank = {p: i for i, p in enumerate(paths)}

    def key(f: Finding) -> tuple:
        # /contents/2 before /contents/10: pointer segments that are indexes compare as numbers
        steps = tuple((0, int(s), "") if s.isdigit() else (1, 0, s) for s in (f.pointer or "").split("/"))
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

