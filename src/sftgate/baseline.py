"""Waivers and baselines: findings a run leaves out of its gate, its counts and its actions.

A *waiver* is a line in the profile's `ignore:` list that names a rule and, optionally, a file and
some lines (`{code: DUP002, source: train.jsonl, lines: [12, 40]}`): a decision someone made about
those records. A *baseline* (`--baseline FILE`, written by `--write-baseline FILE`) is the set of
findings a dataset had when it was recorded, so that CI fails only on new ones.

A baseline recognises a finding by its rule, its file and a fingerprint of the line's bytes, not
by the line number: inserting or deleting lines above a record does not lose it. A finding about
a whole file is recognised by rule and file. Matching is by set: a record whose content was
flagged by a rule once is accepted wherever that content appears in the same file.

Both are applied where findings are made (worker processes for the per-record rules, the parent
for file and dataset rules), so the report's totals, the gate and `prepare`'s drops and fixes
see only what is left; the report's `suppressed` section counts what was left out, per rule.
"""

from __future__ import annotations

import fnmatch
import os
import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson
from google_crc32c import value as crc32c

from sftgate.errors import ConfigError, UsageError
from sftgate.model import Finding

BASELINE_FORMAT = 1
_PAIR = struct.Struct(">II").pack


def fingerprint(data: bytes) -> bytes:
    """8 bytes identifying a line's content (a trailing CR does not count): its CRC-32C and its
    CRC-32, two different polynomials. Every line of every input is hashed, so speed matters
    more than resistance to forgery: this costs a third of BLAKE2b's time."""
    if data.endswith(b"\r"):
        data = data[:-1]
    return _PAIR(crc32c(data), zlib.crc32(data))


def fingerprint_crc32c(data: bytes) -> int:
    """The first half of `fingerprint(data)`, its CRC-32C: a quick check that a line read
    again is the one fingerprinted (a change goes unnoticed once in 2**32)."""
    return crc32c(data[:-1] if data.endswith(b"\r") else data)


def crc32c_halves(marks: bytes | bytearray) -> list[int]:
    """The CRC-32C halves of fingerprints laid end to end (8 bytes each)."""
    return [first for first, _ in struct.iter_unpack(">II", marks)]


@dataclass(frozen=True)
class Waiver:
    """One `ignore:` entry of a profile that is a mapping rather than a rule code."""

    code: str  # a rule code or prefix
    source: str | None  # a file name, a path suffix or a glob; None: every file
    lines: frozenset[int] | None  # None: every line (and the whole-file findings)
    reason: str | None

    def matches(self, finding: Finding) -> bool:
        if not finding.code.startswith(self.code):
            return False
        if self.source is not None and not same_source(self.source, finding.source):
            return False
        return self.lines is None or finding.line in self.lines

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code}
        if self.source is not None:
            out["source"] = self.source
        if self.lines is not None:
            out["lines"] = sorted(self.lines)
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def same_source(pattern: str, source: str) -> bool:
    """A waiver's `source` names a file: the path as the run names it, a suffix of it after a
    `/` (`train.jsonl` matches `data/train.jsonl`), or a glob (`data/*.jsonl`)."""
    if pattern == source or source.endswith("/" + pattern):
        return True
    return any(c in pattern for c in "*?[") and (fnmatch.fnmatchcase(source, pattern)
                                                 or fnmatch.fnmatchcase(source, "*/" + pattern))


def waivers(entries: Iterable[Any]) -> tuple[Waiver, ...]:
    """The waivers among a profile's `ignore:` entries (its strings are rule codes, not waivers);
    the rules schema has already checked their shape."""
    out = []
    for entry in entries:
        if isinstance(entry, Mapping):
            lines = entry.get("lines")
            out.append(Waiver(code=str(entry["code"]), source=entry.get("source"),
                              lines=None if lines is None else frozenset(int(n) for n in lines),
                              reason=entry.get("reason")))
    return tuple(out)


def _key(finding: Finding) -> tuple[str, str, str]:
    if finding.fingerprint is not None:
        return (finding.code, finding.source, finding.fingerprint)
    return (finding.code, finding.source, "" if finding.line is None else f"line:{finding.line}")


@dataclass(frozen=True)
class Baseline:
    """The findings recorded by `--write-baseline`, as a set of (code, source, fingerprint)."""

    path: str
    keys: frozenset[tuple[str, str, str]]

    def __contains__(self, finding: Finding) -> bool:
        return _key(finding) in self.keys

    def __len__(self) -> int:
        return len(self.keys)

    @cached_property
    def codes(self) -> frozenset[str]:
        """The rules it holds findings of."""
        return frozenset(code for code, _, _ in self.keys)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Baseline:
        """Read a baseline file; a missing or malformed one is a one-line `UsageError`."""
        name = str(path)
        try:
            data = orjson.loads(Path(path).read_bytes())
        except FileNotFoundError:
            raise UsageError(f"{name}: no such baseline file (sftgate check --write-baseline FILE makes one)") from None
        except OSError as exc:
            raise UsageError(f"{name}: cannot read the baseline ({exc.strerror or exc})") from None
        except orjson.JSONDecodeError as exc:
            raise UsageError(f"{name}: not a baseline file: invalid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("sftgate_baseline") != BASELINE_FORMAT \
                or not isinstance(data.get("findings"), list):
            raise UsageError(f"{name}: not a sftgate baseline file (format {BASELINE_FORMAT}): "
                             f"expected an object with sftgate_baseline: {BASELINE_FORMAT} and a findings list")
        keys = set()
        for i, item in enumerate(data["findings"]):
            try:
                code, source = str(item["code"]), str(item["source"])
                fp, line = item.get("fingerprint"), item.get("line")
            except (TypeError, KeyError):
                raise UsageError(f"{name}: findings[{i}] needs a code and a source") from None
            if fp is not None:
                keys.add((code, source, str(fp)))
            else:
                keys.add((code, source, "" if line is None else f"line:{line}"))
        return cls(path=name, keys=frozenset(keys))


def entries(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """A baseline's entries for `findings` (all of a run's, uncapped): one per distinct key, in a
    fixed order, with the line and message of its first finding for the people who read it."""
    first: dict[tuple[str, str, str], Finding] = {}
    for finding in findings:
        first.setdefault(_key(finding), finding)
    return [
        {"code": f.code, "source": f.source, "line": f.line, "fingerprint": f.fingerprint, "message": f.message}
        for key, f in sorted(first.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[1].line or 0, kv[0][2]))
    ]


def render(entries: list[dict[str, Any]]) -> bytes:
    """The baseline file of `entries`."""
    return orjson.dumps({"sftgate_baseline": BASELINE_FORMAT, "findings": entries}, option=orjson.OPT_INDENT_2) + b"\n"


@dataclass(frozen=True)
class Suppressor:
    """What a run leaves out: the profile's waivers and the baseline. `why` names which."""

    waivers: tuple[Waiver, ...] = ()
    baseline: Baseline | None = None

    def __bool__(self) -> bool:
        return bool(self.waivers) or self.baseline is not None

    def judges(self, code: str) -> bool:
        """Whether a waiver or the baseline may leave out a finding of rule `code` (when none
        may, its findings need not be judged one at a time)."""
        return any(code.startswith(w.code) for w in self.waivers) or \
            (self.baseline is not None and code in self.baseline.codes)

    def why(self, finding: Finding) -> str | None:
        """"waiver", "baseline" or None (the finding stays)."""
        for waiver in self.waivers:
            if waiver.matches(finding):
                return "waiver"
        if self.baseline is not None and finding in self.baseline:
            return "baseline"
        return None


def check_waiver_codes(entries: Iterable[Any], known: Iterable[str], where: str) -> None:
    """A waiver must name a rule that exists (a code or a prefix of some)."""
    codes = list(known)
    for entry in entries:
        if isinstance(entry, Mapping) and not any(c.startswith(str(entry["code"])) for c in codes):
            raise ConfigError(f"{where}: ignore: waiver for {entry['code']!r} names no rule (sftgate rules lists them)")
