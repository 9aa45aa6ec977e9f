"""Cost and accuracy of sftgate's token counting (TOK rules, the report's `tokens` section).

    python benchmarks/bench_tokens.py                        # 1 GiB file: 2 rounds of runs, 10 seeds (~25 min)
    python benchmarks/bench_tokens.py --quick                # 20 MiB file, smoke test (under a minute)
    python benchmarks/bench_tokens.py --decompose --repeat 3 # + (d) in each round (~45 min)
    python benchmarks/bench_tokens.py --repeat 0 --seeds 0   # tokenizer alone and the replay only (~1 min)
    python benchmarks/bench_tokens.py --seeds 0              # speed and sampled-vs-exact only (~20 min)
    python benchmarks/bench_tokens.py --seeds-size-mb 100    # the seed repeats on the 100 MiB file
    python benchmarks/bench_tokens.py --now DIR --before DIR # pin both versions (checkouts or exports)

What it measures
----------------
1. Speed, paired: --repeat rounds (default 2) of a, b, c (a, b, d, c with --decompose), each
   run `python -m sftgate check FILE --workers W --format json --report-json OUT` with the
   default rules (every rule on, DUP001-004 included):
   (a) sftgate before the TOK work: commit e6d8a9f (--before-commit), from a git worktree
       (--before DIR, default <data-dir>/pre-tok; made with `git worktree add --detach` if missing),
       `PYTHONPATH=DIR/src`;
   (b) sftgate now (--now DIR, a checkout or export holding src/; default this repository):
       token statistics from a sample, the file being over tokens.exact_below_bytes (128 MiB);
   (d) (b) plus `--ignore TOK`: the statistics without the TOK rules, so (d) - (a) is what
       measuring every example and counting the sample costs, (b) - (d) what the rules add
       (the examples their byte bounds cannot clear are tokenised);
   (c) (b) plus --exact-tokens: every example counted.
   Overheads per round: wall(x)/wall(a) - 1 and the same for CPU seconds; medians over the
   rounds in which no run had more than 10 "other CPU s" (another job on the machine). A file
   of at most 128 MiB is counted exactly by (b) too, so for such a file (b) and the seed runs
   get a rules file `tokens: {exact_below_bytes: 0}` (plus `sample_bytes` from --sample-mb;
   --quick samples 1/32 of the file, the rate of 32 MiB in 1 GiB).

2. The sample's accuracy. From the reports of (b) and (c) (`tokens.splits[0]`), for
   billable_tokens and total_tokens: |b - c| / c, and whether c's value lies in b's 95 %
   interval. Then the sampled estimate over --seeds seeds K = 1..N (a rules file
   `tokens: {seed: K}`) on the seeds file (--seeds-size-mb, default the same file), with the
   default-on TOK rules only (`--select TOK001,TOK002,TOK003,TOK005`): which examples are
   sampled does not depend on the rules, and the DUP analysis takes most of a check's time.
   The exact reference is (c)'s, or one `--exact-tokens` run with the same selection when the
   seeds file is another. Seed 1 is the profile's default: its estimate must equal (b)'s
   (printed as a consistency check). Scores: intervals that hold the exact value, the largest
   relative error, the mean relative half-width. Target (the issue): within 1 % at 95 %
   confidence.

3. Counting throughput: total_tokens of (c) (every text counted once) per CPU second of the
   whole run (c), and per CPU second (c) spends beyond (a); and the tokenizer alone: one
   process (this script in child mode) reads the first --tokenizer-mb MiB of the file, collects
   the texts the meter counts (system instruction, every text part) and times the profile
   tokenizer's `count` over them (tokens per CPU second, one core). From that speed, the CPU
   seconds that counting only the sample's tokens (and all tokens) would take, beside the
   measured differences. And examples_tokenised of (b), (d) and (c) against all examples.

4. Where (b)'s overhead goes, without the noise of whole runs: one process (child mode) replays
   the first --replay-mb MiB (default 64) through sftgate's check pass (`Checker.check_lines`,
   dataset features off, the 1 GiB file's sampling rate) three ways, best of three CPU times:
   TOK rules ignored without the meter, with it, and TOK rules on; then `Meter.measure` alone
   (sampling as the pass, and sampling nothing) and `Meter.collect` alone over the same
   examples. Per example, and scaled to the file's example count.

How it is measured
------------------
As bench_leak.py, whose `_measured` it uses (bench_check.run_measured underneath): every run is
a fresh child process started after the file was read once (warm page cache); wall seconds are
taken by the parent around the whole child; CPU s is the user + system time of the child's
process tree (its workers included); peak RSS is the RSS summed over the tree, sampled every
50 ms with psutil, and GNU time's %M for the largest single process; "other CPU s" is what the
machine spent outside the measured tree meanwhile (another job on the two cores shows there).
The commit of each sftgate (and whether its src/ differs from it) is printed first. Child
output and reports go to <data-dir>/logs/tokens/; the figures to --json (default
<data-dir>/tokens-<size>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import _report
from _report import fmt, jsonable, verdict, warm

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_SHARED = REPO.parent / "shared"
MIB = 1 << 20

BEFORE_COMMIT = "e6d8a9f"  # the last commit before the TOK rules (aa10d25)
EXACT_BELOW_BYTES = 128 * MIB  # the profile's tokens.exact_below_bytes
DEFAULT_SAMPLE_SHARE = 32 / 1024  # tokens.sample_bytes over the 1 GiB file
ERROR_TARGET = 0.01  # "within 1 % at 95 % confidence"
TOK_DEFAULT_RULES = "TOK001,TOK002,TOK003,TOK005"  # TOK004 is off by default
QUICK_MIB = 20
QUANTITIES = ("billable_tokens", "total_tokens")
CONTENDED_CPU_S = 10.0  # "other CPU s" above which a run's wall time is not comparable

# ================================================================ child side
# Only the standard library at module level: a child imports sftgate, not the parent's helpers.


def child_tokenizer(spec: dict) -> dict:
    """The profile tokenizer alone over the texts of the first spec["mib"] MiB of the file."""
    import orjson

    from sftgate.analysis import tokenizers
    from sftgate.config import load_profile

    profile = load_profile()  # the default profile, as `sftgate check` without options
    start = time.process_time()
    tok = tokenizers.load(profile.tokens["tokenizer"], target=profile.target)
    load_s = time.process_time() - start
    texts, n_bytes, examples = [], 0, 0
    with open(spec["file"], "rb") as f:
        for line in f:
            n_bytes += len(line)
            if n_bytes > spec["mib"] * (1 << 20):
                break
            record = orjson.loads(line)
            examples += 1
            for part in (record.get("systemInstruction") or {}).get("parts") or ():
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
            for turn in record.get("contents") or ():
                for part in turn.get("parts") or ():
                    if isinstance(part.get("text"), str):
                        texts.append(part["text"])
    text_bytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    tokens = sum(tok.count(texts))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"tokenizer": tok.spec, "examples": examples, "texts": len(texts), "text_bytes": text_bytes,
            "tokens": tokens, "cpu_s": cpu, "wall_s": wall, "load_cpu_s": load_s}


def child_replay(spec: dict) -> dict:
    """The first spec["mib"] MiB through one process's check pass (`Checker.check_lines`, no
    dataset features, sampling spec["rate"] of the examples), in CPU seconds, the best of three:
    TOK rules ignored without the meter, TOK rules ignored with it, TOK rules on; then, over the
    same examples, `Meter.measure` alone (sampling as the pass does, and sampling nothing) and
    `Meter.collect` alone (the measure cached)."""
    import io
    import tempfile

    from sftgate.config import load_profile
    from sftgate.engine.passes import Checker
    from sftgate.io.reader import LineReader
    from sftgate.rules import tokens as tok

    with open(spec["file"], "rb") as f:
        data = f.read(spec["mib"] << 20)
    data = data[: data.rfind(b"\n") + 1]
    rate = spec["rate"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("tokens: {exact_below_bytes: 0}\n")  # sample whatever the size
    try:
        profiles = {"on": load_profile(rules_file=f.name), "ignored": load_profile(rules_file=f.name, ignore=["TOK"])}
    finally:
        os.unlink(f.name)

    def check(rules: str, meter: bool) -> float:
        checker = Checker(profiles[rules], "train", features=False, token_sample=rate)
        if not meter:
            checker.meter = None
        reader = LineReader(io.BytesIO(data), max_line_bytes=1 << 30)
        start = time.process_time()
        checker.check_lines(reader, source=spec["file"], starts_file=True)
        return time.process_time() - start

    examples = []
    collect = tok.Meter.collect
    tok.Meter.collect = lambda self, example: (examples.append(example), collect(self, example))[1]
    try:
        check("ignored", True)  # also loads the tokenizer
    finally:
        tok.Meter.collect = collect
    passes = {"no_meter": [], "meter": [], "meter_and_rules": []}
    for _ in range(3):
        passes["no_meter"].append(check("ignored", False))
        passes["meter"].append(check("ignored", True))
        passes["meter_and_rules"].append(check("on", True))

    def timed(meter, fn) -> float:
        start = time.process_time()
        for example in examples:
            fn(meter, example)
        return time.process_time() - start

    for example in examples:
        example.__dict__.pop("_tokens", None)
    meter = tok.Meter(profiles["ignored"], "train", sample_rate=rate)
    measure_s = timed(meter, tok.Meter.measure)
    collect_s = timed(meter, tok.Meter.collect)
    sampled = sum(example.__dict__["_tokens"].sampled for example in examples)
    for example in examples:
        example.__dict__.pop("_tokens", None)
    measure_none_s = timed(tok.Meter(profiles["ignored"], "train", sample_rate=1e-12), tok.Meter.measure)
    return {"examples": len(examples), "bytes": len(data), "sampled": sampled, "rate": rate,
            **{k: min(v) for k, v in passes.items()}, "passes": passes, "measure": measure_s,
            "measure_no_sample": measure_none_s, "collect": collect_s}


def run_child(spec_json: str) -> int:
    return _report.run_child(spec_json, {"tokenizer": child_tokenizer, "replay": child_replay})


# ================================================================ parent side


@dataclass(frozen=True)
class Version:
    """An sftgate to run: a checkout or export holding src/, and what it is."""

    label: str
    root: Path
    commit: str | None
    modified: bool | None

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.root / "src"), env.get("PYTHONPATH")]))
        return env


def version_at(label: str, root: Path) -> Version:
    """Its git HEAD and whether src/, rules/ or schemas/ differ from it, or an export's COMMIT file."""
    probe = subprocess.run([sys.executable, "-c", "import sftgate; print(sftgate.__file__)"],
                           env=Version(label, root, None, None).env, check=False, capture_output=True, text=True)
    if probe.returncode != 0 or Path(probe.stdout.strip()).resolve().parents[2] != root.resolve():
        sys.exit(f"{label}: `import sftgate` with PYTHONPATH={root / 'src'} does not load {root}/src/sftgate")
    git = ["git", "-C", str(root)]
    head = subprocess.run([*git, "log", "--oneline", "-1"], check=False, capture_output=True, text=True)
    if head.returncode == 0 and head.stdout.strip():
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "src", "rules", "schemas"], check=False,
                               capture_output=True, text=True)
        return Version(label, root, head.stdout.strip(), bool(dirty.stdout.strip()))
    if (root / "COMMIT").exists():  # `git archive` export: the commit written beside it
        return Version(label, root, (root / "COMMIT").read_text().strip(), False)
    return Version(label, root, None, None)


def ensure_worktree(path: Path, commit: str) -> None:
    if (path / "src" / "sftgate").is_dir():
        return
    print(f"git worktree add --detach {path} {commit}", flush=True)
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), commit], check=True)


def measure_cli(name: str, args: list[str], version: Version, log_dir: Path):
    """`python -m sftgate check ARGS --format json --report-json OUT` with `version` on the path;
    exit 0 or 1 with a report written is a complete run."""
    from bench_leak import (
        measure_cli as measure,  # parent-only (psutil sampling, CPU accounting)
    )

    return measure(name, args, log_dir, env=version.env, show_cpu=True)


def measure_child(name: str, spec: dict, version: Version, log_dir: Path):
    """This script in child mode; its last stdout line is its JSON result."""
    from bench_leak import _measured

    argv = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    r, run = _measured(name, argv, log_dir, version.env)
    try:
        result = json.loads(run["stdout"].read_text().strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = {}
    r.ok = run["exit_code"] == 0 and bool(result) and "error" not in result
    if r.ok:
        print(f"{r.wall_s:.1f} s", flush=True)
    else:
        r.note = result.get("error") or f"exit code {run['exit_code']}"
        print(f"FAILED ({r.note}); see {run['stderr']}", flush=True)
    return r, result


def tokens_of(report: dict) -> dict | None:
    """The training file's token statistics in a report (`tokens.splits[0]`)."""
    splits = (report.get("tokens") or {}).get("splits") or []
    return next((s for s in splits if s.get("split") == "train"), None)


def _stats(split: dict | None) -> dict:
    """The figures kept from a report's training split: mode, sample, counts, the two totals."""
    if not split:
        return {}
    keep = ("value", "low", "high", "exact", "relative_half_width")
    return {"mode": split["mode"], "examples": split["examples"], "records": split["records"],
            "examples_tokenised": split["examples_tokenised"], "sample": split["sample"],
            "sampled_tokens": split["example_tokens"]["sum"],  # tokens of the sampled examples
            **{q: {k: split[q][k] for k in keep if k in split[q]} for q in QUANTITIES}}


def compare(est: dict, exact: dict) -> dict:
    """The sampled estimate against the exact value, per quantity."""
    out = {}
    for q in QUANTITIES:
        e, x = est[q], exact[q]["value"]
        half = (e["high"] - e["low"]) / 2 / e["value"] if e["value"] else 0.0
        out[q] = {"estimate": e["value"], "low": e["low"], "high": e["high"], "exact": x,
                  "error": (e["value"] - x) / x, "abs_error": abs(e["value"] - x) / x,
                  "half_width": half, "inside": e["low"] <= x <= e["high"]}
    return out


def rules_text(size: int, args: argparse.Namespace, seed: int | str | None) -> str | None:
    """The rules file of a sampled run: the seed, and sampling forced on a file that would be
    counted exactly. None when the defaults apply."""
    tokens: dict[str, int | str] = {}
    if seed is not None:
        tokens["seed"] = seed
    if size <= EXACT_BELOW_BYTES:
        tokens["exact_below_bytes"] = 0
    if args.sample_mb is not None:
        tokens["sample_bytes"] = max(1, round(args.sample_mb * MIB))
    return "tokens: {" + ", ".join(f"{k}: {v}" for k, v in tokens.items()) + "}\n" if tokens else None


def rules_file(log_dir: Path, name: str, size: int, args: argparse.Namespace, seed: int | None) -> Path | None:
    text = rules_text(size, args, seed)
    if text is None:
        return None
    path = log_dir / f"{name}.yaml"
    path.write_text(text)
    return path


def generate(args: argparse.Namespace, size_mb: int):
    import _gen  # parent-only: the generator of bench_check.py, bench_dedup.py and bench_leak.py

    real_dir = args.shared / "data" / "real"
    if not real_dir.is_dir():
        sys.exit(f"real data not found: {real_dir} (use --shared DIR)")
    gen = _gen.generate(real_dir, args.data_dir, size_mb, args.seed, force=args.regen)
    origin = "cached" if gen.cached else f"generated in {gen.seconds:.1f} s"
    print(f"{gen.path.name}: {gen.size_bytes:,} bytes, {gen.records:,} records, {origin}", flush=True)
    return gen


# ---------------------------------------------------------------- the three parts


RUNS = {"a": "a before TOK", "b": "b now sampled", "d": "d now sampled, --ignore TOK", "c": "c now exact"}


def run_speed(args: argparse.Namespace, gen, before: Version, now: Version, log_dir: Path) -> dict:
    warm(gen.path)
    base = [str(gen.path), "--workers", str(args.workers)]
    rules_b = rules_file(log_dir, "b-sampled", gen.size_bytes, args, seed=None)
    config_b = [*base, *(["--rules", str(rules_b)] if rules_b else [])]
    configs = {"a": (before, base), "b": (now, config_b)}
    if args.decompose:  # the statistics without the rules: what the TOK rules' own tokenising costs
        configs["d"] = (now, [*config_b, "--ignore", "TOK"])
    configs["c"] = (now, [*base, "--exact-tokens"])
    rounds = []
    for i in range(1, args.repeat + 1):
        t: dict = {}
        for key, (version, config) in configs.items():
            t[key], report = measure_cli(f"{RUNS[key]} #{i}", config, version, log_dir)
            if key != "a":
                t[key].detail = _stats(tokens_of(report))
        a = t["a"]
        for key in configs.keys() - {"a"}:
            ok = a.ok and t[key].ok
            t[f"{key}_over_a_wall"] = t[key].wall_s / a.wall_s - 1 if ok else None
            t[f"{key}_over_a_cpu"] = t[key].child_cpu_s / a.child_cpu_s - 1 if ok and a.child_cpu_s else None
        t["contended"] = any(t[key].other_cpu_s is not None and t[key].other_cpu_s > CONTENDED_CPU_S
                             for key in configs)
        rounds.append(t)
    w = f"--workers {args.workers}"
    commands = {"a": f"PYTHONPATH={before.root}/src python -m sftgate check FILE {w}",
                "b": f"PYTHONPATH={now.root}/src python -m sftgate check FILE {w}"
                     + (f" --rules {rules_b.name}" if rules_b else "")}
    if args.decompose:
        commands["d"] = commands["b"] + " --ignore TOK"
    commands["c"] = f"PYTHONPATH={now.root}/src python -m sftgate check FILE {w} --exact-tokens"
    return {"file": str(gen.path), "size_bytes": gen.size_bytes, "records": gen.records, "sha256": gen.sha256,
            "workers": args.workers, "runs": list(configs), "rounds": rounds,
            "rules_b": rules_b.read_text() if rules_b else None, "commands": commands}


def clean_rounds(sp: dict) -> list[dict]:
    """The rounds in which no other job took the CPU; all of them if none is clean."""
    return [t for t in sp["rounds"] if not t["contended"]] or sp["rounds"]


def overheads(sp: dict) -> dict:
    out = {}
    for key in sp["runs"][1:]:
        walls = [t[f"{key}_over_a_wall"] for t in clean_rounds(sp) if t[f"{key}_over_a_wall"] is not None]
        cpus = [t[f"{key}_over_a_cpu"] for t in clean_rounds(sp) if t[f"{key}_over_a_cpu"] is not None]
        if walls:
            out[key] = {"wall": walls, "wall_median": statistics.median(walls), "cpu": cpus,
                        "cpu_median": statistics.median(cpus)}
    return out


def sampled_vs_exact(sp: dict) -> dict | None:
    """(b) against (c) from the first round where both are complete; whether b repeats itself."""
    pairs = [(t["b"].detail, t["c"].detail) for t in sp["rounds"] if t["b"].ok and t["c"].ok]
    if not pairs:
        return None
    b, c = pairs[0]
    values = {(x["billable_tokens"]["value"], x["total_tokens"]["value"]) for x, _ in pairs}
    return {"file": sp["file"], "b": b, "c": c, "compare": compare(b, c), "b_repeats_identically": len(values) == 1}


def run_seeds(args: argparse.Namespace, sp: dict | None, now: Version, log_dir: Path) -> dict:
    size_mb = args.seeds_size_mb or args.size_mb
    gen = generate(args, size_mb)
    warm(gen.path)
    select = ["--select", TOK_DEFAULT_RULES]
    base = [str(gen.path), "--workers", str(args.workers), *select]
    exact, exact_run = None, None
    if sp and sp["file"] == str(gen.path):
        exact = next((t["c"].detail for t in sp["rounds"] if t["c"].ok), None)
    if exact is None:
        exact_run, rep = measure_cli(f"seeds exact {size_mb} MiB", [*base, "--exact-tokens"], now, log_dir)
        exact = _stats(tokens_of(rep)) if exact_run.ok else None
    runs = []
    for k in range(1, args.seeds + 1):
        rules = rules_file(log_dir, f"seed-{k}", gen.size_bytes, args, seed=k)
        r, rep = measure_cli(f"seed {k} {size_mb} MiB", [*base, "--rules", str(rules)], now, log_dir)
        est = _stats(tokens_of(rep)) if r.ok else {}
        row = {"seed": k, "run": r, "stats": est}
        if est and exact:
            row["compare"] = compare(est, exact)
        runs.append(row)
    return {"file": str(gen.path), "size_bytes": gen.size_bytes, "records": gen.records, "select": TOK_DEFAULT_RULES,
            "rules": rules_text(gen.size_bytes, args, seed="K"),
            "exact": exact, "exact_run": exact_run, "runs": runs}


def run_tokenizer(args: argparse.Namespace, gen, now: Version, log_dir: Path) -> dict:
    spec = {"kind": "tokenizer", "file": str(gen.path), "mib": args.tokenizer_mb}
    r, result = measure_child(f"tokenizer alone, first {args.tokenizer_mb} MiB", spec, now, log_dir)
    return {"run": r, "result": result}


def run_replay(args: argparse.Namespace, gen, now: Version, log_dir: Path) -> dict:
    rate = min(1.0, (args.sample_mb * MIB if args.sample_mb else 32 * MIB) / gen.size_bytes)
    spec = {"kind": "replay", "file": str(gen.path), "mib": args.replay_mb, "rate": rate}
    r, result = measure_child(f"check pass replayed, first {args.replay_mb} MiB", spec, now, log_dir)
    return {"run": r, "result": result, "records": gen.records}


# ---------------------------------------------------------------- scores


def seed_scores(seeds: dict) -> dict:
    rows = [s["compare"] for s in seeds["runs"] if "compare" in s]
    out: dict = {"seeds": len(rows)}
    for q in QUANTITIES:
        if not rows:
            break
        errs = [r[q]["abs_error"] for r in rows]
        out[q] = {"inside": sum(r[q]["inside"] for r in rows), "max_abs_error": max(errs),
                  "mean_abs_error": statistics.fmean(errs), "within_target": sum(e <= ERROR_TARGET for e in errs),
                  "mean_half_width": statistics.fmean(r[q]["half_width"] for r in rows),
                  "max_half_width": max(r[q]["half_width"] for r in rows)}
    return out


def throughput(sp: dict | None, tk: dict | None) -> dict:
    out: dict = {"rounds": []}
    alone = None
    if tk and tk["run"].ok:
        res = tk["result"]
        alone = out["tokenizer_alone"] = {**res, "per_cpu_s": res["tokens"] / res["cpu_s"],
                                          "mib_per_cpu_s": res["text_bytes"] / MIB / res["cpu_s"]}
    for i, t in enumerate(sp["rounds"] if sp else (), 1):
        a, b, c, d = t["a"], t["b"], t["c"], t.get("d")
        if not (a.ok and b.ok and c.ok and c.child_cpu_s):
            continue
        tokens = c.detail["total_tokens"]["value"]
        row = {"round": i, "contended": t["contended"], "tokens": tokens, "cpu_c": c.child_cpu_s,
               "per_cpu_s": tokens / c.child_cpu_s, "cpu_c_minus_a": c.child_cpu_s - a.child_cpu_s,
               "cpu_b_minus_a": b.child_cpu_s - a.child_cpu_s}
        row["per_cpu_s_beyond_a"] = tokens / row["cpu_c_minus_a"] if row["cpu_c_minus_a"] > 0 else None
        if d is not None and d.ok:
            row["cpu_d_minus_a"] = d.child_cpu_s - a.child_cpu_s  # statistics: every example measured, the sample counted
            row["cpu_b_minus_d"] = b.child_cpu_s - d.child_cpu_s  # the TOK rules: what they tokenise and check
            row["examples_tokenised_b"], row["examples_tokenised_d"] = (b.detail["examples_tokenised"],
                                                                        d.detail["examples_tokenised"])
        if alone:  # what counting the sample's tokens alone would cost at the tokenizer's own speed
            row["sample_tokens_b"] = b.detail["sampled_tokens"]
            row["cpu_sample_tokens_alone"] = b.detail["sampled_tokens"] / alone["per_cpu_s"]
            row["cpu_all_tokens_alone"] = tokens / alone["per_cpu_s"]
        out["rounds"].append(row)
    return out


def targets(sve: dict | None, ss: dict | None) -> dict:
    out: dict = {"error_max": ERROR_TARGET}
    if sve:
        cmp = sve["compare"]["billable_tokens"]
        out["b_error_ok"] = cmp["abs_error"] <= ERROR_TARGET
        out["b_half_width_ok"] = cmp["half_width"] <= ERROR_TARGET
        out["b_inside"] = cmp["inside"]
    if ss and ss.get("seeds"):
        s = ss["billable_tokens"]
        out["seeds_error_ok"] = s["max_abs_error"] <= ERROR_TARGET
        out["seeds_half_width_ok"] = s["max_half_width"] <= ERROR_TARGET
        out["seeds_coverage"] = s["inside"] / ss["seeds"]
    return out


# ---------------------------------------------------------------- printing


def _pct(x: float | None, spec: str = "+.1%") -> str:
    return fmt(x, spec)


def print_speed(sp: dict) -> None:
    print(f"\n## Speed: {Path(sp['file']).name} ({sp['size_bytes'] / MIB:,.0f} MiB, {sp['records']:,} records), "
          f"--workers {sp['workers']}\n")
    for k, cmd in sp["commands"].items():
        print(f"({k}) `{cmd}`")
    if sp["rules_b"]:
        print(f"\nrules file of (b): {sp['rules_b']!r}")
    print("\n| run | wall s | report duration s | CPU s (tree) | other CPU s | peak RSS MiB (tree) "
          "| max RSS MiB (1 proc) | wall vs (a) | CPU vs (a) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t in sp["rounds"]:
        for key in sp["runs"]:
            r = t[key]
            wall, cpu = (t.get(f"{key}_over_a_wall"), t.get(f"{key}_over_a_cpu")) if key != "a" else (None, None)
            print(f"| {r.name} | {fmt(r.wall_s, '.1f')} | {fmt(r.work_s, '.1f')} | {fmt(r.child_cpu_s, '.1f')} | "
                  f"{fmt(r.other_cpu_s, '.1f')} | {fmt(r.peak_rss_tree_mib, ',.0f')} | "
                  f"{fmt(r.max_rss_process_mib, ',.0f')} | {'' if key == 'a' else _pct(wall)} | "
                  f"{'' if key == 'a' else _pct(cpu)} |" + (f" {r.note}" if r.note else ""))
    print(f"\nother CPU s: CPU time the machine spent outside the measured runs; a round in which a run has more "
          f"than {CONTENDED_CPU_S:.0f} s (another job on the two cores) is left out of the medians: "
          + (", ".join(f"round {i}" for i, t in enumerate(sp["rounds"], 1) if t["contended"]) or "none"))


def print_accuracy(sve: dict | None, seeds: dict | None, ss: dict | None) -> None:
    if sve:
        b = sve["b"]
        smp = b["sample"] or {}
        print(f"\n## Sampled (b) against exact (c)\n\n(b): mode {b['mode']}, {smp.get('examples', 0):,} of "
              f"{b['examples']:,} examples sampled (rate {smp.get('rate', 1)}, seed {smp.get('seed')}); "
              f"(b) gave the same values in every round: {'yes' if sve['b_repeats_identically'] else 'NO'}\n")
        print("| quantity | exact (c) | sampled (b) | 95 % interval of (b) | half-width | error | exact inside |")
        print("| --- | ---: | ---: | --- | ---: | ---: | --- |")
        for q, c in sve["compare"].items():
            print(f"| {q} | {c['exact']:,} | {c['estimate']:,} | {c['low']:,} – {c['high']:,} | "
                  f"±{c['half_width']:.3%} | {c['error']:+.3%} | {'yes' if c['inside'] else 'NO'} |")
    if not seeds:
        return
    ex = seeds["exact"]
    print(f"\n## Sampled estimate over {len(seeds['runs'])} seeds: {Path(seeds['file']).name} "
          f"({seeds['size_bytes'] / MIB:,.0f} MiB, {seeds['records']:,} records), --select {seeds['select']}\n")
    print(f"rules file: {seeds['rules']!r}")
    if ex:
        print(f"exact: billable {ex['billable_tokens']['value']:,}, total {ex['total_tokens']['value']:,}\n")
    print("| seed | sampled examples | billable estimate | error | ±half-width | inside | total estimate | error "
          "| ±half-width | inside | wall s |")
    print("| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: |")
    for s in seeds["runs"]:
        c, st = s.get("compare"), s["stats"]
        if not c:
            print(f"| {s['seed']} | — | — | — | — | — | — | — | — | — | {fmt(s['run'].wall_s, '.1f')} | {s['run'].note}")
            continue
        bt, tt = c["billable_tokens"], c["total_tokens"]
        print(f"| {s['seed']} | {(st['sample'] or {}).get('examples', st['examples']):,} | {bt['estimate']:,} | "
              f"{bt['error']:+.3%} | {bt['half_width']:.3%} | {'yes' if bt['inside'] else 'NO'} | "
              f"{tt['estimate']:,} | {tt['error']:+.3%} | {tt['half_width']:.3%} | {'yes' if tt['inside'] else 'NO'} "
              f"| {s['run'].wall_s:.1f} |")
    if ss and ss.get("seeds"):
        print("\n| quantity | intervals holding the exact value | largest error | mean error | errors within 1 % "
              "| mean half-width | largest half-width |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for q in QUANTITIES:
            s = ss[q]
            print(f"| {q} | {s['inside']}/{ss['seeds']} | {s['max_abs_error']:.3%} | {s['mean_abs_error']:.3%} | "
                  f"{s['within_target']}/{ss['seeds']} | {s['mean_half_width']:.3%} | {s['max_half_width']:.3%} |")
    b_value = sve["b"]["billable_tokens"]["value"] if sve and sve["file"] == seeds["file"] else None
    seed1 = next((s for s in seeds["runs"] if s["seed"] == 1 and s["stats"]), None)
    if b_value is not None and seed1:
        same = seed1["stats"]["billable_tokens"]["value"] == b_value
        print(f"\nseed 1 (the default) with --select {seeds['select']} gives (b)'s estimate: "
              f"{'yes' if same else 'NO'} ({seed1['stats']['billable_tokens']['value']:,} / {b_value:,})")


def print_throughput(tp: dict, sp: dict | None) -> None:
    print("\n## Counting throughput and where the overhead goes\n")
    ta = tp.get("tokenizer_alone")
    if ta:
        print(f"tokenizer alone ({ta['tokenizer']}, one process, first {ta['examples']:,} examples: "
              f"{ta['texts']:,} texts, {ta['text_bytes'] / MIB:,.1f} MiB of text): {ta['tokens']:,} tokens in "
              f"{ta['cpu_s']:.1f} CPU s = **{ta['per_cpu_s']:,.0f} tokens / CPU s** ({ta['mib_per_cpu_s']:.2f} MiB "
              f"of text / CPU s; loading the encoding {ta['load_cpu_s']:.2f} s)\n")
    if tp["rounds"]:
        print("| round | tokens counted (c) | CPU s (c) | tokens / CPU s, whole check (c) | CPU s (c) − (a) "
              "| tokens / CPU s beyond (a) | CPU s (b) − (a) | of which statistics (d) − (a) | TOK rules (b) − (d) "
              "| the sample's tokens at the tokenizer's speed | all tokens at the tokenizer's speed |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in tp["rounds"]:
            print(f"| {r['round']}{' (contended)' if r['contended'] else ''} | {r['tokens']:,} | {r['cpu_c']:.1f} | "
                  f"{r['per_cpu_s']:,.0f} | {r['cpu_c_minus_a']:.1f} | {fmt(r['per_cpu_s_beyond_a'], ',.0f')} | "
                  f"{r['cpu_b_minus_a']:.1f} | {fmt(r.get('cpu_d_minus_a'), '.1f')} | "
                  f"{fmt(r.get('cpu_b_minus_d'), '.1f')} | {fmt(r.get('cpu_sample_tokens_alone'), '.1f')} | "
                  f"{fmt(r.get('cpu_all_tokens_alone'), '.1f')} |")
    if sp:
        print("\n| run | mode | examples | examples tokenised | share | sampled examples | tokens of the sampled "
              "examples |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for key in sp["runs"][1:]:
            r = next((t[key] for t in sp["rounds"] if t[key].ok and t[key].detail), None)
            if r:
                d = r.detail
                print(f"| {r.name} | {d['mode']} | {d['examples']:,} | {d['examples_tokenised']:,} | "
                      f"{d['examples_tokenised'] / d['examples']:.1%} | "
                      f"{(d['sample'] or {}).get('examples', d['examples']):,} | {d['sampled_tokens']:,} |")


def print_replay(rp: dict) -> None:
    res = rp["result"]
    if not rp["run"].ok:
        return
    n, full = res["examples"], rp["records"]
    print(f"\n### The check pass replayed in one process: first {res['bytes'] / MIB:.0f} MiB, {n:,} examples, "
          f"{res['sampled']:,} sampled (rate {res['rate']:.4f}); CPU s, best of three\n")
    print(f"| step | CPU s | µs / example | × {full:,} examples |")
    print("| --- | ---: | ---: | ---: |")
    rows = [("check pass, TOK rules ignored, no meter (features off)", res["no_meter"]),
            ("meter: token statistics (measure + collect), TOK rules ignored", res["meter"] - res["no_meter"]),
            ("TOK rules on top (what their byte bounds cannot clear is tokenised)",
             res["meter_and_rules"] - res["meter"]),
            ("· Meter.measure alone, sampling as the pass", res["measure"]),
            ("· Meter.measure alone, sampling nothing (bytes, bounds, sample hash)", res["measure_no_sample"]),
            ("· Meter.collect alone (TokenColumns.add)", res["collect"])]
    for label, cpu in rows:
        print(f"| {label} | {cpu:.2f} | {cpu / n * 1e6:.1f} | {cpu / n * full:.1f} |")


def print_targets(sp: dict | None, sve: dict | None, ss: dict | None, tg: dict) -> None:
    print("\n## Figures and targets\n")
    if sp:
        for key, o in overheads(sp).items():
            print(f"overhead {key}/a − 1 (uncontended rounds): wall {', '.join(f'{x:+.1%}' for x in o['wall'])} "
                  f"(median {o['wall_median']:+.1%}); CPU {', '.join(f'{x:+.1%}' for x in o['cpu'])} "
                  f"(median {o['cpu_median']:+.1%})")
        rss = {k: max((t[k].peak_rss_tree_mib for t in sp["rounds"] if t[k].ok), default=None) for k in sp["runs"]}
        print("peak RSS (tree), largest over the rounds: " + ", ".join(f"{k} {fmt(v, ',.0f')}" for k, v in rss.items())
              + " MiB")
    if sve:
        c = sve["compare"]["billable_tokens"]
        print(f"sampled billable tokens within {ERROR_TARGET:.0%} of the exact count: {c['abs_error']:.3%} "
              f"{verdict(tg['b_error_ok'])}; its 95 % interval ±{c['half_width']:.3%} {verdict(tg['b_half_width_ok'])}, "
              f"holds the exact value: {'yes' if c['inside'] else 'NO'}")
    if ss and ss.get("seeds"):
        s = ss["billable_tokens"]
        print(f"over {ss['seeds']} seeds: largest error {s['max_abs_error']:.3%} {verdict(tg['seeds_error_ok'])}, "
              f"largest half-width ±{s['max_half_width']:.3%} {verdict(tg['seeds_half_width_ok'])}, "
              f"intervals holding the exact value {s['inside']}/{ss['seeds']} (nominal 95 %)")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"everything on the {QUICK_MIB} MiB file, sampling 1/32 of it (a smoke test)")
    ap.add_argument("--size-mb", type=int, default=1024, help="generated training file in MiB (default 1024)")
    ap.add_argument("--workers", type=int, default=2, help="sftgate --workers (default 2)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds of speed runs (a, b, c) (default 2; 0: none)")
    ap.add_argument("--decompose", action="store_true",
                    help="add (d) to every round: (b) with --ignore TOK (token statistics without the TOK rules)")
    ap.add_argument("--seeds", type=int, default=10, help="seeds of the sampled estimate (default 10; 0: none)")
    ap.add_argument("--seeds-size-mb", type=int, help="file of the seed runs in MiB (default: --size-mb)")
    ap.add_argument("--sample-mb", type=float, help="tokens.sample_bytes in MiB for (b) and the seed runs "
                                                    "(default: the profile's 32)")
    ap.add_argument("--tokenizer-mb", type=int, default=64, help="MiB of the file the tokenizer alone counts "
                                                                 "(default 64; 0: skip)")
    ap.add_argument("--replay-mb", type=int, default=64, help="MiB of the file replayed through one process's "
                                                              "check pass, with and without the meter (default 64; 0: skip)")
    ap.add_argument("--before", type=Path, default=None,
                    help="checkout of sftgate before the TOK work (default <data-dir>/pre-tok; a worktree is added "
                         "if missing)")
    ap.add_argument("--before-commit", default=BEFORE_COMMIT, help=f"its commit (default {BEFORE_COMMIT})")
    ap.add_argument("--now", type=Path, default=REPO, help="checkout or export of sftgate now (default this repository)")
    ap.add_argument("--seed", type=int, default=20240601, help="generator seed (default 20240601)")
    ap.add_argument("--data-dir", type=Path, default=HERE / ".data", help="generated files and logs")
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="shared/ folder holding data/real")
    ap.add_argument("--regen", action="store_true", help="regenerate the files even if cached")
    ap.add_argument("--json", type=Path, metavar="OUT", help="figures as JSON (default <data-dir>/tokens-<size>.json)")
    args = ap.parse_args(argv)
    if args.quick:
        args.size_mb = QUICK_MIB
        args.seeds_size_mb = None
        args.tokenizer_mb = min(args.tokenizer_mb, QUICK_MIB)
        args.replay_mb = min(args.replay_mb, QUICK_MIB)
        if args.sample_mb is None:
            args.sample_mb = QUICK_MIB * DEFAULT_SAMPLE_SHARE
    args.json = args.json or args.data_dir / f"tokens-{args.size_mb}.json"
    args.before = args.before or args.data_dir / "pre-tok"
    return args


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--child":
        return run_child(sys.argv[2])
    sys.path.insert(0, str(HERE))  # bench_check, bench_leak and _gen, siblings of this script
    args = parse_args(argv)
    log_dir = args.data_dir / "logs" / "tokens"
    log_dir.mkdir(parents=True, exist_ok=True)
    from bench_check import machine_info

    ensure_worktree(args.before, args.before_commit)
    before, now = version_at("before", args.before), version_at("now", args.now)
    info = machine_info()
    print(f"{info['cpu_model']}, {info['cpu_count']} CPUs, {info['memory_mib']:,} MiB, {info['platform']}, "
          f"Python {info['python']}", flush=True)
    for v in (before, now):
        state = " (src/ modified: uncommitted changes)" if v.modified else ""
        print(f"{v.label}: sftgate from {v.root}/src at {v.commit}{state}", flush=True)

    gen = generate(args, args.size_mb)
    sp = run_speed(args, gen, before, now, log_dir) if args.repeat > 0 else None
    sve = sampled_vs_exact(sp) if sp else None
    seeds = run_seeds(args, sp, now, log_dir) if args.seeds > 0 else None
    ss = seed_scores(seeds) if seeds else None
    tk = run_tokenizer(args, gen, now, log_dir) if args.tokenizer_mb > 0 else None
    rp = run_replay(args, gen, now, log_dir) if args.replay_mb > 0 else None
    tp = throughput(sp, tk)
    tg = targets(sve, ss)

    if sp:
        print_speed(sp)
    print_accuracy(sve, seeds, ss)
    print_throughput(tp, sp)
    if rp:
        print_replay(rp)
    print_targets(sp, sve, ss, tg)
    print(f"\nlogs and reports: {log_dir}")
    payload = {"machine": info, "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "versions": {v.label: {"root": str(v.root), "commit": v.commit, "modified": v.modified}
                            for v in (before, now)},
               "speed": jsonable(sp), "sampled_vs_exact": sve, "seeds": jsonable(seeds), "seed_scores": ss,
               "overheads": overheads(sp) if sp else None, "throughput": jsonable(tp),
               "replay": jsonable(rp), "targets": tg}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
