"""Duplicate clusters on the driver versus on Ray (issue 10's "otherwise" path).

    python benchmarks/bench_ray_clusters.py                  # 2 M records, ~2.1 M edges
    python benchmarks/bench_ray_clusters.py --records 200000 # quick

A synthetic duplicate graph shaped like the duplicate analysis's output: records fall in
clusters of Zipf-distributed sizes (exponent 1.6, at most 5,000), spread over the file; each
member is joined to an earlier member of its cluster (what spanning verification keeps), plus
10 % redundant edges; 30 % exact, the rest with similarities in 0.8-1.0; every survivor key in
play. `rules.dedup.cluster_rows` runs on the driver (wall time and tracemalloc's peak, which
numpy reports to) and then `RayExecutor.cluster_rows` with `DRIVER_EDGES` 0 on a local Ray
instance of `--workers` CPUs (wall time, rounds of label propagation, the driver's own peak:
the object store is apart); the rows must be equal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc

import numpy as np


def graph(records: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.zipf(1.6, records), 5000)
    sizes = sizes[np.cumsum(sizes) <= records]
    cluster = np.repeat(np.arange(sizes.size), sizes)
    order = rng.permutation(cluster.size)  # members spread over the file
    members = np.argsort(cluster[order], kind="stable")
    record = order[members]  # records grouped by cluster
    start = np.repeat(np.cumsum(sizes) - sizes, sizes)
    position = np.arange(record.size) - start
    later = position > 0
    earlier = start[later] + (rng.random(later.sum()) * position[later]).astype(np.int64)
    edges = np.stack((record[earlier], record[later]), axis=1)
    extra = rng.choice(edges.shape[0], edges.shape[0] // 10)
    redundant = np.stack((edges[extra, 0], record[start[later][extra] + (rng.random(extra.size)
                                                                        * position[later][extra]).astype(np.int64)]), 1)
    edges = np.concatenate((edges, redundant))
    edges = edges[edges[:, 0] != edges[:, 1]]
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    exact = rng.random(edges.shape[0]) < 0.3
    score = np.where(exact, 1.0, rng.uniform(0.8, 1.0, edges.shape[0]))
    keys = np.stack((rng.integers(0, 4000, records), rng.integers(0, 3, records), rng.random(records) < 0.05),
                    axis=1).astype(np.int64)
    return edges, exact, score, keys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=argparse.FileType("w"))
    args = ap.parse_args(argv)
    from sftgate.rules.dedup import cluster_rows

    edges, exact, score, keys = graph(args.records, args.seed)
    cluster_rows(edges[:100], exact[:100], score[:100], keys, "longest", True)  # compile the kernels
    tracemalloc.start()
    t = time.perf_counter()
    want = cluster_rows(edges, exact, score, keys, "longest", True)
    driver_s = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    clusters = int((want[2] < 0).sum())
    print(f"{args.records:,} records, {edges.shape[0]:,} edges, {want[0].size:,} records in {clusters:,} clusters")
    print(f"driver: {driver_s:.2f} s, peak {peak / 2**20:,.0f} MiB ({peak / edges.shape[0]:.0f} bytes an edge)")

    import ray

    from sftgate.config import load_profile
    from sftgate.engine import ray_executor as rx

    rx.DRIVER_EDGES = 0
    with rx.RayExecutor(load_profile("gemini-2.5-flash"), args.workers) as executor:
        t = time.perf_counter()
        executor.pool()
        start_s = time.perf_counter() - t
        tracemalloc.start()
        t = time.perf_counter()
        got = executor.cluster_rows(edges, exact, score, keys, "longest", True)
        ray_s = time.perf_counter() - t
        ray_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rounds = executor.cluster_rounds
    equal = all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    print(f"ray ({args.workers} CPUs, Ray {ray.__version__}): start {start_s:.1f} s, clusters {ray_s:.2f} s, "
          f"{rounds} rounds of label propagation, driver peak {ray_peak / 2**20:,.0f} MiB; rows equal: {equal}")
    if args.json:
        json.dump({"records": args.records, "edges": int(edges.shape[0]), "clusters": clusters,
                   "driver_s": driver_s, "driver_peak_bytes": peak, "ray_s": ray_s, "ray_rounds": rounds, "ray_driver_peak_bytes": ray_peak,
                   "ray_start_s": start_s, "equal": equal, "workers": args.workers}, args.json, indent=2)
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
