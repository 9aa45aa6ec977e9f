"""Quality and speed of the skew analysis (`sftgate.analysis.skew`, issue 6; analysis only).

    python benchmarks/bench_skew.py                 # quality on the bench, then speed
    python benchmarks/bench_skew.py --quality       # ../shared/data/bench/skew only
    python benchmarks/bench_skew.py --speed --train-records 3000000 --prod 50000
    python benchmarks/bench_skew.py --json benchmarks/.data/skew-results.json
    python benchmarks/bench_skew.py --engine [--size-mb 1024] [--prod 50000] [--rounds 2]

Quality: train.jsonl against each prod_*.jsonl (prompt side = systemInstruction + user turns;
features on the user turns, the system instruction as a categorical key), and two random
halves of one pool of real texts (every ShareGPT turn, Alpaca instruction+input and output,
LIMA, DialogSum dialogue and summary: 46,877 texts, shuffled) at 200, 2,000 and 20,000 a side.
Prints AUC, flags and the numeric distances against their critical values.

Speed: what the engine would hand over for a ~1 GB training file and 50,000 production
prompts, timed in this process:
- the feature columns of --train-records records (default 3,000,000: more than the 646,849
  records of bench_check's 1 GiB file, to be safe), made by resampling the feature rows of the
  real pool with a seeded generator (the values are real, the count is what costs);
- the training text sample (--train-texts, default 20,000 of the pool, as the engine's
  bottom-k sample would pass);
- --prod production prompts (default 50,000): pool texts cycled, each copy after the first
  tagged "[variant N]" so none repeats exactly; their feature columns are computed here and
  timed separately (µs per prompt): in the engine that cost is part of the feature pass.
`analyse()` is then timed end to end (numeric and categorical tests, vectorising, classifier,
coverage, composition). Run with 2 cores for the issue's target (<= 20 s added on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from sftgate.analysis import skew
from sftgate.analysis.textfeatures import (
    CATEGORICAL,
    NUMERIC,
    feature_columns,
    system_key,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _prompt(record: dict) -> tuple[str, str]:
    system = record.get("systemInstruction")
    sys_text = "\n".join(p.get("text", "") for p in system["parts"]) if system else ""
    user = "\n".join(p.get("text", "") for c in record["contents"] if c["role"] == "user" for p in c["parts"])
    return sys_text, user


def _side(users: list[str], systems: list[str]) -> skew.Side:
    cols = feature_columns(users)
    keys = np.array([system_key(s) for s in systems], dtype=np.uint64)
    return skew.Side(numeric={k: cols[k] for k in NUMERIC},
                     categorical={**{k: cols[k] for k in CATEGORICAL}, "system": keys},
                     texts=[f"{s}\n{u}".strip() for s, u in zip(systems, users, strict=True)])


def _bench_side(path: Path) -> skew.Side:
    pairs = [_prompt(json.loads(line)) for line in path.read_text("utf-8").splitlines()]
    return _side([u for _, u in pairs], [s for s, _ in pairs])


def pool(real: Path) -> list[str]:
    """The pool of real texts the tests use too (tests/realpool.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from realpool import real_texts

    return real_texts(real)


def _summary(a: skew.SkewAnalysis) -> dict:
    return {"flags": a.flags, "auc": round(a.domain.auc, 3) if a.domain else None,
            "auc_ci": [round(a.domain.low, 3), round(a.domain.high, 3)] if a.domain else None,
            "uncovered": round(a.coverage.uncovered_share, 3) if a.coverage else None,
            "uncovered_holdout": round(a.coverage.expected_share, 3) if a.coverage else None,
            "numeric": {s.feature: [round(s.distance, 3), round(s.critical, 3)] for s in a.numeric},
            "train_terms": [t.term for t in a.domain.train_terms[:6]] if a.domain else [],
            "prod_terms": [t.term for t in a.domain.prod_terms[:6]] if a.domain else [],
            "messages": [s.message for s in a.numeric if s.flagged] + [s.message for s in a.categorical if s.flagged],
            "required_prod": a.sample_size.required if a.sample_size else None,
            "largest_topic": round(a.composition.largest_share, 3) if a.composition else None}


def quality(shared: Path) -> dict:
    bench = shared / "data" / "bench" / "skew"
    train = _bench_side(bench / "train.jsonl")
    out: dict = {}
    for name in ("prod_same", "prod_shifted", "prod_length"):
        t = time.perf_counter()
        a = skew.analyse(train, _bench_side(bench / f"{name}.jsonl"), seed=0)
        out[name] = {**_summary(a), "seconds": round(time.perf_counter() - t, 2)}
        print(f"{name}: {json.dumps(out[name])}")
    texts = pool(shared / "data" / "real")
    cols = feature_columns(texts)
    for size in (200, 2000, 20000):
        order = np.random.default_rng(size).permutation(len(texts))[:2 * size]
        sides = [skew.Side(numeric={k: cols[k][i] for k in NUMERIC}, categorical={k: cols[k][i] for k in CATEGORICAL},
                           texts=[texts[j] for j in i.tolist()]) for i in (order[:size], order[size:])]
        a = skew.analyse(*sides, seed=1)
        out[f"halves_{size}"] = _summary(a)
        print(f"halves {size}: {json.dumps(out[f'halves_{size}'])}")
    return out


def speed(shared: Path, train_records: int, train_texts: int, prod: int, seed: int) -> dict:
    texts = pool(shared / "data" / "real")
    cols = feature_columns(texts)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(texts), train_records)
    train = skew.Side(numeric={k: cols[k][rows] for k in NUMERIC},
                      categorical={k: cols[k][rows] for k in CATEGORICAL},
                      texts=[texts[i] for i in rng.choice(len(texts), train_texts, replace=False).tolist()])
    prod_texts = [t if i < len(texts) else f"[variant {i // len(texts)}] {t}"
                  for i, t in ((i, texts[i % len(texts)]) for i in range(prod))]
    t = time.perf_counter()
    prod_cols = feature_columns(prod_texts)
    features_s = time.perf_counter() - t
    prod_side = skew.Side(numeric={k: prod_cols[k] for k in NUMERIC},
                          categorical={k: prod_cols[k] for k in CATEGORICAL}, texts=prod_texts)
    t = time.perf_counter()
    a = skew.analyse(train, prod_side, seed=seed)
    analyse_s = time.perf_counter() - t
    out = {"train_records": train_records, "train_texts": train_texts, "prod": prod,
           "prod_chars": sum(map(len, prod_texts)), "features_s": round(features_s, 2),
           "features_us_per_prompt": round(features_s / prod * 1e6, 1), "analyse_s": round(analyse_s, 2),
           "samples": a.samples, "flags": a.flags, "cpus": os.cpu_count()}
    print(f"speed: {json.dumps(out)}")
    return out


def engine(shared: Path, data_dir: Path, size_mb: int, prod: int, workers: int, rounds: int) -> dict:
    """`sftgate check` on bench_check's --size-mb file, three ways, paired per round: without the
    SKEW and COMP rules, as by default (composition), and with --production of `prod` prompts."""
    import subprocess

    sys.path.insert(0, str(Path(__file__).parent))
    import _gen  # bench_check's generator and cache

    train = _gen.generate(shared / "data" / "real", data_dir, size_mb, 20240601).path
    prod_path = data_dir / f"prod_prompts_{prod}.jsonl"
    if not prod_path.exists():
        texts = pool(shared / "data" / "real")
        with prod_path.open("w", encoding="utf-8") as fh:
            for i in range(prod):
                text = texts[i % len(texts)] if i < len(texts) else f"[variant {i // len(texts)}] {texts[i % len(texts)]}"
                fh.write(json.dumps({"messages": [{"role": "user", "content": text}]}) + "\n")
    ways = {"no SKEW/COMP": ["--ignore", "SKEW,COMP"], "default (composition)": [],
            f"--production {prod:,}": ["--production", str(prod_path)]}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, extra in ways.items():
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "sftgate", "check", str(train), "--workers", str(workers),
                            "--format", "json", "-q", *extra], stdout=subprocess.DEVNULL, check=False)
            times[name].append(round(time.perf_counter() - t, 1))
            print(f"engine: {name}: {times[name][-1]} s", flush=True)
    base = times["no SKEW/COMP"]
    out = {"file_mb": size_mb, "prod": prod, "workers": workers, "seconds": times,
           "added_s": {name: [round(t - b, 1) for t, b in zip(v, base, strict=True)] for name, v in times.items()}}
    print(f"engine: {json.dumps(out)}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quality", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--train-records", type=int, default=3_000_000)
    ap.add_argument("--train-texts", type=int, default=20_000)
    ap.add_argument("--prod", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--engine", action="store_true", help="time sftgate check on bench_check's file (see engine())")
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, default=Path(__file__).parent / ".data")
    args = ap.parse_args()
    if args.engine:
        results = {"engine": engine(args.shared, args.data_dir, args.size_mb, args.prod, args.workers, args.rounds)}
        if args.json:
            args.json.write_text(json.dumps(results, indent=2), "utf-8")
        return
    both = not (args.quality or args.speed)
    results: dict = {}
    if args.quality or both:
        results["quality"] = quality(args.shared)
    if args.speed or both:
        results["speed"] = speed(args.shared, args.train_records, args.train_texts, args.prod, args.seed)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2), "utf-8")


if __name__ == "__main__":
    main()
