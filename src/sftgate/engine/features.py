"""Per-record features for dataset rules, computed during the check pass in batches.

For every example that passed the schema the pass keeps a compact row: 64-bit keys of its
exact text, its prompt and its response, how many tokens each side has, and its MinHash band
keys. The tokens themselves (32-bit hashes, prompt side then response side) are not kept in
memory: the parent process appends them to a spill file, from which verification later reads
only the records that became candidates. Memory therefore grows with the number of records,
never with the size of their text.

The prompt side is every turn that is not the model's (plus the system instruction when the
profile says so); the response side is every model turn. Parts that are not text (function
calls and responses, file references) count as their canonical JSON.

With `skew`, each row also gets the skew analysis' columns (`SKEW_COLUMNS`): the
`textfeatures` of the user turns, the number of user turns and media parts, the kind of media
and a key of the system instruction. A production sample needs only those: `dedup=False`
leaves its token hashes and band keys out.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sftgate.analysis.arrays import unique
from sftgate.analysis.blocks import BlockMap, map_blocks
from sftgate.analysis.lsh import choose_bands
from sftgate.analysis.ngrams import MULTIPLIERS
from sftgate.analysis.text import classes, exact_fold, fold, json_text, key64, mix64, spaces
from sftgate.analysis.textfeatures import NAMES, feature_columns, system_key
from sftgate.model import Example, PartKind

_TEXT = PartKind.TEXT
_FILE_DATA = PartKind.FILE_DATA
SNIPPET = 60  # characters of an answer kept for reports
_ROLE_CODES: dict[str, int] = {}  # role -> its code in the exact keys (the key of its name)


def _role_code(role: str) -> int:
    code = _ROLE_CODES[role] = key64(f"role\x1f{role}") | 1  # never 0, so `get(role) or` works
    return code


_SYSTEM_ROLE = _role_code("system")
_MODEL_ROLE = np.uint64(_role_code("model"))
_GROUP_CHARS = 1 << 19  # characters of text a builder holds before hashing them

# The skew columns: textfeatures' of the user turns, then the engine's own.
MEDIA_KINDS: tuple[str, ...] = ("none", "image", "video", "audio", "document", "other", "mixed")
_MEDIA_CODE = {"image": 1, "video": 2, "audio": 3, "application/pdf": 4}
SKEW_COLUMNS: tuple[str, ...] = (*NAMES, "user_turns", "media_parts", "media_kind", "system")


@dataclass(frozen=True)
class DedupSettings:
    """The `dedup:` section of a profile, resolved (bands and rows derived when not given)."""

    case: bool
    punctuation: bool
    system: bool
    size: int
    spaceless_size: int
    num_perm: int
    bands: int
    rows: int
    threshold: float
    seed: int

    @classmethod
    def from_profile(cls, section: Mapping[str, Any]) -> DedupSettings:
        exact, near = section["exact"], section["near"]
        num_perm = int(near["num_perm"])
        bands, rows = near.get("bands"), near.get("rows")
        if bands is None or rows is None:
            bands, rows = _bands_for(float(near["threshold"]), num_perm)
        return cls(
            case=bool(exact["case"]), punctuation=bool(exact["punctuation"]), system=bool(near["system"]),
            size=int(near["shingle"]["size"]), spaceless_size=int(near["shingle"]["spaceless_size"]),
            num_perm=num_perm, bands=int(bands), rows=int(rows), threshold=float(near["threshold"]),
            seed=int(near["seed"]),
        )


_BANDS: dict[tuple[float, int], tuple[int, int]] = {}


def _bands_for(threshold: float, num_perm: int) -> tuple[int, int]:
    key = (threshold, num_perm)
    if key not in _BANDS:
        _BANDS[key] = choose_bands(threshold, num_perm)
    return _BANDS[key]


@dataclass
class FeatureChunk:
    """The features of one chunk's examples, in input order (aligned with its record_lines)."""

    exact: np.ndarray  # uint64 key of the whole example's exact text
    prompt: np.ndarray  # uint64 key of everything before the last model turn
    response: np.ndarray  # uint64 key of the last model turn
    media: np.ndarray  # uint64 key of the example's media references; 0 without media
    asked: np.ndarray  # uint64 key of the turns that are not the model's (no system instruction)
    answered: np.ndarray  # bool: the example has a model turn
    spaceless: np.ndarray  # bool: most of its tokens are characters of a spaceless script
    prompt_tokens: np.ndarray  # int64 tokens on the prompt side
    response_tokens: np.ndarray  # int64 tokens on the response side
    bands: np.ndarray  # (n, bands) uint64 LSH keys; all 0 for an example without tokens
    rank: np.ndarray  # int32 source rank for the survivor policy `source` (dedup.SourcePreference); else 0
    offset: np.ndarray  # int64 byte offset of the record's line
    length: np.ndarray  # int64 bytes of the line
    tokens: bytes  # uint32 token hashes: each record's prompt side, then its response side
    snippets: list[str]  # the start of each record's last model turn, for conflict reports
    skew: dict[str, np.ndarray] | None = None  # SKEW_COLUMNS, when the builder collects them

    def __len__(self) -> int:
        return self.exact.size


class FeatureBuilder:
    """Collects a chunk's examples during its pass and returns their features at `finish`.

    Texts are hashed in groups of about `_GROUP_CHARS` characters as examples come (`_flush`),
    so a builder holds a group's text at most, never a chunk's."""

    def __init__(self, settings: DedupSettings, *, dedup: bool = True, skew: bool = False) -> None:
        """`dedup`: hash tokens and MinHash bands (DUP and LEAK rules); `skew`: the skew columns."""
        self.settings = settings
        self.dedup = dedup
        self.skew = skew
        self._reset()

    def _reset(self) -> None:
        # Whole chunk: small per-record values.
        self._offset: list[int] = []
        self._length: list[int] = []
        self._snippets: list[str] = []
        self._media: list[int] = []
        self._answered: list[bool] = []
        self._rank: list[int] = []
        self._user_texts: list[str] = []
        self._skew_rows: list[tuple[int, int, int, int]] = []  # user turns, media parts, media kind, system key
        self._groups: list[tuple[np.ndarray, ...]] = []  # what _flush computed, group after group
        # The group not yet flushed: its texts.
        self._flushed = 0  # examples already in _groups
        self._pending = 0  # characters of text held below
        self._pieces: list[str] = []  # each example's system instruction, then its turns (exact_fold)
        self._roles: list[int] = []  # the role code of each piece
        self._first: list[int] = [0]  # where each example's pieces start, and where the last ends
        self._last: list[int] = []  # the index of the last model turn among the turns; -1: none
        self._sides: list[str] = []  # each example's prompt side and response side, folded

    def add(self, example: Example, rank: int = 0) -> None:
        """`rank`: the record's source rank (the survivor policy `source`)."""
        s = self.settings
        media: list[str] = []
        system = _parts_text(example.system, media)
        turns = [(t.effective_role, _parts_text(t.parts, media)) for t in example.turns]
        last = example.last_model_index
        case, punctuation = s.case, s.punctuation
        # The exact keys are hashed by _flush; here each piece is only folded. Turn boundaries
        # and roles stay part of the keys.
        pieces, roles = self._pieces, self._roles
        if case and not punctuation:  # the default: inline exact_fold's ASCII case
            pieces.append(system.lower() if system.isascii() else exact_fold(system))
            for _, text in turns:
                pieces.append(text.lower() if text.isascii() else exact_fold(text))
        else:
            pieces.append(exact_fold(system, case=case, punctuation=punctuation))
            pieces.extend(exact_fold(text, case=case, punctuation=punctuation) for _, text in turns)
        roles.append(_SYSTEM_ROLE)
        codes = _ROLE_CODES
        roles.extend(codes.get(role) or _role_code(role) for role, _ in turns)
        size = len(system)
        for _, text in turns:
            size += len(text)
        self._first.append(len(pieces))
        self._last.append(-1 if last is None else last)
        self._answered.append(last is not None)
        self._rank.append(rank)
        tail = turns[last][1] if last is not None else ""
        self._snippets.append(tail if len(tail) <= SNIPPET else tail[: SNIPPET - 1] + "…")
        self._media.append(key64("\x1e".join(media)) if media else 0)
        if self.dedup:
            self._sides.append(fold(_prompt_side(system, turns, s.system)))
            self._sides.append(fold("\n".join(text for role, text in turns if role == "model")))
        if self.skew:
            users = [text for role, text in turns if role == "user"]
            self._user_texts.append("\n".join(users))
            self._skew_rows.append((len(users), len(media), _media_kind(example), system_key(system or None)))
        origin = example.origin
        self._offset.append(origin.offset)
        self._length.append(origin.length)
        self._pending += size
        if self._pending >= _GROUP_CHARS:
            self._flush()

    def _flush(self) -> None:
        """Hash the examples added since the last flush: their exact keys (kernels.exact_keys)
        and, with `dedup`, their tokens and band keys (kernels.record_features)."""
        n = len(self._last)
        if not n:
            return
        from sftgate.analysis import kernels  # numba, loaded by the first process that hashes

        s = self.settings
        done = self._flushed
        keys = kernels.exact_keys(*_code_points(self._pieces), np.array(self._roles, dtype=np.uint64),
                                  np.array(self._first, dtype=np.int64), np.array(self._last, dtype=np.int64),
                                  np.array(self._media[done:done + n], dtype=np.uint64), _MODEL_ROLE, spaces())
        if self.dedup:
            seed = mix64(np.full(1, s.seed, dtype=np.uint64))[0]
            hashes, *features = kernels.record_features(*_code_points(self._sides), classes(), s.size,
                                                        s.spaceless_size, s.num_perm, seed, s.bands, s.rows,
                                                        MULTIPLIERS)
            tokens = (hashes >> np.uint64(32)).astype(np.uint32)
        else:
            features = [np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool),
                        np.zeros((n, s.bands), dtype=np.uint64)]
            tokens = np.zeros(0, dtype=np.uint32)
        self._groups.append((*keys, *features, tokens))
        self._flushed += n
        self._pending = 0
        self._pieces, self._roles, self._first, self._last, self._sides = [], [], [0], [], []

    def finish(self) -> FeatureChunk:
        self._flush()
        s = self.settings
        groups = self._groups
        n = self._flushed

        def column(k: int, dtype: type, shape: tuple[int, ...] = ()) -> np.ndarray:
            return np.concatenate([g[k] for g in groups]) if groups else np.zeros((n, *shape), dtype=dtype)

        chunk = FeatureChunk(
            exact=column(0, np.uint64),
            prompt=column(1, np.uint64),
            response=column(2, np.uint64),
            asked=column(3, np.uint64),
            prompt_tokens=column(4, np.int64),
            response_tokens=column(5, np.int64),
            spaceless=column(6, bool),
            bands=column(7, np.uint64, (s.bands,)),
            tokens=column(8, np.uint32).tobytes(),
            media=np.array(self._media, dtype=np.uint64),
            answered=np.array(self._answered, dtype=bool),
            rank=np.array(self._rank, dtype=np.int32),
            offset=np.array(self._offset, dtype=np.int64),
            length=np.array(self._length, dtype=np.int64),
            snippets=self._snippets,
            skew=self._skew_columns() if self.skew else None,
        )
        self._reset()
        return chunk

    def _skew_columns(self) -> dict[str, np.ndarray]:
        columns = feature_columns(self._user_texts)
        rows = np.array(self._skew_rows, dtype=np.uint64).reshape(-1, 4)
        columns["user_turns"] = rows[:, 0].astype(np.int64)
        columns["media_parts"] = rows[:, 1].astype(np.int64)
        columns["media_kind"] = rows[:, 2].astype(np.int64)
        columns["system"] = rows[:, 3]
        return columns


def _media_kind(example: Example) -> int:
    """The index in MEDIA_KINDS of the kind of media an example's user turns carry."""
    kinds = set()
    for turn in example.turns:
        if turn.effective_role == "user":
            for part in turn.parts:
                if part.kind is _FILE_DATA:
                    mime = str(part.value.get("mimeType", "")) if isinstance(part.value, dict) else ""
                    kinds.add(_MEDIA_CODE.get(mime, _MEDIA_CODE.get(mime.partition("/")[0], 5)))
    if not kinds:
        return 0
    return kinds.pop() if len(kinds) == 1 else 6


def _prompt_side(system: str, turns: list[tuple[str, str]], with_system: bool) -> str:
    """The text of the prompt side, not yet folded: every turn that is not the model's (and the
    system instruction when the profile compares it)."""
    asked = [text for role, text in turns if role != "model"]
    if with_system and system:
        asked.insert(0, system)
    return "\n".join(asked)


def prompt_side(example: Example, settings: DedupSettings) -> str:
    """An example's prompt side as written; `fold` it to get what the features tokenise."""
    media: list[str] = []
    turns = [(t.effective_role, _parts_text(t.parts, media)) for t in example.turns]
    return _prompt_side(_parts_text(example.system, media), turns, settings.system)


def _code_points(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Texts as one uint32 array of code points and where each starts (and the last ends)."""
    cp = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    bounds = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), out=bounds[1:])
    return cp, bounds


def _parts_text(parts: tuple, media: list[str]) -> str:
    """The text of some parts: text as written, function calls and responses as canonical JSON.

    Media references (`fileData`) are not text: their canonical JSON goes to `media`, which
    the exact keys include and which near-duplicates must share exactly (the same question
    about two different images is two examples).
    """
    pieces = []
    for part in parts:
        if part.kind is _TEXT:
            pieces.append(part.value)
        else:
            value = json_text({part.kind.value: part.value})
            (media if part.kind is _FILE_DATA else pieces).append(value)
    return "\n".join(pieces)


@dataclass
class FeatureTable:
    """The features of a whole file: chunks appended in input order, tokens spilled to disk."""

    columns: dict[str, list[np.ndarray]] = field(default_factory=dict)
    token_start: list[np.ndarray] = field(default_factory=list)
    snippets: list[str] = field(default_factory=list)
    spill: Any = None  # the open spill file
    spill_path: str | None = None  # its path, removed by close()
    spilled: int = 0  # uint32 values written so far
    writer: Any = None  # one thread appending chunks' tokens to the spill while the pass goes on
    writes: list[Future] = field(default_factory=list)  # its writes not yet known to be done
    _final: dict[str, np.ndarray] | None = None
    _prompt_bands: dict[DedupSettings, Callable[[], np.ndarray]] = field(default_factory=dict)

    _COLUMNS = ("exact", "prompt", "response", "media", "asked", "answered", "spaceless", "prompt_tokens",
                "response_tokens", "bands", "rank", "offset", "length")

    def append(self, chunk: FeatureChunk) -> None:
        if self.spill is None:
            fd, self.spill_path = tempfile.mkstemp(prefix="sftgate-tokens-", suffix=".u32")
            self.spill = os.fdopen(fd, "w+b")
        for name in self._COLUMNS:
            self.columns.setdefault(name, []).append(getattr(chunk, name))
        for name, column in (chunk.skew or {}).items():
            self.columns.setdefault(name, []).append(column)
        per_record = chunk.prompt_tokens + chunk.response_tokens
        self.token_start.append(self.spilled + np.cumsum(per_record) - per_record)
        self.snippets.extend(chunk.snippets)
        if self.writer is None:
            self.writer = ThreadPoolExecutor(1, thread_name_prefix="sftgate-spill")
        pending = []
        for write in self.writes:
            if write.done():
                write.result()  # a failed write raises here
            else:
                pending.append(write)
        self.writes = pending
        self.writes.append(self.writer.submit(self.spill.write, chunk.tokens))
        self.spilled += len(chunk.tokens) // 4

    def _written(self) -> None:
        """Wait for the spill writes (raising the error of one that failed)."""
        for write in self.writes:
            write.result()
        self.writes.clear()
        if self.writer is not None:
            self.writer.shutdown()
            self.writer = None

    def has(self, name: str) -> bool:
        """Whether the table holds the column `name` (the skew columns are optional)."""
        return name in (self._final if self._final is not None else self.columns)

    def column(self, name: str) -> np.ndarray:
        if self._final is None:
            self._final = {
                name: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
                for name, parts in self.columns.items()
            }
            self._final["token_start"] = (np.concatenate(self.token_start) if self.token_start
                                          else np.zeros(0, dtype=np.int64))
            self.columns.clear()
            self.token_start.clear()
            self._written()
            if self.spill is not None:
                self.spill.flush()
        return self._final[name]

    def __len__(self) -> int:
        if self._final is None:
            return sum(part.size for part in self.columns.get("exact", []))
        return self._final["exact"].size

    def tokens(self, record: int) -> tuple[list[int], list[int]]:
        """(prompt-side tokens, response-side tokens) of one record, read from the spill file."""
        start = int(self.column("token_start")[record])
        n_prompt = int(self.column("prompt_tokens")[record])
        n_response = int(self.column("response_tokens")[record])
        total = n_prompt + n_response
        if total == 0:
            return [], []
        data = os.pread(self.spill.fileno(), 4 * total, 4 * start)
        values = np.frombuffer(data, dtype=np.uint32).tolist()
        return values[:n_prompt], values[n_prompt:]

    def token_arrays(self, records: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tokens, prompt-side counts, response-side counts) of some records (see
        `rules.dedup.token_arrays`)."""
        prompt, response = self.column("prompt_tokens")[records], self.column("response_tokens")[records]
        return _gather(self.spill.fileno(), self.column("token_start")[records], prompt + response), prompt, response

    def blocks(self, max_tokens: int) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """(first record, tokens, prompt-side counts, response-side counts) for runs of
        consecutive records holding about `max_tokens` tokens (a `leakage.TokenTable`)."""
        if not len(self):
            return
        start = self.column("token_start")
        yield from _read_blocks(self.spill.fileno(), 0, start - start[0], int(start[0]),
                                self.column("prompt_tokens"), self.column("response_tokens"), max_tokens)

    def ranges(self, parts: int) -> list[TokenRange]:
        """The records cut into at most `parts` runs of consecutive records with about as many
        tokens each: picklable readers a worker process reads as `blocks`."""
        n = len(self)
        if not n:
            return []
        assert self.spill_path is not None
        start = self.column("token_start")  # flushes the spill file
        prompt, response = self.column("prompt_tokens"), self.column("response_tokens")
        ends = start + prompt + response
        cuts = np.searchsorted(ends, np.linspace(0, int(ends[-1]), parts + 1)[1:-1], side="right")
        bounds = unique(np.r_[0, cuts, n])
        return [TokenRange(self.spill_path, int(a), int(start[a]), prompt[a:b], response[a:b])
                for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)]

    def prompt_bands(self, settings: DedupSettings, each: BlockMap | None = None) -> np.ndarray:
        """(n, bands) band keys of the records' prompt sides alone, from the spilled tokens.

        Bare prompts (eval prompts without answers) are matched against these: a whole
        example's signature mixes in its answer. `each` maps the work over blocks of records
        (an executor's `map_blocks`; default: here, block after block)."""
        return self.start_prompt_bands(settings, each)()

    def start_prompt_bands(self, settings: DedupSettings, each: BlockMap | None = None) -> Callable[[], np.ndarray]:
        """`prompt_bands`, started: an executor's `each` hands the blocks to its workers now;
        the function returned collects the keys (once; later calls return the same array).
        Started once per settings: a later call returns what the first one did."""
        if settings in self._prompt_bands:
            return self._prompt_bands[settings]
        parts = (each or map_blocks)(self, prompt_band_block, (self.column("spaceless"), settings))
        n = len(self)

        @functools.cache
        def collect() -> np.ndarray:
            out = np.zeros((n, settings.bands), dtype=np.uint64)
            for first, bands in parts:
                out[first:first + bands.shape[0]] = bands
            return out

        self._prompt_bands[settings] = collect
        return collect

    def slice(self, records: np.ndarray) -> SpillSlice:
        """A picklable reader of these records' tokens, for a worker process."""
        assert self.spill_path is not None
        self.column("token_start")  # flushes the spill file
        return SpillSlice(self.spill_path, records, self.column("token_start")[records],
                          self.column("prompt_tokens")[records], self.column("response_tokens")[records])

    def close(self) -> None:
        self._written()
        if self.spill is not None:
            self.spill.close()
            self.spill = None
        if self.spill_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.spill_path)
            self.spill_path = None


def _read_blocks(fd: int | np.ndarray, first: int, start: np.ndarray, base: int, prompt: np.ndarray,
                 response: np.ndarray, max_tokens: int) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """`blocks` of records first, first + 1, ... whose tokens start at base + start[i] in the
    spill file `fd` (or in the array `fd`; start[0] == 0)."""
    ends = start + prompt + response
    i, n = 0, prompt.size
    while i < n:
        stop = max(int(np.searchsorted(ends, start[i] + max_tokens, side="right")), i + 1)
        lo, hi = base + int(start[i]), base + int(ends[stop - 1])
        if isinstance(fd, np.ndarray):
            tokens = fd[lo:hi]
        else:
            tokens = np.frombuffer(os.pread(fd, 4 * (hi - lo), 4 * lo) if hi > lo else b"", dtype=np.uint32)
        yield first + i, tokens, prompt[i:stop], response[i:stop]
        i = stop


@dataclass
class TokenRange:
    """Consecutive records of a `FeatureTable`, read from its spill file by path: what a worker
    process gets to read them as `blocks`."""

    path: str
    first: int  # the first record's index in the table
    base: int  # where its tokens start in the spill file (uint32 values)
    prompt: np.ndarray
    response: np.ndarray

    data: np.ndarray | None = None  # its tokens, once loaded: then no file is read

    def blocks(self, max_tokens: int) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        total = self.prompt + self.response
        source = _open(self.path) if self.data is None else self.data
        yield from _read_blocks(source, self.first, np.cumsum(total) - total, 0 if self.data is not None else self.base,
                                self.prompt, self.response, max_tokens)

    def load(self) -> TokenRange:
        """The same records with their tokens in memory, for a worker that cannot read the
        spill file (on another machine)."""
        total = int(self.prompt.sum() + self.response.sum())
        with _private(self.path) as fd:  # not the worker cache of `_open`: the driver's file goes soon
            data = np.frombuffer(os.pread(fd, 4 * total, 4 * self.base), dtype=np.uint32) if total \
                else np.zeros(0, dtype=np.uint32)
        return TokenRange("", self.first, 0, self.prompt, self.response, data)


def prompt_band_block(first: int, tokens: np.ndarray, prompt: np.ndarray, response: np.ndarray,
                      spaceless: np.ndarray, settings: DedupSettings) -> tuple[int, np.ndarray]:
    """(first, the band keys of these records' prompt sides): `FeatureTable.prompt_bands`'
    work on one block."""
    from sftgate.analysis import kernels

    seed = mix64(np.full(1, settings.seed, dtype=np.uint64))[0]
    total = prompt + response
    n = prompt.size
    sizes = np.where(spaceless[first:first + n], settings.spaceless_size, settings.size)
    return first, kernels.token_bands(tokens.astype(np.uint64), np.cumsum(total) - total, prompt, sizes,
                                      settings.num_perm, seed, settings.bands, settings.rows, MULTIPLIERS)


def _gather(fd: int | np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The uint32 values of some runs of a spill file (or of an array), one after the other."""
    if isinstance(fd, np.ndarray):
        if not counts.size:
            return np.zeros(0, dtype=np.uint32)
        ends = np.cumsum(counts)
        return fd[np.arange(int(ends[-1])) - np.repeat(ends - counts - starts, counts)]
    read = os.pread
    data = b"".join([read(fd, 4 * n, 4 * at) for at, n in zip(starts.tolist(), counts.tolist(), strict=True) if n])
    return np.frombuffer(data, dtype=np.uint32)


_OPEN: dict[str, int] = {}  # spill files a worker process has open, by path


@contextlib.contextmanager
def _private(path: str) -> Iterator[int]:
    """A descriptor of `path` for one read, closed after it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)


def _open(path: str) -> int:
    fd = _OPEN.get(path)
    if fd is None:
        if len(_OPEN) > 8:  # files of earlier runs
            for old in _OPEN.values():
                os.close(old)
            _OPEN.clear()
        fd = _OPEN[path] = os.open(path, os.O_RDONLY)
    return fd


@dataclass
class SpillSlice:
    """Some records' tokens in a spill file, readable from any process (a `TokenSource`)."""

    path: str
    records: np.ndarray  # record indexes, sorted
    start: np.ndarray
    prompt_tokens: np.ndarray
    response_tokens: np.ndarray
    data: np.ndarray | None = None  # the records' tokens, once loaded: `start` then indexes this

    def _source(self) -> int | np.ndarray:
        return _open(self.path) if self.data is None else self.data

    def tokens(self, record: int) -> tuple[list[int], list[int]]:
        i = int(np.searchsorted(self.records, record))
        n_prompt, total = int(self.prompt_tokens[i]), int(self.prompt_tokens[i] + self.response_tokens[i])
        if total == 0:
            return [], []
        values = _gather(self._source(), self.start[i:i + 1], np.array([total])).tolist()
        return values[:n_prompt], values[n_prompt:]

    def token_arrays(self, records: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i = np.searchsorted(self.records, records)
        prompt, response = self.prompt_tokens[i], self.response_tokens[i]
        return _gather(self._source(), self.start[i], prompt + response), prompt, response

    def load(self) -> SpillSlice:
        """The same records with their tokens in memory, for a worker that cannot read the
        spill file (on another machine)."""
        counts = self.prompt_tokens + self.response_tokens
        if self.data is not None:
            data = _gather(self.data, self.start, counts)
        else:
            with _private(self.path) as fd:  # not the worker cache of `_open`: the driver's file goes soon
                data = _gather(fd, self.start, counts)
        return SpillSlice("", self.records, np.cumsum(counts) - counts, self.prompt_tokens, self.response_tokens,
                          data)


@dataclass
class TableSet:
    """Several files' features seen as one id space (a `TokenSource`): the first table's
    records, then the second's, and so on. Leakage verifies pairs across files through it."""

    tables: list[FeatureTable | SubsetTable]

    def __post_init__(self) -> None:
        self.offsets = np.cumsum([0] + [len(t) for t in self.tables])

    def _locate(self, record: int) -> tuple[int, int]:
        k = int(np.searchsorted(self.offsets, record, side="right")) - 1
        return k, record - int(self.offsets[k])

    def tokens(self, record: int) -> tuple[list[int], list[int]]:
        k, local = self._locate(record)
        return self.tables[k].tokens(local)

    def token_arrays(self, records: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _by_part(self.offsets, {k: t for k, t in enumerate(self.tables)}, records)

    def slice(self, records: np.ndarray) -> SliceSet:
        records = unique(records)
        which = np.searchsorted(self.offsets, records, side="right") - 1
        parts = {}
        for k in unique(which).tolist():
            local = records[which == k] - self.offsets[k]
            parts[k] = self.tables[k].slice(local)
        return SliceSet(self.offsets, parts)


@dataclass
class SliceSet:
    """`TableSet.slice`: the named records' tokens, readable from any process."""

    offsets: np.ndarray
    parts: dict[int, SpillSlice]

    def load(self) -> SliceSet:
        """`SpillSlice.load` of each part."""
        return SliceSet(self.offsets, {k: part.load() for k, part in self.parts.items()})

    def tokens(self, record: int) -> tuple[list[int], list[int]]:
        k = int(np.searchsorted(self.offsets, record, side="right")) - 1
        return self.parts[k].tokens(record - int(self.offsets[k]))

    def token_arrays(self, records: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _by_part(self.offsets, self.parts, records)


def _by_part(offsets: np.ndarray, parts: Mapping[int, Any], records: np.ndarray) -> tuple[np.ndarray, ...]:
    """`token_arrays` of records (sorted) numbered across parts: part k's from offsets[k] on."""
    which = np.searchsorted(offsets, records, side="right") - 1
    pieces = [parts[k].token_arrays(records[which == k] - offsets[k]) for k in unique(which).tolist()]
    if not pieces:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return tuple(np.concatenate(column) for column in zip(*pieces, strict=True))  # type: ignore[return-value]


@dataclass
class SubsetTable:
    """Some records of a `FeatureTable`, renumbered 0..n-1 in their order (a `leakage.TokenTable`):
    the two parts of a planned split, checked against each other."""

    table: FeatureTable
    records: np.ndarray  # original record indexes, increasing

    def __len__(self) -> int:
        return int(self.records.size)

    def has(self, name: str) -> bool:
        """Whether the table holds the column `name` (the skew columns are optional)."""
        return self.table.has(name)

    def column(self, name: str) -> np.ndarray:
        return self.table.column(name)[self.records]

    def tokens(self, record: int) -> tuple[list[int], list[int]]:
        return self.table.tokens(int(self.records[record]))

    def token_arrays(self, records: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.table.token_arrays(self.records[records])

    def blocks(self, max_tokens: int) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        keep = np.zeros(len(self.table), dtype=bool)
        keep[self.records] = True
        done = 0
        for first, tokens, prompt, response in self.table.blocks(max_tokens):
            mine = keep[first:first + prompt.size]
            if not mine.any():
                continue
            total = prompt + response
            mask = np.repeat(mine, total)
            yield done, tokens[mask], prompt[mine], response[mine]
            done += int(mine.sum())

    def slice(self, records: np.ndarray) -> SpillSlice:
        original = self.table.slice(self.records[records])
        return replace(original, records=np.asarray(records))

    def prompt_bands(self, settings: DedupSettings, each: BlockMap | None = None) -> np.ndarray:
        return self.start_prompt_bands(settings, each)()

    def start_prompt_bands(self, settings: DedupSettings, each: BlockMap | None = None) -> Callable[[], np.ndarray]:
        started = self.table.start_prompt_bands(settings, each)
        return functools.cache(lambda: started()[self.records])
