"""`--executor ray` on a local 2-worker Ray instance versus the local executor (issue 10).

    python benchmarks/bench_ray.py                     # 1 GiB, 2 paired rounds of check, --workers 2
    python benchmarks/bench_ray.py --rounds 1 --prepare
    python benchmarks/bench_ray.py --size-mb 100       # quick

Startup: a child process imports Ray, starts a local instance (`RayExecutor.pool`: 2 CPUs,
as `--executor ray` does), runs a first one-row dataset (`map_batches`) and a first task, then
a second of each (warm); the figures are each step's seconds.

Throughput: each round runs, as fresh child processes on a warm page cache and in alternating
order, `execute()` of the benchmark file with the local executor and with Ray (same profile,
same workers), timing every pass (`-v`'s passes) in wall seconds and in the driver's own CPU
seconds. The check pass is the per-record work both executors spread over their workers; the
passes after it (duplicates, composition) run on the driver but for verification. Reports
must be equal (apart from time and workers), or the script says so.

Projection: from the Ray run, per-worker throughput of the check pass (content MB per second
per worker) and the driver's CPU per GB in each pass; see the README for how they combine.
The data is bench_check.py's generated file (`_gen.py`), cached in `--data-dir`.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _report import generated_file_args, jsonable, warm

DEFAULT_SHARED = HERE.parent.parent / "shared"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_startup(spec: dict) -> dict:
    """Seconds to import Ray, start a local instance, and run a first and second dataset and task."""
    out = {}
    t = time.perf_counter()
    from sftgate.config import load_profile
    from sftgate.engine import ray_executor

    out["import_s"] = time.perf_counter() - t
    executor = ray_executor.RayExecutor(load_profile("gemini-2.5-flash"), spec["workers"])
    t = time.perf_counter()
    executor.pool()
    out["start_s"] = time.perf_counter() - t
    for name in ("first", "second"):
        t = time.perf_counter()
        assert list(executor.records(getattr, ["target"], 1 << 20)) == ["gemini-2.5-flash"]
        out[f"{name}_dataset_s"] = time.perf_counter() - t
        t = time.perf_counter()
        assert list(executor.map(getattr, ["target"] * spec["workers"])) == ["gemini-2.5-flash"] * spec["workers"]
        out[f"{name}_tasks_s"] = time.perf_counter() - t
    t = time.perf_counter()
    executor.__exit__(None, None, None)
    out["stop_s"] = time.perf_counter() - t
    return {k: round(v, 3) for k, v in out.items()}


def child_run(spec: dict) -> dict:
    """`execute()` (or `prepare()`) in this process, timing each pass in wall and driver CPU seconds."""
    import orjson

    from sftgate.engine.progress import PassLog
    from sftgate.engine.run import execute
    from sftgate.report import json as json_report

    passes: list[dict] = []

    class Timing(PassLog):
        def phase(self, name: str, total_bytes: int | None = None) -> None:
            super().phase(name, total_bytes)
            self.cpu = _cpu()

        def finished(self, name: str, seconds: float) -> None:
            passes.append({"pass": name.split()[0], "wall_s": round(seconds, 2),
                           "driver_cpu_s": round(_cpu() - self.cpu, 2), "mb": round(self.nbytes / 1e6, 1)})
            super().finished(name, seconds)

    progress = Timing()
    kind = {} if spec["executor"] == "local" else {"executor": "ray"}
    started = time.perf_counter()
    if spec["command"] == "prepare":
        from sftgate.engine.prepare import prepare

        done = prepare(spec["path"], out=spec["out"], overwrite=True, workers=spec["workers"], progress=progress,
                       **kind)
        report = done.report
    else:
        report = execute(spec["path"], workers=spec["workers"], progress=progress, **kind).report
        progress.end_pass()
    wall = time.perf_counter() - started
    data = orjson.loads(json_report.render(report))
    for key in ("started_at", "duration_s", "workers"):
        data.pop(key)
    Path(spec["report"]).write_bytes(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
    return {"wall_s": round(wall, 2), "passes": passes,
            "driver_max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "records": sum(i.records for i in report.inputs), "content_bytes": sum(i.content_bytes for i in report.inputs)}


def _child(name: str, spec: dict, log_dir: Path):
    from bench_check import _sftgate_env
    from bench_leak import _measured

    argv = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    r, run = _measured(name, argv, log_dir, _sftgate_env())
    lines = run["stdout"].read_text().strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (ValueError, IndexError):
        result = {}
    r.ok = run["exit_code"] == 0 and bool(result)
    if r.ok:
        r.detail.update(result)
        print(f"{r.wall_s:.1f} s, tree peak {r.peak_rss_tree_mib:.0f} MiB", flush=True)
    else:
        err = run["stderr"].read_text(errors="replace").strip().splitlines()
        r.note = f"exit code {run['exit_code']}: {err[-1] if err else ''}"
        print(f"FAILED ({r.note})", flush=True)
    return r


def run_bench(args: argparse.Namespace, gen, log_dir: Path) -> dict:
    warm(gen.path)
    startup = _child("ray startup", {"kind": "startup", "workers": args.workers}, log_dir)
    commands = ["check", "prepare"] if args.prepare else ["check"]
    runs: dict[str, dict[str, list]] = {c: {"local": [], "ray": []} for c in commands}
    for command in commands:
        for i in range(args.rounds if command == "check" else 1):
            order = ("local", "ray") if i % 2 == 0 else ("ray", "local")
            for executor in order:
                spec = {"kind": "run", "command": command, "executor": executor, "path": str(gen.path),
                        "workers": args.workers, "out": str(args.data_dir / f"ray-bench-{executor}"),
                        "report": str(log_dir / f"{command}-{executor}-{i}.report.json")}
                runs[command][executor].append(_child(f"{command} {executor} #{i + 1}", spec, log_dir))
    same = {}
    for command in commands:
        reports = {Path(log_dir / f"{command}-{e}-0.report.json").read_bytes() for e in ("local", "ray")
                   if Path(log_dir / f"{command}-{e}-0.report.json").exists()}
        same[command] = len(reports) == 1
    return {"startup": startup, "runs": runs, "reports_equal": same, "projection": projection(runs["check"], args)}


def _pass(run, name: str, key: str) -> float:
    return sum(p[key] for p in run.detail.get("passes", []) if p["pass"] == name)


def projection(runs: dict[str, list], args: argparse.Namespace) -> dict:
    """Per-worker throughput of the check pass on Ray, and the driver's seconds per GB of the rest."""
    ray_runs = [r for r in runs["ray"] if r.ok]
    if not ray_runs:
        return {}
    gb = ray_runs[0].detail["content_bytes"] / 1e9
    check_s = statistics.median(_pass(r, "check", "wall_s") for r in ray_runs)
    driver_check = statistics.median(_pass(r, "check", "driver_cpu_s") for r in ray_runs)
    after = [p for p in ray_runs[0].detail["passes"] if p["pass"] not in ("ray", "check")]
    return {
        "check_mb_s_per_worker": round(gb * 1e3 / check_s / args.workers, 2),
        "driver_check_cpu_s_per_gb": round(driver_check / gb, 2),
        "driver_passes_s_per_gb": {p["pass"]: round(p["wall_s"] / gb, 2) for p in after},
        "records_per_gb": round(ray_runs[0].detail["records"] / gb),
        "driver_max_rss_mib": ray_runs[0].detail["driver_max_rss_mib"],
    }


def print_bench(result: dict) -> None:
    s = result["startup"]
    if s.ok:
        d = s.detail
        print(f"\nstartup: import {d['import_s']:.2f} s, start a local instance {d['start_s']:.2f} s, first dataset "
              f"{d['first_dataset_s']:.2f} s (then {d['second_dataset_s']:.2f} s), first tasks "
              f"{d['first_tasks_s']:.2f} s (then {d['second_tasks_s']:.2f} s), stop {d['stop_s']:.2f} s")
    for command, by in result["runs"].items():
        runs = [r for pair in zip(by["local"], by["ray"], strict=False) for r in pair]
        names = []
        for r in runs:
            for p in r.detail.get("passes", []):
                if p["pass"] not in names:
                    names.append(p["pass"])
        print(f"\n{command}: reports equal: {result['reports_equal'][command]}")
        print("| pass: wall s (driver CPU s) | " + " | ".join(r.name for r in runs) + " |")
        print("| --- |" + " ---: |" * len(runs))
        for name in names:
            print(f"| {name} | " + " | ".join(f"{_pass(r, name, 'wall_s'):.1f} ({_pass(r, name, 'driver_cpu_s'):.1f})"
                                               for r in runs) + " |")
        print("| wall (process) | " + " | ".join(f"{r.wall_s:.1f}" for r in runs) + " |")
        print("| peak RSS, tree MiB | " + " | ".join(f"{r.peak_rss_tree_mib:.0f}" for r in runs) + " |")
    print(f"\nprojection inputs: {result['projection']}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024, help="generated file in MiB (default 1024)")
    ap.add_argument("--rounds", type=int, default=2, help="paired rounds of check (default 2)")
    ap.add_argument("--prepare", action="store_true", help="also one pair of prepare runs")
    ap.add_argument("--workers", type=int, default=2, help="workers / Ray CPUs (default 2)")
    generated_file_args(ap, HERE, DEFAULT_SHARED)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        result = child_startup(spec) if spec["kind"] == "startup" else child_run(spec)
        print(json.dumps(result))
        return 0
    from bench_check import machine_info
    from bench_prepare import generate

    log_dir = args.data_dir / "logs-ray"
    log_dir.mkdir(parents=True, exist_ok=True)
    gen = generate(args, args.size_mb)
    result = run_bench(args, gen, log_dir)
    print_bench(result)
    if args.json:
        args.json.write_text(json.dumps(jsonable({"file": {"path": gen.path.name, "bytes": gen.size_bytes,
                                                           "records": gen.records, "sha256": gen.sha256},
                                                  "machine": machine_info(), "workers": args.workers, **result}),
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
