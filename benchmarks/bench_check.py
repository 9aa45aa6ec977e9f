"""Throughput and peak memory of `sftgate check` against plain JSON parsing baselines.

    python benchmarks/bench_check.py [--size-mb 1024] [--workers 2] [--data-dir benchmarks/.data]
                                     [--select CODES] [--pairs N] [--all-rules]
                                     [--skip-sftgate] [--json OUT]

1. Generates (or reuses from the cache) a deterministic Gemini SFT JSONL file of --size-mb MiB
   built from the real sample data in ../shared/data/real (see _gen.py).
2. Runs each measurement in a fresh child process:
     orjson   `for line in open(path, 'rb'): orjson.loads(line)` (one process, one core)
     polars   `polars.read_ndjson(path)`
     sftgate  `python -m sftgate check PATH --workers N --select FMT,SCH,STR,LIM --format json
              --report-json OUT`: the validation rules of the core issue, whose target this is
   and records wall seconds, MiB/s and peak RSS. `--all-rules` adds a run of the default
   check (every rule the profile turns on: duplicates, tokens, content, PII, composition),
   for information: those rules have their own targets and benchmarks.
3. Prints a markdown table and the two targets: sftgate throughput >= 0.5 x orjson's, and
   sftgate peak RSS < 1024 MiB. This VM's speed drifts, so `--pairs N` runs orjson and sftgate
   back to back N times and prints every ratio and their median.

Peak RSS: while a child runs, the parent samples every 50 ms the RSS summed over the child's
whole process tree (psutil), because `sftgate --workers N` forks workers and the target is
about the memory of the whole run. Sampling can miss a spike shorter than 50 ms, so each child
is also started under GNU time (/usr/bin/time -f %M) for the kernel's exact high-water mark of
its largest single process; without GNU time that column is empty. Neither
getrusage(RUSAGE_CHILDREN) nor wait4's rusage is used: the first is a maximum over every child
ever waited for, and both count, in a child's peak, the RSS its parent (this script) had when
it forked. Shared copy-on-write pages of forked workers are counted once per process in the
sum, so the tree figure errs on the high side.

Wall time is measured from the parent around the whole child, interpreter start-up and
imports included (about 0.1 s for orjson, 0.3 s for polars), the same way for all three.
The file is read once before the measurements so all of them start with a warm page cache.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _gen

MIB = _gen.MIB
REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLE_SECONDS = 0.05
TIME_BIN = shutil.which("time", path="/usr/bin:/bin")  # GNU time, for the exact per-process peak
THROUGHPUT_TARGET = 0.5  # sftgate MiB/s divided by orjson MiB/s
VALIDATION = "FMT,SCH,STR,LIM"  # the core issue's rules: format, schema, structure, limits
RSS_TARGET_MIB = 1024

# Child programs for the baselines. They print one JSON line: rows seen, or the error's first
# line (exit 3) so that a failure is reported instead of crashing the benchmark.
_ORJSON_CHILD = textwrap.dedent("""
    import sys, orjson
    rows = 0
    for line in open(sys.argv[1], "rb"):
        orjson.loads(line)
        rows += 1
    print(f'{{"rows": {rows}}}')
""")

_POLARS_CHILD = textwrap.dedent("""
    import json, sys
    import polars as pl
    try:
        df = pl.read_ndjson(sys.argv[1])
    except BaseException as exc:  # MemoryError and polars' Rust panics included
        first = (str(exc).strip().splitlines() or [""])[0]
        print(json.dumps({"error": f"{type(exc).__name__}: {first}"}))
        sys.exit(3)
    print(json.dumps({"rows": df.height, "schema": str(df.schema)}))
""")


@dataclass
class Measurement:
    name: str
    command: str
    ok: bool
    exit_code: int | None = None
    wall_s: float | None = None
    mib_per_s: float | None = None
    peak_rss_tree_mib: float | None = None  # sampled sum over the process tree
    max_rss_process_mib: float | None = None  # kernel high-water mark of the largest process
    rows: int | None = None
    note: str = ""


# ---------------------------------------------------------------- running one measurement


def _tree_rss(root: psutil.Process, include_root: bool) -> int:
    total = 0
    for p in [root, *root.children(recursive=True)] if include_root else root.children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.Error:  # a worker may exit between listing and reading
            pass
    return total


def run_measured(argv: list[str], env: dict[str, str], log_dir: Path, name: str) -> dict:
    """Run argv to completion; return wall time, exit code, peak RSS figures and output paths.

    Output goes to files, not pipes: the parent is busy sampling and must never block a child
    that writes a lot (sftgate's JSON findings can be large).
    """
    out_path, err_path, time_path = (log_dir / f"{name}.{ext}" for ext in ("stdout", "stderr", "maxrss"))
    time_path.unlink(missing_ok=True)
    if TIME_BIN:  # GNU time sits between us and the command; its own few MiB are not sampled
        argv = [TIME_BIN, "-f", "%M", "-o", str(time_path), *argv]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        root, peak = psutil.Process(child.pid), 0
        while child.poll() is None:
            try:
                peak = max(peak, _tree_rss(root, include_root=not TIME_BIN))
            except psutil.Error:  # the child ended while being sampled
                pass
            time.sleep(SAMPLE_SECONDS)
        wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "exit_code": child.returncode,
        "peak_rss_tree_mib": peak / MIB,
        "max_rss_process_mib": _read_time_maxrss(time_path),
        "stdout": out_path,
        "stderr": err_path,
    }


def _read_time_maxrss(path: Path) -> float | None:
    """GNU time's %M (KiB), the last line of its -o file (a status line may come before it)."""
    try:
        return int(_tail(path)) / 1024
    except (OSError, ValueError):
        return None


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def _tail(path: Path) -> str:
    return _last_line(path.read_text(errors="replace"))


def _measurement(name: str, command: str, run: dict, size_bytes: int, ok: bool, note: str) -> Measurement:
    m = Measurement(name=name, command=command, ok=ok, exit_code=run["exit_code"],
                    wall_s=round(run["wall_s"], 2),
                    peak_rss_tree_mib=round(run["peak_rss_tree_mib"], 1),
                    max_rss_process_mib=_round(run["max_rss_process_mib"]), note=note)
    if ok:
        m.mib_per_s = round(size_bytes / MIB / run["wall_s"], 1)
    return m


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _exit_note(code: int) -> str:
    # Negative: killed by a signal. Above 128: GNU time reporting its command killed by one.
    signal = -code if code < 0 else code - 128 if code > 128 else None
    if signal:
        return f"killed by signal {signal}" + (" (out of memory?)" if signal == 9 else "")
    return f"exit code {code}"


def measure_python(name: str, code: str, command: str, path: Path, size_bytes: int,
                   log_dir: Path) -> Measurement:
    """A baseline child (_ORJSON_CHILD / _POLARS_CHILD) that prints one JSON result line."""
    run = run_measured([sys.executable, "-c", code, str(path)], dict(os.environ), log_dir, name)
    try:
        result = json.loads(_tail(run["stdout"]))
    except ValueError:
        result = {}
    ok = run["exit_code"] == 0 and "rows" in result
    note = result.get("error") or ("" if ok else f"{_exit_note(run['exit_code'])}: {_tail(run['stderr'])}")
    m = _measurement(name, command, run, size_bytes, ok, note)
    m.rows = result.get("rows")
    return m


# ---------------------------------------------------------------- sftgate


def _sftgate_env() -> dict[str, str]:
    """Environment in which `python -m sftgate` resolves: the installed package, else ./src."""
    env = dict(os.environ)
    probe = [sys.executable, "-c", "import sftgate"]
    if subprocess.run(probe, env=env, capture_output=True).returncode != 0:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


def _sftgate_missing(env: dict[str, str]) -> str:
    """Why `python -m sftgate check` cannot run yet, or '' if it can."""
    probe = [sys.executable, "-m", "sftgate", "check", "--help"]
    try:
        proc = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "`python -m sftgate check --help` timed out"
    if proc.returncode != 0:
        return f"`python -m sftgate check --help` failed: {_last_line(proc.stderr)}"
    return ""


def measure_sftgate(path: Path, size_bytes: int, workers: int, log_dir: Path, select: str | None,
                    name: str = "sftgate") -> Measurement:
    """`select`: the rules run (`--select`); None: the profile's default selection."""
    report = log_dir / f"{name.replace(' ', '-')}-report.json"
    chosen = ["--select", select] if select else []
    argv = [sys.executable, "-m", "sftgate", "check", str(path), "--workers", str(workers), *chosen,
            "--format", "json", "--report-json", str(report)]
    command = f"sftgate check FILE --workers {workers} {' '.join(chosen)} --format json --report-json OUT"
    command = " ".join(command.split())
    env = _sftgate_env()
    missing = _sftgate_missing(env)
    if missing:
        return Measurement(name=name, command=command, ok=False, note=f"skipped: {missing}")
    report.unlink(missing_ok=True)
    run = run_measured(argv, env, log_dir, name.replace(" ", "-"))
    # 1 means findings were reported, still a complete run; but an uncaught Python exception
    # also exits 1, so a complete run must also have written its report.
    ok = run["exit_code"] in (0, 1) and report.exists()
    if ok:
        note = "exit 1 (findings reported)" if run["exit_code"] == 1 else ""
    else:
        missing_report = "" if report.exists() else ", no report written"
        note = f"{_exit_note(run['exit_code'])}{missing_report}: {_tail(run['stderr'])}"
    return _measurement(name, command, run, size_bytes, ok, note)


# ---------------------------------------------------------------- machine and reporting


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    return {
        "cpu_model": _cpu_model(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "memory_mib": round(psutil.virtual_memory().total / MIB),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": {p: _version(p) for p in ("orjson", "polars", "psutil", "sftgate")},
    }


def _fmt(value, spec: str = "") -> str:
    return "—" if value is None else format(value, spec)


def markdown_table(results: list[Measurement]) -> str:
    rows = [
        "| run | wall s | MiB/s | peak RSS MiB (tree) | max RSS MiB (1 process) | note |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in results:
        rows.append(f"| {m.name} | {_fmt(m.wall_s, '.2f')} | {_fmt(m.mib_per_s, '.1f')} | "
                    f"{_fmt(m.peak_rss_tree_mib, '.0f')} | {_fmt(m.max_rss_process_mib, '.0f')} | "
                    f"{m.note or ('failed' if not m.ok else '')} |")
    return "\n".join(rows)


def check_targets(results: list[Measurement]) -> dict:
    by_name = {m.name: m for m in results}
    orj, sg = by_name.get("orjson"), by_name.get("sftgate")
    if not (orj and orj.ok and sg and sg.ok):
        return {"throughput_ratio": None, "throughput_ok": None, "rss_ok": None}
    ratio = sg.mib_per_s / orj.mib_per_s
    return {
        "throughput_ratio": round(ratio, 3),
        "throughput_ok": ratio >= THROUGHPUT_TARGET,
        "rss_ok": sg.peak_rss_tree_mib < RSS_TARGET_MIB,
    }


def _verdict(ok: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[ok]


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024,
                    help="size of the generated file in MiB (default 1024)")
    ap.add_argument("--workers", type=int, default=2, help="sftgate check --workers (default 2)")
    ap.add_argument("--seed", type=int, default=20240601, help="generator seed (default 20240601)")
    ap.add_argument("--data-dir", type=Path, default=here / ".data", help="cache of generated files and logs")
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="shared/ folder holding data/real")
    ap.add_argument("--select", default=VALIDATION,
                    help=f"rules of the measured sftgate run (default {VALIDATION}, the validation rules)")
    ap.add_argument("--pairs", type=int, default=1,
                    help="run orjson and sftgate back to back N times; print each ratio and the median")
    ap.add_argument("--all-rules", action="store_true",
                    help="also time the default check, every rule the profile turns on (for information)")
    ap.add_argument("--skip-sftgate", action="store_true", help="measure the baselines only")
    ap.add_argument("--regen", action="store_true", help="regenerate the file even if cached")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    return ap.parse_args(argv)


def paired_ratios(results: list[Measurement], args: argparse.Namespace, gen: _gen.Generated,
                  log_dir: Path) -> list[float]:
    """sftgate/orjson throughput of the first round and of `--pairs - 1` more back-to-back pairs."""
    targets = check_targets(results)
    if targets["throughput_ratio"] is None:
        return []
    ratios = [targets["throughput_ratio"]]
    for k in range(2, args.pairs + 1):
        print(f"pair {k} of {args.pairs} ...", flush=True)
        pair = [measure_python("orjson", _ORJSON_CHILD, "", gen.path, gen.size_bytes, log_dir),
                measure_sftgate(gen.path, gen.size_bytes, args.workers, log_dir, args.select)]
        ratio = check_targets(pair)["throughput_ratio"]
        if ratio is not None:
            ratios.append(ratio)
    return ratios


def _warm_page_cache(path: Path) -> None:
    with path.open("rb", buffering=0) as f:
        while f.read(16 * MIB):
            pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    real_dir = args.shared / "data" / "real"
    if not real_dir.is_dir():
        sys.exit(f"real data not found: {real_dir} (use --shared DIR)")

    print(f"generating {args.size_mb} MiB (seed {args.seed}) in {args.data_dir} ...", flush=True)
    gen = _gen.generate(real_dir, args.data_dir, args.size_mb, args.seed, force=args.regen)
    origin = "cached" if gen.cached else f"generated in {gen.seconds:.1f} s"
    print(f"{gen.path}: {gen.size_bytes:,} bytes, {gen.records:,} records "
          f"(avg {gen.size_bytes / gen.records:,.0f} B/record), {origin}; pool {gen.pool}", flush=True)

    log_dir = args.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    _warm_page_cache(gen.path)

    results = []
    for name, code, command in (
        ("orjson", _ORJSON_CHILD, "for line in open(path, 'rb'): orjson.loads(line)"),
        ("polars", _POLARS_CHILD, "polars.read_ndjson(path)"),
    ):
        print(f"measuring {name} ...", flush=True)
        results.append(measure_python(name, code, command, gen.path, gen.size_bytes, log_dir))
    if args.skip_sftgate:
        results.append(Measurement(name="sftgate", command="", ok=False, note="skipped (--skip-sftgate)"))
    else:
        print(f"measuring sftgate --select {args.select} ...", flush=True)
        results.append(measure_sftgate(gen.path, gen.size_bytes, args.workers, log_dir, args.select))
    ratios = paired_ratios(results, args, gen, log_dir)
    if args.all_rules and not args.skip_sftgate:
        print("measuring sftgate with every default rule ...", flush=True)
        results.append(measure_sftgate(gen.path, gen.size_bytes, args.workers, log_dir, None, "sftgate (all rules)"))

    targets = check_targets(results)
    machine = machine_info()
    print()
    print(f"{machine['cpu_model']}, {machine['cpu_count']} CPUs, Python {machine['python']}, "
          f"orjson {machine['packages']['orjson']}, polars {machine['packages']['polars']}")
    print(f"file: {args.size_mb} MiB, {gen.records:,} records, sftgate --workers {args.workers}")
    print()
    print(markdown_table(results))
    print()
    print(f"sftgate / orjson throughput: {_fmt(targets['throughput_ratio'], '.2f')} "
          f"(target >= {THROUGHPUT_TARGET}) {_verdict(targets['throughput_ok'])}")
    if len(ratios) > 1:
        median = statistics.median(ratios)
        print(f"paired ratios: {', '.join(f'{r:.2f}' for r in ratios)}; median {median:.2f} "
              f"{_verdict(median >= THROUGHPUT_TARGET)}")
    sg = next(m for m in results if m.name == "sftgate")
    print(f"sftgate peak RSS: {_fmt(sg.peak_rss_tree_mib, '.0f')} MiB "
          f"(target < {RSS_TARGET_MIB}) {_verdict(targets['rss_ok'])}")
    print(f"sha256 {gen.sha256}  {gen.path.name}")
    print(f"child stdout/stderr: {log_dir}")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": machine,
            "file": {"path": str(gen.path), "size_mb": args.size_mb, "size_bytes": gen.size_bytes,
                     "records": gen.records, "avg_record_bytes": round(gen.size_bytes / gen.records),
                     "sha256": gen.sha256, "seed": args.seed, "gen_version": _gen.GEN_VERSION,
                     "generation_s": round(gen.seconds, 2), "cached": gen.cached, "pool": gen.pool},
            "workers": args.workers,
            "select": args.select,
            "paired_ratios": ratios,
            "results": [asdict(m) for m in results],
            "targets": {"throughput_ratio_min": THROUGHPUT_TARGET, "peak_rss_mib_max": RSS_TARGET_MIB,
                        **targets},
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
