"""Leakage rules (LEAK): validation and eval examples that also sit in the training data.

One analysis (`analyse`) compares every validation and eval example with the training data,
reusing the duplicate rules' features and verification rather than a second engine:

1. LEAK001 exact: the example's exact key (as DUP001 computes it) is a training example's. A
   bare prompt (an eval set given as plain text, or an example without a model turn) is
   compared with the training prompts instead: every turn that is not the model's.
2. LEAK002 near: candidates from the same MinHash LSH band keys as DUP002, between the two
   sets only; each candidate is verified with DUP002's turn-aware `Verification`. Bare prompts
   are matched against band keys of the training prompts, on the prompt side only.
3. LEAK003 shared source: word n-grams (default 13, GPT-3's decontamination length; character
   n-grams for spaceless scripts) of the validation/eval prompts are indexed; the training
   prompts stream through the index. N-grams found in more than `leak.common_in` training
   documents are boilerplate and ignored; a document is a family of duplicates (a DUP cluster,
   or an exact group), so a leaked document copied many times is not taken for boilerplate. A pair leaks when the shared n-grams are at least
   `leak.source_overlap` of the shorter prompt's: the same document, dialogue or code file
   asked about differently.
4. LEAK004 answer leak: the n-grams of a validation/eval answer are looked up in the whole text
   of every training record; a pair leaks when one training record holds `leak.answer_overlap`
   of them.

A pair reported by one rule is not reported again by a later one (an exact copy is not also a
shared source). Findings sit on the copy that is dropped: by default the training copy, so the
validation and eval sets stay intact and scores stay comparable; `leak.drop_from: validation`
moves validation leaks onto the validation example. Eval sets are never changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from sftgate.analysis.arrays import isin, unique
from sftgate.analysis.blocks import BLOCK_TOKENS, BlockMap, map_blocks
from sftgate.analysis.lsh import BandMap, cross_edges
from sftgate.analysis.ngrams import NgramIndex, NgramProbe, record_windows, unique_pairs
from sftgate.analysis.text import fold, token_spans
from sftgate.analysis.unionfind import components
from sftgate.model import Action, Finding, Severity
from sftgate.rules.base import DatasetRule, RuleContext, family_findings, quote
from sftgate.rules.dedup import TokenSource, Verification, verify_edges

CODES = ("LEAK001", "LEAK002", "LEAK003", "LEAK004")
KINDS = {"LEAK001": "exact", "LEAK002": "near", "LEAK003": "shared_source", "LEAK004": "answer"}
MIN_SHARED = 3  # LEAK003/004: n-grams a pair must share at least (a span of n + 2 tokens), or all of them
SPAN_CHARS = 80  # characters of a shared span quoted in a report


@dataclass(frozen=True)
class LeakSettings:
    """The `leak:` section of a profile."""

    drop_from: str
    max_listed: int
    ngram: int
    spaceless_ngram: int
    common_in: int
    source_overlap: float
    answer_overlap: float
    near_min_tokens: int

    @classmethod
    def from_profile(cls, section: Mapping[str, Any]) -> LeakSettings:
        return cls(str(section["drop_from"]), int(section["max_listed"]), int(section["ngram"]),
                   int(section["spaceless_ngram"]), int(section["common_in"]), float(section["source_overlap"]),
                   float(section["answer_overlap"]), int(section["near_min_tokens"]))

    def sizes(self, spaceless: np.ndarray) -> np.ndarray:
        return np.where(spaceless, self.spaceless_ngram, self.ngram).astype(np.int64)


class TokenTable(TokenSource, Protocol):
    """A set's tokens, one record at a time or in blocks of consecutive records."""

    def blocks(self, max_tokens: int) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """(first record, token hashes, prompt-side counts, response-side counts) per block; each
        record's tokens are its prompt side, then its response side."""
        ...


@dataclass
class Side:
    """One input set as the analysis sees it: its feature columns and its tokens."""

    name: str  # how the report names it: train, validation, or an eval file's stem
    split: str  # train | validation | eval
    source: str
    lines: np.ndarray  # record index -> line
    columns: Mapping[str, np.ndarray]
    tokens: TokenTable
    # record -> its family's label: copies of one document (exact or near duplicates) share a
    # label and count once when an n-gram's training records are counted. None: exact copies.
    family: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.lines.size)

    def where(self, record: int) -> str:
        return f"{self.source}:{int(self.lines[record])}"


@dataclass(frozen=True)
class Leak:
    record: int  # in its (validation or eval) set
    train: int  # the training record
    code: str
    score: float  # verified similarity (LEAK001, LEAK002) or n-gram overlap (LEAK003, LEAK004)
    span: int = 0  # LEAK003: tokens in the longest shared run
    text: str = ""  # LEAK003: the start of that run, folded


@dataclass
class SideLeaks:
    side: Side
    leaks: list[Leak] = field(default_factory=list)  # sorted by record, code, best score first

    def by_record(self) -> dict[int, list[Leak]]:
        out: dict[int, list[Leak]] = defaultdict(list)
        for leak in self.leaks:
            out[leak.record].append(leak)
        return out


@dataclass
class LeakAnalysis:
    train: Side
    sides: list[SideLeaks]
    settings: LeakSettings
    candidates: int = 0  # LEAK002 candidate pairs from LSH
    verified: int = 0  # of which verified


TextOf = Callable[[Side, int], str]  # a record's prompt side, as written
Started = Callable[[], np.ndarray]  # work under way (perhaps in worker processes): call for its result
BandStarter = Callable[[Side], Started]  # starts a side's prompt-only band keys
EdgeStarter = Callable[[np.ndarray, TokenSource, Verification], Started]  # starts verifying candidate edges


def analyse(
    *,
    train: Side,
    others: list[Side],
    settings: LeakSettings,
    verification: Verification,
    selected: frozenset[str],
    tokens: TokenSource,
    prompt_bands: BandStarter,
    text_of: TextOf | None = None,
    verify: EdgeStarter | None = None,
    each: BlockMap | None = None,
    band_map: BandMap | None = None,
) -> LeakAnalysis:
    """Compare each of `others` with `train` (see the module doc).

    `tokens` reads records by global id: the training records first, then each of `others`
    in order. `prompt_bands(side)` starts computing a side's band keys over its prompt sides
    only (of the training set, and of a set with bare prompts); it is called only when some
    example has no model turn. `verify` starts scoring candidate edges, `each` maps the
    n-gram scan over blocks of training records and `band_map` the LSH lookups over groups of
    bands (`analysis.lsh.map_bands`); the engine passes ones that hand the work to its workers
    as soon as they are called. The work is started in the order it is
    needed, each part as early as its inputs allow, so that the workers compute while this
    process does its own share (the n-gram index, LSH edges, the pairs sharing n-grams).
    """
    out = LeakAnalysis(train=train, sides=[SideLeaks(side) for side in others], settings=settings)
    if not len(train) or not others:
        return out
    offsets = np.cumsum([len(train)] + [len(side) for side in others])[:-1]
    groups = _ExactGroups(train.columns["exact"])
    near = bool({"LEAK002", "LEAK003", "LEAK004"} & selected)
    wanted = [code for code in ("LEAK003", "LEAK004") if code in selected]
    bare = near and any((np.logical_not(side.columns["answered"]) & _near_enough(side, settings)).any()
                        for side in others)
    if bare:
        prompt_bands(train)
    query = _query_ngrams(others, offsets, settings) if wanted else None
    scan = _start_scan(train, query, settings, wanted, each or map_blocks) if query is not None else None
    found: list[list[Leak]] = [[] for _ in others]
    seen: list[set[tuple[int, int]]] = [set() for _ in others]

    def add(k: int, leaks: Iterable[Leak]) -> None:
        for leak in leaks:
            pair = (leak.record, leak.train)
            if pair not in seen[k]:
                seen[k].add(pair)
                found[k].append(leak)

    # Exact and near pairs are found whenever a later rule is on, so that what each rule reports
    # does not depend on which others are selected (an exact copy is never LEAK002's); and they
    # are added first, whatever finished first.
    for k, side in enumerate(others):
        add(k, _exact(train, side, groups))
    verifying = _start_near(out, train, others, offsets, groups, verification, tokens, prompt_bands, band_map,
                            verify or _here, settings) if near else []
    shared = _ngram_leaks(train, others, offsets, settings, wanted, text_of,
                          train.family if train.family is not None else groups.rep, query, scan) if scan else []
    for k, leaks in enumerate(_near(out, others, offsets, groups, verifying)):
        add(k, leaks)
    for k, leaks in enumerate(shared):
        add(k, leaks)
    for k, side_leaks in enumerate(out.sides):
        side_leaks.leaks = sorted((leak for leak in found[k] if leak.code in selected),
                                  key=lambda x: (x.record, x.code, -x.score, x.train))
    return out


def _here(edges: np.ndarray, tokens: TokenSource, verification: Verification) -> Started:
    """Verification in this process, when its result is asked for."""
    return lambda: verify_edges(edges, tokens, verification)


def _near_enough(side: Side, settings: LeakSettings) -> np.ndarray:
    """Which records of a side have tokens enough for LEAK002."""
    c = side.columns
    return c["prompt_tokens"] + c["response_tokens"] >= max(1, settings.near_min_tokens)


class _ExactGroups:
    """Training records grouped by exact key: a match with one member is a match with all."""

    def __init__(self, exact: np.ndarray) -> None:
        _, first, inverse = np.unique(exact, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
        self.rep = first[inverse]  # record -> first record of its group
        self.order = np.argsort(inverse, kind="stable")  # records grouped, in input order
        self.start = np.searchsorted(inverse[self.order], inverse)  # record -> its group's start in order
        self.size = np.bincount(inverse)[inverse]

    def expand(self, reps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index into `reps`, member) for every member of each given record's group."""
        n = self.size[reps]
        which = np.repeat(np.arange(reps.size, dtype=np.int64), n)
        offsets = np.arange(which.size, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
        return which, self.order[np.repeat(self.start[reps], n) + offsets]


def _key_matches(query: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query index, key index) for every equal pair."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    lo = np.searchsorted(ordered, query, side="left")
    hi = np.searchsorted(ordered, query, side="right")
    n = hi - lo
    which = np.repeat(np.arange(query.size, dtype=np.int64), n)
    offsets = np.arange(which.size, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    return which, order[np.repeat(lo, n) + offsets]


def _exact(train: Side, side: Side, groups: _ExactGroups) -> Iterator[Leak]:
    answered = side.columns["answered"]
    pairs = []
    for mask, column in ((answered, "exact"), (~answered, "asked")):
        records = np.flatnonzero(mask)
        if records.size:
            which, matched = _key_matches(side.columns[column][records], train.columns[column])
            pairs.append((records[which], matched))
    for records, matched in pairs:
        for record, t in zip(records.tolist(), matched.tolist(), strict=True):
            yield Leak(record, t, "LEAK001", 1.0)


def _start_near(out: LeakAnalysis, train: Side, others: list[Side], offsets: np.ndarray, groups: _ExactGroups,
                verification: Verification, tokens: TokenSource, prompt_bands: BandStarter, band_map: BandMap | None,
                verify: EdgeStarter, settings: LeakSettings) -> list[tuple[np.ndarray, Started]]:
    """LEAK002's candidate edges (query global id, training record), whole examples first,
    then bare prompts, each set with its verification started."""
    n_train = len(train)
    tc = train.columns
    train_ids = np.flatnonzero((groups.rep == np.arange(n_train)) & (tc["prompt_tokens"] + tc["response_tokens"] > 0))
    started: list[tuple[np.ndarray, Started]] = []
    for answered in (True, False):
        keys, ids = [], []
        for k, side in enumerate(others):
            records = np.flatnonzero((side.columns["answered"] == answered) & _near_enough(side, settings))
            if records.size:
                # A bare prompt's keys are recomputed from its tokens, as the training
                # prompts' are, so that both sides hash the same way.
                keys.append((side.columns["bands"] if answered else prompt_bands(side)())[records])
                ids.append(offsets[k] + records)
        if not ids:
            continue
        query_ids = np.concatenate(ids)
        index_keys = tc["bands"] if answered else prompt_bands(train)()
        edges = cross_edges(np.concatenate(keys), query_ids, index_keys, train_ids, band_map, index_rows=train_ids)
        if not edges.size:
            continue
        query_media = np.concatenate([side.columns["media"] for side in others])
        edges = edges[query_media[edges[:, 0] - n_train] == tc["media"][edges[:, 1]]]
        out.candidates += int(edges.shape[0])
        check = verification if answered else replace(verification, prompt_only=True)
        started.append((edges, verify(edges, tokens, check)))
    return started


def _near(out: LeakAnalysis, others: list[Side], offsets: np.ndarray, groups: _ExactGroups,
          verifying: list[tuple[np.ndarray, Started]]) -> list[list[Leak]]:
    """LEAK002's leaks, per side, once the edges `_start_near` started are verified."""
    results: list[list[Leak]] = [[] for _ in others]
    for edges, scored in verifying:
        scores = scored()
        kept = ~np.isnan(scores)
        out.verified += int(kept.sum())
        edges, scores = edges[kept], scores[kept]
        which, members = groups.expand(edges[:, 1])
        glob = edges[which, 0]
        side_of = np.searchsorted(offsets, glob, side="right") - 1
        for g, k, t, score in zip(glob.tolist(), side_of.tolist(), members.tolist(), scores[which].tolist(),
                                  strict=True):
            results[k].append(Leak(g - int(offsets[k]), t, "LEAK002", score))
    return results


@dataclass
class _Query:
    """The n-grams of every validation/eval record, by global id."""

    prompt: NgramIndex
    answer: NgramIndex
    prompt_windows: tuple[np.ndarray, np.ndarray, np.ndarray]  # (hash, global id, position), by global id
    prompt_distinct: np.ndarray  # global id - offset of the first side -> distinct prompt n-grams
    answer_distinct: np.ndarray


def _query_ngrams(others: list[Side], offsets: np.ndarray, settings: LeakSettings) -> _Query:
    ph, pg, pp, ah, ag = [], [], [], [], []
    for k, side in enumerate(others):
        spaceless = side.columns["spaceless"]
        for first, toks, pc, rc in side.tokens.blocks(BLOCK_TOKENS):
            sizes = settings.sizes(spaceless[first:first + pc.size])
            starts = np.cumsum(pc + rc) - (pc + rc)
            h, o, p = record_windows(toks, starts, pc, sizes)  # in record order
            ph.append(h)
            pg.append(offsets[k] + first + o)
            pp.append(p)
            if side.split == "eval":  # LEAK004 is about eval answers
                h, o, _ = record_windows(toks, starts + pc, rc, sizes)
                ah.append(h)
                ag.append(offsets[k] + first + o)
    cat = _concat
    prompt_hashes, prompt_owners = cat(ph, np.uint64), cat(pg, np.int64)
    prompt = NgramIndex(prompt_hashes, prompt_owners)
    answer = NgramIndex(cat(ah, np.uint64), cat(ag, np.int64))
    base, n = int(offsets[0]), int(offsets[-1]) + len(others[-1]) - int(offsets[0])
    return _Query(
        prompt=prompt, answer=answer,
        prompt_windows=(prompt_hashes, prompt_owners, cat(pp, np.int64)),  # by owner: sides and blocks in order
        prompt_distinct=np.bincount(prompt.records - base, minlength=n),
        answer_distinct=np.bincount(answer.records - base, minlength=n),
    )


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)


def _start_scan(train: Side, query: _Query, settings: LeakSettings, wanted: list[str],
                each: BlockMap) -> Iterator[tuple] | None:
    """The training tokens streamed through the validation/eval n-gram indexes (`scan_block` over
    blocks, started), or None when no index holds anything to look for."""
    probes = (query.prompt.probe if "LEAK003" in wanted and len(query.prompt) else None,
              query.answer.probe if "LEAK004" in wanted and len(query.answer) else None)
    if probes == (None, None):
        return None
    return iter(each(train.tokens, scan_block, (train.columns["spaceless"], settings, *probes)))


def _ngram_leaks(train: Side, others: list[Side], offsets: np.ndarray, settings: LeakSettings, wanted: list[str],
                 text_of: TextOf | None, family: np.ndarray, query: _Query, scan: Iterator[tuple]) -> list[list[Leak]]:
    results: list[list[Leak]] = [[] for _ in others]
    do_source = "LEAK003" in wanted and len(query.prompt) > 0
    do_answer = "LEAK004" in wanted and len(query.answer) > 0
    # (n-gram, training record) of every hit, packed as gram number << 31 | record.
    prompt_hits, answer_hits = [], []
    prompt_windows = np.zeros(len(train), dtype=np.int64)
    for first, windows_, prompt, answer in scan:
        if do_source:
            prompt_windows[first:first + windows_.size] = windows_
            prompt_hits.append(prompt)
        if do_answer:
            answer_hits.append(answer)
    base = int(offsets[0])
    n_query = len(query.prompt_distinct)
    if do_source:
        shared, query_common, train_common = _shared(prompt_hits, query.prompt, settings.common_in, base, n_query,
                                                     family)
        # Boilerplate n-grams count on neither side: a shared instruction must not hide a
        # shared document behind it.
        q, t = shared.query - base, shared.train
        denominator = np.minimum(query.prompt_distinct[q] - query_common[q], prompt_windows[t] - train_common[t])
        passing = list(_passing(shared.count, denominator, settings.source_overlap))
        grams = shared.grams([i for i, _ in passing])
        texts: dict[int, tuple[str, np.ndarray, np.ndarray]] = {}
        # A document's copies share the same n-grams with a query prompt: its longest run is
        # found once per distinct set.
        runs: dict[tuple[int, bytes], tuple[int, str]] = {}
        for (i, ratio), held in zip(passing, grams, strict=True):
            g, t_ = int(shared.query[i]), int(shared.train[i])
            k = int(np.searchsorted(offsets, g, side="right") - 1)
            key = (g, held.tobytes())
            if key not in runs:
                runs[key] = _longest_run(query.prompt_windows, g, query.prompt.grams[held], others[k],
                                         g - int(offsets[k]), settings, text_of, texts)
            span, text = runs[key]
            results[k].append(Leak(g - int(offsets[k]), t_, "LEAK003", ratio, span, text))
    if do_answer:
        shared, query_common, _ = _shared(answer_hits, query.answer, settings.common_in, base, n_query, family)
        q = shared.query - base
        denominator = query.answer_distinct[q] - query_common[q]
        for i, ratio in _passing(shared.count, denominator, settings.answer_overlap):
            g = int(shared.query[i])
            k = int(np.searchsorted(offsets, g, side="right") - 1)
            results[k].append(Leak(g - int(offsets[k]), int(shared.train[i]), "LEAK004", ratio))
    return results


def scan_block(first: int, tokens: np.ndarray, prompt: np.ndarray, response: np.ndarray, spaceless: np.ndarray,
               settings: LeakSettings, prompt_probe: NgramProbe | None,
               answer_probe: NgramProbe | None) -> tuple[int, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The n-gram scan of one block of training records (`_ngram_leaks`; a worker process may run
    it): (first, each record's prompt windows, its prompt-side hits in `prompt_probe`, its hits
    anywhere in `answer_probe`), hits packed as gram << 31 | record, sorted and distinct."""
    sizes = settings.sizes(spaceless[first:first + prompt.size])
    total = prompt + response
    starts = np.cumsum(total) - total
    prompt_hits = answer_hits = None
    if prompt_probe is not None:
        g, o = prompt_probe.hits(tokens, starts, prompt, sizes)
        prompt_hits = unique((g << 31) | (first + o))
    if answer_probe is not None:
        g, o = answer_probe.hits(tokens, starts, total, sizes)
        answer_hits = unique((g << 31) | (first + o))
    return first, np.maximum(prompt - sizes + 1, 0), prompt_hits, answer_hits


def _passing(shared: np.ndarray, denominator: np.ndarray, overlap: float) -> Iterator[tuple[int, float]]:
    """(pair, its overlap capped at 1) of the pairs that share at least `overlap` of the
    denominator's n-grams, and at least MIN_SHARED of them (or all)."""
    ok = (denominator > 0) & (shared >= np.minimum(MIN_SHARED, denominator))
    ratio = shared / np.maximum(denominator, 1)
    ok &= ratio >= overlap
    for i in np.flatnonzero(ok).tolist():
        yield i, min(1.0, float(ratio[i]))


@dataclass
class _SharedPairs:
    """(query global id, training record) pairs sharing n-grams that are not boilerplate, in
    order of the pair, with how many they share; the n-grams themselves on request."""

    query: np.ndarray
    train: np.ndarray
    count: np.ndarray
    index: NgramIndex
    base: int  # the global id of the first query record
    n_query: int
    hit_start: np.ndarray  # the training records holding gram g: hit_train[hit_start[g]:hit_start[g + 1]]
    hit_train: np.ndarray

    def grams(self, pairs: list[int]) -> list[np.ndarray]:
        """The gram numbers each of some pairs shares, ascending."""
        from sftgate.analysis import kernels  # numba

        if not pairs:
            return []
        start, grams = kernels.pair_grams(self.query[pairs], self.train[pairs], self.hit_start, self.hit_train,
                                          self.index.bounds, self.index.records, self.base, self.n_query)
        return [grams[start[i]:start[i + 1]] for i in range(len(pairs))]


def _shared(hits: list[np.ndarray], index: NgramIndex, common_in: int, base: int, n_query: int,
            family: np.ndarray) -> tuple[_SharedPairs, np.ndarray, np.ndarray]:
    """The pairs sharing n-grams that are not boilerplate (`_SharedPairs`), and per query
    record and per training record how many boilerplate n-grams (held by more than `common_in`
    training families) it holds. `hits`: packed gram << 31 | training record, sorted and
    distinct within each array, the arrays about disjoint runs of training records (the scan's
    blocks)."""
    from sftgate.analysis import kernels  # numba

    n_train = family.size
    pairs = np.concatenate(hits) if hits else np.zeros(0, dtype=np.int64)  # distinct
    gram, train = pairs >> 31, pairs & _LOW31
    # Documents, not records, are counted: the copies of one family hold an n-gram once.
    held = unique((gram << 31) | family[train]) >> 31
    common = np.bincount(held, minlength=index.grams.size) > common_in
    is_common = common[gram]
    train_common = np.bincount(train[is_common], minlength=n_train).astype(np.int64, copy=False)
    query_common = np.bincount(index.records[common[index.gram_of_entries()]] - base,
                               minlength=n_query).astype(np.int64, copy=False)
    rare = np.sort(pairs[~is_common])  # by gram, then training record
    hit_train = rare & _LOW31
    hit_start = np.searchsorted(rare >> 31, np.arange(index.grams.size + 1, dtype=np.int64))
    query, train, count = kernels.shared_pairs(hit_start, hit_train, index.bounds, index.records, base, n_query,
                                               n_train)
    return _SharedPairs(query, train, count, index, base, n_query, hit_start, hit_train), query_common, train_common


_LOW31 = (1 << 31) - 1


def _longest_run(windows_: tuple[np.ndarray, np.ndarray, np.ndarray], g: int, shared: np.ndarray, side: Side,
                 record: int, settings: LeakSettings, text_of: TextOf | None,
                 texts: dict[int, tuple[str, np.ndarray, np.ndarray]]) -> tuple[int, str]:
    """(tokens in the longest run of shared n-grams of the query prompt, its start as text).
    `texts` keeps each query prompt's text and token spans (by `g`) for its other pairs."""
    h, owner, position = windows_  # grouped by owner
    lo, hi = np.searchsorted(owner, g, side="left"), np.searchsorted(owner, g, side="right")
    pos = position[lo:hi][isin(h[lo:hi], shared)]
    if not pos.size:
        return 0, ""
    pos = unique(pos)
    breaks = np.flatnonzero(np.diff(pos) != 1)
    run_starts = np.concatenate(([0], breaks + 1))
    run_ends = np.concatenate((breaks, [pos.size - 1]))
    best = int(np.argmax(run_ends - run_starts))
    size = int(settings.sizes(side.columns["spaceless"][record:record + 1])[0])
    first_token, tokens = int(pos[run_starts[best]]), int(run_ends[best] - run_starts[best]) + size
    if text_of is None:
        return tokens, ""
    if g not in texts:
        written = text_of(side, record)
        folded = fold(written)
        # Quote the text as written when folding kept every character in place (most Latin text).
        texts[g] = (written if len(written) == len(folded) else folded, *token_spans(folded))
    shown, starts, ends = texts[g]
    if first_token + tokens > starts.size:
        return tokens, ""
    return tokens, shown[starts[first_token]:ends[first_token + tokens - 1]]


SOURCE_PAIRS_BUDGET = 8_000_000  # sampled (n-gram, record) pairs `source_edges` holds at most


def source_edges(side: Side, settings: LeakSettings) -> np.ndarray:
    """(m, 2) pairs of records of one set whose prompts share a source, by LEAK003's test.

    For planning a split, within the training data: n-grams held by 2 to `common_in` records
    link them; a pair shares a source when the n-grams both hold are `source_overlap` of the
    shorter prompt's. Only one record of each family (`Side.family`) takes part: the split
    keeps families whole anyway, and a document's copies must not make it boilerplate. Large sets are sampled: only n-grams whose hash has its low bits zero
    count (the same n-grams in every record, so overlaps stay unbiased), as many bits as keep
    the pairs within SOURCE_PAIRS_BUDGET. The split's leak check catches what sampling misses.
    """
    n = len(side)
    if not n:
        return np.zeros((0, 2), dtype=np.int64)
    total = int((side.columns["prompt_tokens"]).sum())
    bits = max(0, int(np.ceil(np.log2(max(1, total) / SOURCE_PAIRS_BUDGET))))
    mask = np.uint64((1 << bits) - 1)
    spaceless = side.columns["spaceless"]
    family = side.family if side.family is not None else _ExactGroups(side.columns["exact"]).rep
    first_of_family = family == np.arange(n)
    grams: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    held = np.zeros(n, dtype=np.int64)
    for first, toks, pc, rc in side.tokens.blocks(BLOCK_TOKENS):
        starts = np.cumsum(pc + rc) - (pc + rc)
        h, o, _ = record_windows(toks, starts, pc, settings.sizes(spaceless[first:first + pc.size]))
        keep = ((h & mask) == 0) & first_of_family[first + o]
        kept_h, kept_r = unique_pairs(h[keep], first + o[keep])
        held[first:first + pc.size] = np.bincount(kept_r - first, minlength=pc.size)
        grams.append(kept_h)
        owners.append(kept_r)
    h, r = _concat(grams, np.uint64), _concat(owners, np.int64)
    order = np.lexsort((r, h))
    h, r = h[order], r[order]
    starts = np.flatnonzero(np.concatenate(([True], h[1:] != h[:-1]))) if h.size else np.zeros(0, dtype=np.int64)
    sizes = np.diff(np.append(starts, h.size))
    usable = (sizes >= 2) & (sizes <= settings.common_in)
    packed: list[np.ndarray] = []
    for size in unique(sizes[usable]).tolist():
        at = starts[usable & (sizes == size)]
        members = r[at[:, None] + np.arange(size)]  # increasing within each n-gram
        a, b = np.triu_indices(size, 1)
        packed.append((members[:, a] << 31 | members[:, b]).ravel())
    if not packed:
        return np.zeros((0, 2), dtype=np.int64)
    keys, shared = np.unique(np.concatenate(packed), return_counts=True)
    a, b = keys >> 31, keys & ((1 << 31) - 1)
    need = MIN_SHARED if bits == 0 else 2  # sampled n-grams each stand for 2^bits
    ok = (shared >= need) & (shared >= settings.source_overlap * np.minimum(held[a], held[b]))
    return np.stack((a[ok], b[ok]), axis=1)


# --- findings ----------------------------------------------------------------------------------


def families(exact: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """`Side.family` from exact keys and duplicate edges ((m, 2) records): each record is
    labelled by the first record of its component."""
    rep = _ExactGroups(exact).rep
    same = np.stack((np.arange(rep.size, dtype=np.int64), rep), axis=1)
    return components(rep.size, np.concatenate((same, edges.astype(np.int64).reshape(-1, 2))))


def _on_train(analysis: LeakAnalysis, side: SideLeaks) -> bool:
    return side.side.split == "eval" or analysis.settings.drop_from == "train"


def _describe(leak: Leak, ngram: str, bare: bool) -> str:
    if leak.code == "LEAK001":
        return "the same prompt as" if bare else "exact copy of"
    if leak.code == "LEAK002":
        return f"near-duplicate{' prompt' if bare else ''} (similarity {leak.score:.2f}) of"
    if leak.code == "LEAK003":
        shown = f": {quote(leak.text, 50)}" if leak.text else ""
        return (f"same source: the prompts share {leak.score:.0%} of their {ngram} sequences, "
                f"longest shared span {leak.span} tokens{shown}; with")
    return f"answer leak: {leak.score:.0%} of the answer's {ngram} sequences appear in the training text; answer of"


class _LeakRule(DatasetRule):
    default_action = Action.DROP

    def check(self, analysis: LeakAnalysis, ctx: RuleContext) -> Iterator[Finding]:
        ngram = f"{analysis.settings.ngram}-word"
        train = analysis.train
        for side_leaks in analysis.sides:
            side = side_leaks.side
            answered = side.columns["answered"]
            mine = [leak for leak in side_leaks.leaks if leak.code == self.code]
            if not mine:
                continue
            # One finding per record that is dropped: each training copy by default, each
            # validation example with `leak.drop_from: validation`.
            if _on_train(analysis, side_leaks):
                here, there, key, other, verb, others = train, side, "train", "record", "leaks into", f"{side.name} examples"
            else:
                here, there, key, other, verb, others = side, train, "record", "train", "leaks from", "training examples"
            grouped: dict[int, list[Leak]] = defaultdict(list)
            for leak in mine:
                grouped[getattr(leak, key)].append(leak)
            for at in sorted(grouped):
                leaks = sorted(grouped[at], key=lambda x: (-x.score, getattr(x, other)))
                best = leaks[0]
                more = f" (and {len(leaks) - 1} more {others})" if len(leaks) > 1 else ""
                name = side.name if there is side else "training"
                matched = there.where(getattr(best, other))
                bare = not answered[best.record]  # a prompt without an answer
                yield self.finding(here.source, int(here.lines[at]),
                                   f"{verb} {name}: {_describe(best, ngram, bare)} {matched}{more}",
                                   related=matched, similarity=round(best.score, 4))


class ExactLeak(_LeakRule):
    """## What it does
    Flags a validation or eval example that is also in the training data, after the same
    normalisation as exact duplicates (DUP001).

    An example with a model turn is compared whole (system instruction and every turn); a bare
    prompt (an eval set given as plain text, or an example without a model turn) is compared
    with the training examples' prompts: every turn that is not the model's.

    The finding sits on the copy that is dropped: the training copy by default, so that the
    validation and eval sets stay intact and their scores comparable over time. With
    `leak.drop_from: validation` a validation leak is reported on the validation example
    instead. Eval sets are never changed.

    ## Why is this bad?
    The model is scored on examples it was trained on: validation loss and eval scores look
    better than the model is, and the wrong checkpoint gets picked.

    ## Example
    Line 7 of validation.jsonl is line 1,204 of train.jsonl: the training copy is flagged,
    "leaks into validation: exact copy of validation.jsonl:7".
    Use instead: drop the training copy (`sftgate prepare` does).

    ## Options
    - `leak.drop_from`: which copy carries the finding, train (default) or validation.
    - `dedup.exact.case`, `dedup.exact.punctuation`: the normalisation, as for DUP001.
    """

    code = "LEAK001"
    name = "exact-leak"
    default_severity = Severity.ERROR


class NearLeak(_LeakRule):
    """## What it does
    Flags a validation or eval example that is a verified near-duplicate of a training
    example: the same MinHash LSH candidates and the same turn-aware verification as DUP002,
    between the two sets.

    Typos, a system instruction added or removed, boilerplate appended, an answer cut short or
    two sentences swapped are still the same example. The same template with a different
    question is not (that is LEAK003's business when it shares a long source text). A bare
    prompt is compared with the training prompts on the prompt side only. Examples shorter than
    `leak.near_min_tokens` are left to LEAK001.

    ## Why is this bad?
    A lightly edited copy leaks as much as an exact one: the model has seen the answer.

    ## Example
    validation.jsonl:31 is train.jsonl:88 with "I hope this helps!" appended: the training
    copy is flagged "leaks into validation: near-duplicate (similarity 0.96)".
    Use instead: drop one of the two; by default the training copy.

    ## Options
    - `dedup.near.similarity`, `dedup.near.max_changed_span`: the verification, as for DUP002
      (the other `dedup.near` options set the candidate search).
    - `leak.near_min_tokens`: examples with fewer tokens (default 10) leak only as exact copies:
      one word is more than a tenth of them, too coarse to tell an edit from another example.
    - `leak.drop_from`: which copy carries the finding, train (default) or validation.
    """

    code = "LEAK002"
    name = "near-leak"
    default_severity = Severity.ERROR


class SharedSourceLeak(_LeakRule):
    """## What it does
    Flags a validation or eval prompt that shares a long span of text with a training prompt:
    the same document, dialogue or code file, asked about with a different question.

    Prompts are compared by word n-grams (`leak.ngram`, default 13; character n-grams of
    `leak.spaceless_ngram` for Chinese, Japanese, Thai and other scripts written without
    spaces). N-grams that occur in more than `leak.common_in` training documents are
    boilerplate (instructions, templates) and ignored; the copies of a document (a DUP cluster,
    or exact copies) count as one, so a leaked document copied many times is still found, and
    every copy is flagged. A pair is flagged when the n-grams both prompts hold
    are at least `leak.source_overlap` of the shorter prompt's (boilerplate n-grams left out of
    both counts) and number at least three (or all, for a prompt of fewer); the finding gives the
    overlap and the longest shared span.

    ## Why is this bad?
    The model has read the document the question is about, often together with its summary
    or other answers about it: the score measures recall of training data, not reading.

    ## Example
    validation.jsonl:12 asks who suggested the coffee shop in a dialogue that train.jsonl:501
    asks to summarise: "same source: the prompts share 91% of their 13-word sequences".
    Use instead: keep each source document in one split (`--split-validation` does).

    ## Options
    - `leak.ngram`, `leak.spaceless_ngram`: n-gram length (default 13 words, 20 characters).
    - `leak.common_in`: n-grams in more training documents (duplicate families) are ignored
      (default 10).
    - `leak.source_overlap`: the share of the shorter prompt's n-grams (default 0.8).
    """

    code = "LEAK003"
    name = "shared-source-leak"
    default_severity = Severity.WARNING


class AnswerLeak(_LeakRule):
    """## What it does
    Flags a validation or eval answer that appears verbatim inside a training example, in its
    prompt or its response.

    The answer's word n-grams (`leak.ngram`, default 13) are looked up in the whole text of
    each training record; when one record holds at least `leak.answer_overlap` of them (and at
    least three, or all of an answer with fewer), the answer is in it. Answers shorter than one n-gram (a label, a number) are
    not checked: they occur everywhere. N-grams in more than `leak.common_in` training documents
    are boilerplate and do not count.

    ## Why is this bad?
    The model was shown the expected answer, perhaps as context of another question: the eval
    measures whether it remembers, not whether it can answer.

    ## Example
    The answer of eval line 4, a two-sentence definition, is quoted inside the prompt of
    train.jsonl:77: "answer leak: 100% of the answer's 13-word sequences appear in the
    training text".
    Use instead: drop or rewrite the training example.

    ## Options
    - `leak.ngram`, `leak.spaceless_ngram`: n-gram length.
    - `leak.answer_overlap`: the share of the answer's n-grams one training record must hold
      (default 0.8).
    - `leak.common_in`: n-grams in more training documents (duplicate families) are ignored
      (default 10).
    """

    code = "LEAK004"
    name = "answer-leak"
    default_severity = Severity.WARNING


def findings(analysis: LeakAnalysis, ctx: RuleContext, selected: Iterable[str]) -> list[Finding]:
    """Every LEAK finding, for the selected codes."""
    return family_findings((ExactLeak, NearLeak, SharedSourceLeak, AnswerLeak), analysis, ctx, selected)


def summary(analysis: LeakAnalysis) -> dict[str, Any]:
    """The report's `leakage` section: per validation/eval set, what leaks and from where."""
    s = analysis.settings
    train = analysis.train
    sides = []
    dropped: set[int] = set()
    for side_leaks in analysis.sides:
        side = side_leaks.side
        by_record = side_leaks.by_record()
        kinds = {KINDS[code]: 0 for code in CODES}
        listed = []
        for r in sorted(by_record):
            leaks = by_record[r]
            worst = min(leak.code for leak in leaks)
            kinds[KINDS[worst]] += 1
            if len(listed) < s.max_listed:
                listed.append({
                    "record": side.where(r),
                    "kind": KINDS[worst],
                    "code": worst,
                    "matches": [_match(train, leak) for leak in leaks[:20]],
                    "training_matches": len({leak.train for leak in leaks}),
                })
        if _on_train(analysis, side_leaks):
            dropped |= {leak.train for leak in side_leaks.leaks}
        sides.append({
            "source": side.source,
            "split": side.split,
            "name": side.name,
            "records": len(side),
            "leaking_records": len(by_record),
            "by_kind": kinds,
            "listed": listed,
        })
    return {
        "train": train.source,
        "settings": {"drop_from": s.drop_from, "ngram": s.ngram, "spaceless_ngram": s.spaceless_ngram,
                     "common_in": s.common_in, "source_overlap": s.source_overlap,
                     "answer_overlap": s.answer_overlap},
        "candidate_pairs": analysis.candidates,
        "verified_pairs": analysis.verified,
        "training_records_flagged": len(dropped),
        "sets": sides,
    }


def _match(train: Side, leak: Leak) -> dict[str, Any]:
    out: dict[str, Any] = {"record": train.where(leak.train), "code": leak.code, "score": round(leak.score, 4)}
    if leak.code == "LEAK003":
        out["span_tokens"] = leak.span
        out["span"] = leak.text[:SPAN_CHARS]
    return out
