"""prepare vs check on the ~1 GB benchmark file: what writing the outputs costs.

    python benchmarks/bench_prepare.py                  # 1 GiB, 3 paired rounds, --workers 2
    python benchmarks/bench_prepare.py --size-mb 100 --rounds 2
    python benchmarks/bench_prepare.py --determinism    # also: 1 vs 2 workers, byte-identical outputs
    python benchmarks/bench_prepare.py --ignore DUP001,DUP002   # the file keeps its lines: kept records' cost

Each round runs, as fresh child processes on a warm page cache, `sftgate check FILE -v` and
`sftgate prepare FILE --out DIR --overwrite -v` (same profile, same workers), in alternating
order so drift in the machine's speed hits both alike; the pass times `-v` prints are tabled
side by side, so a pair's excess can be told by pass. Then the kept bytes (the training shards and
validation file prepare wrote) are copied once with `shutil.copyfile`, and so are the kept plus
quarantined bytes: the two yardsticks of "the time to copy the kept bytes once".

Target (issue 7): median prepare wall time <= median check wall time + one copy of the kept
bytes. The script prints both, the excess and the verdict; `--json OUT` keeps the figures.
The data is bench_check.py's generated file (`_gen.py`), cached in `--data-dir`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _report import generated_file_args, jsonable, verdict, warm

DEFAULT_SHARED = HERE.parent.parent / "shared"


def generate(args: argparse.Namespace, size_mb: int):
    from bench_tokens import (
        generate as cached,  # the shared generator (_gen.py), with the same options
    )

    return cached(args, size_mb)


def run_prepare(name: str, path: Path, out: Path, workers: int, log_dir: Path, extra: list[str] | None = None):
    """`python -m sftgate prepare`, measured like check (bench_leak's sampling and CPU accounting)."""
    from bench_check import _sftgate_env
    from bench_leak import _measured

    manifest_out = log_dir / f"{name.replace(' ', '-').replace('#', '')}.manifest.json"
    argv = [sys.executable, "-m", "sftgate", "prepare", str(path), "--out", str(out), "--overwrite",
            "--workers", str(workers), "--format", "json", *(extra or [])]
    r, run = _measured(name, argv, log_dir, _sftgate_env())
    text = run["stdout"].read_text()
    manifest = json.loads(text) if text.strip() else {}
    r.ok = run["exit_code"] in (0, 1) and bool(manifest)
    if r.ok:
        manifest_out.write_text(text)
        print(f"{r.wall_s:.1f} s, CPU {r.child_cpu_s:.1f} s, {r.peak_rss_tree_mib:.0f} MiB", flush=True)
    else:
        err = run["stderr"].read_text(errors="replace").strip().splitlines()
        r.note = f"exit code {run['exit_code']}: {err[-1] if err else ''}"
        print(f"FAILED ({r.note})", flush=True)
    return r, manifest


_PASS = re.compile(r"^sftgate: (\w+)[^:]*: ([\d.]+) s")


def pass_seconds(stderr: Path) -> dict[str, float]:
    """The pass times a `-v` run printed: check, duplicates, composition, write, publish..."""
    out: dict[str, float] = {}
    for line in stderr.read_text(errors="replace").splitlines() if stderr.exists() else []:
        if m := _PASS.match(line):
            out[m[1]] = out.get(m[1], 0.0) + float(m[2])
    return out


def copy_seconds(files: list[Path], scratch: Path) -> float:
    """One copy of `files` (warm cache) into `scratch`: the yardstick of the target."""
    warm(*files)
    scratch.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for f in files:
        shutil.copyfile(f, scratch / f.name)
    seconds = time.perf_counter() - start
    shutil.rmtree(scratch)
    return seconds


def run_speed(args: argparse.Namespace, gen, log_dir: Path) -> dict:
    from bench_leak import _slug, measure_cli

    out = args.data_dir / "prepare-out"
    warm(gen.path)
    checks, prepares, manifest = [], [], {}
    ignore = ["--ignore", args.ignore] if args.ignore else []
    for i in range(args.rounds):
        order = ("check", "prepare") if i % 2 == 0 else ("prepare", "check")
        for kind in order:
            if kind == "check":
                r, _ = measure_cli(f"check #{i + 1}", [str(gen.path), "--workers", str(args.workers), "-v", *ignore],
                                   log_dir, show_cpu=True)
                checks.append(r)
            else:
                r, manifest = run_prepare(f"prepare #{i + 1}", gen.path, out, args.workers, log_dir, ["-v", *ignore])
                prepares.append(r)
            r.detail["passes"] = pass_seconds(log_dir / f"{_slug(r.name)}.stderr")
    if not manifest:
        return {"checks": checks, "prepares": prepares}
    kept = [Path(o["uri"]) for o in manifest["outputs"] if o["role"] in ("train", "validation")]
    quarantine = [Path(o["uri"]) for o in manifest["outputs"] if o["role"] == "quarantine"]
    # The first of three copies writes into memory the machine has not just freed, as prepare
    # does; on a VM whose free memory goes back to the host, that costs several times the best.
    kept_times = [copy_seconds(kept, args.data_dir / "copy-scratch") for _ in range(3)]
    all_times = [copy_seconds(kept + quarantine, args.data_dir / "copy-scratch") for _ in range(3)]
    copy_kept, copy_all = min(kept_times), min(all_times)
    ok = [r for r in checks if r.ok], [r for r in prepares if r.ok]
    check_s = statistics.median(r.wall_s for r in ok[0]) if ok[0] else None
    prepare_s = statistics.median(r.wall_s for r in ok[1]) if ok[1] else None
    pairs = [p.wall_s - c.wall_s for c, p in zip(checks, prepares, strict=True) if c.ok and p.ok]
    counts = manifest["counts"]
    return {
        "checks": checks, "prepares": prepares, "check_median_s": check_s, "prepare_median_s": prepare_s,
        "paired_excess_s": [round(x, 2) for x in pairs],
        "copy_kept_s": round(copy_kept, 3), "copy_kept_and_quarantine_s": round(copy_all, 3),
        "copy_kept_first_s": round(kept_times[0], 3), "copy_kept_and_quarantine_first_s": round(all_times[0], 3),
        "kept_bytes": sum(f.stat().st_size for f in kept),
        "quarantine_bytes": sum(f.stat().st_size for f in quarantine),
        "counts": {k: counts[k] for k in ("lines_read", "train_examples", "validation_examples", "quarantined",
                                          "blank_lines", "fixed", "quarantined_by_rule")},
        "target_met": None if check_s is None or prepare_s is None else prepare_s <= check_s + copy_kept,
    }


def run_determinism(args: argparse.Namespace, log_dir: Path) -> dict:
    """1 and 2 workers on the determinism file: the written files must be byte-identical."""
    gen = generate(args, args.determinism_mb)
    digests = {}
    for workers in (1, 2):
        out = args.data_dir / f"prepare-det-{workers}"
        _, manifest = run_prepare(f"determinism workers={workers}", gen.path, out, workers, log_dir,
                                  ["--split-validation", "0.05", "--seed", "7"])
        digests[workers] = {o["name"]: o["sha256"] for o in manifest.get("outputs", []) if o["role"] != "report"}
        shutil.rmtree(out, ignore_errors=True)
    return {"size_mb": args.determinism_mb, "sha256": digests,
            "identical": bool(digests[1]) and digests[1] == digests[2]}


def print_speed(sp: dict) -> None:
    if "check_median_s" not in sp:
        print("no complete prepare run")
        return
    print()
    print("| run | wall s (each round) | median |")
    print("| --- | --- | --- |")
    for kind in ("check", "prepare"):
        walls = ", ".join(f"{r.wall_s:.1f}" if r.ok else "failed" for r in sp[f"{kind}s"])
        print(f"| {kind} | {walls} | {sp[f'{kind}_median_s']:.1f} |")
    print(f"paired excess (prepare - check, s): {sp['paired_excess_s']}")
    runs = [r for pair in zip(sp["checks"], sp["prepares"], strict=True) for r in pair]
    passes = [r.detail.get("passes", {}) for r in runs]
    order = ["check", "duplicates", "leakage", "validation", "composition", "skew", "media", "write", "publish"]
    names = sorted({k for p in passes for k in p}, key=lambda k: (order.index(k) if k in order else len(order), k))
    print()
    print("| pass (-v), s | " + " | ".join(r.name for r in runs) + " |")
    print("| --- |" + " ---: |" * len(runs))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{p.get(name, 0.0):.1f}" for p in passes) + " |")
    print("| wall | " + " | ".join(f"{r.wall_s:.1f}" for r in runs) + " |")
    print(f"kept bytes {sp['kept_bytes']:,}, copied once in {sp['copy_kept_s']:.2f} s; with the quarantine "
          f"({sp['quarantine_bytes']:,} bytes) {sp['copy_kept_and_quarantine_s']:.2f} s (best of 3; the first "
          f"copies {sp['copy_kept_first_s']:.2f} s and {sp['copy_kept_and_quarantine_first_s']:.2f} s)")
    print(f"counts: {sp['counts']}")
    limit = sp["check_median_s"] + sp["copy_kept_s"]
    print(f"target: prepare {sp['prepare_median_s']:.1f} s <= check {sp['check_median_s']:.1f} s + copy "
          f"{sp['copy_kept_s']:.2f} s = {limit:.1f} s: {verdict(sp['target_met'])}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024, help="generated file in MiB (default 1024)")
    ap.add_argument("--rounds", type=int, default=3, help="paired rounds of check and prepare (default 3)")
    ap.add_argument("--workers", type=int, default=2, help="sftgate workers (default 2)")
    ap.add_argument("--determinism", action="store_true", help="also compare 1 and 2 workers' outputs")
    ap.add_argument("--determinism-mb", type=int, default=100, help="file size for --determinism (default 100)")
    ap.add_argument("--ignore", default="", help="rule codes both commands ignore; DUP001,DUP002 makes the file "
                    "(97 %% near-duplicates) one that keeps its lines, so writing kept records is what is measured")
    generated_file_args(ap, HERE, DEFAULT_SHARED)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench_check import machine_info

    log_dir = args.data_dir / "logs-prepare"
    log_dir.mkdir(parents=True, exist_ok=True)
    gen = generate(args, args.size_mb)
    speed = run_speed(args, gen, log_dir)
    print_speed(speed)
    result = {"file": {"path": gen.path.name, "bytes": gen.size_bytes, "records": gen.records,
                       "sha256": gen.sha256},
              "machine": machine_info(), "workers": args.workers, "ignore": args.ignore, "speed": speed}
    if args.determinism:
        result["determinism"] = det = run_determinism(args, log_dir)
        print(f"1 vs 2 workers at {det['size_mb']} MiB: outputs byte-identical: {det['identical']}")
    if args.json:
        args.json.write_text(json.dumps(jsonable(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
