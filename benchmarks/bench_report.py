"""Reports: what each emitter costs and how big its output gets, and what fingerprints cost.

    python benchmarks/bench_report.py                   # the 100 MiB benchmark file
    python benchmarks/bench_report.py --size-mb 1024 --json out.json

1. Runs `sftgate.engine.run.execute` once on the generated file (bench_check.py's data,
   `--workers 2`), then renders its report with every emitter (text, json, markdown, junit,
   sarif, github, html) three times each: median seconds and output bytes.
2. The same for a synthetic worst case: that report with `--findings` (200,000) findings of
   long messages spread over every rule code, as if nothing were capped. Target (issue 8): the
   HTML page stays under 5 MB whatever the dataset size.
3. Fingerprints: the check pass hashes every line (`baseline.fingerprint`). Measured in one
   process on the same file: hashing every line alone vs the whole check pass with one worker;
   the ratio is the share of the pass that fingerprints cost.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _report import warm

EMITTERS = ("text", "json", "markdown", "junit", "sarif", "github", "html")
HTML_LIMIT = 5_000_000


def measure(report) -> dict[str, dict[str, float]]:
    out = {}
    for name in EMITTERS:
        module = importlib.import_module(f"sftgate.report.{name}")
        times, size = [], 0
        for _ in range(3):
            start = time.perf_counter()
            rendered = module.render(report)
            times.append(time.perf_counter() - start)
            size = len(rendered if isinstance(rendered, bytes) else rendered.encode("utf-8"))
        out[name] = {"seconds": round(statistics.median(times), 4), "bytes": size}
    return out


def synthetic(report, n: int):
    """`report` with `n` findings of long messages over every rule code, all listed."""
    from sftgate.model import Finding, Severity
    from sftgate.report.model import RuleSummary
    from sftgate.rules import REGISTRY

    codes = sorted(REGISTRY)
    findings = [
        Finding(codes[i % len(codes)], Severity.WARNING, f"finding {i}: " + "a long message <b>&</b> " * 20,
                report.inputs[0].path, i + 1, "/contents/0", hint="a hint " * 10, fingerprint=f"{i:016x}")
        for i in range(n)
    ]
    per_code = {}
    for f in findings:
        per_code[f.code] = per_code.get(f.code, 0) + 1
    rules = [RuleSummary(c, REGISTRY[c].name, Severity.WARNING, k, k) for c, k in sorted(per_code.items())]
    return dataclasses.replace(report, findings=findings, rules=rules)


def fingerprint_share(path: Path) -> dict[str, float]:
    from sftgate.baseline import fingerprint
    from sftgate.engine.run import execute

    warm(path)
    start = time.perf_counter()
    with path.open("rb") as fh:
        for line in fh:
            fingerprint(line.rstrip(b"\n"))
    hashing = time.perf_counter() - start
    start = time.perf_counter()
    execute(path, workers=1)
    check = time.perf_counter() - start
    return {"hash_all_lines_s": round(hashing, 3), "check_one_worker_s": round(check, 2),
            "share": round(hashing / check, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--findings", type=int, default=200_000)
    parser.add_argument("--data-dir", type=Path, default=HERE / ".data")
    parser.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-fingerprints", action="store_true")
    args = parser.parse_args()

    from bench_tokens import generate

    from sftgate.engine.run import execute

    gen_args = argparse.Namespace(data_dir=args.data_dir, shared=args.shared, seed=20240601, regen=False)
    path = generate(gen_args, args.size_mb).path
    warm(path)
    start = time.perf_counter()
    report = execute(path, workers=2).report
    print(f"check {path.name}: {time.perf_counter() - start:.1f} s, {report.total_findings:,} findings, "
          f"{len(report.findings):,} listed", flush=True)
    results = {"file": path.name, "findings": report.total_findings, "listed": len(report.findings),
               "real": measure(report)}
    big = synthetic(report, args.findings)
    results["synthetic"] = {"findings": args.findings, "emitters": measure(big)}
    if not args.skip_fingerprints:
        results["fingerprints"] = fingerprint_share(path)
    html_bytes = max(results["real"]["html"]["bytes"], results["synthetic"]["emitters"]["html"]["bytes"])
    results["html_under_5mb"] = html_bytes < HTML_LIMIT

    print(f"{'emitter':<10}{'real s':>10}{'real bytes':>14}{'synthetic s':>14}{'synthetic bytes':>18}")
    for name in EMITTERS:
        r, s = results["real"][name], results["synthetic"]["emitters"][name]
        print(f"{name:<10}{r['seconds']:>10.3f}{r['bytes']:>14,}{s['seconds']:>14.3f}{s['bytes']:>18,}")
    if "fingerprints" in results:
        f = results["fingerprints"]
        print(f"fingerprints: {f['hash_all_lines_s']} s for every line vs check (1 worker) {f['check_one_worker_s']} s: "
              f"{f['share']:.1%} of the pass")
    print(f"HTML under 5 MB: {'PASS' if results['html_under_5mb'] else 'FAIL'} (largest {html_bytes:,} bytes)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
