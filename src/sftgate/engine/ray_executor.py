"""The Ray executor (`--executor ray`, extra `[ray]`): the local executor's work on Ray Data.

Every piece of work the local executor hands its worker processes (`engine.local`) is handed
here to Ray Data: a row of a dataset, mapped with `map_batches` over Arrow batches on whichever
node has a free CPU. The functions are the very same (`passes.Checker.check_lines` by byte
range or by batch of lines, `rules.dedup.verify_edges` over blocks of candidate edges, the
block scans of `analysis.blocks`, prepare's chunk writer), and their results come back to the
driver in input order (`preserve_order`), where they are merged exactly as the local executor
merges them. So the outputs are byte-identical to the local executor's, whatever the number of
nodes or CPUs.

What travels: a task's arguments and its result are pickled into one binary column (a row per
task, `batch_size=1`). Input files are read by the workers themselves, by byte range, when they
can see them: on a local Ray instance (no address) every local path is theirs. Connected to a
cluster, the driver reads the inputs and ships batches of lines (as it does for compressed and
gs:// inputs everywhere): a local path need not exist on the other nodes. Spill files never
leave the driver's machine: on a local instance a verification or scan task reads the tokens
it needs from the driver's spill file by path; on a cluster they are loaded by the driver and
travel with it (`features.SpillSlice.load`, `TokenRange.load`). Prepare's chunk writers render their outputs
on the workers and the driver places them (`prepare._place`): the staged files are the driver's.

The dataset rules (exact groups, candidate edges, leakage's indexes, skew) run on the driver
over the merged feature columns, as with the local executor; see the README's "Scaling out on
Ray" for the memory that takes. From `BAND_MIN_RECORDS` records the LSH buckets behind the
candidate edges (`analysis.lsh.star_edges`, `cross_edges`) are made on the workers, a task
per group of bands (`RayExecutor.map_bands`). A file's duplicate clusters are made there too up to
`DRIVER_EDGES` edges, and past that on the cluster (`RayExecutor.cluster_rows`): connected
components by rounds of min-label propagation over a Ray Dataset of the edges, then a
`groupby` of the edges into buckets of whole clusters, each bucket's clusters walked on a
worker by the same function.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import socket
import tempfile
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any

import numpy as np

from sftgate.analysis.arrays import unique
from sftgate.analysis.blocks import BlockFn, map_blocks, run_blocks
from sftgate.analysis.lsh import BANDS_AT_ONCE, BandFn, Rows, band_columns, map_bands
from sftgate.analysis.unionfind import pull, shortcut
from sftgate.config import Profile
from sftgate.engine import local
from sftgate.engine.features import FeatureTable, TableSet
from sftgate.engine.local import LocalExecutor
from sftgate.engine.passes import ChunkResult
from sftgate.engine.progress import Progress
from sftgate.errors import SftgateError, UsageError
from sftgate.io.reader import LineReader, plan_ranges
from sftgate.io.sources import Source
from sftgate.rules.dedup import (
    ClusterRows,
    TokenSource,
    Verification,
    cluster_rows,
    verify_edges,
)

MIN_BYTES = 32 << 20  # a smaller input is checked on the driver: a dataset's start costs about a second
RANGE_BYTES = 16 << 20  # a file the workers read is cut into ranges of about this size ...
MIN_RANGE_BYTES = 1 << 20  # ... and no smaller
BATCH_LINES_BYTES = 8 << 20  # lines the driver streams go out in batches of about this size
WINDOW_BYTES = 256 << 20  # streamed lines go out in datasets of about this many bytes
IN_FLIGHT = 2  # Ray tasks (verification, scans, prepare's writers) submitted ahead, per worker
STOP_WAIT = 30  # seconds a stopped map waits for its running tasks to end
CONNECT_TIMEOUT = 10  # seconds to wait for a cluster's address to answer at all
VERIFY_BLOCK = 4096  # candidate edges verified per task
MAP_MIN_RECORDS = 20_000  # fewer records are scanned on the driver
BAND_MIN_RECORDS = 200_000  # fewer records are put in LSH buckets on the driver
DRIVER_EDGES = 20_000_000  # duplicate edges clustered on the driver (~170 B an edge at peak); more on Ray
EDGE_BLOCK = 1 << 20  # edges per block of the cluster's edge dataset, at most

try:
    import pyarrow as pa
    import ray
    import ray.data
    import ray.util.client
except ImportError as exc:  # the executor is imported only when asked for
    raise UsageError("--executor ray needs the ray extra: pip install 'sftgate[ray]'") from exc


# --- worker side -----------------------------------------------------------------------------

_KEY: str | None = None  # the run whose profile this worker process holds (local._init_worker)


def _outcome(key: str, profile: Profile, fn: Callable[[Profile, Any], Any], item: Any,
             cwd: str | None = None) -> tuple[bool, Any]:
    """`(True, fn(profile, item))`, or `(False, exception)` when `fn` raised: the driver raises
    the worker's own exception, as a process pool does, not Ray's wrapper of it. `cwd`: the
    driver's working directory, when this worker shares its machine (relative paths)."""
    global _KEY
    if _KEY != key:  # the first task of this run in this process: its checkers are built once
        local._init_worker(profile)
        _KEY = key
        if cwd is not None and os.path.isdir(cwd):
            os.chdir(cwd)
    try:
        # The profile this process keeps (not this task's copy): caches keyed by it hold.
        return True, fn(local._PROFILE, item)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - raised again on the driver
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # noqa: BLE001 - an exception that does not travel
            return False, RuntimeError(f"{type(exc).__name__}: {exc}")
        return False, exc


class _Apply:
    """`_outcome` for each pickled item of an Arrow batch (a `map_batches` function), pickled."""

    def __init__(self, key: str, profile: Profile, fn: Callable[[Profile, Any], Any], cwd: str | None) -> None:
        self.key = key
        self.profile = profile
        self.fn = fn
        self.cwd = cwd

    def __call__(self, batch: pa.Table) -> pa.Table:
        results = [pickle.dumps(_outcome(self.key, self.profile, self.fn, pickle.loads(data), self.cwd),
                                protocol=pickle.HIGHEST_PROTOCOL)
                   for data in batch.column("item").to_pylist()]
        return pa.table({"result": pa.array(results, type=pa.large_binary())})


_task = None  # `_outcome` as a Ray remote function, made on first use


def _remote() -> Any:
    global _task
    if _task is None:
        # No retries: a task that failed because its worker died is Ray's failure, said once;
        # a chunk writer run twice would find its spill gone.
        _task = ray.remote(max_retries=0)(_outcome)
    return _task


def _reachable(address: str) -> None:
    """A usage error when nothing listens at a `HOST:PORT` or `ray://HOST:PORT` address (Ray
    itself would keep retrying for minutes); other addresses (`auto`, a provider's scheme) are
    left to `ray.init`."""
    match = re.fullmatch(r"(?:ray://)?\[?([^\[\]/]+?)\]?:(\d+)", address)
    if match is None:
        return
    try:
        socket.create_connection((match[1], int(match[2])), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise UsageError(f"could not reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def _all_here() -> bool:
    """Whether every live node of the Ray cluster is this machine (a local instance, started
    here or by a notebook): then the workers see this machine's files."""
    if ray.util.client.ray.is_connected():  # Ray Client (ray://): this driver is outside the cluster
        return False
    here = ray.util.get_node_ip_address()
    return all(node["NodeManagerAddress"] == here for node in ray.nodes() if node["Alive"])


@contextmanager
def _ray_errors() -> Iterator[None]:
    """Ray's own failures (a worker process killed, an object lost, the cluster gone) as one
    line: the work's own exceptions come back as themselves (`_outcome`)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - only Ray's calls run here, never the work's own code
        raise SftgateError(f"Ray failed: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _get(ref: Any) -> tuple[bool, Any]:
    with _ray_errors():
        return ray.get(ref)


def _result(outcome: tuple[bool, Any]) -> Any:
    ok, result = outcome
    if not ok:
        if isinstance(result, ray.exceptions.RayError):  # Ray's, inside a task (a broadcast object lost)
            raise SftgateError(f"Ray failed: {_first_line(result)}")
        raise result
    return result


_SPILL_HERE = "\0here"  # a task's emit_dir: spill in this worker's temporary directory and send the spill back


def _check_range(profile: Profile, item: tuple) -> ChunkResult:
    return _checked(local._check_range, item)


def _check_batch(profile: Profile, item: tuple) -> ChunkResult:
    return _checked(local._check_batch, item)


def _checked(check: Callable[..., ChunkResult], item: tuple) -> ChunkResult:
    """`check(*item)`; when the driver asked for the spill back (emit_dir, argument 4, is
    _SPILL_HERE), spilled in this worker's temporary directory and sent back (`_shipped`)."""
    if item[4] != _SPILL_HERE:
        return check(*item)
    return _shipped(check(*item[:4], tempfile.gettempdir(), *item[5:]))


def _shipped(result: ChunkResult) -> ChunkResult:
    """A chunk's spill file (prepare's converted records) read into the result and removed:
    the driver, maybe on another machine, writes it again (`_landed`)."""
    emit = result.emit
    if emit is not None and emit.spill:
        with open(emit.spill, "rb") as fh:
            data = fh.read()
        os.unlink(emit.spill)
        emit.spill = data  # type: ignore[assignment]
    return result


def _landed(result: ChunkResult, emit_dir: str | None) -> ChunkResult:
    """`_shipped`'s spill written again in the driver's `emit_dir`, where prepare reads it."""
    emit = result.emit
    if emit is not None and isinstance(emit.spill, bytes):
        assert emit_dir is not None
        fd, path = tempfile.mkstemp(dir=emit_dir, suffix=".spill")
        with os.fdopen(fd, "wb") as fh:
            fh.write(emit.spill)
        emit.spill = path
    return result


def _verify_block(profile: Profile, item: tuple) -> np.ndarray:
    return verify_edges(*item)


def _band_group(profile: Profile, item: tuple) -> np.ndarray:
    fn, columns, args = item
    return fn(*columns, *ray.get(args))  # the arguments (the records' ids) are broadcast


def _run_blocks(profile: Profile, item: tuple) -> list[Any]:
    tokens, fn, args = item
    return run_blocks(tokens, fn, ray.get(args))  # the arguments (an n-gram index) are broadcast


def _read_here(profile: Profile, item: tuple) -> Any:
    """`fn(profile, task)` of a task whose tokens (task[at]: a `SpillSlice`, `SliceSet` or
    `TokenRange` of the driver's spill files) this worker reads from the files by path, when
    they are the driver's files (`seen`: each path's identity as the driver sees it); None
    when they are not, or cannot be read here (another user's, another mount namespace's):
    the driver then sends the tokens."""
    fn, task, at, seen = item
    if not seen:  # the driver loaded them
        return fn(profile, task)
    try:
        if any(_identity(path) != known for path, known in seen.items()):
            return None
        tokens = task[at].load()  # a descriptor opened and closed here: the worker outlives the file
    except OSError:
        return None
    return fn(profile, (*task[:at], tokens, *task[at + 1:]))


def _identity(path: str) -> tuple[int, int, int]:
    """What tells a file apart on this machine: its device, inode and size."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size


def _spill_paths(tokens: Any) -> list[str]:
    """The spill files a token source reads (a `SliceSet` has a slice per table)."""
    parts = getattr(tokens, "parts", None)
    return [tokens.path] if parts is None else [part.path for part in parts.values()]


def _propose(batch: dict[str, np.ndarray], shared: Any) -> dict[str, np.ndarray]:
    """One round of min-label propagation over a batch of edges (`analysis.unionfind.pull`,
    on the cluster). `shared`: the round's labels, broadcast. Returns only what lowers a
    label, the lowest per record."""
    labels = ray.get(shared)
    targets, low = pull(labels, batch["u"], batch["v"])
    target, value = np.concatenate(targets), np.tile(low, len(targets))
    lower = value < labels[target]
    target, value = target[lower], value[lower]
    order = np.lexsort((value, target))
    target, value = target[order], value[order]
    first = np.r_[True, target[1:] != target[:-1]] if target.size else np.zeros(0, dtype=bool)
    return {"target": target[first], "value": value[first]}


def _bucketed(batch: dict[str, np.ndarray], shared: Any, buckets: int) -> dict[str, np.ndarray]:
    """Each edge's bucket: its cluster's label (its first record's; both records have the
    same) modulo `buckets`, so that a bucket holds whole clusters."""
    return {**batch, "bucket": ray.get(shared)[batch["u"]] % buckets}


def _cluster_group(batch: dict[str, np.ndarray], keys: Any, policy: str, ranked: bool) -> dict[str, np.ndarray]:
    """`rules.dedup.cluster_rows` of one bucket's edges, whole clusters (a `map_groups`
    function); `keys`: the records' survivor keys, broadcast."""
    edges = np.stack((batch["u"], batch["v"]), axis=1)
    nodes, label, matched, score, exact = cluster_rows(edges, batch["exact"], batch["score"], ray.get(keys), policy,
                                                       ranked)
    return {"node": nodes, "label": label, "matched": matched, "score": score, "exact": exact}


# --- driver side -----------------------------------------------------------------------------


class RayExecutor(LocalExecutor):
    """The local executor's interface on Ray Data: `address` is a cluster's (`auto`,
    `ray://host:port`, `host:port`), or None to start a local Ray instance with `workers` CPUs;
    an instance this process already runs (`ray.init` in a notebook) is used as it is."""

    shares_disk = False  # workers may be on other machines: what they need travels with the task
    start_phase = "ray start"  # what `-v` calls connecting (starting a local instance takes seconds)

    def __init__(self, profile: Profile, workers: int | None, progress: Progress | None = None,
                 address: str | None = None) -> None:
        super().__init__(profile, workers or local.default_workers(), progress)
        self.address = address
        self._asked = workers
        self._started = False  # this executor started Ray (and stops it)
        self._connected = False
        self.local_instance = False  # every node is this machine (known once connected)
        self._spill_elsewhere = False  # a worker of this local instance could not read the driver's spill files
        self.cluster_rounds = 0  # rounds of label propagation of the last clustering on the cluster
        self._restore: list[Callable[[], None]] = []  # puts back the Ray settings this run changed
        self._cwd: str | None = None
        self._key = ""

    def __exit__(self, *exc: object) -> None:
        for restore in reversed(self._restore):  # a notebook's Ray settings as they were
            restore()
        self._restore.clear()
        if self._started:
            ray.shutdown()

    def pool(self) -> Any:
        """Connect to Ray (start a local instance without an address); returns None: there is
        no process pool here."""
        if self._connected:
            return None
        where = self.address or "a local Ray instance"
        if self.address and not ray.is_initialized():
            _reachable(self.address)
        try:
            if not ray.is_initialized():
                ray.init(address=self.address, num_cpus=None if self.address else self.workers,
                         include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
                self._started = True
            cpus = int(ray.cluster_resources().get("CPU", 0))
            self.local_instance = _all_here()
            self._profile = ray.put(self.profile)  # sent to the object store once, not with each task
        except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; the message says what
            raise UsageError(f"could not start or reach {where}: {_first_line(exc)}") from None
        if cpus < 1:
            raise UsageError(f"{where} has no CPU for sftgate's tasks (its nodes offer none yet)")
        if not self._started:
            self.workers = min(self._asked or cpus, cpus)
        # Ray Data's logs (per-dataset chatter, and errors sftgate reports in one line of its own)
        # stay in the session's log files. These settings are the run's: __exit__ puts back
        # what a notebook had.
        logger = logging.getLogger("ray.data")
        context = ray.data.DataContext.get_current()
        options = context.execution_options
        self._restore = [partial(logger.setLevel, logger.level),
                         partial(setattr, options, "preserve_order", options.preserve_order),
                         partial(setattr, context, "enable_progress_bars", context.enable_progress_bars)]
        logger.setLevel(logging.CRITICAL)
        options.preserve_order = True  # results in input order: the merge needs it
        context.enable_progress_bars = False  # sftgate's own progress bar says how far it is
        self._key = uuid.uuid4().hex
        self._cwd = os.getcwd() if self.local_instance else None
        self._connected = True
        return None

    @property
    def running(self) -> bool:
        return self._connected

    @property
    def sees_local_files(self) -> bool:  # type: ignore[override]
        return self.local_instance

    def uses_pool(self, source: Source) -> bool:
        return source.size > MIN_BYTES

    def reads_ranges(self, source: Source) -> bool:
        """Whether the workers read `source` by byte ranges: a plain Cloud Storage object
        (every worker reaches the bucket), or a plain file when every node is this machine (on
        a cluster a local path need not exist elsewhere: the driver streams it)."""
        self.pool()
        return source.ranged and (source.remote or self.local_instance)

    def records(self, fn: Callable[[Profile, Any], Any], items: Iterable[Any], window: int) -> Iterator[Any]:
        """`fn(profile, item)` for each item as `map_batches` over a Ray Dataset of the pickled
        items (one row each), results in order. Items go out in windows of about `window` bytes
        (each window a dataset): the object store holds one window's payload at a time, and a
        window of small items (byte ranges) is the whole input."""
        self.pool()
        it = iter(items)
        apply = _Apply(self._key, self.profile, fn, self._cwd)
        cap = self._cap()
        while True:
            rows, size = [], 0
            for item in it:
                data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
                rows.append({"item": data})
                size += len(data)
                if size >= window:
                    break
            if not rows:
                return
            dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
            del rows
            mapped = dataset.map_batches(apply, batch_size=1, batch_format="pyarrow", zero_copy_batch=True, **cap)
            with _ray_errors():
                batches = iter(mapped.iter_batches(batch_size=None, batch_format="pyarrow"))
            while True:
                with _ray_errors():  # Ray's failures here; the work's own exceptions below
                    out = next(batches, None)
                    outcomes = [] if out is None else [pickle.loads(data) for data in out.column("result").to_pylist()]
                if out is None:
                    break
                for outcome in outcomes:
                    yield _result(outcome)

    def map(self, fn: Callable[[Profile, Any], Any], items: Iterable[Any],
            on_stop: Callable[[], None] | None = None) -> Iterator[Any]:
        """`fn(profile, item)` for each item as Ray tasks, results in order, a few tasks ahead
        of the caller (as `LocalExecutor.map`). The tasks here never wait for each other, so
        stopping early only cancels those not done; `on_stop` is still called then."""
        self.pool()
        remote = _remote()
        pending: deque[Any] = deque()
        try:
            for item in items:
                pending.append(remote.remote(self._key, self._profile, fn, item, self._cwd))
                if len(pending) > IN_FLIGHT * self.workers:
                    yield _result(_get(pending.popleft()))
            while pending:
                yield _result(_get(pending.popleft()))
        finally:
            if pending:  # stopped early: cancel what has not run, wait a while for what runs
                if on_stop is not None:
                    on_stop()
                with suppress(Exception):  # the cluster may be gone: the error that stopped us matters
                    for ref in pending:
                        ray.cancel(ref)
                    ray.wait(list(pending), num_returns=len(pending), timeout=STOP_WAIT)

    def verify_edges(self, edges: np.ndarray, tokens: TokenSource, verification: Verification) -> np.ndarray:
        """`rules.dedup.verify_edges` over blocks of edges as Ray tasks, each carrying the
        tokens of the records its edges name. Here, when Ray has not been started (small
        inputs): starting it would take longer than the work."""
        if not self._connected or edges.shape[0] <= VERIFY_BLOCK or not isinstance(tokens, FeatureTable | TableSet):
            return verify_edges(edges, tokens, verification)
        blocks = (edges[i:i + VERIFY_BLOCK] for i in range(0, edges.shape[0], VERIFY_BLOCK))
        items = ((block, tokens.slice(unique(block)), verification) for block in blocks)
        return np.concatenate(list(self._map_tokens(_verify_block, items, 1)))

    def start_verify(self, edges: np.ndarray, tokens: TokenSource,
                     verification: Verification) -> Callable[[], np.ndarray]:
        """`verify_edges` when the scores are asked for: Ray's tasks are handed out a few at a
        time as they finish, not all at once."""
        return lambda: self.verify_edges(edges, tokens, verification)

    def map_bands(self, fn: BandFn, matrices: tuple[np.ndarray, ...], args: tuple, rows: Rows = ()
                  ) -> Iterator[np.ndarray]:
        """`analysis.lsh.map_bands` as Ray tasks from `BAND_MIN_RECORDS` records on: the LSH
        buckets (grouping the records by band key) made on the workers, a task per group of
        `BANDS_AT_ONCE` bands holding those bands' keys of every record and nothing else, the
        other arguments (the records' ids) broadcast once; the groups' edges come back in band
        order. The groups are the driver's: smaller ones would spread the work wider but send
        back more edges twice (a pair found in several bands of different groups), which wait
        on the driver until their turn to be merged."""
        rows = rows or (None,) * len(matrices)
        if not self._connected or max(m.shape[0] if r is None else r.size
                                      for m, r in zip(matrices, rows, strict=True)) < BAND_MIN_RECORDS:
            return map_bands(fn, matrices, args, rows)
        with _ray_errors():
            shared = ray.put(args)
        return self.map(_band_group, ((fn, tuple(np.ascontiguousarray(band_columns(m, r, lo, lo + BANDS_AT_ONCE))
                                                 for m, r in zip(matrices, rows, strict=True)), shared)
                                      for lo in range(0, matrices[0].shape[1], BANDS_AT_ONCE)))

    def cluster_rows(self, edges: np.ndarray, exact: np.ndarray, score: np.ndarray, keys: np.ndarray, policy: str,
                     ranked: bool) -> ClusterRows:
        """`rules.dedup.cluster_rows`: on the driver up to `DRIVER_EDGES` edges, on the cluster
        past that. There the edges are a Ray Dataset; their connected components come from
        rounds of min-label propagation over it (`_propose`: each round maps every block with
        the labels broadcast, and the driver, which holds 8 bytes a record, lowers the labels
        and shortcuts them to their roots) until no label changes: the labels are each
        cluster's smallest record, as on the driver. Then the edges are grouped into buckets of
        whole clusters (label modulo the buckets; `groupby`, a shuffle) and each bucket's rows
        made on a worker by `cluster_rows` itself; the driver sorts them by label and record.
        The same rows, whatever the cluster. One cluster's edges are on one worker: a giant
        cluster needs there what the driver would."""
        self.cluster_rounds = 0
        if not self._connected or edges.shape[0] <= DRIVER_EDGES:
            return cluster_rows(edges, exact, score, keys, policy, ranked)
        n = keys.shape[0]
        cap = self._cap()
        with _ray_errors():
            m = edges.shape[0]
            block = max(1, min(EDGE_BLOCK, -(-m // (2 * self.workers))))  # a block for every task
            dataset = ray.data.from_arrow([pa.table({"u": edges[lo:lo + block, 0], "v": edges[lo:lo + block, 1],
                                                     "exact": exact[lo:lo + block], "score": score[lo:lo + block]})
                                           for lo in range(0, m, block)]).materialize()
            labels = np.arange(n, dtype=np.int64)
            while True:
                self.cluster_rounds += 1
                shared = ray.put(labels)
                target, value = [], []
                proposed = dataset.map_batches(_propose, fn_args=(shared,), batch_format="numpy", **cap)
                for batch in proposed.iter_batches(batch_size=None, batch_format="numpy"):
                    target.append(batch["target"])
                    value.append(batch["value"])
                if not sum(t.size for t in target):
                    break
                np.minimum.at(labels, np.concatenate(target), np.concatenate(value))
                labels = shortcut(labels)
            # Buckets of whole clusters of about EDGE_BLOCK edges each, at least two a worker (a
            # call per cluster would cost ~70 µs each, and most clusters are pairs).
            buckets = max(2 * self.workers, -(-edges.shape[0] // EDGE_BLOCK))
            grouped = dataset.map_batches(_bucketed, fn_args=(ray.put(labels), buckets), batch_format="numpy",
                                          **cap) \
                .groupby("bucket").map_groups(_cluster_group, fn_args=(ray.put(keys), policy, ranked),
                                              batch_format="numpy", **cap)
            parts = list(grouped.iter_batches(batch_size=None, batch_format="numpy"))
        columns = [np.concatenate([part[name] for part in parts]) for name in ("node", "label", "matched", "score",
                                                                                "exact")]
        order = np.lexsort((columns[0], columns[1]))
        return tuple(column[order] for column in columns)  # type: ignore[return-value]

    def _map_tokens(self, fn: Callable[[Profile, Any], Any], tasks: Iterable[tuple], at: int) -> Iterator[Any]:
        """`self.map(fn, tasks)` where task[at] reads tokens from the driver's spill files. On a
        local instance the workers read them by path (`_read_here`); when a worker finds it
        cannot (its node shares this machine's address, not its files: a container, another
        user), that task is sent again with its tokens loaded here, and so are the rest of
        the run's (as on a cluster, where the tokens always travel)."""
        if not self.local_instance or self._spill_elsewhere:
            yield from self.map(fn, ((*task[:at], task[at].load(), *task[at + 1:]) for task in tasks))
            return
        seen: dict[str, tuple[int, int, int]] = {}
        sent: deque[tuple] = deque()

        def items() -> Iterator[tuple]:
            for task in tasks:
                sent.append(task)
                if self._spill_elsewhere:
                    yield (fn, (*task[:at], task[at].load(), *task[at + 1:]), at, {})
                    continue
                paths = _spill_paths(task[at])
                for path in paths:
                    if path not in seen:
                        seen[path] = _identity(path)
                yield (fn, task, at, {path: seen[path] for path in paths})

        for result in self.map(_read_here, items()):
            task = sent.popleft()
            if result is None:
                self._spill_elsewhere = True
                [result] = self.map(fn, [(*task[:at], task[at].load(), *task[at + 1:])])
            yield result

    def _cap(self) -> dict[str, Any]:
        """At most `workers` tasks at once (a local instance has no more CPUs; on a cluster,
        --workers caps what the run takes)."""
        return {"compute": ray.data.TaskPoolStrategy(size=self.workers)} if hasattr(ray.data, "TaskPoolStrategy") \
            else {"concurrency": self.workers}  # Ray < 2.51

    def map_blocks(self, table: Any, fn: BlockFn, args: tuple) -> Iterator[Any]:
        """`features.map_blocks` as Ray tasks: the table's records cut into runs whose tokens
        travel with the task, and `args` (the validation and eval sets' n-gram index, the
        smaller side of a leak scan) broadcast through the object store; results in record order."""
        if not self._connected or not isinstance(table, FeatureTable) or len(table) < MAP_MIN_RECORDS:
            yield from map_blocks(table, fn, args)
            return
        ranges = table.ranges(self.workers * 4)
        shared = ray.put(args)  # once in the object store, read there by every task (on each node once)
        for part in self._map_tokens(_run_blocks, ((r, fn, shared) for r in ranges), 0):
            yield from part

    def _ranges(self, source: Source, task: tuple) -> Iterator[ChunkResult]:
        chunk = max(MIN_RANGE_BYTES, min(RANGE_BYTES, source.size // (self.workers * 4) + 1))
        with source.open_probe() as stream:
            ranges = plan_ranges(stream, source.size, chunk)
        # Ranges are small to send: one dataset reads them all, as fast as the workers go.
        items = ((source, *self._for_workers(task), start, end) for start, end in ranges)
        for chunk in self.records(_check_range, items, WINDOW_BYTES):
            yield _landed(chunk, task[3])

    def _batches(self, source: Source, task: tuple, result: ChunkResult, cap: int) -> str | None:
        max_line = self.profile.format["max_line_bytes"]
        with source.open() as stream:
            reader = LineReader(stream, max_line_bytes=max_line)
            for chunk in self.records(_check_batch, _line_batches(reader, source.name, self._for_workers(task)),
                                      WINDOW_BYTES):
                self._merge(result, _landed(chunk, task[3]), cap)
        return reader.broken

    def _for_workers(self, task: tuple) -> tuple:
        """A check task's arguments for the workers: with an emit_dir (prepare) that workers on
        other machines cannot see, they spill where they run and send the spill back."""
        if task[3] is None or self.sees_local_files:
            return task
        return (*task[:3], _SPILL_HERE, *task[4:])


def _line_batches(reader: LineReader, name: str, task: tuple) -> Iterator[tuple]:
    """`local._check_batch`'s arguments for the stream's batches of lines (`local.line_batches`)."""
    for batch, first in local.line_batches(reader, BATCH_LINES_BYTES):
        yield (name, *task, batch, first)
