"""Quality and cost of sftgate's leakage rules (LEAK001-LEAK004).

    python benchmarks/bench_leak.py                        # quality, then speed on the 1 GiB file
    python benchmarks/bench_leak.py --quality              # the labelled DEV benchmark only (seconds)
    python benchmarks/bench_leak.py --speed                # 1 GiB file, 2 pairs of runs (~20 min)
    python benchmarks/bench_leak.py --speed --size-mb 50   # quick check
    python benchmarks/bench_leak.py --speed --phases       # plus one timed run split into phases
    python benchmarks/bench_leak.py --json benchmarks/.data/leak-results.json

What it measures
----------------
1. Quality (--quality), on ../shared/data/bench/leakage/ (5,000 train and 500 validation
   records; leakage.labels.jsonl lists the 40 leaking validation lines, the benchmark README's
   section 2): `sftgate.check(train, validation=validation, rules=<yaml: leak.max_listed
   100000>, workers=W)`, the default profile otherwise (every rule on), with W = --workers and
   W = 1. Flagged lines = the validation lines of `leakage.sets[validation].listed[*].record`.
   Scores:
   - recall per labelled kind (exact, near, context_shared): labelled lines of that kind that
     are flagged (whatever the code) / labelled lines of that kind; the code given is shown
     beside it (kind exact -> LEAK001, near -> LEAK002, context_shared -> LEAK003 expected);
   - precision: flagged lines that are labelled / flagged lines;
   - training lines: for each labelled line, whether every one of its `train_lines` is among the
     training records of its listed matches (sftgate lists up to 20 matches per record);
   - every unlabelled flagged line is printed with its code and matches, to be judged by eye.
   Floors (the issue): recall >= 0.95 for exact and near, >= 0.9 for shared source
   (context_shared), precision >= 0.98.

2. Speed (--speed): "Leakage checks against a validation set of 5,000 and eval sets totalling
   50,000 examples add at most 30% to the check time of the ~1 GB benchmark file."
   (a) `python -m sftgate check TRAIN --workers W --format json --report-json OUT`
   (b) the same plus `--validation VAL --eval EVAL_JSONL --eval EVAL_TXT`
   with the default rules (every rule on, findings capped as by default), TRAIN the generated
   Gemini SFT file of _gen.py (the generator, seed and cache of bench_check.py; --size-mb,
   default 1024 MiB = 646,849 records). Runs alternate a, b, a, b, ... (--repeat pairs, default
   2); overhead = wall(b) / wall(a) - 1 per pair, the target applies to it (<= 0.30).

   The validation and eval sets (built by this script, cached in the data directory under a
   name holding size, seeds and version; the marker file is written last):
     validation_5000.jsonl      5,000 examples: 4,750 unseen conversations + 250 leaks
                                (100 exact copies of training lines, 100 edited copies,
                                50 same-dialogue-other-question)
     eval_chat_40000.jsonl     40,000 examples: 39,200 unseen single exchanges + 800 leaks
                                (300 exact, 300 edited, 100 training prompts without their
                                answer, 100 fresh questions answered with a training answer)
     eval_prompts_10000.txt    10,000 prompts, one per line: 9,800 unseen + 200 leaks (100
                                training prompts as they are, 100 with typos)
   "Unseen" text comes from the parts of ../shared/data/{real,bench} the generator does not use:
   the ShareGPT conversations of bench/neardup.jsonl with a source index >= 3000 (the generator
   reads records 0-2999), DialogSum dev, the OASST prompt/reply pairs, Self-Instruct
   user-oriented and seed tasks, MT-Bench (prompts). The validation set takes distinct
   conversations; the eval sets cycle the single exchanges (and their prompts) of all of them,
   every copy after the first tagged "[variant N]" like _gen.py's. Leaks are built from training
   lines drawn with a seeded random.Random from the training file of the size being measured;
   edits are one of: typos (two letters swapped in ~4 % of the words), boilerplate appended to
   the answer, system instruction added or removed, answer cut to ~90 %. Every leak is placed at
   a seeded random position. Some unseen records may also leak for real (DialogSum dev against
   DialogSum train, say): the counts found are printed beside the counts injected.

   --phases adds one run of (b) in a child that wraps sftgate's internal steps with timers
   (monkeypatched from outside: the per-input pass, the duplicate analysis, the leakage steps,
   prompt band keys, edge verification), and --cprofile puts the leakage analysis under
   cProfile (top functions printed, full stats in the log directory). --score-sets adds one run
   of (b) with `--select LEAK` and leak.max_listed raised, and matches the listed records with
   leaks.labels.jsonl: injected leaks found per set and kind, and leaks found that were not
   injected.

How it is measured
------------------
As bench_check.py and bench_dedup.py: every run is a fresh child process started after its
inputs were read once (warm page cache); wall seconds are taken by the parent around the whole
child; peak RSS is the RSS summed over the child's process tree sampled every 50 ms with psutil
(bench_check.run_measured), and GNU time's %M for the largest single process. "Other CPU s" is
the CPU time the machine spent outside the measured process tree during a run (/proc/stat busy
time minus the children's and this script's rusage): a competing job on the two cores shows
there. The sftgate the children import (PYTHONPATH included) and its commit are printed first;
to pin the code while others work in the checkout, run from an export:
`git archive HEAD src rules schemas benchmarks | tar -x -C DIR`, `git log --oneline -1 >
DIR/COMMIT`, then `PYTHONPATH=DIR/src python DIR/benchmarks/bench_leak.py --data-dir ...`.
Child output and reports go to <data-dir>/logs/leak/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import _report
from _report import fmt, jsonable, rounded, verdict, warm

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_SHARED = REPO.parent / "shared"
MIB = 1 << 20

RECALL_FLOORS = {"exact": 0.95, "near": 0.95, "context_shared": 0.9}
PRECISION_FLOOR = 0.98
OVERHEAD_TARGET = 0.30  # wall(b) / wall(a) - 1
LARGE_MIB = 1024
EXPECTED_CODE = {"exact": "LEAK001", "near": "LEAK002", "context_shared": "LEAK003"}

# The speed sets. Bump SETS_VERSION when their construction changes (it is in the cache key).
SETS_VERSION = 1
VALIDATION_N, EVAL_CHAT_N, EVAL_PROMPTS_N = 5_000, 40_000, 10_000
VALIDATION_LEAKS = {"exact": 100, "near": 100, "shared_source": 50}
EVAL_CHAT_LEAKS = {"exact": 300, "near": 300, "prompt_exact": 100, "answer": 100}
EVAL_PROMPT_LEAKS = {"prompt_exact": 100, "prompt_near": 100}
# The report's by_kind a leak of each injected kind should land in.
INJECTED_AS = {"exact": "exact", "near": "near", "shared_source": "shared_source", "prompt_exact": "exact",
               "prompt_near": "near", "answer": "answer"}

_BOILERPLATE = ("I hope this helps! Let me know if you have any other questions.",
                "Feel free to ask if anything is unclear.",
                "Please note that this answer is for general information only.")
_SYSTEM = "You are a helpful assistant. Answer accurately and concisely."
_VARIANT = re.compile(r"\n\n\[variant \d+\]$")
LABELS = "leaks.labels.jsonl"  # {"set", "line", "kind", "train_line", "edit"?} per injected leak
_SPEAKER = re.compile(r"^(#Person\d+#):", re.MULTILINE)

# ================================================================ child side
# Only the standard library at module level: a child imports sftgate, not the parent's helpers.


def child_quality(spec: dict) -> dict:
    import sftgate

    start = time.perf_counter()
    report = sftgate.check(spec["train"], validation=spec["validation"], rules=spec["rules"],
                           workers=spec["workers"])
    work = time.perf_counter() - start
    return {"work_s": work, "report_duration_s": report.duration_s, "counts": dict(report.counts_by_code()),
            "leakage": report.leakage}


class _Timers:
    """Inclusive wall seconds of wrapped functions, keyed by the chain of wrapped callers."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.totals: dict[tuple[str, ...], list[float]] = {}  # path -> [seconds, calls]

    def wrap(self, owner, attr: str, label) -> None:
        fn = getattr(owner, attr)
        timers = self

        def timed(*args, **kwargs):
            name = label(args) if callable(label) else label
            timers.stack.append(name)
            entry = timers.totals.setdefault(tuple(timers.stack), [0.0, 0])  # listed in the order first entered
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                entry[0] += time.perf_counter() - start
                entry[1] += 1
                timers.stack.pop()

        timed.__wrapped__ = fn
        setattr(owner, attr, timed)


def child_phases(spec: dict) -> dict:
    """Configuration (b) in-process, sftgate's steps wrapped with timers (and cProfile)."""
    import sftgate
    from sftgate.engine import features, local
    from sftgate.engine import run as run_mod
    from sftgate.rules import dedup, leakage

    t = _Timers()
    t.wrap(run_mod, "_check_one", lambda a: f"pass {a[1].name} ({a[1].split})")
    t.wrap(run_mod, "_duplicates", "duplicate analysis (DUP)")
    t.wrap(dedup, "findings", "DUP findings")
    t.wrap(run_mod, "_leakage", "leakage (run._leakage)")
    t.wrap(leakage, "analyse", "leakage.analyse")
    t.wrap(leakage, "_exact", "LEAK001 exact keys")
    t.wrap(leakage, "_near", "LEAK002 near (LSH + verify)")
    t.wrap(features.FeatureTable, "prompt_bands", lambda a: f"prompt band keys ({len(a[0]):,} records)")
    t.wrap(leakage, "cross_edges", "LSH cross edges")
    t.wrap(local.LocalExecutor, "verify_edges", "verify edges")
    t.wrap(leakage, "_ngram_leaks", "LEAK003/004 n-grams")
    t.wrap(leakage, "_query_ngrams", "index validation/eval n-grams")
    t.wrap(leakage, "_shared", "pairs sharing n-grams")
    t.wrap(leakage, "_longest_run", "longest shared run")
    t.wrap(leakage, "findings", "LEAK findings")
    t.wrap(leakage, "summary", "leakage summary")
    profile_out = spec.get("cprofile_out")
    if profile_out:
        import cProfile

        inner = run_mod._leakage

        def profiled(*args, **kwargs):
            prof = cProfile.Profile()
            try:
                return prof.runcall(inner, *args, **kwargs)
            finally:
                prof.dump_stats(profile_out)

        run_mod._leakage = profiled
    start = time.perf_counter()
    report = sftgate.check(spec["train"], validation=spec["validation"], eval_sets=spec["eval_sets"],
                           workers=spec["workers"])
    work = time.perf_counter() - start
    phases = [{"path": list(path), "seconds": s, "calls": n} for path, (s, n) in t.totals.items()]
    return {"work_s": work, "report_duration_s": report.duration_s, "phases": phases,
            "counts": dict(report.counts_by_code())}


def run_child(spec_json: str) -> int:
    return _report.run_child(spec_json, {"quality": child_quality, "phases": child_phases})


# ================================================================ parent side


@dataclass
class Run:
    name: str
    ok: bool
    wall_s: float | None = None
    work_s: float | None = None
    peak_rss_tree_mib: float | None = None
    max_rss_process_mib: float | None = None
    exit_code: int | None = None
    child_cpu_s: float | None = None  # user + system seconds of the child's process tree
    other_cpu_s: float | None = None  # CPU seconds the machine spent on other processes meanwhile
    steal_s: float | None = None  # CPU seconds the hypervisor took (summed over CPUs)
    detail: dict = field(default_factory=dict)
    note: str = ""


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", name).strip("-")


def _measured(name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> tuple[Run, dict]:
    from bench_check import run_measured  # parent-only (psutil sampling)

    print(f"  {name} ...", end=" ", flush=True)
    before = _cpu_seconds()
    run = run_measured(argv, env or dict(os.environ), log_dir, _slug(name))
    after = _cpu_seconds()
    r = Run(name=name, ok=False, wall_s=round(run["wall_s"], 2), peak_rss_tree_mib=round(run["peak_rss_tree_mib"], 1),
            max_rss_process_mib=rounded(run["max_rss_process_mib"]), exit_code=run["exit_code"])
    spent = {k: after[k] - before[k] for k in before}
    # CPU the machine spent on anything but this run (the child tree is waited for, so its time
    # is in RUSAGE_CHILDREN; this script's sampling is in `own`): another job competing for the
    # two cores makes the wall time meaningless, and this says so.
    r.other_cpu_s = round(spent["busy"] - spent["children"] - spent["own"], 1)
    r.steal_s = round(spent["steal"], 1)
    r.child_cpu_s = round(spent["children"], 1)
    return r, run


def _cpu_seconds() -> dict[str, float]:
    import psutil

    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    busy = sum(t) - idle - getattr(t, "steal", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"busy": busy, "steal": getattr(t, "steal", 0.0), "own": own.ru_utime + own.ru_stime,
            "children": children.ru_utime + children.ru_stime}


def measure_child(name: str, spec: dict, log_dir: Path) -> tuple[Run, dict]:
    """This script in child mode (quality, phases); its last stdout line is its JSON result."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    r, run = _measured(name, argv, log_dir)
    try:
        result = json.loads(run["stdout"].read_text().strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = {}
    r.ok = run["exit_code"] == 0 and "work_s" in result
    if r.ok:
        r.work_s = round(result["work_s"], 2)
        print(f"{r.wall_s:.1f} s, {r.peak_rss_tree_mib:.0f} MiB", flush=True)
    else:
        err = run["stderr"].read_text(errors="replace").strip().splitlines()
        r.note = result.get("error") or f"exit code {run['exit_code']}: {err[-1] if err else ''}"
        print(f"FAILED ({r.note}); see {run['stderr']}", flush=True)
    return r, result


def measure_cli(name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None,
                show_cpu: bool = False) -> tuple[Run, dict]:
    """`python -m sftgate check ARGS --format json --report-json OUT`; exit 0 or 1 with a report is complete.
    `env`: the child's environment (default: this repository's sftgate on the path)."""
    from bench_check import _sftgate_env

    report = log_dir / f"{_slug(name)}.report.json"
    report.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "sftgate", "check", *args, "--format", "json", "--report-json", str(report)]
    r, run = _measured(name, argv, log_dir, env or _sftgate_env())
    data = json.loads(report.read_text()) if report.exists() else {}
    r.ok = run["exit_code"] in (0, 1) and bool(data)
    if r.ok:
        r.work_s = rounded(data.get("duration_s"), 2)
        cpu = f", CPU {r.child_cpu_s:.1f} s" if show_cpu else ""
        print(f"{r.wall_s:.1f} s{cpu}, {r.peak_rss_tree_mib:.0f} MiB", flush=True)
    else:
        err = run["stderr"].read_text(errors="replace").strip().splitlines()
        r.note = f"exit code {run['exit_code']}: {err[-1] if err else ''}"
        print(f"FAILED ({r.note}); see {run['stderr']}", flush=True)
    return r, data


# ---------------------------------------------------------------- quality


def _jsonl(path: Path) -> list:
    """The records of a JSONL file, split on newlines only (str.splitlines also splits on U+2028 & co.)."""
    with path.open("rb") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_labels(path: Path) -> dict[int, dict]:
    return {lab["line"]: lab for lab in _jsonl(path)}


def _line_of(where: str) -> int:
    return int(where.rsplit(":", 1)[1])


def validation_set(leakage: dict) -> dict:
    return next(s for s in leakage["sets"] if s["split"] == "validation")


def score_quality(leakage: dict, labels: dict[int, dict]) -> dict:
    """Recall per labelled kind, precision, training lines found, unlabelled flagged lines."""
    side = validation_set(leakage)
    flagged = {_line_of(item["record"]): item for item in side["listed"]}
    kinds = sorted({lab["kind"] for lab in labels.values()})
    per_kind = {}
    for kind in kinds:
        lines = [n for n, lab in labels.items() if lab["kind"] == kind]
        found = [n for n in lines if n in flagged]
        codes: dict[str, int] = {}
        for n in found:
            codes[flagged[n]["code"]] = codes.get(flagged[n]["code"], 0) + 1
        per_kind[kind] = {"labelled": len(lines), "found": len(found), "recall": len(found) / len(lines),
                          "codes": codes, "missed": sorted(set(lines) - set(found))}
    correct = [n for n in flagged if n in labels]
    train_missing = {}
    for n, lab in labels.items():
        if n in flagged:
            matched = {_line_of(m["record"]) for m in flagged[n]["matches"]}
            missing = sorted(set(lab["train_lines"]) - matched)
            if missing:
                train_missing[n] = missing
    found_labelled = [n for n in labels if n in flagged]
    return {
        "flagged": len(flagged), "leaking_records": side["leaking_records"], "by_kind": side["by_kind"],
        "complete": len(flagged) == side["leaking_records"],
        "precision": len(correct) / len(flagged) if flagged else None,
        "per_kind": per_kind,
        "train_lines_all_matched": len(found_labelled) - len(train_missing), "train_lines_checked": len(found_labelled),
        "train_lines_missing": train_missing,
        "unlabelled": [flagged[n] for n in sorted(flagged) if n not in labels],
    }


def quality_targets(s: dict) -> dict:
    out = {f"recall_{k}": s["per_kind"][k]["recall"] for k in RECALL_FLOORS if k in s["per_kind"]}
    out.update({f"recall_{k}_ok": s["per_kind"][k]["recall"] >= floor for k, floor in RECALL_FLOORS.items()
                if k in s["per_kind"]})
    out["precision"] = s["precision"]
    out["precision_ok"] = s["precision"] is not None and s["precision"] >= PRECISION_FLOOR
    out["train_lines_ok"] = not s["train_lines_missing"]
    return out


def run_quality(args: argparse.Namespace, log_dir: Path) -> dict:
    bench = args.bench / "leakage"
    train, validation, labels_path = bench / "train.jsonl", bench / "validation.jsonl", bench / "leakage.labels.jsonl"
    if not (train.exists() and validation.exists() and labels_path.exists()):
        sys.exit(f"leakage benchmark not found in {bench} (use --bench DIR)")
    labels = load_labels(labels_path)
    print(f"quality: {bench} ({len(labels)} labelled validation lines)", flush=True)
    cap = log_dir / "max_listed.yaml"
    cap.write_text("leak:\n  max_listed: 100000\n")
    warm(train, validation)
    runs = []
    for workers in dict.fromkeys((args.workers, 1)):
        spec = {"kind": "quality", "train": str(train), "validation": str(validation), "rules": str(cap),
                "workers": workers}
        r, result = measure_child(f"quality workers={workers}", spec, log_dir)
        if r.ok and result.get("leakage"):
            r.detail = {"counts": result["counts"], "score": score_quality(result["leakage"], labels),
                        "candidate_pairs": result["leakage"]["candidate_pairs"],
                        "verified_pairs": result["leakage"]["verified_pairs"]}
        elif r.ok:
            r.ok, r.note = False, "no leakage section in the report"
        runs.append(r)
    return {"bench": str(bench), "labels": len(labels), "runs": runs, "workers": args.workers}


# ---------------------------------------------------------------- speed sets


Turns = tuple[tuple[str, str], ...]


def _texts(record: dict) -> tuple[str, Turns]:
    """(system text, turns) of a Gemini record, text parts joined per turn."""
    def joined(parts) -> str:
        return "".join(p.get("text", "") for p in parts or () if isinstance(p, dict))

    system = joined((record.get("systemInstruction") or {}).get("parts"))
    return system, tuple((t.get("role", "user"), joined(t.get("parts"))) for t in record.get("contents") or ())


def _instruction(instruction: str, extra: str) -> str:
    instruction, extra = instruction.strip(), (extra or "").strip()
    return f"{instruction}\n\n{extra}" if extra else instruction


def fresh_conversations(shared: Path, rng: random.Random) -> tuple[list[Turns], list[str], dict[str, int]]:
    """Conversations and prompts the generator never uses (see the module doc), fixed order."""
    import _gen

    real, bench = shared / "data" / "real", shared / "data" / "bench"
    convs: dict[str, list[Turns]] = {}
    prompts: list[str] = []

    labels = _jsonl(bench / "neardup.labels.jsonl")
    sharegpt = []
    with (bench / "neardup.jsonl").open("rb") as f:
        for lab, line in zip(labels, f, strict=True):
            src = lab["source"].split(":")
            if lab["kind"] == "original" and src[0] == "sharegpt" and int(src[1]) >= 3000:
                _, turns = _texts(json.loads(line))
                if turns and all(text.strip() for _, text in turns):
                    sharegpt.append(turns)
    convs["sharegpt>=3000 (neardup originals)"] = sharegpt

    dialogsum = []
    for rec in _jsonl(real / "dialogsum" / "dialogsum.dev.jsonl"):
        dialogue, summary = rec.get("dialogue", "").strip(), rec.get("summary", "").strip()
        if dialogue and summary:
            instruction = rng.choice(_gen._DIALOGSUM_INSTRUCTIONS)
            dialogsum.append((("user", f"{instruction}\n\n{dialogue}"), ("model", summary)))
    convs["dialogsum dev"] = dialogsum

    oasst = []
    for tree in _jsonl(real / "chat" / "oasst_en_100_tree.jsonl"):
        prompt = tree["prompt"]
        prompts.append(prompt["text"])
        for reply in prompt.get("replies") or ():
            if prompt["text"].strip() and reply.get("text", "").strip():
                oasst.append((("user", prompt["text"].strip()), ("model", reply["text"].strip())))
    convs["oasst prompt/reply"] = oasst

    tasks = []
    for name in ("prod_prompts/self_instruct_user_oriented_instructions.jsonl", "alpaca/seed_tasks.jsonl"):
        for rec in _jsonl(real / name):
            for inst in rec.get("instances") or ():
                prompt, answer = _instruction(rec["instruction"], inst.get("input")), (inst.get("output") or "").strip()
                if prompt and answer:
                    tasks.append((("user", prompt), ("model", answer)))
    convs["self-instruct + seed tasks"] = tasks

    for rec in _jsonl(real / "prod_prompts" / "mt_bench_question.jsonl"):
        prompts.extend(rec["turns"])
    pool = [c for group in convs.values() for c in group]
    rng.shuffle(pool)
    counts = {k: len(v) for k, v in convs.items()}
    counts["extra prompts (oasst, mt-bench)"] = len(prompts)
    return pool, prompts, counts


def _exchanges(convs: list[Turns]) -> list[Turns]:
    out = []
    for turns in convs:
        for i in range(len(turns) - 1):
            if turns[i][0] == "user" and turns[i + 1][0] == "model":
                out.append((turns[i], turns[i + 1]))
    return out


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _record(turns: Turns, system: str = "") -> dict:
    rec: dict = {}
    if system:
        rec["systemInstruction"] = {"role": "system", "parts": [{"text": system}]}
    rec["contents"] = [{"role": role, "parts": [{"text": text}]} for role, text in turns]
    return rec


def _tagged(turns: Turns, copy_no: int) -> Turns:
    if not copy_no:
        return turns
    (role, text), *rest = turns
    return ((role, f"{text}\n\n[variant {copy_no}]"), *rest)


def _typos(text: str, rng: random.Random, share: float = 0.04) -> str:
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not candidates:
        return text
    for i in rng.sample(candidates, max(1, round(len(candidates) * share))):
        w = words[i]
        j = rng.randrange(len(w) - 1)
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def _edit(system: str, turns: Turns, rng: random.Random) -> tuple[str, Turns, str]:
    """One seeded edit of a training example: (system, turns, edit name)."""
    edit = rng.choice(("typos", "boilerplate", "sysprompt", "truncate"))
    turns = list(turns)
    role, answer = turns[-1]
    if edit == "typos":
        turns = [(r, _typos(t, rng)) for r, t in turns]
    elif edit == "boilerplate":
        turns[-1] = (role, f"{answer}\n\n{rng.choice(_BOILERPLATE)}")
    elif edit == "sysprompt":
        system = "" if system else _SYSTEM
    else:
        words = answer.split(" ")
        turns[-1] = (role, " ".join(words[: max(1, round(len(words) * 0.9))]))
    return system, tuple(turns), edit


def _dialogue_question(dialogue: str, rng: random.Random) -> tuple[str, str]:
    speakers = _SPEAKER.findall(dialogue)
    lines = [x for x in dialogue.splitlines() if x.strip()]
    options = [("How many lines does this dialogue have?", str(len(lines)))]
    if speakers:
        options += [("Who speaks last in this dialogue?", speakers[-1]),
                    ("Who starts this conversation?", speakers[0])]
    return rng.choice(options)


@dataclass(frozen=True)
class TrainLine:
    line: int
    raw: bytes
    system: str
    turns: Turns

    @property
    def single(self) -> bool:
        return len(self.turns) == 2 and self.turns[0][0] == "user" and self.turns[1][0] == "model"

    def words(self, i: int) -> int:
        return len(self.turns[i][1].split())


def sample_train(path: Path, records: int, want: int, rng: random.Random) -> list[TrainLine]:
    """`want` training lines at seeded random line numbers, parsed (in random order)."""
    chosen = sorted(rng.sample(range(1, records + 1), min(want, records)))
    out, k = [], 0
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            if k == len(chosen):
                break
            if n == chosen[k]:
                k += 1
                system, turns = _texts(json.loads(raw))
                if turns and turns[-1][0] == "model":
                    out.append(TrainLine(n, raw.rstrip(b"\n"), system, turns))
    rng.shuffle(out)
    return out


def _long_answer(t: TrainLine) -> bool:
    """Enough text for an edit to leave a near-duplicate (LEAK002 needs leak.near_min_tokens)."""
    return t.words(-1) >= 30 and sum(t.words(i) for i in range(len(t.turns))) >= 40


class _Picker:
    """Hands out distinct training lines meeting a condition."""

    def __init__(self, lines: list[TrainLine]) -> None:
        self.lines, self.used = lines, set()

    def take(self, n: int, ok) -> list[TrainLine]:
        got = []
        for t in self.lines:
            if len(got) == n:
                break
            if t.line not in self.used and ok(t):
                self.used.add(t.line)
                got.append(t)
        return got


def _dialogsum_source(t: TrainLine) -> str | None:
    import _gen

    if not t.single:
        return None
    text = _VARIANT.sub("", t.turns[0][1])
    for instruction in _gen._DIALOGSUM_INSTRUCTIONS:
        if text.startswith(instruction + "\n\n"):
            return text[len(instruction) + 2:]
    return None


def _dumps(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()


def sets_dir(data_dir: Path, size_mb: int, seed: int, sets_seed: int) -> Path:
    return data_dir / f"leak_sets_{size_mb}mb_seed{seed}_s{sets_seed}_v{SETS_VERSION}"


def build_sets(args: argparse.Namespace, gen) -> dict:
    """The validation and eval sets for the training file `gen` (cached; see the module doc)."""
    out_dir = sets_dir(args.data_dir, args.size_mb, args.seed, args.sets_seed)
    marker = out_dir / "manifest.json"
    if not args.regen and marker.exists():
        meta = json.loads(marker.read_text())
        names = [*meta["files"].values(), LABELS]
        if meta.get("train_sha256") == gen.sha256 and all((out_dir / f).exists() for f in names):
            meta["cached"] = True
            return meta
    start = time.perf_counter()
    print(f"building validation/eval sets in {out_dir} ...", end=" ", flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    rng = random.Random(args.sets_seed)
    pool, extra_prompts, sources = fresh_conversations(args.shared, rng)
    picker = _Picker(sample_train(gen.path, gen.records, 40_000, rng))
    injected: dict[str, dict[str, int]] = {}
    edits: dict[str, int] = {}

    def near(t: TrainLine) -> tuple[bytes, dict]:
        system, turns, edit = _edit(t.system, t.turns, rng)
        edits[edit] = edits.get(edit, 0) + 1
        return _dumps(_record(turns, system)), {"kind": "near", "train_line": t.line, "edit": edit}

    def exact(t: TrainLine) -> tuple[bytes, dict]:
        return t.raw, {"kind": "exact", "train_line": t.line}

    def write(key: str, name: str, fresh: list[bytes], leaks: list[tuple[bytes, dict]]) -> None:
        """Leaks at seeded random positions among the fresh lines; their lines go to the labels."""
        items: list[tuple[bytes, dict | None]] = [(x, None) for x in fresh]
        for leak in leaks:
            items.insert(rng.randrange(len(items) + 1), leak)
        (out_dir / name).write_bytes(b"\n".join(x for x, _ in items) + b"\n")
        files[key] = name
        for n, (_, lab) in enumerate(items, start=1):
            if lab is not None:
                labels.append({"set": key, "line": n, **lab})
        counts: dict[str, int] = {}
        for _, lab in leaks:
            counts[lab["kind"]] = counts.get(lab["kind"], 0) + 1
        injected[key] = counts

    files: dict[str, str] = {}
    labels: list[dict] = []

    # validation: distinct unseen conversations + leaks
    leaks = [exact(t) for t in picker.take(VALIDATION_LEAKS["exact"], lambda t: True)]
    leaks += [near(t) for t in picker.take(VALIDATION_LEAKS["near"], _long_answer)]
    for t in picker.take(VALIDATION_LEAKS["shared_source"], lambda t: _dialogsum_source(t) is not None):
        dialogue = _dialogsum_source(t)
        question, answer = _dialogue_question(dialogue, rng)
        leaks.append((_dumps(_record((("user", f"{question}\n\n{dialogue}"), ("model", answer)))),
                      {"kind": "shared_source", "train_line": t.line}))
    fresh = [_dumps(_record(_tagged(pool[i % len(pool)], i // len(pool)))) for i in range(VALIDATION_N - len(leaks))]
    write("validation", f"validation_{VALIDATION_N}.jsonl", fresh, leaks)

    # eval set of examples: single exchanges, cycled + leaks
    exchanges = _exchanges(pool)
    leaks = [exact(t) for t in picker.take(EVAL_CHAT_LEAKS["exact"], lambda t: True)]
    leaks += [near(t) for t in picker.take(EVAL_CHAT_LEAKS["near"], _long_answer)]
    leaks += [(_dumps(_record(t.turns[:1])), {"kind": "prompt_exact", "train_line": t.line})
              for t in picker.take(EVAL_CHAT_LEAKS["prompt_exact"], lambda t: t.single)]
    for t in picker.take(EVAL_CHAT_LEAKS["answer"], lambda t: t.words(-1) >= 40):
        question = rng.choice(exchanges)[0]
        leaks.append((_dumps(_record((question, t.turns[-1]))), {"kind": "answer", "train_line": t.line}))
    fresh = [_dumps(_record(_tagged(exchanges[i % len(exchanges)], i // len(exchanges))))
             for i in range(EVAL_CHAT_N - len(leaks))]
    write("eval_chat", f"eval_chat_{EVAL_CHAT_N}.jsonl", fresh, leaks)

    # eval set of prompts, one per line
    prompt_pool = [_one_line(x[0][1]) for x in exchanges] + [_one_line(p) for p in extra_prompts]
    prompt_pool = [p for p in prompt_pool if p]
    leaks = [(_one_line(t.turns[0][1]).encode(), {"kind": "prompt_exact", "train_line": t.line})
             for t in picker.take(EVAL_PROMPT_LEAKS["prompt_exact"], lambda t: t.single and _one_line(t.turns[0][1]))]
    leaks += [(_typos(_one_line(t.turns[0][1]), rng).encode(), {"kind": "prompt_near", "train_line": t.line})
              for t in picker.take(EVAL_PROMPT_LEAKS["prompt_near"], lambda t: t.single and t.words(0) >= 20)]
    fresh = []
    for i in range(EVAL_PROMPTS_N - len(leaks)):
        copy_no, k = divmod(i, len(prompt_pool))
        fresh.append((prompt_pool[k] + (f" [variant {copy_no}]" if copy_no else "")).encode())
    write("eval_prompts", f"eval_prompts_{EVAL_PROMPTS_N}.txt", fresh, leaks)
    (out_dir / LABELS).write_text("".join(json.dumps(lab) + "\n" for lab in labels))

    meta = {"files": files, "labels": LABELS, "sizes": {k: (out_dir / f).stat().st_size for k, f in files.items()},
            "records": {"validation": VALIDATION_N, "eval_chat": EVAL_CHAT_N, "eval_prompts": EVAL_PROMPTS_N},
            "injected": injected, "near_edits": edits, "unseen_sources": sources,
            "unseen_conversations": len(pool), "unseen_exchanges": len(exchanges),
            "unseen_prompts": len(prompt_pool), "train": gen.path.name, "train_sha256": gen.sha256,
            "seed": args.seed, "sets_seed": args.sets_seed, "version": SETS_VERSION,
            "seconds": round(time.perf_counter() - start, 2)}
    marker.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{meta['seconds']:.1f} s", flush=True)
    meta["cached"] = False
    return meta


# ---------------------------------------------------------------- speed


def generate(args: argparse.Namespace):
    import _gen  # parent-only

    real_dir = args.shared / "data" / "real"
    if not real_dir.is_dir():
        sys.exit(f"real data not found: {real_dir} (use --shared DIR)")
    print(f"generating {args.size_mb} MiB (seed {args.seed}) in {args.data_dir} ...", end=" ", flush=True)
    gen = _gen.generate(real_dir, args.data_dir, args.size_mb, args.seed, force=args.regen)
    origin = "cached" if gen.cached else f"generated in {gen.seconds:.1f} s"
    print(f"{gen.size_bytes:,} bytes, {gen.records:,} records, {origin}", flush=True)
    return gen


def _leak_counts(report: dict) -> dict:
    lk = report.get("leakage") or {}
    return {"training_records_flagged": lk.get("training_records_flagged"),
            "candidate_pairs": lk.get("candidate_pairs"), "verified_pairs": lk.get("verified_pairs"),
            "sets": {s["name"]: {"records": s["records"], "leaking_records": s["leaking_records"],
                                 "by_kind": s["by_kind"]} for s in lk.get("sets", [])}}


def run_speed(args: argparse.Namespace, log_dir: Path) -> dict:
    gen = generate(args)
    sets = build_sets(args, gen)
    d = sets_dir(args.data_dir, args.size_mb, args.seed, args.sets_seed)
    val, chat, prompts = (d / sets["files"][k] for k in ("validation", "eval_chat", "eval_prompts"))
    warm(gen.path, val, chat, prompts)
    w = ["--workers", str(args.workers)]
    config_a = [str(gen.path), *w]
    config_b = [str(gen.path), *w, "--validation", str(val), "--eval", str(chat), "--eval", str(prompts)]
    pairs = []
    for i in range(1, args.repeat + 1):
        a, rep_a = measure_cli(f"a train only #{i}", config_a, log_dir)
        b, rep_b = measure_cli(f"b train + validation + 2 evals #{i}", config_b, log_dir)
        if a.ok:
            a.detail = {"counts": {r["code"]: r["count"] for r in rep_a.get("rules", [])}}
        if b.ok:
            b.detail = {"counts": {r["code"]: r["count"] for r in rep_b.get("rules", [])},
                        "leakage": _leak_counts(rep_b)}
        overhead = b.wall_s / a.wall_s - 1 if a.ok and b.ok else None
        pairs.append({"a": a, "b": b, "overhead": overhead})
    phases = None
    if args.phases:
        spec = {"kind": "phases", "train": str(gen.path), "validation": str(val), "eval_sets": [str(chat), str(prompts)],
                "workers": args.workers}
        if args.cprofile:
            spec["cprofile_out"] = str(log_dir / "leakage.prof")
        r, result = measure_child("b with phase timers", spec, log_dir)
        phases = {"run": r, "phases": result.get("phases", []), "cprofile": spec.get("cprofile_out")}
    scored = None
    if args.score_sets:
        cap = log_dir / "max_listed.yaml"
        cap.write_text("leak:\n  max_listed: 100000\n")
        r, rep = measure_cli("b LEAK only, every leak listed", [*config_b, "--select", "LEAK", "--rules", str(cap)],
                             log_dir)
        scored = {"run": r, "scores": score_sets(rep, sets, d) if r.ok else None}
    return {"file": str(gen.path), "size_bytes": gen.size_bytes, "records": gen.records, "sha256": gen.sha256,
            "sets": sets, "sets_dir": str(d), "pairs": pairs, "workers": args.workers, "phases": phases,
            "scored": scored,
            "commands": {"a": "sftgate check TRAIN " + " ".join(w),
                         "b": "sftgate check TRAIN " + " ".join(w) + f" --validation {val.name} --eval {chat.name} "
                              f"--eval {prompts.name}"}}


def score_sets(report: dict, sets: dict, d: Path) -> dict:
    """Injected leaks found, per set and kind, from a report listing every leaking record."""
    by_name = {s["source"]: s for s in (report.get("leakage") or {}).get("sets", [])}
    out = {}
    labels = _jsonl(d / sets["labels"])
    for key, name in sets["files"].items():
        side = by_name.get(str(d / name))
        if side is None:
            continue
        flagged = {_line_of(item["record"]): item["kind"] for item in side["listed"]}
        mine = [lab for lab in labels if lab["set"] == key]
        kinds: dict[str, dict] = {}
        for lab in mine:
            k = kinds.setdefault(lab["kind"], {"injected": 0, "found": 0, "as_expected": 0, "found_as": {}})
            k["injected"] += 1
            if lab["line"] in flagged:
                k["found"] += 1
                k["as_expected"] += flagged[lab["line"]] == INJECTED_AS[lab["kind"]]
                k["found_as"][flagged[lab["line"]]] = k["found_as"].get(flagged[lab["line"]], 0) + 1
        injected_lines = {lab["line"] for lab in mine}
        extra: dict[str, int] = {}
        for line, kind in flagged.items():
            if line not in injected_lines:
                extra[kind] = extra.get(kind, 0) + 1
        out[key] = {"complete": len(side["listed"]) == side["leaking_records"], "kinds": kinds,
                    "not_injected": extra}
    return out


def speed_targets(sp: dict) -> dict:
    overheads = [p["overhead"] for p in sp["pairs"] if p["overhead"] is not None]
    if not overheads:
        return {"overhead_ok": None}
    med = statistics.median(overheads)
    full = sp["size_bytes"] >= 0.95 * LARGE_MIB * MIB and sp["workers"] == 2
    return {"overheads": overheads, "overhead_median": med, "overhead_min": min(overheads),
            "overhead_max": max(overheads), "overhead_ok": med <= OVERHEAD_TARGET,
            "all_pairs_ok": all(x <= OVERHEAD_TARGET for x in overheads), "setting_as_target": full}


# ---------------------------------------------------------------- printing


def print_quality(q: dict) -> None:
    print(f"\n## Quality: {q['bench']} ({q['labels']} labelled leaking validation lines)\n")
    kinds = list(RECALL_FLOORS)
    print("| run | wall s | peak RSS MiB (tree) | flagged | "
          + " | ".join(f"recall {k} (>= {RECALL_FLOORS[k]})" for k in kinds)
          + f" | precision (>= {PRECISION_FLOOR}) | train_lines all matched |")
    print("| --- | ---: | ---: | ---: |" + " ---: |" * len(kinds) + " ---: | ---: |")
    for r in q["runs"]:
        s = r.detail.get("score")
        if not s:
            print(f"| {r.name} | {fmt(r.wall_s, '.2f')} | {fmt(r.peak_rss_tree_mib, '.0f')} | — |"
                  + " — |" * len(kinds) + f" — | — | {r.note}")
            continue
        recalls = " | ".join(f"{s['per_kind'][k]['found']}/{s['per_kind'][k]['labelled']} = "
                             f"{s['per_kind'][k]['recall']:.3f}" if k in s["per_kind"] else "—" for k in kinds)
        print(f"| {r.name} | {r.wall_s:.2f} | {r.peak_rss_tree_mib:.0f} | {s['flagged']} | {recalls} | "
              f"{s['flagged'] - len(s['unlabelled'])}/{s['flagged']} = {fmt(s['precision'], '.3f')} | "
              f"{s['train_lines_all_matched']}/{s['train_lines_checked']} |")
    main = next((r for r in q["runs"] if r.detail.get("score")), None)
    if not main:
        return
    s = main.detail["score"]
    print(f"\n{main.name}: report by_kind {s['by_kind']}, leaking_records {s['leaking_records']}"
          f"{'' if s['complete'] else ' (LISTING CAPPED: scores incomplete)'}; LSH candidate pairs "
          f"{main.detail['candidate_pairs']}, verified {main.detail['verified_pairs']}")
    print("\n| labelled kind | expected code | codes given to the found lines | missed lines |")
    print("| --- | --- | --- | --- |")
    for k, v in s["per_kind"].items():
        codes = ", ".join(f"{c} {n}" for c, n in sorted(v["codes"].items()))
        print(f"| {k} | {EXPECTED_CODE.get(k, '?')} | {codes} | {', '.join(map(str, v['missed'])) or 'none'} |")
    if s["train_lines_missing"]:
        print("\nlabelled train_lines not among the matches: "
              + "; ".join(f"validation:{n} misses train {m}" for n, m in s["train_lines_missing"].items()))
    print(f"\nunlabelled flagged validation lines: {len(s['unlabelled'])}")
    for item in s["unlabelled"]:
        matches = "; ".join(f"train:{_line_of(m['record'])} {m['code']} {m['score']}"
                            + (f" span {m['span_tokens']} tokens {m['span']!r}" if "span" in m else "")
                            for m in item["matches"])
        print(f"  validation:{_line_of(item['record'])} {item['code']} ({item['kind']}), "
              f"{item['training_matches']} training match(es): {matches}")


def print_speed(sp: dict) -> None:
    s = sp["sets"]
    print(f"\n## Speed: {Path(sp['file']).name} ({sp['size_bytes'] / MIB:,.0f} MiB, {sp['records']:,} records), "
          f"--workers {sp['workers']}\n")
    print(f"(a) {sp['commands']['a']}\n(b) {sp['commands']['b']}\n")
    print("| set | file | records | MiB | leaks injected |")
    print("| --- | --- | ---: | ---: | --- |")
    for key, name in s["files"].items():
        inj = ", ".join(f"{k} {v}" for k, v in s["injected"][key].items())
        print(f"| {key} | {name} | {s['records'][key]:,} | {s['sizes'][key] / MIB:.1f} | {inj} |")
    print(f"\nunseen pool: {s['unseen_conversations']:,} conversations, {s['unseen_exchanges']:,} exchanges, "
          f"{s['unseen_prompts']:,} prompts; sources {s['unseen_sources']}; near edits {s['near_edits']}\n")
    print("| run | wall s | report duration s | CPU s (tree) | other CPU s | steal s | peak RSS MiB (tree) "
          "| max RSS MiB (1 proc) | overhead (b/a - 1) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for p in sp["pairs"]:
        for key in ("a", "b"):
            r = p[key]
            over = fmt(p["overhead"], "+.1%") if key == "b" else ""
            print(f"| {r.name} | {fmt(r.wall_s, '.2f')} | {fmt(r.work_s, '.2f')} | {fmt(r.child_cpu_s, '.1f')} | "
                  f"{fmt(r.other_cpu_s, '.1f')} | {fmt(r.steal_s, '.1f')} | {fmt(r.peak_rss_tree_mib, '.0f')} "
                  f"| {fmt(r.max_rss_process_mib, '.0f')} | {over} |" + (f" {r.note}" if r.note else ""))
    print("\nother CPU s: CPU time the machine spent outside this benchmark during the run (another job on "
          "the two cores shows here: a few seconds is the system's own)")
    b = next((p["b"] for p in sp["pairs"] if p["b"].ok), None)
    if b:
        lk = b.detail["leakage"]
        print(f"\nleakage found ({b.name}): {lk['training_records_flagged']:,} training records flagged, "
              f"LSH candidate pairs {lk['candidate_pairs']:,}, verified {lk['verified_pairs']:,}\n")
        print("| set | records | leaking records | exact | near | shared_source | answer | injected (expected kind) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        names = dict(zip(("validation", "eval_chat", "eval_prompts"),
                         ("validation", Path(s["files"]["eval_chat"]).stem, Path(s["files"]["eval_prompts"]).stem),
                         strict=True))
        for key, name in names.items():
            got = lk["sets"].get(name)
            if not got:
                continue
            expected: dict[str, int] = {}
            for kind, n in s["injected"][key].items():
                expected[INJECTED_AS[kind]] = expected.get(INJECTED_AS[kind], 0) + n
            bk = got["by_kind"]
            print(f"| {name} | {got['records']:,} | {got['leaking_records']:,} | {bk['exact']:,} | {bk['near']:,} | "
                  f"{bk['shared_source']:,} | {bk['answer']:,} | "
                  + ", ".join(f"{k} {v}" for k, v in expected.items()) + " |")
        counts_a = next((p["a"].detail.get("counts") for p in sp["pairs"] if p["a"].ok), {})
        print(f"\nfindings by rule: (a) {counts_a}\n                  (b) {b.detail['counts']}")
    sc = sp.get("scored")
    if sc and sc["scores"]:
        r = sc["run"]
        print(f"\n### Injected leaks found ({r.name}: {r.wall_s:.1f} s; `--select LEAK`, leak.max_listed raised)\n")
        print("| set | injected kind | expected report kind | injected | found | found as expected | found as |")
        print("| --- | --- | --- | ---: | ---: | ---: | --- |")
        for key, got in sc["scores"].items():
            for kind, k in got["kinds"].items():
                found_as = ", ".join(f"{a} {n}" for a, n in sorted(k["found_as"].items()))
                print(f"| {key} | {kind} | {INJECTED_AS[kind]} | {k['injected']} | {k['found']} | {k['as_expected']} | "
                      f"{found_as} |")
        for key, got in sc["scores"].items():
            extra = ", ".join(f"{a} {n}" for a, n in sorted(got["not_injected"].items())) or "none"
            print(f"\n{key}: flagged but not injected (real overlaps of the unseen sources with the training data, "
                  f"e.g. DialogSum dev/train, repeated ShareGPT prompts): {extra}"
                  + ("" if got["complete"] else " (LISTING CAPPED)"))
    ph = sp.get("phases")
    if ph and ph["phases"]:
        r = ph["run"]
        print(f"\n### Phases of (b), one run ({r.wall_s:.1f} s wall, {r.work_s} s in sftgate.check, "
              f"{r.peak_rss_tree_mib:.0f} MiB tree)\n")
        print("inclusive wall seconds of the wrapped step, nested under the wrapped step that called it\n")
        print("| step | calls | seconds |")
        print("| --- | ---: | ---: |")
        for item in ph["phases"]:
            depth = len(item["path"]) - 1
            print(f"| {'&nbsp;&nbsp;' * depth}{'└ ' if depth else ''}{item['path'][-1]} | {item['calls']} | "
                  f"{item['seconds']:.2f} |")
        if ph.get("cprofile"):
            _print_cprofile(ph["cprofile"])


def _print_cprofile(path: str) -> None:
    import io
    import pstats

    if not Path(path).exists():
        return
    buf = io.StringIO()
    pstats.Stats(path, stream=buf).sort_stats("cumulative").print_stats(30)
    print(f"\ncProfile of run._leakage (parent process only; top 30 by cumulative time; {path}):\n")
    print("\n".join(line for line in buf.getvalue().splitlines() if line.strip())[-4000:])


def print_targets(qt: dict | None, st: dict | None, sp: dict | None) -> None:
    print("\n## Targets\n")
    if qt:
        for k, floor in RECALL_FLOORS.items():
            if f"recall_{k}" in qt:
                print(f"recall {k} >= {floor}: {qt[f'recall_{k}']:.3f} {verdict(qt[f'recall_{k}_ok'])}")
        print(f"precision >= {PRECISION_FLOOR}: {fmt(qt['precision'], '.3f')} {verdict(qt['precision_ok'])}")
        print(f"every labelled train_lines entry among the matches: {'yes' if qt['train_lines_ok'] else 'NO'}")
    if st and st.get("overheads"):
        setting = "" if st["setting_as_target"] else " (indicative: the target is for the ~1 GB file)"
        rng = ", ".join(f"{x:+.1%}" for x in st["overheads"])
        print(f"leakage checks add <= {OVERHEAD_TARGET:.0%} to the check time: median {st['overhead_median']:+.1%} "
              f"over {len(st['overheads'])} pair(s) ({rng}) {verdict(st['overhead_ok'])}"
              + ("" if st["all_pairs_ok"] == st["overhead_ok"] else " (not every pair agrees)") + setting)
        b = [p["b"] for p in sp["pairs"] if p["b"].ok]
        if b:
            print(f"peak RSS (tree) of (b): {max(r.peak_rss_tree_mib for r in b):,.0f} MiB "
                  f"(of (a): {max(p['a'].peak_rss_tree_mib for p in sp['pairs'] if p['a'].ok):,.0f} MiB)")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quality", action="store_true", help="run the labelled benchmark (default: both parts)")
    ap.add_argument("--speed", action="store_true", help="run the speed part (default: both parts)")
    ap.add_argument("--size-mb", type=int, default=LARGE_MIB, help="generated training file in MiB (default 1024)")
    ap.add_argument("--workers", type=int, default=2, help="sftgate workers (default 2)")
    ap.add_argument("--repeat", type=int, default=2, help="pairs of speed runs (a, b) (default 2)")
    ap.add_argument("--phases", action="store_true", help="one more run of (b) with phase timers")
    ap.add_argument("--cprofile", action="store_true", help="with --phases: cProfile the leakage analysis")
    ap.add_argument("--score-sets", action="store_true",
                    help="one more run of (b), LEAK rules only, every leak listed: injected leaks found per kind")
    ap.add_argument("--seed", type=int, default=20240601, help="generator seed (default 20240601)")
    ap.add_argument("--sets-seed", type=int, default=1, help="seed of the validation/eval sets (default 1)")
    ap.add_argument("--data-dir", type=Path, default=HERE / ".data", help="generated files and logs")
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="shared/ folder (data/real, data/bench)")
    ap.add_argument("--bench", type=Path, help="folder holding leakage/ (default <shared>/data/bench)")
    ap.add_argument("--regen", action="store_true", help="regenerate the files even if cached")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if not args.quality and not args.speed:
        args.quality = args.speed = True
    args.bench = args.bench or args.shared / "data" / "bench"
    return args


def _version(package: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def sftgate_source() -> dict:
    """Which sftgate the children import (PYTHONPATH included) and at which commit: its git checkout's
    HEAD and whether src/, rules/ or schemas/ differ from it, or the COMMIT file of an exported snapshot."""
    from bench_check import _sftgate_env

    probe = subprocess.run([sys.executable, "-c", "import sftgate; print(sftgate.__file__)"], env=_sftgate_env(),
                           check=False, capture_output=True, text=True)
    if probe.returncode != 0:
        return {"path": None, "commit": None, "modified": None}
    root = Path(probe.stdout.strip()).resolve().parents[2]  # <root>/src/sftgate/__init__.py
    out = {"path": str(root), "commit": None, "modified": None}
    git = ["git", "-C", str(root)]
    head = subprocess.run([*git, "log", "--oneline", "-1"], check=False, capture_output=True, text=True)
    if head.returncode == 0 and head.stdout.strip():
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "src", "rules", "schemas"], check=False,
                               capture_output=True, text=True)
        out["commit"], out["modified"] = head.stdout.strip(), bool(dirty.stdout.strip())
    elif (root / "COMMIT").exists():  # `git archive` export: no .git, the commit written beside it
        out["commit"], out["modified"] = (root / "COMMIT").read_text().strip(), False
    return out


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--child":
        return run_child(sys.argv[2])
    sys.path.insert(0, str(HERE))  # bench_check and _gen, siblings of this script
    args = parse_args(argv)
    log_dir = args.data_dir / "logs" / "leak"
    log_dir.mkdir(parents=True, exist_ok=True)
    from bench_check import machine_info

    info = machine_info()
    info["sftgate_source"] = src = sftgate_source()
    print(f"{info['cpu_model']}, {info['cpu_count']} CPUs, {info['memory_mib']:,} MiB, {info['platform']}, "
          f"Python {info['python']}, numpy {_version('numpy')}", flush=True)
    state = " (src/ modified: uncommitted changes)" if src["modified"] else ""
    print(f"sftgate imported from {src['path']} at {src['commit']}{state}", flush=True)

    q = run_quality(args, log_dir) if args.quality else None
    sp = run_speed(args, log_dir) if args.speed else None
    if q:
        print_quality(q)
    if sp:
        print_speed(sp)
    scored = next((r for r in q["runs"] if r.detail.get("score")), None) if q else None
    qt = quality_targets(scored.detail["score"]) if scored else None
    st = speed_targets(sp) if sp else None
    print_targets(qt, st, sp)
    print(f"\nlogs and reports: {log_dir}")
    if args.json:
        payload = {"machine": info, "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                   "quality": jsonable(q), "speed": jsonable(sp),
                   "targets": {"quality": qt, "speed": st,
                               "floors": {"recall": RECALL_FLOORS, "precision": PRECISION_FLOOR,
                                          "overhead": OVERHEAD_TARGET}}}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
