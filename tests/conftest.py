"""Shared helpers for the sftgate tests: record builders, JSONL writers, the CLI runner.

Helpers are session-scoped fixtures rather than importable names: `tests/rules/` may carry its
own conftest.py, and two top-level `conftest` modules cannot both be imported by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from gcs_server import gcs_bucket, gcs_server  # noqa: F401 - fixtures: a Cloud Storage emulator

REPO = Path(__file__).resolve().parents[1]
OASST = REPO / "examples" / "oasst"
REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
REPORT_SCHEMA = REPO / "schemas" / "report.schema.json"

# Keys the JSON report must carry when schemas/report.schema.json is not there to say so.
REPORT_KEYS = {"report_version", "tool", "started_at", "duration_s", "workers", "profile", "inputs",
               "gate", "summary", "rules", "findings"}
INPUT_KEYS = {"path", "split", "sha256", "bytes", "content_bytes", "compression", "lines", "records",
              "blank_lines", "accounting", "truncated"}
FINDING_KEYS = {"code", "severity", "message", "source", "line", "pointer", "column", "hint"}
GATE_KEYS = {"passed", "fail_on", "max_error_fraction", "failing_lines", "lines", "file_findings", "reason"}
VOLATILE = ("started_at", "duration_s", "workers")

_QA = [
    ("How can I find the best 401k plan for my needs?",
     "Start by comparing the fees, the fund choices and whether your employer matches contributions. "
     "A plan with low expense ratios and a match is usually the better deal."),
    ("What is the difference between a list and a tuple in Python?",
     "A list is mutable: you can append, remove and change items. A tuple is immutable, which makes it "
     "hashable and usable as a dictionary key."),
    ("Can you suggest a name for a bakery that specialises in sourdough?",
     "How about \"Wild Rise\"? It hints at the wild yeast in a sourdough starter and sounds warm."),
    ("Why is the sky blue?",
     "Sunlight is scattered by the molecules of the atmosphere, and shorter blue wavelengths are "
     "scattered far more than red ones (Rayleigh scattering), so blue light reaches us from every direction."),
    ("Translate 'good morning' into Spanish and French.",
     "Spanish: \"buenos días\". French: \"bonjour\"."),
    ("Summarise the plot of Romeo and Juliet in two sentences.",
     "Two young lovers from feuding families in Verona marry in secret. A chain of misunderstandings "
     "ends with both taking their own lives, which finally reconciles their families."),
    ("What does HTTP status code 429 mean?",
     "429 Too Many Requests: the client sent too many requests in a given time. Back off and retry "
     "after the delay named in the Retry-After header, if there is one."),
]


class Records:
    """Gemini SFT records with real-looking text; `i` picks the conversation."""

    @staticmethod
    def good(i: int = 0, *, system: str | None = None) -> dict[str, Any]:
        question, answer = _QA[i % len(_QA)]
        obj: dict[str, Any] = {"contents": [
            {"role": "user", "parts": [{"text": question}]},
            {"role": "model", "parts": [{"text": answer}]},
        ]}
        if system is not None:
            obj["systemInstruction"] = {"parts": [{"text": system}]}
        return obj

    @staticmethod
    def model_twice(i: int = 0) -> dict[str, Any]:
        """STR002 (error) at /contents/2: the model answers twice in a row."""
        obj = Records.good(i)
        obj["contents"].append({"role": "model", "parts": [{"text": "Let me know if you want more detail."}]})
        return obj

    @staticmethod
    def ends_with_user(i: int = 0) -> dict[str, Any]:
        """STR004 (warning only) at /contents/2: a trailing user turn nobody answers."""
        obj = Records.good(i)
        obj["contents"].append({"role": "user", "parts": [{"text": "Thanks, that helps!"}]})
        return obj

    @staticmethod
    def number_text(i: int = 0) -> dict[str, Any]:
        """SCH001 (error) at /contents/1/parts/0/text: a number where the answer text belongs."""
        obj = Records.good(i)
        obj["contents"][1]["parts"][0]["text"] = 42
        return obj

    @staticmethod
    def long_text(i: int, size: int) -> dict[str, Any]:
        """A valid record whose JSON line is at least `size` bytes."""
        obj = Records.good(i)
        sentence = "The answer goes on for a while to make this line long. "
        obj["contents"][1]["parts"][0]["text"] += " " + sentence * (size // len(sentence) + 1)
        return obj

    @staticmethod
    def line(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _as_bytes(row: Any) -> bytes:
    if isinstance(row, bytes):
        return row
    if isinstance(row, str):
        return row.encode("utf-8")
    return Records.line(row)


def write_jsonl(path: Path, rows: Iterable[Any], *, eol: bytes = b"\n", final_newline: bool = True) -> Path:
    """Write rows (dict -> json.dumps, str, or raw bytes) one per line; returns `path`."""
    lines = [_as_bytes(r) for r in rows]
    data = eol.join(lines)
    if lines and final_newline:
        data += eol
    path.write_bytes(data)
    return path


def physical_lines(data: bytes) -> int:
    """Lines a person counts: each newline ends one, and trailing bytes without one make another."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def run_cli(*args: Any, cwd: Path | None = None, env: dict[str, str] | None = None,
            stdout: Any = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "sftgate", *map(str, args)],
        cwd=cwd, env=full_env, stdout=stdout, stderr=subprocess.PIPE, text=True,
        encoding="utf-8", errors="replace", timeout=120,
    )


def assert_usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, one `sftgate: error:` line on stderr, no traceback; returns that line."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sftgate: error:"), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def write_rules(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def without_volatile(report: Any) -> dict[str, Any]:
    """`report.to_dict()` (or a parsed JSON report) minus what differs between identical runs."""
    data = report if isinstance(report, dict) else report.to_dict()
    return {k: v for k, v in data.items() if k not in VOLATILE}


def load_report_schema() -> dict[str, Any] | None:
    if REPORT_SCHEMA.is_file():
        return json.loads(REPORT_SCHEMA.read_text(encoding="utf-8"))
    return None


def validate_report(data: dict[str, Any]) -> None:
    """Against schemas/report.schema.json when it exists, else against the keys the model emits."""
    schema = load_report_schema()
    if schema is not None:
        import jsonschema

        jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)
        return
    assert REPORT_KEYS <= data.keys(), REPORT_KEYS - data.keys()
    assert GATE_KEYS <= data["gate"].keys()
    for summary in data["inputs"]:
        assert INPUT_KEYS <= summary.keys()
        assert sum(summary["accounting"].values()) == summary["lines"]
    for finding in data["findings"]:
        assert FINDING_KEYS <= finding.keys()
        assert finding["severity"] in ("error", "warning", "info")
    for rule in data["rules"]:
        assert {"code", "name", "severity", "count", "listed"} <= rule.keys()
        assert rule["listed"] <= rule["count"]


# --- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def records() -> type[Records]:
    return Records


@pytest.fixture(name="write_jsonl", scope="session")
def _write_jsonl() -> Callable[..., Path]:
    return write_jsonl


@pytest.fixture(name="physical_lines", scope="session")
def _physical_lines() -> Callable[[bytes], int]:
    return physical_lines


@pytest.fixture(name="run_cli", scope="session")
def _run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


@pytest.fixture(name="assert_usage_error", scope="session")
def _assert_usage_error() -> Callable[..., str]:
    return assert_usage_error


@pytest.fixture(name="write_rules", scope="session")
def _write_rules() -> Callable[[Path, str], Path]:
    return write_rules


@pytest.fixture(name="without_volatile", scope="session")
def _without_volatile() -> Callable[[Any], dict[str, Any]]:
    return without_volatile


@pytest.fixture(name="validate_report", scope="session")
def _validate_report() -> Callable[[dict[str, Any]], None]:
    return validate_report


@pytest.fixture(scope="session")
def oasst() -> Path:
    return OASST


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not present at {REAL_DATA} (shared/data/real next to the repository)")
    return REAL_DATA


@pytest.fixture
def clean_file(tmp_path: Path) -> Path:
    """Ten valid records: the gate passes (LIM004 is only a warning)."""
    return write_jsonl(tmp_path / "train.jsonl", [Records.good(i) for i in range(10)])


def family_dataset(root: Path) -> tuple[Path, Path, Path]:
    """(train, validation, eval) with findings of every rule family that runs offline (FMT, SCH,
    STR, TOK, LIM, DUP, LEAK; MED needs Cloud Storage): real OASST conversations plus broken lines."""
    train = [json.loads(line) for line in (OASST / "train.jsonl").read_text(encoding="utf-8").splitlines()[:60]]
    validation = [json.loads(line) for line in
                  (OASST / "validation.jsonl").read_text(encoding="utf-8").splitlines()[:6]]
    near = json.loads(json.dumps(train[1]))
    near["contents"][-1]["parts"][0]["text"] = near["contents"][-1]["parts"][0]["text"].replace(" the ", " a ", 1)
    conflict = Records.good(3)
    conflict["contents"][1]["parts"][0]["text"] = "It is blue because the ocean reflects onto the sky."
    empty_answer = Records.good(5)
    empty_answer["contents"][1]["parts"][0]["text"] = "..."
    rows: list[Any] = [
        *train,
        train[0],  # DUP001
        near,  # DUP002
        Records.good(3), conflict,  # DUP003
        Records.model_twice(1),  # STR002
        Records.number_text(2),  # SCH001
        empty_answer,  # TOK003
        {"contents": [{"role": "user", "parts": [{"text": "Nobody answers this question, do they?"}]}]},  # STR003
        b'{"contents": [{"role": "user", "parts": [{"text": "broken"}]}',  # FMT001
        b"",  # FMT005
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},  # SCH003
    ]
    paths = (write_jsonl(root / "train.jsonl", rows),
             write_jsonl(root / "validation.jsonl", [*validation, train[10]]),  # LEAK001
             write_jsonl(root / "heldout.jsonl", [train[20]]))  # LEAK001 from an eval set
    return paths


@pytest.fixture(scope="session")
def family_report(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A `Report` of `family_dataset`: findings from every offline rule family, duplicates,
    leakage, token statistics and record texts; the gate fails."""
    import sftgate

    train, validation, heldout = family_dataset(tmp_path_factory.mktemp("family"))
    return sftgate.check(train, validation=validation, eval_sets=[heldout], workers=1)


@pytest.fixture(scope="session")
def ray_address(request: pytest.FixtureRequest) -> Iterable[str]:
    """A local Ray instance for the session (2 CPUs, a small object store, sort-based shuffle):
    its address, for runs that connect as to a cluster. Skips when the ray extra is missing.
    Started after the Cloud Storage emulator when there is one, so its workers reach it too."""
    pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'sftgate[ray]'")
    with contextlib.suppress(pytest.skip.Exception):
        request.getfixturevalue("gcs_server")
    import logging

    import ray
    import ray.data

    context = ray.data.DataContext.get_current()
    if hasattr(context, "shuffle_strategy"):
        from ray.data.context import ShuffleStrategy

        context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    else:  # before Ray 2.50
        context.use_push_based_shuffle = False
    ray.init(num_cpus=2, object_store_memory=96 << 20, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests on the session's Ray instance run last: once it runs, this process has Ray's
    threads and daemons, so the local executor starts its workers by forkserver, not fork."""
    items.sort(key=lambda item: "ray_address" in getattr(item, "fixturenames", ()))

