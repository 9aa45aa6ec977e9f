"""`prepare`: check, then write what passed: Vertex-ready shards, the quarantine, the manifest.

The check pass (`run.execute` with an emit directory) keeps, per chunk, each line's status and
its canonical form, spilled to a temporary file (`passes.EmitChunk`). The plan gives every line
one place: a training shard, the validation file, the quarantine (with the findings whose
action is drop, or a record fix that failed), or the blank-line count. The emit pass walks the
lines in input order and copies canonical bytes from the spill; only quarantined and fixed
records are read or checked again. Nothing depends on the number of workers: outputs are
byte-identical for the same inputs, profile and seed.

Accounting, per input: lines = examples written + lines quarantined + blank lines. It is
checked before anything is published.
"""

from __future__ import annotations

import base64
import os
import shlex
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

from sftgate.analysis.arrays import isin
from sftgate._version import __version__
from sftgate.config import DEFAULT_PROFILE, Profile, load_profile
from sftgate.engine.passes import GEMINI, STATUSES, Checker, Reading, canonical
from sftgate.engine.progress import Progress
from sftgate.engine.run import Execution, PathLike, _FileRun, execute
from sftgate.errors import UsageError
from sftgate.io import gcs
from sftgate.io.reader import BROKEN, NEWLINE, LineReader
from sftgate.io.sinks import (
    Destination,
    OutputFile,
    Published,
    Staged,
    open_destination,
)
from sftgate.io.sources import Source
from sftgate.model import Action, Finding, LineStatus
from sftgate.report import json as json_report
from sftgate.report.model import Report
from sftgate.rules import REGISTRY

MANIFEST_VERSION = "1.0"
_BLANK = STATUSES.index(LineStatus.BLANK)
_RECORD = np.array([status.is_record for status in STATUSES])


@dataclass(frozen=True)
class OutputSettings:
    unknown_keys: str
    max_shard_bytes: int
    max_shard_examples: int | None
    quarantine_record_max_bytes: int

    @classmethod
    def from_profile(cls, profile: Profile, max_shard_bytes: int | None = None,
                     max_shard_examples: int | None = None) -> OutputSettings:
        section = profile.data["output"]
        size = max_shard_bytes or section["max_shard_bytes"] or profile.limits["max_file_bytes"]
        count = max_shard_examples or section["max_shard_examples"]
        if int(size) < 1 or (count is not None and int(count) < 1):
            raise UsageError("shard limits must be at least 1")
        return cls(unknown_keys=section["unknown_keys"], max_shard_bytes=int(size),
                   max_shard_examples=None if count is None else int(count),
                   quarantine_record_max_bytes=int(section["quarantine_record_max_bytes"]))


@dataclass
class Prepared:
    """What `prepare` did: the check's report, the manifest it wrote, and where the files are."""

    report: Report
    manifest: dict[str, Any]
    published: list[Published]

    @property
    def exit_code(self) -> int:
        return self.report.exit_code


def prepare(
    train: PathLike,
    *,
    out: PathLike,
    validation: PathLike | None = None,
    eval_sets: Sequence[PathLike] = (),
    split_validation: float | None = None,
    seed: int = 0,
    stratify_by: str = "cluster",
    profile: str | Path = DEFAULT_PROFILE,
    rules: PathLike | None = None,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    workers: int | None = None,
    tokenizer: str | None = None,
    exact_tokens: bool = False,
    epochs: Sequence[int] | None = None,
    price_per_million: float | None = None,
    overwrite: bool = False,
    max_shard_bytes: int | None = None,
    max_shard_examples: int | None = None,
    verify_media: bool = False,
    baseline: str | os.PathLike[str] | None = None,
    input_format: str | None = None,
    mapping: str | dict[str, str] | None = None,
    production: Sequence[str | os.PathLike[str]] = (),
    keep_source: str | None = None,
    progress: Progress | None = None,
) -> Prepared:
    """Check `train` (and `validation`, or plan a split with `split_validation`; eval sets are
    checked for leakage only), then write to `out` (a directory or `gs://bucket/prefix`):
    `train.jsonl` or `train-NNNNN-of-NNNNN.jsonl` shards, `validation.jsonl`,
    `quarantine.jsonl`, `report.json` and, last, `manifest.json`.

    Refuses a non-empty `out` unless `overwrite` (an unfinished run of ours, without a
    manifest, is resumed). The gate still applies: the outputs are written when it fails, the
    manifest says so, and `Prepared.exit_code` is 1. `verify_media` checks the gs:// media
    against Cloud Storage (see `check`): records whose media is missing or too large go to the
    quarantine. `baseline` leaves out the findings it recorded (see `check`): they neither
    fail the gate nor drop or fix a record. `input_format` and `mapping` say how records are
    read (see `check`): records converted from another format are written as Gemini examples.
    `production` samples are compared with the training data (the SKEW rules, see `check`);
    they are read, never written.
    `keep_source` picks each duplicate cluster's survivor by a record field (see `check`).
    Raises `SftgateError` for usage errors.
    """
    progress = progress or Progress()
    resolved = load_profile(profile, rules_file=rules, select=select, ignore=ignore)
    settings = OutputSettings.from_profile(resolved, max_shard_bytes, max_shard_examples)
    destination = open_destination(out)
    destination.claim(overwrite)
    try:
        with tempfile.TemporaryDirectory(prefix="sftgate-spill-") as spill:
            execution = execute(
                train, validation=validation, eval_sets=eval_sets, profile=resolved, workers=workers,
                split_validation=split_validation, seed=seed, stratify_by=stratify_by, tokenizer=tokenizer,
                exact_tokens=exact_tokens, epochs=epochs, price_per_million=price_per_million,
                verify_media=verify_media, baseline=baseline, input_format=input_format, mapping=mapping,
                production=production, keep_source=keep_source, emit_dir=spill, progress=progress,
            )
            written = _Emitter(execution.profile, settings, destination, seed, progress).run(execution.runs)
        report = execution.report
        staged_report = destination.stage("report")
        staged_report.write(json_report.render(report))
        files = [*written.files, staged_report.close("report.json", examples=False)]
        published = destination.publish(files)
        manifest = _manifest(execution, written, files, published, destination, seed)
        destination.publish_manifest(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    finally:
        destination.close()
        progress.end_pass()
    return Prepared(report=report, manifest=manifest, published=published)


# --- the emit pass ---------------------------------------------------------------------------


@dataclass
class _Tally:
    """Where one input's lines went."""

    source: str
    split: str
    lines: int
    train: int = 0
    validation: int = 0
    quarantine: int = 0
    blank: int = 0

    @property
    def placed(self) -> int:
        return self.train + self.validation + self.quarantine + self.blank

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "split": self.split, "lines": self.lines, "train": self.train,
                "validation": self.validation, "quarantine": self.quarantine, "blank": self.blank,
                "balanced": self.placed == self.lines}


@dataclass
class _Written:
    files: list[OutputFile]
    tallies: list[_Tally]
    quarantined_by_rule: Counter[str] = field(default_factory=Counter)
    quarantined_by_status: Counter[str] = field(default_factory=Counter)
    fixed_by_rule: Counter[str] = field(default_factory=Counter)
    fixed: int = 0
    validation_over_cap: int = 0


class _Shards:
    """Training shards: a new one starts when the next record would pass a limit."""

    def __init__(self, destination: Destination, max_bytes: int, max_examples: int | None) -> None:
        self.destination = destination
        self.max_bytes = max_bytes
        self.max_examples = max_examples
        self.done: list[Staged] = []
        self.current: Staged | None = None

    def write(self, data: bytes) -> None:
        current = self.current
        if current is not None and current.examples and (
                current.bytes + len(data) > self.max_bytes
                or (self.max_examples is not None and current.examples >= self.max_examples)):
            self.done.append(current)
            current = None
        if current is None:
            current = self.current = self.destination.stage(f"train-{len(self.done):05d}")
        current.write(data)

    def close(self) -> list[OutputFile]:
        staged = [*self.done, self.current or self.destination.stage("train-00000")]
        if len(staged) == 1:
            return [staged[0].close("train.jsonl")]
        n = len(staged)
        return [s.close(f"train-{i:05d}-of-{n:05d}.jsonl") for i, s in enumerate(staged)]


class _Reader:
    """A record's original bytes by offset, for the quarantine; forward-only on streams.

    `window` names a chunk's span; the first record read from it reads the whole span, so the
    records quarantined from a chunk are slices of one read rather than one seek and read each."""

    WINDOW_MAX = 64 << 20

    def __init__(self, source: Source) -> None:
        self.stream: BinaryIO = source.open()
        self.seekable = source.seekable
        self.at = 0
        self.span = (0, 0)
        self.block = b""
        self.pending: tuple[int, int] | None = None

    def window(self, start: int, end: int) -> None:
        self.span, self.block = (0, 0), b""
        self.pending = (start, end) if end - start <= self.WINDOW_MAX else None

    def read(self, offset: int, length: int) -> bytes | None:
        if self.pending is not None and self.pending[0] <= offset:
            start, end = self.pending
            self.pending = None
            data = self._read(start, end - start)
            if data is not None:
                self.span, self.block = (start, start + len(data)), data
        start, end = self.span
        if start <= offset and offset + length <= end:
            return self.block[offset - start:offset - start + length]
        return self._read(offset, length)

    def _read(self, offset: int, length: int) -> bytes | None:
        try:
            if self.seekable:
                self.stream.seek(offset)
            else:
                if offset < self.at:
                    return None
                while self.at < offset:
                    skipped = len(self.stream.read(min(offset - self.at, 1 << 20)))
                    if not skipped:
                        return None
                    self.at += skipped
            data = self.stream.read(length)
        except (OSError, EOFError, ValueError):
            return None
        self.at = offset + len(data)
        return data

    def close(self) -> None:
        self.stream.close()


class _Emitter:
    def __init__(self, profile: Profile, settings: OutputSettings, destination: Destination, seed: int,
                 progress: Progress | None = None) -> None:
        self.profile = profile
        self.progress = progress or Progress()
        self.settings = settings
        self.destination = destination
        self.seed = seed
        self.shards = _Shards(destination, settings.max_shard_bytes, settings.max_shard_examples)
        self.validation: Staged | None = None
        self.quarantine = destination.stage("quarantine")
        self.checkers: dict[tuple[str, Reading], Checker] = {}
        self.out = _Written(files=[], tallies=[])
        self._over_cap: dict[str, Any] = {}  # the quarantine reason of validation examples over the cap

    def run(self, runs: list[_FileRun]) -> _Written:
        wants_validation = any(r.split == "validation" for r in runs) or any(r.split_plan for r in runs)
        if wants_validation:
            self.validation = self.destination.stage("validation")
        for run in runs:
            if run.split in ("train", "validation"):
                self.progress.phase(f"write {run.source.name}", run.stats.content_bytes)
                self._emit(run)
        self.progress.phase("publish")
        files = self.shards.close()
        if self.validation is not None:
            files.append(self.validation.close("validation.jsonl"))
        files.append(self.quarantine.close("quarantine.jsonl"))
        self.out.files = files
        return self.out

    def _checker(self, split: str, reading: Reading = GEMINI) -> Checker:
        """The record rules of one split, reading lines as `reading` says (the input's own
        lines), or as Gemini records (their canonical form, already converted)."""
        if (split, reading) not in self.checkers:
            self.checkers[split, reading] = Checker(self.profile, split, features=False, reading=reading)
        return self.checkers[split, reading]

    def _emit(self, run: _FileRun) -> None:
        tally = _Tally(run.source.name, run.split, run.stats.lines)
        self.out.tallies.append(tally)
        reader = _Reader(run.source)
        try:
            if not run.emits:
                self._quarantine_all(run, reader, tally)
            else:
                self._emit_lines(run, reader, tally)
        finally:
            reader.close()
        if tally.placed != tally.lines:  # a bug, never the data: stop before anything is published
            raise RuntimeError(f"{run.source.name}: {tally.lines} lines read but {tally.placed} placed")

    def _emit_lines(self, run: _FileRun, reader: _Reader, tally: _Tally) -> None:
        profile = self.profile
        n = run.stats.lines
        status = np.concatenate([np.frombuffer(bytes(c.status), dtype=np.uint8) for _, c in run.emits])
        sizes = np.concatenate([np.frombuffer(c.canonical, dtype=np.int64) for _, c in run.emits])
        dropped = np.zeros(n + 1, dtype=bool)
        dropped[run.drop_lines] = True
        fixing = np.zeros(n + 1, dtype=bool)
        fixing[run.fix_lines] = True
        by_dataset: dict[int, list[Finding]] = {}
        for finding in run.findings:
            if finding.line is not None and getattr(REGISTRY.get(finding.code), "kind", "") == "dataset" \
                    and profile.action(finding.code) is Action.DROP:
                by_dataset.setdefault(finding.line, []).append(finding)
        to_validation = np.zeros(n + 1, dtype=bool)
        if run.split_plan:
            to_validation[np.asarray(run.split_plan["validation_lines"], dtype=np.int64)] = True
        if run.split == "validation":
            to_validation[:] = True
            self._cap_validation(n, status, sizes, dropped, by_dataset, to_validation)

        shards, validation = self.shards, self.validation
        for base, chunk in run.emits:
            with open(chunk.spill, "rb") as fh:
                spill = fh.read()
            os.unlink(chunk.spill)
            pos = 0
            offsets, lengths = chunk.offsets, chunk.lengths
            self.progress.advance(sum(lengths) + len(lengths), len(lengths))
            if len(offsets):
                reader.window(offsets[0], offsets[-1] + lengths[-1])
            for i, code in enumerate(chunk.status):
                line = base + i + 1
                size = sizes[line - 1]
                data = spill[pos:pos + size]
                pos += size
                if code == _BLANK:
                    tally.blank += 1
                    continue
                if not _RECORD[code] or dropped[line] or not size:
                    self._drop(run, reader, line, STATUSES[code], offsets[i], lengths[i])
                    tally.quarantine += 1
                    continue
                if line in by_dataset:
                    self._write_quarantine(run, reader, line, STATUSES[code], offsets[i], lengths[i],
                                           [_reason(f, profile) for f in by_dataset[line]])
                    tally.quarantine += 1
                    continue
                if not to_validation[line] and run.split == "validation":  # over the validation cap
                    self._write_quarantine(run, reader, line, STATUSES[code], offsets[i], lengths[i],
                                           [self._over_cap])
                    tally.quarantine += 1
                    continue
                if fixing[line]:
                    fixed = self._fix(run, reader, line, STATUSES[code], offsets[i], lengths[i], data)
                    if fixed is None:
                        tally.quarantine += 1
                        continue
                    data = fixed
                if to_validation[line]:
                    assert validation is not None
                    validation.write(data)
                    tally.validation += 1
                else:
                    shards.write(data)
                    tally.train += 1

    def _cap_validation(self, n: int, status: np.ndarray, sizes: np.ndarray, dropped: np.ndarray,
                        by_dataset: dict[int, list[Finding]], keep: np.ndarray) -> None:
        """Keep at most the target's validation maximum: a seeded sample of the candidates."""
        cap = self.profile.limits.get("max_validation_examples")
        lines = np.arange(1, n + 1)
        candidate = _RECORD[status] & (sizes > 0) & ~dropped[1:]
        if by_dataset:
            candidate &= ~isin(lines, np.fromiter(by_dataset, dtype=np.int64))
        candidates = lines[candidate]
        if cap is None or candidates.size <= int(cap):
            return
        chosen = np.random.default_rng(self.seed).choice(candidates, int(cap), replace=False)
        keep[:] = False
        keep[chosen] = True
        self.out.validation_over_cap = int(candidates.size - int(cap))
        self._over_cap = {
            "code": "LIM003", "severity": self.profile.severity("LIM003").value,
            "message": f"the validation file has {candidates.size:,} usable examples and the target takes at most "
                       f"{int(cap):,}; this one is not in the seeded sample (seed {self.seed})",
        }

    def _recheck(self, run: _FileRun, line: int, status: LineStatus, offset: int, length: int,
                 data: bytes | None, reading: Reading = GEMINI) -> list[Finding]:
        """The findings of the per-record rules on one line, as the check pass made them
        (`reading`: the input's, for its own bytes; Gemini for a canonical record)."""
        end = BROKEN if status is LineStatus.TRUNCATED else NEWLINE
        result = self._checker(run.split, reading).check_lines([(offset, data, length, end)], source=run.source.name,
                                                      starts_file=offset == 0)
        return [replace(f, line=line) for f in result.findings if f.line is not None]

    def _raw(self, reader: _Reader, status: LineStatus, offset: int, length: int) -> bytes | None:
        if status is LineStatus.TOO_LONG:
            return None
        return reader.read(offset, length)

    def _drop(self, run: _FileRun, reader: _Reader, line: int, status: LineStatus, offset: int,
              length: int) -> None:
        raw = self._raw(reader, status, offset, length)
        found = self._recheck(run, line, status, offset, length, raw, run.reading)
        checker = self._checker(run.split)
        reasons = [_reason(f, self.profile) for f in found if f.code in checker.drops] \
            or [_reason(f, self.profile) for f in found]
        if not reasons:  # its rule is switched off, or the record has no canonical form
            what = status.value.replace("_", " ") if not status.is_record else "cannot be written back as JSON"
            reasons = [{"code": None, "message": f"line is not written: {what}"}]
        self._write_quarantine(run, reader, line, status, offset, length, reasons, raw=raw)

    def _fix(self, run: _FileRun, reader: _Reader, line: int, status: LineStatus, offset: int, length: int,
             data: bytes) -> bytes | None:
        """The record rewritten by the fixes of the rules that found something in it; None
        (and a quarantine line) when a fix fails or the fixed record still breaks a rule."""
        checker = self._checker(run.split)
        found = self._recheck(run, line, status, offset, length, data[:-1])
        codes = sorted({f.code for f in found if f.code in checker.fixes})
        obj = orjson.loads(data)
        failed = [c for c in codes if not REGISTRY[c]().fix(obj, checker.ctx)]
        if failed:
            reasons = [_reason(f, self.profile, " (cannot be fixed)") for f in found if f.code in failed]
            self._write_quarantine(run, reader, line, status, offset, length, reasons)
            return None
        fixed = canonical(obj, self.settings.unknown_keys == "strip")
        after = self._recheck(run, line, status, offset, length, fixed[:-1])
        remaining = [f for f in after if f.code in checker.drops or f.code in checker.fixes]
        if remaining:
            note = f" (after fixing {', '.join(codes)})"
            self._write_quarantine(run, reader, line, status, offset, length,
                                   [_reason(f, self.profile, note) for f in remaining])
            return None
        self.out.fixed += 1
        self.out.fixed_by_rule.update(codes)
        return fixed

    def _quarantine_all(self, run: _FileRun, reader: _Reader, tally: _Tally) -> None:
        """An input the pass did not read line by line (a JSON array file): every line goes
        to the quarantine, with the file's finding as the reason."""
        why = [_reason(f, self.profile) for f in run.findings if f.line is None and f.code == "FMT010"] \
            or [{"code": None, "message": "the file is not JSON Lines"}]
        with run.source.open() as stream:
            lines = LineReader(stream, max_line_bytes=self.settings.quarantine_record_max_bytes)
            for number, (offset, _, length, _) in enumerate(lines, 1):
                status = LineStatus.JSON_ARRAY_FILE
                self._write_quarantine(run, reader, number, status, offset, length, why)
                tally.quarantine += 1

    def _write_quarantine(self, run: _FileRun, reader: _Reader, line: int, status: LineStatus, offset: int,
                          length: int, reasons: list[dict[str, Any]], raw: bytes | None = None) -> None:
        entry: dict[str, Any] = {
            "source": run.source.name, "split": run.split, "line": line, "offset": offset, "length": length,
            "status": status.value, "codes": sorted({r["code"] for r in reasons if r["code"]}), "reasons": reasons,
        }
        limit = self.settings.quarantine_record_max_bytes
        if length <= limit and raw is None:
            raw = self._raw(reader, status, offset, length)
        if length > limit or raw is None:
            entry["record_omitted"] = (f"{length:,} bytes at offset {offset:,} of {run.source.name}"
                                       + (f", over output.quarantine_record_max_bytes ({limit:,})" if length > limit
                                          else ", unreadable"))
        else:
            try:
                entry["record"] = raw.decode("utf-8")
            except UnicodeDecodeError:
                entry["record_base64"] = base64.b64encode(raw).decode()
        self.quarantine.write(orjson.dumps(entry) + b"\n")
        self.out.quarantined_by_rule.update(entry["codes"])
        if not status.is_record:
            self.out.quarantined_by_status[status.value] += 1


def _reason(finding: Finding, profile: Profile, note: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"code": finding.code, "severity": profile.severity(finding.code).value,
                           "message": finding.message + note}
    for key in ("pointer", "column", "related", "similarity"):
        value = getattr(finding, key)
        if value is not None:
            out[key] = value
    return out


# --- the manifest ----------------------------------------------------------------------------


def _manifest(execution: Execution, written: _Written, files: list[OutputFile], published: list[Published],
              destination: Destination, seed: int) -> dict[str, Any]:
    report = execution.report
    where = {p.name: p for p in published}
    roles = {"validation.jsonl": "validation", "quarantine.jsonl": "quarantine", "report.json": "report"}
    outputs = [{
        "name": f.name, "uri": where[f.name].uri, "role": roles.get(f.name, "train"), "bytes": f.bytes,
        "examples": f.examples, "sha256": f.sha256, "crc32c": f.crc32c, "reused": where[f.name].reused,
    } for f in files]
    train_uris = [o["uri"] for o in outputs if o["role"] == "train"]
    validation_uri = next((o["uri"] for o in outputs if o["role"] == "validation"), None)
    tallies = [t.to_dict() for t in written.tallies]
    split = report.split
    return {
        "manifest_version": MANIFEST_VERSION,
        "tool": {"name": "sftgate", "version": __version__},
        "created_at": report.started_at,
        "complete": True,
        "location": destination.location,
        "seed": seed,
        "gate": {"passed": report.gate.passed, "reason": report.gate.reason, "exit_code": report.exit_code},
        "inputs": [{"path": s.path, "split": s.split, "sha256": s.sha256, "bytes": s.bytes,
                    "compression": s.compression, "lines": s.lines, "records": s.records,
                    "blank_lines": s.blank_lines, "written": s.split in ("train", "validation")} for s in report.inputs],
        "outputs": outputs,
        "counts": {
            "lines_read": sum(t["lines"] for t in tallies),
            "train_examples": sum(t["train"] for t in tallies),
            "validation_examples": sum(t["validation"] for t in tallies),
            "quarantined": sum(t["quarantine"] for t in tallies),
            "blank_lines": sum(t["blank"] for t in tallies),
            "fixed": written.fixed,
            "quarantined_by_rule": dict(sorted(written.quarantined_by_rule.items())),
            "quarantined_by_status": dict(sorted(written.quarantined_by_status.items())),
            "fixed_by_rule": dict(sorted(written.fixed_by_rule.items())),
            "validation_over_cap": written.validation_over_cap,
        },
        "accounting": tallies,
        "split": None if split is None else {k: v for k, v in split.items() if k != "validation_lines"},
        "profile": execution.profile.to_dict(),
        "tuning": tuning_call(execution.profile.target, train_uris, validation_uri, destination.location,
                              Path(report.inputs[0].path).name if report.inputs else "train"),
    }


def tuning_call(base_model: str, train_uris: list[str], validation_uri: str | None, location: str,
                train_name: str) -> dict[str, Any]:
    """How to start the tuning job on what was written: the URIs, and the same call as
    google-genai Python, REST (curl with a gcloud token) and the upload command when the
    output is local."""
    remote = gcs.is_gcs(location)
    display = "sftgate-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in
                                   train_name.split(".")[0])[:100]
    if remote:
        train_uri, val_uri, upload = train_uris[0], validation_uri, None
    else:
        bucket = "gs://YOUR_BUCKET/sftgate"
        train_uri = f"{bucket}/{Path(train_uris[0]).name}"
        val_uri = None if validation_uri is None else f"{bucket}/{Path(validation_uri).name}"
        files = " ".join(shlex.quote(u) for u in [*train_uris, *([validation_uri] if validation_uri else [])])
        upload = f"gcloud storage cp {files} {bucket}/"
    spec: dict[str, Any] = {"trainingDatasetUri": train_uri}
    if val_uri:
        spec["validationDatasetUri"] = val_uri
    body = {"baseModel": base_model, "supervisedTuningSpec": spec, "tunedModelDisplayName": display}
    rest = ("curl -X POST -H \"Authorization: Bearer $(gcloud auth print-access-token)\" "
            "-H \"Content-Type: application/json\" "
            "\"https://us-central1-aiplatform.googleapis.com/v1/projects/PROJECT_ID/locations/us-central1/tuningJobs\" "
            f"-d '{orjson.dumps(body).decode()}'")
    def q(text: str) -> str:  # a Python string literal, double-quoted
        return orjson.dumps(text).decode()

    validation_line = (f"        validation_dataset=types.TuningValidationDataset(gcs_uri={q(val_uri)}),\n"
                       if val_uri else "")
    python = (
        "from google import genai\n"
        "from google.genai import types\n\n"
        "client = genai.Client(vertexai=True, project=\"PROJECT_ID\", location=\"us-central1\")\n"
        "job = client.tunings.tune(\n"
        f"    base_model={q(base_model)},\n"
        f"    training_dataset=types.TuningDataset(gcs_uri={q(train_uri)}),\n"
        "    config=types.CreateTuningJobConfig(\n"
        f"        tuned_model_display_name={q(display)},\n"
        f"{validation_line}"
        "    ),\n"
        ")\n"
    )
    notes = []
    if not remote:
        notes.append("the output is local: upload it (the `upload` command) and replace gs://YOUR_BUCKET")
    if len(train_uris) > 1:
        notes.append(f"the training data is in {len(train_uris)} shards and a tuning job takes one training "
                     "file: each shard is valid on its own; the call names the first")
    return {"base_model": base_model, "training_dataset_uri": train_uri, "validation_dataset_uri": val_uri,
            "training_shards": len(train_uris), "upload": upload, "rest": rest, "python": python, "notes": notes}
