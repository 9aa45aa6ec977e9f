"""`--executor ray`: the same report and the same prepared files as the local executor.

One local Ray instance serves the whole session (conftest's `ray_address`; the tests that use
it run last). The inputs are small real files, so the executor's thresholds are lowered to make
every input go through Ray in many ranges, candidate edges in many blocks and the n-gram scans
over the workers. A cluster's other machines are played by the session's own nodes, taken
not to be this machine: then the driver streams the lines, and converted records' spills and
prepare's chunks travel back.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

from sftgate.engine.features import FeatureTable, TableSet
from sftgate.engine.prepare import prepare
from sftgate.engine.run import check
from sftgate.report import json as json_report

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'sftgate[ray]'")
rx = pytest.importorskip("sftgate.engine.ray_executor")

REPO = Path(__file__).resolve().parents[1]
OASST = REPO / "examples" / "oasst"
ALPACA = REPO.parent / "shared" / "data" / "real" / "alpaca" / "alpaca_5000.json"


@pytest.fixture()
def small_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything through Ray, in pieces: ranges of 16-64 KiB, 16 edges a block, every scan and
    every file's LSH buckets."""
    monkeypatch.setattr(rx, "MIN_BYTES", 0)
    monkeypatch.setattr(rx, "RANGE_BYTES", 64 << 10)
    monkeypatch.setattr(rx, "MIN_RANGE_BYTES", 16 << 10)
    monkeypatch.setattr(rx, "BATCH_LINES_BYTES", 48 << 10)
    monkeypatch.setattr(rx, "VERIFY_BLOCK", 16)
    monkeypatch.setattr(rx, "MAP_MIN_RECORDS", 0)
    monkeypatch.setattr(rx, "BAND_MIN_RECORDS", 0)
    monkeypatch.setattr(rx, "WINDOW_BYTES", 100 << 10)  # streamed lines in several datasets


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A training file with duplicates, near-duplicates, broken lines and rule findings; a
    validation file sharing some of it; an eval prompt list with one training prompt."""
    root = tmp_path_factory.mktemp("ray-inputs")
    train = OASST.joinpath("train.jsonl").read_bytes().splitlines()
    validation = OASST.joinpath("validation.jsonl").read_bytes().splitlines()
    near = orjson.loads(train[5])
    near["contents"][-1]["parts"][0]["text"] += " Thanks!"
    broken = [b'{"contents": [', b"[1, 2]", b"", b'{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}',
              b'{"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}, {"role": "model", "parts": []}]}']
    lines = [*train[:300], *train[:40], orjson.dumps(near), *broken, *train[300:], validation[3], validation[7]]
    paths = {"train": root / "train.jsonl", "validation": root / "validation.jsonl", "eval": root / "prompts.txt"}
    paths["train"].write_bytes(b"\n".join(lines) + b"\n")
    paths["validation"].write_bytes(b"\n".join([*validation, train[11], train[12]]) + b"\n")
    first = orjson.loads(train[20])["contents"][0]["parts"][0]["text"].replace("\n", " ")
    paths["eval"].write_text(f"{first}\nWhat is the tallest mountain on Mars?\n")
    paths["gzip"] = root / "train.jsonl.gz"
    paths["gzip"].write_bytes(gzip.compress(paths["train"].read_bytes(), mtime=0))
    return paths


def _stable_report(report) -> dict:
    data = orjson.loads(json_report.render(report))
    for key in ("started_at", "duration_s", "workers"):
        data.pop(key)
    return data


def _stable_manifest(out: Path) -> dict:
    manifest = copy.deepcopy(json.loads((out / "manifest.json").read_text()))
    for key in ("created_at", "location"):
        manifest.pop(key)
    manifest["tuning"].pop("upload")
    for entry in manifest["outputs"]:
        entry.pop("uri")
        if entry["role"] == "report":
            for key in ("bytes", "sha256", "crc32c"):
                entry.pop(key)
    return manifest


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix == ".jsonl"}


def _count_maps(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The Ray tasks `RayExecutor.map` runs from now on, by function name."""
    calls: dict[str, int] = {}
    real = rx.RayExecutor.map

    def map_(self, fn, items, on_stop=None):
        calls[fn.__name__] = calls.get(fn.__name__, 0) + 1
        if fn.__name__ == "_render_chunk":  # what prepare's writers get: spill files by path or as bytes
            items = list(items)
            for task in items:
                kind = "spill_bytes" if isinstance(task.emit.spill, bytes) else "spill_paths" if task.emit.spill else ""
                if kind:
                    calls[kind] = calls.get(kind, 0) + 1
        return real(self, fn, items, on_stop)

    monkeypatch.setattr(rx.RayExecutor, "map", map_)
    return calls


def test_check_reports_are_the_same(ray_address, small_work, inputs, monkeypatch):
    args = {"validation": inputs["validation"], "eval_sets": [inputs["eval"]], "workers": 2}
    local_report = check(inputs["train"], **args)
    calls = _count_maps(monkeypatch)
    ray_report = check(inputs["train"], executor="ray", **args)
    assert _stable_report(ray_report) == _stable_report(local_report)
    # On the workers, which read the tokens from the driver's spill file (a local instance):
    # verification, the n-gram scans, and the LSH buckets of both files and of the leak lookup.
    assert calls.get("_read_here", 0) >= 3 and calls.get("_band_group", 0) >= 3, calls
    assert "_verify_block" not in calls and "_run_blocks" not in calls, calls  # never with the tokens loaded


def test_workers_that_cannot_see_the_drivers_spill_file_get_the_tokens(ray_address, small_work, inputs,
                                                                      monkeypatch):
    """A local instance whose workers share this machine's address but not its files (a
    container, another user): the first task that finds the spill file is not the driver's
    is sent again with its tokens, and so are the rest. Played by making the driver's idea of
    the file's identity wrong."""
    args = {"validation": inputs["validation"], "eval_sets": [inputs["eval"]], "workers": 2}
    local_report = check(inputs["train"], **args)
    monkeypatch.setattr(rx, "_identity", lambda path: (0, 0, 0))
    calls = _count_maps(monkeypatch)
    ray_report = check(inputs["train"], executor="ray", **args)
    assert _stable_report(ray_report) == _stable_report(local_report)
    assert calls.get("_read_here") == 1, calls  # the first map finds out; the others carry their tokens
    assert calls.get("_verify_block", 0) >= 2 and calls.get("_run_blocks", 0) >= 1, calls
    codes = {f.code for f in local_report.findings}
    # the run exercised what it should: broken lines, structure, duplicates and every leak kind
    assert {"FMT001", "FMT003", "DUP001", "DUP002", "LEAK001"} <= codes, codes
    assert local_report.leakage and local_report.duplicates


def _clustered_on_ray(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Every duplicate analysis from now on clusters its edges on Ray (`DRIVER_EDGES` 0, blocks
    of 8 edges); counts the edge lists clustered there and those the driver clustered itself."""
    monkeypatch.setattr(rx, "DRIVER_EDGES", 0)
    monkeypatch.setattr(rx, "EDGE_BLOCK", 8)
    calls = {"ray": 0, "driver": 0}
    real, here = rx.RayExecutor.cluster_rows, rx.cluster_rows

    def on_ray(self, *args):
        calls["ray"] += 1
        return real(self, *args)

    def on_driver(*args):  # the workers' `_cluster_group` imports its own, not this
        calls["driver"] += 1
        return here(*args)

    monkeypatch.setattr(rx.RayExecutor, "cluster_rows", on_ray)
    monkeypatch.setattr(rx, "cluster_rows", on_driver)
    return calls


def test_duplicate_clusters_made_on_the_cluster_are_the_same(ray_address, small_work, inputs, monkeypatch):
    """Past `DRIVER_EDGES`, components by label propagation over a Ray Dataset and each
    cluster's walk in a `map_groups`: the same findings, clusters and report."""
    args = {"validation": inputs["validation"], "eval_sets": [inputs["eval"]], "workers": 2}
    local_report = check(inputs["train"], **args)
    calls = _clustered_on_ray(monkeypatch)
    ray_report = check(inputs["train"], executor="ray", **args)
    assert _stable_report(ray_report) == _stable_report(local_report)
    assert calls["ray"] == len(local_report.duplicates) == 2 and calls["driver"] == 0, calls  # train, validation
    assert local_report.duplicates[0]["clusters"] >= 30


@pytest.mark.parametrize(("policy", "ranked"), [("first", False), ("longest", True)])
def test_cluster_rows_on_ray_are_the_drivers(ray_address, monkeypatch, policy, ranked):
    """Random graphs (many small clusters, a few long chains, one large star), every survivor
    key in play: the rows made on the cluster equal `rules.dedup.cluster_rows`'."""
    from sftgate.config import load_profile
    from sftgate.rules.dedup import cluster_rows

    rng = np.random.default_rng(11)
    n = 4000
    edges = [rng.integers(0, n, (3000, 2)), np.stack((np.arange(100, 900), np.arange(101, 901)), axis=1),
             np.stack((np.full(300, 3999), rng.integers(2000, 3000, 300)), axis=1)]
    edges = np.concatenate(edges)
    edges = np.unique(np.sort(edges[edges[:, 0] != edges[:, 1]], axis=1), axis=0)
    exact = rng.random(edges.shape[0]) < 0.3
    score = np.where(exact, 1.0, rng.uniform(0.8, 1.0, edges.shape[0]))
    keys = np.stack((rng.integers(0, 40, n), rng.integers(0, 3, n), rng.random(n) < 0.2), axis=1).astype(np.int64)
    want = cluster_rows(edges, exact, score, keys, policy, ranked)
    calls = _clustered_on_ray(monkeypatch)
    monkeypatch.setattr(rx, "EDGE_BLOCK", 500)
    with rx.RayExecutor(load_profile("gemini-2.5-flash"), 2, address=ray_address) as executor:
        executor.pool()
        got = executor.cluster_rows(edges, exact, score, keys, policy, ranked)
    assert calls == {"ray": 1, "driver": 0}
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.unique(want[1]).size > 100 and (want[2] < 0).sum() == np.unique(want[1]).size


def test_lsh_buckets_made_on_the_workers_are_the_drivers(ray_address, monkeypatch):
    """Band keys from a small set (large buckets, keys that differ only in their top bits, 0 for
    no signature), 11 bands in groups of 8 and 3: `star_edges` and `cross_edges` give the
    edges they give on the driver."""
    from sftgate.analysis import lsh
    from sftgate.config import load_profile

    rng = np.random.default_rng(5)
    pool = np.array([0, 1, 2, 3, 1 | (1 << 63), 2 | (1 << 60), 99], dtype=np.uint64)
    keys, query = pool[rng.integers(0, pool.size, (3000, 11))], pool[rng.integers(0, pool.size, (200, 11))]
    keys[:, 3] = np.arange(3000, dtype=np.uint64) * np.uint64(7919)  # a band of distinct keys
    ids = np.sort(rng.choice(1 << 30, 3000, replace=False)).astype(np.int64)
    query_ids = np.arange(5000, 5200, dtype=np.int64)
    want_star, want_cross = lsh.star_edges(keys, ids), lsh.cross_edges(query, query_ids, keys, ids)
    monkeypatch.setattr(rx, "BAND_MIN_RECORDS", 0)
    with rx.RayExecutor(load_profile("gemini-2.5-flash"), 2, address=ray_address) as executor:
        executor.pool()
        groups = []
        real = rx.RayExecutor.map

        def counted(self, fn, items, on_stop=None):
            items = list(items)
            groups.append([item[1][0].shape[1] for item in items])
            return real(self, fn, items, on_stop)

        monkeypatch.setattr(rx.RayExecutor, "map", counted)
        got_star = lsh.star_edges(keys, ids, executor.map_bands)
        got_cross = lsh.cross_edges(query, query_ids, keys, ids, executor.map_bands)
        table, rows = np.vstack((keys[::-1], query)), np.arange(3000)[::-1]  # the keys as rows of a larger table
        rows_star = lsh.star_edges(table, ids, executor.map_bands, rows=rows)
        rows_cross = lsh.cross_edges(query, query_ids, table, ids, executor.map_bands, index_rows=rows)
    assert groups == [[8, 3]] * 4
    assert np.array_equal(got_star, want_star) and np.array_equal(got_cross, want_cross)
    assert np.array_equal(rows_star, want_star) and np.array_equal(rows_cross, want_cross)
    assert want_star.shape[0] > 3000 and want_cross.shape[0] > 1000


def test_split_and_streamed_inputs_are_the_same(ray_address, small_work, inputs):
    """A compressed input is streamed by the driver in batches of lines; a planned split runs
    its leak check rounds through the executor's verification and scans."""
    args = {"split_validation": 0.1, "seed": 7, "workers": 2}
    local_report = check(inputs["gzip"], **args)
    ray_report = check(inputs["gzip"], executor="ray", **args)
    assert _stable_report(ray_report) == _stable_report(local_report)
    assert local_report.split["validation_examples"] > 0


@pytest.mark.parametrize("on_ray", [False, True], ids=["clusters-on-driver", "clusters-on-ray"])
def test_prepare_writes_the_same_bytes(ray_address, small_work, inputs, tmp_path, monkeypatch, on_ray):
    args = {"validation": inputs["validation"], "eval_sets": [inputs["eval"]], "workers": 2,
            "max_shard_bytes": 200_000}
    local_done = prepare(inputs["train"], out=tmp_path / "local", **args)
    calls = _clustered_on_ray(monkeypatch) if on_ray else {"ray": 2, "driver": 0}
    ray_done = prepare(inputs["train"], out=tmp_path / "ray", executor="ray", **args)
    assert calls == {"ray": 2, "driver": 0}
    local_files, ray_files = _files(tmp_path / "local"), _files(tmp_path / "ray")
    assert len([name for name in local_files if name.startswith("train-")]) > 2  # several shards
    assert ray_files == local_files
    assert _stable_manifest(tmp_path / "ray") == _stable_manifest(tmp_path / "local")
    assert ray_done.exit_code == local_done.exit_code


def test_prepare_on_a_cluster_is_the_same(ray_address, small_work, inputs, tmp_path, monkeypatch):
    """On a cluster (here: the session's instance with its nodes taken to be other machines)
    the driver streams the lines, the converted records' spill comes back from the workers,
    and the chunk writers render while the driver places their parts."""
    if not ALPACA.exists():
        pytest.skip(f"real data not found: {ALPACA}")
    monkeypatch.setattr(rx, "_all_here", lambda: False)
    calls = {"landed": 0, "render": 0, "verify_block": 0, "read_here": 0}
    landed, render = rx._landed, rx.RayExecutor.map

    def count_landed(result, emit_dir):
        calls["landed"] += isinstance(result.emit.spill, bytes) if result.emit else 0
        return landed(result, emit_dir)

    def count_map(self, fn, items, on_stop=None):
        if fn.__name__ in ("_verify_block", "_read_here"):
            calls[fn.__name__[1:]] += 1
        if fn.__name__ == "_render_chunk":
            calls["render"] += 1
            items = list(items)
            # nothing a task needs is a path on this machine: the bytes and the spill travel
            assert all(task.span is not None and isinstance(task.emit.spill, bytes) for task in items)
        return render(self, fn, items, on_stop)

    monkeypatch.setattr(rx, "_landed", count_landed)
    monkeypatch.setattr(rx.RayExecutor, "map", count_map)
    args = {"split_validation": 0.05, "workers": 2, "max_shard_bytes": 1_000_000}
    local_done = prepare(ALPACA, out=tmp_path / "local", **args)
    ray_done = prepare(ALPACA, out=tmp_path / "ray", executor="ray", ray_address=ray_address, **args)
    assert ray_done.exit_code == local_done.exit_code
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")
    assert _stable_manifest(tmp_path / "ray") == _stable_manifest(tmp_path / "local")
    assert local_done.manifest["counts"]["train_examples"] > 4000
    assert calls["landed"] > 5 and calls["render"] == 1  # the cluster paths ran
    # the tokens a verification task needs travel with it: the driver's spill file is not theirs
    assert calls["verify_block"] > 0 and calls["read_here"] == 0, calls


def test_prepare_of_a_stream_with_long_lines_on_a_cluster(ray_address, small_work, inputs, tmp_path, monkeypatch):
    """A compressed input on a cluster: the driver streams the lines to the checkers and the
    chunks' bytes to the writers, leaving out lines too long to load (FMT008)."""
    monkeypatch.setattr(rx, "_all_here", lambda: False)
    rules = tmp_path / "rules.yaml"
    rules.write_text("extends: gemini-2.5-flash\nformat:\n  max_line_bytes: 6000\n")
    args = {"validation": inputs["validation"], "workers": 2, "rules": rules, "max_shard_bytes": 300_000}
    prepare(inputs["gzip"], out=tmp_path / "local", **args)
    done = prepare(inputs["gzip"], out=tmp_path / "ray", executor="ray", **args)
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")
    assert _stable_manifest(tmp_path / "ray") == _stable_manifest(tmp_path / "local")
    assert done.manifest["counts"]["quarantined_by_status"].get("too_long", 0) > 3


def _openai(path: Path) -> bytes:
    """A Gemini JSONL file's text conversations as OpenAI chat records (a format sftgate converts)."""
    out = []
    for line in path.read_bytes().splitlines():
        try:
            record = orjson.loads(line)
            messages = [{"role": "assistant" if turn["role"] == "model" else "user",
                         "content": " ".join(part.get("text", "") for part in turn["parts"])}
                        for turn in record["contents"]]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            out.append(line)  # broken lines stay broken
            continue
        out.append(orjson.dumps({"messages": messages}))
    return b"\n".join(out) + b"\n"


@pytest.mark.parametrize("where", ["local instance", "cluster"])
def test_prepare_from_and_to_cloud_storage(ray_address, small_work, inputs, gcs_bucket, monkeypatch, where):
    """gs:// in and out (a real GCS API on loopback): the workers read the object by byte
    ranges themselves (ranged GETs of its generation) and the driver writes the outputs; the
    objects are those of the local executor. On a cluster, a converted input's spills and
    prepare's chunks travel as bytes."""
    from sftgate.io import gcs

    if where == "cluster":
        monkeypatch.setattr(rx, "_all_here", lambda: False)
    data = _openai(inputs["train"]) if where == "cluster" else inputs["train"].read_bytes()
    source = f"gs://{gcs_bucket}/in/train.jsonl"
    gcs.upload_bytes(data, source, content_type="application/jsonl")
    written = {}
    for executor in ("local", "ray"):
        calls = _count_maps(monkeypatch) if executor == "ray" else {}
        records = rx.RayExecutor.records
        ranges = []

        def count_records(self, fn, items, window, ranges=ranges, records=records):
            ranges.append(fn.__name__)
            return records(self, fn, items, window)

        monkeypatch.setattr(rx.RayExecutor, "records", count_records)
        out = f"gs://{gcs_bucket}/out/{executor}"
        done = prepare(source, out=out, split_validation=20, workers=2, executor=executor, max_shard_bytes=400_000)
        monkeypatch.setattr(rx.RayExecutor, "records", records)
        written[executor] = {}
        for entry in done.manifest["outputs"]:
            if entry["role"] != "report":
                with gcs.open_read(entry["uri"]) as fh:
                    written[executor][entry["name"]] = fh.read()
    assert len(written["local"]) > 3 and written["ray"] == written["local"]
    assert ranges == ["_check_range"] and calls.get("_render_chunk") == 1, (ranges, calls)
    if where == "cluster":  # converted records: their spills went to the writers as bytes
        assert done.report.inputs[0].format == "openai"
        assert calls.get("spill_bytes", 0) > 5 and "spill_paths" not in calls, calls


def test_a_notebooks_ray_settings_are_put_back(ray_address):
    """A run on the process's own Ray connection leaves Ray Data's settings as it found them."""
    import logging

    from sftgate.config import load_profile

    context = ray.data.DataContext.get_current()
    before = (context.execution_options.preserve_order, context.enable_progress_bars,
              logging.getLogger("ray.data").level)
    with rx.RayExecutor(load_profile("gemini-2.5-flash"), 2) as executor:
        assert list(executor.records(getattr, ["target"], 1 << 20)) == ["gemini-2.5-flash"]
        assert context.execution_options.preserve_order and not context.enable_progress_bars
    assert (context.execution_options.preserve_order, context.enable_progress_bars,
            logging.getLogger("ray.data").level) == before
    assert ray.is_initialized()  # not this run's to stop


def test_a_worker_error_is_raised_as_itself(ray_address):
    """A task that raises on a worker raises the same exception on the driver, not Ray's
    wrapper: errors a chunk reports (an unreadable input) read as with the local executor."""
    from sftgate.config import load_profile

    with rx.RayExecutor(load_profile("gemini-2.5-flash"), 2, address=ray_address) as executor:
        for results in (executor.records(getattr, ["target", "no_such_attribute"], 1 << 20),  # Ray Data
                        executor.map(getattr, ["target", "no_such_attribute"])):  # Ray tasks
            assert next(results) == "gemini-2.5-flash"
            with pytest.raises(AttributeError, match="no_such_attribute"):
                next(results)


_CLI = ("import sys; from sftgate.engine import ray_executor; ray_executor.MIN_BYTES = 0; "
        "from sftgate.cli import main; sys.exit(main())")  # the CLI, with every input through Ray


@pytest.mark.parametrize("where", ["address", "local instance"])
def test_the_cli(ray_address, inputs, tmp_path, where):
    """`sftgate check --executor ray` in another process: on the session's instance by its
    address, and on a local instance of its own (started and stopped); exit code and report as
    with the local executor."""
    reports = {}
    ray = ["--executor", "ray", *(["--ray-address", ray_address] if where == "address" else [])]
    for name, extra in (("local", []), ("ray", ray)):
        reports[name] = tmp_path / f"{name}.json"
        done = subprocess.run(
            [sys.executable, "-c", _CLI, "check", str(inputs["train"]), "--validation", str(inputs["validation"]),
             "--workers", "2", "--report-json", str(reports[name]), "-v", *extra],
            capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 1, done.stderr  # the gate fails on the broken lines
        assert "Traceback" not in done.stderr
        assert ("sftgate: ray start:" in done.stderr) == (name == "ray"), done.stderr
    local_report, ray_report = (json.loads(reports[n].read_text()) for n in ("local", "ray"))
    for data in (local_report, ray_report):
        for key in ("started_at", "duration_s", "workers"):
            data.pop(key)
    assert ray_report == local_report


def test_an_unreachable_address_is_a_usage_error(inputs):
    """Nothing listens there: one line, at once (Ray alone would retry for minutes)."""
    done = subprocess.run([sys.executable, "-c", _CLI, "check", str(inputs["train"]), "--quiet", "--executor", "ray",
                           "--ray-address", "127.0.0.1:9"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    assert "could not reach the Ray cluster at 127.0.0.1:9" in done.stderr and "Traceback" not in done.stderr


def test_loaded_slices_read_as_the_spill_file(inputs):
    """What a verification or scan task carries (`load`) reads the same tokens as the spill file."""
    from sftgate.config import load_profile
    from sftgate.engine.local import LocalExecutor

    profile = load_profile("gemini-2.5-flash")
    with LocalExecutor(profile, 1) as executor:
        result, _ = executor.check_source(_source(inputs["train"]), "train")
    table = result.features
    assert isinstance(table, FeatureTable) and len(table) > 300
    try:
        records = np.array([0, 3, 4, 90, 91, len(table) - 1])
        spilled = table.slice(records)
        loaded = spilled.load()
        assert loaded.path == "" and loaded.data is not None
        for record in records.tolist():
            assert loaded.tokens(record) == spilled.tokens(record) == table.tokens(record)
        for got, want in zip(loaded.token_arrays(records[1:4]), spilled.token_arrays(records[1:4]), strict=True):
            assert np.array_equal(got, want)
        both = TableSet([table, table])
        sliced = both.slice(np.array([2, len(table) + 5]))
        assert sliced.load().tokens(len(table) + 5) == sliced.tokens(len(table) + 5) == table.tokens(5)
        for part in table.ranges(3):
            for got, want in zip(part.load().blocks(5000), part.blocks(5000), strict=True):
                assert got[0] == want[0]
                for a, b in zip(got[1:], want[1:], strict=True):
                    assert np.array_equal(a, b)
    finally:
        table.close()


def _source(path: Path):
    from sftgate.io.sources import open_source

    return open_source(path)


def test_usage_errors(inputs, tmp_path):
    """--ray-address without --executor ray, and --executor ray without the extra, are
    one-line usage errors (exit 2)."""
    base = [sys.executable, "-m", "sftgate", "check", str(inputs["train"]), "--quiet"]
    done = subprocess.run([*base, "--ray-address", "auto"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "--ray-address needs --executor ray" in done.stderr
    hide = "import sys; sys.modules['ray'] = None; from sftgate.cli import main; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", hide, "check", str(inputs["train"]), "--executor", "ray", "--quiet"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "pip install 'sftgate[ray]'" in done.stderr and "Traceback" not in done.stderr


def test_the_local_executor_never_imports_ray(inputs):
    code = ("import sys, sftgate; sftgate.check(sys.argv[1], workers=2); "
            "print('ray' in sys.modules, 'sftgate.engine.ray_executor' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(inputs["train"])], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"}, check=False)
    assert done.stdout.split() == ["False", "False"], done.stderr
